//! The control socket server: accepts clients, reads one JSON request per
//! line, hands it to a `Handler`, writes one JSON response per line.
//!
//! A broken client costs nothing: malformed lines get an error response, a
//! client that disconnects half-way is dropped, and each client has its own
//! thread so a slow one cannot hold up the rest. Who may connect is
//! decided by [`Access`] (file mode, then the peer's credentials).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::access::{Access, AccessError, RefusalLog};
use super::protocol::{Request, Response, MAX_REQUEST_LEN};

/// Most clients served at once; more are told to come back later.
const MAX_CLIENTS: usize = 64;

/// Executes requests. Implemented by the daemon.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request) -> Response;

    /// Serves a streaming request (`Request::is_stream`) by writing lines to
    /// `out` until done; the connection closes afterwards.
    fn stream(&self, req: Request, out: &mut UnixStream) {
        let _ = req;
        let _ = write_response(out, &Response::err("streaming is not supported here"));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("a switch named {name} is already running (control socket {path} answers)")]
    AlreadyRunning { name: String, path: PathBuf },
    #[error("cannot create the control socket directory {path}: {source}")]
    RunDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on control socket {path}: {source}")]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Access(#[from] AccessError),
}

/// A running control server. `stop` removes the socket file.
pub struct ControlServer {
    path: PathBuf,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Binds `path`, replacing a stale socket file but refusing to take over
    /// a socket a live switch still answers on, and gives the file the owner
    /// and mode `access` asks for.
    pub fn bind(name: &str, path: &Path, access: &Access) -> Result<UnixListener, ServerError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| ServerError::RunDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(ServerError::AlreadyRunning {
                    name: name.to_string(),
                    path: path.to_path_buf(),
                });
            }
            // Left behind by a switch that died without cleaning up.
            let _ = std::fs::remove_file(path);
        }
        let listener = UnixListener::bind(path).map_err(|source| ServerError::Bind {
            path: path.to_path_buf(),
            source,
        })?;
        if let Err(e) = access.apply_to_socket(path) {
            let _ = std::fs::remove_file(path);
            return Err(e.into());
        }
        Ok(listener)
    }

    /// Serves `listener` for switch `name`, refusing peers `access` does not
    /// let in.
    pub fn spawn(
        listener: UnixListener,
        path: PathBuf,
        handler: Arc<dyn Handler>,
        name: &str,
        access: Access,
    ) -> ControlServer {
        let stopping = Arc::new(AtomicBool::new(false));
        let stop2 = stopping.clone();
        let gate = Gate {
            name: name.to_string(),
            access,
            log: RefusalLog::new(),
        };
        let thread = std::thread::Builder::new()
            .name("l2sw-control".into())
            .spawn(move || accept_loop(listener, handler, stop2, gate))
            .expect("spawn control thread");
        ControlServer {
            path,
            stopping,
            thread: Some(thread),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting and removes the socket file. Clients being served
    /// finish their current request.
    pub fn stop(&mut self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocking accept with a connection of our own.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The access check of one server.
struct Gate {
    name: String,
    access: Access,
    log: RefusalLog,
}

fn accept_loop(
    listener: UnixListener,
    handler: Arc<dyn Handler>,
    stopping: Arc<AtomicBool>,
    gate: Gate,
) {
    let clients = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let mut stream = match conn {
            Ok(s) => s,
            Err(e) => {
                eprintln!("l2sw: control socket accept failed: {e}");
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
        };
        if let Err(msg) = gate.access.check(&gate.name, &stream, &gate.log) {
            let _ = write_response(&mut stream, &Response::err(msg));
            continue;
        }
        if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            clients.fetch_sub(1, Ordering::SeqCst);
            let _ = write_response(
                &mut stream,
                &Response::err(format!("too many control clients (limit {MAX_CLIENTS})")),
            );
            continue;
        }
        let handler = handler.clone();
        let clients2 = clients.clone();
        let spawned = std::thread::Builder::new()
            .name("l2sw-client".into())
            .spawn(move || {
                serve_client(stream, &*handler);
                clients2.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            clients.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Writes one response line.
pub fn write_response(stream: &mut UnixStream, resp: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(resp).unwrap_or_else(|e| {
        format!(r#"{{"ok":false,"error":"cannot encode response: {e}"}}"#).into_bytes()
    });
    line.push(b'\n');
    stream.write_all(&line)
}

/// What reading one request line found.
enum Line {
    Request(String),
    /// The client closed the connection cleanly between requests.
    Closed,
    /// The client closed the connection in the middle of a request.
    Partial,
    TooLong,
    NotUtf8,
}

fn read_line(reader: &mut impl BufRead) -> std::io::Result<Line> {
    let mut buf = Vec::new();
    let n = reader
        .by_ref()
        .take(MAX_REQUEST_LEN as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(Line::Closed);
    }
    if buf.last() != Some(&b'\n') {
        return Ok(if buf.len() > MAX_REQUEST_LEN {
            Line::TooLong
        } else {
            Line::Partial
        });
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    match String::from_utf8(buf) {
        Ok(s) => Ok(Line::Request(s)),
        Err(_) => Ok(Line::NotUtf8),
    }
}

fn serve_client(stream: UnixStream, handler: &dyn Handler) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let resp = match read_line(&mut reader) {
            Ok(Line::Request(line)) if line.trim().is_empty() => continue,
            Ok(Line::Request(line)) => match Request::parse(&line) {
                Ok(req) if req.is_stream() => {
                    handler.stream(req, &mut writer);
                    return;
                }
                Ok(req) => handler.handle(req),
                Err(msg) => Response::err(msg),
            },
            Ok(Line::Closed) => return,
            Ok(Line::Partial) => {
                eprintln!("l2sw: control client disconnected in the middle of a request; ignored");
                return;
            }
            Ok(Line::TooLong) => {
                let _ = write_response(
                    &mut writer,
                    &Response::err(format!(
                        "request longer than {MAX_REQUEST_LEN} bytes; closing the connection"
                    )),
                );
                return;
            }
            Ok(Line::NotUtf8) => Response::err("request is not valid UTF-8"),
            Err(_) => return,
        };
        if write_response(&mut writer, &resp).is_err() {
            return;
        }
    }
}
