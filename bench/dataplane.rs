//! Criterion benchmarks of the batch pipeline through the dataplane thread:
//! frames in through one port, `Switch::decide` per frame, out through
//! another port, known unicast (the destination is a static FDB entry).
//! Throughput is reported in frames per second.
//!
//! - `dataplane/pipe_ports`: two `PipePort`s (Unix datagram socket pairs, one
//!   frame per datagram), driven as `src/dataplane/tests.rs` drives them: the
//!   benchmark thread sends 32 frames into one peer and reads them from the
//!   other. The kernel queues at most `net.unix.max_dgram_qlen` (10 by
//!   default) datagrams per socket, so the 32 frames go in windows of 8;
//!   the dataplane therefore sees batches of up to 8, and the figure includes
//!   two socket calls per frame and `PipePeer::recv_timeout`'s per-frame
//!   buffer.
//! - `dataplane/mem_ports`: the same dataplane with two in-memory ports
//!   defined here: the ingress port fills every receive call with a full
//!   batch of 32 frames until a budget is spent, the egress port counts what
//!   it is given. This isolates the dataplane's own cost per 32-frame batch.
//!
//! Run: `cargo bench --bench dataplane` (add `-- --quick` for a fast pass).

use std::hint::black_box;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use l2sw::dataplane::{DataplaneHandle, PortMeta, Spawned};
use l2sw::port::pipe::PipePort;
use l2sw::port::{
    OffloadCaps, Port, PortError, PortInfo, PortKind, RxBatch, RxStatus, SendError, TxFrame,
    BATCH_SIZE, RX_HEADROOM,
};
use l2sw::switch::{PortPolicy, Settings};
use l2sw::wire::{write_header, MacAddr};

const MTU: u32 = 1500;
/// Frames in flight through the pipe ports at once: below the kernel's
/// default Unix datagram queue of 10, so no frame is ever dropped.
const PIPE_WINDOW: usize = 8;
/// How long a benchmark waits for frames before it declares them lost.
const STALL: Duration = Duration::from_secs(10);

fn station(last: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, last])
}

/// A minimum-size IPv4 frame from station 1 to station 2.
fn frame() -> Vec<u8> {
    let mut f = vec![0u8; 60];
    write_header(&mut f, station(2), station(1), 0x0800).expect("60 bytes hold a header");
    f
}

fn meta(name: &str) -> PortMeta {
    PortMeta {
        name: name.to_string(),
        netns: None,
        policy: PortPolicy::default(),
    }
}

/// A dataplane with `ingress` and `egress`, station 2 statically on egress.
fn dataplane(ingress: Box<dyn Port>, egress: Box<dyn Port>) -> Spawned {
    let spawned = DataplaneHandle::spawn(Settings::default()).expect("dataplane thread");
    spawned
        .handle
        .add_port(ingress, meta("in"))
        .expect("ingress port");
    spawned
        .handle
        .add_port(egress, meta("out"))
        .expect("egress port");
    spawned
        .handle
        .fdb_add(station(2), 0, "out")
        .expect("static entry");
    spawned
}

fn stop(spawned: Spawned) {
    spawned.handle.stop();
    let _ = spawned.thread.join();
}

fn pipe_ports(c: &mut Criterion) {
    let (in_port, in_peer) = PipePort::pair("in", MTU).expect("socket pair");
    let (out_port, out_peer) = PipePort::pair("out", MTU).expect("socket pair");
    let spawned = dataplane(Box::new(in_port), Box::new(out_port));
    let f = frame();

    let mut g = c.benchmark_group("dataplane");
    g.throughput(Throughput::Elements(BATCH_SIZE as u64));
    g.bench_function("pipe_ports", |bench| {
        bench.iter(|| {
            for _ in 0..BATCH_SIZE / PIPE_WINDOW {
                for _ in 0..PIPE_WINDOW {
                    in_peer.send(black_box(&f)).expect("send into the switch");
                }
                for _ in 0..PIPE_WINDOW {
                    out_peer
                        .recv_timeout(STALL)
                        .expect("a frame out of the switch");
                }
            }
        })
    });
    g.finish();
    stop(spawned);
}

/// Ingress port: hands out copies of one frame, a full batch per call, until
/// the budget the benchmark sets is spent. Its fd is a socket the benchmark
/// writes a byte to after raising the budget, so the (edge-triggered) event
/// loop looks at the port again.
struct MemSource {
    frame: Vec<u8>,
    budget: Arc<AtomicU64>,
    wake: UnixDatagram,
}

impl MemSource {
    /// Takes up to `max` frames from the budget.
    fn take(&self, max: u64) -> u64 {
        self.budget
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                (b > 0).then(|| b - b.min(max))
            })
            .map(|b| b.min(max))
            .unwrap_or(0)
    }
}

/// Egress port: counts the frames it is given; nothing ever arrives on it.
struct MemSink {
    delivered: Arc<AtomicU64>,
    /// A socket nobody writes to, for the event loop to watch; its peer is
    /// kept so it never reports a hang-up.
    quiet: (UnixDatagram, UnixDatagram),
}

fn mem_info(name: &str) -> PortInfo {
    PortInfo {
        kind: PortKind::Pipe,
        ifname: name.to_string(),
        ifindex: None,
        mtu: MTU,
        mac: None,
        capabilities: Vec::new(),
        peer: None,
    }
}

impl Port for MemSource {
    fn name(&self) -> &str {
        "in"
    }

    fn info(&self) -> PortInfo {
        mem_info("in")
    }

    fn raw_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    fn mtu(&self) -> u32 {
        MTU
    }

    fn recv_batch(&mut self, batch: &mut RxBatch) -> Result<usize, PortError> {
        let cap = batch.capacity() as u64;
        let mut n = self.take(cap);
        if n < cap {
            // Out of budget: consume the wake-ups, then look once more, so a
            // budget raised meanwhile is not missed (its wake-up may have
            // just been consumed).
            let mut byte = [0u8; 1];
            while self.wake.recv(&mut byte).is_ok() {}
            n += self.take(cap - n);
        }
        let len = self.frame.len();
        for i in 0..n as usize {
            let slot = batch.slot_mut(i);
            slot.buf_mut()[RX_HEADROOM..RX_HEADROOM + len].copy_from_slice(&self.frame);
            slot.set(RX_HEADROOM, len, RxStatus::Complete);
        }
        batch.set_len(n as usize);
        Ok(n as usize)
    }

    fn offload_caps(&self) -> OffloadCaps {
        OffloadCaps::NONE
    }

    fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> (usize, Option<SendError>) {
        (frames.len(), None)
    }

    fn check(&mut self) -> Result<(), PortError> {
        Ok(())
    }
}

impl Port for MemSink {
    fn name(&self) -> &str {
        "out"
    }

    fn info(&self) -> PortInfo {
        mem_info("out")
    }

    fn raw_fd(&self) -> RawFd {
        self.quiet.0.as_raw_fd()
    }

    fn mtu(&self) -> u32 {
        MTU
    }

    fn recv_batch(&mut self, batch: &mut RxBatch) -> Result<usize, PortError> {
        batch.set_len(0);
        Ok(0)
    }

    fn offload_caps(&self) -> OffloadCaps {
        OffloadCaps::NONE
    }

    fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> (usize, Option<SendError>) {
        // One atomic per batch, as a real port makes one system call.
        self.delivered
            .fetch_add(frames.len() as u64, Ordering::Release);
        (frames.len(), None)
    }

    fn check(&mut self) -> Result<(), PortError> {
        Ok(())
    }
}

fn mem_ports(c: &mut Criterion) {
    let budget = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(AtomicU64::new(0));
    let (wake, kick) = UnixDatagram::pair().expect("socket pair");
    wake.set_nonblocking(true).expect("non-blocking");
    kick.set_nonblocking(true).expect("non-blocking");
    let source = MemSource {
        frame: frame(),
        budget: budget.clone(),
        wake,
    };
    let sink = MemSink {
        delivered: delivered.clone(),
        quiet: UnixDatagram::pair().expect("socket pair"),
    };
    let spawned = dataplane(Box::new(source), Box::new(sink));

    let mut g = c.benchmark_group("dataplane");
    g.throughput(Throughput::Elements(BATCH_SIZE as u64));
    g.bench_function("mem_ports", |bench| {
        bench.iter_custom(|iters| {
            let frames = iters * BATCH_SIZE as u64;
            let target = delivered.load(Ordering::Acquire) + frames;
            let start = Instant::now();
            budget.fetch_add(frames, Ordering::AcqRel);
            match kick.send(&[1]) {
                // A full queue already holds a wake-up the port has not read.
                Err(e) if e.kind() != ErrorKind::WouldBlock => panic!("wake-up: {e}"),
                _ => {}
            }
            while delivered.load(Ordering::Acquire) < target {
                assert!(start.elapsed() < STALL, "the dataplane stalled");
                std::thread::yield_now();
            }
            start.elapsed()
        })
    });
    g.finish();
    stop(spawned);
}

criterion_group!(benches, pipe_ports, mem_ports);
criterion_main!(benches);
