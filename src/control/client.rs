//! The control client: connect to a switch by name, send one request, read
//! one response.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::protocol::{Request, Response};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no switch named {name} is running (cannot connect to {path}: {source}); start one with `l2sw --name {name} run`")]
    NotRunning {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("permission denied: cannot connect to the control socket {path} of switch {name}; it is root-only unless the switch was started with `run --group NAME` (and you are in that group)")]
    Denied { name: String, path: PathBuf },
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the switch closed the connection without answering")]
    NoAnswer,
    #[error("the switch sent a response that is not valid JSON: {0}")]
    BadResponse(String),
    /// The answer is JSON but not the shape this client knows (a switch of
    /// another l2sw version).
    #[error("the switch sent an answer this l2sw cannot read: {0}")]
    Unreadable(String),
    /// The switch answered with an error.
    #[error("{0}")]
    Refused(String),
}

/// Reads a response's result as the typed answer of its request (see
/// `protocol` and `views`): renderers take the types, never the JSON.
pub fn decode<T: serde::de::DeserializeOwned>(result: Value) -> Result<T, ClientError> {
    serde_json::from_value(result).map_err(|e| ClientError::Unreadable(e.to_string()))
}

pub struct Client {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    pub fn connect(name: &str, path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::PermissionDenied {
                ClientError::Denied {
                    name: name.to_string(),
                    path: path.to_path_buf(),
                }
            } else {
                ClientError::NotRunning {
                    name: name.to_string(),
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        let io = |source| ClientError::Io {
            path: path.to_path_buf(),
            source,
        };
        // Plugging namespaces runs several `ip` commands; allow for a slow machine.
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(io)?;
        let writer = stream.try_clone().map_err(io)?;
        Ok(Client {
            path: path.to_path_buf(),
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sends a raw line and returns the raw response line (for tests).
    pub fn raw(&mut self, line: &str) -> Result<String, ClientError> {
        let io = |source| ClientError::Io {
            path: self.path.clone(),
            source,
        };
        if let Err(e) = self.writer.write_all(format!("{line}\n").as_bytes()) {
            // A switch that refuses a client answers before reading and
            // closes: its answer is still there to be read.
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(io(e));
            }
        }
        let mut resp = String::new();
        let n = self
            .reader
            .read_line(&mut resp)
            .map_err(|source| ClientError::Io {
                path: self.path.clone(),
                source,
            })?;
        if n == 0 {
            return Err(ClientError::NoAnswer);
        }
        Ok(resp)
    }

    /// Sends a streaming request and returns the first answer; read the
    /// stream with [`next_line`](Self::next_line).
    pub fn start_stream(&mut self, req: &Request) -> Result<Value, ClientError> {
        let v = self.call(req)?;
        // The stream may stay quiet for long; `next_line` polls instead.
        self.writer
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|source| ClientError::Io {
                path: self.path.clone(),
                source,
            })?;
        Ok(v)
    }

    /// The next complete line of a stream: `Ok(None)` at its end, or when
    /// nothing arrived for a poll interval (`Err` only for real errors).
    /// `partial` keeps a line cut by the poll timeout between calls.
    pub fn next_line(&mut self, partial: &mut String) -> Result<Option<String>, ClientError> {
        match self.reader.read_line(partial) {
            Ok(0) => Err(ClientError::NoAnswer),
            Ok(_) if partial.ends_with('\n') => Ok(Some(std::mem::take(partial))),
            Ok(_) => Ok(None),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(source) => Err(ClientError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Sends a request and reads its result as `T`.
    pub fn call_as<T: serde::de::DeserializeOwned>(
        &mut self,
        req: &Request,
    ) -> Result<T, ClientError> {
        decode(self.call(req)?)
    }

    /// Sends a request; an error response becomes `ClientError::Refused`.
    pub fn call(&mut self, req: &Request) -> Result<Value, ClientError> {
        let line = serde_json::to_string(req).expect("requests always serialize");
        let resp = self.raw(&line)?;
        let resp: Response =
            serde_json::from_str(&resp).map_err(|e| ClientError::BadResponse(e.to_string()))?;
        if resp.ok {
            Ok(resp.result.unwrap_or(Value::Null))
        } else {
            Err(ClientError::Refused(
                resp.error.unwrap_or_else(|| "unknown error".into()),
            ))
        }
    }
}
