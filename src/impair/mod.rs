//! Link impairment with netem's semantics, sans-I/O: delay with jitter,
//! correlation and distribution tables, loss (random, Gilbert-Elliott,
//! 4-state), duplication, reordering with a gap, corruption, a rate with
//! per-frame and per-cell overhead, and a bounded queue.
//!
//! An [`Impairer`] is one direction of one port. The caller hands it frames
//! with the time they arrive (`enqueue`) and asks for the frames that are due
//! (`pop_due`) and when the next one will be (`next_due`). It reads no clock,
//! owns no socket and never sleeps; its random source is seeded, so a fixed
//! seed and the same arrivals give the same decisions. The order of steps for
//! each frame is netem's (`netem_enqueue` in the kernel's `sch_netem.c`):
//!
//! 1. duplicate? (a copy re-enters the impairment with duplication off);
//! 2. lost? (a loss cancels the duplicate first, as netem counts them);
//! 3. corrupt? (one random bit of the frame flipped);
//! 4. queue full (`limit`)? dropped;
//! 5. reorder? (outside the last `gap` frames, with the reorder
//!    probability): sent at once, ahead of the delayed frames;
//! 6. otherwise delayed by `delay` +- `jitter` drawn from the distribution,
//!    plus, with a rate, the time the frame takes on the wire after the last
//!    queued one (frames sort by their send time, so jitter reorders them as
//!    it does in netem).
//!
//! Differences from netem are listed in docs/impairment.md.

pub mod dist;
pub mod loss;
pub mod rng;
pub mod spec;

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use smallvec::SmallVec;

pub use dist::Distribution;
pub use spec::{
    Direction, FourState, Gemodel, ImpairSpec, Limit, LossSpec, Percent, Rate, Span, SpecError,
    ValueError,
};

use dist::DelayCorrelation;
use loss::LossGen;
use rng::{Correlated, Rng};

/// What the impairment needs from a frame it holds.
pub trait ImpairFrame: Sized {
    /// Bytes the frame takes on the wire, for the rate (for a GSO
    /// super-frame: all its segments with their headers).
    fn wire_len(&self) -> usize;
    /// An independent copy, for duplication.
    fn duplicate(&self) -> Self;
    /// Flips bit `bit` (0..8) of one byte chosen by `pick` (uniform over
    /// u32): the frame knows its length and what must happen first (netem
    /// finishes a partial checksum before, so the damage shows).
    fn corrupt(&mut self, pick: u32, bit: u8);
}

/// Why the impairment dropped a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImpairDrop {
    /// Emulated loss.
    Loss,
    /// The queue held `limit` frames (or bytes) already.
    Limit,
}

/// What happened to a frame on its way in, besides its fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Marks {
    /// This is the extra copy made by duplication.
    pub duplicate: bool,
    /// Sent at once, ahead of delayed frames.
    pub reordered: bool,
    /// One bit flipped.
    pub corrupted: bool,
}

/// A frame that is due, with when it arrived and what was done to it.
#[derive(Debug)]
pub struct Released<T> {
    pub frame: T,
    pub marks: Marks,
    pub arrived_ns: u64,
    pub due_ns: u64,
}

/// What `enqueue` did with one frame (and its duplicate, if one was made).
#[derive(Debug)]
pub struct Enqueued<T> {
    /// Copies queued (0, 1 or 2).
    pub queued: u8,
    /// A duplicate was made (and queued or dropped like any frame).
    pub duplicated: bool,
    /// Copies sent ahead of the delayed frames.
    pub reordered: u8,
    /// Copies with a bit flipped.
    pub corrupted: u8,
    /// Frames dropped, handed back so the caller can record and recycle them.
    pub dropped: SmallVec<[(T, ImpairDrop, Marks); 2]>,
    /// When each queued copy is due, with its marks (for live traces).
    pub due: SmallVec<[(u64, Marks); 2]>,
}

/// Running totals of one impairer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImpairStats {
    pub enqueued: u64,
    pub released: u64,
    pub lost: u64,
    pub limit_drops: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
    /// Frames and bytes waiting right now.
    pub queued: u64,
    pub queued_bytes: u64,
}

/// A port's impairment as `port list` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImpairRow {
    pub spec: ImpairSpec,
    /// The seed in use: the spec's, or the one drawn for it (give it back
    /// with `--seed` to replay the same fates).
    pub seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<ImpairStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<ImpairStats>,
}

struct Queued<T> {
    due: u64,
    seq: u64,
    arrived: u64,
    len: usize,
    marks: Marks,
    frame: T,
}

impl<T> PartialEq for Queued<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl<T> Eq for Queued<T> {}
impl<T> PartialOrd for Queued<T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
/// Reversed: `BinaryHeap` is a max-heap and the earliest due must come out
/// first; equal times keep arrival order.
impl<T> Ord for Queued<T> {
    fn cmp(&self, o: &Self) -> Ordering {
        (o.due, o.seq).cmp(&(self.due, self.seq))
    }
}

/// One direction of one port's impairment: its settings, random state and
/// queue.
pub struct Impairer<T> {
    spec: ImpairSpec,
    seed: u64,
    rng: Rng,
    latency: i64,
    jitter: i64,
    dist: Distribution,
    delay_cor: DelayCorrelation,
    loss: LossGen,
    duplicate: Option<Correlated>,
    reorder: Option<Correlated>,
    gap: u32,
    corrupt: Option<Correlated>,
    /// Bytes per second; 0: no rate.
    rate_bps: u64,
    limit: u64,
    limit_bytes: u64,
    /// Frames since the last reordered one (netem's `counter`).
    counter: u32,
    /// Frames sent ahead of the delayed ones, oldest first.
    head: VecDeque<Queued<T>>,
    /// Delayed frames by due time.
    timed: BinaryHeap<Queued<T>>,
    /// Latest due time of anything queued: where the rate's next frame
    /// starts (netem's "last packet in queue is the reference point").
    last_due: Option<u64>,
    seq: u64,
    queued_bytes: u64,
    stats: ImpairStats,
}

impl<T: ImpairFrame> Impairer<T> {
    /// An impairer for `spec` (which should have passed `validate`), its
    /// random source seeded with `spec.seed`, or with `fallback_seed` when
    /// the spec has none (the caller draws it: this module reads no entropy).
    pub fn new(spec: ImpairSpec, fallback_seed: u64) -> Impairer<T> {
        let seed = spec.seed.unwrap_or(fallback_seed);
        let rng = Rng::new(seed);
        let event = |p: Option<Percent>, rho: Option<Percent>| {
            p.filter(|p| !p.is_zero())
                .map(|p| Correlated::new(p.fraction(), rho.unwrap_or_default().fraction()))
        };
        let reorder = event(spec.reorder, spec.reorder_correlation);
        let (limit, limit_bytes) = spec.queue_limits();
        Impairer {
            seed,
            latency: spec.delay.map_or(0, |d| d.ns() as i64),
            jitter: spec.jitter.map_or(0, |d| d.ns() as i64),
            dist: spec.distribution.unwrap_or_default(),
            delay_cor: DelayCorrelation::new(spec.correlation.unwrap_or_default().fraction()),
            loss: LossGen::new(&spec.loss_spec()),
            duplicate: event(spec.duplicate, spec.duplicate_correlation),
            // tc makes the gap 1 when reordering is asked without one.
            gap: if reorder.is_none() {
                0
            } else {
                spec.gap.unwrap_or(1)
            },
            reorder,
            corrupt: event(spec.corrupt, spec.corrupt_correlation),
            rate_bps: spec.rate.map_or(0, |r| r.bits_per_sec() / 8),
            limit,
            limit_bytes,
            counter: 0,
            head: VecDeque::new(),
            timed: BinaryHeap::new(),
            last_due: None,
            seq: 0,
            queued_bytes: 0,
            stats: ImpairStats::default(),
            rng,
            spec,
        }
    }

    pub fn spec(&self) -> &ImpairSpec {
        &self.spec
    }

    /// The seed in use (the spec's, or the fallback drawn for it).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn stats(&self) -> ImpairStats {
        ImpairStats {
            queued: self.len() as u64,
            queued_bytes: self.queued_bytes,
            ..self.stats
        }
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.head.len() + self.timed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When the next frame is due; `None` with nothing queued. Frames sent
    /// ahead (reordered) are due at their arrival time, so at once.
    pub fn next_due(&self) -> Option<u64> {
        match (self.head.front(), self.timed.peek()) {
            (Some(h), _) => Some(h.due),
            (None, Some(t)) => Some(t.due),
            (None, None) => None,
        }
    }

    /// Takes one frame arriving at `now` (ns on the caller's monotonic clock).
    pub fn enqueue(&mut self, now: u64, frame: T) -> Enqueued<T> {
        let mut out = Enqueued {
            queued: 0,
            duplicated: false,
            reordered: 0,
            corrupted: 0,
            dropped: SmallVec::new(),
            due: SmallVec::new(),
        };
        self.enqueue_one(now, frame, true, &mut out);
        out
    }

    fn enqueue_one(&mut self, now: u64, mut frame: T, may_dup: bool, out: &mut Enqueued<T>) {
        self.stats.enqueued += 1;
        let mut marks = Marks {
            duplicate: !may_dup,
            ..Marks::default()
        };
        let mut count = 1;
        if may_dup
            && self
                .duplicate
                .as_mut()
                .is_some_and(|d| d.fire(&mut self.rng))
        {
            count += 1;
        }
        if self.loss.lose(&mut self.rng) {
            count -= 1;
        }
        if count == 0 {
            self.stats.lost += 1;
            out.dropped.push((frame, ImpairDrop::Loss, marks));
            return;
        }
        if count > 1 {
            // The copy goes through the impairment first, with duplication
            // off, as netem re-enqueues it at the root before the original.
            let copy = frame.duplicate();
            self.stats.duplicated += 1;
            out.duplicated = true;
            self.enqueue_one(now, copy, false, out);
        }
        if self.corrupt.as_mut().is_some_and(|c| c.fire(&mut self.rng)) {
            let pick = self.rng.next_u32();
            let bit = self.rng.below(8) as u8;
            frame.corrupt(pick, bit);
            marks.corrupted = true;
            self.stats.corrupted += 1;
            out.corrupted += 1;
        }
        let len = frame.wire_len();
        if self.len() as u64 >= self.limit
            || self.queued_bytes.saturating_add(len as u64) > self.limit_bytes
        {
            self.stats.limit_drops += 1;
            out.dropped.push((frame, ImpairDrop::Limit, marks));
            return;
        }
        self.queued_bytes += len as u64;
        out.queued += 1;
        self.seq += 1;
        let seq = self.seq;
        let reorder_now = self.gap != 0
            && self.counter >= self.gap - 1
            && self.reorder.as_mut().is_some_and(|r| r.fire(&mut self.rng));
        if reorder_now {
            self.counter = 0;
            marks.reordered = true;
            self.stats.reordered += 1;
            out.reordered += 1;
            self.note_due(now);
            out.due.push((now, marks));
            self.head.push_back(Queued {
                due: now,
                seq,
                arrived: now,
                len,
                marks,
                frame,
            });
            return;
        }
        let rnd = if self.jitter == 0 {
            0
        } else {
            let (a, b) = (self.rng.next_u32(), self.rng.next_u32());
            self.delay_cor.next(a, b)
        };
        let mut delay = dist::tabledist(self.latency, self.jitter, rnd, self.dist);
        let mut start = now as i64;
        if self.rate_bps != 0 {
            if let Some(last) = self.last_due {
                // The frame goes on the wire after the last queued one: the
                // wait already ahead of it is taken off its own delay.
                delay -= last as i64 - now as i64;
                delay = delay.max(0);
                start = last as i64;
            }
            delay += self.packet_time_ns(len) as i64;
        }
        let due = (start + delay).max(0) as u64;
        self.counter = self.counter.saturating_add(1);
        self.note_due(due);
        out.due.push((due, marks));
        self.timed.push(Queued {
            due,
            seq,
            arrived: now,
            len,
            marks,
            frame,
        });
    }

    fn note_due(&mut self, due: u64) {
        self.last_due = Some(self.last_due.map_or(due, |l| l.max(due)));
    }

    /// Time `len` bytes take at the rate, with netem's overheads.
    fn packet_time_ns(&self, len: usize) -> u64 {
        let mut len = (len as i64 + self.spec.overhead as i64).max(0) as u64;
        let cell = self.spec.cellsize as u64;
        if cell != 0 {
            let cells = len.div_ceil(cell);
            len = cells * (cell as i64 + self.spec.cell_overhead as i64).max(0) as u64;
        }
        ((len as u128 * 1_000_000_000) / self.rate_bps as u128) as u64
    }

    /// The next frame due at or before `now`: frames sent ahead first, then
    /// delayed ones in due order.
    pub fn pop_due(&mut self, now: u64) -> Option<Released<T>> {
        self.pop_due_if(now, |_| true)
    }

    /// As [`pop_due`](Self::pop_due), but leaves the frame queued unless
    /// `ok` accepts it (the caller's batch may be too full for it).
    pub fn pop_due_if(&mut self, now: u64, ok: impl FnOnce(&T) -> bool) -> Option<Released<T>> {
        let q = if let Some(h) = self.head.front() {
            if !ok(&h.frame) {
                return None;
            }
            self.head.pop_front()
        } else if let Some(t) = self.timed.peek() {
            if t.due > now || !ok(&t.frame) {
                return None;
            }
            self.timed.pop()
        } else {
            None
        }?;
        Some(self.released(q))
    }

    /// Everything still queued, in the order it would have left, whatever
    /// its due time (for `--clear` and port removal).
    pub fn drain(&mut self) -> Vec<Released<T>> {
        let mut out = Vec::with_capacity(self.len());
        while let Some(q) = self.head.pop_front() {
            out.push(self.released(q));
        }
        while let Some(q) = self.timed.pop() {
            out.push(self.released(q));
        }
        out
    }

    fn released(&mut self, q: Queued<T>) -> Released<T> {
        self.queued_bytes -= q.len as u64;
        self.stats.released += 1;
        if self.is_empty() {
            self.last_due = None;
        }
        Released {
            frame: q.frame,
            marks: q.marks,
            arrived_ns: q.arrived,
            due_ns: q.due,
        }
    }
}

#[cfg(test)]
mod tests;
