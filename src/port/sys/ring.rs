//! A PACKET_RX_RING (TPACKET_V2) shared with the kernel: frames land in
//! mmap'ed slots in softirq context, on whichever CPU received them, and the
//! switch reads them without a system call per batch.
//!
//! Slots are sized for MTU frames. A larger frame (jumbo, GSO super-frame)
//! is cut in its slot and flagged TP_STATUS_COPY; with PACKET_COPY_THRESH the
//! kernel also queues it whole on the socket, where the caller reads it with
//! `recvmsg`, in the same order.

use std::io;
use std::mem::size_of;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::packet::PacketSocket;
use super::setsockopt;

/// Bytes per slot: an MTU-1500 frame with two tags, the virtio-net header
/// and the tpacket2 header fit; larger frames take the copy path.
pub const SLOT_SIZE: usize = 2048;
/// Slots per block (one block is 32 pages, allocated contiguously).
const SLOTS_PER_BLOCK: usize = 64;
/// 8 blocks: 512 slots, 1 MiB per port. The kernel allocates and zeroes
/// the whole ring when the port opens and frees it when it closes, on the
/// request's path: at 8 MiB (64 blocks) that was 10-45 ms per `ns plug`
/// and 25-30 ms per unplug on the loaded development VM
/// (docs/benchmarks.md), and 200 plugged namespaces locked 1.6 GiB. With
/// the fast path on, unicast between known stations bypasses the ring.
const BLOCKS: usize = 8;

/// Ring blocks: [`BLOCKS`], or `L2SW_RX_RING_BLOCKS` (1-1024) for
/// measuring other sizes.
fn blocks() -> usize {
    std::env::var("L2SW_RX_RING_BLOCKS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|b| (1..=1024).contains(b))
        .unwrap_or(BLOCKS)
}

/// One received frame, borrowed from the ring until `release`.
#[derive(Debug)]
pub struct RingFrame<'a> {
    pub data: &'a [u8],
    /// The 10 bytes in front of the frame (the virtio-net header when the
    /// socket has PACKET_VNET_HDR).
    pub vnet: &'a [u8],
    /// The frame's length on the wire (without a stripped tag).
    pub wire_len: usize,
    pub status: u32,
    pub vlan_tci: u16,
    pub vlan_tpid: u16,
    /// Kernel receive time, ns since the Unix epoch.
    pub ts_ns: u64,
    /// sll_pkttype (PACKET_OUTGOING for the device's own transmissions).
    pub pkttype: u8,
}

impl RingFrame<'_> {
    /// The frame did not fit its slot; the whole frame waits on the socket.
    pub fn copied(&self) -> bool {
        self.status & libc::TP_STATUS_COPY != 0
    }
}

/// The mapped ring and the index of the next slot to read.
pub struct RxRing {
    base: NonNull<u8>,
    len: usize,
    slots: usize,
    head: usize,
}

// SAFETY: the mapping is owned by this value alone (nothing else holds
// `base`), and the kernel synchronizes with us only through each slot's
// status word, read and written atomically.
unsafe impl Send for RxRing {}

impl RxRing {
    /// Switches `sock` to TPACKET_V2 and maps a receive ring. Must run
    /// before `bind` and after PACKET_VNET_HDR, which the kernel refuses to
    /// change once a ring exists.
    pub fn new(sock: &PacketSocket) -> io::Result<RxRing> {
        // enum tpacket_versions: V1 = 0, V2 = 1.
        let version: libc::c_int = 1;
        setsockopt(sock.fd(), libc::SOL_PACKET, libc::PACKET_VERSION, &version)?;
        // Frames larger than a slot are also queued whole on the socket.
        let one: libc::c_int = 1;
        setsockopt(sock.fd(), libc::SOL_PACKET, libc::PACKET_COPY_THRESH, &one)?;
        let blocks = blocks();
        let req = libc::tpacket_req {
            tp_block_size: (SLOT_SIZE * SLOTS_PER_BLOCK) as libc::c_uint,
            tp_block_nr: blocks as libc::c_uint,
            tp_frame_size: SLOT_SIZE as libc::c_uint,
            tp_frame_nr: (SLOTS_PER_BLOCK * blocks) as libc::c_uint,
        };
        setsockopt(sock.fd(), libc::SOL_PACKET, libc::PACKET_RX_RING, &req)?;
        let len = SLOT_SIZE * SLOTS_PER_BLOCK * blocks;
        // SAFETY: maps `len` bytes of the ring the kernel just created for
        // this socket; no existing memory is touched, and the result is
        // checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED,
                sock.as_raw_fd(),
                0,
            )
        };
        let p = if p == libc::MAP_FAILED {
            // MAP_LOCKED can fail under RLIMIT_MEMLOCK; the ring works unlocked.
            // SAFETY: as above, without MAP_LOCKED.
            let q = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    sock.as_raw_fd(),
                    0,
                )
            };
            if q == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            q
        } else {
            p
        };
        let base =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(RxRing {
            base,
            len,
            slots: SLOTS_PER_BLOCK * blocks,
            head: 0,
        })
    }

    /// The slot's status word, shared with the kernel.
    fn status(&self, slot: usize) -> &AtomicU32 {
        // SAFETY: `slot < self.slots`, so the slot's first 4 bytes (the
        // tpacket2_hdr's tp_status, 16-byte aligned) lie inside the mapping,
        // which lives as long as `self`; the kernel writes that word
        // concurrently, which is why it is only accessed atomically.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(slot * SLOT_SIZE).cast()) }
    }

    /// Whether the kernel has handed over a frame not yet read: one load of
    /// shared memory, no system call.
    pub fn ready(&self) -> bool {
        self.status(self.head).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    /// The next frame the kernel handed over, if any. Call `release` when
    /// done with it.
    pub fn peek(&self) -> Option<RingFrame<'_>> {
        let status = self.status(self.head).load(Ordering::Acquire);
        if status & libc::TP_STATUS_USER == 0 {
            return None;
        }
        // SAFETY: the slot lies inside the mapping; TP_STATUS_USER (read
        // with Acquire above) means the kernel finished writing it and will
        // not touch it until we hand it back in `release`, so reading it as
        // a header followed by bytes is race-free.
        let slot = unsafe {
            std::slice::from_raw_parts(self.base.as_ptr().add(self.head * SLOT_SIZE), SLOT_SIZE)
        };
        let hdr_len = size_of::<libc::tpacket2_hdr>();
        let u32_at = |o: usize| u32::from_ne_bytes(slot[o..o + 4].try_into().unwrap());
        let u16_at = |o: usize| u16::from_ne_bytes(slot[o..o + 2].try_into().unwrap());
        // struct tpacket2_hdr: status, len, snaplen (u32); mac, net (u16);
        // sec, nsec (u32); vlan_tci, vlan_tpid (u16).
        let (len, snaplen, mac) = (u32_at(4) as usize, u32_at(8) as usize, u16_at(12) as usize);
        let (sec, nsec) = (u32_at(16) as u64, u32_at(20) as u64);
        // Offsets come from the kernel; clamp them to the slot anyway.
        let start = mac.clamp(hdr_len, SLOT_SIZE);
        let end = (start + snaplen).min(SLOT_SIZE);
        let vnet_start = start.saturating_sub(10).max(hdr_len);
        Some(RingFrame {
            data: &slot[start..end],
            vnet: &slot[vnet_start..start],
            wire_len: len,
            status,
            vlan_tci: u16_at(24),
            vlan_tpid: u16_at(26),
            ts_ns: sec * 1_000_000_000 + nsec,
            // The sockaddr_ll follows the 16-byte-aligned header;
            // sll_pkttype is its 11th byte.
            pkttype: slot[hdr_len.next_multiple_of(16) + 10],
        })
    }

    /// Hands the current slot back to the kernel and moves on.
    pub fn release(&mut self) {
        self.status(self.head)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.head = (self.head + 1) % self.slots;
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no borrow of it
        // can outlive `self`.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}
