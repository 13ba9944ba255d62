//! An existing interface (a veth end, a physical NIC, a TAP someone else
//! made) attached through AF_PACKET.

use crate::control::protocol::PortAdd;
use crate::port::afpacket::AfPacketPort;
use crate::port::PortKind;

use super::super::build::Built;
use super::tap_only;

pub fn build(req: &PortAdd) -> anyhow::Result<Built> {
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
