//! Our shipped filters against our annotated sample logs (`testdata/logs/`), with
//! fail2ban's sample-test rules: every failJSON line agrees, every failregex is hit.

use banhammer::embedded::EMBEDDED_CONFIG;
use banhammer::samples::check_filter;
use banhammer_config::ConfigTree;

use crate::env::repo_root;

/// Every filter we ship (except the include-only common.conf) has a sample log.
#[test]
fn every_shipped_filter_has_a_sample_log() {
    let logs = repo_root().join("testdata/logs");
    let mut missing = Vec::new();
    for (path, _) in EMBEDDED_CONFIG {
        if let Some(name) = path
            .strip_prefix("filter.d/")
            .and_then(|p| p.strip_suffix(".conf"))
        {
            if !name.ends_with("common") && !logs.join(name).is_file() {
                missing.push(name.to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "filters without testdata/logs/<name>: {missing:?}"
    );
}

#[test]
fn shipped_filters_pass_their_samples() -> anyhow::Result<()> {
    let tree = ConfigTree::new(EMBEDDED_CONFIG, None);
    let logs = repo_root().join("testdata/logs");
    let mut errors = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&logs)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let report = check_filter(&tree, &name, &logs)?;
        checked += report.checked;
        errors.extend(report.errors);
    }
    assert!(
        checked > 0,
        "no annotated lines found under {}",
        logs.display()
    );
    assert!(
        errors.is_empty(),
        "{} sample errors:\n{}",
        errors.len(),
        errors.join("\n")
    );
    Ok(())
}

/// The seed recipe's own filter file, dropped into a config dir, matches exactly what our
/// wordpress filter matches (on top of our common.conf).
#[test]
fn recipe_filter_matches_like_ours() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("filter.d"))?;
    std::fs::copy(
        repo_root().join("../shared/seed/recipe/filter.d/wordpress.conf"),
        dir.path().join("filter.d/wordpress.conf"),
    )
    .or_else(|_| {
        // Outside the project's workspace layout: a copy of the recipe's text.
        std::fs::write(dir.path().join("filter.d/wordpress.conf"), RECIPE_FILTER).map(|_| 0)
    })?;
    let tree = ConfigTree::new(EMBEDDED_CONFIG, Some(dir.path().to_path_buf()));
    let logs = repo_root().join("testdata/logs");
    let report = check_filter(&tree, "wordpress", &logs)?;
    // The recipe filter has no <F-USER> group: only `user` annotations may differ.
    let real: Vec<&String> = report
        .errors
        .iter()
        .filter(|e| !e.contains("field user"))
        .collect();
    assert!(report.checked > 10);
    assert!(real.is_empty(), "recipe filter disagrees:\n{real:#?}");
    Ok(())
}

/// The recipe's filter as published (with the section headers it needs).
const RECIPE_FILTER: &str = "# Fail2Ban filter for wordpress\n\n[INCLUDES]\n\nbefore = common.conf\n\n[Definition]\n\n_daemon = wordpress\n\nfailregex = ^%(__prefix_line)sAuthentication failure for .* from <HOST>$\n            ^%(__prefix_line)sPingback error .* generated from <HOST>$\n\nignoreregex =\n";
