//! podman 4.3.1 (Debian 12) with its CNI backend runs `l2sw-cni`: two
//! containers on an l2sw network ping each other through the switch, stop
//! and rm take their ports away, a restart brings one back, a container on
//! another VLAN reaches neither.
//!
//! podman runs with a private world: `--root`/`--runroot` and a
//! containers.conf (CONTAINERS_CONF) of its own under a temporary
//! directory, a private CNI config dir, runc (crun refuses this machine's
//! hybrid cgroup layout), ulimits no higher than ours, and an image
//! imported from busybox-static (no registry is reachable). Never podman's
//! default network (it adds NAT rules), never `podman system reset`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{eventually, unique, Switch};
use serde_json::{json, Value};

const CNI: &str = env!("CARGO_BIN_EXE_l2sw-cni");

/// A private podman; removes its containers, image and directory on drop.
struct Podman {
    dir: PathBuf,
    image: String,
    containers: Vec<String>,
}

impl Podman {
    fn new(tag: &str) -> Podman {
        for (tool, pkg) in [
            ("podman", "podman"),
            ("runc", "runc"),
            ("busybox", "busybox-static"),
        ] {
            let found = std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
                .unwrap_or(false)
                || Path::new("/usr/sbin").join(tool).is_file();
            assert!(
                found,
                "this test needs {tool} (Debian package {pkg}; .ci/run installs it)"
            );
        }
        let dir = std::env::temp_dir().join(format!("l2sw-podman-{tag}"));
        std::fs::create_dir_all(dir.join("net.d")).unwrap();
        let plugins = Path::new(CNI).parent().unwrap();
        std::fs::write(
            dir.join("containers.conf"),
            format!(
                r#"[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "cni"
network_config_dir = "{}"
cni_plugin_dirs = ["{}", "/usr/lib/cni"]
"#,
                dir.join("net.d").display(),
                plugins.display()
            ),
        )
        .unwrap();
        let p = Podman {
            image: format!("localhost/l2sw-test-{tag}"),
            dir,
            containers: Vec::new(),
        };
        p.import_busybox();
        p
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"));
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run podman")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "podman {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A rootfs of busybox and its applets, imported as the test's image.
    fn import_busybox(&self) {
        let rootfs = self.dir.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for applet in ["sh", "ping", "ip", "sleep", "cat"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = self
            .cmd()
            .args(["import", "-", &self.image])
            .stdin(tar.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(tar.wait().unwrap().success(), "tar of the rootfs failed");
        assert!(
            out.status.success(),
            "podman import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A CNI network of `plugin` (one l2sw-cni entry).
    fn network(&self, name: &str, plugin: Value) {
        let conf = json!({"cniVersion": "1.0.0", "name": name, "plugins": [plugin]});
        std::fs::write(
            self.dir.join("net.d").join(format!("{name}.conflist")),
            conf.to_string(),
        )
        .unwrap();
    }

    /// `podman run -d` of a container sleeping on `network`.
    fn start(&mut self, name: &str, network: &str) {
        self.containers.push(name.to_string());
        let image = self.image.clone();
        self.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            network,
            &image,
            "sleep",
            "600",
        ]);
    }

    fn ip(&self, name: &str, network: &str) -> String {
        self.ok(&[
            "inspect",
            "-f",
            &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
            name,
        ])
    }

    /// Packets received by `ping -c 3` from container `from` to `addr`.
    fn ping(&self, from: &str, addr: &str) -> u32 {
        let out = self.run(&["exec", from, "ping", "-c", "3", "-W", "2", addr]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| {
                let (_, rest) = l.split_once(" transmitted, ")?;
                rest.split_whitespace().next()?.parse().ok()
            })
            .unwrap_or(0)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = self.run(&["rm", "-f", "-t", "0", c]);
        }
        let _ = self.run(&["rmi", "-f", &self.image]);
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        // Never remove a tree something is still mounted in.
        if !mounts.contains(self.dir.to_str().unwrap()) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn port_named(sw: &Switch, name: &str) -> Option<Value> {
    sw.json(&["port", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
}

fn capture(sw: &Switch, port: &str, count: &str, file: &Path) -> Child {
    Command::new(common::BIN)
        .args(["--name", &sw.name, "--run-dir"])
        .arg(&sw.run_dir)
        .args(["capture", "--port", port, "--direction", "in", "-c", count])
        .args(["--bpf", "icmp", "-w"])
        .arg(file)
        .spawn()
        .unwrap()
}

#[test]
fn podman_containers_ping_through_l2sw_and_lose_their_ports_when_they_stop() {
    let sw = Switch::start("pm");
    let tag = unique("pm");
    let mut pm = Podman::new(&tag);
    let (net, net20) = (format!("{tag}-a"), format!("{tag}-v20"));
    let plugin = |range: (&str, &str), vlan: Option<Value>| {
        let mut p = json!({
            "type": "l2sw-cni",
            "switch": sw.name,
            "runDir": sw.run_dir,
            "ipam": {
                "type": "host-local",
                "subnet": "10.93.1.0/24",
                "rangeStart": range.0,
                "rangeEnd": range.1,
                "dataDir": pm.dir.join("ipam"),
            },
        });
        if let Some(v) = vlan {
            p["vlan"] = v;
        }
        p
    };
    pm.network(&net, plugin(("10.93.1.10", "10.93.1.99"), None));
    pm.network(
        &net20,
        plugin(
            ("10.93.1.100", "10.93.1.199"),
            Some(json!({"mode": "access", "tag": 20})),
        ),
    );
    let (a, b, v) = (format!("a{tag}"), format!("b{tag}"), format!("v{tag}"));
    pm.start(&a, &net);
    pm.start(&b, &net);
    pm.start(&v, &net20);

    // Ports named after the containers, with their ids.
    let id_a = pm.ok(&["inspect", "-f", "{{.Id}}", &a]);
    let pa = port_named(&sw, &a).expect("a port for container a");
    assert_eq!(pa["container"]["id"], id_a.as_str(), "{pa}");
    assert!(
        pa["netns"].as_str().unwrap().starts_with("/run/netns/"),
        "{pa}"
    );
    let pv = port_named(&sw, &v).expect("a port for container v");
    assert_eq!(pv["policy"]["vlan"], json!({"mode": "access", "tag": 20}));

    let (ip_a, ip_b) = (pm.ip(&a, &net), pm.ip(&b, &net));
    let pcap = pm.dir.join("b.pcapng");
    let mut cap = capture(&sw, &b, "2", &pcap);
    std::thread::sleep(Duration::from_millis(500));
    assert!(pm.ping(&a, &ip_b) > 0, "{a} cannot ping {b} at {ip_b}");
    cap.wait().unwrap();
    // Each record's comment names the port, i.e. the container.
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-T", "fields", "-e", "frame.comment"])
        .output()
        .expect("run tshark");
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(
        seen.lines().filter(|l| l.contains(&b)).count() >= 2,
        "capture on {b} saw: {seen}"
    );
    let fdb = sw.json(&["fdb", "show"]);
    for c in [&a, &b] {
        assert!(
            fdb.as_array()
                .unwrap()
                .iter()
                .any(|e| e["port"] == c.as_str()),
            "no FDB entry on port {c}: {fdb}"
        );
    }
    // VLAN 20 reaches neither.
    assert_eq!(pm.ping(&v, &ip_a), 0, "{v} on VLAN 20 reached {a}");
    assert_eq!(pm.ping(&v, &ip_b), 0, "{v} on VLAN 20 reached {b}");

    // stop and rm take the ports away; a restarted container gets one again.
    pm.ok(&["stop", "-t", "0", &b]);
    assert!(
        eventually(Duration::from_secs(10), || port_named(&sw, &b).is_none()),
        "port {b} still there after podman stop"
    );
    pm.ok(&["start", &b]);
    assert!(
        eventually(Duration::from_secs(10), || port_named(&sw, &b).is_some()),
        "no port {b} after podman start"
    );
    let ip_b = pm.ip(&b, &net);
    assert!(
        pm.ping(&a, &ip_b) > 0,
        "{a} cannot ping restarted {b} at {ip_b}"
    );
    pm.ok(&["rm", "-f", "-t", "0", &a]);
    assert!(
        eventually(Duration::from_secs(10), || port_named(&sw, &a).is_none()),
        "port {a} still there after podman rm"
    );
}
