//! TOML topology files and the embedded default lab.
//!
//! A config is applied through the same requests the control socket takes,
//! so a lab declared in a file behaves exactly like one built by hand.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::control::protocol::{AddKind, NsPlug, PortAdd, PortSet, Request, TapMode, Via};
use crate::netns::Cidr;
use crate::switch::VlanSet;
use crate::wire::MacAddr;

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

/// Port policy and VLAN fields a `[[port]]` or `[[namespace]]` table may
/// carry: the same as `port set` and `port vlan`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
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
    pub group_fwd_mask: Option<u16>,
}

/// `[[port]]`: `port add` fields plus policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigPort {
    pub kind: AddKind,
    pub ifname: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub mode: Option<TapMode>,
    #[serde(default)]
    pub netns: Option<String>,
    #[serde(default)]
    pub ip: Vec<Cidr>,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub mac: Option<MacAddr>,
    #[serde(default)]
    pub max_learned: Option<u32>,
    #[serde(default)]
    pub vlan_mode: Option<String>,
    #[serde(default)]
    pub tag: Option<u16>,
    #[serde(default)]
    pub trunks: Option<VlanSet>,
    #[serde(default)]
    pub learning: Option<bool>,
    #[serde(default)]
    pub flood: Option<bool>,
    #[serde(default)]
    pub mcast_flood: Option<bool>,
    #[serde(default)]
    pub bcast_flood: Option<bool>,
    #[serde(default)]
    pub isolated: Option<bool>,
    #[serde(default)]
    pub hairpin: Option<bool>,
    #[serde(default)]
    pub group_fwd_mask: Option<u16>,
}

/// `[[namespace]]`: `ns plug` fields plus policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigNamespace {
    #[serde(alias = "name")]
    pub ns: String,
    #[serde(default)]
    pub ip: Vec<Cidr>,
    #[serde(default)]
    pub via: Via,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub mac: Option<MacAddr>,
    #[serde(default)]
    pub ifname: Option<String>,
    #[serde(default)]
    pub max_learned: Option<u32>,
    #[serde(default)]
    pub vlan_mode: Option<String>,
    #[serde(default)]
    pub tag: Option<u16>,
    #[serde(default)]
    pub trunks: Option<VlanSet>,
    #[serde(default)]
    pub learning: Option<bool>,
    #[serde(default)]
    pub flood: Option<bool>,
    #[serde(default)]
    pub mcast_flood: Option<bool>,
    #[serde(default)]
    pub bcast_flood: Option<bool>,
    #[serde(default)]
    pub isolated: Option<bool>,
    #[serde(default)]
    pub hairpin: Option<bool>,
    #[serde(default)]
    pub group_fwd_mask: Option<u16>,
}

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

impl ConfigNamespace {
    /// The `ns plug` part.
    pub fn plug(&self) -> NsPlug {
        NsPlug {
            ns: self.ns.clone(),
            ip: self.ip.clone(),
            via: self.via,
            mtu: self.mtu,
            mac: self.mac,
            ifname: self.ifname.clone(),
            max_learned: self.max_learned,
        }
    }
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
            let what = format!("[[port]] {}", p.ifname);
            let add = PortAdd {
                kind: p.kind,
                ifname: p.ifname.clone(),
                name: p.name.clone(),
                mode: p.mode,
                netns: p.netns.clone(),
                ip: p.ip.clone(),
                mtu: p.mtu,
                mac: p.mac,
                max_learned: p.max_learned,
            };
            let name = p.name.clone().unwrap_or_else(|| p.ifname.clone());
            out.push((what.clone(), Request::PortAdd(add)));
            let f = PolicyFields {
                vlan_mode: p.vlan_mode.clone(),
                tag: p.tag,
                trunks: p.trunks.clone(),
                learning: p.learning,
                flood: p.flood,
                mcast_flood: p.mcast_flood,
                bcast_flood: p.bcast_flood,
                isolated: p.isolated,
                hairpin: p.hairpin,
                group_fwd_mask: p.group_fwd_mask,
            };
            for r in policy_requests(&name, f) {
                out.push((what.clone(), r));
            }
        }
        for n in &self.namespaces {
            let what = format!("[[namespace]] {}", n.ns);
            out.push((what.clone(), Request::NsPlug(n.plug())));
            let f = PolicyFields {
                vlan_mode: n.vlan_mode.clone(),
                tag: n.tag,
                trunks: n.trunks.clone(),
                learning: n.learning,
                flood: n.flood,
                mcast_flood: n.mcast_flood,
                bcast_flood: n.bcast_flood,
                isolated: n.isolated,
                hairpin: n.hairpin,
                group_fwd_mask: n.group_fwd_mask,
            };
            for r in policy_requests(&n.ns, f) {
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
