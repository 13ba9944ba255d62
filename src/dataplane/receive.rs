//! Stage 1, receive: read one batch from the ingress port, count it, and
//! finish checksums a sender left unfinished without saying where they
//! start. A port that vanished is removed here.

use super::state::State;
use crate::port::{RxBatch, RxStatus};
use crate::switch::{DropReason, PortId, Timestamp};
use crate::wire::checksum::complete_l4_checksum;

/// Why a read produced no frames to forward.
pub enum NoFrames {
    /// Nothing to read (or a transient error, logged).
    Empty,
    /// The port is gone and was removed.
    Removed,
}

/// Reads up to a batch from `ingress` into `rx` and accounts for it on the
/// port: frames and bytes, super-frames, truncated frames (dropped later by
/// the decide stage, which skips them). Returns how many frames `rx` holds.
pub fn receive(st: &mut State, ingress: PortId, rx: &mut RxBatch) -> Result<usize, NoFrames> {
    let Some(entry) = st.ports.get_mut(ingress.index()).and_then(|p| p.as_mut()) else {
        return Err(NoFrames::Empty);
    };
    let n = match entry.port.recv_batch(rx) {
        Ok(0) => return Err(NoFrames::Empty),
        Ok(n) => n,
        Err(e) if e.is_vanished() => {
            st.remove_vanished(ingress, e.to_string());
            return Err(NoFrames::Removed);
        }
        Err(e) => {
            if let Some(suppressed) = st.log_limit.allow(Timestamp::now()) {
                eprintln!(
                    "l2sw: port {}: {e} ({suppressed} similar messages suppressed)",
                    entry.meta.name
                );
            }
            return Err(NoFrames::Empty);
        }
    };
    let c = &mut entry.counters;
    for i in 0..n {
        let slot = rx.slot_mut(i);
        c.rx_frames += 1;
        c.rx_bytes += slot.frame().len() as u64;
        if slot.offload().gso.is_some() {
            c.rx_gso += 1;
        }
        match slot.status() {
            RxStatus::Complete => {}
            RxStatus::Truncated { .. } => c.drops.add(DropReason::RxTruncated, 1),
            RxStatus::Invalid(why) => c.drops.add(super::tunnel::drop_reason(why), 1),
        }
        // Checksums a sender left unfinished with no header saying where
        // they start (no virtio-net header): finish them by parsing; see
        // wire::checksum. Frames that are not TCP/UDP carry none to finish.
        if slot.csum_partial() {
            let _ = complete_l4_checksum(slot.frame_mut());
            c.sw_csum += 1;
        }
    }
    Ok(n)
}

/// Whether received frame `i` is to be forwarded at all (truncated frames
/// and tunnel packets that did not decapsulate were counted as dropped by
/// `receive`).
pub fn complete(rx: &RxBatch, i: usize) -> bool {
    matches!(rx.slot(i).status(), RxStatus::Complete)
}

/// Why received frame `i` was refused, for its capture record.
pub fn refusal(rx: &RxBatch, i: usize) -> DropReason {
    match rx.slot(i).status() {
        RxStatus::Invalid(why) => super::tunnel::drop_reason(why),
        _ => DropReason::RxTruncated,
    }
}
