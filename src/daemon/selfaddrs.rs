//! The host's own addresses for `ignoreself`, found as fail2ban finds them: what the
//! names `localhost`, the host name and its FQDN resolve to. (Not all of 127.0.0.0/8:
//! only the addresses those names give.)

use std::net::IpAddr;

/// The own addresses.
pub fn own_addresses() -> Vec<IpAddr> {
    let mut names = vec!["localhost".to_string()];
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            names.push(h.to_string());
        }
    }
    let mut out: Vec<IpAddr> = names
        .iter()
        .flat_map(|n| crate::dns::resolve_all(n))
        .filter_map(|a| a.parse().ok())
        .collect();
    out.push(IpAddr::from([127, 0, 0, 1]));
    out.push(IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
    out.sort();
    out.dedup();
    out
}
