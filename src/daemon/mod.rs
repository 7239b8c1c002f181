//! The daemon (`banhammer run`): reads the configuration, starts every enabled jail,
//! restores the stored bans, answers the control socket and signals, and shuts down in
//! reverse order of the data flow.
//!
//! Threads: one per jail source (tailing), one per jail reader (matching), one per
//! command action (its queue keeps per-address order), the control socket's, the signal
//! listener, and the main loop ([`engine`]) that owns every jail's state, the nftables
//! backend and the store. They talk through channels only.

pub mod commands;
pub mod control;
pub mod engine;
pub mod event;
pub mod firewall;
pub mod ignorecmd;
pub mod jails;
pub mod plan;
pub mod reader;
pub mod reload;
pub mod selfaddrs;
pub mod settings;
pub mod sources;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use banhammer_config::ConfigTree;
use banhammer_store::Store;

use crate::cli::run::RunArgs;
use crate::control::protocol::{Envelope, Request};
use crate::control::server::ControlServer;
use crate::embedded::EMBEDDED_CONFIG;
use crate::metrics::Metrics;
use crate::{error, info, warning};
use engine::Engine;
use event::{Event, SignalKind};
use plan::PlanOptions;
use settings::{DbLocation, Settings};

/// Our nftables table (`inet banhammer`).
pub const NFT_TABLE: &str = "banhammer";

/// Events waiting for the main loop at most (readers wait when it is full). The channel
/// allocates all its slots up front (~100 bytes each), so this is idle memory too.
const EVENT_QUEUE: usize = 4096;

/// How long a control request waits for the main loop.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

/// What every room of the daemon may read.
pub struct Context {
    /// Server settings.
    pub settings: Settings,
    /// The config dir overlaying the embedded tree.
    pub config_dir: PathBuf,
    /// Options of jail plans.
    pub plan_opts: PlanOptions,
    /// Prometheus counters, when served.
    pub metrics: Option<Arc<Metrics>>,
    /// The clock decisions are made by.
    pub clock: firewall::Clock,
}

impl Context {
    /// The config dir to overlay on the embedded tree, if it exists (a missing default
    /// dir means "embedded config only", as on a fresh machine).
    pub fn overlay(&self) -> Option<PathBuf> {
        overlay_of(&self.config_dir)
    }
}

fn overlay_of(config_dir: &Path) -> Option<PathBuf> {
    config_dir.is_dir().then(|| config_dir.to_path_buf())
}

/// `banhammer run`.
pub fn run(args: RunArgs) -> Result<()> {
    if !args.location.config_dir.is_dir() && args.location.config_dir != Path::new("/etc/banhammer")
    {
        bail!(
            "{}: not a directory (expected a config directory)",
            args.location.config_dir.display()
        );
    }
    // A missing default dir means "embedded config only", as on a fresh machine.
    let overlay = overlay_of(&args.location.config_dir);
    let tree = ConfigTree::new(EMBEDDED_CONFIG, overlay.clone());
    let settings = Settings::load(&tree, &args)?;
    crate::logging::set_level(settings.log_level);
    crate::logging::set_target(&settings.log_target)
        .with_context(|| format!("logtarget {:?}: cannot open it", settings.log_target))?;
    if settings.syslog_requested {
        warning!(
            "server",
            "logtarget = SYSLOG is not supported; logging to stderr"
        );
    }
    info!(
        "server",
        "Starting {} (config dir {})",
        banhammer_config::VERSION,
        args.location.config_dir.display()
    );
    let cfg = banhammer_config::read_jails(&tree).map_err(|e| anyhow!("{e}"))?;
    for w in &cfg.warnings {
        warning!("config", "{}: {}", w.origin, w.message);
    }
    let plan_opts = PlanOptions {
        dry_run: args.dry_run,
        journal_available: crate::source::journal::journal_available(),
    };
    let now = reader::unix_now();
    let mut plans = Vec::new();
    for spec in cfg.jails.iter().filter(|j| j.enabled) {
        plans.push(plan::plan(spec, overlay.as_deref(), plan_opts, now)?);
    }
    if plans.is_empty() {
        warning!(
            "server",
            "no enabled jail: nothing to watch (enable one in jail.local)"
        );
    }
    let store = open_store(&settings.db)?;
    let metrics = match &args.metrics {
        None => None,
        Some(addr) => {
            let m = Arc::new(Metrics::new());
            crate::metrics::serve(addr, m.clone()).with_context(|| format!("--metrics {addr}"))?;
            info!("server", "metrics on http://{addr}/metrics");
            Some(m)
        }
    };
    let pidfile = PidFile::create(&settings.pidfile)?;
    let (tx, rx) = sync_channel::<Event>(EVENT_QUEUE);
    let control = start_control(&settings.socket, tx.clone())?;
    start_signals(tx.clone())?;
    let ctx = Context {
        settings,
        config_dir: args.location.config_dir.clone(),
        plan_opts,
        metrics,
        clock: firewall::Clock::system(),
    };
    let mut engine = Engine::new(ctx, store, tx, rx);
    for p in plans {
        let name = p.spec.name.clone();
        if let Err(e) = engine.start_jail(p, Vec::new()) {
            error!("server", "{e:#}");
            engine.shutdown();
            return Err(e.context(format!("jail [{name}] did not start")));
        }
    }
    engine.restore(None);
    info!("server", "Server ready: {} jail(s)", engine.jails.len());
    engine.run();
    info!("server", "Shutting down");
    drop(control);
    engine.shutdown();
    drop(pidfile);
    info!("server", "Exiting banhammer");
    Ok(())
}

fn open_store(db: &DbLocation) -> Result<Store> {
    match db {
        DbLocation::File(p) => {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("dbfile {}: creating its directory", p.display()))?;
            }
            Store::open(p).map_err(|e| anyhow!("dbfile {}: {e}", p.display()))
        }
        DbLocation::Memory => Store::open_in_memory().map_err(|e| anyhow!("dbfile :memory:: {e}")),
        DbLocation::Disabled => {
            warning!(
                "server",
                "dbfile = None: bans and file positions will not survive a restart"
            );
            Store::open_in_memory().map_err(|e| anyhow!("in-memory database: {e}"))
        }
    }
}

/// The control socket: each request is handed to the main loop, which answers.
fn start_control(path: &Path, tx: SyncSender<Event>) -> Result<ControlServer> {
    let handler = move |request: Request| -> Envelope {
        let (reply_tx, reply_rx) = sync_channel(1);
        if tx
            .send(Event::Control {
                request,
                reply: reply_tx,
            })
            .is_err()
        {
            return Envelope::err("the daemon is shutting down");
        }
        reply_rx
            .recv_timeout(CONTROL_TIMEOUT)
            .unwrap_or_else(|_| Envelope::err("the daemon did not answer in time"))
    };
    ControlServer::bind(path, Arc::new(handler))
        .map_err(|e| anyhow!("control socket {}: {e}", path.display()))
}

/// Signals become events of the main loop.
fn start_signals(tx: SyncSender<Event>) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM, SIGUSR1])
        .context("installing signal handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let kind = match sig {
                    SIGHUP => SignalKind::Reload,
                    SIGUSR1 => SignalKind::ReopenLog,
                    _ => SignalKind::Stop,
                };
                if tx.send(Event::Signal(kind)).is_err() {
                    break;
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// The pid file: written at start, removed at exit; refuses to start over a live daemon.
struct PidFile(PathBuf);

impl PidFile {
    fn create(path: &Path) -> Result<PidFile> {
        if let Ok(old) = std::fs::read_to_string(path) {
            if let Ok(pid) = old.trim().parse::<u32>() {
                if pid != std::process::id() && is_live_banhammer(pid) {
                    bail!(
                        "pidfile {}: banhammer is already running as pid {pid}",
                        path.display()
                    );
                }
            }
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("pidfile {}: creating its directory", path.display()))?;
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("pidfile {}: cannot write it", path.display()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

/// Whether `pid` is a running (not zombie) banhammer process.
fn is_live_banhammer(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state …`: comm may hold spaces and parentheses; the state follows the
    // last `)`.
    let Some((head, tail)) = stat.rsplit_once(')') else {
        return false;
    };
    let comm = head.split_once('(').map_or("", |(_, c)| c);
    let state = tail.split_whitespace().next().unwrap_or("");
    comm == "banhammer" && state != "Z" && state != "X"
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests;
