//! action.d command actions (fail2ban's `CommandAction`): the shell scripts of an
//! `action.d/*.conf` file run at start, ban, unban, stop… Receives a jail's resolved
//! [`ActionSpec`](banhammer_config::ActionSpec) and then [`Ticket`]s to ban, prolong and
//! unban; emits `/bin/sh` processes, and [`CommandError`]s.
//!
//! Rooms: `ticket` (the values of a ban), `tags` (static substitution from the options),
//! `script` (dynamic substitution: where log text meets the shell, see its rules),
//! `exec` (one process, timeout, group kill), `lifecycle` ([`CommandAction`]: which
//! script runs when, per address family, with check/repair/retry), `worker` (a thread per
//! action, so each address's operations run in order).
//!
//! Behaviour matched: fail2ban 1.0.2 `server/action.py` and `actions.py`, summarised in
//! `compat.md` §5.

mod error;
mod exec;
mod hostname;
mod lifecycle;
mod script;
mod tags;
mod ticket;
mod worker;

#[cfg(test)]
mod tests;

pub use error::{Cause, CommandError};
pub use lifecycle::CommandAction;
pub use ticket::{DbValues, Family, JailCounters, Ticket};
pub use worker::{spawn_worker, spawn_worker_with, ActionCmd, ActionWorker, ErrorHook, TrySend};

use std::fmt;

/// An operation of a command action: which `action…` option runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// `actionstart`.
    Start,
    /// `actionstop`.
    Stop,
    /// `actioncheck`.
    Check,
    /// `actionrepair`.
    Repair,
    /// `actionban`.
    Ban,
    /// `actionreban` (run instead of `actionban` when re-banning, if defined).
    Reban,
    /// `actionprolong`.
    Prolong,
    /// `actionunban`.
    Unban,
    /// `actionflush`.
    Flush,
    /// `actionreload`.
    Reload,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 10] = [
        Op::Start,
        Op::Stop,
        Op::Check,
        Op::Repair,
        Op::Ban,
        Op::Reban,
        Op::Prolong,
        Op::Unban,
        Op::Flush,
        Op::Reload,
    ];

    /// The option holding the script (`actionban`).
    pub fn key(self) -> &'static str {
        match self {
            Op::Start => "actionstart",
            Op::Stop => "actionstop",
            Op::Check => "actioncheck",
            Op::Repair => "actionrepair",
            Op::Ban => "actionban",
            Op::Reban => "actionreban",
            Op::Prolong => "actionprolong",
            Op::Unban => "actionunban",
            Op::Flush => "actionflush",
            Op::Reload => "actionreload",
        }
    }

    /// The word used in messages (`ban`).
    pub fn verb(self) -> &'static str {
        &self.key()["action".len()..]
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.verb())
    }
}
