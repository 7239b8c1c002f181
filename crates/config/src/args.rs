//! The `name[k=v, k2="a,b"][k3='x']` syntax of `filter =`, `action =` and `banaction` values
//! (compat §1.8, fail2ban's `extractOptions` and `splitWithOptions`). Owns the scanner; receives
//! one value; emits (name, args) or the list of `name[...]` items of an `action =` value.

use crate::error::{ConfigError, Origin};
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
                    "unexpected option syntax in {text:?}: no closing `]`"
                )));
            }
            (&text[..b], Some(&tail[1..tail.len() - 1]))
        }
    };
    if name.is_empty() {
        return Err(err(format!(
            "unexpected option syntax in {text:?}: no name"
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
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let n = chars.len();
    let at = |i: usize| chars.get(i).map(|c| c.1);
    let byte = |i: usize| chars.get(i).map_or(text.len(), |c| c.0);
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
            if at(k) == Some('[') {
                end = scan_groups(&chars, k);
            } else {
                end = Some(j);
            }
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
    out
}

/// Scan `[k=v, ...]` groups (joined by `][`) starting at the `[` at `k`; the index after the
/// final `]`, or None if malformed.
fn scan_groups(chars: &[(usize, char)], mut k: usize) -> Option<usize> {
    let at = |i: usize| chars.get(i).map(|c| c.1);
    let skip_ws = |mut i: usize| {
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        i
    };
    k += 1; // past '['
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
        // key
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
