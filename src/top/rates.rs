//! Rates from two samples: counter deltas divided by the time between the
//! polls. Pure arithmetic on snapshots, so it is tested without a switch.
//!
//! Counters that went down (a `stats --reset`, a port re-added under the
//! same name) count from zero: the newer value is all the interval saw.

use std::collections::HashMap;

use crate::observe::PortCounters;
use crate::switch::{DropReason, EntryKind};
use crate::wire::MacAddr;

use super::sample::Sample;

/// One port's traffic per second.
#[derive(Debug, Clone, PartialEq)]
pub struct PortRate {
    pub name: String,
    pub rx_fps: f64,
    pub rx_bps: f64,
    pub tx_fps: f64,
    pub tx_bps: f64,
    pub drops_ps: f64,
    /// FDB entries pointing at this port now.
    pub macs: usize,
}

/// Drops of one reason on one port.
#[derive(Debug, Clone, PartialEq)]
pub struct DropRate {
    pub port: String,
    pub reason: DropReason,
    pub per_s: f64,
    pub total: u64,
}

/// One FDB entry's traffic: frames received from that MAC.
#[derive(Debug, Clone, PartialEq)]
pub struct MacRate {
    pub mac: MacAddr,
    pub vlan: u16,
    pub port: String,
    pub kind: EntryKind,
    pub fps: f64,
    pub frames: u64,
    pub age_s: u64,
}

/// The residence time of the frames one port sent during the interval.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyRate {
    pub port: String,
    /// Frames timed per second (every frame sent in user space is).
    pub per_s: f64,
    /// p50 / p99 / max over the interval, µs; `None` when nothing was sent.
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub max_us: Option<f64>,
    /// p99 since the switch started (or the histogram was reset), µs.
    pub p99_all_us: Option<f64>,
}

/// FDB size and churn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FdbChurn {
    pub entries: usize,
    pub learned_entries: usize,
    pub learned_ps: f64,
    pub moved_ps: f64,
    pub aged_ps: f64,
    /// New MACs refused per second (table or port limit reached).
    pub refused_ps: f64,
}

/// Everything one screen shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    pub uptime_s: u64,
    /// Seconds between the two samples.
    pub interval_s: f64,
    pub ports: Vec<PortRate>,
    /// Every (port, reason) that ever dropped, with its current rate.
    pub drops: Vec<DropRate>,
    pub macs: Vec<MacRate>,
    pub latency: Vec<LatencyRate>,
    pub fdb: FdbChurn,
}

/// `cur - prev`, or `cur` when the counter went backwards.
fn delta(cur: u64, prev: u64) -> u64 {
    if cur >= prev {
        cur - prev
    } else {
        cur
    }
}

impl Rates {
    /// The rates between two samples of the same switch (`prev` older).
    pub fn between(prev: &Sample, cur: &Sample) -> Rates {
        // A poll is never less than a few µs after the last; the floor only
        // keeps a clock oddity from dividing by zero.
        let dt = cur.at.duration_since(prev.at).as_secs_f64().max(1e-3);
        let per_s = |d: u64| d as f64 / dt;

        let before: HashMap<&str, &PortCounters> = prev
            .stats
            .ports
            .iter()
            .map(|p| (p.name.as_str(), &p.counters))
            .collect();
        let zero = PortCounters::default();
        let mut macs_on: HashMap<&str, usize> = HashMap::new();
        for r in &cur.fdb {
            *macs_on.entry(r.port.as_str()).or_default() += 1;
        }

        let mut ports = Vec::new();
        let mut drops = Vec::new();
        for p in &cur.stats.ports {
            let (c, o) = (&p.counters, *before.get(p.name.as_str()).unwrap_or(&&zero));
            let mut dropped = 0;
            for (reason, n) in c.drops.iter() {
                let d = delta(n, o.drops.get(reason));
                dropped += d;
                if n > 0 {
                    drops.push(DropRate {
                        port: p.name.clone(),
                        reason,
                        per_s: per_s(d),
                        total: n,
                    });
                }
            }
            ports.push(PortRate {
                name: p.name.clone(),
                rx_fps: per_s(delta(c.rx_frames, o.rx_frames)),
                rx_bps: per_s(delta(c.rx_bytes, o.rx_bytes) * 8),
                tx_fps: per_s(delta(c.tx_frames, o.tx_frames)),
                tx_bps: per_s(delta(c.tx_bytes, o.tx_bytes) * 8),
                drops_ps: per_s(dropped),
                macs: macs_on.get(p.name.as_str()).copied().unwrap_or(0),
            });
        }

        let seen: HashMap<(u16, MacAddr), u64> = prev
            .fdb
            .iter()
            .map(|r| ((r.vlan, r.mac), r.frames))
            .collect();
        let macs = cur
            .fdb
            .iter()
            .map(|r| MacRate {
                mac: r.mac,
                vlan: r.vlan,
                port: r.port.clone(),
                kind: r.kind,
                fps: per_s(delta(
                    r.frames,
                    seen.get(&(r.vlan, r.mac)).copied().unwrap_or(0),
                )),
                frames: r.frames,
                age_s: r.age_s,
            })
            .collect();

        let mut latency = Vec::new();
        for p in &cur.stats.ports {
            let Some(h) = cur.latency.get(&p.name) else {
                continue;
            };
            let new = match prev.latency.get(&p.name) {
                Some(old) => h.since(old),
                None => h.clone(),
            };
            let (s, all) = (new.summary(), h.summary());
            let some = |count: u64, v: f64| (count > 0).then_some(v);
            latency.push(LatencyRate {
                port: p.name.clone(),
                per_s: per_s(s.count),
                p50_us: some(s.count, s.p50_us),
                p99_us: some(s.count, s.p99_us),
                max_us: some(s.count, s.max_us),
                p99_all_us: some(all.count, all.p99_us),
            });
        }

        let (f, o) = (&cur.stats.totals.fdb, &prev.stats.totals.fdb);
        let fdb = FdbChurn {
            entries: cur.stats.totals.fdb_entries,
            learned_entries: cur.stats.totals.fdb_learned,
            learned_ps: per_s(delta(f.learned, o.learned)),
            moved_ps: per_s(delta(f.moved, o.moved)),
            aged_ps: per_s(delta(f.aged, o.aged)),
            refused_ps: per_s(
                delta(f.refused_full, o.refused_full)
                    + delta(f.refused_port_limit, o.refused_port_limit),
            ),
        };

        Rates {
            uptime_s: cur.stats.uptime_s,
            interval_s: dt,
            ports,
            drops,
            macs,
            latency,
            fdb,
        }
    }
}
