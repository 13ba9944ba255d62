//! Receive coalescing (software GRO): a run of consecutive TCP segments of
//! one flow becomes one GSO super-frame, so an egress port that takes
//! super-frames gets one frame (one send, one pass through the receiving
//! stack) instead of dozens.
//!
//! The rules make the super-frame equivalent to the segments it replaces:
//! cut again at the same size (by the receiving stack's GSO or a NIC's TSO)
//! it gives back the same headers and payload. So every header byte must
//! match except lengths, checksums, the IPv4 identification (counting up by
//! one, or fixed when DF is set) and the sequence number (continuing the
//! run); every segment but the last carries the run's payload size; only the
//! last may carry PSH. Segments with SYN, FIN, RST, URG or CWR, IP options,
//! IPv6 extension headers, fragments or Ethernet padding never merge; those
//! are the cases where Linux GRO flushes too. Checksums are the caller's to
//! verify (see [`checksum_ok`]): the super-frame leaves with a partial
//! checksum, which a receiver trusts.

use super::checksum::{finish, sum16};
use super::gso::put16;
use super::ip::IpHeaders;

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;
const TCP_URG: u8 = 0x20;
const TCP_CWR: u8 = 0x80;
/// Flags that end a flow's coalescing at Linux GRO too.
const NEVER_MERGED: u8 = TCP_FIN | TCP_SYN | TCP_RST | TCP_URG | TCP_CWR;
/// Offset of the checksum in the TCP header.
pub const TCP_CSUM_OFFSET: usize = 16;
/// IPv4 total length and IPv6 payload length are 16-bit.
const MAX_IP_LEN: usize = 0xffff;

/// Where a coalescible TCP segment's headers are, and what a run compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment {
    /// Offset of the IP header.
    pub ip: usize,
    /// Offset of the TCP header.
    pub l4: usize,
    /// Offset of the payload: the length of all headers.
    pub payload: usize,
    pub v4: bool,
    seq: u32,
    /// Payload bytes.
    pub len: usize,
    psh: bool,
    /// IPv4 identification (0 for IPv6).
    id: u16,
    /// IPv4 Don't Fragment (true for IPv6, which routers never fragment).
    df: bool,
}

impl TcpSegment {
    /// Parses `frame` as a TCP segment that may be coalesced; `None` for
    /// anything else (not TCP, no payload, flags or headers that never merge).
    pub fn parse(frame: &[u8]) -> Option<TcpSegment> {
        let h = IpHeaders::locate(frame).ok()?;
        // TCP, no IPv4 options or IPv6 extension headers, not a fragment,
        // and no padding after the datagram: the length fields can be
        // rewritten.
        let ok =
            h.proto == 6 && !h.has_options() && !h.is_fragment() && h.ip + h.ip_len == frame.len();
        ok.then_some(())?;
        let (ip, l4, v4, id, df) = (h.ip, h.l4(), h.v4, h.id, h.dont_fragment());
        let th = frame.get(l4..l4 + 20)?;
        let doff = (th[12] >> 4) as usize * 4;
        let flags = th[13];
        let payload = l4 + doff;
        let ok = doff >= 20
            && payload < frame.len()
            && flags & TCP_ACK != 0
            && flags & NEVER_MERGED == 0;
        ok.then_some(TcpSegment {
            ip,
            l4,
            payload,
            v4,
            seq: u32::from_be_bytes([th[4], th[5], th[6], th[7]]),
            len: frame.len() - payload,
            psh: flags & TCP_PSH != 0,
            id,
            df,
        })
    }

    /// Whether a run may take another segment after this one: a PSH or a
    /// short segment (not `mss` bytes) is the last of its run.
    pub fn ends_run(&self, mss: usize) -> bool {
        self.psh || self.len != mss
    }

    /// Whether the segment carries PSH.
    pub fn psh(&self) -> bool {
        self.psh
    }
}

/// Whether the TCP checksum of `frame` (parsed as `s`) is right.
pub fn checksum_ok(frame: &[u8], s: &TcpSegment) -> bool {
    let l4_len = frame.len() - s.l4;
    let pseudo = if s.v4 {
        sum16(0, &frame[s.ip + 12..s.ip + 20])
    } else {
        sum16(0, &frame[s.ip + 8..s.ip + 40])
    };
    let sum = sum16(
        pseudo.wrapping_add(6).wrapping_add(l4_len as u32),
        &frame[s.l4..],
    );
    finish(sum) == 0
}

/// Whether segment `next` (in `next_frame`) continues a run that started
/// with `first` (in `first_frame`) and whose last segment so far is `prev`,
/// carrying `run_len` payload bytes in all.
pub fn continues(
    first_frame: &[u8],
    first: &TcpSegment,
    prev: &TcpSegment,
    run_len: usize,
    next_frame: &[u8],
    next: &TcpSegment,
) -> bool {
    if prev.ends_run(first.len)
        || next.payload != first.payload
        || next.l4 != first.l4
        || next.v4 != first.v4
        || next.len > first.len
        || next.seq != prev.seq.wrapping_add(prev.len as u32)
        || first.payload - first.ip + run_len + next.len > MAX_IP_LEN
    {
        return false;
    }
    if first.v4 {
        let counting = next.id == prev.id.wrapping_add(1);
        if !(counting || (first.df && next.id == prev.id)) {
            return false;
        }
    }
    same_headers(first_frame, first, next_frame)
}

/// Every header byte equal but the ones a run changes from segment to
/// segment: lengths, IPv4 identification and checksums, TCP sequence
/// number, PSH and checksum.
fn same_headers(a: &[u8], s: &TcpSegment, b: &[u8]) -> bool {
    let (ip, l4, end) = (s.ip, s.l4, s.payload);
    let ip_same = if s.v4 {
        // version..tos | (total length) (identification) | flags..protocol
        // | (header checksum) | addresses
        a[..ip + 2] == b[..ip + 2]
            && a[ip + 6..ip + 10] == b[ip + 6..ip + 10]
            && a[ip + 12..l4] == b[ip + 12..l4]
    } else {
        // version..flow label | (payload length) | next header..addresses
        a[..ip + 4] == b[..ip + 4] && a[ip + 6..l4] == b[ip + 6..l4]
    };
    ip_same
        // ports | (sequence) | ack, offset | flags but PSH | window | (checksum) | urgent, options
        && a[l4..l4 + 4] == b[l4..l4 + 4]
        && a[l4 + 8..l4 + 13] == b[l4 + 8..l4 + 13]
        && a[l4 + 13] & !TCP_PSH == b[l4 + 13] & !TCP_PSH
        && a[l4 + 14..l4 + 16] == b[l4 + 14..l4 + 16]
        && a[l4 + 18..end] == b[l4 + 18..end]
}

/// The super-frame written by [`build`]: where it is, and the offload it
/// must be sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coalesced {
    pub start: usize,
    pub len: usize,
    /// Payload bytes per segment (the GSO size).
    pub mss: u16,
    /// Length of all headers (the GSO header length).
    pub hdr_len: u16,
    /// Where the partial TCP checksum starts (the TCP header).
    pub csum_start: u16,
    pub v4: bool,
}

/// Appends to `out` the super-frame made of `first_frame`'s headers and the
/// payloads of the run's frames (`first_frame` included), in order. `psh`:
/// whether the run's last segment had PSH. The TCP checksum is left partial
/// (the pseudo-header sum in place), as a sender with checksum offload
/// leaves it.
pub fn build<'a>(
    out: &mut Vec<u8>,
    first_frame: &[u8],
    first: &TcpSegment,
    frames: impl Iterator<Item = &'a [u8]>,
    psh: bool,
) -> Coalesced {
    let start = out.len();
    out.extend_from_slice(&first_frame[..first.payload]);
    for f in frames {
        out.extend_from_slice(&f[first.payload..]);
    }
    let frame = &mut out[start..];
    let (ip, l4) = (first.ip, first.l4);
    let l4_len = frame.len() - l4;
    let pseudo = if first.v4 {
        put16(frame, ip + 2, (frame.len() - ip) as u16);
        put16(frame, ip + 10, 0);
        let c = finish(sum16(0, &frame[ip..l4]));
        put16(frame, ip + 10, c);
        sum16(0, &frame[ip + 12..ip + 20])
    } else {
        put16(frame, ip + 4, (frame.len() - ip - 40) as u16);
        sum16(0, &frame[ip + 8..ip + 40])
    };
    frame[l4 + 13] = (frame[l4 + 13] & !TCP_PSH) | if psh { TCP_PSH } else { 0 };
    // The folded pseudo-header sum, not complemented: what the receiver
    // (or the GSO that cuts it) adds the payload to.
    let partial = !finish(pseudo.wrapping_add(6).wrapping_add(l4_len as u32));
    put16(frame, l4 + TCP_CSUM_OFFSET, partial);
    Coalesced {
        start,
        len: frame.len(),
        mss: first.len as u16,
        hdr_len: first.payload as u16,
        csum_start: l4 as u16,
        v4: first.v4,
    }
}

#[cfg(test)]
mod tests;
