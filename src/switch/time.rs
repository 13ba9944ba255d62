//! `Timestamp`: monotonic time handed to the forwarding core by its caller.
//!
//! The core never reads a clock; the dataplane passes `Timestamp::now()` and
//! tests pass whatever instant they need, which makes ageing deterministic.

use std::time::Duration;

/// Nanoseconds on a monotonic clock (CLOCK_MONOTONIC in the dataplane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub fn from_secs(s: u64) -> Timestamp {
        Timestamp(s.saturating_mul(1_000_000_000))
    }

    pub fn from_duration(d: Duration) -> Timestamp {
        Timestamp(d.as_nanos().min(u64::MAX as u128) as u64)
    }

    /// Time elapsed since `earlier`, zero if `earlier` is in the future.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(d.as_nanos().min(u64::MAX as u128) as u64),
        )
    }

    /// Reads CLOCK_MONOTONIC through std. Only the I/O layers call this.
    pub fn now() -> Timestamp {
        use std::sync::OnceLock;
        use std::time::Instant;
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        let epoch = *EPOCH.get_or_init(Instant::now);
        // Offset by one second so that ZERO is always strictly in the past.
        Timestamp::from_duration(epoch.elapsed() + Duration::from_secs(1))
    }
}
