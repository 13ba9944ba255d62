//! Fuzz targets for everything that parses bytes or text from outside the
//! switch, run as bounded property tests on stable Rust.
//!
//! Each target feeds both raw garbage and *mutated valid input* (well-formed
//! frames, requests and configs with bytes flipped, cut or inserted), so the
//! parsers are driven past their first length check. Beyond "never panics"
//! each target checks what the parser promises: views stay inside the
//! buffer, a decoded header encodes back to itself, a super-frame cut by
//! `gso` and coalesced again by `gro` is the super-frame it was, a parsed
//! request or filter prints back to itself.
//!
//! `cargo test --release --test fuzz` runs a few hundred cases per target
//! (seconds). Deeper runs raise the count, e.g.
//! `L2SW_FUZZ_CASES=200000 cargo test --release --test fuzz` (see
//! docs/operations.md). A failure prints the minimal input proptest shrank it
//! to; keep it as a regression case in `regressions` below.

use l2sw::config::Config;
use l2sw::control::protocol::Request;
use l2sw::observe::filter::Filter;
use l2sw::port::{Offload, VNET_HDR_LEN};
use l2sw::wire::checksum::{complete_l4_checksum, finish, sum16};
use l2sw::wire::gro::{self, TcpSegment};
use l2sw::wire::gso::{complete_partial, segment, SegmentKind};
use l2sw::wire::{EthernetFrame, ETH_HEADER_LEN, VLAN_TAG_LEN};
use proptest::prelude::*;
use proptest::test_runner::Config as RunnerConfig;

/// Cases per target: `L2SW_FUZZ_CASES`, default a few hundred.
fn cases(default: u32) -> RunnerConfig {
    let n = std::env::var("L2SW_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    RunnerConfig {
        cases: n,
        // Shrinking a failure of a deep run may take long; bound it.
        max_shrink_iters: 4096,
        failure_persistence: None,
        ..RunnerConfig::default()
    }
}

/// One change to a valid input.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Cut(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        3 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => any::<usize>().prop_map(Mutation::Cut),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<usize>(), 1usize..8).prop_map(|(i, n)| Mutation::Remove(i, n)),
    ]
}

fn mutate(mut data: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let len = data.len().max(1);
        match m {
            Mutation::Flip(i, b) if !data.is_empty() => data[i % len] ^= b,
            Mutation::Set(i, b) if !data.is_empty() => data[i % len] = *b,
            Mutation::Cut(i) => data.truncate(i % (len + 1)),
            Mutation::Insert(i, b) => {
                let at = i % (data.len() + 1);
                data.splice(at..at, b.iter().copied());
            }
            Mutation::Remove(i, n) if !data.is_empty() => {
                let at = i % len;
                let end = (at + n).min(data.len());
                data.drain(at..end);
            }
            _ => {}
        }
    }
    data
}

/// Mutates text at byte level, then keeps it UTF-8 (lossily).
fn mutate_text(text: &str, muts: &[Mutation]) -> String {
    String::from_utf8_lossy(&mutate(text.as_bytes().to_vec(), muts)).into_owned()
}

/// What a generated frame carries above Ethernet.
#[derive(Debug, Clone, Copy)]
enum L4 {
    Tcp { flags: u8, doff: u8 },
    Udp,
}

/// A well-formed Ethernet / [802.1Q|802.1ad]* / IPv4|IPv6 / TCP|UDP frame
/// with every checksum right.
#[derive(Debug, Clone)]
struct Spec {
    tags: Vec<(u16, u16)>,
    v4: bool,
    l4: L4,
    seq: u32,
    ip_id: u16,
    df: bool,
    payload: Vec<u8>,
}

fn spec(max_payload: usize) -> impl Strategy<Value = Spec> {
    let tags = proptest::collection::vec(
        (prop_oneof![Just(0x8100u16), Just(0x88a8u16)], any::<u16>()),
        0..3,
    );
    let l4 = prop_oneof![
        3 => (any::<u8>(), 5u8..=8).prop_map(|(flags, doff)| L4::Tcp { flags, doff }),
        // Mostly plain ACK/PSH segments, so coalescing paths are reached.
        3 => (prop_oneof![Just(0x10u8), Just(0x18u8)], Just(5u8))
            .prop_map(|(flags, doff)| L4::Tcp { flags, doff }),
        1 => Just(L4::Udp),
    ];
    (
        tags,
        any::<bool>(),
        l4,
        any::<u32>(),
        any::<u16>(),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..max_payload),
    )
        .prop_map(|(tags, v4, l4, seq, ip_id, df, payload)| Spec {
            tags,
            v4,
            l4,
            seq,
            ip_id,
            df,
            payload,
        })
}

fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_be_bytes());
}

fn build(s: &Spec) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    for &(tpid, tci) in &s.tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&(if s.v4 { 0x0800u16 } else { 0x86dd }).to_be_bytes());
    let ip = f.len();
    let (proto, l4_hdr) = match s.l4 {
        L4::Tcp { doff, .. } => (6u8, doff as usize * 4),
        L4::Udp => (17, 8),
    };
    let l4_len = l4_hdr + s.payload.len();
    if s.v4 {
        let mut h = [0u8; 20];
        h[0] = 0x45;
        put16(&mut h, 2, (20 + l4_len) as u16);
        put16(&mut h, 4, s.ip_id);
        if s.df {
            h[6] = 0x40;
        }
        h[8] = 64;
        h[9] = proto;
        h[12..16].copy_from_slice(&[10, 0, 0, 1]);
        h[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let c = finish(sum16(0, &h));
        put16(&mut h, 10, c);
        f.extend_from_slice(&h);
    } else {
        let mut h = [0u8; 40];
        h[0] = 0x60;
        put16(&mut h, 4, l4_len as u16);
        h[6] = proto;
        h[7] = 64;
        h[8] = 0xfd;
        h[23] = 1;
        h[24] = 0xfd;
        h[39] = 2;
        f.extend_from_slice(&h);
    }
    let l4 = f.len();
    match s.l4 {
        L4::Tcp { flags, doff } => {
            let mut h = vec![0u8; doff as usize * 4];
            put16(&mut h, 0, 40000);
            put16(&mut h, 2, 80);
            h[4..8].copy_from_slice(&s.seq.to_be_bytes());
            h[12] = doff << 4;
            h[13] = flags;
            put16(&mut h, 14, 512);
            // Options: NOPs, which every parser must carry as header bytes.
            for b in h.iter_mut().skip(20) {
                *b = 1;
            }
            f.extend_from_slice(&h);
        }
        L4::Udp => {
            let mut h = [0u8; 8];
            put16(&mut h, 0, 40000);
            put16(&mut h, 2, 53);
            put16(&mut h, 4, l4_len as u16);
            f.extend_from_slice(&h);
        }
    }
    f.extend_from_slice(&s.payload);
    complete_l4_checksum(&mut f).expect("a generated frame has L4 headers");
    let _ = (ip, l4);
    f
}

/// Where the IP header of a frame built from `s` starts.
fn ip_offset(s: &Spec) -> usize {
    ETH_HEADER_LEN + s.tags.len() * VLAN_TAG_LEN
}

/// Whether `frame`'s L4 checksum (at `field`) is right: recomputing it
/// changes nothing, with 0x0000 and 0xffff the same one's-complement zero.
fn l4_checksum_ok(frame: &[u8], field: usize) -> bool {
    let mut copy = frame.to_vec();
    if complete_l4_checksum(&mut copy).is_err() {
        return false;
    }
    let zero = |c: &[u8]| c == [0, 0] || c == [0xff, 0xff];
    let (a, b) = (&frame[field..field + 2], &copy[field..field + 2]);
    (a == b || (zero(a) && zero(b)))
        && frame[..field] == copy[..field]
        && frame[field + 2..] == copy[field + 2..]
}

fn frame_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..128),
        3 => (spec(2000), proptest::collection::vec(mutation(), 0..4))
            .prop_map(|(s, m)| mutate(build(&s), &m)),
    ]
}

fn vnet_hdr() -> impl Strategy<Value = [u8; VNET_HDR_LEN]> {
    prop_oneof![
        any::<[u8; VNET_HDR_LEN]>(),
        // Flags and GSO types that decode, with arbitrary offsets.
        (
            0u8..4,
            prop_oneof![
                Just(0u8),
                Just(1),
                Just(3),
                Just(4),
                Just(5),
                Just(0x81),
                Just(0x84)
            ],
            any::<[u8; 8]>()
        )
            .prop_map(|(flags, gso, rest)| {
                let mut h = [0u8; VNET_HDR_LEN];
                h[0] = flags;
                h[1] = gso;
                h[2..].copy_from_slice(&rest);
                h
            }),
    ]
}

proptest! {
    #![proptest_config(cases(2000))]

    /// The Ethernet view: a checked view never reads past its buffer and
    /// its parts add up to the frame.
    #[test]
    fn ethernet_view(data in frame_bytes()) {
        match EthernetFrame::new_checked(&data[..]) {
            Ok(f) => {
                let head = if f.vlan().is_some() { ETH_HEADER_LEN + VLAN_TAG_LEN } else { ETH_HEADER_LEN };
                prop_assert_eq!(f.payload().len() + head, data.len());
                let _ = (f.dst(), f.src(), f.ethertype(), f.outer_ethertype());
                if let Some(t) = f.vlan() {
                    prop_assert_eq!(t.tci(), u16::from_be_bytes([data[14], data[15]]));
                }
            }
            Err(t) => prop_assert!(t.have < t.need && t.have == data.len()),
        }
    }

    /// The virtio-net header: what decodes encodes back to the same offload
    /// (NEEDS_CSUM wins over DATA_VALID, as the kernel reads it), and the
    /// VLAN shifts a frame may go through never panic.
    #[test]
    fn vnet_header(h in vnet_hdr(), n in prop_oneof![Just(4u16), Just(8), any::<u16>()]) {
        if let Some(o) = Offload::from_vnet_hdr(&h) {
            let again = Offload::from_vnet_hdr(&o.to_vnet_hdr());
            let mut expect = o;
            if expect.csum.is_some() {
                expect.data_valid = false;
            }
            prop_assert_eq!(again, Some(expect));
            let _ = o.shifted(n).unshifted(n);
            let _ = o.unshifted(n).shifted(n);
        }
    }

    /// Software GSO on any input a guest may send: never panics, never
    /// writes a segment longer than its headers plus the segment size.
    #[test]
    fn gso_any_input(
        data in frame_bytes(),
        udp in any::<bool>(),
        mss in prop_oneof![0usize..64, 500usize..1500, Just(usize::MAX)],
        ecn in any::<bool>(),
    ) {
        let kind = if udp { SegmentKind::Udp } else { SegmentKind::Tcp };
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        if let Ok(n) = segment(&data, kind, mss, ecn, &mut out, &mut ranges) {
            prop_assert_eq!(n, ranges.len());
            for &(s, l) in &ranges {
                prop_assert!(s + l <= out.len());
                prop_assert!(l <= data.len());
            }
        }
        let mut copy = data.clone();
        let _ = complete_l4_checksum(&mut copy);
    }

    /// Partial checksums with any offsets a guest may claim.
    #[test]
    fn partial_checksum_any_offsets(data in frame_bytes(), start in any::<u16>(), off in any::<u16>()) {
        let mut copy = data.clone();
        let done = complete_partial(&mut copy, start as usize, off as usize);
        if !done {
            prop_assert_eq!(copy, data);
        }
    }

    /// GSO then GRO on well-formed super-frames: every segment has right
    /// checksums and fits, the payload is kept in order, and coalescing the
    /// segments again gives the super-frame's payload behind its headers.
    #[test]
    fn gso_then_gro_round_trip(s in spec(6000), mss in 64usize..1460) {
        let frame = build(&s);
        let tcp = matches!(s.l4, L4::Tcp { .. });
        let kind = if tcp { SegmentKind::Tcp } else { SegmentKind::Udp };
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        let n = segment(&frame, kind, mss, false, &mut out, &mut ranges);
        let hdr = frame.len() - s.payload.len();
        prop_assert_eq!(n, Ok(s.payload.len().div_ceil(mss).max(1)));
        let segs: Vec<&[u8]> = ranges.iter().map(|&(a, l)| &out[a..a + l]).collect();
        let mut payload = Vec::new();
        let l4 = ip_offset(&s) + if s.v4 { 20 } else { 40 };
        let field = l4 + if tcp { 16 } else { 6 };
        for seg in &segs {
            prop_assert!(seg.len() <= hdr + mss);
            prop_assert!(l4_checksum_ok(seg, field), "segment checksum");
            payload.extend_from_slice(&seg[hdr..]);
        }
        prop_assert_eq!(&payload, &s.payload);

        // Coalescing: the run merges whole exactly when every segment parses
        // as a coalescible one (gro refuses SYN/FIN/RST/URG/CWR and
        // payload-less segments).
        let parsed: Option<Vec<TcpSegment>> = segs.iter().map(|f| TcpSegment::parse(f)).collect();
        let (Some(parsed), true) = (parsed, tcp) else { return Ok(()) };
        let first = parsed[0];
        prop_assert_eq!(first.ip, ip_offset(&s));
        for seg in &parsed {
            prop_assert!(gro::checksum_ok(segs[0], &parsed[0]));
            let _ = seg;
        }
        let mut run_len = first.len;
        let mut whole = true;
        for k in 1..parsed.len() {
            if !gro::continues(segs[0], &first, &parsed[k - 1], run_len, segs[k], &parsed[k]) {
                whole = false;
                break;
            }
            run_len += parsed[k].len;
        }
        if whole && parsed.len() > 1 {
            let mut arena = Vec::new();
            let psh = parsed.last().unwrap().psh();
            let c = gro::build(&mut arena, segs[0], &first, segs.iter().copied(), psh);
            let sup = &arena[c.start..c.start + c.len];
            prop_assert_eq!(sup.len(), frame.len());
            prop_assert_eq!(&sup[hdr..], &frame[hdr..]);
            prop_assert_eq!(c.hdr_len as usize, hdr);
        }
    }

    /// GRO on garbage and mutated segments: parsing and merge checks never
    /// read outside either frame.
    #[test]
    fn gro_any_pair(a in frame_bytes(), b in frame_bytes()) {
        let (Some(sa), Some(sb)) = (TcpSegment::parse(&a), TcpSegment::parse(&b)) else {
            return Ok(());
        };
        prop_assert!(sa.payload <= a.len() && sb.payload <= b.len());
        let _ = gro::checksum_ok(&a, &sa);
        if gro::continues(&a, &sa, &sa, sa.len, &b, &sb) {
            let mut arena = Vec::new();
            let c = gro::build(&mut arena, &a, &sa, [&a[..], &b[..]].into_iter(), sb.psh());
            prop_assert_eq!(c.len, sa.payload + sa.len + sb.len);
        }
    }

    /// The capture filter language on any text, matched on any frame.
    #[test]
    fn capture_filter(text in filter_text(), frame in frame_bytes()) {
        match Filter::parse(&text) {
            Ok(f) => {
                let _ = f.matches(&frame, "red");
                prop_assert_eq!(Filter::parse(&f.to_string()), Ok(f));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// The control protocol's request decoder on any line: an error is a
    /// message, and a request that parses encodes back to one that parses to
    /// itself.
    #[test]
    fn control_request(line in request_text()) {
        match Request::parse(&line) {
            Ok(req) => {
                let text = serde_json::to_string(&req).unwrap();
                prop_assert_eq!(Request::parse(&text), Ok(req));
            }
            Err(msg) => prop_assert!(!msg.is_empty()),
        }
    }

    /// The config file: any mutation of a real config parses or fails with
    /// a message naming the file, and a config that parses turns into
    /// requests without panicking.
    #[test]
    fn config_file(text in config_text()) {
        match Config::parse(&text, "fuzz.toml") {
            Ok(c) => { let _ = c.requests(); }
            Err(e) => prop_assert!(e.to_string().contains("fuzz.toml"), "{}", e),
        }
    }
}

fn filter_text() -> impl Strategy<Value = String> {
    let words = prop_oneof![
        Just("src"),
        Just("dst"),
        Just("mac"),
        Just("vlan"),
        Just("ethertype"),
        Just("arp"),
        Just("ip"),
        Just("ip6"),
        Just("lldp"),
        Just("stp"),
        Just("broadcast"),
        Just("multicast"),
        Just("port"),
        Just("not"),
        Just("and"),
        Just("or"),
        Just("("),
        Just(")"),
        Just("!"),
        Just("&&"),
        Just("||"),
        Just("10"),
        Just("4095"),
        Just("4096"),
        Just("0x0800"),
        Just("02:00:00:00:00:01"),
        Just("ff:ff:ff:ff:ff:ff"),
        Just("red"),
        Just("-1"),
        Just("0x"),
        Just(""),
    ];
    prop_oneof![
        "\\PC{0,60}",
        proptest::collection::vec(words, 0..16).prop_map(|w| w.join(" ")),
    ]
}

/// Valid request lines of every shape the CLI sends.
const REQUESTS: &[&str] = &[
    r#"{"cmd":"status"}"#,
    r#"{"cmd":"port-list"}"#,
    r#"{"cmd":"port-del","name":"red"}"#,
    r#"{"cmd":"port-set","name":"red","learning":false,"flood":true,"max_learned":10}"#,
    r#"{"cmd":"port-vlan","name":"red","mode":"trunk","tag":10,"trunks":"10,20,30-40"}"#,
    r#"{"cmd":"mirror-add","name":"m","to":"blue","src":["red"]}"#,
    r#"{"cmd":"fdb-show","port":"red"}"#,
    r#"{"cmd":"fdb-add","mac":"02:00:00:00:00:09","port":"red","vlan":10}"#,
    r#"{"cmd":"fdb-del","mac":"02:00:00:00:00:09"}"#,
    r#"{"cmd":"fdb-flush","static":true}"#,
    r#"{"cmd":"set","key":"ageing-time","value":30}"#,
    r#"{"cmd":"stats"}"#,
    r#"{"cmd":"latency","pair":"red,blue","reset":true}"#,
    r#"{"cmd":"capture","ports":["red"],"filter":"arp or vlan 10","snaplen":96}"#,
    r#"{"cmd":"trace","in":"red","src":"02:00:00:00:00:01","dst":"ff:ff:ff:ff:ff:ff","vlan":10,"ethertype":2054}"#,
    r#"{"cmd":"trace-live","ports":["red"],"count":3}"#,
    r#"{"cmd":"ns-plug","ns":"x","ip":["10.0.0.9/24"],"via":"tap","mac":"02:00:00:00:00:0a"}"#,
    r#"{"cmd":"port-add","kind":"tap","ifname":"tap9","mode":"vm","mtu":9000}"#,
    r#"{"cmd":"shutdown"}"#,
];

fn request_text() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => "\\PC{0,80}",
        4 => (proptest::sample::select(REQUESTS), proptest::collection::vec(mutation(), 1..4))
            .prop_map(|(r, m)| mutate_text(r, &m)),
        1 => proptest::sample::select(REQUESTS).prop_map(str::to_string),
    ]
}

/// A config using every section the file format has.
const CONFIG: &str = r#"
[switch]
ageing_time = 300
fdb_max = 1000
fdb_max_per_port = 100
group_fwd_mask = 0

[[namespace]]
ns = "red"
ip = ["10.0.0.1/24", "fd00::1/64"]
via = "veth"
mac = "02:00:00:00:00:01"
vlan_mode = "access"
tag = 10

[[namespace]]
ns = "blue"
ip = ["10.0.0.3/24"]
via = "tap"
learning = false

[[port]]
kind = "iface"
ifname = "eth9"
name = "up"
vlan_mode = "trunk"
trunks = "10,20"

[[mirror]]
name = "m"
src = ["red"]
to = "up"
"#;

fn config_text() -> impl Strategy<Value = String> {
    let lab = include_str!("../src/lab.toml");
    prop_oneof![
        1 => "\\PC{0,120}",
        4 => (prop_oneof![Just(CONFIG), Just(lab)], proptest::collection::vec(mutation(), 1..5))
            .prop_map(|(c, m)| mutate_text(c, &m)),
    ]
}

/// The valid inputs the mutators start from are valid: otherwise the
/// targets would only ever see error paths.
#[test]
fn seeds_are_valid() {
    for r in REQUESTS {
        Request::parse(r).unwrap_or_else(|e| panic!("{r}: {e}"));
    }
    for c in [CONFIG, include_str!("../src/lab.toml")] {
        let cfg = Config::parse(c, "seed.toml").unwrap_or_else(|e| panic!("{e}"));
        assert!(!cfg.requests().is_empty());
    }
}

/// Inputs fuzzing found, kept so they stay fixed.
mod regressions {
    use super::*;

    /// A TCP/IPv4 "super-frame" whose data offset is 0: the headers end
    /// before the sequence number and flags segmentation rewrites. It used
    /// to panic (index out of bounds) in `gso::segment`, i.e. in the
    /// dataplane thread, for a guest that sent it with a GSO header.
    #[test]
    fn gso_refuses_a_tcp_data_offset_under_five_words() {
        let mut f = vec![0u8; 56];
        f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&42u16.to_be_bytes());
        f[23] = 6;
        f[46] = 0x10; // data offset 1 word
        for doff in [0u8, 1, 4] {
            f[46] = doff << 4;
            let (mut out, mut ranges) = (Vec::new(), Vec::new());
            let r = segment(&f, SegmentKind::Tcp, 8, false, &mut out, &mut ranges);
            assert_eq!(r, Err(l2sw::wire::gso::GsoError::BadHeaders), "doff {doff}");
        }
    }
}
