use super::*;
use std::io::Write;

fn lines(src: &mut FileSource, now: Instant) -> Vec<(String, String)> {
    let mut out = Vec::new();
    src.poll(now, &mut |ev| {
        if let SourceEvent::Line { path, bytes, .. } = ev {
            let name = Path::new(&*path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push((name, String::from_utf8_lossy(&bytes).into_owned()));
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
