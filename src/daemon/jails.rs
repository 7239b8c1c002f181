//! The running jails: their state, their actions, the threads that feed them (source,
//! reader, ignorecommand gate), their order, and their starting and stopping. Receives
//! [`JailPlan`]s (checked and prepared beside the main loop); emits [`JailRuntime`]s the
//! loop decides with.
//!
//! Nothing here waits. Starting spawns threads; stopping asks the source to stop and
//! returns: the jail keeps answering (status, bans) until its reader's last event
//! ([`super::event::Event::ReaderDone`]) says everything it read has arrived, and only then
//! does [`Jails::finish_stop`] hand it back for its actions to be stopped — on threads of
//! their own, which shutdown waits for.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Result};
use banhammer_config::JailSpec;
use banhammer_core::jail::{Ban, JailState, JailStats};
use banhammer_store::Checkpoint;

use super::commands::CommandWorker;
use super::event::Event;
use super::ignorecmd;
use super::plan::{ActionPlan, JailPlan, SourcePlan};
use super::reader;
use super::sources::{self, SourceRuntime, SyslogHub};
use crate::action::command::{JailCounters, Ticket};
use crate::metrics::Metrics;
use crate::{error, info};

/// Records waiting between a jail's source and its reader: journal and syslog records one
/// each, a file's lines in batches of at most 64 KiB (with up to 8 KiB of slack and 32 KiB
/// of line ends), so that what is read and not yet matched stays within about 26 MiB per
/// jail.
const SOURCE_QUEUE: usize = 256;

/// One running action of a jail.
pub enum ActionRuntime {
    /// Elements of our nftables sets.
    Native {
        /// Name in the jail.
        actname: String,
        /// The jail name the backend knows.
        nft_jail: String,
        /// What names its sets (`addr-set-<stem>`).
        set_stem: String,
    },
    /// A command action on its worker thread.
    Command {
        /// Name in the jail.
        actname: String,
        /// Its worker.
        worker: CommandWorker,
    },
    /// Nothing.
    Dummy {
        /// Name in the jail.
        actname: String,
    },
}

impl ActionRuntime {
    /// Name in the jail.
    pub fn actname(&self) -> &str {
        match self {
            ActionRuntime::Native { actname, .. }
            | ActionRuntime::Command { actname, .. }
            | ActionRuntime::Dummy { actname } => actname,
        }
    }
}

/// What happens to a stopping jail once its reader has ended.
pub enum AfterStop {
    /// It is gone from the configuration: its bans are lifted and its sets deleted.
    Remove,
    /// Its configuration changed: it starts again from this plan, keeping its bans.
    Restart(Box<JailPlan>),
    /// The daemon stops: the kernel's sets stay (with their timeouts).
    Shutdown,
}

/// A running jail.
pub struct JailRuntime {
    /// Its resolved configuration.
    pub spec: JailSpec,
    /// Its state (failures, bans).
    pub state: JailState,
    /// Its actions, in order.
    pub actions: Vec<ActionRuntime>,
    /// Incarnation (events from older readers are dropped).
    pub generation: u64,
    /// What `status` lists as the jail's files (patterns), or its syslog socket.
    pub files: Vec<String>,
    /// Journal matches when reading the journal.
    pub journal_matches: Option<Vec<String>>,
    /// Set once a stop was asked for.
    pub stopping: Option<AfterStop>,
    source: Option<SourceRuntime>,
    threads: Vec<JoinHandle<()>>,
}

impl JailRuntime {
    /// The jail's command workers, to hand them waiting commands.
    pub fn pump_commands(&mut self) -> usize {
        let mut backlog = 0;
        for a in &mut self.actions {
            if let ActionRuntime::Command { worker, .. } = a {
                worker.pump();
                backlog += worker.backlog();
            }
        }
        backlog
    }
}

/// The run-time values of a ban for command actions.
pub fn ticket(ban: &Ban, fields: &BTreeMap<String, String>, stats: &JailStats) -> Ticket {
    let bantime = ban.duration.map_or(-1, |d| d.round() as i64);
    let mut t = Ticket::new(ban.key.to_string(), ban.time_of_ban, bantime);
    t.failures = ban.failures;
    t.bancount = ban.ban_count;
    t.restored = ban.restored;
    t.matches = ban.matches.clone();
    t.fields = fields.clone();
    t.jail = Some(JailCounters {
        banned: stats.currently_banned as u64,
        banned_total: stats.total_banned,
        found: stats.currently_failed as u64,
        found_total: stats.total_failed,
    });
    t
}

/// A jail source's counts as metrics (replacing those of an earlier incarnation).
fn register_source(m: &Metrics, jail: &str, stats: &Arc<crate::source::SourceStats>) {
    let s = Arc::clone(stats);
    m.register(
        "banhammer_records_skipped_total",
        "counter",
        "Log records skipped whole and never matched (longer than the line limit, or not whole), per jail.",
        &[("jail", jail)],
        Box::new(move || s.skipped.load(std::sync::atomic::Ordering::Relaxed)),
    );
    let s = Arc::clone(stats);
    m.register(
        "banhammer_records_skipped_bytes_total",
        "counter",
        "Bytes of the skipped log records, per jail.",
        &[("jail", jail)],
        Box::new(move || s.skipped_bytes.load(std::sync::atomic::Ordering::Relaxed)),
    );
}

/// The running jails.
pub struct Jails {
    running: BTreeMap<String, JailRuntime>,
    /// Names in configuration order (status lists, `banned`).
    order: Vec<String>,
    next_generation: u64,
    syslog_hub: SyslogHub,
    events: SyncSender<Event>,
    metrics: Option<Arc<Metrics>>,
    /// Threads that finish stopping things (sources, actions); joined at shutdown.
    stoppers: Vec<JoinHandle<()>>,
}

impl Jails {
    /// No jail yet; their readers will send to `events`.
    pub fn new(events: SyncSender<Event>, metrics: Option<Arc<Metrics>>) -> Jails {
        Jails {
            running: BTreeMap::new(),
            order: Vec::new(),
            next_generation: 1,
            syslog_hub: SyslogHub::new(metrics.clone()),
            events,
            metrics,
            stoppers: Vec::new(),
        }
    }

    /// A jail by name.
    pub fn get(&self, name: &str) -> Option<&JailRuntime> {
        self.running.get(name)
    }

    /// A jail by name, to change.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut JailRuntime> {
        self.running.get_mut(name)
    }

    /// The jail if `generation` is its current incarnation.
    pub fn current_mut(&mut self, name: &str, generation: u64) -> Option<&mut JailRuntime> {
        self.running
            .get_mut(name)
            .filter(|rt| rt.generation == generation)
    }

    /// Whether a jail of that name runs (or is stopping).
    pub fn contains(&self, name: &str) -> bool {
        self.running.contains_key(name)
    }

    /// Jail names in configuration order.
    pub fn order(&self) -> &[String] {
        &self.order
    }

    /// Sets the configuration order (after a reload), keeping only running jails.
    pub fn set_order(&mut self, order: Vec<String>) {
        self.order = order
            .into_iter()
            .filter(|n| self.running.contains_key(n))
            .collect();
    }

    /// Every jail, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &JailRuntime)> {
        self.running.iter()
    }

    /// Every jail, by name, to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut JailRuntime)> {
        self.running.iter_mut()
    }

    /// How many jails run.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// No jail runs.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Starts a jail from its plan: its actions, then its reader (and gate), then its
    /// source, which reads from `checkpoints`. The firewall side of its native actions was
    /// set up already (by whoever prepared the plan).
    pub fn start(
        &mut self,
        plan: JailPlan,
        checkpoints: HashMap<String, Checkpoint>,
        state: Option<JailState>,
    ) -> Result<&mut JailRuntime> {
        let name = plan.spec.name.clone();
        let generation = self.next_generation;
        self.next_generation += 1;
        let mut actions = Vec::new();
        for a in &plan.actions {
            actions.push(self.start_action(&name, a, plan.spec.bantime)?);
        }
        // A restart keeps its state (the bans), under the new configuration.
        let state = state.unwrap_or_else(|| JailState::new(plan.state.clone()));
        let jail: Arc<str> = Arc::from(name.as_str());
        let mut threads = Vec::new();
        // Reader → (ignorecommand gate →) main loop.
        let reader_out = match &plan.ignorecommand {
            None => self.events.clone(),
            Some(cmd) => {
                let (tx, gate) = ignorecmd::spawn_gate(
                    jail.clone(),
                    cmd.clone(),
                    plan.state.ignore.clone(),
                    plan.state.ignoreself,
                    self.events.clone(),
                )
                .map_err(|e| anyhow!("jail [{name}]: starting its ignorecommand gate: {e}"))?;
                threads.push(gate);
                tx
            }
        };
        let (tx, rx) = sync_channel(SOURCE_QUEUE);
        let jail_metrics = self.metrics.as_ref().map(|m| m.jail(&name));
        let reader =
            reader::spawn_with_metrics(jail, generation, plan.filter, rx, reader_out, jail_metrics)
                .map_err(|e| anyhow!("jail [{name}]: starting its reader: {e}"))?;
        threads.push(reader);
        let (files, journal_matches) = match &plan.source {
            SourcePlan::Files { paths, .. } => {
                (paths.iter().map(|p| p.pattern.clone()).collect(), None)
            }
            SourcePlan::Journal { matches, .. } => (Vec::new(), Some(matches.clone())),
            SourcePlan::Syslog { backend, .. } => (vec![backend.clone()], None),
        };
        let source = sources::start(
            &mut self.syslog_hub,
            &plan.source,
            &plan.spec,
            checkpoints,
            tx,
        )
        .map_err(|e| anyhow!("jail [{name}]: starting its source: {e}"))?;
        if let (Some(m), Some(stats)) = (&self.metrics, source.stats()) {
            register_source(m, &name, &stats);
        }
        let rt = JailRuntime {
            spec: plan.spec,
            state,
            actions,
            generation,
            files,
            journal_matches,
            stopping: None,
            source: Some(source),
            threads,
        };
        if !self.order.contains(&name) {
            self.order.push(name.clone());
        }
        info!("jail", "Jail '{name}' started");
        self.running.insert(name.clone(), rt);
        self.running
            .get_mut(&name)
            .ok_or_else(|| anyhow!("jail [{name}] vanished as it started"))
    }

    fn start_action(&mut self, jail: &str, a: &ActionPlan, bantime: f64) -> Result<ActionRuntime> {
        Ok(match a {
            ActionPlan::Native { actname, spec, .. } => ActionRuntime::Native {
                actname: actname.clone(),
                nft_jail: spec.jail.clone(),
                set_stem: spec.name.clone().unwrap_or_else(|| spec.jail.clone()),
            },
            ActionPlan::Command(spec) => ActionRuntime::Command {
                actname: spec.actname.clone(),
                worker: CommandWorker::start(jail, spec, bantime, self.metrics.clone())?,
            },
            ActionPlan::Dummy { actname } => ActionRuntime::Dummy {
                actname: actname.clone(),
            },
        })
    }

    /// Asks a jail's source to stop, without waiting; `after` says what then. The jail
    /// stays (answering, banning from what its reader still delivers) until
    /// [`Jails::finish_stop`]. False when no such jail runs or it is stopping already.
    pub fn begin_stop(&mut self, name: &str, after: AfterStop) -> bool {
        let Some(rt) = self.running.get_mut(name) else {
            return false;
        };
        if rt.stopping.is_some() {
            // A later wish replaces an earlier one (a reload during a reload's restart).
            rt.stopping = Some(after);
            return false;
        }
        rt.stopping = Some(after);
        if let Some(src) = rt.source.take() {
            match src.stop_detached(&mut self.syslog_hub) {
                Ok(Some(h)) => self.stoppers.push(h),
                Ok(None) => {}
                Err(e) => error!("jail", "[{name}] stopping its source: {e}"),
            }
        }
        true
    }

    /// A jail's reader has ended: if that was the stopping incarnation, the jail is taken
    /// out and handed back with what was to happen next.
    pub fn finish_stop(&mut self, name: &str, generation: u64) -> Option<(JailRuntime, AfterStop)> {
        let rt = self.running.get(name)?;
        if rt.generation != generation || rt.stopping.is_none() {
            return None;
        }
        let mut rt = self.running.remove(name)?;
        for t in rt.threads.drain(..) {
            // They have ended (the reader sent its last event; the gate passes it last).
            self.stoppers.push(t);
        }
        let after = rt.stopping.take().unwrap_or(AfterStop::Shutdown);
        if matches!(after, AfterStop::Remove) {
            self.order.retain(|n| n != name);
            if let Some(m) = &self.metrics {
                m.unregister("jail", name);
                m.remove_jail(name);
            }
        }
        info!("jail", "Jail '{name}' stopped");
        Some((rt, after))
    }

    /// Stops a stopped jail's command actions (each on its own thread: flush or unban of
    /// `bans`, then actionstop). Native and dummy actions need nothing here.
    pub fn stop_actions(&mut self, rt: JailRuntime, bans: &[Ban]) {
        let stats = rt.state.stats();
        let tickets: Vec<Ticket> = bans
            .iter()
            .map(|b| ticket(b, &BTreeMap::new(), &stats))
            .collect();
        for a in rt.actions {
            if let ActionRuntime::Command { actname, worker } = a {
                match worker.stop(tickets.clone()) {
                    Ok(h) => self.stoppers.push(h),
                    Err(e) => error!("actions", "[{}] {actname}: stopping: {e}", rt.spec.name),
                }
            }
        }
    }

    /// Waits for every thread that stops something (shutdown only).
    pub fn join_stoppers(&mut self) {
        for t in self.stoppers.drain(..) {
            let _ = t.join();
        }
    }

    /// Joins stopper threads that have finished (keeps the list short on a long run).
    pub fn reap(&mut self) {
        let (done, running): (Vec<_>, Vec<_>) =
            self.stoppers.drain(..).partition(|t| t.is_finished());
        self.stoppers = running;
        for t in done {
            let _ = t.join();
        }
    }

    /// Names of every running jail that is not stopping.
    pub fn active_names(&self) -> Vec<String> {
        self.running
            .iter()
            .filter(|(_, rt)| rt.stopping.is_none())
            .map(|(n, _)| n.clone())
            .collect()
    }
}
