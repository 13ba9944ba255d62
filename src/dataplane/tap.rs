//! Taps: copies of frames (capture) or explanations of decisions (live
//! trace) handed to a reader through a bounded channel. The dataplane never
//! waits for a reader: when the channel is full the record is skipped and
//! counted, and the reader learns how many it missed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::observe::filter::Filter;
use crate::observe::records::{Dir, FrameRecord, TapEvent, TraceReport};
use crate::switch::PortId;

/// Records a reader may fall behind by before the dataplane skips.
pub const TAP_QUEUE: usize = 8192;

/// What a tap delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapMode {
    /// Frame records cut to `snaplen` bytes (0 = whole frames).
    Capture { snaplen: usize },
    /// One decision explanation per ingress frame.
    Trace,
}

/// What to tap.
#[derive(Debug, Clone)]
pub struct TapSpec {
    /// Port names to tap; empty = every port.
    pub ports: Vec<String>,
    pub filter: Filter,
    pub mode: TapMode,
    /// Stop after this many records.
    pub count: Option<u64>,
    /// Capture only records of this direction (`None`: both).
    pub direction: Option<Dir>,
}

/// Counters shared with the reader.
#[derive(Debug, Default)]
pub struct TapStats {
    pub delivered: AtomicU64,
    /// Records dropped because the reader was too slow.
    pub skipped: AtomicU64,
    /// The count was reached; no more records come.
    pub done: AtomicBool,
}

/// The reader's end.
pub struct TapHandle {
    pub id: u64,
    pub events: Receiver<TapEvent>,
    pub stats: Arc<TapStats>,
}

/// A tap as the dataplane holds it.
pub struct ActiveTap {
    pub id: u64,
    /// `None` = every port.
    pub ports: Option<Vec<PortId>>,
    pub filter: Filter,
    pub mode: TapMode,
    pub remaining: Option<u64>,
    pub direction: Option<Dir>,
    pub tx: Sender<TapEvent>,
    pub stats: Arc<TapStats>,
}

impl ActiveTap {
    pub fn new(id: u64, ports: Option<Vec<PortId>>, spec: TapSpec) -> (ActiveTap, TapHandle) {
        let (tx, rx) = crossbeam_channel::bounded(TAP_QUEUE);
        let stats = Arc::new(TapStats::default());
        (
            ActiveTap {
                id,
                ports,
                filter: spec.filter,
                mode: spec.mode,
                remaining: spec.count,
                direction: spec.direction,
                tx,
                stats: stats.clone(),
            },
            TapHandle {
                id,
                events: rx,
                stats,
            },
        )
    }

    fn wants(&self, port: PortId, port_name: &str, frame: &[u8]) -> bool {
        self.remaining != Some(0)
            && self.ports.as_ref().is_none_or(|p| p.contains(&port))
            && self.filter.matches(frame, port_name)
    }

    fn deliver(&mut self, ev: TapEvent) {
        match self.tx.try_send(ev) {
            Ok(()) => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                if let Some(r) = &mut self.remaining {
                    *r -= 1;
                    if *r == 0 {
                        self.stats.done.store(true, Ordering::Release);
                    }
                }
            }
            Err(TrySendError::Full(_)) => {
                self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            }
            // The reader left; the tap is removed at the next cleanup.
            Err(TrySendError::Disconnected(_)) => self.remaining = Some(0),
        }
    }

    /// Whether the tap has nothing more to do (count reached, reader gone).
    pub fn finished(&self) -> bool {
        self.remaining == Some(0) || self.tx.is_empty() && self.stats.done.load(Ordering::Acquire)
    }
}

/// Where and when a frame was seen.
pub struct Seen<'a> {
    pub port: PortId,
    pub port_name: &'a str,
    pub dir: Dir,
    pub id: u64,
    pub ts_ns: u64,
}

/// Offers a frame record to every capture tap that wants it.
pub fn capture(
    taps: &mut [ActiveTap],
    seen: &Seen<'_>,
    frame: &[u8],
    comment: &dyn Fn() -> String,
) {
    for t in taps.iter_mut() {
        let TapMode::Capture { snaplen } = t.mode else {
            continue;
        };
        if t.direction.is_some_and(|d| d != seen.dir) || !t.wants(seen.port, seen.port_name, frame)
        {
            continue;
        }
        let cut = if snaplen == 0 {
            frame.len()
        } else {
            frame.len().min(snaplen)
        };
        t.deliver(TapEvent::Frame(FrameRecord {
            ts_ns: seen.ts_ns,
            id: seen.id,
            port: seen.port_name.to_string(),
            dir: seen.dir,
            orig_len: frame.len() as u32,
            data: frame[..cut].to_vec(),
            comment: comment(),
        }));
    }
}

/// Whether any trace tap wants this ingress frame (so the explanation is
/// only built when someone reads it).
pub fn trace_wanted(taps: &[ActiveTap], port: PortId, port_name: &str, frame: &[u8]) -> bool {
    taps.iter()
        .any(|t| t.mode == TapMode::Trace && t.wants(port, port_name, frame))
}

/// Hands an explanation to every trace tap that wants the frame.
pub fn trace(taps: &mut [ActiveTap], seen: &Seen<'_>, frame: &[u8], report: &TraceReport) {
    for t in taps.iter_mut() {
        if t.mode == TapMode::Trace && t.wants(seen.port, seen.port_name, frame) {
            let mut r = report.clone();
            r.id = Some(seen.id);
            r.ts_ns = seen.ts_ns;
            t.deliver(TapEvent::Trace(r));
        }
    }
}
