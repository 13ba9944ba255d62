//! `Owned`: one thing a running switch created and must remove again (a
//! link, a persistent TAP, a namespace, the socket file), as the journal
//! lists it and `Resources` keeps it. In a file of its own so that both
//! `journal` and `resources` can name it without importing each other.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::netns;
use crate::port::tap;

/// One thing the switch created and must undo: what the journal lists.
/// A new kind of resource (e.g. a BPF attachment) is a new variant with its
/// `release`, `exists` and `describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Owned {
    /// A link in the switch's namespace (deleting a veth end deletes its peer).
    Link { ifname: String },
    /// A persistent TAP left for a VM.
    PersistentTap { ifname: String },
    /// A namespace the switch created.
    Netns { name: String },
    /// The control socket file.
    SocketFile { path: PathBuf },
}

impl Owned {
    pub fn link(ifname: &str) -> Owned {
        Owned::Link {
            ifname: ifname.to_string(),
        }
    }

    pub fn netns(name: &str) -> Owned {
        Owned::Netns {
            name: name.to_string(),
        }
    }

    /// Whether it is still there.
    pub fn exists(&self) -> bool {
        match self {
            Owned::Link { ifname } | Owned::PersistentTap { ifname } => {
                netns::link_exists(None, ifname)
            }
            Owned::Netns { name } => netns::exists(name),
            Owned::SocketFile { path } => path.exists(),
        }
    }

    /// "link l2v1234abcd", "namespace red", ...
    pub fn describe(&self) -> String {
        match self {
            Owned::Link { ifname } => format!("link {ifname}"),
            Owned::PersistentTap { ifname } => format!("TAP {ifname}"),
            Owned::Netns { name } => format!("namespace {name}"),
            Owned::SocketFile { path } => format!("socket {}", path.display()),
        }
    }

    /// Removes the resource; returns a message for anything that failed.
    pub fn release(&self) -> Option<String> {
        let r = match self {
            Owned::Link { ifname } => {
                if !netns::link_exists(None, ifname) {
                    return None;
                }
                netns::delete_link(None, ifname).map_err(|e| e.to_string())
            }
            Owned::PersistentTap { ifname } => {
                if !netns::link_exists(None, ifname) {
                    return None;
                }
                tap::delete_persistent_tap(ifname)
                    .map_err(|e| e.to_string())
                    // A VM still holds the queue: delete the netdev outright.
                    .or_else(|_| netns::delete_link(None, ifname).map_err(|e| e.to_string()))
            }
            Owned::Netns { name } => {
                if !netns::exists(name) {
                    return None;
                }
                netns::delete(name).map_err(|e| e.to_string())
            }
            Owned::SocketFile { path } => match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(format!("cannot remove {}: {e}", path.display()))
                }
                _ => Ok(()),
            },
        };
        r.err()
    }
}
