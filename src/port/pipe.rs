//! `PipePort`: one end of a Unix datagram socket pair, one frame per
//! datagram. The other end (`PipePeer`) plays the host: tests send frames into
//! the switch and read what comes out, with no device and no root.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use super::{
    OffloadCaps, Port, PortError, PortInfo, PortKind, RxBatch, RxStatus, SendError, TxFrame,
    RX_HEADROOM,
};

/// The switch's end.
pub struct PipePort {
    name: String,
    sock: UnixDatagram,
    mtu: u32,
}

/// The host's end.
pub struct PipePeer {
    sock: UnixDatagram,
}

impl PipePort {
    /// A connected pair: the port for the switch, the peer for the test.
    pub fn pair(name: &str, mtu: u32) -> io::Result<(PipePort, PipePeer)> {
        let (a, b) = UnixDatagram::pair()?;
        a.set_nonblocking(true)?;
        Ok((
            PipePort {
                name: name.to_string(),
                sock: a,
                mtu,
            },
            PipePeer { sock: b },
        ))
    }
}

impl Port for PipePort {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> PortInfo {
        PortInfo {
            kind: PortKind::Pipe,
            ifname: self.name.clone(),
            ifindex: None,
            mtu: self.mtu,
            mac: None,
            capabilities: Vec::new(),
            peer: None,
        }
    }

    fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn mtu(&self) -> u32 {
        self.mtu
    }

    fn recv_batch(&mut self, batch: &mut RxBatch) -> Result<usize, PortError> {
        let mut n = 0;
        while n < batch.capacity() {
            let slot = batch.slot_mut(n);
            let buf = &mut slot.buf_mut()[RX_HEADROOM..];
            let cap = buf.len();
            match self.sock.recv(buf) {
                // A zero-length datagram is a (runt) frame, not end of stream.
                Ok(len) if len <= cap => {
                    slot.set(RX_HEADROOM, len, RxStatus::Complete);
                    n += 1;
                }
                Ok(len) => {
                    slot.set(RX_HEADROOM, cap, RxStatus::Truncated { wire_len: len });
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    return Err(PortError::Vanished {
                        name: self.name.clone(),
                    })
                }
                Err(source) => {
                    return Err(PortError::Recv {
                        name: self.name.clone(),
                        source,
                    })
                }
            }
        }
        // No kernel timestamp on this queue: the read is the arrival.
        batch.finish_read(n, super::realtime_ns());
        Ok(n)
    }

    fn offload_caps(&self) -> OffloadCaps {
        // A datagram carries bytes only: nothing left for "hardware".
        OffloadCaps::NONE
    }

    fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> (usize, Option<SendError>) {
        for (i, f) in frames.iter().enumerate() {
            match self.sock.send(f.data) {
                Ok(_) => {}
                Err(e) => {
                    let err = match e.kind() {
                        io::ErrorKind::WouldBlock => SendError::WouldBlock,
                        io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::NotConnected => SendError::Vanished,
                        _ if e.raw_os_error() == Some(libc::EMSGSIZE) => SendError::TooBig,
                        _ => SendError::Io(e),
                    };
                    return (i, Some(err));
                }
            }
        }
        (frames.len(), None)
    }

    fn check(&mut self) -> Result<(), PortError> {
        // A socket pair whose peer was dropped reports the error on the next
        // send; probe with a zero-timeout peek for ECONNREFUSED-like states.
        match self.sock.take_error() {
            Ok(Some(_)) | Err(_) => Err(PortError::Vanished {
                name: self.name.clone(),
            }),
            Ok(None) => Ok(()),
        }
    }
}

impl PipePeer {
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.sock.send(frame).map(|_| ())
    }

    /// Waits up to `timeout` for one frame.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.sock.set_read_timeout(Some(timeout)).ok()?;
        let mut buf = vec![0u8; 65536 + 64];
        match self.sock.recv(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                Some(buf)
            }
            Err(_) => None,
        }
    }

    /// Waits up to `timeout` for one frame into `buf`, without allocating.
    pub fn recv_into(&self, buf: &mut [u8], timeout: Duration) -> Option<usize> {
        self.sock.set_read_timeout(Some(timeout)).ok()?;
        self.sock.recv(buf).ok()
    }

    /// A frame already waiting, without waiting for one.
    pub fn try_recv(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65536 + 64];
        self.sock.set_nonblocking(true).ok()?;
        let got = self.sock.recv(&mut buf);
        self.sock.set_nonblocking(false).ok()?;
        let n = got.ok()?;
        buf.truncate(n);
        Some(buf)
    }

    /// Everything that arrives within `quiet` of the previous frame.
    pub fn drain(&self, quiet: Duration) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(f) = self.recv_timeout(quiet) {
            out.push(f);
        }
        out
    }
}
