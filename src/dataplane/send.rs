//! Stage 5, send: hand one egress port its pieces in as few calls as the
//! port allows, count what left (frames, bytes, residence time per port and
//! per ingress/egress pair) and name what did not (`egress_full`,
//! `egress_down`, ...). A full queue drops the rest of this port's share and
//! never stalls the other ports.
//!
//! Seam: an egress stage that holds frames back (an impairment queue) sits
//! between `offload::fit` and `send_share`, taking the pieces instead.

use smallvec::SmallVec;

use super::components::port_entry::PortEntry;
use super::observe::Observer;
use super::offload::{Arenas, Bytes, Piece};
use super::rate_limit::RateLimit;
use super::readers::ActiveReader;
use super::shape::Variants;
use crate::observe::LatencyHistogram;
use crate::port::{RxBatch, SendError, TxFrame, BATCH_SIZE};
use crate::switch::{DropReason, PortId, Timestamp};

/// What the send stage reads besides the port: the batch and the arenas
/// the pieces point into.
pub struct Sources<'a> {
    pub rx: &'a RxBatch,
    pub variants: &'a Variants,
    pub arenas: &'a Arenas,
}

impl Sources<'_> {
    pub fn frame(&self, p: &Piece) -> TxFrame<'_> {
        match p.bytes {
            Bytes::Rx => {
                let slot = self.rx.slot(p.frame_index());
                TxFrame {
                    data: slot.frame(),
                    offload: slot.offload(),
                }
            }
            Bytes::Var(s, l, o) => TxFrame {
                data: self.variants.bytes(s, l),
                offload: o,
            },
            Bytes::Seg(s, l) => TxFrame::plain(&self.arenas.segments[s..s + l]),
            Bytes::Merged(s, l, o) => TxFrame {
                data: &self.arenas.coalesced[s..s + l],
                offload: o,
            },
        }
    }
}

/// Why a port must be removed after the batch.
pub type Vanished = SmallVec<[(PortId, String); 2]>;

/// Sends `pieces` on `egress`. `pair` is the (ingress, egress) residence
/// histogram, if the pair has one.
#[allow(clippy::too_many_arguments)]
pub fn send_share(
    (egress, tunnel): (PortId, bool),
    e: &mut PortEntry,
    pieces: &[Piece],
    src: &Sources<'_>,
    mut pair: Option<&mut LatencyHistogram>,
    obs: &mut Option<Observer>,
    readers: &mut [ActiveReader],
    log_limit: &mut RateLimit,
    vanished: &mut Vanished,
) {
    let frames: SmallVec<[TxFrame<'_>; BATCH_SIZE]> = pieces.iter().map(|p| src.frame(p)).collect();
    // A tunnel port sends each piece toward the VTEP the plan named.
    let remotes: SmallVec<[Option<std::net::Ipv4Addr>; BATCH_SIZE]> =
        pieces.iter().map(|p| p.remote).collect();
    // Outcome of piece `k` for a live trace: for the frame it comes from and
    // for every frame merged into it.
    let record = |obs: &mut Observer, k: usize, f: &mut dyn FnMut(&mut Observer, usize)| {
        f(obs, pieces[k].frame_index());
        if matches!(pieces[k].bytes, Bytes::Merged(..)) {
            for &(_, m) in src.arenas.merged.iter().filter(|(pk, _)| *pk as usize == k) {
                f(obs, m as usize);
            }
        }
    };
    let mut off = 0;
    while off < frames.len() {
        let (sent, err) = if tunnel {
            e.port.send_batch_to(&frames[off..], &remotes[off..])
        } else {
            e.port.send_batch(&frames[off..])
        };
        // Residence: from the kernel's receive stamp to the send's return.
        let done = crate::port::realtime_ns();
        for (k, f) in frames[off..off + sent].iter().enumerate() {
            e.counters.tx_frames += 1;
            e.counters.tx_bytes += f.data.len() as u64;
            let rx_ts = src.rx.slot(pieces[off + k].frame_index()).rx_ts();
            if rx_ts != 0 {
                let ns = done.saturating_sub(rx_ts);
                e.latency.record(ns);
                if let Some(pair) = pair.as_deref_mut() {
                    pair.record(ns);
                }
            }
        }
        if let Some(o) = obs {
            for (k, f) in frames[off..off + sent].iter().enumerate() {
                let p = &pieces[off + k];
                o.sent(readers, egress, p.frame_index(), f.data, p.cause);
                if let Bytes::Merged(..) = p.bytes {
                    record(o, off + k, &mut |o, i| {
                        o.io(i, egress, |io| io.coalesced = true)
                    });
                }
            }
        }
        off += sent;
        let Some(err) = err else { break };
        let rest = (frames.len() - off) as u64;
        let (reason, count) = match err {
            SendError::TooBig => (DropReason::EgressTooBig, 1),
            SendError::WouldBlock => (DropReason::EgressFull, rest),
            SendError::LinkDown => (DropReason::EgressDown, rest),
            SendError::Vanished => {
                vanished.push((egress, format!("interface {} vanished", e.port.name())));
                (DropReason::EgressDown, rest)
            }
            SendError::Io(err) => {
                if let Some(s) = log_limit.allow(Timestamp::now()) {
                    eprintln!(
                        "l2sw: send on port {} failed: {err} ({s} similar messages suppressed)",
                        e.meta.name
                    );
                }
                (DropReason::EgressError, 1)
            }
        };
        e.counters.drops.add(reason, count);
        if let Some(o) = obs {
            for k in off..off + count as usize {
                record(o, k, &mut |o, i| {
                    o.not_sent(readers, egress, i, None, reason)
                });
            }
        }
        if count == rest {
            break;
        }
        off += count as usize;
    }
}
