//! The impairer driven by a fake clock: every knob, with statistics checked
//! against generous bounds.

use super::*;

/// A frame that is its bytes; the first 8 carry a sequence number.
#[derive(Debug, Clone, PartialEq)]
struct F(Vec<u8>);

impl F {
    fn new(seq: u64, len: usize) -> F {
        let mut v = vec![0u8; len.max(8)];
        v[..8].copy_from_slice(&seq.to_le_bytes());
        F(v)
    }
    fn seq(&self) -> u64 {
        u64::from_le_bytes(self.0[..8].try_into().unwrap())
    }
}

impl ImpairFrame for F {
    fn wire_len(&self) -> usize {
        self.0.len()
    }
    fn duplicate(&self) -> F {
        self.clone()
    }
    fn corrupt(&mut self, pick: u32, bit: u8) {
        let i = ((pick as u64 * self.0.len() as u64) >> 32) as usize;
        self.0[i] ^= 1 << bit;
    }
}

const MS: u64 = 1_000_000;

fn spec(f: impl FnOnce(&mut ImpairSpec)) -> ImpairSpec {
    let mut s = ImpairSpec {
        seed: Some(1),
        limit: Some(1_000_000),
        ..Default::default()
    };
    f(&mut s);
    s
}

fn pct(x: f64) -> Option<Percent> {
    Some(Percent::new(x).unwrap())
}

fn ms(x: u64) -> Option<Span> {
    Some(Span(x * MS))
}

/// Sends `n` frames `gap_ns` apart and collects (seq, arrived, released at,
/// marks), popping at 10 µs resolution as a dataplane would.
fn drive(
    s: ImpairSpec,
    n: u64,
    gap_ns: u64,
    len: usize,
) -> (Vec<(u64, u64, u64, Marks)>, ImpairStats) {
    let mut imp: Impairer<F> = Impairer::new(s, 99);
    let mut out = Vec::new();
    let mut now = 0;
    let mut next_send = 0;
    let mut sent = 0;
    let tick = 10_000;
    while sent < n || !imp.is_empty() {
        while sent < n && next_send <= now {
            imp.enqueue(next_send, F::new(sent, len));
            sent += 1;
            next_send += gap_ns;
        }
        while let Some(r) = imp.pop_due(now) {
            assert!(r.due_ns <= now);
            out.push((r.frame.seq(), r.arrived_ns, now, r.marks));
        }
        now += tick;
    }
    (out, imp.stats())
}

fn quantile(mut v: Vec<u64>, q: f64) -> u64 {
    v.sort();
    v[((v.len() - 1) as f64 * q) as usize]
}

#[test]
fn fixed_delay_holds_every_frame_that_long() {
    let (out, st) = drive(spec(|s| s.delay = ms(10)), 1000, 100_000, 100);
    assert_eq!(out.len(), 1000);
    for &(_, arrived, at, _) in &out {
        let d = at - arrived;
        assert!((10 * MS..10 * MS + 10_000).contains(&d), "held {d} ns");
    }
    // No jitter: order kept.
    assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!((st.enqueued, st.released, st.queued), (1000, 1000, 0));
}

#[test]
fn nothing_is_due_before_its_time_and_next_due_says_when() {
    let mut imp: Impairer<F> = Impairer::new(spec(|s| s.delay = ms(5)), 0);
    assert_eq!(imp.next_due(), None);
    imp.enqueue(1_000, F::new(0, 64));
    assert_eq!(imp.next_due(), Some(1_000 + 5 * MS));
    assert!(imp.pop_due(1_000 + 5 * MS - 1).is_none());
    assert!(imp.pop_due(1_000 + 5 * MS).is_some());
    assert_eq!(imp.next_due(), None);
}

#[test]
fn jitter_spreads_delays_by_distribution() {
    for (dist, lo, hi) in [
        (None, 8 * MS, 12 * MS),
        (
            Some(Distribution::Normal),
            10 * MS - 9 * MS,
            10 * MS + 9 * MS,
        ),
        (
            Some(Distribution::Pareto),
            10 * MS - 2 * MS,
            10 * MS + 9 * MS,
        ),
        (
            Some(Distribution::Paretonormal),
            10 * MS - 5 * MS,
            10 * MS + 9 * MS,
        ),
    ] {
        let s = spec(|s| {
            s.delay = ms(10);
            s.jitter = ms(2);
            s.distribution = dist;
        });
        let (out, _) = drive(s, 20_000, 50_000, 64);
        let d: Vec<u64> = out.iter().map(|o| o.2 - o.1).collect();
        let mean = d.iter().sum::<u64>() as f64 / d.len() as f64;
        let (p1, p50, p99) = (
            quantile(d.clone(), 0.01),
            quantile(d.clone(), 0.5),
            quantile(d.clone(), 0.99),
        );
        assert!((mean - 10e6).abs() < 0.3e6, "{dist:?}: mean {mean}");
        assert!(p1 >= lo && p99 <= hi, "{dist:?}: p1 {p1} p99 {p99}");
        match dist {
            None => {
                // Uniform over +-2 ms: p1 near 8.04 ms, p99 near 11.96 ms.
                assert!(p1 < 8_200_000 && p99 > 11_800_000, "uniform {p1} {p99}");
            }
            Some(Distribution::Normal) => {
                // p99 of a normal is mu + 2.33 sigma.
                assert!((p99 as f64 - 14.65e6).abs() < 0.5e6, "normal p99 {p99}");
                assert!((p50 as f64 - 10e6).abs() < 0.2e6, "normal p50 {p50}");
            }
            Some(_) => {
                // Skewed right: the median is below the mean.
                assert!((p50 as f64) < mean, "{dist:?}: p50 {p50} mean {mean}");
            }
        }
        // Jitter reorders frames, as in netem (frames sort by send time).
        assert!(out.windows(2).any(|w| w[0].0 > w[1].0), "{dist:?}");
    }
}

#[test]
fn correlated_jitter_moves_slowly() {
    let run = |cor: f64| {
        let s = spec(|s| {
            s.delay = ms(10);
            s.jitter = ms(5);
            s.correlation = pct(cor);
        });
        let mut imp: Impairer<F> = Impairer::new(s, 0);
        let ds: Vec<f64> = (0..20_000u64)
            .map(|i| {
                imp.enqueue(i * 1000, F::new(i, 64));
                let due = imp.timed.iter().find(|q| q.seq == i + 1).unwrap().due;
                (due - i * 1000) as f64
            })
            .collect();
        let diffs = ds.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / ds.len() as f64;
        diffs
    };
    let (free, tied) = (run(0.0), run(90.0));
    assert!(tied < free / 3.0, "step {tied} vs {free}");
}

#[test]
fn random_loss_loses_its_share_and_reports_it() {
    let (out, st) = drive(spec(|s| s.loss = pct(10.0)), 20_000, 1000, 64);
    let lost = 20_000 - out.len() as u64;
    assert_eq!(lost, st.lost);
    assert!((1_700..2_300).contains(&lost), "lost {lost}");
    // Loss alone delays nothing.
    assert!(out.iter().all(|o| o.2 - o.1 < 10_000));
}

#[test]
fn lost_frames_come_back_to_the_caller() {
    let mut imp: Impairer<F> = Impairer::new(spec(|s| s.loss = pct(100.0)), 0);
    let e = imp.enqueue(0, F::new(7, 64));
    assert_eq!(e.queued, 0);
    assert_eq!(e.dropped.len(), 1);
    assert_eq!(e.dropped[0].0.seq(), 7);
    assert_eq!(e.dropped[0].1, ImpairDrop::Loss);
}

#[test]
fn gemodel_losses_come_in_bursts() {
    let s = spec(|s| {
        s.gemodel = Some(
            Gemodel::from_args(&[Percent::new(2.0).unwrap(), Percent::new(20.0).unwrap()]).unwrap(),
        )
    });
    let (out, st) = drive(s, 50_000, 1000, 64);
    let got: Vec<u64> = out.iter().map(|o| o.0).collect();
    // Loss rate p/(p+r) = 9.1 %; runs of losses average 1/r = 5.
    let rate = st.lost as f64 / 50_000.0;
    assert!((rate - 0.091).abs() < 0.02, "{rate}");
    let gaps = got.windows(2).filter(|w| w[1] - w[0] > 1).count() as f64;
    let burst = st.lost as f64 / gaps;
    assert!(burst > 3.5 && burst < 6.5, "{burst}");
}

#[test]
fn duplicates_are_marked_copies() {
    let (out, st) = drive(spec(|s| s.duplicate = pct(5.0)), 20_000, 1000, 64);
    let extra = out.len() as u64 - 20_000;
    assert_eq!(extra, st.duplicated);
    assert!((800..1_200).contains(&extra), "duplicated {extra}");
    assert_eq!(out.iter().filter(|o| o.3.duplicate).count() as u64, extra);
    // A copy has the original's bytes.
    let d = out.iter().position(|o| o.3.duplicate).unwrap();
    assert!(out.iter().filter(|o| o.0 == out[d].0).count() == 2);
}

#[test]
fn a_loss_cancels_a_duplicate_as_in_netem() {
    // Everything duplicated and everything "lost": netem's count is
    // 1 + 1 - 1, one copy passes.
    let mut imp: Impairer<F> = Impairer::new(
        spec(|s| {
            s.duplicate = pct(100.0);
            s.loss = pct(100.0);
        }),
        0,
    );
    let e = imp.enqueue(0, F::new(1, 64));
    assert_eq!(e.queued, 1);
    assert!(!e.duplicated);
}

#[test]
fn reordered_frames_jump_the_delayed_ones() {
    let s = spec(|s| {
        s.delay = ms(10);
        s.reorder = pct(25.0);
    });
    let (out, st) = drive(s, 10_000, 100_000, 64);
    assert_eq!(out.len(), 10_000);
    let reordered: Vec<_> = out.iter().filter(|o| o.3.reordered).collect();
    assert_eq!(reordered.len() as u64, st.reordered);
    assert!(
        (2_200..2_800).contains(&reordered.len()),
        "{}",
        reordered.len()
    );
    // Sent at once, the rest delayed.
    assert!(reordered.iter().all(|o| o.2 - o.1 < 10_000));
    assert!(out
        .iter()
        .filter(|o| !o.3.reordered)
        .all(|o| o.2 - o.1 >= 10 * MS));
}

#[test]
fn gap_reorders_at_most_every_nth_frame() {
    let s = spec(|s| {
        s.delay = ms(10);
        s.reorder = pct(100.0);
        s.gap = Some(5);
    });
    let (out, _) = drive(s, 1000, 100_000, 64);
    let mut seqs: Vec<u64> = out.iter().filter(|o| o.3.reordered).map(|o| o.0).collect();
    seqs.sort();
    // With probability 100 %: frames 4, 9, 14, ... (every 5th) go ahead.
    assert_eq!(seqs.len(), 200);
    assert!(seqs.iter().all(|s| s % 5 == 4), "{:?}", &seqs[..10]);
}

#[test]
fn corruption_flips_one_bit() {
    let (out, st) = drive(spec(|s| s.corrupt = pct(10.0)), 10_000, 1000, 200);
    let damaged: Vec<_> = out.iter().filter(|o| o.3.corrupted).collect();
    assert_eq!(damaged.len() as u64, st.corrupted);
    assert!((800..1_200).contains(&damaged.len()), "{}", damaged.len());
    // Every frame corrupted: exactly one bit differs from the clean frame
    // (all zeros here), anywhere in it.
    let mut imp: Impairer<F> = Impairer::new(spec(|s| s.corrupt = pct(100.0)), 0);
    for _ in 0..1000 {
        imp.enqueue(0, F(vec![0u8; 200]));
    }
    let mut hit = [false; 200];
    for r in imp.drain() {
        let ones: u32 = r.frame.0.iter().map(|b| b.count_ones()).sum();
        assert_eq!(ones, 1);
        hit[r.frame.0.iter().position(|&b| b != 0).unwrap()] = true;
    }
    // Flips land all over the frame, headers included (as in netem).
    assert!(hit.iter().filter(|h| **h).count() > 150);
}

#[test]
fn rate_spaces_frames_by_their_wire_time() {
    // 8 Mbit/s = 1 byte/us: a 1000-byte frame takes 1 ms.
    let s = spec(|s| s.rate = Some(Rate(8_000_000)));
    let mut imp: Impairer<F> = Impairer::new(s, 0);
    for i in 0..10 {
        imp.enqueue(0, F::new(i, 1000));
    }
    let dues: Vec<u64> = imp.drain().iter().map(|r| r.due_ns).collect();
    let want: Vec<u64> = (1..=10).map(|k| k * MS).collect();
    assert_eq!(dues, want);
    // Overhead 24 bytes per frame, cells of 48 bytes costing 53.
    let s = spec(|s| {
        s.rate = Some(Rate(8_000_000));
        s.overhead = 24;
        s.cellsize = 48;
        s.cell_overhead = 5;
    });
    let mut imp: Impairer<F> = Impairer::new(s, 0);
    imp.enqueue(0, F::new(0, 1000));
    // 1024 bytes -> 22 cells of 53 bytes = 1166 us.
    assert_eq!(imp.next_due(), Some(1_166_000));
}

#[test]
fn rate_holds_throughput_under_a_flood() {
    // 100 Mbit/s offered 200 Mbit/s of 1250-byte frames for 1 s: half queue
    // up until the limit, and what leaves leaves at 100 Mbit/s.
    let s = spec(|s| {
        s.rate = Some(Rate(100_000_000));
        s.limit = Some(100);
    });
    let (out, st) = drive(s, 20_000, 50_000, 1250);
    let first = out.first().unwrap().2;
    let last = out.last().unwrap().2;
    let bits = (out.len() as f64 - 1.0) * 1250.0 * 8.0;
    let mbps = bits / ((last - first) as f64 / 1e9) / 1e6;
    assert!((mbps - 100.0).abs() < 2.0, "{mbps} Mbit/s");
    assert!(st.limit_drops > 9_000, "{}", st.limit_drops);
}

#[test]
fn rate_and_delay_add_up_like_netem() {
    // Delay 10 ms and 8 Mbit/s: the first 1000-byte frame is due at 11 ms,
    // the second right behind it at 12 ms (its wait is taken off its delay).
    let s = spec(|s| {
        s.delay = ms(10);
        s.rate = Some(Rate(8_000_000));
    });
    let mut imp: Impairer<F> = Impairer::new(s, 0);
    imp.enqueue(0, F::new(0, 1000));
    imp.enqueue(0, F::new(1, 1000));
    let dues: Vec<u64> = imp.drain().iter().map(|r| r.due_ns).collect();
    assert_eq!(dues, vec![11 * MS, 12 * MS]);
}

#[test]
fn limit_drops_beyond_the_queue_in_packets_and_bytes() {
    let mut imp: Impairer<F> = Impairer::new(
        spec(|s| {
            s.delay = ms(10);
            s.limit = Some(3);
        }),
        0,
    );
    let fates: Vec<u8> = (0..5)
        .map(|i| imp.enqueue(0, F::new(i, 100)).queued)
        .collect();
    assert_eq!(fates, vec![1, 1, 1, 0, 0]);
    assert_eq!(imp.stats().limit_drops, 2);
    // Without --limit: a byte budget (32 MiB) that holds a 10 ms delay at
    // many Gbit/s in super-frames, and a frame bound for small frames.
    let mut imp: Impairer<F> = Impairer::new(
        ImpairSpec {
            delay: ms(10),
            ..Default::default()
        },
        0,
    );
    let queued: u64 = (0..1000)
        .map(|i| imp.enqueue(0, F::new(i, 65_000)).queued as u64)
        .sum();
    assert_eq!(queued, (32 << 20) / 65_000);
    let mut imp: Impairer<F> = Impairer::new(
        ImpairSpec {
            delay: ms(10),
            ..Default::default()
        },
        0,
    );
    let queued: u64 = (0..70_000)
        .map(|i| imp.enqueue(0, F::new(i, 64)).queued as u64)
        .sum();
    assert_eq!(queued, 65_536);
    // With a rate, the default holds the rate's delay and 200 ms more:
    // 10 Mbit/s for 300 ms is 375 000 bytes.
    let mut imp: Impairer<F> = Impairer::new(
        spec(|s| {
            s.limit = None;
            s.delay = ms(100);
            s.rate = Some(Rate(10_000_000));
        }),
        0,
    );
    let queued: u64 = (0..1000)
        .map(|i| imp.enqueue(0, F::new(i, 1000)).queued as u64)
        .sum();
    assert_eq!(queued, 375);
    // An explicit frame limit is netem's: frames whatever their size.
    let mut imp: Impairer<F> = Impairer::new(
        spec(|s| {
            s.delay = ms(10);
            s.limit = Some(1000);
        }),
        0,
    );
    let queued: u64 = (0..1500)
        .map(|i| imp.enqueue(0, F::new(i, 65_000)).queued as u64)
        .sum();
    assert_eq!(queued, 1000);
    let mut imp: Impairer<F> = Impairer::new(
        spec(|s| {
            s.delay = ms(10);
            s.limit_bytes = Some(1000);
        }),
        0,
    );
    let queued: u64 = (0..5)
        .map(|i| imp.enqueue(0, F::new(i, 300)).queued as u64)
        .sum();
    assert_eq!(queued, 3);
    assert_eq!(imp.stats().queued_bytes, 900);
    // Once due frames leave, room returns.
    while imp.pop_due(20 * MS).is_some() {}
    assert_eq!(imp.enqueue(20 * MS, F::new(9, 300)).queued, 1);
}

#[test]
fn a_fixed_seed_replays_the_same_fates() {
    let s = spec(|s| {
        s.delay = ms(10);
        s.jitter = ms(3);
        s.loss = pct(10.0);
        s.duplicate = pct(5.0);
        s.reorder = pct(5.0);
        s.corrupt = pct(5.0);
        s.seed = Some(1234);
    });
    let a = drive(s.clone(), 2000, 100_000, 64);
    let b = drive(s.clone(), 2000, 100_000, 64);
    assert_eq!(a.0, b.0);
    let c = drive(
        ImpairSpec {
            seed: Some(1235),
            ..s
        },
        2000,
        100_000,
        64,
    );
    assert_ne!(a.0, c.0);
}

#[test]
fn the_fallback_seed_is_used_and_reported_without_a_spec_seed() {
    let s = ImpairSpec {
        loss: pct(50.0),
        ..Default::default()
    };
    let imp: Impairer<F> = Impairer::new(s, 777);
    assert_eq!(imp.seed(), 777);
}

#[test]
fn drain_empties_in_departure_order() {
    let mut imp: Impairer<F> = Impairer::new(spec(|s| s.delay = ms(10)), 0);
    for i in 0..5 {
        imp.enqueue(i * 1000, F::new(i, 64));
    }
    let seqs: Vec<u64> = imp.drain().iter().map(|r| r.frame.seq()).collect();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
    assert!(imp.is_empty());
    assert_eq!(imp.stats().queued_bytes, 0);
}
