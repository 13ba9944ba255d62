//! The tc BPF fast path: frames whose plan is "this one port, unchanged"
//! are carried by the kernel along the path user space programmed.
//!
//! User space stays the authority. The dataplane installs a [`FlowKey`] ->
//! [`FlowAction`] entry when it has just executed such a plan for a frame
//! (or one whose only change is a VLAN pop, push or re-tag, [`VlanEdit`]),
//! keyed by everything the plan depended on (ingress device, outer VLAN tag,
//! destination and source MAC), and takes entries out before any change that
//! could alter the plan returns. Everything else (floods, new or moved
//! sources, drops, observed ports) goes to user space as before.
//!
//! - [`asm`]: a typed eBPF assembler (no clang or bpf-linker at build time);
//! - [`program`]: the two programs (socket filter `decide`, tcx `carry`)
//!   and their map layouts, commented block by block;
//! - [`sys`]: bpf(2) and SO_ATTACH_BPF, the only `unsafe` here.
//!
//! See docs/architecture.md ("The fast path") for why a socket filter and a
//! tcx program share one decision per frame.

pub mod asm;
pub mod program;
mod sys;

use std::io;
use std::os::fd::RawFd;

use serde::Serialize;

use crate::wire::{EthernetFrame, MacAddr, VlanTag};
use program::*;
pub use sys::monotonic_ns;

/// Most entries the `flows` map holds; past that, plans stay in user space.
pub const MAX_FLOWS: u32 = 32768;

/// Why the fast path could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum FastpathError {
    #[error("cannot create BPF map {map}: {err}")]
    Map { map: &'static str, err: io::Error },
    #[error("the kernel refused BPF program {prog}: {err}\n{log}")]
    Load {
        prog: &'static str,
        err: io::Error,
        log: String,
    },
    #[error("cannot assemble BPF program {prog}: {err}")]
    Asm {
        prog: &'static str,
        err: asm::AsmError,
    },
    #[error("cannot attach the tcx ingress program to {ifname}: {err}")]
    Tcx { ifname: String, err: io::Error },
    #[error("cannot attach the socket filter on {ifname}: {err}")]
    Filter { ifname: String, err: io::Error },
    #[error("BPF map {map}: {err}")]
    MapOp { map: &'static str, err: io::Error },
}

/// What a plan depended on: the flow key of the `flows` map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Ingress device index.
    pub ifindex: u32,
    /// The outer tag: (802.1ad TPID, TCI); `None` for untagged frames.
    pub vlan: Option<(bool, u16)>,
    pub dst: MacAddr,
    pub src: MacAddr,
}

impl FlowKey {
    /// The key of `frame` received on device `ifindex` (as user space sees
    /// it: with the outer tag back in the bytes).
    pub fn of_frame(ifindex: u32, frame: &[u8]) -> Option<FlowKey> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        let vlan = eth.vlan().map(|t| (t.tpid == 0x88a8, t.tci()));
        Some(FlowKey {
            ifindex,
            vlan,
            dst: eth.dst(),
            src: eth.src(),
        })
    }

    pub fn to_bytes(&self) -> [u8; KEY_SIZE as usize] {
        let mut b = [0u8; KEY_SIZE as usize];
        b[KEY_IFINDEX..KEY_IFINDEX + 4].copy_from_slice(&self.ifindex.to_ne_bytes());
        let vlan = match self.vlan {
            None => 0,
            Some((ad, tci)) => VLAN_TAGGED | if ad { VLAN_8021AD } else { 0 } | tci as u32,
        };
        b[KEY_VLAN..KEY_VLAN + 4].copy_from_slice(&vlan.to_ne_bytes());
        b[KEY_MACS..KEY_MACS + 6].copy_from_slice(&self.dst.0);
        b[KEY_MACS + 6..KEY_MACS + 12].copy_from_slice(&self.src.0);
        b
    }

    pub fn from_bytes(b: &[u8; KEY_SIZE as usize]) -> FlowKey {
        let u32_at = |i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let vlan = u32_at(KEY_VLAN);
        let mac = |i: usize| MacAddr(b[i..i + 6].try_into().expect("6 bytes"));
        FlowKey {
            ifindex: u32_at(KEY_IFINDEX),
            vlan: (vlan & VLAN_TAGGED != 0).then_some((vlan & VLAN_8021AD != 0, vlan as u16)),
            dst: mac(KEY_MACS),
            src: mac(KEY_MACS + 6),
        }
    }
}

/// What the kernel does with a frame of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowAction {
    /// Egress device index.
    pub egress: u32,
    /// `bpf_redirect_peer` (the egress is a veth whose peer is elsewhere).
    pub peer: bool,
    /// Largest non-GSO `skb->len` (MTU + 14).
    pub max_len: u32,
    /// How the frame's outer tag changes on the way.
    pub vlan: VlanEdit,
}

/// The VLAN re-shaping the kernel does for an entry: the cheap ones, since
/// on receive the outer tag sits in skb metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VlanEdit {
    /// Byte for byte as received.
    #[default]
    Keep,
    /// Take the outer tag off (trunk -> access).
    Pop,
    /// Put `tag` on an untagged frame (access -> trunk).
    Push(VlanTag),
    /// Replace the outer tag with `tag` (pop, then push).
    Retag(VlanTag),
}

impl VlanEdit {
    /// The value's `flags` bits and `push` word for this edit.
    fn encode(self) -> (u32, u32) {
        let push = |t: VlanTag| ((t.tpid.to_be() as u32) << 16) | t.tci() as u32;
        match self {
            VlanEdit::Keep => (0, 0),
            VlanEdit::Pop => (FLAG_POP, 0),
            VlanEdit::Push(t) => (FLAG_PUSH, push(t)),
            VlanEdit::Retag(t) => (FLAG_POP | FLAG_PUSH, push(t)),
        }
    }
}

/// An entry's counters as the kernel left them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct FlowStats {
    pub packets: u64,
    pub bytes: u64,
    /// CLOCK_MONOTONIC ns of the last frame (as of the tick before it: the
    /// programs read the coarse clock); 0 if none yet.
    pub last_seen_ns: u64,
}

impl FlowStats {
    /// An entry's counts from its per-CPU copies (`VALUE_SIZE` bytes each,
    /// 8-aligned): the sums of the counts, and the newest stamp.
    fn of_percpu(values: &[u8]) -> FlowStats {
        let u64_at =
            |v: &[u8], i: usize| u64::from_ne_bytes(v[i..i + 8].try_into().expect("8 bytes"));
        values
            .chunks_exact(VALUE_STRIDE)
            .fold(FlowStats::default(), |acc, v| FlowStats {
                packets: acc.packets + u64_at(v, VAL_PACKETS),
                bytes: acc.bytes + u64_at(v, VAL_BYTES),
                last_seen_ns: acc.last_seen_ns.max(u64_at(v, VAL_LAST_SEEN)),
            })
    }
}

/// Bytes between two CPUs' copies of a `flows` value.
const VALUE_STRIDE: usize = VALUE_SIZE.next_multiple_of(8) as usize;

/// `a` as a `flows` value for every CPU (`len` bytes: all the copies), with
/// zeroed counters.
fn value_bytes(a: &FlowAction, len: usize) -> Vec<u8> {
    let mut one = [0u8; VALUE_STRIDE];
    one[VAL_EGRESS..VAL_EGRESS + 4].copy_from_slice(&a.egress.to_ne_bytes());
    let (vlan_flags, push) = a.vlan.encode();
    let flags = vlan_flags | if a.peer { FLAG_PEER } else { 0 };
    one[VAL_FLAGS..VAL_FLAGS + 4].copy_from_slice(&flags.to_ne_bytes());
    one[VAL_MAX_LEN..VAL_MAX_LEN + 4].copy_from_slice(&a.max_len.to_ne_bytes());
    one[VAL_PUSH..VAL_PUSH + 4].copy_from_slice(&push.to_ne_bytes());
    one.iter().copied().cycle().take(len).collect()
}

/// The loaded programs and their maps, shared by every offloaded port of one
/// switch. Dropping it (after the ports' attachments) frees everything.
#[derive(Debug)]
pub struct Programs {
    flows: sys::Map,
    /// Held by the programs too; kept here so tests can read the slots.
    #[cfg_attr(not(test), allow(dead_code))]
    slot: sys::Map,
    decide: sys::Prog,
    carry: sys::Prog,
}

impl Programs {
    /// Creates the maps and loads both programs; the error says which step
    /// the kernel refused (with the verifier's log for a program).
    pub fn load() -> Result<Programs, FastpathError> {
        let flows = sys::Map::create(
            sys::MapType::PercpuHash,
            "l2sw_flows",
            KEY_SIZE,
            VALUE_SIZE,
            MAX_FLOWS,
        )
        .map_err(|err| FastpathError::Map { map: "flows", err })?;
        let slot = sys::Map::create(sys::MapType::PercpuArray, "l2sw_slot", 4, SLOT_SIZE, 1)
            .map_err(|err| FastpathError::Map { map: "slot", err })?;
        let insns = program::decide(flows.fd(), slot.fd()).map_err(|err| FastpathError::Asm {
            prog: "decide",
            err,
        })?;
        let decide =
            sys::Prog::load(sys::ProgType::SocketFilter, "l2sw_decide", &insns).map_err(|e| {
                FastpathError::Load {
                    prog: "decide",
                    err: e.err,
                    log: e.log,
                }
            })?;
        let insns =
            program::carry(slot.fd()).map_err(|err| FastpathError::Asm { prog: "carry", err })?;
        let carry =
            sys::Prog::load(sys::ProgType::SchedCls, "l2sw_carry", &insns).map_err(|e| {
                FastpathError::Load {
                    prog: "carry",
                    err: e.err,
                    log: e.log,
                }
            })?;
        Ok(Programs {
            flows,
            slot,
            decide,
            carry,
        })
    }

    fn flows_err(err: io::Error) -> FastpathError {
        FastpathError::MapOp { map: "flows", err }
    }

    /// Installs (or replaces) the entry for `key`, with zeroed counters.
    pub fn insert(&self, key: &FlowKey, action: &FlowAction) -> Result<(), FastpathError> {
        self.flows
            .update(
                &key.to_bytes(),
                &value_bytes(action, self.flows.value_len()),
                sys::BPF_ANY,
            )
            .map_err(Self::flows_err)
    }

    /// Takes `key`'s entry out and returns its final counters: one step, so
    /// no frame counted meanwhile is lost.
    pub fn remove(&self, key: &FlowKey) -> Result<Option<FlowStats>, FastpathError> {
        let mut v = vec![0u8; self.flows.value_len()];
        let found = self
            .flows
            .lookup_and_delete(&key.to_bytes(), &mut v)
            .map_err(Self::flows_err)?;
        Ok(found.then(|| FlowStats::of_percpu(&v)))
    }

    /// `key`'s counters, if it is installed.
    pub fn stats(&self, key: &FlowKey) -> Result<Option<FlowStats>, FastpathError> {
        let mut v = vec![0u8; self.flows.value_len()];
        let found = self
            .flows
            .lookup(&key.to_bytes(), &mut v)
            .map_err(Self::flows_err)?;
        Ok(found.then(|| FlowStats::of_percpu(&v)))
    }

    /// Every installed key (in the map's order).
    pub fn keys(&self) -> Result<Vec<FlowKey>, FastpathError> {
        let mut out = Vec::new();
        let mut cur: Option<[u8; KEY_SIZE as usize]> = None;
        let mut next = [0u8; KEY_SIZE as usize];
        while self
            .flows
            .next_key(cur.as_ref().map(|k| &k[..]), &mut next)
            .map_err(Self::flows_err)?
        {
            out.push(FlowKey::from_bytes(&next));
            cur = Some(next);
        }
        Ok(out)
    }

    /// Attaches `decide` as the socket filter of a port's AF_PACKET socket.
    pub fn attach_filter(&self, sock: RawFd, ifname: &str) -> Result<(), FastpathError> {
        sys::attach_socket_filter(sock, &self.decide).map_err(|err| FastpathError::Filter {
            ifname: ifname.to_string(),
            err,
        })
    }

    /// Removes the socket filter again (the port goes back to user space).
    pub fn detach_filter(sock: RawFd, ifname: &str) -> Result<(), FastpathError> {
        sys::detach_socket_filter(sock).map_err(|err| FastpathError::Filter {
            ifname: ifname.to_string(),
            err,
        })
    }

    /// Appends `carry` to the tcx ingress chain of `ifindex`; detached when
    /// the returned link is dropped or the process dies.
    pub fn attach_tcx(&self, ifindex: u32, ifname: &str) -> Result<TcxLink, FastpathError> {
        sys::Link::tcx_ingress(&self.carry, ifindex)
            .map(TcxLink)
            .map_err(|err| FastpathError::Tcx {
                ifname: ifname.to_string(),
                err,
            })
    }
}

/// Whether frames for device `ifname` may be redirected with
/// `bpf_redirect_peer`: it is a veth whose peer is in another namespace
/// (the kernel drops a peer redirect within one namespace, and devices other
/// than veth/netkit have no peer). Asks the kernel over netlink; any doubt
/// answers no, and plain `bpf_redirect` is always correct.
pub fn peer_elsewhere(ifname: &str) -> bool {
    let link = crate::netlink::Rtnl::open().and_then(|mut nl| nl.link(ifname));
    matches!(link, Ok(Some(l)) if l.link_netnsid.is_some() && l.kind.as_deref() == Some("veth"))
}

/// A `carry` attachment on one device; dropping it detaches the program.
#[derive(Debug)]
pub struct TcxLink(#[allow(dead_code)] sys::Link);

#[cfg(test)]
mod tests;
