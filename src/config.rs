//! TOML topology files and the embedded default lab.
//!
//! A config is applied through the same requests the control socket takes,
//! so a lab declared in a file behaves exactly like one built by hand; and a
//! running switch writes its topology back as one (`l2sw config dump`).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::control::protocol::{NsPlug, PolicyFlags, PortAdd, PortSet, Request};
use crate::switch::VlanSet;

/// The lab `l2sw demo` and `l2sw run --lab` bring up.
pub const DEFAULT_LAB: &str = include_str!("lab.toml");

/// `[switch]`: settings applied at start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchSection {
    pub ageing_time: Option<u64>,
    pub fdb_max: Option<u64>,
    pub fdb_max_per_port: Option<u64>,
    pub group_fwd_mask: Option<u16>,
    /// Where `/metrics` listens (`IP:PORT`, or `PORT` for loopback), as
    /// `run --metrics`; the command line wins.
    pub metrics: Option<String>,
    /// The kernel fast path (default on); `run --fastpath` overrides it.
    pub fastpath: Option<bool>,
    /// "off", "report" (default) or "block", as `run --loop-protect`.
    pub loop_protect: Option<String>,
    /// Moves per second beyond which a MAC is flapping (`--flap-threshold`).
    pub flap_threshold: Option<u64>,
    /// Seconds a blocked port stays blocked, 0 = until `port unblock` (`--loop-hold`).
    pub loop_hold: Option<u64>,
}

/// Port policy and VLAN fields a `[[port]]` or `[[namespace]]` table may
/// carry: the same as `port vlan` and `port set` (the flags of
/// [`PolicyFlags`], under their JSON names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trunks: Option<VlanSet>,
    #[serde(flatten)]
    pub flags: PolicyFlags,
}

impl PolicyFields {
    /// The fields that differ from a new port's policy (`max_learned` is a
    /// field of `port add` and `ns plug`, not of these).
    pub fn from_policy(p: &crate::switch::PortPolicy) -> PolicyFields {
        use crate::switch::VlanMode;
        let (vlan_mode, tag, trunks) = match &p.vlan {
            None => (None, None, None),
            Some(VlanMode::Access { tag }) => (Some("access"), Some(*tag), None),
            Some(VlanMode::Trunk { trunks }) => (Some("trunk"), None, trunks.clone()),
            Some(VlanMode::NativeUntagged { tag, trunks }) => {
                (Some("native-untagged"), Some(*tag), trunks.clone())
            }
            Some(VlanMode::NativeTagged { tag, trunks }) => {
                (Some("native-tagged"), Some(*tag), trunks.clone())
            }
        };
        PolicyFields {
            vlan_mode: vlan_mode.map(str::to_string),
            tag,
            trunks,
            flags: PolicyFlags::differences(p),
        }
    }

    /// Whether `key` belongs to these fields rather than to the table's request.
    fn is_key(key: &str) -> bool {
        ["vlan_mode", "tag", "trunks"].contains(&key) || PolicyFlags::KEYS.contains(&key)
    }
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
        let keys: Vec<String> = table
            .keys()
            .filter(|k| PolicyFields::is_key(k))
            .cloned()
            .collect();
        let mut policy = toml::Table::new();
        for k in keys {
            if let Some(v) = table.remove(&k) {
                policy.insert(k, v);
            }
        }
        Ok(WithPolicy {
            item: table.try_into().map_err(D::Error::custom)?,
            policy: policy.try_into().map_err(D::Error::custom)?,
        })
    }
}

impl<T: Serialize> Serialize for WithPolicy<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut table = toml::Table::try_from(&self.item).map_err(S::Error::custom)?;
        let policy = toml::Table::try_from(&self.policy).map_err(S::Error::custom)?;
        table.extend(policy);
        // Empty lists say nothing a reader needs (`ip = []`).
        table.retain(|_, v| !matches!(v, toml::Value::Array(a) if a.is_empty()));
        table.serialize(s)
    }
}

/// `[[port]]`: `port add` fields plus policy.
pub type ConfigPort = WithPolicy<PortAdd>;

/// `[[namespace]]`: `ns plug` fields plus policy.
pub type ConfigNamespace = WithPolicy<NsPlug>;

/// `[[fdb]]`: a static entry, as `fdb add` makes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFdb {
    pub mac: crate::wire::MacAddr,
    pub port: String,
    #[serde(default)]
    pub vlan: u16,
    /// On a VXLAN port: the remote VTEP the MAC sits behind (`fdb add --dst`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<std::net::Ipv4Addr>,
}

/// `[[mirror]]`: the same fields as `mirror add`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigMirror {
    pub name: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub src: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dst: Vec<String>,
}

/// A whole topology.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub switch: SwitchSection,
    #[serde(default, rename = "port", skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ConfigPort>,
    #[serde(default, rename = "namespace", skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<ConfigNamespace>,
    #[serde(default, rename = "fdb", skip_serializing_if = "Vec::is_empty")]
    pub fdb: Vec<ConfigFdb>,
    #[serde(default, rename = "mirror", skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<ConfigMirror>,
    /// `[ports.NAME]`: settings for a port by name (whether declared as a
    /// `[[port]]` or plugged as a `[[namespace]]`), applied last.
    #[serde(
        default,
        rename = "ports",
        skip_serializing_if = "std::collections::BTreeMap::is_empty"
    )]
    pub port_settings: std::collections::BTreeMap<String, PortSettings>,
    /// `[evpn]`: join a BGP EVPN fabric through a gobgpd, with the keys of
    /// `l2sw evpn enable` (`gobgp = "127.0.0.1:50051"`, `asn = 65001`,
    /// optional `netns`, `router_id`); enabled after everything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evpn: Option<crate::control::protocol::EvpnEnable>,
}

/// `[ports.NAME]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PortSettings {
    /// `[ports.NAME.impair]`: the same keys as `port impair`'s flags
    /// (`delay = "10ms"`, `loss = "1%"`, `gemodel = { p = "1%", ... }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impair: Option<crate::impair::ImpairSpec>,
    /// Port flags as `port set` takes them (`storm_bcast = 1000`,
    /// `bpdu_guard = true`, `hairpin = true`, ...).
    #[serde(flatten)]
    pub flags: PolicyFlags,
}

/// Moves the [`PolicyFlags`] keys of a table into a table of their own.
/// Each part is then read on its own: serde's `flatten` would drop the key's
/// name from a type error ("invalid type ... for key `learning`").
fn take_flags(table: &mut toml::Table) -> toml::Table {
    let mut flags = toml::Table::new();
    for k in PolicyFlags::KEYS {
        if let Some(v) = table.remove(*k) {
            flags.insert(k.to_string(), v);
        }
    }
    flags
}

impl<'de> Deserialize<'de> for PolicyFields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Vlan {
            vlan_mode: Option<String>,
            tag: Option<u16>,
            trunks: Option<VlanSet>,
        }
        let mut table = toml::Table::deserialize(d)?;
        let flags = take_flags(&mut table)
            .try_into()
            .map_err(D::Error::custom)?;
        let v: Vlan = table.try_into().map_err(D::Error::custom)?;
        Ok(PolicyFields {
            vlan_mode: v.vlan_mode,
            tag: v.tag,
            trunks: v.trunks,
            flags,
        })
    }
}

impl<'de> Deserialize<'de> for PortSettings {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Rest {
            impair: Option<crate::impair::ImpairSpec>,
        }
        let mut table = toml::Table::deserialize(d)?;
        let flags = take_flags(&mut table)
            .try_into()
            .map_err(D::Error::custom)?;
        let rest: Rest = table.try_into().map_err(D::Error::custom)?;
        Ok(PortSettings {
            impair: rest.impair,
            flags,
        })
    }
}

impl PortSettings {
    pub fn is_empty(&self) -> bool {
        *self == PortSettings::default()
    }
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
        flags: f.flags,
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

    /// The config as TOML that `parse` reads back.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
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
    /// error messages: settings first, then ports, then namespaces, static
    /// FDB entries and mirrors.
    pub fn requests(&self) -> Vec<(String, Request)> {
        let mut out = Vec::new();
        let s = &self.switch;
        let settings = [
            ("ageing-time", s.ageing_time),
            ("fdb-max", s.fdb_max),
            ("fdb-max-per-port", s.fdb_max_per_port),
            ("group-fwd-mask", s.group_fwd_mask.map(u64::from)),
            ("flap-threshold", s.flap_threshold),
            ("loop-hold", s.loop_hold),
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
        if let Some(m) = &s.loop_protect {
            out.push((
                "[switch] loop-protect".into(),
                Request::Set {
                    key: "loop-protect".into(),
                    value: Value::from(m.clone()),
                },
            ));
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
        for f in &self.fdb {
            out.push((
                format!("[[fdb]] {}", f.mac),
                Request::FdbAdd {
                    mac: f.mac,
                    port: f.port.clone(),
                    vlan: f.vlan,
                    dst: f.dst,
                },
            ));
        }
        for (name, p) in &self.port_settings {
            let set = PortSet {
                name: name.clone(),
                max_learned: None,
                flags: p.flags.clone(),
            };
            if !set.is_empty() {
                out.push((format!("[ports.{name}]"), Request::PortSet(set)));
            }
            if let Some(spec) = &p.impair {
                out.push((
                    format!("[ports.{name}.impair]"),
                    Request::PortImpair {
                        name: name.clone(),
                        impair: Some(Box::new(spec.clone())),
                    },
                ));
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
        if let Some(e) = &self.evpn {
            out.push(("[evpn]".to_string(), Request::EvpnEnable(e.clone())));
        }
        out
    }
}

/// `config dump`: the topology, and the ports a config cannot express.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigDump {
    pub config: Config,
    /// "port P (kind K)": left out, with why.
    #[serde(default)]
    pub skipped: Vec<String>,
}

impl ConfigDump {
    /// The TOML `run --config` accepts, with a header saying where it came from.
    pub fn render(&self, name: &str) -> Result<String, toml::ser::Error> {
        let mut out = format!("# l2sw config dump of switch {name}; start it again with\n#   l2sw --name {name} run --config FILE\n");
        for s in &self.skipped {
            out.push_str(&format!("# not expressible in a config file: {s}\n"));
        }
        out.push('\n');
        out.push_str(&self.config.to_toml()?);
        Ok(out)
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
    fn ports_impair_tables_become_port_impair_requests() {
        let c = Config::parse(
            r#"
            [[namespace]]
            ns = "red"

            [ports.red.impair]
            delay = "20ms"
            jitter = "2ms"
            distribution = "normal"
            gemodel = { p = "1%", r = "20%", one_minus_h = "100%", one_minus_k = "0%" }
            rate = "50mbit"
            seed = 3
            "#,
            "t",
        )
        .unwrap();
        let reqs = c.requests();
        let (what, req) = reqs.last().unwrap();
        assert_eq!(what, "[ports.red.impair]");
        let Request::PortImpair {
            name,
            impair: Some(spec),
        } = req
        else {
            panic!("{req:?}")
        };
        assert_eq!(name, "red");
        assert_eq!(
            spec.to_string(),
            "delay 20ms 2ms distribution normal loss gemodel 1% 20% 100% 0% rate 50mbit seed 3"
        );
        let e = Config::parse("[ports.red.impair]\nloss = \"120%\"\n", "t").unwrap_err();
        assert!(e.to_string().contains("between 0 and 100"), "{e}");
        let e = Config::parse("[ports.red.impair]\nlos = \"1%\"\n", "t").unwrap_err();
        assert!(e.to_string().contains("los"), "{e}");
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
                        max_learned: None,
                        flags: PolicyFlags {
                            gro: Some(false),
                            ..PolicyFlags::default()
                        },
                    }
                ),
                (
                    "[[namespace]] red".to_string(),
                    PortSet {
                        name: "red".into(),
                        max_learned: None,
                        flags: PolicyFlags {
                            hairpin: Some(true),
                            gro: Some(true),
                            ..PolicyFlags::default()
                        },
                    }
                ),
            ],
            "blue sets nothing, so no port set for it"
        );
    }

    #[test]
    fn a_config_written_as_toml_reads_back_the_same() {
        let text = r#"
            [switch]
            ageing_time = 60

            [[port]]
            kind = "tap"
            ifname = "tap7"
            mode = "host"
            ip = ["10.0.0.9/24"]
            gro = false

            [[namespace]]
            ns = "red"
            ip = ["10.0.0.1/24"]
            mac = "02:00:00:00:00:01"
            vlan_mode = "trunk"
            trunks = "10,20-30"
            storm_bcast = 100

            [ports.red]
            bpdu_guard = true
            hairpin = true

            [[namespace]]
            ns = "blue"
            via = "tap"

            [[fdb]]
            mac = "02:00:00:00:00:09"
            port = "red"

            [[mirror]]
            name = "span"
            to = "tap7"
            src = ["red"]
        "#;
        let c = Config::parse(text, "test").unwrap();
        let dumped = c.to_toml().unwrap();
        assert!(!dumped.contains("[]"), "no empty lists:\n{dumped}");
        let back = Config::parse(&dumped, "dump").unwrap();
        assert_eq!(back, c, "{dumped}");
        assert_eq!(back.requests(), c.requests());
    }

    #[test]
    fn policy_fields_are_the_differences_from_a_new_port() {
        let mut p = crate::switch::PortPolicy {
            isolated: true,
            gro: false,
            ..Default::default()
        };
        p.vlan = Some(crate::switch::VlanMode::Access { tag: 10 });
        let f = PolicyFields::from_policy(&p);
        assert_eq!(f.flags.isolated, Some(true));
        assert_eq!(f.flags.gro, Some(false));
        assert_eq!(f.flags.learning, None);
        assert_eq!((f.vlan_mode.as_deref(), f.tag), (Some("access"), Some(10)));
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
        let e = Config::parse("[ports.r]\nstorm_bcast = \"lots\"\n", "x").unwrap_err();
        assert!(e.to_string().contains("storm_bcast"), "{e}");
        let e = Config::parse("[ports.r]\nstorm_bcas = 5\n", "x").unwrap_err();
        assert!(e.to_string().contains("unknown field `storm_bcas`"), "{e}");
        let e = Config::from_file(Path::new("/nonexistent/l2sw.toml")).unwrap_err();
        assert!(e
            .to_string()
            .contains("cannot read config /nonexistent/l2sw.toml"));
    }
}
