//! One datagram → one [`SyslogRecord`]: RFC 3164 (with or without HOST), RFC 5424, or
//! anything else kept whole as the message, as rsyslog keeps it. Pure and total: any
//! bytes give a record, control characters escaped, nothing panics. Linear: every scan
//! goes forward over what is left, never back (the property tests count the bytes each
//! scan looks at, [`examined`], and bound their sum by the datagram's length).

/// Counts `n` bytes looked at, for the property tests' work bound (nothing in the binary).
#[inline]
fn examined(n: usize) {
    #[cfg(test)]
    WORK.with(|w| w.set(w.get() + n as u64));
    let _ = n;
}

#[cfg(test)]
thread_local! {
    /// Bytes looked at by this thread's parses (see [`examined`]).
    pub(super) static WORK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// `slice.iter().position(pred)`, counted.
fn find(slice: &[u8], pred: impl Fn(u8) -> bool) -> Option<usize> {
    let at = slice.iter().position(|&b| pred(b));
    examined(at.map_or(slice.len(), |i| i + 1));
    at
}

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogRecord {
    /// Facility (0-23); 1 (user) when the datagram has no valid `<PRI>`.
    pub facility: u8,
    /// Severity (0-7); 5 (notice) when the datagram has no valid `<PRI>`.
    pub severity: u8,
    /// `HOST TAG[PID]: MSG`, control characters escaped.
    pub line: Vec<u8>,
}

/// Parses one datagram: RFC 3164 (`<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`, also without
/// HOST as glibc's `syslog()` sends it locally, also with an RFC 3339 time) or RFC 5424
/// (`<PRI>1 TS HOST APP PROCID MSGID SD MSG`, `-` for nil, a BOM before MSG). `local_host`
/// stands in for a missing or nil HOST. Anything else is kept whole as the message, as
/// rsyslog keeps it.
pub fn parse_datagram(datagram: &[u8], local_host: &[u8]) -> SyslogRecord {
    // glibc sent a trailing NUL once; `logger` and others may end with a newline.
    let mut end = datagram.len();
    while end > 0 && matches!(datagram[end - 1], b'\0' | b'\n' | b'\r') {
        end -= 1;
    }
    examined(datagram.len() - end);
    // rsyslog escapes on receive, before parsing; so do we.
    let text = escape_controls(&datagram[..end]);
    let (pri, rest) = match split_pri(&text) {
        Some((pri, rest)) => (pri, rest),
        None => (13, &text[..]),
    };
    let mut line = Vec::with_capacity(rest.len() + local_host.len() + 4);
    examined(rest.len());
    if let Some(m) = rest.strip_prefix(b"1 ").and_then(parse_5424) {
        line.extend_from_slice(m.host.unwrap_or(local_host));
        line.push(b' ');
        line.extend_from_slice(m.app.unwrap_or(b"-"));
        if let Some(pid) = m.procid {
            line.push(b'[');
            line.extend_from_slice(pid);
            line.push(b']');
        }
        line.push(b':');
        push_msg(&mut line, m.msg);
    } else {
        let (host, body) = parse_3164_header(rest);
        line.extend_from_slice(host.unwrap_or(local_host));
        line.push(b' ');
        // rsyslog's TAG: up to the first `:` (included) or space; the traditional file
        // format then writes TAG, a space unless MSG starts with one, and MSG.
        let cut = find(body, |b| b == b':' || b == b' ').unwrap_or(body.len());
        let (tag, msg) = match body.get(cut) {
            Some(b':') => body.split_at(cut + 1),
            _ => body.split_at(cut),
        };
        line.extend_from_slice(tag);
        push_msg(&mut line, msg);
    }
    SyslogRecord {
        facility: (pri >> 3) as u8,
        severity: (pri & 7) as u8,
        line,
    }
}

/// rsyslog's `sp-if-no-1st-sp`: one space between TAG and MSG unless MSG brings it.
fn push_msg(line: &mut Vec<u8>, msg: &[u8]) {
    // An empty MSG after `TAG:` still gets the space (`app: `, as the journal's lines
    // have it); after a bare word it would only be a trailing blank.
    if msg.first() != Some(&b' ') && (!msg.is_empty() || line.last() == Some(&b':')) {
        line.push(b' ');
    }
    line.extend_from_slice(msg);
}

/// Control characters (below 0x20, and DEL) as `#` and three octal digits, rsyslog's
/// `$EscapeControlCharactersOnReceive` (on by default, tab included).
pub fn escape_controls(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let is_control = |b: u8| b < 0x20 || b == 0x7f;
    if find(bytes, is_control).is_none() {
        return std::borrow::Cow::Borrowed(bytes);
    }
    examined(bytes.len());
    let mut out = Vec::with_capacity(bytes.len() + 12);
    for &b in bytes {
        if is_control(b) {
            out.extend_from_slice(&[b'#', b'0' + (b >> 6), b'0' + ((b >> 3) & 7), b'0' + (b & 7)]);
        } else {
            out.push(b);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `<PRI>`: 1-3 digits, at most 191 (facility 23, severity 7).
fn split_pri(text: &[u8]) -> Option<(u16, &[u8])> {
    let inner = text.strip_prefix(b"<")?;
    let close = find(&inner[..inner.len().min(4)], |b| b == b'>')?;
    let digits = &inner[..close];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let pri = digits
        .iter()
        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    (pri <= 191).then_some((pri, &inner[close + 1..]))
}

/// Splits an RFC 3164 message after `<PRI>` into (HOST, TAG-and-MSG). The time is
/// skipped (records are timed at reception); HOST is only looked for after a time and
/// only if the word looks like a host name, so glibc's local form (`TAG[PID]: MSG`, TAG
/// holding `[` or `:`) keeps its TAG.
fn parse_3164_header(rest: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let Some(after_time) = skip_bsd_time(rest).or_else(|| skip_rfc3339_time(rest)) else {
        return (None, rest);
    };
    let word_len = find(after_time, |b| b == b' ');
    if let Some(n) = word_len {
        let word = &after_time[..n];
        examined(word.len());
        let hostlike = !word.is_empty()
            && word
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if hostlike {
            return (Some(word), &after_time[n + 1..]);
        }
    }
    (None, after_time)
}

/// `Mmm dd hh:mm:ss ` (day space-padded or not, optional fraction), returning what follows.
fn skip_bsd_time(t: &[u8]) -> Option<&[u8]> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let month = t.get(..3)?.to_ascii_lowercase();
    if !MONTHS.iter().any(|m| m[..] == month[..]) {
        return None;
    }
    let mut p = t.get(3..)?.strip_prefix(b" ")?;
    if let Some(q) = p.strip_prefix(b" ") {
        p = q;
    }
    let day = p.iter().take(3).take_while(|b| b.is_ascii_digit()).count();
    examined(day + 1);
    if !(1..=2).contains(&day) {
        return None;
    }
    p = p.get(day..)?.strip_prefix(b" ")?;
    // hh:mm:ss
    let hms = p.get(..8)?;
    let shape_ok = hms.iter().enumerate().all(|(i, &b)| {
        if i == 2 || i == 5 {
            b == b':'
        } else {
            b.is_ascii_digit()
        }
    });
    if !shape_ok {
        return None;
    }
    p = &p[8..];
    if let Some(frac) = p.strip_prefix(b".") {
        let n = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        examined(n + 1);
        p = &frac[n..];
    }
    if p.is_empty() {
        return Some(p);
    }
    p.strip_prefix(b" ")
}

/// An RFC 3339 time in the 3164 position (`2026-11-25T10:00:00.123+01:00 `), as rsyslog
/// accepts it there.
fn skip_rfc3339_time(t: &[u8]) -> Option<&[u8]> {
    let date = t.get(..11)?;
    let shape_ok = date.iter().enumerate().all(|(i, &b)| match i {
        4 | 7 => b == b'-',
        10 => b == b'T',
        _ => b.is_ascii_digit(),
    });
    if !shape_ok {
        return None;
    }
    let n = find(t, |b| b == b' ').unwrap_or(t.len());
    Some(t.get(n + 1..).unwrap_or(&[]))
}

/// The parts of an RFC 5424 message kept for the line.
struct Rfc5424<'a> {
    host: Option<&'a [u8]>,
    app: Option<&'a [u8]>,
    procid: Option<&'a [u8]>,
    msg: &'a [u8],
}

/// `TS HOST APP PROCID MSGID SD [MSG]` after `<PRI>1 `; `None` if malformed.
fn parse_5424(t: &[u8]) -> Option<Rfc5424<'_>> {
    let mut p = t;
    let mut header = [None; 5];
    for (i, slot) in header.iter_mut().enumerate() {
        let n = find(p, |b| b == b' ')?;
        let token = &p[..n];
        examined(token.len());
        if token.is_empty() || !token.iter().all(|b| (33..=126).contains(b)) {
            return None;
        }
        // The time (i = 0) is not kept; check only that it is a time or nil.
        if i == 0 && token != b"-" && !token[0].is_ascii_digit() {
            return None;
        }
        *slot = (token != b"-").then_some(token);
        p = &p[n + 1..];
    }
    let rest = skip_structured_data(p)?;
    let msg = match rest.strip_prefix(b" ") {
        Some(m) => m.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(m),
        None if rest.is_empty() => rest,
        None => return None,
    };
    Some(Rfc5424 {
        host: header[1],
        app: header[2],
        procid: header[3],
        msg,
    })
}

/// `-` or `[id k="v"…]…` (quoted values may hold `\"`, `\\`, `\]`); returns what follows.
fn skip_structured_data(t: &[u8]) -> Option<&[u8]> {
    if let Some(r) = t.strip_prefix(b"-") {
        return Some(r);
    }
    let mut i = 0;
    if t.first() != Some(&b'[') {
        return None;
    }
    while t.get(i) == Some(&b'[') {
        i += 1;
        let mut quoted = false;
        loop {
            examined(1);
            match *t.get(i)? {
                b'\\' if quoted => i += 2,
                b'"' => {
                    quoted = !quoted;
                    i += 1;
                }
                b']' if !quoted => {
                    i += 1;
                    break;
                }
                _ => i += 1,
            }
        }
    }
    t.get(i..)
}
