//! Seeing what the switch does: pcapng capture read back with tshark, the
//! decision trace, live traces, and filter errors.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use l2sw::wire::MacAddr;

/// Fails (never skips) when tshark is missing.
fn require_tshark() {
    let ok = Command::new("tshark")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "this test needs tshark: apt-get install tshark");
}

/// Rows of `tshark -r FILE -T fields` for the given fields.
fn tshark_fields(file: &std::path::Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec![
        "-r".to_string(),
        file.display().to_string(),
        "-T".into(),
        "fields".into(),
    ];
    for f in fields {
        args.push("-e".into());
        args.push(f.to_string());
    }
    let out = Command::new("tshark").args(&args).output().unwrap();
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

#[test]
fn capture_shows_a_flood_as_one_ingress_and_all_egress_records_and_drops_with_reasons() {
    require_tshark();
    let mut sw = Switch::start("cap");
    let a = sw.plug("a", "10.13.0.1/24", "02:00:00:0d:00:01", &[]);
    let b = sw.plug("b", "10.13.0.2/24", "02:00:00:0d:00:02", &["--via", "tap"]);
    let c = sw.plug("c", "10.13.0.3/24", "02:00:00:0d:00:03", &[]);
    let mut ea = Endpoint::open(&a, "eth0");
    let file = sw.run_dir.join("cap.pcapng");
    let filter = format!("ethertype {TEST_ETHERTYPE:#06x}");
    let mut cap = Command::new(BIN)
        .args(["--name", &sw.name, "--run-dir"])
        .arg(&sw.run_dir)
        .args(["capture", "--filter", &filter, "-c", "4", "-w"])
        .arg(&file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let src = mac("02:aa:00:00:0d:0a");
    ea.send(&test_frame(MacAddr::BROADCAST, src, b"flood", 100));
    ea.send(&test_frame(mac("01:80:c2:00:00:03"), src, b"eapol", 60));
    assert!(
        eventually(Duration::from_secs(5), || cap.try_wait().unwrap().is_some()),
        "capture did not stop after 4 records"
    );
    let out = cap.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let rows = tshark_fields(
        &file,
        &[
            "frame.interface_name",
            "frame.packet_flags_direction",
            "frame.packet_id",
            "frame.comment",
        ],
    );
    assert_eq!(rows.len(), 4, "{rows:?}");
    // Records come in processing order (a batch is decided before it is
    // sent), so group them by packet id.
    let ingress: Vec<&Vec<String>> = rows.iter().filter(|r| r[1] == "0x00000001").collect();
    assert_eq!(ingress.len(), 2, "{rows:?}");
    let flood = ingress
        .iter()
        .find(|r| r[3] == format!("in {}: flood: broadcast", r[0]))
        .expect("flood record");
    assert_eq!(flood[0], a);
    let drop = ingress
        .iter()
        .find(|r| r[3] == format!("in {}: drop: reserved_group", r[0]))
        .expect("drop record");
    assert_eq!(drop[0], a);
    assert_ne!(drop[2], flood[2]);
    let copies: Vec<&Vec<String>> = rows.iter().filter(|r| r[1] == "0x00000002").collect();
    let mut egress: Vec<&str> = copies.iter().map(|r| r[0].as_str()).collect();
    egress.sort();
    let mut want = vec![b.as_str(), c.as_str()];
    want.sort();
    assert_eq!(egress, want, "one egress record per other port: {rows:?}");
    for r in &copies {
        assert_eq!(r[2], flood[2], "egress copies carry the ingress packet id");
        assert_eq!(r[3], format!("out {}: flood: broadcast", r[0]));
    }

    // Streamed to stdout and read live by tshark from a pipe.
    let mut cap = Command::new(BIN)
        .args(["--name", &sw.name, "--run-dir"])
        .arg(&sw.run_dir)
        .args([
            "capture", "--port", &c, "-c", "1", "--filter", &filter, "-w", "-",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = cap.stdout.take().unwrap();
    let tshark = Command::new("tshark")
        .args([
            "-r",
            "-",
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
            "-e",
            "frame.comment",
        ])
        .stdin(pipe)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    ea.send(&test_frame(MacAddr::BROADCAST, src, b"pipe", 80));
    let out = tshark.wait_with_output().unwrap();
    let _ = cap.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        format!("{c}\tout {c}: flood: broadcast"),
        "{text}"
    );
}

#[test]
fn trace_explains_decisions_without_learning_and_live_traces_real_frames() {
    let mut sw = Switch::start("trc");
    let a = sw.plug("a", "10.14.0.1/24", "02:00:00:0e:00:01", &[]);
    let b = sw.plug("b", "10.14.0.2/24", "02:00:00:0e:00:02", &[]);
    assert_eq!(ping(&a, "10.14.0.2", &[]), (3, 3));

    let t = sw.json(&[
        "trace",
        "--in",
        &a,
        "--src",
        "02:00:00:0e:00:01",
        "--dst",
        "02:00:00:0e:00:02",
    ]);
    assert_eq!(t["verdict"], format!("forward: known unicast -> {b}"));
    assert_eq!(t["synthetic"], true);
    let lookup = t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "lookup")
        .unwrap();
    assert!(lookup["result"]
        .as_str()
        .unwrap()
        .contains(&format!("port {b} (learned")));

    // An unknown source is explained as "would be learned" and not learned.
    let t = sw.json(&[
        "trace",
        "--in",
        &b,
        "--src",
        "02:00:00:77:77:77",
        "--dst",
        "ff:ff:ff:ff:ff:ff",
    ]);
    assert_eq!(t["verdict"], "flood: broadcast");
    let fdb = sw.json(&["fdb", "show"]);
    assert!(!fdb
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["mac"] == "02:00:00:77:77:77"));
    let text = sw.ok(&[
        "trace",
        "--in",
        &a,
        "--src",
        "02:00:00:0e:00:01",
        "--dst",
        "01:80:c2:00:00:0e",
    ]);
    assert!(text.contains("LLDP: not forwarded"), "{text}");
    assert!(text.contains("verdict: drop: reserved_group"), "{text}");

    // Live: one real frame, explained as it passes.
    let live = Command::new(BIN)
        .args(["--name", &sw.name, "--run-dir"])
        .arg(&sw.run_dir)
        .args(["trace", "--live", "--json", "-c", "1", "--filter"])
        .arg(format!("ethertype {TEST_ETHERTYPE:#06x}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut ea = Endpoint::open(&a, "eth0");
    ea.send(&test_frame(
        mac("02:00:00:0e:00:02"),
        mac("02:00:00:0e:00:01"),
        b"live",
        60,
    ));
    let out = live.wait_with_output().unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON trace");
    assert_eq!(v["synthetic"], false);
    assert_eq!(v["ingress"], a.as_str());
    assert_eq!(v["verdict"], format!("forward: known unicast -> {b}"));
}

#[test]
fn bad_filters_and_trace_arguments_are_refused_precisely() {
    let sw = Switch::start("flt");
    let e = sw.fails(&["capture", "-w", "-", "--filter", "src and arp"]);
    assert!(e.contains("bad filter at column 5"), "{e}");
    assert!(e.contains('^'), "shows a caret: {e}");
    let e = sw.fails(&["capture", "-w", "-", "--filter", "port ghost"]);
    assert!(e.contains("no port named ghost"), "{e}");
    let e = sw.fails(&["capture", "-w", "-", "--port", "ghost"]);
    assert!(e.contains("no port named ghost"), "{e}");
    let e = sw.fails(&[
        "trace",
        "--in",
        "ghost",
        "--src",
        "02:00:00:00:00:01",
        "--dst",
        "02:00:00:00:00:02",
    ]);
    assert!(e.contains("no port named ghost"), "{e}");
    let e = sw.fails(&["trace", "--src", "02:00:00:00:00:01"]);
    assert!(e.contains("--in"), "{e}");
    let e = sw.fails(&[
        "trace",
        "--in",
        "x",
        "--src",
        "02:00:00:00:00:01",
        "--dst",
        "02:00:00:00:00:02",
        "--ethertype",
        "banana",
    ]);
    assert!(e.contains("--ethertype \"banana\""), "{e}");
}

/// The issue that made trace print the plan: two isolated ports and one
/// that is not. A broadcast from one isolated port reaches only the other
/// port, and both the synthetic and the live trace must say so (trace used
/// to claim the isolated port got it).
#[test]
fn trace_between_isolated_ports_says_what_the_switch_does() {
    let mut sw = Switch::start("iso");
    let a = sw.plug("trx1", "10.21.0.1/24", "02:00:00:15:00:01", &[]);
    let b = sw.plug("trx2", "10.21.0.2/24", "02:00:00:15:00:02", &[]);
    let c = sw.plug("trx3", "10.21.0.3/24", "02:00:00:15:00:03", &[]);
    sw.ok(&["port", "set", &a, "--isolated", "on"]);
    sw.ok(&["port", "set", &b, "--isolated", "on"]);
    let row = |t: &serde_json::Value, port: &str| -> serde_json::Value {
        t["egress"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["port"] == port)
            .unwrap_or_else(|| panic!("no row for {port}: {t}"))
            .clone()
    };
    let args = [
        "trace",
        "--in",
        &a,
        "--src",
        "02:00:00:00:00:01",
        "--dst",
        "ff:ff:ff:ff:ff:ff",
    ];
    let t = sw.json(&args);
    assert_eq!(t["verdict"], "flood: broadcast");
    assert_eq!(t["vlan_aware"], false);
    let rb = row(&t, &b);
    assert_eq!(rb["included"], false, "{t}");
    assert_eq!(rb["cause"], "isolated", "{t}");
    let rc = row(&t, &c);
    assert_eq!(rc["included"], true, "{t}");
    assert_eq!(rc["shape"]["as"], "received", "{t}");
    assert_eq!(row(&t, &a)["cause"], "ingress_port", "{t}");
    let text = sw.ok(&args);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&b))
        .unwrap_or_else(|| panic!("no line for {b}:\n{text}"));
    assert!(
        line.contains(" no ") && line.contains("isolated from the ingress port"),
        "{text}"
    );
    assert!(text.contains("VLAN-unaware"), "{text}");

    // The same with a real frame: the switch sends it only to trx3, and the
    // live trace says so, with what the send did.
    let live = Command::new(BIN)
        .args(["--name", &sw.name, "--run-dir"])
        .arg(&sw.run_dir)
        .args(["trace", "--live", "--json", "-c", "1", "--filter"])
        .arg(format!("ethertype {TEST_ETHERTYPE:#06x}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (mut ea, mut eb, mut ec) = (
        Endpoint::open(&a, "eth0"),
        Endpoint::open(&b, "eth0"),
        Endpoint::open(&c, "eth0"),
    );
    let f = test_frame(MacAddr::BROADCAST, mac("02:00:00:15:00:0a"), b"iso", 60);
    ea.send(&f);
    assert_eq!(ec.collect(b"iso", Duration::from_millis(500)), vec![f]);
    assert!(eb.collect(b"iso", Duration::from_millis(500)).is_empty());
    let out = live.wait_with_output().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("one trace");
    assert_eq!(v["synthetic"], false);
    assert_eq!(row(&v, &b)["included"], false, "{v}");
    assert_eq!(row(&v, &b)["cause"], "isolated", "{v}");
    assert_eq!(row(&v, &c)["included"], true, "{v}");
    assert_eq!(row(&v, &c)["io"]["sent"], 1, "{v}");
}

/// A VLAN-aware switch says so in the trace, with the port's mode, and the
/// egress rows carry the VLAN reasons and the tag each port writes.
#[test]
fn trace_shows_the_vlan_context_and_shapes() {
    let mut sw = Switch::start("tvl");
    let a = sw.plug("a", "10.22.0.1/24", "02:00:00:16:00:01", &[]);
    let b = sw.plug("b", "10.22.0.2/24", "02:00:00:16:00:02", &[]);
    let c = sw.plug("c", "10.22.0.3/24", "02:00:00:16:00:03", &[]);
    sw.ok(&["port", "vlan", &a, "--mode", "access", "--tag", "10"]);
    sw.ok(&["port", "vlan", &b, "--mode", "access", "--tag", "20"]);
    sw.ok(&["port", "vlan", &c, "--mode", "trunk", "--trunks", "10,20"]);
    let args = [
        "trace",
        "--in",
        &a,
        "--src",
        "02:00:00:00:00:01",
        "--dst",
        "ff:ff:ff:ff:ff:ff",
    ];
    let t = sw.json(&args);
    assert_eq!(t["vlan_aware"], true, "{t}");
    assert_eq!(t["vlan"], 10, "{t}");
    let rows = t["egress"].as_array().unwrap();
    let rb = rows.iter().find(|e| e["port"] == b.as_str()).unwrap();
    assert_eq!(rb["cause"], "not_in_vlan", "{t}");
    let rc = rows.iter().find(|e| e["port"] == c.as_str()).unwrap();
    assert_eq!(rc["shape"]["as"], "tagged", "{t}");
    assert_eq!(rc["shape"]["vid"], 10, "{t}");
    assert_eq!(rc["shape"]["pushed"], true, "{t}");
    let text = sw.ok(&args);
    assert!(
        text.contains("VLAN-aware port (access 10): VLAN 10"),
        "{text}"
    );
    assert!(!text.contains("VLAN-unaware"), "{text}");
}
