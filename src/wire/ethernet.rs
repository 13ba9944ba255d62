//! `EthernetFrame`: a typed view over an Ethernet II frame, with its optional
//! outer VLAN tag (802.1Q C-tag or 802.1ad S-tag).

use super::{MacAddr, Truncated};

/// Destination + source + EtherType.
pub const ETH_HEADER_LEN: usize = 14;
/// One 802.1Q / 802.1ad tag: TPID + TCI.
pub const VLAN_TAG_LEN: usize = 4;

mod field {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const TCI: Range<usize> = 14..16;
    pub const INNER_ETHERTYPE: Range<usize> = 16..18;
}

/// An EtherType; unknown values are kept, not rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    Ipv4,
    Arp,
    Ipv6,
    /// 802.1Q customer VLAN tag (0x8100).
    Vlan,
    /// 802.1ad service VLAN tag (0x88a8).
    QinQ,
    /// IEEE 802.3x MAC control (PAUSE), 0x8808.
    MacControl,
    Lldp,
    Unknown(u16),
}

impl EtherType {
    pub fn from_u16(v: u16) -> EtherType {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            0x8100 => EtherType::Vlan,
            0x88a8 => EtherType::QinQ,
            0x8808 => EtherType::MacControl,
            0x88cc => EtherType::Lldp,
            other => EtherType::Unknown(other),
        }
    }

    pub fn to_u16(self) -> u16 {
        match self {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Vlan => 0x8100,
            EtherType::QinQ => 0x88a8,
            EtherType::MacControl => 0x8808,
            EtherType::Lldp => 0x88cc,
            EtherType::Unknown(v) => v,
        }
    }

    /// A tag protocol identifier the switch understands as a VLAN tag.
    pub fn is_vlan_tpid(self) -> bool {
        matches!(self, EtherType::Vlan | EtherType::QinQ)
    }
}

/// A decoded VLAN tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanTag {
    /// 0x8100 or 0x88a8.
    pub tpid: u16,
    /// Priority code point (3 bits).
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier (12 bits); 0 means priority-tagged.
    pub vid: u16,
}

impl VlanTag {
    pub fn from_tci(tpid: u16, tci: u16) -> VlanTag {
        VlanTag {
            tpid,
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        }
    }

    pub fn tci(&self) -> u16 {
        ((self.pcp as u16 & 0x7) << 13) | ((self.dei as u16) << 12) | (self.vid & 0x0fff)
    }

    /// The four bytes of the tag as they appear on the wire.
    pub fn to_bytes(&self) -> [u8; 4] {
        let t = self.tpid.to_be_bytes();
        let c = self.tci().to_be_bytes();
        [t[0], t[1], c[0], c[1]]
    }
}

/// A read-only (or, with `T: AsMut<[u8]>`, writable) view of an Ethernet frame.
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Validates that `buf` holds at least an Ethernet header, and the whole
    /// tag when the EtherType announces one.
    pub fn new_checked(buf: T) -> Result<Self, Truncated> {
        let have = buf.as_ref().len();
        if have < ETH_HEADER_LEN {
            return Err(Truncated {
                need: ETH_HEADER_LEN,
                have,
            });
        }
        let frame = EthernetFrame { buf };
        if frame.outer_ethertype().is_vlan_tpid() && have < ETH_HEADER_LEN + VLAN_TAG_LEN {
            return Err(Truncated {
                need: ETH_HEADER_LEN + VLAN_TAG_LEN,
                have,
            });
        }
        Ok(frame)
    }

    pub fn into_inner(self) -> T {
        self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.as_ref().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn be16(&self, r: std::ops::Range<usize>) -> u16 {
        let b = &self.buf.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    pub fn dst(&self) -> MacAddr {
        let b = &self.buf.as_ref()[field::DST];
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    pub fn src(&self) -> MacAddr {
        let b = &self.buf.as_ref()[field::SRC];
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// The EtherType right after the source address (a TPID when tagged).
    pub fn outer_ethertype(&self) -> EtherType {
        EtherType::from_u16(self.be16(field::ETHERTYPE))
    }

    /// The outer VLAN tag, if the frame carries one.
    pub fn vlan(&self) -> Option<VlanTag> {
        let tpid = self.outer_ethertype();
        if tpid.is_vlan_tpid() {
            Some(VlanTag::from_tci(tpid.to_u16(), self.be16(field::TCI)))
        } else {
            None
        }
    }

    /// The EtherType of the payload behind the outer tag (if any).
    pub fn ethertype(&self) -> EtherType {
        if self.outer_ethertype().is_vlan_tpid() {
            EtherType::from_u16(self.be16(field::INNER_ETHERTYPE))
        } else {
            self.outer_ethertype()
        }
    }

    /// Everything after the Ethernet header and the outer tag.
    pub fn payload(&self) -> &[u8] {
        let off = if self.vlan().is_some() {
            ETH_HEADER_LEN + VLAN_TAG_LEN
        } else {
            ETH_HEADER_LEN
        };
        &self.buf.as_ref()[off..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.buf.as_mut()[field::DST].copy_from_slice(&mac.0);
    }

    pub fn set_src(&mut self, mac: MacAddr) {
        self.buf.as_mut()[field::SRC].copy_from_slice(&mac.0);
    }

    pub fn set_outer_ethertype(&mut self, et: EtherType) {
        self.buf.as_mut()[field::ETHERTYPE].copy_from_slice(&et.to_u16().to_be_bytes());
    }
}

/// Writes a minimal Ethernet header into `out[..14]`; used by tests, the
/// trace command and traffic generators. Returns `Truncated` if `out` is short.
pub fn write_header(
    out: &mut [u8],
    dst: MacAddr,
    src: MacAddr,
    ethertype: u16,
) -> Result<(), Truncated> {
    if out.len() < ETH_HEADER_LEN {
        return Err(Truncated {
            need: ETH_HEADER_LEN,
            have: out.len(),
        });
    }
    out[field::DST].copy_from_slice(&dst.0);
    out[field::SRC].copy_from_slice(&src.0);
    out[field::ETHERTYPE].copy_from_slice(&ethertype.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(bytes: &[u8]) -> Result<EthernetFrame<&[u8]>, Truncated> {
        EthernetFrame::new_checked(bytes)
    }

    #[test]
    fn rejects_runts() {
        assert_eq!(
            frame(&[0u8; 13]).unwrap_err(),
            Truncated { need: 14, have: 13 }
        );
        let mut tagged = [0u8; 16];
        tagged[12] = 0x81;
        assert_eq!(
            frame(&tagged).unwrap_err(),
            Truncated { need: 18, have: 16 }
        );
    }

    #[test]
    fn reads_untagged() {
        let mut b = [0u8; 60];
        write_header(
            &mut b,
            MacAddr::BROADCAST,
            "02:00:00:00:00:01".parse().unwrap(),
            0x0806,
        )
        .unwrap();
        let f = frame(&b).unwrap();
        assert!(f.dst().is_broadcast());
        assert_eq!(f.src().to_string(), "02:00:00:00:00:01");
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(f.vlan(), None);
        assert_eq!(f.payload().len(), 46);
    }

    #[test]
    fn reads_tags() {
        let mut b = [0u8; 64];
        b[12..14].copy_from_slice(&0x88a8u16.to_be_bytes());
        b[14..16].copy_from_slice(&0xb00au16.to_be_bytes()); // pcp 5, dei 1, vid 10
        b[16..18].copy_from_slice(&0x8100u16.to_be_bytes());
        let f = frame(&b).unwrap();
        let tag = f.vlan().unwrap();
        assert_eq!((tag.tpid, tag.pcp, tag.dei, tag.vid), (0x88a8, 5, true, 10));
        assert_eq!(tag.tci(), 0xb00a);
        assert_eq!(tag.to_bytes(), [0x88, 0xa8, 0xb0, 0x0a]);
        assert_eq!(f.ethertype(), EtherType::Vlan);
        assert_eq!(EtherType::from_u16(0x1234).to_u16(), 0x1234);
    }

    #[test]
    fn setters_write_fields() {
        let mut b = [0u8; 14];
        let mut f = EthernetFrame::new_checked(&mut b[..]).unwrap();
        f.set_dst(MacAddr::BROADCAST);
        f.set_src("02:00:00:00:00:02".parse().unwrap());
        f.set_outer_ethertype(EtherType::Ipv6);
        assert_eq!(
            &b[..],
            &[255, 255, 255, 255, 255, 255, 2, 0, 0, 0, 0, 2, 0x86, 0xdd]
        );
    }
}
