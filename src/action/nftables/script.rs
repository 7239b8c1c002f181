//! The text that reaches `nft`: every value is validated here and formatted by us, so
//! nothing from a log or a config file is ever passed through unchecked. Pure: builds
//! command strings, runs nothing.
//!
//! Layout (the same as our `config/action.d/nftables.conf`):
//! ```text
//! table inet <table>
//!   chain <chain> { type filter hook input priority -1; policy accept; }
//!     meta l4proto { tcp } th dport { 80, 443 } ip  saddr @addr-set-<name>  reject comment "banhammer:<jail>"
//!     meta l4proto { tcp } th dport { 80, 443 } ip6 saddr @addr6-set-<name> reject comment "banhammer:<jail>"
//!     … the same two for @net-set-<name> / @net6-set-<name>
//!   set addr-set-<name>  { type ipv4_addr; flags timeout; }
//!   set addr6-set-<name> { type ipv6_addr; flags timeout; }
//!   set net-set-<name>   { type ipv4_addr; flags interval, timeout; }
//!   set net6-set-<name>  { type ipv6_addr; flags interval, timeout; }
//! ```
//! Single addresses go to the `addr` sets (hash sets: cheap, no overlap rules); prefixes
//! (subnet bans) go to the `net` sets, which need `interval`, and where the kernel refuses
//! a prefix overlapping another one.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use banhammer_core::jail::IpNet;

use super::{NftError, NftJailSpec};

/// The table family: one `inet` table serves IPv4 and IPv6.
pub(crate) const FAMILY: &str = "inet";

/// Longest timeout we hand to the kernel (nft 1.0.6 refuses much larger values); a longer
/// ban gets this timeout, about 27 years, which is permanent in practice.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(10_000 * 86_400);

/// Longest jail/set name we accept (nft allows 255 bytes for a set name incl. prefix).
const MAX_NAME: usize = 64;

/// Prefix of the comment that marks a rule as belonging to a jail.
const COMMENT_PREFIX: &str = "banhammer:";

fn invalid(what: &'static str, value: &str, expected: &'static str) -> NftError {
    NftError::Invalid {
        what,
        value: value.to_string(),
        expected,
    }
}

/// A jail name, or the `name` argument that names its sets: letters, digits, `_`, `-`.
pub(crate) fn check_name(what: &'static str, value: &str) -> Result<(), NftError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_NAME
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(what, value, "1-64 of letters, digits, '_' and '-'"))
    }
}

/// A table or chain name: an nft identifier, which must start with a letter or `_`.
pub(crate) fn check_identifier(what: &'static str, value: &str) -> Result<(), NftError> {
    let first_ok = value
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if first_ok && check_name(what, value).is_ok() {
        Ok(())
    } else {
        Err(invalid(
            what,
            value,
            "an nft identifier: a letter or '_', then letters, digits, '_' and '-' (at most 64)",
        ))
    }
}

/// fail2ban's `port` list (`http,https`, `22`, `1000:2000`, `1000-2000`) as the inside of an
/// nft set: `http, https`, `22`, `1000-2000`.
pub(crate) fn port_list(value: &str) -> Result<String, NftError> {
    const EXPECTED: &str =
        "a comma list of ports (0-65535), ranges (1000:2000 or 1000-2000) or service names";
    let bad = || invalid("port", value, EXPECTED);
    let mut out = String::new();
    for item in value.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(bad());
        }
        let text = if item.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()) {
            // A service name from /etc/services (nft resolves it): `http`, `http-alt`, `pop3s`.
            let ok = item.len() <= 32
                && item
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(bad());
            }
            item.to_ascii_lowercase()
        } else {
            let port = |s: &str| -> Result<u16, NftError> {
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                s.parse::<u16>().map_err(|_| bad())
            };
            match item.split_once([':', '-']) {
                Some((a, b)) => {
                    let (a, b) = (port(a.trim())?, port(b.trim())?);
                    if a > b {
                        return Err(bad());
                    }
                    format!("{a}-{b}")
                }
                None => port(item)?.to_string(),
            }
        };
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(&text);
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// fail2ban's `protocol` (`tcp`, `tcp,udp`) as protocol names; `all` means any protocol
/// (allports only). Returns an empty list for `all`.
pub(crate) fn protocol_list(value: &str) -> Result<Vec<String>, NftError> {
    let bad = || {
        invalid(
            "protocol",
            value,
            "a comma list of protocol names (tcp, udp, sctp, dccp, udplite) or `all`",
        )
    };
    let mut out = Vec::new();
    for item in value.split(',') {
        let item = item.trim().to_ascii_lowercase();
        let ok = item.len() <= 16
            && item.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && item.bytes().all(|b| b.is_ascii_alphanumeric());
        if !ok {
            return Err(bad());
        }
        if item == "all" {
            if value.split(',').count() != 1 {
                return Err(bad());
            }
            return Ok(Vec::new());
        }
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(out)
}

/// The verdict of the jail's rules: `reject` (default), `drop`, or `reject with …`
/// (`reject with icmpx port-unreachable`, `reject with tcp reset`).
pub(crate) fn blocktype(value: &str) -> Result<String, NftError> {
    let bad = || {
        invalid(
            "blocktype",
            value,
            "`reject`, `drop` or `reject with <lowercase words>`",
        )
    };
    let words: Vec<&str> = value.split_whitespace().collect();
    let word_ok = |w: &&str| {
        w.len() <= 32
            && w.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if words.is_empty() || !words.iter().all(word_ok) {
        return Err(bad());
    }
    match words.as_slice() {
        ["drop"] | ["reject"] => {}
        ["reject", "with", rest @ ..] if !rest.is_empty() && rest.len() <= 3 => {}
        _ => return Err(bad()),
    }
    Ok(words.join(" "))
}

/// One of the four sets of a jail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum SetKind {
    Addr4,
    Addr6,
    Net4,
    Net6,
}

impl SetKind {
    pub(crate) const ALL: [SetKind; 4] =
        [SetKind::Addr4, SetKind::Addr6, SetKind::Net4, SetKind::Net6];

    /// The set that holds `net`: single addresses in the hash sets, prefixes in the interval sets.
    pub(crate) fn of(net: &IpNet) -> SetKind {
        match (net.addr().is_ipv4(), net.is_single()) {
            (true, true) => SetKind::Addr4,
            (false, true) => SetKind::Addr6,
            (true, false) => SetKind::Net4,
            (false, false) => SetKind::Net6,
        }
    }

    pub(crate) fn set_name(self, stem: &str) -> String {
        let prefix = match self {
            SetKind::Addr4 => "addr-set-",
            SetKind::Addr6 => "addr6-set-",
            SetKind::Net4 => "net-set-",
            SetKind::Net6 => "net6-set-",
        };
        format!("{prefix}{stem}")
    }

    fn definition(self) -> &'static str {
        match self {
            SetKind::Addr4 => "{ type ipv4_addr; flags timeout; }",
            SetKind::Addr6 => "{ type ipv6_addr; flags timeout; }",
            SetKind::Net4 => "{ type ipv4_addr; flags interval, timeout; }",
            SetKind::Net6 => "{ type ipv6_addr; flags interval, timeout; }",
        }
    }

    fn addr_family(self) -> &'static str {
        match self {
            SetKind::Addr4 | SetKind::Net4 => "ip",
            SetKind::Addr6 | SetKind::Net6 => "ip6",
        }
    }
}

/// A jail's spec after validation: everything here is safe to put in a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) jail: String,
    /// Names the sets (`name` argument; the jail name by default).
    pub(crate) stem: String,
    pub(crate) chain: String,
    /// `meta l4proto { tcp } th dport { 80, 443 }` or `meta l4proto { tcp }` or empty.
    matcher: String,
    blocktype: String,
}

impl Layout {
    pub(crate) fn new(spec: &NftJailSpec) -> Result<Layout, NftError> {
        check_name("jail name", &spec.jail)?;
        let stem = spec.name.clone().unwrap_or_else(|| spec.jail.clone());
        check_name("name", &stem)?;
        check_identifier("chain", &spec.chain)?;
        let protocols = protocol_list(&spec.protocol)?;
        let l4 = if protocols.is_empty() {
            String::new()
        } else {
            format!("meta l4proto {{ {} }}", protocols.join(", "))
        };
        let matcher = match &spec.ports {
            Some(ports) => {
                let ports = port_list(ports)?;
                if l4.is_empty() {
                    return Err(invalid(
                        "protocol",
                        &spec.protocol,
                        "protocol names (a port list needs a protocol; `all` is for allports)",
                    ));
                }
                format!("{l4} th dport {{ {ports} }}")
            }
            None => l4,
        };
        Ok(Layout {
            jail: spec.jail.clone(),
            stem,
            chain: spec.chain.clone(),
            matcher,
            blocktype: blocktype(&spec.blocktype)?,
        })
    }

    pub(crate) fn comment(&self) -> String {
        format!("{COMMENT_PREFIX}{}", self.jail)
    }

    pub(crate) fn set_name(&self, kind: SetKind) -> String {
        kind.set_name(&self.stem)
    }

    /// Table, chain and sets (all `add`, so idempotent), then the removal of this jail's
    /// old rules (`old_rules`: their handles in its chain) and its rules as they are now:
    /// one transaction, so the jail is never without its rules and never has them twice.
    pub(crate) fn start_commands(&self, table: &str, old_rules: &[(String, u64)]) -> Vec<String> {
        let mut cmds = vec![
            format!("add table {FAMILY} {table}"),
            format!(
                "add chain {FAMILY} {table} {} {{ type filter hook input priority -1; policy accept; }}",
                self.chain
            ),
        ];
        for kind in SetKind::ALL {
            cmds.push(format!(
                "add set {FAMILY} {table} {} {}",
                self.set_name(kind),
                kind.definition()
            ));
        }
        for (chain, handle) in old_rules {
            cmds.push(format!(
                "delete rule {FAMILY} {table} {chain} handle {handle}"
            ));
        }
        for kind in SetKind::ALL {
            let mut rule = format!("add rule {FAMILY} {table} {} ", self.chain);
            if !self.matcher.is_empty() {
                rule.push_str(&self.matcher);
                rule.push(' ');
            }
            let _ = write!(
                rule,
                "{} saddr @{} {} comment \"{}\"",
                kind.addr_family(),
                self.set_name(kind),
                self.blocktype,
                self.comment()
            );
            cmds.push(rule);
        }
        cmds
    }

    /// Remove the jail's rules and sets (`rules`: their handles), one transaction.
    pub(crate) fn stop_commands(&self, table: &str, rules: &[(String, u64)]) -> Vec<String> {
        let mut cmds: Vec<String> = rules
            .iter()
            .map(|(chain, handle)| format!("delete rule {FAMILY} {table} {chain} handle {handle}"))
            .collect();
        for kind in SetKind::ALL {
            cmds.push(format!(
                "delete set {FAMILY} {table} {}",
                self.set_name(kind)
            ));
        }
        cmds
    }

    pub(crate) fn flush_commands(&self, table: &str) -> Vec<String> {
        SetKind::ALL
            .iter()
            .map(|&kind| format!("flush set {FAMILY} {table} {}", self.set_name(kind)))
            .collect()
    }
}

/// The jail a rule comment marks the rule as ours for, if it is one of ours.
pub(crate) fn rule_jail(comment: &str) -> Option<&str> {
    comment.strip_prefix(COMMENT_PREFIX)
}

/// Whether a rule comment marks a rule of `jail`.
pub(crate) fn is_rule_of(comment: &str, jail: &str) -> bool {
    comment.strip_prefix(COMMENT_PREFIX) == Some(jail)
}

/// `1d2h3m4s500ms`, nft's duration syntax; capped at [`MAX_TIMEOUT`]. `None` for zero.
pub(crate) fn nft_duration(d: Duration) -> Option<String> {
    let ms = d.min(MAX_TIMEOUT).as_millis();
    if ms == 0 {
        return None;
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        let n = rest / size;
        rest %= size;
        if n > 0 {
            let _ = write!(out, "{n}{unit}");
        }
    }
    Some(out)
}

/// An element as nft reads it: the address (prefixes with their length), formatted by us
/// from a parsed value.
pub(crate) fn element(net: &IpNet) -> String {
    match net.addr() {
        IpAddr::V4(a) if net.is_single() => a.to_string(),
        IpAddr::V6(a) if net.is_single() => a.to_string(),
        a => format!("{a}/{}", net.prefix()),
    }
}

/// The commands that make `touched` absent from `set` and then `bans` present with their
/// timeouts, in one transaction, whatever was there before.
///
/// nft 1.0.6 (Debian 12) has no `destroy element`, and `delete element` of an absent
/// element fails the whole transaction. So every touched element is first added without
/// timeout (`add` is idempotent), then deleted (now it surely exists), then the bans are
/// added with their timeouts. The add+delete pair also resets the timeout of an element
/// that was already banned (a plain `add` would keep the old one).
pub(crate) fn element_commands(
    table: &str,
    set: &str,
    touched: &[IpNet],
    bans: &[(IpNet, Option<Duration>)],
) -> Vec<String> {
    let mut cmds = Vec::with_capacity(3);
    if !touched.is_empty() {
        let list = join(touched.iter().map(element));
        cmds.push(format!("add element {FAMILY} {table} {set} {{ {list} }}"));
        cmds.push(format!(
            "delete element {FAMILY} {table} {set} {{ {list} }}"
        ));
    }
    if !bans.is_empty() {
        let list = join(
            bans.iter()
                .map(|(net, timeout)| match timeout.and_then(nft_duration) {
                    Some(t) => format!("{} timeout {t}", element(net)),
                    None => element(net),
                }),
        );
        cmds.push(format!("add element {FAMILY} {table} {set} {{ {list} }}"));
    }
    cmds
}

fn join(items: impl Iterator<Item = String>) -> String {
    let mut out = String::new();
    for item in items {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(&item);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec(ports: Option<&str>, protocol: &str, blocktype: &str) -> NftJailSpec {
        NftJailSpec {
            jail: "wordpress".into(),
            name: None,
            ports: ports.map(String::from),
            protocol: protocol.into(),
            chain: "input".into(),
            blocktype: blocktype.into(),
        }
    }

    #[test]
    fn ports_are_normalised_or_refused() {
        assert_eq!(port_list("http,https").unwrap(), "http, https");
        assert_eq!(port_list(" 80 , 443 ").unwrap(), "80, 443");
        assert_eq!(port_list("1000:2000,22").unwrap(), "1000-2000, 22");
        assert_eq!(port_list("0:65535").unwrap(), "0-65535");
        assert_eq!(port_list("http-alt").unwrap(), "http-alt");
        for bad in [
            "",
            "80,",
            "65536",
            "2000:1000",
            "80;drop",
            "80 443",
            "$(id)",
            "1-2-3",
            "-1",
            "ssh }",
        ] {
            let err = port_list(bad).unwrap_err().to_string();
            assert!(err.contains("port"), "{bad}: {err}");
        }
    }

    #[test]
    fn names_and_identifiers() {
        assert!(check_name("jail name", "nginx-http-auth").is_ok());
        assert!(check_name("jail name", "3proxy").is_ok());
        assert!(check_identifier("chain", "3proxy").is_err());
        for bad in ["", "a b", "a;b", "a\"b", "ä", "a.b", &"x".repeat(65)] {
            let err = check_name("jail name", bad).unwrap_err().to_string();
            assert!(err.contains("jail name"), "{err}");
        }
    }

    #[test]
    fn blocktypes() {
        assert_eq!(blocktype("reject").unwrap(), "reject");
        assert_eq!(blocktype("drop").unwrap(), "drop");
        assert_eq!(
            blocktype("reject with icmpx port-unreachable").unwrap(),
            "reject with icmpx port-unreachable"
        );
        assert_eq!(
            blocktype("reject with tcp reset").unwrap(),
            "reject with tcp reset"
        );
        for bad in [
            "",
            "accept",
            "REJECT --reject-with icmp-port-unreachable",
            "drop; flush ruleset",
            "reject with",
        ] {
            assert!(blocktype(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rules_follow_the_action_d_layout() {
        let layout = Layout::new(&spec(Some("80,443"), "tcp", "reject")).unwrap();
        let cmds = layout.start_commands("banhammer", &[("input".into(), 7)]);
        assert_eq!(cmds[0], "add table inet banhammer");
        assert!(cmds.contains(
            &"add set inet banhammer addr-set-wordpress { type ipv4_addr; flags timeout; }"
                .to_string()
        ));
        assert!(cmds.contains(&"delete rule inet banhammer input handle 7".to_string()));
        assert!(cmds.contains(&"add rule inet banhammer input meta l4proto { tcp } th dport { 80, 443 } ip saddr @addr-set-wordpress reject comment \"banhammer:wordpress\"".to_string()));
        assert!(cmds.contains(&"add rule inet banhammer input meta l4proto { tcp } th dport { 80, 443 } ip6 saddr @addr6-set-wordpress reject comment \"banhammer:wordpress\"".to_string()));

        let all = Layout::new(&spec(None, "all", "drop")).unwrap();
        let cmds = all.start_commands("banhammer", &[]);
        assert!(cmds.contains(&"add rule inet banhammer input ip saddr @addr-set-wordpress drop comment \"banhammer:wordpress\"".to_string()));
        assert!(Layout::new(&spec(Some("80"), "all", "drop")).is_err());
        assert!(Layout::new(&spec(Some("80"), "tcp;", "drop")).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(
            nft_duration(Duration::from_millis(93_784_500)).unwrap(),
            "1d2h3m4s500ms"
        );
        assert_eq!(nft_duration(Duration::from_secs(600)).unwrap(), "10m");
        assert_eq!(
            nft_duration(Duration::from_secs(u64::MAX)).unwrap(),
            "10000d"
        );
        assert_eq!(nft_duration(Duration::from_micros(10)), None);
    }

    #[test]
    fn elements_are_formatted_from_parsed_values() {
        let net: IpNet = "10.1.2.3/16".parse().unwrap();
        assert_eq!(element(&net), "10.1.0.0/16");
        let v6: IpNet = "::ffff:1.2.3.4".parse().unwrap();
        assert_eq!(element(&v6), "1.2.3.4");
        assert_eq!(SetKind::of(&v6), SetKind::Addr4);
        let cmds = element_commands("t", "s", &[net], &[(net, Some(Duration::from_secs(1)))]);
        assert_eq!(
            cmds,
            [
                "add element inet t s { 10.1.0.0/16 }",
                "delete element inet t s { 10.1.0.0/16 }",
                "add element inet t s { 10.1.0.0/16 timeout 1s }",
            ]
        );
    }
}
