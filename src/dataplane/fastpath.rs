//! The dataplane's side of the fast path (`crate::fastpath`): which ports
//! carry the programs, which plans are installed, and taking plans out
//! before any change that could alter them returns.
//!
//! A plan is installed when the dataplane has just executed it for a frame
//! and it is "exactly one egress port, no mirror copy"
//! (`Plan::single_egress`) with no observer on either port, and the source
//! learned (or learning off) on the ingress port. The frame's shape at the
//! egress becomes the entry's VLAN edit: as received, pop (trunk ->
//! access), push (access -> trunk) or re-tag (pop + push), all of which the
//! kernel does on skb metadata. The key holds everything that decision read
//! from the frame (ingress device, outer tag with its priority, destination,
//! source), so a frame that differs in any of them misses and comes to user
//! space.
//!
//! Invalidation: every control request that changes forwarding state (FDB
//! add/del/flush, port add/remove, policy, settings, mirrors, a new capture
//! or trace) removes *all* entries: those events are rare, and re-learning
//! costs one user-space frame per flow. A MAC move removes the entries to
//! and from that MAC at once, on the frame that showed the move; ageing
//! removes the entries whose destination is no longer known at their egress.
//! Entries come out with lookup-and-delete, so the kernel's counts of every
//! entry land in the ports' counters without loss.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::state::{PortEntry, State};
use crate::fastpath::{monotonic_ns, FlowAction, FlowKey, FlowStats, Programs, TcxLink, VlanEdit};
use crate::observe::records::TraceStep;
use crate::port::PortKind;
use crate::switch::{EntryKind, FdbKey, LearnOutcome, Plan, PortId, Shape, Timestamp};
use crate::wire::{MacAddr, ETH_HEADER_LEN, VLAN_TAG_LEN};

/// A port the programs are attached to.
#[derive(Debug)]
pub struct Attached {
    pub ifindex: u32,
    /// Redirect to this port with `bpf_redirect_peer`.
    pub peer: bool,
    pub mtu: u32,
    _link: TcxLink,
}

/// A plan the kernel carries, as user space remembers it.
#[derive(Debug, Clone, Copy)]
pub struct Installed {
    pub ingress: PortId,
    pub egress: PortId,
    pub vlan: u16,
    pub src: MacAddr,
    pub dst: MacAddr,
    pub peer: bool,
    pub edit: VlanEdit,
    /// Bytes per frame the kernel's count (`skb->len`, the outer tag kept
    /// in metadata) misses on the wire in and out, so the ports' byte
    /// counters match what user space would have counted.
    rx_extra: u64,
    tx_extra: u64,
    /// The entry's counts already added to the ports' counters.
    folded: FlowStats,
}

/// Whether the fast path is on, and why not when it is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FastpathStatus {
    pub enabled: bool,
    /// Why it is off (`None` when on).
    pub reason: Option<String>,
    /// Ports the programs are attached to.
    pub ports: usize,
    pub entries: usize,
}

/// One installed entry, for `fastpath show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRow {
    pub ingress: String,
    pub egress: String,
    /// Outer tag's VID and TPID (`None` untagged).
    pub vlan: Option<u16>,
    pub tpid: Option<u16>,
    pub src: MacAddr,
    pub dst: MacAddr,
    /// "peer" (bpf_redirect_peer) or "redirect" (bpf_redirect).
    pub redirect: String,
    /// What the kernel does to the outer tag: "keep", "pop", "push" or
    /// "retag".
    pub vlan_edit: String,
    /// The VID of the tag "push" or "retag" writes.
    pub egress_vlan: Option<u16>,
    pub packets: u64,
    pub bytes: u64,
    /// Seconds since the kernel last carried a frame of it; `None`: never.
    pub last_seen_s: Option<f64>,
}

/// The fast path's state on the dataplane thread.
#[derive(Debug)]
pub struct FastPath {
    /// Shared with the threads attaching new ports (see [`PendingAttach`]).
    progs: Option<Arc<Programs>>,
    /// Why the fast path is off.
    off: Option<String>,
    attached: Vec<Option<Attached>>,
    /// Why a port carries no programs (by port id), when it does not.
    unattached: Vec<Option<String>>,
    flows: HashMap<FlowKey, Installed>,
    /// Attachments of departed ports, handed back with the port so the
    /// caller closes them (closing a tcx link waits for an RCU grace
    /// period, ~5-15 ms, which the dataplane thread should not).
    retired: Vec<Attached>,
}

/// Why a port carries no programs yet while its tcx link is being made.
const ATTACHING: &str = "attaching";

/// A new port's tcx attachment, made off the dataplane thread: creating a
/// tcx link waits for an RCU grace period (~5-15 ms), which neither the
/// forwarding loop nor the request that added the port should wait for.
/// Until [`FastPath::complete`] installs it, every frame of the port takes
/// the user-space path, which is always correct.
pub struct PendingAttach {
    progs: Arc<Programs>,
    id: PortId,
    ifindex: u32,
    ifname: String,
    peer: bool,
}

impl PendingAttach {
    /// Creates the tcx link (any thread); the result goes to `complete`.
    pub fn link(&self) -> Result<TcxLink, crate::fastpath::FastpathError> {
        self.progs.attach_tcx(self.ifindex, &self.ifname)
    }
}

/// Attachments of a removed port; dropping this detaches them.
#[derive(Debug, Default)]
pub struct Retired(#[allow(dead_code)] Vec<Attached>);

impl Default for FastPath {
    fn default() -> FastPath {
        FastPath {
            progs: None,
            off: Some("off (--fastpath off)".into()),
            attached: Vec::new(),
            unattached: Vec::new(),
            flows: HashMap::new(),
            retired: Vec::new(),
        }
    }
}

fn kernel_to_timestamp(ns: u64) -> Timestamp {
    let age = monotonic_ns().saturating_sub(ns);
    Timestamp(Timestamp::now().0.saturating_sub(age))
}

fn slot<T>(v: &mut Vec<Option<T>>, id: PortId) -> &mut Option<T> {
    if v.len() <= id.index() {
        v.resize_with(id.index() + 1, || None);
    }
    &mut v[id.index()]
}

impl FastPath {
    /// Loads the programs; on failure the fast path stays off with the
    /// kernel's reason (shown by `status`).
    pub fn enable(&mut self) -> Result<(), String> {
        if self.progs.is_some() {
            return Ok(());
        }
        match Programs::load() {
            Ok(p) => {
                self.progs = Some(Arc::new(p));
                self.off = None;
                Ok(())
            }
            Err(e) => {
                let why = format!("unavailable: {e}");
                self.off = Some(why.clone());
                Err(why)
            }
        }
    }

    pub fn is_on(&self) -> bool {
        self.progs.is_some()
    }

    pub fn status(&self) -> FastpathStatus {
        FastpathStatus {
            enabled: self.progs.is_some(),
            reason: self.off.clone(),
            ports: self.attached.iter().flatten().count(),
            entries: self.flows.len(),
        }
    }

    /// Attaches the programs to a new port where its kind allows: an
    /// AF_PACKET port on a device in the switch's namespace.
    pub fn attach(&mut self, id: PortId, e: &PortEntry, peer: bool) {
        let Some(progs) = &self.progs else { return };
        let info = e.port.info();
        let why = match (info.kind, info.ifindex) {
            (PortKind::Iface | PortKind::TapVm, Some(ifindex)) => {
                let res = progs
                    .attach_filter(e.port.raw_fd(), &info.ifname)
                    .and_then(|_| progs.attach_tcx(ifindex, &info.ifname));
                match res {
                    Ok(link) => {
                        *slot(&mut self.attached, id) = Some(Attached {
                            ifindex,
                            peer,
                            mtu: e.port.mtu(),
                            _link: link,
                        });
                        None
                    }
                    Err(err) => {
                        let _ = Programs::detach_filter(e.port.raw_fd(), &info.ifname);
                        Some(err.to_string())
                    }
                }
            }
            (kind, _) => Some(format!(
                "a {} port has no device in the switch's namespace to carry frames",
                kind.name()
            )),
        };
        *slot(&mut self.unattached, id) = why;
    }

    /// [`attach`](Self::attach) in two halves: marks the port "attaching"
    /// and returns what another thread needs to make the tcx link, or
    /// `None` when the port cannot carry the programs (reason recorded).
    pub fn attach_later(&mut self, id: PortId, e: &PortEntry, peer: bool) -> Option<PendingAttach> {
        let progs = self.progs.clone()?;
        let info = e.port.info();
        match (info.kind, info.ifindex) {
            (PortKind::Iface | PortKind::TapVm, Some(ifindex)) => {
                *slot(&mut self.unattached, id) = Some(ATTACHING.into());
                Some(PendingAttach {
                    progs,
                    id,
                    ifindex,
                    ifname: info.ifname,
                    peer,
                })
            }
            (kind, _) => {
                *slot(&mut self.unattached, id) = Some(format!(
                    "a {} port has no device in the switch's namespace to carry frames",
                    kind.name()
                ));
                None
            }
        }
    }

    /// Second half: installs the link made for `p` (the socket filter goes
    /// on now, on the dataplane thread that owns the socket), unless the
    /// port went or the fast path was switched meanwhile; then the link is
    /// dropped, which detaches it.
    pub fn complete(
        &mut self,
        p: PendingAttach,
        link: Result<TcxLink, crate::fastpath::FastpathError>,
        ports: &[Option<PortEntry>],
    ) {
        let same_progs = self
            .progs
            .as_ref()
            .is_some_and(|q| Arc::ptr_eq(q, &p.progs));
        let waiting =
            self.unattached.get(p.id.index()).and_then(|r| r.as_deref()) == Some(ATTACHING);
        let Some(e) = ports.get(p.id.index()).and_then(|e| e.as_ref()) else {
            return;
        };
        if !same_progs || !waiting || e.port.info().ifindex != Some(p.ifindex) {
            return;
        }
        let res = link.and_then(|link| {
            p.progs
                .attach_filter(e.port.raw_fd(), &p.ifname)
                .map(|_| link)
        });
        let why = match res {
            Ok(link) => {
                *slot(&mut self.attached, p.id) = Some(Attached {
                    ifindex: p.ifindex,
                    peer: p.peer,
                    mtu: e.port.mtu(),
                    _link: link,
                });
                None
            }
            Err(err) => {
                let _ = Programs::detach_filter(e.port.raw_fd(), &p.ifname);
                Some(err.to_string())
            }
        };
        *slot(&mut self.unattached, p.id) = why;
    }

    /// The attachments of ports removed since the last call.
    pub fn take_retired(&mut self) -> Retired {
        Retired(std::mem::take(&mut self.retired))
    }

    /// Why port `id` carries no programs, if it does not.
    pub fn unattached_reason(&self, id: PortId) -> Option<&str> {
        if let Some(off) = &self.off {
            return Some(off);
        }
        match self.attached.get(id.index()) {
            Some(Some(_)) => None,
            _ => Some(
                self.unattached
                    .get(id.index())
                    .and_then(|r| r.as_deref())
                    .unwrap_or("not attached"),
            ),
        }
    }

    /// Before port `id` leaves: its entries out, its programs detached.
    pub fn detach(&mut self, id: PortId, ports: &mut [Option<PortEntry>]) {
        self.remove_if(ports, |i| i.ingress == id || i.egress == id);
        if let Some(e) = ports.get(id.index()).and_then(|p| p.as_ref()) {
            if self.attached.get(id.index()).is_some_and(|a| a.is_some()) {
                let _ = Programs::detach_filter(e.port.raw_fd(), e.port.name());
            }
        }
        if let Some(a) = self.attached.get_mut(id.index()).and_then(Option::take) {
            self.retired.push(a);
        }
        if let Some(u) = self.unattached.get_mut(id.index()) {
            *u = None;
        }
    }

    fn fold(ports: &mut [Option<PortEntry>], inst: &mut Installed, now: FlowStats) {
        let packets = now.packets.saturating_sub(inst.folded.packets);
        let bytes = now.bytes.saturating_sub(inst.folded.bytes);
        if let Some(Some(e)) = ports.get_mut(inst.ingress.index()) {
            e.counters.fastpath_rx_frames += packets;
            e.counters.fastpath_rx_bytes += bytes + packets * inst.rx_extra;
        }
        if let Some(Some(e)) = ports.get_mut(inst.egress.index()) {
            e.counters.fastpath_tx_frames += packets;
            e.counters.fastpath_tx_bytes += bytes + packets * inst.tx_extra;
        }
        inst.folded = now;
    }

    /// Takes out every entry `pred` picks, adding its last counts to the ports.
    pub fn remove_if(
        &mut self,
        ports: &mut [Option<PortEntry>],
        pred: impl Fn(&Installed) -> bool,
    ) -> usize {
        let Some(progs) = &self.progs else { return 0 };
        let keys: Vec<FlowKey> = self
            .flows
            .iter()
            .filter(|(_, i)| pred(i))
            .map(|(k, _)| *k)
            .collect();
        for k in &keys {
            let mut inst = self.flows.remove(k).expect("listed");
            match progs.remove(k) {
                Ok(Some(last)) => Self::fold(ports, &mut inst, last),
                Ok(None) => {}
                Err(e) => eprintln!("l2sw: fast path: {e}"),
            }
        }
        keys.len()
    }

    /// Takes out every entry.
    pub fn flush(&mut self, ports: &mut [Option<PortEntry>]) -> usize {
        self.remove_if(ports, |_| true)
    }

    /// Adds what the kernel counted since the last call to the ports'
    /// counters, and returns every entry's counts.
    pub fn sync(
        &mut self,
        ports: &mut [Option<PortEntry>],
    ) -> Vec<(FlowKey, Installed, FlowStats)> {
        let Some(progs) = &self.progs else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(self.flows.len());
        for (k, inst) in self.flows.iter_mut() {
            if let Ok(Some(s)) = progs.stats(k) {
                Self::fold(ports, inst, s);
                out.push((*k, *inst, s));
            }
        }
        out
    }

    /// Installs `plan`, just executed for `frame`, if the kernel can carry
    /// the rest of its flow: one egress port, no mirror copy
    /// (`Plan::single_egress`), and neither port observed.
    pub fn consider(st: &mut State, frame: &[u8], plan: &Plan) {
        let Some(eg) = plan.single_egress() else {
            return;
        };
        let (egress, edit) = (eg.port, edit_of(eg.shape));
        let (ingress, d) = (plan.ingress, &plan.decision);
        if egress == ingress {
            return;
        }
        // The source must be where the FDB says, or learning off: frames
        // refused by a limit, or from a MAC static elsewhere, keep coming to
        // user space (which counts and retries them).
        match d.learn {
            LearnOutcome::New | LearnOutcome::Refreshed | LearnOutcome::Moved { .. } => {}
            LearnOutcome::NotLearned => {}
            LearnOutcome::Static { port } if port == ingress => {}
            _ => return,
        }
        let off = &st.fastpath;
        let (Some(Some(ai)), Some(Some(ae))) = (
            off.attached.get(ingress.index()),
            off.attached.get(egress.index()),
        ) else {
            return;
        };
        let Some(key) = FlowKey::of_frame(ai.ifindex, frame) else {
            return;
        };
        if off.flows.contains_key(&key) {
            return;
        }
        let action = FlowAction {
            egress: ae.ifindex,
            peer: ae.peer,
            max_len: ae.mtu + ETH_HEADER_LEN as u32,
            vlan: edit,
        };
        if st.offload_refusal(ingress).is_some() || st.offload_refusal(egress).is_some() {
            return;
        }
        let Some(progs) = &st.fastpath.progs else {
            return;
        };
        // A full map (E2BIG) leaves the plan in user space; nothing is lost.
        if progs.insert(&key, &action).is_ok() {
            let tag = VLAN_TAG_LEN as u64;
            let rx_extra = if key.vlan.is_some() { tag } else { 0 };
            let tx_extra = match edit {
                VlanEdit::Keep | VlanEdit::Retag(_) => rx_extra,
                VlanEdit::Pop => rx_extra.saturating_sub(tag),
                VlanEdit::Push(_) => rx_extra + tag,
            };
            st.fastpath.flows.insert(
                key,
                Installed {
                    ingress,
                    egress,
                    vlan: d.vlan,
                    src: key.src,
                    dst: key.dst,
                    peer: action.peer,
                    edit,
                    rx_extra,
                    tx_extra,
                    folded: FlowStats::default(),
                },
            );
        }
    }
}

/// The kernel's VLAN edit for a frame leaving in `shape`: every shape the
/// core plans is one of the edits `carry` makes.
fn edit_of(shape: Shape) -> VlanEdit {
    match shape {
        Shape::AsReceived => VlanEdit::Keep,
        Shape::Untagged => VlanEdit::Pop,
        Shape::Tagged { tag, pushed: true } => VlanEdit::Push(tag),
        Shape::Tagged { tag, pushed: false } => VlanEdit::Retag(tag),
    }
}

/// Why a port's frames stay in user space: built without allocating (it is
/// asked per frame for flows that stay there), displayed for people.
#[derive(Debug, Clone, Copy)]
pub enum Refusal<'a> {
    /// The fast path is off, or this port carries no programs.
    Unattached(&'a str),
    /// A capture (true) or live trace (false) covers the port.
    Tapped(bool),
    /// A mirror copies from or to the port.
    Mirror(&'a str),
    /// The port's link impairment (`port impair`) queues its frames.
    Impaired,
}

impl std::fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unattached(why) => f.write_str(why),
            Refusal::Tapped(true) => f.write_str("a capture covers the port"),
            Refusal::Tapped(false) => f.write_str("a live trace covers the port"),
            Refusal::Mirror(m) => write!(f, "mirror {m} covers the port"),
            Refusal::Impaired => f.write_str("the port's link is impaired (port impair)"),
        }
    }
}

impl State {
    /// Whether port `id`'s frames may be carried by the fast path, and if
    /// not, why: the one place every reason to step aside is listed (a new
    /// reason is one more arm here and in `Refusal`).
    pub fn offload_refusal(&self, id: PortId) -> Option<Refusal<'_>> {
        if let Some(r) = self.fastpath.unattached_reason(id) {
            return Some(Refusal::Unattached(r));
        }
        for t in &self.readers {
            if t.ports.as_ref().is_none_or(|p| p.contains(&id)) {
                let capture = matches!(t.mode, super::readers::ReaderKind::Capture { .. });
                return Some(Refusal::Tapped(capture));
            }
        }
        for m in self.switch.mirrors() {
            if m.output == id || m.src.contains(&id) || m.dst.contains(&id) {
                return Some(Refusal::Mirror(&m.name));
            }
        }
        let impaired = self.ports.get(id.index()).and_then(|p| p.as_ref());
        if impaired.is_some_and(|e| e.impair.is_some()) {
            return Some(Refusal::Impaired);
        }
        None
    }

    /// Takes out every fast-path entry: called by every request that
    /// changes forwarding state, before it returns.
    pub fn fastpath_flush(&mut self) {
        let State {
            fastpath, ports, ..
        } = self;
        fastpath.flush(ports);
    }

    /// A MAC moved (or left): entries to or from it are wrong now.
    pub fn fastpath_forget_mac(&mut self, vlan: u16, mac: MacAddr) {
        let State {
            fastpath, ports, ..
        } = self;
        fastpath.remove_if(ports, |i| i.vlan == vlan && (i.dst == mac || i.src == mac));
    }

    /// Housekeeping, before the ageing sweep: sources the kernel carried
    /// frames from are as fresh as their last frame there.
    pub fn fastpath_refresh_fdb(&mut self) {
        let State {
            fastpath,
            ports,
            switch,
            ..
        } = self;
        for (_, inst, s) in fastpath.sync(ports) {
            if s.last_seen_ns == 0 {
                continue;
            }
            let seen = kernel_to_timestamp(s.last_seen_ns);
            let key = FdbKey::new(inst.vlan, inst.src);
            let fresher = switch.fdb().lookup(key, Timestamp::now()).is_some_and(|e| {
                e.port == inst.ingress && e.kind == EntryKind::Learned && e.updated < seen
            });
            if fresher {
                switch.fdb_mut().learn(key, inst.ingress, 0, seen, true);
            }
        }
    }

    /// After the ageing sweep: entries whose destination is no longer known
    /// at their egress port go, and so do entries whose source aged on a
    /// learning port (its next frame must come to user space to be learned
    /// again).
    pub fn fastpath_after_ageing(&mut self) {
        let now = Timestamp::now();
        let State {
            fastpath,
            ports,
            switch,
            ..
        } = self;
        let fdb = switch.fdb();
        fastpath.remove_if(ports, |i| {
            let learning = switch.port_policy(i.ingress).is_some_and(|p| p.learning);
            fdb.lookup(FdbKey::new(i.vlan, i.dst), now)
                .is_none_or(|e| e.port != i.egress)
                || (learning
                    && fdb
                        .lookup(FdbKey::new(i.vlan, i.src), now)
                        .is_none_or(|e| e.port != i.ingress))
        });
    }

    /// Every installed entry with its counts and port names.
    pub fn fastpath_rows(&mut self) -> Vec<FlowRow> {
        let names = self.names();
        let name = |p: PortId| names.get(p.index()).cloned().unwrap_or_default();
        let State {
            fastpath, ports, ..
        } = self;
        let now = monotonic_ns();
        let mut rows: Vec<FlowRow> = fastpath
            .sync(ports)
            .into_iter()
            .map(|(k, i, s)| FlowRow {
                ingress: name(i.ingress),
                egress: name(i.egress),
                vlan: k.vlan.map(|(_, tci)| tci & 0x0fff),
                tpid: k.vlan.map(|(ad, _)| if ad { 0x88a8 } else { 0x8100 }),
                src: k.src,
                dst: k.dst,
                redirect: if i.peer { "peer" } else { "redirect" }.to_string(),
                vlan_edit: match i.edit {
                    VlanEdit::Keep => "keep",
                    VlanEdit::Pop => "pop",
                    VlanEdit::Push(_) => "push",
                    VlanEdit::Retag(_) => "retag",
                }
                .to_string(),
                egress_vlan: match i.edit {
                    VlanEdit::Push(t) | VlanEdit::Retag(t) => Some(t.vid),
                    VlanEdit::Keep | VlanEdit::Pop => None,
                },
                packets: s.packets,
                bytes: s.bytes,
                last_seen_s: (s.last_seen_ns != 0)
                    .then(|| now.saturating_sub(s.last_seen_ns) as f64 / 1e9),
            })
            .collect();
        rows.sort_by(|a, b| {
            (&a.ingress, a.vlan, a.dst.0, a.src.0).cmp(&(&b.ingress, b.vlan, b.dst.0, b.src.0))
        });
        rows
    }
}

impl State {
    /// The trace line for `frame` on `ingress` with decision `d`: which
    /// path carries it and why.
    pub fn fastpath_step(&self, ingress: PortId, frame: &[u8], plan: &Plan) -> TraceStep {
        TraceStep {
            step: "path".into(),
            result: self.fastpath_verdict(ingress, frame, plan),
        }
    }

    /// The path line of a frame a live trace reads: user space, always
    /// (an observed port's frames never take the fast path, see
    /// `offload_refusal`), and why.
    pub fn fastpath_live_step(&self, ingress: PortId, plan: &Plan) -> TraceStep {
        let why = match self.offload_refusal(ingress) {
            Some(Refusal::Unattached(r)) if self.fastpath.off.is_some() => {
                format!("user space (fast path {r})")
            }
            Some(r @ Refusal::Unattached(_)) => format!("user space (ingress port: {r})"),
            _ => {
                let mut s = format!(
                    "user space (port {} observed by live trace; offload resumes when it ends",
                    self.name_of(ingress)
                );
                if plan.single_egress().is_none() {
                    s.push_str(
                        "; this plan is not known unicast to one port and stays in user space anyway",
                    );
                }
                s.push(')');
                s
            }
        };
        TraceStep {
            step: "path".into(),
            result: why,
        }
    }

    fn fastpath_verdict(&self, ingress: PortId, frame: &[u8], plan: &Plan) -> String {
        if let Some(off) = &self.fastpath.off {
            return format!("user space (fast path {off})");
        }
        let d = &plan.decision;
        let Some(egress) = plan.single_egress().map(|e| e.port) else {
            return "user space (the kernel carries only known unicast to one port, \
                    not mirrored)"
                .into();
        };
        if egress == ingress {
            return "user space (hairpin: out the port it came in on)".into();
        }
        if let LearnOutcome::Moved { .. } = d.learn {
            return "user space (the source moved: plans to and from it were taken out)".into();
        }
        for (p, which) in [(ingress, "ingress"), (egress, "egress")] {
            if let Some(r) = self.offload_refusal(p) {
                return format!("user space ({which} port: {r})");
            }
        }
        let ifindex = match self.fastpath.attached.get(ingress.index()) {
            Some(Some(a)) => a.ifindex,
            _ => return "user space (ingress port not attached)".into(),
        };
        match FlowKey::of_frame(ifindex, frame) {
            Some(k) if self.fastpath.flows.contains_key(&k) => format!(
                "fast path (the kernel carries this flow: {} -> {})",
                self.name_of(ingress),
                self.name_of(egress)
            ),
            _ => "user space (not in the kernel yet: the kernel takes over after user space forwards \
                  a frame of the flow to one port)"
                .into(),
        }
    }
}
