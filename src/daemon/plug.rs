//! `ns plug`: a network namespace (created if missing) wired to the switch
//! through a veth pair or a TAP whose netdev moves into the namespace. Each
//! step that creates something is recorded, so a failure half way removes
//! what was made and leaves the host as it was. Ports of other kinds are
//! built in `port_kinds`.

use crate::control::protocol::{NsPlug, Via};
use crate::netns;
use crate::port::afpacket::AfPacketPort;
use crate::port::tap::TapPort;
use crate::port::PortKind;

use super::build::{check_mac, configure_inside, ensure_netns, free_ifname, Built, Undo};
use super::resources::{Endpoint, Owned, Resources};
use super::sockets::SocketPool;

/// How long a new veth may take to become operational.
const LINK_UP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `ns plug`: namespace (created if missing) wired to the switch.
pub fn plug_namespace(
    switch: &str,
    req: &NsPlug,
    res: &mut Resources,
    sockets: &SocketPool,
) -> anyhow::Result<Built> {
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
    let mut undo = Undo::new(res, &req.ns);
    let created_netns = ensure_netns(&req.ns, &mut undo)?;
    let seed = format!("{switch}/{}", req.ns);
    let built = match req.via {
        Via::Veth => {
            let host = free_ifname("l2v", &seed);
            // Journaled first: a crash between the two leaves a name the
            // recovery finds absent, never a link it does not know.
            undo.push(Owned::link(&host));
            netns::create_veth(&host, &inside, &req.ns)?;
            netns::disable_ipv6(&host)?;
            if let Some(m) = req.mtu {
                netns::set_mtu(None, &host, m)?;
            }
            netns::set_up(None, &host)?;
            configure_inside(Some(&req.ns), &inside, req.mac, req.mtu, &req.ip)?;
            netns::wait_oper_up(None, &host, LINK_UP_TIMEOUT)?;
            let port = match sockets.take() {
                Some(p) => AfPacketPort::open_prepared(p, &host, PortKind::Iface)?,
                None => AfPacketPort::open(&host, PortKind::Iface)?,
            };
            Built {
                port: Box::new(port),
                netns: Some(req.ns.clone()),
                ifname: inside.clone(),
                host_ifname: Some(host),
                created_netns,
                endpoint: Some(Endpoint::new(Some(&req.ns), &inside)),
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
                netns: Some(req.ns.clone()),
                ifname: inside.clone(),
                host_ifname: None,
                created_netns,
                endpoint: Some(Endpoint::new(Some(&req.ns), &inside)),
            }
        }
    };
    undo.keep();
    Ok(built)
}
