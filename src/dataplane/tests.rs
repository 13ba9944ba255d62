//! The dataplane end to end over pipe ports: real threads, real sockets, no
//! devices and no root.

use std::time::Duration;

use super::*;
use crate::port::pipe::{PipePeer, PipePort};
use crate::switch::{DropReason, PortPolicy, Settings};
use crate::wire::{write_header, MacAddr};

const QUIET: Duration = Duration::from_millis(150);

struct Lab {
    dp: DataplaneHandle,
    peers: Vec<PipePeer>,
    thread: Option<std::thread::JoinHandle<ReturnedPorts>>,
}

impl Lab {
    fn new(n: usize, mtu: u32) -> Lab {
        let spawned = DataplaneHandle::spawn(Settings::default()).unwrap();
        let mut peers = Vec::new();
        for i in 0..n {
            let name = format!("p{i}");
            let (port, peer) = PipePort::pair(&name, mtu).unwrap();
            spawned
                .handle
                .add_port(
                    Box::new(port),
                    PortMeta {
                        name,
                        netns: None,
                        policy: PortPolicy::default(),
                    },
                )
                .unwrap();
            peers.push(peer);
        }
        Lab {
            dp: spawned.handle,
            peers,
            thread: Some(spawned.thread),
        }
    }

    fn send(&self, port: usize, frame: &[u8]) {
        self.peers[port].send(frame).unwrap();
    }

    fn expect(&self, port: usize, frame: &[u8]) {
        let got = self.peers[port]
            .recv_timeout(Duration::from_secs(2))
            .unwrap_or_else(|| panic!("nothing arrived on p{port}"));
        assert_eq!(got, frame, "wrong frame on p{port}");
    }

    fn expect_none(&self, port: usize) {
        let got = self.peers[port].drain(QUIET);
        assert!(
            got.is_empty(),
            "p{port} got {} unexpected frames",
            got.len()
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.dp.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn mac(last: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, last])
}

fn frame(dst: MacAddr, src: MacAddr, len: usize, fill: u8) -> Vec<u8> {
    let mut f = vec![fill; len];
    write_header(&mut f, dst, src, 0x0800).unwrap();
    f
}

#[test]
fn floods_unknown_then_forwards_known_unicast_only() {
    let lab = Lab::new(3, 1500);
    let a_to_b = frame(mac(2), mac(1), 60, 1);
    lab.send(0, &a_to_b);
    lab.expect(1, &a_to_b);
    lab.expect(2, &a_to_b);
    lab.expect_none(0);

    let b_to_a = frame(mac(1), mac(2), 60, 2);
    lab.send(1, &b_to_a);
    lab.expect(0, &b_to_a);
    lab.expect_none(2);

    lab.send(0, &a_to_b);
    lab.expect(1, &a_to_b);
    lab.expect_none(2);

    let fdb = lab.dp.fdb().unwrap();
    assert_eq!(fdb.len(), 2);
    assert_eq!(fdb[0].port, "p0");
    assert_eq!(fdb[1].port, "p1");

    let stats = lab.dp.stats().unwrap();
    assert_eq!(stats.ports[0].counters.rx_frames, 2);
    assert_eq!(stats.ports[0].counters.tx_frames, 1);
    assert_eq!(stats.ports[2].counters.tx_frames, 1);
    assert_eq!(stats.totals.counters.rx_bytes, 180);
}

#[test]
fn a_batch_keeps_its_order_and_every_size_passes_intact() {
    let lab = Lab::new(2, 9000);
    let frames: Vec<Vec<u8>> = [60usize, 1514, 9014, 61, 100]
        .iter()
        .cycle()
        .take(50)
        .enumerate()
        .map(|(i, &len)| frame(MacAddr::BROADCAST, mac(1), len, i as u8))
        .collect();
    for f in &frames {
        lab.send(0, f);
    }
    for f in &frames {
        lab.expect(1, f);
    }
}

#[test]
fn frames_over_the_egress_mtu_are_dropped_and_counted() {
    let lab = Lab::new(2, 1500);
    lab.send(0, &frame(MacAddr::BROADCAST, mac(1), 1515, 0));
    lab.send(0, &frame(MacAddr::BROADCAST, mac(1), 1514, 0));
    assert_eq!(lab.peers[1].drain(QUIET).len(), 1);
    let stats = lab.dp.stats().unwrap();
    assert_eq!(
        stats.ports[1].counters.drops.get(DropReason::EgressTooBig),
        1
    );
}

#[test]
fn bad_frames_are_dropped_with_a_reason_and_the_switch_keeps_going() {
    let lab = Lab::new(2, 1500);
    lab.send(0, &[0u8; 10]);
    lab.send(0, &frame(mac(2), MacAddr::BROADCAST, 60, 0));
    lab.send(
        0,
        &frame("01:80:c2:00:00:01".parse().unwrap(), mac(1), 60, 0),
    );
    lab.send(
        0,
        &frame("01:80:c2:00:00:0e".parse().unwrap(), mac(1), 60, 0),
    );
    lab.expect_none(1);
    let good = frame(mac(9), mac(1), 60, 7);
    lab.send(0, &good);
    lab.expect(1, &good);
    let d = lab.dp.stats().unwrap().ports[0].counters.drops;
    assert_eq!(d.get(DropReason::Runt), 1);
    assert_eq!(d.get(DropReason::InvalidSource), 1);
    assert_eq!(d.get(DropReason::MacControl), 1);
    assert_eq!(d.get(DropReason::ReservedGroup), 1);
}

#[test]
fn static_entries_and_flush_through_the_handle() {
    let lab = Lab::new(3, 1500);
    lab.dp.fdb_add(mac(5), 0, "p2").unwrap();
    let f = frame(mac(5), mac(1), 60, 3);
    lab.send(0, &f);
    lab.expect(2, &f);
    lab.expect_none(1);
    assert!(matches!(
        lab.dp.fdb_add(mac(6), 0, "nope"),
        Err(DataplaneError::NoSuchPort(_))
    ));
    assert_eq!(
        lab.dp.fdb_flush(None, false).unwrap(),
        1,
        "the learned mac(1)"
    );
    assert_eq!(lab.dp.fdb().unwrap().len(), 1, "static stays");
    assert_eq!(lab.dp.fdb_flush(Some("p2"), true).unwrap(), 1);
    assert!(lab.dp.fdb_del(mac(5), 0).is_err());
}

#[test]
fn removing_a_port_flushes_it_and_stops_sending_there() {
    let lab = Lab::new(3, 1500);
    lab.send(1, &frame(mac(1), mac(2), 60, 0));
    lab.peers[0].drain(QUIET);
    lab.peers[2].drain(QUIET);
    let (meta, _port) = lab.dp.remove_port("p1").unwrap();
    assert_eq!(meta.name, "p1");
    assert!(lab.dp.fdb().unwrap().is_empty());
    let f = frame(mac(2), mac(1), 60, 0);
    lab.send(0, &f);
    lab.expect(2, &f);
    assert!(matches!(
        lab.dp.remove_port("p1"),
        Err(DataplaneError::NoSuchPort(_))
    ));
}

#[test]
fn a_port_whose_peer_vanishes_is_removed_and_reported() {
    let mut lab = Lab::new(3, 1500);
    let gone = lab.peers.remove(1);
    drop(gone);
    // Traffic towards the dead port, then housekeeping, notice it.
    lab.send(0, &frame(MacAddr::BROADCAST, mac(1), 60, 0));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let ports = lab.dp.ports().unwrap();
        if ports.len() == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "port not removed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let stats = lab.dp.stats().unwrap();
    assert_eq!(stats.removed_ports.len(), 1);
    assert_eq!(stats.removed_ports[0].name, "p1");
    // The switch keeps forwarding between the others.
    lab.peers[1].drain(QUIET);
    let f = frame(MacAddr::BROADCAST, mac(1), 60, 9);
    lab.send(0, &f);
    lab.expect(1, &f); // peers[1] is now the old p2
}

#[test]
fn duplicate_port_names_are_refused() {
    let lab = Lab::new(1, 1500);
    let (port, _peer) = PipePort::pair("p0", 1500).unwrap();
    let e = lab
        .dp
        .add_port(
            Box::new(port),
            PortMeta {
                name: "p0".into(),
                netns: None,
                policy: PortPolicy::default(),
            },
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "a port named p0 already exists");
}

#[test]
fn settings_change_at_run_time() {
    let lab = Lab::new(2, 1500);
    let s = lab.dp.set(Setting::AgeingTime(0)).unwrap();
    assert_eq!(s.ageing_time_s, 0);
    lab.send(1, &frame(mac(1), mac(2), 60, 0));
    lab.peers[0].drain(QUIET);
    assert!(lab.dp.fdb().unwrap().is_empty(), "ageing 0 keeps nothing");
    assert!(lab.dp.set(Setting::GroupFwdMask(0x0004)).is_err());
}

mod offloads {
    //! Super-frames and partial checksums towards ports that cannot take them.
    use super::*;
    use crate::port::{
        Gso, GsoKind, Offload, OffloadCaps, Port, PortError, PortInfo, RxBatch, SendError, TxFrame,
    };
    use crate::wire::checksum::{finish, sum16};

    /// A pipe port whose received frames carry a given offload, and which
    /// takes every offload on send (like a vnet-header port).
    struct OffloadPipe {
        inner: PipePort,
        offload: Offload,
    }

    impl Port for OffloadPipe {
        fn name(&self) -> &str {
            self.inner.name()
        }
        fn info(&self) -> PortInfo {
            self.inner.info()
        }
        fn raw_fd(&self) -> std::os::fd::RawFd {
            self.inner.raw_fd()
        }
        fn mtu(&self) -> u32 {
            self.inner.mtu()
        }
        fn recv_batch(&mut self, batch: &mut RxBatch) -> Result<usize, PortError> {
            let n = self.inner.recv_batch(batch)?;
            for i in 0..n {
                batch.slot_mut(i).set_offload(self.offload);
            }
            Ok(n)
        }
        fn offload_caps(&self) -> OffloadCaps {
            OffloadCaps::ALL
        }
        fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> (usize, Option<SendError>) {
            self.inner.send_batch(frames)
        }
        fn check(&mut self) -> Result<(), PortError> {
            self.inner.check()
        }
    }

    /// Adds port `b`, a plain pipe (no offloads), and port `c`, which takes
    /// every offload; returns their peers.
    fn add_plain_and_offload_ports(dp: &DataplaneHandle) -> (PipePeer, PipePeer) {
        let (b, peer_b) = PipePort::pair("b", 1500).unwrap();
        let (c, peer_c) = PipePort::pair("c", 1500).unwrap();
        dp.add_port(Box::new(b), meta("b")).unwrap();
        dp.add_port(
            Box::new(OffloadPipe {
                inner: c,
                offload: Offload::NONE,
            }),
            meta("c"),
        )
        .unwrap();
        (peer_b, peer_c)
    }

    /// TCP/IPv4 from 10.0.0.1 to 10.0.0.2 with `payload` bytes, checksum
    /// field holding only the pseudo-header sum, as a sender leaves it.
    fn tcp4_partial(payload: usize) -> Vec<u8> {
        let mut f = frame(mac(2), mac(1), 54, 0);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
        f[22] = 64;
        f[23] = 6;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[46] = 0x50;
        f[47] = 0x18;
        let c = finish(sum16(0, &f[14..34]));
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f.extend((0..payload).map(|i| (i % 199) as u8));
        let pseudo = sum16(sum16(0, &f[26..34]), &[0, 6]) + (20 + payload) as u32;
        let folded = !finish(pseudo);
        f[50..52].copy_from_slice(&folded.to_be_bytes());
        f
    }

    fn meta(name: &str) -> PortMeta {
        PortMeta {
            name: name.into(),
            netns: None,
            policy: PortPolicy::default(),
        }
    }

    fn tcp_checksum_ok(seg: &[u8]) -> bool {
        let l4_len = seg.len() - 34;
        let s = sum16(sum16(0, &seg[26..34]), &[0, 6]) + l4_len as u32;
        finish(sum16(s, &seg[34..])) == 0
    }

    #[test]
    fn super_frames_are_cut_for_ports_without_offloads_and_passed_whole_to_the_rest() {
        let spawned = DataplaneHandle::spawn(Settings::default()).unwrap();
        let dp = spawned.handle;
        let gso = Offload {
            csum: Some((34, 16)),
            data_valid: false,
            gso: Some(Gso {
                kind: GsoKind::Tcp4,
                ecn: false,
                size: 1000,
                hdr_len: 54,
            }),
        };
        let (a, peer_a) = PipePort::pair("a", 1500).unwrap();
        dp.add_port(
            Box::new(OffloadPipe {
                inner: a,
                offload: gso,
            }),
            meta("a"),
        )
        .unwrap();
        let (peer_b, peer_c) = add_plain_and_offload_ports(&dp);

        let sup = tcp4_partial(2500);
        peer_a.send(&sup).unwrap();
        let segs = peer_b.drain(QUIET);
        assert_eq!(segs.len(), 3, "cut into 1000 + 1000 + 500");
        let mut payload = Vec::new();
        for s in &segs {
            assert!(tcp_checksum_ok(s), "segment checksum");
            assert!(s.len() <= 1514);
            payload.extend_from_slice(&s[54..]);
        }
        assert_eq!(payload, sup[54..]);
        // The port that takes offloads gets the super-frame whole.
        assert_eq!(peer_c.drain(QUIET), vec![sup]);

        let stats = dp.stats().unwrap();
        let by = |n: &str| stats.ports.iter().find(|p| p.name == n).unwrap().counters;
        assert_eq!(by("a").rx_gso, 1);
        assert_eq!(by("b").sw_segmented, 1);
        assert_eq!(by("b").tx_frames, 3);
        assert_eq!(by("c").tx_frames, 1);
        dp.stop();
        let _ = spawned.thread.join();
    }

    #[test]
    fn partial_checksums_are_finished_when_any_egress_cannot() {
        let spawned = DataplaneHandle::spawn(Settings::default()).unwrap();
        let dp = spawned.handle;
        let csum = Offload {
            csum: Some((34, 16)),
            ..Offload::NONE
        };
        let (a, peer_a) = PipePort::pair("a", 1500).unwrap();
        let (b, peer_b) = PipePort::pair("b", 1500).unwrap();
        dp.add_port(
            Box::new(OffloadPipe {
                inner: a,
                offload: csum,
            }),
            meta("a"),
        )
        .unwrap();
        dp.add_port(Box::new(b), meta("b")).unwrap();
        peer_a.send(&tcp4_partial(300)).unwrap();
        let got = peer_b.drain(QUIET);
        assert_eq!(got.len(), 1);
        assert!(tcp_checksum_ok(&got[0]));
        assert_eq!(dp.stats().unwrap().ports[1].counters.sw_csum, 1);
        dp.stop();
        let _ = spawned.thread.join();
    }

    /// `tcp4_partial` cut into full-checksum segments of `mss` bytes, as a
    /// sender without offloads sends them.
    fn tcp4_segments(payload: usize, mss: usize) -> Vec<Vec<u8>> {
        crate::wire::gso::cut_tcp(&tcp4_partial(payload), mss)
    }

    /// Sends `segs` into a port that is only then added, so the dataplane
    /// reads them in one batch; returns what the GSO-capable port `c` and
    /// the plain port `b` got, and the stats.
    fn coalescing_run(
        segs: &[Vec<u8>],
        ingress: PortPolicy,
    ) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, crate::dataplane::StatsSnapshot) {
        let spawned = DataplaneHandle::spawn(Settings::default()).unwrap();
        let dp = spawned.handle;
        let (a, peer_a) = PipePort::pair("a", 1500).unwrap();
        let (peer_b, peer_c) = add_plain_and_offload_ports(&dp);
        for s in segs {
            peer_a.send(s).unwrap();
        }
        let mut m = meta("a");
        m.policy = ingress;
        dp.add_port(Box::new(a), m).unwrap();
        let (got_b, got_c) = (peer_b.drain(QUIET), peer_c.drain(QUIET));
        let stats = dp.stats().unwrap();
        dp.stop();
        let _ = spawned.thread.join();
        (got_b, got_c, stats)
    }

    #[test]
    fn a_run_of_segments_reaches_a_gso_port_as_one_super_frame() {
        let segs = tcp4_segments(2500, 1000);
        let (got_b, got_c, stats) = coalescing_run(&segs, PortPolicy::default());
        // The port without offloads gets the segments as they came.
        assert_eq!(got_b, segs);
        assert_eq!(got_c.len(), 1, "one super-frame");
        let sup = &got_c[0];
        assert_eq!(sup.len(), 54 + 2500);
        assert_eq!(u16::from_be_bytes([sup[16], sup[17]]) as usize, 40 + 2500);
        assert_eq!(&sup[54..], &tcp4_partial(2500)[54..], "payload in order");
        let c = stats.ports.iter().find(|p| p.name == "c").unwrap().counters;
        assert_eq!((c.coalesced, c.coalesced_segments, c.tx_frames), (1, 3, 1));
    }

    #[test]
    fn segments_stay_apart_with_gro_off_or_a_bad_checksum() {
        let segs = tcp4_segments(2500, 1000);
        let off = PortPolicy {
            gro: false,
            ..PortPolicy::default()
        };
        let (_, got_c, stats) = coalescing_run(&segs, off);
        assert_eq!(got_c, segs, "gro off: forwarded as received");
        let c = stats.ports.iter().find(|p| p.name == "c").unwrap().counters;
        assert_eq!(c.coalesced, 0);

        let mut damaged = segs.clone();
        damaged[1][100] ^= 1;
        let (_, got_c, _) = coalescing_run(&damaged, PortPolicy::default());
        // The damaged segment ends the run before it and starts none; the
        // receiver sees it as it came and drops it by its checksum.
        assert_eq!(got_c, damaged);
    }
}

mod trace_cannot_drift {
    //! The property that makes `trace` believable: for random port sets with
    //! random policies (VLAN modes, flood flags, isolation, hairpin, learning
    //! off, learned-entry limits, mirrors) and random frames through the
    //! pipe-port dataplane, the ports that actually receive each frame, and
    //! the bytes they receive, are exactly what the frame's live trace says;
    //! and the synthetic trace of the same frame, asked for just before it
    //! is sent, names the same ports and shapes.
    use super::*;
    use crate::dataplane::readers::{ReaderKind, ReaderSpec};
    use crate::observe::filter::Filter;
    use crate::observe::records::{EgressShape, ReaderEvent, TraceReport};
    use crate::switch::{VlanMode, VlanSet};
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    struct PortSpec {
        vlan: Option<VlanMode>,
        learning: bool,
        flood: bool,
        mcast_flood: bool,
        bcast_flood: bool,
        isolated: bool,
        hairpin: bool,
        max_learned: Option<u32>,
    }

    #[derive(Debug, Clone)]
    struct MirrorSpec {
        output: usize,
        src: Vec<usize>,
        dst: Vec<usize>,
    }

    #[derive(Debug, Clone)]
    struct FrameSpec {
        ingress: usize,
        dst: usize,
        src: usize,
        /// (TPID, PCP, VID) of an outer tag.
        tag: Option<(u16, u8, u16)>,
        len: usize,
    }

    #[derive(Debug, Clone)]
    struct Case {
        ports: Vec<PortSpec>,
        mirrors: Vec<MirrorSpec>,
        fdb_max: usize,
        frames: Vec<FrameSpec>,
    }

    const DSTS: &[&str] = &[
        "ff:ff:ff:ff:ff:ff",
        "01:00:5e:00:00:01",
        "01:80:c2:00:00:00",
        "01:80:c2:00:00:0e",
        "01:80:c2:00:00:01",
        "02:00:00:00:00:01",
        "02:00:00:00:00:02",
        "02:00:00:00:00:03",
        "02:00:00:00:00:04",
    ];
    const SRCS: &[&str] = &[
        "02:00:00:00:00:01",
        "02:00:00:00:00:02",
        "02:00:00:00:00:03",
        "02:00:00:00:00:04",
        "01:00:5e:00:00:09",
    ];

    fn vlan_set() -> impl Strategy<Value = Option<VlanSet>> {
        prop_oneof![
            Just(None),
            proptest::collection::vec(0u16..4, 1..3).prop_map(|v| {
                let mut s = VlanSet::new();
                for x in v {
                    s.insert(x);
                }
                Some(s)
            }),
        ]
    }

    fn vlan_mode() -> impl Strategy<Value = Option<VlanMode>> {
        prop_oneof![
            3 => Just(None),
            1 => (1u16..4).prop_map(|tag| Some(VlanMode::Access { tag })),
            1 => vlan_set().prop_map(|trunks| Some(VlanMode::Trunk { trunks })),
            1 => (1u16..4, vlan_set())
                .prop_map(|(tag, trunks)| Some(VlanMode::NativeUntagged { tag, trunks })),
            1 => (1u16..4, vlan_set())
                .prop_map(|(tag, trunks)| Some(VlanMode::NativeTagged { tag, trunks })),
        ]
    }

    fn port_spec() -> impl Strategy<Value = PortSpec> {
        (
            vlan_mode(),
            proptest::bits::u8::ANY,
            prop_oneof![4 => Just(None), 1 => Just(Some(1u32))],
        )
            .prop_map(|(vlan, b, max_learned)| PortSpec {
                vlan,
                // Most flags on most of the time, so that floods reach ports.
                learning: b & 0x01 == 0 || b & 0x80 == 0,
                flood: b & 0x02 == 0 || b & 0x40 == 0,
                mcast_flood: b & 0x04 == 0 || b & 0x40 == 0,
                bcast_flood: b & 0x08 == 0 || b & 0x40 == 0,
                isolated: b & 0x10 != 0 && b & 0x20 != 0,
                hairpin: b & 0x20 != 0 && b & 0x80 != 0,
                max_learned,
            })
    }

    fn frame_spec(ports: usize) -> impl Strategy<Value = FrameSpec> {
        let tag = prop_oneof![
            2 => Just(None),
            1 => (
                prop_oneof![Just(0x8100u16), Just(0x88a8u16)],
                0u8..8,
                prop_oneof![Just(0u16), 1u16..4, Just(4095u16)],
            )
                .prop_map(Some),
        ];
        let len = prop_oneof![8 => 60usize..100, 1 => Just(1514usize), 1 => Just(1518usize), 1 => Just(10usize)];
        (0..ports, 0..DSTS.len(), 0..SRCS.len(), tag, len).prop_map(
            |(ingress, dst, src, tag, len)| FrameSpec {
                ingress,
                dst,
                src,
                tag,
                len,
            },
        )
    }

    fn case() -> impl Strategy<Value = Case> {
        (2usize..6).prop_flat_map(|n| {
            let mirror = (
                0..n,
                proptest::collection::vec(0..n, 0..2),
                proptest::collection::vec(0..n, 0..2),
            )
                .prop_map(|(output, src, dst)| MirrorSpec { output, src, dst });
            (
                proptest::collection::vec(port_spec(), n),
                proptest::collection::vec(mirror, 0..3),
                prop_oneof![3 => Just(0usize), 1 => Just(2usize)],
                proptest::collection::vec(frame_spec(n), 1..30),
            )
                .prop_map(|(ports, mirrors, fdb_max, frames)| Case {
                    ports,
                    mirrors,
                    fdb_max,
                    frames,
                })
        })
    }

    /// The frame's bytes; `seq` makes each frame of a case unique.
    fn build(f: &FrameSpec, seq: u32) -> Vec<u8> {
        let mut b = vec![0u8; f.len.max(14)];
        write_header(
            &mut b,
            DSTS[f.dst].parse().unwrap(),
            SRCS[f.src].parse().unwrap(),
            0x88b5,
        )
        .unwrap();
        if b.len() >= 20 {
            b[14..18].copy_from_slice(&seq.to_be_bytes());
        }
        if let Some((tpid, pcp, vid)) = f.tag {
            let tci = (pcp as u16) << 13 | vid;
            let t = tpid.to_be_bytes();
            let c = tci.to_be_bytes();
            b.splice(12..12, [t[0], t[1], c[0], c[1]]);
            b.truncate(f.len.max(18));
        }
        b.truncate(f.len);
        b
    }

    /// What `shape` makes of `f`, written out independently of the dataplane.
    fn reshape(f: &[u8], shape: &EgressShape) -> Vec<u8> {
        match *shape {
            EgressShape::Received => f.to_vec(),
            EgressShape::Untagged => [&f[..12], &f[16..]].concat(),
            EgressShape::Tagged {
                tpid,
                vid,
                pcp,
                pushed,
            } => {
                let tci = ((pcp as u16) << 13) | vid;
                let tag = [tpid.to_be_bytes(), tci.to_be_bytes()].concat();
                let rest = if pushed { &f[12..] } else { &f[16..] };
                [&f[..12], &tag[..], rest].concat()
            }
        }
    }

    /// (port, cause, shape) of every port a report says gets the frame.
    fn included(r: &TraceReport) -> Vec<(String, String, Option<EgressShape>)> {
        r.egress
            .iter()
            .filter(|e| e.included)
            .map(|e| (e.port.clone(), e.cause.clone(), e.shape))
            .collect()
    }

    fn run(case: &Case) -> Result<(), TestCaseError> {
        let settings = Settings {
            fdb_max: case.fdb_max,
            ..Settings::default()
        };
        let spawned = DataplaneHandle::spawn(settings).unwrap();
        let dp = spawned.handle;
        let mut peers = Vec::new();
        for (i, p) in case.ports.iter().enumerate() {
            let (port, peer) = PipePort::pair(&format!("p{i}"), 1500).unwrap();
            let policy = PortPolicy {
                vlan: p.vlan.clone(),
                learning: p.learning,
                flood: p.flood,
                mcast_flood: p.mcast_flood,
                bcast_flood: p.bcast_flood,
                isolated: p.isolated,
                hairpin: p.hairpin,
                max_learned: p.max_learned,
                ..PortPolicy::default()
            };
            let meta = PortMeta {
                name: format!("p{i}"),
                netns: None,
                policy,
            };
            dp.add_port(Box::new(port), meta).unwrap();
            peers.push(peer);
        }
        for (k, m) in case.mirrors.iter().enumerate() {
            let names = |v: &[usize]| v.iter().map(|i| format!("p{i}")).collect::<Vec<_>>();
            // Invalid mirrors (output among the sources, no source) are
            // refused by the switch; the case goes on without them.
            let _ = dp.add_mirror(
                &format!("m{k}"),
                &format!("p{}", m.output),
                names(&m.src),
                names(&m.dst),
            );
        }
        let tap = dp
            .add_reader(ReaderSpec {
                ports: Vec::new(),
                filter: Filter::match_all(),
                bpf: None,
                mode: ReaderKind::Trace,
                count: None,
            })
            .unwrap();
        let result = (|| {
            for (seq, f) in case.frames.iter().enumerate() {
                let bytes = build(f, seq as u32);
                let ingress = format!("p{}", f.ingress);
                let synthetic = dp.trace(&ingress, bytes.clone()).unwrap();
                peers[f.ingress].send(&bytes).unwrap();
                let live = match tap.events.recv_timeout(Duration::from_secs(5)) {
                    Ok(ReaderEvent::Trace(t)) => t,
                    other => return Err(TestCaseError::fail(format!("no trace: {other:?}"))),
                };
                prop_assert_eq!(&live.ingress, &ingress);
                // Everything is sent by the time the trace is delivered.
                for (i, peer) in peers.iter().enumerate() {
                    let name = format!("p{i}");
                    let mut got = Vec::new();
                    while let Some(g) = peer.try_recv() {
                        got.push(g);
                    }
                    let row = live.egress.iter().find(|e| e.port == name).unwrap();
                    prop_assert!(row.cause != "not_considered", "{row:?}");
                    let want: Vec<Vec<u8>> = match (&row.shape, &row.io) {
                        (Some(shape), Some(io)) if io.dropped.is_none() => {
                            prop_assert_eq!(io.sent, 1, "{:?}", row);
                            vec![reshape(&bytes, shape)]
                        }
                        (Some(_), Some(io)) => {
                            prop_assert_eq!(io.dropped.as_deref(), Some("egress_too_big"));
                            vec![]
                        }
                        (None, None) if !row.included => vec![],
                        _ => return Err(TestCaseError::fail(format!("bad row {row:?}"))),
                    };
                    prop_assert_eq!(
                        got,
                        want,
                        "frame {} ({:?}) on {}: trace\n{}",
                        seq,
                        f,
                        name,
                        live.render()
                    );
                }
                // The synthetic trace learns nothing; a frame addressed to
                // its own source may find its own entry only when learned.
                if f.src != f.dst.wrapping_sub(5) {
                    prop_assert_eq!(&synthetic.verdict, &live.verdict);
                    prop_assert_eq!(
                        included(&synthetic),
                        included(&live),
                        "synthetic\n{}live\n{}",
                        synthetic.render(),
                        live.render()
                    );
                }
            }
            Ok(())
        })();
        dp.stop();
        let _ = spawned.thread.join();
        result
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
        #[test]
        fn what_ports_receive_is_what_the_trace_says(case in case()) {
            run(&case)?;
        }
    }
}
