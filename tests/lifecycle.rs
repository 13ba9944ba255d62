//! Ports and switches coming and going: interfaces that vanish, TAP ports for
//! VMs, config files, several switches at once, and a clean stop that leaves
//! nothing behind.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use l2sw::netns;
use l2sw::port::tap::TapPort;
use l2sw::port::Port;

#[test]
fn a_deleted_interface_is_removed_and_reported_and_the_switch_keeps_running() {
    let mut sw = Switch::start("gone");
    let a = sw.plug("a", "10.7.0.1/24", "02:00:00:07:00:01", &[]);
    let b = sw.plug("b", "10.7.0.2/24", "02:00:00:07:00:02", &[]);
    let x = unique("vx");
    let y = format!("{x}p");
    sw.own_link(&x);
    let st = Command::new("ip")
        .args(["link", "add", &x, "type", "veth", "peer", "name", &y])
        .status()
        .unwrap();
    assert!(st.success());
    Command::new("ip")
        .args(["link", "set", &x, "up"])
        .status()
        .unwrap();
    Command::new("ip")
        .args(["link", "set", &y, "up"])
        .status()
        .unwrap();
    sw.ok(&["port", "add", "iface", &x]);
    assert_eq!(sw.json(&["port", "list"]).as_array().unwrap().len(), 3);

    Command::new("ip")
        .args(["link", "del", &x])
        .status()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || {
            sw.json(&["port", "list"]).as_array().unwrap().len() == 2
        }),
        "the vanished port is removed"
    );
    let stats = sw.json(&["stats"]);
    let removed = stats["removed_ports"].as_array().unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["name"], x.as_str());
    assert!(removed[0]["reason"].as_str().unwrap().contains("vanished"));

    // A plugged namespace's veth deleted from inside the namespace.
    Command::new("ip")
        .args(["-n", &b, "link", "del", "eth0"])
        .status()
        .unwrap();
    assert!(eventually(Duration::from_secs(5), || {
        sw.json(&["port", "list"]).as_array().unwrap().len() == 1
    }));
    let ns = sw.json(&["ns", "list"]);
    let rec = ns
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["ns"] == b.as_str())
        .unwrap();
    assert_eq!(rec["port_vanished"], true);
    sw.ok(&["ns", "unplug", &b]);
    assert!(
        !netns::exists(&b),
        "unplug removes the namespace the switch created"
    );

    // Still forwarding: a fresh namespace pings the surviving one.
    let c = sw.plug("c", "10.7.0.3/24", "02:00:00:07:00:03", &["--via", "tap"]);
    assert_eq!(ping(&c, "10.7.0.1", &[]), (3, 3));
    let _ = a;
}

#[test]
fn a_vm_tap_port_carries_frames_between_the_vm_queue_and_a_namespace() {
    let mut sw = Switch::start("vm");
    let a = sw.plug("a", "10.8.0.1/24", "02:00:00:08:00:01", &[]);
    let tap = unique("tv");
    sw.own_link(&tap);
    sw.ok(&["port", "add", "tap", &tap]);
    let ports = sw.json(&["port", "list"]);
    let p = ports
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == tap.as_str())
        .unwrap();
    assert_eq!(p["kind"], "tap-vm");

    // Play the VM: attach to the TAP's queue as QEMU would (ifname=..., script=no).
    let mut vm = TapPort::create(&tap).expect("attach to the VM TAP like QEMU");
    let mut ea = Endpoint::open(&a, "eth0");
    let from_vm = test_frame(
        l2sw::wire::MacAddr::BROADCAST,
        mac("52:54:00:00:08:01"),
        b"vm",
        342,
    );
    assert_eq!(vm.send_batch(&[l2sw::port::TxFrame::plain(&from_vm)]).0, 1);
    assert_eq!(ea.collect(b"vm", Duration::from_millis(800)), vec![from_vm]);

    let to_vm = test_frame(
        mac("52:54:00:00:08:01"),
        mac("02:aa:00:00:08:0a"),
        b"tovm",
        128,
    );
    ea.send(&to_vm);
    let mut batch = l2sw::port::RxBatch::new(8);
    assert!(eventually(Duration::from_secs(2), || {
        let n = vm.recv_batch(&mut batch).unwrap();
        batch.iter().take(n).any(|s| s.frame() == to_vm.as_slice())
    }));
    drop(vm);

    sw.ok(&["port", "del", &tap]);
    assert!(
        !netns::link_exists(None, &tap),
        "port del removes the TAP it created"
    );
}

#[test]
fn stop_removes_everything_it_created_and_several_switches_run_at_once() {
    let mut one = Switch::start("one");
    let mut two = Switch::start("two");
    let a = one.plug("a", "10.10.0.1/24", "02:00:00:0a:00:01", &[]);
    let b = one.plug("b", "10.10.0.2/24", "02:00:00:0a:00:02", &["--via", "tap"]);
    let c = two.plug("c", "10.10.0.1/24", "02:00:00:0a:00:01", &[]);
    let d = two.plug("d", "10.10.0.2/24", "02:00:00:0a:00:02", &[]);
    let tap = unique("tw");
    one.own_link(&tap);
    one.ok(&["port", "add", "tap", &tap]);
    // Same addresses and MACs on both switches: they are separate segments.
    assert_eq!(ping(&a, "10.10.0.2", &[]), (3, 3));
    assert_eq!(ping(&c, "10.10.0.2", &[]), (3, 3));

    let host_links: Vec<String> = one
        .json(&["ns", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["host_ifname"].as_str().map(str::to_string))
        .collect();
    assert_eq!(host_links.len(), 1, "the veth plug has a host end");
    let socket = one.socket();
    assert!(socket.exists());

    assert!(one.stop(), "SIGTERM stops the switch with success");
    for ns in [&a, &b] {
        assert!(!netns::exists(ns), "namespace {ns} left behind");
    }
    for l in host_links.iter().chain([&tap]) {
        assert!(!netns::link_exists(None, l), "link {l} left behind");
    }
    assert!(!socket.exists(), "control socket left behind");

    // The other switch is untouched.
    assert_eq!(ping(&d, "10.10.0.1", &[]), (3, 3));
}

#[test]
fn run_with_a_config_file_builds_the_topology() {
    require_root();
    let tag = unique("cf");
    let dir = std::env::temp_dir().join(format!("l2sw-cfg-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("lab.toml");
    let (r, g) = (format!("{tag}-r"), format!("{tag}-g"));
    std::fs::write(
        &cfg,
        format!(
            r#"
[switch]
ageing_time = 42

[[namespace]]
ns = "{r}"
ip = ["10.11.0.1/24"]
gro = false

[[namespace]]
ns = "{g}"
ip = ["10.11.0.2/24"]
via = "tap"
hairpin = true
"#
        ),
    )
    .unwrap();
    let mut sw = Switch::start_with("cfg", &["--config", cfg.to_str().unwrap()]);
    // Register for cleanup in case the test fails.
    let _ = (sw.ns(&r[tag.len() + 1..]), sw.ns(&g[tag.len() + 1..]));
    assert_eq!(sw.json(&["get"])["ageing_time_s"], 42);
    // Per-port flags from the file: gro off on r, on (the default) on g.
    let ports = sw.json(&["port", "list"]);
    let policy = |name: &str| {
        ports
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no port {name}: {ports}"))["policy"]
            .clone()
    };
    assert_eq!(policy(&r)["gro"], false, "{ports}");
    assert_eq!(policy(&g)["gro"], true, "{ports}");
    assert_eq!(policy(&g)["hairpin"], true, "{ports}");
    let list = sw.ok(&["port", "list"]);
    let row = |name: &str| {
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{list}"))
            .to_string()
    };
    assert!(row(&r).contains(" no-gro "), "{list}");
    assert!(
        !row(&g).contains("no-gro") && row(&g).contains(" hairpin "),
        "{list}"
    );
    assert_eq!(ping(&r, "10.11.0.2", &[]), (3, 3));
    assert!(sw.stop());
    assert!(!netns::exists(&r) && !netns::exists(&g));
    let _ = std::fs::remove_dir_all(dir);

    // A broken config is refused with the file and the problem named.
    let bad = std::env::temp_dir().join(format!("l2sw-bad-{tag}.toml"));
    std::fs::write(&bad, "[[namespace]]\nns = \"x\"\nvia = \"wifi\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["--name", &tag, "--run-dir"])
        .arg(std::env::temp_dir())
        .args(["run", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&bad);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("invalid config") && e.contains("wifi"), "{e}");
}

#[test]
fn the_demo_runs_and_cleans_up() {
    require_root();
    let dir = std::env::temp_dir().join(format!("l2sw-demo-{}", unique("d")));
    let out = Command::new(BIN)
        .arg("--run-dir")
        .arg(&dir)
        .arg("demo")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("demo passed"), "{text}");
    assert_eq!(text.matches(" ok\n").count(), 6, "six pairs ping:\n{text}");
    assert!(
        text.contains("MAC") && text.contains("learned"),
        "fdb shown:\n{text}"
    );
    let ns = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .to_string();
    let pid_prefix = "l2demo";
    assert!(
        !ns.lines()
            .any(|l| l.starts_with(pid_prefix) && l.contains(&format!("{}-", out_pid(&text)))),
        "demo namespaces left behind: {ns}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The demo's switch is named demo-PID; find PID in its output.
fn out_pid(text: &str) -> String {
    text.split("switch demo-")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("?")
        .to_string()
}
