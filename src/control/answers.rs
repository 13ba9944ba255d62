//! The client's typed reading of answers whose writer lives where control
//! may not look: `port list` (rows built from `port::PortInfo`, which
//! control never names) and `evpn show` (written by `evpn`, a module of
//! control's own layer). Each struct mirrors the JSON the switch writes,
//! field for field; `daemon`'s tests serialize the writer's value and read
//! it back into these, so a field renamed on one side fails a test instead
//! of printing `-`.

use std::net::Ipv4Addr;

use serde::Deserialize;

use crate::control::protocol::ContainerRef;
use crate::dataplane::BlockedRow;
use crate::impair::ImpairRow;
use crate::switch::PortPolicy;
use crate::wire::MacAddr;

/// One row of `port list`.
#[derive(Debug, Clone, Deserialize)]
pub struct PortListRow {
    pub name: String,
    pub id: u16,
    /// The backend, as `port list` names it (`iface`, `tap`, `vhost-user`, ...).
    pub kind: String,
    pub ifname: String,
    pub ifindex: Option<u32>,
    pub mtu: u32,
    /// The endpoint's MAC (what stations behind the port send from).
    pub mac: Option<MacAddr>,
    /// The MAC of the interface the switch itself reads, if it reads one.
    pub switch_mac: Option<MacAddr>,
    pub netns: Option<String>,
    pub container: Option<ContainerRef>,
    pub learned: u32,
    pub max_learned: Option<u32>,
    pub policy: PortPolicy,
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub peer: Option<PeerView>,
    #[serde(default)]
    pub impair: Option<ImpairRow>,
    #[serde(default)]
    pub vxlan: Option<VxlanView>,
    pub blocked: Option<BlockedRow>,
}

/// The program at the far end of a socket port (a VM).
#[derive(Debug, Clone, Deserialize)]
pub struct PeerView {
    pub connected: bool,
    pub endpoint: String,
    pub connects: u64,
    pub negotiated: Vec<String>,
    pub held: Option<HeldView>,
}

/// Frames a port held back for a peer that was briefly behind.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct HeldView {
    pub queued: u64,
    pub waiting: u64,
    pub peak: u64,
    pub lost: u64,
}

/// A VXLAN port's endpoint and flood list.
#[derive(Debug, Clone, Deserialize)]
pub struct VxlanView {
    pub vni: u32,
    pub local: Ipv4Addr,
    pub dstport: u16,
    pub ttl: u8,
    pub df: bool,
    pub netns: Option<String>,
    pub underlay: Option<String>,
    pub underlay_mtu: Option<u32>,
    pub source_ports: Vec<u16>,
    pub flood: Vec<FloodView>,
}

/// One remote VTEP on a flood list and why it is there (`static`,
/// `learned`, `evpn`).
#[derive(Debug, Clone, Deserialize)]
pub struct FloodView {
    pub vtep: Ipv4Addr,
    pub origin: Vec<String>,
}

/// `evpn show`: the session to gobgpd and the routes in use.
#[derive(Debug, Clone, Deserialize)]
pub struct EvpnView {
    pub gobgp: String,
    pub netns: Option<String>,
    pub asn: u32,
    pub router_id: Option<Ipv4Addr>,
    pub connected: bool,
    pub error: Option<String>,
    pub advertised: Vec<RouteView>,
    pub imported: Vec<RouteView>,
}

/// One EVPN route: type 2 (a MAC) or type 3 (a VTEP's flood membership).
#[derive(Debug, Clone, Deserialize)]
pub struct RouteView {
    #[serde(rename = "type")]
    pub route_type: u8,
    pub vni: u32,
    /// The port a remote route's VTEP is reached through (imported only).
    #[serde(default)]
    pub port: Option<String>,
    #[serde(default)]
    pub mac: Option<MacAddr>,
    pub vtep: Ipv4Addr,
    pub seq: u32,
}
