//! What a user asks of an impaired port (`ImpairSpec`), the value types it is
//! written in (`Percent`, `Span`, `Rate`), their parsing from the words tc
//! users type ("1%", "10ms", "100mbit"), and the checks tc makes on the
//! combination.
//!
//! One spec travels unchanged through the CLI, the control protocol, the
//! config file (`[ports.NAME.impair]`) and `port list --json`: values are
//! written as strings with their unit, so a dump reads like the command.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::dist::Distribution;

/// A value that does not parse, or is out of range; the message is written
/// to follow the option and its value ("--loss 120%: ...").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn bad(msg: impl Into<String>) -> ValueError {
    ValueError(msg.into())
}

/// A number and its unit suffix ("1.5ms" -> (1.5, "ms")).
fn split_unit(s: &str) -> Result<(f64, &str), ValueError> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    if num.is_empty() {
        return Err(bad("expected a number"));
    }
    let v: f64 = num.parse().map_err(|_| bad("expected a number"))?;
    Ok((v, unit.trim()))
}

/// A percentage, 0 to 100. Written "1%" (a bare number is a percentage too,
/// as tc reads it).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Percent(f64);

impl Percent {
    pub const ZERO: Percent = Percent(0.0);
    pub const HUNDRED: Percent = Percent(100.0);

    pub fn new(pct: f64) -> Result<Percent, ValueError> {
        if !(0.0..=100.0).contains(&pct) || pct.is_nan() {
            return Err(bad("a percentage must be between 0 and 100"));
        }
        Ok(Percent(pct))
    }

    pub fn value(self) -> f64 {
        self.0
    }

    /// As a fraction of 1.
    pub fn fraction(self) -> f64 {
        self.0 / 100.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0.0
    }

    pub fn parse(s: &str) -> Result<Percent, ValueError> {
        let (v, unit) =
            split_unit(s).map_err(|_| bad("expected a percentage such as 1% or 0.5%"))?;
        match unit {
            "%" | "" => Percent::new(v),
            _ => Err(bad("expected a percentage such as 1% or 0.5%")),
        }
    }
}

/// Never NaN (`new` refuses it), so equality is total.
impl Eq for Percent {}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Up to 6 decimals, trailing zeros trimmed: "0.5%", "25%".
        let s = format!("{:.6}", self.0);
        let s = s.trim_end_matches('0').trim_end_matches('.');
        write!(f, "{s}%")
    }
}

/// A span of time, in nanoseconds. Written with a unit: "10ms", "1.5ms",
/// "250us", "2s", "500ns".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub u64);

/// Longest delay or jitter taken: an hour (and no overflow in the arithmetic).
pub const MAX_SPAN_NS: u64 = 3_600_000_000_000;

impl Span {
    pub fn ns(self) -> u64 {
        self.0
    }

    pub fn parse(s: &str) -> Result<Span, ValueError> {
        let (v, unit) = split_unit(s).map_err(|_| bad("expected a time such as 10ms"))?;
        let scale = match unit {
            "s" | "sec" | "secs" => 1e9,
            "ms" | "msec" | "msecs" => 1e6,
            "us" | "usec" | "usecs" | "µs" => 1e3,
            "ns" | "nsec" | "nsecs" => 1.0,
            "" => return Err(bad("give a unit: s, ms, us or ns (for example 10ms)")),
            _ => {
                return Err(bad(format!(
                    "unknown time unit {unit:?}: use s, ms, us or ns"
                )))
            }
        };
        let ns = (v * scale).round();
        if ns > MAX_SPAN_NS as f64 {
            return Err(bad("at most 3600s"));
        }
        Ok(Span(ns as u64))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if ns == 0 {
            write!(f, "0ms")
        } else if ns.is_multiple_of(1_000_000_000) {
            write!(f, "{}s", ns / 1_000_000_000)
        } else if ns.is_multiple_of(1_000_000) {
            write!(f, "{}ms", ns / 1_000_000)
        } else if ns.is_multiple_of(1_000) {
            write!(f, "{}us", ns / 1_000)
        } else {
            write!(f, "{ns}ns")
        }
    }
}

/// A rate in bits per second. Written the way tc writes rates: "100mbit",
/// "1gbit", "512kbit", "10mbps" (bytes per second); k/m/g are powers of 1000,
/// ki/mi/gi of 1024.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Rate(pub u64);

impl Rate {
    pub fn bits_per_sec(self) -> u64 {
        self.0
    }

    pub fn parse(s: &str) -> Result<Rate, ValueError> {
        let (v, unit) = split_unit(s).map_err(|_| bad("expected a rate such as 100mbit"))?;
        let unit = unit.to_ascii_lowercase();
        let (prefix, bytes) = if let Some(p) = unit.strip_suffix("bit") {
            (p.to_string(), false)
        } else if let Some(p) = unit.strip_suffix("bps") {
            (p.to_string(), true)
        } else if unit.is_empty() {
            return Err(bad(
                "give a unit: bit, kbit, mbit, gbit (or bps, kbps, mbps, gbps for bytes per second)",
            ));
        } else {
            return Err(bad(format!(
                "unknown rate unit {unit:?}: use bit, kbit, mbit, gbit or bps, kbps, mbps, gbps"
            )));
        };
        let mult: f64 = match prefix.as_str() {
            "" => 1.0,
            "k" => 1e3,
            "m" => 1e6,
            "g" => 1e9,
            "t" => 1e12,
            "ki" => 1024.0,
            "mi" => 1024.0 * 1024.0,
            "gi" => 1024.0 * 1024.0 * 1024.0,
            _ => return Err(bad(format!("unknown rate unit {unit:?}"))),
        };
        let bits = (v * mult * if bytes { 8.0 } else { 1.0 }).round();
        if bits < 8.0 {
            return Err(bad("a rate must be at least 8bit (one byte per second)"));
        }
        if bits > 1e15 {
            return Err(bad("a rate must be at most 1000tbit"));
        }
        Ok(Rate(bits as u64))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (div, unit) in [
            (1_000_000_000_000, "tbit"),
            (1_000_000_000, "gbit"),
            (1_000_000, "mbit"),
            (1_000, "kbit"),
        ] {
            if b >= div && b.is_multiple_of(div) {
                return write!(f, "{}{unit}", b / div);
            }
        }
        write!(f, "{b}bit")
    }
}

/// A queue limit from `--limit`: a bare number is packets (as netem's
/// `limit`), with a unit it is bytes ("64kib", "1mb", "1500b").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Packets(u64),
    Bytes(u64),
}

impl Limit {
    pub fn parse(s: &str) -> Result<Limit, ValueError> {
        let (v, unit) =
            split_unit(s).map_err(|_| bad("expected packets (1000) or bytes (64kib, 1mb)"))?;
        if v.fract() != 0.0 && unit.is_empty() {
            return Err(bad("a packet limit is a whole number"));
        }
        let mult: f64 = match unit.to_ascii_lowercase().as_str() {
            "" => {
                if v < 1.0 {
                    return Err(bad("a limit must be at least 1 packet"));
                }
                return Ok(Limit::Packets(v as u64));
            }
            "b" => 1.0,
            "kb" => 1e3,
            "mb" => 1e6,
            "gb" => 1e9,
            "kib" | "k" => 1024.0,
            "mib" | "m" => 1024.0 * 1024.0,
            "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
            u => {
                return Err(bad(format!(
                    "unknown size unit {u:?}: use b, kb, mb, gb, kib, mib or gib"
                )))
            }
        };
        let bytes = (v * mult).round();
        if bytes < 64.0 {
            return Err(bad("a byte limit must be at least 64b"));
        }
        Ok(Limit::Bytes(bytes as u64))
    }
}

macro_rules! string_serde {
    ($t:ty, $what:literal) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$t, E> {
                        <$t>::parse(v).map_err(|e| E::custom(format!("{v:?}: {e}")))
                    }
                    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<$t, E> {
                        self.visit_str(&v.to_string())
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$t, E> {
                        self.visit_str(&v.to_string())
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$t, E> {
                        self.visit_str(&v.to_string())
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

string_serde!(Percent, "a percentage such as \"1%\"");
string_serde!(Span, "a time such as \"10ms\"");
string_serde!(Rate, "a rate such as \"100mbit\"");

/// Which way through the port frames are impaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Frames leaving the switch through the port (as netem on the port's
    /// own device would see them).
    #[default]
    Egress,
    /// Frames arriving on the port, before the switch decides on them.
    Ingress,
    /// Both, each direction with its own queue and random state.
    Both,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Egress => "egress",
            Direction::Ingress => "ingress",
            Direction::Both => "both",
        }
    }

    pub fn from_name(s: &str) -> Option<Direction> {
        [Direction::Egress, Direction::Ingress, Direction::Both]
            .into_iter()
            .find(|d| d.name() == s)
    }

    pub fn egress(self) -> bool {
        matches!(self, Direction::Egress | Direction::Both)
    }

    pub fn ingress(self) -> bool {
        matches!(self, Direction::Ingress | Direction::Both)
    }
}

/// Gilbert-Elliott parameters as tc takes them (`gemodel p r 1-h 1-k`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gemodel {
    /// Good to bad transition probability.
    pub p: Percent,
    /// Bad to good transition probability (tc's default: 1 - p).
    pub r: Percent,
    /// Loss probability in the bad state (default 100 %).
    pub one_minus_h: Percent,
    /// Loss probability in the good state (default 0 %).
    pub one_minus_k: Percent,
}

impl Gemodel {
    /// From 1 to 4 percentages, the missing ones defaulted as tc does.
    pub fn from_args(args: &[Percent]) -> Result<Gemodel, ValueError> {
        let p = *args
            .first()
            .ok_or_else(|| bad("gemodel needs P [R [1-H [1-K]]]"))?;
        if args.len() > 4 {
            return Err(bad("gemodel takes at most 4 values: P R 1-H 1-K"));
        }
        Ok(Gemodel {
            p,
            r: args.get(1).copied().unwrap_or(Percent(100.0 - p.value())),
            one_minus_h: args.get(2).copied().unwrap_or(Percent::HUNDRED),
            one_minus_k: args.get(3).copied().unwrap_or(Percent::ZERO),
        })
    }
}

/// The 4-state Markov loss model as tc takes it (`state p13 p31 p32 p23 p14`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FourState {
    pub p13: Percent,
    pub p31: Percent,
    pub p32: Percent,
    pub p23: Percent,
    pub p14: Percent,
}

impl FourState {
    /// From 1 to 5 percentages, the missing ones defaulted as tc does.
    pub fn from_args(args: &[Percent]) -> Result<FourState, ValueError> {
        let p13 = *args
            .first()
            .ok_or_else(|| bad("state needs P13 [P31 [P32 [P23 [P14]]]]"))?;
        if args.len() > 5 {
            return Err(bad("state takes at most 5 values: P13 P31 P32 P23 P14"));
        }
        Ok(FourState {
            p13,
            p31: args.get(1).copied().unwrap_or(Percent(100.0 - p13.value())),
            p32: args.get(2).copied().unwrap_or(Percent::ZERO),
            p23: args.get(3).copied().unwrap_or(Percent::HUNDRED),
            p14: args.get(4).copied().unwrap_or(Percent::ZERO),
        })
    }
}

/// The loss model a spec amounts to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossSpec {
    None,
    Random {
        percent: Percent,
        correlation: Percent,
    },
    Gemodel(Gemodel),
    State(FourState),
}

/// Everything one port's impairment does. Unset knobs do nothing; see
/// docs/impairment.md for each one's meaning (netem's).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpairSpec {
    #[serde(default)]
    pub direction: Direction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Span>,
    /// Correlation of successive delays' random draws.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
    /// Independent random loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_correlation: Option<Percent>,
    /// Gilbert-Elliott loss instead of `loss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gemodel: Option<Gemodel>,
    /// 4-state Markov loss instead of `loss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<FourState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_correlation: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder_correlation: Option<Percent>,
    /// Reorder only every `gap`-th frame at most (netem's gap; 1 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt_correlation: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
    /// Bytes added to (or, negative, taken from) every frame's length for the
    /// rate (netem's packet overhead).
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub overhead: i32,
    /// The rate counts whole cells of this many bytes (ATM: 53).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub cellsize: u32,
    /// Bytes added to every cell.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub cell_overhead: i32,
    /// Frames the queue holds at most (netem's limit; with neither limit
    /// set, [`ImpairSpec::queue_limits`] gives the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Bytes the queue holds at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<u64>,
    /// Seed of the random source; unset, one is drawn (and shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// The default queue bound in bytes (with no `--limit`). netem's default
/// is 1000 frames, which holds 1000 MTU frames (1.2 Gbit/s at 10 ms) or
/// 1000 GSO super-frames (64 MiB): too little for one and too much for the
/// other. A byte budget holds the bandwidth-delay product whatever the
/// frames' size: 32 MiB is 10 ms at 26 Gbit/s, 100 ms at 2.6 Gbit/s.
pub const DEFAULT_LIMIT_BYTES: u64 = 32 << 20;

/// The default bound in frames (with no `--limit`): only frames under
/// 512 bytes reach it before the byte budget; it bounds what the queue's
/// per-frame bookkeeping can take.
pub const DEFAULT_LIMIT_FRAMES: u64 = 65_536;

/// With a rate and no `--limit`, the queue holds what the rate sends during
/// the delay (and jitter) plus this much backlog, so a slow link does not
/// queue for seconds before it drops (netem's 1000 frames are 1.2 s at
/// 10 Mbit/s).
pub const DEFAULT_RATE_BACKLOG_NS: u64 = 200_000_000;

/// The least default byte budget under a rate: a few super-frames.
pub const DEFAULT_RATE_MIN_BYTES: u64 = 256 << 10;

/// A combination tc would refuse, or that does nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error(
        "nothing to impair: give at least one of delay, loss, duplicate, reorder, corrupt or rate"
    )]
    Empty,
    #[error("jitter needs a delay (--delay)")]
    JitterWithoutDelay,
    #[error("a delay correlation needs jitter (--jitter)")]
    CorrelationWithoutJitter,
    #[error("a distribution needs a delay and jitter (--delay, --jitter), as in netem")]
    DistributionWithoutJitter,
    #[error("loss, gemodel and state are alternative loss models: give one")]
    TwoLossModels,
    #[error("{0} correlation given without {0}")]
    CorrelationWithout(&'static str),
    #[error("reordering needs a delay (--delay): reordered frames are the ones sent without it")]
    ReorderWithoutDelay,
    #[error("a gap needs reordering (--reorder)")]
    GapWithoutReorder,
    #[error("gap must be at least 1")]
    ZeroGap,
    #[error("overhead and cellsize need a rate (--rate)")]
    OverheadWithoutRate,
    #[error("limit must be at least 1 frame")]
    ZeroLimit,
    #[error("jitter {jitter} larger than an hour")]
    TooLong { jitter: Span },
}

impl ImpairSpec {
    /// Checks the combination the way tc checks netem's options.
    pub fn validate(&self) -> Result<(), SpecError> {
        let set = |p: Option<Percent>| p.is_some_and(|p| !p.is_zero());
        let any = self.delay.is_some_and(|d| d.0 > 0)
            || self.jitter.is_some_and(|d| d.0 > 0)
            || self.loss.is_some()
            || self.gemodel.is_some()
            || self.state.is_some()
            || set(self.duplicate)
            || set(self.reorder)
            || set(self.corrupt)
            || self.rate.is_some();
        if !any {
            return Err(SpecError::Empty);
        }
        if self.jitter.is_some() && self.delay.is_none() {
            return Err(SpecError::JitterWithoutDelay);
        }
        if self.correlation.is_some() && self.jitter.is_none() {
            return Err(SpecError::CorrelationWithoutJitter);
        }
        if self
            .distribution
            .is_some_and(|d| d != Distribution::Uniform)
            && (self.delay.is_none_or(|d| d.0 == 0) || self.jitter.is_none_or(|j| j.0 == 0))
        {
            return Err(SpecError::DistributionWithoutJitter);
        }
        let models = [
            self.loss.is_some(),
            self.gemodel.is_some(),
            self.state.is_some(),
        ];
        if models.iter().filter(|m| **m).count() > 1 {
            return Err(SpecError::TwoLossModels);
        }
        for (cor, knob, name) in [
            (self.loss_correlation, self.loss, "loss"),
            (self.duplicate_correlation, self.duplicate, "duplicate"),
            (self.reorder_correlation, self.reorder, "reorder"),
            (self.corrupt_correlation, self.corrupt, "corrupt"),
        ] {
            if cor.is_some() && knob.is_none() {
                return Err(SpecError::CorrelationWithout(name));
            }
        }
        if set(self.reorder) && self.delay.is_none_or(|d| d.0 == 0) {
            return Err(SpecError::ReorderWithoutDelay);
        }
        if self.gap.is_some() && !set(self.reorder) {
            return Err(SpecError::GapWithoutReorder);
        }
        if self.gap == Some(0) {
            return Err(SpecError::ZeroGap);
        }
        if (self.overhead != 0 || self.cellsize != 0 || self.cell_overhead != 0)
            && self.rate.is_none()
        {
            return Err(SpecError::OverheadWithoutRate);
        }
        if self.limit == Some(0) {
            return Err(SpecError::ZeroLimit);
        }
        Ok(())
    }

    pub fn loss_spec(&self) -> LossSpec {
        if let Some(g) = self.gemodel {
            LossSpec::Gemodel(g)
        } else if let Some(s) = self.state {
            LossSpec::State(s)
        } else if let Some(p) = self.loss {
            LossSpec::Random {
                percent: p,
                correlation: self.loss_correlation.unwrap_or_default(),
            }
        } else {
            LossSpec::None
        }
    }

    /// What the queue holds at most: (frames, bytes). An explicit `--limit`
    /// is the only bound (frames as netem's, or bytes); without one, the
    /// defaults above, the byte budget cut to the rate's backlog.
    pub fn queue_limits(&self) -> (u64, u64) {
        match (self.limit, self.limit_bytes) {
            (None, None) => {
                let mut bytes = DEFAULT_LIMIT_BYTES;
                if let Some(r) = self.rate {
                    let ns = self.delay.map_or(0, Span::ns)
                        + self.jitter.map_or(0, Span::ns)
                        + DEFAULT_RATE_BACKLOG_NS;
                    let need = (r.bits_per_sec() / 8) as u128 * ns as u128 / 1_000_000_000;
                    bytes = bytes.min((need as u64).max(DEFAULT_RATE_MIN_BYTES));
                }
                (DEFAULT_LIMIT_FRAMES, bytes)
            }
            (frames, bytes) => (frames.unwrap_or(u64::MAX), bytes.unwrap_or(u64::MAX)),
        }
    }
}

/// tc-style one line: "delay 10ms 2ms 25% distribution normal loss 1% ...".
impl fmt::Display for ImpairSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if self.direction != Direction::Egress {
            parts.push(format!("direction {}", self.direction.name()));
        }
        if let Some(d) = self.delay {
            let mut s = format!("delay {d}");
            if let Some(j) = self.jitter {
                s += &format!(" {j}");
                if let Some(c) = self.correlation {
                    s += &format!(" {c}");
                }
            }
            parts.push(s);
            if let Some(dist) = self.distribution {
                parts.push(format!("distribution {}", dist.name()));
            }
        }
        let cor = |c: Option<Percent>| c.map(|c| format!(" {c}")).unwrap_or_default();
        if let Some(l) = self.loss {
            parts.push(format!("loss {l}{}", cor(self.loss_correlation)));
        }
        if let Some(g) = self.gemodel {
            parts.push(format!(
                "loss gemodel {} {} {} {}",
                g.p, g.r, g.one_minus_h, g.one_minus_k
            ));
        }
        if let Some(s) = self.state {
            parts.push(format!(
                "loss state {} {} {} {} {}",
                s.p13, s.p31, s.p32, s.p23, s.p14
            ));
        }
        if let Some(d) = self.duplicate {
            parts.push(format!("duplicate {d}{}", cor(self.duplicate_correlation)));
        }
        if let Some(r) = self.reorder {
            parts.push(format!("reorder {r}{}", cor(self.reorder_correlation)));
            if let Some(g) = self.gap {
                parts.push(format!("gap {g}"));
            }
        }
        if let Some(c) = self.corrupt {
            parts.push(format!("corrupt {c}{}", cor(self.corrupt_correlation)));
        }
        if let Some(r) = self.rate {
            let mut s = format!("rate {r}");
            if self.overhead != 0 || self.cellsize != 0 {
                s += &format!(" overhead {}", self.overhead);
            }
            if self.cellsize != 0 {
                s += &format!(
                    " cellsize {} celloverhead {}",
                    self.cellsize, self.cell_overhead
                );
            }
            parts.push(s);
        }
        if let Some(l) = self.limit {
            parts.push(format!("limit {l}"));
        }
        if let Some(b) = self.limit_bytes {
            parts.push(format!("limit {b}b"));
        }
        if let Some(s) = self.seed {
            parts.push(format!("seed {s}"));
        }
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!(Percent::parse("1%").unwrap().value(), 1.0);
        assert_eq!(Percent::parse("0.5%").unwrap().value(), 0.5);
        assert_eq!(Percent::parse("25").unwrap().value(), 25.0);
        assert_eq!(
            Percent::parse("120%").unwrap_err().to_string(),
            "a percentage must be between 0 and 100"
        );
        assert!(Percent::parse("ten").is_err());
        assert!(Percent::parse("5x").is_err());
        assert_eq!(Percent::parse("0.25%").unwrap().to_string(), "0.25%");
        assert_eq!(Percent::parse("100").unwrap().to_string(), "100%");
    }

    #[test]
    fn times() {
        assert_eq!(Span::parse("10ms").unwrap().ns(), 10_000_000);
        assert_eq!(Span::parse("1.5ms").unwrap().ns(), 1_500_000);
        assert_eq!(Span::parse("250us").unwrap().ns(), 250_000);
        assert_eq!(Span::parse("2s").unwrap().ns(), 2_000_000_000);
        assert!(Span::parse("10")
            .unwrap_err()
            .to_string()
            .contains("give a unit"));
        assert!(Span::parse("10min").is_err());
        assert!(Span::parse("2h").is_err());
        assert_eq!(Span(1_500_000).to_string(), "1500us");
        assert_eq!(Span(20_000_000).to_string(), "20ms");
    }

    #[test]
    fn rates() {
        assert_eq!(Rate::parse("100mbit").unwrap().0, 100_000_000);
        assert_eq!(Rate::parse("1gbit").unwrap().0, 1_000_000_000);
        assert_eq!(Rate::parse("10mbps").unwrap().0, 80_000_000);
        assert_eq!(Rate::parse("1kibit").unwrap().0, 1024);
        assert_eq!(Rate::parse("50Mbit").unwrap().to_string(), "50mbit");
        assert!(Rate::parse("100").unwrap_err().to_string().contains("unit"));
        assert!(Rate::parse("100mb").is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(Limit::parse("1000").unwrap(), Limit::Packets(1000));
        assert_eq!(Limit::parse("64kib").unwrap(), Limit::Bytes(65536));
        assert_eq!(Limit::parse("1mb").unwrap(), Limit::Bytes(1_000_000));
        assert!(Limit::parse("0").is_err());
        assert!(Limit::parse("1.5").is_err());
    }

    #[test]
    fn tc_defaults_for_loss_models() {
        let g = Gemodel::from_args(&[Percent(1.0)]).unwrap();
        assert_eq!(g.r.value(), 99.0);
        assert_eq!(g.one_minus_h.value(), 100.0);
        assert_eq!(g.one_minus_k.value(), 0.0);
        let s = FourState::from_args(&[Percent(5.0), Percent(50.0)]).unwrap();
        assert_eq!(
            (s.p31.value(), s.p32.value(), s.p23.value()),
            (50.0, 0.0, 100.0)
        );
    }

    #[test]
    fn combinations_tc_refuses() {
        let base = ImpairSpec::default();
        assert_eq!(base.validate(), Err(SpecError::Empty));
        let jitter_only = ImpairSpec {
            jitter: Some(Span(1)),
            ..base.clone()
        };
        assert_eq!(jitter_only.validate(), Err(SpecError::JitterWithoutDelay));
        let reorder = ImpairSpec {
            reorder: Some(Percent(5.0)),
            ..base.clone()
        };
        assert_eq!(reorder.validate(), Err(SpecError::ReorderWithoutDelay));
        let two = ImpairSpec {
            loss: Some(Percent(1.0)),
            gemodel: Some(Gemodel::from_args(&[Percent(1.0)]).unwrap()),
            ..base.clone()
        };
        assert_eq!(two.validate(), Err(SpecError::TwoLossModels));
        let dist = ImpairSpec {
            delay: Some(Span(10)),
            distribution: Some(Distribution::Normal),
            ..base.clone()
        };
        assert_eq!(dist.validate(), Err(SpecError::DistributionWithoutJitter));
        let ok = ImpairSpec {
            delay: Some(Span(10_000_000)),
            jitter: Some(Span(1_000_000)),
            correlation: Some(Percent(25.0)),
            distribution: Some(Distribution::Pareto),
            reorder: Some(Percent(5.0)),
            gap: Some(3),
            ..base
        };
        assert_eq!(ok.validate(), Ok(()));
    }

    #[test]
    fn toml_and_json_round_trip_reads_like_the_command() {
        let spec = ImpairSpec {
            delay: Some(Span::parse("10ms").unwrap()),
            jitter: Some(Span::parse("2ms").unwrap()),
            distribution: Some(Distribution::Normal),
            loss: Some(Percent(1.0)),
            rate: Some(Rate::parse("100mbit").unwrap()),
            limit: Some(5000),
            seed: Some(7),
            ..Default::default()
        };
        let t = toml::to_string(&spec).unwrap();
        assert!(t.contains("delay = \"10ms\""), "{t}");
        assert!(t.contains("rate = \"100mbit\""), "{t}");
        let back: ImpairSpec = toml::from_str(&t).unwrap();
        assert_eq!(back, spec);
        let j = serde_json::to_string(&spec).unwrap();
        let back: ImpairSpec = serde_json::from_str(&j).unwrap();
        assert_eq!(back, spec);
        let err = toml::from_str::<ImpairSpec>("loss = \"120%\"").unwrap_err();
        assert!(err.to_string().contains("between 0 and 100"), "{err}");
        assert!(toml::from_str::<ImpairSpec>("delya = \"1ms\"").is_err());
        assert_eq!(
            spec.to_string(),
            "delay 10ms 2ms distribution normal loss 1% rate 100mbit limit 5000 seed 7"
        );
    }
}
