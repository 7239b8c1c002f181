//! What a failure is counted and banned against: a [`FailureKey`], and the rule that decides
//! it for a filter's failure.
//!
//! Owns the rule that only canonical address text ([`super::canonical`]) becomes an address
//! key, and a network only where a filter says so (a `cidr` group: `<SUBNET>`, `<CIDR>`).
//! Receives text from a client or the store ([`FailureKey::parse_address`],
//! [`FailureKey::parse`]) and failures from a filter with the jail's `usedns`
//! ([`failure_target`]); emits a key, a host name the caller may resolve, or why the failure
//! has no address ([`NoAddress`]) — such a failure is never a ban.
//!
//! fail2ban would count and ban any failure id, passing it as `<ip>` to actions verbatim:
//! `001.002.003.013` reached `iptables -s` (which reads it as octal, 1.2.3.11), `6.6` went to
//! the resolver (which made it 6.0.0.6). Here the address of a failure is what fail2ban's
//! actions get as `<ip>` — the host the filter captured (`<HOST>`, `<ADDR>`, `<IP4>`…) when
//! it captured one, else the failure id (`<F-ID>`) — and only if that text is canonical.

use std::fmt;
use std::net::IpAddr;

use super::addr::{normalize_ip, parse_ip, IpNet};
use super::canonical::{is_host_name, parse_canonical_unmapped};
use crate::filter::{Failure, HostKind, UseDns};

/// What a failure is counted against: an address (the usual `<HOST>`), a network (a subnet
/// detector's key, or a subnet ban), or any other id (text read back that is not an address,
/// e.g. a ban stored by an older version; never made from a filter's failure, and
/// [`super::JailState`] never counts nor bans it: [`super::DropReason::NotAnAddress`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKey {
    /// One address (IPv4-mapped IPv6 is stored as IPv4).
    Ip(IpAddr),
    /// A network.
    Net(IpNet),
    /// Any other identifier, compared as text.
    Id(Box<str>),
}

impl FailureKey {
    /// An address or network in canonical text (`192.0.2.7`, `[2001:db8::1]`,
    /// `192.0.2.0/24`, `10.0.0.0/255.0.0.0`), else `None`: what a client may ban or unban and
    /// what a stored ban may be restored as. No surrounding spaces.
    pub fn parse_address(text: &str) -> Option<Self> {
        if text.contains('/') {
            return text.parse::<IpNet>().ok().map(FailureKey::from);
        }
        parse_ip(text).map(FailureKey::Ip)
    }

    /// [`FailureKey::parse_address`], or the text as an [`FailureKey::Id`] when it is not a
    /// canonical address or network (`1.2.3.256`, `001.002.003.013` and `6.6` are ids).
    pub fn parse(text: &str) -> Self {
        Self::parse_address(text).unwrap_or_else(|| FailureKey::Id(text.into()))
    }

    /// The address, for an address key.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            FailureKey::Ip(ip) => Some(*ip),
            _ => None,
        }
    }

    /// Whether this is an address or a network (what a firewall can ban).
    pub fn is_address(&self) -> bool {
        !matches!(self, FailureKey::Id(_))
    }
}

impl From<IpAddr> for FailureKey {
    fn from(ip: IpAddr) -> Self {
        FailureKey::Ip(normalize_ip(ip))
    }
}

impl From<IpNet> for FailureKey {
    fn from(net: IpNet) -> Self {
        if net.is_single() {
            FailureKey::Ip(net.addr())
        } else {
            FailureKey::Net(net)
        }
    }
}

impl fmt::Display for FailureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKey::Ip(ip) => ip.fmt(f),
            FailureKey::Net(n) => n.fmt(f),
            FailureKey::Id(s) => f.write_str(s),
        }
    }
}

/// What a failure of a filter is counted against, before any name is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureTarget<'a> {
    /// A canonical address, or a network the filter's `cidr` group declared.
    Key(FailureKey),
    /// A host name to resolve (`usedns = yes|warn`), already checked to be a strict DNS host
    /// name ([`super::canonical::is_host_name`]). Only canonical addresses the resolver
    /// returns may become keys ([`FailureKey::from`] an [`IpAddr`]); none is
    /// [`NoAddress::Unresolved`].
    Resolve(&'a str),
    /// The failure has no address: it is never a ban.
    NoAddress(NoAddress),
}

/// Why a failure has no address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoAddress {
    /// Its address or id is not canonical address text (`1.2.3.256`, `001.002.003.013`,
    /// `١.2.3.4`, a user name, a host name kept raw by `usedns = raw`).
    NotCanonical,
    /// Its `cidr` group is not a canonical prefix length (`024`), or too long for the family.
    BadPrefix,
    /// A captured host name that no resolver is given (`6.6`, `1.2.3.0x4`, `my_host`).
    NotHostName,
    /// A captured host name, and `usedns` says not to resolve it.
    NotResolved,
    /// A host name that resolved to no address.
    Unresolved,
}

impl fmt::Display for NoAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoAddress::NotCanonical => "not a canonical IPv4/IPv6 address",
            NoAddress::BadPrefix => "its prefix length is not canonical or too long",
            NoAddress::NotHostName => "not an address, nor a host name that may be resolved",
            NoAddress::NotResolved => "a host name, not resolved (usedns)",
            NoAddress::Unresolved => "a host name that resolves to no address",
        })
    }
}

/// What failure `f` of a filter running with `usedns` is counted against (see the module
/// doc). Pure: resolving a [`FailureTarget::Resolve`] name is the caller's job.
pub fn failure_target(f: &Failure, usedns: UseDns) -> FailureTarget<'_> {
    let address = |text: &str| match parse_ip(text) {
        Some(ip) => FailureTarget::Key(FailureKey::Ip(ip)),
        None => FailureTarget::NoAddress(NoAddress::NotCanonical),
    };
    match f.kind {
        HostKind::Ip4 | HostKind::Ip6 => address(&f.fid),
        HostKind::Subnet { cidr } => {
            let Some(addr) = parse_canonical_unmapped(&f.fid) else {
                return FailureTarget::NoAddress(NoAddress::NotCanonical);
            };
            match cidr.map(|c| IpNet::new(addr, c)) {
                Some(Ok(net)) => FailureTarget::Key(FailureKey::from(net)),
                _ => FailureTarget::NoAddress(NoAddress::BadPrefix),
            }
        }
        HostKind::Dns => {
            // A plain address in a name's place is that address (fail2ban's `searchIP`).
            if let Some(ip) = parse_ip(&f.fid) {
                return FailureTarget::Key(FailureKey::Ip(ip));
            }
            match usedns {
                UseDns::Yes | UseDns::Warn if is_host_name(&f.fid) => {
                    FailureTarget::Resolve(&f.fid)
                }
                UseDns::Yes | UseDns::Warn => FailureTarget::NoAddress(NoAddress::NotHostName),
                UseDns::No | UseDns::Raw => FailureTarget::NoAddress(NoAddress::NotResolved),
            }
        }
        // fail2ban's `<ip>`: the host when one was captured beside a different failure id
        // (then any `cidr` is not applied: a single address, the narrower ban), else the id.
        HostKind::Id => address(f.host.as_deref().unwrap_or(&f.fid)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[path = "key_tests.rs"]
mod tests;
