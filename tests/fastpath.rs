//! The kernel fast path end to end: real namespaces, real traffic through
//! veth ports. Entries appear for known unicast, the kernel's counters add
//! to user space's, changes take entries out before the command returns,
//! moves are followed at once, the kernel pushes and pops VLAN tags between
//! access and trunk ports, a capture, live trace or mirror puts only its
//! ports back in user space, and `kill -9` leaves no program behind.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use l2sw::wire::MacAddr;
use serde_json::Value;

const WAIT: Duration = Duration::from_millis(600);

fn entries(sw: &Switch) -> Vec<Value> {
    sw.json(&["fastpath", "show"]).as_array().unwrap().clone()
}

fn port_stats(sw: &Switch, port: &str) -> Value {
    let s = sw.json(&["stats"]);
    s["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port)
        .unwrap_or_else(|| panic!("no port {port} in {s}"))
        .clone()
}

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("no {k} in {v}"))
}

/// Frames of port `p` that user space received (the rest the kernel carried).
fn user_rx(sw: &Switch, p: &str) -> u64 {
    let s = port_stats(sw, p);
    n(&s, "rx_frames") - n(&s, "fastpath_rx_frames")
}

/// A two-namespace switch with the fast path on (the default) and both
/// directions' entries installed by a ping.
fn two(tag: &str) -> (Switch, String, String) {
    let mut sw = Switch::start(tag);
    let a = sw.plug("a", "10.31.0.1/24", "02:00:00:1f:00:01", &[]);
    let b = sw.plug("b", "10.31.0.2/24", "02:00:00:1f:00:02", &[]);
    assert_eq!(ping(&a, "10.31.0.2", &[]), (3, 3));
    assert!(
        eventually(Duration::from_secs(2), || entries(&sw).len() == 2),
        "both directions offloaded: {:?}",
        entries(&sw)
    );
    (sw, a, b)
}

#[test]
fn known_unicast_moves_to_the_kernel_and_the_counters_add_up() {
    let (sw, a, b) = two("fpon");
    let st = sw.json(&["status"]);
    assert_eq!(st["fastpath"]["enabled"], true, "{st}");
    assert_eq!(st["fastpath"]["ports"], 2, "{st}");
    let rows = entries(&sw);
    let ab = rows
        .iter()
        .find(|r| r["ingress"] == a.as_str() && r["egress"] == b.as_str())
        .expect("a -> b entry");
    assert_eq!(ab["src"], "02:00:00:1f:00:01");
    assert_eq!(ab["dst"], "02:00:00:1f:00:02");
    assert_eq!(
        ab["redirect"], "peer",
        "namespace veths take bpf_redirect_peer"
    );

    let (user_a, user_b) = (user_rx(&sw, &a), user_rx(&sw, &b));
    let fast_before = n(&port_stats(&sw, &a), "fastpath_rx_frames");
    assert_eq!(ping(&a, "10.31.0.2", &["-c", "20", "-i", "0.01"]), (20, 20));
    let sa = port_stats(&sw, &a);
    let sb = port_stats(&sw, &b);
    assert!(
        n(&sa, "fastpath_rx_frames") >= fast_before + 20,
        "the kernel carried the requests: {sa}"
    );
    assert!(n(&sb, "fastpath_tx_frames") >= 20, "{sb}");
    assert!(n(&sb, "fastpath_rx_frames") >= 20, "and the replies: {sb}");
    // Multicast neighbour chatter may still come to user space; the pings
    // do not.
    assert!(user_rx(&sw, &a) <= user_a + 2, "{sa}");
    assert!(user_rx(&sw, &b) <= user_b + 2, "{sb}");
    // Every frame counted once: rx on a = tx on b (nothing else flowed).
    assert_eq!(n(&sa, "fastpath_rx_frames"), n(&sb, "fastpath_tx_frames"));
    let hits: u64 = entries(&sw).iter().map(|r| n(r, "packets")).sum();
    assert_eq!(
        hits,
        n(&sa, "fastpath_rx_frames") + n(&sb, "fastpath_rx_frames")
    );

    let trace = sw.ok(&[
        "trace",
        "--in",
        &a,
        "--src",
        "02:00:00:1f:00:01",
        "--dst",
        "02:00:00:1f:00:02",
    ]);
    assert!(trace.contains("fast path"), "{trace}");
}

#[test]
fn changes_take_entries_out_before_returning() {
    let (mut sw, a, _b) = two("fpchg");
    let again = |sw: &Switch| {
        assert_eq!(ping(&a, "10.31.0.2", &["-c", "2", "-i", "0.05"]), (2, 2));
        assert!(
            eventually(Duration::from_secs(2), || entries(sw).len() == 2),
            "offloaded again: {:?}",
            entries(sw)
        );
    };
    sw.ok(&["fdb", "flush"]);
    assert_eq!(entries(&sw), Vec::<Value>::new(), "fdb flush");
    again(&sw);
    sw.ok(&["port", "set", &a, "--isolated", "on"]);
    assert_eq!(entries(&sw), Vec::<Value>::new(), "policy change");
    again(&sw);
    sw.ok(&["fdb", "del", "02:00:00:1f:00:02"]);
    assert_eq!(entries(&sw), Vec::<Value>::new(), "fdb del");
    again(&sw);
    sw.ok(&["set", "ageing-time", "100"]);
    assert_eq!(entries(&sw), Vec::<Value>::new(), "settings change");
    again(&sw);
    let c = sw.plug("c", "10.31.0.3/24", "02:00:00:1f:00:03", &[]);
    assert_eq!(entries(&sw), Vec::<Value>::new(), "port added");
    assert_eq!(ping(&a, "10.31.0.3", &["-c", "2", "-i", "0.05"]), (2, 2));
    assert!(eventually(Duration::from_secs(2), || entries(&sw)
        .iter()
        .any(|r| r["egress"] == c.as_str())));
    sw.ok(&["ns", "unplug", &c]);
    assert!(
        entries(&sw)
            .iter()
            .all(|r| r["egress"] != c.as_str() && r["ingress"] != c.as_str()),
        "port removal: {:?}",
        entries(&sw)
    );
}

#[test]
fn a_moved_source_is_followed_at_once() {
    let (mut sw, a, b) = two("fpmove");
    let c = sw.plug("c", "10.31.0.3/24", "02:00:00:1f:00:03", &[]);
    let (mut ea, mut eb, mut ec) = (
        Endpoint::open(&a, "eth0"),
        Endpoint::open(&b, "eth0"),
        Endpoint::open(&c, "eth0"),
    );
    // A station only these raw frames use (no namespace stack moves it
    // back), talking with b's real MAC.
    let x = mac("02:aa:00:00:1f:0a");
    let b_mac = mac("02:00:00:1f:00:02");
    let towards_x = |sw: &Switch| {
        entries(sw)
            .iter()
            .filter(|r| r["dst"] == "02:aa:00:00:1f:0a")
            .map(|r| r["egress"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    for i in 0..3u8 {
        ea.send(&test_frame(b_mac, x, &[b'x', b'b', i], 80));
        assert_eq!(eb.collect(&[b'x', b'b', i], WAIT).len(), 1);
        eb.send(&test_frame(x, b_mac, &[b'b', b'x', i], 80));
        assert_eq!(ea.collect(&[b'b', b'x', i], WAIT).len(), 1);
    }
    assert_eq!(towards_x(&sw), vec![a.clone()], "b -> x carried to a");
    // x now speaks from c.
    ec.send(&test_frame(b_mac, x, b"moved", 80));
    assert_eq!(eb.collect(b"moved", WAIT).len(), 1);
    let fdb = sw.json(&["fdb", "show"]);
    let on = fdb
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["mac"] == "02:aa:00:00:1f:0a")
        .map(|e| e["port"].clone());
    assert_eq!(on, Some(Value::from(c.as_str())), "{fdb}");
    assert!(
        towards_x(&sw).is_empty(),
        "no entry still sends to the old port: {:?}",
        entries(&sw)
    );
    // b -> x has the key of the old b -> x entry: it must reach c.
    ea.drain();
    eb.send(&test_frame(x, b_mac, b"follow", 80));
    assert_eq!(ec.collect(b"follow", WAIT).len(), 1, "to the new port");
    assert_eq!(ea.collect(b"follow", WAIT).len(), 0, "not to the old one");
}

#[test]
fn a_capture_puts_the_port_back_in_user_space_and_sees_every_frame() {
    let (sw, a, b) = two("fpcap");
    let file = sw.run_dir.join("fp.pcapng");
    let mut cap = Command::new(BIN)
        .args(["--name", &sw.name, "--run-dir"])
        .arg(&sw.run_dir)
        .args(["capture", "--port", &b, "--filter", "ip", "-c", "10", "-w"])
        .arg(&file)
        .spawn()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(3), || entries(&sw).is_empty()),
        "the capture took the entries out: {:?}",
        entries(&sw)
    );
    let user_b = user_rx(&sw, &b);
    assert_eq!(ping(&a, "10.31.0.2", &["-c", "5", "-i", "0.05"]), (5, 5));
    assert!(
        eventually(Duration::from_secs(5), || cap.try_wait().unwrap().is_some()),
        "capture saw 10 frames (5 requests out of b, 5 replies into b)"
    );
    assert!(cap.wait().unwrap().success());
    assert!(user_rx(&sw, &b) >= user_b + 5, "replies through user space");
    // The capture is over: the kernel takes the flows again.
    assert_eq!(ping(&a, "10.31.0.2", &["-c", "2", "-i", "0.05"]), (2, 2));
    assert!(
        eventually(Duration::from_secs(3), || entries(&sw).len() == 2),
        "offload resumed: {:?}",
        entries(&sw)
    );
}

/// BPF program ids the process holds (fdinfo of its bpf descriptors).
fn prog_ids(pid: u32) -> Vec<String> {
    let mut ids = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .flatten()
    {
        if let Ok(text) = std::fs::read_to_string(e.path()) {
            for l in text.lines() {
                if let Some(id) = l.strip_prefix("prog_id:") {
                    ids.push(id.trim().to_string());
                }
            }
        }
    }
    ids.sort();
    ids.dedup();
    ids
}

#[test]
fn kill_9_leaves_no_program_behind() {
    let (mut sw, _a, _b) = two("fpkill");
    let ids = prog_ids(sw.pid());
    assert!(ids.len() >= 2, "decide and carry loaded: {ids:?}");
    Command::new("kill")
        .args(["-9", &sw.pid().to_string()])
        .status()
        .unwrap();
    assert!(!sw.stop(), "killed, not stopped");
    // The kernel frees programs (and with them the maps and tcx links) once
    // the last descriptor is gone, which may take an RCU grace period.
    let gone = |id: &String| {
        !Command::new("bpftool")
            .args(["prog", "show", "id", id])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    assert!(
        eventually(Duration::from_secs(5), || ids.iter().all(gone)),
        "programs {ids:?} still loaded after kill -9"
    );
}

#[test]
fn fastpath_off_keeps_every_frame_in_user_space() {
    let mut sw = Switch::start_with("fpoff", &["--fastpath", "off"]);
    let a = sw.plug("a", "10.32.0.1/24", "02:00:00:20:00:01", &[]);
    let _b = sw.plug("b", "10.32.0.2/24", "02:00:00:20:00:02", &[]);
    assert_eq!(ping(&a, "10.32.0.2", &["-c", "5", "-i", "0.05"]), (5, 5));
    assert_eq!(entries(&sw), Vec::<Value>::new());
    let st = sw.json(&["status"]);
    assert_eq!(st["fastpath"]["enabled"], false, "{st}");
    assert!(sw.ok(&["status"]).contains("fast path off"));
    assert_eq!(n(&port_stats(&sw, &a), "fastpath_rx_frames"), 0);
}

/// `test_frame` with an 802.1Q tag of `vid` (PCP 0) after the MACs.
fn tagged(dst: MacAddr, src: MacAddr, vid: u16, marker: &[u8]) -> Vec<u8> {
    let mut f = test_frame(dst, src, marker, 60);
    f.splice(12..12, [0x81, 0x00, (vid >> 8) as u8, vid as u8]);
    f
}

/// Frames carrying `marker`, tagged or not.
fn has(marker: &'static [u8]) -> impl Fn(&[u8]) -> bool {
    move |f: &[u8]| f.windows(marker.len()).any(|w| w == marker)
}

fn row<'a>(rows: &'a [Value], ingress: &str, egress: &str) -> Option<&'a Value> {
    rows.iter()
        .find(|r| r["ingress"] == ingress && r["egress"] == egress)
}

#[test]
fn the_kernel_pushes_and_pops_tags_between_access_and_trunk_ports() {
    let mut sw = Switch::start("fpvlan");
    let a = sw.plug("a", "10.33.0.1/24", "02:00:00:21:00:01", &[]);
    let d = sw.plug("d", "10.33.0.4/24", "02:00:00:21:00:04", &[]);
    sw.ok(&["port", "vlan", &a, "--mode", "access", "--tag", "10"]);
    sw.ok(&["port", "vlan", &d, "--mode", "trunk", "--trunks", "10,20"]);
    let (mut ea, mut ed) = (Endpoint::open(&a, "eth0"), Endpoint::open(&d, "eth0"));
    // Stations only these raw frames use: x behind the access port, y behind
    // the trunk in VLAN 10 (the trunk's namespace has no 802.1Q device; it
    // reads the tags raw).
    let (x, y) = (mac("02:aa:00:00:21:0a"), mac("02:aa:00:00:21:0d"));
    ea.send(&test_frame(y, x, b"learn-x", 60));
    assert_eq!(
        ed.collect_where(has(b"learn-x"), WAIT),
        vec![tagged(y, x, 10, b"learn-x")],
        "flooded, tagged on the trunk"
    );
    ed.send(&tagged(x, y, 10, b"learn-y"));
    assert_eq!(
        ea.collect_where(has(b"learn-y"), WAIT),
        vec![test_frame(x, y, b"learn-y", 60)],
        "known unicast, untagged on the access port"
    );
    ea.send(&test_frame(y, x, b"known-x", 60));
    assert_eq!(ed.collect_where(has(b"known-x"), WAIT).len(), 1);
    assert!(
        eventually(Duration::from_secs(2), || entries(&sw).len() == 2),
        "both directions offloaded with their VLAN edit: {:?}",
        entries(&sw)
    );

    let (user_a, user_d) = (user_rx(&sw, &a), user_rx(&sw, &d));
    for _ in 0..10 {
        ea.send(&test_frame(y, x, b"push", 60));
        ed.send(&tagged(x, y, 10, b"pop_"));
    }
    assert_eq!(
        ed.collect_where(has(b"push"), WAIT),
        vec![tagged(y, x, 10, b"push"); 10],
        "the kernel pushed VLAN 10"
    );
    assert_eq!(
        ea.collect_where(has(b"pop_"), WAIT),
        vec![test_frame(x, y, b"pop_", 60); 10],
        "the kernel popped the tag"
    );
    assert!(user_rx(&sw, &a) < user_a + 10, "not through user space");
    assert!(user_rx(&sw, &d) < user_d + 10, "not through user space");

    let rows = entries(&sw);
    let push = row(&rows, &a, &d).expect("a -> d entry");
    assert_eq!(push["vlan"], Value::Null, "{push}");
    assert_eq!(push["vlan_edit"], "push", "{push}");
    assert_eq!(push["egress_vlan"], 10, "{push}");
    assert!(n(push, "packets") >= 10, "{push}");
    let pop = row(&rows, &d, &a).expect("d -> a entry");
    assert_eq!(pop["vlan"], 10, "{pop}");
    assert_eq!(pop["vlan_edit"], "pop", "{pop}");
    assert!(n(pop, "packets") >= 10, "{pop}");
    let text = sw.ok(&["fastpath", "show"]);
    assert!(text.contains("push 10") && text.contains("pop"), "{text}");

    // Bytes as user space would count them: a tag on the wire is 4 bytes
    // the kernel's skb->len leaves out.
    let (sa, sd) = (port_stats(&sw, &a), port_stats(&sw, &d));
    assert_eq!(n(&sa, "fastpath_rx_bytes"), 60 * n(push, "packets"), "{sa}");
    assert_eq!(n(&sd, "fastpath_tx_bytes"), 64 * n(push, "packets"), "{sd}");
    assert_eq!(n(&sd, "fastpath_rx_bytes"), 64 * n(pop, "packets"), "{sd}");
    assert_eq!(n(&sa, "fastpath_tx_bytes"), 60 * n(pop, "packets"), "{sa}");

    // Another VLAN on the trunk is another key: it is not carried to a.
    ed.send(&tagged(x, y, 20, b"v20"));
    assert!(ea.collect_where(has(b"v20"), WAIT).is_empty());
}

#[test]
fn a_mirror_keeps_only_its_ports_in_user_space() {
    let mut sw = Switch::start("fpmir");
    let a = sw.plug("a", "10.34.0.1/24", "02:00:00:22:00:01", &[]);
    let b = sw.plug("b", "10.34.0.2/24", "02:00:00:22:00:02", &[]);
    let c = sw.plug("c", "10.34.0.3/24", "02:00:00:22:00:03", &[]);
    let m = sw.plug("m", "10.34.0.4/24", "02:00:00:22:00:04", &[]);
    sw.ok(&["mirror", "add", "span", "--to", &m, "--src", &c]);
    assert_eq!(ping(&a, "10.34.0.2", &[]), (3, 3));
    assert_eq!(ping(&a, "10.34.0.3", &[]), (3, 3));
    assert!(
        eventually(Duration::from_secs(2), || entries(&sw).len() == 2),
        "a <-> b offloaded beside the mirror: {:?}",
        entries(&sw)
    );
    let rows = entries(&sw);
    assert!(row(&rows, &a, &b).is_some() && row(&rows, &b, &a).is_some());
    assert!(
        rows.iter()
            .all(|r| r["ingress"] != c.as_str() && r["egress"] != c.as_str()),
        "the mirrored port stays in user space: {rows:?}"
    );
    let trace = sw.ok(&[
        "trace",
        "--in",
        &a,
        "--src",
        "02:00:00:22:00:01",
        "--dst",
        "02:00:00:22:00:03",
    ]);
    assert!(trace.contains("mirror span covers the port"), "{trace}");
    // Every frame c received reached the mirror's output (the replies c
    // sent to a are c's received frames: they come out of m).
    assert!(n(&port_stats(&sw, &m), "tx_frames") >= 3);

    sw.ok(&["mirror", "del", "span"]);
    assert_eq!(ping(&a, "10.34.0.3", &["-c", "2", "-i", "0.05"]), (2, 2));
    assert!(
        eventually(Duration::from_secs(2), || row(&entries(&sw), &a, &c)
            .is_some()
            && row(&entries(&sw), &c, &a).is_some()),
        "without the mirror c is offloaded too: {:?}",
        entries(&sw)
    );
}

#[test]
fn a_live_trace_says_user_space_and_no_frame_is_lost_or_counted_twice() {
    let (sw, a, b) = two("fplive");
    let (mut ea, mut eb) = (Endpoint::open(&a, "eth0"), Endpoint::open(&b, "eth0"));
    // The namespaces' own MACs: these frames hit the entries the ping made.
    let (ma, mb) = (mac("02:00:00:1f:00:01"), mac("02:00:00:1f:00:02"));
    let totals = |sw: &Switch| {
        (
            n(&port_stats(sw, &a), "rx_frames"),
            n(&port_stats(sw, &b), "tx_frames"),
        )
    };
    let (rx0, tx0) = totals(&sw);
    let fast0 = n(&port_stats(&sw, &a), "fastpath_rx_frames");
    let burst = |ea: &mut Endpoint, eb: &mut Endpoint, marker: &'static [u8]| {
        for _ in 0..20 {
            ea.send(&test_frame(mb, ma, marker, 60));
        }
        assert_eq!(eb.collect(marker, WAIT).len(), 20, "{marker:?}");
    };
    burst(&mut ea, &mut eb, b"before");
    assert!(n(&port_stats(&sw, &a), "fastpath_rx_frames") >= fast0 + 20);

    let mut live = Command::new(BIN)
        .args(["--name", &sw.name, "--run-dir"])
        .arg(&sw.run_dir)
        .args(["trace", "--live", "--json", "-c", "20", "--filter"])
        .arg(format!("ethertype {TEST_ETHERTYPE:#06x}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(3), || entries(&sw).is_empty()),
        "the live trace took the entries out: {:?}",
        entries(&sw)
    );
    let (user_a, fast_a) = (
        user_rx(&sw, &a),
        n(&port_stats(&sw, &a), "fastpath_rx_frames"),
    );
    burst(&mut ea, &mut eb, b"traced");
    let lines: Vec<Value> = BufReader::new(live.stdout.take().unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).expect("a JSON trace"))
        .collect();
    assert!(live.wait().unwrap().success());
    assert_eq!(lines.len(), 20);
    for t in &lines {
        let path = t["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == "path")
            .unwrap_or_else(|| panic!("a path line: {t}"));
        assert_eq!(
            path["result"],
            format!("user space (port {a} observed by live trace; offload resumes when it ends)"),
            "{t}"
        );
    }
    assert!(
        user_rx(&sw, &a) >= user_a + 20,
        "traced frames in user space"
    );
    assert_eq!(n(&port_stats(&sw, &a), "fastpath_rx_frames"), fast_a);

    // The trace is over: the kernel takes the flow again.
    burst(&mut ea, &mut eb, b"after");
    assert!(
        eventually(Duration::from_secs(2), || row(&entries(&sw), &a, &b)
            .is_some()),
        "offload resumed: {:?}",
        entries(&sw)
    );
    burst(&mut ea, &mut eb, b"again");
    assert!(n(&port_stats(&sw, &a), "fastpath_rx_frames") >= fast_a + 20);
    // 80 frames crossed a -> b, by either path: each counted once (the
    // namespaces' own chatter may add a few).
    let (rx1, tx1) = totals(&sw);
    assert!((80..=86).contains(&(rx1 - rx0)), "rx on a: {}", rx1 - rx0);
    assert!((80..=86).contains(&(tx1 - tx0)), "tx on b: {}", tx1 - tx0);
}
