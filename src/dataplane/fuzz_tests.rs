//! Fuzz target for what a guest controls end to end: a virtio-net header
//! and the frame behind it, received on a port that carries offloads (as a
//! TAP or vnet-header AF_PACKET port does), forwarded by the real dataplane
//! to ports that take offloads, take none, or need a VLAN tag pushed or
//! popped. Whatever the header claims (GSO sizes, header lengths, checksum
//! offsets past the frame), the dataplane must neither panic nor stop: every
//! frame is counted as received and the thread keeps answering.
//!
//! `L2SW_FUZZ_CASES` raises the number of batches (see docs/operations.md).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

use super::*;
use crate::port::pipe::PipePort;
use crate::port::{
    Offload, OffloadCaps, Port, PortError, PortInfo, RxBatch, RxStatus, SendError, TxFrame,
    RX_HEADROOM, VNET_HDR_LEN,
};
use crate::switch::{PortPolicy, Settings, VlanMode};

/// A port whose datagrams start with a virtio-net header, decoded the way
/// the TAP and AF_PACKET backends decode theirs (an undecodable header is
/// dropped as a malformed offload by them; here it becomes `Offload::NONE`).
struct VnetPipe {
    name: String,
    sock: UnixDatagram,
    takes_offloads: bool,
}

impl Port for VnetPipe {
    fn name(&self) -> &str {
        &self.name
    }
    fn info(&self) -> PortInfo {
        PortInfo {
            kind: crate::port::PortKind::Pipe,
            ifname: self.name.clone(),
            ifindex: None,
            mtu: 1500,
            mac: None,
            capabilities: Vec::new(),
            peer: None,
        }
    }
    fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.sock.as_raw_fd()
    }
    fn mtu(&self) -> u32 {
        1500
    }
    fn recv_batch(&mut self, batch: &mut RxBatch) -> Result<usize, PortError> {
        let mut n = 0;
        let mut dgram = vec![0u8; 70_000];
        while n < batch.capacity() {
            let Ok(len) = self.sock.recv(&mut dgram) else {
                break;
            };
            let len = len.min(dgram.len());
            let (hdr, frame) = dgram[..len].split_at(len.min(VNET_HDR_LEN));
            let offload = <[u8; VNET_HDR_LEN]>::try_from(hdr)
                .ok()
                .and_then(|h| Offload::from_vnet_hdr(&h))
                .unwrap_or(Offload::NONE);
            let slot = batch.slot_mut(n);
            let buf = &mut slot.buf_mut()[RX_HEADROOM..];
            let take = frame.len().min(buf.len());
            buf[..take].copy_from_slice(&frame[..take]);
            slot.set(RX_HEADROOM, take, RxStatus::Complete);
            slot.set_offload(offload);
            n += 1;
        }
        batch.finish_read(n, crate::port::realtime_ns());
        Ok(n)
    }
    fn offload_caps(&self) -> OffloadCaps {
        if self.takes_offloads {
            OffloadCaps::ALL
        } else {
            OffloadCaps::NONE
        }
    }
    fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> (usize, Option<SendError>) {
        for (i, f) in frames.iter().enumerate() {
            if self.sock.send(f.data).is_err() {
                return (i, Some(SendError::WouldBlock));
            }
        }
        (frames.len(), None)
    }
    fn check(&mut self) -> Result<(), PortError> {
        Ok(())
    }
}

fn meta(name: &str, vlan: Option<VlanMode>) -> PortMeta {
    PortMeta {
        name: name.into(),
        netns: None,
        policy: PortPolicy {
            vlan,
            ..PortPolicy::default()
        },
    }
}

/// A frame: mostly TCP/UDP over IPv4/IPv6 with plausible headers, bytes
/// then changed at random.
fn guest_frame() -> impl Strategy<Value = Vec<u8>> {
    let base = (
        any::<bool>(),
        any::<bool>(),
        prop::option::of(1u16..20),
        0usize..3000,
    )
        .prop_map(|(v4, tcp, tag, payload)| {
            let mut f = vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1];
            if let Some(t) = tag {
                f.extend_from_slice(&[0x81, 0x00]);
                f.extend_from_slice(&t.to_be_bytes());
            }
            let proto = if tcp { 6 } else { 17 };
            let l4 = if tcp { 20 } else { 8 };
            if v4 {
                f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
                f.extend_from_slice(&((20 + l4 + payload) as u16).to_be_bytes());
                f.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
            } else {
                f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
                f.extend_from_slice(&((l4 + payload) as u16).to_be_bytes());
                f.extend_from_slice(&[proto, 64]);
                f.extend_from_slice(&[0xfd; 32]);
            }
            let mut h = vec![0u8; l4];
            if tcp {
                h[12] = 0x50;
                h[13] = 0x10;
            }
            f.extend_from_slice(&h);
            f.extend((0..payload).map(|i| i as u8));
            f
        });
    (
        base,
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        any::<usize>(),
    )
        .prop_map(|(mut f, flips, cut)| {
            for (i, b) in flips {
                let n = f.len();
                f[i % n] = b;
            }
            if cut % 5 == 0 {
                f.truncate(cut % (f.len() + 1));
            }
            f
        })
}

/// A header: arbitrary bytes, or decodable flags and GSO types with
/// arbitrary (often nonsensical) offsets and sizes.
fn guest_header() -> impl Strategy<Value = [u8; VNET_HDR_LEN]> {
    prop_oneof![
        any::<[u8; VNET_HDR_LEN]>(),
        (0u8..4, 0u8..6, any::<bool>(), any::<[u16; 4]>()).prop_map(|(fl, g, ecn, v)| {
            let mut h = [0u8; VNET_HDR_LEN];
            h[0] = fl;
            h[1] = g | if ecn { 0x80 } else { 0 };
            for (k, x) in v.iter().enumerate() {
                // hdr_len, gso_size, csum_start, csum_offset
                let x = if k == 1 { x % 2000 } else { x % 80 };
                h[2 + 2 * k..4 + 2 * k].copy_from_slice(&x.to_ne_bytes());
            }
            h
        }),
    ]
}

#[test]
fn guest_controlled_offloads_never_stop_the_dataplane() {
    let spawned = DataplaneHandle::spawn(Settings::default()).unwrap();
    let dp = spawned.handle;
    let mut guests = Vec::new();
    let mut sinks = Vec::new();
    // a: the guest's port, VLAN-unaware; t: a trunk (frames leave tagged);
    // u: an access port of VLAN 1 (frames leave untagged);
    // p: a plain port (no offloads: segmenting and checksums in software).
    for (name, vlan, offloads) in [
        ("a", None, true),
        ("t", Some(VlanMode::Trunk { trunks: None }), true),
        ("u", Some(VlanMode::Access { tag: 1 }), true),
        ("p", None, false),
    ] {
        let (ours, theirs) = UnixDatagram::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        theirs.set_nonblocking(true).unwrap();
        let port = VnetPipe {
            name: name.into(),
            sock: ours,
            takes_offloads: offloads,
        };
        dp.add_port(Box::new(port), meta(name, vlan)).unwrap();
        if offloads {
            guests.push(theirs);
        } else {
            sinks.push(theirs);
        }
    }
    let (plain, plain_peer) = PipePort::pair("q", 9000).unwrap();
    dp.add_port(Box::new(plain), meta("q", None)).unwrap();

    let cases = std::env::var("L2SW_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300u32);
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let batch = prop::collection::vec((0usize..3, guest_header(), guest_frame()), 1..12);
    let sent = std::cell::Cell::new(0u64);
    let drain = std::cell::RefCell::new(vec![0u8; 70_000]);
    runner
        .run(&batch, |frames| {
            for (from, hdr, frame) in &frames {
                let mut dgram = hdr.to_vec();
                dgram.extend_from_slice(frame);
                if guests[*from].send(&dgram).is_ok() {
                    sent.set(sent.get() + 1);
                }
            }
            // The dataplane still answers, and has seen every frame.
            let stats = dp.stats().expect("the dataplane thread stopped");
            let rx: u64 = stats
                .ports
                .iter()
                .filter(|p| ["a", "t", "u"].contains(&p.name.as_str()))
                .map(|p| p.counters.rx_frames)
                .sum();
            prop_assert!(rx <= sent.get());
            // Keep the sinks from filling up.
            for s in guests.iter().chain(&sinks) {
                while s.recv(&mut drain.borrow_mut()).is_ok() {}
            }
            while plain_peer.recv_timeout(Duration::ZERO).is_some() {}
            Ok(())
        })
        .unwrap();

    // Everything sent arrives eventually; the loop keeps forwarding.
    let sent = sent.get();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = dp.stats().unwrap();
        let rx: u64 = stats
            .ports
            .iter()
            .filter(|p| ["a", "t", "u"].contains(&p.name.as_str()))
            .map(|p| p.counters.rx_frames)
            .sum();
        if rx == sent || std::time::Instant::now() > deadline {
            assert_eq!(rx, sent, "frames received by the dataplane");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    dp.stop();
    let _ = spawned.thread.join();
}
