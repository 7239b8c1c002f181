//! banhammer's integration tests: one binary (ripgrep's layout), one module per area.

// Test code may panic: a panic is how a test reports a failure.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod cli_regex;
mod conformance;
mod env;
mod nftables;
mod own_samples;
mod tailing;
