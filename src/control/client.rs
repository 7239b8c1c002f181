//! The control socket's client side. Receives a [`Request`] and a socket path; connects,
//! writes the request as one JSON line and returns the daemon's [`Envelope`]. Failing to
//! reach the daemon is reported in the words fail2ban-client users know.
//!
//! The peer may be broken or not banhammer at all, so every step is bounded: the connect
//! (a stuck daemon's full backlog would block it), the whole exchange (one deadline, not
//! a timeout per read that a server dripping a byte at a time could renew forever) and
//! the reply's size ([`MAX_REPLY_BYTES`]).

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::net::sockopt::{self, Timeout};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

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
    stream: UnixStream,
    /// Bytes read past the last reply's newline: the start of the next reply.
    pending: Vec<u8>,
}

impl Connection {
    /// Connects to `socket`, waiting at most `timeout`; each later request (sending it
    /// and reading the whole reply) takes at most `timeout` too.
    pub fn open(socket: &Path, timeout: Duration) -> Result<Connection, ClientError> {
        let path = socket.to_path_buf();
        let stream = connect(socket, timeout).map_err(|e| connect_error(&path, e, timeout))?;
        Ok(Connection {
            path,
            timeout,
            stream,
            pending: Vec::new(),
        })
    }

    /// Sends `req` and reads its reply, within the connection's timeout.
    pub fn request(&mut self, req: &Request) -> Result<Envelope, ClientError> {
        let deadline = Instant::now() + self.timeout;
        let mut line = serde_json::to_vec(req).map_err(|e| ClientError::Io {
            path: self.path.clone(),
            source: io::Error::other(e),
        })?;
        line.push(b'\n');
        if let Err(e) = self.send(&line, deadline) {
            // A server that turns us away (too many connections) writes why and closes,
            // possibly before our request is through: its line is what to report.
            if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) {
                return self.read_reply(deadline);
            }
            return Err(self.io_error(e));
        }
        self.read_reply(deadline)
    }

    fn send(&mut self, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
        while !bytes.is_empty() {
            self.stream.set_write_timeout(Some(time_left(deadline)?))?;
            match self.stream.write(bytes) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads up to the next newline, at most [`MAX_REPLY_BYTES`] and until `deadline`.
    fn read_reply(&mut self, deadline: Instant) -> Result<Envelope, ClientError> {
        let mut scanned = 0;
        let mut chunk = [0u8; 64 * 1024];
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.pending[scanned..]) {
                let end = scanned + i;
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return self.parse(&line[..end]);
            }
            scanned = self.pending.len();
            if self.pending.len() > MAX_REPLY_BYTES {
                self.pending = Vec::new();
                return Err(ClientError::BadReply {
                    path: self.path.clone(),
                    detail: format!("longer than {MAX_REPLY_BYTES} bytes"),
                });
            }
            let read = time_left(deadline)
                .and_then(|left| self.stream.set_read_timeout(Some(left)))
                .and_then(|()| {
                    // Never past the cap (+1 to see that it is passed), and the buffer
                    // grows to exactly that at most, not to the next power of two.
                    let room = (MAX_REPLY_BYTES + 1 - self.pending.len()).min(chunk.len());
                    self.stream.read(&mut chunk[..room])
                });
            match read {
                Ok(0) if self.pending.is_empty() => {
                    return Err(ClientError::Closed {
                        path: self.path.clone(),
                    })
                }
                // A last reply without its newline: judge what came. (A peer that
                // closes with our request unread resets the connection rather than
                // ending it: the same thing here.)
                Ok(0) => {
                    let line = std::mem::take(&mut self.pending);
                    return self.parse(&line);
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset && !self.pending.is_empty() => {
                    let line = std::mem::take(&mut self.pending);
                    return self.parse(&line);
                }
                Ok(n) => {
                    let want = self.pending.len() + n;
                    if want > self.pending.capacity() {
                        let grown = (2 * self.pending.capacity()).clamp(want, MAX_REPLY_BYTES + 1);
                        self.pending.reserve_exact(grown - self.pending.len());
                    }
                    self.pending.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
    }

    fn parse(&self, line: &[u8]) -> Result<Envelope, ClientError> {
        serde_json::from_slice(line.trim_ascii()).map_err(|e| ClientError::BadReply {
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

/// What is left until `deadline`, or a `TimedOut` error when nothing is.
fn time_left(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(ErrorKind::TimedOut.into());
    }
    Ok(left)
}

/// Sends one request on a fresh connection and returns the reply. The connect waits at
/// most `timeout`, and so does the exchange after it.
pub fn request(socket: &Path, req: &Request, timeout: Duration) -> Result<Envelope, ClientError> {
    Connection::open(socket, timeout)?.request(req)
}

/// Why [`connect`] failed.
#[derive(Debug)]
pub enum ConnectError {
    /// Nobody accepted within the timeout (the listener's backlog is full).
    TimedOut,
    /// Anything else, as the OS said it.
    Io(io::Error),
}

/// Connects to the Unix socket at `path`, waiting at most `timeout`.
///
/// `UnixStream::connect` cannot be bounded: it blocks for as long as the listener's
/// backlog is full, which a daemon that is stuck (or a hostile listener) can make
/// forever. A Unix-socket connect honours the socket's send timeout, so the socket is
/// made first, given one, then connected.
pub fn connect(path: &Path, timeout: Duration) -> Result<UnixStream, ConnectError> {
    let io = |e: rustix::io::Errno| ConnectError::Io(e.into());
    let addr = SocketAddrUnix::new(path).map_err(|e| {
        ConnectError::Io(io::Error::new(
            ErrorKind::InvalidInput,
            format!("not a usable socket path ({e}; at most 107 bytes)"),
        ))
    })?;
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(io)?;
    // Zero means "forever" to the kernel: wait the smallest time instead.
    let wait = timeout.max(Duration::from_millis(1));
    sockopt::set_socket_timeout(&fd, Timeout::Send, Some(wait)).map_err(io)?;
    match rustix::net::connect(&fd, &addr) {
        Ok(()) => Ok(UnixStream::from(fd)),
        Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INPROGRESS) => {
            Err(ConnectError::TimedOut)
        }
        Err(e) => Err(io(e)),
    }
}

fn connect_error(path: &Path, e: ConnectError, timeout: Duration) -> ClientError {
    let path = path.to_path_buf();
    let e = match e {
        ConnectError::TimedOut => {
            return ClientError::Timeout {
                path,
                after: timeout,
            }
        }
        ConnectError::Io(e) => e,
    };
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
