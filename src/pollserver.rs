//! One thread serving many short request/reply connections: the loop under the control
//! socket and the metrics endpoint. Owns the listener and every open connection; receives
//! bytes, which a [`Service`] cuts into requests and answers (at once, or on a thread of
//! its own when the answer may block); emits the answers, and counts the connections it
//! had to close or turn away ([`ServerStats`]).
//!
//! Why a poll(2) loop and not a thread per connection: a client that connects and sends
//! nothing, sends a byte a second, or never reads its answer then costs a descriptor and
//! a bounded buffer, never a thread, and never delays anyone else. The rules, for any
//! local user who may connect:
//! - at most `max_connections` are open; past that the one that has gone longest
//!   without completing a request or taking an answer is closed to make room (what nginx
//!   does with idle keep-alive connections when it runs out), so a newcomer — usually a
//!   real client, which writes its request at once — gets in. A newcomer is refused, at
//!   once and with the service's message, only when every connection has a request inside
//!   the service, whose answer is coming; refusing newcomers whenever the table is full
//!   (OpenSSH's `MaxStartups` past "full") would let a handful of idle sockets lock
//!   everyone out, which is the very attack to stop;
//! - a request must arrive whole within `request_timeout` of its first byte, an answer
//!   must be taken within `request_timeout`, and a connection with nothing pending is
//!   closed after `idle_timeout`;
//! - a request is at most `max_request` bytes: past that the client gets the service's
//!   refusal and the connection is closed, without reading (or keeping) the rest;
//! - each connection has one request at a time in flight: the next is not read before
//!   the answer is out, so a client cannot queue up work or memory;
//! - blocking answers run on their own threads, at most one per connection, so at most
//!   `max_connections` of them: a slow one never holds up another client.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};

/// The limits of one server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Longest request, in bytes (its terminator not counted).
    pub max_request: usize,
    /// A connection with nothing pending is closed after this long.
    pub idle_timeout: Duration,
    /// Time to send a whole request once it started, and to take a whole answer.
    pub request_timeout: Duration,
    /// After [`Server::shutdown`], how long answers already on their way may take.
    pub drain: Duration,
}

/// What [`Service::frame`] found at the front of a connection's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// No whole request yet: read more.
    Incomplete,
    /// A request: its first `len` bytes are the request, `consumed` bytes (terminator
    /// included) are used up.
    Request {
        /// Length of the request.
        len: usize,
        /// Bytes to drop from the input.
        consumed: usize,
    },
}

/// An answer to write back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The bytes (possibly none: nothing to say).
    pub bytes: Vec<u8>,
    /// Close the connection once they are out.
    pub close: bool,
}

/// How a request is answered.
pub enum Answer {
    /// Right away, on the serving thread (must not block).
    Now(Reply),
    /// By work that may block (waiting on the daemon's main loop): run on a thread of its
    /// own while the connection waits.
    Blocking(Box<dyn FnOnce() -> Reply + Send>),
}

/// A protocol served by [`Server`].
pub trait Service: Send + 'static {
    /// Looks for a whole request at the front of `input`. Bytes before `scanned` were
    /// looked at before and held no terminator (a terminator may still end just past
    /// it): searching from there keeps a client sending byte by byte from costing a
    /// rescan per byte. `eof`: the client will send nothing more.
    fn frame(&self, input: &[u8], scanned: usize, eof: bool) -> Frame;
    /// Answers one request.
    fn answer(&self, request: &[u8]) -> Answer;
    /// What a client sending a request over [`Limits::max_request`] is told before the
    /// connection is closed.
    fn too_long(&self) -> Vec<u8>;
    /// What a client is told when it is refused (every connection busy).
    fn refusal(&self) -> Vec<u8>;
}

/// A listening socket the loop can accept from.
pub trait Listen: AsFd + Send + 'static {
    /// The connections it gives.
    type Stream: Read + Write + AsFd + Send + 'static;
    /// Accepts one connection.
    fn accept_stream(&self) -> io::Result<Self::Stream>;
}

impl Listen for UnixListener {
    type Stream = UnixStream;
    fn accept_stream(&self) -> io::Result<UnixStream> {
        self.accept().map(|(s, _)| s)
    }
}

impl Listen for TcpListener {
    type Stream = TcpStream;
    fn accept_stream(&self) -> io::Result<TcpStream> {
        self.accept().map(|(s, _)| s)
    }
}

/// What a server did to protect itself, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed to make room for a newcomer.
    pub evicted: u64,
    /// Newcomers turned away (every connection had a request in flight).
    pub refused: u64,
    /// Connections closed for being too slow (idle, a request or an answer past its
    /// timeout).
    pub timed_out: u64,
    /// Requests over the size limit.
    pub too_long: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    evicted: AtomicU64,
    refused: AtomicU64,
    timed_out: AtomicU64,
    too_long: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// What the owner and the serving thread share.
struct Shared {
    stop: AtomicBool,
    counters: Counters,
}

/// Wakes the serving thread out of poll(2): a byte on a socket pair it watches.
struct Waker(UnixStream);

impl Waker {
    fn wake(&self) {
        // Non-blocking: a full pipe already holds a wake-up, which is all we need.
        let _ = (&self.0).write(&[1]);
    }
}

/// Reads a server's counts from anywhere (the server may have stopped since).
#[derive(Clone)]
pub struct StatsReader(Arc<Shared>);

impl StatsReader {
    /// The counts now.
    pub fn read(&self) -> ServerStats {
        let c = &self.0.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ServerStats {
            accepted: get(&c.accepted),
            evicted: get(&c.evicted),
            refused: get(&c.refused),
            timed_out: get(&c.timed_out),
            too_long: get(&c.too_long),
        }
    }
}

/// A running server. Dropping it leaves it serving for the life of the process;
/// [`shutdown`](Server::shutdown) stops it.
pub struct Server {
    shared: Arc<Shared>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `listener` with `service` from a new thread named `name` (also the log
    /// component).
    pub fn start<L: Listen, V: Service>(
        name: &'static str,
        listener: L,
        service: V,
        limits: Limits,
    ) -> io::Result<Server> {
        rustix::io::ioctl_fionbio(&listener, true)?;
        let (wake_rx, wake_tx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        wake_tx.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            counters: Counters::default(),
        });
        let waker = Arc::new(Waker(wake_tx));
        let (done_tx, done_rx) = mpsc::channel();
        let serve = Loop {
            name,
            listener,
            service,
            limits,
            conns: Vec::new(),
            next_id: 0,
            wake_rx,
            waker: Arc::clone(&waker),
            done_tx,
            done_rx,
            shared: Arc::clone(&shared),
            draining_until: None,
            accept_paused_until: None,
            last_warning: None,
        };
        let thread = thread::Builder::new()
            .name(name.into())
            .spawn(move || serve.run())?;
        Ok(Server {
            shared,
            waker,
            thread: Some(thread),
        })
    }

    /// What the server counted so far.
    pub fn stats(&self) -> ServerStats {
        self.stats_reader().read()
    }

    /// A handle that reads the counts, kept by whoever reports them (metrics).
    pub fn stats_reader(&self) -> StatsReader {
        StatsReader(Arc::clone(&self.shared))
    }

    /// Stops accepting, closes connections waiting for a request, lets answers already
    /// on their way out (at most [`Limits::drain`]), then closes everything and waits for
    /// the serving thread. Idempotent.
    ///
    /// Threads running blocking answers are not waited for: one may be waiting on the
    /// very thread calling this (a `stop` request waits on the daemon's main loop).
    pub fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.shared.stop.store(true, Ordering::SeqCst);
        self.waker.wake();
        let _ = thread.join();
    }
}

/// Where a connection is in its request/answer cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for (the rest of) a request.
    Reading,
    /// Its request is being answered on another thread.
    Busy,
    /// Writing an answer.
    Writing,
}

struct Conn<S> {
    id: u64,
    stream: S,
    state: State,
    input: Vec<u8>,
    /// How much of `input` the service already looked at (see [`Service::frame`]).
    scanned: usize,
    /// The client sent everything it will.
    eof: bool,
    output: Vec<u8>,
    written: usize,
    close_after_write: bool,
    /// Last progress: accepted, a request received whole, an answer taken whole. The
    /// connection with the oldest is the first evicted.
    since: Instant,
    /// When the connection is closed if it does not progress; none while `Busy`.
    deadline: Option<Instant>,
    closed: bool,
}

/// Input bytes read per call; also what the input buffer is shrunk back to when it
/// grew for a long request.
const CHUNK: usize = 16 * 1024;

/// A blocking answer's result, by connection id; `None` when the work died (panicked)
/// without one.
type Done = (u64, Option<Reply>);

/// The serving thread's state.
struct Loop<L: Listen, V> {
    name: &'static str,
    listener: L,
    service: V,
    limits: Limits,
    conns: Vec<Conn<L::Stream>>,
    next_id: u64,
    wake_rx: UnixStream,
    waker: Arc<Waker>,
    done_tx: Sender<Done>,
    done_rx: Receiver<Done>,
    shared: Arc<Shared>,
    /// Set once shutdown began: when the last answers must be out.
    draining_until: Option<Instant>,
    /// After accept(2) failed (out of descriptors, say): the listener stays readable,
    /// so it is left out of poll(2) for a moment rather than spun on.
    accept_paused_until: Option<Instant>,
    last_warning: Option<Instant>,
}

/// What one poll(2) found.
struct Polled {
    /// The wake-up socket has bytes (blocking work finished, or shutdown).
    woken: bool,
    /// The listener has connections waiting.
    accept: bool,
    /// Ready connections, by index in `conns`, with what they are ready for.
    ready: Vec<(usize, PollFlags)>,
}

/// How long the listener is left alone after accept(2) failed.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// At most one warning about evicted or refused connections per this long: a client
/// flooding the socket must not flood the log too.
const WARNING_EVERY: Duration = Duration::from_secs(60);

impl<L: Listen, V: Service> Loop<L, V> {
    fn run(mut self) {
        loop {
            let now = Instant::now();
            if self.draining_until.is_none() && self.shared.stop.load(Ordering::SeqCst) {
                self.begin_drain(now);
            }
            if let Some(until) = self.draining_until {
                if now >= until || self.conns.is_empty() {
                    return;
                }
            }
            self.expire(now);
            let Polled {
                woken,
                accept,
                ready,
            } = match self.wait(now) {
                Ok(p) => p,
                Err(e) => {
                    crate::error!(self.name, "poll: {e}; no longer serving");
                    return;
                }
            };
            let now = Instant::now();
            if woken {
                self.take_wakeups();
            }
            self.take_done(now);
            for (i, flags) in ready {
                self.on_ready(i, flags, now);
            }
            self.conns.retain(|c| !c.closed);
            if accept {
                self.accept(now);
            }
        }
    }

    /// Stops reading requests: idle and half-read connections are closed now, answers
    /// on their way get until `drain`.
    fn begin_drain(&mut self, now: Instant) {
        self.draining_until = Some(now + self.limits.drain);
        for c in &mut self.conns {
            if c.state == State::Reading {
                c.closed = true;
            }
        }
        self.conns.retain(|c| !c.closed);
    }

    fn expire(&mut self, now: Instant) {
        for c in &mut self.conns {
            if c.deadline.is_some_and(|d| d <= now) {
                c.closed = true;
                bump(&self.shared.counters.timed_out);
            }
        }
        self.conns.retain(|c| !c.closed);
    }

    /// Polls the wake-up socket, the listener (unless paused or draining) and every
    /// connection not waiting on a blocking answer, until one is ready or the nearest
    /// deadline.
    fn wait(&mut self, now: Instant) -> io::Result<Polled> {
        if self.accept_paused_until.is_some_and(|t| t <= now) {
            self.accept_paused_until = None;
        }
        let listen = self.draining_until.is_none() && self.accept_paused_until.is_none();
        let mut fds = Vec::with_capacity(self.conns.len() + 2);
        fds.push(PollFd::new(&self.wake_rx, PollFlags::IN));
        if listen {
            fds.push(PollFd::new(&self.listener, PollFlags::IN));
        }
        let first_conn = fds.len();
        // Busy connections are left out: they cannot be read before their answer
        // comes, and a hang-up reported meanwhile would spin the loop.
        let mut polled = Vec::with_capacity(self.conns.len());
        for (i, c) in self.conns.iter().enumerate() {
            let events = match c.state {
                State::Reading => PollFlags::IN,
                State::Writing => PollFlags::OUT,
                State::Busy => continue,
            };
            fds.push(PollFd::new(&c.stream, events));
            polled.push(i);
        }
        let next = self
            .conns
            .iter()
            .filter_map(|c| c.deadline)
            .chain(self.draining_until)
            .chain(self.accept_paused_until)
            .min();
        // Capped so the conversion cannot overflow; waking once an hour is free.
        let timeout = next.map(|t| {
            let d = t
                .saturating_duration_since(now)
                .min(Duration::from_secs(3600));
            Timespec::try_from(d).unwrap_or(Timespec {
                tv_sec: 3600,
                tv_nsec: 0,
            })
        });
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {
                return Ok(Polled {
                    woken: false,
                    accept: false,
                    ready: Vec::new(),
                })
            }
            Err(e) => return Err(e.into()),
        }
        let woken = !fds[0].revents().is_empty();
        let accept = listen && !fds[1].revents().is_empty();
        let ready = polled
            .into_iter()
            .zip(&fds[first_conn..])
            .filter(|(_, fd)| !fd.revents().is_empty())
            .map(|(i, fd)| (i, fd.revents()))
            .collect();
        Ok(Polled {
            woken,
            accept,
            ready,
        })
    }

    fn take_wakeups(&mut self) {
        let mut buf = [0u8; 64];
        while matches!((&self.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
    }

    /// Answers that blocking work finished.
    fn take_done(&mut self, now: Instant) {
        while let Ok((id, reply)) = self.done_rx.try_recv() {
            let Some(i) = self
                .conns
                .iter()
                .position(|c| c.id == id && c.state == State::Busy)
            else {
                continue;
            };
            match reply {
                Some(reply) => {
                    self.start_reply(i, reply, now);
                    self.advance(i, now);
                }
                // The work died without an answer: nothing sensible to say.
                None => self.conns[i].closed = true,
            }
        }
    }

    fn on_ready(&mut self, i: usize, flags: PollFlags, now: Instant) {
        let c = &self.conns[i];
        if c.closed {
            return;
        }
        match c.state {
            State::Reading => self.read(i, now),
            State::Writing => {
                if flags.intersects(PollFlags::ERR | PollFlags::HUP)
                    && !flags.contains(PollFlags::OUT)
                {
                    self.conns[i].closed = true;
                    return;
                }
                self.flush(i, now);
            }
            State::Busy => return,
        }
        self.advance(i, now);
    }

    /// One read: at most a chunk, and never past what one request may need, so a
    /// connection's input stays within `max_request` + 1 bytes and every ready
    /// connection gets its turn.
    fn read(&mut self, i: usize, now: Instant) {
        let max = self.limits.max_request;
        let request_timeout = self.limits.request_timeout;
        let c = &mut self.conns[i];
        let room = (max + 1).saturating_sub(c.input.len()).clamp(1, CHUNK);
        let mut chunk = [0u8; CHUNK];
        match c.stream.read(&mut chunk[..room]) {
            Ok(0) => c.eof = true,
            Ok(n) => {
                if c.input.is_empty() {
                    // A request began: the whole of it must come in time.
                    c.deadline = Some(now + request_timeout);
                }
                c.input.extend_from_slice(&chunk[..n]);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(_) => c.closed = true,
        }
    }

    /// Cuts and answers requests from a reading connection's input for as long as
    /// answers go out at once.
    fn advance(&mut self, i: usize, now: Instant) {
        loop {
            let c = &mut self.conns[i];
            if c.closed || c.state != State::Reading {
                return;
            }
            if self.draining_until.is_some() {
                c.closed = true;
                return;
            }
            let frame = self.service.frame(&c.input, c.scanned, c.eof);
            // Too long: no terminator within the limit, or a last request at EOF over it.
            let too_long = match frame {
                Frame::Request { len, .. } => len > self.limits.max_request,
                Frame::Incomplete => c.input.len() > self.limits.max_request,
            };
            if too_long {
                bump(&self.shared.counters.too_long);
                c.input = Vec::new();
                let reply = Reply {
                    bytes: self.service.too_long(),
                    close: true,
                };
                self.start_reply(i, reply, now);
                return;
            }
            let Frame::Request { len, consumed } = frame else {
                c.scanned = c.input.len();
                if c.eof {
                    c.closed = true;
                }
                return;
            };
            let len = len.min(c.input.len());
            c.since = now;
            let answer = self.service.answer(&c.input[..len]);
            let c = &mut self.conns[i];
            c.input.drain(..consumed.min(c.input.len()));
            c.scanned = 0;
            if c.input.is_empty() && c.input.capacity() > CHUNK {
                c.input = Vec::new();
            }
            match answer {
                Answer::Now(reply) => self.start_reply(i, reply, now),
                Answer::Blocking(work) => {
                    self.run_blocking(i, work);
                    return;
                }
            }
        }
    }

    /// Puts an answer in a connection's output and writes what the socket takes now.
    fn start_reply(&mut self, i: usize, reply: Reply, now: Instant) {
        let c = &mut self.conns[i];
        c.output = reply.bytes;
        c.written = 0;
        c.close_after_write = reply.close;
        c.state = State::Writing;
        c.deadline = Some(now + self.limits.request_timeout);
        self.flush(i, now);
    }

    /// Writes what the socket takes of a connection's answer; when all is out, the
    /// connection reads its next request (or closes).
    fn flush(&mut self, i: usize, now: Instant) {
        let limits = &self.limits;
        let c = &mut self.conns[i];
        while c.written < c.output.len() {
            match c.stream.write(&c.output[c.written..]) {
                Ok(0) => {
                    c.closed = true;
                    return;
                }
                Ok(n) => c.written += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    c.closed = true;
                    return;
                }
            }
        }
        c.output = Vec::new();
        c.written = 0;
        if c.close_after_write || self.draining_until.is_some() {
            c.closed = true;
            return;
        }
        c.state = State::Reading;
        c.since = now;
        let wait = if c.input.is_empty() {
            limits.idle_timeout
        } else {
            limits.request_timeout
        };
        c.deadline = Some(now + wait);
    }

    /// Runs blocking work on its own thread; its answer comes back through `done`.
    fn run_blocking(&mut self, i: usize, work: Box<dyn FnOnce() -> Reply + Send>) {
        let c = &mut self.conns[i];
        c.state = State::Busy;
        c.deadline = None;
        let sender = DoneSender {
            id: c.id,
            tx: Some(self.done_tx.clone()),
            waker: Arc::clone(&self.waker),
        };
        let spawned = thread::Builder::new()
            .name(format!("{}-request", self.name))
            .spawn(move || {
                let reply = work();
                sender.send(Some(reply));
            });
        if let Err(e) = spawned {
            // The closure, and its sender, were dropped: the connection gets closed
            // through `done` like any answer-less one.
            crate::warning!(self.name, "no thread for a request: {e}");
        }
    }

    /// Accepts what is waiting, a few per round: a flood of connections cannot push
    /// the ones just accepted out before they are read.
    fn accept(&mut self, now: Instant) {
        let per_round = (self.limits.max_connections / 4).max(1);
        for _ in 0..per_round {
            let stream = match self.listener.accept_stream() {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    crate::warning!(self.name, "accepting a connection: {e}");
                    self.accept_paused_until = Some(now + ACCEPT_PAUSE);
                    return;
                }
            };
            if rustix::io::ioctl_fionbio(&stream, true).is_err() {
                continue;
            }
            if self.conns.len() >= self.limits.max_connections && !self.make_room(now) {
                let mut stream = stream;
                // One try, non-blocking: a refusal is not worth waiting on.
                let _ = stream.write(&self.service.refusal());
                continue;
            }
            bump(&self.shared.counters.accepted);
            self.next_id += 1;
            self.conns.push(Conn {
                id: self.next_id,
                stream,
                state: State::Reading,
                input: Vec::new(),
                scanned: 0,
                eof: false,
                output: Vec::new(),
                written: 0,
                close_after_write: false,
                since: now,
                deadline: Some(now + self.limits.idle_timeout),
                closed: false,
            });
        }
    }

    /// Closes the connection that has gone longest without progress, unless every one
    /// waits on a blocking answer (then the newcomer is refused). Says whether there is
    /// room now.
    fn make_room(&mut self, now: Instant) -> bool {
        let oldest = self
            .conns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.state != State::Busy)
            .min_by_key(|(_, c)| c.since)
            .map(|(i, _)| i);
        let counters = &self.shared.counters;
        let room = match oldest {
            Some(i) => {
                self.conns.swap_remove(i);
                bump(&counters.evicted);
                true
            }
            None => {
                bump(&counters.refused);
                false
            }
        };
        if self
            .last_warning
            .is_none_or(|t| now.duration_since(t) >= WARNING_EVERY)
        {
            self.last_warning = Some(now);
            crate::warning!(
                self.name,
                "all {} connections in use: closing the idlest to make room, or refusing \
                 when all are busy ({} closed, {} refused so far; a client may be holding \
                 connections open)",
                self.limits.max_connections,
                counters.evicted.load(Ordering::Relaxed),
                counters.refused.load(Ordering::Relaxed)
            );
        }
        room
    }
}

/// Hands a blocking answer back to the serving thread; dropped without sending (the
/// work panicked, or its thread never started) it reports "no answer", so the
/// connection is closed instead of waiting forever.
struct DoneSender {
    id: u64,
    tx: Option<Sender<Done>>,
    waker: Arc<Waker>,
}

impl DoneSender {
    fn send(mut self, reply: Option<Reply>) {
        if let Some(tx) = self.tx.take() {
            // The server may be gone (shut down meanwhile): nobody to answer then.
            let _ = tx.send((self.id, reply));
            self.waker.wake();
        }
    }
}

impl Drop for DoneSender {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send((self.id, None));
            self.waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::sync::Mutex;

    /// Lines; echoes each back; counts the bytes `frame` looks at. `block` is answered
    /// on a thread once the test opens the gate, `die` panics on its thread.
    struct Echo {
        looked_at: Arc<AtomicU64>,
        gate: Arc<Mutex<Receiver<()>>>,
    }

    impl Service for Echo {
        fn frame(&self, input: &[u8], scanned: usize, eof: bool) -> Frame {
            self.looked_at
                .fetch_add((input.len() - scanned) as u64, Ordering::Relaxed);
            match memchr::memchr(b'\n', &input[scanned..]) {
                Some(i) => Frame::Request {
                    len: scanned + i,
                    consumed: scanned + i + 1,
                },
                None if eof && !input.is_empty() => Frame::Request {
                    len: input.len(),
                    consumed: input.len(),
                },
                None => Frame::Incomplete,
            }
        }
        fn answer(&self, request: &[u8]) -> Answer {
            let mut bytes = request.to_vec();
            bytes.push(b'\n');
            if request == b"block" {
                let gate = Arc::clone(&self.gate);
                return Answer::Blocking(Box::new(move || {
                    let _ = gate.lock().unwrap().recv();
                    Reply {
                        bytes,
                        close: false,
                    }
                }));
            }
            if request == b"die" {
                return Answer::Blocking(Box::new(|| panic!("work died")));
            }
            Answer::Now(Reply {
                bytes,
                close: false,
            })
        }
        fn too_long(&self) -> Vec<u8> {
            b"too long\n".to_vec()
        }
        fn refusal(&self) -> Vec<u8> {
            b"busy\n".to_vec()
        }
    }

    struct Echoing {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        server: Server,
        looked_at: Arc<AtomicU64>,
        open_gate: Sender<()>,
    }

    fn limits() -> Limits {
        Limits {
            max_connections: 4,
            max_request: 100,
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            drain: Duration::from_secs(1),
        }
    }

    fn echo(limits: Limits) -> Echoing {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let looked_at = Arc::new(AtomicU64::new(0));
        let (open_gate, gate) = mpsc::channel();
        let service = Echo {
            looked_at: Arc::clone(&looked_at),
            gate: Arc::new(Mutex::new(gate)),
        };
        let server = Server::start("test", listener, service, limits).unwrap();
        Echoing {
            _dir: dir,
            path,
            server,
            looked_at,
            open_gate,
        }
    }

    fn line(r: &mut impl BufRead) -> String {
        let mut s = String::new();
        r.read_line(&mut s).unwrap();
        s
    }

    fn connect(path: &std::path::Path) -> (UnixStream, BufReader<UnixStream>) {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let r = BufReader::new(s.try_clone().unwrap());
        (s, r)
    }

    #[test]
    fn a_request_sent_byte_by_byte_is_looked_at_once() {
        let e = echo(limits());
        let (mut s, mut r) = connect(&e.path);
        let request = b"0123456789012345678901234567890123456789\n";
        for b in request {
            s.write_all(&[*b]).unwrap();
            // Give the server a chance to see each byte on its own (if it sees several
            // at once the count is the same: that is the point).
            thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(line(&mut r), "0123456789012345678901234567890123456789\n");
        assert_eq!(e.looked_at.load(Ordering::Relaxed), request.len() as u64);
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let e = echo(limits());
        let (mut s, mut r) = connect(&e.path);
        s.write_all(b"a\nblock\nb\n").unwrap();
        assert_eq!(line(&mut r), "a\n");
        e.open_gate.send(()).unwrap();
        assert_eq!(line(&mut r), "block\n");
        assert_eq!(line(&mut r), "b\n");
    }

    #[test]
    fn the_last_request_before_eof_is_answered() {
        let e = echo(limits());
        let (mut s, mut r) = connect(&e.path);
        s.write_all(b"x\nlast").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(line(&mut r), "x\n");
        assert_eq!(line(&mut r), "last\n");
        assert_eq!(line(&mut r), "", "closed after");
    }

    #[test]
    fn work_that_dies_closes_its_connection_and_frees_its_slot() {
        let e = echo(Limits {
            max_connections: 1,
            ..limits()
        });
        let (mut s, mut r) = connect(&e.path);
        s.write_all(b"die\n").unwrap();
        assert_eq!(line(&mut r), "");
        let (mut s, mut r) = connect(&e.path);
        s.write_all(b"ok\n").unwrap();
        assert_eq!(line(&mut r), "ok\n");
        assert_eq!(e.server.stats().refused, 0);
    }

    #[test]
    fn an_overlong_request_is_refused_and_closed_without_reading_the_rest() {
        let e = echo(limits());
        let (mut s, mut r) = connect(&e.path);
        s.write_all(&[b'x'; 101]).unwrap();
        assert_eq!(line(&mut r), "too long\n");
        assert_eq!(line(&mut r), "");
        assert_eq!(e.server.stats().too_long, 1);
        // A request of exactly the limit fits.
        let (mut s, mut r) = connect(&e.path);
        let mut exact = vec![b'y'; 100];
        exact.push(b'\n');
        s.write_all(&exact).unwrap();
        assert_eq!(line(&mut r).len(), 101);
    }

    #[test]
    fn past_the_cap_the_connection_longest_without_progress_makes_room() {
        let e = echo(limits());
        let mut open: Vec<_> = (0..4).map(|_| connect(&e.path)).collect();
        // Progress in the order 1, 2, 3, 0: connection 1 is then the one that has
        // waited longest.
        for i in [1, 2, 3, 0] {
            let (s, r) = &mut open[i];
            s.write_all(b"hi\n").unwrap();
            assert_eq!(line(r), "hi\n");
        }
        let (mut s, mut r) = connect(&e.path);
        s.write_all(b"new\n").unwrap();
        assert_eq!(line(&mut r), "new\n");
        assert_eq!(e.server.stats().evicted, 1);
        assert_eq!(line(&mut open[1].1), "", "evicted");
        for i in [2, 3, 0] {
            let (s, r) = &mut open[i];
            s.write_all(b"still\n").unwrap();
            assert_eq!(line(r), "still\n");
        }
    }

    #[test]
    fn when_every_connection_waits_on_blocking_work_a_newcomer_is_refused() {
        let e = echo(Limits {
            max_connections: 1,
            ..limits()
        });
        let (mut s, mut r) = connect(&e.path);
        // "block" is cut and handed to its thread right after "hi" is written, in the
        // same round: once "hi" is read, the connection waits on blocking work.
        s.write_all(b"hi\nblock\n").unwrap();
        assert_eq!(line(&mut r), "hi\n");
        let (_s2, mut r2) = connect(&e.path);
        assert_eq!(line(&mut r2), "busy\n");
        assert_eq!(line(&mut r2), "");
        assert_eq!(e.server.stats().refused, 1);
        e.open_gate.send(()).unwrap();
        assert_eq!(line(&mut r), "block\n");
        // The slot is free again.
        let (mut s3, mut r3) = connect(&e.path);
        s3.write_all(b"x\n").unwrap();
        assert_eq!(line(&mut r3), "x\n");
    }

    #[test]
    fn slow_and_silent_connections_are_timed_out() {
        let e = echo(Limits {
            idle_timeout: Duration::from_millis(50),
            request_timeout: Duration::from_millis(50),
            ..limits()
        });
        let (_silent, mut silent_r) = connect(&e.path);
        let (mut half, mut half_r) = connect(&e.path);
        half.write_all(b"half a req").unwrap();
        assert_eq!(line(&mut silent_r), "");
        assert_eq!(line(&mut half_r), "");
        assert_eq!(e.server.stats().timed_out, 2);
    }

    #[test]
    fn shutdown_lets_an_answer_on_its_way_out_and_closes_the_rest() {
        let e = echo(Limits {
            drain: Duration::from_secs(10),
            ..limits()
        });
        let (mut busy, mut busy_r) = connect(&e.path);
        busy.write_all(b"hi\nblock\n").unwrap();
        // Answered "hi": "block" is read next, in the same round.
        assert_eq!(line(&mut busy_r), "hi\n");
        let (mut idle, mut idle_r) = connect(&e.path);
        idle.write_all(b"hi\n").unwrap();
        assert_eq!(line(&mut idle_r), "hi\n");
        let mut server = e.server;
        let stopping = thread::spawn(move || server.shutdown());
        // The idle connection is closed as the drain begins...
        assert_eq!(line(&mut idle_r), "");
        // ...while the answer on its way still gets out.
        e.open_gate.send(()).unwrap();
        assert_eq!(line(&mut busy_r), "block\n");
        assert_eq!(line(&mut busy_r), "");
        stopping.join().unwrap();
    }
}
