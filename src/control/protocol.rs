//! The control socket's messages: one JSON request per line, one JSON reply per line.
//!
//! ```text
//! → {"cmd":"status","jail":"sshd"}
//! ← {"ok":true,"result":{"kind":"jail_status", …}}
//! ← {"ok":false,"error":"Sorry but the jail 'x' does not exist"}
//! ```
//! Requests are validated by the daemon like any untrusted input (jail names looked up,
//! addresses parsed); the client only shapes them. [`parse_request`] is the one way a
//! line becomes a [`Request`]: bounded in size (and, through serde_json, in nesting
//! depth), with an error that says what is wrong and where, short whatever the input.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest request line the server reads (a `ban` of many addresses fits easily).
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Longest error message [`parse_request`] gives: serde quotes the offending value
/// (an unknown command name, say), which may be up to a whole request long.
pub const MAX_ERROR_CHARS: usize = 300;

/// Why a request line is not a [`Request`]. Displays as `invalid request: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRequest(String);

impl fmt::Display for InvalidRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid request: {}", self.0)
    }
}

impl std::error::Error for InvalidRequest {}

/// Reads one request line (its newline removed; surrounding white space is ignored).
///
/// A line over [`MAX_REQUEST_BYTES`] is refused before it is looked at; otherwise the
/// work is one linear pass of serde_json, whose recursion limit (128) refuses deeper
/// nesting rather than exhaust the stack.
pub fn parse_request(line: &[u8]) -> Result<Request, InvalidRequest> {
    if line.len() > MAX_REQUEST_BYTES {
        return Err(InvalidRequest(format!(
            "line longer than {MAX_REQUEST_BYTES} bytes"
        )));
    }
    serde_json::from_slice(line.trim_ascii()).map_err(|e| InvalidRequest(shorten(&e.to_string())))
}

/// Keeps the head of a long message (what is wrong) and its tail (serde's "at line 1
/// column N"), cutting the middle.
fn shorten(msg: &str) -> String {
    let chars = msg.chars().count();
    if chars <= MAX_ERROR_CHARS {
        return msg.to_string();
    }
    let tail = 40;
    let head: String = msg.chars().take(MAX_ERROR_CHARS - tail - 1).collect();
    let end: String = msg.chars().skip(chars - tail).collect();
    format!("{head}…{end}")
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn err(line: &[u8]) -> String {
        parse_request(line).unwrap_err().to_string()
    }

    #[test]
    fn errors_say_what_is_wrong_and_where() {
        assert_eq!(
            err(b"{\"cmd\":\"explode\"}"),
            "invalid request: unknown variant `explode`, expected one of `ping`, `version`, \
             `status`, `ban`, `unban`, `banned`, `reload`, `get`, `stop` at line 1 column 16"
        );
        assert_eq!(
            err(b"{\"cmd\":\"ban\",\"jail\":\"sshd\"}"),
            "invalid request: missing field `ips`"
        );
        assert_eq!(
            err(b"{\"cmd\":\"status\",\"x\":1}"),
            "invalid request: unknown field `x`, expected `jail`"
        );
        assert_eq!(
            err(b"not json"),
            "invalid request: expected ident at line 1 column 2"
        );
        assert_eq!(
            err(b"{\"cmd\":\"ping\"} {}"),
            "invalid request: trailing characters at line 1 column 16"
        );
        assert_eq!(
            parse_request(b" {\"cmd\":\"ping\"}\r").unwrap(),
            Request::Ping
        );
    }

    #[test]
    fn a_line_over_the_limit_is_refused_unread() {
        // Valid JSON of the right shape, but too long: refused on its length alone.
        let mut line = b"{\"cmd\":\"ping\"}".to_vec();
        line.resize(MAX_REQUEST_BYTES + 1, b' ');
        assert_eq!(
            parse_request(&line).unwrap_err().to_string(),
            format!("invalid request: line longer than {MAX_REQUEST_BYTES} bytes")
        );
        line.truncate(MAX_REQUEST_BYTES);
        assert_eq!(parse_request(&line).unwrap(), Request::Ping);
    }

    #[test]
    fn deep_nesting_is_refused_not_recursed_into() {
        let mut line = b"{\"cmd\":\"ban\",\"jail\":\"x\",\"ips\":".to_vec();
        line.resize(MAX_REQUEST_BYTES, b'[');
        let e = err(&line);
        assert!(
            e.starts_with("invalid request: recursion limit exceeded"),
            "{e}"
        );
    }

    #[test]
    fn an_echoed_value_is_cut_so_the_error_stays_short() {
        let mut line = b"{\"cmd\":\"".to_vec();
        line.extend(std::iter::repeat_n(b'z', MAX_REQUEST_BYTES - 20));
        line.extend(b"\"}");
        let e = err(&line);
        let msg = e.strip_prefix("invalid request: ").unwrap();
        assert_eq!(msg.chars().count(), MAX_ERROR_CHARS, "{e}");
        assert!(msg.starts_with("unknown variant `zzz"), "{e}");
        assert!(msg.contains('…'));
        // The place survives the cut.
        let column = MAX_REQUEST_BYTES - 11;
        assert!(msg.ends_with(&format!("at line 1 column {column}")), "{e}");
    }

    fn word() -> impl Strategy<Value = String> + Clone {
        "[a-z0-9.:-]{0,12}"
    }

    fn request() -> impl Strategy<Value = Request> {
        let jail = proptest::option::of(word());
        let ips = proptest::collection::vec(word(), 0..4);
        prop_oneof![
            Just(Request::Ping),
            Just(Request::Version),
            Just(Request::Stop),
            jail.clone().prop_map(|jail| Request::Status { jail }),
            jail.clone().prop_map(|jail| Request::Reload { jail }),
            (word(), ips.clone(), any::<bool>()).prop_map(|(jail, ips, force)| Request::Ban {
                jail,
                ips,
                force
            }),
            ips.clone().prop_map(|ips| Request::Banned { ips }),
            (jail.clone(), ips.clone(), any::<bool>())
                .prop_map(|(jail, ips, all)| Request::Unban { jail, ips, all }),
            (jail, word(), ips).prop_map(|(jail, option, args)| Request::Get {
                jail,
                option,
                args
            }),
        ]
    }

    /// One edit of a byte string: replace, insert, delete, cut or double a range.
    #[derive(Debug, Clone)]
    enum Edit {
        Replace(usize, u8),
        Insert(usize, u8),
        Delete(usize, usize),
        Truncate(usize),
        Repeat(usize, usize),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        // Bytes from JSON's own alphabet make mutations that get past the first
        // character more often than random ones.
        let byte = prop_oneof![
            any::<u8>(),
            proptest::sample::select(b"{}[]\":,\\ 0123456789-.eE\n\ttruefalsnul".to_vec()),
        ];
        prop_oneof![
            (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Replace(i, b)),
            (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
            (any::<usize>(), 0usize..8).prop_map(|(i, n)| Edit::Delete(i, n)),
            any::<usize>().prop_map(Edit::Truncate),
            (any::<usize>(), 0usize..16).prop_map(|(i, n)| Edit::Repeat(i, n)),
        ]
    }

    fn apply(line: &mut Vec<u8>, e: &Edit) {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match *e {
            Edit::Replace(i, b) if !line.is_empty() => {
                let i = i % line.len();
                line[i] = b;
            }
            Edit::Replace(..) => {}
            Edit::Insert(i, b) => line.insert(at(i, line.len()), b),
            Edit::Delete(i, n) => {
                let i = at(i, line.len());
                let j = (i + n).min(line.len());
                line.drain(i..j);
            }
            Edit::Truncate(i) => line.truncate(at(i, line.len())),
            Edit::Repeat(i, n) => {
                let i = at(i, line.len());
                let j = (i + n).min(line.len());
                let piece = line[i..j].to_vec();
                line.splice(j..j, piece);
            }
        }
    }

    /// How the parser's errors open: each names a kind of problem (serde_json's and
    /// serde's wordings, then what follows says which field, value or place). Found by
    /// running the properties below over many more cases than they run by default.
    const PROBLEMS: &[&str] = &[
        "EOF while parsing",
        "control character",
        "duplicate field `",
        "expected ",
        "invalid escape",
        "invalid number",
        "invalid type: ",
        "invalid unicode code point",
        "invalid value: ",
        "invalid length ",
        "key must be a string",
        "lone leading surrogate",
        "missing field `",
        "number out of range",
        "recursion limit exceeded",
        "trailing characters",
        "trailing comma",
        "unexpected end of hex escape",
        "unknown field `",
        "unknown variant `",
    ];

    /// What any answer of the parser must satisfy: an error is prefixed, short and opens
    /// with what is wrong; a success is a request that survives its own round trip.
    fn check(line: &[u8]) -> Result<(), TestCaseError> {
        match parse_request(line) {
            Ok(req) => {
                let again = serde_json::to_vec(&req).unwrap();
                prop_assert_eq!(parse_request(&again).unwrap(), req);
            }
            Err(e) => {
                let text = e.to_string();
                let msg = text.strip_prefix("invalid request: ").unwrap();
                prop_assert!(msg.chars().count() <= MAX_ERROR_CHARS, "{}", text);
                prop_assert!(
                    PROBLEMS.iter().any(|p| msg.starts_with(p)),
                    "an error that does not open with what is wrong: {}",
                    text
                );
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bytes_never_panic_and_get_a_clear_error(
            line in proptest::collection::vec(any::<u8>(), 0..512)
        ) {
            check(&line)?;
        }

        #[test]
        fn mutated_requests_never_panic_and_get_a_clear_error(
            req in request(),
            edits in proptest::collection::vec(edit(), 1..6),
        ) {
            let mut line = serde_json::to_vec(&req).unwrap();
            prop_assert_eq!(parse_request(&line).unwrap(), req);
            for e in &edits {
                apply(&mut line, e);
            }
            check(&line)?;
        }
    }
}
