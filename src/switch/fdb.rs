//! The forwarding database: (VLAN, MAC) -> port, with learning, ageing, static
//! entries, MAC moves and size limits.
//!
//! Semantics follow the Linux bridge (`net/bridge/br_fdb.c`):
//! - a learned entry is refreshed by every frame from its MAC and moves to a
//!   new port at once when the MAC shows up there;
//! - an entry older than the ageing time is gone: lookups ignore it before
//!   the periodic sweep removes it; an ageing time of 0 disables learning in
//!   effect (every entry is born expired), as on the bridge;
//! - static entries never age and never move; a frame whose source is a
//!   static MAC on another port is still forwarded, the entry stays;
//! - the limits count learned entries only; when one is reached new MACs are
//!   refused (and counted) rather than evicting, so a MAC flood cannot push
//!   out established stations;
//! - an entry on a tunnel port names the remote tunnel endpoint (VTEP) the
//!   MAC sits behind, as the Linux vxlan device's FDB does (`dst IP`); the
//!   same MAC showing up behind another VTEP of the same port is a move;
//! - an EVPN entry (a remote MAC/IP route, as the kernel's `extern_learn`)
//!   never ages and is not counted against the limits; the control plane
//!   adds and removes it, and the MAC showing up on a local port moves it
//!   there as a learned entry (the station came here).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::time::Timestamp;
use super::PortId;
use crate::wire::MacAddr;

/// The key of an FDB entry. `vlan` is 0 while the switch is VLAN-unaware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FdbKey {
    pub vlan: u16,
    pub mac: MacAddr,
}

impl FdbKey {
    pub fn new(vlan: u16, mac: MacAddr) -> FdbKey {
        FdbKey { vlan, mac }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    Learned,
    Static,
    /// Programmed from an EVPN type-2 route (see `evpn`).
    Evpn,
}

/// 16 bytes: the remote VTEP fits in what would be padding, so entries of
/// tunnel ports cost the table and the lookup nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdbEntry {
    pub port: PortId,
    pub kind: EntryKind,
    /// Last time a frame from this MAC was seen (learned) or when it was added (static).
    pub updated: Timestamp,
    /// On a tunnel port: the VTEP frames to this MAC are sent to.
    pub remote: Option<Ipv4Addr>,
}

/// What the table stores per key: the entry and the frames received from
/// its MAC (counted by applied learning, so only on ports that learn, and
/// not what the kernel fast path carries). The count survives moves, so
/// `l2sw top` can rank stations by their rate. It sits beside the entry, not
/// in it: a lookup still copies out 16 bytes (two registers), and learning
/// adds to a line it is writing the entry's age into anyway.
#[derive(Debug, Clone, Copy)]
struct Slot {
    entry: FdbEntry,
    frames: u64,
}

/// What learning a source address did (or, in preview, would do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum LearnOutcome {
    /// A new entry was created.
    New,
    /// The entry existed on this port; its age was reset.
    Refreshed,
    /// The MAC moved here from another port.
    Moved { from: PortId },
    /// The switch-wide limit of learned entries is reached.
    RefusedFull,
    /// This port's limit of learned entries is reached.
    RefusedPortLimit,
    /// The MAC is a static entry (here or on another port); nothing changes.
    Static { port: PortId },
    /// Learning is off for this frame (invalid source, or disabled).
    NotLearned,
}

/// FDB event counters, cumulative since start (or the last reset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbCounters {
    pub learned: u64,
    pub moved: u64,
    pub aged: u64,
    pub refused_full: u64,
    pub refused_port_limit: u64,
    pub static_conflicts: u64,
}

/// Why an FDB request from the operator was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FdbError {
    #[error("{0} is a multicast or broadcast address; only unicast MACs can be FDB entries")]
    NotUnicast(MacAddr),
    #[error("{0} is the all-zero address; it cannot be an FDB entry")]
    Zero(MacAddr),
    #[error("no FDB entry for {mac} in VLAN {vlan}")]
    NotFound { mac: MacAddr, vlan: u16 },
}

pub const DEFAULT_AGEING: Duration = Duration::from_secs(300);
pub const DEFAULT_MAX_LEARNED: usize = 8192;

/// Hashes an 8-byte FDB key with one multiply and a per-process random
/// seed: several times cheaper than SipHash on the per-frame lookups, and
/// still keyed, so nobody can precompute colliding MACs. (The learned-entry
/// limit bounds the table in any case.)
#[derive(Debug, Clone, Copy)]
pub struct KeyHasherBuilder {
    seed: u64,
}

impl Default for KeyHasherBuilder {
    fn default() -> Self {
        // RandomState is seeded from the OS; take 64 bits of it once.
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x9e37_79b9u32);
        KeyHasherBuilder { seed: seed | 1 }
    }
}

impl BuildHasher for KeyHasherBuilder {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(self.seed)
    }
}

/// See [`KeyHasherBuilder`].
#[derive(Debug, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    fn write_u16(&mut self, v: u16) {
        self.write_u64(v as u64);
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }

    fn finish(&self) -> u64 {
        // Final avalanche so the table's low bits depend on every input bit.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 33)
    }
}

/// The forwarding database.
#[derive(Debug)]
pub struct Fdb {
    map: HashMap<FdbKey, Slot, KeyHasherBuilder>,
    learned_total: usize,
    /// Learned entries per port, indexed by `PortId`.
    learned_per_port: Vec<u32>,
    ageing: Duration,
    /// 0 = unlimited.
    max_learned: usize,
    counters: FdbCounters,
}

impl Default for Fdb {
    fn default() -> Self {
        Fdb::new(DEFAULT_AGEING, DEFAULT_MAX_LEARNED)
    }
}

impl Fdb {
    pub fn new(ageing: Duration, max_learned: usize) -> Fdb {
        Fdb {
            map: HashMap::with_hasher(KeyHasherBuilder::default()),
            learned_total: 0,
            learned_per_port: Vec::new(),
            ageing,
            max_learned,
            counters: FdbCounters::default(),
        }
    }

    pub fn ageing(&self) -> Duration {
        self.ageing
    }

    pub fn set_ageing(&mut self, ageing: Duration) {
        self.ageing = ageing;
    }

    pub fn max_learned(&self) -> usize {
        self.max_learned
    }

    /// Takes effect for new MACs; existing entries above the limit stay until they age.
    pub fn set_max_learned(&mut self, max: usize) {
        self.max_learned = max;
    }

    pub fn counters(&self) -> FdbCounters {
        self.counters
    }

    pub fn reset_counters(&mut self) {
        self.counters = FdbCounters::default();
    }

    /// Entries present, including learned ones expired but not yet swept.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn learned_on(&self, port: PortId) -> u32 {
        self.learned_per_port
            .get(port.index())
            .copied()
            .unwrap_or(0)
    }

    pub fn learned_total(&self) -> usize {
        self.learned_total
    }

    fn is_expired(&self, e: &FdbEntry, now: Timestamp) -> bool {
        e.kind == EntryKind::Learned && now.since(e.updated) >= self.ageing
    }

    fn count_add(&mut self, port: PortId) {
        let i = port.index();
        if self.learned_per_port.len() <= i {
            self.learned_per_port.resize(i + 1, 0);
        }
        self.learned_per_port[i] += 1;
        self.learned_total += 1;
    }

    fn count_remove(&mut self, port: PortId) {
        if let Some(c) = self.learned_per_port.get_mut(port.index()) {
            *c = c.saturating_sub(1);
        }
        self.learned_total = self.learned_total.saturating_sub(1);
    }

    /// Looks up a destination; expired learned entries are invisible.
    pub fn lookup(&self, key: FdbKey, now: Timestamp) -> Option<FdbEntry> {
        match self.map.get(&key) {
            Some(s) if !self.is_expired(&s.entry, now) => Some(s.entry),
            _ => None,
        }
    }

    /// Age of an entry in whole seconds (0 for static ones).
    pub fn age_secs(&self, e: &FdbEntry, now: Timestamp) -> u64 {
        match e.kind {
            EntryKind::Static | EntryKind::Evpn => 0,
            EntryKind::Learned => now.since(e.updated).as_secs(),
        }
    }

    /// Learns `key` on `port`. `port_limit` is that port's learned-entry limit
    /// (0 = unlimited). With `apply == false` nothing changes and the outcome
    /// says what would have happened (used by `trace`).
    pub fn learn(
        &mut self,
        key: FdbKey,
        port: PortId,
        port_limit: usize,
        now: Timestamp,
        apply: bool,
    ) -> LearnOutcome {
        self.learn_from(key, port, None, port_limit, now, apply)
    }

    /// Learns `key` on `port` behind tunnel endpoint `remote` (`None` for
    /// ports that are no tunnel). A known MAC behind another VTEP of the same
    /// port moves there.
    pub fn learn_from(
        &mut self,
        key: FdbKey,
        port: PortId,
        remote: Option<Ipv4Addr>,
        port_limit: usize,
        now: Timestamp,
        apply: bool,
    ) -> LearnOutcome {
        let (existing, seen) = match self.map.get(&key) {
            Some(s) => (Some(s.entry), s.frames),
            None => (None, 0),
        };
        match existing {
            Some(e) if e.kind == EntryKind::Static => {
                if apply {
                    if e.port != port {
                        self.counters.static_conflicts += 1;
                    } else if let Some(slot) = self.map.get_mut(&key) {
                        slot.frames += 1;
                    }
                }
                LearnOutcome::Static { port: e.port }
            }
            Some(e) if e.port == port && e.remote != remote => {
                // Same tunnel port, another VTEP: the station moved hosts.
                let expired = self.is_expired(&e, now);
                if apply {
                    if e.kind == EntryKind::Evpn {
                        self.count_add(port);
                    }
                    if let Some(slot) = self.map.get_mut(&key) {
                        slot.entry.updated = now;
                        slot.entry.remote = remote;
                        slot.entry.kind = EntryKind::Learned;
                        slot.frames += 1;
                    }
                    if expired {
                        self.counters.learned += 1;
                    } else {
                        self.counters.moved += 1;
                    }
                }
                if expired {
                    LearnOutcome::New
                } else {
                    LearnOutcome::Moved { from: port }
                }
            }
            Some(e) if e.port == port => {
                // Same port: a refresh, even if it had expired unseen.
                if apply {
                    if let Some(slot) = self.map.get_mut(&key) {
                        slot.entry.updated = now;
                        slot.frames += 1;
                    }
                }
                if self.is_expired(&e, now) {
                    LearnOutcome::New
                } else {
                    LearnOutcome::Refreshed
                }
            }
            Some(e) => {
                let expired = self.is_expired(&e, now);
                if port_limit != 0 && self.learned_on(port) as usize >= port_limit {
                    // A stale pointer to the old port would black-hole the
                    // station; drop it so its frames are flooded instead.
                    if apply {
                        self.map.remove(&key);
                        if e.kind == EntryKind::Learned {
                            self.count_remove(e.port);
                        }
                        self.counters.refused_port_limit += 1;
                    }
                    return LearnOutcome::RefusedPortLimit;
                }
                if apply {
                    if e.kind == EntryKind::Learned {
                        self.count_remove(e.port);
                    }
                    self.count_add(port);
                    let entry = FdbEntry {
                        port,
                        kind: EntryKind::Learned,
                        updated: now,
                        remote,
                    };
                    let frames = seen + 1;
                    self.map.insert(key, Slot { entry, frames });
                    if expired {
                        self.counters.learned += 1;
                    } else {
                        self.counters.moved += 1;
                    }
                }
                if expired {
                    LearnOutcome::New
                } else {
                    LearnOutcome::Moved { from: e.port }
                }
            }
            None => {
                if self.max_learned != 0 && self.learned_total >= self.max_learned {
                    if apply {
                        self.counters.refused_full += 1;
                    }
                    return LearnOutcome::RefusedFull;
                }
                if port_limit != 0 && self.learned_on(port) as usize >= port_limit {
                    if apply {
                        self.counters.refused_port_limit += 1;
                    }
                    return LearnOutcome::RefusedPortLimit;
                }
                if apply {
                    self.count_add(port);
                    let entry = FdbEntry {
                        port,
                        kind: EntryKind::Learned,
                        updated: now,
                        remote,
                    };
                    self.map.insert(key, Slot { entry, frames: 1 });
                    self.counters.learned += 1;
                }
                LearnOutcome::New
            }
        }
    }

    /// Adds (or replaces) a static entry. Returns the entry it replaced.
    pub fn add_static(
        &mut self,
        key: FdbKey,
        port: PortId,
        now: Timestamp,
    ) -> Result<Option<FdbEntry>, FdbError> {
        self.add_static_to(key, port, None, now)
    }

    /// Adds (or replaces) a static entry behind tunnel endpoint `remote`.
    pub fn add_static_to(
        &mut self,
        key: FdbKey,
        port: PortId,
        remote: Option<Ipv4Addr>,
        now: Timestamp,
    ) -> Result<Option<FdbEntry>, FdbError> {
        if key.mac.is_multicast() {
            return Err(FdbError::NotUnicast(key.mac));
        }
        if key.mac.is_zero() {
            return Err(FdbError::Zero(key.mac));
        }
        let entry = FdbEntry {
            port,
            kind: EntryKind::Static,
            updated: now,
            remote,
        };
        let old = self
            .map
            .insert(key, Slot { entry, frames: 0 })
            .map(|s| s.entry);
        if let Some(o) = old {
            if o.kind == EntryKind::Learned {
                self.count_remove(o.port);
            }
        }
        Ok(old)
    }

    /// Adds (or replaces) an EVPN entry: `key` sits behind VTEP `remote` of
    /// tunnel port `port`. A static entry stays and wins (returns false).
    pub fn add_evpn(
        &mut self,
        key: FdbKey,
        port: PortId,
        remote: Ipv4Addr,
        now: Timestamp,
    ) -> Result<bool, FdbError> {
        if key.mac.is_multicast() {
            return Err(FdbError::NotUnicast(key.mac));
        }
        if key.mac.is_zero() {
            return Err(FdbError::Zero(key.mac));
        }
        match self.map.get(&key) {
            Some(e) if e.entry.kind == EntryKind::Static => return Ok(false),
            Some(e) if e.entry.kind == EntryKind::Learned => {
                let p = e.entry.port;
                self.count_remove(p);
                self.counters.moved += 1;
            }
            _ => {}
        }
        let entry = FdbEntry {
            port,
            kind: EntryKind::Evpn,
            updated: now,
            remote: Some(remote),
        };
        self.map.insert(key, Slot { entry, frames: 0 });
        Ok(true)
    }

    /// Removes `key` if it is an EVPN entry; true if it was.
    pub fn remove_evpn(&mut self, key: FdbKey) -> bool {
        if self.map.get(&key).map(|e| e.entry.kind) == Some(EntryKind::Evpn) {
            self.map.remove(&key);
            true
        } else {
            false
        }
    }

    /// Removes one entry, learned or static.
    pub fn remove(&mut self, key: FdbKey) -> Result<FdbEntry, FdbError> {
        match self.map.remove(&key).map(|s| s.entry) {
            Some(e) => {
                if e.kind == EntryKind::Learned {
                    self.count_remove(e.port);
                }
                Ok(e)
            }
            None => Err(FdbError::NotFound {
                mac: key.mac,
                vlan: key.vlan,
            }),
        }
    }

    /// Removes learned entries (and static ones with `include_static`) of one
    /// port or of all ports. Returns how many were removed.
    pub fn flush(&mut self, port: Option<PortId>, include_static: bool) -> usize {
        let before = self.map.len();
        let mut removed_learned: Vec<PortId> = Vec::new();
        self.map.retain(|_, s| {
            let e = &s.entry;
            let port_match = port.is_none_or(|p| p == e.port);
            let kind_match = include_static || e.kind == EntryKind::Learned;
            let remove = port_match && kind_match;
            if remove && e.kind == EntryKind::Learned {
                removed_learned.push(e.port);
            }
            !remove
        });
        for p in removed_learned {
            self.count_remove(p);
        }
        before - self.map.len()
    }

    /// Removes learned entries older than the ageing time. Returns how many.
    pub fn age(&mut self, now: Timestamp) -> usize {
        self.age_each(now, |_, _| {})
    }

    /// Like [`age`](Self::age), telling `aged` each entry removed.
    pub fn age_each(&mut self, now: Timestamp, mut aged: impl FnMut(FdbKey, PortId)) -> usize {
        let ageing = self.ageing;
        let mut removed: Vec<PortId> = Vec::new();
        self.map.retain(|k, s| {
            let e = &s.entry;
            let expired = e.kind == EntryKind::Learned && now.since(e.updated) >= ageing;
            if expired {
                removed.push(e.port);
                aged(*k, e.port);
            }
            !expired
        });
        let n = removed.len();
        for p in removed {
            self.count_remove(p);
        }
        self.counters.aged += n as u64;
        n
    }

    /// All live entries (expired learned ones are left out), in no particular order.
    pub fn entries(&self, now: Timestamp) -> impl Iterator<Item = (FdbKey, FdbEntry)> + '_ {
        self.entries_counted(now).map(|(k, e, _)| (k, e))
    }

    /// [`entries`](Self::entries) with the frames received from each MAC.
    pub fn entries_counted(
        &self,
        now: Timestamp,
    ) -> impl Iterator<Item = (FdbKey, FdbEntry, u64)> + '_ {
        self.map
            .iter()
            .filter(move |(_, s)| !self.is_expired(&s.entry, now))
            .map(|(k, s)| (*k, s.entry, s.frames))
    }

    /// Frames received from the MAC of `key` (0 for no entry).
    pub fn frames(&self, key: FdbKey) -> u64 {
        self.map.get(&key).map_or(0, |s| s.frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(last: u8) -> MacAddr {
        MacAddr([0x02, 0, 0, 0, 0, last])
    }
    fn key(last: u8) -> FdbKey {
        FdbKey::new(0, mac(last))
    }
    const A: PortId = PortId(1);
    const B: PortId = PortId(2);
    fn t(s: u64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    #[test]
    fn learns_refreshes_and_moves() {
        let mut fdb = Fdb::new(Duration::from_secs(300), 0);
        assert_eq!(fdb.learn(key(1), A, 0, t(1), true), LearnOutcome::New);
        assert_eq!(fdb.learn(key(1), A, 0, t(2), true), LearnOutcome::Refreshed);
        assert_eq!(fdb.lookup(key(1), t(3)).unwrap().port, A);
        assert_eq!(
            fdb.learn(key(1), B, 0, t(4), true),
            LearnOutcome::Moved { from: A }
        );
        assert_eq!(fdb.lookup(key(1), t(4)).unwrap().port, B);
        assert_eq!((fdb.learned_on(A), fdb.learned_on(B)), (0, 1));
        assert_eq!(fdb.counters().moved, 1);
        assert_eq!(fdb.counters().learned, 1);
    }

    #[test]
    fn preview_changes_nothing() {
        let mut fdb = Fdb::new(Duration::from_secs(300), 0);
        assert_eq!(fdb.learn(key(1), A, 0, t(1), false), LearnOutcome::New);
        assert!(fdb.lookup(key(1), t(1)).is_none());
        fdb.learn(key(1), A, 0, t(1), true);
        assert_eq!(
            fdb.learn(key(1), B, 0, t(2), false),
            LearnOutcome::Moved { from: A }
        );
        assert_eq!(fdb.lookup(key(1), t(2)).unwrap().port, A);
        assert_eq!(fdb.counters().moved, 0);
    }

    #[test]
    fn ages_out() {
        let mut fdb = Fdb::new(Duration::from_secs(10), 0);
        fdb.learn(key(1), A, 0, t(100), true);
        assert!(fdb.lookup(key(1), t(109)).is_some());
        assert!(
            fdb.lookup(key(1), t(110)).is_none(),
            "expired at exactly the ageing time"
        );
        assert_eq!(fdb.age(t(109)), 0);
        assert_eq!(fdb.age(t(110)), 1);
        assert!(fdb.is_empty());
        assert_eq!(fdb.learned_on(A), 0);
        assert_eq!(fdb.counters().aged, 1);
    }

    #[test]
    fn shortening_ageing_applies_to_existing_entries() {
        let mut fdb = Fdb::new(Duration::from_secs(300), 0);
        fdb.learn(key(1), A, 0, t(100), true);
        fdb.set_ageing(Duration::from_secs(5));
        assert!(fdb.lookup(key(1), t(106)).is_none());
    }

    #[test]
    fn ageing_zero_means_nothing_is_remembered() {
        let mut fdb = Fdb::new(Duration::ZERO, 0);
        fdb.learn(key(1), A, 0, t(1), true);
        assert!(fdb.lookup(key(1), t(1)).is_none());
    }

    #[test]
    fn static_entries_never_age_or_move() {
        let mut fdb = Fdb::new(Duration::from_secs(10), 0);
        fdb.add_static(key(1), A, t(0)).unwrap();
        assert_eq!(
            fdb.learn(key(1), B, 0, t(5), true),
            LearnOutcome::Static { port: A }
        );
        assert_eq!(fdb.counters().static_conflicts, 1);
        assert_eq!(fdb.age(t(1_000_000)), 0);
        assert_eq!(fdb.lookup(key(1), t(1_000_000)).unwrap().port, A);
        assert_eq!(fdb.learned_total(), 0);
    }

    #[test]
    fn static_replaces_learned() {
        let mut fdb = Fdb::new(Duration::from_secs(10), 0);
        fdb.learn(key(1), A, 0, t(0), true);
        let old = fdb.add_static(key(1), B, t(1)).unwrap().unwrap();
        assert_eq!(old.kind, EntryKind::Learned);
        assert_eq!(fdb.learned_on(A), 0);
        assert_eq!(fdb.learned_total(), 0);
    }

    #[test]
    fn rejects_group_and_zero_static() {
        let mut fdb = Fdb::default();
        assert!(matches!(
            fdb.add_static(FdbKey::new(0, MacAddr::BROADCAST), A, t(0)),
            Err(FdbError::NotUnicast(_))
        ));
        assert!(matches!(
            fdb.add_static(FdbKey::new(0, MacAddr::ZERO), A, t(0)),
            Err(FdbError::Zero(_))
        ));
        assert_eq!(
            fdb.remove(key(9)).unwrap_err().to_string(),
            "no FDB entry for 02:00:00:00:00:09 in VLAN 0"
        );
    }

    #[test]
    fn switch_wide_limit_refuses_new_macs() {
        let mut fdb = Fdb::new(Duration::from_secs(300), 2);
        assert_eq!(fdb.learn(key(1), A, 0, t(0), true), LearnOutcome::New);
        assert_eq!(fdb.learn(key(2), B, 0, t(0), true), LearnOutcome::New);
        assert_eq!(
            fdb.learn(key(3), A, 0, t(0), true),
            LearnOutcome::RefusedFull
        );
        // Known MACs still refresh and move while full.
        assert_eq!(fdb.learn(key(1), A, 0, t(1), true), LearnOutcome::Refreshed);
        assert_eq!(
            fdb.learn(key(1), B, 0, t(2), true),
            LearnOutcome::Moved { from: A }
        );
        // Statics are not limited.
        fdb.add_static(key(4), A, t(0)).unwrap();
        assert_eq!(fdb.counters().refused_full, 1);
        assert_eq!(fdb.len(), 3);
    }

    #[test]
    fn per_port_limit_refuses_and_unlearns_moves() {
        let mut fdb = Fdb::new(Duration::from_secs(300), 0);
        assert_eq!(fdb.learn(key(1), A, 1, t(0), true), LearnOutcome::New);
        assert_eq!(
            fdb.learn(key(2), A, 1, t(0), true),
            LearnOutcome::RefusedPortLimit
        );
        assert_eq!(fdb.learn(key(2), B, 1, t(0), true), LearnOutcome::New);
        // key(1) moving to B, which is full: the stale entry goes away.
        assert_eq!(
            fdb.learn(key(1), B, 1, t(1), true),
            LearnOutcome::RefusedPortLimit
        );
        assert!(fdb.lookup(key(1), t(1)).is_none());
        assert_eq!(fdb.learned_on(A), 0);
        assert_eq!(fdb.counters().refused_port_limit, 2);
    }

    #[test]
    fn flush_by_port_and_kind() {
        let mut fdb = Fdb::new(Duration::from_secs(300), 0);
        fdb.learn(key(1), A, 0, t(0), true);
        fdb.learn(key(2), B, 0, t(0), true);
        fdb.add_static(key(3), A, t(0)).unwrap();
        assert_eq!(fdb.flush(Some(A), false), 1);
        assert_eq!(fdb.len(), 2);
        assert_eq!(fdb.flush(Some(A), true), 1);
        assert_eq!(fdb.flush(None, false), 1);
        assert!(fdb.is_empty());
        assert_eq!(fdb.learned_total(), 0);
    }

    #[test]
    fn vlans_are_separate_entries() {
        let mut fdb = Fdb::new(Duration::from_secs(300), 0);
        fdb.learn(FdbKey::new(10, mac(1)), A, 0, t(0), true);
        fdb.learn(FdbKey::new(20, mac(1)), B, 0, t(0), true);
        assert_eq!(fdb.lookup(FdbKey::new(10, mac(1)), t(0)).unwrap().port, A);
        assert_eq!(fdb.lookup(FdbKey::new(20, mac(1)), t(0)).unwrap().port, B);
        assert_eq!(fdb.len(), 2);
    }

    #[test]
    fn a_remote_vtep_costs_the_entry_no_room() {
        assert_eq!(std::mem::size_of::<FdbEntry>(), 16);
    }

    #[test]
    fn frames_from_a_mac_are_counted_across_moves_but_not_in_preview() {
        let mut fdb = Fdb::new(Duration::from_secs(300), 0);
        for s in 1..=3 {
            fdb.learn(key(1), A, 0, t(s), true);
        }
        fdb.learn(key(1), A, 0, t(4), false);
        assert_eq!(fdb.frames(key(1)), 3);
        fdb.learn(key(1), B, 0, t(5), true);
        let e = fdb.lookup(key(1), t(5)).unwrap();
        assert_eq!((e.port, fdb.frames(key(1))), (B, 4));
        // A static entry counts its station's frames from its own port only.
        fdb.add_static(key(2), A, t(5)).unwrap();
        fdb.learn(key(2), A, 0, t(6), true);
        fdb.learn(key(2), B, 0, t(6), true);
        assert_eq!(fdb.frames(key(2)), 1);
    }

    #[test]
    fn a_mac_behind_another_vtep_of_the_port_moves() {
        let mut fdb = Fdb::default();
        let (x, y) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(
            fdb.learn_from(key(1), A, Some(x), 0, t(1), true),
            LearnOutcome::New
        );
        assert_eq!(
            fdb.learn_from(key(1), A, Some(x), 0, t(2), true),
            LearnOutcome::Refreshed
        );
        assert_eq!(
            fdb.learn_from(key(1), A, Some(y), 0, t(3), true),
            LearnOutcome::Moved { from: A }
        );
        let e = fdb.lookup(key(1), t(3)).unwrap();
        assert_eq!((e.port, e.remote), (A, Some(y)));
        assert_eq!(fdb.counters().moved, 1);
        assert_eq!(
            fdb.learned_on(A),
            1,
            "a move within the port keeps the count"
        );
        // A static remote entry does not move.
        fdb.add_static_to(key(2), A, Some(x), t(4)).unwrap();
        assert_eq!(
            fdb.learn_from(key(2), A, Some(y), 0, t(5), true),
            LearnOutcome::Static { port: A }
        );
        assert_eq!(fdb.lookup(key(2), t(5)).unwrap().remote, Some(x));
    }
}
