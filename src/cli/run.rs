//! `banhammer run`: the daemon in the foreground. Turns flags and files into what the
//! daemon runs on — settings, compiled plans, the store, the firewall, the metrics — then
//! binds the control socket and the signals to the daemon's inbox, and runs it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _, Result};
use banhammer_config::ConfigTree;
use clap::Args;

use crate::action::nftables::NftBackend;
use crate::control::server::ControlServer;
use crate::daemon::firewall::Clock;
use crate::daemon::plan::{self, PlanOptions};
use crate::daemon::process::{forward_signals, PidFile};
use crate::daemon::settings::Overrides;
use crate::daemon::{database, Daemon, Parts, Settings, NFT_TABLE};
use crate::embedded::EMBEDDED_CONFIG;
use crate::metrics::Metrics;
use crate::{info, warning};

/// Flags of `banhammer run`; each overrides the same setting of `fail2ban.conf`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub location: super::DaemonLocation,
    /// Pid file (fail2ban.conf `pidfile`).
    #[arg(short = 'p', long, value_name = "PATH")]
    pub pidfile: Option<PathBuf>,
    /// SQLite database (fail2ban.conf `dbfile`); `:memory:` keeps it in memory.
    #[arg(long = "db", value_name = "PATH")]
    pub db: Option<String>,
    /// When the database is damaged (or an empty file), move it aside and start a new
    /// one; the bans still in the kernel's nftables sets are adopted.
    #[arg(long = "db-recover")]
    pub db_recover: bool,
    /// CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG or TRACE (fail2ban.conf `loglevel`).
    #[arg(long = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// STDERR, STDOUT or a file (fail2ban.conf `logtarget`).
    #[arg(long = "log-target", value_name = "TARGET")]
    pub log_target: Option<String>,
    /// Serve Prometheus metrics on this loopback address (e.g. 127.0.0.1:9191).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Read and match, but change no firewall and run no action (every action acts as
    /// `dummy`).
    #[arg(long)]
    pub dry_run: bool,
}

impl RunArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            socket: self.location.socket.clone(),
            pidfile: self.pidfile.clone(),
            db: self.db.clone(),
            log_level: self.log_level.clone(),
            log_target: self.log_target.clone(),
        }
    }
}

/// The config tree a daemon started with `--config-dir DIR` reads: the embedded tree,
/// overlaid by DIR when it exists (a missing default dir means "embedded config only", as
/// on a fresh machine; a missing dir named on the command line is an error).
pub fn config_tree(config_dir: &Path) -> Result<ConfigTree> {
    let is_default = config_dir == Path::new("/etc/banhammer");
    if !config_dir.is_dir() && !is_default {
        bail!(
            "{}: not a directory (expected a config directory)",
            config_dir.display()
        );
    }
    let overlay = config_dir.is_dir().then(|| config_dir.to_path_buf());
    Ok(ConfigTree::new(EMBEDDED_CONFIG, overlay))
}

pub fn run(args: RunArgs) -> Result<()> {
    let tree = config_tree(&args.location.config_dir)?;
    let settings = Settings::load(&tree, &args.overrides())?;
    crate::logging::set_level(settings.log_level);
    crate::logging::set_target(&settings.log_target)
        .with_context(|| format!("logtarget {:?}: cannot open it", settings.log_target))?;
    // From here on the daemon never waits for its log sink.
    crate::logging::start_writer().context("starting the log writer")?;
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
    let plan_opts = PlanOptions {
        dry_run: args.dry_run,
        journal_available: crate::source::journal::journal_available(),
        web_group: Some(settings.web_group.clone()),
    };
    let plans = plan::plan_all(&tree, &plan_opts)?;
    if plans.is_empty() {
        warning!(
            "server",
            "no enabled jail: nothing to watch (enable one in jail.local)"
        );
    }
    let store = database::open(&settings.db, args.db_recover)?;
    let (metrics, _metrics_server) = match &args.metrics {
        None => (None, None),
        Some(addr) => {
            let m = Arc::new(Metrics::new());
            let server = crate::metrics::serve(addr, m.clone())
                .with_context(|| format!("--metrics {addr}"))?;
            register_server(&m, "metrics", server.stats_reader());
            m.register(
                "banhammer_log_lines_dropped_total",
                "counter",
                "Log lines dropped because the log sink did not keep up (the daemon never waits for it).",
                &[],
                Box::new(crate::logging::dropped),
            );
            info!("server", "metrics on http://{addr}/metrics");
            (Some(m), Some(server))
        }
    };
    let firewall =
        NftBackend::new(Path::new("nft"), NFT_TABLE).map_err(|e| anyhow!("nftables: {e}"))?;
    let _pidfile = PidFile::create(&settings.pidfile)?;
    let socket = settings.socket.clone();
    let parts = Parts {
        store,
        firewall: Box::new(firewall),
        clock: Clock::system(),
        metrics: metrics.clone(),
    };
    let mut daemon = Daemon::start(settings, plan_opts, parts, plans)?;
    let inbox = daemon.inbox();
    let control = ControlServer::bind(&socket, Arc::new(move |req| inbox.request(req)))
        .map_err(|e| anyhow!("control socket {}: {e}", socket.display()));
    let control = match control {
        Ok(c) => c,
        Err(e) => {
            daemon.shutdown();
            return Err(e);
        }
    };
    if let Some(m) = &metrics {
        register_server(m, "control", control.stats_reader());
    }
    if let Err(e) = forward_signals(daemon.inbox()) {
        drop(control);
        daemon.shutdown();
        return Err(e);
    }
    daemon.run();
    info!("server", "Shutting down");
    drop(control);
    daemon.shutdown();
    info!("server", "Exiting banhammer");
    crate::logging::flush();
    Ok(())
}

/// A server's connection counts as `banhammer_server_connections_total{server, outcome}`.
fn register_server(m: &Metrics, server: &str, stats: crate::pollserver::StatsReader) {
    type Pick = fn(&crate::pollserver::ServerStats) -> u64;
    let outcomes: [(&str, Pick); 5] = [
        ("accepted", |s| s.accepted),
        ("evicted", |s| s.evicted),
        ("refused", |s| s.refused),
        ("timed_out", |s| s.timed_out),
        ("too_long", |s| s.too_long),
    ];
    for (outcome, pick) in outcomes {
        let stats = stats.clone();
        m.register(
            "banhammer_server_connections_total",
            "counter",
            "Connections of the control socket and the metrics endpoint: accepted, and closed or refused (evicted: idlest closed to make room; refused: all busy; timed_out: too slow; too_long: request over the size limit).",
            &[("server", server), ("outcome", outcome)],
            Box::new(move || pick(&stats.read())),
        );
    }
}
