//! The jail state: failures in, ban and unban decisions out (design.md "Data flow").
//!
//! Owns, for one jail, the failure counts ([`FailTracker`], fail2ban's `FailManager`), the
//! ignore list ([`IgnoreList`]), the ban-time policy ([`BanTimePolicy`], `bantime.increment`)
//! and the current bans with their expiry queue ([`JailState`], fail2ban's `BanManager`).
//! Receives failures from the matcher (a [`FailureKey`] — canonical addresses only, see
//! [`canonical`] and [`failure_target`] —, a time, the matched lines, and the
//! offender's ban history looked up by the caller in the store) and the current time from its
//! owner; emits [`Decision`]s (ban, prolong, ignored…) and [`Unban`]s for the actions room. It
//! does no I/O and reads no clock: DNS, the host's own addresses and the store are the
//! caller's job.
//!
//! The tracker is generic over its key so the distributed-attack detectors (per target user,
//! per subnet, global rate) can count by any captured field with the same rules.

mod addr;
mod bantime;
pub mod canonical;
mod key;
mod state;
mod tracker;

#[cfg(test)]
mod tests;

pub use addr::{normalize_ip, parse_ip, AddrError, IgnoreEntry, IgnoreList, IgnoreSource, IpNet};
pub use bantime::{
    BanHistory, BanLength, BanTimeConfig, BanTimeError, BanTimePolicy, DEFAULT_FORMULA, EXP_FORMULA,
};
pub use canonical::{is_host_name, parse_canonical_ip};
pub use key::{failure_target, FailureKey, FailureTarget, NoAddress};
pub use state::{
    Ban, Decision, DropReason, JailConfig, JailState, JailStats, TimeMode, Unban, UnbanReason,
};
pub use tracker::{py_round, Added, FailTicket, FailTracker, TrackerConfig, TrackerStats};
