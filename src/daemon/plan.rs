//! From a resolved jail to what the daemon runs: the compiled filter, where lines come from,
//! the jail state's settings and the actions. Receives a [`JailSpec`]; emits a [`JailPlan`]
//! or an error naming the jail's `file:line` and the bad value. Everything that can be wrong
//! in a jail is found here, before anything starts, so a broken config (at start or on
//! reload) changes nothing — and `banhammer config check` runs exactly this.
//!
//! Everything slow a jail needs before it runs happens here too (compiling its regexes,
//! resolving the host names of `ignoreip` and the host's own addresses), because plans are
//! made beside the main loop, never on it. Nothing is bound or started: a plan can be made
//! while the daemon runs.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use banhammer_config::{parse_duration, ActionSpec, ConfigTree, JailSpec};
use banhammer_core::filter::{Filter, FilterConfig, UseDns};
use banhammer_core::jail::{BanTimeConfig, BanTimePolicy, IgnoreList, JailConfig, TrackerConfig};

use super::ignorecmd::IgnoreCommand;
use crate::action::command::CommandAction;
use crate::action::nftables::{NftBackend, NftJailSpec};
use crate::filterload::{parse_timezone, parse_usedns};
use crate::source::syslog::SyslogListen;
use crate::source::{Backend, LogPathSpec};

/// Action file names served by the native nftables backend.
pub const NATIVE_NFTABLES: &[&str] = &["nftables", "nftables-multiport", "nftables-allports"];

/// Keys tracked per jail at most (failures of more keys evict the oldest); ~170 bytes each.
const MAX_TRACKED: usize = 1_000_000;

/// Where a jail's lines come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourcePlan {
    /// Log files (paths or globs), watched with this backend.
    Files {
        /// The `logpath` lines.
        paths: Vec<LogPathSpec>,
        /// inotify/polling.
        backend: Backend,
    },
    /// The systemd journal (`backend = systemd[…]`, or `auto` with no log file but a
    /// journal).
    Journal {
        /// The backend value as written.
        backend: String,
        /// The filter's `journalmatch` lines.
        matches: Vec<String>,
    },
    /// banhammer's syslog socket (`backend = syslog[…]`).
    Syslog {
        /// The backend value as written.
        backend: String,
        /// What it says, checked (groups and senders looked up).
        listen: SyslogListen,
    },
}

/// One action of a jail, as it will run.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionPlan {
    /// Our nftables sets (action named nftables, nftables-multiport or -allports).
    Native {
        /// The action's name in the jail.
        actname: String,
        /// Sets and rules to set up.
        spec: NftJailSpec,
        /// The config dir shipped its own file for this action (it is not run: say so).
        overridden_file: Option<String>,
    },
    /// An action.d command action.
    Command(ActionSpec),
    /// Nothing happens (`dummy`, or `--dry-run`).
    Dummy {
        /// The action's name in the jail.
        actname: String,
    },
}

impl ActionPlan {
    /// The action's name in its jail.
    pub fn actname(&self) -> &str {
        match self {
            ActionPlan::Native { actname, .. } | ActionPlan::Dummy { actname } => actname,
            ActionPlan::Command(spec) => &spec.actname,
        }
    }
}

/// Everything a jail runs on.
pub struct JailPlan {
    /// The resolved jail (kept to compare on reload and answer `get`).
    pub spec: JailSpec,
    /// The compiled filter.
    pub filter: Filter,
    /// Where lines come from.
    pub source: SourcePlan,
    /// The jail state's settings.
    pub state: JailConfig,
    /// The actions, in order.
    pub actions: Vec<ActionPlan>,
    /// `ignorecommand` (with its cache settings), if any.
    pub ignorecommand: Option<IgnoreCommand>,
}

impl JailPlan {
    /// The (jail, set stem) pairs of its native actions: which kernel sets hold its bans.
    pub fn native_sets(&self) -> Vec<(&str, &str)> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                ActionPlan::Native { spec, .. } => Some((
                    spec.jail.as_str(),
                    spec.name.as_deref().unwrap_or(spec.jail.as_str()),
                )),
                _ => None,
            })
            .collect()
    }
}

/// Options of the build that do not come from the jail.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Every action becomes a dummy.
    pub dry_run: bool,
    /// The journal can be read (decides where `backend = auto` jails without files read).
    pub journal_available: bool,
    /// The group of a syslog socket that does not name one (`webgroup`); `None`: the
    /// built-in default (`www-data`).
    pub web_group: Option<String>,
}

/// The plans of every enabled jail of `tree` (the configuration's warnings are logged):
/// what `banhammer run` starts. The first broken jail is the error.
pub fn plan_all(tree: &ConfigTree, opts: &PlanOptions) -> Result<Vec<JailPlan>> {
    let cfg = banhammer_config::read_jails(tree).map_err(|e| anyhow!("{e}"))?;
    for w in &cfg.warnings {
        crate::warning!("config", "{}: {}", w.origin, w.message);
    }
    let now = super::firewall::unix_now();
    cfg.jails
        .iter()
        .filter(|j| j.enabled)
        .map(|spec| plan(spec, tree.overlay(), opts, now))
        .collect()
}

/// Builds the plan of an enabled jail. `overlay` is the config dir (to tell whether it
/// ships its own file for a natively served action).
pub fn plan(
    spec: &JailSpec,
    overlay: Option<&Path>,
    opts: &PlanOptions,
    now: f64,
) -> Result<JailPlan> {
    let at = |what: &str| format!("jail [{}] ({}): {what}", spec.name, spec.origin);
    let Some(filter_spec) = &spec.filter else {
        bail!(
            "{}",
            at("no filter (expected `filter = NAME` in the jail or [DEFAULT])")
        );
    };
    let usedns = match filter_spec.usedns.as_deref() {
        Some(v) => parse_usedns(v).with_context(|| at("usedns"))?,
        None => parse_usedns(&spec.usedns).unwrap_or(UseDns::Warn),
    };
    let timezone =
        parse_timezone(spec.logtimezone.as_deref()).with_context(|| at("logtimezone"))?;
    let filter = Filter::new(&FilterConfig {
        prefregex: filter_spec.prefregex.clone(),
        failregex: filter_spec.failregex.clone(),
        ignoreregex: filter_spec.ignoreregex.clone(),
        maxlines: filter_spec.maxlines.unwrap_or(1).max(1),
        datepattern: filter_spec.datepattern.clone(),
        usedns,
        timezone,
        now: now as i64,
    })
    .map_err(|e| anyhow!("{}", at(&format!("filter {}: {e}", filter_spec.file))))?;
    if filter.failregex_count() == 0 {
        bail!(
            "{}",
            at(&format!(
                "filter {} has no failregex (expected at least one)",
                filter_spec.file
            ))
        );
    }
    let source =
        source_plan(spec, &filter_spec.journalmatch, opts).map_err(|e| anyhow!("{}", at(&e)))?;
    let mut state = state_config(spec).map_err(|e| anyhow!("{}", at(&e)))?;
    resolve_ignore_names(&mut state);
    let mut actions = Vec::new();
    for a in &spec.actions {
        actions.push(
            action_plan(&spec.name, a, overlay, opts.dry_run).map_err(|e| anyhow!("{}", at(&e)))?,
        );
    }
    let ignorecommand = match spec.ignorecommand.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(cmd) => Some(
            IgnoreCommand::new(cmd, spec.options.get("ignorecache").map(String::as_str))
                .map_err(|e| anyhow!("{}", at(&e)))?,
        ),
    };
    Ok(JailPlan {
        spec: spec.clone(),
        filter,
        source,
        state,
        actions,
        ignorecommand,
    })
}

/// The addresses of `ignoreip`'s host names and, with `ignoreself`, the host's own: DNS,
/// so done while planning, never on the main loop.
fn resolve_ignore_names(state: &mut JailConfig) {
    if state.ignoreself {
        state
            .ignore
            .set_self_addrs(super::selfaddrs::own_addresses());
    }
    let names: Vec<String> = state.ignore.names().map(str::to_string).collect();
    for n in names {
        let addrs: Vec<std::net::IpAddr> = crate::dns::resolve_all(&n)
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect();
        state.ignore.set_resolved(&n, addrs);
    }
}

fn source_plan(
    spec: &JailSpec,
    journalmatch: &[String],
    opts: &PlanOptions,
) -> Result<SourcePlan, String> {
    let backend = spec.backend.trim();
    let name = backend
        .split('[')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let paths: Vec<LogPathSpec> = spec.logpaths.iter().map(LogPathSpec::from).collect();
    match name.as_str() {
        "systemd" => {
            crate::source::journal::JournalOptions::from_backend(
                backend,
                &journalmatch.join("\n"),
            )?;
            Ok(SourcePlan::Journal {
                backend: backend.to_string(),
                matches: journalmatch.to_vec(),
            })
        }
        "syslog" => {
            let group = opts
                .web_group
                .as_deref()
                .unwrap_or(crate::source::syslog::DEFAULT_GROUP);
            let listen = SyslogListen::from_backend_with(backend, Some(group))?;
            Ok(SourcePlan::Syslog {
                backend: backend.to_string(),
                listen,
            })
        }
        _ => {
            let Some(file_backend) = Backend::parse(backend) else {
                return Err(format!(
                    "backend = {backend}: unknown (expected auto, polling, pyinotify, systemd or syslog)"
                ));
            };
            // fail2ban's `auto` on a machine whose auth log lives only in the journal: read
            // the journal when no configured file exists and the filter says how to match.
            let none_exist = !paths.is_empty()
                && paths
                    .iter()
                    .all(|p| crate::source::glob::expand(&p.pattern).files.is_empty());
            if name == "auto" && none_exist && opts.journal_available && !journalmatch.is_empty() {
                return Ok(SourcePlan::Journal {
                    backend: "systemd".to_string(),
                    matches: journalmatch.to_vec(),
                });
            }
            if paths.is_empty() {
                return Err(
                    "no logpath (expected `logpath = FILE`, or `backend = systemd`)".to_string(),
                );
            }
            Ok(SourcePlan::Files {
                paths,
                backend: file_backend,
            })
        }
    }
}

/// The jail state's settings from the jail's options.
pub fn state_config(spec: &JailSpec) -> Result<JailConfig, String> {
    let opt = |k: &str| {
        spec.options
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let duration = |k: &str| -> Result<Option<f64>, String> {
        match opt(k) {
            None => Ok(None),
            Some(v) => parse_duration(&v)
                .map(Some)
                .map_err(|e| format!("{k} = {v}: {} (expected a duration such as 1h)", e.message)),
        }
    };
    let is_true = |k: &str| {
        opt(k).is_some_and(|v| {
            matches!(
                v.to_ascii_lowercase().as_str(),
                "true" | "yes" | "on" | "1" | "enabled"
            )
        })
    };
    if spec.maxretry == 0 {
        return Err("maxretry = 0 (expected at least 1)".to_string());
    }
    let bantime = BanTimeConfig {
        bantime: spec.bantime,
        increment: is_true("bantime.increment"),
        factor: opt("bantime.factor"),
        formula: opt("bantime.formula"),
        multipliers: opt("bantime.multipliers"),
        maxtime: duration("bantime.maxtime")?,
        rndtime: duration("bantime.rndtime")?,
        overalljails: is_true("bantime.overalljails"),
    };
    let policy = BanTimePolicy::new(&bantime).map_err(|e| format!("bantime: {e}"))?;
    let mut ignore = IgnoreList::new();
    for item in &spec.ignoreip {
        ignore
            .add(item)
            .map_err(|e| format!("ignoreip {item}: {e}"))?;
    }
    Ok(JailConfig {
        tracker: TrackerConfig {
            maxretry: spec.maxretry,
            findtime: spec.findtime,
            maxmatches: spec.maxmatches as usize,
            max_tracked: MAX_TRACKED,
        },
        bantime: policy,
        ignore,
        ignoreself: spec.ignoreself,
        ..JailConfig::default()
    })
}

fn action_plan(
    jail: &str,
    spec: &ActionSpec,
    overlay: Option<&Path>,
    dry_run: bool,
) -> Result<ActionPlan, String> {
    if dry_run || spec.name == "dummy" {
        return Ok(ActionPlan::Dummy {
            actname: spec.actname.clone(),
        });
    }
    if NATIVE_NFTABLES.contains(&spec.name.as_str()) {
        let overridden_file = overlay.and_then(|dir| {
            ["conf", "local"].iter().find_map(|ext| {
                let p = dir.join(format!("action.d/{}.{ext}", spec.name));
                p.exists().then(|| p.display().to_string())
            })
        });
        let nft = nft_spec(jail, spec)?;
        NftBackend::validate(&nft)
            .map_err(|e| format!("action {} ({}): {e}", spec.actname, spec.file))?;
        return Ok(ActionPlan::Native {
            actname: spec.actname.clone(),
            spec: nft,
            overridden_file,
        });
    }
    if spec
        .options
        .get("actionban")
        .is_none_or(|b| b.trim().is_empty())
    {
        return Err(format!(
            "action {} ({}): no actionban (expected a command action)",
            spec.actname, spec.file
        ));
    }
    // The same checks the action's worker makes when it starts (templates, timeout).
    CommandAction::new(jail, spec).map_err(|e| format!("action {}: {e}", spec.actname))?;
    Ok(ActionPlan::Command(spec.clone()))
}

/// The native backend's view of an nftables action's arguments.
fn nft_spec(jail: &str, spec: &ActionSpec) -> Result<NftJailSpec, String> {
    let o = |k: &str| spec.options.get(k).map(|v| v.trim().to_string());
    let set_name = o("name").unwrap_or_else(|| jail.to_string());
    let allports = spec.name == "nftables-allports"
        || o("type").is_some_and(|t| t.eq_ignore_ascii_case("allports"));
    let ports = if allports {
        None
    } else {
        Some(o("port").unwrap_or_else(|| "ssh".into()))
    };
    let mut nft = NftJailSpec::new(jail, ports.as_deref());
    if let Some(p) = o("protocol").filter(|p| !p.is_empty()) {
        nft.protocol = p;
    }
    // fail2ban's own nftables.conf names its chain `f2b-chain` in table `f2b-table`; in our
    // table the chain is ours to name, so only a plain name is taken over.
    if let Some(c) = o("chain").filter(|c| {
        !c.is_empty()
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    }) {
        nft.chain = c;
    }
    if let Some(b) = o("blocktype").filter(|b| !b.is_empty()) {
        nft.blocktype = b;
    }
    nft.name = Some(set_name);
    Ok(nft)
}
