//! Counters, latency histograms and the snapshots the control socket hands
//! out.
//!
//! The dataplane owns its counters and histograms as plain values (one
//! writer, no atomics on the hot path) and copies them into snapshots when
//! asked.

pub mod bpf;
mod counters;
pub mod explain;
pub mod filter;
pub mod latency;
pub mod pcapng;
pub mod records;

pub use counters::{DropCounters, PortCounters};
pub use latency::{LatencyHistogram, LatencySummary};
