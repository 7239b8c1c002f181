//! The bounds of one configuration read, so that a broken or hostile config is refused with
//! an error instead of exhausting memory, time or the stack. Owns the work counter of one
//! read (`read_jails`, `read_jail`, `read_filter`, `read_filter_file`, `read_server`) and the
//! bounds: bytes one expanded value may reach, work the whole read may do, bytes one file
//! may hold, depth of `[INCLUDES]` nesting and entries of one `.d` directory. Receives charges
//! (in bytes read, scanned, copied or produced) from `layered`, `interp`, `tags`, `definit`
//! and `jail`; emits `file:line` errors saying which bound was passed.
//!
//! Why by size and work, not only by depth: fail2ban bounds `%(x)s` nesting at 10 levels and
//! `<tag>` replacements at 25 per tag, but ten references per level at eight levels is a
//! 100-million-fold expansion of a 12-line file. Real fail2ban configs expand far below these
//! bounds: the Debian package's whole tree with all 91 jails forced on does 13.5 MB of work
//! (5 % of `MAX_READ_WORK`, so about 1,800 such jails fit), and its largest expanded value
//! is 3 KiB (1 % of `MAX_VALUE_BYTES`); `real_trees_expand_well_under_the_bounds` keeps it so.

use std::cell::Cell;

use crate::error::{ConfigError, Origin};

/// The most bytes one option value may hold after `%(x)s` interpolation or `<tag>`
/// substitution (and the most a raw value may hold, since reading it is expanding it).
pub(crate) const MAX_VALUE_BYTES: usize = 256 * 1024;

/// The most work one read may do, in bytes: every file byte read, every byte an expansion
/// scans, copies or produces, every entry of an include order, counted once per time it is
/// done. A read that needs more is refused.
pub(crate) const MAX_READ_WORK: u64 = 256 * 1024 * 1024;

/// The most bytes one config file may hold (fail2ban's largest stock file is 26 KiB).
pub(crate) const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The deepest `[INCLUDES]` nesting (a file including a file including ...): the include
/// walk recurses once per level, and a chain of thousands of files would overflow the stack.
pub(crate) const MAX_INCLUDE_DEPTH: usize = 32;

/// The most `.conf` (or `.local`) files one `X.d/` directory may hold.
pub(crate) const MAX_DIR_FILES: usize = 10_000;

/// What one file costs beyond its bytes (open, stat, parse set-up), so that many empty files
/// or a long include order of tiny files still add up.
pub(crate) const FILE_COST: usize = 1024;

/// What one value, option, section or `%(name)s` lookup costs beyond its bytes (a string, a
/// map entry, a few hash probes), so that many empty ones still add up.
pub(crate) const VALUE_COST: usize = 64;

/// The work counter of one read. Not shared between threads: a read is single-threaded.
#[derive(Debug)]
pub(crate) struct Budget {
    spent: Cell<u64>,
    limit: u64,
    /// `MAX_DIR_FILES`, smaller in tests (creating ten thousand files takes a while).
    max_dir_files: usize,
}

/// The budget ran out; the caller turns this into an error naming what it was doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OverBudget;

impl Budget {
    /// A fresh budget of `MAX_READ_WORK`.
    pub fn new() -> Self {
        Budget::with_limit(MAX_READ_WORK)
    }

    /// A fresh budget of `limit` units.
    pub fn with_limit(limit: u64) -> Self {
        Budget {
            spent: Cell::new(0),
            limit,
            max_dir_files: MAX_DIR_FILES,
        }
    }

    /// This budget with a `.d` directory bound of `n` files.
    #[cfg(test)]
    pub fn with_max_dir_files(self, n: usize) -> Self {
        Budget {
            max_dir_files: n,
            ..self
        }
    }

    /// The most `.conf` (or `.local`) files one `X.d/` directory may hold.
    pub fn max_dir_files(&self) -> usize {
        self.max_dir_files
    }

    /// Spend `units`; `Err` once the total passes the limit (and on every later charge, so a
    /// lenient caller that swallows the error still stops working at once).
    pub fn charge(&self, units: usize) -> Result<(), OverBudget> {
        let units = u64::try_from(units).unwrap_or(u64::MAX);
        let spent = self.spent.get().saturating_add(units);
        self.spent.set(spent);
        if spent > self.limit {
            Err(OverBudget)
        } else {
            Ok(())
        }
    }

    /// Whether the budget has run out: lenient paths (disabled jails, `options` maps) must
    /// not swallow the error then.
    pub fn exhausted(&self) -> bool {
        self.spent.get() > self.limit
    }

    /// Work spent so far (what the regression tests bound).
    #[cfg(test)]
    pub fn spent(&self) -> u64 {
        self.spent.get()
    }

    /// The error of a read that ran out of budget while `doing` (e.g. "expanding option
    /// \"port\" of [sshd]") what is written at `origin`.
    pub fn error(&self, origin: &Origin, doing: &str) -> ConfigError {
        ConfigError::value(
            origin,
            format!(
                "reading the configuration needs more than {} of work (bytes read, scanned and \
                 expanded), passed while {doing}",
                human(self.limit)
            ),
            "a configuration whose `%(name)s` references, `<tag>`s and includes do not \
             multiply into hundreds of MiB",
        )
    }
}

/// The error of a value (`what`, written at `origin`) that expands past `MAX_VALUE_BYTES`;
/// `detail` (e.g. `, through %(port)s (jail.local:3)`) says how it got there.
pub(crate) fn too_large(origin: &Origin, what: &str, detail: &str) -> ConfigError {
    ConfigError::value(
        origin,
        format!(
            "{what} expands to more than {} (the bound on one value){detail}",
            human(MAX_VALUE_BYTES as u64)
        ),
        "a value of at most that size; a `%(name)s` or `<tag>` referenced several times at \
         several levels multiplies its size",
    )
}

/// `262144` → "256 KiB".
fn human(n: u64) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_and_stay_exhausted() {
        let b = Budget::with_limit(10);
        assert_eq!(b.charge(6), Ok(()));
        assert_eq!(b.charge(4), Ok(()));
        assert!(!b.exhausted());
        assert_eq!(b.charge(1), Err(OverBudget));
        assert!(b.exhausted());
        assert_eq!(b.charge(0), Err(OverBudget));
        assert_eq!(b.spent(), 11);
        let e = b
            .error(&Origin::new("j.conf", 3), "expanding x")
            .to_string();
        assert!(e.starts_with("j.conf:3: reading the configuration needs more than 10 bytes"));
    }

    #[test]
    fn value_bound_names_the_option() {
        let o = Origin::new("j.conf", 7);
        let e = too_large(&o, "option \"port\"", ", through %(x)s (j.conf:2)").to_string();
        assert!(
            e.starts_with(
                "j.conf:7: option \"port\" expands to more than 256 KiB (the bound on one \
                 value), through %(x)s (j.conf:2) (expected"
            ),
            "{e}"
        );
        assert_eq!(human(MAX_READ_WORK), "256 MiB");
        assert_eq!(human(1000), "1000 bytes");
    }
}
