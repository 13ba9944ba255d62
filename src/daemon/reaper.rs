//! The reaper: work an unplug owes that the request need not wait for.
//!
//! - Closing a removed port (unmapping its receive ring) and its fast-path
//!   attachment: tens of milliseconds of kernel work, none of it visible.
//! - The host end of a veth whose peer lived in a namespace the switch
//!   created and has just deleted: the kernel destroys both ends when it
//!   tears that namespace down (asynchronously, batched with other
//!   namespaces), so a separate RTM_DELLINK (~20-30 ms each, most of an
//!   unplug) is redundant. The link stays in the journal until it is gone,
//!   so a switch killed meanwhile leaves it to recovery and `l2sw cleanup`;
//!   should it outlive [`VANISH_WAIT`] (something still holds the
//!   namespace), the reaper deletes it itself.
//!
//! - The host end of a container's veth, at CNI DEL's request, once its
//!   port is closed: the plugin answers its runtime without waiting.
//!
//! Shutdown closes the channel and joins the thread, which first finishes
//! what it holds.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::resources::Owned;
use super::Inner;
use crate::dataplane::Retired;
use crate::netns;
use crate::port::Port;

/// How long a host veth end may take to go with its namespace.
pub const VANISH_WAIT: Duration = Duration::from_secs(2);
/// How often waiting links are looked up.
const TICK: Duration = Duration::from_millis(20);

/// One piece of deferred work.
pub enum Reap {
    /// A removed port and its attachment, to be closed.
    Close(Box<dyn Port>, Retired),
    /// A link (already moved to the resources' reaping list) expected to
    /// vanish with its namespace.
    Link(String),
    /// A container's veth host end that CNI DEL handed over (the switch did
    /// not create it, so it was never in the journal): deleted now; one
    /// already gone is fine.
    Delete(String),
}

/// Runs until the channel closes and nothing is left.
pub fn run(inner: &Inner, jobs: Receiver<Reap>) {
    let mut waiting: Vec<(String, Instant)> = Vec::new();
    let mut open = true;
    while open || !waiting.is_empty() {
        let job = if waiting.is_empty() {
            jobs.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else if open {
            jobs.recv_timeout(TICK)
        } else {
            std::thread::sleep(TICK);
            Err(RecvTimeoutError::Timeout)
        };
        match job {
            Ok(Reap::Close(port, retired)) => drop((port, retired)),
            Ok(Reap::Link(ifname)) => waiting.push((ifname, Instant::now() + VANISH_WAIT)),
            Ok(Reap::Delete(ifname)) => {
                if let Err(e) = netns::delete_link(None, &ifname) {
                    if netns::link_exists(None, &ifname) {
                        eprintln!("l2sw: cannot delete container link {ifname}: {e}");
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => open = false,
            Err(RecvTimeoutError::Timeout) => {}
        }
        // Drain what is queued before looking links up.
        if !jobs.is_empty() {
            continue;
        }
        let now = Instant::now();
        waiting.retain(|(ifname, deadline)| {
            let gone = !netns::link_exists(None, ifname);
            if !gone && now < *deadline {
                return true;
            }
            let o = Owned::link(ifname);
            // Outlived its namespace: delete it (release skips a missing one).
            let err = if gone { None } else { o.release() };
            let mut res = inner.res.lock().unwrap_or_else(|p| p.into_inner());
            res.reaped(&o, err);
            false
        });
    }
}
