//! Who may use a switch's control socket.
//!
//! Two locks, one policy. The socket file is `0600` owned by the switch's
//! user (root) by default, or `0660` with group `--group NAME`, so the
//! kernel refuses everyone else at `connect`. Then each accepted connection
//! is checked again with the peer's credentials (`SO_PEERCRED`,
//! `SO_PEERGROUPS`): if the file's mode was loosened by hand or by a tool,
//! a peer outside the policy still gets a refusal, and the refusal is
//! logged (rate-limited, so a local user cannot flood the log).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::sys::{self, PeerCred};

/// The socket's access policy: root (and the switch's own user) always; a
/// group's members if one was named.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Access {
    /// `(name, gid)` of the group allowed besides root.
    pub group: Option<(String, u32)>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("--group {0}: no such group (see `getent group`)")]
    NoSuchGroup(String),
    #[error("--group {name}: cannot look the group up: {source}")]
    Lookup {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set the owner or mode of control socket {path}: {source}")]
    Permissions {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Access {
    /// Root only.
    pub fn root_only() -> Access {
        Access::default()
    }

    /// Root and the members of group `name`.
    pub fn with_group(name: &str) -> Result<Access, AccessError> {
        match sys::group_gid(name) {
            Ok(Some(gid)) => Ok(Access {
                group: Some((name.to_string(), gid)),
            }),
            Ok(None) => Err(AccessError::NoSuchGroup(name.to_string())),
            Err(source) => Err(AccessError::Lookup {
                name: name.to_string(),
                source,
            }),
        }
    }

    /// Gives the socket file the owner and mode of the policy.
    pub fn apply_to_socket(&self, path: &Path) -> Result<(), AccessError> {
        let err = |source| AccessError::Permissions {
            path: path.to_path_buf(),
            source,
        };
        let mode = match &self.group {
            Some((_, gid)) => {
                std::os::unix::fs::chown(path, None, Some(*gid)).map_err(err)?;
                0o660
            }
            None => 0o600,
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)
    }

    /// Whether a peer with these credentials may send requests.
    pub fn permits(&self, cred: &PeerCred, groups: &[u32]) -> bool {
        if cred.uid == 0 || cred.uid == sys::euid() {
            return true;
        }
        match &self.group {
            Some((_, gid)) => cred.gid == *gid || groups.contains(gid),
            None => false,
        }
    }

    /// What a refused peer is told.
    pub fn refusal(&self, switch: &str, cred: &PeerCred) -> String {
        let who = format!("uid {} (gid {})", cred.uid, cred.gid);
        match &self.group {
            Some((g, _)) => format!(
                "permission denied: {who} may not use the control socket of switch {switch}: \
                 only root and members of group {g} may"
            ),
            None => format!(
                "permission denied: {who} may not use the control socket of switch {switch}: \
                 it is root-only (start the switch with `run --group NAME` to let a group in)"
            ),
        }
    }

    /// Checks an accepted connection. `Err` holds the message for the peer;
    /// the refusal has been logged.
    pub fn check(&self, switch: &str, stream: &UnixStream, log: &RefusalLog) -> Result<(), String> {
        let cred = match sys::peer_cred(stream) {
            Ok(c) => c,
            Err(e) => {
                log.note(|| format!("control: cannot read the peer's credentials ({e}); refused"));
                return Err(format!("permission denied: cannot tell who you are ({e})"));
            }
        };
        // Without the supplementary groups only the primary group counts.
        let groups = sys::peer_groups(stream).unwrap_or_default();
        if self.permits(&cred, &groups) {
            return Ok(());
        }
        log.note(|| {
            format!(
                "control: refused a client: pid {} uid {} gid {} (not root{})",
                cred.pid,
                cred.uid,
                cred.gid,
                match &self.group {
                    Some((g, _)) => format!(", not in group {g}"),
                    None => String::new(),
                }
            )
        });
        Err(self.refusal(switch, &cred))
    }
}

/// Refusal log lines, at most `PER_WINDOW` per ten seconds; the count of
/// the ones left out goes with the next line written.
#[derive(Debug)]
pub struct RefusalLog {
    state: Mutex<(Instant, u32, u64)>,
}

impl RefusalLog {
    const PER_WINDOW: u32 = 5;
    const WINDOW: Duration = Duration::from_secs(10);

    pub fn new() -> RefusalLog {
        RefusalLog {
            state: Mutex::new((Instant::now(), 0, 0)),
        }
    }

    /// Writes the line `line()` makes to stderr unless the budget is spent.
    pub fn note(&self, line: impl FnOnce() -> String) {
        if let Some(msg) = self.admit(Instant::now(), line) {
            eprintln!("l2sw: {msg}");
        }
    }

    fn admit(&self, now: Instant, line: impl FnOnce() -> String) -> Option<String> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(s.0) >= Self::WINDOW {
            *s = (now, 0, s.2);
        }
        if s.1 >= Self::PER_WINDOW {
            s.2 += 1;
            return None;
        }
        s.1 += 1;
        let left_out = std::mem::take(&mut s.2);
        let mut msg = line();
        if left_out > 0 {
            msg.push_str(&format!(" ({left_out} similar lines left out)"));
        }
        Some(msg)
    }
}

impl Default for RefusalLog {
    fn default() -> Self {
        RefusalLog::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(uid: u32, gid: u32) -> PeerCred {
        PeerCred { pid: 1, uid, gid }
    }

    #[test]
    fn root_only_refuses_everyone_else() {
        let a = Access::root_only();
        assert!(a.permits(&cred(0, 0), &[]));
        assert!(!a.permits(&cred(65534, 65534), &[100]));
        let msg = a.refusal("sw1", &cred(65534, 65534));
        assert!(
            msg.contains("uid 65534") && msg.contains("root-only"),
            "{msg}"
        );
    }

    #[test]
    fn a_group_lets_its_members_in_by_primary_or_supplementary_gid() {
        let a = Access {
            group: Some(("users".into(), 100)),
        };
        assert!(a.permits(&cred(1000, 100), &[]));
        assert!(a.permits(&cred(1000, 1000), &[4, 100]));
        assert!(!a.permits(&cred(1000, 1000), &[4, 27]));
        assert!(a.refusal("sw1", &cred(1000, 1000)).contains("group users"));
    }

    #[test]
    fn unknown_groups_are_named_in_the_error() {
        let e = Access::with_group("no-such-group-l2sw").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--group no-such-group-l2sw: no such group (see `getent group`)"
        );
    }

    #[test]
    fn the_refusal_log_is_rate_limited_and_says_what_it_left_out() {
        let log = RefusalLog::new();
        let t0 = Instant::now();
        let written: Vec<_> = (0..20)
            .filter_map(|i| log.admit(t0, || format!("line {i}")))
            .collect();
        assert_eq!(written.len(), RefusalLog::PER_WINDOW as usize);
        let later = log.admit(t0 + RefusalLog::WINDOW, || "again".into());
        assert_eq!(later.as_deref(), Some("again (15 similar lines left out)"));
    }
}
