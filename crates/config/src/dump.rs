//! A `fail2ban-client -d`-like command stream. Owns the ordering and spelling of commands;
//! receives resolved jails; emits `Vec<Vec<String>>` such as `["add","sshd","auto"]`,
//! `["set","sshd","maxretry","5"]`. Only enabled jails appear, each ending with `start`.
//! Differences from fail2ban: multi-value commands are flattened to one command per value
//! (`set J addfailregex R`), log paths are not glob-expanded, and action options are listed
//! resolved and sorted.

use crate::convert::splitwords;
use crate::jail::JailsConfig;

/// Jail options sent as plain `set` commands, in fail2ban's order.
const SET_ORDER: &[&str] = &[
    "maxretry",
    "maxmatches",
    "findtime",
    "bantime",
    "bantime.increment",
    "bantime.factor",
    "bantime.formula",
    "bantime.multipliers",
    "bantime.maxtime",
    "bantime.rndtime",
    "bantime.overalljails",
    "ignorecommand",
    "ignoreself",
    "ignoreip",
    "ignorecache",
    "logtimezone",
    "logencoding",
];

fn cmd(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_string()).collect()
}

/// The command stream for all enabled jails.
pub fn dump_commands(jails: &JailsConfig) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for j in jails.jails.iter().filter(|j| j.enabled) {
        let n = j.name.as_str();
        let backend = j
            .options
            .get("backend")
            .map_or(j.backend.as_str(), String::as_str);
        out.push(cmd(&["add", n, backend]));
        if let Some(u) = j.options.get("usedns") {
            out.push(cmd(&["set", n, "usedns", u]));
        }
        if let Some(f) = &j.filter {
            if !j.options.contains_key("usedns") {
                if let Some(u) = &f.usedns {
                    out.push(cmd(&["set", n, "usedns", u]));
                }
            }
            if let Some(p) = &f.prefregex {
                out.push(cmd(&["set", n, "prefregex", p]));
            }
            if let Some(m) = f.maxlines {
                out.push(cmd(&["set", n, "maxlines", &m.to_string()]));
            }
            for r in &f.failregex {
                out.push(cmd(&["set", n, "addfailregex", r]));
            }
            for r in &f.ignoreregex {
                out.push(cmd(&["set", n, "addignoreregex", r]));
            }
            if let Some(d) = &f.datepattern {
                out.push(cmd(&["set", n, "datepattern", d]));
            }
            for m in &f.journalmatch {
                let mut c = cmd(&["set", n, "addjournalmatch"]);
                c.extend(m.split_whitespace().map(str::to_string));
                out.push(c);
            }
        }
        for key in SET_ORDER {
            let Some(v) = j.options.get(*key) else {
                continue;
            };
            if *key == "ignoreip" {
                let mut c = cmd(&["set", n, "addignoreip"]);
                c.extend(splitwords(v));
                out.push(c);
            } else {
                out.push(cmd(&["set", n, key, v]));
            }
        }
        if !j.backend.starts_with("systemd") {
            for lp in &j.logpaths {
                out.push(cmd(&[
                    "set",
                    n,
                    "addlogpath",
                    &lp.pattern,
                    if lp.tail { "tail" } else { "head" },
                ]));
            }
        }
        for a in &j.actions {
            out.push(cmd(&["set", n, "addaction", &a.actname]));
            for (k, v) in &a.options {
                out.push(cmd(&["set", n, "action", &a.actname, k, v]));
            }
        }
        out.push(cmd(&["start", n]));
    }
    out
}
