//! What belongs to the daemon's process rather than to its loop: the pid file, and the
//! signals, which become messages in the daemon's [`Inbox`].

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use super::event::{Inbox, SignalKind};

/// Signals become messages of the main loop, from a thread of their own.
pub fn forward_signals(inbox: Inbox) -> Result<()> {
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
                if !inbox.signal(kind) {
                    break;
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// The pid file: written at start, removed at exit; refuses to start over a live daemon.
pub struct PidFile(PathBuf);

impl PidFile {
    /// Writes our pid to `path` (creating its directory), unless a live banhammer's pid is
    /// there already.
    pub fn create(path: &Path) -> Result<PidFile> {
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
