//! A few AF_PACKET sockets made ahead of time for the next ports.
//!
//! Setting up a socket's receive ring makes the kernel wait for an RCU grace
//! period (10-25 ms, longer on a loaded machine): most of what a `ns plug`
//! or a CNI attach cost. The pool keeps [`TARGET`] such sockets ready
//! ([`Prepared`], unbound, receiving nothing); taking one starts a
//! replacement on a short-lived thread. Replacements made at the same time
//! wait for the same grace period, so a burst of plugs refills in one.
//! When the pool is empty the caller makes its own socket, as before.

use std::sync::{Arc, Mutex};

use crate::port::afpacket::Prepared;

/// Sockets kept ready: each holds a 1 MiB receive ring.
const TARGET: usize = 4;

#[derive(Default)]
struct State {
    ready: Vec<Prepared>,
    /// Replacements being made.
    making: usize,
    /// Set at shutdown: replacements made after it are dropped.
    stopped: bool,
}

/// Shared by the control threads.
#[derive(Clone, Default)]
pub struct SocketPool {
    state: Arc<Mutex<State>>,
}

impl SocketPool {
    /// A pool that starts filling at once.
    pub fn start() -> SocketPool {
        let pool = SocketPool::default();
        pool.refill();
        pool
    }

    /// A ready socket if there is one; a replacement is started either way.
    pub fn take(&self) -> Option<Prepared> {
        let got = self.lock().ready.pop();
        self.refill();
        got
    }

    /// Drops the ready sockets; the pool makes no more.
    pub fn stop(&self) {
        let mut s = self.lock();
        s.stopped = true;
        s.ready.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refill(&self) {
        let mut s = self.lock();
        while !s.stopped && s.ready.len() + s.making < TARGET {
            let pool = self.clone();
            let spawned = std::thread::Builder::new()
                .name("l2sw-socket".into())
                .spawn(move || {
                    // A failure here is met again, with its context, by the
                    // caller that finds the pool empty and opens its own.
                    let made = Prepared::new().ok();
                    let mut s = pool.lock();
                    s.making -= 1;
                    if let Some(p) = made.filter(|_| !s.stopped) {
                        s.ready.push(p);
                    }
                });
            if spawned.is_err() {
                break;
            }
            s.making += 1;
        }
    }
}
