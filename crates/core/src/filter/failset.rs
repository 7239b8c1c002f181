//! Failregex candidate set: one automaton pass over a buffer telling which of a filter's
//! failregexes can match it, so that only those run their own search.
//!
//! fail2ban tries the failregexes one by one, in order, on every buffer. A filter like
//! Debian's `sshd` has two dozen of them, and most buffers match none or one: searching each
//! costs a regex call apiece (engine set-up and a DFA scan), many times the cost of one scan
//! with all the patterns together. The set holds each failregex's fast form (the pattern
//! itself, or for a backtracking pattern its relaxed necessary condition, see
//! [`crate::pyregex::Engine::Backtrack`]), so a pattern left out of a buffer's candidates
//! cannot match it: skipping it changes nothing. A pattern whose fast form is missing is
//! represented by the empty pattern, always a candidate.

use regex_automata::meta;
use regex_automata::{Input, MatchKind, PatternSet};

use super::CompiledRegex;
use crate::pyregex::{ascii_hir, parse_hir, Engine};

/// Fewest failregexes for which a set pays: with one or two, searching them directly costs
/// about what the set's own pass does.
const MIN_PATTERNS: usize = 3;

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct FailSet {
    re: meta::Regex,
}

/// A runner's search storage for a [`FailSet`], and the candidates of the last buffer.
#[derive(Debug, Clone)]
pub(crate) struct Candidates {
    cache: meta::Cache,
    set: PatternSet,
    /// The last buffer was not ASCII: every failregex is a candidate.
    all: bool,
}

impl FailSet {
    /// The set of `fail` (compiled with `multiline`), or `None` when it would not pay or does
    /// not compile (the runner then searches every failregex, as without it).
    pub(crate) fn build(fail: &[CompiledRegex], multiline: bool) -> Option<FailSet> {
        if fail.len() < MIN_PATTERNS {
            return None;
        }
        let hirs = fail
            .iter()
            .map(|c| {
                let pattern = match c.re.engine() {
                    Engine::Fast(re) => re.as_str(),
                    Engine::Backtrack {
                        necessary: Some(n), ..
                    } => n.as_str(),
                    Engine::Backtrack {
                        necessary: None, ..
                    } => "",
                };
                parse_hir(pattern, multiline).map(ascii_hir)
            })
            .collect::<Option<Vec<_>>>()?;
        let re = meta::Regex::builder()
            .configure(
                meta::Config::new()
                    // every pattern that matches anywhere, not just the leftmost-first one
                    .match_kind(MatchKind::All)
                    .which_captures(regex_automata::nfa::thompson::WhichCaptures::None)
                    .nfa_size_limit(Some(64 << 20)),
            )
            .build_many_from_hir(&hirs)
            .ok()?;
        Some(FailSet { re })
    }

    /// Fresh search storage.
    pub(crate) fn candidates(&self) -> Candidates {
        Candidates {
            cache: self.re.create_cache(),
            set: PatternSet::new(self.re.pattern_len()),
            all: false,
        }
    }

    /// Record in `c` which failregexes can match `buf`.
    pub(crate) fn search(&self, buf: &str, c: &mut Candidates) {
        c.set.clear();
        // the set is built from the patterns' ASCII twins, exact on ASCII buffers only
        c.all = !buf.is_ascii();
        if c.all {
            return;
        }
        self.re
            .which_overlapping_matches_with(&mut c.cache, &Input::new(buf), &mut c.set);
    }
}

impl Candidates {
    /// Whether failregex `i` can match the buffer of the last [`FailSet::search`].
    pub(crate) fn contains(&self, i: usize) -> bool {
        self.all || regex_automata::PatternID::new(i).is_ok_and(|p| self.set.contains(p))
    }
}
