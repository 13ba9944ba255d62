//! A VXLAN tunnel port (RFC 7348): frames the switch sends here leave
//! encapsulated in UDP toward the remote tunnel endpoint (VTEP) named with
//! each frame; packets received on the UDP port are decapsulated and handed
//! to the switch with the VTEP they came from.
//!
//! The port decides nothing: which VTEP a frame goes to (a remote FDB entry,
//! or each member of the flood list) is the switch's decision, passed in
//! [`Port::send_batch_to`].
//!
//! - Receive: one `recvmmsg` for up to a batch of datagrams, each written
//!   so that its VXLAN header lands in the slot's headroom and the inner
//!   frame where every port's frames start: no copy. With UDP GRO a slot may
//!   come back holding a coalesced run of datagrams; the run is spread over
//!   the slots after it (its first datagram stays in place, the others are
//!   copied), and what does not fit the batch waits, in arrival order, for
//!   the next call. Packets with bad flags, another VNI or our own source
//!   address are returned as [`RxStatus::Invalid`], so the dataplane counts
//!   them under their reason.
//! - Send: `sendmmsg` of up to a batch of messages; the 8-byte VXLAN header
//!   and the inner frame are two iovecs of one datagram. A GSO super-frame
//!   (TCP from a namespace with TSO) is cut into segments once and leaves as
//!   one UDP GSO message (`UDP_SEGMENT`): the kernel carries it through the
//!   underlay as one packet and cuts it where it must, so TCP through the
//!   tunnel does not cost a system call, nor a trip through the IP stack,
//!   per segment.
//! - UDP source port: chosen per inner flow (a hash of addresses and ports)
//!   from a small pool of sockets bound to ephemeral ports, so an underlay
//!   that balances on the UDP 5-tuple keeps each flow on one path. The
//!   socket bound to the VXLAN port only receives.
//! - MTU: the inner MTU is the underlay interface's MTU minus 50 (as a
//!   Linux vxlan device's), or `--mtu`; bigger inner frames are refused
//!   (`egress_too_big`) rather than fragmented.

use std::io::{self, IoSlice};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};

use smallvec::SmallVec;

use super::sys::netdev;
use super::sys::udp::{self, UdpMsg, UdpRecv, UdpSend, UdpSock};
use super::{
    GsoKind, OffloadCaps, Port, PortError, PortInfo, PortKind, RxBatch, RxInvalid, RxSlot,
    RxStatus, SendError, TunnelInfo, TxFrame, BATCH_SIZE, RX_BUF_SIZE, RX_HEADROOM,
};
use crate::wire::gso::{complete_partial, segment, SegmentKind};
use crate::wire::vxlan::{self, VxlanError, VXLAN_HEADER_LEN, VXLAN_V4_OVERHEAD};
use crate::wire::{EthernetFrame, ETH_HEADER_LEN, VLAN_TAG_LEN};

/// Sockets in the source-port pool.
pub const SOURCE_PORTS: usize = 4;
/// Default outer TTL (the Linux vxlan device's for unicast).
pub const DEFAULT_TTL: u8 = 64;
/// Largest UDP payload of one GSO send (an IPv4 datagram is at most 65535
/// bytes with its 28 bytes of headers).
const GSO_MAX_PAYLOAD: usize = 65535 - 28;
/// Most segments the kernel takes in one UDP GSO send (UDP_MAX_SEGMENTS).
const GSO_MAX_SEGMENTS: usize = 64;
/// Most iovecs built for one `sendmmsg`.
const MAX_IOVS: usize = 256;
/// Receive and send buffer asked for each socket.
const SOCKET_BUFFER: usize = 4 << 20;
/// Where in a receive slot a datagram is written: its VXLAN header ends
/// where every port's frames start.
const RX_AT: usize = RX_HEADROOM - VXLAN_HEADER_LEN;

/// Spare receive buffers allocated when the port opens; more are made
/// only when a burst of coalesced runs holds more datagrams back at once.
const SPARE_BUFFERS: usize = 4;

/// A buffer like `slot`'s, for the pool of spares (only when the pool is
/// empty: it refills from held buffers handed out).
fn alloc_buf(slot: &RxSlot) -> Box<[u8]> {
    vec![0u8; slot.buf().len()].into_boxed_slice()
}

/// How to open a VXLAN port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanConfig {
    pub vni: u32,
    /// Local VTEP address: the UDP socket binds to it.
    pub local: Ipv4Addr,
    /// UDP port to listen on and send to (4789).
    pub dstport: u16,
    pub ttl: u8,
    /// Set DF on the outer header.
    pub df: bool,
    /// Inner MTU; `None`: the underlay interface's MTU minus 50.
    pub mtu: Option<u32>,
    /// The namespace the underlay sockets are opened in (`None`: the switch's).
    pub netns: Option<String>,
}

/// Opening a VXLAN port failed.
#[derive(Debug, thiserror::Error)]
pub enum VxlanOpenError {
    #[error("VNI {0} is out of range (0..=16777215)")]
    BadVni(u32),
    #[error("{local}:{port} is already in use{ns}: another VXLAN port or program listens there (one VNI per local address and UDP port)")]
    AddrInUse {
        local: Ipv4Addr,
        port: u16,
        ns: String,
    },
    #[error("local address {local} is not an address of any interface{ns}")]
    NoSuchAddr { local: Ipv4Addr, ns: String },
    #[error("cannot {step} for VXLAN port {name}: {source}")]
    Setup {
        step: &'static str,
        name: String,
        #[source]
        source: io::Error,
    },
}

/// A received datagram (maybe a coalesced run) the last batch had no room
/// for; its buffer was swapped out of the slot it arrived in.
struct Held {
    buf: Box<[u8]>,
    meta: udp::UdpMeta,
    /// Bytes of the payload already handed out.
    off: usize,
}

/// Size of each datagram of what `recvmmsg` wrote (one datagram, or a run
/// coalesced by UDP GRO, the last of which may be shorter), and how many.
fn run_shape(m: &udp::UdpMeta) -> (usize, usize) {
    let seg = m.gro_size.map_or(m.copied, usize::from).max(1);
    (seg, m.copied.div_ceil(seg).max(1))
}

/// The opened sockets and what was probed, built inside the namespace.
struct Opened {
    rx: UdpSock,
    tx: Vec<UdpSock>,
    underlay: Option<String>,
    underlay_mtu: Option<u32>,
    gso: bool,
    gro: bool,
}

/// An open VXLAN port.
pub struct VxlanPort {
    name: String,
    cfg: VxlanConfig,
    rx: UdpSock,
    tx: Vec<UdpSock>,
    source_ports: Vec<u16>,
    recv: UdpRecv,
    send: UdpSend,
    header: [u8; VXLAN_HEADER_LEN],
    mtu: u32,
    underlay: Option<String>,
    underlay_mtu: Option<u32>,
    gso: bool,
    /// UDP GRO on the receiving socket (runs are cut into one datagram per
    /// slot).
    gro: bool,
    /// Datagrams received but not yet handed out, oldest first.
    held: std::collections::VecDeque<Held>,
    /// Spare receive buffers, swapped into slots whose buffer went to `held`.
    spare: Vec<Box<[u8]>>,
    /// Segments and completed copies of the frames of one send.
    scratch: Vec<u8>,
    ranges: Vec<(usize, usize)>,
}

fn open_sockets(name: &str, cfg: &VxlanConfig, ns: &str) -> Result<Opened, VxlanOpenError> {
    let setup = |step: &'static str| {
        let name = name.to_string();
        move |source: io::Error| VxlanOpenError::Setup { step, name, source }
    };
    let underlay = udp::iface_with_addr(cfg.local).map_err(setup("list local addresses"))?;
    let Some(dev) = underlay else {
        return Err(VxlanOpenError::NoSuchAddr {
            local: cfg.local,
            ns: ns.to_string(),
        });
    };
    let underlay_mtu = netdev::mtu(&dev).ok();
    let rx = UdpSock::bind(SocketAddrV4::new(cfg.local, cfg.dstport)).map_err(|e| {
        if e.raw_os_error() == Some(libc::EADDRINUSE) {
            VxlanOpenError::AddrInUse {
                local: cfg.local,
                port: cfg.dstport,
                ns: ns.to_string(),
            }
        } else {
            setup("bind the UDP socket")(e)
        }
    })?;
    rx.set_timestamps()
        .map_err(setup("enable receive timestamps"))?;
    rx.grow_buffers(SOCKET_BUFFER);
    let gro = std::env::var_os("L2SW_NO_UDP_GRO").is_none() && rx.set_gro().is_ok();
    let mut tx = Vec::with_capacity(SOURCE_PORTS);
    for _ in 0..SOURCE_PORTS {
        let s = UdpSock::bind(SocketAddrV4::new(cfg.local, 0))
            .map_err(setup("bind a sending socket"))?;
        s.set_ttl(cfg.ttl).map_err(setup("set the outer TTL"))?;
        s.set_df(cfg.df).map_err(setup("set the outer DF bit"))?;
        s.grow_buffers(SOCKET_BUFFER);
        tx.push(s);
    }
    let gso = tx[0].supports_gso();
    Ok(Opened {
        rx,
        tx,
        underlay: Some(dev),
        underlay_mtu,
        gso,
        gro,
    })
}

impl VxlanPort {
    /// Opens the port's sockets in the calling thread's namespace, which
    /// must be `cfg.netns` when that is given (the name is for messages).
    pub fn open(name: &str, cfg: VxlanConfig) -> Result<VxlanPort, VxlanOpenError> {
        if cfg.vni > vxlan::VNI_MAX {
            return Err(VxlanOpenError::BadVni(cfg.vni));
        }
        // The caller runs this inside `cfg.netns` (`netns::run_in`): the
        // sockets stay in the namespace they were made in.
        let where_ = match &cfg.netns {
            Some(ns) => format!(" in namespace {ns}"),
            None => String::new(),
        };
        let opened = open_sockets(name, &cfg, &where_)?;
        let mtu = cfg.mtu.unwrap_or_else(|| {
            opened
                .underlay_mtu
                .unwrap_or(1500)
                .saturating_sub(VXLAN_V4_OVERHEAD)
        });
        let source_ports = opened
            .tx
            .iter()
            .map(|s| s.local_addr().map(|a| a.port()).unwrap_or(0))
            .collect();
        Ok(VxlanPort {
            name: name.to_string(),
            header: vxlan::header(cfg.vni),
            cfg,
            rx: opened.rx,
            tx: opened.tx,
            source_ports,
            recv: UdpRecv::new(BATCH_SIZE),
            send: UdpSend::new(BATCH_SIZE),
            mtu,
            underlay: opened.underlay,
            underlay_mtu: opened.underlay_mtu,
            gso: opened.gso,
            gro: opened.gro,
            held: std::collections::VecDeque::with_capacity(BATCH_SIZE),
            spare: (0..SPARE_BUFFERS)
                .map(|_| vec![0u8; RX_BUF_SIZE].into_boxed_slice())
                .collect(),
            scratch: Vec::with_capacity(128 * 1024),
            ranges: Vec::with_capacity(128),
        })
    }

    pub fn config(&self) -> &VxlanConfig {
        &self.cfg
    }

    /// Which socket (so which UDP source port) carries `frame`.
    fn socket_for(&self, frame: &[u8]) -> usize {
        vxlan::inner_flow_hash(frame) as usize % self.tx.len()
    }

    /// Largest inner frame the MTU lets through, with one tag allowed.
    fn fits(&self, frame: &[u8]) -> bool {
        let tagged = EthernetFrame::new_checked(frame)
            .map(|f| f.vlan().is_some())
            .unwrap_or(false);
        frame.len() <= self.mtu as usize + ETH_HEADER_LEN + if tagged { VLAN_TAG_LEN } else { 0 }
    }
}

fn send_error(e: io::Error) -> SendError {
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::ENOBUFS) => SendError::WouldBlock,
        Some(libc::EMSGSIZE) => SendError::TooBig,
        Some(libc::ENETDOWN) => SendError::LinkDown,
        _ => SendError::Io(e),
    }
}

/// How one frame of a send leaves: as it is (with the header in front), a
/// completed copy, or segments, all in the scratch arena.
#[derive(Clone, Copy)]
enum Prepared {
    AsIs,
    /// Range in the scratch arena.
    Copy(usize, usize),
    /// Segments `ranges[.0 .. .0 + .1]` of the scratch arena.
    Segments(usize, usize),
}

impl Port for VxlanPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> PortInfo {
        let mut capabilities = vec!["recvmmsg", "sendmmsg", "flow-source-port"];
        if self.gso {
            capabilities.push("udp-gso");
        }
        if self.gro {
            capabilities.push("udp-gro");
        }
        PortInfo {
            kind: PortKind::Vxlan,
            ifname: format!("vxlan{}", self.cfg.vni),
            ifindex: None,
            mtu: self.mtu,
            mac: None,
            capabilities,
            peer: None,
        }
    }

    fn raw_fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }

    fn mtu(&self) -> u32 {
        self.mtu
    }

    fn recv_batch(&mut self, batch: &mut RxBatch) -> Result<usize, PortError> {
        let cap = batch.capacity();
        // What the last call had no room for goes first; while any of it is
        // left the batch is full, so nothing newer overtakes it.
        let mut n = self.hand_out_held(batch, 0);
        if n == cap {
            batch.set_len(n);
            return Ok(n);
        }
        // The VXLAN header goes into the headroom, so the inner frame starts
        // where every port's frames do.
        let bufs = batch.slots_mut()[n..]
            .iter_mut()
            .map(|s| &mut s.buf_mut()[RX_AT..]);
        let got = match self.recv.recv(&self.rx, bufs) {
            Ok(got) => got.min(cap - n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(_) if n > 0 => 0,
            Err(source) => {
                return Err(PortError::Recv {
                    name: self.name.clone(),
                    source,
                })
            }
        };
        let read_at = super::realtime_ns();
        // The longest prefix of datagrams whose runs fit the batch whole;
        // the rest is held, in order, for the next call.
        let mut fit = 0;
        let mut total = n;
        while fit < got {
            let (_, k) = run_shape(&self.recv.meta(fit));
            if total + k > cap {
                break;
            }
            total += k;
            fit += 1;
        }
        for i in fit..got {
            let meta = self.recv.meta(i);
            let slot = batch.slot_mut(n + i);
            let mut buf = match self.spare.pop() {
                Some(b) if b.len() == slot.buf().len() => b,
                _ => alloc_buf(slot),
            };
            slot.swap_buf(&mut buf);
            self.held.push_back(Held { buf, meta, off: 0 });
        }
        // Spread each run over the slots after it, last run first, so a
        // run only ever moves into slots no datagram still occupies.
        let mut end = total;
        for i in (0..fit).rev() {
            let meta = self.recv.meta(i);
            let (seg, k) = run_shape(&meta);
            let first = end - k;
            batch.slots_mut().swap(n + i, first);
            let slots = &mut batch.slots_mut()[first..end];
            let (head, rest) = slots.split_first_mut().expect("a run has a datagram");
            for (j, slot) in rest.iter_mut().enumerate() {
                let from = RX_AT + (j + 1) * seg;
                let len = seg.min(RX_AT + meta.copied - from);
                slot.buf_mut()[RX_AT..RX_AT + len].copy_from_slice(&head.buf()[from..from + len]);
            }
            for (j, slot) in slots.iter_mut().enumerate() {
                let len = seg.min(meta.copied - j * seg);
                let last = j + 1 == k;
                self.finish_slot(slot, len, &meta, last, read_at);
            }
            end = first;
        }
        n = self.hand_out_held(batch, total);
        batch.set_len(n);
        Ok(n)
    }

    fn offload_caps(&self) -> OffloadCaps {
        // Super-frames are cut and partial checksums finished here, where
        // the cut segments can leave as one UDP GSO message.
        OffloadCaps::ALL
    }

    fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> (usize, Option<SendError>) {
        let none = vec![None; frames.len()];
        self.send_batch_to(frames, &none)
    }

    fn send_batch_to(
        &mut self,
        frames: &[TxFrame<'_>],
        to: &[Option<Ipv4Addr>],
    ) -> (usize, Option<SendError>) {
        let mut done = 0;
        while done < frames.len() {
            let (n, err) = self.send_chunk(&frames[done..], &to[done.min(to.len())..]);
            done += n;
            if err.is_some() {
                return (done, err);
            }
        }
        (done, None)
    }

    fn check(&mut self) -> Result<(), PortError> {
        // A pending socket error (ICMP unreachable for an earlier send) must
        // not stick to the next send.
        let _ = self.rx.take_error();
        for s in &self.tx {
            let _ = s.take_error();
        }
        Ok(())
    }

    fn tunnel(&self) -> Option<TunnelInfo> {
        Some(TunnelInfo {
            vni: self.cfg.vni,
            local: self.cfg.local,
            dstport: self.cfg.dstport,
            ttl: self.cfg.ttl,
            df: self.cfg.df,
            netns: self.cfg.netns.clone(),
            underlay: self.underlay.clone(),
            underlay_mtu: self.underlay_mtu,
            source_ports: self.source_ports.clone(),
        })
    }
}

impl VxlanPort {
    /// How a received VXLAN payload (header and inner frame) is taken.
    fn classify(&self, payload: &[u8], src: Ipv4Addr) -> RxStatus {
        match vxlan::parse(payload) {
            Err(VxlanError::Short) => RxStatus::Invalid(RxInvalid::VxlanShort),
            Err(VxlanError::BadFlags(_)) => RxStatus::Invalid(RxInvalid::VxlanBadFlags),
            Ok(vni) if vni != self.cfg.vni => RxStatus::Invalid(RxInvalid::VxlanUnknownVni),
            Ok(_) if src == self.cfg.local => RxStatus::Invalid(RxInvalid::VxlanOwnSource),
            Ok(_) => RxStatus::Complete,
        }
    }

    /// Records one datagram of `len` bytes sitting at [`RX_AT`] in `slot`;
    /// `last`: the final datagram of what `recvmmsg` wrote, the one a
    /// truncation cut.
    fn finish_slot(
        &self,
        slot: &mut RxSlot,
        len: usize,
        meta: &udp::UdpMeta,
        last: bool,
        read_at: u64,
    ) {
        let src = *meta.src.ip();
        let inner = len.saturating_sub(VXLAN_HEADER_LEN);
        let status = if meta.truncated && last {
            RxStatus::Truncated {
                wire_len: inner + 1,
            }
        } else {
            self.classify(&slot.buf()[RX_AT..RX_AT + len], src)
        };
        slot.set(RX_HEADROOM, inner, status);
        slot.set_tunnel_src(Some(src));
        slot.set_rx_ts(meta.rx_ts_ns.unwrap_or(read_at));
    }

    /// Fills slots from `n` on with held datagrams, oldest first, and
    /// returns how many slots are filled.
    fn hand_out_held(&mut self, batch: &mut RxBatch, mut n: usize) -> usize {
        let cap = batch.capacity();
        let read_at = super::realtime_ns();
        while n < cap {
            let Some(h) = self.held.front_mut() else {
                break;
            };
            let meta = h.meta;
            let (seg, _) = run_shape(&meta);
            let len = seg.min(meta.copied - h.off.min(meta.copied));
            let slot = batch.slot_mut(n);
            if h.off == 0 && len == meta.copied && h.buf.len() == slot.buf().len() {
                // A single datagram: its whole buffer takes the slot's place.
                slot.swap_buf(&mut h.buf);
            } else {
                slot.buf_mut()[RX_AT..RX_AT + len]
                    .copy_from_slice(&h.buf[RX_AT + h.off..RX_AT + h.off + len]);
            }
            h.off += len;
            let last = h.off >= meta.copied;
            let slot = batch.slot_mut(n);
            self.finish_slot(slot, len, &meta, last, read_at);
            n += 1;
            if last {
                let h = self.held.pop_front().expect("the front was just used");
                self.spare.push(h.buf);
            }
        }
        n
    }

    /// Sends the longest prefix of `frames` that shares one source socket
    /// and fits one `sendmmsg`; returns how many frames left and the error
    /// of the next when it could not.
    fn send_chunk(
        &mut self,
        frames: &[TxFrame<'_>],
        to: &[Option<Ipv4Addr>],
    ) -> (usize, Option<SendError>) {
        let sock = self.socket_for(frames[0].data);
        self.scratch.clear();
        self.ranges.clear();
        // Pass 1: decide how each frame leaves and cut what must be cut.
        let mut prepared: SmallVec<[Prepared; BATCH_SIZE]> = SmallVec::new();
        let (mut iovs, mut msgs) = (0usize, 0usize);
        let mut stop: Option<SendError> = None;
        for (i, f) in frames.iter().enumerate() {
            if prepared.len() == BATCH_SIZE || (i > 0 && self.socket_for(f.data) != sock) {
                break;
            }
            if to.get(i).copied().flatten().is_none() {
                stop = Some(SendError::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a VXLAN port sends only toward a remote VTEP the switch names",
                )));
                break;
            }
            let p = match f.offload.gso {
                Some(g) => {
                    let kind = match g.kind {
                        GsoKind::Tcp4 | GsoKind::Tcp6 => SegmentKind::Tcp,
                        GsoKind::UdpL4 => SegmentKind::Udp,
                        GsoKind::Ufo => {
                            stop = Some(SendError::Io(io::Error::new(
                                io::ErrorKind::Unsupported,
                                "UFO super-frames cannot be cut into datagrams",
                            )));
                            break;
                        }
                    };
                    let seg_frame = g.hdr_len as usize + g.size as usize;
                    if g.size == 0 || !self.fits(&f.data[..seg_frame.min(f.data.len())]) {
                        stop = Some(SendError::TooBig);
                        break;
                    }
                    let first = self.ranges.len();
                    match segment(
                        f.data,
                        kind,
                        g.size as usize,
                        g.ecn,
                        &mut self.scratch,
                        &mut self.ranges,
                    ) {
                        Ok(k) => Prepared::Segments(first, k),
                        Err(e) => {
                            stop = Some(SendError::Io(io::Error::new(
                                io::ErrorKind::InvalidData,
                                e.to_string(),
                            )));
                            break;
                        }
                    }
                }
                None if !self.fits(f.data) => {
                    stop = Some(SendError::TooBig);
                    break;
                }
                None => match f.offload.csum {
                    Some((start, off)) => {
                        let s = self.scratch.len();
                        self.scratch.extend_from_slice(f.data);
                        complete_partial(&mut self.scratch[s..], start as usize, off as usize);
                        Prepared::Copy(s, f.data.len())
                    }
                    None => Prepared::AsIs,
                },
            };
            let (m, v) = match p {
                Prepared::Segments(first, k) => {
                    let seg_len = self.ranges[first].1 + VXLAN_HEADER_LEN;
                    let per = (GSO_MAX_PAYLOAD / seg_len).clamp(1, GSO_MAX_SEGMENTS);
                    (k.div_ceil(per), 2 * k)
                }
                _ => (1, 2),
            };
            if !prepared.is_empty() && (msgs + m > BATCH_SIZE || iovs + v > MAX_IOVS) {
                break;
            }
            msgs += m;
            iovs += v;
            prepared.push(p);
        }
        if prepared.is_empty() {
            return (0, stop);
        }
        // Pass 2: the messages, each pointing at the header and the frame
        // or its segments.
        let hdr = IoSlice::new(&self.header);
        let mut parts: SmallVec<[IoSlice<'_>; MAX_IOVS]> = SmallVec::new();
        // (first part, parts, gso size, frame index)
        let mut plan: SmallVec<[(usize, usize, u16, usize); BATCH_SIZE]> = SmallVec::new();
        for (i, p) in prepared.iter().enumerate() {
            match *p {
                Prepared::AsIs | Prepared::Copy(..) => {
                    let data = match *p {
                        Prepared::Copy(s, l) => &self.scratch[s..s + l],
                        _ => frames[i].data,
                    };
                    plan.push((parts.len(), 2, 0, i));
                    parts.push(hdr);
                    parts.push(IoSlice::new(data));
                }
                Prepared::Segments(first, k) => {
                    let seg_len = self.ranges[first].1 + VXLAN_HEADER_LEN;
                    let per = (GSO_MAX_PAYLOAD / seg_len).clamp(1, GSO_MAX_SEGMENTS);
                    let mut s = 0;
                    while s < k {
                        let take = per.min(k - s);
                        let gso = if take > 1 && self.gso {
                            seg_len as u16
                        } else {
                            0
                        };
                        if gso == 0 {
                            // One datagram per message.
                            for j in s..s + take {
                                let (a, l) = self.ranges[first + j];
                                plan.push((parts.len(), 2, 0, i));
                                parts.push(hdr);
                                parts.push(IoSlice::new(&self.scratch[a..a + l]));
                            }
                        } else {
                            plan.push((parts.len(), 2 * take, gso, i));
                            for j in s..s + take {
                                let (a, l) = self.ranges[first + j];
                                parts.push(hdr);
                                parts.push(IoSlice::new(&self.scratch[a..a + l]));
                            }
                        }
                        s += take;
                    }
                }
            }
        }
        let port = self.cfg.dstport;
        let msgs: SmallVec<[UdpMsg<'_>; BATCH_SIZE]> = plan
            .iter()
            .map(|&(p0, np, gso, i)| UdpMsg {
                dst: SocketAddrV4::new(to[i].unwrap_or(Ipv4Addr::UNSPECIFIED), port),
                parts: &parts[p0..p0 + np],
                gso,
            })
            .collect();
        let (sent, err) = self.send.send(&self.tx[sock], &msgs);
        if let Some(e) = err {
            // Frames whose every message left count as sent; the frame of
            // the refused message is the one the error is about.
            let frame = plan[sent].3;
            let sent_frames = if sent > 0 && plan[sent - 1].3 == frame {
                // Part of a super-frame left: count it, report the next.
                frame + 1
            } else {
                frame
            };
            if sent_frames > frame {
                return (sent_frames, None);
            }
            return (frame, Some(send_error(e)));
        }
        (prepared.len(), stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const VNI: u32 = 4242;
    /// The remote VTEP: another loopback address (the port drops packets
    /// from its own local address as underlay loops).
    const PEER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

    /// A VXLAN datagram carrying an inner frame numbered `seq`, `len` bytes
    /// of inner frame in all.
    fn datagram(seq: u16, len: usize) -> Vec<u8> {
        let mut d = vxlan::header(VNI).to_vec();
        d.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5]);
        d.extend_from_slice(&seq.to_be_bytes());
        d.resize(VXLAN_HEADER_LEN + len, 0xa5);
        d
    }

    fn open_on_loopback() -> VxlanPort {
        // A port of the dynamic range nothing else in the suite binds.
        for port in 47000..47100 {
            let cfg = VxlanConfig {
                vni: VNI,
                local: Ipv4Addr::LOCALHOST,
                dstport: port,
                ttl: DEFAULT_TTL,
                df: false,
                mtu: Some(1500),
                netns: None,
            };
            match VxlanPort::open("vxtest", cfg) {
                Ok(p) => return p,
                Err(VxlanOpenError::AddrInUse { .. }) => continue,
                Err(e) => panic!("cannot open a VXLAN port on 127.0.0.1: {e}"),
            }
        }
        panic!("no free UDP port in 47000..47100 on 127.0.0.1");
    }

    /// Sends `train` datagrams of one size as one UDP GSO message (the
    /// receiver's GRO keeps them one run), or one by one without GSO.
    fn send_train(tx: &UdpSock, to: SocketAddrV4, dgrams: &[Vec<u8>]) {
        let mut send = UdpSend::new(1);
        let parts: Vec<IoSlice<'_>> = dgrams.iter().map(|d| IoSlice::new(d)).collect();
        let gso = if tx.supports_gso() && dgrams.len() > 1 {
            dgrams[0].len() as u16
        } else {
            0
        };
        if gso == 0 {
            for p in &parts {
                let msg = UdpMsg {
                    dst: to,
                    parts: std::slice::from_ref(p),
                    gso: 0,
                };
                let (sent, err) = send.send(tx, &[msg]);
                assert_eq!(sent, 1, "send failed: {err:?}");
            }
            return;
        }
        let msg = UdpMsg {
            dst: to,
            parts: &parts,
            gso,
        };
        let (sent, err) = send.send(tx, &[msg]);
        assert_eq!(sent, 1, "GSO send failed: {err:?}");
    }

    /// Coalesced runs longer than the batch are handed out whole, in the
    /// order they arrived, across calls: every inner frame once, none
    /// reordered, each with the VTEP it came from.
    #[test]
    fn runs_are_cut_in_order_across_batches() {
        let mut port = open_on_loopback();
        let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port.config().dstport);
        let tx = UdpSock::bind(SocketAddrV4::new(PEER, 0)).expect("bind sender");
        let mut seq = 0u16;
        let mut expect = Vec::new();
        let mut train = |n: usize, len: usize, seq: &mut u16| {
            let d: Vec<Vec<u8>> = (0..n)
                .map(|i| {
                    // The last datagram of a run may be shorter.
                    let l = if i + 1 == n && n > 1 { len - 30 } else { len };
                    expect.push((*seq, l));
                    *seq += 1;
                    datagram(*seq - 1, l)
                })
                .collect();
            send_train(&tx, to, &d);
        };
        train(20, 300, &mut seq);
        train(1, 100, &mut seq);
        train(1, 120, &mut seq);
        train(13, 500, &mut seq);
        train(1, 90, &mut seq);
        train(30, 200, &mut seq);

        let mut batch = RxBatch::new(8);
        let mut got = Vec::new();
        let mut held_back = false;
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < expect.len() && Instant::now() < deadline {
            let n = port.recv_batch(&mut batch).expect("receive");
            held_back |= !port.held.is_empty();
            assert!(n <= batch.capacity());
            for s in batch.iter() {
                assert_eq!(s.status(), RxStatus::Complete);
                assert_eq!(s.tunnel_src(), Some(PEER));
                let f = s.frame();
                assert_eq!(
                    &f[..6],
                    &[2, 0, 0, 0, 0, 2],
                    "inner frame starts at the slot's start"
                );
                got.push((u16::from_be_bytes([f[14], f[15]]), f.len()));
            }
            if n == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        assert_eq!(got, expect);
        assert!(port.held.is_empty());
        if port.gro && tx.supports_gso() {
            // Loopback keeps a GSO send whole for a GRO socket: the runs
            // were longer than the batch, so some had to wait.
            assert!(
                held_back,
                "no run was held back: the split was not exercised"
            );
        }
    }

    /// Malformed datagrams between good ones are each reported under their
    /// reason, in place.
    #[test]
    fn malformed_datagrams_are_classified() {
        let mut port = open_on_loopback();
        let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port.config().dstport);
        let tx = UdpSock::bind(SocketAddrV4::new(PEER, 0)).expect("bind sender");
        let mut bad_flags = datagram(1, 60);
        bad_flags[0] = 0;
        let mut other_vni = datagram(2, 60);
        other_vni[4..7].copy_from_slice(&[0, 0, 7]);
        for d in [datagram(0, 60), bad_flags, other_vni, vec![8, 0, 0]] {
            send_train(&tx, to, std::slice::from_ref(&d));
        }
        let mut batch = RxBatch::new(8);
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < 4 && Instant::now() < deadline {
            port.recv_batch(&mut batch).expect("receive");
            got.extend(batch.iter().map(|s| s.status()));
        }
        assert_eq!(
            got,
            vec![
                RxStatus::Complete,
                RxStatus::Invalid(RxInvalid::VxlanBadFlags),
                RxStatus::Invalid(RxInvalid::VxlanUnknownVni),
                RxStatus::Invalid(RxInvalid::VxlanShort),
            ]
        );
    }
}
