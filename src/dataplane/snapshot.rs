//! What the dataplane hands out: plain, serializable copies of its state.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::observe::{LatencyHistogram, LatencySummary, PortCounters};
use crate::port::{PortInfo, TunnelInfo};
use crate::switch::{EntryKind, FdbCounters, PortPolicy, Settings, VtepOrigin};
use crate::wire::MacAddr;

/// One row of `port list`.
#[derive(Debug, Clone, Serialize)]
pub struct PortRow {
    pub name: String,
    pub id: u16,
    #[serde(flatten)]
    pub info: PortInfo,
    /// The namespace this port was plugged into, if any.
    pub netns: Option<String>,
    /// Learned-entry limit set on this port (`None`: the switch default).
    pub max_learned: Option<u32>,
    /// Learned entries currently pointing at this port.
    pub learned: u32,
    /// Flags and VLAN mode.
    pub policy: PortPolicy,
    /// Link impairment (`port impair`), with its queues' counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impair: Option<crate::impair::ImpairRow>,
    /// A VXLAN port's endpoint and flood list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vxlan: Option<VxlanRow>,
    /// Set while the port is blocked (loop protection or BPDU guard).
    pub blocked: Option<BlockedRow>,
}

/// Why and since when a port is blocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedRow {
    pub reason: crate::switch::BlockReason,
    /// For a loop: the MAC that flapped onto the port, its VLAN, and the
    /// port it came from.
    pub mac: Option<MacAddr>,
    pub vlan: Option<u16>,
    pub from: Option<String>,
    /// Seconds since it was blocked.
    pub for_s: u64,
    /// Seconds until the hold time passes; `None`: until `port unblock`.
    pub remaining_s: Option<u64>,
}

/// Loop protection figures for `stats` and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectTotals {
    #[serde(flatten)]
    pub counters: crate::switch::ProtectCounters,
    /// Ports blocked now.
    pub blocked: Vec<String>,
}

/// What `port list` shows of a VXLAN port.
#[derive(Debug, Clone, Serialize)]
pub struct VxlanRow {
    #[serde(flatten)]
    pub endpoint: TunnelInfo,
    /// The VTEPs floods are replicated to, and why each is there.
    pub flood: Vec<FloodRow>,
}

/// One member of a flood list.
#[derive(Debug, Clone, Serialize)]
pub struct FloodRow {
    pub vtep: Ipv4Addr,
    pub origin: Vec<VtepOrigin>,
}

/// One row of `mirror list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorRow {
    pub name: String,
    pub to: String,
    pub src: Vec<String>,
    pub dst: Vec<String>,
}

/// One row of `fdb show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbRow {
    pub mac: MacAddr,
    pub vlan: u16,
    pub port: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    pub age_s: u64,
    /// Frames received from this MAC (see `Fdb::frames`); `l2sw top`
    /// turns their deltas into the busiest stations.
    #[serde(default)]
    pub frames: u64,
    /// On a tunnel port: the remote VTEP (`bridge fdb show`'s `dst`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<Ipv4Addr>,
}

/// A port the dataplane removed on its own (its interface vanished).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemovedPort {
    pub name: String,
    pub reason: String,
    /// Seconds since the switch started.
    pub at_s: u64,
}

/// Counters of one port, as `stats` shows them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortStats {
    pub name: String,
    #[serde(flatten)]
    pub counters: PortCounters,
}

/// Switch-wide figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwitchTotals {
    pub fdb_entries: usize,
    pub fdb_learned: usize,
    pub fdb: FdbCounters,
    /// Sum over ports (including ports removed since the last reset).
    #[serde(flatten)]
    pub counters: PortCounters,
}

/// Everything `stats` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatsSnapshot {
    pub uptime_s: u64,
    pub settings: Settings,
    pub ports: Vec<PortStats>,
    pub totals: SwitchTotals,
    pub removed_ports: Vec<RemovedPort>,
    #[serde(default)]
    pub protect: ProtectTotals,
}

/// One residence-time histogram, as `latency` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencyRow {
    /// "port" (every frame sent on `egress`) or "pair" (from `ingress` to `egress`).
    pub scope: String,
    pub ingress: Option<String>,
    pub egress: String,
    #[serde(flatten)]
    pub summary: LatencySummary,
    /// The whole histogram (HdrHistogram V2, compressed, base64), for
    /// `--hgrm` and for merging.
    pub histogram: LatencyHistogram,
}
