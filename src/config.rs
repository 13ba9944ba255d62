//! TOML topology files and the embedded default lab.
//!
//! A config is applied through the same requests the control socket takes,
//! so a lab declared in a file behaves exactly like one built by hand.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::control::protocol::{NsPlug, PortAdd, PortSet, Request};
use crate::switch::VlanSet;

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
    /// Where `/metrics` listens (`IP:PORT`, or `PORT` for loopback), as
    /// `run --metrics`; the command line wins.
    pub metrics: Option<String>,
}

/// Port policy and VLAN fields a `[[port]]` or `[[namespace]]` table may
/// carry: the same as `port set` and `port vlan`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFields {
    pub vlan_mode: Option<String>,
    pub tag: Option<u16>,
    pub trunks: Option<VlanSet>,
    pub learning: Option<bool>,
    pub flood: Option<bool>,
    pub mcast_flood: Option<bool>,
    pub bcast_flood: Option<bool>,
    pub isolated: Option<bool>,
    pub hairpin: Option<bool>,
    pub gro: Option<bool>,
    pub group_fwd_mask: Option<u16>,
}

impl PolicyFields {
    const KEYS: &'static [&'static str] = &[
        "vlan_mode",
        "tag",
        "trunks",
        "learning",
        "flood",
        "mcast_flood",
        "bcast_flood",
        "isolated",
        "hairpin",
        "gro",
        "group_fwd_mask",
    ];
}

/// A table of request fields (`T`, e.g. `port add`'s) plus policy fields.
/// The two sets are split by key and each checked for unknown keys, which
/// serde's `flatten` cannot do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithPolicy<T> {
    pub item: T,
    pub policy: PolicyFields,
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for WithPolicy<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let mut policy = toml::Table::new();
        for k in PolicyFields::KEYS {
            if let Some(v) = table.remove(*k) {
                policy.insert(k.to_string(), v);
            }
        }
        Ok(WithPolicy {
            item: table.try_into().map_err(D::Error::custom)?,
            policy: policy.try_into().map_err(D::Error::custom)?,
        })
    }
}

/// `[[port]]`: `port add` fields plus policy.
pub type ConfigPort = WithPolicy<PortAdd>;

/// `[[namespace]]`: `ns plug` fields plus policy.
pub type ConfigNamespace = WithPolicy<NsPlug>;

/// `[[mirror]]`: the same fields as `mirror add`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigMirror {
    pub name: String,
    pub to: String,
    #[serde(default)]
    pub src: Vec<String>,
    #[serde(default)]
    pub dst: Vec<String>,
}

/// A whole topology.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub switch: SwitchSection,
    #[serde(default, rename = "port")]
    pub ports: Vec<ConfigPort>,
    #[serde(default, rename = "namespace")]
    pub namespaces: Vec<ConfigNamespace>,
    #[serde(default, rename = "mirror")]
    pub mirrors: Vec<ConfigMirror>,
}

/// The `port set` and `port vlan` requests for one port's policy fields.
fn policy_requests(name: &str, f: PolicyFields) -> Vec<Request> {
    let mut out = Vec::new();
    if let Some(mode) = f.vlan_mode {
        out.push(Request::PortVlan {
            name: name.to_string(),
            mode,
            tag: f.tag,
            trunks: f.trunks,
        });
    }
    let set = PortSet {
        name: name.to_string(),
        max_learned: None,
        learning: f.learning,
        flood: f.flood,
        mcast_flood: f.mcast_flood,
        bcast_flood: f.bcast_flood,
        isolated: f.isolated,
        hairpin: f.hairpin,
        gro: f.gro,
        group_fwd_mask: f.group_fwd_mask,
    };
    if !set.is_empty() {
        out.push(Request::PortSet(set));
    }
    out
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
            n.item.ns = format!("{prefix}{}", n.item.ns);
        }
        for p in &mut self.ports {
            if let Some(ns) = &mut p.item.netns {
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
            let what = format!("[[port]] {}", p.item.ifname);
            let name = p.item.name.clone().unwrap_or_else(|| p.item.ifname.clone());
            out.push((what.clone(), Request::PortAdd(p.item.clone())));
            for r in policy_requests(&name, p.policy.clone()) {
                out.push((what.clone(), r));
            }
        }
        for n in &self.namespaces {
            let what = format!("[[namespace]] {}", n.item.ns);
            out.push((what.clone(), Request::NsPlug(n.item.clone())));
            for r in policy_requests(&n.item.ns, n.policy.clone()) {
                out.push((what.clone(), r));
            }
        }
        for m in &self.mirrors {
            out.push((
                format!("[[mirror]] {}", m.name),
                Request::MirrorAdd {
                    name: m.name.clone(),
                    to: m.to.clone(),
                    src: m.src.clone(),
                    dst: m.dst.clone(),
                },
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
        assert!(lab.namespaces.iter().any(|n| n.item.via == Via::Tap));
        assert!(lab.namespaces.iter().all(|n| !n.item.ip.is_empty()));
        let lab = lab.with_netns_prefix("x-");
        assert!(lab.namespaces.iter().all(|n| n.item.ns.starts_with("x-")));
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
            vlan_mode = "access"
            tag = 10
            isolated = true

            [[mirror]]
            name = "span"
            to = "tap7"
            src = ["red"]
            "#,
            "test",
        )
        .unwrap();
        let reqs = c.requests();
        assert_eq!(reqs.len(), 8);
        assert!(matches!(reqs[0].1, Request::Set { .. }));
        assert!(matches!(reqs[4].1, Request::NsPlug(_)));
        assert!(matches!(reqs[5].1, Request::PortVlan { .. }));
        assert!(matches!(reqs[6].1, Request::PortSet(_)));
        assert!(matches!(reqs[7].1, Request::MirrorAdd { .. }));
    }

    #[test]
    fn policy_keys_become_port_set_requests() {
        let c = Config::parse(
            r#"
            [[port]]
            kind = "tap"
            ifname = "tap7"
            gro = false

            [[namespace]]
            ns = "red"
            hairpin = true
            gro = true

            [[namespace]]
            ns = "blue"
            "#,
            "test",
        )
        .unwrap();
        let sets: Vec<_> = c
            .requests()
            .into_iter()
            .filter_map(|(what, r)| match r {
                Request::PortSet(s) => Some((what, s)),
                _ => None,
            })
            .collect();
        assert_eq!(
            sets,
            vec![
                (
                    "[[port]] tap7".to_string(),
                    PortSet {
                        name: "tap7".into(),
                        gro: Some(false),
                        ..PortSet::default()
                    }
                ),
                (
                    "[[namespace]] red".to_string(),
                    PortSet {
                        name: "red".into(),
                        hairpin: Some(true),
                        gro: Some(true),
                        ..PortSet::default()
                    }
                ),
            ],
            "blue sets nothing, so no port set for it"
        );
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let e = Config::parse("[switch]\nageing = 5\n", "lab.toml").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("invalid config lab.toml"), "{msg}");
        assert!(msg.contains("unknown field `ageing`"), "{msg}");
        let e = Config::parse("[[namespace]]\nns = \"r\"\nip = [\"1.2.3.4\"]\n", "x").unwrap_err();
        assert!(e.to_string().contains("invalid address"), "{e}");
        let e = Config::parse("[[namespace]]\nns = \"r\"\ncolour = 1\n", "x").unwrap_err();
        assert!(e.to_string().contains("unknown field `colour`"), "{e}");
        let e = Config::parse(
            "[[port]]\nkind = \"iface\"\nifname = \"a\"\nlearning = \"maybe\"\n",
            "x",
        )
        .unwrap_err();
        assert!(e.to_string().contains("learning"), "{e}");
        let e = Config::parse("[[namespace]]\nns = \"r\"\ngro = \"off\"\n", "x").unwrap_err();
        assert!(e.to_string().contains("gro"), "{e}");
        let e = Config::from_file(Path::new("/nonexistent/l2sw.toml")).unwrap_err();
        assert!(e
            .to_string()
            .contains("cannot read config /nonexistent/l2sw.toml"));
    }
}
