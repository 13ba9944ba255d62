//! Stage 6, observe: what capture and live-trace readers get from a batch.
//!
//! An [`Observer`] exists for a batch only while some reader is open (the hot
//! path pays one emptiness check per batch otherwise). It hands the capture
//! readers a record of every frame in and out, with the plan's verdict as the
//! comment, and builds a live trace of every frame a trace reader wants: the
//! frame's explained plan, then, as the egress stages run, what each port's
//! I/O did with it. Traces are delivered when the batch is done.

use smallvec::SmallVec;

use super::readers::{self, ActiveReader, Seen};
use super::state::State;
use crate::observe::explain::{explain, verdict};
use crate::observe::records::{Dir, EgressIo, TraceReport, TraceStep};
use crate::port::{RxBatch, BATCH_SIZE};
use crate::switch::{Action, Cause, Decision, DropReason, Plan, PortId, Switch, Timestamp};

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
    /// An observer for a batch of `n` frames, if any reader is open; reserves
    /// the batch's packet ids.
    pub fn start(st: &mut State, n: usize) -> Option<Observer> {
        if st.readers.is_empty() {
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
    pub fn wants_trace(&self, readers: &[ActiveReader], ingress: PortId, frame: &[u8]) -> bool {
        readers::trace_wanted(readers, ingress, self.name(ingress), frame)
    }

    /// A frame the kernel truncated (or a tunnel packet that did not
    /// decapsulate): captured with its drop, never planned.
    pub fn truncated(
        &self,
        readers: &mut [ActiveReader],
        ingress: PortId,
        i: usize,
        frame: &[u8],
        why: crate::switch::DropReason,
    ) {
        let seen = self.seen(ingress, Dir::In, i);
        readers::capture(readers, &seen, frame, &|| format!("drop: {}", why.name()));
    }

    /// Frame `i` was planned: its ingress record, and its trace if wanted.
    pub fn planned(
        &mut self,
        sw: &Switch,
        readers: &mut [ActiveReader],
        i: usize,
        frame: &[u8],
        plan: &Plan,
        now: Timestamp,
    ) {
        self.decisions[i] = Some(plan.decision);
        let names = &self.names;
        let name = |p: PortId| names.get(p.index()).cloned().unwrap_or_default();
        let seen = self.seen(plan.ingress, Dir::In, i);
        readers::capture(readers, &seen, frame, &|| verdict(&plan.decision, &name));
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

    /// Adds `step` to frame `i`'s live trace (the fast path's `path` line).
    pub fn step(&mut self, i: usize, step: TraceStep) {
        if let Some(t) = self.traces.iter_mut().find(|t| t.frame as usize == i) {
            t.report.steps.push(step);
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
        readers: &mut [ActiveReader],
        port: PortId,
        i: usize,
        data: Option<&[u8]>,
        reason: DropReason,
    ) {
        if let Some(data) = data {
            let seen = self.seen(port, Dir::Out, i);
            let text = format!("drop: {} (not sent)", reason.name());
            readers::capture(readers, &seen, data, &|| text.clone());
        }
        self.io(i, port, |io| io.dropped = Some(reason.name().to_string()));
    }

    /// Frame `i` (or a segment of it) left `port` as `data`.
    pub fn sent(
        &mut self,
        readers: &mut [ActiveReader],
        port: PortId,
        i: usize,
        data: &[u8],
        cause: Cause,
    ) {
        let seen = self.seen(port, Dir::Out, i);
        let comment = || match cause {
            Cause::Mirror { mirror, .. } => format!(
                "mirror: {}",
                self.mirrors
                    .get(mirror as usize)
                    .map(String::as_str)
                    .unwrap_or("")
            ),
            Cause::Switched => match self.decisions.get(i).and_then(|d| d.map(|d| d.action)) {
                Some(Action::Forward { .. }) => "forward: known unicast".into(),
                Some(Action::Flood { kind }) => format!("flood: {}", kind.name()),
                _ => "flood".into(),
            },
        };
        readers::capture(readers, &seen, data, &comment);
        if self.traced(i) {
            self.io(i, port, |io| io.sent += 1);
        }
    }

    /// The batch is done: hands each live trace to the readers that want it.
    pub fn finish(self, readers: &mut [ActiveReader], rx: &RxBatch) {
        for t in self.traces {
            let i = t.frame as usize;
            let seen = Seen {
                port: t.ingress,
                port_name: &t.report.ingress,
                dir: Dir::In,
                id: self.base_id + i as u64,
                ts_ns: self.ts_ns,
            };
            readers::trace(readers, &seen, rx.slot(i).frame(), &t.report);
        }
    }
}
