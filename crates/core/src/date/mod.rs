//! Date detection: fail2ban 1.0.2's `DateDetector`, exactly.
//!
//! Receives a [`DateConfig`] (the jail's `datepattern`, its default zone and `now`)
//! and then log lines; emits for each line the byte range of the date text fail2ban
//! cuts out of it and the unix time it stands for ([`DateHit`]). The template list,
//! the search order (sticky last template, line-begin templates win, hit-weighted
//! reordering), the regexes and the value computation follow fail2ban's
//! `datedetector.py`, `datetemplate.py` and `strptime.py`; see compat.md §2.5.
//! Submodules: `pattern` compiles templates, `civil` computes values, `zone` knows zone
//! abbreviations, `fast` matches the two common line-begin formats without a regex.
//! When the sticky template is one of those and a line falls on the day of the last
//! one, `detect` answers from a per-day cache (day key bytes → unix seconds of local
//! midnight) without search, reordering or date arithmetic.

mod civil;
mod fast;
mod pattern;
mod zone;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use civil::{Clock, DaySpan, Field};
use pattern::{Compiled, Engine, FastKind, Template, ValueKind, LINE_BEGIN, LINE_END};

/// Why a `datepattern` could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DateError {
    /// A pattern entry is not a valid fail2ban date pattern.
    #[error("invalid datepattern `{pattern}`: {reason}")]
    BadPattern {
        /// The offending `datepattern` entry.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two entries produce the same template (fail2ban: "There is already a template").
    #[error("datepattern: there is already a template with name `{0}`")]
    Duplicate(String),
    /// A built-in regex failed to compile (a bug).
    #[error("internal date template error: {0}")]
    Internal(String),
}

/// What a date detector is built from.
#[derive(Clone, Debug)]
pub struct DateConfig {
    /// The jail's `datepattern` (newline-separated entries); `None` = default templates.
    pub datepattern: Option<String>,
    /// Zone for dates without their own zone (`logtimezone`, or the local zone).
    pub default_tz: jiff::tz::TimeZone,
    /// Unix seconds: for `%ExY` ranges and year/day inference.
    pub now: i64,
}

/// A date found in a line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DateHit {
    /// Byte range of the date text (fail2ban's group 1) that is cut out of the line.
    pub start: usize,
    /// End of that range (exclusive).
    pub end: usize,
    /// Unix seconds (with fraction for epoch formats). For an empty date text
    /// (`{NONE}`, `^WARNING:()**`) this is `now` (fail2ban then uses its last date if
    /// less than 60 s old); `NaN` when the text matched but is no valid date (fail2ban
    /// still cuts the text, logs an error and treats the line as undated).
    pub time: f64,
    /// Index of the template that matched (stable, for [`DateDetector::template_name`]).
    pub template: usize,
}

impl DateHit {
    /// Whether [`DateHit::time`] is a real date (not NaN).
    pub fn has_time(&self) -> bool {
        !self.time.is_nan()
    }
}

/// A template's match in a line (engine independent, no borrow of the line).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Found {
    /// Python's `match.start()` / `match.end()`.
    start: usize,
    end: usize,
    /// Group 1 (the date text).
    g1: (usize, usize),
    /// Epoch / TAI64N value text.
    val: (usize, usize),
    nf: usize,
    fields: [(Field, u32, u32); MAX_FIELDS],
}

const MAX_FIELDS: usize = 12;

impl Found {
    pub(crate) fn new(start: usize, end: usize) -> Found {
        Found {
            start,
            end,
            g1: (start, end),
            val: (start, end),
            nf: 0,
            fields: [(Field::AmPm, 0, 0); MAX_FIELDS],
        }
    }

    pub(crate) fn push(&mut self, f: Field, s: usize, e: usize) {
        if self.nf < MAX_FIELDS {
            self.fields[self.nf] = (f, s as u32, e as u32);
            self.nf += 1;
        }
    }
}

/// Per-detector state of one template in the search order (fail2ban
/// `DateDetectorTemplate`).
#[derive(Clone, Debug)]
struct Entry {
    t: usize,
    hits: u64,
    /// fail2ban compares `lastUsed` wall-clock times with a 300 s slack; within one run
    /// that only distinguishes "never used".
    used: bool,
    distance: usize,
}

const FAR: usize = 0x7fff_ffff;

/// fail2ban's date detector. Cheap to clone (templates are shared).
#[derive(Clone, Debug)]
pub struct DateDetector {
    templates: Arc<[Template]>,
    order: Vec<Entry>,
    /// fail2ban `template.hits`: successful searches per template.
    matched: Vec<u64>,
    /// Capture slots per template, made on its first regex search.
    locs: Vec<Option<regex::CaptureLocations>>,
    last_idx: usize,
    last_pos: (usize, Option<char>, Option<char>),
    last_end: (usize, Option<char>, Option<char>),
    first_unused: usize,
    clock: Clock,
    is_none: bool,
    /// Last computed value: (template, `now`, date text) → time. Consecutive log
    /// lines usually repeat the same second.
    last_val: Option<(usize, i64, usize, [u8; LAST_TEXT], f64)>,
    /// The fast matcher of the sticky template (`order[last_idx]`) if it is a
    /// line-begin one, so [`DateDetector::peek_fast`] may answer.
    sticky_fast: FastKind,
    /// The day of the last line the sticky path answered (valid for `now`).
    fast_day: Option<FastDay>,
}

/// One day of dates in the fast formats: every line starting with `key` and a time of
/// day in `span.lo..=span.hi` is worth `span.base + time of day`.
#[derive(Clone, Copy, Debug)]
struct FastDay {
    /// The line's date bytes exactly as written, checked by [`fast::syslog_day`]
    /// (`Mmm dd`, zero-padded: its letter cannot start an ISO key) or
    /// [`fast::iso_day`] (`YYYY-MM-DDT`) before it is stored; as one number
    /// ([`packed_key`]), which every line compares with its own.
    packed: u128,
    span: DaySpan,
}

/// A day key (at most 16 bytes, zero-padded) as one number: comparing two is one
/// instruction or two, where comparing the byte arrays was a tenth of a skipped line's cost.
#[inline(always)]
fn packed_key(key: &[u8]) -> u128 {
    let mut a = [0u8; 16];
    let n = key.len().min(16);
    a[..n].copy_from_slice(&key[..n]);
    u128::from_le_bytes(a)
}

const LAST_TEXT: usize = 40;

fn char_before(s: &str, i: usize) -> Option<char> {
    s.get(..i).and_then(|h| h.chars().next_back())
}

fn char_at(s: &str, i: usize) -> Option<char> {
    s.get(i..).and_then(|t| t.chars().next())
}

impl DateDetector {
    /// Builds the template list of `cfg.datepattern` (fail2ban `setDatePattern`).
    pub fn new(cfg: &DateConfig) -> Result<DateDetector, DateError> {
        let clock = Clock::new(cfg.default_tz.clone(), cfg.now);
        let ctx = pattern::Ctx::new(clock.now_year());
        let mut list: Vec<Template> = Vec::new();
        let mut is_none = false;
        match &cfg.datepattern {
            None => list = pattern::default_templates(&ctx)?,
            Some(dp) => {
                for entry in dp.split('\n').map(str::trim).filter(|e| !e.is_empty()) {
                    let key = if entry.contains('%') {
                        entry.to_string()
                    } else {
                        entry.to_uppercase()
                    };
                    let ignore_dup = !list.is_empty();
                    let add: Vec<Template> = if key == "{^LN-BEG}" || key == "{DEFAULT}" {
                        let all = pattern::default_templates(&ctx)?;
                        if key == "{^LN-BEG}" {
                            all.into_iter()
                                .filter(|t| t.flags & LINE_BEGIN != 0)
                                .collect()
                        } else {
                            all
                        }
                    } else if key.contains("{DATE}") {
                        pattern::date_templates(entry, &ctx)?
                    } else if key == "{NONE}" {
                        is_none = true;
                        vec![pattern::none_template(&ctx)?]
                    } else {
                        let t = pattern::get_pattern_template(entry, &ctx)?;
                        if list.iter().any(|x| x.name == t.name) {
                            return Err(DateError::Duplicate(t.name));
                        }
                        vec![t]
                    };
                    for t in add {
                        if list.iter().any(|x| x.name == t.name) {
                            if ignore_dup {
                                continue;
                            }
                            return Err(DateError::Duplicate(t.name));
                        }
                        list.push(t);
                    }
                }
                if list.is_empty() {
                    list = pattern::default_templates(&ctx)?;
                }
            }
        }
        let n = list.len();
        let locs = vec![None; n];
        Ok(DateDetector {
            order: (0..n)
                .map(|t| Entry {
                    t,
                    hits: 0,
                    used: false,
                    distance: FAR,
                })
                .collect(),
            matched: vec![0; n],
            templates: list.into(),
            locs,
            last_idx: FAR,
            last_pos: (1, None, None),
            last_end: (FAR, None, None),
            first_unused: 0,
            clock,
            is_none,
            last_val: None,
            sticky_fast: FastKind::None,
            fast_day: None,
        })
    }

    /// Sets `now` (unix seconds) for year/day inference of later lines.
    pub fn set_now(&mut self, now: i64) {
        if now != self.clock.now() {
            // year inference depends on `now`
            self.fast_day = None;
        }
        self.clock.set_now(now);
    }

    /// What a line can change in this detector, as text (tests compare two detectors fed
    /// the same lines by different paths). The day cache and the last value are left out:
    /// caches, whose contents do not change an answer.
    pub(crate) fn state(&self) -> String {
        format!(
            "{:?}",
            (
                &self.order,
                &self.matched,
                self.last_idx,
                self.last_pos,
                self.last_end,
                self.first_unused,
                self.sticky_fast,
                self.clock.now(),
            )
        )
    }

    /// fail2ban-regex's display name of template `template` (a [`DateHit::template`]).
    pub fn template_name(&self, template: usize) -> &str {
        self.templates.get(template).map_or("", |t| t.name.as_str())
    }

    /// Number of templates (indices for [`DateDetector::template_name`]).
    pub fn template_count(&self) -> usize {
        self.templates.len()
    }

    /// `datepattern = {NONE}`: no date is ever cut, line time = now.
    pub fn is_none(&self) -> bool {
        self.is_none
    }

    /// Runs template `ti` on `line[..endpos]` from `pos` (Python `search(line, pos,
    /// endpos)`), counting fail2ban's `template.hits`.
    fn search(&mut self, ti: usize, line: &str, pos: usize, endpos: usize) -> Option<Found> {
        let endpos = endpos.min(line.len());
        if pos > endpos || !line.is_char_boundary(endpos) || !line.is_char_boundary(pos) {
            return None;
        }
        let t = &self.templates[ti];
        let full = pos == 0 && endpos == line.len();
        let fast = match t.fast {
            FastKind::Syslog if full => fast::syslog(line),
            FastKind::Iso if full => fast::iso(line, &t.exy),
            _ => None,
        };
        // the fast matchers also know lines that cannot start their date: no need to
        // compile (or run) the regex to learn that
        let cannot = match t.fast {
            FastKind::Syslog if full => !fast::syslog_may_start(line),
            FastKind::Iso if full => !fast::iso_may_start(line),
            _ => false,
        };
        let found = match fast {
            Some(f) => Some(f),
            None if cannot => None,
            None => search_regex(t, &mut self.locs[ti], &line[..endpos], pos),
        };
        if found.is_some() {
            self.matched[ti] += 1;
        }
        found
    }

    /// The regex path only (for testing the fast path against it).
    #[cfg(test)]
    fn search_slow(&mut self, ti: usize, line: &str) -> Option<Found> {
        let t = &self.templates[ti];
        search_regex(t, &mut self.locs[ti], line, 0)
    }

    /// fail2ban `DateDetector.matchTime`: returns (order index, found).
    fn match_time(&mut self, line: &str) -> Option<(usize, Found)> {
        let n = self.order.len();
        let mut m: Option<Found> = None;
        let mut found: Option<(Found, usize)> = None;
        let mut ignore = FAR;
        let mut i = self.last_idx;
        if i < n {
            let ti = self.order[i].t;
            let flags = self.templates[ti].flags;
            if flags & (LINE_BEGIN | LINE_END) != 0 {
                m = self.search(ti, line, 0, line.len());
                ignore = i;
            } else {
                let (dist, endpos) = (self.last_pos.0, self.last_end.0);
                let begin_ok = char_before(line, dist) == self.last_pos.1
                    || (char_at(line, dist) == self.last_pos.2
                        && !self.last_pos.2.is_some_and(char::is_alphanumeric));
                let end_ok = char_at(line, endpos) == self.last_end.2
                    || (char_before(line, endpos) == self.last_end.1
                        && !self.last_end.1.is_some_and(char::is_alphanumeric));
                if begin_ok && end_ok {
                    m = self.search(ti, line, dist, endpos);
                } else {
                    m = self.search(ti, line, 0, line.len());
                    ignore = i;
                }
            }
            if let Some(f) = m {
                let keep = n == 1
                    || flags & (LINE_BEGIN | LINE_END) != 0
                    || (f.start == self.last_pos.0 && f.end == self.last_end.0);
                if !keep {
                    found = Some((f, i));
                    m = None;
                }
            }
        }
        if m.is_none() {
            i = 0;
            while i < n {
                if i == ignore {
                    i += 1;
                    continue;
                }
                let ti = self.order[i].t;
                let Some(f) = self.search(ti, line, 0, line.len()) else {
                    i += 1;
                    continue;
                };
                m = Some(f);
                if i + 1 >= n || self.templates[ti].flags & (LINE_BEGIN | LINE_END) != 0 {
                    break;
                }
                if f.start == 0 && self.order[i].hits > 0 && self.matched[self.order[i + 1].t] == 0
                {
                    break;
                }
                if f.start > self.order[i].distance || f.start > self.last_pos.0 {
                    if found.is_none_or(|(b, _)| f.start < b.start) {
                        found = Some((f, i));
                    }
                    m = None;
                    i += 1;
                    continue;
                }
                break;
            }
            if m.is_none() {
                if let Some((f, fi)) = found {
                    m = Some(f);
                    i = fi;
                }
            }
        }
        let f = m?;
        let e = &mut self.order[i];
        e.hits += 1;
        e.used = true;
        e.distance = f.start;
        if self.first_unused == i {
            self.first_unused += 1;
        }
        self.last_pos = (f.start, char_before(line, f.start), char_at(line, f.start));
        let end_prev = if f.end == 0 {
            line.chars().next_back()
        } else {
            char_before(line, f.end)
        };
        self.last_end = (f.end, end_prev, char_at(line, f.end));
        let ti = self.order[i].t;
        if i != 0 && i != self.last_idx {
            i = self.reorder(i);
        }
        self.last_idx = i;
        let t = &self.templates[ti];
        self.sticky_fast = if t.flags & LINE_BEGIN != 0 {
            t.fast
        } else {
            FastKind::None
        };
        Some((ti, f))
    }

    fn weight(&self, e: &Entry) -> f64 {
        e.hits as f64 * self.templates[e.t].weight / e.distance.max(1) as f64
    }

    /// fail2ban `_reorderTemplate`: bubble a template up when its weight grew.
    fn reorder(&mut self, num: usize) -> usize {
        let weight = self.weight(&self.order[num]);
        let mut pos = if self.first_unused < num {
            self.first_unused
        } else {
            num / 2
        };
        let movable = |s: &Self, pos: usize| {
            let p = &s.order[pos];
            weight > s.weight(p) || !p.used
        };
        if !movable(self, pos) {
            if pos == num - 1 {
                return num;
            }
            pos = num - 1;
            if !movable(self, pos) {
                return num;
            }
        }
        let e = self.order.remove(num);
        self.order.insert(pos, e);
        while self.first_unused < self.order.len() && self.order[self.first_unused].hits > 0 {
            self.first_unused += 1;
        }
        pos
    }

    /// Value of a match (fail2ban `getDate`), `None` = invalid.
    fn value(&mut self, ti: usize, line: &str, f: &Found) -> Option<f64> {
        let text = |(s, e): (usize, usize)| line.get(s..e).unwrap_or("");
        match self.templates[ti].value {
            ValueKind::Epoch { long, .. } => {
                let v = text(f.val);
                let x: f64 = v.parse().ok()?;
                Some(if long && v.len() >= 13 {
                    if v.len() >= 16 && !v.contains('.') {
                        x / 1_000_000.0
                    } else {
                        x / 1000.0
                    }
                } else {
                    x
                })
            }
            ValueKind::Tai64n => {
                let v = text(f.val);
                let hex = v.get(2..17)?;
                u64::from_str_radix(hex, 16).ok().map(|x| x as f64)
            }
            ValueKind::Fields => {
                let mut small = [(Field::AmPm, ""); MAX_FIELDS];
                for (k, &(fl, s, e)) in f.fields[..f.nf].iter().enumerate() {
                    small[k] = (fl, line.get(s as usize..e as usize).unwrap_or(""));
                }
                self.clock.compute(&small[..f.nf]).map(|x| x as f64)
            }
        }
    }

    /// Finds the date in `line` (fail2ban semantics).
    #[inline]
    pub fn detect(&mut self, line: &str) -> Option<DateHit> {
        if let Some(hit) = self.detect_fast(line) {
            return Some(hit);
        }
        self.detect_general(line)
    }

    /// The first half of [`DateDetector::detect`]: the sticky shortcut's answer, or `None`
    /// when it cannot answer (then nothing changed but the day cache, and `detect` goes on
    /// with its general path). A hit here always starts at 0.
    #[inline]
    pub(crate) fn detect_fast(&mut self, line: &str) -> Option<DateHit> {
        let hit = self.peek_fast(line.as_bytes())?;
        self.record_fast(1, line.as_bytes(), &hit);
        Some(hit)
    }

    /// [`DateDetector::detect_fast`]'s answer without recording the hit. The common case,
    /// in a few dozen instructions: the sticky template is the line-begin syslog or ISO one
    /// and the line starts with a canonical `Mmm dd HH:MM:SS` or `YYYY-MM-DD HH:MM:SS` of the
    /// same day as before; the answer is exactly what [`DateDetector::match_time`] and
    /// [`DateDetector::value`] would give (the sticky line-begin template hits at the line
    /// start; it stays where it is, so there is no reordering). Nothing changes but the day
    /// cache (which `detect_fast` fills the same way). Until recorded with
    /// [`DateDetector::record_fast`], no other call may be made but more `peek_fast`s:
    /// they read nothing the recording writes, so `n` lines peeked and then recorded at
    /// once leave the detector as `n` calls of `detect_fast` would.
    ///
    /// It reads a line's raw bytes and answers alike for them and for their lossy UTF-8
    /// decoding (what `process_line` is given): the bytes up to its answer's end are ASCII
    /// (each is checked to be a given digit, letter or sign, or compared with a day key of
    /// such), so both agree on them and on their positions; of the bytes after it, it only
    /// asks whether one is a given ASCII byte, which neither an invalid byte nor the U+FFFD
    /// standing for it is.
    #[inline]
    pub(crate) fn peek_fast(&mut self, b: &[u8]) -> Option<DateHit> {
        let (hour, tod, end, key) = match self.sticky_fast {
            FastKind::Syslog => {
                let (h, t) = fast::syslog_time(b)?;
                (h, t, 15, b.get(..6)?)
            }
            FastKind::Iso => {
                let (h, t) = fast::iso_time(b)?;
                (h, t, 19, b.get(..11)?)
            }
            FastKind::None => return None,
        };
        let packed = packed_key(key);
        let span = match self.fast_day {
            Some(d) if d.packed == packed && d.span.lo <= tod && tod <= d.span.hi => d.span,
            // a new day (or the other side of a year or offset boundary)
            _ => {
                let mut k = [0u8; 11];
                k[..key.len()].copy_from_slice(key);
                let span = self.fast_day_span(&k, hour, tod)?;
                self.fast_day = Some(FastDay { packed, span });
                span
            }
        };
        let ti = self.order.get(self.last_idx)?.t;
        Some(DateHit {
            start: 0,
            end,
            time: (span.base + i64::from(tod)) as f64,
            template: ti,
        })
    }

    /// Records `n` hits of the sticky shortcut ([`DateDetector::peek_fast`]), the last one
    /// `hit` on `line`: what `n` calls of `detect_fast` would have recorded (the counts add
    /// up; the positions are the last line's).
    #[inline]
    pub(crate) fn record_fast(&mut self, n: u64, b: &[u8], hit: &DateHit) {
        let end = hit.end;
        let i = self.last_idx;
        let Some(e) = self.order.get_mut(i) else {
            return;
        };
        let ti = e.t;
        e.hits += n;
        e.used = true;
        e.distance = 0;
        if let Some(m) = self.matched.get_mut(ti) {
            *m += n;
        }
        if self.first_unused == i {
            self.first_unused += 1;
        }
        // the bytes at 0, end - 1 and end are ASCII (checked by the fast matchers)
        self.last_pos = (0, None, b.first().map(|&c| char::from(c)));
        self.last_end = (
            end,
            b.get(end.wrapping_sub(1)).map(|&c| char::from(c)),
            b.get(end).map(|&c| char::from(c)),
        );
    }

    /// The value span of a day key of the sticky fast template, `None` where the fast
    /// matcher or the value computation would not give a date.
    #[cold]
    fn fast_day_span(&mut self, key: &[u8; 11], hour: u32, tod: u32) -> Option<DaySpan> {
        if hour >= 24 {
            return None;
        }
        let two = |at: usize| i64::from(key[at] & 0x0f) * 10 + i64::from(key[at + 1] & 0x0f);
        match self.sticky_fast {
            FastKind::Syslog => {
                if !fast::syslog_day(&key[..6]) {
                    return None;
                }
                let month = civil::month_abbr(&key[..3])?;
                self.clock.day_span(month, two(4), i64::from(tod))
            }
            FastKind::Iso => {
                let ti = self.order.get(self.last_idx)?.t;
                if !fast::iso_day(key, &self.templates[ti].exy) {
                    return None;
                }
                let year = two(0) * 100 + two(2);
                self.clock.date_span(year, two(5), two(8), i64::from(tod))
            }
            FastKind::None => None,
        }
    }

    /// [`DateDetector::detect`] without the sticky shortcut.
    fn detect_general(&mut self, line: &str) -> Option<DateHit> {
        let (ti, f) = self.match_time(line)?;
        // key: the whole match (all field groups lie inside it)
        let text = line.as_bytes().get(f.start..f.end).unwrap_or(&[]);
        let now = self.clock.now();
        let time = if f.g1.0 == f.g1.1 {
            now as f64
        } else if let Some(t) = self.last_val.as_ref().and_then(|(lt, ln, len, buf, t)| {
            (*lt == ti && *ln == now && buf.get(..*len) == Some(text)).then_some(*t)
        }) {
            t
        } else {
            let t = self.value(ti, line, &f).unwrap_or(f64::NAN);
            if text.len() <= LAST_TEXT {
                let mut buf = [0u8; LAST_TEXT];
                buf[..text.len()].copy_from_slice(text);
                self.last_val = Some((ti, now, text.len(), buf, t));
            }
            t
        };
        Some(DateHit {
            start: f.g1.0,
            end: f.g1.1,
            time,
            template: ti,
        })
    }
}

/// Regex search of template `t` on `hay` from `pos`.
fn search_regex(
    t: &Template,
    locs: &mut Option<regex::CaptureLocations>,
    hay: &str,
    pos: usize,
) -> Option<Found> {
    // a built-in regex that does not compile (a bug, caught by the
    // `default_templates_compile` test) matches nothing
    let c = t.re.get().ok()?;
    if locs.is_none() {
        if let Engine::Std(re) = &c.engine {
            *locs = Some(re.capture_locations());
        }
    }
    // Templates whose python lookbehind is consumed here must start searching earlier
    // and skip matches whose date starts before `pos`.
    let mut from = if t.start_is_g1 { 0 } else { pos };
    loop {
        let (f, next) = search_once(t, c, locs, hay, from)?;
        if !t.start_is_g1 || f.start >= pos {
            return Some(f);
        }
        if next > hay.len() {
            return None;
        }
        from = next;
    }
}

/// One search; returns the match and the position to continue from.
fn search_once(
    t: &Template,
    c: &Compiled,
    locs: &mut Option<regex::CaptureLocations>,
    hay: &str,
    from: usize,
) -> Option<(Found, usize)> {
    match (&c.engine, locs.as_mut()) {
        (Engine::Std(re), Some(l)) => {
            re.captures_read_at(l, hay, from)?;
            let l: &regex::CaptureLocations = l;
            build_found(t, c, hay, |i| l.get(i))
        }
        (Engine::Fancy(re), _) => {
            let m = re.captures_from_pos(hay, from).ok()??;
            build_found(t, c, hay, |i| m.get(i).map(|g| (g.start(), g.end())))
        }
        _ => None,
    }
}

fn build_found(
    t: &Template,
    c: &Compiled,
    hay: &str,
    get: impl Fn(usize) -> Option<(usize, usize)>,
) -> Option<(Found, usize)> {
    let whole = get(0)?;
    let (v, g1) = c
        .date_groups
        .iter()
        .enumerate()
        .find_map(|(v, g)| get(*g).map(|r| (v, r)))?;
    let mut f = Found::new(whole.0, whole.1);
    f.g1 = g1;
    if t.start_is_g1 {
        f.start = g1.0;
    }
    f.val = match t.value {
        ValueKind::Epoch { grp, .. } => get(c.date_groups[v] + grp - 1).unwrap_or(g1),
        _ => g1,
    };
    for &(gi, fl) in &c.fields {
        if let Some((s, e)) = get(gi) {
            f.push(fl, s, e);
        }
    }
    let step = |at: usize| {
        at + hay
            .get(at..)
            .and_then(|r| r.chars().next())
            .map_or(1, char::len_utf8)
    };
    Some((f, step(whole.0)))
}

/// Offset in seconds east of UTC of a zone written as fail2ban's `logtimezone` and `%Z`/`%z`
/// accept it (`UTC`, `UTC+0200`, `CET`, `+02:00`); `None` if the text is not such a zone.
pub fn zone_offset_seconds(text: &str) -> Option<i32> {
    zone::zone_offset(text).map(|minutes| minutes * 60)
}
