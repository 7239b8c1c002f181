//! Reload (`SIGHUP`, `banhammer reload [JAIL]`): re-read the configuration and apply the
//! difference, in two halves. Beside the main loop, a preparer thread reads and compiles
//! everything, sets up the firewall side of the jails that (re)start, fetches their stored
//! bans and reads what the kernel's sets hold; a broken configuration changes nothing and
//! says why. Then the loop swaps the result in, without waiting for anything: jails gone
//! from the configuration stop (their bans are lifted and their sets deleted), unchanged
//! jails keep running untouched, changed jails restart with their bans carried over, new
//! jails start with their stored bans, kernel elements no jail knows are adopted, and sets
//! of jails that are not configured are removed.
//!
//! One reload runs at a time; requests that arrive meanwhile wait their turn.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc::{self, SyncSender};

use banhammer_config::{ConfigTree, JailSpec};
use banhammer_store::BanRecord;

use super::effects::Effects;
use super::engine::Engine;
use super::event::Event;
use super::firewall::KernelBan;
use super::jails::{ActionRuntime, AfterStop};
use super::plan::{plan, ActionPlan, JailPlan, PlanOptions};
use crate::control::protocol::{Envelope, Reply};
use crate::embedded::EMBEDDED_CONFIG;
use crate::{error, info, warning};

/// Reload requests queued behind the running one at most.
const MAX_QUEUED: usize = 8;

/// A reload asked for.
pub struct ReloadRequest {
    /// One jail, or all.
    pub only: Option<String>,
    /// Where the control client waits for the outcome (none for SIGHUP).
    pub reply: Option<SyncSender<Envelope>>,
}

impl ReloadRequest {
    fn answer(self, answer: Envelope) {
        if let Some(r) = self.reply {
            let _ = r.try_send(answer);
        }
    }
}

/// The reload in progress and those waiting.
#[derive(Default)]
pub struct PendingReload {
    busy: bool,
    queued: VecDeque<ReloadRequest>,
}

impl PendingReload {
    /// `Some(request)` when it may start now; otherwise it waits (or is refused when too
    /// many wait).
    pub fn admit(&mut self, request: ReloadRequest) -> Option<ReloadRequest> {
        if !self.busy {
            self.busy = true;
            return Some(request);
        }
        if self.queued.len() >= MAX_QUEUED {
            request.answer(Envelope::err(
                "too many reloads are waiting; try again when they are done",
            ));
            return None;
        }
        self.queued.push_back(request);
        None
    }

    /// The running reload is done: the next one, if any.
    pub fn finish(&mut self) -> Option<ReloadRequest> {
        let next = self.queued.pop_front();
        self.busy = next.is_some();
        next
    }
}

/// What the preparer made.
pub struct Prepared {
    /// Enabled jails in configuration order.
    order: Vec<String>,
    /// Jails to start or restart, each ready (or why not: its line of the answer).
    plans: Vec<(String, Result<JailPlan, String>)>,
    /// Jails whose configuration did not change.
    unchanged: Vec<String>,
    /// Stored bans of the jails that start anew.
    stored: Vec<BanRecord>,
    /// The kernel's elements of started jails, when they could be read.
    kernel: Option<Vec<KernelBan>>,
}

/// A prepared reload, on its way to the loop.
pub struct PreparedReload {
    request: ReloadRequest,
    result: Result<Prepared, String>,
}

impl std::fmt::Debug for PreparedReload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreparedReload")
    }
}

impl PreparedReload {
    /// Drops it, telling the client why.
    pub fn refuse(self, why: &str) {
        self.request.answer(Envelope::err(why));
    }
}

/// What the preparer needs to know of the running daemon.
struct Snapshot {
    config_dir: Option<PathBuf>,
    plan_opts: PlanOptions,
    /// Running (not stopping) jails and their configuration.
    running: BTreeMap<String, JailSpec>,
    now: f64,
    effects: Effects,
    events: SyncSender<Event>,
}

/// Starts preparing `request` beside the loop.
pub fn prepare(engine: &mut Engine, request: ReloadRequest) {
    let running = engine
        .jails
        .active_names()
        .into_iter()
        .filter_map(|n| engine.jails.get(&n).map(|rt| (n, rt.spec.clone())))
        .collect();
    let snap = Snapshot {
        config_dir: engine.ctx.settings.config_dir.clone(),
        plan_opts: engine.ctx.plan_opts.clone(),
        running,
        now: engine.ctx.clock.now(),
        effects: engine.effects().clone(),
        events: engine.self_events.clone(),
    };
    let spawned = std::thread::Builder::new()
        .name("reload".into())
        .spawn(move || {
            let result = build(&snap, request.only.as_deref());
            let events = snap.events.clone();
            let prepared = PreparedReload { request, result };
            // The loop is gone when this fails: nothing left to reload.
            let _ = events.send(Event::Reloaded(Box::new(prepared)));
        });
    if let Err(e) = spawned {
        error!("server", "reload: cannot start its thread: {e}");
        if let Some(next) = engine.reload.finish() {
            next.answer(Envelope::err("reload could not start"));
        }
    }
}

/// The preparer's work: read, compile, set up the firewall of jails that (re)start, fetch
/// their stored bans, read the kernel's sets.
fn build(snap: &Snapshot, only: Option<&str>) -> Result<Prepared, String> {
    let tree = ConfigTree::new(EMBEDDED_CONFIG, snap.config_dir.clone());
    let failed =
        |why: String| format!("reload failed, still running the previous configuration: {why}");
    let cfg = banhammer_config::read_jails(&tree).map_err(|e| failed(e.to_string()))?;
    if let Some(o) = only {
        let enabled = cfg.jails.iter().any(|j| j.enabled && j.name == o);
        if !enabled && !snap.running.contains_key(o) {
            return Err(format!("Sorry but the jail '{o}' does not exist"));
        }
    }
    for w in &cfg.warnings {
        warning!("config", "{}: {}", w.origin, w.message);
    }
    let mut order = Vec::new();
    let mut compiled = Vec::new();
    let mut unchanged = Vec::new();
    for spec in cfg.jails.iter().filter(|j| j.enabled) {
        order.push(spec.name.clone());
        if only.is_some_and(|o| o != spec.name) {
            continue;
        }
        if snap.running.get(&spec.name) == Some(spec) {
            unchanged.push(spec.name.clone());
            continue;
        }
        let p = plan(spec, snap.config_dir.as_deref(), &snap.plan_opts, snap.now)
            .map_err(|e| failed(format!("{e:#}")))?;
        compiled.push(p);
    }
    // Everything compiled: now the firewall side of the jails that (re)start.
    let mut plans = Vec::new();
    let mut new_jails = Vec::new();
    for p in compiled {
        let name = p.spec.name.clone();
        let mut ready = Ok(());
        for a in &p.actions {
            if let ActionPlan::Native { actname, spec, .. } = a {
                if let Err(e) = snap.effects.start_jail(spec.clone()) {
                    ready = Err(format!(
                        "ERROR: jail [{name}] action {actname}: nftables: {e}"
                    ));
                    break;
                }
            }
        }
        if ready.is_ok() && !snap.running.contains_key(&name) {
            new_jails.push(name.clone());
        }
        plans.push((name, ready.map(|()| p)));
    }
    let stored = if new_jails.is_empty() {
        Vec::new()
    } else {
        let (tx, rx) = mpsc::channel();
        let now = snap.now;
        snap.effects.query(Box::new(move |store| {
            let _ = tx.send(store.active_bans(now));
        }));
        match rx.recv() {
            Ok(Ok(bans)) => bans
                .into_iter()
                .filter(|b| new_jails.contains(&b.jail))
                .collect(),
            Ok(Err(e)) => {
                error!("database", "reload: reading the bans of new jails: {e}");
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    };
    let kernel = match snap.effects.inventory() {
        Ok(k) => Some(k),
        Err(e) => {
            warning!("actions", "reload: reading the kernel's sets: {e}");
            None
        }
    };
    Ok(Prepared {
        order,
        plans,
        unchanged,
        stored,
        kernel,
    })
}

/// Swaps a prepared reload in (on the loop; nothing here waits).
pub fn apply(engine: &mut Engine, prepared: PreparedReload) {
    let PreparedReload { request, result } = prepared;
    let p = match result {
        Ok(p) => p,
        Err(why) => {
            error!("server", "{why}");
            request.answer(Envelope::err(why));
            return;
        }
    };
    let only = request.only.clone();
    let mut messages = Vec::new();
    let gone: Vec<String> = engine
        .jails
        .active_names()
        .into_iter()
        .filter(|n| !p.order.contains(n) && only.as_deref().is_none_or(|o| o == n))
        .collect();
    for name in gone {
        engine.jails.begin_stop(&name, AfterStop::Remove);
        messages.push(format!("Jail '{name}' stopped (no longer enabled)"));
    }
    let mut new_jails = Vec::new();
    for (name, plan) in p.plans {
        let plan = match plan {
            Ok(plan) => plan,
            Err(msg) => {
                messages.push(msg);
                continue;
            }
        };
        if engine.jails.contains(&name) {
            // Native sets the new plan no longer uses go when the old incarnation ends.
            let kept: Vec<&str> = plan
                .actions
                .iter()
                .filter_map(|a| match a {
                    ActionPlan::Native { spec, .. } => Some(spec.jail.as_str()),
                    _ => None,
                })
                .collect();
            let dropped: Vec<String> = engine
                .jails
                .get(&name)
                .map(|rt| {
                    rt.actions
                        .iter()
                        .filter_map(|a| match a {
                            ActionRuntime::Native { nft_jail, .. }
                                if !kept.contains(&nft_jail.as_str()) =>
                            {
                                Some(nft_jail.clone())
                            }
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            for j in dropped {
                engine.outbox.effects().stop_jail(j);
            }
            engine
                .jails
                .begin_stop(&name, AfterStop::Restart(Box::new(plan)));
            messages.push(format!("Jail '{name}' reloaded"));
        } else {
            match engine.start_jail(plan, Vec::new(), false) {
                Ok(()) => {
                    new_jails.push(name.clone());
                    messages.push(format!("Jail '{name}' started"));
                }
                Err(e) => messages.push(format!("ERROR: {e:#}")),
            }
        }
    }
    for name in &p.unchanged {
        messages.push(format!("Jail '{name}' unchanged"));
    }
    let stored: Vec<BanRecord> = p
        .stored
        .into_iter()
        .filter(|b| new_jails.contains(&b.jail))
        .collect();
    engine.restore(stored);
    engine.jails.set_order(p.order);
    if let Some(kernel) = p.kernel {
        engine.adopt(kernel);
    }
    engine.outbox.ship(false);
    engine.outbox.effects().prune_stale();
    for m in &messages {
        info!("server", "{m}");
    }
    let answer = if messages.iter().any(|m| m.starts_with("ERROR")) {
        Envelope::err(messages.join("\n"))
    } else {
        Envelope::ok(Reply::Reloaded { messages })
    };
    request.answer(answer);
}
