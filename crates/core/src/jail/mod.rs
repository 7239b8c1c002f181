//! The jail state: failures in, ban and unban decisions out (design.md "Data flow").
//!
//! Owns, for one jail, the failure counts ([`FailTracker`], fail2ban's `FailManager`), the
//! ignore list ([`IgnoreList`]), the ban-time policy ([`BanTimePolicy`], `bantime.increment`)
//! and the current bans with their expiry queue ([`JailState`], fail2ban's `BanManager`).
//! Receives failures from the matcher (a [`FailureKey`], a time, the matched lines, and the
//! offender's ban history looked up by the caller in the store) and the current time from its
//! owner; emits [`Decision`]s (ban, prolong, ignored…) and [`Unban`]s for the actions room. It
//! does no I/O and reads no clock: DNS, the host's own addresses and the store are the
//! caller's job.
//!
//! The tracker is generic over its key so the distributed-attack detectors (per target user,
//! per subnet, global rate) can count by any captured field with the same rules.

mod addr;
mod bantime;
mod state;
mod tracker;

#[cfg(test)]
mod tests;

pub use addr::{normalize_ip, parse_ip, AddrError, IgnoreEntry, IgnoreList, IgnoreSource, IpNet};
pub use bantime::{
    BanHistory, BanLength, BanTimeConfig, BanTimeError, BanTimePolicy, DEFAULT_FORMULA, EXP_FORMULA,
};
pub use state::{
    Ban, Decision, DropReason, JailConfig, JailState, JailStats, TimeMode, Unban, UnbanReason,
};
pub use tracker::{py_round, Added, FailTicket, FailTracker, TrackerConfig, TrackerStats};

use std::fmt;
use std::net::IpAddr;

/// What a failure is counted against: an address (the usual `<HOST>`), a network (a subnet
/// detector's key, or a subnet ban), or any other id (`usedns = raw`, `<F-ID>`, a user name).
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
    /// Read a failure id as fail2ban's `IPAddr` would: an address, a network, else raw text.
    pub fn parse(text: &str) -> Self {
        if let Some(ip) = parse_ip(text) {
            return FailureKey::Ip(ip);
        }
        if text.contains('/') {
            if let Ok(net) = text.parse::<IpNet>() {
                return FailureKey::Net(net);
            }
        }
        FailureKey::Id(text.into())
    }

    /// The address, for an address key.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            FailureKey::Ip(ip) => Some(*ip),
            _ => None,
        }
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
