//! `l2sw probe`: end-to-end latency between two network namespaces, whatever
//! joins them (l2sw, a kernel bridge, a router): the probe knows nothing of
//! the switch and never changes either namespace.
//!
//! A reflector socket is opened in the target namespace and a sender socket
//! in the source one, each from a thread that entered the namespace
//! ([`netns::run_in`]); sockets stay in the namespace they were created in, so
//! the probe's own threads then use them from anywhere. The sender sends
//! UDP datagrams on a fixed schedule (open loop: a slow echo does not delay
//! the next probe, so queueing shows up in the numbers instead of being
//! hidden), the reflector stamps and echoes each one, and a receiver thread
//! next to the sender records three histograms.
//!
//! Datagram layout (the UDP payload, `size` bytes, little endian):
//!
//! | bytes  | field                        | written by             |
//! |--------|------------------------------|------------------------|
//! | 0..8   | sequence number              | sender                 |
//! | 8..16  | send time, ns                | sender                 |
//! | 16..24 | reflector receive time, ns   | reflector, if size>=32 |
//! | 24..32 | reflector send time, ns      | reflector, if size>=32 |
//! | rest   | a fixed byte pattern         | sender                 |
//!
//! Every stamp comes from one clock, [`Timestamp::now`] (this machine's
//! CLOCK_MONOTONIC): namespaces share the kernel's clocks, and both ends live
//! in this process. So the one-way delays (reflector receive minus send,
//! echo receive minus reflector send) are real measurements, not RTT/2, and
//! RTT minus both is the reflector's own turnaround. Stamps are taken in user space, so every
//! number includes both hosts' network stacks and thread wake-ups: it is the
//! latency an application sees.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::netlink::addr::IfAddr;
use crate::netns::{self, NetnsError};
use crate::observe::latency::{LatencyDecodeError, LatencyHistogram, LatencySummary};
use crate::switch::Timestamp;

/// Smallest probe: sequence number and send time.
pub const MIN_SIZE: usize = 16;
/// Largest probe; below the 65507-byte UDP/IPv4 limit. Whether it fits the
/// path's MTU is the user's business: a probe that does not shows up as loss.
pub const MAX_SIZE: usize = 65_000;
/// Size from which the reflector's stamps fit and one-way delays are known.
pub const STAMPED_SIZE: usize = 32;
/// Most probes in one run (a day at 1000 pps fits): the receiver's and the
/// reflector's sequence bitmaps take count/8 bytes each, 12.5 MB at most.
pub const MAX_COUNT: u64 = 100_000_000;

/// The warm-up probe's sequence number: outside every run's range.
const WARMUP_SEQ: u64 = u64::MAX;
const WARMUP_TRIES: u32 = 3;
/// How often blocked receivers look at their stop conditions.
const POLL: Duration = Duration::from_millis(20);
/// Below this much time to the next send, spin instead of sleeping: a sleep
/// overshoots by the timer slack (50 µs by default) plus wake-up latency.
const SPIN_NS: u64 = 200_000;

/// What to probe and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeOptions {
    /// Namespace the probes are sent from (and the echoes received in).
    pub from_ns: String,
    /// Namespace the reflector runs in.
    pub to_ns: String,
    /// Reflector address; `None`: the first global IPv4 address of `to_ns`.
    pub to_addr: Option<IpAddr>,
    /// Probes to send, 1..=[`MAX_COUNT`].
    pub count: u64,
    /// Probes per second (at least 1).
    pub rate_pps: u64,
    /// UDP payload bytes, [`MIN_SIZE`]..=[`MAX_SIZE`].
    pub size: usize,
    /// Reflector UDP port; 0 picks a free one.
    pub port: u16,
    /// How long to wait for echoes after the last send; later ones are lost.
    pub timeout: Duration,
}

impl ProbeOptions {
    /// 1000 probes of 64 bytes at 1000 pps to the first IPv4 address of
    /// `to_ns`, on a free port, waiting 1 s for stragglers.
    pub fn new(from_ns: impl Into<String>, to_ns: impl Into<String>) -> Self {
        ProbeOptions {
            from_ns: from_ns.into(),
            to_ns: to_ns.into(),
            to_addr: None,
            count: 1000,
            rate_pps: 1000,
            size: 64,
            port: 0,
            timeout: Duration::from_secs(1),
        }
    }
}

/// The outcome of one probe run. Latencies are in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub from_ns: String,
    pub to_ns: String,
    /// The reflector's address and port.
    pub to: SocketAddr,
    pub size: usize,
    pub rate_pps: u64,
    /// Probes handed to the kernel.
    pub sent: u64,
    /// Distinct probes whose echo came back in time.
    pub received: u64,
    /// `sent - received`: echoes not back within the timeout after the last
    /// send (never arrived, or too late).
    pub lost: u64,
    /// Of `lost`, probes the reflector never saw ...
    pub lost_forward: u64,
    /// ... and probes it saw and echoed whose echo did not come back in time.
    pub lost_reverse: u64,
    /// Extra copies of echoes already received (not in `received`).
    pub duplicates: u64,
    /// Echoes that arrived after one with a higher sequence number.
    pub reordered: u64,
    /// Datagrams on the probe socket that were not a well-formed echo.
    pub invalid: u64,
    /// Sends the kernel refused (e.g. ENOBUFS, or an ICMP error reported on
    /// the socket); not counted in `sent`.
    pub send_errors: u64,
    /// Whether the unmeasured warm-up probe (sent first, so ARP/ND and FDB
    /// learning are not in the histograms) was answered.
    pub warmup_answered: bool,
    /// Time from the first to the last send, seconds.
    pub send_duration_s: f64,
    /// Round trip: echo received - probe sent.
    pub rtt: LatencySummary,
    /// Sender to reflector: reflector receive time - send time.
    pub one_way_fwd: LatencySummary,
    /// Reflector to sender: echo received - reflector send time.
    pub one_way_rev: LatencySummary,
    /// Whether one-way delays were measured (probes of at least
    /// [`STAMPED_SIZE`] bytes carry the reflector's stamps).
    pub one_way_measured: bool,
    /// How the one-way delays were obtained, for whoever reads the report.
    pub one_way_method: String,
    /// The full histograms, [`LatencyHistogram::to_encoded`] form.
    pub rtt_hist_encoded: String,
    pub fwd_hist_encoded: String,
    pub rev_hist_encoded: String,
}

const ONE_WAY_METHOD: &str = "measured: sender and reflector stamp with the same CLOCK_MONOTONIC \
     (both namespaces are on this machine), so one-way delays are true measurements, not RTT/2";
const ONE_WAY_UNMEASURED: &str =
    "not measured: probes smaller than 32 bytes cannot carry the reflector's stamps";

/// A probe could not run. Loss is not an error: it is in the report.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("count must be at least 1")]
    ZeroCount,
    #[error("count {0} is more than the {MAX_COUNT} probes one run can track")]
    CountTooLarge(u64),
    #[error("rate must be at least 1 probe per second")]
    ZeroRate,
    #[error(
        "size {0} is out of range {MIN_SIZE}..={MAX_SIZE} (UDP payload bytes; \
         {MIN_SIZE} carry the sequence number and send time, {STAMPED_SIZE} also the one-way stamps)"
    )]
    SizeOutOfRange(usize),
    #[error("timeout must be longer than zero")]
    ZeroTimeout,
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(
        "namespace {ns} has no global IPv4 address (`ip -n {ns} -4 addr show scope global` \
         lists none): give the address to probe explicitly"
    )]
    NoIpv4Address { ns: String },
    #[error("cannot open the reflector on {addr} in namespace {ns} (is {ip} an address there?): {source}", ip = addr.ip())]
    Reflector {
        ns: String,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot open the sender in namespace {ns} towards {to}: {source}")]
    Sender {
        ns: String,
        to: SocketAddr,
        #[source]
        source: io::Error,
    },
}

impl ProbeOptions {
    /// Checks the numbers, before touching any namespace.
    pub fn validate(&self) -> Result<(), ProbeError> {
        if self.count == 0 {
            return Err(ProbeError::ZeroCount);
        }
        if self.count > MAX_COUNT {
            return Err(ProbeError::CountTooLarge(self.count));
        }
        if self.rate_pps == 0 {
            return Err(ProbeError::ZeroRate);
        }
        if !(MIN_SIZE..=MAX_SIZE).contains(&self.size) {
            return Err(ProbeError::SizeOutOfRange(self.size));
        }
        if self.timeout.is_zero() {
            return Err(ProbeError::ZeroTimeout);
        }
        Ok(())
    }
}

/// Runs one probe: validates, finds the target address, opens both sockets,
/// warms the path up, sends `count` probes at `rate_pps`, and waits up to
/// `timeout` after the last send for the echoes.
pub fn run(opts: &ProbeOptions) -> Result<ProbeReport, ProbeError> {
    opts.validate()?;
    for ns in [&opts.from_ns, &opts.to_ns] {
        netns::validate_netns_name(ns)?;
        if !netns::exists(ns) {
            return Err(NetnsError::NoSuchNamespace(ns.clone()).into());
        }
    }
    let to_ip = match opts.to_addr {
        Some(ip) => ip,
        None => IpAddr::V4(first_global_ipv4(&opts.to_ns)?),
    };

    let bind_at = SocketAddr::new(to_ip, opts.port);
    let reflector = netns::run_in(&opts.to_ns, || UdpSocket::bind(bind_at))?.map_err(|source| {
        ProbeError::Reflector {
            ns: opts.to_ns.clone(),
            addr: bind_at,
            source,
        }
    })?;
    let to = reflector
        .local_addr()
        .map_err(|source| ProbeError::Reflector {
            ns: opts.to_ns.clone(),
            addr: bind_at,
            source,
        })?;
    let sender_err = |source| ProbeError::Sender {
        ns: opts.from_ns.clone(),
        to,
        source,
    };
    let sender = netns::run_in(&opts.from_ns, || -> io::Result<UdpSocket> {
        let any = match to_ip {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let s = UdpSocket::bind(SocketAddr::new(any, 0))?;
        s.connect(to)?;
        Ok(s)
    })?
    .map_err(sender_err)?;
    // Both sockets connected to each other: the kernel hands each only the
    // other's datagrams, so stray traffic is neither echoed nor counted.
    let from = sender.local_addr().map_err(sender_err)?;
    reflector
        .connect(from)
        .map_err(|source| ProbeError::Reflector {
            ns: opts.to_ns.clone(),
            addr: to,
            source,
        })?;
    // Blocking reads with a short timeout, so the loops see their stop
    // conditions. The option is on the socket, so the receiver's clone and
    // the warm-up share it.
    reflector
        .set_read_timeout(Some(POLL))
        .map_err(|source| ProbeError::Reflector {
            ns: opts.to_ns.clone(),
            addr: to,
            source,
        })?;
    sender.set_read_timeout(Some(POLL)).map_err(sender_err)?;
    let receiver = sender.try_clone().map_err(sender_err)?;

    let shared = Shared {
        stop_reflector: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        last_send: AtomicU64::new(0),
        receiver_ready: Barrier::new(2),
    };
    let (refl, rx, tx) = thread::scope(|s| {
        let refl = thread::Builder::new()
            .name("l2sw-probe-refl".into())
            .spawn_scoped(s, || reflect(&reflector, opts.count, &shared))
            .expect("spawn the probe reflector thread");
        let warmup_answered = warm_up(&sender, opts.size, opts.timeout);
        let rx = thread::Builder::new()
            .name("l2sw-probe-rx".into())
            .spawn_scoped(s, || receive(&receiver, opts, &shared))
            .expect("spawn the probe receiver thread");
        shared.receiver_ready.wait();
        let tx = send(&sender, opts, &shared, warmup_answered);
        let rx = rx.join();
        shared.stop_reflector.store(true, Ordering::Relaxed);
        let refl = refl.join();
        let refl = refl.unwrap_or_else(|p| std::panic::resume_unwind(p));
        let rx = rx.unwrap_or_else(|p| std::panic::resume_unwind(p));
        (refl, rx, tx)
    });

    let lost = tx.sent.saturating_sub(rx.received);
    let one_way_measured = opts.size >= STAMPED_SIZE;
    Ok(ProbeReport {
        from_ns: opts.from_ns.clone(),
        to_ns: opts.to_ns.clone(),
        to,
        size: opts.size,
        rate_pps: opts.rate_pps,
        sent: tx.sent,
        received: rx.received,
        lost,
        lost_forward: tx.sent.saturating_sub(refl.distinct).min(lost),
        lost_reverse: refl.distinct.saturating_sub(rx.received).min(lost),
        duplicates: rx.duplicates,
        reordered: rx.reordered,
        invalid: rx.invalid,
        send_errors: tx.errors,
        warmup_answered: tx.warmup_answered,
        send_duration_s: tx.duration.as_secs_f64(),
        rtt: rx.rtt.summary(),
        one_way_fwd: rx.fwd.summary(),
        one_way_rev: rx.rev.summary(),
        one_way_measured,
        one_way_method: if one_way_measured {
            ONE_WAY_METHOD
        } else {
            ONE_WAY_UNMEASURED
        }
        .to_string(),
        rtt_hist_encoded: rx.rtt.to_encoded(),
        fwd_hist_encoded: rx.fwd.to_encoded(),
        rev_hist_encoded: rx.rev.to_encoded(),
    })
}

impl ProbeReport {
    pub fn rtt_hist(&self) -> Result<LatencyHistogram, LatencyDecodeError> {
        LatencyHistogram::from_encoded(&self.rtt_hist_encoded)
    }

    pub fn fwd_hist(&self) -> Result<LatencyHistogram, LatencyDecodeError> {
        LatencyHistogram::from_encoded(&self.fwd_hist_encoded)
    }

    pub fn rev_hist(&self) -> Result<LatencyHistogram, LatencyDecodeError> {
        LatencyHistogram::from_encoded(&self.rev_hist_encoded)
    }

    /// The report for a terminal.
    pub fn render_text(&self) -> String {
        let mut out = format!(
            "probe {} -> {} ({} UDP, {} bytes, {} pps, {:.2} s)\n",
            self.from_ns, self.to_ns, self.to, self.size, self.rate_pps, self.send_duration_s
        );
        let pct = if self.sent == 0 {
            0.0
        } else {
            100.0 * self.lost as f64 / self.sent as f64
        };
        out += &format!(
            "sent {}, received {}, lost {} ({pct:.2} %: {} forward, {} reverse), \
             duplicates {}, reordered {}",
            self.sent,
            self.received,
            self.lost,
            self.lost_forward,
            self.lost_reverse,
            self.duplicates,
            self.reordered
        );
        if self.invalid > 0 {
            out += &format!(", invalid {}", self.invalid);
        }
        if self.send_errors > 0 {
            out += &format!(", send errors {}", self.send_errors);
        }
        out += "\n";
        if !self.warmup_answered {
            out += "warning: the warm-up probe got no answer\n";
        }
        out += &format!(
            "{:<14}{:>8}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}  (µs)\n",
            "", "count", "min", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"
        );
        let mut row = |name: &str, s: &LatencySummary| {
            out += &format!(
                "{name:<14}{:>8}{:>10.1}{:>10.1}{:>10.1}{:>10.1}{:>10.1}{:>10.1}{:>10.1}{:>10.1}\n",
                s.count,
                s.min_us,
                s.p50_us,
                s.p90_us,
                s.p99_us,
                s.p999_us,
                s.p9999_us,
                s.max_us,
                s.mean_us
            );
        };
        row("round trip", &self.rtt);
        if self.one_way_measured {
            row("one-way fwd", &self.one_way_fwd);
            row("one-way rev", &self.one_way_rev);
        }
        out += &format!("one-way delays: {}\n", self.one_way_method);
        out
    }
}

/// State the probe's threads share; only counters and flags.
struct Shared {
    stop_reflector: AtomicBool,
    /// Probes sent so far.
    sent: AtomicU64,
    /// Time of the last send, ns; 0 while still sending.
    last_send: AtomicU64,
    receiver_ready: Barrier,
}

/// Which sequence numbers were seen, one bit each.
struct SeqSet(Vec<u64>);

impl SeqSet {
    fn new(count: u64) -> SeqSet {
        SeqSet(vec![0; count.div_ceil(64) as usize])
    }

    /// Marks `seq`; false if it was already marked.
    fn insert(&mut self, seq: u64) -> bool {
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        let new = self.0[word] & bit == 0;
        self.0[word] |= bit;
        new
    }
}

fn get_u64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn now_ns() -> u64 {
    Timestamp::now().0
}

/// Errors a blocked `recv` with a read timeout returns when nothing came,
/// or when an earlier datagram drew an ICMP error (the connected socket
/// reports it once; the path may still work).
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionRefused
    )
}

#[derive(Default)]
struct ReflectorStats {
    /// Distinct in-range probes received.
    distinct: u64,
}

/// Echoes every datagram, stamped, until told to stop.
fn reflect(sock: &UdpSocket, count: u64, shared: &Shared) -> ReflectorStats {
    let mut buf = vec![0u8; MAX_SIZE + 1];
    let mut seen = SeqSet::new(count);
    let mut stats = ReflectorStats::default();
    while !shared.stop_reflector.load(Ordering::Relaxed) {
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if transient(&e) => continue,
            Err(_) => {
                // Unexpected, and maybe persistent: do not spin on it.
                thread::sleep(POLL);
                continue;
            }
        };
        let t_rx = now_ns();
        if n < MIN_SIZE {
            continue;
        }
        let seq = get_u64(&buf, 0);
        if seq < count && seen.insert(seq) {
            stats.distinct += 1;
        }
        if n >= STAMPED_SIZE {
            put_u64(&mut buf, 16, t_rx);
            put_u64(&mut buf, 24, now_ns());
        }
        // A failed echo is a lost probe; the sender's count shows it.
        let _ = sock.send(&buf[..n]);
    }
    stats
}

/// A probe datagram: sequence 0, no stamps, then the byte pattern.
fn probe_payload(size: usize) -> Vec<u8> {
    let mut buf: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    buf[..STAMPED_SIZE.min(size)].fill(0);
    buf
}

/// Sends one unmeasured probe and waits for its echo, up to three times, so
/// that neighbour resolution and switch learning are done before the
/// measured probes go out. Returns whether an echo came back.
fn warm_up(sock: &UdpSocket, size: usize, timeout: Duration) -> bool {
    let mut buf = probe_payload(size);
    put_u64(&mut buf, 0, WARMUP_SEQ);
    let mut echo = vec![0u8; MAX_SIZE + 1];
    let per_try = (timeout / WARMUP_TRIES).max(Duration::from_millis(10));
    for _ in 0..WARMUP_TRIES {
        put_u64(&mut buf, 8, now_ns());
        let _ = sock.send(&buf);
        let deadline = now_ns() + per_try.as_nanos() as u64;
        while now_ns() < deadline {
            match sock.recv(&mut echo) {
                Ok(n) if n >= MIN_SIZE && get_u64(&echo, 0) == WARMUP_SEQ => return true,
                _ => {}
            }
        }
    }
    false
}

struct SendStats {
    sent: u64,
    errors: u64,
    duration: Duration,
    warmup_answered: bool,
}

/// Sends the probes on an absolute schedule (probe i at start + i/rate), so
/// a late wake-up does not shift every later probe.
fn send(
    sock: &UdpSocket,
    opts: &ProbeOptions,
    shared: &Shared,
    warmup_answered: bool,
) -> SendStats {
    let mut buf = probe_payload(opts.size);
    let mut stats = SendStats {
        sent: 0,
        errors: 0,
        duration: Duration::ZERO,
        warmup_answered,
    };
    let start = now_ns();
    let mut t = start;
    for seq in 0..opts.count {
        let offset = u128::from(seq) * 1_000_000_000 / u128::from(opts.rate_pps);
        wait_until(start.saturating_add(offset.min(u128::from(u64::MAX)) as u64));
        t = now_ns();
        put_u64(&mut buf, 0, seq);
        put_u64(&mut buf, 8, t);
        match sock.send(&buf) {
            Ok(_) => {
                stats.sent += 1;
                shared.sent.store(stats.sent, Ordering::Release);
            }
            Err(_) => stats.errors += 1,
        }
    }
    stats.duration = Duration::from_nanos(t - start);
    // Never 0, which means "still sending".
    shared.last_send.store(now_ns().max(1), Ordering::Release);
    stats
}

/// Sleeps until shortly before `due`, then spins: sub-10 µs accuracy
/// without burning a core at low rates.
fn wait_until(due: u64) {
    loop {
        let now = now_ns();
        if now >= due {
            return;
        }
        let left = due - now;
        if left > SPIN_NS {
            thread::sleep(Duration::from_nanos(left - SPIN_NS));
        } else {
            std::hint::spin_loop();
        }
    }
}

struct ReceiveStats {
    received: u64,
    duplicates: u64,
    reordered: u64,
    invalid: u64,
    rtt: LatencyHistogram,
    fwd: LatencyHistogram,
    rev: LatencyHistogram,
}

/// Receives echoes until every sent probe is back or `timeout` has passed
/// since the last send.
fn receive(sock: &UdpSocket, opts: &ProbeOptions, shared: &Shared) -> ReceiveStats {
    let mut st = ReceiveStats {
        received: 0,
        duplicates: 0,
        reordered: 0,
        invalid: 0,
        rtt: LatencyHistogram::new(),
        fwd: LatencyHistogram::new(),
        rev: LatencyHistogram::new(),
    };
    let mut seen = SeqSet::new(opts.count);
    let mut highest: Option<u64> = None;
    let mut buf = vec![0u8; MAX_SIZE + 1];
    let timeout_ns = opts.timeout.as_nanos().min(u128::from(u64::MAX)) as u64;
    shared.receiver_ready.wait();
    loop {
        let last_send = shared.last_send.load(Ordering::Acquire);
        if last_send != 0
            && (st.received >= shared.sent.load(Ordering::Acquire)
                || now_ns() >= last_send.saturating_add(timeout_ns))
        {
            break;
        }
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if transient(&e) => continue,
            Err(_) => {
                thread::sleep(POLL);
                continue;
            }
        };
        let t_back = now_ns();
        if n != opts.size {
            st.invalid += 1;
            continue;
        }
        let seq = get_u64(&buf, 0);
        if seq == WARMUP_SEQ {
            // A late echo of the warm-up probe.
            continue;
        }
        if seq >= opts.count {
            st.invalid += 1;
            continue;
        }
        if !seen.insert(seq) {
            st.duplicates += 1;
            continue;
        }
        st.received += 1;
        match highest {
            Some(h) if seq < h => st.reordered += 1,
            _ => highest = Some(seq),
        }
        let t_send = get_u64(&buf, 8);
        st.rtt.record(t_back.saturating_sub(t_send));
        if n >= STAMPED_SIZE {
            let t_rx = get_u64(&buf, 16);
            let t_tx = get_u64(&buf, 24);
            st.fwd.record(t_rx.saturating_sub(t_send));
            st.rev.record(t_back.saturating_sub(t_tx));
        }
    }
    st
}

/// The first global IPv4 address of namespace `ns`, in the kernel's order
/// (the one `ip -4 addr show scope global` lists first).
pub fn first_global_ipv4(ns: &str) -> Result<Ipv4Addr, ProbeError> {
    let addrs = netns::rtnl(Some(ns))?
        .all_addrs()
        .map_err(|e| NetnsError::netlink_in(Some(ns), e))?;
    first_global(&addrs).ok_or_else(|| ProbeError::NoIpv4Address { ns: ns.to_string() })
}

fn first_global(addrs: &[IfAddr]) -> Option<Ipv4Addr> {
    addrs.iter().find_map(|a| match a.addr {
        IpAddr::V4(v4) if a.global => Some(v4),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ProbeOptions {
        ProbeOptions::new("a", "b")
    }

    #[test]
    fn options_are_validated_before_anything_else() {
        assert!(opts().validate().is_ok());
        let check = |f: fn(&mut ProbeOptions), want: &str| {
            let mut o = opts();
            f(&mut o);
            let e = run(&o).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        };
        check(|o| o.count = 0, "count must be at least 1");
        check(|o| o.count = MAX_COUNT + 1, "one run can track");
        check(|o| o.rate_pps = 0, "rate must be at least 1");
        check(|o| o.size = 15, "size 15 is out of range 16..=65000");
        check(|o| o.size = 65_001, "size 65001 is out of range");
        check(|o| o.timeout = Duration::ZERO, "timeout must be longer");
        check(|o| o.from_ns = "../etc".into(), "invalid namespace name");
        assert!(matches!(
            run(&ProbeOptions::new("l2sw-probe-nonexistent-a", "b")),
            Err(ProbeError::Netns(NetnsError::NoSuchNamespace(n))) if n == "l2sw-probe-nonexistent-a"
        ));
        for size in [MIN_SIZE, STAMPED_SIZE, MAX_SIZE] {
            let mut o = opts();
            o.size = size;
            assert!(o.validate().is_ok());
        }
    }

    #[test]
    fn address_discovery_takes_the_first_global_ipv4() {
        let a = |addr: &str, global| IfAddr {
            addr: addr.parse().unwrap(),
            prefix: 24,
            global,
        };
        let addrs = [
            a("127.0.0.1", false),
            a("fd00::1", true),
            a("10.1.2.3", true),
            a("192.0.2.9", true),
        ];
        assert_eq!(first_global(&addrs), Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(first_global(&addrs[..2]), None);
    }

    #[test]
    fn seq_set_finds_duplicates() {
        let mut s = SeqSet::new(130);
        assert!(s.insert(0));
        assert!(s.insert(129));
        assert!(!s.insert(129));
        assert!(s.insert(64));
        assert!(!s.insert(0));
    }

    #[test]
    fn payload_layout() {
        let mut p = probe_payload(40);
        assert_eq!(p.len(), 40);
        assert!(p[..32].iter().all(|&b| b == 0));
        assert_eq!(p[32], 32);
        put_u64(&mut p, 8, 0x0102_0304_0506_0708);
        assert_eq!(p[8], 0x08);
        assert_eq!(get_u64(&p, 8), 0x0102_0304_0506_0708);
        assert_eq!(probe_payload(MIN_SIZE).len(), MIN_SIZE);
    }

    #[test]
    fn report_renders_and_serializes() {
        let mut h = LatencyHistogram::new();
        h.record(25_000);
        let r = ProbeReport {
            from_ns: "a".into(),
            to_ns: "b".into(),
            to: "10.0.0.2:7000".parse().unwrap(),
            size: 64,
            rate_pps: 1000,
            sent: 2,
            received: 1,
            lost: 1,
            lost_forward: 1,
            lost_reverse: 0,
            duplicates: 0,
            reordered: 0,
            invalid: 0,
            send_errors: 0,
            warmup_answered: true,
            send_duration_s: 0.001,
            rtt: h.summary(),
            one_way_fwd: h.summary(),
            one_way_rev: h.summary(),
            one_way_measured: true,
            one_way_method: ONE_WAY_METHOD.into(),
            rtt_hist_encoded: h.to_encoded(),
            fwd_hist_encoded: h.to_encoded(),
            rev_hist_encoded: h.to_encoded(),
        };
        let text = r.render_text();
        assert!(
            text.contains("lost 1 (50.00 %: 1 forward, 0 reverse)"),
            "{text}"
        );
        assert!(text.contains("not RTT/2"), "{text}");
        assert!(text.contains("round trip"), "{text}");
        let json = serde_json::to_string(&r).unwrap();
        let back: ProbeReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.rtt_hist().unwrap().count(), 1);
    }
}
