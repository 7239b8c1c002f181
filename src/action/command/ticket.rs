//! The run-time values of one ban (fail2ban's `ActionInfo`). Owns [`Ticket`] and
//! [`Family`]; receives what the daemon knows about a ban (address, counts, times, matched
//! lines, captured `F-*` groups, optionally jail counters and database totals); emits the
//! string value of each dynamic tag (`<ip>`, `<matches>`, `<F-USER>`, …). Values are
//! returned raw: making them safe for a shell is `script`'s job.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Address family of a ticket, as fail2ban names it in `<family>` and in conditional option
/// names (`blocktype?family=inet6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// Not an address (a ticket keyed by user name, say), or an operation run for all
    /// families at once (the start of an action without family-conditional options).
    Unspecified,
    /// IPv4 (`inet4`).
    Inet4,
    /// IPv6 (`inet6`).
    Inet6,
}

impl Family {
    /// The family of a ticket key: an address, or a network in `addr/len` form.
    pub fn of(key: &str) -> Family {
        let addr = key.split_once('/').map_or(key, |(a, _)| a);
        match addr.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => Family::Inet4,
            Ok(IpAddr::V6(_)) => Family::Inet6,
            Err(_) => Family::Unspecified,
        }
    }

    /// `inet4`, `inet6`, or empty.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Unspecified => "",
            Family::Inet4 => "inet4",
            Family::Inet6 => "inet6",
        }
    }

    /// The suffix of this family's conditional option names (`?family=inet6`).
    pub(crate) fn conditional(self) -> Option<&'static str> {
        match self {
            Family::Unspecified => None,
            Family::Inet4 => Some("?family=inet4"),
            Family::Inet6 => Some("?family=inet6"),
        }
    }
}

/// The jail's counters at the time of the ban (`<jail.banned>` …).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JailCounters {
    /// Addresses banned now.
    pub banned: u64,
    /// Bans since the jail started.
    pub banned_total: u64,
    /// Addresses with failures being counted now.
    pub found: u64,
    /// Failures since the jail started.
    pub found_total: u64,
}

/// Totals from the database (`<ipmatches>`, `<ipfailures>` and their `ipjail*` twins).
/// Querying them costs a database read, so the daemon fills them only when
/// `CommandAction::uses_tag` says an action needs them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbValues {
    /// Matched lines of this address in all jails.
    pub ipmatches: Vec<String>,
    /// Matched lines of this address in this jail.
    pub ipjailmatches: Vec<String>,
    /// Failures of this address in all jails.
    pub ipfailures: u64,
    /// Failures of this address in this jail.
    pub ipjailfailures: u64,
}

/// The run-time values of one ban, unban or prolongation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ticket {
    /// The ticket key: an address (`192.0.2.7`, `2001:db8::1`), a network, or another id.
    pub ip: String,
    /// Failures that led to the ban (`<failures>`).
    pub failures: u32,
    /// Unix time of the ban (`<time>`).
    pub time: f64,
    /// Seconds of this ban, −1 for permanent (`<bantime>`).
    pub bantime: i64,
    /// How many times this address was banned before (`<bancount>`).
    pub bancount: u32,
    /// Restored from the database at startup (`<restored>`; `norestored` actions skip it).
    pub restored: bool,
    /// The matched log lines (`<matches>`, joined with newlines).
    pub matches: Vec<String>,
    /// Captured `F-*` groups, keyed as the filter names them (`user` for `<F-USER>`,
    /// `fid` for `<F-ID>`, `fport` for `<F-PORT>`).
    pub fields: BTreeMap<String, String>,
    /// The jail's counters, when an action uses `<jail.*>` tags.
    pub jail: Option<JailCounters>,
    /// Database totals; without them `<ipmatches>`/`<ipfailures>`… fall back to this
    /// ticket's own matches and failures, as fail2ban does without a database.
    pub db: Option<DbValues>,
    /// Reverse DNS name of the address (`<ip-host>`), when an action uses it.
    pub ip_host: Option<String>,
}

impl Ticket {
    /// A ticket for `ip` banned at `time` for `bantime` seconds (−1: permanent).
    pub fn new(ip: impl Into<String>, time: f64, bantime: i64) -> Ticket {
        Ticket {
            ip: ip.into(),
            time,
            bantime,
            ..Ticket::default()
        }
    }

    /// The family, derived from the key.
    pub fn family(&self) -> Family {
        Family::of(&self.ip)
    }

    /// The value of dynamic tag `tag` for an operation run for `family`, or `None` when
    /// `tag` is not a dynamic tag (it is then left in the command as written). `F-*`
    /// tags are answered by [`Ticket::field`].
    pub(crate) fn tag_value(&self, family: Family, tag: &str) -> Option<Cow<'_, str>> {
        let owned = |s: String| Some(Cow::Owned(s));
        match tag {
            "ip" | "fid" => Some(Cow::Borrowed(&self.ip)),
            "family" => Some(Cow::Borrowed(family.as_str())),
            "ip-rev" => owned(reverse_pointer(&self.ip)),
            "ip-host" => Some(Cow::Borrowed(self.ip_host.as_deref().unwrap_or(""))),
            "failures" => owned(self.failures.to_string()),
            "time" => owned(python_float(self.time)),
            "bantime" => owned(self.bantime.to_string()),
            "bancount" => owned(self.bancount.to_string()),
            "restored" => Some(Cow::Borrowed(if self.restored { "1" } else { "0" })),
            "matches" => owned(self.matches.join("\n")),
            "ipmatches" => owned(match &self.db {
                Some(db) => db.ipmatches.join("\n"),
                None => self.matches.join("\n"),
            }),
            "ipjailmatches" => owned(match &self.db {
                Some(db) => db.ipjailmatches.join("\n"),
                None => self.matches.join("\n"),
            }),
            "ipfailures" => owned(match &self.db {
                Some(db) => db.ipfailures.to_string(),
                None => self.failures.to_string(),
            }),
            "ipjailfailures" => owned(match &self.db {
                Some(db) => db.ipjailfailures.to_string(),
                None => self.failures.to_string(),
            }),
            "raw-ticket" => owned(format!("{self:?}")),
            "jail.banned" => self.counter(|c| c.banned),
            "jail.banned_total" => self.counter(|c| c.banned_total),
            "jail.found" => self.counter(|c| c.found),
            "jail.found_total" => self.counter(|c| c.found_total),
            _ => None,
        }
    }

    /// The value of `<F-NAME>` (`name` as written after `F-`): the captured group, or empty
    /// when the filter did not capture it (fail2ban's rule).
    pub(crate) fn field(&self, name: &str) -> &str {
        let key = banhammer_core::failtags::map_tag_name(name);
        self.fields.get(&key).map_or("", String::as_str)
    }

    /// A jail counter; empty when the daemon did not provide the counters (it provides
    /// them for actions that `uses_tag` them).
    fn counter(&self, get: impl Fn(&JailCounters) -> u64) -> Option<Cow<'_, str>> {
        Some(match &self.jail {
            Some(c) => Cow::Owned(get(c).to_string()),
            None => Cow::Borrowed(""),
        })
    }
}

/// fail2ban's `<ip-rev>`: the address's labels reversed with a trailing dot and no zone
/// (`192.0.2.7` → `7.2.0.192.`), ready for `<ip-rev>zen.spamhaus.org`. Empty for keys that
/// are not single addresses.
fn reverse_pointer(key: &str) -> String {
    match key.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.", o[3], o[2], o[1], o[0])
        }
        Ok(IpAddr::V6(a)) => {
            let mut out = String::with_capacity(64);
            for byte in a.octets().iter().rev() {
                for nibble in [byte & 0xf, byte >> 4] {
                    out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                    out.push('.');
                }
            }
            out
        }
        Err(_) => String::new(),
    }
}

/// A float as Python's `str()` prints it for the values we see (unix times): whole numbers
/// keep a `.0`, others print their shortest round-trip form.
fn python_float(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}
