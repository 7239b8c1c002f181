//! fail2ban's configuration dialect, read exactly as fail2ban 1.0.2 reads it, resolved into
//! typed jail, filter, action and server specs. Pure library: the only I/O is reading config
//! files through `ConfigTree`. Layers, bottom up: `tree` (files) → `ini` (one file) →
//! `layered` (includes, `.d`/`.local` layering, merge) → `interp` (`%(x)s`) and `tags`
//! (`<x>`) → `definit` (Definition/Init/args) → `filter`, `action`, `jail`, `server` → `dump`.
//! `convert` holds fail2ban's bool and word-list conversions that several of them share;
//! `budget` bounds each read (value size, total work, file size, include depth, `.d` size) so
//! that a hostile config is refused instead of exhausting memory, time or the stack.
//! See `/docs/compat.md` §1–§5 for the behaviour being matched.

// Tests may unwrap/panic: a failed expectation is what a test reports.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod action;
mod args;
mod budget;
mod convert;
mod definit;
mod dump;
mod duration;
mod error;
mod filter;
mod ini;
mod interp;
mod jail;
mod layered;
mod server;
mod tags;
mod tree;

/// Option name → value (sorted by name).
pub type Options = std::collections::BTreeMap<String, String>;

pub use action::ActionSpec;
pub use args::parse_name_args;
pub use dump::dump_commands;
pub use duration::parse_duration;
pub use error::{ConfigError, DurationError, Origin};
pub use filter::{read_filter, read_filter_file, FilterSpec};
pub use jail::{read_jail, read_jails, JailSpec, JailsConfig, LogPath, Warning, VERSION};
pub use server::{read_server, ServerSpec};
pub use tree::ConfigTree;

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod tests;
