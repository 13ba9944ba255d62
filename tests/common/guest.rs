//! Real QEMU guests for integration tests.
//!
//! [`image`] builds a tiny guest once per recipe version and caches it under
//! `target/l2sw-guest-vN/`: the kernel of Debian's `linux-image-amd64`
//! (unpacked with `dpkg-deb -x`, never installed), its virtio modules, and a
//! busybox-static initramfs with iperf3 and its libraries. The guest's init
//! loads the modules, gives eth0 the address from `l2sw.ip=`, runs the shell
//! script base64-encoded in `l2sw.cmd=`, prints `L2SW-BEGIN`, the script's
//! output and `L2SW-END rc=N` on the serial console, and powers off.
//!
//! Two test processes may build at once: each builds in its own temporary
//! directory and renames it into place; the loser drops its copy.
//!
//! [`Vm`] runs QEMU under TCG (KVM hangs on this kind of machine) and kills
//! it by PID when dropped, on every exit path of a test.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Bump when the recipe (init script, file list, modules) changes.
const RECIPE_VERSION: u32 = 2;

/// The modules virtio-net needs in Debian's kernel, in load order.
const MODULES: &[&str] = &[
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
];

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m || echo "L2SW-WARN insmod $m failed"; done
IP=
CMD=
for a in $(cat /proc/cmdline); do
  case "$a" in
    l2sw.ip=*) IP="${a#l2sw.ip=}" ;;
    l2sw.cmd=*) CMD="${a#l2sw.cmd=}" ;;
  esac
done
ip link set lo up
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done
if [ -e /sys/class/net/eth0 ]; then
  [ -n "$IP" ] && ip addr add "$IP" dev eth0
  ip link set eth0 up
else
  echo "L2SW-WARN no eth0"
fi
echo "$CMD" | base64 -d > /script
echo L2SW-BEGIN
sh /script
echo "L2SW-END rc=$?"
sync
poweroff -f
"#;

/// Paths of the cached guest.
pub struct GuestImage {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

static IMAGE: OnceLock<GuestImage> = OnceLock::new();

/// The guest, built on first use (a few seconds; the kernel package is
/// downloaded once into apt's cache if it is not there).
pub fn image() -> &'static GuestImage {
    IMAGE.get_or_init(|| build().unwrap_or_else(|e| panic!("cannot build the test guest: {e}")))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn build() -> Result<GuestImage, String> {
    let dir = target_dir().join(format!("l2sw-guest-v{RECIPE_VERSION}"));
    let img = GuestImage {
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.cpio"),
    };
    if dir.join("ready").exists() {
        return Ok(img);
    }
    let tmp = target_dir().join(format!(
        "l2sw-guest-v{RECIPE_VERSION}.tmp{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
    let res = build_into(&tmp);
    if let Err(e) = res {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if fs::rename(&tmp, &dir).is_err() {
        // Another process won the race; its copy is as good as ours.
        let _ = fs::remove_dir_all(&tmp);
        if !dir.join("ready").exists() {
            return Err(format!("{} exists but is incomplete", dir.display()));
        }
    }
    Ok(img)
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The newest linux-image-*-amd64 .deb in apt's cache, else one downloaded
/// into `tmp` (`apt-get download` of the package the metapackage names).
fn kernel_deb(tmp: &Path) -> Result<PathBuf, String> {
    let cached = |dir: &Path| -> Option<PathBuf> {
        let mut debs: Vec<PathBuf> = fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                n.starts_with("linux-image-")
                    && n.contains("-amd64_")
                    && n.ends_with(".deb")
                    && !n.contains("unsigned")
                    && !n.contains("dbg")
                    && !n.starts_with("linux-image-amd64_")
            })
            .collect();
        debs.sort();
        debs.pop()
    };
    if let Some(d) = cached(Path::new("/var/cache/apt/archives")) {
        return Ok(d);
    }
    let dl = tmp.join("deb");
    fs::create_dir_all(&dl).map_err(|e| e.to_string())?;
    let depends = run(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))?;
    let pkg = depends
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: "))
        .ok_or("apt-cache does not know linux-image-amd64 (run apt-get update)")?
        .trim()
        .to_string();
    run(Command::new("apt-get")
        .args(["download", "-q", &pkg])
        .current_dir(&dl))?;
    cached(&dl).ok_or_else(|| format!("apt-get download {pkg} left no .deb"))
}

fn build_into(tmp: &Path) -> Result<(), String> {
    let deb = kernel_deb(tmp)?;
    let unpacked = tmp.join("kernel");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
    let boot = unpacked.join("boot");
    let vmlinuz = fs::read_dir(&boot)
        .map_err(|e| format!("{}: {e}", boot.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("vmlinuz-")
        })
        .ok_or("no vmlinuz in the kernel package")?;
    fs::copy(&vmlinuz, tmp.join("vmlinuz")).map_err(|e| e.to_string())?;
    let moddir = fs::read_dir(unpacked.join("lib/modules"))
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .next()
        .ok_or("no lib/modules in the kernel package")?;

    let mut cpio = Cpio::default();
    for d in [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "lib",
        "lib/modules",
        "lib64",
        "proc",
        "sys",
        "dev",
        "tmp",
        "etc",
        "root",
    ] {
        cpio.dir(d);
    }
    cpio.file("init", INIT.as_bytes(), 0o755);
    cpio.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644);
    cpio.file("etc/group", b"root:x:0:\n", 0o644);
    let busybox = fs::read("/bin/busybox")
        .map_err(|e| format!("/bin/busybox: {e} (apt-get install busybox-static)"))?;
    cpio.file("bin/busybox", &busybox, 0o755);
    let mut order = String::new();
    for m in MODULES {
        let p = moddir.join("kernel").join(m);
        let base = Path::new(m)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let data = fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        cpio.file(&format!("lib/modules/{base}"), &data, 0o644);
        order.push_str(&base);
        order.push('\n');
    }
    cpio.file("lib/modules/order", order.as_bytes(), 0o644);
    // iperf3 and what ldd says it loads.
    let iperf = which("iperf3").ok_or("iperf3 not found (apt-get install iperf3)")?;
    cpio.file(
        "usr/bin/iperf3",
        &fs::read(&iperf).map_err(|e| e.to_string())?,
        0o755,
    );
    let ldd = run(Command::new("ldd").arg(&iperf))?;
    for line in ldd.lines() {
        let path = match line.split("=>").nth(1) {
            Some(rest) => rest.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let data = fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        let rel = path.trim_start_matches('/');
        if let Some(parent) = Path::new(rel).parent() {
            let mut acc = PathBuf::new();
            for c in parent.components() {
                acc.push(c);
                cpio.dir(&acc.to_string_lossy());
            }
        }
        cpio.file(rel, &data, 0o755);
    }
    fs::write(tmp.join("initrd.cpio"), cpio.finish()).map_err(|e| e.to_string())?;
    fs::remove_dir_all(&unpacked).map_err(|e| e.to_string())?;
    let _ = fs::remove_dir_all(tmp.join("deb"));
    fs::write(tmp.join("ready"), b"").map_err(|e| e.to_string())?;
    Ok(())
}

fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_string_lossy()
        .split(':')
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.exists())
}

/// A cpio archive in the "newc" format the kernel unpacks as initramfs.
#[derive(Default)]
struct Cpio {
    out: Vec<u8>,
    ino: u32,
    dirs: std::collections::HashSet<String>,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let nlink = if mode & 0o040000 != 0 { 2 } else { 1 };
        let fields = [
            self.ino,
            mode,
            0,
            0,
            nlink,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        if self.dirs.insert(name.to_string()) {
            self.entry(name, 0o040755, &[]);
        }
    }

    fn file(&mut self, name: &str, data: &[u8], perm: u32) {
        self.entry(name, 0o100000 | perm, data);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.out
    }
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// How a guest is started.
pub struct VmSpec {
    /// Unique name (used for the serial log).
    pub name: String,
    /// eth0's address in CIDR form, e.g. `10.9.0.2/24`.
    pub ip: String,
    /// eth0's MAC (given to QEMU's virtio-net device).
    pub mac: String,
    /// The shell script the guest runs (busybox sh).
    pub script: String,
    /// QEMU arguments that make the netdev with id `n0` (the device is
    /// added by [`Vm::start`]).
    pub netdev: Vec<String>,
    /// Extra `-device virtio-net-pci` properties, e.g. `mrg_rxbuf=off`.
    pub device_opts: String,
    /// Guest memory in a shared memfd (needed by vhost-user).
    pub shared_memory: bool,
    /// QEMU exits when the guest reboots (default) or reboots it.
    pub allow_reboot: bool,
}

impl VmSpec {
    pub fn new(name: &str, ip: &str, mac: &str, script: &str, netdev: Vec<String>) -> VmSpec {
        VmSpec {
            name: name.to_string(),
            ip: ip.to_string(),
            mac: mac.to_string(),
            script: script.to_string(),
            netdev,
            device_opts: String::new(),
            shared_memory: false,
            allow_reboot: false,
        }
    }
}

/// A running QEMU guest; killed by PID when dropped.
pub struct Vm {
    pub name: String,
    pub log: PathBuf,
    child: Option<Child>,
}

const MEM_MB: u32 = 256;

impl Vm {
    pub fn start(spec: &VmSpec) -> Vm {
        let img = image();
        let log = std::env::temp_dir().join(format!("l2sw-vm-{}.log", spec.name));
        let _ = fs::remove_file(&log);
        // no_timer_check: on a loaded host the TCG guest's timer runs too
        // slowly for the kernel's IO-APIC timer probe, which then panics.
        let cmdline = format!(
            "console=ttyS0 quiet loglevel=3 panic=-1 no_timer_check l2sw.ip={} l2sw.cmd={}",
            spec.ip,
            base64(spec.script.as_bytes())
        );
        assert!(
            cmdline.len() < 2000,
            "guest script too long for the kernel command line"
        );
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args([
            "-accel",
            "tcg",
            "-nodefaults",
            "-no-user-config",
            "-nographic",
        ])
        .args(["-display", "none", "-monitor", "none"])
        .args(["-smp", "1"])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .arg("-kernel")
        .arg(&img.kernel)
        .arg("-initrd")
        .arg(&img.initrd)
        .arg("-append")
        .arg(&cmdline);
        if spec.shared_memory {
            cmd.args(["-m", &format!("{MEM_MB}M")])
                .arg("-object")
                .arg(format!(
                    "memory-backend-memfd,id=mem,size={MEM_MB}M,share=on"
                ))
                .args(["-numa", "node,memdev=mem"]);
        } else {
            cmd.args(["-m", &format!("{MEM_MB}M")]);
        }
        if !spec.allow_reboot {
            cmd.arg("-no-reboot");
        }
        cmd.args(&spec.netdev);
        let mut dev = format!("virtio-net-pci,netdev=n0,mac={},romfile=", spec.mac);
        if !spec.device_opts.is_empty() {
            dev.push(',');
            dev.push_str(&spec.device_opts);
        }
        cmd.arg("-device").arg(dev);
        let err = fs::File::create(log.with_extension("err")).expect("create QEMU stderr log");
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
        let child = cmd.spawn().expect("start qemu-system-x86_64");
        Vm {
            name: spec.name.clone(),
            log,
            child: Some(child),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The serial console so far.
    pub fn console(&self) -> String {
        fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Whether QEMU is still running.
    pub fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits until the console shows `marker` `count` times; returns the
    /// console. `None` on timeout or when QEMU exited first.
    pub fn wait_for_n(&mut self, marker: &str, count: usize, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.console();
            if c.matches(marker).count() >= count {
                return Some(c);
            }
            if !self.running() || Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_for(&mut self, marker: &str, timeout: Duration) -> Option<String> {
        self.wait_for_n(marker, 1, timeout)
    }

    /// Waits for the guest's script to finish and QEMU to exit; returns the
    /// console. Panics (with the console) on timeout.
    pub fn wait_done(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while self.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let c = self.console();
        if self.running() {
            self.kill();
            panic!(
                "guest {} did not finish in {timeout:?}; console:\n{c}",
                self.name
            );
        }
        c
    }

    /// Waits for QEMU to exit (the script finished) up to `timeout`, then
    /// kills it if it is still running; returns the console either way.
    pub fn wait_done_or_timeout(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while self.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill();
        self.console()
    }

    /// Kills QEMU (SIGKILL by PID) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// What QEMU wrote on stderr so far.
    pub fn stderr(&self) -> String {
        fs::read(self.log.with_extension("err"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = fs::remove_file(&self.log);
            let _ = fs::remove_file(self.log.with_extension("err"));
        } else {
            let _ = writeln!(
                std::io::stderr(),
                "guest {} console kept at {}",
                self.name,
                self.log.display()
            );
        }
    }
}

/// `L2SW-RESULT key=value` lines printed by a guest script, by key.
pub fn result(console: &str, key: &str) -> Option<String> {
    let prefix = format!("L2SW-RESULT {key}=");
    console
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix(prefix.as_str()))
        .next_back()
        .map(|s| s.trim().to_string())
}

/// The guest script's exit code, if it finished.
pub fn exit_code(console: &str) -> Option<i32> {
    console
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("L2SW-END rc="))
        .next_back()
        .and_then(|s| s.trim().parse().ok())
}
