//! The values the store keeps and hands back: ban records, their JSON data, history
//! summaries, file checkpoints, and the [`Change`]s a batch is made of. Plain data, no SQL.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// `bantime` value of a permanent ban (fail2ban's `-1`). Any negative bantime is permanent.
pub const PERMANENT: f64 = -1.0;

/// Address family of a ban key, kept so the firewall can be restored per family
/// (one nftables set per jail and family) without re-parsing every key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Family {
    /// Not an address: a user name, a token, any other failure id (`usedns = raw`).
    #[default]
    None,
    /// IPv4 address or prefix.
    V4,
    /// IPv6 address or prefix.
    V6,
}

impl Family {
    /// The family of a key: an IP address or `address/prefix`; anything else is [`Family::None`].
    /// Only the address part is looked at: the prefix length is the firewall's business.
    pub fn of_key(key: &str) -> Family {
        let addr = key.split_once('/').map_or(key, |(a, _)| a);
        match addr.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => Family::V4,
            Ok(IpAddr::V6(_)) => Family::V6,
            Err(_) => Family::None,
        }
    }

    /// Stored form: 0, 4 or 6.
    pub(crate) fn to_db(self) -> i64 {
        match self {
            Family::None => 0,
            Family::V4 => 4,
            Family::V6 => 6,
        }
    }

    /// From the stored form.
    pub(crate) fn from_db(v: i64) -> Option<Family> {
        match v {
            0 => Some(Family::None),
            4 => Some(Family::V4),
            6 => Some(Family::V6),
            _ => None,
        }
    }
}

/// The ticket data stored with a ban (fail2ban's `data` JSON column): the newest matched lines,
/// the failure count, and any captured tags (`user`, …). Stored as one flat JSON object, e.g.
/// `{"matches": ["…"], "failures": 5, "user": "root"}`.
///
/// The caller truncates `matches` to `dbmaxmatches` before storing (the store keeps what it is
/// given). A tag named `matches` or `failures` is not stored (the fields own those names).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BanData {
    /// Newest matched log lines, oldest first.
    pub matches: Vec<String>,
    /// Failures counted for this ban (`<failures>`).
    pub failures: u32,
    /// Other ticket fields (captured `<F-…>` tags such as `user`), by name.
    pub tags: BTreeMap<String, serde_json::Value>,
}

const MATCHES: &str = "matches";
const FAILURES: &str = "failures";

// Hand-written (de)serialisation instead of `#[serde(flatten)]`: flatten buffers every value
// on the way in, which made restoring 100k bans several times slower than reading them.
impl Serialize for BanData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if !self.matches.is_empty() {
            map.serialize_entry(MATCHES, &self.matches)?;
        }
        map.serialize_entry(FAILURES, &self.failures)?;
        for (k, v) in &self.tags {
            if k != MATCHES && k != FAILURES {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for BanData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DataVisitor;
        impl<'de> Visitor<'de> for DataVisitor {
            type Value = BanData;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of ban data")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BanData, A::Error> {
                let mut data = BanData::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        MATCHES => {
                            data.matches = map.next_value::<Option<_>>()?.unwrap_or_default()
                        }
                        FAILURES => {
                            data.failures = map.next_value::<Option<_>>()?.unwrap_or_default()
                        }
                        _ => {
                            let value = map.next_value()?;
                            data.tags.insert(key, value);
                        }
                    }
                }
                Ok(data)
            }
        }
        d.deserialize_map(DataVisitor)
    }
}

/// One ban: as applied (`Change::Ban`), as kept while active, and as restored at start.
#[derive(Debug, Clone, PartialEq)]
pub struct BanRecord {
    /// Jail name.
    pub jail: String,
    /// What is banned: an IP, a CIDR prefix, or any failure id.
    pub key: String,
    /// Address family of `key` (see [`Family::of_key`]).
    pub family: Family,
    /// When the ban started, unix seconds.
    pub time_of_ban: f64,
    /// Duration in seconds; negative ([`PERMANENT`]) = permanent.
    pub bantime: f64,
    /// This ban's number for the offender in this jail (1 = first ban), fail2ban's `bancount`.
    pub ban_count: u32,
    /// Ticket data.
    pub data: BanData,
}

impl BanRecord {
    /// Whether the ban never ends.
    pub fn is_permanent(&self) -> bool {
        self.bantime < 0.0
    }

    /// When the ban ends, unix seconds (`None` = permanent).
    pub fn end(&self) -> Option<f64> {
        (!self.is_permanent()).then_some(self.time_of_ban + self.bantime)
    }
}

/// What the history says about an offender, as `bantime.increment` needs it (compat §4.3):
/// for one jail the latest ban's count, start and duration (fail2ban's `bips` row); over all
/// jails (`bantime.overalljails`) the sum of each jail's latest count, the latest start, and
/// the sum of each jail's latest duration — fail2ban's `sum(bancount), max(timeofban),
/// sum(bantime)`, kept as is (a permanent ban's −1 is summed like any other value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BanHistory {
    /// Previous ban count.
    pub ban_count: u32,
    /// Start of the latest ban, unix seconds.
    pub time_of_ban: f64,
    /// Duration of the latest ban (summed over jails for the overall query), seconds.
    pub bantime: f64,
}

/// A file read position, so a restart neither re-reads nor skips (design "source").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckpointKey {
    /// Who reads: a jail name or a source id shared by several jails.
    pub source: String,
    /// The file's path as configured (after glob expansion).
    pub path: String,
}

/// A file read position with the fingerprint of the file it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Who reads: a jail name or a source id shared by several jails.
    pub source: String,
    /// The file's path.
    pub path: String,
    /// Identity of the file (e.g. device+inode and a hash of the first line); opaque here.
    pub fingerprint: String,
    /// Byte offset of the first unread byte.
    pub offset: u64,
    /// When the position was recorded, unix seconds.
    pub updated_at: f64,
}

/// One change in a batch. A batch ([`crate::Store::apply`]) is one transaction: all of its
/// changes are stored, or none.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new ban: becomes (or replaces) the active ban of `(jail, key)` and is appended to the
    /// history. Restored bans are not re-stored (they are already there).
    Ban(BanRecord),
    /// An unban. `delete_history` = the offender is forgiven (fail2ban's `unbanip` deletes its
    /// rows, so later bans start from the base bantime again); an expiry keeps the history.
    Unban {
        /// Jail name.
        jail: String,
        /// Banned key.
        key: String,
        /// Also delete the key's history in this jail.
        delete_history: bool,
    },
    /// Unban every key of one jail (`jail = Some`) or of all jails.
    UnbanAll {
        /// The jail, or all jails.
        jail: Option<String>,
        /// Also delete the history of the unbanned jail(s).
        delete_history: bool,
    },
    /// Record a file read position (replaces the previous one of `(source, path)`).
    Checkpoint(Checkpoint),
    /// Forget a file read position (the file is no longer watched).
    ForgetCheckpoint(CheckpointKey),
    /// Set (`Some`) or delete (`None`) a metadata value.
    Meta {
        /// Name.
        key: String,
        /// Value, or `None` to delete.
        value: Option<String>,
    },
}

/// What [`crate::Store::purge`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purged {
    /// History rows removed.
    pub history: usize,
    /// Expired active bans removed.
    pub expired_bans: usize,
}

/// Where a purge stopped: steps of [`crate::Store::purge_step`] resume after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PurgeCursor {
    /// `time_of_ban` of the last history row looked at.
    pub time_of_ban: f64,
    /// Its id (ties of `time_of_ban`).
    pub id: i64,
    /// Nothing is left to look at: the purge is complete.
    pub done: bool,
}

impl Default for PurgeCursor {
    /// A purge from the start.
    fn default() -> PurgeCursor {
        PurgeCursor {
            time_of_ban: f64::NEG_INFINITY,
            id: i64::MIN,
            done: false,
        }
    }
}
