//! Stage 4, offload: fit each egress port's share to what the port can
//! take. A partial checksum some egress port cannot finish is completed in
//! place (once, for everyone); a frame too big for the live port's MTU is
//! dropped; a GSO super-frame the port cannot take is cut into segments in
//! software; runs of TCP segments are coalesced into one super-frame for a
//! port that takes GSO (software GRO, see `wire::gro`). What leaves is a
//! list of [`Piece`]s for the send stage.

use smallvec::SmallVec;

use super::components::port_entry::PortEntry;
use super::observe::Observer;
use super::readers::ActiveReader;
use super::shape::Variants;
use crate::observe::PortCounters;
use crate::port::{Gso, GsoKind, Offload, OffloadCaps, RxBatch, BATCH_SIZE};
use crate::switch::{Cause, DropReason, PortId};
use crate::wire::gro::{self, TcpSegment, TCP_CSUM_OFFSET};
use crate::wire::gso::{complete_partial, segment, SegmentKind};
use crate::wire::{EthernetFrame, ETH_HEADER_LEN, VLAN_TAG_LEN};

/// Reused space for software segments and coalesced super-frames.
#[derive(Default)]
pub struct Arenas {
    pub segments: Vec<u8>,
    ranges: Vec<(usize, usize)>,
    pub coalesced: Vec<u8>,
    /// After `coalesce`: (piece index, frame) of every frame merged into a
    /// super-frame it does not start.
    pub merged: SmallVec<[(u16, u16); BATCH_SIZE]>,
}

/// A partial checksum (without GSO) some egress port cannot take is
/// finished in place for everyone: the bytes are shared by every copy. Runs
/// before the shape stage copies frames.
pub fn finish_checksums(ports: &mut [Option<PortEntry>], touched: &[PortId], rx: &mut RxBatch) {
    for &t in touched {
        let Some(Some(e)) = ports.get_mut(t.index()) else {
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

/// One frame of an egress port's share, as the send stage takes it.
#[derive(Clone, Copy)]
pub struct Piece {
    /// The received frame it comes from (the first, for a merged run).
    pub frame: u16,
    /// Switched or a mirror copy (the same for every piece of one port).
    pub cause: Cause,
    pub bytes: Bytes,
    /// On a tunnel port: the VTEP it goes to (from the plan).
    pub remote: Option<std::net::Ipv4Addr>,
}

/// Where a piece's bytes are.
#[derive(Clone, Copy)]
pub enum Bytes {
    /// The receive buffer, sent as is with its offload.
    Rx,
    /// A re-shaped copy at (start, length) in the shape stage's arena,
    /// with its offload.
    Var(usize, usize, Offload),
    /// A segment cut in software, at (start, length) in `Arenas::segments`.
    Seg(usize, usize),
    /// A super-frame coalesced from a run of received frames, at (start,
    /// length) in `Arenas::coalesced`, with its offload.
    Merged(usize, usize, Offload),
}

impl Piece {
    pub fn frame_index(&self) -> usize {
        self.frame as usize
    }
}

/// Per frame of a batch, filled as the frames are looked at and shared by
/// every egress port the frame goes to: whether (and as what) it may join a
/// coalesced run, and whether its checksum verified. A checksum is only
/// summed once the frame is about to join a run, so lone segments cost a
/// header parse, not a pass over their payload.
pub struct Candidates {
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
    pub fn new(n: usize) -> Candidates {
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
/// Frames merged into a later frame's super-frame are listed in `merged`
/// as (index of the merged piece in the result, frame).
pub fn coalesce(
    pieces: &[Piece],
    rx: &RxBatch,
    caps: OffloadCaps,
    arenas: &mut Arenas,
    seen: &mut Candidates,
    counters: &mut PortCounters,
) -> SmallVec<[Piece; BATCH_SIZE]> {
    let mut out = SmallVec::new();
    arenas.merged.clear();
    let mut k = 0;
    while k < pieces.len() {
        let start = k;
        k += 1;
        let Piece {
            frame: i,
            cause,
            bytes: Bytes::Rx,
            remote,
        } = pieces[start]
        else {
            out.push(pieces[start]);
            continue;
        };
        let Some(first) = seen.parse(rx, i as usize) else {
            out.push(pieces[start]);
            continue;
        };
        let first_frame = rx.slot(i as usize).frame();
        let (mut last, mut run_len) = (first, first.len);
        while let Some(&Piece {
            frame: j,
            bytes: Bytes::Rx,
            ..
        }) = pieces.get(k)
        {
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
        let c = gro::build(
            &mut arenas.coalesced,
            first_frame,
            &first,
            frames,
            last.psh(),
        );
        for p in &pieces[start + 1..k] {
            arenas.merged.push((out.len() as u16, p.frame));
        }
        out.push(Piece {
            frame: i,
            cause,
            bytes: Bytes::Merged(c.start, c.len, offload),
            remote,
        });
        counters.coalesced += 1;
        counters.coalesced_segments += (k - start) as u64;
    }
    out
}

/// Turns port `egress`'s pending frames into the pieces its send takes:
/// each frame as received or as its re-shaped copy, dropped when over the
/// live port's MTU, cut into segments when the port takes no GSO.
pub fn fit(
    egress: PortId,
    e: &mut PortEntry,
    rx: &RxBatch,
    variants: &Variants,
    arenas: &mut Arenas,
    obs: &mut Option<Observer>,
    readers: &mut [ActiveReader],
) -> SmallVec<[Piece; BATCH_SIZE]> {
    let mut pieces = SmallVec::new();
    let mtu = e.port.mtu();
    let caps = e.port.offload_caps();
    arenas.segments.clear();
    arenas.ranges.clear();
    for p in &e.pending {
        let i = p.frame;
        let slot = rx.slot(i as usize);
        let var = p.variant.and_then(|k| variants.variant(i as usize, k));
        let (f, o) = match var {
            Some((s, l, o)) => (variants.bytes(s, l), o),
            None => (slot.frame(), slot.offload()),
        };
        if !fits_mtu(mtu, f, &o) {
            e.counters.drops.add(DropReason::EgressTooBig, 1);
            if let Some(obs) = obs {
                obs.not_sent(
                    readers,
                    egress,
                    i as usize,
                    Some(f),
                    DropReason::EgressTooBig,
                );
            }
            continue;
        }
        if caps.accepts(&o) {
            pieces.push(Piece {
                frame: i,
                cause: p.cause,
                bytes: match var {
                    Some((s, l, o)) => Bytes::Var(s, l, o),
                    None => Bytes::Rx,
                },
                remote: p.remote,
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
                if let Some(obs) = obs {
                    obs.not_sent(
                        readers,
                        egress,
                        i as usize,
                        None,
                        DropReason::GsoUnsupported,
                    );
                }
                continue;
            }
        };
        let first = arenas.ranges.len();
        match segment(
            f,
            kind,
            g.size as usize,
            g.ecn,
            &mut arenas.segments,
            &mut arenas.ranges,
        ) {
            Ok(_) => {
                e.counters.sw_segmented += 1;
                let cut = arenas.ranges.len() - first;
                if let Some(obs) = obs {
                    obs.io(i as usize, egress, |io| io.segments = Some(cut as u32));
                }
                for &(s, l) in &arenas.ranges[first..] {
                    pieces.push(Piece {
                        frame: i,
                        cause: p.cause,
                        bytes: Bytes::Seg(s, l),
                        remote: p.remote,
                    });
                }
            }
            Err(_) => {
                e.counters.drops.add(DropReason::GsoUnsupported, 1);
                if let Some(obs) = obs {
                    obs.not_sent(
                        readers,
                        egress,
                        i as usize,
                        None,
                        DropReason::GsoUnsupported,
                    );
                }
            }
        }
    }
    pieces
}
