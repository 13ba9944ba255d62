//! The forwarding thread and its handle.
//!
//! One thread owns the forwarding core, the ports and their counters. It waits
//! on all port fds with mio (edge-triggered epoll), reads a batch from each
//! ready port, asks `switch` for a decision per frame, and sends each egress
//! port its share of the batch in one call. Other threads talk to it only
//! through [`DataplaneHandle`], whose requests run on the dataplane thread
//! between batches and answer through a channel: nobody else touches its state.

mod components;
mod decide;
mod event_loop;
mod fastpath;
mod handle;
mod housekeeping;
mod impair;
mod meta;
mod monitor;
mod observe;
mod offload;
mod pipeline;
mod poll_mode;
mod protect;
mod rate_limit;
pub mod readers;
mod receive;
mod requests;
mod send;
mod shape;
mod snapshot;
mod state;
mod tunnel;

pub use components::flow_table::{FastpathStatus, FlowRow, Retired};
pub use components::monitors::MonitorHandle;
pub use handle::{Setting, Spawned};
pub use meta::{DataplaneEvent, PortMeta, ReturnedPorts};
pub use requests::{DataplaneError, DataplaneHandle};
pub use snapshot::{
    BlockedRow, FdbRow, FloodRow, LatencyRow, MirrorRow, PortRow, PortStats, ProtectTotals,
    RemovedPort, StatsSnapshot, SwitchTotals, VxlanRow,
};

pub use poll_mode::BusyPoll;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;
