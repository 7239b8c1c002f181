//! The connection and every query. Owns one SQLite connection (the store task's); receives
//! batches of [`Change`]s and queries, with the time passed in; emits records. Opening checks
//! whose file it is (never fail2ban's, never a foreign one, never a newer schema) before
//! anything is written, then switches to WAL and migrates.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{
    ffi, params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior,
};

use crate::error::StoreError;
use crate::record::{
    BanData, BanHistory, BanRecord, Change, Checkpoint, CheckpointKey, Family, PurgeCursor, Purged,
};
use crate::schema::{APPLICATION_ID, CURRENT_VERSION, FAIL2BAN_TABLES, MIGRATIONS};

/// How long a statement waits for a lock held by another connection (an operator's `sqlite3`
/// shell, a backup) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest WAL file kept after a checkpoint (bytes); a huge batch grows the WAL, this lets it
/// shrink back instead of keeping its peak size forever.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Page cache size in KiB (SQLite's default is 2 MiB). A big batch (a restart re-banning a
/// botnet) spills pages of a 2 MiB cache to the WAL and rewrites them; 16 MiB is reached only
/// when used.
const CACHE_KIB: i64 = 16 * 1024;

/// Prepared statements kept by the connection: every statement of this module fits.
const STATEMENT_CACHE: usize = 32;

/// Rows a step of [`Store::purge`] looks at, per table.
const PURGE_STEP_ROWS: usize = 1000;

/// Display name of an in-memory database in errors.
const MEMORY: &str = ":memory:";

/// banhammer's state database. One owner (the daemon's store task) on a dedicated thread:
/// the API is blocking and takes `&mut self` to write.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if absent) the database at `path`, migrating it to the current schema.
    ///
    /// The parent directory must exist (the caller creates it with the permissions it wants).
    /// A new file is created with mode 0600: it holds log lines. An existing file keeps its
    /// mode. Refuses fail2ban's database, any other program's SQLite file, a file that is not
    /// SQLite, and a schema newer than this build, before writing anything to it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        create_private(path)?;
        // No SQLITE_OPEN_CREATE: the file exists now; if it vanished, say so rather than
        // silently creating one with default permissions. No SQLITE_OPEN_URI: a path is a path.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|source| sqlite_err(path, "opening the database".to_string(), source))?;
        Store::init(conn, path.to_path_buf(), true)
    }

    /// Opens a private in-memory database (tests, `dbfile = :memory:`).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(MEMORY);
        let conn = Connection::open_in_memory().map_err(|source| {
            sqlite_err(&path, "opening an in-memory database".to_string(), source)
        })?;
        Store::init(conn, path, false)
    }

    fn init(conn: Connection, path: PathBuf, on_disk: bool) -> Result<Store, StoreError> {
        let store = Store { conn, path };
        store
            .conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| store.err("setting the busy timeout", e))?;
        store
            .conn
            .set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        store.check_ownership()?;
        if on_disk {
            store.set_durability()?;
        }
        let mut store = store;
        store.migrate()?;
        Ok(store)
    }

    /// Refuses files that are not ours, reading only.
    fn check_ownership(&self) -> Result<(), StoreError> {
        let op = "reading the schema";
        // The first read of the file is where SQLite notices it is not a database.
        let tables = {
            let mut stmt = self
                .conn
                .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
                .map_err(|e| self.read_err(op, e))?;
            let rows = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(|e| self.read_err(op, e))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.read_err(op, e))?
        };
        if tables
            .iter()
            .any(|t| FAIL2BAN_TABLES.iter().any(|f| t.eq_ignore_ascii_case(f)))
        {
            return Err(StoreError::Fail2banDatabase {
                path: self.path.clone(),
            });
        }
        let app_id = self.pragma_i64("application_id")?;
        let version = self.pragma_i64("user_version")?;
        if app_id != APPLICATION_ID {
            let detail = if app_id != 0 {
                Some(format!("application_id is {app_id:#x}"))
            } else if let Some(t) = tables.iter().find(|t| !t.starts_with("sqlite_")) {
                Some(format!("it has a table {t:?} but no banhammer mark"))
            } else if version != 0 {
                Some(format!("user_version is {version} but no banhammer mark"))
            } else {
                None // an empty database: ours to initialise
            };
            if let Some(detail) = detail {
                return Err(StoreError::ForeignDatabase {
                    path: self.path.clone(),
                    detail,
                });
            }
        }
        if version < 0 {
            return Err(StoreError::ForeignDatabase {
                path: self.path.clone(),
                detail: format!("user_version is {version}"),
            });
        }
        if version > CURRENT_VERSION {
            return Err(StoreError::NewerSchema {
                path: self.path.clone(),
                found: version,
                supported: CURRENT_VERSION,
            });
        }
        Ok(())
    }

    /// WAL (readers never block the writer, a batch is one fsync-free append) and
    /// `synchronous = NORMAL`: a power loss may drop the last batches but never corrupts the
    /// file; bans lost that way are still in the kernel's sets and the logs are re-read from
    /// the last checkpoint, which is the trade fail2ban-class daemons make.
    fn set_durability(&self) -> Result<(), StoreError> {
        let mode: String = self
            .conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| self.err("switching to WAL mode", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Sqlite {
                path: self.path.clone(),
                op: format!("switching to WAL mode (SQLite kept journal_mode={mode})"),
                source: rusqlite::Error::SqliteFailure(
                    ffi::Error::new(ffi::SQLITE_CANTOPEN),
                    Some("WAL mode unavailable".to_string()),
                ),
            });
        }
        self.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| self.err("setting synchronous=NORMAL", e))?;
        self.conn
            .pragma_update(None, "cache_size", -CACHE_KIB)
            .map_err(|e| self.err("setting cache_size", e))?;
        self.conn
            .pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
            .map_err(|e| self.err("setting journal_size_limit", e))?;
        Ok(())
    }

    /// Brings the schema to [`CURRENT_VERSION`] in one transaction.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let op = "migrating the schema";
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sqlite_err(path, op.to_string(), e))?;
        // Read again under the write lock: another process may have migrated meanwhile.
        let found: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| sqlite_err(path, op.to_string(), e))?;
        if found > CURRENT_VERSION {
            return Err(StoreError::NewerSchema {
                path: path.clone(),
                found,
                supported: CURRENT_VERSION,
            });
        }
        if found == CURRENT_VERSION {
            return Ok(()); // dropping `tx` ends the empty transaction
        }
        let by = concat!("banhammer-store ", env!("CARGO_PKG_VERSION"));
        for (from, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
            let to = from + 1;
            let step = format!("migrating the schema from version {from} to {to}");
            tx.execute_batch(sql)
                .map_err(|e| sqlite_err(path, step.clone(), e))?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![format!("schema_v{to}_by"), by],
            )
            .map_err(|e| sqlite_err(path, step, e))?;
        }
        if found == 0 {
            tx.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('created_by', ?1)",
                [by],
            )
            .map_err(|e| sqlite_err(path, op.to_string(), e))?;
        }
        tx.pragma_update(None, "user_version", CURRENT_VERSION)
            .map_err(|e| sqlite_err(path, op.to_string(), e))?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(|e| sqlite_err(path, op.to_string(), e))?;
        tx.commit()
            .map_err(|e| sqlite_err(path, op.to_string(), e))?;
        Ok(())
    }

    /// The database file (`:memory:` for an in-memory one).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the file (always [`CURRENT_VERSION`] once opened).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.pragma_i64("user_version")
    }

    /// Applies a batch of changes as one transaction: all are stored or, on error, none.
    pub fn apply(&mut self, batch: &[Change]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let path = &self.path;
        let op = || format!("applying a batch of {} changes", batch.len());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sqlite_err(path, op(), e))?;
        for (i, change) in batch.iter().enumerate() {
            apply_one(&tx, change).map_err(|e| match e {
                ApplyError::Sqlite(source) => sqlite_err(
                    path,
                    format!("{} (change {i}: {})", op(), describe(change)),
                    source,
                ),
                ApplyError::Invalid(detail) => StoreError::InvalidChange {
                    path: path.clone(),
                    op: format!("{} (change {i}: {})", op(), describe(change)),
                    detail,
                },
            })?;
        }
        tx.commit().map_err(|e| sqlite_err(path, op(), e))
    }

    /// Active bans of all jails at `now`: permanent ones and those ending after `now`, ordered
    /// by jail then key. Expired rows still in the table (not yet purged) are skipped.
    ///
    /// fail2ban additionally skips, without `bantime.increment`, bans older than the jail's
    /// current bantime; that needs the jail's config and is the caller's decision.
    pub fn active_bans(&self, now: f64) -> Result<Vec<BanRecord>, StoreError> {
        let op = "reading active bans";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT b.jail, b.key, b.family, h.time_of_ban, h.bantime, h.ban_count, h.data \
                 FROM bans b JOIN ban_history h ON h.id = b.history_id \
                 WHERE h.bantime < 0 OR h.time_of_ban + h.bantime > ?1 \
                 ORDER BY b.jail, b.key",
            )
            .map_err(|e| self.read_err(op, e))?;
        let mut rows = stmt.query([now]).map_err(|e| self.read_err(op, e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.read_err(op, e))? {
            out.push(self.ban_from_row(row, op)?);
        }
        Ok(out)
    }

    fn ban_from_row(&self, row: &rusqlite::Row<'_>, op: &str) -> Result<BanRecord, StoreError> {
        let jail: String = row.get(0).map_err(|e| self.read_err(op, e))?;
        let key: String = row.get(1).map_err(|e| self.read_err(op, e))?;
        let corrupt = |detail: String| StoreError::Corrupt {
            path: self.path.clone(),
            op: op.to_string(),
            detail: format!("ban ({jail:?}, {key:?}): {detail}"),
        };
        let family_raw: i64 = row.get(2).map_err(|e| self.read_err(op, e))?;
        let family =
            Family::from_db(family_raw).ok_or_else(|| corrupt(format!("family {family_raw}")))?;
        let count_raw: i64 = row.get(5).map_err(|e| self.read_err(op, e))?;
        let ban_count =
            u32::try_from(count_raw).map_err(|_| corrupt(format!("ban_count {count_raw}")))?;
        let data_raw = row
            .get_ref(6)
            .and_then(|v| v.as_str().map_err(Into::into))
            .map_err(|e| self.read_err(op, e))?;
        let data: BanData =
            serde_json::from_str(data_raw).map_err(|e| corrupt(format!("data: {e}")))?;
        Ok(BanRecord {
            family,
            time_of_ban: row.get(3).map_err(|e| self.read_err(op, e))?,
            bantime: row.get(4).map_err(|e| self.read_err(op, e))?,
            ban_count,
            data,
            jail,
            key,
        })
    }

    /// The offender's history for `bantime.increment` (compat §4.3): with `jail`, its latest
    /// ban in that jail; with `None` (`bantime.overalljails`), fail2ban's aggregate over the
    /// latest ban of each jail (see [`BanHistory`]). `None` if it was never banned (or its
    /// history was purged or forgiven).
    pub fn history(&self, key: &str, jail: Option<&str>) -> Result<Option<BanHistory>, StoreError> {
        let op = "reading ban history";
        let row = match jail {
            Some(jail) => self
                .conn
                .prepare_cached(
                    "SELECT ban_count, time_of_ban, bantime FROM ban_history \
                     WHERE key = ?1 AND jail = ?2 \
                     ORDER BY time_of_ban DESC, id DESC LIMIT 1",
                )
                .and_then(|mut s| {
                    s.query_row(params![key, jail], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?))
                    })
                    .optional()
                }),
            None => self
                .conn
                .prepare_cached(
                    "SELECT sum(h.ban_count), max(h.time_of_ban), sum(h.bantime) \
                     FROM ban_history h WHERE h.key = ?1 AND h.id = ( \
                         SELECT l.id FROM ban_history l WHERE l.key = h.key AND l.jail = h.jail \
                         ORDER BY l.time_of_ban DESC, l.id DESC LIMIT 1) \
                     HAVING count(*) > 0",
                )
                .and_then(|mut s| {
                    s.query_row([key], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?)))
                        .optional()
                }),
        }
        .map_err(|e| self.read_err(op, e))?;
        Ok(row.map(|(count, time_of_ban, bantime)| BanHistory {
            // Counts are ≥ 0 (CHECK); a sum beyond u32 saturates rather than failing a ban.
            ban_count: u32::try_from(count.max(0)).unwrap_or(u32::MAX),
            time_of_ban,
            bantime,
        }))
    }

    /// The latest history row of every `(jail, key)`: what `bantime.increment` looks up,
    /// read at once so a daemon can keep it in memory and never query on its hot path.
    /// Ordered by key, then jail.
    pub fn latest_history(&self) -> Result<Vec<(String, String, BanHistory)>, StoreError> {
        let op = "reading the latest ban of every offender";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT h.jail, h.key, h.ban_count, h.time_of_ban, h.bantime FROM ban_history h \
                 WHERE h.id = (SELECT l.id FROM ban_history l WHERE l.key = h.key AND l.jail = h.jail \
                     ORDER BY l.time_of_ban DESC, l.id DESC LIMIT 1) \
                 ORDER BY h.key, h.jail",
            )
            .map_err(|e| self.read_err(op, e))?;
        let mut rows = stmt.query([]).map_err(|e| self.read_err(op, e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.read_err(op, e))? {
            let count: i64 = row.get(2).map_err(|e| self.read_err(op, e))?;
            out.push((
                row.get(0).map_err(|e| self.read_err(op, e))?,
                row.get(1).map_err(|e| self.read_err(op, e))?,
                BanHistory {
                    ban_count: u32::try_from(count.max(0)).unwrap_or(u32::MAX),
                    time_of_ban: row.get(3).map_err(|e| self.read_err(op, e))?,
                    bantime: row.get(4).map_err(|e| self.read_err(op, e))?,
                },
            ));
        }
        Ok(out)
    }

    /// Every read position recorded, of every source.
    pub fn all_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let op = "reading checkpoints";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT source, path, fingerprint, offset, updated_at FROM checkpoints \
                 ORDER BY source, path",
            )
            .map_err(|e| self.read_err(op, e))?;
        let mut rows = stmt.query([]).map_err(|e| self.read_err(op, e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.read_err(op, e))? {
            out.push(self.checkpoint_from_row(row, op)?);
        }
        Ok(out)
    }

    /// SQLite's `quick_check`: the file's pages, records and index entries are sound (not
    /// that indexes match their tables, which a full `integrity_check` also verifies at a
    /// much higher cost). A damaged file is [`StoreError::Damaged`].
    pub fn check_integrity(&self) -> Result<(), StoreError> {
        let op = "checking the database (quick_check)";
        let mut stmt = self
            .conn
            .prepare("PRAGMA quick_check(20)")
            .map_err(|e| self.damaged_or(op, e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.damaged_or(op, e))?;
        let mut problems = Vec::new();
        for row in rows {
            problems.push(row.map_err(|e| self.damaged_or(op, e))?);
        }
        if problems.len() == 1 && problems[0] == "ok" {
            return Ok(());
        }
        Err(StoreError::Damaged {
            path: self.path.clone(),
            detail: problems.join("; "),
        })
    }

    /// An error met while reading: damage when SQLite says the file is corrupt.
    fn damaged_or(&self, op: &str, source: rusqlite::Error) -> StoreError {
        match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
                StoreError::Damaged {
                    path: self.path.clone(),
                    detail: source.to_string(),
                }
            }
            _ => self.err(op, source),
        }
    }

    /// The read position of `path` for `source`.
    pub fn checkpoint(&self, source: &str, path: &str) -> Result<Option<Checkpoint>, StoreError> {
        let op = "reading a checkpoint";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT source, path, fingerprint, offset, updated_at FROM checkpoints \
                 WHERE source = ?1 AND path = ?2",
            )
            .map_err(|e| self.read_err(op, e))?;
        let mut rows = stmt
            .query(params![source, path])
            .map_err(|e| self.read_err(op, e))?;
        match rows.next().map_err(|e| self.read_err(op, e))? {
            Some(row) => Ok(Some(self.checkpoint_from_row(row, op)?)),
            None => Ok(None),
        }
    }

    /// Every read position recorded for `source`, ordered by path (a glob's files, or stale
    /// entries to forget).
    pub fn checkpoints(&self, source: &str) -> Result<Vec<Checkpoint>, StoreError> {
        let op = "reading checkpoints";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT source, path, fingerprint, offset, updated_at FROM checkpoints \
                 WHERE source = ?1 ORDER BY path",
            )
            .map_err(|e| self.read_err(op, e))?;
        let mut rows = stmt.query([source]).map_err(|e| self.read_err(op, e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.read_err(op, e))? {
            out.push(self.checkpoint_from_row(row, op)?);
        }
        Ok(out)
    }

    fn checkpoint_from_row(
        &self,
        row: &rusqlite::Row<'_>,
        op: &str,
    ) -> Result<Checkpoint, StoreError> {
        let source: String = row.get(0).map_err(|e| self.read_err(op, e))?;
        let path: String = row.get(1).map_err(|e| self.read_err(op, e))?;
        let offset_raw: i64 = row.get(3).map_err(|e| self.read_err(op, e))?;
        let offset = u64::try_from(offset_raw).map_err(|_| StoreError::Corrupt {
            path: self.path.clone(),
            op: op.to_string(),
            detail: format!("checkpoint ({source:?}, {path:?}): offset {offset_raw}"),
        })?;
        Ok(Checkpoint {
            fingerprint: row.get(2).map_err(|e| self.read_err(op, e))?,
            offset,
            updated_at: row.get(4).map_err(|e| self.read_err(op, e))?,
            source,
            path,
        })
    }

    /// A metadata value (`created_by`, …).
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
            .map_err(|e| self.read_err("reading metadata", e))
    }

    /// Housekeeping, fail2ban's `purge` with `dbpurgeage` (compat §8), all at once: the
    /// steps of [`Store::purge_step`] until there is nothing left to look at. The daemon
    /// calls the steps itself, between other work.
    pub fn purge(&mut self, now: f64, purge_age: f64) -> Result<Purged, StoreError> {
        let mut total = Purged::default();
        let mut cursor = PurgeCursor::default();
        loop {
            let step = self.purge_step(now, purge_age, &mut cursor, PURGE_STEP_ROWS)?;
            total.history += step.history;
            total.expired_bans += step.expired_bans;
            if cursor.done {
                return Ok(total);
            }
        }
    }

    /// One bounded step of the purge, in one transaction; `cursor` says where the previous
    /// step stopped (start with `PurgeCursor::default()`, stop when `cursor.done`). Each
    /// step looks at no more than `limit` expired bans and `limit` history rows, through
    /// indexes, so it costs the same whatever the size of the tables.
    ///
    /// - active bans that have ended by `now` are removed (the firewall expired them);
    /// - history rows that started before `now − purge_age` are removed, except each
    ///   `(key, jail)`'s latest row, which follows fail2ban's `bips` rule: kept while
    ///   permanent or while `time_of_ban + 3·bantime ≥ now − purge_age`, so
    ///   `bantime.increment` remembers recent offenders as long as fail2ban would;
    /// - the history row of a ban still active is never removed (the ban points at it).
    pub fn purge_step(
        &mut self,
        now: f64,
        purge_age: f64,
        cursor: &mut PurgeCursor,
        limit: usize,
    ) -> Result<Purged, StoreError> {
        let op = "purging old history and expired bans";
        if !now.is_finite() || !purge_age.is_finite() {
            return Err(StoreError::InvalidChange {
                path: self.path.clone(),
                op: op.to_string(),
                detail: format!("now {now} and purge_age {purge_age} must be finite"),
            });
        }
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let cutoff = now - purge_age;
        let path = &self.path;
        let fail = |e| sqlite_err(path, op.to_string(), e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        // Expired bans first: the history rows they pointed at become purgeable.
        let expired_bans = tx
            .prepare_cached(
                "DELETE FROM bans WHERE id IN ( \
                     SELECT id FROM bans WHERE ends_at IS NOT NULL AND ends_at <= ?1 LIMIT ?2)",
            )
            .and_then(|mut s| s.execute(params![now, limit]))
            .map_err(fail)?;
        let bans_done = i64::try_from(expired_bans).unwrap_or(i64::MAX) < limit;
        // History: the next `limit` rows older than the cutoff, in (time_of_ban, id) order
        // from where the last step stopped, so rows kept by the rules are looked at once per
        // purge rather than once per step.
        let last: Option<(f64, i64)> = tx
            .prepare_cached(
                "SELECT time_of_ban, id FROM ( \
                     SELECT time_of_ban, id FROM ban_history \
                     WHERE time_of_ban < ?1 AND (time_of_ban, id) > (?2, ?3) \
                     ORDER BY time_of_ban, id LIMIT ?4) \
                 ORDER BY time_of_ban DESC, id DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(params![cutoff, cursor.time_of_ban, cursor.id, limit], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
            .map_err(fail)?;
        let mut history = 0;
        if let Some((last_time, last_id)) = last {
            history = tx
                .prepare_cached(
                    "DELETE FROM ban_history AS h \
                     WHERE (h.time_of_ban, h.id) > (?2, ?3) AND (h.time_of_ban, h.id) <= (?4, ?5) \
                     AND h.time_of_ban < ?1 \
                     AND NOT EXISTS (SELECT 1 FROM bans b WHERE b.history_id = h.id) AND ( \
                         (h.bantime >= 0 AND h.time_of_ban + h.bantime * 3 < ?1) \
                         OR h.id <> ( \
                             SELECT l.id FROM ban_history l WHERE l.key = h.key AND l.jail = h.jail \
                             ORDER BY l.time_of_ban DESC, l.id DESC LIMIT 1))",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        cutoff,
                        cursor.time_of_ban,
                        cursor.id,
                        last_time,
                        last_id
                    ])
                })
                .map_err(fail)?;
            cursor.time_of_ban = last_time;
            cursor.id = last_id;
        }
        tx.commit().map_err(fail)?;
        cursor.done = bans_done && last.is_none();
        Ok(Purged {
            history,
            expired_bans,
        })
    }

    /// Closes the connection, reporting errors that dropping would swallow. Dropping a
    /// `Store` is also safe: every committed batch is already in the file.
    pub fn close(self) -> Result<(), StoreError> {
        let Store { conn, path } = self;
        // Cheap and lets SQLite refresh planner statistics it finds stale.
        conn.execute_batch("PRAGMA optimize")
            .map_err(|e| sqlite_err(&path, "optimizing at close".to_string(), e))?;
        conn.close()
            .map_err(|(_, e)| sqlite_err(&path, "closing the database".to_string(), e))
    }

    /// The raw connection, for tests that look under the API.
    #[cfg(test)]
    pub(crate) fn conn_for_tests(&self) -> &Connection {
        &self.conn
    }

    fn pragma_i64(&self, name: &str) -> Result<i64, StoreError> {
        self.conn
            .pragma_query_value(None, name, |r| r.get(0))
            .map_err(|e| self.read_err(&format!("reading PRAGMA {name}"), e))
    }

    fn err(&self, op: &str, source: rusqlite::Error) -> StoreError {
        sqlite_err(&self.path, op.to_string(), source)
    }

    /// Like [`Store::err`], but a file that turns out not to be SQLite gets its own error.
    fn read_err(&self, op: &str, source: rusqlite::Error) -> StoreError {
        if source.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
            return StoreError::NotADatabase {
                path: self.path.clone(),
            };
        }
        self.err(op, source)
    }
}

fn sqlite_err(path: &Path, op: String, source: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Creates `path` with mode 0600 if absent. SQLite would create it with 0644 (and its `-wal`
/// and `-shm` files copy the database file's mode, so this covers them too).
fn create_private(path: &Path) -> Result<(), StoreError> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => return Ok(()),
        Ok(_) => {
            return Err(StoreError::NotAFile {
                path: path.to_path_buf(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(StoreError::Create {
                path: path.to_path_buf(),
                source,
            })
        }
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        // Created by someone else between the two calls: open it like any existing file.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Create {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Why one change failed, before the batch context is added.
enum ApplyError {
    Sqlite(rusqlite::Error),
    Invalid(String),
}

impl From<rusqlite::Error> for ApplyError {
    fn from(e: rusqlite::Error) -> Self {
        ApplyError::Sqlite(e)
    }
}

fn finite(what: &str, v: f64) -> Result<f64, ApplyError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(ApplyError::Invalid(format!(
            "{what} is {v} (expected a finite number)"
        )))
    }
}

fn apply_one(tx: &rusqlite::Transaction<'_>, change: &Change) -> Result<(), ApplyError> {
    match change {
        Change::Ban(ban) => {
            let time_of_ban = finite("time_of_ban", ban.time_of_ban)?;
            let bantime = finite("bantime", ban.bantime)?;
            let data = serde_json::to_string(&ban.data)
                .map_err(|e| ApplyError::Invalid(format!("data cannot be encoded: {e}")))?;
            // History first: the active ban points at its history row.
            tx.prepare_cached(
                "INSERT INTO ban_history (jail, key, time_of_ban, bantime, ban_count, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                ban.jail,
                ban.key,
                time_of_ban,
                bantime,
                ban.ban_count,
                data
            ])?;
            let history_id = tx.last_insert_rowid();
            // UPDATE, then INSERT if there was nothing to update, rather than an UPSERT: an
            // UPSERT may write twice, so SQLite wraps each one in a statement journal, which
            // measured as half the cost of a 100k-ban batch.
            let ends_at = (bantime >= 0.0).then_some(time_of_ban + bantime);
            let updated = tx
                .prepare_cached(
                    "UPDATE bans SET family = ?3, history_id = ?4, ends_at = ?5 \
                     WHERE jail = ?1 AND key = ?2",
                )?
                .execute(params![
                    ban.jail,
                    ban.key,
                    ban.family.to_db(),
                    history_id,
                    ends_at
                ])?;
            if updated == 0 {
                tx.prepare_cached(
                    "INSERT INTO bans (jail, key, family, history_id, ends_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    ban.jail,
                    ban.key,
                    ban.family.to_db(),
                    history_id,
                    ends_at
                ])?;
            }
        }
        Change::Unban {
            jail,
            key,
            delete_history,
        } => {
            tx.prepare_cached("DELETE FROM bans WHERE jail = ?1 AND key = ?2")?
                .execute(params![jail, key])?;
            if *delete_history {
                tx.prepare_cached("DELETE FROM ban_history WHERE key = ?1 AND jail = ?2")?
                    .execute(params![key, jail])?;
            }
        }
        Change::UnbanAll {
            jail: Some(jail),
            delete_history,
        } => {
            tx.prepare_cached("DELETE FROM bans WHERE jail = ?1")?
                .execute([jail])?;
            if *delete_history {
                tx.prepare_cached("DELETE FROM ban_history WHERE jail = ?1")?
                    .execute([jail])?;
            }
        }
        Change::UnbanAll {
            jail: None,
            delete_history,
        } => {
            tx.prepare_cached("DELETE FROM bans")?.execute([])?;
            if *delete_history {
                tx.prepare_cached("DELETE FROM ban_history")?.execute([])?;
            }
        }
        Change::Checkpoint(cp) => {
            let offset = i64::try_from(cp.offset).map_err(|_| {
                ApplyError::Invalid(format!("offset {} exceeds SQLite's integers", cp.offset))
            })?;
            let updated_at = finite("updated_at", cp.updated_at)?;
            tx.prepare_cached(
                "INSERT INTO checkpoints (source, path, fingerprint, offset, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (source, path) DO UPDATE SET fingerprint = excluded.fingerprint, \
                     offset = excluded.offset, updated_at = excluded.updated_at",
            )?
            .execute(params![
                cp.source,
                cp.path,
                cp.fingerprint,
                offset,
                updated_at
            ])?;
        }
        Change::ForgetCheckpoint(CheckpointKey { source, path }) => {
            tx.prepare_cached("DELETE FROM checkpoints WHERE source = ?1 AND path = ?2")?
                .execute(params![source, path])?;
        }
        Change::Meta {
            key,
            value: Some(value),
        } => {
            tx.prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![key, value])?;
        }
        Change::Meta { key, value: None } => {
            tx.prepare_cached("DELETE FROM meta WHERE key = ?1")?
                .execute([key])?;
        }
    }
    Ok(())
}

/// A short description of a change for error messages.
fn describe(change: &Change) -> String {
    match change {
        Change::Ban(b) => format!("ban {} in jail {}", b.key, b.jail),
        Change::Unban { jail, key, .. } => format!("unban {key} in jail {jail}"),
        Change::UnbanAll { jail: Some(j), .. } => format!("unban all in jail {j}"),
        Change::UnbanAll { jail: None, .. } => "unban all".to_string(),
        Change::Checkpoint(cp) => format!("checkpoint {} for {}", cp.path, cp.source),
        Change::ForgetCheckpoint(k) => format!("forget checkpoint {} for {}", k.path, k.source),
        Change::Meta { key, .. } => format!("meta {key}"),
    }
}
