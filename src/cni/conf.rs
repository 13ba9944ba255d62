//! The network configuration a runtime hands the plugin on stdin, and the
//! CNI_* variables of the call. Everything the plugin does is decided by
//! these two: a runtime may run DEL from a cleanup process whose other
//! environment differs from ADD's.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{code, CniError};
use crate::control::protocol::{PortSet, VlanConf};

/// Spec versions this plugin speaks (its result format is 1.0.0's).
pub const SUPPORTED_VERSIONS: &[&str] = &["1.0.0", "1.1.0"];

/// Where the switches' control sockets are unless `runDir` says otherwise.
pub const DEFAULT_RUN_DIR: &str = crate::control::DEFAULT_RUN_DIR;

/// The network configuration (one plugin's entry of a conflist, with the
/// runtime's `name`/`cniVersion` copied in).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    pub cni_version: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The l2sw switch (`l2sw --name SWITCH run`) containers attach to.
    pub switch: String,
    /// The switch's run directory (`--run-dir`), default /run/l2sw.
    #[serde(default)]
    pub run_dir: Option<PathBuf>,
    #[serde(default)]
    pub ipam: Option<Map<String, Value>>,
    /// MTU of both veth ends (default: the kernel's, 1500).
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The port's VLAN settings, as `l2sw port vlan` takes them.
    #[serde(default)]
    pub vlan: Option<VlanConf>,
    /// The port's flags, as `l2sw port set` takes them (JSON names: those
    /// of `control::policy::PolicyFlags`, and max_learned).
    #[serde(default)]
    pub policy: Option<Map<String, Value>>,
    /// DNS settings to report in the result when IPAM gives none.
    #[serde(default)]
    pub dns: Option<Value>,
    /// CHECK and DEL: the result of the ADD.
    #[serde(default)]
    pub prev_result: Option<Value>,
    /// GC: the attachments the runtime still uses.
    #[serde(default, rename = "cni.dev/valid-attachments")]
    pub valid_attachments: Option<Vec<ValidAttachment>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ValidAttachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// A checked configuration: the parts the switch takes already parsed.
#[derive(Debug, Clone)]
pub struct Checked {
    pub conf: NetConf,
    pub policy: Option<PortSet>,
    pub ipam_type: Option<String>,
}

impl Checked {
    pub fn run_dir(&self) -> PathBuf {
        self.conf
            .run_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_DIR))
    }
}

fn invalid(msg: impl Into<String>) -> CniError {
    CniError::new(code::INVALID_CONFIG, msg)
}

/// Only `cniVersion` of a config, for VERSION and for error objects of
/// configs that do not parse as a whole.
pub fn version_of(stdin: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(stdin).ok()?;
    v.get("cniVersion")?.as_str().map(str::to_string)
}

/// Parses and checks a network configuration.
pub fn parse(stdin: &[u8]) -> Result<Checked, CniError> {
    let v: Value = serde_json::from_slice(stdin).map_err(|e| {
        CniError::new(
            code::DECODE,
            format!("the network configuration on stdin is not valid JSON: {e}"),
        )
    })?;
    let conf: NetConf = serde_json::from_value(v)
        .map_err(|e| invalid(format!("invalid network configuration: {e}")))?;
    if !SUPPORTED_VERSIONS.contains(&conf.cni_version.as_str()) {
        return Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!(
                "cniVersion {:?} is not supported by l2sw-cni (supported: {})",
                conf.cni_version,
                SUPPORTED_VERSIONS.join(", ")
            ),
        ));
    }
    crate::control::validate_switch_name(&conf.switch)
        .map_err(|e| invalid(format!("switch: {e}")))?;
    if let Some(m) = conf.mtu {
        if !(68..=65535).contains(&m) {
            return Err(invalid(format!("mtu {m} is out of range (68..=65535)")));
        }
    }
    if let Some(v) = &conf.vlan {
        v.to_mode().map_err(|e| invalid(format!("vlan: {e}")))?;
    }
    let policy = match &conf.policy {
        None => None,
        Some(p) => {
            if p.contains_key("name") {
                return Err(invalid(
                    "policy: unknown field `name` (the port is named after the container)",
                ));
            }
            let mut p = p.clone();
            p.insert("name".into(), Value::from(""));
            let set: PortSet = serde_json::from_value(Value::Object(p))
                .map_err(|e| invalid(format!("policy: {e}")))?;
            Some(set)
        }
    };
    let ipam_type = match &conf.ipam {
        None => None,
        Some(m) => match m.get("type") {
            Some(Value::String(t)) if !t.is_empty() && !t.contains('/') => Some(t.clone()),
            Some(Value::String(t)) => {
                return Err(invalid(format!(
                    "ipam.type {t:?} is not a plugin name (a file name in CNI_PATH)"
                )))
            }
            Some(other) => return Err(invalid(format!("ipam.type must be a string, not {other}"))),
            None => return Err(invalid("ipam has no \"type\" (e.g. \"host-local\")")),
        },
    };
    Ok(Checked {
        conf,
        policy,
        ipam_type,
    })
}

/// The CNI_* variables of one call.
#[derive(Debug, Clone, Default)]
pub struct CniEnv {
    pub command: String,
    pub container_id: Option<String>,
    pub netns: Option<String>,
    pub ifname: Option<String>,
    pub args: Option<String>,
    pub path: Option<String>,
}

impl CniEnv {
    /// The variables the spec defines, read through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> CniEnv {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        CniEnv {
            command: get("CNI_COMMAND").unwrap_or_default(),
            container_id: get("CNI_CONTAINERID"),
            netns: get("CNI_NETNS"),
            ifname: get("CNI_IFNAME"),
            args: get("CNI_ARGS"),
            path: get("CNI_PATH"),
        }
    }

    /// A required variable, or the spec's error for its absence.
    pub fn need<'a>(&self, v: &'a Option<String>, name: &str) -> Result<&'a str, CniError> {
        v.as_deref().ok_or_else(|| {
            CniError::new(
                code::INVALID_ENV,
                format!("{name} is not set; CNI {} needs it", self.command),
            )
        })
    }

    /// One `KEY=VALUE` of CNI_ARGS (`;`-separated).
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .as_deref()?
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(conf: &str) -> CniError {
        parse(conf.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_full_config_parses() {
        let c = parse(
            br#"{"cniVersion":"1.0.0","name":"lab","type":"l2sw-cni","switch":"lab",
                "ipam":{"type":"host-local","subnet":"10.88.5.0/24"},"mtu":1400,
                "vlan":{"mode":"access","tag":10},"policy":{"isolated":true,"max_learned":4}}"#,
        )
        .unwrap();
        assert_eq!(c.ipam_type.as_deref(), Some("host-local"));
        assert_eq!(c.policy.as_ref().unwrap().flags.isolated, Some(true));
        assert_eq!(c.run_dir(), PathBuf::from("/run/l2sw"));
    }

    #[test]
    fn bad_configs_get_precise_errors_and_codes() {
        let base = r#""cniVersion":"1.0.0","name":"lab","type":"l2sw-cni""#;
        let cases = [
            ("{", code::DECODE, "not valid JSON"),
            (
                &format!("{{{base}}}"),
                code::INVALID_CONFIG,
                "missing field `switch`",
            ),
            (
                r#"{"cniVersion":"0.3.1","name":"lab","type":"l2sw-cni","switch":"lab"}"#,
                code::INCOMPATIBLE_VERSION,
                "cniVersion \"0.3.1\" is not supported",
            ),
            (
                &format!(r#"{{{base},"switch":"a b"}}"#),
                code::INVALID_CONFIG,
                "switch: invalid switch name",
            ),
            (
                &format!(r#"{{{base},"switch":"lab","mtu":20}}"#),
                code::INVALID_CONFIG,
                "mtu 20 is out of range",
            ),
            (
                &format!(r#"{{{base},"switch":"lab","vlan":{{"mode":"access"}}}}"#),
                code::INVALID_CONFIG,
                "vlan: --mode access needs --tag",
            ),
            (
                &format!(
                    r#"{{{base},"switch":"lab","vlan":{{"mode":"access","tag":10,"pvid":3}}}}"#
                ),
                code::INVALID_CONFIG,
                "unknown field `pvid`",
            ),
            (
                &format!(r#"{{{base},"switch":"lab","policy":{{"flod":false}}}}"#),
                code::INVALID_CONFIG,
                "policy: unknown field `flod`",
            ),
            (
                &format!(r#"{{{base},"switch":"lab","ipam":{{"subnet":"10.0.0.0/24"}}}}"#),
                code::INVALID_CONFIG,
                "ipam has no \"type\"",
            ),
        ];
        for (conf, want_code, want) in cases {
            let e = err(conf);
            assert_eq!(e.code, want_code, "{conf}: {e:?}");
            assert!(
                e.msg.contains(want),
                "{conf}: got {:?}, want {want:?}",
                e.msg
            );
        }
    }

    #[test]
    fn cni_args_are_read_by_key() {
        let env = CniEnv::from_lookup(|k| {
            (k == "CNI_ARGS").then(|| "IgnoreUnknown=1;K8S_POD_NAME=web".to_string())
        });
        assert_eq!(env.arg("K8S_POD_NAME"), Some("web"));
        assert_eq!(env.arg("K8S_POD_NAMESPACE"), None);
        assert!(env
            .need(&env.netns, "CNI_NETNS")
            .unwrap_err()
            .msg
            .contains("CNI_NETNS is not set"));
    }
}
