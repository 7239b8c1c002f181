//! Python's `repr()` of the few value shapes fail2ban-regex prints (`-o row`, `<time>`,
//! group values), so our output is byte-for-byte what fail2ban users' scripts parse.

use std::fmt::Write as _;

use banhammer_core::filter::GroupValue;

/// `repr(float)`: shortest round-trip digits, always with a fractional part (`1.0`).
pub fn float(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "nan".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let s = format!("{v}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

/// `repr(str)`: single quotes unless the text holds `'` and no `"`; escapes as Python does.
pub fn string(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            // Python prints other non-printable code points escaped too; these are rare
            // in logs and the common ones (C1 controls) are covered here.
            c if (0x80..0xa0).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `repr()` of a group value: `None`, `'text'`, or a set `{'a', 'b'}`.
pub fn group_value(v: &GroupValue) -> String {
    match v {
        GroupValue::None => "None".into(),
        GroupValue::Str(s) => string(s),
        GroupValue::Set(items) => {
            if items.is_empty() {
                return "set()".into();
            }
            let parts: Vec<String> = items.iter().map(|s| string(s)).collect();
            format!("{{{}}}", parts.join(", "))
        }
        GroupValue::Tuple(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|v| v.as_deref().map_or_else(|| "None".to_string(), string))
                .collect();
            if parts.len() == 1 {
                format!("({},)", parts[0])
            } else {
                format!("({})", parts.join(", "))
            }
        }
    }
}

/// `str()` of a group value (what `-o NAME` prints).
pub fn group_value_str(v: &GroupValue) -> String {
    match v {
        GroupValue::None => "None".into(),
        GroupValue::Str(s) => s.clone(),
        GroupValue::Set(_) | GroupValue::Tuple(_) => group_value(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_python() {
        assert_eq!(float(1124013600.0), "1124013600.0");
        assert_eq!(float(1124013600.5), "1124013600.5");
        assert_eq!(float(1124013600.123456), "1124013600.123456");
    }

    #[test]
    fn strings_like_python() {
        assert_eq!(string("bob"), "'bob'");
        assert_eq!(string("it's"), "\"it's\"");
        assert_eq!(string("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(string("a\nb\\"), "'a\\nb\\\\'");
        assert_eq!(string("\u{1}"), "'\\x01'");
    }

    #[test]
    fn sets_like_python() {
        let set = GroupValue::Set(["b".to_string(), "a".to_string()].into_iter().collect());
        assert_eq!(group_value(&set), "{'a', 'b'}");
        assert_eq!(group_value(&GroupValue::None), "None");
    }
}
