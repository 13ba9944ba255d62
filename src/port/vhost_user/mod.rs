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
//! When QEMU goes away the port stays (peer down, sends count as
//! `egress_down`) and takes the next connection: a listening port waits for
//! QEMU to connect again, a `--client` port redials QEMU's socket.

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
use control::Shared;
use frontend::{Dial, Stopper};
use rings::Rings;

pub use frontend::OFFERED;

const WAKE: Token = Token(0);
const KICK: Token = Token(1);

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
    /// The transmit kick registered with `poll`.
    kick: Option<Arc<File>>,
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
        if kick.as_ref().map(|k| k.as_raw_fd()) != self.kick.as_ref().map(|k| k.as_raw_fd()) {
            if let Some(old) = self.kick.take() {
                let _ = self
                    .poll
                    .registry()
                    .deregister(&mut SourceFd(&old.as_raw_fd()));
            }
            if let Some(k) = &kick {
                let _ = self.poll.registry().register(
                    &mut SourceFd(&k.as_raw_fd()),
                    KICK,
                    Interest::READABLE,
                );
            }
            self.kick = kick;
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
                KICK => {
                    // Reported readable and read only here: never blocks.
                    if let Some(k) = &self.kick {
                        let mut b = [0u8; 8];
                        let _ = (&**k).read(&mut b);
                    }
                }
                _ => {}
            }
        }
    }
}

fn add_drops(a: FramingDrops, b: FramingDrops) -> FramingDrops {
    FramingDrops {
        bad_length: a.bad_length + b.bad_length,
        oversized: a.oversized + b.oversized,
        cut_short: a.cut_short + b.cut_short,
        foreign: a.foreign + b.foreign,
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
        let n = self.rings.as_mut().map_or(0, |r| r.receive(batch));
        batch.finish_read(n, super::realtime_ns());
        Ok(n)
    }

    fn offload_caps(&self) -> OffloadCaps {
        self.rings.as_ref().map_or(OffloadCaps::NONE, |r| r.caps())
    }

    fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> (usize, Option<SendError>) {
        self.sync();
        match self.rings.as_mut() {
            Some(r) => r.send(frames),
            None => (0, Some(SendError::LinkDown)),
        }
    }

    fn check(&mut self) -> Result<(), PortError> {
        Ok(())
    }

    fn rx_waiting(&self) -> Option<bool> {
        if self.shared.gen() != self.applied {
            return Some(true);
        }
        Some(self.rings.as_ref().is_some_and(|r| r.tx_pending()))
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
