//! The part of GoBGP's gRPC API (v3, package `apipb`, service `GobgpApi`)
//! that l2sw uses, written by hand as prost messages from the API's
//! documentation: field numbers and types follow `api/gobgp.proto` and
//! `api/attribute.proto` of gobgp 3.x. Only the fields l2sw reads or sets
//! are declared; prost skips the others when decoding, as protobuf allows.
//! Enums are plain `int32` fields (their wire form), with the values used
//! named below.

use prost::Message;

/// `google.protobuf.Any`: GoBGP carries NLRIs, attributes, route
/// distinguishers and communities as `Any`s naming their message type.
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

const TYPE_PREFIX: &str = "type.googleapis.com/apipb.";

impl Any {
    /// Packs `msg` as the `apipb` message `name`.
    pub fn pack(name: &str, msg: &impl Message) -> Any {
        Any {
            type_url: format!("{TYPE_PREFIX}{name}"),
            value: msg.encode_to_vec(),
        }
    }

    /// The `apipb` message name this `Any` holds (`None` for other packages).
    pub fn name(&self) -> Option<&str> {
        self.type_url.strip_prefix(TYPE_PREFIX)
    }

    /// Decodes it as `M` if it holds the message `name`.
    pub fn unpack<M: Message + Default>(&self, name: &str) -> Option<M> {
        if self.name() == Some(name) {
            M::decode(self.value.as_slice()).ok()
        } else {
            None
        }
    }
}

/// `TableType.GLOBAL`.
pub const TABLE_GLOBAL: i32 = 0;
/// `Family.Afi.AFI_L2VPN`.
pub const AFI_L2VPN: i32 = 25;
/// `Family.Safi.SAFI_EVPN`.
pub const SAFI_EVPN: i32 = 70;
/// `WatchEventRequest.Table.Filter.Type.BEST`.
pub const FILTER_BEST: i32 = 0;

#[derive(Clone, PartialEq, Message)]
pub struct Family {
    #[prost(int32, tag = "1")]
    pub afi: i32,
    #[prost(int32, tag = "2")]
    pub safi: i32,
}

impl Family {
    pub fn evpn() -> Family {
        Family {
            afi: AFI_L2VPN,
            safi: SAFI_EVPN,
        }
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct Path {
    #[prost(message, optional, tag = "1")]
    pub nlri: Option<Any>,
    #[prost(message, repeated, tag = "2")]
    pub pattrs: Vec<Any>,
    #[prost(bool, tag = "4")]
    pub best: bool,
    #[prost(bool, tag = "5")]
    pub is_withdraw: bool,
    #[prost(message, optional, tag = "9")]
    pub family: Option<Family>,
    #[prost(string, tag = "15")]
    pub neighbor_ip: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct AddPathRequest {
    #[prost(int32, tag = "1")]
    pub table_type: i32,
    #[prost(string, tag = "2")]
    pub vrf_id: String,
    #[prost(message, optional, tag = "3")]
    pub path: Option<Path>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AddPathResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub uuid: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct DeletePathRequest {
    #[prost(int32, tag = "1")]
    pub table_type: i32,
    #[prost(string, tag = "2")]
    pub vrf_id: String,
    #[prost(message, optional, tag = "3")]
    pub family: Option<Family>,
    #[prost(message, optional, tag = "4")]
    pub path: Option<Path>,
    #[prost(bytes = "vec", tag = "5")]
    pub uuid: Vec<u8>,
}

/// `google.protobuf.Empty`.
#[derive(Clone, PartialEq, Message)]
pub struct Empty {}

#[derive(Clone, PartialEq, Message)]
pub struct WatchFilter {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(bool, tag = "2")]
    pub init: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct WatchTable {
    #[prost(message, repeated, tag = "1")]
    pub filters: Vec<WatchFilter>,
}

#[derive(Clone, PartialEq, Message)]
pub struct WatchEventRequest {
    #[prost(message, optional, tag = "2")]
    pub table: Option<WatchTable>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TableEvent {
    #[prost(message, repeated, tag = "2")]
    pub paths: Vec<Path>,
}

/// The `event` oneof's `table` case (tag 3); the `peer` case is skipped.
#[derive(Clone, PartialEq, Message)]
pub struct WatchEventResponse {
    #[prost(message, optional, tag = "3")]
    pub table: Option<TableEvent>,
}

// --- attribute.proto ---

#[derive(Clone, PartialEq, Message)]
pub struct RouteDistinguisherIpAddress {
    #[prost(string, tag = "1")]
    pub admin: String,
    #[prost(uint32, tag = "2")]
    pub assigned: u32,
}

/// Also the layout of `RouteDistinguisherFourOctetASN`.
#[derive(Clone, PartialEq, Message)]
pub struct RouteDistinguisherTwoOctetAsn {
    #[prost(uint32, tag = "1")]
    pub admin: u32,
    #[prost(uint32, tag = "2")]
    pub assigned: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct EthernetSegmentIdentifier {
    #[prost(uint32, tag = "1")]
    pub r#type: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct EvpnMacIpAdvertisementRoute {
    #[prost(message, optional, tag = "1")]
    pub rd: Option<Any>,
    #[prost(message, optional, tag = "2")]
    pub esi: Option<EthernetSegmentIdentifier>,
    #[prost(uint32, tag = "3")]
    pub ethernet_tag: u32,
    #[prost(string, tag = "4")]
    pub mac_address: String,
    #[prost(string, tag = "5")]
    pub ip_address: String,
    #[prost(uint32, repeated, tag = "6")]
    pub labels: Vec<u32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct EvpnInclusiveMulticastEthernetTagRoute {
    #[prost(message, optional, tag = "1")]
    pub rd: Option<Any>,
    #[prost(uint32, tag = "2")]
    pub ethernet_tag: u32,
    #[prost(string, tag = "3")]
    pub ip_address: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct OriginAttribute {
    #[prost(uint32, tag = "1")]
    pub origin: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct NextHopAttribute {
    #[prost(string, tag = "1")]
    pub next_hop: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct MpReachNlriAttribute {
    #[prost(message, optional, tag = "1")]
    pub family: Option<Family>,
    #[prost(string, repeated, tag = "2")]
    pub next_hops: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ExtendedCommunitiesAttribute {
    #[prost(message, repeated, tag = "1")]
    pub communities: Vec<Any>,
}

/// A route target is one with `sub_type` 2.
#[derive(Clone, PartialEq, Message)]
pub struct TwoOctetAsSpecificExtended {
    #[prost(bool, tag = "1")]
    pub is_transitive: bool,
    #[prost(uint32, tag = "2")]
    pub sub_type: u32,
    #[prost(uint32, tag = "3")]
    pub asn: u32,
    #[prost(uint32, tag = "4")]
    pub local_admin: u32,
}

/// The BGP encapsulation extended community (RFC 9012); VXLAN is type 8.
#[derive(Clone, PartialEq, Message)]
pub struct EncapExtended {
    #[prost(uint32, tag = "1")]
    pub tunnel_type: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct MacMobilityExtended {
    #[prost(bool, tag = "1")]
    pub is_sticky: bool,
    #[prost(uint32, tag = "2")]
    pub sequence_num: u32,
}

/// RFC 6514's PMSI tunnel attribute; ingress replication is type 6, whose
/// id is the VTEP's address (4 bytes).
#[derive(Clone, PartialEq, Message)]
pub struct PmsiTunnelAttribute {
    #[prost(uint32, tag = "1")]
    pub flags: u32,
    #[prost(uint32, tag = "2")]
    pub r#type: u32,
    #[prost(uint32, tag = "3")]
    pub label: u32,
    #[prost(bytes = "vec", tag = "4")]
    pub id: Vec<u8>,
}

/// Message names as the `Any`s carry them.
pub mod names {
    pub const MAC_IP: &str = "EVPNMACIPAdvertisementRoute";
    pub const INCLUSIVE_MULTICAST: &str = "EVPNInclusiveMulticastEthernetTagRoute";
    pub const RD_IP: &str = "RouteDistinguisherIPAddress";
    pub const RD_AS2: &str = "RouteDistinguisherTwoOctetASN";
    pub const RD_AS4: &str = "RouteDistinguisherFourOctetASN";
    pub const ORIGIN: &str = "OriginAttribute";
    pub const NEXT_HOP: &str = "NextHopAttribute";
    pub const MP_REACH: &str = "MpReachNLRIAttribute";
    pub const EXT_COMMUNITIES: &str = "ExtendedCommunitiesAttribute";
    pub const TWO_OCTET_AS: &str = "TwoOctetAsSpecificExtended";
    pub const ENCAP: &str = "EncapExtended";
    pub const MAC_MOBILITY: &str = "MacMobilityExtended";
    pub const PMSI: &str = "PmsiTunnelAttribute";
}
