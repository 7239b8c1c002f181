//! `banhammer regex` against `fail2ban-regex` itself: same failures, same report.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::env::{self, banhammer, repo_root};

fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

fn have_fail2ban_regex() -> bool {
    env::require(
        "fail2ban-regex (Debian package fail2ban)",
        env::have_command("fail2ban-regex"),
    )
}

/// A config dir holding fail2ban's stock tree plus the recipe's filter, for fail2ban-regex.
fn fail2ban_dir_with_recipe(tmp: &Path) -> anyhow::Result<PathBuf> {
    let dir = tmp.join("f2b");
    let status = Command::new("cp")
        .args(["-r", "/etc/fail2ban"])
        .arg(&dir)
        .status()?;
    anyhow::ensure!(status.success(), "cannot copy /etc/fail2ban");
    std::fs::write(dir.join("filter.d/wordpress.conf"), RECIPE_FILTER)?;
    Ok(dir)
}

const RECIPE_FILTER: &str = "[INCLUDES]\nbefore = common.conf\n[Definition]\n_daemon = wordpress\nfailregex = ^%(__prefix_line)sAuthentication failure for .* from <HOST>$\n            ^%(__prefix_line)sPingback error .* generated from <HOST>$\nignoreregex =\n";

/// A deterministic mixed auth log from the project's shared generator.
fn generated_log(tmp: &Path, lines: usize) -> anyhow::Result<Option<PathBuf>> {
    let genlog = repo_root().join("../shared/bench/genlog.py");
    if !genlog.is_file() {
        env::require("../shared/bench/genlog.py", false);
        return Ok(None);
    }
    let path = tmp.join("auth.log");
    let out = Command::new("python3")
        .arg(&genlog)
        .args(["--lines", &lines.to_string(), "--ips", "300", "--seed", "7"])
        .output()?;
    anyhow::ensure!(out.status.success(), "genlog failed");
    std::fs::write(&path, out.stdout)?;
    Ok(Some(path))
}

#[test]
fn quick_start_demo_runs() -> anyhow::Result<()> {
    let log = repo_root().join("testdata/logs/wordpress");
    let out = run(banhammer().arg("regex").arg(&log).arg("wordpress"))?;
    assert!(out.contains("Running tests"), "{out}");
    let lines = out
        .lines()
        .find(|l| l.starts_with("Lines: "))
        .unwrap_or_default();
    assert!(lines.contains(" matched"), "{out}");
    assert!(
        !lines.contains(" 0 matched"),
        "the demo log must show matches: {lines}"
    );
    Ok(())
}

#[test]
fn same_failures_as_fail2ban_regex_on_a_generated_log() -> anyhow::Result<()> {
    if !have_fail2ban_regex() {
        return Ok(());
    }
    let tmp = tempfile::tempdir()?;
    let Some(log) = generated_log(tmp.path(), 20_000)? else {
        return Ok(());
    };
    let f2b_dir = fail2ban_dir_with_recipe(tmp.path())?;
    for filter in ["wordpress", "sshd"] {
        let theirs = run(Command::new("fail2ban-regex")
            .arg("-c")
            .arg(&f2b_dir)
            .args(["-o", "<ip> <time>"])
            .arg(&log)
            .arg(filter))?;
        let ours = run(banhammer()
            .arg("regex")
            .arg("-c")
            .arg(&f2b_dir)
            .args(["-o", "<ip> <time>"])
            .arg(&log)
            .arg(filter))?;
        assert!(
            theirs.lines().count() > 100,
            "{filter}: the reference found too little"
        );
        if ours != theirs {
            let diff: Vec<String> = ours
                .lines()
                .zip(theirs.lines())
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .take(5)
                .map(|(i, (a, b))| format!("line {}: ours {a:?} theirs {b:?}", i + 1))
                .collect();
            panic!(
                "{filter}: {} lines vs fail2ban-regex's {}; first differences:\n{}",
                ours.lines().count(),
                theirs.lines().count(),
                diff.join("\n")
            );
        }
    }
    Ok(())
}

/// The whole report, section by section, as fail2ban-regex prints it (timing aside).
#[test]
fn same_report_as_fail2ban_regex_on_the_sshd_corpus() -> anyhow::Result<()> {
    if !have_fail2ban_regex() {
        return Ok(());
    }
    let Some(tests) = env::fail2ban_tests_dir() else {
        env::require("fail2ban's sample logs", false);
        return Ok(());
    };
    let log = tests.join("files/logs/sshd");
    let strip = |s: String| -> String {
        s.lines()
            .filter(|l| !l.starts_with("[processed in"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let theirs = strip(run(Command::new("fail2ban-regex").arg(&log).arg("sshd"))?);
    let ours = strip(run(banhammer()
        .arg("regex")
        .args(["-c", "/etc/fail2ban"])
        .arg(&log)
        .arg("sshd"))?);
    pretty_assert(&ours, &theirs);
    Ok(())
}

fn pretty_assert(ours: &str, theirs: &str) {
    if ours != theirs {
        let mut msg = String::new();
        for (i, (a, b)) in ours.lines().zip(theirs.lines()).enumerate() {
            if a != b {
                msg.push_str(&format!("line {}:\n  ours:   {a}\n  theirs: {b}\n", i + 1));
            }
        }
        panic!(
            "reports differ ({} vs {} lines):\n{msg}",
            ours.lines().count(),
            theirs.lines().count()
        );
    }
}

#[test]
fn bad_filter_argument_is_a_clear_error() -> anyhow::Result<()> {
    let out = banhammer()
        .args(["regex", "some line", "no-such-filter[mode=x"])
        .output()?;
    assert_eq!(out.status.code(), Some(255));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("ERROR: "), "{err}");
    Ok(())
}

/// Binary garbage, invalid UTF-8, NULs and huge lines: scanned without a crash, every
/// non-comment line counted.
#[test]
fn garbage_input_never_crashes() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join("garbage.log");
    let mut data: Vec<u8> = Vec::new();
    // A deterministic byte soup (xorshift), cut into lines.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..5_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 200) as usize;
        for j in 0..len {
            let b = (x >> (j % 56)) as u8;
            data.push(if b == b'\n' { b'x' } else { b });
        }
        if i % 1000 == 0 {
            data.extend(std::iter::repeat_n(b'A', 100_000));
        }
        data.extend_from_slice(b"\xff\xfe Aug 14 11:58:01 host sshd[1]: Failed password for \xc3 from 192.0.2.1 port 1 ssh2");
        data.push(b'\n');
    }
    std::fs::write(&path, &data)?;
    for filter in ["sshd", "wordpress"] {
        let out = banhammer().arg("regex").arg(&path).arg(filter).output()?;
        assert!(
            out.status.success(),
            "{filter}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Lines: "), "{filter}: {text}");
    }
    Ok(())
}

/// `--json` carries the same counts as the text report, in the documented shape.
#[test]
fn json_report_matches_text_report() -> anyhow::Result<()> {
    let log = repo_root().join("testdata/logs/sshd");
    let text = run(banhammer()
        .arg("regex")
        .arg(&log)
        .arg("sshd[mode=aggressive]"))?;
    let json: serde_json::Value = serde_json::from_str(&run(banhammer()
        .args(["regex", "--json", "--print-all-matched"])
        .arg(&log)
        .arg("sshd[mode=aggressive]"))?)?;
    let lines = &json["lines"];
    let expected = format!(
        "Lines: {} lines, {} ignored, {} matched, {} missed",
        lines["total"], lines["ignored"], lines["matched"], lines["missed"]
    );
    assert!(
        text.contains(&expected),
        "text report lacks {expected:?}:\n{text}"
    );
    assert_eq!(json["filter"]["kind"], "filter");
    assert_eq!(json["filter_options"]["mode"], "aggressive");
    let hits: u64 = json["failregex"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["hits"].as_u64().unwrap_or(0))
        .sum();
    assert!(text.contains(&format!("Failregex: {hits} total")), "{text}");
    let failures = json["failures"].as_array().map_or(0, Vec::len);
    assert!(failures > 0 && json["matched_lines"].as_array().map_or(0, Vec::len) > 0);
    Ok(())
}
