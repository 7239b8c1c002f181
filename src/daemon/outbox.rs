//! What the main loop has decided but not yet handed over: this turn's firewall changes,
//! command-action tickets, store changes and the control replies waiting on them, plus the
//! two things the loop must know of what is stored without asking the store — the ban
//! history (for `bantime.increment`) and the file positions. Receives bans, unbans,
//! positions and replies as the loop decides them; emits one [`Batch`] per turn to the
//! effects thread.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use banhammer_core::jail::{Ban, FailureKey, IpNet, Unban};
use banhammer_store::{BanData, BanRecord, Change, Checkpoint, Family};

use super::effects::{Batch, Effects};
use super::history::HistoryCache;
use super::jails::{ticket, ActionRuntime, JailRuntime};
use crate::action::nftables::NftChange;
use crate::control::protocol::Envelope;
use crate::warning;

/// How often changed file positions are written (also written with any other store write).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The loop's pending output and its picture of the store.
pub struct Outbox {
    effects: Effects,
    batch: Batch,
    /// Matched lines kept per stored ban.
    db_max_matches: usize,
    /// Ban history as stored.
    pub history: HistoryCache,
    /// Newest known position of every file, by (jail, path).
    positions: HashMap<(String, String), Checkpoint>,
    /// Positions changed since last written.
    dirty: HashSet<(String, String)>,
    last_positions: Instant,
}

impl Outbox {
    /// An empty outbox sending to `effects`, with what the store held at start.
    pub fn new(
        effects: Effects,
        db_max_matches: usize,
        history: HistoryCache,
        positions: Vec<Checkpoint>,
    ) -> Outbox {
        Outbox {
            effects,
            batch: Batch::default(),
            db_max_matches,
            history,
            positions: positions
                .into_iter()
                .map(|c| ((c.source.clone(), c.path.clone()), c))
                .collect(),
            dirty: HashSet::new(),
            last_positions: Instant::now(),
        }
    }

    /// The effects thread's handle.
    pub fn effects(&self) -> &Effects {
        &self.effects
    }

    /// A ban decided for `rt`'s jail (`prolong`: an existing ban got longer; a restored
    /// ban is stored already): to the firewall (`native`: unless its sets hold it
    /// already), the command actions and the store.
    #[allow(clippy::too_many_arguments)]
    pub fn ban(
        &mut self,
        rt: &mut JailRuntime,
        ban: &Ban,
        prolong: bool,
        fields: &BTreeMap<String, String>,
        read_at: Option<Instant>,
        now: f64,
        native: bool,
    ) {
        let jail = rt.spec.name.clone();
        let stats = rt.state.stats();
        for action in &mut rt.actions {
            match action {
                ActionRuntime::Native { .. } if !native => {}
                ActionRuntime::Native { nft_jail, .. } => {
                    let Some(addr) = key_net(&ban.key) else {
                        warning!(
                            "actions",
                            "[{jail}] {} is not an address: nftables cannot ban it",
                            ban.key
                        );
                        continue;
                    };
                    let timeout = ban
                        .end()
                        .map(|end| Duration::from_secs_f64((end - now).max(1.0)));
                    // A restored ban may be in the kernel still: written only if not.
                    self.batch.nft.push(if ban.restored {
                        NftChange::Restore {
                            jail: nft_jail.clone(),
                            addr,
                            timeout,
                        }
                    } else {
                        NftChange::Ban {
                            jail: nft_jail.clone(),
                            addr,
                            timeout,
                        }
                    });
                    if let Some(t) = read_at {
                        self.batch.ban_read_at.push((Arc::from(jail.as_str()), t));
                    }
                }
                ActionRuntime::Command { worker, .. } => {
                    worker.ban(ticket(ban, fields, &stats), prolong);
                }
                ActionRuntime::Dummy { .. } => {}
            }
        }
        if !ban.restored {
            self.store_ban(&jail, ban, fields);
        }
    }

    /// Stores `ban` of `jail` as active (and in the history).
    pub fn store_ban(&mut self, jail: &str, ban: &Ban, fields: &BTreeMap<String, String>) {
        let record = self.record(jail, ban, fields);
        self.history.record(
            jail,
            &record.key,
            record.ban_count,
            record.time_of_ban,
            record.bantime,
        );
        self.batch.store.push(Change::Ban(record));
    }

    /// An unban of `rt`'s jail, as `how` says.
    pub fn unban(&mut self, rt: &mut JailRuntime, u: &Unban, how: UnbanHow) {
        let stats = rt.state.stats();
        for action in &mut rt.actions {
            match action {
                ActionRuntime::Native { nft_jail, .. } => {
                    if let (false, Some(addr)) = (how == UnbanHow::Bulk, key_net(&u.ban.key)) {
                        self.batch.nft.push(NftChange::Unban {
                            jail: nft_jail.clone(),
                            addr,
                        });
                    }
                }
                ActionRuntime::Command { worker, .. } => {
                    worker.unban(ticket(&u.ban, &BTreeMap::new(), &stats));
                }
                ActionRuntime::Dummy { .. } => {}
            }
        }
        match how {
            UnbanHow::Expired => self.forget(&rt.spec.name, &u.ban.key.to_string(), false),
            UnbanHow::Manual => self.forget(&rt.spec.name, &u.ban.key.to_string(), true),
            UnbanHow::Bulk => {}
        }
    }

    /// The store no longer lists `key` as banned in `jail`; `forgive`: nor its history.
    pub fn forget(&mut self, jail: &str, key: &str, forgive: bool) {
        if forgive {
            self.history.forgive(jail, key);
        }
        self.batch.store.push(Change::Unban {
            jail: jail.to_string(),
            key: key.to_string(),
            delete_history: forgive,
        });
    }

    /// Every ban of `jail` ends at once (`unban --all`): its kernel sets are emptied and
    /// the store forgets them and their history, each in one operation, in order with
    /// everything decided before and after.
    pub fn unban_all_of(&mut self, jail: &str, nft_jails: &[String]) {
        self.history.forgive_all(Some(jail));
        self.batch.store.push(Change::UnbanAll {
            jail: Some(jail.to_string()),
            delete_history: true,
        });
        if !nft_jails.is_empty() {
            // What is pending goes first, then the flush, then what follows.
            self.ship_batch();
            for j in nft_jails {
                self.effects.flush_jail(j.clone());
            }
        }
    }

    /// Sends `answer` once everything decided so far is applied.
    pub fn reply_after(&mut self, reply: SyncSender<Envelope>, answer: Envelope) {
        self.batch.replies.push((reply, answer));
    }

    /// A file position of `jail`.
    pub fn position(&mut self, jail: &str, cp: Checkpoint) {
        let key = (jail.to_string(), cp.path.clone());
        self.positions.insert(key.clone(), cp);
        self.dirty.insert(key);
    }

    /// The newest known positions of `jail`'s files, by path.
    pub fn positions_of(&self, jail: &str) -> HashMap<String, Checkpoint> {
        self.positions
            .iter()
            .filter(|((j, _), _)| j == jail)
            .map(|((_, p), cp)| (p.clone(), cp.clone()))
            .collect()
    }

    /// Raw firewall changes.
    pub fn push_nft(&mut self, changes: Vec<NftChange>) {
        self.batch.nft.extend(changes);
    }

    /// A raw store change.
    pub fn store(&mut self, change: Change) {
        self.batch.store.push(change);
    }

    /// End of a turn: changed positions join the batch when due (`force`: now), and the
    /// batch goes to the effects thread.
    pub fn ship(&mut self, force_positions: bool) {
        let due = force_positions || self.last_positions.elapsed() >= CHECKPOINT_EVERY;
        if (due || !self.batch.store.is_empty()) && !self.dirty.is_empty() {
            for key in self.dirty.drain() {
                if let Some(cp) = self.positions.get(&key) {
                    self.batch.store.push(Change::Checkpoint(cp.clone()));
                }
            }
            self.last_positions = Instant::now();
        }
        self.ship_batch();
    }

    fn ship_batch(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        self.effects.apply(batch);
    }

    fn record(&self, jail: &str, ban: &Ban, fields: &BTreeMap<String, String>) -> BanRecord {
        let key = ban.key.to_string();
        let skip = ban.matches.len().saturating_sub(self.db_max_matches);
        BanRecord {
            jail: jail.to_string(),
            family: Family::of_key(&key),
            key,
            time_of_ban: ban.time_of_ban,
            bantime: ban.duration.unwrap_or(banhammer_store::PERMANENT),
            ban_count: ban.ban_count,
            data: BanData {
                matches: ban.matches[skip..].to_vec(),
                failures: ban.failures,
                tags: fields
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect(),
            },
        }
    }
}

/// How a ban ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnbanHow {
    /// Its time is up: everywhere, and the store keeps its history.
    Expired,
    /// By hand: everywhere, and the offender is forgiven (its history goes).
    Manual,
    /// Part of an `unban --all` whose kernel sets and store rows were cleared whole
    /// ([`Outbox::unban_all_of`]): only the command actions remain to be told.
    Bulk,
}

/// The nftables element of a key, if it is an address or a network.
pub fn key_net(key: &FailureKey) -> Option<IpNet> {
    match key {
        FailureKey::Ip(ip) => Some(IpNet::host(*ip)),
        FailureKey::Net(n) => Some(*n),
        FailureKey::Id(_) => None,
    }
}
