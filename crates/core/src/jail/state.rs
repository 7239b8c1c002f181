//! One jail's decisions: ignore checks, failure counting, bans and their expiry.
//!
//! Owns the jail's [`FailTracker`], [`IgnoreList`], [`BanTimePolicy`], the current bans and
//! an expiry queue (a sorted map of end times plus one wake-up time, [`JailState::next_expiry`]).
//! Receives failures ([`JailState::on_failure`]), manual ban/unban commands and the current
//! time from its single owner; emits [`Decision`]s and [`Unban`]s. This is fail2ban's
//! filter `processLineAndAdd` + `FailManager` + observer `failureFound`/`banFound` +
//! `BanManager` folded into one synchronous state machine.
//!
//! Time: the owner tells the state what "now" is ([`JailState::set_now`], or through
//! [`JailState::expire`]); the daemon passes the wall clock, `replay` the log time. Failure
//! times are adjusted per [`TimeMode`] as fail2ban's filter does (compat §2.4).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::addr::{IgnoreList, IgnoreSource};
use super::bantime::{BanHistory, BanTimePolicy};
use super::tracker::{Added, FailTicket, FailTracker, TrackerConfig};
use super::FailureKey;

/// How failure times are checked against "now" (fail2ban's `inOperation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeMode {
    /// Tailing: a time more than 60 s away from now (either side) is taken as now
    /// (fail2ban warns of latency/timezone problems); future times are clamped to now.
    #[default]
    Operation,
    /// Reading a log's existing content at start: failures older than `now − findtime` are
    /// dropped; future times are clamped to now.
    Initial,
    /// Log time is the clock (`banhammer replay`): times are used as they are.
    Replay,
}

/// A jail's settings for its state.
#[derive(Debug, Clone)]
pub struct JailConfig {
    /// maxretry, findtime, maxmatches and the cap on tracked keys.
    pub tracker: TrackerConfig,
    /// bantime and `bantime.*`.
    pub bantime: BanTimePolicy,
    /// `ignoreip`.
    pub ignore: IgnoreList,
    /// `ignoreself` (the own addresses are set on the ignore list by the caller).
    pub ignoreself: bool,
    /// How failure times are checked.
    pub time_mode: TimeMode,
    /// Seed of the generator drawing `bantime.rndtime`'s random part.
    pub rng_seed: u64,
}

impl Default for JailConfig {
    fn default() -> Self {
        JailConfig {
            tracker: TrackerConfig::default(),
            bantime: BanTimePolicy::fixed(600.0),
            ignore: IgnoreList::new(),
            ignoreself: true,
            time_mode: TimeMode::Operation,
            rng_seed: 0x5eed_ba11_f00d_cafe,
        }
    }
}

/// A ban decided (or restored).
#[derive(Debug, Clone, PartialEq)]
pub struct Ban {
    /// Who is banned.
    pub key: FailureKey,
    /// When the ban starts: the time of the last failure (fail2ban's ticket time).
    pub time_of_ban: f64,
    /// Seconds, `None` = permanent.
    pub duration: Option<f64>,
    /// This ban's number for the offender (1 = first), the store's `bancount`.
    pub ban_count: u32,
    /// Failures seen (`<failures>`).
    pub failures: u32,
    /// Newest matched lines (`<matches>`), at most `maxmatches`.
    pub matches: Vec<String>,
    /// Restored from the store at start (actions with `norestored` skip it; not re-stored).
    pub restored: bool,
}

impl Ban {
    /// When the ban ends (`None` = never).
    pub fn end(&self) -> Option<f64> {
        self.duration.map(|d| self.time_of_ban + d)
    }
}

/// Why an unban happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnbanReason {
    /// The ban time ran out.
    Expired,
    /// `unban` / `unban --all` (the store deletes the rows too, as fail2ban does).
    Manual,
}

/// A ban that ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Unban {
    /// The ban that ended, as it was.
    pub ban: Ban,
    /// Why.
    pub reason: UnbanReason,
}

/// Why a failure or ban led to nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Older than `now − findtime` while reading old content ([`TimeMode::Initial`]).
    TooOld,
    /// The ban would already be over (fail2ban: "Ignore …, expired bantime").
    ExpiredBan,
    /// Already banned and the new ban would not end later.
    AlreadyBanned,
    /// The key is not an address or network ([`FailureKey::Id`]): never counted nor banned,
    /// since a firewall cannot hold it and an action would get it as `<ip>` verbatim
    /// (`001.002.003.013` is 1.2.3.11 to iptables). Filters never make such keys
    /// ([`super::failure_target`]); this stops any other way in (a ban stored by an older
    /// version, a caller's mistake).
    NotAnAddress,
}

/// What a failure or ban command led to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Counted; no ban yet.
    None,
    /// The address is in `ignoreip` (or is the host's own, with `ignoreself`).
    Ignored(IgnoreSource),
    /// Nothing done, for this reason.
    Dropped(DropReason),
    /// Ban it.
    Ban(Ban),
    /// Already banned, and the ban now ends later: the actions update its end
    /// (fail2ban's `BanManager.addBanTicket` "prolong").
    Prolong(Ban),
}

/// fail2ban-client `status JAIL` numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JailStats {
    /// Keys with failures counted now ("Currently failed").
    pub currently_failed: usize,
    /// Failures since start ("Total failed").
    pub total_failed: u64,
    /// Bans in force ("Currently banned").
    pub currently_banned: usize,
    /// Bans since start ("Total banned").
    pub total_banned: u64,
    /// Tracked keys evicted by the memory cap (ours).
    pub evicted: u64,
}

/// Total order over f64 for the expiry queue.
#[derive(Debug, Clone, Copy, PartialEq)]
struct EndKey(f64, u64);
impl Eq for EndKey {}
impl PartialOrd for EndKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for EndKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

#[derive(Debug, Clone)]
struct BanSlot {
    ban: Ban,
    /// Position in the expiry queue (`None` for permanent bans).
    queued: Option<EndKey>,
}

/// How often (seconds of "now") the tracker drops old entries, as fail2ban's `performSvc`.
const CLEANUP_EVERY: f64 = 5.0;

/// The state of one jail.
#[derive(Debug, Clone)]
pub struct JailState {
    tracker: FailTracker<FailureKey>,
    ignore: IgnoreList,
    ignoreself: bool,
    policy: BanTimePolicy,
    time_mode: TimeMode,
    now: Option<f64>,
    next_cleanup: f64,
    bans: HashMap<FailureKey, BanSlot>,
    expiry: BTreeMap<EndKey, FailureKey>,
    next_seq: u64,
    total_banned: u64,
    rng: u64,
}

impl JailState {
    /// A jail with no failures and no bans.
    pub fn new(config: JailConfig) -> Self {
        JailState {
            tracker: FailTracker::new(config.tracker),
            ignore: config.ignore,
            ignoreself: config.ignoreself,
            policy: config.bantime,
            time_mode: config.time_mode,
            now: None,
            next_cleanup: f64::NEG_INFINITY,
            bans: HashMap::new(),
            expiry: BTreeMap::new(),
            next_seq: 0,
            total_banned: 0,
            rng: config.rng_seed,
        }
    }

    /// The state of the same jail under a changed configuration (a reload): its bans stay,
    /// with their ends and counts; its tracked failures start anew (a restarted jail
    /// counts afresh, as fail2ban's does). Bans of addresses the new configuration ignores
    /// end, and are returned. Costs one ignore-list lookup per ban, nothing more: the bans
    /// are moved, not copied.
    pub fn carry_over(self, config: JailConfig) -> (JailState, Vec<Unban>) {
        let mut next = JailState {
            bans: self.bans,
            expiry: self.expiry,
            next_seq: self.next_seq,
            total_banned: self.total_banned,
            now: self.now,
            ..JailState::new(config)
        };
        let ignored: Vec<FailureKey> = next
            .bans
            .keys()
            .filter(|k| next.is_ignored(k).is_some())
            .cloned()
            .collect();
        let ended = ignored.iter().filter_map(|k| next.unban(k)).collect();
        (next, ended)
    }

    /// Tell the state the current time (wall clock in the daemon, log time in replay).
    pub fn set_now(&mut self, now: f64) {
        self.now = Some(now);
    }

    /// The current time last given, if any.
    pub fn now(&self) -> Option<f64> {
        self.now
    }

    /// Switch time checks (e.g. from [`TimeMode::Initial`] to [`TimeMode::Operation`] once a
    /// log's old content is read).
    pub fn set_time_mode(&mut self, mode: TimeMode) {
        self.time_mode = mode;
    }

    /// The failure tracker (settings can be changed through it).
    pub fn tracker_mut(&mut self) -> &mut FailTracker<FailureKey> {
        &mut self.tracker
    }

    /// The failure tracker.
    pub fn tracker(&self) -> &FailTracker<FailureKey> {
        &self.tracker
    }

    /// The ignore list (to add resolved names, own addresses, `addignoreip`…).
    pub fn ignore_mut(&mut self) -> &mut IgnoreList {
        &mut self.ignore
    }

    /// The ignore list.
    pub fn ignore(&self) -> &IgnoreList {
        &self.ignore
    }

    /// The ban-time policy.
    pub fn policy(&self) -> &BanTimePolicy {
        &self.policy
    }

    /// Replace the ban-time policy (reload, `set JAIL bantime`); current bans keep theirs.
    pub fn set_policy(&mut self, policy: BanTimePolicy) {
        self.policy = policy;
    }

    /// Whether `key` is ignored, and why (only addresses and networks can be; a network is
    /// ignored when it meets an ignored address or network, since banning it would ban them).
    pub fn is_ignored(&self, key: &FailureKey) -> Option<IgnoreSource> {
        match key {
            FailureKey::Ip(ip) => self.ignore.matches(*ip, self.ignoreself),
            FailureKey::Net(net) => self.ignore.matches_net(*net, self.ignoreself),
            FailureKey::Id(_) => None,
        }
    }

    /// Apply the [`TimeMode`] rules to a failure time: `None` = drop it.
    fn adjust_time(&self, time: f64, findtime: f64) -> Option<f64> {
        let Some(now) = self.now else {
            return Some(time);
        };
        match self.time_mode {
            TimeMode::Replay => Some(time),
            TimeMode::Operation => {
                // fail2ban: delta = int(date - now); abs(delta) > 60 → now.
                let delta = (time - now).trunc();
                if delta.abs() > 60.0 || time > now || time.is_nan() {
                    Some(now)
                } else {
                    Some(time)
                }
            }
            TimeMode::Initial => {
                if time < now - findtime {
                    None
                } else {
                    Some(time.min(now))
                }
            }
        }
    }

    /// A failure of `key` at `time` with its matched lines. `history` is what the store
    /// knows of `key` (looked up per jail, or over all jails with
    /// [`BanTimePolicy::overalljails`]), needed only with `bantime.increment`.
    ///
    /// Order as in fail2ban: time checks, ignore list, count (+ the known-offender pre-seed
    /// of the observer), ban when `retry >= maxretry`.
    pub fn on_failure(
        &mut self,
        key: FailureKey,
        time: f64,
        matches: Vec<String>,
        history: Option<BanHistory>,
    ) -> Decision {
        if !key.is_address() {
            return Decision::Dropped(DropReason::NotAnAddress);
        }
        let findtime = self.tracker.config().findtime;
        let Some(time) = self.adjust_time(time, findtime) else {
            return Decision::Dropped(DropReason::TooOld);
        };
        if let Some(src) = self.is_ignored(&key) {
            return Decision::Ignored(src);
        }
        let maxretry = self.tracker.config().maxretry;
        let mut added = self.tracker.add(key.clone(), time, matches, 1);
        if let Added::Tracking { .. } = added {
            let seed = self.policy.preseed_retry(history.as_ref(), time, maxretry);
            if seed > 1 {
                // The observer re-adds the failure with count = seed − 1.
                if let Some(a) = self.tracker.boost(&key, time, seed - 1) {
                    added = a;
                }
            }
        }
        let decision = match added {
            Added::Tracking { .. } => Decision::None,
            Added::Reached(ticket) => self.ban_ticket(ticket, history.as_ref()),
        };
        self.service();
        decision
    }

    /// fail2ban's `performSvc`: drop stale tracker entries at most every 5 s of "now".
    fn service(&mut self) {
        if let Some(now) = self.now {
            if now >= self.next_cleanup {
                self.next_cleanup = now + CLEANUP_EVERY;
                self.tracker.cleanup(now);
            }
        }
    }

    /// Drop tracker entries older than `findtime` now (fail2ban's `cleanup`).
    pub fn cleanup(&mut self, now: f64) -> usize {
        self.now = Some(now);
        self.next_cleanup = now + CLEANUP_EVERY;
        self.tracker.cleanup(now)
    }

    /// Ban `key` by hand at `now` (fail2ban `set JAIL banip`): counts as a ban with the
    /// policy's length (incremented with `history`).
    pub fn ban(&mut self, key: FailureKey, now: f64, history: Option<BanHistory>) -> Decision {
        self.now = Some(now);
        if !key.is_address() {
            return Decision::Dropped(DropReason::NotAnAddress);
        }
        let ticket = FailTicket {
            key,
            retry: 0,
            failures: 0,
            first_time: now,
            last_time: now,
            matches: Vec::new(),
        };
        self.ban_ticket(ticket, history.as_ref())
    }

    /// Re-install a ban read from the store at start (`restoreCurrentBans`): `duration`
    /// `None` = permanent; kept with its original start so it ends when it would have.
    pub fn restore_ban(
        &mut self,
        key: FailureKey,
        time_of_ban: f64,
        duration: Option<f64>,
        ban_count: u32,
        now: f64,
    ) -> Decision {
        self.now = Some(now);
        if !key.is_address() {
            return Decision::Dropped(DropReason::NotAnAddress);
        }
        if let Some(src) = self.is_ignored(&key) {
            return Decision::Ignored(src);
        }
        let ban = Ban {
            key,
            time_of_ban,
            duration,
            ban_count,
            failures: 0,
            matches: Vec::new(),
            restored: true,
        };
        self.insert_ban(ban)
    }

    fn next_random(&mut self) -> f64 {
        // SplitMix64: tiny, deterministic from the seed, good enough for jitter.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn ban_ticket(
        &mut self,
        ticket: FailTicket<FailureKey>,
        history: Option<&BanHistory>,
    ) -> Decision {
        if self.bans.contains_key(&ticket.key) {
            // fail2ban's actions take the plain bantime for a ticket of a banned key
            // (the observer's increment only runs for new bans).
            let duration = if self.policy.is_permanent() {
                None
            } else {
                Some(self.policy.bantime())
            };
            return self.prolong(&ticket.key, ticket.last_time, duration);
        }
        let random = if self.policy.increment() && history.is_some() {
            self.next_random()
        } else {
            0.0
        };
        let length = self.policy.ban_length(history, random);
        let ban = Ban {
            key: ticket.key,
            time_of_ban: ticket.last_time,
            duration: length.duration,
            ban_count: length.ban_count,
            failures: ticket.failures,
            matches: ticket.matches,
            restored: false,
        };
        self.insert_ban(ban)
    }

    fn insert_ban(&mut self, ban: Ban) -> Decision {
        if let (Some(end), Some(now)) = (ban.end(), self.now) {
            if end < now {
                return Decision::Dropped(DropReason::ExpiredBan);
            }
        }
        if self.bans.contains_key(&ban.key) {
            return self.prolong(&ban.key.clone(), ban.time_of_ban, ban.duration);
        }
        let queued = ban.end().map(|end| {
            let k = EndKey(end, self.next_seq);
            self.next_seq += 1;
            self.expiry.insert(k, ban.key.clone());
            k
        });
        self.total_banned += 1;
        self.bans.insert(
            ban.key.clone(),
            BanSlot {
                ban: ban.clone(),
                queued,
            },
        );
        Decision::Ban(ban)
    }

    /// fail2ban's `addBanTicket` on a banned key: a later end wins; the start stays, so the
    /// duration grows by the start difference; permanent wins over everything.
    fn prolong(&mut self, key: &FailureKey, time: f64, duration: Option<f64>) -> Decision {
        let Some(slot) = self.bans.get_mut(key) else {
            return Decision::Dropped(DropReason::AlreadyBanned);
        };
        let old_end = slot.ban.end();
        let new_end = duration.map(|d| time + d);
        let later = match (old_end, new_end) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(o), Some(n)) => n > o,
        };
        if !later {
            return Decision::Dropped(DropReason::AlreadyBanned);
        }
        slot.ban.duration = duration.map(|d| {
            let diff = time - slot.ban.time_of_ban;
            if diff > 0.0 {
                d + diff
            } else {
                d
            }
        });
        if let Some(k) = slot.queued.take() {
            self.expiry.remove(&k);
        }
        if let Some(end) = slot.ban.end() {
            let k = EndKey(end, self.next_seq);
            self.next_seq += 1;
            self.expiry.insert(k, key.clone());
            slot.queued = Some(k);
        }
        Decision::Prolong(slot.ban.clone())
    }

    /// End every ban whose end time has come (`end <= now`), earliest first.
    ///
    /// fail2ban unbans once `now > end`, checked every second; we end bans at `end` itself
    /// so [`JailState::next_expiry`] is the exact wake-up and matches the kernel's set
    /// timeouts.
    pub fn expire(&mut self, now: f64) -> Vec<Unban> {
        self.expire_up_to(now, usize::MAX)
    }

    /// [`JailState::expire`], ending at most `max` bans: the rest end at the next call.
    /// (A storm's bans all end in the same second; their owner takes them a slice at a
    /// time so no single call takes long.)
    pub fn expire_up_to(&mut self, now: f64, max: usize) -> Vec<Unban> {
        self.now = Some(now);
        let mut out = Vec::new();
        while let Some(entry) = self.expiry.first_entry() {
            if out.len() >= max {
                break;
            }
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            if let Some(slot) = self.bans.remove(&key) {
                out.push(Unban {
                    ban: slot.ban,
                    reason: UnbanReason::Expired,
                });
            }
        }
        self.service();
        out
    }

    /// When the next ban ends (the owner's one wake-up), if any non-permanent ban exists.
    pub fn next_expiry(&self) -> Option<f64> {
        self.expiry.first_key_value().map(|(k, _)| k.0)
    }

    /// Lift a ban by hand.
    pub fn unban(&mut self, key: &FailureKey) -> Option<Unban> {
        let slot = self.bans.remove(key)?;
        if let Some(k) = slot.queued {
            self.expiry.remove(&k);
        }
        Some(Unban {
            ban: slot.ban,
            reason: UnbanReason::Manual,
        })
    }

    /// Lift every ban (`unban --all`), earliest end first, permanent ones last.
    pub fn unban_all(&mut self) -> Vec<Unban> {
        let mut out: Vec<Unban> = std::mem::take(&mut self.bans)
            .into_values()
            .map(|slot| Unban {
                ban: slot.ban,
                reason: UnbanReason::Manual,
            })
            .collect();
        self.expiry.clear();
        out.sort_by(|a, b| {
            let ea = a.ban.end().unwrap_or(f64::INFINITY);
            let eb = b.ban.end().unwrap_or(f64::INFINITY);
            ea.total_cmp(&eb)
        });
        out
    }

    /// Whether `key` is banned now.
    pub fn is_banned(&self, key: &FailureKey) -> bool {
        self.bans.contains_key(key)
    }

    /// The ban of `key`, if banned.
    pub fn get_ban(&self, key: &FailureKey) -> Option<&Ban> {
        self.bans.get(key).map(|s| &s.ban)
    }

    /// Current bans, in no particular order.
    pub fn banned(&self) -> impl Iterator<Item = &Ban> {
        self.bans.values().map(|s| &s.ban)
    }

    /// Whether the address is banned (address keys only).
    pub fn is_ip_banned(&self, ip: IpAddr) -> bool {
        self.is_banned(&FailureKey::from(ip))
    }

    /// The numbers of `fail2ban-client status JAIL`.
    pub fn stats(&self) -> JailStats {
        let t = self.tracker.stats();
        JailStats {
            currently_failed: t.current,
            total_failed: t.total,
            currently_banned: self.bans.len(),
            total_banned: self.total_banned,
            evicted: t.evicted,
        }
    }
}
