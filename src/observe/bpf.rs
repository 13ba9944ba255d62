//! tcpdump's filter language (pcap-filter) for `capture --bpf` and
//! `trace --live --bpf`: the expression is compiled by libpcap (through the
//! `pcap` crate) into classic BPF for Ethernet frames, and the program runs
//! in user space on each frame a tap considers (`pcap_offline_filter`), not
//! in the kernel: the switch's taps see frames after the switch read them,
//! and every port kind (TAP, AF_PACKET, pipes) gets the same filter.
//!
//! It sits beside l2sw's own language ([`super::filter`]) rather than
//! replacing it: there `port` names a switch port, in pcap-filter a TCP/UDP
//! port, so the two are given separately and a frame must match both.

use std::fmt;

use pcap::{Capture, Linktype};

/// A compiled pcap-filter expression.
pub struct BpfFilter {
    expr: String,
    prog: pcap::BpfProgram,
}

/// libpcap refused the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad pcap-filter expression {expr:?}: {msg}")]
pub struct BpfError {
    pub expr: String,
    /// libpcap's message.
    pub msg: String,
}

impl BpfFilter {
    /// Compiles `expr` (optimized) for Ethernet frames.
    pub fn compile(expr: &str) -> Result<BpfFilter, BpfError> {
        let err = |msg: String| BpfError {
            expr: expr.to_string(),
            msg,
        };
        // A "dead" handle: no device, only the link type the compiler needs.
        // Its snap length (65535) only sets what an accepting program
        // returns; `matches` asks for non-zero.
        let dead = Capture::dead(Linktype::ETHERNET).map_err(|e| err(e.to_string()))?;
        let prog = dead.compile(expr, true).map_err(|e| err(pcap_message(e)))?;
        Ok(BpfFilter {
            expr: expr.to_string(),
            prog,
        })
    }

    /// Whether the frame (starting at the Ethernet header) matches.
    pub fn matches(&self, frame: &[u8]) -> bool {
        self.prog.filter(frame)
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }
}

/// For an expression l2sw's own language refused: a hint when libpcap
/// takes it, since tcpdump users will type tcpdump expressions.
pub fn pcap_hint(expr: &str) -> String {
    if BpfFilter::compile(expr).is_ok() {
        format!(" (it is a pcap-filter expression: pass it with --bpf {expr:?})")
    } else {
        String::new()
    }
}

/// libpcap's own text, without the crate's prefix.
fn pcap_message(e: pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) => m,
        other => other.to_string(),
    }
}

impl fmt::Debug for BpfFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BpfFilter")
            .field("expr", &self.expr)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp4(dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 42];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&28u16.to_be_bytes());
        f[23] = 17;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    #[test]
    fn expressions_match_as_tcpdump_reads_them() {
        let f = BpfFilter::compile("udp port 53 and host 10.0.0.2").unwrap();
        assert!(f.matches(&udp4(53)));
        assert!(!f.matches(&udp4(54)));
        assert!(!f.matches(&[0u8; 10]), "a runt matches nothing");
        let mut tagged = udp4(53);
        tagged.splice(12..12, [0x81, 0x00, 0x00, 0x0a]);
        assert!(BpfFilter::compile("vlan 10 and udp")
            .unwrap()
            .matches(&tagged));
        assert!(!BpfFilter::compile("vlan 20").unwrap().matches(&tagged));
    }

    #[test]
    fn a_bad_expression_gets_libpcaps_error_with_the_expression() {
        let e = BpfFilter::compile("tcp prot 80").unwrap_err();
        assert_eq!(e.expr, "tcp prot 80");
        assert!(
            e.to_string()
                .starts_with("bad pcap-filter expression \"tcp prot 80\": "),
            "{e}"
        );
        assert!(e.msg.contains("syntax error"), "{e}");
    }
}
