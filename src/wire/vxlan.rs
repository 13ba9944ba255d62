//! The VXLAN header (RFC 7348) and the flow hash that picks a tunnel
//! packet's UDP source port.
//!
//! ```text
//!  0                   1                   2                   3
//! |R|R|R|R|I|R|R|R|            Reserved                           |
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! ```
//!
//! Receivers follow the Linux vxlan driver rather than the RFC's "ignore
//! reserved bits": a header with any flag but I set, or non-zero reserved
//! bits next to the VNI, belongs to an extension (GBP, GPE) this switch does
//! not speak and is refused.

/// The IANA-assigned VXLAN UDP port.
pub const VXLAN_PORT: u16 = 4789;
/// Bytes of the VXLAN header.
pub const VXLAN_HEADER_LEN: usize = 8;
/// What encapsulation over IPv4 adds in front of an inner frame's L3
/// payload: outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14), the
/// 50 bytes by which a Linux vxlan device's MTU is below its underlay's.
pub const VXLAN_V4_OVERHEAD: u32 = 50;
/// Largest VNI (24 bits).
pub const VNI_MAX: u32 = 0x00ff_ffff;

const FLAG_I: u8 = 0x08;

/// Why bytes are not a VXLAN header this switch accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VxlanError {
    #[error("shorter than a VXLAN header plus an Ethernet header")]
    Short,
    #[error("flags {0:#04x}: the I flag is missing or reserved bits are set")]
    BadFlags(u8),
}

/// Parses the VXLAN header at the start of `payload` (a UDP payload) and
/// returns the VNI. The inner Ethernet frame follows at
/// [`VXLAN_HEADER_LEN`]; at least an Ethernet header of it must be present.
pub fn parse(payload: &[u8]) -> Result<u32, VxlanError> {
    if payload.len() < VXLAN_HEADER_LEN + super::ETH_HEADER_LEN {
        return Err(VxlanError::Short);
    }
    let flags = payload[0];
    let reserved = payload[1] | payload[2] | payload[3] | payload[7];
    if flags != FLAG_I || reserved != 0 {
        return Err(VxlanError::BadFlags(flags));
    }
    Ok(u32::from_be_bytes([0, payload[4], payload[5], payload[6]]))
}

/// The header announcing `vni` (only the low 24 bits are used).
pub fn header(vni: u32) -> [u8; VXLAN_HEADER_LEN] {
    let v = vni.to_be_bytes();
    [FLAG_I, 0, 0, 0, v[1], v[2], v[3], 0]
}

/// A hash of the inner frame's flow: IP addresses and, for TCP/UDP/SCTP of
/// unfragmented packets, ports; otherwise the MAC addresses and EtherType.
/// Packets of one flow hash alike, so they take one UDP source port and stay
/// in order through an underlay that balances on it (RFC 7348 section 5).
pub fn inner_flow_hash(frame: &[u8]) -> u32 {
    let mut h = Fnv::new();
    let Some(mut et) = frame.get(12..14).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
        h.bytes(frame);
        return h.finish();
    };
    let mut l3 = 14;
    while (et == 0x8100 || et == 0x88a8) && frame.len() >= l3 + 4 {
        et = u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]);
        l3 += 4;
    }
    let l4 = match et {
        0x0800 if frame.len() >= l3 + 20 => {
            let ihl = (frame[l3] & 0x0f) as usize * 4;
            h.bytes(&frame[l3 + 12..l3 + 20]);
            let frag = u16::from_be_bytes([frame[l3 + 6], frame[l3 + 7]]) & 0x3fff;
            (frag == 0).then_some((frame[l3 + 9], l3 + ihl))
        }
        0x86dd if frame.len() >= l3 + 40 => {
            h.bytes(&frame[l3 + 8..l3 + 40]);
            Some((frame[l3 + 6], l3 + 40))
        }
        _ => {
            h.bytes(&frame[..14.min(frame.len())]);
            None
        }
    };
    if let Some((proto, at)) = l4 {
        h.bytes(&[proto]);
        if matches!(proto, 6 | 17 | 132) {
            if let Some(ports) = frame.get(at..at + 4) {
                h.bytes(ports);
            }
        }
    }
    h.finish()
}

/// FNV-1a: a few bytes per frame, no key needed (the hash only spreads
/// flows over source ports).
struct Fnv(u32);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0x811c_9dc5)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= x as u32;
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }
    fn finish(&self) -> u32 {
        self.0 ^ (self.0 >> 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(flags: u8, vni: u32) -> Vec<u8> {
        let mut p = header(vni).to_vec();
        p[0] = flags;
        p.extend_from_slice(&[0u8; 14]);
        p
    }

    #[test]
    fn header_round_trips_and_refuses_what_linux_refuses() {
        assert_eq!(header(100), [0x08, 0, 0, 0, 0, 0, 100, 0]);
        assert_eq!(parse(&packet(0x08, 0x00ab_cdef)), Ok(0x00ab_cdef));
        assert_eq!(parse(&packet(0x00, 5)), Err(VxlanError::BadFlags(0)));
        // GBP (G bit) and GPE (P bit) are extensions we do not speak.
        assert_eq!(parse(&packet(0x88, 5)), Err(VxlanError::BadFlags(0x88)));
        assert_eq!(parse(&packet(0x0c, 5)), Err(VxlanError::BadFlags(0x0c)));
        let mut p = packet(0x08, 5);
        p[7] = 1;
        assert!(parse(&p).is_err(), "reserved byte after the VNI");
        assert_eq!(parse(&p[..21]), Err(VxlanError::Short));
        assert_eq!(parse(&[]), Err(VxlanError::Short));
    }

    fn tcp4(sport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12] = 0x08;
        f[14] = 0x45;
        f[14 + 9] = 6;
        f[14 + 12..14 + 16].copy_from_slice(&[10, 0, 0, 1]);
        f[14 + 16..14 + 20].copy_from_slice(&[10, 0, 0, 2]);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        f
    }

    #[test]
    fn flows_hash_by_addresses_and_ports() {
        let a = tcp4(1000);
        let mut a_later = a.clone();
        a_later.extend_from_slice(&[1, 2, 3]); // payload does not count
        assert_eq!(inner_flow_hash(&a), inner_flow_hash(&a_later));
        assert_ne!(inner_flow_hash(&a), inner_flow_hash(&tcp4(1001)));
        // Short or odd frames still hash without panicking.
        let _ = inner_flow_hash(&a[..20]);
        let _ = inner_flow_hash(&[]);
        let _ = inner_flow_hash(&[0x81, 0]);
    }
}
