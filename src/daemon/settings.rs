//! Server settings: `fail2ban.conf`/`.local` `[Definition]` as fail2ban reads them, each
//! overridable by its `banhammer run` flag. Receives the resolved server spec and the
//! overrides (plain values: the command line is parsed elsewhere); emits [`Settings`] with
//! every value checked (a bad one names the file setting or the flag).

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use banhammer_config::{ConfigTree, ServerSpec};

use crate::logging::{Level, Target};

/// Defaults when neither the config nor a flag says anything (our fail2ban.conf says the same).
const DEFAULT_SOCKET: &str = "/run/banhammer/banhammer.sock";
const DEFAULT_PIDFILE: &str = "/run/banhammer/banhammer.pid";
const DEFAULT_DBFILE: &str = "/var/lib/banhammer/banhammer.sqlite3";
const DEFAULT_PURGE_AGE: f64 = 86_400.0;
const DEFAULT_DB_MAX_MATCHES: usize = 10;
/// Shortest prefixes banned without `--force`: a /16 of IPv4 is 65,536 addresses, a /32 of
/// IPv6 is what a regional registry hands an ISP. Anything wider (`0.0.0.0/0` above all,
/// which with a DROP blocktype locks every client out) is a mistake far more often than a
/// defence.
const DEFAULT_PREFIX_FLOOR_V4: u8 = 16;
const DEFAULT_PREFIX_FLOOR_V6: u8 = 32;
/// The group of the web server, which may write to banhammer's syslog socket.
pub const DEFAULT_WEB_GROUP: &str = "www-data";

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A file.
    File(PathBuf),
    /// `:memory:`: nothing survives a restart.
    Memory,
    /// `None`: no database (fail2ban's word); same as memory for us, but said in the log.
    Disabled,
}

/// Values given on the command line, each winning over its setting.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--socket`.
    pub socket: Option<PathBuf>,
    /// `--pidfile`.
    pub pidfile: Option<PathBuf>,
    /// `--db`.
    pub db: Option<String>,
    /// `--log-level`.
    pub log_level: Option<String>,
    /// `--log-target`.
    pub log_target: Option<String>,
}

/// The shortest prefix a ban may have, per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixFloor {
    /// IPv4 (`prefixfloor`).
    pub v4: u8,
    /// IPv6 (`prefixfloor6`).
    pub v6: u8,
}

impl Default for PrefixFloor {
    fn default() -> Self {
        PrefixFloor {
            v4: DEFAULT_PREFIX_FLOOR_V4,
            v6: DEFAULT_PREFIX_FLOOR_V6,
        }
    }
}

/// The daemon's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Control socket.
    pub socket: PathBuf,
    /// Pid file.
    pub pidfile: PathBuf,
    /// Database.
    pub db: DbLocation,
    /// History and expired bans older than this are purged (seconds).
    pub db_purge_age: f64,
    /// Matched lines kept per ban in the database.
    pub db_max_matches: usize,
    /// Log level.
    pub log_level: Level,
    /// Log target.
    pub log_target: Target,
    /// `logtarget = SYSLOG` was asked for (we log to stderr instead, and say so).
    pub syslog_requested: bool,
    /// Bans shorter than this prefix are refused (manual bans without `--force`).
    pub prefix_floor: PrefixFloor,
    /// The web server's group (`webgroup`): the group of the syslog socket.
    pub web_group: String,
    /// The config dir overlaying the embedded tree (`None`: embedded only).
    pub config_dir: Option<PathBuf>,
}

impl Settings {
    /// Reads the settings from the tree, then applies the overrides.
    pub fn load(tree: &ConfigTree, overrides: &Overrides) -> Result<Settings> {
        let spec = banhammer_config::read_server(tree).map_err(|e| anyhow!("{e}"))?;
        Settings::resolve(&spec, overrides, tree.overlay().map(PathBuf::from))
    }

    /// The settings of `spec` with `overrides` applied; `config_dir` is the overlay dir.
    pub fn resolve(
        spec: &ServerSpec,
        overrides: &Overrides,
        config_dir: Option<PathBuf>,
    ) -> Result<Settings> {
        let socket = overrides
            .socket
            .clone()
            .or_else(|| spec.socket.as_deref().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
        let pidfile = overrides
            .pidfile
            .clone()
            .or_else(|| spec.pidfile.as_deref().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PIDFILE));
        let db_text = overrides
            .db
            .clone()
            .or_else(|| spec.dbfile.clone())
            .unwrap_or_else(|| DEFAULT_DBFILE.to_string());
        let db = match db_text.trim() {
            ":memory:" => DbLocation::Memory,
            "None" | "none" | "" => DbLocation::Disabled,
            p => DbLocation::File(PathBuf::from(p)),
        };
        let level_text = overrides
            .log_level
            .clone()
            .or_else(|| spec.loglevel.clone())
            .unwrap_or_else(|| "INFO".to_string());
        let log_level: Level = level_text.parse().map_err(|e: String| {
            let from = if overrides.log_level.is_some() {
                "--log-level"
            } else {
                "fail2ban.conf loglevel"
            };
            anyhow!("{from}: {e}")
        })?;
        let target_text = overrides
            .log_target
            .clone()
            .or_else(|| spec.logtarget.clone())
            .unwrap_or_else(|| "STDERR".to_string());
        let syslog_requested = target_text.trim().eq_ignore_ascii_case("SYSLOG");
        let log_target = Target::parse(&target_text);
        let db_max_matches = match spec.options.get("dbmaxmatches") {
            None => DEFAULT_DB_MAX_MATCHES,
            Some(v) => v.trim().parse().map_err(|_| {
                anyhow!("fail2ban.conf dbmaxmatches: expected a whole number, not {v:?}")
            })?,
        };
        let db_purge_age = spec.dbpurgeage.unwrap_or(DEFAULT_PURGE_AGE);
        if db_purge_age <= 0.0 {
            bail!("fail2ban.conf dbpurgeage: expected a positive duration, not {db_purge_age}");
        }
        let prefix_floor = PrefixFloor {
            v4: prefix_setting(spec, "prefixfloor", DEFAULT_PREFIX_FLOOR_V4, 32)?,
            v6: prefix_setting(spec, "prefixfloor6", DEFAULT_PREFIX_FLOOR_V6, 128)?,
        };
        let web_group = match spec.options.get("webgroup").map(|g| g.trim()) {
            None | Some("") => DEFAULT_WEB_GROUP.to_string(),
            Some(g) if is_group_name(g) => g.to_string(),
            Some(g) => {
                bail!("fail2ban.conf webgroup: {g:?} is not a group name (expected e.g. www-data)")
            }
        };
        Ok(Settings {
            socket,
            pidfile,
            db,
            db_purge_age,
            db_max_matches,
            log_level,
            log_target,
            syslog_requested,
            prefix_floor,
            web_group,
            config_dir,
        })
    }
}

fn prefix_setting(spec: &ServerSpec, name: &str, default: u8, max: u8) -> Result<u8> {
    match spec.options.get(name).map(|v| v.trim()) {
        None | Some("") => Ok(default),
        Some(v) => v
            .trim_start_matches('/')
            .parse::<u8>()
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| {
                anyhow!("fail2ban.conf {name}: expected a prefix length 0..={max}, not {v:?}")
            }),
    }
}

/// A POSIX portable user/group name (what `groupadd` accepts by default).
fn is_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(spec: &ServerSpec, overrides: &Overrides) -> Result<Settings> {
        Settings::resolve(spec, overrides, None)
    }

    #[test]
    fn overrides_win_over_the_config() {
        let spec = ServerSpec {
            socket: Some("/tmp/conf.sock".into()),
            dbfile: Some("/tmp/conf.db".into()),
            loglevel: Some("DEBUG".into()),
            ..ServerSpec::default()
        };
        let s = resolve(&spec, &Overrides::default()).unwrap();
        assert_eq!(s.socket, PathBuf::from("/tmp/conf.sock"));
        assert_eq!(s.db, DbLocation::File("/tmp/conf.db".into()));
        assert_eq!(s.log_level, Level::Debug);
        let s = resolve(
            &spec,
            &Overrides {
                socket: Some("/tmp/flag.sock".into()),
                db: Some(":memory:".into()),
                log_level: Some("notice".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(s.socket, PathBuf::from("/tmp/flag.sock"));
        assert_eq!(s.db, DbLocation::Memory);
        assert_eq!(s.log_level, Level::Notice);
    }

    #[test]
    fn defaults_live_under_run_and_var_lib() {
        let s = resolve(&ServerSpec::default(), &Overrides::default()).unwrap();
        assert_eq!(s.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(s.db, DbLocation::File(DEFAULT_DBFILE.into()));
        assert_eq!(s.db_max_matches, 10);
        assert_eq!(s.prefix_floor, PrefixFloor { v4: 16, v6: 32 });
        assert_eq!(s.web_group, "www-data");
    }

    #[test]
    fn a_bad_level_names_its_origin() {
        let e = resolve(
            &ServerSpec::default(),
            &Overrides {
                log_level: Some("loud".into()),
                ..Overrides::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--log-level") && e.contains("loud"), "{e}");
    }

    #[test]
    fn prefix_floors_and_web_group_are_checked() {
        let mut spec = ServerSpec::default();
        spec.options.insert("prefixfloor".into(), "/24".into());
        spec.options.insert("prefixfloor6".into(), "48".into());
        spec.options.insert("webgroup".into(), "nginx".into());
        let s = resolve(&spec, &Overrides::default()).unwrap();
        assert_eq!(s.prefix_floor, PrefixFloor { v4: 24, v6: 48 });
        assert_eq!(s.web_group, "nginx");
        for (k, v) in [
            ("prefixfloor", "33"),
            ("prefixfloor6", "x"),
            ("webgroup", "www data"),
        ] {
            let mut spec = ServerSpec::default();
            spec.options.insert(k.into(), v.into());
            let e = resolve(&spec, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(k) && e.contains(v), "{e}");
        }
    }
}
