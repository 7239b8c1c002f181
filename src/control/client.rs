//! The control socket's client side. Receives a [`Request`] and a socket path; connects,
//! writes the request as one JSON line and returns the daemon's [`Envelope`]. Failing to
//! reach the daemon is reported in the words fail2ban-client users know.

use std::fmt;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{Envelope, Request};

/// Longest reply line read (a `banned` listing of a very large ban set fits; a runaway
/// peer does not exhaust memory).
pub const MAX_REPLY_BYTES: usize = 64 << 20;

/// Why a request got no reply.
#[derive(Debug)]
pub enum ClientError {
    /// No socket at the path, or nobody listening on it.
    NotRunning {
        /// The socket path.
        path: PathBuf,
    },
    /// The socket is there but root-only.
    PermissionDenied {
        /// The socket path.
        path: PathBuf,
    },
    /// Connected, but no reply in time.
    Timeout {
        /// The socket path.
        path: PathBuf,
        /// The timeout that ran out.
        after: Duration,
    },
    /// The daemon closed the connection before replying.
    Closed {
        /// The socket path.
        path: PathBuf,
    },
    /// The reply was not an [`Envelope`] (or too long).
    BadReply {
        /// The socket path.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// Any other I/O error.
    Io {
        /// The socket path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // fail2ban-client's own wording (client/fail2banclient.py __logSocketError).
            ClientError::NotRunning { path } => write!(
                f,
                "Failed to access socket path: {}. Is banhammer running?",
                path.display()
            ),
            ClientError::PermissionDenied { path } => write!(
                f,
                "Permission denied to socket: {}, (you must be root)",
                path.display()
            ),
            ClientError::Timeout { path, after } => write!(
                f,
                "no reply from banhammer on {} within {}s",
                path.display(),
                after.as_secs_f64()
            ),
            ClientError::Closed { path } => write!(
                f,
                "banhammer closed the connection on {} without replying",
                path.display()
            ),
            ClientError::BadReply { path, detail } => write!(
                f,
                "unreadable reply from banhammer on {}: {detail}",
                path.display()
            ),
            ClientError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// One connection to the daemon; several requests may be sent on it in turn.
pub struct Connection {
    path: PathBuf,
    timeout: Duration,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Connection {
    /// Connects to `socket`; each later read and write waits at most `timeout`.
    pub fn open(socket: &Path, timeout: Duration) -> Result<Connection, ClientError> {
        let path = socket.to_path_buf();
        let stream = UnixStream::connect(socket).map_err(|e| connect_error(&path, e))?;
        let io_err = |source| ClientError::Io {
            path: path.clone(),
            source,
        };
        // A zero timeout means "block forever" to the OS; treat it as the smallest wait.
        let t = Some(timeout.max(Duration::from_millis(1)));
        stream.set_read_timeout(t).map_err(io_err)?;
        stream.set_write_timeout(t).map_err(io_err)?;
        let writer = stream.try_clone().map_err(io_err)?;
        Ok(Connection {
            path,
            timeout,
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sends `req` and reads its reply.
    pub fn request(&mut self, req: &Request) -> Result<Envelope, ClientError> {
        let mut line = serde_json::to_vec(req).map_err(|e| ClientError::Io {
            path: self.path.clone(),
            source: io::Error::other(e),
        })?;
        line.push(b'\n');
        if let Err(e) = self
            .writer
            .write_all(&line)
            .and_then(|()| self.writer.flush())
        {
            // A server that turns us away (too many connections) writes why and closes,
            // possibly before our request is through: its line is still worth reading.
            if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) {
                if let Ok(env) = self.read_reply() {
                    return Ok(env);
                }
            }
            return Err(self.io_error(e));
        }
        self.read_reply()
    }

    fn read_reply(&mut self) -> Result<Envelope, ClientError> {
        let mut reply = Vec::with_capacity(256);
        let limit = u64::try_from(MAX_REPLY_BYTES).unwrap_or(u64::MAX);
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut reply)
            .map_err(|e| self.io_error(e))?;
        if n == 0 {
            return Err(ClientError::Closed {
                path: self.path.clone(),
            });
        }
        if reply.last() != Some(&b'\n') && n >= MAX_REPLY_BYTES {
            return Err(ClientError::BadReply {
                path: self.path.clone(),
                detail: format!("longer than {MAX_REPLY_BYTES} bytes"),
            });
        }
        serde_json::from_slice(reply.trim_ascii()).map_err(|e| ClientError::BadReply {
            path: self.path.clone(),
            detail: e.to_string(),
        })
    }

    fn io_error(&self, e: io::Error) -> ClientError {
        match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => ClientError::Timeout {
                path: self.path.clone(),
                after: self.timeout,
            },
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof => {
                ClientError::Closed {
                    path: self.path.clone(),
                }
            }
            _ => ClientError::Io {
                path: self.path.clone(),
                source: e,
            },
        }
    }
}

/// Sends one request on a fresh connection and returns the reply.
pub fn request(socket: &Path, req: &Request, timeout: Duration) -> Result<Envelope, ClientError> {
    Connection::open(socket, timeout)?.request(req)
}

fn connect_error(path: &Path, e: io::Error) -> ClientError {
    let path = path.to_path_buf();
    match e.kind() {
        // Missing file or directory, a socket nobody listens on, or a non-socket file
        // (connect gives "refused" for those too): all mean the daemon is not there.
        ErrorKind::NotFound | ErrorKind::ConnectionRefused | ErrorKind::NotADirectory => {
            ClientError::NotRunning { path }
        }
        ErrorKind::PermissionDenied => ClientError::PermissionDenied { path },
        _ => ClientError::Io { path, source: e },
    }
}
