//! `port add vxlan`: checks the request, opens the tunnel's sockets (in the
//! underlay namespace when one is named) and hands the port and its static
//! flood list to the dataplane.

use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::Inner;
use crate::control::protocol::VxlanAdd;
use crate::dataplane::PortMeta;
use crate::port::vxlan::{VxlanConfig, VxlanPort, DEFAULT_TTL};
use crate::switch::{PortPolicy, VlanMode};
use crate::wire::vxlan::{VNI_MAX, VXLAN_PORT};

/// Smallest inner MTU accepted (IPv4's minimum).
const MIN_MTU: u32 = 68;

fn check(req: &VxlanAdd) -> anyhow::Result<()> {
    crate::netns::validate_ifname(&req.name).map_err(|e| anyhow::anyhow!("port name: {e}"))?;
    if req.vni > VNI_MAX {
        anyhow::bail!("--vni {} is out of range (0..={VNI_MAX})", req.vni);
    }
    let unicast = |a: Ipv4Addr| !(a.is_multicast() || a.is_broadcast() || a.is_unspecified());
    if !unicast(req.local) {
        anyhow::bail!(
            "--local {} must be a unicast address of this host",
            req.local
        );
    }
    for r in &req.remote {
        if r.is_multicast() {
            anyhow::bail!("--remote {r} is a multicast group; multicast underlays are not supported: list every remote VTEP with --remote");
        }
        if !unicast(*r) {
            anyhow::bail!("--remote {r} is not a unicast address");
        }
        if *r == req.local {
            anyhow::bail!("--remote {r} is the local address");
        }
    }
    if req.dstport == Some(0) {
        anyhow::bail!("--port 0 is not a UDP port");
    }
    if let Some(v) = req.vlan {
        if !(1..=4094).contains(&v) {
            anyhow::bail!("--vlan {v} is out of range (1..=4094)");
        }
    }
    if req.ttl == Some(0) {
        anyhow::bail!("--ttl 0 would drop every packet at the first hop");
    }
    if let Some(m) = req.mtu {
        if !(MIN_MTU..=65_000).contains(&m) {
            anyhow::bail!("--mtu {m} is out of range ({MIN_MTU}..=65000)");
        }
    }
    if let Some(ns) = &req.netns {
        crate::netns::validate_netns_name(ns)?;
        if !crate::netns::exists(ns) {
            anyhow::bail!(
                "namespace {ns} does not exist (the underlay namespace must hold --local {})",
                req.local
            );
        }
    }
    Ok(())
}

impl Inner {
    pub(super) fn add_vxlan(&self, req: VxlanAdd) -> anyhow::Result<Value> {
        check(&req)?;
        let dp = &self.dp;
        if dp.ports()?.iter().any(|p| p.name == req.name) {
            anyhow::bail!("a port named {} already exists", req.name);
        }
        let cfg = VxlanConfig {
            vni: req.vni,
            local: req.local,
            dstport: req.dstport.unwrap_or(VXLAN_PORT),
            ttl: req.ttl.unwrap_or(DEFAULT_TTL),
            df: req.df.unwrap_or(false),
            mtu: req.mtu,
            netns: req.netns.clone(),
        };
        // A socket keeps the namespace it was made in.
        let port = match req.netns.clone() {
            Some(ns) => {
                let name = req.name.clone();
                crate::netns::run_in(&ns, move || VxlanPort::open(&name, cfg))??
            }
            None => VxlanPort::open(&req.name, cfg)?,
        };
        let mut remotes = req.remote.clone();
        remotes.dedup();
        let meta = PortMeta {
            name: req.name.clone(),
            netns: None,
            policy: PortPolicy {
                max_learned: req.max_learned,
                learning: req.learning.unwrap_or(true),
                vlan: req.vlan.map(|tag| VlanMode::Access { tag }),
                ..PortPolicy::default()
            },
        };
        let id = dp.add_tunnel_port(Box::new(port), meta, remotes)?;
        Ok(json!({"name": req.name, "id": id.0, "vni": req.vni}))
    }
}
