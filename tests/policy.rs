//! VLANs, port flags and mirrors through a real switch between namespaces.
//! (tests/differential.rs checks the same against Open vSwitch and the
//! kernel bridge frame for frame.)

mod common;

use std::time::Duration;

use common::*;
use l2sw::wire::MacAddr;

const WAIT: Duration = Duration::from_millis(500);

fn tagged(dst: MacAddr, src: MacAddr, vid: u16, marker: &[u8]) -> Vec<u8> {
    let mut f = test_frame(dst, src, marker, 60);
    f.splice(12..12, [0x81, 0x00, (vid >> 8) as u8, vid as u8]);
    f
}

/// Test frames with `marker`, tagged or not.
fn has(marker: &'static [u8]) -> impl Fn(&[u8]) -> bool {
    move |f: &[u8]| f.windows(marker.len()).any(|w| w == marker)
}

#[test]
fn access_and_trunk_ports_keep_vlans_apart_and_tag_on_trunks() {
    let mut sw = Switch::start("vlan");
    let a = sw.plug("a", "10.17.0.1/24", "02:00:00:11:00:01", &[]);
    let b = sw.plug("b", "10.17.0.2/24", "02:00:00:11:00:02", &["--via", "tap"]);
    let c = sw.plug("c", "10.17.0.3/24", "02:00:00:11:00:03", &[]);
    let d = sw.plug("d", "10.17.0.4/24", "02:00:00:11:00:04", &[]);
    sw.ok(&["port", "vlan", &a, "--mode", "access", "--tag", "10"]);
    sw.ok(&["port", "vlan", &b, "--mode", "access", "--tag", "10"]);
    sw.ok(&["port", "vlan", &c, "--mode", "access", "--tag", "20"]);
    sw.ok(&["port", "vlan", &d, "--mode", "trunk", "--trunks", "10,20"]);
    let (mut ea, mut eb, mut ec, mut ed) = (
        Endpoint::open(&a, "eth0"),
        Endpoint::open(&b, "eth0"),
        Endpoint::open(&c, "eth0"),
        Endpoint::open(&d, "eth0"),
    );
    let src = mac("02:aa:00:00:11:0a");
    let f = test_frame(MacAddr::BROADCAST, src, b"v10", 60);
    ea.send(&f);
    assert_eq!(
        eb.collect_where(has(b"v10"), WAIT),
        vec![f.clone()],
        "same access VLAN, untagged"
    );
    assert!(
        ec.collect_where(has(b"v10"), WAIT).is_empty(),
        "VLAN 20 port sees nothing"
    );
    let on_trunk = ed.collect_where(has(b"v10"), WAIT);
    assert_eq!(
        on_trunk,
        vec![tagged(MacAddr::BROADCAST, src, 10, b"v10")],
        "tag pushed"
    );

    let t20 = tagged(MacAddr::BROADCAST, mac("02:aa:00:00:11:0d"), 20, b"v20");
    ed.send(&t20);
    let got = ec.collect_where(has(b"v20"), WAIT);
    assert_eq!(
        got,
        vec![test_frame(
            MacAddr::BROADCAST,
            mac("02:aa:00:00:11:0d"),
            b"v20",
            60
        )],
        "tag popped"
    );
    assert!(ea.collect_where(has(b"v20"), WAIT).is_empty());

    ea.send(&tagged(MacAddr::BROADCAST, src, 10, b"bad"));
    ed.send(&tagged(MacAddr::BROADCAST, src, 30, b"bad"));
    assert!(eb.collect_where(has(b"bad"), WAIT).is_empty());
    let stats = sw.json(&["stats"]);
    let drops = &stats["totals"]["drops"];
    assert_eq!(drops["vlan_tagged_on_access"], 1, "{drops}");
    // The namespaces' own untagged traffic (IPv6) also misses VLAN 0 on the trunk.
    assert!(drops["vlan_not_carried"].as_u64().unwrap() >= 1, "{drops}");

    // Per-VLAN FDB: the same MAC learned in VLAN 10 and 20.
    ed.send(&tagged(MacAddr::BROADCAST, src, 20, b"dup"));
    let fdb = sw.json(&["fdb", "show"]);
    let vlans: Vec<u64> = fdb
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["mac"] == "02:aa:00:00:11:0a")
        .map(|e| e["vlan"].as_u64().unwrap())
        .collect();
    assert_eq!(vlans, vec![10, 20], "{fdb}");

    let list = sw.ok(&["port", "list"]);
    assert!(
        list.contains("access 10") && list.contains("trunk 10,20"),
        "{list}"
    );
    let e = sw.fails(&["port", "vlan", &a, "--mode", "access"]);
    assert!(e.contains("needs --tag"), "{e}");
    let e = sw.fails(&["port", "vlan", &a, "--mode", "trunk", "--trunks", "5000"]);
    assert!(e.contains("above 4095"), "{e}");
    let e = sw.fails(&["port", "vlan", &a, "--mode", "bridged"]);
    assert!(e.contains("unknown VLAN mode"), "{e}");
}

#[test]
fn isolation_flood_flags_and_hairpin() {
    let mut sw = Switch::start("flags");
    let a = sw.plug("a", "10.18.0.1/24", "02:00:00:12:00:01", &[]);
    let b = sw.plug("b", "10.18.0.2/24", "02:00:00:12:00:02", &[]);
    let c = sw.plug("c", "10.18.0.3/24", "02:00:00:12:00:03", &[]);
    sw.ok(&["port", "set", &a, "--isolated", "on"]);
    sw.ok(&["port", "set", &b, "--isolated", "on"]);
    let (mut ea, mut eb, mut ec) = (
        Endpoint::open(&a, "eth0"),
        Endpoint::open(&b, "eth0"),
        Endpoint::open(&c, "eth0"),
    );
    let src = mac("02:aa:00:00:12:0a");
    ea.send(&test_frame(MacAddr::BROADCAST, src, b"iso", 60));
    assert!(eb.collect(b"iso", WAIT).is_empty(), "isolated to isolated");
    assert_eq!(
        ec.collect(b"iso", WAIT).len(),
        1,
        "isolated to non-isolated"
    );

    sw.ok(&["port", "set", &c, "--bcast-flood", "off"]);
    sw.ok(&["port", "set", &a, "--isolated", "off"]);
    ea.send(&test_frame(MacAddr::BROADCAST, src, b"bc", 60));
    assert!(ec.collect(b"bc", WAIT).is_empty(), "broadcast flooding off");
    assert_eq!(eb.collect(b"bc", WAIT).len(), 1);

    // Hairpin: a frame to a station learned on the same port comes back.
    sw.ok(&["port", "set", &a, "--hairpin", "on"]);
    let other = mac("02:aa:00:00:12:0b");
    ea.send(&test_frame(MacAddr::BROADCAST, other, b"learn", 60));
    ea.drain();
    ea.send(&test_frame(other, src, b"hairpin", 60));
    assert_eq!(
        ea.collect(b"hairpin", WAIT).len(),
        1,
        "back out the ingress port"
    );

    let list = sw.ok(&["port", "list"]);
    assert!(list.contains("hairpin"), "{list}");
    let e = sw.fails(&["port", "set", &a]);
    assert!(e.contains("nothing to change"), "{e}");
    assert!(e.contains("--hairpin, --gro,"), "{e}");
    let e = sw.fails(&["port", "set", &a, "--learning", "maybe"]);
    assert!(e.contains("expected on or off"), "{e}");
}

/// The FLAGS cell of `port list` for one port.
fn flags_of(sw: &Switch, port: &str) -> String {
    let list = sw.ok(&["port", "list"]);
    let header = list.lines().next().unwrap();
    let col = header
        .split_whitespace()
        .position(|h| h == "FLAGS")
        .unwrap_or_else(|| panic!("no FLAGS column:\n{list}"));
    let row = list
        .lines()
        .find(|l| l.split_whitespace().next() == Some(port))
        .unwrap_or_else(|| panic!("no row for {port}:\n{list}"));
    // No VLAN mode here, so every cell before FLAGS is one word.
    row.split_whitespace().nth(col).unwrap().to_string()
}

fn gro_of(sw: &Switch, port: &str) -> serde_json::Value {
    let ports = sw.json(&["port", "list"]);
    let p = ports
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port)
        .unwrap_or_else(|| panic!("no port {port}: {ports}"));
    p["policy"]["gro"].clone()
}

#[test]
fn gro_is_on_by_default_and_set_per_port_through_the_cli() {
    let mut sw = Switch::start("gro");
    let a = sw.plug("a", "10.20.0.1/24", "02:00:00:14:00:01", &[]);
    let b = sw.plug("b", "10.20.0.2/24", "02:00:00:14:00:02", &["--via", "tap"]);
    assert_eq!(gro_of(&sw, &a), true);
    assert_eq!(gro_of(&sw, &b), true);
    assert_eq!(flags_of(&sw, &a), "-", "gro on is the default, not shown");

    sw.ok(&["port", "set", &a, "--gro", "off"]);
    assert_eq!(gro_of(&sw, &a), false);
    assert_eq!(gro_of(&sw, &b), true, "only the port named changes");
    assert_eq!(flags_of(&sw, &a), "no-gro");
    assert_eq!(flags_of(&sw, &b), "-");

    // Other flags leave gro alone, and it shows among them.
    sw.ok(&["port", "set", &a, "--isolated", "on"]);
    assert_eq!(gro_of(&sw, &a), false);
    assert_eq!(flags_of(&sw, &a), "no-gro,isolated");

    sw.ok(&["port", "set", &a, "--gro", "on", "--isolated", "off"]);
    assert_eq!(gro_of(&sw, &a), true);
    assert_eq!(flags_of(&sw, &a), "-");

    let e = sw.fails(&["port", "set", &a, "--gro", "maybe"]);
    assert!(e.contains("expected on or off"), "{e}");
    let e = sw.fails(&["port", "set", &a, "--gro"]);
    assert!(e.contains("--gro"), "{e}");
    let e = sw.fails(&["port", "set", "ghost", "--gro", "off"]);
    assert!(e.contains("no port named ghost"), "{e}");
}

#[test]
fn a_mirror_copies_a_ports_traffic_to_the_output_port() {
    let mut sw = Switch::start("span");
    let a = sw.plug("a", "10.19.0.1/24", "02:00:00:13:00:01", &[]);
    let b = sw.plug("b", "10.19.0.2/24", "02:00:00:13:00:02", &[]);
    let m = sw.plug("m", "10.19.0.3/24", "02:00:00:13:00:03", &[]);
    sw.ok(&["mirror", "add", "span", "--to", &m, "--src", &a]);
    let list = sw.json(&["mirror", "list"]);
    assert_eq!(list[0]["to"], m.as_str());
    let (mut ea, mut eb, mut em) = (
        Endpoint::open(&a, "eth0"),
        Endpoint::open(&b, "eth0"),
        Endpoint::open(&m, "eth0"),
    );
    let (sa, sb) = (mac("02:aa:00:00:13:0a"), mac("02:aa:00:00:13:0b"));
    eb.send(&test_frame(MacAddr::BROADCAST, sb, b"from-b", 60));
    assert!(
        em.collect(b"from-b", WAIT).is_empty(),
        "the output port does no switching"
    );
    let f = test_frame(sb, sa, b"to-b", 60);
    ea.send(&f);
    assert_eq!(eb.collect(b"to-b", WAIT), vec![f.clone()]);
    assert_eq!(em.collect(b"to-b", WAIT), vec![f], "mirrored copy");
    em.send(&test_frame(
        MacAddr::BROADCAST,
        mac("02:aa:00:00:13:0c"),
        b"from-m",
        60,
    ));
    assert!(ea.collect(b"from-m", WAIT).is_empty());
    sw.ok(&["mirror", "del", "span"]);
    let e = sw.fails(&["mirror", "del", "span"]);
    assert!(e.contains("no mirror named span"), "{e}");
    let e = sw.fails(&["mirror", "add", "x", "--to", &m]);
    assert!(e.contains("--src and/or --dst"), "{e}");
}
