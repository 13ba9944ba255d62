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
