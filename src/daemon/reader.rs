//! A jail's reader: takes its source's records, runs the jail's filter on each, resolves
//! host names as `usedns` says, and sends the failures to the main loop (or to the jail's
//! ignorecommand gate first). One thread per jail, so matching (the costly part) runs
//! beside the main loop and beside other jails. It ends when its source does, with
//! [`Event::ReaderDone`] as its last message.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use banhammer_core::filter::{Failure, Filter, GroupValue, HostKind, ProcessOptions, UseDns};
use banhammer_core::jail::FailureKey;

use super::event::{Event, Found};
use crate::source::SourceEvent;

/// Lines between two [`Event::LinesRead`] reports.
const LINES_REPORT_EVERY: u64 = 4096;

/// Unix time now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Starts the reader of `jail` (incarnation `generation`).
pub fn spawn(
    jail: Arc<str>,
    generation: u64,
    filter: Filter,
    records: Receiver<SourceEvent>,
    out: SyncSender<Event>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("reader-{jail}"))
        .spawn(move || run(&jail, generation, &filter, records, &out))
}

fn run(
    jail: &Arc<str>,
    generation: u64,
    filter: &Filter,
    records: Receiver<SourceEvent>,
    out: &SyncSender<Event>,
) {
    let usedns = filter.usedns();
    let mut runner = filter.runner();
    let mut catching_up = true;
    let mut lines = 0u64;
    for record in records {
        let read_at = Instant::now();
        let opts = ProcessOptions {
            check_all: false,
            now: unix_now(),
        };
        let (result, from_file) = match record {
            SourceEvent::Line { bytes, .. } => {
                let line = String::from_utf8_lossy(&bytes);
                (runner.process_line(&line, &opts), true)
            }
            SourceEvent::Entry { bytes, time, .. } => {
                let line = String::from_utf8_lossy(&bytes);
                (runner.process_line_at(&line, time, &opts), false)
            }
            SourceEvent::Checkpoint(checkpoint) => {
                let ev = Event::Checkpoint {
                    jail: jail.clone(),
                    generation,
                    checkpoint,
                };
                if out.send(ev).is_err() {
                    return;
                }
                continue;
            }
            SourceEvent::CaughtUp => {
                catching_up = false;
                continue;
            }
            // Never matched: only said (rate-limited by the source).
            SourceEvent::Skipped(skipped) => {
                let ev = Event::SourceNote {
                    jail: jail.clone(),
                    warning: true,
                    text: skipped.to_string(),
                };
                if out.send(ev).is_err() {
                    return;
                }
                continue;
            }
            SourceEvent::Warning(text) | SourceEvent::Info(text) if text.is_empty() => continue,
            note @ (SourceEvent::Warning(_) | SourceEvent::Info(_)) => {
                let (warning, text) = match note {
                    SourceEvent::Warning(t) => (true, t),
                    SourceEvent::Info(t) => (false, t),
                    _ => continue,
                };
                let ev = Event::SourceNote {
                    jail: jail.clone(),
                    warning,
                    text,
                };
                if out.send(ev).is_err() {
                    return;
                }
                continue;
            }
        };
        lines += 1;
        if lines % LINES_REPORT_EVERY == 0 {
            let ev = Event::LinesRead {
                jail: jail.clone(),
                count: LINES_REPORT_EVERY,
            };
            if out.send(ev).is_err() {
                return;
            }
        }
        if result.failures.is_empty() {
            continue;
        }
        // Records with their own time (journal, syslog socket) carry a reliable clock:
        // the old-failure rule applies to them always.
        let catching_up = catching_up || !from_file;
        let failures: Vec<Found> = result
            .failures
            .into_iter()
            .flat_map(|f| found(f, usedns, catching_up))
            .collect();
        if failures.is_empty() {
            continue;
        }
        let ev = Event::Found {
            jail: jail.clone(),
            generation,
            failures,
            read_at,
        };
        if out.send(ev).is_err() {
            return;
        }
    }
    let rest = lines % LINES_REPORT_EVERY;
    if rest > 0 {
        let _ = out.send(Event::LinesRead {
            jail: jail.clone(),
            count: rest,
        });
    }
    // The last event of this incarnation: everything it sent is in the channel before it.
    let _ = out.send(Event::ReaderDone {
        jail: jail.clone(),
        generation,
    });
}

/// The failures of one match: one per address a host name resolves to (usedns yes/warn).
fn found(f: Failure, usedns: UseDns, catching_up: bool) -> Vec<Found> {
    let fields: BTreeMap<String, String> = f
        .groups
        .iter()
        .filter_map(|(k, v)| {
            let text = match v {
                GroupValue::Str(s) => s.clone(),
                GroupValue::Set(set) => set.iter().cloned().collect::<Vec<_>>().join(","),
                GroupValue::Tuple(_) | GroupValue::None => return None,
            };
            Some((k.to_string(), text))
        })
        .collect();
    let keys: Vec<FailureKey> = match (f.kind, usedns) {
        (HostKind::Dns, UseDns::Yes | UseDns::Warn) => crate::dns::resolve_all(&f.fid)
            .iter()
            .map(|a| FailureKey::parse(a))
            .collect(),
        _ => vec![FailureKey::parse(&f.fid)],
    };
    keys.into_iter()
        .map(|key| Found {
            key,
            time: f.time,
            matches: f.matches.clone(),
            fields: fields.clone(),
            catching_up,
            ignored_by_command: false,
        })
        .collect()
}
