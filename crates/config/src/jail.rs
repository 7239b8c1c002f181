//! Jail resolution (fail2ban's `JailsReader`/`JailReader`). Owns reading the layered `jail`
//! config and turning each section into a `JailSpec`: `enabled`/`backend`/`filter` first; for
//! enabled jails the filter is read and its options exposed to the jail as `known/<opt>`, then
//! the jail options are read (`%()s` interpolated), then each `action =` item is resolved with
//! the jail options as vars. Receives a tree; emits `JailsConfig` (jails in file order,
//! disabled ones included) with warnings, or the first error of an enabled jail.

use std::collections::HashSet;

use crate::action::{read_action, ActionSpec};
use crate::args::{parse_name_args_at, split_with_options};
use crate::budget::Budget;
use crate::convert::{as_bool, splitwords};
use crate::definit::Kv;
use crate::duration::parse_duration;
use crate::error::{excerpt, ConfigError, Origin};
use crate::filter::{FilterRead, FilterSpec, FILTER_OPTS};
use crate::interp;
use crate::layered::{self, Layered};
use crate::tree::ConfigTree;
use crate::Options;

/// Our version string, exposed as `fail2ban_version` (fail2ban's own option name).
pub const VERSION: &str = concat!("banhammer-", env!("CARGO_PKG_VERSION"));

/// Option type for conversion, as in fail2ban's `_configOpts`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ty {
    Str,
    Bool,
    Int,
}

/// fail2ban's jail `_configOpts` (in its order), then the filter options.
const JAIL_OPTS: &[(&str, Ty)] = &[
    ("enabled", Ty::Bool),
    ("backend", Ty::Str),
    ("maxretry", Ty::Int),
    ("maxmatches", Ty::Int),
    ("findtime", Ty::Str),
    ("bantime", Ty::Str),
    ("bantime.increment", Ty::Bool),
    ("bantime.factor", Ty::Str),
    ("bantime.formula", Ty::Str),
    ("bantime.multipliers", Ty::Str),
    ("bantime.maxtime", Ty::Str),
    ("bantime.rndtime", Ty::Str),
    ("bantime.overalljails", Ty::Bool),
    ("ignorecommand", Ty::Str),
    ("ignoreself", Ty::Bool),
    ("ignoreip", Ty::Str),
    ("ignorecache", Ty::Str),
    ("filter", Ty::Str),
    ("logtimezone", Ty::Str),
    ("logencoding", Ty::Str),
    ("logpath", Ty::Str),
    ("action", Ty::Str),
    ("usedns", Ty::Str),
    ("prefregex", Ty::Str),
    ("ignoreregex", Ty::Str),
    ("failregex", Ty::Str),
    ("maxlines", Ty::Int),
    ("datepattern", Ty::Str),
    ("journalmatch", Ty::Str),
];

/// Option names that are normal in jail sections although fail2ban's jail reader does not
/// read them itself (they feed interpolation and actions).
const COMMON_JAIL_KEYS: &[&str] = &[
    "port",
    "protocol",
    "chain",
    "banaction",
    "banaction_allports",
    "mode",
    "logtype",
    "destemail",
    "sender",
    "mta",
    "fail2ban_agent",
    "name",
    "blocktype",
    "returntype",
    "lockingopt",
];

/// One log path line: `pattern [head|tail]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPath {
    /// The path or glob, NOT expanded.
    pub pattern: String,
    /// Start reading at the end (`tail`) instead of the beginning (`head`).
    pub tail: bool,
}

/// A resolved jail.
#[derive(Debug, Clone, PartialEq)]
pub struct JailSpec {
    /// Section name.
    pub name: String,
    /// `enabled` parsed as a bool.
    pub enabled: bool,
    /// `backend` as written (e.g. `auto`, `systemd[journalpath=/x]`).
    pub backend: String,
    /// The filter with the jail's overrides applied (None if disabled or `filter =` empty).
    pub filter: Option<FilterSpec>,
    /// Log paths, NOT glob-expanded.
    pub logpaths: Vec<LogPath>,
    /// Seconds.
    pub findtime: f64,
    /// Seconds; < 0 = permanent.
    pub bantime: f64,
    /// Failures before a ban.
    pub maxretry: u32,
    /// Matches kept per ticket.
    pub maxmatches: u32,
    /// `yes`/`warn`/`no`/`raw`.
    pub usedns: String,
    /// `auto` or a codec name.
    pub logencoding: String,
    /// Zone for dates without one.
    pub logtimezone: Option<String>,
    /// IPs, CIDRs and names never banned.
    pub ignoreip: Vec<String>,
    /// Ignore the host's own addresses.
    pub ignoreself: bool,
    /// Command deciding whether to ignore an IP.
    pub ignorecommand: Option<String>,
    /// Resolved actions, in order.
    pub actions: Vec<ActionSpec>,
    /// Every resolved jail option (incl. bantime.increment etc. and unknown ones).
    pub options: Options,
    /// "file:line" of the section header.
    pub origin: String,
}

/// Something suspicious but accepted, as fail2ban would (e.g. an unknown option).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// "file:line".
    pub origin: String,
    /// What is suspicious.
    pub message: String,
}

/// All jails of a tree.
#[derive(Debug, Clone, PartialEq)]
pub struct JailsConfig {
    /// Jails in file order, disabled included (enabled=false, filter/actions may be None/empty).
    pub jails: Vec<JailSpec>,
    /// Warnings collected while reading.
    pub warnings: Vec<Warning>,
}

fn read_jail_config(tree: &ConfigTree, budget: &Budget) -> Result<Layered, ConfigError> {
    let Some(mut cfg) = layered::read(tree, "jail", budget)? else {
        return Err(ConfigError::not_found(
            &Origin::new(tree.display("jail.conf"), 0),
            "no jail configuration found",
            "jail.conf, jail.d/*.conf, jail.local or jail.d/*.local",
        ));
    };
    let origin = Origin::new("<built-in>", 0);
    cfg.merge_defaults(
        &[
            ("fail2ban_version", VERSION.to_string()),
            ("fail2ban_confpath", tree.confpath()),
        ],
        &origin,
    );
    Ok(cfg)
}

fn jail_sections(cfg: &Layered) -> Vec<String> {
    cfg.visible_sections()
        .filter(|s| s.name != "INCLUDES")
        .map(|s| s.name.clone())
        .collect()
}

/// Read all jails.
pub fn read_jails(tree: &ConfigTree) -> Result<JailsConfig, ConfigError> {
    read_jails_forced(tree, false)
}

/// `read_jails`, optionally treating every jail as enabled (fail2ban's `force_enable`).
pub(crate) fn read_jails_forced(
    tree: &ConfigTree,
    force: bool,
) -> Result<JailsConfig, ConfigError> {
    read_jails_within(tree, force, &Budget::new())
}

/// `read_jails_forced` spending `budget` (tests pass their own to see the work done).
pub(crate) fn read_jails_within(
    tree: &ConfigTree,
    force: bool,
    budget: &Budget,
) -> Result<JailsConfig, ConfigError> {
    let mut cfg = read_jail_config(tree, budget)?;
    let mut out = JailsConfig {
        jails: Vec::new(),
        warnings: Vec::new(),
    };
    let referenced = referenced_names(&cfg);
    for name in jail_sections(&cfg) {
        let jail = read_one(
            tree,
            &mut cfg,
            &name,
            &referenced,
            &mut out.warnings,
            force,
            budget,
        )?;
        out.jails.push(jail);
    }
    Ok(out)
}

/// Only one jail (fast path for `config dump JAIL`); error if no such section.
pub fn read_jail(tree: &ConfigTree, name: &str) -> Result<JailSpec, ConfigError> {
    let budget = Budget::new();
    let mut cfg = read_jail_config(tree, &budget)?;
    if name == "INCLUDES" || !jail_sections(&cfg).iter().any(|s| s == name) {
        return Err(ConfigError::not_found(
            &Origin::new(cfg.files.first().cloned().unwrap_or_default(), 0),
            format!("jail {name:?} was not found among available jails"),
            format!("a [{name}] section in jail.conf/jail.local/jail.d"),
        ));
    }
    let referenced = referenced_names(&cfg);
    read_one(
        tree,
        &mut cfg,
        name,
        &referenced,
        &mut Vec::new(),
        false,
        &budget,
    )
}

/// Names used as `%(x)s` or `<x>` anywhere in the jail config: such options are not "unknown".
fn referenced_names(cfg: &Layered) -> HashSet<String> {
    let mut out = HashSet::new();
    let values = cfg.defaults.iter().map(|(_, e)| &e.value).chain(
        cfg.sections
            .iter()
            .flat_map(|s| s.options.iter().map(|(_, e)| &e.value)),
    );
    for v in values {
        // `%\(([^)]+)\)s`, scanned left to right once: a `%(` whose first `)` is not
        // followed by `s` matches nothing, nor does any `%(` before that `)`.
        let mut rest = v.as_str();
        while let Some(p) = rest.find("%(") {
            rest = &rest[p + 2..];
            let Some(close) = rest.find(')') else { break };
            let n = &rest[..close];
            if close > 0 && rest[close + 1..].starts_with('s') {
                out.insert(n.rsplit('/').next().unwrap_or(n).to_lowercase());
            }
            rest = &rest[close + 1..];
        }
        let mut pos = 0;
        while let Some((_, e, n)) = crate::tags::find_tag(v, pos) {
            out.insert(n.rsplit('/').next().unwrap_or(n).to_lowercase());
            pos = e;
        }
    }
    out
}

/// Get and convert one jail option; `Ok(None)` if unset. Int conversion failures warn and
/// fall back to unset, like fail2ban.
fn get_opt(
    cfg: &Layered,
    jail: &str,
    key: &str,
    ty: Ty,
    warnings: &mut Vec<Warning>,
    budget: &Budget,
) -> Result<Option<String>, ConfigError> {
    let Some(v) = interp::get(cfg, jail, key, &Options::new(), budget)? else {
        return Ok(None);
    };
    Ok(match ty {
        Ty::Str => Some(v),
        Ty::Bool => Some(if as_bool(&v) { "True" } else { "False" }.to_string()),
        Ty::Int => match v.trim().parse::<i64>() {
            Ok(n) => Some(n.to_string()),
            Err(_) => {
                let origin = interp::get_raw(cfg, jail, key)
                    .map(|(_, o)| o)
                    .unwrap_or_default();
                warnings.push(Warning {
                    origin: origin.to_string(),
                    message: format!(
                        "wrong int value {} for {key:?} in jail [{jail}]; using the default",
                        excerpt(&v)
                    ),
                });
                None
            }
        },
    })
}

fn read_one(
    tree: &ConfigTree,
    cfg: &mut Layered,
    name: &str,
    referenced: &HashSet<String>,
    warnings: &mut Vec<Warning>,
    force: bool,
    budget: &Budget,
) -> Result<JailSpec, ConfigError> {
    let header = cfg
        .section(name)
        .map(|s| s.origin.clone())
        .unwrap_or_default();
    let origin_of = |cfg: &Layered, key: &str| {
        interp::get_raw(cfg, name, key)
            .map(|(_, o)| o)
            .unwrap_or_else(|| header.clone())
    };
    // Step 1: enabled, backend, filter.
    let enabled = force
        || get_opt(cfg, name, "enabled", Ty::Bool, warnings, budget)?.is_some_and(|v| v == "True");
    if !enabled {
        return disabled_jail(cfg, name, &header, budget);
    }
    let backend =
        get_opt(cfg, name, "backend", Ty::Str, warnings, budget)?.unwrap_or_else(|| "auto".into());
    let filter_val = get_opt(cfg, name, "filter", Ty::Str, warnings, budget)?.unwrap_or_default();
    let mut first = Options::new();
    first.insert("enabled".into(), "True".into());
    first.insert("backend".into(), backend.clone());
    first.insert("filter".into(), filter_val.clone());

    // Step 2-3: the filter, its options merged into the jail as known/<opt>.
    let mut filter_read = None;
    if !filter_val.trim().is_empty() {
        let forigin = origin_of(cfg, "filter");
        let (fname, fargs) = parse_name_args_at(filter_val.trim(), &forigin)?;
        let mut fr = FilterRead::load(tree, &fname, &fargs, &forigin, budget)?;
        fr.apply_auto_options(&backend);
        let (_, comb, _) = fr.combined(&first, true)?;
        cfg.merge_into(
            name,
            comb.pairs(),
            "known/",
            &Origin::new(fr.di.file.clone(), 0),
        );
        filter_read = Some(fr);
    } else {
        warnings.push(Warning {
            origin: origin_of(cfg, "filter").to_string(),
            message: format!("no filter set for jail [{name}]"),
        });
    }

    // Step 4: all jail options.
    let mut jail_opts = Options::new();
    let mut ordered = Kv::default();
    for (key, ty) in JAIL_OPTS {
        if let Some(v) = get_opt(cfg, name, key, *ty, warnings, budget)? {
            jail_opts.insert((*key).to_string(), v.clone());
            ordered.set(key, v);
        }
    }
    for (key, default) in [
        ("enabled", "False"),
        ("backend", "auto"),
        ("filter", ""),
        ("action", ""),
    ] {
        if !jail_opts.contains_key(key) {
            jail_opts.insert(key.into(), default.into());
        }
    }

    // Filter with the jail's overrides.
    let filter = match filter_read.as_mut() {
        Some(fr) => {
            let over = Kv::from_pairs(
                FILTER_OPTS
                    .iter()
                    .filter_map(|k| jail_opts.get(*k).map(|v| ((*k).to_string(), v.clone()))),
            );
            Some(fr.spec(&jail_opts, &over, false)?)
        }
        None => None,
    };

    // Step 5: actions.
    let mut actions: Vec<ActionSpec> = Vec::new();
    let mut actnames: HashSet<String> = HashSet::new();
    let aorigin = origin_of(cfg, "action");
    for item in split_with_options(jail_opts.get("action").map_or("", String::as_str)) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let a = read_action(tree, name, item, &jail_opts, &aorigin, budget)?;
        if !actnames.insert(a.actname.clone()) {
            return Err(ConfigError::value(
                &aorigin,
                format!(
                    "action {} defined twice in jail [{name}]",
                    excerpt(&a.actname)
                ),
                "distinct actions, or a different `name=`/`actname=` arg",
            ));
        }
        actions.push(a);
    }
    if actions.is_empty() {
        warnings.push(Warning {
            origin: aorigin.to_string(),
            message: format!("no actions were defined for jail [{name}]"),
        });
    }

    let mut spec = typed(cfg, name, &header, &jail_opts, warnings, true)?;
    spec.enabled = true;
    spec.filter = filter;
    spec.actions = actions;
    spec.options = all_options(cfg, name, &jail_opts, budget)?;
    unknown_warnings(cfg, name, referenced, &spec, warnings);
    Ok(spec)
}

/// Every option visible in the jail section (own + DEFAULT), resolved where possible; the
/// known jail options as fail2ban converted them.
fn all_options(
    cfg: &Layered,
    name: &str,
    jail_opts: &Options,
    budget: &Budget,
) -> Result<Options, ConfigError> {
    let mut out = Options::new();
    let keys: Vec<String> = cfg
        .defaults
        .keys()
        .cloned()
        .chain(
            cfg.section(name)
                .into_iter()
                .flat_map(|s| s.options.keys().cloned()),
        )
        .filter(|k| !k.starts_with("known/"))
        .collect();
    let empty = Options::new();
    for k in keys {
        if out.contains_key(&k) {
            continue;
        }
        let v = match interp::get(cfg, name, &k, &empty, budget) {
            Ok(Some(v)) => v,
            // Lenient, except when the read has run out of budget: stop then.
            Err(e) if budget.exhausted() => return Err(e),
            _ => interp::get_raw(cfg, name, &k)
                .map(|(v, _)| v)
                .unwrap_or_default(),
        };
        out.insert(k, v);
    }
    for (k, v) in jail_opts {
        out.insert(k.clone(), v.clone());
    }
    Ok(out)
}

fn unknown_warnings(
    cfg: &Layered,
    name: &str,
    referenced: &HashSet<String>,
    spec: &JailSpec,
    warnings: &mut Vec<Warning>,
) {
    let Some(sec) = cfg.section(name) else { return };
    let action_keys: HashSet<&String> =
        spec.actions.iter().flat_map(|a| a.options.keys()).collect();
    let filter_keys: HashSet<&String> = spec.filter.iter().flat_map(|f| f.options.keys()).collect();
    for (k, e) in sec.options.iter() {
        if k.starts_with("known/")
            || JAIL_OPTS.iter().any(|(j, _)| j == k)
            || COMMON_JAIL_KEYS.contains(&k.as_str())
            || k.starts_with("action_")
            || k.starts_with("bantime.")
            || referenced.contains(k)
            || action_keys.contains(k)
            || filter_keys.contains(k)
        {
            continue;
        }
        warnings.push(Warning {
            origin: e.origin.to_string(),
            message: format!("unknown option {k:?} in jail [{name}] (not used by fail2ban, its filter or actions)"),
        });
    }
}

/// A disabled jail: options resolved leniently (an error only when the read has run out of
/// budget, which no value of its own may hide).
fn disabled_jail(
    cfg: &Layered,
    name: &str,
    header: &Origin,
    budget: &Budget,
) -> Result<JailSpec, ConfigError> {
    let mut jail_opts = Options::new();
    let mut scratch = Vec::new();
    for (key, ty) in JAIL_OPTS {
        match get_opt(cfg, name, key, *ty, &mut scratch, budget) {
            Ok(Some(v)) => {
                jail_opts.insert((*key).to_string(), v);
            }
            Err(e) if budget.exhausted() => return Err(e),
            _ => {}
        }
    }
    let mut spec = match typed(cfg, name, header, &jail_opts, &mut scratch, false) {
        Ok(s) => s,
        Err(_) => empty_spec(name, header),
    };
    spec.enabled = false;
    spec.options = all_options(cfg, name, &jail_opts, budget)?;
    Ok(spec)
}

fn empty_spec(name: &str, header: &Origin) -> JailSpec {
    JailSpec {
        name: name.to_string(),
        enabled: false,
        backend: "auto".into(),
        filter: None,
        logpaths: Vec::new(),
        findtime: 600.0,
        bantime: 600.0,
        maxretry: 3,
        maxmatches: 3,
        usedns: "warn".into(),
        logencoding: "auto".into(),
        logtimezone: None,
        ignoreip: Vec::new(),
        ignoreself: true,
        ignorecommand: None,
        actions: Vec::new(),
        options: Options::new(),
        origin: header.to_string(),
    }
}

/// The typed fields from converted jail options. Server defaults: findtime/bantime 600 s,
/// maxretry 3, maxmatches = maxretry, usedns warn, logencoding auto, ignoreself true.
fn typed(
    cfg: &Layered,
    name: &str,
    header: &Origin,
    o: &Options,
    warnings: &mut Vec<Warning>,
    strict: bool,
) -> Result<JailSpec, ConfigError> {
    let origin_of = |key: &str| {
        interp::get_raw(cfg, name, key)
            .map(|(_, o)| o)
            .unwrap_or_else(|| header.clone())
    };
    let duration = |key: &str| -> Result<f64, ConfigError> {
        match o.get(key) {
            None => Ok(600.0),
            Some(v) => parse_duration(v).map_err(|e| {
                ConfigError::value(
                    &origin_of(key),
                    format!("{key} of jail [{name}]: {}", e.message),
                    format!(
                        "a duration such as `10m`, `1h 30m` or `-1`, not {}",
                        excerpt(v)
                    ),
                )
            }),
        }
    };
    let count = |key: &str, warnings: &mut Vec<Warning>| -> Option<u32> {
        let v = o.get(key)?;
        match v.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                warnings.push(Warning {
                    origin: origin_of(key).to_string(),
                    message: format!("{key} {} of jail [{name}] is not a non-negative integer; using the default", excerpt(v)),
                });
                None
            }
        }
    };
    let _ = strict;
    let maxretry = count("maxretry", warnings).unwrap_or(3);
    let maxmatches = count("maxmatches", warnings).unwrap_or(maxretry);
    let logpaths = o
        .get("logpath")
        .map(|v| {
            v.split('\n')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| match l.rsplit_once(' ') {
                    Some((p, t))
                        if t.eq_ignore_ascii_case("tail") || t.eq_ignore_ascii_case("head") =>
                    {
                        LogPath {
                            pattern: p.trim_end().to_string(),
                            tail: t.eq_ignore_ascii_case("tail"),
                        }
                    }
                    _ => LogPath {
                        pattern: l.to_string(),
                        tail: false,
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(JailSpec {
        name: name.to_string(),
        enabled: o.get("enabled").is_some_and(|v| v == "True"),
        backend: o.get("backend").cloned().unwrap_or_else(|| "auto".into()),
        filter: None,
        logpaths,
        findtime: duration("findtime")?,
        bantime: duration("bantime")?,
        maxretry,
        maxmatches,
        usedns: o.get("usedns").cloned().unwrap_or_else(|| "warn".into()),
        logencoding: o
            .get("logencoding")
            .cloned()
            .unwrap_or_else(|| "auto".into()),
        logtimezone: o.get("logtimezone").cloned().filter(|s| !s.is_empty()),
        ignoreip: o.get("ignoreip").map(|v| splitwords(v)).unwrap_or_default(),
        ignoreself: o.get("ignoreself").is_none_or(|v| v == "True"),
        ignorecommand: o.get("ignorecommand").cloned().filter(|s| !s.is_empty()),
        actions: Vec::new(),
        options: Options::new(),
        origin: header.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referenced_names_reads_each_reference_as_the_regex_does() {
        // `%\(([^)]+)\)s` and `<[^ <>]+>`, each scanned once from left to right (the scan
        // used to look for the next `)s` from every `%(`).
        let cfg = Layered::from_text(
            "j.conf",
            "[DEFAULT]\na = %(x)s %(sec/Y)s <z> <lt_<w>/p>\nb = %(bad) %(ok)s %()s %(u)x)s\n\
             [s]\nc = %(%(%(%(in)s\n",
        )
        .unwrap();
        let mut names: Vec<String> = referenced_names(&cfg).into_iter().collect();
        names.sort();
        assert_eq!(names, ["%(%(%(in", "ok", "w", "x", "y", "z"]);
    }
}
