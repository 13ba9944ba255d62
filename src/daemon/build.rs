//! What building a port with devices shares, whatever kind it is: the
//! finished port with what to undo when it goes (`Built`), the undo list
//! that removes a half-built setup, and the steps namespaces and devices
//! have in common (free interface names, making a namespace, addressing an
//! interface inside it).

use crate::netns::{self, Cidr};
use crate::port::Port;
use crate::wire::MacAddr;

use super::resources::{Endpoint, Owned, Resources};

/// A port ready to hand to the dataplane; what to undo when it goes is
/// already recorded in the resources (and the journal) under the port's name.
pub struct Built {
    pub port: Box<dyn Port>,
    pub netns: Option<String>,
    pub ifname: String,
    pub host_ifname: Option<String>,
    pub created_netns: bool,
    /// The interface at the far end that stations send from (inside the
    /// namespace, or the TAP netdev), whose MAC `port list` shows.
    pub endpoint: Option<Endpoint>,
}

/// What a port being built has created so far, recorded under its name in
/// the resources (journaled at once, so a crash half way leaves nothing
/// unknown); released if dropped before `keep`.
pub struct Undo<'a> {
    res: &'a mut Resources,
    owner: String,
    kept: bool,
}

impl<'a> Undo<'a> {
    pub fn new(res: &'a mut Resources, owner: &str) -> Undo<'a> {
        Undo {
            res,
            owner: owner.to_string(),
            kept: false,
        }
    }

    /// Records `o` before it is created, so a crash in between leaves it known.
    pub fn push(&mut self, o: Owned) {
        self.res.push_owned(&self.owner, o);
    }

    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        for e in self.res.release_port(&self.owner) {
            eprintln!("l2sw: while undoing a failed setup: {e}");
        }
    }
}

/// FNV-1a, to derive short interface names that are stable per switch+namespace.
fn short_hash(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// An unused interface name `PREFIX` + 8 hex digits (at most 11 bytes).
pub fn free_ifname(prefix: &str, seed: &str) -> String {
    for salt in 0u32.. {
        let name = format!("{prefix}{:08x}", short_hash(&format!("{seed}/{salt}")));
        if !netns::link_exists(None, &name) {
            return name;
        }
    }
    unreachable!("u32 salts exhausted")
}

/// Creates `ns` if missing; true when the switch owns it (created it now,
/// or took it over from a dead predecessor that had created it).
pub fn ensure_netns(ns: &str, undo: &mut Undo) -> anyhow::Result<bool> {
    netns::validate_netns_name(ns)?;
    if netns::exists(ns) {
        let owner = undo.owner.clone();
        return Ok(undo.res.take_adopted(ns, &owner));
    }
    undo.push(Owned::netns(ns));
    netns::create(ns)?;
    Ok(true)
}

/// Addresses, MAC, MTU and link-up for an interface inside a namespace,
/// over one netlink socket opened there.
pub fn configure_inside(
    ns: Option<&str>,
    ifname: &str,
    mac: Option<MacAddr>,
    mtu: Option<u32>,
    ip: &[Cidr],
) -> anyhow::Result<()> {
    let mut nl = netns::rtnl(ns)?;
    let mut steps = || -> Result<(), crate::netlink::NetlinkError> {
        if let Some(m) = mac {
            nl.set_mac(ifname, m)?;
        }
        if let Some(m) = mtu {
            nl.set_mtu(ifname, m)?;
        }
        for c in ip {
            nl.add_addr(ifname, c.addr, c.prefix)?;
        }
        nl.set_up(ifname)
    };
    steps().map_err(|e| netns::NetnsError::netlink_in(ns, e))?;
    Ok(())
}

pub fn check_mac(mac: Option<MacAddr>) -> anyhow::Result<()> {
    if let Some(m) = mac {
        if !m.is_valid_source() {
            anyhow::bail!("MAC {m} is not a unicast station address");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names_fit_the_kernel_limit() {
        let n = format!("l2v{:08x}", short_hash("some-switch/some-namespace/0"));
        assert_eq!(n.len(), 11);
        assert_ne!(short_hash("a/red/0"), short_hash("b/red/0"));
    }
}
