//! Starting a jail's source: log files, the journal, or banhammer's syslog socket.
//! Receives the jail's source plan, its stored positions and the channel to its reader;
//! emits a running [`SourceRuntime`].
//!
//! Several jails often read one syslog socket (the WordPress jails): the [`SyslogHub`]
//! runs one listener per socket/address and copies every record to each jail using it.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use banhammer_config::JailSpec;
use banhammer_store::Checkpoint;

use super::firewall::unix_now;
use super::plan::SourcePlan;
use crate::metrics::Metrics;
use crate::source::journal::{self, JournalHandle, JournalOptions, JournalStart};
use crate::source::syslog::{self, SyslogHandle, SyslogListen};
use crate::source::{self, SourceEvent, SourceHandle};

/// Records waiting between a shared syslog listener and its fan-out.
const SYSLOG_QUEUE: usize = 1024;

/// A running source.
pub enum SourceRuntime {
    /// Log files.
    Files(SourceHandle),
    /// The journal.
    Journal(JournalHandle),
    /// A subscription to a shared syslog listener.
    Syslog {
        /// The listener's key in the hub.
        key: String,
        /// The subscribing jail.
        jail: String,
    },
}

impl SourceRuntime {
    /// The counts of a file or journal source (a syslog listener's are its hub's).
    pub fn stats(&self) -> Option<Arc<crate::source::SourceStats>> {
        match self {
            SourceRuntime::Files(h) => Some(h.stats()),
            SourceRuntime::Journal(h) => Some(h.stats()),
            SourceRuntime::Syslog { .. } => None,
        }
    }

    /// Stops it without waiting: what may wait (files and the journal send their last
    /// positions first; a listener's threads end) runs on the returned thread. The
    /// jail's reader ends once the source has let go of its channel.
    pub fn stop_detached(self, hub: &mut SyslogHub) -> io::Result<Option<JoinHandle<()>>> {
        let stop: Box<dyn FnOnce() + Send> = match self {
            SourceRuntime::Files(h) => Box::new(move || h.stop()),
            SourceRuntime::Journal(h) => Box::new(move || h.stop()),
            SourceRuntime::Syslog { key, jail } => match hub.unsubscribe(&key, &jail) {
                Some(listener) => Box::new(move || listener.stop()),
                None => return Ok(None),
            },
        };
        std::thread::Builder::new()
            .name("source-stop".into())
            .spawn(stop)
            .map(Some)
    }
}

/// Starts the source of jail `spec`.
pub fn start(
    hub: &mut SyslogHub,
    plan: &SourcePlan,
    spec: &JailSpec,
    checkpoints: HashMap<String, Checkpoint>,
    sink: SyncSender<SourceEvent>,
) -> io::Result<SourceRuntime> {
    match plan {
        SourcePlan::Files { paths, backend } => {
            let lookup = move |path: &str| checkpoints.get(path).cloned();
            let h = source::spawn(paths.clone(), *backend, lookup, sink)?;
            Ok(SourceRuntime::Files(h))
        }
        SourcePlan::Journal { backend, matches } => {
            let opts = JournalOptions::from_backend(backend, &matches.join("\n"))
                .map_err(io::Error::other)?;
            // fail2ban's start: where it stopped, else findtime back from now.
            let start = match checkpoints.get(journal::CHECKPOINT_PATH) {
                Some(cp) if !cp.fingerprint.is_empty() => {
                    JournalStart::Cursor(cp.fingerprint.clone())
                }
                _ => JournalStart::Since(unix_now() - spec.findtime),
            };
            Ok(SourceRuntime::Journal(journal::spawn_journal(
                opts, start, sink,
            )?))
        }
        SourcePlan::Syslog { listen, .. } => {
            let key = hub.subscribe(listen, &spec.name, sink)?;
            Ok(SourceRuntime::Syslog {
                key,
                jail: spec.name.clone(),
            })
        }
    }
}

type Subscribers = Arc<Mutex<BTreeMap<String, SyncSender<SourceEvent>>>>;

struct SharedListener {
    handle: SyslogHandle,
    subscribers: Subscribers,
    fanout: JoinHandle<()>,
}

/// The daemon's syslog listeners, one per socket path / UDP address, shared by jails.
#[derive(Default)]
pub struct SyslogHub {
    listeners: HashMap<String, SharedListener>,
    metrics: Option<Arc<Metrics>>,
}

/// The listener's counts as `banhammer_syslog_datagrams_total{listener, outcome}`.
fn register_syslog(m: &Metrics, listen: &SyslogListen, handle: &SyslogHandle) {
    let name = match (&listen.socket, &listen.udp) {
        (Some(p), _) => p.display().to_string(),
        (None, Some(a)) => format!("udp:{a}"),
        (None, None) => "syslog".to_string(),
    };
    let stats = handle.stats();
    type Pick = fn(&syslog::SyslogStats) -> &std::sync::atomic::AtomicU64;
    let outcomes: [(&str, Pick); 6] = [
        ("accepted", |s| &s.accepted),
        ("denied", |s| &s.denied),
        ("rate_limited", |s| &s.rate_limited),
        ("oversized", |s| &s.oversized),
        ("filtered", |s| &s.filtered),
        ("kernel_dropped", |s| &s.kernel_drops),
    ];
    for (outcome, pick) in outcomes {
        let stats = Arc::clone(&stats);
        m.register(
            "banhammer_syslog_datagrams_total",
            "counter",
            "Datagrams of a syslog listener by outcome: accepted, or dropped (denied: sender not allowed; rate_limited; oversized: never cut; kernel_dropped: receive queue full), or filtered by facility.",
            &[("listener", &name), ("outcome", outcome)],
            Box::new(move || pick(&stats).load(std::sync::atomic::Ordering::Relaxed)),
        );
    }
}

impl SyslogHub {
    /// No listener yet; their counts go to `metrics`.
    pub fn new(metrics: Option<Arc<Metrics>>) -> SyslogHub {
        SyslogHub {
            listeners: HashMap::new(),
            metrics,
        }
    }

    /// Adds `jail` as a reader of `listen` (starting the listener if it is the first).
    /// The listener's options (mode, facilities) are those of its first jail.
    fn subscribe(
        &mut self,
        listen: &SyslogListen,
        jail: &str,
        sink: SyncSender<SourceEvent>,
    ) -> io::Result<String> {
        let key = format!("{:?}|{:?}", listen.socket, listen.udp);
        if let Some(l) = self.listeners.get(&key) {
            if let Ok(mut subs) = l.subscribers.lock() {
                subs.insert(jail.to_string(), sink);
            }
            return Ok(key);
        }
        let (tx, rx) = sync_channel::<SourceEvent>(SYSLOG_QUEUE);
        let handle = syslog::spawn_syslog(listen.clone(), tx)?;
        if let Some(m) = &self.metrics {
            register_syslog(m, listen, &handle);
        }
        let subscribers: Subscribers = Arc::new(Mutex::new(BTreeMap::new()));
        if let Ok(mut subs) = subscribers.lock() {
            subs.insert(jail.to_string(), sink);
        }
        let subs = subscribers.clone();
        let fanout = std::thread::Builder::new()
            .name("syslog-fanout".into())
            .spawn(move || {
                for ev in rx {
                    let targets: Vec<SyncSender<SourceEvent>> = match subs.lock() {
                        Ok(s) => s.values().cloned().collect(),
                        Err(_) => break,
                    };
                    for t in targets {
                        // A jail being stopped may have dropped its reader already.
                        let _ = t.send(ev.clone());
                    }
                }
            })?;
        self.listeners.insert(
            key.clone(),
            SharedListener {
                handle,
                subscribers,
                fanout,
            },
        );
        Ok(key)
    }

    /// Removes `jail` from a listener; the last one out gets the listener back, to stop.
    fn unsubscribe(&mut self, key: &str, jail: &str) -> Option<StoppingListener> {
        let empty = match self.listeners.get(key) {
            Some(l) => l
                .subscribers
                .lock()
                .map(|mut s| {
                    s.remove(jail);
                    s.is_empty()
                })
                .unwrap_or(true),
            None => return None,
        };
        if !empty {
            return None;
        }
        self.listeners.remove(key).map(StoppingListener)
    }
}

/// A listener no jail reads any more.
pub struct StoppingListener(SharedListener);

impl StoppingListener {
    /// Stops its threads and waits for them.
    fn stop(self) {
        self.0.handle.stop();
        let _ = self.0.fanout.join();
    }
}
