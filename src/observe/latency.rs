//! Latency histograms: how long frames stay in the switch, or how long a
//! probe takes to come back.
//!
//! A [`LatencyHistogram`] is an HdrHistogram of nanoseconds from 1 ns to
//! 60 s with 3 significant digits: every recorded value is kept to within
//! 0.1 % (1 ns below 2.048 µs, 4 ns around 5 µs, 33 µs around 60 ms). Its
//! counts array is allocated once by [`LatencyHistogram::new`] (216 KiB);
//! recording only increments a counter, so the dataplane can record every
//! frame without allocating or locking. Values above 60 s are clamped to 60 s
//! rather than lost, so `count()` always equals the number of `record` calls.
//!
//! Output is in microseconds: [`LatencySummary`] for humans and JSON,
//! [`LatencyHistogram::hgrm`] for the standard HdrHistogram percentile
//! distribution text that existing plotters read, and
//! [`LatencyHistogram::to_encoded`] for shipping the whole histogram (the
//! "HISTFAAA..." compressed V2 base64 form HdrHistogram logs use).

use std::fmt::Write as _;
use std::io::Read as _;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Lowest value told apart from zero, in ns.
pub const LOWEST_NS: u64 = 1;
/// Highest trackable value, in ns; larger values are recorded as this.
pub const HIGHEST_NS: u64 = 60_000_000_000;
/// Decimal digits of precision kept for every value.
pub const SIGNIFICANT_DIGITS: u8 = 3;
/// Rows per halving of the distance to 100 % in `hgrm` output: what
/// HdrHistogram's `outputPercentileDistribution` uses by default.
pub const HGRM_TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Cookies of the V2 serialization formats (HdrHistogram's
/// `V2EncodingCookieBase | 0x10` and its compressed variant).
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
/// cookie, payload length, normalizing offset, digits, low, high, ratio.
const V2_HEADER_LEN: usize = 40;
/// Upper bounds for decoding, far above what a histogram of our range can
/// need (its counts array varint-encodes to under 250 KiB), so a corrupt or
/// hostile string cannot make the decoder allocate gigabytes.
const MAX_ENCODED_CHARS: usize = 4 << 20;
const MAX_INFLATED_BYTES: usize = 1 << 20;

/// A histogram of latencies in nanoseconds.
#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    hist: Histogram<u64>,
}

/// The usual percentiles of a histogram, in microseconds. All zero when the
/// histogram is empty. Percentiles are the highest value equivalent to the
/// sample at that rank (HdrHistogram's convention), so they may exceed the
/// exact sample by the histogram's precision (0.1 %).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub p9999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

/// An encoded histogram could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum LatencyDecodeError {
    #[error("encoded histogram is {len} characters long, more than the {max} accepted")]
    TooLong { len: usize, max: usize },
    #[error("encoded histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("not a compressed V2 HdrHistogram (cookie {cookie:#010x}, expected {V2_COMPRESSED_COOKIE:#010x})")]
    NotAHistogram { cookie: u32 },
    #[error("corrupt compressed histogram: {0}")]
    Inflate(#[source] std::io::Error),
    #[error("decompressed histogram is larger than {MAX_INFLATED_BYTES} bytes")]
    Inflated,
    #[error(
        "histogram range {low}..{high} ns with {digits} digits does not fit a latency histogram \
         ({LOWEST_NS}..{HIGHEST_NS} ns, {SIGNIFICANT_DIGITS} digits)"
    )]
    Incompatible { low: u64, high: u64, digits: u32 },
    #[error("corrupt histogram: {0}")]
    Corrupt(#[from] hdrhistogram::serialization::DeserializeError),
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> Self {
        let hist = Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS)
            .expect("the constant bounds are valid (high >= 2 * low, digits <= 5)");
        LatencyHistogram { hist }
    }

    /// Records one latency. Values above 60 s are recorded as 60 s: a frame
    /// that sat in a queue for minutes is still counted, not dropped. Auto
    /// resize is off (the default), so this never allocates.
    ///
    /// Measured cost (`cargo test --release --test alloc_latency -- --ignored
    /// --nocapture`, 2-core VM shared with other builds): 2.3-2.5 ns per call,
    /// best of 5 x 20M, for values spread over 0..68 s or over 0.5..20 µs;
    /// negligible next to the microseconds a frame spends in the switch.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        // Clamp ourselves: the top bucket reaches ~68.7 s, and values up to
        // there would otherwise be kept, making "max" depend on bucket layout.
        self.hist.saturating_record(ns.min(HIGHEST_NS));
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// Adds `other`'s samples to this histogram.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if self.hist.add(&other.hist).is_err() {
            // Unreachable while every LatencyHistogram has the same bounds
            // (from_encoded re-records foreign ones into ours); clamping is
            // the same policy as `record` if that ever changes.
            for v in other.hist.iter_recorded() {
                self.hist
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
    }

    /// Samples per bucket for Prometheus-style export: `out[i]` counts the
    /// samples at most `bounds_ns[i]` (and above the previous bound), the
    /// extra last entry those above every bound. Each HdrHistogram bin goes
    /// wholly to one bucket (by its highest equivalent value), so the counts
    /// add up to [`count`](Self::count) exactly.
    pub fn bucket_counts(&self, bounds_ns: &[u64]) -> Vec<u64> {
        let mut out = vec![0u64; bounds_ns.len() + 1];
        for v in self.hist.iter_recorded() {
            let at = bounds_ns.partition_point(|&b| b < v.value_iterated_to());
            out[at] += v.count_at_value();
        }
        out
    }

    /// Sum of all samples in nanoseconds (from the mean, so within the
    /// histogram's precision).
    pub fn sum_ns(&self) -> f64 {
        self.hist.mean() * self.hist.len() as f64
    }

    /// The samples recorded after `earlier` was taken, when `earlier` is an
    /// older copy of this same histogram (`l2sw top` turns two snapshots a
    /// second apart into that second's percentiles). If `earlier` holds a
    /// sample this one does not (the histogram was reset in between), all of
    /// this one's samples are newer, and that is what is returned.
    pub fn since(&self, earlier: &LatencyHistogram) -> LatencyHistogram {
        let mut out = self.clone();
        if out.hist.subtract(&earlier.hist).is_err() {
            out = self.clone();
        }
        out
    }

    /// Forgets all samples; keeps the allocation.
    pub fn reset(&mut self) {
        self.hist.reset();
    }

    pub fn summary(&self) -> LatencySummary {
        if self.hist.is_empty() {
            return LatencySummary::default();
        }
        let q = |q: f64| us(self.hist.value_at_quantile(q));
        LatencySummary {
            count: self.hist.len(),
            min_us: us(self.hist.min()),
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            p999_us: q(0.999),
            p9999_us: q(0.9999),
            max_us: us(self.hist.max()),
            mean_us: self.hist.mean() / 1000.0,
        }
    }

    /// The standard HdrHistogram percentile distribution text (".hgrm"),
    /// values in microseconds, laid out exactly like Java HdrHistogram's
    /// `outputPercentileDistribution(out, 5, 1000.0)` so its plotters and
    /// `HistogramLogProcessor` tooling read it:
    ///
    /// ```text
    ///        Value     Percentile TotalCount 1/(1-Percentile)
    ///
    ///        0.001 0.000000000000          1           1.00
    ///        1.000 0.100000000000       1000           1.11
    ///      ...
    ///       10.007 0.999902343750      10000       10240.00
    ///       10.007 1.000000000000      10000
    /// #[Mean    =        5.001, StdDeviation   =        2.887]
    /// #[Max     =       10.007, Total count    =        10000]
    /// #[Buckets =           26, SubBuckets     =         2048]
    /// ```
    ///
    /// The last row (100 %) has no 1/(1-Percentile) column, as in Java.
    pub fn hgrm(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored on purpose.
        let _ = writeln!(
            out,
            "{:>12} {:>14} {:>10} {:>14}\n",
            "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
        );
        if !self.hist.is_empty() {
            let mut total = 0u64;
            for v in self.hist.iter_quantiles(HGRM_TICKS_PER_HALF_DISTANCE) {
                let value = us(v.value_iterated_to());
                let q = v.quantile_iterated_to();
                total += v.count_since_last_iteration();
                if q < 1.0 {
                    let _ = writeln!(
                        out,
                        "{value:12.3} {q:2.12} {total:10} {:14.2}",
                        1.0 / (1.0 - q)
                    );
                } else {
                    let _ = writeln!(out, "{value:12.3} {q:2.12} {total:10}");
                }
            }
        }
        let (mean, stdev, max) = if self.hist.is_empty() {
            (0.0, 0.0, 0.0)
        } else {
            (
                self.hist.mean() / 1000.0,
                self.hist.stdev() / 1000.0,
                us(self.hist.max()),
            )
        };
        let _ = writeln!(
            out,
            "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]"
        );
        let _ = writeln!(
            out,
            "#[Max     = {max:12.3}, Total count    = {:12}]",
            self.hist.len()
        );
        let _ = writeln!(
            out,
            "#[Buckets = {:12}, SubBuckets     = {:12}]",
            self.hist.buckets(),
            sub_bucket_count(SIGNIFICANT_DIGITS)
        );
        out
    }

    /// The whole histogram as the compressed V2 base64 string HdrHistogram
    /// interval logs use ("HISTFAAA..."): lossless, typically a few hundred
    /// bytes, and safe to embed in JSON.
    pub fn to_encoded(&self) -> String {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.hist, &mut bytes)
            // Only I/O errors on the writer or a counts array beyond usize
            // can fail this; a Vec and our fixed range rule both out.
            .expect("serializing a histogram into memory cannot fail");
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// Decodes [`to_encoded`](Self::to_encoded)'s output. Also accepts any
    /// compressed V2 histogram whose range and precision fit ours (low >= 1 ns,
    /// high <= 60 s, <= 3 digits), re-recorded at our precision.
    pub fn from_encoded(s: &str) -> Result<Self, LatencyDecodeError> {
        let s = s.trim();
        if s.len() > MAX_ENCODED_CHARS {
            return Err(LatencyDecodeError::TooLong {
                len: s.len(),
                max: MAX_ENCODED_CHARS,
            });
        }
        let bytes = base64::engine::general_purpose::STANDARD.decode(s)?;
        let cookie = be_u32(&bytes, 0).unwrap_or(0);
        if cookie != V2_COMPRESSED_COOKIE || bytes.len() < 8 {
            return Err(LatencyDecodeError::NotAHistogram { cookie });
        }
        // Inflate ourselves, bounded, and vet the header before handing the
        // plain V2 form to hdrhistogram: its decoder trusts the header's
        // lengths and range and would allocate whatever they say.
        let mut inflated = Vec::new();
        flate2::read::ZlibDecoder::new(&bytes[8..])
            .take(MAX_INFLATED_BYTES as u64 + 1)
            .read_to_end(&mut inflated)
            .map_err(LatencyDecodeError::Inflate)?;
        if inflated.len() > MAX_INFLATED_BYTES {
            return Err(LatencyDecodeError::Inflated);
        }
        let header = (
            be_u32(&inflated, 0),
            be_u32(&inflated, 12),
            be_u64(&inflated, 16),
            be_u64(&inflated, 24),
        );
        let (Some(V2_COOKIE), Some(digits), Some(low), Some(high)) = header else {
            return Err(LatencyDecodeError::NotAHistogram {
                cookie: header.0.unwrap_or(0),
            });
        };
        if low < LOWEST_NS
            || high > HIGHEST_NS
            || high < 2 * low
            || digits > u32::from(SIGNIFICANT_DIGITS)
        {
            return Err(LatencyDecodeError::Incompatible { low, high, digits });
        }
        debug_assert!(inflated.len() >= V2_HEADER_LEN);
        let theirs: Histogram<u64> = Deserializer::new().deserialize(&mut &inflated[..])?;
        let mut out = Self::new();
        out.hist
            .add(&theirs)
            .map_err(|_| LatencyDecodeError::Incompatible { low, high, digits })?;
        Ok(out)
    }
}

/// Serialized as the [`to_encoded`](LatencyHistogram::to_encoded) string, so
/// a histogram can sit in any control-protocol struct.
impl Serialize for LatencyHistogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_encoded())
    }
}

impl<'de> Deserialize<'de> for LatencyHistogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LatencyHistogram::from_encoded(&s).map_err(serde::de::Error::custom)
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// HdrHistogram's sub-bucket count for a precision: the power of two that
/// holds 2 * 10^digits values at unit resolution (2048 for 3 digits). The
/// crate does not expose it, and the hgrm footer prints it.
fn sub_bucket_count(digits: u8) -> u64 {
    (2 * 10u64.pow(u32::from(digits))).next_power_of_two()
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests;
