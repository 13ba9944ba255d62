//! `MacAddr`: a 48-bit IEEE 802 address with the classification a bridge needs
//! (multicast, broadcast, locally administered, IEEE reserved group).

use std::fmt;
use std::str::FromStr;

/// A 48-bit MAC address, stored in transmission order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Builds an address from the first six bytes of `bytes`; `None` if shorter.
    pub fn from_slice(bytes: &[u8]) -> Option<MacAddr> {
        let b: [u8; 6] = bytes.get(..6)?.try_into().ok()?;
        Some(MacAddr(b))
    }

    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Group (multicast or broadcast) address: the I/G bit is set.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    /// Locally administered (the U/L bit is set).
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// A usable station address: unicast and not all-zero. The Linux bridge
    /// (`is_valid_ether_addr`) drops frames whose source fails this.
    pub fn is_valid_source(&self) -> bool {
        !self.is_multicast() && !self.is_zero()
    }

    /// One of the 16 IEEE 802.1Q reserved group addresses
    /// 01-80-C2-00-00-00 ..= 01-80-C2-00-00-0F; returns the low nibble.
    pub fn reserved_group(&self) -> Option<u8> {
        let b = self.0;
        if b[..5] == [0x01, 0x80, 0xc2, 0x00, 0x00] && b[5] <= 0x0f {
            Some(b[5])
        } else {
            None
        }
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {input:?}: expected six hex octets like 02:00:00:00:00:01")]
pub struct MacParseError {
    pub input: String,
}

impl FromStr for MacAddr {
    type Err = MacParseError;

    /// Accepts `aa:bb:cc:dd:ee:ff` and `aa-bb-cc-dd-ee-ff`, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError {
            input: s.to_string(),
        };
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split(sep) {
            if n == 6 || part.is_empty() || part.len() > 2 {
                return Err(err());
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| err())?;
            n += 1;
        }
        if n != 6 {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_colon_form() {
        let m: MacAddr = "02:AB:cd:00:00:09".parse().unwrap();
        assert_eq!(m.0, [0x02, 0xab, 0xcd, 0, 0, 9]);
        assert_eq!(m.to_string(), "02:ab:cd:00:00:09");
        assert_eq!("02-ab-cd-00-00-09".parse::<MacAddr>().unwrap(), m);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "02:00:00:00:00:0g",
            "020:00:00:00:00:00",
            "02::00:00:00:00",
            "hello",
        ] {
            let e = bad.parse::<MacAddr>().unwrap_err();
            assert!(e.to_string().contains("invalid MAC address"), "{bad}");
        }
    }

    #[test]
    fn classifies() {
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(!MacAddr::BROADCAST.is_valid_source());
        assert!(!MacAddr::ZERO.is_valid_source());
        let uni: MacAddr = "02:00:00:00:00:01".parse().unwrap();
        assert!(uni.is_valid_source() && uni.is_local() && !uni.is_multicast());
        let stp: MacAddr = "01:80:c2:00:00:00".parse().unwrap();
        assert_eq!(stp.reserved_group(), Some(0));
        let lldp: MacAddr = "01:80:c2:00:00:0e".parse().unwrap();
        assert_eq!(lldp.reserved_group(), Some(0x0e));
        let not: MacAddr = "01:80:c2:00:00:10".parse().unwrap();
        assert_eq!(not.reserved_group(), None);
    }
}
