//! Reference switches for the differential tests, built from the same
//! scenario description as the l2sw side:
//!
//! - [`Ovs`]: a private Open vSwitch (ovsdb-server + ovs-vswitchd) on its own
//!   database, sockets and logs in a temporary directory, run without the
//!   kernel module (`--disable-system`), so only userspace (`netdev`)
//!   datapaths exist. It never touches a system OVS, which may or may not be
//!   running. [`OvsBridge`] is one netdev bridge on it: several scenarios of a
//!   test share one `Ovs` (starting it is the slow part) through separate
//!   bridges.
//! - [`KernelBridge`]: a Linux bridge (STP off, multicast snooping off,
//!   `vlan_filtering` unavailable on this kernel): the reference for per-port
//!   policy, reserved group addresses and learning.
//!
//! Each port is a namespace whose `eth0` is a veth to the switch
//! ([`Wired`]), with IPv6 off so its stack stays quiet. Everything is
//! removed on drop, also when the test fails.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use l2sw::netns;

use super::diff::{Fabric, MirrorCfg, PortCfg, Scenario, Vlan};
use super::{require_root, unique, Endpoint};

/// Runs a command that must succeed; returns its stdout. `what` is for the
/// panic message.
pub fn run_ok(what: &str, cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(args: &[&str]) -> String {
    run_ok("ip", Command::new("ip").args(args))
}

/// Turns IPv6 off inside `ns` (existing and future interfaces), so router
/// solicitations, DAD and MLD reports never enter the switch.
pub fn quiet_namespace(ns: &str) {
    run_ok(
        "disable IPv6 in a test namespace",
        Command::new("ip").args([
            "netns",
            "exec",
            ns,
            "sh",
            "-c",
            "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && \
             echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6",
        ]),
    );
}

/// A namespace with a quiet IPv6-less stack whose `eth0` is a veth to the
/// host end `host`, for a reference switch to take as a port.
pub struct Wired {
    pub ns: String,
    pub host: String,
}

impl Wired {
    pub fn create() -> Wired {
        let w = Wired {
            ns: unique("dfns"),
            host: unique("dfh"),
        };
        netns::create(&w.ns).expect("create namespace");
        quiet_namespace(&w.ns);
        // Created inside the quiet namespace, eth0 starts with IPv6 off.
        netns::create_veth(&w.host, "eth0", &w.ns).expect("create veth");
        netns::disable_ipv6(&w.host).expect("disable IPv6 on the host end");
        w
    }

    /// Brings both ends up and waits until the kernel has activated them, so
    /// the first frame is not lost to a carrier that is not up yet.
    pub fn up(&self) {
        netns::set_up(None, &self.host).expect("host end up");
        netns::set_up(Some(&self.ns), "eth0").expect("eth0 up");
        netns::wait_oper_up(None, &self.host, Duration::from_secs(10)).expect("host end oper up");
        netns::wait_oper_up(Some(&self.ns), "eth0", Duration::from_secs(10)).expect("eth0 oper up");
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::open(&self.ns, "eth0")
    }
}

impl Drop for Wired {
    fn drop(&mut self) {
        // Deleting the namespace deletes eth0 and with it the veth pair.
        if netns::exists(&self.ns) {
            let _ = netns::delete(&self.ns);
        }
        if netns::link_exists(None, &self.host) {
            let _ = netns::delete_link(None, &self.host);
        }
    }
}

/// Where a program is: PATH, then the sbin directories PATH may lack.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/usr/local/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

const OVS_PROGRAMS: [&str; 5] = [
    "ovsdb-tool",
    "ovsdb-server",
    "ovs-vswitchd",
    "ovs-vsctl",
    "ovs-appctl",
];

/// A private Open vSwitch: its own database server and switch daemon, both
/// children of this test thread.
pub struct Ovs {
    dir: PathBuf,
    pkgdata: PathBuf,
    db: Option<Child>,
    vswitchd: Option<Child>,
    /// The network namespace both daemons run in (`None`: the test's own),
    /// so their netdev ports, taps and route table are that namespace's.
    netns: Option<String>,
    pub version: String,
}

impl Ovs {
    /// Starts ovsdb-server and ovs-vswitchd; panics (never skips) with what
    /// to install when Open vSwitch is missing.
    pub fn start() -> Ovs {
        Ovs::start_in(None)
    }

    /// [`Ovs::start`] with both daemons inside namespace `netns` (started
    /// through `ip netns exec`, which execs them: the children are the
    /// daemons themselves). The database and control sockets are files, so
    /// `vsctl`/`appctl` reach them from anywhere.
    pub fn start_in(netns: Option<&str>) -> Ovs {
        require_root();
        let missing: Vec<&str> = OVS_PROGRAMS
            .iter()
            .copied()
            .filter(|p| find_program(p).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "Open vSwitch is the reference for the VLAN and mirror scenarios, but {} not found: \
             `apt-get install openvswitch-switch` (.ci/run does). No OVS service needs to run.",
            missing.join(", ")
        );
        let pkgdata = std::env::var_os("OVS_PKGDATADIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/share/openvswitch"));
        let schema = pkgdata.join("vswitch.ovsschema");
        assert!(
            schema.is_file(),
            "Open vSwitch schema {schema:?} missing: reinstall openvswitch-common"
        );
        let dir = std::env::temp_dir().join(unique("l2sw-diff-ovs-"));
        std::fs::create_dir_all(&dir).expect("create OVS directory");
        let mut ovs = Ovs {
            dir,
            pkgdata,
            db: None,
            vswitchd: None,
            netns: netns.map(str::to_string),
            version: String::new(),
        };
        let db = ovs.path("conf.db");
        run_ok(
            "create the OVS database",
            ovs.command("ovsdb-tool")
                .arg("create")
                .arg(&db)
                .arg(&schema),
        );
        let remote = format!("--remote=punix:{}", ovs.path("db.sock").display());
        ovs.db = Some(ovs.spawn(
            "ovsdb-server",
            &[
                db.to_str().unwrap(),
                &remote,
                &ovs.opt("pidfile", "ovsdb-server.pid"),
                &ovs.opt("unixctl", "ovsdb-server.ctl"),
                &ovs.opt("log-file", "ovsdb-server.log"),
                "--no-chdir",
                "-vconsole:off",
            ],
        ));
        ovs.wait_for("ovsdb-server", |o| {
            o.try_vsctl(&["--no-wait", "--timeout=2", "init"]).is_some()
        });
        let db_arg = format!("unix:{}", ovs.path("db.sock").display());
        ovs.vswitchd = Some(ovs.spawn(
            "ovs-vswitchd",
            &[
                &db_arg,
                &ovs.opt("pidfile", "ovs-vswitchd.pid"),
                &ovs.opt("unixctl", "ovs-vswitchd.ctl"),
                &ovs.opt("log-file", "ovs-vswitchd.log"),
                "--no-chdir",
                // No kernel datapath here, and none wanted: only netdev.
                "--disable-system",
                "-vconsole:off",
            ],
        ));
        ovs.wait_for("ovs-vswitchd", |o| o.try_appctl(&["version"]).is_some());
        ovs.version = ovs
            .appctl(&["version"])
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        ovs
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn opt(&self, name: &str, file: &str) -> String {
        format!("--{name}={}", self.path(file).display())
    }

    /// A command with the environment pointing every OVS default path into
    /// the private directory.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(find_program(program).expect("program"));
        c.env("OVS_RUNDIR", &self.dir)
            .env("OVS_DBDIR", &self.dir)
            .env("OVS_LOGDIR", &self.dir)
            .env("OVS_SYSCONFDIR", &self.dir)
            .env("OVS_PKGDATADIR", &self.pkgdata);
        c
    }

    fn spawn(&self, program: &str, args: &[&str]) -> Child {
        let mut c = match &self.netns {
            None => self.command(program),
            Some(ns) => {
                let mut c = self.command("ip");
                c.args(["netns", "exec", ns])
                    .arg(find_program(program).expect("OVS program"));
                c
            }
        };
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // If the test process dies without unwinding, the daemons follow it
        // instead of running on with our bridges' taps.
        // SAFETY: prctl is async-signal-safe and touches no shared state.
        unsafe {
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        c.spawn().unwrap_or_else(|e| panic!("start {program}: {e}"))
    }

    fn wait_for(&mut self, what: &str, ready: impl Fn(&Ovs) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if ready(self) {
                return;
            }
            let exited = [self.db.as_mut(), self.vswitchd.as_mut()]
                .into_iter()
                .flatten()
                .find_map(|child| child.try_wait().ok().flatten());
            if let Some(st) = exited {
                panic!(
                    "{what} exited during startup ({st}); its log:\n{}",
                    self.log_tail(what)
                );
            }
            assert!(
                Instant::now() < deadline,
                "{what} did not become ready; its log:\n{}",
                self.log_tail(what)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of `daemon`'s log ("ovs-vswitchd", "ovsdb-server").
    pub fn log_tail(&self, daemon: &str) -> String {
        let log = std::fs::read_to_string(self.path(&format!("{daemon}.log"))).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn vsctl_command(&self, args: &[&str]) -> Command {
        let mut c = self.command("ovs-vsctl");
        c.arg(format!("--db=unix:{}", self.path("db.sock").display()))
            .args(args);
        c
    }

    fn try_vsctl(&self, args: &[&str]) -> Option<String> {
        let out = self.vsctl_command(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `ovs-vsctl ARGS`, which waits until ovs-vswitchd has applied the
    /// change; panics on failure.
    pub fn vsctl(&self, args: &[&str]) -> String {
        let mut a = vec!["--timeout=30"];
        a.extend_from_slice(args);
        run_ok("ovs-vsctl", &mut self.vsctl_command(&a))
    }

    fn appctl_command(&self, args: &[&str]) -> Command {
        let mut c = self.command("ovs-appctl");
        c.arg("-t").arg(self.path("ovs-vswitchd.ctl")).args(args);
        c
    }

    fn try_appctl(&self, args: &[&str]) -> Option<String> {
        let out = self.appctl_command(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `ovs-appctl -t ovs-vswitchd ARGS`; panics on failure.
    pub fn appctl(&self, args: &[&str]) -> String {
        run_ok("ovs-appctl", &mut self.appctl_command(args))
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        // The switch first, so it is not left without its database.
        for child in [self.vswitchd.take(), self.db.take()].into_iter().flatten() {
            stop_child(child);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// SIGTERM by PID, wait up to 10 s, then SIGKILL.
fn stop_child(mut child: Child) {
    // SAFETY: plain kill(2) on the PID of our own child, not yet reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `set port P ...` arguments for a VLAN configuration, OVS's vocabulary.
fn ovs_vlan_args(port: &str, vlan: &Vlan) -> Vec<String> {
    let trunks = |t: &[u16]| -> Vec<String> {
        if t.is_empty() {
            Vec::new()
        } else {
            let list: Vec<String> = t.iter().map(u16::to_string).collect();
            vec![format!("trunks={}", list.join(","))]
        }
    };
    let mut a: Vec<String> = ["--", "set", "port", port]
        .iter()
        .map(|s| s.to_string())
        .collect();
    match vlan {
        Vlan::None => return Vec::new(),
        Vlan::Access(tag) => {
            a.push("vlan_mode=access".into());
            a.push(format!("tag={tag}"));
        }
        Vlan::Trunk(t) => {
            a.push("vlan_mode=trunk".into());
            a.extend(trunks(t));
        }
        Vlan::NativeUntagged(tag, t) | Vlan::NativeTagged(tag, t) => {
            let mode = if matches!(vlan, Vlan::NativeUntagged(..)) {
                "native-untagged"
            } else {
                "native-tagged"
            };
            a.push(format!("vlan_mode={mode}"));
            a.push(format!("tag={tag}"));
            a.extend(trunks(t));
        }
    }
    a
}

/// Waits until some AF_PACKET socket in this namespace is bound to `ifname`
/// and running (`/proc/net/packet`): the switch is listening on that port.
pub fn wait_packet_socket(ifname: &str) {
    let ifindex = std::fs::read_to_string(format!("/sys/class/net/{ifname}/ifindex"))
        .unwrap_or_else(|e| panic!("ifindex of {ifname}: {e}"))
        .trim()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let table = std::fs::read_to_string("/proc/net/packet").unwrap_or_default();
        // Columns: sk RefCnt Type Proto Iface R Rmem User Inode.
        let bound = table.lines().skip(1).any(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            c.len() > 5 && c[4] == ifindex && c[5] == "1"
        });
        if bound {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no switch socket on {ifname} (ifindex {ifindex}) after 20 s:\n{table}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One netdev bridge on a private [`Ovs`], its ports veths to namespaces.
pub struct OvsBridge<'a> {
    ovs: &'a Ovs,
    name: String,
    ports: Vec<Wired>,
    endpoints: Vec<Endpoint>,
    /// Scenario mirror name -> OVS mirror name (unique in the database).
    mirrors: Vec<(String, String)>,
}

impl<'a> OvsBridge<'a> {
    pub fn build(ovs: &'a Ovs, sc: &Scenario) -> OvsBridge<'a> {
        let mut br = OvsBridge {
            ovs,
            name: unique("dfo"),
            ports: Vec::new(),
            endpoints: Vec::new(),
            mirrors: Vec::new(),
        };
        assert!(
            sc.group_fwd_mask.is_none() && sc.ports.iter().all(|p| p.policy.is_default()),
            "{}: port policy and group_fwd_mask scenarios use the kernel bridge as reference",
            sc.name
        );
        // One transaction for the bridge and every port: vsctl returns once
        // ovs-vswitchd has applied it, ports polled.
        let mut args: Vec<String> = [
            "add-br",
            &br.name,
            "--",
            "set",
            "bridge",
            &br.name,
            "datapath_type=netdev",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for p in &sc.ports {
            let w = Wired::create();
            args.extend(["--", "add-port", &br.name, &w.host].map(String::from));
            args.extend(ovs_vlan_args(&w.host, &p.vlan));
            br.ports.push(w);
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        ovs.vsctl(&a);
        for m in &sc.mirrors {
            br.add_mirror(m);
        }
        for w in &br.ports {
            w.up();
        }
        // ovs-vsctl returns once the database change is applied, but the
        // netdev datapath opens its receive sockets later: a frame sent
        // before then is lost (counted as rx_dropped on the host end).
        for w in &br.ports {
            wait_packet_socket(&w.host);
        }
        br.endpoints = br.ports.iter().map(Wired::endpoint).collect();
        br
    }

    fn add_mirror(&mut self, m: &MirrorCfg) {
        let name = format!("{}-{}", self.name, m.name);
        let mut args: Vec<String> = Vec::new();
        let mut refs = |ports: &[usize], kind: &str| -> String {
            let ids: Vec<String> = ports
                .iter()
                .map(|&i| {
                    let id = format!("@{kind}{i}");
                    args.extend(
                        [
                            "--",
                            &format!("--id={id}"),
                            "get",
                            "port",
                            &self.ports[i].host,
                        ]
                        .map(String::from),
                    );
                    id
                })
                .collect();
            ids.join(",")
        };
        let src = refs(&m.src, "s");
        let dst = refs(&m.dst, "d");
        let out = refs(&[m.to], "o");
        let mut create = vec![
            "--".to_string(),
            "--id=@m".into(),
            "create".into(),
            "mirror".into(),
            format!("name={name}"),
            format!("output_port={out}"),
        ];
        if !src.is_empty() {
            create.push(format!("select_src_port={src}"));
        }
        if !dst.is_empty() {
            create.push(format!("select_dst_port={dst}"));
        }
        args.extend(create);
        args.extend(["--", "add", "bridge", &self.name, "mirrors", "@m"].map(String::from));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ovs.vsctl(&a);
        self.mirrors.push((m.name.to_string(), name));
    }
}

impl Fabric for OvsBridge<'_> {
    fn label(&self) -> String {
        format!("{} (netdev datapath)", self.ovs.version)
    }

    fn endpoints(&mut self) -> &mut [Endpoint] {
        &mut self.endpoints
    }

    fn set_vlan(&mut self, port: usize, vlan: &Vlan) {
        let host = self.ports[port].host.clone();
        let mut args: Vec<String> = ["clear", "port", &host, "tag", "trunks", "vlan_mode"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(ovs_vlan_args(&host, vlan));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ovs.vsctl(&a);
        self.settled();
    }

    fn del_mirror(&mut self, name: &str) {
        let (_, full) = self
            .mirrors
            .iter()
            .find(|(n, _)| n == name)
            .expect("mirror of this scenario")
            .clone();
        self.ovs.vsctl(&[
            "--", "--id=@m", "get", "mirror", &full, "--", "remove", "bridge", &self.name,
            "mirrors", "@m",
        ]);
        self.settled();
    }

    /// Drops every cached datapath flow, so the next frames are decided on
    /// the current MAC table and configuration rather than by a megaflow a
    /// revalidator has not caught up with yet (a transient OVS artifact, not
    /// behaviour to compare).
    fn settled(&mut self) {
        self.ovs.appctl(&["revalidator/purge"]);
    }

    fn state(&self) -> String {
        let run = |args: &[&str]| {
            self.ovs
                .try_appctl(args)
                .unwrap_or_else(|| format!("({} failed)", args.join(" ")))
        };
        format!(
            "{}\n{}\novs-vswitchd log (last lines):\n{}",
            run(&["fdb/show", &self.name]),
            run(&["dpctl/show", "-s"]),
            self.ovs.log_tail("ovs-vswitchd")
        )
    }
}

impl Drop for OvsBridge<'_> {
    fn drop(&mut self) {
        drop(std::mem::take(&mut self.endpoints));
        let _ = self
            .ovs
            .try_vsctl(&["--timeout=30", "--if-exists", "del-br", &self.name]);
        // A netdev bridge's internal port is a persistent TAP: del-br removes
        // it, but not if ovs-vswitchd is gone already.
        if netns::link_exists(None, &self.name) {
            let _ = netns::delete_link(None, &self.name);
        }
        // `ports` drop next: namespaces and veths go.
    }
}

/// A Linux bridge with STP off and multicast snooping off (l2sw does no
/// snooping), its ports veths to namespaces.
pub struct KernelBridge {
    name: String,
    ports: Vec<Wired>,
    endpoints: Vec<Endpoint>,
}

impl KernelBridge {
    pub fn build(sc: &Scenario) -> KernelBridge {
        require_root();
        assert!(
            sc.mirrors.is_empty() && sc.ports.iter().all(|p| p.vlan == Vlan::None),
            "{}: VLAN and mirror scenarios use Open vSwitch as reference (no 802.1Q in this kernel)",
            sc.name
        );
        let mut br = KernelBridge {
            name: unique("dfk"),
            ports: Vec::new(),
            endpoints: Vec::new(),
        };
        let mut add = vec![
            "link",
            "add",
            &br.name,
            "type",
            "bridge",
            "stp_state",
            "0",
            "mcast_snooping",
            "0",
        ];
        let mask = sc.group_fwd_mask.map(|m| format!("{m:#x}"));
        if let Some(m) = &mask {
            add.extend(["group_fwd_mask", m]);
        }
        let out = Command::new("ip")
            .args(&add)
            .output()
            .expect("run ip (iproute2)");
        assert!(
            out.status.success(),
            "the Linux bridge is the reference for the port policy scenarios, but `ip {}` \
             failed: {} (kernel without CONFIG_BRIDGE, or iproute2 missing?)",
            add.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        netns::disable_ipv6(&br.name).expect("disable IPv6 on the bridge");
        netns::set_up(None, &br.name).expect("bridge up");
        for p in &sc.ports {
            let w = Wired::create();
            ip(&["link", "set", "dev", &w.host, "master", &br.name]);
            let flags = bridge_slave_args(p);
            if !flags.is_empty() {
                let mut a = vec!["link", "set", "dev", &w.host, "type", "bridge_slave"];
                a.extend(flags.iter().map(String::as_str));
                ip(&a);
            }
            w.up();
            br.ports.push(w);
        }
        for w in &br.ports {
            wait_forwarding(&w.host);
        }
        br.endpoints = br.ports.iter().map(Wired::endpoint).collect();
        br
    }
}

/// `bridge_slave` options for a port's policy (only what is not default).
fn bridge_slave_args(p: &PortCfg) -> Vec<String> {
    let onoff = |b: bool| if b { "on" } else { "off" };
    let pol = &p.policy;
    let mut a = Vec::new();
    for (key, v) in [
        ("learning", pol.learning),
        ("flood", pol.flood),
        ("mcast_flood", pol.mcast_flood),
        ("bcast_flood", pol.bcast_flood),
        ("isolated", pol.isolated),
        ("hairpin", pol.hairpin),
    ] {
        if let Some(v) = v {
            a.push(key.to_string());
            a.push(onoff(v).to_string());
        }
    }
    if let Some(m) = pol.group_fwd_mask {
        a.push("group_fwd_mask".into());
        a.push(format!("{m:#x}"));
    }
    a
}

/// With STP off a port forwards as soon as it is up; wait for it anyway.
fn wait_forwarding(host: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = run_ok(
            "bridge link show",
            Command::new("bridge").args(["link", "show", "dev", host]),
        );
        if out.contains("state forwarding") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "bridge port {host} not forwarding: {out}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Fabric for KernelBridge {
    fn label(&self) -> String {
        format!(
            "Linux bridge (kernel {})",
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
        )
    }

    fn endpoints(&mut self) -> &mut [Endpoint] {
        &mut self.endpoints
    }

    fn set_vlan(&mut self, _port: usize, _vlan: &Vlan) {
        panic!("the kernel bridge here has no 802.1Q: VLAN steps need the OVS reference");
    }

    fn del_mirror(&mut self, _name: &str) {
        panic!("the kernel bridge has no mirrors: mirror steps need the OVS reference");
    }

    fn state(&self) -> String {
        Command::new("bridge")
            .args(["fdb", "show", "br", &self.name])
            .output()
            .map(|o| {
                // Only learned entries: the permanent ones are the ports' own.
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter(|l| !l.contains("permanent"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }
}

impl Drop for KernelBridge {
    fn drop(&mut self) {
        drop(std::mem::take(&mut self.endpoints));
        if netns::link_exists(None, &self.name) {
            let _ = netns::delete_link(None, &self.name);
        }
    }
}
