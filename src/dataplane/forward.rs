//! One receive batch through the switch: read, decide per frame, send each
//! egress port its share in one call, count everything.

use smallvec::SmallVec;

use super::state::State;
use crate::port::{RxBatch, RxStatus, SendError, BATCH_SIZE};
use crate::switch::{Action, DropReason, Mode, PortId, Timestamp};
use crate::wire::checksum::complete_l4_checksum;
use crate::wire::{EthernetFrame, ETH_HEADER_LEN, VLAN_TAG_LEN};

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

/// Largest frame `mtu` lets through: header, plus one tag if the frame has one
/// (the same allowance AF_PACKET and the Linux bridge make).
fn max_frame_len(mtu: u32, frame: &[u8]) -> usize {
    let tagged = EthernetFrame::new_checked(frame)
        .map(|f| f.vlan().is_some())
        .unwrap_or(false);
    mtu as usize + ETH_HEADER_LEN + if tagged { VLAN_TAG_LEN } else { 0 }
}

/// Reads one batch from `ingress` and forwards it.
pub fn forward_batch(st: &mut State, ingress: PortId, rx: &mut RxBatch) -> Drained {
    let Some(entry) = st.ports.get_mut(ingress.index()).and_then(|p| p.as_mut()) else {
        return Drained::Empty;
    };
    let n = match entry.port.recv_batch(rx) {
        Ok(n) => n,
        Err(e) if e.is_vanished() => {
            st.remove_vanished(ingress, e.to_string());
            return Drained::Removed;
        }
        Err(e) => {
            let now = Timestamp::now();
            if let Some(suppressed) = st.log_limit.allow(now) {
                eprintln!(
                    "l2sw: port {}: {e} ({suppressed} similar messages suppressed)",
                    entry.meta.name
                );
            }
            return Drained::Empty;
        }
    };
    if n == 0 {
        return Drained::Empty;
    }
    let now = Timestamp::now();

    // Finish checksums senders left to the (virtual) hardware; see wire::checksum.
    for i in 0..n {
        let slot = rx.slot_mut(i);
        if slot.csum_partial() {
            // Frames that are not TCP/UDP carry no partial checksum to finish.
            let _ = complete_l4_checksum(slot.frame_mut());
        }
    }

    // Decide every frame first, collecting per-egress index lists.
    let mut touched: SmallVec<[PortId; 16]> = SmallVec::new();
    for i in 0..n {
        let slot = rx.slot(i);
        let frame = slot.frame();
        {
            let c = &mut st.ports[ingress.index()]
                .as_mut()
                .expect("ingress exists")
                .counters;
            c.rx_frames += 1;
            c.rx_bytes += frame.len() as u64;
            if let RxStatus::Truncated { .. } = slot.status() {
                c.drops.add(DropReason::RxTruncated, 1);
                continue;
            }
        }
        let decision = st.switch.decide(ingress, frame, now, Mode::Apply);
        match decision.action {
            Action::Forward { port } => {
                if let Some(Some(e)) = st.ports.get_mut(port.index()) {
                    if e.pending.is_empty() {
                        touched.push(port);
                    }
                    e.pending.push(i as u16);
                }
            }
            Action::Flood { .. } => {
                let State { switch, ports, .. } = &mut *st;
                for t in switch.flood_targets(ingress) {
                    if let Some(Some(e)) = ports.get_mut(t.index()) {
                        if e.pending.is_empty() {
                            touched.push(t);
                        }
                        e.pending.push(i as u16);
                    }
                }
            }
            Action::Drop { reason } => {
                if let Some(Some(e)) = st.ports.get_mut(ingress.index()) {
                    e.counters.drops.add(reason, 1);
                }
            }
        }
    }

    let mut vanished: SmallVec<[(PortId, String); 2]> = SmallVec::new();
    let State {
        ports, log_limit, ..
    } = &mut *st;
    for egress in touched {
        let Some(Some(e)) = ports.get_mut(egress.index()) else {
            continue;
        };
        let mtu = e.port.mtu();
        let mut frames: SmallVec<[&[u8]; BATCH_SIZE]> = SmallVec::new();
        for &i in &e.pending {
            let f = rx.slot(i as usize).frame();
            if f.len() > max_frame_len(mtu, f) {
                e.counters.drops.add(DropReason::EgressTooBig, 1);
            } else {
                frames.push(f);
            }
        }
        e.pending.clear();
        let mut off = 0;
        while off < frames.len() {
            let (sent, err) = e.port.send_batch(&frames[off..]);
            for f in &frames[off..off + sent] {
                e.counters.tx_frames += 1;
                e.counters.tx_bytes += f.len() as u64;
            }
            off += sent;
            let Some(err) = err else { break };
            let rest = (frames.len() - off) as u64;
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
                    vanished.push((egress, format!("interface {} vanished", e.port.name())));
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
