//! Tests of `AfPacketPort`: the tag restoration on its own, then real veth
//! pairs (root needed).

use std::thread::sleep;
use std::time::Duration;

use super::*;
use crate::port::testutil::{
    dev_name, ip, is_test_frame, recv_frames, require_root, tagged, test_frame, veth_pair,
    wait_until_passing,
};

const WAIT: Duration = Duration::from_secs(3);

#[test]
fn restore_tag_moves_macs_into_headroom() {
    let frame = test_frame(1, 2, 60);
    let mut buf = vec![0u8; RX_HEADROOM + 100];
    buf[RX_HEADROOM..RX_HEADROOM + 60].copy_from_slice(&frame);
    let tag = StrippedTag {
        tpid: 0x88a8,
        tci: 0x300a,
    };
    let (start, len) = restore_tag(&mut buf, 60, tag);
    assert_eq!((start, len), (RX_HEADROOM - 4, 64));
    assert_eq!(
        &buf[start..start + len],
        &tagged(&frame, 0x88a8, 0x300a)[..]
    );
}

#[test]
fn restore_tag_leaves_runts_alone() {
    let mut buf = vec![0xaa; RX_HEADROOM + 10];
    let tag = StrippedTag {
        tpid: 0x8100,
        tci: 1,
    };
    assert_eq!(restore_tag(&mut buf, 10, tag), (RX_HEADROOM, 10));
    assert!(buf.iter().all(|&b| b == 0xaa));
}

#[test]
fn open_rejects_bad_and_missing_names() {
    assert!(matches!(
        AfPacketPort::open("bad/name", PortKind::Iface),
        Err(PortError::InvalidName { .. })
    ));
    assert!(matches!(
        AfPacketPort::open("l2sw-none0", PortKind::Iface),
        Err(PortError::NoSuchInterface { .. })
    ));
}

/// Opens ports on both ends of a fresh veth pair.
fn pair(tag: &str) -> (crate::port::testutil::LinkGuard, AfPacketPort, AfPacketPort) {
    require_root();
    let (a, b) = (dev_name(&format!("{tag}a")), dev_name(&format!("{tag}b")));
    let guard = veth_pair(&a, &b);
    let mut pa = AfPacketPort::open(&a, PortKind::Iface).expect("open A");
    let mut pb = AfPacketPort::open(&b, PortKind::Iface).expect("open B");
    wait_until_passing(&mut pa, &mut pb);
    wait_until_passing(&mut pb, &mut pa);
    (guard, pa, pb)
}

#[test]
fn veth_batch_arrives_in_order_and_is_not_read_back() {
    let (guard, mut pa, mut pb) = pair("o");
    // A second socket on A: it must not see A's transmissions either.
    let mut pa2 = AfPacketPort::open(&guard.0, PortKind::Iface).expect("open A again");

    let info = pa.info();
    assert_eq!(info.kind, PortKind::Iface);
    assert_eq!(info.ifname, guard.0);
    assert_eq!(info.mtu, 1500);
    assert!(info.mac.is_some());
    assert!(info.ifindex.is_some());
    assert!(info.capabilities.contains(&"auxdata-vlan"));
    assert!(
        info.capabilities.contains(&"ignore-outgoing"),
        "kernel 6.18 has it"
    );

    let frames: Vec<Vec<u8>> = (0..32u8)
        .map(|i| test_frame(7, i, 60 + usize::from(i) * 45))
        .collect();
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let (sent, err) = crate::port::send_plain(&mut pa, &refs);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(sent, 32);

    let mut batch = RxBatch::new(BATCH_SIZE);
    let got = recv_frames(&mut pb, &mut batch, 7, 32, WAIT);
    assert_eq!(got.len(), 32);
    assert_eq!(got, frames, "frames reordered or altered");

    sleep(Duration::from_millis(100));
    for port in [&mut pa, &mut pa2] {
        let n = port.recv_batch(&mut batch).expect("recv on A");
        assert!(
            !batch.iter().any(|s| is_test_frame(s.frame(), 7)),
            "A read back its own transmissions ({n} frames)"
        );
    }
}

#[test]
fn ring_tells_from_memory_whether_frames_wait() {
    let (_guard, mut pa, mut pb) = pair("w");
    let mut batch = RxBatch::new(BATCH_SIZE);
    // Whatever the link sent while coming up (IPv6 router solicitations).
    while pb.recv_batch(&mut batch).expect("drain B") > 0 {}
    assert_eq!(pb.rx_waiting(), Some(false), "nothing sent yet");

    let frame = test_frame(21, 0, 200);
    assert_eq!(crate::port::send_plain(&mut pa, &[&frame[..]]).0, 1);
    let deadline = std::time::Instant::now() + WAIT;
    while pb.rx_waiting() != Some(true) {
        assert!(
            std::time::Instant::now() < deadline,
            "ring never showed the frame"
        );
        sleep(Duration::from_millis(1));
    }
    assert_eq!(recv_frames(&mut pb, &mut batch, 21, 1, WAIT), vec![frame]);
    while pb.recv_batch(&mut batch).expect("drain B") > 0 {}
    assert_eq!(pb.rx_waiting(), Some(false), "read: nothing waits");
}

#[test]
fn veth_outgoing_filtered_without_kernel_option() {
    let (guard, mut pa, mut pb) = pair("f");
    let mut fallback =
        AfPacketPort::open_with(&guard.0, PortKind::Iface, false).expect("open A without option");
    assert!(!fallback.info().capabilities.contains(&"ignore-outgoing"));

    let frames: Vec<Vec<u8>> = (0..4).map(|i| test_frame(13, i, 100)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    assert_eq!(crate::port::send_plain(&mut pa, &refs).0, 4);
    // B received them, so they were on the wire by now.
    let mut batch = RxBatch::new(BATCH_SIZE);
    assert_eq!(recv_frames(&mut pb, &mut batch, 13, 4, WAIT), frames);
    let got = recv_frames(&mut fallback, &mut batch, 13, 1, Duration::from_millis(200));
    assert!(
        got.is_empty(),
        "outgoing frames not filtered: {}",
        got.len()
    );

    // Frames coming in on A still pass the filter.
    assert_eq!(crate::port::send_plain(&mut pb, &refs).0, 4);
    assert_eq!(recv_frames(&mut fallback, &mut batch, 13, 4, WAIT), frames);
}

#[test]
fn veth_vlan_tags_restored_byte_for_byte() {
    let (_guard, mut pa, mut pb) = pair("v");
    let base = test_frame(8, 0, 60);
    let frames = vec![
        // 802.1Q, VID 10.
        tagged(&test_frame(8, 1, 60), 0x8100, 10),
        // 802.1ad S-tag, PCP 1, VID 20.
        tagged(&test_frame(8, 2, 60), 0x88a8, 0x2014),
        // QinQ: only the outer tag is stripped and must come back outside.
        tagged(&tagged(&test_frame(8, 3, 60), 0x8100, 30), 0x88a8, 40),
        // Priority-tagged (VID 0, PCP 5): still a tag the kernel strips.
        tagged(&test_frame(8, 4, 60), 0x8100, 0xa000),
        // The largest tagged frame at MTU 1500.
        tagged(&test_frame(8, 5, 1514), 0x8100, 4094),
        base,
    ];
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let (sent, err) = crate::port::send_plain(&mut pa, &refs);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(sent, frames.len());

    let mut batch = RxBatch::new(BATCH_SIZE);
    let got = recv_frames(&mut pb, &mut batch, 8, frames.len(), WAIT);
    assert_eq!(got.len(), frames.len());
    for (g, f) in got.iter().zip(&frames) {
        assert_eq!(g, f, "tag not restored byte for byte");
    }
}

#[test]
fn veth_short_buffer_reports_truncated() {
    let (_guard, mut pa, mut pb) = pair("s");
    let plain = test_frame(9, 1, 1000);
    let tagged_frame = tagged(&test_frame(9, 2, 1000), 0x8100, 5);
    let (sent, err) = crate::port::send_plain(&mut pa, &[&plain, &tagged_frame]);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(sent, 2);

    let mut batch = RxBatch::with_buf_size(4, RX_HEADROOM + 100);
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    while seen.len() < 2 && std::time::Instant::now() < deadline {
        pb.recv_batch(&mut batch).expect("recv");
        for s in batch.iter().filter(|s| is_test_frame(s.frame(), 9)) {
            seen.push((s.status(), s.frame().to_vec()));
        }
        sleep(Duration::from_millis(5));
    }
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0, RxStatus::Truncated { wire_len: 1000 });
    assert_eq!(seen[0].1, plain[..100]);
    // The stripped tag is restored into the headroom, so 104 bytes arrive.
    assert_eq!(seen[1].0, RxStatus::Truncated { wire_len: 1004 });
    assert_eq!(seen[1].1, tagged_frame[..104]);
}

#[test]
fn veth_oversized_frame_is_too_big() {
    let (_guard, mut pa, mut pb) = pair("m");
    let ok1 = test_frame(10, 1, 100);
    let big = test_frame(10, 2, 2000);
    let ok2 = test_frame(10, 3, 100);
    let (sent, err) = crate::port::send_plain(&mut pa, &[&ok1, &big, &ok2]);
    assert_eq!(sent, 1);
    assert!(matches!(err, Some(SendError::TooBig)), "{err:?}");
    let (sent, err) = crate::port::send_plain(&mut pa, &[&big]);
    assert_eq!(sent, 0);
    assert!(matches!(err, Some(SendError::TooBig)), "{err:?}");

    let mut batch = RxBatch::new(BATCH_SIZE);
    let got = recv_frames(&mut pb, &mut batch, 10, 2, Duration::from_millis(300));
    assert_eq!(got, vec![ok1]);
}

#[test]
fn veth_down_is_not_vanished_and_recovers() {
    let (guard, mut pa, mut pb) = pair("d");
    let b = pb.name().to_string();
    ip(&["link", "set", &b, "down"]);
    let mut batch = RxBatch::new(BATCH_SIZE);
    assert_eq!(pb.recv_batch(&mut batch).expect("down is not an error"), 0);
    pb.check().expect("a down link is still there");
    let f = test_frame(11, 0, 60);
    let (sent, err) = crate::port::send_plain(&mut pb, &[&f]);
    assert_eq!(sent, 0);
    assert!(matches!(err, Some(SendError::LinkDown)), "{err:?}");

    ip(&["link", "set", &b, "up"]);
    // The carrier of the veth pair comes back asynchronously.
    let deadline = std::time::Instant::now() + WAIT;
    let mut got = Vec::new();
    while got.is_empty() && std::time::Instant::now() < deadline {
        let _ = crate::port::send_plain(&mut pa, &[&f]);
        got = recv_frames(&mut pb, &mut batch, 11, 1, Duration::from_millis(50));
    }
    assert_eq!(got, vec![f]);
    drop(guard);
}

#[test]
fn veth_deleted_reports_vanished() {
    let (guard, mut pa, mut pb) = pair("x");
    // A renamed interface is followed by index.
    let renamed = dev_name("xr");
    ip(&["link", "set", pb.name(), "down"]);
    ip(&["link", "set", pb.name(), "name", &renamed, "mtu", "1400"]);
    ip(&["link", "set", &renamed, "up"]);
    pb.check().expect("renamed is not vanished");
    assert_eq!(pb.info().ifname, renamed);
    assert_eq!(pb.mtu(), 1400);

    // Deleting A deletes its peer B too.
    ip(&["link", "del", &guard.0]);
    let mut batch = RxBatch::new(BATCH_SIZE);
    assert!(pb.recv_batch(&mut batch).unwrap_err().is_vanished());
    assert!(pb.recv_batch(&mut batch).unwrap_err().is_vanished());
    assert!(pb.check().unwrap_err().is_vanished());
    assert!(pa.check().unwrap_err().is_vanished());
    let f = test_frame(12, 0, 60);
    let (sent, err) = crate::port::send_plain(&mut pa, &[&f]);
    assert_eq!(sent, 0);
    assert!(matches!(err, Some(SendError::Vanished)), "{err:?}");
}

#[test]
fn veth_moved_to_netns_reports_vanished() {
    let (_guard, _pa, mut pb) = pair("n");
    let ns = format!("l2sw-testn-{}", std::process::id());
    let _netns = crate::port::testutil::NetnsGuard(ns.clone());
    ip(&["netns", "add", &ns]);
    let b = pb.name().to_string();
    ip(&["link", "set", &b, "netns", &ns]);
    assert!(pb.check().unwrap_err().is_vanished());
    let mut batch = RxBatch::new(BATCH_SIZE);
    assert!(pb.recv_batch(&mut batch).unwrap_err().is_vanished());
}
