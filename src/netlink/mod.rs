//! rtnetlink without a runtime: a blocking NETLINK_ROUTE socket that creates,
//! changes and deletes links, addresses and routes in the namespace it was
//! opened in. This replaces forking iproute2's `ip` per step (a fork+exec
//! costs milliseconds; a netlink round trip costs microseconds).
//!
//! Messages are built and parsed with `netlink-packet-route`; the socket is
//! `netlink-sys`'s plain one (no tokio: the switch keeps no async runtime).
//!
//! # API
//! [`Rtnl::open`] opens a socket in the calling thread's network namespace;
//! every request on it acts on that namespace, whichever thread sends it
//! later. To work inside another namespace, open the socket there:
//! `crate::netns::rtnl(Some("red"))` or `netns::Namespace::open(..)?.rtnl()`
//! (these enter the namespace on a short-lived thread, see `netns::run_in`).
//!
//! Links ([`link`]): [`Rtnl::link`] (index, MAC, MTU, state, kind, whether a
//! veth's peer lives in another namespace; `None` when absent),
//! [`Rtnl::ifindex`], [`Rtnl::create_veth`] (the peer optionally created
//! directly in a namespace given by fd), [`Rtnl::create_link`] (dummy,
//! bridge), [`Rtnl::delete_link`], [`Rtnl::move_to_netns`] (by fd),
//! [`Rtnl::rename`], [`Rtnl::set_mtu`], [`Rtnl::set_mac`], [`Rtnl::set_up`],
//! [`Rtnl::set_down`], [`Rtnl::wait_oper_up`].
//! Addresses and routes ([`addr`]): [`Rtnl::add_addr`] (IPv6 without DAD),
//! [`Rtnl::addrs`], [`Rtnl::add_route`], [`Rtnl::add_default_route`].
//!
//! Errors are [`NetlinkError`]: what was attempted ("create veth pair x <->
//! y"), the kernel's errno and, where the errno alone misleads, what it
//! means for that operation ("File exists (an interface of that name
//! already exists)").

pub mod addr;
pub mod link;

use std::io;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

pub use link::Link;

/// A netlink request failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel refused the request.
    #[error("cannot {what}: {}{}", strerror(.err), paren(.hint))]
    Kernel {
        what: String,
        err: io::Error,
        hint: Option<&'static str>,
    },
    /// The kernel did what was asked, but the result did not come about.
    #[error("cannot {what}: {detail}")]
    Unmet { what: String, detail: String },
    /// The socket itself failed, or the kernel's answer made no sense.
    #[error("cannot {what}: netlink: {detail}")]
    Socket { what: String, detail: String },
}

impl NetlinkError {
    /// The errno the kernel answered with, if it answered.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { err, .. } => err.raw_os_error(),
            NetlinkError::Socket { .. } | NetlinkError::Unmet { .. } => None,
        }
    }

    /// Adds " in namespace NS" to what was attempted.
    pub fn in_netns(mut self, ns: &str) -> Self {
        match &mut self {
            NetlinkError::Kernel { what, .. }
            | NetlinkError::Unmet { what, .. }
            | NetlinkError::Socket { what, .. } => {
                what.push_str(" in namespace ");
                what.push_str(ns);
            }
        }
        self
    }

    /// Whether the kernel said the thing does not exist (ENODEV, ENOENT,
    /// ESRCH, EADDRNOTAVAIL): what idempotent deletes treat as done.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc::ENODEV | libc::ENOENT | libc::ESRCH | libc::EADDRNOTAVAIL)
        )
    }
}

/// "File exists" rather than io::Error's "File exists (os error 17)".
fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn paren(hint: &Option<&'static str>) -> String {
    hint.map(|h| format!(" ({h})")).unwrap_or_default()
}

/// What kind of operation failed, to explain an errno in its terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    CreateLink,
    ChangeLink,
    Mtu,
    Mac,
    Move,
    Addr,
    Route,
    Query,
}

fn hint(op: Op, errno: i32) -> Option<&'static str> {
    Some(match (op, errno) {
        (_, libc::EPERM) => "needs CAP_NET_ADMIN: run as root",
        (Op::CreateLink | Op::ChangeLink, libc::EEXIST) => {
            "an interface of that name already exists"
        }
        (Op::Move, libc::EEXIST) => "the namespace already has an interface of that name",
        (Op::Addr, libc::EEXIST) => "the interface already has that address",
        (Op::Route, libc::EEXIST) => "a route to that destination already exists",
        (Op::Route, libc::ENETUNREACH) => "the gateway is not on a network of the interface",
        (_, libc::ENODEV) => "no interface of that name",
        (Op::Mtu, libc::EINVAL) => "outside the MTU range the device supports",
        (Op::Mac, libc::EADDRNOTAVAIL | libc::EINVAL) => {
            "not an address the device accepts (a unicast MAC is needed)"
        }
        (Op::Move, libc::EINVAL) => "this kind of device cannot change namespace",
        (Op::CreateLink, libc::EOPNOTSUPP) => "this kernel lacks that kind of link",
        (Op::Query, _) => return None,
        _ => return None,
    })
}

/// Receive buffer size: a dump's datagrams are at most 32 KiB.
const RECV_BUF: usize = 64 * 1024;

/// A blocking rtnetlink socket bound to the namespace it was opened in.
pub struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Rtnl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rtnl").field("seq", &self.seq).finish()
    }
}

impl Rtnl {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Rtnl, NetlinkError> {
        let fail = |e: io::Error| NetlinkError::Socket {
            what: "open a netlink socket".into(),
            detail: e.to_string(),
        };
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(fail)?;
        sock.bind_auto().map_err(fail)?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(fail)?;
        Ok(Rtnl {
            sock,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// Sends one request and collects the kernel's answers until its ACK
    /// (or the end of a dump). A NACK becomes [`NetlinkError::Kernel`] with
    /// `what` and an explanation suited to `op`.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        extra_flags: u16,
        op: Op,
        what: &dyn Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        let sock_err = |detail: String| NetlinkError::Socket {
            what: what(),
            detail,
        };
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | extra_flags;
        header.sequence_number = seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        nl.finalize();
        let mut out = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut out);
        self.sock
            .send(&out, 0)
            .map_err(|e| sock_err(format!("send: {e}")))?;

        let mut answers = Vec::new();
        loop {
            self.buf.clear();
            self.sock
                .recv(&mut self.buf, 0)
                .map_err(|e| sock_err(format!("receive: {e}")))?;
            let mut off = 0;
            while off < self.buf.len() {
                let bytes = &self.buf[off..];
                let len = NetlinkBuffer::new_checked(bytes)
                    .map_err(|e| sock_err(format!("bad header: {e}")))?
                    .length() as usize;
                if len == 0 {
                    break;
                }
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[..len])
                    .map_err(|e| sock_err(format!("cannot parse the kernel's answer: {e}")))?;
                off += (len + 3) & !3;
                if reply.header.sequence_number != seq {
                    // A late answer to an earlier request: not ours.
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(answers),
                        Some(_) => {
                            let err = e.to_io();
                            let hint = err.raw_os_error().and_then(|n| hint(op, n));
                            return Err(NetlinkError::Kernel {
                                what: what(),
                                err,
                                hint,
                            });
                        }
                    },
                    NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::InnerMessage(m) => answers.push(m),
                    _ => {}
                }
            }
            // An answer and its ACK may come in separate datagrams; a dump
            // ends with Done: keep reading.
        }
    }
}

#[cfg(test)]
mod tests;
