//! What flows into the daemon's main loop. Two channels: [`Event`]s from the jails'
//! readers and the loop's own helpers (bounded: a reader waits while the loop is behind),
//! and [`Urgent`] messages from the control socket and signals (unbounded, read first at
//! every turn, so `ping` is answered within a turn even during a flood). Everything that
//! changes the jails' state happens in the loop, in arrival order.

use std::collections::BTreeMap;
use std::sync::mpsc::{Sender, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// The jail's `ignorecommand` said to ignore this key (decided beside the loop).
    pub ignored_by_command: bool,
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

/// A message for the main loop from its pipeline.
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
    /// A jail's reader has ended (its source stopped): the last event of an incarnation.
    ReaderDone {
        /// The jail.
        jail: Arc<str>,
        /// Its incarnation.
        generation: u64,
    },
    /// Nothing but a wake-up: an [`Urgent`] message or a prepared reload is waiting.
    Wake,
}

/// A message that must not wait behind the pipeline's events.
#[derive(Debug)]
pub enum Urgent {
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

/// How long a control request waits for the main loop (less than the client's default
/// 30 s, so the client hears the daemon's own "did not answer in time").
const CONTROL_TIMEOUT: Duration = Duration::from_secs(25);

/// The way into a running daemon for the control socket and the signal handler.
#[derive(Clone)]
pub struct Inbox {
    events: SyncSender<Event>,
    urgent: Sender<Urgent>,
}

impl Inbox {
    pub(super) fn new(events: SyncSender<Event>, urgent: Sender<Urgent>) -> Inbox {
        Inbox { events, urgent }
    }

    fn post(&self, msg: Urgent) -> bool {
        if self.urgent.send(msg).is_err() {
            return false;
        }
        // Wake the loop if it sleeps; a full channel means it is busy and reads the
        // urgent channel at the end of its turn anyway.
        match self.events.try_send(Event::Wake) {
            Ok(()) | Err(TrySendError::Full(_)) => true,
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Sends a control request and waits for the answer.
    pub fn request(&self, request: Request) -> Envelope {
        let (reply_tx, reply_rx) = std::sync::mpsc::sync_channel(1);
        if !self.post(Urgent::Control {
            request,
            reply: reply_tx,
        }) {
            return Envelope::err("the daemon is shutting down");
        }
        reply_rx
            .recv_timeout(CONTROL_TIMEOUT)
            .unwrap_or_else(|_| Envelope::err("the daemon did not answer in time"))
    }

    /// Delivers a signal; false when the daemon is gone.
    pub fn signal(&self, kind: SignalKind) -> bool {
        self.post(Urgent::Signal(kind))
    }
}
