//! Loop and storm protection, sans-I/O: per-port storm control (token
//! buckets in packets per second for broadcast, multicast and unknown
//! unicast), MAC-flap detection, BPDU guard, and the blocked state of a
//! port.
//!
//! The switch consults this while it classifies a frame (`Switch::plan`);
//! what protection did to the frame is recorded in the plan
//! ([`ProtectNote`]) so that the dataplane can report it (monitor events,
//! logs, fast-path flush) and `trace` can show it. Time is handed in.
//!
//! Rules (docs/behaviour.md, docs/operations.md):
//! - a blocked port takes no frame in (dropped before learning, reason
//!   `port_blocked`) and gets none out (floods skip it, known unicast to
//!   it is dropped, mirrors do not write to it);
//! - a MAC that moves between ports more than `flap_threshold` times within
//!   one second is a flap, reported once per MAC and second; with
//!   `loop_protect = block` the port the MAC has just moved *to* (the later
//!   port, the one whose frame tripped the threshold) is blocked: in a loop
//!   that is a port on the loop, because moves into a loop port happen at
//!   the storm's rate while the station's own port sees them only at the
//!   station's rate;
//! - an STP BPDU (01:80:c2:00:00:00 with LLC 42 42 03) on a port with BPDU
//!   guard blocks it;
//! - a block lasts `loop_hold_s` seconds (0: until `port unblock`).

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{FdbKey, FloodKind, PortId, Timestamp};
use crate::wire::MacAddr;

/// Moves per second a MAC may make before it counts as flapping.
pub const DEFAULT_FLAP_THRESHOLD: u32 = 5;
/// How long a blocked port stays blocked by default.
pub const DEFAULT_LOOP_HOLD_S: u64 = 30;
/// MACs whose moves are tracked at once; more are not tracked until the
/// once-a-second sweep frees room (bounds memory under a flood of moves).
pub const MAX_TRACKED_MACS: usize = 4096;

/// STP's group address.
pub const STP_GROUP: MacAddr = MacAddr([0x01, 0x80, 0xc2, 0x00, 0x00, 0x00]);

const NS_PER_TOKEN: u64 = 1_000_000_000;

/// What the switch does about flapping MACs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LoopProtect {
    /// Moves are not watched.
    Off,
    /// Flaps are reported (monitor, metrics, log); nothing is blocked.
    #[default]
    Report,
    /// Flaps are reported and the port the MAC moved to is blocked.
    Block,
}

impl LoopProtect {
    pub fn name(self) -> &'static str {
        match self {
            LoopProtect::Off => "off",
            LoopProtect::Report => "report",
            LoopProtect::Block => "block",
        }
    }
}

impl std::str::FromStr for LoopProtect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(LoopProtect::Off),
            "report" => Ok(LoopProtect::Report),
            "block" => Ok(LoopProtect::Block),
            other => Err(format!(
                "loop protection {other:?}: expected off, report or block"
            )),
        }
    }
}

/// Why a port is blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    /// A MAC flapped onto this port (`loop_protect = block`).
    Loop,
    /// An STP BPDU arrived on this port while BPDU guard is on.
    BpduGuard,
}

impl BlockReason {
    pub fn name(self) -> &'static str {
        match self {
            BlockReason::Loop => "loop",
            BlockReason::BpduGuard => "bpdu_guard",
        }
    }
}

/// A blocked port's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    pub reason: BlockReason,
    pub since: Timestamp,
    /// When the hold time ends; `None`: until unblocked by hand.
    pub until: Option<Timestamp>,
    /// For a loop: the MAC that flapped, its VLAN and the port it came from.
    pub mac: Option<(MacAddr, u16)>,
    pub from: Option<PortId>,
}

/// What protection did to one frame, recorded in its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectNote {
    /// Storm control dropped the frame: its kind is over the port's limit.
    Storm { kind: FloodKind, limit_pps: u32 },
    /// The ingress port is blocked.
    Blocked { reason: BlockReason },
    /// The source MAC moved from `from` to the ingress port for the
    /// `moves`-th time this second, more than the threshold; `blocked`: the
    /// ingress port is blocked for it now.
    Flap {
        mac: MacAddr,
        vlan: u16,
        from: PortId,
        moves: u32,
        blocked: bool,
    },
    /// An STP BPDU on a port with BPDU guard: the port is blocked (in a
    /// previewed plan: would be).
    BpduGuard,
}

impl ProtectNote {
    /// One line for a trace.
    pub fn text(&self, name: &dyn Fn(PortId) -> String) -> String {
        match *self {
            ProtectNote::Storm { kind, limit_pps } => format!(
                "storm control: {} over the port's limit of {limit_pps} packets/s, dropped",
                kind.name()
            ),
            ProtectNote::Blocked { reason } => format!(
                "the ingress port is blocked ({}); `l2sw port unblock` reopens it",
                reason.name()
            ),
            ProtectNote::Flap {
                mac,
                vlan,
                from,
                moves,
                blocked,
            } => format!(
                "MAC {mac} vlan {vlan} flapping: moved from {} here {moves} times within a second{}",
                name(from),
                if blocked {
                    "; this port is now blocked (loop protection)"
                } else {
                    ""
                }
            ),
            ProtectNote::BpduGuard => {
                "STP BPDU on a port with BPDU guard: the port is blocked".to_string()
            }
        }
    }
}

/// Counters of protection events, cumulative since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectCounters {
    /// Flaps detected (at most one per MAC and second).
    pub mac_flaps: u64,
    /// Ports blocked by loop protection.
    pub loop_blocks: u64,
    /// Ports blocked by BPDU guard.
    pub bpdu_guard_blocks: u64,
}

/// A token bucket in packets per second, holding at most one second's
/// worth: bursts up to the limit pass, a sustained excess is cut to it.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// In nanopackets (1e9 = one frame), so integer refills stay exact.
    tokens: u64,
    /// `None`: never used, starts full.
    last: Option<Timestamp>,
}

impl Bucket {
    /// Whether one more frame fits under `rate`; takes its token when `apply`.
    fn take(&mut self, rate: u32, now: Timestamp, apply: bool) -> bool {
        let cap = u64::from(rate) * NS_PER_TOKEN;
        let tokens = match self.last {
            None => cap,
            Some(last) => {
                let ns = now.since(last).as_nanos().min(u64::MAX as u128) as u64;
                self.tokens
                    .saturating_add(ns.saturating_mul(rate.into()))
                    .min(cap)
            }
        };
        let pass = tokens >= NS_PER_TOKEN;
        if apply {
            self.tokens = if pass { tokens - NS_PER_TOKEN } else { tokens };
            self.last = Some(now);
        }
        pass
    }
}

/// One port's protection state.
#[derive(Debug, Clone, Default)]
pub(super) struct PortGuard {
    buckets: [Bucket; 3],
    pub blocked: Option<Blocked>,
}

impl PortGuard {
    /// Storm control for a flood of `kind` limited to `rate` pps (0: none).
    pub fn storm_pass(&mut self, kind: FloodKind, rate: u32, now: Timestamp, apply: bool) -> bool {
        if rate == 0 {
            return true;
        }
        let i = match kind {
            FloodKind::Broadcast => 0,
            FloodKind::Multicast => 1,
            FloodKind::UnknownUnicast => 2,
        };
        self.buckets[i].take(rate, now, apply)
    }
}

#[derive(Debug, Clone, Copy)]
struct FlapWindow {
    start: Timestamp,
    moves: u32,
    /// Reported in this window already.
    tripped: bool,
}

/// Moves per MAC in one-second windows.
#[derive(Debug, Default)]
pub(super) struct FlapTracker {
    map: HashMap<FdbKey, FlapWindow>,
}

impl FlapTracker {
    /// Counts a move of `key`; `Some(moves)` the first time in the current
    /// window that the count goes over `threshold`.
    pub fn on_move(&mut self, key: FdbKey, now: Timestamp, threshold: u32) -> Option<u32> {
        if self.map.len() >= MAX_TRACKED_MACS && !self.map.contains_key(&key) {
            return None;
        }
        let w = self.map.entry(key).or_insert(FlapWindow {
            start: now,
            moves: 0,
            tripped: false,
        });
        if now.since(w.start) >= Duration::from_secs(1) {
            *w = FlapWindow {
                start: now,
                moves: 0,
                tripped: false,
            };
        }
        w.moves = w.moves.saturating_add(1);
        if w.moves > threshold && !w.tripped {
            w.tripped = true;
            Some(w.moves)
        } else {
            None
        }
    }

    /// Forgets windows that have ended.
    pub fn sweep(&mut self, now: Timestamp) {
        self.map
            .retain(|_, w| now.since(w.start) < Duration::from_secs(1));
    }

    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.map.len()
    }
}

/// Whether `payload` (the bytes after the Ethernet header and outer tag of
/// a frame to 01:80:c2:00:00:00 with a length field) is an STP BPDU: LLC
/// DSAP 0x42, SSAP 0x42, control 0x03 (UI).
pub fn is_stp_llc(length_field: u16, payload: &[u8]) -> bool {
    length_field <= 1500 && payload.starts_with(&[0x42, 0x42, 0x03])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Timestamp {
        Timestamp(ms * 1_000_000)
    }

    #[test]
    fn bucket_passes_a_burst_of_the_limit_then_the_rate() {
        let mut b = Bucket::default();
        let passed = (0..20).filter(|_| b.take(10, t(1000), true)).count();
        assert_eq!(passed, 10);
        // 100 ms refill one token at 10 pps.
        assert!(b.take(10, t(1100), true));
        assert!(!b.take(10, t(1100), true));
        // A preview does not spend.
        assert!(b.take(10, t(1200), false));
        assert!(b.take(10, t(1200), true));
        assert!(!b.take(10, t(1200), true));
        // Idle refills to the burst, never beyond.
        let passed = (0..50).filter(|_| b.take(10, t(60_000), true)).count();
        assert_eq!(passed, 10);
    }

    #[test]
    fn flap_trips_once_per_window_over_the_threshold() {
        let mut f = FlapTracker::default();
        let k = FdbKey::new(0, "02:00:00:00:00:01".parse().unwrap());
        for i in 0..3 {
            assert_eq!(f.on_move(k, t(10 + i), 3), None);
        }
        assert_eq!(f.on_move(k, t(20), 3), Some(4));
        assert_eq!(f.on_move(k, t(30), 3), None);
        // A new window counts afresh.
        for i in 0..3 {
            assert_eq!(f.on_move(k, t(1100 + i), 3), None);
        }
        assert_eq!(f.on_move(k, t(1200), 3), Some(4));
        f.sweep(t(5000));
        assert_eq!(f.tracked(), 0);
    }

    #[test]
    fn slow_moves_never_flap() {
        let mut f = FlapTracker::default();
        let k = FdbKey::new(0, "02:00:00:00:00:01".parse().unwrap());
        for s in 0..100 {
            assert_eq!(f.on_move(k, t(s * 400), 3), None);
        }
    }

    #[test]
    fn recognises_stp_llc() {
        assert!(is_stp_llc(38, &[0x42, 0x42, 0x03, 0, 0]));
        assert!(!is_stp_llc(0x0800, &[0x42, 0x42, 0x03]));
        assert!(!is_stp_llc(38, &[0xaa, 0xaa, 0x03]));
        assert!(!is_stp_llc(38, &[0x42]));
    }
}
