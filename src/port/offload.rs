//! Offload metadata that travels with a frame: the content of the virtio-net
//! header (`struct virtio_net_hdr`) that AF_PACKET (PACKET_VNET_HDR) and TAP
//! (IFF_VNET_HDR) put in front of each frame.
//!
//! Carrying it through the switch lets 64 KiB TCP super-frames and
//! unfinished checksums cross as they do a kernel bridge; the dataplane only
//! segments or finishes checksums in software for an egress port that cannot
//! take them.

/// Size of `struct virtio_net_hdr` (no `num_buffers`).
pub const VNET_HDR_LEN: usize = 10;

const F_NEEDS_CSUM: u8 = 1;
const F_DATA_VALID: u8 = 2;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_UDP: u8 = 3;
const GSO_TCPV6: u8 = 4;
const GSO_UDP_L4: u8 = 5;
const GSO_ECN: u8 = 0x80;

/// What kind of super-frame a GSO frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsoKind {
    Tcp4,
    Tcp6,
    /// UDP segmentation offload (each segment a whole datagram).
    UdpL4,
    /// UDP fragmentation offload (IP fragments); legacy, never segmented here.
    Ufo,
}

/// A super-frame to be cut into `size`-byte payloads behind `hdr_len` bytes of headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gso {
    pub kind: GsoKind,
    /// The TCP CWR bit must go on the first segment only (ECN).
    pub ecn: bool,
    pub size: u16,
    pub hdr_len: u16,
}

/// The offload state of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offload {
    /// The checksum from `start` to the end of the frame is still to be
    /// computed and stored at `start + offset` (both from the frame start).
    pub csum: Option<(u16, u16)>,
    /// The sender vouched for the checksum (e.g. verified by a NIC).
    pub data_valid: bool,
    pub gso: Option<Gso>,
}

impl Offload {
    pub const NONE: Offload = Offload {
        csum: None,
        data_valid: false,
        gso: None,
    };

    pub fn is_none(&self) -> bool {
        self.csum.is_none() && self.gso.is_none()
    }

    /// Decodes a virtio-net header (native endian, as both AF_PACKET and a
    /// legacy TAP header are). `None` for a header this switch cannot carry
    /// (unknown GSO type).
    pub fn from_vnet_hdr(h: &[u8; VNET_HDR_LEN]) -> Option<Offload> {
        let u16_at = |o: usize| u16::from_ne_bytes([h[o], h[o + 1]]);
        let flags = h[0];
        let gso_type = h[1];
        let csum = (flags & F_NEEDS_CSUM != 0).then(|| (u16_at(6), u16_at(8)));
        let ecn = gso_type & GSO_ECN != 0;
        let kind = match gso_type & !GSO_ECN {
            GSO_NONE => None,
            GSO_TCPV4 => Some(GsoKind::Tcp4),
            GSO_TCPV6 => Some(GsoKind::Tcp6),
            GSO_UDP_L4 => Some(GsoKind::UdpL4),
            GSO_UDP => Some(GsoKind::Ufo),
            _ => return None,
        };
        Some(Offload {
            csum,
            data_valid: flags & F_DATA_VALID != 0,
            gso: kind.map(|kind| Gso {
                kind,
                ecn,
                size: u16_at(4),
                hdr_len: u16_at(2),
            }),
        })
    }

    /// Encodes the header to send in front of the frame.
    pub fn to_vnet_hdr(&self) -> [u8; VNET_HDR_LEN] {
        let mut h = [0u8; VNET_HDR_LEN];
        if let Some((start, off)) = self.csum {
            h[0] |= F_NEEDS_CSUM;
            h[6..8].copy_from_slice(&start.to_ne_bytes());
            h[8..10].copy_from_slice(&off.to_ne_bytes());
        }
        if self.data_valid && self.csum.is_none() {
            h[0] |= F_DATA_VALID;
        }
        if let Some(g) = self.gso {
            h[1] = match g.kind {
                GsoKind::Tcp4 => GSO_TCPV4,
                GsoKind::Tcp6 => GSO_TCPV6,
                GsoKind::UdpL4 => GSO_UDP_L4,
                GsoKind::Ufo => GSO_UDP,
            } | if g.ecn { GSO_ECN } else { 0 };
            h[2..4].copy_from_slice(&g.hdr_len.to_ne_bytes());
            h[4..6].copy_from_slice(&g.size.to_ne_bytes());
        }
        h
    }

    /// The same offload for the frame after `n` bytes (a VLAN tag) were
    /// removed after the MAC addresses.
    pub fn unshifted(mut self, n: u16) -> Offload {
        if let Some((s, o)) = self.csum {
            self.csum = Some((s.saturating_sub(n), o));
        }
        if let Some(g) = &mut self.gso {
            g.hdr_len = g.hdr_len.saturating_sub(n);
        }
        self
    }

    /// The same offload for the frame after `n` bytes (a VLAN tag) were
    /// inserted after the MAC addresses.
    pub fn shifted(mut self, n: u16) -> Offload {
        if let Some((s, o)) = self.csum {
            self.csum = Some((s + n, o));
        }
        if let Some(g) = &mut self.gso {
            g.hdr_len += n;
        }
        self
    }
}

/// What an egress port can take from the switch as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OffloadCaps {
    /// Partial checksums.
    pub csum: bool,
    pub tso4: bool,
    pub tso6: bool,
    pub uso: bool,
}

impl OffloadCaps {
    pub const NONE: OffloadCaps = OffloadCaps {
        csum: false,
        tso4: false,
        tso6: false,
        uso: false,
    };
    pub const ALL: OffloadCaps = OffloadCaps {
        csum: true,
        tso4: true,
        tso6: true,
        uso: true,
    };

    /// Whether a frame with `o` can be handed to the port unchanged.
    pub fn accepts(&self, o: &Offload) -> bool {
        if o.csum.is_some() && !self.csum {
            return false;
        }
        match o.gso.map(|g| g.kind) {
            None => true,
            Some(GsoKind::Tcp4) => self.tso4,
            Some(GsoKind::Tcp6) => self.tso6,
            Some(GsoKind::UdpL4) => self.uso,
            Some(GsoKind::Ufo) => false,
        }
    }
}

/// One frame to send, with its offload state.
#[derive(Debug, Clone, Copy)]
pub struct TxFrame<'a> {
    pub data: &'a [u8],
    pub offload: Offload,
}

impl<'a> TxFrame<'a> {
    pub fn plain(data: &'a [u8]) -> TxFrame<'a> {
        TxFrame {
            data,
            offload: Offload::NONE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vnet_header_round_trips() {
        let o = Offload {
            csum: Some((34, 16)),
            data_valid: false,
            gso: Some(Gso {
                kind: GsoKind::Tcp4,
                ecn: true,
                size: 1448,
                hdr_len: 66,
            }),
        };
        let h = o.to_vnet_hdr();
        assert_eq!(h[0], 1);
        assert_eq!(h[1], 0x81);
        assert_eq!(Offload::from_vnet_hdr(&h), Some(o));
        assert_eq!(Offload::from_vnet_hdr(&[0; 10]), Some(Offload::NONE));
        let mut bad = [0u8; 10];
        bad[1] = 9;
        assert_eq!(Offload::from_vnet_hdr(&bad), None);
    }

    #[test]
    fn shifting_moves_checksum_start_and_header_length() {
        let o = Offload {
            csum: Some((34, 16)),
            data_valid: false,
            gso: Some(Gso {
                kind: GsoKind::Tcp6,
                ecn: false,
                size: 1000,
                hdr_len: 74,
            }),
        }
        .shifted(4);
        assert_eq!(o.csum, Some((38, 16)));
        assert_eq!(o.gso.unwrap().hdr_len, 78);
    }

    #[test]
    fn caps_decide_what_passes() {
        let csum = Offload {
            csum: Some((34, 6)),
            ..Offload::NONE
        };
        assert!(OffloadCaps::ALL.accepts(&csum));
        assert!(!OffloadCaps::NONE.accepts(&csum));
        assert!(OffloadCaps::NONE.accepts(&Offload::NONE));
        let ufo = Offload {
            gso: Some(Gso {
                kind: GsoKind::Ufo,
                ecn: false,
                size: 1400,
                hdr_len: 42,
            }),
            ..Offload::NONE
        };
        assert!(!OffloadCaps::ALL.accepts(&ufo));
    }
}
