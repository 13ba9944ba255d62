//! `VhostUserPort`: a vhost-user-net backend. QEMU shares the guest's memory
//! and virtio rings with the switch over a Unix socket, so a frame moves
//! between the guest and the switch by one copy and crosses no kernel.
//!
//! The rust-vmm crates speak the protocol (`vhost`, `vhost-user-backend`)
//! and walk the rings (`virtio-queue`, `vm-memory`). Who does what:
//!
//! - a *connection thread* per port accepts QEMU (or connects to it with
//!   `--client`), runs one `VhostUserDaemon` per connection (a fresh one
//!   each time, so nothing from a dead QEMU survives into the next) and
//!   publishes the connection's rings and memory to the port;
//! - the daemon's *protocol thread* handles vhost-user messages (memory
//!   table, ring addresses, kick/call fds) and its *worker thread* waits on
//!   the guest's kick eventfds; on a kick it only writes the port's wake
//!   eventfd, which is the fd the dataplane polls;
//! - the *dataplane thread* walks both rings itself: it pops the guest's TX
//!   chains into its receive batch and writes frames for the guest into RX
//!   chains, then signals the guest's call eventfd.
//!
//! No lock is taken per frame. The dataplane takes each ring's lock once per
//! batch; the other holders are the protocol thread (only while QEMU sets
//! a ring up or tears it down) and the worker (only to read a kick), so the
//! lock is uncontended in steady state. Guest memory is reached through
//! `GuestMemoryAtomic` (an arc-swap load, no lock). The connection handover
//! is a generation counter the dataplane reads per batch (an atomic load);
//! only when it changed does it take the mutex holding the new connection.
//!
//! The virtio-net header maps onto [`Offload`]: TSO/checksum frames from
//! the guest cross whole to ports that take them, and frames the guest
//! accepted offloads for (GUEST_CSUM/GUEST_TSO4/6) reach it whole.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use vhost::vhost_user::message::VhostUserProtocolFeatures;
use vhost::vhost_user::Listener;
use vhost_user_backend::{ShutdownHandle, VhostUserBackend, VhostUserDaemon, VringRwLock, VringT};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_net::{
    VIRTIO_NET_F_CSUM, VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6,
    VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_MRG_RXBUF,
};
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use virtio_queue::{QueueOwnedT, QueueT};
use vm_memory::{
    Address, Bytes, GuestAddress, GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap,
};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::unix_path::{prepare_bind, SocketAccess, SocketType};
use super::{
    FramingDrops, Offload, OffloadCaps, PeerInfo, Port, PortError, PortInfo, PortKind, RxBatch,
    RxStatus, SendError, TxFrame, RX_HEADROOM, VNET_HDR_LEN,
};

type Mem = GuestMemoryAtomic<GuestMemoryMmap>;
type Vring = VringRwLock<Mem>;

const RX_QUEUE: usize = 0;
const TX_QUEUE: usize = 1;
/// Ring size QEMU may ask for (its `rx_queue_size`/`tx_queue_size` go to 1024).
const MAX_QUEUE_SIZE: usize = 1024;
/// `struct virtio_net_hdr_v1`: the legacy header plus `num_buffers`.
const HDR_V1_LEN: usize = VNET_HDR_LEN + 2;
/// Chains one frame may take on the guest's receive ring (mergeable buffers).
const MAX_RX_CHAINS: usize = 64;
/// How long the client mode waits between attempts to reach QEMU.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

/// Features offered to the guest, by name (what `port list` shows).
const OFFERED: &[(u32, &str)] = &[
    (VIRTIO_F_VERSION_1, "VERSION_1"),
    (VIRTIO_NET_F_MRG_RXBUF, "MRG_RXBUF"),
    (VIRTIO_NET_F_CSUM, "CSUM"),
    (VIRTIO_NET_F_GUEST_CSUM, "GUEST_CSUM"),
    (VIRTIO_NET_F_HOST_TSO4, "HOST_TSO4"),
    (VIRTIO_NET_F_HOST_TSO6, "HOST_TSO6"),
    (VIRTIO_NET_F_GUEST_TSO4, "GUEST_TSO4"),
    (VIRTIO_NET_F_GUEST_TSO6, "GUEST_TSO6"),
    (VIRTIO_RING_F_EVENT_IDX, "EVENT_IDX"),
    (VIRTIO_RING_F_INDIRECT_DESC, "INDIRECT_DESC"),
];

fn offered_bits() -> u64 {
    // No VHOST_USER_F_PROTOCOL_FEATURES: QEMU 7.2's virtio-net sends
    // SET_VRING_ENABLE before SET_FEATURES when it is offered, which the
    // vhost crate rejects (the feature is not acked yet) by closing the
    // connection. Without it the rings start enabled, as the spec says.
    OFFERED.iter().fold(0u64, |b, (bit, _)| b | 1 << bit)
}

fn has(features: u64, bit: u32) -> bool {
    features & (1 << bit) != 0
}

/// Names of the offered features in `acked`.
pub fn feature_names(acked: u64) -> Vec<String> {
    OFFERED
        .iter()
        .filter(|(bit, _)| has(acked, *bit))
        .map(|(_, n)| n.to_string())
        .collect()
}

/// Which side opens the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The switch listens; QEMU connects (`-chardev socket,path=...,reconnect=1`).
    Server,
    /// QEMU listens (`-chardev socket,path=...,server=on,wait=off`); the
    /// switch connects and reconnects when QEMU comes back.
    Client,
}

/// One QEMU connection: its rings, its memory, what it agreed to.
struct Conn {
    mem: Mem,
    /// The daemon's rings, captured on the worker's first event.
    vrings: OnceLock<Vec<Vring>>,
    acked: AtomicU64,
}

/// What the connection thread and the dataplane share.
struct Shared {
    wake: EventFd,
    /// Bumped whenever `current` changes.
    generation: AtomicU64,
    current: Mutex<Option<Arc<Conn>>>,
    shutdown: Mutex<Option<ShutdownHandle>>,
    stop: AtomicBool,
    connects: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    fn publish(&self, conn: Option<Arc<Conn>>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = conn;
        self.generation.fetch_add(1, Ordering::Release);
        let _ = self.wake.write(1);
    }
}

/// The backend the rust-vmm daemon drives: it tells the dataplane about
/// kicks and keeps what was negotiated.
#[derive(Clone)]
struct NetBackend {
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl VhostUserBackend for NetBackend {
    type Bitmap = ();
    type Vring = Vring;

    fn num_queues(&self) -> usize {
        2
    }

    fn max_queue_size(&self) -> usize {
        MAX_QUEUE_SIZE
    }

    fn features(&self) -> u64 {
        offered_bits()
    }

    fn acked_features(&self, features: u64) {
        self.conn.acked.store(features, Ordering::Release);
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::REPLY_ACK | VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS
    }

    fn set_event_idx(&self, _enabled: bool) {
        // virtio-queue tracks it per queue (set by the handler).
    }

    fn update_memory(&self, _mem: Mem) -> io::Result<()> {
        // Same GuestMemoryAtomic as `conn.mem`: already up to date.
        Ok(())
    }

    fn queues_per_thread(&self) -> Vec<u64> {
        vec![0b11]
    }

    fn handle_event(
        &self,
        _device_event: u16,
        _evset: EventSet,
        vrings: &[Vring],
        _thread_id: usize,
    ) -> io::Result<()> {
        let _ = self.conn.vrings.set(vrings.to_vec());
        self.shared.wake.write(1)
    }
}

/// The dataplane's side of a vhost-user port.
pub struct VhostUserPort {
    name: String,
    path: PathBuf,
    role: Role,
    shared: Arc<Shared>,
    generation: u64,
    conn: Option<Arc<Conn>>,
    mtu: u32,
    drops: FramingDrops,
}

impl VhostUserPort {
    /// Opens the socket (server: binds and listens; client: starts trying
    /// to reach QEMU's) and starts the connection thread.
    pub fn open(
        name: &str,
        path: &Path,
        role: Role,
        access: &SocketAccess,
        mtu: u32,
    ) -> Result<VhostUserPort, PortError> {
        let setup = |step, e| PortError::setup(step, name, e);
        let wake = EventFd::new(EFD_NONBLOCK).map_err(|e| setup("create the wake eventfd", e))?;
        let shared = Arc::new(Shared {
            wake,
            generation: AtomicU64::new(0),
            current: Mutex::new(None),
            shutdown: Mutex::new(None),
            stop: AtomicBool::new(false),
            connects: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        let listener = match role {
            Role::Server => {
                prepare_bind(path, SocketType::Stream)
                    .map_err(|e| setup("prepare the socket path", e))?;
                let l = Listener::new(path, true)
                    .map_err(|e| setup("listen on the vhost-user socket", io::Error::other(e)))?;
                access
                    .apply(path)
                    .map_err(|e| setup("set the socket's owner and mode", e))?;
                Some(l)
            }
            Role::Client => None,
        };
        let th_shared = shared.clone();
        let th_name = name.to_string();
        let th_path = path.to_path_buf();
        thread::Builder::new()
            .name(format!("vhost-{name}"))
            .spawn(move || connection_thread(&th_name, &th_path, listener, &th_shared))
            .map_err(|e| setup("start the connection thread", e))?;
        Ok(VhostUserPort {
            name: name.to_string(),
            path: path.to_path_buf(),
            role,
            shared,
            generation: 0,
            conn: None,
            mtu,
            drops: FramingDrops::default(),
        })
    }

    /// Takes the connection the connection thread published, if it changed.
    fn refresh(&mut self) {
        let g = self.shared.generation.load(Ordering::Acquire);
        if g != self.generation {
            self.generation = g;
            self.conn = self
                .shared
                .current
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
        }
    }

    fn acked(&self) -> u64 {
        self.conn
            .as_ref()
            .map(|c| c.acked.load(Ordering::Acquire))
            .unwrap_or(0)
    }

    pub fn connected(&self) -> bool {
        self.shared
            .current
            .lock()
            .map(|c| c.is_some())
            .unwrap_or(false)
    }
}

/// Accepts (or reaches) QEMU, one fresh daemon per connection, until the
/// port is removed.
fn connection_thread(
    name: &str,
    path: &Path,
    mut listener: Option<Listener>,
    shared: &Arc<Shared>,
) {
    while !shared.stop.load(Ordering::Acquire) {
        let mem: Mem = GuestMemoryAtomic::new(GuestMemoryMmap::new());
        let conn = Arc::new(Conn {
            mem: mem.clone(),
            vrings: OnceLock::new(),
            acked: AtomicU64::new(0),
        });
        let backend = NetBackend {
            conn: conn.clone(),
            shared: shared.clone(),
        };
        let mut daemon = match VhostUserDaemon::new(format!("vhost-{name}-proto"), backend, mem) {
            Ok(d) => d,
            Err(e) => {
                record(shared, format!("cannot start the vhost-user daemon: {e}"));
                thread::sleep(RECONNECT_EVERY);
                continue;
            }
        };
        let started = match listener.as_mut() {
            Some(l) => daemon.start(l),
            None => daemon.start_client(&path.to_string_lossy()),
        };
        if shared.stop.load(Ordering::Acquire) {
            break;
        }
        if let Err(e) = started {
            if listener.is_some() {
                record(shared, format!("accepting QEMU failed: {e}"));
            }
            thread::sleep(RECONNECT_EVERY);
            continue;
        }
        *shared.shutdown.lock().unwrap_or_else(|p| p.into_inner()) = daemon.shutdown_handle();
        shared.connects.fetch_add(1, Ordering::Relaxed);
        shared.publish(Some(conn));
        eprintln!("l2sw: vhost-user port {name}: QEMU connected");
        let res = daemon.wait();
        shared.publish(None);
        *shared.shutdown.lock().unwrap_or_else(|p| p.into_inner()) = None;
        match res {
            Ok(()) => eprintln!("l2sw: vhost-user port {name}: QEMU disconnected"),
            Err(e) => {
                eprintln!("l2sw: vhost-user port {name}: QEMU disconnected: {e}");
                record(shared, format!("connection ended: {e}"));
            }
        }
        // Dropping the daemon stops its worker thread; the next QEMU gets a
        // daemon with fresh rings.
        drop(daemon);
    }
}

fn record(shared: &Shared, msg: String) {
    *shared.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(msg);
}

/// Copies one TX chain (header + frame) out of guest memory into `buf`;
/// returns the header and the frame length (`Err` for a broken chain,
/// `Ok((_, len, true))` when the frame did not fit).
fn read_chain(
    mem: &GuestMemoryMmap,
    chain: virtio_queue::DescriptorChain<&GuestMemoryMmap>,
    hdr_len: usize,
    buf: &mut [u8],
) -> Result<([u8; HDR_V1_LEN], usize, bool), ()> {
    let mut hdr = [0u8; HDR_V1_LEN];
    let mut seen = 0usize;
    let mut flen = 0usize;
    let mut cut = false;
    for d in chain {
        if d.is_write_only() {
            return Err(());
        }
        let mut addr = d.addr();
        let mut len = d.len() as usize;
        if seen < hdr_len {
            let k = (hdr_len - seen).min(len);
            mem.read_slice(&mut hdr[seen..seen + k], addr)
                .map_err(|_| ())?;
            seen += k;
            len -= k;
            addr = addr.checked_add(k as u64).ok_or(())?;
        }
        if len > 0 {
            let room = buf.len() - flen;
            let k = len.min(room);
            if k < len {
                cut = true;
            }
            mem.read_slice(&mut buf[flen..flen + k], addr)
                .map_err(|_| ())?;
            flen += k;
        }
    }
    if seen < hdr_len {
        return Err(());
    }
    Ok((hdr, flen, cut))
}

/// A writable chain being filled.
struct RxChain {
    head: u16,
    segs: smallvec::SmallVec<[(GuestAddress, usize); 4]>,
    cap: usize,
}

impl Port for VhostUserPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> PortInfo {
        let shared = &self.shared;
        let current = shared
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let negotiated = current
            .as_ref()
            .map(|c| feature_names(c.acked.load(Ordering::Acquire)))
            .unwrap_or_default();
        let role = match self.role {
            Role::Server => "server",
            Role::Client => "client",
        };
        let mut endpoint = format!("{} ({role})", self.path.display());
        if current.is_none() {
            if let Some(e) = shared
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
            {
                endpoint.push_str(&format!("; last: {e}"));
            }
        }
        PortInfo {
            kind: PortKind::VhostUser,
            ifname: self.name.clone(),
            ifindex: None,
            mtu: self.mtu,
            mac: None,
            capabilities: vec!["vnet-hdr", "shared-memory"],
            peer: Some(PeerInfo {
                connected: current.is_some(),
                endpoint,
                connects: shared.connects.load(Ordering::Relaxed),
                negotiated,
            }),
        }
    }

    fn raw_fd(&self) -> RawFd {
        self.shared.wake.as_raw_fd()
    }

    fn mtu(&self) -> u32 {
        self.mtu
    }

    fn recv_batch(&mut self, batch: &mut RxBatch) -> Result<usize, PortError> {
        // Reset the wake counter first: a kick after this wakes us again.
        let _ = self.shared.wake.read();
        self.refresh();
        let mut n = 0;
        let acked = self.acked();
        let hdr_len = if has(acked, VIRTIO_F_VERSION_1) || has(acked, VIRTIO_NET_F_MRG_RXBUF) {
            HDR_V1_LEN
        } else {
            VNET_HDR_LEN
        };
        let Some(conn) = self.conn.clone() else {
            batch.finish_read(0, 0);
            return Ok(0);
        };
        let Some(vrings) = conn.vrings.get() else {
            batch.finish_read(0, 0);
            return Ok(0);
        };
        let guard = conn.mem.memory();
        let mem: &GuestMemoryMmap = &guard;
        let mut vr = vrings[TX_QUEUE].get_mut();
        if !vr.get_queue().ready() || !vr.is_enabled() {
            batch.finish_read(0, 0);
            return Ok(0);
        }
        let mut used = 0;
        let mut bad = 0;
        let q = vr.get_queue_mut();
        let _ = q.disable_notification(mem);
        'outer: loop {
            while n < batch.capacity() {
                let Some(chain) = q.pop_descriptor_chain(mem) else {
                    break;
                };
                let head = chain.head_index();
                let slot = batch.slot_mut(n);
                let buf = &mut slot.buf_mut()[RX_HEADROOM..];
                let res = read_chain(mem, chain, hdr_len, buf);
                let _ = q.add_used(mem, head, 0);
                used += 1;
                match res {
                    Ok((hdr, len, cut)) => {
                        let mut h = [0u8; VNET_HDR_LEN];
                        h.copy_from_slice(&hdr[..VNET_HDR_LEN]);
                        let Some(off) = Offload::from_vnet_hdr(&h) else {
                            bad += 1;
                            continue;
                        };
                        let status = if cut {
                            RxStatus::Truncated { wire_len: len + 1 }
                        } else {
                            RxStatus::Complete
                        };
                        slot.set(RX_HEADROOM, len, status);
                        slot.set_offload(off);
                        n += 1;
                    }
                    Err(()) => bad += 1,
                }
            }
            if n == batch.capacity() {
                // More may wait: the dataplane calls again; notifications stay off.
                break 'outer;
            }
            match q.enable_notification(mem) {
                Ok(true) => continue,
                _ => break,
            }
        }
        if used > 0 && q.needs_notification(mem).unwrap_or(true) {
            let _ = vr.signal_used_queue();
        }
        drop(vr);
        self.drops.bad_descriptor += bad;
        batch.finish_read(n, super::realtime_ns());
        if n == batch.capacity() {
            // Our own wake keeps the dataplane coming back.
            let _ = self.shared.wake.write(1);
        }
        Ok(n)
    }

    fn offload_caps(&self) -> OffloadCaps {
        let a = self.acked();
        let csum = has(a, VIRTIO_NET_F_GUEST_CSUM);
        OffloadCaps {
            csum,
            tso4: csum && has(a, VIRTIO_NET_F_GUEST_TSO4),
            tso6: csum && has(a, VIRTIO_NET_F_GUEST_TSO6),
            uso: false,
        }
    }

    fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> (usize, Option<SendError>) {
        self.refresh();
        let Some(conn) = self.conn.clone() else {
            return (0, Some(SendError::LinkDown));
        };
        let Some(vrings) = conn.vrings.get() else {
            return (0, Some(SendError::LinkDown));
        };
        let acked = conn.acked.load(Ordering::Acquire);
        let mrg = has(acked, VIRTIO_NET_F_MRG_RXBUF);
        let hdr_len = if has(acked, VIRTIO_F_VERSION_1) || mrg {
            HDR_V1_LEN
        } else {
            VNET_HDR_LEN
        };
        let guest_csum = has(acked, VIRTIO_NET_F_GUEST_CSUM);
        let guard = conn.mem.memory();
        let mem: &GuestMemoryMmap = &guard;
        let mut vr = vrings[RX_QUEUE].get_mut();
        if !vr.get_queue().ready() || !vr.is_enabled() {
            return (0, Some(SendError::LinkDown));
        }
        let mut sent = 0;
        let mut err = None;
        let mut bad = 0;
        let mut chains: smallvec::SmallVec<[RxChain; 4]> = smallvec::SmallVec::new();
        for f in frames {
            let mut hdr = [0u8; HDR_V1_LEN];
            let mut o = f.offload;
            if !guest_csum {
                o.data_valid = false;
            }
            hdr[..VNET_HDR_LEN].copy_from_slice(&o.to_vnet_hdr());
            let need = hdr_len + f.data.len();
            chains.clear();
            let mut have = 0usize;
            let mut broken = false;
            while have < need {
                if chains.len() == MAX_RX_CHAINS || (!mrg && !chains.is_empty()) {
                    break;
                }
                let q = vr.get_queue_mut();
                let Some(chain) = q.pop_descriptor_chain(mem) else {
                    break;
                };
                let mut c = RxChain {
                    head: chain.head_index(),
                    segs: smallvec::SmallVec::new(),
                    cap: 0,
                };
                for d in chain {
                    if !d.is_write_only() {
                        broken = true;
                        break;
                    }
                    c.segs.push((d.addr(), d.len() as usize));
                    c.cap += d.len() as usize;
                }
                have += c.cap;
                chains.push(c);
                if broken {
                    break;
                }
            }
            if broken {
                // A chain the guest offered for reading: consume what was
                // taken so the ring moves on, drop the frame.
                let q = vr.get_queue_mut();
                for c in &chains {
                    let _ = q.add_used(mem, c.head, 0);
                }
                bad += 1;
                sent += 1;
                continue;
            }
            if have < need {
                // Not enough room now: give the chains back untouched.
                let q = vr.get_queue_mut();
                for _ in 0..chains.len() {
                    q.go_to_previous_position();
                }
                err = Some(SendError::WouldBlock);
                break;
            }
            if hdr_len == HDR_V1_LEN {
                hdr[VNET_HDR_LEN..].copy_from_slice(&(chains.len() as u16).to_le_bytes());
            }
            // Write header then frame across the chains, in order.
            let mut src_off = 0usize; // over hdr ++ data
            let total = need;
            let mut ok = true;
            let q = vr.get_queue_mut();
            for c in &chains {
                let mut written = 0usize;
                for &(addr, len) in &c.segs {
                    let mut a = addr;
                    let mut room = len;
                    while room > 0 && src_off < total {
                        let (piece, base): (&[u8], usize) = if src_off < hdr_len {
                            (&hdr[..hdr_len], src_off)
                        } else {
                            (f.data, src_off - hdr_len)
                        };
                        let k = (piece.len() - base).min(room);
                        if mem.write_slice(&piece[base..base + k], a).is_err() {
                            ok = false;
                        }
                        src_off += k;
                        written += k;
                        room -= k;
                        a = GuestAddress(a.0 + k as u64);
                    }
                }
                let _ = q.add_used(mem, c.head, written as u32);
            }
            if !ok {
                bad += 1;
            }
            sent += 1;
        }
        let q = vr.get_queue_mut();
        if sent > 0 && q.needs_notification(mem).unwrap_or(true) {
            let _ = vr.signal_used_queue();
        }
        drop(vr);
        self.drops.bad_descriptor += bad;
        (sent, err)
    }

    fn check(&mut self) -> Result<(), PortError> {
        Ok(())
    }

    fn take_framing_drops(&mut self) -> FramingDrops {
        std::mem::take(&mut self.drops)
    }
}

impl Drop for VhostUserPort {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(h) = self
            .shared
            .shutdown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            h.shutdown();
        }
        if self.role == Role::Server {
            // Wake an accept() that waits for a QEMU that will not come.
            let _ = UnixStream::connect(&self.path);
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
