//! Errors of command actions. Owns [`CommandError`] (which action of which jail, which
//! operation, for which address) and [`Cause`] (what happened). Receives nothing; emitted
//! by every fallible call of `CommandAction`, and logged by the worker for the calls
//! nobody waits on.

use std::fmt;
use std::io;
use std::time::Duration;

use super::Op;

/// A command action could not be built, or one of its operations failed.
#[derive(Debug)]
pub enum CommandError {
    /// The action's options cannot be used (bad `timeout`, self-referencing tags).
    Config {
        /// The jail.
        jail: String,
        /// The action's name in the jail (`actname`).
        action: String,
        /// What is wrong, and what was expected.
        message: String,
    },
    /// An operation failed.
    Failed {
        /// The jail.
        jail: String,
        /// The action's name in the jail (`actname`).
        action: String,
        /// The operation that failed.
        op: Op,
        /// The ticket's key, for ban/unban/prolong.
        ip: Option<String>,
        /// What happened.
        cause: Cause,
    },
    /// The action's worker thread has ended (stopped, or it panicked).
    Gone {
        /// The jail.
        jail: String,
        /// The action's name in the jail (`actname`).
        action: String,
    },
}

/// Why an operation failed.
#[derive(Debug)]
pub enum Cause {
    /// The shell could not be started.
    Spawn(io::Error),
    /// The script exited with a non-zero code; the last line it wrote to stderr.
    Exit { code: i32, stderr: String },
    /// The script was killed by a signal it did not get from us.
    Signal { signal: i32, stderr: String },
    /// The script ran past the action's `timeout`; its process group was killed.
    TimedOut(Duration),
    /// The script ran past the timeout and did not die after SIGKILL (abandoned).
    Unkillable(Duration),
    /// `actioncheck` failed and repairing was not allowed (unban without
    /// `actionrepair_on_unban`, or the jail is stopping).
    CheckFailed,
    /// `actioncheck` failed, and repair (or restart) did not bring it back.
    Unrepaired,
}

impl CommandError {
    /// The operation that failed (`None` for a configuration error).
    pub fn op(&self) -> Option<Op> {
        match self {
            CommandError::Config { .. } | CommandError::Gone { .. } => None,
            CommandError::Failed { op, .. } => Some(*op),
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Config {
                jail,
                action,
                message,
            } => write!(f, "jail {jail:?} action {action:?}: {message}"),
            CommandError::Failed {
                jail,
                action,
                op,
                ip,
                cause,
            } => {
                write!(f, "jail {jail:?} action {action:?}: {}", op.verb())?;
                if let Some(ip) = ip {
                    write!(f, " {ip}")?;
                }
                write!(f, " failed: {cause}")
            }
            CommandError::Gone { jail, action } => {
                write!(f, "jail {jail:?} action {action:?}: its worker has ended")
            }
        }
    }
}

impl std::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CommandError::Failed {
                cause: Cause::Spawn(e),
                ..
            } => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let said = |f: &mut fmt::Formatter<'_>, stderr: &str| {
            if stderr.is_empty() {
                Ok(())
            } else {
                write!(f, ": {stderr}")
            }
        };
        match self {
            Cause::Spawn(e) => write!(f, "cannot start the shell: {e}"),
            Cause::Exit { code, stderr } => {
                write!(f, "exit code {code}")?;
                said(f, stderr)
            }
            Cause::Signal { signal, stderr } => {
                write!(f, "killed by signal {signal}")?;
                said(f, stderr)
            }
            Cause::TimedOut(t) => write!(f, "timed out after {t:?}; killed"),
            Cause::Unkillable(t) => {
                write!(f, "timed out after {t:?} and survived SIGKILL; abandoned")
            }
            Cause::CheckFailed => write!(f, "actioncheck failed, repair not attempted"),
            Cause::Unrepaired => write!(f, "actioncheck failed and the repair did not help"),
        }
    }
}
