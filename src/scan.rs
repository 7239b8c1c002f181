//! One-shot scanning of a whole log through one filter (the engine of `banhammer regex`).
//!
//! Owns the read loop: the input is cut into chunks at line ends, chunks go to worker
//! threads (each with its own filter runner) and come back in input order, so memory
//! stays bounded whatever the file size. Receives a compiled [`Filter`], an [`Input`]
//! and [`ScanOptions`]; emits [`ScanStats`] and, through a callback, every failure in
//! input order.
//!
//! Filters whose matching depends on earlier lines through their line buffer
//! (`maxlines > 1`) run on one worker in order. Single-line filters with multi-line failure
//! ids split the work: workers do everything that depends on the line alone (date, regex
//! searches) on their chunks, and the thread that puts chunks back in order merges each
//! line into the mlfid cache. All others use every core. Lines are skipped before
//! any regex runs when the filter's literal prefilter proves they cannot match.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::{Context, Result};
use banhammer_core::filter::{
    Failure, Filter, FilterRunner, HostKind, LastDate, LineMatches, LineResult, ProcessOptions,
    UseDns,
};
use banhammer_core::jail::{failure_target, FailureKey, FailureTarget};

/// Size of one unit of work. Big enough that per-chunk overhead vanishes, small enough
/// that a few chunks in flight keep peak memory low.
const CHUNK_BYTES: usize = 512 << 10;
/// Chunks in flight per worker (reading ahead plus results waiting for their turn).
const IN_FLIGHT_PER_WORKER: usize = 2;
/// Chunk size in [`Mode::Split`]: its chunks come back as one match record per line
/// (captured groups included), several times the chunk's own size, so smaller chunks
/// keep the records in flight within the memory bound.
const SPLIT_CHUNK_BYTES: usize = 64 << 10;

/// What to scan.
pub enum Input {
    File(PathBuf),
    /// Text given on the command line (a single line, or several separated by `\n`).
    Text(String),
}

/// How many of one kind of line to remember for printing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Nothing,
    First(usize),
    All,
}

impl Keep {
    fn wants(self, count_so_far: u64) -> bool {
        match self {
            Keep::Nothing => false,
            Keep::First(n) => count_so_far <= n as u64,
            Keep::All => true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub check_all: bool,
    /// Time used for lines without a date.
    pub now: f64,
    pub keep_matched: Keep,
    pub keep_missed: Keep,
    pub keep_ignored: Keep,
    /// Only failures are wanted (`-o`): per-line statistics may be skipped, so lines that
    /// cannot match are not even date-parsed.
    pub failures_only: bool,
    /// Worker threads; 0 = one per core.
    pub threads: usize,
    /// What becomes of failures whose host matched as a DNS name.
    pub names: Names,
    /// Failures need no `groups` nor `matches` (a `-o` format of ids and times only): the
    /// workers' runners are lean ([`FilterRunner::set_lean`]).
    pub lean_failures: bool,
}

/// What the scan does with a failure whose host matched as a DNS name (fail2ban-regex's
/// `usedns` and `--raw`). A name that is plain canonical address text is that address in
/// every mode but [`Names::Raw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// Kept as it is (`--raw`): a failure whose id is the name, without an address.
    Raw,
    /// `usedns = yes|warn`: a strict host name ([`crate::dns::is_host_name`]) is resolved,
    /// one failure per address; any other name, or one that resolves to nothing, is no
    /// failure and no regex hit (fail2ban's `textToIp` returning nothing). Unlike
    /// fail2ban, `6.6` or `127.1` are never "resolved" (the C resolver would make them
    /// 6.0.0.6 and 127.0.0.1).
    Resolve,
    /// `usedns = no`: a name is no failure and no regex hit (fail2ban's `textToIp` without
    /// DNS finds only plain addresses).
    Drop,
}

/// Ids of failures without an address kept for the report's note.
pub const WITHOUT_ADDRESS_EXAMPLES: usize = 3;

/// Most names a worker remembers the addresses of; the memory is cleared past it, so a log
/// of endless distinct names cannot grow it without bound.
const MAX_CACHED_NAMES: usize = 10_000;

/// A worker's resolved names.
type NameCache = std::collections::HashMap<String, Vec<std::net::IpAddr>>;

/// Where a remembered line lives, so long listings never hold every line in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRef {
    pub offset: u64,
    pub len: u32,
}

/// Counts as fail2ban-regex reports them.
#[derive(Debug, Clone, Default)]
pub struct ScanStats {
    pub tested: u64,
    pub matched: u64,
    pub ignored: u64,
    pub missed: u64,
    pub prefregex_matched: u64,
    /// Failures reported without an address ([`has_address`]): `banhammer run` counts
    /// them but never bans them.
    pub without_address: u64,
    /// The ids of the first few of them ([`WITHOUT_ADDRESS_EXAMPLES`]), cut to 64 characters.
    pub without_address_examples: Vec<String>,
    pub failregex_hits: Vec<u64>,
    pub ignore_hits: Vec<u64>,
    pub date_hits: Vec<u64>,
    pub matched_lines: Vec<LineRef>,
    pub missed_lines: Vec<LineRef>,
    pub ignored_lines: Vec<LineRef>,
}

impl ScanStats {
    fn new(filter: &Filter) -> Self {
        ScanStats {
            failregex_hits: vec![0; filter.failregex_count()],
            ignore_hits: vec![0; filter.ignoreregex_count()],
            date_hits: vec![0; filter.date_detector().template_count()],
            ..Default::default()
        }
    }

    /// Fold a later chunk's counts into these, keeping line lists within their limits.
    fn absorb(&mut self, other: ScanStats, opts: &ScanOptions) {
        fn add(a: &mut [u64], b: &[u64]) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        fn append(dst: &mut Vec<LineRef>, src: Vec<LineRef>, keep: Keep) {
            for l in src {
                if keep.wants(dst.len() as u64 + 1) {
                    dst.push(l);
                }
            }
        }
        self.tested += other.tested;
        self.matched += other.matched;
        self.ignored += other.ignored;
        self.missed += other.missed;
        self.prefregex_matched += other.prefregex_matched;
        self.without_address += other.without_address;
        for e in other.without_address_examples {
            if self.without_address_examples.len() < WITHOUT_ADDRESS_EXAMPLES {
                self.without_address_examples.push(e);
            }
        }
        add(&mut self.failregex_hits, &other.failregex_hits);
        add(&mut self.ignore_hits, &other.ignore_hits);
        add(&mut self.date_hits, &other.date_hits);
        append(
            &mut self.matched_lines,
            other.matched_lines,
            opts.keep_matched,
        );
        append(&mut self.missed_lines, other.missed_lines, opts.keep_missed);
        append(
            &mut self.ignored_lines,
            other.ignored_lines,
            opts.keep_ignored,
        );
    }
}

/// One chunk of input: whole lines, and the offset of its first byte in the input.
struct Chunk {
    seq: u64,
    offset: u64,
    bytes: Vec<u8>,
}

/// A chunk's results: its statistics and the failures it produced, in order.
struct ChunkResult {
    seq: u64,
    /// Offset just past the chunk: how much of the input is done once it is merged.
    end: u64,
    stats: ScanStats,
    failures: Vec<Failure>,
    /// With a [`FormatFailure`]: the chunk's failures already formatted (and `failures`
    /// left empty).
    out: Vec<u8>,
    /// [`Mode::Split`]: each tested line's searches, to be merged in order.
    matches: Vec<(LineRef, LineMatches)>,
    /// [`Mode::Split`]: the last date the worker saw in the chunk.
    last_date: Option<LastDate>,
}

/// Read the input into chunks that end at a line end and feed them to `send`. Buffers
/// come from `fresh` (recycled ones when workers have returned them), so a long scan
/// neither allocates nor zeroes a buffer per chunk.
fn read_chunks(
    input: &Input,
    chunk_bytes: usize,
    mut fresh: impl FnMut() -> Vec<u8>,
    mut send: impl FnMut(Chunk) -> bool,
) -> Result<()> {
    let path = match input {
        Input::Text(text) => {
            send(Chunk {
                seq: 0,
                offset: 0,
                bytes: text.as_bytes().to_vec(),
            });
            return Ok(());
        }
        Input::File(path) => path,
    };
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut carry: Vec<u8> = Vec::new();
    let mut offset = 0u64;
    let mut seq = 0u64;
    loop {
        let mut buf = fresh();
        buf.clear();
        buf.extend_from_slice(&carry);
        carry.clear();
        // read_to_end fills spare capacity without zeroing it first.
        let n = (&mut file)
            .take(chunk_bytes as u64)
            .read_to_end(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if buf.is_empty() {
            return Ok(());
        }
        if n > 0 {
            // Keep the unfinished last line for the next chunk.
            match memchr::memrchr(b'\n', &buf) {
                Some(nl) => {
                    carry.extend_from_slice(&buf[nl + 1..]);
                    buf.truncate(nl + 1);
                }
                None => {
                    carry = buf;
                    continue;
                }
            }
        }
        let len = buf.len() as u64;
        if !send(Chunk {
            seq,
            offset,
            bytes: buf,
        }) {
            return Ok(());
        }
        seq += 1;
        offset += len;
        if n == 0 && carry.is_empty() {
            return Ok(());
        }
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// How the lines of a filter may be spread over workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Chunks are independent: every worker runs whole lines.
    Stateless,
    /// Workers search lines ([`FilterRunner::match_line`]); the mlfid merge runs in order.
    Split,
    /// One worker runs whole lines in order (`maxlines > 1`).
    Sequential,
}

fn mode(filter: &Filter) -> Mode {
    if filter.maxlines() != 1 {
        Mode::Sequential
    } else if filter.uses_mlfid() {
        Mode::Split
    } else {
        Mode::Stateless
    }
}

/// Turns one failure into output bytes (`banhammer regex -o`), appended to the buffer.
pub type FormatFailure<'a> = &'a (dyn Fn(&Failure, &mut Vec<u8>) + Sync);

/// Scan `input` through `filter`, calling `on_failure` for every failure in input order.
pub fn scan(
    filter: &Filter,
    input: &Input,
    opts: &ScanOptions,
    on_failure: impl FnMut(&Failure) -> Result<()>,
    on_progress: impl FnMut(u64),
) -> Result<ScanStats> {
    scan_with(
        filter,
        input,
        opts,
        None,
        on_failure,
        |_| Ok(()),
        on_progress,
    )
}

/// Scan `input` through `filter`, formatting every failure with `format` and handing the
/// bytes to `write` in input order. The formatting runs where the failure is found (on the
/// workers, except for the in-order merge of multi-line-id filters): the thread that puts
/// chunks back in order then only copies bytes, and a failure is freed by the thread that
/// allocated it (cross-thread frees contend on the allocator's arena lock).
pub fn scan_formatted(
    filter: &Filter,
    input: &Input,
    opts: &ScanOptions,
    format: FormatFailure<'_>,
    write: impl FnMut(&[u8]) -> Result<()>,
    on_progress: impl FnMut(u64),
) -> Result<ScanStats> {
    scan_with(
        filter,
        input,
        opts,
        Some(format),
        |_| Ok(()),
        write,
        on_progress,
    )
}

/// [`scan`] and [`scan_formatted`]: failures go to `on_failure`, or, with `format`, to
/// `on_output` as bytes.
fn scan_with(
    filter: &Filter,
    input: &Input,
    opts: &ScanOptions,
    format: Option<FormatFailure<'_>>,
    mut on_failure: impl FnMut(&Failure) -> Result<()>,
    mut on_output: impl FnMut(&[u8]) -> Result<()>,
    mut on_progress: impl FnMut(u64),
) -> Result<ScanStats> {
    let mode = mode(filter);
    let chunk_bytes = if mode == Mode::Split {
        SPLIT_CHUNK_BYTES
    } else {
        CHUNK_BYTES
    };
    let threads = if mode == Mode::Sequential {
        1
    } else if opts.threads > 0 {
        opts.threads
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4)
    };
    let mut total = ScanStats::new(filter);

    std::thread::scope(|s| -> Result<()> {
        let (work_tx, work_rx) = mpsc::sync_channel::<Chunk>(threads * IN_FLIGHT_PER_WORKER);
        let (done_tx, done_rx) = mpsc::sync_channel::<ChunkResult>(threads * IN_FLIGHT_PER_WORKER);
        // Workers hand their chunk buffers back to the reader for reuse.
        let (free_tx, free_rx) = mpsc::sync_channel::<Vec<u8>>(threads * IN_FLIGHT_PER_WORKER);
        let work_rx = std::sync::Arc::new(std::sync::Mutex::new(work_rx));
        for _ in 0..threads {
            let work_rx = work_rx.clone();
            let done_tx = done_tx.clone();
            let free_tx = free_tx.clone();
            s.spawn(move || {
                let mut worker = Worker::new(filter, opts, mode, format);
                loop {
                    // The lock is held only to take the next chunk, never while working.
                    let next = match work_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(chunk) = next else { return };
                    let (result, buffer) = worker.process(chunk);
                    let _ = free_tx.try_send(buffer);
                    if done_tx.send(result).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        drop(free_tx);
        let fresh = move || {
            free_rx
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(chunk_bytes + (64 << 10)))
        };
        let reader =
            s.spawn(move || read_chunks(input, chunk_bytes, fresh, |c| work_tx.send(c).is_ok()));

        // Put results back in input order.
        let mut next_seq = 0u64;
        let mut waiting: BTreeMap<u64, ChunkResult> = BTreeMap::new();
        let mut merger = Merger {
            runner: filter.runner(),
            process: process_options(opts),
            dns_cache: NameCache::new(),
            format,
        };
        let mut failed: Option<anyhow::Error> = None;
        for result in done_rx.iter() {
            waiting.insert(result.seq, result);
            while let Some(mut r) = waiting.remove(&next_seq) {
                next_seq += 1;
                if mode == Mode::Split {
                    merger.merge(&mut r, opts);
                }
                if failed.is_none() && !r.out.is_empty() {
                    if let Err(e) = on_output(&r.out) {
                        failed = Some(e);
                    }
                }
                if failed.is_none() {
                    for f in &r.failures {
                        if let Err(e) = on_failure(f) {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                total.absorb(r.stats, opts);
                on_progress(r.end);
            }
            if failed.is_some() {
                // Stop the reader and workers: dropping the receiver ends them.
                break;
            }
        }
        drop(done_rx);
        match reader.join() {
            Ok(r) => r?,
            Err(_) => anyhow::bail!("the reader thread stopped unexpectedly"),
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })?;
    Ok(total)
}

/// Per-thread state: a filter runner (its date detector and multi-line state).
struct Worker<'f> {
    filter: &'f Filter,
    runner: FilterRunner<'f>,
    opts: &'f ScanOptions,
    mode: Mode,
    process: ProcessOptions,
    /// Only when failures alone are wanted may whole stretches of input be skipped
    /// between prefilter hits; the report needs every line (date hits, prefregex
    /// counts), and the runner applies the same prefilter per line itself.
    skip_with: Option<&'f banhammer_core::filter::Prefilter>,
    /// Names already resolved by this worker.
    dns_cache: NameCache,
    /// Format failures here rather than passing them on (see [`scan_formatted`]).
    format: Option<FormatFailure<'f>>,
}

impl<'f> Worker<'f> {
    fn new(
        filter: &'f Filter,
        opts: &'f ScanOptions,
        mode: Mode,
        format: Option<FormatFailure<'f>>,
    ) -> Self {
        // fail2ban checks ignoreregex on every line first when there are fewer
        // ignoreregexes than failregexes - 2; skipping lines is still sound then, since
        // only failures are reported and an ignored line yields none.
        let skip_with = if opts.failures_only {
            filter.prefilter()
        } else {
            None
        };
        let mut runner = filter.runner();
        runner.set_lean(opts.lean_failures);
        Worker {
            filter,
            runner,
            opts,
            mode,
            process: process_options(opts),
            skip_with,
            dns_cache: NameCache::new(),
            format,
        }
    }

    /// Process one chunk; gives back its results and its buffer (for reuse).
    fn process(&mut self, chunk: Chunk) -> (ChunkResult, Vec<u8>) {
        let mut stats = ScanStats::new(self.filter);
        let mut failures = Vec::new();
        let mut out = Vec::new();
        let mut matches = Vec::new();
        let split = self.mode == Mode::Split;
        if split {
            // the dates of other chunks are the merger's business
            self.runner.take_last_date();
        }
        let bytes = &chunk.bytes;
        // Validate the whole chunk once: in the usual all-UTF-8 case lines are then sliced
        // without checking each one again (lossy decoding only for chunks that need it).
        // When the prefilter skips lines unseen, only the lines looked at are validated.
        let valid = match self.skip_with {
            Some(_) => None,
            None => std::str::from_utf8(bytes).ok(),
        };
        let mut pos = 0usize;
        while pos < bytes.len() {
            if let Some(pf) = self.skip_with {
                // Jump to the start of the next line holding one of the literals.
                match pf.find(&bytes[pos..]) {
                    Some(hit) => {
                        let at = pos + hit;
                        pos =
                            memchr::memrchr(b'\n', &bytes[pos..at]).map_or(pos, |nl| pos + nl + 1);
                    }
                    None => break,
                }
            }
            let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |e| pos + e);
            let raw = &bytes[pos..end];
            let line_start = pos;
            let line_ref = LineRef {
                offset: chunk.offset + pos as u64,
                len: raw.len() as u32,
            };
            pos = end + 1;
            let raw = trim_line_end(raw);
            if raw.is_empty() || raw[0] == b'#' {
                continue;
            }
            let text: std::borrow::Cow<'_, str> = match valid {
                // `raw` lies on line boundaries (ASCII bytes) of a valid UTF-8 chunk.
                Some(v) => v
                    .get(line_start..line_start + raw.len())
                    .map_or_else(|| String::from_utf8_lossy(raw), Into::into),
                None => std::str::from_utf8(raw)
                    .map_or_else(|_| String::from_utf8_lossy(raw), Into::into),
            };
            stats.tested += 1;
            if split {
                matches.push((line_ref, self.runner.match_line(&text, &self.process)));
                continue;
            }
            let mut r = self.runner.process_line(&text, &self.process);
            settle_names(&mut self.dns_cache, &mut r, self.opts.names);
            account(&mut stats, &mut failures, r, line_ref, self.opts);
            format_into(self.format, &mut failures, &mut out);
        }
        let end = chunk.offset + bytes.len() as u64;
        (
            ChunkResult {
                seq: chunk.seq,
                end,
                stats,
                failures,
                out,
                matches,
                last_date: if split {
                    self.runner.take_last_date()
                } else {
                    None
                },
            },
            chunk.bytes,
        )
    }
}

/// With a formatter, move `failures` into `out` as bytes (failures are then dropped here,
/// by the thread that made them).
fn format_into(format: Option<FormatFailure<'_>>, failures: &mut Vec<Failure>, out: &mut Vec<u8>) {
    if let Some(format) = format {
        for f in failures.drain(..) {
            format(&f, out);
        }
    }
}

/// Settle the failures whose host is a DNS name as `names` says: a plain address stays as
/// that address, a name becomes one failure per resolved address, or none (its regex hit
/// taken back, so the line counts as missed when nothing else matched it).
fn settle_names(cache: &mut NameCache, r: &mut LineResult, names: Names) {
    settle_names_with(cache, r, names, crate::dns::resolve);
}

/// [`settle_names`] with the resolver supplied (tests count what reaches it).
fn settle_names_with(
    cache: &mut NameCache,
    r: &mut LineResult,
    names: Names,
    mut resolve: impl FnMut(&str) -> Vec<std::net::IpAddr>,
) {
    if names == Names::Raw || !r.failures.iter().any(|f| f.kind == HostKind::Dns) {
        return;
    }
    let usedns = match names {
        Names::Resolve => UseDns::Warn,
        Names::Drop | Names::Raw => UseDns::No,
    };
    let mut out = Vec::with_capacity(r.failures.len());
    for f in std::mem::take(&mut r.failures) {
        if f.kind != HostKind::Dns {
            out.push(f);
            continue;
        }
        let ips: Vec<std::net::IpAddr> = match failure_target(&f, usedns) {
            FailureTarget::Key(FailureKey::Ip(ip)) => vec![ip],
            FailureTarget::Resolve(name) => {
                if cache.len() >= MAX_CACHED_NAMES && !cache.contains_key(name) {
                    cache.clear();
                }
                cache
                    .entry(name.to_string())
                    .or_insert_with(|| resolve(name))
                    .clone()
            }
            _ => Vec::new(),
        };
        if ips.is_empty() {
            if let Some(i) = r.failregex_hits.iter().position(|&h| h == f.failregex) {
                r.failregex_hits.remove(i);
            }
            continue;
        }
        for ip in ips {
            let mut g = f.clone();
            g.kind = if ip.is_ipv6() {
                HostKind::Ip6
            } else {
                HostKind::Ip4
            };
            g.fid = ip.to_string();
            out.push(g);
        }
    }
    r.failures = out;
}

/// The address of a settled failure (names already resolved or dropped by
/// [`settle_names`]): its canonical address or declared network, as `banhammer run` would
/// ban it; `None` for a failure without one.
pub fn address_of(f: &Failure) -> Option<FailureKey> {
    match failure_target(f, UseDns::Raw) {
        FailureTarget::Key(k) => Some(k),
        _ => None,
    }
}

/// Whether [`address_of`] has an answer.
pub fn has_address(f: &Failure) -> bool {
    address_of(f).is_some()
}

/// Count one line's result into `stats` and keep its failures.
fn account(
    stats: &mut ScanStats,
    failures: &mut Vec<Failure>,
    r: LineResult,
    line_ref: LineRef,
    opts: &ScanOptions,
) {
    if let Some(hit) = r.date {
        if let Some(n) = stats.date_hits.get_mut(hit.template) {
            *n += 1;
        }
    }
    if r.prefregex_matched {
        stats.prefregex_matched += 1;
    }
    for &i in &r.failregex_hits {
        stats.failregex_hits[i] += 1;
    }
    for &i in &r.ignore_hits {
        stats.ignore_hits[i] += 1;
    }
    let (kind, keep, list) = if r.ignored {
        (
            &mut stats.ignored,
            opts.keep_ignored,
            &mut stats.ignored_lines,
        )
    } else if !r.failures.is_empty() || r.pending > 0 {
        // the report's count (`-o` output does not use it)
        let check = if opts.failures_only {
            &[][..]
        } else {
            &r.failures[..]
        };
        for f in check.iter().filter(|f| !has_address(f)) {
            stats.without_address += 1;
            if stats.without_address_examples.len() < WITHOUT_ADDRESS_EXAMPLES {
                stats
                    .without_address_examples
                    .push(f.fid.chars().take(64).collect());
            }
        }
        failures.extend(r.failures);
        (
            &mut stats.matched,
            opts.keep_matched,
            &mut stats.matched_lines,
        )
    } else {
        (&mut stats.missed, opts.keep_missed, &mut stats.missed_lines)
    };
    *kind += 1;
    if keep.wants(*kind) {
        list.push(line_ref);
    }
}

fn process_options(opts: &ScanOptions) -> ProcessOptions {
    ProcessOptions {
        check_all: opts.check_all,
        now: opts.now,
    }
}

/// [`Mode::Split`]: the runner holding the cross-line state, fed chunks in input order.
struct Merger<'f> {
    runner: FilterRunner<'f>,
    process: ProcessOptions,
    dns_cache: NameCache,
    format: Option<FormatFailure<'f>>,
}

impl Merger<'_> {
    /// Turn a chunk's searched lines into its statistics and failures.
    fn merge(&mut self, r: &mut ChunkResult, opts: &ScanOptions) {
        for (line_ref, m) in std::mem::take(&mut r.matches) {
            let mut lr = self.runner.merge(m, &self.process);
            settle_names(&mut self.dns_cache, &mut lr, opts.names);
            account(&mut r.stats, &mut r.failures, lr, line_ref, opts);
            format_into(self.format, &mut r.failures, &mut r.out);
        }
        if let Some(d) = r.last_date.take() {
            self.runner.set_last_date(d);
        }
    }
}

/// fail2ban strips `\r` and `\n` from the end of each line (Python `rstrip('\r\n')`).
fn trim_line_end(mut raw: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n'] = raw {
        raw = rest;
    }
    raw
}

/// Read remembered lines back from the input, for listings.
pub fn read_lines(input: &Input, refs: &[LineRef]) -> Result<Vec<String>> {
    match input {
        Input::Text(text) => Ok(refs
            .iter()
            .map(|r| {
                let start = r.offset as usize;
                let raw = text
                    .as_bytes()
                    .get(start..start + r.len as usize)
                    .unwrap_or_default();
                String::from_utf8_lossy(trim_line_end(raw)).into_owned()
            })
            .collect()),
        Input::File(path) => {
            let mut file =
                File::open(path).with_context(|| format!("cannot reopen {}", path.display()))?;
            let mut out = Vec::with_capacity(refs.len());
            let mut buf = Vec::new();
            for r in refs {
                file.seek(SeekFrom::Start(r.offset))?;
                buf.resize(r.len as usize, 0);
                let n = read_full(&mut file, &mut buf)?;
                out.push(String::from_utf8_lossy(trim_line_end(&buf[..n])).into_owned());
            }
            Ok(out)
        }
    }
}

/// The size of a file, for the progress display.
pub fn input_len(input: &Input) -> Option<u64> {
    match input {
        Input::File(p) => Path::new(p).metadata().ok().map(|m| m.len()),
        Input::Text(t) => Some(t.len() as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_only_line_end_characters() {
        assert_eq!(trim_line_end(b"abc \r\n"), b"abc ");
        assert_eq!(trim_line_end(b"\r\n"), b"");
        assert_eq!(trim_line_end(b" x"), b" x");
    }

    fn host_filter(usedns: UseDns) -> Filter {
        Filter::new(&banhammer_core::filter::FilterConfig {
            prefregex: None,
            failregex: vec!["^fail from <HOST>$".to_string()],
            ignoreregex: vec![],
            maxlines: 1,
            datepattern: None,
            usedns,
            timezone: jiff::tz::TimeZone::UTC,
            now: 1_700_000_000,
        })
        .expect("filter compiles")
    }

    /// What `banhammer regex` reports for `fail from HOST` lines: the failures' `ip` (or
    /// `-` for none) and the names its resolver was asked about.
    fn settled(hosts: &[&str], names: Names, cache: &mut NameCache) -> (Vec<String>, Vec<String>) {
        let f = host_filter(UseDns::Warn);
        let mut runner = f.runner();
        let opts = ProcessOptions {
            check_all: true,
            now: 1_700_000_000.0,
        };
        let mut asked = Vec::new();
        let mut ips = Vec::new();
        for h in hosts {
            let mut r = runner.process_line(&format!("fail from {h}"), &opts);
            settle_names_with(cache, &mut r, names, |n| {
                asked.push(n.to_string());
                match n {
                    "mail.example.com" => vec![std::net::IpAddr::from([192, 0, 2, 7])],
                    _ => Vec::new(),
                }
            });
            assert_eq!(
                r.failregex_hits.len(),
                r.failures.len(),
                "{h}: hits follow failures"
            );
            for fl in &r.failures {
                ips.push(address_of(fl).map_or_else(|| "-".to_string(), |k| k.to_string()));
            }
        }
        (ips, asked)
    }

    /// The regex command's side of the finding: `6.6` and friends are never handed to the
    /// resolver (fail2ban-regex prints 6.0.0.6 for `6.6`), non-canonical addresses are
    /// failures without an address, and only what the resolver answers becomes one.
    #[test]
    fn regex_never_resolves_a_partial_address() {
        let hosts = [
            "6.6",
            "127.1",
            "0x7f000001",
            "1.2.3.256",
            "001.002.003.013",
            "192.0.2.9",
            "mail.example.com",
            "nothing.example",
        ];
        let (ips, asked) = settled(&hosts, Names::Resolve, &mut NameCache::new());
        assert_eq!(asked, ["mail.example.com", "nothing.example"]);
        assert_eq!(ips, ["-", "-", "192.0.2.9", "192.0.2.7"]);
        let (ips, asked) = settled(&hosts, Names::Drop, &mut NameCache::new());
        assert!(asked.is_empty());
        assert_eq!(ips, ["-", "-", "192.0.2.9"]);
        let (ips, asked) = settled(&hosts, Names::Raw, &mut NameCache::new());
        assert!(asked.is_empty());
        assert_eq!(ips, ["-", "-", "-", "-", "-", "192.0.2.9", "-", "-"]);
    }

    /// A log of endless distinct names cannot grow a worker's name memory without bound.
    #[test]
    fn the_name_cache_stays_bounded() {
        let mut cache = NameCache::new();
        let names: Vec<String> = (0..MAX_CACHED_NAMES + 10)
            .map(|i| format!("h{i}.example"))
            .collect();
        let hosts: Vec<&str> = names.iter().map(String::as_str).collect();
        let (_, asked) = settled(&hosts, Names::Resolve, &mut cache);
        assert_eq!(asked.len(), names.len());
        assert!(cache.len() <= MAX_CACHED_NAMES, "{}", cache.len());
        // a name seen again is answered from memory
        let (_, asked) = settled(&["h10009.example"], Names::Resolve, &mut cache);
        assert!(asked.is_empty());
    }

    #[test]
    fn keep_limits() {
        assert!(Keep::First(2).wants(2));
        assert!(!Keep::First(2).wants(3));
        assert!(!Keep::Nothing.wants(1));
        assert!(Keep::All.wants(1_000_000));
    }

    #[test]
    fn chunks_end_at_line_ends_and_cover_the_input() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("log");
        let mut text = String::new();
        for i in 0..300_000 {
            text.push_str(&format!("line number {i} with some padding text\n"));
        }
        text.push_str("last line without newline");
        std::fs::write(&path, &text)?;
        let mut rebuilt = Vec::new();
        let mut offsets = Vec::new();
        read_chunks(&Input::File(path), CHUNK_BYTES, Vec::new, |c| {
            assert!(c.bytes.ends_with(b"\n") || c.bytes.ends_with(b"newline"));
            offsets.push((c.offset, c.bytes.len()));
            rebuilt.extend_from_slice(&c.bytes);
            true
        })?;
        assert!(
            offsets.len() > 2,
            "a 12 MB input should take several chunks"
        );
        assert_eq!(rebuilt, text.as_bytes());
        for w in offsets.windows(2) {
            assert_eq!(w[0].0 + w[0].1 as u64, w[1].0);
        }
        Ok(())
    }
}
