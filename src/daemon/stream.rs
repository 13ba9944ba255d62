//! Streaming requests: `capture` and `trace --live`. A tap is opened in the
//! dataplane and its records are written to the client, one JSON object per
//! line, until the count is reached or the client goes away; the last line
//! says how many records were delivered and how many the switch had to skip.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;

use super::Inner;
use crate::control::protocol::{Request, Response, StreamEnd};
use crate::control::server::write_response;
use crate::dataplane::readers::{ReaderKind, ReaderSpec};
use crate::observe::bpf::{pcap_hint, BpfFilter};
use crate::observe::filter::Filter;

/// How often a quiet stream checks that its client is still there.
const POLL: Duration = Duration::from_millis(200);

/// Whether the peer closed its end (reads return EOF).
fn client_gone(out: &mut UnixStream) -> bool {
    if out.set_nonblocking(true).is_err() {
        return true;
    }
    let mut b = [0u8; 1];
    let gone = match out.read(&mut b) {
        Ok(0) => true,
        // Anything the client sends while streaming is ignored.
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    let _ = out.set_nonblocking(false);
    gone
}

fn spec(req: Request) -> Result<ReaderSpec, String> {
    let parse = |f: Option<String>| match f {
        Some(expr) if !expr.trim().is_empty() => Filter::parse(&expr).map_err(|e| {
            let mut msg = format!("bad filter at column {}: {}", e.pos + 1, e.msg);
            msg.push_str(&pcap_hint(&expr));
            msg
        }),
        _ => Ok(Filter::match_all()),
    };
    let bpf = |b: Option<String>| match b {
        Some(expr) if !expr.trim().is_empty() => BpfFilter::compile(&expr)
            .map(Some)
            .map_err(|e| e.to_string()),
        _ => Ok(None),
    };
    match req {
        Request::Capture {
            ports,
            filter,
            count,
            snaplen,
            bpf: b,
        } => Ok(ReaderSpec {
            ports,
            filter: parse(filter)?,
            bpf: bpf(b)?,
            mode: ReaderKind::Capture {
                snaplen: snaplen.unwrap_or(0) as usize,
            },
            count,
        }),
        Request::TraceLive {
            ports,
            filter,
            count,
            bpf: b,
        } => Ok(ReaderSpec {
            ports,
            filter: parse(filter)?,
            bpf: bpf(b)?,
            mode: ReaderKind::Trace,
            count,
        }),
        _ => Err("not a streaming request".into()),
    }
}

impl Inner {
    pub(super) fn serve_stream(&self, req: Request, out: &mut UnixStream) {
        let spec = match spec(req) {
            Ok(s) => s,
            Err(e) => {
                let _ = write_response(out, &Response::err(e));
                return;
            }
        };
        if spec.count == Some(0) {
            let _ = write_response(out, &Response::err("--count must be at least 1"));
            return;
        }
        let ports = if spec.ports.is_empty() {
            match self.dp.ports() {
                Ok(p) => p.into_iter().map(|r| r.name).collect(),
                Err(e) => {
                    let _ = write_response(out, &Response::err(e.to_string()));
                    return;
                }
            }
        } else {
            spec.ports.clone()
        };
        let tap = match self.dp.add_reader(spec) {
            Ok(t) => t,
            Err(e) => {
                let _ = write_response(out, &Response::err(e.to_string()));
                return;
            }
        };
        if write_response(
            out,
            &Response::ok(json!({ "streaming": true, "ports": ports })),
        )
        .is_err()
        {
            let _ = self.dp.remove_reader(tap.id);
            return;
        }
        let mut line = Vec::with_capacity(4096);
        let mut alive = true;
        loop {
            match tap.events.recv_timeout(POLL) {
                Ok(ev) => {
                    line.clear();
                    if serde_json::to_writer(&mut line, &ev).is_err() {
                        continue;
                    }
                    line.push(b'\n');
                    if out.write_all(&line).is_err() {
                        alive = false;
                        break;
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if tap.stats.done.load(Ordering::Acquire) {
                        break;
                    }
                    if client_gone(out) {
                        alive = false;
                        break;
                    }
                }
                // The dataplane stopped (switch shutting down) or dropped the tap.
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        }
        let _ = self.dp.remove_reader(tap.id);
        if alive {
            let end = StreamEnd {
                end: true,
                delivered: tap.stats.delivered.load(Ordering::Relaxed),
                skipped: tap.stats.skipped.load(Ordering::Relaxed),
            };
            if let Ok(mut l) = serde_json::to_vec(&end) {
                l.push(b'\n');
                let _ = out.write_all(&l);
            }
        }
    }
}
