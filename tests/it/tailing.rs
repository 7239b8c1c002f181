//! File sources end to end: a real source thread (inotify or polling) tailing files that a
//! writer thread appends to while the test rotates, truncates, restarts and creates files.
//! Every line carries a sequence number and the generation of the physical file it went to,
//! so "each line exactly once, in order per file" is checked line by line.
//!
//! No fixed sleeps stand in for conditions: waits poll the collected events with a deadline.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use banhammer::source::{
    spawn, Backend, FileCheckpoint, LogPathSpec, SkippedRecord, SourceEvent, SourceHandle, StartAt,
};

const DEADLINE: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Collected {
    /// (file name, line text, when received)
    lines: Vec<(String, String, Instant)>,
    checkpoints: HashMap<String, FileCheckpoint>,
    warnings: Vec<String>,
    skipped: Vec<SkippedRecord>,
    /// Everything but lines, in order, with the number of lines received before it.
    log: Vec<(usize, String)>,
}

impl Collected {
    fn texts(&self, name: &str) -> Vec<String> {
        self.lines
            .iter()
            .filter(|l| l.0 == name)
            .map(|l| l.1.clone())
            .collect()
    }
}

/// Drains a source's channel on its own thread, like the daemon's consumer would.
struct Collector {
    data: Arc<Mutex<Collected>>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    fn start(rx: Receiver<SourceEvent>) -> Collector {
        let data = Arc::new(Mutex::new(Collected::default()));
        let d = data.clone();
        let thread = std::thread::spawn(move || {
            for ev in rx {
                let mut d = d.lock().unwrap();
                match ev {
                    SourceEvent::Lines { path, batch } => {
                        let name = Path::new(&*path)
                            .file_name()
                            .unwrap()
                            .to_string_lossy()
                            .into_owned();
                        let now = Instant::now();
                        for l in batch.lines() {
                            let text = String::from_utf8(l.to_vec()).unwrap();
                            d.lines.push((name.clone(), text, now));
                        }
                    }
                    SourceEvent::Checkpoint(cp) => {
                        let n = d.lines.len();
                        d.log.push((n, format!("{cp:?}")));
                        d.checkpoints.insert(cp.path.clone(), cp);
                    }
                    SourceEvent::Warning(w) => {
                        let n = d.lines.len();
                        d.log.push((n, w.clone()));
                        d.warnings.push(w)
                    }
                    SourceEvent::Info(i) => {
                        let n = d.lines.len();
                        d.log.push((n, i));
                    }
                    SourceEvent::Skipped(s) => {
                        let n = d.lines.len();
                        d.log.push((n, s.to_string()));
                        d.skipped.push(s);
                    }
                    SourceEvent::Entry { .. } | SourceEvent::CaughtUp => {}
                }
            }
        });
        Collector {
            data,
            thread: Some(thread),
        }
    }

    /// Waits (up to [`DEADLINE`]) until `cond` holds on what was collected.
    fn wait_for(&self, what: &str, cond: impl Fn(&Collected) -> bool) {
        let end = Instant::now() + DEADLINE;
        loop {
            if cond(&self.data.lock().unwrap()) {
                return;
            }
            if Instant::now() > end {
                let d = self.data.lock().unwrap();
                let tail: Vec<&String> = d.lines.iter().rev().take(5).map(|l| &l.1).collect();
                // Where sequence numbers jump, to see what was lost.
                let mut gaps = Vec::new();
                let mut prev: Option<u64> = None;
                for (i, l) in d.lines.iter().enumerate() {
                    if let Some(seq) =
                        l.1.strip_prefix("seq=")
                            .and_then(|r| r.split(' ').next())
                            .and_then(|n| n.parse::<u64>().ok())
                    {
                        if prev.is_some_and(|p| p + 1 != seq) {
                            gaps.push(format!("#{i}: {:?} -> {}", prev, l.1));
                        }
                        prev = Some(seq);
                    }
                }
                panic!(
                    "timed out waiting for {what}; {} lines, last {:?}, warnings {:?}, gaps {:?}, log {:?}",
                    d.lines.len(),
                    tail,
                    d.warnings,
                    gaps,
                    d.log
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Everything, once the source has stopped (its sender dropped).
    fn finish(mut self) -> Collected {
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        std::mem::take(&mut *self.data.lock().unwrap())
    }
}

fn start_source(
    specs: Vec<LogPathSpec>,
    backend: Backend,
    checkpoints: HashMap<String, FileCheckpoint>,
) -> (SourceHandle, Collector) {
    let (tx, rx) = sync_channel(1024);
    let handle = spawn(
        specs,
        backend,
        move |path| checkpoints.get(path).map(|c| c.to_store("test", 0.0)),
        tx,
    )
    .unwrap();
    (handle, Collector::start(rx))
}

fn spec(path: &Path, start: StartAt) -> LogPathSpec {
    LogPathSpec {
        pattern: path.to_string_lossy().into_owned(),
        start,
    }
}

fn append(p: &Path, text: &str) {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// A line "seq=N gen=G" parsed.
fn parse(line: &str) -> (u64, u32) {
    let mut it = line.split(' ');
    let seq = it
        .next()
        .unwrap()
        .strip_prefix("seq=")
        .unwrap()
        .parse()
        .unwrap();
    let gen = it
        .next()
        .unwrap()
        .strip_prefix("gen=")
        .unwrap()
        .parse()
        .unwrap();
    (seq, gen)
}

/// Every sequence number in `0..total` exactly once, and ascending within each generation
/// (physical file).
fn assert_exactly_once_in_order(lines: &[String], total: u64) {
    let mut seen = vec![0u32; total as usize];
    let mut last_in_gen: HashMap<u32, u64> = HashMap::new();
    for l in lines {
        let (seq, gen) = parse(l);
        assert!(seq < total, "unknown line {l}");
        seen[seq as usize] += 1;
        if let Some(prev) = last_in_gen.insert(gen, seq) {
            assert!(
                prev < seq,
                "out of order in generation {gen}: {prev} then {seq}"
            );
        }
    }
    let missing: Vec<_> = (0..total).filter(|&s| seen[s as usize] == 0).collect();
    let twice: Vec<_> = (0..total).filter(|&s| seen[s as usize] > 1).collect();
    assert!(
        missing.is_empty(),
        "{} lines lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        twice.is_empty(),
        "{} lines read twice, first {:?}",
        twice.len(),
        &twice[..twice.len().min(10)]
    );
}

struct WriterState {
    path: PathBuf,
    file: File,
    gen: u32,
    seq: u64,
    rotated: u32,
}

/// Appends "seq=N gen=G" lines continuously, as a daemon logging to a file would.
struct Writer {
    state: Arc<Mutex<WriterState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn open_append(p: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap()
}

impl Writer {
    fn start(path: &Path) -> Writer {
        let state = Arc::new(Mutex::new(WriterState {
            path: path.to_path_buf(),
            file: open_append(path),
            gen: 0,
            seq: 0,
            rotated: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                {
                    let mut w = s.lock().unwrap();
                    let line = format!("seq={} gen={}\n", w.seq, w.gen);
                    w.file.write_all(line.as_bytes()).unwrap();
                    w.seq += 1;
                }
                std::thread::sleep(Duration::from_micros(300));
            }
        });
        Writer {
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn written(&self) -> u64 {
        self.state.lock().unwrap().seq
    }

    fn next_name(w: &mut WriterState) -> PathBuf {
        w.rotated += 1;
        w.path.with_extension(format!("log.{}", w.rotated))
    }

    /// A writer that rotates itself: rename, then create the new file and write there.
    fn rotate_rename(&self) {
        let mut w = self.state.lock().unwrap();
        let to = Self::next_name(&mut w);
        std::fs::rename(&w.path, to).unwrap();
        w.file = open_append(&w.path);
        w.gen += 1;
    }

    /// logrotate's `create`: rename, create an empty file; the daemon keeps writing to the
    /// old file until it is told to reopen (here: a few lines later).
    fn rotate_create(&self) {
        {
            let mut w = self.state.lock().unwrap();
            let to = Self::next_name(&mut w);
            std::fs::rename(&w.path, to).unwrap();
            File::create(&w.path).unwrap();
        }
        let until = self.written() + 30;
        while self.written() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut w = self.state.lock().unwrap();
        w.file = open_append(&w.path);
        w.gen += 1;
    }

    /// logrotate's `copytruncate`. What is appended between the reader's last read and the
    /// truncation only exists in the copy (inherent to copytruncate), so this waits, holding
    /// the writer, until the reader has everything, as a test of *our* side.
    fn copytruncate(&self, c: &Collector) {
        let mut w = self.state.lock().unwrap();
        let n = w.seq as usize;
        c.wait_for("the reader to catch up before copytruncate", |d| {
            d.lines.len() >= n
        });
        let to = Self::next_name(&mut w);
        std::fs::copy(&w.path, to).unwrap();
        w.file.set_len(0).unwrap();
        w.gen += 1;
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.written()
    }
}

fn rotations_lose_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let writer = Writer::start(&path);
    let (source, c) = start_source(vec![spec(&path, StartAt::Head)], backend, HashMap::new());
    // A file created and rotated away between two looks is never seen (by any tailer that
    // follows a path), so before rotating again the test waits until the reader has read
    // from the current file: a condition, not a sleep.
    let settle = |writer: &Writer| {
        let gen = writer.state.lock().unwrap().gen;
        std::thread::sleep(Duration::from_millis(30));
        c.wait_for("a line from the new file", |d| {
            d.lines.last().is_some_and(|l| parse(&l.1).1 == gen)
        });
    };
    for _ in 0..3 {
        settle(&writer);
        writer.rotate_rename();
        settle(&writer);
        writer.copytruncate(&c);
        settle(&writer);
        writer.rotate_create();
    }
    settle(&writer);
    let total = writer.stop();
    c.wait_for("all lines", |d| d.lines.len() as u64 >= total);
    source.stop();
    let d = c.finish();
    assert!(total > 100, "the writer wrote {total} lines");
    assert_exactly_once_in_order(&d.texts("app.log"), total);
    // The last checkpoint is the current file's end.
    let cp = &d.checkpoints[&path.to_string_lossy().into_owned()];
    assert_eq!(cp.offset, std::fs::metadata(&path).unwrap().len());
}

#[test]
fn rotations_lose_nothing_inotify() {
    rotations_lose_nothing(Backend::Inotify);
}

#[test]
fn rotations_lose_nothing_polling() {
    rotations_lose_nothing(Backend::Polling);
}

/// Stop a source while the writer goes on, start a new one from the last checkpoint: nothing
/// read twice (`head` would re-read from 0 without it) or skipped (`tail` would skip).
#[test]
fn restart_from_checkpoint_neither_rereads_nor_skips() {
    for start in [StartAt::Head, StartAt::Tail] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let writer = Writer::start(&path);
        // The first run starts on an existing file: `head` for the test to see every line.
        let (s1, c1) = start_source(
            vec![spec(&path, StartAt::Head)],
            Backend::Auto,
            HashMap::new(),
        );
        c1.wait_for("some lines", |d| d.lines.len() >= 200);
        s1.stop();
        let first = c1.finish();
        // Lines keep coming while no source runs.
        let at_stop = writer.written();
        while writer.written() < at_stop + 100 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let (s2, c2) = start_source(
            vec![spec(&path, start)],
            Backend::Auto,
            first.checkpoints.clone(),
        );
        let total = writer.stop();
        let already = first.lines.len() as u64;
        c2.wait_for("the rest", |d| already + d.lines.len() as u64 >= total);
        s2.stop();
        let second = c2.finish();
        let mut all = first.texts("app.log");
        all.extend(second.texts("app.log"));
        assert_exactly_once_in_order(&all, total);
    }
}

#[test]
fn truncation_restarts_at_zero() {
    for backend in [Backend::Inotify, Backend::Polling] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        append(&path, "before 1\nbefore 2\n");
        let (s, c) = start_source(vec![spec(&path, StartAt::Head)], backend, HashMap::new());
        c.wait_for("old lines", |d| d.lines.len() == 2);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&path, "after 1\n");
        c.wait_for("the new line", |d| d.lines.len() == 3);
        append(&path, "after 2\n");
        c.wait_for("one more", |d| d.lines.len() == 4);
        s.stop();
        assert_eq!(
            c.finish().texts("t.log"),
            ["before 1", "before 2", "after 1", "after 2"]
        );
    }
}

#[test]
fn a_file_that_appears_after_start() {
    for backend in [Backend::Inotify, Backend::Polling] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late.log");
        // `tail`: a file that did not exist at start is still read from its beginning.
        let (s, c) = start_source(vec![spec(&path, StartAt::Tail)], backend, HashMap::new());
        c.wait_for("the missing-file warning", |d| d.warnings.len() == 1);
        append(&path, "first\nsecond\n");
        c.wait_for("the lines", |d| d.lines.len() == 2);
        s.stop();
        let d = c.finish();
        assert_eq!(d.texts("late.log"), ["first", "second"]);
        assert_eq!(d.warnings.len(), 1, "warned once: {:?}", d.warnings);
        assert!(d.warnings[0].contains("not found"));
    }
}

#[test]
fn tail_and_head() {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head.log");
    let tail = dir.path().join("tail.log");
    append(&head, "old\n");
    append(&tail, "old\n");
    let (s, c) = start_source(
        vec![spec(&head, StartAt::Head), spec(&tail, StartAt::Tail)],
        Backend::Auto,
        HashMap::new(),
    );
    c.wait_for("the head file's old line", |d| d.lines.len() == 1);
    append(&head, "new\n");
    append(&tail, "new\n");
    c.wait_for("new lines", |d| d.lines.len() == 3);
    s.stop();
    let d = c.finish();
    assert_eq!(d.texts("head.log"), ["old", "new"]);
    assert_eq!(d.texts("tail.log"), ["new"]);
}

#[test]
fn a_glob_picks_up_a_new_file() {
    for backend in [Backend::Inotify, Backend::Polling] {
        let dir = tempfile::tempdir().unwrap();
        append(&dir.path().join("a.log"), "a\n");
        let pattern = LogPathSpec::parse(&format!("{}/*.log tail", dir.path().display()));
        let (s, c) = start_source(vec![pattern], backend, HashMap::new());
        // `tail`: only what is written after the source has opened the file.
        c.wait_for("the first checkpoint", |d| !d.checkpoints.is_empty());
        append(&dir.path().join("a.log"), "a2\n");
        c.wait_for("a2", |d| d.lines.len() == 1);
        append(&dir.path().join("b.log"), "b1\nb2\n");
        append(&dir.path().join("ignored.txt"), "x\n");
        c.wait_for("the new file's lines", |d| d.lines.len() == 3);
        s.stop();
        let d = c.finish();
        assert_eq!(d.texts("a.log"), ["a2"]);
        assert_eq!(d.texts("b.log"), ["b1", "b2"]);
    }
}

/// Latency from append to event, printed (`cargo test -- --nocapture` shows it); asserted
/// only against the documented bounds so a loaded machine does not fail it.
#[test]
fn latency_inotify_and_polling() {
    for backend in [Backend::Inotify, Backend::Polling] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lat.log");
        append(&path, "");
        let (s, c) = start_source(vec![spec(&path, StartAt::Head)], backend, HashMap::new());
        // Let the source settle (first look, watches added).
        std::thread::sleep(Duration::from_millis(50));
        let mut samples = Vec::new();
        for i in 0..20 {
            let t = Instant::now();
            append(&path, &format!("line {i}\n"));
            c.wait_for("the line", |d| d.lines.len() > i);
            let got = c.data.lock().unwrap().lines[i].2;
            samples.push(got.saturating_duration_since(t));
            // Spread the polling samples over the polling period (else they all land at the
            // same phase of it).
            if backend == Backend::Polling {
                std::thread::sleep(Duration::from_millis((i as u64 * 97) % 250));
            }
        }
        s.stop();
        samples.sort();
        let (median, max) = (samples[samples.len() / 2], samples[samples.len() - 1]);
        eprintln!("latency {backend:?}: median {median:?}, max {max:?}");
        let bound = match backend {
            Backend::Polling => Duration::from_millis(1500),
            _ => Duration::from_millis(1000),
        };
        assert!(max < bound, "{backend:?}: {max:?}");
    }
}

/// The reviewed attack end to end through a source thread: a wordpress line whose first
/// 65,536 bytes end in `from 6.6.7.1`. Nothing of it is passed on; the line after it is.
#[test]
fn a_line_cut_at_64k_is_never_passed_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wp.log");
    let bait = "from 6.6.7.1";
    let head = "Nov 25 15:55:15 web wordpress(blog)[1]: Authentication failure for ";
    let mut line = head.to_string();
    line.push_str(&"A".repeat(64 * 1024 - head.len() - bait.len()));
    line.push_str(bait);
    line.push_str(" from 1.2.3.99\n");
    append(&path, &line);
    append(
        &path,
        "Nov 25 15:55:16 web wordpress(blog)[1]: whole line\n",
    );
    let (s, c) = start_source(
        vec![spec(&path, StartAt::Head)],
        Backend::Auto,
        HashMap::new(),
    );
    c.wait_for("the whole line", |d| d.lines.len() == 1);
    s.stop();
    let d = c.finish();
    assert!(d.texts("wp.log")[0].ends_with("whole line"));
    assert_eq!(d.skipped.len(), 1, "{:?}", d.log);
    assert_eq!(d.skipped[0].len, line.len() as u64 - 1);
    assert!(d.skipped[0].origin.ends_with("wp.log"));
}

/// A FIFO at a log path used to block the source thread in `open()` (no writer ever
/// comes), so stopping the daemon never completed and its stop actions never ran. Now it
/// is refused with one warning, the other file is read, and stop returns.
#[test]
fn a_fifo_at_a_log_path_does_not_block_the_source_or_its_stop() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.log");
    let real = dir.path().join("real.log");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    append(&real, "read\n");
    // The whole run on another thread, with a deadline: a hang (in the source, or in a
    // stop that waits for it) is a failure, not a stuck test.
    let (done_tx, done_rx) = sync_channel(1);
    std::thread::spawn(move || {
        let (s, c) = start_source(
            vec![spec(&fifo, StartAt::Head), spec(&real, StartAt::Head)],
            Backend::Auto,
            HashMap::new(),
        );
        c.wait_for("the regular file's line", |d| d.lines.len() == 1);
        c.wait_for("the FIFO warning", |d| !d.warnings.is_empty());
        s.stop();
        let _ = done_tx.send(c.finish());
    });
    let d = done_rx
        .recv_timeout(DEADLINE * 3)
        .expect("the source or its stop hung");
    assert_eq!(d.texts("real.log"), ["read"]);
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(d.warnings[0].contains("a FIFO"), "{:?}", d.warnings);
}
