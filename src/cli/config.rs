//! `banhammer config check|dump`: read the whole config tree as the daemon would and
//! report problems (`check`) or show every resolved jail (`dump`, like `fail2ban-client -d`).

use std::path::PathBuf;

use anyhow::Result;
use banhammer_config::ConfigTree;
use clap::{Args, Subcommand};

use crate::embedded::EMBEDDED_CONFIG;
use crate::pyfmt;

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Read every file, resolve every enabled jail and compile its regexes; report problems.
    Check(ConfigArgs),
    /// Print the resolved jails as fail2ban-client -d's command stream.
    Dump(ConfigArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Config directory overlaying the embedded tree (file by file).
    #[arg(
        short = 'c',
        long = "config-dir",
        visible_alias = "config",
        value_name = "DIR"
    )]
    pub config_dir: Option<PathBuf>,
    /// Only this jail.
    pub jail: Option<String>,
}

pub fn run(cmd: ConfigCmd) -> Result<()> {
    match cmd {
        ConfigCmd::Check(args) => check(&args),
        ConfigCmd::Dump(args) => dump(&args),
    }
}

fn tree(args: &ConfigArgs) -> Result<ConfigTree> {
    if let Some(dir) = &args.config_dir {
        if !dir.is_dir() {
            anyhow::bail!(
                "{}: not a directory (expected a config directory)",
                dir.display()
            );
        }
    }
    Ok(ConfigTree::new(EMBEDDED_CONFIG, args.config_dir.clone()))
}

fn load(args: &ConfigArgs) -> Result<banhammer_config::JailsConfig> {
    let tree = tree(args)?;
    let mut cfg = banhammer_config::read_jails(&tree).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(name) = &args.jail {
        cfg.jails.retain(|j| &j.name == name);
        if cfg.jails.is_empty() {
            anyhow::bail!("no jail named {name:?} in the configuration");
        }
    }
    Ok(cfg)
}

/// Runs exactly the daemon's checks: its server settings, then for every enabled jail (or
/// the one named) the plan `banhammer run` would make — filter compiled, source backend
/// and its arguments, actions (native nftables rules, action.d templates), ignorecommand.
/// Nothing is bound or started, so it works while the daemon runs.
fn check(args: &ConfigArgs) -> Result<()> {
    let tree = tree(args)?;
    let settings = crate::daemon::Settings::load(&tree, &Default::default())?;
    let cfg = load(args)?;
    for w in &cfg.warnings {
        eprintln!("warning: {}: {}", w.origin, w.message);
    }
    let now = jiff::Timestamp::now().as_second() as f64;
    let opts = crate::daemon::plan::PlanOptions {
        dry_run: false,
        journal_available: crate::source::journal::journal_available(),
        web_group: Some(settings.web_group.clone()),
    };
    let mut problems = 0;
    let mut enabled = 0;
    for jail in cfg
        .jails
        .iter()
        .filter(|j| j.enabled || args.jail.is_some())
    {
        enabled += 1;
        if let Err(e) = crate::daemon::plan::plan(jail, tree.overlay(), &opts, now) {
            eprintln!("error: {e:#}");
            problems += 1;
        }
    }
    if problems > 0 {
        anyhow::bail!("{problems} jail(s) have errors");
    }
    println!("OK: {} jails read, {} checked", cfg.jails.len(), enabled);
    Ok(())
}

fn dump(args: &ConfigArgs) -> Result<()> {
    let cfg = load(args)?;
    for w in &cfg.warnings {
        eprintln!("warning: {}: {}", w.origin, w.message);
    }
    for cmd in banhammer_config::dump_commands(&cfg) {
        let items: Vec<String> = cmd.iter().map(|s| pyfmt::string(s)).collect();
        println!("[{}]", items.join(", "));
    }
    Ok(())
}
