//! The guest's virtio-net rings as the dataplane thread walks them: the
//! transmit queue into receive batches, frames into the receive queue.
//!
//! `virtio-queue` parses the available ring and descriptor chains (indirect
//! tables, bounds); the used ring is written here, because a frame spread
//! over several receive buffers (`MRG_RXBUF`) must appear to the guest all
//! at once: its used entries are written first and the used index is moved
//! past all of them with one release store, as QEMU's own device does. A
//! guest polling its ring on another vCPU can then never see the first
//! buffer of a frame without the rest.

use std::fs::File;
use std::io::{Read, Write};
use std::num::Wrapping;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_net::{
    VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6,
    VIRTIO_NET_F_MRG_RXBUF,
};
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VRING_AVAIL_F_NO_INTERRUPT};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};

use super::control::{RingSetup, Setup, RXQ, TXQ};
use crate::port::{
    FramingDrops, Offload, OffloadCaps, RxBatch, RxStatus, SendError, TxFrame, RX_BUF_SIZE,
    RX_HEADROOM, VNET_HDR_LEN,
};

/// `struct virtio_net_hdr_v1`: the legacy header plus `num_buffers`.
const HDR_V1_LEN: usize = 12;

fn has(features: u64, bit: u32) -> bool {
    features & (1u64 << bit) != 0
}

/// A virtio 1.0 header is little-endian; `Offload` reads the native-endian
/// layout AF_PACKET and TAP use.
fn le_to_native(h: &[u8]) -> [u8; VNET_HDR_LEN] {
    let mut n = [0u8; VNET_HDR_LEN];
    n[0] = h[0];
    n[1] = h[1];
    for o in [2, 4, 6, 8] {
        let v = u16::from_le_bytes([h[o], h[o + 1]]);
        n[o..o + 2].copy_from_slice(&v.to_ne_bytes());
    }
    n
}

fn native_to_le(n: &[u8; VNET_HDR_LEN], out: &mut [u8]) {
    out[0] = n[0];
    out[1] = n[1];
    for o in [2, 4, 6, 8] {
        let v = u16::from_ne_bytes([n[o], n[o + 1]]);
        out[o..o + 2].copy_from_slice(&v.to_le_bytes());
    }
}

/// One running virtqueue.
pub struct Ring {
    queue: Queue,
    size: u16,
    avail: u64,
    used: u64,
    /// Our own used index (the guest reads it from `used + 2`).
    next_used: Wrapping<u16>,
    /// `next_used` when the guest was last considered for a notification.
    signalled: Wrapping<u16>,
    event_idx: bool,
    epoch: u64,
    kick: Arc<File>,
    call: Option<Arc<File>>,
}

impl Ring {
    fn start(mem: &GuestMemoryMmap, s: &RingSetup, event_idx: bool) -> Result<Ring, String> {
        let mut queue = Queue::new(s.size).map_err(|e| format!("queue size {}: {e:?}", s.size))?;
        queue.set_size(s.size);
        queue
            .try_set_desc_table_address(GuestAddress(s.desc))
            .map_err(|e| format!("descriptor table: {e:?}"))?;
        queue
            .try_set_avail_ring_address(GuestAddress(s.avail))
            .map_err(|e| format!("available ring: {e:?}"))?;
        queue
            .try_set_used_ring_address(GuestAddress(s.used))
            .map_err(|e| format!("used ring: {e:?}"))?;
        queue.set_event_idx(event_idx);
        queue.set_next_avail(s.base);
        // The used index lives in guest memory: after a guest reboot the
        // driver reset it to 0, after a switch-side restart it is where the
        // last device left it.
        let used_idx = queue
            .used_idx(mem, Ordering::Acquire)
            .map_err(|e| format!("used index: {e:?}"))?;
        queue.set_next_used(used_idx.0);
        queue.set_ready(true);
        if !queue.is_valid(mem) {
            return Err("ring addresses outside guest memory".into());
        }
        Ok(Ring {
            queue,
            size: s.size,
            avail: s.avail,
            used: s.used,
            next_used: used_idx,
            signalled: used_idx,
            event_idx,
            epoch: s.epoch,
            kick: s.kick.clone(),
            call: s.call.clone(),
        })
    }

    /// Writes the used element `k` places after `next_used`.
    fn put_used(&self, mem: &GuestMemoryMmap, k: u16, id: u16, len: u32) {
        let slot = (self.next_used + Wrapping(k)).0 % self.size;
        let at = self.used + 4 + u64::from(slot) * 8;
        let _ = mem.write_obj(u32::from(id).to_le(), GuestAddress(at));
        let _ = mem.write_obj(len.to_le(), GuestAddress(at + 4));
    }

    /// Makes `count` used elements written by `put_used` visible at once.
    fn publish_used(&mut self, mem: &GuestMemoryMmap, count: u16) {
        if count == 0 {
            return;
        }
        self.next_used += Wrapping(count);
        self.queue.set_next_used(self.next_used.0);
        fence(Ordering::Release);
        let _ = mem.store(
            self.next_used.0.to_le(),
            GuestAddress(self.used + 2),
            Ordering::Release,
        );
    }

    /// Interrupts the guest if it asked to be told about what was used since
    /// the last time (event index, or the no-interrupt flag without it).
    fn notify(&mut self, mem: &GuestMemoryMmap) {
        if self.next_used == self.signalled {
            return;
        }
        fence(Ordering::SeqCst);
        let need = if self.event_idx {
            let at = self.avail + 4 + 2 * u64::from(self.size);
            let used_event: u16 = mem
                .load(GuestAddress(at), Ordering::Relaxed)
                .map(u16::from_le)
                .unwrap_or(0);
            // vring_need_event: did the index cross used_event since last time?
            (self.next_used - Wrapping(used_event) - Wrapping(1))
                < (self.next_used - self.signalled)
        } else {
            let flags: u16 = mem
                .load(GuestAddress(self.avail), Ordering::Relaxed)
                .map(u16::from_le)
                .unwrap_or(0);
            flags & VRING_AVAIL_F_NO_INTERRUPT as u16 == 0
        };
        self.signalled = self.next_used;
        if need {
            if let Some(c) = &self.call {
                let _ = (&**c).write(&1u64.to_ne_bytes());
            }
        }
    }

    fn pending(&self, mem: &GuestMemoryMmap) -> bool {
        self.queue
            .avail_idx(mem, Ordering::Acquire)
            .map(|a| a.0 != self.queue.next_avail())
            .unwrap_or(false)
    }

    pub fn kick(&self) -> &Arc<File> {
        &self.kick
    }
}

/// The device as the dataplane runs it.
pub struct Rings {
    mem: Arc<GuestMemoryMmap>,
    hdr_len: usize,
    mrg: bool,
    caps: OffloadCaps,
    rx: Option<Ring>,
    tx: Option<Ring>,
    /// Frames from the guest that could not be switched.
    pub drops: FramingDrops,
}

impl Rings {
    /// Starts what `setup` describes; rings of `old` whose epoch did not
    /// change carry on where they were. Returns the rings and what could
    /// not be started.
    pub fn start(setup: &Setup, old: Option<Rings>) -> (Rings, Vec<String>) {
        let f = setup.features;
        let event_idx = has(f, VIRTIO_RING_F_EVENT_IDX);
        let mut old_rings = match old {
            Some(o) => [o.rx, o.tx],
            None => [None, None],
        };
        let mut errors = Vec::new();
        let mut rings: [Option<Ring>; 2] = [None, None];
        for q in [RXQ, TXQ] {
            let Some(s) = &setup.rings[q] else { continue };
            match old_rings[q].take() {
                Some(mut r) if r.epoch == s.epoch => {
                    r.call = s.call.clone();
                    rings[q] = Some(r);
                }
                _ => match Ring::start(&setup.mem, s, event_idx) {
                    Ok(r) => rings[q] = Some(r),
                    Err(e) => errors.push(format!("queue {q}: {e}")),
                },
            }
        }
        let [mut rx, tx] = rings;
        if let Some(r) = &mut rx {
            // The guest need not tell us it posted receive buffers until a
            // frame finds none and waits in the port's backlog.
            let _ = r.queue.disable_notification(&*setup.mem);
        }
        let rings = Rings {
            mem: setup.mem.clone(),
            hdr_len: if has(f, VIRTIO_F_VERSION_1) || has(f, VIRTIO_NET_F_MRG_RXBUF) {
                HDR_V1_LEN
            } else {
                VNET_HDR_LEN
            },
            mrg: has(f, VIRTIO_NET_F_MRG_RXBUF),
            caps: OffloadCaps {
                csum: has(f, VIRTIO_NET_F_GUEST_CSUM),
                tso4: has(f, VIRTIO_NET_F_GUEST_TSO4),
                tso6: has(f, VIRTIO_NET_F_GUEST_TSO6),
                uso: false,
            },
            rx,
            tx,
            drops: FramingDrops::default(),
        };
        (rings, errors)
    }

    /// Each ring's next available index, for `GET_VRING_BASE`.
    pub fn positions(&self) -> [Option<u16>; 2] {
        [
            self.rx.as_ref().map(|r| r.queue.next_avail()),
            self.tx.as_ref().map(|r| r.queue.next_avail()),
        ]
    }

    pub fn tx_kick(&self) -> Option<&Arc<File>> {
        self.tx.as_ref().map(|r| r.kick())
    }

    /// The eventfd the guest writes when it posts receive buffers (while
    /// asked to, see [`watch_rx`](Self::watch_rx)).
    pub fn rx_kick(&self) -> Option<&Arc<File>> {
        self.rx.as_ref().map(|r| r.kick())
    }

    /// Whether the guest posted receive buffers the switch has not filled.
    pub fn rx_room(&self) -> bool {
        self.rx.as_ref().is_some_and(|r| r.pending(&self.mem))
    }

    /// Asks the guest to kick when it posts receive buffers (`on`), or
    /// stops asking. True when buffers are already there, so a caller that
    /// waits for the kick must first use them.
    pub fn watch_rx(&mut self, on: bool) -> bool {
        let mem = &*self.mem;
        let Some(rx) = self.rx.as_mut() else {
            return false;
        };
        if on {
            rx.queue.enable_notification(mem).unwrap_or(false)
        } else {
            let _ = rx.queue.disable_notification(mem);
            false
        }
    }

    pub fn caps(&self) -> OffloadCaps {
        self.caps
    }

    /// Whether the guest queued frames the switch has not read.
    pub fn tx_pending(&self) -> bool {
        self.tx.as_ref().is_some_and(|r| r.pending(&self.mem))
    }

    /// Reads frames the guest transmitted into `batch` from slot 0.
    pub fn receive(&mut self, batch: &mut RxBatch) -> usize {
        let Some(tx) = self.tx.as_mut() else {
            return 0;
        };
        let mem = &*self.mem;
        let hdr_len = self.hdr_len;
        let max = RX_BUF_SIZE - RX_HEADROOM;
        let mut n = 0;
        let mut used: u16 = 0;
        while n < batch.capacity() && used < tx.size {
            let Some(chain) = tx.queue.pop_descriptor_chain(mem) else {
                // Ask for a kick before sleeping, then look once more: the
                // guest may have queued a frame just before it saw the request.
                match tx.queue.enable_notification(mem) {
                    Ok(true) => continue,
                    _ => break,
                }
            };
            let head = chain.head_index();
            tx.put_used(mem, used, head, 0);
            used += 1;
            let Ok(mut r) = chain.reader(mem) else {
                self.drops.bad_length += 1;
                continue;
            };
            let total = r.available_bytes();
            let mut h = [0u8; HDR_V1_LEN];
            if total < hdr_len + 14 || r.read_exact(&mut h[..hdr_len]).is_err() {
                self.drops.bad_length += 1;
                continue;
            }
            let len = total - hdr_len;
            if len > max {
                self.drops.oversized += 1;
                continue;
            }
            let Some(offload) = Offload::from_vnet_hdr(&le_to_native(&h)) else {
                self.drops.bad_length += 1;
                continue;
            };
            let slot = batch.slot_mut(n);
            if r.read_exact(&mut slot.buf_mut()[RX_HEADROOM..RX_HEADROOM + len])
                .is_err()
            {
                self.drops.bad_length += 1;
                continue;
            }
            slot.set(RX_HEADROOM, len, RxStatus::Complete);
            slot.set_offload(offload);
            n += 1;
        }
        tx.publish_used(mem, used);
        tx.notify(mem);
        n
    }

    /// Puts `frames` into the guest's receive buffers, in order.
    pub fn send(&mut self, frames: &[TxFrame<'_>]) -> (usize, Option<SendError>) {
        let Some(rx) = self.rx.as_mut() else {
            return (0, Some(SendError::LinkDown));
        };
        let mem = &*self.mem;
        let hdr_len = self.hdr_len;
        let mut staged: u16 = 0;
        let mut sent = 0;
        let mut err = None;
        'frames: for f in frames {
            let mut hdr = [0u8; HDR_V1_LEN];
            native_to_le(&f.offload.to_vnet_hdr(), &mut hdr);
            let need = hdr_len + f.data.len();
            let start = rx.queue.next_avail();
            let mut off = 0;
            let mut bufs: u16 = 0;
            let mut first: Option<GuestAddress> = None;
            let mut rearmed = false;
            while off < need {
                if staged + bufs >= rx.size {
                    rx.queue.set_next_avail(start);
                    err = Some(SendError::WouldBlock);
                    break 'frames;
                }
                let Some(chain) = rx.queue.pop_descriptor_chain(mem) else {
                    if !rearmed && bufs == 0 {
                        rearmed = true;
                        if let Ok(true) = rx.queue.enable_notification(mem) {
                            let _ = rx.queue.disable_notification(mem);
                            continue;
                        }
                    }
                    // No room for the whole frame: give back what it took.
                    rx.queue.set_next_avail(start);
                    err = Some(SendError::WouldBlock);
                    break 'frames;
                };
                let head = chain.head_index();
                if bufs == 0 {
                    first = chain
                        .clone()
                        .find(|d| d.is_write_only())
                        .filter(|d| d.len() as usize >= hdr_len)
                        .map(|d| d.addr());
                }
                let Ok(mut w) = chain.writer(mem) else {
                    rx.queue.set_next_avail(start);
                    err = Some(SendError::WouldBlock);
                    break 'frames;
                };
                let room = w.available_bytes();
                let k = room.min(need - off);
                let mut done = 0;
                if off < hdr_len {
                    let h = (hdr_len - off).min(k);
                    if w.write_all(&hdr[off..off + h]).is_err() {
                        break;
                    }
                    done += h;
                }
                if done < k {
                    let d0 = off + done - hdr_len;
                    let d1 = off + k - hdr_len;
                    if w.write_all(&f.data[d0..d1]).is_err() {
                        break;
                    }
                    done = k;
                }
                rx.put_used(mem, staged + bufs, head, done as u32);
                bufs += 1;
                off += done;
                if off < need && (!self.mrg || room == 0) {
                    break;
                }
            }
            if off < need {
                // Does not fit the guest's buffers (no MRG_RXBUF and a
                // frame above its buffer size): nothing of it is used.
                rx.queue.set_next_avail(start);
                err = Some(SendError::TooBig);
                break;
            }
            if hdr_len == HDR_V1_LEN {
                let Some(at) = first else {
                    rx.queue.set_next_avail(start);
                    err = Some(SendError::TooBig);
                    break;
                };
                let _ = mem.write_obj(bufs.to_le(), GuestAddress(at.raw_value() + 10));
            }
            staged += bufs;
            sent += 1;
        }
        rx.publish_used(mem, staged);
        rx.notify(mem);
        (sent, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtio_bindings::virtio_ring::VRING_DESC_F_WRITE;

    const SIZE: u16 = 8;
    const DESC: u64 = 0x1000;
    const AVAIL: u64 = 0x2000;
    const USED: u64 = 0x3000;
    const BUFS: u64 = 0x10000;

    fn memory() -> Arc<GuestMemoryMmap> {
        Arc::new(GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x100000)]).unwrap())
    }

    fn null() -> Arc<File> {
        Arc::new(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .unwrap(),
        )
    }

    fn ring_setup(base: u64) -> RingSetup {
        RingSetup {
            size: SIZE,
            desc: base + DESC,
            avail: base + AVAIL,
            used: base + USED,
            base: 0,
            epoch: 1,
            kick: null(),
            call: Some(null()),
        }
    }

    /// The driver's side: one single-descriptor chain per buffer.
    fn offer(mem: &GuestMemoryMmap, base: u64, bufs: &[(u64, u32, bool)]) {
        for (i, (addr, len, write)) in bufs.iter().enumerate() {
            let d = GuestAddress(base + DESC + 16 * i as u64);
            mem.write_obj(*addr, d).unwrap();
            mem.write_obj(*len, d.unchecked_add(8)).unwrap();
            let flags = if *write { VRING_DESC_F_WRITE as u16 } else { 0 };
            mem.write_obj(flags, d.unchecked_add(12)).unwrap();
            mem.write_obj(i as u16, GuestAddress(base + AVAIL + 4 + 2 * i as u64))
                .unwrap();
        }
        mem.write_obj(bufs.len() as u16, GuestAddress(base + AVAIL + 2))
            .unwrap();
    }

    fn used(mem: &GuestMemoryMmap, base: u64) -> (u16, Vec<(u32, u32)>) {
        let idx: u16 = mem.read_obj(GuestAddress(base + USED + 2)).unwrap();
        let elems = (0..idx as u64)
            .map(|i| {
                let at = GuestAddress(base + USED + 4 + 8 * i);
                (
                    mem.read_obj(at).unwrap(),
                    mem.read_obj(at.unchecked_add(4)).unwrap(),
                )
            })
            .collect();
        (idx, elems)
    }

    fn features() -> u64 {
        (1 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_NET_F_MRG_RXBUF) | (1 << VIRTIO_NET_F_GUEST_TSO4)
    }

    #[test]
    fn a_frame_spreads_over_merged_buffers_and_appears_at_once() {
        let mem = memory();
        offer(&mem, 0, &[(BUFS, 1536, true), (BUFS + 0x1000, 1536, true)]);
        let setup = Setup {
            mem: mem.clone(),
            features: features(),
            rings: [Some(ring_setup(0)), None],
        };
        let (mut rings, errors) = Rings::start(&setup, None);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(rings.caps().tso4 && !rings.caps().tso6);
        let frame: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let (n, err) = rings.send(&[TxFrame::plain(&frame)]);
        assert_eq!((n, err.is_none()), (1, true));
        let (idx, elems) = used(&mem, 0);
        assert_eq!(idx, 2);
        assert_eq!(elems, vec![(0, 1536), (1, 3012 - 1536)]);
        let num_buffers: u16 = mem.read_obj(GuestAddress(BUFS + 10)).unwrap();
        assert_eq!(num_buffers, 2);
        let mut got = vec![0u8; 1536 - 12];
        mem.read_slice(&mut got, GuestAddress(BUFS + 12)).unwrap();
        assert_eq!(got, frame[..1524]);
        let mut tail = vec![0u8; 3000 - 1524];
        mem.read_slice(&mut tail, GuestAddress(BUFS + 0x1000))
            .unwrap();
        assert_eq!(tail, frame[1524..]);
        // No buffers left: the next frame is refused whole, nothing used.
        let (n, err) = rings.send(&[TxFrame::plain(&frame[..100])]);
        assert_eq!(n, 0);
        assert!(matches!(err, Some(SendError::WouldBlock)));
        assert_eq!(used(&mem, 0).0, 2);
    }

    #[test]
    fn transmitted_frames_arrive_with_their_offload() {
        let mem = memory();
        let base = 0x40000;
        let wire = [1u8, 1, 54, 0, 0xa8, 0x05, 34, 0, 16, 0, 0, 0];
        let frame: Vec<u8> = (0..200u32).map(|i| (i * 7) as u8).collect();
        mem.write_slice(&wire, GuestAddress(base + BUFS)).unwrap();
        mem.write_slice(&frame, GuestAddress(base + BUFS + 12))
            .unwrap();
        offer(&mem, base, &[(base + BUFS, 212, false)]);
        let setup = Setup {
            mem: mem.clone(),
            features: features(),
            rings: [None, Some(ring_setup(base))],
        };
        let (mut rings, _) = Rings::start(&setup, None);
        assert!(rings.tx_pending());
        let mut batch = RxBatch::new(4);
        assert_eq!(rings.receive(&mut batch), 1);
        let slot = batch.slot(0);
        assert_eq!(slot.frame(), &frame[..]);
        let g = slot.offload().gso.unwrap();
        assert_eq!((g.size, g.hdr_len), (1448, 54));
        assert_eq!(used(&mem, base).0, 1);
        assert!(!rings.tx_pending());
        assert_eq!(rings.positions(), [None, Some(1)]);
    }

    #[test]
    fn headers_convert_between_wire_and_native_order() {
        let wire = [1u8, 1, 66, 0, 0xa8, 0x05, 34, 0, 16, 0, 1, 0];
        let o = Offload::from_vnet_hdr(&le_to_native(&wire)).unwrap();
        let g = o.gso.unwrap();
        assert_eq!((g.hdr_len, g.size), (66, 1448));
        assert_eq!(o.csum, Some((34, 16)));
        let mut back = [0u8; HDR_V1_LEN];
        native_to_le(&o.to_vnet_hdr(), &mut back);
        assert_eq!(back[..10], wire[..10]);
    }
}
