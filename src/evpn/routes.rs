//! EVPN routes as l2sw advertises and reads them, and their GoBGP API form.
//!
//! Advertised (RFC 7432, with RFC 8365's VXLAN encoding): a MAC/IP route
//! (type 2) for each local MAC of a VNI and an inclusive multicast route
//! (type 3) per VNI, both with route distinguisher `router-id:VNI`, route
//! target `ASN:VNI`, the encapsulation community "VXLAN" and the VTEP as
//! next hop; the VNI rides in the MPLS label fields (24 bits, as FRR
//! writes it), and type 3 carries a PMSI tunnel attribute of type ingress
//! replication naming the VTEP. Read: the same shapes from other VTEPs.

use std::net::Ipv4Addr;

use super::api::{self, names, Any};
use crate::wire::MacAddr;

/// PMSI tunnel type "ingress replication" (RFC 6514).
const PMSI_INGRESS_REPLICATION: u32 = 6;
/// Tunnel type VXLAN in the encapsulation community (RFC 9012).
const TUNNEL_VXLAN: u32 = 8;
/// Extended community sub-type "route target".
const SUBTYPE_RT: u32 = 2;

/// What a route says, independent of who sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKey {
    /// Type 2: `mac` is in `vni`.
    Mac { vni: u32, mac: MacAddr },
    /// Type 3: flood `vni`'s BUM traffic to the VTEP.
    Flood { vni: u32 },
}

/// Who l2sw is in BGP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Speaker {
    pub asn: u32,
    pub router_id: Ipv4Addr,
}

fn rd(router_id: Ipv4Addr, vni: u32) -> Any {
    Any::pack(
        names::RD_IP,
        &api::RouteDistinguisherIpAddress {
            admin: router_id.to_string(),
            // An IP-address RD has 16 bits of its own.
            assigned: vni & 0xffff,
        },
    )
}

fn communities(sp: Speaker, vni: u32, mobility: Option<u32>) -> Any {
    let mut c = vec![
        Any::pack(
            names::TWO_OCTET_AS,
            &api::TwoOctetAsSpecificExtended {
                is_transitive: true,
                sub_type: SUBTYPE_RT,
                // A four-octet ASN does not fit this RT form; its low 16
                // bits are what FRR's auto-derived RT uses too.
                asn: sp.asn & 0xffff,
                local_admin: vni,
            },
        ),
        Any::pack(
            names::ENCAP,
            &api::EncapExtended {
                tunnel_type: TUNNEL_VXLAN,
            },
        ),
    ];
    if let Some(seq) = mobility {
        c.push(Any::pack(
            names::MAC_MOBILITY,
            &api::MacMobilityExtended {
                is_sticky: false,
                sequence_num: seq,
            },
        ));
    }
    Any::pack(
        names::EXT_COMMUNITIES,
        &api::ExtendedCommunitiesAttribute { communities: c },
    )
}

/// The API path advertising `key` from `vtep`; `seq` is the MAC mobility
/// sequence number of a type-2 route (0: none is attached).
pub fn path(sp: Speaker, key: RouteKey, vtep: Ipv4Addr, seq: u32) -> api::Path {
    let (nlri, vni) = match key {
        RouteKey::Mac { vni, mac } => (
            Any::pack(
                names::MAC_IP,
                &api::EvpnMacIpAdvertisementRoute {
                    rd: Some(rd(sp.router_id, vni)),
                    esi: Some(api::EthernetSegmentIdentifier {
                        r#type: 0,
                        value: vec![0; 9],
                    }),
                    ethernet_tag: 0,
                    mac_address: mac.to_string(),
                    ip_address: String::new(),
                    labels: vec![vni],
                },
            ),
            vni,
        ),
        RouteKey::Flood { vni } => (
            Any::pack(
                names::INCLUSIVE_MULTICAST,
                &api::EvpnInclusiveMulticastEthernetTagRoute {
                    rd: Some(rd(sp.router_id, vni)),
                    ethernet_tag: 0,
                    ip_address: vtep.to_string(),
                },
            ),
            vni,
        ),
    };
    let mobility = match key {
        RouteKey::Mac { .. } if seq > 0 => Some(seq),
        _ => None,
    };
    let mut pattrs = vec![
        Any::pack(names::ORIGIN, &api::OriginAttribute { origin: 0 }),
        Any::pack(
            names::NEXT_HOP,
            &api::NextHopAttribute {
                next_hop: vtep.to_string(),
            },
        ),
        communities(sp, vni, mobility),
    ];
    if let RouteKey::Flood { .. } = key {
        pattrs.push(Any::pack(
            names::PMSI,
            &api::PmsiTunnelAttribute {
                flags: 0,
                r#type: PMSI_INGRESS_REPLICATION,
                label: vni,
                id: vtep.octets().to_vec(),
            },
        ));
    }
    api::Path {
        nlri: Some(nlri),
        pattrs,
        family: Some(api::Family::evpn()),
        ..Default::default()
    }
}

/// A route read from GoBGP's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Identifies the route (its NLRI, route distinguisher included), so a
    /// withdrawal finds what it withdraws.
    pub id: String,
    pub withdraw: bool,
    pub kind: RemoteKind,
    /// The VTEP (next hop, or for type 3 the originator's address).
    pub vtep: Option<Ipv4Addr>,
    /// VNIs the route may belong to, most telling first: the label, then
    /// the route targets' local parts.
    pub vnis: Vec<u32>,
    pub seq: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    Mac(MacAddr),
    Flood,
}

fn rd_text(rd: Option<&Any>) -> String {
    let Some(rd) = rd else {
        return "-".into();
    };
    if let Some(r) = rd.unpack::<api::RouteDistinguisherIpAddress>(names::RD_IP) {
        return format!("{}:{}", r.admin, r.assigned);
    }
    for n in [names::RD_AS2, names::RD_AS4] {
        if let Some(r) = rd.unpack::<api::RouteDistinguisherTwoOctetAsn>(n) {
            return format!("{}:{}", r.admin, r.assigned);
        }
    }
    rd.type_url.clone()
}

/// Reads a path of GoBGP's table; `None` for routes of other types or
/// that do not parse.
pub fn parse(p: &api::Path) -> Option<Remote> {
    let nlri = p.nlri.as_ref()?;
    let mut vnis = Vec::new();
    let (id, kind, mut vtep) =
        if let Some(r) = nlri.unpack::<api::EvpnMacIpAdvertisementRoute>(names::MAC_IP) {
            let mac: MacAddr = r.mac_address.parse().ok()?;
            vnis.extend(r.labels.first().copied());
            (
                format!(
                    "2:{}:{}:{}:{}",
                    rd_text(r.rd.as_ref()),
                    r.ethernet_tag,
                    mac,
                    r.ip_address
                ),
                RemoteKind::Mac(mac),
                None,
            )
        } else if let Some(r) =
            nlri.unpack::<api::EvpnInclusiveMulticastEthernetTagRoute>(names::INCLUSIVE_MULTICAST)
        {
            (
                format!(
                    "3:{}:{}:{}",
                    rd_text(r.rd.as_ref()),
                    r.ethernet_tag,
                    r.ip_address
                ),
                RemoteKind::Flood,
                r.ip_address.parse().ok(),
            )
        } else {
            return None;
        };
    let mut seq = 0;
    let mut next_hop = None;
    for a in &p.pattrs {
        match a.name() {
            Some(names::NEXT_HOP) => {
                next_hop = a
                    .unpack::<api::NextHopAttribute>(names::NEXT_HOP)
                    .and_then(|n| n.next_hop.parse().ok());
            }
            Some(names::MP_REACH) => {
                next_hop = a
                    .unpack::<api::MpReachNlriAttribute>(names::MP_REACH)
                    .and_then(|m| m.next_hops.first().and_then(|n| n.parse().ok()));
            }
            Some(names::PMSI) => {
                if let Some(t) = a.unpack::<api::PmsiTunnelAttribute>(names::PMSI) {
                    vnis.insert(0, t.label);
                }
            }
            Some(names::EXT_COMMUNITIES) => {
                let Some(ec) =
                    a.unpack::<api::ExtendedCommunitiesAttribute>(names::EXT_COMMUNITIES)
                else {
                    continue;
                };
                for c in &ec.communities {
                    if let Some(rt) =
                        c.unpack::<api::TwoOctetAsSpecificExtended>(names::TWO_OCTET_AS)
                    {
                        if rt.sub_type == SUBTYPE_RT {
                            vnis.push(rt.local_admin);
                        }
                    } else if let Some(m) =
                        c.unpack::<api::MacMobilityExtended>(names::MAC_MOBILITY)
                    {
                        seq = m.sequence_num;
                    }
                }
            }
            _ => {}
        }
    }
    if kind != RemoteKind::Flood || vtep.is_none() {
        vtep = next_hop;
    }
    vnis.dedup();
    Some(Remote {
        id,
        withdraw: p.is_withdraw,
        kind,
        vtep,
        vnis,
        seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SP: Speaker = Speaker {
        asn: 65001,
        router_id: Ipv4Addr::new(10, 201, 0, 1),
    };

    #[test]
    fn an_advertised_mac_route_reads_back_as_the_same_route() {
        let mac: MacAddr = "02:16:00:00:00:01".parse().unwrap();
        let vtep = Ipv4Addr::new(10, 201, 0, 1);
        let p = path(SP, RouteKey::Mac { vni: 100, mac }, vtep, 3);
        let r = parse(&p).unwrap();
        assert_eq!(r.kind, RemoteKind::Mac(mac));
        assert_eq!(r.vtep, Some(vtep));
        assert_eq!(r.vnis, vec![100]);
        assert_eq!(r.seq, 3);
        assert_eq!(r.id, "2:10.201.0.1:100:0:02:16:00:00:00:01:");
        assert!(!r.withdraw);
    }

    #[test]
    fn a_flood_route_names_its_vtep_and_vni_through_the_pmsi_attribute() {
        let vtep = Ipv4Addr::new(10, 201, 0, 2);
        let mut p = path(SP, RouteKey::Flood { vni: 70000 }, vtep, 0);
        p.is_withdraw = true;
        let r = parse(&p).unwrap();
        assert_eq!(r.kind, RemoteKind::Flood);
        assert_eq!(r.vtep, Some(vtep));
        assert_eq!(r.vnis[0], 70000);
        assert!(r.withdraw);
        // The RD keeps 16 bits of the VNI.
        assert!(r.id.starts_with("3:10.201.0.1:4464:"), "{}", r.id);
    }

    #[test]
    fn routes_of_other_types_are_ignored() {
        let p = api::Path {
            nlri: Some(Any::pack("IPAddressPrefix", &api::Empty {})),
            ..Default::default()
        };
        assert_eq!(parse(&p), None);
    }
}
