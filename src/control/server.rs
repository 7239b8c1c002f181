//! The control socket's server side. Owns the listening Unix socket file and the threads
//! that serve it; receives one JSON [`Request`] per line from each connection, hands it to
//! the daemon's handler and writes back the handler's [`Envelope`], one line per request.
//!
//! Why threads and not the async runtime: the daemon's handler forwards to its main loop
//! and blocks until that loop answers, and a connection costs a thread only while it is
//! open (capped, with an idle timeout), so a plain thread per connection is the simplest
//! thing that cannot stall the main loop.
//!
//! The socket is root-only (mode 0600). It is bound inside a private 0700 directory,
//! chmod'ed there, and only then hard-linked to its public name, so there is no moment
//! when a wider mode is reachable (a process-wide `umask` would need `unsafe` and would
//! race with other threads creating files).

use std::collections::HashMap;
use std::fs::{self, DirBuilder};
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::protocol::{Envelope, Request, MAX_REQUEST_BYTES};

/// What the daemon does with a request. Called on the connection's thread; it may block
/// (typically: send to the main loop and wait for its answer).
pub type Handler = Arc<dyn Fn(Request) -> Envelope + Send + Sync>;

/// Limits of a [`ControlServer`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Connections served at once; more are told so and closed.
    pub max_connections: usize,
    /// A connection that sends nothing (or cannot take a reply) for this long is closed,
    /// so idle clients cannot pin threads.
    pub idle_timeout: Duration,
    /// How long [`ControlServer::shutdown`] waits for requests already inside the handler
    /// to write their reply (the `stop` request's own reply among them).
    pub drain: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 16,
            idle_timeout: Duration::from_secs(30),
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
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

/// State the accept thread and connection threads share with the owner. The mutex guards
/// connection bookkeeping only (never domain state, never held while handling).
struct Shared {
    stop: AtomicBool,
    handler: Handler,
    config: ServerConfig,
    conns: Mutex<Conns>,
    /// Signalled when `Conns::busy` drops.
    idle: Condvar,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Conns {
    /// A clone of each open connection, so shutdown can close its reading side.
    open: HashMap<u64, UnixStream>,
    /// Connections inside the handler or writing its reply.
    busy: usize,
}

impl Shared {
    fn conns(&self) -> MutexGuard<'_, Conns> {
        // A poisoned lock only means a connection thread panicked while counting; the
        // bookkeeping is still usable.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }
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
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            handler,
            config,
            conns: Mutex::new(Conns::default()),
            idle: Condvar::new(),
            next_id: AtomicU64::new(0),
        });
        let accept_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name("control-accept".into())
            .spawn(move || accept_loop(&listener, &accept_shared));
        let accept = match spawned {
            Ok(h) => h,
            Err(e) => {
                let _ = fs::remove_file(path);
                return Err(e);
            }
        };
        crate::debug!("control", "listening on {}", path.display());
        Ok(ControlServer {
            path: path.to_path_buf(),
            identity,
            shared,
            accept: Some(accept),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting, removes the socket file, closes the reading side of every open
    /// connection and waits (at most [`ServerConfig::drain`]) for requests inside the
    /// handler to write their reply. Idempotent.
    ///
    /// Connection threads are not joined: one of them may be waiting on the very loop
    /// that calls this (the `stop` request), and joining it would deadlock.
    pub fn shutdown(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.shared.stop.store(true, Ordering::SeqCst);
        // A blocking accept() has no other wake-up than a connection, made through the
        // file. If the file is gone or is now another daemon's socket, nobody can reach
        // our listener anyway: leave the thread to die with the process rather than
        // hang here (or wake the other daemon instead).
        let ours =
            fs::symlink_metadata(&self.path).is_ok_and(|md| (md.dev(), md.ino()) == self.identity);
        if ours && UnixStream::connect(&self.path).is_ok() {
            let _ = accept.join();
        }
        if ours {
            let _ = fs::remove_file(&self.path);
        }
        let deadline = Instant::now() + self.shared.config.drain;
        let mut conns = self.shared.conns();
        for s in conns.open.values() {
            // Read side only: a reply being written still gets out.
            let _ = s.shutdown(Shutdown::Read);
        }
        while conns.busy > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            conns = match self.shared.idle.wait_timeout(conns, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
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
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            ErrorKind::AddrInUse,
            format!("another banhammer is running on {}", path.display()),
        )),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            crate::info!("control", "removing stale socket {}", path.display());
            match fs::remove_file(path) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    Err(with_path(e, "removing stale socket", path))
                }
                _ => Ok(()),
            }
        }
        Err(e) => Err(with_path(e, "probing", path)),
    }
}

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

fn accept_loop(listener: &UnixListener, shared: &Arc<Shared>) {
    for incoming in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        match incoming {
            Ok(stream) => admit(stream, shared),
            Err(e) => {
                crate::warning!("control", "accepting a connection: {e}");
                // Out of descriptors and the like: do not spin on the error.
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Registers a connection and gives it a thread, or tells it why not.
fn admit(stream: UnixStream, shared: &Arc<Shared>) {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    {
        let mut conns = shared.conns();
        // Checked under the lock shutdown takes: a connection is either registered
        // before shutdown closes them all, or sees `stop` here.
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        if conns.open.len() >= shared.config.max_connections {
            drop(conns);
            refuse(stream, shared.config.max_connections);
            return;
        }
        match stream.try_clone() {
            Ok(clone) => {
                conns.open.insert(id, clone);
            }
            Err(e) => {
                crate::warning!("control", "accepting a connection: {e}");
                return;
            }
        }
    }
    let conn_shared = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name("control-conn".into())
        .spawn(move || serve_connection(stream, id, &conn_shared));
    if let Err(e) = spawned {
        crate::warning!("control", "no thread for a connection: {e}");
        shared.conns().open.remove(&id);
    }
}

fn refuse(mut stream: UnixStream, max: usize) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let env = Envelope::err(format!(
        "too many control connections (at most {max}); try again"
    ));
    let _ = write_envelope(&mut stream, &env);
}

/// Removes a connection from the books when its thread ends, however it ends.
struct ConnGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.shared.conns().open.remove(&self.id);
    }
}

/// Counts a request as in flight while it is handled and answered.
struct BusyGuard<'a>(&'a Shared);

impl<'a> BusyGuard<'a> {
    fn new(shared: &'a Shared) -> Self {
        shared.conns().busy += 1;
        BusyGuard(shared)
    }
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        let mut conns = self.0.conns();
        conns.busy = conns.busy.saturating_sub(1);
        self.0.idle.notify_all();
    }
}

fn serve_connection(stream: UnixStream, id: u64, shared: &Shared) {
    let _guard = ConnGuard { shared, id };
    let idle = Some(shared.config.idle_timeout);
    if stream.set_read_timeout(idle).is_err() || stream.set_write_timeout(idle).is_err() {
        return;
    }
    let mut reader = BufReader::new(&stream);
    let mut writer = &stream;
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        let read = match read_line(&mut reader, &mut line, MAX_REQUEST_BYTES) {
            Ok(r) => r,
            // Idle timeout, reset, or shutdown: nothing to answer.
            Err(_) => return,
        };
        let env = match read {
            LineRead::Eof => return,
            LineRead::TooLong => Envelope::err(format!(
                "invalid request: line longer than {MAX_REQUEST_BYTES} bytes"
            )),
            LineRead::Line => {
                let text = line.trim_ascii();
                if text.is_empty() {
                    continue;
                }
                match serde_json::from_slice::<Request>(text) {
                    Err(e) => Envelope::err(format!("invalid request: {e}")),
                    Ok(req) => {
                        if shared.stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let _busy = BusyGuard::new(shared);
                        let env = (shared.handler)(req);
                        if write_envelope(&mut writer, &env).is_err() {
                            return;
                        }
                        continue;
                    }
                }
            }
        };
        if write_envelope(&mut writer, &env).is_err() {
            return;
        }
    }
}

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    /// A line (newline removed) in the buffer; also a last line without newline at EOF.
    Line,
    /// The peer closed the connection.
    Eof,
    /// More than the limit before a newline; the rest of that line was skipped.
    TooLong,
}

/// Reads one line of at most `max` bytes into `buf` (which must be empty). An over-long
/// line is consumed up to its newline without being stored, so the connection can go on.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<LineRead> {
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let n = r.by_ref().take(limit).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(LineRead::Eof);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(LineRead::Line);
    }
    if buf.len() > max {
        buf.clear();
        skip_line(r)?;
        return Ok(LineRead::TooLong);
    }
    Ok(LineRead::Line)
}

/// Discards input up to and including the next newline (or EOF), buffer by buffer.
fn skip_line(r: &mut impl BufRead) -> io::Result<()> {
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        if let Some(i) = memchr::memchr(b'\n', chunk) {
            r.consume(i + 1);
            return Ok(());
        }
        let n = chunk.len();
        r.consume(n);
    }
}

fn write_envelope(w: &mut impl Write, env: &Envelope) -> io::Result<()> {
    let mut out = serde_json::to_vec(env).unwrap_or_else(|e| {
        // Only a non-string map key could fail here; say so rather than go silent.
        serde_json::to_vec(&Envelope::err(format!("internal error: reply: {e}")))
            .unwrap_or_default()
    });
    out.push(b'\n');
    w.write_all(&out)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], max: usize) -> Vec<(LineRead, String)> {
        let mut r = BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            let got = read_line(&mut r, &mut buf, max).unwrap();
            if got == LineRead::Eof {
                return out;
            }
            out.push((got, String::from_utf8(buf).unwrap()));
        }
    }

    #[test]
    fn lines_are_bounded_and_long_ones_skipped() {
        let got = read_all(b"abc\n0123456789\nxy\nlast", 5);
        assert_eq!(
            got,
            vec![
                (LineRead::Line, "abc".into()),
                (LineRead::TooLong, String::new()),
                (LineRead::Line, "xy".into()),
                (LineRead::Line, "last".into()),
            ]
        );
    }

    #[test]
    fn a_line_of_exactly_the_limit_fits() {
        assert_eq!(
            read_all(b"12345\n", 5),
            vec![(LineRead::Line, "12345".into())]
        );
        assert_eq!(
            read_all(b"123456\n", 5),
            vec![(LineRead::TooLong, String::new())]
        );
    }
}
