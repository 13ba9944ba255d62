//! The control socket and the CLI: every wrong request gets a precise error
//! and the switch keeps running; settings and FDB edits take effect.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::*;

fn raw_exchange(sw: &Switch, line: &[u8]) -> serde_json::Value {
    let mut s = UnixStream::connect(sw.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(line).unwrap();
    let mut resp = String::new();
    BufReader::new(s).read_line(&mut resp).unwrap();
    serde_json::from_str(&resp).unwrap_or_else(|e| panic!("bad response {resp:?}: {e}"))
}

#[test]
fn bad_requests_get_precise_errors_and_the_switch_keeps_running() {
    let sw = Switch::start("ctl");
    let cases: &[(&[u8], &str)] = &[
        (b"this is not json\n", "malformed JSON"),
        (b"[1,2]\n", "must be a JSON object"),
        (b"{}\n", "no \"cmd\" field"),
        (b"{\"cmd\":\"reboot\"}\n", "unknown command \"reboot\""),
        (
            b"{\"cmd\":\"port-del\",\"name\":\"ghost\"}\n",
            "no port named ghost",
        ),
        (b"{\"cmd\":\"port-del\"}\n", "missing field `name`"),
        (
            b"{\"cmd\":\"fdb-add\",\"mac\":\"02:00:00:00:00:zz\",\"port\":\"x\"}\n",
            "invalid MAC address",
        ),
        (
            b"{\"cmd\":\"fdb-add\",\"mac\":\"ff:ff:ff:ff:ff:ff\",\"port\":\"x\"}\n",
            "no port named x",
        ),
        (
            b"{\"cmd\":\"ns-plug\",\"ns\":\"x\",\"ip\":[\"10.0.0.1/40\"]}\n",
            "prefix too long",
        ),
        (
            b"{\"cmd\":\"ns-plug\",\"ns\":\"../etc\"}\n",
            "invalid namespace name",
        ),
        (
            b"{\"cmd\":\"set\",\"key\":\"ageing-time\",\"value\":\"soon\"}\n",
            "not a non-negative integer",
        ),
        (
            b"{\"cmd\":\"set\",\"key\":\"speed\",\"value\":1}\n",
            "unknown setting \"speed\"",
        ),
        (
            b"{\"cmd\":\"port-add\",\"kind\":\"iface\",\"ifname\":\"nosuchif0\"}\n",
            "no interface named nosuchif0",
        ),
        (
            b"{\"cmd\":\"ns-unplug\",\"ns\":\"nowhere\"}\n",
            "not plugged",
        ),
        (b"\xff\xfe\n", "not valid UTF-8"),
    ];
    for (line, want) in cases {
        let v = raw_exchange(&sw, line);
        assert_eq!(v["ok"], false, "{}", String::from_utf8_lossy(line));
        let err = v["error"].as_str().unwrap();
        assert!(
            err.contains(want),
            "request {:?}: error {err:?} should contain {want:?}",
            String::from_utf8_lossy(line)
        );
    }

    // A client that sends half a request and disconnects.
    {
        let mut s = UnixStream::connect(sw.socket()).unwrap();
        s.write_all(b"{\"cmd\":\"sta").unwrap();
    }
    // A request longer than the limit.
    let mut huge = vec![b'x'; 70 * 1024];
    huge.push(b'\n');
    let v = raw_exchange(&sw, &huge);
    assert!(v["error"].as_str().unwrap().contains("longer than"));

    // Several requests on one connection.
    let mut s = UnixStream::connect(sw.socket()).unwrap();
    s.write_all(b"{\"cmd\":\"status\"}\n{\"cmd\":\"get\"}\n")
        .unwrap();
    let mut r = BufReader::new(s);
    for _ in 0..2 {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.contains("\"ok\":true"), "{line}");
    }

    let status = sw.json(&["status"]);
    assert_eq!(status["name"], sw.name.as_str());
}

#[test]
fn cli_errors_are_precise() {
    let mut sw = Switch::start("cli");
    let e = sw.fails(&["fdb", "add", "02:00:00:00:00", "p"]);
    assert!(e.contains("invalid MAC address"), "{e}");
    let e = sw.fails(&["ns", "plug", "x", "--ip", "10.0.0.1"]);
    assert!(e.contains("missing /PREFIX"), "{e}");
    let e = sw.fails(&["port", "add", "iface", "nosuchif1"]);
    assert!(e.contains("no interface named nosuchif1"), "{e}");
    let e = sw.fails(&["port", "add", "iface", "lo", "--netns", "x"]);
    assert!(e.contains("applies to TAP ports only"), "{e}");
    let e = sw.fails(&["port", "add", "tap", "this-name-is-too-long"]);
    assert!(e.contains("longer than 15 bytes"), "{e}");
    let e = sw.fails(&["set", "fdb-max", "-3"]);
    assert!(e.contains("not a non-negative integer"), "{e}");
    let e = sw.fails(&["fdb", "del", "02:00:00:00:00:77"]);
    assert!(e.contains("no FDB entry for 02:00:00:00:00:77"), "{e}");
    let e = sw.fails(&["port", "set", "ghost", "--max-learned", "5"]);
    assert!(e.contains("no port named ghost"), "{e}");
    let other = |name: &str| {
        let out = std::process::Command::new(BIN)
            .args(["--name", name, "--run-dir"])
            .arg(&sw.run_dir)
            .arg("status")
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let e = other("bad/name");
    assert!(e.contains("invalid switch name"), "{e}");
    let e = other(&format!("{}x", sw.name));
    assert!(e.contains("is running"), "{e}");

    let ns = sw.plug("dup", "10.9.0.1/24", "02:00:00:09:00:01", &[]);
    let e = sw.fails(&["ns", "plug", &ns, "--ip", "10.9.0.2/24"]);
    assert!(e.contains("already plugged"), "{e}");
    let e = sw.fails(&["port", "del", &ns]);
    assert!(e.contains("ns unplug"), "{e}");

    // Starting a second switch with the same name is refused.
    let out = std::process::Command::new(BIN)
        .args(["--name", &sw.name, "--run-dir"])
        .arg(&sw.run_dir)
        .arg("run")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("already running"), "{e}");
    assert!(
        sw.cli(&["status"]).status.success(),
        "the first switch still runs"
    );
}

#[test]
fn port_set_gro_through_the_control_socket() {
    let mut sw = Switch::start("ctlgro");
    let a = sw.plug("a", "10.9.1.1/24", "02:00:00:09:01:01", &[]);
    let gro_in_list = |sw: &Switch| {
        let v = raw_exchange(sw, b"{\"cmd\":\"port-list\"}\n");
        assert_eq!(v["ok"], true, "{v}");
        v["result"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == a.as_str())
            .unwrap_or_else(|| panic!("no port {a}: {v}"))["policy"]["gro"]
            .clone()
    };
    assert_eq!(gro_in_list(&sw), true, "on by default");

    let off = format!("{{\"cmd\":\"port-set\",\"name\":\"{a}\",\"gro\":false}}\n");
    let v = raw_exchange(&sw, off.as_bytes());
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["result"]["name"], a.as_str(), "{v}");
    assert_eq!(v["result"]["policy"]["gro"], false, "{v}");
    assert_eq!(
        v["result"]["policy"]["learning"], true,
        "the rest untouched: {v}"
    );
    assert_eq!(gro_in_list(&sw), false);

    let on = format!("{{\"cmd\":\"port-set\",\"name\":\"{a}\",\"gro\":true}}\n");
    let v = raw_exchange(&sw, on.as_bytes());
    assert_eq!(v["result"]["policy"]["gro"], true, "{v}");
    assert_eq!(gro_in_list(&sw), true);

    let cases = [
        (
            format!("{{\"cmd\":\"port-set\",\"name\":\"{a}\",\"gro\":\"off\"}}\n"),
            "expected a boolean",
        ),
        (
            format!("{{\"cmd\":\"port-set\",\"name\":\"{a}\"}}\n"),
            "--gro",
        ),
        (
            "{\"cmd\":\"port-set\",\"name\":\"ghost\",\"gro\":false}\n".to_string(),
            "no port named ghost",
        ),
    ];
    for (line, want) in cases {
        let v = raw_exchange(&sw, line.as_bytes());
        assert_eq!(v["ok"], false, "{line}");
        let err = v["error"].as_str().unwrap();
        assert!(
            err.contains(want),
            "request {line:?}: error {err:?} should contain {want:?}"
        );
    }
    assert_eq!(gro_in_list(&sw), true, "failed requests change nothing");
}

#[test]
fn static_entries_settings_and_limits_through_the_cli() {
    let mut sw = Switch::start("fdb");
    let a = sw.plug("a", "10.6.0.1/24", "02:00:00:06:00:01", &[]);
    let b = sw.plug("b", "10.6.0.2/24", "02:00:00:06:00:02", &[]);
    sw.ok(&["fdb", "add", "02:00:00:00:00:09", &b]);
    let fdb = sw.json(&["fdb", "show"]);
    let e = fdb
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["mac"] == "02:00:00:00:00:09")
        .expect("static entry");
    assert_eq!(e["type"], "static");
    assert_eq!(e["port"], b.as_str());
    assert_eq!(e["age_s"], 0);

    // Frames to the static MAC go to b only; a frame *from* it on a does not move it.
    let (mut ea, mut eb) = (Endpoint::open(&a, "eth0"), Endpoint::open(&b, "eth0"));
    let w = Duration::from_millis(500);
    ea.send(&test_frame(
        mac("02:00:00:00:00:09"),
        mac("02:aa:00:00:06:0a"),
        b"st",
        60,
    ));
    assert_eq!(eb.collect(b"st", w).len(), 1);
    ea.send(&test_frame(
        mac("02:aa:00:00:06:0a"),
        mac("02:00:00:00:00:09"),
        b"mv",
        60,
    ));
    let fdb = sw.json(&["fdb", "show", "--port", &b]);
    assert!(fdb
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["mac"] == "02:00:00:00:00:09"));
    let stats = sw.json(&["stats"]);
    assert_eq!(stats["totals"]["fdb"]["static_conflicts"], 1);

    sw.ok(&["fdb", "del", "02:00:00:00:00:09"]);
    sw.ok(&["fdb", "flush"]);
    // Only learned entries go; the namespaces' own stacks may be learned
    // again at once, so look at the entries this test made.
    assert!(sw
        .json(&["fdb", "show"])
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["type"] == "static" || !e["mac"].as_str().unwrap().starts_with("02:aa")));

    // Switch-wide limit: 1 learned entry, the second source is refused.
    // The namespaces' own stacks (IPv6 DAD, MLD) may send a frame at any
    // time and take the one slot first: the check below allows for that.
    sw.ok(&["fdb", "flush"]);
    sw.ok(&["set", "fdb-max", "1"]);
    ea.send(&test_frame(
        mac("ff:ff:ff:ff:ff:ff"),
        mac("02:aa:00:00:06:01"),
        b"l1",
        60,
    ));
    ea.send(&test_frame(
        mac("ff:ff:ff:ff:ff:ff"),
        mac("02:aa:00:00:06:02"),
        b"l2",
        60,
    ));
    assert_eq!(
        eb.collect(b"l", w).len(),
        2,
        "refused sources are still forwarded"
    );
    let learned: Vec<_> = sw
        .json(&["fdb", "show"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "learned")
        .cloned()
        .collect();
    assert_eq!(learned.len(), 1, "the limit holds: {learned:?}");
    assert!(
        sw.json(&["stats"])["totals"]["fdb"]["refused_full"]
            .as_u64()
            .unwrap()
            >= 1
    );

    // Per-port limit via port set.
    sw.ok(&["set", "fdb-max", "0"]);
    sw.ok(&["fdb", "flush"]);
    sw.ok(&["port", "set", &a, "--max-learned", "1"]);
    ea.send(&test_frame(
        mac("ff:ff:ff:ff:ff:ff"),
        mac("02:aa:00:00:06:03"),
        b"p1",
        60,
    ));
    ea.send(&test_frame(
        mac("ff:ff:ff:ff:ff:ff"),
        mac("02:aa:00:00:06:04"),
        b"p2",
        60,
    ));
    eb.collect(b"p", w);
    let ports = sw.json(&["port", "list"]);
    let pa = ports
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == a.as_str())
        .unwrap();
    assert_eq!(pa["max_learned"], 1);
    assert_eq!(pa["learned"], 1);
    assert!(
        sw.json(&["stats"])["totals"]["fdb"]["refused_port_limit"]
            .as_u64()
            .unwrap()
            >= 1
    );

    // Text forms are aligned tables with headers.
    let text = sw.ok(&["fdb", "show"]);
    assert!(text.starts_with("MAC"), "{text}");
    let text = sw.ok(&["stats"]);
    for reason in l2sw::switch::DropReason::ALL {
        assert!(
            text.contains(reason.name()),
            "stats text lacks {}",
            reason.name()
        );
    }
}
