//! The schema and its forward migrations. Owns the SQL that creates tables; receives an open
//! connection inside a transaction and the version found in the file (`PRAGMA user_version`);
//! emits the file at [`CURRENT_VERSION`].
//!
//! Versioning: `user_version` is the schema version (0 = empty file). Each entry of
//! [`MIGRATIONS`] takes the schema from version `i` to `i + 1`; a new table or column is a new
//! entry appended at the end, never an edit of an old one (files in the field were made by the
//! old text). `application_id` marks the file as banhammer's so that a foreign SQLite file is
//! never migrated into.
//!
//! Times are REAL unix seconds (fail2ban keeps integers; sub-second log times survive here).
//! `data` columns hold a JSON object as TEXT.

/// `PRAGMA application_id` of banhammer databases: ASCII "bnhm".
pub(crate) const APPLICATION_ID: i64 = 0x626E_686D;

/// Schema version this build writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 0 → 1: the initial schema.
    r#"
    -- Small key/value facts about the file (created_by, …).
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) WITHOUT ROWID;

    -- Every ban ever stored (until purged): bantime.increment and recidive-like decisions.
    -- bantime < 0 = permanent.
    CREATE TABLE ban_history (
        id          INTEGER PRIMARY KEY,
        jail        TEXT NOT NULL,
        key         TEXT NOT NULL,
        time_of_ban REAL NOT NULL,
        bantime     REAL NOT NULL,
        ban_count   INTEGER NOT NULL DEFAULT 1 CHECK (ban_count >= 0),
        data        TEXT NOT NULL DEFAULT '{}'
    );
    -- Serves lookups by (key, jail) and by key alone (its prefix), newest first.
    CREATE INDEX ban_history_key_jail_time ON ban_history (key, jail, time_of_ban);
    -- Serves the purge.
    CREATE INDEX ban_history_time ON ban_history (time_of_ban);

    -- Active bans: at most one per (jail, key), restored and re-applied at start. An active
    -- ban is the history row in force: its times, count and data are not copied here, which
    -- halves what a ban writes (data carries matched lines). family: 0 = not an address, 4, 6.
    -- A rowid table with a unique index: measured faster to insert into than WITHOUT ROWID.
    CREATE TABLE bans (
        id          INTEGER PRIMARY KEY,
        jail        TEXT NOT NULL,
        key         TEXT NOT NULL,
        family      INTEGER NOT NULL DEFAULT 0 CHECK (family IN (0, 4, 6)),
        history_id  INTEGER NOT NULL REFERENCES ban_history (id)
    );
    CREATE UNIQUE INDEX bans_jail_key ON bans (jail, key);

    -- File read positions per reader (jail or source id) and path.
    CREATE TABLE checkpoints (
        source      TEXT NOT NULL,
        path        TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        offset      INTEGER NOT NULL CHECK (offset >= 0),
        updated_at  REAL NOT NULL,
        PRIMARY KEY (source, path)
    ) WITHOUT ROWID;
    "#,
    // 1 → 2: bulk work without quadratic scans. Deleting a history row makes SQLite's
    // foreign-key check look for bans pointing at it: without an index on bans(history_id)
    // that is a scan of every active ban per deleted row (an `unban --all` of 40k bans took
    // 25 s). And the purge finds expired bans by their end, which the bans table now keeps
    // (NULL = permanent) so that finding them is an index range, not a join over every ban.
    r#"
    CREATE INDEX bans_history_id ON bans (history_id);
    ALTER TABLE bans ADD COLUMN ends_at REAL;
    UPDATE bans SET ends_at = (
        SELECT CASE WHEN h.bantime < 0 THEN NULL ELSE h.time_of_ban + h.bantime END
        FROM ban_history h WHERE h.id = bans.history_id);
    CREATE INDEX bans_ends_at ON bans (ends_at) WHERE ends_at IS NOT NULL;
    "#,
];

/// Tables whose presence marks fail2ban's database (`fail2banDb` holds its schema version,
/// `bips` its latest-ban table; compat §8).
pub(crate) const FAIL2BAN_TABLES: &[&str] = &["fail2banDb", "bips"];
