//! The effects thread: the one owner of the firewall backend and the store. Receives, in
//! the order the main loop decided them, batches of firewall changes and store changes
//! (each with the control replies waiting on them), jail set-up and tear-down, the purge,
//! and queries; applies them — firewall first, then the store, then the replies — so a
//! ban is in the kernel before it is on disk, and a client hears "done" only when it is.
//!
//! Why a thread of its own: every one of these runs a process (`nft`) or touches a disk,
//! and may take long (a 100k-element transaction, a slow or damaged disk). The main loop
//! only sends; it never waits here. Batches that queue up while one is applied are merged
//! into one transaction each for the kernel and the store, so a flood costs few commits.
//! The purge runs in bounded steps when nothing else is waiting.

use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use banhammer_store::{Change, PurgeCursor, Store};

use super::firewall::{Firewall, KernelBan};
use crate::action::nftables::{NftChange, NftJailSpec};
use crate::control::protocol::Envelope;
use crate::metrics::Metrics;
use crate::{debug, error, info};

/// Rows a purge step looks at per table (one short transaction).
const PURGE_STEP_ROWS: usize = 500;
/// Batches merged into one transaction at most.
const MERGE_MAX: usize = 64;

/// What one turn of the main loop decided.
#[derive(Default)]
pub struct Batch {
    /// Firewall changes, in order.
    pub nft: Vec<NftChange>,
    /// When the line behind each new ban was read (ban latency), by jail.
    pub ban_read_at: Vec<(Arc<str>, Instant)>,
    /// Store changes, in order.
    pub store: Vec<Change>,
    /// Answers to send once the rest is applied.
    pub replies: Vec<(SyncSender<Envelope>, Envelope)>,
}

impl Batch {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.nft.is_empty() && self.store.is_empty() && self.replies.is_empty()
    }

    fn merge(&mut self, other: Batch) {
        self.nft.extend(other.nft);
        self.ban_read_at.extend(other.ban_read_at);
        self.store.extend(other.store);
        self.replies.extend(other.replies);
    }
}

/// A read of the store, run on the effects thread.
pub type Query = Box<dyn FnOnce(&Store) + Send>;

enum Cmd {
    Batch(Batch),
    StartJail(NftJailSpec, Sender<Result<(), String>>),
    StopJail(String),
    FlushJail(String),
    Inventory(Freshness, Sender<Result<Vec<KernelBan>, String>>),
    PruneStale,
    Purge { now: f64, age: f64 },
    Query(Query),
    Barrier(Sender<()>),
    Close(Sender<Result<(), String>>),
}

/// The main loop's handle on the effects thread. Sending never blocks.
#[derive(Clone)]
pub struct Effects {
    tx: Sender<Cmd>,
}

/// The running thread (joined at shutdown).
pub struct EffectsThread {
    handle: Option<JoinHandle<()>>,
}

/// How the kernel's elements are learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Read from the kernel now.
    Read,
    /// As each jail's sets were when it started (right after start-up: nothing but our
    /// own restore has written since, and reading 100k elements again costs a second).
    AsStarted,
}

/// Whether the firewall may be touched at all (`--dry-run` says no).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirewallUse {
    /// Bans reach the kernel.
    Enabled,
    /// Nothing reaches the kernel (dry run).
    Disabled,
}

/// Starts the effects thread, owner of `firewall` and `store` from now on.
pub fn start(
    firewall: Box<dyn Firewall>,
    store: Store,
    use_firewall: FirewallUse,
    metrics: Option<Arc<Metrics>>,
) -> std::io::Result<(Effects, EffectsThread)> {
    let (tx, rx) = mpsc::channel();
    let mut worker = Worker {
        firewall,
        store: Some(store),
        use_firewall,
        metrics,
        purge: None,
    };
    let handle = std::thread::Builder::new()
        .name("effects".into())
        .spawn(move || worker.run(rx))?;
    Ok((
        Effects { tx },
        EffectsThread {
            handle: Some(handle),
        },
    ))
}

impl Effects {
    fn send(&self, cmd: Cmd) {
        // The thread ends only after `close`; a send after it is a bug worth a log line.
        if self.tx.send(cmd).is_err() {
            error!(
                "server",
                "effects thread gone: a firewall or store change was lost"
            );
        }
    }

    /// Queues a turn's decisions.
    pub fn apply(&self, batch: Batch) {
        if !batch.is_empty() {
            self.send(Cmd::Batch(batch));
        }
    }

    /// Sets up a jail's sets and rules, waiting for the result (used off the main loop:
    /// at start and by the reload preparer).
    pub fn start_jail(&self, spec: NftJailSpec) -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        self.send(Cmd::StartJail(spec, tx));
        rx.recv()
            .unwrap_or_else(|_| Err("effects thread gone".to_string()))
    }

    /// Removes a jail's sets and rules (after what is queued).
    pub fn stop_jail(&self, jail: String) {
        self.send(Cmd::StopJail(jail));
    }

    /// Empties a jail's sets (after what is queued).
    pub fn flush_jail(&self, jail: String) {
        self.send(Cmd::FlushJail(jail));
    }

    /// The kernel's elements of started jails, after what is queued (waits: off the main
    /// loop only).
    pub fn inventory(&self, freshness: Freshness) -> Result<Vec<KernelBan>, String> {
        let (tx, rx) = mpsc::channel();
        self.send(Cmd::Inventory(freshness, tx));
        rx.recv()
            .unwrap_or_else(|_| Err("effects thread gone".to_string()))
    }

    /// Removes rules and sets of jails not started (after what is queued).
    pub fn prune_stale(&self) {
        self.send(Cmd::PruneStale);
    }

    /// Starts a purge of the store (in steps, between other work).
    pub fn purge(&self, now: f64, age: f64) {
        self.send(Cmd::Purge { now, age });
    }

    /// Runs `query` on the store after what is queued; it sends its own answer.
    pub fn query(&self, query: Query) {
        self.send(Cmd::Query(query));
    }

    /// Waits until everything sent before is applied (tests, shutdown).
    pub fn barrier(&self) {
        let (tx, rx) = mpsc::channel();
        self.send(Cmd::Barrier(tx));
        let _ = rx.recv();
    }
}

impl EffectsThread {
    /// Applies what is queued, closes the store and ends the thread.
    pub fn close(mut self, effects: &Effects) {
        let (tx, rx) = mpsc::channel();
        effects.send(Cmd::Close(tx));
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!("database", "closing: {e}"),
            Err(_) => error!("server", "effects thread gone before closing the store"),
        }
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct Worker {
    firewall: Box<dyn Firewall>,
    /// Taken when closed.
    store: Option<Store>,
    use_firewall: FirewallUse,
    metrics: Option<Arc<Metrics>>,
    /// The purge in progress.
    purge: Option<(f64, f64, PurgeCursor, Instant)>,
}

impl Worker {
    fn run(&mut self, rx: Receiver<Cmd>) {
        let mut next: Option<Cmd> = None;
        loop {
            let cmd = match next.take() {
                Some(c) => c,
                None if self.purge.is_some() => match rx.try_recv() {
                    Ok(c) => c,
                    Err(TryRecvError::Empty) => {
                        self.purge_step();
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => return,
                },
                None => match rx.recv() {
                    Ok(c) => c,
                    Err(_) => return,
                },
            };
            match cmd {
                Cmd::Batch(mut batch) => {
                    // Merge what queued up meanwhile into one transaction each.
                    for _ in 0..MERGE_MAX {
                        match rx.try_recv() {
                            Ok(Cmd::Batch(more)) => batch.merge(more),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.apply(batch);
                }
                Cmd::StartJail(spec, reply) => {
                    let r = if self.use_firewall == FirewallUse::Enabled {
                        self.firewall.start_jail(&spec)
                    } else {
                        Ok(())
                    };
                    let _ = reply.send(r);
                }
                Cmd::StopJail(jail) => {
                    if self.use_firewall == FirewallUse::Enabled {
                        if let Err(e) = self.firewall.stop_jail(&jail) {
                            error!("actions", "[{jail}] nftables: removing the sets: {e}");
                        }
                    }
                }
                Cmd::FlushJail(jail) => {
                    if self.use_firewall == FirewallUse::Enabled {
                        if let Err(e) = self.firewall.flush_jail(&jail) {
                            error!("actions", "[{jail}] nftables: emptying the sets: {e}");
                        }
                    }
                }
                Cmd::Inventory(freshness, reply) => {
                    let r = match (self.use_firewall, freshness) {
                        (FirewallUse::Disabled, _) => Ok(Vec::new()),
                        (FirewallUse::Enabled, Freshness::Read) => self.firewall.inventory(),
                        (FirewallUse::Enabled, Freshness::AsStarted) => {
                            Ok(self.firewall.inventory_at_start())
                        }
                    };
                    let _ = reply.send(r);
                }
                Cmd::PruneStale => self.prune_stale(),
                Cmd::Purge { now, age } => {
                    if self.purge.is_none() {
                        self.purge = Some((now, age, PurgeCursor::default(), Instant::now()));
                    }
                }
                Cmd::Query(q) => {
                    if let Some(store) = &self.store {
                        q(store);
                    }
                }
                Cmd::Barrier(reply) => {
                    let _ = reply.send(());
                }
                Cmd::Close(reply) => {
                    let closed = match self.store.take() {
                        Some(store) => store.close().map_err(|e| e.to_string()),
                        None => Ok(()),
                    };
                    let _ = reply.send(closed);
                    return;
                }
            }
        }
    }

    fn apply(&mut self, batch: Batch) {
        let Batch {
            nft,
            ban_read_at,
            store,
            replies,
        } = batch;
        if !nft.is_empty() && self.use_firewall == FirewallUse::Enabled {
            match self.firewall.apply(&nft) {
                Ok(()) => {
                    if let Some(m) = &self.metrics {
                        for (jail, t) in &ban_read_at {
                            m.jail(jail).observe_ban_latency(t.elapsed().as_secs_f64());
                        }
                    }
                }
                Err(e) => {
                    error!("actions", "nftables: {} change(s) failed: {e}", nft.len());
                    if let Some(m) = &self.metrics {
                        for jail in batch_jails(&nft) {
                            m.jail(&jail).action_error("nftables");
                        }
                    }
                }
            }
        }
        if let (false, Some(db)) = (store.is_empty(), self.store.as_mut()) {
            if let Err(e) = db.apply(&store) {
                error!("database", "{} change(s) not stored: {e}", store.len());
            }
        }
        for (reply, answer) in replies {
            // A client that went away does not need its answer.
            let _ = reply.try_send(answer);
        }
    }

    fn prune_stale(&mut self) {
        if self.use_firewall == FirewallUse::Disabled {
            return;
        }
        match self.firewall.prune_stale() {
            Ok(removed) => {
                for what in removed {
                    info!(
                        "actions",
                        "nftables: removed {what} (no configured jail uses it)"
                    );
                }
            }
            Err(e) => debug!("actions", "nftables: looking for stale sets: {e}"),
        }
    }

    fn purge_step(&mut self) {
        let (Some((now, age, mut cursor, started)), Some(store)) =
            (self.purge.take(), self.store.as_mut())
        else {
            return;
        };
        match store.purge_step(now, age, &mut cursor, PURGE_STEP_ROWS) {
            Ok(p) => {
                if p.history + p.expired_bans > 0 {
                    debug!(
                        "database",
                        "purge step: {} history row(s), {} expired ban(s)",
                        p.history,
                        p.expired_bans
                    );
                }
                if cursor.done {
                    info!(
                        "database",
                        "purge done in {:.3} s",
                        started.elapsed().as_secs_f64()
                    );
                } else {
                    self.purge = Some((now, age, cursor, started));
                }
            }
            Err(e) => error!("database", "purge: {e}"),
        }
    }
}

/// The jails a batch touches (for error counts).
fn batch_jails(batch: &[NftChange]) -> Vec<String> {
    let mut v: Vec<String> = batch
        .iter()
        .map(|c| match c {
            NftChange::Ban { jail, .. }
            | NftChange::Unban { jail, .. }
            | NftChange::Restore { jail, .. } => jail.clone(),
        })
        .collect();
    v.sort();
    v.dedup();
    v
}
