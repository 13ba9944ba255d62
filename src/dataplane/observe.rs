//! Stage 6, observe: what capture and live-trace taps get from a batch.
//!
//! An [`Observer`] exists for a batch only while some tap is open (the hot
//! path pays one emptiness check per batch otherwise). It hands the capture
//! taps a record of every frame in and out, with the plan's verdict as the
//! comment, and builds a live trace of every frame a trace tap wants: the
//! frame's explained plan, then, as the egress stages run, what each port's
//! I/O did with it. Traces are delivered when the batch is done.

use smallvec::SmallVec;

use super::state::State;
use super::tap::{self, ActiveTap, Seen};
use crate::observe::explain::{explain, verdict};
use crate::observe::records::{Dir, EgressIo, TraceReport};
use crate::port::{RxBatch, BATCH_SIZE};
use crate::switch::{Action, Decision, DropReason, Plan, PortId, Switch, Timestamp, Via};

/// A frame a live trace wants, and its report so far.
struct Traced {
    frame: u16,
    ingress: PortId,
    /// The port of each row of `report.egress`.
    ports: Vec<PortId>,
    report: TraceReport,
}

/// One batch's observation (see the module documentation).
pub struct Observer {
    base_id: u64,
    ts_ns: u64,
    /// Port names by id, looked up once per batch for the records.
    names: Vec<String>,
    /// Mirror names by index, for the comments on mirror copies.
    mirrors: Vec<String>,
    /// Each frame's verdict, for the comments on egress records.
    decisions: SmallVec<[Option<Decision>; BATCH_SIZE]>,
    traces: Vec<Traced>,
}

impl Observer {
    /// An observer for a batch of `n` frames, if any tap is open; reserves
    /// the batch's packet ids.
    pub fn start(st: &mut State, n: usize) -> Option<Observer> {
        if st.taps.is_empty() {
            return None;
        }
        let o = Observer {
            base_id: st.next_packet_id,
            ts_ns: crate::port::realtime_ns(),
            names: st.names(),
            mirrors: st.switch.mirrors().iter().map(|m| m.name.clone()).collect(),
            decisions: SmallVec::from_elem(None, n),
            traces: Vec::new(),
        };
        st.next_packet_id += n as u64;
        Some(o)
    }

    fn name(&self, p: PortId) -> &str {
        self.names.get(p.index()).map(String::as_str).unwrap_or("")
    }

    fn seen(&self, port: PortId, dir: Dir, frame: usize) -> Seen<'_> {
        Seen {
            port,
            port_name: self.name(port),
            dir,
            id: self.base_id + frame as u64,
            ts_ns: self.ts_ns,
        }
    }

    /// Whether a live trace wants frame `frame` received on `ingress`: then
    /// its plan is made explained (with every exclusion and its reason).
    pub fn wants_trace(&self, taps: &[ActiveTap], ingress: PortId, frame: &[u8]) -> bool {
        tap::trace_wanted(taps, ingress, self.name(ingress), frame)
    }

    /// A frame the kernel truncated: captured with its drop, never planned.
    pub fn truncated(&self, taps: &mut [ActiveTap], ingress: PortId, i: usize, frame: &[u8]) {
        let seen = self.seen(ingress, Dir::In, i);
        tap::capture(taps, &seen, frame, &|| "drop: rx_truncated".into());
    }

    /// Frame `i` was planned: its ingress record, and its trace if wanted.
    pub fn planned(
        &mut self,
        sw: &Switch,
        taps: &mut [ActiveTap],
        i: usize,
        frame: &[u8],
        plan: &Plan,
        now: Timestamp,
    ) {
        self.decisions[i] = Some(plan.decision);
        let names = &self.names;
        let name = |p: PortId| names.get(p.index()).cloned().unwrap_or_default();
        let seen = self.seen(plan.ingress, Dir::In, i);
        tap::capture(taps, &seen, frame, &|| verdict(&plan.decision, &name));
        if plan.explains() {
            let mut report = explain(sw, &name, frame, plan, now, false);
            for row in report.egress.iter_mut().filter(|r| r.included) {
                row.io = Some(EgressIo::default());
            }
            self.traces.push(Traced {
                frame: i as u16,
                ingress: plan.ingress,
                ports: sw.ports().collect(),
                report,
            });
        }
    }

    /// Whether frame `i` is being traced (so its I/O is worth recording).
    pub fn traced(&self, i: usize) -> bool {
        self.traces.iter().any(|t| t.frame as usize == i)
    }

    /// Records what the egress I/O did with frame `i` on `port`.
    pub fn io(&mut self, i: usize, port: PortId, f: impl FnOnce(&mut EgressIo)) {
        let Some(t) = self.traces.iter_mut().find(|t| t.frame as usize == i) else {
            return;
        };
        if let Some(k) = t.ports.iter().position(|p| *p == port) {
            f(t.report.egress[k].io.get_or_insert_with(EgressIo::default));
        }
    }

    /// Frame `i` did not leave `port`: `reason`, and a capture record of
    /// what was not sent when the frame never reached the port's send.
    pub fn not_sent(
        &mut self,
        taps: &mut [ActiveTap],
        port: PortId,
        i: usize,
        data: Option<&[u8]>,
        reason: DropReason,
    ) {
        if let Some(data) = data {
            let seen = self.seen(port, Dir::Out, i);
            let text = format!("drop: {} (not sent)", reason.name());
            tap::capture(taps, &seen, data, &|| text.clone());
        }
        self.io(i, port, |io| io.dropped = Some(reason.name().to_string()));
    }

    /// Frame `i` (or a segment of it) left `port` as `data`.
    pub fn sent(&mut self, taps: &mut [ActiveTap], port: PortId, i: usize, data: &[u8], via: Via) {
        let seen = self.seen(port, Dir::Out, i);
        let comment = || match via {
            Via::Mirror { mirror, .. } => format!(
                "mirror: {}",
                self.mirrors
                    .get(mirror as usize)
                    .map(String::as_str)
                    .unwrap_or("")
            ),
            Via::Switched => match self.decisions.get(i).and_then(|d| d.map(|d| d.action)) {
                Some(Action::Forward { .. }) => "forward: known unicast".into(),
                Some(Action::Flood { kind }) => format!("flood: {}", kind.name()),
                _ => "flood".into(),
            },
        };
        tap::capture(taps, &seen, data, &comment);
        if self.traced(i) {
            self.io(i, port, |io| io.sent += 1);
        }
    }

    /// The batch is done: hands each live trace to the taps that want it.
    pub fn finish(self, taps: &mut [ActiveTap], rx: &RxBatch) {
        for t in self.traces {
            let i = t.frame as usize;
            let seen = Seen {
                port: t.ingress,
                port_name: &t.report.ingress,
                dir: Dir::In,
                id: self.base_id + i as u64,
                ts_ns: self.ts_ns,
            };
            tap::trace(taps, &seen, rx.slot(i).frame(), &t.report);
        }
    }
}
