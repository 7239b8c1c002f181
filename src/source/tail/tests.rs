use super::*;
use proptest::prelude::*;
use std::io::Write;

struct Fx {
    dir: tempfile::TempDir,
    now: Instant,
}

impl Fx {
    fn new() -> Fx {
        Fx {
            dir: tempfile::tempdir().unwrap(),
            now: Instant::now(),
        }
    }
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn append(&self, name: &str, bytes: &[u8]) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.p(name))
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }
    fn tailer(&self, name: &str, start: StartAt, cp: Option<&FileCheckpoint>) -> Tailer {
        Tailer::new(self.p(name), start, cp, TailOptions::default(), self.now)
    }
}

/// Polls once, returning the lines as strings.
fn poll(t: &mut Tailer, now: Instant) -> Vec<String> {
    let mut out = Vec::new();
    t.poll(now, &mut |b| {
        out.extend(b.lines().map(|l| String::from_utf8_lossy(l).into_owned()));
        ControlFlow::Continue(())
    });
    out
}

#[test]
fn complete_lines_only() {
    let fx = Fx::new();
    fx.append("log", b"a\nb\npart");
    let mut t = fx.tailer("log", StartAt::Head, None);
    assert_eq!(poll(&mut t, fx.now), ["a", "b"]);
    assert_eq!(t.checkpoint().unwrap().offset, 4);
    assert!(poll(&mut t, fx.now).is_empty());
    fx.append("log", b"ial\r\n\nc\n");
    assert_eq!(poll(&mut t, fx.now), ["partial", "", "c"]);
    assert_eq!(t.checkpoint().unwrap().offset, 16);
    assert_eq!(t.stats().lines, 5);
}

#[test]
fn offsets_and_raw_bytes() {
    let fx = Fx::new();
    fx.append("log", b"ok\n\xff\xfebad\n");
    let mut t = fx.tailer("log", StartAt::Head, None);
    let mut got = Vec::new();
    t.poll(fx.now, &mut |b| {
        got.push((
            b.lines().map(<[u8]>::to_vec).collect::<Vec<_>>(),
            b.offset_after(),
        ));
        ControlFlow::Continue(())
    });
    assert_eq!(
        got,
        [(vec![b"ok".to_vec(), b"\xff\xfebad".to_vec()], 9)],
        "one batch"
    );
}

#[test]
fn head_and_tail() {
    let fx = Fx::new();
    fx.append("log", b"old1\nold2\nhalf");
    let mut head = fx.tailer("log", StartAt::Head, None);
    let mut tail = fx.tailer("log", StartAt::Tail, None);
    assert_eq!(poll(&mut head, fx.now), ["old1", "old2"]);
    // tail starts after the last complete line: the line being written is read whole.
    assert!(poll(&mut tail, fx.now).is_empty());
    fx.append("log", b"-done\nnew\n");
    assert_eq!(poll(&mut head, fx.now), ["half-done", "new"]);
    assert_eq!(poll(&mut tail, fx.now), ["half-done", "new"]);
}

#[test]
fn tail_of_empty_and_of_one_partial_line() {
    let fx = Fx::new();
    fx.append("empty", b"");
    fx.append("partial", b"no newline yet");
    let mut e = fx.tailer("empty", StartAt::Tail, None);
    let mut p = fx.tailer("partial", StartAt::Tail, None);
    fx.append("empty", b"x\n");
    fx.append("partial", b"!\n");
    assert_eq!(poll(&mut e, fx.now), ["x"]);
    assert_eq!(poll(&mut p, fx.now), ["no newline yet!"]);
}

#[test]
fn checkpoint_resumes_only_the_same_file() {
    let fx = Fx::new();
    fx.append("log", b"first\nsecond\n");
    let mut t = fx.tailer("log", StartAt::Head, None);
    assert_eq!(poll(&mut t, fx.now), ["first", "second"]);
    let cp = t.checkpoint().unwrap();
    drop(t);
    fx.append("log", b"third\n");
    // Same file: resume, for head and tail alike.
    for start in [StartAt::Head, StartAt::Tail] {
        let mut t = fx.tailer("log", start, Some(&cp));
        assert_eq!(t.take_notices(), [Notice::Resumed { offset: 13 }]);
        assert_eq!(poll(&mut t, fx.now), ["third"]);
    }
    // Replaced while we were away (new inode, other first line): head from 0, tail from end.
    std::fs::rename(fx.p("log"), fx.p("log.1")).unwrap();
    fx.append("log", b"new first\nnew second\n");
    let mut t = fx.tailer("log", StartAt::Head, Some(&cp));
    assert_eq!(poll(&mut t, fx.now), ["new first", "new second"]);
    let mut t = fx.tailer("log", StartAt::Tail, Some(&cp));
    assert!(poll(&mut t, fx.now).is_empty());
    // A checkpoint beyond the end (file shrank) is not applied.
    let far = FileCheckpoint {
        offset: 10_000,
        ..t.checkpoint().unwrap()
    };
    let mut t = fx.tailer("log", StartAt::Head, Some(&far));
    assert_eq!(poll(&mut t, fx.now).len(), 2);
}

#[test]
fn rename_and_create_loses_nothing() {
    let fx = Fx::new();
    fx.append("log", b"1\n2\n");
    let mut t = fx.tailer("log", StartAt::Head, None);
    assert_eq!(poll(&mut t, fx.now), ["1", "2"]);
    // The writer still holds the old file after the rename.
    let mut old = std::fs::OpenOptions::new()
        .append(true)
        .open(fx.p("log"))
        .unwrap();
    old.write_all(b"3\n").unwrap();
    std::fs::rename(fx.p("log"), fx.p("log.1")).unwrap();
    old.write_all(b"4\n").unwrap();
    // Path missing for a moment: the old file is still read.
    assert_eq!(poll(&mut t, fx.now), ["3", "4"]);
    assert_eq!(t.take_notices(), [Notice::Removed]);
    old.write_all(b"5\npart").unwrap();
    fx.append("log", b"n1\nn2\n");
    assert_eq!(poll(&mut t, fx.now), ["5", "n1", "n2"]);
    assert_eq!(t.take_notices(), [Notice::Rotated]);
    assert_eq!(t.stats().rotations, 1);
    // A late write to the old descriptor within the grace is still read.
    old.write_all(b"ial\n").unwrap();
    fx.append("log", b"n3\n");
    assert_eq!(poll(&mut t, fx.now), ["partial", "n3"]);
    assert_eq!(t.inodes().count(), 2);
    // After the grace, the old file is let go; its unfinished line is not whole, so it is
    // reported, never passed on.
    old.write_all(b"cut").unwrap();
    let later = fx.now + Duration::from_secs(1);
    assert_eq!(poll(&mut t, later), Vec::<String>::new());
    let much_later = later + TailOptions::default().rotate_grace;
    assert_eq!(poll(&mut t, much_later), Vec::<String>::new());
    assert!(t.take_notices().contains(&Notice::Unfinished { len: 3 }));
    assert_eq!(t.inodes().count(), 1);
    // The checkpoint is the new file's.
    let cp = t.checkpoint().unwrap();
    assert_eq!(cp.offset, 9);
    let new_ino = std::fs::metadata(fx.p("log")).unwrap().ino();
    assert_eq!(Fingerprint::parse(&cp.fingerprint).unwrap().ino, new_ino);
}

#[test]
fn delete_and_recreate() {
    let fx = Fx::new();
    fx.append("log", b"a\n");
    let mut t = fx.tailer("log", StartAt::Head, None);
    assert_eq!(poll(&mut t, fx.now), ["a"]);
    std::fs::remove_file(fx.p("log")).unwrap();
    assert!(poll(&mut t, fx.now).is_empty());
    fx.append("log", b"b\n");
    assert_eq!(poll(&mut t, fx.now), ["b"]);
    assert_eq!(t.take_notices(), [Notice::Removed, Notice::Rotated]);
}

#[test]
fn truncation_restarts_at_zero() {
    let fx = Fx::new();
    fx.append("log", b"line one\nline two\n");
    let mut t = fx.tailer("log", StartAt::Head, None);
    assert_eq!(poll(&mut t, fx.now).len(), 2);
    // copytruncate, then a short write: size below our offset.
    std::fs::copy(fx.p("log"), fx.p("log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(fx.p("log"))
        .unwrap()
        .set_len(0)
        .unwrap();
    fx.append("log", b"x\n");
    assert_eq!(poll(&mut t, fx.now), ["x"]);
    assert_eq!(t.take_notices(), [Notice::Truncated]);
    // Truncated and rewritten past our offset before we looked: the first line tells.
    std::fs::OpenOptions::new()
        .write(true)
        .open(fx.p("log"))
        .unwrap()
        .set_len(0)
        .unwrap();
    fx.append("log", b"a much longer first line\nand more\n");
    assert_eq!(
        poll(&mut t, fx.now),
        ["a much longer first line", "and more"]
    );
    assert_eq!(t.stats().truncations, 2);
}

#[test]
fn file_that_appears_later() {
    let fx = Fx::new();
    let mut t = fx.tailer("log", StartAt::Tail, None);
    assert_eq!(t.take_notices(), [Notice::Missing]);
    assert!(t.checkpoint().is_none());
    assert!(poll(&mut t, fx.now).is_empty());
    assert!(poll(&mut t, fx.now).is_empty());
    assert_eq!(t.take_notices(), []); // said once
    fx.append("log", b"hello\n");
    // A file that appears after start is read from its beginning, even for `tail`.
    assert_eq!(poll(&mut t, fx.now), ["hello"]);
    assert_eq!(t.take_notices(), [Notice::Appeared]);
}

#[test]
fn long_lines_are_skipped_whole() {
    let fx = Fx::new();
    let opts = TailOptions {
        max_line: 8,
        ..TailOptions::default()
    };
    fx.append("log", b"0123456789abcdef\nshort\n0123");
    let mut t = Tailer::new(fx.p("log"), StartAt::Head, None, opts, fx.now);
    assert_eq!(poll(&mut t, fx.now), ["short"]);
    assert_eq!(t.take_notices(), [Notice::Skipped { len: 16 }]);
    // The checkpoint moved past the skipped line and the taken one.
    assert_eq!(t.checkpoint().unwrap().offset, 23);
    // A long line arriving in pieces, longer than the chunk size too; its tail after the
    // cut ("yy", then a line's worth of text) is not a line of its own.
    fx.append("log", &[b'x'; 10_000]);
    assert!(poll(&mut t, fx.now).is_empty());
    fx.append("log", b"yy 1.2.3.4\nend\n");
    assert_eq!(poll(&mut t, fx.now), ["end"]);
    assert_eq!(
        t.take_notices(),
        [Notice::Skipped {
            len: 4 + 10_000 + 10
        }]
    );
    assert_eq!(t.stats().skipped_lines, 2);
    assert_eq!(t.stats().skipped_bytes, 16 + 10_014);
    assert_eq!(t.stats().lines, 2);
}

/// The other end of the cut: after a long line is skipped, reading resumes at the next
/// `\n`. Were the tail of the long line passed on as a line, an attacker would put the
/// address there instead.
#[test]
fn the_tail_of_a_skipped_line_is_never_a_line() {
    let fx = Fx::new();
    let opts = TailOptions {
        max_line: 64,
        ..TailOptions::default()
    };
    let mut t = Tailer::new(fx.p("log"), StartAt::Head, None, opts, fx.now);
    let mut long = vec![b'A'; 64];
    long.extend_from_slice(b"Nov 25 15:55:15 web sshd[1]: Failed password for root from 6.6.7.1");
    // Written in every split: the cut may fall anywhere relative to the reads.
    for split in [1, 63, 64, 65, 100, long.len()] {
        fx.append("log", &long[..split]);
        assert!(poll(&mut t, fx.now).is_empty());
        fx.append("log", &long[split..]);
        fx.append("log", b"\nok\n");
        assert_eq!(poll(&mut t, fx.now), ["ok"], "split at {split}");
    }
    assert_eq!(t.stats().skipped_lines, 6);
}

/// A rotated-away file let go of with an unfinished last line: never passed on, whether
/// it would fit or not (nothing says it is whole: `from 6.6` may be all of `from 6.6.7.1`
/// the writer got out before it died).
#[test]
fn a_released_file_never_passes_on_its_unfinished_last_line() {
    let fx = Fx::new();
    let opts = TailOptions {
        max_line: 64,
        rotate_grace: Duration::ZERO,
        ..TailOptions::default()
    };
    fx.append("log", b"a\nFailed password for root from 6.6");
    let mut t = Tailer::new(fx.p("log"), StartAt::Head, None, opts, fx.now);
    assert_eq!(poll(&mut t, fx.now), ["a"]);
    std::fs::rename(fx.p("log"), fx.p("log.1")).unwrap();
    fx.append("log", b"b\n");
    assert_eq!(poll(&mut t, fx.now), ["b"]);
    assert!(t.take_notices().contains(&Notice::Unfinished { len: 33 }));
    assert_eq!(t.stats().skipped_lines, 1);
}

#[test]
fn a_batch_not_taken_is_offered_again() {
    let fx = Fx::new();
    fx.append("log", b"a\nb\nc\n");
    // Batches of one line each (a 2-byte batch holds "a\n").
    let opts = TailOptions {
        batch_bytes: 2,
        ..TailOptions::default()
    };
    let mut t = Tailer::new(fx.p("log"), StartAt::Head, None, opts, fx.now);
    let mut got = Vec::new();
    let out = t.poll(fx.now, &mut |b| {
        if b.bytes() == b"b\n" {
            return ControlFlow::Break(());
        }
        got.push(b.bytes().to_vec());
        ControlFlow::Continue(())
    });
    assert!(out.stopped);
    assert_eq!(got, [b"a\n".to_vec()]);
    assert_eq!(t.checkpoint().unwrap().offset, 2);
    assert_eq!(t.stats().lines, 1);
    assert_eq!(poll(&mut t, fx.now), ["b", "c"]);
    assert_eq!(t.stats().lines, 3);
}

#[test]
fn budget_splits_big_reads() {
    let fx = Fx::new();
    let mut content = Vec::new();
    for i in 0..10_000 {
        content.extend_from_slice(format!("line {i}\n").as_bytes());
    }
    fx.append("log", &content);
    let opts = TailOptions {
        read_budget: 10_000,
        ..TailOptions::default()
    };
    let mut t = Tailer::new(fx.p("log"), StartAt::Head, None, opts, fx.now);
    let mut n = 0;
    let mut rounds = 0;
    loop {
        rounds += 1;
        let mut k = 0;
        let out = t.poll(fx.now, &mut |b| {
            k += b.len();
            ControlFlow::Continue(())
        });
        n += k;
        if !out.more {
            break;
        }
    }
    assert_eq!(n, 10_000);
    assert!(rounds > 5, "{rounds}");
}

#[test]
fn several_rotations_between_two_looks() {
    let fx = Fx::new();
    let mut w = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(fx.p("log"))
        .unwrap();
    let mut seq = 0;
    let mut write = |w: &mut File, n: usize, gen: u32| {
        for _ in 0..n {
            w.write_all(format!("seq={seq} gen={gen}\n").as_bytes())
                .unwrap();
            seq += 1;
        }
    };
    let reopen = |fx: &Fx| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(fx.p("log"))
            .unwrap()
    };
    write(&mut w, 150, 0);
    let mut t = fx.tailer("log", StartAt::Head, None);
    assert_eq!(poll(&mut t, fx.now).len(), 150);
    // rename (writer-side)
    std::fs::rename(fx.p("log"), fx.p("log.1")).unwrap();
    w = reopen(&fx);
    write(&mut w, 150, 1);
    assert_eq!(poll(&mut t, fx.now).len(), 150);
    write(&mut w, 180, 1);
    assert_eq!(poll(&mut t, fx.now).len(), 180);
    // copytruncate
    w.set_len(0).unwrap();
    write(&mut w, 120, 2);
    // logrotate create
    std::fs::rename(fx.p("log"), fx.p("log.3")).unwrap();
    File::create(fx.p("log")).unwrap();
    write(&mut w, 30, 2);
    w = reopen(&fx);
    write(&mut w, 20, 3);
    // rename again
    std::fs::rename(fx.p("log"), fx.p("log.4")).unwrap();
    w = reopen(&fx);
    write(&mut w, 10, 4);
    let got = poll(&mut t, fx.now);
    let gens: Vec<&str> = got.iter().map(|l| l.rsplit(' ').next().unwrap()).collect();
    assert_eq!(
        gens.iter().filter(|g| **g == "gen=2").count(),
        150,
        "{:?}",
        t.take_notices()
    );
    // The file in between (gen 3) was never seen: only a look between the rotations could.
    assert_eq!(gens.iter().filter(|g| **g == "gen=4").count(), 10);
}

/// The reviewed attack: a wordpress line whose first 65,536 bytes end in `from 6.6.7.1`,
/// the real address after it. The head of a cut line must never reach the filter.
#[test]
fn a_line_cut_at_64k_is_never_matched() {
    let fx = Fx::new();
    let head = b"Nov 25 15:55:15 web wordpress(blog)[1]: Authentication failure for ";
    let bait = b" from 6.6.7.1";
    let mut line = head.to_vec();
    line.resize(64 * 1024 - bait.len(), b'A');
    line.extend_from_slice(bait);
    assert_eq!(line.len(), 64 * 1024);
    line.extend_from_slice(b" from 1.2.3.99\n");
    fx.append("log", &line);
    fx.append("log", b"next line\n");
    let mut t = fx.tailer("log", StartAt::Head, None);
    let got = poll(&mut t, fx.now);
    assert_eq!(got, ["next line"], "only the whole line after it");
    assert_eq!(t.stats().skipped_lines, 1);
    assert!(t.take_notices().contains(&Notice::Skipped {
        len: line.len() as u64 - 1
    }));
}

/// The lines of `input` by the definition: split at `\n` (a last piece without one is not a
/// line yet), trailing `\r`s cut off; `Err(len)` for a line longer than `max_line` (counted
/// with its `\r`s, without its `\n`). Each with the offset just after its `\n`.
fn lines_of(input: &[u8], max_line: usize) -> Vec<(Result<Vec<u8>, u64>, u64)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in input.iter().enumerate() {
        if b == b'\n' {
            let raw = &input[start..i];
            let item = if raw.len() <= max_line {
                Ok(trim_cr(raw).to_vec())
            } else {
                Err(raw.len() as u64)
            };
            out.push((item, i as u64 + 1));
            start = i + 1;
        }
    }
    out
}

/// Cuts `input` at the given points (taken modulo its length, sorted, deduplicated).
fn pieces<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut prev = 0;
    for p in points {
        out.push(&input[prev..p]);
        prev = p;
    }
    out.push(&input[prev..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Batching, whatever way the file is written (appended in pieces), read (budgets that
    /// cut reads anywhere), batched (any size) and taken (batches refused at random, the
    /// tailer restarted from its checkpoint at random): every line of the input is passed
    /// on exactly once, in order, whole; each batch holds its lines each followed by one
    /// `\n`, within its size bounds (and keeps little more room than it fills), and ends
    /// where its last line ends in the file; a line
    /// too long is skipped and counted once, never passed on; and after every poll the
    /// checkpoint covers exactly the lines taken (and skipped) so far.
    #[test]
    fn any_batching_passes_on_exactly_the_lines_of_the_input(
        input in proptest::collection::vec(
            prop_oneof![3 => Just(b'\n'), 1 => Just(b'\r'), 12 => any::<u8>()],
            0..600,
        ),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        max_line in 1usize..40,
        batch_bytes in 1usize..80,
        read_budget in 1usize..100,
        refuse in proptest::collection::vec(any::<bool>(), 0..16),
        restart in proptest::collection::vec(any::<bool>(), 0..16),
    ) {
        let fx = Fx::new();
        fx.append("log", b"");
        let opts = TailOptions {
            max_line,
            batch_bytes,
            read_budget,
            ..TailOptions::default()
        };
        let expected = lines_of(&input, max_line);
        let wanted: Vec<(Vec<u8>, u64)> = expected
            .iter()
            .filter_map(|(l, end)| l.as_ref().ok().map(|l| (l.clone(), *end)))
            .collect();
        let mut refuse = refuse.into_iter();
        let mut restart = restart.into_iter();
        let mut t = Tailer::new(fx.p("log"), StartAt::Head, None, opts.clone(), fx.now);
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut skipped = 0;
        for piece in pieces(&input, &cuts) {
            fx.append("log", piece);
            loop {
                let mut bad: Option<String> = None;
                let out = t.poll(fx.now, &mut |b| {
                    if refuse.next().unwrap_or(false) {
                        return ControlFlow::Break(());
                    }
                    let lines: Vec<&[u8]> = b.lines().collect();
                    let mut bytes = Vec::new();
                    for l in &lines {
                        bytes.extend_from_slice(l);
                        bytes.push(b'\n');
                    }
                    let k = got.len() + lines.len();
                    let problem = if lines.is_empty() || lines.len() != b.len() {
                        Some("no lines".to_string())
                    } else if bytes != b.bytes() {
                        Some(format!("bytes {:?} are not lines {lines:?}", b.bytes()))
                    } else if b.bytes().len() > batch_bytes && lines.len() > 1 {
                        Some(format!("{} bytes over {batch_bytes}", b.bytes().len()))
                    } else if lines.len() > (batch_bytes / 16).max(1) {
                        Some(format!("{} lines", lines.len()))
                    } else if b.capacity().0 > b.bytes().len() + batch_bytes / 8
                        || b.capacity().1 > (batch_bytes / 16).max(1)
                    {
                        Some(format!("room for {:?}", b.capacity()))
                    } else if wanted.get(k - 1).map(|w| w.1) != Some(b.offset_after()) {
                        Some(format!("ends at {} (line {k})", b.offset_after()))
                    } else {
                        None
                    };
                    if problem.is_some() && bad.is_none() {
                        bad = problem;
                    }
                    got.extend(lines.iter().map(|l| l.to_vec()));
                    ControlFlow::Continue(())
                });
                prop_assert!(bad.is_none(), "{:?}", bad);
                // The checkpoint: a line end (or 0), covering exactly the lines taken.
                let cp = t.checkpoint().map_or(0, |c| c.offset);
                prop_assert!(cp == 0 || expected.iter().any(|e| e.1 == cp), "{}", cp);
                let covered = wanted.iter().filter(|w| w.1 <= cp).count();
                prop_assert_eq!(covered, got.len(), "checkpoint {}", cp);
                if restart.next().unwrap_or(false) {
                    skipped += t.stats().skipped_lines;
                    let cp = t.checkpoint();
                    t = Tailer::new(fx.p("log"), StartAt::Head, cp.as_ref(), opts.clone(), fx.now);
                }
                if !out.more && !out.stopped {
                    break;
                }
            }
        }
        skipped += t.stats().skipped_lines;
        let want: Vec<Vec<u8>> = wanted.iter().map(|w| w.0.clone()).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(skipped, expected.iter().filter(|e| e.0.is_err()).count() as u64);
    }
}
