//! The `name[k=v, k2="a,b"][k3='x']` syntax of `filter =`, `action =` and `banaction` values
//! (compat §1.8, fail2ban's `extractOptions` and `splitWithOptions`). Owns the scanner; receives
//! one value; emits (name, args) or the list of `name[...]` items of an `action =` value.

use crate::error::{excerpt, ConfigError, Origin};
use crate::Options;

/// Parse `NAME[opts][more]` into the name and its options (values unquoted and stripped).
pub fn parse_name_args(text: &str) -> Result<(String, Options), ConfigError> {
    parse_name_args_at(text, &Origin::new("<value>", 0))
}

pub(crate) fn parse_name_args_at(
    text: &str,
    origin: &Origin,
) -> Result<(String, Options), ConfigError> {
    let err =
        |msg: String| ConfigError::value(origin, msg, "`name` or `name[key=value, key2=\"v,w\"]`");
    // OPTION_CRE: name = everything before the first `[`; args = up to the last `]`, then
    // only whitespace may follow.
    let (name, argstr) = match text.find('[') {
        None => (text, None),
        Some(b) => {
            let tail = text[b..].trim_end();
            if !tail.ends_with(']') {
                return Err(err(format!(
                    "unexpected option syntax in {}: no closing `]`",
                    excerpt(text)
                )));
            }
            (&text[..b], Some(&tail[1..tail.len() - 1]))
        }
    };
    if name.is_empty() {
        return Err(err(format!(
            "unexpected option syntax in {}: no name",
            excerpt(text)
        )));
    }
    let mut opts = Options::new();
    if let Some(s) = argstr {
        extract(s, &mut opts).map_err(err)?;
    }
    Ok((name.trim().to_string(), opts))
}

fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == '.'
}

/// OPTION_EXTRACT_CRE, as a scanner.
fn extract(s: &str, opts: &mut Options) -> Result<(), String> {
    let mut pos = 0usize;
    loop {
        let rest = &s[pos..];
        let trimmed = rest.trim_start();
        // `,?\s*$`
        if trimmed.is_empty() || (trimmed.starts_with(',') && trimmed[1..].trim().is_empty()) {
            return Ok(());
        }
        let kstart = pos + (rest.len() - trimmed.len());
        let klen: usize = trimmed
            .chars()
            .take_while(|&c| is_key_char(c))
            .map(char::len_utf8)
            .sum();
        if klen == 0 || !trimmed[klen..].starts_with('=') {
            let show: String = s[pos..].chars().take(25).collect();
            return Err(format!("expected option, wrong syntax at {pos}: {show}"));
        }
        let key = &s[kstart..kstart + klen];
        let mut p = kstart + klen + 1;
        let v = &s[p..];
        let value = if let Some(q) = v.chars().next().filter(|&c| c == '"' || c == '\'') {
            match v[1..].find(q) {
                Some(e) => {
                    p += e + 2;
                    &v[1..e + 1]
                }
                None => {
                    // An unterminated quote is read as a bare value (the regex falls back).
                    let e = v.find([',', ']']).unwrap_or(v.len());
                    p += e;
                    &v[..e]
                }
            }
        } else {
            let e = v.find([',', ']']).unwrap_or(v.len());
            p += e;
            &v[..e]
        };
        opts.insert(key.trim().to_string(), value.trim().to_string());
        // Separator: `,` | `]\s*[` | end.
        let after = &s[p..];
        if after.is_empty() {
            return Ok(());
        }
        if let Some(r) = after.strip_prefix(',') {
            pos = s.len() - r.len();
            continue;
        }
        if let Some(r) = after.strip_prefix(']') {
            let r2 = r.trim_start();
            if let Some(r3) = r2.strip_prefix('[') {
                pos = s.len() - r3.len();
                continue;
            }
        }
        let show: String = after.chars().take(25).collect();
        return Err(format!(
            "unexpected syntax at {p} after option {key:?}: {show}"
        ));
    }
}

/// Split an `action =` value into its items: whitespace/newline separated, a `name[...]`
/// group (quotes may hold spaces, commas, `]` and newlines) staying together.
pub(crate) fn split_with_options(text: &str) -> Vec<String> {
    Splitter::new(text).split()
}

/// The scanner of `split_with_options`, in work linear in the text: every item whose name is
/// followed by `[` scans its groups, and groups that fail to close used to be scanned again
/// from every later item inside them (`a [k=v a [k=v …` was quadratic). Each position's
/// outcome is remembered, and value ends are looked up, not scanned for.
struct Splitter<'t> {
    text: &'t str,
    chars: Vec<(usize, char)>,
    /// For each char index: the index of the next `,` or `]` at or after it (or `n`).
    next_stop: Vec<u32>,
    /// The same for `"` and for `'`.
    next_dquote: Vec<u32>,
    next_squote: Vec<u32>,
    /// The outcome of the group scan from each position already scanned from.
    memo: std::collections::HashMap<usize, Option<usize>>,
    /// Chars visited and jumps taken (what the tests bound).
    steps: usize,
}

impl<'t> Splitter<'t> {
    fn new(text: &'t str) -> Self {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let n = chars.len();
        let next_of = |pred: &dyn Fn(char) -> bool| {
            let mut v = vec![0u32; n + 1];
            let mut next = u32::try_from(n).unwrap_or(u32::MAX);
            v[n] = next;
            for i in (0..n).rev() {
                if pred(chars[i].1) {
                    next = u32::try_from(i).unwrap_or(u32::MAX);
                }
                v[i] = next;
            }
            v
        };
        let next_stop = next_of(&|c| c == ',' || c == ']');
        let next_dquote = next_of(&|c| c == '"');
        let next_squote = next_of(&|c| c == '\'');
        Splitter {
            text,
            chars,
            next_stop,
            next_dquote,
            next_squote,
            memo: Default::default(),
            steps: 0,
        }
    }

    fn at(&mut self, i: usize) -> Option<char> {
        self.steps += 1;
        self.chars.get(i).map(|c| c.1)
    }

    fn skip_ws(&mut self, mut i: usize) -> usize {
        while self.at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        i
    }

    fn split(&mut self) -> Vec<String> {
        let n = self.chars.len();
        let mut out = Vec::new();
        let mut i = 0;
        while i < n {
            if self.at(i).is_some_and(char::is_whitespace) {
                i += 1;
                continue;
            }
            let start = i;
            let mut j = i;
            while j < n && !self.at(j).is_some_and(|c| c.is_whitespace() || c == '[') {
                j += 1;
            }
            let mut end = None;
            if j > start {
                let k = self.skip_ws(j);
                if self.at(k) == Some('[') {
                    end = self.groups(k + 1);
                } else {
                    end = Some(j);
                }
            }
            let end = match end {
                Some(e) => e,
                None => {
                    let mut k = start;
                    while k < n && !self.at(k).is_some_and(char::is_whitespace) {
                        k += 1;
                    }
                    k
                }
            };
            let byte = |i: usize| self.chars.get(i).map_or(self.text.len(), |c| c.0);
            out.push(self.text[byte(start)..byte(end)].to_string());
            i = end.max(start + 1);
        }
        out
    }

    /// Scan `k=v, ...` groups (joined by `][`) from just past a `[`: the index after the final
    /// `]`, or None if malformed. The outcome from a position (after its whitespace) depends
    /// on the position only, so it is remembered for every position passed through.
    fn groups(&mut self, k: usize) -> Option<usize> {
        let mut passed = Vec::new();
        let result = self.groups_from(k, &mut passed);
        for p in passed {
            self.memo.insert(p, result);
        }
        result
    }

    fn groups_from(&mut self, mut k: usize, passed: &mut Vec<usize>) -> Option<usize> {
        loop {
            k = self.skip_ws(k);
            if let Some(&known) = self.memo.get(&k) {
                return known;
            }
            passed.push(k);
            match self.at(k)? {
                ']' => {
                    let after = self.skip_ws(k + 1);
                    if self.at(after) == Some('[') {
                        k = after + 1;
                        continue;
                    }
                    return Some(k + 1);
                }
                ',' => {
                    k += 1;
                    continue;
                }
                _ => {}
            }
            // key
            let ks = k;
            while self.at(k).is_some_and(is_key_char) {
                k += 1;
            }
            if k == ks || self.at(k) != Some('=') {
                return None;
            }
            k += 1;
            self.steps += 1;
            let next = |v: &[u32], i: usize| v.get(i).map(|&x| x as usize);
            match self.at(k) {
                Some('"') => {
                    k = next(&self.next_dquote, k + 1).filter(|&q| q < self.chars.len())? + 1
                }
                Some('\'') => {
                    k = next(&self.next_squote, k + 1).filter(|&q| q < self.chars.len())? + 1
                }
                _ => k = next(&self.next_stop, k).filter(|&q| q < self.chars.len())?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The scanner as it was before positions were remembered (quadratic on some inputs):
    /// the reference the linear one must agree with, and the chars it visited.
    fn plain_split(text: &str) -> (Vec<String>, usize) {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let n = chars.len();
        let steps = std::cell::Cell::new(0usize);
        let at = |i: usize| {
            steps.set(steps.get() + 1);
            chars.get(i).map(|c| c.1)
        };
        let byte = |i: usize| chars.get(i).map_or(text.len(), |c| c.0);
        let scan_groups = |mut k: usize| -> Option<usize> {
            let skip_ws = |mut i: usize| {
                while at(i).is_some_and(char::is_whitespace) {
                    i += 1;
                }
                i
            };
            k += 1;
            loop {
                k = skip_ws(k);
                match at(k)? {
                    ']' => {
                        let after = skip_ws(k + 1);
                        if at(after) == Some('[') {
                            k = after + 1;
                            continue;
                        }
                        return Some(k + 1);
                    }
                    ',' => {
                        k += 1;
                        continue;
                    }
                    _ => {}
                }
                let ks = k;
                while at(k).is_some_and(is_key_char) {
                    k += 1;
                }
                if k == ks || at(k) != Some('=') {
                    return None;
                }
                k += 1;
                match at(k) {
                    Some(q @ ('"' | '\'')) => {
                        k += 1;
                        while at(k)? != q {
                            k += 1;
                        }
                        k += 1;
                    }
                    _ => {
                        while !matches!(at(k)?, ',' | ']') {
                            k += 1;
                        }
                    }
                }
            }
        };
        let mut out = Vec::new();
        let mut i = 0;
        while i < n {
            if at(i).is_some_and(char::is_whitespace) {
                i += 1;
                continue;
            }
            let start = i;
            let mut j = i;
            while j < n && !at(j).is_some_and(|c| c.is_whitespace() || c == '[') {
                j += 1;
            }
            let mut end = None;
            if j > start {
                let mut k = j;
                while k < n && at(k).is_some_and(char::is_whitespace) {
                    k += 1;
                }
                end = if at(k) == Some('[') {
                    scan_groups(k)
                } else {
                    Some(j)
                };
            }
            let end = end.unwrap_or_else(|| {
                let mut k = start;
                while k < n && !at(k).is_some_and(char::is_whitespace) {
                    k += 1;
                }
                k
            });
            out.push(text[byte(start)..byte(end)].to_string());
            i = end.max(start + 1);
        }
        (out, steps.get())
    }

    /// `split_with_options` and the steps it took.
    fn split_counted(text: &str) -> (Vec<String>, usize) {
        let mut s = Splitter::new(text);
        let items = s.split();
        (items, s.steps)
    }

    #[test]
    fn unclosed_groups_split_in_linear_steps() {
        // Unclosed groups; the first and fourth made the plain scanner rescan the rest of the
        // value from every item.
        let shapes = [
            "a [k=v ",
            "a [k=v, ",
            "x [k=\"v y [m=1, ",
            "a [k=v x [k=v y [m=1, m=v ",
            "a [b=1] [ ",
            "a [k='v, ",
        ];
        for shape in shapes {
            for reps in [10, 100, 1000] {
                let text = shape.repeat(reps);
                let (items, steps) = split_counted(&text);
                let (plain, plain_steps) = plain_split(&text);
                assert_eq!(items, plain, "{shape:?} × {reps}");
                let n = text.chars().count();
                assert!(
                    steps <= 8 * n + 8,
                    "{shape:?} × {reps}: {steps} steps for {n} chars"
                );
                if reps == 1000 && [shapes[0], shapes[3]].contains(&shape) {
                    // The bound tells the two apart: the plain scanner is far past it.
                    assert!(plain_steps > 50 * n, "{shape:?}: {plain_steps}");
                }
            }
        }
        // An action value as long as a value may be.
        let text = "a [k=v ".repeat(crate::budget::MAX_VALUE_BYTES / 7);
        let (_, steps) = split_counted(&text);
        assert!(steps <= 8 * text.len());
    }

    proptest! {
        #[test]
        fn split_agrees_with_the_plain_scanner_in_linear_steps(
            text in "[ab\\[\\],=\"' \n.-]{0,80}"
        ) {
            let (items, steps) = split_counted(&text);
            prop_assert_eq!(&items, &plain_split(&text).0);
            prop_assert!(steps <= 8 * text.chars().count() + 8);
        }

        #[test]
        fn name_args_never_panic(text in "\\PC{0,60}|[a\\[\\],=\"' ]{0,60}") {
            let _ = parse_name_args(&text);
        }
    }

    #[test]
    fn name_only_and_args() {
        let (n, o) = parse_name_args("sshd").unwrap();
        assert_eq!(n, "sshd");
        assert!(o.is_empty());
        let (n, o) =
            parse_name_args("iptables[port=\"80,443\", name=web , protocol=tcp][x='a]b']").unwrap();
        assert_eq!(n, "iptables");
        assert_eq!(o["port"], "80,443");
        assert_eq!(o["name"], "web");
        assert_eq!(o["x"], "a]b");
        // keys/values stripped, keys with dots and dashes
        let (_, o) = parse_name_args("a[ b.c-d=  v ,]").unwrap();
        assert_eq!(o["b.c-d"], "v");
        assert_eq!(o.len(), 1);
        // like fail2ban, no space is allowed between a key and its `=`
        assert!(parse_name_args("a[b = 1]").is_err());
    }

    #[test]
    fn quoted_newlines_and_empty_values() {
        let (_, o) = parse_name_args("mail[dest=\"a@b\",\n  sender=\"x\ny\", e=]").unwrap();
        assert_eq!(o["sender"], "x\ny");
        assert_eq!(o["e"], "");
    }

    #[test]
    fn syntax_errors() {
        assert!(parse_name_args("a[b]").is_err());
        assert!(parse_name_args("a[b=\"x\" y]").is_err());
        assert!(parse_name_args("a[b=1").is_err());
        assert!(parse_name_args("[b=1]").is_err());
    }

    #[test]
    fn split_actions() {
        let v = "iptables-multiport[port=\"ssh\", protocol=\"tcp\", chain=\"<known/chain>\"]\n  sendmail-whois[name=sshd, dest=\"a b@c\",\n     sender=x]  other\n\n";
        let items = split_with_options(v);
        assert_eq!(items.len(), 3, "{items:?}");
        assert!(items[1].starts_with("sendmail-whois[") && items[1].ends_with("sender=x]"));
        assert_eq!(items[2], "other");
        let items = split_with_options("a [x=1][y=2] b");
        assert_eq!(items, ["a [x=1][y=2]", "b"]);
    }
}
