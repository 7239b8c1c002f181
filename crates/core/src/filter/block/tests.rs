use proptest::prelude::*;

use super::*;
use crate::filter::{Failure, Filter, FilterConfig, UseDns};

/// 2005-08-14 10:00:00 UTC.
const NOW: i64 = 1_124_013_600;

fn filter(fail: &str, maxlines: usize) -> Filter {
    Filter::new(&FilterConfig {
        prefregex: None,
        failregex: vec![fail.to_string()],
        ignoreregex: vec![],
        maxlines,
        datepattern: None,
        usedns: UseDns::Raw,
        timezone: jiff::tz::TimeZone::UTC,
        now: NOW,
    })
    .unwrap()
}

fn opts() -> ProcessOptions {
    ProcessOptions {
        check_all: false,
        now: NOW as f64,
    }
}

/// The lines of `text` as a block: its bytes and the index of each `\n`.
fn block(lines: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = Vec::new();
    let mut ends = Vec::new();
    for l in lines {
        bytes.extend_from_slice(l);
        ends.push(bytes.len());
        bytes.push(b'\n');
    }
    (bytes, ends)
}

/// The failures of `lines` through `process_line` one by one (the daemon's old path).
fn line_by_line(f: &Filter, lines: &[Vec<u8>]) -> Vec<Failure> {
    line_by_line_state(f, lines).0
}

/// [`line_by_line`], and the runner's state after it.
fn line_by_line_state(f: &Filter, lines: &[Vec<u8>]) -> (Vec<Failure>, String) {
    let mut r = f.runner();
    let mut out = Vec::new();
    for l in lines {
        out.extend(
            r.process_line(&String::from_utf8_lossy(l), &opts())
                .failures,
        );
    }
    (out, r.state_summary())
}

/// The failures of `lines` through `process_block`, cut into blocks after the lines
/// `cuts` names, and the lines skipped.
fn by_blocks(f: &Filter, lines: &[Vec<u8>], cuts: &[usize], skip: bool) -> (Vec<Failure>, usize) {
    let (out, skipped, _) = by_blocks_state(f, lines, cuts, skip);
    (out, skipped)
}

/// [`by_blocks`], and the runner's state after it.
fn by_blocks_state(
    f: &Filter,
    lines: &[Vec<u8>],
    cuts: &[usize],
    skip: bool,
) -> (Vec<Failure>, usize, String) {
    let mut r = f.runner();
    let mut out = Vec::new();
    let mut skipped = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (lines.len() + 1)).collect();
    points.push(lines.len());
    points.sort_unstable();
    points.dedup();
    let mut from = 0;
    for p in points {
        let (bytes, ends) = block(&lines[from..p]);
        let counts = r.process_block(&bytes, &ends, &opts(), skip, &mut |res| {
            out.extend(res.failures)
        });
        assert_eq!(counts.lines, p - from);
        assert!(skip || counts.skipped == 0);
        skipped += counts.skipped;
        from = p;
    }
    (out, skipped, r.state_summary())
}

const FAIL: &str = r"^\s*host sshd\[\d+\]: fail from <HOST>$";

/// A line without a date takes the date of the line before it (when recent): when that
/// line was passed over, its date must still be the one taken. (Recorded only when a line
/// went the whole way, the failure below would get the time of the last line that did.)
#[test]
fn a_dateless_line_after_skipped_lines_takes_their_date() {
    let f = filter(FAIL, 1);
    let lines: Vec<Vec<u8>> = [
        "Aug 14 09:59:00 host cron[1]: noise",
        "Aug 14 09:59:10 host cron[2]: noise",
        "Aug 14 09:59:20 host cron[3]: noise",
        "Aug 14 09:59:30 host cron[4]: noise",
        "host sshd[5]: fail from 192.0.2.1",
    ]
    .iter()
    .map(|l| l.as_bytes().to_vec())
    .collect();
    let (skipped_path, skipped) = by_blocks(&f, &lines, &[], true);
    // The first dated line sets the sticky template (it goes the whole way); the others
    // are passed over.
    assert_eq!(skipped, 3);
    assert_eq!(skipped_path.len(), 1);
    assert_eq!(skipped_path[0].time, (NOW - 30) as f64);
    assert_eq!(skipped_path, line_by_line(&f, &lines));
}

/// A line the sticky shortcut cannot date (another format, another day), a line ending in
/// `\r`, a line holding the literal without matching: each goes the whole way, and the
/// failures stay those of matching every line.
#[test]
fn lines_the_shortcut_cannot_date_go_the_whole_way() {
    let f = filter(FAIL, 1);
    let lines: Vec<Vec<u8>> = vec![
        b"Aug 14 09:59:00 host cron[1]: noise".to_vec(),
        b"Aug 14 09:59:01 host cron[1]: noise".to_vec(),
        b"2005-08-14 09:59:02 host cron[1]: other format".to_vec(),
        b"Aug 13 09:59:03 host cron[1]: another day".to_vec(),
        b"Aug 14 09:59:05 host cron[1]: carriage return\r".to_vec(),
        b"Aug 14 09:59:06 host cron[1]: fail from nobody".to_vec(),
        b"Aug 14 09:59:07 host cron[1]: noise".to_vec(),
        b"host sshd[5]: fail from 192.0.2.1".to_vec(),
        b"Aug 14 09:59:09 host sshd[5]: fail from 192.0.2.2".to_vec(),
    ];
    let (skipped_path, skipped) = by_blocks(&f, &lines, &[], true);
    assert_eq!(
        skipped, 2,
        "the second line and the one before the dateless failure"
    );
    assert_eq!(skipped_path.len(), 2);
    assert_eq!(skipped_path, line_by_line(&f, &lines));
    assert_eq!(skipped_path[0].time, (NOW - 53) as f64);
}

/// A line that is not UTF-8: `process_line` sees its lossy decoding. With ASCII literals
/// the raw bytes hold one exactly when the decoding does, so it is passed over like any
/// other; with a literal that is not ASCII (which a U+FFFD could complete), it goes the
/// whole way. The failures are those of matching every line, either way.
#[test]
fn a_line_not_utf8_is_passed_over_only_when_the_literals_are_ascii() {
    let lines: Vec<Vec<u8>> = vec![
        b"Aug 14 09:59:00 host cron[1]: noise".to_vec(),
        b"Aug 14 09:59:01 host cron[1]: \xff\xfe not utf-8".to_vec(),
        b"Aug 14 09:59:02 \xc3 right after the date".to_vec(),
        b"Aug 14 09:59:03\xff".to_vec(),
        b"Aug 14 09:59:04 host cron[1]: caf\xc3\xa9".to_vec(),
        b"host sshd[5]: fail from 192.0.2.1".to_vec(),
        b"Aug 14 09:59:09 host sshd[5]: \xc3\xa9chec from 192.0.2.2".to_vec(),
        b"Aug 14 09:59:10 host sshd[5]: \xc3chec from 192.0.2.3".to_vec(),
    ];
    let ascii = filter(FAIL, 1);
    let (got, skipped) = by_blocks(&ascii, &lines, &[], true);
    assert_eq!(got, line_by_line(&ascii, &lines));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].time, (NOW - 56) as f64, "the last date passed over");
    // all but the first (it sets the sticky template), the dateless failure, and the one
    // whose date ends in a byte that is not ASCII (no date there, for raw and decoded alike)
    assert_eq!(skipped, 5);
    let other = filter(r"^\s*host sshd\[\d+\]: échec from <HOST>$", 1);
    let (got, skipped) = by_blocks(&other, &lines, &[], true);
    assert_eq!(got, line_by_line(&other, &lines));
    assert_eq!(got.len(), 1);
    assert_eq!(skipped, 1, "only the valid line passed over");
}

/// Multi-line filters keep every line in their buffer: nothing is skipped.
#[test]
fn a_multi_line_filter_skips_nothing() {
    let f = filter(
        r"^\s*host sshd\[\d+\]: a\n\s*host sshd\[\d+\]: fail from <HOST>$",
        2,
    );
    let lines: Vec<Vec<u8>> = [
        "Aug 14 09:59:00 host cron[1]: noise",
        "Aug 14 09:59:01 host cron[1]: noise",
        "Aug 14 09:59:02 host sshd[1]: a",
        "Aug 14 09:59:03 host sshd[1]: fail from 192.0.2.1",
    ]
    .iter()
    .map(|l| l.as_bytes().to_vec())
    .collect();
    let (got, skipped) = by_blocks(&f, &lines, &[2], true);
    assert_eq!(skipped, 0);
    assert_eq!(got, line_by_line(&f, &lines));
    assert_eq!(got.len(), 1);
}

/// One line of a generated log: dated noise in the sticky format and others, dateless
/// lines, failures dated and not, near misses holding the literal, lines that are not
/// UTF-8 or end in `\r`.
fn arb_line() -> impl Strategy<Value = Vec<u8>> {
    let sec = 0u32..60;
    prop_oneof![
        6 => (sec.clone(), "[a-z ]{0,20}")
            .prop_map(|(s, t)| format!("Aug 14 09:59:{s:02} host cron[1]: {t}").into_bytes()),
        2 => (sec.clone(), 0u32..3)
            .prop_map(|(s, d)| format!("Aug {:02} 09:{s:02}:00 host cron[1]: x", 12 + d).into_bytes()),
        1 => sec.clone().prop_map(|s| format!("2005-08-14 09:59:{s:02} host cron[1]: iso").into_bytes()),
        1 => sec.clone().prop_map(|s| format!("[14/Aug/2005:09:59:{s:02} +0000] host cron[1]: apache").into_bytes()),
        1 => "[a-z ]{0,12}".prop_map(String::into_bytes),
        2 => (sec.clone(), 1u8..255)
            .prop_map(|(s, h)| format!("Aug 14 09:59:{s:02} host sshd[7]: fail from 192.0.2.{h}").into_bytes()),
        1 => (1u8..255).prop_map(|h| format!("host sshd[7]: fail from 192.0.2.{h}").into_bytes()),
        1 => sec.clone().prop_map(|s| format!("Aug 14 09:59:{s:02} host cron[1]: fail from someone").into_bytes()),
        1 => sec.clone().prop_map(|s| {
            let mut l = format!("Aug 14 09:59:{s:02} host cron[1]: ").into_bytes();
            l.extend_from_slice(b"\xff\xc3");
            l
        }),
        1 => sec.clone().prop_map(|s| format!("Aug 14 09:59:{s:02} host cron[1]: crlf\r").into_bytes()),
        2 => (sec.clone(), proptest::collection::vec(any::<u8>(), 0..4), 0usize..3)
            .prop_map(|(s, junk, at)| {
                // bytes of any kind right where the date's end is judged
                let mut l = format!("Aug 14 09:59:{s:02}").into_bytes();
                if at > 0 {
                    l.push(b' ');
                }
                l.extend_from_slice(&junk);
                l.extend_from_slice(b" host sshd[7]: fail from 192.0.2.9");
                l
            }),
        1 => (sec, proptest::collection::vec(any::<u8>(), 0..4), 0usize..3)
            .prop_map(|(s, junk, spaces)| {
                let mut l = format!("2005-08-14 09:59:{s:02}{}", " ".repeat(spaces)).into_bytes();
                l.extend_from_slice(&junk);
                l.extend_from_slice(b" x");
                l
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The differential: the same lines, cut into blocks anywhere, give exactly the
    /// failures of matching every line one by one, skipping or not, and leave the runner in
    /// the same state (the date detector's counts, order and positions, the last date seen).
    #[test]
    fn skipping_changes_no_failure_and_no_state(
        lines in proptest::collection::vec(arb_line(), 0..80),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let f = filter(FAIL, 1);
        let (reference, state) = line_by_line_state(&f, &lines);
        let (full, _, full_state) = by_blocks_state(&f, &lines, &cuts, false);
        let (skipping, _, skip_state) = by_blocks_state(&f, &lines, &cuts, true);
        prop_assert_eq!(&full, &reference);
        prop_assert_eq!(&skipping, &reference);
        prop_assert_eq!(&full_state, &state);
        prop_assert_eq!(&skip_state, &state);
    }
}
