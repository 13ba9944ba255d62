//! Criterion microbenchmarks of the forwarding core, no I/O:
//!
//! - `decide/*`: `Switch::plan` in `Mode::Apply` into a reused `Plan` (what
//!   the dataplane runs for every frame: the decision, the egress ports and
//!   their shapes) for a known unicast frame and a broadcast one, on a
//!   two-port switch whose FDB knows both stations;
//! - `fdb_lookup/N`: `Fdb::lookup` in an FDB holding N learned MACs (1k, 64k,
//!   1M; the size limit set to 0 = unlimited), looking them up in a shuffled
//!   order so that consecutive lookups do not share cache lines.
//!
//! Run: `cargo bench --bench decide` (add `-- --quick` for a fast pass).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use l2sw::switch::{Fdb, FdbKey, Mode, Plan, PortId, PortPolicy, Settings, Switch, Timestamp};
use l2sw::wire::{write_header, MacAddr};

/// A minimum-size IPv4 frame (60 bytes without FCS).
fn frame(dst: MacAddr, src: MacAddr) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    write_header(&mut f, dst, src, 0x0800).expect("60 bytes hold a header");
    f
}

/// A locally administered unicast MAC per index: distinct for any u32.
fn station(i: u32) -> MacAddr {
    let b = i.to_be_bytes();
    MacAddr([0x02, 0x00, b[0], b[1], b[2], b[3]])
}

/// xorshift64: a fixed, dependency-free shuffle, the same on every run.
fn shuffled(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..n).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

fn decide(c: &mut Criterion) {
    let mut sw = Switch::new(Settings::default());
    let p0 = sw.add_port(PortPolicy::default()).expect("port 0");
    let p1 = sw.add_port(PortPolicy::default()).expect("port 1");
    let (a, b) = (station(1), station(2));
    let now = Timestamp::from_secs(10);
    // Both stations learned, as after the first exchange between them.
    sw.decide(p0, &frame(b, a), now, Mode::Apply);
    sw.decide(p1, &frame(a, b), now, Mode::Apply);
    let unicast = frame(b, a);
    let broadcast = frame(MacAddr::BROADCAST, a);

    let mut plan = Plan::new();
    let mut g = c.benchmark_group("decide");
    g.throughput(Throughput::Elements(1));
    g.bench_function("known_unicast", |bench| {
        bench.iter(|| {
            sw.plan(p0, black_box(&unicast), now, Mode::Apply, &mut plan);
            black_box(plan.egress().len())
        })
    });
    g.bench_function("broadcast", |bench| {
        bench.iter(|| {
            sw.plan(p0, black_box(&broadcast), now, Mode::Apply, &mut plan);
            black_box(plan.egress().len())
        })
    });
    g.finish();
}

fn fdb_lookup(c: &mut Criterion) {
    let now = Timestamp::from_secs(10);
    let mut g = c.benchmark_group("fdb_lookup");
    g.throughput(Throughput::Elements(1));
    for n in [1_000u32, 65_536, 1_000_000] {
        let mut fdb = Fdb::new(Duration::from_secs(300), 0);
        let keys: Vec<FdbKey> = (0..n).map(|i| FdbKey::new(0, station(i))).collect();
        for (i, k) in keys.iter().enumerate() {
            // Spread over 8 ports; a per-port limit of 0 is unlimited too.
            fdb.learn(*k, PortId((i % 8) as u16), 0, now, true);
        }
        assert_eq!(fdb.len(), n as usize, "every MAC learned");
        let order: Vec<FdbKey> = shuffled(keys.len()).into_iter().map(|i| keys[i]).collect();
        g.bench_with_input(BenchmarkId::from_parameter(n), &order, |bench, order| {
            let mut i = 0;
            bench.iter(|| {
                let hit = fdb.lookup(black_box(order[i]), now);
                i = if i + 1 == order.len() { 0 } else { i + 1 };
                hit
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decide, fdb_lookup);
criterion_main!(benches);
