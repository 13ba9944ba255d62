//! `RxBatch`: preallocated receive buffers, filled by a port in one call.

use std::net::Ipv4Addr;

use super::offload::Offload;

/// Frames moved per receive call.
pub const BATCH_SIZE: usize = 32;
/// Room in front of each frame for the virtio-net header the kernel writes
/// just before it, and so a VLAN tag the kernel stripped can be put back in
/// place (or one pushed) without copying the frame.
pub const RX_HEADROOM: usize = 16;
/// Bytes per receive buffer: the largest frame a Linux link can carry (64 KiB
/// MTU plus header and two tags) plus headroom.
pub const RX_BUF_SIZE: usize = RX_HEADROOM + 65536 + 32;

/// Whether a received frame arrived whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RxStatus {
    #[default]
    Complete,
    /// The kernel delivered `len` of `wire_len` bytes.
    Truncated { wire_len: usize },
    /// The port received it but cannot hand it on (a tunnel packet that
    /// does not decapsulate): counted, never switched.
    Invalid(RxInvalid),
}

/// Why a port refused what it received, for the drop counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxInvalid {
    /// Shorter than a VXLAN header and an inner Ethernet header.
    VxlanShort,
    /// The I flag is missing or reserved bits are set.
    VxlanBadFlags,
    /// A VNI other than the port's.
    VxlanUnknownVni,
    /// Sent from the port's own local address (a loop in the underlay).
    VxlanOwnSource,
}

/// One receive buffer and the frame in it.
#[derive(Debug)]
pub struct RxSlot {
    buf: Box<[u8]>,
    start: usize,
    len: usize,
    status: RxStatus,
    csum_partial: bool,
    offload: Offload,
    rx_ts_ns: u64,
    tunnel_src: Option<Ipv4Addr>,
}

impl RxSlot {
    fn new(size: usize) -> RxSlot {
        RxSlot {
            buf: vec![0u8; size].into_boxed_slice(),
            start: RX_HEADROOM,
            len: 0,
            status: RxStatus::Complete,
            csum_partial: false,
            offload: Offload::NONE,
            rx_ts_ns: 0,
            tunnel_src: None,
        }
    }

    /// The whole buffer, for a backend to receive into.
    pub fn buf_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    pub fn buf(&self) -> &[u8] {
        &self.buf
    }

    /// Exchanges the slot's buffer with `other` (a backend keeping what it
    /// received for a later batch, or handing over one it kept), no copy.
    pub fn swap_buf(&mut self, other: &mut Box<[u8]>) {
        std::mem::swap(&mut self.buf, other);
    }

    /// Records where the frame sits in the buffer. `start + len` is clamped to
    /// the buffer so `frame()` can never panic.
    pub fn set(&mut self, start: usize, len: usize, status: RxStatus) {
        let start = start.min(self.buf.len());
        self.start = start;
        self.len = len.min(self.buf.len() - start);
        self.status = status;
        self.csum_partial = false;
        self.offload = Offload::NONE;
        self.rx_ts_ns = 0;
        self.tunnel_src = None;
    }

    /// The remote tunnel endpoint (outer source address) a decapsulated
    /// frame came from; `None` for frames of ports that are no tunnel.
    pub fn set_tunnel_src(&mut self, vtep: Option<Ipv4Addr>) {
        self.tunnel_src = vtep;
    }

    pub fn tunnel_src(&self) -> Option<Ipv4Addr> {
        self.tunnel_src
    }

    /// When the frame was received, ns since the Unix epoch: the kernel's
    /// timestamp where the port has one, else when the switch read it.
    pub fn set_rx_ts(&mut self, ns: u64) {
        self.rx_ts_ns = ns;
    }

    /// 0 when unknown.
    pub fn rx_ts(&self) -> u64 {
        self.rx_ts_ns
    }

    /// The offload state the kernel reported with the frame.
    pub fn set_offload(&mut self, offload: Offload) {
        self.offload = offload;
    }

    pub fn offload(&self) -> Offload {
        self.offload
    }

    /// Marks the frame's TCP/UDP checksum as left unfinished by its sender
    /// (the kernel's CHECKSUM_PARTIAL) where no virtio-net header said where
    /// it starts; the dataplane completes it by parsing the headers.
    pub fn set_csum_partial(&mut self, partial: bool) {
        self.csum_partial = partial;
    }

    pub fn csum_partial(&self) -> bool {
        self.csum_partial
    }

    pub fn frame(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    pub fn frame_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }

    pub fn status(&self) -> RxStatus {
        self.status
    }
}

/// A batch of receive buffers, allocated once and reused for every call.
#[derive(Debug)]
pub struct RxBatch {
    slots: Vec<RxSlot>,
    filled: usize,
}

impl RxBatch {
    pub fn new(capacity: usize) -> RxBatch {
        Self::with_buf_size(capacity, RX_BUF_SIZE)
    }

    pub fn with_buf_size(capacity: usize, buf_size: usize) -> RxBatch {
        RxBatch {
            slots: (0..capacity).map(|_| RxSlot::new(buf_size)).collect(),
            filled: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Frames received by the last call.
    pub fn len(&self) -> usize {
        self.filled
    }

    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    pub fn clear(&mut self) {
        self.filled = 0;
    }

    /// Backends fill slots `0..n` then call `set_len(n)`.
    pub fn slots_mut(&mut self) -> &mut [RxSlot] {
        &mut self.slots
    }

    /// Ends a receive of `n` frames whose arrival is the moment they were
    /// read (ports with no kernel timestamp).
    pub fn finish_read(&mut self, n: usize, read_at: u64) {
        self.set_len(n);
        for s in &mut self.slots[..self.filled] {
            s.set_rx_ts(read_at);
        }
    }

    pub fn set_len(&mut self, n: usize) {
        self.filled = n.min(self.slots.len());
    }

    pub fn slot(&self, i: usize) -> &RxSlot {
        &self.slots[i]
    }

    pub fn slot_mut(&mut self, i: usize) -> &mut RxSlot {
        &mut self.slots[i]
    }

    /// The filled slots.
    pub fn iter(&self) -> impl Iterator<Item = &RxSlot> {
        self.slots[..self.filled].iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_clamp_and_report() {
        let mut b = RxBatch::with_buf_size(2, 64);
        assert_eq!(b.capacity(), 2);
        let s = b.slot_mut(0);
        s.buf_mut()[8..12].copy_from_slice(&[1, 2, 3, 4]);
        s.set(8, 4, RxStatus::Complete);
        b.slot_mut(1)
            .set(60, 100, RxStatus::Truncated { wire_len: 100 });
        b.set_len(5);
        assert_eq!(b.len(), 2);
        assert_eq!(b.slot(0).frame(), &[1, 2, 3, 4]);
        assert_eq!(b.slot(1).frame().len(), 4);
        assert_eq!(b.iter().count(), 2);
    }
}
