//! The bpf(2) system call and the one socket option the fast path needs,
//! wrapped in safe functions over owned file descriptors.
//!
//! Each command gets its own `#[repr(C)]` prefix of `union bpf_attr`
//! (`include/uapi/linux/bpf.h`); the kernel zero-fills the part of the union
//! we do not pass. Every buffer handed to the kernel is a slice whose length
//! was checked against what the kernel will write or read.
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::asm::Insn;

// bpf(2) commands (`enum bpf_cmd`).
const MAP_CREATE: u32 = 0;
const MAP_LOOKUP_ELEM: u32 = 1;
const MAP_UPDATE_ELEM: u32 = 2;
const MAP_GET_NEXT_KEY: u32 = 4;
const PROG_LOAD: u32 = 5;
#[cfg(test)]
const PROG_TEST_RUN: u32 = 10;
const MAP_LOOKUP_AND_DELETE_ELEM: u32 = 21;
const LINK_CREATE: u32 = 28;

/// `enum bpf_attach_type`: tcx on the ingress side of a device (Linux 6.6).
const BPF_TCX_INGRESS: u32 = 46;
/// `SO_ATTACH_BPF` / `SO_DETACH_BPF` (asm-generic/socket.h).
const SO_ATTACH_BPF: libc::c_int = 50;
const SO_DETACH_BPF: libc::c_int = 27;

/// Map types the fast path uses (`enum bpf_map_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    PercpuHash = 5,
    PercpuArray = 6,
}

/// Program types (`enum bpf_prog_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgType {
    SocketFilter = 1,
    SchedCls = 3,
}

/// `BPF_ANY` / `BPF_NOEXIST` / `BPF_EXIST` for updates.
pub const BPF_ANY: u64 = 0;

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[cfg(test)]
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    /// Explicit, so the tail the kernel checks for zeros is not padding.
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    /// `tcx.relative_fd`, then `tcx.expected_revision`: 0 = append, any revision.
    relative_fd: u32,
    _pad: u32,
    expected_revision: u64,
}

/// Calls bpf(2) with `attr`, returning the kernel's non-negative result.
/// Every attr struct has no implicit padding (the kernel refuses non-zero
/// bytes past the fields it knows, and padding is not zeroed by `Default`).
fn bpf<T>(cmd: u32, attr: &mut T) -> io::Result<i32> {
    // SAFETY: `attr` is a live, exclusively borrowed `#[repr(C)]` prefix of
    // `union bpf_attr` for `cmd`, and its size is passed with it, so the
    // kernel reads and writes only inside it. Pointers inside `attr` were
    // set by the safe callers below from slices that outlive this call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_long,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as i32)
    }
}

/// Wraps a descriptor a bpf(2) call just created.
fn owned(fd: i32) -> OwnedFd {
    // SAFETY: the kernel just returned `fd` as a new descriptor that nothing
    // else owns; wrapping it closes it exactly once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn name16(name: &str) -> [u8; 16] {
    // The kernel takes [A-Za-z0-9_.], at most 15 bytes and a NUL.
    let mut n = [0u8; 16];
    for (d, s) in n.iter_mut().zip(name.bytes().take(15)) {
        *d = if s.is_ascii_alphanumeric() || s == b'.' {
            s
        } else {
            b'_'
        };
    }
    n
}

/// A BPF map, closed (and freed once no program holds it) on drop.
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    key_size: usize,
    /// Bytes a lookup writes: the value size, or for per-CPU maps the value
    /// size rounded up to 8 times the number of possible CPUs.
    value_len: usize,
}

impl Map {
    /// Creates a map.
    pub fn create(
        ty: MapType,
        name: &str,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> io::Result<Map> {
        let mut a = MapCreateAttr {
            map_type: ty as u32,
            key_size,
            value_size,
            max_entries,
            map_name: name16(name),
            ..Default::default()
        };
        let fd = owned(bpf(MAP_CREATE, &mut a)?);
        let value_len = match ty {
            MapType::PercpuArray | MapType::PercpuHash => {
                (value_size as usize).next_multiple_of(8) * possible_cpus()?
            }
        };
        Ok(Map {
            fd,
            key_size: key_size as usize,
            value_len,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Bytes `lookup` needs for one value (all CPUs' values for per-CPU maps).
    pub fn value_len(&self) -> usize {
        self.value_len
    }

    fn check(&self, key: &[u8], value: Option<usize>) -> io::Result<()> {
        if key.len() != self.key_size || value.is_some_and(|v| v != self.value_len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "BPF map key or value of the wrong size",
            ));
        }
        Ok(())
    }

    fn elem(&self, cmd: u32, key: &[u8], value: u64, flags: u64) -> io::Result<bool> {
        let mut a = MapElemAttr {
            map_fd: self.fd() as u32,
            key: key.as_ptr() as u64,
            value,
            flags,
            ..Default::default()
        };
        match bpf(cmd, &mut a) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Inserts or replaces `key`'s value.
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> io::Result<()> {
        self.check(key, Some(value.len()))?;
        self.elem(MAP_UPDATE_ELEM, key, value.as_ptr() as u64, flags)
            .map(|_| ())
    }

    /// Copies `key`'s value into `value`; false if there is none.
    pub fn lookup(&self, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
        self.check(key, Some(value.len()))?;
        self.elem(MAP_LOOKUP_ELEM, key, value.as_mut_ptr() as u64, 0)
    }

    /// Removes `key` and returns its last value in one step, so counts the
    /// programs add meanwhile are not lost (hash maps, Linux 5.14).
    pub fn lookup_and_delete(&self, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
        self.check(key, Some(value.len()))?;
        self.elem(
            MAP_LOOKUP_AND_DELETE_ELEM,
            key,
            value.as_mut_ptr() as u64,
            0,
        )
    }

    /// Writes the key after `key` (the first key for `None`) into `next`;
    /// false at the end.
    pub fn next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> io::Result<bool> {
        if let Some(k) = key {
            self.check(k, None)?;
        }
        self.check(next, None)?;
        let mut a = MapElemAttr {
            map_fd: self.fd() as u32,
            key: key.map_or(0, |k| k.as_ptr() as u64),
            value: next.as_mut_ptr() as u64,
            ..Default::default()
        };
        match bpf(MAP_GET_NEXT_KEY, &mut a) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A loaded program, unloaded once nothing (link, socket, fd) holds it.
#[derive(Debug)]
pub struct Prog {
    fd: OwnedFd,
}

/// A refused program load: the errno and the verifier's log.
#[derive(Debug)]
pub struct LoadError {
    pub err: io::Error,
    pub log: String,
}

impl Prog {
    /// Loads `insns` (GPL: `bpf_redirect_peer` and friends are GPL-only).
    /// On failure the load is retried with the verifier log on, so the
    /// error says which instruction the verifier refused and why.
    pub fn load(ty: ProgType, name: &str, insns: &[Insn]) -> Result<Prog, LoadError> {
        let license = b"GPL\0";
        let attempt = |log: &mut [u8], level: u32| {
            let mut a = ProgLoadAttr {
                prog_type: ty as u32,
                insn_cnt: insns.len() as u32,
                insns: insns.as_ptr() as u64,
                license: license.as_ptr() as u64,
                log_level: level,
                log_size: log.len() as u32,
                log_buf: if log.is_empty() {
                    0
                } else {
                    log.as_mut_ptr() as u64
                },
                prog_name: name16(name),
                ..Default::default()
            };
            bpf(PROG_LOAD, &mut a)
        };
        match attempt(&mut [], 0) {
            Ok(fd) => Ok(Prog { fd: owned(fd) }),
            Err(err) => {
                let mut log = vec![0u8; 1 << 20];
                if let Ok(fd) = attempt(&mut log, 1) {
                    return Ok(Prog { fd: owned(fd) });
                }
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                Err(LoadError {
                    err,
                    log: String::from_utf8_lossy(&log[..end]).into_owned(),
                })
            }
        }
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Runs the program once on `frame` (BPF_PROG_TEST_RUN) with `ctx` as
    /// its `struct __sk_buff` (ifindex, gso_size, ... as the kernel allows);
    /// returns the program's return value.
    #[cfg(test)]
    pub fn test_run(&self, frame: &[u8], ctx: Option<&mut [u8]>) -> io::Result<u32> {
        self.test_run_out(frame, ctx).map(|(r, _)| r)
    }

    /// [`Prog::test_run`], also returning the frame's bytes as the program
    /// left them.
    #[cfg(test)]
    pub fn test_run_out(&self, frame: &[u8], ctx: Option<&mut [u8]>) -> io::Result<(u32, Vec<u8>)> {
        let mut out = vec![0u8; frame.len() + 256];
        let (ctx_ptr, ctx_len) = match ctx {
            Some(c) => (c.as_mut_ptr() as u64, c.len() as u32),
            None => (0, 0),
        };
        let mut a = TestRunAttr {
            prog_fd: self.fd() as u32,
            data_size_in: frame.len() as u32,
            data_size_out: out.len() as u32,
            data_in: frame.as_ptr() as u64,
            data_out: out.as_mut_ptr() as u64,
            repeat: 1,
            ctx_size_in: ctx_len,
            ctx_size_out: ctx_len,
            ctx_in: ctx_ptr,
            ctx_out: ctx_ptr,
            ..Default::default()
        };
        bpf(PROG_TEST_RUN, &mut a)?;
        // The kernel wrote `data_size_out` bytes (at most the buffer's).
        out.truncate((a.data_size_out as usize).min(out.len()));
        Ok((a.retval, out))
    }
}

/// A tcx attachment; the program leaves the device when this is dropped (or
/// the process dies, since the kernel closes the descriptor).
#[derive(Debug)]
pub struct Link {
    _fd: OwnedFd,
}

impl Link {
    /// Appends `prog` to the tcx ingress chain of device `ifindex`.
    pub fn tcx_ingress(prog: &Prog, ifindex: u32) -> io::Result<Link> {
        let mut a = LinkCreateAttr {
            prog_fd: prog.fd() as u32,
            target_ifindex: ifindex,
            attach_type: BPF_TCX_INGRESS,
            ..Default::default()
        };
        Ok(Link {
            _fd: owned(bpf(LINK_CREATE, &mut a)?),
        })
    }
}

/// Attaches `prog` as the socket filter of `sock` (SO_ATTACH_BPF); the
/// socket holds the program until it is closed or the filter detached.
/// A descriptor that is not a socket gets ENOTSOCK from the kernel.
pub fn attach_socket_filter(sock: RawFd, prog: &Prog) -> io::Result<()> {
    let fd: libc::c_int = prog.fd();
    // SAFETY: setsockopt reads exactly `size_of::<c_int>()` bytes from a
    // c_int that lives across the call; the kernel validates `sock`.
    let ret = unsafe {
        libc::setsockopt(
            sock,
            libc::SOL_SOCKET,
            SO_ATTACH_BPF,
            &fd as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Removes the socket filter of `sock` (ENOENT when it has none is fine).
pub fn detach_socket_filter(sock: RawFd) -> io::Result<()> {
    let zero: libc::c_int = 0;
    // SAFETY: as in `attach_socket_filter`; the kernel ignores the value.
    let ret = unsafe {
        libc::setsockopt(
            sock,
            libc::SOL_SOCKET,
            SO_DETACH_BPF,
            &zero as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    match ret {
        0 => Ok(()),
        _ => match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            e => Err(e),
        },
    }
}

/// CLOCK_MONOTONIC now, in nanoseconds: the clock `switch::Timestamp` reads, of
/// which the programs' coarse stamps lag at most one tick.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// `clock` now, in nanoseconds.
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, exclusively borrowed timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_MONOTONIC_COARSE now, in nanoseconds: the clock
/// `bpf_ktime_get_coarse_ns` reads (CLOCK_MONOTONIC as of the last tick).
#[cfg(test)]
pub fn monotonic_coarse_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC_COARSE)
}

/// Moves the calling thread to CPU `cpu` (tests of the per-CPU maps:
/// BPF_PROG_TEST_RUN runs the program on the caller's CPU).
#[cfg(test)]
pub fn pin_this_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: `set` is a valid, exclusively borrowed cpu_set_t; CPU_SET
    // stays within it for cpu < CPU_SETSIZE, checked first.
    let ret = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// How many CPUs the kernel sizes per-CPU maps for
/// (/sys/devices/system/cpu/possible, e.g. "0-1" or "0,2-5").
pub fn possible_cpus() -> io::Result<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "cannot parse the possible CPUs");
    let mut max = None;
    for part in text.trim().split(',') {
        let last = part.rsplit('-').next().ok_or_else(bad)?;
        let n: usize = last.trim().parse().map_err(|_| bad())?;
        max = Some(max.map_or(n, |m: usize| m.max(n)));
    }
    max.map(|m| m + 1).ok_or_else(bad)
}
