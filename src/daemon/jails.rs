//! Starting and stopping one jail: its source and reader threads, its actions (native
//! nftables sets, command-action workers), its state. Receives a [`JailPlan`]; emits a
//! running [`JailRuntime`] owned by the engine.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Result};
use banhammer_config::JailSpec;
use banhammer_core::jail::{Ban, JailState, JailStats};
use banhammer_store::Checkpoint;

use super::commands::CommandWorker;
use super::engine::Engine;
use super::plan::{ActionPlan, JailPlan, SourcePlan};
use super::reader;
use super::sources::{self, SourceRuntime};
use crate::action::command::{JailCounters, Ticket};
use crate::action::nftables::NftBackend;
use crate::{error, info, warning};

/// Records waiting between a jail's source and its reader.
const SOURCE_QUEUE: usize = 1024;
/// How long a stopping jail's reader may take to hand over its last records.
const READER_STOP_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// One running action of a jail.
pub enum ActionRuntime {
    /// Elements of our nftables sets.
    Native {
        /// Name in the jail.
        actname: String,
        /// The jail name the backend knows.
        nft_jail: String,
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
    /// `ignorecommand`.
    pub ignorecommand: Option<String>,
    /// The source, while running.
    source: Option<SourceRuntime>,
    /// The reader thread.
    reader: Option<JoinHandle<()>>,
    /// What `status` lists as the jail's files, or its journal matches.
    pub files: Vec<String>,
    /// Journal matches when reading the journal.
    pub journal_matches: Option<Vec<String>>,
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

impl Engine {
    /// Starts a jail from its plan (bans of an earlier incarnation in `carry` are
    /// re-installed).
    pub(super) fn start_jail(&mut self, plan: JailPlan, carry: Vec<Ban>) -> Result<()> {
        let name = plan.spec.name.clone();
        let generation = self.next_generation;
        self.next_generation += 1;
        let mut actions = Vec::new();
        for a in &plan.actions {
            actions.push(self.start_action(&name, a, plan.spec.bantime)?);
        }
        let mut state = JailState::new(plan.state.clone());
        if plan.spec.ignoreself {
            state
                .ignore_mut()
                .set_self_addrs(super::selfaddrs::own_addresses());
        }
        for n in state
            .ignore()
            .names()
            .map(str::to_string)
            .collect::<Vec<_>>()
        {
            let addrs = crate::dns::resolve_all(&n)
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect::<Vec<std::net::IpAddr>>();
            state.ignore_mut().set_resolved(&n, addrs);
        }
        let jail: Arc<str> = Arc::from(name.as_str());
        let (tx, rx) = sync_channel(SOURCE_QUEUE);
        let (files, journal_matches) = match &plan.source {
            SourcePlan::Files { paths, .. } => {
                (paths.iter().map(|p| p.pattern.clone()).collect(), None)
            }
            SourcePlan::Journal { matches, .. } => (Vec::new(), Some(matches.clone())),
            SourcePlan::Syslog { backend } => (vec![backend.clone()], None),
        };
        let checkpoints = self.stored_checkpoints(&name);
        let source = sources::start(
            &mut self.syslog_hub,
            &plan.source,
            &plan.spec,
            checkpoints,
            tx,
        )
        .map_err(|e| anyhow!("jail [{name}]: starting its source: {e}"))?;
        let reader = reader::spawn(jail, generation, plan.filter, rx, self.events.clone())
            .map_err(|e| anyhow!("jail [{name}]: starting its reader: {e}"))?;
        let rt = JailRuntime {
            spec: plan.spec,
            state,
            actions,
            generation,
            ignorecommand: plan.ignorecommand,
            source: Some(source),
            reader: Some(reader),
            files,
            journal_matches,
        };
        if !self.order.contains(&name) {
            self.order.push(name.clone());
        }
        self.jails.insert(name.clone(), rt);
        info!("jail", "Jail '{name}' started");
        let now = self.ctx.clock.now();
        for b in carry {
            let d = match self.jails.get_mut(&name) {
                Some(rt) => {
                    rt.state
                        .restore_ban(b.key.clone(), b.time_of_ban, b.duration, b.ban_count, now)
                }
                None => break,
            };
            self.apply_decision(&name, d, &BTreeMap::new(), None, now);
        }
        Ok(())
    }

    fn start_action(&mut self, jail: &str, a: &ActionPlan, bantime: f64) -> Result<ActionRuntime> {
        Ok(match a {
            ActionPlan::Native {
                actname,
                spec,
                overridden_file,
            } => {
                if let Some(f) = overridden_file {
                    warning!(
                        "actions",
                        "[{jail}] {f}: not run; action {actname} is served by the native nftables backend"
                    );
                }
                let nft = match self.nft.as_mut() {
                    Some(n) => n,
                    None => {
                        let n = NftBackend::new(Path::new("nft"), super::NFT_TABLE)
                            .map_err(|e| anyhow!("nftables: {e}"))?;
                        self.nft.insert(Box::new(n))
                    }
                };
                nft.start_jail(spec)
                    .map_err(|e| anyhow!("jail [{jail}] action {actname}: nftables: {e}"))?;
                ActionRuntime::Native {
                    actname: actname.clone(),
                    nft_jail: spec.jail.clone(),
                }
            }
            ActionPlan::Command(spec) => ActionRuntime::Command {
                actname: spec.actname.clone(),
                worker: CommandWorker::start(jail, spec, bantime, self.ctx.metrics.clone())?,
            },
            ActionPlan::Dummy { actname } => ActionRuntime::Dummy {
                actname: actname.clone(),
            },
        })
    }

    /// Stored positions of a jail's files, overlaid by newer ones not yet written.
    fn stored_checkpoints(&self, jail: &str) -> HashMap<String, Checkpoint> {
        let mut map: HashMap<String, Checkpoint> = match self.store.checkpoints(jail) {
            Ok(list) => list.into_iter().map(|c| (c.path.clone(), c)).collect(),
            Err(e) => {
                error!("database", "[{jail}] reading file positions: {e}");
                HashMap::new()
            }
        };
        for cp in self.pending_checkpoints(jail) {
            map.insert(cp.path.clone(), cp);
        }
        map
    }

    /// Stops a jail's source and reader, and its actions. `remove`: the jail goes away
    /// for good (reload without it): its nftables sets are deleted too; otherwise (daemon
    /// shutdown) they stay, so the kernel keeps protecting until the bans expire.
    /// Returns its bans.
    pub(super) fn stop_jail(&mut self, name: &str, remove: bool) -> Vec<Ban> {
        let Some(mut rt) = self.jails.remove(name) else {
            return Vec::new();
        };
        if let Some(src) = rt.source.take() {
            src.stop(&mut self.syslog_hub);
        }
        // The reader ends when the source's sender is gone, after forwarding what it
        // still had (the last file positions above all): keep draining meanwhile, or a
        // full channel would block it forever.
        if let Some(r) = rt.reader.take() {
            self.wait_for_reader(name, || r.is_finished(), READER_STOP_LIMIT);
            if r.is_finished() {
                let _ = r.join();
            } else {
                error!("jail", "[{name}] reader did not stop in time; left behind");
            }
        }
        let bans: Vec<Ban> = rt.state.banned().cloned().collect();
        let stats = rt.state.stats();
        let tickets: Vec<Ticket> = bans
            .iter()
            .map(|b| ticket(b, &BTreeMap::new(), &stats))
            .collect();
        for a in rt.actions {
            match a {
                ActionRuntime::Native { nft_jail, .. } => {
                    if remove {
                        if let Some(nft) = self.nft.as_mut() {
                            if let Err(e) = nft.stop_jail(&nft_jail) {
                                error!("actions", "[{name}] nftables: removing the sets: {e}");
                            }
                        }
                    }
                }
                ActionRuntime::Command { worker, .. } => worker.stop(tickets.clone()),
                ActionRuntime::Dummy { .. } => {}
            }
        }
        if remove {
            self.order.retain(|n| n != name);
        }
        info!("jail", "Jail '{name}' stopped");
        bans
    }
}
