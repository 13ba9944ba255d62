//! The per-port policy flags, listed once.
//!
//! `port set` on the command line, `port-set` on the control socket, the
//! policy keys of a config file (`[[port]]`, `[[namespace]]`, `[ports.NAME]`),
//! a CNI network's `policy`, `config dump` and the FLAGS column of `port list`
//! and `show` all read their flags from the one list in [`policy_flags!`]
//! below: a flag added there is known to all of them. The VLAN mode (`port
//! vlan`) and the learned-entry limit (a field of `port add` and `ns plug`
//! too) have shapes of their own and stay outside the list.

use serde::{Deserialize, Serialize};

use crate::switch::PortPolicy;

/// `on`/`off` (also yes/no, true/false, 1/0), as the command line takes a flag.
pub fn on_off(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" | "1" => Ok(true),
        "off" | "no" | "false" | "0" => Ok(false),
        _ => Err(format!("expected on or off, not {s:?}")),
    }
}

/// A 16-bit mask, decimal or 0x hex.
pub fn parse_mask(s: &str) -> Result<u16, String> {
    let v = match s.strip_prefix("0x") {
        Some(h) => u16::from_str_radix(h, 16),
        None => s.parse(),
    };
    v.map_err(|_| format!("expected a 16-bit mask like 0x4000, not {s:?}"))
}

/// Packets per second, or `off` (0: no limit).
pub fn parse_pps(s: &str) -> Result<u32, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    s.trim_end_matches("pps")
        .parse()
        .map_err(|_| format!("expected packets per second (e.g. 1000) or off, not {s:?}"))
}

/// How a flag reads in a FLAGS column when it differs from a new port's
/// value: `name`/`no-name` for switches, `name=0x4000`, `name=20pps`.
fn show_switch(name: &str, v: bool, _default: bool) -> String {
    if v {
        name.to_string()
    } else {
        format!("no-{name}")
    }
}

fn show_mask(name: &str, v: u16, _default: u16) -> String {
    format!("{name}={v:#06x}")
}

fn show_pps(name: &str, v: u32, _default: u32) -> String {
    format!("{name}={v}pps")
}

/// Defines [`PolicyFlags`] from one list: each entry is a `PortPolicy`
/// field with its doc (the CLI help), extra clap attributes (its parser) and
/// how the FLAGS column shows it. The field name is the JSON and TOML key;
/// clap derives `--field-name` from it.
macro_rules! policy_flags {
    ($( $(#[$attr:meta])* $field:ident: $ty:ty, shown $show:ident; )*) => {
        /// Port policy flags to set, each optional: absent ones stay as
        /// they are. The same struct is the `port set` flags, the JSON of
        /// `port-set`, and the policy keys of a config table.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
        #[serde(deny_unknown_fields)]
        pub struct PolicyFlags {
            $(
                $(#[$attr])*
                #[arg(long)]
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        }

        impl PolicyFlags {
            /// The keys, as JSON and TOML spell them.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Sets the flags that are given.
            pub fn apply(&self, p: &mut PortPolicy) {
                $( if let Some(v) = self.$field { p.$field = v; } )*
            }

            /// The flags of `p` that differ from a new port's.
            pub fn differences(p: &PortPolicy) -> PolicyFlags {
                let d = PortPolicy::default();
                PolicyFlags {
                    $( $field: (p.$field != d.$field).then_some(p.$field), )*
                }
            }

            /// The flags that differ from a new port's, as `port list` and
            /// `show` print them (`no-learning`, `isolated`, `storm-bcast=20pps`).
            pub fn labels(p: &PortPolicy) -> Vec<String> {
                let d = PortPolicy::default();
                let mut out = Vec::new();
                $(
                    if p.$field != d.$field {
                        out.push($show(&stringify!($field).replace('_', "-"), p.$field, d.$field));
                    }
                )*
                // What was turned off reads first, then what was turned on,
                // then the values (`no-learning,no-gro,hairpin,storm-bcast=20pps`).
                out.sort_by_key(|l: &String| {
                    if l.starts_with("no-") {
                        0
                    } else if l.contains('=') {
                        2
                    } else {
                        1
                    }
                });
                out
            }

            /// The command-line flags, for messages (`--learning, --flood, ...`).
            pub fn cli_flags() -> Vec<String> {
                Self::KEYS.iter().map(|k| format!("--{}", k.replace('_', "-"))).collect()
            }
        }
    };
}

policy_flags! {
    /// Learn source addresses of frames received here.
    #[arg(value_parser = on_off)]
    learning: bool, shown show_switch;
    /// Send floods of unknown unicast here.
    #[arg(value_parser = on_off)]
    flood: bool, shown show_switch;
    /// Send floods of multicast here.
    #[arg(value_parser = on_off)]
    mcast_flood: bool, shown show_switch;
    /// Send broadcasts here.
    #[arg(value_parser = on_off)]
    bcast_flood: bool, shown show_switch;
    /// Isolated ports exchange frames only with non-isolated ports.
    #[arg(value_parser = on_off)]
    isolated: bool, shown show_switch;
    /// Let frames go back out the port they came in on.
    #[arg(value_parser = on_off)]
    hairpin: bool, shown show_switch;
    /// Merge runs of TCP segments received here into GSO super-frames for ports that take them (software GRO).
    #[arg(value_parser = on_off)]
    gro: bool, shown show_switch;
    /// Reserved groups 01:80:c2:00:00:0X to forward when received here (bit X), e.g. 0x4000 for LLDP.
    #[arg(value_parser = parse_mask)]
    group_fwd_mask: u16, shown show_mask;
    /// Storm control: broadcasts received here per second, excess dropped (a number, or off).
    #[arg(value_name = "PPS|off", value_parser = parse_pps)]
    storm_bcast: u32, shown show_pps;
    /// Storm control: multicast frames received here per second (a number, or off).
    #[arg(value_name = "PPS|off", value_parser = parse_pps)]
    storm_mcast: u32, shown show_pps;
    /// Storm control: unknown-unicast frames received here per second (a number, or off).
    #[arg(value_name = "PPS|off", value_parser = parse_pps)]
    storm_unknown: u32, shown show_pps;
    /// Block the port when an STP BPDU arrives on it (for edge ports).
    #[arg(value_parser = on_off)]
    bpdu_guard: bool, shown show_switch;
}

impl PolicyFlags {
    pub fn is_empty(&self) -> bool {
        *self == PolicyFlags::default()
    }
}

/// The FLAGS column: the flags that differ from a new port's, or `-`.
pub fn flags_text(p: &PortPolicy) -> String {
    let f = PolicyFlags::labels(p);
    if f.is_empty() {
        "-".into()
    } else {
        f.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_list_serves_apply_differences_and_labels() {
        let p = PortPolicy {
            learning: false,
            isolated: true,
            group_fwd_mask: 0x4000,
            storm_bcast: 20,
            ..PortPolicy::default()
        };
        let f = PolicyFlags::differences(&p);
        assert_eq!(f.learning, Some(false));
        assert_eq!(f.storm_bcast, Some(20));
        assert_eq!(f.flood, None);
        let mut q = PortPolicy::default();
        f.apply(&mut q);
        assert_eq!(q, p);
        assert_eq!(
            flags_text(&p),
            "no-learning,isolated,group-fwd-mask=0x4000,storm-bcast=20pps"
        );
        assert_eq!(flags_text(&PortPolicy::default()), "-");
        assert!(PolicyFlags::cli_flags().contains(&"--mcast-flood".to_string()));
        let p = PortPolicy {
            learning: false,
            gro: false,
            hairpin: true,
            bpdu_guard: true,
            storm_unknown: 5,
            ..PortPolicy::default()
        };
        assert_eq!(
            flags_text(&p),
            "no-learning,no-gro,hairpin,bpdu-guard,storm-unknown=5pps"
        );
    }

    #[test]
    fn parsers_take_what_the_cli_documents() {
        assert_eq!(on_off("ON"), Ok(true));
        assert!(on_off("maybe").unwrap_err().contains("on or off"));
        assert_eq!(parse_mask("0x4000"), Ok(0x4000));
        assert_eq!(parse_pps("off"), Ok(0));
        assert_eq!(parse_pps("20pps"), Ok(20));
    }
}
