//! What readers (`dataplane::readers`) hand out: captured frame records and decision traces, as they
//! travel from the dataplane to a `capture` or `trace --live` client.

use serde::{Deserialize, Serialize};

/// Which way a captured frame crossed a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    In,
    Out,
}

/// One frame seen on one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRecord {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// The same on the ingress record and every egress copy of a frame.
    pub id: u64,
    pub port: String,
    pub dir: Dir,
    /// The frame's length; `data` may be cut to the snap length.
    pub orig_len: u32,
    #[serde(with = "b64")]
    pub data: Vec<u8>,
    /// The decision, e.g. "flood: unknown unicast" or "drop: reserved_group".
    pub comment: String,
}

mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}

/// The header fields of a traced frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameSummary {
    pub len: usize,
    pub src: Option<String>,
    pub dst: Option<String>,
    /// "0x8100 vid 10 pcp 0" when tagged.
    pub vlan: Option<String>,
    /// "0x0800 (ipv4)".
    pub ethertype: Option<String>,
}

/// One port's part in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressChoice {
    pub port: String,
    pub included: bool,
    /// Why, for people.
    pub reason: String,
    /// Why, as a stable name: `forward`, `flood`, `mirror` for included
    /// ports, the exclusion's name (`isolated`, `not_in_vlan`, ...) otherwise.
    #[serde(default)]
    pub cause: String,
    /// The mirror a copy is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    /// How the frame leaves the port (included ports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<EgressShape>,
    /// Live traces: what the port's send then did with the frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<EgressIo>,
}

/// The bytes a frame leaves a port as (`switch::Shape`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "as", rename_all = "snake_case")]
pub enum EgressShape {
    /// Byte for byte as received.
    Received,
    /// With its outer tag removed.
    Untagged,
    /// With this outer tag, replacing the received one or `pushed` in.
    Tagged {
        tpid: u16,
        vid: u16,
        pcp: u8,
        pushed: bool,
    },
}

impl EgressShape {
    pub fn text(&self) -> String {
        match *self {
            EgressShape::Received => "as received".into(),
            EgressShape::Untagged => "untagged (outer tag removed)".into(),
            EgressShape::Tagged {
                tpid,
                vid,
                pcp,
                pushed,
            } => format!(
                "tagged {tpid:#06x} vid {vid} pcp {pcp} ({})",
                if pushed {
                    "tag pushed"
                } else {
                    "tag rewritten"
                }
            ),
        }
    }
}

/// What the egress I/O did with one frame on one port (live traces).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressIo {
    /// Frames the port's send accepted for it (segments count one each;
    /// a coalesced super-frame counts for the frame that starts it).
    pub sent: u32,
    /// Cut into this many segments in software (the port takes no GSO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<u32>,
    /// Merged with its neighbours into one GSO super-frame (software GRO).
    #[serde(default)]
    pub coalesced: bool,
    /// Why (all or part of) it did not leave: a drop reason's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<String>,
    /// What the port's link impairment did with it: "held 10.213 ms",
    /// "reordered (sent ahead)", "duplicated", "corrupted (one bit
    /// flipped)", joined by "; ". The frame leaves when the queue lets it,
    /// after this trace was handed out; its capture record says when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impair: Option<String>,
}

impl EgressIo {
    pub fn text(&self) -> String {
        let mut out = match (self.segments, self.coalesced) {
            (Some(n), _) => format!("cut into {n} segments, {} sent", self.sent),
            (None, true) if self.sent > 0 => "sent in a coalesced super-frame".to_string(),
            (None, true) => "coalesced into the super-frame of an earlier frame".to_string(),
            (None, false) if self.sent > 0 => "sent".to_string(),
            (None, false) if self.impair.is_some() => "queued by the link impairment".to_string(),
            (None, false) => "not sent".to_string(),
        };
        if let Some(i) = &self.impair {
            out.push_str(&format!(" (impair: {i})"));
        }
        if let Some(d) = &self.dropped {
            out.push_str(&format!("; dropped: {d}"));
        }
        out
    }
}

/// One step of the decision, in the order the switch takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceStep {
    pub step: String,
    pub result: String,
}

/// The explanation of one forwarding decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceReport {
    /// Packet id (live traces), as in captures.
    pub id: Option<u64>,
    pub ts_ns: u64,
    pub ingress: String,
    /// True for `trace` (nothing learned or sent), false for `trace --live`.
    pub synthetic: bool,
    /// Whether the switch classifies frames into VLANs.
    #[serde(default)]
    pub vlan_aware: bool,
    /// The VLAN the frame was switched in (0 when VLAN-unaware).
    #[serde(default)]
    pub vlan: u16,
    pub frame: FrameSummary,
    pub steps: Vec<TraceStep>,
    pub egress: Vec<EgressChoice>,
    pub verdict: String,
}

impl TraceReport {
    /// The explanation as a block of text for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let head = match self.id {
            Some(id) => format!("frame #{id} on {}", self.ingress),
            None => format!("synthetic frame on {}", self.ingress),
        };
        let f = &self.frame;
        out.push_str(&format!(
            "{head}: {} -> {}{}{}, {} bytes\n",
            f.src.as_deref().unwrap_or("?"),
            f.dst.as_deref().unwrap_or("?"),
            f.vlan
                .as_ref()
                .map(|v| format!(", tag {v}"))
                .unwrap_or_default(),
            f.ethertype
                .as_ref()
                .map(|e| format!(", type {e}"))
                .unwrap_or_default(),
            f.len
        ));
        let w = self.steps.iter().map(|s| s.step.len()).max().unwrap_or(0);
        for s in &self.steps {
            out.push_str(&format!("  {:<w$}  {}\n", s.step, s.result));
        }
        if !self.egress.is_empty() {
            out.push_str("  egress:\n");
            let pw = self.egress.iter().map(|e| e.port.len()).max().unwrap_or(0);
            for e in &self.egress {
                let mut line = format!(
                    "    {:<pw$}  {}  {}",
                    e.port,
                    if e.included { "yes" } else { "no " },
                    e.reason
                );
                if let Some(s) = &e.shape {
                    line.push_str(&format!("; leaves {}", s.text()));
                }
                if let Some(io) = &e.io {
                    line.push_str(&format!(" -> {}", io.text()));
                }
                out.push_str(line.trim_end());
                out.push('\n');
            }
        }
        out.push_str(&format!("  verdict: {}\n", self.verdict));
        out
    }
}

/// What a reader delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ReaderEvent {
    Frame(FrameRecord),
    Trace(TraceReport),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_records_round_trip_through_json() {
        let r = ReaderEvent::Frame(FrameRecord {
            ts_ns: 1,
            id: 7,
            port: "red".into(),
            dir: Dir::Out,
            orig_len: 64,
            data: vec![1, 2, 3, 255],
            comment: "flood: broadcast".into(),
        });
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"data\":\"AQID/w==\""), "{j}");
        assert!(j.contains("\"kind\":\"frame\""), "{j}");
        assert_eq!(serde_json::from_str::<ReaderEvent>(&j).unwrap(), r);
    }
}
