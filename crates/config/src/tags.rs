//! Client-side `<tag>` substitution between the options of one filter/action (fail2ban's
//! `substituteRecursiveTags`). Owns the recursion rules: a tag is `<[^ <>]+>`, replaced by the
//! value of the same-named option (or a `?cond` variant when a conditional is given, or what a
//! fallback lookup finds), repeatedly so nested names like `<lt_<logtype>/__prefix_line>` work;
//! unknown and ignored tags stay as-is; self-reference or more than 25 replacements of one tag
//! is an error, and so is a value growing past `MAX_VALUE_BYTES` or the read's work budget
//! running out. Receives an ordered option list, an ignore set, a fallback and the budget; emits
//! the list with tags resolved.

use std::collections::{HashMap, HashSet};

use crate::budget::{Budget, OverBudget, MAX_VALUE_BYTES, VALUE_COST};

/// Python `MAX_TAG_REPLACE_COUNT`.
const MAX_TAG_REPLACE_COUNT: usize = 25;

/// Why substitution stopped; `tag` is the option whose value was being substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TagError {
    /// A tag definition that refers to itself (or replaces one tag too often).
    Loop {
        tag: String,
        found: String,
        value: String,
    },
    /// The value would grow past `MAX_VALUE_BYTES` when `<found>` is replaced.
    TooLarge { tag: String, found: String },
    /// The read's work budget ran out.
    OverBudget { tag: String },
}

/// Find the next `<name>` at or after byte `from`; returns (start, end, name).
pub(crate) fn find_tag(value: &str, from: usize) -> Option<(usize, usize, &str)> {
    let bytes = value.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        if bytes[i] == b'<' {
            let mut j = i + 1;
            while j < bytes.len() && !matches!(bytes[j], b' ' | b'<' | b'>') {
                j += 1;
            }
            if j < bytes.len() && bytes[j] == b'>' && j > i + 1 {
                return Some((i, j + 1, &value[i + 1..j]));
            }
            // `<` followed by ` ` / `<` / end: try from the next char.
        }
        i += 1;
    }
    None
}

/// `find_tag`, charged to `budget` for the bytes it scans.
fn find_charged(
    value: &str,
    from: usize,
    budget: &Budget,
) -> Result<Option<(usize, usize, String)>, OverBudget> {
    let found = find_tag(value, from).map(|(s, e, n)| (s, e, n.to_string()));
    // `from` may lie past the end: replacing every occurrence of a tag can shorten the text
    // before the position the scan resumes at.
    let scanned = found
        .as_ref()
        .map_or(value.len(), |f| f.1)
        .saturating_sub(from);
    budget.charge(scanned + 1)?;
    Ok(found)
}

/// Substitute tags in `tags` (key, value) in place. `is_ignored(name)` tags are neither
/// processed nor replaced. `fallback(name)` supplies values for tags that are not keys (fail2ban's
/// `getCombOption`); its errors propagate. Every scan, copy and replacement is charged to
/// `budget`; a value that would pass `MAX_VALUE_BYTES` stops the substitution.
pub(crate) fn substitute_recursive<E>(
    tags: &mut [(String, String)],
    conditional: &str,
    is_ignored: &dyn Fn(&str) -> bool,
    fallback: &mut dyn FnMut(&str) -> Result<Option<String>, E>,
    budget: &Budget,
) -> Result<Result<(), TagError>, E> {
    let index: HashMap<String, usize> = tags
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.clone(), i))
        .collect();
    let mut done: HashSet<usize> = HashSet::new();
    let mut rep_counts: HashMap<usize, HashMap<String, usize>> = HashMap::new();
    loop {
        let mut rep_flag = false;
        for ti in 0..tags.len() {
            if done.contains(&ti) || is_ignored(&tags[ti].0) {
                continue;
            }
            let tag = tags[ti].0.clone();
            let over = |tag: &str| TagError::OverBudget {
                tag: tag.to_string(),
            };
            // The copies below, and the final `contains('<')`.
            if budget.charge(2 * tags[ti].1.len() + VALUE_COST).is_err() {
                return Ok(Err(over(&tag)));
            }
            let orgval = tags[ti].1.clone();
            let mut value = orgval.clone();
            let mut rplc = rep_counts.get(&ti).cloned().unwrap_or_default();
            let Ok(mut m) = find_charged(&value, 0, budget) else {
                return Ok(Err(over(&tag)));
            };
            while let Some((start, end, rtag)) = m {
                let next_from = if is_ignored(&rtag) {
                    end
                } else {
                    if rtag == tag || rplc.get(&rtag).copied().unwrap_or(1) > MAX_TAG_REPLACE_COUNT
                    {
                        return Ok(Err(TagError::Loop {
                            tag,
                            found: rtag,
                            value,
                        }));
                    }
                    let mut repl: Option<String> = None;
                    if !conditional.is_empty() {
                        repl = index
                            .get(&format!("{rtag}?{conditional}"))
                            .map(|&i| tags[i].1.clone());
                    }
                    if repl.is_none() {
                        repl = index.get(&rtag).map(|&i| tags[i].1.clone());
                        if repl.is_none() {
                            repl = fallback(&rtag)?;
                        }
                    }
                    match repl {
                        None => end,
                        Some(repl) => {
                            let pat = format!("<{rtag}>");
                            // Size the result before building it: a tag used n times grows the
                            // value by n copies of its replacement.
                            let n = value.matches(pat.as_str()).count();
                            let len = value.len() - n * pat.len() + n.saturating_mul(repl.len());
                            if len > MAX_VALUE_BYTES {
                                return Ok(Err(TagError::TooLarge { tag, found: rtag }));
                            }
                            if budget.charge(value.len() + len + repl.len()).is_err() {
                                return Ok(Err(over(&tag)));
                            }
                            value = value.replace(&pat, &repl);
                            *rplc.entry(rtag).or_insert(0) += 1;
                            start
                        }
                    }
                };
                let Ok(next) = find_charged(&value, next_from, budget) else {
                    return Ok(Err(over(&tag)));
                };
                m = next;
            }
            if orgval != value && find_tag(&value, 0).is_some() {
                rep_counts.insert(ti, rplc);
                rep_flag = true;
            }
            if !value.contains('<') {
                done.insert(ti);
            }
            tags[ti].1 = value;
        }
        if !rep_flag {
            break;
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        pairs: &[(&str, &str)],
        ignore: &[&str],
        cond: &str,
    ) -> Result<Vec<(String, String)>, TagError> {
        let mut t: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ign: HashSet<String> = ignore.iter().map(|s| s.to_string()).collect();
        let mut fb = |n: &str| -> Result<Option<String>, ()> {
            Ok(match n {
                "lt_file/__prefix_line" => Some("FILEPREFIX".into()),
                "lt_journal/__prefix_line" => Some("JOURNALPREFIX".into()),
                _ => None,
            })
        };
        substitute_recursive(&mut t, cond, &|n| ign.contains(n), &mut fb, &Budget::new())
            .unwrap()?;
        Ok(t)
    }

    #[test]
    fn nested_and_unknown() {
        let t = run(
            &[
                ("failregex", "^<__prefix_line>x <HOST> <b>"),
                ("__prefix_line", "<lt_<logtype>/__prefix_line>"),
                ("logtype", "journal"),
                ("b", "<a>_3"),
                ("a", "3"),
            ],
            &[],
            "",
        )
        .unwrap();
        assert_eq!(t[0].1, "^JOURNALPREFIXx <HOST> 3_3");
        assert_eq!(t[3].1, "3_3");
    }

    #[test]
    fn self_reference_errors() {
        assert!(run(&[("a", "x<a>")], &[], "").is_err());
        assert!(run(&[("a", "<b>"), ("b", "<a>")], &[], "").is_err());
    }

    #[test]
    fn ignored_and_conditional() {
        let t = run(
            &[
                ("ban", "<ipt> -I <ip> <bantime>"),
                ("ipt", "iptables"),
                ("ipt?family=inet6", "ip6tables"),
                ("bantime", "5"),
            ],
            &["bantime"],
            "family=inet6",
        )
        .unwrap();
        assert_eq!(t[0].1, "ip6tables -I <ip> <bantime>");
        let t = run(
            &[
                ("ban", "<ipt> x"),
                ("ipt", "iptables"),
                ("ipt?family=inet6", "ip6tables"),
            ],
            &["ipt"],
            "",
        )
        .unwrap();
        assert_eq!(t[0].1, "<ipt> x");
    }

    #[test]
    fn a_replacement_that_shortens_the_text_before_the_scan_point_is_fine() {
        // `<k>` at 2 is replaced everywhere, then `<o1>` at 4 everywhere by "", leaving
        // nothing; the scan resumes at 4, past the end (found by the property tests).
        let t = run(&[("o2", "<o<k>><o<k>>"), ("k", "1"), ("o1", "")], &[], "").unwrap();
        assert_eq!(t[0].1, "");
    }

    #[test]
    fn find_tag_rules() {
        assert_eq!(find_tag("a < b <c>", 0).map(|t| t.2), Some("c"));
        assert_eq!(find_tag("<a<b>>", 0).map(|t| t.2), Some("b"));
        assert!(find_tag("<>", 0).is_none());
    }
}
