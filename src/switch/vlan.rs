//! VLANs: a port's VLAN mode (Open vSwitch's vocabulary: access, trunk,
//! native-untagged, native-tagged), which VLAN a received frame belongs to,
//! whether a port carries a VLAN, and whether a frame leaves it tagged.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// VLAN ids 0..=4095 as a bit set (boxed: 512 bytes would bloat every
/// message that carries one).
#[derive(Clone, PartialEq, Eq)]
pub struct VlanSet(Box<[u64; 64]>);

impl VlanSet {
    pub fn new() -> VlanSet {
        VlanSet(Box::new([0; 64]))
    }

    pub fn insert(&mut self, vid: u16) {
        let v = (vid & 0x0fff) as usize;
        self.0[v / 64] |= 1 << (v % 64);
    }

    pub fn contains(&self, vid: u16) -> bool {
        let v = (vid & 0x0fff) as usize;
        self.0[v / 64] & (1 << (v % 64)) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0u16..4096).filter(|v| self.contains(*v))
    }
}

impl Default for VlanSet {
    fn default() -> Self {
        VlanSet::new()
    }
}

impl fmt::Debug for VlanSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// "10,20,30-40": ranges collapsed.
impl fmt::Display for VlanSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut it = self.iter().peekable();
        while let Some(start) = it.next() {
            let mut end = start;
            while it.peek() == Some(&(end + 1)) {
                end = it.next().unwrap();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if end == start {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

/// Why a VLAN list does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid VLAN list {input:?}: {why} (expected ids 0-4095 like 10,20,30-40)")]
pub struct VlanSetParseError {
    pub input: String,
    pub why: String,
}

impl FromStr for VlanSet {
    type Err = VlanSetParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: String| VlanSetParseError {
            input: s.to_string(),
            why,
        };
        let mut set = VlanSet::new();
        for part in s.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(err("empty item".into()));
            }
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let num = |x: &str| -> Result<u16, VlanSetParseError> {
                let v: u16 = x
                    .parse()
                    .map_err(|_| err(format!("{x:?} is not a number")))?;
                if v > 4095 {
                    return Err(err(format!("{v} is above 4095")));
                }
                Ok(v)
            };
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(err(format!("range {a}-{b} runs backwards")));
            }
            for v in a..=b {
                set.insert(v);
            }
        }
        Ok(set)
    }
}

impl Serialize for VlanSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VlanSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            List(Vec<u16>),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
            Raw::List(l) => {
                let mut s = VlanSet::new();
                for v in l {
                    if v > 4095 {
                        return Err(serde::de::Error::custom(format!("VLAN {v} is above 4095")));
                    }
                    s.insert(v);
                }
                Ok(s)
            }
        }
    }
}

/// A port's VLAN configuration. `trunks: None` means every VLAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum VlanMode {
    /// One VLAN; frames leave untagged; tagged frames arriving are dropped.
    Access { tag: u16 },
    /// The VLANs in `trunks` (all if absent), tagged; untagged frames are VLAN 0.
    Trunk {
        #[serde(default)]
        trunks: Option<VlanSet>,
    },
    /// A trunk whose untagged frames are VLAN `tag`, which leaves untagged.
    NativeUntagged {
        tag: u16,
        #[serde(default)]
        trunks: Option<VlanSet>,
    },
    /// A trunk whose untagged frames are VLAN `tag`, which leaves tagged.
    NativeTagged {
        tag: u16,
        #[serde(default)]
        trunks: Option<VlanSet>,
    },
}

/// Why a received frame has no VLAN on its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngressRefusal {
    /// A tagged frame (VID != 0) on an access port.
    TaggedOnAccess,
    /// The frame's VLAN is not one the port carries.
    NotCarried,
}

/// How a frame leaves a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encap {
    /// Unchanged from how it arrived (VLAN-unaware switch).
    AsReceived,
    Untagged,
    /// With an 802.1Q header for the frame's VLAN (keeping the priority of
    /// the tag it arrived with, if any).
    Tagged,
    /// Tagged with priority 0: a mirror's copy of a frame that was sent
    /// untagged, re-tagged for the mirror port.
    TaggedPcp0,
    /// VLAN 0 on a trunk: untagged, unless it arrived with a priority tag
    /// carrying a non-zero priority, which is kept (as Open vSwitch does).
    Priority,
}

impl VlanMode {
    pub fn name(&self) -> &'static str {
        match self {
            VlanMode::Access { .. } => "access",
            VlanMode::Trunk { .. } => "trunk",
            VlanMode::NativeUntagged { .. } => "native-untagged",
            VlanMode::NativeTagged { .. } => "native-tagged",
        }
    }

    /// Checks the configuration itself.
    pub fn validate(&self) -> Result<(), String> {
        let tag = match self {
            VlanMode::Access { tag }
            | VlanMode::NativeUntagged { tag, .. }
            | VlanMode::NativeTagged { tag, .. } => Some(*tag),
            VlanMode::Trunk { .. } => None,
        };
        match tag {
            Some(t) if t > 4094 => Err(format!("tag {t} is out of range (0..=4094)")),
            _ => Ok(()),
        }
    }

    /// The VLAN a frame received on this port belongs to: `tag` is the
    /// frame's outer VID, `None` when untagged. A priority tag (VID 0)
    /// counts as untagged, as in 802.1Q.
    pub fn classify(&self, tag: Option<u16>) -> Result<u16, IngressRefusal> {
        let tag = tag.filter(|v| *v != 0);
        let vlan = match (self, tag) {
            (VlanMode::Access { tag: t }, None) => *t,
            (VlanMode::Access { .. }, Some(_)) => return Err(IngressRefusal::TaggedOnAccess),
            (VlanMode::Trunk { .. }, None) => 0,
            (
                VlanMode::NativeUntagged { tag: t, .. } | VlanMode::NativeTagged { tag: t, .. },
                None,
            ) => *t,
            (_, Some(v)) => v,
        };
        if self.carries(vlan) {
            Ok(vlan)
        } else {
            Err(IngressRefusal::NotCarried)
        }
    }

    /// Whether frames of `vlan` may enter or leave through this port.
    pub fn carries(&self, vlan: u16) -> bool {
        match self {
            VlanMode::Access { tag } => vlan == *tag,
            VlanMode::Trunk { trunks } => trunks.as_ref().is_none_or(|t| t.contains(vlan)),
            // A native port's untagged frames are its native VLAN, so
            // VLAN 0 never enters or leaves it.
            VlanMode::NativeUntagged { tag, trunks } | VlanMode::NativeTagged { tag, trunks } => {
                vlan == *tag || (vlan != 0 && trunks.as_ref().is_none_or(|t| t.contains(vlan)))
            }
        }
    }

    /// How a frame of `vlan` leaves this port.
    pub fn encap(&self, vlan: u16) -> Encap {
        match self {
            VlanMode::Access { .. } => Encap::Untagged,
            VlanMode::Trunk { .. } if vlan == 0 => Encap::Priority,
            VlanMode::Trunk { .. } => Encap::Tagged,
            VlanMode::NativeUntagged { tag, .. } if vlan == *tag => Encap::Untagged,
            VlanMode::NativeUntagged { .. } => Encap::Tagged,
            VlanMode::NativeTagged { .. } if vlan == 0 => Encap::Untagged,
            VlanMode::NativeTagged { .. } => Encap::Tagged,
        }
    }
}

/// A port with no VLAN mode in a VLAN-aware switch: a trunk of every VLAN,
/// as an Open vSwitch port with no VLAN configuration.
pub const DEFAULT_MODE: VlanMode = VlanMode::Trunk { trunks: None };

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> VlanSet {
        s.parse().unwrap()
    }

    #[test]
    fn vlan_sets_parse_print_and_reject() {
        let s = set("10, 20,30-33");
        assert!(s.contains(10) && s.contains(31) && !s.contains(34));
        assert_eq!(s.to_string(), "10,20,30-33");
        for bad in ["", "10,", "4096", "x", "20-10"] {
            assert!(bad.parse::<VlanSet>().is_err(), "{bad}");
        }
        let j: VlanSet = serde_json::from_str("[10, 20]").unwrap();
        assert_eq!(j.to_string(), "10,20");
        let j: VlanSet = serde_json::from_str("\"5-6\"").unwrap();
        assert_eq!(j.to_string(), "5-6");
    }

    #[test]
    fn access_ports() {
        let m = VlanMode::Access { tag: 10 };
        assert_eq!(m.classify(None), Ok(10));
        assert_eq!(
            m.classify(Some(0)),
            Ok(10),
            "priority tag counts as untagged"
        );
        assert_eq!(m.classify(Some(10)), Err(IngressRefusal::TaggedOnAccess));
        assert!(m.carries(10) && !m.carries(20));
        assert_eq!(m.encap(10), Encap::Untagged);
    }

    #[test]
    fn trunks() {
        let all = VlanMode::Trunk { trunks: None };
        assert_eq!(all.classify(None), Ok(0));
        assert_eq!(all.classify(Some(30)), Ok(30));
        assert_eq!(all.encap(30), Encap::Tagged);
        assert_eq!(all.encap(0), Encap::Priority);
        let some = VlanMode::Trunk {
            trunks: Some(set("10,20")),
        };
        assert_eq!(some.classify(Some(30)), Err(IngressRefusal::NotCarried));
        assert_eq!(
            some.classify(None),
            Err(IngressRefusal::NotCarried),
            "no VLAN 0"
        );
        assert!(some.carries(20) && !some.carries(0));
    }

    #[test]
    fn native_vlans() {
        let nu = VlanMode::NativeUntagged {
            tag: 10,
            trunks: Some(set("20")),
        };
        assert_eq!(nu.classify(None), Ok(10));
        assert_eq!(nu.classify(Some(20)), Ok(20));
        assert_eq!(nu.classify(Some(10)), Ok(10));
        assert_eq!(nu.classify(Some(30)), Err(IngressRefusal::NotCarried));
        assert_eq!(nu.encap(10), Encap::Untagged);
        assert_eq!(nu.encap(20), Encap::Tagged);
        let nt = VlanMode::NativeTagged {
            tag: 10,
            trunks: None,
        };
        assert_eq!(nt.encap(10), Encap::Tagged);
        assert!(nt.carries(999));
        assert!(!nt.carries(0), "native ports never carry VLAN 0");
    }

    #[test]
    fn modes_serialize_in_ovs_words() {
        let m = VlanMode::NativeUntagged {
            tag: 10,
            trunks: Some(set("10,20")),
        };
        let j = serde_json::to_string(&m).unwrap();
        assert_eq!(j, r#"{"mode":"native-untagged","tag":10,"trunks":"10,20"}"#);
        assert_eq!(serde_json::from_str::<VlanMode>(&j).unwrap(), m);
        assert!(VlanMode::Access { tag: 4095 }.validate().is_err());
    }
}
