//! banhammer's integration tests: one binary (ripgrep's layout), one module per area.

// Test code may panic: a panic is how a test reports a failure.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod cli_regex;
mod command_actions;
mod conformance;
mod control;
mod daemon;
mod env;
mod journal;
mod netns;
mod nftables;
mod own_samples;
mod skip_path;
mod syslog_socket;
mod tailing;
