//! What building a port with devices shares, whatever kind it is: the
//! finished port with what to undo when it goes (`Built`), the undo list
//! that removes a half-built setup, and the steps namespaces and devices
//! have in common (free interface names, making a namespace, addressing an
//! interface inside it).

use crate::netns::{self, Cidr};
use crate::port::Port;
use crate::wire::MacAddr;

use super::resources::Owned;

/// A port ready to hand to the dataplane, and what to undo when it goes.
pub struct Built {
    pub port: Box<dyn Port>,
    pub owned: Vec<Owned>,
    pub netns: Option<String>,
    pub ifname: String,
    pub host_ifname: Option<String>,
    pub created_netns: bool,
}

/// Undo list being built; releases everything if dropped before `keep`.
#[derive(Default)]
pub struct Undo(Vec<Owned>);

impl Undo {
    pub fn new() -> Undo {
        Undo(Vec::new())
    }

    pub fn push(&mut self, o: Owned) {
        self.0.push(o);
    }
    pub fn keep(mut self) -> Vec<Owned> {
        std::mem::take(&mut self.0)
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        for o in self.0.iter().rev() {
            if let Some(e) = o.release() {
                eprintln!("l2sw: while undoing a failed setup: {e}");
            }
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

pub fn ensure_netns(ns: &str, undo: &mut Undo) -> anyhow::Result<bool> {
    netns::validate_netns_name(ns)?;
    if netns::exists(ns) {
        return Ok(false);
    }
    netns::create(ns)?;
    undo.push(Owned::Netns(ns.to_string()));
    Ok(true)
}

/// Addresses, MAC, MTU and link-up for an interface inside a namespace.
pub fn configure_inside(
    ns: Option<&str>,
    ifname: &str,
    mac: Option<MacAddr>,
    mtu: Option<u32>,
    ip: &[Cidr],
) -> anyhow::Result<()> {
    if let Some(m) = mac {
        netns::set_mac(ns, ifname, m)?;
    }
    if let Some(m) = mtu {
        netns::set_mtu(ns, ifname, m)?;
    }
    for c in ip {
        netns::add_addr(ns, ifname, c)?;
    }
    netns::set_up(ns, ifname)?;
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
