//! Building ports that need devices: namespaces plugged via veth or TAP, and
//! TAP ports. Each step that creates something records it, so a failure half
//! way removes what was made and leaves the host as it was.

use crate::control::protocol::{AddKind, NsPlug, PortAdd, TapMode, Via};
use crate::netns::{self, Cidr};
use crate::port::afpacket::AfPacketPort;
use crate::port::tap::{self, TapPort};
use crate::port::{Port, PortKind};
use crate::wire::MacAddr;

use super::resources::Owned;

/// How long a new veth may take to become operational.
const LINK_UP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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
struct Undo(Vec<Owned>);

impl Undo {
    fn push(&mut self, o: Owned) {
        self.0.push(o);
    }
    fn keep(mut self) -> Vec<Owned> {
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
fn free_ifname(prefix: &str, seed: &str) -> String {
    for salt in 0u32.. {
        let name = format!("{prefix}{:08x}", short_hash(&format!("{seed}/{salt}")));
        if !netns::link_exists(None, &name) {
            return name;
        }
    }
    unreachable!("u32 salts exhausted")
}

fn ensure_netns(ns: &str, undo: &mut Undo) -> anyhow::Result<bool> {
    netns::validate_netns_name(ns)?;
    if netns::exists(ns) {
        return Ok(false);
    }
    netns::create(ns)?;
    undo.push(Owned::Netns(ns.to_string()));
    Ok(true)
}

/// Addresses, MAC, MTU and link-up for an interface inside a namespace.
fn configure_inside(
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

fn check_mac(mac: Option<MacAddr>) -> anyhow::Result<()> {
    if let Some(m) = mac {
        if !m.is_valid_source() {
            anyhow::bail!("MAC {m} is not a unicast station address");
        }
    }
    Ok(())
}

/// `ns plug`: namespace (created if missing) wired to the switch.
pub fn plug_namespace(switch: &str, req: &NsPlug) -> anyhow::Result<Built> {
    netns::validate_netns_name(&req.ns)?;
    check_mac(req.mac)?;
    let inside = req.ifname.clone().unwrap_or_else(|| "eth0".to_string());
    netns::validate_ifname(&inside)?;
    if netns::exists(&req.ns) && netns::link_exists(Some(&req.ns), &inside) {
        anyhow::bail!(
            "namespace {} already has an interface {inside}; choose another name with --ifname",
            req.ns
        );
    }
    let mut undo = Undo(Vec::new());
    let created_netns = ensure_netns(&req.ns, &mut undo)?;
    let seed = format!("{switch}/{}", req.ns);
    let built = match req.via {
        Via::Veth => {
            let host = free_ifname("l2v", &seed);
            netns::create_veth(&host, &inside, &req.ns)?;
            undo.push(Owned::Link(host.clone()));
            netns::disable_ipv6(&host)?;
            if let Some(m) = req.mtu {
                netns::set_mtu(None, &host, m)?;
            }
            netns::set_up(None, &host)?;
            configure_inside(Some(&req.ns), &inside, req.mac, req.mtu, &req.ip)?;
            netns::wait_oper_up(None, &host, LINK_UP_TIMEOUT)?;
            let port = AfPacketPort::open(&host, PortKind::Iface)?;
            Built {
                port: Box::new(port),
                owned: Vec::new(),
                netns: Some(req.ns.clone()),
                ifname: inside,
                host_ifname: Some(host),
                created_netns,
            }
        }
        Via::Tap => {
            let tmp = free_ifname("l2t", &seed);
            // Closing the queue fd destroys the device, wherever it is by then.
            let mut tap = TapPort::create(&tmp)?;
            netns::move_link(&tmp, &req.ns)?;
            netns::rename_link(Some(&req.ns), &tmp, &inside)?;
            configure_inside(Some(&req.ns), &inside, req.mac, req.mtu, &req.ip)?;
            tap.set_mtu_hint(req.mtu.unwrap_or(1500));
            Built {
                port: Box::new(tap),
                owned: Vec::new(),
                netns: Some(req.ns.clone()),
                ifname: inside,
                host_ifname: None,
                created_netns,
            }
        }
    };
    Ok(Built {
        owned: undo.keep(),
        ..built
    })
}

/// `port add`: an existing interface, or a new TAP.
pub fn build_port(req: &PortAdd) -> anyhow::Result<Built> {
    netns::validate_ifname(&req.ifname)?;
    check_mac(req.mac)?;
    if req.socket.is_some() || req.peer.is_some() || !req.access.is_default() {
        anyhow::bail!("--listen, --bind, --peer, --owner and --socket-mode apply to stream and dgram ports only");
    }
    let tap_only = |what: &str| -> anyhow::Result<()> {
        anyhow::bail!("{what} applies to TAP ports only (port add tap ...)")
    };
    match req.kind {
        AddKind::Iface => {
            if req.netns.is_some() {
                tap_only("--netns")?;
            }
            if !req.ip.is_empty() {
                tap_only("--ip")?;
            }
            if req.mode.is_some() {
                tap_only("--mode")?;
            }
            if req.mtu.is_some() || req.mac.is_some() {
                tap_only("--mtu/--mac")?;
            }
            let port = AfPacketPort::open(&req.ifname, PortKind::Iface)?;
            Ok(Built {
                port: Box::new(port),
                owned: Vec::new(),
                netns: None,
                ifname: req.ifname.clone(),
                host_ifname: Some(req.ifname.clone()),
                created_netns: false,
            })
        }
        AddKind::Stream | AddKind::Dgram => {
            anyhow::bail!("stream and dgram ports have no device to build here")
        }
        AddKind::Tap => {
            let mode = match (req.mode, &req.netns) {
                (None, Some(_)) | (Some(TapMode::Netns), Some(_)) => TapMode::Netns,
                (Some(TapMode::Netns), None) => anyhow::bail!("--mode netns needs --netns NS"),
                (Some(m), Some(_)) => {
                    anyhow::bail!("--netns cannot be combined with --mode {m:?}")
                }
                (m, None) => m.unwrap_or(TapMode::Vm),
            };
            if netns::link_exists(None, &req.ifname) {
                anyhow::bail!(
                    "interface {} already exists; to attach an existing interface use `port add iface {}`",
                    req.ifname,
                    req.ifname
                );
            }
            if mode == TapMode::Vm && (!req.ip.is_empty() || req.mac.is_some()) {
                anyhow::bail!(
                    "--ip and --mac configure the TAP's netdev, which a VM TAP leaves to the switch; use --host or --netns"
                );
            }
            let mut undo = Undo(Vec::new());
            match mode {
                TapMode::Vm => {
                    tap::create_persistent_tap(&req.ifname)?;
                    undo.push(Owned::PersistentTap(req.ifname.clone()));
                    netns::disable_ipv6(&req.ifname)?;
                    if let Some(m) = req.mtu {
                        netns::set_mtu(None, &req.ifname, m)?;
                    }
                    netns::set_up(None, &req.ifname)?;
                    let port = AfPacketPort::open(&req.ifname, PortKind::TapVm)?;
                    Ok(Built {
                        port: Box::new(port),
                        owned: undo.keep(),
                        netns: None,
                        ifname: req.ifname.clone(),
                        host_ifname: Some(req.ifname.clone()),
                        created_netns: false,
                    })
                }
                TapMode::Host | TapMode::Netns => {
                    let ns = req.netns.as_deref();
                    let created_netns = match ns {
                        Some(n) => ensure_netns(n, &mut undo)?,
                        None => false,
                    };
                    let mut tap = TapPort::create(&req.ifname)?;
                    if let Some(n) = ns {
                        if netns::link_exists(Some(n), &req.ifname) {
                            anyhow::bail!("namespace {n} already has an interface {}", req.ifname);
                        }
                        netns::move_link(&req.ifname, n)?;
                    }
                    configure_inside(ns, &req.ifname, req.mac, req.mtu, &req.ip)?;
                    tap.set_mtu_hint(req.mtu.unwrap_or(1500));
                    Ok(Built {
                        port: Box::new(tap),
                        owned: undo.keep(),
                        netns: ns.map(str::to_string),
                        ifname: req.ifname.clone(),
                        host_ifname: None,
                        created_netns,
                    })
                }
            }
        }
    }
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
