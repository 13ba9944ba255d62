//! What a running switch created and must remove again: links, persistent
//! TAPs, namespaces, and the record of which namespace is plugged how.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::control::protocol::Via;
use crate::netns::{self, Cidr};
use crate::port::tap;

/// One thing to undo when a port goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owned {
    /// A link in the switch's namespace (deleting a veth end deletes its peer).
    Link(String),
    /// A persistent TAP left for a VM.
    PersistentTap(String),
    /// A namespace the switch created.
    Netns(String),
}

impl Owned {
    /// Removes the resource; returns a message for anything that failed.
    pub fn release(&self) -> Option<String> {
        let r = match self {
            Owned::Link(name) => {
                if !netns::link_exists(None, name) {
                    return None;
                }
                netns::delete_link(None, name).map_err(|e| e.to_string())
            }
            Owned::PersistentTap(name) => {
                if !netns::link_exists(None, name) {
                    return None;
                }
                tap::delete_persistent_tap(name)
                    .map_err(|e| e.to_string())
                    // A VM still holds the queue: delete the netdev outright.
                    .or_else(|_| netns::delete_link(None, name).map_err(|e| e.to_string()))
            }
            Owned::Netns(name) => {
                if !netns::exists(name) {
                    return None;
                }
                netns::delete(name).map_err(|e| e.to_string())
            }
        };
        r.err()
    }
}

/// A plugged namespace, as `ns list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Plug {
    pub ns: String,
    pub via: Via,
    /// The switch port (named after the namespace).
    pub port: String,
    /// The interface inside the namespace.
    pub ifname: String,
    /// The switch-side interface (veth host end), if any.
    pub host_ifname: Option<String>,
    pub ip: Vec<Cidr>,
    pub created_netns: bool,
    /// The port was removed because its device vanished.
    pub port_vanished: bool,
}

/// The interface stations behind a port send from: its MAC is the one the
/// FDB learns, so `port list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub netns: Option<String>,
    pub ifname: String,
}

impl Endpoint {
    pub fn new(netns: Option<&str>, ifname: &str) -> Endpoint {
        Endpoint {
            netns: netns.map(str::to_string),
            ifname: ifname.to_string(),
        }
    }

    /// The interface's MAC now (it may have been changed since plugging).
    pub fn mac(&self) -> Option<crate::wire::MacAddr> {
        netns::link_mac(self.netns.as_deref(), &self.ifname).ok()
    }
}

/// Everything the switch owns, keyed by port name.
#[derive(Debug, Default)]
pub struct Resources {
    /// Undo lists per port, released in reverse order.
    pub owned: BTreeMap<String, Vec<Owned>>,
    pub plugs: BTreeMap<String, Plug>,
    /// Ports whose far end the switch knows (plugged namespaces, TAPs).
    pub endpoints: BTreeMap<String, Endpoint>,
}

impl Resources {
    /// Releases what `port` owns, last created first; logs failures.
    pub fn release_port(&mut self, port: &str) -> Vec<String> {
        let mut errors = Vec::new();
        self.endpoints.remove(port);
        if let Some(list) = self.owned.remove(port) {
            for o in list.iter().rev() {
                if let Some(e) = o.release() {
                    errors.push(e);
                }
            }
        }
        errors
    }

    /// Releases everything (at shutdown).
    pub fn release_all(&mut self) -> Vec<String> {
        let ports: Vec<String> = self.owned.keys().cloned().collect();
        let mut errors = Vec::new();
        for p in ports {
            errors.extend(self.release_port(&p));
        }
        self.plugs.clear();
        errors
    }
}
