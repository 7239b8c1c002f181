//! The control socket's server side. Owns the listening Unix socket file and the
//! [`pollserver`](crate::pollserver) loop that serves it; receives one JSON [`Request`] per
//! line from each connection, hands it to the daemon's handler and writes back the
//! handler's [`Envelope`], one line per request.
//!
//! The handler may block (it forwards to the daemon's main loop and waits for its
//! answer), so each request runs it on a thread of its own; a connection has at most one
//! request in flight, so there are at most `max_connections` such threads, and a slow
//! request (a `reload`) never holds up another client's `ping`. Idle, slow and deaf
//! clients cost no thread and are closed when a newcomer needs their place (the rules are
//! the poll loop's).
//!
//! The socket is root-only (mode 0600). It is bound inside a private 0700 directory,
//! chmod'ed there, and only then hard-linked to its public name, so there is no moment
//! when a wider mode is reachable (a process-wide `umask` would need `unsafe` and would
//! race with other threads creating files).

use std::fs::{self, DirBuilder};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::client::{self, ConnectError};
use super::protocol::{parse_request, Envelope, Request, MAX_REQUEST_BYTES};
use crate::pollserver::{Answer, Frame, Limits, Reply, Server, ServerStats, Service};

/// What the daemon does with a request. Called on a thread of its own; it may block
/// (typically: send to the main loop and wait for its answer).
pub type Handler = Arc<dyn Fn(Request) -> Envelope + Send + Sync>;

/// Limits of a [`ControlServer`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Connections open at once. Past it the connection idle longest is closed for a
    /// newcomer; a newcomer is refused (told so at once) only when every connection has
    /// a request inside the handler. Also the most handler threads at once.
    pub max_connections: usize,
    /// A connection with no request pending is closed after this long (a client may
    /// send several requests on one connection).
    pub idle_timeout: Duration,
    /// Time to send a whole request line once it started, and to take a whole reply:
    /// a client sending byte by byte, or not reading, is closed after it.
    pub request_timeout: Duration,
    /// How long [`ControlServer::shutdown`] waits for requests already inside the handler
    /// to write their reply (the `stop` request's own reply among them).
    pub drain: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 16,
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(5),
            drain: Duration::from_secs(1),
        }
    }
}

/// A running control socket. Dropping it is [`shutdown`](ControlServer::shutdown).
pub struct ControlServer {
    path: PathBuf,
    /// (device, inode) of the socket file we created: on shutdown we remove the path only
    /// if it is still ours, not a socket a newer daemon put there.
    identity: (u64, u64),
    server: Server,
    stopped: bool,
}

impl ControlServer {
    /// Binds `path` with the default [`ServerConfig`] and starts serving.
    pub fn bind(path: &Path, handler: Handler) -> io::Result<ControlServer> {
        ControlServer::bind_with(path, handler, ServerConfig::default())
    }

    /// Binds `path` and starts serving on a thread.
    ///
    /// Creates the parent directory (mode 0700) if missing. A socket file already at
    /// `path` is probed: if a daemon answers, this fails with "another banhammer is
    /// running on PATH"; if nobody listens (a crash left it behind), it is replaced. A
    /// file that is not a socket is never replaced.
    pub fn bind_with(
        path: &Path,
        handler: Handler,
        config: ServerConfig,
    ) -> io::Result<ControlServer> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        ensure_parent(parent)?;
        clear_stale(path)?;
        let (listener, identity) = bind_private(parent, path)?;
        let limits = Limits {
            max_connections: config.max_connections.max(1),
            max_request: MAX_REQUEST_BYTES,
            idle_timeout: config.idle_timeout,
            request_timeout: config.request_timeout,
            drain: config.drain,
        };
        let service = Control {
            handler,
            max_connections: limits.max_connections,
        };
        let server = match Server::start("control", listener, service, limits) {
            Ok(s) => s,
            Err(e) => {
                let _ = fs::remove_file(path);
                return Err(e);
            }
        };
        crate::debug!("control", "listening on {}", path.display());
        Ok(ControlServer {
            path: path.to_path_buf(),
            identity,
            server,
            stopped: false,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the server had to close or refuse so far.
    pub fn stats(&self) -> ServerStats {
        self.server.stats()
    }

    /// A handle on those counts, for the metrics.
    pub fn stats_reader(&self) -> crate::pollserver::StatsReader {
        self.server.stats_reader()
    }

    /// Stops accepting, removes the socket file, closes every connection waiting for a
    /// request and waits (at most [`ServerConfig::drain`]) for requests inside the handler
    /// to write their reply. Idempotent.
    ///
    /// Handler threads are not joined: one of them may be waiting on the very loop that
    /// calls this (the `stop` request), and joining it would deadlock.
    pub fn shutdown(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        // The file first, so no new client finds a server that is going away. If it is
        // gone or is now another daemon's socket, it is not ours to remove.
        let ours =
            fs::symlink_metadata(&self.path).is_ok_and(|md| (md.dev(), md.ino()) == self.identity);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
        self.server.shutdown();
        crate::debug!("control", "stopped listening on {}", self.path.display());
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Creates the socket's directory, private, if it does not exist.
fn ensure_parent(parent: &Path) -> io::Result<()> {
    match fs::metadata(parent) {
        Ok(md) if md.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(
            ErrorKind::AlreadyExists,
            format!("{}: not a directory (socket directory)", parent.display()),
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| with_path(e, "creating", parent)),
        Err(e) => Err(with_path(e, "reading", parent)),
    }
}

/// Tells a live daemon's socket (refuse to start) from one left by a crash (remove it).
fn clear_stale(path: &Path) -> io::Result<()> {
    let md = match fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(with_path(e, "reading", path)),
    };
    if !md.file_type().is_socket() {
        return Err(io::Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "{}: exists and is not a socket (not replacing it)",
                path.display()
            ),
        ));
    }
    // Timed: a daemon that is there but stuck (its backlog full) must not hang us.
    match client::connect(path, PROBE_TIMEOUT) {
        // A live daemon, or one too stuck to accept: either way, not stale.
        Ok(_) | Err(ConnectError::TimedOut) => Err(io::Error::new(
            ErrorKind::AddrInUse,
            format!("another banhammer is running on {}", path.display()),
        )),
        Err(ConnectError::Io(e)) if e.kind() == ErrorKind::ConnectionRefused => {
            crate::info!("control", "removing stale socket {}", path.display());
            match fs::remove_file(path) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    Err(with_path(e, "removing stale socket", path))
                }
                _ => Ok(()),
            }
        }
        Err(ConnectError::Io(e)) => Err(with_path(e, "probing", path)),
    }
}

/// How long probing an existing socket may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Binds in a fresh 0700 directory beside `path`, sets mode 0600, then links it to
/// `path`. `hard_link` (unlike `rename`) fails if `path` appeared meanwhile, so two
/// daemons starting at once cannot silently take each other's socket.
fn bind_private(parent: &Path, path: &Path) -> io::Result<(UnixListener, (u64, u64))> {
    let dir = private_dir(parent)?;
    let tmp = dir.join("s");
    let result = (|| {
        let listener = UnixListener::bind(&tmp).map_err(|e| with_path(e, "binding", path))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
        fs::hard_link(&tmp, path).map_err(|e| {
            if e.kind() == ErrorKind::AlreadyExists {
                io::Error::new(
                    ErrorKind::AddrInUse,
                    format!("another banhammer is starting on {}", path.display()),
                )
            } else {
                with_path(e, "creating", path)
            }
        })?;
        let md = fs::symlink_metadata(path)?;
        Ok((listener, (md.dev(), md.ino())))
    })();
    let _ = fs::remove_file(&tmp);
    let _ = fs::remove_dir(&dir);
    result
}

/// A new directory only we can enter. The name is short: the socket's path inside it
/// must fit `sun_path` (108 bytes) like the final one.
fn private_dir(parent: &Path) -> io::Result<PathBuf> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut last = None;
    for _ in 0..16 {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!(".bh{}.{n}", std::process::id()));
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(with_path(e, "creating", &dir)),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no private directory name left")))
}

fn with_path(e: io::Error, doing: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{doing} {}: {e}", path.display()))
}

/// The control protocol, as the poll loop sees it: lines in, envelopes out.
struct Control {
    handler: Handler,
    max_connections: usize,
}

impl Service for Control {
    fn frame(&self, input: &[u8], scanned: usize, eof: bool) -> Frame {
        line_frame(input, scanned, eof)
    }

    fn answer(&self, line: &[u8]) -> Answer {
        // Blank lines (a `\r\n` client's keep-alive, say) get no reply.
        if line.trim_ascii().is_empty() {
            return Answer::Now(Reply {
                bytes: Vec::new(),
                close: false,
            });
        }
        match parse_request(line) {
            Err(e) => Answer::Now(Reply {
                bytes: envelope_line(&Envelope::err(e.to_string())),
                close: false,
            }),
            Ok(request) => {
                let handler = Arc::clone(&self.handler);
                Answer::Blocking(Box::new(move || Reply {
                    bytes: envelope_line(&handler(request)),
                    close: false,
                }))
            }
        }
    }

    fn too_long(&self) -> Vec<u8> {
        envelope_line(&Envelope::err(format!(
            "invalid request: line longer than {MAX_REQUEST_BYTES} bytes"
        )))
    }

    fn refusal(&self) -> Vec<u8> {
        envelope_line(&Envelope::err(format!(
            "too many control requests in progress (at most {}); try again",
            self.max_connections
        )))
    }
}

/// A request is a line; the last one may end at EOF without its newline.
fn line_frame(input: &[u8], scanned: usize, eof: bool) -> Frame {
    let from = scanned.min(input.len());
    match memchr::memchr(b'\n', &input[from..]) {
        Some(i) => Frame::Request {
            len: from + i,
            consumed: from + i + 1,
        },
        None if eof && !input.is_empty() => Frame::Request {
            len: input.len(),
            consumed: input.len(),
        },
        None => Frame::Incomplete,
    }
}

fn envelope_line(env: &Envelope) -> Vec<u8> {
    let mut out = serde_json::to_vec(env).unwrap_or_else(|e| {
        // Only a non-string map key could fail here; say so rather than go silent.
        serde_json::to_vec(&Envelope::err(format!("internal error: reply: {e}")))
            .unwrap_or_default()
    });
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_at_newlines_and_at_eof() {
        assert_eq!(line_frame(b"abc", 0, false), Frame::Incomplete);
        assert_eq!(
            line_frame(b"abc\ndef", 0, false),
            Frame::Request {
                len: 3,
                consumed: 4
            }
        );
        assert_eq!(
            line_frame(b"abcdef\n", 3, false),
            Frame::Request {
                len: 6,
                consumed: 7
            }
        );
        assert_eq!(
            line_frame(b"last", 0, true),
            Frame::Request {
                len: 4,
                consumed: 4
            }
        );
        assert_eq!(line_frame(b"", 0, true), Frame::Incomplete);
    }
}
