//! `l2sw port impair`: the flags, and their translation into an
//! `ImpairSpec` with errors that name the flag and the value.

use anyhow::{anyhow, bail, Result};
use clap::Args;

use l2sw::control::protocol::Request;
use l2sw::impair::{
    Direction, Distribution, FourState, Gemodel, ImpairSpec, Limit, Percent, Rate, Span,
};

/// Flags of `port impair`, named after netem's knobs.
#[derive(Args, Debug)]
pub struct ImpairArgs {
    pub port: String,
    /// Remove the port's impairment (frames still queued leave at once).
    #[arg(long)]
    pub clear: bool,
    /// Which frames: egress (leaving through the port, default), ingress (arriving, before the switch decides) or both.
    #[arg(long, value_name = "egress|ingress|both")]
    pub direction: Option<String>,
    /// Fixed delay, e.g. 10ms.
    #[arg(long, value_name = "TIME")]
    pub delay: Option<String>,
    /// Random variation of the delay, e.g. 2ms.
    #[arg(long, value_name = "TIME")]
    pub jitter: Option<String>,
    /// Correlation of successive delays, e.g. 25%.
    #[arg(long, value_name = "PERCENT")]
    pub correlation: Option<String>,
    /// Shape of the jitter: uniform (default), normal, pareto, paretonormal.
    #[arg(long)]
    pub distribution: Option<String>,
    /// Random loss, e.g. 1%.
    #[arg(long, value_name = "PERCENT")]
    pub loss: Option<String>,
    /// Correlation of successive losses (random model).
    #[arg(long, value_name = "PERCENT")]
    pub loss_correlation: Option<String>,
    /// random (the default, with --loss), gemodel P [R [1-H [1-K]]] or state P13 [P31 [P32 [P23 [P14]]]].
    #[arg(long, num_args = 1..=6, value_name = "MODEL [PERCENT...]")]
    pub loss_model: Option<Vec<String>>,
    /// Duplicate frames, e.g. 0.5%.
    #[arg(long, value_name = "PERCENT")]
    pub duplicate: Option<String>,
    #[arg(long, value_name = "PERCENT")]
    pub duplicate_correlation: Option<String>,
    /// Send this share of frames at once, ahead of the delayed ones (needs --delay).
    #[arg(long, value_name = "PERCENT")]
    pub reorder: Option<String>,
    #[arg(long, value_name = "PERCENT")]
    pub reorder_correlation: Option<String>,
    /// Reorder at most every Nth frame (netem's gap).
    #[arg(long, value_name = "N")]
    pub gap: Option<u32>,
    /// Flip one random bit in this share of frames, e.g. 0.1%.
    #[arg(long, value_name = "PERCENT")]
    pub corrupt: Option<String>,
    #[arg(long, value_name = "PERCENT")]
    pub corrupt_correlation: Option<String>,
    /// Link rate, e.g. 100mbit, 1gbit, 10mbps (bytes per second).
    #[arg(long)]
    pub rate: Option<String>,
    /// Bytes added to each frame's length for the rate (negative: taken off).
    #[arg(long, allow_hyphen_values = true, value_name = "BYTES")]
    pub overhead: Option<i32>,
    /// The rate counts whole cells of this many bytes (ATM: 53).
    #[arg(long, value_name = "BYTES")]
    pub cellsize: Option<u32>,
    /// Bytes added to each cell.
    #[arg(long, allow_hyphen_values = true, value_name = "BYTES")]
    pub cell_overhead: Option<i32>,
    /// Queue limit: frames (1000, the default) or bytes with a unit (64kib, 1mb).
    #[arg(long, value_name = "PACKETS|BYTES")]
    pub limit: Option<String>,
    /// Seed of the random source, for a run that replays.
    #[arg(long)]
    pub seed: Option<u64>,
}

fn pct(flag: &str, v: &Option<String>) -> Result<Option<Percent>> {
    v.as_deref()
        .map(|s| Percent::parse(s).map_err(|e| anyhow!("--{flag} {s}: {e}")))
        .transpose()
}

fn span(flag: &str, v: &Option<String>) -> Result<Option<Span>> {
    v.as_deref()
        .map(|s| Span::parse(s).map_err(|e| anyhow!("--{flag} {s}: {e}")))
        .transpose()
}

impl ImpairArgs {
    fn any_knob(&self) -> bool {
        let strings = [
            &self.direction,
            &self.delay,
            &self.jitter,
            &self.correlation,
            &self.distribution,
            &self.loss,
            &self.loss_correlation,
            &self.duplicate,
            &self.duplicate_correlation,
            &self.reorder,
            &self.reorder_correlation,
            &self.corrupt,
            &self.corrupt_correlation,
            &self.rate,
            &self.limit,
        ];
        strings.iter().any(|s| s.is_some())
            || self.loss_model.is_some()
            || self.gap.is_some()
            || self.overhead.is_some()
            || self.cellsize.is_some()
            || self.cell_overhead.is_some()
            || self.seed.is_some()
    }

    /// The request, or an error naming the flag at fault.
    pub fn request(self) -> Result<Request> {
        if self.clear {
            if self.any_knob() {
                bail!("--clear takes no other options");
            }
            return Ok(Request::PortImpair {
                name: self.port,
                impair: None,
            });
        }
        let mut spec = ImpairSpec {
            direction: match self.direction.as_deref() {
                None => Direction::Egress,
                Some(d) => Direction::from_name(d)
                    .ok_or_else(|| anyhow!("--direction {d}: expected egress, ingress or both"))?,
            },
            delay: span("delay", &self.delay)?,
            jitter: span("jitter", &self.jitter)?,
            correlation: pct("correlation", &self.correlation)?,
            distribution: self
                .distribution
                .as_deref()
                .map(|d| {
                    Distribution::from_name(d).ok_or_else(|| {
                        anyhow!(
                            "--distribution {d}: expected uniform, normal, pareto or paretonormal"
                        )
                    })
                })
                .transpose()?,
            loss: pct("loss", &self.loss)?,
            loss_correlation: pct("loss-correlation", &self.loss_correlation)?,
            duplicate: pct("duplicate", &self.duplicate)?,
            duplicate_correlation: pct("duplicate-correlation", &self.duplicate_correlation)?,
            reorder: pct("reorder", &self.reorder)?,
            reorder_correlation: pct("reorder-correlation", &self.reorder_correlation)?,
            gap: self.gap,
            corrupt: pct("corrupt", &self.corrupt)?,
            corrupt_correlation: pct("corrupt-correlation", &self.corrupt_correlation)?,
            rate: self
                .rate
                .as_deref()
                .map(|s| Rate::parse(s).map_err(|e| anyhow!("--rate {s}: {e}")))
                .transpose()?,
            overhead: self.overhead.unwrap_or(0),
            cellsize: self.cellsize.unwrap_or(0),
            cell_overhead: self.cell_overhead.unwrap_or(0),
            seed: self.seed,
            ..ImpairSpec::default()
        };
        if let Some(l) = &self.limit {
            match Limit::parse(l).map_err(|e| anyhow!("--limit {l}: {e}"))? {
                Limit::Packets(n) => spec.limit = Some(n),
                Limit::Bytes(b) => spec.limit_bytes = Some(b),
            }
        }
        if let Some(words) = &self.loss_model {
            let (model, args) = words.split_first().expect("clap takes at least one value");
            let nums = args
                .iter()
                .map(|a| Percent::parse(a).map_err(|e| anyhow!("--loss-model {model} {a}: {e}")))
                .collect::<Result<Vec<_>>>()?;
            match model.as_str() {
                "random" => {
                    if !nums.is_empty() {
                        bail!("--loss-model random takes no values; give the rate with --loss");
                    }
                    if spec.loss.is_none() {
                        bail!("--loss-model random needs --loss PERCENT");
                    }
                }
                "gemodel" | "state" if spec.loss.is_some() => {
                    bail!("--loss and --loss-model {model} both set the loss; give one")
                }
                "gemodel" => {
                    spec.gemodel =
                        Some(Gemodel::from_args(&nums).map_err(|e| anyhow!("--loss-model {e}"))?)
                }
                "state" => {
                    spec.state =
                        Some(FourState::from_args(&nums).map_err(|e| anyhow!("--loss-model {e}"))?)
                }
                other => bail!("--loss-model {other}: expected random, gemodel or state"),
            }
        }
        spec.validate()
            .map_err(|e| anyhow!("port impair {}: {e}", self.port))?;
        Ok(Request::PortImpair {
            name: self.port,
            impair: Some(Box::new(spec)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        a: ImpairArgs,
    }

    fn parse(args: &[&str]) -> Result<Request> {
        let mut v = vec!["x", "red"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v)?.a.request()
    }

    #[test]
    fn errors_name_the_flag_and_value() {
        let e = parse(&["--loss", "120%"]).unwrap_err().to_string();
        assert_eq!(e, "--loss 120%: a percentage must be between 0 and 100");
        let e = parse(&["--delay", "10"]).unwrap_err().to_string();
        assert!(e.starts_with("--delay 10: give a unit"), "{e}");
        let e = parse(&["--rate", "fast"]).unwrap_err().to_string();
        assert!(e.starts_with("--rate fast:"), "{e}");
        let e = parse(&["--reorder", "5%"]).unwrap_err().to_string();
        assert!(e.contains("needs a delay"), "{e}");
        let e = parse(&["--clear", "--loss", "1%"]).unwrap_err().to_string();
        assert_eq!(e, "--clear takes no other options");
        let e = parse(&["--loss", "1%", "--loss-model", "gemodel", "1%"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("give one"), "{e}");
        let e = parse(&[]).unwrap_err().to_string();
        assert!(e.contains("nothing to impair"), "{e}");
    }

    #[test]
    fn flags_become_a_spec() {
        let r = parse(&[
            "--delay",
            "10ms",
            "--jitter",
            "2ms",
            "--correlation",
            "25%",
            "--distribution",
            "normal",
            "--loss-model",
            "gemodel",
            "1%",
            "10%",
            "70%",
            "0.1%",
            "--duplicate",
            "0.5%",
            "--reorder",
            "5%",
            "--gap",
            "3",
            "--corrupt",
            "0.1%",
            "--rate",
            "100mbit",
            "--overhead",
            "-4",
            "--limit",
            "64kib",
            "--seed",
            "7",
            "--direction",
            "both",
        ])
        .unwrap();
        let Request::PortImpair {
            name,
            impair: Some(s),
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(name, "red");
        assert_eq!(
            s.to_string(),
            "direction both delay 10ms 2ms 25% distribution normal loss gemodel 1% 10% 70% 0.1% \
             duplicate 0.5% reorder 5% gap 3 corrupt 0.1% rate 100mbit overhead -4 limit 65536b seed 7"
        );
        let r = parse(&["--clear"]).unwrap();
        assert_eq!(
            r,
            Request::PortImpair {
                name: "red".into(),
                impair: None
            }
        );
    }
}
