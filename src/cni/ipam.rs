//! Delegating addresses to an IPAM plugin (host-local, static, dhcp), as
//! the spec has it: the plugin named by `ipam.type` is looked up in
//! CNI_PATH and run with the same configuration on stdin and the same
//! environment, except CNI_COMMAND when undoing an ADD.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::conf::CniEnv;
use super::error::{code, CniError};

/// The plugin file for `kind` in CNI_PATH.
pub fn find(kind: &str, env: &CniEnv) -> Result<PathBuf, CniError> {
    let path = env.need(&env.path, "CNI_PATH")?;
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d).join(kind))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CniError::new(
                code::INVALID_CONFIG,
                format!("IPAM plugin {kind:?} not found in CNI_PATH ({path})"),
            )
        })
}

/// Runs IPAM plugin `kind` for `command` with `stdin`; its result (ADD) or
/// `None` when it printed nothing.
pub fn exec(
    kind: &str,
    command: &str,
    env: &CniEnv,
    stdin: &[u8],
) -> Result<Option<Value>, CniError> {
    let plugin = find(kind, env)?;
    let mut child = Command::new(&plugin)
        .env("CNI_COMMAND", command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            CniError::new(
                code::IO,
                format!("cannot run IPAM plugin {}: {e}", plugin.display()),
            )
        })?;
    // The plugin may exit before reading everything: its exit status tells.
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin);
    }
    let out = child.wait_with_output().map_err(|e| {
        CniError::new(
            code::IO,
            format!("cannot read IPAM plugin {kind}'s answer: {e}"),
        )
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // The delegate's own error object, passed on with its code.
        if let Ok(v) = serde_json::from_str::<Value>(&stdout) {
            if let Some(msg) = v.get("msg").and_then(Value::as_str) {
                let c = v.get("code").and_then(Value::as_u64).unwrap_or(999) as u32;
                let mut e = CniError::new(c, format!("IPAM plugin {kind} ({command}): {msg}"));
                if let Some(d) = v.get("details").and_then(Value::as_str) {
                    e = e.details(d);
                }
                return Err(e);
            }
        }
        return Err(CniError::new(
            code::IO,
            format!(
                "IPAM plugin {kind} ({command}) failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        )
        .details(stdout.trim().to_string()));
    }
    if stdout.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&stdout).map(Some).map_err(|e| {
        CniError::new(
            code::DECODE,
            format!("IPAM plugin {kind} ({command}) printed a result that is not JSON: {e}"),
        )
    })
}

/// Whether IPAM plugin `kind` speaks spec `version` (asked with VERSION).
pub fn supports(kind: &str, env: &CniEnv, version: &str) -> Result<bool, CniError> {
    let stdin = format!(r#"{{"cniVersion":"{version}"}}"#);
    let v = exec(kind, "VERSION", env, stdin.as_bytes())?.unwrap_or(Value::Null);
    Ok(v["supportedVersions"]
        .as_array()
        .is_some_and(|l| l.iter().any(|x| x == version)))
}
