//! What the tests need from the machine, and the rule for when it is missing: skip loudly
//! on a developer's machine, fail under `CI=true`.

use std::path::PathBuf;

/// Is this a CI run (where nothing may be skipped)?
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skip (return false) with a loud message, or panic under CI.
pub fn require(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    assert!(
        !in_ci(),
        "{what} is missing, and CI=true: scripts/test installs it as root"
    );
    eprintln!("\n!!! SKIPPED: {what} is missing (run scripts/test as root to install it) !!!\n");
    false
}

/// The fail2ban package's Python tree (filters' test corpus), if installed.
pub fn fail2ban_tests_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("FAIL2BAN_TESTS_DIR") {
        return Some(PathBuf::from(dir));
    }
    let dir = PathBuf::from("/usr/lib/python3/dist-packages/fail2ban/tests");
    dir.join("files/logs").is_dir().then_some(dir)
}

/// fail2ban's installed config tree, if any.
pub fn fail2ban_config_dir() -> Option<PathBuf> {
    let dir = PathBuf::from("/etc/fail2ban");
    dir.join("filter.d").is_dir().then_some(dir)
}

pub fn have_command(name: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {name} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn banhammer() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_banhammer"))
}
