//! One line of `journalctl -o json` → the line fail2ban's `formatJournalEntry` builds
//! from that entry, its time and its cursor. Pure: bytes in, [`JournalEntry`] out.

use serde::Deserialize;

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
/// field too large without `--all`) is read as absent by the `Option` around it.
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

#[derive(Debug, Deserialize)]
struct RawEntry {
    #[serde(rename = "MESSAGE")]
    message: Option<Field>,
    #[serde(rename = "_HOSTNAME")]
    hostname: Option<Field>,
    #[serde(rename = "SYSLOG_IDENTIFIER")]
    identifier: Option<Field>,
    #[serde(rename = "_COMM")]
    comm: Option<Field>,
    #[serde(rename = "SYSLOG_PID")]
    syslog_pid: Option<Field>,
    #[serde(rename = "_PID")]
    pid: Option<Field>,
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

/// A field's value when present and not empty (Python's truthiness in fail2ban).
fn value(f: &Option<Field>) -> Option<&[u8]> {
    f.as_ref().map(Field::first).filter(|v| !v.is_empty())
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
/// written as the two characters `\n` (one entry stays one line).
pub fn parse_entry(json: &[u8]) -> Result<JournalEntry, serde_json::Error> {
    let raw: RawEntry = serde_json::from_slice(json)?;
    let mut line = Vec::with_capacity(128);
    if let Some(host) = value(&raw.hostname) {
        line.extend_from_slice(host);
    }
    if let Some(ident) = value(&raw.identifier).or(value(&raw.comm)) {
        if !line.is_empty() {
            line.push(b' ');
        }
        line.extend_from_slice(ident);
        let pid = value(&raw.syslog_pid)
            .and_then(format_pid)
            .or_else(|| value(&raw.pid).and_then(format_pid));
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
    if let Some(m) = &raw.message {
        m.joined(&mut line);
    }
    let line = escape_newlines(line);
    Ok(JournalEntry {
        line,
        time: micros(&raw.source_realtime).or(micros(&raw.realtime)),
        cursor: value(&raw.cursor).map(|c| String::from_utf8_lossy(c).into_owned()),
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
