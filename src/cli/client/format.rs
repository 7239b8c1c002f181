//! fail2ban-client's beautifier: turns a [`Reply`] into the text fail2ban-client prints for
//! the same command, byte for byte. Pure: the time zone for ban times is passed in.
//!
//! The reference is fail2ban 1.0.2's `client/beautifier.py`, plus Python's `print()` of
//! the raw value wherever the beautifier passes a value through (`banned`, counts, `get`
//! of plain options).

use crate::control::protocol::{BanEntry, JailStatus, Reply, Request};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::Value;

use crate::pyfmt;

/// `status JAIL` flavours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// Counts, file list, banned list.
    #[default]
    Basic,
    /// Without the banned list (fail2ban 1.0.2 keeps the file list in `short`).
    Short,
}

/// The text fail2ban-client prints for `reply` to `req` (basic flavour, local time).
pub fn format_reply(req: &Request, reply: &Reply) -> String {
    format_reply_as(req, reply, Flavor::Basic, &TimeZone::system())
}

/// [`format_reply`] with the `status` flavour and the time zone of ban times given.
pub fn format_reply_as(req: &Request, reply: &Reply, flavor: Flavor, tz: &TimeZone) -> String {
    match reply {
        Reply::Pong => "Server replied: pong".into(),
        Reply::Version { version } => version.clone(),
        Reply::Status { jails } => status_all(jails),
        Reply::JailStatus(s) => jail_status(s, flavor),
        Reply::Count { count } => count.to_string(),
        Reply::Banned { jails } => {
            let items: Vec<String> = jails
                .iter()
                .map(|j| format!("{{{}: {}}}", pyfmt::string(&j.jail), str_list(&j.ips)))
                .collect();
            format!("[{}]", items.join(", "))
        }
        Reply::BannedIn { jails } => {
            let items: Vec<String> = jails.iter().map(|j| str_list(j)).collect();
            format!("[{}]", items.join(", "))
        }
        // fail2ban's server answers a reload with the string 'OK'.
        Reply::Reloaded { .. } => "OK".into(),
        Reply::Value { option, value } => match req {
            Request::Get { jail, option, args } => get_value(
                jail.as_deref(),
                &option.to_ascii_lowercase(),
                args,
                value,
                tz,
            ),
            _ => get_value(None, option, &[], value, tz),
        },
        Reply::Ok => match req {
            Request::Stop => "Shutdown successful".into(),
            _ => "OK".into(),
        },
    }
}

/// `status`: `Status\n|- Number of jail:\tN\n`- Jail list:\ta, b`.
fn status_all(jails: &[String]) -> String {
    let mut sorted = jails.to_vec();
    sorted.sort();
    tree(
        "Status",
        &[
            Node::Leaf("Number of jail", sorted.len().to_string()),
            Node::Leaf("Jail list", sorted.join(", ")),
        ],
    )
}

/// `status JAIL`: the Filter and Actions branches.
fn jail_status(s: &JailStatus, flavor: Flavor) -> String {
    let mut filter = vec![
        Node::Leaf("Currently failed", s.currently_failed.to_string()),
        Node::Leaf("Total failed", s.total_failed.to_string()),
    ];
    match &s.journal_matches {
        // FilterSystemd: the match groups, ` + `-joined (beautifier joins the one-item
        // list fail2ban builds).
        Some(groups) => filter.push(Node::Leaf("Journal matches", groups.join(" + "))),
        None => filter.push(Node::Leaf("File list", s.files.join(" "))),
    }
    let mut actions = vec![
        Node::Leaf("Currently banned", s.currently_banned.to_string()),
        Node::Leaf("Total banned", s.total_banned.to_string()),
    ];
    if flavor == Flavor::Basic {
        actions.push(Node::Leaf("Banned IP list", s.banned.join(" ")));
    }
    tree(
        &format!("Status for the jail: {}", s.name),
        &[
            Node::Branch("Filter", filter),
            Node::Branch("Actions", actions),
        ],
    )
}

enum Node<'a> {
    /// `name:\tvalue`
    Leaf(&'a str, String),
    /// `name` with children one level down.
    Branch(&'a str, Vec<Node<'a>>),
}

/// The beautifier's tree: `|-` before every item but the last, `` `- `` before the last,
/// children indented by `|  ` (or three spaces under the last item).
fn tree(title: &str, nodes: &[Node<'_>]) -> String {
    let mut lines = vec![title.to_string()];
    push_nodes(&mut lines, "", nodes);
    lines.join("\n")
}

fn push_nodes(lines: &mut Vec<String>, indent: &str, nodes: &[Node<'_>]) {
    for (i, node) in nodes.iter().enumerate() {
        let last = i + 1 == nodes.len();
        let mark = if last { "`-" } else { "|-" };
        match node {
            Node::Leaf(name, value) => lines.push(format!("{indent}{mark} {name}:\t{value}")),
            Node::Branch(name, children) => {
                lines.push(format!("{indent}{mark} {name}"));
                let deeper = format!("{indent}{}", if last { "   " } else { "|  " });
                push_nodes(lines, &deeper, children);
            }
        }
    }
}

/// `get [JAIL] OPTION [ARGS…]`, per option as the beautifier does; anything it does not
/// know is printed as Python would print the value.
fn get_value(
    jail: Option<&str>,
    option: &str,
    args: &[String],
    value: &Value,
    tz: &TimeZone,
) -> String {
    let Some(jail) = jail else {
        return server_value(option, value);
    };
    let list = value.as_array();
    match (option, list) {
        ("logpath" | "addlogpath" | "dellogpath", Some(l)) => listing(
            l,
            "No file is currently monitored",
            "Current monitored log file(s):",
        ),
        ("logencoding", _) => format!("Current log encoding is set to:\n{}", py_str(value)),
        ("journalmatch" | "addjournalmatch" | "deljournalmatch", Some(l)) => {
            if l.is_empty() {
                return "No journal match filter set".into();
            }
            let groups: Vec<String> = l.iter().map(words).collect();
            format!("Current match filter:\n{}", groups.join(" + "))
        }
        ("datepattern", _) => {
            let shown = match value {
                Value::Null => "Not set/required".to_string(),
                Value::Array(pair) if pair.len() == 2 => match (&pair[0], &pair[1]) {
                    (Value::Null, name) => py_str(name),
                    (pattern, name) => format!("{} ({})", py_str(pattern), py_str(name)),
                },
                other => py_str(other),
            };
            format!("Current date pattern set to: {shown}")
        }
        ("ignoreip" | "addignoreip" | "delignoreip", Some(l)) => listing(
            l,
            "No IP address/network is ignored",
            "These IP addresses/networks are ignored:",
        ),
        (
            "failregex" | "addfailregex" | "delfailregex" | "ignoreregex" | "addignoreregex"
            | "delignoreregex",
            Some(l),
        ) => {
            if l.is_empty() {
                return "No regular expression is defined".into();
            }
            let mut out = String::from("The following regular expression are defined:");
            for (i, r) in l.iter().enumerate() {
                let mark = if i + 1 == l.len() { "`-" } else { "|-" };
                out.push_str(&format!("\n{mark} [{i}]: {}", py_str(r)));
            }
            out
        }
        ("actions", Some(l)) => {
            if l.is_empty() {
                format!("No actions for jail {jail}")
            } else {
                format!(
                    "The jail {jail} has the following actions:\n{}",
                    joined(l, ", ")
                )
            }
        }
        ("actionproperties" | "actionmethods", Some(l)) => {
            let what = if option == "actionproperties" {
                "properties"
            } else {
                "methods"
            };
            let action = args.first().map_or("", String::as_str);
            if l.is_empty() {
                format!("No {what} for jail {jail} action {action}")
            } else {
                format!(
                    "The jail {jail} action {action} has the following {what}:\n{}",
                    joined(l, ", ")
                )
            }
        }
        ("banip", Some(l)) => {
            let sep = match args.first().map(String::as_str) {
                None => " ",
                Some("--with-time") => "\n",
                Some(s) => s,
            };
            let items: Vec<String> = l
                .iter()
                .map(|v| match serde_json::from_value::<BanEntry>(v.clone()) {
                    Ok(entry) => ban_with_time(&entry, tz),
                    Err(_) => py_str(v),
                })
                .collect();
            items.join(sep)
        }
        _ => py_str(value),
    }
}

/// Server-wide `get OPTION`.
fn server_value(option: &str, value: &Value) -> String {
    match option {
        "syslogsocket" => format!("Current syslog socket is:\n`- {}", py_str(value)),
        "logtarget" => format!("Current logging target is:\n`- {}", py_str(value)),
        "loglevel" => {
            // fail2ban may hold a number; it prints the level's name then.
            let name = match value {
                Value::Number(n) => n
                    .to_string()
                    .parse::<crate::logging::Level>()
                    .map_or_else(|_| n.to_string(), |l| l.name().to_string()),
                other => py_str(other),
            };
            format!("Current logging level is {}", pyfmt::string(&name))
        }
        "dbfile" => match value {
            Value::Null => "Database currently disabled".into(),
            v => format!("Current database file is:\n`- {}", py_str(v)),
        },
        "dbpurgeage" => match value {
            Value::Null => "Database currently disabled".into(),
            // Python's `%i`: truncates a float.
            v => format!(
                "Current database purge age is:\n`- {}seconds",
                v.as_f64()
                    .map_or_else(|| py_str(v), |s| (s.trunc() as i64).to_string())
            ),
        },
        _ => py_str(value),
    }
}

/// `|- a\n`- b` under a heading, or the empty message.
fn listing(items: &[Value], empty: &str, heading: &str) -> String {
    if items.is_empty() {
        return empty.into();
    }
    let mut out = heading.to_string();
    for (i, v) in items.iter().enumerate() {
        let mark = if i + 1 == items.len() { "`-" } else { "|-" };
        out.push_str(&format!("\n{mark} {}", py_str(v)));
    }
    out
}

fn joined(items: &[Value], sep: &str) -> String {
    items.iter().map(py_str).collect::<Vec<_>>().join(sep)
}

/// A journal match group: its words space-joined (a plain string is taken as is).
fn words(v: &Value) -> String {
    match v {
        Value::Array(ws) => joined(ws, " "),
        other => py_str(other),
    }
}

/// fail2ban's `BanManager.getBanList(withTime=True)` line: `IP \tSTART + BANTIME = END`.
pub fn ban_with_time(e: &BanEntry, tz: &TimeZone) -> String {
    // Ticket.MAX_TIME, the end of a permanent ban.
    const MAX_TIME: f64 = 0x7FFF_FFFF_FFFF_u64 as f64;
    let end = if e.bantime < 0.0 {
        MAX_TIME
    } else {
        e.time_of_ban + e.bantime
    };
    format!(
        "{} \t{} + {} = {}",
        e.ip,
        time2str(e.time_of_ban, tz),
        e.bantime.trunc() as i64,
        time2str(end, tz)
    )
}

/// fail2ban's `MyTime.time2str`: local `%Y-%m-%d %H:%M:%S`, fraction dropped, capped at
/// the end of year 9999.
pub fn time2str(unix: f64, tz: &TimeZone) -> String {
    const CAP: f64 = 253_402_214_400.0;
    if unix >= CAP {
        return "9999-12-31 23:59:59".into();
    }
    match Timestamp::from_second(unix.floor() as i64) {
        Ok(ts) => ts
            .to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => pyfmt::float(unix),
    }
}

/// Python's `str()` of a value: strings bare, everything else as `repr()`.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` of a JSON value (`None`, `True`, `'s'`, `[…]`, `{…}`).
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => pyfmt::float(f),
            _ => n.to_string(),
        },
        Value::String(s) => pyfmt::string(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", pyfmt::string(k), py_repr(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

fn str_list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| pyfmt::string(s)).collect();
    format!("[{}]", parts.join(", "))
}
