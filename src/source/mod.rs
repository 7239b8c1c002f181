//! Log sources: files. Owns the reading of a jail's `logpath`s: pattern expansion
//! ([`glob`]), one [`Tailer`] per file ([`tail`], identified by [`fingerprint`]) and the
//! waiting between looks ([`watch`]). Receives the configured paths, the stored checkpoints
//! (a lookup by path) and a stop request; emits [`SourceEvent`]s into a bounded channel:
//! batches of lines (raw bytes, [`LineBatch`]), records skipped for not being whole,
//! checkpoints to store, warnings and information for the log; and counts what it passed on
//! and skipped ([`SourceStats`]).
//!
//! [`FileSource`] is the whole logic without a thread (a test drives it poll by poll);
//! [`spawn`] runs one on its own thread with a [`Waiter`] and returns a [`SourceHandle`].
//! A full channel holds the source back (backpressure), which is why a line is only
//! counted as read, and the checkpoint only moves past it, once the channel has taken its
//! batch. Memory stays bounded: the channel's capacity times the batch size
//! ([`TailOptions::batch_bytes`]).
//!
//! Checkpoints follow fail2ban's log positions (compat §8): on start a file whose
//! fingerprint matches its stored checkpoint resumes there, for `head` and `tail` alike;
//! otherwise `head` starts at 0 and `tail` at the end. Files that appear after the start
//! (late files, new glob matches, the new file of a rotation) are read from 0.
//!
//! Every source here follows two rules for hostile input. A record that is not whole (a
//! line longer than the limit, a datagram cut by the receive buffer, a journal field
//! journalctl left out) is never passed on, only counted and reported as
//! [`SourceEvent::Skipped`]: where a cut falls is the writer's choice, so the cut head of a
//! line could end in any address. And a warning something outside can repeat at will is
//! rate-limited ([`throttle`]).

pub(crate) mod backend;
pub mod fingerprint;
pub mod glob;
pub mod journal;
pub mod open;
pub mod syslog;
pub mod tail;
pub mod throttle;
pub mod watch;

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use banhammer_store::Checkpoint;

pub use fingerprint::Fingerprint;
pub use tail::{
    FileCheckpoint, LineBatch, Notice, PollOutcome, StartAt, TailOptions, TailStats, Tailer,
};
pub use throttle::Throttle;
pub use watch::{Backend, Stopper, WaitOptions, Waiter, Wake, WatchTargets, WatchedFile};

/// One `logpath` line: a path or glob pattern and where to start (compat §1.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPathSpec {
    /// Path or Python-glob pattern, not expanded.
    pub pattern: String,
    /// `head` (default) or `tail`.
    pub start: StartAt,
}

impl LogPathSpec {
    /// Parses `PATH [head|tail]` as fail2ban does (split on the last space; a last word that
    /// is not `head`/`tail` is part of the path).
    pub fn parse(line: &str) -> LogPathSpec {
        let line = line.trim();
        if let Some((path, word)) = line.rsplit_once(' ') {
            let start = match word.to_ascii_lowercase().as_str() {
                "head" => Some(StartAt::Head),
                "tail" => Some(StartAt::Tail),
                _ => None,
            };
            if let Some(start) = start {
                return LogPathSpec {
                    pattern: path.trim_end().to_string(),
                    start,
                };
            }
        }
        LogPathSpec {
            pattern: line.to_string(),
            start: StartAt::Head,
        }
    }
}

impl From<&banhammer_config::LogPath> for LogPathSpec {
    fn from(lp: &banhammer_config::LogPath) -> Self {
        LogPathSpec {
            pattern: lp.pattern.clone(),
            start: if lp.tail {
                StartAt::Tail
            } else {
                StartAt::Head
            },
        }
    }
}

impl FileCheckpoint {
    /// The store's record of this position, for reader `source` (a jail name) at
    /// `updated_at` (unix seconds).
    pub fn to_store(&self, source: &str, updated_at: f64) -> Checkpoint {
        Checkpoint {
            source: source.to_string(),
            path: self.path.clone(),
            fingerprint: self.fingerprint.clone(),
            offset: self.offset,
            updated_at,
        }
    }
}

impl From<&Checkpoint> for FileCheckpoint {
    fn from(cp: &Checkpoint) -> Self {
        FileCheckpoint {
            path: cp.path.clone(),
            fingerprint: cp.fingerprint.clone(),
            offset: cp.offset,
        }
    }
}

/// What a file source emits.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceEvent {
    /// Complete lines of one file, in order (see [`LineBatch`]); raw bytes (decode
    /// lossily). Sent as soon as the file has no more to give right now, never held back to
    /// fill up.
    Lines {
        /// The file's path as configured (after glob expansion).
        path: Arc<str>,
        /// The lines.
        batch: LineBatch,
    },
    /// A record that carries its own time (a journal entry, a syslog datagram): the line
    /// as a syslog file would hold it without the date (`HOST IDENT[PID]: MESSAGE`), matched
    /// with `time` instead of a date found in the text.
    Entry {
        /// Where it came from (`journal`, `syslog:/run/banhammer/syslog.sock`, `udp:…`).
        origin: Arc<str>,
        /// The line.
        bytes: Vec<u8>,
        /// Unix time of the record.
        time: f64,
    },
    /// A record that was not passed on because it was not whole (too long for the source's
    /// limit, or cut before it reached us): never matched. Rate-limited per origin and
    /// reason (`more` says how many were held back); the exact counts are in the source's
    /// stats. Its `Display` is the warning an operator should see.
    Skipped(SkippedRecord),
    /// The position to store for a file; sent after each batch of lines that moved it, and
    /// for every file when the source stops.
    Checkpoint(FileCheckpoint),
    /// Something an operator should see (missing file, unreadable file, a path that is not
    /// a regular file, inotify fallback, denied syslog senders).
    Warning(String),
    /// Something worth an info log line (rotation, truncation, resumed position).
    Info(String),
    /// Sent once, when the content present at start has been read: the lines after it are
    /// live (the daemon stops applying "older than findtime at start-up" rules).
    CaughtUp,
}

/// A record skipped whole (see [`SourceEvent::Skipped`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRecord {
    /// Where it came from: the file's path, `journal`, `syslog:PATH`, `udp:ADDR`.
    pub origin: Arc<str>,
    /// Why.
    pub reason: SkipReason,
    /// Its length in bytes, as far as known (the last one, when `more` > 0).
    pub len: u64,
    /// Records skipped for the same reason since the last report and not reported.
    pub more: u64,
}

/// Why a record was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Longer than the source's limit, in bytes (a file line over
    /// [`TailOptions::max_line`], a datagram over the syslog limit, a journalctl line over
    /// its cap).
    TooLong {
        /// The limit.
        limit: u64,
    },
    /// Not whole as it reached us: journalctl printed a field of the entry as `null` (over
    /// its size limit), or a file let go of ended in a line without its `\n`.
    Incomplete,
}

impl fmt::Display for SkippedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            SkipReason::TooLong { limit } => write!(
                f,
                "{}: a record of {} bytes is longer than the {limit}-byte limit; skipped whole, \
                 never matched",
                self.origin, self.len
            )?,
            SkipReason::Incomplete => write!(
                f,
                "{}: a record of {} bytes that did not arrive whole (cut or left out by its \
                 writer); skipped, never matched",
                self.origin, self.len
            )?,
        }
        f.write_str(&throttle::held_note(self.more))
    }
}

/// Counters of a running file or journal source, shared with whoever started it. Each is a
/// count on its own (relaxed atomics), read for metrics.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Records passed on (lines, journal entries) and taken by the channel (a batch counts
    /// its lines).
    pub records: AtomicU64,
    /// Records skipped whole: longer than the limit or not whole (never matched).
    pub skipped: AtomicU64,
    /// Bytes of the skipped records (as far as known).
    pub skipped_bytes: AtomicU64,
}

impl SourceStats {
    /// Counts one skipped record of `len` bytes.
    pub fn count_skipped(&self, len: u64) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        self.skipped_bytes.fetch_add(len, Ordering::Relaxed);
    }
}

/// Knobs of a file source.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// How to wait for changes.
    pub backend: Backend,
    /// Per-file reading knobs.
    pub tail: TailOptions,
    /// Timing of the waits.
    pub wait: WaitOptions,
    /// How often glob patterns are expanded again (also on any directory change seen by
    /// inotify).
    pub rescan_interval: Duration,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            backend: Backend::Auto,
            tail: TailOptions::default(),
            wait: WaitOptions::default(),
            rescan_interval: Duration::from_secs(2),
        }
    }
}

/// A checkpoint lookup by path.
pub type CheckpointLookup = Box<dyn Fn(&str) -> Option<Checkpoint> + Send>;

struct Slot {
    tailer: Tailer,
    key: Arc<str>,
    /// The last checkpoint sent.
    sent: Option<FileCheckpoint>,
    /// Rate limits of the notices a file can repeat at will.
    throttles: NoticeThrottles,
}

/// One [`Throttle`] per kind of notice that can repeat (a flood of long lines, a read error
/// every poll, a file truncated over and over, an open failure that flaps).
#[derive(Debug, Default)]
struct NoticeThrottles {
    skipped: Throttle,
    unfinished: Throttle,
    error: Throttle,
    truncated: Throttle,
    open: Throttle,
}

/// Files let go of and remembered, so a glob match of a rotated name continues instead of
/// re-reading (bounded).
const RELEASED_MAX: usize = 256;

/// The files of one jail's `logpath`s, without a thread. See the module documentation.
pub struct FileSource {
    specs: Vec<LogPathSpec>,
    opts: SourceOptions,
    lookup: CheckpointLookup,
    slots: Vec<Slot>,
    pending: Vec<SourceEvent>,
    said_dangling: HashSet<PathBuf>,
    said_empty: HashSet<usize>,
    released: VecDeque<(Fingerprint, u64)>,
    last_rescan: Instant,
    rescan_now: bool,
    stats: Arc<SourceStats>,
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource")
            .field("specs", &self.specs)
            .field(
                "files",
                &self.slots.iter().map(|s| &s.key).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl FileSource {
    /// Expands the patterns and opens the files that exist (at their checkpoint, or at
    /// `head`/`tail`). Paths without glob magic are followed even while missing.
    pub fn new(
        specs: Vec<LogPathSpec>,
        opts: SourceOptions,
        lookup: CheckpointLookup,
        now: Instant,
    ) -> FileSource {
        let mut src = FileSource {
            specs,
            opts,
            lookup,
            slots: Vec::new(),
            pending: Vec::new(),
            said_dangling: HashSet::new(),
            said_empty: HashSet::new(),
            released: VecDeque::new(),
            last_rescan: now,
            rescan_now: false,
            stats: Arc::new(SourceStats::default()),
        };
        src.expand(now, true);
        src
    }

    /// Asks for the glob patterns to be expanded on the next poll (a directory changed).
    pub fn request_rescan(&mut self) {
        self.rescan_now = true;
    }

    /// The configured files found so far.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.slots
            .iter()
            .map(|s| s.tailer.path().to_path_buf())
            .collect()
    }

    /// Counters over all files, shared (they keep counting as the source runs).
    pub fn shared_stats(&self) -> Arc<SourceStats> {
        self.stats.clone()
    }

    /// Counters per file.
    pub fn stats(&self) -> Vec<(PathBuf, TailStats)> {
        self.slots
            .iter()
            .map(|s| (s.tailer.path().to_path_buf(), s.tailer.stats().clone()))
            .collect()
    }

    /// The current checkpoint of every open file.
    pub fn checkpoints(&self) -> Vec<FileCheckpoint> {
        self.slots
            .iter()
            .filter_map(|s| s.tailer.checkpoint())
            .collect()
    }

    /// What a [`Waiter`] should watch now.
    pub fn watch_targets(&self) -> WatchTargets {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut files = Vec::new();
        for s in &self.slots {
            let p = s.tailer.path();
            if let Some(d) = p.parent() {
                dirs.push(d.to_path_buf());
            }
            files.push(WatchedFile {
                path: p.to_path_buf(),
                current: s.tailer.current_inode(),
                inodes: s.tailer.inodes().collect(),
            });
        }
        for spec in &self.specs {
            if glob::has_magic(&spec.pattern) {
                dirs.push(fixed_dir(&spec.pattern));
            }
        }
        dirs.sort();
        dirs.dedup();
        WatchTargets { dirs, files }
    }

    /// Looks at every file once: new lines (in batches), then the moved checkpoint, go to
    /// `sink`, which returns `Break` to stop (channel full and stopping, or gone). Glob
    /// patterns are expanded again first when due.
    pub fn poll(
        &mut self,
        now: Instant,
        sink: &mut dyn FnMut(SourceEvent) -> ControlFlow<()>,
    ) -> PollOutcome {
        let mut out = PollOutcome {
            more: false,
            stopped: false,
        };
        if self.rescan_now
            || now.saturating_duration_since(self.last_rescan) >= self.opts.rescan_interval
        {
            self.rescan_now = false;
            self.last_rescan = now;
            self.expand(now, false);
        }
        for ev in std::mem::take(&mut self.pending) {
            if sink(ev).is_break() {
                out.stopped = true;
                return out;
            }
        }
        let max_line = self.opts.tail.max_line as u64;
        for slot in &mut self.slots {
            let key = slot.key.clone();
            let stats = &self.stats;
            let r = slot.tailer.poll(now, &mut |batch| {
                let n = batch.len() as u64;
                sink(SourceEvent::Lines {
                    path: key.clone(),
                    batch,
                })?;
                stats.records.fetch_add(n, Ordering::Relaxed);
                ControlFlow::Continue(())
            });
            for n in slot.tailer.take_notices() {
                if let Notice::Skipped { len } | Notice::Unfinished { len } = n {
                    self.stats.count_skipped(len);
                }
                let ev = match describe(&key, n, &mut slot.throttles, max_line, now) {
                    Some(ev) => ev,
                    None => continue,
                };
                if sink(ev).is_break() {
                    out.stopped = true;
                    return out;
                }
            }
            for r in slot.tailer.take_released() {
                if self.released.len() == RELEASED_MAX {
                    self.released.pop_front();
                }
                self.released.push_back(r);
            }
            let cp = slot.tailer.checkpoint();
            if cp.is_some() && cp != slot.sent {
                if let Some(c) = cp.clone() {
                    if sink(SourceEvent::Checkpoint(c)).is_break() {
                        out.stopped = true;
                        return out;
                    }
                }
                slot.sent = cp;
            }
            if r.stopped {
                out.stopped = true;
                return out;
            }
            out.more |= r.more;
        }
        out
    }

    /// Expands the patterns; `initial` applies `head`/`tail` to files found, later
    /// expansions read new files from 0 (unless they are a file already read under another
    /// name, or a checkpoint matches).
    fn expand(&mut self, now: Instant, initial: bool) {
        let specs = self.specs.clone();
        for (i, spec) in specs.iter().enumerate() {
            if !glob::has_magic(&spec.pattern) {
                if initial {
                    self.add(PathBuf::from(&spec.pattern), spec.start, now);
                }
                continue;
            }
            let e = glob::expand(&spec.pattern);
            for d in e.dangling {
                if self.said_dangling.insert(d.clone()) {
                    self.pending.push(SourceEvent::Warning(format!(
                        "{}: dangling symlink, skipped",
                        d.display()
                    )));
                }
            }
            if e.files.is_empty() && initial && self.said_empty.insert(i) {
                self.pending.push(SourceEvent::Warning(format!(
                    "no file found for {}; watching for it",
                    spec.pattern
                )));
            }
            for f in e.files {
                if self.slots.iter().any(|s| s.tailer.path() == f) {
                    continue;
                }
                let start = if initial { spec.start } else { StartAt::Head };
                self.add(f, start, now);
            }
        }
    }

    fn add(&mut self, path: PathBuf, start: StartAt, now: Instant) {
        if self.slots.iter().any(|s| s.tailer.path() == path) {
            return;
        }
        let key: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
        let ident = std::fs::metadata(&path).ok().map(|m| (m.dev(), m.ino()));
        if let Some((dev, ino)) = ident {
            // Another name for a file already open (a symlink, a second pattern): skip.
            if self
                .slots
                .iter()
                .any(|s| s.tailer.current_inode() == Some((dev, ino)))
            {
                return;
            }
            // A rotated-away file under its new name: the tailer that read it hands it over.
            let tailers = self.slots.iter_mut().map(|s| &mut s.tailer);
            if let Some(t) = tail::adopt_from(tailers, &path, dev, ino, &self.opts.tail) {
                self.slots.push(Slot {
                    tailer: t,
                    key,
                    sent: None,
                    throttles: NoticeThrottles::default(),
                });
                return;
            }
        }
        // Known from a rotation, or from the store.
        let remembered = ident.and_then(|(_, ino)| {
            let f = open::open_regular(&path).ok()?;
            self.released
                .iter()
                .rev()
                .find(|(fp, _)| fp.ino == ino && fp.matches_file(&f).unwrap_or(false))
                .map(|(fp, off)| FileCheckpoint {
                    path: key.to_string(),
                    fingerprint: fp.to_string(),
                    offset: *off,
                })
        });
        let stored = remembered.or_else(|| (self.lookup)(&key).map(|c| FileCheckpoint::from(&c)));
        let mut tailer = Tailer::new(path, start, stored.as_ref(), self.opts.tail.clone(), now);
        // Notices from opening (missing, resumed) go out with the next poll.
        let mut throttles = NoticeThrottles::default();
        let max_line = self.opts.tail.max_line as u64;
        for n in tailer.take_notices() {
            if let Some(ev) = describe(&key, n, &mut throttles, max_line, now) {
                self.pending.push(ev);
            }
        }
        self.slots.push(Slot {
            tailer,
            key,
            sent: None,
            throttles,
        });
    }
}

/// The directory part of a pattern before its first magic component.
fn fixed_dir(pattern: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in Path::new(pattern).components() {
        if let Component::Normal(s) = c {
            if glob::has_magic(&s.to_string_lossy()) {
                break;
            }
        }
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// The event for a tailer's notice, or `None` when a repeated one is held back.
fn describe(
    path: &Arc<str>,
    n: Notice,
    throttles: &mut NoticeThrottles,
    max_line: u64,
    now: Instant,
) -> Option<SourceEvent> {
    let held = |t: &mut Throttle| t.admit(now).map(throttle::held_note);
    Some(match n {
        Notice::Missing => {
            let more = held(&mut throttles.open)?;
            SourceEvent::Warning(format!("{path}: not found; waiting for it to appear{more}"))
        }
        Notice::Unreadable(e) => {
            let more = held(&mut throttles.open)?;
            SourceEvent::Warning(format!("{path}: cannot open ({e}); retrying{more}"))
        }
        Notice::NotRegular(kind) => {
            let more = held(&mut throttles.open)?;
            SourceEvent::Warning(format!(
                "{path}: {kind}, not a regular file; not read (looking again later){more}"
            ))
        }
        Notice::Appeared => {
            throttles.open.reset();
            SourceEvent::Info(format!("{path}: appeared; reading it"))
        }
        Notice::Resumed { offset } => {
            SourceEvent::Info(format!("{path}: resuming at byte {offset} (checkpoint)"))
        }
        Notice::Rotated => SourceEvent::Info(format!("{path}: rotated; reading the new file")),
        Notice::Truncated => {
            let more = held(&mut throttles.truncated)?;
            SourceEvent::Info(format!(
                "{path}: truncated; reading again from the start{more}"
            ))
        }
        Notice::Removed => {
            SourceEvent::Info(format!("{path}: removed; still reading the open file"))
        }
        Notice::Skipped { len } => {
            let more = throttles.skipped.admit(now)?;
            SourceEvent::Skipped(SkippedRecord {
                origin: path.clone(),
                reason: SkipReason::TooLong { limit: max_line },
                len,
                more,
            })
        }
        Notice::Unfinished { len } => {
            let more = throttles.unfinished.admit(now)?;
            SourceEvent::Skipped(SkippedRecord {
                origin: path.clone(),
                reason: SkipReason::Incomplete,
                len,
                more,
            })
        }
        Notice::Error(e) => {
            let more = held(&mut throttles.error)?;
            SourceEvent::Warning(format!("{path}: read error: {e}{more}"))
        }
    })
}

/// A running file source (see [`spawn`]). Dropping it stops it too.
#[derive(Debug)]
pub struct SourceHandle {
    stopper: Stopper,
    thread: Option<JoinHandle<()>>,
    stats: Arc<SourceStats>,
}

impl SourceHandle {
    /// Stops the source and waits for its thread: it sends a last checkpoint for every
    /// file (waiting at most about a second for room in the channel), then drops its sender.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// A handle to request the stop from elsewhere (without waiting).
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// The source's counters (lines passed on, lines skipped for length), live.
    pub fn stats(&self) -> Arc<SourceStats> {
        self.stats.clone()
    }

    fn shutdown(&mut self) {
        self.stopper.stop();
        if let Some(t) = self.thread.take() {
            // A panic in the source thread has already been reported by the panic hook.
            let _ = t.join();
        }
    }
}

impl Drop for SourceHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs a file source for `paths` on its own thread with default options; see
/// [`spawn_with_options`].
pub fn spawn(
    paths: Vec<LogPathSpec>,
    backend: Backend,
    checkpoints: impl Fn(&str) -> Option<Checkpoint> + Send + 'static,
    sink: SyncSender<SourceEvent>,
) -> io::Result<SourceHandle> {
    let opts = SourceOptions {
        backend,
        ..SourceOptions::default()
    };
    spawn_with_options(paths, opts, checkpoints, sink)
}

/// Runs a file source on its own thread: it reads, sends [`SourceEvent`]s into `sink`
/// (blocking while the channel is full), waits for changes, until stopped through the
/// handle or until the receiver is dropped. `checkpoints` is asked once per file when the
/// file is first found.
pub fn spawn_with_options(
    paths: Vec<LogPathSpec>,
    opts: SourceOptions,
    checkpoints: impl Fn(&str) -> Option<Checkpoint> + Send + 'static,
    sink: SyncSender<SourceEvent>,
) -> io::Result<SourceHandle> {
    let (waiter, warnings) = Waiter::new(opts.backend, opts.wait);
    let stopper = waiter.stopper();
    let st = stopper.clone();
    let stats = Arc::new(SourceStats::default());
    let shared = stats.clone();
    let thread = std::thread::Builder::new()
        .name("banhammer-source".into())
        .spawn(move || {
            run(
                paths,
                opts,
                Box::new(checkpoints),
                sink,
                (waiter, warnings),
                shared,
                st,
            )
        })?;
    Ok(SourceHandle {
        stopper,
        thread: Some(thread),
        stats,
    })
}

/// The source thread's loop.
fn run(
    paths: Vec<LogPathSpec>,
    opts: SourceOptions,
    lookup: CheckpointLookup,
    sink: SyncSender<SourceEvent>,
    (mut waiter, warnings): (Waiter, Vec<String>),
    stats: Arc<SourceStats>,
    stopper: Stopper,
) {
    let mut gone = false;
    let mut send = |ev: SourceEvent, patience: Option<Duration>| -> ControlFlow<()> {
        deliver(&sink, ev, || stopper.is_stopping(), patience, &mut gone)
    };
    for w in warnings {
        if send(SourceEvent::Warning(w), None).is_break() {
            return;
        }
    }
    let mut src = FileSource::new(paths, opts, lookup, Instant::now());
    src.stats = stats;
    let mut caught_up = false;
    loop {
        let out = src.poll(Instant::now(), &mut |ev| send(ev, None));
        if out.stopped || stopper.is_stopping() {
            break;
        }
        if !out.more && !caught_up {
            caught_up = true;
            if send(SourceEvent::CaughtUp, None).is_break() {
                break;
            }
        }
        let (added, warnings) = waiter.sync(&src.watch_targets());
        for w in warnings {
            if send(SourceEvent::Warning(w), None).is_break() {
                break;
            }
        }
        if out.more || added {
            continue;
        }
        match waiter.wait() {
            Wake::Stop => break,
            Wake::Changed { dirs: true } => src.request_rescan(),
            Wake::Changed { dirs: false } | Wake::Timeout => {}
        }
    }
    // Graceful stop: the last positions. Lines not taken are not in them.
    for cp in src.checkpoints() {
        if send(SourceEvent::Checkpoint(cp), Some(Duration::from_secs(1))).is_break() {
            break;
        }
    }
}

/// Sends one event: waits while the channel is full unless a stop was requested
/// (`stopping()`; then only for `patience`, if any). `Break` when not sent. Shared by the
/// file, journal and syslog sources.
pub(crate) fn deliver(
    sink: &SyncSender<SourceEvent>,
    mut ev: SourceEvent,
    stopping: impl Fn() -> bool,
    patience: Option<Duration>,
    gone: &mut bool,
) -> ControlFlow<()> {
    if *gone {
        return ControlFlow::Break(());
    }
    let started = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        match sink.try_send(ev) {
            Ok(()) => return ControlFlow::Continue(()),
            Err(TrySendError::Disconnected(_)) => {
                *gone = true;
                return ControlFlow::Break(());
            }
            Err(TrySendError::Full(back)) => {
                ev = back;
                let give_up = match patience {
                    Some(p) => started.elapsed() >= p,
                    None => stopping(),
                };
                if give_up {
                    return ControlFlow::Break(());
                }
                // A bounded channel has no "wait for room or for this flag": back off
                // briefly (a consumer that keeps up never gets here).
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        }
    }
}

#[cfg(test)]
mod tests;
