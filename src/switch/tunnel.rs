//! The flood list of a tunnel port: the remote tunnel endpoints (VTEPs) a
//! flooded frame is replicated to (head-end replication), and where each
//! came from.
//!
//! A VTEP is on the list because the operator named it (`--remote`, the
//! Linux vxlan device's all-zeros FDB entries), because an EVPN type-3 route
//! announced it, or, on a port that learns, because VXLAN packets came from
//! it; learned members age like learned MACs. A port that does not learn
//! accepts packets only from members of its list (as an Open vSwitch tunnel
//! port with fixed remotes does).

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::Serialize;

use super::time::Timestamp;

/// Why a VTEP is on a flood list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VtepOrigin {
    /// Named by the operator.
    Static,
    /// Announced by an EVPN inclusive-multicast (type-3) route.
    Evpn,
    /// VXLAN packets came from it (ports that learn).
    Learned,
}

/// One VTEP of a flood list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FloodMember {
    pub vtep: Ipv4Addr,
    pub static_: bool,
    pub evpn: bool,
    /// When a packet last came from it, if it was learned.
    #[serde(skip)]
    pub learned: Option<Timestamp>,
}

impl FloodMember {
    fn origins_empty(&self) -> bool {
        !self.static_ && !self.evpn && self.learned.is_none()
    }

    /// Where it came from, for `port show`.
    pub fn origins(&self) -> Vec<VtepOrigin> {
        let mut v = Vec::new();
        if self.static_ {
            v.push(VtepOrigin::Static);
        }
        if self.evpn {
            v.push(VtepOrigin::Evpn);
        }
        if self.learned.is_some() {
            v.push(VtepOrigin::Learned);
        }
        v
    }
}

/// A tunnel port's flood list. Small (a VTEP per remote host), so a vector
/// searched linearly beats a map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FloodList {
    members: Vec<FloodMember>,
}

impl FloodList {
    pub fn new(static_remotes: &[Ipv4Addr]) -> FloodList {
        let mut l = FloodList::default();
        for &v in static_remotes {
            l.add(v, VtepOrigin::Static, Timestamp(0));
        }
        l
    }

    /// The VTEPs a flooded frame goes to.
    pub fn vteps(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.members.iter().map(|m| m.vtep)
    }

    pub fn members(&self) -> &[FloodMember] {
        &self.members
    }

    pub fn contains(&self, vtep: Ipv4Addr) -> bool {
        self.members.iter().any(|m| m.vtep == vtep)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Adds `vtep` for `origin`; true if it was not on the list before.
    pub fn add(&mut self, vtep: Ipv4Addr, origin: VtepOrigin, now: Timestamp) -> bool {
        let i = match self.members.iter().position(|m| m.vtep == vtep) {
            Some(i) => i,
            None => {
                self.members.push(FloodMember {
                    vtep,
                    static_: false,
                    evpn: false,
                    learned: None,
                });
                self.members.len() - 1
            }
        };
        let m = &mut self.members[i];
        let was_new = m.origins_empty();
        match origin {
            VtepOrigin::Static => m.static_ = true,
            VtepOrigin::Evpn => m.evpn = true,
            VtepOrigin::Learned => m.learned = Some(now),
        }
        was_new
    }

    /// Withdraws `origin`'s claim on `vtep`; the VTEP leaves the list when
    /// nothing else keeps it. True if it left.
    pub fn remove(&mut self, vtep: Ipv4Addr, origin: VtepOrigin) -> bool {
        let Some(i) = self.members.iter().position(|m| m.vtep == vtep) else {
            return false;
        };
        let m = &mut self.members[i];
        match origin {
            VtepOrigin::Static => m.static_ = false,
            VtepOrigin::Evpn => m.evpn = false,
            VtepOrigin::Learned => m.learned = None,
        }
        if m.origins_empty() {
            self.members.remove(i);
            true
        } else {
            false
        }
    }

    /// A packet came from `vtep` at `now` (a port that learns).
    pub fn learn(&mut self, vtep: Ipv4Addr, now: Timestamp) {
        if let Some(m) = self.members.iter_mut().find(|m| m.vtep == vtep) {
            if m.learned.is_some() || (!m.static_ && !m.evpn) {
                m.learned = Some(now);
            }
            return;
        }
        self.add(vtep, VtepOrigin::Learned, now);
    }

    /// Forgets learned claims older than `ageing`; returns how many VTEPs left.
    pub fn age(&mut self, now: Timestamp, ageing: Duration) -> usize {
        let before = self.members.len();
        for m in &mut self.members {
            if m.learned.is_some_and(|t| now.since(t) >= ageing) {
                m.learned = None;
            }
        }
        self.members.retain(|m| !m.origins_empty());
        before - self.members.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, n)
    }

    #[test]
    fn members_stay_while_any_origin_claims_them() {
        let mut l = FloodList::new(&[ip(1)]);
        assert!(l.add(ip(2), VtepOrigin::Evpn, Timestamp(0)));
        assert!(!l.add(ip(1), VtepOrigin::Evpn, Timestamp(0)));
        assert_eq!(l.vteps().collect::<Vec<_>>(), vec![ip(1), ip(2)]);
        assert!(!l.remove(ip(1), VtepOrigin::Evpn), "still static");
        assert!(l.contains(ip(1)));
        assert!(l.remove(ip(2), VtepOrigin::Evpn));
        assert!(!l.contains(ip(2)));
        assert!(!l.remove(ip(9), VtepOrigin::Static));
    }

    #[test]
    fn learned_members_age_and_configured_ones_do_not() {
        let mut l = FloodList::new(&[ip(1)]);
        l.learn(ip(1), Timestamp::from_secs(1));
        l.learn(ip(3), Timestamp::from_secs(1));
        assert_eq!(l.len(), 2);
        assert_eq!(l.members()[0].origins(), vec![VtepOrigin::Static]);
        l.learn(ip(3), Timestamp::from_secs(250));
        let ageing = Duration::from_secs(300);
        assert_eq!(
            l.age(Timestamp::from_secs(400), ageing),
            0,
            "refreshed at 250"
        );
        assert_eq!(l.age(Timestamp::from_secs(551), ageing), 1);
        assert_eq!(l.vteps().collect::<Vec<_>>(), vec![ip(1)]);
    }
}
