//! The fast path's table on the dataplane thread, as data: which ports
//! carry the programs (or why not), which plans the kernel carries
//! ([`Installed`], keyed by [`FlowKey`]), and the attachments of departed
//! ports. Its own methods attach, detach and take entries out, folding the
//! kernel's counts into the ports' counters; when a plan is installed and
//! what invalidates it is the fast-path stage, `dataplane/fastpath.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::port_entry::PortEntry;
use crate::fastpath::{FlowKey, FlowStats, Programs, TcxLink, VlanEdit};
use crate::port::PortKind;
use crate::switch::PortId;
use crate::wire::MacAddr;

/// A port the programs are attached to.
#[derive(Debug)]
pub struct Attached {
    pub ifindex: u32,
    /// Redirect to this port with `bpf_redirect_peer`.
    pub peer: bool,
    pub mtu: u32,
    _link: TcxLink,
}

/// A plan the kernel carries, as user space remembers it.
#[derive(Debug, Clone, Copy)]
pub struct Installed {
    pub ingress: PortId,
    pub egress: PortId,
    pub vlan: u16,
    pub src: MacAddr,
    pub dst: MacAddr,
    pub peer: bool,
    pub edit: VlanEdit,
    /// Bytes per frame the kernel's count (`skb->len`, the outer tag kept
    /// in metadata) misses on the wire in and out, so the ports' byte
    /// counters match what user space would have counted.
    pub(in crate::dataplane) rx_extra: u64,
    pub(in crate::dataplane) tx_extra: u64,
    /// The entry's counts already added to the ports' counters.
    pub(in crate::dataplane) folded: FlowStats,
}

/// Whether the fast path is on, and why not when it is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FastpathStatus {
    pub enabled: bool,
    /// Why it is off (`None` when on).
    pub reason: Option<String>,
    /// Ports the programs are attached to.
    pub ports: usize,
    pub entries: usize,
}

/// One installed entry, for `fastpath show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRow {
    pub ingress: String,
    pub egress: String,
    /// Outer tag's VID and TPID (`None` untagged).
    pub vlan: Option<u16>,
    pub tpid: Option<u16>,
    pub src: MacAddr,
    pub dst: MacAddr,
    /// "peer" (bpf_redirect_peer) or "redirect" (bpf_redirect).
    pub redirect: String,
    /// What the kernel does to the outer tag: "keep", "pop", "push" or
    /// "retag".
    pub vlan_edit: String,
    /// The VID of the tag "push" or "retag" writes.
    pub egress_vlan: Option<u16>,
    pub packets: u64,
    pub bytes: u64,
    /// Seconds since the kernel last carried a frame of it; `None`: never.
    pub last_seen_s: Option<f64>,
}

/// The fast path's state on the dataplane thread.
#[derive(Debug)]
pub struct FastPath {
    /// Shared with the threads attaching new ports (see [`PendingAttach`]).
    pub(in crate::dataplane) progs: Option<Arc<Programs>>,
    /// Why the fast path is off.
    pub(in crate::dataplane) off: Option<String>,
    pub(in crate::dataplane) attached: Vec<Option<Attached>>,
    /// Why a port carries no programs (by port id), when it does not.
    unattached: Vec<Option<String>>,
    pub(in crate::dataplane) flows: HashMap<FlowKey, Installed>,
    /// Attachments of departed ports, handed back with the port so the
    /// caller closes them (closing a tcx link waits for an RCU grace
    /// period, ~5-15 ms, which the dataplane thread should not).
    retired: Vec<Attached>,
}

/// Why a port carries no programs yet while its tcx link is being made.
const ATTACHING: &str = "attaching";

/// A new port's tcx attachment, made off the dataplane thread: creating a
/// tcx link waits for an RCU grace period (~5-15 ms), which neither the
/// forwarding loop nor the request that added the port should wait for.
/// Until [`FastPath::complete`] installs it, every frame of the port takes
/// the user-space path, which is always correct.
pub struct PendingAttach {
    progs: Arc<Programs>,
    id: PortId,
    ifindex: u32,
    ifname: String,
    peer: bool,
}

impl PendingAttach {
    /// Creates the tcx link (any thread); the result goes to `complete`.
    pub fn link(&self) -> Result<TcxLink, crate::fastpath::FastpathError> {
        self.progs.attach_tcx(self.ifindex, &self.ifname)
    }
}

/// Attachments of a removed port; dropping this detaches them.
#[derive(Debug, Default)]
pub struct Retired(#[allow(dead_code)] Vec<Attached>);

impl Default for FastPath {
    fn default() -> FastPath {
        FastPath {
            progs: None,
            off: Some("off (--fastpath off)".into()),
            attached: Vec::new(),
            unattached: Vec::new(),
            flows: HashMap::new(),
            retired: Vec::new(),
        }
    }
}

fn slot<T>(v: &mut Vec<Option<T>>, id: PortId) -> &mut Option<T> {
    if v.len() <= id.index() {
        v.resize_with(id.index() + 1, || None);
    }
    &mut v[id.index()]
}

impl FastPath {
    /// Loads the programs; on failure the fast path stays off with the
    /// kernel's reason (shown by `status`).
    pub fn enable(&mut self) -> Result<(), String> {
        if self.progs.is_some() {
            return Ok(());
        }
        match Programs::load() {
            Ok(p) => {
                self.progs = Some(Arc::new(p));
                self.off = None;
                Ok(())
            }
            Err(e) => {
                let why = format!("unavailable: {e}");
                self.off = Some(why.clone());
                Err(why)
            }
        }
    }

    pub fn is_on(&self) -> bool {
        self.progs.is_some()
    }

    pub fn status(&self) -> FastpathStatus {
        FastpathStatus {
            enabled: self.progs.is_some(),
            reason: self.off.clone(),
            ports: self.attached.iter().flatten().count(),
            entries: self.flows.len(),
        }
    }

    /// Attaches the programs to a new port where its kind allows: an
    /// AF_PACKET port on a device in the switch's namespace.
    pub fn attach(&mut self, id: PortId, e: &PortEntry, peer: bool) {
        let Some(progs) = &self.progs else { return };
        let info = e.port.info();
        let why = match (info.kind, info.ifindex) {
            (PortKind::Iface | PortKind::TapVm, Some(ifindex)) => {
                let res = progs
                    .attach_filter(e.port.raw_fd(), &info.ifname)
                    .and_then(|_| progs.attach_tcx(ifindex, &info.ifname));
                match res {
                    Ok(link) => {
                        *slot(&mut self.attached, id) = Some(Attached {
                            ifindex,
                            peer,
                            mtu: e.port.mtu(),
                            _link: link,
                        });
                        None
                    }
                    Err(err) => {
                        let _ = Programs::detach_filter(e.port.raw_fd(), &info.ifname);
                        Some(err.to_string())
                    }
                }
            }
            (kind, _) => Some(format!(
                "a {} port has no device in the switch's namespace to carry frames",
                kind.name()
            )),
        };
        *slot(&mut self.unattached, id) = why;
    }

    /// [`attach`](Self::attach) in two halves: marks the port "attaching"
    /// and returns what another thread needs to make the tcx link, or
    /// `None` when the port cannot carry the programs (reason recorded).
    pub fn attach_later(&mut self, id: PortId, e: &PortEntry, peer: bool) -> Option<PendingAttach> {
        let progs = self.progs.clone()?;
        let info = e.port.info();
        match (info.kind, info.ifindex) {
            (PortKind::Iface | PortKind::TapVm, Some(ifindex)) => {
                *slot(&mut self.unattached, id) = Some(ATTACHING.into());
                Some(PendingAttach {
                    progs,
                    id,
                    ifindex,
                    ifname: info.ifname,
                    peer,
                })
            }
            (kind, _) => {
                *slot(&mut self.unattached, id) = Some(format!(
                    "a {} port has no device in the switch's namespace to carry frames",
                    kind.name()
                ));
                None
            }
        }
    }

    /// Second half: installs the link made for `p` (the socket filter goes
    /// on now, on the dataplane thread that owns the socket), unless the
    /// port went or the fast path was switched meanwhile; then the link is
    /// dropped, which detaches it.
    pub fn complete(
        &mut self,
        p: PendingAttach,
        link: Result<TcxLink, crate::fastpath::FastpathError>,
        ports: &[Option<PortEntry>],
    ) {
        let same_progs = self
            .progs
            .as_ref()
            .is_some_and(|q| Arc::ptr_eq(q, &p.progs));
        let waiting =
            self.unattached.get(p.id.index()).and_then(|r| r.as_deref()) == Some(ATTACHING);
        let Some(e) = ports.get(p.id.index()).and_then(|e| e.as_ref()) else {
            return;
        };
        if !same_progs || !waiting || e.port.info().ifindex != Some(p.ifindex) {
            return;
        }
        let res = link.and_then(|link| {
            p.progs
                .attach_filter(e.port.raw_fd(), &p.ifname)
                .map(|_| link)
        });
        let why = match res {
            Ok(link) => {
                *slot(&mut self.attached, p.id) = Some(Attached {
                    ifindex: p.ifindex,
                    peer: p.peer,
                    mtu: e.port.mtu(),
                    _link: link,
                });
                None
            }
            Err(err) => {
                let _ = Programs::detach_filter(e.port.raw_fd(), &p.ifname);
                Some(err.to_string())
            }
        };
        *slot(&mut self.unattached, p.id) = why;
    }

    /// The attachments of ports removed since the last call.
    pub fn take_retired(&mut self) -> Retired {
        Retired(std::mem::take(&mut self.retired))
    }

    /// Why port `id` carries no programs, if it does not.
    pub fn unattached_reason(&self, id: PortId) -> Option<&str> {
        if let Some(off) = &self.off {
            return Some(off);
        }
        match self.attached.get(id.index()) {
            Some(Some(_)) => None,
            _ => Some(
                self.unattached
                    .get(id.index())
                    .and_then(|r| r.as_deref())
                    .unwrap_or("not attached"),
            ),
        }
    }

    /// Before port `id` leaves: its entries out, its programs detached.
    pub fn detach(&mut self, id: PortId, ports: &mut [Option<PortEntry>]) {
        self.remove_if(ports, |i| i.ingress == id || i.egress == id);
        if let Some(e) = ports.get(id.index()).and_then(|p| p.as_ref()) {
            if self.attached.get(id.index()).is_some_and(|a| a.is_some()) {
                let _ = Programs::detach_filter(e.port.raw_fd(), e.port.name());
            }
        }
        if let Some(a) = self.attached.get_mut(id.index()).and_then(Option::take) {
            self.retired.push(a);
        }
        if let Some(u) = self.unattached.get_mut(id.index()) {
            *u = None;
        }
    }

    fn fold(ports: &mut [Option<PortEntry>], inst: &mut Installed, now: FlowStats) {
        let packets = now.packets.saturating_sub(inst.folded.packets);
        let bytes = now.bytes.saturating_sub(inst.folded.bytes);
        if let Some(Some(e)) = ports.get_mut(inst.ingress.index()) {
            e.counters.fastpath_rx_frames += packets;
            e.counters.fastpath_rx_bytes += bytes + packets * inst.rx_extra;
        }
        if let Some(Some(e)) = ports.get_mut(inst.egress.index()) {
            e.counters.fastpath_tx_frames += packets;
            e.counters.fastpath_tx_bytes += bytes + packets * inst.tx_extra;
        }
        inst.folded = now;
    }

    /// Takes out every entry `pred` picks, adding its last counts to the ports.
    pub fn remove_if(
        &mut self,
        ports: &mut [Option<PortEntry>],
        pred: impl Fn(&Installed) -> bool,
    ) -> usize {
        let Some(progs) = &self.progs else { return 0 };
        let keys: Vec<FlowKey> = self
            .flows
            .iter()
            .filter(|(_, i)| pred(i))
            .map(|(k, _)| *k)
            .collect();
        for k in &keys {
            let mut inst = self.flows.remove(k).expect("listed");
            match progs.remove(k) {
                Ok(Some(last)) => Self::fold(ports, &mut inst, last),
                Ok(None) => {}
                Err(e) => eprintln!("l2sw: fast path: {e}"),
            }
        }
        keys.len()
    }

    /// Takes out every entry.
    pub fn flush(&mut self, ports: &mut [Option<PortEntry>]) -> usize {
        self.remove_if(ports, |_| true)
    }

    /// Adds what the kernel counted since the last call to the ports'
    /// counters, and returns every entry's counts.
    pub fn sync(
        &mut self,
        ports: &mut [Option<PortEntry>],
    ) -> Vec<(FlowKey, Installed, FlowStats)> {
        let Some(progs) = &self.progs else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(self.flows.len());
        for (k, inst) in self.flows.iter_mut() {
            if let Ok(Some(s)) = progs.stats(k) {
                Self::fold(ports, inst, s);
                out.push((*k, *inst, s));
            }
        }
        out
    }
}
