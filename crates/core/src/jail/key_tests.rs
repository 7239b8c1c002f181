//! The failure-key rules: canonical text only, networks only from a `cidr` group, names
//! only to the resolver when they are strict host names.

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;
use crate::filter::{Filter, FilterConfig, ProcessOptions};
use crate::jail::canonical::{is_host_name, parse_canonical_ip};

const NOW: i64 = 1124013600;

fn filter(failregex: &[&str], usedns: UseDns) -> Filter {
    Filter::new(&FilterConfig {
        prefregex: None,
        failregex: failregex.iter().map(|s| s.to_string()).collect(),
        ignoreregex: vec![],
        maxlines: 1,
        datepattern: None,
        usedns,
        timezone: jiff::tz::TimeZone::UTC,
        now: NOW,
    })
    .unwrap()
}

/// The targets of every failure `line` gives (every failregex tried).
fn targets(f: &Filter, line: &str) -> Vec<String> {
    let opts = ProcessOptions {
        check_all: true,
        now: NOW as f64,
    };
    let res = f.runner().process_line(line, &opts);
    res.failures
        .iter()
        .map(|fl| match failure_target(fl, f.usedns()) {
            FailureTarget::Key(k) => format!("key {k}"),
            FailureTarget::Resolve(n) => format!("resolve {n}"),
            FailureTarget::NoAddress(why) => format!("none: {why}"),
        })
        .collect()
}

/// The adversarial review's examples, through every tag that captures a host or id and
/// every `usedns`: a failure is found (fail2ban counts it), and it has no address.
#[test]
fn non_canonical_addresses_never_become_keys() {
    let examples = [
        "1.2.3.256",
        "001.002.003.013",
        "\u{661}.2.3.4",
        "6.6",
        "127.1",
        "0x7f.0.0.1",
        "0x7f000001",
        "2130706433",
        "1.2.3.0x4",
        "fe80::1%eth0",
        "1:2:3:4:5:6:7:8:9",
        "::ffff:1.2.3.04",
    ];
    let regexes = [
        "^fail from <HOST> x$",
        "^fail from <ADDR> x$",
        "^fail from <IP4> x$",
        "^fail from <IP6> x$",
        "^fail from <F-ID/> x$",
        "^fail from <SUBNET> x$",
        "^fail from <DNS> x$",
        "^fail from <F-ID>\\S+</F-ID> x$",
    ];
    for usedns in [UseDns::Yes, UseDns::Warn, UseDns::No, UseDns::Raw] {
        for re in regexes {
            let f = filter(&[re], usedns);
            for text in examples {
                for t in targets(&f, &format!("fail from {text} x")) {
                    assert!(t.starts_with("none: "), "{usedns:?} {re} {text:?}: {t}");
                }
            }
        }
    }
    // The review's four examples are failures of `<HOST>` (fail2ban counts them)...
    let f = filter(&["^fail from <HOST> x$"], UseDns::Warn);
    for text in ["1.2.3.256", "001.002.003.013", "\u{661}.2.3.4", "6.6"] {
        assert_eq!(
            targets(&f, &format!("fail from {text} x")).len(),
            1,
            "{text:?}"
        );
    }
    // ...and F-ID takes any text: each example is a failure, without address.
    let f = filter(&["^fail from <F-ID/> x$"], UseDns::Warn);
    for text in examples {
        let t = targets(&f, &format!("fail from {text} x"));
        assert_eq!(t.len(), 1, "{text:?}");
    }
    // The same through the host captured beside a different failure id.
    let f = filter(&["^user <F-ID/> from <HOST>$"], UseDns::Warn);
    assert_eq!(targets(&f, "user alice from 192.0.2.7"), ["key 192.0.2.7"]);
    for text in ["001.002.003.013", "1.2.3.256", "\u{661}.2.3.4"] {
        assert_eq!(
            targets(&f, &format!("user alice from {text}")),
            ["none: not a canonical IPv4/IPv6 address"],
            "{text:?}"
        );
    }
}

#[test]
fn canonical_addresses_and_declared_networks_are_keys() {
    let host = filter(&["^fail from <HOST> x$"], UseDns::Warn);
    for (text, want) in [
        ("192.0.2.7", "key 192.0.2.7"),
        ("::ffff:192.0.2.7", "key 192.0.2.7"),
        ("[2001:db8::1]", "key 2001:db8::1"),
        ("2001:0DB8:0:0:0:0:0:1", "key 2001:db8::1"),
        ("mail.example.com", "resolve mail.example.com"),
        (
            "6.6",
            "none: not an address, nor a host name that may be resolved",
        ),
        (
            "my_host",
            "none: not an address, nor a host name that may be resolved",
        ),
    ] {
        assert_eq!(
            targets(&host, &format!("fail from {text} x")),
            [want],
            "{text}"
        );
    }
    let raw = filter(&["^fail from <HOST> x$"], UseDns::Raw);
    assert_eq!(
        targets(&raw, "fail from mail.example.com x"),
        ["none: not a canonical IPv4/IPv6 address"]
    );
    let dns_no = filter(&["^fail from <DNS> x$"], UseDns::No);
    assert_eq!(
        targets(&dns_no, "fail from mail.example.com x"),
        ["none: a host name, not resolved (usedns)"]
    );
    assert_eq!(targets(&dns_no, "fail from 192.0.2.7 x"), ["key 192.0.2.7"]);
    let subnet = filter(&["^fail from <SUBNET> x$"], UseDns::Warn);
    for (text, want) in [
        ("192.0.2.77/24", "key 192.0.2.0/24"),
        ("192.0.2.77/32", "key 192.0.2.77"),
        ("192.0.2.77", "key 192.0.2.77"),
        ("2001:db8::1/64", "key 2001:db8::/64"),
        (
            "192.0.2.77/024",
            "none: its prefix length is not canonical or too long",
        ),
        (
            "192.0.2.77/33",
            "none: its prefix length is not canonical or too long",
        ),
        (
            "192.0.2.77/\u{662}\u{664}",
            "none: its prefix length is not canonical or too long",
        ),
    ] {
        assert_eq!(
            targets(&subnet, &format!("fail from {text} x")),
            [want],
            "{text}"
        );
    }
    // A failure id is never read as a network: only a `cidr` group declares one.
    let fid = filter(&["^fail from <F-ID/> x$"], UseDns::Warn);
    assert_eq!(
        targets(&fid, "fail from 0.0.0.0/0 x"),
        ["none: not a canonical IPv4/IPv6 address"]
    );
    assert_eq!(targets(&fid, "fail from [192.0.2.7] x"), ["key 192.0.2.7"]);
}

#[test]
fn failure_key_parse_is_strict() {
    let ok = |s: &str| FailureKey::parse_address(s).map(|k| k.to_string());
    assert_eq!(ok("192.0.2.7").as_deref(), Some("192.0.2.7"));
    assert_eq!(ok("[2001:db8::1]").as_deref(), Some("2001:db8::1"));
    assert_eq!(ok("::ffff:192.0.2.7").as_deref(), Some("192.0.2.7"));
    assert_eq!(ok("192.0.2.9/24").as_deref(), Some("192.0.2.0/24"));
    assert_eq!(ok("10.0.0.0/255.0.0.0").as_deref(), Some("10.0.0.0/8"));
    for bad in [
        "001.002.003.013",
        "1.2.3.256",
        "6.6",
        "\u{661}.2.3.4",
        " 192.0.2.7",
        "192.0.2.7/024",
        "192.0.2.07/24",
        "192.0.2.7/+24",
        "192.0.2.7/33",
        "host.example",
        "",
    ] {
        assert_eq!(ok(bad), None, "{bad:?}");
        assert_eq!(
            FailureKey::parse(bad),
            FailureKey::Id(bad.into()),
            "{bad:?}"
        );
    }
    assert!(FailureKey::parse("192.0.2.7").is_address());
    assert!(!FailureKey::parse("host.example").is_address());
}

// ---------------------------------------------------------------- properties

/// Canonical text of random addresses, in the spellings logs use.
fn arb_address_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u32>().prop_map(|i| std::net::Ipv4Addr::from(i).to_string()),
        any::<u128>().prop_map(|i| std::net::Ipv6Addr::from(i).to_string()),
        // full form with leading zeros in the groups
        any::<[u16; 8]>().prop_map(|g| g
            .iter()
            .map(|x| format!("{x:04x}"))
            .collect::<Vec<_>>()
            .join(":")),
        any::<u32>().prop_map(|i| format!("::ffff:{}", std::net::Ipv4Addr::from(i))),
        any::<u128>().prop_map(|i| format!("[{}]", std::net::Ipv6Addr::from(i))),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, char),
    Delete(usize),
    Replace(usize, char),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    let ch = prop_oneof![
        Just('0'),
        Just('1'),
        Just('9'),
        Just('.'),
        Just(':'),
        Just('x'),
        Just('f'),
        Just('/'),
        Just('%'),
        Just(' '),
        Just('['),
        Just(']'),
        Just('\u{661}'),
        Just('\u{ff10}'),
        Just('\u{6f5}'),
        any::<char>(),
    ];
    prop_oneof![
        (any::<usize>(), ch.clone()).prop_map(|(i, c)| Mutation::Insert(i, c)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), ch).prop_map(|(i, c)| Mutation::Replace(i, c)),
    ]
}

fn mutate(text: &str, muts: &[Mutation]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for m in muts {
        match *m {
            Mutation::Insert(i, c) => chars.insert(i % (chars.len() + 1), c),
            Mutation::Delete(i) if !chars.is_empty() => {
                chars.remove(i % chars.len());
            }
            Mutation::Replace(i, c) if !chars.is_empty() => {
                let n = chars.len();
                chars[i % n] = c;
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// What every accepted text must be: ASCII, and its IPv4 part (the whole text, or the
/// dotted tail of an IPv6 address) four decimal octets 0–255 without leading zeros.
fn check_accepted(text: &str, ip: IpAddr) -> Result<(), TestCaseError> {
    prop_assert!(text.is_ascii(), "non-ASCII text accepted: {text:?}");
    let inner = text.trim_start_matches('[').trim_end_matches(']');
    let dotted = inner.rsplit(':').next().unwrap_or(inner);
    if dotted.contains('.') {
        let octets: Vec<&str> = dotted.split('.').collect();
        prop_assert_eq!(octets.len(), 4, "not four octets: {:?}", text);
        for o in octets {
            prop_assert!(
                !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit()),
                "octet {o:?} in {text:?}"
            );
            prop_assert!(o == "0" || !o.starts_with('0'), "leading zero in {text:?}");
            prop_assert!(
                o.parse::<u16>().is_ok_and(|v| v <= 255),
                "octet {o:?} in {text:?}"
            );
        }
    }
    // Round trip: what we print is canonical and reads back as the same address; an IPv4
    // address written without brackets is printed exactly as it came.
    let printed = ip.to_string();
    prop_assert_eq!(
        parse_canonical_ip(&printed),
        Some(ip),
        "{} -> {}",
        text,
        printed
    );
    if !inner.contains(':') && ip.is_ipv4() {
        prop_assert_eq!(&printed, inner);
    }
    let key = FailureKey::parse_address(text);
    prop_assert_eq!(key.clone(), Some(FailureKey::Ip(ip)));
    Ok(())
}

/// A filter with every host-capturing tag, compiled once per `usedns`.
fn host_filter(usedns: UseDns) -> &'static Filter {
    static FILTERS: std::sync::OnceLock<Vec<(UseDns, Filter)>> = std::sync::OnceLock::new();
    let all = FILTERS.get_or_init(|| {
        [UseDns::Warn, UseDns::No, UseDns::Raw]
            .into_iter()
            .map(|u| {
                let re = [
                    "^a <HOST> z$",
                    "^a <SUBNET> z$",
                    "^a <F-ID/> z$",
                    "^a <F-ID>.+?</F-ID> b <HOST>",
                    "<ADDR>",
                ];
                (u, filter(&re, u))
            })
            .collect()
    });
    &all.iter().find(|(u, _)| *u == usedns).unwrap().1
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn address_parsing_accepts_only_canonical_text(text in any::<String>()) {
        if let Some(ip) = parse_canonical_ip(&text) {
            check_accepted(&text, ip)?;
        }
        let _ = FailureKey::parse(&text);
        let _ = text.parse::<IpNet>();
        let _ = is_host_name(&text);
    }

    #[test]
    fn address_parsing_of_near_addresses(
        text in "[0-9a-fA-F:.\\[\\]/%x \u{660}-\u{669}]{0,48}",
    ) {
        if let Some(ip) = parse_canonical_ip(&text) {
            check_accepted(&text, ip)?;
        }
        if is_host_name(&text) {
            prop_assert!(parse_canonical_ip(&text).is_none(), "{:?}", text);
        }
    }

    #[test]
    fn mutated_addresses_are_canonical_or_refused(
        text in arb_address_text(),
        muts in proptest::collection::vec(arb_mutation(), 0..4),
    ) {
        // unmutated, every spelling is accepted
        let original = parse_canonical_ip(&text);
        prop_assert!(original.is_some(), "{:?}", text);
        let m = mutate(&text, &muts);
        if let Some(ip) = parse_canonical_ip(&m) {
            check_accepted(&m, ip)?;
        }
        if let Ok(net) = m.parse::<IpNet>() {
            prop_assert_eq!(net.to_string().parse::<IpNet>(), Ok(net));
        }
        // a name that may be resolved never looks like an address to `inet_aton`
        if is_host_name(&m) {
            let last = m.rsplit('.').next().unwrap_or("");
            prop_assert!(!last.bytes().all(|b| b.is_ascii_digit()), "{:?}", m);
        }
    }

    /// Random lines through a filter with every host-capturing tag: no panic, and every
    /// failure's key is canonical (or a declared network), a strict host name to resolve,
    /// or absent.
    #[test]
    fn every_failure_key_is_canonical_or_absent(
        host in prop_oneof![
            arb_address_text(),
            (arb_address_text(), proptest::collection::vec(arb_mutation(), 1..4))
                .prop_map(|(t, m)| mutate(&t, &m)),
            "[ -~]{0,40}",
            any::<String>(),
        ],
        cidr in prop_oneof![Just(String::new()), "/[0-9]{1,4}", "/[\u{660}-\u{669}0]{1,3}"],
        usedns in prop_oneof![Just(UseDns::Warn), Just(UseDns::No), Just(UseDns::Raw)],
    ) {
        let f = host_filter(usedns);
        let opts = ProcessOptions { check_all: true, now: NOW as f64 };
        for line in [
            format!("a {host}{cidr} z"),
            format!("a id b {host}{cidr}"),
            host.clone(),
        ] {
            let res = f.runner().process_line(&line, &opts);
            for fl in &res.failures {
                match failure_target(fl, usedns) {
                    FailureTarget::Key(k) => {
                        prop_assert!(k.is_address(), "{:?} from {:?}", k, line);
                        prop_assert_eq!(
                            FailureKey::parse_address(&k.to_string()),
                            Some(k.clone()),
                            "{:?}", line
                        );
                    }
                    FailureTarget::Resolve(name) => {
                        prop_assert!(is_host_name(name), "{:?} from {:?}", name, line);
                        prop_assert!(usedns == UseDns::Warn);
                    }
                    FailureTarget::NoAddress(_) => {}
                }
            }
        }
    }
}
