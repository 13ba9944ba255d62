//! `VhostUserPort`: a vhost-user-net backend for QEMU. The guest's virtio
//! rings live in memory QEMU shares with the switch (`memory-backend-memfd,
//! share=on`), so a frame crosses no kernel between the guest and the
//! dataplane.
//!
//! Two threads share the port:
//! - the protocol thread ([`frontend`]) answers QEMU's vhost-user messages
//!   (features, memory table, ring addresses, kick/call eventfds) and
//!   publishes ring setups ([`control`]);
//! - the dataplane thread owns the rings ([`rings`]) and walks them in
//!   `recv_batch`/`send_batch` without a lock: one atomic load per call
//!   says whether a new setup waits.
//!
//! The port's fd is a small epoll instance holding the guest's transmit
//! kick eventfd and the protocol thread's wake eventfd, so "the guest sent"
//! and "the setup changed" both wake the port. Toward the guest the port
//! writes QEMU's call eventfd when the guest asked for an interrupt.
//!
//! A frame that finds the guest's receive ring full waits in the port's
//! bounded [`backlog`] (in order, behind any already waiting); the port then
//! asks the guest to kick the receive queue's eventfd, which is in the same
//! epoll instance, when it posts buffers, and the next `recv_batch` or
//! `send_batch` fills them from the backlog first. Only a frame beyond the
//! backlog's bound is refused (`egress_full`).
//!
//! When QEMU goes away the port stays (peer down, sends count as
//! `egress_down`) and takes the next connection: a listening port waits for
//! QEMU to connect again, a `--client` port redials QEMU's socket.

mod backlog;
mod control;
mod frontend;
mod rings;

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::unix_path::{prepare_bind, SocketAccess, SocketType};
use super::{
    FramingDrops, OffloadCaps, PeerInfo, Port, PortError, PortInfo, PortKind, RxBatch, SendError,
    TxFrame,
};
use backlog::Backlog;
use control::Shared;
use frontend::{Dial, Stopper};
use rings::Rings;

pub use frontend::OFFERED;

const WAKE: Token = Token(0);
const KICK: Token = Token(1);
const RX_KICK: Token = Token(2);

/// Who opens the vhost-user connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The switch listens on the socket; QEMU connects (the default).
    Server,
    /// QEMU listens (`-chardev socket,...,server=on`); the switch connects
    /// and reconnects.
    Client,
}

pub struct VhostUserPort {
    name: String,
    path: PathBuf,
    role: Role,
    mtu: u32,
    shared: Arc<Shared>,
    /// Generation of the setup `rings` runs.
    applied: u64,
    rings: Option<Rings>,
    poll: Poll,
    events: Events,
    /// The transmit and receive kicks registered with `poll`.
    kick: Option<Arc<File>>,
    rx_kick: Option<Arc<File>>,
    /// Frames toward the guest waiting for receive buffers.
    backlog: Backlog,
    stopper: Arc<Stopper>,
    thread: Option<JoinHandle<()>>,
    drops: FramingDrops,
}

impl VhostUserPort {
    /// Opens the port: listens on `path` (`Role::Server`, replacing a stale
    /// socket, with `access`) or starts dialing it (`Role::Client`).
    pub fn open(
        name: &str,
        path: &Path,
        role: Role,
        access: &SocketAccess,
        mtu: u32,
    ) -> Result<VhostUserPort, PortError> {
        let setup = |step, e| PortError::setup(step, name, e);
        let dial = match role {
            Role::Server => {
                prepare_bind(path, SocketType::Stream)
                    .map_err(|e| setup("prepare the socket path", e))?;
                let l = UnixListener::bind(path).map_err(|e| setup("bind the socket", e))?;
                access
                    .apply(path)
                    .map_err(|e| setup("set the socket's owner and mode", e))?;
                Dial::Listen(l)
            }
            Role::Client => Dial::Connect(path.to_path_buf()),
        };
        let shared = Arc::new(Shared::new().map_err(|e| setup("create the wake eventfd", e))?);
        let poll = Poll::new().map_err(|e| setup("create the port's poller", e))?;
        poll.registry()
            .register(
                &mut SourceFd(&shared.wake.as_raw_fd()),
                WAKE,
                Interest::READABLE,
            )
            .map_err(|e| setup("poll the wake eventfd", e))?;
        let stopper = Arc::new(Stopper {
            stop: Default::default(),
            conn: Mutex::new(None),
        });
        let thread = {
            let (n, s, st) = (name.to_string(), shared.clone(), stopper.clone());
            std::thread::Builder::new()
                .name(format!("l2sw-vu-{name}"))
                .spawn(move || frontend::run(n, dial, s, st))
                .map_err(|e| setup("start the vhost-user thread", e))?
        };
        Ok(VhostUserPort {
            name: name.to_string(),
            path: path.to_path_buf(),
            role,
            mtu,
            shared,
            applied: 0,
            rings: None,
            poll,
            events: Events::with_capacity(4),
            kick: None,
            rx_kick: None,
            backlog: Backlog::default(),
            stopper,
            thread: Some(thread),
            drops: FramingDrops::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the setup the protocol thread published, if it changed.
    fn sync(&mut self) {
        if self.shared.gen() == self.applied {
            return;
        }
        let shared = self.shared.clone();
        let mut st = shared.lock();
        if let Some(r) = &self.rings {
            let at = r.positions();
            for (q, p) in at.into_iter().enumerate() {
                if p.is_some() {
                    st.stopped_at[q] = p;
                }
            }
            self.drops = add_drops(self.drops, r.drops);
        }
        let old = self.rings.take();
        self.rings = st.want.clone().map(|s| {
            let (r, errors) = Rings::start(&s, old);
            for e in errors {
                eprintln!("l2sw: vhost-user port {}: cannot start {e}", self.name);
            }
            r
        });
        let kick = self.rings.as_ref().and_then(|r| r.tx_kick().cloned());
        reregister(&self.poll, &mut self.kick, kick, KICK);
        let rx_kick = self.rings.as_ref().and_then(|r| r.rx_kick().cloned());
        reregister(&self.poll, &mut self.rx_kick, rx_kick, RX_KICK);
        if self.rings.as_ref().is_none_or(|r| r.rx_kick().is_none()) {
            // Nowhere to deliver what waits: the guest's device is gone.
            let lost = self.backlog.clear() as u64;
            self.drops.held_lost_down += lost;
        } else if !self.backlog.is_empty() {
            // New rings: ask again to hear of their buffers.
            self.flush();
        }
        let gen = st.gen;
        self.applied = gen;
        shared.applied(&mut st, gen);
    }

    /// Empties the poller and the eventfds it reported.
    fn drain(&mut self) {
        if self
            .poll
            .poll(&mut self.events, Some(Duration::ZERO))
            .is_err()
        {
            return;
        }
        for ev in self.events.iter() {
            match ev.token() {
                WAKE => {
                    let _ = self.shared.wake.read();
                }
                KICK | RX_KICK => {
                    // Reported readable and read only here: never blocks.
                    let k = if ev.token() == KICK {
                        &self.kick
                    } else {
                        &self.rx_kick
                    };
                    if let Some(k) = k {
                        let mut b = [0u8; 8];
                        let _ = (&**k).read(&mut b);
                    }
                }
                _ => {}
            }
        }
    }

    /// Moves waiting frames into the guest's receive buffers, oldest first,
    /// while it has buffers. Leaves the receive kick armed when frames still
    /// wait, disarmed when none do.
    fn flush(&mut self) {
        let Some(r) = self.rings.as_mut() else {
            return;
        };
        // Bounded: each round either empties the backlog, fills the ring or
        // finds the guest posted buffers while we armed the kick.
        for _ in 0..8 {
            while !self.backlog.is_empty() {
                let (sent, err) = {
                    let frames = self.backlog.front();
                    let (sent, err) = r.send(&frames);
                    (sent, err.map(|e| (e, sent < frames.len())))
                };
                self.backlog.pop(sent, false);
                match err {
                    None => {}
                    Some((SendError::TooBig, true)) => {
                        self.backlog.pop(1, true);
                        self.drops.held_too_big += 1;
                    }
                    Some((SendError::LinkDown, _)) => {
                        let lost = self.backlog.clear() as u64;
                        self.drops.held_lost_down += lost;
                        return;
                    }
                    Some(_) => break,
                }
            }
            if self.backlog.is_empty() {
                r.watch_rx(false);
                return;
            }
            if !r.watch_rx(true) {
                return;
            }
        }
    }
}

/// Points `slot`'s registration with `poll` at `new` when it changed.
fn reregister(poll: &Poll, slot: &mut Option<Arc<File>>, new: Option<Arc<File>>, token: Token) {
    if new.as_ref().map(|k| k.as_raw_fd()) == slot.as_ref().map(|k| k.as_raw_fd()) {
        return;
    }
    if let Some(old) = slot.take() {
        let _ = poll.registry().deregister(&mut SourceFd(&old.as_raw_fd()));
    }
    if let Some(k) = &new {
        let _ = poll
            .registry()
            .register(&mut SourceFd(&k.as_raw_fd()), token, Interest::READABLE);
    }
    *slot = new;
}

fn add_drops(a: FramingDrops, b: FramingDrops) -> FramingDrops {
    FramingDrops {
        bad_length: a.bad_length + b.bad_length,
        oversized: a.oversized + b.oversized,
        cut_short: a.cut_short + b.cut_short,
        foreign: a.foreign + b.foreign,
        held_lost_down: a.held_lost_down + b.held_lost_down,
        held_too_big: a.held_too_big + b.held_too_big,
    }
}

impl Port for VhostUserPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> PortInfo {
        let st = self.shared.lock();
        let mut negotiated = st.negotiated.clone();
        if self.role == Role::Client {
            negotiated.push("client".into());
        }
        PortInfo {
            kind: PortKind::VhostUser,
            ifname: self.name.clone(),
            ifindex: None,
            mtu: self.mtu,
            mac: None,
            capabilities: Vec::new(),
            peer: Some(PeerInfo {
                connected: st.connected && self.rings.is_some(),
                endpoint: self.path.display().to_string(),
                connects: st.connects,
                negotiated,
                held: Some(self.backlog.stats),
            }),
        }
    }

    fn raw_fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }

    fn mtu(&self) -> u32 {
        self.mtu
    }

    fn recv_batch(&mut self, batch: &mut RxBatch) -> Result<usize, PortError> {
        self.drain();
        self.sync();
        if !self.backlog.is_empty() {
            self.flush();
        }
        let n = self.rings.as_mut().map_or(0, |r| r.receive(batch));
        batch.finish_read(n, super::realtime_ns());
        Ok(n)
    }

    fn offload_caps(&self) -> OffloadCaps {
        self.rings.as_ref().map_or(OffloadCaps::NONE, |r| r.caps())
    }

    fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> (usize, Option<SendError>) {
        self.sync();
        if !self.backlog.is_empty() {
            self.flush();
        }
        let Some(r) = self.rings.as_mut() else {
            return (0, Some(SendError::LinkDown));
        };
        // Behind frames already waiting, a frame waits too: order is kept.
        let (mut sent, err) = if self.backlog.is_empty() {
            r.send(frames)
        } else {
            (0, Some(SendError::WouldBlock))
        };
        if !matches!(err, Some(SendError::WouldBlock)) {
            return (sent, err);
        }
        let before = self.backlog.len();
        while sent < frames.len() && self.backlog.push(&frames[sent]) {
            sent += 1;
        }
        if self.backlog.len() > before {
            // The guest may have posted buffers between `send` and now.
            self.flush();
        }
        if sent < frames.len() {
            return (sent, Some(SendError::WouldBlock));
        }
        (sent, None)
    }

    fn check(&mut self) -> Result<(), PortError> {
        Ok(())
    }

    fn rx_waiting(&self) -> Option<bool> {
        if self.shared.gen() != self.applied {
            return Some(true);
        }
        Some(
            self.rings
                .as_ref()
                .is_some_and(|r| r.tx_pending() || (!self.backlog.is_empty() && r.rx_room())),
        )
    }

    fn take_framing_drops(&mut self) -> FramingDrops {
        let from_rings = self
            .rings
            .as_mut()
            .map(|r| std::mem::take(&mut r.drops))
            .unwrap_or_default();
        add_drops(std::mem::take(&mut self.drops), from_rings)
    }
}

impl Drop for VhostUserPort {
    fn drop(&mut self) {
        self.stopper.stop.store(true, Ordering::Release);
        if let Some(c) = self
            .stopper
            .conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if self.role == Role::Server {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
