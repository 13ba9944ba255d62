//! The lab fixture for integration tests: a switch process with a unique
//! name and socket directory, namespaces plugged into it, raw-frame
//! endpoints inside them, and cleanup on drop even when a test fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use l2sw::netns;
use l2sw::port::afpacket::AfPacketPort;
use l2sw::port::{Port, PortKind, RxBatch, TxFrame};
use l2sw::wire::{write_header, MacAddr};
use serde_json::Value;

pub mod diff;
pub mod frames;
pub mod guest;
pub mod reference;

pub const BIN: &str = env!("CARGO_BIN_EXE_l2sw");

/// Fails the test (never skips it) when not root.
pub fn require_root() {
    if !l2sw::demo::is_root() {
        panic!(
            "this test needs root (it creates network namespaces, veth pairs and TAP devices): run `sudo cargo test --release`"
        );
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A short name unique to this process and call: `tag` + pid + sequence.
pub fn unique(tag: &str) -> String {
    format!(
        "{tag}{}{}",
        std::process::id() % 100_000,
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// A running `l2sw run` process.
pub struct Switch {
    pub name: String,
    pub run_dir: PathBuf,
    child: Option<Child>,
    /// Namespaces and links this test may have caused; removed on drop if the
    /// switch did not remove them.
    netns: Vec<String>,
    links: Vec<String>,
}

impl Switch {
    pub fn start(tag: &str) -> Switch {
        Self::start_with(tag, &[])
    }

    /// Starts `l2sw run EXTRA...` and waits for its control socket.
    pub fn start_with(tag: &str, extra: &[&str]) -> Switch {
        Self::spawn(tag, extra, false)
    }

    /// Like `start_with`, with the switch's stderr going to a file that
    /// [`log`](Self::log) reads.
    pub fn start_logged(tag: &str, extra: &[&str]) -> Switch {
        Self::spawn(tag, extra, true)
    }

    /// What a switch started with `start_logged` wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.run_dir.join("stderr.log")).unwrap_or_default()
    }

    fn spawn(tag: &str, extra: &[&str], logged: bool) -> Switch {
        require_root();
        let name = unique(tag);
        let run_dir = std::env::temp_dir().join(format!("l2sw-test-{name}"));
        std::fs::create_dir_all(&run_dir).unwrap();
        let child = Self::launch(&name, &run_dir, extra, logged);
        let mut sw = Switch {
            name,
            run_dir,
            child: Some(child),
            netns: Vec::new(),
            links: Vec::new(),
        };
        sw.wait_ready();
        sw
    }

    /// Starts the switch again after [`stop`](Self::stop): the same name
    /// and run directory (plain `l2sw run`, stderr inherited), so its
    /// namespaces come back under the same names when plugged again.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a running switch");
        self.child = Some(Self::launch(&self.name, &self.run_dir, &[], false));
        self.wait_ready();
    }

    /// Like [`restart`](Self::restart), with stderr going to a fresh
    /// `stderr.log` that [`log`](Self::log) reads.
    pub fn restart_logged(&mut self) {
        assert!(self.child.is_none(), "restart of a running switch");
        self.child = Some(Self::launch(&self.name, &self.run_dir, &[], true));
        self.wait_ready();
    }

    /// SIGKILL (no cleanup, as a crash) and wait for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn launch(name: &str, run_dir: &Path, extra: &[&str], logged: bool) -> Child {
        let stderr = if logged {
            Stdio::from(std::fs::File::create(run_dir.join("stderr.log")).unwrap())
        } else {
            Stdio::inherit()
        };
        Command::new(BIN)
            .args(["--name", name, "--run-dir"])
            .arg(run_dir)
            .arg("run")
            .args(extra)
            .stdin(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start l2sw")
    }

    pub fn socket(&self) -> PathBuf {
        self.run_dir.join(format!("{}.sock", self.name))
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("l2sw exited during startup: {status}");
                }
            }
            if self.cli(&["status"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("l2sw {} did not answer on {:?}", self.name, self.socket());
    }

    /// A namespace name unique to this switch.
    pub fn ns(&mut self, short: &str) -> String {
        let n = format!("{}-{short}", self.name);
        self.netns.push(n.clone());
        n
    }

    /// Remembers a link to delete on drop.
    pub fn own_link(&mut self, name: &str) {
        self.links.push(name.to_string());
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(["--name", &self.name, "--run-dir"])
            .arg(&self.run_dir)
            .args(args)
            .output()
            .expect("run l2sw client")
    }

    /// Runs a client command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "l2sw {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a client command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            !out.status.success(),
            "l2sw {args:?} should have failed but printed {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).expect("valid JSON")
    }

    /// Plugs a namespace: `ns plug NS --ip IP --mac MAC [EXTRA...]`.
    pub fn plug(&mut self, short: &str, ip: &str, mac: &str, extra: &[&str]) -> String {
        let ns = self.ns(short);
        let mut args = vec!["ns", "plug", &ns, "--ip", ip, "--mac", mac];
        args.extend_from_slice(extra);
        self.ok(&args);
        ns
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGTERM and wait; returns whether it exited successfully.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return st.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.stop();
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

/// Pings `addr` from `ns`; returns (sent, received).
pub fn ping(ns: &str, addr: &str, extra: &[&str]) -> (u32, u32) {
    let mut args = vec!["-c", "3", "-i", "0.2", "-W", "2"];
    args.extend_from_slice(extra);
    args.push(addr);
    let (s, r, _) = l2sw::demo::ping_args(ns, &args).expect("ping runs");
    (s, r)
}

/// A raw-frame endpoint on an interface inside a namespace.
pub struct Endpoint {
    port: AfPacketPort,
    batch: RxBatch,
    /// Frames read while looking for others, kept for the next `collect`.
    backlog: Vec<Vec<u8>>,
}

/// EtherType for test frames (IEEE 802 local experimental).
pub const TEST_ETHERTYPE: u16 = 0x88b5;

impl Endpoint {
    pub fn open(ns: &str, ifname: &str) -> Endpoint {
        let port = netns::run_in(ns, || AfPacketPort::open(ifname, PortKind::Iface))
            .expect("enter namespace")
            .expect("open AF_PACKET socket in namespace");
        Endpoint {
            port,
            batch: RxBatch::new(32),
            backlog: Vec::new(),
        }
    }

    pub fn send(&mut self, frame: &[u8]) {
        let (n, err) = self.port.send_batch(&[TxFrame::plain(frame)]);
        assert_eq!(n, 1, "send failed: {err:?}");
    }

    /// Frames of TEST_ETHERTYPE carrying `marker` that arrive within `wait`.
    pub fn collect(&mut self, marker: &[u8], wait: Duration) -> Vec<Vec<u8>> {
        self.collect_where(|f| is_test_frame(f, marker), wait)
    }

    /// Frames matching `pred` that arrive within `wait`.
    pub fn collect_where(&mut self, pred: impl Fn(&[u8]) -> bool, wait: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + wait;
        let (mut out, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.backlog)
            .into_iter()
            .partition(|f| pred(f));
        self.backlog = rest;
        while Instant::now() < deadline {
            let n = self.port.recv_batch(&mut self.batch).expect("recv");
            for s in self.batch.iter().take(n) {
                let f = s.frame();
                if pred(f) {
                    out.push(f.to_vec());
                } else if self.backlog.len() < 10_000 {
                    self.backlog.push(f.to_vec());
                }
            }
            if n == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        out
    }

    /// Frames matching `pred` that have already arrived, without waiting:
    /// lets one thread watch many endpoints at once. Other frames are
    /// discarded (kept frames from the backlog are returned first).
    pub fn poll_where(&mut self, pred: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
        let (mut out, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.backlog)
            .into_iter()
            .partition(|f| pred(f));
        self.backlog = rest;
        loop {
            let n = self.port.recv_batch(&mut self.batch).expect("recv");
            for s in self.batch.iter().take(n) {
                if pred(s.frame()) {
                    out.push(s.frame().to_vec());
                }
            }
            if n == 0 {
                return out;
            }
        }
    }

    /// Forgets everything received so far.
    pub fn drain(&mut self) {
        self.collect_where(|_| true, Duration::from_millis(50));
    }
}

fn is_test_frame(f: &[u8], marker: &[u8]) -> bool {
    f.len() >= 14 + marker.len()
        && f[12..14] == TEST_ETHERTYPE.to_be_bytes()
        && f[14..14 + marker.len()] == *marker
}

/// A test frame of `len` bytes: header, marker, then a byte pattern.
pub fn test_frame(dst: MacAddr, src: MacAddr, marker: &[u8], len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    write_header(&mut f, dst, src, TEST_ETHERTYPE).unwrap();
    f[14..14 + marker.len()].copy_from_slice(marker);
    f
}

pub fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// Sends `bytes` of a known pattern over TCP from namespace `from` to a
/// server in namespace `to` at `addr:port`; returns what the server received
/// intact (it checks every byte).
pub fn tcp_transfer(from: &str, to: &str, addr: &str, port: u16, bytes: usize) -> usize {
    use std::io::{Read, Write};
    let pattern = |i: usize| (i % 253) as u8;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let to = to.to_string();
    let bind = format!("{addr}:{port}");
    let server = std::thread::spawn(move || {
        netns::run_in(&to, move || {
            let l = std::net::TcpListener::bind(&bind).expect("bind in namespace");
            ready_tx.send(()).unwrap();
            let (mut s, _) = l.accept().expect("accept");
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut buf = vec![0u8; 65536];
            let mut good = 0usize;
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        for &b in &buf[..n] {
                            if b != pattern(good) {
                                return good;
                            }
                            good += 1;
                        }
                    }
                }
            }
            good
        })
        .expect("enter server namespace")
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server ready");
    let target = format!("{addr}:{port}");
    netns::run_in(from, move || {
        let mut s =
            std::net::TcpStream::connect_timeout(&target.parse().unwrap(), Duration::from_secs(10))
                .expect("connect through the switch");
        s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        let data: Vec<u8> = (0..bytes).map(pattern).collect();
        s.write_all(&data).expect("send through the switch");
    })
    .expect("enter client namespace");
    server.join().unwrap()
}

/// Sends UDP datagrams of `size` bytes from `from` to `to`; returns how many
/// arrived with the right contents.
pub fn udp_exchange(
    from: &str,
    to: &str,
    addr: &str,
    port: u16,
    size: usize,
    count: usize,
) -> usize {
    let to = to.to_string();
    let bind = format!("{addr}:{port}");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        netns::run_in(&to, move || {
            let s = std::net::UdpSocket::bind(&bind).expect("bind udp");
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            ready_tx.send(()).unwrap();
            let mut buf = vec![0u8; 65536];
            let mut good = 0;
            while let Ok(n) = s.recv(&mut buf) {
                if n == size
                    && buf[..n]
                        .iter()
                        .enumerate()
                        .all(|(i, &b)| b == (i % 251) as u8)
                {
                    good += 1;
                }
                if good == count {
                    break;
                }
            }
            good
        })
        .expect("enter namespace")
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let target = format!("{addr}:{port}");
    netns::run_in(from, move || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        for _ in 0..count {
            s.send_to(&data, &target).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    })
    .unwrap();
    server.join().unwrap()
}
