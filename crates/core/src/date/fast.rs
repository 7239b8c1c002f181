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
    if b.len() < 15 {
        return None;
    }
    super::civil::month_abbr(&b[..3])?;
    let day_ok = match (b[4], b[5]) {
        (b'1' | b'2', d) => digit(d),
        (b'0' | b' ', b'1'..=b'9') => true,
        (b'3', b'0' | b'1') => true,
        _ => false,
    };
    let ok = b[3] == b' '
        && day_ok
        && b[6] == b' '
        && matches!(b[7], b'0'..=b'2')
        && digit(b[8])
        && b[9] == b':'
        && matches!(b[10], b'0'..=b'5')
        && digit(b[11])
        && b[12] == b':'
        && matches!(b[13], b'0'..=b'5')
        && digit(b[14]);
    if !ok {
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
    let mut f = Found::new(0, 15);
    f.push(Field::MonAbbr, 0, 3);
    f.push(Field::Day, 4, 6);
    f.push(Field::Hour, 7, 9);
    f.push(Field::Min, 10, 12);
    f.push(Field::Sec, 13, 15);
    Some(f)
}

/// `{^LN-BEG}ExYear(?P<_sep>[-/.])Month(?P=_sep)Day(?:T|  ?)24hour:Minute:Second(?:[.,]Microseconds)?(?:\s*Zone offset)?`
pub(crate) fn iso(line: &str, exy: &YearSet) -> Option<Found> {
    let b = line.as_bytes();
    if b.len() < 19 || !b[..4].iter().all(|c| digit(*c)) {
        return None;
    }
    let year = b[..4]
        .iter()
        .fold(0usize, |a, c| a * 10 + usize::from(c - b'0'));
    if !exy.contains(year) {
        return None;
    }
    let sep = b[4];
    let month_ok = matches!((b[5], b[6]), (b'0', b'1'..=b'9') | (b'1', b'0'..=b'2'));
    let day_ok = match (b[8], b[9]) {
        (b'1' | b'2', d) => digit(d),
        (b'0', b'1'..=b'9') => true,
        (b'3', b'0' | b'1') => true,
        _ => false,
    };
    let hour_ok = match (b[11], b[12]) {
        (b'0' | b'1', d) => digit(d),
        (b'2', b'0'..=b'3') => true,
        _ => false,
    };
    let ok = matches!(sep, b'-' | b'/' | b'.')
        && month_ok
        && b[7] == sep
        && day_ok
        && matches!(b[10], b'T' | b' ')
        && hour_ok
        && b[13] == b':'
        && matches!(b[14], b'0'..=b'5')
        && digit(b[15])
        && b[16] == b':'
        && matches!(b[17], b'0'..=b'5')
        && digit(b[18]);
    if !ok {
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
    let mut f = Found::new(0, 19);
    f.push(Field::Y, 0, 4);
    f.push(Field::Mon, 5, 7);
    f.push(Field::Day, 8, 10);
    f.push(Field::Hour, 11, 13);
    f.push(Field::Min, 14, 16);
    f.push(Field::Sec, 17, 19);
    Some(f)
}
