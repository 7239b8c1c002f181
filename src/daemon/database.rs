//! Opening the daemon's database as the daemon wants it: a damaged file is never silently
//! replaced by an empty one. Receives the `dbfile` setting and whether the operator asked
//! to recover (`--db-recover`); emits an open, checked [`Store`] or an error that says what
//! is wrong and what to do.
//!
//! Why refuse rather than start fresh: an empty store means no bans to restore, no history
//! for `bantime.increment`, and — worse — a daemon that reports "0 bans" while the kernel
//! still holds them, none removable from the client. With `--db-recover` the damaged file
//! is moved aside (kept for inspection) and a new one started; the bans still in the
//! kernel's sets are then adopted at start, so protection survives the loss.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use banhammer_store::{Store, StoreError};

use super::settings::DbLocation;
use crate::warning;

/// Opens the database of `db`, checking a file with SQLite's quick check. A damaged or
/// empty (0-byte) file is an error unless `recover`, which moves it aside first.
pub fn open(db: &DbLocation, recover: bool) -> Result<Store> {
    match db {
        DbLocation::File(p) => open_file(p, recover),
        DbLocation::Memory => Store::open_in_memory().map_err(|e| anyhow!("dbfile :memory:: {e}")),
        DbLocation::Disabled => {
            warning!(
                "server",
                "dbfile = None: bans and file positions will not survive a restart"
            );
            Store::open_in_memory().map_err(|e| anyhow!("in-memory database: {e}"))
        }
    }
}

fn open_file(path: &Path, recover: bool) -> Result<Store> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("dbfile {}: creating its directory", path.display()))?;
    }
    let empty = std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0);
    if empty {
        if !recover {
            bail!(
                "dbfile {}: the file is empty (0 bytes): a database that lost its content, \
                 not a new one; restore a backup, or start with --db-recover to set it aside \
                 and rebuild the bans from the kernel's sets",
                path.display()
            );
        }
        set_aside(path, "empty")?;
    }
    match Store::open(path).and_then(|s| s.check_integrity().map(|()| s)) {
        Ok(store) => Ok(store),
        Err(e) if e.is_damage() && recover => {
            set_aside(path, &e.to_string())?;
            Store::open(path).map_err(|e| anyhow!("dbfile {}: {e}", path.display()))
        }
        Err(e) if e.is_damage() => Err(anyhow!(
            "dbfile {}: {e}; restore a backup, or start with --db-recover to set it aside \
             and rebuild the bans from the kernel's sets",
            path.display()
        )),
        Err(e) => Err(described(path, e)),
    }
}

fn described(path: &Path, e: StoreError) -> anyhow::Error {
    anyhow!("dbfile {}: {e}", path.display())
}

/// Renames the database (and its WAL and shared-memory files) to `NAME.damaged-UNIXTIME`.
fn set_aside(path: &Path, why: &str) -> Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let aside = PathBuf::from(format!("{}.damaged-{stamp}", path.display()));
    std::fs::rename(path, &aside).with_context(|| {
        format!(
            "dbfile {}: moving the damaged file to {}",
            path.display(),
            aside.display()
        )
    })?;
    for suffix in ["-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if from.exists() {
            let to = PathBuf::from(format!("{}{suffix}", aside.display()));
            let _ = std::fs::rename(&from, &to);
        }
    }
    warning!(
        "server",
        "dbfile {}: {why}; moved to {} (--db-recover); starting a new database, bans still in the kernel's sets will be adopted",
        path.display(),
        aside.display()
    );
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finding: a 0-byte database file was silently taken for a new database.
    #[test]
    fn an_empty_database_file_is_refused_unless_recovering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bh.sqlite3");
        std::fs::write(&path, b"").unwrap();
        let db = DbLocation::File(path.clone());
        let e = open(&db, false).err().unwrap().to_string();
        assert!(
            e.contains("empty (0 bytes)") && e.contains("--db-recover"),
            "{e}"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left as it was");
        open(&db, true).unwrap();
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".damaged-"))
            .collect();
        assert_eq!(aside.len(), 1);
    }

    /// Finding: a damaged database made the daemon start with no bans. Opening refuses
    /// it, naming the file and the way out; recovering sets it aside.
    #[test]
    fn a_damaged_database_is_refused_unless_recovering() {
        use std::io::{Seek, SeekFrom, Write};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bh.sqlite3");
        let db = DbLocation::File(path.clone());
        {
            let mut store = open(&db, false).unwrap();
            let batch: Vec<banhammer_store::Change> = (0..3000)
                .map(|i| {
                    let key = format!("10.0.{}.{}", i / 256, i % 256);
                    banhammer_store::Change::Ban(banhammer_store::BanRecord {
                        jail: "sshd".into(),
                        family: banhammer_store::Family::of_key(&key),
                        key,
                        time_of_ban: 1e9,
                        bantime: 600.0,
                        ban_count: 1,
                        data: Default::default(),
                    })
                })
                .collect();
            store.apply(&batch).unwrap();
            store.close().unwrap();
        }
        let len = std::fs::metadata(&path).unwrap().len();
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.seek(SeekFrom::Start(len / 2)).unwrap();
        f.write_all(&[0x5A; 3 * 4096]).unwrap();
        drop(f);
        let e = open(&db, false).err().unwrap().to_string();
        assert!(e.contains("damaged") && e.contains("--db-recover"), "{e}");
        let store = open(&db, true).unwrap();
        assert!(store.active_bans(0.0).unwrap().is_empty());
    }
}
