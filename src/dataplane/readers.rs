//! Readers: copies of frames (capture) or plans of frames (live trace)
//! handed to a reader through a bounded channel. (They were called taps,
//! which also names the TAP devices ports are made of.) The dataplane never
//! waits for a reader: when the channel is full the record is skipped and
//! counted, and the reader learns how many it missed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::observe::bpf::BpfFilter;
use crate::observe::filter::Filter;
use crate::observe::records::{Dir, FrameRecord, ReaderEvent, TraceReport};
use crate::switch::PortId;

/// Records a reader may fall behind by before the dataplane skips.
pub const READER_QUEUE: usize = 8192;

/// What a reader delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderKind {
    /// Frame records cut to `snaplen` bytes (0 = whole frames).
    Capture { snaplen: usize },
    /// One decision explanation per ingress frame.
    Trace,
}

/// What to read.
#[derive(Debug)]
pub struct ReaderSpec {
    /// Port names to read from; empty = every port.
    pub ports: Vec<String>,
    pub filter: Filter,
    /// A compiled pcap-filter expression frames must also match.
    pub bpf: Option<BpfFilter>,
    pub mode: ReaderKind,
    /// Stop after this many records.
    pub count: Option<u64>,
}

/// Counters shared with the reader.
#[derive(Debug, Default)]
pub struct ReaderStats {
    pub delivered: AtomicU64,
    /// Records dropped because the reader was too slow.
    pub skipped: AtomicU64,
    /// The count was reached; no more records come.
    pub done: AtomicBool,
}

/// The reader's end.
pub struct ReaderHandle {
    pub id: u64,
    pub events: Receiver<ReaderEvent>,
    pub stats: Arc<ReaderStats>,
}

/// A reader as the dataplane holds it.
pub struct ActiveReader {
    pub id: u64,
    /// `None` = every port.
    pub ports: Option<Vec<PortId>>,
    pub filter: Filter,
    pub bpf: Option<BpfFilter>,
    pub mode: ReaderKind,
    pub remaining: Option<u64>,
    pub tx: Sender<ReaderEvent>,
    pub stats: Arc<ReaderStats>,
}

impl ActiveReader {
    pub fn new(
        id: u64,
        ports: Option<Vec<PortId>>,
        spec: ReaderSpec,
    ) -> (ActiveReader, ReaderHandle) {
        let (tx, rx) = crossbeam_channel::bounded(READER_QUEUE);
        let stats = Arc::new(ReaderStats::default());
        (
            ActiveReader {
                id,
                ports,
                filter: spec.filter,
                bpf: spec.bpf,
                mode: spec.mode,
                remaining: spec.count,
                tx,
                stats: stats.clone(),
            },
            ReaderHandle {
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
            && self.bpf.as_ref().is_none_or(|b| b.matches(frame))
    }

    fn deliver(&mut self, ev: ReaderEvent) {
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
            // The reader left; the reader is removed at the next cleanup.
            Err(TrySendError::Disconnected(_)) => self.remaining = Some(0),
        }
    }

    /// Whether the reader has nothing more to do (count reached, reader gone).
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

/// Offers a frame record to every capture reader that wants it.
pub fn capture(
    readers: &mut [ActiveReader],
    seen: &Seen<'_>,
    frame: &[u8],
    comment: &dyn Fn() -> String,
) {
    for t in readers.iter_mut() {
        let ReaderKind::Capture { snaplen } = t.mode else {
            continue;
        };
        if !t.wants(seen.port, seen.port_name, frame) {
            continue;
        }
        let cut = if snaplen == 0 {
            frame.len()
        } else {
            frame.len().min(snaplen)
        };
        t.deliver(ReaderEvent::Frame(FrameRecord {
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

/// Whether any trace reader wants this ingress frame (so the explanation is
/// only built when someone reads it).
pub fn trace_wanted(readers: &[ActiveReader], port: PortId, port_name: &str, frame: &[u8]) -> bool {
    readers
        .iter()
        .any(|t| t.mode == ReaderKind::Trace && t.wants(port, port_name, frame))
}

/// Hands an explanation to every trace reader that wants the frame.
pub fn trace(readers: &mut [ActiveReader], seen: &Seen<'_>, frame: &[u8], report: &TraceReport) {
    for t in readers.iter_mut() {
        if t.mode == ReaderKind::Trace && t.wants(seen.port, seen.port_name, frame) {
            let mut r = report.clone();
            r.id = Some(seen.id);
            r.ts_ns = seen.ts_ns;
            t.deliver(ReaderEvent::Trace(r));
        }
    }
}
