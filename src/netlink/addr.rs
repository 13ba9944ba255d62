//! Address and route requests: add an interface address (IPv6 without
//! DAD), list a link's addresses, add a route (the default route via a
//! gateway is what a container needs).

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{NetlinkError, Op, Rtnl};

fn family(a: &IpAddr) -> AddressFamily {
    match a {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// An address on a link, as listed by [`Rtnl::addrs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    pub addr: IpAddr,
    pub prefix: u8,
    /// Global scope (not link-local or host).
    pub global: bool,
}

impl Rtnl {
    /// Adds `addr/prefix` to link `ifname`. IPv6 addresses skip duplicate
    /// address detection: they are usable at once, which tests and demos need.
    pub fn add_addr(&mut self, ifname: &str, addr: IpAddr, prefix: u8) -> Result<(), NetlinkError> {
        let what = || format!("add address {addr}/{prefix} to {ifname}");
        let index = self.index_of(ifname, &what)?;
        let mut m = AddressMessage::default();
        m.header.family = family(&addr);
        m.header.prefix_len = prefix;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(addr));
        match addr {
            IpAddr::V4(v4) => {
                m.attributes.push(AddressAttribute::Address(addr));
                // As `ip addr add` does: the subnet's broadcast address.
                if prefix < 31 {
                    let mask = u32::MAX >> prefix;
                    let b = std::net::Ipv4Addr::from(u32::from(v4) | mask);
                    m.attributes.push(AddressAttribute::Broadcast(b));
                }
            }
            IpAddr::V6(_) => {
                m.header.flags = AddressHeaderFlags::Nodad;
                m.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
        }
        self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
            Op::Addr,
            &what,
        )
        .map(drop)
    }

    /// The addresses of link `ifname` (all families), in the kernel's order.
    pub fn addrs(&mut self, ifname: &str) -> Result<Vec<IfAddr>, NetlinkError> {
        let what = || format!("list the addresses of {ifname}");
        let index = self.index_of(ifname, &what)?;
        self.addrs_where(Some(index), &what)
    }

    /// Every address of this namespace.
    pub fn all_addrs(&mut self) -> Result<Vec<IfAddr>, NetlinkError> {
        self.addrs_where(None, &|| "list addresses".to_string())
    }

    fn addrs_where(
        &mut self,
        index: Option<u32>,
        what: &dyn Fn() -> String,
    ) -> Result<Vec<IfAddr>, NetlinkError> {
        let answers = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
            Op::Query,
            what,
        )?;
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if index.is_none_or(|i| a.header.index == i) => {
                    let addr = a.attributes.iter().find_map(|at| match at {
                        AddressAttribute::Local(x) => Some(*x),
                        _ => None,
                    });
                    let addr = addr.or_else(|| {
                        a.attributes.iter().find_map(|at| match at {
                            AddressAttribute::Address(x) => Some(*x),
                            _ => None,
                        })
                    })?;
                    Some(IfAddr {
                        addr,
                        prefix: a.header.prefix_len,
                        global: a.header.scope == AddressScope::Universe,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Adds a route to `dst/prefix` (`None`: the default route) via
    /// `gateway`, out of link `dev` if given.
    pub fn add_route(
        &mut self,
        dst: Option<(IpAddr, u8)>,
        gateway: Option<IpAddr>,
        dev: Option<&str>,
    ) -> Result<(), NetlinkError> {
        let target = match dst {
            Some((a, p)) => format!("{a}/{p}"),
            None => "default".to_string(),
        };
        let what = || {
            let mut s = format!("add route {target}");
            if let Some(g) = gateway {
                s += &format!(" via {g}");
            }
            if let Some(d) = dev {
                s += &format!(" dev {d}");
            }
            s
        };
        let fam_of = dst.map(|(a, _)| a).or(gateway);
        let Some(fam_addr) = fam_of else {
            return Err(NetlinkError::Unmet {
                what: what(),
                detail: "a route needs a destination or a gateway".into(),
            });
        };
        let oif = match dev {
            Some(d) => Some(self.index_of(d, &what)?),
            None => None,
        };
        let mut m = RouteMessage::default();
        m.header.address_family = family(&fam_addr);
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Static;
        m.header.kind = RouteType::Unicast;
        m.header.scope = if gateway.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        if let Some((a, p)) = dst {
            m.header.destination_prefix_length = p;
            m.attributes
                .push(RouteAttribute::Destination(RouteAddress::from(a)));
        }
        if let Some(g) = gateway {
            m.attributes
                .push(RouteAttribute::Gateway(RouteAddress::from(g)));
        }
        if let Some(i) = oif {
            m.attributes.push(RouteAttribute::Oif(i));
        }
        self.request(
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_CREATE | NLM_F_EXCL,
            Op::Route,
            &what,
        )
        .map(drop)
    }

    /// The default route via `gateway` out of `dev`.
    pub fn add_default_route(
        &mut self,
        gateway: IpAddr,
        dev: Option<&str>,
    ) -> Result<(), NetlinkError> {
        self.add_route(None, Some(gateway), dev)
    }
}
