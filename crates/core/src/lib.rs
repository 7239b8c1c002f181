//! banhammer's pure domain logic: no I/O, no clock (time is passed in).
//!
//! - [`pyregex`]: fail2ban's Python regexes translated to Rust engines (fast `regex`
//!   where possible, PCRE2 only where a pattern needs backtracking features).
//! - [`failtags`]: fail2ban's `<HOST>`, `<F-*>`… tags expanded into regex text.
//! - [`date`]: fail2ban's date detection (default templates, `datepattern`).
//! - [`filter`]: a compiled filter (prefregex, failregex, ignoreregex, maxlines,
//!   multi-line failure ids) that turns log lines into failures.

pub mod date;
pub mod failtags;
pub mod filter;
pub mod jail;
pub mod pyregex;
