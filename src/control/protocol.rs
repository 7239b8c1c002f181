//! The control socket's messages: one JSON request per line, one JSON reply per line.
//!
//! ```text
//! → {"cmd":"status","jail":"sshd"}
//! ← {"ok":true,"result":{"kind":"jail_status", …}}
//! ← {"ok":false,"error":"Sorry but the jail 'x' does not exist"}
//! ```
//! Requests are validated by the daemon like any untrusted input (jail names looked up,
//! addresses parsed); the client only shapes them.

use serde::{Deserialize, Serialize};

/// Longest request line the server reads (a `ban` of many addresses fits easily).
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Is the daemon there? → [`Reply::Pong`].
    Ping,
    /// → [`Reply::Version`].
    Version,
    /// All jails (`jail = None`) → [`Reply::Status`], or one → [`Reply::JailStatus`].
    Status {
        /// The jail, or all.
        #[serde(default)]
        jail: Option<String>,
    },
    /// Ban addresses by hand in a jail → [`Reply::Count`] (newly banned).
    Ban {
        /// The jail.
        jail: String,
        /// Addresses (IPv4/IPv6) or networks (`192.0.2.0/24`).
        ips: Vec<String>,
        /// Ban even what the jail would refuse: a prefix shorter than the server's floor,
        /// an ignored address.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
    },
    /// Unban addresses in one jail or all; `all` = every address → [`Reply::Count`].
    Unban {
        /// The jail, or every jail.
        #[serde(default)]
        jail: Option<String>,
        /// Addresses; empty with `all`.
        #[serde(default)]
        ips: Vec<String>,
        /// Unban everything (of the jail, or everywhere).
        #[serde(default)]
        all: bool,
    },
    /// Which addresses are banned where → [`Reply::Banned`] (no `ips`) or
    /// [`Reply::BannedIn`] (jails per asked address).
    Banned {
        /// Addresses to look up, or none for all bans.
        #[serde(default)]
        ips: Vec<String>,
    },
    /// Re-read the configuration (all jails, or one) → [`Reply::Reloaded`].
    Reload {
        /// The jail, or all.
        #[serde(default)]
        jail: Option<String>,
    },
    /// One setting of a jail (`jail = Some`) or of the server → [`Reply::Value`].
    Get {
        /// The jail, or the server (`loglevel`, `logtarget`, `dbfile`, `dbpurgeage`, …).
        #[serde(default)]
        jail: Option<String>,
        /// Option name as fail2ban-client spells it (`findtime`, `banned`, `banip`, …).
        option: String,
        /// Extra words (`get JAIL banned IP…`, `get JAIL banip --with-time`).
        #[serde(default)]
        args: Vec<String>,
    },
    /// Stop the daemon (fail2ban-client `stop`) → [`Reply::Ok`].
    Stop,
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// Answer to [`Request::Ping`].
    Pong,
    /// Answer to [`Request::Version`].
    Version {
        /// e.g. `banhammer-0.1.0`.
        version: String,
    },
    /// Jail names, sorted.
    Status {
        /// Running jails.
        jails: Vec<String>,
    },
    /// One jail's numbers (fail2ban-client's `status JAIL`).
    JailStatus(JailStatus),
    /// How many addresses a ban/unban changed.
    Count {
        /// The number.
        count: u64,
    },
    /// Every jail with its banned addresses, in jail order.
    Banned {
        /// `(jail, addresses)` pairs.
        jails: Vec<JailBans>,
    },
    /// For each asked address (same order), the jails that ban it.
    BannedIn {
        /// One list of jail names per address.
        jails: Vec<Vec<String>>,
    },
    /// What a reload did.
    Reloaded {
        /// One human line per jail started, stopped, kept or reloaded.
        messages: Vec<String>,
    },
    /// A setting's value, shaped for the client's fail2ban-style printing.
    Value {
        /// The option asked for (lower case).
        option: String,
        /// The value: string, number, list of strings, list of [`BanEntry`]…
        value: serde_json::Value,
    },
    /// Done, nothing to report.
    Ok,
}

/// fail2ban-client `status JAIL`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JailStatus {
    /// Jail name.
    pub name: String,
    /// Keys with failures counted now.
    pub currently_failed: u64,
    /// Failures since start.
    pub total_failed: u64,
    /// Files read (file backends).
    pub files: Vec<String>,
    /// Journal matches (systemd backend), `None` for other backends.
    pub journal_matches: Option<Vec<String>>,
    /// Bans in force.
    pub currently_banned: u64,
    /// Bans since start (restored ones included).
    pub total_banned: u64,
    /// Banned addresses.
    pub banned: Vec<String>,
}

/// The bans of one jail (`banned`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JailBans {
    /// Jail name.
    pub jail: String,
    /// Banned addresses.
    pub ips: Vec<String>,
}

/// One ban with its times (`get JAIL banip --with-time`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BanEntry {
    /// The address.
    pub ip: String,
    /// Unix time the ban started.
    pub time_of_ban: f64,
    /// Seconds; −1 = permanent.
    pub bantime: f64,
}

/// A reply line: `{"ok":true,"result":…}` or `{"ok":false,"error":"…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Whether the request succeeded.
    pub ok: bool,
    /// The reply when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Reply>,
    /// Why not, when not `ok` (fail2ban-client's wording where it has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Envelope {
    /// A success.
    pub fn ok(reply: Reply) -> Envelope {
        Envelope {
            ok: true,
            result: Some(reply),
            error: None,
        }
    }

    /// A failure.
    pub fn err(message: impl Into<String>) -> Envelope {
        Envelope {
            ok: false,
            result: None,
            error: Some(message.into()),
        }
    }
}
