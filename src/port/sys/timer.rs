//! A monotonic `timerfd`: the dataplane's alarm for the next frame an
//! impairment queue must send. epoll's own timeout counts in milliseconds;
//! a timerfd fires at the nanosecond asked (no timer slack applies to it).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::{cvt, owned_fd};

/// A non-blocking, close-on-exec CLOCK_MONOTONIC timerfd.
#[derive(Debug)]
pub struct TimerFd {
    fd: OwnedFd,
}

impl TimerFd {
    pub fn new() -> io::Result<TimerFd> {
        // SAFETY: timerfd_create takes two integers and returns a new
        // descriptor or -1; `owned_fd` takes ownership of it.
        let ret = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        Ok(TimerFd { fd: owned_fd(ret)? })
    }

    /// Fires once `in_ns` from now (0: at once); `None` disarms.
    pub fn set(&self, in_ns: Option<u64>) -> io::Result<()> {
        let ts = |ns: u64| libc::timespec {
            tv_sec: (ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (ns % 1_000_000_000) as libc::c_long,
        };
        // An all-zero it_value disarms, so "at once" is 1 ns.
        let value = match in_ns {
            Some(ns) => ts(ns.max(1)),
            None => ts(0),
        };
        let spec = libc::itimerspec {
            it_interval: ts(0),
            it_value: value,
        };
        // SAFETY: `spec` is a valid itimerspec on the stack for the call; the
        // old value pointer may be null.
        let ret =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        cvt(ret).map(drop)
    }

    /// Reads (and so clears) the expiry count; 0 when it has not fired.
    pub fn clear(&self) -> u64 {
        let mut n: u64 = 0;
        // SAFETY: reads at most 8 bytes into `n`, which is 8 bytes long and
        // lives across the call.
        let ret = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut n as *mut u64).cast::<libc::c_void>(),
                std::mem::size_of::<u64>(),
            )
        };
        if ret == 8 {
            n
        } else {
            0
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_when_due_and_not_when_disarmed() {
        let t = TimerFd::new().unwrap();
        assert_eq!(t.clear(), 0);
        t.set(Some(60_000_000_000)).unwrap();
        assert_eq!(t.clear(), 0, "fired a minute early");
        t.set(Some(0)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(t.clear(), 1, "0 fires at once");
        assert_eq!(t.clear(), 0, "reading clears it");
        t.set(Some(1_000_000)).unwrap();
        t.set(None).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(t.clear(), 0, "disarmed");
    }
}
