//! Tailing one log path. Owns a [`Tailer`]: the open file behind a configured path, its read
//! position, the partial last line, and files the path no longer names but that may still be
//! written (rotated away). Receives "look now" calls ([`Tailer::poll`], with the time passed
//! in); emits complete lines in batches through a callback, [`Notice`]s (missing file, a
//! path that is not a regular file, rotation, truncation, lines skipped for length, I/O
//! errors) and the current [`FileCheckpoint`]. Reading a file into [`LineBatch`]es, cut into
//! lines in place, is [`batch`]'s job; keeping the partial line between reads [`lines`]';
//! opening a path (never blocking, regular files only) [`super::open`]'s.
//!
//! No threads and no waiting here: whoever owns a tailer decides when to poll (`watch.rs`
//! says when something changed), so every step can be tested one call at a time.
//!
//! What a poll does, in order (the order is what keeps lines neither lost nor repeated):
//! 1. read files that were rotated away (older content first), dropping one once it has
//!    been idle for [`TailOptions::rotate_grace`];
//! 2. check the open file for truncation (size below our position, or a first line that is
//!    no longer the fingerprinted one: copytruncate) and restart it at 0;
//! 3. read it to its end (complete lines only; a partial last line waits; a line longer than
//!    [`TailOptions::max_line`] is skipped whole, never passed on cut); the lines go out in
//!    batches of one file each, the last one as soon as the file has no more to give;
//! 4. `stat` the path: another inode there means rename+create (or delete+create). Read the
//!    old descriptor to its end once more (a writer that rotates itself wrote its last lines
//!    before creating the new file), keep it as rotated-away, and read the new file from 0.

mod batch;
mod lines;

use std::fs::File;
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::fingerprint::{Fingerprint, Verdict};
use super::open::{kind_of, open_regular, OpenError};
use batch::Batcher;
pub use batch::LineBatch;
use lines::LineBuf;

/// Where reading starts when the path exists at startup and no checkpoint applies
/// (fail2ban's `logpath = PATH [head|tail]`, compat §1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// From the beginning (fail2ban's default).
    #[default]
    Head,
    /// From the end: only lines written from now on.
    Tail,
}

/// Knobs of a [`Tailer`].
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// Longest line passed on, in bytes (without its `\n`). A longer line is skipped whole
    /// (counted in [`TailStats`], reported as [`Notice::Skipped`]), never passed on cut:
    /// where a cut falls is the writer's choice. Memory stays bounded whatever a file holds.
    pub max_line: usize,
    /// Bytes read per file per poll before giving the other files a turn.
    pub read_budget: usize,
    /// Most bytes of lines in one [`LineBatch`] (a single longer line goes alone). With the
    /// channel's capacity, what bounds the memory of lines read and not yet matched.
    pub batch_bytes: usize,
    /// How long a rotated-away file is still read after it last grew (a daemon writes to its
    /// old descriptor until it reopens its log).
    pub rotate_grace: Duration,
}

impl Default for TailOptions {
    fn default() -> Self {
        TailOptions {
            max_line: 64 * 1024,
            read_budget: 4 * 1024 * 1024,
            batch_bytes: 64 * 1024,
            rotate_grace: Duration::from_secs(5),
        }
    }
}

/// A read position that lets a restart continue where this run stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheckpoint {
    /// The path as configured (after glob expansion).
    pub path: String,
    /// [`Fingerprint`] of the file, in its text form.
    pub fingerprint: String,
    /// Offset of the first byte not yet passed on (always the start of a line).
    pub offset: u64,
}

/// Something worth telling an operator (or a test) about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The path does not exist (said once until it appears).
    Missing,
    /// The path could not be opened for another reason (said once until it opens).
    Unreadable(String),
    /// The path names something that is not a regular file (a FIFO, a device, a
    /// directory…): not opened, not read; looked at again later, like a missing file.
    /// Said once until that changes.
    NotRegular(&'static str),
    /// The path exists now and is read from its beginning.
    Appeared,
    /// Startup resumed at a checkpoint.
    Resumed {
        /// Where reading resumed.
        offset: u64,
    },
    /// The path names another file now (rename+create or delete+create).
    Rotated,
    /// The file was truncated or rewritten in place (copytruncate); read again from 0.
    Truncated,
    /// The path was removed; the open file is still read.
    Removed,
    /// A line longer than `max_line` was skipped whole.
    Skipped {
        /// Its length in bytes, without the `\n`.
        len: u64,
    },
    /// A file let go of (rotated away, no longer written) ended in a line without its
    /// `\n`: skipped, since nothing says it is whole.
    Unfinished {
        /// Its length in bytes.
        len: u64,
    },
    /// Reading failed (the next poll tries again).
    Error(String),
}

/// Counters over the tailer's life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailStats {
    /// Lines passed on.
    pub lines: u64,
    /// Lines skipped whole: longer than `max_line`, or a released file's unfinished last
    /// line.
    pub skipped_lines: u64,
    /// Bytes of the skipped lines.
    pub skipped_bytes: u64,
    /// Rename/delete+create rotations seen.
    pub rotations: u64,
    /// Truncations seen.
    pub truncations: u64,
}

/// Result of one [`Tailer::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollOutcome {
    /// The read budget ran out: there is more to read right away.
    pub more: bool,
    /// The callback said stop; the batch not taken will be read again next time.
    pub stopped: bool,
}

/// One open file and where we are in it.
#[derive(Debug)]
struct OpenFile {
    file: File,
    fp: Fingerprint,
    /// First byte not yet passed on (start of a line).
    offset: u64,
    /// Next byte to read: `offset` plus the partial line's length.
    read_pos: u64,
    /// The current, incomplete line.
    lines: LineBuf,
    /// Size at the last look, to verify the fingerprint only when something changed.
    last_size: u64,
    /// When a rotated-away file was last seen growing.
    last_growth: Instant,
    /// The path was seen missing (said once).
    path_gone: bool,
    /// The path was seen naming something that is not a regular file (said once).
    path_refused: bool,
}

impl OpenFile {
    fn new(file: File, fp: Fingerprint, offset: u64, now: Instant) -> OpenFile {
        OpenFile {
            file,
            fp,
            offset,
            read_pos: offset,
            lines: LineBuf::default(),
            last_size: 0,
            last_growth: now,
            path_gone: false,
            path_refused: false,
        }
    }

    fn restart_at(&mut self, offset: u64) {
        self.offset = offset;
        self.read_pos = offset;
        self.lines.reset();
    }
}

/// How reading a file ended.
enum ReadEnd {
    Eof,
    Budget,
    Stopped,
}

/// The reader of one configured path. See the module documentation for what a poll does.
#[derive(Debug)]
pub struct Tailer {
    path: PathBuf,
    key: String,
    opts: TailOptions,
    current: Option<OpenFile>,
    retired: Vec<OpenFile>,
    /// The last open failure said (said again only when it changes).
    said_open: Option<Notice>,
    notices: Vec<Notice>,
    stats: TailStats,
    /// Files let go of, with the position reached (see [`Tailer::take_released`]).
    released: Vec<(Fingerprint, u64)>,
}

impl Tailer {
    /// A tailer for `path`, opened now if the file exists: at the checkpoint when it
    /// belongs to this file (same inode and first line, offset within the file), else at
    /// `start`. A path that does not exist yet is read from its beginning once it appears.
    pub fn new(
        path: impl Into<PathBuf>,
        start: StartAt,
        checkpoint: Option<&FileCheckpoint>,
        opts: TailOptions,
        now: Instant,
    ) -> Tailer {
        let path = path.into();
        let mut t = Tailer {
            key: path.to_string_lossy().into_owned(),
            path,
            opts,
            current: None,
            retired: Vec::new(),
            said_open: None,
            notices: Vec::new(),
            stats: TailStats::default(),
            released: Vec::new(),
        };
        match open_regular(&t.path) {
            Ok(file) => match t.start_offset(&file, start, checkpoint) {
                Ok((fp, offset, mid_line)) => {
                    let mut of = OpenFile::new(file, fp, offset, now);
                    if mid_line {
                        of.lines = LineBuf::mid_line();
                    }
                    t.current = Some(of);
                }
                Err(e) => t.notices.push(Notice::Error(e.to_string())),
            },
            Err(e) => t.note_open_error(&e),
        }
        t
    }

    /// A tailer that takes over a file another tailer was reading (a glob matched the
    /// rotated-away name of a file we already read): it continues at the same position.
    fn adopt(path: PathBuf, of: OpenFile, opts: TailOptions) -> Tailer {
        Tailer {
            key: path.to_string_lossy().into_owned(),
            path,
            opts,
            current: Some(of),
            retired: Vec::new(),
            said_open: None,
            notices: Vec::new(),
            stats: TailStats::default(),
            released: Vec::new(),
        }
    }

    /// The configured path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The position to store: the open file's fingerprint and the first byte not yet passed
    /// on. `None` while the path has never been opened.
    pub fn checkpoint(&self) -> Option<FileCheckpoint> {
        self.current.as_ref().map(|of| FileCheckpoint {
            path: self.key.clone(),
            fingerprint: of.fp.to_string(),
            offset: of.offset,
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> &TailStats {
        &self.stats
    }

    /// Notices gathered since the last call.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Rotated-away files this tailer stopped reading since the last call, with the position
    /// reached: if a glob later matches one under its new name, reading continues there
    /// instead of starting over.
    pub fn take_released(&mut self) -> Vec<(Fingerprint, u64)> {
        std::mem::take(&mut self.released)
    }

    /// `(dev, ino)` of the open file and of rotated-away files still read.
    pub fn inodes(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.current
            .iter()
            .chain(self.retired.iter())
            .map(|of| (of.fp.dev, of.fp.ino))
    }

    /// `(dev, ino)` of the open file.
    pub fn current_inode(&self) -> Option<(u64, u64)> {
        self.current.as_ref().map(|of| (of.fp.dev, of.fp.ino))
    }

    /// Hands over a rotated-away file with this identity (see `adopt`).
    fn take_retired(&mut self, dev: u64, ino: u64) -> Option<OpenFile> {
        let i = self
            .retired
            .iter()
            .position(|of| of.fp.dev == dev && of.fp.ino == ino)?;
        Some(self.retired.remove(i))
    }

    /// Reads what is new and passes the complete lines to `emit`, in batches (each of one
    /// file, in order). `emit` returning `Break` means "not taken": that batch's lines are
    /// read again by the next poll, and the checkpoint stays before them.
    pub fn poll(
        &mut self,
        now: Instant,
        emit: &mut dyn FnMut(LineBatch) -> ControlFlow<()>,
    ) -> PollOutcome {
        let mut budget = self.opts.read_budget;
        let mut out = PollOutcome {
            more: false,
            stopped: false,
        };

        // 1. Rotated-away files: older content first.
        let mut i = 0;
        while i < self.retired.len() {
            let size_before = self.retired[i].read_pos;
            let end = {
                let of = &mut self.retired[i];
                read_lines(
                    of,
                    &self.opts,
                    &mut budget,
                    emit,
                    &mut self.stats,
                    &mut self.notices,
                )
            };
            match end {
                Ok(ReadEnd::Stopped) => {
                    out.stopped = true;
                    return out;
                }
                Ok(ReadEnd::Budget) => {
                    out.more = true;
                    return out;
                }
                Ok(ReadEnd::Eof) => {}
                Err(e) => self.notices.push(Notice::Error(e.to_string())),
            }
            let of = &mut self.retired[i];
            if of.read_pos != size_before {
                of.last_growth = now;
            }
            if now.saturating_duration_since(of.last_growth) >= self.opts.rotate_grace {
                let mut of = self.retired.remove(i);
                release(&mut of, &mut self.stats, &mut self.notices);
                self.released.push((of.fp, of.offset));
                continue;
            }
            i += 1;
        }

        // The path, opened now if it had not been.
        if self.current.is_none() {
            match open_fingerprinted(&self.path) {
                Ok((fp, file)) => {
                    self.said_open = None;
                    self.notices.push(Notice::Appeared);
                    self.current = Some(OpenFile::new(file, fp, 0, now));
                }
                Err(e) => {
                    self.note_open_error(&e);
                    return out;
                }
            }
        }

        loop {
            let Some(of) = self.current.as_mut() else {
                return out;
            };
            // 2. Truncated or rewritten in place?
            match of.file.metadata() {
                Ok(meta) => {
                    let size = meta.len();
                    if size < of.read_pos {
                        self.stats.truncations += 1;
                        self.notices.push(Notice::Truncated);
                        of.restart_at(0);
                        if let Ok(fp) = Fingerprint::of_file(&of.file) {
                            of.fp = fp;
                        }
                    } else if size != of.last_size {
                        match of.fp.verify(&of.file) {
                            Ok(Verdict::Same(fp)) => of.fp = fp,
                            Ok(Verdict::Changed(fp)) => {
                                self.stats.truncations += 1;
                                self.notices.push(Notice::Truncated);
                                of.restart_at(0);
                                of.fp = fp;
                            }
                            Err(e) => self.notices.push(Notice::Error(e.to_string())),
                        }
                    }
                    of.last_size = size;
                }
                Err(e) => self.notices.push(Notice::Error(e.to_string())),
            }

            // 3. Read to the end.
            if let Some(done) = self.read_to_end(&mut budget, emit) {
                return done;
            }

            // 4. Does the path still name this file?
            let Some(of) = self.current.as_mut() else {
                return out;
            };
            match std::fs::metadata(&self.path) {
                Ok(m) if (m.dev(), m.ino()) == (of.fp.dev, of.fp.ino) => {
                    of.path_gone = false;
                    of.path_refused = false;
                    return out;
                }
                // Something that is not a regular file took the path: not opened (a FIFO
                // would block, a device never end); the open file is still read.
                Ok(m) if !m.is_file() => {
                    if !of.path_refused {
                        of.path_refused = true;
                        self.notices
                            .push(Notice::NotRegular(kind_of(m.file_type())));
                    }
                    return out;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !of.path_gone {
                        of.path_gone = true;
                        self.notices.push(Notice::Removed);
                    }
                    return out;
                }
                Err(e) => {
                    self.notices.push(Notice::Error(e.to_string()));
                    return out;
                }
            }
            // Replaced. The new file must be open before the old one is given up, and the
            // old one read to its end once more: a writer that rotates itself wrote its last
            // lines before creating the new file, and those lines come first.
            let new = match open_fingerprinted(&self.path) {
                Ok(x) => x,
                Err(OpenError::Io(e)) if e.kind() == io::ErrorKind::NotFound => return out,
                Err(OpenError::NotRegular(kind)) => {
                    if !of.path_refused {
                        of.path_refused = true;
                        self.notices.push(Notice::NotRegular(kind));
                    }
                    return out;
                }
                Err(OpenError::Io(e)) => {
                    self.notices.push(Notice::Error(e.to_string()));
                    return out;
                }
            };
            if let Some(done) = self.read_to_end(&mut budget, emit) {
                return done;
            }
            let (fp, file) = new;
            let old = self.current.replace(OpenFile::new(file, fp, 0, now));
            self.stats.rotations += 1;
            self.notices.push(Notice::Rotated);
            if let Some(mut old) = old {
                old.last_growth = now;
                if self.opts.rotate_grace.is_zero() {
                    release(&mut old, &mut self.stats, &mut self.notices);
                    self.released.push((old.fp, old.offset));
                } else {
                    self.retired.push(old);
                }
            }
            // Loop: read the new file.
        }
    }

    /// Read the current file to its end; `Some(outcome)` when the poll must return now
    /// (the callback said stop, or the read budget ran out).
    fn read_to_end(
        &mut self,
        budget: &mut usize,
        emit: &mut dyn FnMut(LineBatch) -> ControlFlow<()>,
    ) -> Option<PollOutcome> {
        match self.read_current(budget, emit) {
            ReadEnd::Stopped => Some(PollOutcome {
                more: false,
                stopped: true,
            }),
            ReadEnd::Budget => Some(PollOutcome {
                more: true,
                stopped: false,
            }),
            ReadEnd::Eof => None,
        }
    }

    fn read_current(
        &mut self,
        budget: &mut usize,
        emit: &mut dyn FnMut(LineBatch) -> ControlFlow<()>,
    ) -> ReadEnd {
        let Some(of) = self.current.as_mut() else {
            return ReadEnd::Eof;
        };
        match read_lines(
            of,
            &self.opts,
            budget,
            emit,
            &mut self.stats,
            &mut self.notices,
        ) {
            Ok(end) => end,
            Err(e) => {
                self.notices.push(Notice::Error(e.to_string()));
                ReadEnd::Eof
            }
        }
    }

    /// Says why the path did not open, once until the reason changes (a missing file that
    /// turns into a FIFO is news; the same reason every poll is not).
    fn note_open_error(&mut self, e: &OpenError) {
        let notice = match e {
            OpenError::Io(e) if e.kind() == io::ErrorKind::NotFound => Notice::Missing,
            OpenError::Io(e) => Notice::Unreadable(e.to_string()),
            OpenError::NotRegular(kind) => Notice::NotRegular(kind),
        };
        if self.said_open.as_ref() == Some(&notice) {
            return;
        }
        self.said_open = Some(notice.clone());
        self.notices.push(notice);
    }

    /// Fingerprint and start offset of a file opened at startup; the flag says the offset
    /// may be in the middle of a line (a `tail` start with no `\n` in sight).
    fn start_offset(
        &mut self,
        file: &File,
        start: StartAt,
        checkpoint: Option<&FileCheckpoint>,
    ) -> io::Result<(Fingerprint, u64, bool)> {
        let fp = Fingerprint::of_file(file)?;
        let size = file.metadata()?.len();
        if let Some(cp) = checkpoint {
            if let Some(stored) = Fingerprint::parse(&cp.fingerprint) {
                if cp.offset <= size && stored.matches_file(file)? {
                    self.notices.push(Notice::Resumed { offset: cp.offset });
                    return Ok((fp, cp.offset, false));
                }
            }
        }
        match start {
            StartAt::Head => Ok((fp, 0, false)),
            StartAt::Tail => {
                let (offset, mid_line) = tail_offset(file, size)?;
                Ok((fp, offset, mid_line))
            }
        }
    }
}

/// Where `tail` starts: after the last `\n` within the last 64 KiB, so a line being written
/// right now is read whole when it completes. No `\n` there: 0 for a small file (it is one
/// line being written), else the end, skipping to the next `\n`.
fn tail_offset(file: &File, size: u64) -> io::Result<(u64, bool)> {
    const LOOK_BACK: u64 = 64 * 1024;
    let from = size.saturating_sub(LOOK_BACK);
    let mut buf = vec![0u8; usize::try_from(size - from).unwrap_or(0)];
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], from + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(match memchr::memrchr(b'\n', &buf[..n]) {
        Some(i) => (from + i as u64 + 1, false),
        None if from == 0 => (0, false),
        None => (size, true),
    })
}

/// Strips the line terminator as fail2ban does (`rstrip('\r\n')`; the `\n` is already off).
pub(super) fn trim_cr(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r'] = line {
        line = rest;
    }
    line
}

/// Reads from `of.read_pos` to the end of the file (or until the budget is spent), passing
/// complete lines on in batches, skipping (and reporting) lines longer than `max_line`, and
/// keeping the partial last line in `of.lines`. The file is read straight into the batch
/// being filled ([`Batcher`]). `of.offset` moves only past batches taken (and past skipped
/// lines once everything before them was taken): a batch not taken is read again from its
/// first line, and a skipped line after it is counted then, not twice.
fn read_lines(
    of: &mut OpenFile,
    opts: &TailOptions,
    budget: &mut usize,
    emit: &mut dyn FnMut(LineBatch) -> ControlFlow<()>,
    stats: &mut TailStats,
    notices: &mut Vec<Notice>,
) -> io::Result<ReadEnd> {
    let mut out = Batcher::new(opts, &mut of.lines, emit);
    let end = loop {
        if *budget == 0 {
            break Ok(ReadEnd::Budget);
        }
        let ControlFlow::Continue(want) = out.room(*budget, &mut of.offset, stats) else {
            return Ok(not_taken(of));
        };
        let n = match out.read(&of.file, of.read_pos, want) {
            Ok(0) => break Ok(ReadEnd::Eof),
            Ok(n) => n,
            Err(e) => break Err(e),
        };
        *budget = budget.saturating_sub(n);
        if out
            .cut(of.read_pos, &mut of.offset, stats, notices)
            .is_break()
        {
            return Ok(not_taken(of));
        }
        of.read_pos += n as u64;
    };
    // Nothing waits to fill a batch: what was read goes out now, whatever ended the reading
    // (a read error included: those lines were read whole).
    if out.finish(&mut of.offset, stats, &mut of.lines).is_break() {
        return Ok(not_taken(of));
    }
    end
}

/// A batch was not taken: everything from `of.offset` is read again next time.
fn not_taken(of: &mut OpenFile) -> ReadEnd {
    of.restart_at(of.offset);
    ReadEnd::Stopped
}

/// Lets go of a file we stop reading (rotated away, its writer gone): an unfinished last
/// line is not passed on — it never got its `\n`, so it may be cut anywhere (a writer
/// killed mid-line, a write cut short by a full disk) — only reported, like a line too long.
fn release(of: &mut OpenFile, stats: &mut TailStats, notices: &mut Vec<Notice>) {
    if of.lines.holds_partial() {
        let len = of.lines.partial_len();
        stats.skipped_lines += 1;
        stats.skipped_bytes += len;
        notices.push(Notice::Unfinished { len });
    }
    of.offset = of.read_pos;
    of.lines.reset();
}

/// Opens the path (see [`open_regular`]) and fingerprints it.
fn open_fingerprinted(path: &Path) -> Result<(Fingerprint, File), OpenError> {
    let file = open_regular(path)?;
    Ok((Fingerprint::of_file(&file)?, file))
}

/// Moves a rotated-away file from one tailer to a new tailer for `path` (see `adopt`).
pub(crate) fn adopt_from<'a>(
    mut tailers: impl Iterator<Item = &'a mut Tailer>,
    path: &Path,
    dev: u64,
    ino: u64,
    opts: &TailOptions,
) -> Option<Tailer> {
    tailers.find_map(|t| {
        t.take_retired(dev, ino)
            .map(|of| Tailer::adopt(path.to_path_buf(), of, opts.clone()))
    })
}

#[cfg(test)]
mod tests;
