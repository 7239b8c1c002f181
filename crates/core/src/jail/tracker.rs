//! Failure counting per key, exactly as fail2ban's `FailManager` (compat §4.2).
//!
//! Owns one entry per key (an IP, a subnet, a user name… anything `Clone + Eq + Hash`):
//! `retry`, `failures`, `first_time`, `last_time` and the newest `maxmatches` matched lines.
//! Receives failures (key, time, matched lines, count); emits the running retry count, or the
//! [`FailTicket`] that reached `maxretry` (the entry leaves the tracker then, as fail2ban's
//! `toBan` pops it). Memory is bounded: a cap on tracked keys evicts the entries with the
//! oldest `last_time` (1 % of the cap at a time), and [`FailTracker::cleanup`] drops entries
//! older than `findtime`.
//!
//! Not a sliding window: when a failure arrives later than `last_time` and the entry started
//! more than `findtime` ago, the count is rescaled to the rate seen so far,
//! `retry = round(retry / (t − first_time) · findtime)` (Python's round-half-even), and
//! `first_time = t − findtime` — fail2ban's `FailTicket.adjustTime`.
//!
//! # Memory per tracked key
//! The daemon must hold a million tracked addresses in well under 300 MB, so the layout is
//! built for bytes, not for the (rare) oldest-first walks:
//! - the entries sit densely in a `Vec` of 64-byte slots (`FailureKey` 24 B + counters and
//!   times 24 B + the lines' 16-byte block pointer); a hash index of 8-byte buckets maps keys
//!   to slots (about 2 buckets per key just past a power of two, as at 1 000 000). A
//!   `HashMap<K, Entry>` would carry that slack in 65-byte buckets instead;
//! - the kept lines are one heap block per entry, length-prefixed (see `Lines`), not a
//!   `Vec<String>` (vector block + one block and 24-byte header per line);
//! - no time index: cleanup is one pass over the slots (about 5 ms per million keys, and
//!   skipped outright while no entry can be old enough), cap eviction one selection + pass
//!   per 1 % of the cap.
//!
//! Measured (test `memory_rss_1m_keys`, release, glibc): 1 000 000 IPv4 keys with one
//! 101-byte line each cost **193 B of RSS per key** (64 slot + 17 index + 112 line block),
//! was 473 B with a `HashMap` + `BTreeMap` time index and `Vec<String>` lines. Without
//! lines, [`FailTracker::approx_bytes`] gives about 105 B per key at 100 000 keys. An
//! `Id` key adds its own text block. After a cleanup empties most of the tracker, the slot
//! vector and index shrink (see [`FailTracker::cleanup`]).

mod index;
mod lines;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};

use index::Index;
use lines::Lines;

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
    /// At most this many keys tracked (1 to 2³² − 1); a new key beyond it evicts the oldest
    /// `last_time` — the oldest 1 % of the cap in one go, see [`FailTracker::add`].
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

/// One tracked key's counters (40 B: no padding, no index bookkeeping).
#[derive(Debug, Clone)]
struct Entry {
    retry: u32,
    failures: u32,
    first_time: f64,
    last_time: f64,
    matches: Lines,
}

/// A key and its entry, as stored in the dense [`FailTracker`] slot vector.
#[derive(Debug, Clone)]
struct Slot<K> {
    key: K,
    entry: Entry,
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

/// At the cap, one eviction pass removes `max_tracked / EVICT_DIVISOR` entries (1 %, at
/// least one), so a flood of new keys pays the O(n) pass once per that many inserts.
const EVICT_DIVISOR: usize = 100;

/// Below this many slots of room, memory is not worth giving back after a cleanup.
const SHRINK_MIN_CAPACITY: usize = 1024;

/// Slot positions are `u32` in the index, and `u32::MAX` marks an empty bucket.
const MAX_SLOTS: usize = u32::MAX as usize;

/// fail2ban's `FailManager` over any key type.
#[derive(Debug, Clone)]
pub struct FailTracker<K> {
    config: TrackerConfig,
    /// Every entry, densely packed in no particular order: a removal moves the last slot
    /// into the hole. Unused capacity at the end is never touched, so it costs no RSS.
    slots: Vec<Slot<K>>,
    /// Key hash → position in `slots`.
    index: Index,
    /// Keyed (SipHash) hashing: keys are attacker-chosen addresses.
    hasher: RandomState,
    /// No entry has an older `last_time` (a lower bound, exact after each cleanup pass), so
    /// a cleanup with nothing to drop costs O(1). NaN when a NaN time was added.
    oldest: f64,
    total: u64,
    evicted: u64,
}

impl<K: Clone + Eq + Hash> FailTracker<K> {
    /// An empty tracker. A `max_tracked` of 0 is taken as 1.
    pub fn new(mut config: TrackerConfig) -> Self {
        config.max_tracked = config.max_tracked.clamp(1, MAX_SLOTS);
        FailTracker {
            config,
            slots: Vec::new(),
            index: Index::default(),
            hasher: RandomState::new(),
            oldest: f64::INFINITY,
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
        self.config.max_tracked = max_tracked.clamp(1, MAX_SLOTS);
        let excess = self.slots.len().saturating_sub(self.config.max_tracked);
        self.evict_oldest(excess);
    }

    /// Add a failure of `key` at `time`, counting `count` (≥ 1; fail2ban's `addAttempt`
    /// counts the number of matched lines given).
    ///
    /// A new key while `max_tracked` keys are tracked first evicts the entries with the
    /// oldest `last_time` — not one but 1 % of the cap (at least one) in a single pass, so
    /// a flood of new keys costs an O(n) pass per `max_tracked / 100` keys rather than per
    /// key. Among entries with the same `last_time`, which go first is unspecified.
    pub fn add(&mut self, key: K, time: f64, matches: Vec<String>, count: u32) -> Added<K> {
        self.total += 1;
        let count = count.max(1);
        let hash = self.hash(&key);
        let Some(pos) = self.find(hash, &key) else {
            return self.add_new(key, hash, time, matches, count);
        };
        let findtime = self.config.findtime;
        let e = &mut self.slots[pos].entry;
        adjust_time(e, time, findtime);
        e.retry = e.retry.saturating_add(count);
        e.failures = e.failures.saturating_add(1);
        e.matches.push(matches, self.config.maxmatches);
        let retry = e.retry;
        self.check_reached(pos, hash, retry)
    }

    fn add_new(
        &mut self,
        key: K,
        hash: u32,
        time: f64,
        matches: Vec<String>,
        count: u32,
    ) -> Added<K> {
        let mut lines = Lines::default();
        lines.push(matches, self.config.maxmatches);
        let entry = Entry {
            retry: count,
            failures: 1,
            first_time: time,
            last_time: time,
            matches: lines,
        };
        if count >= self.config.maxretry {
            // Banned at once (several lines in one go): the entry would leave the tracker
            // straight away, so it takes no place and evicts nobody.
            return Added::Reached(ticket(key, entry));
        }
        if self.slots.len() >= self.config.max_tracked {
            let excess = self.slots.len() + 1 - self.config.max_tracked;
            self.evict_oldest(excess.max(self.config.max_tracked / EVICT_DIVISOR));
        }
        // A NaN time makes `oldest` NaN: the next cleanup scans (and drops that entry).
        if time < self.oldest || time.is_nan() {
            self.oldest = time;
        }
        // `len < max_tracked <= u32::MAX`: the position fits.
        self.index.insert(hash, self.slots.len() as u32);
        self.slots.push(Slot { key, entry });
        Added::Tracking { retry: count }
    }

    /// Hand out the entry at `pos` if its count reached `maxretry`.
    fn check_reached(&mut self, pos: usize, hash: u32, retry: u32) -> Added<K> {
        if retry >= self.config.maxretry {
            let Slot { key, entry } = self.remove_at(pos, hash);
            Added::Reached(ticket(key, entry))
        } else {
            Added::Tracking { retry }
        }
    }

    /// Raise the retry count of a tracked `key` by `extra` without counting a failure — the
    /// `bantime.increment` pre-seed for known offenders (fail2ban's observer re-adds the
    /// ticket with `count = retry − 1`). The time rules apply as for a failure at `time`.
    /// Returns `None` if the key is not tracked (already banned or never seen).
    pub fn boost(&mut self, key: &K, time: f64, extra: u32) -> Option<Added<K>> {
        let hash = self.hash(key);
        let pos = self.find(hash, key)?;
        let e = &mut self.slots[pos].entry;
        adjust_time(e, time, self.config.findtime);
        e.retry = e.retry.saturating_add(extra);
        let retry = e.retry;
        Some(self.check_reached(pos, hash, retry))
    }

    /// Remove and return a tracked entry (fail2ban `delFailure` / `toBan(fid)`).
    pub fn take(&mut self, key: &K) -> Option<FailTicket<K>> {
        let hash = self.hash(key);
        let pos = self.find(hash, key)?;
        let Slot { key, entry } = self.remove_at(pos, hash);
        Some(ticket(key, entry))
    }

    /// A snapshot of a tracked entry.
    pub fn get(&self, key: &K) -> Option<FailTicket<K>> {
        let e = &self.slots[self.find(self.hash(key), key)?].entry;
        Some(FailTicket {
            key: key.clone(),
            retry: e.retry,
            failures: e.failures,
            first_time: e.first_time,
            last_time: e.last_time,
            matches: e.matches.to_vec(),
        })
    }

    /// The retry count of a tracked key.
    pub fn retry(&self, key: &K) -> Option<u32> {
        let pos = self.find(self.hash(key), key)?;
        Some(self.slots[pos].entry.retry)
    }

    /// Drop entries whose `last_time <= now − findtime` (fail2ban's `cleanup`); returns how
    /// many were dropped.
    ///
    /// Cost: O(1) when nothing is that old (the tracker knows a lower bound of the
    /// `last_time`s); otherwise one pass over all entries (about 5 ms per million keys on one
    /// core, plus ~0.25 µs per entry dropped), which at fail2ban's pace of one cleanup per
    /// 5 s is negligible. When the entries left fill at most a quarter of the room, memory is
    /// given back.
    pub fn cleanup(&mut self, now: f64) -> usize {
        let limit = now - self.config.findtime;
        if limit < self.oldest {
            return 0;
        }
        let before = self.slots.len();
        let mut oldest = f64::INFINITY;
        let mut pos = 0;
        while let Some(slot) = self.slots.get(pos) {
            let last_time = slot.entry.last_time;
            if last_time > limit {
                oldest = oldest.min(last_time);
                pos += 1;
            } else {
                // The last slot moves into `pos`: look at `pos` again.
                let hash = self.hash(&slot.key);
                self.remove_at(pos, hash);
            }
        }
        self.oldest = oldest;
        let dropped = before - self.slots.len();
        if dropped > 0 {
            self.shrink();
        }
        dropped
    }

    /// Evict the `count` entries with the oldest `last_time` (ties in no particular order):
    /// one selection over a copy of the times (8 B per entry, freed at once) and one pass.
    fn evict_oldest(&mut self, count: usize) {
        let count = count.min(self.slots.len());
        if count == 0 {
            return;
        }
        let mut times: Vec<f64> = self.slots.iter().map(|s| s.entry.last_time).collect();
        let (older, nth, _) = times.select_nth_unstable_by(count - 1, f64::total_cmp);
        let threshold = *nth;
        // Everything strictly older than the `count`-th time goes, and as many entries of
        // exactly that time as make up `count`.
        let mut ties = count
            - older
                .iter()
                .filter(|t| t.total_cmp(&threshold).is_lt())
                .count();
        drop(times);
        let mut left = count;
        let mut pos = 0;
        while left > 0 {
            let Some(slot) = self.slots.get(pos) else {
                break;
            };
            let evict = match slot.entry.last_time.total_cmp(&threshold) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Equal if ties > 0 => {
                    ties -= 1;
                    true
                }
                _ => false,
            };
            if evict {
                let hash = self.hash(&slot.key);
                self.remove_at(pos, hash);
                self.evicted += 1;
                left -= 1;
            } else {
                pos += 1;
            }
        }
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Sum of the retry counts (fail2ban's `getFailCount`, for tests and status).
    pub fn retry_sum(&self) -> u64 {
        self.slots.iter().map(|s| u64::from(s.entry.retry)).sum()
    }

    /// Counters.
    pub fn stats(&self) -> TrackerStats {
        TrackerStats {
            current: self.slots.len(),
            total: self.total,
            evicted: self.evicted,
        }
    }

    /// Set the total-failures counter (fail2ban `setFailTotal`, e.g. after a reload).
    pub fn set_total(&mut self, total: u64) {
        self.total = total;
    }

    /// Tracked keys, oldest `last_time` first (ties in no particular order). Sorts on each
    /// call, O(n log n): meant for tests and status dumps.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        let mut by_time: Vec<&Slot<K>> = self.slots.iter().collect();
        by_time.sort_by(|a, b| a.entry.last_time.total_cmp(&b.entry.last_time));
        by_time.into_iter().map(|s| &s.key)
    }

    /// Forget everything and give the memory back (counters stay).
    pub fn clear(&mut self) {
        self.slots = Vec::new();
        self.index = Index::default();
        self.oldest = f64::INFINITY;
    }

    /// Estimated heap bytes held, from `size_of`, capacities and a typical allocator's
    /// rounding of each entry's matched-lines block (see the module doc).
    pub fn approx_bytes(&self) -> usize {
        let slots = self.slots.capacity() * std::mem::size_of::<Slot<K>>();
        let lines: usize = self
            .slots
            .iter()
            .map(|s| s.entry.matches.heap_bytes())
            .sum();
        slots + self.index.heap_bytes() + lines
    }

    fn hash(&self, key: &K) -> u32 {
        // The index keeps 32 bits; SipHash's low bits are as good as any.
        self.hasher.hash_one(key) as u32
    }

    fn find(&self, hash: u32, key: &K) -> Option<usize> {
        self.index
            .find(hash, |pos| self.slots[pos as usize].key == *key)
            .map(|pos| pos as usize)
    }

    /// Remove the slot at `pos` (its key hashes to `hash`); the last slot takes its place.
    fn remove_at(&mut self, pos: usize, hash: u32) -> Slot<K> {
        self.index.remove(hash, pos as u32);
        let last = self.slots.len() - 1;
        if pos != last {
            let moved = self.hash(&self.slots[last].key);
            self.index.repoint(moved, last as u32, pos as u32);
        }
        self.slots.swap_remove(pos)
    }

    /// Give memory back once the entries fill at most a quarter of the room (after a flood
    /// is cleaned up), keeping room for twice the entries left. The lines' blocks are freed
    /// as entries go; whether the allocator returns those pages to the system is its call.
    fn shrink(&mut self) {
        let len = self.slots.len();
        if self.slots.capacity() > SHRINK_MIN_CAPACITY && len <= self.slots.capacity() / 4 {
            self.slots.shrink_to(len * 2);
            self.index.resize(Index::buckets_for(len * 2));
        }
    }
}

/// A ticket out of a removed entry.
fn ticket<K>(key: K, e: Entry) -> FailTicket<K> {
    FailTicket {
        key,
        retry: e.retry,
        failures: e.failures,
        first_time: e.first_time,
        last_time: e.last_time,
        matches: e.matches.to_vec(),
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
