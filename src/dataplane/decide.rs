//! Stage 2, decide -> plan: ask the switch for every frame's plan and queue
//! the frame on each egress port the plan names, with the shape the plan
//! gives. This is the whole of the dataplane's part in forwarding: it adds
//! no port, drops none and re-tags nothing the plan does not say.
//!
//! The fast path (`fastpath.rs`) looks at `plan` right after
//! `Switch::plan`, here: a move takes plans to and from the MAC out, and a
//! plan `Plan::single_egress` names (one port, unchanged or re-tagged the
//! way the kernel can) may be installed in the kernel.

use super::components::port_entry::Pending;
use super::fastpath;
use super::monitor;
use super::observe::Observer;
use super::protect;
use super::receive;
use super::state::State;
use crate::port::RxBatch;
use crate::switch::{Action, FloodKind, LearnOutcome, Mode, Plan, PortId, Timestamp};

/// Plans the `n` frames of `rx` received on `ingress`; every egress port
/// that gets a frame is listed once in `touched`, in first-use order, and
/// once in `unicast` if a known-unicast frame goes to it.
pub fn plan_batch(
    st: &mut State,
    ingress: PortId,
    rx: &RxBatch,
    n: usize,
    plan: &mut Plan,
    obs: &mut Option<Observer>,
    (touched, unicast): (&mut Vec<PortId>, &mut Vec<PortId>),
) {
    let now = Timestamp::now();
    for i in 0..n {
        let frame = rx.slot(i).frame();
        if !receive::complete(rx, i) {
            if let Some(o) = obs {
                o.truncated(&mut st.readers, ingress, i, frame, receive::refusal(rx, i));
            }
            continue;
        }
        // Reasons for every excluded port are worked out only for frames a
        // live trace reads; the included ports are the same either way.
        let explain = obs
            .as_ref()
            .is_some_and(|o| o.wants_trace(&st.readers, ingress, frame));
        plan.set_explain(explain);
        let remote = rx.slot(i).tunnel_src();
        st.switch
            .plan_from(ingress, remote, frame, now, Mode::Apply, plan);
        if let Some(note) = plan.protect {
            protect::on_note(st, ingress, note, now);
        }
        if st.fastpath.is_on() {
            if let (LearnOutcome::Moved { .. }, Some(src)) =
                (plan.decision.learn, plan.decision.src)
            {
                st.fastpath_forget_mac(plan.decision.vlan, src);
            }
            fastpath::consider(st, frame, plan);
        }
        // A frame a live trace reads is in user space by definition; its
        // path line says why, before the destructuring below.
        let path = plan
            .explains()
            .then(|| st.fastpath_live_step(ingress, plan));
        if !st.monitors.is_empty() {
            // `l2sw monitor`: learned, moved, refused, from the plan's learning outcome.
            monitor::on_decision(st, ingress, &plan.decision);
        }
        let State {
            switch,
            ports,
            readers,
            ..
        } = &mut *st;
        if let Some(Some(e)) = ports.get_mut(ingress.index()) {
            let c = &mut e.counters;
            match plan.decision.action {
                Action::Drop { reason } => c.drops.add(reason, 1),
                Action::Forward { port } => {
                    c.decisions.unicast += 1;
                    if !unicast.contains(&port) {
                        unicast.push(port);
                    }
                }
                Action::Flood { kind } => match kind {
                    FloodKind::Broadcast => c.decisions.flood_broadcast += 1,
                    FloodKind::Multicast => c.decisions.flood_multicast += 1,
                    FloodKind::UnknownUnicast => c.decisions.flood_unknown_unicast += 1,
                },
            }
        }
        for eg in plan.egress() {
            if let Some(Some(e)) = ports.get_mut(eg.port.index()) {
                if e.pending.is_empty() {
                    touched.push(eg.port);
                }
                e.pending.push(Pending {
                    frame: i as u16,
                    shape: eg.shape,
                    cause: eg.cause,
                    variant: None,
                    remote: eg.remote,
                });
            }
        }
        if let Some(o) = obs {
            o.planned(switch, readers, i, frame, plan, now);
            if let Some(p) = path {
                o.step(i, p);
            }
        }
    }
}
