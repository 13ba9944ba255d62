//! `l2sw-cni`: the CNI plugin binary. Reads the network configuration on
//! stdin and the CNI_* variables, prints the result or the spec's error
//! object on stdout; the work is in `l2sw::cni`.

use std::io::{Read, Write};

use l2sw::cni::conf::CniEnv;
use l2sw::cni::error::{code, CniError};

/// The variables the spec defines; nothing else of the environment is read.
const CNI_VARS: &[&str] = &[
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CNI_PATH",
];

fn main() {
    let env = CniEnv::from_lookup(|k| {
        debug_assert!(CNI_VARS.contains(&k));
        std::env::var(k).ok()
    });
    let mut stdin = Vec::new();
    let outcome = match std::io::stdin().read_to_end(&mut stdin) {
        // VERSION may come with an empty stdin.
        Ok(_) => l2sw::cni::run(&env, &stdin),
        Err(e) => Err(CniError::new(code::IO, format!("cannot read stdin: {e}"))),
    };
    let mut out = std::io::stdout().lock();
    match outcome {
        Ok(None) => {}
        Ok(Some(v)) => {
            let _ = writeln!(out, "{v}");
        }
        Err(e) => {
            let version = l2sw::cni::conf::version_of(&stdin).unwrap_or_else(|| "1.1.0".into());
            let _ = writeln!(out, "{}", e.to_json(&version));
            let _ = out.flush();
            std::process::exit(1);
        }
    }
}
