//! Compiling one fail2ban date template into a Rust regex.
//!
//! Receives a `datepattern` entry (strftime-like `%X` fields inside a Python regex, or
//! `EPOCH`/`LEPOCH`/`TAI64N`) and emits a [`Template`]: fail2ban's display name, flags,
//! and a compiled matcher with the capture groups that hold the date text and each
//! strftime field. The Python regex fail2ban would build is reproduced step by step
//! (boundaries, group wrapping, `**`, global flags), then translated: the boundary
//! lookaheads become `\b{end-half}` assertions, `(?P<_sep>[-/.])…(?P=_sep)` backrefs are
//! expanded into one alternative per separator, so the fast `regex` crate runs every
//! default template; `fancy-regex` is used only for user patterns that need it.

use std::sync::OnceLock;

use super::civil::Field;
use super::DateError;

/// Template flags (fail2ban `DateTemplate.LINE_BEGIN` etc.).
pub(crate) const LINE_BEGIN: u8 = 8;
pub(crate) const LINE_END: u8 = 4;

/// Rust spelling of fail2ban's `(?=^|\b|\W)` (exact except for an empty match at the
/// very end of a line after a non-word character).
const BOUND_BEG: &str = r"(?:^|\b|\b{end-half})";
/// Rust spelling of fail2ban's `(?=\b|\W|$)` (exact).
const BOUND_END: &str = r"(?:\b|\b{end-half})";
const PY_BOUND_BEG: &str = r"(?=^|\b|\W)";
const PY_BOUND_END: &str = r"(?=\b|\W|$)";
const LN_BEG: &str = r"^(?:\W{0,2})?";

/// A compiled regex in the engine it needs.
#[derive(Clone, Debug)]
pub(crate) enum Engine {
    Std(regex::Regex),
    Fancy(Box<fancy_regex::Regex>),
}

/// How the date value is computed from a match.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ValueKind {
    /// strftime fields.
    Fields,
    /// Unix seconds in (python) group `grp` of the variant; `long` = LEPOCH scaling.
    Epoch { long: bool, grp: usize },
    /// `@` + 24 hex digits.
    Tai64n,
}

/// Which hand-written fast matcher (see `fast.rs`) a template has.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum FastKind {
    None,
    /// `{^LN-BEG}(?:DAY )?MON Day %k:Minute:Second(?:\.Microseconds)?(?: ExYear)?`
    Syslog,
    /// `{^LN-BEG}ExYear(?P<_sep>[-/.])Month(?P=_sep)Day(?:T|  ?)24hour:…`
    Iso,
}

/// One compiled date template.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    /// fail2ban's display name (`fail2ban-regex` "Date template hits").
    pub name: String,
    pub flags: u8,
    /// fail2ban's template weight (anchored default copies: 100).
    pub weight: f64,
    /// The regex, compiled on first use (user patterns: at construction).
    pub re: std::sync::Arc<LazyRe>,
    pub value: ValueKind,
    /// Python's match start is group 1's start (lookbehind emulated by consuming).
    pub start_is_g1: bool,
    pub fast: FastKind,
    /// Years accepted by `%ExY` (for the fast matchers).
    pub exy: YearSet,
    pub is_none: bool,
}

/// What a template's regex is compiled from.
#[derive(Debug)]
enum ReSrc {
    /// A python regex from `set_regex` (and the `datepattern` entry, for errors).
    Py { py: String, pattern: String },
    /// A Rust regex with the date text in group 1 and no strftime fields.
    Plain(String),
}

/// A template's regex, compiled once on first use and shared by every clone of the
/// template (the default templates are cached per process, so by every detector).
/// Built-in templates are known-good and compiled only when a line needs them;
/// user patterns are compiled at construction so their errors are reported there.
#[derive(Debug)]
pub(crate) struct LazyRe {
    src: ReSrc,
    cell: OnceLock<Result<Compiled, DateError>>,
}

impl LazyRe {
    /// The compiled regex (compiling it now if no one has yet).
    pub(crate) fn get(&self) -> Result<&Compiled, &DateError> {
        self.cell
            .get_or_init(|| match &self.src {
                ReSrc::Py { py, pattern } => compile(py, pattern),
                ReSrc::Plain(rs) => regex::Regex::new(rs)
                    .map(|re| Compiled {
                        engine: Engine::Std(re),
                        date_groups: vec![1],
                        fields: Vec::new(),
                    })
                    .map_err(|e| DateError::Internal(e.to_string())),
            })
            .as_ref()
    }

    /// Whether the regex has been compiled (for tests).
    #[cfg(test)]
    pub(crate) fn is_compiled(&self) -> bool {
        self.cell.get().is_some()
    }
}

/// A template regex from `src`: compiled now unless `ctx.lazy`.
fn lazy_re(src: ReSrc, ctx: &Ctx) -> Result<std::sync::Arc<LazyRe>, DateError> {
    let re = LazyRe {
        src,
        cell: OnceLock::new(),
    };
    if !ctx.lazy {
        re.get().map_err(Clone::clone)?;
    }
    Ok(std::sync::Arc::new(re))
}

/// `%ExY`'s accepted years as a bitmap over 0..10000.
#[derive(Clone, Debug)]
pub(crate) struct YearSet(std::sync::Arc<Vec<u64>>);

impl YearSet {
    pub(crate) fn contains(&self, y: usize) -> bool {
        self.0.get(y / 64).is_some_and(|w| w & (1 << (y % 64)) != 0)
    }
}

/// Python-regex helpers of fail2ban's template code, compiled once (startup invariant).
struct Meta {
    globalflags: fancy_regex::Regex,
    no_bound_beg: fancy_regex::Regex,
    no_bound_end: fancy_regex::Regex,
    grouped: fancy_regex::Regex,
    group_wrap: fancy_regex::Regex,
    del_bounds: fancy_regex::Regex,
    line_beg: fancy_regex::Regex,
    line_end: fancy_regex::Regex,
    alpha: fancy_regex::Regex,
    epoch_ph: fancy_regex::Regex,
}

fn meta() -> Result<&'static Meta, DateError> {
    static META: OnceLock<Result<Meta, String>> = OnceLock::new();
    let m = META.get_or_init(|| {
        let c = |s: &str| fancy_regex::Regex::new(s).map_err(|e| e.to_string());
        Ok(Meta {
            globalflags: c(r"((?:^|(?!<\\))\(\?[a-z]+\))")?,
            no_bound_beg: c(r"^\(*(?:\(\?\w+\))?(?:\^|\(*\*\*|\((?:\?:)?\^)")?,
            no_bound_end: c(r"(?<!\\)(?:\$\)?|\\b|\\s|\*\*\)*)$")?,
            grouped: c(r"(?<!(?:\(\?))(?<!\\)\((?!\?)")?,
            group_wrap: c(r"^((?:\(\?\w+\))?\^?(?:\(\?\w+\))?)(.*?)(\$?)$")?,
            del_bounds: c(r"^\(*(?:\(\?\w+\))?\(*\*\*|(?<!\\)\*\*\)*$")?,
            line_beg: c(r"^(?:\(\?\w+\))?(?:\^|\((?:\?:)?\^(?!\|))")?,
            line_end: c(r"(?<![\\\|])(?:\$\)?)$")?,
            alpha: c(r"(?<!\%)\%[aAbBpc]")?,
            epoch_ph: c(r"(?i)(?<!\\)\{L?EPOCH\}")?,
        })
    });
    m.as_ref().map_err(|e| DateError::Internal(e.clone()))
}

fn fm(re: &fancy_regex::Regex, s: &str) -> bool {
    re.is_match(s).unwrap_or(false)
}

/// Builds the `%ExY` group body (`20[012]\d` …) fail2ban derives from the current
/// year: centuries of now−1 and now+3, plus every third year since 2000. fail2ban
/// computes it from the wall clock at start, even when tests move `now` back to 2005;
/// the wall clock is never before 2025, so the year used is at least that.
pub(crate) fn exy_regex(now_year: i64) -> (String, YearSet) {
    let real = now_year.max(2025);
    let cent = |y: i64| -> String { y.to_string().chars().take(3).collect() };
    let mut set: Vec<String> = vec![cent(real - 1), cent(real + 3)];
    let mut y = 2000;
    while y <= real {
        set.push(cent(y));
        y += 3;
    }
    if now_year < real {
        set.push(cent(now_year - 1));
        set.push(cent(now_year + 3));
    }
    set.sort();
    set.dedup();
    let mut bits = vec![0u64; 10_000 / 64 + 1];
    for c in &set {
        if let Ok(p) = c.parse::<usize>() {
            for y in p * 10..(p * 10 + 10).min(10_000) {
                bits[y / 64] |= 1 << (y % 64);
            }
        }
    }
    (
        format!("{}\\d", grp(&set)),
        YearSet(std::sync::Arc::new(bits)),
    )
}

fn grp(set: &[String]) -> String {
    if set.len() > 1 {
        let mut common: Option<&str> = None;
        for s in set {
            let head = &s[..s.len().saturating_sub(1)];
            match common {
                None => common = Some(head),
                Some(c) if c == head => {}
                _ => {
                    common = None;
                    break;
                }
            }
        }
        if common.is_none_or(|c| c.is_empty()) {
            common = None;
            for s in set {
                let head = s.get(..1).unwrap_or("");
                match common {
                    None => common = Some(head),
                    Some(c) if c == head => {}
                    _ => {
                        common = None;
                        break;
                    }
                }
            }
        }
        if let Some(c) = common.filter(|c| !c.is_empty()) {
            let rest: Vec<String> = set.iter().map(|s| s[c.len()..].to_string()).collect();
            return format!("{c}{}", grp(&rest));
        }
    }
    if set.len() > 1 {
        if set[0].len() > 1 {
            format!("(?:{})", set.join("|"))
        } else {
            format!("[{}]", set.concat())
        }
    } else {
        set.concat()
    }
}

/// The strftime directive table: (key, regex, display name).
fn directive(key: &str, exy: &str) -> Option<(String, String)> {
    let (re, name): (&str, &str) = match key {
        "%" => ("%", "%"),
        "a" => ("(?P<a>mon|tue|wed|thu|fri|sat|sun)", "DAY"),
        "A" => ("(?P<A>wednesday|thursday|saturday|tuesday|monday|friday|sunday)", "DAYNAME"),
        "b" => ("(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)", "MON"),
        "B" => (
            "(?P<B>september|february|november|december|january|october|august|march|april|june|july|may)",
            "MONTH",
        ),
        "c" => (
            r"(?P<a>mon|tue|wed|thu|fri|sat|sun)\s+(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\s+(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])\s+(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[0-1]|[0-5]\d|\d)\s+(?P<Y>\d\d\d\d)",
            "%c",
        ),
        "d" => (r"(?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])", "Day"),
        "f" => ("(?P<f>[0-9]{1,6})", "Microseconds"),
        "G" => (r"(?P<G>\d\d\d\d)", "%G"),
        "H" => (r"(?P<H>[0-1]?\d|2[0-3])", "24hour"),
        "I" => (r"(?P<I>1[0-2]|0[1-9]|[1-9])", "12hour"),
        "j" => (
            r"(?P<j>36[0-6]|3[0-5]\d|[1-2]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])",
            "Yearday",
        ),
        "k" => (r" ?(?P<H>[0-2]?\d)", "%k"),
        "l" => (r" ?(?P<I>1?\d)", "%l"),
        "m" => (r"(?P<m>0?[1-9]|1[0-2])", "Month"),
        "M" => (r"(?P<M>[0-5]?\d)", "Minute"),
        "p" => ("(?P<p>am|pm)", "AMPM"),
        "S" => (r"(?P<S>[0-5]?\d|6[0-1])", "Second"),
        "u" => ("(?P<u>[1-7])", "%u"),
        "U" => (r"(?P<U>5[0-3]|[0-4]\d|\d)", "Yearweek"),
        "V" => (r"(?P<V>5[0-3]|0[1-9]|[1-4]\d|\d)", "%V"),
        "w" => ("(?P<w>[0-6])", "Weekday"),
        "W" => (r"(?P<W>5[0-3]|[0-4]\d|\d)", "Yearweek"),
        "x" => (
            r"(?P<m>1[0-2]|0[1-9]|[1-9])/(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])/(?P<y>\d\d)",
            "%x",
        ),
        "X" => (
            r"(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[0-1]|[0-5]\d|\d)",
            "%X",
        ),
        "y" => (r"(?P<y>\d\d)", "Year2"),
        "Y" => (r"(?P<Y>\d{4})", "Year"),
        "z" => (r"(?P<z>Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)", "Zone offset"),
        "Z" => ("(?P<Z>Z|[A-Z]{3,5})", "Zone name"),
        "ExH" => (r"(?P<H>[0-1]\d|2[0-3])", "Ex24hour"),
        "ExM" => (r"(?P<M>[0-5]\d)", "ExMinute"),
        "ExS" => (r"(?P<S>[0-5]\d|6[0-1])", "ExSecond"),
        "ExY" => return Some((format!("(?P<Y>{exy})"), "ExYear".into())),
        "ExZ" => ("(?P<Z>[A-Z](?:[A-Z]{2,4})?)", "ExZone name"),
        "Exd" => (r"(?P<d>[1-2]\d|0[1-9]|3[0-1])", "ExDay"),
        "Exk" => (r" ?(?P<H>[0-1]?\d|2[0-3])", "%Exk"),
        "Exl" => (r" ?(?P<I>1[0-2]|\d)", "%Exl"),
        "Exm" => ("(?P<m>0[1-9]|1[0-2])", "ExMonth"),
        "Exy" => (r"(?P<y>\d{2})", "ExYear2"),
        "Exz" => (
            r"(?P<z>(?:[A-Z](?:[A-Z]{2,4})?)?[+-][01]\d(?::?\d{2})?|[A-Z](?:[A-Z]{2,4})?)",
            "ExZone offset",
        ),
        _ => return None,
    };
    Some((re.to_string(), name.to_string()))
}

const EX_KEYS: [&str; 13] = [
    "ExH", "ExM", "ExS", "ExY", "ExZ", "Exd", "Exk", "Exl", "Exm", "Exy", "Exz", "ExH", "ExH",
];

/// Replaces `%X` directives: returns (display name, python regex).
fn expand_directives(pattern: &str, exy: &str) -> Result<(String, String), String> {
    let mut name = String::with_capacity(pattern.len() * 2);
    let mut re = String::with_capacity(pattern.len() * 4);
    let mut rest = pattern;
    while let Some(p) = rest.find('%') {
        name.push_str(&rest[..p]);
        re.push_str(&rest[..p]);
        let after = &rest[p + 1..];
        let key = if after.starts_with('%') {
            Some("%")
        } else if let Some(k) = EX_KEYS.iter().find(|k| after.starts_with(**k)) {
            Some(*k)
        } else {
            after.get(..1).filter(|k| directive(k, exy).is_some())
        };
        let Some(key) = key else {
            return Err(format!("unsupported format at `{}`", &rest[p..]));
        };
        let (r, n) = directive(key, exy).ok_or("bad directive")?;
        name.push_str(&n);
        re.push_str(&r);
        rest = &after[key.len()..];
    }
    name.push_str(rest);
    re.push_str(rest);
    Ok((name, re))
}

/// Word-begin mode of fail2ban's `setRegex`.
#[derive(Clone, Copy, PartialEq)]
enum Begin {
    No,
    Word,
    Start,
}

/// What `DateTemplate.setRegex` produced.
struct Built {
    flags: u8,
    /// global flags like `(?iu)` (already at front of `py`).
    py: String,
    name_ln_beg: bool,
}

/// fail2ban `DateTemplate.setRegex` on a python regex.
fn set_regex(regex: &str, begin: Begin, end: bool) -> Result<Built, DateError> {
    let m = meta()?;
    let mut regex = regex.trim().to_string();
    let mut gf = String::new();
    if let Ok(Some(c)) = m.globalflags.captures(&regex) {
        if let Some(g) = c.get(1) {
            gf = g.as_str().to_string();
            let r = g.range();
            regex.replace_range(r, "");
        }
    }
    let bound_begin = begin != Begin::No && !fm(&m.no_bound_beg, &regex);
    let bound_end = end && !fm(&m.no_bound_end, &regex);
    if !fm(&m.grouped, &regex) {
        if let Ok(Some(c)) = m.group_wrap.captures(&regex) {
            let g = |i| c.get(i).map_or("", |x| x.as_str());
            regex = format!("{}({}){}", g(1), g(2), g(3));
        }
    }
    let mut flags = 0;
    let mut name_ln_beg = false;
    if bound_begin {
        if begin == Begin::Start {
            flags |= LINE_BEGIN;
            regex = format!("{LN_BEG}{regex}");
            name_ln_beg = true;
        } else {
            regex = format!("{PY_BOUND_BEG}{regex}");
        }
    }
    if bound_end {
        regex.push_str(PY_BOUND_END);
    }
    if flags & LINE_BEGIN == 0 && fm(&m.line_beg, &regex) {
        flags |= LINE_BEGIN;
    }
    if fm(&m.line_end, &regex) {
        flags |= LINE_END;
    }
    // remove `**` at begin/end
    if let Ok(r) = m
        .del_bounds
        .try_replacen(&regex, 0, |c: &fancy_regex::Captures<'_, str>| {
            c.get(0)
                .map_or(String::new(), |x| x.as_str().replace("**", ""))
        })
    {
        regex = r.into_owned();
    }
    Ok(Built {
        flags,
        py: format!("{gf}{regex}"),
        name_ln_beg,
    })
}

/// Scans a python regex: returns (capture group count, group-1-is-first) and renames
/// named groups to unique `f{n}_{name}` names.
fn rename_groups(py: &str, counter: &mut usize) -> (String, usize) {
    let b = py.as_bytes();
    let mut out = String::with_capacity(py.len() + 16);
    let mut groups = 0;
    let mut i = 0;
    let mut in_class = false;
    let mut last = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b'[' if !in_class => {
                in_class = true;
                // `[]…]` and `[^]…]`: the first `]` is literal
                if b.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if b.get(i + 1) == Some(&b']') {
                    i += 1;
                }
            }
            b']' if in_class => in_class = false,
            b'(' if !in_class => {
                if b.get(i + 1) != Some(&b'?') {
                    groups += 1;
                } else if py[i..].starts_with("(?P<") {
                    groups += 1;
                    if let Some(e) = py[i + 4..].find('>') {
                        let name = &py[i + 4..i + 4 + e];
                        out.push_str(&py[last..i]);
                        *counter += 1;
                        out.push_str(&format!("(?P<f{}_{}>", *counter, name));
                        i += 5 + e;
                        last = i;
                        continue;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&py[last.min(py.len())..]);
    (out, groups)
}

/// Expands `(?P<n>[abc])…(?P=n)` into variants, one per character of the class.
/// Returns `None` if a backref can't be expanded (then fancy-regex is needed).
fn expand_backrefs(py: &str) -> Option<Vec<String>> {
    let Some(p) = py.find("(?P=") else {
        return Some(vec![py.to_string()]);
    };
    let e = py[p..].find(')')?;
    let name = &py[p + 4..p + e];
    let def = format!("(?P<{name}>[");
    let d = py.find(&def)?;
    let cls_start = d + def.len();
    let cls_end = cls_start + py[cls_start..].find("])")?;
    let cls = &py[cls_start..cls_end];
    if cls.is_empty() || cls.starts_with('^') || cls.contains('\\') || cls.chars().count() > 8 {
        return None;
    }
    let chars: Vec<char> = cls.chars().collect();
    for (k, c) in chars.iter().enumerate() {
        if *c == '-' && k != 0 && k != chars.len() - 1 {
            return None;
        }
    }
    let backref = format!("(?P={name})");
    let mut out = Vec::new();
    for c in chars {
        let lit = regex::escape(&c.to_string());
        let mut v = String::with_capacity(py.len());
        v.push_str(&py[..d]);
        v.push_str(&format!("(?P<{name}>{lit})"));
        v.push_str(&py[cls_end + 2..].replace(&backref, &format!("(?:{lit})")));
        out.extend(expand_backrefs(&v)?);
    }
    Some(out)
}

/// Python-only syntax Rust's parsers reject: `{,n}` → `{0,n}`.
fn py_fixups(s: &str) -> String {
    s.replace("{,", "{0,")
}

/// A compiled template regex.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub engine: Engine,
    /// Rust group index of python group 1 (date text), one per expanded variant;
    /// python group k of a variant = `date_groups[v] + k - 1`.
    pub date_groups: Vec<usize>,
    /// Rust group index → strftime field, ascending.
    pub fields: Vec<(usize, Field)>,
}

fn compile(py: &str, pattern: &str) -> Result<Compiled, DateError> {
    let bad = |reason: String| DateError::BadPattern {
        pattern: pattern.to_string(),
        reason,
    };
    // boundaries → Rust assertions (same meaning, no lookahead)
    let mut rs = py.to_string();
    if let Some(s) = rs.strip_suffix(PY_BOUND_END) {
        rs = format!("{s}{BOUND_END}");
    }
    rs = rs.replacen(PY_BOUND_BEG, BOUND_BEG, 1);
    let mut counter = 0;
    let mut variants = Vec::new();
    let mut date_groups = Vec::new();
    let mut offset = 0;
    let expanded = expand_backrefs(&rs);
    let fancy_needed = expanded.is_none();
    for v in expanded.unwrap_or_else(|| vec![rs.clone()]) {
        let (renamed, n) = rename_groups(&py_fixups(&v), &mut counter);
        date_groups.push(offset + 1);
        offset += n;
        variants.push(renamed);
    }
    let full = if variants.len() == 1 {
        variants.concat()
    } else {
        format!("(?:{})", variants.join("|"))
    };
    let engine = match (!fancy_needed).then(|| regex::Regex::new(&full)) {
        Some(Ok(r)) => Engine::Std(r),
        _ => {
            // fancy: python backrefs refer to the original names
            let fixed = restore_backref_names(&full);
            Engine::Fancy(Box::new(
                fancy_regex::Regex::new(&fixed).map_err(|e| bad(e.to_string()))?,
            ))
        }
    };
    let names: Vec<(usize, Option<String>)> = match &engine {
        Engine::Std(r) => r
            .capture_names()
            .enumerate()
            .map(|(i, n)| (i, n.map(str::to_string)))
            .collect(),
        Engine::Fancy(r) => r
            .capture_names()
            .enumerate()
            .map(|(i, n)| (i, n.map(str::to_string)))
            .collect(),
    };
    let mut fields = Vec::new();
    for (i, n) in names {
        let Some(n) = n else { continue };
        let orig = n.split_once('_').map_or(n.as_str(), |(_, o)| o);
        if let Some(f) = Field::from_name(orig) {
            fields.push((i, f));
        }
    }
    if date_groups.iter().any(|g| *g > offset) {
        return Err(bad("no capturing group".into()));
    }
    Ok(Compiled {
        engine,
        date_groups,
        fields,
    })
}

/// In the fancy path the renamed groups `f3_x` are referenced as `(?P=x)`: map each
/// backref to the renamed group of the same original name.
fn restore_backref_names(s: &str) -> String {
    let mut out = s.to_string();
    let mut from = 0;
    while let Some(p) = out[from..].find("(?P=") {
        let p = from + p;
        let Some(e) = out[p..].find(')') else { break };
        let name = out[p + 4..p + e].to_string();
        let needle = format!("_{name}>");
        let renamed = out[..p].rfind(&needle).and_then(|q| {
            let st = out[..q].rfind("(?P<")? + 4;
            Some(out[st..q + 1 + name.len()].to_string())
        });
        let rep = renamed.map_or_else(|| format!("(?P={name})"), |r| format!("(?P={r})"));
        out.replace_range(p..p + e + 1, &rep);
        from = p + rep.len();
    }
    out
}

/// Compile context: the `%ExY` body and its year set.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub exy: String,
    pub exy_set: YearSet,
    /// Compile template regexes on first use (built-in default templates only).
    pub lazy: bool,
}

impl Ctx {
    pub(crate) fn new(now_year: i64) -> Ctx {
        let (exy, exy_set) = exy_regex(now_year);
        Ctx {
            exy,
            exy_set,
            lazy: false,
        }
    }
}

fn template(
    name: String,
    built: Built,
    re: std::sync::Arc<LazyRe>,
    value: ValueKind,
    ctx: &Ctx,
) -> Template {
    Template {
        name,
        flags: built.flags,
        weight: 1.0,
        re,
        value,
        start_is_g1: false,
        fast: FastKind::None,
        exy: ctx.exy_set.clone(),
        is_none: false,
    }
}

/// fail2ban `DatePatternRegex(pattern)`.
pub(crate) fn pattern_template(pattern: &str, ctx: &Ctx) -> Result<Template, DateError> {
    let bad = |reason: String| DateError::BadPattern {
        pattern: pattern.to_string(),
        reason,
    };
    let m = meta()?;
    let mut p = pattern;
    let (mut begin, mut end) = (Begin::Word, true);
    if let Some(r) = p.strip_prefix("{UNB}") {
        p = r;
        begin = Begin::No;
        end = false;
    }
    if begin != Begin::No {
        if let Some(r) = p.strip_prefix("{^LN-BEG}") {
            p = r;
            begin = Begin::Start;
        }
    }
    let (mut name, mut py) = expand_directives(p, &ctx.exy).map_err(bad)?;
    if fm(&m.alpha, p) {
        py = format!("(?iu){py}");
    }
    let built = set_regex(&py, begin, end)?;
    if built.name_ln_beg && !name.starts_with("{^LN-BEG}") {
        name = format!("{{^LN-BEG}}{name}");
    }
    let src = ReSrc::Py {
        py: built.py.clone(),
        pattern: pattern.to_string(),
    };
    let re = lazy_re(src, ctx)?;
    Ok(template(name, built, re, ValueKind::Fields, ctx))
}

const EPOCH_RE: &str = r"\d{10,11}\b(?:\.\d{3,6})?";
const LEPOCH_RE: &str = r"\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?";

/// fail2ban `DateEpoch`: `pattern` = custom pattern with `{EPOCH}`/`{LEPOCH}`.
pub(crate) fn epoch_template(
    line_begin_only: bool,
    long: bool,
    pattern: Option<&str>,
    ctx: &Ctx,
) -> Result<Template, DateError> {
    let num = if long { LEPOCH_RE } else { EPOCH_RE };
    if let Some(pat) = pattern {
        let m = meta()?;
        let inner = m
            .epoch_ph
            .replace_all(pat, |_: &fancy_regex::Captures<'_, str>| format!("({num})"));
        let built = set_regex(&format!("({inner})"), Begin::Word, true)?;
        let src = ReSrc::Py {
            py: built.py.clone(),
            pattern: pat.to_string(),
        };
        let re = lazy_re(src, ctx)?;
        return Ok(template(
            pat.to_string(),
            built,
            re,
            ValueKind::Epoch { long, grp: 2 },
            ctx,
        ));
    }
    let base = if long { "LongEpoch" } else { "Epoch" };
    // Python: `((?:^|(?P<square>(?<=^\[))|(?P<selinux>(?<=\baudit\()))EPOCH)(?:conditionals)`.
    // The conditionals never reject a match (each alternative is empty when its group
    // is unset), so only the start positions matter; the lookbehinds are consumed
    // instead and the match start is moved to group 1.
    let (name, rs, flags, start_is_g1) = if line_begin_only {
        (
            format!("{{^LN-BEG}}{base}"),
            format!("{LN_BEG}({num}){BOUND_END}"),
            LINE_BEGIN,
            false,
        )
    } else {
        (
            base.to_string(),
            format!(r"(?:^\[?|\baudit\()({num}){BOUND_END}"),
            0,
            true,
        )
    };
    let re = lazy_re(ReSrc::Plain(rs), ctx)?;
    Ok(Template {
        name,
        flags,
        weight: 1.0,
        re,
        value: ValueKind::Epoch { long, grp: 1 },
        start_is_g1,
        fast: FastKind::None,
        exy: ctx.exy_set.clone(),
        is_none: false,
    })
}

/// fail2ban `DateTai64n`.
pub(crate) fn tai64n_template(start: bool, ctx: &Ctx) -> Result<Template, DateError> {
    let (name, rs, flags) = if start {
        (
            "{^LN-BEG}TAI64N".to_string(),
            format!("{LN_BEG}(@[0-9a-f]{{24}}){BOUND_END}"),
            LINE_BEGIN,
        )
    } else {
        (
            "TAI64N".to_string(),
            format!("(@[0-9a-f]{{24}}){BOUND_END}"),
            0,
        )
    };
    let re = lazy_re(ReSrc::Plain(rs), ctx)?;
    Ok(Template {
        name,
        flags,
        weight: 1.0,
        re,
        value: ValueKind::Tai64n,
        start_is_g1: false,
        fast: FastKind::None,
        exy: ctx.exy_set.clone(),
        is_none: false,
    })
}

/// fail2ban `_getPatternTemplate`: a single (non-special-list) datepattern entry.
pub(crate) fn get_pattern_template(pattern: &str, ctx: &Ctx) -> Result<Template, DateError> {
    let key = if pattern.contains('%') {
        pattern.to_string()
    } else {
        pattern.to_uppercase()
    };
    if key.contains("EPOCH") {
        if fm(&meta()?.epoch_ph, pattern) {
            return epoch_template(false, key.contains("LEPOCH"), Some(pattern), ctx);
        }
        match key.as_str() {
            "EPOCH" => return epoch_template(false, false, None, ctx),
            "{^LN-BEG}EPOCH" | "^EPOCH" => return epoch_template(true, false, None, ctx),
            "LEPOCH" => return epoch_template(false, true, None, ctx),
            "{^LN-BEG}LEPOCH" | "^LEPOCH" => return epoch_template(true, true, None, ctx),
            _ => {}
        }
    }
    match key.as_str() {
        "TAI64N" => tai64n_template(false, ctx),
        "{^LN-BEG}TAI64N" | "^TAI64N" => tai64n_template(true, ctx),
        _ => pattern_template(pattern, ctx),
    }
}

/// fail2ban's 17 default template patterns, in order.
pub(crate) const DEFAULT_PATTERNS: [&str; 17] = [
    r"%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?",
    r"%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S",
    r"%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?",
    r"%m/%d/%ExY:%H:%M:%S",
    r"%m-%d-%ExY %k:%M:%S(?:\.%f)?",
    r"EPOCH",
    r"{^LN-BEG}%H:%M:%S",
    r"^<%m/%d/%Exy@%H:%M:%S>",
    r"%Exy%Exm%Exd  ?%H:%M:%S",
    r"%b %d, %ExY %I:%M:%S %p",
    r"^%b-%d-%Exy %k:%M:%S",
    r"%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"TAI64N",
];

/// The full default list (anchored copies first, weight 100), as fail2ban's
/// `DateDetectorCache` builds it: 14 anchored + 17 plain.
pub(crate) fn default_templates(ctx: &Ctx) -> Result<Vec<Template>, DateError> {
    // Compiled once per `%ExY` variant: every jail shares them (regexes are Arc'd).
    type Cache = std::sync::Mutex<Vec<(String, Vec<Template>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Ok(c) = cache.lock() {
        if let Some((_, l)) = c.iter().find(|(k, _)| *k == ctx.exy) {
            return Ok(l.clone());
        }
    }
    let list = build_default_templates(ctx)?;
    if let Ok(mut c) = cache.lock() {
        c.push((ctx.exy.clone(), list.clone()));
    }
    Ok(list)
}

fn build_default_templates(ctx: &Ctx) -> Result<Vec<Template>, DateError> {
    // known-good: compiled when a line first needs them (see `LazyRe`)
    let ctx = &Ctx {
        lazy: true,
        ..ctx.clone()
    };
    let mut anchored = Vec::new();
    let mut plain = Vec::new();
    for (i, p) in DEFAULT_PATTERNS.iter().enumerate() {
        let t = get_pattern_template(p, ctx)?;
        if !t.name.starts_with("{^LN-BEG}") && !t.name.starts_with('^') {
            let mut a = get_pattern_template(&format!("{{^LN-BEG}}{p}"), ctx)?;
            if a.name != t.name {
                a.weight = 100.0;
                a.fast = match i {
                    0 => FastKind::Iso,
                    1 => FastKind::Syslog,
                    _ => FastKind::None,
                };
                anchored.push(a);
            }
        }
        plain.push(t);
    }
    anchored.extend(plain);
    Ok(anchored)
}

/// fail2ban `DateTemplate.unboundPattern`.
fn unbound(s: &str) -> &str {
    let s = s.strip_prefix("{UNB}").unwrap_or(s);
    let s = s.strip_prefix("{^LN-BEG}").unwrap_or(s);
    let s = s
        .strip_prefix(r"(?:^|\b|\W)")
        .or_else(|| s.strip_prefix(r"(^|\b|\W)"))
        .unwrap_or(s);
    s.strip_suffix(PY_BOUND_END).unwrap_or(s)
}

/// Replaces every `{DATE}` (any case, not escaped) in `pre` by `with`.
fn sub_date(pre: &str, with: &str) -> String {
    let mut out = String::with_capacity(pre.len() + with.len());
    let lower = pre.to_ascii_lowercase();
    let mut last = 0;
    let mut from = 0;
    while let Some(p) = lower[from..].find("{date}") {
        let p = from + p;
        if p > 0 && pre.as_bytes()[p - 1] == b'\\' {
            from = p + 6;
            continue;
        }
        out.push_str(&pre[last..p]);
        out.push_str(with);
        last = p + 6;
        from = last;
    }
    out.push_str(&pre[last..]);
    out
}

/// `{DATE}` in a custom pattern: every base default template substituted in.
pub(crate) fn date_templates(pre: &str, ctx: &Ctx) -> Result<Vec<Template>, DateError> {
    let mut out = Vec::new();
    for p in DEFAULT_PATTERNS {
        let t = match p {
            // DateEpoch / DateTai64n have no `pattern`: fail2ban wraps their *name*
            // (`^Epoch` → the anchored epoch template; `^[^\[]*\[(Epoch)` → literal).
            "EPOCH" => get_pattern_template(&sub_date(pre, "Epoch"), ctx)?,
            "TAI64N" => get_pattern_template(&sub_date(pre, "TAI64N"), ctx)?,
            _ => get_pattern_template(&sub_date(pre, unbound(p)), ctx)?,
        };
        out.push(t);
    }
    Ok(out)
}

/// `{NONE}`: matches the empty string at line begin.
pub(crate) fn none_template(ctx: &Ctx) -> Result<Template, DateError> {
    let mut t = pattern_template("{UNB}^", ctx)?;
    t.is_none = true;
    Ok(t)
}
