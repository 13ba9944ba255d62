//! Looking at bytes waiting on a stream socket without taking them
//! (`recv(MSG_PEEK)`), so a vhost-user message can be read ahead of the
//! `vhost` crate that will consume it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Fills `buf` from the bytes waiting on `sock`, blocking until `buf.len()`
/// bytes are there (or the peer closes: fewer are returned). Nothing is
/// consumed, and file descriptors passed with the bytes stay queued.
pub fn peek_exact(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes for
        // the duration of the call, and `sock` is an open descriptor
        // borrowed for it; recv writes at most `len` bytes into it.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_PEEK | libc::MSG_WAITALL,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
