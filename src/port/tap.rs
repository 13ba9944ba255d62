//! TAP devices: [`TapPort`], a port whose endpoint is a TAP netdev the switch
//! creates and whose queue it holds, and the helpers that create and delete
//! persistent TAPs for VMs (which the switch then reaches through
//! `AfPacketPort` with `PortKind::TapVm`).

use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, RawFd};

use super::sys::netdev;
use super::sys::tun::{self, TunQueue};
use super::{ifname, Port, PortError, PortInfo, PortKind, RxBatch, RxStatus, SendError};
use super::{Offload, OffloadCaps, TxFrame, RX_BUF_SIZE, RX_HEADROOM, VNET_HDR_LEN};
use crate::wire::MacAddr;

/// The largest frame a TAP queue can hold: 64 KiB MTU, header, one tag.
const MAX_TAP_FRAME: usize = 65535 + 14 + 4;

/// A plain Ethernet TAP: no packet-information prefix in front of frames.
const TAP_FLAGS: libc::c_int = tun::IFF_TAP | tun::IFF_NO_PI;

/// A port on a TAP device whose queue the switch holds. The netdev is the
/// other endpoint (typically moved into a container's namespace); it exists
/// as long as this port does, unless it was already persistent.
pub struct TapPort {
    queue: TunQueue,
    /// The name it was created with ([`Port::name`]).
    name: String,
    /// The netdev's current name, wherever it lives.
    ifname: String,
    ifindex: Option<u32>,
    mtu: u32,
    mac: Option<MacAddr>,
    capabilities: Vec<&'static str>,
    /// Sticky: once the device is gone the queue never recovers.
    vanished: bool,
    /// Frames carry a virtio-net header (IFF_VNET_HDR): offloads travel.
    vnet: bool,
    caps: OffloadCaps,
    /// Catches the rest of a frame longer than the slot buffer: the tun
    /// driver returns only the bytes it copied, so a cut frame is seen (and
    /// its length known) only if it had somewhere else to go.
    spill: Box<[u8]>,
}

impl TapPort {
    /// Creates TAP device `name` (or attaches to a persistent TAP of that
    /// name nobody holds) and brings it up. Closing the port destroys a
    /// device it created.
    pub fn create(name: &str) -> Result<TapPort, PortError> {
        ifname::validate(name)?;
        let queue = open_queue(name)?;
        let mut capabilities = Vec::new();
        let features = queue
            .features()
            .map_err(|e| PortError::setup("query TAP features", name, e))?;
        // With a virtio-net header on every frame, partial checksums and GSO
        // super-frames cross the queue whole instead of being finished and
        // segmented by the stack behind the netdev.
        let vnet = features & tun::IFF_VNET_HDR != 0;
        if features & tun::IFF_MULTI_QUEUE != 0 {
            capabilities.push("multi-queue-available");
        }
        let flags = if vnet {
            TAP_FLAGS | tun::IFF_VNET_HDR
        } else {
            TAP_FLAGS
        };
        let ifname = attach(&queue, name, flags, "create TAP device")?;
        let mut caps = OffloadCaps::NONE;
        if vnet {
            capabilities.push("vnet-hdr");
            // Writing GSO frames needs only the header; TUNSETOFFLOAD says what
            // we take on read, and makes the netdev offer it to its stack.
            caps = OffloadCaps::ALL;
            let base = tun::TUN_F_CSUM | tun::TUN_F_TSO4 | tun::TUN_F_TSO6 | tun::TUN_F_TSO_ECN;
            if queue
                .set_offload(base | tun::TUN_F_USO4 | tun::TUN_F_USO6)
                .is_ok()
            {
                capabilities.push("offload-csum-tso-uso");
            } else if queue.set_offload(base).is_ok() {
                capabilities.push("offload-csum-tso");
            }
        }
        let (_, flags) = queue
            .get_iff()
            .map_err(|e| PortError::setup("query TAP device", name, e))?;
        if flags & tun::IFF_PERSIST != 0 {
            // An existing persistent TAP: closing the port will not delete it.
            capabilities.push("persistent");
        }
        netdev::set_up(&ifname).map_err(|e| PortError::setup("bring TAP device up", name, e))?;
        let ifindex = netdev::name_to_index(&ifname)
            .map_err(|e| PortError::setup("look up TAP device", name, e))?;
        let mtu = netdev::mtu(&ifname).map_err(|e| PortError::setup("read MTU", name, e))?;
        let mac = netdev::hwaddr(&ifname)
            .map_err(|e| PortError::setup("read MAC address", name, e))?
            .map(MacAddr);
        Ok(TapPort {
            queue,
            name: name.to_string(),
            ifname,
            ifindex: Some(ifindex),
            mtu,
            mac,
            capabilities,
            vanished: false,
            vnet,
            caps,
            spill: vec![0; MAX_TAP_FRAME].into_boxed_slice(),
        })
    }

    /// The netdev's current name (as of the last [`Port::check`]), in
    /// whatever namespace it lives now.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Tells the port the MTU its owner configured on the netdev: once the
    /// netdev moved to another namespace the switch can no longer read it.
    pub fn set_mtu_hint(&mut self, mtu: u32) {
        self.mtu = mtu;
    }

    fn vanished(&mut self) -> PortError {
        self.vanished = true;
        PortError::Vanished {
            name: self.name.clone(),
        }
    }

    /// Whether the device behind the queue was deleted (TUNGETIFF fails with
    /// EBADFD once the queue is detached from a dead device).
    fn device_gone(&self) -> bool {
        matches!(self.queue.get_iff(), Err(e) if e.raw_os_error() == Some(libc::EBADFD))
    }

    fn send_error(&self, e: io::Error) -> SendError {
        match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::ENOBUFS) => SendError::WouldBlock,
            Some(libc::EMSGSIZE) => SendError::TooBig,
            Some(libc::EIO) | Some(libc::EBADFD) => {
                if self.device_gone() {
                    SendError::Vanished
                } else {
                    SendError::LinkDown
                }
            }
            _ => SendError::Io(e),
        }
    }
}

impl Port for TapPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> PortInfo {
        PortInfo {
            kind: PortKind::Tap,
            ifname: self.ifname.clone(),
            ifindex: self.ifindex,
            mtu: self.mtu,
            mac: self.mac,
            capabilities: self.capabilities.clone(),
            peer: None,
        }
    }

    fn raw_fd(&self) -> RawFd {
        self.queue.as_raw_fd()
    }

    fn mtu(&self) -> u32 {
        self.mtu
    }

    fn recv_batch(&mut self, batch: &mut RxBatch) -> Result<usize, PortError> {
        batch.clear();
        if self.vanished {
            return Err(self.vanished());
        }
        let mut n = 0;
        // The header, when there is one, lands right in front of the frame.
        let hdr = if self.vnet { VNET_HDR_LEN } else { 0 };
        while n < batch.capacity() {
            let Some(buf) = batch.slot_mut(n).buf_mut().get_mut(RX_HEADROOM - hdr..) else {
                break;
            };
            let room = buf.len();
            let mut iov = [IoSliceMut::new(buf), IoSliceMut::new(&mut self.spill)];
            match self.queue.read_vectored(&mut iov) {
                Ok(len) if len > hdr => {
                    let status = if len > room {
                        RxStatus::Truncated {
                            wire_len: len - hdr,
                        }
                    } else {
                        RxStatus::Complete
                    };
                    let slot = batch.slot_mut(n);
                    slot.set(RX_HEADROOM, len.min(room) - hdr, status);
                    if hdr > 0 {
                        let mut h = [0u8; VNET_HDR_LEN];
                        h.copy_from_slice(&slot.buf()[RX_HEADROOM - hdr..RX_HEADROOM]);
                        // A header this switch cannot carry: pass the bytes
                        // as they are rather than guess.
                        slot.set_offload(Offload::from_vnet_hdr(&h).unwrap_or_default());
                    }
                    n += 1;
                }
                Ok(_) => break,
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN) => break,
                    Some(libc::EINTR) => continue,
                    Some(libc::EBADFD) => {
                        // Hand over what was read; the next call reports it.
                        self.vanished = true;
                        if n > 0 {
                            break;
                        }
                        return Err(self.vanished());
                    }
                    _ => {
                        return Err(PortError::Recv {
                            name: self.name.clone(),
                            source: e,
                        })
                    }
                },
            }
        }
        // No kernel timestamp on this queue: the read is the arrival.
        batch.finish_read(n, super::realtime_ns());
        Ok(n)
    }

    fn offload_caps(&self) -> OffloadCaps {
        self.caps
    }

    fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> (usize, Option<SendError>) {
        for (i, frame) in frames.iter().enumerate() {
            loop {
                let r = if self.vnet {
                    let h = frame.offload.to_vnet_hdr();
                    self.queue
                        .write_vectored(&[io::IoSlice::new(&h), io::IoSlice::new(frame.data)])
                } else {
                    self.queue.write(frame.data)
                };
                match r {
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return (i, Some(self.send_error(e))),
                }
            }
        }
        (frames.len(), None)
    }

    fn check(&mut self) -> Result<(), PortError> {
        if self.vanished {
            return Err(self.vanished());
        }
        // Through the queue fd, never by name: the netdev may have moved to
        // another namespace, where our namespace may hold another device of
        // the same name.
        let (name, _) = match self.queue.get_iff() {
            Ok(v) => v,
            Err(e) if e.raw_os_error() == Some(libc::EBADFD) => return Err(self.vanished()),
            Err(e) => return Err(PortError::setup("query TAP device", &self.name, e)),
        };
        match self.queue.in_current_netns() {
            Ok(true) => {
                self.ifindex = netdev::name_to_index(&name).ok();
                if let Ok(mtu) = netdev::mtu(&name) {
                    self.mtu = mtu;
                }
            }
            Ok(false) => self.ifindex = None,
            // Kernel without TUNGETDEVNETNS: where the netdev is cannot be
            // known, so nothing is looked up by name.
            Err(_) => {}
        }
        if name != self.ifname {
            self.ifname = name;
        }
        Ok(())
    }
}

/// Creates persistent TAP device `name` and brings it up, then lets go of its
/// queue so a VM can attach (QEMU `-netdev tap,ifname=NAME,script=no,
/// downscript=no`). An existing TAP of that name nobody holds is reused.
pub fn create_persistent_tap(name: &str) -> Result<(), PortError> {
    ifname::validate(name)?;
    let queue = open_queue(name)?;
    let ifname = attach(&queue, name, TAP_FLAGS, "create TAP device")?;
    let (_, flags) = queue
        .get_iff()
        .map_err(|e| PortError::setup("query TAP device", name, e))?;
    let was_persistent = flags & tun::IFF_PERSIST != 0;
    queue
        .set_persist(true)
        .map_err(|e| PortError::setup("make TAP device persistent", name, e))?;
    if let Err(e) = netdev::set_up(&ifname) {
        if !was_persistent {
            // Leave nothing behind: dropping the queue then deletes it.
            let _ = queue.set_persist(false);
        }
        return Err(PortError::setup("bring TAP device up", name, e));
    }
    Ok(())
}

/// Deletes persistent TAP device `name`. Fails with [`PortError::Busy`] while
/// a VM holds its queue (delete it through rtnetlink, `ip link del`, then).
pub fn delete_persistent_tap(name: &str) -> Result<(), PortError> {
    ifname::validate(name)?;
    netdev::name_to_index(name).map_err(|e| PortError::setup("look up TAP device", name, e))?;
    let queue = open_queue(name)?;
    attach(&queue, name, TAP_FLAGS, "attach to TAP device")?;
    let (_, flags) = queue
        .get_iff()
        .map_err(|e| PortError::setup("query TAP device", name, e))?;
    if flags & tun::IFF_PERSIST == 0 {
        // It vanished since the lookup and attaching created a fresh one;
        // dropping the queue removes that again.
        return Err(PortError::NoSuchInterface {
            name: name.to_string(),
        });
    }
    queue
        .set_persist(false)
        .map_err(|e| PortError::setup("clear TAP persistence", name, e))?;
    // Dropping the last queue of a non-persistent TAP deletes the device.
    drop(queue);
    Ok(())
}

fn open_queue(name: &str) -> Result<TunQueue, PortError> {
    TunQueue::open().map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => PortError::Setup {
            step: "open TAP device",
            name: name.to_string(),
            source: io::Error::new(
                e.kind(),
                format!("/dev/net/tun: {e} (is the tun module loaded? try `modprobe tun`)"),
            ),
        },
        _ => PortError::setup("open TAP device", name, e),
    })
}

/// TUNSETIFF with errors that say what to do.
fn attach(
    queue: &TunQueue,
    name: &str,
    flags: libc::c_int,
    step: &'static str,
) -> Result<String, PortError> {
    queue
        .set_iff(name, flags)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EBUSY) => PortError::Busy {
                name: name.to_string(),
            },
            // The kernel's answer when the name belongs to a device of another
            // type (veth, TUN, multi-queue TAP, ...).
            Some(libc::EINVAL) if netdev::name_to_index(name).is_ok() => PortError::Setup {
                step,
                name: name.to_string(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "an interface of that name exists and is not a single-queue TAP device",
                ),
            },
            _ => PortError::setup(step, name, e),
        })
}

/// With the standard buffers no TAP frame ever reaches the spill buffer.
const _: () = assert!(RX_BUF_SIZE - RX_HEADROOM >= MAX_TAP_FRAME);

#[cfg(test)]
mod tests;
