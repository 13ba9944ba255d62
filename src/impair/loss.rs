//! Loss generators: independent (optionally correlated) loss, the
//! Gilbert-Elliott model and the 4-state Markov model (netem's `loss random`,
//! `loss gemodel` and `loss state`).

use super::rng::{scaled, Correlated, Rng};
use super::spec::{FourState, Gemodel, LossSpec};

/// A loss generator with its state.
#[derive(Debug, Clone)]
pub enum LossGen {
    None,
    Random(Correlated),
    /// Transition and loss probabilities scaled to `u32::MAX`.
    Gilbert {
        p: u32,
        r: u32,
        /// Loss when a draw exceeds `h` in the bad state (netem's `a3`).
        h: u32,
        /// Loss probability in the good state.
        k1: u32,
        bad: bool,
    },
    FourState {
        p13: u32,
        p31: u32,
        p32: u32,
        p23: u32,
        p14: u32,
        state: State4,
    },
}

/// The 4-state model's states (netem numbers them 1..4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State4 {
    /// 1: frames get through, in a gap between bursts.
    TxGap,
    /// 2: frames get through, inside a burst.
    TxBurst,
    /// 3: frames are lost, inside a burst.
    LostBurst,
    /// 4: an isolated loss inside a gap.
    LostGap,
}

impl LossGen {
    pub fn new(spec: &LossSpec) -> LossGen {
        match spec {
            LossSpec::None => LossGen::None,
            LossSpec::Random {
                percent,
                correlation,
            } => LossGen::Random(Correlated::new(percent.fraction(), correlation.fraction())),
            LossSpec::Gemodel(Gemodel {
                p,
                r,
                one_minus_h,
                one_minus_k,
            }) => LossGen::Gilbert {
                p: scaled(p.fraction()),
                r: scaled(r.fraction()),
                // tc sends h = 1 - (1-h); a draw above h loses the frame.
                h: u32::MAX - scaled(one_minus_h.fraction()),
                k1: scaled(one_minus_k.fraction()),
                bad: false,
            },
            LossSpec::State(FourState {
                p13,
                p31,
                p32,
                p23,
                p14,
            }) => LossGen::FourState {
                p13: scaled(p13.fraction()),
                p31: scaled(p31.fraction()),
                p32: scaled(p32.fraction()),
                p23: scaled(p23.fraction()),
                p14: scaled(p14.fraction()),
                state: State4::TxGap,
            },
        }
    }

    /// Whether the next frame is lost; advances the model.
    pub fn lose(&mut self, rng: &mut Rng) -> bool {
        match self {
            LossGen::None => false,
            LossGen::Random(c) => c.fire(rng),
            LossGen::Gilbert { p, r, h, k1, bad } => {
                // One draw decides the transition, a second the loss in the
                // state moved to, as netem does.
                if !*bad {
                    if rng.next_u32() < *p {
                        *bad = true;
                    }
                    rng.next_u32() < *k1
                } else {
                    if rng.next_u32() < *r {
                        *bad = false;
                    }
                    rng.next_u32() > *h
                }
            }
            LossGen::FourState {
                p13,
                p31,
                p32,
                p23,
                p14,
                state,
            } => {
                let rnd = rng.next_u32() as u64;
                let (p13, p31, p32, p23, p14) = (
                    *p13 as u64,
                    *p31 as u64,
                    *p32 as u64,
                    *p23 as u64,
                    *p14 as u64,
                );
                match *state {
                    State4::TxGap => {
                        if rnd < p14 {
                            *state = State4::LostGap;
                            true
                        } else if rnd < p14 + p13 {
                            *state = State4::LostBurst;
                            true
                        } else {
                            false
                        }
                    }
                    State4::TxBurst => {
                        if rnd < p23 {
                            *state = State4::LostBurst;
                            true
                        } else {
                            false
                        }
                    }
                    State4::LostBurst => {
                        if rnd < p32 {
                            *state = State4::TxBurst;
                            false
                        } else if rnd < p32 + p31 {
                            *state = State4::TxGap;
                            false
                        } else {
                            true
                        }
                    }
                    State4::LostGap => {
                        *state = State4::TxGap;
                        false
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impair::spec::Percent;

    fn pct(x: f64) -> Percent {
        Percent::new(x).unwrap()
    }

    /// Loss rate and mean burst length (runs of consecutive losses).
    fn run(spec: LossSpec, n: usize, seed: u64) -> (f64, f64) {
        let mut rng = Rng::new(seed);
        let mut g = LossGen::new(&spec);
        let (mut lost, mut bursts, mut prev) = (0usize, 0usize, false);
        for _ in 0..n {
            let l = g.lose(&mut rng);
            if l {
                lost += 1;
                if !prev {
                    bursts += 1;
                }
            }
            prev = l;
        }
        (lost as f64 / n as f64, lost as f64 / bursts.max(1) as f64)
    }

    #[test]
    fn random_loss_rate() {
        let (rate, burst) = run(
            LossSpec::Random {
                percent: pct(10.0),
                correlation: pct(0.0),
            },
            200_000,
            1,
        );
        assert!((rate - 0.10).abs() < 0.005, "{rate}");
        // Independent losses: mean run length 1/(1-p) = 1.11.
        assert!((burst - 1.11).abs() < 0.05, "{burst}");
        let (none, _) = run(
            LossSpec::Random {
                percent: pct(0.0),
                correlation: pct(0.0),
            },
            10_000,
            1,
        );
        assert_eq!(none, 0.0);
        let (all, _) = run(
            LossSpec::Random {
                percent: pct(100.0),
                correlation: pct(0.0),
            },
            10_000,
            1,
        );
        assert_eq!(all, 1.0);
    }

    #[test]
    fn correlated_loss_comes_in_longer_bursts() {
        let (_, plain) = run(
            LossSpec::Random {
                percent: pct(20.0),
                correlation: pct(0.0),
            },
            200_000,
            2,
        );
        let (rate, bursty) = run(
            LossSpec::Random {
                percent: pct(20.0),
                correlation: pct(90.0),
            },
            200_000,
            2,
        );
        // Runs of losses last 1/(1 - (p + rho (1-p))) = 1/0.08 = 12.5.
        assert!(bursty > 4.0 * plain, "{bursty} vs {plain}");
        assert!((rate - 0.20).abs() < 0.02, "{rate}");
    }

    #[test]
    fn gilbert_elliott_matches_its_stationary_law() {
        // p 5 %, r 25 %, loss 80 % in bad (1-h), 1 % in good (1-k).
        let spec = LossSpec::Gemodel(Gemodel {
            p: pct(5.0),
            r: pct(25.0),
            one_minus_h: pct(80.0),
            one_minus_k: pct(1.0),
        });
        let (rate, burst) = run(spec, 400_000, 3);
        // P(bad) = p/(p+r) = 1/6; loss = 1/6*0.8 + 5/6*0.01 = 0.1417.
        assert!((rate - 0.1417).abs() < 0.01, "{rate}");
        assert!(burst > 1.5, "{burst}");
        // Simple Gilbert (tc defaults: r = 1-p, all lost in bad, none in good):
        // the loss rate is p.
        let simple = LossSpec::Gemodel(Gemodel {
            p: pct(10.0),
            r: pct(90.0),
            one_minus_h: pct(100.0),
            one_minus_k: pct(0.0),
        });
        let (rate, _) = run(simple, 200_000, 4);
        assert!((rate - 0.10).abs() < 0.01, "{rate}");
    }

    #[test]
    fn four_state_bernoulli_and_bursts() {
        // tc `loss state 10%`: p31 = 90 %, others default: Bernoulli 10 %.
        let spec = LossSpec::State(FourState {
            p13: pct(10.0),
            p31: pct(90.0),
            p32: pct(0.0),
            p23: pct(100.0),
            p14: pct(0.0),
        });
        let (rate, _) = run(spec, 200_000, 5);
        assert!((rate - 0.10).abs() < 0.01, "{rate}");
        // Isolated losses only (p14): every loss is a burst of one.
        let iso = LossSpec::State(FourState {
            p13: pct(0.0),
            p31: pct(100.0),
            p32: pct(0.0),
            p23: pct(100.0),
            p14: pct(5.0),
        });
        let (rate, burst) = run(iso, 200_000, 6);
        assert!(rate > 0.03 && rate < 0.06, "{rate}");
        assert!((burst - 1.0).abs() < 1e-9, "{burst}");
        // Long bursts: leaving state 3 is rare.
        let long = LossSpec::State(FourState {
            p13: pct(1.0),
            p31: pct(10.0),
            p32: pct(0.0),
            p23: pct(100.0),
            p14: pct(0.0),
        });
        let (_, burst) = run(long, 200_000, 7);
        assert!(burst > 7.0 && burst < 13.0, "{burst}");
    }
}
