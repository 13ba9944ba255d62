//! Helpers for the backends' tests, which need root and real devices: unique
//! names, guards that delete what a test created even when it fails, frame
//! builders and a polling receive.

use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{sys, Port, RxBatch, RxStatus};

/// EtherType of every test frame (IEEE 802 local experimental 1), so frames
/// the kernel sends on its own (IPv6 ND, MLD) are told apart.
pub const TEST_ETHERTYPE: u16 = 0x88b5;

/// Panics unless running as root: these tests must never pass silently.
pub fn require_root() {
    if sys::effective_uid() != 0 {
        panic!("this test needs root (CAP_NET_ADMIN)");
    }
}

/// A device name unique to this process and test: "l2t<pid><tag>", at most
/// 15 bytes for a tag of up to 4.
pub fn dev_name(tag: &str) -> String {
    let name = format!("l2t{}{}", std::process::id() % 100_000, tag);
    assert!(name.len() <= 15, "test device name {name} too long");
    name
}

/// Runs `ip ARGS`, panicking with its stderr when it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether `ip link show NAME` finds the device.
pub fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Keeps the kernel's own IPv6 traffic (router solicitations, MLD) off a
/// test link. Best effort: IPv6 may be absent.
pub fn quiet_ipv6(name: &str) {
    let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1");
}

/// Deletes a link when dropped (`ip link del`), failure ignored: the test may
/// already have deleted it.
pub struct LinkGuard(pub String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", "dev", &self.0])
            .output();
    }
}

/// Deletes a network namespace when dropped.
pub struct NetnsGuard(pub String);

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// A veth pair `a` <-> `b`, both up, IPv6 off; deleted when dropped.
pub fn veth_pair(a: &str, b: &str) -> LinkGuard {
    ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
    let guard = LinkGuard(a.to_string());
    quiet_ipv6(a);
    quiet_ipv6(b);
    ip(&["link", "set", a, "up"]);
    ip(&["link", "set", b, "up"]);
    guard
}

/// Sends probe frames from `a` until `b` receives one. A veth that was just
/// set up drops what it is given until linkwatch, asynchronously, notices the
/// carrier and activates its queueing discipline (up to a second later), and
/// it does so silently: the send itself succeeds.
pub fn wait_until_passing(a: &mut dyn Port, b: &mut dyn Port) {
    const PROBE_TAG: u8 = 0xee;
    let probe = test_frame(PROBE_TAG, 0, 60);
    let mut batch = RxBatch::new(8);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(
            Instant::now() < deadline,
            "link {} never passed frames",
            a.name()
        );
        let _ = crate::port::send_plain(a, &[&probe]);
        if !recv_frames(b, &mut batch, PROBE_TAG, 1, Duration::from_millis(20)).is_empty() {
            return;
        }
    }
}

/// A test frame of `len` bytes: broadcast destination, source
/// 02:00:00:00:<tag>:<seq>, TEST_ETHERTYPE, then a payload pattern derived
/// from `seq` so reordering or corruption shows.
pub fn test_frame(tag: u8, seq: u8, len: usize) -> Vec<u8> {
    assert!(len >= 14);
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, tag, seq]);
    f.extend_from_slice(&TEST_ETHERTYPE.to_be_bytes());
    f.extend((0..len - 14).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seq)));
    f
}

/// Inserts a VLAN tag (TPID, TCI) after the MAC addresses.
pub fn tagged(frame: &[u8], tpid: u16, tci: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&tpid.to_be_bytes());
    f.extend_from_slice(&tci.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

/// Whether a received frame is one of ours (source 02:00:00:00:<tag>:xx),
/// tagged or not.
pub fn is_test_frame(frame: &[u8], tag: u8) -> bool {
    frame.len() >= 14 && frame[6..11] == [0x02, 0, 0, 0, tag]
}

/// Polls `port` until `want` frames matching `tag` arrived or `timeout`
/// passed; returns them in arrival order. Truncated frames fail the test.
pub fn recv_frames(
    port: &mut dyn Port,
    batch: &mut RxBatch,
    tag: u8,
    want: usize,
    timeout: Duration,
) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        let n = port.recv_batch(batch).expect("recv_batch");
        assert_eq!(n, batch.len());
        for slot in batch.iter() {
            if is_test_frame(slot.frame(), tag) {
                assert_eq!(slot.status(), RxStatus::Complete, "frame truncated");
                got.push(slot.frame().to_vec());
            }
        }
        if n == 0 {
            sleep(Duration::from_millis(5));
        }
    }
    got
}
