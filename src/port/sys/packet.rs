//! AF_PACKET sockets: opening and configuring one, and moving frames in
//! batches with `recvmmsg` / `sendmmsg` through preallocated headers.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::{cvt, getsockopt, owned_fd, setsockopt, zeroed};
use crate::port::{TxFrame, VNET_HDR_LEN};

/// EtherType 0x8100: the TPID to assume when the kernel did not say which.
const ETH_P_8021Q: u16 = 0x8100;

/// A raw AF_PACKET socket, owned.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// A non-blocking raw socket with protocol 0: it receives nothing until
    /// [`bind`](Self::bind), so no frame of another interface can slip in
    /// while it is being configured.
    pub fn new_unbound() -> io::Result<PacketSocket> {
        let ty = libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: plain socket(2) call; the result is checked and wrapped.
        let fd = owned_fd(unsafe { libc::socket(libc::AF_PACKET, ty, 0) })?;
        Ok(PacketSocket { fd })
    }

    pub(super) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// PACKET_IGNORE_OUTGOING (Linux >= 4.20): do not deliver frames the
    /// device transmits, the switch's own included.
    pub fn set_ignore_outgoing(&self) -> io::Result<()> {
        let one: libc::c_int = 1;
        setsockopt(
            &self.fd,
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &one,
        )
    }

    /// PACKET_AUXDATA: attach a `tpacket_auxdata` to each frame, the only way
    /// to learn the VLAN tag the kernel stripped and the frame's real length.
    pub fn set_auxdata(&self) -> io::Result<()> {
        let one: libc::c_int = 1;
        setsockopt(&self.fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, &one)
    }

    /// SO_TIMESTAMPNS: the kernel's receive time with every frame, so the
    /// time a frame waited in the socket before the switch read it counts
    /// in its measured residence time.
    pub fn set_timestamps(&self) -> io::Result<()> {
        let one: libc::c_int = 1;
        setsockopt(&self.fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &one)
    }

    /// PACKET_VNET_HDR: every frame received or sent is preceded by a
    /// `virtio_net_hdr`, which carries partial checksums and GSO super-frames
    /// across the socket instead of the kernel finishing them first.
    pub fn set_vnet_hdr(&self) -> io::Result<()> {
        let one: libc::c_int = 1;
        setsockopt(&self.fd, libc::SOL_PACKET, libc::PACKET_VNET_HDR, &one)
    }

    /// The socket's pending error (SO_ERROR), cleared by reading it: how a
    /// ring-based receiver learns that the device went down or away.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let err: libc::c_int = getsockopt(&self.fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
        Ok((err != 0).then(|| io::Error::from_raw_os_error(err)))
    }

    /// Frames the kernel dropped for this socket since the last call
    /// (PACKET_STATISTICS resets its counters when read): the receive queue
    /// was full because the switch did not read fast enough.
    pub fn take_drops(&self) -> io::Result<u64> {
        let st: libc::tpacket_stats =
            getsockopt(&self.fd, libc::SOL_PACKET, libc::PACKET_STATISTICS)?;
        Ok(u64::from(st.tp_drops))
    }

    /// Promiscuous mode on `ifindex` for as long as this socket is open (the
    /// kernel drops the membership when the socket closes, so a crash does
    /// not leave the interface promiscuous).
    pub fn add_promisc_membership(&self, ifindex: u32) -> io::Result<()> {
        let mut mreq: libc::packet_mreq = zeroed();
        mreq.mr_ifindex = ifindex_c(ifindex)?;
        mreq.mr_type = libc::PACKET_MR_PROMISC as libc::c_ushort;
        setsockopt(
            &self.fd,
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            &mreq,
        )
    }

    /// Asks for `bytes` of receive and send buffer: the `*FORCE` variants
    /// pass `net.core.{r,w}mem_max` with CAP_NET_ADMIN; without it, the plain
    /// options get what the sysctl allows. Best effort: a small buffer only
    /// means earlier drops under bursts.
    pub fn grow_buffers(&self, bytes: usize) {
        let val = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        for (force, plain) in [
            (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
            (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
        ] {
            if setsockopt(&self.fd, libc::SOL_SOCKET, force, &val).is_err() {
                let _ = setsockopt(&self.fd, libc::SOL_SOCKET, plain, &val);
            }
        }
    }

    /// Binds to `ifindex` for all EtherTypes: from here on the socket
    /// receives that interface's frames, and sends go out on it.
    pub fn bind(&self, ifindex: u32) -> io::Result<()> {
        let mut sll: libc::sockaddr_ll = zeroed();
        sll.sll_family = libc::AF_PACKET as libc::c_ushort;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex_c(ifindex)?;
        // SAFETY: `sll` is a valid sockaddr_ll living across the call and the
        // length passed is its size.
        let ret = unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        cvt(ret).map(drop)
    }

    /// The ifindex the socket is bound to now. The kernel resets it to -1
    /// when the device is unregistered (deleted or moved to another
    /// namespace), which tells "gone" apart from an index reused later.
    pub fn bound_ifindex(&self) -> io::Result<i32> {
        let mut sll: libc::sockaddr_ll = zeroed();
        let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `sll` and `len` are valid and exclusively borrowed for the
        // call; `len` tells the kernel how much of `sll` it may write.
        let ret = unsafe {
            libc::getsockname(
                self.fd.as_raw_fd(),
                (&mut sll as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        cvt(ret)?;
        Ok(sll.sll_ifindex)
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn ifindex_c(ifindex: u32) -> io::Result<libc::c_int> {
    libc::c_int::try_from(ifindex).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// An outer VLAN tag the kernel took out of a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrippedTag {
    pub tpid: u16,
    pub tci: u16,
}

/// What the kernel said about one received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxMeta {
    /// Bytes written into the buffer.
    pub copied: usize,
    /// Length of the frame as the kernel had it (without a stripped tag).
    pub wire_len: usize,
    /// Fewer than `wire_len` bytes were delivered.
    pub truncated: bool,
    /// The device transmitted this frame (sll_pkttype == PACKET_OUTGOING).
    pub outgoing: bool,
    /// The outer tag the kernel stripped, to be put back.
    pub vlan: Option<StrippedTag>,
    /// TP_STATUS_CSUMNOTREADY: the L4 checksum was left for offload
    /// (CHECKSUM_PARTIAL, e.g. a local stack sending through a veth), so the
    /// bytes hold only the pseudo-header sum.
    pub csum_not_ready: bool,
    /// When the kernel received the frame (ns since the Unix epoch), if
    /// receive timestamps are on.
    pub rx_ts_ns: Option<u64>,
}

/// Room for a `tpacket_auxdata` and a timestamp control message with margin, aligned like
/// `cmsghdr`.
const CMSG_BUF_LEN: usize = 128;

#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_BUF_LEN]);

/// Preallocated `recvmmsg` state: one header, iovec, address and control
/// buffer per frame, reused by every call.
pub struct RecvMmsg {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_ll>,
    ctrl: Vec<CmsgBuf>,
}

// SAFETY: the raw pointers inside `hdrs`/`iovs` are written right before each
// `recvmmsg` call, from borrows valid for that call, and never dereferenced by
// Rust code; between calls they are stale values nobody reads through. Moving
// the struct to another thread therefore shares nothing.
unsafe impl Send for RecvMmsg {}

impl RecvMmsg {
    pub fn new(capacity: usize) -> RecvMmsg {
        let mut r = RecvMmsg {
            hdrs: Vec::new(),
            iovs: Vec::new(),
            addrs: Vec::new(),
            ctrl: Vec::new(),
        };
        r.reserve(capacity);
        r
    }

    fn reserve(&mut self, n: usize) {
        if self.hdrs.len() < n {
            self.hdrs.resize(n, zeroed());
            self.iovs.resize(n, zeroed());
            self.addrs.resize(n, zeroed());
            self.ctrl.resize(n, CmsgBuf([0; CMSG_BUF_LEN]));
        }
    }

    /// Receives up to one frame per buffer in `bufs`, without blocking.
    /// Returns how many arrived; `EAGAIN` when none. Read each frame's
    /// details with [`meta`](Self::meta).
    pub fn recv<'a, I>(&mut self, sock: &PacketSocket, bufs: I) -> io::Result<usize>
    where
        I: IntoIterator<Item = &'a mut [u8]>,
        I::IntoIter: ExactSizeIterator,
    {
        let bufs = bufs.into_iter();
        let n = bufs.len();
        if n == 0 {
            return Ok(0);
        }
        self.reserve(n);
        let slots = self
            .hdrs
            .iter_mut()
            .zip(self.iovs.iter_mut())
            .zip(self.addrs.iter_mut())
            .zip(self.ctrl.iter_mut());
        for ((((hdr, iov), addr), ctrl), buf) in slots.zip(bufs) {
            iov.iov_base = buf.as_mut_ptr().cast();
            iov.iov_len = buf.len();
            // The kernel overwrites the lengths and flags on every call, so
            // all of them are reset, not only the buffer pointers.
            let m = &mut hdr.msg_hdr;
            m.msg_name = (addr as *mut libc::sockaddr_ll).cast();
            m.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            m.msg_iov = iov;
            m.msg_iovlen = 1;
            m.msg_control = ctrl.0.as_mut_ptr().cast();
            m.msg_controllen = CMSG_BUF_LEN as _;
            m.msg_flags = 0;
            hdr.msg_len = 0;
        }
        // MSG_TRUNC makes msg_len the frame's full length, so a frame longer
        // than its buffer is detected instead of silently cut.
        let flags = libc::MSG_DONTWAIT | libc::MSG_TRUNC;
        // SAFETY: `hdrs[..n]` were just initialised above; each points to one
        // iovec, sockaddr_ll and control buffer owned by `self` (which is
        // exclusively borrowed, so none moves during the call) and to a
        // caller buffer borrowed for 'a, which outlives the call; every
        // length given is the size of the memory it describes. A null
        // timeout is allowed.
        let ret = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        cvt(ret).map(|r| r as usize)
    }

    /// Details of frame `i` of the last [`recv`](Self::recv).
    pub fn meta(&self, i: usize) -> RxMeta {
        let hdr = &self.hdrs[i];
        let full = hdr.msg_len as usize;
        let copied = full.min(self.iovs[i].iov_len);
        // size_t on glibc, socklen_t on musl.
        #[allow(clippy::unnecessary_cast)]
        let ctrl_len = (hdr.msg_hdr.msg_controllen as usize).min(CMSG_BUF_LEN);
        let aux = parse_auxdata(&self.ctrl[i].0[..ctrl_len]);
        let mut meta = RxMeta {
            copied,
            wire_len: full,
            truncated: hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 || copied < full,
            outgoing: self.addrs[i].sll_pkttype == libc::PACKET_OUTGOING,
            vlan: None,
            csum_not_ready: false,
            rx_ts_ns: parse_timestamp(&self.ctrl[i].0[..ctrl_len]),
        };
        if let Some(aux) = aux {
            // tp_len is the length before a socket filter cut the frame to
            // tp_snaplen; msg_len alone would not show that cut.
            meta.wire_len = meta.wire_len.max(aux.len as usize);
            meta.truncated |= aux.len > aux.snaplen;
            meta.csum_not_ready = aux.status & libc::TP_STATUS_CSUMNOTREADY != 0;
            if aux.status & libc::TP_STATUS_VLAN_VALID != 0 {
                let tpid = if aux.status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                    aux.vlan_tpid
                } else {
                    ETH_P_8021Q
                };
                meta.vlan = Some(StrippedTag {
                    tpid,
                    tci: aux.vlan_tci,
                });
            }
        }
        meta
    }
}

/// The fields of `struct tpacket_auxdata` the port uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Auxdata {
    status: u32,
    len: u32,
    snaplen: u32,
    vlan_tci: u16,
    vlan_tpid: u16,
}

/// Finds the control message `level`/`ty` in a control buffer and returns
/// its data.
///
/// Parsed from bytes rather than through `CMSG_*` pointers: the layout is the
/// kernel ABI (`struct cmsghdr` then the data, each aligned to `size_t`).
pub(super) fn find_cmsg(ctrl: &[u8], level: i32, ty: i32) -> Option<&[u8]> {
    const ALIGN: usize = size_of::<usize>();
    let align = |n: usize| (n + ALIGN - 1) & !(ALIGN - 1);
    let hdr_len = align(size_of::<libc::cmsghdr>());
    let mut off = 0;
    while off + hdr_len <= ctrl.len() {
        let h = &ctrl[off..];
        let cmsg_len = usize::from_ne_bytes(h[..ALIGN].try_into().unwrap());
        let l = i32::from_ne_bytes(h[ALIGN..ALIGN + 4].try_into().unwrap());
        let t = i32::from_ne_bytes(h[ALIGN + 4..ALIGN + 8].try_into().unwrap());
        if cmsg_len < hdr_len || off + cmsg_len > ctrl.len() {
            return None;
        }
        if l == level && t == ty {
            return Some(&h[hdr_len..cmsg_len]);
        }
        off += align(cmsg_len);
    }
    None
}

/// The SOL_PACKET/PACKET_AUXDATA message of a control buffer.
fn parse_auxdata(ctrl: &[u8]) -> Option<Auxdata> {
    let aux_len = size_of::<libc::tpacket_auxdata>();
    let d = find_cmsg(ctrl, libc::SOL_PACKET, libc::PACKET_AUXDATA)?;
    let d = d.get(..aux_len)?;
    let u32_at = |o: usize| u32::from_ne_bytes(d[o..o + 4].try_into().unwrap());
    let u16_at = |o: usize| u16::from_ne_bytes(d[o..o + 2].try_into().unwrap());
    // struct tpacket_auxdata: u32 status, len, snaplen; u16 mac, net,
    // vlan_tci, vlan_tpid.
    Some(Auxdata {
        status: u32_at(0),
        len: u32_at(4),
        snaplen: u32_at(8),
        vlan_tci: u16_at(16),
        vlan_tpid: u16_at(18),
    })
}

/// The kernel receive time (SCM_TIMESTAMPNS, CLOCK_REALTIME) in ns since the
/// Unix epoch.
pub(super) fn parse_timestamp(ctrl: &[u8]) -> Option<u64> {
    let d = find_cmsg(ctrl, libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS)?;
    // struct timespec: two 64-bit fields on the 64-bit targets this runs on.
    let sec = i64::from_ne_bytes(d.get(..8)?.try_into().ok()?);
    let nsec = i64::from_ne_bytes(d.get(8..16)?.try_into().ok()?);
    u64::try_from(sec)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(u64::try_from(nsec).ok()?)
}

/// Preallocated `sendmmsg` state, grown only when a larger batch comes.
pub struct SendMmsg {
    hdrs: Vec<libc::mmsghdr>,
    /// Two per frame: the virtio-net header (when used), then the frame.
    iovs: Vec<[libc::iovec; 2]>,
    vnet: Vec<[u8; VNET_HDR_LEN]>,
}

// SAFETY: as for `RecvMmsg`: the pointers are rewritten before each call from
// borrows valid for that call and never dereferenced by Rust code.
unsafe impl Send for SendMmsg {}

impl SendMmsg {
    pub fn new(capacity: usize) -> SendMmsg {
        SendMmsg {
            hdrs: vec![zeroed(); capacity],
            iovs: vec![[zeroed(), zeroed()]; capacity],
            vnet: vec![[0; VNET_HDR_LEN]; capacity],
        }
    }

    /// Sends `frames` in order on the bound interface, without blocking,
    /// each behind its virtio-net header when `vnet` (the socket has
    /// PACKET_VNET_HDR). Returns how many the kernel took and, when not all,
    /// the error of the first one it refused.
    pub fn send(
        &mut self,
        sock: &PacketSocket,
        frames: &[TxFrame<'_>],
        vnet: bool,
    ) -> (usize, Option<io::Error>) {
        let n = frames.len();
        if self.hdrs.len() < n {
            self.hdrs.resize(n, zeroed());
            self.iovs.resize(n, [zeroed(), zeroed()]);
            self.vnet.resize(n, [0; VNET_HDR_LEN]);
        }
        let slots = self
            .hdrs
            .iter_mut()
            .zip(self.iovs.iter_mut())
            .zip(self.vnet.iter_mut());
        for (((hdr, iov), vh), frame) in slots.zip(frames) {
            // The kernel only reads through iov_base on send; the pointer is
            // `*mut` because the C struct is shared with receive.
            let mut k = 0;
            if vnet {
                *vh = frame.offload.to_vnet_hdr();
                iov[0].iov_base = vh.as_mut_ptr().cast();
                iov[0].iov_len = VNET_HDR_LEN;
                k = 1;
            }
            iov[k].iov_base = frame.data.as_ptr() as *mut libc::c_void;
            iov[k].iov_len = frame.data.len();
            // No msg_name: the socket is bound, the kernel uses its ifindex.
            hdr.msg_hdr = zeroed();
            hdr.msg_hdr.msg_iov = iov.as_mut_ptr();
            hdr.msg_hdr.msg_iovlen = k + 1;
            hdr.msg_len = 0;
        }
        let mut sent = 0;
        while sent < n {
            let rest = &mut self.hdrs[sent..n];
            // SAFETY: `rest` are initialised headers, each with one or two
            // iovecs in `self.iovs` (not moved: `self` is exclusively
            // borrowed) pointing into `self.vnet` and into a frame of
            // `frames`, borrowed for the whole call; the kernel only reads
            // those and writes each `msg_len`.
            let ret = unsafe {
                libc::sendmmsg(
                    sock.as_raw_fd(),
                    rest.as_mut_ptr(),
                    rest.len() as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            match ret {
                r if r > 0 => sent += r as usize,
                // sendmmsg reports an error only when the very first message
                // fails; after a partial send, the loop calls again from the
                // refused frame to learn its errno.
                0 => return (sent, Some(io::Error::from_raw_os_error(libc::EAGAIN))),
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return (sent, Some(e));
                }
            }
        }
        (sent, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control buffer holding `msgs` as the kernel lays them out.
    fn ctrl(msgs: &[(i32, i32, &[u8])]) -> Vec<u8> {
        let a = size_of::<usize>();
        let hdr = size_of::<libc::cmsghdr>().next_multiple_of(a);
        let mut out = Vec::new();
        for (level, ty, data) in msgs {
            let len = hdr + data.len();
            out.extend_from_slice(&len.to_ne_bytes());
            out.extend_from_slice(&level.to_ne_bytes());
            out.extend_from_slice(&ty.to_ne_bytes());
            out.resize(out.len() + hdr - (a + 8), 0);
            out.extend_from_slice(data);
            out.resize(out.len().next_multiple_of(a), 0);
        }
        out
    }

    fn aux_bytes(status: u32, len: u32, snaplen: u32, tci: u16, tpid: u16) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&status.to_ne_bytes());
        d.extend_from_slice(&len.to_ne_bytes());
        d.extend_from_slice(&snaplen.to_ne_bytes());
        d.extend_from_slice(&0u16.to_ne_bytes());
        d.extend_from_slice(&14u16.to_ne_bytes());
        d.extend_from_slice(&tci.to_ne_bytes());
        d.extend_from_slice(&tpid.to_ne_bytes());
        assert_eq!(d.len(), size_of::<libc::tpacket_auxdata>());
        d
    }

    #[test]
    fn auxdata_found_after_another_message() {
        let aux = aux_bytes(libc::TP_STATUS_VLAN_VALID, 1500, 1400, 0x200a, 0x88a8);
        let buf = ctrl(&[
            (libc::SOL_SOCKET, libc::SO_TIMESTAMP, &[0u8; 16]),
            (libc::SOL_PACKET, libc::PACKET_AUXDATA, &aux),
        ]);
        assert_eq!(
            parse_auxdata(&buf),
            Some(Auxdata {
                status: libc::TP_STATUS_VLAN_VALID,
                len: 1500,
                snaplen: 1400,
                vlan_tci: 0x200a,
                vlan_tpid: 0x88a8,
            })
        );
    }

    #[test]
    fn auxdata_absent_or_malformed_is_none() {
        assert_eq!(parse_auxdata(&[]), None);
        let aux = aux_bytes(0, 60, 60, 0, 0);
        let mut buf = ctrl(&[(libc::SOL_PACKET, libc::PACKET_AUXDATA, &aux)]);
        // A cmsg_len pointing past the buffer must not be followed.
        buf[0] = 0xff;
        assert_eq!(parse_auxdata(&buf), None);
        let short = ctrl(&[(libc::SOL_PACKET, libc::PACKET_AUXDATA, &aux[..8])]);
        assert_eq!(parse_auxdata(&short), None);
    }
}
