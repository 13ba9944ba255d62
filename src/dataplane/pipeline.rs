//! One receive batch through the stages, in order:
//!
//! 1. `receive`: read a batch from the ingress port and count it;
//! 2. `decide`: one `Switch::plan` per frame; the frame is queued on every
//!    egress port the plan names, with the shape the plan gives;
//! 3. `offload::finish_checksums` then `shape`: finish partial checksums
//!    an egress port cannot, build the re-tagged/untagged copies;
//! 4. per egress port, `offload::fit` (MTU, software segmentation) and
//!    `offload::coalesce` (software GRO);
//! 5. `send`: one `send_batch` per egress port, counters and latency;
//! 6. `observe`: capture records and live traces all along, delivered when
//!    the batch is done.
//!
//! Each stage is a function in its own file; this one only strings them
//! together and owns the buffers they reuse from batch to batch ([`Work`]).
//! Frames an ingress impairment held come back through here as well
//! ([`release_impaired`]): the impairment stage hands them back as a batch,
//! this file forwards it.

use super::decide::plan_batch;
use super::impair;
use super::observe::Observer;
use super::offload::{self, Arenas, Candidates};
use super::receive::{receive, NoFrames};
use super::send::{send_share, Sources, Vanished};
use super::shape::{self, Variants};
use super::state::State;
use crate::port::RxBatch;
use crate::switch::{Plan, PortId, Timestamp};

/// What reading a port found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// The port returned a full batch: more may be waiting.
    More,
    /// The port had nothing more to read.
    Empty,
    /// The port is gone and was removed.
    Removed,
}

/// Buffers the stages reuse from batch to batch, so a batch allocates
/// nothing once they have grown.
#[derive(Default)]
pub struct Work {
    plan: Plan,
    /// Egress ports with frames queued, in first-use order.
    touched: Vec<PortId>,
    /// Of those, the ports a known-unicast frame of the batch goes to.
    unicast: Vec<PortId>,
    variants: Variants,
    arenas: Arenas,
}

/// Reads one batch from `ingress` and forwards it.
pub fn forward_batch(st: &mut State, ingress: PortId, rx: &mut RxBatch, w: &mut Work) -> Drained {
    let n = match receive(st, ingress, rx) {
        Ok(n) => n,
        Err(NoFrames::Empty) => return Drained::Empty,
        Err(NoFrames::Removed) => return Drained::Removed,
    };
    if st.impaired != 0 && impair::impairs_ingress(st, ingress) {
        impair::hold_batch(st, ingress, rx, n, Timestamp::now());
        return if n == rx.capacity() {
            Drained::More
        } else {
            Drained::Empty
        };
    }
    forward_received(st, ingress, rx, n, w, Vec::new())
}

/// Forwards the `n` frames in `rx` as received on `ingress` (read just now,
/// or released by the port's ingress impairment, with `impaired` saying
/// what it did to each frame when a reader is open; empty otherwise).
pub fn forward_received(
    st: &mut State,
    ingress: PortId,
    rx: &mut RxBatch,
    n: usize,
    w: &mut Work,
    impaired: Vec<Option<String>>,
) -> Drained {
    if st.entry(ingress).is_none() {
        return Drained::Empty;
    }
    let mut obs = Observer::start(st, n);
    if let Some(o) = obs.as_mut().filter(|_| !impaired.is_empty()) {
        o.set_ingress_impair(impaired);
    }

    w.touched.clear();
    w.unicast.clear();
    let lists = (&mut w.touched, &mut w.unicast);
    plan_batch(st, ingress, rx, n, &mut w.plan, &mut obs, lists);
    offload::finish_checksums(&mut st.ports, &w.touched, rx);
    shape::build(&mut st.ports, &w.touched, rx, n, &mut w.variants);

    let gro = st.switch.port_policy(ingress).is_some_and(|p| p.gro);
    // Frames an ingress impairment held already spent its delay since
    // their kernel stamp: an egress delay counts from now for them.
    let stamped = st.impaired == 0 || !impair::impairs_ingress(st, ingress);
    // Made when a port first coalesces: most batches never need it.
    let mut seen: Option<Candidates> = None;
    let mut vanished = Vanished::new();
    // Both clocks, read once per batch at the first impaired egress (not
    // per port): `arrival` needs them as a pair, and a batch is sent
    // within microseconds, far below any delay an impairment gives.
    let mut clocks: Option<(Timestamp, u64)> = None;
    let State {
        ports,
        log_limit,
        readers,
        pairs,
        switch,
        ..
    } = &mut *st;
    let rx: &RxBatch = rx;
    for &egress in &w.touched {
        let Some(Some(e)) = ports.get_mut(egress.index()) else {
            continue;
        };
        let caps = e.port.offload_caps();
        let mut pieces = offload::fit(egress, e, rx, &w.variants, &mut w.arenas, &mut obs, readers);
        e.pending.clear();
        w.arenas.coalesced.clear();
        w.arenas.merged.clear();
        // Toward a tunnel, neighbours may go to different VTEPs: no merging.
        let tunnel = switch.tunnel(egress).is_some();
        if gro && !tunnel && pieces.len() > 1 && caps.csum && (caps.tso4 || caps.tso6) {
            let seen = seen.get_or_insert_with(|| Candidates::new(n));
            pieces = offload::coalesce(&pieces, rx, caps, &mut w.arenas, seen, &mut e.counters);
        }
        let src = Sources {
            rx,
            variants: &w.variants,
            arenas: &w.arenas,
        };
        if e.impair.is_some() && impair::impairs_egress(e) {
            let (now, real_now) =
                *clocks.get_or_insert_with(|| (Timestamp::now(), crate::port::realtime_ns()));
            for p in pieces.iter() {
                let f = src.frame(p);
                let i = p.frame_index();
                let rx_ts = rx.slot(i).rx_ts();
                let id = obs.as_ref().map_or(0, |o| o.id(i));
                let at = if stamped {
                    impair::arrival(now, rx_ts, real_now)
                } else {
                    now
                };
                let fate = impair::hold(e, egress, readers, &f, rx_ts, ingress, id, at);
                if let Some(o) = obs.as_mut().filter(|o| o.traced(i)) {
                    o.io(i, egress, |io| {
                        io.impair = fate.text();
                        if let Some(d) = fate.dropped() {
                            io.dropped = Some(d.to_string());
                        }
                    });
                }
            }
            continue;
        }
        // A pair's histogram (~200 KiB) is made when the pair first carries
        // a known-unicast frame. Made for every pair a flood reaches, a
        // switch of n ports zeroed n of them per new port (n^2 in all):
        // plugging the 150th namespace cost ~40 MB of page faults on this
        // thread (docs/benchmarks.md). Decided per frame, not per batch, so
        // it does not depend on how frames happen to share batches.
        let pair = if w.unicast.contains(&egress) {
            Some(pairs.entry((ingress, egress)).or_default())
        } else {
            pairs.get_mut(&(ingress, egress))
        };
        send_share(
            (egress, tunnel),
            e,
            &pieces,
            &src,
            pair,
            &mut obs,
            readers,
            log_limit,
            &mut vanished,
        );
    }
    if let Some(o) = obs {
        o.finish(&mut st.readers, rx);
    }
    for (id, why) in vanished {
        st.remove_vanished(id, why);
    }
    if n == rx.capacity() {
        Drained::More
    } else {
        Drained::Empty
    }
}

/// Sends and forwards every impaired frame that is due: each port's
/// egress queue is sent, each ingress queue's due frames come back as
/// receive batches and are forwarded as if just read; a port's retired
/// queues (after `--clear` or a change) go first, whole.
pub fn release_impaired(st: &mut State, rx: &mut RxBatch, w: &mut Work) {
    let now = Timestamp::now();
    for idx in 0..st.ports.len() {
        let id = PortId(idx as u16);
        for retired in [true, false] {
            impair::release_egress(st, id, retired, now);
            while let Some((n, notes)) = impair::release_ingress(st, id, retired, now, rx) {
                forward_received(st, id, rx, n, w, notes);
            }
        }
        impair::drop_emptied(st, id);
    }
}
