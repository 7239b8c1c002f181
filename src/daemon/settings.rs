//! Server settings: `fail2ban.conf`/`.local` `[Definition]` as fail2ban reads them, each
//! overridden by its `banhammer run` flag. Receives the config tree and the flags; emits
//! [`Settings`] with every value checked (a bad one names the file or the flag).

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use banhammer_config::{ConfigTree, ServerSpec};

use crate::cli::run::RunArgs;
use crate::logging::{Level, Target};

/// Defaults when neither the config nor a flag says anything (our fail2ban.conf says the same).
const DEFAULT_SOCKET: &str = "/run/banhammer/banhammer.sock";
const DEFAULT_PIDFILE: &str = "/run/banhammer/banhammer.pid";
const DEFAULT_DBFILE: &str = "/var/lib/banhammer/banhammer.sqlite3";
const DEFAULT_PURGE_AGE: f64 = 86_400.0;
const DEFAULT_DB_MAX_MATCHES: usize = 10;

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
}

impl Settings {
    /// Reads the settings from the tree, then applies the flags.
    pub fn load(tree: &ConfigTree, args: &RunArgs) -> Result<Settings> {
        let spec = banhammer_config::read_server(tree).map_err(|e| anyhow!("{e}"))?;
        Settings::from_spec(&spec, args)
    }

    fn from_spec(spec: &ServerSpec, args: &RunArgs) -> Result<Settings> {
        let socket = args
            .location
            .socket
            .clone()
            .or_else(|| spec.socket.as_deref().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
        let pidfile = args
            .pidfile
            .clone()
            .or_else(|| spec.pidfile.as_deref().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PIDFILE));
        let db_text = args
            .db
            .clone()
            .or_else(|| spec.dbfile.clone())
            .unwrap_or_else(|| DEFAULT_DBFILE.to_string());
        let db = match db_text.trim() {
            ":memory:" => DbLocation::Memory,
            "None" | "none" | "" => DbLocation::Disabled,
            p => DbLocation::File(PathBuf::from(p)),
        };
        let level_text = args
            .log_level
            .clone()
            .or_else(|| spec.loglevel.clone())
            .unwrap_or_else(|| "INFO".to_string());
        let log_level: Level = level_text.parse().map_err(|e: String| {
            let from = if args.log_level.is_some() {
                "--log-level"
            } else {
                "fail2ban.conf loglevel"
            };
            anyhow!("{from}: {e}")
        })?;
        let target_text = args
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
        Ok(Settings {
            socket,
            pidfile,
            db,
            db_purge_age,
            db_max_matches,
            log_level,
            log_target,
            syslog_requested,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        run: RunArgs,
    }

    fn args(words: &[&str]) -> RunArgs {
        let mut all = vec!["banhammer"];
        all.extend_from_slice(words);
        Wrap::parse_from(all).run
    }

    #[test]
    fn flags_override_the_config() {
        let spec = ServerSpec {
            socket: Some("/tmp/conf.sock".into()),
            dbfile: Some("/tmp/conf.db".into()),
            loglevel: Some("DEBUG".into()),
            ..ServerSpec::default()
        };
        let s = Settings::from_spec(&spec, &args(&[])).unwrap();
        assert_eq!(s.socket, PathBuf::from("/tmp/conf.sock"));
        assert_eq!(s.db, DbLocation::File("/tmp/conf.db".into()));
        assert_eq!(s.log_level, Level::Debug);
        let s = Settings::from_spec(
            &spec,
            &args(&[
                "--socket",
                "/tmp/flag.sock",
                "--db",
                ":memory:",
                "--log-level",
                "notice",
            ]),
        )
        .unwrap();
        assert_eq!(s.socket, PathBuf::from("/tmp/flag.sock"));
        assert_eq!(s.db, DbLocation::Memory);
        assert_eq!(s.log_level, Level::Notice);
    }

    #[test]
    fn defaults_live_under_run_and_var_lib() {
        let s = Settings::from_spec(&ServerSpec::default(), &args(&[])).unwrap();
        assert_eq!(s.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(s.db, DbLocation::File(DEFAULT_DBFILE.into()));
        assert_eq!(s.db_max_matches, 10);
    }

    #[test]
    fn a_bad_level_names_its_origin() {
        let e = Settings::from_spec(&ServerSpec::default(), &args(&["--log-level", "loud"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--log-level") && e.contains("loud"), "{e}");
    }
}
