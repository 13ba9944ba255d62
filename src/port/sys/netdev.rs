//! Looking up network devices and setting them up: index <-> name, MTU, MAC
//! address and the UP flag, through the classic `SIOC*` ioctls.
//!
//! Everything here is resolved in the calling thread's network namespace.
//! These run when a port is opened and on the periodic health check, never
//! per frame, so each call opens its own short-lived control socket.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::{c_name, cvt, ifreq_with_name, owned_fd};

/// The index of interface `name` (`ENODEV` when there is none).
pub fn name_to_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(index)
    }
}

/// The current name of interface `index` (`ENXIO` when there is none).
pub fn index_to_name(index: u32) -> io::Result<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` is IF_NAMESIZE bytes, the size if_indextoname writes at
    // most (name plus NUL), and lives across the call.
    let ret = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if ret.is_null() {
        Err(io::Error::last_os_error())
    } else {
        Ok(c_name(&buf))
    }
}

/// Whether an interface with this index exists now.
pub fn index_exists(index: u32) -> bool {
    match index_to_name(index) {
        Ok(_) => true,
        // Anything but "no such device" (say EMFILE) says nothing about the
        // device, so it is not reported as gone.
        Err(e) => !matches!(e.raw_os_error(), Some(libc::ENXIO) | Some(libc::ENODEV)),
    }
}

/// The MTU of interface `name`.
pub fn mtu(name: &str) -> io::Result<u32> {
    let mut ifr = ifreq_with_name(name)?;
    ioctl_ifreq(libc::SIOCGIFMTU, &mut ifr)?;
    // SAFETY: SIOCGIFMTU succeeded, so the kernel wrote `ifru_mtu`; it is a
    // plain integer, valid for any bit pattern.
    let mtu = unsafe { ifr.ifr_ifru.ifru_mtu };
    Ok(u32::try_from(mtu).unwrap_or(0))
}

/// The Ethernet address of interface `name`; `None` when the device is not
/// Ethernet-like (no 6-byte hardware address).
pub fn hwaddr(name: &str) -> io::Result<Option<[u8; 6]>> {
    let mut ifr = ifreq_with_name(name)?;
    ioctl_ifreq(libc::SIOCGIFHWADDR, &mut ifr)?;
    // SAFETY: SIOCGIFHWADDR succeeded, so the kernel wrote `ifru_hwaddr`, a
    // `sockaddr` of integers, valid for any bit pattern.
    let sa = unsafe { ifr.ifr_ifru.ifru_hwaddr };
    if sa.sa_family != libc::ARPHRD_ETHER {
        return Ok(None);
    }
    let mut mac = [0u8; 6];
    for (dst, &src) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *dst = src as u8;
    }
    Ok(Some(mac))
}

/// Whether interface `name` is up and operational (IFF_UP and IFF_RUNNING:
/// administratively up, with carrier), in the calling thread's namespace.
pub fn is_running(name: &str) -> io::Result<bool> {
    let mut ifr = ifreq_with_name(name)?;
    ioctl_ifreq(libc::SIOCGIFFLAGS, &mut ifr)?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the kernel wrote `ifru_flags`, a
    // plain integer.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    let want = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    Ok(flags & want == want)
}

/// Sets IFF_UP on interface `name` (a no-op when it is already up).
pub fn set_up(name: &str) -> io::Result<()> {
    let mut ifr = ifreq_with_name(name)?;
    ioctl_ifreq(libc::SIOCGIFFLAGS, &mut ifr)?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the kernel wrote `ifru_flags`, a
    // plain integer.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    let up = libc::IFF_UP as libc::c_short;
    if flags & up != 0 {
        return Ok(());
    }
    ifr.ifr_ifru.ifru_flags = flags | up;
    ioctl_ifreq(libc::SIOCSIFFLAGS, &mut ifr)
}

/// A datagram socket to carry device ioctls; any socket family reaches the
/// generic `dev_ioctl` handler, and AF_INET needs no privilege to open.
fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call with constant arguments; the result is
    // checked and wrapped by `owned_fd`.
    owned_fd(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })
}

/// Runs one of the `SIOC*` requests that read or write a single `ifreq`.
fn ioctl_ifreq(request: libc::Ioctl, ifr: &mut libc::ifreq) -> io::Result<()> {
    let sock = control_socket()?;
    // SAFETY: every request passed here (SIOCGIFMTU, SIOCGIFHWADDR,
    // SIOCGIFFLAGS, SIOCSIFFLAGS) reads and writes exactly one `struct ifreq`,
    // and `ifr` is a valid, exclusively borrowed one for the whole call.
    let ret = unsafe { libc::ioctl(sock.as_raw_fd(), request, ifr as *mut libc::ifreq) };
    cvt(ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_both_ways() {
        let index = name_to_index("lo").expect("lo exists");
        assert_eq!(index_to_name(index).unwrap(), "lo");
        assert!(index_exists(index));
        assert!(mtu("lo").unwrap() > 0);
        // Loopback is ARPHRD_LOOPBACK, not Ethernet.
        assert_eq!(hwaddr("lo").unwrap(), None);
    }

    #[test]
    fn missing_devices_report_errno() {
        let e = name_to_index("l2sw-nonexist").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
        assert!(!index_exists(u32::MAX - 7));
        assert_eq!(
            mtu("l2sw-nonexist").unwrap_err().raw_os_error(),
            Some(libc::ENODEV)
        );
    }
}
