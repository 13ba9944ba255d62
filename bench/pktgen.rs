//! `l2sw-pktgen`: the benchmark harness's 64-byte frame generator and counter.
//!
//! `send` enters a network namespace, opens an AF_PACKET socket on one of its
//! interfaces (the same `AfPacketPort` the switch uses, so frames leave with
//! `sendmmsg` in batches) and sends minimum-size frames, either as fast as the
//! kernel takes them or paced to a given rate, for a given time. It prints one
//! JSON object: `{"sent": N, "seconds": S, ...}`.
//!
//! `count` counts matching frames arriving on an interface for a given time
//! and prints `{"received": N, "seconds": S, ...}`. The harness normally
//! counts delivery with the receiver's kernel counters instead (`rx_packets`
//! of the namespace's interface), which costs the receiver nothing; `count`
//! is there to cross-check that the frames arriving are the generator's.
//!
//! Frames are 60 bytes as handed to the kernel (64 on a wire, with the FCS):
//! by default an Ethernet header with the IEEE local experimental EtherType
//! 0x88b5 and a zero payload, which the receiving stack counts and discards
//! without answering; `--udp` sends UDP/IPv4 instead (which a receiver with
//! no socket on the port answers with rate-limited ICMP errors).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use l2sw::port::afpacket::AfPacketPort;
use l2sw::port::{Port, PortKind, RxBatch, SendError, TxFrame, BATCH_SIZE};
use l2sw::wire::checksum::{finish, sum16};
use l2sw::wire::{write_header, MacAddr, ETH_HEADER_LEN};

/// Minimum Ethernet frame without its 4-byte FCS.
const MIN_FRAME: usize = 60;
const IPV4_HEADER_LEN: usize = 20;
const UDP_HEADER_LEN: usize = 8;
/// Largest backlog a paced sender catches up on after falling behind (a late
/// wake-up, the CPU taken by another process): 2 ms of frames, at least one
/// batch. Anything older is skipped and reported as `skipped`.
const MAX_CATCH_UP_S: f64 = 0.002;
/// A paced sender sleeps only when the next batch is due later than this;
/// shorter waits spin, since a sleep overshoots by tens of microseconds.
const SPIN_BELOW_S: f64 = 0.001;

#[derive(Parser)]
#[command(
    name = "l2sw-pktgen",
    about = "64-byte frame generator and counter for the l2sw benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send minimum-size frames for a while; prints {"sent", "seconds", ...}.
    Send(SendArgs),
    /// Count frames arriving on an interface; prints {"received", "seconds", ...}.
    Count(CountArgs),
}

#[derive(Args)]
struct Where {
    /// Network namespace to enter (by its name under /run/netns); default: this one.
    #[arg(long)]
    netns: Option<String>,
    /// Interface to send on / count on.
    #[arg(long, default_value = "eth0")]
    dev: String,
    /// How long to run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
}

#[derive(Args)]
struct SendArgs {
    #[command(flatten)]
    at: Where,
    /// Destination MAC: use the receiver's own address so its interface
    /// accepts (and counts) every frame.
    #[arg(long)]
    dst: MacAddr,
    /// Source MAC; default: the sending interface's address.
    #[arg(long)]
    src: Option<MacAddr>,
    /// Frames per second to offer; 0 = as fast as the kernel takes them.
    #[arg(long, default_value_t = 0)]
    pps: u64,
    /// Frames per sendmmsg call.
    #[arg(long, default_value_t = BATCH_SIZE)]
    batch: usize,
    /// Frame length handed to the kernel (without FCS).
    #[arg(long, default_value_t = MIN_FRAME)]
    len: usize,
    /// EtherType of the raw frames (ignored with --udp); the default is the
    /// IEEE 802 local experimental EtherType 1: nobody's protocol.
    #[arg(long, default_value = "0x88b5", value_parser = parse_u16)]
    ethertype: u16,
    /// Send UDP/IPv4 from SRC to DST (both needed), port 9 (discard).
    #[arg(long, requires_all = ["src_ip", "dst_ip"])]
    udp: bool,
    #[arg(long)]
    src_ip: Option<Ipv4Addr>,
    #[arg(long)]
    dst_ip: Option<Ipv4Addr>,
}

#[derive(Args)]
struct CountArgs {
    #[command(flatten)]
    at: Where,
    /// Count only frames of this EtherType; "any" counts everything.
    #[arg(long, default_value = "0x88b5")]
    ethertype: String,
}

fn parse_u16(s: &str) -> Result<u16, String> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (s, 10),
    };
    u16::from_str_radix(digits, radix).map_err(|e| format!("{s:?}: {e}"))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let at = match &cli.cmd {
        Cmd::Send(a) => &a.at,
        Cmd::Count(a) => &a.at,
    };
    if !(at.seconds > 0.0 && at.seconds.is_finite()) {
        bail!("--seconds must be a positive number");
    }
    // The socket must be opened inside the namespace; run_in gives a thread
    // that entered it, and everything below runs on that thread.
    let out = match at.netns.clone() {
        Some(ns) => l2sw::netns::run_in(&ns, move || run(cli.cmd))
            .with_context(|| format!("cannot enter namespace {ns}"))??,
        None => run(cli.cmd)?,
    };
    println!("{out}");
    Ok(())
}

fn run(cmd: Cmd) -> anyhow::Result<serde_json::Value> {
    match cmd {
        Cmd::Send(a) => send(&a),
        Cmd::Count(a) => count(&a),
    }
}

/// Builds the one frame every send repeats.
fn build_frame(a: &SendArgs, src: MacAddr) -> anyhow::Result<Vec<u8>> {
    let min = if a.udp {
        ETH_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN
    } else {
        ETH_HEADER_LEN
    };
    if a.len < min || a.len > 1514 {
        bail!("--len must be between {min} and 1514");
    }
    let mut f = vec![0u8; a.len];
    let ethertype = if a.udp { 0x0800 } else { a.ethertype };
    write_header(&mut f, a.dst, src, ethertype)?;
    if let (true, Some(sip), Some(dip)) = (a.udp, a.src_ip, a.dst_ip) {
        let ip_len = (a.len - ETH_HEADER_LEN) as u16;
        let ip = &mut f[ETH_HEADER_LEN..ETH_HEADER_LEN + IPV4_HEADER_LEN];
        ip[0] = 0x45; // version 4, 5-word header
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        ip[6] = 0x40; // don't fragment
        ip[8] = 64; // TTL
        ip[9] = 17; // UDP
        ip[12..16].copy_from_slice(&sip.octets());
        ip[16..20].copy_from_slice(&dip.octets());
        let csum = finish(sum16(0, ip));
        ip[10..12].copy_from_slice(&csum.to_be_bytes());
        let udp_off = ETH_HEADER_LEN + IPV4_HEADER_LEN;
        let udp = &mut f[udp_off..udp_off + UDP_HEADER_LEN];
        udp[0..2].copy_from_slice(&9u16.to_be_bytes()); // from "discard"
        udp[2..4].copy_from_slice(&9u16.to_be_bytes()); // to "discard"
        udp[4..6].copy_from_slice(&(ip_len - IPV4_HEADER_LEN as u16).to_be_bytes());
        // Checksum 0: "none" is valid for UDP over IPv4 and costs nothing.
    }
    Ok(f)
}

fn send(a: &SendArgs) -> anyhow::Result<serde_json::Value> {
    if a.batch == 0 || a.batch > 1024 {
        bail!("--batch must be between 1 and 1024");
    }
    let mut port = AfPacketPort::open(&a.at.dev, PortKind::Iface)
        .with_context(|| format!("cannot open {}", a.at.dev))?;
    let src = match (a.src, port.info().mac) {
        (Some(m), _) | (None, Some(m)) => m,
        (None, None) => bail!("{} has no MAC address; give --src", a.at.dev),
    };
    let frame = build_frame(a, src)?;
    // Every slot points at the same bytes: nothing is built or copied per frame.
    let batch: Vec<TxFrame<'_>> = vec![TxFrame::plain(frame.as_slice()); a.batch];
    let duration = Duration::from_secs_f64(a.at.seconds);

    let mut sent: u64 = 0;
    // sendmmsg calls refused at once (queue full): the kernel was the limit.
    let mut refused: u64 = 0;
    // Frames a paced sender gave up on after falling too far behind.
    let mut skipped: u64 = 0;
    let pps = a.pps as f64;
    let max_deficit = (pps * MAX_CATCH_UP_S).max(a.batch as f64);
    // Paced mode: `base` frames were skipped, so `elapsed * pps - base` frames
    // are due. A whole batch is sent each time one is due, so frames leave in
    // bursts of `batch`, as they do from a switch, and every sendmmsg is full.
    let mut base = 0.0f64;
    let start = Instant::now();
    loop {
        let elapsed = start.elapsed();
        if elapsed >= duration {
            break;
        }
        if a.pps > 0 {
            let mut deficit = elapsed.as_secs_f64() * pps - base - sent as f64;
            if deficit > max_deficit {
                // Woke up far too late (the CPU was taken): drop the backlog
                // rather than send a burst the offered rate never asked for.
                let behind = deficit - max_deficit;
                base += behind;
                skipped += behind as u64;
                deficit = max_deficit;
            }
            if deficit < a.batch as f64 {
                // Ahead: wait for the next batch. Sleeping wakes up late
                // (timer slack, scheduling), so only long waits sleep, and
                // they stop short of the deadline; short ones spin.
                let wait = (a.batch as f64 - deficit) / pps;
                if wait > SPIN_BELOW_S {
                    std::thread::sleep(Duration::from_secs_f64(wait - SPIN_BELOW_S / 2.0));
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
        }
        let (n, err) = port.send_batch(&batch);
        sent += n as u64;
        match err {
            None => {}
            Some(SendError::WouldBlock) => {
                refused += 1;
                std::hint::spin_loop();
            }
            Some(e) => bail!("send on {} failed after {sent} frames: {e:?}", a.at.dev),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(json!({
        "sent": sent,
        "seconds": seconds,
        "pps": sent as f64 / seconds,
        "target_pps": a.pps,
        "frame_len": frame.len(),
        "batch": a.batch,
        "refused_calls": refused,
        "skipped": skipped,
        "dev": a.at.dev,
        "src": src.to_string(),
        "dst": a.dst.to_string(),
    }))
}

fn count(a: &CountArgs) -> anyhow::Result<serde_json::Value> {
    use mio::unix::SourceFd;
    use mio::{Events, Interest, Poll, Token};

    let want: Option<u16> = match a.ethertype.as_str() {
        "any" => None,
        s => Some(parse_u16(s).map_err(anyhow::Error::msg)?),
    };
    let mut port = AfPacketPort::open(&a.at.dev, PortKind::Iface)
        .with_context(|| format!("cannot open {}", a.at.dev))?;
    let mut poll = Poll::new()?;
    let fd = port.raw_fd();
    poll.registry()
        .register(&mut SourceFd(&fd), Token(0), Interest::READABLE)?;
    let mut events = Events::with_capacity(4);
    // Small buffers: only minimum-size frames matter; longer ones are still
    // counted (as truncated) if their EtherType matches.
    let mut rx = RxBatch::with_buf_size(BATCH_SIZE, 2048);
    let duration = Duration::from_secs_f64(a.at.seconds);
    let (mut matched, mut other) = (0u64, 0u64);
    let start = Instant::now();
    loop {
        let elapsed = start.elapsed();
        if elapsed >= duration {
            break;
        }
        // Edge-triggered: after each wake-up, read until the socket is empty.
        poll.poll(&mut events, Some(duration - elapsed))?;
        loop {
            let n = port.recv_batch(&mut rx)?;
            if n == 0 {
                break;
            }
            for slot in rx.iter() {
                let f = slot.frame();
                let et = f.get(12..14).map(|b| u16::from_be_bytes([b[0], b[1]]));
                if want.is_none() || et == want {
                    matched += 1;
                } else {
                    other += 1;
                }
            }
        }
    }
    Ok(json!({
        "received": matched,
        "other": other,
        "seconds": start.elapsed().as_secs_f64(),
        "dev": a.at.dev,
        "ethertype": want.map(|e| format!("{e:#06x}")).unwrap_or_else(|| "any".into()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(udp: bool) -> SendArgs {
        SendArgs {
            at: Where {
                netns: None,
                dev: "eth0".into(),
                seconds: 1.0,
            },
            dst: "02:00:00:00:00:02".parse().unwrap(),
            src: None,
            pps: 0,
            batch: 32,
            len: MIN_FRAME,
            ethertype: 0x88b5,
            udp,
            src_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
            dst_ip: Some(Ipv4Addr::new(10, 0, 0, 2)),
        }
    }

    #[test]
    fn raw_frames_are_minimum_size_with_the_experimental_ethertype() {
        let f = build_frame(&args(false), "02:00:00:00:00:01".parse().unwrap()).unwrap();
        assert_eq!(f.len(), 60);
        assert_eq!(&f[0..6], &[2, 0, 0, 0, 0, 2]);
        assert_eq!(&f[6..12], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&f[12..14], &[0x88, 0xb5]);
    }

    #[test]
    fn udp_frames_carry_a_valid_ipv4_header() {
        let f = build_frame(&args(true), "02:00:00:00:00:01".parse().unwrap()).unwrap();
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        let ip = &f[14..34];
        // A header with its checksum in place sums to zero.
        assert_eq!(finish(sum16(0, ip)), 0);
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]), 46);
        assert_eq!(u16::from_be_bytes([f[38], f[39]]), 26, "UDP length");
    }

    #[test]
    fn ethertypes_parse_in_hex_and_decimal() {
        assert_eq!(parse_u16("0x88b5"), Ok(0x88b5));
        assert_eq!(parse_u16("2048"), Ok(2048));
        assert!(parse_u16("0x1ffff").is_err());
    }
}
