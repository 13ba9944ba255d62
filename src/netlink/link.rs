//! Link requests: look up, create (veth, dummy, bridge), delete, move into a
//! namespace, rename, MTU, MAC, up/down, wait for operational state.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, State,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::{NetlinkError, Op, Rtnl};
use crate::wire::MacAddr;

/// A link as the kernel describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Option<MacAddr>,
    pub mtu: Option<u32>,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Operational state UP (carrier, queue activated).
    pub oper_up: bool,
    /// "veth", "bridge", "tun", ...; `None` for devices without a kind (lo).
    pub kind: Option<String>,
    /// Set when the device's link partner (a veth's peer) lives in another
    /// namespace: the id that namespace has here.
    pub link_netnsid: Option<i32>,
}

/// A kind of link [`Rtnl::create_link`] can make without further settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Dummy,
    Bridge,
}

fn by_name(name: &str) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    m
}

fn by_index(index: u32) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m
}

fn parse_link(m: &LinkMessage) -> Link {
    let mut l = Link {
        index: m.header.index,
        name: String::new(),
        mac: None,
        mtu: None,
        up: m.header.flags.contains(LinkFlags::Up),
        oper_up: false,
        kind: None,
        link_netnsid: None,
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::Address(b) if b.len() == 6 => l.mac = MacAddr::from_slice(b),
            LinkAttribute::Mtu(v) => l.mtu = Some(*v),
            LinkAttribute::OperState(s) => l.oper_up = *s == State::Up,
            LinkAttribute::LinkNetNsId(id) => l.link_netnsid = Some(*id),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        l.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    l
}

impl Rtnl {
    /// The link named `name`, or `None` when there is none.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
        let r = self.request(
            RouteNetlinkMessage::GetLink(by_name(name)),
            0,
            Op::Query,
            &|| format!("look up link {name}"),
        );
        match r {
            Ok(answers) => Ok(answers.iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(parse_link(l)),
                _ => None,
            })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The index of link `name`, or `None` when there is none.
    pub fn ifindex(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        Ok(self.link(name)?.map(|l| l.index))
    }

    /// The index of `name`, which must exist (`what` is for the error).
    pub(super) fn index_of(
        &mut self,
        name: &str,
        what: &dyn Fn() -> String,
    ) -> Result<u32, NetlinkError> {
        self.ifindex(name)?.ok_or_else(|| NetlinkError::Kernel {
            what: what(),
            err: std::io::Error::from_raw_os_error(libc::ENODEV),
            hint: Some("no interface of that name"),
        })
    }

    fn new_link(&mut self, m: LinkMessage, what: &dyn Fn() -> String) -> Result<(), NetlinkError> {
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            Op::CreateLink,
            what,
        )
        .map(drop)
    }

    fn set_link(
        &mut self,
        m: LinkMessage,
        op: Op,
        what: &dyn Fn() -> String,
    ) -> Result<(), NetlinkError> {
        self.request(RouteNetlinkMessage::SetLink(m), 0, op, what)
            .map(drop)
    }

    /// Creates a veth pair: `name` here, `peer` in the namespace `peer_netns`
    /// refers to (an open /run/netns/NAME or /proc/PID/ns/net), or here too.
    pub fn create_veth(
        &mut self,
        name: &str,
        peer: &str,
        peer_netns: Option<BorrowedFd<'_>>,
    ) -> Result<(), NetlinkError> {
        let mut p = by_name(peer);
        if let Some(fd) = peer_netns {
            p.attributes.push(LinkAttribute::NetNsFd(fd.as_raw_fd()));
        }
        let mut m = by_name(name);
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        self.new_link(m, &|| format!("create veth pair {name} <-> {peer}"))
    }

    /// Creates a link of a kind that needs no settings, down.
    pub fn create_link(&mut self, name: &str, kind: LinkKind) -> Result<(), NetlinkError> {
        let (k, word) = match kind {
            LinkKind::Dummy => (InfoKind::Dummy, "dummy"),
            LinkKind::Bridge => (InfoKind::Bridge, "bridge"),
        };
        let mut m = by_name(name);
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(k)]));
        self.new_link(m, &|| format!("create {word} {name}"))
    }

    /// Deletes link `name` (a veth's peer goes with it).
    pub fn delete_link(&mut self, name: &str) -> Result<(), NetlinkError> {
        self.request(
            RouteNetlinkMessage::DelLink(by_name(name)),
            0,
            Op::ChangeLink,
            &|| format!("delete link {name}"),
        )
        .map(drop)
    }

    /// Moves link `name` into the namespace `netns` refers to; `ns_label`
    /// names it in errors.
    pub fn move_to_netns(
        &mut self,
        name: &str,
        netns: BorrowedFd<'_>,
        ns_label: &str,
    ) -> Result<(), NetlinkError> {
        let mut m = by_name(name);
        m.attributes.push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        self.set_link(m, Op::Move, &|| {
            format!("move link {name} into namespace {ns_label}")
        })
    }

    /// Renames link `old` to `new` (the link must be down).
    pub fn rename(&mut self, old: &str, new: &str) -> Result<(), NetlinkError> {
        let what = || format!("rename link {old} to {new}");
        let index = self.index_of(old, &what)?;
        let mut m = by_index(index);
        m.attributes.push(LinkAttribute::IfName(new.to_string()));
        self.set_link(m, Op::ChangeLink, &what)
    }

    pub fn set_mtu(&mut self, name: &str, mtu: u32) -> Result<(), NetlinkError> {
        let mut m = by_name(name);
        m.attributes.push(LinkAttribute::Mtu(mtu));
        self.set_link(m, Op::Mtu, &|| format!("set MTU {mtu} on {name}"))
    }

    pub fn set_mac(&mut self, name: &str, mac: MacAddr) -> Result<(), NetlinkError> {
        let mut m = by_name(name);
        m.attributes
            .push(LinkAttribute::Address(mac.octets().to_vec()));
        self.set_link(m, Op::Mac, &|| format!("set MAC {mac} on {name}"))
    }

    fn set_flag_up(&mut self, name: &str, up: bool) -> Result<(), NetlinkError> {
        let mut m = by_name(name);
        m.header.change_mask = LinkFlags::Up;
        if up {
            m.header.flags = LinkFlags::Up;
        }
        let word = if up { "up" } else { "down" };
        self.set_link(m, Op::ChangeLink, &|| format!("bring {word} link {name}"))
    }

    pub fn set_up(&mut self, name: &str) -> Result<(), NetlinkError> {
        self.set_flag_up(name, true)
    }

    pub fn set_down(&mut self, name: &str) -> Result<(), NetlinkError> {
        self.set_flag_up(name, false)
    }

    /// Waits until the kernel has activated `name` (operational state UP).
    ///
    /// A veth end brought up before its peer gets its transmit queue only
    /// when the kernel's link watcher sees the carrier come up; until then
    /// frames sent on it are silently dropped.
    pub fn wait_oper_up(&mut self, name: &str, timeout: Duration) -> Result<(), NetlinkError> {
        let deadline = Instant::now() + timeout;
        loop {
            let link = self.link(name)?;
            if link.as_ref().is_some_and(|l| l.oper_up) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(NetlinkError::Unmet {
                    what: format!("bring up link {name}"),
                    detail: match link {
                        None => "the link vanished".into(),
                        Some(_) => format!("still not operationally up after {timeout:?}"),
                    },
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
