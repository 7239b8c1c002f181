//! Per-source matching state and fail2ban's `processLine`/`findFailure` algorithm.

use std::collections::{BTreeMap, BTreeSet};

use super::{CompiledRegex, Filter, UseDns};
use crate::date::{DateDetector, DateHit};
use crate::pyregex::Spans;

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
        /// Prefix length as captured.
        cidr: u32,
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
    pub groups: BTreeMap<String, GroupValue>,
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

/// One buffered line: full text and the cut-out date span (`before+date+after`).
#[derive(Debug, Clone)]
pub(super) struct TupleLine {
    pub(super) text: String,
    ds: usize,
    de: usize,
}

impl TupleLine {
    fn push_stripped(&self, out: &mut String) {
        out.push_str(self.text.get(..self.ds).unwrap_or(""));
        out.push_str(self.text.get(self.de..).unwrap_or(""));
    }
    fn stripped(&self) -> String {
        let mut s = String::with_capacity(self.text.len());
        self.push_stripped(&mut s);
        s
    }
}

/// fail2ban's `_tupleLinesBuf`: lines without their date, joined by `\n`, plus `\n`.
fn render(lines: &[TupleLine]) -> String {
    let mut s = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        l.push_stripped(&mut s);
    }
    s.push('\n');
    s
}

/// The failure dict of fail2ban (groups plus bookkeeping keys).
#[derive(Debug, Clone, Default)]
struct FailData {
    groups: BTreeMap<String, GroupValue>,
    matches: Option<Vec<String>>,
    nofail_matches: Option<Vec<String>>,
    mlfpending: bool,
}

impl FailData {
    fn truthy(&self, k: &str) -> bool {
        self.groups.get(k).is_some_and(GroupValue::truthy)
    }
    fn str(&self, k: &str) -> Option<&str> {
        self.groups.get(k).and_then(GroupValue::as_str)
    }
}

struct CacheEntry {
    key: String,
    expires: f64,
    data: FailData,
}

/// FIFO cache with TTL, as fail2ban's `Utils.Cache` (clocked by `ProcessOptions::now`).
#[derive(Default)]
struct MlfidCache {
    entries: Vec<CacheEntry>,
}

impl MlfidCache {
    fn position(&mut self, key: &str, now: f64) -> Option<usize> {
        let p = self.entries.iter().position(|e| e.key == key)?;
        if self.entries[p].expires > now {
            Some(p)
        } else {
            self.entries.remove(p);
            None
        }
    }

    fn set(&mut self, key: &str, data: FailData, now: f64) {
        if let Some(p) = self.entries.iter().position(|e| e.key == key) {
            self.entries[p].data = data;
            self.entries[p].expires = now + MLFID_MAX_TIME;
            return;
        }
        if self.entries.len() >= MLFID_MAX_COUNT {
            while !self.entries.is_empty() {
                let e = self.entries.remove(0);
                if e.expires > now && self.entries.len() < MLFID_MAX_COUNT {
                    break;
                }
            }
        }
        self.entries.push(CacheEntry {
            key: key.to_string(),
            expires: now + MLFID_MAX_TIME,
            data,
        });
    }

    /// Write back the final state of an aliased entry (Python mutates the cached dict in place).
    fn update(&mut self, key: &str, data: &FailData) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.key == key) {
            e.data = data.clone();
        }
    }

    fn unset(&mut self, key: &str) {
        self.entries.retain(|e| e.key != key);
    }
}

/// A successful search: group spans plus the lines it consumed.
struct Hit {
    spans: Spans,
    matched: Vec<TupleLine>,
    unmatched: Vec<TupleLine>,
}

impl Hit {
    fn matched_texts(&self) -> Vec<String> {
        self.matched.iter().map(|l| l.text.clone()).collect()
    }
}

/// Per-source state of a [`Filter`].
pub struct FilterRunner<'f> {
    filter: &'f Filter,
    date: DateDetector,
    date_now: Option<i64>,
    /// Line buffer (`maxlines > 1` only).
    pub(super) lines: Vec<TupleLine>,
    /// Reused match buffer.
    buf: String,
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
            buf: String::with_capacity(256),
            last_date: None,
            last_time_text: String::new(),
            cache: MlfidCache::default(),
        }
    }

    /// This runner's date detector (its template order and hits evolve with the lines seen).
    pub fn date_detector(&self) -> &DateDetector {
        &self.date
    }

    /// Process one log line (fail2ban `processLine`). A trailing `\r\n` is stripped.
    pub fn process_line(&mut self, line: &str, opts: &ProcessOptions) -> LineResult {
        let line = line.trim_end_matches(['\r', '\n']);
        let now_s = opts.now as i64;
        if self.date_now != Some(now_s) {
            self.date.set_now(now_s);
            self.date_now = Some(now_s);
        }
        let mut res = LineResult::default();
        let hit = self.date.detect(line);
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
        self.match_line(line, ds, de, with_last, date, opts, res)
    }

    /// Process one line whose time is already known (a journal entry: fail2ban's
    /// `processLine(("", date, line), time)`): no date is detected or cut.
    pub fn process_line_at(&mut self, line: &str, time: f64, opts: &ProcessOptions) -> LineResult {
        let line = line.trim_end_matches(['\r', '\n']);
        self.match_line(line, 0, 0, false, Some(time), opts, LineResult::default())
    }

    /// The matching half of `process_line`: `line[ds..de]` is the date text to cut out
    /// (or, with `with_last`, the last date text stands in front of the line).
    #[allow(clippy::too_many_arguments)]
    fn match_line(
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
        self.buf.clear();
        self.buf.push_str(&line[..ds]);
        self.buf.push_str(&line[de..]);
        self.buf.push('\n');

        if f.maxlines <= 1 && !self.may_match(&mut res) {
            return res;
        }
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
        let org = if f.maxlines > 1 {
            self.lines.push(tuple);
            if self.lines.len() > f.maxlines {
                let excess = self.lines.len() - f.maxlines;
                self.lines.drain(..excess);
            }
            self.lines.clone()
        } else {
            vec![tuple]
        };
        let time = date.unwrap_or(opts.now);
        self.find_failure(org, time, opts, &mut res);
        res
    }

    /// Cheap single-line pre-check (no allocation): can this buffer lead to any result?
    /// Sets `prefregex_matched` when that is all that happens.
    fn may_match(&self, res: &mut LineResult) -> bool {
        let f = self.filter;
        let buf = self.buf.as_str();
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
        if upfront_ignore(f) && f.ignoreregex.iter().any(|r| r.re.is_match(buf)) {
            return true;
        }
        match &f.prefregex {
            Some(p) => p.re.is_match(buf),
            None => f.failregex.iter().any(|r| r.re.is_match(buf)),
        }
    }

    /// fail2ban `findFailure`.
    fn find_failure(
        &mut self,
        org: Vec<TupleLine>,
        time: f64,
        opts: &ProcessOptions,
        res: &mut LineResult,
    ) {
        let f = self.filter;
        let multi = f.maxlines > 1;
        let check_all = opts.check_all;
        let mut line_buffer = org.clone();
        let mut buf: Option<String> = Some(render(&org));

        if upfront_ignore(f) {
            let b = buf.as_deref().unwrap_or("");
            if ignore_line(f, b, None, check_all, &mut line_buffer, res) {
                self.finish(line_buffer);
                return;
            }
        }

        let mut pre_groups: BTreeMap<String, GroupValue> = BTreeMap::new();
        if let Some(p) = &f.prefregex {
            let b = buf.as_deref().unwrap_or("");
            let Some(hit) = search(p, b, &org) else {
                self.finish(line_buffer);
                return;
            };
            res.prefregex_matched = true;
            pre_groups = groups(p, b, &hit.spans);
            if let Some(GroupValue::Str(c)) = pre_groups.remove("content") {
                if !c.is_empty() {
                    line_buffer = vec![TupleLine {
                        text: c,
                        ds: 0,
                        de: 0,
                    }];
                    buf = None;
                }
            }
        }

        for (idx, rx) in f.failregex.iter().enumerate() {
            let b = buf.get_or_insert_with(|| render(&line_buffer));
            let Some(hit) = search(rx, b, &org) else {
                continue;
            };
            let mut fail = FailData {
                groups: groups(rx, b, &hit.spans),
                ..FailData::default()
            };
            if !f.ignoreregex.is_empty()
                && ignore_line(f, b, Some(&hit), check_all, &mut line_buffer, res)
            {
                buf = None;
                if !check_all {
                    break;
                }
                continue;
            }
            if !check_all || multi {
                line_buffer = hit.unmatched.clone();
                buf = None;
            }
            if !pre_groups.is_empty() {
                let mut merged = pre_groups.clone();
                merged.extend(std::mem::take(&mut fail.groups));
                fail.groups = merged;
            }
            let mlfid = fail.str("mlfid").map(str::to_string);
            let mut alias: Option<String> = None;
            if let Some(m) = &mlfid {
                let (merged, a) = self.merge_failure(m, fail, hit.matched_texts(), opts.now);
                fail = merged;
                alias = a;
                if fail.truthy("nofail") && !check_all {
                    self.finish(line_buffer);
                    return;
                }
            } else {
                let mut m = fail.matches.take().unwrap_or_default();
                m.extend(hit.matched_texts());
                fail.matches = Some(m);
            }

            let fid = fail.str("fid").map(str::to_string);
            let raw_default = f.usedns == UseDns::Raw;
            let mut kind = HostKind::Id;
            let mut host: Option<String> = None;
            let mut raw = true;
            let cidr = || {
                fail.str("cidr")
                    .filter(|c| !c.is_empty())
                    .and_then(|c| c.parse::<u32>().ok())
            };
            if let Some(ip) = fail.str("ip4") {
                host = Some(ip.to_string());
                kind = cidr().map_or(HostKind::Ip4, |c| HostKind::Subnet { cidr: c });
            } else if let Some(ip) = fail.str("ip6") {
                host = Some(ip.to_string());
                kind = cidr().map_or(HostKind::Ip6, |c| HostKind::Subnet { cidr: c });
            } else if let Some(d) = fail.str("dns") {
                host = Some(d.to_string());
                raw = raw_default;
                kind = if raw { HostKind::Id } else { HostKind::Dns };
            } else if fid.is_none() && mlfid.is_none() {
                // fail2ban: "No group found" error, logged; the regex yields nothing
                if let Some(a) = &alias {
                    self.cache.update(a, &fail);
                }
                continue;
            }
            let ticket = host.clone().or_else(|| fid.clone());
            let Some(ip) = ticket else {
                // pending: a failure without host/id yet, waiting for the mlfid's host
                fail.mlfpending = true;
                if let Some(a) = &alias {
                    self.cache.update(a, &fail);
                }
                if !check_all {
                    self.finish(line_buffer);
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
            if let Some(a) = &alias {
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
        self.finish(line_buffer);
    }

    fn finish(&mut self, line_buffer: Vec<TupleLine>) {
        if self.filter.maxlines > 1 {
            self.lines = line_buffer;
        }
    }

    /// fail2ban `_mergeFailure`. Returns the merged data and, when the result is (in Python) the
    /// very dict held by the cache, the cache key to write later changes back to.
    fn merge_failure(
        &mut self,
        mlfid: &str,
        mut fail: FailData,
        matched: Vec<String>,
        now: f64,
    ) -> (FailData, Option<String>) {
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
        let alias: Option<String>;
        if let Some(p) = self.cache.position(mlfid, now) {
            let mut mg = self.cache.entries[p].data.clone();
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
                alias = None;
            } else {
                alias = Some(mlfid.to_string());
            }
        } else if nf & FORGET == 0 {
            users = update_users(&mut fail, user);
            self.cache.set(mlfid, fail.clone(), now);
            alias = Some(mlfid.to_string());
        } else {
            users = None;
            alias = None;
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
        if let Some(a) = &alias {
            self.cache.update(a, &fail);
        }
        (fail, alias)
    }
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
    check_all: bool,
    line_buffer: &mut Vec<TupleLine>,
    res: &mut LineResult,
) -> bool {
    let multi = f.maxlines > 1;
    let own;
    let b = match fail_hit {
        Some(h) if multi => {
            own = render(&h.matched);
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
                    *line_buffer = h.unmatched.clone();
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
fn groups(rx: &CompiledRegex, buf: &str, spans: &Spans) -> BTreeMap<String, GroupValue> {
    let mut g: BTreeMap<String, GroupValue> = rx
        .named
        .iter()
        .map(|(i, n)| {
            let v = spans
                .get(*i)
                .and_then(|(a, b)| buf.get(a..b))
                .map_or(GroupValue::None, |s| GroupValue::Str(s.to_string()));
            (n.clone(), v)
        })
        .collect();
    for (k, n) in &rx.alt {
        let v = g.get(k).cloned().unwrap_or(GroupValue::None);
        if v.truthy() && !g.get(n).is_some_and(GroupValue::truthy) {
            g.insert(n.clone(), v);
        }
    }
    for (k, n) in &rx.tuple {
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

/// fail2ban `Regex.search`: match, then split `org` into the lines the match consumed and the
/// rest (lines captured by `<SKIPLINES>` go back to the rest).
fn search(rx: &CompiledRegex, buf: &str, org: &[TupleLine]) -> Option<Hit> {
    let spans = rx.re.captures(buf)?;
    let (ms, me) = spans.get(0).unwrap_or((0, 0));
    if org.len() <= 1 {
        return Some(Hit {
            spans,
            matched: org.to_vec(),
            unmatched: Vec::new(),
        });
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
            .and_then(|rest| rest.iter().position(|l| l.stripped() == sl))
        {
            unmatched.push(matched.remove(n + m));
            n += m;
        }
    }
    unmatched.extend_from_slice(&org[c2..]);
    Some(Hit {
        spans,
        matched,
        unmatched,
    })
}
