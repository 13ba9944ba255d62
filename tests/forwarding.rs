//! Forwarding through a real switch process between real namespaces: ping
//! over veth and TAP ports, learning, flooding, ageing, jumbo frames.

mod common;

use std::time::Duration;

use common::*;
use l2sw::wire::MacAddr;

const WAIT: Duration = Duration::from_millis(600);

#[test]
fn namespaces_ping_each_other_over_veth_and_tap() {
    let mut sw = Switch::start("ping");
    let red = sw.plug("red", "10.1.0.1/24", "02:00:00:01:00:01", &[]);
    let blue = sw.plug(
        "blue",
        "10.1.0.2/24",
        "02:00:00:01:00:02",
        &["--via", "tap"],
    );
    assert_eq!(ping(&red, "10.1.0.2", &[]), (3, 3));
    assert_eq!(ping(&blue, "10.1.0.1", &[]), (3, 3));

    let fdb = sw.json(&["fdb", "show"]);
    let entries = fdb.as_array().unwrap();
    let port_of = |mac: &str| {
        entries
            .iter()
            .find(|e| e["mac"] == mac)
            .map(|e| e["port"].as_str().unwrap().to_string())
    };
    assert_eq!(port_of("02:00:00:01:00:01").as_deref(), Some(red.as_str()));
    assert_eq!(port_of("02:00:00:01:00:02").as_deref(), Some(blue.as_str()));
    for e in entries {
        assert_eq!(e["type"], "learned");
        assert_eq!(e["vlan"], 0);
        assert!(e["age_s"].is_u64());
    }

    let stats = sw.json(&["stats"]);
    let ports = stats["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 2);
    for p in ports {
        assert!(p["rx_frames"].as_u64().unwrap() >= 4, "{p}");
        assert!(p["tx_frames"].as_u64().unwrap() >= 4, "{p}");
        assert!(p["rx_bytes"].as_u64().unwrap() > 0);
    }
    let list = sw.json(&["port", "list"]);
    let kinds: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"iface") && kinds.contains(&"tap"),
        "{kinds:?}"
    );
}

#[test]
fn known_unicast_stops_reaching_a_third_namespace_and_ageing_brings_flooding_back() {
    let mut sw = Switch::start("learn");
    let a = sw.plug("a", "10.2.0.1/24", "02:00:00:02:00:01", &[]);
    let b = sw.plug("b", "10.2.0.2/24", "02:00:00:02:00:02", &[]);
    let c = sw.plug("c", "10.2.0.3/24", "02:00:00:02:00:03", &["--via", "tap"]);
    let (mut ea, mut eb, mut ec) = (
        Endpoint::open(&a, "eth0"),
        Endpoint::open(&b, "eth0"),
        Endpoint::open(&c, "eth0"),
    );
    // Stations that only these raw frames use, so nothing else refreshes them.
    let (sa, sb) = (mac("02:aa:00:00:00:0a"), mac("02:aa:00:00:00:0b"));

    let f1 = test_frame(sb, sa, b"unknown", 100);
    ea.send(&f1);
    assert_eq!(
        eb.collect(b"unknown", WAIT),
        vec![f1.clone()],
        "b gets the flood"
    );
    assert_eq!(ec.collect(b"unknown", WAIT).len(), 1, "c gets the flood");

    let f2 = test_frame(sa, sb, b"reply", 100);
    eb.send(&f2);
    assert_eq!(ea.collect(b"reply", WAIT), vec![f2], "a learned: a gets it");
    assert!(
        ec.collect(b"reply", WAIT).is_empty(),
        "c must not see known unicast"
    );

    let f3 = test_frame(sb, sa, b"known", 100);
    ea.send(&f3);
    assert_eq!(eb.collect(b"known", WAIT).len(), 1);
    assert!(
        ec.collect(b"known", WAIT).is_empty(),
        "c must not see known unicast"
    );

    // Ageing: entries go, unknown-unicast flooding returns.
    sw.ok(&["set", "ageing-time", "1"]);
    assert!(eventually(Duration::from_secs(5), || {
        let fdb = sw.json(&["fdb", "show"]);
        !fdb.as_array()
            .unwrap()
            .iter()
            .any(|e| e["mac"] == "02:aa:00:00:00:0b")
    }));
    let f4 = test_frame(sb, sa, b"aged", 100);
    ea.send(&f4);
    assert_eq!(
        ec.collect(b"aged", WAIT).len(),
        1,
        "flooding is back after ageing"
    );
    // Expired entries leave `fdb show` at once but are counted by the
    // once-a-second sweep, which may come up to a second later.
    assert!(eventually(Duration::from_secs(3), || {
        sw.json(&["stats"])["totals"]["fdb"]["aged"]
            .as_u64()
            .unwrap()
            >= 1
    }));
    assert_eq!(sw.json(&["get"])["ageing_time_s"], 1);
}

#[test]
fn jumbo_frames_pass_intact_on_9000_mtu_links_and_oversize_is_counted() {
    let mut sw = Switch::start("jumbo");
    let a = sw.plug("a", "10.3.0.1/24", "02:00:00:03:00:01", &["--mtu", "9000"]);
    let b = sw.plug(
        "b",
        "10.3.0.2/24",
        "02:00:00:03:00:02",
        &["--mtu", "9000", "--via", "tap"],
    );
    let c = sw.plug("c", "10.3.0.3/24", "02:00:00:03:00:03", &[]);
    assert_eq!(ping(&a, "10.3.0.2", &["-s", "8972", "-M", "do"]), (3, 3));
    assert_eq!(ping(&b, "10.3.0.1", &["-s", "8972", "-M", "do"]), (3, 3));

    let (mut ea, mut eb, mut ec) = (
        Endpoint::open(&a, "eth0"),
        Endpoint::open(&b, "eth0"),
        Endpoint::open(&c, "eth0"),
    );
    let src = mac("02:aa:00:00:03:0a");
    for (len, marker) in [(60usize, &b"min"[..]), (1514, b"std"), (9014, b"jumbo")] {
        let f = test_frame(MacAddr::BROADCAST, src, marker, len);
        ea.send(&f);
        let got = eb.collect(marker, WAIT);
        assert_eq!(got.len(), 1, "{len}-byte frame");
        assert_eq!(got[0], f, "{len}-byte frame changed in transit");
        let on_c = ec.collect(marker, WAIT);
        if len <= 1514 {
            assert_eq!(on_c, vec![f], "{len}-byte frame on the 1500-MTU port");
        } else {
            assert!(on_c.is_empty(), "a jumbo frame cannot fit c's MTU");
        }
    }
    let stats = sw.json(&["stats", "--port", &c]);
    assert_eq!(stats["ports"][0]["drops"]["egress_too_big"], 1, "{stats}");
}

#[test]
fn reserved_group_frames_are_not_forwarded_and_are_counted() {
    let mut sw = Switch::start("rsvd");
    let a = sw.plug("a", "10.4.0.1/24", "02:00:00:04:00:01", &[]);
    let b = sw.plug("b", "10.4.0.2/24", "02:00:00:04:00:02", &[]);
    let (mut ea, mut eb) = (Endpoint::open(&a, "eth0"), Endpoint::open(&b, "eth0"));
    let src = mac("02:aa:00:00:04:0a");
    ea.send(&test_frame(mac("01:80:c2:00:00:0e"), src, b"lldp", 60));
    ea.send(&test_frame(mac("01:80:c2:00:00:01"), src, b"pause", 60));
    ea.send(&test_frame(mac("01:80:c2:00:00:00"), src, b"stp", 60));
    assert!(eb.collect(b"lldp", WAIT).is_empty());
    assert!(eb.collect(b"pause", WAIT).is_empty());
    assert_eq!(
        eb.collect(b"stp", WAIT).len(),
        1,
        "BPDUs pass while no STP runs"
    );
    let stats = sw.json(&["stats", "--port", &a]);
    let drops = &stats["ports"][0]["drops"];
    assert_eq!(drops["reserved_group"], 1);
    assert_eq!(drops["mac_control"], 1);
    // Learned from the reserved-group frame, not from the PAUSE frame.
    let fdb = sw.json(&["fdb", "show", "--port", &a]);
    assert!(fdb
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["mac"] == "02:aa:00:00:04:0a"));
}

#[test]
fn vlan_tagged_frames_cross_untouched() {
    let mut sw = Switch::start("tag");
    let a = sw.plug("a", "10.5.0.1/24", "02:00:00:05:00:01", &[]);
    let b = sw.plug("b", "10.5.0.2/24", "02:00:00:05:00:02", &["--via", "tap"]);
    let c = sw.plug("c", "10.5.0.3/24", "02:00:00:05:00:03", &[]);
    let (mut ea, mut eb, mut ec) = (
        Endpoint::open(&a, "eth0"),
        Endpoint::open(&b, "eth0"),
        Endpoint::open(&c, "eth0"),
    );
    for (tpid, marker) in [(0x8100u16, &b"ctag"[..]), (0x88a8, b"stag")] {
        let mut f = vec![0u8; 64];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&[2, 0xaa, 0, 0, 5, 0x0a]);
        f[12..14].copy_from_slice(&tpid.to_be_bytes());
        f[14..16].copy_from_slice(&0x200au16.to_be_bytes()); // PCP 1, VID 10
        f[16..18].copy_from_slice(&TEST_ETHERTYPE.to_be_bytes());
        f[18..18 + marker.len()].copy_from_slice(marker);
        let is_ours = |g: &[u8]| g.len() >= 22 && g[18..18 + marker.len()] == *marker;
        ea.send(&f);
        // veth (to c) and TAP (to b) egress both keep the tag in place.
        assert_eq!(
            eb.collect_where(is_ours, WAIT),
            vec![f.clone()],
            "{tpid:#x} via tap"
        );
        assert_eq!(
            ec.collect_where(is_ours, WAIT),
            vec![f.clone()],
            "{tpid:#x} via veth"
        );
    }
}

#[test]
fn tcp_and_udp_cross_veth_and_tap_ports_intact() {
    let mut sw = Switch::start("tcp");
    let v1 = sw.plug("v1", "10.12.0.1/24", "02:00:00:0c:00:01", &[]);
    let v2 = sw.plug("v2", "10.12.0.2/24", "02:00:00:0c:00:02", &[]);
    let t3 = sw.plug("t3", "10.12.0.3/24", "02:00:00:0c:00:03", &["--via", "tap"]);
    const MB: usize = 1 << 20;
    assert_eq!(
        tcp_transfer(&v1, &v2, "10.12.0.2", 5001, 16 * MB),
        16 * MB,
        "veth -> veth"
    );
    assert_eq!(
        tcp_transfer(&v1, &t3, "10.12.0.3", 5002, 16 * MB),
        16 * MB,
        "veth -> tap"
    );
    assert_eq!(
        tcp_transfer(&t3, &v2, "10.12.0.2", 5003, 16 * MB),
        16 * MB,
        "tap -> veth"
    );
    assert_eq!(
        udp_exchange(&v1, &v2, "10.12.0.2", 5004, 1400, 20),
        20,
        "udp veth -> veth"
    );
    assert_eq!(
        udp_exchange(&v2, &t3, "10.12.0.3", 5005, 1400, 20),
        20,
        "udp veth -> tap"
    );
    let stats = sw.json(&["stats"]);
    let drops = &stats["totals"]["drops"];
    assert_eq!(drops["egress_too_big"], 0, "{stats}");
}

/// Turns checksum offload, TSO, GSO and GRO off on `eth0` in `ns`: the stack
/// sends MTU-sized segments with full checksums.
fn offloads_off(ns: &str) {
    let st = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "ethtool", "-K", "eth0"])
        .args(["tx", "off", "tso", "off", "gso", "off", "gro", "off"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run ethtool (Debian package ethtool)");
    assert!(st.success(), "ethtool -K eth0 ... off in {ns}");
}

fn port_counter(sw: &Switch, port: &str, key: &str) -> u64 {
    let stats = sw.json(&["stats"]);
    let p = stats["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port)
        .unwrap_or_else(|| panic!("no port {port} in {stats}"));
    p[key].as_u64().unwrap_or_else(|| panic!("no {key} in {p}"))
}

#[test]
fn tcp_without_offloads_is_coalesced_and_arrives_intact() {
    let mut sw = Switch::start("gro");
    let v1 = sw.plug("v1", "10.13.0.1/24", "02:00:00:0d:00:01", &[]);
    let v2 = sw.plug("v2", "10.13.0.2/24", "02:00:00:0d:00:02", &[]);
    let t3 = sw.plug("t3", "10.13.0.3/24", "02:00:00:0d:00:03", &["--via", "tap"]);
    for ns in [&v1, &v2, &t3] {
        offloads_off(ns);
    }
    const MB: usize = 1 << 20;
    let cases = [
        (&v1, &v2, "10.13.0.2", "veth -> veth"),
        (&v1, &t3, "10.13.0.3", "veth -> tap"),
        (&t3, &v2, "10.13.0.2", "tap -> veth"),
        (&v2, &v1, "10.13.0.1", "veth -> veth, back"),
    ];
    for (i, (from, to, addr, what)) in cases.into_iter().enumerate() {
        let port = 5101 + i as u16;
        assert_eq!(
            tcp_transfer(from, to, addr, port, 16 * MB),
            16 * MB,
            "{what}"
        );
    }
    // The veth ports take super-frames: runs of MTU-sized segments left as
    // fewer, larger frames.
    let (frames, segments) = (
        port_counter(&sw, &v2, "coalesced"),
        port_counter(&sw, &v2, "coalesced_segments"),
    );
    assert!(
        frames > 0 && segments > 2 * frames,
        "{frames} super-frames of {segments} segments"
    );

    // With gro off on the sending port every segment leaves as it came.
    sw.ok(&["port", "set", &v1, "--gro", "off"]);
    assert_eq!(
        tcp_transfer(&v1, &v2, "10.13.0.2", 5110, 4 * MB),
        4 * MB,
        "gro off"
    );
    assert_eq!(
        port_counter(&sw, &v2, "coalesced"),
        frames,
        "nothing coalesced from v1"
    );
    let drops = &sw.json(&["stats"])["totals"]["drops"];
    assert_eq!(drops["egress_too_big"], 0, "{drops}");
}
