//! Network namespaces and links for plugging hosts into the switch: create a
//! namespace, a veth pair, move and rename links, address them, bring them up.
//!
//! Link and address changes go through iproute2's `ip`, the tool every user of
//! this switch already knows: its error messages are familiar, and what l2sw
//! did can be replayed by hand. Entering a namespace (for tests and probes)
//! uses setns(2) in a dedicated thread, see [`run_in`].

mod cidr;
mod sys;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use cidr::{Cidr, CidrParseError};

use crate::wire::MacAddr;

/// Where iproute2 keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// A namespace or link operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("invalid namespace name {name:?}: {why}")]
    InvalidNamespace { name: String, why: &'static str },
    #[error("invalid interface name {name:?}: {why}")]
    InvalidIfname { name: String, why: &'static str },
    #[error("no network namespace named {0}")]
    NoSuchNamespace(String),
    #[error("cannot {what}: `{cmd}` failed: {stderr}")]
    Command {
        what: String,
        cmd: String,
        stderr: String,
    },
    #[error("cannot {what}: cannot run `ip` (is iproute2 installed?): {source}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot enter network namespace {name}: {source}")]
    Enter {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// Checks a namespace name the way `ip netns` would accept it, and a bit
/// stricter: it becomes a file name under /run/netns.
pub fn validate_netns_name(name: &str) -> Result<(), NetnsError> {
    let bad = |why| {
        Err(NetnsError::InvalidNamespace {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 64 {
        return bad("longer than 64 characters");
    }
    if name == "." || name == ".." {
        return bad("not a file name");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return bad("only letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(())
}

/// Checks an interface name as the kernel does (dev_valid_name).
pub fn validate_ifname(name: &str) -> Result<(), NetnsError> {
    let bad = |why| {
        Err(NetnsError::InvalidIfname {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 15 {
        return bad("longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("not a valid name");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return bad("contains '/', ':' or whitespace");
    }
    Ok(())
}

pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

pub fn exists(name: &str) -> bool {
    netns_path(name).exists()
}

/// Runs `ip ARGS`; `what` says what it was for, in the error.
fn ip(what: impl Into<String>, args: &[&str]) -> Result<String, NetnsError> {
    let what = what.into();
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| NetnsError::Spawn {
            what: what.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetnsError::Command {
            what,
            cmd: format!("ip {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// `ip [-n NS] ARGS`
fn ip_in(
    what: impl Into<String>,
    netns: Option<&str>,
    args: &[&str],
) -> Result<String, NetnsError> {
    match netns {
        None => ip(what, args),
        Some(ns) => {
            let mut full = vec!["-n", ns];
            full.extend_from_slice(args);
            ip(what, &full)
        }
    }
}

fn where_(netns: Option<&str>) -> String {
    match netns {
        Some(ns) => format!(" in namespace {ns}"),
        None => String::new(),
    }
}

/// Creates a named namespace and brings its loopback up.
pub fn create(name: &str) -> Result<(), NetnsError> {
    validate_netns_name(name)?;
    ip(
        format!("create network namespace {name}"),
        &["netns", "add", name],
    )?;
    ip_in(
        format!("bring up lo in namespace {name}"),
        Some(name),
        &["link", "set", "lo", "up"],
    )?;
    Ok(())
}

pub fn delete(name: &str) -> Result<(), NetnsError> {
    ip(
        format!("delete network namespace {name}"),
        &["netns", "del", name],
    )
    .map(|_| ())
}

/// Whether `ifname` exists (in `netns`, or in the switch's namespace).
pub fn link_exists(netns: Option<&str>, ifname: &str) -> bool {
    if netns.is_some_and(|ns| !exists(ns)) {
        return false;
    }
    ip_in("look up link", netns, &["link", "show", "dev", ifname]).is_ok()
}

/// Creates a veth pair with `host` here and `peer` inside `peer_netns`.
pub fn create_veth(host: &str, peer: &str, peer_netns: &str) -> Result<(), NetnsError> {
    validate_ifname(host)?;
    validate_ifname(peer)?;
    ip(
        format!("create veth pair {host} <-> {peer} (in namespace {peer_netns})"),
        &[
            "link", "add", host, "type", "veth", "peer", "name", peer, "netns", peer_netns,
        ],
    )
    .map(|_| ())
}

pub fn delete_link(netns: Option<&str>, ifname: &str) -> Result<(), NetnsError> {
    ip_in(
        format!("delete link {ifname}{}", where_(netns)),
        netns,
        &["link", "del", "dev", ifname],
    )
    .map(|_| ())
}

/// Moves a link from the switch's namespace into `netns`.
pub fn move_link(ifname: &str, netns: &str) -> Result<(), NetnsError> {
    ip(
        format!("move link {ifname} into namespace {netns}"),
        &["link", "set", "dev", ifname, "netns", netns],
    )
    .map(|_| ())
}

pub fn rename_link(netns: Option<&str>, old: &str, new: &str) -> Result<(), NetnsError> {
    validate_ifname(new)?;
    ip_in(
        format!("rename link {old} to {new}{}", where_(netns)),
        netns,
        &["link", "set", "dev", old, "name", new],
    )
    .map(|_| ())
}

pub fn set_up(netns: Option<&str>, ifname: &str) -> Result<(), NetnsError> {
    ip_in(
        format!("bring up link {ifname}{}", where_(netns)),
        netns,
        &["link", "set", "dev", ifname, "up"],
    )
    .map(|_| ())
}

pub fn set_mtu(netns: Option<&str>, ifname: &str, mtu: u32) -> Result<(), NetnsError> {
    let m = mtu.to_string();
    ip_in(
        format!("set MTU {mtu} on {ifname}{}", where_(netns)),
        netns,
        &["link", "set", "dev", ifname, "mtu", &m],
    )
    .map(|_| ())
}

pub fn set_mac(netns: Option<&str>, ifname: &str, mac: MacAddr) -> Result<(), NetnsError> {
    let m = mac.to_string();
    ip_in(
        format!("set MAC {mac} on {ifname}{}", where_(netns)),
        netns,
        &["link", "set", "dev", ifname, "address", &m],
    )
    .map(|_| ())
}

pub fn add_addr(netns: Option<&str>, ifname: &str, cidr: &Cidr) -> Result<(), NetnsError> {
    let c = cidr.to_string();
    let mut args = vec!["addr", "add", &c, "dev", ifname];
    if cidr.is_ipv6() {
        // No DAD: the address is usable at once, which tests and demos need.
        args.push("nodad");
    }
    ip_in(
        format!("add address {c} to {ifname}{}", where_(netns)),
        netns,
        &args,
    )
    .map(|_| ())
}

/// Adds a route through `ifname`: `dst` ("0.0.0.0/0", "10.1.0.0/16"), via
/// `gw` when given, else directly on the link.
pub fn add_route(
    netns: Option<&str>,
    ifname: &str,
    dst: &str,
    gw: Option<std::net::IpAddr>,
) -> Result<(), NetnsError> {
    let g = gw.map(|g| g.to_string());
    let mut args = vec!["route", "add", dst];
    if let Some(g) = &g {
        args.extend_from_slice(&["via", g]);
    }
    args.extend_from_slice(&["dev", ifname]);
    let via = g.as_ref().map(|g| format!(" via {g}")).unwrap_or_default();
    ip_in(
        format!("add route {dst}{via} on {ifname}{}", where_(netns)),
        netns,
        &args,
    )
    .map(|_| ())
}

/// The addresses on a link (global and link-local alike).
pub fn link_addrs(netns: Option<&str>, ifname: &str) -> Result<Vec<Cidr>, NetnsError> {
    let out = ip_in(
        format!("read addresses of {ifname}{}", where_(netns)),
        netns,
        &["-o", "addr", "show", "dev", ifname],
    )?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|x| *x == "inet" || *x == "inet6")?;
            w.next()?.parse().ok()
        })
        .collect())
}

/// Waits until the kernel has activated `ifname` (operational state UP).
///
/// A veth end brought up before its peer gets its transmit queue only when
/// the kernel's link watcher sees the carrier come up, up to a second later;
/// until then frames sent on it are silently dropped. Plugging waits for that
/// so the first frames after `ns plug` are not lost.
pub fn wait_oper_up(
    netns: Option<&str>,
    ifname: &str,
    timeout: std::time::Duration,
) -> Result<(), NetnsError> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let out = ip_in(
            format!("read state of {ifname}{}", where_(netns)),
            netns,
            &["-o", "link", "show", "dev", ifname],
        )?;
        if out.contains(" state UP ") {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(NetnsError::Command {
                what: format!("bring up link {ifname}{}", where_(netns)),
                cmd: format!("ip -o link show dev {ifname}"),
                stderr: format!(
                    "still not operationally up after {timeout:?}: {}",
                    out.trim()
                ),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Reads the MAC of a link.
pub fn link_mac(netns: Option<&str>, ifname: &str) -> Result<MacAddr, NetnsError> {
    let out = ip_in(
        format!("read MAC of {ifname}{}", where_(netns)),
        netns,
        &["-o", "link", "show", "dev", ifname],
    )?;
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| NetnsError::Command {
            what: format!("read MAC of {ifname}"),
            cmd: "ip -o link show".into(),
            stderr: format!("no link/ether address in {out:?}"),
        })
}

/// Turns IPv6 off on a switch-side link so the host stack sends nothing
/// (router solicitations, DAD) into the switch through it.
pub fn disable_ipv6(ifname: &str) -> Result<(), NetnsError> {
    let path = format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6");
    match std::fs::write(&path, "1") {
        Ok(()) => Ok(()),
        // No IPv6 in this kernel: nothing to turn off.
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && !Path::new("/proc/sys/net/ipv6").exists() =>
        {
            Ok(())
        }
        Err(e) => Err(NetnsError::Command {
            what: format!("disable IPv6 on {ifname}"),
            cmd: format!("echo 1 > {path}"),
            stderr: e.to_string(),
        }),
    }
}

/// Runs `f` in a fresh thread that has entered namespace `name`. Sockets `f`
/// opens stay in that namespace for their whole life, wherever they are used.
pub fn run_in<F, R>(name: &str, f: F) -> Result<R, NetnsError>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    run_in_path(&netns_path(name), name, f)
}

/// [`run_in`] for a namespace named by a file (a container runtime's
/// `/proc/PID/ns/net` or `/run/netns/...` path); `label` names it in errors.
/// Processes `f` starts (`ip`) run in that namespace too: a child inherits
/// the namespace of the thread that forks it.
pub fn run_in_path<F, R>(path: &Path, label: &str, f: F) -> Result<R, NetnsError>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    let file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            NetnsError::NoSuchNamespace(label.to_string())
        } else {
            NetnsError::Enter {
                name: label.to_string(),
                source: e,
            }
        }
    })?;
    std::thread::scope(|s| {
        s.spawn(move || {
            sys::enter_netns(&file).map_err(|source| NetnsError::Enter {
                name: label.to_string(),
                source,
            })?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}
