//! VXLAN ports against real peers: two "hosts" are namespaces joined by a
//! veth underlay; each has client namespaces. Host A is always l2sw; host B
//! is the Linux vxlan device with a kernel bridge, Open vSwitch's userspace
//! (netdev) datapath with a vxlan port, or another l2sw. Clients
//! ping and move checksummed TCP streams across, jumbo frames included, and
//! the FDBs on both sides show where the MACs were learned.

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use common::reference::Ovs;
use common::{eventually, ping, require_root, tcp_transfer, unique, Switch};
use l2sw::netns;

const A_IP: &str = "10.201.0.1";
const B_IP: &str = "10.201.0.2";

/// Runs `ip ARGS` (or another program) and insists it works.
fn sh(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog).args(args).output().expect("run program");
    assert!(
        out.status.success(),
        "{prog} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip_in(ns: &str, args: &[&str]) -> String {
    let mut a = vec!["-n", ns];
    a.extend_from_slice(args);
    sh("ip", &a)
}

/// Two host namespaces and the veth between them; everything in them goes
/// when they are deleted, on drop, also when the test fails.
struct Underlay {
    a: String,
    b: String,
    /// Further namespaces (clients of host B) to delete.
    extra: Vec<String>,
}

impl Underlay {
    fn new(mtu: u32) -> Underlay {
        require_root();
        let tag = unique("vx");
        let u = Underlay {
            a: format!("{tag}-hA"),
            b: format!("{tag}-hB"),
            extra: Vec::new(),
        };
        netns::create(&u.a).unwrap();
        netns::create(&u.b).unwrap();
        let (va, vb) = (format!("{tag}a"), format!("{tag}b"));
        sh(
            "ip",
            &[
                "link",
                "add",
                &va,
                "netns",
                &u.a,
                "mtu",
                &mtu.to_string(),
                "type",
                "veth",
                "peer",
                "name",
                &vb,
                "netns",
                &u.b,
                "mtu",
                &mtu.to_string(),
            ],
        );
        for (ns, dev, addr) in [(&u.a, &va, A_IP), (&u.b, &vb, B_IP)] {
            ip_in(ns, &["addr", "add", &format!("{addr}/24"), "dev", dev]);
            ip_in(ns, &["link", "set", dev, "up"]);
            ip_in(ns, &["link", "set", "lo", "up"]);
        }
        // A Linux vxlan device leaves the inner TCP checksum to the NIC
        // (tunnel checksum offload); a veth has no NIC, so without this the
        // bytes reaching A's UDP socket carry unfinished inner checksums.
        // On real hardware the wire has them finished. See docs/vxlan.md.
        sh(
            "ip",
            &["netns", "exec", &u.b, "ethtool", "-K", &vb, "tx", "off"],
        );
        u
    }

    /// The underlay device in host A.
    fn a_dev(&self) -> String {
        format!("{}a", self.a.trim_end_matches("-hA"))
    }

    /// The underlay device in host B.
    fn b_dev(&self) -> String {
        format!("{}b", self.a.trim_end_matches("-hA"))
    }

    /// Host B as Linux: vxlan device + bridge + one client namespace
    /// (`10.0.0.2/24`, inner MTU `mtu`), flooding to A by a static entry.
    fn linux_host_b(&mut self, mtu: u32, learning: bool) -> String {
        let b = self.b.clone();
        let mut vx = vec![
            "link", "add", "vx100", "mtu", "", "type", "vxlan", "id", "100", "local", B_IP,
            "dstport", "4789",
        ];
        let m = mtu.to_string();
        vx[4] = &m;
        if !learning {
            vx.push("nolearning");
        }
        ip_in(&b, &vx);
        ip_in(&b, &["link", "add", "br0", "type", "bridge"]);
        ip_in(&b, &["link", "set", "vx100", "master", "br0"]);
        let client = self.client_b(mtu);
        ip_in(&b, &["link", "set", "cbh", "master", "br0"]);
        for d in ["cbh", "vx100", "br0"] {
            ip_in(&b, &["link", "set", d, "up"]);
        }
        sh(
            "ip",
            &[
                "netns",
                "exec",
                &b,
                "bridge",
                "fdb",
                "append",
                "00:00:00:00:00:00",
                "dev",
                "vx100",
                "dst",
                A_IP,
            ],
        );
        client
    }

    /// A client namespace of host B (`10.0.0.2/24`, MTU `mtu`) wired to
    /// host B by a veth whose host end is `cbh` (up, on no bridge yet).
    fn client_b(&mut self, mtu: u32) -> String {
        let client = format!("{}-cB", self.a.trim_end_matches("-hA"));
        netns::create(&client).unwrap();
        self.extra.push(client.clone());
        let m = mtu.to_string();
        ip_in(
            &self.b,
            &[
                "link", "add", "cbh", "mtu", &m, "type", "veth", "peer", "name", "eth0", "netns",
                &client, "mtu", &m,
            ],
        );
        ip_in(&self.b, &["link", "set", "cbh", "up"]);
        ip_in(&client, &["addr", "add", "10.0.0.2/24", "dev", "eth0"]);
        ip_in(&client, &["link", "set", "eth0", "up"]);
        ip_in(&client, &["link", "set", "lo", "up"]);
        client
    }
}

impl Drop for Underlay {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b].into_iter().chain(&self.extra) {
            if netns::exists(ns) {
                let _ = netns::delete(ns);
            }
        }
    }
}

fn fdb_entries(sw: &Switch) -> Vec<serde_json::Value> {
    sw.json(&["fdb", "show"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn drops(sw: &Switch, port: &str, reason: &str) -> u64 {
    let v = sw.json(&["stats"]);
    v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port)
        .and_then(|p| p["drops"][reason].as_u64())
        .unwrap_or(0)
}

/// The MAC of `eth0` in `ns`.
fn mac_of(ns: &str) -> String {
    netns::link_mac(Some(ns), "eth0").unwrap().to_string()
}

#[test]
fn l2sw_and_linux_vxlan_carry_pings_jumbo_frames_and_tcp() {
    let mut u = Underlay::new(9000);
    let cb = u.linux_host_b(8950, true);
    let mut sw = Switch::start("vxl");
    sw.ok(&[
        "port", "add", "vxlan", "vx100", "--vni", "100", "--local", A_IP, "--remote", B_IP,
        "--netns", &u.a,
    ]);
    let ports = sw.json(&["port", "list"]);
    let vx = ports
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "vx100")
        .unwrap();
    assert_eq!(
        vx["mtu"], 8950,
        "inner MTU is the underlay's minus 50: {vx}"
    );
    assert_eq!(vx["vxlan"]["vni"], 100);
    assert_eq!(vx["vxlan"]["flood"][0]["vtep"], B_IP);
    let text = sw.ok(&["port", "list"]);
    assert!(text.contains("inner mtu 8950"), "{text}");
    // One byte more than the tunnel's inner MTU, to see oversized frames
    // dropped; TCP stays inside B's MSS.
    let ca = sw.plug("cA", "10.0.0.1/24", "02:16:00:00:00:01", &["--mtu", "9000"]);

    assert_eq!(ping(&ca, "10.0.0.2", &[]), (3, 3), "ping across the tunnel");
    // A jumbo inner frame that fits the tunnel crosses whole (DF set).
    assert_eq!(
        ping(&ca, "10.0.0.2", &["-s", "8900", "-M", "do"]),
        (3, 3),
        "8900-byte pings through VXLAN"
    );
    // One that does not fit the tunnel's inner MTU is dropped and counted.
    let before = drops(&sw, "vx100", "egress_too_big");
    assert_eq!(
        ping(&ca, "10.0.0.2", &["-s", "8960", "-M", "do", "-c", "2"]).1,
        0
    );
    assert!(drops(&sw, "vx100", "egress_too_big") >= before + 2);

    // Learning from decapsulated frames: B's client behind B's VTEP.
    let b_mac = mac_of(&cb);
    let fdb = fdb_entries(&sw);
    let e = fdb
        .iter()
        .find(|e| e["mac"] == b_mac.as_str())
        .expect("B's MAC learned");
    assert_eq!(
        (e["port"].as_str(), e["dst"].as_str()),
        (Some("vx100"), Some(B_IP)),
        "{e}"
    );
    assert!(sw.ok(&["fdb", "show"]).contains(&format!("dst {B_IP}")));
    // And Linux learned A's client behind A's VTEP.
    let linux = sh(
        "ip",
        &[
            "netns", "exec", &u.b, "bridge", "fdb", "show", "dev", "vx100",
        ],
    );
    assert!(
        linux.contains(&format!("02:16:00:00:00:01 dst {A_IP}")),
        "Linux vxlan FDB: {linux}"
    );

    // TCP both ways, every byte checked (with TSO: super-frames cut into
    // segments and sent as UDP GSO).
    let n = 16 << 20;
    assert_eq!(tcp_transfer(&ca, &cb, "10.0.0.2", 5201, n), n, "A -> B");
    assert_eq!(tcp_transfer(&cb, &ca, "10.0.0.1", 5202, n), n, "B -> A");
}

#[test]
fn l2sw_and_open_vswitch_userspace_vxlan_carry_pings_and_tcp() {
    let mut u = Underlay::new(1500);
    // Host B's Open vSwitch runs inside B's namespace (its netdev ports,
    // taps and route table are B's), on a database of its own.
    let ovs = Ovs::start_in(Some(&u.b));
    let cb = u.client_b(1450);
    // OVS's userspace tunnels do not use the kernel's UDP stack: they route
    // and resolve the remote VTEP through a bridge of their own, so B's
    // underlay NIC goes on `brphy` and B's VTEP address on its internal port.
    let vb = u.b_dev();
    ip_in(&u.b, &["addr", "flush", "dev", &vb]);
    ovs.vsctl(&[
        "add-br",
        "brphy",
        "--",
        "set",
        "bridge",
        "brphy",
        "datapath_type=netdev",
        "--",
        "add-port",
        "brphy",
        &vb,
        "--",
        "add-br",
        "brint",
        "--",
        "set",
        "bridge",
        "brint",
        "datapath_type=netdev",
        "--",
        "add-port",
        "brint",
        "cbh",
        "--",
        "add-port",
        "brint",
        "vx",
        "--",
        "set",
        "interface",
        "vx",
        "type=vxlan",
    ]);
    ovs.vsctl(&[
        "set",
        "interface",
        "vx",
        &format!("options:remote_ip={A_IP}"),
        &format!("options:local_ip={B_IP}"),
        "options:key=100",
    ]);
    ip_in(
        &u.b,
        &["addr", "add", &format!("{B_IP}/24"), "dev", "brphy"],
    );
    ip_in(&u.b, &["link", "set", "brphy", "up"]);
    // The same on A's side: A's UDP socket leaves the outer UDP checksum
    // to a NIC the veth lacks, and OVS's tunnel pop checks it (a packet
    // with it unfinished is dropped as `datapath_drop_tunnel_pop_error` in
    // `ovs-appctl coverage/show`). On a real NIC the wire has it finished.
    sh(
        "ip",
        &[
            "netns",
            "exec",
            &u.a,
            "ethtool",
            "-K",
            &u.a_dev(),
            "tx",
            "off",
        ],
    );
    // The netdev datapath reads the client's frames with AF_PACKET and (no
    // userspace TSO here) sends them on with the checksum the client's
    // stack left to a NIC: the client must finish its own checksums.
    sh(
        "ip",
        &["netns", "exec", &cb, "ethtool", "-K", "eth0", "tx", "off"],
    );

    let mut sw = Switch::start("vxo");
    sw.ok(&[
        "port", "add", "vxlan", "vx100", "--vni", "100", "--local", A_IP, "--remote", B_IP,
        "--netns", &u.a,
    ]);
    let ca = sw.plug("cA", "10.0.0.1/24", "02:16:00:00:00:11", &["--mtu", "1450"]);
    // OVS opens its ports' sockets and resolves A's VTEP (ARP through
    // brphy) after vsctl returns: the first pings may be lost.
    assert!(
        eventually(Duration::from_secs(20), || ping(
            &ca,
            "10.0.0.2",
            &["-c", "1"]
        )
        .1 == 1),
        "no ping through OVS; its log:\n{}",
        ovs.log_tail("ovs-vswitchd")
    );
    assert_eq!(ping(&ca, "10.0.0.2", &[]), (3, 3), "ping across the tunnel");
    // Full-size inner frames (1450 bytes: 1500 on the underlay) cross whole.
    assert_eq!(
        ping(&ca, "10.0.0.2", &["-s", "1422", "-M", "do"]),
        (3, 3),
        "1450-byte frames through OVS's VXLAN"
    );

    // l2sw learned B's client from decapsulated frames, behind B's VTEP ...
    let b_mac = mac_of(&cb);
    let e = fdb_entries(&sw)
        .into_iter()
        .find(|e| e["mac"] == b_mac.as_str())
        .expect("B's MAC learned");
    assert_eq!(
        (e["port"].as_str(), e["dst"].as_str()),
        (Some("vx100"), Some(B_IP)),
        "{e}"
    );
    // ... and OVS learned A's client on its vxlan port.
    let ofport = ovs.vsctl(&["get", "interface", "vx", "ofport"]);
    let fdb = ovs.appctl(&["fdb/show", "brint"]);
    assert!(
        fdb.lines().any(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            c.len() >= 3 && c[0] == ofport.trim() && c[2] == "02:16:00:00:00:11"
        }),
        "OVS FDB (vx is port {ofport}): {fdb}"
    );

    // TCP both ways, every byte checked.
    let n = 8 << 20;
    assert_eq!(tcp_transfer(&ca, &cb, "10.0.0.2", 5211, n), n, "A -> B");
    assert_eq!(tcp_transfer(&cb, &ca, "10.0.0.1", 5212, n), n, "B -> A");
}

#[test]
fn two_l2sw_hosts_carry_tcp_and_static_remote_entries() {
    let u = Underlay::new(1500);
    let mut a = Switch::start("vxa");
    let mut b = Switch::start("vxb");
    a.ok(&[
        "port",
        "add",
        "vxlan",
        "vx7",
        "--vni",
        "7000",
        "--local",
        A_IP,
        "--remote",
        B_IP,
        "--netns",
        &u.a,
        "--learning",
        "off",
    ]);
    b.ok(&[
        "port", "add", "vxlan", "vx7", "--vni", "7000", "--local", B_IP, "--remote", A_IP,
        "--netns", &u.b,
    ]);
    // Clients at the tunnel's inner MTU (1500 - 50), as over a Linux vxlan.
    let ca = a.plug("cA", "10.0.7.1/24", "02:16:00:00:07:01", &["--mtu", "1450"]);
    let cb = b.plug("cB", "10.0.7.2/24", "02:16:00:00:07:02", &["--mtu", "1450"]);
    // A does not learn from the tunnel: B's MAC needs a static remote entry
    // (flooding still reaches B, so ARP works).
    a.ok(&["fdb", "add", "02:16:00:00:07:02", "vx7", "--dst", B_IP]);
    let e = a.fails(&["fdb", "add", "02:16:00:00:07:03", "vx7"]);
    assert!(e.contains("--dst"), "{e}");
    let e = a.fails(&["fdb", "add", "02:16:00:00:07:03", &ca, "--dst", B_IP]);
    assert!(e.contains("VXLAN ports only"), "{e}");

    assert_eq!(ping(&ca, "10.0.7.2", &[]), (3, 3));
    let fdb = fdb_entries(&a);
    let e = fdb
        .iter()
        .find(|e| e["mac"] == "02:16:00:00:07:02")
        .unwrap();
    assert_eq!(
        (e["type"].as_str(), e["dst"].as_str()),
        (Some("static"), Some(B_IP))
    );
    let fdb_b = fdb_entries(&b);
    let e = fdb_b
        .iter()
        .find(|e| e["mac"] == "02:16:00:00:07:01")
        .expect("B learned A's MAC");
    assert_eq!(e["dst"].as_str(), Some(A_IP));
    let n = 16 << 20;
    assert_eq!(tcp_transfer(&ca, &cb, "10.0.7.2", 5203, n), n, "A -> B");
    assert_eq!(tcp_transfer(&cb, &ca, "10.0.7.1", 5204, n), n, "B -> A");
}

#[test]
fn malformed_vxlan_is_dropped_under_its_reason() {
    let u = Underlay::new(1500);
    let mut sw = Switch::start("vxm");
    sw.ok(&[
        "port",
        "add",
        "vxlan",
        "vx5",
        "--vni",
        "5",
        "--local",
        A_IP,
        "--remote",
        B_IP,
        "--netns",
        &u.a,
        "--learning",
        "off",
    ]);
    let _ca = sw.plug("cA", "10.0.5.1/24", "02:16:00:00:05:01", &[]);
    // A third address in B, not on A's flood list.
    ip_in(&u.b, &["addr", "add", "10.201.0.3/24", "dev", &u.b_dev()]);
    let inner = {
        let mut f = vec![0xffu8; 6];
        f.extend_from_slice(&[0x02, 0x16, 0, 0, 5, 2, 0x88, 0xb5]);
        f.extend_from_slice(&[0u8; 46]);
        f
    };
    let packet = |flags: u8, vni: u32| {
        let v = vni.to_be_bytes();
        let mut p = vec![flags, 0, 0, 0, v[1], v[2], v[3], 0];
        p.extend_from_slice(&inner);
        p
    };
    let sends: Vec<(&str, Vec<u8>)> = vec![
        (B_IP, vec![0x08, 0, 0, 0, 0]),
        (B_IP, packet(0x00, 5)),
        (B_IP, packet(0x88, 5)),
        (B_IP, packet(0x08, 6)),
        ("10.201.0.3", packet(0x08, 5)),
        (B_IP, packet(0x08, 5)),
    ];
    netns::run_in(&u.b, move || {
        for (from, p) in sends {
            let s = UdpSocket::bind(format!("{from}:0")).unwrap();
            s.send_to(&p, format!("{A_IP}:4789")).unwrap();
        }
    })
    .unwrap();
    let want = [
        ("vxlan_short", 1),
        ("vxlan_bad_flags", 2),
        ("vxlan_unknown_vni", 1),
        ("vxlan_unknown_vtep", 1),
    ];
    assert!(
        eventually(Duration::from_secs(5), || want
            .iter()
            .all(|(r, n)| drops(&sw, "vx5", r) == *n)),
        "drops: {}",
        sw.json(&["stats"])["ports"]
    );
    // The good packet from the flood list's VTEP was switched (flooded to cA).
    let stats = sw.json(&["stats"]);
    let ca = stats["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] != "vx5")
        .unwrap();
    assert_eq!(ca["tx_frames"], 1, "{ca}");
    // The switch is still fine.
    assert!(sw.ok(&["status"]).contains("ports"));
}

#[test]
fn bad_vxlan_arguments_get_precise_errors() {
    let u = Underlay::new(1500);
    let sw = Switch::start("vxe");
    let cases: &[(&[&str], &str)] = &[
        (&["--vni", "16777216", "--local", A_IP], "out of range"),
        (&["--vni", "1", "--local", "239.1.1.1"], "unicast"),
        (
            &["--vni", "1", "--local", A_IP, "--remote", "239.1.1.1"],
            "multicast",
        ),
        (
            &["--vni", "1", "--local", "10.9.9.9"],
            "not an address of any interface",
        ),
        (&["--local", A_IP], "needs --vni"),
        (
            &["--vni", "1", "--local", A_IP, "--vlan", "4095"],
            "out of range",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["port", "add", "vxlan", "vxbad"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--netns", &u.a]);
        let e = sw.fails(&args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    sw.ok(&[
        "port", "add", "vxlan", "vx1", "--vni", "1", "--local", A_IP, "--netns", &u.a,
    ]);
    let e = sw.fails(&[
        "port", "add", "vxlan", "vx2", "--vni", "2", "--local", A_IP, "--netns", &u.a,
    ]);
    assert!(e.contains("already in use"), "{e}");
    let e = sw.fails(&["port", "add", "tap", "tapx", "--vni", "3"]);
    assert!(e.contains("VXLAN ports only"), "{e}");
}
