//! Monitors: readers of switch events (`l2sw monitor`). Like the capture
//! taps, each gets a bounded channel the dataplane `try_send`s to; a full
//! channel costs the event, counted, never a wait. With nobody listening an
//! event costs one emptiness check: nothing is built.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::state::State;
use crate::observe::events::{EventRecord, FullLimit, SwitchEvent};
use crate::switch::{Decision, LearnOutcome, PortId};

/// Events a reader may fall behind by before the dataplane skips.
pub const MONITOR_QUEUE: usize = 4096;

struct Subscriber {
    id: u64,
    tx: Sender<EventRecord>,
    missed: Arc<AtomicU64>,
}

/// The reader's end.
pub struct MonitorHandle {
    pub id: u64,
    pub events: Receiver<EventRecord>,
    /// Events skipped because the channel was full.
    pub missed: Arc<AtomicU64>,
}

/// Every monitor of one switch, held by the dataplane thread.
#[derive(Default)]
pub struct Monitors {
    subs: Vec<Subscriber>,
    next_id: u64,
    /// The last refused (MAC, VLAN): a station sending on into a full FDB
    /// is reported once, not once per frame.
    last_refused: Option<(crate::wire::MacAddr, u16)>,
    /// Link state per port as last seen, for link-up/link-down.
    links: HashMap<PortId, bool>,
}

impl Monitors {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    pub fn subscribe(&mut self) -> MonitorHandle {
        let (tx, rx) = crossbeam_channel::bounded(MONITOR_QUEUE);
        self.next_id += 1;
        let missed = Arc::new(AtomicU64::new(0));
        self.subs.push(Subscriber {
            id: self.next_id,
            tx,
            missed: missed.clone(),
        });
        MonitorHandle {
            id: self.next_id,
            events: rx,
            missed,
        }
    }

    pub fn unsubscribe(&mut self, id: u64) {
        self.subs.retain(|s| s.id != id);
        if self.subs.is_empty() {
            self.links.clear();
            self.last_refused = None;
        }
    }

    /// Hands `event` to every monitor; builds it only if there is one.
    pub fn emit(&mut self, event: impl FnOnce() -> SwitchEvent) {
        if self.subs.is_empty() {
            return;
        }
        let rec = EventRecord::new(event());
        self.subs.retain(|s| match s.tx.try_send(rec.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                s.missed.fetch_add(1, Ordering::Relaxed);
                true
            }
            // The reader left.
            Err(TrySendError::Disconnected(_)) => false,
        });
    }
}

/// The FDB side of a decision just applied: learned, moved, refused.
pub fn on_decision(st: &mut State, ingress: PortId, d: &Decision) {
    let Some(mac) = d.src else { return };
    let vlan = d.vlan;
    let refused = |limit| {
        move |st: &mut State| {
            if st.monitors.last_refused == Some((mac, vlan)) {
                return;
            }
            st.monitors.last_refused = Some((mac, vlan));
            let port = st.name_of(ingress);
            st.monitors.emit(|| SwitchEvent::FdbFull {
                mac,
                vlan,
                port,
                limit,
            });
        }
    };
    match d.learn {
        LearnOutcome::New => {
            let port = st.name_of(ingress);
            st.monitors
                .emit(|| SwitchEvent::Learned { mac, vlan, port });
        }
        LearnOutcome::Moved { from } => {
            let (from, to) = (st.name_of(from), st.name_of(ingress));
            st.monitors.emit(|| SwitchEvent::Moved {
                mac,
                vlan,
                from,
                to,
            });
        }
        LearnOutcome::RefusedFull => refused(FullLimit::Switch)(st),
        LearnOutcome::RefusedPortLimit => refused(FullLimit::Port)(st),
        LearnOutcome::Refreshed | LearnOutcome::Static { .. } | LearnOutcome::NotLearned => {}
    }
}

/// Compares every port's link state with the last seen (housekeeping, once
/// a second, only while someone listens). Ports whose device the switch
/// does not see (a TAP moved into a namespace) are always up; a socket
/// port's link is its peer being connected.
pub fn check_links(st: &mut State) {
    if st.monitors.is_empty() {
        return;
    }
    let mut changes = Vec::new();
    for (i, e) in st.ports.iter().enumerate() {
        let Some(e) = e else { continue };
        let info = e.port.info();
        // A VM behind a socket (stream, dgram, vhost-user) is the port's
        // link: QEMU going away is a link going down.
        let up = match (&info.peer, info.ifindex) {
            (Some(peer), _) => peer.connected,
            (None, None) => continue,
            (None, Some(_)) => match crate::port::sys::netdev::is_running(&info.ifname) {
                Ok(up) => up,
                Err(_) => continue,
            },
        };
        let id = PortId(i as u16);
        match st.monitors.links.insert(id, up) {
            Some(before) if before != up => changes.push((e.meta.name.clone(), up)),
            _ => {}
        }
    }
    st.monitors
        .links
        .retain(|id, _| st.ports.get(id.index()).is_some_and(|p| p.is_some()));
    for (port, up) in changes {
        st.monitors.emit(|| {
            if up {
                SwitchEvent::LinkUp { port }
            } else {
                SwitchEvent::LinkDown { port }
            }
        });
    }
}
