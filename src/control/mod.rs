//! The control socket: one Unix socket per switch name, one JSON request per
//! line, one JSON response per line. The CLI is a client of it like any other.
//!
//! See `docs/control.md` for the protocol.

pub mod access;
pub mod answers;
pub mod client;
pub mod policy;
pub mod protocol;
pub mod render;
pub mod server;
pub mod streams;
mod sys;
pub mod table;
pub mod views;

use std::path::{Path, PathBuf};

/// Where control sockets live unless `--run-dir` or `L2SW_RUN_DIR` says otherwise.
pub const DEFAULT_RUN_DIR: &str = "/run/l2sw";
/// The switch name used when `--name` is not given.
pub const DEFAULT_NAME: &str = "default";

/// Checks a switch name: it becomes a file name and part of interface names.
pub fn validate_switch_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 32 {
        return Err(format!(
            "invalid switch name {name:?}: must be 1 to 32 characters"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "invalid switch name {name:?}: only letters, digits, '-' and '_' are allowed"
        ));
    }
    Ok(())
}

/// The control socket of switch `name` under `run_dir`.
pub fn socket_path(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(format!("{name}.sock"))
}

/// An error and its causes as one line, leaving out causes whose text the
/// message already includes (many of our messages name their cause).
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_skips_repeated_causes() {
        let io = std::io::Error::other("disk on fire");
        let e = anyhow::Error::new(io).context("cannot write: disk on fire");
        assert_eq!(error_chain(&e), "cannot write: disk on fire");
        let e = anyhow::Error::new(std::io::Error::other("boom")).context("step failed");
        assert_eq!(error_chain(&e), "step failed: boom");
    }
}
