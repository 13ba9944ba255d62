//! Parsing, errors, canonical form and matching on real frame bytes, plus
//! property tests: no input panics, and the canonical form parses back.

use super::*;
use proptest::prelude::*;

fn f(s: &str) -> Filter {
    Filter::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn mac(s: &str) -> [u8; 6] {
    s.parse::<MacAddr>().unwrap().0
}

const H1: &str = "02:00:00:00:00:01";
const H2: &str = "02:00:00:00:00:02";

/// A frame with the given VLAN tags (outermost first), padded to 60 bytes.
fn frame(dst: &str, src: &str, tags: &[(u16, u16)], ethertype: u16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&mac(dst));
    b.extend_from_slice(&mac(src));
    for (tpid, vid) in tags {
        b.extend_from_slice(&tpid.to_be_bytes());
        b.extend_from_slice(&(0x2000 | vid).to_be_bytes()); // PCP 1
    }
    b.extend_from_slice(&ethertype.to_be_bytes());
    b.resize(b.len().max(60), 0);
    b
}

fn arp_broadcast() -> Vec<u8> {
    frame("ff:ff:ff:ff:ff:ff", H1, &[], 0x0806)
}

fn ipv4_tagged_10() -> Vec<u8> {
    frame(H2, H1, &[(0x8100, 10)], 0x0800)
}

/// 802.1ad S-tag 100 around an 802.1Q C-tag 10 around IPv6.
fn ipv6_qinq() -> Vec<u8> {
    frame(H1, H2, &[(0x88a8, 100), (0x8100, 10)], 0x86dd)
}

fn lldp() -> Vec<u8> {
    frame("01:80:c2:00:00:0e", H1, &[], 0x88cc)
}

/// An STP BPDU: 802.3 length field and LLC, not an EtherType.
fn bpdu() -> Vec<u8> {
    frame("01:80:c2:00:00:00", H2, &[], 0x0026)
}

// --- canonical form ---

#[test]
fn parses_to_canonical_form() {
    for (input, canonical) in [
        ("arp", "arp"),
        ("ARP", "arp"),
        ("ip", "ipv4"),
        ("ip6", "ipv6"),
        ("ethertype 0x0806", "arp"),
        ("ethertype 2048", "ipv4"),
        ("ethertype 0x88CC", "lldp"),
        ("ethertype 0x88B5", "ethertype 0x88b5"),
        ("ethertype 1", "ethertype 0x0001"),
        ("src 02:AA:00:00:00:01", "src 02:aa:00:00:00:01"),
        ("dst 02-00-00-00-00-02", "dst 02:00:00:00:00:02"),
        ("mac 02:00:00:00:00:01", "mac 02:00:00:00:00:01"),
        ("dst ff:ff:ff:ff:ff:ff", "broadcast"),
        ("broadcast", "broadcast"),
        ("dst 01:80:C2:00:00:00", "stp"),
        ("multicast", "multicast"),
        ("vlan", "vlan"),
        ("vlan 0x10", "vlan 16"),
        ("vlan 0", "vlan 0"),
        ("port red", "port red"),
        ("port Red-1.x", "port Red-1.x"),
        ("!arp&&vlan 10||port red", "not arp and vlan 10 or port red"),
        ("NOT arp AND ip OR lldp", "not arp and ipv4 or lldp"),
        ("not (arp or ip)", "not (arp or ipv4)"),
        ("not not arp", "not not arp"),
        ("((arp))", "arp"),
        ("(arp and ip) and vlan", "(arp and ipv4) and vlan"),
        ("arp or (ip or vlan)", "arp or (ipv4 or vlan)"),
        ("(arp or ip) and vlan", "(arp or ipv4) and vlan"),
        ("arp or (ip and vlan)", "arp or ipv4 and vlan"),
        ("  port\tred  ", "port red"),
        ("port and", "port and"),
    ] {
        let filter = f(input);
        assert_eq!(filter.to_string(), canonical, "{input:?}");
        assert_eq!(f(canonical), filter, "{canonical:?} does not parse back");
        assert_eq!(input.parse::<Filter>().unwrap(), filter);
    }
}

#[test]
fn and_binds_tighter_than_or() {
    assert_eq!(f("arp or ip and vlan"), f("arp or (ip and vlan)"));
    assert_ne!(f("arp or ip and vlan"), f("(arp or ip) and vlan"));
    assert_eq!(f("not arp and ip"), f("(not arp) and ip"));
    // Semantics, not just structure: an untagged ARP frame.
    assert!(f("arp or ip and vlan").matches(&arp_broadcast(), "red"));
    assert!(!f("(arp or ip) and vlan").matches(&arp_broadcast(), "red"));
}

#[test]
fn match_all_matches_everything_and_prints_empty() {
    let all = Filter::match_all();
    assert!(all.is_match_all());
    assert_eq!(Filter::default(), all);
    assert_eq!(all.to_string(), "");
    assert!(all.ports().is_empty());
    for fr in [vec![], vec![1, 2, 3], arp_broadcast(), ipv6_qinq()] {
        assert!(all.matches(&fr, "any"));
    }
    assert!(!f("arp").is_match_all());
}

#[test]
fn ports_lists_each_name_once_in_order() {
    let filter = f("port red or (port green and not port red) or arp and port blue");
    assert_eq!(filter.ports(), ["red", "green", "blue"]);
    assert!(f("arp").ports().is_empty());
}

// --- errors ---

#[test]
fn errors_name_the_column_and_the_problem() {
    for (input, pos, msg) in [
        ("", 0, "empty expression"),
        ("   ", 0, "empty expression"),
        (
            "foo",
            0,
            "unknown word `foo`; expected one of src, dst, mac, vlan",
        ),
        ("arp or foo", 7, "unknown word `foo`"),
        (
            "src",
            3,
            "expected a MAC address after `src`, found the end",
        ),
        (
            "src and arp",
            4,
            "expected a MAC address after `src`, found `and`",
        ),
        ("mac (", 4, "expected a MAC address after `mac`, found `(`"),
        (
            "dst 02:00:00:00:00:zz",
            4,
            "`02:00:00:00:00:zz` is not a MAC address",
        ),
        ("src 02:00:00:00:00", 4, "is not a MAC address"),
        ("vlan 4096", 5, "VLAN ID 4096 out of range 0..=4095"),
        ("vlan 99999999999999999999999", 5, "out of range 0..=4095"),
        ("vlan 10x", 5, "`10x` is not a VLAN ID"),
        (
            "vlan red",
            5,
            "unexpected `red` after a complete expression",
        ),
        (
            "ethertype",
            9,
            "expected a number (like 0x88cc) after `ethertype`, found the end",
        ),
        (
            "ethertype 0x10000",
            10,
            "EtherType 0x10000 out of range 0..=0xffff",
        ),
        ("ethertype ip", 10, "`ip` is not an EtherType"),
        ("ethertype 0x", 10, "`0x` is not an EtherType"),
        ("(arp", 0, "unclosed `(`"),
        ("((arp) or (ip)", 0, "unclosed `(`"),
        ("arp)", 3, "unmatched `)`"),
        ("(arp or ip))", 11, "unmatched `)`"),
        (")", 0, "expected a primitive before `)`"),
        ("()", 0, "empty parentheses"),
        (
            "(arp ip)",
            5,
            "unexpected `ip`: expected `and`, `or` or `)`",
        ),
        (
            "arp ip",
            4,
            "unexpected `ip` after a complete expression (missing `and` or `or`?)",
        ),
        (
            "arp and",
            7,
            "expected a primitive after `and`, found the end",
        ),
        (
            "arp ||",
            6,
            "expected a primitive after `||`, found the end",
        ),
        ("not", 3, "expected a primitive after `not`, found the end"),
        ("!", 1, "expected a primitive after `!`, found the end"),
        ("and arp", 0, "expected a primitive before `and`"),
        ("arp or or ip", 7, "expected a primitive, found `or`"),
        ("arp and && ip", 8, "expected a primitive, found `&&`"),
        ("arp & ip", 4, "single `&`: write `&&` or `and`"),
        ("arp | ip", 4, "single `|`: write `||` or `or`"),
        (
            "02:00:00:00:00:01",
            0,
            "a MAC address needs `src`, `dst` or `mac` before it",
        ),
        ("10", 0, "a number needs `vlan` or `ethertype` before it"),
        (
            "port",
            4,
            "expected a port name after `port`, found the end",
        ),
        (
            "port (red)",
            5,
            "expected a port name after `port`, found `(`",
        ),
        // Columns count characters, not bytes.
        ("port café foo", 10, "unexpected `foo`"),
        ("port é and ü", 11, "unknown word `ü`"),
    ] {
        let e = Filter::parse(input).expect_err(input);
        assert_eq!((e.pos, e.msg.contains(msg)), (pos, true), "{input:?}: {e}");
        assert_eq!(e.expr, input);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}arp{}", "(".repeat(1000), ")".repeat(1000));
    let e = Filter::parse(&deep).unwrap_err();
    assert!(e.msg.contains("nested too deeply"), "{e}");
    assert_eq!(e.pos, MAX_DEPTH);
    let e = Filter::parse(&format!("{}arp", "not ".repeat(100_000))).unwrap_err();
    assert!(e.msg.contains("nested too deeply"), "{e}");
    let e = Filter::parse(&"!".repeat(100_000)).unwrap_err();
    assert!(e.msg.contains("nested too deeply"), "{e}");
    // The limit itself is fine, and long flat chains are no problem at all.
    let ok = format!("{}arp{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert_eq!(f(&ok), f("arp"));
    let long = vec!["arp"; 100_000].join(" or ");
    assert!(f(&long).matches(&arp_broadcast(), "red"));
}

#[test]
fn error_display_points_at_the_column() {
    let e = Filter::parse("src").unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad filter at column 4: expected a MAC address after `src`, found the end\n  src\n     ^"
    );
    let e = Filter::parse("arp and\tvlan 5000").unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad filter at column 14: VLAN ID 5000 out of range 0..=4095\n  arp and vlan 5000\n               ^"
    );
    let e = Filter::parse("").unwrap_err();
    assert_eq!(e.to_string(), "bad filter at column 1: empty expression");
}

// --- matching ---

#[test]
fn matches_addresses() {
    let arp = arp_broadcast();
    assert!(f(&format!("src {H1}")).matches(&arp, "p"));
    assert!(!f(&format!("dst {H1}")).matches(&arp, "p"));
    assert!(f(&format!("mac {H1}")).matches(&arp, "p"));
    assert!(f("mac ff:ff:ff:ff:ff:ff").matches(&arp, "p"));
    assert!(f("broadcast and multicast").matches(&arp, "p"));
    let uni = ipv4_tagged_10();
    assert!(f(&format!("dst {H2} and src {H1}")).matches(&uni, "p"));
    assert!(!f("broadcast or multicast").matches(&uni, "p"));
    assert!(!f("mac 02:00:00:00:00:03").matches(&uni, "p"));
    assert!(f("multicast and not broadcast").matches(&lldp(), "p"));
    assert!(f("stp").matches(&bpdu(), "p"));
    assert!(!f("stp").matches(&lldp(), "p"));
}

#[test]
fn matches_vlans_and_ethertypes() {
    let untagged = arp_broadcast();
    let tagged = ipv4_tagged_10();
    let qinq = ipv6_qinq();
    let cases: &[(&str, [bool; 3])] = &[
        ("vlan", [false, true, true]),
        ("vlan 10", [false, true, false]), // QinQ: 10 is the inner tag
        ("vlan 100", [false, false, true]),
        ("not vlan", [true, false, false]),
        ("arp", [true, false, false]),
        ("ip", [false, true, false]),
        ("ip6", [false, false, true]),
        ("ethertype 0x8100", [false, false, false]), // tags are not the payload
        ("ethertype 0x88a8", [false, false, false]),
        ("vlan 100 and ip6", [false, false, true]),
        ("vlan and not (ip or ip6)", [false, false, false]),
    ];
    for (expr, want) in cases {
        let filter = f(expr);
        let got = [&untagged, &tagged, &qinq].map(|fr| filter.matches(fr, "p"));
        assert_eq!(&got, want, "{expr}");
    }
    assert!(f("lldp").matches(&lldp(), "p"));
    // 802.3 length field: matched by its raw value.
    assert!(f("ethertype 0x26").matches(&bpdu(), "p"));
    // Priority-tagged frames have VID 0.
    assert!(f("vlan 0 and arp").matches(&frame(H1, H2, &[(0x8100, 0)], 0x0806), "p"));
}

#[test]
fn matches_ports_by_exact_name() {
    let filter = f("port red");
    assert!(filter.matches(&arp_broadcast(), "red"));
    assert!(!filter.matches(&arp_broadcast(), "Red"));
    assert!(!filter.matches(&arp_broadcast(), "red2"));
    let filter = f("not port red and arp");
    assert!(filter.matches(&arp_broadcast(), "green"));
    assert!(!filter.matches(&arp_broadcast(), "red"));
}

#[test]
fn runts_match_nothing_but_ports() {
    let tagged_runt = {
        let mut b = ipv4_tagged_10();
        b.truncate(16); // the tag's TPID is there, its TCI is cut
        b
    };
    let primitives = [
        "src 00:00:00:00:00:00",
        "dst 00:00:00:00:00:00",
        "mac 00:00:00:00:00:00",
        "broadcast",
        "multicast",
        "stp",
        "vlan",
        "vlan 0",
        "ethertype 0",
        "arp",
        "ip",
        "ip6",
        "lldp",
    ];
    let runts: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff; 5],
        vec![0xff; 13],
        tagged_runt,
        vec![0; 13],
    ];
    for runt in &runts {
        for p in primitives {
            assert!(
                !f(p).matches(runt, "red"),
                "{p} matched a {}-byte runt",
                runt.len()
            );
        }
        assert!(f("port red").matches(runt, "red"));
        assert!(!f("port red").matches(runt, "green"));
        assert!(f("port red or arp").matches(runt, "red"));
        assert!(!f("port red and arp").matches(runt, "red"));
        // `not` is plain negation: a runt is not ARP.
        assert!(f("not arp").matches(runt, "red"));
    }
}

#[test]
fn inner_tags_cut_short_match_no_ethertype() {
    // Outer tag complete, inner tag announced but cut.
    let mut b = ipv6_qinq();
    b.truncate(20);
    assert!(f("vlan 100").matches(&b, "p"));
    for p in ["ip6", "ethertype 0x8100", "ethertype 0"] {
        assert!(!f(p).matches(&b, "p"), "{p}");
    }
    // Many stacked tags and nothing else: no EtherType, no panic.
    let mut many = frame(H1, H2, &[(0x8100, 1); 20], 0x8100);
    many.truncate(many.len() - 1);
    assert!(!f("ethertype 0x8100 or ip").matches(&many, "p"));
    assert!(f("vlan 1").matches(&many, "p"));
}

// --- properties ---

/// Words the parser knows, mixed into random input to reach deep paths.
fn token_soup() -> impl Strategy<Value = String> {
    let tok = prop_oneof![
        Just("src".to_string()),
        Just("dst".to_string()),
        Just("mac".to_string()),
        Just("vlan".to_string()),
        Just("ethertype".to_string()),
        Just("arp".to_string()),
        Just("ip6".to_string()),
        Just("stp".to_string()),
        Just("broadcast".to_string()),
        Just("multicast".to_string()),
        Just("port".to_string()),
        Just("and".to_string()),
        Just("or".to_string()),
        Just("not".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("!".to_string()),
        Just("&&".to_string()),
        Just("||".to_string()),
        Just("&".to_string()),
        Just("02:00:00:00:00:01".to_string()),
        Just("0x88cc".to_string()),
        "[0-9]{1,6}",
        "[a-zé]{1,5}",
    ];
    (
        prop::collection::vec(tok, 0..12),
        prop::collection::vec(prop_oneof![Just(" "), Just(""), Just("\t")], 12),
    )
        .prop_map(|(toks, seps)| {
            toks.iter()
                .zip(seps)
                .map(|(t, s)| format!("{t}{s}"))
                .collect()
        })
}

fn arb_mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

fn arb_prim() -> impl Strategy<Value = Prim> {
    prop_oneof![
        arb_mac().prop_map(Prim::Src),
        arb_mac().prop_map(Prim::Dst),
        Just(Prim::Dst(MacAddr::BROADCAST)),
        Just(Prim::Dst(STP_GROUP)),
        arb_mac().prop_map(Prim::Mac),
        Just(Prim::Vlan(None)),
        (0u16..=4095).prop_map(|v| Prim::Vlan(Some(v))),
        any::<u16>().prop_map(Prim::EtherType),
        Just(Prim::EtherType(0x0806)),
        Just(Prim::Multicast),
        prop_oneof![
            "[A-Za-z0-9_.-]{1,10}",
            Just("and".to_string()),
            Just("not".to_string()),
            Just("vlan".to_string()),
        ]
        .prop_map(Prim::Port),
    ]
}

fn arb_expr() -> impl Strategy<Value = Expr> {
    arb_prim()
        .prop_map(Expr::Prim)
        .prop_recursive(5, 48, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
                prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
                prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
            ]
        })
}

fn arb_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        // Mostly VLAN tags, so QinQ walking gets exercised.
        prop::collection::vec(
            prop_oneof![Just(0x81u8), Just(0x00), Just(0x88), Just(0xa8)],
            0..40
        ),
        Just(ipv6_qinq()),
    ]
}

proptest! {
    #[test]
    fn random_text_never_panics(s in "\\PC{0,40}", frame in arb_frame()) {
        if let Ok(filter) = Filter::parse(&s) {
            let _ = filter.matches(&frame, "red");
            prop_assert_eq!(Filter::parse(&filter.to_string()), Ok(filter));
        }
    }

    #[test]
    fn token_soup_never_panics_and_round_trips(s in token_soup(), frame in arb_frame()) {
        match Filter::parse(&s) {
            Ok(filter) => {
                let printed = filter.to_string();
                let again = Filter::parse(&printed);
                prop_assert_eq!(again.as_ref(), Ok(&filter), "{:?} -> {:?}", s, printed);
                let _ = filter.matches(&frame, "red");
            }
            Err(e) => {
                // The column is inside the expression (or just past it).
                prop_assert!(e.pos <= s.chars().count());
                let _ = e.to_string();
            }
        }
    }

    #[test]
    fn any_tree_prints_and_parses_back(e in arb_expr(), frame in arb_frame()) {
        let filter = Filter { root: Some(e) };
        let printed = filter.to_string();
        prop_assert_eq!(Filter::parse(&printed), Ok(filter.clone()), "{}", printed);
        // `not` inverts, on any frame.
        let negated = Filter::parse(&format!("not ({printed})")).unwrap();
        prop_assert_eq!(negated.matches(&frame, "red"), !filter.matches(&frame, "red"));
    }
}
