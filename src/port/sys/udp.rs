//! UDP sockets for the VXLAN underlay: opening and configuring one, moving
//! datagrams in batches with `recvmmsg` / `sendmmsg` (with UDP GSO, one
//! message may leave as many equal-sized datagrams), and finding the
//! interface that owns a local address.

use std::io;
use std::io::IoSlice;
use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::packet::{find_cmsg, parse_timestamp};
use super::{cvt, getsockopt, owned_fd, setsockopt, zeroed, PlainC};

/// `UDP_SEGMENT` (linux/udp.h): the segment size of a GSO send.
const UDP_SEGMENT: libc::c_int = 103;
/// `UDP_GRO` (linux/udp.h): receive coalesced datagrams with their segment size.
const UDP_GRO: libc::c_int = 104;

impl PlainC for libc::sockaddr_in {}

/// A non-blocking IPv4 UDP socket, owned.
#[derive(Debug)]
pub struct UdpSock {
    fd: OwnedFd,
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    let mut s: libc::sockaddr_in = zeroed();
    s.sin_family = libc::AF_INET as libc::sa_family_t;
    s.sin_port = a.port().to_be();
    s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
    s
}

fn from_sockaddr(s: &libc::sockaddr_in) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(s.sin_addr.s_addr)),
        u16::from_be(s.sin_port),
    )
}

impl UdpSock {
    /// A socket bound to `addr` (port 0: an ephemeral port), in the calling
    /// thread's network namespace, which it keeps for its lifetime.
    pub fn bind(addr: SocketAddrV4) -> io::Result<UdpSock> {
        // SAFETY: plain socket(2) call; the result is checked and owned at once.
        let fd = owned_fd(unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        })?;
        let sa = sockaddr(addr);
        // SAFETY: `sa` is a live sockaddr_in and the length passed is its size.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        cvt(ret)?;
        Ok(UdpSock { fd })
    }

    /// The address the socket is bound to (with the port the kernel chose).
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        let mut sa: libc::sockaddr_in = zeroed();
        let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: `sa` and `len` are live, exclusively borrowed, and `len` is
        // the size of `sa`, so the kernel writes within it.
        let ret = unsafe {
            libc::getsockname(
                self.fd.as_raw_fd(),
                (&mut sa as *mut libc::sockaddr_in).cast(),
                &mut len,
            )
        };
        cvt(ret)?;
        Ok(from_sockaddr(&sa))
    }

    /// TTL of the outer IPv4 header.
    pub fn set_ttl(&self, ttl: u8) -> io::Result<()> {
        setsockopt(
            &self.fd,
            libc::IPPROTO_IP,
            libc::IP_TTL,
            &(ttl as libc::c_int),
        )
    }

    /// DF on the outer header: set (never fragment; too big is an error) or
    /// clear (the underlay may fragment).
    pub fn set_df(&self, df: bool) -> io::Result<()> {
        let v = if df {
            libc::IP_PMTUDISC_DO
        } else {
            libc::IP_PMTUDISC_DONT
        };
        setsockopt(&self.fd, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, &v)
    }

    /// Kernel receive timestamps (SCM_TIMESTAMPNS) on every datagram.
    pub fn set_timestamps(&self) -> io::Result<()> {
        setsockopt(&self.fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &1)
    }

    /// Ask the kernel to hand over coalesced runs of datagrams (UDP GRO,
    /// Linux 5.0+); each comes with a `UDP_GRO` control message.
    pub fn set_gro(&self) -> io::Result<()> {
        setsockopt(&self.fd, libc::SOL_UDP, UDP_GRO, &1)
    }

    /// Whether the kernel takes UDP GSO sends (`UDP_SEGMENT`, Linux 4.18+).
    pub fn supports_gso(&self) -> bool {
        getsockopt::<libc::c_int>(&self.fd, libc::SOL_UDP, UDP_SEGMENT).is_ok()
    }

    /// Best effort, as for AF_PACKET sockets: the `*FORCE` variants with
    /// CAP_NET_ADMIN, else what the sysctls allow.
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

    /// Datagrams the kernel dropped because the receive queue was full
    /// (SO_RXQ_OVFL is not used: `SO_ERROR` stays clean for UDP); here the
    /// pending socket error, if any, is taken so it cannot stick.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let e: libc::c_int = getsockopt(&self.fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
        Ok((e != 0).then(|| io::Error::from_raw_os_error(e)))
    }
}

impl AsRawFd for UdpSock {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Room for a timestamp control message, aligned like `cmsghdr`.
const RX_CMSG_LEN: usize = 64;

#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct RxCmsg([u8; RX_CMSG_LEN]);

/// What arrived in one datagram of a [`UdpRecv::recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpMeta {
    /// Bytes written to the buffer.
    pub copied: usize,
    /// The datagram was longer than the buffer.
    pub truncated: bool,
    pub src: SocketAddrV4,
    pub rx_ts_ns: Option<u64>,
    /// With UDP GRO: the size of each coalesced datagram (the last may be shorter).
    pub gro_size: Option<u16>,
}

/// Preallocated `recvmmsg` state for a UDP socket.
pub struct UdpRecv {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_in>,
    ctrl: Vec<RxCmsg>,
}

// SAFETY: the raw pointers in `hdrs`/`iovs` are rewritten right before each
// call from borrows valid for that call and never dereferenced by Rust code;
// moving the struct to another thread shares nothing.
unsafe impl Send for UdpRecv {}

impl UdpRecv {
    pub fn new(capacity: usize) -> UdpRecv {
        UdpRecv {
            hdrs: vec![zeroed(); capacity],
            iovs: vec![zeroed(); capacity],
            addrs: vec![zeroed(); capacity],
            ctrl: vec![RxCmsg([0; RX_CMSG_LEN]); capacity],
        }
    }

    /// Receives up to one datagram per buffer, without blocking. `EAGAIN`
    /// when none waits.
    pub fn recv<'a, I>(&mut self, sock: &UdpSock, bufs: I) -> io::Result<usize>
    where
        I: IntoIterator<Item = &'a mut [u8]>,
    {
        let mut n = 0;
        for (i, buf) in bufs.into_iter().enumerate() {
            if i == self.hdrs.len() {
                break;
            }
            self.iovs[i].iov_base = buf.as_mut_ptr().cast();
            self.iovs[i].iov_len = buf.len();
            let m = &mut self.hdrs[i].msg_hdr;
            m.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_in).cast();
            m.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            m.msg_iov = &mut self.iovs[i];
            m.msg_iovlen = 1;
            m.msg_control = self.ctrl[i].0.as_mut_ptr().cast();
            m.msg_controllen = RX_CMSG_LEN as _;
            m.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
            n = i + 1;
        }
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: `hdrs[..n]` were initialised above, each pointing to one
        // iovec, address and control buffer owned by `self` (exclusively
        // borrowed, so nothing moves during the call) and to a caller buffer
        // borrowed for 'a, which outlives the call; every length is the size
        // of the memory it describes. A null timeout is allowed.
        let ret = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        cvt(ret).map(|r| r as usize)
    }

    /// Details of datagram `i` of the last [`recv`](Self::recv).
    pub fn meta(&self, i: usize) -> UdpMeta {
        let hdr = &self.hdrs[i];
        let len = hdr.msg_len as usize;
        // size_t on glibc, socklen_t on musl.
        #[allow(clippy::unnecessary_cast)]
        let ctrl_len = (hdr.msg_hdr.msg_controllen as usize).min(RX_CMSG_LEN);
        UdpMeta {
            copied: len.min(self.iovs[i].iov_len),
            truncated: hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            src: from_sockaddr(&self.addrs[i]),
            rx_ts_ns: parse_timestamp(&self.ctrl[i].0[..ctrl_len]),
            gro_size: find_cmsg(&self.ctrl[i].0[..ctrl_len], libc::SOL_UDP, UDP_GRO)
                .and_then(|d| d.get(..4))
                .map(|d| i32::from_ne_bytes(d.try_into().unwrap()))
                .and_then(|v| u16::try_from(v).ok())
                .filter(|&v| v > 0),
        }
    }
}

/// One message to send: its parts are concatenated; with `gso` non-zero the
/// kernel cuts the result into datagrams of `gso` bytes (the last may be
/// shorter), each with its own UDP and IP header.
#[derive(Debug, Clone, Copy)]
pub struct UdpMsg<'a> {
    pub dst: SocketAddrV4,
    pub parts: &'a [IoSlice<'a>],
    pub gso: u16,
}

/// Room for one `UDP_SEGMENT` control message (a u16), aligned like `cmsghdr`.
const TX_CMSG_LEN: usize = 24;

#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct TxCmsg([u8; TX_CMSG_LEN]);

/// Preallocated `sendmmsg` state for a UDP socket.
pub struct UdpSend {
    hdrs: Vec<libc::mmsghdr>,
    addrs: Vec<libc::sockaddr_in>,
    ctrl: Vec<TxCmsg>,
}

// SAFETY: as for `UdpRecv`: the pointers are rewritten before each call from
// borrows valid for that call and never dereferenced by Rust code.
unsafe impl Send for UdpSend {}

/// Writes a `SOL_UDP`/`UDP_SEGMENT` control message carrying `size` into
/// `buf` and returns its length; laid out as the kernel ABI says (a
/// `cmsghdr`, then the data, aligned to `size_t`).
fn gso_cmsg(buf: &mut [u8; TX_CMSG_LEN], size: u16) -> usize {
    let a = size_of::<usize>();
    let hdr = size_of::<libc::cmsghdr>().next_multiple_of(a);
    let len = hdr + size_of::<u16>();
    buf.fill(0);
    buf[..a].copy_from_slice(&len.to_ne_bytes());
    buf[a..a + 4].copy_from_slice(&libc::SOL_UDP.to_ne_bytes());
    buf[a + 4..a + 8].copy_from_slice(&UDP_SEGMENT.to_ne_bytes());
    buf[hdr..hdr + 2].copy_from_slice(&size.to_ne_bytes());
    len.next_multiple_of(a)
}

impl UdpSend {
    pub fn new(capacity: usize) -> UdpSend {
        UdpSend {
            hdrs: vec![zeroed(); capacity],
            addrs: vec![zeroed(); capacity],
            ctrl: vec![TxCmsg([0; TX_CMSG_LEN]); capacity],
        }
    }

    /// Sends `msgs` in order without blocking. Returns how many the kernel
    /// took and, when not all, the error of the first one it refused.
    pub fn send(&mut self, sock: &UdpSock, msgs: &[UdpMsg<'_>]) -> (usize, Option<io::Error>) {
        let n = msgs.len();
        if self.hdrs.len() < n {
            self.hdrs.resize(n, zeroed());
            self.addrs.resize(n, zeroed());
            self.ctrl.resize(n, TxCmsg([0; TX_CMSG_LEN]));
        }
        for (i, m) in msgs.iter().enumerate() {
            self.addrs[i] = sockaddr(m.dst);
            let h = &mut self.hdrs[i];
            h.msg_hdr = zeroed();
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_in).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            // IoSlice is ABI-compatible with iovec on Unix (std guarantees
            // it); the kernel only reads through the pointers on send.
            h.msg_hdr.msg_iov = m.parts.as_ptr() as *mut libc::iovec;
            h.msg_hdr.msg_iovlen = m.parts.len() as _;
            if m.gso != 0 {
                let len = gso_cmsg(&mut self.ctrl[i].0, m.gso);
                h.msg_hdr.msg_control = self.ctrl[i].0.as_mut_ptr().cast();
                h.msg_hdr.msg_controllen = len as _;
            }
            h.msg_len = 0;
        }
        let mut sent = 0;
        while sent < n {
            let rest = &mut self.hdrs[sent..n];
            // SAFETY: `rest` are headers initialised above, each pointing to
            // an address and control buffer in `self` (exclusively borrowed,
            // so not moved) and to the caller's iovecs and data, borrowed for
            // the whole call; the kernel only reads those and writes each
            // `msg_len`.
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

/// The name of the interface that holds IPv4 address `ip` in the calling
/// thread's namespace, if any.
pub fn iface_with_addr(ip: Ipv4Addr) -> io::Result<Option<String>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a live out-pointer; on success the kernel list it
    // receives is freed below with freeifaddrs, exactly once.
    cvt(unsafe { libc::getifaddrs(&mut head) })?;
    let mut found = None;
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet
        // freed; its fields are valid for reading until freeifaddrs.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr is non-null and points to a sockaddr whose
            // family field is always readable.
            let family = unsafe { (*ifa.ifa_addr).sa_family } as libc::c_int;
            if family == libc::AF_INET {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                if Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)) == ip {
                    // SAFETY: ifa_name is a NUL-terminated string owned by the list.
                    let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
                    found = Some(name.to_string_lossy().into_owned());
                    break;
                }
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(found)
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn sockaddr_round_trips() {
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 201, 0, 1), 4789);
        assert_eq!(from_sockaddr(&sockaddr(a)), a);
    }

    #[test]
    fn gso_control_message_is_laid_out_as_the_kernel_reads_it() {
        let mut b = [0u8; TX_CMSG_LEN];
        let len = gso_cmsg(&mut b, 1400);
        let d = find_cmsg(&b[..len], libc::SOL_UDP, UDP_SEGMENT).unwrap();
        assert_eq!(u16::from_ne_bytes([d[0], d[1]]), 1400);
    }

    #[test]
    fn loopback_datagrams_cross_in_batches_and_gso_cuts_them() {
        let lo = Ipv4Addr::LOCALHOST;
        let rx = UdpSock::bind(SocketAddrV4::new(lo, 0)).unwrap();
        let tx = UdpSock::bind(SocketAddrV4::new(lo, 0)).unwrap();
        let to = rx.local_addr().unwrap();
        assert!(tx.supports_gso());
        let (a, b) = ([1u8; 8], [2u8; 100]);
        let one = [IoSlice::new(&a), IoSlice::new(&b)];
        let big = [IoSlice::new(&b), IoSlice::new(&b), IoSlice::new(&a)];
        let msgs = [
            UdpMsg {
                dst: to,
                parts: &one,
                gso: 0,
            },
            UdpMsg {
                dst: to,
                parts: &big,
                gso: 100,
            },
        ];
        let mut s = UdpSend::new(2);
        let (n, err) = s.send(&tx, &msgs);
        assert_eq!((n, err.map(|e| e.to_string())), (2, None));
        let mut r = UdpRecv::new(8);
        let mut bufs = vec![vec![0u8; 2048]; 8];
        let mut got = 0;
        for _ in 0..100 {
            match r.recv(&rx, bufs.iter_mut().map(|b| b.as_mut_slice())) {
                Ok(k) => {
                    for i in 0..k {
                        let m = r.meta(i);
                        assert_eq!(m.src, tx.local_addr().unwrap());
                    }
                    got += k;
                    if got >= 4 {
                        break;
                    }
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
            }
        }
        // One plain datagram of 108 bytes, then 100 + 100 + 8 cut by GSO.
        assert_eq!(got, 4);
    }
}
