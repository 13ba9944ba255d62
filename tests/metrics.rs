//! `run --metrics`: scraped over HTTP after real traffic and parsed with the
//! Prometheus project's own Python parser (python3-prometheus-client).

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use common::*;

/// `(name, sorted labels) -> value` of every sample the parser found.
type Samples = HashMap<(String, Vec<(String, String)>), f64>;

/// Fetches `url` and parses it with prometheus_client's OpenMetrics parser
/// (which rejects text that breaks the format: missing `# EOF`, counters
/// without `_total`, bad histograms...).
fn scrape(url: &str) -> Samples {
    const PY: &str = r#"
import json, sys, urllib.request
from prometheus_client.openmetrics.parser import text_string_to_metric_families
with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
    assert r.status == 200, r.status
    ctype = r.headers["Content-Type"]
    assert ctype.startswith("application/openmetrics-text"), ctype
    text = r.read().decode()
out = []
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        out.append([fam.type, s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let out = Command::new("/usr/bin/python3")
        .args(["-c", PY, url])
        .output()
        .expect("run python3 (needs python3-prometheus-client)");
    assert!(
        out.status.success(),
        "scrape of {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<(String, String, HashMap<String, String>, f64)> =
        serde_json::from_slice(&out.stdout).unwrap();
    rows.into_iter()
        .map(|(_, name, labels, v)| {
            let mut l: Vec<_> = labels.into_iter().collect();
            l.sort();
            ((name, l), v)
        })
        .collect()
}

fn get(s: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    *s.get(&(name.to_string(), l.clone()))
        .unwrap_or_else(|| panic!("no sample {name}{l:?}"))
}

/// The address the switch logged for its metrics endpoint.
fn metrics_addr(sw: &Switch) -> String {
    let mut addr = None;
    assert!(
        eventually(Duration::from_secs(10), || {
            addr = sw
                .log()
                .lines()
                .find_map(|l| l.strip_prefix("l2sw: metrics at http://"))
                .map(|r| r.trim_end_matches("/metrics").to_string());
            addr.is_some()
        }),
        "no metrics address in the log: {}",
        sw.log()
    );
    addr.unwrap()
}

#[test]
fn a_scrape_after_real_traffic_shows_it_per_port() {
    let mut sw = Switch::start_logged("met", &["--metrics", "127.0.0.1:0"]);
    let a = sw.plug("a", "10.31.0.1/24", "02:00:00:1f:00:01", &[]);
    let _b = sw.plug("b", "10.31.0.2/24", "02:00:00:1f:00:02", &["--via", "tap"]);
    let (sent, got) = ping(&a, "10.31.0.2", &["-c", "5", "-i", "0.05"]);
    assert_eq!((sent, got), (5, 5));

    let addr = metrics_addr(&sw);
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let stats = sw.json(&["stats"]);
    let s = scrape(&format!("http://{addr}/metrics"));

    let port_a = format!("{}-a", sw.name);
    let port_b = format!("{}-b", sw.name);
    let counters = |p: &str| {
        stats["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == p)
            .unwrap()
            .clone()
    };
    for p in [&port_a, &port_b] {
        let c = counters(p);
        // At least the echo requests/replies (and ARP); never fewer than
        // `stats` said just before the scrape.
        let rx = get(
            &s,
            "l2sw_port_packets_total",
            &[("port", p), ("direction", "rx")],
        );
        let tx = get(
            &s,
            "l2sw_port_packets_total",
            &[("port", p), ("direction", "tx")],
        );
        assert!(
            rx >= 5.0 && rx >= c["rx_frames"].as_f64().unwrap(),
            "{p} rx {rx}"
        );
        assert!(
            tx >= 5.0 && tx >= c["tx_frames"].as_f64().unwrap(),
            "{p} tx {tx}"
        );
        let bytes = get(
            &s,
            "l2sw_port_bytes_total",
            &[("port", p), ("direction", "rx")],
        );
        assert!(bytes >= rx * 42.0, "{p}: {bytes} bytes for {rx} frames");
        assert_eq!(
            get(
                &s,
                "l2sw_port_drops_total",
                &[("port", p), ("reason", "runt")]
            ),
            0.0
        );
        // Every frame sent on a port went into its latency histogram.
        let count = get(&s, "l2sw_forwarding_latency_seconds_count", &[("port", p)]);
        let inf = get(
            &s,
            "l2sw_forwarding_latency_seconds_bucket",
            &[("port", p), ("le", "+Inf")],
        );
        assert!(count >= 5.0 && inf == count, "{p}: {count} vs {inf}");
        let sum = get(&s, "l2sw_forwarding_latency_seconds_sum", &[("port", p)]);
        assert!(
            sum > 0.0 && sum / count < 1.0,
            "{p}: mean {} s",
            sum / count
        );
    }
    assert!(get(&s, "l2sw_fdb_entries", &[("type", "learned")]) >= 2.0);
    assert!(get(&s, "l2sw_fdb_learned_total", &[]) >= 2.0);
    assert_eq!(
        get(
            &s,
            "l2sw_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(
        !s.keys()
            .any(|(_, l)| l.iter().any(|(_, v)| v.contains("02:00:00"))),
        "MAC addresses must never be label values"
    );
}

#[test]
fn a_bare_port_binds_loopback_only_and_bad_addresses_are_refused() {
    // A free port: bind one, note it, let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sw = Switch::start_logged("mel", &["--metrics", &port.to_string()]);
    assert_eq!(metrics_addr(&sw), format!("127.0.0.1:{port}"));
    // Not reachable on another local address of the host.
    let other = std::net::TcpStream::connect_timeout(
        &format!("127.0.0.2:{port}").parse().unwrap(),
        Duration::from_secs(2),
    );
    assert!(other.is_err(), "metrics reachable beyond 127.0.0.1");
    let s = scrape(&format!("http://127.0.0.1:{port}/metrics"));
    assert_eq!(get(&s, "l2sw_fdb_entries", &[("type", "learned")]), 0.0);
    drop(sw);

    require_root();
    for (bad, want) in [
        (
            "localhost:9830",
            r#"--metrics: "localhost:9830" is not an address to listen on; expected IP:PORT"#,
        ),
        ("10.0.0.1", r#"--metrics: "10.0.0.1" is not an address"#),
        (
            "127.0.0.1:70000",
            r#"--metrics: "127.0.0.1:70000" is not an address"#,
        ),
    ] {
        let name = unique("meb");
        let dir = std::env::temp_dir().join(format!("l2sw-test-{name}"));
        let out = Command::new(BIN)
            .args(["--name", &name, "--run-dir"])
            .arg(&dir)
            .args(["run", "--metrics", bad])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let sock_left = dir.join(format!("{name}.sock")).exists();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!out.status.success(), "{bad} accepted");
        assert!(err.contains(want), "{bad}: {err}");
        assert!(!sock_left, "control socket left behind");
    }
}
