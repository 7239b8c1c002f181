//! The command line: one module per verb. Parses arguments (clap) and dispatches; each
//! verb returns `anyhow::Result` and `main` maps errors to exit codes.

pub mod client;
pub mod config;
pub mod regex;
pub mod run;

use clap::{Parser, Subcommand};

/// banhammer: a fast, fail2ban-compatible intrusion-prevention daemon.
#[derive(Debug, Parser)]
#[command(name = "banhammer", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground: tail logs, ban, persist, answer the control socket.
    Run(run::RunArgs),
    /// Test a filter (or a regex) against a log, like fail2ban-regex.
    Regex(regex::RegexArgs),
    /// Check or show the resolved configuration.
    #[command(subcommand)]
    Config(config::ConfigCmd),
    /// The verbs that talk to a running daemon over its control socket (status, ban,
    /// unban, banned, reload, ping, get, version, stop, client WORDS…).
    #[command(flatten)]
    Client(client::ClientCmd),
}

/// Where the daemon's configuration and control socket are: the same flags for `run` and
/// for the client verbs, so a client finds the daemon it was started like.
#[derive(Debug, Clone, clap::Args)]
pub struct DaemonLocation {
    /// Config directory overlaying the embedded tree file by file; its fail2ban.conf/.local
    /// also names the socket.
    #[arg(
        short = 'c',
        long = "config-dir",
        visible_alias = "config",
        value_name = "DIR",
        default_value = "/etc/banhammer"
    )]
    pub config_dir: std::path::PathBuf,
    /// Control socket path (wins over the configuration's `socket`).
    #[arg(short = 's', long, value_name = "PATH")]
    pub socket: Option<std::path::PathBuf>,
}
