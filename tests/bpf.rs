//! `capture --bpf` and `trace --live --bpf`: tcpdump's filter language,
//! compiled by libpcap and run in user space on the capture path, checked
//! with real traffic between namespaces and read back with tshark.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn l2sw(sw: &Switch, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["--name", &sw.name, "--run-dir"])
        .arg(&sw.run_dir)
        .args(args);
    c
}

#[test]
fn capture_keeps_only_frames_the_pcap_expression_matches() {
    let mut sw = Switch::start("bpf");
    let a = sw.plug("a", "10.32.0.1/24", "02:00:00:20:00:01", &[]);
    let b = sw.plug("b", "10.32.0.2/24", "02:00:00:20:00:02", &["--via", "tap"]);
    let file = sw.run_dir.join("icmp.pcapng");
    // Echo requests only, on one port: ARP and the replies do not match.
    let mut cap = l2sw(
        &sw,
        &[
            "capture",
            "--port",
            &b,
            "--bpf",
            "icmp[icmptype] == icmp-echo and host 10.32.0.2",
            "-c",
            "3",
            "-w",
        ],
    )
    .arg(&file)
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (sent, got) = ping(&a, "10.32.0.2", &["-c", "5", "-i", "0.1"]);
    assert_eq!((sent, got), (5, 5));
    assert!(
        eventually(Duration::from_secs(5), || cap.try_wait().unwrap().is_some()),
        "capture did not stop after 3 records"
    );
    let out = cap.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let t = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args([
            "-T",
            "fields",
            "-e",
            "icmp.type",
            "-e",
            "ip.dst",
            "-e",
            "frame.interface_name",
        ])
        .output()
        .expect("tshark");
    let rows = String::from_utf8_lossy(&t.stdout).into_owned();
    let rows: Vec<&str> = rows.lines().collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    for r in &rows {
        assert_eq!(*r, format!("8\t10.32.0.2\t{b}"), "{rows:?}");
    }
}

#[test]
fn trace_live_takes_pcap_expressions_too() {
    let mut sw = Switch::start("bpt");
    let a = sw.plug("a", "10.33.0.1/24", "02:00:00:21:00:01", &[]);
    let _b = sw.plug("b", "10.33.0.2/24", "02:00:00:21:00:02", &[]);
    let mut tr = l2sw(
        &sw,
        &["trace", "--live", "--bpf", "arp", "-c", "1", "--json"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let _ = ping(&a, "10.33.0.2", &["-c", "1"]);
    assert!(
        eventually(Duration::from_secs(5), || tr.try_wait().unwrap().is_some()),
        "trace did not stop after one ARP frame"
    );
    let out = tr.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("0x0806") || text.contains("arp"), "{text}");
}

#[test]
fn bad_expressions_get_libpcaps_error_and_tcpdump_syntax_in_filter_gets_a_hint() {
    let sw = Switch::start("bpe");
    let err = sw.fails(&[
        "capture",
        "--bpf",
        "tcp prot 80",
        "-c",
        "1",
        "-w",
        "/dev/null",
    ]);
    assert!(
        err.contains(r#"bad pcap-filter expression "tcp prot 80": "#)
            && err.contains("syntax error"),
        "{err}"
    );
    let err = sw.fails(&[
        "capture",
        "--filter",
        "tcp port 80",
        "-c",
        "1",
        "-w",
        "/dev/null",
    ]);
    assert!(
        err.contains(r#"it is a pcap-filter expression: pass it with --bpf "tcp port 80""#),
        "{err}"
    );
    // The switch checks too (a client that skipped the CLI's check).
    let mut c = l2sw::control::client::Client::connect(&sw.name, &sw.socket()).unwrap();
    let resp = c
        .raw(r#"{"cmd":"capture","bpf":"ether hst 1","count":1}"#)
        .unwrap();
    assert!(resp.contains("bad pcap-filter expression"), "{resp}");
}
