//! The systemd journal as a source (`backend = systemd[…]`). Owns one long-lived
//! `journalctl -o json -f` child per jail; receives the backend value, the filter's
//! `journalmatch`, where to start ([`JournalStart`]) and a stop request; emits
//! [`SourceEvent::Entry`] records (the line fail2ban's `formatJournalEntry` builds, with the
//! entry's own time), [`SourceEvent::Checkpoint`]s holding the journal cursor,
//! [`SourceEvent::Skipped`] for entries that did not arrive whole (never matched), warnings
//! (journalctl's stderr, exits, restarts; rate-limited) and one [`SourceEvent::CaughtUp`].
//!
//! Why a child process and not libsystemd: the workspace forbids `unsafe`, and journalctl
//! is on every systemd machine; it reads, interleaves and follows the journal files
//! (rotation, vacuuming, new files) exactly like fail2ban's python-systemd reader, and its
//! JSON output is a stable interface. The argument list is built from validated parts and
//! passed as argv: nothing goes through a shell. A child that exits is restarted with
//! backoff from the last cursor, so a journald restart or a vacuum costs latency, not
//! entries.
//!
//! Rooms: [`options`] (config → argv), [`entry`] (JSON → line), `child` (one journalctl
//! and its pipes); this file supervises: restarts, checkpoints, backpressure, stop.

mod child;
pub mod entry;
pub mod options;

use std::io;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use child::{Msg, Running, MAX_JSON_LINE};
pub use entry::{parse_entry, EntryError, JournalEntry};
pub use options::{parse_journalmatch, JournalLocation, JournalOptions, JournalStart};

use super::throttle::{held_note, Throttle};
use super::{FileCheckpoint, SkipReason, SkippedRecord, SourceEvent, SourceStats};

/// The `path` of the journal's [`FileCheckpoint`] (its `fingerprint` is the cursor).
pub const CHECKPOINT_PATH: &str = "journal";

/// The `origin` of the journal's [`SourceEvent::Entry`] records.
const ORIGIN: &str = "journal";

/// Entries between two checkpoints while journalctl keeps the pipe full (fail2ban stores
/// its journal position every 100 entries too).
const CHECKPOINT_EVERY: usize = 100;

// ---------------------------------------------------------------------------------------
// Availability.

/// Whether the daemon should read the journal for `backend = auto` jails without log
/// files: `journalctl` is on `PATH` and a journal directory (`/var/log/journal` or
/// `/run/log/journal`) exists and is not empty. (An empty `/var/log/journal` is what a
/// container without journald has; following it would wait forever for nothing.)
pub fn journal_available() -> bool {
    let non_empty_dir = |p: &str| {
        std::fs::read_dir(p)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    };
    on_path("journalctl")
        && (non_empty_dir("/var/log/journal") || non_empty_dir("/run/log/journal"))
}

fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(program))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

// ---------------------------------------------------------------------------------------
// The running source: one supervisor thread owning the child.

/// A running journal source (see [`spawn_journal`]). Dropping it stops it too.
#[derive(Debug)]
pub struct JournalHandle {
    stopping: Arc<AtomicBool>,
    control: SyncSender<Msg>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<SourceStats>,
}

impl JournalHandle {
    /// The source's counters (entries passed on, entries skipped), live.
    pub fn stats(&self) -> Arc<SourceStats> {
        self.stats.clone()
    }

    /// Stops the source: kills and reaps journalctl, sends the last cursor as a
    /// checkpoint (waiting at most about a second for room in the channel), and waits for
    /// the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // A full channel: the supervisor is busy and looks at the flag after each message.
        let _ = self.control.try_send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            // A panic in the thread has already been reported by the panic hook.
            let _ = t.join();
        }
    }
}

impl Drop for JournalHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts following the journal: journalctl is started here (so a missing journalctl or
/// journal file is an error now), then supervised on a thread that sends records into
/// `sink`, blocking while the channel is full, until stopped or until the receiver is
/// dropped.
pub fn spawn_journal(
    opts: JournalOptions,
    start: JournalStart,
    sink: SyncSender<SourceEvent>,
) -> io::Result<JournalHandle> {
    let (control, rx) = mpsc::sync_channel(256);
    // A `Tail` start restarted before any entry came must not skip what came meanwhile.
    let start = match start {
        JournalStart::Tail => JournalStart::Since(unix_now()),
        s => s,
    };
    let first = Running::start(&opts, &start, &control)?;
    let stopping = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(SourceStats::default());
    let sup = Supervisor {
        opts,
        start,
        sink,
        control: control.clone(),
        rx,
        stopping: stopping.clone(),
        cursor: None,
        sent_cursor: None,
        gone: false,
        caught_up: false,
        stats: stats.clone(),
        throttles: Throttles::default(),
    };
    let thread = std::thread::Builder::new()
        .name("banhammer-journal".into())
        .spawn(move || sup.run(first))?;
    Ok(JournalHandle {
        stopping,
        control,
        thread: Some(thread),
        stats,
    })
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The supervisor thread's state.
struct Supervisor {
    opts: JournalOptions,
    /// Where to start when no cursor is known yet.
    start: JournalStart,
    sink: SyncSender<SourceEvent>,
    control: SyncSender<Msg>,
    rx: Receiver<Msg>,
    stopping: Arc<AtomicBool>,
    /// The cursor of the last entry the sink took.
    cursor: Option<String>,
    /// The cursor of the last checkpoint sent.
    sent_cursor: Option<String>,
    /// The receiver was dropped.
    gone: bool,
    caught_up: bool,
    stats: Arc<SourceStats>,
    throttles: Throttles,
}

/// Rate limits of what journalctl (or the journal behind it) can repeat at will.
#[derive(Debug, Default)]
struct Throttles {
    too_long: Throttle,
    incomplete: Throttle,
    unreadable: Throttle,
    stderr: Throttle,
}

/// How the supervisor's inner loop ended.
enum Ended {
    /// Stop requested, or the receiver went away.
    Stop,
    /// journalctl exited.
    Exited,
}

/// Quiet time on journalctl's stdout after which the backlog counts as read.
const IDLE: Duration = Duration::from_millis(250);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A run this long resets the backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

impl Supervisor {
    fn run(mut self, first: Running) {
        if self.opts.matches.is_empty() {
            // fail2ban says the same (as a notice) for a journal jail without journalmatch.
            self.warn(
                "journal: no journalmatch; every journal entry is checked against the \
                     jail's failregex (slow on a busy machine)"
                    .to_string(),
            );
        }
        let mut running = Some(first);
        let mut backoff = BACKOFF_MIN;
        while let Some(mut r) = running.take() {
            let ended = self.follow(&mut r);
            if matches!(ended, Ended::Stop) {
                // An already exited child cannot be killed; `wait` reaps it either way.
                let _ = r.child.kill();
            }
            let status = self.finish(&mut r);
            if matches!(ended, Ended::Stop) || self.stopping.load(Ordering::SeqCst) || self.gone {
                break;
            }
            // journalctl exited by itself.
            let healthy = r.started.elapsed() >= HEALTHY_RUN || r.entries > 0;
            if healthy {
                backoff = BACKOFF_MIN;
            }
            // A cursor journalctl cannot seek to (a damaged store) would fail every
            // restart: drop it. Any other exit keeps it (no entry lost, none read twice).
            if r.with_cursor && r.said_cursor && r.entries == 0 {
                self.drop_cursor();
            }
            let status_text =
                status.map_or_else(|| "unknown status".to_string(), |s| s.to_string());
            self.warn(format!(
                "journal: journalctl exited ({status_text}); restarting in {}s",
                backoff.as_secs()
            ));
            if self.pause(backoff).is_break() {
                break;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            running = loop {
                match Running::start(&self.opts, &self.resume_at(), &self.control) {
                    Ok(r) => break Some(r),
                    Err(e) => {
                        self.warn(format!("journal: {e}; retrying in {}s", backoff.as_secs()));
                        if self.pause(backoff).is_break() {
                            break None;
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
            };
        }
        // Graceful stop: the last position taken by the sink.
        if let Some(c) = self.cursor.clone() {
            let _ = self.send(checkpoint(c), Some(Duration::from_secs(1)));
        }
    }

    /// The cursor was rejected: resume from the time it holds, else from the first start.
    fn drop_cursor(&mut self) {
        let Some(c) = self.cursor.take().or_else(|| match &self.start {
            JournalStart::Cursor(c) => Some(c.clone()),
            _ => None,
        }) else {
            return;
        };
        let fallback = cursor_time(&c).map_or(JournalStart::Tail, JournalStart::Since);
        self.warn(format!(
            "journal: journalctl failed on the stored cursor; reading from {} instead",
            match &fallback {
                JournalStart::Since(t) => format!("its time (@{t:.0})"),
                _ => "the end".to_string(),
            }
        ));
        self.start = fallback;
    }

    fn resume_at(&self) -> JournalStart {
        match &self.cursor {
            Some(c) => JournalStart::Cursor(c.clone()),
            None => self.start.clone(),
        }
    }

    /// Handles the child's output until it exits or a stop comes.
    fn follow(&mut self, r: &mut Running) -> Ended {
        let mut since_checkpoint = 0usize;
        loop {
            if self.stopping.load(Ordering::SeqCst) || self.gone {
                return Ended::Stop;
            }
            let msg = match self.rx.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Disconnected) => return Ended::Stop,
                Err(TryRecvError::Empty) => {
                    // A pause in the output: the end of a batch.
                    self.flush_checkpoint();
                    since_checkpoint = 0;
                    let wait = if self.caught_up {
                        Duration::from_secs(1)
                    } else {
                        IDLE
                    };
                    match self.rx.recv_timeout(wait) {
                        Ok(m) => m,
                        Err(RecvTimeoutError::Timeout) => {
                            if !self.caught_up {
                                self.caught_up = true;
                                let _ = self.send(SourceEvent::CaughtUp, None);
                            }
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => return Ended::Stop,
                    }
                }
            };
            match msg {
                Msg::Line(json) => {
                    if self.entry(&json).is_break() {
                        return Ended::Stop;
                    }
                    r.entries += 1;
                    since_checkpoint += 1;
                    if since_checkpoint >= CHECKPOINT_EVERY {
                        self.flush_checkpoint();
                        since_checkpoint = 0;
                    }
                }
                Msg::TooLong(n) => {
                    let len = n as u64;
                    self.stats.count_skipped(len);
                    if let Some(more) = self.throttles.too_long.admit(Instant::now()) {
                        let limit = MAX_JSON_LINE as u64;
                        if self
                            .skipped(SkipReason::TooLong { limit }, len, more)
                            .is_break()
                        {
                            return Ended::Stop;
                        }
                    }
                }
                Msg::Stderr(text) => {
                    r.said_cursor |= text.to_ascii_lowercase().contains("cursor");
                    self.stderr(&text);
                }
                Msg::StdoutEnd(e) => {
                    r.open = r.open.saturating_sub(1);
                    if let Some(e) = e {
                        self.warn(format!("journal: reading journalctl: {e}"));
                    }
                    if r.open == 0 {
                        return Ended::Exited;
                    }
                }
                Msg::StderrEnd => {
                    r.open = r.open.saturating_sub(1);
                    if r.open == 0 {
                        return Ended::Exited;
                    }
                }
                Msg::Stop => return Ended::Stop,
            }
        }
    }

    /// One JSON line: formatted and sent; the cursor moves once the sink took it. An entry
    /// that did not arrive whole is skipped (never sent), and reading goes on after it.
    fn entry(&mut self, json: &[u8]) -> ControlFlow<()> {
        let e = match parse_entry(json) {
            Ok(e) => e,
            Err(EntryError::Incomplete { field, cursor }) => {
                let len = json.len() as u64;
                self.stats.count_skipped(len);
                if cursor.is_some() {
                    self.cursor = cursor;
                }
                if let Some(more) = self.throttles.incomplete.admit(Instant::now()) {
                    crate::debug!("source", "journal: entry skipped: {field} not whole");
                    self.skipped(SkipReason::Incomplete, len, more)?;
                }
                return ControlFlow::Continue(());
            }
            Err(EntryError::Json(err)) => {
                // A format change should be seen, not flood the log.
                if let Some(more) = self.throttles.unreadable.admit(Instant::now()) {
                    self.warn(format!(
                        "journal: unreadable journalctl output ({err}); skipped{}",
                        held_note(more)
                    ));
                }
                return ControlFlow::Continue(());
            }
        };
        let ev = SourceEvent::Entry {
            origin: Arc::from(ORIGIN),
            bytes: e.line,
            time: e.time.unwrap_or_else(unix_now),
        };
        self.send(ev, None)?;
        self.stats.records.fetch_add(1, Ordering::Relaxed);
        if e.cursor.is_some() {
            self.cursor = e.cursor;
        }
        ControlFlow::Continue(())
    }

    /// Reports skipped entries (the caller rate-limits).
    fn skipped(&mut self, reason: SkipReason, len: u64, more: u64) -> ControlFlow<()> {
        let ev = SourceEvent::Skipped(SkippedRecord {
            origin: Arc::from(ORIGIN),
            reason,
            len,
            more,
        });
        self.send(ev, None)
    }

    /// A line of journalctl's stderr, as a warning (rate-limited: journalctl decides how
    /// much it says, e.g. once per damaged file at every restart).
    fn stderr(&mut self, text: &str) {
        if let Some(more) = self.throttles.stderr.admit(Instant::now()) {
            self.warn(format!("journal: journalctl: {text}{}", held_note(more)));
        }
    }

    fn flush_checkpoint(&mut self) {
        if self.cursor.is_some() && self.cursor != self.sent_cursor {
            if let Some(c) = self.cursor.clone() {
                if self.send(checkpoint(c.clone()), None).is_continue() {
                    self.sent_cursor = Some(c);
                }
            }
        }
    }

    /// Reaps the child after waiting for its readers to see the pipes close, still taking
    /// messages meanwhile so that a reader blocked on a full channel can finish.
    fn finish(&mut self, r: &mut Running) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(2);
        while r.open > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Msg::StdoutEnd(_) | Msg::StderrEnd) => r.open -= 1,
                Ok(Msg::Stderr(text)) if !self.stopping.load(Ordering::SeqCst) => {
                    r.said_cursor |= text.to_ascii_lowercase().contains("cursor");
                    self.stderr(&text);
                }
                // Output after a stop is not read (its cursor is not stored either).
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let status = r.child.wait().ok();
        if r.open == 0 {
            for h in r.readers.drain(..) {
                let _ = h.join();
            }
        }
        status
    }

    /// Waits `d` unless a stop comes first (messages of the dead child are dropped).
    fn pause(&mut self, d: Duration) -> ControlFlow<()> {
        let deadline = Instant::now() + d;
        loop {
            if self.stopping.load(Ordering::SeqCst) || self.gone {
                return ControlFlow::Break(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return ControlFlow::Continue(());
            }
            match self.rx.recv_timeout(left) {
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    return ControlFlow::Break(())
                }
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// A warning for the operator. Not sent only when stopping or when the receiver is
    /// gone, which the loops see from the flags: nothing to do with the result here.
    fn warn(&mut self, text: String) {
        let _ = self.send(SourceEvent::Warning(text), None);
    }

    fn send(&mut self, ev: SourceEvent, patience: Option<Duration>) -> ControlFlow<()> {
        super::deliver(
            &self.sink,
            ev,
            || self.stopping.load(Ordering::SeqCst),
            patience,
            &mut self.gone,
        )
    }
}

fn checkpoint(cursor: String) -> SourceEvent {
    SourceEvent::Checkpoint(FileCheckpoint {
        path: CHECKPOINT_PATH.to_string(),
        fingerprint: cursor,
        offset: 0,
    })
}

/// The time written in a cursor (`t=` field, hex microseconds), to fall back on when
/// journalctl rejects the cursor itself.
fn cursor_time(cursor: &str) -> Option<f64> {
    cursor
        .split(';')
        .find_map(|kv| kv.strip_prefix("t="))
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .map(|us| us as f64 / 1e6)
}

#[cfg(test)]
mod tests;
