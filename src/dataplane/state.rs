//! The dataplane thread's state: the forwarding core, the open ports and
//! their counters, and the housekeeping that runs once a second.

use std::collections::HashMap;
use std::os::fd::RawFd;

use crossbeam_channel::Sender;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::fastpath::FastPath;
use super::meta::{DataplaneEvent, PortMeta};
use super::monitor::{self, Monitors};
use super::rate_limit::RateLimit;
use super::readers::ActiveReader;
use super::snapshot::RemovedPort;
use crate::observe::{LatencyHistogram, PortCounters};
use crate::port::Port;
use crate::switch::{Cause, DropReason, PortId, Shape, Switch, Timestamp};

/// How many self-removed ports `stats` remembers.
const REMOVED_HISTORY: usize = 32;

/// A request, run on the dataplane thread between batches.
pub type Job = Box<dyn FnOnce(&mut State) + Send>;

/// A frame of the current receive batch to send on a port: one entry of
/// the frame's plan.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    /// Index into the batch.
    pub frame: u16,
    /// The bytes it leaves as (from the plan).
    pub shape: Shape,
    /// Switched or a mirror copy (from the plan; capture comments say which).
    pub cause: Cause,
    /// Which re-shaped copy of the frame carries `shape` (see `shape.rs`);
    /// `None`: the frame as received. Set once, before the sends.
    pub variant: Option<u8>,
    /// On a tunnel port: the VTEP to send it to (the core's decision).
    pub remote: Option<std::net::Ipv4Addr>,
}

/// An open port as the dataplane holds it.
pub struct PortEntry {
    pub meta: PortMeta,
    pub port: Box<dyn Port>,
    pub counters: PortCounters,
    /// Frames of the current receive batch to send on this port.
    pub pending: Vec<Pending>,
    /// Residence time of every frame sent on this port.
    pub latency: LatencyHistogram,
    /// Link impairment (`port impair`); `None` costs the hot path one check.
    pub impair: Option<Box<super::impair::ImpairSlot>>,
}

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

    /// Once a second: age the FDB, count kernel drops, check every port is
    /// still there.
    pub fn housekeeping(&mut self, now: Timestamp) {
        // Attachments of ports that vanished by themselves: the kernel has
        // detached them with the device, so closing them costs little.
        drop(self.fastpath.take_retired());
        // What the kernel carried refreshes its sources before they age.
        self.fastpath_refresh_fdb();
        let aged_n = if self.monitors.is_empty() {
            self.switch.fdb_mut().age(now)
        } else {
            let mut aged = Vec::new();
            let n = self
                .switch
                .fdb_mut()
                .age_each(now, |k, port| aged.push((k, port)));
            for (k, port) in aged {
                let port = self.name_of(port);
                self.monitors
                    .emit(|| crate::observe::events::SwitchEvent::Aged {
                        mac: k.mac,
                        vlan: k.vlan,
                        port,
                    });
            }
            n
        };
        if aged_n > 0 {
            self.fastpath_after_ageing();
        }
        self.switch.age_tunnels(now);
        super::protect::expire(self, now);
        monitor::check_links(self);
        self.readers.retain(|t| !t.finished());
        self.collect_kernel_drops();
        let mut gone = Vec::new();
        for (i, slot) in self.ports.iter_mut().enumerate() {
            if let Some(e) = slot {
                if let Err(err) = e.port.check() {
                    if err.is_vanished() {
                        gone.push((PortId(i as u16), err.to_string()));
                    }
                }
            }
        }
        for (id, why) in gone {
            self.remove_vanished(id, why);
        }
    }
}
