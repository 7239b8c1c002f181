//! Our table as the kernel has it ([`TableState`]), and the older of its two readers:
//! `nft -j list table` output parsed into it (the netlink reader, `netlink`, builds the
//! same value straight from the kernel). Receives nft's JSON; emits the state. Pure.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use banhammer_core::jail::IpNet;

use super::{script, NftError};

/// Our table as the kernel has it: what the backend decides by when it starts or stops a
/// jail, lists bans, takes the inventory or prunes what no jail owns.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TableState {
    /// The table exists (everything else is empty when it does not).
    pub exists: bool,
    /// (comment, chain, handle) of every rule of the table; the comment is empty for a
    /// rule without one.
    pub rules: Vec<(String, String, u64)>,
    /// Every named set (not the anonymous sets of rules, not maps) → its elements that
    /// are single addresses or prefixes, with the time left (whole seconds, truncated, as
    /// nft reports it; `None`: no timeout). Sets of other key types list no elements, nor
    /// do, inside the backend, sets whose elements the netlink read was not asked for.
    pub sets: BTreeMap<String, Vec<(IpNet, Option<Duration>)>>,
}

impl TableState {
    /// Reads `nft -j list table` output.
    pub(crate) fn parse(json: &serde_json::Value) -> Result<TableState, NftError> {
        let bad = |message: String| NftError::Output {
            command: "nft -j list table".to_string(),
            message,
        };
        let items = json
            .get("nftables")
            .and_then(|v| v.as_array())
            .ok_or_else(|| bad("no \"nftables\" array".to_string()))?;
        let mut state = TableState::default();
        for item in items {
            if item.get("table").is_some() {
                state.exists = true;
            } else if let Some(rule) = item.get("rule") {
                let comment = rule.get("comment").and_then(|c| c.as_str()).unwrap_or("");
                let chain = rule.get("chain").and_then(|c| c.as_str()).unwrap_or("");
                if let Some(handle) = rule.get("handle").and_then(|h| h.as_u64()) {
                    state
                        .rules
                        .push((comment.to_string(), chain.to_string(), handle));
                }
            } else if let Some(set) = item.get("set") {
                let Some(name) = set.get("name").and_then(|n| n.as_str()) else {
                    continue;
                };
                let mut elems = Vec::new();
                for elem in set
                    .get("elem")
                    .and_then(|e| e.as_array())
                    .into_iter()
                    .flatten()
                {
                    let (val, left) = match elem.get("elem") {
                        Some(inner) => (
                            inner.get("val").unwrap_or(&serde_json::Value::Null),
                            inner
                                .get("expires")
                                .or_else(|| inner.get("timeout"))
                                .and_then(|e| e.as_u64())
                                .map(Duration::from_secs),
                        ),
                        None => (elem, None),
                    };
                    match parse_value(val) {
                        Some(net) => elems.push((net, left)),
                        // Ranges and the like: not written by us; not a ban we report.
                        None => continue,
                    }
                }
                state.sets.insert(name.to_string(), elems);
            }
        }
        Ok(state)
    }

    /// The (chain, handle) of the rules of `jail` (found by their comment).
    pub(crate) fn rules_of(&self, jail: &str) -> Vec<(String, u64)> {
        self.rules
            .iter()
            .filter(|(comment, _, _)| script::is_rule_of(comment, jail))
            .map(|(_, chain, handle)| (chain.clone(), *handle))
            .collect()
    }
}

/// An element value: `"1.2.3.4"` or `{"prefix": {"addr": "10.0.0.0", "len": 8}}`.
fn parse_value(val: &serde_json::Value) -> Option<IpNet> {
    if let Some(text) = val.as_str() {
        return text.parse::<IpAddr>().ok().map(IpNet::host);
    }
    let prefix = val.get("prefix")?;
    let addr = prefix.get("addr")?.as_str()?.parse::<IpAddr>().ok()?;
    let len = u8::try_from(prefix.get("len")?.as_u64()?).ok()?;
    IpNet::new(addr, len).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_listed_elements() {
        let json: serde_json::Value = serde_json::from_str(
            r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "banhammer", "handle": 1}},
            {"set": {"family": "inet", "name": "addr-set-w", "table": "banhammer", "type": "ipv4_addr",
              "flags": ["timeout"], "elem": ["1.2.3.4", {"elem": {"val": "1.2.3.5", "timeout": 60, "expires": 59}}]}},
            {"set": {"family": "inet", "name": "net-set-w", "table": "banhammer", "type": "ipv4_addr",
              "flags": ["interval", "timeout"], "elem": [{"elem": {"val": {"prefix": {"addr": "10.1.0.0", "len": 16}}, "timeout": 40, "expires": 39}}]}},
            {"rule": {"family": "inet", "table": "banhammer", "chain": "input", "handle": 4, "comment": "banhammer:w", "expr": []}},
            {"rule": {"family": "inet", "table": "banhammer", "chain": "input", "handle": 5, "comment": "banhammer:w2", "expr": []}}
            ]}"#,
        )
        .unwrap();
        let state = TableState::parse(&json).unwrap();
        assert!(state.exists);
        assert_eq!(state.rules_of("w"), [("input".to_string(), 4)]);
        let addrs = &state.sets["addr-set-w"];
        assert_eq!(addrs[0], ("1.2.3.4".parse().unwrap(), None));
        assert_eq!(
            addrs[1],
            ("1.2.3.5".parse().unwrap(), Some(Duration::from_secs(59)))
        );
        assert_eq!(
            state.sets["net-set-w"][0],
            (
                "10.1.0.0/16".parse().unwrap(),
                Some(Duration::from_secs(39))
            )
        );
    }
}
