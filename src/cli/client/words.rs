//! `banhammer client WORDS…`: fail2ban-client's command words mapped onto [`Request`]s,
//! so scripts written for fail2ban-client keep working with `banhammer client` in its
//! place. Pure: words in, an [`Invocation`] (or fail2ban's error text) out.

use super::format::Flavor;
use crate::control::protocol::Request;

/// fail2ban's answer to a command it cannot parse.
pub const INVALID: &str = "Sorry but the command is invalid";

/// A request and how its reply is printed.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// What is sent to the daemon.
    pub request: Request,
    /// `status JAIL` flavour (the reply carries everything; the client leaves out what
    /// the flavour does not show).
    pub flavor: Flavor,
}

impl From<Request> for Invocation {
    fn from(request: Request) -> Self {
        Invocation {
            request,
            flavor: Flavor::Basic,
        }
    }
}

/// fail2ban-client commands banhammer knows but does not take over the socket, with
/// what to do instead.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "start",
        "start the daemon with `banhammer run` (or systemctl)",
    ),
    (
        "restart",
        "restart the daemon with systemctl, or use `reload`",
    ),
    ("add", "add jails to the configuration and run `reload`"),
    (
        "flushlogs",
        "send SIGHUP, or let logrotate's copytruncate handle it",
    ),
    ("set", "change the configuration and run `reload`"),
    ("echo", "use `ping`"),
    ("server-status", "use `ping`"),
    ("sleep", "there is no server-side sleep"),
    (
        "stop",
        "to stop one jail, disable it in the configuration and run `reload`",
    ),
];

/// Maps fail2ban-client's words (`status sshd`, `set sshd banip 1.2.3.4`, …).
pub fn invocation(words: &[String]) -> Result<Invocation, String> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let owned = |s: &[&str]| s.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
    let req = match w.as_slice() {
        ["ping"] => Request::Ping,
        ["version"] => Request::Version,
        ["stop"] => Request::Stop,
        ["status"] => Request::Status { jail: None },
        ["status", jail] => Request::Status {
            jail: Some((*jail).into()),
        },
        ["status", jail, flavor] => {
            let flavor = match *flavor {
                "basic" => Flavor::Basic,
                "short" => Flavor::Short,
                "cymru" => {
                    return Err(
                        "status flavor 'cymru' is not supported by banhammer (basic or short)"
                            .into(),
                    )
                }
                _ => return Err(INVALID.into()),
            };
            return Ok(Invocation {
                request: Request::Status {
                    jail: Some((*jail).into()),
                },
                flavor,
            });
        }
        ["set", jail, "banip", ips @ ..] if !ips.is_empty() => Request::Ban {
            jail: (*jail).into(),
            ips: owned(ips),
            force: false,
        },
        ["set", _, "banip"] => return Err(INVALID.into()),
        ["set", jail, "unbanip", rest @ ..] => {
            // --report-absent makes fail2ban fail on an address that was not banned;
            // banhammer's count already tells (0), so the flag is accepted and ignored.
            let ips = match rest {
                ["--report-absent", ips @ ..] => ips,
                ips => ips,
            };
            if ips.is_empty() {
                return Err(INVALID.into());
            }
            Request::Unban {
                jail: Some((*jail).into()),
                ips: owned(ips),
                all: false,
            }
        }
        ["unban", "--all"] => Request::Unban {
            jail: None,
            ips: Vec::new(),
            all: true,
        },
        ["unban", ips @ ..] if !ips.is_empty() => Request::Unban {
            jail: None,
            ips: owned(ips),
            all: false,
        },
        ["banned", ips @ ..] => Request::Banned { ips: owned(ips) },
        ["get", option] => Request::Get {
            jail: None,
            option: option.to_ascii_lowercase(),
            args: Vec::new(),
        },
        ["get", jail, option, args @ ..] => Request::Get {
            jail: Some((*jail).into()),
            option: option.to_ascii_lowercase(),
            args: owned(args),
        },
        ["reload", rest @ ..] => reload(rest)?,
        [cmd, ..] => {
            return Err(match UNSUPPORTED.iter().find(|(c, _)| c == cmd) {
                Some((_, instead)) => {
                    format!(
                        "{INVALID} (banhammer does not support `{}`: {instead})",
                        w.join(" ")
                    )
                }
                None => INVALID.into(),
            })
        }
        [] => return Err(INVALID.into()),
    };
    Ok(req.into())
}

/// `reload [--all|JAIL]`; fail2ban's `--restart`, `--unban` and `--if-exists` have no
/// banhammer equivalent yet and are refused rather than silently ignored.
fn reload(rest: &[&str]) -> Result<Request, String> {
    if let Some(opt) = rest
        .iter()
        .find(|w| matches!(**w, "--restart" | "--unban" | "--if-exists"))
    {
        return Err(format!("reload {opt} is not supported by banhammer"));
    }
    match rest {
        [] | ["--all"] => Ok(Request::Reload { jail: None }),
        [jail] if !jail.starts_with('-') => Ok(Request::Reload {
            jail: Some((*jail).into()),
        }),
        _ => Err(INVALID.into()),
    }
}
