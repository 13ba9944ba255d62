//! The control socket's calls below `std`: who is on the other end of a
//! connection (`SO_PEERCRED`, `SO_PEERGROUPS`) and which gid a group name
//! has (`getgrnam_r`). Safe wrappers; every `unsafe` block says why it holds.
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::ffi::CString;
use std::io;
use std::os::fd::AsFd;
use std::os::fd::AsRawFd;

/// The credentials of the process that connected, as the kernel recorded
/// them at `connect` time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// `SO_PEERCRED` of a connected Unix socket.
pub fn peer_cred(sock: &impl AsFd) -> io::Result<PeerCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the fd is a live socket borrowed for the call; `cred` is a
    // writable `ucred` and `len` holds its exact size, so the kernel writes
    // at most `len` bytes into memory we own.
    let ret = unsafe {
        libc::getsockopt(
            sock.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// `SO_PEERGROUPS`: the supplementary groups of the connecting process.
pub fn peer_groups(sock: &impl AsFd) -> io::Result<Vec<u32>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: the fd is a live socket borrowed for the call; the buffer
        // is `len` bytes of `gid_t`s we own; the kernel writes at most `len`
        // bytes and stores the size it needed in `len`.
        let ret = unsafe {
            libc::getsockopt(
                sock.as_fd().as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let need = len as usize / std::mem::size_of::<libc::gid_t>();
        if ret == 0 {
            groups.truncate(need);
            return Ok(groups);
        }
        let err = io::Error::last_os_error();
        // ERANGE: the buffer was too small; `len` now says how big it must be.
        if err.raw_os_error() == Some(libc::ERANGE) && need > groups.len() && need <= 65536 {
            groups.resize(need, 0);
            continue;
        }
        return Err(err);
    }
}

/// The gid of group `name` (through NSS, as `getent group` finds it);
/// `Ok(None)` when there is no such group.
pub fn group_gid(name: &str) -> io::Result<Option<u32>> {
    let cname = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "group name contains NUL"))?;
    let mut buf: Vec<libc::c_char> = vec![0; 4096];
    loop {
        let mut grp = libc::group {
            gr_name: std::ptr::null_mut(),
            gr_passwd: std::ptr::null_mut(),
            gr_gid: 0,
            gr_mem: std::ptr::null_mut(),
        };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: `cname` is a NUL-terminated string that outlives the call;
        // `grp`, `buf` (of the length passed) and `result` are writable
        // memory we own. The strings `grp` points to live in `buf`, and we
        // read only `gr_gid`, a plain integer, before `buf` is dropped.
        let ret = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if ret == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if ret != 0 {
            return Err(io::Error::from_raw_os_error(ret));
        }
        return Ok((!result.is_null()).then_some(grp.gr_gid));
    }
}

/// The effective uid of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn the_peer_of_a_socket_pair_is_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        let c = peer_cred(&a).unwrap();
        assert_eq!(c.pid as u32, std::process::id());
        assert_eq!(c.uid, euid());
        let _ = peer_groups(&a).unwrap();
    }

    #[test]
    fn groups_resolve_by_name() {
        assert_eq!(group_gid("root").unwrap(), Some(0));
        assert_eq!(group_gid("no-such-group-l2sw").unwrap(), None);
    }
}
