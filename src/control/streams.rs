//! Client side of the streaming requests: turning `capture` records into a
//! pcapng file, and printing `trace --live` explanations.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use super::client::{Client, ClientError};
use super::protocol::{Request, StreamEnd};
use crate::observe::pcapng::{Direction, PacketRecord, PcapngWriter};
use crate::observe::records::{Dir, ReaderEvent};

/// How a stream ended, for the closing message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSummary {
    pub delivered: u64,
    pub skipped: u64,
    /// The user interrupted before the switch ended the stream.
    pub interrupted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("the switch sent a record that is not valid: {0}")]
    BadRecord(String),
}

/// Reads the stream, calling `each` per event, until its end or `stop`.
fn pump<S>(
    client: &mut Client,
    req: &Request,
    stop: &AtomicBool,
    state: &mut S,
    on_start: impl FnOnce(&mut S, &Value) -> Result<(), StreamError>,
    mut each: impl FnMut(&mut S, ReaderEvent) -> Result<(), StreamError>,
) -> Result<StreamSummary, StreamError> {
    let first = client.start_stream(req)?;
    on_start(state, &first)?;
    let mut partial = String::new();
    let mut delivered = 0;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(StreamSummary {
                delivered,
                skipped: 0,
                interrupted: true,
            });
        }
        let Some(line) = client.next_line(&mut partial)? else {
            continue;
        };
        if let Ok(end) = serde_json::from_str::<StreamEnd>(&line) {
            return Ok(StreamSummary {
                delivered: end.delivered,
                skipped: end.skipped,
                interrupted: false,
            });
        }
        let ev: ReaderEvent =
            serde_json::from_str(&line).map_err(|e| StreamError::BadRecord(e.to_string()))?;
        delivered += 1;
        each(state, ev)?;
    }
}

/// Writes a capture as pcapng to `out`: an interface per port (those the
/// switch listed up front, then any that appear), each record with its
/// direction, packet id and decision comment. `flush_each` for live readers.
pub fn capture<W: Write>(
    client: &mut Client,
    req: &Request,
    out: W,
    snaplen: u32,
    flush_each: bool,
    stop: &AtomicBool,
) -> Result<StreamSummary, StreamError> {
    let w = PcapngWriter::new(out)?;
    let mut st = (w, HashMap::<String, u32>::new());
    let on_start = |(w, ifaces): &mut (PcapngWriter<W>, HashMap<String, u32>), first: &Value| {
        for p in first["ports"].as_array().into_iter().flatten() {
            if let Some(name) = p.as_str() {
                let id = w.add_interface(name, Some("l2sw port"), snaplen)?;
                ifaces.insert(name.to_string(), id);
            }
        }
        if flush_each {
            w.flush()?;
        }
        Ok(())
    };
    let summary = pump(client, req, stop, &mut st, on_start, |(w, ifaces), ev| {
        let ReaderEvent::Frame(r) = ev else {
            return Ok(());
        };
        let iface = match ifaces.get(&r.port) {
            Some(i) => *i,
            None => {
                let id = w.add_interface(&r.port, Some("l2sw port"), snaplen)?;
                ifaces.insert(r.port.clone(), id);
                id
            }
        };
        w.write_packet(&PacketRecord {
            iface,
            ts_ns: r.ts_ns,
            data: &r.data,
            orig_len: r.orig_len,
            direction: match r.dir {
                Dir::In => Direction::Inbound,
                Dir::Out => Direction::Outbound,
            },
            packet_id: r.id,
            comment: Some(&r.comment),
            drop_count: None,
        })?;
        if flush_each {
            w.flush()?;
        }
        Ok(())
    })?;
    let (mut w, ifaces) = st;
    if ifaces.is_empty() {
        // Nothing arrived: still a valid file with the interfaces.
        w.add_interface("l2sw", Some("no frames captured"), snaplen)?;
    }
    if summary.skipped > 0 {
        w.write_stats(
            0,
            wall_clock_ns(),
            summary.skipped,
            Some("frames the switch skipped because the capture reader was too slow"),
        )?;
    }
    w.flush()?;
    Ok(summary)
}

/// Nanoseconds since the Unix epoch, for the end-of-capture statistics
/// block (record times come from the switch, this one is the client's).
fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Prints live traces: a text block per frame, or one JSON object per line.
pub fn trace_live<W: Write>(
    client: &mut Client,
    req: &Request,
    mut out: W,
    json: bool,
    stop: &AtomicBool,
) -> Result<StreamSummary, StreamError> {
    pump(
        client,
        req,
        stop,
        &mut out,
        |_, _| Ok(()),
        |out, ev| {
            if let ReaderEvent::Trace(t) = ev {
                if json {
                    serde_json::to_writer(&mut *out, &t).map_err(std::io::Error::from)?;
                    writeln!(out)?;
                } else {
                    writeln!(out, "{}", t.render())?;
                }
                out.flush()?;
            }
            Ok(())
        },
    )
}
