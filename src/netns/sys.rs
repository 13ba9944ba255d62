//! The system calls namespaces need: setns(2) to enter one, unshare(2) to
//! make one, mount(2)/umount2(2) to pin one under /run/netns as iproute2
//! does. Each is wrapped in a safe function whose invariant is written down.
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Moves the calling thread into the network namespace `ns` refers to.
/// Only call this on a thread that exists for that purpose: it changes the
/// thread's namespace for good.
pub fn enter_netns(ns: &File) -> io::Result<()> {
    // SAFETY: `ns` is an open file, so its fd is valid for the duration of the
    // call; setns only reads the fd and affects this thread's namespace.
    check(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) })
}

/// Gives the calling thread a new, empty network namespace. Same rule as
/// [`enter_netns`]: only on a thread made for it.
pub fn unshare_netns() -> io::Result<()> {
    // SAFETY: unshare takes no pointers; CLONE_NEWNET alone only changes the
    // calling thread's network namespace (threads may do so individually).
    check(unsafe { libc::unshare(libc::CLONE_NEWNET) })
}

/// `mount --bind src dst`.
pub fn bind_mount(src: &Path, dst: &Path) -> io::Result<()> {
    let (s, d) = (cstr(src)?, cstr(dst)?);
    let none = c"none";
    // SAFETY: all strings are NUL-terminated and live across the call; the
    // data argument may be null for a bind mount.
    check(unsafe {
        libc::mount(
            s.as_ptr(),
            d.as_ptr(),
            none.as_ptr(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    })
}

/// `mount --make-rshared dir`; EINVAL when `dir` is not a mount point.
pub fn make_rshared(dir: &Path) -> io::Result<()> {
    let d = cstr(dir)?;
    let empty = c"";
    let none = c"none";
    // SAFETY: as in bind_mount; a propagation change reads only the target.
    check(unsafe {
        libc::mount(
            empty.as_ptr(),
            d.as_ptr(),
            none.as_ptr(),
            libc::MS_SHARED | libc::MS_REC,
            std::ptr::null(),
        )
    })
}

/// `mount --rbind dir dir`: makes `dir` a mount point of its own.
pub fn rbind_onto_itself(dir: &Path) -> io::Result<()> {
    let d = cstr(dir)?;
    let none = c"none";
    // SAFETY: as in bind_mount.
    check(unsafe {
        libc::mount(
            d.as_ptr(),
            d.as_ptr(),
            none.as_ptr(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    })
}

/// `umount -l path`.
pub fn umount_detach(path: &Path) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: `p` is NUL-terminated and lives across the call.
    check(unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) })
}
