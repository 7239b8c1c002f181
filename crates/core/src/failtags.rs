//! fail2ban's failregex tags (`<HOST>`, `<F-USER>…</F-USER>`, `<SKIPLINES>`…) expanded to regex text.
//!
//! Receives a regex as written in a filter (fail2ban syntax, tags unexpanded) and emits Python
//! regex text exactly as fail2ban's `Regex._resolveHostTag` builds it (`compat.md` §2.2), ready
//! for [`crate::pyregex`]. The IPv6 part keeps fail2ban's lookbehind `(?<=:):` so that printed
//! regexes match `fail2ban-regex`; [`crate::pyregex::translate`] replaces that exact construct by
//! its fast-engine equivalent.

use std::collections::HashSet;

/// fail2ban `IPAddr.IP_4_RE`.
pub const IP4_RE: &str = r"(?:\d{1,3}\.){3}\d{1,3}";
/// fail2ban `IPAddr.IP_6_RE` (with its lookbehind).
pub const IP6_RE: &str = r"(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)";

/// `<IP4>`: an IPv4 address, optionally IPv4-mapped (`::ffff:`), in group `ip4`.
pub fn ip4() -> String {
    format!(r"(?:::f{{4,6}}:)?(?P<ip4>{IP4_RE})")
}

/// `<IP6>`: group `ip6`.
pub fn ip6() -> String {
    format!(r"(?P<ip6>{IP6_RE})")
}

/// `<DNS>`: group `dns`.
pub const DNS_RE: &str = r"(?P<dns>[\w\-.^_]*\w)";

/// `<CIDR>`: group `cidr`.
pub const CIDR_RE: &str = r"(?P<cidr>\d+)";

/// `<ADDR>`: IPv4 or IPv6, optionally in brackets.
pub fn addr() -> String {
    format!(r"\[?(?:{}|{})\]?", ip4(), ip6())
}

/// `<HOST>`: `<ADDR>` or, unless DNS is off, `<DNS>`.
pub fn host(dns: bool) -> String {
    if dns {
        format!("(?:{}|{})", addr(), DNS_RE)
    } else {
        addr()
    }
}

/// `<SUBNET>`: an address with an optional `/cidr`.
pub fn subnet() -> String {
    format!(r"\[?(?:{}|{})(?:/{})?\]?", ip4(), ip6(), CIDR_RE)
}

/// Group name for a custom `F-NAME` tag: lower-cased, `id`→`fid`, `port`→`fport`.
pub fn map_tag_name(tag: &str) -> String {
    let l = tag.to_lowercase();
    match l.as_str() {
        "id" => "fid".to_string(),
        "port" => "fport".to_string(),
        _ => l,
    }
}

/// Expand every tag of `regex`. `dns` = whether `<HOST>` has the DNS alternative (false for
/// `usedns = no`). Unknown tags and closing tags without an opening one stay as written.
pub fn expand(regex: &str, dns: bool) -> String {
    let mut out = String::with_capacity(regex.len() + 64);
    let mut open: HashSet<String> = HashSet::new();
    let mut skiplines = 0usize;
    let mut rest = regex;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let cand = &rest[lt..];
        match scan_tag(cand) {
            Some(len) => {
                let tag = &cand[..len];
                out.push_str(&substitute(tag, dns, &mut open, &mut skiplines));
                rest = &cand[len..];
            }
            None => {
                out.push('<');
                rest = &cand[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Length of a tag `</?[\w\-]+/?>` at the start of `s` (which starts with `<`).
fn scan_tag(s: &str) -> Option<usize> {
    let mut it = s.char_indices().skip(1).peekable();
    if let Some(&(_, '/')) = it.peek() {
        it.next();
    }
    let mut word = 0;
    while let Some(&(_, c)) = it.peek() {
        if c.is_alphanumeric() || c == '_' || c == '-' {
            word += 1;
            it.next();
        } else {
            break;
        }
    }
    if word == 0 {
        return None;
    }
    if let Some(&(_, '/')) = it.peek() {
        it.next();
    }
    match it.next() {
        Some((i, '>')) => Some(i + 1),
        _ => None,
    }
}

fn substitute(tag: &str, dns: bool, open: &mut HashSet<String>, nl: &mut usize) -> String {
    let tn = &tag[1..tag.len() - 1];
    match tn {
        "HOST" => return host(dns),
        "SKIPLINES" => {
            let s = format!(r"\n(?P<skiplines{}>(?:(?:.*\n)*?))", *nl);
            *nl += 1;
            return s;
        }
        "IP4" | "F-IP4/" => return ip4(),
        "IP6" | "F-IP6/" => return ip6(),
        "ADDR" | "F-ADDR/" => return addr(),
        "CIDR" | "F-CIDR/" => return CIDR_RE.to_string(),
        "SUBNET" | "F-SUBNET/" => return subnet(),
        "DNS" | "F-DNS/" => return DNS_RE.to_string(),
        "F-ID/" => return r"(?P<fid>\S+)".to_string(),
        "F-PORT/" => return r"(?P<fport>\w+)".to_string(),
        _ => {}
    }
    // `^(/?)F-([A-Z0-9_\-]+)$`
    let (close, name) = match tn.strip_prefix('/') {
        Some(n) => (true, n),
        None => (false, tn),
    };
    let Some(name) = name.strip_prefix("F-") else {
        return tag.to_string();
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return tag.to_string();
    }
    if close {
        if open.contains(name) {
            ")".to_string()
        } else {
            tag.to_string()
        }
    } else {
        open.insert(name.to_string());
        format!("(?P<{}>", map_tag_name(name))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::pyregex::PyRegex;

    #[test]
    fn host_tags() {
        assert_eq!(
            expand("from <HOST>$", true),
            format!(
                r"from (?:\[?(?:(?:::f{{4,6}}:)?(?P<ip4>{IP4_RE})|(?P<ip6>{IP6_RE}))\]?|(?P<dns>[\w\-.^_]*\w))$"
            )
        );
        assert!(!expand("<HOST>", false).contains("dns"));
        assert!(expand("<HOST>", true).contains("(?P<dns>"));
        assert_eq!(expand("<CIDR>", true), r"(?P<cidr>\d+)");
        assert!(expand("<SUBNET>", true).ends_with(r"(?:/(?P<cidr>\d+))?\]?"));
        assert_eq!(expand("<F-ID/>", true), r"(?P<fid>\S+)");
        assert_eq!(expand("<F-PORT/>", true), r"(?P<fport>\w+)");
        assert_eq!(expand("<F-IP4/>", true), ip4());
        assert_eq!(expand("<ADDR>", true), expand("<F-ADDR/>", true));
    }

    #[test]
    fn custom_groups() {
        assert_eq!(expand("<F-USER>.*</F-USER>", true), "(?P<user>.*)");
        assert_eq!(expand("<F-ID>x</F-ID>", true), "(?P<fid>x)");
        assert_eq!(expand("<F-PORT>x</F-PORT>", true), "(?P<fport>x)");
        assert_eq!(
            expand("<F-ALT_USER1>x</F-ALT_USER1>", true),
            "(?P<alt_user1>x)"
        );
        // closing tag without opening stays
        assert_eq!(expand("a</F-USER>", true), "a</F-USER>");
        // lower-case names are not custom tags
        assert_eq!(expand("<F-user>x</F-user>", true), "<F-user>x</F-user>");
        // not tags at all
        assert_eq!(expand("<a b> <> <-> x<y", true), "<a b> <> <-> x<y");
        assert_eq!(expand("<mytag>", true), "<mytag>");
    }

    #[test]
    fn skiplines_numbered() {
        let e = expand("a<SKIPLINES>b<SKIPLINES>c", true);
        assert_eq!(
            e,
            r"a\n(?P<skiplines0>(?:(?:.*\n)*?))b\n(?P<skiplines1>(?:(?:.*\n)*?))c"
        );
    }

    #[test]
    fn host_on_fast_engine() {
        let re = PyRegex::compile(&expand("^from <HOST> port <F-PORT/>$", true), false).unwrap();
        assert!(!re.is_backtrack(), "{}", re.translated());
        for (line, group, val) in [
            ("from 1.2.3.4 port 22\n", "ip4", "1.2.3.4"),
            ("from ::ffff:1.2.3.4 port 22\n", "ip4", "1.2.3.4"),
            ("from [2001:db8::1] port 22\n", "ip6", "2001:db8::1"),
            ("from ::1 port ssh\n", "ip6", "::1"),
            ("from example.com port 22\n", "dns", "example.com"),
        ] {
            let s = re.captures(line).unwrap();
            let i = re.group_index(group).unwrap();
            let (a, b) = s.get(i).unwrap();
            assert_eq!(&line[a..b], val, "{line}");
        }
    }
}
