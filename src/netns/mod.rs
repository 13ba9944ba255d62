//! Network namespaces and links for plugging hosts into the switch: create a
//! namespace, a veth pair, move and rename links, address them, bring them up.
//!
//! Nothing here forks: namespaces are made and removed with unshare(2) and
//! bind mounts under /run/netns ([`named`], iproute2's convention, so `ip
//! netns exec` works on them), links and addresses change through netlink
//! ([`crate::netlink`]). Working inside a namespace means a netlink socket
//! opened there ([`rtnl`], [`Namespace::rtnl`]): a short-lived thread enters
//! the namespace with setns(2) (the one place: `sys.rs`) and opens it.
//!
//! The functions taking `netns: Option<&str>` act in that namespace (`None`:
//! the switch's own), one socket per call; callers doing several steps in one
//! namespace open one [`rtnl`] and reuse it, mapping errors with
//! [`NetnsError::netlink_in`].

mod cidr;
mod named;
mod sys;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use cidr::{Cidr, CidrParseError};
pub use named::{create, delete, Namespace};

use crate::netlink::{NetlinkError, Rtnl};
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
    #[error("network namespace {0} already exists")]
    Exists(String),
    /// A step in a named namespace, which is not there.
    #[error("cannot {what}: no such namespace")]
    NamespaceGone { what: String },
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error("cannot create network namespace {name}: {step}: {err}")]
    Create {
        name: String,
        step: &'static str,
        err: std::io::Error,
    },
    #[error("cannot delete network namespace {name}: {err}")]
    Delete { name: String, err: std::io::Error },
    #[error("cannot {what}: {path}: {err}")]
    Sysctl {
        what: String,
        path: String,
        err: std::io::Error,
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

impl NetnsError {
    /// A netlink error from a socket opened in `netns`, saying so.
    pub fn netlink_in(netns: Option<&str>, e: NetlinkError) -> NetnsError {
        match netns {
            Some(ns) => NetnsError::Netlink(e.in_netns(ns)),
            None => NetnsError::Netlink(e),
        }
    }
}

/// A netlink socket in namespace `netns` (`None`: the caller's).
pub fn rtnl(netns: Option<&str>) -> Result<Rtnl, NetnsError> {
    match netns {
        None => Ok(Rtnl::open()?),
        Some(ns) => Namespace::open(ns)?.rtnl(),
    }
}

/// Runs one request on a socket in `netns`; `what` names the step should
/// the namespace be missing.
fn at<R>(
    netns: Option<&str>,
    what: impl FnOnce() -> String,
    f: impl FnOnce(&mut Rtnl) -> Result<R, NetlinkError>,
) -> Result<R, NetnsError> {
    let mut nl = match rtnl(netns) {
        Err(NetnsError::NoSuchNamespace(_)) => {
            return Err(NetnsError::NamespaceGone { what: what() })
        }
        r => r?,
    };
    f(&mut nl).map_err(|e| NetnsError::netlink_in(netns, e))
}

fn where_(netns: Option<&str>) -> String {
    match netns {
        Some(ns) => format!(" in namespace {ns}"),
        None => String::new(),
    }
}

/// Whether `ifname` exists (in `netns`, or in the switch's namespace).
pub fn link_exists(netns: Option<&str>, ifname: &str) -> bool {
    let Ok(mut nl) = rtnl(netns) else {
        return false;
    };
    matches!(nl.link(ifname), Ok(Some(_)))
}

/// Creates a veth pair with `host` here and `peer` inside `peer_netns`.
pub fn create_veth(host: &str, peer: &str, peer_netns: &str) -> Result<(), NetnsError> {
    validate_ifname(host)?;
    validate_ifname(peer)?;
    let what = || format!("create veth pair {host} <-> {peer} (in namespace {peer_netns})");
    let ns = match Namespace::open(peer_netns) {
        Err(NetnsError::NoSuchNamespace(_)) => {
            return Err(NetnsError::NamespaceGone { what: what() })
        }
        r => r?,
    };
    Rtnl::open()?
        .create_veth(host, peer, Some(ns.fd()))
        .map_err(|e| match e {
            NetlinkError::Kernel { err, hint, .. } => NetlinkError::Kernel {
                what: what(),
                err,
                hint,
            },
            e => e,
        })?;
    Ok(())
}

pub fn delete_link(netns: Option<&str>, ifname: &str) -> Result<(), NetnsError> {
    at(
        netns,
        || format!("delete link {ifname}{}", where_(netns)),
        |nl| nl.delete_link(ifname),
    )
}

/// Moves a link from the switch's namespace into `netns`.
pub fn move_link(ifname: &str, netns: &str) -> Result<(), NetnsError> {
    let ns = match Namespace::open(netns) {
        Err(NetnsError::NoSuchNamespace(_)) => {
            return Err(NetnsError::NamespaceGone {
                what: format!("move link {ifname} into namespace {netns}"),
            })
        }
        r => r?,
    };
    Ok(Rtnl::open()?.move_to_netns(ifname, ns.fd(), netns)?)
}

pub fn rename_link(netns: Option<&str>, old: &str, new: &str) -> Result<(), NetnsError> {
    validate_ifname(new)?;
    at(
        netns,
        || format!("rename link {old} to {new}{}", where_(netns)),
        |nl| nl.rename(old, new),
    )
}

pub fn set_up(netns: Option<&str>, ifname: &str) -> Result<(), NetnsError> {
    at(
        netns,
        || format!("bring up link {ifname}{}", where_(netns)),
        |nl| nl.set_up(ifname),
    )
}

pub fn set_mtu(netns: Option<&str>, ifname: &str, mtu: u32) -> Result<(), NetnsError> {
    at(
        netns,
        || format!("set MTU {mtu} on {ifname}{}", where_(netns)),
        |nl| nl.set_mtu(ifname, mtu),
    )
}

pub fn set_mac(netns: Option<&str>, ifname: &str, mac: MacAddr) -> Result<(), NetnsError> {
    at(
        netns,
        || format!("set MAC {mac} on {ifname}{}", where_(netns)),
        |nl| nl.set_mac(ifname, mac),
    )
}

/// Adds an address (IPv6 without DAD: usable at once, which tests and demos
/// need).
pub fn add_addr(netns: Option<&str>, ifname: &str, cidr: &Cidr) -> Result<(), NetnsError> {
    at(
        netns,
        || format!("add address {cidr} to {ifname}{}", where_(netns)),
        |nl| nl.add_addr(ifname, cidr.addr, cidr.prefix),
    )
}

/// Adds a route through `ifname`: `dst` ("0.0.0.0/0", "10.1.0.0/16"), via
/// `gw` when given, else directly on the link.
pub fn add_route(
    netns: Option<&str>,
    ifname: &str,
    dst: &str,
    gw: Option<std::net::IpAddr>,
) -> Result<(), NetnsError> {
    let via = gw.map(|g| format!(" via {g}")).unwrap_or_default();
    let what = || format!("add route {dst}{via} on {ifname}{}", where_(netns));
    // A zero-length prefix is the default route of its family.
    let target = match dst.parse::<Cidr>() {
        Ok(c) if c.prefix == 0 => None,
        Ok(c) => Some((c.addr, c.prefix)),
        Err(e) => {
            return Err(NetnsError::Netlink(NetlinkError::Unmet {
                what: what(),
                detail: e.to_string(),
            }))
        }
    };
    at(netns, what, |nl| nl.add_route(target, gw, Some(ifname)))
}

/// The addresses on a link (global and link-local alike).
pub fn link_addrs(netns: Option<&str>, ifname: &str) -> Result<Vec<Cidr>, NetnsError> {
    let what = || format!("read addresses of {ifname}{}", where_(netns));
    let addrs = at(netns, what, |nl| nl.addrs(ifname))?;
    Ok(addrs
        .into_iter()
        .map(|a| Cidr {
            addr: a.addr,
            prefix: a.prefix,
        })
        .collect())
}

/// Waits until the kernel has activated `ifname` (operational state UP).
///
/// A veth end brought up before its peer gets its transmit queue only when
/// the kernel's link watcher sees the carrier come up; until then frames
/// sent on it are silently dropped. Plugging waits for that so the first
/// frames after `ns plug` are not lost.
pub fn wait_oper_up(
    netns: Option<&str>,
    ifname: &str,
    timeout: Duration,
) -> Result<(), NetnsError> {
    at(
        netns,
        || format!("bring up link {ifname}{}", where_(netns)),
        |nl| nl.wait_oper_up(ifname, timeout),
    )
}

/// Reads the MAC of a link.
pub fn link_mac(netns: Option<&str>, ifname: &str) -> Result<MacAddr, NetnsError> {
    let what = || format!("read MAC of {ifname}{}", where_(netns));
    let link = at(netns, what, |nl| nl.link(ifname))?;
    link.and_then(|l| l.mac).ok_or_else(|| {
        NetnsError::Netlink(NetlinkError::Unmet {
            what: what(),
            detail: match link_exists(netns, ifname) {
                true => "it has no Ethernet address".into(),
                false => "no interface of that name".into(),
            },
        })
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
        Err(err) => Err(NetnsError::Sysctl {
            what: format!("disable IPv6 on {ifname}"),
            path,
            err,
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

#[cfg(test)]
mod tests;
