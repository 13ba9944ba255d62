//! When the dataplane thread sleeps in epoll and when it keeps polling.
//!
//! Sleeping costs a wake-up per burst: a context switch, and on a VM often
//! an exit to the hypervisor. Under a stream of frames that cost lands on
//! every few frames and stretches the round trip a TCP sender's window and a
//! ping-pong depend on. Polling for a short while after each frame catches
//! the next one of the same exchange without the wake-up, and costs nothing
//! once frames stop: the default polls for 50 µs after the last frame.
//! Measurements behind the choice are in docs/benchmarks.md.
//!
//! While polling, the thread looks at the ports' receive rings in memory
//! and asks epoll only every few rounds (`EpollDue`): under a stream, a
//! system call per round cost more than the frames it found.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::switch::Timestamp;

/// How long the default mode polls after the last frame: longer than the
/// gaps inside a TCP exchange or a ping-pong through a software path, short
/// enough that sparse traffic costs little (a frame every millisecond keeps
/// about 5 % of a core busy).
pub const DEFAULT_POLL: Duration = Duration::from_micros(50);

/// Whether the dataplane sleeps in epoll when idle or keeps polling.
///
/// Written (`Display`, JSON) and read (`FromStr`, JSON) as on the command
/// line: `off`, `always`, or a number of microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyPoll {
    /// Sleep as soon as no port is readable.
    Off,
    /// Keep polling for this long after the last frame, then sleep.
    For(Duration),
    /// Never sleep: one core spins.
    Always,
}

impl Default for BusyPoll {
    fn default() -> Self {
        BusyPoll::For(DEFAULT_POLL)
    }
}

impl std::fmt::Display for BusyPoll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BusyPoll::Off => f.write_str("off"),
            BusyPoll::Always => f.write_str("always"),
            BusyPoll::For(d) => write!(f, "{}", d.as_micros()),
        }
    }
}

impl std::str::FromStr for BusyPoll {
    type Err = String;
    fn from_str(v: &str) -> Result<BusyPoll, String> {
        match v {
            "off" => Ok(BusyPoll::Off),
            "always" => Ok(BusyPoll::Always),
            _ => match v.parse::<u64>() {
                Ok(0) => Ok(BusyPoll::Off),
                Ok(us) => Ok(BusyPoll::For(Duration::from_micros(us))),
                Err(_) => Err(format!(
                    "expected off, always or a number of microseconds, got {v:?}"
                )),
            },
        }
    }
}

impl Serialize for BusyPoll {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BusyPoll::For(d) => s.serialize_u64(d.as_micros() as u64),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for BusyPoll {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Us(u64),
            Word(String),
        }
        match Form::deserialize(d)? {
            Form::Us(0) => Ok(BusyPoll::Off),
            Form::Us(us) => Ok(BusyPoll::For(Duration::from_micros(us))),
            Form::Word(w) => w.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Decides, each time round the loop, whether to poll or sleep.
#[derive(Debug, Clone)]
pub struct PollPacer {
    mode: BusyPoll,
    last_frame: Timestamp,
}

impl PollPacer {
    pub fn new(mode: BusyPoll) -> PollPacer {
        PollPacer {
            mode,
            last_frame: Timestamp::ZERO,
        }
    }

    /// Whether to poll (wait with a zero timeout) instead of sleeping now.
    pub fn spin(&self, now: Timestamp) -> bool {
        match self.mode {
            BusyPoll::Off => false,
            BusyPoll::Always => true,
            BusyPoll::For(d) => now.since(self.last_frame) < d,
        }
    }

    /// Records that frames were ready to read at `now`.
    pub fn saw_frames(&mut self, now: Timestamp) {
        self.last_frame = now;
    }
}

/// Rounds between epoll calls while polling, when every port's receive
/// ring can be read from memory: epoll then only brings control wake-ups
/// (which the job channel sees anyway) and device errors.
const EPOLL_EVERY_ALL_RINGS: u32 = 64;
/// The same when some port is known only to epoll (a TAP, a socket without
/// a ring): its frames wait at most this many rounds.
const EPOLL_EVERY_MIXED: u32 = 4;

/// While the dataplane polls, how often it asks epoll instead of looking at
/// the receive rings: a system call per round would cost more than the
/// frames it finds (a round over rings is a few loads).
#[derive(Debug, Clone)]
pub struct EpollDue {
    rounds: u32,
    every: u32,
}

impl Default for EpollDue {
    fn default() -> Self {
        EpollDue {
            rounds: 0,
            every: EPOLL_EVERY_MIXED,
        }
    }
}

impl EpollDue {
    /// Whether this round must ask epoll.
    pub fn now(&self) -> bool {
        self.rounds >= self.every
    }

    /// A round looked at the rings only; `all_in_memory`: every port has one.
    pub fn peeked(&mut self, all_in_memory: bool) {
        self.rounds += 1;
        self.every = if all_in_memory {
            EPOLL_EVERY_ALL_RINGS
        } else {
            EPOLL_EVERY_MIXED
        };
    }

    /// A round asked epoll.
    pub fn polled(&mut self) {
        self.rounds = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_us(us: u64) -> Timestamp {
        Timestamp::from_duration(Duration::from_micros(1_000_000 + us))
    }

    #[test]
    fn each_mode_polls_when_it_says() {
        let mut off = PollPacer::new(BusyPoll::Off);
        let mut always = PollPacer::new(BusyPoll::Always);
        let mut default = PollPacer::new(BusyPoll::default());
        assert!(!default.spin(at_us(0)), "nothing seen yet: sleep");
        for p in [&mut off, &mut always, &mut default] {
            p.saw_frames(at_us(100));
        }
        assert!(!off.spin(at_us(101)));
        assert!(always.spin(at_us(101)) && always.spin(at_us(10_000_000)));
        assert!(default.spin(at_us(149)), "within 50 µs of the last frame");
        assert!(!default.spin(at_us(150)), "idle: sleep");
    }

    #[test]
    fn epoll_is_asked_often_only_while_a_port_lacks_a_ring() {
        let rounds_until_due = |all_in_memory: bool| {
            let mut due = EpollDue::default();
            due.polled();
            let mut n = 0;
            while !due.now() {
                due.peeked(all_in_memory);
                n += 1;
            }
            n
        };
        assert_eq!(rounds_until_due(true), EPOLL_EVERY_ALL_RINGS);
        assert_eq!(rounds_until_due(false), EPOLL_EVERY_MIXED);
        let mut due = EpollDue::default();
        for _ in 0..EPOLL_EVERY_MIXED {
            due.peeked(true);
        }
        due.peeked(false);
        assert!(due.now(), "a port without a ring shortens the wait at once");
    }

    #[test]
    fn busy_poll_reads_and_writes_as_the_command_line_does() {
        let j = |b: BusyPoll| serde_json::to_string(&b).unwrap();
        assert_eq!(j(BusyPoll::default()), "50");
        assert_eq!(j(BusyPoll::Off), "\"off\"");
        assert_eq!(j(BusyPoll::Always), "\"always\"");
        for b in [BusyPoll::Off, BusyPoll::Always, BusyPoll::default()] {
            assert_eq!(serde_json::from_str::<BusyPoll>(&j(b)).unwrap(), b);
            assert_eq!(b.to_string().parse::<BusyPoll>().unwrap(), b);
        }
        assert!("soon"
            .parse::<BusyPoll>()
            .unwrap_err()
            .contains("microseconds"));
    }
}
