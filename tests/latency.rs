//! Latency through a real switch: in-switch histograms per port and pair,
//! the end-to-end probe across plugged namespaces, and the busy-poll mode.

mod common;

use std::process::Command;

use common::*;

fn probe_json(from: &str, to: &str, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["probe", "--from", from, "--to", to, "--json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ordered(s: &serde_json::Value) {
    let keys = [
        "min_us", "p50_us", "p90_us", "p99_us", "p999_us", "p9999_us", "max_us",
    ];
    let v: Vec<f64> = keys.iter().map(|k| s[k].as_f64().unwrap()).collect();
    assert!(
        v.windows(2).all(|w| w[0] <= w[1]),
        "percentiles out of order: {s}"
    );
    assert!(v[0] > 0.0, "{s}");
}

#[test]
fn probe_and_in_switch_histograms_across_a_plugged_pair() {
    let mut sw = Switch::start("lat");
    let a = sw.plug("a", "10.15.0.1/24", "02:00:00:0f:00:01", &[]);
    let b = sw.plug("b", "10.15.0.2/24", "02:00:00:0f:00:02", &["--via", "tap"]);

    let r = probe_json(&a, &b, &["--count", "300", "--rate", "1000"]);
    assert_eq!(r["sent"], 300);
    assert_eq!(r["received"], 300);
    assert_eq!(r["lost"], 0);
    assert_eq!(r["rtt"]["count"], 300);
    ordered(&r["rtt"]);
    ordered(&r["one_way_fwd"]);
    ordered(&r["one_way_rev"]);
    assert_eq!(r["one_way_measured"], true);

    // The switch measured the same frames on their way through.
    let rows = sw.json(&["latency"]);
    let rows = rows.as_array().unwrap();
    let pair = rows
        .iter()
        .find(|r| r["scope"] == "pair" && r["ingress"] == a.as_str() && r["egress"] == b.as_str())
        .expect("a -> b pair");
    assert!(pair["count"].as_u64().unwrap() >= 300, "{pair}");
    ordered(pair);
    let port_b = rows
        .iter()
        .find(|r| r["scope"] == "port" && r["egress"] == b.as_str())
        .unwrap();
    assert!(port_b["count"].as_u64().unwrap() >= pair["count"].as_u64().unwrap());

    // .hgrm output that HdrHistogram tools read.
    let h = sw.ok(&["latency", "--pair", &format!("{a},{b}"), "--hgrm"]);
    assert!(h.starts_with(&format!("# pair {a} -> {b}\n")), "{h}");
    assert!(
        h.contains("Value     Percentile TotalCount 1/(1-Percentile)"),
        "{h}"
    );
    assert!(h.contains("#[Mean    ="), "{h}");
    assert!(h.contains("#[Max     ="), "{h}");

    // Text table, then reset.
    let t = sw.ok(&["latency", "--port", &b, "--reset"]);
    assert!(t.starts_with("SCOPE"), "{t}");
    let after = sw.json(&["latency", "--port", &b]);
    assert!(
        after.as_array().unwrap().iter().all(|r| r["count"] == 0),
        "{after}"
    );

    let e = sw.fails(&["latency", "--pair", "nope"]);
    assert!(e.contains("INGRESS,EGRESS"), "{e}");
    let e = sw.fails(&["latency", "--port", "ghost"]);
    assert!(e.contains("no port named ghost"), "{e}");
}

#[test]
fn busy_poll_mode_forwards_and_reports_itself() {
    let mut sw = Switch::start_with("busy", &["--busy-poll", "200"]);
    let a = sw.plug("a", "10.16.0.1/24", "02:00:00:10:00:01", &[]);
    let b = sw.plug("b", "10.16.0.2/24", "02:00:00:10:00:02", &[]);
    let r = probe_json(&a, &b, &["--count", "200", "--rate", "1000"]);
    assert_eq!(r["lost"], 0);
    let st = sw.json(&["status"]);
    assert_eq!(st["busy_poll"], 200, "µs, as on the command line: {st}");
}

#[test]
fn probe_errors_are_precise() {
    require_root();
    let out = Command::new(BIN)
        .args(["probe", "--from", "no-such-ns-l2sw", "--to", "nor-this-one"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("no-such-ns-l2sw") || e.contains("nor-this-one"),
        "{e}"
    );
    let out = Command::new(BIN)
        .args(["probe", "--from", "a", "--to", "b", "--rate", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rate"));
}
