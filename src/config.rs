//! TOML topology files and the embedded default lab.
//!
//! A config is applied through the same requests the control socket takes,
//! so a lab declared in a file behaves exactly like one built by hand.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::control::protocol::{NsPlug, PortAdd, Request};

/// The lab `l2sw demo` and `l2sw run --lab` bring up.
pub const DEFAULT_LAB: &str = include_str!("lab.toml");

/// `[switch]`: settings applied at start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchSection {
    pub ageing_time: Option<u64>,
    pub fdb_max: Option<u64>,
    pub fdb_max_per_port: Option<u64>,
    pub group_fwd_mask: Option<u16>,
}

/// A whole topology.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub switch: SwitchSection,
    /// `[[port]]` tables: the same fields as `port add`.
    #[serde(default, rename = "port")]
    pub ports: Vec<PortAdd>,
    /// `[[namespace]]` tables: the same fields as `ns plug`.
    #[serde(default, rename = "namespace")]
    pub namespaces: Vec<NsPlug>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config {path}: {msg}")]
    Parse { path: String, msg: String },
}

impl Config {
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            msg: e.to_string().trim().to_string(),
        })
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn default_lab() -> Config {
        Self::parse(DEFAULT_LAB, "embedded default lab").expect("the embedded lab parses")
    }

    /// Prefixes every namespace name (the demo uses this so its namespaces
    /// cannot collide with the user's).
    pub fn with_netns_prefix(mut self, prefix: &str) -> Config {
        for n in &mut self.namespaces {
            n.ns = format!("{prefix}{}", n.ns);
        }
        for p in &mut self.ports {
            if let Some(ns) = &mut p.netns {
                *ns = format!("{prefix}{ns}");
            }
        }
        self
    }

    /// The requests that build this topology, each with a description for
    /// error messages: settings first, then ports, then namespaces.
    pub fn requests(&self) -> Vec<(String, Request)> {
        let mut out = Vec::new();
        let s = &self.switch;
        let settings = [
            ("ageing-time", s.ageing_time),
            ("fdb-max", s.fdb_max),
            ("fdb-max-per-port", s.fdb_max_per_port),
            ("group-fwd-mask", s.group_fwd_mask.map(u64::from)),
        ];
        for (key, v) in settings {
            if let Some(v) = v {
                out.push((
                    format!("[switch] {key}"),
                    Request::Set {
                        key: key.to_string(),
                        value: Value::from(v),
                    },
                ));
            }
        }
        for p in &self.ports {
            out.push((
                format!("[[port]] {}", p.ifname),
                Request::PortAdd(p.clone()),
            ));
        }
        for n in &self.namespaces {
            out.push((
                format!("[[namespace]] {}", n.ns),
                Request::NsPlug(n.clone()),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::protocol::Via;

    #[test]
    fn default_lab_has_three_namespaces_one_via_tap() {
        let lab = Config::default_lab();
        assert_eq!(lab.namespaces.len(), 3);
        assert!(lab.namespaces.iter().any(|n| n.via == Via::Tap));
        assert!(lab.namespaces.iter().all(|n| !n.ip.is_empty()));
        let lab = lab.with_netns_prefix("x-");
        assert!(lab.namespaces.iter().all(|n| n.ns.starts_with("x-")));
    }

    #[test]
    fn parses_a_full_config() {
        let c = Config::parse(
            r#"
            [switch]
            ageing_time = 60
            fdb_max = 100

            [[port]]
            kind = "iface"
            ifname = "veth-x"

            [[port]]
            kind = "tap"
            ifname = "tap7"

            [[namespace]]
            ns = "red"
            ip = ["10.0.0.1/24"]
            mtu = 9000
            "#,
            "test",
        )
        .unwrap();
        let reqs = c.requests();
        assert_eq!(reqs.len(), 5);
        assert!(matches!(reqs[0].1, Request::Set { .. }));
        assert!(matches!(reqs[4].1, Request::NsPlug(_)));
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let e = Config::parse("[switch]\nageing = 5\n", "lab.toml").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("invalid config lab.toml"), "{msg}");
        assert!(msg.contains("unknown field `ageing`"), "{msg}");
        let e = Config::parse("[[namespace]]\nns = \"r\"\nip = [\"1.2.3.4\"]\n", "x").unwrap_err();
        assert!(e.to_string().contains("invalid address"), "{e}");
        let e = Config::from_file(Path::new("/nonexistent/l2sw.toml")).unwrap_err();
        assert!(e
            .to_string()
            .contains("cannot read config /nonexistent/l2sw.toml"));
    }
}
