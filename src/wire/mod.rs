//! Zero-copy views over raw bytes: MAC addresses, Ethernet II headers and
//! 802.1Q / 802.1ad tags, the VXLAN header, and the IP/L4 header locator
//! the offloads share.
//!
//! Nothing here allocates or panics on short input: a view is built with
//! `new_checked`, which validates the length once, after which every accessor
//! is infallible.

pub mod checksum;
mod ethernet;
pub mod gro;
pub mod gso;
pub mod ip;
mod mac;
mod sum;
pub mod vxlan;

pub use ethernet::{write_header, EtherType, EthernetFrame, VlanTag, ETH_HEADER_LEN, VLAN_TAG_LEN};
pub use mac::{MacAddr, MacParseError};

/// Raised when a byte slice is too short to hold the header it claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("truncated: need {need} bytes, have {have}")]
pub struct Truncated {
    pub need: usize,
    pub have: usize,
}
