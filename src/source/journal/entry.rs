//! One line of `journalctl -o json` → the line fail2ban's `formatJournalEntry` builds
//! from that entry, its time and its cursor. Pure: bytes in, [`JournalEntry`] out — or an
//! [`EntryError`]: not JSON of an entry, or an entry that did not arrive whole.
//!
//! journalctl prints a field it did not print whole as `null` (a field over its size
//! limit, when `--all` is not given — we give it, so this is the guard for the day it is
//! not). Such an entry is never formatted: a MESSAGE cut short could end in any address,
//! and a missing IDENT or HOST shifts the rest of the line under the filter's prefix. Work
//! and memory are linear in the input: the line is built in one pass over the fields
//! (at most the input's bytes, `\n` doubled), and serde_json parses in one pass with a
//! nesting limit.

use serde::{Deserialize, Deserializer};

/// One journal entry, formatted.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    /// `HOST IDENT[PID]: MESSAGE` as fail2ban's `formatJournalEntry` builds it.
    pub line: Vec<u8>,
    /// `_SOURCE_REALTIME_TIMESTAMP`, else `__REALTIME_TIMESTAMP`, in unix seconds.
    pub time: Option<f64>,
    /// `__CURSOR`.
    pub cursor: Option<String>,
}

/// A field in journalctl's JSON: a string, an array of bytes (not printable or not
/// UTF-8), or an array of those (a field set more than once in the entry). `null` (a
/// field too large without `--all`) is told apart from an absent field by [`Slot`].
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Field {
    Text(String),
    Bytes(Vec<u8>),
    Many(Vec<Field>),
}

impl Field {
    /// The value; the first one of a repeated field.
    fn first(&self) -> &[u8] {
        match self {
            Field::Text(s) => s.as_bytes(),
            Field::Bytes(b) => b,
            Field::Many(v) => v.first().map_or(&[], Field::first),
        }
    }

    /// All values joined with a space (fail2ban's `" ".join(...)` for a list MESSAGE).
    fn joined(&self, out: &mut Vec<u8>) {
        match self {
            Field::Many(v) => {
                for (i, f) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    f.joined(out);
                }
            }
            f => out.extend_from_slice(f.first()),
        }
    }
}

/// A field that makes up the line: `None` absent, `Some(None)` printed as `null` (not
/// whole), `Some(Some(value))`.
type Slot = Option<Option<Field>>;

/// Reads a present field, `null` included, as `Some` (absent fields get the default).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Slot, D::Error> {
    Option::<Field>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
struct RawEntry {
    #[serde(rename = "MESSAGE", default, deserialize_with = "present")]
    message: Slot,
    #[serde(rename = "_HOSTNAME", default, deserialize_with = "present")]
    hostname: Slot,
    #[serde(rename = "SYSLOG_IDENTIFIER", default, deserialize_with = "present")]
    identifier: Slot,
    #[serde(rename = "_COMM", default, deserialize_with = "present")]
    comm: Slot,
    #[serde(rename = "SYSLOG_PID", default, deserialize_with = "present")]
    syslog_pid: Slot,
    #[serde(rename = "_PID", default, deserialize_with = "present")]
    pid: Slot,
    #[serde(rename = "_SOURCE_REALTIME_TIMESTAMP")]
    source_realtime: Option<Field>,
    #[serde(rename = "__REALTIME_TIMESTAMP")]
    realtime: Option<Field>,
    #[serde(rename = "_SOURCE_MONOTONIC_TIMESTAMP")]
    source_monotonic: Option<Field>,
    #[serde(rename = "__MONOTONIC_TIMESTAMP")]
    monotonic: Option<Field>,
    #[serde(rename = "__CURSOR")]
    cursor: Option<Field>,
}

/// Why a line of journalctl's output gave no entry.
#[derive(Debug)]
pub enum EntryError {
    /// Not the JSON of an entry.
    Json(serde_json::Error),
    /// A field of the line came as `null`: the entry did not arrive whole. Skipped, never
    /// matched; its cursor (if any) is where reading goes on.
    Incomplete {
        /// The first field that was not whole.
        field: &'static str,
        /// The entry's `__CURSOR`.
        cursor: Option<String>,
    },
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryError::Json(e) => e.fmt(f),
            EntryError::Incomplete { field, .. } => {
                write!(f, "{field} was not printed whole (null)")
            }
        }
    }
}

impl From<serde_json::Error> for EntryError {
    fn from(e: serde_json::Error) -> Self {
        EntryError::Json(e)
    }
}

/// A field's value when present and not empty (Python's truthiness in fail2ban).
fn value(f: &Option<Field>) -> Option<&[u8]> {
    f.as_ref().map(Field::first).filter(|v| !v.is_empty())
}

/// A line field's value (see [`value`]); `null` was refused before this is called.
fn slot_value(f: &Slot) -> Option<&[u8]> {
    f.as_ref().and_then(|v| value(v))
}

/// Microseconds in a field, as seconds.
fn micros(f: &Option<Field>) -> Option<f64> {
    let text = std::str::from_utf8(value(f)?).ok()?;
    let us: u64 = text.trim().parse().ok()?;
    Some(us as f64 / 1e6)
}

/// A PID as fail2ban prints it: `[%i]` when it is a number (python-systemd converts
/// `_PID`/`SYSLOG_PID` with `int()`, fail2ban retries with `int(v, 0)`), else `[%s]`.
/// `None` for a zero PID, which Python's truthiness skips like a missing one.
fn format_pid(raw: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(raw).ok().map(str::trim);
    let parsed = text.and_then(|t| {
        if let Ok(n) = t.parse::<i64>() {
            return Some(n);
        }
        let (neg, digits) = match t.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let lower = digits.to_ascii_lowercase();
        let (radix, body) = if let Some(b) = lower.strip_prefix("0x") {
            (16, b.to_string())
        } else if let Some(b) = lower.strip_prefix("0o") {
            (8, b.to_string())
        } else if let Some(b) = lower.strip_prefix("0b") {
            (2, b.to_string())
        } else {
            return None;
        };
        i64::from_str_radix(&body, radix)
            .ok()
            .map(|n| if neg { -n } else { n })
    });
    match parsed {
        Some(0) => None,
        Some(n) => Some(format!("[{n}]").into_bytes()),
        None => {
            let mut v = Vec::with_capacity(raw.len() + 2);
            v.push(b'[');
            v.extend_from_slice(raw);
            v.push(b']');
            Some(v)
        }
    }
}

/// Formats one line of `journalctl -o json` like fail2ban's `formatJournalEntry`:
/// `[_HOSTNAME] [IDENT[PID]:] MESSAGE`, words joined by one space, IDENT from
/// `SYSLOG_IDENTIFIER` or `_COMM`, PID from `SYSLOG_PID` or `_PID`, `kernel:` followed by
/// `[%12.6f]` monotonic seconds, a repeated MESSAGE joined with spaces, and every newline
/// written as the two characters `\n` (one entry stays one line). A field of the line
/// printed as `null` gives [`EntryError::Incomplete`]: the entry is not whole.
pub fn parse_entry(json: &[u8]) -> Result<JournalEntry, EntryError> {
    let raw: RawEntry = serde_json::from_slice(json)?;
    let cursor = value(&raw.cursor).map(|c| String::from_utf8_lossy(c).into_owned());
    let line_fields = [
        ("MESSAGE", &raw.message),
        ("_HOSTNAME", &raw.hostname),
        ("SYSLOG_IDENTIFIER", &raw.identifier),
        ("_COMM", &raw.comm),
        ("SYSLOG_PID", &raw.syslog_pid),
        ("_PID", &raw.pid),
    ];
    if let Some((field, _)) = line_fields.iter().find(|(_, f)| matches!(f, Some(None))) {
        return Err(EntryError::Incomplete { field, cursor });
    }
    let mut line = Vec::with_capacity(128);
    if let Some(host) = slot_value(&raw.hostname) {
        line.extend_from_slice(host);
    }
    if let Some(ident) = slot_value(&raw.identifier).or(slot_value(&raw.comm)) {
        if !line.is_empty() {
            line.push(b' ');
        }
        line.extend_from_slice(ident);
        let pid = slot_value(&raw.syslog_pid)
            .and_then(format_pid)
            .or_else(|| slot_value(&raw.pid).and_then(format_pid));
        if let Some(p) = &pid {
            line.extend_from_slice(p);
        }
        line.push(b':');
        if ident == b"kernel" && pid.is_none() {
            let mono = micros(&raw.source_monotonic).or(micros(&raw.monotonic));
            if let Some(secs) = mono {
                line.extend_from_slice(format!(" [{secs:12.6}]").as_bytes());
            }
        }
    }
    // The message is always appended, even empty (fail2ban's join leaves a trailing space).
    if !line.is_empty() {
        line.push(b' ');
    }
    if let Some(Some(m)) = &raw.message {
        m.joined(&mut line);
    }
    let line = escape_newlines(line);
    Ok(JournalEntry {
        line,
        time: micros(&raw.source_realtime).or(micros(&raw.realtime)),
        cursor,
    })
}

/// fail2ban's `logline.replace('\n', '\\n')`.
fn escape_newlines(line: Vec<u8>) -> Vec<u8> {
    if !line.contains(&b'\n') {
        return line;
    }
    let mut out = Vec::with_capacity(line.len() + 8);
    for b in line {
        if b == b'\n' {
            out.extend_from_slice(b"\\n");
        } else {
            out.push(b);
        }
    }
    out
}
