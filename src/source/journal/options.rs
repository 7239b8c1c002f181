//! `backend = systemd[…]` and the filter's `journalmatch`, validated before anything
//! starts, and the journalctl argument list they make. Receives the two config values and
//! a start position; emits [`JournalOptions`] (or an error naming the bad part) and argv.
//! No I/O, except expanding `journalfiles` patterns when journalctl is about to start.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

/// The fields fail2ban's `formatJournalEntry` reads; journalctl always adds `__CURSOR`,
/// `__REALTIME_TIMESTAMP`, `__MONOTONIC_TIMESTAMP` and `_BOOT_ID`. Asking only for these
/// keeps the JSON small (a journal entry has ~30 fields).
const OUTPUT_FIELDS: &str = "--output-fields=MESSAGE,_HOSTNAME,SYSLOG_IDENTIFIER,_COMM,\
SYSLOG_PID,_PID,_SOURCE_REALTIME_TIMESTAMP,_SOURCE_MONOTONIC_TIMESTAMP";

/// Which journal files journalctl reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalLocation {
    /// The machine's journal (`/var/log/journal`, `/run/log/journal`).
    System,
    /// `journalpath=DIR`: the journal files in DIR (`journalctl --directory`).
    Directory(PathBuf),
    /// `journalfiles=F1 F2`: these files or glob patterns (`--file`), expanded when
    /// journalctl starts, as fail2ban expands them when the jail starts.
    Files(Vec<String>),
}

/// A validated `backend = systemd[…]` with its `journalmatch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalOptions {
    /// Which journal files.
    pub location: JournalLocation,
    /// `sd_journal_open` flags: `journalflags`, or fail2ban's default SYSTEM_ONLY (4) for
    /// the machine's journal; `None` with a path or files (fail2ban sets none then).
    pub flags: Option<u32>,
    /// `namespace=NS`: a journald namespace.
    pub namespace: Option<String>,
    /// The matches: OR of groups, each group a list of `FIELD=value` terms (journald ANDs
    /// different fields and ORs repeated ones within a group). Empty: every entry.
    pub matches: Vec<Vec<String>>,
}

/// sd_journal_open flag bits (sd-journal.h), as fail2ban's `journalflags` passes them.
const SD_JOURNAL_LOCAL_ONLY: u32 = 1;
const SD_JOURNAL_RUNTIME_ONLY: u32 = 2;
const SD_JOURNAL_SYSTEM: u32 = 4;
const SD_JOURNAL_CURRENT_USER: u32 = 8;

impl JournalOptions {
    /// Parses `systemd` or `systemd[journalpath=DIR, journalfiles=F1 F2, journalflags=N,
    /// namespace=NS]` (fail2ban's backend arguments) and the filter's `journalmatch`: one
    /// match expression per line (lines are ORed, as fail2ban adds each with a
    /// disjunction), words split like a POSIX shell (fail2ban uses `shlex.split`), `+`
    /// between words for OR, every other word `FIELD=value`.
    pub fn from_backend(backend: &str, journalmatch: &str) -> Result<JournalOptions, String> {
        let parsed = crate::source::backend::BackendArgs::parse(backend, "systemd", "journal")?;
        let err = |what: String| parsed.err(what);
        let args = &parsed.args;
        let mut path = None;
        let mut files = None;
        let mut flags = None;
        let mut namespace = None;
        let mut unknown = Vec::new();
        for (key, value) in args {
            match key.as_str() {
                "journalpath" => path = Some(value.clone()),
                "journalfiles" => files = Some(value.clone()),
                "journalflags" => flags = Some(parse_flags(value).map_err(&err)?),
                "namespace" => namespace = Some(value.clone()),
                _ => unknown.push(key.as_str()),
            }
        }
        parsed.reject_unknown(
            &unknown,
            "journalpath, journalfiles, journalflags or namespace",
        )?;
        let location = match (path, files) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "journalpath and journalfiles together (expected one of them)".to_string(),
                ))
            }
            (Some(p), None) if p.is_empty() => {
                return Err(err(
                    "journalpath is empty (expected a directory)".to_string()
                ))
            }
            (Some(p), None) => JournalLocation::Directory(PathBuf::from(p)),
            (None, Some(f)) => {
                // fail2ban's `splitwords`: spaces, commas and newlines separate.
                let words: Vec<String> = f
                    .split([' ', ',', '\n'])
                    .filter(|w| !w.is_empty())
                    .map(str::to_string)
                    .collect();
                if words.is_empty() {
                    return Err(err(
                        "journalfiles is empty (expected journal files or patterns)".to_string(),
                    ));
                }
                JournalLocation::Files(words)
            }
            (None, None) => JournalLocation::System,
        };
        if namespace.as_deref().is_some_and(|n| !is_namespace(n)) {
            return Err(err(
                "namespace: expected a journal namespace name (letters, digits, `_-.`)".to_string(),
            ));
        }
        // fail2ban: SYSTEM_ONLY by default, but only for the machine's journal.
        let flags = flags.or((location == JournalLocation::System).then_some(SD_JOURNAL_SYSTEM));
        let matches = parse_journalmatch(journalmatch)?;
        Ok(JournalOptions {
            location,
            flags,
            namespace,
            matches,
        })
    }

    /// journalctl's arguments (without the program name) to follow from `start`, reading
    /// `files` for [`JournalLocation::Files`] (the expanded patterns).
    pub fn journalctl_args(&self, start: &JournalStart, files: &[PathBuf]) -> Vec<OsString> {
        let mut a: Vec<OsString> = ["-o", "json", "--all", "-f", "--no-pager", OUTPUT_FIELDS]
            .iter()
            .map(OsString::from)
            .collect();
        match &self.location {
            JournalLocation::System => {}
            JournalLocation::Directory(d) => {
                a.push("--directory".into());
                a.push(d.into());
            }
            JournalLocation::Files(_) => {
                for f in files {
                    a.push("--file".into());
                    a.push(f.into());
                }
            }
        }
        if let Some(ns) = &self.namespace {
            a.push(format!("--namespace={ns}").into());
        }
        if let Some(flags) = self.flags {
            // journalctl reads the machine's own journals only unless told to merge;
            // sd_journal_open without LOCAL_ONLY (fail2ban's default 4) reads them all.
            if flags & SD_JOURNAL_LOCAL_ONLY == 0 && self.location == JournalLocation::System {
                a.push("--merge".into());
            }
            if flags & SD_JOURNAL_SYSTEM != 0 {
                a.push("--system".into());
            }
            if flags & SD_JOURNAL_CURRENT_USER != 0 {
                a.push("--user".into());
            }
        }
        match start {
            JournalStart::Cursor(c) => a.push(format!("--after-cursor={c}").into()),
            JournalStart::Since(t) => a.push(format!("--since=@{:.6}", t.max(0.0)).into()),
            // Without a position `-f` shows the last 10 entries first.
            JournalStart::Tail => a.push("--lines=0".into()),
        }
        // Validated `FIELD=value` words never start with `-`; `--` makes sure anyway.
        a.push("--".into());
        for (i, group) in self.matches.iter().enumerate() {
            if i > 0 {
                a.push("+".into());
            }
            a.extend(group.iter().map(OsString::from));
        }
        a
    }

    /// The journal files to pass (`journalfiles` patterns expanded), or an error when none
    /// exists. Empty for the other locations.
    pub(super) fn expand_files(&self) -> io::Result<Vec<PathBuf>> {
        let JournalLocation::Files(patterns) = &self.location else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for p in patterns {
            if crate::source::glob::has_magic(p) {
                out.extend(crate::source::glob::expand(p).files);
            } else if Path::new(p).exists() {
                out.push(PathBuf::from(p));
            }
        }
        out.sort();
        out.dedup();
        if out.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("journalfiles: no file matches {}", patterns.join(" ")),
            ));
        }
        Ok(out)
    }
}

/// `journalflags`: a number (Python's `int()`), only bits journalctl can express.
fn parse_flags(value: &str) -> Result<u32, String> {
    let n: u32 = value
        .trim()
        .parse()
        .map_err(|_| format!("journalflags = {value}: expected a number such as 4"))?;
    let known = SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM | SD_JOURNAL_CURRENT_USER;
    if n & SD_JOURNAL_RUNTIME_ONLY != 0 {
        return Err(format!(
            "journalflags = {n}: RUNTIME_ONLY (2) has no journalctl equivalent \
             (expected a sum of 1 LOCAL_ONLY, 4 SYSTEM, 8 CURRENT_USER)"
        ));
    }
    if n & !known != 0 {
        return Err(format!(
            "journalflags = {n}: unsupported bits {} (expected a sum of 1 LOCAL_ONLY, 4 SYSTEM, 8 CURRENT_USER)",
            n & !known
        ));
    }
    Ok(n)
}

fn is_namespace(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Parses `journalmatch` (see [`JournalOptions::from_backend`]) into OR-ed groups.
pub fn parse_journalmatch(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut groups = Vec::new();
    for line in text.lines() {
        let words =
            shell_words(line).map_err(|e| format!("journalmatch {:?}: {e}", line.trim()))?;
        let mut group: Vec<String> = Vec::new();
        for w in words {
            if w == "+" {
                // An empty group is a no-op disjunction for sd-journal: dropped.
                if !group.is_empty() {
                    groups.push(std::mem::take(&mut group));
                }
                continue;
            }
            check_match_word(&w).map_err(|e| format!("journalmatch {:?}: {e}", line.trim()))?;
            group.push(w);
        }
        if !group.is_empty() {
            groups.push(group);
        }
    }
    Ok(groups)
}

/// A match term as sd_journal_add_match takes it: `FIELD=value`, FIELD of upper-case
/// letters, digits and `_`, not starting with a digit, at most 64 bytes.
fn check_match_word(w: &str) -> Result<(), String> {
    let Some((field, value)) = w.split_once('=') else {
        return Err(format!(
            "{w:?} is not FIELD=value (expected e.g. _SYSTEMD_UNIT=sshd.service)"
        ));
    };
    let ok_field = !field.is_empty()
        && field.len() <= 64
        && !field.starts_with(|c: char| c.is_ascii_digit())
        && field
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !ok_field {
        return Err(format!(
            "{field:?} is not a journal field name (expected upper-case letters, digits and _)"
        ));
    }
    if value.contains('\0') {
        return Err(format!("the value of {field} holds a NUL byte"));
    }
    Ok(())
}

/// Splits like Python's `shlex.split` (POSIX mode, no comments): whitespace separates,
/// `'…'` is literal, `"…"` honours `\` before `\ " $ \``, a bare `\` escapes the next char.
pub(super) fn shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("no closing quotation".to_string()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('\\' | '"' | '$' | '`')) => cur.push(e),
                            Some(e) => {
                                cur.push('\\');
                                cur.push(e);
                            }
                            None => return Err("no closing quotation".to_string()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("no closing quotation".to_string()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(e) => cur.push(e),
                    None => return Err("no escaped character".to_string()),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Where the journal source starts reading.
#[derive(Debug, Clone, PartialEq)]
pub enum JournalStart {
    /// Just after this cursor (a stored [`crate::source::FileCheckpoint::fingerprint`]). If journalctl
    /// rejects it, the source falls back to the time written in the cursor.
    Cursor(String),
    /// At this unix time: fail2ban starts at now − findtime (or its stored position if
    /// later).
    Since(f64),
    /// Only entries written from now on.
    Tail,
}
