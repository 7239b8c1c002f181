//! The sockets and their threads. Binds a Unix datagram socket — in a private directory,
//! where it is given to root:GROUP, its mode and `SO_PASSCRED` before it is moved into
//! place, so it is never reachable with wider permissions or without credentials — and/or
//! a loopback UDP socket, each with an enlarged receive buffer; replaces a stale socket
//! from an earlier run, never a live one or a file that is not a socket. One thread per
//! socket takes each datagram through the checks (sender allowed, sender within its rate,
//! datagram whole), turns it into a [`SourceEvent::Entry`] timed at reception, and counts
//! what it drops ([`SyslogStats`]). [`SyslogHandle::stop`] wakes and joins the threads and
//! removes the socket.
//!
//! The receive buffer: 4 MiB ([`RECV_BUFFER`]), with `SO_RCVBUFFORCE` when we may (root),
//! else `SO_RCVBUF` (capped by `net.core.rmem_max`). Enough to hold a few thousand reports
//! (a few seconds of a busy site under attack) while the reader is busy, so a burst of
//! junk that the checks drop quickly does not make the kernel drop real reports first;
//! small next to the daemon's memory, and taken only while the queue is full. It matters
//! for UDP; a Unix datagram socket's queue is also bounded by `net.unix.max_dgram_qlen`
//! datagrams (senders then wait, or are refused when they do not block).

use std::fs::{self, DirBuilder, Permissions};
use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::net::{
    recvfrom, recvmsg, sockopt, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
};

use super::kernel_drops::udp_drops;
use super::limit::{SenderLimits, Verdict};
use super::parse::parse_datagram;
use super::{SyslogListen, MAX_DATAGRAM};
use crate::source::throttle::{held_note, Throttle};
use crate::source::{deliver, SkipReason, SkippedRecord, SourceEvent};

/// The receive buffer asked for on both sockets (see the module documentation).
pub const RECV_BUFFER: usize = 4 << 20;

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

/// What a listener passed on and dropped, shared with whoever started it. Each is a count
/// on its own (relaxed atomics), summed over the listener's sockets.
#[derive(Debug, Default)]
pub struct SyslogStats {
    /// Datagrams passed on as records.
    pub accepted: AtomicU64,
    /// Dropped: the sender's uid is not in `senders`, or the datagram came without
    /// credentials (Unix socket).
    pub denied: AtomicU64,
    /// Dropped: over the sender's rate.
    pub rate_limited: AtomicU64,
    /// Dropped whole: longer than [`MAX_DATAGRAM`].
    pub oversized: AtomicU64,
    /// Not taken: a facility the listener does not read (not a drop, a filter).
    pub filtered: AtomicU64,
    /// Dropped by the kernel before we read them, UDP receive queue full (the socket's
    /// `drops` in `/proc/net/udp`, refreshed about once a second). A Unix socket has none:
    /// its senders wait instead.
    pub kernel_drops: AtomicU64,
}

/// A running syslog listener (see [`spawn_syslog`]). Dropping it stops it too.
#[derive(Debug)]
pub struct SyslogHandle {
    stopping: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// The Unix socket and its (device, inode), to remove it only if it is still ours.
    socket: Option<(PathBuf, (u64, u64))>,
    udp: Option<SocketAddr>,
    stats: Arc<SyslogStats>,
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

    /// The listener's counters, live.
    pub fn stats(&self) -> Arc<SyslogStats> {
        self.stats.clone()
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
/// file in the way, a group we cannot give the socket to) and receives on one thread per
/// socket, sending records into `sink` (blocking while the channel is full: senders then
/// wait or lose datagrams, as with a stuck rsyslog) until stopped or until the receiver is
/// dropped. The settings' notes go out first, as information.
pub fn spawn_syslog(
    listen: SyslogListen,
    sink: SyncSender<SourceEvent>,
) -> io::Result<SyslogHandle> {
    let stopping = Arc::new(AtomicBool::new(false));
    let host: Arc<[u8]> = Arc::from(local_hostname().into_bytes());
    let stats = Arc::new(SyslogStats::default());
    // Built first so that an error below drops it, which removes a socket already made.
    let mut handle = SyslogHandle {
        stopping: stopping.clone(),
        threads: Vec::new(),
        socket: None,
        udp: None,
        stats: stats.clone(),
    };
    let mut sockets = Vec::new();
    if let Some(path) = &listen.socket {
        let (sock, id) = bind_unix(path, listen.mode, listen.group).map_err(|e| {
            io::Error::new(e.kind(), format!("syslog socket {}: {e}", path.display()))
        })?;
        handle.socket = Some((path.clone(), id));
        sock.set_read_timeout(Some(RECV_TIMEOUT))?;
        enlarge_recv_buffer(&sock);
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
        enlarge_recv_buffer(&sock);
        let bound = sock.local_addr()?;
        handle.udp = Some(bound);
        sockets.push((Socket::Udp(sock), Arc::from(format!("udp:{bound}"))));
    }
    for (i, (sock, origin)) in sockets.into_iter().enumerate() {
        let udp_inode = match &sock {
            Socket::Udp(s) => rustix::fs::fstat(s.as_fd())
                .ok()
                .map(|st| (st.st_ino, handle.udp.is_some_and(|a| a.is_ipv6()))),
            Socket::Unix(_) => None,
        };
        let now = Instant::now();
        let l = Listener {
            sock,
            origin,
            host: host.clone(),
            limits: SenderLimits::new(listen.rate, now),
            listen: listen.clone(),
            sink: sink.clone(),
            stopping: stopping.clone(),
            stats: stats.clone(),
            // Nothing is waiting at start: the source is caught up at once (said once),
            // after the notes.
            first: i == 0,
            denied_said: Throttle::default(),
            oversized_said: Throttle::default(),
            drops: udp_inode.map(|(inode, ipv6)| KernelDrops {
                inode,
                ipv6,
                checked: now,
                seen: 0,
                said: Throttle::default(),
            }),
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

/// Asks for [`RECV_BUFFER`]: forced past `rmem_max` when we may (CAP_NET_ADMIN), else as
/// much as the kernel allows. Best effort: the default still works.
fn enlarge_recv_buffer(sock: &impl AsFd) {
    if sockopt::set_socket_recv_buffer_size_force(sock, RECV_BUFFER).is_err() {
        let _ = sockopt::set_socket_recv_buffer_size(sock, RECV_BUFFER);
    }
}

/// Creates the Unix socket: parent directories made (0755), a stale socket from an
/// earlier run replaced, but not a live one (another listener answers) nor a file that
/// is not a socket. The socket is bound in a private directory (0700) beside the path,
/// given to group `gid`, its `mode` and `SO_PASSCRED` there, and only then renamed into
/// place: from its first moment at the path it has its final permissions, and every
/// datagram sent to it carries its sender's credentials.
fn bind_unix(path: &Path, mode: u32, gid: u32) -> io::Result<(UnixDatagram, (u64, u64))> {
    let parent = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from("."),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&parent)?;
    open_directory_to_group(&parent, gid)?;
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
    let private = private_dir(&parent, path)?;
    let staged = private.join("socket");
    let made = stage(&staged, path, mode, gid);
    if made.is_err() {
        let _ = fs::remove_file(&staged);
    }
    let _ = fs::remove_dir(&private);
    let sock = made?;
    let m = fs::symlink_metadata(path)?;
    Ok((sock, (m.dev(), m.ino())))
}

/// A private directory of root's (others may not enter it: systemd's
/// `RuntimeDirectoryMode=0750` for `/run/banhammer`) is given to the socket's group, with
/// the group's right to enter it, so the socket's senders can reach it — and still no one
/// else. A directory already given to a group, or open to all, is left as it is.
fn open_directory_to_group(dir: &Path, gid: u32) -> io::Result<()> {
    let m = fs::metadata(dir)?;
    let private = m.uid() == 0 && m.gid() == 0 && m.mode() & 0o001 == 0;
    if !private || gid == 0 {
        return Ok(());
    }
    std::os::unix::fs::chown(dir, None, Some(gid))?;
    fs::set_permissions(dir, Permissions::from_mode((m.mode() & 0o7777) | 0o010))?;
    crate::info!(
        "syslog",
        "{}: given to group {gid} so the syslog socket's senders can reach it",
        dir.display()
    );
    Ok(())
}

/// Binds the socket at `staged` (in the private directory), sets it up, and renames it to
/// `path`.
fn stage(staged: &Path, path: &Path, mode: u32, gid: u32) -> io::Result<UnixDatagram> {
    let sock = UnixDatagram::bind(staged)?;
    sockopt::set_socket_passcred(&sock, true)?;
    rustix::fs::chownat(
        rustix::fs::CWD,
        staged,
        None,
        Some(rustix::fs::Gid::from_raw(gid)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!(
                "cannot give it to group {gid}: {e} (banhammer runs as root; else set group= \
                 to a group of yours)"
            ),
        )
    })?;
    fs::set_permissions(staged, Permissions::from_mode(mode))?;
    fs::rename(staged, path)?;
    Ok(sock)
}

/// A new directory only we can enter, in `parent`, named after `path` (a name someone else
/// made first is skipped, never reused).
fn private_dir(parent: &Path, path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .map_or_else(|| "syslog".into(), |n| n.to_string_lossy().into_owned());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last = io::Error::other("no attempt");
    for attempt in 0..16u32 {
        let dir = parent.join(format!(
            ".{name}.{}.{nanos:x}{attempt}.tmp",
            std::process::id()
        ));
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

enum Socket {
    Unix(UnixDatagram),
    Udp(UdpSocket),
}

/// Who sent a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Sender {
    /// The kernel's word for a Unix-socket sender.
    Process { uid: u32, gid: u32, pid: i32 },
    /// A UDP sender's address.
    Addr(IpAddr),
    /// A Unix-socket datagram without credentials (cannot happen with `SO_PASSCRED`; not
    /// trusted if it does).
    Unknown,
}

/// The rate limit's key: the sender without what varies between its datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SenderKey {
    Uid(u32),
    Ip(IpAddr),
}

/// One received datagram: its whole length (past the buffer when it was cut) and sender.
struct Got {
    len: usize,
    cut: bool,
    from: Sender,
}

impl Socket {
    /// Receives one datagram into `buf` (its first `buf.len()` bytes).
    fn recv(&self, buf: &mut [u8]) -> io::Result<Got> {
        match self {
            Socket::Unix(s) => {
                let mut space =
                    [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
                let mut control = RecvAncillaryBuffer::new(&mut space);
                let mut iov = [IoSliceMut::new(buf)];
                // TRUNC: the whole length even when the buffer was too small, so a cut is
                // seen. Descriptors a sender may pass do not fit in `space` (the kernel
                // closes them) and anything that does is closed when `control` is dropped.
                let msg = recvmsg(
                    s,
                    &mut iov,
                    &mut control,
                    RecvFlags::TRUNC | RecvFlags::CMSG_CLOEXEC,
                )?;
                // (rustix types the pid as non-zero; the kernel sends 0 for a sender in a
                // PID namespace ours cannot see. Only logged, never relied on.)
                let from = control
                    .drain()
                    .find_map(|m| match m {
                        RecvAncillaryMessage::ScmCredentials(c) => Some(Sender::Process {
                            uid: c.uid.as_raw(),
                            gid: c.gid.as_raw(),
                            pid: c.pid.as_raw_nonzero().get(),
                        }),
                        _ => None,
                    })
                    .unwrap_or(Sender::Unknown);
                Ok(Got {
                    len: msg.bytes,
                    cut: msg.bytes > buf_len(&iov) || msg.flags.contains(ReturnFlags::TRUNC),
                    from,
                })
            }
            Socket::Udp(s) => {
                let (_, len, addr) = recvfrom(s, &mut *buf, RecvFlags::TRUNC)?;
                let from = addr
                    .and_then(|a| SocketAddr::try_from(a).ok())
                    .map_or(Sender::Unknown, |a| Sender::Addr(a.ip()));
                Ok(Got {
                    len,
                    cut: len > buf.len(),
                    from,
                })
            }
        }
    }
}

fn buf_len(iov: &[IoSliceMut<'_>]) -> usize {
    iov.iter().map(|b| b.len()).sum()
}

/// The UDP socket's kernel drop count, looked at about once a second.
struct KernelDrops {
    inode: u64,
    ipv6: bool,
    checked: Instant,
    seen: u64,
    said: Throttle,
}

/// One socket's receiving loop.
struct Listener {
    sock: Socket,
    origin: Arc<str>,
    host: Arc<[u8]>,
    listen: SyslogListen,
    limits: SenderLimits<SenderKey>,
    sink: SyncSender<SourceEvent>,
    stopping: Arc<AtomicBool>,
    stats: Arc<SyslogStats>,
    first: bool,
    denied_said: Throttle,
    oversized_said: Throttle,
    drops: Option<KernelDrops>,
}

/// What to do with one datagram.
enum Outcome {
    Record(SourceEvent),
    Note(SourceEvent),
    Nothing,
}

impl Listener {
    fn send(&self, ev: SourceEvent, gone: &mut bool) -> bool {
        deliver(
            &self.sink,
            ev,
            || self.stopping.load(Ordering::SeqCst),
            None,
            gone,
        )
        .is_continue()
    }

    fn run(mut self) {
        let mut gone = false;
        if self.first {
            for note in self.listen.notes.clone() {
                if !self.send(SourceEvent::Info(note), &mut gone) {
                    return;
                }
            }
            if !self.send(SourceEvent::CaughtUp, &mut gone) {
                return;
            }
        }
        // Exactly the limit: a longer datagram is seen as cut (TRUNC gives its length).
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut errors = 0u64;
        while !self.stopping.load(Ordering::SeqCst) {
            let got = self.sock.recv(&mut buf);
            let now = Instant::now();
            if let Some(note) = self.look_at_kernel_drops(now) {
                if !self.send(note, &mut gone) {
                    return;
                }
            }
            let got = match got {
                Ok(g) => g,
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
                        if !self.send(SourceEvent::Warning(text), &mut gone) {
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
            if got.len == 0 {
                continue;
            }
            let ev = match self.judge(&got, &buf, now) {
                Outcome::Record(ev) | Outcome::Note(ev) => ev,
                Outcome::Nothing => continue,
            };
            if !self.send(ev, &mut gone) {
                return;
            }
        }
    }

    /// The checks, in order of cost: sender allowed, sender within its rate, datagram
    /// whole; then the record, if its facility is taken.
    fn judge(&mut self, got: &Got, buf: &[u8], now: Instant) -> Outcome {
        let key = match got.from {
            Sender::Process { uid, gid, pid } => {
                if !self.listen.senders.contains(&uid) {
                    self.stats.denied.fetch_add(1, Ordering::Relaxed);
                    return self.denied(format!("uid {uid} (gid {gid}, pid {pid})"), now);
                }
                crate::debug!(
                    "source",
                    "{}: datagram from uid {uid}, gid {gid}, pid {pid}",
                    self.origin
                );
                SenderKey::Uid(uid)
            }
            // Bound to loopback, so only local senders can reach it; checked anyway.
            Sender::Addr(ip) if ip.is_loopback() => SenderKey::Ip(ip),
            Sender::Addr(ip) => {
                self.stats.denied.fetch_add(1, Ordering::Relaxed);
                return self.denied(format!("{ip}, not a loopback address"), now);
            }
            Sender::Unknown => {
                self.stats.denied.fetch_add(1, Ordering::Relaxed);
                return self.denied("a sender without credentials".to_string(), now);
            }
        };
        if let Verdict::Drop { say } = self.limits.check(&key, now) {
            self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            let Some(held) = say else {
                return Outcome::Nothing;
            };
            let who = match key {
                SenderKey::Uid(uid) => format!("uid {uid}"),
                SenderKey::Ip(ip) => format!("address {ip}"),
            };
            let r = self.listen.rate;
            return Outcome::Note(SourceEvent::Warning(format!(
                "{}: {who} sends more than {} records a second (burst {}); dropping the \
                 rest{}",
                self.origin,
                r.per_sec,
                r.burst,
                held_note(held)
            )));
        }
        if got.cut || got.len > MAX_DATAGRAM {
            self.stats.oversized.fetch_add(1, Ordering::Relaxed);
            let Some(more) = self.oversized_said.admit(now) else {
                return Outcome::Nothing;
            };
            return Outcome::Note(SourceEvent::Skipped(SkippedRecord {
                origin: self.origin.clone(),
                reason: SkipReason::TooLong {
                    limit: MAX_DATAGRAM as u64,
                },
                len: got.len as u64,
                more,
            }));
        }
        let rec = parse_datagram(&buf[..got.len.min(buf.len())], &self.host);
        if !self.listen.accepts(rec.facility) {
            self.stats.filtered.fetch_add(1, Ordering::Relaxed);
            return Outcome::Nothing;
        }
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        Outcome::Record(SourceEvent::Entry {
            origin: self.origin.clone(),
            bytes: rec.line,
            time: unix_now(),
        })
    }

    /// A denied datagram: the warning, when it is due.
    fn denied(&mut self, who: String, now: Instant) -> Outcome {
        match self.denied_said.admit(now) {
            Some(held) => Outcome::Note(SourceEvent::Warning(format!(
                "{}: datagram from {who} dropped: not an allowed sender (senders=){}",
                self.origin,
                held_note(held)
            ))),
            None => Outcome::Nothing,
        }
    }

    /// Refreshes the kernel's drop count (UDP, about once a second); a warning when it grew
    /// and one is due.
    fn look_at_kernel_drops(&mut self, now: Instant) -> Option<SourceEvent> {
        let d = self.drops.as_mut()?;
        if now.saturating_duration_since(d.checked) < Duration::from_secs(1) {
            return None;
        }
        d.checked = now;
        let total = udp_drops(d.inode, d.ipv6)?;
        self.stats.kernel_drops.store(total, Ordering::Relaxed);
        if total <= d.seen {
            return None;
        }
        let new = total - d.seen;
        d.seen = total;
        d.said.admit(now)?;
        Some(SourceEvent::Warning(format!(
            "{}: the kernel dropped {new} datagrams (receive queue full; {total} since start)",
            self.origin
        )))
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
