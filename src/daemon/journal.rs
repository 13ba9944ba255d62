//! The journal: `RUN_DIR/NAME.state`, a JSON record of everything a running
//! switch created (namespaces, links, persistent TAPs, its socket file) and
//! of the interfaces it reads as ports. It is rewritten (temporary file, then
//! rename) every time that set changes, so after a SIGKILL or a crash the
//! next start of the same name, or `l2sw cleanup`, knows exactly what to
//! remove, and never touches anything the switch did not create.
//!
//! Other switches read it too: an interface that is a port of a running
//! switch is refused by the others. Starts and port claims take an advisory
//! lock on `RUN_DIR/.lock` so two switches cannot claim one interface at once.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::owned::Owned;

/// Bumped when the format changes in a way older readers cannot follow.
pub const JOURNAL_VERSION: u32 = 1;

/// The owner of what belongs to the switch rather than to one port (its
/// socket file, namespaces adopted from a dead predecessor). Not a valid
/// port name, so it cannot clash with one.
pub const SWITCH_OWNER: &str = "";

/// One thing the switch created, and which port it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The port it was made for, or "" for the switch itself.
    pub owner: String,
    #[serde(flatten)]
    pub what: Owned,
}

/// An interface in the switch's namespace that the switch reads as a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub port: String,
    pub ifname: String,
    /// The container a CNI plugin attached through this interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<crate::control::protocol::ContainerRef>,
    /// The container port's VLAN settings and flags as its network config
    /// gave them (`container-attach`), so that the next start of the switch
    /// attaches the container again as it was (`restore` in `containers.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<crate::control::protocol::VlanConf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::control::protocol::PortSet>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub version: u32,
    pub name: String,
    pub pid: u32,
    /// The process's start time (field 22 of /proc/PID/stat), so a pid the
    /// kernel gave to another process since is not mistaken for the switch.
    #[serde(default)]
    pub start_time: u64,
    pub socket: PathBuf,
    /// In creation order; released last first.
    #[serde(default)]
    pub created: Vec<JournalEntry>,
    #[serde(default)]
    pub ports: Vec<Claim>,
    /// The switch stopped cleanly and removed what it created; the journal
    /// stays only for the container ports in `ports`, which the next start
    /// of this name attaches again (their veths belong to the containers).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot read journal {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("journal {path} is not valid: {msg}")]
    Parse { path: PathBuf, msg: String },
    #[error("cannot write journal {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The journal of switch `name` under `run_dir`.
pub fn journal_path(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(format!("{name}.state"))
}

/// Start time of process `pid`, if it exists and has not exited (a zombie
/// waiting for its parent counts as gone).
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // fields from the last ')'. The state is field 3, starttime field 22.
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    if matches!(rest.next()?, "Z" | "X" | "x") {
        return None;
    }
    rest.nth(18)?.parse().ok()
}

impl Journal {
    /// A fresh journal for this process.
    pub fn new(name: &str, socket: &Path) -> Journal {
        let pid = std::process::id();
        Journal {
            version: JOURNAL_VERSION,
            name: name.to_string(),
            pid,
            start_time: process_start_time(pid).unwrap_or(0),
            socket: socket.to_path_buf(),
            created: Vec::new(),
            ports: Vec::new(),
            stopped: false,
        }
    }

    /// Reads a journal; `Ok(None)` when there is none.
    pub fn read(path: &Path) -> Result<Option<Journal>, JournalError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(JournalError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let j: Journal = serde_json::from_str(&text).map_err(|e| JournalError::Parse {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        if j.version > JOURNAL_VERSION {
            return Err(JournalError::Parse {
                path: path.to_path_buf(),
                msg: format!(
                    "version {} is newer than this l2sw understands ({JOURNAL_VERSION})",
                    j.version
                ),
            });
        }
        Ok(Some(j))
    }

    /// Writes the journal atomically: a reader sees the old or the new
    /// file, never half of one. No fsync: what it lists (namespaces, links,
    /// TAPs, a socket) is kernel state that a power loss takes with it, and
    /// a killed process loses nothing it already wrote; the rename alone is
    /// what a crash of the switch needs. (A sync per write cost ~1-4 ms on
    /// every plug, docs/benchmarks.md.)
    pub fn write(&self, path: &Path) -> Result<(), JournalError> {
        let err = |source| JournalError::Write {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension(format!("state.tmp{}", std::process::id()));
        let text = serde_json::to_vec_pretty(self).map_err(|e| err(e.into()))?;
        let mut f = File::create(&tmp).map_err(err)?;
        f.write_all(&text).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })
    }

    /// Whether the process that wrote this journal is still running.
    pub fn is_alive(&self) -> bool {
        if self.stopped {
            return false;
        }
        if self.pid == std::process::id() {
            return true;
        }
        match process_start_time(self.pid) {
            None => false,
            Some(t) if self.start_time != 0 => t == self.start_time,
            // No start time recorded: trust the pid only if it is an l2sw.
            Some(_) => std::fs::read(format!("/proc/{}/cmdline", self.pid))
                .map(|c| String::from_utf8_lossy(&c).contains("l2sw"))
                .unwrap_or(false),
        }
    }
}

/// Every journal under `run_dir`, with the switch name each belongs to.
/// Unreadable ones are returned as errors, so callers can say so.
pub fn all_journals(run_dir: &Path) -> Vec<(String, Result<Journal, JournalError>)> {
    let Ok(dir) = std::fs::read_dir(run_dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Result<Journal, JournalError>)> = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let sw = name.strip_suffix(".state")?.to_string();
            let r = Journal::read(&e.path()).and_then(|j| {
                j.ok_or_else(|| JournalError::Parse {
                    path: e.path(),
                    msg: "vanished while being read".into(),
                })
            });
            Some((sw, r))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The switch (other than `me`) whose running instance reads `ifname`.
pub fn claimed_by_other(run_dir: &Path, me: &str, ifname: &str) -> Option<(String, String)> {
    all_journals(run_dir)
        .into_iter()
        .filter(|(sw, _)| sw != me)
        .filter_map(|(sw, j)| j.ok().map(|j| (sw, j)))
        .filter(|(_, j)| j.is_alive())
        .find_map(|(sw, j)| {
            j.ports
                .iter()
                .find(|c| c.ifname == ifname)
                .map(|c| (sw.clone(), c.port.clone()))
        })
}

/// An exclusive advisory lock on the run directory, held while a switch
/// starts (recovery) or claims an interface.
pub struct RunDirLock(#[allow(dead_code)] File);

impl RunDirLock {
    pub fn acquire(run_dir: &Path) -> Result<RunDirLock, JournalError> {
        let path = run_dir.join(".lock");
        let err = |source| JournalError::Lock {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(run_dir).map_err(err)?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(err)?;
        f.lock().map_err(err)?;
        Ok(RunDirLock(f))
    }
}

/// What recovering a dead switch's leftovers did.
#[derive(Debug, Default)]
pub struct Recovery {
    pub name: String,
    pub pid: u32,
    pub removed: Vec<String>,
    /// Namespaces kept and taken over (start of the same switch only).
    pub adopted: Vec<String>,
    /// What could not be removed, with why; kept in the new journal.
    pub failed: Vec<(JournalEntry, String)>,
    /// The switch had stopped cleanly (its journal kept container ports).
    pub stopped: bool,
    /// Container ports `l2sw cleanup` dropped from the journal: the next
    /// start no longer attaches them.
    pub forgotten: Vec<String>,
}

impl Recovery {
    /// One line for the user.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.removed.is_empty() {
            parts.push(format!("removed {}", self.removed.join(", ")));
        }
        if !self.adopted.is_empty() {
            parts.push(format!(
                "took over namespace{} {}",
                if self.adopted.len() == 1 { "" } else { "s" },
                self.adopted.join(", ")
            ));
        }
        for (e, why) in &self.failed {
            parts.push(format!("could not remove {}: {why}", e.what.describe()));
        }
        if !self.forgotten.is_empty() {
            parts.push(format!(
                "forgot its container ports {} (its next start does not attach them again)",
                self.forgotten.join(", ")
            ));
        }
        if parts.is_empty() {
            parts.push("it had left nothing behind".into());
        }
        let how = if self.stopped {
            "had stopped"
        } else {
            "had stopped without cleaning up"
        };
        format!(
            "switch {} (pid {}) {how}: {}",
            self.name,
            self.pid,
            parts.join("; ")
        )
    }
}

/// Removes what a dead switch left, last created first. With `adopt`,
/// namespaces it created are kept and handed back for the new switch to
/// own (their contents went with the links); otherwise they are removed.
pub fn recover(j: &Journal, adopt: bool) -> (Recovery, Vec<JournalEntry>) {
    let mut r = Recovery {
        name: j.name.clone(),
        pid: j.pid,
        stopped: j.stopped,
        ..Recovery::default()
    };
    let mut adopted = Vec::new();
    for e in j.created.iter().rev() {
        if let (true, Owned::Netns { name }) = (adopt, &e.what) {
            if crate::netns::exists(name) {
                r.adopted.push(name.clone());
                adopted.push(JournalEntry {
                    owner: SWITCH_OWNER.into(),
                    what: e.what.clone(),
                });
            }
            continue;
        }
        if !e.what.exists() {
            continue;
        }
        match e.what.release() {
            None => r.removed.push(e.what.describe()),
            Some(why) => r.failed.push((e.clone(), why)),
        }
    }
    r.adopted.reverse();
    (r, adopted)
}

/// What `l2sw cleanup` did for one switch.
#[derive(Debug)]
pub enum CleanupOutcome {
    /// The switch is running: nothing was touched.
    Running {
        name: String,
        pid: u32,
    },
    Cleaned(Recovery),
    /// No journal of that name.
    Nothing {
        name: String,
    },
    Unreadable {
        name: String,
        error: String,
    },
}

impl std::fmt::Display for CleanupOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CleanupOutcome::Running { name, pid } => write!(
                f,
                "switch {name} is running (pid {pid}); nothing touched (`l2sw --name {name} shutdown` stops it and cleans up)"
            ),
            CleanupOutcome::Cleaned(r) => f.write_str(&r.summary()),
            CleanupOutcome::Nothing { name } => {
                write!(f, "switch {name}: no journal, nothing to clean up")
            }
            CleanupOutcome::Unreadable { name, error } => {
                write!(f, "switch {name}: {error}; nothing touched")
            }
        }
    }
}

/// `l2sw cleanup`: for switch `name`, or every switch with a journal under
/// `run_dir`, removes what a dead instance left (namespaces included) and
/// its journal. Running switches are left alone.
pub fn cleanup(run_dir: &Path, name: Option<&str>) -> Result<Vec<CleanupOutcome>, JournalError> {
    let _lock = RunDirLock::acquire(run_dir)?;
    let targets: Vec<(String, Result<Journal, JournalError>)> = match name {
        Some(n) => {
            let path = journal_path(run_dir, n);
            match Journal::read(&path) {
                Ok(None) => return Ok(vec![CleanupOutcome::Nothing { name: n.into() }]),
                Ok(Some(j)) => vec![(n.to_string(), Ok(j))],
                Err(e) => vec![(n.to_string(), Err(e))],
            }
        }
        None => all_journals(run_dir),
    };
    let mut out = Vec::new();
    for (sw, j) in targets {
        let j = match j {
            Ok(j) => j,
            Err(e) => {
                out.push(CleanupOutcome::Unreadable {
                    name: sw,
                    error: e.to_string(),
                });
                continue;
            }
        };
        if j.is_alive() {
            out.push(CleanupOutcome::Running {
                name: sw,
                pid: j.pid,
            });
            continue;
        }
        let (mut r, _) = recover(&j, false);
        r.forgotten = j
            .ports
            .iter()
            .filter(|c| c.container.is_some())
            .map(|c| c.port.clone())
            .collect();
        let path = journal_path(run_dir, &sw);
        if r.failed.is_empty() {
            let _ = std::fs::remove_file(&path);
        } else {
            // Keep what could not be removed for the next attempt.
            let mut rest = j.clone();
            rest.created = r.failed.iter().map(|(e, _)| e.clone()).collect();
            rest.ports.clear();
            rest.write(&path)?;
        }
        out.push(CleanupOutcome::Cleaned(r));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_round_trips_and_names_its_resources() {
        let mut j = Journal::new("lab", Path::new("/run/l2sw/lab.sock"));
        j.created.push(JournalEntry {
            owner: "red".into(),
            what: Owned::Netns { name: "red".into() },
        });
        j.created.push(JournalEntry {
            owner: "red".into(),
            what: Owned::Link {
                ifname: "l2v01234567".into(),
            },
        });
        j.ports.push(Claim {
            port: "red".into(),
            ifname: "l2v01234567".into(),
            container: None,
            vlan: None,
            policy: None,
        });
        j.ports.push(Claim {
            port: "web".into(),
            ifname: "l2c0123456789ab".into(),
            container: Some(crate::control::protocol::ContainerRef {
                id: "0123456789abcdef".into(),
                netns: "/run/netns/cni-1".into(),
                ifname: "eth0".into(),
                network: "lab".into(),
            }),
            vlan: Some(crate::control::protocol::VlanConf {
                mode: "access".into(),
                tag: Some(10),
                trunks: None,
            }),
            policy: Some(crate::control::protocol::PortSet {
                max_learned: Some(crate::control::protocol::Limit::Max(8)),
                ..Default::default()
            }),
        });
        let text = serde_json::to_string(&j).unwrap();
        assert!(text.contains(r#""kind":"netns""#), "{text}");
        assert!(text.contains(r#""kind":"link""#), "{text}");
        let back: Journal = serde_json::from_str(&text).unwrap();
        assert_eq!(back, j);
        assert!(j.is_alive(), "this process wrote it");
    }

    #[test]
    fn write_is_atomic_and_read_reports_bad_files() {
        let dir = std::env::temp_dir().join(format!("l2sw-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = journal_path(&dir, "x");
        assert!(Journal::read(&path).unwrap().is_none());
        let j = Journal::new("x", &dir.join("x.sock"));
        j.write(&path).unwrap();
        assert_eq!(Journal::read(&path).unwrap(), Some(j));
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file stays");
        std::fs::write(&path, "{not json").unwrap();
        let e = Journal::read(&path).unwrap_err().to_string();
        assert!(e.contains("is not valid"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_dead_pid_is_not_alive_and_start_times_tell_reused_pids() {
        let mut j = Journal::new("x", Path::new("/x.sock"));
        j.pid = u32::MAX - 1;
        assert!(!j.is_alive());
        let mut j = Journal::new("x", Path::new("/x.sock"));
        j.pid = 1;
        j.start_time = u64::MAX;
        assert!(!j.is_alive(), "pid 1 started at another time");
    }
}
