//! Regression tests for hostile configs: expansions that multiply (`%(x)s` and `<tag>`
//! "billion laughs"), include trees that fan out or nest deep, files that never end, `.d`
//! directories of very many files, long names copied per option, durations nested deep enough
//! to overflow the stack, huge values quoted in messages. Each asserts the error (naming
//! `file:line` and the bound) and, where work could run away, that it stayed bounded, counted
//! by the read's `Budget`, never timed.

use crate::budget::{Budget, MAX_INCLUDE_DEPTH, MAX_VALUE_BYTES, VALUE_COST};
use crate::error::ConfigError;
use crate::jail::{read_jails_within, JailsConfig};
use crate::layered::tests::tree_with;

/// A small complete tree: one enabled jail `web` with filter `f` and action `a`. Files given
/// to `read` are added or replace these.
const BASE: &[(&str, &str)] = &[
    (
        "jail.conf",
        "[DEFAULT]\nfilter = f\naction = a\n[web]\nenabled = true\nlogpath = /var/log/web.log\n",
    ),
    (
        "filter.d/f.conf",
        "[Definition]\nfailregex = ^fail <HOST>$\n",
    ),
    ("action.d/a.conf", "[Definition]\nactionban = ban <ip>\n"),
];

/// Files to add to BASE: relative path, text.
type Files = Vec<(&'static str, String)>;

/// Read the jails of BASE overlaid by `files` with `budget`; the result and the work spent.
fn read_with(files: &[(&str, &str)], budget: &Budget) -> Result<JailsConfig, ConfigError> {
    let mut all: Vec<(&str, &str)> = BASE
        .iter()
        .filter(|(p, _)| !files.iter().any(|(q, _)| q == p))
        .copied()
        .collect();
    all.extend_from_slice(files);
    let (_dir, tree) = tree_with(&all);
    read_jails_within(&tree, false, budget)
}

/// `read_with` on a fresh default budget: the error (the read must fail) and the work spent.
fn refused(files: &[(&str, &str)]) -> (String, u64) {
    let b = Budget::new();
    match read_with(files, &b) {
        Ok(_) => panic!("a hostile config was accepted: {files:?}"),
        Err(e) => (e.to_string(), b.spent()),
    }
}

/// The most work one value of 4-byte leaves may take before it passes `MAX_VALUE_BYTES`:
/// one lookup per leaf (`VALUE_COST`) and its bytes, and half as much again for the levels
/// above the leaves. A multiplying value stops there, not after the 10⁸-fold expansion it
/// asks for.
const ONE_VALUE: u64 = (MAX_VALUE_BYTES / 4 * (VALUE_COST + 5) * 3 / 2) as u64;

/// The work of reading BASE as it is: what every bound below is measured from.
fn baseline() -> u64 {
    let b = Budget::new();
    read_with(&[], &b).unwrap();
    b.spent()
}

/// `n` levels `{p}1 ..= {p}n` of `refs` references each to the level below, `{p}0 = leaf`,
/// each as `key = value` lines (`fmt` turns a level name into a reference).
fn laughs(p: &str, n: usize, refs: usize, leaf: &str, fmt: &dyn Fn(&str) -> String) -> String {
    let mut s = format!("{p}0 = {leaf}\n");
    for i in 1..=n {
        s.push_str(&format!(
            "{p}{i} = {}\n",
            fmt(&format!("{p}{}", i - 1)).repeat(refs)
        ));
    }
    s
}

/// The 1-based line of `text` that starts with `start`.
fn line_of(text: &str, start: &str) -> usize {
    text.lines().position(|l| l.starts_with(start)).unwrap() + 1
}

fn pct(name: &str) -> String {
    format!("%({name})s")
}

fn tag(name: &str) -> String {
    format!("<{name}>")
}

#[test]
fn billion_laughs_interpolation_is_refused_with_file_and_line() {
    let base = baseline();
    // Eight levels of ten: 4·10⁸ bytes if expanded; the reviewer's config, in every place
    // where `%(x)s` is expanded.
    let defaults = format!("[DEFAULT]\n{}", laughs("l", 8, 10, "haha", &pct));
    let jail_local = format!("{defaults}[web]\nport = %(l8)s\naction = a[port=\"%(port)s\"]\n");
    let sections = {
        let mut s = String::from("[s0]\nv = haha\n");
        for i in 1..=8 {
            s.push_str(&format!(
                "[s{i}]\nv = {}\n",
                format!("%(s{}/v)s", i - 1).repeat(10)
            ));
        }
        s
    };
    let multi_line = {
        let mut s = String::from("[DEFAULT]\nm0 = haha\n");
        for i in 1..=8 {
            s.push_str(&format!(
                "m{i} = {}\n",
                format!("%(m{})s\n  ", i - 1).repeat(10)
            ));
        }
        s
    };
    let sections_local = format!("{sections}[web]\naction = a[port=\"%(s8/v)s\"]\n");
    let multi_local = format!("{multi_line}[web]\naction = a[port=\"%(m8)s\"]\n");
    let filter = format!(
        "[Definition]\n{}failregex = %(l8)s\n",
        laughs("l", 8, 10, "haha", &pct)
    );
    let init = format!(
        "[Init]\n{}[Definition]\nactionban = ban <ip>\n",
        laughs("l", 8, 10, "haha", &pct)
    );
    let action = "option \"action\" of [web] expands to more than 256 KiB (the bound on one value)";
    let cases: Vec<(&str, Files, String)> = vec![
        // A jail option referencing a DEFAULT chain: named at the reading option, with the
        // chain of references and their lines.
        (
            "jail option",
            vec![("jail.local", jail_local.clone())],
            format!(
                "jail.local:{}: {action}, through %(port)s (",
                line_of(&jail_local, "action")
            ),
        ),
        (
            "section references",
            vec![("jail.local", sections_local.clone())],
            format!(
                "jail.local:{}: {action}",
                line_of(&sections_local, "action")
            ),
        ),
        (
            "known/ and default/ references",
            vec![
                // Six levels: four more references are in the way, and Python's bound of
                // ten nested references holds.
                (
                    "jail.local",
                    format!(
                        "[DEFAULT]\n{}[web]\nport = %(default/l6)s\n",
                        laughs("l", 6, 10, "haha", &pct)
                    ),
                ),
                (
                    "jail.d/x.local",
                    "[web]\nport = %(known/port)s\naction = a[port=\"%(port)s\"]\n".into(),
                ),
            ],
            format!("x.local:3: {action}"),
        ),
        (
            "multi-line values",
            vec![("jail.local", multi_local.clone())],
            format!("jail.local:{}: {action}", line_of(&multi_local, "action")),
        ),
        (
            "a filter file",
            vec![("filter.d/f.conf", filter.clone())],
            format!(
                "f.conf:{}: option \"failregex\" of [Definition] expands to more than 256 KiB",
                line_of(&filter, "failregex")
            ),
        ),
        (
            // fail2ban interpolates every [Init] value (4·10⁵ bytes at l5).
            "an action's [Init]",
            vec![("action.d/a.conf", init.clone())],
            format!(
                "a.conf:{}: option \"l5\" of [Init] expands to more than 256 KiB",
                line_of(&init, "l5")
            ),
        ),
    ];
    for (what, files, want) in cases {
        let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
        let (e, spent) = refused(&files);
        assert!(e.contains(want.as_str()), "{what}: {e}");
        // Refused after about one value's worth of work, not after 4·10⁸ bytes.
        assert!(
            spent < base + 2 * ONE_VALUE,
            "{what}: spent {spent} (baseline {base})"
        );
    }

    // The chain in the message names each level's line.
    let (e, _) = refused(&[("jail.local", jail_local.as_str())]);
    let at = |key: &str| format!("jail.local:{})", line_of(&jail_local, key));
    assert!(
        e.contains("through %(port)s (")
            && e.contains(&format!("{} → %(l8)s (", at("port")))
            && e.contains(&format!("{} → %(l7)s (", at("l8"))),
        "{e}"
    );

    // The server config too (every option of its [Definition] is read: l5 passes first).
    let (_d, t) = tree_with(&[(
        "fail2ban.conf",
        &format!(
            "[Definition]\n{}socket = %(l8)s\n",
            laughs("l", 8, 10, "haha", &pct)
        ),
    )]);
    let e = crate::read_server(&t).unwrap_err().to_string();
    assert!(
        e.contains("fail2ban.conf:7: option \"l5\" of [Definition] expands to more than"),
        "{e}"
    );
}

#[test]
fn an_unread_exploding_option_is_kept_raw_with_bounded_work() {
    // fail2ban never expands an option nothing reads, so it accepts this; so do we, keeping
    // the raw text in `options`, after one bounded attempt per value.
    let base = baseline();
    let local = format!(
        "[DEFAULT]\n{}[web]\nport = %(l8)s\n",
        laughs("l", 8, 10, "haha", &pct)
    );
    let b = Budget::new();
    let jails = read_with(&[("jail.local", &local)], &b).unwrap();
    assert_eq!(jails.jails[0].options["port"], "%(l8)s");
    // l5, l6, l7, l8 and port each pass the bound once; l0..l4 expand in full.
    assert!(
        b.spent() < base + 6 * ONE_VALUE,
        "spent {} (baseline {base})",
        b.spent()
    );
}

#[test]
fn tag_chain_explosion_is_refused() {
    let base = baseline();
    let chain = laughs("a", 8, 10, "haha", &tag);
    let reversed: String = chain.lines().rev().map(|l| format!("{l}\n")).collect();
    let lt = {
        let mut s = String::from("[lt_0]\nv = haha\n");
        for i in 1..=8 {
            s.push_str(&format!(
                "[lt_{i}]\nv = {}\n",
                format!("<lt_{}/v>", i - 1).repeat(10)
            ));
        }
        s
    };
    let args = (1..=8)
        .map(|i| format!("a{i}=\"{}\"", format!("<a{}>", i - 1).repeat(10)))
        .collect::<Vec<_>>()
        .join(", ");
    let jail_args = format!("[web]\naction = a[a0=haha, {args}]\n");
    let cases: Vec<(&str, Files, &str)> = vec![
        (
            "[Definition] chain",
            vec![(
                "action.d/a.conf",
                format!("[Definition]\nactionban = ban <ip> <a8>\n{chain}"),
            )],
            "a.conf:2: option \"actionban\" with its <tags> substituted expands to more than \
             256 KiB (the bound on one value), when replacing <a",
        ),
        (
            "[Definition] chain written bottom up",
            vec![(
                "action.d/a.conf",
                format!("[Definition]\nactionban = ban <ip> <a8>\n{reversed}"),
            )],
            "a.conf:2: option \"actionban\" with its <tags> substituted expands",
        ),
        (
            "[Init] chain",
            vec![(
                "action.d/a.conf",
                format!("[Init]\n{chain}[Definition]\nactionban = ban <ip> <a8>\n"),
            )],
            "a.conf:12: option \"actionban\" with its <tags> substituted expands",
        ),
        (
            "name[key=value] arguments",
            vec![
                ("jail.local", jail_args),
                ("action.d/a.conf", "[Definition]\nactionban = <a8>\n".into()),
            ],
            "a.conf:2: option \"actionban\" with its <tags> substituted expands",
        ),
        (
            "nested <section/option> references",
            vec![(
                "action.d/a.conf",
                format!("[Definition]\nactionban = <lt_8/v>\n{lt}"),
            )],
            "a.conf:2: option \"actionban\" with its <tags> substituted expands",
        ),
        (
            "a filter",
            vec![(
                "filter.d/f.conf",
                format!("[Definition]\nfailregex = ^<a8> <HOST>$\n{chain}"),
            )],
            "f.conf:2: option \"failregex\" with its <tags> substituted expands",
        ),
    ];
    for (what, files, want) in cases {
        let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
        let (e, spent) = refused(&files);
        assert!(e.contains(want), "{what}: {e}");
        // Twice: `options` tries every option, then fail2ban's own set is tried.
        assert!(
            spent < base + 4 * ONE_VALUE,
            "{what}: spent {spent} (baseline {base})"
        );
    }
}

#[test]
fn references_to_empty_values_run_out_of_budget_not_memory() {
    // Nine levels of ten references to an empty value: nothing grows, but 10⁹ lookups.
    let local = format!(
        "[DEFAULT]\n{}[web]\naction = a[port=\"%(e9)s\"]\n",
        laughs("e", 9, 10, "", &pct)
    );
    let limit = 4 << 20;
    let b = Budget::with_limit(limit);
    let e = read_with(&[("jail.local", &local)], &b)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("jail.local:13: reading the configuration needs more than 4 MiB of work")
            && e.contains("passed while expanding option \"action\" of [web], through %(e9)s"),
        "{e}"
    );
    // The last charge before stopping is at most one value's worth.
    assert!(b.spent() <= limit + MAX_VALUE_BYTES as u64, "{}", b.spent());

    // Many distinct empty tags: nothing grows, but each replacement rewrites the value.
    let names: String = (0..20_000).map(|i| format!("<t{i}>")).collect();
    let defs: String = (0..20_000).map(|i| format!("t{i} =\n")).collect();
    let act = format!("[Definition]\nactionban = {names}\n{defs}");
    // Reading 20,000 options costs a few MiB by itself; the substitution costs GiBs.
    let limit = 32 << 20;
    let b = Budget::with_limit(limit);
    let e = read_with(&[("action.d/a.conf", &act)], &b)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("a.conf:2: reading the configuration needs more than 32 MiB of work")
            && e.contains("substituting the <tags> of option \"actionban\""),
        "{e}"
    );
    // The last charge is at most the copy of two values.
    assert!(
        b.spent() <= limit + 2 * MAX_VALUE_BYTES as u64,
        "{}",
        b.spent()
    );
}

#[test]
fn many_jails_times_many_defaults_run_out_of_budget() {
    // Each jail's `options` resolve every DEFAULT option: 3,000 jails × 100 options of 1 KiB
    // each is 300 MiB kept, from a 120 KiB file. Refused by the total budget of the read (a
    // smaller one here, so that the test does not hold hundreds of MiB itself).
    let mut local = String::from("[DEFAULT]\nk = ");
    local.push_str(&"x".repeat(1000));
    local.push('\n');
    for i in 0..100 {
        local.push_str(&format!("d{i} = %(k)s\n"));
    }
    for i in 0..3000 {
        local.push_str(&format!("[j{i}]\n"));
    }
    let limit = 16 << 20;
    let b = Budget::with_limit(limit);
    let e = read_with(&[("jail.local", &local)], &b)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("reading the configuration needs more than 16 MiB of work"),
        "{e}"
    );
    assert!(b.spent() <= limit + MAX_VALUE_BYTES as u64, "{}", b.spent());
}

#[test]
fn include_fan_out_is_refused() {
    // Each file includes the next one ten times over: 10⁸ entries in the include order.
    let mut files: Vec<(String, String)> = Vec::new();
    for i in 0..8 {
        let list = format!("i{}.conf\n  ", i + 1).repeat(10);
        files.push((
            format!("filter.d/i{i}.conf"),
            format!("[INCLUDES]\nbefore = {list}\n[Definition]\nx{i} = 1\n"),
        ));
    }
    files.push(("filter.d/i8.conf".into(), "[Definition]\n".into()));
    files.push((
        "filter.d/f.conf".into(),
        "[INCLUDES]\nbefore = i0.conf\n[Definition]\nfailregex = ^fail <HOST>$\n".into(),
    ));
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let limit = 8 << 20;
    let b = Budget::with_limit(limit);
    let e = read_with(&files, &b).unwrap_err().to_string();
    assert!(
        e.contains("more than 8 MiB of work") && e.contains("following [INCLUDES]"),
        "{e}"
    );
    assert!(b.spent() <= limit + 64 * 1024, "{}", b.spent());
}

#[test]
fn include_chain_deeper_than_the_bound_is_refused() {
    let n = MAX_INCLUDE_DEPTH + 8;
    let mut files: Vec<(String, String)> = (0..n)
        .map(|i| {
            (
                format!("filter.d/c{i}.conf"),
                format!("[INCLUDES]\nbefore = c{}.conf\n[Definition]\n", i + 1),
            )
        })
        .collect();
    files.push((
        "filter.d/f.conf".into(),
        "[INCLUDES]\nbefore = c0.conf\n[Definition]\nfailregex = ^fail <HOST>$\n".into(),
    ));
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let (e, _) = refused(&files);
    // The top file and c0 ..= c30 make 32 levels: c30 may not include c31.
    let deepest = MAX_INCLUDE_DEPTH - 2;
    assert!(
        e.contains(&format!("c{deepest}.conf:2: including "))
            && e.contains(&format!(
                "c{}.conf nests [INCLUDES] deeper than {MAX_INCLUDE_DEPTH} files",
                deepest + 1
            )),
        "{e}"
    );
    // One level less is fine.
    let mut ok: Vec<(&str, &str)> = files[..deepest].to_vec();
    let last = format!("filter.d/c{deepest}.conf");
    ok.push((&last, "[Definition]\n"));
    ok.push(files[n]);
    read_with(&ok, &Budget::new()).unwrap();
}

#[test]
fn an_include_that_never_ends_or_is_too_big_is_refused() {
    // `/dev/zero` would be read until memory runs out; a FIFO would block the open.
    let (e, _) = refused(&[(
        "filter.d/f.conf",
        "[INCLUDES]\nbefore = /dev/zero\n[Definition]\nfailregex = ^x <HOST>$\n",
    )]);
    assert!(
        e.contains("/dev/zero: cannot read file: not a regular file"),
        "{e}"
    );
    let big = format!("[Definition]\nx = {}\n", "y".repeat(1 << 20));
    let (e, _) = refused(&[
        ("filter.d/big.conf", &big),
        (
            "filter.d/f.conf",
            "[INCLUDES]\nbefore = big.conf\n[Definition]\nfailregex = ^x <HOST>$\n",
        ),
    ]);
    assert!(
        e.contains("big.conf: cannot read file: larger than 1 MiB"),
        "{e}"
    );
}

#[test]
fn a_d_directory_of_too_many_files_is_refused() {
    // With a bound of 50 (ten thousand files take seconds to create here).
    let max = 50;
    let names: Vec<String> = (0..=max).map(|i| format!("jail.d/{i:03}.local")).collect();
    let files: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "")).collect();
    let b = Budget::new().with_max_dir_files(max);
    let e = read_with(&files, &b).unwrap_err().to_string();
    assert!(
        e.contains("jail.d: more than 50 `*.local` files in this directory"),
        "{e}"
    );
    // At the bound, the directory is read.
    let b = Budget::new().with_max_dir_files(max);
    read_with(&files[..max], &b).unwrap();
    assert_eq!(Budget::new().max_dir_files(), crate::budget::MAX_DIR_FILES);
}

#[test]
fn errors_and_warnings_quote_huge_values_shortened() {
    // A 100 KB value used to be quoted whole in the error (and in the log).
    let huge = "x".repeat(100_000);
    let (e, _) = refused(&[("jail.local", &format!("[web]\nbantime = {huge}\n"))]);
    assert!(
        e.contains("jail.local:2: bantime of jail [web]") && e.len() < 1000,
        "{e}"
    );
    let b = Budget::new();
    let jails = read_with(
        &[("jail.local", &format!("[web]\nmaxretry = {huge}\n"))],
        &b,
    )
    .unwrap();
    let w = jails
        .warnings
        .iter()
        .find(|w| w.message.contains("maxretry"));
    assert!(w.is_some_and(|w| w.message.len() < 1000), "{w:?}");
    let (e, _) = refused(&[("jail.local", &format!("[web]\n{huge}\n"))]);
    assert!(
        e.contains("jail.local:2: cannot parse line") && e.len() < 1000,
        "{e}"
    );
}

#[test]
fn a_long_section_name_is_not_copied_per_option() {
    // A 300 KB section name over 60,000 options (under 1 MiB in all) was copied once per
    // option into the duplicate check: 18 GB.
    let name = "n".repeat(300_000);
    let opts: String = (0..60_000).map(|i| format!("k{i}=\n")).collect();
    let text = format!("[{name}]\na=\n{opts}");
    let f = crate::ini::parse("big.conf", &text).unwrap();
    assert!(text.len() < 1 << 20);
    assert_eq!(f.sections[0].options.keys().count(), 60_001);
    let e = crate::ini::parse("big.conf", &format!("{text}a=\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("big.conf:60003: option \"a\" in section [nnnn"),
        "{e}"
    );
    assert!(e.len() < 1000, "{}", e.len());
}

#[test]
fn a_long_condition_is_charged_per_option_it_is_appended_to() {
    // `[Init?<300 KB>]` renames each of its options `key?<300 KB>`: 60,000 options make
    // 18 GB from a file under 1 MiB.
    let cond = "c".repeat(300_000);
    let opts: String = (0..60_000).map(|i| format!("k{i}=\n")).collect();
    let (e, spent) = refused(&[(
        "action.d/a.conf",
        &format!("[Definition]\nactionban = x\n[Init?family={cond}]\n{opts}"),
    )]);
    assert!(
        e.contains("a.conf: reading the configuration needs more than 256 MiB of work")
            && e.contains("while parsing this file"),
        "{e}"
    );
    // Refused before the renaming: the charge for it is what passed the limit.
    assert!(spent > crate::budget::MAX_READ_WORK, "{spent}");
}

#[test]
fn deeply_nested_durations_are_refused_without_overflowing_the_stack() {
    // The duration parser recursed once per `(` or sign: `bantime = ((((…` a few hundred
    // thousand deep overflowed the stack and aborted the daemon.
    let n = 200_000;
    for text in [
        format!("{}1{}", "(".repeat(n), ")".repeat(n)),
        format!("{}1", "-".repeat(n)),
        format!("{}1", "+(".repeat(n)),
    ] {
        let e = crate::parse_duration(&text).unwrap_err();
        assert!(
            e.message.contains("nested deeper than 100"),
            "{}",
            e.message
        );
        assert!(e.to_string().len() < 1000);
    }
    // In a jail: refused with its line.
    let deep = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
    let (e, _) = refused(&[("jail.local", &format!("[web]\nbantime = {deep}\n"))]);
    assert!(
        e.contains("jail.local:2: bantime of jail [web]: parentheses and signs nested deeper"),
        "{e}"
    );
    // As deep as Python's own parser allows is fine.
    let ok = format!("{}1h{}", "(".repeat(99), ")".repeat(99));
    assert_eq!(crate::parse_duration(&ok).unwrap(), 3600.0);
}
