//! Addresses and networks as fail2ban reads them (`ipdns.IPAddr`), and the `ignoreip` list.
//!
//! Owns [`IpNet`] (an address with a prefix length, host bits cleared) and [`IgnoreList`] (a
//! prefix trie per family plus the DNS names the caller resolves). Receives text in fail2ban's
//! forms: `1.2.3.4`, `[2001:db8::1]`, `1.2.3.0/24`, `10.0.0.1/255.0.0.0`, `127.0.0.1/8` (which
//! means the network `127.0.0.0/8`, host bits dropped), `2001:db8::/32`, or a host name —
//! addresses, masks and prefix lengths in canonical text only, host names in strict DNS
//! syntax ([`super::canonical`]). Emits membership answers naming what matched, in
//! O(prefix length) whatever the list size.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are normalised to IPv4 everywhere, as
//! fail2ban does for single addresses; we also fold a mapped *network* with a prefix ≥ 96 to
//! its IPv4 network (fail2ban keeps it IPv6, where it can never match an IPv4 key).

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::canonical::{
    is_host_name, parse_canonical_ip, parse_canonical_unmapped, parse_prefix_len,
};

/// Why a piece of text is not an address or network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// The prefix length is not a number, or too long for the family.
    #[error("invalid prefix length in {text:?} (expected 0..=32 for IPv4, 0..=128 for IPv6)")]
    Prefix {
        /// The whole text as given.
        text: String,
    },
    /// A dotted/colon mask that is not contiguous ones then zeros.
    #[error("invalid network mask in {text:?} (expected contiguous ones, e.g. 255.255.255.0)")]
    Mask {
        /// The whole text as given.
        text: String,
    },
    /// The part before `/` is not an IP address.
    #[error("invalid address in {text:?} (expected an IPv4 or IPv6 address before '/')")]
    Address {
        /// The whole text as given.
        text: String,
    },
    /// Neither a canonical address or network nor a DNS host name.
    #[error(
        "{text:?} is neither an address, a network nor a host name (expected e.g. 192.0.2.7, \
         2001:db8::/32 or host.example; IPv4 as four decimal numbers 0-255 without leading zeros)"
    )]
    NotAddressOrName {
        /// The text as given.
        text: String,
    },
    /// Empty text.
    #[error("empty address")]
    Empty,
}

/// Map an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) to IPv4; anything else is unchanged.
pub fn normalize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// Parse one address: canonical text only (see [`super::canonical`]), optionally in `[...]`
/// brackets as fail2ban accepts, IPv4-mapped → IPv4. No surrounding spaces.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    parse_canonical_ip(text)
}

fn strip_brackets(t: &str) -> &str {
    if t.len() > 2 && t.starts_with('[') && t.ends_with(']') {
        &t[1..t.len() - 1]
    } else {
        t
    }
}

/// Bits of an address as a left-aligned u128 (IPv4 in the top 32 bits) and the family width.
fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => ((u128::from(u32::from(v4))) << 96, 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn mask(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

fn from_bits(is_v4: bool, b: u128) -> IpAddr {
    if is_v4 {
        // Top 32 bits hold the IPv4 address; the shift leaves exactly 32 bits.
        IpAddr::V4(Ipv4Addr::from(u32::try_from(b >> 96).unwrap_or(0)))
    } else {
        IpAddr::V6(Ipv6Addr::from(b))
    }
}

/// An IP network: an address with its host bits cleared and a prefix length.
///
/// A single address is the network of full length (`/32`, `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network of `addr` with `prefix` bits; host bits are cleared (fail2ban's
    /// `127.0.0.1/8` is `127.0.0.0/8`). IPv4-mapped IPv6 with prefix ≥ 96 becomes IPv4.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, AddrError> {
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => (IpAddr::V4(v4), prefix - 96),
                _ => (addr, prefix),
            },
            v4 => (v4, prefix),
        };
        let (b, width) = bits(addr);
        if prefix > width {
            return Err(AddrError::Prefix {
                text: format!("{addr}/{prefix}"),
            });
        }
        Ok(IpNet {
            addr: from_bits(addr.is_ipv4(), b & mask(prefix)),
            prefix,
        })
    }

    /// The one-address network of `addr` (normalised).
    pub fn host(addr: IpAddr) -> Self {
        let addr = normalize_ip(addr);
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        IpNet { addr, prefix }
    }

    /// The network address (host bits zero).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether this is a single address (fail2ban's `isSingle`).
    pub fn is_single(&self) -> bool {
        self.prefix == if self.addr.is_ipv4() { 32 } else { 128 }
    }

    /// Whether `ip` (normalised) lies in this network; families never mix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = normalize_ip(ip);
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        let (b, _) = bits(ip);
        let (n, _) = bits(self.addr);
        b & mask(self.prefix) == n
    }

    /// The network of `prefix` bits (per family) that contains `ip`: the key of a per-subnet
    /// detector (`/24` for IPv4, `/64` for IPv6 by default). A prefix longer than the family
    /// is clamped to it.
    pub fn containing(ip: IpAddr, prefix_v4: u8, prefix_v6: u8) -> Self {
        let ip = normalize_ip(ip);
        let (width, p) = if ip.is_ipv4() {
            (32, prefix_v4)
        } else {
            (128, prefix_v6)
        };
        let prefix = p.min(width);
        let (b, _) = bits(ip);
        IpNet {
            addr: from_bits(ip.is_ipv4(), b & mask(prefix)),
            prefix,
        }
    }
}

impl fmt::Display for IpNet {
    /// `1.2.3.4` for a single address, `10.0.0.0/8` for a network.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// Prefix length of a dotted/colon mask (`255.255.255.0` → 24), if canonical and contiguous.
fn mask_to_prefix(text: &str) -> Option<u8> {
    let ip = parse_canonical_unmapped(text)?;
    let (b, width) = bits(ip);
    let ones = b.leading_ones();
    // Contiguous: after the leading ones, everything (within the family) is zero.
    if b.checked_shl(ones).unwrap_or(0) != 0 {
        return None;
    }
    u8::try_from(ones.min(u32::from(width))).ok()
}

impl FromStr for IpNet {
    type Err = AddrError;

    /// `addr`, `[addr]`, `addr/len`, `addr/mask` or any of those in brackets: canonical
    /// text only (see [`super::canonical`]: `1.2.3.04/8` and `1.2.3.4/024` are refused), no
    /// spaces.
    fn from_str(text: &str) -> Result<Self, AddrError> {
        let t = strip_brackets(text);
        if t.is_empty() {
            return Err(AddrError::Empty);
        }
        let Some((a, p)) = t.split_once('/') else {
            return parse_ip(t)
                .map(IpNet::host)
                .ok_or_else(|| AddrError::Address {
                    text: text.to_string(),
                });
        };
        let addr = parse_canonical_unmapped(a).ok_or_else(|| AddrError::Address {
            text: text.to_string(),
        })?;
        let prefix = if p.contains('.') || p.contains(':') {
            mask_to_prefix(p).ok_or_else(|| AddrError::Mask {
                text: text.to_string(),
            })?
        } else {
            parse_prefix_len(p).ok_or_else(|| AddrError::Prefix {
                text: text.to_string(),
            })?
        };
        IpNet::new(addr, prefix).map_err(|_| AddrError::Prefix {
            text: text.to_string(),
        })
    }
}

/// A binary prefix trie over one family: membership in O(prefix length).
///
/// Nodes live in one vector (indices, not boxes); a node marked `terminal` ends a stored
/// network, so a lookup stops at the first terminal node on the address's path.
#[derive(Debug, Clone, Default)]
struct PrefixTrie {
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Clone, Copy, Default)]
struct TrieNode {
    /// Child index per bit; 0 = none (the root, index 0, is never a child).
    child: [u32; 2],
    terminal: bool,
}

impl PrefixTrie {
    fn insert(&mut self, b: u128, prefix: u8) {
        if self.nodes.is_empty() {
            self.nodes.push(TrieNode::default());
        }
        let mut at = 0usize;
        for i in 0..u32::from(prefix) {
            if self.nodes[at].terminal {
                return; // a shorter network already covers this one
            }
            let bit = ((b >> (127 - i)) & 1) as usize;
            let next = self.nodes[at].child[bit] as usize;
            at = if next == 0 {
                let idx = self.nodes.len();
                self.nodes.push(TrieNode::default());
                // Index fits: at most 128 nodes per inserted network, lists are config-sized.
                self.nodes[at].child[bit] = u32::try_from(idx).unwrap_or(u32::MAX);
                idx
            } else {
                next
            };
        }
        self.nodes[at].terminal = true;
        // Everything below is now covered; drop the links so lookups stop here.
        self.nodes[at].child = [0, 0];
    }

    /// Whether the network of the first `prefix` bits of `b` meets a stored network: lies
    /// inside one (a terminal node on its path) or holds one (its path exists to the end:
    /// nodes exist only on the way to a terminal one).
    fn overlaps(&self, b: u128, prefix: u8) -> bool {
        let Some(mut node) = self.nodes.first() else {
            return false;
        };
        for i in 0..u32::from(prefix) {
            if node.terminal {
                return true;
            }
            let bit = ((b >> (127 - i)) & 1) as usize;
            match self.nodes.get(node.child[bit] as usize) {
                Some(n) if node.child[bit] != 0 => node = n,
                _ => return false,
            }
        }
        true
    }

    fn contains(&self, b: u128, width: u8) -> bool {
        let Some(mut node) = self.nodes.first() else {
            return false;
        };
        for i in 0..u32::from(width) {
            if node.terminal {
                return true;
            }
            let bit = ((b >> (127 - i)) & 1) as usize;
            let next = node.child[bit] as usize;
            if next == 0 {
                return false;
            }
            match self.nodes.get(next) {
                Some(n) => node = n,
                None => return false,
            }
        }
        node.terminal
    }
}

/// What made an address ignored (fail2ban logs "Ignore IP by ip/dns/ignoreself rule").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreSource {
    /// An address or network of `ignoreip`.
    Ip,
    /// A resolved address of a host name in `ignoreip`.
    Dns,
    /// One of the host's own addresses (`ignoreself`).
    SelfAddr,
}

/// One `ignoreip` entry as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreEntry {
    /// An address or network.
    Net(IpNet),
    /// A host name; the edge resolves it and calls [`IgnoreList::set_resolved`].
    Name(String),
}

impl fmt::Display for IgnoreEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IgnoreEntry::Net(n) => n.fmt(f),
            IgnoreEntry::Name(s) => f.write_str(s),
        }
    }
}

/// fail2ban's `ignoreip` (and `ignoreself`) as data: networks in a trie per family, host
/// names kept for the caller to resolve (this room does no DNS), and their resolved
/// addresses plus the host's own addresses in hash sets.
#[derive(Debug, Clone, Default)]
pub struct IgnoreList {
    entries: Vec<IgnoreEntry>,
    v4: PrefixTrie,
    v6: PrefixTrie,
    resolved: Vec<(String, Vec<IpAddr>)>,
    resolved_set: HashSet<IpAddr>,
    self_addrs: HashSet<IpAddr>,
}

impl IgnoreList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse an `ignoreip` value: entries separated by whitespace or commas.
    pub fn parse(value: &str) -> Result<Self, AddrError> {
        let mut list = IgnoreList::new();
        for word in value
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
        {
            list.add(word)?;
        }
        Ok(list)
    }

    /// Add one entry: an address, a network or a host name. Exact duplicates are skipped
    /// (fail2ban: "Ignore duplicate"); returns whether it was added.
    ///
    /// Text that is not an address is taken as a host name, as fail2ban does, but only a
    /// strict DNS host name ([`super::canonical::is_host_name`]): anything else (a malformed
    /// network, `1.2.3.04`, `127.1`, `my_host`) is an error rather than an entry that could
    /// never be resolved — or that a resolver would read as some other address.
    pub fn add(&mut self, text: &str) -> Result<bool, AddrError> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(false);
        }
        let entry = match t.parse::<IpNet>() {
            Ok(net) => IgnoreEntry::Net(net),
            Err(e) if t.contains('/') => return Err(e),
            Err(_) if is_host_name(t) => IgnoreEntry::Name(t.to_string()),
            Err(_) => {
                return Err(AddrError::NotAddressOrName {
                    text: t.to_string(),
                })
            }
        };
        if self.entries.contains(&entry) {
            return Ok(false);
        }
        if let IgnoreEntry::Net(net) = &entry {
            self.insert_net(*net);
        }
        self.entries.push(entry);
        Ok(true)
    }

    fn insert_net(&mut self, net: IpNet) {
        let (b, _) = bits(net.addr);
        if net.addr.is_ipv4() {
            self.v4.insert(b, net.prefix);
        } else {
            self.v6.insert(b, net.prefix);
        }
    }

    /// Remove one entry (as it would be written to add it); returns whether it was there.
    pub fn remove(&mut self, text: &str) -> bool {
        let t = text.trim();
        let entry = match t.parse::<IpNet>() {
            Ok(net) => IgnoreEntry::Net(net),
            Err(_) => IgnoreEntry::Name(t.to_string()),
        };
        let before = self.entries.len();
        self.entries.retain(|e| *e != entry);
        if self.entries.len() == before {
            return false;
        }
        // Tries do not support deletion; rebuild (lists are config-sized).
        self.v4 = PrefixTrie::default();
        self.v6 = PrefixTrie::default();
        let nets: Vec<IpNet> = self
            .entries
            .iter()
            .filter_map(|e| match e {
                IgnoreEntry::Net(n) => Some(*n),
                IgnoreEntry::Name(_) => None,
            })
            .collect();
        for n in nets {
            self.insert_net(n);
        }
        if let IgnoreEntry::Name(name) = entry {
            self.resolved.retain(|(n, _)| *n != name);
            self.rebuild_resolved();
        }
        true
    }

    /// Remove every entry (fail2ban `delignoreip` of all); the self addresses stay.
    pub fn clear(&mut self) {
        let self_addrs = std::mem::take(&mut self.self_addrs);
        *self = IgnoreList {
            self_addrs,
            ..IgnoreList::default()
        };
    }

    /// The entries in configuration order (for `get JAIL ignoreip`).
    pub fn entries(&self) -> &[IgnoreEntry] {
        &self.entries
    }

    /// The host names the caller should resolve.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|e| match e {
            IgnoreEntry::Name(n) => Some(n.as_str()),
            IgnoreEntry::Net(_) => None,
        })
    }

    /// Record the addresses `name` resolved to, replacing earlier ones. Unknown names are
    /// ignored (the list may have changed since the lookup started).
    pub fn set_resolved(&mut self, name: &str, addrs: impl IntoIterator<Item = IpAddr>) {
        if !self.names().any(|n| n == name) {
            return;
        }
        let addrs: Vec<IpAddr> = addrs.into_iter().map(normalize_ip).collect();
        match self.resolved.iter_mut().find(|(n, _)| n == name) {
            Some((_, a)) => *a = addrs,
            None => self.resolved.push((name.to_string(), addrs)),
        }
        self.rebuild_resolved();
    }

    fn rebuild_resolved(&mut self) {
        self.resolved_set = self
            .resolved
            .iter()
            .flat_map(|(_, a)| a.iter().copied())
            .collect();
    }

    /// Set the host's own addresses (for `ignoreself`; the edge finds them).
    pub fn set_self_addrs(&mut self, addrs: impl IntoIterator<Item = IpAddr>) {
        self.self_addrs = addrs.into_iter().map(normalize_ip).collect();
    }

    /// Whether `ip` is ignored and why, checking in fail2ban's order: own addresses (only
    /// when `ignoreself`), then addresses/networks, then resolved names.
    pub fn matches(&self, ip: IpAddr, ignoreself: bool) -> Option<IgnoreSource> {
        let ip = normalize_ip(ip);
        if ignoreself && self.self_addrs.contains(&ip) {
            return Some(IgnoreSource::SelfAddr);
        }
        let (b, width) = bits(ip);
        let hit = if ip.is_ipv4() {
            self.v4.contains(b, width)
        } else {
            self.v6.contains(b, width)
        };
        if hit {
            return Some(IgnoreSource::Ip);
        }
        if self.resolved_set.contains(&ip) {
            return Some(IgnoreSource::Dns);
        }
        None
    }

    /// An ignored address or network that overlaps `net`, if any: one inside it, or one
    /// holding its address (own addresses only when `ignoreself`). A ban of a network is
    /// refused when it would take in an address the jail must never ban.
    pub fn overlapping(&self, net: IpNet, ignoreself: bool) -> Option<String> {
        if let Some(src) = self.matches(net.addr(), ignoreself) {
            return Some(format!("{} ({src:?})", net.addr()));
        }
        let nets = self.entries.iter().filter_map(|e| match e {
            IgnoreEntry::Net(n) => Some(*n),
            IgnoreEntry::Name(_) => None,
        });
        for n in nets {
            if net.contains(n.addr()) {
                return Some(format!("{n} (ignoreip)"));
            }
        }
        let singles = self
            .resolved_set
            .iter()
            .map(|a| (*a, "ignoreip name"))
            .chain(
                self.self_addrs
                    .iter()
                    .filter(|_| ignoreself)
                    .map(|a| (*a, "ignoreself")),
            );
        for (a, why) in singles {
            if net.contains(a) {
                return Some(format!("{a} ({why})"));
            }
        }
        None
    }

    /// Whether `ip` is covered by `ignoreip` (self addresses not considered).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.matches(ip, false).is_some()
    }

    /// Whether network `net` is ignored, and why: when it lies inside an ignored network or
    /// holds any ignored address or network (banning it would ban them too), checked in the
    /// order of [`IgnoreList::matches`]. A single-address network is [`IgnoreList::matches`].
    pub fn matches_net(&self, net: IpNet, ignoreself: bool) -> Option<IgnoreSource> {
        if net.is_single() {
            return self.matches(net.addr(), ignoreself);
        }
        if ignoreself && self.self_addrs.iter().any(|a| net.contains(*a)) {
            return Some(IgnoreSource::SelfAddr);
        }
        let (b, _) = bits(net.addr());
        let trie = if net.addr().is_ipv4() {
            &self.v4
        } else {
            &self.v6
        };
        if trie.overlaps(b, net.prefix()) {
            return Some(IgnoreSource::Ip);
        }
        if self.resolved_set.iter().any(|a| net.contains(*a)) {
            return Some(IgnoreSource::Dns);
        }
        None
    }
}
