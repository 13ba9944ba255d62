//! Tests of `TapPort` and the persistent-TAP helpers on real TAP devices
//! (root needed), with an `AfPacketPort` on the netdev as the other end.

use std::thread::sleep;
use std::time::{Duration, Instant};

use super::*;
use crate::port::afpacket::AfPacketPort;
use crate::port::testutil::{
    dev_name, ip, link_exists, quiet_ipv6, recv_frames, require_root, test_frame, veth_pair,
    LinkGuard, NetnsGuard,
};
use crate::port::BATCH_SIZE;

const WAIT: Duration = Duration::from_secs(3);

#[test]
fn invalid_names_are_rejected_before_any_syscall() {
    for bad in ["", "sixteen-chars-xx", "a/b", "a b", ".", ".."] {
        assert!(
            matches!(TapPort::create(bad), Err(PortError::InvalidName { .. })),
            "{bad:?}"
        );
        assert!(matches!(
            create_persistent_tap(bad),
            Err(PortError::InvalidName { .. })
        ));
    }
}

/// Frames of each size go queue -> netdev and netdev -> queue unchanged.
fn exchange(tap: &mut TapPort, afp: &mut AfPacketPort, tag: u8, sizes: &[usize]) {
    let mut batch = RxBatch::new(BATCH_SIZE);
    let frames: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| test_frame(tag, i as u8, len))
        .collect();
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();

    let (sent, err) = crate::port::send_plain(tap, &refs);
    assert!(err.is_none(), "TAP send: {err:?}");
    assert_eq!(sent, frames.len());
    let got = recv_frames(afp, &mut batch, tag, frames.len(), WAIT);
    assert_eq!(got, frames, "TAP -> netdev");

    let (sent, err) = crate::port::send_plain(afp, &refs);
    assert!(err.is_none(), "AF_PACKET send: {err:?}");
    assert_eq!(sent, frames.len());
    let got = recv_frames(tap, &mut batch, tag, frames.len(), WAIT);
    assert_eq!(got, frames, "netdev -> TAP");
}

#[test]
fn tap_frames_pass_both_ways_intact() {
    require_root();
    let name = dev_name("t");
    let _guard = LinkGuard(name.clone());
    let mut tap = TapPort::create(&name).expect("create TAP");
    quiet_ipv6(&name);
    assert!(link_exists(&name));

    let info = tap.info();
    assert_eq!(info.kind, PortKind::Tap);
    assert_eq!(info.ifname, name);
    assert_eq!(tap.ifname(), name);
    assert!(info.ifindex.is_some());
    assert!(info.mac.is_some());
    assert_eq!(info.mtu, 1500);
    assert!(info.capabilities.contains(&"vnet-hdr"));
    assert!(!info.capabilities.contains(&"persistent"));

    let mut afp = AfPacketPort::open(&name, PortKind::TapVm).expect("AF_PACKET on TAP");
    assert_eq!(afp.info().kind, PortKind::TapVm);
    exchange(&mut tap, &mut afp, 20, &[60, 1514]);

    ip(&["link", "set", &name, "mtu", "9000"]);
    tap.check().expect("check TAP");
    assert_eq!(tap.mtu(), 9000);
    afp.check().expect("check AF_PACKET");
    assert_eq!(afp.mtu(), 9000);
    exchange(&mut tap, &mut afp, 21, &[9014, 60, 9014]);
}

#[test]
fn tap_short_buffer_reports_truncated() {
    require_root();
    let name = dev_name("tr");
    let _guard = LinkGuard(name.clone());
    let mut tap = TapPort::create(&name).expect("create TAP");
    quiet_ipv6(&name);
    let mut afp = AfPacketPort::open(&name, PortKind::TapVm).expect("AF_PACKET on TAP");
    let frame = test_frame(22, 0, 1000);
    assert_eq!(crate::port::send_plain(&mut afp, &[&frame]).0, 1);

    let mut batch = RxBatch::with_buf_size(4, RX_HEADROOM + 100);
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "frame not received");
        tap.recv_batch(&mut batch).expect("recv");
        if let Some(s) = batch
            .iter()
            .find(|s| s.frame().get(6..11) == Some(&frame[6..11]))
        {
            assert_eq!(s.frame(), &frame[..100]);
            assert_eq!(s.status(), RxStatus::Truncated { wire_len: 1000 });
            break;
        }
        sleep(Duration::from_millis(5));
    }
}

#[test]
fn tap_refuses_other_device_types_and_busy_queues() {
    require_root();
    let (a, b) = (dev_name("na"), dev_name("nb"));
    let _veth = veth_pair(&a, &b);
    let err = TapPort::create(&a).err().expect("a veth is not a TAP");
    assert!(
        err.to_string().contains("not a single-queue TAP"),
        "unclear error: {err}"
    );

    let name = dev_name("bz");
    let _guard = LinkGuard(name.clone());
    let _tap = TapPort::create(&name).expect("create TAP");
    let err = TapPort::create(&name).err().expect("second holder");
    assert!(matches!(err, PortError::Busy { .. }), "{err}");
    assert!(err.to_string().contains("another process"));
    let err = delete_persistent_tap(&name).unwrap_err();
    assert!(matches!(err, PortError::Busy { .. }), "{err}");
}

#[test]
fn persistent_tap_is_created_and_deleted() {
    require_root();
    let name = dev_name("p");
    let _guard = LinkGuard(name.clone());
    create_persistent_tap(&name).expect("create persistent TAP");
    assert!(link_exists(&name), "persistent TAP gone after close");
    // Idempotent while nobody holds it.
    create_persistent_tap(&name).expect("create again");

    // A holder (here a TapPort; a VM in real use) makes deletion busy.
    let holder = TapPort::create(&name).expect("attach to persistent TAP");
    assert!(holder.info().capabilities.contains(&"persistent"));
    assert!(matches!(
        delete_persistent_tap(&name),
        Err(PortError::Busy { .. })
    ));
    drop(holder);
    assert!(
        link_exists(&name),
        "persistent TAP deleted by a holder's close"
    );

    delete_persistent_tap(&name).expect("delete persistent TAP");
    assert!(!link_exists(&name), "persistent TAP still there");
    assert!(matches!(
        delete_persistent_tap(&name),
        Err(PortError::NoSuchInterface { .. })
    ));
    assert!(!link_exists(&name), "deleting a missing TAP created one");
}

#[test]
fn tap_deleted_reports_vanished() {
    require_root();
    let name = dev_name("dl");
    let _guard = LinkGuard(name.clone());
    let mut tap = TapPort::create(&name).expect("create TAP");
    ip(&["link", "del", &name]);
    assert!(tap.check().unwrap_err().is_vanished());
    let mut batch = RxBatch::new(BATCH_SIZE);
    assert!(tap.recv_batch(&mut batch).unwrap_err().is_vanished());
    let f = test_frame(23, 0, 60);
    let (sent, err) = crate::port::send_plain(&mut tap, &[&f]);
    assert_eq!(sent, 0);
    assert!(matches!(err, Some(SendError::Vanished)), "{err:?}");
}

#[test]
fn tap_moved_to_netns_keeps_working_until_netns_deleted() {
    require_root();
    let name = dev_name("ns");
    let ns = format!("l2sw-test-{}", std::process::id());
    let _guard = LinkGuard(name.clone());
    let netns = NetnsGuard(ns.clone());
    let mut tap = TapPort::create(&name).expect("create TAP");
    ip(&["netns", "add", &ns]);
    ip(&["link", "set", &name, "netns", &ns]);
    assert!(!link_exists(&name), "still in our namespace");

    tap.check().expect("a moved TAP is not vanished");
    let info = tap.info();
    assert_eq!(info.ifindex, None);
    assert_eq!(tap.ifname(), name);
    assert_eq!(info.mtu, 1500, "cached MTU");
    tap.set_mtu_hint(1400);
    tap.check().expect("check");
    assert_eq!(tap.mtu(), 1400, "hint kept while the netdev is elsewhere");

    ip(&["-n", &ns, "link", "set", &name, "up"]);
    let f = test_frame(24, 0, 60);
    let (sent, err) = crate::port::send_plain(&mut tap, &[&f]);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(sent, 1);

    // Deleting the namespace destroys the virtual devices in it.
    drop(netns);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tap.check() {
            Err(e) if e.is_vanished() => break,
            Err(e) => panic!("unexpected error: {e}"),
            Ok(()) => assert!(Instant::now() < deadline, "TAP outlived its namespace"),
        }
        sleep(Duration::from_millis(20));
    }
}

#[test]
fn tap_down_is_link_down_not_vanished() {
    require_root();
    let name = dev_name("dn");
    let _guard = LinkGuard(name.clone());
    let mut tap = TapPort::create(&name).expect("create TAP");
    ip(&["link", "set", &name, "down"]);
    let f = test_frame(25, 0, 60);
    let (sent, err) = crate::port::send_plain(&mut tap, &[&f]);
    assert_eq!(sent, 0);
    assert!(matches!(err, Some(SendError::LinkDown)), "{err:?}");
    let mut batch = RxBatch::new(BATCH_SIZE);
    assert_eq!(tap.recv_batch(&mut batch).expect("down is not an error"), 0);
    tap.check().expect("a down TAP is still there");

    ip(&["link", "set", &name, "up"]);
    assert_eq!(crate::port::send_plain(&mut tap, &[&f]).0, 1);
}
