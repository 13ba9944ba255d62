//! `LatencyHistogram::record` must not allocate: the dataplane calls it for
//! every forwarded frame. A counting global allocator (test-only, so the
//! library keeps the system allocator and `deny(unsafe_code)`) watches it.
//!
//! Also home of the `#[ignore]`d measurement of what one `record` costs:
//! `cargo test --release --test alloc_latency -- --ignored --nocapture`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::time::Instant;

use l2sw::observe::LatencyHistogram;

/// Counts allocations per thread, so the test harness's own threads (and
/// other tests in this binary) do not disturb the count.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

// SAFETY: forwards every call unchanged to the system allocator; the only
// extra work is bumping a const-initialised thread-local counter, which does
// not allocate (and `try_with` tolerates threads being torn down).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours, passed through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours, passed through.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A cheap spread of values over the whole range, 0 to beyond 60 s, without
/// a random number generator (which could allocate).
fn value(i: u64) -> u64 {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x >> (x % 29 + 28)
}

#[test]
fn the_counter_sees_allocations() {
    let before = allocations();
    black_box(vec![1u8; 100]);
    assert!(
        allocations() > before,
        "the counting allocator is not in use"
    );
}

#[test]
fn record_never_allocates() {
    let mut h = LatencyHistogram::new();
    let before = allocations();
    for i in 0..1_000_000 {
        h.record(value(i));
    }
    h.record(0);
    h.record(u64::MAX);
    h.reset();
    for i in 0..1000 {
        h.record(value(i));
    }
    let after = allocations();
    assert_eq!(h.count(), 1000);
    assert_eq!(after - before, 0, "record/reset allocated");
}

/// One `record` on this 2-core VM: 2.3-2.5 ns (see `LatencyHistogram::record`).
#[test]
#[ignore = "a measurement, not a check: run with --ignored --nocapture"]
fn record_cost() {
    let mut h = LatencyHistogram::new();
    let values: Vec<u64> = (0..4096).map(value).collect();
    let small: Vec<u64> = (0..4096).map(|i| 500 + value(i) % 20_000).collect();
    for (name, vals) in [("spread 0..68 s", &values), ("0.5..20 µs", &small)] {
        let mut best = f64::MAX;
        for _ in 0..5 {
            let n = 20_000_000u64;
            let start = Instant::now();
            for i in 0..n {
                h.record(black_box(vals[(i & 4095) as usize]));
            }
            best = best.min(start.elapsed().as_nanos() as f64 / n as f64);
        }
        println!("record ({name}): {best:.2} ns per call (best of 5 x 20M)");
    }
    black_box(h.count());
}
