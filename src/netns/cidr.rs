//! `Cidr`: an interface address with its prefix length ("10.0.0.1/24").

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid address {input:?}: {why} (expected ADDRESS/PREFIX such as 10.0.0.1/24 or fd00::1/64)"
)]
pub struct CidrParseError {
    pub input: String,
    pub why: &'static str,
}

impl Cidr {
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }
}

impl FromStr for Cidr {
    type Err = CidrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| CidrParseError {
            input: s.to_string(),
            why,
        };
        let (a, p) = s.split_once('/').ok_or_else(|| err("missing /PREFIX"))?;
        let addr: IpAddr = a.parse().map_err(|_| err("not an IP address"))?;
        let prefix: u8 = p.parse().map_err(|_| err("prefix is not a number"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(err("prefix too long for the address family"));
        }
        if addr.is_unspecified() || addr.is_multicast() {
            return Err(err("not a host address"));
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl serde::Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v4_and_v6() {
        let c: Cidr = "10.0.0.1/24".parse().unwrap();
        assert_eq!(c.to_string(), "10.0.0.1/24");
        let c: Cidr = "fd00::1/64".parse().unwrap();
        assert!(c.is_ipv6());
    }

    #[test]
    fn rejects_bad_input_with_reason() {
        for (bad, why) in [
            ("10.0.0.1", "missing /PREFIX"),
            ("10.0.0.300/24", "not an IP address"),
            ("10.0.0.1/33", "prefix too long"),
            ("10.0.0.1/x", "prefix is not a number"),
            ("0.0.0.0/8", "not a host address"),
        ] {
            let e = bad.parse::<Cidr>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
