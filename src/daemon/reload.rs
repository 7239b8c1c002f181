//! Reload (`SIGHUP`, `banhammer reload [JAIL]`), its first half: beside the main loop, a
//! preparer thread reads and compiles everything, sets up the firewall side of the jails
//! that (re)start, fetches their stored bans and reads what the kernel's sets hold; a
//! broken configuration changes nothing and says why. Receives a [`Snapshot`] of what the
//! loop runs; emits a [`PreparedReload`], which the loop swaps in
//! (`Engine::apply_reload`): jails gone from the configuration stop (their bans are
//! lifted and their sets deleted), unchanged jails keep running untouched, changed jails
//! restart with their bans carried over, new jails start with their stored bans, kernel
//! elements no jail knows are adopted, and sets of jails not configured are removed.
//!
//! One reload runs at a time; requests that arrive meanwhile wait their turn
//! ([`PendingReload`]).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc::{self, SyncSender};

use banhammer_config::{ConfigTree, JailSpec};
use banhammer_store::BanRecord;

use super::effects::{Effects, Freshness};
use super::firewall::KernelBan;
use super::plan::{plan, ActionPlan, JailPlan, PlanOptions};
use crate::control::protocol::Envelope;
use crate::embedded::EMBEDDED_CONFIG;
use crate::{error, warning};

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
    /// Sends the outcome to the waiting client, if any.
    pub fn answer(self, answer: Envelope) {
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
    pub order: Vec<String>,
    /// Jails to start or restart, each ready (or why not: its line of the answer).
    pub plans: Vec<(String, Result<JailPlan, String>)>,
    /// Jails whose configuration did not change.
    pub unchanged: Vec<String>,
    /// Stored bans of the jails that start anew.
    pub stored: Vec<BanRecord>,
    /// The kernel's elements of started jails, when they could be read.
    pub kernel: Option<Vec<KernelBan>>,
}

/// A prepared reload, on its way to the loop.
pub struct PreparedReload {
    /// The request (its `reply` waits for the swap's outcome).
    pub request: ReloadRequest,
    /// What was prepared, or why the reload is refused.
    pub result: Result<Prepared, String>,
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
pub struct Snapshot {
    /// The config dir overlaying the embedded tree.
    pub config_dir: Option<PathBuf>,
    /// Options of the plans.
    pub plan_opts: PlanOptions,
    /// Running (not stopping) jails and their configuration.
    pub running: BTreeMap<String, JailSpec>,
    /// Now, for the plans and the stored bans.
    pub now: f64,
    /// The effects thread (firewall set-up, store and kernel reads).
    pub effects: Effects,
}

/// Starts preparing `request` beside the loop; `deliver` hands the result to the loop.
/// False when the thread could not start (the request is answered then).
pub fn prepare(
    snap: Snapshot,
    request: ReloadRequest,
    deliver: Box<dyn FnOnce(PreparedReload) + Send>,
) -> bool {
    let (tx, rx) = mpsc::channel::<ReloadRequest>();
    let spawned = std::thread::Builder::new()
        .name("reload".into())
        .spawn(move || {
            let Ok(request) = rx.recv() else {
                return;
            };
            let result = build(&snap, request.only.as_deref());
            deliver(PreparedReload { request, result });
        });
    match spawned {
        Ok(_) => {
            let _ = tx.send(request);
            true
        }
        Err(e) => {
            error!("server", "reload: cannot start its thread: {e}");
            request.answer(Envelope::err("reload could not start"));
            false
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
    let kernel = match snap.effects.inventory(Freshness::Read) {
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
