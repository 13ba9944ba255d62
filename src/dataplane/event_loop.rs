//! The dataplane thread's event loop: wait for ready ports (or spin while
//! frames flow), run requests between batches, forward one batch per ready
//! port per round, and do the once-a-second housekeeping.

use std::time::Duration;

use crossbeam_channel::Receiver;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll};

use super::housekeeping::housekeeping;
use super::impair;
use super::meta::ReturnedPorts;
use super::pipeline::{forward_batch, release_impaired, Drained, Work};
use super::poll_mode::{BusyPoll, EpollDue, PollPacer};
use super::state::{token_port, Job, State, TIMER_TOKEN, WAKER_TOKEN};
use crate::port::sys::timer::TimerFd;
use crate::port::{RxBatch, BATCH_SIZE};
use crate::switch::{PortId, Timestamp};

/// How often the FDB is aged and ports are checked.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// The event loop.
pub fn run(mut st: State, mut poll: Poll, jobs: Receiver<Job>, busy: BusyPoll) -> ReturnedPorts {
    let mut events = Events::with_capacity(256);
    let mut rx = RxBatch::new(BATCH_SIZE);
    let mut work = Work::default();
    // Ports that may still hold frames (edge-triggered: read until empty).
    let mut ready: Vec<PortId> = Vec::new();
    let mut next_tick = Timestamp::now().plus(HOUSEKEEPING);
    let mut pacer = PollPacer::new(busy);
    let mut epoll_due = EpollDue::default();
    // Wakes the loop when an impairment queue's next frame is due: epoll's
    // timeout counts milliseconds, a timerfd nanoseconds.
    let timer = TimerFd::new().and_then(|t| {
        poll.registry()
            .register(&mut SourceFd(&t.raw_fd()), TIMER_TOKEN, Interest::READABLE)
            .map(|_| t)
    });
    let timer = match timer {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!(
                "l2sw: no timerfd ({e}); impairment delays wake at epoll's millisecond steps"
            );
            None
        }
    };
    let mut armed: Option<u64> = None;
    while !st.stop {
        let now = Timestamp::now();
        let polling = !ready.is_empty() || pacer.spin(now);
        if polling && !epoll_due.now() {
            // Receive rings say from shared memory whether frames wait: no
            // system call per round while frames flow or the thread spins.
            let all_in_memory = st.rx_waiting(&mut ready);
            epoll_due.peeked(all_in_memory);
            if ready.is_empty() {
                std::hint::spin_loop();
            }
        } else {
            epoll_due.polled();
            let timeout = if polling {
                Duration::ZERO
            } else if timer.is_none() && st.impaired != 0 {
                let due = impair::next_due(&st).map_or(next_tick, Timestamp);
                due.min(next_tick).since(now)
            } else {
                next_tick.since(now)
            };
            if let Err(e) = poll.poll(&mut events, Some(timeout)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    eprintln!("l2sw: dataplane poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            for ev in events.iter() {
                if ev.token() == WAKER_TOKEN {
                    continue;
                }
                if ev.token() == TIMER_TOKEN {
                    if let Some(t) = &timer {
                        t.clear();
                    }
                    armed = None;
                    continue;
                }
                if let Some(id) = token_port(ev.token()) {
                    if !ready.contains(&id) {
                        ready.push(id);
                    }
                }
            }
        }
        while let Ok(job) = jobs.try_recv() {
            job(&mut st);
        }
        // One batch per ready port per round keeps ports fair under load.
        ready.retain(|&id| st.entry(id).is_some());
        if !ready.is_empty() {
            // Not `now`: the thread may have slept in epoll since.
            pacer.saw_frames(Timestamp::now());
        }
        let mut i = 0;
        while i < ready.len() {
            // Due frames leave before the next batch is read: under a
            // stream a round reads a batch from every ready port, and a
            // due frame would wait behind all of them. The earliest
            // deadline is looked at first, so a batch pays nothing more
            // than that look while nothing is due (the release after the
            // round, below, also retires emptied queues).
            if st.impaired != 0 && impair::next_due(&st).is_some_and(|d| d <= Timestamp::now().0) {
                release_impaired(&mut st, &mut rx, &mut work);
            }
            match forward_batch(&mut st, ready[i], &mut rx, &mut work) {
                Drained::More => i += 1,
                Drained::Empty | Drained::Removed => {
                    ready.swap_remove(i);
                }
            }
        }
        if st.impaired != 0 {
            release_impaired(&mut st, &mut rx, &mut work);
            if let Some(t) = &timer {
                let due = impair::next_due(&st);
                if due != armed {
                    let wait = due.map(|d| d.saturating_sub(Timestamp::now().0));
                    if t.set(wait).is_ok() {
                        armed = due;
                    }
                }
            }
        }
        let now = Timestamp::now();
        if now >= next_tick {
            housekeeping(&mut st, now);
            next_tick = now.plus(HOUSEKEEPING);
        }
    }
    // Hand every port back so the owner can clean up what it created.
    let ids: Vec<PortId> = st.switch.ports().collect();
    ids.into_iter()
        .filter_map(|id| st.take(id))
        .map(|e| (e.meta, e.port))
        .collect()
}
