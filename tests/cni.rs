//! The CNI plugin `l2sw-cni` driven as cnitool drives a plugin: the
//! network configuration on stdin (with `name` and `cniVersion`, and
//! `prevResult` for CHECK and DEL as libcni's cache supplies it) and the
//! CNI_* variables in the environment, nothing else. (cnitool itself is
//! not a Debian binary; these tests set the same variables it sets.)
//! Containers are named namespaces under /run/netns, host-local hands out
//! addresses from a data directory inside the test switch's run directory.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{ping, Switch};
use serde_json::{json, Value};

const CNI: &str = env!("CARGO_BIN_EXE_l2sw-cni");

/// One plugin call: (success, the JSON it printed or Null).
fn cni(cmd: &str, conf: &Value, vars: &[(&str, &str)]) -> (bool, Value) {
    let mut c = Command::new(CNI);
    c.env_clear()
        .env("CNI_COMMAND", cmd)
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("run l2sw-cni");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{cmd} printed non-JSON {text:?}: {e}"))
    };
    (out.status.success(), v)
}

fn conf(sw: &Switch, subnet: &str, extra: Value) -> Value {
    let mut c = json!({
        // Debian 12's host-local speaks up to 1.0.0; GC and STATUS below
        // are 1.1.0 calls.
        "cniVersion": "1.0.0",
        "name": format!("{}-net", sw.name),
        "type": "l2sw-cni",
        "switch": sw.name,
        "runDir": sw.run_dir,
        "ipam": {
            "type": "host-local",
            "subnet": subnet,
            "dataDir": sw.run_dir.join("ipam"),
        },
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// A container: a namespace with an id as a runtime would make up.
struct Container {
    id: String,
    ns: String,
    path: String,
    name: String,
}

impl Container {
    fn new(sw: &mut Switch, short: &str) -> Container {
        let ns = sw.ns(short);
        l2sw::netns::create(&ns).unwrap();
        // Unique per call: tests run in parallel in one process.
        let id = format!("{:0>64}", common::unique(short));
        let host = l2sw::cni::host_ifname(&id, "eth0");
        sw.own_link(&host);
        Container {
            path: format!("/run/netns/{ns}"),
            name: format!("{short}{}", std::process::id() % 10000),
            id,
            ns,
        }
    }

    fn vars(&self) -> Vec<(&str, String)> {
        vec![
            ("CNI_CONTAINERID", self.id.clone()),
            ("CNI_NETNS", self.path.clone()),
            ("CNI_IFNAME", "eth0".into()),
            (
                "CNI_ARGS",
                format!("IgnoreUnknown=1;K8S_POD_NAME={}", self.name),
            ),
        ]
    }

    fn call(&self, cmd: &str, conf: &Value) -> (bool, Value) {
        let v = self.vars();
        let v: Vec<(&str, &str)> = v.iter().map(|(k, v)| (*k, v.as_str())).collect();
        cni(cmd, conf, &v)
    }

    fn host(&self) -> String {
        l2sw::cni::host_ifname(&self.id, "eth0")
    }
}

fn with_prev(conf: &Value, prev: &Value) -> Value {
    let mut c = conf.clone();
    c["prevResult"] = prev.clone();
    c
}

fn port_of<'a>(ports: &'a Value, c: &Container) -> Option<&'a Value> {
    ports
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["container"]["id"] == c.id.as_str())
}

#[test]
fn add_check_del_twice_gc_and_status_as_cnitool_calls_them() {
    let mut sw = Switch::start("cni");
    let a = Container::new(&mut sw, "a");
    let b = Container::new(&mut sw, "b");
    let v20 = Container::new(&mut sw, "v");
    let net = conf(&sw, "10.91.7.0/24", json!({"mtu": 1400}));

    let (ok, ra) = a.call("ADD", &net);
    assert!(ok, "ADD a: {ra}");
    let (ok, rb) = b.call("ADD", &net);
    assert!(ok, "ADD b: {rb}");
    // The result: host end, then the container's end with its sandbox; the
    // address sits on interface 1.
    assert_eq!(ra["cniVersion"], "1.0.0");
    assert_eq!(ra["interfaces"][0]["name"], a.host().as_str());
    assert!(ra["interfaces"][0].get("sandbox").is_none(), "{ra}");
    assert_eq!(ra["interfaces"][1]["name"], "eth0");
    assert_eq!(ra["interfaces"][1]["sandbox"], a.path.as_str());
    assert_eq!(ra["interfaces"][1]["mtu"], 1400);
    assert_eq!(ra["ips"][0]["interface"], 1);
    let ip_b = rb["ips"][0]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(ip_b.starts_with("10.91.7."), "{rb}");

    // The switch knows its containers: port named after the container, with
    // its id and namespace, in JSON and in the table.
    let ports = sw.json(&["port", "list"]);
    let pa = port_of(&ports, &a).unwrap_or_else(|| panic!("no port for a: {ports}"));
    assert_eq!(pa["name"], a.name.as_str());
    assert_eq!(pa["netns"], a.path.as_str());
    assert_eq!(pa["container"]["netns"], a.path.as_str());
    assert_eq!(pa["ifname"], a.host().as_str());
    assert_eq!(pa["mac"], ra["interfaces"][1]["mac"]);
    let table = sw.ok(&["port", "list"]);
    assert!(table.contains(&a.id[..12]), "{table}");
    let show = sw.ok(&["show"]);
    assert!(show.contains(&format!("container: {}", a.id)), "{show}");

    // Traffic through the switch, learned under the containers' port names.
    let (_, got) = ping(&a.ns, &ip_b, &[]);
    assert!(got > 0, "a cannot ping b at {ip_b}");
    let fdb = sw.json(&["fdb", "show"]);
    for c in [&a, &b] {
        assert!(
            fdb.as_array()
                .unwrap()
                .iter()
                .any(|e| e["port"] == c.name.as_str()),
            "no FDB entry on port {}: {fdb}",
            c.name
        );
    }

    // A third container on VLAN 20 (the port's setting comes from the
    // network config) reaches neither.
    let net20 = conf(
        &sw,
        "10.91.7.0/24",
        json!({"vlan": {"mode": "access", "tag": 20}, "policy": {"max_learned": 8}}),
    );
    let (ok, rv) = v20.call("ADD", &net20);
    assert!(ok, "ADD v: {rv}");
    let ports = sw.json(&["port", "list"]);
    let pv = port_of(&ports, &v20).unwrap();
    assert_eq!(
        pv["policy"]["vlan"],
        json!({"mode": "access", "tag": 20}),
        "{pv}"
    );
    assert_eq!(pv["max_learned"], 8, "{pv}");
    let (_, got) = ping(&v20.ns, &ip_b, &[]);
    assert_eq!(got, 0, "VLAN 20 reached VLAN-less b");

    // CHECK with the ADD's result passes; it fails, saying why, when an
    // address is gone.
    let (ok, v) = a.call("CHECK", &with_prev(&net, &ra));
    assert!(ok, "CHECK a: {v}");
    let (ok, v) = v20.call("CHECK", &with_prev(&net, &rv));
    assert!(!ok, "CHECK must see the VLAN differ from this config");
    assert!(v["msg"].as_str().unwrap().contains("VLAN settings"), "{v}");
    let addr_a = ra["ips"][0]["address"].as_str().unwrap();
    l2sw::netns::run_in(&a.ns, || {
        Command::new("ip")
            .args(["addr", "del", addr_a, "dev", "eth0"])
            .status()
    })
    .unwrap()
    .unwrap();
    let (ok, v) = a.call("CHECK", &with_prev(&net, &ra));
    assert!(!ok);
    assert_eq!(v["code"], 103, "{v}");
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains(&format!("lacks address {addr_a}")),
        "{v}"
    );

    // DEL twice: the second finds nothing and still succeeds.
    for round in 1..=2 {
        let (ok, v) = a.call("DEL", &with_prev(&net, &ra));
        assert!(ok, "DEL a (round {round}): {v}");
    }
    assert!(port_of(&sw.json(&["port", "list"]), &a).is_none());
    assert!(!l2sw::netns::link_exists(None, &a.host()));
    assert!(!l2sw::netns::link_exists(Some(&a.ns), "eth0"));
    // Its address went back to host-local: the next ADD may take it again.
    let leases = std::fs::read_dir(sw.run_dir.join("ipam").join(net["name"].as_str().unwrap()))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert!(
        !leases
            .iter()
            .any(|l| addr_a.starts_with(l.as_str()) && l.contains('.')),
        "{leases:?}"
    );
    let (ok, v) = a.call("CHECK", &with_prev(&net, &ra));
    assert!(!ok);
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains("has no port for interface eth0"),
        "{v}"
    );

    // GC: only b is still in use on this network; v's port goes.
    let mut gc = net.clone();
    gc["cniVersion"] = json!("1.1.0");
    gc["cni.dev/valid-attachments"] = json!([{"containerID": b.id, "ifname": "eth0"}]);
    let (ok, v) = cni("GC", &gc, &[]);
    assert!(ok, "GC: {v}");
    let ports = sw.json(&["port", "list"]);
    assert!(port_of(&ports, &b).is_some(), "GC kept b: {ports}");
    // v20 was attached through another config of the same network name.
    assert!(port_of(&ports, &v20).is_none(), "GC removed v: {ports}");
    assert!(!l2sw::netns::link_exists(None, &v20.host()));

    // STATUS: fine while the switch runs, code 50 once it is gone; DEL
    // still succeeds then.
    let mut status = net.clone();
    status["cniVersion"] = json!("1.1.0");
    let (ok, v) = cni("STATUS", &status, &[]);
    assert!(ok, "STATUS: {v}");
    assert!(sw.stop());
    let (ok, v) = cni("STATUS", &status, &[]);
    assert!(!ok);
    assert_eq!(v["code"], 50, "{v}");
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains(&format!("switch {} is not reachable", sw.name)),
        "{v}"
    );
    let (ok, v) = b.call("DEL", &with_prev(&net, &rb));
    assert!(ok, "DEL b with the switch down: {v}");
    assert!(!l2sw::netns::link_exists(None, &b.host()));
}

#[test]
fn bad_configs_and_environments_get_cni_errors_and_leave_nothing() {
    let mut sw = Switch::start("cnie");
    let a = Container::new(&mut sw, "a");
    let net = conf(&sw, "10.91.8.0/24", json!({}));
    let err = |conf: &Value, vars: &[(&str, &str)]| {
        let (ok, v) = cni("ADD", conf, vars);
        assert!(!ok, "ADD should fail: {v}");
        (
            v["code"].as_u64().unwrap(),
            v["msg"].as_str().unwrap().to_string(),
        )
    };
    let vars = a.vars();
    let full: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let mut bad_version = net.clone();
    bad_version["cniVersion"] = json!("0.4.0");
    let (c, m) = err(&bad_version, &full);
    assert_eq!(
        (c, m.contains("cniVersion \"0.4.0\" is not supported")),
        (1, true),
        "{m}"
    );

    let mut no_switch = net.clone();
    no_switch.as_object_mut().unwrap().remove("switch");
    let (c, m) = err(&no_switch, &full);
    assert_eq!((c, m.contains("missing field `switch`")), (7, true), "{m}");

    let mut bad_vlan = net.clone();
    bad_vlan["vlan"] = json!({"mode": "trunk", "tag": 5});
    let (c, m) = err(&bad_vlan, &full);
    assert_eq!(
        (c, m.contains("vlan: --mode trunk takes no --tag")),
        (7, true),
        "{m}"
    );

    let mut bad_ipam = net.clone();
    bad_ipam["ipam"]["type"] = json!("no-such-ipam");
    let (c, m) = err(&bad_ipam, &full);
    assert_eq!(
        (
            c,
            m.contains("IPAM plugin \"no-such-ipam\" not found in CNI_PATH")
        ),
        (7, true),
        "{m}"
    );

    let (c, m) = err(&net, &full[..1]);
    assert_eq!((c, m.contains("CNI_IFNAME is not set")), (4, true), "{m}");

    let mut gone = full.clone();
    gone[1] = ("CNI_NETNS", "/run/netns/l2sw-no-such-ns");
    let (c, m) = err(&net, &gone);
    assert_eq!(
        (
            c,
            m.contains("network namespace /run/netns/l2sw-no-such-ns")
        ),
        (3, true),
        "{m}"
    );

    let mut other = net.clone();
    other["switch"] = json!(format!("{}x", sw.name));
    let (c, m) = err(&other, &full);
    assert_eq!((c, m.contains("is not reachable")), (100, true), "{m}");

    // Malformed JSON on stdin.
    let mut child = Command::new(CNI)
        .env_clear()
        .env("CNI_COMMAND", "ADD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"cniVersion\":")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], 6, "{v}");

    // The IPAM plugin's own error passes through with its code, and the
    // ADD leaves neither a link nor a port behind.
    let mut bad_subnet = net.clone();
    bad_subnet["ipam"]["subnet"] = json!("10.91.8.0/33");
    let (c, m) = err(&bad_subnet, &full);
    assert!(m.starts_with("IPAM plugin host-local (ADD):"), "{c} {m}");
    assert!(!l2sw::netns::link_exists(None, &a.host()));
    assert!(sw.json(&["port", "list"]).as_array().unwrap().is_empty());
    assert!(!l2sw::netns::link_exists(Some(&a.ns), "eth0"));

    // VERSION needs nothing but the command.
    let (ok, v) = cni("VERSION", &json!({"cniVersion": "1.0.0"}), &[]);
    assert!(ok);
    assert_eq!(v["supportedVersions"], json!(["1.0.0", "1.1.0"]));
}

/// A runtime does not call ADD again for running containers: the switch
/// attaches them again itself when it starts after a `kill -9` or a clean
/// stop (from its journal), with the same port names, VLAN and policy.
#[test]
fn container_ports_are_attached_again_after_a_kill_and_after_a_clean_stop() {
    let mut sw = Switch::start("cnir");
    let a = Container::new(&mut sw, "a");
    let b = Container::new(&mut sw, "b");
    let v20 = Container::new(&mut sw, "v");
    let d = Container::new(&mut sw, "d");
    let net = conf(&sw, "10.91.9.0/24", json!({}));
    let net20 = conf(
        &sw,
        "10.91.9.0/24",
        json!({"vlan": {"mode": "access", "tag": 20}, "policy": {"max_learned": 8}}),
    );
    let (ok, ra) = a.call("ADD", &net);
    assert!(ok, "ADD a: {ra}");
    let (ok, rb) = b.call("ADD", &net);
    assert!(ok, "ADD b: {rb}");
    let (ok, rv) = v20.call("ADD", &net20);
    assert!(ok, "ADD v: {rv}");
    let (ok, rd) = d.call("ADD", &net);
    assert!(ok, "ADD d: {rd}");
    let ip_b = rb["ips"][0]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(
        ping(&a.ns, &ip_b, &[]).1 > 0,
        "a cannot ping b before the kill"
    );

    // What a user checks after each restart: the same ports, traffic,
    // FDB, VLAN separation, and CHECK with the ADD's results.
    let attached_as_before = |sw: &Switch, when: &str| {
        let ports = sw.json(&["port", "list"]);
        for c in [&a, &b, &v20] {
            let p = port_of(&ports, c)
                .unwrap_or_else(|| panic!("{when}: no port for {}: {ports}", c.name));
            assert_eq!(p["name"], c.name.as_str(), "{when}: {p}");
            assert_eq!(p["ifname"], c.host().as_str(), "{when}: {p}");
            assert_eq!(p["netns"], c.path.as_str(), "{when}: {p}");
            assert_eq!(p["container"]["ifname"], "eth0", "{when}: {p}");
        }
        let pv = port_of(&ports, &v20).unwrap();
        assert_eq!(
            pv["policy"]["vlan"],
            json!({"mode": "access", "tag": 20}),
            "{when}: {pv}"
        );
        assert_eq!(pv["max_learned"], 8, "{when}: {pv}");
        assert!(
            port_of(&ports, &d).is_none(),
            "{when}: d's veth is gone: {ports}"
        );
        assert!(ping(&a.ns, &ip_b, &[]).1 > 0, "{when}: a cannot ping b");
        let fdb = sw.json(&["fdb", "show"]);
        for c in [&a, &b] {
            assert!(
                fdb.as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["port"] == c.name.as_str()),
                "{when}: no FDB entry on port {}: {fdb}",
                c.name
            );
        }
        assert_eq!(ping(&v20.ns, &ip_b, &[]).1, 0, "{when}: VLAN 20 reached b");
        for (c, conf, r) in [(&a, &net, &ra), (&b, &net, &rb), (&v20, &net20, &rv)] {
            let (ok, v) = c.call("CHECK", &with_prev(conf, r));
            assert!(ok, "{when}: CHECK {}: {v}", c.name);
        }
    };

    // kill -9: nothing is cleaned up; d's container stops meanwhile (its
    // namespace goes and the kernel deletes its veth).
    sw.kill();
    assert!(
        l2sw::netns::link_exists(None, &a.host()),
        "the container keeps its veth"
    );
    l2sw::netns::delete(&d.ns).unwrap();
    assert!(common::eventually(
        std::time::Duration::from_secs(10),
        || { !l2sw::netns::link_exists(None, &d.host()) }
    ));
    sw.restart_logged();
    let log = sw.log();
    for c in [&a, &b, &v20] {
        let line = format!("container {}", &c.id[..12]);
        assert!(
            log.lines()
                .any(|l| l.contains(&line)
                    && l.contains(&format!("attached again as port {}", c.name))),
            "no re-attach line for {}:\n{log}",
            c.name
        );
    }
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("container {}", &d.id[..12]))
                && l.contains(&format!(
                    "not attached again: its veth {} is gone",
                    d.host()
                ))),
        "d not reported:\n{log}"
    );
    attached_as_before(&sw, "after kill -9");

    // A clean stop keeps the journal for the containers only; `list` says so.
    assert!(sw.stop());
    let listed = sw.json(&["list"]);
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == sw.name.as_str())
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(
        (&row["state"], &row["containers"]),
        (&json!("stopped"), &json!(3)),
        "{row}"
    );
    sw.restart_logged();
    assert!(!sw.log().contains("without cleaning up"), "{}", sw.log());
    attached_as_before(&sw, "after a clean stop");

    // Once DEL ran for all, a clean stop leaves no journal.
    for (c, conf, r) in [
        (&a, &net, &ra),
        (&b, &net, &rb),
        (&v20, &net20, &rv),
        (&d, &net, &rd),
    ] {
        let (ok, v) = c.call("DEL", &with_prev(conf, r));
        assert!(ok, "DEL {}: {v}", c.name);
    }
    assert!(sw.stop());
    assert!(!sw.run_dir.join(format!("{}.state", sw.name)).exists());
}
