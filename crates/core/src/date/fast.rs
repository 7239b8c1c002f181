//! Hand-written matchers for the two anchored default templates nearly every log
//! uses: syslog `Mon dd HH:MM:SS` and ISO `YYYY-MM-DD HH:MM:SS` at line begin.
//!
//! Receives a line and emits the same [`Found`] the regex would, or `None` = "not
//! sure": any line that is not in the plain canonical shape (weekday prefix, fraction,
//! trailing year or zone, odd spacing, non-ASCII neighbour…) goes to the regex. The
//! `fast_equals_regex` property test checks both paths agree.

use super::civil::Field;
use super::pattern::YearSet;
use super::Found;

fn digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// Is `b` (the byte after a digit that ends the date) a safe end: ASCII non-word
/// character that cannot continue the template?
fn plain_end(b: &[u8], at: usize, extra_stop: &[u8]) -> bool {
    match b.get(at) {
        None => true,
        Some(&c) => c.is_ascii_punctuation() && c != b'_' && !extra_stop.contains(&c),
    }
}

/// `{^LN-BEG}(?:DAY )?MON Day %k:Minute:Second(?:\.Microseconds)?(?: ExYear)?`
pub(crate) fn syslog(line: &str) -> Option<Found> {
    let b = line.as_bytes();
    if !syslog_day(b.get(..6)?) {
        return None;
    }
    syslog_time(b)?;
    let mut f = Found::new(0, 15);
    f.push(Field::MonAbbr, 0, 3);
    f.push(Field::Day, 4, 6);
    f.push(Field::Hour, 7, 9);
    f.push(Field::Min, 10, 12);
    f.push(Field::Sec, 13, 15);
    Some(f)
}

/// Is `b` (the first 6 bytes of a line) a canonical syslog `Mmm dd` the fast matcher
/// accepts? The sticky path caches these bytes as the key of a day.
pub(crate) fn syslog_day(b: &[u8]) -> bool {
    let &[m0, m1, m2, sp, d0, d1] = b else {
        return false;
    };
    let day_ok = match (d0, d1) {
        (b'1' | b'2', d) => digit(d),
        (b'0' | b' ', b'1'..=b'9') => true,
        (b'3', b'0' | b'1') => true,
        _ => false,
    };
    sp == b' ' && day_ok && super::civil::month_abbr(&[m0, m1, m2]).is_some()
}

/// Can `line` start with a date of the syslog template? Its regex is
/// `^(?:\W{0,2})?((?:%a )?%b …)` under `(?iu)`: the date begins at one of the first
/// three characters, with a letter (a weekday or month name, or a character that
/// folds to one). `false` = the regex cannot match; `true` = "maybe".
#[inline]
pub(crate) fn syslog_may_start(line: &str) -> bool {
    line.chars().take(3).any(char::is_alphabetic)
}

/// Can `line` start with a date of the ISO template? Its regex is
/// `^(?:\W{0,2})?(%ExY…)`: the date begins at one of the first three characters, with
/// a digit of the year. `false` = the regex cannot match; `true` = "maybe".
#[inline]
pub(crate) fn iso_may_start(line: &str) -> bool {
    line.chars().take(3).any(char::is_numeric)
}

/// Per-byte bounds of `HH:MM:SS` (bytes 7..15 of the line) in the canonical shape
/// (`[0-2]\d:[0-5]\d:[0-5]\d`), as little-endian words for [`in_bounds`].
const TIME_LO: u64 = u64::from_le_bytes(*b"00:00:00");
const TIME_HI: u64 = u64::from_le_bytes(*b"29:59:59");
const ZEROS: u64 = u64::from_le_bytes(*b"00000000");

/// Whether every byte of `v` lies within the byte-wise bounds `lo..=hi` (all ASCII).
/// Branch-free SWAR on 8 bytes: with every byte below 0x80, `(v|H) - lo` keeps a
/// byte's high bit iff `byte >= lo`, and `v + (0x7f - hi)` sets it iff `byte > hi`;
/// neither operation can carry or borrow across bytes.
#[inline(always)]
fn in_bounds(v: u64, lo: u64, hi: u64) -> bool {
    const H: u64 = 0x8080_8080_8080_8080;
    const MAX: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let ge_lo = (v | H).wrapping_sub(lo) & H;
    let gt_hi = v.wrapping_add(MAX - hi) & H;
    (v & H) | gt_hi | (ge_lo ^ H) == 0
}

/// Checks the ` HH:MM:SS` part of a canonical syslog line (bytes 6..15) and what may
/// follow it; returns `(hour, seconds of the day)` (hour up to 29: an invalid hour is
/// the caller's to reject, as Python's `datetime` does).
#[inline(always)]
pub(crate) fn syslog_time(b: &[u8]) -> Option<(u32, u32)> {
    let w: [u8; 8] = b.get(7..15)?.try_into().ok()?;
    let v = u64::from_le_bytes(w);
    if b[6] != b' ' || !in_bounds(v, TIME_LO, TIME_HI) {
        return None;
    }
    let end_ok = match b.get(15) {
        Some(b' ') => !b.get(16).is_some_and(|c| digit(*c)),
        Some(b'\t') => true,
        _ => plain_end(b, 15, b"."),
    };
    if !end_ok {
        return None;
    }
    Some(hms(v))
}

/// `(hour, seconds of the day)` of a checked `HH:MM:SS` word.
#[inline(always)]
fn hms(v: u64) -> (u32, u32) {
    // digit values (the colons become 10); byte i of `t` = 10 * d[i] + d[i + 1]
    // (at most 110: no carries)
    let x = v - ZEROS;
    let t = x * 10 + (x >> 8);
    let h = (t & 0xff) as u32;
    let m = ((t >> 24) & 0xff) as u32;
    let s = ((t >> 48) & 0xff) as u32;
    (h, h * 3600 + m * 60 + s)
}

/// `{^LN-BEG}ExYear(?P<_sep>[-/.])Month(?P=_sep)Day(?:T|  ?)24hour:Minute:Second(?:[.,]Microseconds)?(?:\s*Zone offset)?`
pub(crate) fn iso(line: &str, exy: &YearSet) -> Option<Found> {
    let b = line.as_bytes();
    if !iso_day(b.get(..11)?, exy) {
        return None;
    }
    let (hour, _) = iso_time(b)?;
    if hour >= 24 {
        return None;
    }
    let mut f = Found::new(0, 19);
    f.push(Field::Y, 0, 4);
    f.push(Field::Mon, 5, 7);
    f.push(Field::Day, 8, 10);
    f.push(Field::Hour, 11, 13);
    f.push(Field::Min, 14, 16);
    f.push(Field::Sec, 17, 19);
    Some(f)
}

/// Is `b` (the first 11 bytes of a line) a canonical `YYYY-MM-DD` plus the `T` or
/// space before the time, with a year `%ExY` accepts? The sticky path caches these
/// bytes as the key of a day.
pub(crate) fn iso_day(b: &[u8], exy: &YearSet) -> bool {
    let &[y0, y1, y2, y3, sep, m0, m1, sep2, d0, d1, t] = b else {
        return false;
    };
    if ![y0, y1, y2, y3].iter().all(|c| digit(*c)) {
        return false;
    }
    let year = [y0, y1, y2, y3]
        .iter()
        .fold(0usize, |a, c| a * 10 + usize::from(c - b'0'));
    let month_ok = matches!((m0, m1), (b'0', b'1'..=b'9') | (b'1', b'0'..=b'2'));
    let day_ok = match (d0, d1) {
        (b'1' | b'2', d) => digit(d),
        (b'0', b'1'..=b'9') => true,
        (b'3', b'0' | b'1') => true,
        _ => false,
    };
    exy.contains(year)
        && matches!(sep, b'-' | b'/' | b'.')
        && month_ok
        && sep2 == sep
        && day_ok
        && matches!(t, b'T' | b' ')
}

/// Checks the `HH:MM:SS` part of a canonical ISO line (bytes 11..19) and what may
/// follow it; returns `(hour, seconds of the day)` (hour up to 29: the caller
/// rejects 24 and more, which `%H` does not match).
#[inline(always)]
pub(crate) fn iso_time(b: &[u8]) -> Option<(u32, u32)> {
    let w: [u8; 8] = b.get(11..19)?.try_into().ok()?;
    let v = u64::from_le_bytes(w);
    if !in_bounds(v, TIME_LO, TIME_HI) {
        return None;
    }
    let end_ok = match b.get(19) {
        Some(b' ' | b'\t') => {
            let next = b[19..].iter().find(|c| !matches!(c, b' ' | b'\t'));
            match next {
                None => true,
                Some(c) => {
                    c.is_ascii()
                        && !c.is_ascii_whitespace()
                        && !c.is_ascii_control()
                        && !b"ZUG+-".contains(c)
                }
            }
        }
        _ => plain_end(b, 19, b".,+-"),
    };
    if !end_ok {
        return None;
    }
    Some(hms(v))
}
