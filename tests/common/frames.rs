//! Frames for differential tests: a small description (`FrameSpec`: MACs,
//! a stack of VLAN tags, EtherType, payload length) that encodes to the exact
//! bytes sent, with a marker in the payload naming the run and the send step,
//! and a decoder that prints any captured frame readably.
//!
//! The marker is what ties a captured frame to the step that sent it, however
//! a switch rewrote its tags: it sits right after the innermost EtherType and
//! is searched for anywhere in the frame, so pushing, popping or rewriting
//! tags never hides it. Frames without it (the namespaces' own stacks, the
//! reference switch's chatter) are ignored.

use std::fmt::Write as _;

use l2sw::wire::MacAddr;

/// EtherType of test frames (IEEE 802 local experimental), as the fixture.
pub const ETHERTYPE: u16 = super::TEST_ETHERTYPE;
/// 802.1Q customer tag.
pub const TPID_C: u16 = 0x8100;
/// 802.1ad service tag.
pub const TPID_S: u16 = 0x88a8;

const MAGIC: &[u8; 4] = b"L2DF";
/// Magic, run id (4 bytes), step index (2 bytes).
pub const MARKER_LEN: usize = 10;

/// One VLAN tag: TPID and the three TCI fields.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Tag {
    pub tpid: u16,
    pub pcp: u8,
    pub dei: bool,
    pub vid: u16,
}

/// An 802.1Q (0x8100) tag with PCP 0.
pub fn ctag(vid: u16) -> Tag {
    Tag {
        tpid: TPID_C,
        pcp: 0,
        dei: false,
        vid,
    }
}

/// An 802.1ad (0x88a8) tag with PCP 0.
pub fn stag(vid: u16) -> Tag {
    Tag {
        tpid: TPID_S,
        ..ctag(vid)
    }
}

impl Tag {
    pub fn pcp(self, pcp: u8) -> Tag {
        Tag { pcp, ..self }
    }

    pub fn dei(self) -> Tag {
        Tag { dei: true, ..self }
    }

    pub fn vid(self, vid: u16) -> Tag {
        Tag { vid, ..self }
    }

    pub fn tci(&self) -> u16 {
        (u16::from(self.pcp) << 13) | (u16::from(self.dei) << 12) | (self.vid & 0x0fff)
    }
}

/// A test frame before its marker is known: what a scenario sends and what
/// it expects to arrive.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FrameSpec {
    pub dst: MacAddr,
    pub src: MacAddr,
    /// Outermost first.
    pub tags: Vec<Tag>,
    pub ethertype: u16,
    /// Bytes after the innermost EtherType (marker included).
    pub payload_len: usize,
}

impl FrameSpec {
    /// An untagged 60-byte frame (the minimum without FCS).
    pub fn new(dst: MacAddr, src: MacAddr) -> FrameSpec {
        FrameSpec {
            dst,
            src,
            tags: Vec::new(),
            ethertype: ETHERTYPE,
            payload_len: 46,
        }
    }

    /// The same frame with exactly these tags (payload unchanged, so the
    /// frame grows or shrinks by 4 bytes a tag: nobody pads or trims).
    pub fn tagged(&self, tags: &[Tag]) -> FrameSpec {
        FrameSpec {
            tags: tags.to_vec(),
            ..self.clone()
        }
    }

    /// The same frame without tags.
    pub fn untagged(&self) -> FrameSpec {
        self.tagged(&[])
    }

    pub fn payload(&self, payload_len: usize) -> FrameSpec {
        assert!(payload_len >= MARKER_LEN, "the payload carries the marker");
        FrameSpec {
            payload_len,
            ..self.clone()
        }
    }

    pub fn len(&self) -> usize {
        14 + 4 * self.tags.len() + self.payload_len
    }

    /// The bytes on the wire for step `step` of run `run`.
    pub fn encode(&self, run: u32, step: u16) -> Vec<u8> {
        let mut f = Vec::with_capacity(self.len());
        f.extend_from_slice(&self.dst.octets());
        f.extend_from_slice(&self.src.octets());
        for t in &self.tags {
            f.extend_from_slice(&t.tpid.to_be_bytes());
            f.extend_from_slice(&t.tci().to_be_bytes());
        }
        f.extend_from_slice(&self.ethertype.to_be_bytes());
        f.extend_from_slice(&marker(run, step));
        // A pattern after the marker, so truncation or corruption shows.
        f.extend((MARKER_LEN..self.payload_len).map(|i| (i % 251) as u8));
        f
    }
}

fn marker(run: u32, step: u16) -> [u8; MARKER_LEN] {
    let mut m = [0u8; MARKER_LEN];
    m[..4].copy_from_slice(MAGIC);
    m[4..8].copy_from_slice(&run.to_be_bytes());
    m[8..10].copy_from_slice(&step.to_be_bytes());
    m
}

/// The step index of a frame of run `run`, if it carries that run's marker.
pub fn step_of(frame: &[u8], run: u32) -> Option<u16> {
    let mut want = [0u8; 8];
    want[..4].copy_from_slice(MAGIC);
    want[4..].copy_from_slice(&run.to_be_bytes());
    frame
        .windows(MARKER_LEN)
        .find(|w| w[..8] == want)
        .map(|w| u16::from_be_bytes([w[8], w[9]]))
}

/// One line describing a frame's header: MACs, every tag, EtherType, length
/// and, for test frames, the step that sent it.
pub fn describe(frame: &[u8], run: u32) -> String {
    if frame.len() < 14 {
        return format!("runt ({} bytes)", frame.len());
    }
    let mac = |b: &[u8]| MacAddr::from_slice(b).unwrap().to_string();
    let mut s = format!("{} > {}", mac(&frame[6..12]), mac(&frame[..6]));
    let mut off = 12;
    while off + 4 <= frame.len() {
        let et = u16::from_be_bytes([frame[off], frame[off + 1]]);
        if et != TPID_C && et != TPID_S && et != 0x9100 {
            break;
        }
        let tci = u16::from_be_bytes([frame[off + 2], frame[off + 3]]);
        let _ = write!(
            s,
            " | {et:04x} pcp {} {}vid {}",
            tci >> 13,
            if tci & 0x1000 != 0 { "DEI " } else { "" },
            tci & 0x0fff
        );
        off += 4;
    }
    if off + 2 <= frame.len() {
        let _ = write!(
            s,
            " | type {:04x}",
            u16::from_be_bytes([frame[off], frame[off + 1]])
        );
    }
    let _ = write!(s, " | {} bytes", frame.len());
    if let Some(step) = step_of(frame, run) {
        let _ = write!(s, " | step #{step}");
    }
    s
}

/// The frame as hex, 32 bytes a line, each line indented by `indent`.
pub fn hex(frame: &[u8], indent: &str) -> String {
    let mut s = String::new();
    for chunk in frame.chunks(32) {
        s.push_str(indent);
        for (i, b) in chunk.iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                s.push(' ');
            }
            let _ = write!(s, "{b:02x}");
        }
        s.push('\n');
    }
    s
}
