//! One receive batch through the switch: read, decide per frame, send each
//! egress port its share in one call, count everything.
//!
//! Frames keep their offload state (partial checksum, GSO) on the way to an
//! egress port that takes it; for a port that does not, a super-frame is cut
//! into segments in software and a partial checksum is finished in place.

use smallvec::SmallVec;

use super::state::{Pending, State};
use super::tap::{self, Seen};
use super::trace::{explain, verdict};
use crate::observe::records::Dir;
use crate::observe::PortCounters;
use crate::port::{
    Gso, GsoKind, Offload, OffloadCaps, RxBatch, RxStatus, SendError, TxFrame, BATCH_SIZE,
};
use crate::switch::{Action, Decision, DropReason, Encap, Mode, PortId, Timestamp};
use crate::wire::checksum::complete_l4_checksum;
use crate::wire::gro::{self, TcpSegment, TCP_CSUM_OFFSET};
use crate::wire::gso::{complete_partial, segment, SegmentKind};
use crate::wire::{EthernetFrame, VlanTag, ETH_HEADER_LEN, VLAN_TAG_LEN};

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

/// Reused scratch space for re-tagged copies, software segmentation and
/// coalescing.
#[derive(Default)]
pub struct Scratch {
    variants: Vec<u8>,
    segments: Vec<u8>,
    ranges: Vec<(usize, usize)>,
    coalesced: Vec<u8>,
}

/// Largest frame `mtu` lets through: header, plus one tag if the frame has one
/// (the same allowance AF_PACKET and the Linux bridge make). GSO super-frames
/// are exempt, as on the bridge: their segments are what must fit.
fn fits_mtu(mtu: u32, frame: &[u8], offload: &Offload) -> bool {
    if offload.gso.is_some() {
        return true;
    }
    let tagged = EthernetFrame::new_checked(frame)
        .map(|f| f.vlan().is_some())
        .unwrap_or(false);
    frame.len() <= mtu as usize + ETH_HEADER_LEN + if tagged { VLAN_TAG_LEN } else { 0 }
}

/// Where one frame of an egress port's share comes from.
#[derive(Clone, Copy)]
enum Piece {
    /// A received frame, sent as is with its offload.
    Rx(u16),
    /// Received frame `.2` re-tagged or untagged, at `.0` (length `.1`) in
    /// `Scratch::variants`, with offload `.3`.
    Var(usize, usize, u16, Offload),
    /// A segment of received frame `.2`, cut in software, at `.0` (length
    /// `.1`) in `Scratch::segments`.
    Seg(usize, usize, u16),
    /// A super-frame coalesced from a run of received frames starting with
    /// `.2`, at `.0` (length `.1`) in `Scratch::coalesced`, with offload `.3`.
    Merged(usize, usize, u16, Offload),
}

impl Piece {
    fn frame_index(&self) -> usize {
        match *self {
            Piece::Rx(i)
            | Piece::Var(_, _, i, _)
            | Piece::Seg(_, _, i)
            | Piece::Merged(_, _, i, _) => i as usize,
        }
    }
}

/// Per frame of a batch, filled as the frames are looked at and shared by
/// every egress port the frame goes to: whether (and as what) it may join a
/// coalesced run, and whether its checksum verified. A checksum is only
/// summed once the frame is about to join a run, so lone segments cost a
/// header parse, not a pass over their payload.
struct Candidates {
    parsed: SmallVec<[Option<Option<Candidate>>; BATCH_SIZE]>,
    checksum_ok: SmallVec<[Option<bool>; BATCH_SIZE]>,
}

#[derive(Clone, Copy)]
struct Candidate {
    seg: TcpSegment,
    /// The checksum is complete and nobody vouched for it.
    unverified: bool,
}

impl Candidates {
    fn new(n: usize) -> Candidates {
        Candidates {
            parsed: SmallVec::from_elem(None, n),
            checksum_ok: SmallVec::from_elem(None, n),
        }
    }

    /// Received frame `i` as a segment a run may take: TCP that parses for
    /// coalescing, not already a super-frame, with a partial checksum at the
    /// TCP checksum field or a complete one.
    fn parse(&mut self, rx: &RxBatch, i: usize) -> Option<TcpSegment> {
        self.parsed[i]
            .get_or_insert_with(|| {
                let slot = rx.slot(i);
                let (f, o) = (slot.frame(), slot.offload());
                if o.gso.is_some() {
                    return None;
                }
                let seg = TcpSegment::parse(f)?;
                let unverified = match o.csum {
                    Some((start, off)) => {
                        if start as usize != seg.l4 || off as usize != TCP_CSUM_OFFSET {
                            return None;
                        }
                        false
                    }
                    None => !o.data_valid,
                };
                Some(Candidate { seg, unverified })
            })
            .map(|c| c.seg)
    }

    /// Whether parsed frame `i`'s checksum may be trusted. The super-frame
    /// leaves with a partial checksum, which the receiver trusts: a segment
    /// damaged on the way in must not hide in it.
    fn trusted(&mut self, rx: &RxBatch, i: usize) -> bool {
        let Some(Some(c)) = self.parsed[i] else {
            return false;
        };
        !c.unverified
            || *self.checksum_ok[i]
                .get_or_insert_with(|| gro::checksum_ok(rx.slot(i).frame(), &c.seg))
    }
}

/// Merges runs of consecutive segments of one flow among an egress port's
/// `pieces` into super-frames written to `arena` (software GRO, see
/// `wire::gro`). Only neighbours merge, so the port's frame order is kept.
fn coalesce(
    pieces: &[Piece],
    rx: &RxBatch,
    caps: OffloadCaps,
    arena: &mut Vec<u8>,
    seen: &mut Candidates,
    counters: &mut PortCounters,
) -> SmallVec<[Piece; BATCH_SIZE]> {
    let mut out = SmallVec::new();
    let mut k = 0;
    while k < pieces.len() {
        let start = k;
        k += 1;
        let Piece::Rx(i) = pieces[start] else {
            out.push(pieces[start]);
            continue;
        };
        let Some(first) = seen.parse(rx, i as usize) else {
            out.push(pieces[start]);
            continue;
        };
        let first_frame = rx.slot(i as usize).frame();
        let (mut last, mut run_len) = (first, first.len);
        while let Some(&Piece::Rx(j)) = pieces.get(k) {
            let Some(next) = seen.parse(rx, j as usize) else {
                break;
            };
            let next_frame = rx.slot(j as usize).frame();
            if !gro::continues(first_frame, &first, &last, run_len, next_frame, &next)
                || (k == start + 1 && !seen.trusted(rx, i as usize))
                || !seen.trusted(rx, j as usize)
            {
                break;
            }
            (last, run_len) = (next, run_len + next.len);
            k += 1;
        }
        let offload = Offload {
            csum: Some((first.l4 as u16, TCP_CSUM_OFFSET as u16)),
            data_valid: false,
            gso: Some(Gso {
                kind: if first.v4 {
                    GsoKind::Tcp4
                } else {
                    GsoKind::Tcp6
                },
                ecn: false,
                size: first.len as u16,
                hdr_len: first.payload as u16,
            }),
        };
        if k - start == 1 || !caps.accepts(&offload) {
            out.extend_from_slice(&pieces[start..k]);
            continue;
        }
        let frames = pieces[start..k]
            .iter()
            .map(|p| rx.slot(p.frame_index()).frame());
        let c = gro::build(arena, first_frame, &first, frames, last.psh());
        out.push(Piece::Merged(c.start, c.len, i, offload));
        counters.coalesced += 1;
        counters.coalesced_segments += (k - start) as u64;
    }
    out
}

/// What a frame needs to leave a port as the port's VLAN mode says.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Same,
    /// Without its outer tag.
    Strip,
    /// With this outer tag, replacing the frame's own or pushed in front.
    Tag([u8; 4], bool),
}

/// How `frame` must change to leave as `enc` says, and which cached copy
/// (0: untagged, 1: re-tagged, 2: tagged with priority 0) that is.
fn shape(frame: &[u8], enc: Encap, vlan: u16) -> (Shape, usize) {
    let outer = EthernetFrame::new_checked(frame)
        .ok()
        .and_then(|f| f.vlan());
    let fresh = |pcp_from: Option<VlanTag>| {
        // A tag the switch writes carries no DEI, as on Open vSwitch; a
        // priority tag keeps its TPID and priority.
        let t = match pcp_from {
            Some(t) => VlanTag {
                vid: vlan,
                dei: false,
                ..t
            },
            None => VlanTag {
                tpid: 0x8100,
                pcp: 0,
                dei: false,
                vid: vlan,
            },
        };
        t.to_bytes()
    };
    match (enc, outer) {
        (Encap::AsReceived, _) | (Encap::Untagged, None) | (Encap::Priority, None) => {
            (Shape::Same, 0)
        }
        (Encap::Priority, Some(t)) if t.pcp != 0 => (Shape::Same, 0),
        (Encap::Untagged | Encap::Priority, Some(_)) => (Shape::Strip, 0),
        (Encap::Tagged, Some(t)) if t.vid == vlan => (Shape::Same, 0),
        (Encap::Tagged, Some(t)) => (Shape::Tag(fresh(Some(t)), false), 1),
        (Encap::Tagged, None) => (Shape::Tag(fresh(None), true), 1),
        (Encap::TaggedPcp0, Some(_)) => (Shape::Tag(fresh(None), false), 2),
        (Encap::TaggedPcp0, None) => (Shape::Tag(fresh(None), true), 2),
    }
}

/// A re-shaped copy: where it is in `Scratch::variants`, and its offload.
type Variant = (usize, usize, Offload);

/// Builds the re-shaped copy of `frame` at the end of `arena`.
fn build_variant(arena: &mut Vec<u8>, frame: &[u8], o: Offload, sh: Shape) -> Variant {
    let start = arena.len();
    let o = match sh {
        Shape::Same => {
            arena.extend_from_slice(frame);
            o
        }
        Shape::Strip => {
            arena.extend_from_slice(&frame[..12]);
            arena.extend_from_slice(&frame[16..]);
            o.unshifted(VLAN_TAG_LEN as u16)
        }
        Shape::Tag(tag, pushed) => {
            arena.extend_from_slice(&frame[..12]);
            arena.extend_from_slice(&tag);
            if pushed {
                arena.extend_from_slice(&frame[12..]);
                o.shifted(VLAN_TAG_LEN as u16)
            } else {
                arena.extend_from_slice(&frame[16..]);
                o
            }
        }
    };
    (start, arena.len() - start, o)
}

/// The comment on an egress record.
fn out_comment(d: Option<&Decision>) -> String {
    match d.map(|d| d.action) {
        Some(Action::Forward { .. }) => "forward: known unicast".into(),
        Some(Action::Flood { kind }) => format!("flood: {}", kind.name()),
        _ => "flood".into(),
    }
}

/// Per-batch context for taps: packet ids, timestamp, decisions.
struct Tapping {
    base_id: u64,
    ts_ns: u64,
    decisions: SmallVec<[Option<Decision>; BATCH_SIZE]>,
    /// Port names by id, looked up once per batch for the records.
    names: Vec<String>,
}

/// Reads one batch from `ingress` and forwards it.
pub fn forward_batch(
    st: &mut State,
    ingress: PortId,
    rx: &mut RxBatch,
    scratch: &mut Scratch,
) -> Drained {
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
    let mut tapping = (!st.taps.is_empty()).then(|| {
        let t = Tapping {
            base_id: st.next_packet_id,
            ts_ns: crate::port::realtime_ns(),
            decisions: SmallVec::from_elem(None, n),
            names: st.names(),
        };
        st.next_packet_id += n as u64;
        t
    });
    let entry = st.ports[ingress.index()].as_mut().expect("ingress exists");

    // Checksums a sender left unfinished with no header saying where they
    // start (no virtio-net header): finish them by parsing; see wire::checksum.
    for i in 0..n {
        let slot = rx.slot_mut(i);
        if slot.csum_partial() {
            // Frames that are not TCP/UDP carry no partial checksum to finish.
            let _ = complete_l4_checksum(slot.frame_mut());
            entry.counters.sw_csum += 1;
        }
    }

    // Decide every frame first, collecting per-egress index lists.
    let mut touched: SmallVec<[PortId; 16]> = SmallVec::new();
    let mut vlans: SmallVec<[u16; BATCH_SIZE]> = SmallVec::from_elem(0, n);
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
            if slot.offload().gso.is_some() {
                c.rx_gso += 1;
            }
            if let RxStatus::Truncated { .. } = slot.status() {
                c.drops.add(DropReason::RxTruncated, 1);
                if let Some(t) = &tapping {
                    let State { ports, taps, .. } = &mut *st;
                    let name = &ports[ingress.index()].as_ref().expect("ingress").meta.name;
                    let seen = Seen {
                        port: ingress,
                        port_name: name,
                        dir: Dir::In,
                        id: t.base_id + i as u64,
                        ts_ns: t.ts_ns,
                    };
                    tap::capture(taps, &seen, frame, &|| "drop: rx_truncated".into());
                }
                continue;
            }
        }
        let decision = st.switch.decide(ingress, frame, now, Mode::Apply);
        if !st.monitors.is_empty() {
            super::monitor::on_decision(st, ingress, &decision);
        }
        if let Some(t) = &mut tapping {
            t.decisions[i] = Some(decision);
            let seen = (t.base_id + i as u64, t.ts_ns);
            record_ingress(st, &t.names, ingress, frame, &decision, seen, now);
        }
        vlans[i] = decision.vlan;
        let State { switch, ports, .. } = &mut *st;
        if let Action::Drop { reason } = decision.action {
            if let Some(Some(e)) = ports.get_mut(ingress.index()) {
                e.counters.drops.add(reason, 1);
            }
        }
        let mut push = |t: PortId, enc: Encap, touched: &mut SmallVec<[PortId; 16]>| {
            if let Some(Some(e)) = ports.get_mut(t.index()) {
                if e.pending.is_empty() {
                    touched.push(t);
                }
                e.pending.push(Pending {
                    frame: i as u16,
                    encap: enc,
                    variant: None,
                });
            }
        };
        let mut sent: SmallVec<[(PortId, Encap); 8]> = SmallVec::new();
        if !matches!(decision.action, Action::Drop { .. }) {
            for (t, enc) in switch.egress(ingress, &decision) {
                push(t, enc, &mut touched);
                sent.push((t, enc));
            }
        }
        if switch.mirrors().is_empty() {
            continue;
        }
        // Mirrors copy what passed the VLAN ingress check, also frames
        // switching then dropped; at most one copy per output port, written
        // the way the output port's own VLAN mode says (as Open vSwitch).
        let unmirrored = matches!(
            decision.action,
            Action::Drop {
                reason: DropReason::Runt
                    | DropReason::VlanTaggedOnAccess
                    | DropReason::VlanNotCarried
                    | DropReason::MirrorOutput
            }
        );
        if unmirrored {
            continue;
        }
        let mut done: SmallVec<[PortId; 4]> = SmallVec::new();
        for m in switch.mirrors() {
            if done.contains(&m.output) {
                continue;
            }
            let out = switch.encap(m.output, decision.vlan);
            let copy = if m.src.contains(&ingress) {
                Some(out)
            } else {
                sent.iter()
                    .find(|(p, _)| m.dst.contains(p))
                    .map(|(_, enc)| {
                        // A copy of a frame sent untagged carries no priority.
                        match (enc, out) {
                            (Encap::Untagged | Encap::Priority, Encap::Tagged) => Encap::TaggedPcp0,
                            _ => out,
                        }
                    })
            };
            if let Some(enc) = copy {
                push(m.output, enc, &mut touched);
                done.push(m.output);
            }
        }
    }

    // A partial checksum (without GSO) some egress port cannot take is
    // finished in place for everyone: the bytes are shared by every copy.
    for &t in &touched {
        let Some(Some(e)) = st.ports.get_mut(t.index()) else {
            continue;
        };
        let caps = e.port.offload_caps();
        for p in &e.pending {
            let slot = rx.slot_mut(p.frame as usize);
            let o = slot.offload();
            if let (Some((start, off)), None) = (o.csum, o.gso) {
                if !caps.csum {
                    complete_partial(slot.frame_mut(), start as usize, off as usize);
                    slot.set_offload(Offload { csum: None, ..o });
                    e.counters.sw_csum += 1;
                }
            }
        }
    }

    // Re-tagged and untagged copies, one per frame and shape, shared by
    // every port that needs that shape.
    scratch.variants.clear();
    let mut cache: SmallVec<[[Option<Variant>; 3]; BATCH_SIZE]> =
        SmallVec::from_elem([None, None, None], n);
    for &t in &touched {
        let Some(Some(e)) = st.ports.get_mut(t.index()) else {
            continue;
        };
        for p in &mut e.pending {
            let i = p.frame;
            let slot = rx.slot(i as usize);
            let (sh, k) = shape(slot.frame(), p.encap, vlans[i as usize]);
            if sh == Shape::Same {
                continue;
            }
            p.variant = Some(k as u8);
            if cache[i as usize][k].is_none() {
                cache[i as usize][k] = Some(build_variant(
                    &mut scratch.variants,
                    slot.frame(),
                    slot.offload(),
                    sh,
                ));
            }
        }
    }

    let gro = st.switch.port_policy(ingress).is_some_and(|p| p.gro);
    // Made when a port first coalesces: most batches never need it.
    let mut seen: Option<Candidates> = None;
    let mut vanished: SmallVec<[(PortId, String); 2]> = SmallVec::new();
    let Scratch {
        variants,
        segments,
        ranges,
        coalesced,
    } = scratch;
    let State {
        ports,
        log_limit,
        taps,
        pairs,
        ..
    } = &mut *st;
    for egress in touched {
        let Some(Some(e)) = ports.get_mut(egress.index()) else {
            continue;
        };
        let mtu = e.port.mtu();
        let caps = e.port.offload_caps();
        segments.clear();
        ranges.clear();
        let mut pieces: SmallVec<[Piece; BATCH_SIZE]> = SmallVec::new();
        for p in &e.pending {
            let i = p.frame;
            let slot = rx.slot(i as usize);
            let var = p.variant.and_then(|k| cache[i as usize][k as usize]);
            let (f, o) = match var {
                Some((s, l, o)) => (&variants[s..s + l], o),
                None => (slot.frame(), slot.offload()),
            };
            if !fits_mtu(mtu, f, &o) {
                e.counters.drops.add(DropReason::EgressTooBig, 1);
                if let Some(t) = &tapping {
                    let seen = Seen {
                        port: egress,
                        port_name: &e.meta.name,
                        dir: Dir::Out,
                        id: t.base_id + i as u64,
                        ts_ns: t.ts_ns,
                    };
                    tap::capture(taps, &seen, f, &|| "drop: egress_too_big (not sent)".into());
                }
                continue;
            }
            if caps.accepts(&o) {
                pieces.push(match var {
                    Some((s, l, o)) => Piece::Var(s, l, i, o),
                    None => Piece::Rx(i),
                });
                continue;
            }
            // Only GSO is left that the port cannot take: cut it here.
            let g = o.gso.expect("only GSO is left unaccepted");
            let kind = match g.kind {
                GsoKind::Tcp4 | GsoKind::Tcp6 => SegmentKind::Tcp,
                GsoKind::UdpL4 => SegmentKind::Udp,
                GsoKind::Ufo => {
                    e.counters.drops.add(DropReason::GsoUnsupported, 1);
                    continue;
                }
            };
            let first = ranges.len();
            match segment(f, kind, g.size as usize, g.ecn, segments, ranges) {
                Ok(_) => {
                    e.counters.sw_segmented += 1;
                    for &(s, l) in &ranges[first..] {
                        pieces.push(Piece::Seg(s, l, i));
                    }
                }
                Err(_) => e.counters.drops.add(DropReason::GsoUnsupported, 1),
            }
        }
        e.pending.clear();
        coalesced.clear();
        if gro && pieces.len() > 1 && caps.csum && (caps.tso4 || caps.tso6) {
            let seen = seen.get_or_insert_with(|| Candidates::new(n));
            pieces = coalesce(&pieces, rx, caps, coalesced, seen, &mut e.counters);
        }
        let frames: SmallVec<[TxFrame<'_>; BATCH_SIZE]> = pieces
            .iter()
            .map(|p| match *p {
                Piece::Rx(i) => {
                    let slot = rx.slot(i as usize);
                    TxFrame {
                        data: slot.frame(),
                        offload: slot.offload(),
                    }
                }
                Piece::Var(s, l, _, o) => TxFrame {
                    data: &variants[s..s + l],
                    offload: o,
                },
                Piece::Seg(s, l, _) => TxFrame::plain(&segments[s..s + l]),
                Piece::Merged(s, l, _, o) => TxFrame {
                    data: &coalesced[s..s + l],
                    offload: o,
                },
            })
            .collect();
        let pair = pairs.entry((ingress, egress)).or_default();
        let mut off = 0;
        while off < frames.len() {
            let (sent, err) = e.port.send_batch(&frames[off..]);
            // Residence: from the kernel's receive stamp to the send's return.
            let done = crate::port::realtime_ns();
            for (k, f) in frames[off..off + sent].iter().enumerate() {
                e.counters.tx_frames += 1;
                e.counters.tx_bytes += f.data.len() as u64;
                let rx_ts = rx.slot(pieces[off + k].frame_index()).rx_ts();
                if rx_ts != 0 {
                    let ns = done.saturating_sub(rx_ts);
                    e.latency.record(ns);
                    pair.record(ns);
                }
            }
            if let Some(t) = &tapping {
                for (k, f) in frames[off..off + sent].iter().enumerate() {
                    let i = pieces[off + k].frame_index();
                    let seen = Seen {
                        port: egress,
                        port_name: &e.meta.name,
                        dir: Dir::Out,
                        id: t.base_id + i as u64,
                        ts_ns: t.ts_ns,
                    };
                    let d = t.decisions.get(i).and_then(|d| d.as_ref());
                    tap::capture(taps, &seen, f.data, &|| out_comment(d));
                }
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

/// Capture and live-trace records for a frame just decided.
fn record_ingress(
    st: &mut State,
    names: &[String],
    ingress: PortId,
    frame: &[u8],
    d: &Decision,
    (id, ts_ns): (u64, u64),
    now: Timestamp,
) {
    let name = |p: PortId| names.get(p.index()).cloned().unwrap_or_default();
    let in_name = name(ingress);
    let seen = Seen {
        port: ingress,
        port_name: &in_name,
        dir: Dir::In,
        id,
        ts_ns,
    };
    tap::capture(&mut st.taps, &seen, frame, &|| verdict(d, &name));
    if tap::trace_wanted(&st.taps, ingress, &in_name, frame) {
        let report = explain(&st.switch, &name, ingress, frame, d, now, false);
        tap::trace(&mut st.taps, &seen, frame, &report);
    }
}
