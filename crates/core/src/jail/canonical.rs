//! Canonical address text: the only text from outside that may become a ban key, and the
//! only names that may be handed to a resolver.
//!
//! Owns the definitions; receives text (a captured host or failure id, a client's argument, a
//! config value); emits a typed address, a prefix length, or "no". Addresses leave this
//! program only as [`IpAddr`]/[`super::IpNet`] printed by Rust, never as the text that came in,
//! so whatever interprets them next (iptables, `ip`, a shell script, the resolver) cannot read
//! them differently than we did — text like `001.002.003.013` (inet_aton: octal, 1.2.3.11),
//! `6.6` (inet_aton: 6.0.0.6) or `١.2.3.4` (Python's `\d` takes Arabic-Indic digits) is
//! refused here, not reinterpreted.
//!
//! Canonical text is:
//!
//! - **IPv4**: exactly four decimal octets `0`–`255` separated by `.`, ASCII digits only, no
//!   leading zeros (`0` alone is fine), no sign, no spaces: `192.0.2.7`, `0.0.0.0`. Not
//!   `1.2.3.256`, `001.002.003.013`, `1.2.3`, `0x7f.1`, `١.2.3.4`.
//! - **IPv6**: the text forms of RFC 4291 §2.2: eight groups of 1–4 hex digits (either
//!   case), or fewer with one `::` standing for one or more zero groups, optionally ending in
//!   a canonical dotted IPv4 address in place of the last two groups (`::ffff:192.0.2.7`,
//!   `64:ff9b::192.0.2.7`). No zone id (`fe80::1%eth0`), no five-digit groups, no second `::`.
//!   Leading zeros inside a hex group are allowed (RFC 4291 allows them and no reader gives
//!   them another meaning).
//! - either, optionally inside one pair of brackets (`[2001:db8::1]`, as fail2ban's `<HOST>`
//!   accepts and its `IPAddr` strips), and nothing else around it.
//!
//! An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, either spelling of its tail) is the IPv4
//! address `a.b.c.d`, as fail2ban reads it.
//!
//! IPv4 is read by a small byte loop here (it runs once per failure on `banhammer regex`'s
//! output path, where the standard parser cost several times more); IPv6 by Rust's own
//! [`Ipv6Addr`] parser, which implements exactly the grammar above (it refuses leading zeros
//! in a dotted tail and non-ASCII digits). The tests pin both down: the loop agrees with the
//! standard [`Ipv4Addr`] parser on any input, and a change in the standard library cannot
//! loosen what we accept unnoticed.
//!
//! A **prefix length** (`/24`) is canonical when it is ASCII decimal without leading zeros
//! (`0` alone is fine); whether it fits the family is the network's business.
//!
//! A **host name** may be resolved only when it is a DNS host name in the strict sense of
//! RFC 1123 §2.1 and RFC 3696 §2: labels of 1–63 ASCII letters, digits and hyphens, not
//! starting or ending with a hyphen, at most 253 characters in all, no trailing dot, and a
//! last label that is not all digits — nor a hex number (`0x1f`), which the C library's
//! `inet_aton` (tried by `getaddrinfo` before any lookup) would read as an address. So
//! `6.6`, `1.2.3.0x4`, `0x7f000001` and `001.002.003.013` never reach a resolver.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::addr::normalize_ip;

/// The longest canonical address text: an IPv6 address with an IPv4 tail
/// (`ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`, 45 characters) in brackets. Longer
/// text is refused before any parsing.
pub const MAX_ADDRESS_TEXT: usize = 47;

/// The longest host name the resolver is given (RFC 1123 §2.1, RFC 3696 §2).
pub const MAX_HOST_NAME: usize = 253;

/// A canonical address (see the module doc), IPv4-mapped IPv6 folded to IPv4; `None` for
/// anything else.
pub fn parse_canonical_ip(text: &str) -> Option<IpAddr> {
    parse_canonical_unmapped(text).map(normalize_ip)
}

/// [`parse_canonical_ip`] without the IPv4-mapped folding (a network's prefix length
/// decides that: `::ffff:192.0.2.0/120` is the IPv4 network `192.0.2.0/24`).
pub(super) fn parse_canonical_unmapped(text: &str) -> Option<IpAddr> {
    if text.len() > MAX_ADDRESS_TEXT {
        return None;
    }
    let inner = match text.strip_prefix('[') {
        Some(rest) => rest.strip_suffix(']')?,
        None => text,
    };
    if let Some(v4) = parse_canonical_ipv4(inner.as_bytes()) {
        return Some(IpAddr::V4(v4));
    }
    // The standard parser is the canonical grammar (pinned by this module's tests).
    if inner.contains(':') {
        inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        None
    }
}

/// Four ASCII decimal octets 0–255 without leading zeros, separated by dots.
fn parse_canonical_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    // "0.0.0.0" to "255.255.255.255"
    if !(7..=15).contains(&text.len()) {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut parts = text.split(|&b| b == b'.');
    for o in &mut octets {
        *o = canonical_octet(parts.next()?)?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

/// `0`–`255` in ASCII decimal without a leading zero.
fn canonical_octet(p: &[u8]) -> Option<u8> {
    let d = |c: u8| c.is_ascii_digit().then(|| c - b'0');
    match *p {
        [a] => d(a),
        [a, b] if a != b'0' => Some(d(a)? * 10 + d(b)?),
        [a, b, c] if a != b'0' => {
            u8::try_from(u16::from(d(a)?) * 100 + u16::from(d(b)?) * 10 + u16::from(d(c)?)).ok()
        }
        _ => None,
    }
}

/// A canonical prefix length (ASCII decimal, no leading zeros, at most 128); the caller
/// checks it against the family.
pub fn parse_prefix_len(text: &str) -> Option<u8> {
    let b = text.as_bytes();
    let canonical = !b.is_empty()
        && b.len() <= 3
        && b.iter().all(u8::is_ascii_digit)
        && (b[0] != b'0' || b.len() == 1);
    if !canonical {
        return None;
    }
    text.parse::<u8>().ok().filter(|&p| p <= 128)
}

/// Whether `name` may be given to a resolver: a strict DNS host name whose last label
/// cannot be read as a number (see the module doc).
pub fn is_host_name(name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_HOST_NAME {
        return false;
    }
    let mut last = "";
    for label in name.split('.') {
        let b = label.as_bytes();
        let ldh = !b.is_empty()
            && b.len() <= 63
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-';
        if !ldh {
            return false;
        }
        last = label;
    }
    !is_numeric_label(last)
}

/// All digits, or a C hex number (`0x`/`0X` then hex digits): what `inet_aton` reads as a
/// number.
fn is_numeric_label(label: &str) -> bool {
    let b = label.as_bytes();
    if b.iter().all(u8::is_ascii_digit) {
        return true;
    }
    match b {
        [b'0', b'x' | b'X', rest @ ..] => rest.iter().all(u8::is_ascii_hexdigit),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn canonical_ipv4_only() {
        for good in [
            "1.2.3.4",
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.1",
            "[192.0.2.7]",
        ] {
            assert!(parse_canonical_ip(good).is_some(), "{good:?}");
        }
        for bad in [
            "1.2.3.256",
            "001.002.003.013",
            "01.2.3.4",
            "1.2.3.04",
            "00.0.0.0",
            "\u{661}.2.3.4",
            "1.2.3.\u{664}",
            "\u{ff11}.2.3.4",
            "6.6",
            "1.2.3",
            "1.2.3.4.5",
            "0x7f.0.0.1",
            "0x7f000001",
            "2130706433",
            "+1.2.3.4",
            " 1.2.3.4",
            "1.2.3.4 ",
            "1.2.3.4\n",
            "1.2.3.4/32",
            "[1.2.3.4",
            "1.2.3.4]",
            "[[1.2.3.4]]",
            "",
            "[]",
        ] {
            assert_eq!(parse_canonical_ip(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn canonical_ipv6_rfc4291_forms() {
        let v6 = |s: &str| parse_canonical_ip(s).map(|ip| ip.to_string());
        for (text, want) in [
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
            ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
            ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
            ("2001:DB8::1", "2001:db8::1"),
            ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("64:ff9b::192.0.2.7", "64:ff9b::c000:207"),
            ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
            // IPv4-mapped, either tail, folds to IPv4
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("::ffff:c000:207", "192.0.2.7"),
            ("[::ffff:192.0.2.7]", "192.0.2.7"),
        ] {
            assert_eq!(v6(text).as_deref(), Some(want), "{text:?}");
        }
        for bad in [
            ":::",
            "1::2::3",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7:8::",
            "::1:2:3:4:5:6:7:8",
            "12345::",
            "00000::1",
            ":1::2",
            "1::2:",
            "fe80::1%eth0",
            "fe80::1%1",
            "::ffff:1.2.3",
            "::ffff:01.2.3.4",
            "::ffff:1.2.3.256",
            "::ffff:1.2.3.4.5",
            "1.2.3.4::",
            "1:2:3:4:5:6:7:1.2.3.4",
            "::\u{661}",
            "::g",
            "2001:db8::1/64",
        ] {
            assert_eq!(v6(bad), None, "{bad:?}");
        }
        assert_eq!(parse_canonical_ip(&"1:".repeat(40)), None);
    }

    proptest::proptest! {
        /// The byte loop reads IPv4 exactly as the standard parser does (which refuses
        /// leading zeros, signs, spaces and non-ASCII digits).
        #[test]
        fn ipv4_loop_agrees_with_the_standard_parser(
            text in proptest::prop_oneof![
                "[0-9.]{0,20}",
                "[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}",
                "[0-9.x+ \u{660}-\u{669}:]{0,20}",
                proptest::prelude::any::<String>(),
            ],
        ) {
            proptest::prop_assert_eq!(
                parse_canonical_ipv4(text.as_bytes()),
                text.parse::<Ipv4Addr>().ok(),
                "{:?}", text
            );
        }
    }

    #[test]
    fn prefix_lengths() {
        assert_eq!(parse_prefix_len("0"), Some(0));
        assert_eq!(parse_prefix_len("24"), Some(24));
        assert_eq!(parse_prefix_len("128"), Some(128));
        for bad in [
            "",
            "024",
            "00",
            "+24",
            "-1",
            "129",
            "1000",
            " 24",
            "\u{662}\u{664}",
            "2a",
        ] {
            assert_eq!(parse_prefix_len(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn host_names_that_may_be_resolved() {
        for good in [
            "localhost",
            "mail.example.com",
            "a-b.example",
            "xn--bcher-kva.example",
            "1.2.3.example",
            "0x7f.example",
            "host1",
            "123abc",
            "EXAMPLE.COM",
        ] {
            assert!(is_host_name(good), "{good:?}");
        }
        let long_label = "a".repeat(64);
        let long_name = ["a"; 128].join(".");
        for bad in [
            "",
            "6.6",
            "1.2.3.4",
            "001.002.003.013",
            "2130706433",
            "0x7f000001",
            "0X7F.1",
            "1.2.3.0x4",
            "127.1",
            "a.0x",
            "example.com.",
            ".example.com",
            "a..b",
            "-a.example",
            "a-.example",
            "under_score.example",
            "b\u{fc}cher.example",
            "\u{661}.example.\u{662}",
            "a b",
            "$(id)",
            "a;b",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(!is_host_name(bad), "{bad:?}");
        }
        // 253 characters is the most a name may have
        assert!(is_host_name(&["a"; 127].join(".")));
        assert!(!is_host_name(&format!("{}a", ["a"; 127].join("."))));
    }
}
