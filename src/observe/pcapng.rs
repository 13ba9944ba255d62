//! A minimal pcapng writer: one section, Ethernet interfaces, enhanced packet
//! blocks with direction, packet id and comment, and interface statistics.
//!
//! Written from the pcapng specification (draft-ietf-opsawg-pcapng). Only
//! what `l2sw capture` needs is here; nothing reads pcapng.
//!
//! Why these choices:
//! - Blocks are always little-endian: the byte-order magic tells readers, and
//!   a fixed order keeps the bytes identical on every host (tests compare
//!   them).
//! - Each block is assembled in a scratch buffer and handed to the sink with
//!   one `write_all`, so a reader on a pipe (`tshark -r -`) never waits on a
//!   half-written block while we build the rest, and a failed write never
//!   leaves a block partly encoded. The buffer is reused: no allocation per
//!   packet once it has grown to the largest block.
//! - Timestamps are nanoseconds (`if_tsresol` = 9), the unit the switch's
//!   clock hands out; a u64 of nanoseconds since 1970 lasts until 2554.
//! - Flushing is left to the caller: a file wants large writes, a live pipe
//!   wants a flush per batch.

use std::io::{self, Write};

/// Block types.
const BT_SHB: u32 = 0x0A0D_0D0A;
const BT_IDB: u32 = 0x0000_0001;
const BT_ISB: u32 = 0x0000_0005;
const BT_EPB: u32 = 0x0000_0006;

/// Written in the host's order it reads 0x1A2B3C4D; readers use it to detect
/// the byte order of the whole section.
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

const LINKTYPE_ETHERNET: u16 = 1;

/// Option codes (the same `opt_comment` / `opt_endofopt` in every block).
const OPT_ENDOFOPT: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_OS: u16 = 3;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_DESCRIPTION: u16 = 3;
const IF_TSRESOL: u16 = 9;
const EPB_FLAGS: u16 = 2;
const EPB_DROPCOUNT: u16 = 4;
const EPB_PACKETID: u16 = 5;
const ISB_IFDROP: u16 = 5;

/// `epb_flags` bits 0-1: 01 inbound, 10 outbound (00: not known).
const EPB_FLAG_INBOUND: u32 = 0b01;
const EPB_FLAG_OUTBOUND: u32 = 0b10;

/// An option value's length is a u16.
const MAX_OPTION_LEN: usize = u16::MAX as usize;

/// Which way a frame was going through the port the record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received by the switch on this port.
    Inbound,
    /// Sent by the switch out of this port.
    Outbound,
}

impl Direction {
    fn epb_flags(self) -> u32 {
        match self {
            Direction::Inbound => EPB_FLAG_INBOUND,
            Direction::Outbound => EPB_FLAG_OUTBOUND,
        }
    }
}

/// One frame record for [`PcapngWriter::write_packet`].
#[derive(Debug, Clone, Copy)]
pub struct PacketRecord<'a> {
    /// Interface id returned by [`PcapngWriter::add_interface`].
    pub iface: u32,
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// The captured bytes, already cut to the interface's snaplen.
    pub data: &'a [u8],
    /// Length of the frame on the wire (at least `data.len()`).
    pub orig_len: u32,
    pub direction: Direction,
    /// The same id on the ingress record and on every egress copy of a frame.
    pub packet_id: u64,
    /// Free text, e.g. the switch's decision ("flood: unknown unicast").
    pub comment: Option<&'a str>,
    /// Frames lost between this record and the previous one on the interface.
    pub drop_count: Option<u64>,
}

/// A record the writer refuses because the file would be invalid.
/// Returned inside an `io::Error` of kind `InvalidInput`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("pcapng: unknown interface id {0}")]
    UnknownInterface(u32),
    #[error("pcapng: {captured} captured bytes exceed the snaplen {snaplen} of interface {iface}")]
    OverSnaplen {
        iface: u32,
        captured: usize,
        snaplen: u32,
    },
    #[error("pcapng: {captured} captured bytes exceed the original length {orig_len}")]
    OverOriginal { captured: usize, orig_len: u32 },
    #[error("pcapng: more than 2^32 interfaces")]
    TooManyInterfaces,
    #[error("pcapng: block of {0} bytes is too large")]
    TooLarge(usize),
}

impl From<RecordError> for io::Error {
    fn from(e: RecordError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// Writes one pcapng section to `W`.
#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    out: W,
    /// Snaplen per interface id; the index is the id.
    snaplens: Vec<u32>,
    /// Scratch space one block is assembled in.
    buf: Vec<u8>,
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the Section Header Block, with `shb_userappl` "l2sw VERSION" and
    /// `shb_os` naming the running kernel when it can be read.
    pub fn new(out: W) -> io::Result<Self> {
        Self::with_os(out, running_os().as_deref())
    }

    /// Like [`new`](Self::new) with an explicit `shb_os` (or none), for
    /// output that must not depend on the host.
    pub fn with_os(out: W, os: Option<&str>) -> io::Result<Self> {
        let mut w = PcapngWriter {
            out,
            snaplens: Vec::new(),
            buf: Vec::with_capacity(256),
        };
        let userappl = format!("l2sw {}", env!("CARGO_PKG_VERSION"));
        w.begin(BT_SHB);
        w.put_u32(BYTE_ORDER_MAGIC);
        w.put_u16(1); // major version
        w.put_u16(0); // minor version
        w.put_u64(u64::MAX); // section length: not known (we stream)
        if let Some(os) = os {
            w.put_option(SHB_OS, os.as_bytes());
        }
        w.put_option(SHB_USERAPPL, userappl.as_bytes());
        w.put_end_of_options();
        w.finish()?;
        Ok(w)
    }

    /// Writes an Interface Description Block for an Ethernet port named `name`
    /// and returns its interface id (0, 1, 2, ... in call order). A `snaplen`
    /// of 0 means no limit.
    pub fn add_interface(
        &mut self,
        name: &str,
        description: Option<&str>,
        snaplen: u32,
    ) -> io::Result<u32> {
        let id = u32::try_from(self.snaplens.len()).map_err(|_| RecordError::TooManyInterfaces)?;
        self.begin(BT_IDB);
        self.put_u16(LINKTYPE_ETHERNET);
        self.put_u16(0); // reserved
        self.put_u32(snaplen);
        self.put_option(IF_NAME, name.as_bytes());
        if let Some(d) = description {
            self.put_option(IF_DESCRIPTION, d.as_bytes());
        }
        // Most significant bit clear: a power of ten, 10^-9 seconds.
        self.put_option(IF_TSRESOL, &[9]);
        self.put_end_of_options();
        self.finish()?;
        self.snaplens.push(snaplen);
        Ok(id)
    }

    /// Writes an Enhanced Packet Block.
    pub fn write_packet(&mut self, p: &PacketRecord<'_>) -> io::Result<()> {
        let snaplen = *self
            .snaplens
            .get(p.iface as usize)
            .ok_or(RecordError::UnknownInterface(p.iface))?;
        if snaplen != 0 && p.data.len() > snaplen as usize {
            return Err(RecordError::OverSnaplen {
                iface: p.iface,
                captured: p.data.len(),
                snaplen,
            }
            .into());
        }
        if p.data.len() > p.orig_len as usize {
            return Err(RecordError::OverOriginal {
                captured: p.data.len(),
                orig_len: p.orig_len,
            }
            .into());
        }
        self.begin(BT_EPB);
        self.put_u32(p.iface);
        self.put_timestamp(p.ts_ns);
        self.put_u32(p.data.len() as u32); // <= orig_len, so it fits
        self.put_u32(p.orig_len);
        self.buf.extend_from_slice(p.data);
        self.pad();
        self.put_option(EPB_FLAGS, &p.direction.epb_flags().to_le_bytes());
        self.put_option(EPB_PACKETID, &p.packet_id.to_le_bytes());
        if let Some(n) = p.drop_count {
            self.put_option(EPB_DROPCOUNT, &n.to_le_bytes());
        }
        if let Some(c) = p.comment {
            self.put_option(OPT_COMMENT, c.as_bytes());
        }
        self.put_end_of_options();
        self.finish()
    }

    /// Writes an Interface Statistics Block: `dropped` frames the capture
    /// skipped on `iface` (`isb_ifdrop`), and an optional comment.
    pub fn write_stats(
        &mut self,
        iface: u32,
        ts_ns: u64,
        dropped: u64,
        comment: Option<&str>,
    ) -> io::Result<()> {
        if iface as usize >= self.snaplens.len() {
            return Err(RecordError::UnknownInterface(iface).into());
        }
        self.begin(BT_ISB);
        self.put_u32(iface);
        self.put_timestamp(ts_ns);
        self.put_option(ISB_IFDROP, &dropped.to_le_bytes());
        if let Some(c) = comment {
            self.put_option(OPT_COMMENT, c.as_bytes());
        }
        self.put_end_of_options();
        self.finish()
    }

    /// Number of interfaces described so far.
    pub fn interface_count(&self) -> u32 {
        self.snaplens.len() as u32
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Returns the sink without flushing it.
    pub fn into_inner(self) -> W {
        self.out
    }

    // --- block assembly -------------------------------------------------

    /// Starts a block: type and a placeholder for the total length.
    fn begin(&mut self, block_type: u32) {
        self.buf.clear();
        self.put_u32(block_type);
        self.put_u32(0);
    }

    /// Appends the trailing length, patches the leading one, writes the block.
    fn finish(&mut self) -> io::Result<()> {
        let total = self.buf.len() + 4;
        debug_assert_eq!(total % 4, 0);
        let len = u32::try_from(total).map_err(|_| RecordError::TooLarge(total))?;
        self.buf[4..8].copy_from_slice(&len.to_le_bytes());
        self.put_u32(len);
        self.out.write_all(&self.buf)
    }

    fn put_u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn put_u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn put_u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// pcapng splits 64-bit timestamps into two u32s, high word first, each
    /// in the section's byte order (so not a plain little-endian u64).
    fn put_timestamp(&mut self, ts: u64) {
        self.put_u32((ts >> 32) as u32);
        self.put_u32(ts as u32);
    }

    fn pad(&mut self) {
        let n = (4 - self.buf.len() % 4) % 4;
        self.buf.extend_from_slice(&[0u8; 3][..n]);
    }

    /// Appends one option. Values longer than an option can hold (64 KiB) are
    /// cut, at a UTF-8 boundary when they are text, rather than failing the
    /// whole record over a long comment.
    fn put_option(&mut self, code: u16, value: &[u8]) {
        let value = &value[..utf8_floor(value, MAX_OPTION_LEN)];
        self.put_u16(code);
        self.put_u16(value.len() as u16);
        self.buf.extend_from_slice(value);
        self.pad();
    }

    fn put_end_of_options(&mut self) {
        self.put_u16(OPT_ENDOFOPT);
        self.put_u16(0);
    }
}

/// The largest length `<= max` that does not split a UTF-8 sequence (for
/// non-text values it is simply `min(len, max)` in practice: they are short).
fn utf8_floor(b: &[u8], max: usize) -> usize {
    if b.len() <= max {
        return b.len();
    }
    let mut n = max;
    // Continuation bytes are 0b10xx_xxxx; back up to the start of a sequence.
    while n > 0 && b[n] & 0xc0 == 0x80 {
        n -= 1;
    }
    n
}

/// "Linux 6.1.0-18-amd64", read from procfs (no syscall wrappers needed).
fn running_os() -> Option<String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let kind =
        std::fs::read_to_string("/proc/sys/kernel/ostype").unwrap_or_else(|_| "Linux".to_string());
    Some(format!("{} {}", kind.trim(), release.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::sync::mpsc;
    use std::time::Duration;

    // --- a tiny test-only reader, to check the structure byte by byte ---

    #[derive(Debug)]
    struct Block {
        kind: u32,
        /// Body between the leading length and the trailing one.
        body: Vec<u8>,
    }

    fn u16_at(b: &[u8], off: usize) -> u16 {
        u16::from_le_bytes(b[off..off + 2].try_into().unwrap())
    }

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    fn u64_at(b: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
    }

    /// Splits a stream into blocks, checking both lengths and alignment.
    fn blocks(mut b: &[u8]) -> Vec<Block> {
        let mut out = Vec::new();
        while !b.is_empty() {
            assert!(b.len() >= 12, "short block tail: {} bytes", b.len());
            let kind = u32_at(b, 0);
            let len = u32_at(b, 4) as usize;
            assert_eq!(len % 4, 0, "block length {len} not a multiple of 4");
            assert!(len >= 12 && len <= b.len(), "bad block length {len}");
            assert_eq!(u32_at(b, len - 4) as usize, len, "trailing length differs");
            out.push(Block {
                kind,
                body: b[8..len - 4].to_vec(),
            });
            b = &b[len..];
        }
        out
    }

    /// Parses an option list; checks padding and that it ends with
    /// opt_endofopt exactly at the end of the body.
    fn options(mut b: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            assert!(b.len() >= 4, "options not terminated by opt_endofopt");
            let code = u16_at(b, 0);
            let len = u16_at(b, 2) as usize;
            if code == OPT_ENDOFOPT {
                assert_eq!(len, 0);
                assert_eq!(b.len(), 4, "bytes after opt_endofopt");
                return out;
            }
            let padded = len.div_ceil(4) * 4;
            assert!(
                b[4 + len..4 + padded].iter().all(|&x| x == 0),
                "padding not zero"
            );
            out.push((code, b[4..4 + len].to_vec()));
            b = &b[4 + padded..];
        }
    }

    fn opt(opts: &[(u16, Vec<u8>)], code: u16) -> Option<&[u8]> {
        opts.iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_slice())
    }

    fn frame(dst: u8, src: u8, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, dst]);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, src]);
        // IEEE local experimental EtherType: tshark decodes nothing further.
        f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
        f
    }

    fn writer() -> PcapngWriter<Vec<u8>> {
        PcapngWriter::with_os(Vec::new(), Some("Linux test")).unwrap()
    }

    #[test]
    fn section_header_block_layout() {
        let out = writer().into_inner();
        // Type, then the magic right after the length, in little-endian.
        assert_eq!(&out[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
        assert_eq!(&out[8..12], &[0x4d, 0x3c, 0x2b, 0x1a]);
        let b = blocks(&out);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].kind, BT_SHB);
        let body = &b[0].body;
        assert_eq!(u32_at(body, 0), 0x1A2B3C4D);
        assert_eq!((u16_at(body, 4), u16_at(body, 6)), (1, 0));
        assert_eq!(u64_at(body, 8), u64::MAX, "section length must be -1");
        let opts = options(&body[16..]);
        let app = format!("l2sw {}", env!("CARGO_PKG_VERSION"));
        assert_eq!(opt(&opts, SHB_USERAPPL), Some(app.as_bytes()));
        assert_eq!(opt(&opts, SHB_OS), Some(&b"Linux test"[..]));
        // "Linux test" is 10 bytes: 2 bytes of padding, block stays aligned.
        assert_eq!(out.len() % 4, 0);
    }

    #[test]
    fn shb_os_is_optional() {
        let out = PcapngWriter::with_os(Vec::new(), None)
            .unwrap()
            .into_inner();
        let b = blocks(&out);
        assert_eq!(opt(&options(&b[0].body[16..]), SHB_OS), None);
        // The default writer names the kernel.
        let out = PcapngWriter::new(Vec::new()).unwrap().into_inner();
        let b = blocks(&out);
        let os = opt(&options(&b[0].body[16..]), SHB_OS).map(|v| v.to_vec());
        assert!(os.is_some_and(|v| v.starts_with(b"Linux ")));
    }

    #[test]
    fn interface_description_block_layout() {
        let mut w = writer();
        assert_eq!(w.add_interface("red", None, 262144).unwrap(), 0);
        assert_eq!(
            w.add_interface("green", Some("veth to green"), 128)
                .unwrap(),
            1
        );
        assert_eq!(w.interface_count(), 2);
        let b = blocks(&w.into_inner());
        assert_eq!(b.len(), 3);
        let idb = &b[1];
        assert_eq!(idb.kind, BT_IDB);
        assert_eq!(u16_at(&idb.body, 0), 1, "LINKTYPE_ETHERNET");
        assert_eq!(u16_at(&idb.body, 2), 0, "reserved");
        assert_eq!(u32_at(&idb.body, 4), 262144);
        let opts = options(&idb.body[8..]);
        assert_eq!(opt(&opts, IF_NAME), Some(&b"red"[..]));
        assert_eq!(opt(&opts, IF_DESCRIPTION), None);
        assert_eq!(opt(&opts, IF_TSRESOL), Some(&[9u8][..]));
        // name "red" (3 bytes, 1 pad) + tsresol (1 byte, 3 pad) + end:
        // 8 + 8 + 8 + 4 option bytes, 8 fixed, 12 framing.
        assert_eq!(idb.body.len() + 12, 12 + 8 + 8 + 8 + 4);
        let opts = options(&b[2].body[8..]);
        assert_eq!(opt(&opts, IF_NAME), Some(&b"green"[..]));
        assert_eq!(opt(&opts, IF_DESCRIPTION), Some(&b"veth to green"[..]));
    }

    #[test]
    fn enhanced_packet_block_layout() {
        let mut w = writer();
        w.add_interface("red", None, 0).unwrap();
        let data = frame(2, 1, 61); // odd length: 3 bytes of padding
        let ts = 1_700_000_000_123_456_789u64;
        w.write_packet(&PacketRecord {
            iface: 0,
            ts_ns: ts,
            data: &data,
            orig_len: 1514,
            direction: Direction::Outbound,
            packet_id: 0x0102_0304_0506_0708,
            comment: Some("flood: unknown unicast"),
            drop_count: Some(3),
        })
        .unwrap();
        let out = w.into_inner();
        let b = blocks(&out);
        let epb = &b[2];
        assert_eq!(epb.kind, BT_EPB);
        let body = &epb.body;
        assert_eq!(u32_at(body, 0), 0);
        let ts_read = ((u32_at(body, 4) as u64) << 32) | u32_at(body, 8) as u64;
        assert_eq!(ts_read, ts);
        assert_eq!(u32_at(body, 12), 61);
        assert_eq!(u32_at(body, 16), 1514);
        assert_eq!(&body[20..81], &data[..]);
        assert_eq!(&body[81..84], &[0, 0, 0], "packet data padding");
        let opts = options(&body[84..]);
        assert_eq!(opt(&opts, EPB_FLAGS), Some(&2u32.to_le_bytes()[..]));
        assert_eq!(
            opt(&opts, EPB_PACKETID),
            Some(&0x0102_0304_0506_0708u64.to_le_bytes()[..])
        );
        assert_eq!(opt(&opts, EPB_DROPCOUNT), Some(&3u64.to_le_bytes()[..]));
        assert_eq!(
            opt(&opts, OPT_COMMENT),
            Some(&b"flood: unknown unicast"[..])
        );
    }

    #[test]
    fn inbound_flag_and_optional_options_left_out() {
        let mut w = writer();
        w.add_interface("red", None, 0).unwrap();
        let data = frame(2, 1, 60);
        w.write_packet(&PacketRecord {
            iface: 0,
            ts_ns: 5,
            data: &data,
            orig_len: 60,
            direction: Direction::Inbound,
            packet_id: 7,
            comment: None,
            drop_count: None,
        })
        .unwrap();
        let b = blocks(&w.into_inner());
        let opts = options(&b[2].body[20 + 60..]);
        assert_eq!(opt(&opts, EPB_FLAGS), Some(&1u32.to_le_bytes()[..]));
        assert_eq!(opt(&opts, EPB_PACKETID), Some(&7u64.to_le_bytes()[..]));
        assert_eq!(opts.len(), 2, "no comment, no drop count: {opts:?}");
    }

    #[test]
    fn interface_statistics_block_layout() {
        let mut w = writer();
        w.add_interface("red", None, 0).unwrap();
        w.add_interface("green", None, 0).unwrap();
        w.write_stats(1, 1 << 40, 42, Some("capture ended"))
            .unwrap();
        let b = blocks(&w.into_inner());
        let isb = &b[3];
        assert_eq!(isb.kind, BT_ISB);
        assert_eq!(u32_at(&isb.body, 0), 1);
        assert_eq!((u32_at(&isb.body, 4), u32_at(&isb.body, 8)), (1 << 8, 0));
        let opts = options(&isb.body[12..]);
        assert_eq!(opt(&opts, ISB_IFDROP), Some(&42u64.to_le_bytes()[..]));
        assert_eq!(opt(&opts, OPT_COMMENT), Some(&b"capture ended"[..]));
    }

    #[test]
    fn invalid_records_are_refused_and_write_nothing() {
        let mut w = writer();
        w.add_interface("red", None, 64).unwrap();
        let before = w.get_ref().len();
        let data = frame(2, 1, 100);
        let rec = |iface, data: &'static [u8], orig_len| PacketRecord {
            iface,
            ts_ns: 0,
            data,
            orig_len,
            direction: Direction::Inbound,
            packet_id: 1,
            comment: None,
            drop_count: None,
        };
        let data: &'static [u8] = data.leak();
        for (r, want) in [
            (rec(1, &data[..60], 60), RecordError::UnknownInterface(1)),
            (
                rec(0, data, 100),
                RecordError::OverSnaplen {
                    iface: 0,
                    captured: 100,
                    snaplen: 64,
                },
            ),
            (
                rec(0, &data[..60], 59),
                RecordError::OverOriginal {
                    captured: 60,
                    orig_len: 59,
                },
            ),
        ] {
            let e = w.write_packet(&r).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            let inner = e.get_ref().and_then(|i| i.downcast_ref::<RecordError>());
            assert_eq!(inner, Some(&want));
        }
        let e = w.write_stats(3, 0, 0, None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(w.get_ref().len(), before);
    }

    #[test]
    fn long_comments_are_cut_at_a_character_boundary() {
        let mut w = writer();
        w.add_interface("red", None, 0).unwrap();
        let comment = "é".repeat(40_000); // 80 000 bytes
        let data = frame(2, 1, 60);
        w.write_packet(&PacketRecord {
            iface: 0,
            ts_ns: 0,
            data: &data,
            orig_len: 60,
            direction: Direction::Inbound,
            packet_id: 1,
            comment: Some(&comment),
            drop_count: None,
        })
        .unwrap();
        let b = blocks(&w.into_inner());
        let opts = options(&b[2].body[80..]);
        let c = opt(&opts, OPT_COMMENT).unwrap();
        assert_eq!(c.len(), 65534);
        assert!(std::str::from_utf8(c).is_ok());
    }

    // --- reading our output back with tshark ---

    /// tshark, or a failed test saying how to get it: these tests must
    /// never pass without having run it.
    fn tshark() -> Command {
        match Command::new("tshark").arg("--version").output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "`tshark --version` failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!(
                "this test needs tshark to read the pcapng back, and it could not run ({e}); \
                 install it: apt-get install tshark"
            ),
        }
        let mut c = Command::new("tshark");
        // Keep a user's preferences and plugins out of the result.
        c.env("WIRESHARK_CONFIG_DIR", std::env::temp_dir());
        c
    }

    /// The fields each test asks tshark for, tab separated.
    const FIELDS: &[&str] = &[
        "frame.interface_id",
        "frame.interface_name",
        "frame.packet_flags_direction",
        "frame.packet_id",
        "frame.comment",
        "frame.drop_count",
        "frame.time_epoch",
        "frame.len",
        "frame.cap_len",
        "eth.src",
    ];

    fn field_args(c: &mut Command) -> &mut Command {
        c.args(["-T", "fields", "-E", "separator=\t"]);
        for f in FIELDS {
            c.args(["-e", f]);
        }
        c
    }

    /// Two ports, a frame in on red flooded out of green, a frame in on
    /// green forwarded to red, and a dropped frame.
    fn sample_capture<W: Write>(w: &mut PcapngWriter<W>) -> io::Result<()> {
        let red = w.add_interface("red", Some("veth l2red0"), 256)?;
        let green = w.add_interface("green", None, 256)?;
        let f1 = frame(9, 1, 60);
        let f2 = frame(1, 2, 300);
        let f3 = frame(1, 0, 60);
        let base = 1_700_000_000_000_000_000u64;
        let rec =
            |iface, ts_off, data: &'static [u8], orig_len, direction, packet_id| PacketRecord {
                iface,
                ts_ns: base + ts_off,
                data,
                orig_len,
                direction,
                packet_id,
                comment: None,
                drop_count: None,
            };
        let f1: &'static [u8] = f1.leak();
        let f2: &'static [u8] = f2.leak();
        let f3: &'static [u8] = f3.leak();
        w.write_packet(&PacketRecord {
            comment: Some("flood: unknown unicast"),
            ..rec(red, 1, f1, 60, Direction::Inbound, 1)
        })?;
        w.write_packet(&PacketRecord {
            comment: Some("flood: unknown unicast"),
            ..rec(green, 2, f1, 60, Direction::Outbound, 1)
        })?;
        w.write_packet(&PacketRecord {
            comment: Some("forward"),
            drop_count: Some(4),
            ..rec(green, 1_000_000_003, &f2[..256], 300, Direction::Inbound, 2)
        })?;
        w.write_packet(&PacketRecord {
            comment: Some("forward"),
            ..rec(red, 1_000_000_004, &f2[..256], 300, Direction::Outbound, 2)
        })?;
        w.write_packet(&PacketRecord {
            comment: Some("drop: invalid_source"),
            ..rec(red, 2_000_000_005, f3, 60, Direction::Inbound, 3)
        })?;
        w.write_stats(red, base + 3_000_000_000, 7, Some("capture stopped"))?;
        Ok(())
    }

    /// What tshark must print for `sample_capture`, one line per record.
    const EXPECTED: &[&str] = &[
        "0\tred\t0x00000001\t1\tflood: unknown unicast\t\t1700000000.000000001\t60\t60\t02:00:00:00:00:01",
        "1\tgreen\t0x00000002\t1\tflood: unknown unicast\t\t1700000000.000000002\t60\t60\t02:00:00:00:00:01",
        "1\tgreen\t0x00000001\t2\tforward\t4\t1700000001.000000003\t300\t256\t02:00:00:00:00:02",
        "0\tred\t0x00000002\t2\tforward\t\t1700000001.000000004\t300\t256\t02:00:00:00:00:02",
        "0\tred\t0x00000001\t3\tdrop: invalid_source\t\t1700000002.000000005\t60\t60\t02:00:00:00:00:00",
    ];

    fn assert_tshark_output(stdout: &str) {
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines, EXPECTED, "tshark printed:\n{stdout}");
    }

    #[test]
    fn tshark_reads_a_file() {
        let mut cmd = tshark();
        let path =
            std::env::temp_dir().join(format!("l2sw-pcapng-test-{}.pcapng", std::process::id()));
        let mut w = PcapngWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
        sample_capture(&mut w).unwrap();
        w.flush().unwrap();
        drop(w);
        let out = field_args(cmd.arg("-r").arg(&path)).output().unwrap();
        // capinfos (shipped with tshark) shows the section and interface
        // metadata and counts the statistics blocks.
        let info = Command::new("capinfos").arg(&path).output();
        let _ = std::fs::remove_file(&path);
        let info = info.expect("capinfos (package wireshark-common, installed with tshark)");
        let info = String::from_utf8_lossy(&info.stdout);
        let app = format!("Capture application: l2sw {}", env!("CARGO_PKG_VERSION"));
        for want in [
            app.as_str(),
            "Number of interfaces in file: 2",
            "Name = red",
            "Description = veth l2red0",
            "Name = green",
            "Time precision = nanoseconds (9)",
            "Capture length = 256",
            "Number of stat entries = 1",
        ] {
            assert!(info.contains(want), "capinfos lacks {want:?}:\n{info}");
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "tshark failed: {stderr}");
        // tshark warns on stderr about anything malformed, yet exits 0.
        assert!(
            !stderr.to_lowercase().contains("malformed")
                && !stderr.to_lowercase().contains("isn't")
                && !stderr.to_lowercase().contains("error"),
            "tshark complained: {stderr}"
        );
        assert_tshark_output(&String::from_utf8_lossy(&out.stdout));
    }

    #[test]
    fn tshark_reads_a_pipe_as_it_is_written() {
        let mut child = field_args(tshark().args(["-l", "-r", "-"]))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        let mut w = PcapngWriter::new(child.stdin.take().unwrap()).unwrap();
        sample_capture(&mut w).unwrap();
        w.flush().unwrap();
        // The pipe is still open: tshark must already show what it got,
        // which is what `l2sw capture -w - | tshark -r -` relies on.
        let first = rx.recv_timeout(Duration::from_secs(30));
        let mut lines = vec![first.expect("tshark showed nothing while the pipe was open")];
        let data = frame(2, 1, 60);
        w.write_packet(&PacketRecord {
            iface: 1,
            ts_ns: 1_700_000_003_000_000_000,
            data: &data,
            orig_len: 60,
            direction: Direction::Outbound,
            packet_id: 4,
            comment: Some("forward"),
            drop_count: None,
        })
        .unwrap();
        drop(w); // closes tshark's stdin
        let status = child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(status.success(), "tshark failed: {stderr}");
        let mut want: Vec<&str> = EXPECTED.to_vec();
        want.push(
            "1\tgreen\t0x00000002\t4\tforward\t\t1700000003.000000000\t60\t60\t02:00:00:00:00:01",
        );
        assert_eq!(lines, want, "stderr: {stderr}");
    }
}
