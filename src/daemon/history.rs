//! The ban history `bantime.increment` consults, kept in memory so the main loop never
//! queries the database: the latest ban of every (offender, jail), loaded from the store at
//! start and kept in step with what the loop writes there (new bans, forgiven offenders,
//! the purge). Receives bans, unbans and purge ticks; emits the [`BanHistory`] the jail
//! state wants, per jail or over all jails (`bantime.overalljails`), exactly as
//! `Store::history` computes it.
//!
//! Split into shards by key so that the hourly purge looks at one shard per turn: a few
//! thousand entries at most, not the whole map at once.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use banhammer_core::jail::BanHistory;

/// Shards of the map (one is purged per main-loop turn).
const SHARDS: usize = 64;

/// The latest ban of one offender in one jail.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Latest {
    ban_count: u32,
    time_of_ban: f64,
    bantime: f64,
}

type Shard = HashMap<Box<str>, Vec<(Arc<str>, Latest)>>;

/// The in-memory history.
pub struct HistoryCache {
    shards: Vec<Shard>,
    /// Jail names, shared by the entries.
    jails: HashMap<Box<str>, Arc<str>>,
    /// The purge in progress: (now, purge age, next shard).
    purge: Option<(f64, f64, usize)>,
}

impl Default for HistoryCache {
    fn default() -> Self {
        HistoryCache {
            shards: (0..SHARDS).map(|_| Shard::new()).collect(),
            jails: HashMap::new(),
            purge: None,
        }
    }
}

impl HistoryCache {
    /// A cache holding `rows` (jail, key, latest ban), as `Store::latest_history` gives them.
    pub fn from_rows(rows: Vec<(String, String, banhammer_store::BanHistory)>) -> HistoryCache {
        let mut cache = HistoryCache::default();
        for (jail, key, h) in rows {
            cache.record(&jail, &key, h.ban_count, h.time_of_ban, h.bantime);
        }
        cache
    }

    fn shard_of(key: &str) -> usize {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        (h.finish() % SHARDS as u64) as usize
    }

    fn jail(&mut self, name: &str) -> Arc<str> {
        if let Some(j) = self.jails.get(name) {
            return j.clone();
        }
        let j: Arc<str> = Arc::from(name);
        self.jails.insert(name.into(), j.clone());
        j
    }

    /// A ban was stored: it is now the latest of (`key`, `jail`) unless an older start
    /// (the store orders by time of ban, then insertion).
    pub fn record(
        &mut self,
        jail: &str,
        key: &str,
        ban_count: u32,
        time_of_ban: f64,
        bantime: f64,
    ) {
        let jail = self.jail(jail);
        let latest = Latest {
            ban_count,
            time_of_ban,
            bantime,
        };
        let entries = self.shards[Self::shard_of(key)]
            .entry(key.into())
            .or_default();
        match entries.iter_mut().find(|(j, _)| *j == jail) {
            Some((_, old)) if old.time_of_ban > time_of_ban => {}
            Some((_, old)) => *old = latest,
            None => entries.push((jail, latest)),
        }
    }

    /// The offender is forgiven in `jail` (a manual unban deletes its history).
    pub fn forgive(&mut self, jail: &str, key: &str) {
        let shard = &mut self.shards[Self::shard_of(key)];
        if let Some(entries) = shard.get_mut(key) {
            entries.retain(|(j, _)| &**j != jail);
            if entries.is_empty() {
                shard.remove(key);
            }
        }
    }

    /// Every offender of `jail` is forgiven (`unban --all`); `None`: of every jail.
    pub fn forgive_all(&mut self, jail: Option<&str>) {
        for shard in &mut self.shards {
            match jail {
                None => shard.clear(),
                Some(jail) => shard.retain(|_, entries| {
                    entries.retain(|(j, _)| &**j != jail);
                    !entries.is_empty()
                }),
            }
        }
    }

    /// What `bantime.increment` knows of `key`: its latest ban in `jail`, or with `None`
    /// the sum of each jail's latest count and duration and the latest start
    /// (fail2ban's `bantime.overalljails` query).
    pub fn lookup(&self, key: &str, jail: Option<&str>) -> Option<BanHistory> {
        let entries = self.shards[Self::shard_of(key)].get(key)?;
        match jail {
            Some(jail) => entries
                .iter()
                .find(|(j, _)| &**j == jail)
                .map(|(_, l)| BanHistory {
                    ban_count: l.ban_count,
                    time_of_ban: l.time_of_ban,
                    ban_time: l.bantime,
                }),
            None if entries.is_empty() => None,
            None => Some(BanHistory {
                ban_count: entries
                    .iter()
                    .fold(0u32, |n, (_, l)| n.saturating_add(l.ban_count)),
                time_of_ban: entries
                    .iter()
                    .map(|(_, l)| l.time_of_ban)
                    .fold(f64::NEG_INFINITY, f64::max),
                ban_time: entries.iter().map(|(_, l)| l.bantime).sum(),
            }),
        }
    }

    /// Starts a purge (the store's rule for the latest row of an offender: it goes when it
    /// started before `now − purge_age` and is not permanent and `time_of_ban + 3·bantime`
    /// is before that too). Done shard by shard by [`HistoryCache::purge_step`].
    pub fn start_purge(&mut self, now: f64, purge_age: f64) {
        self.purge = Some((now, purge_age, 0));
    }

    /// Purges one shard if a purge is in progress; returns the entries removed.
    pub fn purge_step(&mut self) -> usize {
        let Some((now, age, next)) = self.purge else {
            return 0;
        };
        let cutoff = now - age;
        let mut removed = 0;
        if let Some(shard) = self.shards.get_mut(next) {
            shard.retain(|_, entries| {
                let before = entries.len();
                entries.retain(|(_, l)| {
                    !(l.time_of_ban < cutoff
                        && l.bantime >= 0.0
                        && l.time_of_ban + l.bantime * 3.0 < cutoff)
                });
                removed += before - entries.len();
                !entries.is_empty()
            });
        }
        self.purge = (next + 1 < SHARDS).then_some((now, age, next + 1));
        removed
    }

    /// Offenders known.
    pub fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    /// No offender known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banhammer_store::{BanData, BanRecord, Change, Family, Store, PERMANENT};

    const T0: f64 = 1_800_000_000.0;

    /// The cache answers what the store answers, per jail and over all jails, through
    /// bans, re-bans, forgiveness and the purge.
    #[test]
    fn answers_like_the_store() {
        let mut store = Store::open_in_memory().unwrap();
        let mut cache = HistoryCache::default();
        let ban = |store: &mut Store,
                   cache: &mut HistoryCache,
                   jail: &str,
                   key: &str,
                   t: f64,
                   bantime: f64,
                   count: u32| {
            store
                .apply(&[Change::Ban(BanRecord {
                    jail: jail.into(),
                    key: key.into(),
                    family: Family::of_key(key),
                    time_of_ban: t,
                    bantime,
                    ban_count: count,
                    data: BanData::default(),
                })])
                .unwrap();
            cache.record(jail, key, count, t, bantime);
        };
        let day = 86_400.0;
        ban(&mut store, &mut cache, "sshd", "a", T0, 600.0, 1);
        ban(&mut store, &mut cache, "sshd", "a", T0 + 100.0, 1200.0, 2);
        ban(&mut store, &mut cache, "nginx", "a", T0 + 50.0, 600.0, 1);
        ban(
            &mut store,
            &mut cache,
            "sshd",
            "b",
            T0 - 9.0 * day,
            PERMANENT,
            1,
        );
        ban(
            &mut store,
            &mut cache,
            "sshd",
            "c",
            T0 - 9.0 * day,
            600.0,
            3,
        );
        // An older start stored later does not become the latest.
        ban(&mut store, &mut cache, "nginx", "a", T0 - 10.0, 60.0, 7);
        let check = |store: &Store, cache: &HistoryCache| {
            for key in ["a", "b", "c", "d"] {
                for jail in [Some("sshd"), Some("nginx"), None] {
                    let s = store.history(key, jail).unwrap().map(|h| BanHistory {
                        ban_count: h.ban_count,
                        time_of_ban: h.time_of_ban,
                        ban_time: h.bantime,
                    });
                    assert_eq!(cache.lookup(key, jail), s, "{key} {jail:?}");
                }
            }
        };
        check(&store, &cache);
        let reloaded = HistoryCache::from_rows(store.latest_history().unwrap());
        check(&store, &reloaded);

        store
            .apply(&[Change::Unban {
                jail: "nginx".into(),
                key: "a".into(),
                delete_history: true,
            }])
            .unwrap();
        cache.forgive("nginx", "a");
        check(&store, &cache);

        // A purge a day later: c's latest row (old, short) goes; b (permanent) stays.
        store.purge(T0 + day, day).unwrap();
        cache.start_purge(T0 + day, day);
        let mut removed = 0;
        for _ in 0..SHARDS {
            removed += cache.purge_step();
        }
        assert_eq!(cache.purge_step(), 0, "the purge ended");
        assert_eq!(removed, 1);
        check(&store, &cache);

        store
            .apply(&[Change::UnbanAll {
                jail: Some("sshd".into()),
                delete_history: true,
            }])
            .unwrap();
        cache.forgive_all(Some("sshd"));
        check(&store, &cache);
        assert!(cache.is_empty());
    }
}
