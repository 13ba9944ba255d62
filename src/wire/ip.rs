//! One locator for the IP and L4 headers of an Ethernet frame, shared by
//! checksum completion, GSO segmentation and GRO coalescing.
//!
//! It skips at most [`MAX_VLAN_TAGS`] 802.1Q / 802.1ad tags (as the switch
//! does everywhere: a frame with a third tag is not IP to it; GSO asks for
//! any number explicitly), checks that the
//! fixed IPv4 or IPv6 header is present and says what it is, and reads the
//! fields the callers need. What each caller then demands (no options, no
//! fragment, exact lengths, extension headers never followed) is its own
//! decision, asked through the accessors rather than baked into three copies.
//!
//! IPv6 extension headers are not walked: `proto` is the Next Header field of
//! the fixed header, so a frame with extension headers shows up as carrying
//! that extension header, never as TCP or UDP.

/// How many VLAN tags are skipped before the IP header.
pub const MAX_VLAN_TAGS: usize = 2;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const IPV4_MIN_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;

/// Why a frame has no IP header to locate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocateError {
    /// Not IPv4/IPv6 behind at most two tags, or a header that does not
    /// claim to be what its EtherType says (version, IPv4 header length).
    NotIp,
    /// The frame ends before the fixed IP header does.
    Truncated,
}

/// Where the IP and L4 headers of a frame are, and what they say. Offsets
/// are from the start of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpHeaders {
    /// Offset of the IP header.
    pub ip: usize,
    /// IPv4 (else IPv6).
    pub v4: bool,
    /// IPv4: IHL * 4 (20..=60, may reach past the frame end; see
    /// [`IpHeaders::header_in_frame`]). IPv6: 40.
    pub header_len: usize,
    /// IPv4 protocol or IPv6 Next Header of the fixed header.
    pub proto: u8,
    /// Datagram length per the header: IPv4 total length, IPv6 40 +
    /// payload length. Not checked against the frame.
    pub ip_len: usize,
    /// IPv4 flags and fragment offset word (0 for IPv6).
    frag: u16,
    /// IPv4 identification (0 for IPv6).
    pub id: u16,
}

fn be16(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(o)?, *b.get(o + 1)?]))
}

impl IpHeaders {
    /// Locates the IP header of `frame` behind at most [`MAX_VLAN_TAGS`]
    /// tags.
    pub fn locate(frame: &[u8]) -> Result<IpHeaders, LocateError> {
        Self::locate_behind_tags(frame, MAX_VLAN_TAGS)
    }

    /// Locates the IP header behind at most `max_tags` tags. GSO takes any
    /// number: a super-frame whose sender promised it a segmentation must
    /// not be dropped for a tag stack the switch itself may have deepened.
    pub fn locate_behind_tags(frame: &[u8], max_tags: usize) -> Result<IpHeaders, LocateError> {
        let mut et_at = super::ETH_HEADER_LEN - 2;
        let mut et = be16(frame, et_at).ok_or(LocateError::Truncated)?;
        for _ in 0..max_tags {
            if et != 0x8100 && et != 0x88a8 {
                break;
            }
            et_at += super::VLAN_TAG_LEN;
            et = be16(frame, et_at).ok_or(LocateError::Truncated)?;
        }
        let ip = et_at + 2;
        match et {
            ETHERTYPE_IPV4 => {
                let h = frame
                    .get(ip..ip + IPV4_MIN_HEADER)
                    .ok_or(LocateError::Truncated)?;
                let header_len = (h[0] & 0x0f) as usize * 4;
                if h[0] >> 4 != 4 || header_len < IPV4_MIN_HEADER {
                    return Err(LocateError::NotIp);
                }
                Ok(IpHeaders {
                    ip,
                    v4: true,
                    header_len,
                    proto: h[9],
                    ip_len: u16::from_be_bytes([h[2], h[3]]) as usize,
                    frag: u16::from_be_bytes([h[6], h[7]]),
                    id: u16::from_be_bytes([h[4], h[5]]),
                })
            }
            ETHERTYPE_IPV6 => {
                let h = frame
                    .get(ip..ip + IPV6_HEADER)
                    .ok_or(LocateError::Truncated)?;
                if h[0] >> 4 != 6 {
                    return Err(LocateError::NotIp);
                }
                Ok(IpHeaders {
                    ip,
                    v4: false,
                    header_len: IPV6_HEADER,
                    proto: h[6],
                    ip_len: IPV6_HEADER + u16::from_be_bytes([h[4], h[5]]) as usize,
                    frag: 0,
                    id: 0,
                })
            }
            _ => Err(LocateError::NotIp),
        }
    }

    /// Offset of the L4 header.
    pub fn l4(&self) -> usize {
        self.ip + self.header_len
    }

    /// IPv4 with options (a header longer than 20 bytes).
    pub fn has_options(&self) -> bool {
        self.v4 && self.header_len > IPV4_MIN_HEADER
    }

    /// An IPv4 fragment (More Fragments set or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.frag & 0x3fff != 0
    }

    /// IPv4 Don't Fragment; true for IPv6, which routers never fragment.
    pub fn dont_fragment(&self) -> bool {
        !self.v4 || self.frag & 0x4000 != 0
    }

    /// Whether the whole IP header (with IPv4 options) lies inside `frame`.
    pub fn header_in_frame(&self, frame: &[u8]) -> bool {
        self.l4() <= frame.len()
    }

    /// The L4 length per the IP header, if the datagram's claimed length
    /// covers its own header and fits in `frame` (padding may follow).
    pub fn l4_len_within(&self, frame: &[u8]) -> Option<usize> {
        (self.ip_len >= self.header_len && self.ip + self.ip_len <= frame.len())
            .then(|| self.ip_len - self.header_len)
    }

    /// One's-complement sum of the pseudo header (addresses, protocol,
    /// `l4_len`), ready to be continued over the L4 bytes. `frame` must hold
    /// the fixed IP header at `self.ip` (it does for the frame located, and
    /// for copies of its headers).
    pub fn pseudo_header_sum(&self, frame: &[u8], l4_len: usize) -> u32 {
        let addrs = if self.v4 {
            &frame[self.ip + 12..self.ip + 20]
        } else {
            &frame[self.ip + 8..self.ip + 40]
        };
        super::sum::sum16(0, addrs)
            .wrapping_add(self.proto as u32)
            .wrapping_add(l4_len as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(tags: &[u16], et: u16, ip: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for t in tags {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0, 10]);
        }
        f.extend_from_slice(&et.to_be_bytes());
        f.extend_from_slice(ip);
        f
    }

    fn v4(ihl: u8, frag: u16, total: u16) -> Vec<u8> {
        let mut h = vec![0u8; ihl as usize * 4];
        h[0] = 0x40 | ihl;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        h[6..8].copy_from_slice(&frag.to_be_bytes());
        h[9] = 6;
        h
    }

    #[test]
    fn skips_up_to_two_tags_and_no_more() {
        let h = v4(5, 0x4000, 20);
        assert_eq!(IpHeaders::locate(&eth(&[], 0x0800, &h)).unwrap().ip, 14);
        assert_eq!(
            IpHeaders::locate(&eth(&[0x8100], 0x0800, &h)).unwrap().ip,
            18
        );
        let qinq = IpHeaders::locate(&eth(&[0x88a8, 0x8100], 0x0800, &h)).unwrap();
        assert_eq!((qinq.ip, qinq.l4(), qinq.proto), (22, 42, 6));
        assert!(qinq.dont_fragment() && !qinq.is_fragment() && !qinq.has_options());
        assert_eq!(qinq.id, 0x1234);
        assert_eq!(
            IpHeaders::locate(&eth(&[0x88a8, 0x8100, 0x8100], 0x0800, &h)),
            Err(LocateError::NotIp)
        );
        let deep = eth(&[0x88a8, 0x8100, 0x8100], 0x0800, &h);
        assert_eq!(
            IpHeaders::locate_behind_tags(&deep, usize::MAX).unwrap().ip,
            26
        );
    }

    #[test]
    fn says_what_the_ipv4_header_says() {
        let h = v4(6, 0x2000, 24);
        let l = IpHeaders::locate(&eth(&[], 0x0800, &h)).unwrap();
        assert!(l.has_options() && l.is_fragment() && !l.dont_fragment());
        assert_eq!(l.l4(), 14 + 24);
        let f = eth(&[], 0x0800, &h);
        assert_eq!(l.l4_len_within(&f), Some(0));
        assert!(l.header_in_frame(&f));
        let mut bad = v4(5, 0, 20);
        bad[0] = 0x65;
        assert_eq!(
            IpHeaders::locate(&eth(&[], 0x0800, &bad)),
            Err(LocateError::NotIp)
        );
        let mut short_ihl = v4(5, 0, 20);
        short_ihl[0] = 0x44;
        assert_eq!(
            IpHeaders::locate(&eth(&[], 0x0800, &short_ihl)),
            Err(LocateError::NotIp)
        );
        assert_eq!(
            IpHeaders::locate(&eth(&[], 0x0800, &h[..19])),
            Err(LocateError::Truncated)
        );
    }

    #[test]
    fn ipv6_fixed_header_only() {
        let mut h = vec![0u8; 40];
        h[0] = 0x60;
        h[4..6].copy_from_slice(&8u16.to_be_bytes());
        h[6] = 0; // hop-by-hop options: not walked
        let mut f = eth(&[0x8100], 0x86dd, &h);
        f.extend_from_slice(&[0; 8]);
        let l = IpHeaders::locate(&f).unwrap();
        assert_eq!((l.v4, l.l4(), l.proto, l.ip_len), (false, 58, 0, 48));
        assert!(l.dont_fragment() && !l.is_fragment());
        assert_eq!(l.l4_len_within(&f), Some(8));
        assert_eq!(l.l4_len_within(&f[..f.len() - 1]), None);
        h[0] = 0x40;
        assert_eq!(
            IpHeaders::locate(&eth(&[], 0x86dd, &h)),
            Err(LocateError::NotIp)
        );
        assert_eq!(
            IpHeaders::locate(&eth(&[], 0x0806, &h)),
            Err(LocateError::NotIp)
        );
        assert_eq!(IpHeaders::locate(&[0u8; 13]), Err(LocateError::Truncated));
    }
}
