//! Prometheus metrics: `l2sw run --metrics ADDR` serves `/metrics` in the
//! OpenMetrics text format (which Prometheus scrapes natively).
//!
//! Every scrape asks the dataplane for a snapshot through its handle
//! ([`DataplaneHandle::stats`], [`DataplaneHandle::latency`]) — the same
//! consistent copies `stats` and `latency` print — and encodes it with the
//! `prometheus-client` crate. Nothing here keeps its own counters, so the
//! figures are exactly those the CLI shows. The names and their meanings are
//! listed in `docs/operations.md`.
//!
//! Conventions: `l2sw_` prefix, base units (bytes, seconds), counters end in
//! `_total`, labels only of bounded cardinality (port, direction, reason,
//! decision) — never MAC addresses.

mod http;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::dataplane::{DataplaneError, DataplaneHandle, LatencyRow, StatsSnapshot};
use crate::switch::DropReason;

pub use http::{parse_listen_addr, MetricsError, MetricsServer, DEFAULT_PORT};

/// Upper bounds of the forwarding-latency buckets, in nanoseconds: 1-2-5
/// steps from 1 µs to 1 s, the range a software switch's residence time
/// spans (sub-10 µs when idle, milliseconds under queueing).
pub const LATENCY_BOUNDS_NS: &[u64] = &[
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
    1_000_000_000,
];

/// What one scrape reports: the dataplane's snapshots.
#[derive(Debug)]
pub struct Scrape {
    pub stats: StatsSnapshot,
    /// Per egress port (scope "port"); pairs are left out, their number
    /// grows with the square of the ports.
    pub latency: Vec<LatencyRow>,
}

impl Scrape {
    /// Takes the snapshots from the dataplane.
    pub fn take(dp: &DataplaneHandle) -> Result<Scrape, DataplaneError> {
        let stats = dp.stats()?;
        let latency = dp
            .latency(None, None, false)?
            .into_iter()
            .filter(|r| r.scope == "port")
            .collect();
        Ok(Scrape { stats, latency })
    }

    /// The OpenMetrics text of this scrape.
    pub fn encode(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// A counter or gauge with a value per label set.
struct Family<'a> {
    name: &'a str,
    help: &'a str,
    unit: Option<Unit>,
    kind: MetricType,
}

impl Family<'_> {
    fn encode<L: prometheus_client::encoding::EncodeLabelSet>(
        &self,
        enc: &mut DescriptorEncoder,
        rows: impl IntoIterator<Item = (L, u64)>,
    ) -> std::fmt::Result {
        let mut m = enc.encode_descriptor(self.name, self.help, self.unit.as_ref(), self.kind)?;
        for (labels, v) in rows {
            let fam = m.encode_family(&labels)?;
            encode_value(fam, self.kind, v)?;
        }
        Ok(())
    }

    /// A family of one series, without labels.
    fn encode_one(&self, enc: &mut DescriptorEncoder, v: u64) -> std::fmt::Result {
        let m = enc.encode_descriptor(self.name, self.help, self.unit.as_ref(), self.kind)?;
        encode_value(m, self.kind, v)
    }
}

fn encode_value(mut m: MetricEncoder, kind: MetricType, v: u64) -> std::fmt::Result {
    match kind {
        MetricType::Counter => {
            m.encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&v, None)
        }
        _ => m.encode_gauge(&(v as i64)),
    }
}

/// One histogram, encoded from snapshot values.
struct LatencyMetric<'a>(&'a LatencyRow);

impl std::fmt::Debug for LatencyMetric<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LatencyMetric")
    }
}

impl EncodeMetric for LatencyMetric<'_> {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        let h = &self.0.histogram;
        let counts = h.bucket_counts(LATENCY_BOUNDS_NS);
        let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS_NS
            .iter()
            .map(|&b| b as f64 / 1e9)
            .chain(std::iter::once(f64::MAX))
            .zip(counts)
            .collect();
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            h.sum_ns() / 1e9,
            h.count(),
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

const COUNTER: MetricType = MetricType::Counter;
const GAUGE: MetricType = MetricType::Gauge;

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let s = &self.stats;
        let mut info = enc.encode_descriptor(
            "l2sw_build",
            "The l2sw build serving these metrics (always 1).",
            None,
            MetricType::Info,
        )?;
        info.encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;

        Family {
            name: "l2sw_uptime",
            help: "Time since the switch started.",
            unit: Some(Unit::Seconds),
            kind: GAUGE,
        }
        .encode_one(&mut enc, s.uptime_s)?;

        let port = |p: &str| [("port", p.to_string())];
        let dir = |p: &str, d: &'static str| [("port", p.to_string()), ("direction", d.into())];
        let ports = &s.ports;
        Family {
            name: "l2sw_port_packets",
            help: "Frames received (rx) and sent (tx) by a port; a GSO super-frame counts once.",
            unit: None,
            kind: COUNTER,
        }
        .encode(
            &mut enc,
            ports.iter().flat_map(|p| {
                [
                    (dir(&p.name, "rx"), p.counters.rx_frames),
                    (dir(&p.name, "tx"), p.counters.tx_frames),
                ]
            }),
        )?;
        Family {
            name: "l2sw_port",
            help: "Bytes received (rx) and sent (tx) by a port, Ethernet header included.",
            unit: Some(Unit::Bytes),
            kind: COUNTER,
        }
        .encode(
            &mut enc,
            ports.iter().flat_map(|p| {
                [
                    (dir(&p.name, "rx"), p.counters.rx_bytes),
                    (dir(&p.name, "tx"), p.counters.tx_bytes),
                ]
            }),
        )?;
        Family {
            name: "l2sw_port_drops",
            help:
                "Frames dropped, by the port where it happened and the reason (see `l2sw stats`).",
            unit: None,
            kind: COUNTER,
        }
        .encode(
            &mut enc,
            ports.iter().flat_map(|p| {
                DropReason::ALL.iter().map(move |r| {
                    (
                        [("port", p.name.clone()), ("reason", r.name().to_string())],
                        p.counters.drops.get(*r),
                    )
                })
            }),
        )?;
        Family {
            name: "l2sw_decisions",
            help: "Forwarding decisions made in user space for frames received on a port: known unicast forwarded to one port, or flooded (broadcast, multicast, unknown_unicast). Drops are in l2sw_port_drops_total, fast-path frames in l2sw_fastpath_packets_total.",
            unit: None,
            kind: COUNTER,
        }
        .encode(
            &mut enc,
            ports.iter().flat_map(|p| {
                let d = &p.counters.decisions;
                [
                    ("unicast", d.unicast),
                    ("broadcast", d.flood_broadcast),
                    ("multicast", d.flood_multicast),
                    ("unknown_unicast", d.flood_unknown_unicast),
                ]
                .map(|(k, v)| ([("port", p.name.clone()), ("kind", k.to_string())], v))
            }),
        )?;
        Family {
            name: "l2sw_fastpath_packets",
            help: "Frames the kernel fast path carried (fast-path hits), received on (rx) or sent to (tx) a port; included in l2sw_port_packets_total.",
            unit: None,
            kind: COUNTER,
        }
        .encode(
            &mut enc,
            ports.iter().flat_map(|p| {
                [
                    (dir(&p.name, "rx"), p.counters.fastpath_rx_frames),
                    (dir(&p.name, "tx"), p.counters.fastpath_tx_frames),
                ]
            }),
        )?;
        let pr = &s.protect;
        Family {
            name: "l2sw_port_blocked",
            help: "1 while a port is blocked by loop protection or BPDU guard.",
            unit: None,
            kind: GAUGE,
        }
        .encode(
            &mut enc,
            ports
                .iter()
                .map(|p| (port(&p.name), u64::from(pr.blocked.contains(&p.name)))),
        )?;
        Family {
            name: "l2sw_blocked_ports",
            help: "Ports blocked now (loop protection or BPDU guard).",
            unit: None,
            kind: GAUGE,
        }
        .encode_one(&mut enc, pr.blocked.len() as u64)?;
        Family {
            name: "l2sw_mac_flaps",
            help: "MACs detected flapping: moving between ports more often within a second than the flap threshold (at most one per MAC and second).",
            unit: None,
            kind: COUNTER,
        }
        .encode_one(&mut enc, pr.counters.mac_flaps)?;
        Family {
            name: "l2sw_port_blocks",
            help: "Times a port was blocked, by reason (loop, bpdu_guard).",
            unit: None,
            kind: COUNTER,
        }
        .encode(
            &mut enc,
            [
                ([("reason", "loop")], pr.counters.loop_blocks),
                ([("reason", "bpdu_guard")], pr.counters.bpdu_guard_blocks),
            ],
        )?;
        for (name, help, get) in OFFLOAD_COUNTERS {
            Family {
                name,
                help,
                unit: None,
                kind: COUNTER,
            }
            .encode(
                &mut enc,
                ports.iter().map(|p| (port(&p.name), get(&p.counters))),
            )?;
        }

        let t = &s.totals;
        Family {
            name: "l2sw_fdb_entries",
            help: "FDB entries (learned and static).",
            unit: None,
            kind: GAUGE,
        }
        .encode(
            &mut enc,
            [
                ([("type", "learned")], t.fdb_learned as u64),
                (
                    [("type", "static")],
                    (t.fdb_entries - t.fdb_learned.min(t.fdb_entries)) as u64,
                ),
            ],
        )?;
        let fdb = &t.fdb;
        for (name, help, v) in [
            (
                "l2sw_fdb_learned",
                "Source addresses learned into the FDB.",
                fdb.learned,
            ),
            (
                "l2sw_fdb_moved",
                "Learned addresses that moved to another port.",
                fdb.moved,
            ),
            (
                "l2sw_fdb_aged",
                "Learned entries removed by ageing.",
                fdb.aged,
            ),
            (
                "l2sw_fdb_static_conflicts",
                "Frames whose source is a static entry on another port (not learned).",
                fdb.static_conflicts,
            ),
        ] {
            Family {
                name,
                help,
                unit: None,
                kind: COUNTER,
            }
            .encode_one(&mut enc, v)?;
        }
        Family {
            name: "l2sw_fdb_refused",
            help: "Addresses not learned because a limit was reached (switch-wide `full`, or the port's `port_limit`).",
            unit: None,
            kind: COUNTER,
        }
        .encode(
            &mut enc,
            [
                ([("reason", "full")], fdb.refused_full),
                ([("reason", "port_limit")], fdb.refused_port_limit),
            ],
        )?;

        let mut m = enc.encode_descriptor(
            "l2sw_forwarding_latency",
            "Residence time of frames in the switch, from the kernel's receive timestamp to the return of the send, by egress port.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for row in &self.latency {
            let labels = [("port", row.egress.clone())];
            LatencyMetric(row).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

type Get = fn(&crate::observe::PortCounters) -> u64;

/// Offload work by port: how often the switch did in software what a NIC
/// or the kernel would have done.
const OFFLOAD_COUNTERS: [(&str, &str, Get); 4] = [
    (
        "l2sw_port_rx_gso_packets",
        "GSO super-frames received whole.",
        |c| c.rx_gso,
    ),
    (
        "l2sw_port_sw_segmented_packets",
        "Super-frames this port could not take, cut into segments in software.",
        |c| c.sw_segmented,
    ),
    (
        "l2sw_port_sw_checksums",
        "Checksums finished in software.",
        |c| c.sw_csum,
    ),
    (
        "l2sw_port_coalesced_packets",
        "Super-frames sent here that the switch built from runs of received TCP segments (software GRO).",
        |c| c.coalesced,
    ),
];

#[cfg(test)]
mod tests;
