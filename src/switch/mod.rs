//! The forwarding core, sans-I/O: the port table, the FDB, and the decision
//! for one frame.
//!
//! `Switch::plan` is the only place a forwarding decision is made: for one
//! received frame it fills a [`Plan`] with the learning outcome, the lookup,
//! the verdict, every egress port with the shape the frame leaves it in,
//! the mirror copies and (when asked) every excluded port with its reason.
//! The dataplane calls it with `Mode::Apply` for every received frame and
//! executes the plan; `trace` calls it with `Mode::Preview`, which walks the
//! same code without learning, and prints the plan. `decide` is the same
//! call for callers that only want the verdict. Nothing here reads a clock,
//! a socket or a port name.
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
//!
//! Per-port policy follows the bridge's port flags (learning, flood,
//! mcast_flood, bcast_flood, isolated, hairpin, group_fwd_mask); VLANs follow
//! Open vSwitch (`vlan`); mirrors follow Open vSwitch mirrors. See
//! docs/behaviour.md and docs/vlan-reference.md.

pub mod drop_reason;
pub mod fdb;
pub mod plan;
pub mod protect;
pub mod time;
pub mod tunnel;
pub mod vlan;

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use drop_reason::DropReason;
pub use fdb::{EntryKind, Fdb, FdbCounters, FdbEntry, FdbError, FdbKey, LearnOutcome};
pub use plan::{Cause, Egress, Lookup, MirrorCause, Plan, Shape};
pub use protect::{BlockReason, Blocked, LoopProtect, ProtectCounters, ProtectNote};
pub use time::Timestamp;
pub use tunnel::{FloodList, FloodMember, VtepOrigin};
pub use vlan::{Encap, VlanMode, VlanSet};

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

/// Reserved groups the switch-wide mask may never open (the bridge's
/// BR_GROUPFWD_RESTRICTED): STP (forwarded anyway while no STP runs), PAUSE,
/// slow protocols (LACP).
pub const GROUP_FWD_RESTRICTED: u16 = 0x0007;
/// What a port's own mask may never open: PAUSE (the bridge lets a port
/// open LACP).
pub const PORT_GROUP_FWD_RESTRICTED: u16 = 0x0002;

/// Per-port forwarding settings: the Linux bridge's port flags, a learned
/// entry limit, the port's VLAN mode and receive coalescing (`gro`, which
/// the dataplane reads; switch decisions do not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortPolicy {
    /// Learned-entry limit for this port; `None` uses the switch-wide per-port limit.
    pub max_learned: Option<u32>,
    /// Learn source addresses of frames received here.
    pub learning: bool,
    /// Receive floods of unknown unicast.
    pub flood: bool,
    /// Receive floods of multicast (reserved groups included).
    pub mcast_flood: bool,
    /// Receive broadcasts.
    pub bcast_flood: bool,
    /// An isolated port exchanges frames only with non-isolated ports.
    pub isolated: bool,
    /// Frames may go back out the port they came in on.
    pub hairpin: bool,
    /// Coalesce runs of TCP segments received here into GSO super-frames for egress ports that take them (software GRO).
    pub gro: bool,
    /// Reserved groups forwarded when received here, on top of the switch's mask.
    pub group_fwd_mask: u16,
    /// `None`: no VLAN configuration (a trunk of all VLANs once the switch is VLAN-aware).
    pub vlan: Option<VlanMode>,
    /// Storm control: broadcasts received here per second; excess dropped (0 = no limit).
    pub storm_bcast: u32,
    /// Storm control: multicast frames received here per second (0 = no limit).
    pub storm_mcast: u32,
    /// Storm control: unknown-unicast frames received here per second (0 = no limit).
    pub storm_unknown: u32,
    /// An STP BPDU received here blocks the port (an edge port that must never see a bridge).
    pub bpdu_guard: bool,
}

impl Default for PortPolicy {
    fn default() -> Self {
        PortPolicy {
            max_learned: None,
            learning: true,
            flood: true,
            mcast_flood: true,
            bcast_flood: true,
            isolated: false,
            hairpin: false,
            gro: true,
            group_fwd_mask: 0,
            vlan: None,
            storm_bcast: 0,
            storm_mcast: 0,
            storm_unknown: 0,
            bpdu_guard: false,
        }
    }
}

/// A SPAN session: copies of what the `src` ports receive and the `dst`
/// ports send go to `output`, which does no switching of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mirror {
    pub name: String,
    pub output: PortId,
    pub src: Vec<PortId>,
    pub dst: Vec<PortId>,
}

/// Why a port does not get a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// The frame came in here and hairpin is off.
    IngressPort,
    /// Known unicast for another port.
    NotDestination,
    /// The port does not carry the frame's VLAN.
    NotInVlan,
    /// The port's flood flag for this kind of frame is off.
    FloodOff,
    /// Both this port and the ingress port are isolated.
    Isolated,
    /// A mirror's output port does no normal switching.
    MirrorOutput,
    /// The frame is dropped altogether.
    Dropped,
    /// The port is blocked (loop protection or BPDU guard).
    Blocked,
}

impl Exclusion {
    pub fn text(self) -> &'static str {
        match self {
            Exclusion::IngressPort => "the ingress port (hairpin off)",
            Exclusion::NotDestination => "not the destination's port",
            Exclusion::NotInVlan => "does not carry the frame's VLAN",
            Exclusion::FloodOff => "flooding of this kind of frame is off on this port",
            Exclusion::Isolated => "isolated from the ingress port",
            Exclusion::MirrorOutput => "a mirror output port",
            Exclusion::Dropped => "the frame is dropped",
            Exclusion::Blocked => "the port is blocked (loop protection or BPDU guard)",
        }
    }

    /// Stable snake_case name (JSON).
    pub fn name(self) -> &'static str {
        match self {
            Exclusion::IngressPort => "ingress_port",
            Exclusion::NotDestination => "not_destination",
            Exclusion::NotInVlan => "not_in_vlan",
            Exclusion::FloodOff => "flood_off",
            Exclusion::Isolated => "isolated",
            Exclusion::MirrorOutput => "mirror_output",
            Exclusion::Dropped => "dropped",
            Exclusion::Blocked => "blocked",
        }
    }
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
    /// For known unicast to a tunnel port: the VTEP the entry names, which
    /// the port encapsulates toward.
    pub remote: Option<Ipv4Addr>,
}

impl Decision {
    fn dropped(reason: DropReason) -> Decision {
        Decision {
            vlan: 0,
            src: None,
            dst: None,
            learn: LearnOutcome::NotLearned,
            action: Action::Drop { reason },
            remote: None,
        }
    }
}

/// Switch-wide settings, changeable at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub ageing_time_s: u64,
    /// Learned-entry limit for the whole switch; 0 = unlimited.
    pub fdb_max: usize,
    /// Default learned-entry limit per port; 0 = unlimited.
    pub fdb_max_per_port: u32,
    /// Bit n set: forward 01:80:c2:00:00:0n (the bridge's group_fwd_mask).
    pub group_fwd_mask: u16,
    /// What a flapping MAC does: nothing, a report, or a blocked port.
    pub loop_protect: LoopProtect,
    /// Moves within a second beyond which a MAC is flapping.
    pub flap_threshold: u32,
    /// How long a blocked port stays blocked; 0 = until `port unblock`.
    pub loop_hold_s: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ageing_time_s: fdb::DEFAULT_AGEING.as_secs(),
            fdb_max: fdb::DEFAULT_MAX_LEARNED,
            fdb_max_per_port: 0,
            group_fwd_mask: 0,
            loop_protect: LoopProtect::default(),
            flap_threshold: protect::DEFAULT_FLAP_THRESHOLD,
            loop_hold_s: protect::DEFAULT_LOOP_HOLD_S,
        }
    }
}

/// Why a settings change or port operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwitchError {
    #[error("the switch already has {MAX_PORTS} ports")]
    TooManyPorts,
    #[error("group forward mask {0:#06x} includes restricted bits {GROUP_FWD_RESTRICTED:#06x} (STP, PAUSE and LACP cannot be opened switch-wide)")]
    RestrictedGroupMask(u16),
    #[error("port group forward mask {0:#06x} includes bit 1: PAUSE frames are never forwarded")]
    RestrictedPortGroupMask(u16),
    #[error("no port with id {0}")]
    NoSuchPort(u16),
    #[error("invalid VLAN configuration: {0}")]
    BadVlan(String),
    #[error("a mirror named {0} already exists")]
    DuplicateMirror(String),
    #[error("no mirror named {0}")]
    NoSuchMirror(String),
    #[error("a mirror's output port cannot also be one of its sources or destinations")]
    MirrorLoop,
    #[error("the flap threshold must be at least 1 move per second")]
    ZeroFlapThreshold,
}

/// The forwarding core of one switch.
#[derive(Debug)]
pub struct Switch {
    fdb: Fdb,
    ports: Vec<Option<PortPolicy>>,
    settings: Settings,
    mirrors: Vec<Mirror>,
    /// Some port has a VLAN mode: frames are classified into VLANs.
    vlan_aware: bool,
    /// Flood lists of tunnel ports, indexed by `PortId`.
    tunnels: Vec<Option<FloodList>>,
    /// Storm buckets and blocked state, indexed by `PortId`.
    guards: Vec<protect::PortGuard>,
    flaps: protect::FlapTracker,
    protect_counters: ProtectCounters,
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
            mirrors: Vec::new(),
            vlan_aware: false,
            tunnels: Vec::new(),
            guards: Vec::new(),
            flaps: protect::FlapTracker::default(),
            protect_counters: ProtectCounters::default(),
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

    pub fn set_loop_protect(&mut self, mode: LoopProtect) {
        self.settings.loop_protect = mode;
    }

    pub fn set_flap_threshold(&mut self, moves: u32) -> Result<(), SwitchError> {
        if moves == 0 {
            return Err(SwitchError::ZeroFlapThreshold);
        }
        self.settings.flap_threshold = moves;
        Ok(())
    }

    /// Applies to blocks made from now on.
    pub fn set_loop_hold(&mut self, secs: u64) {
        self.settings.loop_hold_s = secs;
    }

    pub fn set_group_fwd_mask(&mut self, mask: u16) -> Result<(), SwitchError> {
        if mask & GROUP_FWD_RESTRICTED != 0 {
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
        if let Some(v) = &policy.vlan {
            v.validate().map_err(SwitchError::BadVlan)?;
        }
        self.ports[idx] = Some(policy);
        if self.guards.len() <= idx {
            self.guards.resize_with(idx + 1, Default::default);
        }
        self.guards[idx] = protect::PortGuard::default();
        self.update_vlan_aware();
        Ok(PortId(idx as u16))
    }

    fn update_vlan_aware(&mut self) {
        let aware = self.ports.iter().flatten().any(|p| p.vlan.is_some());
        if aware != self.vlan_aware {
            // Entries learned in the other mode (all in VLAN 0, or per VLAN)
            // mean something else now: start learning afresh.
            self.fdb.flush(None, false);
        }
        self.vlan_aware = aware;
    }

    /// Whether frames are classified into VLANs (some port has a VLAN mode).
    pub fn vlan_aware(&self) -> bool {
        self.vlan_aware
    }

    /// Removes a port and every FDB entry (learned and static) pointing at it.
    pub fn remove_port(&mut self, id: PortId) -> Result<usize, SwitchError> {
        match self.ports.get_mut(id.index()) {
            Some(slot @ Some(_)) => {
                *slot = None;
                if let Some(t) = self.tunnels.get_mut(id.index()) {
                    *t = None;
                }
                if let Some(g) = self.guards.get_mut(id.index()) {
                    *g = protect::PortGuard::default();
                }
                self.update_vlan_aware();
                // A mirror without its output goes; others forget the port.
                self.mirrors.retain(|m| m.output != id);
                for m in &mut self.mirrors {
                    m.src.retain(|p| *p != id);
                    m.dst.retain(|p| *p != id);
                }
                Ok(self.fdb.flush(Some(id), true))
            }
            _ => Err(SwitchError::NoSuchPort(id.0)),
        }
    }

    /// Makes port `id` a tunnel port: frames to it name a remote VTEP, and
    /// floods are replicated to every member of its flood list.
    pub fn make_tunnel(&mut self, id: PortId, list: FloodList) -> Result<(), SwitchError> {
        if !self.has_port(id) {
            return Err(SwitchError::NoSuchPort(id.0));
        }
        if self.tunnels.len() <= id.index() {
            self.tunnels.resize(id.index() + 1, None);
        }
        self.tunnels[id.index()] = Some(list);
        Ok(())
    }

    /// The flood list of a tunnel port; `None` for other ports.
    pub fn tunnel(&self, id: PortId) -> Option<&FloodList> {
        self.tunnels.get(id.index()).and_then(|t| t.as_ref())
    }

    pub fn tunnel_mut(&mut self, id: PortId) -> Option<&mut FloodList> {
        self.tunnels.get_mut(id.index()).and_then(|t| t.as_mut())
    }

    /// Forgets learned flood-list members older than the ageing time.
    pub fn age_tunnels(&mut self, now: Timestamp) {
        let ageing = self.fdb.ageing();
        for t in self.tunnels.iter_mut().flatten() {
            t.age(now, ageing);
        }
    }

    /// The port's blocked state, if it is blocked.
    pub fn blocked(&self, id: PortId) -> Option<&Blocked> {
        self.guards.get(id.index()).and_then(|g| g.blocked.as_ref())
    }

    pub fn is_blocked(&self, id: PortId) -> bool {
        self.blocked(id).is_some()
    }

    pub fn protect_counters(&self) -> ProtectCounters {
        self.protect_counters
    }

    /// Blocks port `id` for the hold time (`Settings::loop_hold_s`). Its
    /// learned entries go: they may have been learned from looped frames,
    /// and stations behind it are learned afresh once it is open again.
    pub fn block(
        &mut self,
        id: PortId,
        reason: BlockReason,
        mac: Option<(MacAddr, u16)>,
        from: Option<PortId>,
        now: Timestamp,
    ) -> Result<(), SwitchError> {
        if !self.has_port(id) {
            return Err(SwitchError::NoSuchPort(id.0));
        }
        let hold = self.settings.loop_hold_s;
        self.guards[id.index()].blocked = Some(Blocked {
            reason,
            since: now,
            until: (hold > 0).then(|| now.plus(Duration::from_secs(hold))),
            mac,
            from,
        });
        match reason {
            BlockReason::Loop => self.protect_counters.loop_blocks += 1,
            BlockReason::BpduGuard => self.protect_counters.bpdu_guard_blocks += 1,
        }
        self.fdb.flush(Some(id), false);
        Ok(())
    }

    /// Opens a blocked port again; returns the block it had (`None`: it was not blocked).
    pub fn unblock(&mut self, id: PortId) -> Result<Option<Blocked>, SwitchError> {
        if !self.has_port(id) {
            return Err(SwitchError::NoSuchPort(id.0));
        }
        Ok(self.guards[id.index()].blocked.take())
    }

    /// Once a second: opens the ports whose hold time has passed (returned
    /// with the block they had) and forgets finished flap windows.
    pub fn expire_protection(&mut self, now: Timestamp) -> Vec<(PortId, Blocked)> {
        self.flaps.sweep(now);
        let mut opened = Vec::new();
        for (i, g) in self.guards.iter_mut().enumerate() {
            if let Some(b) = g.blocked {
                if b.until.is_some_and(|u| now >= u) {
                    g.blocked = None;
                    opened.push((PortId(i as u16), b));
                }
            }
        }
        opened
    }

    pub fn port_policy(&self, id: PortId) -> Option<&PortPolicy> {
        self.ports.get(id.index()).and_then(|p| p.as_ref())
    }

    /// Replaces a port's policy. Learned entries of VLANs the port no
    /// longer carries stop being used at once (lookups check membership).
    pub fn set_port_policy(&mut self, id: PortId, policy: PortPolicy) -> Result<(), SwitchError> {
        if let Some(v) = &policy.vlan {
            v.validate().map_err(SwitchError::BadVlan)?;
        }
        if policy.group_fwd_mask & PORT_GROUP_FWD_RESTRICTED != 0 {
            return Err(SwitchError::RestrictedPortGroupMask(policy.group_fwd_mask));
        }
        match self.ports.get_mut(id.index()) {
            Some(Some(p)) => {
                *p = policy;
                self.update_vlan_aware();
                Ok(())
            }
            _ => Err(SwitchError::NoSuchPort(id.0)),
        }
    }

    pub fn mirrors(&self) -> &[Mirror] {
        &self.mirrors
    }

    pub fn add_mirror(&mut self, m: Mirror) -> Result<(), SwitchError> {
        if self.mirrors.iter().any(|x| x.name == m.name) {
            return Err(SwitchError::DuplicateMirror(m.name));
        }
        for p in std::iter::once(&m.output).chain(&m.src).chain(&m.dst) {
            if !self.has_port(*p) {
                return Err(SwitchError::NoSuchPort(p.0));
            }
        }
        if m.src.contains(&m.output) || m.dst.contains(&m.output) {
            return Err(SwitchError::MirrorLoop);
        }
        self.mirrors.push(m);
        Ok(())
    }

    pub fn remove_mirror(&mut self, name: &str) -> Result<Mirror, SwitchError> {
        match self.mirrors.iter().position(|m| m.name == name) {
            Some(i) => Ok(self.mirrors.remove(i)),
            None => Err(SwitchError::NoSuchMirror(name.to_string())),
        }
    }

    fn is_mirror_output(&self, p: PortId) -> bool {
        self.mirrors.iter().any(|m| m.output == p)
    }

    /// The VLAN mode that applies to a port (the default trunk when it has none).
    fn mode_of(&self, p: PortId) -> &VlanMode {
        self.port_policy(p)
            .and_then(|x| x.vlan.as_ref())
            .unwrap_or(&vlan::DEFAULT_MODE)
    }

    fn carries(&self, p: PortId, vlan: u16) -> bool {
        !self.vlan_aware || self.mode_of(p).carries(vlan)
    }

    /// How a frame of `vlan` leaves port `p`.
    pub fn encap(&self, p: PortId, vlan: u16) -> Encap {
        if self.vlan_aware {
            self.mode_of(p).encap(vlan)
        } else {
            Encap::AsReceived
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

    /// Whether port `p` gets the frame `d` describes, received on
    /// `ingress`, and if so how it leaves; if not, why.
    pub fn egress_choice(
        &self,
        ingress: PortId,
        d: &Decision,
        p: PortId,
    ) -> Result<Encap, Exclusion> {
        if matches!(d.action, Action::Drop { .. }) {
            return Err(Exclusion::Dropped);
        }
        if self.is_blocked(p) {
            return Err(Exclusion::Blocked);
        }
        let kind = match d.action {
            Action::Drop { .. } => return Err(Exclusion::Dropped),
            Action::Forward { port } if port == p => return Ok(self.encap(p, d.vlan)),
            Action::Forward { .. } => return Err(Exclusion::NotDestination),
            Action::Flood { kind } => kind,
        };
        let pol = self.port_policy(p).ok_or(Exclusion::Dropped)?;
        if p == ingress && !pol.hairpin {
            return Err(Exclusion::IngressPort);
        }
        if self.is_mirror_output(p) {
            return Err(Exclusion::MirrorOutput);
        }
        if !self.carries(p, d.vlan) {
            return Err(Exclusion::NotInVlan);
        }
        let flag = match kind {
            FloodKind::UnknownUnicast => pol.flood,
            FloodKind::Multicast => pol.mcast_flood,
            FloodKind::Broadcast => pol.bcast_flood,
        };
        if !flag {
            return Err(Exclusion::FloodOff);
        }
        if pol.isolated && self.port_policy(ingress).is_some_and(|i| i.isolated) {
            return Err(Exclusion::Isolated);
        }
        Ok(self.encap(p, d.vlan))
    }

    /// Where the frame `d` describes goes, and how it leaves each port.
    pub fn egress<'a>(
        &'a self,
        ingress: PortId,
        d: &'a Decision,
    ) -> impl Iterator<Item = (PortId, Encap)> + 'a {
        // No boxing: this runs for every frame and must not allocate.
        let (only, all) = match d.action {
            Action::Forward { port } => (Some(port), 0),
            Action::Flood { .. } => (None, usize::MAX),
            Action::Drop { .. } => (None, 0),
        };
        let candidates = only.into_iter().chain(self.ports().take(all));
        candidates.filter_map(move |p| self.egress_choice(ingress, d, p).ok().map(|e| (p, e)))
    }

    /// Where a flooded frame from `ingress` in VLAN 0 goes (every other port
    /// that would take a broadcast); for callers without a decision at hand.
    pub fn flood_targets(&self, ingress: PortId) -> impl Iterator<Item = PortId> + '_ {
        let d = Decision {
            vlan: 0,
            src: None,
            dst: None,
            learn: LearnOutcome::NotLearned,
            action: Action::Flood {
                kind: FloodKind::Broadcast,
            },
            remote: None,
        };
        self.ports()
            .filter(move |p| self.egress_choice(ingress, &d, *p).is_ok())
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn port_limit(&self, id: PortId) -> usize {
        let max = self.port_policy(id).and_then(|p| p.max_learned);
        max.unwrap_or(self.settings.fdb_max_per_port) as usize
    }

    /// Decides what happens to `frame`, received on `ingress` at `now`: the
    /// verdict of [`Switch::plan`], for callers that need no more.
    pub fn decide(
        &mut self,
        ingress: PortId,
        frame: &[u8],
        now: Timestamp,
        mode: Mode,
    ) -> Decision {
        let mut plan = Plan::new();
        self.plan(ingress, frame, now, mode, &mut plan);
        plan.decision
    }

    /// Plans what happens to `frame`, received on `ingress` at `now`, into
    /// `plan` (reused: see [`Plan`]). With `Mode::Apply` the source is
    /// learned; with `Mode::Preview` nothing changes.
    pub fn plan(
        &mut self,
        ingress: PortId,
        frame: &[u8],
        now: Timestamp,
        mode: Mode,
        plan: &mut Plan,
    ) {
        self.plan_from(ingress, None, frame, now, mode, plan)
    }

    /// [`plan`](Self::plan) for a frame that a tunnel port decapsulated from
    /// a packet of VTEP `remote`.
    pub fn plan_from(
        &mut self,
        ingress: PortId,
        remote: Option<Ipv4Addr>,
        frame: &[u8],
        now: Timestamp,
        mode: Mode,
        plan: &mut Plan,
    ) {
        plan.reset(ingress, self.vlan_aware);
        let mut d = self.classify(ingress, remote, frame, now, mode, plan);
        self.plan_egress(ingress, &mut d, plan);
        plan.decision = d;
        if !self.mirrors.is_empty() {
            self.plan_mirrors(ingress, plan);
        }
    }

    /// Every port's part in normal switching: included with its shape, or
    /// (explained plans) excluded with the reason. `egress_choice` is the
    /// one rule; a flood nobody takes becomes a `NoEgress` drop.
    fn plan_egress(&self, ingress: PortId, d: &mut Decision, plan: &mut Plan) {
        let outer = plan.outer_tag;
        // A tunnel port gets the frame once per VTEP: the one the FDB entry
        // names, or (floods) every member of its flood list.
        let include = |plan: &mut Plan, p: PortId, encap: Encap| {
            let egress = |remote| Egress {
                port: p,
                encap,
                shape: Shape::for_encap(outer, encap, d.vlan),
                cause: Cause::Switched,
                remote,
            };
            match (self.tunnel(p), d.action) {
                (None, _) => plan.include(egress(None)),
                (Some(_), Action::Forward { .. }) => plan.include(egress(d.remote)),
                (Some(list), _) => {
                    for v in list.vteps() {
                        plan.include(egress(Some(v)));
                    }
                }
            }
        };
        match d.action {
            Action::Drop { .. } => {
                if plan.explains() {
                    for p in self.ports() {
                        plan.exclude(p, Exclusion::Dropped);
                    }
                }
            }
            Action::Forward { port } => {
                if let Ok(encap) = self.egress_choice(ingress, d, port) {
                    include(plan, port, encap);
                }
                if plan.explains() {
                    for p in self.ports().filter(|p| *p != port) {
                        let hairpin = self.port_policy(p).is_some_and(|x| x.hairpin);
                        let why = if self.is_blocked(p) {
                            Exclusion::Blocked
                        } else if p == ingress && !hairpin {
                            Exclusion::IngressPort
                        } else if self.is_mirror_output(p) {
                            Exclusion::MirrorOutput
                        } else {
                            Exclusion::NotDestination
                        };
                        plan.exclude(p, why);
                    }
                }
            }
            Action::Flood { .. } => {
                for p in self.ports() {
                    match self.egress_choice(ingress, d, p) {
                        Ok(encap) => include(plan, p, encap),
                        Err(why) => plan.exclude(p, why),
                    }
                }
                if plan.egress().is_empty() {
                    d.action = Action::Drop {
                        reason: DropReason::NoEgress,
                    };
                }
            }
        }
    }

    /// Mirror copies: of what passed the VLAN ingress check, also of frames
    /// switching then dropped; at most one copy per output port, written the
    /// way the output port's own VLAN mode says (as Open vSwitch does).
    fn plan_mirrors(&self, ingress: PortId, plan: &mut Plan) {
        let unmirrored = matches!(
            plan.drop_reason(),
            Some(
                DropReason::Runt
                    | DropReason::VlanTaggedOnAccess
                    | DropReason::VlanNotCarried
                    | DropReason::MirrorOutput
                    | DropReason::PortBlocked
            )
        );
        if unmirrored {
            return;
        }
        let (vlan, outer) = (plan.decision.vlan, plan.outer_tag);
        let switched = plan.egress().len();
        for (i, m) in self.mirrors.iter().enumerate() {
            if plan.egress()[switched..].iter().any(|e| e.port == m.output)
                || self.is_blocked(m.output)
            {
                continue;
            }
            let out = self.encap(m.output, vlan);
            let copy = if m.src.contains(&ingress) {
                Some((out, MirrorCause::Received))
            } else {
                plan.egress()[..switched]
                    .iter()
                    .find(|e| m.dst.contains(&e.port))
                    .map(|e| {
                        // A copy of a frame sent untagged carries no priority.
                        let enc = match (e.encap, out) {
                            (Encap::Untagged | Encap::Priority, Encap::Tagged) => Encap::TaggedPcp0,
                            _ => out,
                        };
                        (enc, MirrorCause::Sent { port: e.port })
                    })
            };
            if let Some((encap, cause)) = copy {
                plan.include(Egress {
                    port: m.output,
                    encap,
                    shape: Shape::for_encap(outer, encap, vlan),
                    cause: Cause::Mirror {
                        mirror: i as u16,
                        cause,
                    },
                    remote: None,
                });
                plan.unexclude(m.output);
            }
        }
    }

    /// The decision proper: ingress checks, VLAN classification, learning,
    /// lookup and verdict (a flood's port set comes after, in `plan_egress`).
    fn classify(
        &mut self,
        ingress: PortId,
        remote: Option<Ipv4Addr>,
        frame: &[u8],
        now: Timestamp,
        mode: Mode,
        plan: &mut Plan,
    ) -> Decision {
        let eth = match EthernetFrame::new_checked(frame) {
            Ok(e) => e,
            Err(_) => return Decision::dropped(DropReason::Runt),
        };
        plan.outer_tag = eth.vlan();
        let (src, dst) = (eth.src(), eth.dst());
        let Some(pol) = self.port_policy(ingress) else {
            return Decision::dropped(DropReason::NoEgress);
        };
        let mut decision = Decision {
            vlan: 0,
            src: Some(src),
            dst: Some(dst),
            learn: LearnOutcome::NotLearned,
            action: Action::Drop {
                reason: DropReason::NoEgress,
            },
            remote: None,
        };
        let drop = |mut d: Decision, reason| {
            d.action = Action::Drop { reason };
            d
        };
        if let Some(b) = self.blocked(ingress) {
            plan.protect = Some(ProtectNote::Blocked { reason: b.reason });
            return drop(decision, DropReason::PortBlocked);
        }
        let bpdu_guard = pol.bpdu_guard;
        let storm = [pol.storm_bcast, pol.storm_mcast, pol.storm_unknown];
        if self.is_mirror_output(ingress) {
            return drop(decision, DropReason::MirrorOutput);
        }
        // Before VLAN checks: a bridge behind an edge port is the fault
        // whatever VLAN its BPDUs come in.
        if bpdu_guard
            && dst == protect::STP_GROUP
            && protect::is_stp_llc(eth.ethertype().to_u16(), eth.payload())
        {
            if mode == Mode::Apply {
                let _ = self.block(ingress, BlockReason::BpduGuard, None, None, now);
            }
            plan.protect = Some(ProtectNote::BpduGuard);
            return drop(decision, DropReason::BpduGuard);
        }
        // VLAN-unaware: every frame is in VLAN 0 and tags pass untouched.
        if self.vlan_aware {
            // VID 4095 is switched like any other, as Open vSwitch does.
            let tag = eth.vlan().map(|t| t.vid);
            match self.mode_of(ingress).classify(tag) {
                Ok(v) => decision.vlan = v,
                Err(vlan::IngressRefusal::TaggedOnAccess) => {
                    return drop(decision, DropReason::VlanTaggedOnAccess)
                }
                Err(vlan::IngressRefusal::NotCarried) => {
                    return drop(decision, DropReason::VlanNotCarried)
                }
            }
        }
        let vlan = decision.vlan;
        if !src.is_valid_source() {
            return drop(decision, DropReason::InvalidSource);
        }
        if dst.reserved_group() == Some(0x01) {
            return drop(decision, DropReason::MacControl);
        }
        let (learning, port_mask) = (pol.learning, pol.group_fwd_mask);
        // A tunnel port that learns takes packets from any VTEP and adds it
        // to its flood list; one that does not hears only its list.
        let remote = remote.filter(|_| self.tunnel(ingress).is_some());
        if let (Some(vtep), Some(list)) = (remote, self.tunnel_mut(ingress)) {
            if learning {
                if mode == Mode::Apply {
                    list.learn(vtep, now);
                }
            } else if !list.contains(vtep) {
                return drop(decision, DropReason::VxlanUnknownVtep);
            }
        }

        if learning {
            let limit = self.port_limit(ingress);
            decision.learn = self.fdb.learn_from(
                FdbKey::new(vlan, src),
                ingress,
                remote,
                limit,
                now,
                mode == Mode::Apply,
            );
            if let (LearnOutcome::Moved { from }, Mode::Apply) = (decision.learn, mode) {
                if let Some(d) = self.on_move(ingress, from, FdbKey::new(vlan, src), now, plan) {
                    return drop(decision, d);
                }
            }
        }

        decision.action = if let Some(group) = dst.reserved_group() {
            let mask = self.settings.group_fwd_mask | port_mask;
            if group == 0 || mask & (1 << group) != 0 {
                Action::Flood {
                    kind: FloodKind::Multicast,
                }
            } else {
                Action::Drop {
                    reason: DropReason::ReservedGroup,
                }
            }
        } else if dst.is_broadcast() {
            Action::Flood {
                kind: FloodKind::Broadcast,
            }
        } else if dst.is_multicast() {
            Action::Flood {
                kind: FloodKind::Multicast,
            }
        } else {
            let found = self.fdb.lookup(FdbKey::new(vlan, dst), now);
            plan.lookup = match found {
                Some(e) => Lookup::Hit(e),
                None => Lookup::Miss,
            };
            match found {
                Some(e) if e.port == ingress => {
                    let p = self.port_policy(ingress);
                    if p.is_some_and(|p| p.isolated && p.hairpin) {
                        // Isolation wins over hairpin, as on the bridge.
                        Action::Drop {
                            reason: DropReason::Isolated,
                        }
                    } else if p.is_some_and(|p| p.hairpin) {
                        Action::Forward { port: ingress }
                    } else {
                        Action::Drop {
                            reason: DropReason::SamePort,
                        }
                    }
                }
                Some(e) if self.is_blocked(e.port) => Action::Drop {
                    reason: DropReason::PortBlocked,
                },
                // An entry whose port no longer carries the VLAN (its
                // configuration changed) is as good as unknown.
                Some(e) if !self.carries(e.port, vlan) || self.is_mirror_output(e.port) => {
                    Action::Flood {
                        kind: FloodKind::UnknownUnicast,
                    }
                }
                Some(e) => {
                    let both_isolated = self.port_policy(ingress).is_some_and(|p| p.isolated)
                        && self.port_policy(e.port).is_some_and(|p| p.isolated);
                    if both_isolated {
                        Action::Drop {
                            reason: DropReason::Isolated,
                        }
                    } else {
                        decision.remote = e.remote;
                        Action::Forward { port: e.port }
                    }
                }
                None => Action::Flood {
                    kind: FloodKind::UnknownUnicast,
                },
            }
        };
        if let Action::Flood { kind } = decision.action {
            let (rate, reason) = match kind {
                FloodKind::Broadcast => (storm[0], DropReason::StormBroadcast),
                FloodKind::Multicast => (storm[1], DropReason::StormMulticast),
                FloodKind::UnknownUnicast => (storm[2], DropReason::StormUnknownUnicast),
            };
            let guard = &mut self.guards[ingress.index()];
            if !guard.storm_pass(kind, rate, now, mode == Mode::Apply) {
                plan.protect = Some(ProtectNote::Storm {
                    kind,
                    limit_pps: rate,
                });
                decision.action = Action::Drop { reason };
            }
        }
        decision
    }

    /// A learned MAC moved from `from` to `ingress`: counts it toward a
    /// flap and, past the threshold, reports it in the plan and (loop
    /// protection `block`) blocks `ingress`, the port it moved to. Returns
    /// the drop reason when the frame's port is now blocked.
    fn on_move(
        &mut self,
        ingress: PortId,
        from: PortId,
        key: FdbKey,
        now: Timestamp,
        plan: &mut Plan,
    ) -> Option<DropReason> {
        let mode = self.settings.loop_protect;
        if mode == LoopProtect::Off {
            return None;
        }
        let moves = self.flaps.on_move(key, now, self.settings.flap_threshold)?;
        self.protect_counters.mac_flaps += 1;
        let blocked = mode == LoopProtect::Block;
        plan.protect = Some(ProtectNote::Flap {
            mac: key.mac,
            vlan: key.vlan,
            from,
            moves,
            blocked,
        });
        if !blocked {
            return None;
        }
        let _ = self.block(
            ingress,
            BlockReason::Loop,
            Some((key.mac, key.vlan)),
            Some(from),
            now,
        );
        // The entry now names the blocked port: forget it, so that the
        // station is learned again where it really is.
        let _ = self.fdb.remove(key);
        Some(DropReason::PortBlocked)
    }
}

#[cfg(test)]
mod tests;
