//! Capture search by segments: group spans found by lazy DFAs, piece by piece, instead of a
//! capture engine walking the whole match.
//!
//! fail2ban patterns are concatenations: `^<prefix>(?P<mlfid>…)…(?P<content>.+)$`, or
//! `^…for <F-USER>.*</F-USER> from <HOST>…$`. Most of their groups sit at the top level (or
//! nest as a group around a group), and most pieces between them hold no group. A capture
//! engine (the bounded backtracker `regex` picks for log lines) visits every NFA state it can
//! reach at every byte of the match; a DFA spends a table lookup per byte. So the pattern is cut
//! into its top-level pieces, each piece without a group gets an anchored forward DFA, and the
//! spans are found left to right: each piece starts where the previous one ended. An optional
//! piece or an alternation holding groups (like `<HOST>`'s `(?:(?P<ip4>…)|(?P<ip6>…)|…)`) is
//! solved through the branch its DFAs pick; a piece holding groups in some other shape (a
//! repetition of groups) is found by its DFA, then the backtracker runs on its span alone.
//! Zero-width assertions are checked in place, and a trailing `.+` runs to the end of the line.
//!
//! Why the spans are exactly those of the full search: a match is the first path through the
//! pattern in priority order (leftmost-first, as in Python's backtracking `re`). For a
//! concatenation `S1·S2·…·Sn` searched from `p`, paths are ordered by their choices in `S1`
//! first. Let `p1` be the first path of `S1` alone from `p` — the anchored leftmost-first match
//! of `S1` at `p`, whose end the DFA reports (assertions see the whole haystack, so context
//! around `p` counts as in the full search). If `p1` can be continued into a full match, the
//! first full path begins with `p1`: every path of `S1` ranked before it fails within `S1`.
//! By induction over `S2…Sn`, taking each piece's first path from where the previous one ended
//! yields the first full path, provided that every step succeeds. A group's span is its sub-
//! pattern's; a group inside a group is solved the same way within it. The first path of
//! `A|B` is `A`'s when `A` matches at `p` at all (paths are ordered by branch first), else
//! `B`'s; that of a greedy `A?` is `A`'s when `A` matches at `p`, else the empty one. When a step fails (the
//! first path of a piece does not lead to a match), a lower-ranked path might still match:
//! the caller then runs the full capture search. For a pattern not anchored at the start the
//! caller first finds the leftmost match `[s, e)` with the full pattern's DFA, and the pieces
//! are solved from `s`; the result must end at `e`.
//!
//! Built from the pattern's ASCII twin (see `ascii_twin` in the parent module), so it is used
//! on ASCII haystacks only; each automaton is compiled on first use.

use std::sync::OnceLock;

use regex_automata::hybrid::dfa::{Cache as DfaCache, DFA};
use regex_automata::nfa::thompson::{
    self,
    backtrack::{self, BoundedBacktracker},
    WhichCaptures,
};
use regex_automata::util::captures::Captures;
use regex_automata::util::look::LookMatcher;
use regex_automata::{Anchored, Input};
use regex_syntax::hir::{Hir, HirKind};

/// NFA size limit of one piece (as for whole patterns).
const NFA_LIMIT: usize = 64 << 20;

/// A pattern cut into pieces (see the module documentation).
pub(super) struct Segments {
    root: Node,
    /// Number of DFAs and backtrackers (the sizes of a [`SegmentCache`]).
    dfas: usize,
    bts: usize,
}

/// One piece of a pattern.
enum Node {
    /// Holds no group: only where its first path ends matters.
    Plain(PieceDfa),
    /// A zero-width assertion (`^`, `$`, an ASCII `\b`, …): checked in place.
    Assert(regex_automata::util::look::Look),
    /// `.{min,}` (greedy, `.` not matching `\n`): on an ASCII haystack its first path runs
    /// to the end of the line, found with `memchr` (fail2ban's `<F-CONTENT>.+</F-CONTENT>`).
    RestOfLine { min: usize },
    /// Group `index`: its span is that of `sub`.
    Group { index: usize, sub: Box<Node> },
    /// A concatenation: its pieces, one after another.
    Seq(Vec<Node>),
    /// `sub?`, greedy: its first path is `sub`'s when `sub` matches here (`dfa`, of `sub`,
    /// tells), else the empty one.
    Optional { dfa: PieceDfa, sub: Box<Node> },
    /// `a|b|…`: its first path is that of the first branch that matches here (each branch's
    /// DFA tells).
    Alternation(Vec<(PieceDfa, Node)>),
    /// Holds groups in a shape that is none of the above: its end by `dfa`, its
    /// groups by the backtracker (cache slot `bt_id`) over that span.
    Nested {
        dfa: PieceDfa,
        bt_id: usize,
        bt: Lazy<BoundedBacktracker>,
    },
}

/// The DFA of a piece, and the slot of its cache in a [`SegmentCache`].
struct PieceDfa {
    id: usize,
    dfa: Lazy<DFA>,
}

/// A DFA could not tell whether its piece matches (it did not compile, or its search
/// failed): the caller must not read that as "no match".
struct CannotTell;

impl PieceDfa {
    /// A new piece DFA for `hir`, numbered by `counts.0`.
    fn new(hir: Hir, counts: &mut (usize, usize)) -> Self {
        counts.0 += 1;
        PieceDfa {
            id: counts.0 - 1,
            dfa: Lazy::new(hir),
        }
    }

    /// End of the anchored leftmost-first match of the piece at `at` (`None`: no match).
    fn end(
        &self,
        hay: &str,
        at: usize,
        cache: &mut SegmentCache,
    ) -> Result<Option<usize>, CannotTell> {
        let dfa = self.dfa.get(build_dfa).ok_or(CannotTell)?;
        let c = cache
            .dfas
            .get_mut(self.id)
            .ok_or(CannotTell)?
            .get_or_insert_with(|| dfa.create_cache());
        let input = Input::new(hay).span(at..hay.len()).anchored(Anchored::Yes);
        match dfa.try_search_fwd(c, &input) {
            Ok(m) => Ok(m.map(|m| m.offset())),
            Err(_) => Err(CannotTell),
        }
    }
}

/// An automaton compiled on first use from its pattern (`None` once it failed to compile).
struct Lazy<T> {
    hir: Hir,
    built: OnceLock<Option<T>>,
}

impl<T> Lazy<T> {
    fn new(hir: Hir) -> Self {
        Lazy {
            hir,
            built: OnceLock::new(),
        }
    }

    fn get(&self, build: impl FnOnce(&Hir) -> Option<T>) -> Option<&T> {
        self.built.get_or_init(|| build(&self.hir)).as_ref()
    }
}

/// A runner's search storage for one [`Segments`].
#[derive(Debug, Default)]
pub(super) struct SegmentCache {
    dfas: Vec<Option<DfaCache>>,
    bts: Vec<Option<(backtrack::Cache, Captures)>>,
}

/// The spans being filled, by group index.
type Slots = Vec<Option<(usize, usize)>>;

impl Segments {
    /// The pieces of the (ASCII) pattern `hir`, or `None` when cutting it gains nothing: it
    /// has no group, or its groups are all inside one piece the backtracker would search
    /// whole anyway.
    pub(super) fn of(hir: &Hir) -> Option<Segments> {
        if hir.properties().explicit_captures_len() == 0 {
            return None;
        }
        let mut counts = (0, 0);
        let root = plan(hir, &mut counts);
        if matches!(root, Node::Nested { .. }) {
            return None;
        }
        Some(Segments {
            root,
            dfas: counts.0,
            bts: counts.1,
        })
    }

    /// The group spans of the match starting at `start` (the haystack's start for an
    /// anchored pattern, else the start of the leftmost match, which must end at `end`), into
    /// `spans` (index 0: the whole match; `spans` must hold one `None` per group).
    /// `false` when a piece's first path does not lead to the match (the caller then runs
    /// the full capture search; `spans` is left in an unspecified state).
    pub(super) fn captures(
        &self,
        hay: &str,
        start: usize,
        end: Option<usize>,
        cache: &mut SegmentCache,
        spans: &mut Slots,
    ) -> bool {
        if cache.dfas.len() != self.dfas || cache.bts.len() != self.bts {
            cache.dfas.clear();
            cache.dfas.resize_with(self.dfas, || None);
            cache.bts.clear();
            cache.bts.resize_with(self.bts, || None);
        }
        let Some(e) = solve(&self.root, hay, start, cache, spans) else {
            return false;
        };
        if end.is_some_and(|end| end != e) {
            return false;
        }
        match spans.first_mut() {
            Some(whole) => *whole = Some((start, e)),
            None => return false,
        }
        true
    }
}

/// The pieces of `hir`; `counts` numbers the automata (DFAs, backtrackers) for their caches.
fn plan(hir: &Hir, counts: &mut (usize, usize)) -> Node {
    let plain = |hir: Hir, counts: &mut (usize, usize)| Node::Plain(PieceDfa::new(hir, counts));
    if let Some(min) = rest_of_line(hir) {
        return Node::RestOfLine { min };
    }
    if let Some(look) = assertion(hir) {
        return Node::Assert(look);
    }
    if hir.properties().explicit_captures_len() == 0 {
        return plain(hir.clone(), counts);
    }
    match hir.kind() {
        HirKind::Capture(c) => Node::Group {
            index: c.index as usize,
            sub: Box::new(plan(&c.sub, counts)),
        },
        HirKind::Concat(subs) => {
            let mut nodes = Vec::new();
            // consecutive pieces without groups make one automaton
            let mut run: Vec<Hir> = Vec::new();
            for sub in subs {
                let alone = rest_of_line(sub).is_some() || assertion(sub).is_some();
                if sub.properties().explicit_captures_len() == 0 && !alone {
                    run.push(sub.clone());
                    continue;
                }
                if !run.is_empty() {
                    nodes.push(plain(Hir::concat(std::mem::take(&mut run)), counts));
                }
                nodes.push(plan(sub, counts));
            }
            if !run.is_empty() {
                nodes.push(plain(Hir::concat(run), counts));
            }
            Node::Seq(nodes)
        }
        HirKind::Repetition(r) if r.min == 0 && r.max == Some(1) && r.greedy => Node::Optional {
            dfa: PieceDfa::new((*r.sub).clone(), counts),
            sub: Box::new(plan(&r.sub, counts)),
        },
        HirKind::Alternation(subs) => Node::Alternation(
            subs.iter()
                .map(|sub| (PieceDfa::new(sub.clone(), counts), plan(sub, counts)))
                .collect(),
        ),
        _ => {
            counts.1 += 1;
            Node::Nested {
                dfa: PieceDfa::new(hir.clone(), counts),
                bt_id: counts.1 - 1,
                bt: Lazy::new(hir.clone()),
            }
        }
    }
}

/// Where the first path of `node` from `at` ends, its groups recorded in `spans`; `None` when
/// it has none, or when a DFA cannot tell (either way the caller runs the full search).
fn solve(
    node: &Node,
    hay: &str,
    at: usize,
    cache: &mut SegmentCache,
    spans: &mut Slots,
) -> Option<usize> {
    match node {
        Node::Plain(dfa) => dfa.end(hay, at, cache).ok().flatten(),
        Node::Assert(look) => LookMatcher::new()
            .matches(*look, hay.as_bytes(), at)
            .then_some(at),
        Node::RestOfLine { min } => {
            let tail = hay.as_bytes().get(at..)?;
            let len = memchr::memchr(b'\n', tail).unwrap_or(tail.len());
            (len >= *min).then_some(at + len)
        }
        Node::Group { index, sub } => {
            let end = solve(sub, hay, at, cache, spans)?;
            *spans.get_mut(*index)? = Some((at, end));
            Some(end)
        }
        Node::Seq(nodes) => nodes
            .iter()
            .try_fold(at, |pos, n| solve(n, hay, pos, cache, spans)),
        Node::Optional { dfa, sub } => match dfa.end(hay, at, cache).ok()? {
            Some(_) => solve(sub, hay, at, cache, spans),
            None => Some(at),
        },
        Node::Alternation(branches) => {
            for (dfa, branch) in branches {
                if dfa.end(hay, at, cache).ok()?.is_some() {
                    return solve(branch, hay, at, cache, spans);
                }
            }
            None
        }
        Node::Nested { dfa, bt_id, bt } => {
            let end = dfa.end(hay, at, cache).ok().flatten()?;
            let bt = bt.get(build_backtracker)?;
            let (bcache, caps) = cache
                .bts
                .get_mut(*bt_id)?
                .get_or_insert_with(|| (bt.create_cache(), bt.create_captures()));
            // the span is the piece's first path: the backtracker's first path is the same
            // one, and assertions at its end still see the rest of the haystack
            let input = Input::new(hay).span(at..end).anchored(Anchored::Yes);
            bt.try_search(bcache, &input, caps).ok()?;
            match caps.get_match() {
                Some(m) if m.start() == at && m.end() == end => {}
                _ => return None,
            }
            for i in 1..caps.group_len() {
                if let Some(g) = caps.get_group(i) {
                    *spans.get_mut(i)? = Some((g.start, g.end));
                }
            }
            Some(end)
        }
    }
}

/// The assertion `hir` is, unless it is a Unicode word boundary (the automata's business).
fn assertion(hir: &Hir) -> Option<regex_automata::util::look::Look> {
    use regex_automata::util::look::Look as L;
    let HirKind::Look(look) = hir.kind() else {
        return None;
    };
    let look = L::from_repr(look.as_repr())?;
    let ascii = matches!(
        look,
        L::Start
            | L::End
            | L::StartLF
            | L::EndLF
            | L::StartCRLF
            | L::EndCRLF
            | L::WordAscii
            | L::WordAsciiNegate
            | L::WordStartAscii
            | L::WordEndAscii
            | L::WordStartHalfAscii
            | L::WordEndHalfAscii
    );
    ascii.then_some(look)
}

/// `Some(min)` when `hir` is `.{min,}`, greedy, with `.` any ASCII character but `\n` (the
/// ASCII twin of Python's `.` without DOTALL).
fn rest_of_line(hir: &Hir) -> Option<usize> {
    use regex_syntax::hir::{Class, ClassBytes, ClassBytesRange, ClassUnicode, ClassUnicodeRange};
    let HirKind::Repetition(r) = hir.kind() else {
        return None;
    };
    if !r.greedy || r.max.is_some() {
        return None;
    }
    let dot_unicode = ClassUnicode::new([
        ClassUnicodeRange::new('\0', '\x09'),
        ClassUnicodeRange::new('\x0B', '\x7F'),
    ]);
    let dot_bytes = ClassBytes::new([
        ClassBytesRange::new(0, 0x09),
        ClassBytesRange::new(0x0B, 0x7F),
    ]);
    let is_dot = match r.sub.kind() {
        HirKind::Class(Class::Unicode(c)) => *c == dot_unicode,
        HirKind::Class(Class::Bytes(c)) => *c == dot_bytes,
        _ => false,
    };
    is_dot.then_some(r.min as usize)
}

fn build_dfa(hir: &Hir) -> Option<DFA> {
    let nfa = thompson::Compiler::new()
        .configure(
            thompson::Config::new()
                .which_captures(WhichCaptures::None)
                .nfa_size_limit(Some(NFA_LIMIT)),
        )
        .build_from_hir(hir)
        .ok()?;
    DFA::builder().build_from_nfa(nfa).ok()
}

fn build_backtracker(hir: &Hir) -> Option<BoundedBacktracker> {
    let nfa = thompson::Compiler::new()
        .configure(thompson::Config::new().nfa_size_limit(Some(NFA_LIMIT)))
        .build_from_hir(hir)
        .ok()?;
    BoundedBacktracker::builder().build_from_nfa(nfa).ok()
}
