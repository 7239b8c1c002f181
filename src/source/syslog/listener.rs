//! The sockets and their threads: binds a Unix datagram socket (replacing a stale one,
//! never a live one or a file that is not a socket) and/or a loopback UDP socket; one
//! thread per socket turns each datagram into a [`SourceEvent::Entry`] timed at
//! reception; [`SyslogHandle::stop`] wakes and joins them and removes the socket.

use std::fs::{self, DirBuilder, Permissions};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::parse::parse_datagram;
use super::{SyslogListen, MAX_DATAGRAM};
use crate::source::deliver;
use crate::source::SourceEvent;

/// This machine's host name without its domain (rsyslog writes the short name unless
/// `PreserveFQDN` is on), for records that do not name their host.
pub fn local_hostname() -> String {
    let full = fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let short = full.trim().split('.').next().unwrap_or("").to_string();
    let ok = !short.is_empty() && short.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        short
    } else {
        "localhost".to_string()
    }
}

/// A running syslog listener (see [`spawn_syslog`]). Dropping it stops it too.
#[derive(Debug)]
pub struct SyslogHandle {
    stopping: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// The Unix socket and its (device, inode), to remove it only if it is still ours.
    socket: Option<(PathBuf, (u64, u64))>,
    udp: Option<SocketAddr>,
}

impl SyslogHandle {
    /// The UDP address actually bound (the port chosen for `:0`).
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp
    }

    /// The Unix socket's path.
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket.as_ref().map(|(p, _)| p.as_path())
    }

    /// Stops listening: wakes and joins the threads and removes the socket file.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // An empty datagram wakes a thread blocked in recv at once; the read timeout is
        // the backstop if it cannot be sent (full queue: the thread is awake anyway).
        if let Some((path, _)) = &self.socket {
            if let Ok(s) = UnixDatagram::unbound() {
                // Non-blocking: a Unix datagram sender blocks on a full queue, and a
                // thread stuck on a full channel is not reading it.
                let _ = s.set_nonblocking(true);
                let _ = s.send_to(&[], path);
            }
        }
        if let Some(addr) = self.udp {
            let local: SocketAddr = if addr.is_ipv4() {
                ([127, 0, 0, 1], 0).into()
            } else {
                (std::net::Ipv6Addr::LOCALHOST, 0).into()
            };
            if let Ok(s) = UdpSocket::bind(local) {
                let _ = s.send_to(&[], addr);
            }
        }
        for t in self.threads.drain(..) {
            // A panic in the thread has already been reported by the panic hook.
            let _ = t.join();
        }
        if let Some((path, id)) = self.socket.take() {
            let ours = fs::symlink_metadata(&path).is_ok_and(|m| (m.dev(), m.ino()) == id);
            if ours {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

impl Drop for SyslogHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How long a receiving thread blocks before looking at the stop flag on its own.
const RECV_TIMEOUT: Duration = Duration::from_secs(1);

/// Binds the configured sockets (errors now: address in use, not loopback, a non-socket
/// file in the way) and receives on one thread per socket, sending records into `sink`
/// (blocking while the channel is full: senders then wait or lose datagrams, as with a
/// stuck rsyslog) until stopped or until the receiver is dropped.
pub fn spawn_syslog(
    listen: SyslogListen,
    sink: SyncSender<SourceEvent>,
) -> io::Result<SyslogHandle> {
    let stopping = Arc::new(AtomicBool::new(false));
    let host: Arc<[u8]> = Arc::from(local_hostname().into_bytes());
    // Built first so that an error below drops it, which removes a socket already made.
    let mut handle = SyslogHandle {
        stopping: stopping.clone(),
        threads: Vec::new(),
        socket: None,
        udp: None,
    };
    let mut sockets = Vec::new();
    if let Some(path) = &listen.socket {
        let (sock, id) = bind_unix(path, listen.mode).map_err(|e| {
            io::Error::new(e.kind(), format!("syslog socket {}: {e}", path.display()))
        })?;
        handle.socket = Some((path.clone(), id));
        sock.set_read_timeout(Some(RECV_TIMEOUT))?;
        let origin: Arc<str> = Arc::from(format!("syslog:{}", path.display()));
        sockets.push((Socket::Unix(sock), origin));
    }
    if let Some(addr) = listen.udp {
        // Checked by `from_backend` too; a hand-built `SyslogListen` must not bypass it.
        if !addr.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("syslog udp {addr}: not a loopback address"),
            ));
        }
        let sock = UdpSocket::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("syslog udp {addr}: {e}")))?;
        sock.set_read_timeout(Some(RECV_TIMEOUT))?;
        let bound = sock.local_addr()?;
        handle.udp = Some(bound);
        sockets.push((Socket::Udp(sock), Arc::from(format!("udp:{bound}"))));
    }
    for (i, (sock, origin)) in sockets.into_iter().enumerate() {
        let l = Listener {
            sock,
            origin,
            host: host.clone(),
            listen: listen.clone(),
            sink: sink.clone(),
            stopping: stopping.clone(),
            // Nothing is waiting at start: the source is caught up at once (said once).
            say_caught_up: i == 0,
        };
        let t = std::thread::Builder::new()
            .name("banhammer-syslog".into())
            .spawn(move || l.run());
        match t {
            Ok(t) => handle.threads.push(t),
            // Dropping the handle stops the threads already started and removes the socket.
            Err(e) => return Err(e),
        }
    }
    Ok(handle)
}

/// Creates the Unix socket: parent directories made (0755), a stale socket from an
/// earlier run replaced, but not a live one (another listener answers) nor a file that
/// is not a socket; then the permissions set.
fn bind_unix(path: &Path, mode: u32) -> io::Result<(UnixDatagram, (u64, u64))> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)?;
    }
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            // Only "connection refused" proves nobody is bound there; a stream socket
            // (another program's) answers with another error and is left alone.
            match UnixDatagram::unbound()?.connect(path) {
                Ok(()) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        "another process is listening on it",
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => fs::remove_file(path)?,
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!(
                            "a socket that is not a stale syslog socket ({e}); not replacing it"
                        ),
                    ))
                }
            }
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a socket; not replacing it",
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let sock = UnixDatagram::bind(path)?;
    // Until this chmod the socket has the umask's (narrower) permissions: no window
    // where it is more open than configured.
    fs::set_permissions(path, Permissions::from_mode(mode))?;
    let m = fs::symlink_metadata(path)?;
    Ok((sock, (m.dev(), m.ino())))
}

enum Socket {
    Unix(UnixDatagram),
    Udp(UdpSocket),
}

impl Socket {
    /// One datagram's length; `None` for one to ignore (a UDP sender off loopback).
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self {
            Socket::Unix(s) => s.recv(buf).map(Some),
            Socket::Udp(s) => {
                let (n, from) = s.recv_from(buf)?;
                // Bound to loopback, so only local senders can reach it; checked anyway.
                Ok(from.ip().is_loopback().then_some(n))
            }
        }
    }
}

/// One socket's receiving loop.
struct Listener {
    sock: Socket,
    origin: Arc<str>,
    host: Arc<[u8]>,
    listen: SyslogListen,
    sink: SyncSender<SourceEvent>,
    stopping: Arc<AtomicBool>,
    say_caught_up: bool,
}

impl Listener {
    fn run(self) {
        let mut gone = false;
        let send = |ev: SourceEvent, gone: &mut bool| {
            deliver(
                &self.sink,
                ev,
                || self.stopping.load(Ordering::SeqCst),
                None,
                gone,
            )
            .is_continue()
        };
        if self.say_caught_up && !send(SourceEvent::CaughtUp, &mut gone) {
            return;
        }
        // One byte more than the limit tells a cut datagram from one that fits exactly.
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let mut errors = 0u64;
        while !self.stopping.load(Ordering::SeqCst) {
            let n = match self.sock.recv(&mut buf) {
                Ok(Some(n)) => n,
                Ok(None) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    errors += 1;
                    if errors % 1000 == 1 {
                        let text = format!("{}: receive error: {e} ({errors} so far)", self.origin);
                        if !send(SourceEvent::Warning(text), &mut gone) {
                            return;
                        }
                    }
                    // Do not spin on a persistent error.
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            // An empty datagram is no record (and is how `stop` wakes this thread).
            if n == 0 {
                continue;
            }
            let datagram = &buf[..n.min(MAX_DATAGRAM)];
            if n > MAX_DATAGRAM {
                crate::debug!(
                    "source",
                    "{}: datagram longer than {MAX_DATAGRAM} bytes; cut to the limit",
                    self.origin
                );
            }
            let rec = parse_datagram(datagram, &self.host);
            if !self.listen.accepts(rec.facility) {
                continue;
            }
            let ev = SourceEvent::Entry {
                origin: self.origin.clone(),
                bytes: rec.line,
                time: unix_now(),
            };
            if !send(ev, &mut gone) {
                return;
            }
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
