//! Failure counting per key, exactly as fail2ban's `FailManager` (compat §4.2).
//!
//! Owns one entry per key (an IP, a subnet, a user name… anything `Clone + Eq + Hash`):
//! `retry`, `failures`, `first_time`, `last_time` and the newest `maxmatches` matched lines.
//! Receives failures (key, time, matched lines, count); emits the running retry count, or the
//! [`FailTicket`] that reached `maxretry` (the entry leaves the tracker then, as fail2ban's
//! `toBan` pops it). Memory is bounded: a cap on tracked keys evicts the entry with the oldest
//! `last_time`, and [`FailTracker::cleanup`] drops entries older than `findtime`.
//!
//! Not a sliding window: when a failure arrives later than `last_time` and the entry started
//! more than `findtime` ago, the count is rescaled to the rate seen so far,
//! `retry = round(retry / (t − first_time) · findtime)` (Python's round-half-even), and
//! `first_time = t − findtime` — fail2ban's `FailTicket.adjustTime`.
//!
//! # Memory per tracked key
//! One entry costs `size_of::<(K, Entry)>()` = 80 B in the hash table (plus 1 control byte,
//! buckets ≈ capacity · 8/7, capacity up to 2× the length after growth), plus one slot
//! `size_of::<(TimeKey, K)>()` = 40 B in the `last_time` B-tree index (nodes ~2/3 full).
//! Measured by [`FailTracker::approx_bytes`] on 100 000 keys (test `memory_per_key_100k`):
//! **about 170 B per tracked key**, the same for `K = IpAddr` and [`super::FailureKey`]
//! (both pad to 24 B), plus, per kept matched line, its length + 24 B. So the default cap
//! of 1 000 000 keys bounds a jail's tracker at about 170 MB without lines.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// Python 3's `round()` on a float: halves go to the even neighbour (`round(2.5) == 2`).
pub fn py_round(x: f64) -> f64 {
    x.round_ties_even()
}

/// The tracker's settings (a jail's `maxretry`, `findtime`, `maxmatches`, plus our cap).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerConfig {
    /// Ban when `retry >= maxretry` (fail2ban server default 3).
    pub maxretry: u32,
    /// Window in seconds (`findtime`, default 600).
    pub findtime: f64,
    /// Matched lines kept per entry, newest last (`maxmatches`; 0 keeps none).
    pub maxmatches: usize,
    /// At most this many keys tracked; a new key beyond it evicts the oldest `last_time`.
    pub max_tracked: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            maxretry: 3,
            findtime: 600.0,
            maxmatches: 3,
            max_tracked: 1_000_000,
        }
    }
}

/// A failure entry that reached `maxretry` (fail2ban's `FailTicket` handed to the ban
/// queue), or a snapshot of a tracked one.
#[derive(Debug, Clone, PartialEq)]
pub struct FailTicket<K> {
    /// What failed (IP, subnet, user…).
    pub key: K,
    /// The (possibly rescaled or pre-seeded) count compared with `maxretry`.
    pub retry: u32,
    /// Failures really seen (`<failures>` of actions): never rescaled.
    pub failures: u32,
    /// Start of the counted interval.
    pub first_time: f64,
    /// Time of the newest failure (the ban's start time).
    pub last_time: f64,
    /// The newest matched lines, at most `maxmatches`, oldest first.
    pub matches: Vec<String>,
}

/// What [`FailTracker::add`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Added<K> {
    /// Still counting: the entry's retry count now.
    Tracking {
        /// Current retry count (< maxretry).
        retry: u32,
    },
    /// `retry >= maxretry`: the entry left the tracker and is returned.
    Reached(FailTicket<K>),
}

/// Total order over f64 times for the `last_time` index (`total_cmp`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct TimeKey(f64, u64);

impl Eq for TimeKey {}
impl PartialOrd for TimeKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TimeKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

#[derive(Debug, Clone)]
struct Entry {
    retry: u32,
    failures: u32,
    first_time: f64,
    last_time: f64,
    /// Sequence number of this entry's slot in the index (with `last_time`).
    seq: u64,
    matches: Vec<String>,
}

/// Counters of one tracker (fail2ban-client's "Currently failed" / "Total failed").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// Keys tracked now.
    pub current: usize,
    /// Failures added since start (every call of `add`).
    pub total: u64,
    /// Entries dropped by the cap (not by age).
    pub evicted: u64,
}

/// fail2ban's `FailManager` over any key type.
#[derive(Debug, Clone)]
pub struct FailTracker<K> {
    config: TrackerConfig,
    entries: HashMap<K, Entry>,
    /// `last_time` → key, oldest first: cleanup and eviction walk it from the front.
    by_time: BTreeMap<TimeKey, K>,
    next_seq: u64,
    total: u64,
    evicted: u64,
}

impl<K: Clone + Eq + Hash> FailTracker<K> {
    /// An empty tracker. A `max_tracked` of 0 is taken as 1.
    pub fn new(mut config: TrackerConfig) -> Self {
        config.max_tracked = config.max_tracked.max(1);
        FailTracker {
            config,
            entries: HashMap::new(),
            by_time: BTreeMap::new(),
            next_seq: 0,
            total: 0,
            evicted: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Change `maxretry` (fail2ban `set JAIL maxretry`); entries are kept.
    pub fn set_maxretry(&mut self, maxretry: u32) {
        self.config.maxretry = maxretry;
    }

    /// Change `findtime`; entries are kept.
    pub fn set_findtime(&mut self, findtime: f64) {
        self.config.findtime = findtime;
    }

    /// Change `maxmatches`; kept lines are trimmed at the next failure of each key.
    pub fn set_maxmatches(&mut self, maxmatches: usize) {
        self.config.maxmatches = maxmatches;
    }

    /// Change the cap; excess entries (oldest first) are evicted now.
    pub fn set_max_tracked(&mut self, max_tracked: usize) {
        self.config.max_tracked = max_tracked.max(1);
        while self.entries.len() > self.config.max_tracked {
            self.evict_oldest();
        }
    }

    /// Add a failure of `key` at `time`, counting `count` (≥ 1; fail2ban's `addAttempt`
    /// counts the number of matched lines given).
    pub fn add(&mut self, key: K, time: f64, matches: Vec<String>, count: u32) -> Added<K> {
        self.total += 1;
        let count = count.max(1);
        let maxmatches = self.config.maxmatches;
        let findtime = self.config.findtime;
        let retry = match self.entries.get_mut(&key) {
            Some(e) => {
                let old_slot = TimeKey(e.last_time, e.seq);
                adjust_time(e, time, findtime);
                e.retry = e.retry.saturating_add(count);
                e.failures = e.failures.saturating_add(1);
                push_matches(&mut e.matches, matches, maxmatches);
                let new_slot = TimeKey(e.last_time, e.seq);
                let retry = e.retry;
                if new_slot != old_slot {
                    self.by_time.remove(&old_slot);
                    self.by_time.insert(new_slot, key.clone());
                }
                retry
            }
            None => {
                if self.entries.len() >= self.config.max_tracked {
                    self.evict_oldest();
                }
                let seq = self.next_seq;
                self.next_seq += 1;
                let mut kept = Vec::new();
                push_matches(&mut kept, matches, maxmatches);
                self.entries.insert(
                    key.clone(),
                    Entry {
                        retry: count,
                        failures: 1,
                        first_time: time,
                        last_time: time,
                        seq,
                        matches: kept,
                    },
                );
                self.by_time.insert(TimeKey(time, seq), key.clone());
                count
            }
        };
        if retry >= self.config.maxretry {
            match self.take(&key) {
                Some(t) => Added::Reached(t),
                None => Added::Tracking { retry },
            }
        } else {
            Added::Tracking { retry }
        }
    }

    /// Raise the retry count of a tracked `key` by `extra` without counting a failure — the
    /// `bantime.increment` pre-seed for known offenders (fail2ban's observer re-adds the
    /// ticket with `count = retry − 1`). The time rules apply as for a failure at `time`.
    /// Returns `None` if the key is not tracked (already banned or never seen).
    pub fn boost(&mut self, key: &K, time: f64, extra: u32) -> Option<Added<K>> {
        let findtime = self.config.findtime;
        let e = self.entries.get_mut(key)?;
        let old_slot = TimeKey(e.last_time, e.seq);
        adjust_time(e, time, findtime);
        e.retry = e.retry.saturating_add(extra);
        let retry = e.retry;
        let new_slot = TimeKey(e.last_time, e.seq);
        if new_slot != old_slot {
            self.by_time.remove(&old_slot);
            self.by_time.insert(new_slot, key.clone());
        }
        if retry >= self.config.maxretry {
            self.take(key).map(Added::Reached)
        } else {
            Some(Added::Tracking { retry })
        }
    }

    /// Remove and return a tracked entry (fail2ban `delFailure` / `toBan(fid)`).
    pub fn take(&mut self, key: &K) -> Option<FailTicket<K>> {
        let (key, e) = self.entries.remove_entry(key)?;
        self.by_time.remove(&TimeKey(e.last_time, e.seq));
        Some(FailTicket {
            key,
            retry: e.retry,
            failures: e.failures,
            first_time: e.first_time,
            last_time: e.last_time,
            matches: e.matches,
        })
    }

    /// A snapshot of a tracked entry.
    pub fn get(&self, key: &K) -> Option<FailTicket<K>> {
        self.entries.get(key).map(|e| FailTicket {
            key: key.clone(),
            retry: e.retry,
            failures: e.failures,
            first_time: e.first_time,
            last_time: e.last_time,
            matches: e.matches.clone(),
        })
    }

    /// The retry count of a tracked key.
    pub fn retry(&self, key: &K) -> Option<u32> {
        self.entries.get(key).map(|e| e.retry)
    }

    /// Drop entries whose `last_time <= now − findtime` (fail2ban's `cleanup`); returns how
    /// many were dropped. Cost: O(dropped · log n).
    pub fn cleanup(&mut self, now: f64) -> usize {
        let limit = now - self.config.findtime;
        let mut dropped = 0;
        while let Some(entry) = self.by_time.first_entry() {
            if entry.key().0 > limit {
                break;
            }
            let key = entry.remove();
            self.entries.remove(&key);
            dropped += 1;
        }
        dropped
    }

    fn evict_oldest(&mut self) {
        if let Some((_, key)) = self.by_time.pop_first() {
            self.entries.remove(&key);
            self.evicted += 1;
        }
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sum of the retry counts (fail2ban's `getFailCount`, for tests and status).
    pub fn retry_sum(&self) -> u64 {
        self.entries.values().map(|e| u64::from(e.retry)).sum()
    }

    /// Counters.
    pub fn stats(&self) -> TrackerStats {
        TrackerStats {
            current: self.entries.len(),
            total: self.total,
            evicted: self.evicted,
        }
    }

    /// Set the total-failures counter (fail2ban `setFailTotal`, e.g. after a reload).
    pub fn set_total(&mut self, total: u64) {
        self.total = total;
    }

    /// Tracked keys, oldest `last_time` first.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.by_time.values()
    }

    /// Forget everything (counters stay).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.by_time.clear();
    }

    /// Estimated heap bytes held, from `size_of` and capacities (see the module doc).
    pub fn approx_bytes(&self) -> usize {
        use std::mem::size_of;
        // hashbrown: one slot + one control byte per bucket; buckets ≈ capacity · 8/7.
        let table = self.entries.capacity() * 8 / 7 * (size_of::<(K, Entry)>() + 1);
        // B-tree leaves hold up to 11 slots; a random-order fill averages about 2/3, and
        // each node carries a parent pointer, index and length (~16 B).
        let slot = size_of::<(TimeKey, K)>();
        let index = self.by_time.len() * (slot * 3 / 2 + 2);
        let lines: usize = self
            .entries
            .values()
            .map(|e| {
                e.matches.capacity() * size_of::<String>()
                    + e.matches.iter().map(String::capacity).sum::<usize>()
            })
            .sum();
        table + index + lines
    }
}

/// fail2ban's `FailTicket.adjustTime`: only a failure newer than `last_time` moves the
/// window; if the entry began before `t − findtime`, rescale its count to the rate seen.
fn adjust_time(e: &mut Entry, t: f64, findtime: f64) {
    if t > e.last_time {
        if e.first_time < t - findtime {
            // Same operation order as Python: retry / float(t - first) * findtime.
            let scaled = py_round(f64::from(e.retry) / (t - e.first_time) * findtime);
            e.retry = if scaled.is_finite() && scaled > 0.0 {
                // `as` saturates; the value is a small non-negative integer here.
                scaled as u32
            } else {
                0
            };
            e.first_time = t - findtime;
        }
        e.last_time = t;
    }
}

/// Append `new` lines and keep only the newest `max` (0 keeps none).
fn push_matches(kept: &mut Vec<String>, new: Vec<String>, max: usize) {
    if max == 0 {
        kept.clear();
        return;
    }
    if new.len() >= max {
        let skip = new.len() - max;
        kept.clear();
        kept.extend(new.into_iter().skip(skip));
        return;
    }
    kept.extend(new);
    if kept.len() > max {
        let excess = kept.len() - max;
        kept.drain(..excess);
    }
}
