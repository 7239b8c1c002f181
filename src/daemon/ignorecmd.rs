//! `ignorecommand`: a program that decides whether a failing address is ignored (exit 0 =
//! ignore, 1 = not), run as fail2ban runs it — but never on the main loop. A jail with an
//! ignorecommand gets a gate between its reader and the main loop: the gate owns a cache
//! of answers (fail2ban's `ignorecache`, on by default here), runs the command for an
//! unknown address on a short-lived thread (a few at once, each with a timeout), holds that
//! address's failures until the answer comes, and lets everything else through. A slow or
//! hanging command delays only that address's failures in that jail.
//!
//! The key is never interpolated into the script as text: it is passed as `$1` and `<ip>`
//! becomes `"$1"`, so no log text can reach the shell as code.
//!
//! Bounds: at most [`MAX_RUNNING`] commands at once; at most [`MAX_HELD`] failures held
//! waiting for answers — past it, a new unknown address is not ignored (its failure counts,
//! as if the command had said "not ignored"), so a flood of addresses can neither grow
//! memory nor buy an attacker an exemption.

use std::collections::{HashMap, VecDeque};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use banhammer_core::jail::{FailureKey, IgnoreList};

use super::event::{Event, Found};
use crate::source::FileCheckpoint;
use crate::warning;

/// Longest an ignorecommand may run.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Commands running at once, per jail.
pub const MAX_RUNNING: usize = 4;
/// Failures held waiting for an answer, per jail.
pub const MAX_HELD: usize = 10_000;
/// Answers kept without fail2ban's `ignorecache` setting: fail2ban runs the command for
/// every failure, which is exactly what lets a flood stall it.
const DEFAULT_CACHE_COUNT: usize = 10_000;
const DEFAULT_CACHE_TIME: Duration = Duration::from_secs(60);
/// Records waiting between the reader and the gate.
const GATE_QUEUE: usize = 1024;

/// An ignorecommand and its cache settings, from the jail's options.
#[derive(Debug, Clone, PartialEq)]
pub struct IgnoreCommand {
    /// The command line (`<ip>`, `<family>` tags).
    pub command: String,
    /// Answers remembered at most.
    pub cache_count: usize,
    /// How long an answer is remembered.
    pub cache_time: Duration,
}

impl IgnoreCommand {
    /// The jail's `ignorecommand` with its `ignorecache` (fail2ban's syntax:
    /// `key="<ip>", max-count=100, max-time=5m`; fail2ban's defaults apply to the fields not
    /// given). Errors name the bad part.
    pub fn new(command: &str, ignorecache: Option<&str>) -> Result<IgnoreCommand, String> {
        let mut cmd = IgnoreCommand {
            command: command.to_string(),
            cache_count: DEFAULT_CACHE_COUNT,
            cache_time: DEFAULT_CACHE_TIME,
        };
        let Some(cache) = ignorecache.map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok(cmd);
        };
        cmd.cache_count = 100;
        cmd.cache_time = Duration::from_secs(300);
        for part in cache.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("ignorecache: {part:?} is not key=value"))?;
            let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
            match k.trim() {
                "key" if v == "<ip>" => {}
                "key" => {
                    return Err(format!(
                        "ignorecache: key {v:?} is not supported (expected \"<ip>\")"
                    ))
                }
                "max-count" => {
                    cmd.cache_count = v.parse().map_err(|_| {
                        format!("ignorecache: max-count {v:?} is not a whole number")
                    })?
                }
                "max-time" => {
                    let secs = banhammer_config::parse_duration(v)
                        .map_err(|e| format!("ignorecache: max-time {v:?}: {}", e.message))?;
                    if !(0.0..=1e9).contains(&secs) {
                        return Err(format!("ignorecache: max-time {v:?} is out of range"));
                    }
                    cmd.cache_time = Duration::from_secs_f64(secs);
                }
                other => {
                    return Err(format!(
                        "ignorecache: unknown field {other:?} (expected key, max-count, max-time)"
                    ))
                }
            }
        }
        Ok(cmd)
    }
}

/// Whether the command says `key` is ignored. A command that fails to run or times out
/// says "not ignored" (and is logged), as in fail2ban. Blocks: run it off the main loop.
pub fn ignored(command: &str, key: &FailureKey) -> bool {
    let script = command.replace("<ip>", "\"$1\"");
    let v6 = match key {
        FailureKey::Ip(ip) => ip.is_ipv6(),
        FailureKey::Net(net) => net.addr().is_ipv6(),
        FailureKey::Id(_) => false,
    };
    let family = if v6 { "inet6" } else { "inet4" };
    let script = script.replace("<family>", family);
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(&script)
        .arg("banhammer-ignorecommand")
        .arg(key.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            warning!("filter", "ignorecommand {command:?}: {e}");
            return false;
        }
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return match status.code() {
                    Some(0) => true,
                    Some(1) => false,
                    other => {
                        warning!(
                            "filter",
                            "ignorecommand {command:?} for {key}: exit {other:?} (expected 0 or 1)"
                        );
                        false
                    }
                };
            }
            Ok(None) if started.elapsed() < TIMEOUT => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) | Err(_) => {
                // The whole process group: a shell's children must not outlive it.
                if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                }
                let _ = child.kill();
                let _ = child.wait();
                warning!("filter", "ignorecommand {command:?} for {key}: timed out");
                return false;
            }
        }
    }
}

use std::os::unix::process::CommandExt as _;

/// An answer from a command thread.
struct Verdict {
    key: FailureKey,
    ignored: bool,
}

/// A failure waiting for its key's answer, with what the loop needs to take it.
struct Held {
    generation: u64,
    found: Found,
    read_at: Instant,
}

/// Starts the gate of `jail`: returns the sender its reader writes to, and the thread.
/// Failures come out on `out` marked [`Found::ignored_by_command`] when the command said so.
pub fn spawn_gate(
    jail: Arc<str>,
    command: IgnoreCommand,
    ignore: IgnoreList,
    ignoreself: bool,
    out: SyncSender<Event>,
) -> std::io::Result<(SyncSender<Event>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::sync_channel(GATE_QUEUE);
    let (verdict_tx, verdict_rx) = mpsc::channel();
    let wake = tx.clone();
    let mut gate = Gate {
        jail,
        command,
        ignore,
        ignoreself,
        out,
        verdicts: verdict_tx,
        wake,
        cache: HashMap::new(),
        cache_order: VecDeque::new(),
        held: HashMap::new(),
        held_count: 0,
        queued: VecDeque::new(),
        running: 0,
        held_checkpoints: HashMap::new(),
        done: None,
        said_full: false,
    };
    let handle = std::thread::Builder::new()
        .name("ignorecommand".into())
        .spawn(move || gate.run(&rx, &verdict_rx))?;
    Ok((tx, handle))
}

struct Gate {
    jail: Arc<str>,
    command: IgnoreCommand,
    ignore: IgnoreList,
    ignoreself: bool,
    out: SyncSender<Event>,
    verdicts: Sender<Verdict>,
    /// The gate's own input, for command threads to wake it.
    wake: SyncSender<Event>,
    cache: HashMap<FailureKey, (bool, Instant)>,
    /// Keys in insertion order (oldest first) to cap the cache.
    cache_order: VecDeque<FailureKey>,
    held: HashMap<FailureKey, Vec<Held>>,
    held_count: usize,
    /// Keys waiting for a free command slot.
    queued: VecDeque<FailureKey>,
    running: usize,
    /// The newest file positions seen while failures were held: stored only once the
    /// failures before them are through, so a restart cannot skip a held failure.
    held_checkpoints: HashMap<String, (u64, FileCheckpoint)>,
    /// The reader's last event, passed on once nothing is held.
    done: Option<Event>,
    said_full: bool,
}

impl Gate {
    fn run(&mut self, rx: &Receiver<Event>, verdicts: &Receiver<Verdict>) {
        loop {
            let ev = match rx.recv() {
                Ok(ev) => ev,
                Err(_) => return,
            };
            if !self.take(ev) {
                return;
            }
            while let Ok(v) = verdicts.try_recv() {
                if !self.answer(v) {
                    return;
                }
            }
            if self.done.is_some() && self.held_count == 0 {
                if let Some(done) = self.done.take() {
                    let _ = self.out.send(done);
                }
                return;
            }
        }
    }

    /// Handles one event from the reader; false when the main loop is gone.
    fn take(&mut self, ev: Event) -> bool {
        match ev {
            Event::Wake => true,
            Event::Found {
                jail,
                generation,
                failures,
                read_at,
            } => {
                let mut pass = Vec::new();
                for mut f in failures {
                    match self.decide(&f.key) {
                        Some(ignored) => {
                            f.ignored_by_command = ignored;
                            pass.push(f);
                        }
                        None => self.hold(Held {
                            generation,
                            found: f,
                            read_at,
                        }),
                    }
                }
                pass.is_empty()
                    || self
                        .out
                        .send(Event::Found {
                            jail,
                            generation,
                            failures: pass,
                            read_at,
                        })
                        .is_ok()
            }
            Event::Checkpoint {
                generation,
                checkpoint,
                jail,
            } if self.held_count > 0 => {
                let _ = jail;
                self.held_checkpoints
                    .insert(checkpoint.path.clone(), (generation, checkpoint));
                true
            }
            done @ Event::ReaderDone { .. } => {
                self.done = Some(done);
                true
            }
            other => self.out.send(other).is_ok(),
        }
    }

    /// The answer for `key` if known now (not an address, ignored by the list, cached);
    /// `None` if the command must be asked.
    fn decide(&mut self, key: &FailureKey) -> Option<bool> {
        let ip = match key {
            FailureKey::Ip(ip) => *ip,
            FailureKey::Net(n) => n.addr(),
            FailureKey::Id(_) => return Some(false),
        };
        // The loop will ignore it by the list anyway: no need to ask.
        if self.ignore.matches(ip, self.ignoreself).is_some() {
            return Some(false);
        }
        if let Some((ignored, until)) = self.cache.get(key) {
            if Instant::now() < *until {
                return Some(*ignored);
            }
        }
        if self.held_count >= MAX_HELD && !self.held.contains_key(key) {
            if !self.said_full {
                self.said_full = true;
                warning!(
                    "filter",
                    "[{}] ignorecommand is behind ({} failures wait for its answers): new addresses are not ignored until it catches up",
                    self.jail,
                    self.held_count
                );
            }
            return Some(false);
        }
        None
    }

    fn hold(&mut self, held: Held) {
        let key = held.found.key.clone();
        let first = !self.held.contains_key(&key);
        self.held.entry(key.clone()).or_default().push(held);
        self.held_count += 1;
        if first {
            self.queued.push_back(key);
            self.start_commands();
        }
    }

    fn start_commands(&mut self) {
        while self.running < MAX_RUNNING {
            let Some(key) = self.queued.pop_front() else {
                return;
            };
            let command = self.command.command.clone();
            let verdicts = self.verdicts.clone();
            let wake = self.wake.clone();
            let k = key.clone();
            let spawned = std::thread::Builder::new()
                .name("ignorecommand-run".into())
                .spawn(move || {
                    let ignored = ignored(&command, &k);
                    if verdicts.send(Verdict { key: k, ignored }).is_ok() {
                        // A full queue means the gate is busy and reads verdicts soon.
                        let _ = wake.try_send(Event::Wake);
                    }
                });
            match spawned {
                Ok(_) => self.running += 1,
                Err(e) => {
                    warning!(
                        "filter",
                        "[{}] ignorecommand: cannot start a thread: {e}",
                        self.jail
                    );
                    // Answer "not ignored" now rather than hold the failures forever.
                    let _ = self.verdicts.send(Verdict {
                        key,
                        ignored: false,
                    });
                }
            }
        }
    }

    /// A command answered: remember, release that key's failures; false when the main
    /// loop is gone.
    fn answer(&mut self, v: Verdict) -> bool {
        self.running = self.running.saturating_sub(1);
        self.remember(v.key.clone(), v.ignored);
        let mut ok = true;
        if let Some(list) = self.held.remove(&v.key) {
            self.held_count -= list.len();
            for h in list {
                let mut f = h.found;
                f.ignored_by_command = v.ignored;
                ok &= self
                    .out
                    .send(Event::Found {
                        jail: self.jail.clone(),
                        generation: h.generation,
                        failures: vec![f],
                        read_at: h.read_at,
                    })
                    .is_ok();
            }
        }
        self.start_commands();
        if self.held_count == 0 {
            self.said_full = false;
            for (_, (generation, checkpoint)) in std::mem::take(&mut self.held_checkpoints) {
                ok &= self
                    .out
                    .send(Event::Checkpoint {
                        jail: self.jail.clone(),
                        generation,
                        checkpoint,
                    })
                    .is_ok();
            }
        }
        ok
    }

    fn remember(&mut self, key: FailureKey, ignored: bool) {
        if self.command.cache_count == 0 || self.command.cache_time.is_zero() {
            return;
        }
        let until = Instant::now() + self.command.cache_time;
        if self.cache.insert(key.clone(), (ignored, until)).is_none() {
            self.cache_order.push_back(key);
        }
        while self.cache.len() > self.command.cache_count {
            match self.cache_order.pop_front() {
                Some(old) => {
                    self.cache.remove(&old);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_decides_and_the_key_is_data() {
        let ip = FailureKey::parse("192.0.2.1");
        assert!(ignored("test <ip> = 192.0.2.1", &ip));
        assert!(!ignored("test <ip> = 192.0.2.2", &ip));
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pwned");
        let evil = FailureKey::parse(&format!("$(touch {})", marker.display()));
        assert!(!ignored("test <ip> = x", &evil));
        assert!(!marker.exists());
    }

    #[test]
    fn ignorecache_is_read_as_fail2ban_writes_it() {
        let c = IgnoreCommand::new("true", None).unwrap();
        assert_eq!(c.cache_count, DEFAULT_CACHE_COUNT);
        let c =
            IgnoreCommand::new("true", Some(r#"key="<ip>", max-count=7, max-time=2m"#)).unwrap();
        assert_eq!((c.cache_count, c.cache_time), (7, Duration::from_secs(120)));
        let c = IgnoreCommand::new("true", Some("max-time=10")).unwrap();
        assert_eq!(
            (c.cache_count, c.cache_time),
            (100, Duration::from_secs(10))
        );
        for bad in ["key=<F-USER>", "max-count=many", "size=3", "max-time=later"] {
            let e = IgnoreCommand::new("true", Some(bad)).unwrap_err();
            assert!(e.starts_with("ignorecache:"), "{e}");
        }
    }

    fn found(ip: &str) -> Found {
        Found {
            key: FailureKey::parse(ip),
            time: 0.0,
            matches: Vec::new(),
            fields: Default::default(),
            catching_up: false,
            ignored_by_command: false,
        }
    }

    fn send(tx: &SyncSender<Event>, ips: &[&str]) {
        tx.send(Event::Found {
            jail: Arc::from("j"),
            generation: 1,
            failures: ips.iter().map(|ip| found(ip)).collect(),
            read_at: Instant::now(),
        })
        .unwrap();
    }

    /// Finding: a `sleep 1` ignorecommand and 40 failures stalled the whole daemon for
    /// ~40 s. The gate answers every address through at most MAX_RUNNING commands at once,
    /// asks the command once per address (cache), and passes every failure on, marked.
    #[test]
    fn a_slow_ignorecommand_runs_beside_the_loop_once_per_address() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls");
        // Records each call; 192.0.2.1 is ignored, the others are not.
        let cmd = format!(
            "echo \"$1\" >> {}; sleep 0.2; test <ip> = 192.0.2.1",
            log.display()
        )
        .replace("\"$1\"", "<ip>");
        let (out_tx, out_rx) = mpsc::sync_channel(1024);
        let (tx, handle) = spawn_gate(
            Arc::from("j"),
            IgnoreCommand::new(&cmd, None).unwrap(),
            IgnoreList::parse("10.0.0.0/8").unwrap(),
            false,
            out_tx,
        )
        .unwrap();
        for round in 0..5 {
            let _ = round;
            send(&tx, &["192.0.2.1", "192.0.2.2", "10.1.2.3"]);
            for i in 3..9 {
                send(&tx, &[&format!("192.0.2.{i}")]);
            }
        }
        tx.send(Event::ReaderDone {
            jail: Arc::from("j"),
            generation: 1,
        })
        .unwrap();
        drop(tx);
        let mut verdicts: Vec<(String, bool)> = Vec::new();
        let mut done = false;
        for ev in out_rx.iter() {
            match ev {
                Event::Found { failures, .. } => verdicts.extend(
                    failures
                        .into_iter()
                        .map(|f| (f.key.to_string(), f.ignored_by_command)),
                ),
                Event::ReaderDone { .. } => {
                    done = true;
                    break;
                }
                _ => {}
            }
        }
        handle.join().unwrap();
        assert!(done, "the reader's end is passed on last");
        assert_eq!(verdicts.len(), 45, "every failure comes out");
        for (key, ign) in &verdicts {
            assert_eq!(*ign, key == "192.0.2.1", "{key}");
        }
        let calls = std::fs::read_to_string(&log).unwrap();
        let mut calls: Vec<&str> = calls.lines().collect();
        calls.sort();
        // Once per address; never for 10.1.2.3 (ignoreip).
        let expected: Vec<String> = (1..9).map(|i| format!("192.0.2.{i}")).collect();
        assert_eq!(calls, expected);
    }
}
