//! The port's protocol thread: QEMU's vhost-user messages, answered with the
//! `vhost` crate's request handler, turned into ring setups for the
//! dataplane ([`control`](super::control)).
//!
//! Why not `vhost-user-backend`'s daemon: its request loop ends the
//! connection on the first error the handler returns, and QEMU 7.2's
//! virtio-net sends `SET_VRING_ENABLE` before `SET_FEATURES`, which the
//! `vhost` crate refuses (`InactiveFeature(PROTOCOL_FEATURES)`) without
//! passing it on. That early message is the only one that enables the
//! rings (QEMU does not repeat it at device start), so it must not be lost:
//! this loop drives the same `BackendReqHandler`, looks at each message's
//! header before the crate reads it (`recv(MSG_PEEK)`), and when the crate
//! refuses an early `SET_VRING_ENABLE`, applies what the peek saw, as
//! DPDK's and QEMU's own backends accept it. The daemon's ring threads are not needed
//! either: the dataplane walks the rings itself.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vhost::vhost_user::message::{
    VhostTransferStateDirection, VhostTransferStatePhase, VhostUserConfigFlags, VhostUserInflight,
    VhostUserLog, VhostUserMemoryRegion, VhostUserProtocolFeatures, VhostUserShMemConfig,
    VhostUserSharedMsg, VhostUserSingleMemoryRegion, VhostUserVirtioFeatures,
    VhostUserVringAddrFlags, VhostUserVringState,
};
use vhost::vhost_user::{
    BackendReqHandler, Error as VuError, GpuBackend, Result as VuResult,
    VhostUserBackendReqHandlerMut,
};
use vhost::VhostUserMemoryRegionBase;
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_net::{
    VIRTIO_NET_F_CSUM, VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6,
    VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_MRG_RXBUF,
};
use virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;
use virtio_bindings::virtio_ring::VIRTIO_RING_F_INDIRECT_DESC;
use vm_memory::{GuestAddress, GuestMemoryMmap, GuestRegionMmap};

use super::control::{RingSetup, Setup, Shared};
use crate::port::sys::peek as sys;

/// The virtio-net features offered, with the names `port list` shows.
pub const OFFERED: &[(u32, &str)] = &[
    (VIRTIO_F_VERSION_1, "version-1"),
    (VIRTIO_NET_F_MRG_RXBUF, "mrg-rxbuf"),
    (VIRTIO_NET_F_CSUM, "csum"),
    (VIRTIO_NET_F_GUEST_CSUM, "guest-csum"),
    (VIRTIO_NET_F_HOST_TSO4, "host-tso4"),
    (VIRTIO_NET_F_HOST_TSO6, "host-tso6"),
    (VIRTIO_NET_F_GUEST_TSO4, "guest-tso4"),
    (VIRTIO_NET_F_GUEST_TSO6, "guest-tso6"),
    (VIRTIO_RING_F_EVENT_IDX, "event-idx"),
    (VIRTIO_RING_F_INDIRECT_DESC, "indirect-desc"),
];

const PROTOCOL_FEATURES: u64 = VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits();

/// Pause between attempts to reach a QEMU that listens (`--client`).
const RECONNECT: Duration = Duration::from_millis(500);
/// How often an idle listener looks at the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(50);

fn offered_bits() -> u64 {
    OFFERED
        .iter()
        .fold(PROTOCOL_FEATURES, |a, (b, _)| a | (1u64 << b))
}

/// Names of the negotiated features.
pub fn feature_names(features: u64) -> Vec<String> {
    OFFERED
        .iter()
        .filter(|(b, _)| features & (1u64 << b) != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

#[derive(Default)]
struct RingState {
    size: u16,
    /// Descriptor table, available and used ring, guest-physical.
    addr: Option<(u64, u64, u64)>,
    base: u16,
    kick: Option<Arc<File>>,
    call: Option<Arc<File>>,
    /// Between SET_VRING_KICK and GET_VRING_BASE.
    started: bool,
    enabled: bool,
    epoch: u64,
}

/// One QEMU connection's device state.
struct Device {
    shared: Arc<Shared>,
    acked: Option<u64>,
    mem: Option<Arc<GuestMemoryMmap>>,
    /// (QEMU virtual address, size, guest-physical address) per region.
    maps: Vec<(u64, u64, u64)>,
    rings: [RingState; 2],
    epochs: u64,
}

impl Device {
    fn new(shared: Arc<Shared>) -> Device {
        Device {
            shared,
            acked: None,
            mem: None,
            maps: Vec::new(),
            rings: Default::default(),
            epochs: 0,
        }
    }

    fn ring(&mut self, index: u32) -> VuResult<&mut RingState> {
        self.rings
            .get_mut(index as usize)
            .ok_or(VuError::InvalidParam)
    }

    fn restart(&mut self, index: u32) -> VuResult<()> {
        self.epochs += 1;
        let e = self.epochs;
        self.ring(index)?.epoch = e;
        Ok(())
    }

    fn gpa(&self, va: u64) -> VuResult<u64> {
        self.maps
            .iter()
            .find(|(v, size, _)| va >= *v && va - v < *size)
            .map(|(v, _, g)| va - v + g)
            .ok_or(VuError::InvalidParam)
    }

    /// Hands the dataplane what should run now and waits until it does.
    fn publish(&self) {
        let want = match (&self.mem, self.acked) {
            (Some(mem), Some(features)) => {
                let ring = |r: &RingState| -> Option<RingSetup> {
                    let (desc, avail, used) = r.addr?;
                    if !(r.started && r.enabled) || r.size == 0 {
                        return None;
                    }
                    Some(RingSetup {
                        size: r.size,
                        desc,
                        avail,
                        used,
                        base: r.base,
                        epoch: r.epoch,
                        kick: r.kick.clone()?,
                        call: r.call.clone(),
                    })
                };
                Some(Arc::new(Setup {
                    mem: mem.clone(),
                    features,
                    rings: [ring(&self.rings[0]), ring(&self.rings[1])],
                }))
            }
            _ => None,
        };
        self.shared.publish(want);
    }
}

impl VhostUserBackendReqHandlerMut for Device {
    fn set_owner(&mut self) -> VuResult<()> {
        Ok(())
    }

    fn reset_owner(&mut self) -> VuResult<()> {
        self.reset_device()
    }

    fn reset_device(&mut self) -> VuResult<()> {
        self.acked = None;
        self.rings = Default::default();
        self.publish();
        Ok(())
    }

    fn get_features(&mut self) -> VuResult<u64> {
        Ok(offered_bits())
    }

    fn set_features(&mut self, features: u64) -> VuResult<()> {
        if features & !offered_bits() != 0 {
            return Err(VuError::InvalidParam);
        }
        self.acked = Some(features);
        if features & PROTOCOL_FEATURES == 0 {
            // Without the protocol features rings are enabled from the start.
            for r in &mut self.rings {
                r.enabled = true;
            }
        }
        self.shared.lock().negotiated = feature_names(features);
        self.publish();
        Ok(())
    }

    fn set_mem_table(
        &mut self,
        ctx: &[VhostUserMemoryRegion],
        files: Vec<File>,
        postcopy_listening: Option<bool>,
    ) -> VuResult<Option<Vec<VhostUserMemoryRegionBase>>> {
        if postcopy_listening.is_some() {
            return Err(VuError::InvalidOperation("postcopy is not supported"));
        }
        let mut regions = Vec::new();
        let mut maps = Vec::new();
        for (region, file) in ctx.iter().zip(files) {
            let mapped = GuestRegionMmap::new(
                region.mmap_region(file)?,
                GuestAddress(region.guest_phys_addr),
            )
            .ok_or(VuError::InvalidParam)?;
            maps.push((region.user_addr, region.memory_size, region.guest_phys_addr));
            regions.push(mapped);
        }
        let mem = GuestMemoryMmap::from_regions(regions).map_err(|_| VuError::InvalidParam)?;
        self.mem = Some(Arc::new(mem));
        self.maps = maps;
        self.publish();
        Ok(None)
    }

    fn set_vring_num(&mut self, index: u32, num: u32) -> VuResult<()> {
        if num == 0 || num > 32768 || !num.is_power_of_two() {
            return Err(VuError::InvalidParam);
        }
        self.ring(index)?.size = num as u16;
        self.restart(index)
    }

    fn set_vring_addr(
        &mut self,
        index: u32,
        _flags: VhostUserVringAddrFlags,
        descriptor: u64,
        used: u64,
        available: u64,
        _log: u64,
    ) -> VuResult<()> {
        let addr = (self.gpa(descriptor)?, self.gpa(available)?, self.gpa(used)?);
        self.ring(index)?.addr = Some(addr);
        self.restart(index)
    }

    fn set_vring_base(&mut self, index: u32, base: u32) -> VuResult<()> {
        self.ring(index)?.base = base as u16;
        self.restart(index)
    }

    fn get_vring_base(&mut self, index: u32) -> VuResult<VhostUserVringState> {
        let r = self.ring(index)?;
        r.started = false;
        r.kick = None;
        self.publish();
        let at = self.shared.lock().stopped_at[index as usize & 1];
        let r = self.ring(index)?;
        if let Some(at) = at {
            r.base = at;
        }
        Ok(VhostUserVringState::new(index, u32::from(r.base)))
    }

    fn set_vring_kick(&mut self, index: u8, fd: Option<File>) -> VuResult<()> {
        let proto = self.acked.is_some_and(|f| f & PROTOCOL_FEATURES != 0);
        let r = self.ring(u32::from(index))?;
        r.kick = fd.map(Arc::new);
        r.started = r.kick.is_some();
        if !proto {
            r.enabled = true;
        }
        self.restart(u32::from(index))?;
        self.publish();
        Ok(())
    }

    fn set_vring_call(&mut self, index: u8, fd: Option<File>) -> VuResult<()> {
        self.ring(u32::from(index))?.call = fd.map(Arc::new);
        self.publish();
        Ok(())
    }

    fn set_vring_err(&mut self, _index: u8, _fd: Option<File>) -> VuResult<()> {
        Ok(())
    }

    fn get_protocol_features(&mut self) -> VuResult<VhostUserProtocolFeatures> {
        Ok(VhostUserProtocolFeatures::empty())
    }

    fn set_protocol_features(&mut self, _features: u64) -> VuResult<()> {
        Ok(())
    }

    fn get_queue_num(&mut self) -> VuResult<u64> {
        Ok(2)
    }

    fn set_vring_enable(&mut self, index: u32, enable: bool) -> VuResult<()> {
        self.ring(index)?.enabled = enable;
        self.publish();
        Ok(())
    }

    fn get_config(
        &mut self,
        _offset: u32,
        _size: u32,
        _flags: VhostUserConfigFlags,
    ) -> VuResult<Vec<u8>> {
        Err(VuError::InvalidOperation("no device config space"))
    }

    fn set_config(
        &mut self,
        _offset: u32,
        _buf: &[u8],
        _flags: VhostUserConfigFlags,
    ) -> VuResult<()> {
        Err(VuError::InvalidOperation("no device config space"))
    }

    fn set_gpu_socket(&mut self, _gpu_backend: GpuBackend) -> VuResult<()> {
        Err(VuError::InvalidOperation("not a GPU"))
    }

    fn get_shared_object(&mut self, _uuid: VhostUserSharedMsg) -> VuResult<File> {
        Err(VuError::InvalidOperation("no shared objects"))
    }

    fn get_inflight_fd(
        &mut self,
        _inflight: &VhostUserInflight,
    ) -> VuResult<(VhostUserInflight, File)> {
        Err(VuError::InvalidOperation("no inflight tracking"))
    }

    fn set_inflight_fd(&mut self, _inflight: &VhostUserInflight, _file: File) -> VuResult<()> {
        Err(VuError::InvalidOperation("no inflight tracking"))
    }

    fn get_max_mem_slots(&mut self) -> VuResult<u64> {
        Err(VuError::InvalidOperation("no memory slots"))
    }

    fn add_mem_region(
        &mut self,
        _region: &VhostUserSingleMemoryRegion,
        _fd: File,
        _postcopy_listening: Option<bool>,
    ) -> VuResult<Option<VhostUserMemoryRegionBase>> {
        Err(VuError::InvalidOperation("no memory slots"))
    }

    fn remove_mem_region(&mut self, _region: &VhostUserSingleMemoryRegion) -> VuResult<()> {
        Err(VuError::InvalidOperation("no memory slots"))
    }

    fn set_device_state_fd(
        &mut self,
        _direction: VhostTransferStateDirection,
        _phase: VhostTransferStatePhase,
        _fd: File,
    ) -> VuResult<Option<File>> {
        Err(VuError::InvalidOperation("no migration"))
    }

    fn check_device_state(&mut self) -> VuResult<()> {
        Err(VuError::InvalidOperation("no migration"))
    }

    fn get_shmem_config(&mut self) -> VuResult<VhostUserShMemConfig> {
        Err(VuError::InvalidOperation("no shared memory regions"))
    }

    fn set_log_base(&mut self, _log: &VhostUserLog, _file: File) -> VuResult<()> {
        Err(VuError::InvalidOperation("no dirty logging"))
    }
}

/// Which side opens the connection.
pub enum Dial {
    /// The switch listens; QEMU connects (`-chardev socket,path=...`).
    Listen(UnixListener),
    /// QEMU listens (`-chardev socket,server=on`); the switch connects and
    /// reconnects whenever QEMU comes back.
    Connect(PathBuf),
}

/// What the port keeps to stop its protocol thread.
pub struct Stopper {
    pub stop: AtomicBool,
    /// The live connection, to shut down so a blocked read returns.
    pub conn: Mutex<Option<UnixStream>>,
}

/// `SET_VRING_ENABLE`'s request code in the vhost-user protocol.
const SET_VRING_ENABLE: u32 = 18;

/// Looks at the next message before the crate reads it: `Some((ring,
/// enable))` when it is `SET_VRING_ENABLE`. `Err` when the peer is gone.
fn peek_enable(sock: &UnixStream) -> Result<Option<(u32, bool)>, ()> {
    use std::os::fd::AsFd;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    // Header: request, flags, payload size (all u32); the ring state that
    // follows is index and value.
    let mut b = [0u8; 20];
    match sys::peek_exact(sock.as_fd(), &mut b[..12]) {
        Ok(12) => {}
        _ => return Err(()),
    }
    if u32_at(&b, 0) != SET_VRING_ENABLE || u32_at(&b, 8) != 8 {
        return Ok(None);
    }
    match sys::peek_exact(sock.as_fd(), &mut b) {
        Ok(20) => Ok(Some((u32_at(&b, 12), u32_at(&b, 16) == 1))),
        _ => Err(()),
    }
}

/// The protocol thread's body: one connection at a time, each with a fresh
/// device, until the port is dropped.
pub fn run(name: String, dial: Dial, shared: Arc<Shared>, stopper: Arc<Stopper>) {
    let stopped = || stopper.stop.load(Ordering::Acquire);
    if let Dial::Listen(l) = &dial {
        let _ = l.set_nonblocking(true);
    }
    while !stopped() {
        let sock = match &dial {
            Dial::Listen(l) => match l.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(ACCEPT_POLL);
                    continue;
                }
                Err(_) => {
                    std::thread::sleep(ACCEPT_POLL);
                    continue;
                }
            },
            Dial::Connect(path) => match UnixStream::connect(path) {
                Ok(s) => s,
                Err(_) => {
                    std::thread::sleep(RECONNECT);
                    continue;
                }
            },
        };
        let _ = sock.set_nonblocking(false);
        if let Ok(c) = sock.try_clone() {
            *stopper.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(c);
        }
        if stopped() {
            break;
        }
        {
            let mut st = shared.lock();
            st.connected = true;
            st.connects += 1;
        }
        let Ok(ahead) = sock.try_clone() else {
            continue;
        };
        let device = Arc::new(Mutex::new(Device::new(shared.clone())));
        let mut handler = BackendReqHandler::from_stream(sock, device.clone());
        let why = loop {
            let early = match peek_enable(&ahead) {
                Ok(e) => e,
                Err(()) => break None,
            };
            match handler.handle_request() {
                Ok(()) => {}
                // The early SET_VRING_ENABLE (see the module doc): the crate
                // refused it unread, so its content comes from the peek.
                Err(VuError::InactiveFeature(f))
                    if f == VhostUserVirtioFeatures::PROTOCOL_FEATURES && early.is_some() =>
                {
                    let (index, enable) = early.expect("checked");
                    let mut d = device.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = d.set_vring_enable(index, enable);
                }
                Err(VuError::Disconnected) | Err(VuError::PartialMessage) => break None,
                Err(e) => break Some(e),
            }
        };
        *stopper.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if let (Some(e), false) = (why, stopped()) {
            eprintln!("l2sw: vhost-user port {name}: closing the connection: {e}");
        }
        {
            let mut st = shared.lock();
            st.connected = false;
            st.negotiated.clear();
        }
        if !stopped() {
            shared.publish(None);
        }
    }
}
