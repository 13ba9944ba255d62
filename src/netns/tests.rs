//! Namespaces made without `ip` are iproute2's namespaces; link, address and
//! route requests inside them do what `ip` would, and fail with context.
//! Everything happens inside namespaces these tests create (names carry the
//! pid), never in the host's.

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use super::*;

fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("");
    assert_eq!(
        euid, "0",
        "this test needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)"
    );
}

/// A namespace deleted when the test ends, passed or not.
struct Ns(String);

impl Ns {
    fn new(tag: &str) -> Ns {
        let name = format!("l2sw-nltest-{}-{tag}", std::process::id());
        create(&name).expect("create namespace");
        Ns(name)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = delete(&self.0);
    }
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_namespace_made_here_is_one_ip_netns_knows() {
    require_root();
    let ns = Ns::new("a");
    assert!(exists(&ns.0));
    assert!(ip(&["netns", "list"])
        .lines()
        .any(|l| l.split_whitespace().next() == Some(&ns.0)));
    // Its loopback is up, as after `ip netns add` + `ip link set lo up`.
    let lo = ip(&["-n", &ns.0, "-o", "link", "show", "lo"]);
    assert!(lo.contains("UP"), "{lo}");
    assert!(matches!(create(&ns.0), Err(NetnsError::Exists(_))));
    delete(&ns.0).unwrap();
    assert!(!exists(&ns.0));
    assert!(matches!(delete(&ns.0), Err(NetnsError::NoSuchNamespace(_))));
}

#[test]
fn links_addresses_and_routes_inside_a_namespace() {
    require_root();
    let ns = Ns::new("b");
    let n = Namespace::open(&ns.0).unwrap();
    let mut nl = n.rtnl().unwrap();
    nl.create_veth("nla", "nlb", None).unwrap();
    let err = nl.create_veth("nla", "nlc", None).unwrap_err();
    assert!(
        err.to_string()
            .contains("File exists (an interface of that name already exists)"),
        "{err}"
    );
    nl.set_mtu("nla", 1400).unwrap();
    let mac: MacAddr = "02:00:00:aa:bb:01".parse().unwrap();
    nl.set_mac("nla", mac).unwrap();
    nl.rename("nlb", "nlpeer").unwrap();
    nl.add_addr("nla", "10.77.0.1".parse().unwrap(), 24)
        .unwrap();
    nl.add_addr("nla", "fd77::1".parse().unwrap(), 64).unwrap();
    let dup = nl
        .add_addr("nla", "10.77.0.1".parse().unwrap(), 24)
        .unwrap_err();
    assert!(
        dup.to_string().contains("already has that address"),
        "{dup}"
    );
    nl.set_up("nla").unwrap();
    nl.set_up("nlpeer").unwrap();
    nl.wait_oper_up("nla", Duration::from_secs(5)).unwrap();
    nl.add_default_route("10.77.0.254".parse().unwrap(), Some("nla"))
        .unwrap();

    let link = nl.link("nla").unwrap().unwrap();
    assert_eq!(link.mac, Some(mac));
    assert_eq!(link.mtu, Some(1400));
    assert_eq!(link.kind.as_deref(), Some("veth"));
    assert!(link.up && link.oper_up);
    assert_eq!(link.link_netnsid, None, "both ends are in this namespace");
    let addrs = nl.addrs("nla").unwrap();
    assert!(addrs
        .iter()
        .any(|a| a.addr == "10.77.0.1".parse::<IpAddr>().unwrap() && a.prefix == 24 && a.global));
    assert!(addrs
        .iter()
        .any(|a| a.addr == "fd77::1".parse::<IpAddr>().unwrap()));
    // What `ip` sees, to be sure the requests meant what they say.
    let a = ip(&["-n", &ns.0, "-o", "addr", "show", "dev", "nla"]);
    assert!(a.contains("inet 10.77.0.1/24 brd 10.77.0.255"), "{a}");
    let r = ip(&["-n", &ns.0, "route", "show", "default"]);
    assert!(r.contains("default via 10.77.0.254 dev nla"), "{r}");
    assert_eq!(link_mac(Some(&ns.0), "nla").unwrap(), mac);
    assert!(link_exists(Some(&ns.0), "nlpeer"));

    nl.delete_link("nla").unwrap();
    assert!(!link_exists(Some(&ns.0), "nlpeer"), "the peer goes with it");
    assert!(nl.delete_link("nla").unwrap_err().is_not_found());
}

#[test]
fn a_veth_peer_is_created_in_and_moved_between_namespaces_by_fd() {
    require_root();
    let (a, b) = (Ns::new("c"), Ns::new("d"));
    let (na, nb) = (
        Namespace::open(&a.0).unwrap(),
        Namespace::open(&b.0).unwrap(),
    );
    let mut nla = na.rtnl().unwrap();
    nla.create_veth("nlx", "nly", Some(nb.fd())).unwrap();
    assert!(link_exists(Some(&b.0), "nly"));
    assert!(nla.link("nlx").unwrap().unwrap().link_netnsid.is_some());
    nla.create_veth("nlz", "nlw", None).unwrap();
    nla.move_to_netns("nlz", nb.fd(), &b.0).unwrap();
    assert!(link_exists(Some(&b.0), "nlz"));
    assert!(!link_exists(Some(&a.0), "nlz"));
    // A bridge is local to its namespace: the kernel refuses, and says why.
    nla.create_link("nlbr", crate::netlink::link::LinkKind::Bridge)
        .unwrap();
    assert_eq!(
        nla.link("nlbr").unwrap().unwrap().kind.as_deref(),
        Some("bridge")
    );
    let e = nla.move_to_netns("nlbr", nb.fd(), &b.0).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("cannot move link nlbr into namespace {}: ", b.0)),
        "{e}"
    );
}

#[test]
fn steps_in_a_missing_namespace_say_so() {
    let gone = format!("l2sw-nltest-{}-missing", std::process::id());
    let e = move_link("l2v1", &gone).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("cannot move link l2v1 into namespace {gone}: no such namespace")
    );
    let e = set_up(Some(&gone), "eth0").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("cannot bring up link eth0 in namespace {gone}: no such namespace")
    );
    assert!(!link_exists(Some(&gone), "eth0"));
}
