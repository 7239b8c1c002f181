//! The reader's fast path against the full one, on real logs: every filter, fed sample logs
//! as the daemon feeds a file's lines (in blocks, `\r` before `\n` cut off), finds exactly
//! the failures it finds matching every line one by one, whether the lines its literal
//! prefilter rules out are passed over or not, however the lines are cut into blocks.
//! Our filters run over our annotated samples, the Debian package's filters over its
//! corpus; each filter over its own log and over all the logs of its set one after the
//! other (other formats, other dates: the date detector's state matters there). The
//! runner's state after the lines must be the same too: it decides how the next lines are
//! matched.

use std::path::{Path, PathBuf};

use banhammer::embedded::EMBEDDED_CONFIG;
use banhammer::filterload::{compile, resolve_filter_arg, FilterOverrides};
use banhammer::samples::TEST_NOW;
use banhammer_core::filter::{Failure, Filter, ProcessOptions};

use crate::env;

/// The lines of a log as the file source passes them on: split at `\n`, trailing `\r`s cut.
fn lines_of(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = bytes
        .split(|&b| b == b'\n')
        .map(|l| {
            let mut l = l;
            while let [rest @ .., b'\r'] = l {
                l = rest;
            }
            l.to_vec()
        })
        .collect();
    if bytes.ends_with(b"\n") || bytes.is_empty() {
        lines.pop();
    }
    lines
}

/// The clock of the runs over every log: so early that every date seen is "recent", so a
/// line without a date always takes the last date seen — the date bookkeeping of the lines
/// passed over is then seen in the failures' times.
const EARLY: f64 = 0.0;

fn opts(now: f64) -> ProcessOptions {
    ProcessOptions {
        check_all: false,
        now,
    }
}

/// Failures one line at a time (the daemon's path before batches), and the runner's state
/// after them.
fn one_by_one(filter: &Filter, lines: &[Vec<u8>], now: f64) -> (Vec<Failure>, String) {
    let mut runner = filter.runner();
    let mut out = Vec::new();
    for l in lines {
        let text = String::from_utf8_lossy(l);
        out.extend(runner.process_line(&text, &opts(now)).failures);
    }
    (out, runner.state_summary())
}

/// Failures through `process_block`, `per_block` lines a block; the lines skipped, and the
/// runner's state after them.
fn in_blocks(
    filter: &Filter,
    lines: &[Vec<u8>],
    per_block: usize,
    skip: bool,
    now: f64,
) -> (Vec<Failure>, usize, String) {
    let mut runner = filter.runner();
    let mut out = Vec::new();
    let mut skipped = 0;
    for chunk in lines.chunks(per_block.max(1)) {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for l in chunk {
            bytes.extend_from_slice(l);
            ends.push(bytes.len());
            bytes.push(b'\n');
        }
        let counts = runner.process_block(&bytes, &ends, &opts(now), skip, &mut |r| {
            out.extend(r.failures)
        });
        assert_eq!(counts.lines, chunk.len());
        skipped += counts.skipped;
    }
    (out, skipped, runner.state_summary())
}

/// Runs `filter` over `lines` every way, with the clock at `now`; the disagreements, and
/// the lines skipped.
fn compare(
    name: &str,
    what: &str,
    filter: &Filter,
    lines: &[Vec<u8>],
    now: f64,
) -> (Vec<String>, usize) {
    let (reference, state) = one_by_one(filter, lines, now);
    let mut errors = Vec::new();
    let mut skipped = 0;
    for (per_block, skip) in [(usize::MAX, false), (usize::MAX, true), (7, true)] {
        let (got, n, got_state) = in_blocks(filter, lines, per_block, skip, now);
        if per_block == usize::MAX && skip {
            skipped = n;
        }
        let how = match per_block {
            usize::MAX => format!("one block, skip {skip}"),
            n => format!("blocks of {n}, skip {skip}"),
        };
        if got_state != state {
            errors.push(format!(
                "{name} over {what} ({how}): runner state\n  {got_state}\nnot\n  {state}"
            ));
        }
        if got != reference {
            let first = got
                .iter()
                .zip(&reference)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(reference.len()));
            errors.push(format!(
                "{name} over {what} ({how}): {} failures, not {}; first difference #{first}: \
                 {:?} vs {:?}",
                got.len(),
                reference.len(),
                got.get(first),
                reference.get(first),
            ));
        }
    }
    (errors, skipped)
}

/// Every regular file under `dir` (sorted), with its lines.
fn logs_in(dir: &Path) -> Vec<(PathBuf, Vec<Vec<u8>>)> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let lines = lines_of(&std::fs::read(&p).unwrap());
            (p, lines)
        })
        .collect()
}

/// Runs every filter of `names` (from `config_dir`, or the embedded tree) over the logs of
/// `logs_dir`; panics with the disagreements. Returns (filters, lines skipped).
fn check_set(names: &[String], config_dir: Option<&Path>, logs_dir: &Path) -> (usize, usize) {
    let logs = logs_in(logs_dir);
    let all: Vec<Vec<u8>> = logs.iter().flat_map(|(_, l)| l.iter().cloned()).collect();
    let overrides = FilterOverrides {
        usedns: Some("raw".to_string()),
        timezone: Some("UTC".to_string()),
        ..FilterOverrides::default()
    };
    let mut errors = Vec::new();
    let mut skipped = 0;
    let mut filters = 0;
    for name in names {
        let filter = match resolve_filter_arg(name, config_dir)
            .and_then(|r| compile(&r, &overrides, TEST_NOW))
        {
            Ok(f) => f,
            // A filter that does not compile on its own (a test-only one needing options)
            // has no daemon path to compare.
            Err(_) => continue,
        };
        filters += 1;
        for (path, lines) in &logs {
            if path
                .file_name()
                .is_some_and(|f| f.to_string_lossy() == *name)
            {
                let what = path.display().to_string();
                let (e, _) = compare(name, &what, &filter, lines, TEST_NOW as f64);
                errors.extend(e);
            }
        }
        let (e, n) = compare(name, "every log", &filter, &all, EARLY);
        errors.extend(e);
        skipped += n;
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    (filters, skipped)
}

fn filter_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("filter.d"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".conf").map(str::to_string))
        .filter(|n| !n.ends_with("common"))
        .collect();
    names.sort();
    names
}

#[test]
fn skipping_finds_the_failures_of_every_line_on_our_samples() {
    let names: Vec<String> = EMBEDDED_CONFIG
        .iter()
        .filter_map(|(path, _)| {
            path.strip_prefix("filter.d/")
                .and_then(|p| p.strip_suffix(".conf"))
                .filter(|n| !n.ends_with("common"))
                .map(str::to_string)
        })
        .collect();
    let (filters, skipped) = check_set(&names, None, &env::repo_root().join("testdata/logs"));
    eprintln!("skip path: {filters} filters agree on our samples, {skipped} lines skipped");
    assert!(filters >= 10, "{filters} filters");
    // Not a vacuous comparison: the fast path did pass lines over.
    assert!(skipped > 1000, "only {skipped} lines skipped");
}

#[test]
fn skipping_finds_the_failures_of_every_line_on_the_debian_corpus() {
    let (Some(tests), Some(etc)) = (env::fail2ban_tests_dir(), env::fail2ban_config_dir()) else {
        env::require("the Debian fail2ban package (conformance corpus)", false);
        return;
    };
    let names = filter_names(&etc);
    let (filters, skipped) = check_set(&names, Some(&etc), &tests.join("files/logs"));
    eprintln!("skip path: {filters} filters agree on the Debian corpus, {skipped} lines skipped");
    assert!(filters >= 60, "{filters} filters");
    assert!(skipped > 10_000, "only {skipped} lines skipped");
}
