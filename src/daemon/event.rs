//! What flows into the daemon's main loop: failures found by the jails' readers, source
//! news, control requests and signals. One channel, so everything that changes the jails'
//! state happens in one place, in arrival order.

use std::collections::BTreeMap;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Instant;

use banhammer_core::jail::FailureKey;

use crate::control::protocol::{Envelope, Request};
use crate::source::FileCheckpoint;

/// One failure of one key, ready for the jail state.
#[derive(Debug, Clone)]
pub struct Found {
    /// Who failed.
    pub key: FailureKey,
    /// When (log time, or the record's time).
    pub time: f64,
    /// The matched lines.
    pub matches: Vec<String>,
    /// Captured `F-*` groups and other named groups, by name (`user`, …).
    pub fields: BTreeMap<String, String>,
    /// Found while reading content older than the start (old-failure rules apply).
    pub catching_up: bool,
}

/// A signal the daemon acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    /// SIGHUP: reload the configuration.
    Reload,
    /// SIGTERM/SIGINT: shut down.
    Stop,
    /// SIGUSR1: re-open the log file (after logrotate).
    ReopenLog,
}

/// A message for the main loop.
#[derive(Debug)]
pub enum Event {
    /// Failures found in one source record.
    Found {
        /// The jail.
        jail: Arc<str>,
        /// Which incarnation of the jail (events of a reloaded-away reader are dropped).
        generation: u64,
        /// The failures (usually one).
        failures: Vec<Found>,
        /// When the record was read (for the ban-latency histogram).
        read_at: Instant,
    },
    /// A file position to store.
    Checkpoint {
        /// The jail.
        jail: Arc<str>,
        /// Its incarnation.
        generation: u64,
        /// The position.
        checkpoint: FileCheckpoint,
    },
    /// Lines read by a jail's source since the last such event.
    LinesRead {
        /// The jail.
        jail: Arc<str>,
        /// How many.
        count: u64,
    },
    /// Something the source wants logged.
    SourceNote {
        /// The jail.
        jail: Arc<str>,
        /// A warning (else info).
        warning: bool,
        /// The text.
        text: String,
    },
    /// A control-socket request; the reply goes back through `reply`.
    Control {
        /// The request.
        request: Request,
        /// Where the answer goes.
        reply: SyncSender<Envelope>,
    },
    /// A signal arrived.
    Signal(SignalKind),
}
