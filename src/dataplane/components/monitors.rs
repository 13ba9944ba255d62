//! The monitors of one switch as data: every reader of switch events
//! (`l2sw monitor`) with its bounded channel, and what the event stream
//! remembers between events. Each reader's channel is `try_send`ed to; a
//! full channel costs the event, counted, never a wait. With nobody
//! listening an event costs one emptiness check: nothing is built. Which
//! events a decision or a link change makes is `dataplane/monitor.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::observe::events::{EventRecord, SwitchEvent};
use crate::switch::PortId;

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
    pub(in crate::dataplane) last_refused: Option<(crate::wire::MacAddr, u16)>,
    /// Link state per port as last seen, for link-up/link-down.
    pub(in crate::dataplane) links: HashMap<PortId, bool>,
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
