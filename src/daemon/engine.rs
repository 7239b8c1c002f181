//! The main loop: the one owner of every jail's state, the firewall backend and the store.
//! Receives [`Event`]s (failures, checkpoints, control requests, signals) on one channel;
//! emits firewall batches, action commands and store batches.
//!
//! Each turn takes every event waiting (up to a cap), decides, then applies what was
//! decided in batches: first the firewall (one nftables transaction for all bans of the
//! turn), then command actions (queued to their workers), then the store (one SQLite
//! transaction). A ban is therefore in the kernel before it is on disk, and on disk
//! within the same turn.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use banhammer_core::jail::{Ban, Decision, FailureKey, Unban};
use banhammer_store::{BanData, BanRecord, Change, Checkpoint, Family, Store};

use super::event::{Event, Found, SignalKind};
use super::jails::{ActionRuntime, JailRuntime};
use super::Context;
use crate::action::nftables::NftChange;
use crate::{error, info, notice, warning};

/// Events handled per turn at most, so expiries and flushes are never starved.
const MAX_EVENTS_PER_TURN: usize = 20_000;
/// Longest sleep without an event.
const IDLE_WAKE: Duration = Duration::from_secs(1);
/// How often changed file positions are written (also written with any other store write).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// How often the store purges old history.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// A ban or unban decided this turn, waiting to be applied.
struct Pending {
    nft: Vec<NftChange>,
    /// When the line that led to each ban of `nft` was read (latency).
    ban_read_at: Vec<(String, Instant)>,
    store: Vec<Change>,
}

/// The main loop's state.
pub struct Engine {
    pub(super) ctx: Context,
    pub(super) jails: BTreeMap<String, JailRuntime>,
    /// Jail names in configuration order (status lists, `banned`).
    pub(super) order: Vec<String>,
    pub(super) store: Store,
    /// The native firewall, once a jail needs it.
    pub(super) nft: Option<Box<dyn super::firewall::Firewall>>,
    pub(super) syslog_hub: super::sources::SyslogHub,
    pub(super) events: SyncSender<Event>,
    rx: Receiver<Event>,
    /// Events taken off the channel while waiting for a stopping jail's reader.
    deferred: VecDeque<Event>,
    pub(super) next_generation: u64,
    pending: Pending,
    checkpoints: HashMap<(String, String), Checkpoint>,
    last_checkpoint_flush: Instant,
    last_purge: Instant,
    pub(super) stopping: bool,
    /// Write file positions at the next flush even if written less than a second ago.
    force_checkpoints: bool,
}

impl Engine {
    /// An engine with no jail yet.
    pub fn new(
        ctx: Context,
        store: Store,
        events: SyncSender<Event>,
        rx: Receiver<Event>,
    ) -> Engine {
        Engine {
            ctx,
            jails: BTreeMap::new(),
            order: Vec::new(),
            store,
            nft: None,
            syslog_hub: Default::default(),
            events,
            rx,
            deferred: VecDeque::new(),
            next_generation: 1,
            pending: Pending {
                nft: Vec::new(),
                ban_read_at: Vec::new(),
                store: Vec::new(),
            },
            checkpoints: HashMap::new(),
            last_checkpoint_flush: Instant::now(),
            last_purge: Instant::now(),
            stopping: false,
            force_checkpoints: false,
        }
    }

    /// Runs until a stop is asked for (signal or `stop` request).
    pub fn run(&mut self) {
        while !self.stopping {
            let wait = if self.deferred.is_empty() {
                self.next_wake()
            } else {
                Duration::ZERO
            };
            let first = match self.deferred.pop_front() {
                Some(ev) => Some(ev),
                None => match self.rx.recv_timeout(wait) {
                    Ok(ev) => Some(ev),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            if let Some(ev) = first {
                self.handle(ev);
                let mut n = 1;
                while n < MAX_EVENTS_PER_TURN && !self.stopping {
                    let next = match self.deferred.pop_front() {
                        Some(ev) => ev,
                        None => match self.rx.try_recv() {
                            Ok(ev) => ev,
                            Err(_) => break,
                        },
                    };
                    self.handle(next);
                    n += 1;
                }
            }
            self.expire(self.ctx.clock.now());
            self.flush();
            self.housekeeping();
        }
    }

    /// Waits (at most `limit`) until `done` says a stopping jail's reader has ended,
    /// keeping the jail's last file positions from the channel and setting every other
    /// event aside for the next turn.
    pub(super) fn wait_for_reader(&mut self, jail: &str, done: impl Fn() -> bool, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let finished = done();
            // Whatever the reader sent before it ended is in the channel now.
            while let Ok(ev) = self.rx.try_recv() {
                self.keep_checkpoint_or_defer(jail, ev);
            }
            if finished || Instant::now() >= deadline {
                break;
            }
            match self.rx.recv_timeout(Duration::from_millis(5)) {
                Ok(ev) => self.keep_checkpoint_or_defer(jail, ev),
                Err(_) => continue,
            }
        }
    }

    fn keep_checkpoint_or_defer(&mut self, jail: &str, ev: Event) {
        match ev {
            Event::Checkpoint {
                jail: j,
                checkpoint,
                ..
            } if &*j == jail => {
                let cp = checkpoint.to_store(&j, self.ctx.clock.now());
                self.checkpoints
                    .insert((j.to_string(), cp.path.clone()), cp);
            }
            other => self.deferred.push_back(other),
        }
    }

    /// The newest known position of each file of `jail`: stored, or seen but not yet
    /// written.
    pub(super) fn pending_checkpoints(&self, jail: &str) -> Vec<Checkpoint> {
        self.checkpoints
            .iter()
            .filter(|((j, _), _)| j == jail)
            .map(|(_, cp)| cp.clone())
            .collect()
    }

    /// How long to sleep: until the next ban ends, at most [`IDLE_WAKE`].
    fn next_wake(&self) -> Duration {
        let now = self.ctx.clock.now();
        let next = self
            .jails
            .values()
            .filter_map(|j| j.state.next_expiry())
            .fold(f64::INFINITY, f64::min);
        if next.is_finite() {
            let secs = (next - now).max(0.0);
            Duration::from_secs_f64(secs).min(IDLE_WAKE)
        } else {
            IDLE_WAKE
        }
    }

    pub(super) fn handle(&mut self, ev: Event) {
        match ev {
            Event::Found {
                jail,
                generation,
                failures,
                read_at,
            } => {
                for f in failures {
                    self.on_failure(&jail, generation, f, read_at);
                }
            }
            Event::Checkpoint {
                jail,
                generation,
                checkpoint,
            } => {
                if self.is_current(&jail, generation) {
                    let cp = checkpoint.to_store(&jail, self.ctx.clock.now());
                    self.checkpoints
                        .insert((jail.to_string(), cp.path.clone()), cp);
                }
            }
            Event::LinesRead { jail, count } => {
                if let Some(m) = &self.ctx.metrics {
                    m.source(&jail).lines_read(count);
                }
            }
            Event::SourceNote {
                jail,
                warning,
                text,
            } => {
                if warning {
                    warning!("filter", "[{jail}] {text}");
                } else {
                    info!("filter", "[{jail}] {text}");
                }
            }
            Event::Control { request, reply } => {
                let answer = self.control(request);
                // A client that went away does not need its answer.
                let _ = reply.try_send(answer);
            }
            Event::Signal(SignalKind::Stop) => {
                info!("server", "Shutdown requested (signal)");
                self.stopping = true;
            }
            Event::Signal(SignalKind::Reload) => {
                info!("server", "Reload requested (SIGHUP)");
                // A refused reload was logged as an error by `reload` itself.
                for line in self.reload(None).unwrap_or_default() {
                    info!("server", "{line}");
                }
            }
            Event::Signal(SignalKind::ReopenLog) => {
                if let Err(e) = crate::logging::reopen() {
                    error!("server", "re-opening the log file: {e}");
                }
            }
        }
    }

    fn is_current(&self, jail: &str, generation: u64) -> bool {
        self.jails
            .get(jail)
            .is_some_and(|j| j.generation == generation)
    }

    fn on_failure(&mut self, jail: &str, generation: u64, f: Found, read_at: Instant) {
        let Some(rt) = self.jails.get_mut(jail) else {
            return;
        };
        if rt.generation != generation {
            return;
        }
        let now = self.ctx.clock.now();
        rt.state.set_now(now);
        rt.state.set_time_mode(if f.catching_up {
            banhammer_core::jail::TimeMode::Initial
        } else {
            banhammer_core::jail::TimeMode::Operation
        });
        if let Some(m) = &self.ctx.metrics {
            m.jail(jail).failure();
        }
        if let Some(src) = rt.state.is_ignored(&f.key) {
            info!("filter", "[{jail}] Ignore {} by {src:?}", f.key);
            return;
        }
        if let Some(cmd) = &rt.ignorecommand {
            if super::ignorecmd::ignored(cmd, &f.key) {
                info!("filter", "[{jail}] Ignore {} by ignorecommand", f.key);
                return;
            }
        }
        info!(
            "filter",
            "[{jail}] Found {} - {}",
            f.key,
            format_time(f.time)
        );
        let history = self.history(jail, &f.key);
        let Some(rt) = self.jails.get_mut(jail) else {
            return;
        };
        let decision = rt
            .state
            .on_failure(f.key.clone(), f.time, f.matches.clone(), history);
        self.apply_decision(jail, decision, &f.fields, Some(read_at), now);
    }

    /// What the store knows of `key` for `bantime.increment` (per jail, or over all jails
    /// with `bantime.overalljails`); `None` when the jail does not increment.
    pub(super) fn history(
        &self,
        jail: &str,
        key: &FailureKey,
    ) -> Option<banhammer_core::jail::BanHistory> {
        let policy = self.jails.get(jail)?.state.policy();
        if !policy.increment() {
            return None;
        }
        let scope = (!policy.overalljails()).then_some(jail);
        match self.store.history(&key.to_string(), scope) {
            Ok(h) => h.map(|h| banhammer_core::jail::BanHistory {
                ban_count: h.ban_count,
                time_of_ban: h.time_of_ban,
                ban_time: h.bantime,
            }),
            Err(e) => {
                error!("database", "[{jail}] ban history of {key}: {e}");
                None
            }
        }
    }

    /// Carries out a decision: log, firewall, actions, store.
    pub(super) fn apply_decision(
        &mut self,
        jail: &str,
        decision: Decision,
        fields: &BTreeMap<String, String>,
        read_at: Option<Instant>,
        now: f64,
    ) -> bool {
        let (ban, prolong) = match decision {
            Decision::Ban(b) => (b, false),
            Decision::Prolong(b) => (b, true),
            Decision::None | Decision::Ignored(_) | Decision::Dropped(_) => return false,
        };
        let restored = ban.restored;
        if prolong {
            notice!(
                "actions",
                "[{jail}] Prolong {} by {}",
                ban.key,
                describe_len(&ban)
            );
        } else if restored {
            notice!("actions", "[{jail}] Restore Ban {}", ban.key);
        } else {
            notice!("actions", "[{jail}] Ban {}", ban.key);
        }
        if let Some(m) = &self.ctx.metrics {
            if !prolong {
                m.jail(jail).ban();
            }
        }
        self.send_to_actions(jail, &ban, prolong, fields, read_at, now);
        if !restored {
            self.pending
                .store
                .push(Change::Ban(self.record(jail, &ban, fields)));
        }
        true
    }

    fn send_to_actions(
        &mut self,
        jail: &str,
        ban: &Ban,
        prolong: bool,
        fields: &BTreeMap<String, String>,
        read_at: Option<Instant>,
        now: f64,
    ) {
        let Some(rt) = self.jails.get(jail) else {
            return;
        };
        let stats = rt.state.stats();
        for action in &rt.actions {
            match action {
                ActionRuntime::Native { nft_jail, .. } => {
                    let Some(addr) = key_net(&ban.key) else {
                        warning!(
                            "actions",
                            "[{jail}] {} is not an address: nftables cannot ban it",
                            ban.key
                        );
                        continue;
                    };
                    let timeout = ban
                        .end()
                        .map(|end| Duration::from_secs_f64((end - now).max(1.0)));
                    self.pending.nft.push(NftChange::Ban {
                        jail: nft_jail.clone(),
                        addr,
                        timeout,
                    });
                    if let Some(t) = read_at {
                        self.pending.ban_read_at.push((jail.to_string(), t));
                    }
                }
                ActionRuntime::Command { worker, .. } => {
                    let ticket = super::jails::ticket(ban, fields, &stats);
                    worker.ban(ticket, prolong);
                }
                ActionRuntime::Dummy { .. } => {}
            }
        }
    }

    fn record(&self, jail: &str, ban: &Ban, fields: &BTreeMap<String, String>) -> BanRecord {
        let key = ban.key.to_string();
        let keep = self.ctx.settings.db_max_matches;
        let skip = ban.matches.len().saturating_sub(keep);
        BanRecord {
            jail: jail.to_string(),
            family: Family::of_key(&key),
            key,
            time_of_ban: ban.time_of_ban,
            bantime: ban.duration.unwrap_or(banhammer_store::PERMANENT),
            ban_count: ban.ban_count,
            data: BanData {
                matches: ban.matches[skip..].to_vec(),
                failures: ban.failures,
                tags: fields
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect(),
            },
        }
    }

    /// Ends the bans whose time has come.
    pub(super) fn expire(&mut self, now: f64) {
        let names: Vec<String> = self.jails.keys().cloned().collect();
        for name in names {
            let unbans = match self.jails.get_mut(&name) {
                Some(rt) => rt.state.expire(now),
                None => continue,
            };
            for u in unbans {
                self.apply_unban(&name, &u, false);
            }
        }
    }

    /// Carries out an unban: log, firewall, actions, store. `forgive` = delete the
    /// history too (a manual unban).
    pub(super) fn apply_unban(&mut self, jail: &str, u: &Unban, forgive: bool) {
        notice!("actions", "[{jail}] Unban {}", u.ban.key);
        if let Some(m) = &self.ctx.metrics {
            m.jail(jail).unban();
        }
        if let Some(rt) = self.jails.get(jail) {
            let stats = rt.state.stats();
            for action in &rt.actions {
                match action {
                    ActionRuntime::Native { nft_jail, .. } => {
                        if let Some(addr) = key_net(&u.ban.key) {
                            self.pending.nft.push(NftChange::Unban {
                                jail: nft_jail.clone(),
                                addr,
                            });
                        }
                    }
                    ActionRuntime::Command { worker, .. } => {
                        let ticket = super::jails::ticket(&u.ban, &BTreeMap::new(), &stats);
                        worker.unban(ticket);
                    }
                    ActionRuntime::Dummy { .. } => {}
                }
            }
        }
        self.pending.store.push(Change::Unban {
            jail: jail.to_string(),
            key: u.ban.key.to_string(),
            delete_history: forgive,
        });
    }

    /// The store no longer lists `key` as banned in `jail` (history kept).
    pub(super) fn forget_active(&mut self, jail: &str, key: &str) {
        self.pending.store.push(Change::Unban {
            jail: jail.to_string(),
            key: key.to_string(),
            delete_history: false,
        });
    }

    /// Applies what this turn decided: firewall, then store.
    pub(super) fn flush(&mut self) {
        if !self.pending.nft.is_empty() {
            let batch = std::mem::take(&mut self.pending.nft);
            let read_at = std::mem::take(&mut self.pending.ban_read_at);
            match self.nft.as_mut() {
                Some(nft) => match nft.apply(&batch) {
                    Ok(()) => {
                        if let Some(m) = &self.ctx.metrics {
                            for (jail, t) in &read_at {
                                m.jail(jail).observe_ban_latency(t.elapsed().as_secs_f64());
                            }
                        }
                    }
                    Err(e) => {
                        error!("actions", "nftables: {} change(s) failed: {e}", batch.len());
                        if let Some(m) = &self.ctx.metrics {
                            for jail in batch_jails(&batch) {
                                m.jail(&jail).action_error("nftables");
                            }
                        }
                    }
                },
                None => error!(
                    "actions",
                    "nftables backend not running: {} change(s) lost",
                    batch.len()
                ),
            }
        }
        let due =
            self.force_checkpoints || self.last_checkpoint_flush.elapsed() >= CHECKPOINT_EVERY;
        if (due || !self.pending.store.is_empty()) && !self.checkpoints.is_empty() {
            self.pending.store.extend(
                self.checkpoints
                    .drain()
                    .map(|(_, cp)| Change::Checkpoint(cp)),
            );
            self.last_checkpoint_flush = Instant::now();
        }
        if !self.pending.store.is_empty() {
            let batch = std::mem::take(&mut self.pending.store);
            if let Err(e) = self.store.apply(&batch) {
                error!("database", "{} change(s) not stored: {e}", batch.len());
            }
        }
    }

    fn housekeeping(&mut self) {
        if self.last_purge.elapsed() >= PURGE_EVERY {
            self.last_purge = Instant::now();
            match self
                .store
                .purge(self.ctx.clock.now(), self.ctx.settings.db_purge_age)
            {
                Ok(p) => info!(
                    "database",
                    "purged {} history row(s), {} expired ban(s)", p.history, p.expired_bans
                ),
                Err(e) => error!("database", "purge: {e}"),
            }
        }
        if let Some(m) = &self.ctx.metrics {
            for (name, rt) in &self.jails {
                m.jail(name)
                    .set_active_bans(rt.state.stats().currently_banned as u64);
            }
        }
    }

    /// Re-installs the unexpired bans of the store, in one batch per backend.
    pub(super) fn restore(&mut self, only: Option<&str>) {
        let now = self.ctx.clock.now();
        let started = Instant::now();
        let records = match self.store.active_bans(now) {
            Ok(r) => r,
            Err(e) => {
                error!("database", "reading the bans to restore: {e}");
                return;
            }
        };
        let mut restored = 0usize;
        for r in records {
            if only.is_some_and(|j| j != r.jail) {
                continue;
            }
            let Some(rt) = self.jails.get_mut(&r.jail) else {
                continue;
            };
            let duration = (!r.is_permanent()).then_some(r.bantime);
            let key = FailureKey::parse(&r.key);
            let decision = rt
                .state
                .restore_ban(key, r.time_of_ban, duration, r.ban_count, now);
            let fields: BTreeMap<String, String> = r
                .data
                .tags
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect();
            if self.apply_decision(&r.jail, decision, &fields, None, now) {
                restored += 1;
            }
        }
        let decided = started.elapsed();
        self.flush();
        if restored > 0 {
            info!(
                "server",
                "restored {restored} ban(s) from the database in {:.3} s ({:.3} s to read and decide)",
                started.elapsed().as_secs_f64(),
                decided.as_secs_f64()
            );
        }
    }

    /// Stops everything in reverse order of the data flow: sources (their last
    /// positions kept), then actions, then the store.
    pub fn shutdown(&mut self) {
        let names: Vec<String> = self.order.clone();
        for name in names.iter().rev() {
            self.stop_jail(name, false);
        }
        // Requests that arrived meanwhile get an answer rather than a timeout.
        for ev in std::mem::take(&mut self.deferred) {
            if let Event::Control { reply, .. } = ev {
                let _ = reply.try_send(crate::control::protocol::Envelope::err(
                    "the daemon is shutting down",
                ));
            }
        }
        self.force_checkpoints = true;
        self.flush();
    }
}

/// The jails a batch touches (for error counts).
fn batch_jails(batch: &[NftChange]) -> Vec<String> {
    let mut v: Vec<String> = batch
        .iter()
        .map(|c| match c {
            NftChange::Ban { jail, .. } | NftChange::Unban { jail, .. } => jail.clone(),
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The nftables element of a key, if it is an address or a network.
fn key_net(key: &FailureKey) -> Option<banhammer_core::jail::IpNet> {
    match key {
        FailureKey::Ip(ip) => Some(banhammer_core::jail::IpNet::host(*ip)),
        FailureKey::Net(n) => Some(*n),
        FailureKey::Id(_) => None,
    }
}

fn describe_len(ban: &Ban) -> String {
    match ban.duration {
        None => "permanent".to_string(),
        Some(d) => format!("{}s", d.round()),
    }
}

/// fail2ban's time format in logs and `banip --with-time`: `2026-11-25 15:55:15`.
pub fn format_time(t: f64) -> String {
    let ts = jiff::Timestamp::from_second(t as i64).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Shared handle for the jails module.
pub type JailName = Arc<str>;
