//! A syslog listener as a source (`backend = syslog[…]`): applications such as the
//! WordPress plugin (PHP's `syslog()`, i.e. glibc's) log straight to banhammer, no rsyslog
//! in between. Owns a Unix datagram socket and/or a loopback UDP socket; receives the
//! backend value and a stop request; emits one [`SourceEvent::Entry`] per datagram: the
//! line rsyslog's traditional file format would hold minus the date, `HOST TAG[PID]: MSG`,
//! so common.conf's `__prefix_line` matches it unchanged, timed at reception.
//!
//! Message text is attacker-controlled (a user name typed into a login form). Hence: one
//! datagram is one record, whatever it holds; control characters are escaped the way
//! rsyslog escapes them on receive (`\n` → `#012`), so a record cannot fake a second one;
//! datagrams above [`MAX_DATAGRAM`] are cut; bytes that are not UTF-8 stay as they are;
//! and the parser returns a record for any input (a property test feeds it garbage).
//! Only loopback addresses may be bound: the network never reaches this parser.
//!
//! Rooms: [`parse`] (datagram → record, pure), `listener` (sockets and threads); this
//! file reads the backend value.

mod listener;
pub mod parse;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use listener::{local_hostname, spawn_syslog, SyslogHandle};
pub use parse::{escape_controls, parse_datagram, SyslogRecord};

#[cfg(doc)]
use crate::source::SourceEvent;

/// The socket of a bare `backend = syslog`.
pub const DEFAULT_SOCKET: &str = "/run/banhammer/syslog.sock";

/// The socket's default permissions: writable by everyone, like `/dev/log`. The web
/// server's user (www-data) must be able to send; any local user could already write
/// the same lines to `/dev/log` for rsyslog to put in the files fail2ban reads, so a
/// narrower mode buys nothing unless the operator also restricts who may log (then use
/// `mode=0660` and a group).
pub const DEFAULT_MODE: u32 = 0o666;

/// Longest datagram taken whole (rsyslog's default `maxMessageSize`); the rest is cut.
pub const MAX_DATAGRAM: usize = 8192;

/// Where to listen, from `syslog[socket=PATH, udp=ADDR:PORT, mode=0666, facility=…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogListen {
    /// A Unix datagram socket (the default when no `udp` is given).
    pub socket: Option<PathBuf>,
    /// A UDP socket on a loopback address.
    pub udp: Option<SocketAddr>,
    /// The Unix socket's permission bits.
    pub mode: u32,
    /// Facilities taken (bit N = facility N); `None`: all.
    pub facilities: Option<u32>,
}

impl SyslogListen {
    /// Parses `syslog`, `syslog[socket=/run/banhammer/syslog.sock]`,
    /// `syslog[udp=127.0.0.1:5514]` (an IPv6 address needs quotes: `udp="[::1]:5514"`),
    /// both, `mode=0660` (octal) and `facility=authpriv` (names or numbers, several
    /// separated by spaces).
    pub fn from_backend(backend: &str) -> Result<SyslogListen, String> {
        let parsed = crate::source::backend::BackendArgs::parse(backend, "syslog", "syslog")?;
        let err = |what: String| parsed.err(what);
        let args = &parsed.args;
        let mut socket = None;
        let mut udp = None;
        let mut mode = None;
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
                "facility" => facilities = Some(parse_facilities(value).map_err(&err)?),
                _ => unknown.push(key.as_str()),
            }
        }
        parsed.reject_unknown(&unknown, "socket, udp, mode or facility")?;
        if socket.is_none() && udp.is_none() {
            socket = Some(PathBuf::from(DEFAULT_SOCKET));
        }
        if socket.is_none() && mode.is_some() {
            return Err(err(
                "mode applies to a Unix socket (expected socket=PATH with it)".to_string(),
            ));
        }
        Ok(SyslogListen {
            socket,
            udp,
            mode: mode.unwrap_or(DEFAULT_MODE),
            facilities,
        })
    }

    /// Whether records of `facility` are taken.
    pub fn accepts(&self, facility: u8) -> bool {
        self.facilities
            .is_none_or(|set| facility < 32 && set & (1 << facility) != 0)
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
            "mode = {value}: expected octal permissions such as 0666"
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
