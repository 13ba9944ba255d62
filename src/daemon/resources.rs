//! What a running switch created and must remove again: links, persistent
//! TAPs, namespaces, and the record of which namespace is plugged how.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::journal::{Claim, Journal, JournalEntry, SWITCH_OWNER};
use crate::control::protocol::{ContainerRef, PortSet, VlanConf};
use crate::netns;

pub use super::owned::Owned;
pub use crate::control::views::Plug;

/// The interface stations behind a port send from: its MAC is the one the
/// FDB learns, so `port list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub netns: Option<String>,
    pub ifname: String,
    /// A namespace known by its file only (a container's).
    pub netns_path: Option<PathBuf>,
}

impl Endpoint {
    pub fn new(netns: Option<&str>, ifname: &str) -> Endpoint {
        Endpoint {
            netns: netns.map(str::to_string),
            ifname: ifname.to_string(),
            netns_path: None,
        }
    }

    /// An interface in the namespace `path` refers to.
    pub fn at_path(path: &std::path::Path, ifname: &str) -> Endpoint {
        Endpoint {
            netns: None,
            ifname: ifname.to_string(),
            netns_path: Some(path.to_path_buf()),
        }
    }

    /// The interface's MAC now (it may have been changed since plugging).
    pub fn mac(&self) -> Option<crate::wire::MacAddr> {
        if let Some(path) = &self.netns_path {
            let label = path.display().to_string();
            return netns::run_in_path(path, &label, || netns::link_mac(None, &self.ifname))
                .ok()?
                .ok();
        }
        netns::link_mac(self.netns.as_deref(), &self.ifname).ok()
    }
}

/// A port the CNI plugin attached: the container, and the VLAN settings
/// and flags its network config gave (journaled, so that the next start of
/// the switch attaches the container again as it was).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPort {
    pub container: ContainerRef,
    pub vlan: Option<VlanConf>,
    pub policy: Option<PortSet>,
}

/// How a port came to be.
#[derive(Debug, Clone)]
pub enum Origin {
    Port(crate::control::protocol::PortAdd),
    Plug(crate::control::protocol::NsPlug),
}

/// Everything the switch owns, keyed by port name, mirrored into the
/// journal on every change.
#[derive(Debug, Default)]
pub struct Resources {
    /// Undo lists per port (and "" for the switch itself), released in
    /// reverse order.
    owned: BTreeMap<String, Vec<Owned>>,
    pub plugs: BTreeMap<String, Plug>,
    /// Ports whose far end the switch knows (plugged namespaces, TAPs).
    pub endpoints: BTreeMap<String, Endpoint>,
    /// Interfaces of the switch's namespace read as ports, by port name.
    claims: BTreeMap<String, String>,
    /// Ports the CNI plugin attached, with their container.
    pub containers: BTreeMap<String, ContainerPort>,
    /// Container ports a previous run of this switch had, not yet attached
    /// again ([`Inner::restore_containers`](super::Inner)); journaled
    /// meanwhile, so a crash before they are back does not lose them.
    restoring: Vec<Claim>,
    /// The request each port was made with, for `config dump`.
    pub origins: BTreeMap<String, Origin>,
    /// Where to write the journal; `None` in unit tests.
    journal: Option<(PathBuf, Journal)>,
    /// A journal write failed (said once, not on every change).
    journal_failed: bool,
    /// What could not be removed; stays in the journal for `l2sw cleanup`.
    leftover: Vec<Owned>,
    /// Links expected to go with their namespace, watched by the reaper;
    /// journaled (as the switch's) until they are gone.
    reaping: Vec<Owned>,
}

impl Resources {
    /// Resources that keep `journal` at `path` up to date.
    pub fn with_journal(path: PathBuf, journal: Journal) -> Resources {
        let mut r = Resources {
            journal: Some((path, journal)),
            ..Resources::default()
        };
        r.persist();
        r
    }

    /// Rewrites the journal from the current state.
    fn persist(&mut self) {
        let Some((path, j)) = &mut self.journal else {
            return;
        };
        j.created = self
            .owned
            .iter()
            .flat_map(|(owner, list)| {
                list.iter().map(|o| JournalEntry {
                    owner: owner.clone(),
                    what: o.clone(),
                })
            })
            .chain(
                self.leftover
                    .iter()
                    .chain(&self.reaping)
                    .map(|o| JournalEntry {
                        owner: SWITCH_OWNER.into(),
                        what: o.clone(),
                    }),
            )
            .collect();
        j.ports = self
            .claims
            .iter()
            .map(|(port, ifname)| {
                let c = self.containers.get(port);
                Claim {
                    port: port.clone(),
                    ifname: ifname.clone(),
                    container: c.map(|c| c.container.clone()),
                    vlan: c.and_then(|c| c.vlan.clone()),
                    policy: c.and_then(|c| c.policy.clone()),
                }
            })
            .chain(self.restoring.iter().cloned())
            .collect();
        match j.write(path) {
            Ok(()) => self.journal_failed = false,
            Err(e) if !self.journal_failed => {
                eprintln!("l2sw: {e}; a crash now would leave things `l2sw cleanup` cannot find");
                self.journal_failed = true;
            }
            Err(_) => {}
        }
    }

    /// Records that `o` was created for `owner` (a port name, or "" for the
    /// switch), before anything else can fail.
    pub fn push_owned(&mut self, owner: &str, o: Owned) {
        self.owned.entry(owner.to_string()).or_default().push(o);
        self.persist();
    }

    /// Hands a namespace adopted from a dead predecessor to port `owner`:
    /// true when `ns` was one (the port then owns it as if it created it).
    pub fn take_adopted(&mut self, ns: &str, owner: &str) -> bool {
        let want = Owned::netns(ns);
        let Some(list) = self.owned.get_mut(SWITCH_OWNER) else {
            return false;
        };
        let Some(i) = list.iter().position(|o| *o == want) else {
            return false;
        };
        list.remove(i);
        // First in the port's list: released last, after its links.
        self.owned
            .entry(owner.to_string())
            .or_default()
            .insert(0, want);
        self.persist();
        true
    }

    /// Releases what `port` owns except namespaces: its device vanished,
    /// but the user may still be looking into the namespace, which goes
    /// with `ns unplug` or at shutdown.
    pub fn release_port_keeping_namespaces(&mut self, port: &str) -> Vec<String> {
        let list = self.owned.remove(port).unwrap_or_default();
        let (ns, rest): (Vec<Owned>, Vec<Owned>) = list
            .into_iter()
            .partition(|o| matches!(o, Owned::Netns { .. }));
        self.owned.insert(port.to_string(), rest);
        let errors = self.release_port(port);
        if !ns.is_empty() {
            self.owned.insert(port.to_string(), ns);
            self.persist();
        }
        errors
    }

    /// Takes link `ifname` out of `port`'s undo list onto the reaping list
    /// (still journaled): the caller deletes the namespace holding its
    /// peer, which removes it, and hands it to the reaper. False when
    /// `port` does not own that link.
    pub fn defer_link(&mut self, port: &str, ifname: &str) -> bool {
        let want = Owned::link(ifname);
        let Some(list) = self.owned.get_mut(port) else {
            return false;
        };
        let Some(i) = list.iter().position(|o| *o == want) else {
            return false;
        };
        list.remove(i);
        self.reaping.push(want);
        // No journal write here: the caller's release_port writes it.
        true
    }

    /// The reaper is done with `o`: gone, or `err` says why it is not (it
    /// then stays in the journal for `l2sw cleanup`).
    pub fn reaped(&mut self, o: &Owned, err: Option<String>) {
        self.reaping.retain(|r| r != o);
        if let Some(e) = err {
            eprintln!("l2sw: {e}");
            self.leftover.push(o.clone());
        }
        self.persist();
    }

    /// Container ports of a previous run, to be attached again.
    pub fn set_restoring(&mut self, claims: Vec<Claim>) {
        self.restoring = claims;
        self.persist();
    }

    /// What [`set_restoring`](Self::set_restoring) left to do.
    pub fn restoring(&self) -> Vec<Claim> {
        self.restoring.clone()
    }

    /// The container port on `ifname` is attached again, or will not be.
    pub fn restored(&mut self, ifname: &str) {
        self.restoring.retain(|c| c.ifname != ifname);
        self.persist();
    }

    /// Records that `port` reads interface `ifname` of the switch's namespace.
    pub fn claim(&mut self, port: &str, ifname: &str) {
        self.claims.insert(port.to_string(), ifname.to_string());
        self.persist();
    }

    /// Releases what `port` owns, last created first; returns failures.
    pub fn release_port(&mut self, port: &str) -> Vec<String> {
        let mut errors = Vec::new();
        self.endpoints.remove(port);
        self.claims.remove(port);
        self.containers.remove(port);
        self.origins.remove(port);
        if let Some(list) = self.owned.remove(port) {
            for o in list.iter().rev() {
                if let Some(e) = o.release() {
                    errors.push(e);
                    self.leftover.push(o.clone());
                }
            }
        }
        self.persist();
        errors
    }

    /// Releases everything but the switch's own entries (at shutdown, which
    /// then calls [`finish`](Self::finish)).
    pub fn release_all(&mut self) -> Vec<String> {
        let ports: Vec<String> = self
            .owned
            .keys()
            .filter(|k| k.as_str() != SWITCH_OWNER)
            .cloned()
            .collect();
        let mut errors = Vec::new();
        for p in ports {
            errors.extend(self.release_port(&p));
        }
        self.plugs.clear();
        errors
    }

    /// Releases the switch's own entries and removes the journal, unless
    /// something could not be removed (then the journal keeps it for
    /// `l2sw cleanup`).
    ///
    /// Container ports stay in the journal, marked `stopped`: their veths
    /// belong to the containers (which keep them, unconnected, while the
    /// switch is down), and the next start attaches them again.
    pub fn finish(&mut self, mut errors: Vec<String>) -> Vec<String> {
        let containers = !self.containers.is_empty() || !self.restoring.is_empty();
        if let Some((_, j)) = &mut self.journal {
            j.stopped = containers;
        }
        errors.extend(self.release_port(SWITCH_OWNER));
        if let Some((path, _)) = &self.journal {
            if self.leftover.is_empty() && self.reaping.is_empty() && !containers {
                let _ = std::fs::remove_file(path);
            }
        }
        errors
    }
}
