//! Internet checksums (the arithmetic is in `sum`, re-exported here), and
//! finishing the TCP/UDP checksum of a frame whose sender left it to
//! "hardware" (Linux CHECKSUM_PARTIAL).
//!
//! A namespace's stack sending over a veth with checksum offload on leaves
//! the TCP/UDP checksum unfinished, expecting the device to complete it; the
//! veth never does, and AF_PACKET hands the frame over as it is. Forwarded
//! unchanged, it would be dropped by the receiver: ping works, TCP does not.
//! The switch therefore completes such checksums before forwarding.

use super::ip::{IpHeaders, LocateError};
pub use super::sum::{finish, sum16};

/// Why a checksum was left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumSkip {
    /// Not IPv4/IPv6 carrying TCP or UDP directly (or a fragment).
    NotTcpUdp,
    /// Headers claim more bytes than the frame has.
    Truncated,
}

/// Recomputes the TCP or UDP checksum of `frame` from scratch, in place.
pub fn complete_l4_checksum(frame: &mut [u8]) -> Result<(), ChecksumSkip> {
    let h = IpHeaders::locate(frame).map_err(|e| match e {
        LocateError::NotIp => ChecksumSkip::NotTcpUdp,
        LocateError::Truncated => ChecksumSkip::Truncated,
    })?;
    if h.is_fragment() {
        return Err(ChecksumSkip::NotTcpUdp);
    }
    let l4_len = h.l4_len_within(frame).ok_or(ChecksumSkip::Truncated)?;
    let (l4, proto, pseudo) = (h.l4(), h.proto, h.pseudo_header_sum(frame, l4_len));
    let field = match proto {
        6 if l4_len >= 20 => l4 + 16,
        17 if l4_len >= 8 => l4 + 6,
        6 | 17 => return Err(ChecksumSkip::Truncated),
        _ => return Err(ChecksumSkip::NotTcpUdp),
    };
    frame[field] = 0;
    frame[field + 1] = 0;
    let mut c = finish(sum16(pseudo, &frame[l4..l4 + l4_len]));
    if proto == 17 && c == 0 {
        // In UDP, zero means "no checksum"; a computed zero is sent as all ones.
        c = 0xffff;
    }
    frame[field..field + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The textbook sum, word by word, as the reference for the fast one.
    fn slow_sum16(mut sum: u32, data: &[u8]) -> u32 {
        for c in data.chunks(2) {
            let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
            sum += w;
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum
    }

    proptest! {
        #[test]
        fn fast_sum_matches_the_textbook_sum(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            start in 0u32..0x3_0000,
            skip in 0usize..16,
        ) {
            let d = &data[skip.min(data.len())..];
            prop_assert_eq!(finish(sum16(start, d)), finish(slow_sum16(start, d)));
        }
    }

    /// An IPv4/UDP frame from a real capture (checksum 0x6f3e as sent).
    fn udp4() -> Vec<u8> {
        let mut f = vec![
            0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, // eth
            0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, // ip
            10, 0, 0, 1, 10, 0, 0, 2, //
            0x30, 0x39, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, // udp 12345 -> 53, len 12
            b'p', b'i', b'n', b'g',
        ];
        f.resize(60, 0);
        f
    }

    /// Independent reference: the checksum over pseudo header + segment,
    /// which must verify to zero once the checksum field is filled in.
    fn verifies_v4(f: &[u8], l4: usize, l4_len: usize, proto: u8) -> bool {
        let mut s = sum16(0, &f[26..34]);
        s += proto as u32 + l4_len as u32;
        finish(sum16(s, &f[l4..l4 + l4_len])) == 0
    }

    #[test]
    fn completes_udp_over_ipv4() {
        let mut f = udp4();
        f[40] = 0xde; // garbage where the partial sum would be
        f[41] = 0xad;
        complete_l4_checksum(&mut f).unwrap();
        assert!(verifies_v4(&f, 34, 12, 17));
        assert_ne!(&f[40..42], &[0, 0]);
    }

    #[test]
    fn completes_tcp_over_ipv4_behind_a_vlan_tag() {
        let mut f = vec![0u8; 18];
        f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        f[16..18].copy_from_slice(&0x0800u16.to_be_bytes());
        let mut ip = vec![
            0x45, 0, 0, 44, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let mut tcp = vec![0u8; 24];
        tcp[12] = 0x60;
        tcp[20..24].copy_from_slice(b"data");
        f.append(&mut ip);
        f.append(&mut tcp);
        complete_l4_checksum(&mut f).unwrap();
        let mut s = sum16(0, &f[30..38]);
        s += 6 + 24;
        assert_eq!(finish(sum16(s, &f[38..62])), 0);
    }

    #[test]
    fn completes_udp_over_ipv6() {
        let mut f = vec![0u8; 14 + 40 + 10];
        f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        f[14] = 0x60;
        f[18..20].copy_from_slice(&10u16.to_be_bytes());
        f[20] = 17;
        f[22] = 0xfd;
        f[37] = 1;
        f[38] = 0xfd;
        f[53] = 2;
        f[58..60].copy_from_slice(&10u16.to_be_bytes());
        f[62..64].copy_from_slice(b"hi");
        complete_l4_checksum(&mut f).unwrap();
        let mut s = sum16(0, &f[22..54]);
        s += 17 + 10;
        assert_eq!(finish(sum16(s, &f[54..64])), 0);
    }

    #[test]
    fn leaves_other_frames_alone() {
        let mut arp = vec![0u8; 60];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(complete_l4_checksum(&mut arp), Err(ChecksumSkip::NotTcpUdp));
        let mut f = udp4();
        f[20] = 0x20; // more fragments
        assert_eq!(complete_l4_checksum(&mut f), Err(ChecksumSkip::NotTcpUdp));
        let mut f = udp4();
        f[16..18].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(complete_l4_checksum(&mut f), Err(ChecksumSkip::Truncated));
        assert_eq!(
            complete_l4_checksum(&mut [0u8; 5]),
            Err(ChecksumSkip::Truncated)
        );
    }

    #[test]
    fn odd_lengths_and_long_data_sum_correctly() {
        assert_eq!(sum16(0, &[0x01]), 0x0100);
        assert_eq!(finish(sum16(0, &[0xff; 65536])), 0);
    }
}
