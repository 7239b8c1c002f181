//! banhammer's persistent state in SQLite — the only SQL in the tree. Owns the database file:
//! its schema and migrations ([`CURRENT_VERSION`]), active bans (restored at start), the ban
//! history (`bantime.increment`, recidive-like decisions) and file read positions. Receives
//! batches of [`Change`]s from one owner (the daemon's store task, on its own thread: the API
//! is blocking) and queries with the time passed in; emits records. No global state, no clock.
//!
//! It keeps the information fail2ban keeps (compat §8) in its own schema and file, and refuses
//! to open fail2ban's database: banhammer never writes it.
//!
//! ```
//! use banhammer_store::{BanData, BanRecord, Change, Family, Store};
//! # fn main() -> Result<(), banhammer_store::StoreError> {
//! let mut store = Store::open_in_memory()?;
//! store.apply(&[Change::Ban(BanRecord {
//!     jail: "sshd".into(),
//!     key: "192.0.2.7".into(),
//!     family: Family::of_key("192.0.2.7"),
//!     time_of_ban: 1_700_000_000.0,
//!     bantime: 600.0,
//!     ban_count: 1,
//!     data: BanData { failures: 5, ..BanData::default() },
//! })])?;
//! assert_eq!(store.active_bans(1_700_000_100.0)?.len(), 1);
//! assert_eq!(store.history("192.0.2.7", Some("sshd"))?.map(|h| h.ban_count), Some(1));
//! # Ok(())
//! # }
//! ```

// Tests may unwrap/panic: a failed expectation is what a test reports.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod error;
mod record;
mod schema;
mod store;

pub use error::StoreError;
pub use record::{
    BanData, BanHistory, BanRecord, Change, Checkpoint, CheckpointKey, Family, PurgeCursor, Purged,
    PERMANENT,
};
pub use schema::CURRENT_VERSION;
pub use store::Store;

#[cfg(test)]
mod tests;
