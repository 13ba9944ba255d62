//! The dataplane thread's state: the forwarding core, the open ports and
//! their counters, and the per-feature components (`components/`). It
//! imports no stage: what runs once a second is `housekeeping.rs`.

use std::collections::HashMap;
use std::os::fd::RawFd;

use crossbeam_channel::Sender;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::components::flow_table::FastPath;
use super::components::monitors::Monitors;
use super::components::port_entry::PortEntry;
use super::meta::DataplaneEvent;
use super::rate_limit::RateLimit;
use super::readers::ActiveReader;
use super::snapshot::RemovedPort;
use crate::observe::{LatencyHistogram, PortCounters};
use crate::switch::{DropReason, PortId, Switch, Timestamp};

/// How many self-removed ports `stats` remembers.
const REMOVED_HISTORY: usize = 32;

/// A request, run on the dataplane thread between batches.
pub type Job = Box<dyn FnOnce(&mut State) + Send>;

pub struct State {
    pub switch: Switch,
    pub ports: Vec<Option<PortEntry>>,
    registry: Registry,
    /// Counters of ports that are gone, so totals do not go backwards.
    pub departed: PortCounters,
    pub removed: Vec<RemovedPort>,
    events: Sender<DataplaneEvent>,
    pub started: Timestamp,
    pub stop: bool,
    pub log_limit: RateLimit,
    /// Capture and live-trace readers.
    pub readers: Vec<ActiveReader>,
    pub next_reader_id: u64,
    /// `l2sw monitor` readers.
    pub monitors: Monitors,
    /// Id of the next received frame (capture records and traces share it).
    pub next_packet_id: u64,
    /// Residence times per (ingress, egress) pair, made when a pair first
    /// carries a frame (each histogram is ~200 KiB).
    pub pairs: HashMap<(PortId, PortId), LatencyHistogram>,
    /// The kernel fast path: attached ports and installed plans.
    pub fastpath: FastPath,
    /// Ports with an impairment slot: the event loop looks at impairment
    /// queues only while this is not 0.
    pub impaired: usize,
}

/// Tokens: 0 is the waker, port `id` is `id + 1`.
pub const WAKER_TOKEN: Token = Token(0);

/// The impairment timer's token, beyond every port's.
pub const TIMER_TOKEN: Token = Token(usize::MAX);

pub fn port_token(id: PortId) -> Token {
    Token(id.index() + 1)
}

pub fn token_port(t: Token) -> Option<PortId> {
    t.0.checked_sub(1).map(|i| PortId(i as u16))
}

impl State {
    pub fn new(switch: Switch, registry: Registry, events: Sender<DataplaneEvent>) -> State {
        State {
            switch,
            ports: Vec::new(),
            registry,
            departed: PortCounters::default(),
            removed: Vec::new(),
            events,
            started: Timestamp::now(),
            stop: false,
            log_limit: RateLimit::new(10),
            readers: Vec::new(),
            next_reader_id: 1,
            monitors: Monitors::default(),
            next_packet_id: 1,
            pairs: HashMap::new(),
            fastpath: FastPath::default(),
            impaired: 0,
        }
    }

    pub fn find(&self, name: &str) -> Option<PortId> {
        self.ports.iter().enumerate().find_map(|(i, p)| {
            p.as_ref()
                .filter(|e| e.meta.name == name)
                .map(|_| PortId(i as u16))
        })
    }

    pub fn entry(&self, id: PortId) -> Option<&PortEntry> {
        self.ports.get(id.index()).and_then(|p| p.as_ref())
    }

    pub fn name_of(&self, id: PortId) -> String {
        self.entry(id)
            .map(|e| e.meta.name.clone())
            .unwrap_or_else(|| format!("#{}", id.0))
    }

    pub fn register(&self, fd: RawFd, id: PortId) -> std::io::Result<()> {
        self.registry
            .register(&mut SourceFd(&fd), port_token(id), Interest::READABLE)
    }

    pub fn insert(&mut self, id: PortId, entry: PortEntry) {
        let i = id.index();
        if self.ports.len() <= i {
            self.ports.resize_with(i + 1, || None);
        }
        self.ports[i] = Some(entry);
    }

    /// Takes a port out of the switch: unregisters it, flushes its FDB
    /// entries, keeps its counters in the totals.
    pub fn take(&mut self, id: PortId) -> Option<PortEntry> {
        // Out of the fast path first, so its last counts land on the port.
        self.fastpath.detach(id, &mut self.ports);
        self.fastpath_flush();
        let entry = self.ports.get_mut(id.index())?.take()?;
        if entry.impair.is_some() {
            self.impaired -= 1;
        }
        let fd = entry.port.raw_fd();
        // Already closed or never registered: nothing to undo.
        let _ = self.registry.deregister(&mut SourceFd(&fd));
        let _ = self.switch.remove_port(id);
        self.departed.merge(&entry.counters);
        self.pairs.retain(|(a, b), _| *a != id && *b != id);
        Some(entry)
    }

    /// Names by port id, for explanations.
    pub fn names(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| p.as_ref().map(|e| e.meta.name.clone()).unwrap_or_default())
            .collect()
    }

    /// Removes a port whose device is gone, and tells whoever listens.
    pub fn remove_vanished(&mut self, id: PortId, reason: String) {
        if let Some(entry) = self.take(id) {
            let name = entry.meta.name.clone();
            eprintln!("l2sw: port {name} removed: {reason}");
            if self.removed.len() == REMOVED_HISTORY {
                self.removed.remove(0);
            }
            self.removed.push(RemovedPort {
                name: name.clone(),
                reason: reason.clone(),
                at_s: Timestamp::now().since(self.started).as_secs(),
            });
            let (port, why) = (name.clone(), reason.clone());
            self.monitors
                .emit(|| crate::observe::events::SwitchEvent::PortVanished { port, reason: why });
            // The listener may be gone at shutdown; the port is removed anyway.
            let _ = self.events.send(DataplaneEvent::PortRemoved {
                name,
                netns: entry.meta.netns.clone(),
                reason,
            });
        }
    }

    /// Adds to `ready` every port whose receive ring holds frames. True when
    /// every port has a ring, so nothing is missed without epoll.
    pub fn rx_waiting(&self, ready: &mut Vec<PortId>) -> bool {
        let mut all = true;
        for (i, e) in self.ports.iter().enumerate() {
            let Some(e) = e else { continue };
            match e.port.rx_waiting() {
                Some(true) => {
                    let id = PortId(i as u16);
                    if !ready.contains(&id) {
                        ready.push(id);
                    }
                }
                Some(false) => {}
                None => all = false,
            }
        }
        all
    }

    /// Moves the kernel's receive-queue drop counts into the port counters.
    pub fn collect_kernel_drops(&mut self) {
        for e in self.ports.iter_mut().flatten() {
            let lost = e.port.take_kernel_drops();
            e.counters.drops.add(DropReason::RxQueueFull, lost);
            let f = e.port.take_framing_drops();
            e.counters.drops.add(DropReason::BadLength, f.bad_length);
            e.counters.drops.add(DropReason::RxOversized, f.oversized);
            e.counters
                .drops
                .add(DropReason::PeerGoneMidFrame, f.cut_short);
            e.counters.drops.add(DropReason::ForeignSender, f.foreign);
            e.counters
                .drops
                .add(DropReason::EgressDown, f.held_lost_down);
            e.counters
                .drops
                .add(DropReason::EgressTooBig, f.held_too_big);
        }
    }

    /// Takes out every fast-path entry: called by every request that
    /// changes forwarding state, before it returns.
    pub fn fastpath_flush(&mut self) {
        self.fastpath.flush(&mut self.ports);
    }
}
