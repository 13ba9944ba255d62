//! A token bucket for log lines triggered by frames, so that a flood of bad
//! frames cannot flood the log.

use crate::switch::Timestamp;

#[derive(Debug)]
pub struct RateLimit {
    per_sec: u32,
    window_start: Timestamp,
    used: u32,
    suppressed: u64,
}

impl RateLimit {
    pub fn new(per_sec: u32) -> RateLimit {
        RateLimit {
            per_sec,
            window_start: Timestamp::ZERO,
            used: 0,
            suppressed: 0,
        }
    }

    /// `Some(n)` when a line may be written; `n` lines were suppressed before it.
    pub fn allow(&mut self, now: Timestamp) -> Option<u64> {
        if now.since(self.window_start).as_secs() >= 1 {
            self.window_start = now;
            self.used = 0;
        }
        if self.used < self.per_sec {
            self.used += 1;
            let s = self.suppressed;
            self.suppressed = 0;
            Some(s)
        } else {
            self.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_second_and_reports_suppressed() {
        let mut r = RateLimit::new(2);
        let t = Timestamp::from_secs(10);
        assert_eq!(r.allow(t), Some(0));
        assert_eq!(r.allow(t), Some(0));
        assert_eq!(r.allow(t), None);
        assert_eq!(r.allow(t), None);
        assert_eq!(r.allow(Timestamp::from_secs(11)), Some(2));
    }
}
