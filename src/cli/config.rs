//! `banhammer config check|dump`: read the whole config tree as the daemon would and
//! report problems (`check`) or show every resolved jail (`dump`, like `fail2ban-client -d`).

use std::path::PathBuf;

use anyhow::Result;
use banhammer_config::{ConfigTree, JailSpec};
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

fn check(args: &ConfigArgs) -> Result<()> {
    let cfg = load(args)?;
    for w in &cfg.warnings {
        eprintln!("warning: {}: {}", w.origin, w.message);
    }
    let now = jiff::Timestamp::now().as_second();
    let mut problems = 0;
    let mut enabled = 0;
    for jail in cfg
        .jails
        .iter()
        .filter(|j| j.enabled || args.jail.is_some())
    {
        enabled += 1;
        if let Err(e) = check_jail(jail, now) {
            eprintln!("error: {}: jail [{}]: {e:#}", jail.origin, jail.name);
            problems += 1;
        }
    }
    if problems > 0 {
        anyhow::bail!("{problems} jail(s) have errors");
    }
    println!("OK: {} jails read, {} checked", cfg.jails.len(), enabled);
    Ok(())
}

fn check_jail(jail: &JailSpec, now: i64) -> Result<()> {
    let Some(spec) = &jail.filter else {
        anyhow::bail!("no filter (set `filter = NAME`)");
    };
    let resolved = crate::filterload::ResolvedFilter {
        origin: crate::filterload::FilterOrigin::Named {
            name: spec.name.clone(),
            basedir: String::new(),
        },
        args: Default::default(),
        spec: spec.clone(),
    };
    let overrides = crate::filterload::FilterOverrides {
        timezone: jail.logtimezone.clone(),
        usedns: Some(jail.usedns.clone()),
        ..Default::default()
    };
    crate::filterload::compile(&resolved, &overrides, now)?;
    if jail.logpaths.is_empty() && !jail.backend.starts_with("systemd") {
        anyhow::bail!("no logpath (set `logpath = FILE` or `backend = systemd`)");
    }
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
