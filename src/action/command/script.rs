//! The dynamic pass of tag substitution (fail2ban's `replaceDynamicTags`), where ticket
//! values — attacker-controlled text, since they come from log lines — meet the shell.
//! Owns [`Script`]: a shell script plus the positional arguments it reads. Receives a
//! command after the static pass, a [`Ticket`] and the family; emits a `Script` in which
//! every dynamic tag is replaced once, left to right, never re-scanned.
//!
//! The rule: a value made only of characters that mean nothing to `sh` (letters, digits,
//! `_ . : @ / + , = - %` and space) is written into the script as is, so commands keep
//! reading like fail2ban's (`iptables -I f2b-sshd 1 -s 192.0.2.7 -j REJECT`). Any other
//! value — one holding a quote, `$`, a backquote, `;`, a newline or any control character —
//! is never part of the script text: the tag becomes `${f2bV_<name>}`, the script starts
//! with `f2bV_<name>=${N}` and the value travels as positional argument N of
//! `sh -c SCRIPT sh ARG1 …`. The shell expands a parameter once and never parses its
//! value as code. Every character fail2ban would send as a variable is sent as one here
//! too (fail2ban also inlines `!`, tabs and other control characters; we do not).
//!
//! Values are capped (64 KiB each, 512 KiB together; matches are cut at a line end) so
//! that a flood of long log lines cannot make the kernel refuse to start the shell.
//!
//! As in fail2ban, a variable is expanded by the shell: inside single quotes
//! (`'<F-USER>'`) it stays literal text, and unquoted it is split on spaces and
//! glob-expanded (never executed); action authors put dynamic tags in double quotes.

use std::borrow::Cow;

use super::tags::tags;
use super::ticket::{Family, Ticket};

/// Longest value written into the script text itself; longer ones go as arguments, so a
/// long value cannot push the script past the kernel's per-argument limit (128 KiB).
const INLINE_MAX: usize = 256;
/// Longest single argument value (below the kernel's 128 KiB per argument).
const VALUE_MAX: usize = 64 * 1024;
/// All argument values together (well below the usual 2 MiB `ARG_MAX`, environment
/// included).
const ARGS_MAX: usize = 512 * 1024;

/// A script ready for `sh -c`, and the values it reads from its positional parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Script {
    /// The script, variable assignments first.
    pub text: String,
    /// Positional parameters `$1 …` (`$0` is `sh`).
    pub args: Vec<String>,
    /// Tags whose values were cut to fit the size limits.
    pub truncated: Vec<String>,
}

/// Is `v` written into the script as is? Only characters with no meaning to `sh`.
pub(crate) fn is_inline_safe(v: &str) -> bool {
    v.len() <= INLINE_MAX
        && v.chars().all(|c| {
            c.is_alphanumeric()
                || matches!(
                    c,
                    '_' | '.' | ':' | '@' | '/' | '+' | ',' | '=' | '-' | '%' | ' '
                )
        })
}

/// Substitutes the dynamic tags of `command` (after the static pass) with `ticket`'s
/// values for an operation run for `family`.
pub(crate) fn build(command: &str, ticket: &Ticket, family: Family) -> Script {
    let mut text = String::with_capacity(command.len() + 32);
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut truncated = Vec::new();
    let mut budget = ARGS_MAX;
    let mut last = 0;
    for tag in tags(command) {
        let (var_stem, value): (Cow<'_, str>, Cow<'_, str>) = match f_tag(tag.name) {
            Some(name) => (
                Cow::Owned(format!(
                    "F_{}",
                    banhammer_core::failtags::map_tag_name(name)
                )),
                Cow::Borrowed(ticket.field(name)),
            ),
            None => match ticket.tag_value(family, tag.name) {
                Some(v) => (Cow::Borrowed(tag.name), v),
                None => continue,
            },
        };
        text.push_str(&command[last..tag.start]);
        last = tag.end;
        // An argument cannot hold NUL (the kernel would cut it, std refuses to spawn):
        // a NUL in a log line must not be able to make bans fail.
        let value = if value.contains('\0') {
            Cow::Owned(value.replace('\0', "\u{FFFD}"))
        } else {
            value
        };
        if is_inline_safe(&value) {
            text.push_str(&value);
            continue;
        }
        let limit = VALUE_MAX.min(budget);
        if value.len() > limit {
            truncated.push(tag.name.to_string());
        }
        let value = cut(&value, limit);
        let var = var_name(&var_stem, &value, &vars);
        if !vars.iter().any(|(n, _)| *n == var) {
            budget = budget.saturating_sub(value.len());
            vars.push((var.clone(), value.into_owned()));
        }
        text.push_str("${");
        text.push_str(&var);
        text.push('}');
    }
    text.push_str(&command[last..]);
    finish(text, vars, truncated)
}

/// The name after `F-` when `tag` is a filter-capture tag as fail2ban recognises them
/// (`F-` then upper-case letters, digits, `_` or `-`).
fn f_tag(tag: &str) -> Option<&str> {
    let name = tag.strip_prefix("F-")?;
    (!name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-'))
    .then_some(name)
}

/// `f2bV_` + the tag with every character that cannot be in a shell name replaced by `_`;
/// a numbered twin when another value already took that name (`a-b` and `a_b`).
fn var_name(stem: &str, value: &str, vars: &[(String, String)]) -> String {
    let base: String = "f2bV_"
        .chars()
        .chain(
            stem.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        )
        .collect();
    let mut name = base.clone();
    let mut n = 1;
    while let Some((_, v)) = vars.iter().find(|(k, _)| *k == name) {
        if v == value {
            break;
        }
        n += 1;
        name = format!("{base}_{n}");
    }
    name
}

/// `value` cut to at most `max` bytes on a char boundary, and back to the end of its last
/// whole line when it has several (a cut match line would be misleading).
fn cut(value: &str, max: usize) -> Cow<'_, str> {
    if value.len() <= max {
        return Cow::Borrowed(value);
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let kept = &value[..end];
    Cow::Borrowed(match kept.rfind('\n') {
        Some(nl) => &kept[..nl],
        None => kept,
    })
}

fn finish(text: String, vars: Vec<(String, String)>, truncated: Vec<String>) -> Script {
    if vars.is_empty() {
        return Script {
            text,
            args: Vec::new(),
            truncated,
        };
    }
    let mut script = String::with_capacity(text.len() + vars.len() * 24);
    for (i, (name, _)) in vars.iter().enumerate() {
        // `${N}`: a bare `$10` would be `$1` followed by `0`.
        script.push_str(&format!("{name}=${{{}}} ", i + 1));
    }
    script.push('\n');
    script.push_str(&text);
    Script {
        text: script,
        args: vars.into_iter().map(|(_, v)| v).collect(),
        truncated,
    }
}
