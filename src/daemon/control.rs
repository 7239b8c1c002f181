//! Answers to control-socket requests, computed by the main loop (the owner of the state).
//! Every value from the client is checked here: jail names looked up, addresses parsed.

use std::collections::BTreeMap;
use std::sync::mpsc::SyncSender;

use banhammer_core::jail::FailureKey;
use serde_json::{json, Value};

use super::engine::Engine;
use super::jails::ActionRuntime;
use super::outbox::{key_net, UnbanHow};
use super::reload::ReloadRequest;
use super::settings::DbLocation;
use crate::control::protocol::{BanEntry, Envelope, JailBans, JailStatus, Reply, Request};
use crate::logging;

impl Engine {
    /// Answers one request. Most answers go out at once; those that change the firewall
    /// or the store (ban, unban) go out once the effects thread has applied the change,
    /// and a reload answers when its swap is done.
    pub(super) fn control(&mut self, req: Request, reply: SyncSender<Envelope>) {
        let now = |answer: Envelope| {
            // A client that went away does not need its answer.
            let _ = reply.try_send(answer);
        };
        match req {
            Request::Ping => now(Envelope::ok(Reply::Pong)),
            Request::Version => now(Envelope::ok(Reply::Version {
                version: banhammer_config::VERSION.to_string(),
            })),
            Request::Status { jail: None } => {
                let mut jails: Vec<String> = self.jails.iter().map(|(n, _)| n.clone()).collect();
                jails.sort();
                now(Envelope::ok(Reply::Status { jails }))
            }
            Request::Status { jail: Some(j) } => now(match self.jail_status(&j) {
                Some(s) => Envelope::ok(Reply::JailStatus(s)),
                None => no_jail(&j),
            }),
            Request::Ban { jail, ips, force } => match self.ban_request(&jail, &ips, force) {
                Answer::WhenApplied(answer) => self.outbox.reply_after(reply, answer),
                Answer::Now(answer) => now(answer),
            },
            Request::Unban { jail, ips, all } => {
                match self.unban_request(jail.as_deref(), &ips, all) {
                    Answer::WhenApplied(answer) => self.outbox.reply_after(reply, answer),
                    Answer::Now(answer) => now(answer),
                }
            }
            Request::Banned { ips } => now(self.banned_request(&ips)),
            Request::Reload { jail } => self.request_reload(ReloadRequest {
                only: jail,
                reply: Some(reply),
            }),
            Request::Get {
                jail: None, option, ..
            } => now(self.get_server(&option)),
            Request::Get {
                jail: Some(j),
                option,
                args,
            } => now(self.get_jail(&j, &option, &args)),
            Request::Stop => {
                crate::info!("server", "Shutdown requested (control socket)");
                self.stop();
                now(Envelope::ok(Reply::Ok));
            }
        }
    }

    fn jail_status(&self, name: &str) -> Option<JailStatus> {
        let rt = self.jails.get(name)?;
        let stats = rt.state.stats();
        let files = if rt.journal_matches.is_some() {
            Vec::new()
        } else {
            monitored_files(&rt.files)
        };
        Some(JailStatus {
            name: name.to_string(),
            currently_failed: stats.currently_failed as u64,
            total_failed: stats.total_failed,
            files,
            journal_matches: rt.journal_matches.clone(),
            currently_banned: stats.currently_banned as u64,
            total_banned: stats.total_banned,
            banned: banned_list(rt),
        })
    }

    /// A manual ban. Refused as a whole, before anything changes, when a value is not an
    /// address, or (unless `force`) a network is wider than the floor or takes in an
    /// address the jail ignores.
    fn ban_request(&mut self, jail: &str, ips: &[String], force: bool) -> Answer {
        let Some(rt) = self.jails.get(jail) else {
            return Answer::Now(no_jail(jail));
        };
        let floor = self.ctx.settings.prefix_floor;
        let mut keys = Vec::new();
        for ip in ips {
            let key = match parse_addr(ip) {
                Ok(k) => k,
                Err(e) => return Answer::Now(Envelope::err(e)),
            };
            if !force {
                if let Some(net) = key_net(&key) {
                    let min = if net.addr().is_ipv4() {
                        floor.v4
                    } else {
                        floor.v6
                    };
                    if net.prefix() < min {
                        return Answer::Now(Envelope::err(format!(
                            "refused: {net} is wider than /{min}, the shortest prefix banned \
                             (prefixfloor{} in fail2ban.conf); use --force to ban it anyway",
                            if net.addr().is_ipv4() { "" } else { "6" }
                        )));
                    }
                    if let Some(what) = rt.state.ignore().overlapping(net, rt.spec.ignoreself) {
                        return Answer::Now(Envelope::err(format!(
                            "refused: {net} takes in {what}, which jail '{jail}' never bans; \
                             use --force to ban it anyway"
                        )));
                    }
                }
            }
            keys.push(key);
        }
        let now = self.ctx.clock.now();
        let mut count = 0;
        for key in keys {
            let history = self.history(jail, &key);
            let Some(rt) = self.jails.get_mut(jail) else {
                break;
            };
            let d = rt.state.ban(key, now, history);
            if self.apply_decision(jail, d, &BTreeMap::new(), None, now) {
                count += 1;
            }
        }
        Answer::WhenApplied(Envelope::ok(Reply::Count { count }))
    }

    fn unban_request(&mut self, jail: Option<&str>, ips: &[String], all: bool) -> Answer {
        if let Some(j) = jail {
            if !self.jails.contains(j) {
                return Answer::Now(no_jail(j));
            }
        }
        if !all && ips.is_empty() {
            return Answer::Now(Envelope::err(
                "unban: no address given (expected IP… or --all)",
            ));
        }
        let mut keys = Vec::new();
        for ip in ips {
            match parse_addr(ip) {
                Ok(k) => keys.push(k),
                Err(e) => return Answer::Now(Envelope::err(e)),
            }
        }
        let names: Vec<String> = match jail {
            Some(j) => vec![j.to_string()],
            None => self.jails.order().to_vec(),
        };
        let mut count = 0u64;
        for name in &names {
            let Some(rt) = self.jails.get_mut(name) else {
                continue;
            };
            if all {
                // The state lets go of every ban now; the kernel's sets are emptied and
                // the store cleared in one operation each; the command actions and the
                // log hear of each unban over the next turns.
                let unbans = rt.state.unban_all();
                let nft_jails: Vec<String> = rt
                    .actions
                    .iter()
                    .filter_map(|a| match a {
                        ActionRuntime::Native { nft_jail, .. } => Some(nft_jail.clone()),
                        _ => None,
                    })
                    .collect();
                count += unbans.len() as u64;
                self.outbox.unban_all_of(name, &nft_jails);
                self.queue_bulk_unban(name, unbans);
            } else {
                let unbans: Vec<_> = keys.iter().filter_map(|k| rt.state.unban(k)).collect();
                count += unbans.len() as u64;
                for u in &unbans {
                    self.end_ban(name, u, UnbanHow::Manual);
                }
            }
        }
        Answer::WhenApplied(Envelope::ok(Reply::Count { count }))
    }

    fn banned_request(&self, ips: &[String]) -> Envelope {
        if ips.is_empty() {
            let jails = self
                .jails
                .order()
                .iter()
                .filter_map(|n| {
                    self.jails.get(n).map(|rt| JailBans {
                        jail: n.clone(),
                        ips: banned_list(rt),
                    })
                })
                .collect();
            return Envelope::ok(Reply::Banned { jails });
        }
        let mut out = Vec::new();
        for ip in ips {
            let key = match parse_addr(ip) {
                Ok(k) => k,
                Err(e) => return Envelope::err(e),
            };
            out.push(
                self.jails
                    .order()
                    .iter()
                    .filter(|n| self.jails.get(n).is_some_and(|rt| rt.state.is_banned(&key)))
                    .cloned()
                    .collect(),
            );
        }
        Envelope::ok(Reply::BannedIn { jails: out })
    }

    fn get_server(&self, option: &str) -> Envelope {
        let s = &self.ctx.settings;
        let value = match option.to_ascii_lowercase().as_str() {
            "loglevel" => json!(logging::level().name()),
            "logtarget" => json!(match &s.log_target {
                logging::Target::Stderr => "STDERR".to_string(),
                logging::Target::Stdout => "STDOUT".to_string(),
                logging::Target::File(p) => p.display().to_string(),
            }),
            "dbfile" => match &s.db {
                DbLocation::File(p) => json!(p.display().to_string()),
                DbLocation::Memory => json!(":memory:"),
                DbLocation::Disabled => Value::Null,
            },
            "dbpurgeage" => json!(s.db_purge_age),
            "dbmaxmatches" => json!(s.db_max_matches),
            "socket" => json!(s.socket.display().to_string()),
            "pidfile" => json!(s.pidfile.display().to_string()),
            "version" => json!(banhammer_config::VERSION),
            other => {
                return Envelope::err(format!(
                    "Sorry but the command is invalid: get {other} (expected loglevel, logtarget, dbfile, dbpurgeage, dbmaxmatches, socket or pidfile)"
                ))
            }
        };
        Envelope::ok(Reply::Value {
            option: option.to_ascii_lowercase(),
            value,
        })
    }

    fn get_jail(&self, name: &str, option: &str, args: &[String]) -> Envelope {
        let Some(rt) = self.jails.get(name) else {
            return no_jail(name);
        };
        let opt = option.to_ascii_lowercase();
        let spec = &rt.spec;
        let filter = spec.filter.as_ref();
        let value = match opt.as_str() {
            "banned" if !args.is_empty() => {
                let mut flags = Vec::new();
                for ip in args {
                    match parse_addr(ip) {
                        Ok(k) => flags.push(u8::from(rt.state.is_banned(&k))),
                        Err(e) => return Envelope::err(e),
                    }
                }
                if flags.len() == 1 {
                    json!(flags[0])
                } else {
                    json!(flags)
                }
            }
            "banned" => json!(banned_list(rt)),
            "banip" => {
                if args.iter().any(|a| a == "--with-time") {
                    let mut entries: Vec<BanEntry> = rt
                        .state
                        .banned()
                        .map(|b| BanEntry {
                            ip: b.key.to_string(),
                            time_of_ban: b.time_of_ban,
                            bantime: b.duration.unwrap_or(-1.0),
                        })
                        .collect();
                    entries.sort_by(|a, b| a.time_of_ban.total_cmp(&b.time_of_ban));
                    json!(entries)
                } else {
                    json!(banned_list(rt))
                }
            }
            "logpath" => json!(if rt.journal_matches.is_some() {
                Vec::new()
            } else {
                monitored_files(&rt.files)
            }),
            "journalmatch" => json!(rt.journal_matches.clone().unwrap_or_default()),
            "failregex" => json!(filter.map(|f| f.failregex.clone()).unwrap_or_default()),
            "ignoreregex" => json!(filter.map(|f| f.ignoreregex.clone()).unwrap_or_default()),
            "prefregex" => json!(filter.and_then(|f| f.prefregex.clone())),
            "datepattern" => json!(filter.and_then(|f| f.datepattern.clone())),
            "maxlines" => json!(filter.and_then(|f| f.maxlines).unwrap_or(1)),
            "ignoreip" => json!(spec.ignoreip),
            "ignoreself" => json!(spec.ignoreself),
            "ignorecommand" => json!(spec.ignorecommand.clone().unwrap_or_default()),
            "actions" => json!(rt
                .actions
                .iter()
                .map(|a| a.actname().to_string())
                .collect::<Vec<_>>()),
            "findtime" => seconds(spec.findtime),
            "bantime" => seconds(spec.bantime),
            "maxretry" => json!(spec.maxretry),
            "maxmatches" => json!(spec.maxmatches),
            "usedns" => json!(spec.usedns),
            "logencoding" => json!(spec.logencoding),
            "logtimezone" => json!(spec.logtimezone),
            "backend" => json!(spec.backend),
            other => match spec.options.get(other) {
                Some(v) => json!(v),
                None => {
                    return Envelope::err(format!(
                        "Sorry but the command is invalid: get {name} {other}"
                    ))
                }
            },
        };
        Envelope::ok(Reply::Value { option: opt, value })
    }
}

/// Seconds as fail2ban-client prints them: whole numbers without a fraction.
fn seconds(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// When an answer may go out.
enum Answer {
    /// At once (nothing changed, or it was refused).
    Now(Envelope),
    /// Once the changes decided so far are in the kernel and the store.
    WhenApplied(Envelope),
}

fn no_jail(name: &str) -> Envelope {
    Envelope::err(format!("Sorry but the jail '{name}' does not exist"))
}

/// An address or network from a client (anything else is refused: it could not be
/// banned in a firewall).
fn parse_addr(text: &str) -> Result<FailureKey, String> {
    FailureKey::parse_address(text.trim()).ok_or_else(|| {
        format!(
            "{text:?} is not an IP address (expected canonical text such as 192.0.2.7, 2001:db8::7 or 192.0.2.0/24)"
        )
    })
}

fn banned_list(rt: &super::jails::JailRuntime) -> Vec<String> {
    let mut v: Vec<(f64, String)> = rt
        .state
        .banned()
        .map(|b| (b.time_of_ban, b.key.to_string()))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v.into_iter().map(|(_, k)| k).collect()
}

/// The files a jail reads now (its patterns expanded).
fn monitored_files(patterns: &[String]) -> Vec<String> {
    patterns
        .iter()
        .flat_map(|p| crate::source::glob::expand(p).files)
        .map(|p| p.display().to_string())
        .collect()
}
