//! The daemon (`banhammer run`): starts every enabled jail, restores and reconciles the
//! bans, runs the main loop, and shuts down in reverse order of the data flow.
//!
//! It is given everything it runs on — resolved [`Settings`], compiled plans, and its
//! [`Parts`]: the store, the firewall, the clock, the metrics — and hands out an [`Inbox`]
//! through which whoever owns the control socket and the signals talks to it. The command
//! line (`cli::run`) builds those from flags and files; tests build them from fakes.
//!
//! Threads: per jail a source (tailing), a reader (matching) and, with an ignorecommand,
//! a gate; one per command action (its queue keeps per-address order); the effects thread
//! (firewall and store); reload preparers; and the main loop ([`engine`]), the one owner of
//! every jail's state, which never waits on any of them. They talk through channels only.

pub mod commands;
pub mod control;
pub mod database;
pub mod effects;
pub mod engine;
pub mod event;
pub mod firewall;
pub mod history;
pub mod ignorecmd;
pub mod jails;
pub mod outbox;
pub mod plan;
pub mod process;
pub mod reader;
pub mod reload;
pub mod selfaddrs;
pub mod settings;
pub mod sources;

use std::sync::mpsc::{channel, sync_channel};
use std::sync::Arc;

use anyhow::{anyhow, Result};
use banhammer_store::Store;

use crate::metrics::Metrics;
use crate::{error, info};
use effects::{EffectsThread, FirewallUse};
use engine::{Context, Engine};
use event::Event;
pub use event::{Inbox, SignalKind};
use firewall::{Clock, Firewall};
use history::HistoryCache;
use jails::Jails;
use outbox::Outbox;
use plan::{ActionPlan, JailPlan, PlanOptions};
pub use settings::Settings;

/// Our nftables table (`inet banhammer`).
pub const NFT_TABLE: &str = "banhammer";

/// Events waiting for the main loop at most (readers wait when it is full). The channel
/// allocates all its slots up front (~100 bytes each), so this is idle memory too.
const EVENT_QUEUE: usize = 4096;

/// What the daemon runs on, made by its caller.
pub struct Parts {
    /// The database, opened (and checked) by the caller.
    pub store: Store,
    /// The native firewall backend (used only by jails with a native action).
    pub firewall: Box<dyn Firewall>,
    /// The clock decisions are made by.
    pub clock: Clock,
    /// Prometheus counters, when served.
    pub metrics: Option<Arc<Metrics>>,
}

/// A started daemon: jails running, bans restored and reconciled, the loop not yet
/// turning.
pub struct Daemon {
    engine: Engine,
    effects: EffectsThread,
    inbox: Inbox,
}

impl Daemon {
    /// Starts everything `plans` describe. Reads what the store holds (bans to restore,
    /// history, file positions), sets up each jail's firewall side and starts it, restores
    /// the stored bans, then reconciles with the kernel: elements of configured jails'
    /// sets the store does not know are adopted, sets of jails not configured removed.
    pub fn start(
        settings: Settings,
        plan_opts: PlanOptions,
        parts: Parts,
        plans: Vec<JailPlan>,
    ) -> Result<Daemon> {
        let Parts {
            store,
            firewall,
            clock,
            metrics,
        } = parts;
        let now = clock.now();
        let mut laps = Vec::new();
        let mut lap = std::time::Instant::now();
        let mut mark = |what: &'static str| {
            laps.push(format!("{what} {:.3} s", lap.elapsed().as_secs_f64()));
            lap = std::time::Instant::now();
        };
        let read = |what: &str, e: banhammer_store::StoreError| {
            let hint = if e.is_damage() {
                " (the database is damaged: restore a backup, or start with --db-recover to \
                 set it aside and rebuild the bans from the kernel's sets)"
            } else {
                ""
            };
            anyhow!("reading {what} from the database: {e}{hint}")
        };
        let history = HistoryCache::from_rows(
            store
                .latest_history()
                .map_err(|e| read("the ban history", e))?,
        );
        let positions = store
            .all_checkpoints()
            .map_err(|e| read("the file positions", e))?;
        let stored = store
            .active_bans(now)
            .map_err(|e| read("the active bans", e))?;
        mark("database read");
        let use_firewall = if plan_opts.dry_run {
            FirewallUse::Disabled
        } else {
            FirewallUse::Enabled
        };
        let (effects, effects_thread) =
            effects::start(firewall, store, use_firewall, metrics.clone())
                .map_err(|e| anyhow!("starting the effects thread: {e}"))?;
        let (tx, rx) = sync_channel::<Event>(EVENT_QUEUE);
        let (urgent_tx, urgent_rx) = channel();
        let inbox = Inbox::new(tx.clone(), urgent_tx);
        let jails = Jails::new(tx.clone(), metrics.clone());
        let outbox = Outbox::new(effects.clone(), settings.db_max_matches, history, positions);
        let ctx = Context {
            settings,
            plan_opts,
            metrics,
            clock,
        };
        let engine = Engine::new(ctx, jails, outbox, rx, tx, urgent_rx);
        let mut daemon = Daemon {
            engine,
            effects: effects_thread,
            inbox,
        };
        for p in plans {
            let name = p.spec.name.clone();
            if let Err(e) = daemon.start_jail(p) {
                error!("server", "{e:#}");
                daemon.shutdown();
                return Err(e.context(format!("jail [{name}] did not start")));
            }
        }
        mark("jails started");
        let engine = &mut daemon.engine;
        engine.restore(stored);
        engine.finish_bulk();
        engine.settle();
        mark("bans restored");
        if use_firewall == FirewallUse::Enabled {
            match engine.effects().inventory(effects::Freshness::AsStarted) {
                Ok(kernel) => engine.adopt(kernel),
                Err(e) => error!("actions", "reading the kernel's sets: {e}"),
            }
            engine.outbox.ship(false);
            engine.effects().prune_stale();
        }
        engine.settle();
        mark("kernel reconciled");
        info!("server", "start-up: {}", laps.join(", "));
        info!(
            "server",
            "Server ready: {} jail(s)",
            daemon.engine.jails.len()
        );
        Ok(daemon)
    }

    fn start_jail(&mut self, p: JailPlan) -> Result<()> {
        let name = p.spec.name.clone();
        for a in &p.actions {
            if let ActionPlan::Native {
                actname,
                spec,
                overridden_file,
            } = a
            {
                if let Some(f) = overridden_file {
                    crate::warning!(
                        "actions",
                        "[{name}] {f}: not run; action {actname} is served by the native nftables backend"
                    );
                }
                self.engine
                    .effects()
                    .start_jail(spec.clone())
                    .map_err(|e| anyhow!("jail [{name}] action {actname}: nftables: {e}"))?;
            }
        }
        self.engine.start_jail(p)
    }

    /// The way in for the control socket and the signal handler.
    pub fn inbox(&self) -> Inbox {
        self.inbox.clone()
    }

    /// Runs the main loop until a stop is asked for.
    pub fn run(&mut self) {
        self.engine.run();
    }

    /// One turn of the main loop (tests drive it turn by turn).
    pub fn turn(&mut self, wait: std::time::Duration) {
        self.engine.turn(wait);
    }

    /// The main loop, for tests that look inside.
    pub fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Stops the jails (their last positions kept, command actions stopped), applies
    /// what is pending and closes the store.
    pub fn shutdown(mut self) {
        self.engine.shutdown();
        let effects = self.engine.effects().clone();
        self.effects.close(&effects);
    }
}

#[cfg(test)]
mod tests;
