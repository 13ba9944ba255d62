//! Loop and storm protection with real namespaces: two switch ports joined
//! by a veth pair (a real loop) storm without protection and are cut with
//! `--loop-protect block`; storm control limits a broadcast flood and
//! leaves unicast alone; BPDU guard blocks a port an STP BPDU arrives on.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// `l2sw monitor --json` of a switch, read on a thread; killed on drop.
struct Monitor {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl Monitor {
    fn start(sw: &Switch) -> Monitor {
        let mut child = Command::new(BIN)
            .args(["--name", &sw.name, "--run-dir"])
            .arg(&sw.run_dir)
            .args(["monitor", "--json"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start l2sw monitor");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    l.lock().unwrap().push(v);
                }
            }
        });
        let m = Monitor { child, lines };
        // Subscribed once a flush shows up.
        assert!(
            eventually(Duration::from_secs(15), || {
                sw.ok(&["fdb", "flush"]);
                m.find(|v| v["event"] == "flushed").is_some()
            }),
            "the monitor shows nothing"
        );
        m
    }

    fn find(&self, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        self.lines.lock().unwrap().iter().find(|v| pred(v)).cloned()
    }

    fn wait(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let mut found = None;
        let ok = eventually(Duration::from_secs(15), || {
            found = self.find(&pred);
            found.is_some()
        });
        assert!(
            ok,
            "monitor never showed {what}: {:?}",
            self.lines.lock().unwrap()
        );
        found.unwrap()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A veth pair in the test's namespace whose two ends become switch ports:
/// whatever the switch sends out of one comes back in through the other.
fn add_loop(sw: &mut Switch) -> (String, String) {
    let (a, b) = (unique("lpa"), unique("lpb"));
    sw.own_link(&a);
    let st = Command::new("ip")
        .args(["link", "add", &a, "type", "veth", "peer", "name", &b])
        .status()
        .unwrap();
    assert!(st.success(), "cannot create veth pair {a} <-> {b}");
    for l in [&a, &b] {
        let _ = l2sw::netns::disable_ipv6(l);
        assert!(Command::new("ip")
            .args(["link", "set", l, "up"])
            .status()
            .unwrap()
            .success());
    }
    sw.ok(&["port", "add", "iface", &a]);
    sw.ok(&["port", "add", "iface", &b]);
    (a, b)
}

fn port_rx(sw: &Switch, port: &str) -> u64 {
    let s = sw.json(&["stats"]);
    s["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port)
        .map(|p| p["rx_frames"].as_u64().unwrap())
        .unwrap_or(0)
}

fn port_drops(sw: &Switch, port: &str, reason: &str) -> u64 {
    let s = sw.json(&["stats"]);
    s["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port)
        .map(|p| p["drops"][reason].as_u64().unwrap())
        .unwrap_or(0)
}

/// The names of the blocked ports, from `port list --json`.
fn blocked(sw: &Switch) -> Vec<(String, Value)> {
    sw.json(&["port", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["blocked"].is_null())
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["blocked"].clone(),
            )
        })
        .collect()
}

#[test]
fn a_real_loop_storms_without_protection() {
    let mut sw = Switch::start_logged("lo", &["--loop-protect", "report"]);
    let red = sw.plug("r", "10.71.0.1/24", "02:00:00:71:00:01", &[]);
    let (a, b) = add_loop(&mut sw);
    let station = mac("02:00:00:71:00:99");
    let mut er = Endpoint::open(&red, "eth0");
    // One broadcast: the loop carries it round and round.
    er.send(&test_frame(mac("ff:ff:ff:ff:ff:ff"), station, b"storm", 64));
    let stormed = eventually(Duration::from_secs(10), || port_rx(&sw, &a) > 1000);
    // Stop the storm before anything else: the loop goes with port b.
    sw.ok(&["port", "del", &b]);
    assert!(
        stormed,
        "one broadcast into a loop did not come back 1000 times: rx on {a} = {}",
        port_rx(&sw, &a)
    );
    // Report mode saw the flapping MAC and blocked nothing.
    let st = sw.json(&["stats"]);
    assert!(st["protect"]["mac_flaps"].as_u64().unwrap() > 0, "{st}");
    assert!(blocked(&sw).is_empty());
    assert!(
        sw.log()
            .contains(&format!("MAC {station} vlan 0 is flapping")),
        "{}",
        sw.log()
    );
}

#[test]
fn loop_protect_block_cuts_a_real_loop_and_the_other_ports_keep_forwarding() {
    let mut sw = Switch::start_logged("lb", &["--loop-protect", "block", "--loop-hold", "0"]);
    let red = sw.plug("r", "10.72.0.1/24", "02:00:00:72:00:01", &[]);
    let blue = sw.plug("b", "10.72.0.2/24", "02:00:00:72:00:02", &[]);
    let mon = Monitor::start(&sw);
    let (a, b) = add_loop(&mut sw);
    let station = mac("02:00:00:72:00:99");
    let mut er = Endpoint::open(&red, "eth0");
    er.send(&test_frame(mac("ff:ff:ff:ff:ff:ff"), station, b"storm", 64));
    // Detected and cut; generous deadline, no timing claim.
    let cut = eventually(Duration::from_secs(10), || !blocked(&sw).is_empty());
    if !cut {
        sw.ok(&["port", "del", &b]);
        panic!("the loop was not blocked; log:\n{}", sw.log());
    }
    let bl = blocked(&sw);
    assert_eq!(bl.len(), 1, "{bl:?}");
    let (port, row) = &bl[0];
    assert!(port == &a || port == &b, "blocked {port}, not a loop port");
    assert_eq!(row["reason"], "loop");
    // The test's broadcast loops, and so can whatever red's own stack
    // multicasts meanwhile (IPv6 DAD, MLD): either MAC may flap first.
    let looped = [station.to_string(), "02:00:00:72:00:01".to_string()];
    let flapped = row["mac"].as_str().unwrap_or_default().to_string();
    assert!(looped.contains(&flapped), "blocked for {flapped}: {row}");
    let other = if port == &a { &b } else { &a };
    assert_eq!(row["from"], other.as_str());
    // monitor names the ports: the flap (from -> to) and the block.
    let flap = mon.wait("mac_flap", |v| v["event"] == "mac_flap");
    assert!(looped.iter().any(|m| flap["mac"] == m.as_str()), "{flap}");
    assert_eq!(flap["to"], port.as_str());
    let ev = mon.wait("port_blocked", |v| v["event"] == "port_blocked");
    assert_eq!(ev["port"], port.as_str());
    assert_eq!(ev["reason"], "loop");
    assert!(ev["hold_s"].is_null(), "{ev}");
    // The storm is over: the loop ports' counters stop climbing.
    let settled = eventually(Duration::from_secs(10), || {
        let before = port_rx(&sw, other);
        std::thread::sleep(Duration::from_millis(300));
        port_rx(&sw, other) == before
    });
    assert!(settled, "the storm goes on after the block");
    // The other ports forward as before.
    let (sent, got) = ping(&red, "10.72.0.2", &[]);
    assert_eq!((sent, got), (3, 3), "ping red -> blue across the switch");
    // Blocked state in text and status too.
    let list = sw.ok(&["port", "list"]);
    assert!(
        list.contains("BLOCKED") && list.contains(&format!("{port}: loop")),
        "{list}"
    );
    let status = sw.ok(&["status"]);
    assert!(
        status.contains(&format!("BLOCKED ports: {port}")),
        "{status}"
    );
    assert!(port_drops(&sw, other, "port_blocked") + port_drops(&sw, port, "port_blocked") > 0);
    // Take the loop away, then unblock by hand.
    sw.ok(&["port", "del", other]);
    sw.ok(&["port", "unblock", port]);
    mon.wait("port_unblocked", |v| {
        v["event"] == "port_unblocked" && v["port"] == port.as_str() && v["by"] == "operator"
    });
    assert!(blocked(&sw).is_empty());
    let _ = blue;
}

#[test]
fn storm_control_limits_a_broadcast_flood_and_leaves_unicast_alone() {
    let mut sw = Switch::start("sc");
    let red = sw.plug("r", "10.73.0.1/24", "02:00:00:73:00:01", &[]);
    let blue = sw.plug("b", "10.73.0.2/24", "02:00:00:73:00:02", &[]);
    sw.ok(&["port", "set", &red, "--storm-bcast", "20"]);
    let p = sw.json(&["port", "list"]);
    let pol = &p
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == red.as_str())
        .unwrap()["policy"];
    assert_eq!(pol["storm_bcast"], 20);
    assert!(sw.ok(&["port", "list"]).contains("storm-bcast=20pps"));
    let (rs, bs) = (mac("02:00:00:73:00:11"), mac("02:00:00:73:00:12"));
    let mut er = Endpoint::open(&red, "eth0");
    let mut eb = Endpoint::open(&blue, "eth0");
    for _ in 0..300 {
        er.send(&test_frame(mac("ff:ff:ff:ff:ff:ff"), rs, b"bcast", 64));
    }
    let got = eb.collect(b"bcast", Duration::from_secs(1)).len();
    assert!(got < 300, "all 300 broadcasts passed a limit of 20/s");
    assert!(got > 0, "not even the burst passed");
    let dropped = port_drops(&sw, &red, "storm_broadcast");
    assert_eq!(
        dropped as usize + got,
        300,
        "dropped {dropped}, received {got}"
    );
    // Known unicast is not limited.
    eb.send(&test_frame(rs, bs, b"learn", 64));
    er.collect(b"learn", Duration::from_millis(500));
    for _ in 0..50 {
        er.send(&test_frame(bs, rs, b"ucast", 64));
    }
    let got = eb.collect(b"ucast", Duration::from_secs(1)).len();
    assert_eq!(got, 50);
    assert_eq!(port_drops(&sw, &red, "storm_broadcast"), dropped);
    let st = sw.json(&["stats"]);
    let r = st["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == red.as_str())
        .unwrap();
    // Decided in user space, or carried by the kernel's fast path.
    let unicast =
        r["decisions"]["unicast"].as_u64().unwrap() + r["fastpath_rx_frames"].as_u64().unwrap();
    assert!(unicast >= 50, "{r}");
    // `off` lifts the limit.
    sw.ok(&["port", "set", &red, "--storm-bcast", "off"]);
    for _ in 0..50 {
        er.send(&test_frame(mac("ff:ff:ff:ff:ff:ff"), rs, b"free", 64));
    }
    assert_eq!(eb.collect(b"free", Duration::from_secs(1)).len(), 50);
}

/// A configuration BPDU from `src`: 802.3 length, LLC 42 42 03, then the
/// BPDU body (protocol 0, version 0, type 0, ...).
fn bpdu(src: l2sw::wire::MacAddr) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    l2sw::wire::write_header(&mut f, mac("01:80:c2:00:00:00"), src, 38).unwrap();
    f[14..17].copy_from_slice(&[0x42, 0x42, 0x03]);
    f
}

#[test]
fn bpdu_guard_blocks_an_edge_port_that_hears_a_bridge() {
    let mut sw = Switch::start("bg");
    let red = sw.plug("r", "10.74.0.1/24", "02:00:00:74:00:01", &[]);
    let blue = sw.plug("b", "10.74.0.2/24", "02:00:00:74:00:02", &[]);
    let mon = Monitor::start(&sw);
    sw.ok(&["port", "set", &red, "--bpdu-guard", "on"]);
    let (sent, got) = ping(&red, "10.74.0.2", &[]);
    assert_eq!((sent, got), (3, 3));
    // A BPDU on an unguarded port passes (STP off: the switch is transparent).
    let mut eb = Endpoint::open(&blue, "eth0");
    eb.send(&bpdu(mac("02:00:00:74:00:22")));
    let mut er = Endpoint::open(&red, "eth0");
    er.send(&bpdu(mac("02:00:00:74:00:11")));
    let ev = mon.wait("port_blocked", |v| v["event"] == "port_blocked");
    assert_eq!(ev["port"], red.as_str());
    assert_eq!(ev["reason"], "bpdu_guard");
    let bl = blocked(&sw);
    assert_eq!(bl.len(), 1, "{bl:?}");
    assert_eq!(bl[0].0, red);
    assert_eq!(bl[0].1["reason"], "bpdu_guard");
    assert_eq!(port_drops(&sw, &red, "bpdu_guard"), 1);
    let st = sw.json(&["stats"]);
    assert_eq!(st["protect"]["bpdu_guard_blocks"], 1);
    assert!(sw.ok(&["show"]).contains("BLOCKED: bpdu_guard"));
    // Blocked: nothing crosses (hold 30 s by default, far longer than this).
    let (_, got) = ping(&red, "10.74.0.2", &["-c", "2", "-W", "1"]);
    assert_eq!(got, 0, "a blocked port forwarded");
    assert!(port_drops(&sw, &red, "port_blocked") > 0);
    sw.ok(&["port", "unblock", &red]);
    assert!(blocked(&sw).is_empty());
    let (sent, got) = ping(&red, "10.74.0.2", &[]);
    assert_eq!((sent, got), (3, 3), "unblocked, the port forwards again");
    let e = sw.fails(&["port", "unblock", "ghost"]);
    assert!(e.contains("no port named ghost"), "{e}");
}
