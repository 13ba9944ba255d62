//! The histogram's maths on known distributions, its text format and its
//! encoding.

use super::*;
use proptest::prelude::*;

/// Within the histogram's precision: 3 significant digits keep every value
/// to 1 part in 1024 (half of 2048 sub-buckets), plus 1 ns of rounding.
fn close(actual_us: f64, expected_us: f64) -> bool {
    (actual_us - expected_us).abs() <= expected_us / 1024.0 + 0.001
}

fn uniform_1_to_10000() -> LatencyHistogram {
    let mut h = LatencyHistogram::new();
    for ns in 1..=10_000 {
        h.record(ns);
    }
    h
}

fn ordered(s: &LatencySummary) -> bool {
    s.min_us <= s.p50_us
        && s.p50_us <= s.p90_us
        && s.p90_us <= s.p99_us
        && s.p99_us <= s.p999_us
        && s.p999_us <= s.p9999_us
        && s.p9999_us <= s.max_us
        && s.min_us <= s.mean_us
        && s.mean_us <= s.max_us
}

#[test]
fn uniform_distribution_percentiles() {
    let s = uniform_1_to_10000().summary();
    assert_eq!(s.count, 10_000);
    assert!(close(s.min_us, 0.001), "{s:?}");
    assert!(close(s.p50_us, 5.0), "{s:?}");
    assert!(close(s.p90_us, 9.0), "{s:?}");
    assert!(close(s.p99_us, 9.9), "{s:?}");
    assert!(close(s.p999_us, 9.99), "{s:?}");
    assert!(close(s.p9999_us, 9.999), "{s:?}");
    assert!(close(s.max_us, 10.0), "{s:?}");
    assert!(close(s.mean_us, 5.0005), "{s:?}");
    assert!(ordered(&s));
}

#[test]
fn constant_value_is_exact_below_2048_ns() {
    let mut h = LatencyHistogram::new();
    for _ in 0..1000 {
        h.record(1234);
    }
    let s = h.summary();
    for v in [
        s.min_us, s.p50_us, s.p90_us, s.p99_us, s.p999_us, s.p9999_us, s.max_us, s.mean_us,
    ] {
        assert_eq!(v, 1.234, "{s:?}");
    }
}

#[test]
fn bimodal_tail_shows_at_the_right_percentile() {
    let mut h = LatencyHistogram::new();
    for _ in 0..990 {
        h.record(100);
    }
    for _ in 0..10 {
        h.record(1_000_000);
    }
    let s = h.summary();
    assert_eq!(s.p50_us, 0.1);
    assert_eq!(s.p90_us, 0.1);
    // Exactly 99 % of the samples are 100 ns: p99 is still the fast mode.
    assert_eq!(s.p99_us, 0.1);
    assert!(close(s.p999_us, 1000.0), "{s:?}");
    assert!(close(s.max_us, 1000.0), "{s:?}");
    assert!(close(s.mean_us, 0.99 * 0.1 + 0.01 * 1000.0), "{s:?}");
}

#[test]
fn zero_and_huge_values_are_counted_not_lost() {
    let mut h = LatencyHistogram::new();
    h.record(0);
    h.record(HIGHEST_NS * 2);
    h.record(u64::MAX);
    assert_eq!(h.count(), 3);
    let s = h.summary();
    assert_eq!(s.min_us, 0.0);
    // Saturated at 60 s (within precision), not dropped.
    assert!(close(s.max_us, 60_000_000.0), "{s:?}");
    assert!(close(s.p50_us, 60_000_000.0), "{s:?}");
}

#[test]
fn empty_summary_is_all_zero() {
    let h = LatencyHistogram::new();
    assert!(h.is_empty());
    assert_eq!(h.summary(), LatencySummary::default());
}

#[test]
fn merge_equals_recording_everything_in_one() {
    let whole = uniform_1_to_10000();
    let mut low = LatencyHistogram::new();
    let mut high = LatencyHistogram::new();
    for ns in 1..=10_000 {
        if ns <= 3000 {
            low.record(ns);
        } else {
            high.record(ns);
        }
    }
    let mut a = low.clone();
    a.merge(&high);
    let mut b = high.clone();
    b.merge(&low);
    assert_eq!(a.summary(), whole.summary());
    assert_eq!(b.summary(), whole.summary());
    assert_eq!(a.hgrm(), whole.hgrm());
    // Merging into an empty one and merging an empty one are no-ops on data.
    let mut e = LatencyHistogram::new();
    e.merge(&whole);
    e.merge(&LatencyHistogram::new());
    assert_eq!(e.summary(), whole.summary());
}

#[test]
fn reset_forgets_and_the_histogram_is_reusable() {
    let mut h = uniform_1_to_10000();
    h.reset();
    assert_eq!(h.count(), 0);
    assert_eq!(h.summary(), LatencySummary::default());
    h.record(500);
    let s = h.summary();
    assert_eq!((s.count, s.min_us, s.max_us), (1, 0.5, 0.5));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn percentiles_are_ordered(values in prop::collection::vec(0u64..120_000_000_000, 1..400)) {
        let mut h = LatencyHistogram::new();
        for &v in &values {
            h.record(v);
        }
        let s = h.summary();
        prop_assert_eq!(s.count, values.len() as u64);
        prop_assert!(ordered(&s), "{:?}", s);
        let exact_max = *values.iter().max().unwrap().min(&HIGHEST_NS) as f64 / 1000.0;
        prop_assert!(close(s.max_us, exact_max), "{:?} vs {}", s, exact_max);
    }

    #[test]
    fn encoding_round_trips(values in prop::collection::vec(0u64..120_000_000_000, 0..400)) {
        let mut h = LatencyHistogram::new();
        for &v in &values {
            h.record(v);
        }
        let back = LatencyHistogram::from_encoded(&h.to_encoded()).unwrap();
        prop_assert_eq!(back.count(), h.count());
        prop_assert_eq!(back.summary(), h.summary());
        prop_assert_eq!(back.hgrm(), h.hgrm());
    }
}

/// One parsed data row of an hgrm text.
#[derive(Debug)]
struct Row {
    value: f64,
    percentile: f64,
    total: u64,
    inverse: Option<f64>,
}

/// Parses the hgrm text strictly: header, blank line, rows, 3 footer lines.
fn parse_hgrm(text: &str) -> (Vec<Row>, Vec<&str>) {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "       Value     Percentile TotalCount 1/(1-Percentile)"
    );
    assert_eq!(lines[1], "");
    let footer: Vec<&str> = lines[lines.len() - 3..].to_vec();
    let rows = lines[2..lines.len() - 3]
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() == 3 || f.len() == 4, "bad row {l:?}");
            // Java's "%12.3f %2.12f %10d %14.2f": fixed widths.
            assert_eq!(&l[12..13], " ", "{l:?}");
            assert_eq!(f[1].split('.').nth(1).unwrap().len(), 12, "{l:?}");
            Row {
                value: f[0].parse().unwrap(),
                percentile: f[1].parse().unwrap(),
                total: f[2].parse().unwrap(),
                inverse: f.get(3).map(|x| x.parse().unwrap()),
            }
        })
        .collect();
    (rows, footer)
}

#[test]
fn hgrm_has_the_standard_layout() {
    let h = uniform_1_to_10000();
    let text = h.hgrm();
    let (rows, footer) = parse_hgrm(&text);
    assert!(rows.len() > 20, "{text}");
    for w in rows.windows(2) {
        assert!(w[0].value <= w[1].value, "{text}");
        assert!(w[0].percentile <= w[1].percentile, "{text}");
        assert!(w[0].total <= w[1].total, "{text}");
    }
    let first = &rows[0];
    assert_eq!((first.percentile, first.inverse), (0.0, Some(1.0)));
    assert!(close(first.value, 0.001));
    let last = rows.last().unwrap();
    assert_eq!(
        (last.percentile, last.total, last.inverse),
        (1.0, 10_000, None)
    );
    for r in &rows[..rows.len() - 1] {
        let inv = r.inverse.expect("all but the last row have 1/(1-p)");
        assert!((inv - 1.0 / (1.0 - r.percentile)).abs() < 0.01, "{r:?}");
    }
    // 5 ticks per half distance: 0, 10, .., 50 %, then 55, 60, .. 75 %, ...
    let ps: Vec<f64> = rows.iter().map(|r| r.percentile).collect();
    for p in [0.1, 0.5, 0.55, 0.75, 0.775, 0.875] {
        assert!(
            ps.iter().any(|&x| (x - p).abs() < 1e-9),
            "{p} not in {ps:?}"
        );
    }
    let at = |p: f64| {
        rows.iter()
            .find(|r| (r.percentile - p).abs() < 1e-9)
            .unwrap()
    };
    assert!(close(at(0.5).value, 5.0));
    assert!(close(at(0.9).value, 9.0));

    assert!(footer[0].starts_with("#[Mean    = "), "{footer:?}");
    assert!(footer[0].contains(", StdDeviation   = "), "{footer:?}");
    assert!(footer[1].starts_with("#[Max     = "), "{footer:?}");
    assert!(
        footer[1].ends_with(", Total count    =        10000]"),
        "{footer:?}"
    );
    assert_eq!(
        footer[2],
        "#[Buckets =           26, SubBuckets     =         2048]"
    );
    // "#[Mean    = %12.3f, StdDeviation   = %12.3f]"
    let mean: f64 = footer[0][12..24].trim().parse().unwrap();
    let stdev: f64 = footer[0][43..55].trim().parse().unwrap();
    assert!(close(mean, 5.0005), "{footer:?}");
    // A uniform distribution on [0, 10] µs has sd 10/sqrt(12).
    assert!((stdev - 10.0 / 12f64.sqrt()).abs() < 0.01, "{footer:?}");
}

#[test]
fn hgrm_of_a_single_sample_and_of_nothing() {
    let mut h = LatencyHistogram::new();
    h.record(42_000);
    let text = h.hgrm();
    let (rows, footer) = parse_hgrm(&text);
    assert!(rows.iter().all(|r| close(r.value, 42.0)), "{rows:?}");
    assert_eq!(rows.last().unwrap().percentile, 1.0);
    assert!(footer[1].ends_with("Total count    =            1]"));

    let text = LatencyHistogram::new().hgrm();
    let (rows, footer) = parse_hgrm(&text);
    assert!(rows.is_empty());
    assert_eq!(
        footer[0],
        "#[Mean    =        0.000, StdDeviation   =        0.000]"
    );
    assert_eq!(
        footer[1],
        "#[Max     =        0.000, Total count    =            0]"
    );
}

#[test]
fn encoded_form_is_the_standard_compressed_v2() {
    let h = uniform_1_to_10000();
    let e = h.to_encoded();
    // What HdrHistogram interval logs contain: base64 of cookie 0x1c849314.
    assert!(e.starts_with("HISTFAAA"), "{e}");
    assert!(e.len() < 8000, "{} chars", e.len());
    let back = LatencyHistogram::from_encoded(&format!("  {e}\n")).unwrap();
    assert_eq!(back.hgrm(), h.hgrm());
    // Empty round-trips too.
    let empty = LatencyHistogram::from_encoded(&LatencyHistogram::new().to_encoded()).unwrap();
    assert!(empty.is_empty());
}

#[test]
fn serde_uses_the_encoded_string() {
    let h = uniform_1_to_10000();
    let json = serde_json::to_string(&h).unwrap();
    assert!(json.starts_with("\"HISTFAAA"), "{json}");
    let back: LatencyHistogram = serde_json::from_str(&json).unwrap();
    assert_eq!(back.summary(), h.summary());
    assert!(serde_json::from_str::<LatencyHistogram>("\"nope\"").is_err());
}

#[test]
fn bad_encodings_are_rejected_precisely() {
    use base64::engine::general_purpose::STANDARD;
    let err = |s: &str| LatencyHistogram::from_encoded(s).unwrap_err();

    assert!(matches!(err("not base64!"), LatencyDecodeError::Base64(_)));
    assert!(matches!(
        err(&STANDARD.encode(b"\x1c\x84\x93\x13rest")),
        LatencyDecodeError::NotAHistogram {
            cookie: 0x1c84_9313
        }
    ));
    assert!(matches!(err(""), LatencyDecodeError::NotAHistogram { .. }));
    assert!(matches!(
        err(&"A".repeat(MAX_ENCODED_CHARS + 4)),
        LatencyDecodeError::TooLong { .. }
    ));
    // Truncated: the compressed stream ends early.
    let good = STANDARD.decode(uniform_1_to_10000().to_encoded()).unwrap();
    let cut = STANDARD.encode(&good[..good.len() / 2]);
    assert!(LatencyHistogram::from_encoded(&cut).is_err());
    // A histogram with a wider range than ours (1 hour).
    let mut wide = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
    wide.record(7).unwrap();
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(&wide, &mut bytes)
        .unwrap();
    assert!(matches!(
        err(&STANDARD.encode(&bytes)),
        LatencyDecodeError::Incompatible {
            high: 3_600_000_000_000,
            ..
        }
    ));
}

#[test]
fn foreign_histograms_within_our_range_are_accepted() {
    use base64::engine::general_purpose::STANDARD;
    let mut coarse = Histogram::<u64>::new_with_bounds(1000, 1_000_000_000, 2).unwrap();
    for v in [1500, 20_000, 300_000] {
        coarse.record(v).unwrap();
    }
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(&coarse, &mut bytes)
        .unwrap();
    let h = LatencyHistogram::from_encoded(&STANDARD.encode(&bytes)).unwrap();
    assert_eq!(h.count(), 3);
    // Re-recorded at the coarse histogram's precision (2 digits).
    assert!((h.summary().max_us - 300.0).abs() <= 300.0 / 64.0);
}

#[test]
fn sub_bucket_count_matches_hdrhistogram() {
    for digits in 0..=5u8 {
        let h = Histogram::<u64>::new_with_bounds(1, 1 << 40, digits).unwrap();
        // distinct_values = (buckets + 1) * sub_bucket_count / 2
        assert_eq!(
            h.distinct_values() as u64,
            (u64::from(h.buckets()) + 1) * sub_bucket_count(digits) / 2,
            "digits {digits}"
        );
    }
}

#[test]
fn bucket_counts_partition_every_sample() {
    let mut h = LatencyHistogram::new();
    for ns in [500, 1_000, 1_500, 9_000, 50_000, 2_000_000_000] {
        h.record(ns);
    }
    let b = h.bucket_counts(&[1_000, 10_000, 1_000_000]);
    assert_eq!(b, vec![2, 2, 1, 1]);
    assert_eq!(b.iter().sum::<u64>(), h.count());
    assert!((h.sum_ns() - 2_000_062_000.0).abs() / 2e9 < 0.001);
    assert_eq!(LatencyHistogram::new().bucket_counts(&[1]), vec![0, 0]);
}

#[test]
fn since_keeps_only_the_newer_samples_and_survives_a_reset() {
    let mut h = LatencyHistogram::new();
    h.record(1_000);
    let earlier = h.clone();
    h.record(50_000);
    h.record(50_000);
    let d = h.since(&earlier);
    assert_eq!(d.count(), 2);
    assert!(close(d.summary().p50_us, 50.0));
    // Reset in between: the earlier copy has a sample the new one lacks.
    let mut fresh = LatencyHistogram::new();
    fresh.record(7_000);
    assert_eq!(fresh.since(&earlier).count(), 1);
}
