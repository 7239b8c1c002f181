//! A parsed fast-engine pattern written back as PCRE2 pattern text with the same meaning, so
//! that PCRE2's JIT can run capture searches the `regex` crate's bounded backtracker runs
//! about three times slower (a `<HOST>` tail: ~800 instructions against ~2,500).
//!
//! Only for patterns already cut down to ASCII (see `ascii_hir` in the parent module), run on
//! ASCII haystacks by PCRE2 in byte mode (no UTF, no UCP), where `\w` and classes are ASCII in
//! both engines. Both pick the same match and group spans: PCRE2 backtracks through
//! alternatives and repetitions in priority order (left branch first; greedy: more iterations
//! first; lazy: fewer), the order in which leftmost-first semantics ranks paths, and a group
//! reports its last iteration in both. Where they part, no text is produced and the caller
//! keeps the `regex` engine: a repetition whose body can match the empty string (the engines
//! treat an empty iteration differently: on `a`, `(a|)*` puts group 1 at `0..1` in `regex`,
//! at `1..1` in PCRE2), and assertions other than ASCII ones and `\n`-lines.
//! Groups are written unnamed: PCRE2 numbers them by their opening parenthesis, as the parser
//! numbered them; the caller checks the count.
//!
//! Backtracking can take exponential time where the automata take linear time, and log lines
//! are attacker-written: every search here has a step limit, past which it reports that it
//! cannot tell and the caller's `regex` search answers ([`build`]).

use std::fmt::Write;
use std::sync::OnceLock;

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// PCRE2 text of the ASCII pattern `hir`; `None` when it holds a construct PCRE2 might run
/// differently (see the module documentation).
pub(super) fn pcre_text(hir: &Hir) -> Option<String> {
    let mut out = String::new();
    write_hir(hir, &mut out)?;
    Some(out)
}

fn write_hir(hir: &Hir, out: &mut String) -> Option<()> {
    match hir.kind() {
        HirKind::Empty => out.push_str("(?:)"),
        HirKind::Literal(lit) => lit.0.iter().for_each(|b| write_byte(*b, out)),
        HirKind::Class(class) => write_class(class, out)?,
        HirKind::Look(look) => out.push_str(look_text(*look)?),
        HirKind::Repetition(r) => {
            if r.sub.properties().minimum_len() == Some(0) {
                return None;
            }
            out.push_str("(?:");
            write_hir(&r.sub, out)?;
            out.push(')');
            // `{n,m}` with m above PCRE2's limit (65535) would not compile
            let _ = match r.max {
                Some(m) if m == r.min => write!(out, "{{{m}}}"),
                Some(m) => write!(out, "{{{},{m}}}", r.min),
                None => write!(out, "{{{},}}", r.min),
            };
            if !r.greedy {
                out.push('?');
            }
        }
        HirKind::Capture(c) => {
            out.push('(');
            write_hir(&c.sub, out)?;
            out.push(')');
        }
        HirKind::Concat(subs) => {
            out.push_str("(?:");
            for sub in subs {
                write_hir(sub, out)?;
            }
            out.push(')');
        }
        HirKind::Alternation(subs) => {
            out.push_str("(?:");
            for (i, sub) in subs.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                write_hir(sub, out)?;
            }
            out.push(')');
        }
    }
    Some(())
}

/// Every byte as `\xHH`: no character is special then, inside a class or out.
fn write_byte(b: u8, out: &mut String) {
    let _ = write!(out, "\\x{b:02x}");
}

/// A class as a bracket expression of byte ranges; a class that matches nothing (a Unicode
/// class cut down to ASCII can be empty) as an assertion that always fails.
fn write_class(class: &Class, out: &mut String) -> Option<()> {
    let ranges: Vec<(u32, u32)> = match class {
        Class::Unicode(c) => c
            .iter()
            .map(|r| (u32::from(r.start()), u32::from(r.end())))
            .collect(),
        Class::Bytes(c) => c
            .iter()
            .map(|r| (u32::from(r.start()), u32::from(r.end())))
            .collect(),
    };
    if ranges.is_empty() {
        out.push_str("(?!)");
        return Some(());
    }
    // a Unicode class beyond ASCII means `hir` was not cut down (byte mode would misread it)
    if matches!(class, Class::Unicode(_)) && ranges.iter().any(|&(_, end)| end > 0x7f) {
        return None;
    }
    out.push('[');
    for (start, end) in ranges {
        write_byte(u8::try_from(start).ok()?, out);
        if end != start {
            out.push('-');
            write_byte(u8::try_from(end).ok()?, out);
        }
    }
    out.push(']');
    Some(())
}

/// PCRE2 for an assertion, in byte mode (where `\w` is ASCII); `None` for the Unicode and
/// CRLF-aware ones.
fn look_text(look: Look) -> Option<&'static str> {
    Some(match look {
        Look::Start => r"\A",
        Look::End => r"\z",
        Look::StartLF => r"(?:\A|(?<=\n))",
        Look::EndLF => r"(?=\n|\z)",
        Look::WordAscii => r"\b",
        Look::WordAsciiNegate => r"\B",
        Look::WordStartAscii => r"(?<!\w)(?=\w)",
        Look::WordEndAscii => r"(?<=\w)(?!\w)",
        Look::WordStartHalfAscii => r"(?<!\w)",
        Look::WordEndHalfAscii => r"(?!\w)",
        _ => return None,
    })
}

/// Most backtracking steps one search may take. A search that would take more fails with an
/// error, and the caller falls back to the `regex` engine, whose time is linear: a log line
/// crafted to make a pattern backtrack costs a bounded amount more, never an explosion. Real
/// lines take a few hundred steps.
const STEP_LIMIT: u32 = 20_000;

/// `text` compiled by PCRE2 in byte mode, JIT where available, within [`STEP_LIMIT`]; `None`
/// when it does not compile.
pub(super) fn build(text: &str) -> Option<pcre2::bytes::Regex> {
    pcre2::bytes::RegexBuilder::new()
        .utf(false)
        .ucp(false)
        .jit_if_available(true)
        .build(&format!("(*LIMIT_MATCH={STEP_LIMIT}){text}"))
        .ok()
}

/// A pattern's capture search on PCRE2's JIT, for ASCII haystacks: written from its ASCII twin
/// once, compiled on first use, anchored where the search starts (`\G`).
pub(super) struct JitCaptures {
    /// PCRE2 text of the ASCII twin.
    text: String,
    groups: usize,
    re: OnceLock<Option<pcre2::bytes::Regex>>,
}

impl JitCaptures {
    /// For the pattern whose ASCII twin is `ascii` and which has `groups` groups (group 0
    /// included); `None` when PCRE2 might run it differently.
    pub(super) fn new(ascii: &Hir, groups: usize) -> Option<JitCaptures> {
        Some(JitCaptures {
            text: pcre_text(ascii)?,
            groups,
            re: OnceLock::new(),
        })
    }

    /// The compiled pattern (on first use); `None` when PCRE2 refuses the text (a repeat
    /// count or nesting beyond its limits) or numbers its groups differently (the parser
    /// dropped a group that cannot match, as in `(a){0}`): the caller then goes without.
    fn regex(&self) -> Option<&pcre2::bytes::Regex> {
        self.re
            .get_or_init(|| {
                build(&format!("\\G(?:{})", self.text))
                    .filter(|re| re.captures_len() == self.groups)
            })
            .as_ref()
    }

    /// Whether the search can run at all (see [`Self::regex`]): checked before the caller
    /// spends a DFA pass finding where to start it.
    pub(super) fn usable(&self) -> bool {
        self.regex().is_some()
    }

    /// The group spans of the pattern's first path from `at` in `hay` (ASCII), into `spans`:
    /// `Some(true)`, or `Some(false)` when no path starts there; `None` when PCRE2 cannot
    /// tell (not compiled, step limit reached).
    pub(super) fn captures_at(
        &self,
        hay: &str,
        at: usize,
        locs: &mut Option<pcre2::bytes::CaptureLocations>,
        spans: &mut Vec<Option<(usize, usize)>>,
    ) -> Option<bool> {
        let re = self.regex()?;
        let locs = locs.get_or_insert_with(|| re.capture_locations());
        match re.captures_read_at(locs, hay.as_bytes(), at) {
            Ok(Some(_)) => {
                spans.clear();
                spans.extend((0..locs.len()).map(|i| locs.get(i)));
                Some(true)
            }
            Ok(None) => Some(false),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `p` as the matcher parses it, cut down to ASCII.
    fn hir(p: &str) -> Hir {
        crate::pyregex::ascii_hir(regex_syntax::Parser::new().parse(p).unwrap())
    }

    /// Every group's span of one match (`None`: no match).
    type AllSpans = Option<Vec<Option<(usize, usize)>>>;

    /// Group spans of the first match of `p` in `hay` by both engines.
    fn both(p: &str, hay: &str) -> (AllSpans, AllSpans) {
        let re = regex::Regex::new(p).unwrap();
        let ours = re
            .captures(hay)
            .map(|c| c.iter().map(|m| m.map(|m| (m.start(), m.end()))).collect());
        let text = pcre_text(&hir(p)).unwrap();
        let pc = build(&text).unwrap();
        let theirs = pc.captures(hay.as_bytes()).unwrap().map(|c| {
            (0..c.len())
                .map(|i| c.get(i).map(|m| (m.start(), m.end())))
                .collect()
        });
        (ours, theirs)
    }

    #[test]
    fn same_spans_as_regex() {
        let cases = [
            (
                r"\A from (?:(\d{1,3}(?:\.\d{1,3}){3})|([0-9a-f:]+)|(\w+))$",
                " from 10.0.0.1",
            ),
            (
                r"\A from (?:(\d{1,3}(?:\.\d{1,3}){3})|([0-9a-f:]+)|(\w+))$",
                " from ::1",
            ),
            (
                r"\A from (?:(\d{1,3}(?:\.\d{1,3}){3})|([0-9a-f:]+)|(\w+))$",
                " from host",
            ),
            (r"(a+?)(b*)", "xaaabbb"),
            (r"(?:(a)|b)+", "ab"),
            (r"\bfoo\B(\w*)", "a foox1 b"),
            (r"(?m)^x(.)$", "ab\nxy\nz"),
            (r"[^\n]{2,4}?(z)", "abcz"),
            (r"[.*+?(){}\[\]\\^$|-]+", "a.*+?(){}[]\\^$|-b"),
        ];
        for (p, hay) in cases {
            let (ours, theirs) = both(p, hay);
            assert!(ours.is_some(), "{p} on {hay:?}");
            assert_eq!(ours, theirs, "{p} on {hay:?}");
        }
    }

    #[test]
    fn refuses_what_pcre_could_run_differently() {
        // empty-matching loop bodies, CRLF and Unicode assertions, non-ASCII Unicode classes
        for p in [r"(a|)*", r"(a*)*", r"(a?){2,}", r"(?:.*)?", r"(?mR)$"] {
            assert_eq!(pcre_text(&hir(p)), None, "{p}");
        }
        let unicode = regex_syntax::Parser::new().parse(r"\w\b").unwrap();
        assert_eq!(pcre_text(&unicode), None);
    }

    #[test]
    fn empty_class_never_matches() {
        use regex_syntax::hir::{ClassUnicode, ClassUnicodeRange};
        let empty = Hir::class(Class::Unicode(ClassUnicode::new(
            Vec::<ClassUnicodeRange>::new(),
        )));
        let p = Hir::concat(vec![Hir::literal(*b"a"), empty]);
        let re = build(&pcre_text(&p).unwrap()).unwrap();
        assert!(!re.is_match(b"ab").unwrap());
    }

    proptest::proptest! {
        // most random patterns do not parse or are refused: many cases for enough comparisons
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// Wherever a text is produced, PCRE2 finds the match and the group spans the `regex`
        /// crate does, on random patterns and ASCII haystacks.
        #[test]
        fn agrees_with_regex(
            p in r"([ab.]|\\[wdsb]|\(|\(\?:|\)|\||[*+?]|\{[0-3](,[0-3]?)?\}|\^|\$|\(\?m\)){1,14}",
            hay in "[ab1 \n_-]{0,16}",
        ) {
            let Ok(parsed) = regex_syntax::Parser::new().parse(&p) else {
                return Ok(());
            };
            let ascii = crate::pyregex::ascii_hir(parsed);
            let Some(text) = pcre_text(&ascii) else {
                return Ok(());
            };
            // from the tree: its printed text can read back as another pattern
            let Ok(re) = regex_automata::meta::Regex::builder().build_from_hir(&ascii) else {
                return Ok(());
            };
            let pc = build(&text);
            proptest::prop_assert!(pc.is_some(), "{} did not compile", text);
            let pc = pc.unwrap();
            let mut caps = re.create_captures();
            re.captures(hay.as_str(), &mut caps);
            let ours: AllSpans = caps.is_match().then(|| {
                (0..caps.group_len()).map(|i| caps.get_group(i).map(|m| (m.start, m.end))).collect()
            });
            let theirs: AllSpans = pc.captures(hay.as_bytes()).unwrap().map(|c| {
                (0..c.len()).map(|i| c.get(i).map(|m| (m.start(), m.end()))).collect()
            });
            proptest::prop_assert_eq!(ours, theirs, "{} / {}", p, text);
        }
    }
}
