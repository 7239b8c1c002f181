//! The daemon's own log: fail2ban's levels and line layout, so that tools reading
//! fail2ban's log (our `recidive` filter, fail2ban's, users' scripts) read ours too:
//!
//! ```text
//! 2026-11-25 15:55:15,123 banhammer.actions       [4242]: NOTICE  [sshd] Ban 192.0.2.7
//! ```
//!
//! One process-wide logger (set once by `banhammer run`, stderr until then); every room logs
//! through the [`error!`](crate::error)/[`warning!`](crate::warning)/[`notice!`](crate::notice)/
//! [`info!`](crate::info)/[`debug!`](crate::debug) macros with a component name. In the
//! daemon a writer thread writes the records ([`start_writer`]), so a sink that blocks
//! drops log lines (counted and said) instead of stalling the main loop. Log text
//! that comes from outside (log lines, usernames) is written with control characters
//! escaped, so nothing can forge a line of this log.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, SyncSender};
use std::sync::{Mutex, OnceLock};

/// fail2ban's level names, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The daemon cannot go on.
    Critical = 1,
    /// Something failed (an action, a file).
    Error = 2,
    /// Something suspicious or degraded.
    Warning = 3,
    /// Bans and unbans (what the recidive filter reads).
    Notice = 4,
    /// Start, stop, found failures, rotations.
    Info = 5,
    /// Details for debugging.
    Debug = 6,
    /// Everything, e.g. each command run.
    Trace = 7,
}

impl Level {
    /// The name as fail2ban prints it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Critical => "CRITICAL",
            Level::Error => "ERROR",
            Level::Warning => "WARNING",
            Level::Notice => "NOTICE",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        }
    }

    fn from_u8(v: u8) -> Level {
        match v {
            1 => Level::Critical,
            2 => Level::Error,
            3 => Level::Warning,
            4 => Level::Notice,
            5 => Level::Info,
            6 => Level::Debug,
            _ => Level::Trace,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Level {
    type Err = String;

    /// fail2ban's names (any case), `WARN`, `HEAVYDEBUG` (= trace), or fail2ban's numbers
    /// (Python logging levels: 50 critical … 10 debug, below 10 trace).
    fn from_str(s: &str) -> Result<Level, String> {
        let t = s.trim();
        if let Ok(n) = t.parse::<u32>() {
            return Ok(match n {
                50.. => Level::Critical,
                40..=49 => Level::Error,
                30..=39 => Level::Warning,
                25..=29 => Level::Notice,
                20..=24 => Level::Info,
                10..=19 => Level::Debug,
                _ => Level::Trace,
            });
        }
        match t.to_ascii_uppercase().as_str() {
            "CRITICAL" | "FATAL" => Ok(Level::Critical),
            "ERROR" => Ok(Level::Error),
            "WARNING" | "WARN" => Ok(Level::Warning),
            "NOTICE" | "MSG" => Ok(Level::Notice),
            "INFO" => Ok(Level::Info),
            "DEBUG" => Ok(Level::Debug),
            "TRACE" | "HEAVYDEBUG" => Ok(Level::Trace),
            _ => Err(format!(
                "unknown log level {t:?} (expected CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG or TRACE)"
            )),
        }
    }
}

/// Where the log goes (`logtarget`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Standard error (the default; journald picks it up under systemd).
    Stderr,
    /// Standard output.
    Stdout,
    /// A file, appended to; re-opened by [`reopen`] (after logrotate).
    File(PathBuf),
}

impl Target {
    /// fail2ban's `logtarget` words: `STDERR`, `STDOUT`, `SYSTEMD-JOURNAL` (stderr: under
    /// systemd it lands in the journal), `SYSLOG` (not supported: stderr with a warning
    /// from the caller), or a path.
    pub fn parse(value: &str) -> Target {
        let v = value.trim();
        match v.to_ascii_uppercase().as_str() {
            "STDOUT" => Target::Stdout,
            "STDERR" | "SYSTEMD-JOURNAL" | "SYSLOG" | "" => Target::Stderr,
            _ => Target::File(PathBuf::from(v)),
        }
    }
}

enum Sink {
    Stderr,
    Stdout,
    File(PathBuf, File),
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static SINK: Mutex<Option<Sink>> = Mutex::new(None);
/// The daemon's writer thread, once started: records go to it and never wait for the sink.
static WRITER: OnceLock<Writer> = OnceLock::new();

/// Records waiting for the writer thread at most; past it they are dropped and counted.
/// Records below NOTICE give way first: past half of it, only NOTICE and above (bans,
/// unbans — what `recidive` reads) are still queued.
const WRITER_QUEUE: usize = 65_536;

enum Msg {
    Line(String),
    Flush(SyncSender<()>),
}

struct Writer {
    /// Unbounded as a channel (a bounded one allocates all its slots up front: megabytes
    /// of idle memory); `queued` bounds it.
    tx: Sender<Msg>,
    /// Records queued and not yet written.
    queued: AtomicUsize,
    /// Dropped since last said in the log.
    dropped: AtomicU64,
    /// Dropped in all.
    dropped_total: AtomicU64,
}

/// From now on, records are written by a thread of their own: a sink that blocks (a
/// journald that does not read its stream, a full or slow disk) then costs dropped log
/// lines — counted, and said in the log once it catches up — never a stalled caller. The
/// daemon starts it; one-shot commands write directly.
pub fn start_writer() -> io::Result<()> {
    if WRITER.get().is_some() {
        return Ok(());
    }
    let (tx, rx) = std::sync::mpsc::channel::<Msg>();
    let _ = WRITER.set(Writer {
        tx,
        queued: AtomicUsize::new(0),
        dropped: AtomicU64::new(0),
        dropped_total: AtomicU64::new(0),
    });
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            for msg in rx {
                match msg {
                    Msg::Line(line) => {
                        write_to_sink(&line);
                        if let Some(w) = WRITER.get() {
                            w.queued.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                    Msg::Flush(done) => {
                        let _ = done.send(());
                    }
                }
                let dropped = WRITER
                    .get()
                    .map_or(0, |w| w.dropped.swap(0, Ordering::Relaxed));
                if dropped > 0 {
                    write_to_sink(&format_line(
                        Level::Warning,
                        "server",
                        &format!("{dropped} log line(s) dropped: the log could not keep up"),
                    ));
                }
            }
        })?;
    Ok(())
}

/// Waits (at most 5 s) until the writer thread has written every record sent so far.
pub fn flush() {
    let Some(w) = WRITER.get() else {
        return;
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    if w.tx.send(Msg::Flush(tx)).is_ok() {
        let _ = rx.recv_timeout(std::time::Duration::from_secs(5));
    }
}

/// Log lines dropped so far because the writer was behind.
pub fn dropped() -> u64 {
    WRITER
        .get()
        .map_or(0, |w| w.dropped_total.load(Ordering::Relaxed))
}

/// The level below which nothing is written.
pub fn level() -> Level {
    Level::from_u8(LEVEL.load(Ordering::Relaxed))
}

/// Sets the level.
pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether `level` would be written (to skip building expensive messages).
pub fn enabled(level: Level) -> bool {
    level <= self::level()
}

/// Sends the log to `target` from now on. A file is created with mode 0640 if missing.
pub fn set_target(target: &Target) -> io::Result<()> {
    let sink = match target {
        Target::Stderr => Sink::Stderr,
        Target::Stdout => Sink::Stdout,
        Target::File(p) => Sink::File(p.clone(), open_log(p)?),
    };
    if let Ok(mut g) = SINK.lock() {
        *g = Some(sink);
    }
    Ok(())
}

/// Re-opens a file target (after logrotate moved it away; `flushlogs`).
pub fn reopen() -> io::Result<()> {
    if let Ok(mut g) = SINK.lock() {
        if let Some(Sink::File(p, _)) = g.as_ref() {
            let p = p.clone();
            let f = open_log(&p)?;
            *g = Some(Sink::File(p, f));
        }
    }
    Ok(())
}

fn open_log(p: &std::path::Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(p)
}

/// Writes one record (use the macros).
pub fn write(level: Level, component: &str, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let line = format_line(level, component, &args.to_string());
    match WRITER.get() {
        Some(w) => {
            let minor = level > Level::Notice;
            let limit = if minor {
                WRITER_QUEUE / 2
            } else {
                WRITER_QUEUE
            };
            let sent = w.queued.load(Ordering::Relaxed) < limit && {
                w.queued.fetch_add(1, Ordering::Relaxed);
                let ok = w.tx.send(Msg::Line(line)).is_ok();
                if !ok {
                    w.queued.fetch_sub(1, Ordering::Relaxed);
                }
                ok
            };
            if !sent {
                w.dropped.fetch_add(1, Ordering::Relaxed);
                w.dropped_total.fetch_add(1, Ordering::Relaxed);
            }
        }
        None => write_to_sink(&line),
    }
}

fn format_line(level: Level, component: &str, text: &str) -> String {
    let now = jiff::ZonedDateTime::now();
    let stamp = now.strftime("%Y-%m-%d %H:%M:%S");
    let millis = now.subsec_nanosecond() / 1_000_000;
    let message = escape_controls(text);
    format!(
        "{stamp},{millis:03} {:<24}[{}]: {:<7} {message}\n",
        format!("banhammer.{component}"),
        std::process::id(),
        level.name(),
    )
}

fn write_to_sink(line: &str) {
    let Ok(mut g) = SINK.lock() else {
        return;
    };
    // Nowhere to report a failed log write: dropping it is the only option.
    let _ = match g.as_mut() {
        None | Some(Sink::Stderr) => io::stderr().lock().write_all(line.as_bytes()),
        Some(Sink::Stdout) => io::stdout().lock().write_all(line.as_bytes()),
        Some(Sink::File(_, f)) => f.write_all(line.as_bytes()),
    };
}

/// Replaces control characters (newlines above all) with `\n`-style escapes so a log
/// record stays one line whatever outside text it quotes.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Logs at ERROR: `error!("component", "format", args…)`.
#[macro_export]
macro_rules! error {
    ($component:expr, $($arg:tt)+) => {
        $crate::logging::write($crate::logging::Level::Error, $component, format_args!($($arg)+))
    };
}

/// Logs at WARNING.
#[macro_export]
macro_rules! warning {
    ($component:expr, $($arg:tt)+) => {
        $crate::logging::write($crate::logging::Level::Warning, $component, format_args!($($arg)+))
    };
}

/// Logs at NOTICE.
#[macro_export]
macro_rules! notice {
    ($component:expr, $($arg:tt)+) => {
        $crate::logging::write($crate::logging::Level::Notice, $component, format_args!($($arg)+))
    };
}

/// Logs at INFO.
#[macro_export]
macro_rules! info {
    ($component:expr, $($arg:tt)+) => {
        $crate::logging::write($crate::logging::Level::Info, $component, format_args!($($arg)+))
    };
}

/// Logs at DEBUG.
#[macro_export]
macro_rules! debug {
    ($component:expr, $($arg:tt)+) => {
        $crate::logging::write($crate::logging::Level::Debug, $component, format_args!($($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_like_fail2ban() {
        assert_eq!("notice".parse::<Level>(), Ok(Level::Notice));
        assert_eq!("HEAVYDEBUG".parse::<Level>(), Ok(Level::Trace));
        assert_eq!("40".parse::<Level>(), Ok(Level::Error));
        assert_eq!("20".parse::<Level>(), Ok(Level::Info));
        assert!("loud".parse::<Level>().is_err());
    }

    #[test]
    fn outside_text_cannot_forge_a_record() {
        let s = escape_controls("admin\n2026-01-01 NOTICE [sshd] Ban 1.2.3.4");
        assert!(!s.contains('\n'));
        assert!(s.contains("\\n2026"));
        assert_eq!(escape_controls("plain"), "plain");
    }

    #[test]
    fn targets() {
        assert_eq!(Target::parse("stderr"), Target::Stderr);
        assert_eq!(Target::parse("SYSTEMD-JOURNAL"), Target::Stderr);
        assert_eq!(
            Target::parse("/var/log/banhammer.log"),
            Target::File("/var/log/banhammer.log".into())
        );
    }
}
