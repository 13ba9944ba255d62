//! An open port as the dataplane thread holds it: the port, who it is, its
//! counters and latency, the frames of the current batch planned for it,
//! and its impairment slot.

use super::impair_queue::ImpairSlot;
use crate::dataplane::meta::PortMeta;
use crate::observe::{LatencyHistogram, PortCounters};
use crate::port::Port;
use crate::switch::{Cause, Shape};

/// A frame of the current receive batch to send on a port: one entry of
/// the frame's plan.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    /// Index into the batch.
    pub frame: u16,
    /// The bytes it leaves as (from the plan).
    pub shape: Shape,
    /// Switched or a mirror copy (from the plan; capture comments say which).
    pub cause: Cause,
    /// Which re-shaped copy of the frame carries `shape` (see `shape.rs`);
    /// `None`: the frame as received. Set once, before the sends.
    pub variant: Option<u8>,
    /// On a tunnel port: the VTEP to send it to (the core's decision).
    pub remote: Option<std::net::Ipv4Addr>,
}

/// An open port as the dataplane holds it.
pub struct PortEntry {
    pub meta: PortMeta,
    pub port: Box<dyn Port>,
    pub counters: PortCounters,
    /// Frames of the current receive batch to send on this port.
    pub pending: Vec<Pending>,
    /// Residence time of every frame sent on this port.
    pub latency: LatencyHistogram,
    /// Link impairment (`port impair`); `None` costs the hot path one check.
    pub impair: Option<Box<ImpairSlot>>,
}
