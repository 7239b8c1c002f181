//! Per-source matching state and fail2ban's `processLine`/`findFailure` algorithm.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use super::failset::Candidates;
use super::{CompiledRegex, Filter, UseDns};
use crate::date::{DateDetector, DateHit};
use crate::pyregex::{CaptureCache, Spans};

/// fail2ban's mlfid cache: `Utils.Cache(maxCount=100, maxTime=5*60)`.
const MLFID_MAX_COUNT: usize = 100;
const MLFID_MAX_TIME: f64 = 300.0;
/// A line without a date reuses the last date seen if it is younger than this.
const LAST_DATE_MAX_AGE: f64 = 60.0;

/// Options of one [`FilterRunner::process_line`] call.
#[derive(Debug, Clone, Copy)]
pub struct ProcessOptions {
    /// Try every failregex and report every hit (fail2ban-regex's default, the sample tests);
    /// the daemon stops at the first matching failregex. With `false`, pending failures stop
    /// the search like fail2ban's `ignorePending`.
    pub check_all: bool,
    /// Current time: for lines without a date and the mlfid cache's expiry.
    pub now: f64,
}

/// Name of a group in a failure: shared with the compiled pattern, so that filling a
/// failure's groups copies no name.
pub type GroupName = std::sync::Arc<str>;

/// Value of a named group in a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupValue {
    /// The group did not participate.
    None,
    /// Captured text.
    Str(String),
    /// A set of values (`users`).
    Set(BTreeSet<String>),
    /// Values collected by `tuple_<x>` groups.
    Tuple(Vec<Option<String>>),
}

impl GroupValue {
    /// Python truthiness.
    fn truthy(&self) -> bool {
        match self {
            GroupValue::None => false,
            GroupValue::Str(s) => !s.is_empty(),
            GroupValue::Set(s) => !s.is_empty(),
            GroupValue::Tuple(t) => !t.is_empty(),
        }
    }

    /// The text, if a plain string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GroupValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// What the ticket id of a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// An IPv4 address (group `ip4`).
    Ip4,
    /// An IPv6 address (group `ip6`).
    Ip6,
    /// A host name to be resolved according to `usedns` (group `dns`).
    Dns,
    /// An opaque id (`fid`, or a host name with `usedns = raw`).
    Id,
    /// An address with a prefix length (group `cidr`).
    Subnet {
        /// The prefix length, `None` when the captured text is not a canonical one (ASCII
        /// decimal without leading zeros, at most 128): such a failure has no address.
        cidr: Option<u8>,
    },
}

/// One failure found in a line.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Ticket id as fail2ban builds it: the `fid` group when present and different from the
    /// host, else the host (`ip4` → `ip6` → `dns`), else `fid`. Raw text, not normalised.
    pub fid: String,
    /// The host (`ip4` → `ip6` → `dns`) as matched, when there is one.
    pub host: Option<String>,
    /// What `fid` is.
    pub kind: HostKind,
    /// Time of the failure: the line's date, else [`ProcessOptions::now`].
    pub time: f64,
    /// Every named group (incl. merged mlfid data, `users`, and `ip` when `fid` is not the host).
    pub groups: BTreeMap<GroupName, GroupValue>,
    /// Full original lines of the failure.
    pub matches: Vec<String>,
    /// Index of the failregex that produced it.
    pub failregex: usize,
}

/// Outcome of one line.
#[derive(Debug, Default)]
pub struct LineResult {
    /// The date found in the line.
    pub date: Option<DateHit>,
    /// The prefregex matched.
    pub prefregex_matched: bool,
    /// Failregexes that matched, in order (as fail2ban-regex counts them: pending and `nofail`
    /// results included).
    pub failregex_hits: Vec<usize>,
    /// Ignoreregexes that matched.
    pub ignore_hits: Vec<usize>,
    /// The line counts as ignored for fail2ban-regex (an ignoreregex or a `nofail` hit).
    pub ignored: bool,
    /// Failures to report (pending and `nofail` ones are not).
    pub failures: Vec<Failure>,
    /// Results without an id yet (a multi-line failure waiting for its host). They are
    /// not failures, but fail2ban-regex's report counts their lines as matched.
    pub pending: usize,
}

/// A line's order-independent results (see [`FilterRunner::match_line`]).
#[derive(Debug)]
pub struct LineMatches(Matches);

#[derive(Debug)]
enum Matches {
    /// A dated line: searched, waiting for the mlfid merge.
    Ready {
        res: LineResult,
        time: f64,
        hits: Vec<FailHit>,
    },
    /// A line without a usable date, processed entirely at the merge: the date hit and the
    /// last date seen before it by the matching runner, if any.
    Deferred {
        line: String,
        hit: Option<DateHit>,
        last: Option<LastDate>,
    },
}

/// The last date a runner saw and its text (for lines without a date).
#[derive(Debug, Clone)]
pub struct LastDate {
    time: f64,
    text: String,
}

/// One buffered line: full text and the cut-out date span (`before+date+after`).
#[derive(Debug, Clone)]
pub(super) struct TupleLine {
    pub(super) text: String,
    ds: usize,
    de: usize,
}

impl TupleLine {
    /// Make this `before + date + after` with the date at `[ds, de)`, reusing the allocation.
    fn set(&mut self, before_date: &str, rest: &str, ds: usize, de: usize) {
        self.text.clear();
        self.text.push_str(before_date);
        self.text.push_str(rest);
        self.ds = ds;
        self.de = de;
    }
    fn push_stripped(&self, out: &mut String) {
        out.push_str(self.text.get(..self.ds).unwrap_or(""));
        out.push_str(self.text.get(self.de..).unwrap_or(""));
    }
    /// Whether the line without its date is `s` (no allocation).
    fn stripped_eq(&self, s: &str) -> bool {
        let a = self.text.get(..self.ds).unwrap_or("");
        let b = self.text.get(self.de..).unwrap_or("");
        s.len() == a.len() + b.len() && s.starts_with(a) && s.ends_with(b)
    }
}

/// fail2ban's `_tupleLinesBuf`: lines without their date, joined by `\n`, plus `\n`; written
/// into `out` (cleared first) so that the caller can reuse its allocation.
fn render_into(lines: &[TupleLine], out: &mut String) {
    out.clear();
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        l.push_stripped(out);
    }
    out.push('\n');
}

/// fail2ban's `_tupleLinesBuf`, as a new string.
fn render(lines: &[TupleLine]) -> String {
    let mut s = String::new();
    render_into(lines, &mut s);
    s
}

/// The failure dict of fail2ban (groups plus bookkeeping keys).
#[derive(Debug, Clone, Default)]
struct FailData {
    groups: BTreeMap<GroupName, GroupValue>,
    /// A lean runner's failure (see [`FilterRunner::set_lean`]): the groups `apply_hits`
    /// reads, in place of `groups` (then empty). Boxed: `FailData` is moved around a lot on
    /// the mlfid path, where a larger struct cost 3 % more instructions (sshd) in copies.
    lean: Option<Box<LeanGroups>>,
    matches: Option<Vec<String>>,
    nofail_matches: Option<Vec<String>>,
    mlfpending: bool,
}

impl FailData {
    fn truthy(&self, k: &str) -> bool {
        match &self.lean {
            Some(l) => l.get(k).is_some_and(|v| !v.is_empty()),
            None => self.groups.get(k).is_some_and(GroupValue::truthy),
        }
    }
    fn str(&self, k: &str) -> Option<&str> {
        match &self.lean {
            Some(l) => l.get(k),
            None => self.groups.get(k).and_then(GroupValue::as_str),
        }
    }
    /// [`Self::str`], owned: moved out of a lean failure (nothing reads its host group once
    /// the host is taken), copied from a full one (its groups go into the `Failure`).
    fn owned_str(&mut self, k: &str) -> Option<String> {
        match &mut self.lean {
            Some(l) => l.take(k),
            None => self.str(k).map(str::to_string),
        }
    }
}

/// The groups that decide a failure without an mlfid (its id, host, kind and `nofail`), by
/// name: what a lean runner keeps of a match instead of the whole `groupdict` (building and
/// dropping that map was a third of the cost of a matching line).
pub(super) const LEAN_NAMES: [&str; 6] = ["fid", "ip4", "ip6", "dns", "cidr", "nofail"];

/// The groups the mlfid merge and the failure built from it read (the prefregex's `content`
/// included, which becomes the line buffer): all that a lean runner keeps of a match whose
/// failure goes through the merge.
pub(super) const DECIDING_NAMES: [&str; 11] = [
    "fid",
    "ip4",
    "ip6",
    "dns",
    "cidr",
    "nofail",
    "mlfid",
    "mlfforget",
    "mlfgained",
    "user",
    "content",
];

/// Captured text of the [`LEAN_NAMES`] groups (`None`: no such group, or it did not
/// participate — the same to every reader).
#[derive(Debug, Clone, Default)]
struct LeanGroups([Option<String>; LEAN_NAMES.len()]);

impl LeanGroups {
    /// The groups at `rx.lean` of the match in `spans`.
    fn of(rx: &CompiledRegex, buf: &str, spans: &Spans) -> Self {
        LeanGroups(rx.lean.map(|i| {
            let (a, b) = spans.get(i?)?;
            buf.get(a..b).map(str::to_string)
        }))
    }
    fn get(&self, name: &str) -> Option<&str> {
        let i = LEAN_NAMES.iter().position(|n| *n == name)?;
        self.0.get(i)?.as_deref()
    }
    fn take(&mut self, name: &str) -> Option<String> {
        let i = LEAN_NAMES.iter().position(|n| *n == name)?;
        self.0.get_mut(i)?.take()
    }
}

struct CacheEntry {
    key: String,
    /// [`key_hash`] of `key`: compared first, so that a lookup among up to 100 keys of equal
    /// length (syslog prefixes) does not run 100 string comparisons.
    hash: u64,
    expires: f64,
    data: FailData,
}

impl CacheEntry {
    fn is(&self, key: &str, hash: u64) -> bool {
        self.hash == hash && self.key == key
    }
}

/// FNV-1a: tiny and good enough to tell cache keys apart before comparing them.
fn key_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// FIFO cache with TTL, as fail2ban's `Utils.Cache` (clocked by `ProcessOptions::now`).
///
/// Entries stay in insertion order; a removed entry leaves a hole (`None`) instead of shifting
/// the ones after it (the cache is full, 100 entries, on a busy log, and removals — every
/// `F-MLFFORGET` line — are frequent). Holes at the front are dropped as they come, and all of
/// them once they outnumber the entries.
#[derive(Default)]
struct MlfidCache {
    entries: std::collections::VecDeque<Option<CacheEntry>>,
    /// Entries that are not holes.
    live: usize,
}

impl MlfidCache {
    /// Index of the entry for `key`.
    fn find(&self, key: &str) -> Option<usize> {
        let h = key_hash(key);
        self.entries
            .iter()
            .position(|e| e.as_ref().is_some_and(|e| e.is(key, h)))
    }

    /// The live entry at `p` (an index from [`Self::find`]).
    fn at(&mut self, p: usize) -> Option<&mut CacheEntry> {
        self.entries.get_mut(p)?.as_mut()
    }

    fn remove_at(&mut self, p: usize) -> Option<CacheEntry> {
        let e = self.entries.get_mut(p)?.take()?;
        self.live -= 1;
        while matches!(self.entries.front(), Some(None)) {
            self.entries.pop_front();
        }
        if self.entries.len() > 2 * self.live + 16 {
            self.entries.retain(Option::is_some);
        }
        Some(e)
    }

    fn position(&mut self, key: &str, now: f64) -> Option<usize> {
        let p = self.find(key)?;
        if self.at(p)?.expires > now {
            Some(p)
        } else {
            self.remove_at(p);
            None
        }
    }

    fn set(&mut self, key: &str, data: FailData, now: f64) {
        if let Some(e) = self.find(key).and_then(|p| self.at(p)) {
            e.data = data;
            e.expires = now + MLFID_MAX_TIME;
            return;
        }
        if self.live >= MLFID_MAX_COUNT {
            // drop from the front until an unexpired entry went and there is room
            while let Some(front) = self.entries.pop_front() {
                let Some(e) = front else {
                    continue;
                };
                self.live -= 1;
                if e.expires > now && self.live < MLFID_MAX_COUNT {
                    break;
                }
            }
        }
        self.entries.push_back(Some(CacheEntry {
            key: key.to_string(),
            hash: key_hash(key),
            expires: now + MLFID_MAX_TIME,
            data,
        }));
        self.live += 1;
    }

    /// Write back the final state of an aliased entry (Python mutates the cached dict in place).
    fn update(&mut self, key: &str, data: &FailData) {
        if let Some(e) = self.find(key).and_then(|p| self.at(p)) {
            e.data = data.clone();
        }
    }

    fn unset(&mut self, key: &str) {
        if let Some(p) = self.find(key) {
            self.remove_at(p);
        }
    }
}

/// A successful search (its group spans are in [`Scratch::spans`]): which lines of the
/// original buffer it consumed.
enum Hit {
    /// All of them, leaving none (a buffer of one line: the single-line case, no allocation).
    All,
    /// The lines consumed, and the rest (which stays in the line buffer).
    Split {
        matched: Vec<TupleLine>,
        unmatched: Vec<TupleLine>,
    },
}

impl Hit {
    fn matched<'a>(&'a self, org: &'a [TupleLine]) -> &'a [TupleLine] {
        match self {
            Hit::All => org,
            Hit::Split { matched, .. } => matched,
        }
    }
    fn unmatched(&self) -> Vec<TupleLine> {
        match self {
            Hit::All => Vec::new(),
            Hit::Split { unmatched, .. } => unmatched.clone(),
        }
    }
    fn matched_texts(&self, org: &[TupleLine]) -> Vec<String> {
        self.matched(org).iter().map(|l| l.text.clone()).collect()
    }
}

/// Storage reused from line to line so that the hot path does not allocate: taken out of the
/// runner for the duration of one line (see [`FilterRunner::match_buffer`]).
#[derive(Default)]
struct Scratch {
    /// The match buffer (fail2ban's `_tupleLinesBuf` of the current line buffer).
    buf: String,
    /// The current line, when `maxlines == 1` (its text is rewritten, not reallocated).
    single: Vec<TupleLine>,
    /// Group spans of the last search.
    spans: Spans,
    /// Capture storage of the prefregex.
    pref: CaptureCache,
    /// Capture storage of each failregex.
    fail: Vec<CaptureCache>,
    /// Search storage of the filter's failregex set, if it has one.
    // boxed: a meta::Cache is large
    candidates: Option<Box<Candidates>>,
    /// See [`FilterRunner::set_lean`].
    lean: bool,
}

impl Scratch {
    /// A new scratch space for searches with `filter`.
    fn for_filter(filter: &Filter) -> Box<Scratch> {
        Box::new(Scratch {
            buf: String::with_capacity(256),
            fail: filter
                .failregex
                .iter()
                .map(|_| CaptureCache::default())
                .collect(),
            candidates: filter.failset.as_ref().map(|s| Box::new(s.candidates())),
            ..Scratch::default()
        })
    }

    /// The reusable one-line buffer, holding exactly one line slot (to be `set`, then
    /// given back through `single`).
    fn take_single(&mut self) -> Vec<TupleLine> {
        let mut org = std::mem::take(&mut self.single);
        org.truncate(1);
        if org.is_empty() {
            org.push(TupleLine {
                text: String::new(),
                ds: 0,
                de: 0,
            });
        }
        org
    }
}

/// Per-source state of a [`Filter`].
pub struct FilterRunner<'f> {
    filter: &'f Filter,
    date: DateDetector,
    date_now: Option<i64>,
    /// Line buffer (`maxlines > 1` only).
    pub(super) lines: Vec<TupleLine>,
    /// Taken out while a line is matched (the matching borrows the runner too); boxed, so
    /// that taking it and putting it back moves a pointer, not the whole scratch space.
    scratch: Option<Box<Scratch>>,
    last_date: Option<f64>,
    last_time_text: String,
    cache: MlfidCache,
}

impl<'f> FilterRunner<'f> {
    pub(super) fn new(filter: &'f Filter) -> Self {
        FilterRunner {
            filter,
            date: filter.date.clone(),
            date_now: None,
            lines: Vec::new(),
            scratch: Some(Scratch::for_filter(filter)),
            last_date: None,
            last_time_text: String::new(),
            cache: MlfidCache::default(),
        }
    }

    /// Lean failures: when `true`, a failure found by a failregex that the merge of
    /// multi-line data cannot touch (no `mlfid`, `alt_`/`tuple_` or prefregex groups) carries
    /// no `groups` and no `matches`: only its id, host, kind, time and failregex, which is
    /// all that a caller printing ids and times (or only counting) needs. A failure that goes
    /// through the merge keeps only the groups the merge decides on ([`DECIDING_NAMES`]) and
    /// no `matches`. Everything else (hits, counts, which failures are found, their ids and
    /// times) is unchanged. Off by default.
    pub fn set_lean(&mut self, lean: bool) {
        if let Some(sc) = self.scratch.as_mut() {
            sc.lean = lean;
        }
    }

    /// The filter this runner runs.
    pub(super) fn filter(&self) -> &'f Filter {
        self.filter
    }

    /// What the lines seen so far changed in this runner (the date detector's order,
    /// counts and positions, the last date seen, the line buffer's length), as text: for
    /// tests that feed two runners the same lines different ways and compare. Caches whose
    /// contents never change an answer are left out.
    pub fn state_summary(&self) -> String {
        format!(
            "{} {:?} {:?} {:?} {}",
            self.date.state(),
            self.date_now,
            self.last_date,
            self.last_time_text,
            self.lines.len(),
        )
    }

    /// This runner's date detector (its template order and hits evolve with the lines seen).
    pub fn date_detector(&self) -> &DateDetector {
        &self.date
    }

    /// The date of `line` (already stripped of its line end), with the detector's clock
    /// (year inference, `%ExY`) set to `now` when that changed.
    fn detect_date(&mut self, line: &str, now: f64) -> Option<DateHit> {
        self.set_date_now(now);
        self.date.detect(line)
    }

    /// Sets the date detector's clock to `now` when that changed (see [`Self::detect_date`]).
    #[inline]
    fn set_date_now(&mut self, now: f64) {
        let now_s = now as i64;
        if self.date_now != Some(now_s) {
            self.date.set_now(now_s);
            self.date_now = Some(now_s);
        }
    }

    /// Whether [`Self::process_line`] on `line` (after [`Self::pass_ready`] for its time) —
    /// a line in which the caller found none of the literal prefilter's literals (none in
    /// `line` followed by `\n`; the literals hold no `\n`) — would find nothing and only
    /// record its date: then its date hit, with nothing recorded yet (see
    /// [`Self::record_passed`]); else `None`, nothing changed (the day cache aside), and the
    /// line must go through `process_line`.
    ///
    /// `line` is raw bytes, which `process_line` would get decoded lossily: the caller must
    /// know that the decoding holds no literal either — `line` is valid UTF-8, or the
    /// literals are ASCII ([`super::Prefilter::is_ascii`]). The date shortcut answers alike
    /// for raw and decoded bytes (see `DateDetector::peek_fast`), and the date it finds is
    /// ASCII, the same text in both.
    ///
    /// Passed over: a line of a single-line filter with a prefilter, whose date the date
    /// detector's sticky shortcut finds at its start. `process_line` would record the date
    /// (the detector's counts and positions, the last date seen, which later lines without a
    /// date use) and render the buffer `line[date end..]` + `\n`: a piece of `line` followed
    /// by `\n`, so without any literal, and the prefilter ends the line there, before any
    /// regex, the line buffer or the multi-line id cache is touched. (`process_line` strips
    /// a trailing `\r` or `\n` first; a line ending in one is left to it.)
    #[inline]
    pub(super) fn pass_over(&mut self, line: &[u8]) -> Option<DateHit> {
        if matches!(line.last(), Some(b'\r' | b'\n')) {
            return None;
        }
        self.date.peek_fast(line).filter(|h| {
            h.start == 0
                && h.end > 0
                && line.get(..h.end).is_some_and(<[u8]>::is_ascii)
                && h.has_time()
        })
    }

    /// Before the first [`Self::pass_over`] of lines processed at time `now`: whether this
    /// runner can pass lines over at all (a single-line filter with a prefilter); sets the
    /// date detector's clock as `process_line` would first thing.
    pub(super) fn pass_ready(&mut self, now: f64) -> bool {
        let f = self.filter;
        if f.maxlines > 1 || f.prefilter.is_none() {
            return false;
        }
        self.set_date_now(now);
        true
    }

    /// Records what [`Self::process_line`] would have recorded for `n` lines passed over
    /// ([`Self::pass_over`]), the last one `line` with date `hit`: the date detector's
    /// counts add up, the last date seen is the last line's. Must come before anything else
    /// is done with this runner after those `pass_over`s.
    pub(super) fn record_passed(&mut self, n: usize, line: &[u8], hit: &DateHit) {
        self.date.record_fast(n as u64, line, hit);
        // `process_detected`'s bookkeeping of a dated line (its date is ASCII: checked by
        // `pass_over`)
        self.last_time_text.clear();
        let date = line.get(..hit.end).unwrap_or_default();
        self.last_time_text
            .push_str(std::str::from_utf8(date).unwrap_or_default());
        self.last_date = Some(hit.time);
    }

    /// Process one log line (fail2ban `processLine`). A trailing `\r\n` is stripped.
    pub fn process_line(&mut self, line: &str, opts: &ProcessOptions) -> LineResult {
        let line = line.trim_end_matches(['\r', '\n']);
        let hit = self.detect_date(line, opts.now);
        self.process_detected(line, hit, opts)
    }

    /// `process_line` once the date detector has looked at the line.
    fn process_detected(
        &mut self,
        line: &str,
        hit: Option<DateHit>,
        opts: &ProcessOptions,
    ) -> LineResult {
        let mut res = LineResult::default();
        let recent = self.last_date.filter(|d| *d > opts.now - LAST_DATE_MAX_AGE);
        // (start, end) of the cut-out date; `with_last` = use ("", last date text, line)
        let (mut ds, mut de, mut with_last) = (0, 0, false);
        let mut date: Option<f64> = None;
        match &hit {
            Some(h) if h.start < h.end && valid_span(line, h.start, h.end) => {
                ds = h.start;
                de = h.end;
                if h.has_time() {
                    date = Some(h.time);
                    self.last_time_text.clear();
                    self.last_time_text.push_str(&line[ds..de]);
                    self.last_date = Some(h.time);
                } else if let Some(d) = recent {
                    // unparsable date text: like a line without date
                    with_last = true;
                    date = Some(d);
                }
            }
            Some(h) => {
                // empty date match (e.g. `{NONE}`): last known date if recent, else now
                if valid_span(line, h.start, h.start) {
                    ds = h.start;
                    de = h.start;
                }
                match recent {
                    Some(d) => {
                        with_last = true;
                        date = Some(d);
                    }
                    None => date = Some(opts.now),
                }
            }
            None => {
                if let Some(d) = recent {
                    with_last = true;
                    date = Some(d);
                }
            }
        }
        res.date = hit.map(|h| DateHit {
            start: h.start,
            end: h.end,
            time: h.time,
            template: h.template,
        });
        if with_last {
            ds = 0;
            de = 0;
        }
        self.match_buffer(line, ds, de, with_last, date, opts, res)
    }

    /// The part of [`Self::process_line`] that depends on the line alone (date detection,
    /// prefregex, failregex and ignoreregex searches), for filters with `maxlines == 1`:
    /// its result goes through [`Self::merge`], in input order, on the runner that holds
    /// the cross-line state (the mlfid cache). `process_line(l)` is `merge(match_line(l))`
    /// on one runner. A line without a usable date depends on the last date seen: it is
    /// kept whole, with the last date this runner saw (see [`Self::take_last_date`]), and
    /// processed entirely by `merge`.
    pub fn match_line(&mut self, line: &str, opts: &ProcessOptions) -> LineMatches {
        debug_assert!(self.filter.maxlines <= 1);
        let line = line.trim_end_matches(['\r', '\n']);
        let hit = self.detect_date(line, opts.now);
        let h = match hit {
            Some(h) if h.start < h.end && valid_span(line, h.start, h.end) && h.has_time() => h,
            _ => {
                return LineMatches(Matches::Deferred {
                    line: line.to_string(),
                    hit,
                    last: self.last_date.map(|time| LastDate {
                        time,
                        text: self.last_time_text.clone(),
                    }),
                })
            }
        };
        let (ds, de) = (h.start, h.end);
        self.last_time_text.clear();
        self.last_time_text.push_str(&line[ds..de]);
        self.last_date = Some(h.time);
        let mut res = LineResult {
            date: Some(h),
            ..LineResult::default()
        };
        let mut hits = Vec::new();
        let mut sc = self
            .scratch
            .take()
            .unwrap_or_else(|| Scratch::for_filter(self.filter));
        sc.buf.clear();
        sc.buf.push_str(&line[..ds]);
        sc.buf.push_str(&line[de..]);
        sc.buf.push('\n');
        if self.may_match(&sc.buf, &mut res) {
            let mut org = sc.take_single();
            org[0].set("", line, ds, de);
            search_failures(
                self.filter,
                &org,
                &mut sc,
                opts.check_all,
                &mut res,
                &mut hits,
            );
            sc.single = org;
        }
        self.scratch = Some(sc);
        // a chunk's worth of hits waits in memory for the merge: give back the room a first
        // `push` makes for four (nearly every line has one)
        hits.shrink_to_fit();
        LineMatches(Matches::Ready {
            res,
            time: h.time,
            hits,
        })
    }

    /// The order-dependent rest of a line's processing (see [`Self::match_line`]).
    pub fn merge(&mut self, m: LineMatches, opts: &ProcessOptions) -> LineResult {
        match m.0 {
            Matches::Ready {
                mut res,
                time,
                hits,
            } => {
                if !hits.is_empty() {
                    self.apply_hits(hits, time, opts, &mut res);
                }
                res
            }
            Matches::Deferred { line, hit, last } => {
                if let Some(l) = last {
                    self.set_last_date(l);
                }
                self.process_detected(&line, hit, opts)
            }
        }
    }

    /// Take (and forget) the last date this runner saw: a runner fed a stretch of the input
    /// by [`Self::match_line`] starts afresh, and its last date at the end goes to the
    /// merging runner ([`Self::set_last_date`]) before the next stretch is merged.
    pub fn take_last_date(&mut self) -> Option<LastDate> {
        let time = self.last_date.take()?;
        Some(LastDate {
            time,
            text: std::mem::take(&mut self.last_time_text),
        })
    }

    /// Make `d` the last date seen (see [`Self::take_last_date`]).
    pub fn set_last_date(&mut self, d: LastDate) {
        self.last_date = Some(d.time);
        self.last_time_text = d.text;
    }

    /// Process one line whose time is already known (a journal entry: fail2ban's
    /// `processLine(("", date, line), time)`): no date is detected or cut.
    pub fn process_line_at(&mut self, line: &str, time: f64, opts: &ProcessOptions) -> LineResult {
        let line = line.trim_end_matches(['\r', '\n']);
        self.match_buffer(line, 0, 0, false, Some(time), opts, LineResult::default())
    }

    /// The matching half of `process_line`: `line[ds..de]` is the date text to cut out
    /// (or, with `with_last`, the last date text stands in front of the line).
    #[allow(clippy::too_many_arguments)]
    fn match_buffer(
        &mut self,
        line: &str,
        ds: usize,
        de: usize,
        with_last: bool,
        date: Option<f64>,
        opts: &ProcessOptions,
        mut res: LineResult,
    ) -> LineResult {
        let f = self.filter;
        let mut sc = self
            .scratch
            .take()
            .unwrap_or_else(|| Scratch::for_filter(self.filter));
        sc.buf.clear();
        sc.buf.push_str(&line[..ds]);
        sc.buf.push_str(&line[de..]);
        sc.buf.push('\n');

        let time = date.unwrap_or(opts.now);
        if f.maxlines <= 1 {
            if self.may_match(&sc.buf, &mut res) {
                // `sc.buf` is the rendering of this one-line buffer already
                let mut org = sc.take_single();
                if with_last {
                    org[0].set(&self.last_time_text, line, 0, self.last_time_text.len());
                } else {
                    org[0].set("", line, ds, de);
                }
                self.find_failure(&org, &mut sc, time, opts, &mut res);
                sc.single = org;
            }
        } else {
            let tuple = if with_last {
                TupleLine {
                    text: format!("{}{}", self.last_time_text, line),
                    ds: 0,
                    de: self.last_time_text.len(),
                }
            } else {
                TupleLine {
                    text: line.to_string(),
                    ds,
                    de,
                }
            };
            self.lines.push(tuple);
            if self.lines.len() > f.maxlines {
                let excess = self.lines.len() - f.maxlines;
                self.lines.drain(..excess);
            }
            let org = std::mem::take(&mut self.lines);
            render_into(&org, &mut sc.buf);
            if let Some(rest) = self.find_failure(&org, &mut sc, time, opts, &mut res) {
                self.lines = rest;
            } else {
                self.lines = org;
            }
        }
        self.scratch = Some(sc);
        res
    }

    /// Cheap single-line pre-check (no allocation, no regex run unless the literal prefilter
    /// cannot decide): can this buffer lead to any result? Sets `prefregex_matched` when that
    /// is all that happens. The regexes themselves run once, in [`Self::find_failure`], which
    /// allocates nothing for a line that does not match.
    fn may_match(&self, buf: &str, res: &mut LineResult) -> bool {
        let f = self.filter;
        if let Some(pf) = &f.prefilter {
            if !pf.is_match(buf.as_bytes()) {
                if let Some(p) = &f.prefregex {
                    if !pf.from_prefregex {
                        res.prefregex_matched = p.re.is_match(buf);
                    }
                }
                return false;
            }
        }
        true
    }

    /// fail2ban `findFailure` on the buffer `org`, whose rendering is in `sc.buf`. Returns the
    /// new line buffer when it is no longer `org`.
    fn find_failure(
        &mut self,
        org: &[TupleLine],
        sc: &mut Scratch,
        time: f64,
        opts: &ProcessOptions,
        res: &mut LineResult,
    ) -> Option<Vec<TupleLine>> {
        let mut hits = Vec::new();
        let rest = search_failures(self.filter, org, sc, opts.check_all, res, &mut hits);
        self.apply_hits(hits, time, opts, res);
        rest
    }

    /// The order-dependent half of `findFailure`: the mlfid cache merge and the failures
    /// built from the failregex hits that [`search_failures`] found.
    fn apply_hits(
        &mut self,
        hits: Vec<FailHit>,
        time: f64,
        opts: &ProcessOptions,
        res: &mut LineResult,
    ) {
        let f = self.filter;
        let check_all = opts.check_all;
        for FailHit {
            idx,
            mut fail,
            matched,
        } in hits
        {
            let mlfid = fail.str("mlfid").map(str::to_string);
            // the mlfid whose cache entry is (in Python) the very dict `fail`: every path below
            // writes `fail` back to it once it is final
            let mut alias: Option<&str> = None;
            if let Some(m) = &mlfid {
                let (merged, aliased) = self.merge_failure(m, fail, matched, opts.now);
                fail = merged;
                alias = aliased.then_some(m.as_str());
                if fail.truthy("nofail") && !check_all {
                    if let Some(a) = alias {
                        self.cache.update(a, &fail);
                    }
                    return;
                }
            } else {
                fail.matches = Some(match fail.matches.take() {
                    Some(mut m) if !m.is_empty() => {
                        m.extend(matched);
                        m
                    }
                    _ => matched,
                });
            }

            let fid = fail.str("fid").map(str::to_string);
            let raw_default = f.usedns == UseDns::Raw;
            let mut kind = HostKind::Id;
            let mut host: Option<String> = None;
            let mut raw = true;
            // fail2ban: `int(fail.get('cidr') or FAM)`; only canonical text is a prefix here
            let cidr = fail
                .str("cidr")
                .filter(|c| !c.is_empty())
                .map(crate::jail::canonical::parse_prefix_len);
            if fail.str("ip4").is_some() {
                host = fail.owned_str("ip4");
                kind = cidr.map_or(HostKind::Ip4, |c| HostKind::Subnet { cidr: c });
            } else if fail.str("ip6").is_some() {
                host = fail.owned_str("ip6");
                kind = cidr.map_or(HostKind::Ip6, |c| HostKind::Subnet { cidr: c });
            } else if fail.str("dns").is_some() {
                host = fail.owned_str("dns");
                raw = raw_default;
                kind = if raw { HostKind::Id } else { HostKind::Dns };
            } else if fid.is_none() && mlfid.is_none() {
                // fail2ban: "No group found" error, logged; the regex yields nothing
                if let Some(a) = alias {
                    self.cache.update(a, &fail);
                }
                continue;
            }
            let ticket = host.clone().or_else(|| fid.clone());
            let Some(ip) = ticket else {
                // pending: a failure without host/id yet, waiting for the mlfid's host
                fail.mlfpending = true;
                if let Some(a) = alias {
                    self.cache.update(a, &fail);
                }
                if !check_all {
                    return;
                }
                res.failregex_hits.push(idx);
                res.pending += 1;
                continue;
            };
            let id = if raw {
                match &fid {
                    Some(fid) if *fid != ip => {
                        fail.groups.insert("ip".into(), GroupValue::Str(ip.clone()));
                        kind = HostKind::Id;
                        fid.clone()
                    }
                    _ => ip,
                }
            } else {
                ip
            };
            if let Some(a) = alias {
                self.cache.update(a, &fail);
            }
            res.failregex_hits.push(idx);
            if fail.truthy("nofail") {
                res.ignored = true;
            } else {
                res.failures.push(Failure {
                    fid: id,
                    host,
                    kind,
                    time,
                    matches: fail.matches.take().unwrap_or_default(),
                    groups: fail.groups,
                    failregex: idx,
                });
            }
            if !check_all {
                break;
            }
        }
    }

    /// fail2ban `_mergeFailure`. Returns the merged data and whether it is (in Python) the very
    /// dict held by the cache under `mlfid`: then the caller must write its final state back
    /// with [`MlfidCache::update`] (until then the entry's data is a placeholder: it is taken
    /// out of the cache rather than cloned, and nothing reads it in between).
    fn merge_failure(
        &mut self,
        mlfid: &str,
        mut fail: FailData,
        matched: Vec<String>,
        now: f64,
    ) -> (FailData, bool) {
        const NOFAIL: u8 = 1;
        const FORGET: u8 = 2;
        const PREV: u8 = 4;
        const GAINED: u8 = 8;
        let mut nf = 0u8;
        if fail.truthy("mlfgained") {
            nf |= GAINED | NOFAIL;
            if !fail.truthy("nofail") {
                let g = fail
                    .groups
                    .get("mlfgained")
                    .cloned()
                    .unwrap_or(GroupValue::None);
                fail.groups.insert("nofail".into(), g);
            }
        } else if fail.truthy("nofail") {
            nf |= NOFAIL;
        }
        if fail.groups.remove("mlfforget").is_some_and(|v| v.truthy()) {
            nf |= FORGET;
        }
        let user = fail
            .str("user")
            .filter(|u| !u.is_empty())
            .map(str::to_string);
        let users: Option<usize>;
        let alias: bool;
        if let Some(p) = self.cache.position(mlfid, now) {
            let mut mg = self
                .cache
                .at(p)
                .map(|e| std::mem::take(&mut e.data))
                .unwrap_or_default();
            users = update_users(&mut mg, user);
            if mg.groups.remove("nofail").is_some_and(|v| v.truthy()) {
                nf |= PREV;
            }
            if mg.groups.remove("mlfgained").is_some_and(|v| v.truthy()) {
                nf |= PREV;
            }
            if nf & GAINED != 0 {
                mg.mlfpending = false;
            }
            if nf & PREV == 0 && !mg.mlfpending {
                mg.matches = None;
            }
            for (k, v) in std::mem::take(&mut fail.groups) {
                if v != GroupValue::None {
                    mg.groups.insert(k, v);
                }
            }
            fail = mg;
            if nf & FORGET != 0 {
                self.cache.unset(mlfid);
                alias = false;
            } else {
                alias = true;
            }
        } else if nf & FORGET == 0 {
            users = update_users(&mut fail, user);
            // placeholder data: the caller writes the final state back (see above)
            self.cache.set(mlfid, FailData::default(), now);
            alias = true;
        } else {
            users = None;
            alias = false;
        }
        if std::mem::take(&mut fail.mlfpending) || users.is_some_and(|n| n > 1) {
            fail.groups.remove("nofail");
            fail.groups.remove("mlfgained");
            nf &= !(GAINED | NOFAIL);
        }
        if nf & NOFAIL == 0 {
            let mut m = fail.nofail_matches.take().unwrap_or_default();
            m.extend(fail.matches.take().unwrap_or_default());
            if nf & GAINED == 0 {
                m.extend(matched);
            }
            fail.matches = Some(m);
        } else if nf & (NOFAIL | FORGET) == NOFAIL {
            let mut m = fail.nofail_matches.take().unwrap_or_default();
            m.extend(matched);
            fail.nofail_matches = Some(m);
        }
        (fail, alias)
    }
}

/// The line buffer after `findFailure`: `None` when it is still the original one.
fn finish(line_buffer: Cow<'_, [TupleLine]>) -> Option<Vec<TupleLine>> {
    match line_buffer {
        Cow::Borrowed(_) => None,
        Cow::Owned(v) => Some(v),
    }
}

/// One failregex hit found by [`search_failures`], waiting for [`FilterRunner::apply_hits`].
#[derive(Debug)]
struct FailHit {
    idx: usize,
    fail: FailData,
    matched: Vec<String>,
}

/// The order-independent half of fail2ban's `findFailure` on the buffer `org` (rendered in
/// `sc.buf`): prefregex, failregex searches and ignoreregexes, which depend on the buffer
/// alone. Records prefregex and ignoreregex results in `res` and the failregex hits, in
/// order, in `hits`; stops where `findFailure` stops whatever the merge does. Returns the
/// new line buffer when it is no longer `org`.
fn search_failures(
    f: &Filter,
    org: &[TupleLine],
    sc: &mut Scratch,
    check_all: bool,
    res: &mut LineResult,
    hits: &mut Vec<FailHit>,
) -> Option<Vec<TupleLine>> {
    let multi = f.maxlines > 1;
    let Scratch {
        buf,
        spans,
        pref: pref_cache,
        fail: fail_caches,
        candidates,
        lean,
        ..
    } = sc;
    // fail2ban's `__lineBuffer`, and whether `buf` still renders it (Python sets the
    // buffer text to None and renders it again when needed)
    let mut line_buffer: Cow<'_, [TupleLine]> = Cow::Borrowed(org);
    let mut rendered = true;

    if upfront_ignore(f) && ignore_line(f, buf, None, org, check_all, &mut line_buffer, res) {
        return finish(line_buffer);
    }

    let mut pre_groups: BTreeMap<GroupName, GroupValue> = BTreeMap::new();
    if let Some(p) = &f.prefregex {
        let Some(_hit) = search(p, buf, org, pref_cache, spans) else {
            return finish(line_buffer);
        };
        res.prefregex_matched = true;
        pre_groups = groups(p, buf, spans, *lean);
        if let Some(GroupValue::Str(c)) = pre_groups.remove("content") {
            if !c.is_empty() {
                line_buffer = Cow::Owned(vec![TupleLine {
                    text: c,
                    ds: 0,
                    de: 0,
                }]);
                rendered = false;
            }
        }
    }

    // whether `candidates` holds the failregexes that can match `buf` as it is now
    let mut sifted = false;
    for ((idx, rx), cache) in f.failregex.iter().enumerate().zip(fail_caches.iter_mut()) {
        if !rendered {
            render_into(&line_buffer, buf);
            rendered = true;
            sifted = false;
        }
        if let (Some(set), Some(c)) = (&f.failset, candidates.as_mut()) {
            if !sifted {
                set.search(buf, c);
                sifted = true;
            }
            if !c.contains(idx) {
                continue;
            }
        }
        let Some(hit) = search(rx, buf, org, cache, spans) else {
            continue;
        };
        let lean_groups = *lean && rx.lean_ok && pre_groups.is_empty();
        let mut fail = if lean_groups {
            FailData {
                lean: Some(Box::new(LeanGroups::of(rx, buf, spans))),
                ..FailData::default()
            }
        } else {
            FailData {
                groups: groups(rx, buf, spans, *lean),
                ..FailData::default()
            }
        };
        if !f.ignoreregex.is_empty()
            && ignore_line(f, buf, Some(&hit), org, check_all, &mut line_buffer, res)
        {
            rendered = false;
            if !check_all {
                break;
            }
            continue;
        }
        if !check_all || multi {
            line_buffer = Cow::Owned(hit.unmatched());
            rendered = false;
        }
        // the prefregex's groups, under the failregex's (which win on a name both have)
        for (k, v) in &pre_groups {
            fail.groups.entry(k.clone()).or_insert_with(|| v.clone());
        }
        // `findFailure` goes on past this hit (with `check_all` off) only when it yields
        // nothing for want of a host or id, which the merge cannot change without an mlfid
        let goes_on = check_all
            || (fail.str("mlfid").is_none()
                && fail.str("fid").is_none()
                && fail.str("ip4").is_none()
                && fail.str("ip6").is_none()
                && fail.str("dns").is_none());
        hits.push(FailHit {
            idx,
            fail,
            matched: if *lean {
                Vec::new()
            } else {
                hit.matched_texts(org)
            },
        });
        if !goes_on {
            break;
        }
    }
    finish(line_buffer)
}

/// fail2ban checks ignoreregex up front only when there are few of them.
fn upfront_ignore(f: &Filter) -> bool {
    !f.ignoreregex.is_empty() && f.ignoreregex.len() + 2 < f.failregex.len()
}

fn valid_span(line: &str, s: usize, e: usize) -> bool {
    s <= e && e <= line.len() && line.is_char_boundary(s) && line.is_char_boundary(e)
}

/// `_updateUsers`: add the current user to the `users` set; returns the set's size.
fn update_users(fail: &mut FailData, user: Option<String>) -> Option<usize> {
    match user {
        Some(u) => {
            let entry = fail
                .groups
                .entry("users".into())
                .or_insert_with(|| GroupValue::Set(BTreeSet::new()));
            if !matches!(entry, GroupValue::Set(_)) {
                *entry = GroupValue::Set(BTreeSet::new());
            }
            if let GroupValue::Set(s) = entry {
                s.insert(u);
                Some(s.len())
            } else {
                None
            }
        }
        None => match fail.groups.get("users") {
            Some(GroupValue::Set(s)) => Some(s.len()),
            _ => None,
        },
    }
}

/// `_ignoreLine`: whether an ignoreregex matches; on a hit removes the failregex's lines.
fn ignore_line(
    f: &Filter,
    buf: &str,
    fail_hit: Option<&Hit>,
    org: &[TupleLine],
    check_all: bool,
    line_buffer: &mut Cow<'_, [TupleLine]>,
    res: &mut LineResult,
) -> bool {
    let multi = f.maxlines > 1;
    let own;
    let b = match fail_hit {
        Some(h) if multi => {
            own = render(h.matched(org));
            own.as_str()
        }
        _ => buf,
    };
    let mut found = false;
    for (i, ig) in f.ignoreregex.iter().enumerate() {
        if ig.re.is_match(b) {
            found = true;
            res.ignore_hits.push(i);
            res.ignored = true;
            if !check_all || multi {
                if let Some(h) = fail_hit {
                    *line_buffer = Cow::Owned(h.unmatched());
                }
            }
            if !check_all {
                break;
            }
        }
    }
    found
}

/// Named groups of a match (`groupdict`), with fail2ban's `alt_*`/`tuple_*` merging.
/// With `lean`, only the groups in `rx.lean_named` (see [`FilterRunner::set_lean`]).
fn groups(
    rx: &CompiledRegex,
    buf: &str,
    spans: &Spans,
    lean: bool,
) -> BTreeMap<GroupName, GroupValue> {
    // inserted one by one: `collect` would first gather and sort a temporary vector
    let mut g: BTreeMap<GroupName, GroupValue> = BTreeMap::new();
    let named = if lean { &rx.lean_named } else { &rx.named };
    for (i, n) in named {
        let v = spans
            .get(*i)
            .and_then(|(a, b)| buf.get(a..b))
            .map_or(GroupValue::None, |s| GroupValue::Str(s.to_string()));
        g.insert(n.clone(), v);
    }
    for (k, n) in &rx.alt {
        let Some(v) = g.get(k).filter(|v| v.truthy()) else {
            continue;
        };
        if !g.get(n).is_some_and(GroupValue::truthy) {
            let v = v.clone();
            g.insert(n.clone(), v);
        }
    }
    for (k, n) in &rx.tuple {
        if lean && !DECIDING_NAMES.contains(&&**n) {
            continue;
        }
        let v = g.get(k).and_then(|v| v.as_str().map(str::to_string));
        let t = match g.remove(n) {
            Some(GroupValue::Tuple(mut t)) => {
                t.push(v);
                t
            }
            Some(GroupValue::Str(s)) => vec![Some(s), v],
            _ => vec![None, v],
        };
        g.insert(n.clone(), GroupValue::Tuple(t));
    }
    g
}

/// fail2ban `Regex.search`: match (group spans into `spans`), then split `org` into the lines
/// the match consumed and the rest (lines captured by `<SKIPLINES>` go back to the rest).
fn search(
    rx: &CompiledRegex,
    buf: &str,
    org: &[TupleLine],
    cache: &mut CaptureCache,
    spans: &mut Spans,
) -> Option<Hit> {
    if !rx.re.captures_with(buf, cache, spans) {
        return None;
    }
    let (ms, me) = spans.get(0).unwrap_or((0, 0));
    if org.len() <= 1 {
        return Some(Hit::All);
    }
    let bytes = buf.as_bytes();
    let line_start =
        memchr::memrchr(b'\n', &bytes[..(ms + 1).min(bytes.len())]).map_or(0, |p| p + 1);
    // Python: index("\n", end - 1), a negative start counting from the end
    let from = if me == 0 {
        bytes.len().saturating_sub(1)
    } else {
        me - 1
    };
    let line_end = memchr::memchr(b'\n', bytes.get(from..).unwrap_or(&[]))
        .map_or(bytes.len(), |p| from + p + 1);
    let c1 = memchr::memchr_iter(b'\n', &bytes[..line_start]).count();
    let c2 = memchr::memchr_iter(b'\n', &bytes[..line_end]).count();
    let c1 = c1.min(org.len());
    let c2 = c2.clamp(c1, org.len());
    let mut matched: Vec<TupleLine> = org[c1..c2].to_vec();
    let mut unmatched: Vec<TupleLine> = org[..c1].to_vec();
    let mut skipped = String::new();
    for &i in &rx.skiplines {
        if let Some((a, b)) = spans.get(i) {
            skipped.push_str(buf.get(a..b).unwrap_or(""));
        }
    }
    let mut n = 0;
    for sl in skipped.lines() {
        if let Some(m) = matched
            .get(n..)
            .and_then(|rest| rest.iter().position(|l| l.stripped_eq(sl)))
        {
            unmatched.push(matched.remove(n + m));
            n += m;
        }
    }
    unmatched.extend_from_slice(&org[c2..]);
    Some(Hit::Split { matched, unmatched })
}
