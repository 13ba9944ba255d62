//! A port's impairment queues as data: the frame copies waiting in them
//! ([`Held`]), one port's queues per direction with a pool of spare buffers
//! ([`PortImpair`]), and the slot a port holds them in ([`ImpairSlot`]).
//! What the dataplane does with them (holding frames, releasing the due
//! ones) is the impairment stage, `dataplane/impair.rs`.

use crate::impair::{ImpairFrame, ImpairRow, ImpairSpec, Impairer};
use crate::port::{GsoKind, Offload, TxFrame};
use crate::switch::PortId;
use crate::wire::gso::{complete_partial, segment, SegmentKind};

/// Spare frame buffers kept per port, so a steady stream reuses them.
const POOL: usize = 1024;
/// ... and their capacity at most, so a burst of super-frames does not
/// leave 64 MiB of spares behind (the queue's own bound is its limit).
const POOL_BYTES: usize = 8 << 20;

/// A frame copy waiting in an impairment queue.
#[derive(Debug, Clone)]
pub struct Held {
    pub(in crate::dataplane) data: Vec<u8>,
    pub(in crate::dataplane) offload: Offload,
    /// Kernel receive stamp (ns since the epoch), for residence times.
    pub(in crate::dataplane) rx_ts: u64,
    /// Port the frame came in on.
    pub(in crate::dataplane) ingress: PortId,
    /// Packet id of the frame's capture records (0: none was given, the
    /// frame was held while nothing read; one is drawn when it leaves).
    pub(in crate::dataplane) id: u64,
    /// Set when corruption cut a super-frame into segments: where each is.
    pub(in crate::dataplane) segs: Vec<(usize, usize)>,
}

impl Held {
    pub(in crate::dataplane) fn pieces(&self) -> impl Iterator<Item = TxFrame<'_>> {
        let whole = self.segs.is_empty().then(|| TxFrame {
            data: &self.data,
            offload: self.offload,
        });
        whole.into_iter().chain(
            self.segs
                .iter()
                .map(|&(s, l)| TxFrame::plain(&self.data[s..s + l])),
        )
    }
}

impl ImpairFrame for Held {
    fn wire_len(&self) -> usize {
        match self.offload.gso {
            // Every segment carries the headers again.
            Some(g) if g.size > 0 && self.data.len() > g.hdr_len as usize => {
                let payload = self.data.len() - g.hdr_len as usize;
                payload + payload.div_ceil(g.size as usize) * g.hdr_len as usize
            }
            _ => self.data.len(),
        }
    }

    fn duplicate(&self) -> Held {
        self.clone()
    }

    /// As netem: a super-frame is cut into segments and the first one is
    /// damaged; a partial checksum is finished first, so the flipped bit
    /// shows as a checksum error at the receiver instead of being summed in.
    fn corrupt(&mut self, pick: u32, bit: u8) {
        if let Some(g) = self.offload.gso {
            let kind = match g.kind {
                GsoKind::Tcp4 | GsoKind::Tcp6 => Some(SegmentKind::Tcp),
                GsoKind::UdpL4 => Some(SegmentKind::Udp),
                GsoKind::Ufo => None,
            };
            let (mut out, mut ranges) = (Vec::new(), Vec::new());
            if let Some(kind) = kind {
                if segment(
                    &self.data,
                    kind,
                    g.size as usize,
                    g.ecn,
                    &mut out,
                    &mut ranges,
                )
                .is_ok()
                    && !ranges.is_empty()
                {
                    self.data = out;
                    self.segs = ranges;
                    self.offload = Offload::NONE;
                }
            }
        } else if let Some((start, off)) = self.offload.csum {
            complete_partial(&mut self.data, start as usize, off as usize);
            self.offload.csum = None;
        }
        self.offload.data_valid = false;
        let (start, len) = self.segs.first().copied().unwrap_or((0, self.data.len()));
        if len == 0 {
            return;
        }
        let i = start + ((pick as u64 * len as u64) >> 32) as usize;
        self.data[i] ^= 1 << (bit & 7);
    }
}

/// One port's impairment: the spec, and a queue per impaired direction.
pub struct PortImpair {
    pub spec: ImpairSpec,
    pub seed: u64,
    pub egress: Option<Impairer<Held>>,
    pub ingress: Option<Impairer<Held>>,
    pool: Vec<Vec<u8>>,
    /// Capacity of the buffers in `pool`.
    pool_bytes: usize,
}

impl PortImpair {
    /// `fallback_seed` is used when the spec has none; the ingress queue's
    /// random state is derived from the same seed, so both replay.
    pub fn new(spec: ImpairSpec, fallback_seed: u64) -> PortImpair {
        let seed = spec.seed.unwrap_or(fallback_seed);
        let dir = spec.direction;
        let make = |s: u64| {
            Impairer::new(
                ImpairSpec {
                    seed: Some(s),
                    ..spec.clone()
                },
                s,
            )
        };
        PortImpair {
            egress: dir.egress().then(|| make(seed)),
            ingress: dir.ingress().then(|| make(seed ^ 0x9e37_79b9_7f4a_7c15)),
            spec,
            seed,
            pool: Vec::new(),
            pool_bytes: 0,
        }
    }

    pub(in crate::dataplane) fn next_due(&self) -> Option<u64> {
        let e = self.egress.as_ref().and_then(|q| q.next_due());
        let i = self.ingress.as_ref().and_then(|q| q.next_due());
        e.into_iter().chain(i).min()
    }

    pub(in crate::dataplane) fn is_empty(&self) -> bool {
        self.egress.as_ref().is_none_or(|q| q.is_empty())
            && self.ingress.as_ref().is_none_or(|q| q.is_empty())
    }

    pub(in crate::dataplane) fn held(
        &mut self,
        frame: &[u8],
        offload: Offload,
        rx_ts: u64,
        ingress: PortId,
        id: u64,
    ) -> Held {
        let mut data = self.pool.pop().unwrap_or_default();
        self.pool_bytes -= data.capacity();
        data.clear();
        data.extend_from_slice(frame);
        Held {
            data,
            offload,
            rx_ts,
            ingress,
            id,
            segs: Vec::new(),
        }
    }

    pub(in crate::dataplane) fn recycle(&mut self, h: Held) {
        let cap = h.data.capacity();
        if self.pool.len() < POOL && self.pool_bytes + cap <= POOL_BYTES {
            self.pool_bytes += cap;
            self.pool.push(h.data);
        }
    }

    pub fn row(&self) -> ImpairRow {
        ImpairRow {
            spec: self.spec.clone(),
            seed: self.seed,
            egress: self.egress.as_ref().map(|q| q.stats()),
            ingress: self.ingress.as_ref().map(|q| q.stats()),
        }
    }
}

/// The impairment a port holds: the active one, and one being emptied
/// after `--clear` or a change (its frames leave at once, in order).
#[derive(Default)]
pub struct ImpairSlot {
    pub active: Option<PortImpair>,
    pub(in crate::dataplane) retired: Option<PortImpair>,
}

impl ImpairSlot {
    /// Installs `next` (or clears with `None`); frames still queued under
    /// the previous settings are sent at once.
    pub fn replace(&mut self, next: Option<PortImpair>) {
        if let Some(old) = self.active.take() {
            if !old.is_empty() {
                // Two changes within one round: the older leftovers go first.
                if self.retired.as_ref().is_none_or(|r| r.is_empty()) {
                    self.retired = Some(old);
                }
            }
        }
        self.active = next;
    }

    pub(in crate::dataplane) fn unused(&self) -> bool {
        self.active.is_none() && self.retired.is_none()
    }

    pub(in crate::dataplane) fn next_due(&self) -> Option<u64> {
        if self.retired.is_some() {
            return Some(0);
        }
        self.active.as_ref().and_then(|a| a.next_due())
    }
}
