//! Delay distributions: netem's inverse-CDF tables, generated here from the
//! same mathematics iproute2's `maketable`, `normal`, `pareto` and
//! `paretonormal` programs use, instead of being read from `.dist` files.
//!
//! A table holds 4096 signed 16-bit values in units of 1/8192 of a standard
//! deviation (`NETEM_DIST_SCALE`), sorted, so a uniform index into it draws
//! from the distribution. A delay is then `mu + sigma * table[rnd % 4096] /
//! 8192`, rounded as netem rounds it. "uniform" is netem's built-in case with
//! no table: `mu - sigma + rnd % (2 sigma)`.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Entries per table, as iproute2 writes them.
pub const TABLE_SIZE: usize = 4096;
/// One standard deviation in table units (`NETEM_DIST_SCALE`).
pub const DIST_SCALE: i64 = 8192;
/// Shape of the Pareto tables (iproute2's `a`).
const PARETO_SHAPE: f64 = 3.0;

/// How jitter is distributed around the delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// Uniform in `[delay - jitter, delay + jitter)`: netem without a table.
    #[default]
    Uniform,
    Normal,
    Pareto,
    Paretonormal,
}

impl Distribution {
    pub const ALL: [Distribution; 4] = [
        Distribution::Uniform,
        Distribution::Normal,
        Distribution::Pareto,
        Distribution::Paretonormal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Distribution::Uniform => "uniform",
            Distribution::Normal => "normal",
            Distribution::Pareto => "pareto",
            Distribution::Paretonormal => "paretonormal",
        }
    }

    pub fn from_name(s: &str) -> Option<Distribution> {
        Self::ALL.into_iter().find(|d| d.name() == s)
    }

    /// The table, `None` for uniform. Built once per process.
    pub fn table(self) -> Option<&'static [i16; TABLE_SIZE]> {
        static NORMAL: OnceLock<Box<[i16; TABLE_SIZE]>> = OnceLock::new();
        static PARETO: OnceLock<Box<[i16; TABLE_SIZE]>> = OnceLock::new();
        static PARETONORMAL: OnceLock<Box<[i16; TABLE_SIZE]>> = OnceLock::new();
        match self {
            Distribution::Uniform => None,
            Distribution::Normal => Some(NORMAL.get_or_init(normal_table)),
            Distribution::Pareto => Some(PARETO.get_or_init(pareto_table)),
            Distribution::Paretonormal => Some(PARETONORMAL.get_or_init(paretonormal_table)),
        }
    }
}

/// netem's `tabledist`: a value with mean `mu` and spread `sigma` (ns)
/// from one uniform 32-bit draw. May be negative when `sigma > mu`. The
/// draw's high bits pick the value (netem takes it modulo the table size or
/// `2 sigma`, which is the same law for independent draws but throws away
/// the correlation of correlated ones; see [`DelayCorrelation`]).
pub fn tabledist(mu: i64, sigma: i64, rnd: u32, dist: Distribution) -> i64 {
    if sigma == 0 {
        return mu;
    }
    match dist.table() {
        None => mu - sigma + ((rnd as i128 * 2 * sigma as i128) >> 32) as i64,
        Some(t) => {
            let v = t[(rnd >> 20) as usize] as i64;
            // netem splits sigma so the product cannot overflow 64 bits and
            // rounds the fractional part half away from zero.
            let mut x = (sigma % DIST_SCALE) * v;
            x += if x >= 0 {
                DIST_SCALE / 2
            } else {
                -DIST_SCALE / 2
            };
            x / DIST_SCALE + (sigma / DIST_SCALE) * v + mu
        }
    }
}

/// Correlated delays that keep their distribution: successive draws are
/// tied through a Gaussian copula (an AR(1) of standard normal scores with
/// coefficient `rho`, mapped back to a uniform draw through the normal
/// table), so `delay 10ms 5ms 90%` still spreads over +-5 ms but moves
/// slowly. netem's averaging of uniform draws shrinks the spread instead.
#[derive(Debug, Clone, Copy)]
pub struct DelayCorrelation {
    rho: f64,
    fresh: f64,
    z: f64,
}

impl DelayCorrelation {
    pub fn new(rho: f64) -> DelayCorrelation {
        DelayCorrelation {
            rho,
            fresh: (1.0 - rho * rho).sqrt(),
            z: 0.0,
        }
    }

    /// The next uniform 32-bit draw, correlated with the last; `a` and `b`
    /// are two fresh uniform draws.
    pub fn next(&mut self, a: u32, b: u32) -> u32 {
        if self.rho == 0.0 {
            return a;
        }
        let normal = Distribution::Normal.table().expect("normal has a table");
        let e = normal[(a >> 20) as usize] as f64 / DIST_SCALE as f64;
        self.z = self.rho * self.z + self.fresh * e;
        // The normal CDF of z, read off the table as the index of z in it.
        let key = (self.z * DIST_SCALE as f64)
            .round()
            .clamp(-32768.0, 32767.0) as i16;
        let idx = normal.partition_point(|&v| v < key).min(TABLE_SIZE - 1) as u32;
        // The table resolves 1/4096; the low bits come fresh.
        (idx << 20) | (b & 0x000f_ffff)
    }
}

fn clamp16(x: f64) -> i16 {
    x.round().clamp(i16::MIN as f64, i16::MAX as f64) as i16
}

/// Standard normal CDF by its Taylor series around 0 (converges everywhere;
/// double precision is ample for |x| <= 9, beyond which it saturates).
fn phi(x: f64) -> f64 {
    if x < 0.0 {
        return 1.0 - phi(-x);
    }
    if x > 9.0 {
        return 1.0;
    }
    // Phi(x) = 1/2 + pdf(x) * sum_n x^(2n+1) / (1*3*...*(2n+1))
    let pdf = (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let (mut term, mut sum, mut n) = (x, x, 1.0);
    while term > 1e-17 * sum {
        term *= x * x / (2.0 * n + 1.0);
        sum += term;
        n += 1.0;
    }
    0.5 + pdf * sum
}

/// Inverse of [`phi`] by bisection.
fn phi_inv(q: f64) -> f64 {
    let (mut lo, mut hi) = (-10.0f64, 10.0f64);
    for _ in 0..80 {
        let mid = (lo + hi) / 2.0;
        if phi(mid) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// The normal quantile at each entry's cell midpoint, in table units.
fn normal_values() -> Vec<f64> {
    (0..TABLE_SIZE)
        .map(|k| phi_inv((k as f64 + 0.5) / TABLE_SIZE as f64) * DIST_SCALE as f64)
        .collect()
}

/// iproute2's Pareto table: the quantile `(1 - q)^(-1/a)` at `q = k/4096`,
/// shifted by its mean 1.5 and scaled by 4/3, clamped at the i16 maximum.
fn pareto_values() -> Vec<f64> {
    (0..TABLE_SIZE)
        .map(|k| {
            let u = 1.0 - k as f64 / TABLE_SIZE as f64;
            let x = u.powf(-1.0 / PARETO_SHAPE) - 1.5;
            (x * 4.0 / 3.0 * DIST_SCALE as f64).min(i16::MAX as f64)
        })
        .collect()
}

fn normal_table() -> Box<[i16; TABLE_SIZE]> {
    to_table(normal_values().into_iter().map(clamp16))
}

fn pareto_table() -> Box<[i16; TABLE_SIZE]> {
    to_table(pareto_values().into_iter().map(clamp16))
}

/// iproute2's mix: a quarter of the normal quantile plus three quarters of
/// the Pareto one, entry by entry (integer division as C truncates it).
fn paretonormal_table() -> Box<[i16; TABLE_SIZE]> {
    let n = normal_table();
    let p = pareto_table();
    to_table((0..TABLE_SIZE).map(|k| {
        let v = (n[k] as i32 + 3 * p[k] as i32) / 4;
        v.clamp(i16::MIN as i32, i16::MAX as i32) as i16
    }))
}

fn to_table(values: impl Iterator<Item = i16>) -> Box<[i16; TABLE_SIZE]> {
    let mut t = Box::new([0i16; TABLE_SIZE]);
    for (slot, v) in t.iter_mut().zip(values) {
        *slot = v;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impair::rng::Rng;

    fn moments(xs: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
        let n = xs.clone().count() as f64;
        let mean = xs.clone().sum::<f64>() / n;
        let var = xs.map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn phi_matches_known_values() {
        assert!((phi(0.0) - 0.5).abs() < 1e-15);
        assert!((phi(1.0) - 0.841_344_746_068_543).abs() < 1e-12);
        assert!((phi(-1.96) - 0.024_997_895_148_220).abs() < 1e-12);
        assert!((phi_inv(0.975) - 1.959_963_984_540_054).abs() < 1e-9);
    }

    #[test]
    fn tables_are_sorted_quantiles() {
        for d in [
            Distribution::Normal,
            Distribution::Pareto,
            Distribution::Paretonormal,
        ] {
            let t = d.table().unwrap();
            assert!(t.windows(2).all(|w| w[0] <= w[1]), "{d:?} not sorted");
        }
    }

    #[test]
    fn normal_table_has_unit_spread_and_no_bias() {
        let t = Distribution::Normal.table().unwrap();
        let (mean, sd) = moments(t.iter().map(|&v| v as f64 / DIST_SCALE as f64));
        assert!(mean.abs() < 1e-3, "mean {mean}");
        assert!((sd - 1.0).abs() < 0.01, "sd {sd}");
        // The median sits at 0 and the tails reach past 3 sigma.
        assert!(t[TABLE_SIZE / 2].abs() < 10);
        assert!(t[0] < -3 * DIST_SCALE as i16 && t[TABLE_SIZE - 1] > 3 * DIST_SCALE as i16);
    }

    #[test]
    fn pareto_table_is_skewed_right_from_minus_two_thirds() {
        let t = Distribution::Pareto.table().unwrap();
        // The smallest value is (1 - 1.5) * 4/3 = -2/3 sigma.
        assert_eq!(t[0], clamp16(-2.0 / 3.0 * DIST_SCALE as f64));
        assert_eq!(t[TABLE_SIZE - 1], i16::MAX);
        let (mean, _) = moments(t.iter().map(|&v| v as f64 / DIST_SCALE as f64));
        // Mean 0 before truncation of the upper tail; truncated a bit lower.
        assert!(mean < 0.0 && mean > -0.1, "mean {mean}");
        // More than half the mass is below the mean: skewed right.
        let below = t.iter().filter(|&&v| v < 0).count();
        assert!(below > TABLE_SIZE * 6 / 10, "{below}");
    }

    #[test]
    fn paretonormal_lies_between_its_parts() {
        let n = Distribution::Normal.table().unwrap();
        let p = Distribution::Pareto.table().unwrap();
        let m = Distribution::Paretonormal.table().unwrap();
        for k in (0..TABLE_SIZE).step_by(97) {
            let (lo, hi) = (n[k].min(p[k]), n[k].max(p[k]));
            assert!(lo <= m[k] && m[k] <= hi, "{k}: {} {} {}", n[k], p[k], m[k]);
        }
    }

    #[test]
    fn sampled_delays_have_the_asked_mean_and_spread() {
        let (mu, sigma) = (10_000_000i64, 2_000_000i64);
        let mut rng = Rng::new(42);
        let draws = |d: Distribution, rng: &mut Rng| -> Vec<f64> {
            (0..100_000)
                .map(|_| tabledist(mu, sigma, rng.next_u32(), d) as f64)
                .collect()
        };
        let normal = draws(Distribution::Normal, &mut rng);
        let (m, s) = moments(normal.iter().copied());
        assert!((m - mu as f64).abs() < 0.01 * mu as f64, "normal mean {m}");
        assert!(
            (s - sigma as f64).abs() < 0.03 * sigma as f64,
            "normal sd {s}"
        );
        let uniform = draws(Distribution::Uniform, &mut rng);
        let (m, s) = moments(uniform.iter().copied());
        assert!((m - mu as f64).abs() < 0.01 * mu as f64, "uniform mean {m}");
        let want = sigma as f64 / 3f64.sqrt();
        assert!((s - want).abs() < 0.03 * want, "uniform sd {s}");
        assert!(uniform
            .iter()
            .all(|&x| x >= (mu - sigma) as f64 && x < (mu + sigma) as f64));
        let pareto = draws(Distribution::Pareto, &mut rng);
        let min = pareto.iter().cloned().fold(f64::MAX, f64::min);
        assert!(min >= mu as f64 - 0.67 * sigma as f64, "pareto min {min}");
        let median = {
            let mut v = pareto.clone();
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        assert!(median < mu as f64, "pareto median {median} above the mean");
    }

    #[test]
    fn correlated_delays_keep_their_spread_and_move_slowly() {
        let (mu, sigma) = (10_000_000i64, 2_000_000i64);
        let mut rng = Rng::new(9);
        for d in [Distribution::Uniform, Distribution::Normal] {
            let mut c = DelayCorrelation::new(0.9);
            let xs: Vec<f64> = (0..50_000)
                .map(|_| {
                    let (a, b) = (rng.next_u32(), rng.next_u32());
                    tabledist(mu, sigma, c.next(a, b), d) as f64
                })
                .collect();
            let (m, s) = moments(xs.iter().copied());
            let want = if d == Distribution::Uniform {
                sigma as f64 / 3f64.sqrt()
            } else {
                sigma as f64
            };
            assert!((m - mu as f64).abs() < 0.05 * mu as f64, "{d:?} mean {m}");
            assert!((s - want).abs() < 0.1 * want, "{d:?} sd {s} want {want}");
            let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>();
            let cov = xs.windows(2).map(|w| (w[0] - m) * (w[1] - m)).sum::<f64>();
            assert!(cov / var > 0.8, "{d:?} lag-1 correlation {}", cov / var);
        }
    }

    #[test]
    fn zero_jitter_is_the_delay() {
        for d in Distribution::ALL {
            assert_eq!(tabledist(5, 0, 12345, d), 5);
        }
    }
}
