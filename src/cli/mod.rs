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
