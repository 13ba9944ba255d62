//! One poll of a running switch: its counters, FDB and latency histograms,
//! fetched with the requests `stats`, `fdb show` and `latency` already use.

use std::collections::HashMap;
use std::time::Instant;

use crate::control::client::{Client, ClientError};
use crate::control::protocol::Request;
use crate::dataplane::{FdbRow, LatencyRow, StatsSnapshot};
use crate::observe::LatencyHistogram;

/// What one poll saw, and when (client-side: rates are counter deltas over
/// the time between two polls).
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    pub stats: StatsSnapshot,
    pub fdb: Vec<FdbRow>,
    /// Residence-time histogram of each egress port, by port name.
    pub latency: HashMap<String, LatencyHistogram>,
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the switch answered `{request}` with something this l2sw cannot read: {source}")]
    Unreadable {
        request: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl Sample {
    /// Asks the switch for one sample over `client`.
    pub fn fetch(client: &mut Client) -> Result<Sample, SampleError> {
        let stats = client.call(&Request::Stats { port: None })?;
        let at = Instant::now();
        let fdb = client.call(&Request::FdbShow { port: None })?;
        let latency = client.call(&Request::Latency {
            port: None,
            pair: None,
            reset: false,
        })?;
        let stats: StatsSnapshot =
            serde_json::from_value(stats).map_err(|source| SampleError::Unreadable {
                request: "stats",
                source,
            })?;
        let fdb: Vec<FdbRow> =
            serde_json::from_value(fdb).map_err(|source| SampleError::Unreadable {
                request: "fdb-show",
                source,
            })?;
        let rows: Vec<LatencyRow> =
            serde_json::from_value(latency).map_err(|source| SampleError::Unreadable {
                request: "latency",
                source,
            })?;
        let latency = rows
            .into_iter()
            .filter(|r| r.scope == "port")
            .map(|r| (r.egress, r.histogram))
            .collect();
        Ok(Sample {
            at,
            stats,
            fdb,
            latency,
        })
    }
}
