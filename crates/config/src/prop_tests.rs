//! Property tests of the config parsers on random input (a root-written config may still be
//! broken or hostile, and must never crash the daemon): INI parsing, `%(x)s` interpolation,
//! `<tag>` substitution and whole jail reads never panic, never hold a value past
//! `MAX_VALUE_BYTES`, and never work past the read's budget (counted, not timed).

use std::collections::HashSet;

use proptest::prelude::*;

use crate::budget::{Budget, MAX_VALUE_BYTES, VALUE_COST};
use crate::interp;
use crate::layered::Layered;
use crate::tags;
use crate::Options;

/// Option names the random values refer to.
const NAMES: usize = 6;

/// A piece of a value: text, references to `o0..o{refs-1}` (plain, `known/`, `default/`,
/// section), tags (plain, nested, runtime, section), and broken syntax now and then.
fn fragment(refs: usize) -> BoxedStrategy<String> {
    let text = prop_oneof![
        "[a-z ]{0,6}",
        "\\PC{0,3}",
        Just("\n  ".to_string()),
        Just("%%".to_string()),
    ];
    let broken = prop_oneof![
        Just("%".to_string()),
        Just("%(".to_string()),
        Just("%()s".to_string()),
        Just("<".to_string()),
        Just(">".to_string()),
    ];
    if refs == 0 {
        return prop_oneof![30 => text, 1 => broken].boxed();
    }
    let refs = prop_oneof![
        (0..refs).prop_map(|i| format!("%(o{i})s")),
        (0..refs).prop_map(|i| format!("<o{i}>")),
        // Multipliers: a few levels of these pass the value bound.
        (0..refs).prop_map(|i| format!("%(o{i})s").repeat(10)),
        (0..refs).prop_map(|i| format!("<o{i}>").repeat(10)),
        (0..refs).prop_map(|i| format!("%(s/o{i})s<s/o{i}>")),
        Just("<o<k>>".to_string()),
        Just("<ip> <F-USER>".to_string()),
        Just("%(known/o0)s%(default/o0)s%(__name__)s".to_string()),
        Just("<known/o0><default/o0>".to_string()),
    ];
    prop_oneof![15 => refs, 15 => text, 1 => broken].boxed()
}

/// A value whose references go to `o0..o{refs-1}`.
fn value_to(refs: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(refs), 0..12).prop_map(|v| v.concat())
}

/// A value referring to any `o*`, itself included.
fn value() -> impl Strategy<Value = String> {
    value_to(NAMES)
}

/// Values for `o0..o5`: half the time `o{i}` refers only to `o{j}`, `j < i`.
fn values() -> impl Strategy<Value = Vec<String>> {
    any::<bool>().prop_flat_map(|acyclic| {
        (0..NAMES)
            .map(|i| value_to(if acyclic { i } else { NAMES }).boxed())
            .collect::<Vec<_>>()
    })
}

/// `[DEFAULT]`, `[Definition]` and `[s]` sections of random values for `o0..o5` (and `k`).
/// Acyclic values let expansions multiply up to the bounds instead of stopping at the depth
/// limit or a loop.
fn config_text() -> impl Strategy<Value = String> {
    (values(), values(), values()).prop_map(|(d, def, s)| {
        let mut t = String::from("[DEFAULT]\nk = 1\n");
        for (header, vals) in [("", d), ("[Definition]\n", def), ("[s]\n", s)] {
            t.push_str(header);
            for (i, v) in vals.iter().enumerate() {
                t.push_str(&format!("o{i} = {v}\n"));
            }
        }
        t
    })
}

/// A line of an INI file: headers, options, continuations, comments and junk.
fn ini_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\[[A-Za-z?=/ ]{0,8}\\]",
        "[a-z.]{1,6} ?[=:] ?\\PC{0,12}",
        " {1,4}\\PC{0,12}",
        "[#;]\\PC{0,8}",
        "\\PC{0,16}",
        Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn ini_parse_never_panics_nor_keeps_more_than_it_read(
        lines in prop::collection::vec(ini_line(), 0..40),
        crlf in any::<bool>(),
    ) {
        let text = lines.join(if crlf { "\r\n" } else { "\n" });
        if let Ok(f) = crate::ini::parse("p.conf", &text) {
            let kept: usize = f
                .defaults
                .iter()
                .chain(f.sections.iter().flat_map(|s| s.options.iter()))
                .map(|(k, e)| k.len() + e.value.len())
                .sum();
            prop_assert!(kept <= text.len(), "{kept} > {}", text.len());
        }
    }

    #[test]
    fn interpolation_of_random_values_stays_within_its_bounds(text in config_text()) {
        let Ok(cfg) = Layered::from_text("p.conf", &text) else { return Ok(()) };
        let limit = 2 << 20;
        let budget = Budget::with_limit(limit);
        let vars = Options::new();
        for section in ["Definition", "s", "DEFAULT"] {
            for i in 0..NAMES {
                let before = budget.spent();
                if let Ok(Some(v)) = interp::get(&cfg, section, &format!("o{i}"), &vars, &budget) {
                    prop_assert!(v.len() <= MAX_VALUE_BYTES);
                    // Every byte produced was paid for.
                    prop_assert!(v.len() as u64 <= budget.spent() - before);
                }
            }
        }
        // The one charge that passes the limit is at most one raw value and one lookup.
        prop_assert!(budget.spent() <= limit + (text.len() + VALUE_COST + 2) as u64);
    }

    #[test]
    fn tag_substitution_of_random_values_stays_within_its_bounds(
        vals in values(),
        conditional in prop_oneof![Just(""), Just("family=inet6")],
    ) {
        let mut pairs: Vec<(String, String)> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("o{i}"), v.clone()))
            .collect();
        pairs.push(("k".into(), "1".into()));
        pairs.push(("o2?family=inet6".into(), "<o3><o3>".into()));
        let ignored: HashSet<&str> = ["ip", "F-USER"].into();
        let limit = 2 << 20;
        let budget = Budget::with_limit(limit);
        let mut fallback = |name: &str| -> Result<Option<String>, ()> {
            Ok(name.strip_prefix("s/").map(|o| format!("<{o}><{o}>")))
        };
        let r = tags::substitute_recursive(
            &mut pairs,
            conditional,
            &|t| ignored.contains(t),
            &mut fallback,
            &budget,
        );
        prop_assert!(r.is_ok());
        for (_, v) in &pairs {
            prop_assert!(v.len() <= MAX_VALUE_BYTES.max(vals.iter().map(String::len).sum()));
        }
        // The one charge that passes the limit copies at most three values.
        prop_assert!(budget.spent() <= limit + 3 * MAX_VALUE_BYTES as u64 + 64);
    }

    #[test]
    fn durations_never_panic(
        text in "[0-9.smhdwoy +*/()-]{0,40}|\\PC{0,20}",
        depth in 0usize..300,
    ) {
        let _ = crate::parse_duration(&text);
        let nested = format!("{}{text}{}", "(".repeat(depth), ")".repeat(depth));
        let _ = crate::parse_duration(&nested);
    }

    #[test]
    fn literal_values_cost_linear_work(vals in prop::collection::vec("[a-z <>=,\\[\\]]{0,40}", NAMES)) {
        // No references: interpolation and substitution scan and copy each byte a few times.
        let mut text = String::from("[Definition]\n");
        for (i, v) in vals.iter().enumerate() {
            text.push_str(&format!("o{i} = {v}\n"));
        }
        let cfg = Layered::from_text("p.conf", &text).unwrap();
        let budget = Budget::new();
        let mut pairs = Vec::new();
        for i in 0..NAMES {
            let name = format!("o{i}");
            let v = interp::get(&cfg, "Definition", &name, &Options::new(), &budget).unwrap();
            pairs.push((name, v.unwrap()));
        }
        let mut none = |_: &str| -> Result<Option<String>, ()> { Ok(None) };
        tags::substitute_recursive(&mut pairs, "", &|_| false, &mut none, &budget)
            .unwrap()
            .unwrap();
        prop_assert!(budget.spent() <= (8 * text.len() + 8 * NAMES * VALUE_COST) as u64);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn multiplying_references_expand_exactly_or_stop_at_the_bounds(
        levels in 1u32..9,
        refs in 1usize..12,
        leaf in "[a-z]{0,8}",
        tags_not_refs in any::<bool>(),
    ) {
        // `l0 = leaf`, `l{i} = refs × l{i-1}`: `leaf.len() × refs^levels` bytes if expanded.
        let reference = |i: u32| {
            if tags_not_refs { format!("<l{i}>") } else { format!("%(l{i})s") }
        };
        let mut text = format!("[Definition]\nl0 = {leaf}\n");
        for i in 1..=levels {
            text.push_str(&format!("l{i} = {}\n", reference(i - 1).repeat(refs)));
        }
        let expected = (refs as u64).pow(levels) * leaf.len() as u64;
        // Tags grow as tag text (`<l0>`, 4 bytes and more) before the leaves are put in.
        let widest = (refs as u64).pow(levels) * (leaf.len() as u64).max(6);
        let cfg = Layered::from_text("p.conf", &text).unwrap();
        let limit = 32 << 20;
        let budget = Budget::with_limit(limit);
        let top = format!("l{levels}");
        let got: Result<String, String> = if tags_not_refs {
            let mut pairs: Vec<(String, String)> = (0..=levels)
                .rev()
                .map(|i| {
                    let name = format!("l{i}");
                    let raw = crate::interp::get_raw(&cfg, "Definition", &name).unwrap().0;
                    (name, raw)
                })
                .collect();
            let mut none = |_: &str| -> Result<Option<String>, ()> { Ok(None) };
            match tags::substitute_recursive(&mut pairs, "", &|_| false, &mut none, &budget) {
                Ok(Ok(())) => Ok(pairs[0].1.clone()),
                Ok(Err(e)) => Err(format!("{e:?}")),
                Err(()) => Err("fallback".into()),
            }
        } else {
            interp::get(&cfg, "Definition", &top, &Options::new(), &budget)
                .map(Option::unwrap_or_default)
                .map_err(|e| e.to_string())
        };
        match got {
            Ok(v) => prop_assert_eq!(v.len() as u64, expected),
            Err(e) => prop_assert!(
                widest > MAX_VALUE_BYTES as u64 || budget.exhausted(),
                "{e} for {expected} bytes"
            ),
        }
        prop_assert!(budget.spent() <= limit + 3 * MAX_VALUE_BYTES as u64);
    }
}

proptest! {
    // Each case writes a small tree to a temp dir.
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn whole_reads_of_random_jail_files_stay_within_their_budget(
        jail in value(),
        action in config_text(),
        filter in config_text(),
        include in prop_oneof![Just(""), Just("f.conf"), Just("g.conf\n  g.conf"), Just("/dev/null")],
    ) {
        let jail_local = format!(
            "[DEFAULT]\nport = {jail}\n[web]\nenabled = true\nlogpath = /x\n\
             filter = f\naction = a[p=\"%(port)s\"]\n"
        );
        let filter = format!(
            "[INCLUDES]\nbefore = {include}\n{}\nfailregex = ^<o1> <HOST>$\n",
            filter.replace("[DEFAULT]", "[Init]")
        );
        let action = format!("{action}\nactionban = <o0> <ip>\n");
        let (_d, tree) = crate::layered::tests::tree_with(&[
            ("jail.local", &jail_local),
            ("filter.d/f.conf", &filter),
            ("filter.d/g.conf", "[INCLUDES]\nafter = f.conf\n"),
            ("action.d/a.conf", &action),
        ]);
        let limit = 4 << 20;
        let budget = Budget::with_limit(limit);
        let _ = crate::jail::read_jails_within(&tree, false, &budget);
        prop_assert!(budget.spent() <= limit + 3 * MAX_VALUE_BYTES as u64 + 4096);
    }
}
