//! The only place in the crate that talks to the kernel below `std`: ioctls,
//! socket options, `recvmmsg`/`sendmmsg` and the C structs they take.
//!
//! Everything is wrapped in safe functions and types that own their file
//! descriptors (`OwnedFd` / `File`); no raw pointer leaves this module. Errors
//! are plain `io::Error`s: the backends above add the step and the interface
//! name.
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod netdev;
pub mod packet;
pub mod peek;
pub mod ring;
pub mod timer;
pub mod tun;
pub mod udp;

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// C structs this module hands to the kernel, for which all-zero bytes are a
/// valid value (integers, arrays of integers, null pointers).
///
/// Private to `sys`, so [`zeroed`] cannot be instantiated with anything else.
trait PlainC: Sized {}

impl PlainC for libc::c_int {}
impl PlainC for libc::ifreq {}
impl PlainC for libc::sockaddr_ll {}
impl PlainC for libc::tpacket_stats {}
impl PlainC for libc::tpacket_req {}
impl PlainC for libc::packet_mreq {}
impl PlainC for libc::mmsghdr {}
impl PlainC for libc::msghdr {}
impl PlainC for libc::iovec {}

/// A zero-initialised C struct, the way the kernel ABI expects unused fields.
fn zeroed<T: PlainC>() -> T {
    // SAFETY: `PlainC` is implemented only for the C structs listed above,
    // made of integers, integer arrays and raw pointers, for which the
    // all-zero bit pattern is a valid (null / zero) value.
    unsafe { std::mem::zeroed() }
}

/// Turns a libc `-1 + errno` return into an `io::Error`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Takes ownership of a descriptor a syscall just returned (or its error).
fn owned_fd(ret: libc::c_int) -> io::Result<OwnedFd> {
    let fd = cvt(ret)?;
    // SAFETY: `fd` was just returned by the kernel as a new descriptor that
    // nothing else owns; wrapping it makes it closed exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt` with a typed value: the kernel reads exactly `size_of::<T>()`
/// bytes from `value`.
fn setsockopt<T: PlainC>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `value` is a live, initialised `T` borrowed for the call and the
    // length passed is its exact size, so the kernel reads only valid memory.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    cvt(ret).map(drop)
}

/// `getsockopt` into a typed value: the kernel writes at most
/// `size_of::<T>()` bytes, into a zeroed `T`.
fn getsockopt<T: PlainC>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int) -> io::Result<T> {
    use std::os::fd::AsRawFd;
    let mut value: T = zeroed();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and exclusively borrowed for the
    // call, and `len` is the size of `value`, so the kernel writes within it.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut T).cast(),
            &mut len,
        )
    };
    cvt(ret).map(|_| value)
}

/// The effective user id (tests use it to insist on running as root).
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// An `ifreq` carrying `name`, for the ioctls that address a device by name.
fn ifreq_with_name(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut ifr: libc::ifreq = zeroed();
    for (dst, &src) in ifr.ifr_name.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    Ok(ifr)
}

/// The NUL-terminated name in a C `char` array, as a `String`.
fn c_name(raw: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_name_round_trips_and_rejects_bad_lengths() {
        let ifr = ifreq_with_name("veth0").unwrap();
        assert_eq!(c_name(&ifr.ifr_name), "veth0");
        let max = "a".repeat(libc::IFNAMSIZ - 1);
        assert_eq!(c_name(&ifreq_with_name(&max).unwrap().ifr_name), max);
        assert!(ifreq_with_name("").is_err());
        assert!(ifreq_with_name(&"a".repeat(libc::IFNAMSIZ)).is_err());
        assert!(ifreq_with_name("a\0b").is_err());
    }
}
