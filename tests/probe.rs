//! `probe::run` end to end over a kernel bridge: the probe must not depend
//! on l2sw, so its baseline test uses the kernel's switch. Needs root; fails
//! (never skips) without it.

mod common;

use std::process::Command;
use std::time::Duration;

use l2sw::netns;
use l2sw::probe::{self, ProbeOptions};

/// A kernel bridge with namespaces hanging off it through veth pairs; all of
/// it removed on drop, also when the test fails half-way.
struct BridgeLab {
    bridge: String,
    namespaces: Vec<String>,
    /// Root-namespace veth ends, and the bridge last.
    links: Vec<String>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl BridgeLab {
    fn new() -> BridgeLab {
        common::require_root();
        let bridge = common::unique("pbr");
        // Registered before it exists, so a failure right after is cleaned up.
        let lab = BridgeLab {
            bridge: bridge.clone(),
            namespaces: Vec::new(),
            links: vec![bridge.clone()],
        };
        ip(&["link", "add", &bridge, "type", "bridge"]);
        netns::set_up(None, &bridge).unwrap();
        lab
    }

    /// A namespace with `eth0` at `cidr`, its peer on the bridge with MTU
    /// `bridge_side_mtu`; returns the namespace's name.
    fn host(&mut self, cidr: &str, bridge_side_mtu: u32) -> String {
        let ns = format!("l2sw-{}", common::unique("probe"));
        self.namespaces.push(ns.clone());
        netns::create(&ns).unwrap();
        let peer = common::unique("pv");
        self.links.insert(0, peer.clone());
        netns::create_veth(&peer, "eth0", &ns).unwrap();
        netns::set_mtu(None, &peer, bridge_side_mtu).unwrap();
        ip(&["link", "set", "dev", &peer, "master", &self.bridge]);
        netns::set_up(None, &peer).unwrap();
        netns::set_up(Some(&ns), "eth0").unwrap();
        netns::add_addr(Some(&ns), "eth0", &cidr.parse().unwrap()).unwrap();
        netns::wait_oper_up(Some(&ns), "eth0", Duration::from_secs(5)).unwrap();
        ns
    }
}

impl Drop for BridgeLab {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            if netns::exists(ns) {
                let _ = netns::delete(ns);
            }
        }
        for l in &self.links {
            if netns::link_exists(None, l) {
                let _ = netns::delete_link(None, l);
            }
        }
    }
}

#[test]
fn probe_over_a_kernel_bridge_loses_nothing() {
    let mut lab = BridgeLab::new();
    let a = lab.host("10.91.0.1/24", 1500);
    let b = lab.host("10.91.0.2/24", 1500);

    let mut opts = ProbeOptions::new(&a, &b);
    opts.count = 500;
    opts.rate_pps = 1000;
    opts.size = 64;
    opts.timeout = Duration::from_secs(2);
    let r = probe::run(&opts).expect("probe runs");
    println!("{}", r.render_text());

    // The address was discovered in b.
    assert_eq!(r.to.ip().to_string(), "10.91.0.2");
    assert!(r.warmup_answered);
    assert_eq!(r.sent, 500);
    assert_eq!(r.received, r.sent, "{r:?}");
    assert_eq!((r.lost, r.lost_forward, r.lost_reverse), (0, 0, 0));
    assert_eq!((r.duplicates, r.invalid, r.send_errors), (0, 0, 0));
    assert!(r.one_way_measured);
    for s in [&r.rtt, &r.one_way_fwd, &r.one_way_rev] {
        assert_eq!(s.count, 500, "{s:?}");
        assert!(
            s.min_us <= s.p50_us && s.p50_us <= s.p99_us && s.p99_us <= s.max_us,
            "{s:?}"
        );
    }
    // One clock for all stamps: each direction is part of the round trip.
    assert!(r.one_way_fwd.min_us <= r.rtt.max_us && r.one_way_rev.min_us <= r.rtt.max_us);
    let h = r.rtt_hist().unwrap();
    assert_eq!(h.count(), 500);
    assert!(h.hgrm().contains("Total count    =          500]"));
}

#[test]
fn probe_too_big_for_the_path_shows_up_as_loss() {
    let mut lab = BridgeLab::new();
    let a = lab.host("10.92.0.1/24", 1500);
    // The bridge drops frames larger than the egress port's MTU: every
    // 1450-byte probe from a (MTU 1500, so not fragmented) dies on the way.
    let b = lab.host("10.92.0.2/24", 1400);

    let mut opts = ProbeOptions::new(&a, &b);
    opts.to_addr = Some("10.92.0.2".parse().unwrap());
    opts.count = 50;
    opts.rate_pps = 1000;
    opts.size = 1450;
    opts.timeout = Duration::from_millis(300);
    let r = probe::run(&opts).expect("probe runs");
    println!("{}", r.render_text());

    assert!(!r.warmup_answered);
    assert_eq!(r.sent, 50);
    assert_eq!(r.received, 0);
    assert_eq!((r.lost, r.lost_forward, r.lost_reverse), (50, 50, 0));
    assert_eq!(r.rtt.count, 0);

    // Small probes still get through the same path, with a 16-byte probe
    // measuring round trips only.
    opts.count = 20;
    opts.size = 16;
    let r = probe::run(&opts).expect("probe runs");
    assert_eq!((r.sent, r.received, r.lost), (20, 20, 0));
    assert!(!r.one_way_measured);
    assert_eq!((r.rtt.count, r.one_way_fwd.count), (20, 0));
}

#[test]
fn probe_errors_are_precise() {
    let mut lab = BridgeLab::new();
    let a = lab.host("10.93.0.1/24", 1500);
    let b = lab.host("10.93.0.2/24", 1500);
    // A namespace without a global IPv4 address.
    let bare = format!("l2sw-{}", common::unique("probe"));
    lab.namespaces.push(bare.clone());
    netns::create(&bare).unwrap();

    let e = probe::run(&ProbeOptions::new(&a, &bare)).unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("namespace {bare} has no global IPv4 address")),
        "{e}"
    );
    let e = probe::run(&ProbeOptions::new(&a, format!("{bare}-missing"))).unwrap_err();
    assert!(e.to_string().contains("no network namespace named"), "{e}");
    // An address that is not b's.
    let mut opts = ProbeOptions::new(&a, &b);
    opts.to_addr = Some("10.93.0.1".parse().unwrap());
    let e = probe::run(&opts).unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot open the reflector on 10.93.0.1:0"),
        "{e}"
    );
}
