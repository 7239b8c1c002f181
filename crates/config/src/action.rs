//! Action resolution (fail2ban's `ActionReader`). Owns turning one `name[args]` item of a
//! jail's `action =` into a typed `ActionSpec`: `name` defaults to the jail name, `actname`
//! made unique per jail, `action.d/<name>` read, options combined (args > `[Init]` >
//! `[Definition]` > jail option fallback) with static tags resolved and runtime tags, `timeout`,
//! `bantime` and family-conditional tags left for run time. Receives the tree, the jail name,
//! the jail options (as vars) and the item; emits an `ActionSpec`.

use crate::args::parse_name_args_at;
use crate::budget::Budget;
use crate::convert::as_bool;
use crate::definit::{is_runtime_tag, DefInit};
use crate::error::{ConfigError, Origin};
use crate::layered;
use crate::tree::ConfigTree;
use crate::Options;

/// The `[Definition]` options fail2ban's action reader knows (in its order).
pub(crate) const ACTION_OPTS: &[&str] = &[
    "actionstart",
    "actionstart_on_demand",
    "actionstop",
    "actionflush",
    "actionreload",
    "actioncheck",
    "actionrepair",
    "actionrepair_on_unban",
    "actionban",
    "actionprolong",
    "actionreban",
    "actionunban",
    "norestored",
];

/// A resolved action of one jail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionSpec {
    /// Action file name, e.g. "iptables-multiport".
    pub name: String,
    /// Unique name within the jail (fail2ban's rules).
    pub actname: String,
    /// Display path.
    pub file: String,
    /// The `name[...]` args as given.
    pub args: Options,
    /// Definition + Init + args, `%()s` interpolated and static `<tags>` resolved; runtime
    /// tags (`<ip>`, `<F-USER>`, ...) and family-conditional keys left as-is; conditional
    /// variants kept under "key?family=inet6" names.
    pub options: Options,
}

/// fail2ban's actname rule: file name, plus a suffix derived from `name` when it differs from
/// the jail name (`sshd-ddos` in jail `sshd` → `-ddos`; `other` → `-other`).
pub(crate) fn actname_for(file: &str, name: &str, jail: &str) -> String {
    if name == jail {
        file.to_string()
    } else if let Some(rest) = name.strip_prefix(jail) {
        format!("{file}{rest}")
    } else {
        format!("{file}-{name}")
    }
}

/// Resolve one action item of jail `jail` whose options are `jail_opts`.
pub(crate) fn read_action(
    tree: &ConfigTree,
    jail: &str,
    item: &str,
    jail_opts: &Options,
    origin: &Origin,
    budget: &Budget,
) -> Result<ActionSpec, ConfigError> {
    let (name, args) = parse_name_args_at(item.trim(), origin)?;
    let mut init = args.clone();
    let n = init
        .entry("name".to_string())
        .or_insert_with(|| jail.to_string())
        .clone();
    let actname = match init.get("actname") {
        Some(a) => a.clone(),
        None => {
            let a = actname_for(&name, &n, jail);
            init.insert("actname".into(), a.clone());
            a
        }
    };
    if let Some(stem) = name.strip_suffix(".py") {
        // Python actions are not read here; the daemon decides what to do with them.
        let mut options = args.clone();
        let actname = options
            .remove("actname")
            .unwrap_or_else(|| stem.to_string());
        return Ok(ActionSpec {
            name: name.clone(),
            actname,
            file: tree.display(&format!("action.d/{name}")),
            args,
            options,
        });
    }
    let rel = format!("action.d/{name}");
    let Some(cfg) = layered::read(tree, &rel, budget)? else {
        return Err(ConfigError::not_found(
            origin,
            format!("unable to read action {name:?} of jail [{jail}]"),
            format!("a file action.d/{name}.conf or .local"),
        ));
    };
    let file = if tree.exists(&format!("{rel}.conf")) {
        tree.display(&format!("{rel}.conf"))
    } else {
        tree.display(&format!("{rel}.local"))
    };
    let mut di = DefInit::new(cfg, file.clone(), &init, budget);
    let (opts, vars) = di.get_options(jail_opts, ACTION_OPTS, false)?;
    let ignore = |t: &str| is_runtime_tag(t);
    let full = di.all_resolved(&opts, &vars, &ignore)?;
    let mut options: Options = full
        .into_pairs()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("known/"))
        .collect();
    // fail2ban converts its bool options (`convertOptions`) before sending them.
    for key in [
        "actionstart_on_demand",
        "actionrepair_on_unban",
        "norestored",
    ] {
        if let Some(v) = options.get_mut(key) {
            *v = if as_bool(v) { "True" } else { "False" }.to_string();
        }
    }
    Ok(ActionSpec {
        name,
        actname,
        file,
        args,
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actname_rules() {
        assert_eq!(
            actname_for("iptables-multiport", "sshd", "sshd"),
            "iptables-multiport"
        );
        assert_eq!(
            actname_for("iptables-multiport", "sshd-ddos", "sshd"),
            "iptables-multiport-ddos"
        );
        assert_eq!(actname_for("iptables", "web", "sshd"), "iptables-web");
    }
}
