//! `DropReason`: every way a frame can be dropped, each with a stable name (for
//! counters, JSON and capture comments) and a line of help for people.

use serde::Serialize;

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $help:literal; )*) => {
        /// Why a frame was not (or not entirely) forwarded.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum DropReason {
            $( $(#[$doc])* $variant, )*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant),*];
            pub const COUNT: usize = Self::ALL.len();

            /// Stable snake_case name used in counters, JSON and capture comments.
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name),* }
            }

            /// What causes this drop, for `stats` and the docs.
            pub fn help(self) -> &'static str {
                match self { $(DropReason::$variant => $help),* }
            }

            /// Position in a `[u64; DropReason::COUNT]` counter array.
            pub fn index(self) -> usize {
                self as usize
            }

            pub fn from_name(name: &str) -> Option<DropReason> {
                Self::ALL.iter().copied().find(|r| r.name() == name)
            }
        }
    };
}

drop_reasons! {
    /// Shorter than an Ethernet header, or than the VLAN tag it announces.
    Runt = "runt",
        "frame shorter than an Ethernet header (14 bytes) or than the VLAN tag it announces";
    /// The port's kernel receive queue overflowed before the switch read it.
    RxQueueFull = "rx_queue_full",
        "the port's kernel receive queue was full: the switch did not read fast enough";
    /// The kernel handed over only part of the frame.
    RxTruncated = "rx_truncated",
        "frame larger than the receive buffer; the kernel truncated it";
    /// A socket port's peer sent a length that cannot be a frame.
    BadLength = "bad_length",
        "a VM's socket (QEMU stream/dgram) announced a frame length that cannot be a frame (zero or absurd); a stream peer is disconnected to resynchronise";
    /// A socket port's peer sent a frame larger than the switch takes.
    RxOversized = "rx_oversized",
        "a VM sent a frame larger than the switch's receive buffer (64 KiB); it was skipped";
    /// A stream peer went away with a frame half sent.
    PeerGoneMidFrame = "peer_gone_mid_frame",
        "the VM's stream socket closed in the middle of a frame";
    /// A datagram port got a datagram from someone other than its peer.
    ForeignSender = "foreign_sender",
        "a datagram reached a dgram port from a socket other than the configured peer";
    /// Source MAC multicast, broadcast or zero (the Linux bridge drops these too).
    InvalidSource = "invalid_source",
        "source MAC is multicast, broadcast or all-zero";
    /// 802.3x PAUSE / MAC control frames are link-local by definition.
    MacControl = "mac_control",
        "IEEE 802.3x MAC control (PAUSE, 01:80:c2:00:00:01) is never forwarded";
    /// IEEE 802.1Q reserved group address a bridge must not relay.
    ReservedGroup = "reserved_group",
        "destination is an IEEE 802.1 reserved group address (01:80:c2:00:00:02-0f) that bridges do not forward";
    /// A tagged frame (VID other than 0) arrived on an access port.
    VlanTaggedOnAccess = "vlan_tagged_on_access",
        "a VLAN-tagged frame arrived on an access port";
    /// The frame's VLAN is not one its ingress port carries.
    VlanNotCarried = "vlan_not_carried",
        "the frame's VLAN is not carried by the port it arrived on";
    /// Frames arriving on a mirror's output port are discarded.
    MirrorOutput = "mirror_output",
        "the frame arrived on a mirror output port, which does no switching";
    /// Known unicast between two isolated ports.
    Isolated = "isolated",
        "source and destination ports are both isolated";
    /// Known unicast whose destination sits behind the ingress port.
    SamePort = "same_port",
        "destination MAC was learned on the port the frame came in on";
    /// A flood with no port to go to (the switch has a single port).
    NoEgress = "no_egress",
        "no port to send the frame to besides the one it came in on";
    /// A super-frame the egress port cannot take and software cannot cut.
    GsoUnsupported = "gso_unsupported",
        "a GSO super-frame the egress port cannot take and the switch cannot segment (UFO, or headers that do not parse)";
    /// Larger than the egress port can carry.
    EgressTooBig = "egress_too_big",
        "frame larger than the egress port's MTU";
    /// The egress socket buffer or queue was full.
    EgressFull = "egress_full",
        "the egress port's send queue was full";
    /// The egress link is down or has no carrier.
    EgressDown = "egress_down",
        "the egress port's link is down";
    /// Any other error the kernel returned on send.
    EgressError = "egress_error",
        "the kernel refused to send the frame on the egress port";
    /// A UDP datagram on a VXLAN port too short for the headers.
    VxlanShort = "vxlan_short",
        "VXLAN packet shorter than a VXLAN header (8 bytes) plus an inner Ethernet header";
    /// VXLAN flags other than exactly the I flag, or reserved bits set.
    VxlanBadFlags = "vxlan_bad_flags",
        "VXLAN header without the I flag, or with reserved bits or extension flags (GBP, GPE) set";
    /// A VNI this port does not carry.
    VxlanUnknownVni = "vxlan_unknown_vni",
        "VXLAN packet for a VNI other than the port's";
    /// A VXLAN packet from the port's own local address.
    VxlanOwnSource = "vxlan_own_source",
        "VXLAN packet whose outer source is the port's own local address (an underlay loop)";
    /// From a VTEP the port does not know while it does not learn.
    VxlanUnknownVtep = "vxlan_unknown_vtep",
        "VXLAN packet from a VTEP that is not on the port's flood list, on a port with learning off";
    /// Lost on purpose by the port's impairment (`port impair --loss`).
    ImpairLoss = "impair_loss",
        "emulated loss: the port's impairment (port impair --loss/--loss-model) dropped the frame";
    /// Storm control: broadcasts over the ingress port's limit.
    StormBroadcast = "storm_broadcast",
        "storm control: broadcasts arrived on the port faster than its limit (port set --storm-bcast)";
    /// Storm control: multicast over the ingress port's limit.
    StormMulticast = "storm_multicast",
        "storm control: multicast frames arrived on the port faster than its limit (port set --storm-mcast)";
    /// Storm control: unknown unicast over the ingress port's limit.
    StormUnknownUnicast = "storm_unknown_unicast",
        "storm control: unknown-unicast frames arrived on the port faster than its limit (port set --storm-unknown)";
    /// The ingress port (or the known destination's port) is blocked.
    PortBlocked = "port_blocked",
        "the port is blocked by loop protection or BPDU guard (port unblock reopens it); also known unicast toward a blocked port";
    /// An STP BPDU on a port with BPDU guard (the port is blocked with it).
    BpduGuard = "bpdu_guard",
        "an STP BPDU arrived on a port with BPDU guard on; the port is blocked";
    /// The port's impairment queue was full (`port impair --limit`).
    ImpairLimit = "impair_limit",
        "the port's impairment queue held --limit frames (or bytes) already, as netem's limit";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        for r in DropReason::ALL {
            assert_eq!(DropReason::from_name(r.name()), Some(*r));
            assert_eq!(DropReason::ALL[r.index()], *r);
            assert!(!r.help().is_empty());
        }
        assert_eq!(
            serde_json::to_string(&DropReason::SamePort).unwrap(),
            "\"same_port\""
        );
    }
}

#[cfg(test)]
mod doc_tests {
    use super::DropReason;

    #[test]
    fn every_reason_is_documented() {
        let doc = include_str!("../../docs/behaviour.md");
        for r in DropReason::ALL {
            assert!(
                doc.contains(&format!("`{}`", r.name())),
                "docs/behaviour.md does not describe drop reason {}",
                r.name()
            );
        }
    }
}
