//! Conformance: every filter of the Debian `fail2ban` package, read by our config reader
//! from the package's own config dirs, against the package's annotated sample logs, with
//! fail2ban's sample-test rules. The corpus is used in place (GPL files are not copied).
//!
//! Known differences are listed in docs/compat-differences.md and in KNOWN_DIFFERENCES
//! below; any other disagreement fails, and so does a listed filter that now passes (so
//! the list only ever shrinks).

use std::path::Path;

use banhammer::embedded::EMBEDDED_CONFIG;
use banhammer::samples::check_filter;
use banhammer_config::ConfigTree;

use crate::env;

/// Filters that still disagree with fail2ban, each explained in docs/compat-differences.md.
const KNOWN_DIFFERENCES: &[&str] = &[];

fn filters_in(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("filter.d"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter_map(|f| f.strip_suffix(".conf").map(str::to_string))
                .filter(|n| keep(n))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn debian_fail2ban_corpus() -> anyhow::Result<()> {
    let (Some(tests), Some(etc)) = (env::fail2ban_tests_dir(), env::fail2ban_config_dir()) else {
        env::require("the Debian fail2ban package (conformance corpus)", false);
        return Ok(());
    };
    let logs = tests.join("files/logs");
    let mut runs: Vec<(ConfigTree, String)> = Vec::new();
    for name in filters_in(&etc, |n| !n.ends_with("common")) {
        runs.push((ConfigTree::new(EMBEDDED_CONFIG, Some(etc.clone())), name));
    }
    // fail2ban's test-only filters include `../../../../../../../config/filter.d/common.conf`,
    // a path that exists only in fail2ban's source tree (fail2ban 1.0.2 itself cannot load
    // them from the Debian package). Run them from a temporary copy whose include names the
    // installed common.conf instead (see docs/compat-differences.md).
    let test_config = tests.join("config");
    let tmp = tempfile::tempdir()?;
    std::fs::create_dir(tmp.path().join("filter.d"))?;
    for name in filters_in(&test_config, |n| n.starts_with("zzz-")) {
        let text = std::fs::read_to_string(test_config.join(format!("filter.d/{name}.conf")))?;
        let fixed: String = text
            .lines()
            .map(|l| {
                if l.starts_with("before = ") && l.ends_with("common.conf") {
                    "before = common.conf"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(tmp.path().join(format!("filter.d/{name}.conf")), fixed)?;
        let common = etc.join("filter.d/common.conf");
        std::fs::copy(&common, tmp.path().join("filter.d/common.conf"))?;
        runs.push((
            ConfigTree::new(EMBEDDED_CONFIG, Some(tmp.path().to_path_buf())),
            name,
        ));
    }
    assert!(
        runs.len() >= 80,
        "expected the whole corpus, found {} filters",
        runs.len()
    );

    let mut failing = Vec::new();
    let mut report_text = String::new();
    let mut checked = 0;
    for (tree, name) in &runs {
        let result = check_filter(tree, name, &logs);
        let errors = match result {
            Ok(r) => {
                checked += r.checked;
                r.errors
            }
            Err(e) => vec![format!("{e:#}")],
        };
        if !errors.is_empty() {
            failing.push(name.clone());
            if !KNOWN_DIFFERENCES.contains(&name.as_str()) {
                report_text.push_str(&format!("== {name} ({} errors)\n", errors.len()));
                for e in errors.iter().take(8) {
                    report_text.push_str(&format!("  {e}\n"));
                }
            }
        }
    }
    let passing = runs.len() - failing.len();
    eprintln!(
        "conformance: {passing}/{} filters pass, {checked} annotated line checks",
        runs.len()
    );
    let unexpected: Vec<&String> = failing
        .iter()
        .filter(|n| !KNOWN_DIFFERENCES.contains(&n.as_str()))
        .collect();
    let fixed: Vec<&&str> = KNOWN_DIFFERENCES
        .iter()
        .filter(|k| !failing.iter().any(|f| f == *k))
        .collect();
    assert!(
        unexpected.is_empty(),
        "filters disagreeing with fail2ban:\n{report_text}"
    );
    assert!(
        fixed.is_empty(),
        "now passing, remove from KNOWN_DIFFERENCES and the doc: {fixed:?}"
    );
    Ok(())
}

/// fail2ban's regexes mostly run on the fast engine: only the ones that need lookaround,
/// backreferences or conditionals go to the backtracking one, and single-line filters get
/// a literal prefilter.
#[test]
fn most_fail2ban_regexes_use_the_fast_engine() -> anyhow::Result<()> {
    let Some(etc) = env::fail2ban_config_dir() else {
        env::require("the Debian fail2ban package (/etc/fail2ban)", false);
        return Ok(());
    };
    let tree = ConfigTree::new(EMBEDDED_CONFIG, Some(etc.clone()));
    let (mut fast, mut total) = (0, 0);
    for name in filters_in(&etc, |n| !n.ends_with("common")) {
        let spec = banhammer_config::read_filter(&tree, &name, &Default::default())
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let resolved = banhammer::filterload::ResolvedFilter {
            origin: banhammer::filterload::FilterOrigin::Named {
                name: name.clone(),
                basedir: String::new(),
            },
            args: Default::default(),
            spec,
        };
        let filter = banhammer::filterload::compile(&resolved, &Default::default(), 1_124_013_600)?;
        let slow: Vec<usize> = (0..filter.failregex_count())
            .filter(|&i| filter.failregex_is_backtrack(i))
            .collect();
        total += filter.failregex_count();
        fast += filter.failregex_count() - slow.len();
        if name == "sshd" {
            // Only the two `Failed …` regexes with conditionals need backtracking.
            assert!(slow.len() <= 2, "sshd backtracking regexes: {slow:?}");
        }
    }
    assert!(
        fast * 100 >= total * 85,
        "only {fast} of {total} failregexes on the fast engine"
    );
    Ok(())
}
