//! `top` without a switch: rates from hand-made samples, keys, and the text
//! frame drawn from them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::keys::{Action, Key, SortKey, View, ViewState};
use super::rates::Rates;
use super::sample::Sample;
use super::term::render_text;
use crate::dataplane::{FdbRow, PortStats, StatsSnapshot, SwitchTotals};
use crate::observe::{LatencyHistogram, PortCounters};
use crate::switch::{DropReason, EntryKind, FdbCounters, Settings};
use crate::wire::MacAddr;

fn port(name: &str, rx: u64, tx: u64, dropped: u64) -> PortStats {
    let mut c = PortCounters {
        rx_frames: rx,
        rx_bytes: rx * 100,
        tx_frames: tx,
        tx_bytes: tx * 100,
        ..Default::default()
    };
    c.drops.add(DropReason::SamePort, dropped);
    PortStats {
        name: name.into(),
        counters: c,
    }
}

fn entry(last: u8, port: &str, frames: u64) -> FdbRow {
    FdbRow {
        mac: MacAddr([2, 0, 0, 0, 0, last]),
        vlan: 0,
        port: port.into(),
        kind: EntryKind::Learned,
        age_s: 0,
        frames,
        dst: None,
    }
}

fn sample(
    at: Instant,
    ports: Vec<PortStats>,
    fdb: Vec<FdbRow>,
    learned: u64,
    lat: &[(&str, &[u64])],
) -> Sample {
    let latency: HashMap<String, LatencyHistogram> = lat
        .iter()
        .map(|(p, v)| {
            let mut h = LatencyHistogram::new();
            for ns in *v {
                h.record(*ns);
            }
            (p.to_string(), h)
        })
        .collect();
    Sample {
        at,
        stats: StatsSnapshot {
            uptime_s: 75,
            settings: Settings::default(),
            totals: SwitchTotals {
                fdb_entries: fdb.len(),
                fdb_learned: fdb.len(),
                fdb: FdbCounters {
                    learned,
                    ..Default::default()
                },
                counters: PortCounters::default(),
            },
            ports,
            removed_ports: vec![],
            protect: Default::default(),
        },
        fdb,
        latency,
    }
}

fn two() -> Rates {
    let t0 = Instant::now();
    let a = sample(
        t0,
        vec![port("red", 100, 50, 0), port("blue", 1000, 10, 5)],
        vec![entry(1, "red", 10), entry(2, "blue", 500)],
        2,
        &[("red", &[1_000]), ("blue", &[])],
    );
    let b = sample(
        t0 + Duration::from_secs(2),
        vec![port("red", 300, 250, 0), port("blue", 1200, 20, 9)],
        vec![
            entry(1, "red", 410),
            entry(2, "blue", 600),
            entry(3, "blue", 8),
        ],
        5,
        &[("red", &[1_000, 20_000, 20_000]), ("blue", &[])],
    );
    Rates::between(&a, &b)
}

#[test]
fn rates_are_deltas_over_the_interval() {
    let r = two();
    let red = r.ports.iter().find(|p| p.name == "red").unwrap();
    assert_eq!((red.rx_fps, red.tx_fps), (100.0, 100.0));
    assert_eq!(red.rx_bps, 100.0 * 100.0 * 8.0);
    let blue = r.ports.iter().find(|p| p.name == "blue").unwrap();
    assert_eq!((blue.drops_ps, blue.macs), (2.0, 2));
    assert_eq!(r.drops.len(), 1);
    assert_eq!(
        (r.drops[0].reason, r.drops[0].per_s, r.drops[0].total),
        (DropReason::SamePort, 2.0, 9)
    );
    assert_eq!(r.fdb.learned_ps, 1.5);
    let fps: Vec<f64> = r.macs.iter().map(|m| m.fps).collect();
    // A MAC new in the interval counts all its frames.
    assert_eq!(fps, vec![200.0, 50.0, 4.0]);
    let lat = r.latency.iter().find(|l| l.port == "red").unwrap();
    assert_eq!(lat.per_s, 1.0);
    assert!((lat.p50_us.unwrap() - 20.0).abs() < 0.1, "{lat:?}");
    let idle = r.latency.iter().find(|l| l.port == "blue").unwrap();
    assert_eq!(idle.p99_us, None);
}

#[test]
fn counters_that_went_back_count_from_zero() {
    let t0 = Instant::now();
    let a = sample(t0, vec![port("red", 1000, 0, 0)], vec![], 0, &[]);
    let b = sample(
        t0 + Duration::from_secs(1),
        vec![port("red", 40, 0, 0)],
        vec![],
        0,
        &[],
    );
    assert_eq!(Rates::between(&a, &b).ports[0].rx_fps, 40.0);
}

fn lines_with(text: &str, words: &[&str]) -> Vec<String> {
    text.lines()
        .filter(|l| {
            words
                .iter()
                .any(|w| l.split_whitespace().next() == Some(*w))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn the_text_frame_shows_each_view_sorted_as_asked() {
    let r = two();
    let mut st = ViewState::new("lab", View::Ports);
    let text = render_text(&st, &r, 120);
    assert!(text.contains("Traffic per port"), "{text}");
    assert!(text.contains("RX bit/s"), "{text}");
    // Default: busiest rx (bits/s) first: red 160k vs blue 160k tie -> name.
    assert_eq!(st.on_key(Key::Char('t'), false), Action::Redraw);
    let rows = lines_with(&render_text(&st, &r, 120), &["red", "blue"]);
    assert!(
        rows[0].starts_with("red") && rows[1].starts_with("blue"),
        "{rows:?}"
    );
    st.on_key(Key::Char('i'), false);
    let rows = lines_with(&render_text(&st, &r, 120), &["red", "blue"]);
    assert!(rows[0].starts_with("blue"), "{rows:?}");

    st.on_key(Key::Char('2'), false);
    let text = render_text(&st, &r, 120);
    assert!(
        text.contains("Drops per second by port and reason") && text.contains("same_port"),
        "{text}"
    );
    st.on_key(Key::Tab, false);
    let text = render_text(&st, &r, 120);
    assert!(text.contains("Busiest MACs"), "{text}");
    let first = text.lines().find(|l| l.starts_with("02:")).unwrap();
    assert!(first.starts_with("02:00:00:00:00:01"), "{text}");
    st.on_key(Key::Char('4'), false);
    let text = render_text(&st, &r, 120);
    assert!(
        text.contains("Forwarding latency") && text.contains("P99"),
        "{text}"
    );
}

#[test]
fn keys_a_view_has_no_column_for_say_so_and_q_quits() {
    let mut st = ViewState::new("lab", View::Drops);
    assert_eq!(st.on_key(Key::Char('t'), false), Action::Redraw);
    assert_eq!(st.sort(), SortKey::Drops);
    assert!(
        st.note.as_deref().unwrap().contains("no tx column"),
        "{:?}",
        st.note
    );
    assert_eq!(st.on_key(Key::Char('s'), false), Action::Redraw);
    assert_eq!(st.sort(), SortKey::Name);
    st.on_key(Key::Char('?'), false);
    assert!(st.help);
    assert_eq!(st.on_key(Key::Char('x'), false), Action::Redraw);
    assert!(
        !st.help && st.sort() == SortKey::Name,
        "a key closing help does nothing else"
    );
    assert_eq!(st.on_key(Key::Char('c'), true), Action::Quit);
    assert_eq!(st.on_key(Key::Char('q'), false), Action::Quit);
}
