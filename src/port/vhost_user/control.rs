//! The hand-over between a vhost-user port's protocol thread and the
//! dataplane thread that walks the rings.
//!
//! The protocol thread publishes what the rings should be (`Setup`, or none
//! while QEMU is away or the device is stopped) under a mutex and bumps a
//! generation counter; the dataplane compares the counter with the one it
//! applied (one atomic load per batch, the only cost on the hot path) and
//! takes the mutex only when they differ. Stopping a ring is a handshake:
//! QEMU's `GET_VRING_BASE` must answer where the switch stopped, so the
//! protocol thread waits until the dataplane has applied the generation and
//! written back each ring's next available index.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Index of the receive queue (switch to guest) and the transmit queue.
pub const RXQ: usize = 0;
pub const TXQ: usize = 1;

/// How long the protocol thread waits for the dataplane to stop or start
/// the rings. The dataplane answers within a batch; the bound only matters
/// when the port is not (or no longer) in a running dataplane.
const APPLY_WAIT: Duration = Duration::from_secs(2);

/// One ring as QEMU described it, addresses already in guest-physical terms.
#[derive(Debug, Clone)]
pub struct RingSetup {
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    /// Where to start reading the available ring.
    pub base: u16,
    /// Changes whenever QEMU (re)starts the ring: a ring whose epoch is the
    /// one already running keeps its position instead of restarting at `base`.
    pub epoch: u64,
    pub kick: Arc<File>,
    pub call: Option<Arc<File>>,
}

/// What the dataplane should run.
pub struct Setup {
    pub mem: Arc<GuestMemoryMmap>,
    /// Negotiated virtio feature bits.
    pub features: u64,
    pub rings: [Option<RingSetup>; 2],
}

/// What both threads read and write, under `Shared::state`.
#[derive(Default)]
pub struct State {
    /// Generation of `want`.
    pub gen: u64,
    pub want: Option<Arc<Setup>>,
    /// Generation the dataplane last applied.
    pub applied: u64,
    /// Each ring's next available index when the dataplane last stopped or
    /// changed it.
    pub stopped_at: [Option<u16>; 2],
    /// A frontend is connected.
    pub connected: bool,
    pub connects: u64,
    /// Names of the negotiated features, for `port list`.
    pub negotiated: Vec<String>,
}

pub struct Shared {
    state: Mutex<State>,
    applied: Condvar,
    /// `state.gen`, readable without the lock.
    gen: AtomicU64,
    /// Written by the protocol thread after publishing, so the dataplane's
    /// poller wakes the port.
    pub wake: EventFd,
}

impl Shared {
    pub fn new() -> std::io::Result<Shared> {
        Ok(Shared {
            state: Mutex::new(State::default()),
            applied: Condvar::new(),
            gen: AtomicU64::new(0),
            wake: EventFd::new(EFD_NONBLOCK)?,
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The generation published last (dataplane side, lock-free).
    pub fn gen(&self) -> u64 {
        self.gen.load(Ordering::Acquire)
    }

    /// Publishes `want` and waits until the dataplane applied it. Returns
    /// whether it did in time.
    pub fn publish(&self, want: Option<Arc<Setup>>) -> bool {
        let mut st = self.lock();
        st.gen += 1;
        st.want = want;
        let gen = st.gen;
        self.gen.store(gen, Ordering::Release);
        let _ = self.wake.write(1);
        let (st, timeout) = self
            .applied
            .wait_timeout_while(st, APPLY_WAIT, |s| s.applied < gen)
            .unwrap_or_else(|p| p.into_inner());
        drop(st);
        !timeout.timed_out()
    }

    /// Dataplane side: records that generation `gen` runs now.
    pub fn applied(&self, st: &mut State, gen: u64) {
        st.applied = gen;
        self.applied.notify_all();
    }
}
