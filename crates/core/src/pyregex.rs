//! Python `re` patterns, as fail2ban writes them, compiled to Rust engines.
//!
//! Owns the translation of Python regex syntax (after fail2ban's tag expansion) into the syntax of
//! the `regex` crate, and the choice of engine: the fast automaton engine whenever the pattern has
//! no backtracking-only construct, PCRE2 otherwise. Receives pattern text; emits a
//! [`PyRegex`] that reports match spans of named groups with Python's semantics.
//!
//! Differences handled here (see `compat.md` §3): `{,n}`, stray `{`/`}`, unescaped `[` inside a
//! class, fail2ban's rewrite of mid-pattern global flags `((?i)…)` → `(?i:…)`, `$` (Python: end or
//! before a final `\n`), `\Z`, `\<`/`\>` (literal in Python, word boundaries in Rust), `(?P=name)`,
//! conditionals `(?(name)…)` (emitted as `(?(<name>)…)`, a named-group test whatever the
//! name; fancy-regex 0.20 misread the bare form), comments
//! `(?#…)`, octal and `\u`/`\U` escapes. For patterns that need backtracking we also build a
//! *relaxed* fast-engine pattern (lookarounds dropped, back-references and conditionals widened):
//! it matches a superset, so a miss there proves a miss of the real pattern and the slow engine
//! never runs on most lines. Both fast patterns also get an *ASCII twin* (classes cut down to
//! ASCII), used on ASCII haystacks where it matches exactly the same: its automata are several
//! times smaller, which is what the capture search on every matching line pays for.
//!
//! On an ASCII line the group spans of a fast pattern come from the cheapest exact search that
//! applies: the split search (the full pattern's DFA, then only the tail after a literal on
//! PCRE2's JIT), else the whole ASCII twin on PCRE2's JIT (see `pcre_text`: written back as
//! PCRE2 text where PCRE2 provably picks the same spans, within a step limit), else the search
//! by pieces (`segments`); each falls back to the `regex` crate's own capture search when it
//! cannot tell.

use std::fmt;

mod pcre_text;
mod segments;

use segments::{SegmentCache, Segments};

use regex_automata::nfa::thompson::{
    self,
    backtrack::{self, BoundedBacktracker},
};
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input, PatternID};

/// A Python pattern that could not be translated or compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid regex {pattern:?}: {reason}")]
pub struct RegexError {
    /// The pattern as given (Python syntax).
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

impl RegexError {
    fn new(pattern: &str, reason: impl Into<String>) -> Self {
        RegexError {
            pattern: pattern.to_string(),
            reason: reason.into(),
        }
    }
}

/// Result of [`translate`]: Rust-syntax pattern text plus what the engine must support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    /// Pattern in Rust syntax (`regex` syntax if `!needs_backtrack`, else syntax the
    /// backtracking engine, PCRE2, reads).
    pub pattern: String,
    /// The pattern uses lookaround, back-references, conditionals, atomic groups or possessive
    /// quantifiers: only the backtracking engine can run it.
    pub needs_backtrack: bool,
    /// When `needs_backtrack`: a fast-engine pattern matching a superset of what `pattern`
    /// matches (a necessary condition). Equal to `pattern` otherwise.
    pub relaxed: String,
}

/// fail2ban's IPv6 regex ends with `(?<=:):`; every repetition before it ends with `:`, so the
/// lookbehind always holds and `:` alone is equivalent (and fast-engine friendly).
const IP6_LOOKBEHIND: &str = r"(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)";
const IP6_PLAIN: &str = r"(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:)";

/// Translate a Python pattern compiled without `re.MULTILINE`.
pub fn translate(py: &str) -> Result<Translated, RegexError> {
    translate_with(py, false)
}

/// Translate a Python pattern; `multiline` = compiled with `re.MULTILINE`.
pub fn translate_with(py: &str, multiline: bool) -> Result<Translated, RegexError> {
    translate_opts(py, multiline, false)
}

/// Translate a Python pattern. `exact_dollar`: the subject may contain a `\n` before its last
/// character, so a non-MULTILINE `$` must be emitted exactly (lookahead, backtracking engine)
/// instead of as `(?m:$)`.
pub fn translate_opts(
    py: &str,
    multiline: bool,
    exact_dollar: bool,
) -> Result<Translated, RegexError> {
    let pre = glob_to_local_flags(&py.replace(IP6_LOOKBEHIND, IP6_PLAIN));
    let first = Translator::new(py, &pre, multiline, exact_dollar).run()?;
    if !exact_dollar && first.translated.needs_backtrack && first.has_dollar {
        // the backtracking engine is needed anyway: use the exact form of Python's `$`
        return Translator::new(py, &pre, multiline, true)
            .run()
            .map(|r| r.translated);
    }
    Ok(first.translated)
}

/// fail2ban's `R_GLOB2LOCFLAGS`: `((?i)` or `(?:(?i)` not preceded by a backslash becomes `(?i:`.
/// Done textually, exactly like fail2ban (it does not care about character classes either).
pub fn glob_to_local_flags(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        if b[i] == b'(' && (i == 0 || b[i - 1] != b'\\') {
            let mut j = i + 1;
            if b[j..].starts_with(b"?:") {
                j += 2;
            }
            if b[j..].starts_with(b"(?") {
                let k = j + 2;
                let mut e = k;
                while e < b.len() && b[e].is_ascii_lowercase() {
                    e += 1;
                }
                if e > k && e < b.len() && b[e] == b')' {
                    out.push_str(&s[copied..i]);
                    out.push_str(&s[j..e]);
                    out.push(':');
                    i = e + 1;
                    copied = i;
                    continue;
                }
            }
        }
        i += 1;
    }
    out.push_str(&s[copied..]);
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum GroupKind {
    /// Ordinary group: `(`, `(?:`, `(?P<n>`, flags group, atomic (relaxed as `(?:`).
    Plain,
    /// Lookaround: dropped from the relaxed pattern.
    Look,
    /// Conditional: relaxed as an alternation group; `true` once its `|` was seen.
    Cond(bool),
}

struct Translator<'a> {
    orig: &'a str,
    chars: Vec<char>,
    pos: usize,
    out: String,
    rel: String,
    /// >0 while inside a lookaround (nothing goes to `rel`).
    rel_off: usize,
    stack: Vec<GroupKind>,
    backtrack: bool,
    multiline: bool,
    verbose: bool,
    /// Emit Python's non-MULTILINE `$` exactly (needs lookahead) rather than as `(?m:$)`.
    exact_dollar: bool,
    has_dollar: bool,
}

struct RunResult {
    translated: Translated,
    has_dollar: bool,
}

impl<'a> Translator<'a> {
    fn new(orig: &'a str, pre: &str, multiline: bool, exact_dollar: bool) -> Self {
        Translator {
            orig,
            chars: pre.chars().collect(),
            pos: 0,
            out: String::with_capacity(pre.len() + 16),
            rel: String::with_capacity(pre.len() + 16),
            rel_off: 0,
            stack: Vec::new(),
            backtrack: false,
            multiline,
            verbose: false,
            exact_dollar,
            has_dollar: false,
        }
    }

    fn err(&self, reason: impl Into<String>) -> RegexError {
        RegexError::new(self.orig, reason)
    }

    fn peek(&self, off: usize) -> Option<char> {
        self.chars.get(self.pos + off).copied()
    }

    fn emit(&mut self, s: &str) {
        self.out.push_str(s);
        if self.rel_off == 0 {
            self.rel.push_str(s);
        }
    }

    fn emit2(&mut self, real: &str, relaxed: &str) {
        self.out.push_str(real);
        if self.rel_off == 0 {
            self.rel.push_str(relaxed);
        }
    }

    fn emit_char(&mut self, c: char) {
        let mut buf = [0u8; 4];
        self.emit(c.encode_utf8(&mut buf));
    }

    /// A literal character outside a class, escaped for Rust if needed.
    fn emit_literal(&mut self, c: char) {
        match c {
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
            | '#' | '&' | '-' | '~' => {
                let s = format!("\\{c}");
                self.emit(&s);
            }
            ' ' if self.verbose => self.emit(r"\x20"),
            _ => self.emit_char(c),
        }
    }

    /// A literal character inside a class.
    fn emit_class_literal(&mut self, c: char) {
        match c {
            '\\' | '[' | ']' | '^' | '-' | '&' | '~' => {
                let s = format!("\\{c}");
                self.emit(&s);
            }
            ' ' if self.verbose => self.emit(r"\x20"),
            _ => self.emit_char(c),
        }
    }

    fn run(mut self) -> Result<RunResult, RegexError> {
        self.scan_leading_flags();
        while let Some(c) = self.peek(0) {
            self.pos += 1;
            match c {
                '\\' => self.escape(false)?,
                '[' => self.class()?,
                '(' => self.open_group()?,
                ')' => {
                    let kind = self
                        .stack
                        .pop()
                        .ok_or_else(|| self.err("unbalanced parenthesis"))?;
                    self.out.push(')');
                    match kind {
                        GroupKind::Look => self.rel_off -= 1,
                        GroupKind::Cond(false) => {
                            // `(?(c)yes)` has an empty "no" branch
                            if self.rel_off == 0 {
                                self.rel.push_str("|)");
                            }
                        }
                        _ => {
                            if self.rel_off == 0 {
                                self.rel.push(')');
                            }
                        }
                    }
                    // A lookaround cannot be repeated in Rust syntax; Python allows `(?=x)?` but
                    // nothing shipped uses that, so leave any quantifier to the compiler.
                }
                '{' => self.brace(),
                '}' => self.emit(r"\}"),
                '$' => {
                    self.has_dollar = true;
                    if self.multiline || !self.exact_dollar {
                        self.emit("(?m:$)");
                    } else {
                        self.emit2(r"(?=\n?\z)", "(?m:$)");
                        self.backtrack = true;
                    }
                }
                '*' | '+' | '?' => {
                    self.emit_char(c);
                    self.quantifier_suffix();
                }
                '#' if self.verbose => {
                    // verbose comment to end of line
                    while let Some(d) = self.peek(0) {
                        self.pos += 1;
                        if d == '\n' {
                            break;
                        }
                    }
                }
                c if self.verbose && c.is_whitespace() => {}
                '|' => {
                    if let Some(GroupKind::Cond(seen)) = self.stack.last_mut() {
                        *seen = true;
                    }
                    self.emit("|");
                }
                '.' | '^' => self.emit_char(c),
                _ => self.emit_literal(c),
            }
        }
        if !self.stack.is_empty() {
            return Err(self.err("missing ), unterminated subpattern"));
        }
        let relaxed = if self.backtrack {
            self.rel
        } else {
            self.out.clone()
        };
        Ok(RunResult {
            has_dollar: self.has_dollar,
            translated: Translated {
                pattern: self.out,
                needs_backtrack: self.backtrack,
                relaxed,
            },
        })
    }

    // Python's `$` without MULTILINE is "end, or before a final `\n`". `(?m:$)` is identical on
    // subjects whose only `\n` is the last character, which is what fail2ban's single-line buffer
    // is; we keep the fast engine for that and only go exact (lookahead) when the pattern needs
    // the backtracking engine anyway.

    /// Global flags at the very start: `(?imsx)`.
    fn scan_leading_flags(&mut self) {
        loop {
            if self.peek(0) != Some('(') || self.peek(1) != Some('?') {
                return;
            }
            let mut j = 2;
            let mut flags = String::new();
            while let Some(c) = self.peek(j) {
                if c.is_ascii_alphabetic() {
                    flags.push(c);
                    j += 1;
                } else {
                    break;
                }
            }
            if flags.is_empty() || self.peek(j) != Some(')') {
                return;
            }
            self.pos += j + 1;
            let mut keep = String::new();
            for f in flags.chars() {
                match f {
                    'm' => {
                        self.multiline = true;
                        keep.push('m');
                    }
                    'x' => {
                        self.verbose = true;
                        keep.push('x');
                    }
                    'i' | 's' => keep.push(f),
                    _ => {} // a, u, L: Unicode is already the default for str patterns
                }
            }
            if !keep.is_empty() {
                let s = format!("(?{keep})");
                self.emit(&s);
            }
        }
    }

    /// After `*`, `+`, `?` or `{…}`: lazy `?` or possessive `+`.
    fn quantifier_suffix(&mut self) {
        match self.peek(0) {
            Some('?') => {
                self.pos += 1;
                self.emit("?");
            }
            Some('+') => {
                self.pos += 1;
                self.emit2("+", "");
                self.backtrack = true;
            }
            _ => {}
        }
    }

    /// `{`: a quantifier `{n}`, `{n,}`, `{,m}`, `{n,m}`, `{,}` or a literal brace.
    fn brace(&mut self) {
        let mut j = 0;
        let mut lo = String::new();
        let mut hi = String::new();
        let mut comma = false;
        loop {
            match self.peek(j) {
                Some(c) if c.is_ascii_digit() => {
                    if comma {
                        hi.push(c)
                    } else {
                        lo.push(c)
                    }
                }
                Some(',') if !comma => comma = true,
                Some('}') => break,
                _ => {
                    self.emit(r"\{");
                    return;
                }
            }
            j += 1;
        }
        if lo.is_empty() && hi.is_empty() && !comma {
            // `{}` is literal in Python
            self.emit(r"\{");
            return;
        }
        self.pos += j + 1;
        let lo = if lo.is_empty() { "0".to_string() } else { lo };
        let q = if comma {
            format!("{{{lo},{hi}}}")
        } else {
            format!("{{{lo}}}")
        };
        self.emit(&q);
        self.quantifier_suffix();
    }

    fn read_name(&mut self, close: char) -> Result<String, RegexError> {
        let mut name = String::new();
        loop {
            match self.peek(0) {
                Some(c) if c == close => {
                    self.pos += 1;
                    break;
                }
                Some(c) => {
                    name.push(c);
                    self.pos += 1;
                }
                None => return Err(self.err("missing group name terminator")),
            }
        }
        if name.is_empty() {
            return Err(self.err("missing group name"));
        }
        Ok(name)
    }

    fn open_group(&mut self) -> Result<(), RegexError> {
        if self.peek(0) != Some('?') {
            self.stack.push(GroupKind::Plain);
            self.emit("(");
            return Ok(());
        }
        self.pos += 1;
        match self.peek(0) {
            Some(':') => {
                self.pos += 1;
                self.stack.push(GroupKind::Plain);
                self.emit("(?:");
            }
            Some('P') => {
                self.pos += 1;
                match self.peek(0) {
                    Some('<') => {
                        self.pos += 1;
                        let name = self.read_name('>')?;
                        self.stack.push(GroupKind::Plain);
                        let s = format!("(?P<{name}>");
                        self.emit(&s);
                    }
                    Some('=') => {
                        self.pos += 1;
                        let name = self.read_name(')')?;
                        let s = format!(r"\k<{name}>");
                        self.emit2(&s, "(?s:.*?)");
                        self.backtrack = true;
                    }
                    _ => return Err(self.err("unknown extension ?P")),
                }
            }
            Some('=') | Some('!') => {
                let c = self.peek(0).unwrap_or('=');
                self.pos += 1;
                self.look(&format!("(?{c}"));
            }
            Some('<') => match self.peek(1) {
                Some('=') | Some('!') => {
                    let c = self.peek(1).unwrap_or('=');
                    self.pos += 2;
                    self.look(&format!("(?<{c}"));
                }
                _ => {
                    self.pos += 1;
                    let name = self.read_name('>')?;
                    self.stack.push(GroupKind::Plain);
                    let s = format!("(?P<{name}>");
                    self.emit(&s);
                }
            },
            Some('>') => {
                self.pos += 1;
                self.stack.push(GroupKind::Plain);
                self.emit2("(?>", "(?:");
                self.backtrack = true;
            }
            Some('#') => {
                while let Some(c) = self.peek(0) {
                    self.pos += 1;
                    if c == ')' {
                        return Ok(());
                    }
                }
                return Err(self.err("missing ), unterminated comment"));
            }
            Some('(') => {
                self.pos += 1;
                let name = self.read_name(')')?;
                let cond = if name.chars().all(|c| c.is_ascii_digit()) {
                    format!("(?({name})")
                } else {
                    format!("(?(<{name}>)")
                };
                self.stack.push(GroupKind::Cond(false));
                self.emit2(&cond, "(?:");
                self.backtrack = true;
            }
            _ => {
                // inline flags: (?flags) or (?flags-flags:...)
                let mut flags = String::new();
                loop {
                    match self.peek(0) {
                        Some(c) if c.is_ascii_alphabetic() || c == '-' => {
                            self.pos += 1;
                            match c {
                                'a' | 'u' | 'L' => {}
                                'm' | 'i' | 's' | 'x' | '-' => flags.push(c),
                                _ => return Err(self.err(format!("unknown flag {c:?}"))),
                            }
                        }
                        Some(':') => {
                            self.pos += 1;
                            self.stack.push(GroupKind::Plain);
                            let s = if flags.is_empty() || flags == "-" {
                                "(?:".to_string()
                            } else {
                                format!("(?{flags}:")
                            };
                            self.emit(&s);
                            return Ok(());
                        }
                        Some(')') => {
                            self.pos += 1;
                            if flags.contains('m') && !flags.contains('-') {
                                self.multiline = true;
                            }
                            if !flags.is_empty() && flags != "-" {
                                let s = format!("(?{flags})");
                                self.emit(&s);
                            }
                            return Ok(());
                        }
                        _ => return Err(self.err("unknown extension")),
                    }
                }
            }
        }
        Ok(())
    }

    fn look(&mut self, open: &str) {
        self.out.push_str(open);
        self.rel_off += 1;
        self.stack.push(GroupKind::Look);
        self.backtrack = true;
    }

    /// Escape outside a class (the backslash is consumed).
    fn escape(&mut self, _in_class: bool) -> Result<(), RegexError> {
        let c = self
            .peek(0)
            .ok_or_else(|| self.err("bad escape (end of pattern)"))?;
        self.pos += 1;
        match c {
            'd' | 'D' | 'w' | 'W' | 's' | 'S' | 'b' | 'B' | 'A' => {
                let s = format!("\\{c}");
                self.emit(&s);
            }
            'Z' => self.emit(r"\z"),
            '1'..='7'
                if self.peek(0).is_some_and(|d| d.is_digit(8))
                    && self.peek(1).is_some_and(|d| d.is_digit(8)) =>
            {
                // Python: three octal digits are a character, not a back-reference
                let v = c.to_digit(8).unwrap_or(0) * 64
                    + self.peek(0).and_then(|d| d.to_digit(8)).unwrap_or(0) * 8
                    + self.peek(1).and_then(|d| d.to_digit(8)).unwrap_or(0);
                self.pos += 2;
                let ch = char::from_u32(v).ok_or_else(|| self.err("octal escape out of range"))?;
                self.emit_literal(ch);
            }
            '1'..='9' => {
                let mut n = String::from(c);
                if let Some(d) = self.peek(0).filter(|d| d.is_ascii_digit()) {
                    n.push(d);
                    self.pos += 1;
                }
                let s = format!("\\{n}");
                self.emit2(&s, "(?s:.*?)");
                self.backtrack = true;
            }
            _ => {
                let lit = self.escape_char(c)?;
                self.emit_literal(lit);
            }
        }
        Ok(())
    }

    /// Character escapes common to both contexts; `c` is the char after the backslash.
    fn escape_char(&mut self, c: char) -> Result<char, RegexError> {
        Ok(match c {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'f' => '\x0c',
            'v' => '\x0b',
            'a' => '\x07',
            '0' => {
                let mut v = 0u32;
                for _ in 0..2 {
                    match self.peek(0).and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            self.pos += 1;
                        }
                        None => break,
                    }
                }
                char::from_u32(v).unwrap_or('\0')
            }
            'x' => self.hex(2)?,
            'u' => self.hex(4)?,
            'U' => self.hex(8)?,
            c if c.is_ascii_alphanumeric() => {
                return Err(self.err(format!("bad escape \\{c}")));
            }
            c => c,
        })
    }

    fn hex(&mut self, n: usize) -> Result<char, RegexError> {
        let mut v = 0u32;
        for _ in 0..n {
            let d = self
                .peek(0)
                .and_then(|d| d.to_digit(16))
                .ok_or_else(|| self.err("incomplete hex escape"))?;
            self.pos += 1;
            v = v.wrapping_mul(16).wrapping_add(d);
        }
        char::from_u32(v).ok_or_else(|| self.err("bad character code in escape"))
    }

    /// A character class; the opening `[` is consumed.
    fn class(&mut self) -> Result<(), RegexError> {
        self.emit("[");
        if self.peek(0) == Some('^') {
            self.pos += 1;
            self.emit("^");
        }
        let mut first = true;
        loop {
            let c = self
                .peek(0)
                .ok_or_else(|| self.err("unterminated character set"))?;
            self.pos += 1;
            match c {
                ']' if !first => {
                    self.emit("]");
                    return Ok(());
                }
                '\\' => {
                    let e = self
                        .peek(0)
                        .ok_or_else(|| self.err("bad escape (end of pattern)"))?;
                    self.pos += 1;
                    match e {
                        'd' | 'D' | 'w' | 'W' | 's' | 'S' => {
                            let s = format!("\\{e}");
                            self.emit(&s);
                        }
                        'b' => self.emit_class_literal('\x08'),
                        '1'..='7' => {
                            // octal in a class
                            let mut v = e.to_digit(8).unwrap_or(0);
                            for _ in 0..2 {
                                match self.peek(0).and_then(|d| d.to_digit(8)) {
                                    Some(d) => {
                                        v = v * 8 + d;
                                        self.pos += 1;
                                    }
                                    None => break,
                                }
                            }
                            let ch = char::from_u32(v).unwrap_or('\0');
                            self.emit_class_literal(ch);
                        }
                        _ => {
                            let ch = self.escape_char(e)?;
                            self.emit_class_literal(ch);
                        }
                    }
                }
                '-' => {
                    // a range operator between two members, else literal; never `--` (Rust's
                    // class difference)
                    let next = self.peek(0);
                    if first || next == Some(']') || next == Some('-') {
                        self.emit(r"\-");
                    } else {
                        self.emit("-");
                    }
                }
                _ => self.emit_class_literal(c),
            }
            first = false;
        }
    }
}

/// A compiled Python pattern on the cheapest engine able to run it.
pub struct PyRegex {
    engine: Engine,
    /// For haystacks that are all ASCII (nearly every log line): the fast pattern (or, for the
    /// backtracking engine, its relaxed necessary condition) with every class cut down to ASCII.
    /// See [`ascii_twin`].
    ascii: Option<regex::Regex>,
    /// Fast engine only: the split capture search, when the pattern allows it (see [`Split`]).
    split: Option<Split>,
    /// Fast engine only: the capture search by pieces, for ASCII haystacks where `jit` is
    /// `None` or cannot tell (see [`segments`]).
    segments: Option<Segments>,
    /// Fast engine only: the capture search on PCRE2's JIT, for ASCII haystacks.
    jit: Option<pcre_text::JitCaptures>,
    /// The pattern can only match at the haystack's start.
    anchored: bool,
    names: Vec<Option<String>>,
    py: String,
    translated: String,
}

/// The engine behind a [`PyRegex`].
pub enum Engine {
    /// `regex` crate: finite automata, linear time.
    Fast(regex::Regex),
    /// PCRE2 (JIT-compiled where the platform allows), preceded by a fast
    /// necessary-condition check when one compiles. PCRE2 reads the translated pattern with
    /// Python's meaning: named groups and back-references in Python's syntax, conditionals,
    /// lookarounds, Unicode classes (UCP), `.` not matching `\n`.
    Backtrack {
        /// The real pattern.
        regex: pcre2::bytes::Regex,
        /// Relaxed fast pattern: no match here ⇒ no match of `regex`.
        necessary: Option<regex::Regex>,
    },
}

impl fmt::Debug for PyRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PyRegex")
            .field("py", &self.py)
            .field("translated", &self.translated)
            .field("backtrack", &self.is_backtrack())
            .finish()
    }
}

/// Match spans of every group of one match, by group index (0 = whole match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spans {
    spans: Vec<Option<(usize, usize)>>,
}

impl Spans {
    /// Span of group `i`, if it participated.
    pub fn get(&self, i: usize) -> Option<(usize, usize)> {
        self.spans.get(i).copied().flatten()
    }
    /// Number of groups (incl. group 0).
    pub fn len(&self) -> usize {
        self.spans.len()
    }
    /// True when no groups are stored (no match yet).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// Reusable capture storage for searches with one [`PyRegex`] (see
/// [`PyRegex::captures_with`]): a hot loop keeps one per regex and searches without allocating.
#[derive(Debug, Default)]
pub struct CaptureCache {
    full: Option<regex::CaptureLocations>,
    ascii: Option<regex::CaptureLocations>,
    // boxed: a runner moves its caches in and out of its scratch space on every line
    rest_full: Option<Box<RestCache>>,
    rest_ascii: Option<Box<RestCache>>,
    rest_jit: Option<pcre2::bytes::CaptureLocations>,
    jit: Option<pcre2::bytes::CaptureLocations>,
    segments: SegmentCache,
    pcre: Option<pcre2::bytes::CaptureLocations>,
}

/// Search storage of a [`Split`]'s `rest` backtracker.
#[derive(Debug)]
struct RestCache {
    cache: backtrack::Cache,
    caps: Captures,
}

/// The `rest` storage of `slot` for `bt`, created on first use (or if `slot` was last used
/// with a backtracker of another shape).
fn rest_cache<'c>(
    slot: &'c mut Option<Box<RestCache>>,
    bt: &BoundedBacktracker,
) -> &'c mut RestCache {
    let slots = bt.get_nfa().group_info().slot_len();
    if slot
        .as_ref()
        .is_some_and(|c| c.caps.group_info().slot_len() != slots)
    {
        *slot = None;
    }
    slot.get_or_insert_with(|| {
        Box::new(RestCache {
            cache: bt.create_cache(),
            caps: bt.create_captures(),
        })
    })
}

/// The capture locations of `cache` for `re`, created on first use (or if `cache` was last
/// used with a regex of another shape).
fn locations<'c>(
    slot: &'c mut Option<regex::CaptureLocations>,
    re: &regex::Regex,
) -> &'c mut regex::CaptureLocations {
    if slot.as_ref().is_some_and(|l| l.len() != re.captures_len()) {
        *slot = None;
    }
    slot.get_or_insert_with(|| re.capture_locations())
}

/// The ASCII twin of a fast-engine pattern: the same pattern, parsed with the same flags, with
/// every class intersected with ASCII and Unicode word boundaries made ASCII ones.
///
/// Why: Python `str` patterns are Unicode-aware, so `\S`, `\s`, `\d`, `\w`, `.` and negated
/// classes compile to large UTF-8 automata; fail2ban's common prefix alone has a dozen of them.
/// The capture engine (a bounded backtracker) clears a visited set of `states × haystack` bits
/// per search and the lazy DFA has more states to build, so on the ASCII lines that make up
/// nearly every log the twin is several times cheaper. On a haystack that is all ASCII the twin
/// matches exactly what the original does, with the same group spans: every position holds an
/// ASCII character, which a class matches iff its ASCII part does; a non-ASCII literal can
/// match in neither; case folding is already expanded into classes by the parser (so the
/// Kelvin sign `K` in a `(?i)` pattern becomes `[Kk\u{212A}]`, whose ASCII part `[Kk]` is
/// what the original matches on ASCII text); and a Unicode word boundary between ASCII
/// characters is the ASCII one. `None` when the pattern has nothing to cut (no gain), or the
/// twin does not compile to the same groups (then the original is used for every haystack).
fn ascii_twin(pattern: &str, multiline: bool, original: &regex::Regex) -> Option<regex::Regex> {
    let hir = parse_hir(pattern, multiline)?;
    ascii_twin_of(&hir, &ascii_hir(hir.clone()), original)
}

/// [`ascii_twin`] of the parsed pattern `hir`, whose [`ascii_hir`] is `twin`.
fn ascii_twin_of(
    hir: &regex_syntax::hir::Hir,
    twin: &regex_syntax::hir::Hir,
    original: &regex::Regex,
) -> Option<regex::Regex> {
    if twin == hir {
        return None;
    }
    build_like(twin, original)
}

/// A fast pattern parsed the way `regex` parses it.
pub(crate) fn parse_hir(pattern: &str, multiline: bool) -> Option<regex_syntax::hir::Hir> {
    regex_syntax::ParserBuilder::new()
        .multi_line(multiline)
        .build()
        .parse(pattern)
        .ok()
}

/// `hir` compiled, if it has the groups of `original` (same count, same names).
///
/// `regex` compiles text only, and `regex_syntax` prints some trees as text that reads back
/// as another pattern: `(?:a+)?` prints as `a+?`, a lazy `a+`. So the text must parse back to
/// `hir` itself, else there is no twin.
fn build_like(hir: &regex_syntax::hir::Hir, original: &regex::Regex) -> Option<regex::Regex> {
    let text = hir.to_string();
    if regex_syntax::Parser::new().parse(&text).ok().as_ref() != Some(hir) {
        return None;
    }
    let re = regex::RegexBuilder::new(&text)
        .size_limit(64 << 20)
        .build()
        .ok()?;
    (re.captures_len() == original.captures_len()
        && re.capture_names().eq(original.capture_names()))
    .then_some(re)
}

/// `hir` as a bounded backtracker (the capture engine `regex` picks for short haystacks), if
/// it has the groups of `original`. Used directly rather than through `regex::Regex`, whose
/// capture search first runs a lazy DFA to find the match span: the split search already
/// knows it.
fn backtracker_like(
    hir: &regex_syntax::hir::Hir,
    original: &regex::Regex,
) -> Option<BoundedBacktracker> {
    let nfa = thompson::Compiler::new()
        .configure(thompson::Config::new().nfa_size_limit(Some(64 << 20)))
        .build_from_hir(hir)
        .ok()?;
    let groups = nfa.group_info();
    let same = groups.group_len(PatternID::ZERO) == original.captures_len()
        && groups
            .pattern_names(PatternID::ZERO)
            .eq(original.capture_names());
    if !same {
        return None;
    }
    BoundedBacktracker::builder().build_from_nfa(nfa).ok()
}

/// See [`ascii_twin`].
pub(crate) fn ascii_hir(h: regex_syntax::hir::Hir) -> regex_syntax::hir::Hir {
    use regex_syntax::hir::{
        Capture, Class, ClassBytes, ClassBytesRange, ClassUnicode, ClassUnicodeRange, Hir, HirKind,
        Look, Repetition,
    };
    match h.into_kind() {
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(l) => Hir::literal(l.0),
        HirKind::Class(Class::Unicode(mut c)) => {
            c.intersect(&ClassUnicode::new([ClassUnicodeRange::new('\0', '\x7f')]));
            Hir::class(Class::Unicode(c))
        }
        HirKind::Class(Class::Bytes(mut c)) => {
            c.intersect(&ClassBytes::new([ClassBytesRange::new(0, 0x7f)]));
            Hir::class(Class::Bytes(c))
        }
        HirKind::Look(l) => Hir::look(match l {
            Look::WordUnicode => Look::WordAscii,
            Look::WordUnicodeNegate => Look::WordAsciiNegate,
            Look::WordStartUnicode => Look::WordStartAscii,
            Look::WordEndUnicode => Look::WordEndAscii,
            Look::WordStartHalfUnicode => Look::WordStartHalfAscii,
            Look::WordEndHalfUnicode => Look::WordEndHalfAscii,
            other => other,
        }),
        HirKind::Repetition(r) => Hir::repetition(Repetition {
            sub: Box::new(ascii_hir(*r.sub)),
            ..r
        }),
        HirKind::Capture(c) => Hir::capture(Capture {
            sub: Box::new(ascii_hir(*c.sub)),
            ..c
        }),
        HirKind::Concat(subs) => Hir::concat(subs.into_iter().map(ascii_hir).collect()),
        HirKind::Alternation(subs) => Hir::alternation(subs.into_iter().map(ascii_hir).collect()),
    }
}

/// Split capture search for a fast pattern `P·L·R` whose top level is a concatenation, where `P`
/// has no capture group and `L` is a literal (the last literal element before the first element
/// holding a group): `rest` is `L·R` compiled alone, so the capture engine — the costly part on a
/// matching line — only runs over `L·R`'s part of the match instead of the whole line. fail2ban's
/// `__prefix_line` preamble, full of optional, ambiguous pieces, is such a `P`.
///
/// Why it reports exactly the groups of the full search: let `[s, e)` be the full pattern's
/// leftmost-first match (found by its DFAs, no captures). Every way this match splits into a
/// `P` part `[s, m)` and an `L·R` part `[m, e)` has the literal `L` at `m`, inside `[s, e)`. When
/// `L` occurs exactly once in `[s, e)` (overlaps counted), `m` is that occurrence: every path
/// the engine could take through `P` ends at `m`. Leftmost-first picks the highest-priority path,
/// ordering paths by their choices in `P` first, then in `L·R`; since `P` has no groups and
/// whichever `P` path is picked ends at `m`, the `L·R` part is the highest-priority `L·R` match
/// starting at `m` — the match of `rest` anchored at `m`. `rest` is compiled as `\A·L·R` and run on
/// the line's tail from `m` (offsets shifted back by `m`): anchored, the engine needs no
/// prefilter and no reverse DFA pass to find where the match starts. Cutting the line at `m`
/// changes no assertion: `L` is non-empty and comes first, so every assertion of `R` sits at or
/// after `m + |L|` and looks back into `L` at most, and the tail ends where the line does.
/// Groups 1.. of `rest` are those of the full pattern (same order and names, `P` has none),
/// group 0 is `[s, e)`. When `L` occurs twice or not at all in `[s, e)`, or the
/// `rest` match is not `[m, e)` (both impossible by the above, checked anyway), the full capture
/// search runs instead.
///
/// Since the match of `rest` is known to be `[m, e)`, the capture engine (on an ASCII line
/// PCRE2's JIT, see [`pcre_text`]; else, or when PCRE2 gives up, a bounded backtracker on
/// that span alone) runs anchored at `m`: no DFA pass to find it again. Limiting the
/// span only drops candidate matches ending after `e`, and the highest-priority one ends at
/// `e`; assertions still see the whole tail (`$` at `e` looks past the span's end).
///
/// `rest` and its ASCII twin are compiled on first use: a pattern that never matches costs
/// nothing more than its parse.
struct Split {
    /// `L`, the leading literal of `rest`.
    lit: memchr::memmem::Finder<'static>,
    /// `\A·L·R`, parsed.
    rest_hir: regex_syntax::hir::Hir,
    /// `\A·L·R` compiled (`None`: it does not compile to the full pattern's groups).
    rest: std::sync::OnceLock<Option<BoundedBacktracker>>,
    /// ASCII twin of `rest` (see [`ascii_twin`]), used when the full pattern's twin is.
    rest_ascii: std::sync::OnceLock<Option<BoundedBacktracker>>,
    /// `rest` on PCRE2's JIT, which runs it several times faster: used on ASCII haystacks
    /// when it exists (see [`pcre_text`]).
    rest_jit: Option<pcre_text::JitCaptures>,
}

/// The [`Split`] of a fast pattern with `groups` groups, parsed as `hir`; `None` when it has
/// no such form.
fn split_of(hir: &regex_syntax::hir::Hir, groups: usize) -> Option<Split> {
    use regex_syntax::hir::{Hir, HirKind};
    let HirKind::Concat(subs) = hir.kind() else {
        return None;
    };
    let first_group = subs
        .iter()
        .position(|h| h.properties().explicit_captures_len() > 0)?;
    let at = subs
        .get(..first_group)?
        .iter()
        .rposition(|h| matches!(h.kind(), HirKind::Literal(_)))?;
    if at == 0 {
        // nothing before `L`: no gain
        return None;
    }
    let HirKind::Literal(lit) = subs.get(at)?.kind() else {
        return None;
    };
    if lit.0.is_empty() {
        return None;
    }
    let rest_hir = Hir::concat(
        std::iter::once(Hir::look(regex_syntax::hir::Look::Start))
            .chain(subs.get(at..)?.iter().cloned())
            .collect(),
    );
    Some(Split {
        lit: memchr::memmem::Finder::new(&lit.0).into_owned(),
        rest_jit: pcre_text::JitCaptures::new(&ascii_hir(rest_hir.clone()), groups),
        rest_hir,
        rest: std::sync::OnceLock::new(),
        rest_ascii: std::sync::OnceLock::new(),
    })
}

impl PyRegex {
    /// Compile a Python pattern; `multiline` = Python `re.MULTILINE`.
    pub fn compile(py: &str, multiline: bool) -> Result<PyRegex, RegexError> {
        Self::compile_opts(py, multiline, false)
    }

    /// Like [`compile`](Self::compile); `exact_dollar` as in [`translate_opts`] (use it for a
    /// non-MULTILINE pattern searched in a multi-line subject).
    pub fn compile_opts(
        py: &str,
        multiline: bool,
        exact_dollar: bool,
    ) -> Result<PyRegex, RegexError> {
        let t = translate_opts(py, multiline, exact_dollar)?;
        let engine = if !t.needs_backtrack {
            let re = regex::RegexBuilder::new(&t.pattern)
                .multi_line(multiline)
                .size_limit(64 << 20)
                .build()
                .map_err(|e| RegexError::new(py, e.to_string()))?;
            Engine::Fast(re)
        } else {
            let re = pcre2::bytes::RegexBuilder::new()
                .multi_line(multiline)
                .utf(true)
                .ucp(true)
                .jit_if_available(true)
                .build(&t.pattern)
                .map_err(|e| RegexError::new(py, e.to_string()))?;
            // The relaxed form is an optimisation only: if it does not compile, go without it.
            let necessary = regex::RegexBuilder::new(&t.relaxed)
                .multi_line(multiline)
                .size_limit(64 << 20)
                .build()
                .ok();
            Engine::Backtrack {
                regex: re,
                necessary,
            }
        };
        let (ascii, split, segments, jit, anchored) = match &engine {
            Engine::Fast(re) => match parse_hir(&t.pattern, multiline) {
                Some(hir) => {
                    let twin = ascii_hir(hir.clone());
                    // the split search, where it applies, costs less (measured): the full
                    // pattern's DFA (which `regex` starts from its literals), then only the
                    // tail on the JIT
                    let split = split_of(&hir, re.captures_len());
                    let (segments, jit) = match split {
                        Some(_) => (None, None),
                        None => (
                            Segments::of(&twin),
                            pcre_text::JitCaptures::new(&twin, re.captures_len()),
                        ),
                    };
                    let anchored = hir
                        .properties()
                        .look_set_prefix()
                        .contains(regex_syntax::hir::Look::Start);
                    (
                        ascii_twin_of(&hir, &twin, re),
                        split,
                        segments,
                        jit,
                        anchored,
                    )
                }
                None => (None, None, None, None, false),
            },
            Engine::Backtrack {
                necessary: Some(n), ..
            } => (
                ascii_twin(&t.relaxed, multiline, n),
                None,
                None,
                None,
                false,
            ),
            Engine::Backtrack { .. } => (None, None, None, None, false),
        };
        let names = match &engine {
            Engine::Fast(re) => re.capture_names().map(|n| n.map(str::to_string)).collect(),
            Engine::Backtrack { regex, .. } => regex.capture_names().to_vec(),
        };
        Ok(PyRegex {
            engine,
            ascii,
            split,
            segments,
            jit,
            anchored,
            names,
            py: py.to_string(),
            translated: t.pattern,
        })
    }

    /// The pattern as given (Python syntax).
    pub fn as_str(&self) -> &str {
        &self.py
    }

    /// The translated pattern (Rust syntax).
    pub fn translated(&self) -> &str {
        &self.translated
    }

    /// Whether the capture search is split (see [`Split`]).
    pub fn has_split_search(&self) -> bool {
        self.split.is_some()
    }

    /// Whether the backtracking engine is used.
    pub fn is_backtrack(&self) -> bool {
        matches!(self.engine, Engine::Backtrack { .. })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Group names by group index (index 0 and unnamed groups are `None`).
    pub fn group_names(&self) -> &[Option<String>] {
        &self.names
    }

    /// Index of the named group.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n.as_deref() == Some(name))
    }

    /// Python `re.search(...) is not None`. A backtracking run that exceeds its limit counts as
    /// no match (Python would just be slow).
    pub fn is_match(&self, hay: &str) -> bool {
        match &self.engine {
            Engine::Fast(re) => self.fast_for(re, hay).is_match(hay),
            Engine::Backtrack { regex, necessary } => {
                if !self.necessary_holds(necessary.as_ref(), hay) {
                    return false;
                }
                // an error is PCRE2's match limit: no match
                regex.is_match(hay.as_bytes()).unwrap_or(false)
            }
        }
    }

    /// Python `re.search` with group spans.
    pub fn captures(&self, hay: &str) -> Option<Spans> {
        let mut s = Spans::default();
        self.captures_into(hay, &mut s).then_some(s)
    }

    /// Like [`captures`](Self::captures), reusing `spans`; returns whether it matched.
    pub fn captures_into(&self, hay: &str, spans: &mut Spans) -> bool {
        self.captures_with(hay, &mut CaptureCache::default(), spans)
    }

    /// Like [`captures_into`](Self::captures_into), also reusing the engine's capture storage
    /// kept in `cache` (one cache per regex): no allocation once `spans` and `cache` are warm.
    pub fn captures_with(&self, hay: &str, cache: &mut CaptureCache, spans: &mut Spans) -> bool {
        spans.spans.clear();
        match &self.engine {
            Engine::Fast(re) => {
                // No `is_match` first: a failing capture search stops after the same forward
                // DFA scan, and a matching one would scan twice.
                let full = re;
                let is_ascii = hay.is_ascii();
                let jit = self.jit.as_ref().filter(|j| is_ascii && j.usable());
                let seg = self.segments.as_ref().filter(|_| is_ascii);
                if jit.is_some() || seg.is_some() {
                    let whole = self.fast_for(re, hay);
                    // an anchored pattern has no start to find
                    let (start, end) = if self.anchored {
                        (0, None)
                    } else {
                        match whole.find(hay) {
                            Some(m) => (m.start(), Some(m.end())),
                            None => return false,
                        }
                    };
                    if let Some(jit) = jit {
                        match jit.captures_at(hay, start, &mut cache.jit, &mut spans.spans) {
                            Some(true) if end.is_none_or(|e| spans.get(0) == Some((start, e))) => {
                                return true
                            }
                            // PCRE2 tells a miss of an anchored pattern exactly
                            Some(false) if self.anchored => return false,
                            _ => spans.spans.clear(),
                        }
                    }
                    if let Some(seg) = seg {
                        spans.spans.resize(re.captures_len(), None);
                        if seg.captures(hay, start, end, &mut cache.segments, &mut spans.spans) {
                            return true;
                        }
                        spans.spans.clear();
                        // A piece's first path is not the match's, or there is no match: the
                        // full search below, unless a DFA scan (cheaper than a capture search
                        // that fails) shows that nothing matches.
                        if self.anchored && !whole.is_match(hay) {
                            return false;
                        }
                    }
                }
                let twin = self.ascii.is_some() && is_ascii;
                let re = match &self.ascii {
                    Some(a) if twin => a,
                    _ => re,
                };
                if let Some(split) = &self.split {
                    let Some(m) = re.find(hay) else {
                        return false;
                    };
                    let whole = (m.start(), m.end());
                    if split_captures(split, full, (is_ascii, twin), hay, whole, cache, spans) {
                        return true;
                    }
                    // not provably the same split: the full capture search below
                }
                let slot = if twin {
                    &mut cache.ascii
                } else {
                    &mut cache.full
                };
                let locs = locations(slot, re);
                if re.captures_read(locs, hay).is_none() {
                    return false;
                }
                spans.spans.extend((0..locs.len()).map(|i| locs.get(i)));
                true
            }
            Engine::Backtrack { regex, necessary } => {
                if !self.necessary_holds(necessary.as_ref(), hay) {
                    return false;
                }
                let locs = cache.pcre.get_or_insert_with(|| regex.capture_locations());
                match regex.captures_read(locs, hay.as_bytes()) {
                    Ok(Some(_)) => {
                        spans.spans.extend((0..locs.len()).map(|i| locs.get(i)));
                        true
                    }
                    _ => false,
                }
            }
        }
    }

    /// The fast regex to run on `hay`: the ASCII twin when it applies.
    fn fast_for<'s>(&'s self, re: &'s regex::Regex, hay: &str) -> &'s regex::Regex {
        match &self.ascii {
            Some(a) if hay.is_ascii() => a,
            _ => re,
        }
    }

    /// Whether the relaxed necessary condition of a backtracking pattern holds (true without
    /// one).
    fn necessary_holds(&self, necessary: Option<&regex::Regex>, hay: &str) -> bool {
        match necessary {
            Some(n) => self.fast_for(n, hay).is_match(hay),
            None => true,
        }
    }
}

/// The groups of the full pattern's match `whole` (= `[s, e)`) found with `split` (see
/// [`Split`]), into `spans`; `false` (with `spans` left empty) when the split is not provably the
/// full search's, and the caller must run that. `full`: the full (Unicode) fast regex;
/// `(ascii, twin)`: `hay` is all ASCII, the search runs on ASCII twins.
fn split_captures(
    split: &Split,
    full: &regex::Regex,
    (ascii, twin): (bool, bool),
    hay: &str,
    whole: (usize, usize),
    cache: &mut CaptureCache,
    spans: &mut Spans,
) -> bool {
    let (s, e) = whole;
    let Some(region) = hay.as_bytes().get(s..e) else {
        return false;
    };
    let Some(first) = split.lit.find(region) else {
        return false;
    };
    if region
        .get(first + 1..)
        .is_none_or(|r| split.lit.find(r).is_some())
    {
        return false;
    }
    let at = s + first;
    let Some(tail) = hay.get(at..) else {
        return false;
    };
    if let (true, Some(jit)) = (ascii, &split.rest_jit) {
        // its first match from the tail's start is `rest`'s (see [`Split`]), so the span
        // needs no limit: the check below still holds it to `[m, e)`
        match jit.captures_at(tail, 0, &mut cache.rest_jit, &mut spans.spans) {
            Some(true) if spans.get(0) == Some((0, e - at)) => {
                let mut groups = spans.spans.iter_mut();
                if let Some(first) = groups.next() {
                    *first = Some(whole);
                }
                for g in groups.flatten() {
                    *g = (at + g.0, at + g.1);
                }
                return true;
            }
            // no match or another one: not provably the split (impossible, see above)
            Some(_) => {
                spans.spans.clear();
                return false;
            }
            // not compiled, or a JIT stack or step limit: the backtracker below, exact and
            // linear
            None => spans.spans.clear(),
        }
    }
    let (rest, slot) = if twin {
        let rest = split
            .rest_ascii
            .get_or_init(|| backtracker_like(&ascii_hir(split.rest_hir.clone()), full));
        (rest, &mut cache.rest_ascii)
    } else {
        let rest = split
            .rest
            .get_or_init(|| backtracker_like(&split.rest_hir, full));
        (rest, &mut cache.rest_full)
    };
    let Some(rest) = rest else {
        return false;
    };
    // `[0, e - at)` of the tail is the match of `rest` (see [`Split`])
    let input = Input::new(tail).span(0..e - at).anchored(Anchored::Yes);
    let RestCache { cache, caps } = rest_cache(slot, rest);
    // an error: the span is too long for the backtracker's visited set
    if rest.try_search(cache, &input, caps).is_err() {
        return false;
    }
    match caps.get_match() {
        Some(m) if m.start() == 0 && at + m.end() == e => {}
        _ => return false,
    }
    spans.spans.push(Some(whole));
    spans.spans.extend(
        (1..caps.group_len()).map(|i| caps.get_group(i).map(|g| (at + g.start, at + g.end))),
    );
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn tr(p: &str) -> Translated {
        translate(p).unwrap()
    }

    fn m(p: &str, hay: &str) -> Option<Vec<Option<String>>> {
        let re = PyRegex::compile(p, false).unwrap();
        re.captures(hay).map(|s| {
            (0..s.len())
                .map(|i| s.get(i).map(|(a, b)| hay[a..b].to_string()))
                .collect()
        })
    }

    #[test]
    fn brace_quantifiers() {
        assert_eq!(tr(r"\d{,3}").pattern, r"\d{0,3}");
        assert_eq!(tr(r"a{2}").pattern, r"a{2}");
        assert_eq!(tr(r"a{2,}?").pattern, r"a{2,}?");
        assert_eq!(tr(r"a{,}").pattern, r"a{0,}");
        assert!(m(r"^\d{,3}$", "1234\n").is_none());
        assert!(m(r"^\d{,3}$", "123\n").is_some());
    }

    #[test]
    fn stray_braces() {
        // ejabberd-auth, horde
        assert_eq!(tr(r"\({{x").pattern, r"\(\{\{x");
        assert_eq!(tr(r"(Horde|{[^}]+})").pattern, r"(Horde|\{[^}]+\})");
        assert!(m(r"(Horde|{[^}]+})", "{abc}").is_some());
        assert!(m(r"a{}", "a{}").is_some());
    }

    #[test]
    fn bracket_in_class() {
        // postfix
        assert_eq!(tr(r"^from [^[]*\[").pattern, r"^from [^\[]*\[");
        assert!(m(r"^from [^[]*\[(?P<x>\d+)\]", "from host[12]").is_some());
        assert!(m(r"[[:alpha:]]", "a]").is_some());
        assert!(m(r"[[:alpha:]]", "a").is_none());
        assert!(m(r"[]a]", "]").is_some());
        assert!(m(r"[a-]", "-").is_some());
        assert!(m(r"[\w\-.^_]+", "a-b.c^").is_some());
        assert!(m(r"[&&]", "&").is_some());
    }

    #[test]
    fn global_flags_mid_pattern() {
        assert_eq!(tr(r"a((?i)b|c)").pattern, r"a(?i:b|c)");
        assert_eq!(tr(r"a(?:(?i)b)").pattern, r"a(?i:b)");
        assert!(m(r"^x((?i)abc|def)$", "xABC\n").is_some());
        assert!(m(r"^X((?i)abc|def)$", "xABC\n").is_none());
        // escaped paren is left alone
        assert_eq!(tr(r"\((?i)b").pattern, r"\((?i)b");
    }

    #[test]
    fn leading_flags() {
        assert!(m(r"(?i)^abc", "ABC").is_some());
        let re = PyRegex::compile(r"(?m)^b$", false).unwrap();
        assert!(re.is_match("a\nb\nc\n"));
    }

    #[test]
    fn dollar_python_semantics() {
        assert!(m(r"foo$", "foo\n").is_some());
        assert!(m(r"foo$", "foo").is_some());
        assert!(m(r"(?P<a>.+)$", "foo\n").unwrap()[1].as_deref() == Some("foo"));
        // multiline: before any \n
        let re = PyRegex::compile(r"^a$", true).unwrap();
        assert!(re.is_match("x\na\nb\n"));
        // backtracking pattern: exact semantics even with interior newlines
        let re = PyRegex::compile_opts(r"a$", false, true).unwrap();
        assert!(!re.is_match("a\nb\n"));
        assert!(re.is_match("b\na\n"));
        let re = PyRegex::compile(r"(?=a)a$", false).unwrap();
        assert!(!re.is_match("a\nb\n"));
        assert!(re.is_match("b\na\n"));
        assert!(re.is_match("b\na"));
        assert!(m(r"\Z", "x\n").unwrap()[0].is_some());
        assert_eq!(tr(r"a\Z").pattern, r"a\z");
        assert!(m(r"a\Z", "a\n").is_none());
    }

    #[test]
    fn unicode_classes() {
        assert!(m(r"^\w+$", "straße").is_some());
        assert!(m(r"^\d$", "٣").is_some());
        assert!(m(r"^\s$", "\u{2003}").is_some());
    }

    #[test]
    fn escapes() {
        assert!(m(r"\<x\>", "<x>").is_some());
        assert!(m(r"\/\:\'\ ", "/:' ").is_some());
        assert!(m(r"\u00e9\x41\101", "éAA").is_some());
        assert!(m(r"[\b]", "\x08").is_some());
        assert!(translate(r"\q").is_err());
        assert!(translate(r"abc\").is_err());
        assert!(translate(r"(abc").is_err());
        assert!(translate(r"abc)").is_err());
    }

    #[test]
    fn backtracking_detection() {
        assert!(!tr(r"^abc (?P<x>\d+)").needs_backtrack);
        assert!(tr(r"a(?=b)").needs_backtrack);
        assert!(tr(r"a(?!b)").needs_backtrack);
        assert!(tr(r"(?<=a)b").needs_backtrack);
        assert!(tr(r"(?<!a)b").needs_backtrack);
        assert!(tr(r"(?P<x>a)(?P=x)").needs_backtrack);
        assert!(tr(r"(a)\1").needs_backtrack);
        assert!(tr(r"(?>a+)b").needs_backtrack);
        assert!(tr(r"a*+b").needs_backtrack);
        assert!(tr(r"(?P<c>\()?x(?(c)\))").needs_backtrack);
        assert_eq!(tr(r"(?P<x>a)(?P=x)").pattern, r"(?P<x>a)\k<x>");
        assert_eq!(tr(r"(?(c)a|b)").pattern, r"(?(<c>)a|b)");
        assert_eq!(tr(r"(?(1)a|b)").pattern, r"(?(1)a|b)");
        assert_eq!(tr(r"a(?=b)c").relaxed, r"ac");
        assert_eq!(tr(r"(?(c)a|b)").relaxed, r"(?:a|b)");
        assert_eq!(tr(r"(?(c)a)").relaxed, r"(?:a|)");
    }

    #[test]
    fn ip6_lookbehind_is_fast() {
        let p = format!("(?P<ip6>{IP6_LOOKBEHIND})");
        let t = tr(&p);
        assert!(!t.needs_backtrack, "{}", t.pattern);
        for ip in ["::1", "fe80::1", "2001:db8::", "1:2:3:4:5:6:7:8"] {
            let hay = format!("from {ip} port");
            let caps = m(&p, &hay).unwrap();
            assert_eq!(caps[1].as_deref(), Some(ip), "{ip}");
        }
    }

    #[test]
    fn conditional_python_meaning() {
        // testing-tips.md: fancy-regex misreads `(?(c)…)` unless rewritten
        let p = r"^(?P<c>\()?foo(?(c)\))$";
        assert!(m(p, "(foo)").is_some());
        assert!(m(p, "foo").is_some());
        assert!(m(p, "(foo").is_none());
    }

    #[test]
    fn backref_and_lookaround_match() {
        let caps = m(r"(?P<sep>[-/])\d+(?P=sep)", "12-34-56").unwrap();
        assert_eq!(caps[0].as_deref(), Some("-34-"));
        assert!(m(r"^(?:(?! from ).)*$", "a b c").is_some());
        assert!(m(r"^(?:(?! from ).)*$", "a from c").is_none());
        assert!(m(r"(?#comment)ab", "ab").is_some());
    }

    #[test]
    fn group_names_and_spans() {
        let re = PyRegex::compile(r"(?P<a>x)(y)(?P<b>z)?", false).unwrap();
        assert_eq!(
            re.group_names(),
            &[None, Some("a".into()), None, Some("b".into())]
        );
        let s = re.captures("..xy").unwrap();
        assert_eq!(s.get(1), Some((2, 3)));
        assert_eq!(s.get(3), None);
        assert_eq!(re.group_index("b"), Some(3));
    }

    #[test]
    fn backtracking_blowup_falls_back_to_the_linear_engine() {
        // PCRE2 would take 2^40 steps here; past its step limit the `regex` engine answers
        let re = PyRegex::compile(r"^(?P<x>a|aa)+$", false).unwrap();
        assert!(re.jit.is_some());
        let mut hay = "a".repeat(40);
        assert_eq!(re.captures(&hay).unwrap().get(1), Some((39, 40)));
        hay.push('b');
        assert!(re.captures(&hay).is_none());
        // a match behind the blow-up is still found
        let re = PyRegex::compile(r"^(?:(?P<x>a|aa)+c|(?P<y>a+)b)$", false).unwrap();
        assert!(re.jit.is_some());
        let s = re.captures(&hay).unwrap();
        assert_eq!((s.get(1), s.get(2)), (None, Some((0, 40))));
    }

    #[test]
    fn split_tail_blowup_still_finds_the_match() {
        let re = PyRegex::compile(r"^\w+ from (?:(?P<x>a|aa)+c|(?P<y>a+)b)$", false).unwrap();
        assert!(re.has_split_search());
        let hay = format!("q from {}b", "a".repeat(40));
        let s = re.captures(&hay).unwrap();
        assert_eq!((s.get(1), s.get(2)), (None, Some((7, 47))));
    }

    #[test]
    fn pattern_pcre2_numbers_differently_runs_without_the_jit() {
        // the parser drops `(?P<a>a){0}`: PCRE2's text would have one group fewer
        let re = PyRegex::compile(r"x(?P<a>a){0}(?P<b>b)", false).unwrap();
        assert!(re.jit.as_ref().is_some_and(|j| !j.usable()));
        let s = re.captures("zxb").unwrap();
        assert_eq!((s.get(1), s.get(2)), (None, Some((2, 3))));
    }

    #[test]
    fn error_carries_pattern() {
        let e = PyRegex::compile("(?P<x>a", false).unwrap_err();
        assert_eq!(e.pattern, "(?P<x>a");
        assert!(!e.reason.is_empty());
    }

    type AllSpans = Option<Vec<Option<(usize, usize)>>>;

    /// Group spans from the full (Unicode) fast regex and from its ASCII twin.
    fn both(re: &PyRegex, hay: &str) -> (AllSpans, AllSpans) {
        let spans = |r: &regex::Regex| {
            r.captures(hay)
                .map(|c| c.iter().map(|m| m.map(|m| (m.start(), m.end()))).collect())
        };
        let full = match re.engine() {
            Engine::Fast(r) => r,
            Engine::Backtrack { necessary, .. } => necessary.as_ref().unwrap(),
        };
        (spans(full), spans(re.ascii.as_ref().unwrap()))
    }

    /// Group spans of a fast pattern from its full (Unicode) regex, and from `re.captures`.
    fn full_and_ours(re: &PyRegex, hay: &str) -> (AllSpans, AllSpans) {
        let Engine::Fast(full) = re.engine() else {
            panic!("not fast");
        };
        let want = full
            .captures(hay)
            .map(|c| c.iter().map(|m| m.map(|m| (m.start(), m.end()))).collect());
        let got = re
            .captures(hay)
            .map(|s| (0..s.len()).map(|i| s.get(i)).collect());
        (want, got)
    }

    #[test]
    fn ascii_twin_same_matches() {
        let re = PyRegex::compile(
            r"^\s*(?:\S+\s+)?[\[(]?sshd(?:\(\S+\))?[\])]?:?(?:\[\d+\])?:?\s+(?P<u>\w+) from (?P<h>[^ ]+)$",
            false,
        )
        .unwrap();
        assert!(re.ascii.is_some());
        for hay in [
            " host sshd[12]: bob from 1.2.3.4\n",
            " host sshd[12]: b_ob from 1.2.3.4 \n",
            "x",
        ] {
            let (a, b) = both(&re, hay);
            assert_eq!(a, b, "{hay:?}");
        }
        // non-ASCII haystacks use the Unicode regex
        assert!(re.is_match(" host sshd[1]: straße from é\n"));
        // case folding: the Kelvin sign matches k, in both
        let re = PyRegex::compile(r"(?i)\u212a", false).unwrap();
        assert!(re.is_match("k") && re.is_match("K") && re.is_match("\u{212a}"));
        // word boundaries
        let re = PyRegex::compile(r"\bab\B", false).unwrap();
        assert!(re.ascii.is_some());
        assert!(re.is_match("x ab_") && !re.is_match("xab_") && !re.is_match("x ab "));
        // a tree `regex_syntax` prints as another pattern (`(?:\w+)?` as the lazy `\w+?`)
        // gets no twin, and stays greedy
        let re = PyRegex::compile(r"^a(?:\w+)?(?P<r>\w*)$", false).unwrap();
        assert!(re.ascii.is_none());
        assert_eq!(re.captures("abc").unwrap().get(1), Some((3, 3)));
        // nothing to cut: no twin
        assert!(PyRegex::compile(r"^abc [0-9]+$", false)
            .unwrap()
            .ascii
            .is_none());
    }

    /// Patterns whose capture searches (by pieces, on PCRE2's JIT) the proptests compare
    /// with the full search: groups at the top level, nested, in alternations and
    /// repetitions, lazy and greedy, anchored or not.
    const CAPTURE_PATTERNS: &[&str] = &[
        r"^(?P<a>\S+)\s+(?P<b>.*?)(?: (?P<c>\d+))?$",
        r"^(?P<m>\s*(?:\S+\s+)?)(?:(?:error|fatal): )?(?P<c>.+)$",
        r"(?P<a>a+)(?P<b>a*)b",
        r"^(?P<x>a|ab)(?P<y>c|bcd)(?P<z>d*)$",
        r"^(?P<x>a|ab)(?P<y>c)",
        r"(?P<u>.*) from (?P<h>\S+)$",
        r"^(?:(?P<a>\d+)|(?P<b>\w+))-(?P<c>.+)",
        r"(?P<o>(?P<i>x+)y)+z",
        r"\b(?P<w>\w+)\b:(?P<r>.*)",
        r"^(?P<a>.+)(?P<b>.+)$",
        r"(?m)^(?P<a>[^:\n]*):(?P<b>.*)$",
        r"^(?P<n>(?P<f>(a|b)+))(?P<rest>.*?)(?P<end>\d)?$",
        r"^(?:\[?(?:(?P<a>\d+)|(?P<b>[a-f:]+))\]?|(?P<c>\w+))(?: (?P<d>\d+))?$",
        r"(?:x(?P<g>y))?(?P<h>y*)(?:(?P<i>a)|b(?P<j>c)?)",
    ];

    proptest::proptest! {
        #[test]
        fn ascii_twin_agrees(
            p in proptest::sample::select(vec![
                r"^\s*(?P<a>\S+)\s+(?P<b>.*?)(?: (?P<c>\d+))?$",
                r"(?i)(?P<a>\w+)@(?P<b>[^.]+)\.(?P<c>k\w*)",
                r"\b(?P<a>\w+)\b(?P<b>\W*)",
                r"(?m)^(?P<a>[^\n:]*):\s*(?P<b>.*)$",
                r"(?P<a>[^a-z]+)|(?P<b>\D\S?)",
            ]),
            hay in "[ -~\t\n\x0b\x0c\r\x00-\x08\x1c-\x1f\x7f]{0,40}",
        ) {
            let re = PyRegex::compile(p, false).unwrap();
            let (a, b) = both(&re, &hay);
            proptest::prop_assert_eq!(a, b);
        }

        /// The capture searches on PCRE2's JIT (which `captures` runs first) and by pieces
        /// find the spans the full search does; the pieces also where a piece's first path
        /// does not lead to the match (then the full search runs).
        #[test]
        fn jit_and_segmented_searches_agree(
            p in proptest::sample::select(CAPTURE_PATTERNS),
            hay in "(a|b|c|d|x|y|z|0|1| |:|-| from |\n|error: ){0,12}",
        ) {
            let re = PyRegex::compile(p, false).unwrap();
            proptest::prop_assert!(re.jit.is_some());
            proptest::prop_assert!(re.segments.is_some());
            let (want, got) = full_and_ours(&re, &hay);
            proptest::prop_assert_eq!(&got, &want);
            let Engine::Fast(full) = re.engine() else {
                panic!("not fast");
            };
            // the pieces alone: where they find spans, they are the full search's
            let seg = re.segments.as_ref().unwrap();
            let (start, end) = if re.anchored {
                (0, None)
            } else {
                match full.find(&hay) {
                    Some(m) => (m.start(), Some(m.end())),
                    None => return Ok(()),
                }
            };
            let mut spans = vec![None; full.captures_len()];
            if seg.captures(&hay, start, end, &mut SegmentCache::default(), &mut spans) {
                proptest::prop_assert_eq!(Some(spans), want);
            }
        }

        #[test]
        fn never_panics(p in ".{0,40}", hay in ".{0,40}") {
            if let Ok(re) = PyRegex::compile(&p, false) {
                let _ = re.captures(&hay);
                let _ = re.is_match(&hay);
            }
            let _ = PyRegex::compile(&p, true);
        }

        #[test]
        fn never_panics_regexish(p in r"[\\()\[\]{}?*+|^$a-c0-9,:=!<>P-]{0,30}", hay in "[abc0-9()\n]{0,20}") {
            if let Ok(re) = PyRegex::compile(&p, false) {
                let _ = re.captures(&hay);
            }
        }
    }
}
