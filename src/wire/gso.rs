//! Software segmentation of GSO super-frames and completion of partial
//! checksums, for egress ports that cannot take either from the switch.
//!
//! A super-frame is one set of Ethernet/IP/TCP (or UDP) headers in front of
//! up to 64 KiB of payload; cut into `mss`-sized pieces, each piece gets a
//! copy of the headers with its lengths, IPv4 identification, TCP sequence
//! number and flags adjusted and every checksum computed from scratch, the
//! way the kernel's own GSO does it.

use super::checksum::{finish, sum16};
use super::ip::IpHeaders;

/// Which kind of segmentation a super-frame asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// TCP over IPv4 or IPv6 (TSO).
    Tcp,
    /// UDP over IPv4 or IPv6, each segment a datagram (USO / UDP_L4).
    Udp,
}

/// Why a super-frame could not be segmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GsoError {
    #[error("headers do not parse as IPv4/IPv6 with TCP/UDP")]
    BadHeaders,
    #[error("segment size 0")]
    ZeroMss,
}

/// Where the headers of a super-frame are.
struct Layout {
    /// The located IP header; its pseudo header sum is taken from each
    /// segment's own copy of the addresses.
    hdr: IpHeaders,
    ip: usize,
    v4: bool,
    l4: usize,
    /// End of the L4 header: the payload starts here.
    payload: usize,
}

pub(super) fn be16(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}

pub(super) fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_be_bytes());
}

fn layout(frame: &[u8], kind: SegmentKind) -> Option<Layout> {
    // Extension headers in a GSO frame are rare enough not to carry.
    let h = IpHeaders::locate_behind_tags(frame, usize::MAX).ok()?;
    let (ip, v4, l4, proto) = (h.ip, h.v4, h.l4(), h.proto);
    let payload = match (kind, proto) {
        // A data offset under 5 words would put the sequence number, flags
        // and checksum this rewrites outside the headers (found by fuzzing).
        (SegmentKind::Tcp, 6) => match (*frame.get(l4 + 12)? >> 4) as usize * 4 {
            doff if doff >= 20 => l4 + doff,
            _ => return None,
        },
        (SegmentKind::Udp, 17) => l4 + 8,
        _ => return None,
    };
    (payload <= frame.len() && payload > l4).then_some(Layout {
        hdr: h,
        ip,
        v4,
        l4,
        payload,
    })
}

/// The checksum over the pseudo header and `seg[l4..]`, with the L4 length
/// taken from the segment.
fn l4_checksum(seg: &[u8], lay: &Layout) -> u16 {
    let s = lay.hdr.pseudo_header_sum(seg, seg.len() - lay.l4);
    let c = finish(sum16(s, &seg[lay.l4..]));
    if c == 0 {
        0xffff
    } else {
        c
    }
}

/// Cuts `frame` into segments of at most `mss` payload bytes, appending each
/// whole segment to `out` and its range to `ranges`. `ecn` keeps TCP CWR on
/// the first segment only.
pub fn segment(
    frame: &[u8],
    kind: SegmentKind,
    mss: usize,
    ecn: bool,
    out: &mut Vec<u8>,
    ranges: &mut Vec<(usize, usize)>,
) -> Result<usize, GsoError> {
    if mss == 0 {
        return Err(GsoError::ZeroMss);
    }
    let lay = layout(frame, kind).ok_or(GsoError::BadHeaders)?;
    let headers = &frame[..lay.payload];
    let payload = &frame[lay.payload..];
    let chunks = payload.len().div_ceil(mss).max(1);
    let ip_id = if lay.v4 { be16(frame, lay.ip + 4) } else { 0 };
    let seq = if kind == SegmentKind::Tcp {
        u32::from_be_bytes(frame[lay.l4 + 4..lay.l4 + 8].try_into().unwrap())
    } else {
        0
    };
    for i in 0..chunks {
        let piece = &payload[(i * mss).min(payload.len())..((i + 1) * mss).min(payload.len())];
        let start = out.len();
        out.extend_from_slice(headers);
        out.extend_from_slice(piece);
        let seg = &mut out[start..];
        let len = seg.len();
        if lay.v4 {
            put16(seg, lay.ip + 2, (len - lay.ip) as u16);
            put16(seg, lay.ip + 4, ip_id.wrapping_add(i as u16));
            put16(seg, lay.ip + 10, 0);
            let c = finish(sum16(0, &seg[lay.ip..lay.l4]));
            put16(seg, lay.ip + 10, c);
        } else {
            put16(seg, lay.ip + 4, (len - lay.ip - 40) as u16);
        }
        match kind {
            SegmentKind::Tcp => {
                let s = seq.wrapping_add((i * mss) as u32);
                seg[lay.l4 + 4..lay.l4 + 8].copy_from_slice(&s.to_be_bytes());
                let flags = lay.l4 + 13;
                if i + 1 < chunks {
                    seg[flags] &= !(0x01 | 0x08); // FIN, PSH only on the last
                }
                if i > 0 && ecn {
                    seg[flags] &= !0x80; // CWR only on the first
                }
                put16(seg, lay.l4 + 16, 0);
                let c = l4_checksum(seg, &lay);
                put16(seg, lay.l4 + 16, c);
            }
            SegmentKind::Udp => {
                put16(seg, lay.l4 + 4, (len - lay.l4) as u16);
                put16(seg, lay.l4 + 6, 0);
                let c = l4_checksum(seg, &lay);
                put16(seg, lay.l4 + 6, c);
            }
        }
        ranges.push((start, len));
    }
    Ok(chunks)
}

/// Finishes a partial checksum: the one's-complement sum from `start` to the
/// end (the field already holds the pseudo-header sum), stored at
/// `start + offset`. Returns false when the offsets do not fit the frame.
pub fn complete_partial(frame: &mut [u8], start: usize, offset: usize) -> bool {
    let field = start + offset;
    if start >= frame.len() || field + 2 > frame.len() {
        return false;
    }
    let mut c = finish(sum16(0, &frame[start..]));
    if c == 0 {
        // One's-complement zero; UDP reserves 0x0000 for "no checksum".
        c = 0xffff;
    }
    put16(frame, field, c);
    true
}

/// Test helper: `frame` cut into TCP segments of `mss` payload bytes, each
/// its own `Vec`, every checksum computed.
#[cfg(test)]
pub(crate) fn cut_tcp(frame: &[u8], mss: usize) -> Vec<Vec<u8>> {
    let (mut out, mut ranges) = (Vec::new(), Vec::new());
    segment(frame, SegmentKind::Tcp, mss, false, &mut out, &mut ranges).expect("TCP headers");
    ranges
        .iter()
        .map(|&(s, l)| out[s..s + l].to_vec())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::complete_l4_checksum;

    /// A TCP/IPv4 super-frame with `payload` bytes, flags PSH|FIN|CWR.
    fn tcp4(payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
        f[18..20].copy_from_slice(&0x1000u16.to_be_bytes());
        f[20] = 0x40; // DF
        f[22] = 64;
        f[23] = 6;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[38..42].copy_from_slice(&1000u32.to_be_bytes());
        f[46] = 0x50;
        f[47] = 0x80 | 0x08 | 0x01 | 0x10;
        f.extend((0..payload).map(|i| (i % 241) as u8));
        f
    }

    fn verify_tcp4(seg: &[u8]) {
        let mut copy = seg.to_vec();
        let stored = be16(seg, 50);
        complete_l4_checksum(&mut copy).unwrap();
        assert_eq!(be16(&copy, 50), stored, "TCP checksum");
        assert_eq!(finish(sum16(0, &seg[14..34])), 0, "IPv4 header checksum");
    }

    #[test]
    fn tcp4_super_frame_is_cut_with_headers_fixed() {
        let f = tcp4(3000);
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        assert_eq!(
            segment(&f, SegmentKind::Tcp, 1448, true, &mut out, &mut ranges),
            Ok(3)
        );
        let segs: Vec<&[u8]> = ranges.iter().map(|&(s, l)| &out[s..s + l]).collect();
        assert_eq!(segs[0].len(), 54 + 1448);
        assert_eq!(segs[2].len(), 54 + 104);
        let mut payload = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            verify_tcp4(s);
            assert_eq!(be16(s, 16) as usize, s.len() - 14, "total length");
            assert_eq!(be16(s, 18), 0x1000 + i as u16, "IP id");
            let seq = u32::from_be_bytes(s[38..42].try_into().unwrap());
            assert_eq!(seq, 1000 + (i * 1448) as u32);
            let flags = s[47];
            assert_eq!(flags & 0x80 != 0, i == 0, "CWR first only");
            assert_eq!(flags & 0x09 != 0, i == 2, "FIN/PSH last only");
            assert!(flags & 0x10 != 0, "ACK everywhere");
            payload.extend_from_slice(&s[54..]);
        }
        assert_eq!(payload, f[54..]);
    }

    #[test]
    fn udp6_super_frame_becomes_datagrams() {
        let mut f = vec![0u8; 14 + 40 + 8];
        f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        f[14] = 0x60;
        f[20] = 17;
        f[21] = 64;
        f[22] = 0xfd;
        f[37] = 1;
        f[38] = 0xfd;
        f[53] = 2;
        f.extend((0..2500).map(|i| (i % 7) as u8));
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        assert_eq!(
            segment(&f, SegmentKind::Udp, 1000, false, &mut out, &mut ranges),
            Ok(3)
        );
        for &(s, l) in &ranges {
            let seg = &out[s..s + l];
            assert_eq!(be16(seg, 18) as usize, l - 54, "IPv6 payload length");
            assert_eq!(be16(seg, 58) as usize, l - 54, "UDP length");
            let mut copy = seg.to_vec();
            complete_l4_checksum(&mut copy).unwrap();
            assert_eq!(be16(&copy, 60), be16(seg, 60));
        }
    }

    #[test]
    fn a_frame_that_is_not_what_it_claims_is_refused() {
        let mut f = tcp4(100);
        f[23] = 17;
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        assert_eq!(
            segment(&f, SegmentKind::Tcp, 1448, false, &mut out, &mut ranges),
            Err(GsoError::BadHeaders)
        );
        assert_eq!(
            segment(
                &[0u8; 10],
                SegmentKind::Tcp,
                1448,
                false,
                &mut out,
                &mut ranges
            ),
            Err(GsoError::BadHeaders)
        );
        assert_eq!(
            segment(&tcp4(10), SegmentKind::Tcp, 0, false, &mut out, &mut ranges),
            Err(GsoError::ZeroMss)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn partial_checksum_completion_matches_a_full_recompute() {
        let mut f = tcp4(500);
        let mut reference = f.clone();
        complete_l4_checksum(&mut reference).unwrap();
        // What a sender leaves: the pseudo-header sum, not complemented.
        let mut s = sum16(0, &f[26..34]);
        s = s.wrapping_add(6 + 520);
        let mut folded = s;
        while folded >> 16 != 0 {
            folded = (folded & 0xffff) + (folded >> 16);
        }
        put16(&mut f, 50, folded as u16);
        assert!(complete_partial(&mut f, 34, 16));
        assert_eq!(be16(&f, 50), be16(&reference, 50));
        assert!(!complete_partial(&mut f, 2000, 16));
    }
}
