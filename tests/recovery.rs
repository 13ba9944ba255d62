//! A switch that dies without cleaning up (SIGKILL), and what brings the host
//! back: the next start of the same name, or `l2sw cleanup`. Also the
//! signals that stop a switch cleanly, `list`, `show`, `config dump` round
//! trips, `monitor` and interfaces claimed by two switches.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{mac, require_root, test_frame, unique, Endpoint, BIN};
use l2sw::netns;
use serde_json::Value;

/// A run directory shared by the switches of one test, and everything the
/// test may have caused, removed on drop even when the test fails.
struct Host {
    run_dir: PathBuf,
    netns: Vec<String>,
    links: Vec<String>,
    children: Vec<Child>,
}

impl Host {
    fn new(tag: &str) -> Host {
        require_root();
        let run_dir = std::env::temp_dir().join(format!("l2sw-rec-{}", unique(tag)));
        std::fs::create_dir_all(&run_dir).unwrap();
        Host {
            run_dir,
            netns: Vec::new(),
            links: Vec::new(),
            children: Vec::new(),
        }
    }

    fn cli(&self, name: &str, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(["--name", name, "--run-dir"])
            .arg(&self.run_dir)
            .args(args)
            .output()
            .expect("run l2sw")
    }

    fn ok(&self, name: &str, args: &[&str]) -> String {
        let out = self.cli(name, args);
        assert!(
            out.status.success(),
            "l2sw {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, name: &str, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(name, &a)).expect("valid JSON")
    }

    fn log(&self, name: &str) -> PathBuf {
        self.run_dir.join(format!("{name}.log"))
    }

    /// Starts `l2sw --name NAME run EXTRA...` (stderr to NAME.log) and
    /// waits until it answers; returns its index.
    fn start(&mut self, name: &str, extra: &[&str]) -> usize {
        let log = std::fs::File::create(self.log(name)).unwrap();
        let child = Command::new(BIN)
            .args(["--name", name, "--run-dir"])
            .arg(&self.run_dir)
            .arg("run")
            .args(extra)
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start l2sw");
        self.children.push(child);
        let i = self.children.len() - 1;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = self.children[i].try_wait() {
                panic!(
                    "l2sw {name} exited during startup ({st}): {}",
                    self.log_text(name)
                );
            }
            if self.cli(name, &["status"]).status.success() {
                return i;
            }
            assert!(Instant::now() < deadline, "l2sw {name} did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self, name: &str) -> String {
        std::fs::read_to_string(self.log(name)).unwrap_or_default()
    }

    /// Sends `sig` to switch `i` and waits for it to exit; true on success.
    fn signal(&mut self, i: usize, sig: &str) -> bool {
        let c = &mut self.children[i];
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return st.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn veth(&mut self, tag: &str) -> (String, String) {
        let a = unique(tag);
        let b = format!("{a}p");
        self.links.push(a.clone());
        for args in [
            vec!["link", "add", &a, "type", "veth", "peer", "name", &b],
            vec!["link", "set", &a, "up"],
            vec!["link", "set", &b, "up"],
        ] {
            assert!(Command::new("ip").args(&args).status().unwrap().success());
        }
        (a, b)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        for c in &mut self.children {
            if let Ok(None) = c.try_wait() {
                let _ = Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status();
                let deadline = Instant::now() + Duration::from_secs(20);
                while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // What a failed test's dead switch left: its journal knows.
        let _ = Command::new(BIN)
            .arg("--run-dir")
            .arg(&self.run_dir)
            .arg("cleanup")
            .output();
        for ns in &self.netns {
            if netns::exists(ns) {
                let _ = netns::delete(ns);
            }
        }
        for l in &self.links {
            if netns::link_exists(None, l) {
                let _ = netns::delete_link(None, l);
            }
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

fn journal(run_dir: &Path, name: &str) -> Value {
    let text = std::fs::read_to_string(run_dir.join(format!("{name}.state")))
        .unwrap_or_else(|e| panic!("journal of {name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Names of what the journal lists, by kind.
fn journaled(j: &Value, kind: &str) -> Vec<String> {
    j["created"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| {
            e.get("ifname")
                .or(e.get("name"))
                .or(e.get("path"))
                .and_then(Value::as_str)
                .unwrap()
                .to_string()
        })
        .collect()
}

/// A config with two namespaces (veth, TAP) and a VM TAP port; returns
/// (config path, namespaces, TAP name).
fn lab_config(host: &mut Host, tag: &str) -> (PathBuf, Vec<String>, String) {
    let (r, b) = (unique(&format!("{tag}r")), unique(&format!("{tag}b")));
    let tap = unique(&format!("{tag}t"));
    host.netns.extend([r.clone(), b.clone()]);
    host.links.push(tap.clone());
    let cfg = host.run_dir.join("lab.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[[port]]
kind = "tap"
ifname = "{tap}"

[[namespace]]
ns = "{r}"
ip = ["10.31.0.1/24"]

[[namespace]]
ns = "{b}"
ip = ["10.31.0.2/24"]
via = "tap"
"#
        ),
    )
    .unwrap();
    (cfg, vec![r, b], tap)
}

#[test]
fn a_killed_switch_is_recovered_by_the_next_start_and_its_clean_stop_leaves_nothing() {
    let mut host = Host::new("kr");
    let name = unique("kr");
    let (cfg, ns, tap) = lab_config(&mut host, "k");
    let cfg = cfg.to_str().unwrap().to_string();
    let first = host.start(&name, &["--config", &cfg]);
    let j = journal(&host.run_dir, &name);
    let links = journaled(&j, "link");
    let mut journaled_ns = journaled(&j, "netns");
    journaled_ns.sort();
    let mut want = ns.clone();
    want.sort();
    assert_eq!(journaled_ns, want, "{j}");
    assert_eq!(links.len(), 1, "the veth of the first namespace: {j}");
    assert_eq!(journaled(&j, "persistent_tap"), vec![tap.clone()], "{j}");
    assert_eq!(journaled(&j, "socket_file").len(), 1, "{j}");

    assert!(!host.signal(first, "KILL"));
    // Everything is still there.
    assert!(ns.iter().all(|n| netns::exists(n)));
    assert!(netns::link_exists(None, &links[0]) && netns::link_exists(None, &tap));
    assert!(host.run_dir.join(format!("{name}.sock")).exists());
    let listed = host.json(&name, &["list"]);
    assert_eq!(listed[0]["state"], "dead", "{listed}");

    // The same config again: it comes up, says what it found, works.
    let second = host.start(&name, &["--config", &cfg]);
    let log = host.log_text(&name);
    let line = log
        .lines()
        .find(|l| l.contains("had stopped without cleaning up"))
        .unwrap_or_else(|| panic!("no recovery line in:\n{log}"));
    assert!(
        line.contains(&format!("link {}", links[0])) && line.contains(&format!("TAP {tap}")),
        "{line}"
    );
    assert!(line.contains("took over namespaces"), "{line}");
    let plugs = host.json(&name, &["ns", "list"]);
    for p in plugs.as_array().unwrap() {
        assert_eq!(p["created_netns"], true, "taken over means owned: {plugs}");
    }
    assert_eq!(common::ping(&ns[0], "10.31.0.2", &[]), (3, 3));

    assert!(host.signal(second, "TERM"));
    assert!(ns.iter().all(|n| !netns::exists(n)), "namespaces removed");
    assert!(!netns::link_exists(None, &links[0]) && !netns::link_exists(None, &tap));
    assert!(!host.run_dir.join(format!("{name}.sock")).exists());
    assert!(!host.run_dir.join(format!("{name}.state")).exists());
}

#[test]
fn cleanup_removes_what_a_killed_switch_left_and_nothing_it_did_not_create() {
    let mut host = Host::new("cl");
    let name = unique("cl");
    let (cfg, ns, tap) = lab_config(&mut host, "c");
    // A namespace that exists before it is plugged stays.
    let pre = unique("clpre");
    host.netns.push(pre.clone());
    netns::create(&pre).unwrap();
    let i = host.start(&name, &["--config", cfg.to_str().unwrap()]);
    host.ok(&name, &["ns", "plug", &pre, "--ip", "10.31.0.9/24"]);
    let links = journaled(&journal(&host.run_dir, &name), "link");
    assert_eq!(links.len(), 2);
    // A running switch is left alone.
    let out = host.cli(&name, &["cleanup"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is running"));
    host.signal(i, "KILL");

    let out = host.cli(&name, &["cleanup"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("had stopped without cleaning up"), "{said}");
    assert!(ns.iter().all(|n| !netns::exists(n)), "{said}");
    assert!(links.iter().all(|l| !netns::link_exists(None, l)), "{said}");
    assert!(!netns::link_exists(None, &tap), "{said}");
    assert!(netns::exists(&pre), "not the switch's: stays");
    assert!(!netns::link_exists(Some(&pre), "eth0"), "its veth went");
    assert!(!host.run_dir.join(format!("{name}.state")).exists());
    assert!(!host.run_dir.join(format!("{name}.sock")).exists());
    let out = host.cli(&name, &["cleanup"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to clean up"));
}

#[test]
fn sighup_and_sigquit_stop_the_switch_cleanly() {
    let mut host = Host::new("sg");
    for sig in ["HUP", "QUIT"] {
        let name = unique("sg");
        let ns = unique("sgn");
        host.netns.push(ns.clone());
        let i = host.start(&name, &[]);
        host.ok(&name, &["ns", "plug", &ns, "--ip", "10.32.0.1/24"]);
        assert!(host.signal(i, sig), "SIG{sig}: {}", host.log_text(&name));
        assert!(host.log_text(&name).contains(&format!("(SIG{sig})")));
        assert!(!netns::exists(&ns), "SIG{sig} removes what it created");
        assert!(!host.run_dir.join(format!("{name}.state")).exists());
    }
}

#[test]
fn list_shows_running_switches_and_an_interface_is_a_port_of_one_switch_only() {
    let mut host = Host::new("ls");
    let (a, b) = (unique("lsa"), unique("lsb"));
    host.start(&a, &[]);
    host.start(&b, &[]);
    let (x, _) = host.veth("lsx");
    host.ok(&a, &["port", "add", "iface", &x, "--name", "uplink"]);
    let out = host.cli(&b, &["port", "add", "iface", &x]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        e.contains(&format!(
            "interface {x} is already port uplink of switch {a}"
        )),
        "{e}"
    );
    let rows = host.json(&a, &["list"]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (r, n, ports) in [(&rows[0], &a, 1), (&rows[1], &b, 0)] {
        let mut want = [a.as_str(), b.as_str()];
        want.sort();
        assert!(want.contains(&r["name"].as_str().unwrap()));
        if r["name"] == n.as_str() {
            assert_eq!(r["state"], "running");
            assert_eq!(r["ports"], ports);
            assert!(r["pid"].as_u64().unwrap() > 0);
        }
    }
    let text = host.ok(&a, &["list"]);
    assert!(text.contains(&a) && text.contains(&b) && text.contains("running"));
    // `--name` after the subcommand named the port, not the switch.
    assert_eq!(host.json(&a, &["port", "list"])[0]["name"], "uplink");
}

#[test]
fn two_switches_sharing_a_namespace_agree_after_one_unplugs_it() {
    let mut host = Host::new("sh");
    let (a, b) = (unique("sha"), unique("shb"));
    let ns = unique("shn");
    host.netns.push(ns.clone());
    host.start(&a, &[]);
    host.start(&b, &[]);
    host.ok(&a, &["ns", "plug", &ns]);
    host.ok(&b, &["ns", "plug", &ns, "--ifname", "eth1"]);
    host.ok(&a, &["ns", "unplug", &ns]);
    assert!(!netns::exists(&ns), "a created it and removed it");
    let list = host.json(&b, &["ns", "list"]);
    assert_eq!(list, serde_json::json!([]), "b follows: {list}");
    assert_eq!(host.json(&b, &["port", "list"]), serde_json::json!([]));
}

/// `show --json` without what differs between two runs of one topology.
fn comparable_show(v: &Value) -> Value {
    let mut v = v.clone();
    // Traffic the namespaces send by themselves (IPv6) is learned anytime.
    for k in ["pid", "uptime_s", "fdb_entries", "fdb_learned"] {
        v[k] = Value::Null;
    }
    let ports = v["ports"].as_array_mut().unwrap();
    for p in ports.iter_mut() {
        for k in ["switch_mac", "id", "learned"] {
            p[k] = Value::Null;
        }
    }
    // A config adds ports before namespaces: ids and order differ.
    ports.sort_by_key(|p| p["name"].as_str().unwrap().to_string());
    v
}

#[test]
fn config_dump_starts_the_same_switch_again() {
    let mut host = Host::new("cd");
    let name = unique("cd");
    let (r, g) = (unique("cdr"), unique("cdg"));
    let tap = unique("cdt");
    host.netns.extend([r.clone(), g.clone()]);
    host.links.push(tap.clone());
    let i = host.start(&name, &["--ageing-time", "77"]);
    host.ok(&name, &["ns", "plug", &r, "--ip", "10.33.0.1/24"]);
    host.ok(
        &name,
        &["ns", "plug", &g, "--ip", "10.33.0.2/24", "--via", "tap"],
    );
    host.ok(&name, &["port", "add", "tap", &tap, "--max-learned", "5"]);
    host.ok(
        &name,
        &["port", "vlan", &r, "--mode", "access", "--tag", "10"],
    );
    host.ok(
        &name,
        &["port", "vlan", &g, "--mode", "trunk", "--trunks", "10,20"],
    );
    host.ok(
        &name,
        &["port", "set", &g, "--isolated", "on", "--gro", "off"],
    );
    host.ok(
        &name,
        &["fdb", "add", "02:00:00:33:00:09", &tap, "--vlan", "10"],
    );
    host.ok(&name, &["mirror", "add", "span", "--to", &tap, "--src", &r]);
    let dump = host.ok(&name, &["config", "dump"]);
    let before = comparable_show(&host.json(&name, &["show"]));
    let text = host.ok(&name, &["show"]);
    assert!(
        text.contains(&format!("port {r}")) && text.contains("vlan: access 10"),
        "{text}"
    );
    assert!(text.contains("mirror span"), "{text}");
    assert!(host.signal(i, "TERM"));

    let cfg = host.run_dir.join("dump.toml");
    std::fs::write(&cfg, &dump).unwrap();
    host.start(&name, &["--config", cfg.to_str().unwrap()]);
    let after = comparable_show(&host.json(&name, &["show"]));
    assert_eq!(after, before, "dump:\n{dump}");
    assert_eq!(host.ok(&name, &["config", "dump"]), dump);
}

#[test]
fn monitor_reports_learning_moves_ageing_and_a_vanished_port() {
    let mut host = Host::new("mo");
    let name = unique("mo");
    let (a, b) = (unique("moa"), unique("mob"));
    host.netns.extend([a.clone(), b.clone()]);
    host.start(&name, &[]);
    host.ok(&name, &["ns", "plug", &a]);
    host.ok(&name, &["ns", "plug", &b]);
    let mut mon = Command::new(BIN)
        .args(["--name", &name, "--run-dir"])
        .arg(&host.run_dir)
        .args(["monitor", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let reader = {
        let lines = lines.clone();
        let out = mon.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&l) {
                    lines.lock().unwrap().push(v);
                }
            }
        })
    };
    let seen = |pred: &dyn Fn(&Value) -> bool| lines.lock().unwrap().iter().any(pred);
    let wait = |what: &str, pred: &dyn Fn(&Value) -> bool| {
        assert!(
            common::eventually(Duration::from_secs(15), || seen(pred)),
            "monitor never showed {what}: {:?}",
            lines.lock().unwrap()
        );
    };
    // Flush until the monitor shows it: then it is subscribed.
    assert!(
        common::eventually(Duration::from_secs(15), || {
            host.ok(&name, &["fdb", "flush"]);
            seen(&|v| v["event"] == "flushed")
        }),
        "monitor shows nothing"
    );
    let station = mac("02:00:00:34:00:01");
    let frame = test_frame(mac("ff:ff:ff:ff:ff:ff"), station, b"mon", 64);
    let mut ea = Endpoint::open(&a, "eth0");
    let mut eb = Endpoint::open(&b, "eth0");
    ea.send(&frame);
    wait("learned", &|v| {
        v["event"] == "learned" && v["mac"] == station.to_string() && v["port"] == a.as_str()
    });
    eb.send(&frame);
    wait("moved", &|v| {
        v["event"] == "moved" && v["from"] == a.as_str() && v["to"] == b.as_str()
    });
    host.ok(&name, &["set", "ageing-time", "1"]);
    wait("settings changed", &|v| v["event"] == "settings_changed");
    wait("aged", &|v| {
        v["event"] == "aged" && v["mac"] == station.to_string()
    });
    let plugs = host.json(&name, &["ns", "list"]);
    let host_end = plugs
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["ns"] == b.as_str())
        .unwrap()["host_ifname"]
        .as_str()
        .unwrap()
        .to_string();
    netns::delete_link(None, &host_end).unwrap();
    wait("the vanished port", &|v| {
        v["event"] == "port_vanished" && v["port"] == b.as_str()
    });
    let _ = mon.kill();
    let _ = mon.wait();
    let _ = reader.join();
}
