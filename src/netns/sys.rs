//! The one system call the namespace module needs outside iproute2: setns(2).
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Moves the calling thread into the network namespace `ns` refers to.
/// Only call this on a thread that exists for that purpose: it changes the
/// thread's namespace for good.
pub fn enter_netns(ns: &File) -> io::Result<()> {
    // SAFETY: `ns` is an open file, so its fd is valid for the duration of the
    // call; setns only reads the fd and affects this thread's namespace.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
