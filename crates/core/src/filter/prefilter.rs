//! Literal prefilter: required literals of a filter's regexes, searched with a SIMD packed
//! searcher (Teddy) when the set is small enough, else Aho-Corasick.
//!
//! A literal is *required* by a pattern when every match contains it. For each pattern we walk
//! its HIR (the fast-engine form; for backtracking patterns the relaxed superset, so it stays
//! sound) and keep a small set of alternatives one of which must occur. A filter's prefilter is
//! the prefregex's set, or the union over all failregexes, whichever is more selective.

use aho_corasick::{packed, AhoCorasick};
use regex_syntax::hir::{Hir, HirKind};

use super::CompiledRegex;
use crate::pyregex::{translate_opts, Engine};

/// Most alternatives kept for one filter.
const MAX_LITERALS: usize = 256;
/// Shortest literal worth searching for.
const MIN_LEN: usize = 2;

/// Literal set such that a line containing none of them cannot match (see
/// [`super::Filter::prefilter`]).
#[derive(Debug, Clone)]
pub struct Prefilter {
    /// Teddy: much faster than an automaton for a few literals, whatever their bytes (the
    /// automaton's own prefilter picks "rare" start bytes, and a space is not rare in logs).
    packed: Option<packed::Searcher>,
    ac: AhoCorasick,
    literals: Vec<Vec<u8>>,
    /// Built from the prefregex (true) or from the failregexes (false).
    pub(crate) from_prefregex: bool,
    /// No literal holds a `\n`: every occurrence in a text of lines lies within one line
    /// (see [`Prefilter::is_line_local`]).
    line_local: bool,
    /// Every literal is ASCII (see [`Prefilter::is_ascii`]).
    ascii: bool,
}

impl Prefilter {
    /// Start of the first literal occurrence in `haystack`.
    pub fn find(&self, haystack: &[u8]) -> Option<usize> {
        match &self.packed {
            Some(p) => p.find(haystack).map(|m| m.start()),
            None => self.ac.find(haystack).map(|m| m.start()),
        }
    }

    /// Whether `line` contains any literal.
    pub fn is_match(&self, line: &[u8]) -> bool {
        match &self.packed {
            Some(p) => p.find(line).is_some(),
            None => self.ac.is_match(line),
        }
    }

    /// The literals.
    pub fn literals(&self) -> &[Vec<u8>] {
        &self.literals
    }

    /// Whether no literal holds a `\n`. Then, in a text of lines, every occurrence lies
    /// within one line, and [`Prefilter::find`] finds one in the first line holding any
    /// (its searchers report the leftmost match, or the one ending first: either lies in
    /// that line), so every line before it holds none.
    pub fn is_line_local(&self) -> bool {
        self.line_local
    }

    /// Whether every literal is ASCII. Then a text holds one when its lossy UTF-8
    /// decoding does: decoding keeps every ASCII byte, in order, and only puts non-ASCII
    /// characters (U+FFFD) where bytes were invalid, so a run of ASCII bytes in the decoding
    /// is one in the raw bytes.
    pub fn is_ascii(&self) -> bool {
        self.ascii
    }

    pub(super) fn build(pref: Option<&CompiledRegex>, fail: &[CompiledRegex]) -> Option<Self> {
        let from_pref = pref.and_then(required_of);
        let mut union: Option<Vec<Vec<u8>>> = Some(Vec::new());
        for f in fail {
            match (union.as_mut(), required_of(f)) {
                (Some(u), Some(r)) => u.extend(r),
                _ => union = None,
            }
        }
        let union = union.filter(|u| !u.is_empty() && u.len() <= MAX_LITERALS);
        let (lits, from_prefregex) = match (from_pref, union) {
            (Some(p), Some(u)) => {
                if score(&p) >= score(&u) {
                    (p, true)
                } else {
                    (u, false)
                }
            }
            (Some(p), None) => (p, true),
            (None, Some(u)) => (u, false),
            (None, None) => return None,
        };
        let mut lits = lits;
        lits.sort();
        lits.dedup();
        let ac = AhoCorasick::new(&lits).ok()?;
        let packed = packed::Searcher::new(lits.iter());
        Some(Prefilter {
            packed,
            ac,
            line_local: lits.iter().all(|l| !l.contains(&b'\n')),
            ascii: lits.iter().all(|l| l.is_ascii()),
            literals: lits,
            from_prefregex,
        })
    }
}

/// Required literal set of a compiled regex, from its fast-engine form.
fn required_of(c: &CompiledRegex) -> Option<Vec<Vec<u8>>> {
    let (pattern, multiline) = match c.re.engine() {
        Engine::Fast(re) => (re.as_str().to_string(), false),
        Engine::Backtrack { .. } => {
            // the relaxed superset; flags do not change which literals are required
            let t = translate_opts(c.re.as_str(), false, false).ok()?;
            (t.relaxed, false)
        }
    };
    let hir = regex_syntax::ParserBuilder::new()
        .multi_line(multiline)
        .build()
        .parse(&pattern)
        .ok()?;
    required(&hir).filter(|s| s.iter().all(|l| l.len() >= MIN_LEN) && s.len() <= MAX_LITERALS)
}

/// Higher is more selective: the shortest literal's length, then fewer alternatives.
fn score(set: &[Vec<u8>]) -> (usize, std::cmp::Reverse<usize>) {
    let min = set.iter().map(Vec::len).min().unwrap_or(0);
    (min, std::cmp::Reverse(set.len()))
}

fn required(h: &Hir) -> Option<Vec<Vec<u8>>> {
    match h.kind() {
        HirKind::Literal(l) if !l.0.is_empty() => Some(vec![l.0.to_vec()]),
        HirKind::Capture(c) => required(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required(&r.sub),
        HirKind::Concat(subs) => subs
            .iter()
            .filter_map(required)
            .filter(|s| s.len() <= MAX_LITERALS)
            .max_by_key(|s| score(s)),
        HirKind::Alternation(subs) => {
            let mut all = Vec::new();
            for s in subs {
                all.extend(required(s)?);
                if all.len() > MAX_LITERALS {
                    return None;
                }
            }
            Some(all)
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn req(p: &str) -> Option<Vec<String>> {
        let hir = regex_syntax::parse(p).unwrap();
        required(&hir).map(|v| {
            v.into_iter()
                .map(|l| String::from_utf8(l).unwrap())
                .collect()
        })
    }

    #[test]
    fn required_literals() {
        assert_eq!(req(r"^\s*foo \d+ ba$"), Some(vec!["foo ".into()]));
        assert_eq!(
            req(r"^(?:error|fatal): x"),
            Some(vec!["error".into(), "fatal".into()])
        );
        assert_eq!(
            req(r"^(?:errors|fatal)\d"),
            Some(vec!["errors".into(), "fatal".into()])
        );
        assert_eq!(req(r"(?:abc)?\d"), None);
        assert_eq!(req(r"(?i)abc"), None);
        assert_eq!(req(r"a|\d"), None);
    }
}
