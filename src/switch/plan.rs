//! The plan for one received frame: everything the dataplane will do with
//! it, as one value.
//!
//! `Switch::plan` fills a caller-owned [`Plan`]: the decision (VLAN,
//! learning outcome, verdict), what the FDB lookup found, every egress port
//! with the exact shape the frame leaves it in, the mirror copies, and, when
//! asked ([`Plan::explained`]), every port that does *not* get the frame
//! with the reason. The dataplane executes the included ports; `trace` and
//! `trace --live` print the same value; the fast path offloads the plans
//! [`Plan::single_egress`] recognises. Nothing else decides where a
//! frame goes or how it is tagged.
//!
//! A `Plan` is reused frame after frame: its lists keep their capacity, so
//! once they have grown to the number of ports, planning allocates nothing.

use super::{Decision, DropReason, Encap, FdbEntry, PortId};
use crate::wire::VlanTag;

/// The bytes a frame leaves one port as: the VLAN re-shaping worked out from
/// the port's VLAN mode and the frame's own outer tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Byte for byte as received.
    AsReceived,
    /// Without its outer tag.
    Untagged,
    /// With `tag` as its outer tag: replacing the received outer tag, or
    /// (`pushed`) inserted in front of the EtherType of an untagged frame.
    Tagged { tag: VlanTag, pushed: bool },
}

impl Shape {
    /// How a frame whose outer tag is `outer` must change to leave as `enc`
    /// says for a frame of `vlan`.
    pub fn for_encap(outer: Option<VlanTag>, enc: Encap, vlan: u16) -> Shape {
        // A tag the switch writes carries no DEI, as on Open vSwitch; a
        // re-tagged frame keeps its TPID and priority.
        let fresh = |pcp_from: Option<VlanTag>| match pcp_from {
            Some(t) => VlanTag {
                vid: vlan,
                dei: false,
                ..t
            },
            None => VlanTag {
                tpid: 0x8100,
                pcp: 0,
                dei: false,
                vid: vlan,
            },
        };
        match (enc, outer) {
            (Encap::AsReceived, _) | (Encap::Untagged, None) | (Encap::Priority, None) => {
                Shape::AsReceived
            }
            (Encap::Priority, Some(t)) if t.pcp != 0 => Shape::AsReceived,
            (Encap::Untagged | Encap::Priority, Some(_)) => Shape::Untagged,
            (Encap::Tagged, Some(t)) if t.vid == vlan => Shape::AsReceived,
            (Encap::Tagged, Some(t)) => Shape::Tagged {
                tag: fresh(Some(t)),
                pushed: false,
            },
            (Encap::Tagged, None) => Shape::Tagged {
                tag: fresh(None),
                pushed: true,
            },
            (Encap::TaggedPcp0, t) => Shape::Tagged {
                tag: fresh(None),
                pushed: t.is_none(),
            },
        }
    }

    pub fn is_unchanged(self) -> bool {
        self == Shape::AsReceived
    }
}

/// Why a port gets the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Normal switching: the decision's forward or flood.
    Switched,
    /// A copy for mirror number `mirror` (its index in `Switch::mirrors()`
    /// when the plan was made), because of what `cause` says.
    Mirror { mirror: u16, cause: MirrorCause },
}

/// What made a mirror copy a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorCause {
    /// The ingress port is one of the mirror's sources.
    Received,
    /// The frame is sent on `port`, one of the mirror's destinations.
    Sent { port: PortId },
}

/// One port the frame leaves through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Egress {
    pub port: PortId,
    /// What the port's VLAN mode asks for.
    pub encap: Encap,
    /// What that means for this frame's bytes.
    pub shape: Shape,
    pub cause: Cause,
    /// On a tunnel port: the remote VTEP this copy is encapsulated toward
    /// (a flood to a tunnel port is one egress per flood-list member).
    pub remote: Option<std::net::Ipv4Addr>,
}

/// What the destination lookup in the FDB found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// No lookup: the frame was dropped first, or its destination is a
    /// group address (flooded without one).
    NotDone,
    /// The destination is not in the FDB (or its entry has expired).
    Miss,
    /// The entry found, before any policy applied to it.
    Hit(FdbEntry),
}

/// Everything the switch decided for one received frame. See the module
/// documentation.
#[derive(Debug, Clone)]
pub struct Plan {
    pub ingress: PortId,
    pub decision: Decision,
    pub lookup: Lookup,
    /// Whether the switch classified the frame into a VLAN (some port has a
    /// VLAN mode) or passed tags through untouched in VLAN 0.
    pub vlan_aware: bool,
    /// The frame's outer tag as received, if it has one.
    pub outer_tag: Option<VlanTag>,
    egress: Vec<Egress>,
    /// Ports that do not get the frame, with why; filled only when
    /// `explain` is set.
    excluded: Vec<(PortId, super::Exclusion)>,
    explain: bool,
}

impl Default for Plan {
    fn default() -> Self {
        Plan::new()
    }
}

impl Plan {
    /// A plan for the dataplane: included ports only.
    pub fn new() -> Plan {
        Plan {
            ingress: PortId(0),
            decision: Decision::dropped(DropReason::NoEgress),
            lookup: Lookup::NotDone,
            vlan_aware: false,
            outer_tag: None,
            egress: Vec::new(),
            excluded: Vec::new(),
            explain: false,
        }
    }

    /// A plan that also records every excluded port and its reason (trace).
    pub fn explained() -> Plan {
        Plan {
            explain: true,
            ..Plan::new()
        }
    }

    /// Whether the next `Switch::plan` records exclusions.
    pub fn set_explain(&mut self, on: bool) {
        self.explain = on;
    }

    pub fn explains(&self) -> bool {
        self.explain
    }

    pub(super) fn reset(&mut self, ingress: PortId, vlan_aware: bool) {
        self.ingress = ingress;
        self.lookup = Lookup::NotDone;
        self.vlan_aware = vlan_aware;
        self.outer_tag = None;
        self.egress.clear();
        self.excluded.clear();
    }

    pub(super) fn include(&mut self, e: Egress) {
        self.egress.push(e);
    }

    pub(super) fn exclude(&mut self, port: PortId, why: super::Exclusion) {
        if self.explain {
            self.excluded.push((port, why));
        }
    }

    /// A mirror copy goes to `port` after all: it is no longer excluded.
    pub(super) fn unexclude(&mut self, port: PortId) {
        if self.explain {
            self.excluded.retain(|(p, _)| *p != port);
        }
    }

    /// Every port the frame leaves through, switched ports first (in port
    /// order), then mirror copies. A port appears at most once.
    pub fn egress(&self) -> &[Egress] {
        &self.egress
    }

    /// Ports that do not get the frame, with why (only in explained plans).
    pub fn excluded(&self) -> &[(PortId, super::Exclusion)] {
        &self.excluded
    }

    /// The mirror copies among `egress()`.
    pub fn mirror_copies(&self) -> impl Iterator<Item = &Egress> {
        self.egress
            .iter()
            .filter(|e| matches!(e.cause, Cause::Mirror { .. }))
    }

    /// Why the frame is dropped, if it is.
    pub fn drop_reason(&self) -> Option<DropReason> {
        match self.decision.action {
            super::Action::Drop { reason } => Some(reason),
            _ => None,
        }
    }

    /// For the fast path: the one egress when the whole plan is "known
    /// unicast: send the frame out of exactly this one port, with no mirror
    /// copy", whatever its shape there. Floods never qualify, even to a
    /// single port (their port set depends on more than the destination),
    /// and neither does a copy toward a VTEP (it needs encapsulating).
    /// Learning is not part of the answer: the caller decides whether the
    /// learning outcome lets a later frame skip user space.
    pub fn single_egress(&self) -> Option<&Egress> {
        if !matches!(self.decision.action, super::Action::Forward { .. }) {
            return None;
        }
        match self.egress.as_slice() {
            [e] if e.cause == Cause::Switched && e.remote.is_none() => Some(e),
            _ => None,
        }
    }

    /// [`Plan::single_egress`] with the frame byte for byte unchanged.
    pub fn single_unchanged(&self) -> Option<PortId> {
        self.single_egress()
            .filter(|e| e.shape.is_unchanged())
            .map(|e| e.port)
    }
}
