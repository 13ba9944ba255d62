//! The TUN/TAP character device (`/dev/net/tun`): creating or attaching to a
//! TAP netdev, querying it through the queue fd, and moving frames through
//! the queue with plain `read`/`write`.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use super::{c_name, cvt, ifreq_with_name, owned_fd, zeroed};

pub use libc::{
    IFF_MULTI_QUEUE, IFF_NO_PI, IFF_PERSIST, IFF_TAP, IFF_VNET_HDR, TUN_F_CSUM, TUN_F_TSO4,
    TUN_F_TSO6, TUN_F_TSO_ECN, TUN_F_USO4, TUN_F_USO6,
};

/// One queue of a TUN/TAP device: an open `/dev/net/tun`, attached to a
/// netdev by [`set_iff`](Self::set_iff).
#[derive(Debug)]
pub struct TunQueue {
    file: File,
}

impl TunQueue {
    /// Opens `/dev/net/tun` read-write, non-blocking, close-on-exec (std
    /// always sets O_CLOEXEC).
    pub fn open() -> io::Result<TunQueue> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/net/tun")?;
        Ok(TunQueue { file })
    }

    /// The `IFF_*` flags this kernel's tun driver accepts (TUNGETFEATURES).
    pub fn features(&self) -> io::Result<libc::c_int> {
        let mut features: libc::c_uint = 0;
        // SAFETY: TUNGETFEATURES writes one `unsigned int` through the
        // pointer, which points to a live, exclusively borrowed c_uint.
        let ret = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNGETFEATURES,
                &mut features as *mut libc::c_uint,
            )
        };
        cvt(ret)?;
        Ok(features as libc::c_int)
    }

    /// TUNSETIFF: creates netdev `name` with `flags` (e.g. IFF_TAP |
    /// IFF_NO_PI), or attaches to it when it already exists as a compatible
    /// TUN/TAP device. Returns the device's name as the kernel set it.
    pub fn set_iff(&self, name: &str, flags: libc::c_int) -> io::Result<String> {
        let mut ifr = ifreq_with_name(name)?;
        ifr.ifr_ifru.ifru_flags = flags as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes one `struct ifreq`; `ifr` is a
        // valid, exclusively borrowed one for the call.
        let ret = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNSETIFF,
                &mut ifr as *mut libc::ifreq,
            )
        };
        cvt(ret)?;
        Ok(c_name(&ifr.ifr_name))
    }

    /// TUNGETIFF: the attached device's current name and flags. Works
    /// wherever the netdev lives (renamed, moved to another namespace);
    /// fails with EBADFD once the device was deleted.
    pub fn get_iff(&self) -> io::Result<(String, libc::c_int)> {
        let mut ifr: libc::ifreq = zeroed();
        // SAFETY: TUNGETIFF writes one `struct ifreq` into `ifr`, a valid,
        // exclusively borrowed one for the call.
        let ret = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNGETIFF,
                &mut ifr as *mut libc::ifreq,
            )
        };
        cvt(ret)?;
        // SAFETY: TUNGETIFF succeeded, so the kernel wrote `ifru_flags`, a
        // plain integer.
        let flags = unsafe { ifr.ifr_ifru.ifru_flags };
        // The flags are a bit set in a C short: reinterpret, don't sign-extend.
        Ok((c_name(&ifr.ifr_name), libc::c_int::from(flags as u16)))
    }

    /// TUNSETPERSIST: whether the netdev outlives the last open queue.
    pub fn set_persist(&self, persist: bool) -> io::Result<()> {
        // SAFETY: TUNSETPERSIST takes its argument by value and touches no
        // user memory.
        let ret = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNSETPERSIST,
                libc::c_ulong::from(persist),
            )
        };
        cvt(ret).map(drop)
    }

    /// Whether the netdev lives in the calling thread's network namespace
    /// (TUNGETDEVNETNS, Linux >= 5.2): decides whether its name may be looked
    /// up here at all.
    pub fn in_current_netns(&self) -> io::Result<bool> {
        // SAFETY: TUNGETDEVNETNS takes no argument and returns a new fd.
        let ret = unsafe { libc::ioctl(self.file.as_raw_fd(), libc::TUNGETDEVNETNS) };
        let dev_ns = File::from(owned_fd(ret)?).metadata()?;
        let our_ns = std::fs::metadata("/proc/thread-self/ns/net")?;
        Ok(dev_ns.dev() == our_ns.dev() && dev_ns.ino() == our_ns.ino())
    }

    /// TUNSETOFFLOAD: the offloads (TUN_F_*) this reader handles in frames
    /// it reads; the netdev then advertises the matching features, so its
    /// stack can hand over partial checksums and GSO super-frames.
    pub fn set_offload(&self, flags: libc::c_uint) -> io::Result<()> {
        // SAFETY: TUNSETOFFLOAD takes its argument by value and touches no
        // user memory.
        let ret = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                libc::c_ulong::from(flags),
            )
        };
        cvt(ret).map(drop)
    }

    /// Writes one frame given in pieces (a virtio-net header, then the frame).
    pub fn write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&self.file).write_vectored(bufs)
    }

    /// Reads one frame into `bufs`, in order (EAGAIN when the queue is
    /// empty). A frame longer than all of them is cut, and the length
    /// returned is what was copied, not the frame's length.
    pub fn read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&self.file).read_vectored(bufs)
    }

    /// Writes one whole frame into the netdev's receive path.
    pub fn write(&self, frame: &[u8]) -> io::Result<usize> {
        (&self.file).write(frame)
    }
}

impl AsFd for TunQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl AsRawFd for TunQueue {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}
