//! The encoded scrape of a real dataplane (over pipe ports, no root).

use std::time::Duration;

use super::*;
use crate::dataplane::PortMeta;
use crate::port::pipe::PipePort;
use crate::switch::{PortPolicy, Settings};
use crate::wire::{write_header, MacAddr};

fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    write_header(&mut f, MacAddr(dst), MacAddr(src), 0x0800).unwrap();
    f
}

#[test]
fn a_scrape_reports_traffic_drops_fdb_and_latency_under_conventional_names() {
    let spawned = DataplaneHandle::spawn(Settings::default()).unwrap();
    let dp = spawned.handle.clone();
    let mut peers = Vec::new();
    for name in ["a", "b"] {
        let (port, peer) = PipePort::pair(name, 1500).unwrap();
        dp.add_port(
            Box::new(port),
            PortMeta {
                name: name.into(),
                netns: None,
                policy: PortPolicy::default(),
            },
        )
        .unwrap();
        peers.push(peer);
    }
    let a = [2, 0, 0, 0, 0, 1];
    let b = [2, 0, 0, 0, 0, 2];
    peers[0].send(&frame(b, a)).unwrap();
    assert!(peers[1].recv_timeout(Duration::from_secs(2)).is_some());
    peers[1].send(&frame(a, b)).unwrap();
    assert!(peers[0].recv_timeout(Duration::from_secs(2)).is_some());
    // A runt: dropped and counted on a.
    peers[0].send(&[1, 2, 3]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while dp.stats().unwrap().ports[0].counters.rx_frames < 2 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }

    let text = Scrape::take(&dp).unwrap().encode();
    for line in [
        r#"l2sw_port_packets_total{port="a",direction="rx"} 2"#,
        r#"l2sw_port_packets_total{port="b",direction="tx"} 1"#,
        r#"l2sw_port_bytes_total{port="a",direction="tx"} 60"#,
        r#"l2sw_port_drops_total{port="a",reason="runt"} 1"#,
        r#"l2sw_port_drops_total{port="b",reason="runt"} 0"#,
        r#"l2sw_fdb_entries{type="learned"} 2"#,
        r#"l2sw_fdb_learned_total 2"#,
        r#"l2sw_fdb_refused_total{reason="full"} 0"#,
        r#"l2sw_forwarding_latency_seconds_count{port="b"} 1"#,
        r#"l2sw_forwarding_latency_seconds_bucket{le="+Inf",port="b"} 1"#,
        "# TYPE l2sw_forwarding_latency_seconds histogram",
        "# UNIT l2sw_port_bytes bytes",
        "# TYPE l2sw_build info",
        "# EOF",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in\n{text}"
        );
    }
    assert!(!text.contains("02:00:00"), "MACs must never be labels");
    dp.stop();
    let _ = spawned.thread.join();
}
