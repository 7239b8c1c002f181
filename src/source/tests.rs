use super::*;
use std::io::Write;

fn lines(src: &mut FileSource, now: Instant) -> Vec<(String, String)> {
    let mut out = Vec::new();
    src.poll(now, &mut |ev| {
        if let SourceEvent::Lines { path, batch } = ev {
            let name = Path::new(&*path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            for l in batch.lines() {
                out.push((name.clone(), String::from_utf8_lossy(l).into_owned()));
            }
        }
        ControlFlow::Continue(())
    });
    out
}

fn append(p: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn no_checkpoints() -> CheckpointLookup {
    Box::new(|_| None)
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

#[test]
fn logpath_lines() {
    assert_eq!(
        LogPathSpec::parse("/var/log/auth.log tail"),
        LogPathSpec {
            pattern: "/var/log/auth.log".into(),
            start: StartAt::Tail
        }
    );
    assert_eq!(LogPathSpec::parse(" /x/y  head ").pattern, "/x/y");
    assert_eq!(
        LogPathSpec::parse("/my dir/file"),
        LogPathSpec {
            pattern: "/my dir/file".into(),
            start: StartAt::Head
        }
    );
}

#[test]
fn glob_picks_up_new_files_and_keeps_rotated_ones_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    append(&d.join("a.log"), b"a1\n");
    let spec = LogPathSpec::parse(&format!("{}/*.log*", d.display()));
    let opts = SourceOptions {
        rescan_interval: Duration::from_secs(3600),
        ..SourceOptions::default()
    };
    let t0 = Instant::now();
    let mut src = FileSource::new(vec![spec], opts, no_checkpoints(), t0);
    assert_eq!(lines(&mut src, t0), [pair("a.log", "a1")]);
    // A new file: picked up at the next expansion, read from 0.
    append(&d.join("b.log"), b"b1\nb2\n");
    assert!(lines(&mut src, t0).is_empty(), "not before the rescan");
    src.request_rescan();
    assert_eq!(
        lines(&mut src, t0),
        [pair("b.log", "b1"), pair("b.log", "b2")]
    );
    // Rotation: a.log -> a.log.1 (matched by the glob), new a.log. The old file continues
    // under its new name where it was; nothing is read twice.
    let mut old = std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("a.log"))
        .unwrap();
    std::fs::rename(d.join("a.log"), d.join("a.log.1")).unwrap();
    old.write_all(b"a2\n").unwrap();
    append(&d.join("a.log"), b"new1\n");
    assert_eq!(
        lines(&mut src, t0),
        [pair("a.log", "a2"), pair("a.log", "new1")]
    );
    src.request_rescan();
    old.write_all(b"a3\n").unwrap();
    assert_eq!(lines(&mut src, t0), [pair("a.log.1", "a3")]);
    assert_eq!(src.paths().len(), 3);
}

#[test]
fn glob_match_of_a_released_file_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    append(&d.join("x.log"), b"1\n2\n");
    let opts = SourceOptions {
        rescan_interval: Duration::from_secs(3600),
        tail: TailOptions {
            rotate_grace: Duration::ZERO,
            ..TailOptions::default()
        },
        ..SourceOptions::default()
    };
    let spec = LogPathSpec::parse(&format!("{}/x.log*", d.display()));
    let t0 = Instant::now();
    let mut src = FileSource::new(vec![spec], opts, no_checkpoints(), t0);
    assert_eq!(lines(&mut src, t0).len(), 2);
    std::fs::rename(d.join("x.log"), d.join("x.log.1")).unwrap();
    append(&d.join("x.log"), b"3\n");
    assert_eq!(lines(&mut src, t0), [pair("x.log", "3")]);
    append(&d.join("x.log.1"), b"late\n");
    src.request_rescan();
    assert_eq!(lines(&mut src, t0), [pair("x.log.1", "late")]);
}

#[test]
fn checkpoints_are_looked_up_and_sent() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("auth.log");
    append(&p, b"one\ntwo\n");
    let t0 = Instant::now();
    let spec = LogPathSpec::parse(&p.to_string_lossy());
    let mut src = FileSource::new(
        vec![spec.clone()],
        SourceOptions::default(),
        no_checkpoints(),
        t0,
    );
    let mut cps = Vec::new();
    src.poll(t0, &mut |ev| {
        if let SourceEvent::Checkpoint(c) = ev {
            cps.push(c);
        }
        ControlFlow::Continue(())
    });
    assert_eq!(cps.len(), 1);
    let stored = cps[0].to_store("sshd", 1.0);
    assert_eq!(stored.offset, 8);
    append(&p, b"three\n");
    let lookup: CheckpointLookup =
        Box::new(move |path| (path == stored.path).then(|| stored.clone()));
    let mut src = FileSource::new(vec![spec], SourceOptions::default(), lookup, t0);
    assert_eq!(lines(&mut src, t0), [pair("auth.log", "three")]);
}

#[test]
fn a_symlink_to_an_open_file_is_not_read_twice() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    append(&d.join("real.log"), b"x\n");
    std::os::unix::fs::symlink(d.join("real.log"), d.join("alias.log")).unwrap();
    let specs = vec![
        LogPathSpec::parse(&d.join("real.log").to_string_lossy()),
        LogPathSpec::parse(&format!("{}/*.log", d.display())),
    ];
    let t0 = Instant::now();
    let mut src = FileSource::new(specs, SourceOptions::default(), no_checkpoints(), t0);
    assert_eq!(lines(&mut src, t0), [pair("real.log", "x")]);
}

#[test]
fn missing_glob_and_dangling_links_warn_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::os::unix::fs::symlink(d.join("nowhere"), d.join("bad.log")).unwrap();
    let t0 = Instant::now();
    let specs = vec![
        LogPathSpec::parse(&format!("{}/*.log", d.display())),
        LogPathSpec::parse(&format!("{}/none*.txt", d.display())),
    ];
    let mut src = FileSource::new(specs, SourceOptions::default(), no_checkpoints(), t0);
    let mut warnings = Vec::new();
    for _ in 0..3 {
        src.request_rescan();
        src.poll(t0, &mut |ev| {
            if let SourceEvent::Warning(w) = ev {
                warnings.push(w);
            }
            ControlFlow::Continue(())
        });
    }
    // Said once each, however many expansions: the link, and both patterns found nothing
    // readable.
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(warnings[0].contains("dangling"));
    assert!(warnings[1].contains("no file found") && warnings[2].contains("none*.txt"));
}

#[test]
fn watch_targets_cover_files_and_glob_dirs() {
    assert_eq!(
        fixed_dir("/var/log/*/access.log"),
        PathBuf::from("/var/log")
    );
    assert_eq!(fixed_dir("/var/log/auth.log*"), PathBuf::from("/var/log"));
    assert_eq!(fixed_dir("*.log"), PathBuf::from("."));
}

/// Every event of one poll.
fn events(src: &mut FileSource, now: Instant) -> Vec<SourceEvent> {
    let mut out = Vec::new();
    src.poll(now, &mut |ev| {
        out.push(ev);
        ControlFlow::Continue(())
    });
    out
}

fn mkfifo(p: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

/// A flood of long lines: none passed on, all counted, one report per interval naming the
/// file and the length, the next one saying how many were held back.
#[test]
fn a_flood_of_long_lines_is_counted_and_reported_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("wp.log");
    let opts = SourceOptions {
        tail: TailOptions {
            max_line: 100,
            ..TailOptions::default()
        },
        ..SourceOptions::default()
    };
    let mut long = vec![b'x'; 200];
    long.extend_from_slice(b" from 6.6.7.1\n");
    for _ in 0..50 {
        append(&p, &long);
    }
    append(&p, b"whole\n");
    let t0 = Instant::now();
    let spec = LogPathSpec::parse(&p.to_string_lossy());
    let mut src = FileSource::new(vec![spec], opts, no_checkpoints(), t0);
    let evs = events(&mut src, t0);
    let lines: Vec<&[u8]> = evs
        .iter()
        .flat_map(|e| match e {
            SourceEvent::Lines { batch, .. } => batch.lines().collect(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(lines, [b"whole"]);
    let skipped: Vec<&SkippedRecord> = evs
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Skipped(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(skipped.len(), 1, "one report for 50 lines");
    assert_eq!(skipped[0].len, 213);
    assert_eq!(skipped[0].reason, SkipReason::TooLong { limit: 100 });
    let text = skipped[0].to_string();
    assert!(
        text.contains("wp.log") && text.contains("213 bytes"),
        "{text}"
    );
    let stats = src.shared_stats();
    assert_eq!(stats.skipped.load(Ordering::Relaxed), 50);
    assert_eq!(stats.skipped_bytes.load(Ordering::Relaxed), 50 * 213);
    assert_eq!(stats.records.load(Ordering::Relaxed), 1);
    // One more after the interval: said, with the 49 held back.
    append(&p, &long);
    let later = t0 + throttle::DEFAULT_INTERVAL;
    let evs = events(&mut src, later);
    let more: Vec<u64> = evs
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Skipped(s) => Some(s.more),
            _ => None,
        })
        .collect();
    assert_eq!(more, [49]);
}

/// The daemon's side of a line still being written: held until its `\n` comes, then
/// passed on whole, however many polls it takes.
#[test]
fn an_unterminated_last_line_is_held_until_it_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("auth.log");
    append(&p, b"first\nFailed password for root from 192.0.2.");
    let t0 = Instant::now();
    let spec = LogPathSpec::parse(&p.to_string_lossy());
    let mut src = FileSource::new(vec![spec], SourceOptions::default(), no_checkpoints(), t0);
    assert_eq!(lines(&mut src, t0), [pair("auth.log", "first")]);
    for _ in 0..3 {
        assert!(lines(&mut src, t0).is_empty());
    }
    append(&p, b"1");
    assert!(lines(&mut src, t0).is_empty(), "192.0.2.1 is not whole yet");
    append(&p, b"23 port 22\n");
    assert_eq!(
        lines(&mut src, t0),
        [pair(
            "auth.log",
            "Failed password for root from 192.0.2.123 port 22"
        )]
    );
    // The stored position never points into the partial line.
    assert_eq!(
        src.checkpoints()[0].offset,
        std::fs::metadata(&p).unwrap().len()
    );
}

/// A FIFO at a log path: refused with one warning (opening it would block the source
/// thread, and then its stop, for good); a regular file that replaces it is read.
#[test]
fn a_fifo_at_a_log_path_is_refused_once_and_a_file_replacing_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("auth.log");
    mkfifo(&p);
    let t0 = Instant::now();
    let spec = LogPathSpec::parse(&p.to_string_lossy());
    // Would hang here with a blocking open.
    let mut src = FileSource::new(vec![spec], SourceOptions::default(), no_checkpoints(), t0);
    let mut warnings = Vec::new();
    for i in 0..5 {
        for ev in events(&mut src, t0 + Duration::from_secs(i * 100)) {
            match ev {
                SourceEvent::Warning(w) => warnings.push(w),
                SourceEvent::Lines { .. } => panic!("read a FIFO"),
                _ => {}
            }
        }
    }
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("a FIFO, not a regular file"),
        "{warnings:?}"
    );
    std::fs::remove_file(&p).unwrap();
    append(&p, b"now a file\n");
    assert_eq!(lines(&mut src, t0), [pair("auth.log", "now a file")]);
}

/// A symlink to /dev/zero at a log path: refused with one warning, never read (it used to
/// be read forever, 4 MiB a poll, "truncated" each time).
#[test]
fn a_symlink_to_dev_zero_is_refused_once_and_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("auth.log");
    std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
    let t0 = Instant::now();
    let spec = LogPathSpec::parse(&p.to_string_lossy());
    let mut src = FileSource::new(vec![spec], SourceOptions::default(), no_checkpoints(), t0);
    let mut all = Vec::new();
    for _ in 0..5 {
        let out = src.poll(t0, &mut |ev| {
            all.push(ev);
            ControlFlow::Continue(())
        });
        assert!(!out.more, "nothing to read");
    }
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(
        matches!(&all[0], SourceEvent::Warning(w) if w.contains("a character device")),
        "{all:?}"
    );
    assert!(src.checkpoints().is_empty());
}

/// A log path that turns into a FIFO after it was read: the open file is still read, the
/// FIFO is never opened, said once.
#[test]
fn a_rotation_to_a_fifo_keeps_the_old_file_and_warns_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("auth.log");
    append(&p, b"a\n");
    let t0 = Instant::now();
    let spec = LogPathSpec::parse(&p.to_string_lossy());
    let mut src = FileSource::new(vec![spec], SourceOptions::default(), no_checkpoints(), t0);
    assert_eq!(lines(&mut src, t0), [pair("auth.log", "a")]);
    let mut old = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    std::fs::rename(&p, dir.path().join("auth.log.1")).unwrap();
    mkfifo(&p);
    old.write_all(b"b\n").unwrap();
    let mut warnings = Vec::new();
    let mut got = Vec::new();
    for _ in 0..4 {
        for ev in events(&mut src, t0) {
            match ev {
                SourceEvent::Warning(w) => warnings.push(w),
                SourceEvent::Lines { batch, .. } => got.extend(batch.lines().map(<[u8]>::to_vec)),
                _ => {}
            }
        }
    }
    assert_eq!(got, [b"b".to_vec()]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("a FIFO"), "{warnings:?}");
}
