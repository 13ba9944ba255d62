//! The impairment stage: frames of an impaired port wait in its
//! [`Impairer`] queues (one per direction) instead of being sent or decided
//! at once, and leave when due.
//!
//! - Egress: the send stage hands an impaired port's share to [`hold`]
//!   (copies, since the receive buffers are reused by the next batch) and
//!   sends nothing; [`release_egress`] sends what is due, in batches.
//! - Ingress: a batch read from an impaired port is held whole before the
//!   switch sees it ([`hold_batch`]); when due, [`release_ingress`] copies
//!   frames back into a receive batch and hands it back, and the pipeline
//!   takes it through the usual decide-and-send path
//!   (`pipeline::release_impaired`): this stage never calls the pipeline.
//!
//! The event loop calls `pipeline::release_impaired` every round while any
//! port is impaired and arms a timerfd for [`next_due`], so it never sleeps
//! past a due frame and never spins while queues wait: an idle impaired
//! port costs nothing. With no port impaired, forwarding pays one `Option`
//! check per egress port share and one per received batch. The queues
//! themselves are `components/impair_queue.rs`.

use smallvec::SmallVec;

use super::components::impair_queue::{Held, PortImpair};
use super::components::port_entry::PortEntry;
use super::readers::{self as tap, ActiveReader as ActiveTap, Seen};
use super::state::State;
use crate::impair::{ImpairDrop, Marks, Released};
use crate::observe::explain::summarize;
use crate::observe::records::{Dir, TraceReport, TraceStep};
use crate::port::{RxBatch, SendError, TxFrame, BATCH_SIZE, RX_HEADROOM};
use crate::switch::{DropReason, PortId, Timestamp};

/// What the impairment did to a frame that leaves after `held_ns`, for
/// its capture record ("impair: delayed 10.213 ms; duplicate") and, on
/// ingress, its trace.
fn fate(marks: Marks, held_ns: u64) -> String {
    let ms = held_ns as f64 / 1e6;
    let mut s = if marks.reordered {
        format!("reordered (sent ahead after {ms:.3} ms)")
    } else {
        format!("delayed {ms:.3} ms")
    };
    s += &extra_marks(marks);
    s
}

fn extra_marks(marks: Marks) -> String {
    let mut s = String::new();
    if marks.duplicate {
        s += "; duplicate";
    }
    if marks.corrupted {
        s += "; corrupted (one bit flipped)";
    }
    s
}

fn drop_reason(why: ImpairDrop) -> DropReason {
    match why {
        ImpairDrop::Loss => DropReason::ImpairLoss,
        ImpairDrop::Limit => DropReason::ImpairLimit,
    }
}

/// The capture comment of a frame the impairment dropped, worded as other
/// drops are ("drop: impair_loss (not sent)"), with what else it did.
fn drop_note(why: ImpairDrop, marks: Marks, egress: bool) -> String {
    let mut s = format!("drop: {}", drop_reason(why).name());
    if egress {
        s += " (not sent)";
    }
    let extra = extra_marks(marks);
    if !extra.is_empty() {
        s += &format!("; impair: {}", &extra[2..]);
    }
    s
}

/// What [`hold`] did with one frame, for its live trace.
#[derive(Debug, Default)]
pub struct Fate {
    /// Due time and marks of each copy queued.
    due: SmallVec<[(u64, Marks); 2]>,
    /// Why copies were dropped.
    dropped: SmallVec<[ImpairDrop; 2]>,
    duplicated: bool,
    now: u64,
}

impl Fate {
    /// The drop reason when no copy was queued.
    pub fn dropped(&self) -> Option<&'static str> {
        match (self.due.is_empty(), self.dropped.first()) {
            (true, Some(&why)) => Some(drop_reason(why).name()),
            _ => None,
        }
    }

    /// "held 10.213 ms; duplicated; corrupted (one bit flipped)".
    pub fn text(&self) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        for &(due, marks) in &self.due {
            parts.push(if marks.reordered {
                "reordered (sent ahead)".into()
            } else {
                format!("held {:.3} ms", due.saturating_sub(self.now) as f64 / 1e6)
            });
        }
        if self.duplicated {
            parts.push("duplicated".into());
        }
        if self.due.iter().any(|(_, m)| m.corrupted) {
            parts.push("corrupted (one bit flipped)".into());
        }
        if !self.due.is_empty() {
            for &why in &self.dropped {
                parts.push(format!("a copy dropped: {}", drop_reason(why).name()));
            }
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

fn count_drop(c: &mut crate::observe::PortCounters, why: ImpairDrop) {
    c.drops.add(drop_reason(why), 1);
}

fn count_marks<T>(c: &mut crate::observe::PortCounters, out: &crate::impair::Enqueued<T>) {
    c.impair_duplicated += out.duplicated as u64;
    c.impair_reordered += out.reordered as u64;
    c.impair_corrupted += out.corrupted as u64;
}

/// Longest wait in front of the queue that [`arrival`] takes off a
/// frame's delay: beyond it the realtime clock was probably stepped.
const MAX_BACKDATE_NS: u64 = 1_000_000_000;

/// When a frame reached the switch, on the monotonic clock: `now` less the
/// time since the kernel stamped it (`rx_ts`, realtime ns, read against
/// `real_now`). Delays count from there, as netem's count from the moment
/// a frame reaches the qdisc, so the wait in the receive ring behind a
/// stream (and this thread's own lateness) is part of the delay instead of
/// added to it. A stamp from the future or from before a clock step counts
/// as now, or as at most [`MAX_BACKDATE_NS`] ago.
pub fn arrival(now: Timestamp, rx_ts: u64, real_now: u64) -> Timestamp {
    if rx_ts == 0 {
        return now;
    }
    let waited = real_now.saturating_sub(rx_ts).min(MAX_BACKDATE_NS);
    Timestamp(now.0.saturating_sub(waited))
}

/// Queues one frame of an egress share on `e`'s impairment; `id` is its
/// packet id (0 when no reader is open); `now` is when it reached the
/// switch ([`arrival`]).
#[allow(clippy::too_many_arguments)]
pub fn hold(
    e: &mut PortEntry,
    port: PortId,
    taps: &mut [ActiveTap],
    f: &TxFrame<'_>,
    rx_ts: u64,
    ingress: PortId,
    id: u64,
    now: Timestamp,
) -> Fate {
    let PortEntry {
        impair,
        counters,
        meta,
        ..
    } = e;
    let mut fate = Fate {
        now: now.0,
        ..Fate::default()
    };
    let Some(imp) = impair.as_mut().and_then(|s| s.active.as_mut()) else {
        return fate;
    };
    let h = imp.held(f.data, f.offload, rx_ts, ingress, id);
    let Some(q) = imp.egress.as_mut() else {
        return fate;
    };
    let out = q.enqueue(now.0, h);
    count_marks(counters, &out);
    fate.due = out.due;
    fate.duplicated = out.duplicated;
    for (h, why, marks) in out.dropped {
        count_drop(counters, why);
        fate.dropped.push(why);
        if !taps.is_empty() {
            let seen = Seen {
                port,
                port_name: &meta.name,
                dir: Dir::Out,
                id,
                ts_ns: crate::port::realtime_ns(),
            };
            tap::capture(taps, &seen, &h.data, &|| drop_note(why, marks, true));
        }
        imp.recycle(h);
    }
    fate
}

/// Whether `e` sends through an egress impairment queue.
pub fn impairs_egress(e: &PortEntry) -> bool {
    e.impair
        .as_ref()
        .and_then(|s| s.active.as_ref())
        .is_some_and(|a| a.egress.is_some())
}

/// Whether frames read from `ingress` are impaired before the switch sees
/// them.
pub fn impairs_ingress(st: &State, ingress: PortId) -> bool {
    st.entry(ingress)
        .and_then(|e| e.impair.as_ref())
        .and_then(|s| s.active.as_ref())
        .is_some_and(|a| a.ingress.is_some())
}

/// Queues the `n` frames just read from `ingress` on its ingress impairment.
pub fn hold_batch(st: &mut State, ingress: PortId, rx: &RxBatch, n: usize, now: Timestamp) {
    let State {
        ports,
        readers: taps,
        next_packet_id,
        switch,
        ..
    } = &mut *st;
    let vlan_aware = switch.vlan_aware();
    let Some(Some(e)) = ports.get_mut(ingress.index()) else {
        return;
    };
    let PortEntry {
        impair,
        counters,
        meta,
        ..
    } = e;
    let Some(imp) = impair.as_mut().and_then(|s| s.active.as_mut()) else {
        return;
    };
    let real_now = crate::port::realtime_ns();
    for i in 0..n {
        let slot = rx.slot(i);
        let at = arrival(now, slot.rx_ts(), real_now);
        // Frames that leave get their packet id when the switch decides
        // on them (after the queue); only drops are recorded here.
        let h = imp.held(slot.frame(), slot.offload(), slot.rx_ts(), ingress, 0);
        let Some(q) = imp.ingress.as_mut() else {
            return;
        };
        let out = q.enqueue(at.0, h);
        count_marks(counters, &out);
        for (h, why, marks) in out.dropped {
            count_drop(counters, why);
            if !taps.is_empty() {
                let seen = Seen {
                    port: ingress,
                    port_name: &meta.name,
                    dir: Dir::In,
                    id: *next_packet_id,
                    ts_ns: crate::port::realtime_ns(),
                };
                *next_packet_id += 1;
                tap::capture(taps, &seen, &h.data, &|| drop_note(why, marks, false));
                // The switch never sees this frame, so no plan explains it:
                // its live trace is the impairment step alone.
                if tap::trace_wanted(taps, ingress, &meta.name, &h.data) {
                    let report = ingress_drop_trace(&meta.name, vlan_aware, &h.data, why, marks);
                    tap::trace(taps, &seen, &h.data, &report);
                }
            }
            imp.recycle(h);
        }
    }
}

/// The live trace of a frame the port's ingress impairment dropped before
/// the switch saw it: one `ingress impairment` step and the drop as the
/// verdict, no egress rows (nothing was decided or sent).
fn ingress_drop_trace(
    port: &str,
    vlan_aware: bool,
    frame: &[u8],
    why: ImpairDrop,
    marks: Marks,
) -> TraceReport {
    let reason = drop_reason(why).name();
    TraceReport {
        id: None,
        ts_ns: 0,
        ingress: port.to_string(),
        synthetic: false,
        vlan_aware,
        vlan: 0,
        frame: summarize(frame),
        steps: vec![TraceStep {
            step: "ingress impairment".into(),
            result: format!("dropped: {reason}{}", extra_marks(marks)),
        }],
        egress: Vec::new(),
        verdict: format!("drop: {reason} (before the switch saw it)"),
    }
}

/// When the next impaired frame is due, over all ports (`Some(0)`: now).
pub fn next_due(st: &State) -> Option<u64> {
    st.ports
        .iter()
        .flatten()
        .filter_map(|e| e.impair.as_ref().and_then(|s| s.next_due()))
        .min()
}

/// Once a port's retired queues are empty, they go; once its slot holds
/// nothing, the slot goes and the port counts as unimpaired.
pub fn drop_emptied(st: &mut State, id: PortId) {
    if let Some(Some(e)) = st.ports.get_mut(id.index()) {
        if let Some(s) = &mut e.impair {
            if s.retired.as_ref().is_some_and(|r| r.is_empty()) {
                s.retired = None;
            }
            if s.unused() {
                e.impair = None;
                st.impaired = st.impaired.saturating_sub(1);
            }
        }
    }
}

fn pick(e: &mut PortEntry, retired: bool) -> Option<&mut PortImpair> {
    let s = e.impair.as_mut()?;
    if retired {
        s.retired.as_mut()
    } else {
        s.active.as_mut()
    }
}

/// Sends every frame due on `port`'s egress queue (the retired one when
/// `retired`: all of it, at once).
pub fn release_egress(st: &mut State, port: PortId, retired: bool, now: Timestamp) {
    // Retired queues leave at once, whatever their due times.
    let at = if retired { u64::MAX } else { now.0 };
    loop {
        let State {
            ports,
            readers: taps,
            pairs,
            log_limit,
            next_packet_id,
            ..
        } = &mut *st;
        let Some(Some(e)) = ports.get_mut(port.index()) else {
            return;
        };
        let Some(imp) = pick(e, retired) else { return };
        let Some(q) = imp.egress.as_mut() else { return };
        let mut due: SmallVec<[Released<Held>; BATCH_SIZE]> = SmallVec::new();
        while due.len() < BATCH_SIZE {
            match q.pop_due(at) {
                Some(r) => due.push(r),
                None => break,
            }
        }
        if due.is_empty() {
            return;
        }
        let frames: SmallVec<[(TxFrame<'_>, usize); BATCH_SIZE]> = due
            .iter()
            .enumerate()
            .flat_map(|(k, r)| r.frame.pieces().map(move |f| (f, k)))
            .collect();
        let tx: SmallVec<[TxFrame<'_>; BATCH_SIZE]> = frames.iter().map(|(f, _)| *f).collect();
        let mut off = 0;
        let mut vanished = None;
        while off < tx.len() {
            let (sent, err) = e.port.send_batch(&tx[off..]);
            let done = crate::port::realtime_ns();
            for &(f, k) in &frames[off..off + sent] {
                e.counters.tx_frames += 1;
                e.counters.tx_bytes += f.data.len() as u64;
                let r = &due[k];
                if r.frame.rx_ts != 0 {
                    let ns = done.saturating_sub(r.frame.rx_ts);
                    e.latency.record(ns);
                    pairs.entry((r.frame.ingress, port)).or_default().record(ns);
                }
                if !taps.is_empty() {
                    let id = if r.frame.id != 0 {
                        r.frame.id
                    } else {
                        *next_packet_id += 1;
                        *next_packet_id - 1
                    };
                    let seen = Seen {
                        port,
                        port_name: &e.meta.name,
                        dir: Dir::Out,
                        id,
                        ts_ns: done,
                    };
                    let held = now.0.saturating_sub(r.arrived_ns);
                    tap::capture(taps, &seen, f.data, &|| {
                        format!("impair: {}", fate(r.marks, held))
                    });
                }
            }
            off += sent;
            let Some(err) = err else { break };
            let rest = (tx.len() - off) as u64;
            match err {
                SendError::TooBig => {
                    e.counters.drops.add(DropReason::EgressTooBig, 1);
                    off += 1;
                }
                SendError::WouldBlock => {
                    e.counters.drops.add(DropReason::EgressFull, rest);
                    break;
                }
                SendError::LinkDown => {
                    e.counters.drops.add(DropReason::EgressDown, rest);
                    break;
                }
                SendError::Vanished => {
                    e.counters.drops.add(DropReason::EgressDown, rest);
                    vanished = Some(format!("interface {} vanished", e.port.name()));
                    break;
                }
                SendError::Io(err) => {
                    e.counters.drops.add(DropReason::EgressError, 1);
                    off += 1;
                    if let Some(s) = log_limit.allow(now) {
                        eprintln!(
                            "l2sw: send on port {} failed: {err} ({s} similar messages suppressed)",
                            e.meta.name
                        );
                    }
                }
            }
        }
        drop(tx);
        drop(frames);
        let PortEntry { impair, .. } = e;
        if let Some(imp) = impair.as_mut().and_then(|s| {
            if retired {
                s.retired.as_mut()
            } else {
                s.active.as_mut()
            }
        }) {
            for r in due {
                imp.recycle(r.frame);
            }
        }
        if let Some(why) = vanished {
            st.remove_vanished(port, why);
            return;
        }
    }
}

/// Copies the next due frames of `port`'s ingress queue (the retired one
/// when `retired`) into `rx` as a receive batch and returns how many, with
/// what the queue did to each when a reader is open (empty otherwise);
/// `None` when none is due. The caller forwards them and asks again.
pub fn release_ingress(
    st: &mut State,
    port: PortId,
    retired: bool,
    now: Timestamp,
    rx: &mut RxBatch,
) -> Option<(usize, Vec<Option<String>>)> {
    let at = if retired { u64::MAX } else { now.0 };
    let st_readers_empty = st.readers.is_empty();
    let Some(Some(e)) = st.ports.get_mut(port.index()) else {
        return None;
    };
    let imp = pick(e, retired)?;
    let q = imp.ingress.as_mut()?;
    let cap = rx.capacity();
    let mut n = 0;
    let mut recycled: SmallVec<[Held; BATCH_SIZE]> = SmallVec::new();
    // What the queue did to each frame, for its record and trace.
    let observed = !st_readers_empty;
    let mut notes: Vec<Option<String>> = Vec::new();
    // Whole frames only: a cut super-frame needs one slot per segment.
    while n < cap {
        let fits = q.pop_due_if(at, |h| n + h.segs.len().max(1) <= cap);
        let Some(r) = fits else { break };
        for f in r.frame.pieces() {
            let slot = &mut rx.slots_mut()[n];
            let room = slot.buf_mut().len() - RX_HEADROOM;
            let len = f.data.len().min(room);
            slot.buf_mut()[RX_HEADROOM..RX_HEADROOM + len].copy_from_slice(&f.data[..len]);
            slot.set(RX_HEADROOM, len, crate::port::RxStatus::Complete);
            slot.set_offload(f.offload);
            slot.set_rx_ts(r.frame.rx_ts);
            if observed {
                notes.push(Some(fate(r.marks, now.0.saturating_sub(r.arrived_ns))));
            }
            n += 1;
        }
        recycled.push(r.frame);
    }
    for h in recycled {
        imp.recycle(h);
    }
    if n == 0 {
        return None;
    }
    rx.set_len(n);
    Some((n, notes))
}

#[cfg(test)]
mod arrival_tests {
    use super::{arrival, MAX_BACKDATE_NS};
    use crate::switch::Timestamp;

    #[test]
    fn delay_counts_from_the_kernel_stamp() {
        let now = Timestamp(50_000_000_000);
        // Stamped 3 ms before it was read: it arrived 3 ms before `now`.
        assert_eq!(
            arrival(now, 7_000_000, 10_000_000),
            Timestamp(now.0 - 3_000_000)
        );
        // No stamp, or one from the future (clock stepped back): now.
        assert_eq!(arrival(now, 0, 10_000_000), now);
        assert_eq!(arrival(now, 20_000_000, 10_000_000), now);
        // A stamp from before a forward clock step backdates at most 1 s.
        assert_eq!(
            arrival(now, 1, u64::MAX / 2),
            Timestamp(now.0 - MAX_BACKDATE_NS)
        );
    }
}
