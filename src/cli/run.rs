//! `banhammer run`: the daemon in the foreground. Parses its flags and hands over to
//! [`crate::daemon`].

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

/// Flags of `banhammer run`; each overrides the same setting of `fail2ban.conf`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub location: super::DaemonLocation,
    /// Pid file (fail2ban.conf `pidfile`).
    #[arg(short = 'p', long, value_name = "PATH")]
    pub pidfile: Option<PathBuf>,
    /// SQLite database (fail2ban.conf `dbfile`); `:memory:` keeps it in memory.
    #[arg(long = "db", value_name = "PATH")]
    pub db: Option<String>,
    /// CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG or TRACE (fail2ban.conf `loglevel`).
    #[arg(long = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// STDERR, STDOUT or a file (fail2ban.conf `logtarget`).
    #[arg(long = "log-target", value_name = "TARGET")]
    pub log_target: Option<String>,
    /// Serve Prometheus metrics on this loopback address (e.g. 127.0.0.1:9191).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Read and match, but change no firewall and run no action (every action acts as
    /// `dummy`).
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: RunArgs) -> Result<()> {
    crate::daemon::run(args)
}
