//! A new TAP device: for a VM (persistent, attached through AF_PACKET so
//! QEMU can open the queue), on the host, or moved into a namespace (the
//! switch holds the queue).

use crate::control::protocol::{PortAdd, TapSetup};
use crate::netns;
use crate::port::afpacket::AfPacketPort;
use crate::port::tap::{self, TapPort};
use crate::port::PortKind;

use super::super::build::{configure_inside, ensure_netns, Built, Undo};
use super::super::resources::Owned;

pub fn build(req: &PortAdd) -> anyhow::Result<Built> {
    let mode = match (req.mode, &req.netns) {
        (None, Some(_)) | (Some(TapSetup::Netns), Some(_)) => TapSetup::Netns,
        (Some(TapSetup::Netns), None) => anyhow::bail!("--mode netns needs --netns NS"),
        (Some(m), Some(_)) => {
            anyhow::bail!("--netns cannot be combined with --mode {m:?}")
        }
        (m, None) => m.unwrap_or(TapSetup::Vm),
    };
    if netns::link_exists(None, &req.ifname) {
        anyhow::bail!(
            "interface {} already exists; to attach an existing interface use `port add iface {}`",
            req.ifname,
            req.ifname
        );
    }
    if mode == TapSetup::Vm && (!req.ip.is_empty() || req.mac.is_some()) {
        anyhow::bail!(
                "--ip and --mac configure the TAP's netdev, which a VM TAP leaves to the switch; use --host or --netns"
            );
    }
    let mut undo = Undo::new();
    match mode {
        TapSetup::Vm => {
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
        TapSetup::Host | TapSetup::Netns => {
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
