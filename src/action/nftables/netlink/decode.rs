//! nf_tables answers, decoded: the payloads of `NEWTABLE`, `NEWSET`, `NEWSETELEM`,
//! `NEWRULE` and `NEWGEN` messages become the few facts [`TableState`](super::TableState)
//! needs (names, set flags and key type, element keys with their flags and time left,
//! rule chain/handle/comment), and a set's elements become bans the way `nft -j` lists
//! them: the start/end pairs of an interval set folded back into prefixes. Pure; every
//! length is checked, unknown attributes are skipped, and a malformed payload is an
//! error, never a panic.
//!
//! Constants are the kernel's (`linux/netfilter/nf_tables.h`), nft's datatype numbers
//! (`datatype.h`: stored by nft as the set's key type) and libnftnl's rule userdata
//! (`udata.h`: a comment is a type-0 TLV, 1-byte type, 1-byte length, NUL-terminated).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use banhammer_core::jail::IpNet;

use super::wire::{self, WireError, HEADER_LEN, NFGEN_LEN};

/// `NFNL_SUBSYS_NFTABLES`, the high byte of every nf_tables message type.
const SUBSYS: u16 = 10 << 8;
pub(super) const MSG_NEWTABLE: u16 = SUBSYS;
pub(super) const MSG_GETTABLE: u16 = SUBSYS | 1;
pub(super) const MSG_NEWRULE: u16 = SUBSYS | 6;
pub(super) const MSG_GETRULE: u16 = SUBSYS | 7;
pub(super) const MSG_NEWSET: u16 = SUBSYS | 9;
pub(super) const MSG_GETSET: u16 = SUBSYS | 10;
pub(super) const MSG_NEWSETELEM: u16 = SUBSYS | 12;
pub(super) const MSG_GETSETELEM: u16 = SUBSYS | 13;
pub(super) const MSG_NEWGEN: u16 = SUBSYS | 15;
pub(super) const MSG_GETGEN: u16 = SUBSYS | 16;

/// `NFPROTO_INET`, the family of our table; `NFPROTO_UNSPEC` for the generation.
pub(super) const FAMILY_INET: u8 = 1;
pub(super) const FAMILY_UNSPEC: u8 = 0;

pub(super) const NFTA_TABLE_NAME: u16 = 1;
pub(super) const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_USERDATA: u16 = 7;
pub(super) const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
pub(super) const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
pub(super) const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
const NFTA_SET_ELEM_EXPIRATION: u16 = 5;
const NFTA_SET_ELEM_KEY_END: u16 = 10;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_GEN_ID: u16 = 1;

const NFT_SET_ANONYMOUS: u32 = 0x1;
const NFT_SET_INTERVAL: u32 = 0x4;
const NFT_SET_MAP: u32 = 0x8;
const NFT_SET_OBJECT: u32 = 0x40;
const NFT_SET_CONCAT: u32 = 0x80;
const NFT_SET_ELEM_INTERVAL_END: u32 = 0x1;
const NFT_SET_ELEM_CATCHALL: u32 = 0x2;

/// nft's `TYPE_IPADDR` and `TYPE_IP6ADDR`.
const TYPE_IPADDR: u32 = 7;
const TYPE_IP6ADDR: u32 = 8;

/// libnftnl's `NFTNL_UDATA_RULE_COMMENT`.
const UDATA_RULE_COMMENT: u8 = 0;

/// Where the attributes of a payload start in its message (for error offsets).
const ATTRS_AT: usize = HEADER_LEN + NFGEN_LEN;

/// The address family of a set's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    V4,
    V6,
}

impl Family {
    fn key_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    fn width(self) -> u32 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    fn max(self) -> u128 {
        match self {
            Family::V4 => u128::from(u32::MAX),
            Family::V6 => u128::MAX,
        }
    }

    fn key(self, bytes: &[u8]) -> Option<u128> {
        match self {
            Family::V4 => Some(u128::from(u32::from_be_bytes(bytes.try_into().ok()?))),
            Family::V6 => Some(u128::from_be_bytes(bytes.try_into().ok()?)),
        }
    }

    fn addr(self, key: u128) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(key).unwrap_or(u32::MAX))),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(key)),
        }
    }
}

/// A named set of our table, as `nft -j list table` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SetInfo {
    pub name: String,
    /// The family of its keys when they are plain addresses; `None` for any other key
    /// type (its elements are not bans and are not read).
    pub family: Option<Family>,
    /// An interval set: elements come as start/end pairs.
    pub interval: bool,
}

/// One element as the kernel sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Elem {
    pub key: u128,
    /// `NFT_SET_ELEM_INTERVAL_END`: the first address after an interval.
    pub end: bool,
    /// The last address of the interval, when the kernel sends it with the start.
    pub key_end: Option<u128>,
    pub left: Option<Duration>,
}

fn malformed(what: &'static str, offset: usize) -> WireError {
    WireError { what, offset }
}

/// The attributes after a payload's `nfgenmsg`.
fn body(payload: &[u8]) -> Result<wire::Attrs<'_>, WireError> {
    let rest = payload
        .get(NFGEN_LEN..)
        .ok_or_else(|| malformed("payload shorter than nfgenmsg", HEADER_LEN))?;
    Ok(wire::attrs(rest, ATTRS_AT))
}

/// A string attribute, or an error naming it.
fn text<'a>(value: &'a [u8], what: &'static str, at: usize) -> Result<&'a str, WireError> {
    wire::string(value).ok_or_else(|| malformed(what, at))
}

/// A `NEWTABLE` answer: whether it is our table.
pub(super) fn table(payload: &[u8], table: &str) -> Result<bool, WireError> {
    for attr in body(payload)? {
        let (attr, at) = attr?;
        if attr.ty == NFTA_TABLE_NAME {
            return Ok(text(attr.value, "table name not UTF-8", at)? == table);
        }
    }
    Ok(false)
}

/// A `NEWGEN` answer: the ruleset's generation (changes with every commit).
pub(super) fn generation(payload: &[u8]) -> Result<u32, WireError> {
    for attr in body(payload)? {
        let (attr, at) = attr?;
        if attr.ty == NFTA_GEN_ID {
            return wire::be32(attr.value).ok_or_else(|| malformed("generation not 4 bytes", at));
        }
    }
    Err(malformed("generation missing", ATTRS_AT))
}

/// A `NEWSET` answer: the set, if it is one `nft -j list table` lists as a `set` of our
/// table (not anonymous — the `{ 80, 443 }` of a rule — and not a map).
pub(super) fn set(payload: &[u8], table: &str) -> Result<Option<SetInfo>, WireError> {
    let (mut name, mut in_table, mut flags, mut key_type, mut key_len) =
        (None, false, 0u32, 0u32, 0u32);
    for attr in body(payload)? {
        let (attr, at) = attr?;
        match attr.ty {
            NFTA_SET_TABLE => in_table = text(attr.value, "set table not UTF-8", at)? == table,
            NFTA_SET_NAME => name = Some(text(attr.value, "set name not UTF-8", at)?),
            NFTA_SET_FLAGS => {
                flags = wire::be32(attr.value).ok_or_else(|| malformed("set flags", at))?
            }
            NFTA_SET_KEY_TYPE => {
                key_type = wire::be32(attr.value).ok_or_else(|| malformed("set key type", at))?
            }
            NFTA_SET_KEY_LEN => {
                key_len = wire::be32(attr.value).ok_or_else(|| malformed("set key length", at))?
            }
            _ => {}
        }
    }
    let Some(name) = name else {
        return Err(malformed("set without a name", ATTRS_AT));
    };
    if !in_table || flags & (NFT_SET_ANONYMOUS | NFT_SET_MAP | NFT_SET_OBJECT) != 0 {
        return Ok(None);
    }
    let family = match (key_type, key_len) {
        _ if flags & NFT_SET_CONCAT != 0 => None,
        (TYPE_IPADDR, 4) => Some(Family::V4),
        (TYPE_IP6ADDR, 16) => Some(Family::V6),
        _ => None,
    };
    Ok(Some(SetInfo {
        name: name.to_string(),
        family,
        interval: flags & NFT_SET_INTERVAL != 0,
    }))
}

/// A `NEWSETELEM` answer for `set` of `table`: its elements appended to `out`, at most
/// `limit` in all (an error beyond: the caller's memory bound).
pub(super) fn elements(
    payload: &[u8],
    table: &str,
    set: &str,
    family: Family,
    out: &mut Vec<Elem>,
    limit: usize,
) -> Result<(), WireError> {
    let (mut ours, mut named, mut list) = (false, false, None);
    for attr in body(payload)? {
        let (attr, at) = attr?;
        match attr.ty {
            NFTA_SET_ELEM_LIST_TABLE => ours = text(attr.value, "table not UTF-8", at)? == table,
            NFTA_SET_ELEM_LIST_SET => named = text(attr.value, "set not UTF-8", at)? == set,
            NFTA_SET_ELEM_LIST_ELEMENTS => list = Some((attr.value, at)),
            _ => {}
        }
    }
    let (Some((list, list_at)), true, true) = (list, ours, named) else {
        return Ok(());
    };
    for attr in wire::attrs(list, list_at) {
        let (attr, at) = attr?;
        if attr.ty != NFTA_LIST_ELEM {
            continue;
        }
        let Some(elem) = element(attr.value, at, family)? else {
            continue;
        };
        if out.len() >= limit {
            return Err(malformed("more set elements than the limit", at));
        }
        out.push(elem);
    }
    Ok(())
}

/// One `NFTA_LIST_ELEM`; `None` for the catch-all element (no key: not a ban).
fn element(value: &[u8], base: usize, family: Family) -> Result<Option<Elem>, WireError> {
    let (mut key, mut key_end, mut flags, mut timeout, mut expiration) =
        (None, None, 0u32, None, None);
    for attr in wire::attrs(value, base) {
        let (attr, at) = attr?;
        match attr.ty {
            NFTA_SET_ELEM_KEY => key = Some(data_value(attr.value, at, family)?),
            NFTA_SET_ELEM_KEY_END => key_end = Some(data_value(attr.value, at, family)?),
            NFTA_SET_ELEM_FLAGS => {
                flags = wire::be32(attr.value).ok_or_else(|| malformed("element flags", at))?
            }
            NFTA_SET_ELEM_TIMEOUT => {
                timeout = Some(wire::be64(attr.value).ok_or_else(|| malformed("timeout", at))?)
            }
            NFTA_SET_ELEM_EXPIRATION => {
                expiration =
                    Some(wire::be64(attr.value).ok_or_else(|| malformed("expiration", at))?)
            }
            _ => {}
        }
    }
    if flags & NFT_SET_ELEM_CATCHALL != 0 {
        return Ok(None);
    }
    let Some(key) = key else {
        return Err(malformed("set element without a key", base));
    };
    Ok(Some(Elem {
        key,
        end: flags & NFT_SET_ELEM_INTERVAL_END != 0,
        key_end,
        left: time_left(timeout, expiration),
    }))
}

/// The time left as `nft -j` reports it: whole seconds of the expiration (truncated), else
/// of the timeout when only that came; `None` without either (no timeout).
fn time_left(timeout_ms: Option<u64>, expiration_ms: Option<u64>) -> Option<Duration> {
    match (expiration_ms, timeout_ms) {
        (Some(ms), _) => Some(Duration::from_secs(ms / 1000)),
        (None, Some(ms)) if ms > 0 => Some(Duration::from_secs(ms / 1000)),
        _ => None,
    }
}

/// The `NFTA_DATA_VALUE` inside a key: an address of the set's family.
fn data_value(value: &[u8], base: usize, family: Family) -> Result<u128, WireError> {
    for attr in wire::attrs(value, base) {
        let (attr, at) = attr?;
        if attr.ty == NFTA_DATA_VALUE {
            if attr.value.len() != family.key_len() {
                return Err(malformed("key length does not match the set's type", at));
            }
            return family
                .key(attr.value)
                .ok_or_else(|| malformed("key length does not match the set's type", at));
        }
    }
    Err(malformed("key without a value", base))
}

/// A `NEWRULE` answer: (comment, chain, handle) if it is a rule of our table with a
/// handle. The comment is empty when the rule has none (or an unreadable one).
pub(super) fn rule(
    payload: &[u8],
    table: &str,
) -> Result<Option<(String, String, u64)>, WireError> {
    let (mut ours, mut chain, mut handle, mut comment) = (false, "", None, None);
    for attr in body(payload)? {
        let (attr, at) = attr?;
        match attr.ty {
            NFTA_RULE_TABLE => ours = text(attr.value, "table not UTF-8", at)? == table,
            NFTA_RULE_CHAIN => chain = text(attr.value, "chain not UTF-8", at)?,
            NFTA_RULE_HANDLE => {
                handle = Some(wire::be64(attr.value).ok_or_else(|| malformed("handle", at))?)
            }
            NFTA_RULE_USERDATA => comment = rule_comment(attr.value),
            _ => {}
        }
    }
    Ok(match (ours, handle) {
        (true, Some(handle)) => Some((
            comment.unwrap_or_default().to_string(),
            chain.to_string(),
            handle,
        )),
        _ => None,
    })
}

/// The comment in a rule's userdata TLVs, read as nft reads it: the last comment TLV, whose
/// value must end with a NUL; a malformed list has no comment; text up to the first NUL.
fn rule_comment(udata: &[u8]) -> Option<&str> {
    let mut rest = udata;
    let mut found = None;
    while !rest.is_empty() {
        let (&ty, &len) = (rest.first()?, rest.get(1)?);
        let end = 2 + usize::from(len);
        let value = rest.get(2..end)?;
        if ty == UDATA_RULE_COMMENT {
            if value.last() != Some(&0) {
                return None;
            }
            found = Some(value);
        }
        rest = rest.get(end..)?;
    }
    wire::string(found?)
}

/// A set's elements as bans, in `nft -j`'s terms: each element of a plain set is one
/// address (in address order, repeats dropped); an interval set's start/end pairs are
/// folded back into ranges, reported when a range is one address or a prefix.
pub(super) fn bans(
    info: &SetInfo,
    family: Family,
    elems: Vec<Elem>,
) -> Vec<(IpNet, Option<Duration>)> {
    if info.interval {
        intervals(family, elems)
    } else {
        hosts(family, elems)
    }
}

fn hosts(family: Family, mut elems: Vec<Elem>) -> Vec<(IpNet, Option<Duration>)> {
    // The kernel never puts an interval end in a plain set; nothing to report if it did.
    elems.retain(|e| !e.end);
    elems.sort_unstable_by_key(|e| e.key);
    elems.dedup_by_key(|e| e.key);
    elems
        .into_iter()
        .map(|e| (IpNet::host(family.addr(e.key)), e.left))
        .collect()
}

/// nft's `interval_map_decompose`, for one-field address keys: sort the points (an end
/// before a start at the same key), then each start runs to just before the next point
/// (an end closes it; a start without an end before the next start runs up to that one);
/// the last start left open runs to the top of the address space (the kernel stores no
/// end for an interval reaching it). The time left is the start's.
fn intervals(family: Family, elems: Vec<Elem>) -> Vec<(IpNet, Option<Duration>)> {
    let mut out = Vec::new();
    let mut points = Vec::with_capacity(elems.len());
    for e in elems {
        match e.key_end {
            // Sent whole by the kernel (start with its last address): a range already.
            Some(last) if !e.end => push_range(&mut out, family, e.key, last, e.left),
            _ => points.push(e),
        }
    }
    points.sort_unstable_by(|a, b| a.key.cmp(&b.key).then(b.end.cmp(&a.end)));
    let mut low: Option<Elem> = None;
    for e in points {
        if let Some(l) = low {
            if e.key > l.key {
                push_range(&mut out, family, l.key, e.key - 1, l.left);
            }
        }
        low = (!e.end).then_some(e);
    }
    if let Some(l) = low {
        push_range(&mut out, family, l.key, family.max(), l.left);
    }
    out.sort_unstable_by_key(|(net, _)| *net);
    out
}

/// The range `first..=last` as a ban if it is one address or a prefix; other ranges (not
/// written by us) are left out, as the `nft -j` reader leaves out `{"range": …}`.
fn push_range(
    out: &mut Vec<(IpNet, Option<Duration>)>,
    family: Family,
    first: u128,
    last: u128,
    left: Option<Duration>,
) {
    if last < first || last > family.max() {
        return;
    }
    let addr = family.addr(first);
    if first == last {
        out.push((IpNet::host(addr), left));
        return;
    }
    let span = last - first;
    // A prefix: the span is all ones below some bit, and the start has none of them.
    if span & span.wrapping_add(1) != 0 || first & span != 0 {
        return;
    }
    let len = family.width() - span.count_ones();
    if let Ok(net) = IpNet::new(addr, u8::try_from(len).unwrap_or(0)) {
        out.push((net, left));
    }
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::wire::build;
    use super::*;
    use proptest::prelude::*;

    pub(in super::super) fn elem(key: &[u8], flags: u32, expiration_ms: Option<u64>) -> Vec<u8> {
        let mut inner = vec![build::nested(
            NFTA_SET_ELEM_KEY,
            &[build::attr(NFTA_DATA_VALUE, key)],
        )];
        if flags != 0 {
            inner.push(build::attr(NFTA_SET_ELEM_FLAGS, &flags.to_be_bytes()));
        }
        if let Some(ms) = expiration_ms {
            inner.push(build::attr(
                NFTA_SET_ELEM_TIMEOUT,
                &3_600_000u64.to_be_bytes(),
            ));
            inner.push(build::attr(NFTA_SET_ELEM_EXPIRATION, &ms.to_be_bytes()));
        }
        build::nested(NFTA_LIST_ELEM, &inner)
    }

    pub(in super::super) fn elem_payload(set: &str, elems: &[Vec<u8>]) -> Vec<u8> {
        let msg = build::message(
            MSG_NEWSETELEM,
            0,
            1,
            1,
            &[
                build::string(NFTA_SET_ELEM_LIST_TABLE, "banhammer"),
                build::string(NFTA_SET_ELEM_LIST_SET, set),
                build::nested(NFTA_SET_ELEM_LIST_ELEMENTS, elems),
            ],
        );
        msg[HEADER_LEN..].to_vec()
    }

    fn v4(a: [u8; 4]) -> Vec<u8> {
        a.to_vec()
    }

    fn decode(info: &SetInfo, payload: &[u8]) -> Vec<(String, Option<u64>)> {
        let family = info.family.unwrap();
        let mut out = Vec::new();
        elements(payload, "banhammer", &info.name, family, &mut out, 1000).unwrap();
        bans(info, family, out)
            .into_iter()
            .map(|(net, left)| (net.to_string(), left.map(|d| d.as_secs())))
            .collect()
    }

    fn interval_set() -> SetInfo {
        SetInfo {
            name: "net-set-t".into(),
            family: Some(Family::V4),
            interval: true,
        }
    }

    #[test]
    fn interval_pairs_fold_back_into_prefixes_as_nft_lists_them() {
        // As Linux 6.x dumps an rbtree set: descending, an end before its start; the
        // interval reaching 255.255.255.255 has no end; one range is not a prefix.
        let payload = elem_payload(
            "net-set-t",
            &[
                elem(&v4([255, 255, 0, 0]), 0, Some(299_500)),
                elem(&v4([192, 168, 1, 2]), 1, None),
                elem(&v4([192, 168, 1, 1]), 0, None),
                elem(&v4([10, 9, 0, 3]), 1, None),
                elem(&v4([10, 9, 0, 0]), 0, None),
                elem(&v4([10, 3, 1, 0]), 1, Some(10_000)),
                elem(&v4([10, 3, 0, 0]), 0, Some(29_999)),
                elem(&v4([10, 3, 0, 0]), 1, None),
                elem(&v4([10, 2, 0, 0]), 0, None),
                elem(&v4([1, 0, 0, 0]), 1, None),
                elem(&v4([0, 0, 0, 0]), 0, None),
            ],
        );
        assert_eq!(
            decode(&interval_set(), &payload),
            [
                ("0.0.0.0/8".to_string(), None),
                ("10.2.0.0/16".to_string(), None),
                ("10.3.0.0/24".to_string(), Some(29)),
                ("192.168.1.1".to_string(), None),
                ("255.255.0.0/16".to_string(), Some(299)),
            ]
        );
    }

    #[test]
    fn a_start_without_its_end_runs_to_the_next_start() {
        let payload = elem_payload(
            "net-set-t",
            &[
                elem(&v4([10, 0, 0, 0]), 0, None),
                elem(&v4([10, 1, 0, 0]), 0, None),
                elem(&v4([10, 2, 0, 0]), 1, None),
                // A lone end (an old nft's leading zero end) closes nothing.
                elem(&v4([0, 0, 0, 0]), 1, None),
            ],
        );
        assert_eq!(
            decode(&interval_set(), &payload),
            [
                ("10.0.0.0/16".to_string(), None),
                ("10.1.0.0/16".to_string(), None)
            ]
        );
    }

    #[test]
    fn plain_sets_list_addresses_in_order_with_their_time_left() {
        let info = SetInfo {
            name: "addr6-set-t".into(),
            family: Some(Family::V6),
            interval: false,
        };
        let a: Vec<u8> = "2001:db8::2".parse::<Ipv6Addr>().unwrap().octets().to_vec();
        let b: Vec<u8> = "::ffff:1.2.3.4"
            .parse::<Ipv6Addr>()
            .unwrap()
            .octets()
            .to_vec();
        let payload = elem_payload(
            "addr6-set-t",
            &[
                elem(&a, 0, Some(1_999)),
                elem(&b, 0, None),
                elem(&a, 0, Some(1_999)),
            ],
        );
        // An IPv4-mapped address is the IPv4 address, as the nft -j reader makes it.
        assert_eq!(
            decode(&info, &payload),
            [
                ("1.2.3.4".to_string(), None),
                ("2001:db8::2".to_string(), Some(1))
            ]
        );
    }

    #[test]
    fn elements_of_another_set_or_a_key_of_the_wrong_length_are_not_taken() {
        let info = interval_set();
        let mut out = Vec::new();
        let other = elem_payload("net-set-u", &[elem(&v4([1, 2, 3, 4]), 0, None)]);
        elements(&other, "banhammer", &info.name, Family::V4, &mut out, 10).unwrap();
        assert!(out.is_empty());
        let wrong = elem_payload("net-set-t", &[elem(&[1, 2, 3], 0, None)]);
        assert!(elements(&wrong, "banhammer", &info.name, Family::V4, &mut out, 10).is_err());
        let many = elem_payload("net-set-t", &vec![elem(&v4([1, 2, 3, 4]), 0, None); 3]);
        assert!(elements(&many, "banhammer", &info.name, Family::V4, &mut out, 2).is_err());
    }

    #[test]
    fn rule_comments_are_read_as_nft_reads_them() {
        let rule_payload = |udata: &[u8]| {
            let msg = build::message(
                MSG_NEWRULE,
                0,
                1,
                1,
                &[
                    build::string(NFTA_RULE_TABLE, "banhammer"),
                    build::string(NFTA_RULE_CHAIN, "input"),
                    build::attr(NFTA_RULE_HANDLE, &7u64.to_be_bytes()),
                    build::attr(NFTA_RULE_USERDATA, udata),
                ],
            );
            let got = rule(&msg[HEADER_LEN..], "banhammer").unwrap().unwrap();
            assert_eq!((got.1.as_str(), got.2), ("input", 7));
            got.0
        };
        assert_eq!(rule_payload(b"\x00\x0cbanhammer:w\x00"), "banhammer:w");
        // Another TLV first (nft's ebtables policy), then the comment.
        assert_eq!(rule_payload(b"\x01\x04\x00\x00\x00\x01\x00\x02x\x00"), "x");
        // Not NUL-terminated, cut short, or not UTF-8: no comment.
        assert_eq!(rule_payload(b"\x00\x0bbanhammer:w"), "");
        assert_eq!(rule_payload(b"\x00\x20banhammer:w\x00"), "");
        assert_eq!(rule_payload(b"\x00\x02\xff\x00"), "");
        assert_eq!(rule_payload(b""), "");
    }

    #[test]
    fn sets_nft_does_not_list_as_sets_are_skipped() {
        let set_payload = |flags: u32, key_type: u32, key_len: u32| {
            let msg = build::message(
                MSG_NEWSET,
                0,
                1,
                1,
                &[
                    build::string(NFTA_SET_TABLE, "banhammer"),
                    build::string(NFTA_SET_NAME, "s"),
                    build::attr(NFTA_SET_FLAGS, &flags.to_be_bytes()),
                    build::attr(NFTA_SET_KEY_TYPE, &key_type.to_be_bytes()),
                    build::attr(NFTA_SET_KEY_LEN, &key_len.to_be_bytes()),
                ],
            );
            set(&msg[HEADER_LEN..], "banhammer").unwrap()
        };
        let s = set_payload(0x14, 7, 4).unwrap();
        assert_eq!((s.family, s.interval), (Some(Family::V4), true));
        assert_eq!(set_payload(0x10, 8, 16).unwrap().family, Some(Family::V6));
        assert_eq!(set_payload(0, 13, 2).unwrap().family, None, "inet_service");
        assert_eq!(
            set_payload(0, 7, 16).unwrap().family,
            None,
            "length mismatch"
        );
        assert!(set_payload(NFT_SET_ANONYMOUS, 7, 4).is_none());
        assert!(set_payload(NFT_SET_MAP, 7, 4).is_none());
    }

    #[test]
    fn time_left_follows_nft() {
        assert_eq!(time_left(None, None), None);
        assert_eq!(time_left(Some(0), None), None);
        assert_eq!(
            time_left(Some(60_000), Some(59_999)),
            Some(Duration::from_secs(59))
        );
        assert_eq!(time_left(Some(60_000), Some(999)), Some(Duration::ZERO));
        assert_eq!(time_left(Some(60_000), None), Some(Duration::from_secs(60)));
    }

    /// Messages of every kind the reader decodes, well-formed, to mutate.
    fn corpus() -> Vec<Vec<u8>> {
        let elems = elem_payload(
            "net-set-t",
            &[
                elem(&v4([10, 3, 1, 0]), 1, Some(10_000)),
                elem(&v4([10, 3, 0, 0]), 0, Some(29_999)),
            ],
        );
        let rule = build::message(
            MSG_NEWRULE,
            0,
            1,
            1,
            &[
                build::string(NFTA_RULE_TABLE, "banhammer"),
                build::string(NFTA_RULE_CHAIN, "input"),
                build::attr(NFTA_RULE_HANDLE, &7u64.to_be_bytes()),
                build::attr(NFTA_RULE_USERDATA, b"\x00\x0cbanhammer:w\x00"),
            ],
        );
        let set = build::message(
            MSG_NEWSET,
            0,
            1,
            1,
            &[
                build::string(NFTA_SET_TABLE, "banhammer"),
                build::string(NFTA_SET_NAME, "net-set-t"),
                build::attr(NFTA_SET_FLAGS, &0x14u32.to_be_bytes()),
                build::attr(NFTA_SET_KEY_TYPE, &7u32.to_be_bytes()),
                build::attr(NFTA_SET_KEY_LEN, &4u32.to_be_bytes()),
            ],
        );
        vec![
            elems,
            rule[HEADER_LEN..].to_vec(),
            set[HEADER_LEN..].to_vec(),
        ]
    }

    /// Every decoder on `payload`: none may panic; what comes out is bounded.
    fn decode_all(payload: &[u8]) -> Result<(), TestCaseError> {
        let _ = table(payload, "banhammer");
        let _ = generation(payload);
        let _ = set(payload, "banhammer");
        let _ = rule(payload, "banhammer");
        for family in [Family::V4, Family::V6] {
            for interval in [false, true] {
                let mut out = Vec::new();
                let _ = elements(payload, "banhammer", "net-set-t", family, &mut out, 64);
                prop_assert!(out.len() <= 64);
                let n = out.len();
                let info = SetInfo {
                    name: "net-set-t".into(),
                    family: Some(family),
                    interval,
                };
                let got = bans(&info, family, out);
                prop_assert!(got.len() <= n);
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn random_payloads_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
            decode_all(&buf)?;
        }

        #[test]
        fn mutated_payloads_never_panic(
            which in 0usize..3,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
        ) {
            let mut buf = corpus()[which].clone();
            for (at, byte) in edits {
                let i = at % buf.len();
                buf[i] = byte;
            }
            decode_all(&buf)?;
            let cut = cut % (buf.len() + 1);
            decode_all(&buf[..cut])?;
        }

        #[test]
        fn any_points_fold_into_ranges_inside_the_address_space(
            points in proptest::collection::vec((any::<u32>(), any::<bool>()), 0..40)
        ) {
            let elems: Vec<Elem> = points
                .iter()
                .map(|&(k, end)| Elem { key: u128::from(k), end, key_end: None, left: None })
                .collect();
            let got = intervals(Family::V4, elems);
            for (net, _) in &got {
                prop_assert!(net.addr().is_ipv4());
            }
            prop_assert!(got.len() <= points.len());
        }
    }
}
