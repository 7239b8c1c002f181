//! The main loop: the one owner of every jail's state. Receives [`Event`]s from the jails'
//! readers and the loop's helpers, and [`Urgent`] control requests and signals; decides
//! (counts, bans, unbans, answers); hands what it decided to the effects thread, once per
//! turn, through the [`Outbox`].
//!
//! The rule that shapes it: nothing that can take unbounded time runs here. No process
//! (firewall, command actions, ignorecommand: other threads), no SQL (the effects thread;
//! the history `bantime.increment` needs is kept in memory), no DNS and no config compile
//! (plans are made beside the loop, a reload is prepared beside it and swapped in), no
//! waiting for a thread to end. And every turn is bounded: events are taken until a time
//! budget is spent, bans end a slice at a time, bulk work (`unban --all`) is done in
//! slices between turns, the purge one shard at a time. So a `ping` is answered within a
//! turn, whatever else is going on.

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use banhammer_core::jail::{Ban, BanHistory, Decision, FailureKey, JailState, TimeMode, Unban};

use super::effects::Effects;
use super::event::{Event, Found, SignalKind, Urgent};
use super::firewall::{Clock, KernelBan};
use super::jails::{ActionRuntime, AfterStop, JailRuntime, Jails};
use super::outbox::{Outbox, UnbanHow};
use super::plan::{ActionPlan, JailPlan, PlanOptions};
use super::reload::{self, PendingReload, PreparedReload, ReloadRequest, Snapshot};
use super::settings::Settings;
use crate::action::nftables::NftChange;
use crate::control::protocol::{Envelope, Reply};
use crate::metrics::Metrics;
use crate::source::throttle::Throttle;
use crate::{error, info, notice, warning};

/// Time a turn may spend taking events before it answers urgent messages and applies.
const TURN_BUDGET: Duration = Duration::from_millis(20);
/// Events taken between two looks at the clock.
const EVENTS_PER_CLOCK_LOOK: usize = 64;
/// Bans ended per jail per turn at most (the rest next turn).
const EXPIRE_PER_TURN: usize = 2_000;
/// Bans and unbans of bulk work (`unban --all`, restored and carried bans) told to the
/// command actions, the kernel and the log per turn.
const BULK_PER_TURN: usize = 2_000;
/// A turn this long is reported (it delays control answers by as much).
const SLOW_TURN: Duration = Duration::from_millis(100);
/// Longest sleep without an event.
const IDLE_WAKE: Duration = Duration::from_secs(1);
/// How often the store purges old history (and once at start).
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// How long shutdown waits for the jails' readers to hand over their last positions.
const READER_STOP_LIMIT: Duration = Duration::from_secs(5);

/// What every part of the loop may read.
pub struct Context {
    /// Server settings.
    pub settings: Settings,
    /// Options of jail plans.
    pub plan_opts: PlanOptions,
    /// Prometheus counters, when served.
    pub metrics: Option<Arc<Metrics>>,
    /// The clock decisions are made by.
    pub clock: Clock,
}

/// Side effects of a change made to a jail's state all at once, carried out a slice per
/// turn (the state itself is right from the first moment).
enum BulkJob {
    /// Unbans of an `unban --all` (its kernel sets and store rows were cleared whole): the
    /// command actions and the log are told.
    Unbans { jail: String, unbans: Vec<Unban> },
    /// Bans put back into a jail's state (restored from the store, carried over a
    /// restart): the log and the command actions are told, and the kernel's sets unless
    /// they hold them already (`in_kernel`).
    Restored {
        jail: String,
        bans: Vec<(Ban, BTreeMap<String, String>)>,
        in_kernel: bool,
        /// Carried over a restart: no "Restore Ban" line each (one summary was logged).
        quiet: bool,
    },
}

/// A ban to put back into a jail's state (from the store, or carried over a restart).
struct KeptBan {
    key: FailureKey,
    time_of_ban: f64,
    duration: Option<f64>,
    ban_count: u32,
    fields: BTreeMap<String, String>,
}

impl BulkJob {
    fn len(&self) -> usize {
        match self {
            BulkJob::Unbans { unbans, .. } => unbans.len(),
            BulkJob::Restored { bans, .. } => bans.len(),
        }
    }
}

/// The main loop's state.
pub struct Engine {
    pub(super) ctx: Context,
    pub(super) jails: Jails,
    pub(super) outbox: Outbox,
    events: Receiver<Event>,
    urgent: Receiver<Urgent>,
    /// A sender into our own event channel (for helpers: the reload preparer).
    pub(super) self_events: std::sync::mpsc::SyncSender<Event>,
    bulk: VecDeque<BulkJob>,
    pub(super) reload: PendingReload,
    /// Reloads prepared beside the loop, waiting to be swapped in.
    prepared_rx: Receiver<PreparedReload>,
    prepared_tx: Sender<PreparedReload>,
    /// Failures of networks wider than the floor (said a few times a minute at most).
    wide_net_warnings: Throttle,
    /// Turns slower than [`SLOW_TURN`] (said a few times a minute at most).
    slow_turns: Throttle,
    last_purge: Instant,
    stopping: bool,
}

impl Engine {
    /// A loop with no jail yet.
    pub fn new(
        ctx: Context,
        jails: Jails,
        outbox: Outbox,
        events: Receiver<Event>,
        self_events: std::sync::mpsc::SyncSender<Event>,
        urgent: Receiver<Urgent>,
    ) -> Engine {
        let (prepared_tx, prepared_rx) = std::sync::mpsc::channel();
        Engine {
            ctx,
            jails,
            outbox,
            events,
            urgent,
            self_events,
            bulk: VecDeque::new(),
            reload: PendingReload::default(),
            prepared_rx,
            prepared_tx,
            wide_net_warnings: Throttle::new(Duration::from_secs(60)),
            slow_turns: Throttle::new(Duration::from_secs(60)),
            // The first purge right after start (in bounded steps, beside the loop): a
            // daemon restarted more often than hourly must still purge.
            last_purge: Instant::now()
                .checked_sub(PURGE_EVERY)
                .unwrap_or_else(Instant::now),
            stopping: false,
        }
    }

    /// The effects thread's handle.
    pub fn effects(&self) -> &Effects {
        self.outbox.effects()
    }

    /// Runs until a stop is asked for (signal or `stop` request).
    pub fn run(&mut self) {
        while !self.stopping {
            self.turn(self.next_wake());
        }
    }

    /// One turn: wait at most `wait` for something to do, take events within the turn's
    /// budget, answer urgent messages, then end bans, do a slice of bulk work and apply.
    pub fn turn(&mut self, wait: Duration) {
        self.take_urgent();
        let wait = if self.bulk.is_empty() {
            wait
        } else {
            Duration::ZERO
        };
        let first = self.events.recv_timeout(wait);
        let mut lap = Laps::start();
        match first {
            Ok(ev) => {
                self.handle(ev);
                self.take_events();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => self.stopping = true,
        }
        lap.mark("events");
        self.take_urgent();
        self.take_prepared();
        lap.mark("requests");
        self.expire(self.ctx.clock.now());
        lap.mark("expiry");
        self.bulk_slice();
        lap.mark("bulk");
        self.housekeeping();
        lap.mark("housekeeping");
        self.outbox.ship(false);
        lap.mark("ship");
        if lap.total() >= SLOW_TURN {
            if let Some(held) = self.slow_turns.admit(Instant::now()) {
                warning!(
                    "server",
                    "a main-loop turn took {:.0} ms ({}){}",
                    lap.total().as_secs_f64() * 1e3,
                    lap.describe(),
                    crate::source::throttle::held_note(held)
                );
            }
        }
    }

    /// Takes waiting events until none is left or the turn's budget is spent.
    fn take_events(&mut self) {
        let started = Instant::now();
        let mut n = 0usize;
        while !self.stopping {
            match self.events.try_recv() {
                Ok(ev) => self.handle(ev),
                Err(_) => return,
            }
            n += 1;
            if n % EVENTS_PER_CLOCK_LOOK == 0 && started.elapsed() >= TURN_BUDGET {
                return;
            }
        }
    }

    /// Swaps in the reloads prepared since the last turn.
    fn take_prepared(&mut self) {
        while let Ok(p) = self.prepared_rx.try_recv() {
            if self.stopping {
                p.refuse("the daemon is shutting down");
            } else {
                self.apply_reload(p);
            }
        }
    }

    /// Answers every control request and signal waiting.
    fn take_urgent(&mut self) {
        loop {
            match self.urgent.try_recv() {
                Ok(Urgent::Control { request, reply }) => self.control(request, reply),
                Ok(Urgent::Signal(kind)) => self.signal(kind),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => return,
            }
        }
    }

    fn signal(&mut self, kind: SignalKind) {
        match kind {
            SignalKind::Stop => {
                info!("server", "Shutdown requested (signal)");
                self.stopping = true;
            }
            SignalKind::Reload => {
                info!("server", "Reload requested (SIGHUP)");
                self.request_reload(ReloadRequest {
                    only: None,
                    reply: None,
                });
            }
            SignalKind::ReopenLog => {
                if let Err(e) = crate::logging::reopen() {
                    error!("server", "re-opening the log file: {e}");
                }
            }
        }
    }

    /// Ask the loop to stop at the end of this turn.
    pub(super) fn stop(&mut self) {
        self.stopping = true;
    }

    /// How long to sleep: until the next ban ends, at most [`IDLE_WAKE`].
    fn next_wake(&self) -> Duration {
        let now = self.ctx.clock.now();
        let next = self
            .jails
            .iter()
            .filter_map(|(_, j)| j.state.next_expiry())
            .fold(f64::INFINITY, f64::min);
        if next.is_finite() {
            Duration::from_secs_f64((next - now).max(0.0)).min(IDLE_WAKE)
        } else {
            IDLE_WAKE
        }
    }

    /// One event.
    pub fn handle(&mut self, ev: Event) {
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
                // The positions of a stopping incarnation count too: its successor starts
                // from them.
                if self
                    .jails
                    .get(&jail)
                    .is_some_and(|rt| rt.generation == generation)
                {
                    let cp = checkpoint.to_store(&jail, self.ctx.clock.now());
                    self.outbox.position(&jail, cp);
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
            Event::ReaderDone { jail, generation } => self.reader_done(&jail, generation),
            Event::Wake => {}
        }
    }

    fn on_failure(&mut self, jail: &str, generation: u64, f: Found, read_at: Instant) {
        let now = self.ctx.clock.now();
        let Some(rt) = self.jails.current_mut(jail, generation) else {
            return;
        };
        rt.state.set_now(now);
        rt.state.set_time_mode(if f.catching_up {
            TimeMode::Initial
        } else {
            TimeMode::Operation
        });
        if let Some(m) = &self.ctx.metrics {
            m.jail(jail).failure();
        }
        if let FailureKey::Net(net) = &f.key {
            // A filter's `<SUBNET>` lets the log line pick the prefix: never wider than
            // the floor, or one line could ban half the internet.
            let floor = &self.ctx.settings.prefix_floor;
            let min = if net.addr().is_ipv4() {
                floor.v4
            } else {
                floor.v6
            };
            if net.prefix() < min {
                if let Some(held) = self.wide_net_warnings.admit(Instant::now()) {
                    warning!(
                        "filter",
                        "[{jail}] {net} is wider than /{min} (prefixfloor): not counted{}",
                        if held > 0 {
                            format!(" ({held} more such failures not logged)")
                        } else {
                            String::new()
                        }
                    );
                }
                return;
            }
        }
        if let Some(src) = rt.state.is_ignored(&f.key) {
            info!("filter", "[{jail}] Ignore {} by {src:?}", f.key);
            return;
        }
        if f.ignored_by_command {
            info!("filter", "[{jail}] Ignore {} by ignorecommand", f.key);
            return;
        }
        info!(
            "filter",
            "[{jail}] Found {} - {}",
            f.key,
            format_time(f.time)
        );
        let history = history_for(&self.outbox, rt, &f.key);
        let decision = rt
            .state
            .on_failure(f.key.clone(), f.time, f.matches.clone(), history);
        self.apply_decision(jail, decision, &f.fields, Some(read_at), now);
    }

    /// Carries out a decision: log, metrics, then the outbox (firewall, actions, store).
    /// True when it was a new ban.
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
        if prolong {
            notice!(
                "actions",
                "[{jail}] Prolong {} by {}",
                ban.key,
                describe_len(&ban)
            );
        } else if ban.restored {
            notice!("actions", "[{jail}] Restore Ban {}", ban.key);
        } else {
            notice!("actions", "[{jail}] Ban {}", ban.key);
        }
        if let Some(m) = &self.ctx.metrics {
            if !prolong {
                m.jail(jail).ban();
            }
        }
        if let Some(rt) = self.jails.get_mut(jail) {
            self.outbox
                .ban(rt, &ban, prolong, fields, read_at, now, true);
        }
        !prolong
    }

    /// Ends the bans whose time has come, a slice per jail per turn.
    pub(super) fn expire(&mut self, now: f64) {
        let names: Vec<String> = self.jails.iter().map(|(n, _)| n.clone()).collect();
        for name in names {
            let Some(rt) = self.jails.get_mut(&name) else {
                continue;
            };
            let unbans = rt.state.expire_up_to(now, EXPIRE_PER_TURN);
            for u in unbans {
                self.end_ban(&name, &u, UnbanHow::Expired);
            }
        }
    }

    /// Carries out an unban: log, metrics, outbox.
    pub(super) fn end_ban(&mut self, jail: &str, u: &Unban, how: UnbanHow) {
        notice!("actions", "[{jail}] Unban {}", u.ban.key);
        if let Some(m) = &self.ctx.metrics {
            m.jail(jail).unban();
        }
        if let Some(rt) = self.jails.get_mut(jail) {
            self.outbox.unban(rt, u, how);
        }
    }

    /// Queues the command-action and log side of an `unban --all` (its state, kernel and
    /// store sides are done at once).
    pub(super) fn queue_bulk_unban(&mut self, jail: &str, unbans: Vec<Unban>) {
        if !unbans.is_empty() {
            self.bulk.push_back(BulkJob::Unbans {
                jail: jail.to_string(),
                unbans,
            });
        }
    }

    /// Carries out a slice of the bulk work.
    fn bulk_slice(&mut self) {
        let mut budget = BULK_PER_TURN;
        while budget > 0 {
            let Some(job) = self.bulk.front_mut() else {
                return;
            };
            let take = job.len().min(budget);
            budget -= take;
            let now = self.ctx.clock.now();
            match job {
                BulkJob::Unbans { jail, unbans } => {
                    let jail = jail.clone();
                    let slice: Vec<Unban> = unbans.drain(..take).collect();
                    for u in &slice {
                        self.end_ban(&jail, u, UnbanHow::Bulk);
                    }
                }
                BulkJob::Restored {
                    jail,
                    bans,
                    in_kernel,
                    quiet,
                } => {
                    let (jail, in_kernel, quiet) = (jail.clone(), *in_kernel, *quiet);
                    let slice: Vec<_> = bans.drain(..take).collect();
                    for (ban, fields) in &slice {
                        if !quiet {
                            notice!("actions", "[{jail}] Restore Ban {}", ban.key);
                            if let Some(m) = &self.ctx.metrics {
                                m.jail(&jail).ban();
                            }
                        }
                        if let Some(rt) = self.jails.get_mut(&jail) {
                            self.outbox
                                .ban(rt, ban, false, fields, None, now, !in_kernel);
                        }
                    }
                }
            }
            if self.bulk.front().is_some_and(|j| j.len() == 0) {
                self.bulk.pop_front();
            }
        }
    }

    /// Finishes every bulk job now (start-up, before the loop turns).
    pub(super) fn finish_bulk(&mut self) {
        while !self.bulk.is_empty() {
            self.bulk_slice();
            self.outbox.ship(false);
        }
    }

    fn housekeeping(&mut self) {
        if self.last_purge.elapsed() >= PURGE_EVERY {
            self.last_purge = Instant::now();
            let now = self.ctx.clock.now();
            self.outbox
                .effects()
                .purge(now, self.ctx.settings.db_purge_age);
            self.outbox
                .history
                .start_purge(now, self.ctx.settings.db_purge_age);
        }
        self.outbox.history.purge_step();
        let mut backlog = 0;
        for (_, rt) in self.jails.iter_mut() {
            backlog += rt.pump_commands();
        }
        let _ = backlog;
        self.jails.reap();
        if let Some(m) = &self.ctx.metrics {
            for (name, rt) in self.jails.iter() {
                m.jail(name)
                    .set_active_bans(rt.state.stats().currently_banned as u64);
            }
        }
    }

    /// Starts a jail whose plan is ready (its firewall side set up), with `carry`: bans of
    /// an earlier incarnation to keep (`carry_in_kernel`: its kernel sets hold them still).
    pub(super) fn start_jail(&mut self, plan: JailPlan) -> anyhow::Result<()> {
        let name = plan.spec.name.clone();
        let positions = self.outbox.positions_of(&name);
        self.jails.start(plan, positions, None)?;
        Ok(())
    }

    /// Starts the next incarnation of a jail whose configuration changed, with the state
    /// (the bans) of the last one moved over — not copied: a jail with 200,000 bans
    /// restarts within a turn. The kernel is told only when the sets changed
    /// (`in_kernel` false), the command actions always (theirs were stopped).
    fn restart_jail(&mut self, plan: JailPlan, old: JailState, in_kernel: bool) {
        let name = plan.spec.name.clone();
        let has_commands = plan
            .actions
            .iter()
            .any(|a| matches!(a, ActionPlan::Command(_)));
        let (state, ended) = old.carry_over(plan.state.clone());
        let positions = self.outbox.positions_of(&name);
        let carried = state.stats().currently_banned;
        if let Err(e) = self.jails.start(plan, positions, Some(state)) {
            error!("jail", "[{name}] did not restart: {e:#}");
            return;
        }
        for u in &ended {
            notice!("actions", "[{name}] Unban {} (ignored now)", u.ban.key);
            self.end_ban(&name, u, UnbanHow::Expired);
        }
        if carried > 0 {
            info!("jail", "[{name}] {carried} ban(s) carried over");
        }
        if has_commands || !in_kernel {
            let bans: Vec<(Ban, BTreeMap<String, String>)> = self
                .jails
                .get(&name)
                .map(|rt| {
                    rt.state
                        .banned()
                        .map(|b| (b.clone(), BTreeMap::new()))
                        .collect()
                })
                .unwrap_or_default();
            self.bulk.push_back(BulkJob::Restored {
                jail: name,
                bans,
                in_kernel,
                quiet: true,
            });
        }
    }

    /// Puts bans back into a jail's state at once, and queues their side effects.
    fn put_back(&mut self, jail: &str, bans: Vec<KeptBan>, in_kernel: bool) -> usize {
        let now = self.ctx.clock.now();
        let Some(rt) = self.jails.get_mut(jail) else {
            return 0;
        };
        let mut restored = Vec::new();
        for b in bans {
            let d = rt
                .state
                .restore_ban(b.key, b.time_of_ban, b.duration, b.ban_count, now);
            if let Decision::Ban(ban) = d {
                restored.push((ban, b.fields));
            }
        }
        let n = restored.len();
        if n > 0 {
            self.bulk.push_back(BulkJob::Restored {
                jail: jail.to_string(),
                bans: restored,
                in_kernel,
                quiet: false,
            });
        }
        n
    }

    /// Re-installs stored bans (at start, or for a jail a reload starts): in the jails'
    /// state at once, in the kernel and the command actions a slice per turn.
    pub(super) fn restore(&mut self, records: Vec<banhammer_store::BanRecord>) {
        let started = Instant::now();
        let mut by_jail: BTreeMap<String, Vec<_>> = BTreeMap::new();
        let mut not_addresses = 0usize;
        for r in records {
            // Only addresses are banned; an older version may have stored other ids.
            let Some(key) = FailureKey::parse_address(&r.key) else {
                not_addresses += 1;
                if not_addresses <= 5 {
                    warning!(
                        "server",
                        "[{}] stored ban of {:?} not restored: not an IP address",
                        r.jail,
                        r.key
                    );
                }
                continue;
            };
            let duration = (!r.is_permanent()).then_some(r.bantime);
            let fields: BTreeMap<String, String> = r
                .data
                .tags
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect();
            by_jail.entry(r.jail).or_default().push(KeptBan {
                key,
                time_of_ban: r.time_of_ban,
                duration,
                ban_count: r.ban_count,
                fields,
            });
        }
        let mut restored = 0;
        for (jail, bans) in by_jail {
            restored += self.put_back(&jail, bans, false);
        }
        if not_addresses > 5 {
            warning!(
                "server",
                "{not_addresses} stored bans in all were not restored: not IP addresses"
            );
        }
        if restored > 0 {
            info!(
                "server",
                "restored {restored} ban(s) from the database in {:.3} s",
                started.elapsed().as_secs_f64()
            );
        }
    }

    /// Takes in what the kernel's sets hold that the jails do not know (a lost or
    /// in-memory database, a crash between the kernel and the disk): each element becomes
    /// a ban of its jail with the time it has left, in state and store, so `status` and
    /// `unban` reach it. Elements of addresses the jail ignores are removed instead.
    pub(super) fn adopt(&mut self, kernel: Vec<KernelBan>) {
        let now = self.ctx.clock.now();
        let mut adopted = 0usize;
        let mut removed = Vec::new();
        for (nft_jail, net, left) in kernel {
            let Some(name) = self.jail_of_set(&nft_jail) else {
                continue;
            };
            let Some(rt) = self.jails.get_mut(&name) else {
                continue;
            };
            let key = FailureKey::from(net);
            if rt.state.is_banned(&key) {
                continue;
            }
            let duration = left.map(|d| d.as_secs_f64());
            match rt.state.restore_ban(key.clone(), now, duration, 1, now) {
                Decision::Ban(ban) => {
                    adopted += 1;
                    notice!(
                        "actions",
                        "[{name}] Adopt Ban {} from the kernel ({})",
                        ban.key,
                        match duration {
                            None => "no timeout".to_string(),
                            Some(d) => format!("{}s left", d.round()),
                        }
                    );
                    if let Some(m) = &self.ctx.metrics {
                        m.jail(&name).ban();
                    }
                    self.outbox.store_ban(&name, &ban, &BTreeMap::new());
                }
                Decision::Ignored(src) => {
                    notice!(
                        "actions",
                        "[{name}] Unban {} found in the kernel: ignored by {src:?}",
                        key
                    );
                    removed.push((nft_jail, net));
                }
                _ => {}
            }
        }
        if !removed.is_empty() {
            let batch: Vec<NftChange> = removed
                .into_iter()
                .map(|(jail, addr)| NftChange::Unban { jail, addr })
                .collect();
            self.outbox.push_nft(batch);
        }
        if adopted > 0 {
            notice!(
                "server",
                "adopted {adopted} ban(s) found in the kernel's sets but not in the database"
            );
        }
    }

    /// The jail whose native action uses the nftables jail name `nft_jail`.
    fn jail_of_set(&self, nft_jail: &str) -> Option<String> {
        self.jails
            .iter()
            .find(|(_, rt)| {
                rt.actions.iter().any(
                    |a| matches!(a, ActionRuntime::Native { nft_jail: j, .. } if j == nft_jail),
                )
            })
            .map(|(n, _)| n.clone())
    }

    /// A reader has ended: a stopping jail finishes stopping and does what was asked.
    fn reader_done(&mut self, jail: &str, generation: u64) {
        let Some((mut rt, after)) = self.jails.finish_stop(jail, generation) else {
            return;
        };
        // Bulk work of this incarnation is moot now: what it restored is carried over, and
        // the stopped actions need no more tickets.
        self.bulk.retain(|job| match job {
            BulkJob::Unbans { jail: j, .. } | BulkJob::Restored { jail: j, .. } => j != jail,
        });
        let has_commands = rt
            .actions
            .iter()
            .any(|a| matches!(a, ActionRuntime::Command { .. }));
        // Only command actions need each ban (to unban it as they stop).
        let bans: Vec<Ban> = if has_commands || matches!(after, AfterStop::Remove) {
            rt.state.banned().cloned().collect()
        } else {
            Vec::new()
        };
        match after {
            AfterStop::Shutdown => self.jails.stop_actions(rt, &bans),
            AfterStop::Remove => {
                for a in &rt.actions {
                    if let ActionRuntime::Native { nft_jail, .. } = a {
                        self.outbox.effects().stop_jail(nft_jail.clone());
                    }
                }
                for b in &bans {
                    notice!("actions", "[{jail}] Unban {} (jail stopped)", b.key);
                    self.outbox.forget(jail, &b.key.to_string(), false);
                }
                // Drain what is pending first: the sets go after every change queued.
                self.outbox.ship(false);
                let _ = rt.pump_commands();
                self.jails.stop_actions(rt, &bans);
            }
            AfterStop::Restart(plan) => {
                // The kernel keeps the bans when the new incarnation uses the same sets.
                let sets = |names: Vec<(&str, &str)>| {
                    let mut v: Vec<(String, String)> = names
                        .into_iter()
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .collect();
                    v.sort();
                    v
                };
                let old_sets = sets(
                    rt.actions
                        .iter()
                        .filter_map(|a| match a {
                            ActionRuntime::Native {
                                nft_jail, set_stem, ..
                            } => Some((nft_jail.as_str(), set_stem.as_str())),
                            _ => None,
                        })
                        .collect(),
                );
                let in_kernel = old_sets == sets(plan.native_sets());
                let _ = rt.pump_commands();
                let state = std::mem::replace(
                    &mut rt.state,
                    JailState::new(banhammer_core::jail::JailConfig::default()),
                );
                self.jails.stop_actions(rt, &bans);
                self.restart_jail(*plan, state, in_kernel);
            }
        }
    }

    /// Stops everything in reverse order of the data flow: sources (their last positions
    /// kept), then actions, then the store.
    pub fn shutdown(&mut self) {
        let names: Vec<String> = self.jails.order().iter().rev().cloned().collect();
        let mut waiting = 0;
        for name in &names {
            if self.jails.begin_stop(name, AfterStop::Shutdown) {
                waiting += 1;
            } else if let Some(rt) = self.jails.get_mut(name) {
                // Already stopping for a reload: now it just stops.
                rt.stopping = Some(AfterStop::Shutdown);
            }
        }
        let _ = waiting;
        let deadline = Instant::now() + READER_STOP_LIMIT;
        while !self.jails.is_empty() && Instant::now() < deadline {
            match self.events.recv_timeout(Duration::from_millis(20)) {
                Ok(ev) => self.handle(ev),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.refuse_urgent();
        }
        let left: Vec<String> = self.jails.iter().map(|(n, _)| n.clone()).collect();
        for name in left {
            error!("jail", "[{name}] reader did not stop in time; left behind");
            let gen = self.jails.get(&name).map(|rt| rt.generation).unwrap_or(0);
            if let Some(rt) = self.jails.get_mut(&name) {
                rt.stopping = Some(AfterStop::Shutdown);
            }
            self.reader_done(&name, gen);
        }
        self.refuse_urgent();
        while let Ok(p) = self.prepared_rx.try_recv() {
            p.refuse("the daemon is shutting down");
        }
        self.outbox.ship(true);
        self.jails.join_stoppers();
    }

    fn refuse_urgent(&mut self) {
        while let Ok(msg) = self.urgent.try_recv() {
            if let Urgent::Control { reply, .. } = msg {
                let _ = reply.try_send(Envelope::err("the daemon is shutting down"));
            }
        }
    }

    /// Applies everything decided so far and waits until it is applied (tests).
    pub fn settle(&mut self) {
        self.outbox.ship(false);
        self.outbox.effects().barrier();
    }

    /// The ban history of `key` for a decision in `jail`.
    pub(super) fn history(&self, jail: &str, key: &FailureKey) -> Option<BanHistory> {
        let rt = self.jails.get(jail)?;
        history_for(&self.outbox, rt, key)
    }

    /// Starts a reload beside the loop (or queues it behind the one in progress).
    pub(super) fn request_reload(&mut self, request: ReloadRequest) {
        if let Some(request) = self.reload.admit(request) {
            self.prepare_reload(request);
        }
    }

    fn prepare_reload(&mut self, request: ReloadRequest) {
        let running = self
            .jails
            .active_names()
            .into_iter()
            .filter_map(|n| self.jails.get(&n).map(|rt| (n, rt.spec.clone())))
            .collect();
        let snapshot = Snapshot {
            config_dir: self.ctx.settings.config_dir.clone(),
            plan_opts: self.ctx.plan_opts.clone(),
            running,
            now: self.ctx.clock.now(),
            effects: self.effects().clone(),
        };
        let events = self.self_events.clone();
        let prepared = self.prepared_tx.clone();
        let deliver = Box::new(move |p: PreparedReload| {
            // The loop is gone when this fails: nothing left to reload.
            if prepared.send(p).is_ok() {
                // A full channel means the loop is busy: it looks at its reloads every turn.
                let _ = events.try_send(Event::Wake);
            }
        });
        if !reload::prepare(snapshot, request, deliver) {
            if let Some(next) = self.reload.finish() {
                self.prepare_reload(next);
            }
        }
    }

    /// Swaps a prepared reload in (nothing here waits), then starts the one queued behind
    /// it, if any.
    fn apply_reload(&mut self, prepared: PreparedReload) {
        self.swap_in(prepared);
        if let Some(next) = self.reload.finish() {
            self.prepare_reload(next);
        }
    }

    /// The swap itself: what a reload prepared becomes what runs.
    fn swap_in(&mut self, prepared: PreparedReload) {
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
        let gone: Vec<String> = self
            .jails
            .active_names()
            .into_iter()
            .filter(|n| !p.order.contains(n) && only.as_deref().is_none_or(|o| o == n))
            .collect();
        for name in gone {
            self.jails.begin_stop(&name, AfterStop::Remove);
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
            if self.jails.contains(&name) {
                // Native sets the new plan no longer uses go when the old incarnation ends.
                let kept: Vec<&str> = plan
                    .actions
                    .iter()
                    .filter_map(|a| match a {
                        ActionPlan::Native { spec, .. } => Some(spec.jail.as_str()),
                        _ => None,
                    })
                    .collect();
                let dropped: Vec<String> = self
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
                    self.outbox.effects().stop_jail(j);
                }
                self.jails
                    .begin_stop(&name, AfterStop::Restart(Box::new(plan)));
                messages.push(format!("Jail '{name}' reloaded"));
            } else {
                match self.start_jail(plan) {
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
        let stored: Vec<banhammer_store::BanRecord> = p
            .stored
            .into_iter()
            .filter(|b| new_jails.contains(&b.jail))
            .collect();
        self.restore(stored);
        self.jails.set_order(p.order);
        if let Some(kernel) = p.kernel {
            self.adopt(kernel);
        }
        self.outbox.ship(false);
        self.outbox.effects().prune_stale();
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
}

/// What the store knows of `key` for `bantime.increment` (per jail, or over all jails
/// with `bantime.overalljails`); `None` when the jail does not increment.
fn history_for(outbox: &Outbox, rt: &JailRuntime, key: &FailureKey) -> Option<BanHistory> {
    let policy = rt.state.policy();
    if !policy.increment() {
        return None;
    }
    let scope = (!policy.overalljails()).then_some(rt.spec.name.as_str());
    outbox.history.lookup(&key.to_string(), scope)
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

/// Where a turn's time went, for the slow-turn warning.
struct Laps {
    started: Instant,
    last: Instant,
    laps: Vec<(&'static str, Duration)>,
}

impl Laps {
    fn start() -> Laps {
        let now = Instant::now();
        Laps {
            started: now,
            last: now,
            laps: Vec::with_capacity(6),
        }
    }

    fn mark(&mut self, what: &'static str) {
        let now = Instant::now();
        self.laps.push((what, now - self.last));
        self.last = now;
    }

    fn total(&self) -> Duration {
        self.last - self.started
    }

    fn describe(&self) -> String {
        self.laps
            .iter()
            .map(|(w, d)| format!("{w} {:.1} ms", d.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
