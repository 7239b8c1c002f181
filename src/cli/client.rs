//! The client verbs (`status`, `ban`, `unban`, `banned`, `reload`, `ping`, `get`,
//! `version`, `stop`, and `client WORDS…` for fail2ban-client's words): parse the flags
//! into a [`Request`], send it over the control socket, print the reply exactly as
//! fail2ban-client would ([`format`]) or as the JSON envelope (`--json`).

pub mod format;
pub mod words;

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use banhammer_config::{read_server, ConfigTree};
use clap::{Args, Subcommand, ValueEnum};

use crate::control::protocol::{Envelope, Request};
use crate::embedded::EMBEDDED_CONFIG;
use format::Flavor;
use words::Invocation;

/// Where the socket is when neither `--socket` nor the configuration says (the shipped
/// `fail2ban.conf` says the same).
pub const DEFAULT_SOCKET: &str = "/run/banhammer/banhammer.sock";

/// Flags every client verb takes.
#[derive(Debug, Clone, Args)]
pub struct ClientOpts {
    #[command(flatten)]
    pub location: super::DaemonLocation,
    /// Print the daemon's reply envelope as one line of JSON, for scripts.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for the daemon's reply.
    #[arg(short = 't', long, value_name = "SECONDS", default_value_t = 30.0)]
    pub timeout: f64,
}

/// The verbs that talk to a running daemon.
#[derive(Debug, Subcommand)]
pub enum ClientCmd {
    /// Show the jails, or one jail's failures and bans (fail2ban-client status).
    Status(StatusArgs),
    /// Ban addresses in a jail by hand (fail2ban-client set JAIL banip).
    Ban(BanArgs),
    /// Unban addresses in one jail or everywhere, or everything with --all.
    Unban(UnbanArgs),
    /// List bans of every jail, or the jails banning given addresses.
    Banned(BannedArgs),
    /// Re-read the configuration, for all jails or one.
    Reload(ReloadArgs),
    /// Check that the daemon answers.
    Ping(PlainArgs),
    /// Show a setting of the server or of a jail (fail2ban-client get).
    Get(GetArgs),
    /// Show the running daemon's version.
    Version(PlainArgs),
    /// Stop the daemon.
    Stop(PlainArgs),
    /// Run a fail2ban-client command given as its words (e.g. `client set sshd banip IP`).
    Client(WordsArgs),
}

/// A verb with no arguments of its own.
#[derive(Debug, Args)]
pub struct PlainArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FlavorArg {
    /// Counts, monitored files and banned addresses.
    Basic,
    /// Counts and monitored files only.
    Short,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    /// One jail, or all jails.
    pub jail: Option<String>,
    /// How much of the jail to show.
    #[arg(value_enum)]
    pub flavor: Option<FlavorArg>,
}

#[derive(Debug, Args)]
pub struct BanArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    /// The jail.
    pub jail: String,
    /// Addresses (or networks, `192.0.2.0/24`) to ban.
    #[arg(required = true, value_name = "IP")]
    pub ips: Vec<String>,
    /// Ban even a network wider than the server's `prefixfloor`/`prefixfloor6` (/16 and
    /// /32 by default) or an address the jail ignores (ignoreip, ignoreself).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct UnbanArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    /// Unban every address (of JAIL, or of every jail).
    #[arg(long)]
    pub all: bool,
    /// `[JAIL] [IP…]`: a first word that is not an address names the jail; without it,
    /// the addresses are unbanned in every jail.
    #[arg(value_name = "JAIL|IP")]
    pub words: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BannedArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    /// Addresses to look up; none lists every jail's bans.
    #[arg(value_name = "IP")]
    pub ips: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    /// Reload every jail (the default; fail2ban-client's spelling).
    #[arg(long, conflicts_with = "jail")]
    pub all: bool,
    /// Only this jail.
    pub jail: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    /// With `banip`: one ban per line with its start, bantime and end.
    #[arg(long)]
    pub with_time: bool,
    /// `OPTION` of the server (loglevel, logtarget, dbfile, dbpurgeage, …) or
    /// `JAIL OPTION [ARGS…]` (findtime, bantime, maxretry, logpath, failregex, ignoreip,
    /// actions, banned [IP…], banip [SEP], …).
    #[arg(required = true, value_name = "[JAIL] OPTION [ARGS]")]
    pub words: Vec<String>,
}

#[derive(Debug, Args)]
pub struct WordsArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    /// fail2ban-client's command words, e.g. `status sshd` or `set sshd unbanip IP`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "WORDS"
    )]
    pub words: Vec<String>,
}

impl ClientCmd {
    /// The common flags, and the invocation or why the arguments make none.
    fn split(self) -> (ClientOpts, Result<Invocation>) {
        match self {
            ClientCmd::Status(a) => {
                let flavor = match a.flavor {
                    Some(FlavorArg::Short) => Flavor::Short,
                    _ => Flavor::Basic,
                };
                let request = Request::Status { jail: a.jail };
                (a.opts, Ok(Invocation { request, flavor }))
            }
            ClientCmd::Ban(a) => {
                let req = Request::Ban {
                    jail: a.jail,
                    ips: a.ips,
                    force: a.force,
                };
                (a.opts, Ok(req.into()))
            }
            ClientCmd::Unban(a) => {
                let inv = unban(a.all, a.words).map(Invocation::from);
                (a.opts, inv)
            }
            ClientCmd::Banned(a) => (a.opts, Ok(Request::Banned { ips: a.ips }.into())),
            ClientCmd::Reload(a) => (a.opts, Ok(Request::Reload { jail: a.jail }.into())),
            ClientCmd::Ping(a) => (a.opts, Ok(Request::Ping.into())),
            ClientCmd::Version(a) => (a.opts, Ok(Request::Version.into())),
            ClientCmd::Stop(a) => (a.opts, Ok(Request::Stop.into())),
            ClientCmd::Get(a) => {
                let inv = get(a.words, a.with_time).map(Invocation::from);
                (a.opts, inv)
            }
            ClientCmd::Client(a) => {
                let inv = words::invocation(&a.words).map_err(anyhow::Error::msg);
                (a.opts, inv)
            }
        }
    }
}

/// `unban [--all] [JAIL] [IP…]`.
fn unban(all: bool, mut words: Vec<String>) -> Result<Request> {
    let jail = match words.first() {
        Some(w) if !looks_like_address(w) => Some(words.remove(0)),
        _ => None,
    };
    if all {
        if !words.is_empty() {
            bail!("unban --all takes no addresses (give a jail, or nothing for every jail)");
        }
        return Ok(Request::Unban {
            jail,
            ips: Vec::new(),
            all: true,
        });
    }
    if words.is_empty() {
        bail!("nothing to unban: give addresses, or --all");
    }
    Ok(Request::Unban {
        jail,
        ips: words,
        all: false,
    })
}

/// An IPv4/IPv6 address or network (`addr/len`): what `unban`'s first word must be to
/// be read as an address rather than a jail name.
fn looks_like_address(word: &str) -> bool {
    let addr = word.split_once('/').map_or(word, |(a, _)| a);
    addr.parse::<IpAddr>().is_ok()
}

/// `get OPTION` (server) or `get JAIL OPTION [ARGS…]`.
fn get(mut ws: Vec<String>, with_time: bool) -> Result<Request> {
    if ws.len() == 1 {
        if with_time {
            bail!("--with-time goes with `get JAIL banip`");
        }
        return Ok(Request::Get {
            jail: None,
            option: ws.remove(0).to_ascii_lowercase(),
            args: Vec::new(),
        });
    }
    let mut rest = ws.into_iter();
    let (Some(jail), Some(option)) = (rest.next(), rest.next()) else {
        bail!("{}", words::INVALID);
    };
    let mut args: Vec<String> = rest.collect();
    if with_time {
        args.push("--with-time".into());
    }
    Ok(Request::Get {
        jail: Some(jail),
        option: option.to_ascii_lowercase(),
        args,
    })
}

/// The control socket path: `--socket` if given, else `socket` from the `fail2ban`
/// config (`fail2ban.conf`, `.local`, `fail2ban.d/`) of `config_dir` overlaying the
/// embedded tree, else [`DEFAULT_SOCKET`]. A missing `config_dir` is not an error (the
/// embedded tree alone applies), so the client works on a machine with no /etc/banhammer.
pub fn socket_path(config_dir: &Path, socket_flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = socket_flag {
        return Ok(p.to_path_buf());
    }
    if config_dir.exists() && !config_dir.is_dir() {
        bail!(
            "{}: not a directory (expected a config directory)",
            config_dir.display()
        );
    }
    let tree = ConfigTree::new(EMBEDDED_CONFIG, Some(config_dir.to_path_buf()));
    let spec = read_server(&tree).map_err(|e| anyhow!("{e}"))?;
    Ok(match spec.socket.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => PathBuf::from(s),
        _ => PathBuf::from(DEFAULT_SOCKET),
    })
}

/// Runs a client verb. Errors (daemon unreachable, a refused request) come back as `Err`
/// for `main` to print on stderr with exit code 255, fail2ban-client's code.
pub fn run(cmd: ClientCmd) -> Result<()> {
    let (opts, call) = cmd.split();
    let (inv, env) = match call.and_then(|inv| send(&opts, inv)) {
        Ok(x) => x,
        Err(e) => {
            if opts.json {
                // Scripts reading --json get an envelope even when no daemon answered.
                print_line(&to_json(&Envelope::err(format!("{e:#}"))))?;
            }
            return Err(e);
        }
    };
    if opts.json {
        print_line(&to_json(&env))?;
    }
    match (env.ok, env.result) {
        (true, Some(reply)) => {
            if !opts.json {
                let tz = jiff::tz::TimeZone::system();
                print_line(&format::format_reply_as(
                    &inv.request,
                    &reply,
                    inv.flavor,
                    &tz,
                ))?;
            }
            Ok(())
        }
        (true, None) => bail!("the daemon replied without a result"),
        (false, _) => Err(anyhow!(env
            .error
            .unwrap_or_else(|| "the daemon reported an error".into()))),
    }
}

fn send(opts: &ClientOpts, inv: Invocation) -> Result<(Invocation, Envelope)> {
    let socket = socket_path(&opts.location.config_dir, opts.location.socket.as_deref())?;
    let timeout = Duration::try_from_secs_f64(opts.timeout)
        .map_err(|_| anyhow!("--timeout {}: not a number of seconds", opts.timeout))?;
    let env = crate::control::client::request(&socket, &inv.request, timeout)?;
    Ok((inv, env))
}

fn to_json(env: &Envelope) -> String {
    // Serializing an envelope cannot fail (string keys only); the fallback keeps the
    // output a valid envelope anyway.
    serde_json::to_string(env)
        .unwrap_or_else(|_| r#"{"ok":false,"error":"unprintable reply"}"#.to_string())
}

fn print_line(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{s}")?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests;
