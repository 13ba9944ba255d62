//! The request channel to the dataplane thread: [`DataplaneHandle`] and
//! its one primitive, `call` (a closure run on the thread between batches,
//! its result sent back), the errors requests answer with, and adding a
//! port, which ordinary and tunnel ports share. The requests themselves are
//! methods in `handle.rs` (most) and `tunnel.rs` (tunnel ports), both above
//! this file.

use std::sync::Arc;

use crossbeam_channel::Sender;
use mio::Waker;

use super::components::port_entry::PortEntry;
use super::meta::PortMeta;
use super::state::{Job, State};
use crate::observe::events::SwitchEvent;
use crate::observe::{LatencyHistogram, PortCounters};
use crate::port::{Port, BATCH_SIZE};
use crate::switch::{FdbError, PortId, SwitchError};

#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error("no port named {0}")]
    NoSuchPort(String),
    #[error("port {0} is not a VXLAN port (--dst and flood lists apply to VXLAN ports only)")]
    NotTunnel(String),
    #[error("a port named {0} already exists")]
    DuplicatePort(String),
    #[error(transparent)]
    Fdb(#[from] FdbError),
    #[error(transparent)]
    Switch(#[from] SwitchError),
    #[error("cannot watch port {name}: {source}")]
    Register {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Impair(#[from] crate::impair::SpecError),
    #[error("the dataplane has stopped")]
    Gone,
}

/// Cheap to clone; every call runs on the dataplane thread and waits for it.
#[derive(Clone)]
pub struct DataplaneHandle {
    jobs: Sender<Job>,
    waker: Arc<Waker>,
}

impl DataplaneHandle {
    /// The handle of a thread that runs `jobs` and is woken by `waker`.
    pub(super) fn new(jobs: Sender<Job>, waker: Arc<Waker>) -> DataplaneHandle {
        DataplaneHandle { jobs, waker }
    }

    /// Runs `f` on the dataplane thread and returns its result.
    pub(super) fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State) -> R + Send + 'static,
    ) -> Result<R, DataplaneError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let job: Job = Box::new(move |st| {
            let _ = tx.send(f(st));
        });
        self.jobs.send(job).map_err(|_| DataplaneError::Gone)?;
        self.waker.wake().map_err(|_| DataplaneError::Gone)?;
        rx.recv().map_err(|_| DataplaneError::Gone)
    }
}

/// Adds a port to the switch and the loop (on the dataplane thread).
pub(super) fn insert_port(
    st: &mut State,
    port: Box<dyn Port>,
    meta: PortMeta,
) -> Result<PortId, DataplaneError> {
    if st.find(&meta.name).is_some() {
        return Err(DataplaneError::DuplicatePort(meta.name));
    }
    let id = st.switch.add_port(meta.policy.clone())?;
    if let Err(source) = st.register(port.raw_fd(), id) {
        let _ = st.switch.remove_port(id);
        return Err(DataplaneError::Register {
            name: meta.name,
            source,
        });
    }
    let info = port.info();
    let name = meta.name.clone();
    st.monitors.emit(|| SwitchEvent::PortAdded {
        port: name,
        kind: info.kind.name().to_string(),
        ifname: info.ifname,
    });
    st.insert(
        id,
        PortEntry {
            meta,
            port,
            counters: PortCounters::default(),
            pending: Vec::with_capacity(BATCH_SIZE),
            latency: LatencyHistogram::new(),
            impair: None,
        },
    );
    Ok(id)
}
