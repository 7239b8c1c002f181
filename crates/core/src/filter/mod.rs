//! A compiled fail2ban filter and the per-source runner that turns log lines into failures.
//!
//! Owns the filter's regexes (prefregex, failregex, ignoreregex, each tag-expanded by
//! [`crate::failtags`] and compiled by [`crate::pyregex`]), its date detector and a literal
//! prefilter. Receives a [`FilterConfig`] (fail2ban syntax, tags unexpanded); emits a [`Filter`]
//! that is immutable and shared, and per log source a [`FilterRunner`] holding the mutable state
//! (line buffer for `maxlines`, multi-line failure-id cache, date detector). The runner receives
//! one decoded line at a time and emits a [`LineResult`] with the failures found, following
//! fail2ban's `Filter.processLine`/`findFailure` (`compat.md` §2.3, §9.3); or a block of raw
//! lines ([`block`]), passing over the lines its literal prefilter rules out.

mod block;
mod failset;
mod prefilter;
mod runner;

pub use block::BlockCounts;
pub use prefilter::Prefilter;
pub use runner::{
    Failure, FilterRunner, GroupName, GroupValue, HostKind, LastDate, LineMatches, LineResult,
    ProcessOptions,
};

use crate::date::{DateConfig, DateDetector, DateError};
use crate::failtags;
use crate::pyregex::{glob_to_local_flags, PyRegex, RegexError};

/// `usedns` of the jail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UseDns {
    /// Resolve host names (the DNS alternative of `<HOST>` is on).
    Yes,
    /// Resolve with a warning (fail2ban's default).
    #[default]
    Warn,
    /// No DNS: `<HOST>` has no DNS alternative.
    No,
    /// Keep host names as raw ids, no resolution.
    Raw,
}

/// Everything a filter is built from.
#[derive(Debug, Clone)]
pub struct FilterConfig {
    /// `prefregex` (fail2ban syntax, tags unexpanded).
    pub prefregex: Option<String>,
    /// `failregex` list.
    pub failregex: Vec<String>,
    /// `ignoreregex` list.
    pub ignoreregex: Vec<String>,
    /// `maxlines` (≥ 1).
    pub maxlines: usize,
    /// `datepattern` (newline-separated list) or the default templates.
    pub datepattern: Option<String>,
    /// `usedns`.
    pub usedns: UseDns,
    /// `logtimezone`, or local time.
    pub timezone: jiff::tz::TimeZone,
    /// Current time (seconds), for `%ExY` and year inference.
    pub now: i64,
}

/// Which list a regex belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegexKind {
    /// `prefregex`.
    Prefregex,
    /// `failregex`.
    Failregex,
    /// `ignoreregex`.
    Ignoreregex,
}

impl std::fmt::Display for RegexKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RegexKind::Prefregex => "prefregex",
            RegexKind::Failregex => "failregex",
            RegexKind::Ignoreregex => "ignoreregex",
        })
    }
}

/// Why a filter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// A regex does not compile.
    #[error("{kind} #{index} {regex:?}: {source}")]
    Regex {
        /// Its list.
        kind: RegexKind,
        /// Index in its list.
        index: usize,
        /// The regex as configured.
        regex: String,
        /// The compile error.
        #[source]
        source: RegexError,
    },
    /// A regex is empty (fail2ban: "Cannot add empty regex").
    #[error("{kind} #{index}: cannot add empty regex")]
    Empty {
        /// Its list.
        kind: RegexKind,
        /// Index in its list.
        index: usize,
    },
    /// A failregex has no failure-id group (fid, ip4, ip6, dns, mlfid), nor has the prefregex.
    #[error("failregex #{index}: No failure-id group in '{expanded}'")]
    NoFailureId {
        /// Index in the failregex list.
        index: usize,
        /// The tag-expanded regex.
        expanded: String,
    },
    /// `maxlines` is 0.
    #[error("maxlines must be integer greater than zero")]
    MaxLines,
    /// The date pattern is invalid.
    #[error("datepattern: {0}")]
    Date(#[from] DateError),
}

/// Group names with a meaning to the runner, resolved to indices once.
#[derive(Debug)]
pub(crate) struct CompiledRegex {
    pub(crate) re: PyRegex,
    /// Tag-expanded Python text, as fail2ban-regex prints it.
    pub(crate) expanded: String,
    /// Named groups: (index, name).
    pub(crate) named: Vec<(usize, runner::GroupName)>,
    /// `alt_<x>[_N]` groups: (group name, target name), sorted like fail2ban.
    pub(crate) alt: Vec<(runner::GroupName, runner::GroupName)>,
    /// `tuple_<x>[_N]` groups: (group name, target name), sorted.
    pub(crate) tuple: Vec<(runner::GroupName, runner::GroupName)>,
    /// Indices of `skiplinesN` groups in N order.
    pub(crate) skiplines: Vec<usize>,
    /// Index of each [`runner::LEAN_NAMES`] group, if the pattern has it.
    pub(crate) lean: [Option<usize>; runner::LEAN_NAMES.len()],
    /// Whether a failure of this pattern may be lean (see [`FilterRunner::set_lean`]): it has
    /// no `mlfid` (merged with other lines' data) nor `alt_`/`tuple_` groups (which fill
    /// other names).
    pub(crate) lean_ok: bool,
    /// The named groups a lean runner keeps when its failures go through the mlfid merge:
    /// those the merge decides on ([`runner::DECIDING_NAMES`]) and the `alt_`/`tuple_`
    /// groups that fill them.
    pub(crate) lean_named: Vec<(usize, runner::GroupName)>,
}

impl CompiledRegex {
    fn new(
        raw: &str,
        kind: RegexKind,
        index: usize,
        dns: bool,
        multiline: bool,
        exact_dollar: bool,
    ) -> Result<Self, FilterError> {
        let expanded = failtags::expand(raw, dns);
        if expanded.trim_start().is_empty() {
            return Err(FilterError::Empty { kind, index });
        }
        let re = PyRegex::compile_opts(&expanded, multiline, exact_dollar).map_err(|source| {
            FilterError::Regex {
                kind,
                index,
                regex: raw.to_string(),
                source,
            }
        })?;
        let named: Vec<(usize, runner::GroupName)> = re
            .group_names()
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_deref().map(|n| (i, n.into())))
            .collect();
        let mut alt: Vec<(runner::GroupName, runner::GroupName)> = Vec::new();
        let mut tuple: Vec<(runner::GroupName, runner::GroupName)> = Vec::new();
        for (_, name) in &named {
            // fail2ban: `^(alt_|tuple_)(.*?)(?:_\d+)?$` on names longer than "alt_"
            if name.len() <= 4 {
                continue;
            }
            let (pre, rest) = if let Some(r) = name.strip_prefix("alt_") {
                (true, r)
            } else if let Some(r) = name.strip_prefix("tuple_") {
                (false, r)
            } else {
                continue;
            };
            let base = match rest.rfind('_') {
                Some(p)
                    if p + 1 < rest.len() && rest[p + 1..].bytes().all(|b| b.is_ascii_digit()) =>
                {
                    &rest[..p]
                }
                _ => rest,
            };
            let target = failtags::map_tag_name(base);
            if pre {
                alt.push((name.clone(), target.into()));
            } else {
                tuple.push((name.clone(), target.into()));
            }
        }
        alt.sort();
        tuple.sort();
        let mut skiplines = Vec::new();
        for n in 0.. {
            match re.group_index(&format!("skiplines{n}")) {
                Some(i) => skiplines.push(i),
                None => break,
            }
        }
        let lean = runner::LEAN_NAMES.map(|n| re.group_index(n));
        let lean_ok = alt.is_empty() && tuple.is_empty() && re.group_index("mlfid").is_none();
        let deciding = |n: &str| runner::DECIDING_NAMES.contains(&n);
        let lean_named = named
            .iter()
            .filter(|(_, n)| {
                deciding(n)
                    || alt
                        .iter()
                        .chain(&tuple)
                        .any(|(src, dst)| src == n && deciding(dst))
            })
            .cloned()
            .collect();
        Ok(CompiledRegex {
            re,
            expanded: glob_to_local_flags(&expanded),
            named,
            alt,
            tuple,
            skiplines,
            lean,
            lean_ok,
            lean_named,
        })
    }

    fn has_group(&self, name: &str) -> bool {
        self.named.iter().any(|(_, n)| &**n == name)
    }

    fn has_failure_id(&self) -> bool {
        ["fid", "ip4", "ip6", "dns", "mlfid"]
            .iter()
            .any(|g| self.has_group(g))
    }
}

/// A filter's compiled regexes (the part of [`Filter::new`] that is not the date detector).
struct Regexes {
    prefregex: Option<CompiledRegex>,
    failregex: Vec<CompiledRegex>,
    ignoreregex: Vec<CompiledRegex>,
}

impl Regexes {
    fn compile(cfg: &FilterConfig) -> Result<Regexes, FilterError> {
        let dns = cfg.usedns != UseDns::No;
        let multi = cfg.maxlines > 1;
        let prefregex = match &cfg.prefregex {
            // fail2ban: an empty prefregex means none
            Some(p) if !p.is_empty() => Some(CompiledRegex::new(
                p,
                RegexKind::Prefregex,
                0,
                dns,
                false,
                multi,
            )?),
            _ => None,
        };
        let pref_has_id = prefregex
            .as_ref()
            .is_some_and(CompiledRegex::has_failure_id);
        let mut failregex = Vec::with_capacity(cfg.failregex.len());
        for (i, c) in compile_failregexes(&cfg.failregex, dns, multi)
            .into_iter()
            .enumerate()
        {
            let c = c?;
            if !c.has_failure_id() && !pref_has_id {
                return Err(FilterError::NoFailureId {
                    index: i,
                    expanded: c.expanded,
                });
            }
            failregex.push(c);
        }
        let mut ignoreregex = Vec::with_capacity(cfg.ignoreregex.len());
        for (i, r) in cfg.ignoreregex.iter().enumerate() {
            ignoreregex.push(CompiledRegex::new(
                r,
                RegexKind::Ignoreregex,
                i,
                dns,
                false,
                multi,
            )?);
        }
        Ok(Regexes {
            prefregex,
            failregex,
            ignoreregex,
        })
    }
}

/// Every failregex compiled, in order; half of them on a helper thread (start-up is most of
/// a short run's time, and a filter like sshd has dozens of failregexes).
fn compile_failregexes(
    patterns: &[String],
    dns: bool,
    multi: bool,
) -> Vec<Result<CompiledRegex, FilterError>> {
    let compile = |i: usize| {
        let r = patterns.get(i)?;
        Some(CompiledRegex::new(
            r,
            RegexKind::Failregex,
            i,
            dns,
            multi,
            false,
        ))
    };
    let (odd, even) = on_helper_thread(
        || {
            (1..patterns.len())
                .step_by(2)
                .filter_map(compile)
                .collect::<Vec<_>>()
        },
        || {
            (0..patterns.len())
                .step_by(2)
                .filter_map(compile)
                .collect::<Vec<_>>()
        },
    );
    let mut all = Vec::with_capacity(patterns.len());
    let mut odd = odd.into_iter();
    for e in even {
        all.push(e);
        all.extend(odd.next());
    }
    all
}

/// `helper()` on a helper thread while `here()` runs on this one; both results. Without a
/// thread to be had, `helper()` runs here after `here()`. A panic on the helper goes on here.
fn on_helper_thread<H: Send, T>(helper: impl Fn() -> H + Sync, here: impl FnOnce() -> T) -> (H, T) {
    std::thread::scope(|s| {
        let spawned = std::thread::Builder::new().spawn_scoped(s, &helper);
        let here = here();
        let helper = match spawned {
            Ok(h) => h
                .join()
                .unwrap_or_else(|payload| std::panic::resume_unwind(payload)),
            Err(_) => helper(),
        };
        (helper, here)
    })
}

/// A compiled filter: immutable, shared between runners.
#[derive(Debug)]
pub struct Filter {
    pub(crate) prefregex: Option<CompiledRegex>,
    pub(crate) failregex: Vec<CompiledRegex>,
    pub(crate) ignoreregex: Vec<CompiledRegex>,
    pub(crate) maxlines: usize,
    pub(crate) usedns: UseDns,
    pub(crate) date: DateDetector,
    pub(crate) prefilter: Option<Prefilter>,
    /// Which failregexes can match a buffer, in one pass (see [`failset`]).
    pub(crate) failset: Option<failset::FailSet>,
}

impl Filter {
    /// Compile a filter.
    pub fn new(cfg: &FilterConfig) -> Result<Filter, FilterError> {
        if cfg.maxlines == 0 {
            return Err(FilterError::MaxLines);
        }
        let date_cfg = DateConfig {
            datepattern: cfg.datepattern.clone(),
            default_tz: cfg.timezone.clone(),
            now: cfg.now,
        };
        // The date detector (for fail2ban's default templates, ~30 M instructions of
        // pattern rewriting on first use) is built on a helper thread while the regexes
        // compile: a one-shot `banhammer regex` then waits for the longer of the two
        // rather than their sum. Regex errors are reported first, as before.
        let (date, regexes) =
            on_helper_thread(|| DateDetector::new(&date_cfg), || Regexes::compile(cfg));
        let Regexes {
            prefregex,
            failregex,
            ignoreregex,
        } = regexes?;
        let date = date?;
        let prefilter = if cfg.maxlines > 1 {
            None
        } else {
            Prefilter::build(prefregex.as_ref(), &failregex)
        };
        let failset = failset::FailSet::build(&failregex, cfg.maxlines > 1);
        Ok(Filter {
            prefregex,
            failset,
            failregex,
            ignoreregex,
            maxlines: cfg.maxlines,
            usedns: cfg.usedns,
            date,
            prefilter,
        })
    }

    /// A runner with fresh per-source state.
    pub fn runner(&self) -> FilterRunner<'_> {
        FilterRunner::new(self)
    }

    /// Number of failregexes.
    pub fn failregex_count(&self) -> usize {
        self.failregex.len()
    }

    /// Number of ignoreregexes.
    pub fn ignoreregex_count(&self) -> usize {
        self.ignoreregex.len()
    }

    /// `maxlines`.
    /// Does any regex capture a multi-line failure id (`<F-MLFID>`)? Such filters carry
    /// state from line to line, so their input must be processed in order.
    pub fn uses_mlfid(&self) -> bool {
        self.prefregex
            .as_ref()
            .is_some_and(|p| p.has_group("mlfid"))
            || self.failregex.iter().any(|r| r.has_group("mlfid"))
    }

    pub fn maxlines(&self) -> usize {
        self.maxlines
    }

    /// `usedns`.
    pub fn usedns(&self) -> UseDns {
        self.usedns
    }

    /// The prefregex with tags expanded, as fail2ban-regex prints it.
    pub fn expanded_prefregex(&self) -> Option<&str> {
        self.prefregex.as_ref().map(|p| p.expanded.as_str())
    }

    /// Failregex `i` with tags expanded, as fail2ban-regex prints it.
    pub fn expanded_failregex(&self, i: usize) -> Option<&str> {
        self.failregex.get(i).map(|p| p.expanded.as_str())
    }

    /// Ignoreregex `i` with tags expanded.
    pub fn expanded_ignoreregex(&self, i: usize) -> Option<&str> {
        self.ignoreregex.get(i).map(|p| p.expanded.as_str())
    }

    /// Whether failregex `i` runs on the backtracking engine (for diagnostics/benchmarks).
    pub fn failregex_is_backtrack(&self, i: usize) -> bool {
        self.failregex.get(i).is_some_and(|r| r.re.is_backtrack())
    }

    /// The date detector the runners start from (for template names).
    pub fn date_detector(&self) -> &DateDetector {
        &self.date
    }

    /// Prefilter for the hot path: `None` when every line must be checked. Otherwise a set of
    /// literals such that a line containing none of them can never produce a failregex match
    /// (callers may skip it; it is then "missed"). Literals are taken from the patterns, which
    /// run on the line with its date cut out; a literal that would only appear by joining the
    /// text around a cut-out date is not found in the raw line — no shipped filter has one.
    pub fn prefilter(&self) -> Option<&Prefilter> {
        self.prefilter.as_ref()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
