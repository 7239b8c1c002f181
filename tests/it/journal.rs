//! The journal source end to end: real journal files written by `systemd-journal-remote`
//! from journal export format (no journald needed), followed by the source's journalctl
//! child: formatting, matches, start times, resuming after a cursor, live appends (to the
//! same file and as a new file in the directory), restart after the child dies, stop.
//!
//! No fixed sleeps stand in for conditions: waits poll the events with a deadline.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use banhammer::source::journal::{spawn_journal, JournalHandle, JournalOptions, JournalStart};
use banhammer::source::{SkipReason, SkippedRecord, SourceEvent};

use crate::env;

const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";
const DEADLINE: Duration = Duration::from_secs(10);

/// The tools are there, or the test skips (fails under CI=true).
fn tools() -> bool {
    env::require("journalctl", env::have_command("journalctl"))
        && env::require(
            "systemd-journal-remote (Debian package systemd-journal-remote)",
            Path::new(JOURNAL_REMOTE).exists(),
        )
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Monotonic timestamps increase across every entry written by this test binary, so the
/// journal orders entries of different files by them (same boot id) as written.
static MONOTONIC: AtomicU64 = AtomicU64::new(1_000_000);

/// One entry: its realtime (unix seconds) and fields.
fn entry(time: f64, fields: &[(&str, &str)]) -> (f64, Vec<(String, String)>) {
    (
        time,
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Appends entries to journal file `file` (created if missing) with systemd-journal-remote.
fn write_journal(file: &Path, entries: &[(f64, Vec<(String, String)>)]) {
    let mut export = Vec::new();
    for (time, fields) in entries {
        let mono = MONOTONIC.fetch_add(1000, Ordering::SeqCst);
        let us = (time * 1e6).round() as u64;
        write!(
            export,
            "__REALTIME_TIMESTAMP={us}\n__MONOTONIC_TIMESTAMP={mono}\n\
             _BOOT_ID=0123456789abcdef0123456789abcdef\n"
        )
        .unwrap();
        for (k, v) in fields {
            if v.contains('\n') {
                // Export format's binary form: name, LE64 length, data.
                export.extend_from_slice(k.as_bytes());
                export.push(b'\n');
                export.extend_from_slice(&(v.len() as u64).to_le_bytes());
                export.extend_from_slice(v.as_bytes());
                export.push(b'\n');
            } else {
                writeln!(export, "{k}={v}").unwrap();
            }
        }
        export.push(b'\n');
    }
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg(format!("--output={}", file.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&export).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "systemd-journal-remote: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a source sent.
#[derive(Default, Debug)]
struct Seen {
    /// (line, time)
    entries: Vec<(String, f64)>,
    cursors: Vec<String>,
    warnings: Vec<String>,
    skipped: Vec<SkippedRecord>,
    caught_up: bool,
}

/// Receives events until `cond` holds (panics after [`DEADLINE`]).
fn until(rx: &Receiver<SourceEvent>, seen: &mut Seen, what: &str, cond: impl Fn(&Seen) -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond(seen) {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(ev) => take(seen, ev),
            Err(e) => panic!("waiting for {what}: {e}; seen {seen:#?}"),
        }
    }
}

/// Receives what comes within `d` (to check that nothing more comes).
fn drain_for(rx: &Receiver<SourceEvent>, seen: &mut Seen, d: Duration) {
    let end = Instant::now() + d;
    while let Ok(ev) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        take(seen, ev);
    }
}

fn take(seen: &mut Seen, ev: SourceEvent) {
    match ev {
        SourceEvent::Entry {
            origin,
            bytes,
            time,
        } => {
            assert_eq!(&*origin, "journal");
            seen.entries.push((String::from_utf8(bytes).unwrap(), time));
        }
        SourceEvent::Checkpoint(cp) => {
            assert_eq!(cp.path, "journal");
            assert_eq!(cp.offset, 0);
            seen.cursors.push(cp.fingerprint);
        }
        SourceEvent::Warning(w) => seen.warnings.push(w),
        SourceEvent::CaughtUp => seen.caught_up = true,
        SourceEvent::Skipped(s) => seen.skipped.push(s),
        SourceEvent::Info(_) | SourceEvent::Lines { .. } => {}
    }
}

fn lines(seen: &Seen) -> Vec<&str> {
    seen.entries.iter().map(|e| e.0.as_str()).collect()
}

fn start(
    backend: &str,
    matches: &str,
    from: JournalStart,
) -> (JournalHandle, Receiver<SourceEvent>) {
    let opts = JournalOptions::from_backend(backend, matches).unwrap();
    let (tx, rx) = sync_channel(64);
    (spawn_journal(opts, from, tx).unwrap(), rx)
}

fn dir_backend(dir: &Path) -> String {
    format!("systemd[journalpath={}]", dir.display())
}

/// The cursor journalctl itself gives the last entry matching `matches` in `dir`.
fn last_cursor(dir: &Path, matches: &[&str]) -> String {
    let out = Command::new("journalctl")
        .args(["-o", "json", "--no-pager", "-n", "1", "--directory"])
        .arg(dir)
        .args(matches)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["__CURSOR"].as_str().unwrap().to_string()
}

/// The journalctl children of this process reading `dir` (by /proc).
fn journalctl_children(dir: &Path) -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let ppid: Option<u32> = tail.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if head.ends_with("(journalctl")
            && ppid == Some(me)
            && cmdline.contains(&*dir.to_string_lossy())
        {
            out.push(pid);
        }
    }
    out
}

#[test]
fn entries_are_formatted_and_matched_like_fail2ban() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t0 = now() - 60.0;
    write_journal(
        &dir.path().join("system.journal"),
        &[
            entry(
                t0,
                &[
                    ("_HOSTNAME", "web1"),
                    ("SYSLOG_IDENTIFIER", "sshd"),
                    ("_PID", "42"),
                    ("_SYSTEMD_UNIT", "ssh.service"),
                    (
                        "MESSAGE",
                        "Failed password for root from 192.0.2.1 port 22 ssh2",
                    ),
                ],
            ),
            entry(
                t0 + 1.0,
                &[
                    ("SYSLOG_IDENTIFIER", "CRON"),
                    ("_SYSTEMD_UNIT", "cron.service"),
                    ("MESSAGE", "not matched"),
                ],
            ),
            entry(
                t0 + 2.5,
                &[
                    ("_HOSTNAME", "web1"),
                    ("SYSLOG_IDENTIFIER", "wordpress"),
                    ("SYSLOG_PID", "7"),
                    ("_PID", "9"),
                    (
                        "MESSAGE",
                        "Authentication failure for admin\nfrom 192.0.2.7",
                    ),
                ],
            ),
            entry(
                t0 + 3.0,
                &[
                    ("_COMM", "sshd"),
                    ("_PID", "43"),
                    ("_SYSTEMD_UNIT", "ssh.service"),
                    ("MESSAGE", "Invalid user bob from 192.0.2.8"),
                ],
            ),
        ],
    );
    let matches = "_SYSTEMD_UNIT=ssh.service + SYSLOG_IDENTIFIER=wordpress";
    let (h, rx) = start(
        &dir_backend(dir.path()),
        matches,
        JournalStart::Since(now() - 600.0),
    );
    let mut seen = Seen::default();
    until(&rx, &mut seen, "3 entries and caught up", |s| {
        s.entries.len() >= 3 && s.caught_up && !s.cursors.is_empty()
    });
    assert_eq!(
        lines(&seen),
        [
            "web1 sshd[42]: Failed password for root from 192.0.2.1 port 22 ssh2",
            r"web1 wordpress[7]: Authentication failure for admin\nfrom 192.0.2.7",
            "sshd[43]: Invalid user bob from 192.0.2.8",
        ]
    );
    // The entries' own times, to the microsecond.
    let times: Vec<f64> = seen.entries.iter().map(|e| e.1).collect();
    for (got, want) in times.iter().zip([t0, t0 + 2.5, t0 + 3.0]) {
        assert!((got - want).abs() < 2e-6, "{got} vs {want}");
    }
    // The checkpoint is journalctl's own cursor of the last entry read.
    let want = last_cursor(
        dir.path(),
        &[
            "_SYSTEMD_UNIT=ssh.service",
            "+",
            "SYSLOG_IDENTIFIER=wordpress",
        ],
    );
    assert_eq!(seen.cursors.last(), Some(&want));
    assert!(seen.warnings.is_empty(), "{:?}", seen.warnings);
    h.stop();
    drain_for(&rx, &mut seen, Duration::from_millis(100));
    assert_eq!(seen.cursors.last(), Some(&want), "last checkpoint on stop");
    assert!(
        journalctl_children(dir.path()).is_empty(),
        "journalctl reaped on stop"
    );
}

#[test]
fn since_skips_older_entries_and_no_match_warns() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let n = now();
    write_journal(
        &dir.path().join("a.journal"),
        &[
            entry(
                n - 3600.0,
                &[("SYSLOG_IDENTIFIER", "app"), ("MESSAGE", "old")],
            ),
            entry(
                n - 30.0,
                &[("SYSLOG_IDENTIFIER", "app"), ("MESSAGE", "recent")],
            ),
        ],
    );
    let (h, rx) = start(&dir_backend(dir.path()), "", JournalStart::Since(n - 600.0));
    let mut seen = Seen::default();
    until(&rx, &mut seen, "caught up", |s| s.caught_up);
    assert_eq!(lines(&seen), ["app: recent"]);
    assert!(
        seen.warnings.iter().any(|w| w.contains("no journalmatch")),
        "{:?}",
        seen.warnings
    );
    h.stop();
}

#[test]
fn resumes_after_its_cursor_without_reading_again() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.journal");
    let n = now();
    let e = |t: f64, m: &str| entry(t, &[("SYSLOG_IDENTIFIER", "app"), ("MESSAGE", m)]);
    write_journal(&file, &[e(n - 20.0, "one"), e(n - 19.0, "two")]);
    let matches = "SYSLOG_IDENTIFIER=app";
    let (h, rx) = start(
        &dir_backend(dir.path()),
        matches,
        JournalStart::Since(n - 600.0),
    );
    let mut seen = Seen::default();
    until(&rx, &mut seen, "two entries", |s| s.entries.len() == 2);
    h.stop();
    drain_for(&rx, &mut seen, Duration::from_millis(100));
    let cursor = seen.cursors.last().cloned().unwrap();

    write_journal(&file, &[e(n - 10.0, "three"), e(n - 9.0, "four")]);
    let (h, rx) = start(
        &dir_backend(dir.path()),
        matches,
        JournalStart::Cursor(cursor),
    );
    let mut seen = Seen::default();
    until(&rx, &mut seen, "caught up after the cursor", |s| {
        s.entries.len() >= 2 && s.caught_up
    });
    drain_for(&rx, &mut seen, Duration::from_millis(200));
    assert_eq!(lines(&seen), ["app: three", "app: four"]);
    h.stop();
}

#[test]
fn follows_appends_and_new_files_live() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let n = now();
    let e = |t: f64, m: &str| entry(t, &[("SYSLOG_IDENTIFIER", "app"), ("MESSAGE", m)]);
    write_journal(&dir.path().join("a.journal"), &[e(n - 5.0, "before")]);
    let (h, rx) = start(
        &dir_backend(dir.path()),
        "SYSLOG_IDENTIFIER=app",
        JournalStart::Since(n - 600.0),
    );
    // A second source started at the tail sees only what is written from now on.
    let (tail_h, tail_rx) = start(
        &dir_backend(dir.path()),
        "SYSLOG_IDENTIFIER=app",
        JournalStart::Tail,
    );
    let mut seen = Seen::default();
    until(&rx, &mut seen, "the first entry", |s| {
        s.entries.len() == 1 && s.caught_up
    });
    let mut tail_seen = Seen::default();
    until(&tail_rx, &mut tail_seen, "the tail source caught up", |s| {
        s.caught_up
    });

    // Appended to the same file while followed.
    write_journal(&dir.path().join("a.journal"), &[e(now(), "appended")]);
    until(&rx, &mut seen, "the appended entry", |s| {
        s.entries.len() == 2
    });
    // A new journal file in the directory (what journald's rotation makes).
    write_journal(&dir.path().join("b.journal"), &[e(now(), "new file")]);
    until(&rx, &mut seen, "the new file's entry", |s| {
        s.entries.len() == 3
    });
    assert_eq!(
        lines(&seen),
        ["app: before", "app: appended", "app: new file"]
    );

    until(
        &tail_rx,
        &mut tail_seen,
        "two live entries at the tail",
        |s| s.entries.len() == 2,
    );
    assert_eq!(lines(&tail_seen), ["app: appended", "app: new file"]);
    h.stop();
    tail_h.stop();
}

#[test]
fn journalfiles_patterns() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let n = now();
    let e = |t: f64, m: &str| entry(t, &[("SYSLOG_IDENTIFIER", "app"), ("MESSAGE", m)]);
    write_journal(&dir.path().join("one.journal"), &[e(n - 9.0, "from one")]);
    write_journal(&dir.path().join("two.journal"), &[e(n - 8.0, "from two")]);
    write_journal(&dir.path().join("skip.journal"), &[e(n - 7.0, "skipped")]);
    let backend = format!(
        "systemd[journalfiles={d}/one.journal {d}/t*.journal]",
        d = dir.path().display()
    );
    let (h, rx) = start(&backend, "", JournalStart::Since(n - 600.0));
    let mut seen = Seen::default();
    until(&rx, &mut seen, "caught up", |s| {
        s.caught_up && s.entries.len() >= 2
    });
    assert_eq!(lines(&seen), ["app: from one", "app: from two"]);
    h.stop();

    let opts = JournalOptions::from_backend(
        &format!("systemd[journalfiles={}/none*]", dir.path().display()),
        "",
    )
    .unwrap();
    let (tx, _rx) = sync_channel(8);
    let e = spawn_journal(opts, JournalStart::Tail, tx).unwrap_err();
    assert!(e.to_string().contains("no file matches"), "{e}");
}

#[test]
fn a_dead_journalctl_is_restarted_from_the_last_cursor() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.journal");
    let e = |t: f64, m: &str| entry(t, &[("SYSLOG_IDENTIFIER", "app"), ("MESSAGE", m)]);
    write_journal(&file, &[e(now() - 5.0, "first")]);
    let (h, rx) = start(
        &dir_backend(dir.path()),
        "SYSLOG_IDENTIFIER=app",
        JournalStart::Since(now() - 600.0),
    );
    let mut seen = Seen::default();
    until(&rx, &mut seen, "the first entry", |s| {
        s.entries.len() == 1 && !s.cursors.is_empty()
    });
    let pids = journalctl_children(dir.path());
    assert_eq!(pids.len(), 1, "{pids:?}");
    let killed = Command::new("kill")
        .args(["-KILL", &pids[0].to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    until(&rx, &mut seen, "the exit warning", |s| {
        s.warnings.iter().any(|w| w.contains("journalctl exited"))
    });
    write_journal(&file, &[e(now(), "second")]);
    until(&rx, &mut seen, "the entry after the restart", |s| {
        s.entries.len() >= 2
    });
    drain_for(&rx, &mut seen, Duration::from_millis(300));
    // Restarted after the cursor: nothing read twice.
    assert_eq!(lines(&seen), ["app: first", "app: second"]);
    let new_pids = journalctl_children(dir.path());
    assert!(new_pids.len() == 1 && new_pids != pids, "{new_pids:?}");
    h.stop();
    assert!(journalctl_children(dir.path()).is_empty());
}

#[test]
fn a_cursor_journalctl_rejects_falls_back_to_its_time() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let n = now();
    let e = |t: f64, m: &str| entry(t, &[("SYSLOG_IDENTIFIER", "app"), ("MESSAGE", m)]);
    write_journal(
        &dir.path().join("a.journal"),
        &[
            e(n - 200.0, "before the cursor"),
            e(n - 50.0, "after the cursor"),
        ],
    );
    // A damaged cursor whose time field survived.
    let t = ((n - 100.0) * 1e6) as u64;
    let cursor = format!("s=damaged;t={t:x}");
    let (h, rx) = start(
        &dir_backend(dir.path()),
        "SYSLOG_IDENTIFIER=app",
        JournalStart::Cursor(cursor),
    );
    let mut seen = Seen::default();
    until(&rx, &mut seen, "the entry after the cursor's time", |s| {
        !s.entries.is_empty()
    });
    assert_eq!(lines(&seen), ["app: after the cursor"]);
    assert!(
        seen.warnings.iter().any(|w| w.contains("stored cursor")),
        "{:?}",
        seen.warnings
    );
    h.stop();
}

#[test]
fn a_full_channel_holds_journalctl_back() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let n = now();
    let many: Vec<_> = (0..300)
        .map(|i| {
            let m = format!("n={i}");
            entry(
                n - 100.0 + f64::from(i) * 0.01,
                &[("SYSLOG_IDENTIFIER", "app"), ("MESSAGE", m.as_str())],
            )
        })
        .collect();
    write_journal(&dir.path().join("a.journal"), &many);
    let opts = JournalOptions::from_backend(&dir_backend(dir.path()), "").unwrap();
    let (tx, rx) = sync_channel(1);
    let h = spawn_journal(opts, JournalStart::Since(n - 600.0), tx).unwrap();
    let mut seen = Seen::default();
    until(&rx, &mut seen, "all 300 entries", |s| {
        s.entries.len() == 300
    });
    drain_for(&rx, &mut seen, Duration::from_millis(300));
    let want: Vec<String> = (0..300).map(|i| format!("app: n={i}")).collect();
    assert_eq!(lines(&seen), want);
    // Checkpoints came during the stream too (every 100 entries), not only at the end.
    assert!(seen.cursors.len() >= 3, "{}", seen.cursors.len());
    h.stop();
}

/// An entry longer than the reader's cap on a journalctl line (4 MiB) is skipped whole and
/// reported, never passed on cut; the entries around it are read.
#[test]
fn a_journal_entry_over_the_line_limit_is_skipped_not_cut() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let n = now();
    let mut huge = "Authentication failure for ".to_string();
    huge.push_str(&"A".repeat(5 << 20));
    huge.push_str(" from 6.6.7.1");
    let e = |t: f64, m: &str| entry(t, &[("SYSLOG_IDENTIFIER", "app"), ("MESSAGE", m)]);
    write_journal(
        &dir.path().join("a.journal"),
        &[e(n - 3.0, "before"), e(n - 2.0, &huge), e(n - 1.0, "after")],
    );
    let (h, rx) = start(
        &dir_backend(dir.path()),
        "SYSLOG_IDENTIFIER=app",
        JournalStart::Since(n - 600.0),
    );
    let mut seen = Seen::default();
    until(&rx, &mut seen, "both whole entries", |s| {
        s.entries.len() == 2 && s.caught_up
    });
    assert_eq!(lines(&seen), ["app: before", "app: after"]);
    assert_eq!(seen.skipped.len(), 1, "{seen:#?}");
    assert!(matches!(seen.skipped[0].reason, SkipReason::TooLong { .. }));
    assert!(seen.skipped[0].len > 5 << 20);
    let stats = h.stats();
    assert_eq!(stats.skipped.load(Ordering::Relaxed), 1);
    assert_eq!(stats.records.load(Ordering::Relaxed), 2);
    h.stop();
}
