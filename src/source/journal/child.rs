//! One `journalctl` child: started with an argument list (never a shell), its stdout
//! read line by line (each line capped) and its stderr line by line, each pipe on its own
//! thread, everything forwarded as [`Msg`]s into the supervisor's channel, together with
//! the stop request, so the supervisor waits on one channel for all of them.

use std::io::{self, BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;
use std::time::Instant;

use super::{JournalOptions, JournalStart};

/// Longest JSON line read from journalctl (one entry); longer entries are skipped with a
/// warning. `--all` lifts journalctl's own 4 KiB field limit, so this is the only bound.
pub(super) const MAX_JSON_LINE: usize = 4 << 20;

/// What the supervisor thread receives: the child's output (from its reader threads)
/// and the stop request, through one channel so one wait covers all of them.
pub(super) enum Msg {
    /// One JSON line of stdout, without the newline.
    Line(Vec<u8>),
    /// A stdout line longer than [`MAX_JSON_LINE`], skipped (its length).
    TooLong(usize),
    /// One line of stderr.
    Stderr(String),
    /// stdout closed (or failed to read).
    StdoutEnd(Option<io::Error>),
    /// stderr closed.
    StderrEnd,
    /// [`super::JournalHandle::stop`].
    Stop,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Line(_) => "Line",
            Msg::TooLong(_) => "TooLong",
            Msg::Stderr(_) => "Stderr",
            Msg::StdoutEnd(_) => "StdoutEnd",
            Msg::StderrEnd => "StderrEnd",
            Msg::Stop => "Stop",
        })
    }
}

/// One journalctl child and its two pipe readers.
pub(super) struct Running {
    pub(super) child: Child,
    pub(super) readers: Vec<JoinHandle<()>>,
    /// Streams still open (stdout, stderr).
    pub(super) open: u8,
    /// Started with `--after-cursor`.
    pub(super) with_cursor: bool,
    /// Its stderr spoke of the cursor (journalctl: "Failed to seek to cursor: …").
    pub(super) said_cursor: bool,
    pub(super) started: Instant,
    pub(super) entries: u64,
}

impl Running {
    pub(super) fn start(
        opts: &JournalOptions,
        start: &JournalStart,
        control: &SyncSender<Msg>,
    ) -> io::Result<Running> {
        let files = opts.expand_files()?;
        let args = opts.journalctl_args(start, &files);
        let mut child = Command::new("journalctl")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run journalctl: {e}")))?;
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("journalctl started without its pipes"));
        };
        let mut readers = Vec::with_capacity(2);
        let tx = control.clone();
        let spawned = std::thread::Builder::new()
            .name("banhammer-journal-out".into())
            .spawn(move || read_stdout(out, tx));
        let tx = control.clone();
        let spawned = spawned.and_then(|h| {
            readers.push(h);
            std::thread::Builder::new()
                .name("banhammer-journal-err".into())
                .spawn(move || read_stderr(err, tx))
        });
        match spawned {
            Ok(h) => readers.push(h),
            Err(e) => {
                // The pipes close with the child; a started reader then ends by itself.
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        }
        Ok(Running {
            child,
            readers,
            open: 2,
            with_cursor: matches!(start, JournalStart::Cursor(_)),
            said_cursor: false,
            started: Instant::now(),
            entries: 0,
        })
    }
}

fn read_stdout(out: std::process::ChildStdout, tx: SyncSender<Msg>) {
    let mut r = BufReader::with_capacity(64 * 1024, out);
    let mut buf = Vec::new();
    let end = loop {
        match read_line_capped(&mut r, &mut buf, MAX_JSON_LINE) {
            Ok(LineRead::Line) => {
                if tx.send(Msg::Line(std::mem::take(&mut buf))).is_err() {
                    return;
                }
            }
            Ok(LineRead::TooLong(n)) => {
                if tx.send(Msg::TooLong(n)).is_err() {
                    return;
                }
            }
            Ok(LineRead::Eof) => break None,
            Err(e) => break Some(e),
        }
    };
    let _ = tx.send(Msg::StdoutEnd(end));
}

fn read_stderr(err: std::process::ChildStderr, tx: SyncSender<Msg>) {
    let mut r = BufReader::new(err);
    let mut buf = Vec::new();
    while let Ok(LineRead::Line | LineRead::TooLong(_)) = read_line_capped(&mut r, &mut buf, 4096) {
        let text = String::from_utf8_lossy(&buf).trim_end().to_string();
        buf.clear();
        if !text.is_empty() && tx.send(Msg::Stderr(text)).is_err() {
            return;
        }
    }
    let _ = tx.send(Msg::StderrEnd);
}

pub(super) enum LineRead {
    Line,
    TooLong(usize),
    Eof,
}

/// Reads one `\n`-terminated line into `buf` (cleared first, newline dropped); a line
/// longer than `cap` is read to its end and discarded. A last line without newline counts.
pub(super) fn read_line_capped<R: Read>(
    r: &mut BufReader<R>,
    buf: &mut Vec<u8>,
    cap: usize,
) -> io::Result<LineRead> {
    buf.clear();
    let mut total = 0usize;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(if total == 0 {
                LineRead::Eof
            } else if total > cap {
                LineRead::TooLong(total)
            } else {
                LineRead::Line
            });
        }
        let (part, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        total += part.len();
        if total <= cap {
            buf.extend_from_slice(part);
        } else {
            buf.clear();
        }
        let used = done.unwrap_or(chunk.len());
        r.consume(used);
        if done.is_some() {
            return Ok(if total > cap {
                LineRead::TooLong(total)
            } else {
                LineRead::Line
            });
        }
    }
}
