//! Per-port frame, byte and drop counters.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};

use crate::switch::DropReason;

/// One counter per drop reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropCounters([u64; DropReason::COUNT]);

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters([0; DropReason::COUNT])
    }
}

impl DropCounters {
    pub fn add(&mut self, reason: DropReason, n: u64) {
        self.0[reason.index()] += n;
    }

    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason.index()]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Every reason with its count, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.0[r.index()]))
    }

    pub fn merge(&mut self, other: &DropCounters) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += *b;
        }
    }
}

/// Serialized as `{"runt": 0, "invalid_source": 2, ...}`, every reason present.
impl Serialize for DropCounters {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(DropReason::COUNT))?;
        for (r, n) in self.iter() {
            m.serialize_entry(r.name(), &n)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for DropCounters {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, u64>::deserialize(d)?;
        let mut out = DropCounters::default();
        for (k, v) in map {
            // Reasons this build does not know (a newer switch) are skipped.
            if let Some(r) = DropReason::from_name(&k) {
                out.add(r, v);
            }
        }
        Ok(out)
    }
}

/// Forwarding decisions made in user space for frames received on a port
/// (frames the kernel fast path carried are counted in `fastpath_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionCounters {
    /// Known unicast forwarded to one port.
    pub unicast: u64,
    /// Floods, by kind.
    pub flood_broadcast: u64,
    pub flood_multicast: u64,
    pub flood_unknown_unicast: u64,
}

impl DecisionCounters {
    pub fn merge(&mut self, o: &DecisionCounters) {
        self.unicast += o.unicast;
        self.flood_broadcast += o.flood_broadcast;
        self.flood_multicast += o.flood_multicast;
        self.flood_unknown_unicast += o.flood_unknown_unicast;
    }
}

/// Traffic of one port. Drops are counted on the port where they happened:
/// ingress checks on the ingress port, egress failures on the egress port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortCounters {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// GSO super-frames received whole (counted once each in rx_frames).
    pub rx_gso: u64,
    /// Super-frames this port could not take, cut into segments in software.
    pub sw_segmented: u64,
    /// Checksums finished in software (received unfinished, or for an egress
    /// port that cannot finish them).
    pub sw_csum: u64,
    /// TCP super-frames sent here that the switch built from runs of
    /// received segments (software GRO; see `wire::gro`).
    #[serde(default)]
    pub coalesced: u64,
    /// Received segments that went into those super-frames.
    #[serde(default)]
    pub coalesced_segments: u64,
    /// Frames (and bytes) the kernel's fast path carried from this port
    /// (`crate::fastpath`); `stats` adds them into rx_frames/rx_bytes.
    #[serde(default)]
    pub fastpath_rx_frames: u64,
    #[serde(default)]
    pub fastpath_rx_bytes: u64,
    /// ... and to this port; `stats` adds them into tx_frames/tx_bytes.
    #[serde(default)]
    pub fastpath_tx_frames: u64,
    #[serde(default)]
    pub fastpath_tx_bytes: u64,
    /// Extra copies made by this port's impairment (`port impair --duplicate`).
    #[serde(default)]
    pub impair_duplicated: u64,
    /// Frames its impairment sent ahead of delayed ones (`--reorder`).
    #[serde(default)]
    pub impair_reordered: u64,
    /// Frames its impairment flipped a bit in (`--corrupt`).
    #[serde(default)]
    pub impair_corrupted: u64,
    /// Decisions for frames received here (the drops are in `drops`).
    #[serde(default)]
    pub decisions: DecisionCounters,
    pub drops: DropCounters,
}

impl PortCounters {
    pub fn merge(&mut self, o: &PortCounters) {
        self.rx_frames += o.rx_frames;
        self.rx_bytes += o.rx_bytes;
        self.tx_frames += o.tx_frames;
        self.tx_bytes += o.tx_bytes;
        self.rx_gso += o.rx_gso;
        self.sw_segmented += o.sw_segmented;
        self.sw_csum += o.sw_csum;
        self.coalesced += o.coalesced;
        self.coalesced_segments += o.coalesced_segments;
        self.fastpath_rx_frames += o.fastpath_rx_frames;
        self.fastpath_rx_bytes += o.fastpath_rx_bytes;
        self.fastpath_tx_frames += o.fastpath_tx_frames;
        self.fastpath_tx_bytes += o.fastpath_tx_bytes;
        self.impair_duplicated += o.impair_duplicated;
        self.impair_reordered += o.impair_reordered;
        self.impair_corrupted += o.impair_corrupted;
        self.decisions.merge(&o.decisions);
        self.drops.merge(&o.drops);
    }

    /// The counters a user sees: user-space and fast-path frames together
    /// in rx/tx (the fast_path_* fields say how many of them the kernel
    /// carried). Each frame is counted by exactly one of the two paths.
    pub fn with_fastpath(&self) -> PortCounters {
        PortCounters {
            rx_frames: self.rx_frames + self.fastpath_rx_frames,
            rx_bytes: self.rx_bytes + self.fastpath_rx_bytes,
            tx_frames: self.tx_frames + self.fastpath_tx_frames,
            tx_bytes: self.tx_bytes + self.fastpath_tx_bytes,
            ..*self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_counters_round_trip_json_with_every_reason() {
        let mut d = DropCounters::default();
        d.add(DropReason::SamePort, 3);
        d.add(DropReason::Runt, 1);
        let j = serde_json::to_value(d).unwrap();
        assert_eq!(j["same_port"], 3);
        assert_eq!(j.as_object().unwrap().len(), DropReason::COUNT);
        let back: DropCounters = serde_json::from_value(j).unwrap();
        assert_eq!(back, d);
        assert_eq!(d.total(), 4);
    }
}
