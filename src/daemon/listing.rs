//! `l2sw list`: the switches of a run directory, found by their journals
//! and control sockets, each asked for its status.

use std::collections::BTreeMap;
use std::path::Path;

use super::journal::{all_journals, Journal};
use crate::control::client::Client;
use crate::control::protocol::Request;
use crate::control::socket_path;
use crate::control::views::{StatusSummary, SwitchListing, SwitchState};

/// Every switch under `run_dir`: running ones with their status, dead ones
/// whose journal still lists what they left.
pub fn list_switches(run_dir: &Path) -> Vec<SwitchListing> {
    let mut journals: BTreeMap<String, Option<Journal>> = all_journals(run_dir)
        .into_iter()
        .map(|(n, j)| (n, j.ok()))
        .collect();
    // Switches from before journals, or whose journal could not be written.
    if let Ok(dir) = std::fs::read_dir(run_dir) {
        for e in dir.flatten() {
            let f = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = f.strip_suffix(".sock") {
                journals.entry(n.to_string()).or_insert(None);
            }
        }
    }
    journals
        .into_iter()
        .map(|(name, j)| {
            let socket = socket_path(run_dir, &name);
            let status = Client::connect(&name, &socket)
                .ok()
                .and_then(|mut c| c.call(&Request::Status).ok())
                .and_then(|v| serde_json::from_value::<StatusSummary>(v).ok());
            let alive = j.as_ref().is_none_or(|j| j.is_alive());
            match status {
                Some(s) => SwitchListing {
                    name,
                    state: SwitchState::Running,
                    pid: Some(s.pid),
                    ports: Some(s.ports),
                    namespaces: Some(s.namespaces),
                    uptime_s: Some(s.uptime_s),
                    socket,
                    leftovers: 0,
                    containers: 0,
                },
                None => SwitchListing {
                    state: match &j {
                        Some(_) if alive => SwitchState::Unreachable,
                        Some(j) if j.stopped && j.created.is_empty() => SwitchState::Stopped,
                        _ => SwitchState::Dead,
                    },
                    pid: j.as_ref().map(|j| j.pid),
                    ports: None,
                    namespaces: None,
                    uptime_s: None,
                    leftovers: j.as_ref().map(|j| j.created.len()).unwrap_or(0),
                    containers: j.as_ref().map_or(0, |j| {
                        j.ports.iter().filter(|c| c.container.is_some()).count()
                    }),
                    name,
                    socket,
                },
            }
        })
        .collect()
}
