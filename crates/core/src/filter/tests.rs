use super::*;

const NOW: i64 = 1124013600; // 2005-08-14 12:00 CEST

fn cfg(fail: &[&str]) -> FilterConfig {
    FilterConfig {
        prefregex: None,
        failregex: fail.iter().map(|s| s.to_string()).collect(),
        ignoreregex: vec![],
        maxlines: 1,
        datepattern: None,
        usedns: UseDns::Warn,
        timezone: jiff::tz::TimeZone::UTC,
        now: NOW,
    }
}

fn opts(check_all: bool) -> ProcessOptions {
    ProcessOptions {
        check_all,
        now: NOW as f64,
    }
}

#[test]
fn date_is_cut_and_host_found() {
    let f = Filter::new(&cfg(&[r"^\s*\S+ sshd\[\d+\]: Failed for <HOST>$"])).unwrap();
    let mut r = f.runner();
    let res = r.process_line(
        "Aug 14 09:59:00 host sshd[12]: Failed for 192.0.2.1\r\n",
        &opts(false),
    );
    assert!(res.date.is_some());
    assert_eq!(res.failures.len(), 1);
    let fl = &res.failures[0];
    assert_eq!(fl.fid, "192.0.2.1");
    assert_eq!(fl.host.as_deref(), Some("192.0.2.1"));
    assert_eq!(fl.kind, HostKind::Ip4);
    assert_eq!(fl.time, (NOW - 60) as f64);
    assert_eq!(
        fl.matches,
        vec!["Aug 14 09:59:00 host sshd[12]: Failed for 192.0.2.1".to_string()]
    );
    // no date: time is now
    let res = r.process_line("x sshd[1]: Failed for 2001:db8::1", &opts(false));
    assert_eq!(res.failures[0].kind, HostKind::Ip6);
}

#[test]
fn no_failure_id_group() {
    let e = Filter::new(&cfg(&["^foo$"])).unwrap_err();
    assert!(
        matches!(e, FilterError::NoFailureId { index: 0, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("No failure-id group"));
    // an id in the prefregex is enough
    let mut c = cfg(&["^foo$"]);
    c.prefregex = Some("^<F-MLFID>x</F-MLFID> <F-CONTENT>.+</F-CONTENT>$".into());
    assert!(Filter::new(&c).is_ok());
    let e = Filter::new(&cfg(&["<HOST>", "(unclosed <HOST>"])).unwrap_err();
    assert!(matches!(e, FilterError::Regex { index: 1, .. }), "{e}");
    // failregexes compile on two threads: the first bad one in order is reported
    let e = Filter::new(&cfg(&["<HOST>", "<HOST>", "(a <HOST>", "(b <HOST>"])).unwrap_err();
    assert!(matches!(e, FilterError::Regex { index: 2, .. }), "{e}");
    assert!(matches!(
        Filter::new(&cfg(&["  "])).unwrap_err(),
        FilterError::Empty { .. }
    ));
}

#[test]
fn prefregex_content_and_groups() {
    let mut c = cfg(&[r"^bad user <F-USER>\S+</F-USER> from <HOST>$"]);
    c.prefregex = Some(r"^<F-SRV>\w+</F-SRV>: <F-CONTENT>.+</F-CONTENT>$".into());
    let f = Filter::new(&c).unwrap();
    assert_eq!(
        f.expanded_prefregex(),
        Some(r"^(?P<srv>\w+): (?P<content>.+)$")
    );
    let mut r = f.runner();
    let res = r.process_line("app: bad user bob from 10.0.0.1", &opts(false));
    assert!(res.prefregex_matched);
    let fl = &res.failures[0];
    assert_eq!(fl.groups["user"], GroupValue::Str("bob".into()));
    assert_eq!(fl.groups["srv"], GroupValue::Str("app".into()));
    assert!(!fl.groups.contains_key("content"));
    // content only: `^` anchors at the content start
    let res = r.process_line("app: x bad user bob from 10.0.0.1", &opts(false));
    assert!(res.prefregex_matched && res.failures.is_empty());
    let res = r.process_line("nothing here", &opts(false));
    assert!(!res.prefregex_matched);
}

#[test]
fn ignoreregex_and_check_all() {
    let mut c = cfg(&[r"fail from <HOST>", r"from <HOST>"]);
    c.ignoreregex = vec![r"from 10\.".into()];
    let f = Filter::new(&c).unwrap();
    let mut r = f.runner();
    let res = r.process_line("fail from 10.0.0.1", &opts(false));
    assert!(res.failures.is_empty());
    assert!(res.ignored);
    assert_eq!(res.ignore_hits, vec![0]);
    let res = r.process_line("fail from 192.0.2.1", &opts(false));
    assert_eq!(res.failregex_hits, vec![0]);
    assert_eq!(res.failures.len(), 1);
    let res = r.process_line("fail from 192.0.2.1", &opts(true));
    assert_eq!(res.failregex_hits, vec![0, 1]);
    assert_eq!(res.failures.len(), 2);
    assert_eq!(res.failures[1].failregex, 1);
}

#[test]
fn fid_and_alt_tuple_groups() {
    let f = Filter::new(&cfg(&[
        r"^user=<F-ALT_USER>\S*</F-ALT_USER> <F-USER>\S*</F-USER> id=<F-ID>\S+</F-ID> ip=<ADDR> <F-TUPLE_K>\w</F-TUPLE_K><F-TUPLE_K_1>\w</F-TUPLE_K_1>",
    ]))
    .unwrap();
    let mut r = f.runner();
    let res = r.process_line("user=alice  id=sess1 ip=192.0.2.7 ab", &opts(false));
    let fl = &res.failures[0];
    assert_eq!(fl.fid, "sess1");
    assert_eq!(fl.kind, HostKind::Id);
    assert_eq!(fl.groups["ip"], GroupValue::Str("192.0.2.7".into()));
    assert_eq!(fl.groups["user"], GroupValue::Str("alice".into()));
    assert_eq!(
        fl.groups["k"],
        GroupValue::Tuple(vec![None, Some("a".into()), Some("b".into())])
    );
    // F-ID only
    let f = Filter::new(&cfg(&[r"^token <F-ID/>"])).unwrap();
    let res = f.runner().process_line("token abc", &opts(false));
    assert_eq!(res.failures[0].fid, "abc");
    assert_eq!(res.failures[0].host, None);
    // subnet
    let f = Filter::new(&cfg(&[r"^net <SUBNET>"])).unwrap();
    let res = f.runner().process_line("net 192.0.2.0/24", &opts(false));
    assert_eq!(res.failures[0].kind, HostKind::Subnet { cidr: Some(24) });
    // usedns=no: no DNS alternative
    let mut c = cfg(&[r"^from <HOST>$"]);
    c.usedns = UseDns::No;
    let f = Filter::new(&c).unwrap();
    assert!(f
        .runner()
        .process_line("from example.com", &opts(false))
        .failures
        .is_empty());
    let f = Filter::new(&cfg(&[r"^from <HOST>$"])).unwrap();
    let res = f.runner().process_line("from example.com", &opts(false));
    assert_eq!(res.failures[0].kind, HostKind::Dns);
}

#[test]
fn mlfid_nofail_pending_and_forget() {
    let mut c = cfg(&[
        r"^<F-NOFAIL>Connection from</F-NOFAIL> <HOST>",
        r"^Failed password for <F-USER>\S+</F-USER>",
        r"^<F-MLFFORGET>Disconnected</F-MLFFORGET>",
    ]);
    c.prefregex = Some(r"^<F-MLFID>\[\d+\]</F-MLFID> <F-CONTENT>.+</F-CONTENT>$".into());
    let f = Filter::new(&c).unwrap();
    let mut r = f.runner();
    let o = opts(true);
    let res = r.process_line("[1] Connection from 192.0.2.5", &o);
    assert!(res.failures.is_empty() && res.ignored);
    assert_eq!(res.failregex_hits, vec![0]);
    let res = r.process_line("[1] Failed password for root", &o);
    assert_eq!(res.failures.len(), 1);
    assert_eq!(res.failures[0].fid, "192.0.2.5");
    assert_eq!(res.failures[0].matches.len(), 2);
    let res = r.process_line("[1] Failed password for admin", &o);
    let users = match &res.failures[0].groups["users"] {
        GroupValue::Set(s) => s.iter().cloned().collect::<Vec<_>>(),
        v => panic!("{v:?}"),
    };
    assert_eq!(users, vec!["admin", "root"]);
    // pending: failure before the host is known
    let res = r.process_line("[2] Failed password for x", &o);
    assert!(res.failures.is_empty());
    assert_eq!(res.failregex_hits, vec![1]);
    let res = r.process_line("[2] Connection from 192.0.2.6", &o);
    assert_eq!(res.failures.len(), 1, "{res:?}");
    assert_eq!(res.failures[0].fid, "192.0.2.6");
    // forget
    r.process_line("[1] Disconnected", &o);
    let res = r.process_line("[1] Failed password for root", &o);
    assert!(res.failures.is_empty());
}

#[test]
fn multiline_buffer_and_skiplines() {
    let mut c = cfg(&[r"^start (?P<n>\d+)$<SKIPLINES>^from <HOST>$"]);
    c.maxlines = 5;
    let f = Filter::new(&c).unwrap();
    assert!(f.prefilter().is_none());
    let mut r = f.runner();
    let o = opts(false);
    assert!(r.process_line("start 1", &o).failures.is_empty());
    assert!(r.process_line("noise", &o).failures.is_empty());
    let res = r.process_line("from 192.0.2.9", &o);
    assert_eq!(res.failures.len(), 1);
    assert_eq!(res.failures[0].matches, vec!["start 1", "from 192.0.2.9"]);
    // the consumed lines are gone, the skipped line stays in the buffer
    assert_eq!(r.lines.len(), 1);
    assert_eq!(r.lines[0].text, "noise");
}

#[test]
fn prefilter_literals() {
    let f = Filter::new(&cfg(&[
        r"^Failed password for <HOST>",
        r"^Invalid user \S+ from <HOST>",
    ]))
    .unwrap();
    let pf = f.prefilter().unwrap();
    assert!(pf.is_match(b"x Failed password for 1.2.3.4"));
    assert!(pf.is_match(b"Invalid user a from 1.2.3.4"));
    assert!(!pf.is_match(b"Accepted key"));
    assert_eq!(pf.find(b"..Failed password for 1"), Some(2));
    // a failregex without a required literal disables it
    let f = Filter::new(&cfg(&[r"^Failed password for <HOST>", r"^\w+ <HOST>"])).unwrap();
    assert!(f.prefilter().is_none());
}

fn prop_filters() -> &'static (Filter, Filter) {
    static F: std::sync::OnceLock<(Filter, Filter)> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let mut c = cfg(&[
            r"^\s*\S+ sshd\[\d+\]: Failed for <HOST>$",
            r"(?P<x>a)(?P=x)<F-ID/>",
        ]);
        c.prefregex = Some(r"^<F-MLFID>\S*</F-MLFID>\s*<F-CONTENT>.+</F-CONTENT>$".into());
        let mut c2 = cfg(&[r"<HOST><SKIPLINES>(?P<y>x)?<F-ID/>"]);
        c2.maxlines = 3;
        (Filter::new(&c).unwrap(), Filter::new(&c2).unwrap())
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]
    #[test]
    fn any_line_never_panics(line in "\\PC{0,80}", l2 in "[\\[\\]0-9a-f:. \r\n]{0,40}") {
        let (f, f2) = prop_filters();
        let mut r = f.runner();
        let _ = r.process_line(&line, &opts(true));
        let _ = r.process_line(&l2, &opts(false));
        let mut r2 = f2.runner();
        let _ = r2.process_line(&line, &opts(true));
        let _ = r2.process_line(&l2, &opts(true));
        let _ = r2.process_line(&line, &opts(false));
    }
}

/// fail2ban's `lt_file` `__prefix_line` for `_daemon = wordpress`, as `common.conf` expands it.
const WP_PREFIX: &str = concat!(
    r"(?:\[\])?\s*(?:<[^.]+\.[^.]+>\s+)?(?:\S+\s+)?(?:kernel:\s?\[ *\d+\.\d+\]:?\s+)?",
    r"(?:@vserver_\S+\s+)?(?:(?:(?:\[\d+\])?:\s+[\[(]?wordpress(?:\(\S+\))?[\])]?:?|",
    r"[\[(]?wordpress(?:\(\S+\))?[\])]?:?(?:\[\d+\])?:?)\s+)?(?:\[ID \d+ \S+\]\s+)?",
);

/// Failregexes (expanded by [`Filter`], `<HOST>` included) whose capture search is split.
fn split_regexes() -> &'static Vec<crate::pyregex::PyRegex> {
    static R: std::sync::OnceLock<Vec<crate::pyregex::PyRegex>> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        let fail = [
            format!("^{WP_PREFIX}Authentication failure for <F-USER>.*</F-USER> from <HOST>$"),
            format!("^{WP_PREFIX}Pingback error .* generated from <HOST>$"),
            format!(r"^{WP_PREFIX}(?:from|for) \S+ for <F-USER>\S*</F-USER> from <HOST>\b"),
        ];
        let f = Filter::new(&cfg(&fail.iter().map(String::as_str).collect::<Vec<_>>())).unwrap();
        (0..fail.len())
            .map(|i| {
                let re = crate::pyregex::PyRegex::compile(f.expanded_failregex(i).unwrap(), false)
                    .unwrap();
                assert!(re.has_split_search(), "{i}");
                re
            })
            .collect()
    })
}

/// Group spans of the unsplit search: the full (Unicode) fast regex.
fn unsplit(re: &crate::pyregex::PyRegex, hay: &str) -> Option<Vec<Option<(usize, usize)>>> {
    let crate::pyregex::Engine::Fast(full) = re.engine() else {
        panic!("not fast");
    };
    full.captures(hay)
        .map(|c| c.iter().map(|m| m.map(|m| (m.start(), m.end()))).collect())
}

fn split(re: &crate::pyregex::PyRegex, hay: &str) -> Option<Vec<Option<(usize, usize)>>> {
    re.captures(hay)
        .map(|s| (0..s.len()).map(|i| s.get(i)).collect())
}

#[test]
fn split_capture_search_examples() {
    let res = split_regexes();
    for hay in [
        "host wordpress(x)[12]: Authentication failure for bob from 192.0.2.1\n",
        "[] <auth.info> host wordpress: Authentication failure for bob from 192.0.2.1",
        "host Authentication failure for x from 1.2.3.4 Authentication failure for bob from 192.0.2.1",
        "Authentication failure for Authentication failure for  from 192.0.2.1",
        "host wordpress: Pingback error 1 generated from 2001:db8::1 generated from 192.0.2.1",
        "host for for for x for y from 192.0.2.1 ",
        "h wordpress: Authentication failure for straße from 192.0.2.1",
        "nothing here",
    ] {
        for re in res {
            assert_eq!(split(re, hay), unsplit(re, hay), "{hay:?}");
        }
    }
}

fn syslog_line() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let piece = prop::sample::select(vec![
        "",
        " ",
        "  ",
        "\t",
        "[]",
        "<auth.info>",
        "<a.b>",
        "host",
        "host.example.org",
        "kernel:",
        "[ 12.5]:",
        "@vserver_a",
        "wordpress",
        "wordpress(x)",
        "[wordpress]",
        "(wordpress)",
        "[123]",
        ":",
        "[ID 12 auth.info]",
        "Authentication failure for ",
        "Authentication",
        " failure for ",
        "Pingback error ",
        " generated from ",
        "from ",
        "for ",
        " from ",
        "bob",
        "ü",
        "192.0.2.1",
        "10.0.0.",
        "2001:db8::1",
        "::1",
        "example.com",
        "\n",
        "x",
    ]);
    let pieces = |n| prop::collection::vec(piece.clone(), 0..n).prop_map(|v| v.concat());
    let body = prop::sample::select(vec![
        "Authentication failure for ",
        "Pingback error ",
        "from x for ",
        "for ",
    ]);
    let end = prop::sample::select(vec![" from ", " generated from ", " for y from "]);
    let host = prop::sample::select(vec!["192.0.2.1", "2001:db8::1", "h.example.com", "[::1]"]);
    let structured = (pieces(6), body, pieces(4), end, host, pieces(2))
        .prop_map(|(a, b, c, d, e, f)| format!("{a}{b}{c}{d}{e}{f}"));
    prop_oneof![1 => pieces(14), 3 => structured]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
    #[test]
    fn split_capture_search_agrees(line in syslog_line()) {
        for re in split_regexes() {
            proptest::prop_assert_eq!(split(re, &line), unsplit(re, &line), "{:?}", re);
        }
    }
}

/// `match_line` on per-chunk runners plus `merge` in order gives `process_line`'s results,
/// lines without a date (which reuse the last date) included.
#[test]
fn split_matching_agrees_with_process_line() {
    let mut c = cfg(&[
        r"^<F-NOFAIL>Connection from</F-NOFAIL> <HOST>",
        r"^Failed password for <F-USER>\S+</F-USER>",
        r"^Failed password for <F-USER>\S+</F-USER> from <HOST>",
        r"^<F-MLFFORGET>Disconnected</F-MLFFORGET>",
    ]);
    c.prefregex = Some(r"^<F-MLFID>\[\d+\]</F-MLFID> <F-CONTENT>.+</F-CONTENT>$".into());
    let f = Filter::new(&c).unwrap();
    let bodies = [
        "[1] Connection from 192.0.2.5",
        "[1] Failed password for root",
        "[2] Failed password for x",
        "[1] Failed password for admin from 192.0.2.9",
        "[2] Connection from 192.0.2.6",
        "[1] Disconnected",
        "[3] Failed password for y from 192.0.2.7",
        "nothing",
    ];
    let mut lines = Vec::new();
    for i in 0..60 {
        let body = bodies[(i * 7) % bodies.len()];
        lines.push(match i % 5 {
            0 | 3 => body.to_string(),
            _ => format!("Aug 14 09:59:{i:02} {body}"),
        });
    }
    for check_all in [true, false] {
        let o = opts(check_all);
        let mut whole = f.runner();
        let want: Vec<String> = lines
            .iter()
            .map(|l| format!("{:?}", whole.process_line(l, &o)))
            .collect();
        for chunk in [1, 2, 3, 7] {
            let mut workers = [f.runner(), f.runner()];
            let mut merger = f.runner();
            let mut got = Vec::new();
            for (n, part) in lines.chunks(chunk).enumerate() {
                let w = &mut workers[n % 2];
                w.take_last_date();
                let ms: Vec<_> = part.iter().map(|l| w.match_line(l, &o)).collect();
                let last = w.take_last_date();
                for m in ms {
                    got.push(format!("{:?}", merger.merge(m, &o)));
                }
                if let Some(d) = last {
                    merger.set_last_date(d);
                }
            }
            assert_eq!(got, want, "check_all={check_all} chunk={chunk}");
        }
    }
}

/// A lean runner finds the same failures (id, host, kind, time, failregex) and the same
/// hits and counts; `groups` and `matches` are left out, but for the groups that a merge
/// reads (`alt_` fills, multi-line failure ids).
#[test]
fn lean_runner_finds_the_same_failures() {
    let regexes = [
        r"^\s*\S+ sshd\[\d+\]: Failed for <HOST>$",
        r"^\s*\S+ tok <F-ID>\S+</F-ID> from <HOST>$",
        r"^\s*\S+ raw <F-ID>\S+</F-ID>$",
        r"^\s*\S+ net <SUBNET>$",
        r"^\s*\S+ ok <F-NOFAIL>\S+</F-NOFAIL> <HOST>$",
        r"^\s*\S+ user=<F-ALT_USER>\S*</F-ALT_USER> <F-ID>\S+</F-ID>$",
        r"^\s*\S+ s\[<F-MLFID>\d+</F-MLFID>\]: user <F-USER>\S+</F-USER> <F-NOFAIL>ok</F-NOFAIL>$",
        r"^\s*\S+ s\[<F-MLFID>\d+</F-MLFID>\]: user <F-USER>\S+</F-USER> x (?P<note>\S+)$",
        r"^\s*\S+ s\[<F-MLFID>\d+</F-MLFID>\]: from <HOST>$",
    ];
    let lines = [
        "Aug 14 09:59:00 host sshd[12]: Failed for 192.0.2.1",
        "Aug 14 09:59:01 host sshd[12]: Failed for 2001:db8::1",
        "Aug 14 09:59:02 host sshd[12]: Failed for example.com",
        "Aug 14 09:59:03 host tok abc from 192.0.2.7",
        "Aug 14 09:59:04 host raw 192.0.2.8",
        "Aug 14 09:59:05 host net 192.0.2.0/24",
        "Aug 14 09:59:06 host ok yes 192.0.2.9",
        "Aug 14 09:59:07 host user=bob x1",
        "Aug 14 09:59:08 host nothing here",
        "Aug 14 09:59:09 host s[7]: user bob ok",
        "Aug 14 09:59:10 host s[7]: from 192.0.2.10",
        "Aug 14 09:59:11 host s[8]: user eve x note",
        "Aug 14 09:59:12 host s[8]: user mallory x note",
        "Aug 14 09:59:13 host s[8]: from 192.0.2.11",
    ];
    for usedns in [UseDns::Warn, UseDns::Raw, UseDns::No] {
        let mut c = cfg(&regexes);
        c.usedns = usedns;
        let f = Filter::new(&c).unwrap();
        let mut found = 0;
        for check_all in [true, false] {
            let o = opts(check_all);
            let (mut full, mut lean) = (f.runner(), f.runner());
            lean.set_lean(true);
            for l in lines {
                let (a, b) = (full.process_line(l, &o), lean.process_line(l, &o));
                assert_eq!(a.failregex_hits, b.failregex_hits, "{l}");
                assert_eq!((a.ignored, a.pending), (b.ignored, b.pending), "{l}");
                let key =
                    |f: &Failure| (f.fid.clone(), f.host.clone(), f.kind, f.time, f.failregex);
                let want: Vec<_> = a.failures.iter().map(key).collect();
                let got: Vec<_> = b.failures.iter().map(key).collect();
                assert_eq!(got, want, "{l} usedns={usedns:?} check_all={check_all}");
                found += got.len();
                // the alt_ regex and those merged by mlfid keep the groups that decide, and
                // no matches
                for (x, y) in a.failures.iter().zip(&b.failures) {
                    if x.failregex >= 5 {
                        let deciding: std::collections::BTreeMap<_, _> = x
                            .groups
                            .iter()
                            .filter(|(k, _)| {
                                ["user", "users", "alt_user", "fid", "ip4", "mlfid", "nofail"]
                                    .contains(&&***k)
                            })
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        assert_eq!(y.groups, deciding, "{l}");
                        assert!(y.matches.is_empty() && !x.matches.is_empty(), "{l}");
                    }
                }
            }
        }
        assert!(found >= 12, "usedns={usedns:?}: {found} failures");
    }
}

#[test]
fn failregexes_keep_their_order() {
    let pats: Vec<String> = (0..7).map(|i| format!("^r{i} <HOST>$")).collect();
    let refs: Vec<&str> = pats.iter().map(String::as_str).collect();
    let f = Filter::new(&cfg(&refs)).unwrap();
    let mut r = f.runner();
    for i in 0..7 {
        let res = r.process_line(&format!("r{i} 192.0.2.{i}"), &opts(false));
        assert_eq!(res.failregex_hits, vec![i], "line r{i}");
    }
}
