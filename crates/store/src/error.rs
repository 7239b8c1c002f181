//! Errors of this crate. Owns [`StoreError`]; every variant names the database file (or
//! `:memory:`) and, for failures during work, what the store was doing, so a message read in a
//! log is actionable without the code at hand.

use std::path::PathBuf;

/// Why the store could not open, migrate, read or write its database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be created (missing parent directory, permissions…).
    #[error("{path}: cannot create the database file: {source}", path = path.display())]
    Create {
        /// The database file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The path exists but is not a regular file.
    #[error("{path}: not a regular file (expected an SQLite database file)", path = path.display())]
    NotAFile {
        /// The offending path.
        path: PathBuf,
    },
    /// The file exists but is not an SQLite database at all.
    #[error(
        "{path}: not an SQLite database (expected a banhammer database or no file; \
         point dbfile at another path)",
        path = path.display()
    )]
    NotADatabase {
        /// The offending file.
        path: PathBuf,
    },
    /// The file is fail2ban's own database. banhammer never writes fail2ban's database: the two
    /// schemas differ and fail2ban may still be using it.
    #[error(
        "{path}: this is fail2ban's database (it has fail2ban's tables); banhammer keeps its own \
         database and never writes fail2ban's: set dbfile to another path \
         (e.g. /var/lib/banhammer/banhammer.sqlite3)",
        path = path.display()
    )]
    Fail2banDatabase {
        /// The offending file.
        path: PathBuf,
    },
    /// The file is an SQLite database that belongs to some other program.
    #[error(
        "{path}: an SQLite database that is not banhammer's ({detail}); refusing to modify it: \
         set dbfile to another path",
        path = path.display()
    )]
    ForeignDatabase {
        /// The offending file.
        path: PathBuf,
        /// What gave it away.
        detail: String,
    },
    /// The database was written by a newer banhammer (schema version unknown to this build).
    #[error(
        "{path}: database schema version {found} is newer than this banhammer supports \
         ({supported}); upgrade banhammer or point dbfile at another path",
        path = path.display()
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// `PRAGMA user_version` found in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// SQLite found the file damaged (bad pages, broken b-trees): a disk fault, a copy
    /// taken while written, a truncation. Nothing read from it can be trusted.
    #[error("{path}: the database is damaged: {detail}", path = path.display())]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// SQLite failed while doing `op`.
    #[error("{path}: {op}: {source}", path = path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What the store was doing (e.g. "applying a batch of 12 changes").
        op: String,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// A row holds a value this build cannot interpret (hand-edited or damaged file).
    #[error("{path}: {op}: corrupt row: {detail}", path = path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What the store was doing.
        op: String,
        /// What is wrong with the row.
        detail: String,
    },
    /// A change handed to [`crate::Store::apply`] cannot be stored (nothing of its batch was).
    #[error("{path}: {op}: invalid change: {detail}", path = path.display())]
    InvalidChange {
        /// The database file.
        path: PathBuf,
        /// What the store was doing.
        op: String,
        /// What is wrong with the change.
        detail: String,
    },
}

impl StoreError {
    /// Whether the error says the file is damaged (as opposed to not ours, or a passing
    /// failure): the daemon refuses to start on such a file unless told to recover.
    pub fn is_damage(&self) -> bool {
        match self {
            StoreError::Damaged { .. } | StoreError::NotADatabase { .. } => true,
            StoreError::Corrupt { .. } => true,
            StoreError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
            ),
            _ => false,
        }
    }
}
