//! `AfPacketPort`: a switch port on an existing interface (the host end of a
//! veth pair, a NIC, or the netdev of a VM's TAP) through one AF_PACKET
//! socket, with batched receive and send.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use super::sys::netdev;
use super::sys::packet::{PacketSocket, RecvMmsg, RxMeta, SendMmsg, StrippedTag};
use super::sys::ring::RxRing;
use super::{
    ifname, Offload, OffloadCaps, Port, PortError, PortInfo, PortKind, RxBatch, RxSlot, RxStatus,
    SendError, TxFrame, BATCH_SIZE, RX_HEADROOM, VNET_HDR_LEN,
};
use crate::wire::{MacAddr, VLAN_TAG_LEN};

/// Socket buffer asked for in each direction: ~250 GSO super-frames or
/// ~11000 full-size frames. A sender whose TCP window grew behind a delayed
/// (impaired) link bursts a window's worth while the dataplane is busy or
/// descheduled; at 4 MiB the kernel cut such bursts (`rx_truncated`) and TCP
/// through a 10 ms delay lost half its throughput (docs/benchmarks.md).
/// Memory is charged only while frames wait.
const SOCKET_BUFFER: usize = 16 << 20;

/// Destination and source MAC: where a stripped tag goes back in.
const MAC_PAIR_LEN: usize = 12;

const _: () = assert!(RX_HEADROOM >= VLAN_TAG_LEN, "headroom must fit a tag");

/// A port on an existing interface through AF_PACKET.
pub struct AfPacketPort {
    sock: PacketSocket,
    kind: PortKind,
    /// The name it was opened with ([`Port::name`]).
    name: String,
    /// Its current name: followed through renames by [`Port::check`].
    ifname: String,
    ifindex: u32,
    mtu: u32,
    mac: Option<MacAddr>,
    capabilities: Vec<&'static str>,
    /// Whether the kernel filters our transmissions; if not, receive does.
    ignore_outgoing: bool,
    /// Frames carry a virtio-net header (PACKET_VNET_HDR): offloads travel.
    vnet: bool,
    rx: RecvMmsg,
    /// Receive ring, when the kernel gave one: frames are read from shared
    /// memory instead of with a copy per `recvmmsg`.
    ring: Option<RxRing>,
    tx: SendMmsg,
    /// Sticky: the kernel reports the device's removal only once.
    vanished: bool,
}

/// An AF_PACKET socket with everything set up that does not depend on the
/// interface: options, receive ring, buffers; unbound (protocol 0), so it
/// receives nothing. Creating the ring is the slow part of opening a port:
/// the kernel waits for an RCU grace period (synchronize_net, 10-25 ms)
/// inside PACKET_RX_RING, even on a socket never bound. Made ahead of time
/// (the daemon keeps a few), it takes that wait off a plug's path.
pub struct Prepared {
    sock: PacketSocket,
    capabilities: Vec<&'static str>,
    ignore_outgoing: bool,
    vnet: bool,
    ring: Option<RxRing>,
}

impl Prepared {
    /// A socket ready for [`AfPacketPort::open_prepared`] on any interface.
    pub fn new() -> Result<Prepared, PortError> {
        Self::with(true).map_err(|(step, e)| PortError::setup(step, "(unbound socket)", e))
    }

    fn with(try_ignore_outgoing: bool) -> Result<Prepared, (&'static str, io::Error)> {
        // Protocol 0: nothing is received before bind, so frames of other
        // interfaces cannot be queued while the socket is being set up.
        let sock = PacketSocket::new_unbound().map_err(|e| ("open AF_PACKET socket", e))?;
        let mut capabilities = Vec::new();

        // Without it the switch would read back every frame it sends on this
        // port and learn its own transmissions; the fallback filters on
        // sll_pkttype at receive, at the cost of copying those frames.
        let ignore_outgoing = try_ignore_outgoing && sock.set_ignore_outgoing().is_ok();
        if ignore_outgoing {
            capabilities.push("ignore-outgoing");
        }
        // The kernel strips the outer VLAN tag of every received frame
        // (skb_vlan_untag); auxdata is the only place it is still told, and
        // a switch must forward tagged frames unchanged.
        sock.set_auxdata()
            .map_err(|e| ("enable PACKET_AUXDATA", e))?;
        capabilities.push("auxdata-vlan");
        // Without it the kernel finishes checksums and segments GSO
        // super-frames before handing them over, and cannot take them on
        // send: TCP from a namespace would cross the switch MTU-sized.
        let vnet = sock.set_vnet_hdr().is_ok();
        if vnet {
            capabilities.push("vnet-hdr");
        }
        // Residence times then include the wait in the socket queue.
        if sock.set_timestamps().is_ok() {
            capabilities.push("rx-timestamps");
        }
        // The kernel copies frames into the ring on the CPU that received
        // them, and the switch reads them without a system call per batch:
        // the copy and the call leave the dataplane's core. Optional: the
        // plain socket works without it. L2SW_NO_RX_RING=1 turns it off.
        let ring = if std::env::var_os("L2SW_NO_RX_RING").is_none() {
            RxRing::new(&sock).ok()
        } else {
            None
        };
        if ring.is_some() {
            capabilities.push("rx-ring");
        }
        sock.grow_buffers(SOCKET_BUFFER);
        Ok(Prepared {
            sock,
            capabilities,
            ignore_outgoing,
            vnet,
            ring,
        })
    }
}

impl AfPacketPort {
    /// Opens a port on interface `ifname`. `kind` is [`PortKind::Iface`], or
    /// [`PortKind::TapVm`] for the netdev of a TAP whose queue a VM holds.
    pub fn open(ifname: &str, kind: PortKind) -> Result<AfPacketPort, PortError> {
        Self::open_with(ifname, kind, true)
    }

    /// `open`, optionally without PACKET_IGNORE_OUTGOING so tests can
    /// exercise the fallback filter on a kernel that has the option.
    fn open_with(
        ifname: &str,
        kind: PortKind,
        try_ignore_outgoing: bool,
    ) -> Result<AfPacketPort, PortError> {
        ifname::validate(ifname)?;
        let ifindex = netdev::name_to_index(ifname)
            .map_err(|e| PortError::setup("look up interface", ifname, e))?;
        let prepared = Prepared::with(try_ignore_outgoing)
            .map_err(|(step, e)| PortError::setup(step, ifname, e))?;
        Self::finish(prepared, ifname, ifindex, kind)
    }

    /// Opens a port on `ifname` with a socket made ahead of time by
    /// [`Prepared::new`]: only the interface's own steps remain, none of
    /// which waits for the kernel.
    pub fn open_prepared(
        prepared: Prepared,
        ifname: &str,
        kind: PortKind,
    ) -> Result<AfPacketPort, PortError> {
        ifname::validate(ifname)?;
        let ifindex = netdev::name_to_index(ifname)
            .map_err(|e| PortError::setup("look up interface", ifname, e))?;
        Self::finish(prepared, ifname, ifindex, kind)
    }

    fn finish(
        prepared: Prepared,
        ifname: &str,
        ifindex: u32,
        kind: PortKind,
    ) -> Result<AfPacketPort, PortError> {
        let Prepared {
            sock,
            capabilities,
            ignore_outgoing,
            vnet,
            ring,
        } = prepared;
        // A switch port must see frames for every destination MAC, not only
        // the interface's own.
        sock.add_promisc_membership(ifindex)
            .map_err(|e| PortError::setup("enable promiscuous mode", ifname, e))?;
        // Last: the socket starts receiving only once fully configured.
        sock.bind(ifindex)
            .map_err(|e| PortError::setup("bind AF_PACKET socket", ifname, e))?;

        let mtu = netdev::mtu(ifname).map_err(|e| PortError::setup("read MTU", ifname, e))?;
        let mac = netdev::hwaddr(ifname)
            .map_err(|e| PortError::setup("read MAC address", ifname, e))?
            .map(MacAddr);
        Ok(AfPacketPort {
            sock,
            kind,
            name: ifname.to_string(),
            ifname: ifname.to_string(),
            ifindex,
            mtu,
            mac,
            capabilities,
            ignore_outgoing,
            vnet,
            rx: RecvMmsg::new(BATCH_SIZE),
            ring,
            tx: SendMmsg::new(BATCH_SIZE),
            vanished: false,
        })
    }

    /// The interface index the socket was bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Whether the device this socket was bound to is gone (deleted, or moved
    /// to another namespace). The socket's own binding is the reliable sign:
    /// the kernel resets it to -1 on unregister, which an index lookup could
    /// miss once the index is reused. One syscall, since this also runs when
    /// sends fail on a down link.
    fn device_gone(&self) -> bool {
        match self.sock.bound_ifindex() {
            Ok(bound) => u32::try_from(bound) != Ok(self.ifindex),
            Err(_) => !netdev::index_exists(self.ifindex),
        }
    }

    fn vanished(&mut self) -> PortError {
        self.vanished = true;
        PortError::Vanished {
            name: self.name.clone(),
        }
    }

    fn send_error(&self, e: io::Error) -> SendError {
        match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::ENOBUFS) => SendError::WouldBlock,
            Some(libc::EMSGSIZE) => SendError::TooBig,
            // ENETDOWN: the device is down; ENXIO: no device at the bound
            // index. Either can also mean it was removed: tell them apart.
            Some(libc::ENETDOWN) | Some(libc::ENXIO) => {
                if self.device_gone() {
                    SendError::Vanished
                } else {
                    SendError::LinkDown
                }
            }
            Some(libc::ENODEV) => SendError::Vanished,
            _ => SendError::Io(e),
        }
    }
}

/// Puts a tag the kernel stripped back between the MAC addresses: the frame
/// was received at `RX_HEADROOM` with `len` bytes; the 12 MAC bytes move 4 to
/// the left into the headroom and the tag fills the gap, so nothing after the
/// MACs is copied. Returns where the frame now starts and its length.
fn restore_tag(buf: &mut [u8], len: usize, tag: StrippedTag) -> (usize, usize) {
    let start = RX_HEADROOM - VLAN_TAG_LEN;
    if len < MAC_PAIR_LEN || buf.len() < RX_HEADROOM + MAC_PAIR_LEN {
        return (RX_HEADROOM, len);
    }
    buf.copy_within(RX_HEADROOM..RX_HEADROOM + MAC_PAIR_LEN, start);
    let t = start + MAC_PAIR_LEN;
    buf[t..t + 2].copy_from_slice(&tag.tpid.to_be_bytes());
    buf[t + 2..t + 4].copy_from_slice(&tag.tci.to_be_bytes());
    (start, len + VLAN_TAG_LEN)
}

/// Room for the virtio-net header in front of a frame, when there is one.
fn vnet_len(vnet: bool) -> usize {
    if vnet {
        VNET_HDR_LEN
    } else {
        0
    }
}

impl AfPacketPort {
    /// A receive error: nothing to read, the link went down, or the device
    /// is gone.
    fn recv_error(&mut self, e: io::Error) -> Result<usize, PortError> {
        match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(0),
            // Reported once when the interface goes down (the socket
            // resumes by itself when it comes back up) or is removed.
            Some(libc::ENETDOWN) | Some(libc::ENXIO) | Some(libc::ENODEV) => {
                if self.device_gone() {
                    Err(self.vanished())
                } else {
                    Ok(0)
                }
            }
            _ => Err(PortError::Recv {
                name: self.name.clone(),
                source: e,
            }),
        }
    }

    /// Receives with `recvmmsg`, one copy per frame into the slots.
    fn recv_mmsg(&mut self, batch: &mut RxBatch) -> Result<usize, PortError> {
        // The virtio-net header, when there is one, lands right in front of
        // the frame, in the headroom.
        let hdr = vnet_len(self.vnet);
        let bufs = batch
            .slots_mut()
            .iter_mut()
            .map(|s| s.buf_mut().get_mut(RX_HEADROOM - hdr..).unwrap_or_default());
        let n = match self.rx.recv(&self.sock, bufs) {
            Ok(n) => n,
            Err(e) => return self.recv_error(e),
        };
        let read_at = super::realtime_ns();
        let slots = batch.slots_mut();
        let mut kept = 0;
        for i in 0..n {
            let meta = self.rx.meta(i);
            if !self.finish_slot(&mut slots[i], &meta, read_at) {
                continue;
            }
            // Keep the frames contiguous from slot 0: swapping slots moves
            // two buffer pointers, not frame bytes.
            slots.swap(kept, i);
            kept += 1;
        }
        batch.set_len(kept);
        Ok(kept)
    }

    /// Reads frames from the receive ring into the slots. Frames too large
    /// for a ring slot wait whole on the socket and are read from there.
    fn recv_ring(&mut self, batch: &mut RxBatch) -> Result<usize, PortError> {
        let hdr = vnet_len(self.vnet);
        let read_at = super::realtime_ns();
        let mut n = 0;
        while n < batch.capacity() {
            let ring = self.ring.as_mut().expect("recv_ring has a ring");
            let Some(f) = ring.peek() else { break };
            let slot = batch.slot_mut(n);
            let meta = if f.copied() {
                // The ring holds a cut copy; the whole frame is queued on
                // the socket, in ring order.
                ring.release();
                let buf = slot
                    .buf_mut()
                    .get_mut(RX_HEADROOM - hdr..)
                    .unwrap_or_default();
                match self.rx.recv(&self.sock, std::iter::once(buf)) {
                    Ok(1) => self.rx.meta(0),
                    Ok(_) => continue,
                    Err(e) => return self.recv_error(e).map(|_| n),
                }
            } else {
                let buf = slot.buf_mut();
                let room = buf.len() - RX_HEADROOM;
                let len = f.data.len().min(room);
                buf[RX_HEADROOM..RX_HEADROOM + len].copy_from_slice(&f.data[..len]);
                if hdr > 0 && f.vnet.len() == hdr {
                    buf[RX_HEADROOM - hdr..RX_HEADROOM].copy_from_slice(f.vnet);
                }
                let vlan = (f.status & libc::TP_STATUS_VLAN_VALID != 0).then_some(StrippedTag {
                    tpid: if f.status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                        f.vlan_tpid
                    } else {
                        0x8100
                    },
                    tci: f.vlan_tci,
                });
                let meta = RxMeta {
                    copied: hdr + len,
                    wire_len: hdr + f.wire_len,
                    truncated: f.wire_len > len,
                    outgoing: f.pkttype == libc::PACKET_OUTGOING,
                    vlan,
                    csum_not_ready: f.status & libc::TP_STATUS_CSUMNOTREADY != 0,
                    rx_ts_ns: Some(f.ts_ns),
                };
                ring.release();
                meta
            };
            if self.finish_slot(batch.slot_mut(n), &meta, read_at) {
                n += 1;
            }
        }
        batch.set_len(n);
        if n == 0 {
            // Woken with nothing in the ring: a device going down or away
            // shows only as the socket's error.
            match self.sock.take_error() {
                Ok(Some(e)) | Err(e) => return self.recv_error(e),
                Ok(None) => {}
            }
        }
        Ok(n)
    }

    /// Turns what the kernel said about a frame already in `slot` (header
    /// at `RX_HEADROOM - vnet`, frame at `RX_HEADROOM`) into the slot's
    /// frame, offload and timestamp. False for a frame to skip.
    fn finish_slot(&self, slot: &mut RxSlot, meta: &RxMeta, read_at: u64) -> bool {
        let hdr = vnet_len(self.vnet);
        if (meta.outgoing && !self.ignore_outgoing) || meta.copied < hdr {
            return false;
        }
        let (copied, full) = (meta.copied - hdr, meta.wire_len.saturating_sub(hdr));
        let mut offload = Offload::NONE;
        if hdr > 0 {
            let mut h = [0u8; VNET_HDR_LEN];
            h.copy_from_slice(&slot.buf()[RX_HEADROOM - hdr..RX_HEADROOM]);
            // A header this switch cannot carry: the bytes pass as they are.
            offload = Offload::from_vnet_hdr(&h).unwrap_or_default();
        }
        let (start, len, wire_len) = match meta.vlan {
            Some(tag) => {
                let (start, len) = restore_tag(slot.buf_mut(), copied, tag);
                offload = offload.shifted((len - copied) as u16);
                (start, len, full + (len - copied))
            }
            None => (RX_HEADROOM, copied, full),
        };
        let status = if meta.truncated {
            RxStatus::Truncated { wire_len }
        } else {
            RxStatus::Complete
        };
        slot.set(start, len, status);
        slot.set_offload(offload);
        slot.set_rx_ts(meta.rx_ts_ns.unwrap_or(read_at));
        // Without a header to say where the checksum starts, the flag
        // still says one is unfinished.
        slot.set_csum_partial(meta.csum_not_ready && offload.csum.is_none());
        true
    }
}

impl Port for AfPacketPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> PortInfo {
        PortInfo {
            kind: self.kind,
            ifname: self.ifname.clone(),
            ifindex: Some(self.ifindex),
            mtu: self.mtu,
            mac: self.mac,
            capabilities: self.capabilities.clone(),
            peer: None,
        }
    }

    fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn mtu(&self) -> u32 {
        self.mtu
    }

    fn recv_batch(&mut self, batch: &mut RxBatch) -> Result<usize, PortError> {
        batch.clear();
        if self.vanished {
            return Err(self.vanished());
        }
        if self.ring.is_some() {
            self.recv_ring(batch)
        } else {
            self.recv_mmsg(batch)
        }
    }

    fn rx_waiting(&self) -> Option<bool> {
        // A vanished device shows only through the socket: let poll see it.
        if self.vanished {
            return None;
        }
        self.ring.as_ref().map(RxRing::ready)
    }

    fn take_kernel_drops(&mut self) -> u64 {
        self.sock.take_drops().unwrap_or(0)
    }

    fn offload_caps(&self) -> OffloadCaps {
        if self.vnet {
            OffloadCaps::ALL
        } else {
            OffloadCaps::NONE
        }
    }

    fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> (usize, Option<SendError>) {
        if frames.is_empty() {
            return (0, None);
        }
        let (sent, err) = self.tx.send(&self.sock, frames, self.vnet);
        (sent, err.map(|e| self.send_error(e)))
    }

    fn check(&mut self) -> Result<(), PortError> {
        if self.vanished || self.device_gone() {
            return Err(self.vanished());
        }
        // By index: the interface may have been renamed since it was opened.
        let name = match netdev::index_to_name(self.ifindex) {
            Ok(name) => name,
            Err(_) if self.device_gone() => return Err(self.vanished()),
            Err(e) => return Err(PortError::setup("look up interface", &self.ifname, e)),
        };
        match netdev::mtu(&name) {
            Ok(mtu) => self.mtu = mtu,
            // Renamed again between the two calls: the next check catches up.
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {}
            Err(e) => return Err(PortError::setup("read MTU", &name, e)),
        }
        if name != self.ifname {
            self.ifname = name;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
