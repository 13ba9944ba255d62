//! I/O backends behind one batch-oriented trait.
//!
//! - [`afpacket`]: an existing interface (typically the host end of a veth
//!   pair) through an AF_PACKET socket;
//! - [`tap`]: a TAP device the switch creates, either holding its queue (the
//!   netdev is the endpoint, e.g. moved into a namespace) or leaving the
//!   queue to a VM (QEMU `-netdev tap,ifname=...`) and attaching to the
//!   netdev through AF_PACKET;
//! - [`stream`] and [`dgram`]: QEMU's `-netdev stream` / `-netdev dgram`
//!   over Unix sockets the switch creates, for VMs run without root;
//! - [`vhost_user`]: a vhost-user-net backend for QEMU, the guest's virtio
//!   rings walked by the dataplane in memory shared with QEMU;
//! - [`pipe`]: a Unix datagram socket pair, one frame per datagram: a port
//!   with no device behind it, so forwarding can be tested without root;
//! - [`vxlan`]: a VXLAN tunnel (RFC 7348) over a UDP socket: frames leave
//!   encapsulated toward the remote tunnel endpoint the switch names.
//!
//! Every ioctl, socket option and `unsafe` block lives in [`sys`].
//!
//! Frames move in batches through caller-owned buffers ([`RxBatch`]); a port
//! never allocates per frame.

pub mod afpacket;
mod batch;
pub mod dgram;
mod error;
mod ifname;
pub mod offload;
pub mod pipe;
pub mod stream;
pub mod sys;
pub mod tap;
#[cfg(test)]
mod testutil;
pub mod unix_path;
pub mod vhost_user;
pub mod vxlan;

use std::net::Ipv4Addr;
use std::os::fd::RawFd;

use serde::Serialize;

pub use batch::{RxBatch, RxInvalid, RxSlot, RxStatus, BATCH_SIZE, RX_BUF_SIZE, RX_HEADROOM};
pub use error::{PortError, SendError};
pub use offload::{Gso, GsoKind, Offload, OffloadCaps, TxFrame, VNET_HDR_LEN};

use crate::wire::MacAddr;

/// Which backend a port uses, as shown by `port list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortKind {
    /// AF_PACKET on an existing interface.
    Iface,
    /// The switch holds the TAP queue; the netdev is the endpoint.
    Tap,
    /// A persistent TAP whose queue is left for a VM; the switch sits on the
    /// netdev through AF_PACKET.
    TapVm,
    /// One end of a Unix datagram socket pair: a port without a device, for
    /// tests and for programs that speak frames over a socket.
    Pipe,
    /// QEMU `-netdev stream`: a Unix stream socket the switch listens on.
    Stream,
    /// QEMU `-netdev dgram`: Unix datagram sockets, one frame per datagram.
    Dgram,
    /// A VXLAN tunnel over a UDP socket.
    Vxlan,
    /// A vhost-user-net backend: the guest's rings in memory shared with QEMU.
    VhostUser,
}

impl PortKind {
    pub fn name(self) -> &'static str {
        match self {
            PortKind::Iface => "iface",
            PortKind::Tap => "tap",
            PortKind::TapVm => "tap-vm",
            PortKind::Pipe => "pipe",
            PortKind::Stream => "stream",
            PortKind::Dgram => "dgram",
            PortKind::Vxlan => "vxlan",
            PortKind::VhostUser => "vhost-user",
        }
    }
}

/// What a port is and what it can do, probed once when it is opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortInfo {
    pub kind: PortKind,
    /// The interface the switch reads (host side).
    pub ifname: String,
    /// Interface index in the switch's namespace; `None` for a TAP whose
    /// netdev was moved into another namespace.
    pub ifindex: Option<u32>,
    pub mtu: u32,
    pub mac: Option<MacAddr>,
    /// Capabilities probed when the port was opened, e.g. "ignore-outgoing",
    /// "auxdata-vlan", "vnet-hdr".
    pub capabilities: Vec<&'static str>,
    /// For ports that talk to one program over a socket (a VM): whether it
    /// is there and what was agreed with it. `None` for device ports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<PeerInfo>,
}

/// The program at the far end of a socket port, as `port list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerInfo {
    pub connected: bool,
    /// Where the peer is reached (socket paths).
    pub endpoint: String,
    /// Connections accepted since the port was added (0 where the
    /// transport has no connections).
    pub connects: u64,
    /// Features agreed with the current peer (empty for stream/dgram).
    pub negotiated: Vec<String>,
    /// Frames held back for a peer that was briefly behind (vhost-user:
    /// the guest's receive ring was full); `None` where the port holds none.
    pub held: Option<HeldFrames>,
}

/// What a port's queue toward its peer did since the port was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HeldFrames {
    /// Frames that had to wait (each reached the peer, still waits, or is
    /// counted in `lost`).
    pub queued: u64,
    /// Frames waiting now.
    pub waiting: u64,
    /// The most frames that waited at once.
    pub peak: u64,
    /// Frames that waited and were then thrown away (counted under
    /// `egress_down` or `egress_too_big` as well).
    pub lost: u64,
}

/// Frames a socket backend threw away on its own (the transport's framing
/// was broken, or frames it held for a peer could not be delivered), since
/// the last [`Port::take_framing_drops`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FramingDrops {
    /// A length field that cannot be a frame (zero or absurd).
    pub bad_length: u64,
    /// A frame larger than the switch takes.
    pub oversized: u64,
    /// The peer went away in the middle of a frame.
    pub cut_short: u64,
    /// A datagram from someone other than the configured peer.
    pub foreign: u64,
    /// Frames a port held for its peer (vhost-user backlog) and threw away
    /// because the peer went down (`egress_down`) or the frame did not fit
    /// the peer's buffers after all (`egress_too_big`).
    pub held_lost_down: u64,
    pub held_too_big: u64,
}

/// One switch port's I/O.
///
/// `recv_batch` and `send_batch` never block: the fd is non-blocking and the
/// dataplane polls it for readability.
pub trait Port: Send {
    /// The port's name (its interface name when it was opened).
    fn name(&self) -> &str;

    fn info(&self) -> PortInfo;

    /// Pollable for readability.
    fn raw_fd(&self) -> RawFd;

    /// Largest L3 payload the egress link takes (its MTU), as last probed.
    fn mtu(&self) -> u32;

    /// Fills `batch` from slot 0 with up to `batch.capacity()` frames and sets
    /// its length. `Ok(0)`: nothing to read now. A frame the kernel had to cut
    /// is returned with `RxStatus::Truncated` so it can be counted.
    fn recv_batch(&mut self, batch: &mut RxBatch) -> Result<usize, PortError>;

    /// What the port takes as is: frames with other offloads are segmented
    /// or checksummed in software by the dataplane before `send_batch`.
    fn offload_caps(&self) -> OffloadCaps;

    /// Sends `frames` in order. Returns how many were handed to the kernel;
    /// when fewer than all, the error says why the next one was not. Every
    /// frame's offload is one `offload_caps` accepts.
    fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> (usize, Option<SendError>);

    /// Periodic health check: refreshes the MTU and reports a vanished device.
    fn check(&mut self) -> Result<(), PortError>;

    /// Whether frames wait to be read, when the port can tell from memory it
    /// shares with the kernel; `None` when only the poller knows. Lets a
    /// polling dataplane look for frames without a system call.
    fn rx_waiting(&self) -> Option<bool> {
        None
    }

    /// Frames the kernel dropped on the way to the switch since the last
    /// call (a full receive queue), where the backend can tell.
    fn take_kernel_drops(&mut self) -> u64 {
        0
    }

    /// Frames lost to broken transport framing since the last call
    /// (socket ports); counted by the dataplane under their drop reasons.
    fn take_framing_drops(&mut self) -> FramingDrops {
        FramingDrops::default()
    }
    /// A tunnel port's endpoint settings; `None` for ports that are no
    /// tunnel. A tunnel port sends each frame toward the remote endpoint
    /// given with it ([`send_batch_to`](Self::send_batch_to)).
    fn tunnel(&self) -> Option<TunnelInfo> {
        None
    }

    /// Sends `frames[i]` toward remote tunnel endpoint `to[i]`: what a
    /// tunnel port does instead of `send_batch`. Other ports ignore `to`.
    fn send_batch_to(
        &mut self,
        frames: &[TxFrame<'_>],
        to: &[Option<Ipv4Addr>],
    ) -> (usize, Option<SendError>) {
        let _ = to;
        self.send_batch(frames)
    }
}

/// What `port list` shows of a tunnel port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TunnelInfo {
    pub vni: u32,
    pub local: Ipv4Addr,
    /// UDP port it listens on and sends to.
    pub dstport: u16,
    pub ttl: u8,
    pub df: bool,
    /// The namespace of the underlay socket (`None`: the switch's own).
    pub netns: Option<String>,
    /// The interface holding `local`, and its MTU, when found.
    pub underlay: Option<String>,
    pub underlay_mtu: Option<u32>,
    /// UDP source ports encapsulated packets leave from, chosen per inner
    /// flow.
    pub source_ports: Vec<u16>,
}

/// Sends frames without offloads: a convenience for tests and tools.
pub fn send_plain<P: Port + ?Sized>(port: &mut P, frames: &[&[u8]]) -> (usize, Option<SendError>) {
    let tx: Vec<TxFrame<'_>> = frames.iter().map(|f| TxFrame::plain(f)).collect();
    port.send_batch(&tx)
}

/// Wall-clock nanoseconds since the Unix epoch: the clock of kernel receive
/// timestamps, so residence times compare like with like.
pub fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
