//! A syslog listener as a source (`backend = syslog[…]`): applications such as the
//! WordPress plugin (PHP's `syslog()`, i.e. glibc's) log straight to banhammer, no rsyslog
//! in between. Owns a Unix datagram socket and/or a loopback UDP socket; receives the
//! backend value and a stop request; emits one [`SourceEvent::Entry`] per datagram: the
//! line rsyslog's traditional file format would hold minus the date, `HOST TAG[PID]: MSG`,
//! so common.conf's `__prefix_line` matches it unchanged, timed at reception.
//!
//! Whoever can send here can get an address banned, so who may send is decided three
//! times. The Unix socket is `root:GROUP` with mode 0660 by default (`group=`, default
//! `www-data`; `mode=`), set before the socket is moved into place. Each datagram's sender
//! is read from the kernel (`SO_PASSCRED`) and must be in `senders=` (default: root and the
//! user named like the group); others are dropped and counted. And each sender (a uid; on
//! UDP, a source address) gets a token bucket (`rate=N` records a second, five seconds'
//! worth at once; default 200), so one sender's flood cannot crowd out the others. The
//! loopback UDP listener has no sender credentials — any local process can send to it —
//! and is the weaker choice: opt-in, rate-limited per address only.
//!
//! Message text is attacker-controlled (a user name typed into a login form). Hence: one
//! datagram is one record, whatever it holds; control characters are escaped the way
//! rsyslog escapes them on receive (`\n` → `#012`), so a record cannot fake a second one;
//! a datagram above [`MAX_DATAGRAM`] is dropped whole and reported, never cut (a cut
//! `from 6.6` would be an address); bytes that are not UTF-8 stay as they are; and the
//! parser returns a record for any input (property tests feed it garbage). Only loopback
//! addresses may be bound: the network never reaches this parser. Drops of every kind are
//! counted in [`SyslogStats`].
//!
//! Rooms: [`parse`] (datagram → record, pure), [`limit`] (the rate limit), `accounts`
//! (user and group names), `kernel_drops` (the UDP socket's kernel drop count), `listener`
//! (sockets and threads); this file reads the backend value.

mod accounts;
mod kernel_drops;
pub mod limit;
mod listener;
pub mod parse;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use accounts::Accounts;
pub use limit::Rate;
pub use listener::{local_hostname, spawn_syslog, SyslogHandle, SyslogStats};
pub use parse::{escape_controls, parse_datagram, SyslogRecord};

#[cfg(doc)]
use crate::source::SourceEvent;

/// The socket of a bare `backend = syslog`.
pub const DEFAULT_SOCKET: &str = "/run/banhammer/syslog.sock";

/// The socket's default permissions: owner root and its group may send, nobody else.
/// (`/dev/log` is 0666, but what is written there only reaches a file a filter reads after
/// rsyslog; this socket feeds the filters directly.)
pub const DEFAULT_MODE: u32 = 0o660;

/// The group given the socket when the backend names none, as [`SyslogListen::from_backend`]
/// uses it: the web server's user on Debian and Ubuntu.
pub const DEFAULT_GROUP: &str = "www-data";

/// Longest datagram taken (rsyslog's default `maxMessageSize`); a longer one is dropped
/// whole.
pub const MAX_DATAGRAM: usize = 8192;

/// Where to listen and whom to hear, from `syslog[socket=PATH, udp=ADDR:PORT, mode=0660,
/// group=NAME, senders=NAMES, rate=N, facility=…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogListen {
    /// A Unix datagram socket (the default when no `udp` is given).
    pub socket: Option<PathBuf>,
    /// A UDP socket on a loopback address.
    pub udp: Option<SocketAddr>,
    /// The Unix socket's permission bits.
    pub mode: u32,
    /// The Unix socket's group (its owner is root, or whoever runs banhammer).
    pub group: u32,
    /// Uids allowed to send on the Unix socket (checked on each datagram's credentials).
    pub senders: Vec<u32>,
    /// Each sender's rate limit.
    pub rate: Rate,
    /// Facilities taken (bit N = facility N); `None`: all.
    pub facilities: Option<u32>,
    /// Things the operator should know about these settings (a default group that does not
    /// exist, a mode that lets everyone send), logged when the listener starts.
    pub notes: Vec<String>,
}

impl SyslogListen {
    /// Parses the backend value with [`DEFAULT_GROUP`] as the default group; see
    /// [`from_backend_with`](Self::from_backend_with).
    pub fn from_backend(backend: &str) -> Result<SyslogListen, String> {
        Self::from_backend_with(backend, Some(DEFAULT_GROUP))
    }

    /// Parses `syslog`, `syslog[socket=/run/banhammer/syslog.sock]`,
    /// `syslog[udp=127.0.0.1:5514]` (an IPv6 address needs quotes: `udp="[::1]:5514"`),
    /// both, `mode=0660` (octal), `group=www-data` (a name or a number), `senders=root
    /// www-data` (user names or numbers), `rate=200` (records a second per sender) and
    /// `facility=authpriv` (names or numbers, several separated by spaces). Names are
    /// looked up in `/etc/passwd` and `/etc/group`.
    ///
    /// Without `group=`, the socket's group is `default_group`; when that group does not
    /// exist (or is `None`) it is root's (0), with a note rather than an error. A group or
    /// sender named explicitly that does not exist is an error naming it. Without
    /// `senders=`, root and the user named like the group (if there is one) may send.
    pub fn from_backend_with(
        backend: &str,
        default_group: Option<&str>,
    ) -> Result<SyslogListen, String> {
        Self::from_backend_in(backend, default_group, &Accounts::system())
    }

    /// [`from_backend_with`](Self::from_backend_with) with the accounts given.
    pub fn from_backend_in(
        backend: &str,
        default_group: Option<&str>,
        accounts: &Accounts,
    ) -> Result<SyslogListen, String> {
        let parsed = crate::source::backend::BackendArgs::parse(backend, "syslog", "syslog")?;
        let err = |what: String| parsed.err(what);
        let args = &parsed.args;
        let mut socket = None;
        let mut udp = None;
        let mut mode = None;
        let mut group = None;
        let mut senders = None;
        let mut rate = None;
        let mut facilities = None;
        let mut unknown = Vec::new();
        for (key, value) in args {
            match key.as_str() {
                "socket" if value.is_empty() => {
                    return Err(err("socket is empty (expected a path)".to_string()))
                }
                "socket" => socket = Some(PathBuf::from(value)),
                "udp" => udp = Some(parse_loopback(value).map_err(&err)?),
                "mode" => mode = Some(parse_mode(value).map_err(&err)?),
                "group" => group = Some(value.trim().to_string()),
                "senders" => senders = Some(value.clone()),
                "rate" => rate = Some(parse_rate(value).map_err(&err)?),
                "facility" => facilities = Some(parse_facilities(value).map_err(&err)?),
                _ => unknown.push(key.as_str()),
            }
        }
        parsed.reject_unknown(
            &unknown,
            "socket, udp, mode, group, senders, rate or facility",
        )?;
        if socket.is_none() && udp.is_none() {
            socket = Some(PathBuf::from(DEFAULT_SOCKET));
        }
        if socket.is_none() {
            for (given, name) in [
                (mode.is_some(), "mode"),
                (group.is_some(), "group"),
                (senders.is_some(), "senders"),
            ] {
                if given {
                    return Err(err(format!(
                        "{name} applies to a Unix socket (expected socket=PATH with it)"
                    )));
                }
            }
        }
        let mut notes = Vec::new();
        let (gid, group_name) = match &group {
            Some(g) if g.is_empty() => {
                return Err(err(
                    "group is empty (expected a group name or number)".into()
                ))
            }
            Some(g) => match accounts::resolve(g, |n| accounts.gid(n)) {
                Some(gid) => (gid, accounts.group_name(gid).map(str::to_string)),
                None => {
                    return Err(err(format!(
                        "group = {g}: no such group in /etc/group (expected a group name or \
                         number)"
                    )))
                }
            },
            None => match default_group.and_then(|g| accounts.gid(g).map(|gid| (g, gid))) {
                Some((name, gid)) => (gid, Some(name.to_string())),
                None => {
                    if socket.is_some() {
                        notes.push(format!(
                            "syslog socket: {}; the socket's group is root's, so only root \
                             may send (set group= in the backend to let the web server's \
                             user send)",
                            match default_group {
                                Some(g) => format!("the default group {g} does not exist"),
                                None => "no group given".to_string(),
                            }
                        ));
                    }
                    (0, None)
                }
            },
        };
        let senders = match &senders {
            Some(words) => {
                let mut uids = Vec::new();
                for w in words.split_whitespace() {
                    match accounts::resolve(w, |n| accounts.uid(n)) {
                        Some(uid) => uids.push(uid),
                        None => {
                            return Err(err(format!(
                                "senders: no such user {w:?} in /etc/passwd (expected user \
                                 names or numbers)"
                            )))
                        }
                    }
                }
                if uids.is_empty() {
                    return Err(err(
                        "senders is empty (expected user names or numbers)".into()
                    ));
                }
                uids
            }
            None => {
                let mut uids = vec![0];
                let user = group_name.as_deref().and_then(|n| accounts.uid(n));
                match user {
                    Some(uid) if gid != 0 => uids.push(uid),
                    None if gid != 0 && socket.is_some() => notes.push(format!(
                        "syslog socket: no user named like group {}; only root may send \
                         unless senders= says who",
                        group_name
                            .as_deref()
                            .map_or_else(|| gid.to_string(), str::to_string)
                    )),
                    _ => {}
                }
                uids
            }
        };
        let mode = mode.unwrap_or(DEFAULT_MODE);
        if socket.is_some() && mode & 0o002 != 0 {
            notes.push(format!(
                "syslog socket: mode {mode:04o} lets every local user send; only the \
                 senders allow-list stands between them and a ban"
            ));
        }
        Ok(SyslogListen {
            socket,
            udp,
            mode,
            group: gid,
            senders,
            rate: rate.unwrap_or_default(),
            facilities,
            notes,
        })
    }

    /// Whether records of `facility` are taken.
    pub fn accepts(&self, facility: u8) -> bool {
        self.facilities
            .is_none_or(|set| facility < 32 && set & (1 << facility) != 0)
    }
}

fn parse_rate(value: &str) -> Result<Rate, String> {
    match value.trim().parse::<u32>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(Rate::per_second(n)),
        _ => Err(format!(
            "rate = {value}: expected records a second per sender, 1 to 1000000"
        )),
    }
}

fn parse_loopback(value: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = value
        .trim()
        .parse()
        .map_err(|_| format!("udp = {value}: expected ADDRESS:PORT such as 127.0.0.1:5514"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "udp = {value}: {} is not a loopback address; the syslog listener takes only \
             local senders (expected 127.0.0.1 or ::1)",
            addr.ip()
        ));
    }
    Ok(addr)
}

fn parse_mode(value: &str) -> Result<u32, String> {
    let v = value.trim();
    let digits = v.strip_prefix("0o").unwrap_or(v);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 && !digits.is_empty() => Ok(m),
        _ => Err(format!(
            "mode = {value}: expected octal permissions such as 0660"
        )),
    }
}

/// Facility names as syslog.conf knows them.
const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("security", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("ntp", 12),
    ("audit", 13),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

fn parse_facilities(value: &str) -> Result<u32, String> {
    let mut set = 0u32;
    for word in value.split_whitespace() {
        let w = word.to_ascii_lowercase();
        let n = FACILITIES
            .iter()
            .find(|(name, _)| *name == w)
            .map(|&(_, n)| n)
            .or_else(|| w.parse::<u8>().ok().filter(|&n| n < 24));
        match n {
            Some(n) => set |= 1 << n,
            None => {
                return Err(format!(
                    "facility = {value}: unknown facility {word:?} (expected names such as \
                     auth, authpriv, user, daemon, local0…local7, or numbers 0-23)"
                ))
            }
        }
    }
    if set == 0 {
        return Err(format!(
            "facility = {value}: expected at least one facility"
        ));
    }
    Ok(set)
}

#[cfg(test)]
mod tests;
