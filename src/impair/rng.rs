//! The impairment's random source: a seeded xoshiro256** generator, and
//! netem's correlated draw built on it.
//!
//! netem draws 32-bit numbers and compares them against probabilities scaled
//! to `u32::MAX`; the same is done here so every knob has netem's resolution.
//! The generator differs from the kernel's (prandom's Tausworthe): the
//! sequences are not netem's, only their laws.

/// xoshiro256** (Blackman and Vigna), seeded through splitmix64 so any
/// 64-bit seed, 0 included, gives a well-mixed state.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let out = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// The high half: xoshiro's best bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift as the kernel's
    /// `get_random_u32_below` does (bias below 2^-32 for the sizes used here).
    pub fn below(&mut self, n: u32) -> u32 {
        ((self.next_u32() as u64 * n as u64) >> 32) as u32
    }
}

/// A probability scaled to `u32::MAX` the way tc sends it to netem
/// (`rint(p * UINT32_MAX)`).
pub fn scaled(fraction: f64) -> u32 {
    (fraction.clamp(0.0, 1.0) * u32::MAX as f64).round() as u32
}

/// A yes/no event with probability `p` whose successive outcomes are
/// correlated by `rho`: a two-state Markov chain that fires with
/// probability `p + rho (1 - p)` after a hit and `p (1 - rho)` after a
/// miss. Its long-run rate is exactly `p` and the lag-1 correlation of
/// outcomes is `rho`, which is what `loss 20% 50%` promises. netem instead
/// averages the uniform draws (`get_crandom`), which narrows them so a
/// correlated knob fires far less often than asked (see docs/impairment.md).
#[derive(Debug, Clone, Copy, Default)]
pub struct Correlated {
    after_hit: u32,
    after_miss: u32,
    last: bool,
}

impl Correlated {
    /// `p` and `rho` as fractions of 1.
    pub fn new(p: f64, rho: f64) -> Correlated {
        Correlated {
            after_hit: scaled(p + rho * (1.0 - p)),
            after_miss: scaled(p * (1.0 - rho)),
            last: false,
        }
    }

    pub fn fire(&mut self, rng: &mut Rng) -> bool {
        let p = if self.last {
            self.after_hit
        } else {
            self.after_miss
        };
        // netem's comparison: an event when p >= draw, never when p is 0.
        self.last = p != 0 && p >= rng.next_u32();
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_other_seed_other() {
        let a: Vec<u32> = (0..8)
            .scan(Rng::new(7), |r, _| Some(r.next_u32()))
            .collect();
        let b: Vec<u32> = (0..8)
            .scan(Rng::new(7), |r, _| Some(r.next_u32()))
            .collect();
        let c: Vec<u32> = (0..8)
            .scan(Rng::new(8), |r, _| Some(r.next_u32()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn draws_are_uniform_enough() {
        let mut r = Rng::new(1);
        let n = 200_000;
        let mut buckets = [0u32; 10];
        for _ in 0..n {
            buckets[r.below(10) as usize] += 1;
        }
        for b in buckets {
            assert!((b as f64 - 20_000.0).abs() < 1_000.0, "{buckets:?}");
        }
    }

    #[test]
    fn correlated_events_keep_their_rate_and_tie_neighbours() {
        for (p, rho) in [(0.2, 0.0), (0.2, 0.5), (0.05, 0.9)] {
            let mut r = Rng::new(3);
            let mut c = Correlated::new(p, rho);
            let xs: Vec<f64> = (0..400_000)
                .map(|_| if c.fire(&mut r) { 1.0 } else { 0.0 })
                .collect();
            let mean = xs.iter().sum::<f64>() / xs.len() as f64;
            assert!((mean - p).abs() < 0.1 * p, "p {p} rho {rho}: rate {mean}");
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
            let cov = xs
                .windows(2)
                .map(|w| (w[0] - mean) * (w[1] - mean))
                .sum::<f64>();
            let got = cov / var;
            assert!(
                (got - rho).abs() < 0.03,
                "p {p} rho {rho}: correlation {got}"
            );
        }
    }
}
