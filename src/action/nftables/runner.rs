//! Running nft: one long-lived `nft -i` session (the default), or one `nft -f -` process
//! per transaction, plus one-shot `nft -j list …` queries. Receives command lists built by
//! `script`, emits success or nft's own error text. Argument lists only, never a shell.
//!
//! How the session works (measured on nft 1.0.6): with stdin not a terminal, `nft -i`
//! reads one line at a time and runs each line as ONE transaction (`cmd; cmd; cmd` on one
//! line commits all or nothing), prints nothing for a successful `add`/`delete`, and
//! prints errors to stderr. Its stdout and stderr share one socket here, so what it writes
//! arrives in order; after each transaction we send `describe ip saddr`, which needs no
//! kernel access and prints a fixed line (learned once at spawn). Everything read before
//! that line is the transaction's error text; nothing means success. A session that dies,
//! or does not answer in time, is killed and respawned on the next call.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::NftError;

/// The command after each transaction whose known output marks its end.
const SENTINEL_COMMAND: &str = "describe ip saddr";

/// Script size above which a transaction goes to `nft -f -` even in interactive mode.
const LARGE_BATCH: usize = 8 * 1024;

/// How transactions reach the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NftMode {
    /// One long-lived `nft -i`, one line per transaction (≈0.35 ms for one new ban);
    /// batches above 8 KiB of script go to `nft -f -`, faster for them.
    Interactive,
    /// One `nft -f -` process per transaction (≈4–7 ms for one ban here).
    PerBatch,
}

pub(crate) struct Runner {
    argv: Vec<String>,
    mode: NftMode,
    session: Option<Session>,
    pub(crate) timeout: Duration,
}

impl Runner {
    pub(crate) fn new(argv: Vec<String>, mode: NftMode) -> Runner {
        Runner {
            argv,
            mode,
            session: None,
            timeout: Duration::from_secs(10),
        }
    }

    pub(crate) fn mode(&self) -> NftMode {
        self.mode
    }

    pub(crate) fn set_mode(&mut self, mode: NftMode) {
        self.mode = mode;
        self.session = None;
    }

    fn display(&self, extra: &str) -> String {
        format!("{} {extra}", self.argv.join(" "))
    }

    /// Time allowed for one transaction: the base plus 1 s per 100 kB of script.
    fn deadline(&self, script_len: usize) -> Duration {
        self.timeout + Duration::from_millis(script_len as u64 / 100)
    }

    /// Run `commands` as one transaction.
    pub(crate) fn run(&mut self, commands: &[String]) -> Result<(), NftError> {
        if commands.is_empty() {
            return Ok(());
        }
        let size: usize = commands.iter().map(|c| c.len() + 2).sum();
        match self.mode {
            // nft -i reads a long line slowly (≈1 µs per character: 1,000 new bans take
            // ≈20 ms, against ≈10 ms for a `nft -f -` process); above this size (≈300
            // bans) a process per batch is the faster transaction.
            NftMode::Interactive if size <= LARGE_BATCH => {
                let line = commands.join("; ");
                let deadline = self.deadline(line.len());
                let argv = self.display("-i");
                let session = match self.session() {
                    Ok(session) => session,
                    Err(e @ NftError::Spawn { .. }) => return Err(e),
                    Err(_) => {
                        // nft runs but `-i` does not work as we need (built without
                        // line editing, or answers differently): one process per batch.
                        self.mode = NftMode::PerBatch;
                        return self.run(commands);
                    }
                };
                let result = session.transaction(&line, deadline);
                match result {
                    Ok(text) if text.is_empty() => Ok(()),
                    Ok(text) => Err(NftError::Nft {
                        command: argv,
                        message: text,
                    }),
                    Err(e) => {
                        // Unknown state: drop the session (kills it), respawn next time.
                        self.session = None;
                        Err(e)
                    }
                }
            }
            NftMode::Interactive | NftMode::PerBatch => {
                let mut script = commands.join("\n");
                script.push('\n');
                self.one_shot(&["-f", "-"], Some(script.as_bytes()))
                    .map(|_| ())
            }
        }
    }

    /// Run each group as its own transaction (the fallback after a failed batch, so the
    /// groups that can succeed do). One result per group.
    pub(crate) fn run_each(&mut self, groups: &[Vec<String>]) -> Vec<Result<(), NftError>> {
        groups.iter().map(|g| self.run(g)).collect()
    }

    /// `nft -j ARGS…` (one process), its stdout parsed as JSON.
    pub(crate) fn query_json(&self, args: &[&str]) -> Result<serde_json::Value, NftError> {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        let out = self.one_shot(&all, None)?;
        serde_json::from_slice(&out).map_err(|e| NftError::Output {
            command: self.display(&all.join(" ")),
            message: e.to_string(),
        })
    }

    /// One nft process: feed `stdin`, wait (bounded), return stdout; a non-zero exit is
    /// an error carrying stderr.
    fn one_shot(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, NftError> {
        let shown = self.display(&args.join(" "));
        let (program, rest) = split_argv(&self.argv)?;
        let mut child = Command::new(program)
            .args(rest)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| NftError::Spawn {
                command: shown.clone(),
                source,
            })?;
        let io_err = |source| NftError::Io {
            command: shown.clone(),
            source,
        };
        // Readers on their own threads: nft may write while we still feed it, and the
        // end of both streams is how we learn, with a timeout, that it has exited.
        let (tx, rx) = mpsc::channel();
        for (i, stream) in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(mut stream) = stream {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let _ = stream.read_to_end(&mut buf);
                    let _ = tx.send((i, buf));
                });
            }
        }
        drop(tx);
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            if let Err(e) = pipe.write_all(input) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io_err(e));
            }
        }
        let deadline = Instant::now() + self.deadline(stdin.map_or(0, <[u8]>::len));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((0, buf)) => out = buf,
                Ok((_, buf)) => err = buf,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(NftError::Timeout {
                        command: shown,
                        after: self.deadline(stdin.map_or(0, <[u8]>::len)),
                    });
                }
            }
        }
        let status = child.wait().map_err(io_err)?;
        if status.success() {
            Ok(out)
        } else {
            Err(NftError::Nft {
                command: shown,
                message: summarize_errors(
                    &String::from_utf8_lossy(&err).lines().collect::<Vec<_>>(),
                ),
            })
        }
    }

    fn session(&mut self) -> Result<&mut Session, NftError> {
        if self.session.is_none() {
            self.session = Some(Session::spawn(&self.argv, self.timeout)?);
        }
        let command = self.display("-i");
        self.session.as_mut().ok_or(NftError::Exited { command })
    }
}

fn split_argv(argv: &[String]) -> Result<(&String, &[String]), NftError> {
    argv.split_first().ok_or(NftError::Invalid {
        what: "nft command",
        value: String::new(),
        expected: "a program and its arguments",
    })
}

/// A running `nft -i` and the lines it writes (stdout and stderr, in order).
struct Session {
    command: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// What `describe ip saddr` prints (one line), learned at spawn.
    sentinel: String,
}

impl Session {
    fn spawn(argv: &[String], timeout: Duration) -> Result<Session, NftError> {
        let command = format!("{} -i", argv.join(" "));
        let io_err = |source| NftError::Io {
            command: command.clone(),
            source,
        };
        let (ours, theirs) = UnixStream::pair().map_err(io_err)?;
        let theirs_err = theirs.try_clone().map_err(io_err)?;
        let (program, rest) = split_argv(argv)?;
        // The Command (holding the child's ends of the socket) is dropped right after the
        // spawn, so our reader sees end-of-file when nft exits.
        let mut child = Command::new(program)
            .args(rest)
            .arg("-i")
            .stdin(Stdio::piped())
            .stdout(Stdio::from(OwnedFd::from(theirs)))
            .stderr(Stdio::from(OwnedFd::from(theirs_err)))
            .spawn()
            .map_err(|source| NftError::Spawn {
                command: command.clone(),
                source,
            })?;
        let Some(stdin) = child.stdin.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(NftError::Exited { command });
        };
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(ours).lines() {
                match line {
                    Ok(line) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        let mut session = Session {
            command,
            child,
            stdin,
            lines,
            sentinel: String::new(),
        };
        // Learn the sentinel line: the only output of the sentinel command, alone.
        session.send(&format!("{SENTINEL_COMMAND}\n"))?;
        let first = session.recv(Instant::now() + timeout)?;
        if first.is_empty() || first.starts_with("Error") {
            return Err(NftError::Output {
                command: session.command.clone(),
                message: format!("unexpected answer to `{SENTINEL_COMMAND}`: {first}"),
            });
        }
        session.sentinel = first;
        Ok(session)
    }

    fn send(&mut self, text: &str) -> Result<(), NftError> {
        self.stdin
            .write_all(text.as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|source| NftError::Io {
                command: self.command.clone(),
                source,
            })
    }

    fn recv(&mut self, deadline: Instant) -> Result<String, NftError> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.lines.recv_timeout(left).map_err(|e| match e {
            RecvTimeoutError::Timeout => NftError::Timeout {
                command: self.command.clone(),
                after: left,
            },
            RecvTimeoutError::Disconnected => NftError::Exited {
                command: self.command.clone(),
            },
        })
    }

    /// One transaction: the line, then the sentinel; returns what nft printed in between
    /// (empty on success).
    fn transaction(&mut self, line: &str, timeout: Duration) -> Result<String, NftError> {
        debug_assert!(!line.contains('\n'));
        let deadline = Instant::now() + timeout;
        let mut text = String::with_capacity(line.len() + SENTINEL_COMMAND.len() + 2);
        text.push_str(line);
        text.push('\n');
        text.push_str(SENTINEL_COMMAND);
        text.push('\n');
        self.send(&text)?;
        let mut raw = Vec::new();
        loop {
            let got = self.recv(deadline)?;
            if got == self.sentinel {
                return Ok(summarize_errors(&raw));
            }
            raw.push(got);
        }
    }
}

/// nft's error report, made short: each `Error:` line, with the part of the (possibly
/// megabyte-long) echoed command that nft marks with `^^^` under it.
pub(crate) fn summarize_errors<S: AsRef<str>>(lines: &[S]) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let line = line.as_ref();
        if line.trim().is_empty() {
            continue;
        }
        let is_marker =
            !line.trim().is_empty() && line.bytes().all(|b| b == b' ' || b == b'^' || b == b'~');
        if is_marker {
            if let Some(prev) = i.checked_sub(1).and_then(|j| lines.get(j)) {
                let prev = prev.as_ref();
                let start = line.find(['^', '~']).unwrap_or(0);
                let end = line.trim_end().len();
                if let Some(marked) = prev.get(start..end.min(prev.len())) {
                    out.push_str(" (at `");
                    out.push_str(marked);
                    out.push_str("`)");
                }
            }
        } else if line.starts_with("Error")
            || line.starts_with("Warning")
            || !line_is_echo(lines, i)
        {
            if !out.is_empty() {
                out.push('\n');
            }
            let cut = floor_char_boundary(line, 300);
            out.push_str(&line[..cut]);
        }
    }
    out
}

/// Whether line `i` is nft's echo of the failing command (it follows an `Error:` line).
fn line_is_echo<S: AsRef<str>>(lines: &[S], i: usize) -> bool {
    i.checked_sub(1)
        .and_then(|j| lines.get(j))
        .is_some_and(|prev| prev.as_ref().starts_with("Error"))
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl Drop for Session {
    fn drop(&mut self) {
        // Idle between transactions (or timed out): nothing is lost by killing it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
