//! Coalescing rules: a run cut by the switch's own GSO merges back into the
//! super-frame it came from; anything a receiver could tell apart does not.

use super::*;
use crate::wire::gso::{complete_partial, cut_tcp as cut};

/// A TCP/IPv4 super-frame with `payload` bytes, ACK|PSH, DF, timestamps option.
fn tcp4(payload: usize) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 32];
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((52 + payload) as u16).to_be_bytes());
    f[18..20].copy_from_slice(&0xfff0u16.to_be_bytes());
    f[20] = 0x40; // DF
    f[22] = 64;
    f[23] = 6;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&40000u16.to_be_bytes());
    f[36..38].copy_from_slice(&5201u16.to_be_bytes());
    f[38..42].copy_from_slice(&0xffff_f000u32.to_be_bytes()); // wraps
    f[42..46].copy_from_slice(&77u32.to_be_bytes());
    f[46] = 0x80; // 32-byte header
    f[47] = TCP_ACK | TCP_PSH;
    f[48..50].copy_from_slice(&512u16.to_be_bytes());
    f[54..66].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7]);
    f.extend((0..payload).map(|i| (i % 251) as u8));
    f
}

/// The same flow over IPv6.
fn tcp6(payload: usize) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40 + 20];
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    f[14] = 0x60;
    f[18..20].copy_from_slice(&((20 + payload) as u16).to_be_bytes());
    f[20] = 6;
    f[21] = 64;
    f[22] = 0xfd;
    f[37] = 1;
    f[38] = 0xfd;
    f[53] = 2;
    f[54..56].copy_from_slice(&40000u16.to_be_bytes());
    f[56..58].copy_from_slice(&5201u16.to_be_bytes());
    f[58..62].copy_from_slice(&1u32.to_be_bytes());
    f[66] = 0x50;
    f[67] = TCP_ACK | TCP_PSH;
    f.extend((0..payload).map(|i| (i % 13) as u8));
    f
}

/// How many of `frames` a run starting at the first one takes.
fn run_length(frames: &[Vec<u8>]) -> usize {
    let first = TcpSegment::parse(&frames[0]).expect("first parses");
    let (mut prev, mut total, mut n) = (first, first.len, 1);
    for f in &frames[1..] {
        let Some(next) = TcpSegment::parse(f) else {
            break;
        };
        if !continues(&frames[0], &first, &prev, total, f, &next) {
            break;
        }
        total += next.len;
        prev = next;
        n += 1;
    }
    n
}

/// Builds the super-frame of a whole run and finishes its checksum.
fn rebuild(frames: &[Vec<u8>]) -> (Vec<u8>, Coalesced) {
    let first = TcpSegment::parse(&frames[0]).unwrap();
    let last = TcpSegment::parse(frames.last().unwrap()).unwrap();
    let mut out = vec![0xee; 3];
    let c = build(
        &mut out,
        &frames[0],
        &first,
        frames.iter().map(|f| &f[..]),
        last.psh(),
    );
    assert_eq!(c.start, 3);
    let mut f = out[c.start..c.start + c.len].to_vec();
    assert!(complete_partial(
        &mut f,
        c.csum_start as usize,
        TCP_CSUM_OFFSET
    ));
    (f, c)
}

#[test]
fn a_cut_ipv4_run_merges_back_into_its_super_frame() {
    let original = tcp4(5000);
    let segs = cut(&original, 1448);
    assert_eq!(segs.len(), 4);
    for s in &segs {
        assert!(checksum_ok(s, &TcpSegment::parse(s).unwrap()));
    }
    assert_eq!(run_length(&segs), 4);
    let (merged, c) = rebuild(&segs);
    let mut expected = original.clone();
    crate::wire::checksum::complete_l4_checksum(&mut expected).unwrap();
    // The IPv4 header checksum of the original was never computed.
    expected[24..26].copy_from_slice(&merged[24..26]);
    assert_eq!(merged, expected);
    assert_eq!(finish(sum16(0, &merged[14..34])), 0, "IPv4 header checksum");
    assert_eq!((c.mss, c.hdr_len, c.csum_start, c.v4), (1448, 66, 34, true));
}

#[test]
fn a_cut_ipv6_run_merges_back_into_its_super_frame() {
    let original = tcp6(3000);
    let segs = cut(&original, 1000);
    assert_eq!(run_length(&segs), 3);
    let (merged, c) = rebuild(&segs);
    let mut expected = original.clone();
    crate::wire::checksum::complete_l4_checksum(&mut expected).unwrap();
    assert_eq!(merged, expected);
    assert_eq!((c.mss, c.hdr_len, c.v4), (1000, 74, false));
}

#[test]
fn psh_and_short_segments_end_a_run_and_only_the_last_keeps_psh() {
    let mut segs = cut(&tcp4(4000), 1000);
    // PSH on the second segment: the run stops after it.
    segs[1][47] |= TCP_PSH;
    assert_eq!(run_length(&segs), 2);
    let (merged, _) = rebuild(&segs[..2]);
    assert_eq!(merged[47] & TCP_PSH, TCP_PSH);
    segs[1][47] &= !TCP_PSH;
    let (merged, _) = rebuild(&segs[..2]);
    assert_eq!(merged[47] & TCP_PSH, 0);
    // A short segment ends it too.
    let mut short = cut(&tcp4(2500), 1000);
    short.push(cut(&tcp4(100), 1000)[0].clone());
    assert_eq!(run_length(&short), 3);
}

#[test]
fn segments_a_receiver_could_tell_apart_do_not_merge() {
    let base = cut(&tcp4(3000), 1000);
    type Change = fn(&mut Vec<u8>);
    let changes: [(&str, Change); 9] = [
        ("window", |f| f[49] ^= 1),
        ("ack", |f| f[45] ^= 1),
        ("timestamp option", |f| f[65] ^= 1),
        ("TTL", |f| f[22] = 63),
        ("TOS/ECN", |f| f[15] = 3),
        ("destination MAC", |f| f[0] = 2),
        ("sequence gap", |f| f[41] = f[41].wrapping_add(1)),
        ("ECE", |f| f[47] |= 0x40),
        ("ports", |f| f[35] ^= 1),
    ];
    for (what, change) in changes {
        let mut segs = base.clone();
        change(&mut segs[1]);
        assert_eq!(run_length(&segs), 1, "{what} differs");
    }
}

#[test]
fn ip_ids_must_count_up_unless_dont_fragment_allows_fixed_ones() {
    let mut segs = cut(&tcp4(3000), 1000);
    for s in &mut segs {
        s[18..20].copy_from_slice(&7u16.to_be_bytes());
    }
    assert_eq!(run_length(&segs), 3, "fixed IDs with DF");
    for s in &mut segs {
        s[20] = 0; // no DF
    }
    assert_eq!(run_length(&segs), 1, "fixed IDs without DF");
    let mut counting = cut(&tcp4(3000), 1000);
    for s in &mut counting {
        s[20] = 0;
    }
    assert_eq!(run_length(&counting), 3, "counting IDs without DF");
}

#[test]
fn frames_that_never_merge_do_not_parse() {
    let ok = cut(&tcp4(2000), 1000)[0].clone();
    assert!(TcpSegment::parse(&ok).is_some());
    for flag in [TCP_SYN, TCP_FIN, TCP_RST, TCP_URG, TCP_CWR] {
        let mut f = ok.clone();
        f[47] |= flag;
        assert_eq!(TcpSegment::parse(&f), None, "flag {flag:#x}");
    }
    let mut no_ack = ok.clone();
    no_ack[47] &= !TCP_ACK;
    assert_eq!(TcpSegment::parse(&no_ack), None, "no ACK");
    let mut options = ok.clone();
    options[14] = 0x46;
    assert_eq!(TcpSegment::parse(&options), None, "IP options");
    let mut fragment = ok.clone();
    fragment[20] |= 0x20;
    assert_eq!(TcpSegment::parse(&fragment), None, "more fragments");
    let mut padded = ok.clone();
    padded.push(0);
    assert_eq!(TcpSegment::parse(&padded), None, "padding");
    let mut udp = ok.clone();
    udp[23] = 17;
    assert_eq!(TcpSegment::parse(&udp), None, "UDP");
    let bare_ack = &ok[..66];
    let mut bare_ack = bare_ack.to_vec();
    bare_ack[16..18].copy_from_slice(&52u16.to_be_bytes());
    assert_eq!(TcpSegment::parse(&bare_ack), None, "no payload");
    assert_eq!(TcpSegment::parse(&ok[..30]), None, "truncated");
    assert_eq!(TcpSegment::parse(&[]), None, "empty");
}

#[test]
fn a_run_stops_below_the_ip_length_limit() {
    let segs = cut(&tcp4(3000), 1000);
    let (first, next) = (
        TcpSegment::parse(&segs[0]).unwrap(),
        TcpSegment::parse(&segs[1]).unwrap(),
    );
    // 52 bytes of IPv4 and TCP headers: room for 65483 payload bytes.
    let fits = 0xffff - 52 - next.len;
    assert!(continues(&segs[0], &first, &first, fits, &segs[1], &next));
    assert!(!continues(
        &segs[0],
        &first,
        &first,
        fits + 1,
        &segs[1],
        &next
    ));
}

#[test]
fn a_corrupted_segment_fails_its_checksum() {
    let mut s = cut(&tcp4(2000), 1000)[1].clone();
    let seg = TcpSegment::parse(&s).unwrap();
    assert!(checksum_ok(&s, &seg));
    s[100] ^= 0x40;
    assert!(!checksum_ok(&s, &seg));
}

#[test]
fn tagged_frames_merge_with_the_tag_kept() {
    let tag = |f: &[u8]| {
        let mut t = f[..12].to_vec();
        t.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
        t.extend_from_slice(&f[12..]);
        t
    };
    let segs: Vec<Vec<u8>> = cut(&tcp4(3000), 1000).iter().map(|s| tag(s)).collect();
    assert_eq!(run_length(&segs), 3);
    let (merged, c) = rebuild(&segs);
    assert_eq!(&merged[12..16], &[0x81, 0x00, 0x00, 0x0a]);
    assert_eq!((c.hdr_len, c.csum_start), (70, 38));
}
