//! Link impairment end to end: real namespaces, real traffic, one test per
//! knob, with generous bounds (precision is the benchmark's business,
//! bench/impair). Needs root; fails (never skips) without it.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// `l2sw probe` from `from` to `to`, as JSON.
fn probe(from: &str, to: &str, count: u64, size: usize) -> Value {
    let (n, size) = (count.to_string(), size.to_string());
    let out = Command::new(BIN)
        .args(["probe", "--from", from, "--to", to, "--json", "--count", &n])
        .args(["--rate", "1000", "--size", &size])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn us(v: &Value, dir: &str, q: &str) -> f64 {
    v[dir][q]
        .as_f64()
        .unwrap_or_else(|| panic!("no {dir}.{q} in {v}"))
}

/// A switch with namespaces `a` and `b` plugged in on `10.47.<net>.0/24`.
fn pair(tag: &str, net: u8) -> (Switch, String, String) {
    let mut sw = Switch::start(tag);
    let a = sw.plug(
        "a",
        &format!("10.47.{net}.1/24"),
        &format!("02:00:00:2f:{net:02x}:01"),
        &[],
    );
    let b = sw.plug(
        "b",
        &format!("10.47.{net}.2/24"),
        &format!("02:00:00:2f:{net:02x}:02"),
        &[],
    );
    // Learn both MACs before measuring.
    let (_, got) = ping(&a, &format!("10.47.{net}.2"), &[]);
    assert!(got > 0, "no connectivity before impairing");
    (sw, a, b)
}

fn port_row(sw: &Switch, port: &str) -> Value {
    let list = sw.json(&["port", "list"]);
    list.as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port)
        .cloned()
        .unwrap_or_else(|| panic!("no port {port} in {list}"))
}

fn drops(sw: &Switch, port: &str, reason: &str) -> u64 {
    let s = sw.json(&["stats"]);
    s["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port)
        .map(|p| p["drops"][reason].as_u64().unwrap())
        .unwrap()
}

#[test]
fn delay_shows_in_the_one_way_delay_and_clear_restores_the_link() {
    let (sw, a, b) = pair("imd", 1);
    // Port b's egress carries a -> b: only the forward direction slows.
    sw.ok(&["port", "impair", &b, "--delay", "20ms", "--seed", "1"]);
    let row = port_row(&sw, &b);
    assert_eq!(row["impair"]["spec"]["delay"], "20ms", "{row}");
    assert_eq!(row["impair"]["seed"], 1);
    let text = sw.ok(&["port", "list"]);
    assert!(text.contains("delay 20ms"), "{text}");
    let v = probe(&a, &b, 300, 64);
    let fwd = us(&v, "one_way_fwd", "p50_us");
    let rev = us(&v, "one_way_rev", "p50_us");
    assert!(
        (19_500.0..40_000.0).contains(&fwd),
        "forward p50 {fwd} us: {v}"
    );
    assert!(rev < 10_000.0, "reverse p50 {rev} us: {v}");
    assert_eq!(v["lost"], 0, "{v}");

    sw.ok(&["port", "impair", &b, "--clear"]);
    assert!(port_row(&sw, &b).get("impair").is_none());
    let v = probe(&a, &b, 300, 64);
    let fwd = us(&v, "one_way_fwd", "p50_us");
    assert!(fwd < 10_000.0, "forward p50 {fwd} us after --clear: {v}");
    assert_eq!(v["lost"], 0, "{v}");
}

#[test]
fn ten_percent_loss_loses_five_to_fifteen_percent_and_counts_them() {
    let (sw, a, b) = pair("iml", 2);
    sw.ok(&["port", "impair", &b, "--loss", "10%"]);
    let v = probe(&a, &b, 2000, 64);
    let lost = v["lost_forward"].as_u64().unwrap();
    assert!((100..=300).contains(&lost), "lost {lost} of 2000: {v}");
    assert_eq!(v["lost_reverse"], 0, "{v}");
    // Every loss is counted under its reason on the impaired port (the
    // warm-up probe and ARP may add a few).
    let counted = drops(&sw, &b, "impair_loss");
    assert!(counted >= lost, "counted {counted}, probe lost {lost}");
    let st = &port_row(&sw, &b)["impair"]["egress"];
    assert_eq!(st["lost"].as_u64().unwrap(), counted, "{st}");
}

#[test]
fn duplicates_and_reorders_show_in_the_probe_counters() {
    let (sw, a, b) = pair("imr", 3);
    sw.ok(&[
        "port",
        "impair",
        &b,
        "--delay",
        "5ms",
        "--duplicate",
        "10%",
        "--reorder",
        "20%",
    ]);
    let v = probe(&a, &b, 1000, 64);
    let dups = v["duplicates"].as_u64().unwrap();
    let reordered = v["reordered"].as_u64().unwrap();
    assert!(dups >= 30, "duplicates {dups}: {v}");
    assert!(reordered >= 30, "reordered {reordered}: {v}");
    let s = sw.json(&["stats"]);
    let p = s["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == b.as_str())
        .unwrap()
        .clone();
    assert!(p["impair_duplicated"].as_u64().unwrap() >= dups, "{p}");
    assert!(p["impair_reordered"].as_u64().unwrap() >= 30, "{p}");
}

/// The receiver's UDP checksum error count (`/proc/net/snmp`, Udp InCsumErrors).
fn udp_csum_errors(ns: &str) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat", "/proc/net/snmp"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let udp: Vec<&str> = text.lines().filter(|l| l.starts_with("Udp:")).collect();
    let names: Vec<&str> = udp[0].split_whitespace().collect();
    let values: Vec<&str> = udp[1].split_whitespace().collect();
    let i = names.iter().position(|n| *n == "InCsumErrors").unwrap();
    values[i].parse().unwrap()
}

#[test]
fn corruption_is_seen_by_the_receivers_checksums() {
    let (sw, a, b) = pair("imc", 4);
    let before = udp_csum_errors(&b);
    sw.ok(&["port", "impair", &b, "--corrupt", "20%"]);
    // Large probes: most flipped bits land in the UDP payload.
    let v = probe(&a, &b, 1000, 1200);
    let errors = udp_csum_errors(&b) - before;
    let corrupted = port_row(&sw, &b)["impair"]["egress"]["corrupted"]
        .as_u64()
        .unwrap();
    assert!(corrupted >= 100, "corrupted {corrupted}");
    assert!(
        errors >= corrupted / 2,
        "receiver saw {errors} checksum errors for {corrupted} corrupted frames: {v}"
    );
}

/// An iperf3 server in `ns`, killed on drop.
struct Iperf(Child);

impl Drop for Iperf {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_50mbit_rate_holds_tcp_between_40_and_55_mbit() {
    let (sw, a, b) = pair("imt", 5);
    sw.ok(&["port", "impair", &b, "--rate", "50mbit"]);
    let port = 5201 + (std::process::id() % 1000) as u16;
    let _server = Iperf(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &b,
                "iperf3",
                "-s",
                "-1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("iperf3 (apt-get install iperf3)"),
    );
    std::thread::sleep(Duration::from_millis(500));
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &a,
            "iperf3",
            "-c",
            "10.47.5.2",
            "-t",
            "4",
            "-J",
        ])
        .args(["-p", &port.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mbit = j["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap()
        / 1e6;
    assert!(
        (40.0..55.0).contains(&mbit),
        "TCP at {mbit:.1} Mbit/s through a 50mbit port"
    );
}

#[test]
fn bad_values_get_precise_errors_and_change_nothing() {
    let (sw, _a, b) = pair("ime", 6);
    let e = sw.fails(&["port", "impair", &b, "--loss", "120%"]);
    assert!(
        e.contains("--loss 120%: a percentage must be between 0 and 100"),
        "{e}"
    );
    let e = sw.fails(&["port", "impair", &b, "--delay", "10"]);
    assert!(e.contains("--delay 10: give a unit"), "{e}");
    let e = sw.fails(&["port", "impair", &b, "--reorder", "5%"]);
    assert!(e.contains("needs a delay"), "{e}");
    let e = sw.fails(&["port", "impair", "nosuch", "--loss", "1%"]);
    assert!(e.contains("no port named nosuch"), "{e}");
    assert!(port_row(&sw, &b).get("impair").is_none());
    // A request that bypasses the CLI's checks is checked by the switch.
    let e = sw.fails(&["port", "impair", &b, "--jitter", "1ms"]);
    assert!(e.contains("jitter needs a delay"), "{e}");
}

/// Rows of `tshark -r FILE -T fields` for the given fields.
fn tshark_fields(file: &std::path::Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file).args(["-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("this test needs tshark: apt-get install tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// A reader process (`capture`, `trace --live`) ended with SIGINT on drop.
struct Reader(Child);

impl Reader {
    fn stop(mut self) -> std::process::Output {
        // SAFETY: signalling a child this test started, by its pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let child = std::mem::replace(&mut self.0, Command::new("true").spawn().unwrap());
        child.wait_with_output().unwrap()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn captures_and_live_traces_say_what_the_impairment_did_to_each_frame() {
    let (sw, a, b) = pair("imk", 7);
    sw.ok(&[
        "port",
        "impair",
        &b,
        "--delay",
        "20ms",
        "--loss",
        "25%",
        "--duplicate",
        "30%",
        "--corrupt",
        "30%",
        "--seed",
        "7",
    ]);
    let filter = format!("ethertype {TEST_ETHERTYPE:#06x}");
    let file = sw.run_dir.join("impair.pcapng");
    let cap = Reader(
        Command::new(BIN)
            .args(["--name", &sw.name, "--run-dir"])
            .arg(&sw.run_dir)
            .args(["capture", "--filter", &filter, "-w"])
            .arg(&file)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let frames = 60;
    let live = Command::new(BIN)
        .args(["--name", &sw.name, "--run-dir"])
        .arg(&sw.run_dir)
        .args(["trace", "--live", "--json", "-c", &frames.to_string()])
        .args(["--filter", &filter])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let mut ea = Endpoint::open(&a, "eth0");
    let dst = mac("02:00:00:2f:07:02");
    for i in 0..frames {
        let marker = format!("imk{i:03}");
        ea.send(&test_frame(
            dst,
            mac("02:aa:00:2f:07:01"),
            marker.as_bytes(),
            200,
        ));
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = live.wait_with_output().unwrap();
    // The last frames leave their queue 20 ms after they came.
    std::thread::sleep(Duration::from_millis(500));
    let cap_out = cap.stop();
    assert!(cap_out.status.success() || cap_out.status.code().is_none());

    // Live: the egress row of b says what the queue did with the frame.
    let text = String::from_utf8_lossy(&out.stdout);
    let ios: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("one JSON trace per line"))
        .filter_map(|v| {
            v["egress"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["port"] == b.as_str())
                .map(|e| e["io"].clone())
        })
        .collect();
    assert_eq!(ios.len(), frames, "{text}");
    let has = |f: &dyn Fn(&Value) -> bool| ios.iter().any(f);
    let impair = |io: &Value| io["impair"].as_str().unwrap_or("").to_string();
    assert!(
        has(&|io| io["dropped"] == "impair_loss"),
        "a lost frame: {ios:?}"
    );
    assert!(
        has(&|io| impair(io).starts_with("held 2") || impair(io).starts_with("held 19.")),
        "a frame held about 20 ms: {ios:?}"
    );
    assert!(has(&|io| impair(io).contains("duplicated")), "{ios:?}");
    assert!(has(&|io| impair(io).contains("corrupted")), "{ios:?}");

    // Capture: what left b carries the delay and the marks, and the id of
    // the frame's ingress record; losses are drop records.
    let rows = tshark_fields(
        &file,
        &[
            "frame.interface_name",
            "frame.packet_flags_direction",
            "frame.packet_id",
            "frame.comment",
        ],
    );
    let ingress_ids: Vec<&str> = rows
        .iter()
        .filter(|r| r[0] == a && r[1] == "0x00000001")
        .map(|r| r[2].as_str())
        .collect();
    let out_b: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| r[0] == b && r[1] == "0x00000002")
        .collect();
    assert!(!out_b.is_empty(), "{rows:?}");
    for r in &out_b {
        assert_ne!(r[2], "0", "impairment records carry the packet id: {r:?}");
        assert!(
            ingress_ids.contains(&r[2].as_str()),
            "egress record {r:?} has the id of an ingress record"
        );
    }
    let comment = |want: &str| out_b.iter().any(|r| r[3].contains(want));
    assert!(comment("impair: delayed "), "{rows:?}");
    assert!(comment("; duplicate"), "{rows:?}");
    assert!(comment("; corrupted (one bit flipped)"), "{rows:?}");
    assert!(comment("drop: impair_loss (not sent)"), "{rows:?}");
    // The delay in the comment is the one asked for.
    let delayed: Vec<f64> = out_b
        .iter()
        .filter_map(|r| r[3].split("impair: delayed ").nth(1))
        .filter_map(|s| s.split(' ').next()?.parse().ok())
        .collect();
    assert!(
        delayed.iter().all(|ms| (19.5..500.0).contains(ms)),
        "{delayed:?}"
    );
}

#[test]
fn ingress_impairment_marks_the_ingress_record_and_the_trace() {
    let (sw, a, _b) = pair("imi", 8);
    sw.ok(&[
        "port",
        "impair",
        &a,
        "--direction",
        "ingress",
        "--delay",
        "10ms",
    ]);
    let filter = format!("ethertype {TEST_ETHERTYPE:#06x}");
    let live = Command::new(BIN)
        .args(["--name", &sw.name, "--run-dir"])
        .arg(&sw.run_dir)
        .args(["trace", "--live", "-c", "1", "--filter", &filter])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let mut ea = Endpoint::open(&a, "eth0");
    ea.send(&test_frame(
        mac("02:00:00:2f:08:02"),
        mac("02:aa:00:2f:08:01"),
        b"imi",
        100,
    ));
    let out = live.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ingress impairment"), "{text}");
    assert!(text.contains("delayed 1"), "{text}");
}

/// Frames an ingress impairment drops never reach the switch's decision,
/// but a live trace still shows them, with the reason: here the queue's
/// limit (two frames, held 300 ms), then a loss.
#[test]
fn ingress_impairment_drops_show_in_live_trace_with_their_reason() {
    let (sw, a, _b) = pair("imj", 9);
    sw.ok(&[
        "port",
        "impair",
        &a,
        "--direction",
        "ingress",
        "--delay",
        "300ms",
        "--limit",
        "2",
    ]);
    let filter = format!("ethertype {TEST_ETHERTYPE:#06x}");
    let live = |count: usize| {
        Command::new(BIN)
            .args(["--name", &sw.name, "--run-dir"])
            .arg(&sw.run_dir)
            .args(["trace", "--live", "--json", "-c", &count.to_string()])
            .args(["--filter", &filter])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let traces = |out: std::process::Output| -> Vec<Value> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("one JSON trace per line"))
            .collect()
    };
    let send = |ea: &mut Endpoint, n: usize| {
        for i in 0..n {
            ea.send(&test_frame(
                mac("02:00:00:2f:09:02"),
                mac("02:aa:00:2f:09:01"),
                format!("imj{i}").as_bytes(),
                100,
            ));
        }
    };
    // Six frames at once: two are queued, four meet the limit. The drops'
    // traces come at once, the queued frames' only 300 ms later.
    let reader = live(4);
    std::thread::sleep(Duration::from_millis(700));
    let mut ea = Endpoint::open(&a, "eth0");
    send(&mut ea, 6);
    let got = traces(reader.wait_with_output().unwrap());
    assert_eq!(got.len(), 4, "{got:?}");
    for t in &got {
        assert_eq!(t["ingress"], a.as_str(), "{t}");
        assert_eq!(t["steps"][0]["step"], "ingress impairment", "{t}");
        assert_eq!(t["steps"][0]["result"], "dropped: impair_limit", "{t}");
        assert!(
            t["verdict"].as_str().unwrap().contains("impair_limit"),
            "{t}"
        );
        assert_eq!(t["egress"].as_array().map(Vec::len), Some(0), "{t}");
        assert!(t["id"].as_u64().is_some(), "{t}");
    }
    // Counted under the reason too (a stray frame of a's own stack in the
    // queue would make it more).
    let counted = drops(&sw, &a, "impair_limit");
    assert!(counted >= 4, "impair_limit on {a}: {counted}");
    let row = port_row(&sw, &a);
    assert_eq!(row["impair"]["ingress"]["limit_drops"], counted, "{row}");

    // A loss, in the text rendering.
    sw.ok(&[
        "port",
        "impair",
        &a,
        "--direction",
        "ingress",
        "--loss",
        "100%",
    ]);
    let reader = Command::new(BIN)
        .args(["--name", &sw.name, "--run-dir"])
        .arg(&sw.run_dir)
        .args(["trace", "--live", "-c", "1", "--filter", &filter])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    send(&mut ea, 1);
    let out = reader.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ingress impairment") && text.contains("dropped: impair_loss"),
        "{text}"
    );
    assert!(
        text.contains("verdict: drop: impair_loss (before the switch saw it)"),
        "{text}"
    );
}
