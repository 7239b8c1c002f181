//! Running one script (fail2ban's `Utils.executeCmd`). Owns the child process: started as
//! `SHELL -c SCRIPT sh ARG…` in a process group of its own, stdin from `/dev/null`, stdout
//! and stderr captured up to a bound; on timeout the whole group gets SIGTERM, then SIGKILL,
//! so a command that backgrounded helpers (`sleep 600 &`) leaves nothing behind. Receives
//! the shell argv, a [`Script`] and a timeout; emits [`Run`] (how it ended and what it
//! printed), or the spawn error.
//!
//! Three helper threads per run — one waits for the exit, two drain the pipes — because
//! std has no wait-with-timeout and a child blocked on a full pipe never exits. The
//! threads own nothing shared but the capture buffers.

use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, Pid, Signal};

use super::script::Script;

/// Bytes kept of each of stdout and stderr (the rest is read and dropped).
const CAPTURE_MAX: usize = 16 * 1024;
/// How long the group has between SIGTERM and SIGKILL (fail2ban waits about as long).
const TERM_GRACE: Duration = Duration::from_millis(500);
/// How long we wait for the exit after SIGKILL before giving up on the process.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// After the shell exits, how long its output may take to arrive. A helper it left in
/// the background may hold the pipes open for good; we do not wait for that.
const OUTPUT_GRACE: Duration = Duration::from_millis(200);

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal (not by us).
    Signaled(i32),
    /// Did not finish within the timeout; the process group was killed.
    TimedOut,
    /// Did not even die after SIGKILL (stuck in the kernel): abandoned.
    Unkillable,
}

/// What one run produced.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub ending: Ending,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub(crate) fn success(&self) -> bool {
        self.ending == Ending::Exited(0)
    }
}

/// Runs `script` with `shell` (`["/bin/sh"]`, or a wrapper such as `ip netns exec NS sh`).
pub(crate) fn run(shell: &[String], script: &Script, timeout: Duration) -> io::Result<Run> {
    let (program, pre) = shell
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty shell command"))?;
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(pre)
        .arg("-c")
        .arg(&script.text)
        // `$0`: the values start at `$1`.
        .arg("sh")
        .args(&script.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group (pgid = its pid): the timeout kills the whole tree, and a ^C on
        // the daemon's terminal does not reach it.
        .process_group(0)
        .spawn()?;
    let pid = Pid::from_child(&child);
    let out = Capture::spawn(child.stdout.take());
    let err = Capture::spawn(child.stderr.take());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // The receiver may be gone when we gave up on an unkillable child.
        let _ = tx.send(child.wait());
    });
    let ending = match rx.recv_timeout(timeout) {
        Ok(status) => ending_of(status?),
        Err(RecvTimeoutError::Disconnected) => Ending::Unkillable,
        Err(RecvTimeoutError::Timeout) => {
            signal_group(pid, Signal::TERM);
            let exited = rx.recv_timeout(TERM_GRACE).is_ok();
            // SIGKILL even when the shell left on SIGTERM: helpers it started may not have.
            signal_group(pid, Signal::KILL);
            if exited || rx.recv_timeout(KILL_GRACE).is_ok() {
                Ending::TimedOut
            } else {
                Ending::Unkillable
            }
        }
    };
    let deadline = Instant::now() + OUTPUT_GRACE;
    Ok(Run {
        ending,
        stdout: out.take(deadline),
        stderr: err.take(deadline),
        elapsed: started.elapsed(),
    })
}

/// Sends `signal` to the process group led by `pid`. The group outlives its leader while
/// any member lives, and its id cannot be reused meanwhile, so this is safe after the
/// shell was reaped. Errors (the group is already gone) are what we want anyway.
fn signal_group(pid: Pid, signal: Signal) {
    // Never signal "group 1": kill(-1) would mean every process we may signal.
    if pid.as_raw_nonzero().get() > 1 {
        let _ = kill_process_group(pid, signal);
    }
}

fn ending_of(status: ExitStatus) -> Ending {
    match (status.code(), status.signal()) {
        (Some(code), _) => Ending::Exited(code),
        (None, Some(sig)) => Ending::Signaled(sig),
        // Neither code nor signal cannot happen for a reaped child; report it as a failure.
        (None, None) => Ending::Exited(-1),
    }
}

/// One pipe being drained into a bounded buffer by its own thread.
struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Capture {
    fn spawn<R: Read + Send + 'static>(pipe: Option<R>) -> Capture {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        if let Some(mut pipe) = pipe {
            let buf = Arc::clone(&buf);
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut b) = buf.lock() {
                        let room = CAPTURE_MAX.saturating_sub(b.len());
                        b.extend_from_slice(&chunk[..n.min(room)]);
                    }
                }
                let _ = tx.send(());
            });
        }
        Capture { buf, done }
    }

    /// What was read by `deadline` (or by the end of the output, if sooner).
    fn take(self, deadline: Instant) -> String {
        let wait = deadline.saturating_duration_since(Instant::now());
        let _ = self.done.recv_timeout(wait);
        let bytes = match self.buf.lock() {
            Ok(mut b) => std::mem::take(&mut *b),
            Err(_) => Vec::new(),
        };
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
