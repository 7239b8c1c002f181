//! Server settings (fail2ban's `Fail2banReader`). Owns reading the layered `fail2ban` config
//! (`fail2ban.conf` → `fail2ban.d/*.conf` → `fail2ban.local` → `fail2ban.d/*.local`) and its
//! `[Definition]` options (socket, pidfile, dbfile, dbpurgeage, loglevel, logtarget, ...), with
//! `[DEFAULT]` as fallback. Receives a tree; emits a `ServerSpec` (fields None when unset: the
//! daemon applies its own defaults).

use crate::budget::Budget;
use crate::duration::parse_duration;
use crate::error::{excerpt, ConfigError, Origin};
use crate::interp;
use crate::layered;
use crate::tree::ConfigTree;
use crate::Options;

/// Resolved server settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServerSpec {
    /// Control socket path.
    pub socket: Option<String>,
    /// PID file path.
    pub pidfile: Option<String>,
    /// Database file (`:memory:` / `None` disable persistence).
    pub dbfile: Option<String>,
    /// Seconds after which database entries are purged.
    pub dbpurgeage: Option<f64>,
    /// Log level name (CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG).
    pub loglevel: Option<String>,
    /// STDOUT, STDERR, SYSLOG, SYSTEMD-JOURNAL or a file.
    pub logtarget: Option<String>,
    /// Every resolved `[Definition]` option (own and DEFAULT), plus `thread.<opt>` for `[Thread]`.
    pub options: Options,
}

/// Read `fail2ban.conf` and friends. A tree with none of them yields an empty spec.
pub fn read_server(tree: &ConfigTree) -> Result<ServerSpec, ConfigError> {
    let budget = Budget::new();
    let Some(cfg) = layered::read(tree, "fail2ban", &budget)? else {
        return Ok(ServerSpec::default());
    };
    let empty = Options::new();
    let mut options = Options::new();
    let mut keys: Vec<String> = cfg.defaults.keys().cloned().collect();
    if let Some(s) = cfg.section("Definition") {
        keys.extend(s.options.keys().cloned());
    }
    if cfg.has_section("Definition") {
        for k in keys {
            if let Some(v) = interp::get(&cfg, "Definition", &k, &empty, &budget)? {
                options.insert(k, v);
            }
        }
    }
    if let Some(s) = cfg.section("Thread") {
        let keys: Vec<String> = s.options.keys().cloned().collect();
        for k in keys {
            if let Some(v) = interp::get(&cfg, "Thread", &k, &empty, &budget)? {
                options.insert(format!("thread.{k}"), v);
            }
        }
    }
    let dbpurgeage = match options.get("dbpurgeage") {
        None => None,
        Some(v) => Some(parse_duration(v).map_err(|e| {
            let origin = interp::get_raw(&cfg, "Definition", "dbpurgeage")
                .map(|(_, o)| o)
                .unwrap_or_else(|| Origin::new(tree.display("fail2ban.conf"), 0));
            ConfigError::value(
                &origin,
                format!("dbpurgeage: {}", e.message),
                format!("a duration such as `1d`, not {}", excerpt(v)),
            )
        })?),
    };
    Ok(ServerSpec {
        socket: options.get("socket").cloned(),
        pidfile: options.get("pidfile").cloned(),
        dbfile: options.get("dbfile").cloned(),
        dbpurgeage,
        loglevel: options.get("loglevel").cloned(),
        logtarget: options.get("logtarget").cloned(),
        options,
    })
}
