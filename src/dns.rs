//! Name resolution for hosts that filters report as DNS names (`usedns = yes|warn`), for
//! `ignoreip` names and for `ignoreself`.
//!
//! Receives a host name as it appeared in a log or a config; emits its addresses, or none.
//! Only a strict DNS host name is ever given to the system resolver
//! ([`banhammer_core::jail::is_host_name`]: LDH labels, a last label that is not a number),
//! so log text never reaches it as anything else, and a partial or numeric-looking address
//! (`6.6`, `127.1`, `0x7f000001`), which `getaddrinfo` would turn into some other address
//! without asking any server, is never "resolved". What comes back is typed addresses,
//! printed by Rust: canonical text only.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use banhammer_core::jail::normalize_ip;

pub use banhammer_core::jail::is_host_name;

/// Answers remembered at most (fail2ban's DNS cache keeps 1,000).
const CACHE_NAMES: usize = 10_000;
/// How long an answer is remembered, found or not (fail2ban: 5 minutes).
const CACHE_TIME: Duration = Duration::from_secs(300);

/// The process's answers, by name: a name seen again within [`CACHE_TIME`] is not looked
/// up again — above all the names that do not resolve, which a log writer can repeat to
/// make a jail wait for the resolver.
static CACHE: Mutex<Option<Answers>> = Mutex::new(None);

/// Name → (its addresses, until when the answer holds).
type Answers = HashMap<String, (Vec<IpAddr>, Instant)>;

/// Resolve `name` to all its addresses (system resolver), IPv4-mapped ones as IPv4,
/// deduplicated, in the resolver's order; empty when the name does not resolve or may not
/// be resolved ([`is_host_name`]). Answers are cached for five minutes.
pub fn resolve(name: &str) -> Vec<IpAddr> {
    resolve_cached(name, Instant::now(), |n| {
        (n, 0u16)
            .to_socket_addrs()
            .map(|addrs| addrs.map(|a| a.ip()).collect())
            .unwrap_or_default()
    })
}

/// [`resolve`] at `now` with the lookup supplied (tests count what reaches it).
fn resolve_cached(
    name: &str,
    now: Instant,
    lookup: impl FnOnce(&str) -> Vec<IpAddr>,
) -> Vec<IpAddr> {
    if !is_host_name(name) {
        return Vec::new();
    }
    if let Ok(cache) = CACHE.lock() {
        if let Some((addrs, until)) = cache.as_ref().and_then(|c| c.get(name)) {
            if now < *until {
                return addrs.clone();
            }
        }
    }
    let addrs = resolve_with(name, lookup);
    if let Ok(mut cache) = CACHE.lock() {
        let cache = cache.get_or_insert_with(HashMap::new);
        if cache.len() >= CACHE_NAMES {
            cache.retain(|_, (_, until)| now < *until);
        }
        if cache.len() >= CACHE_NAMES {
            // Still full of live answers (a flood of names): start over rather than grow.
            cache.clear();
        }
        cache.insert(name.to_string(), (addrs.clone(), now + CACHE_TIME));
    }
    addrs
}

/// [`resolve`] with the lookup supplied (tests count what reaches it).
pub fn resolve_with(name: &str, lookup: impl FnOnce(&str) -> Vec<IpAddr>) -> Vec<IpAddr> {
    if !is_host_name(name) {
        return Vec::new();
    }
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in lookup(name).into_iter().map(normalize_ip) {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// [`resolve`], the addresses as text.
pub fn resolve_all(name: &str) -> Vec<String> {
    resolve(name).iter().map(IpAddr::to_string).collect()
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

    /// The finding's sibling at the resolver: `getaddrinfo("6.6")` answers 6.0.0.6 without
    /// any lookup (inet_aton), so partial and numeric-looking addresses never reach it.
    #[test]
    fn usedns_never_resolves_a_partial_address() {
        for text in [
            "6.6",
            "127.1",
            "1.2.3",
            "2130706433",
            "0x7f000001",
            "0x7f.1",
            "1.2.3.0x4",
            "001.002.003.013",
            "1.2.3.256",
            "\u{661}.2.3.4",
        ] {
            let mut asked = Vec::new();
            let got = resolve_with(text, |n| {
                asked.push(n.to_string());
                vec![IpAddr::from([6, 0, 0, 6])]
            });
            assert!(
                got.is_empty() && asked.is_empty(),
                "{text:?} reached the resolver"
            );
            // and the real resolver agrees (nothing leaves this process for these)
            assert!(resolve(text).is_empty(), "{text:?}");
        }
        let got = resolve_with("host.example", |_| {
            vec![
                IpAddr::from([192, 0, 2, 7]),
                "::ffff:192.0.2.7"
                    .parse()
                    .unwrap_or(IpAddr::from([0, 0, 0, 0])),
                IpAddr::from([192, 0, 2, 8]),
            ]
        });
        assert_eq!(
            got,
            [IpAddr::from([192, 0, 2, 7]), IpAddr::from([192, 0, 2, 8])]
        );
    }

    /// A sibling of the stalled loop, in the jail's reader: a name that does not resolve,
    /// written again and again, made every failure wait for the resolver. Answers (found
    /// or not) are remembered for five minutes.
    #[test]
    fn a_name_seen_again_is_not_looked_up_again() {
        let t0 = Instant::now();
        let mut asked = 0;
        for _ in 0..100 {
            let got = resolve_cached("nxdomain-cache-test.invalid", t0, |_| {
                asked += 1;
                Vec::new()
            });
            assert!(got.is_empty());
        }
        assert_eq!(asked, 1);
        let later = t0 + CACHE_TIME + Duration::from_secs(1);
        resolve_cached("nxdomain-cache-test.invalid", later, |_| {
            asked += 1;
            Vec::new()
        });
        assert_eq!(asked, 2, "an old answer is asked again");
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
