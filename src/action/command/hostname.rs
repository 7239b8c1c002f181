//! This machine's names for `<fq-hostname>` and `<sh-hostname>` (fail2ban:
//! `socket.getfqdn()` and `socket.gethostname()`). Owns a process-wide cache, read once:
//! the kernel's host name, made fully qualified from `/etc/hosts` (the first line naming
//! it), which is where `getfqdn` finds it on a usual Debian setup. No DNS query: a slow
//! resolver must not stall the first action that mentions these tags.

use std::sync::OnceLock;

struct Names {
    fqdn: String,
    short: String,
}

fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let host = if host.is_empty() {
            "localhost".to_string()
        } else {
            host
        };
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let fqdn = qualify(&host, &hosts);
        let short = host.split('.').next().unwrap_or(&host).to_string();
        Names { fqdn, short }
    })
}

/// The fully qualified form of `host` per an `/etc/hosts` text: the canonical name of the
/// first line listing `host`, if it has a dot; else the first dotted alias; else `host`.
pub(crate) fn qualify(host: &str, hosts: &str) -> String {
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or("");
        let names: Vec<&str> = line.split_whitespace().skip(1).collect();
        if names.contains(&host) {
            if let Some(n) = names.iter().find(|n| n.contains('.')) {
                return (*n).to_string();
            }
        }
    }
    host.to_string()
}

/// `<fq-hostname>`.
pub(crate) fn fqdn() -> &'static str {
    &names().fqdn
}

/// `<sh-hostname>`.
pub(crate) fn short() -> &'static str {
    &names().short
}
