//! Frames toward the guest that found its receive ring full: held here, in
//! order, until the guest posts receive buffers again, so a TCP burst toward
//! a VM whose vCPU is briefly behind is delayed instead of dropped.
//!
//! The queue is bounded (`MAX_BYTES` of frame data, `MAX_FRAMES` frames); a
//! frame beyond the bound is refused and the dataplane counts it as
//! `egress_full`, as before. Its memory is taken once, the first time the
//! ring fills, and kept: after that, queueing and flushing allocate nothing.
//! Frames sit back to back in one arena; the arena is reset when the queue
//! empties and compacted (one `copy_within`) when its tail runs out while
//! the front is already sent.

use std::collections::VecDeque;

use smallvec::SmallVec;

use crate::port::{HeldFrames, Offload, TxFrame, BATCH_SIZE};

/// Frame bytes held per port: a few guest rings' worth of full-size GSO
/// frames, a TCP window's burst.
pub const MAX_BYTES: usize = 4 << 20;
/// Frames held per port (small frames: the count bounds before the bytes).
pub const MAX_FRAMES: usize = 4096;

#[derive(Clone, Copy)]
struct Held {
    start: usize,
    len: usize,
    offload: Offload,
}

#[derive(Default)]
pub struct Backlog {
    arena: Vec<u8>,
    held: VecDeque<Held>,
    /// End of the last held frame in `arena`.
    end: usize,
    pub stats: HeldFrames,
}

impl Backlog {
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Queues a copy of `f` behind the frames already held. False when the
    /// bound is reached: the frame is not taken.
    pub fn push(&mut self, f: &TxFrame<'_>) -> bool {
        let len = f.data.len();
        if self.held.len() >= MAX_FRAMES || len > MAX_BYTES {
            return false;
        }
        if self.arena.is_empty() {
            // Warm-up: the only allocation the backlog ever makes.
            self.arena = vec![0; MAX_BYTES];
            self.held.reserve_exact(MAX_FRAMES);
        }
        if self.end + len > MAX_BYTES {
            let front = self.held.front().map_or(self.end, |h| h.start);
            if self.end - front + len > MAX_BYTES {
                return false;
            }
            self.arena.copy_within(front..self.end, 0);
            for h in self.held.iter_mut() {
                h.start -= front;
            }
            self.end -= front;
        }
        self.arena[self.end..self.end + len].copy_from_slice(f.data);
        self.held.push_back(Held {
            start: self.end,
            len,
            offload: f.offload,
        });
        self.end += len;
        self.stats.queued += 1;
        self.stats.waiting = self.held.len() as u64;
        self.stats.peak = self.stats.peak.max(self.stats.waiting);
        true
    }

    /// Up to `BATCH_SIZE` frames from the front, oldest first (on the
    /// stack: no allocation).
    pub fn front(&self) -> SmallVec<[TxFrame<'_>; BATCH_SIZE]> {
        self.held
            .iter()
            .take(BATCH_SIZE)
            .map(|h| TxFrame {
                data: &self.arena[h.start..h.start + h.len],
                offload: h.offload,
            })
            .collect()
    }

    /// Forgets the `n` oldest frames (sent, or `lost` when `lost`).
    pub fn pop(&mut self, n: usize, lost: bool) {
        let n = n.min(self.held.len());
        self.held.drain(..n);
        if lost {
            self.stats.lost += n as u64;
        }
        if self.held.is_empty() {
            self.end = 0;
        }
        self.stats.waiting = self.held.len() as u64;
    }

    /// Throws every held frame away; returns how many.
    pub fn clear(&mut self) -> usize {
        let n = self.held.len();
        self.pop(n, true);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(b: &Backlog) -> Vec<Vec<u8>> {
        b.front().iter().map(|f| f.data.to_vec()).collect()
    }

    #[test]
    fn frames_leave_in_the_order_they_came() {
        let mut b = Backlog::default();
        for i in 0..5u8 {
            assert!(b.push(&TxFrame::plain(&[i; 100])));
        }
        b.pop(2, false);
        let got = frames_of(&b);
        assert_eq!(got, vec![vec![2u8; 100], vec![3; 100], vec![4; 100]]);
        assert_eq!(
            b.stats,
            HeldFrames {
                queued: 5,
                waiting: 3,
                peak: 5,
                lost: 0
            }
        );
    }

    #[test]
    fn the_bound_refuses_frames_and_a_sent_front_makes_room() {
        let mut b = Backlog::default();
        let big = vec![7u8; MAX_BYTES / 4];
        for _ in 0..4 {
            assert!(b.push(&TxFrame::plain(&big)));
        }
        assert!(!b.push(&TxFrame::plain(&[1u8; 64])), "bytes bound");
        b.pop(1, false);
        // The tail is at the arena's end: the arena is compacted.
        assert!(b.push(&TxFrame::plain(&[9u8; 64])));
        let got = frames_of(&b);
        assert_eq!(got.len(), 4);
        assert_eq!(got[3], vec![9u8; 64]);
        assert_eq!(got[0], big);
        assert_eq!(b.clear(), 4);
        assert_eq!(b.stats.lost, 4);
        assert!(b.is_empty());

        for i in 0..MAX_FRAMES {
            assert!(b.push(&TxFrame::plain(&[i as u8; 1])));
        }
        assert!(!b.push(&TxFrame::plain(&[0u8; 1])), "frames bound");
    }
}
