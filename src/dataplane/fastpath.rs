//! The fast-path stage (`crate::fastpath` loads the programs): which plans
//! are installed, taking plans out before any change that could alter them
//! returns, and what a trace says about the path a frame takes. The table
//! it works on (attached ports, installed plans) is
//! `components/flow_table.rs`.
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

use super::components::flow_table::{FlowRow, Installed};
use super::readers::ReaderKind;
use super::state::State;
use crate::fastpath::{monotonic_ns, FlowAction, FlowKey, FlowStats, VlanEdit};
use crate::observe::records::TraceStep;
use crate::switch::{EntryKind, FdbKey, LearnOutcome, Plan, PortId, Shape, Timestamp};
use crate::wire::{MacAddr, ETH_HEADER_LEN, VLAN_TAG_LEN};

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

fn kernel_to_timestamp(ns: u64) -> Timestamp {
    let age = monotonic_ns().saturating_sub(ns);
    Timestamp(Timestamp::now().0.saturating_sub(age))
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
                let capture = matches!(t.mode, ReaderKind::Capture { .. });
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
