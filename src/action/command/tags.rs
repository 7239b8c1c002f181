//! The static pass of tag substitution (fail2ban's `replaceTag` with the action's
//! properties). Owns the `<tag>` scanner and [`Properties`]: the action's options
//! (Definition + Init + args, as the config crate resolved them) plus the few tags every
//! action knows (`<br>`, `<sp>`, `<fq-hostname>`, `<sh-hostname>`, `<timeout>`). Receives an
//! operation's command template and a family; emits the command with every option tag
//! replaced, recursively, family variants first. Tags it does not know (`<ip>`, `<F-USER>`,
//! shell text like `<STDIN>`) stay as written for the dynamic pass.
//!
//! Only configuration reaches this pass: ticket values (log text) are substituted later,
//! once and without recursion, so nothing an attacker writes is ever read as a tag.

use std::borrow::Cow;

use banhammer_config::Options;

use super::hostname;
use super::ticket::Family;

/// fail2ban's `MAX_TAG_REPLACE_COUNT`: more rounds than this means a self-reference.
const MAX_ROUNDS: usize = 25;

/// One `<name>` occurrence in a text: byte range of the whole tag and the name inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TagAt<'a> {
    pub start: usize,
    pub end: usize,
    pub name: &'a str,
}

/// The tags of `text` left to right, as fail2ban's `<([^ <>]+)>` finds them: an inner tag
/// of a nested one (`<_ports_<type>>`) is found first, because a name cannot hold `<`.
pub(crate) fn tags(text: &str) -> impl Iterator<Item = TagAt<'_>> {
    let bytes = text.as_bytes();
    let mut pos = 0;
    std::iter::from_fn(move || {
        while pos < bytes.len() {
            let open = pos + memchr::memchr(b'<', &bytes[pos..])?;
            let mut i = open + 1;
            while i < bytes.len() && !matches!(bytes[i], b' ' | b'<' | b'>') {
                i += 1;
            }
            if i < bytes.len() && bytes[i] == b'>' && i > open + 1 {
                pos = i + 1;
                // `<` and `>` are ASCII, so both ends are char boundaries.
                return Some(TagAt {
                    start: open,
                    end: i + 1,
                    name: &text[open + 1..i],
                });
            }
            // Not a tag: go on from the `<` that stopped us, or after this one.
            pos = if i < bytes.len() && bytes[i] == b'<' {
                i
            } else {
                open + 1
            };
        }
        None
    })
}

/// What the static pass substitutes from.
#[derive(Debug, Clone)]
pub(crate) struct Properties {
    options: Options,
    /// `<timeout>` as fail2ban prints its parsed value (`60`, `1.5`).
    timeout: String,
}

impl Properties {
    /// The action's options; `bantime` is dropped, as fail2ban ignores it as a property
    /// (it is the ticket's), so that `<bantime>` always means the ban's own time.
    pub(crate) fn new(mut options: Options, timeout_secs: f64) -> Properties {
        options.remove("bantime");
        let timeout = if timeout_secs.fract() == 0.0 && timeout_secs.abs() < 1e15 {
            format!("{}", timeout_secs as i64)
        } else {
            format!("{timeout_secs}")
        };
        Properties { options, timeout }
    }

    /// The raw option `key` (no family variant, no substitution).
    pub(crate) fn raw(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// Whether any option has a family-conditional variant (`key?family=…`): such actions
    /// start per family, on demand by default.
    pub(crate) fn has_family_variants(&self) -> bool {
        self.options.keys().any(|k| {
            k.split_once("?family=").is_some_and(|(name, _)| {
                !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_')
            })
        })
    }

    /// The value of tag `name` for `family`: the family variant first, then the option,
    /// then the built-in tags.
    fn lookup(&self, name: &str, family: Family) -> Option<Cow<'_, str>> {
        if let Some(cond) = family.conditional() {
            if let Some(v) = self.options.get(&format!("{name}{cond}")) {
                return Some(Cow::Borrowed(v));
            }
        }
        if let Some(v) = self.options.get(name) {
            return Some(Cow::Borrowed(v));
        }
        match name {
            "br" => Some(Cow::Borrowed("\n")),
            "sp" => Some(Cow::Borrowed(" ")),
            "timeout" => Some(Cow::Borrowed(&self.timeout)),
            "fq-hostname" => Some(Cow::Borrowed(hostname::fqdn())),
            "sh-hostname" => Some(Cow::Borrowed(hostname::short())),
            _ => None,
        }
    }

    /// Operation `op` (e.g. `actionban`) for `family` with every static tag substituted.
    /// Err(the text reached) on a self-referencing definition.
    pub(crate) fn render(&self, op: &str, family: Family) -> Result<String, String> {
        let template = match self.lookup(op, family) {
            Some(t) => t.into_owned(),
            None => return Ok(String::new()),
        };
        self.substitute(template, family)
    }

    /// Replaces known tags in rounds until nothing changes (a replacement may bring new
    /// tags, and nested names resolve inside out).
    pub(crate) fn substitute(&self, mut text: String, family: Family) -> Result<String, String> {
        for _ in 0..=MAX_ROUNDS {
            let mut out = String::with_capacity(text.len());
            let mut last = 0;
            for tag in tags(&text) {
                if let Some(v) = self.lookup(tag.name, family) {
                    out.push_str(&text[last..tag.start]);
                    out.push_str(&v);
                    last = tag.end;
                }
            }
            if last == 0 {
                return Ok(text);
            }
            out.push_str(&text[last..]);
            if out == text {
                return Ok(out);
            }
            text = out;
        }
        Err(text)
    }
}
