//! The native nftables backend, used for jails whose action is `nftables`,
//! `nftables-multiport` or `nftables-allports`. Owns the table `inet banhammer` (or the
//! configured one): per jail, four sets (`addr-set-<name>`, `addr6-set-<name>` for single
//! addresses, `net-set-<name>`, `net6-set-<name>` for prefixes) with `flags timeout`, so
//! the kernel lifts a ban on time even when banhammer is down, and the rules that match
//! them in a base chain (`type filter hook input priority -1`, as
//! `config/action.d/nftables.conf` does). Receives jail specs and batches of
//! [`NftChange`]s; emits one nft transaction per batch.
//!
//! Transport: by default ONE long-lived `nft -i` process, one line (= one transaction)
//! per batch, with a sentinel command marking the end of each answer (see `runner`): a
//! new ban reaches the kernel in ≈0.35 ms (p99 ≈0.5 ms), against 4–7 ms for a `nft -f -`
//! process per batch. Batches above 8 KiB of script (≈300 bans) go to `nft -f -`, which
//! parses long input faster than `nft -i` reads a long line; both are one transaction.
//! [`NftMode::PerBatch`] forces processes, and is chosen automatically when `nft -i`
//! does not answer as expected. The table is read (at jail start and stop, for the
//! inventory and the pruning at start-up) straight from the kernel over netlink
//! (`netlink`; ≈0.2 s for a set of 100,000 elements, nearly all of it the kernel's
//! dump), or with a one-shot `nft -j list table` when nft runs behind a command prefix
//! (another namespace) or netlink fails (≈1 s per 100,000 elements, whatever is asked:
//! nft 1.0.6 caches every element of every set for any listing).
//!
//! A ban of an element we know may be present is written as add+delete+add (a replace,
//! since before Linux 6.x a plain `add` keeps the old timeout); a new ban is one `add`,
//! because a `delete` makes the kernel wait for an RCU grace period (≈10 ms here). An
//! unban is add+delete, so an absent element is not an error (nft 1.0.6 has no
//! `destroy`).
//!
//! Failure handling of a batch: nft commits a transaction all or nothing. If a batch
//! fails, the jails it touches are re-created (idempotently: someone may have flushed the
//! ruleset) and the batch is retried once; if it fails again, each change is applied as its
//! own transaction on the same session, so one bad change (say a prefix overlapping
//! another) cannot keep the others out, and the error names the changes that failed.

mod netlink;
mod runner;
mod script;
mod state;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use banhammer_core::jail::IpNet;

pub use netlink::{NetlinkError, WireError};
pub use runner::NftMode;
use runner::Runner;
use script::{Layout, SetKind, FAMILY};
pub use state::TableState;

/// What a jail's nftables action says (its `port`, `protocol`, `chain`, `blocktype`,
/// `name` arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftJailSpec {
    /// The jail; also what [`NftChange`]s name.
    pub jail: String,
    /// The `name` argument naming the sets (`addr-set-<name>`); the jail name if `None`.
    pub name: Option<String>,
    /// fail2ban's `port` (`http,https`, `1000:2000`); `None` = all ports (`nftables-allports`).
    pub ports: Option<String>,
    /// `tcp`, `udp`, a comma list, or `all` (allports only).
    pub protocol: String,
    /// The chain in our table (`input`); created as a base chain on the input hook.
    pub chain: String,
    /// `reject`, `drop`, `reject with icmpx port-unreachable`, `reject with tcp reset`.
    pub blocktype: String,
}

impl NftJailSpec {
    /// The defaults of our `action.d/nftables.conf`: tcp, chain `input`, `reject`.
    pub fn new(jail: &str, ports: Option<&str>) -> NftJailSpec {
        NftJailSpec {
            jail: jail.to_string(),
            name: None,
            ports: ports.map(String::from),
            protocol: "tcp".to_string(),
            chain: "input".to_string(),
            blocktype: "reject".to_string(),
        }
    }
}

/// One change of a batch. A single address is an [`IpNet`] of full length
/// (`IpNet::host(ip)`); shorter prefixes are subnet bans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NftChange {
    /// Make `addr` banned in `jail` for `timeout` from now (`None`: permanent). Banning an
    /// address already banned replaces its timeout. A zero timeout is an unban.
    Ban {
        jail: String,
        addr: IpNet,
        timeout: Option<Duration>,
    },
    /// Make `addr` not banned in `jail`; not an error if it was not banned.
    Unban { jail: String, addr: IpNet },
    /// A ban restored at start: as [`NftChange::Ban`], except that nothing is written when
    /// the jail's sets held the element, with that end (within a second or two), when the
    /// jail started — the common restart, where the kernel kept every ban. Re-writing 100k
    /// elements the kernel holds costs a second of the start.
    Restore {
        jail: String,
        addr: IpNet,
        timeout: Option<Duration>,
    },
}

impl NftChange {
    fn jail(&self) -> &str {
        match self {
            NftChange::Ban { jail, .. }
            | NftChange::Unban { jail, .. }
            | NftChange::Restore { jail, .. } => jail,
        }
    }
}

impl fmt::Display for NftChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NftChange::Ban { jail, addr, .. } => write!(f, "ban {addr} in {jail}"),
            NftChange::Unban { jail, addr } => write!(f, "unban {addr} in {jail}"),
            NftChange::Restore { jail, addr, .. } => write!(f, "restore {addr} in {jail}"),
        }
    }
}

/// Why an nftables operation did not (fully) happen.
#[derive(Debug)]
pub enum NftError {
    /// A value refused before anything ran.
    Invalid {
        what: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A change or operation names a jail that was not started here.
    UnknownJail(String),
    /// nft could not be started.
    Spawn {
        command: String,
        source: std::io::Error,
    },
    /// Talking to nft failed.
    Io {
        command: String,
        source: std::io::Error,
    },
    /// nft did not answer in time (it was killed).
    Timeout { command: String, after: Duration },
    /// The `nft -i` session ended unexpectedly.
    Exited { command: String },
    /// nft refused the transaction (nothing of it was applied).
    Nft { command: String, message: String },
    /// nft's output could not be understood.
    Output { command: String, message: String },
    /// After the batch failed as a whole, these changes (with nft's reason) failed on
    /// their own; the other `applied` changes are in place.
    Partial {
        failed: Vec<(String, String)>,
        applied: usize,
    },
    /// Reading the table over netlink failed (only from [`NftBackend::read_table`]; the
    /// backend's own reads fall back to nft).
    Netlink(NetlinkError),
}

impl fmt::Display for NftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NftError::Invalid {
                what,
                value,
                expected,
            } => write!(f, "invalid {what} {value:?} (expected {expected})"),
            NftError::UnknownJail(jail) => {
                write!(f, "jail {jail:?} has no nftables rules (not started)")
            }
            NftError::Spawn { command, source } => write!(f, "cannot run `{command}`: {source}"),
            NftError::Io { command, source } => write!(f, "`{command}`: {source}"),
            NftError::Timeout { command, after } => {
                write!(f, "`{command}` did not answer within {after:?}; killed")
            }
            NftError::Exited { command } => write!(f, "`{command}` exited unexpectedly"),
            NftError::Nft { command, message } => write!(f, "`{command}` failed: {message}"),
            NftError::Output { command, message } => {
                write!(f, "unexpected output from `{command}`: {message}")
            }
            NftError::Partial { failed, applied } => {
                write!(f, "{} change(s) failed ({applied} applied)", failed.len())?;
                for (change, why) in failed.iter().take(5) {
                    write!(f, "; {change}: {why}")?;
                }
                if failed.len() > 5 {
                    write!(f, "; …")?;
                }
                Ok(())
            }
            NftError::Netlink(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for NftError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NftError::Spawn { source, .. } | NftError::Io { source, .. } => Some(source),
            NftError::Netlink(e) => Some(e),
            _ => None,
        }
    }
}

/// The nftables backend: one per daemon (it owns the table).
pub struct NftBackend {
    runner: Runner,
    table: String,
    jails: BTreeMap<String, Layout>,
    /// What may be in the kernel's sets, per jail: element → until when it may be there
    /// (`None`: no timeout). A superset of what we put there, seeded from the kernel at
    /// jail start. It only chooses how a ban is written: a plain `add` for an element
    /// surely absent (the fast path; a `delete` in a transaction costs the kernel an RCU
    /// grace period, ≈10 ms here), a replace (add, delete, add) for one maybe present,
    /// because before Linux 6.x a plain `add` keeps the old timeout.
    present: HashMap<String, HashMap<IpNet, Option<Instant>>>,
    /// What each jail's sets held when it started, read from the kernel: element → when
    /// it ends (`None`: no timeout). Lets a restore skip what the kernel kept, and serves
    /// the start's reconciliation without reading every set again.
    seen: HashMap<String, HashMap<IpNet, Option<Instant>>>,
    /// Prune expired entries of `present` when it grows past this.
    prune_at: usize,
    /// How the table is read (see [`TableReader`]).
    reader: TableReader,
    /// A netlink read failed and was logged (once) before falling back to nft.
    netlink_failed: bool,
}

/// How the backend reads the kernel's state of its table (at jail start and stop, for the
/// inventory, the pruning of stale sets and `list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableReader {
    /// Straight from the kernel over `NETLINK_NETFILTER`, in the network namespace of the
    /// calling thread, and only the elements of the sets a read looks into (≈0.2 s for a
    /// set of 100,000 elements, the kernel's dump). When a read fails, the backend logs why (at
    /// debug, once) and reads that time with nft instead.
    Netlink,
    /// `nft -j list table` through the backend's nft command (≈3 s for 250,000 elements
    /// with nft 1.0.6, which caches every element of every set for any listing).
    Nft,
}

/// How long after its timeout an element may still be in the kernel (timers, rounding).
const EXPIRY_MARGIN: Duration = Duration::from_secs(2);

impl NftBackend {
    /// A backend running `nft_path` (usually `nft`), owning table `inet <table>`. It reads
    /// the table over netlink ([`TableReader::Netlink`]): nft runs in our own network
    /// namespace, where our socket looks.
    pub fn new(nft_path: &Path, table: &str) -> Result<NftBackend, NftError> {
        let path = nft_path.to_str().ok_or_else(|| NftError::Invalid {
            what: "nft path",
            value: nft_path.display().to_string(),
            expected: "a UTF-8 path",
        })?;
        let mut backend = NftBackend::with_command(vec![path.to_string()], table)?;
        backend.reader = TableReader::Netlink;
        Ok(backend)
    }

    /// A backend running nft as `command` (program and leading arguments), e.g.
    /// `["ip", "netns", "exec", "NS", "nft"]`; nft's own arguments are appended. It reads
    /// the table with `nft -j` through the same command ([`TableReader::Nft`]): a prefix
    /// may put nft in another network namespace than ours.
    pub fn with_command<S: Into<String>>(
        command: Vec<S>,
        table: &str,
    ) -> Result<NftBackend, NftError> {
        let argv: Vec<String> = command.into_iter().map(Into::into).collect();
        if argv.is_empty() {
            return Err(NftError::Invalid {
                what: "nft command",
                value: String::new(),
                expected: "a program and its arguments",
            });
        }
        script::check_identifier("table", table)?;
        Ok(NftBackend {
            runner: Runner::new(argv, NftMode::Interactive),
            table: table.to_string(),
            jails: BTreeMap::new(),
            present: HashMap::new(),
            seen: HashMap::new(),
            prune_at: 1024,
            reader: TableReader::Nft,
            netlink_failed: false,
        })
    }

    /// Choose how the table is read.
    pub fn set_reader(&mut self, reader: TableReader) {
        self.reader = reader;
    }

    /// How the table is read.
    pub fn reader(&self) -> TableReader {
        self.reader
    }

    /// Our table as the kernel has it, read with `reader` only (no fallback): what the
    /// backend decides by. For diagnostics and tests.
    pub fn read_table(&self, reader: TableReader) -> Result<TableState, NftError> {
        match reader {
            TableReader::Netlink => {
                netlink::read_table(&self.table, self.runner.timeout, &|_| true)
                    .map_err(NftError::Netlink)
            }
            TableReader::Nft => self.table_state_nft(),
        }
    }

    /// Choose how transactions reach nft (default: [`NftMode::Interactive`]).
    pub fn set_mode(&mut self, mode: NftMode) {
        self.runner.set_mode(mode);
    }

    /// The transport in use (`PerBatch` after an automatic fallback).
    pub fn mode(&self) -> NftMode {
        self.runner.mode()
    }

    /// Base time allowed for one nft transaction or query (default 10 s; large batches
    /// get more). A transaction that overruns is killed and reported.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.runner.timeout = timeout;
    }

    /// Create the table, chain, sets and rules of a jail. Idempotent: a second start (or a
    /// start with a changed spec, on reload) replaces the jail's rules in one transaction
    /// and keeps its sets and their elements.
    pub fn start_jail(&mut self, spec: &NftJailSpec) -> Result<(), NftError> {
        let layout = Layout::new(spec)?;
        if self
            .jails
            .iter()
            .any(|(jail, l)| *jail != layout.jail && l.stem == layout.stem)
        {
            return Err(NftError::Invalid {
                what: "name",
                value: layout.stem.clone(),
                expected: "a set name not already used by another jail",
            });
        }
        self.start_layout(&layout)?;
        self.jails.insert(layout.jail.clone(), layout);
        Ok(())
    }

    fn start_layout(&mut self, layout: &Layout) -> Result<(), NftError> {
        let own: Vec<String> = SetKind::ALL.iter().map(|&k| layout.set_name(k)).collect();
        let mut state = self.table_state(&|set| own.iter().any(|o| o == set))?;
        let old = state.rules_of(&layout.jail);
        self.runner.run(&layout.start_commands(&self.table, &old))?;
        // Whatever the sets already hold (bans from before a restart) may be there.
        let now = Instant::now();
        let present = self.present.entry(layout.jail.clone()).or_default();
        let seen = self.seen.entry(layout.jail.clone()).or_default();
        seen.clear();
        for kind in SetKind::ALL {
            for (net, left) in state
                .sets
                .remove(&layout.set_name(kind))
                .unwrap_or_default()
            {
                present.insert(net, left.map(|l| now + l + Duration::from_secs(1)));
                seen.insert(net, left.map(|l| now + l));
            }
        }
        Ok(())
    }

    /// Remove a jail's rules and sets (and the table when no set is left in it).
    pub fn stop_jail(&mut self, jail: &str) -> Result<(), NftError> {
        let layout = self
            .jails
            .get(jail)
            .cloned()
            .ok_or_else(|| NftError::UnknownJail(jail.to_string()))?;
        // Names and rules only: the elements of the sets are not needed to remove them.
        let state = self.table_state(&|_| false)?;
        let rules = state.rules_of(jail);
        let mut cmds: Vec<String> = layout
            .stop_commands(&self.table, &rules)
            .into_iter()
            .filter(|cmd| {
                // Sets already gone (ruleset flushed by someone) are not an error.
                !cmd.starts_with("delete set")
                    || state
                        .sets
                        .keys()
                        .any(|set| cmd.ends_with(&format!(" {set}")))
            })
            .collect();
        let ours: Vec<String> = SetKind::ALL.iter().map(|&k| layout.set_name(k)).collect();
        let others_left = state.sets.keys().any(|set| !ours.contains(set));
        if state.exists && !others_left {
            cmds = vec![format!("delete table {FAMILY} {}", self.table)];
        }
        self.runner.run(&cmds)?;
        self.jails.remove(jail);
        self.present.remove(jail);
        self.seen.remove(jail);
        Ok(())
    }

    /// Unban everything of a jail (its sets emptied), keeping its rules.
    pub fn flush_jail(&mut self, jail: &str) -> Result<(), NftError> {
        let layout = self
            .jails
            .get(jail)
            .ok_or_else(|| NftError::UnknownJail(jail.to_string()))?;
        let cmds = layout.flush_commands(&self.table);
        self.runner.run(&cmds)?;
        self.present.remove(jail);
        Ok(())
    }

    /// The jail's banned addresses and prefixes as the kernel has them, each with the time
    /// left (whole seconds, as nft reports it; `None`: permanent).
    pub fn list(&mut self, jail: &str) -> Result<Vec<(IpNet, Option<Duration>)>, NftError> {
        let layout = self
            .jails
            .get(jail)
            .cloned()
            .ok_or_else(|| NftError::UnknownJail(jail.to_string()))?;
        let own: Vec<String> = SetKind::ALL.iter().map(|&k| layout.set_name(k)).collect();
        let mut state = self.table_state(&|set| own.iter().any(|o| o == set))?;
        let mut out = Vec::new();
        for kind in SetKind::ALL {
            if let Some(elems) = state.sets.remove(&layout.set_name(kind)) {
                out.extend(elems);
            }
        }
        Ok(out)
    }

    /// Checks a jail's nftables spec as [`NftBackend::start_jail`] will, without running
    /// anything (`banhammer config check`, and plans before anything starts).
    pub fn validate(spec: &NftJailSpec) -> Result<(), NftError> {
        Layout::new(spec).map(|_| ())
    }

    /// Every element of the started jails' sets as the kernel has them: (jail, element,
    /// time left; `None`: no timeout). What the daemon reconciles its state with.
    pub fn inventory(&mut self) -> Result<Vec<(String, IpNet, Option<Duration>)>, NftError> {
        let ours = self.set_names();
        let mut state = self.table_state(&|set| ours.contains(set))?;
        let mut out = Vec::new();
        for (jail, layout) in &self.jails {
            for kind in SetKind::ALL {
                for (net, left) in state
                    .sets
                    .remove(&layout.set_name(kind))
                    .unwrap_or_default()
                {
                    out.push((jail.clone(), net, left));
                }
            }
        }
        Ok(out)
    }

    /// [`NftBackend::inventory`] as the kernel was seen when each jail started, without
    /// reading it again: right after start-up, when nothing but banhammer's own restore
    /// has written to the sets since. Elements ended since are left out.
    pub fn inventory_at_start(&self) -> Vec<(String, IpNet, Option<Duration>)> {
        let now = Instant::now();
        let mut out = Vec::new();
        for jail in self.jails.keys() {
            for (net, until) in self.seen.get(jail).into_iter().flatten() {
                match until {
                    None => out.push((jail.clone(), *net, None)),
                    Some(u) if *u > now => out.push((jail.clone(), *net, Some(*u - now))),
                    Some(_) => {}
                }
            }
        }
        out
    }

    /// Removes what our table holds for jails that are not started: their rules (found by
    /// their comment) and every set no started jail names, so no ban of a jail gone from
    /// the configuration outlives it. The table goes too when nothing of ours is left in
    /// it. Returns what was removed, one item per rule or set.
    pub fn prune_stale(&mut self) -> Result<Vec<String>, NftError> {
        let ours = self.set_names();
        // Elements only of the sets that go (counted in the report), not of the jails'.
        let state = self.table_state(&|set| !ours.contains(set))?;
        if !state.exists {
            return Ok(Vec::new());
        }
        let mut cmds = Vec::new();
        let mut removed = Vec::new();
        for (comment, chain, handle) in &state.rules {
            // Rules of ours carry our comment; anything else in the table was put there by
            // someone else and stays.
            let stale = script::rule_jail(comment).is_some_and(|j| !self.jails.contains_key(j));
            if stale {
                cmds.push(format!(
                    "delete rule {FAMILY} {} {chain} handle {handle}",
                    self.table
                ));
                removed.push(format!("rule {handle} ({comment:?}) in chain {chain}"));
            }
        }
        for set in state.sets.keys().filter(|s| !ours.contains(*s)) {
            cmds.push(format!("delete set {FAMILY} {} {set}", self.table));
            removed.push(format!(
                "set {set} ({} element(s))",
                state.sets.get(set).map_or(0, Vec::len)
            ));
        }
        if removed.is_empty() {
            return Ok(removed);
        }
        if self.jails.is_empty() {
            cmds = vec![format!("delete table {FAMILY} {}", self.table)];
        }
        self.runner.run(&cmds)?;
        Ok(removed)
    }

    /// Apply a batch as one transaction. Refused before anything runs if a change names a
    /// jail not started. Later changes of the same jail and address win over earlier ones.
    pub fn apply(&mut self, batch: &[NftChange]) -> Result<(), NftError> {
        if let Some(change) = batch.iter().find(|c| !self.jails.contains_key(c.jail())) {
            return Err(NftError::UnknownJail(change.jail().to_string()));
        }
        // Collapse: in one transaction only the last change per (jail, address) matters.
        let mut index: HashMap<(&str, IpNet), usize> = HashMap::with_capacity(batch.len());
        let mut last: Vec<(&str, IpNet, Option<Option<Duration>>)> =
            Vec::with_capacity(batch.len());
        let now = Instant::now();
        for change in batch {
            let (jail, addr, ban) = match change {
                NftChange::Restore {
                    jail,
                    addr,
                    timeout,
                } if self.kept(jail, addr, *timeout, now) => continue,
                NftChange::Ban {
                    jail,
                    addr,
                    timeout,
                }
                | NftChange::Restore {
                    jail,
                    addr,
                    timeout,
                } => match timeout {
                    Some(t) if script::nft_duration(*t).is_none() => (jail, addr, None),
                    t => (jail, addr, Some(*t)),
                },
                NftChange::Unban { jail, addr } => (jail, addr, None),
            };
            let key = (jail.as_str(), *addr);
            match index.get(&key) {
                Some(&i) => {
                    if let Some(slot) = last.get_mut(i) {
                        slot.2 = ban;
                    }
                }
                None => {
                    index.insert(key, last.len());
                    last.push((jail.as_str(), *addr, ban));
                }
            }
        }
        if last.is_empty() {
            return Ok(());
        }
        // Group by set: one add/delete/add triple per set.
        type Group = (Vec<IpNet>, Vec<(IpNet, Option<Duration>)>);
        let mut groups: BTreeMap<(&str, SetKind), Group> = BTreeMap::new();
        for &(jail, addr, ban) in &last {
            let group = groups.entry((jail, SetKind::of(&addr))).or_default();
            let present = self.present.entry(jail.to_string()).or_default();
            let maybe_present = present
                .get(&addr)
                .is_some_and(|until| until.is_none_or(|u| now < u + EXPIRY_MARGIN));
            if ban.is_none() || maybe_present {
                group.0.push(addr);
            }
            if let Some(timeout) = ban {
                group.1.push((addr, timeout));
                // Before running: if the outcome is unknown, it may be there.
                present.insert(addr, timeout.map(|t| now + t));
            }
        }
        let mut cmds = Vec::with_capacity(groups.len() * 3);
        for ((jail, kind), (touched, bans)) in &groups {
            let set = self.set_name(jail, *kind)?;
            cmds.extend(script::element_commands(&self.table, &set, touched, bans));
        }
        if self.runner.run(&cmds).is_ok() {
            self.forget_unbanned(&last);
            return Ok(());
        }
        // Repair (re-create the jails' table/chain/sets/rules, idempotent) and retry once.
        let jails: BTreeSet<String> = groups.keys().map(|(j, _)| j.to_string()).collect();
        for jail in &jails {
            if let Some(layout) = self.jails.get(jail).cloned() {
                let _ = self.start_layout(&layout);
            }
        }
        if self.runner.run(&cmds).is_ok() {
            self.forget_unbanned(&last);
            return Ok(());
        }
        // Each change on its own, so the good ones land.
        let mut singles = Vec::with_capacity(last.len());
        for &(jail, addr, ban) in &last {
            let set = self.set_name(jail, SetKind::of(&addr))?;
            let bans: Vec<(IpNet, Option<Duration>)> = ban.map(|t| (addr, t)).into_iter().collect();
            singles.push(script::element_commands(&self.table, &set, &[addr], &bans));
        }
        let results = self.runner.run_each(&singles);
        let mut failed = Vec::new();
        let mut unbanned = Vec::new();
        for (&(jail, addr, ban), result) in last.iter().zip(results) {
            match result {
                Err(e) => {
                    let what = if ban.is_some() { "ban" } else { "unban" };
                    failed.push((format!("{what} {addr} in {jail}"), e.to_string()));
                }
                Ok(()) => unbanned.push((jail, addr, ban)),
            }
        }
        self.forget_unbanned(&unbanned);
        if failed.is_empty() {
            return Ok(());
        }
        Err(NftError::Partial {
            applied: last.len() - failed.len(),
            failed,
        })
    }

    /// Whether the kernel held `addr` in `jail`'s sets, ending as a ban of `timeout` from
    /// `now` would (within two seconds, or both without a timeout), when the jail started.
    fn kept(&self, jail: &str, addr: &IpNet, timeout: Option<Duration>, now: Instant) -> bool {
        match (
            self.seen.get(jail).and_then(|s| s.get(addr)),
            timeout.map(|t| now + t),
        ) {
            (Some(None), None) => true,
            (Some(Some(seen)), Some(wanted)) => {
                let diff = if *seen > wanted {
                    *seen - wanted
                } else {
                    wanted - *seen
                };
                diff <= EXPIRY_MARGIN
            }
            _ => false,
        }
    }

    /// After a successful transaction: the unbanned elements are surely gone.
    fn forget_unbanned(&mut self, changes: &[(&str, IpNet, Option<Option<Duration>>)]) {
        for &(jail, addr, ban) in changes {
            if ban.is_none() {
                if let Some(present) = self.present.get_mut(jail) {
                    present.remove(&addr);
                }
            }
        }
        let len: usize = self.present.values().map(HashMap::len).sum();
        if len > self.prune_at {
            let now = Instant::now();
            for present in self.present.values_mut() {
                present.retain(|_, until| until.is_none_or(|u| now < u + EXPIRY_MARGIN));
            }
            let len: usize = self.present.values().map(HashMap::len).sum();
            self.prune_at = (2 * len).max(1024);
        }
    }

    /// The sets of the started jails.
    fn set_names(&self) -> BTreeSet<String> {
        self.jails
            .values()
            .flat_map(|l| SetKind::ALL.map(|k| l.set_name(k)))
            .collect()
    }

    fn set_name(&self, jail: &str, kind: SetKind) -> Result<String, NftError> {
        self.jails
            .get(jail)
            .map(|l| l.set_name(kind))
            .ok_or_else(|| NftError::UnknownJail(jail.to_string()))
    }

    /// Our table as the kernel has it: over netlink when the backend reads that way and
    /// the read succeeds, else with `nft -j`. The elements of a set are only needed (and
    /// over netlink only read) if `elements_of` the set's name is true; the kernel's dump
    /// of a set walks it from the start for every 32 KiB part, ≈0.2–1 s for 100,000
    /// elements, so each caller asks for the sets it looks into.
    fn table_state(&mut self, elements_of: &dyn Fn(&str) -> bool) -> Result<TableState, NftError> {
        if self.reader == TableReader::Netlink {
            match netlink::read_table(&self.table, self.runner.timeout, elements_of) {
                Ok(state) => return Ok(state),
                Err(e) => {
                    if !self.netlink_failed {
                        self.netlink_failed = true;
                        crate::debug!(
                            "actions",
                            "nftables: reading table {FAMILY} {} over netlink failed ({e}); \
                             reading it with nft -j instead (logged once)",
                            self.table
                        );
                    }
                }
            }
        }
        self.table_state_nft()
    }

    /// Our table as the kernel has it (one `nft -j list table` process).
    fn table_state_nft(&self) -> Result<TableState, NftError> {
        match self
            .runner
            .query_json(&["list", "table", FAMILY, &self.table])
        {
            Ok(json) => TableState::parse(&json),
            // The table does not exist (yet, or any more).
            Err(NftError::Nft { message, .. }) if message.contains("No such file or directory") => {
                Ok(TableState::default())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn unknown_jail_is_refused_before_running() {
        // The command does not exist: anything that tried to run it would fail differently.
        let mut nft = NftBackend::with_command(vec!["/nonexistent/nft"], "banhammer").unwrap();
        let err = nft
            .apply(&[NftChange::Unban {
                jail: "nope".into(),
                addr: "1.2.3.4".parse().unwrap(),
            }])
            .unwrap_err();
        assert!(
            matches!(err, NftError::UnknownJail(ref j) if j == "nope"),
            "{err}"
        );
        let mut spec = NftJailSpec::new("bad jail", Some("80"));
        assert!(matches!(
            nft.start_jail(&spec),
            Err(NftError::Invalid {
                what: "jail name",
                ..
            })
        ));
        spec.jail = "ok".into();
        spec.ports = Some("80;443".into());
        let err = nft.start_jail(&spec).unwrap_err();
        assert!(err.to_string().contains("invalid port \"80;443\""), "{err}");
        assert!(NftBackend::with_command(vec!["nft"], "bad table").is_err());
    }

    /// A restore of what the kernel kept writes nothing; one it did not keep (or with
    /// another end) is written. The command does not exist: a write would fail.
    #[test]
    fn a_restore_of_what_the_kernel_kept_writes_nothing() {
        let mut nft = NftBackend::with_command(vec!["/nonexistent/nft"], "banhammer").unwrap();
        let layout = Layout::new(&NftJailSpec::new("w", Some("80"))).unwrap();
        nft.jails.insert("w".into(), layout);
        let now = Instant::now();
        let kept: IpNet = "192.0.2.1".parse().unwrap();
        let perm: IpNet = "192.0.2.2".parse().unwrap();
        let seen = nft.seen.entry("w".into()).or_default();
        seen.insert(kept, Some(now + Duration::from_secs(600)));
        seen.insert(perm, None);
        let restore = |addr: IpNet, secs: Option<u64>| NftChange::Restore {
            jail: "w".into(),
            addr,
            timeout: secs.map(Duration::from_secs),
        };
        nft.apply(&[restore(kept, Some(600)), restore(perm, None)])
            .unwrap();
        for other in [
            restore(kept, Some(900)),
            restore(perm, Some(600)),
            restore("192.0.2.3".parse().unwrap(), Some(600)),
        ] {
            assert!(
                nft.apply(std::slice::from_ref(&other)).is_err(),
                "{other} not written"
            );
        }
        let at_start = nft.inventory_at_start();
        assert_eq!(at_start.len(), 2);
    }
}
