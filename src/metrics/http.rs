//! A minimal HTTP/1.1 server for `/metrics` on std's `TcpListener`: one
//! thread, one connection at a time, `Connection: close`. Scrapes come every
//! few seconds from a handful of servers, so this is all it needs, and the
//! switch stays free of an async runtime. Every read and write has a
//! timeout, so a client that connects and says nothing holds the thread for
//! at most a few seconds.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::Scrape;
use crate::dataplane::DataplaneHandle;

/// The port the docs and the scrape config example use.
pub const DEFAULT_PORT: u16 = 9830;
/// Longest request head accepted.
const MAX_HEAD: usize = 8 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(
        "{0:?} is not an address to listen on; expected IP:PORT (e.g. 127.0.0.1:9830, \
         [::1]:9830, 0.0.0.0:9830 for every interface) or just PORT (loopback)"
    )]
    BadAddress(String),
    #[error("cannot listen for metrics on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Parses the value of `--metrics` (or `metrics =` in the config file): an
/// `IP:PORT`, or a bare `PORT`, which listens on loopback only: metrics
/// leave the host only when the operator names a non-loopback address.
pub fn parse_listen_addr(s: &str) -> Result<SocketAddr, MetricsError> {
    let t = s.trim();
    if let Ok(port) = t.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    t.parse::<SocketAddr>()
        .map_err(|_| MetricsError::BadAddress(s.to_string()))
}

/// The running metrics endpoint. Dropping it stops the thread.
pub struct MetricsServer {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `addr` and serves scrapes of `dp`.
    pub fn start(addr: SocketAddr, dp: DataplaneHandle) -> Result<MetricsServer, MetricsError> {
        let listener =
            TcpListener::bind(addr).map_err(|source| MetricsError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| MetricsError::Bind { addr, source })?;
        let stopping = Arc::new(AtomicBool::new(false));
        let stop2 = stopping.clone();
        let thread = std::thread::Builder::new()
            .name("l2sw-metrics".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = conn {
                        serve(stream, &dp);
                    }
                }
            })
            .map_err(|source| MetricsError::Bind { addr, source })?;
        Ok(MetricsServer {
            addr,
            stopping,
            thread: Some(thread),
        })
    }

    /// Where it listens (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stop(&mut self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocking accept with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads the request head (up to the blank line).
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return None;
        }
    }
    String::from_utf8(head).ok()
}

fn serve(mut stream: TcpStream, dp: &DataplaneHandle) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let Some(head) = read_head(&mut stream) else {
        let _ = respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            "bad request\n",
            true,
        );
        return;
    };
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let body_too = method != "HEAD";
    let _ = match (method, path) {
        ("GET" | "HEAD", "/metrics") => match Scrape::take(dp) {
            Ok(scrape) => respond(
                &mut stream,
                "200 OK",
                CONTENT_TYPE,
                &scrape.encode(),
                body_too,
            ),
            Err(e) => respond(
                &mut stream,
                "503 Service Unavailable",
                "text/plain",
                &format!("the dataplane did not answer: {e}\n"),
                body_too,
            ),
        },
        ("GET" | "HEAD", "/") => respond(
            &mut stream,
            "200 OK",
            "text/html",
            "<html><body><a href=\"/metrics\">l2sw metrics</a></body></html>\n",
            body_too,
        ),
        ("GET" | "HEAD", _) => respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            "not found; try /metrics\n",
            body_too,
        ),
        _ => respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "only GET and HEAD\n",
            true,
        ),
    };
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
    with_body: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if with_body {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_listens_on_loopback_only() {
        assert_eq!(
            parse_listen_addr("9830").unwrap(),
            "127.0.0.1:9830".parse().unwrap()
        );
        assert_eq!(
            parse_listen_addr("0.0.0.0:9100").unwrap(),
            "0.0.0.0:9100".parse().unwrap()
        );
        assert_eq!(
            parse_listen_addr("[::1]:9830").unwrap(),
            "[::1]:9830".parse().unwrap()
        );
    }

    #[test]
    fn bad_addresses_say_what_is_expected() {
        for bad in ["localhost", "127.0.0.1", "1.2.3.4:99999", ":9830", ""] {
            let e = parse_listen_addr(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{bad:?} is not an address")), "{e}");
            assert!(e.contains("IP:PORT"), "{e}");
        }
    }
}
