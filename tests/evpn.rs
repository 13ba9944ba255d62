//! EVPN against FRR: host A is l2sw with a gobgpd beside it (in A's
//! namespace, gRPC on A's own 127.0.0.1), host B is FRR 8.4 (zebra + bgpd
//! in B's namespace) with a Linux bridge and a vxlan device that does not
//! learn. The two BGP speakers peer over the underlay veth (iBGP, AS
//! 65000). No flood entries are configured anywhere: the type-3 routes
//! make the flood lists and the type-2 routes the remote FDB entries.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{eventually, ping, require_root, unique, Switch};
use l2sw::netns;

const A_IP: &str = "10.201.0.1";
const B_IP: &str = "10.201.0.2";
const ASN: &str = "65000";
const GOBGP_API: &str = "127.0.0.1:50051";
/// BGP sessions come up and routes travel in seconds; this is the bound.
const CONVERGE: Duration = Duration::from_secs(30);

fn sh(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog).args(args).output().expect("run program");
    assert!(
        out.status.success(),
        "{prog} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip_in(ns: &str, args: &[&str]) {
    let mut a = vec!["-n", ns];
    a.extend_from_slice(args);
    sh("ip", &a);
}

/// Starts `PROG ARGS` inside namespace `ns`, output to `log`.
fn spawn_in(ns: &str, log: &PathBuf, prog: &str, args: &[&str]) -> Child {
    let f = std::fs::File::create(log).unwrap();
    Command::new("ip")
        .args(["netns", "exec", ns, prog])
        .args(args)
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {prog}: {e}"))
}

/// The two hosts, B's client, gobgpd and FRR. Everything goes on drop, by
/// PID and by name, also when the test fails.
struct Fabric {
    a: String,
    b: String,
    /// B's client namespaces.
    clients: Vec<String>,
    dir: PathBuf,
    daemons: Vec<(&'static str, Child)>,
}

impl Fabric {
    fn new() -> Fabric {
        require_root();
        let tag = unique("ev");
        let dir = std::env::temp_dir().join(format!("l2sw-evpn-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut f = Fabric {
            a: format!("{tag}-hA"),
            b: format!("{tag}-hB"),
            clients: Vec::new(),
            dir,
            daemons: Vec::new(),
        };
        netns::create(&f.a).unwrap();
        netns::create(&f.b).unwrap();
        let (va, vb) = (format!("{tag}a"), format!("{tag}b"));
        sh(
            "ip",
            &[
                "link", "add", &va, "netns", &f.a, "type", "veth", "peer", "name", &vb, "netns",
                &f.b,
            ],
        );
        for (ns, dev, addr) in [(&f.a, &va, A_IP), (&f.b, &vb, B_IP)] {
            ip_in(ns, &["addr", "add", &format!("{addr}/24"), "dev", dev]);
            ip_in(ns, &["link", "set", dev, "up"]);
            ip_in(ns, &["link", "set", "lo", "up"]);
        }
        // See tests/vxlan.rs: a veth has no NIC to finish the inner
        // checksums the Linux vxlan device leaves open.
        sh(
            "ip",
            &["netns", "exec", &f.b, "ethtool", "-K", &vb, "tx", "off"],
        );
        // B: bridge + vxlan device, neither learning from the data plane:
        // remote MACs come from BGP only.
        let b = f.b.clone();
        ip_in(
            &b,
            &[
                "link",
                "add",
                "vx100",
                "type",
                "vxlan",
                "id",
                "100",
                "local",
                B_IP,
                "dstport",
                "4789",
                "nolearning",
            ],
        );
        ip_in(&b, &["link", "add", "br0", "type", "bridge"]);
        ip_in(&b, &["link", "set", "vx100", "master", "br0"]);
        sh(
            "ip",
            &[
                "netns", "exec", &b, "bridge", "link", "set", "dev", "vx100", "learning", "off",
            ],
        );
        for d in ["vx100", "br0"] {
            ip_in(&b, &["link", "set", d, "up"]);
        }
        f.start_gobgpd();
        f.start_frr();
        f
    }

    fn start_gobgpd(&mut self) {
        let conf = self.dir.join("gobgpd.toml");
        std::fs::write(
            &conf,
            format!(
                "[global.config]\n  as = {ASN}\n  router-id = \"{A_IP}\"\n  local-address-list = [\"{A_IP}\"]\n\
                 [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{B_IP}\"\n    peer-as = {ASN}\n\
                 \x20 [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"l2vpn-evpn\"\n"
            ),
        )
        .unwrap();
        let child = spawn_in(
            &self.a,
            &self.dir.join("gobgpd.log"),
            "gobgpd",
            &[
                "-f",
                conf.to_str().unwrap(),
                "--api-hosts",
                GOBGP_API,
                "--pprof-disable",
                "-p",
            ],
        );
        self.daemons.push(("gobgpd", child));
    }

    fn start_frr(&mut self) {
        let d = self.dir.to_str().unwrap().to_string();
        // zebra drops to the frr user; its sockets and pid file live here.
        sh("chown", &["frr:frr", &d]);
        let conf = self.dir.join("bgpd.conf");
        std::fs::write(
            &conf,
            format!(
                "frr defaults datacenter\nhostname hostB\n\
                 router bgp {ASN}\n bgp router-id {B_IP}\n no bgp default ipv4-unicast\n\
                 \x20neighbor {A_IP} remote-as {ASN}\n address-family l2vpn evpn\n\
                 \x20 neighbor {A_IP} activate\n  advertise-all-vni\n exit-address-family\n"
            ),
        )
        .unwrap();
        let zsock = format!("{d}/zserv.api");
        let zebra = spawn_in(
            &self.b,
            &self.dir.join("zebra.log"),
            "/usr/lib/frr/zebra",
            &[
                "-P",
                "0",
                "-i",
                &format!("{d}/zebra.pid"),
                "-z",
                &zsock,
                "--vty_socket",
                &d,
                "-f",
                "/dev/null",
            ],
        );
        self.daemons.push(("zebra", zebra));
        assert!(
            eventually(Duration::from_secs(10), || std::path::Path::new(&zsock)
                .exists()),
            "zebra did not start: {}",
            self.log("zebra.log")
        );
        let bgpd = spawn_in(
            &self.b,
            &self.dir.join("bgpd.log"),
            "/usr/lib/frr/bgpd",
            &[
                "-S",
                "-P",
                "0",
                "-i",
                &format!("{d}/bgpd.pid"),
                "-z",
                &zsock,
                "--vty_socket",
                &d,
                "-f",
                conf.to_str().unwrap(),
            ],
        );
        self.daemons.push(("bgpd", bgpd));
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// A client namespace of host B on the bridge: `eth0` with `ip` and `mac`.
    fn b_client(&mut self, short: &str, ip: &str, mac: &str) -> String {
        let ns = format!("{}-{short}", self.a.trim_end_matches("-hA"));
        netns::create(&ns).unwrap();
        self.clients.push(ns.clone());
        let host = format!("{short}h");
        let b = self.b.clone();
        ip_in(
            &b,
            &[
                "link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                "address", mac,
            ],
        );
        ip_in(&b, &["link", "set", &host, "master", "br0"]);
        ip_in(&b, &["link", "set", &host, "up"]);
        ip_in(&ns, &["addr", "add", ip, "dev", "eth0"]);
        ip_in(&ns, &["link", "set", "eth0", "up"]);
        ip_in(&ns, &["link", "set", "lo", "up"]);
        ns
    }

    /// B's kernel bridge FDB (`bridge fdb show`).
    fn b_fdb(&self) -> String {
        sh("ip", &["netns", "exec", &self.b, "bridge", "fdb", "show"])
    }

    /// gobgpd's EVPN table as its CLI shows it.
    fn gobgp_rib(&self) -> String {
        let (host, port) = GOBGP_API.split_once(':').unwrap();
        sh(
            "ip",
            &[
                "netns", "exec", &self.a, "gobgp", "-u", host, "-p", port, "global", "rib", "-a",
                "evpn",
            ],
        )
    }

    /// What FRR says about the session and VNI 100, for failure messages.
    fn frr_state(&self) -> String {
        let d = self.dir.to_str().unwrap();
        let mut out = String::new();
        for c in ["show bgp l2vpn evpn summary", "show evpn mac vni 100"] {
            if let Ok(o) = Command::new("vtysh")
                .args(["--vty_socket", d, "-c", c])
                .output()
            {
                out.push_str(&String::from_utf8_lossy(&o.stdout));
            }
        }
        out
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        for (_, c) in self.daemons.iter_mut().rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        for (_, c) in self.daemons.iter_mut() {
            let stopped = eventually(Duration::from_secs(5), || {
                matches!(c.try_wait(), Ok(Some(_)))
            });
            if !stopped {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        for ns in [&self.a, &self.b].into_iter().chain(&self.clients) {
            if netns::exists(ns) {
                let _ = netns::delete(ns);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `fdb show --json`'s entry for `mac`.
fn fdb_entry(sw: &Switch, mac: &str) -> Option<serde_json::Value> {
    sw.json(&["fdb", "show"])
        .as_array()?
        .iter()
        .find(|e| e["mac"] == mac)
        .cloned()
}

fn is_evpn_behind(sw: &Switch, mac: &str, vtep: &str) -> bool {
    fdb_entry(sw, mac).is_some_and(|e| {
        e["type"] == "evpn" && e["port"] == "vx100" && e["dst"].as_str() == Some(vtep)
    })
}

/// B's bridge holds `mac` as a remote (BGP-installed) entry.
fn extern_learned(fdb: &str, mac: &str) -> bool {
    fdb.lines()
        .any(|l| l.starts_with(mac) && l.contains("extern_learn") && l.contains("master br0"))
}

#[test]
fn l2sw_with_gobgp_and_frr_exchange_macs_follow_a_move_and_withdraw_on_shutdown() {
    let mut f = Fabric::new();
    let cb = f.b_client("cB", "10.0.0.2/24", "02:16:00:00:0b:01");
    let mut sw = Switch::start("evp");
    // No --remote: the flood list is EVPN's to fill.
    sw.ok(&[
        "port",
        "add",
        "vxlan",
        "vx100",
        "--vni",
        "100",
        "--local",
        A_IP,
        "--netns",
        &f.a,
        "--learning",
        "off",
    ]);
    let ca = sw.plug("cA", "10.0.0.1/24", "02:16:00:00:0a:01", &["--mtu", "1450"]);
    sw.ok(&[
        "evpn", "enable", "--gobgp", GOBGP_API, "--netns", &f.a, "--asn", ASN,
    ]);
    // B's client speaks once so its bridge learns it and FRR announces it.
    let _ = ping(&cb, "10.0.0.9", &["-c", "1", "-W", "1"]);

    // B's VTEP arrives as a type-3 route: the flood list gets it.
    assert!(
        eventually(CONVERGE, || {
            let p = sw.json(&["port", "list"]);
            p.as_array().unwrap().iter().any(|p| {
                p["name"] == "vx100"
                    && p["vxlan"]["flood"].as_array().is_some_and(|l| {
                        l.iter()
                            .any(|m| m["vtep"] == B_IP && m["origin"][0] == "evpn")
                    })
            })
        }),
        "no type-3 route from B: {}\nFRR: {}\ngobgp: {}",
        sw.ok(&["evpn", "show"]),
        f.frr_state(),
        f.gobgp_rib()
    );
    // Clients on both hosts reach each other.
    assert_eq!(ping(&ca, "10.0.0.2", &[]), (3, 3), "ping A -> B");
    assert_eq!(ping(&cb, "10.0.0.1", &[]), (3, 3), "ping B -> A");

    // A's FDB: B's client is an EVPN entry behind B's VTEP.
    assert!(
        eventually(CONVERGE, || is_evpn_behind(&sw, "02:16:00:00:0b:01", B_IP)),
        "A's FDB: {}\n{}",
        sw.ok(&["fdb", "show"]),
        sw.ok(&["evpn", "show"])
    );
    let text = sw.ok(&["fdb", "show"]);
    assert!(
        text.lines().any(|l| l.contains("02:16:00:00:0b:01")
            && l.contains("evpn")
            && l.contains(&format!("dst {B_IP}"))),
        "{text}"
    );
    // B's kernel: A's client installed by FRR from l2sw's type-2 route.
    assert!(
        eventually(CONVERGE, || extern_learned(&f.b_fdb(), "02:16:00:00:0a:01")),
        "B's FDB: {}\nFRR: {}",
        f.b_fdb(),
        f.frr_state()
    );
    let shown = sw.json(&["evpn", "show"]);
    assert_eq!(shown["connected"], true, "{shown}");
    let local = shown["advertised"].as_array().unwrap();
    assert!(
        local
            .iter()
            .any(|r| r["type"] == 2 && r["mac"] == "02:16:00:00:0a:01" && r["vni"] == 100),
        "{shown}"
    );
    assert!(
        local.iter().any(|r| r["type"] == 3 && r["vtep"] == A_IP),
        "{shown}"
    );
    // No static flood entry anywhere: A's flood list is EVPN's alone.
    let ports = sw.json(&["port", "list"]);
    let vx = ports
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "vx100")
        .unwrap();
    assert_eq!(
        vx["vxlan"]["flood"],
        serde_json::json!([{"vtep": B_IP, "origin": ["evpn"]}]),
        "{vx}"
    );

    // The MAC moves from A to B: A's client takes another address, a new
    // client on B takes the old one and speaks.
    let moved = "02:16:00:00:0a:01";
    ip_in(
        &ca,
        &["link", "set", "eth0", "address", "02:16:00:00:0a:02"],
    );
    let cb2 = f.b_client("cB2", "10.0.0.3/24", moved);
    assert_eq!(ping(&cb2, "10.0.0.2", &[]), (3, 3), "ping on B");
    // A follows: the MAC is now an EVPN entry behind B, and A no longer
    // advertises it.
    assert!(
        eventually(CONVERGE, || is_evpn_behind(&sw, moved, B_IP)),
        "A's FDB after the move: {}\n{}",
        sw.ok(&["fdb", "show"]),
        sw.ok(&["evpn", "show"])
    );
    assert!(
        eventually(CONVERGE, || !sw.json(&["evpn", "show"])["advertised"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["mac"] == moved)),
        "A still advertises the moved MAC: {}",
        sw.ok(&["evpn", "show"])
    );
    // B follows: the MAC is local on its new port, not a remote entry.
    assert!(
        eventually(CONVERGE, || {
            let fdb = f.b_fdb();
            !extern_learned(&fdb, moved)
                && fdb
                    .lines()
                    .any(|l| l.starts_with(moved) && l.contains("dev cB2h master br0"))
        }),
        "B's FDB after the move: {}\nFRR: {}",
        f.b_fdb(),
        f.frr_state()
    );
    // And traffic follows too.
    assert_eq!(ping(&ca, "10.0.0.3", &[]), (3, 3), "ping A -> moved client");
    assert!(
        eventually(CONVERGE, || extern_learned(&f.b_fdb(), "02:16:00:00:0a:02")),
        "A's client's new MAC on B: {}",
        f.b_fdb()
    );

    // Shutting l2sw down withdraws its routes: gobgpd's table and B's
    // kernel lose them.
    assert!(sw.stop(), "l2sw exits cleanly");
    assert!(
        eventually(CONVERGE, || !f.gobgp_rib().contains(&format!("rd:{A_IP}:"))),
        "gobgpd still has l2sw's routes: {}",
        f.gobgp_rib()
    );
    assert!(
        eventually(CONVERGE, || !extern_learned(
            &f.b_fdb(),
            "02:16:00:00:0a:02"
        )),
        "B still has A's MAC: {}",
        f.b_fdb()
    );
    assert!(
        f.gobgp_rib().contains(&format!("rd:{B_IP}:")),
        "B's own routes stay: {}",
        f.gobgp_rib()
    );
}

#[test]
fn evpn_enable_refuses_bad_arguments_and_reports_an_unreachable_gobgpd() {
    let u = Fabric {
        a: unique("ev") + "-hA",
        b: String::new(),
        clients: Vec::new(),
        dir: std::env::temp_dir().join(unique("l2sw-evpn-e")),
        daemons: Vec::new(),
    };
    require_root();
    netns::create(&u.a).unwrap();
    ip_in(&u.a, &["link", "set", "lo", "up"]);
    let sw = Switch::start("eve");
    let e = sw.fails(&["evpn", "enable", "--gobgp", "nowhere", "--asn", "1"]);
    assert!(e.contains("HOST:PORT"), "{e}");
    let e = sw.fails(&["evpn", "enable", "--gobgp", GOBGP_API, "--asn", "0"]);
    assert!(e.contains("AS number"), "{e}");
    let e = sw.fails(&[
        "evpn",
        "enable",
        "--gobgp",
        GOBGP_API,
        "--asn",
        "1",
        "--netns",
        "l2sw-no-such-ns",
    ]);
    assert!(e.contains("does not exist"), "{e}");
    let e = sw.fails(&["evpn", "show"]);
    assert!(e.contains("not enabled"), "{e}");
    // Nothing listens in the namespace: the switch keeps running and says why.
    sw.ok(&[
        "evpn", "enable", "--gobgp", GOBGP_API, "--asn", "1", "--netns", &u.a,
    ]);
    assert!(
        eventually(Duration::from_secs(10), || sw.json(&["evpn", "show"])
            ["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot connect to gobgpd"))),
        "{}",
        sw.ok(&["evpn", "show"])
    );
    let e = sw.fails(&["evpn", "enable", "--gobgp", GOBGP_API, "--asn", "1"]);
    assert!(e.contains("already enabled"), "{e}");
    sw.ok(&["evpn", "disable"]);
    assert!(sw.ok(&["status"]).contains("ports"));
}
