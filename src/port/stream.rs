//! `StreamPort`: QEMU's `-netdev stream` over a Unix stream socket the
//! switch listens on. Each frame travels behind a 4-byte big-endian length.
//!
//! The port owns a small epoll instance (a `mio::Poll`) holding the listener
//! and the current connection; its fd is what the dataplane polls, so one fd
//! covers "a VM connects", "frames arrived" and "the socket can take more".
//! Reads gather whatever the kernel has into a buffer and cut whole frames
//! out of it; a frame split across reads waits for its tail. Writes go
//! straight to the socket while it takes them and into a bounded buffer when
//! it does not, so the dataplane never blocks; a full buffer refuses the
//! frame (`WouldBlock`, counted as `egress_full`).
//!
//! One peer at a time: a second connection while one is up is closed at
//! once. When the peer goes, the port stays and waits for the next.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};

use super::unix_path::{prepare_bind, SocketAccess, SocketType};
use super::{
    FramingDrops, OffloadCaps, PeerInfo, Port, PortError, PortInfo, PortKind, RxBatch, RxStatus,
    SendError, TxFrame, RX_HEADROOM,
};

const LISTENER: Token = Token(0);
const CONN: Token = Token(1);

/// Largest frame accepted from a peer: the largest a receive slot holds.
pub const MAX_FRAME: usize = 65536 + 32;
/// A length above this cannot be a frame at all: the stream is out of step
/// and is closed so the peer starts over.
const INSANE_LEN: usize = 16 << 20;
/// Receive buffer: several full frames, so one read serves a batch.
const RX_BUF: usize = 4 * (MAX_FRAME + 4);
/// Bytes the port holds for a slow peer before it refuses frames.
const TX_BUF_LIMIT: usize = 2 << 20;

struct Conn {
    sock: UnixStream,
    rx: Vec<u8>,
    /// Bytes of `rx` consumed / filled.
    rx_start: usize,
    rx_end: usize,
    /// Bytes of an oversized frame still to throw away.
    skip: usize,
    tx: Vec<u8>,
    tx_start: usize,
    want_write: bool,
}

pub struct StreamPort {
    name: String,
    path: PathBuf,
    poll: Poll,
    events: Events,
    listener: UnixListener,
    conn: Option<Conn>,
    mtu: u32,
    connects: u64,
    drops: FramingDrops,
}

impl StreamPort {
    /// Listens on `path` (replacing a stale socket) with `access`.
    pub fn listen(
        name: &str,
        path: &Path,
        access: &SocketAccess,
        mtu: u32,
    ) -> Result<StreamPort, PortError> {
        let setup = |step, e| PortError::setup(step, name, e);
        prepare_bind(path, SocketType::Stream).map_err(|e| setup("prepare the socket path", e))?;
        let mut listener = UnixListener::bind(path).map_err(|e| setup("bind the socket", e))?;
        access
            .apply(path)
            .map_err(|e| setup("set the socket's owner and mode", e))?;
        let poll = Poll::new().map_err(|e| setup("create the port's poller", e))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| setup("poll the listener", e))?;
        Ok(StreamPort {
            name: name.to_string(),
            path: path.to_path_buf(),
            poll,
            events: Events::with_capacity(8),
            listener,
            conn: None,
            mtu,
            connects: 0,
            drops: FramingDrops::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut sock, _)) => {
                    if self.conn.is_some() {
                        // One VM per port; the newcomer is turned away.
                        drop(sock);
                        continue;
                    }
                    if self
                        .poll
                        .registry()
                        .register(&mut sock, CONN, Interest::READABLE)
                        .is_err()
                    {
                        continue;
                    }
                    self.connects += 1;
                    self.conn = Some(Conn {
                        sock,
                        rx: vec![0u8; RX_BUF],
                        rx_start: 0,
                        rx_end: 0,
                        skip: 0,
                        tx: Vec::new(),
                        tx_start: 0,
                        want_write: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
        }
    }

    /// Closes the connection; a frame half received is counted.
    fn disconnect(&mut self) {
        if let Some(mut c) = self.conn.take() {
            if c.rx_end > c.rx_start || c.skip > 0 {
                self.drops.cut_short += 1;
            }
            let _ = self.poll.registry().deregister(&mut c.sock);
        }
    }

    /// Writes out buffered bytes; arms or disarms interest in writability.
    fn flush(&mut self) -> Result<(), ()> {
        let Some(c) = self.conn.as_mut() else {
            return Ok(());
        };
        while c.tx_start < c.tx.len() {
            match c.sock.write(&c.tx[c.tx_start..]) {
                Ok(0) => return Err(()),
                Ok(n) => c.tx_start += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(()),
            }
        }
        if c.tx_start == c.tx.len() {
            c.tx.clear();
            c.tx_start = 0;
        }
        let want = !c.tx.is_empty();
        if want != c.want_write {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ = self.poll.registry().reregister(&mut c.sock, CONN, interest);
            c.want_write = want;
        }
        Ok(())
    }

    /// Cuts whole frames out of the receive buffer into `batch` from slot
    /// `n`; returns the new count. `Err` when the stream is out of step.
    fn cut_frames(&mut self, batch: &mut RxBatch, mut n: usize) -> Result<usize, ()> {
        let Some(c) = self.conn.as_mut() else {
            return Ok(n);
        };
        while n < batch.capacity() {
            if c.skip > 0 {
                let k = c.skip.min(c.rx_end - c.rx_start);
                c.skip -= k;
                c.rx_start += k;
                if c.skip > 0 {
                    break;
                }
            }
            let avail = c.rx_end - c.rx_start;
            if avail < 4 {
                break;
            }
            let h = &c.rx[c.rx_start..c.rx_start + 4];
            let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
            if len == 0 || len > INSANE_LEN {
                self.drops.bad_length += 1;
                return Err(());
            }
            if len > MAX_FRAME {
                self.drops.oversized += 1;
                c.rx_start += 4;
                c.skip = len;
                continue;
            }
            if avail < 4 + len {
                break;
            }
            let slot = batch.slot_mut(n);
            let buf = &mut slot.buf_mut()[RX_HEADROOM..];
            let body = &c.rx[c.rx_start + 4..c.rx_start + 4 + len];
            buf[..len].copy_from_slice(body);
            slot.set(RX_HEADROOM, len, RxStatus::Complete);
            c.rx_start += 4 + len;
            n += 1;
        }
        if c.rx_start == c.rx_end {
            c.rx_start = 0;
            c.rx_end = 0;
        } else if c.rx_start > 0 && c.rx.len() - c.rx_end < MAX_FRAME + 4 {
            c.rx.copy_within(c.rx_start..c.rx_end, 0);
            c.rx_end -= c.rx_start;
            c.rx_start = 0;
        }
        Ok(n)
    }
}

impl Port for StreamPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> PortInfo {
        PortInfo {
            kind: PortKind::Stream,
            ifname: self.name.clone(),
            ifindex: None,
            mtu: self.mtu,
            mac: None,
            capabilities: Vec::new(),
            peer: Some(PeerInfo {
                connected: self.conn.is_some(),
                endpoint: self.path.display().to_string(),
                connects: self.connects,
                negotiated: Vec::new(),
                held: None,
            }),
        }
    }

    fn raw_fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }

    fn mtu(&self) -> u32 {
        self.mtu
    }

    fn recv_batch(&mut self, batch: &mut RxBatch) -> Result<usize, PortError> {
        // Consume the inner poller's events so its fd reads idle again.
        let _ = self.poll.poll(&mut self.events, Some(Duration::ZERO));
        self.accept_all();
        if self.flush().is_err() {
            self.disconnect();
        }
        let mut n = match self.cut_frames(batch, 0) {
            Ok(n) => n,
            Err(()) => {
                self.disconnect();
                0
            }
        };
        while n < batch.capacity() {
            let Some(c) = self.conn.as_mut() else { break };
            if c.rx_end == c.rx.len() {
                break;
            }
            let end = c.rx_end;
            match c.sock.read(&mut c.rx[end..]) {
                Ok(0) => {
                    self.disconnect();
                    break;
                }
                Ok(k) => {
                    c.rx_end += k;
                    match self.cut_frames(batch, n) {
                        Ok(m) => n = m,
                        Err(()) => {
                            self.disconnect();
                            break;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.disconnect();
                    break;
                }
            }
        }
        batch.finish_read(n, super::realtime_ns());
        Ok(n)
    }

    fn offload_caps(&self) -> OffloadCaps {
        // The stream protocol has no virtio-net header.
        OffloadCaps::NONE
    }

    fn send_batch(&mut self, frames: &[TxFrame<'_>]) -> (usize, Option<SendError>) {
        if self.conn.is_none() {
            return (0, Some(SendError::LinkDown));
        }
        let mut broken = false;
        let mut sent = 0;
        {
            let c = self.conn.as_mut().expect("connected");
            for f in frames {
                let len = (f.data.len() as u32).to_be_bytes();
                if c.tx.is_empty() {
                    // Straight to the socket; the rest of a partial write is kept.
                    let total = 4 + f.data.len();
                    let mut done = 0;
                    while done < total {
                        let r = if done < 4 {
                            c.sock
                                .write_vectored(&[IoSlice::new(&len[done..]), IoSlice::new(f.data)])
                        } else {
                            c.sock.write(&f.data[done - 4..])
                        };
                        match r {
                            Ok(0) => {
                                broken = true;
                                break;
                            }
                            Ok(k) => done += k,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(_) => {
                                broken = true;
                                break;
                            }
                        }
                    }
                    if broken {
                        break;
                    }
                    if done < 4 {
                        c.tx.extend_from_slice(&len[done..]);
                        c.tx.extend_from_slice(f.data);
                    } else if done < total {
                        c.tx.extend_from_slice(&f.data[done - 4..]);
                    }
                } else {
                    if c.tx.len() - c.tx_start + 4 + f.data.len() > TX_BUF_LIMIT {
                        break;
                    }
                    c.tx.extend_from_slice(&len);
                    c.tx.extend_from_slice(f.data);
                }
                sent += 1;
            }
        }
        if broken || self.flush().is_err() {
            self.disconnect();
            return (sent, Some(SendError::LinkDown));
        }
        if sent < frames.len() {
            return (sent, Some(SendError::WouldBlock));
        }
        (sent, None)
    }

    fn check(&mut self) -> Result<(), PortError> {
        Ok(())
    }

    fn take_framing_drops(&mut self) -> FramingDrops {
        std::mem::take(&mut self.drops)
    }
}

impl Drop for StreamPort {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream as StdStream;

    fn port(tag: &str) -> StreamPort {
        let p = std::env::temp_dir().join(format!("l2sw-st-{}-{tag}.sock", std::process::id()));
        StreamPort::listen("vm", &p, &SocketAccess::default(), 1500).unwrap()
    }

    fn recv_until(p: &mut StreamPort, want: usize) -> Vec<Vec<u8>> {
        let mut b = RxBatch::new(8);
        let mut out = Vec::new();
        for _ in 0..200 {
            let n = p.recv_batch(&mut b).unwrap();
            out.extend(b.iter().take(n).map(|s| s.frame().to_vec()));
            if out.len() >= want {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        out
    }

    fn framed(f: &[u8]) -> Vec<u8> {
        let mut v = (f.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(f);
        v
    }

    #[test]
    fn frames_split_across_writes_arrive_whole() {
        let mut p = port("split");
        let mut peer = StdStream::connect(p.path()).unwrap();
        let f1 = vec![0xaa; 60];
        let f2 = vec![0xbb; 1500];
        let mut bytes = framed(&f1);
        bytes.extend(framed(&f2));
        // Written in awkward pieces, including inside a length.
        let mut got = Vec::new();
        for chunk in bytes.chunks(7) {
            peer.write_all(chunk).unwrap();
            got.extend(recv_until(&mut p, 0));
        }
        if got.len() < 2 {
            got.extend(recv_until(&mut p, 2 - got.len()));
        }
        assert_eq!(got, vec![f1, f2]);
        assert!(p.connected());
    }

    #[test]
    fn sent_frames_carry_a_length_and_malformed_input_is_counted() {
        let mut p = port("tx");
        let mut peer = StdStream::connect(p.path()).unwrap();
        let _ = recv_until(&mut p, 0);
        let f = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
        let (n, err) = p.send_batch(&[TxFrame::plain(&f)]);
        assert_eq!((n, err.is_none()), (1, true));
        let mut buf = [0u8; 18];
        peer.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[..4], &[0, 0, 0, 14]);
        assert_eq!(&buf[4..], &f);
        // An oversized frame is skipped, the next one still arrives.
        let big = vec![0u8; MAX_FRAME + 1];
        peer.write_all(&framed(&big)).unwrap();
        peer.write_all(&framed(&f)).unwrap();
        let got = recv_until(&mut p, 1);
        assert_eq!(got, vec![f.to_vec()]);
        assert_eq!(p.take_framing_drops().oversized, 1);
        // A zero length puts the stream out of step: the peer is dropped.
        peer.write_all(&[0, 0, 0, 0]).unwrap();
        let _ = recv_until(&mut p, 1);
        assert!(!p.connected());
        assert_eq!(p.take_framing_drops().bad_length, 1);
        // A new peer is welcome.
        let mut peer2 = StdStream::connect(p.path()).unwrap();
        peer2.write_all(&framed(&f)).unwrap();
        assert_eq!(recv_until(&mut p, 1), vec![f.to_vec()]);
        assert_eq!(p.info().peer.unwrap().connects, 2);
    }

    #[test]
    fn a_peer_gone_mid_frame_is_counted_and_sends_report_down() {
        let mut p = port("gone");
        let mut peer = StdStream::connect(p.path()).unwrap();
        peer.write_all(&[0, 0, 0, 100, 1, 2, 3]).unwrap();
        let _ = recv_until(&mut p, 0);
        drop(peer);
        let _ = recv_until(&mut p, 1);
        assert!(!p.connected());
        assert_eq!(p.take_framing_drops().cut_short, 1);
        let (n, err) = p.send_batch(&[TxFrame::plain(&[0u8; 60])]);
        assert_eq!(n, 0);
        assert!(matches!(err, Some(SendError::LinkDown)));
    }
}
