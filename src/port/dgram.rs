//! `DgramPort`: QEMU's `-netdev dgram` over Unix datagram sockets, one frame
//! per datagram. The switch binds its own path and sends to the VM's; QEMU
//! binds the VM's path and sends to the switch's (both paths are needed on
//! both sides).
//!
//! Only datagrams from the peer's path are frames: anything else that finds
//! the socket is dropped and counted (`foreign_sender`), so write access to
//! the socket is not enough to inject frames under the VM's name. The peer
//! counts as connected while sends to it succeed or it has sent lately.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::unix_path::{prepare_bind, SocketAccess, SocketType};
use super::{
    FramingDrops, OffloadCaps, PeerInfo, Port, PortError, PortInfo, PortKind, RxBatch, RxStatus,
    SendError, TxFrame, RX_HEADROOM,
};

/// How long a peer that neither sends nor can be sent to still counts as there.
const PEER_QUIET: Duration = Duration::from_secs(5);

pub struct DgramPort {
    name: String,
    path: PathBuf,
    peer: PathBuf,
    sock: UnixDatagram,
    mtu: u32,
    /// Whether the last send reached the peer.
    reachable: bool,
    last_heard: Option<Instant>,
    drops: FramingDrops,
}

impl DgramPort {
    pub fn bind(
        name: &str,
        path: &Path,
        peer: &Path,
        access: &SocketAccess,
        mtu: u32,
    ) -> Result<DgramPort, PortError> {
        let setup = |step, e| PortError::setup(step, name, e);
        prepare_bind(path, SocketType::Dgram).map_err(|e| setup("prepare the socket path", e))?;
        let sock = UnixDatagram::bind(path).map_err(|e| setup("bind the socket", e))?;
        access
            .apply(path)
            .map_err(|e| setup("set the socket's owner and mode", e))?;
        sock.set_nonblocking(true)
            .map_err(|e| setup("make the socket non-blocking", e))?;
        Ok(DgramPort {
            name: name.to_string(),
            path: path.to_path_buf(),
            peer: peer.to_path_buf(),
            sock,
            mtu,
            reachable: false,
            last_heard: None,
            drops: FramingDrops::default(),
        })
    }

    pub fn connected(&self) -> bool {
        self.reachable || self.last_heard.is_some_and(|t| t.elapsed() < PEER_QUIET)
    }
}

impl Port for DgramPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> PortInfo {
        PortInfo {
            kind: PortKind::Dgram,
            ifname: self.name.clone(),
            ifindex: None,
            mtu: self.mtu,
            mac: None,
            capabilities: Vec::new(),
            peer: Some(PeerInfo {
                connected: self.connected(),
                endpoint: format!("{} <-> {}", self.path.display(), self.peer.display()),
                connects: 0,
                negotiated: Vec::new(),
                held: None,
            }),
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
            match self.sock.recv_from(buf) {
                Ok((len, from)) => {
                    if from.as_pathname() != Some(self.peer.as_path()) {
                        self.drops.foreign += 1;
                        continue;
                    }
                    self.last_heard = Some(Instant::now());
                    if len == 0 {
                        self.drops.bad_length += 1;
                        continue;
                    }
                    // recv_from reports the bytes copied; a datagram larger
                    // than the slot fills it exactly.
                    if len >= cap {
                        self.drops.oversized += 1;
                        continue;
                    }
                    slot.set(RX_HEADROOM, len, RxStatus::Complete);
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(PortError::Recv {
                        name: self.name.clone(),
                        source,
                    })
                }
            }
        }
        batch.finish_read(n, super::realtime_ns());
        Ok(n)
    }

    fn offload_caps(&self) -> OffloadCaps {
        OffloadCaps::NONE
    }

    fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> (usize, Option<SendError>) {
        for (i, f) in frames.iter().enumerate() {
            match self.sock.send_to(f.data, &self.peer) {
                Ok(_) => self.reachable = true,
                Err(e) => {
                    let err = match e.kind() {
                        io::ErrorKind::WouldBlock => SendError::WouldBlock,
                        io::ErrorKind::NotFound
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::NotConnected => {
                            // No VM behind the path (yet, or any more).
                            self.reachable = false;
                            SendError::LinkDown
                        }
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
        if !self.peer.exists() {
            self.reachable = false;
        }
        Ok(())
    }

    fn take_framing_drops(&mut self) -> FramingDrops {
        std::mem::take(&mut self.drops)
    }
}

impl Drop for DgramPort {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(tag: &str) -> (PathBuf, PathBuf) {
        let d = std::env::temp_dir();
        let id = std::process::id();
        (
            d.join(format!("l2sw-dg-{id}-{tag}-sw.sock")),
            d.join(format!("l2sw-dg-{id}-{tag}-vm.sock")),
        )
    }

    #[test]
    fn frames_cross_both_ways_and_strangers_are_counted() {
        let (sw, vm) = paths("x");
        let _ = std::fs::remove_file(&vm);
        let mut p = DgramPort::bind("vm3", &sw, &vm, &SocketAccess::default(), 1500).unwrap();
        let f = [7u8; 60];
        // No VM yet: the send says the link is down.
        assert!(matches!(
            p.send_batch(&[TxFrame::plain(&f)]).1,
            Some(SendError::LinkDown)
        ));
        assert!(!p.connected());
        let peer = UnixDatagram::bind(&vm).unwrap();
        peer.send_to(&f, &sw).unwrap();
        let stranger = UnixDatagram::unbound().unwrap();
        stranger.send_to(&f, &sw).unwrap();
        let mut b = RxBatch::new(4);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(p.recv_batch(&mut b).unwrap(), 1);
        assert_eq!(b.slot(0).frame(), &f);
        assert_eq!(p.take_framing_drops().foreign, 1);
        assert!(p.connected());
        assert_eq!(p.send_batch(&[TxFrame::plain(&f)]).0, 1);
        let mut buf = [0u8; 100];
        assert_eq!(peer.recv(&mut buf).unwrap(), 60);
        drop(p);
        assert!(!sw.exists());
        let _ = std::fs::remove_file(&vm);
    }
}
