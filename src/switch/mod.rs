//! The forwarding core, sans-I/O: the port table, the FDB, and the decision
//! for one frame.
//!
//! `Switch::decide` is the only place a forwarding decision is made. The
//! dataplane calls it with `Mode::Apply` for every received frame; `trace`
//! calls it with `Mode::Preview`, which walks the same code without learning.
//! Nothing here reads a clock, a socket or a port name.
//!
//! Rules for frames a bridge must not forward or learn from follow the Linux
//! bridge (`br_handle_frame`) with STP disabled:
//! - a source MAC that is multicast/broadcast/zero: dropped, not learned;
//! - 01:80:c2:00:00:01 (802.3x PAUSE): dropped, not learned;
//! - 01:80:c2:00:00:02..0f (802.1 reserved groups: LACP, 802.1X, LLDP, ...):
//!   learned from, not forwarded unless the group-forward mask allows it;
//! - 01:80:c2:00:00:00 (STP BPDUs): flooded, because with no STP running the
//!   bridge must stay transparent so that an outer STP can see loops;
//! - known unicast whose entry is the ingress port: dropped (no hairpin).

pub mod drop_reason;
pub mod fdb;
pub mod time;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use drop_reason::DropReason;
pub use fdb::{EntryKind, Fdb, FdbCounters, FdbEntry, FdbError, FdbKey, LearnOutcome};
pub use time::Timestamp;

use crate::wire::{EthernetFrame, MacAddr};

/// A switch port's slot number. Stable while the port exists; reused after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PortId(pub u16);

impl PortId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Most ports one switch can hold.
pub const MAX_PORTS: usize = 1024;

/// Reserved groups whose forwarding the mask may never enable (as the bridge's
/// BR_GROUPFWD_RESTRICTED): STP (handled separately), PAUSE, slow protocols (LACP).
pub const GROUP_FWD_RESTRICTED: u16 = 0x0007;

/// Per-port forwarding settings the core needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortPolicy {
    /// Learned-entry limit for this port; `None` uses the switch-wide per-port limit.
    pub max_learned: Option<u32>,
}

/// Whether `decide` changes state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Learn and count: the dataplane's mode.
    Apply,
    /// Change nothing: report what would happen (trace).
    Preview,
}

/// Why a frame is flooded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FloodKind {
    Broadcast,
    Multicast,
    UnknownUnicast,
}

impl FloodKind {
    pub fn name(self) -> &'static str {
        match self {
            FloodKind::Broadcast => "broadcast",
            FloodKind::Multicast => "multicast",
            FloodKind::UnknownUnicast => "unknown unicast",
        }
    }
}

/// What to do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Known unicast: exactly one egress port.
    Forward {
        port: PortId,
    },
    /// Every active port but the ingress one (see `Switch::flood_targets`).
    Flood {
        kind: FloodKind,
    },
    Drop {
        reason: DropReason,
    },
}

/// The full decision for one frame, enough to explain it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub vlan: u16,
    pub src: Option<MacAddr>,
    pub dst: Option<MacAddr>,
    pub learn: LearnOutcome,
    pub action: Action,
}

impl Decision {
    fn dropped(reason: DropReason) -> Decision {
        Decision {
            vlan: 0,
            src: None,
            dst: None,
            learn: LearnOutcome::NotLearned,
            action: Action::Drop { reason },
        }
    }
}

/// Switch-wide settings, changeable at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub ageing_time_s: u64,
    /// Learned-entry limit for the whole switch; 0 = unlimited.
    pub fdb_max: usize,
    /// Default learned-entry limit per port; 0 = unlimited.
    pub fdb_max_per_port: u32,
    /// Bit n set: forward 01:80:c2:00:00:0n (the bridge's group_fwd_mask).
    pub group_fwd_mask: u16,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ageing_time_s: fdb::DEFAULT_AGEING.as_secs(),
            fdb_max: fdb::DEFAULT_MAX_LEARNED,
            fdb_max_per_port: 0,
            group_fwd_mask: 0,
        }
    }
}

/// Why a settings change or port operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwitchError {
    #[error("the switch already has {MAX_PORTS} ports")]
    TooManyPorts,
    #[error("group forward mask {0:#06x} includes restricted bits {GROUP_FWD_RESTRICTED:#06x} (STP, PAUSE, LACP cannot be forwarded)")]
    RestrictedGroupMask(u16),
    #[error("no port with id {0}")]
    NoSuchPort(u16),
}

/// The forwarding core of one switch.
#[derive(Debug)]
pub struct Switch {
    fdb: Fdb,
    ports: Vec<Option<PortPolicy>>,
    settings: Settings,
}

impl Default for Switch {
    fn default() -> Self {
        Switch::new(Settings::default())
    }
}

impl Switch {
    pub fn new(settings: Settings) -> Switch {
        Switch {
            fdb: Fdb::new(
                Duration::from_secs(settings.ageing_time_s),
                settings.fdb_max,
            ),
            ports: Vec::new(),
            settings,
        }
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    pub fn fdb(&self) -> &Fdb {
        &self.fdb
    }

    pub fn fdb_mut(&mut self) -> &mut Fdb {
        &mut self.fdb
    }

    pub fn set_ageing_time(&mut self, secs: u64) {
        self.settings.ageing_time_s = secs;
        self.fdb.set_ageing(Duration::from_secs(secs));
    }

    pub fn set_fdb_max(&mut self, max: usize) {
        self.settings.fdb_max = max;
        self.fdb.set_max_learned(max);
    }

    pub fn set_fdb_max_per_port(&mut self, max: u32) {
        self.settings.fdb_max_per_port = max;
    }

    pub fn set_group_fwd_mask(&mut self, mask: u16) -> Result<(), SwitchError> {
        if mask & GROUP_FWD_RESTRICTED & !1 != 0 {
            return Err(SwitchError::RestrictedGroupMask(mask));
        }
        self.settings.group_fwd_mask = mask;
        Ok(())
    }

    /// Takes the lowest free slot.
    pub fn add_port(&mut self, policy: PortPolicy) -> Result<PortId, SwitchError> {
        let idx = match self.ports.iter().position(|p| p.is_none()) {
            Some(i) => i,
            None if self.ports.len() < MAX_PORTS => {
                self.ports.push(None);
                self.ports.len() - 1
            }
            None => return Err(SwitchError::TooManyPorts),
        };
        self.ports[idx] = Some(policy);
        Ok(PortId(idx as u16))
    }

    /// Removes a port and every FDB entry (learned and static) pointing at it.
    pub fn remove_port(&mut self, id: PortId) -> Result<usize, SwitchError> {
        match self.ports.get_mut(id.index()) {
            Some(slot @ Some(_)) => {
                *slot = None;
                Ok(self.fdb.flush(Some(id), true))
            }
            _ => Err(SwitchError::NoSuchPort(id.0)),
        }
    }

    pub fn port_policy(&self, id: PortId) -> Option<PortPolicy> {
        self.ports.get(id.index()).copied().flatten()
    }

    pub fn set_port_policy(&mut self, id: PortId, policy: PortPolicy) -> Result<(), SwitchError> {
        match self.ports.get_mut(id.index()) {
            Some(Some(p)) => {
                *p = policy;
                Ok(())
            }
            _ => Err(SwitchError::NoSuchPort(id.0)),
        }
    }

    pub fn has_port(&self, id: PortId) -> bool {
        self.port_policy(id).is_some()
    }

    /// Active ports in id order.
    pub fn ports(&self) -> impl Iterator<Item = PortId> + '_ {
        self.ports
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_some())
            .map(|(i, _)| PortId(i as u16))
    }

    /// Where a flooded frame from `ingress` goes: every other active port.
    pub fn flood_targets(&self, ingress: PortId) -> impl Iterator<Item = PortId> + '_ {
        self.ports().filter(move |p| *p != ingress)
    }

    fn port_limit(&self, id: PortId) -> usize {
        let policy = self.port_policy(id).unwrap_or_default();
        policy.max_learned.unwrap_or(self.settings.fdb_max_per_port) as usize
    }

    /// Decides what happens to `frame`, received on `ingress` at `now`.
    pub fn decide(
        &mut self,
        ingress: PortId,
        frame: &[u8],
        now: Timestamp,
        mode: Mode,
    ) -> Decision {
        let eth = match EthernetFrame::new_checked(frame) {
            Ok(e) => e,
            Err(_) => return Decision::dropped(DropReason::Runt),
        };
        let (src, dst) = (eth.src(), eth.dst());
        // VLAN-unaware: every frame belongs to VLAN 0; tags pass untouched.
        let vlan = 0u16;
        let mut decision = Decision {
            vlan,
            src: Some(src),
            dst: Some(dst),
            learn: LearnOutcome::NotLearned,
            action: Action::Drop {
                reason: DropReason::NoEgress,
            },
        };
        if !src.is_valid_source() {
            decision.action = Action::Drop {
                reason: DropReason::InvalidSource,
            };
            return decision;
        }
        if dst.reserved_group() == Some(0x01) {
            decision.action = Action::Drop {
                reason: DropReason::MacControl,
            };
            return decision;
        }

        let limit = self.port_limit(ingress);
        decision.learn = self.fdb.learn(
            FdbKey::new(vlan, src),
            ingress,
            limit,
            now,
            mode == Mode::Apply,
        );

        decision.action = if let Some(group) = dst.reserved_group() {
            let forwardable = group == 0 || self.settings.group_fwd_mask & (1 << group) != 0;
            if forwardable {
                self.flood_action(ingress, FloodKind::Multicast)
            } else {
                Action::Drop {
                    reason: DropReason::ReservedGroup,
                }
            }
        } else if dst.is_broadcast() {
            self.flood_action(ingress, FloodKind::Broadcast)
        } else if dst.is_multicast() {
            self.flood_action(ingress, FloodKind::Multicast)
        } else {
            match self.fdb.lookup(FdbKey::new(vlan, dst), now) {
                Some(e) if e.port == ingress => Action::Drop {
                    reason: DropReason::SamePort,
                },
                Some(e) => Action::Forward { port: e.port },
                None => self.flood_action(ingress, FloodKind::UnknownUnicast),
            }
        };
        decision
    }

    fn flood_action(&self, ingress: PortId, kind: FloodKind) -> Action {
        if self.flood_targets(ingress).next().is_some() {
            Action::Flood { kind }
        } else {
            Action::Drop {
                reason: DropReason::NoEgress,
            }
        }
    }
}

#[cfg(test)]
mod tests;
