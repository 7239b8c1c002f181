//! `ignorecommand`: a program that decides whether a failing address is ignored (exit 0 =
//! ignore, 1 = not), run as fail2ban runs it. The key is never interpolated into the
//! script as text: it is passed as `$1` and `<ip>` becomes `"$1"`, so no log text can
//! reach the shell as code.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use banhammer_core::jail::FailureKey;

use crate::warning;

/// Longest an ignorecommand may run.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the command says `key` is ignored. A command that fails to run or times out
/// says "not ignored" (and is logged), as in fail2ban.
pub fn ignored(command: &str, key: &FailureKey) -> bool {
    let script = command.replace("<ip>", "\"$1\"");
    let family = match key {
        FailureKey::Ip(std::net::IpAddr::V6(_)) => "inet6",
        _ => "inet4",
    };
    let script = script.replace("<family>", family);
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(&script)
        .arg("banhammer-ignorecommand")
        .arg(key.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            warning!("filter", "ignorecommand {command:?}: {e}");
            return false;
        }
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return match status.code() {
                    Some(0) => true,
                    Some(1) => false,
                    other => {
                        warning!(
                            "filter",
                            "ignorecommand {command:?} for {key}: exit {other:?} (expected 0 or 1)"
                        );
                        false
                    }
                };
            }
            Ok(None) if started.elapsed() < TIMEOUT => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                warning!("filter", "ignorecommand {command:?} for {key}: timed out");
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_decides_and_the_key_is_data() {
        let ip = FailureKey::parse("192.0.2.1");
        assert!(ignored("test <ip> = 192.0.2.1", &ip));
        assert!(!ignored("test <ip> = 192.0.2.2", &ip));
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pwned");
        let evil = FailureKey::parse(&format!("$(touch {})", marker.display()));
        assert!(!ignored("test <ip> = x", &evil));
        assert!(!marker.exists());
    }
}
