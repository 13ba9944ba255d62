//! Counters and the snapshots the control socket hands out.
//!
//! The dataplane owns its counters as plain integers (one writer, no atomics
//! on the hot path) and copies them into snapshots when asked.

mod counters;
pub mod filter;
pub mod pcapng;
pub mod records;

pub use counters::{DropCounters, PortCounters};
