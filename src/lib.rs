//! banhammer: the parts of the binary with side effects (files, threads, output), kept in a
//! library so the integration tests in `tests/it/` can drive them directly.
//!
//! The pure logic lives in the `banhammer-config` (fail2ban's config dialect) and
//! `banhammer-core` (matching, dates) crates.

pub mod action;
pub mod cli;
pub mod control;
pub mod daemon;
pub mod dns;
pub mod embedded;
pub mod filterload;
pub mod logging;
pub mod metrics;
pub mod pollserver;
pub mod pyfmt;
pub mod samples;
pub mod scan;
pub mod source;
