//! The forwarding hot path allocates nothing once warm: frames through the
//! dataplane (learning, known unicast, floods, counters, latency histograms)
//! with a counting global allocator watching. No root needed: pipe ports.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use l2sw::dataplane::{DataplaneHandle, PortMeta};
use l2sw::port::pipe::PipePort;
use l2sw::switch::{PortPolicy, Settings};
use l2sw::wire::{write_header, MacAddr};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn frame(dst: MacAddr, src: MacAddr, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    write_header(&mut f, dst, src, 0x88b5).unwrap();
    f
}

#[test]
fn forwarding_allocates_nothing_once_warm() {
    let spawned = DataplaneHandle::spawn(Settings::default()).unwrap();
    let dp = spawned.handle;
    let mut peers = Vec::new();
    for i in 0..3 {
        let name = format!("p{i}");
        let (port, peer) = PipePort::pair(&name, 1500).unwrap();
        let meta = PortMeta {
            name,
            netns: None,
            policy: PortPolicy::default(),
        };
        dp.add_port(Box::new(port), meta).unwrap();
        peers.push(peer);
    }
    let (h0, h1) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
    let traffic = [
        (0, frame(MacAddr::BROADCAST, h0, 60)),
        (1, frame(h0, h1, 1514)),
        (0, frame(h1, h0, 200)),
        (
            2,
            frame(MacAddr([2, 0, 0, 0, 0, 9]), MacAddr([2, 0, 0, 0, 0, 3]), 64),
        ),
    ];
    let mut buf = vec![0u8; 2048];
    let round = |buf: &mut [u8]| {
        for (port, f) in &traffic {
            peers[*port].send(f).unwrap();
        }
        // Drain what arrived so socket buffers never fill.
        for p in &peers {
            while p.recv_into(buf, Duration::from_millis(3)).is_some() {}
        }
    };
    // Warm up: learning, first pair histograms, pending lists grow.
    for _ in 0..20 {
        round(&mut buf);
    }
    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..200 {
        round(&mut buf);
    }
    COUNTING.store(false, Ordering::SeqCst);
    let n = ALLOCS.load(Ordering::SeqCst);
    let stats = dp.stats().unwrap();
    assert!(stats.totals.counters.rx_frames >= 880, "traffic flowed");
    assert_eq!(n, 0, "{n} allocations while forwarding 800 frames");
    dp.stop();
    let _ = spawned.thread.join();
}
