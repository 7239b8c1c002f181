//! Name resolution for hosts that filters report as DNS names (`usedns = yes|warn`).
//!
//! Receives a host name as it appeared in a log; emits its first address, or None.
//! Names are validated first, so log text never reaches the resolver as anything but a
//! plain host name.

use std::net::ToSocketAddrs;

/// Is `name` a plausible DNS host name (letters, digits, `-`, `.`, `_`; 1..=253 chars)?
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// Resolve `name` to all its addresses (system resolver), deduplicated, in the
/// resolver's order; empty when the name does not resolve.
pub fn resolve_all(name: &str) -> Vec<String> {
    if !is_host_name(name) {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    if let Ok(addrs) = (name, 0u16).to_socket_addrs() {
        for a in addrs {
            let ip = a.ip().to_string();
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_anything_but_host_names() {
        assert!(is_host_name("mail.example.com"));
        assert!(!is_host_name("a b"));
        assert!(!is_host_name("$(id)"));
        assert!(!is_host_name(""));
    }

    #[test]
    fn resolves_localhost() {
        // /etc/hosts answers this without any network.
        let ips = resolve_all("localhost");
        assert!(
            ips.iter().any(|ip| ip == "127.0.0.1" || ip == "::1"),
            "{ips:?}"
        );
        assert!(resolve_all("$(id)").is_empty());
    }
}
