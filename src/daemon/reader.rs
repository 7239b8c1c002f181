//! A jail's reader: takes its source's records (a file's lines in batches, journal and
//! syslog records one by one), runs the jail's filter on each line, resolves host names as
//! `usedns` says, and sends the failures to the main loop (or to the jail's ignorecommand
//! gate first), and the number of lines read. One thread per jail, so matching (the costly
//! part) runs beside the main loop and beside other jails. It ends when its source does,
//! with [`Event::ReaderDone`] as its last message.
//!
//! A batch goes through the filter in one call
//! ([`banhammer_core::filter::FilterRunner::process_block`]), which passes over the lines
//! the filter's literal prefilter rules out: of those the daemon needs only the count, and
//! the failures found are exactly those of matching every line.
//!
//! Only failures with an address go on ([`banhammer_core::jail::failure_target`]: canonical
//! address text, a network a `cidr` group declared, or what a strict host name resolves
//! to). A failure without one — `1.2.3.256`, `001.002.003.013`, `6.6`, a user name as
//! `<F-ID>` — is never a ban: it is counted (`banhammer_failures_without_address_total`)
//! and logged at WARNING with the jail and the line, a few times a minute at most so a
//! flood of them cannot flood the log.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use banhammer_core::filter::{Failure, Filter, GroupValue, LineResult, ProcessOptions, UseDns};
use banhammer_core::jail::{failure_target, FailureKey, FailureTarget, NoAddress};

use super::event::{Event, Found};
use crate::metrics::JailMetrics;
use crate::source::SourceEvent;

/// Lines between two [`Event::LinesRead`] reports (at least; a batch is counted whole).
const LINES_REPORT_EVERY: u64 = 4096;

/// Failures without an address logged in full per [`NO_ADDRESS_WINDOW_SECS`]; the rest
/// are only counted until the next window.
const NO_ADDRESS_LOGS_PER_WINDOW: u32 = 5;
/// Length of a [`NoAddressLog`] window, seconds.
const NO_ADDRESS_WINDOW_SECS: u64 = 60;
/// Characters of a line or id quoted in that warning (the rest is cut: the log is no place
/// for a 64 KiB line).
const QUOTE_CHARS: usize = 200;

/// Starts the reader of `jail` (incarnation `generation`), without a metrics handle.
pub fn spawn(
    jail: Arc<str>,
    generation: u64,
    filter: Filter,
    records: Receiver<SourceEvent>,
    out: SyncSender<Event>,
) -> std::io::Result<JoinHandle<()>> {
    spawn_with_metrics(jail, generation, filter, records, out, None)
}

/// Starts the reader of `jail` (incarnation `generation`); failures without an address are
/// counted in `metrics` ([`JailMetrics::failure_without_address`]).
pub fn spawn_with_metrics(
    jail: Arc<str>,
    generation: u64,
    filter: Filter,
    records: Receiver<SourceEvent>,
    out: SyncSender<Event>,
    metrics: Option<Arc<JailMetrics>>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("reader-{jail}"))
        .spawn(move || {
            let mut no_address = NoAddressLog::new(jail.clone(), metrics);
            run(
                &jail,
                generation,
                &filter,
                records,
                &out,
                &mut crate::dns::resolve,
                &mut no_address,
            );
        })
}

fn run(
    jail: &Arc<str>,
    generation: u64,
    filter: &Filter,
    records: Receiver<SourceEvent>,
    out: &SyncSender<Event>,
    resolve: &mut dyn FnMut(&str) -> Vec<IpAddr>,
    no_address: &mut NoAddressLog,
) {
    let mut report = Report {
        jail,
        generation,
        usedns: filter.usedns(),
        out,
        resolve,
        no_address,
        started: Instant::now(),
    };
    read_records(filter, records, &mut report, SKIP_UNMATCHABLE);
}

/// Whether lines of a file that the filter's literal prefilter rules out are passed over
/// (see [`banhammer_core::filter::FilterRunner::process_block`]); off only in the tests that
/// compare both ways.
const SKIP_UNMATCHABLE: bool = true;

/// The reader's loop over its source's records; `skip` as [`SKIP_UNMATCHABLE`].
fn read_records(
    filter: &Filter,
    records: Receiver<SourceEvent>,
    report: &mut Report<'_>,
    skip: bool,
) {
    let mut runner = filter.runner();
    let mut catching_up = true;
    // Lines read and not yet reported in an `Event::LinesRead`.
    let mut lines = 0u64;
    for record in records {
        let read_at = Instant::now();
        let opts = ProcessOptions {
            check_all: false,
            now: super::firewall::unix_now(),
        };
        let flow = match record {
            SourceEvent::Lines { batch, .. } => {
                let mut flow = ControlFlow::Continue(());
                let counts =
                    runner.process_block(batch.bytes(), batch.ends(), &opts, skip, &mut |result| {
                        if flow.is_continue() {
                            flow = report.failures(&result, catching_up, read_at);
                        }
                    });
                lines += counts.lines as u64;
                flow
            }
            SourceEvent::Entry { bytes, time, .. } => {
                // Checked first: valid UTF-8 (the usual case) is then borrowed as it is, at
                // a fraction of what the lossy decoder costs on the same bytes.
                let line = std::str::from_utf8(&bytes)
                    .map_or_else(|_| String::from_utf8_lossy(&bytes), Cow::Borrowed);
                let result = runner.process_line_at(&line, time, &opts);
                lines += 1;
                // Records with their own time (journal, syslog socket) carry a reliable
                // clock: the old-failure rule applies to them always.
                report.failures(&result, true, read_at)
            }
            SourceEvent::Checkpoint(checkpoint) => report.send(Event::Checkpoint {
                jail: report.jail.clone(),
                generation: report.generation,
                checkpoint,
            }),
            SourceEvent::CaughtUp => {
                catching_up = false;
                ControlFlow::Continue(())
            }
            // Never matched: only said (rate-limited by the source).
            SourceEvent::Skipped(skipped) => report.send(Event::SourceNote {
                jail: report.jail.clone(),
                warning: true,
                text: skipped.to_string(),
            }),
            SourceEvent::Warning(text) | SourceEvent::Info(text) if text.is_empty() => {
                ControlFlow::Continue(())
            }
            SourceEvent::Warning(text) => report.note(true, text),
            SourceEvent::Info(text) => report.note(false, text),
        };
        if flow.is_break() {
            return;
        }
        if lines >= LINES_REPORT_EVERY {
            let ev = Event::LinesRead {
                jail: report.jail.clone(),
                count: std::mem::take(&mut lines),
            };
            if report.send(ev).is_break() {
                return;
            }
        }
    }
    if lines > 0 {
        let _ = report.send(Event::LinesRead {
            jail: report.jail.clone(),
            count: lines,
        });
    }
    // The last event of this incarnation: everything it sent is in the channel before it.
    let _ = report.send(Event::ReaderDone {
        jail: report.jail.clone(),
        generation: report.generation,
    });
}

/// Where a reader's findings go: the main loop (through `out`), after names are resolved
/// and failures without an address set aside.
struct Report<'a> {
    jail: &'a Arc<str>,
    generation: u64,
    usedns: UseDns,
    out: &'a SyncSender<Event>,
    resolve: &'a mut dyn FnMut(&str) -> Vec<IpAddr>,
    no_address: &'a mut NoAddressLog,
    started: Instant,
}

impl Report<'_> {
    /// Sends `ev`; `Break` when the main loop is gone.
    fn send(&self, ev: Event) -> ControlFlow<()> {
        match self.out.send(ev) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    }

    /// Something the source wants logged.
    fn note(&self, warning: bool, text: String) -> ControlFlow<()> {
        self.send(Event::SourceNote {
            jail: self.jail.clone(),
            warning,
            text,
        })
    }

    /// The failures of one line (one `Event::Found`, if any has an address); the
    /// "older than findtime" rule applies when `catching_up`.
    fn failures(
        &mut self,
        result: &LineResult,
        catching_up: bool,
        read_at: Instant,
    ) -> ControlFlow<()> {
        if result.failures.is_empty() {
            return ControlFlow::Continue(());
        }
        let mut failures: Vec<Found> = Vec::with_capacity(result.failures.len());
        for f in &result.failures {
            match found(f, self.usedns, catching_up, self.resolve) {
                Ok(keys) => failures.extend(keys),
                Err(why) => self
                    .no_address
                    .note(f, why, self.started.elapsed().as_secs()),
            }
        }
        if failures.is_empty() {
            return ControlFlow::Continue(());
        }
        self.send(Event::Found {
            jail: self.jail.clone(),
            generation: self.generation,
            failures,
            read_at,
        })
    }
}

/// The failures of one match: one for its address, or one per address its host name
/// resolves to (usedns yes/warn); `Err` when it has no address.
fn found(
    f: &Failure,
    usedns: UseDns,
    catching_up: bool,
    resolve: &mut dyn FnMut(&str) -> Vec<IpAddr>,
) -> Result<Vec<Found>, NoAddress> {
    let keys: Vec<FailureKey> = match failure_target(f, usedns) {
        FailureTarget::Key(key) => vec![key],
        FailureTarget::Resolve(name) => {
            // Typed addresses, IPv4-mapped folded: canonical by construction.
            let keys: Vec<FailureKey> = resolve(name).into_iter().map(FailureKey::from).collect();
            if keys.is_empty() {
                return Err(NoAddress::Unresolved);
            }
            keys
        }
        FailureTarget::NoAddress(why) => return Err(why),
    };
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
    Ok(keys
        .into_iter()
        .map(|key| Found {
            key,
            time: f.time,
            matches: f.matches.clone(),
            fields: fields.clone(),
            catching_up,
            ignored_by_command: false,
        })
        .collect())
}

/// A jail's failures without an address: each counted (metric), the first
/// [`NO_ADDRESS_LOGS_PER_WINDOW`] of each [`NO_ADDRESS_WINDOW_SECS`] logged at WARNING, the
/// number left out told with the next one logged.
struct NoAddressLog {
    jail: Arc<str>,
    metrics: Option<Arc<JailMetrics>>,
    /// Index of the current window (seconds since the reader started / window length).
    window: u64,
    /// Logged in the current window.
    logged: u32,
    /// Left out since the last one logged.
    suppressed: u64,
    /// All of them since the reader started.
    total: u64,
}

impl NoAddressLog {
    fn new(jail: Arc<str>, metrics: Option<Arc<JailMetrics>>) -> Self {
        NoAddressLog {
            jail,
            metrics,
            window: 0,
            logged: 0,
            suppressed: 0,
            total: 0,
        }
    }

    /// One more failure without an address, `now` seconds after the reader started.
    fn note(&mut self, f: &Failure, why: NoAddress, now: u64) {
        self.total += 1;
        if let Some(m) = &self.metrics {
            m.failure_without_address();
        }
        if let Some(left_out) = self.admit(now) {
            let line = f.matches.last().map_or("", String::as_str);
            let also = if left_out > 0 {
                format!(" ({left_out} more since the last one logged were not)")
            } else {
                String::new()
            };
            crate::warning!(
                "filter",
                "[{}] Failure without an address is not counted ({why}): id {:?} in {:?}{also}",
                self.jail,
                quote(&f.fid),
                quote(line)
            );
        }
    }

    /// Whether to log one now; `Some(n)`: yes, `n` having been left out before it.
    fn admit(&mut self, now: u64) -> Option<u64> {
        let window = now / NO_ADDRESS_WINDOW_SECS;
        if window != self.window {
            self.window = window;
            self.logged = 0;
        }
        if self.logged >= NO_ADDRESS_LOGS_PER_WINDOW {
            self.suppressed += 1;
            return None;
        }
        self.logged += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// At most [`QUOTE_CHARS`] characters of `text`, with `…` when cut.
fn quote(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]).into(),
        None => text.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{sync_channel, Receiver};

    use banhammer_core::filter::FilterConfig;
    use banhammer_core::jail::{Decision, JailConfig, JailState, TrackerConfig};
    use proptest::prelude::*;

    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn filter(failregex: &str, usedns: UseDns) -> Filter {
        Filter::new(&FilterConfig {
            prefregex: None,
            failregex: vec![failregex.to_string()],
            ignoreregex: vec![],
            maxlines: 1,
            datepattern: None,
            usedns,
            timezone: jiff::tz::TimeZone::UTC,
            now: NOW,
        })
        .expect("filter compiles")
    }

    /// Runs the reader (this thread) over `lines`; its events, the names its resolver was
    /// asked about, and its count of failures without an address.
    fn read(
        filter: &Filter,
        lines: &[String],
        answer: &dyn Fn(&str) -> Vec<IpAddr>,
    ) -> (Vec<Found>, Vec<String>, u64) {
        let (tx, rx) = sync_channel(lines.len() + 1);
        for l in lines {
            tx.send(SourceEvent::Entry {
                origin: Arc::from("test"),
                bytes: l.as_bytes().to_vec(),
                time: NOW as f64,
            })
            .expect("queue has room");
        }
        drop(tx);
        let (out_tx, out_rx) = sync_channel(4 * lines.len() + 16);
        let jail: Arc<str> = Arc::from("test");
        let metrics = Arc::new(JailMetrics::default());
        let mut no_address = NoAddressLog::new(jail.clone(), Some(metrics.clone()));
        let mut asked = Vec::new();
        let mut resolve = |n: &str| {
            asked.push(n.to_string());
            answer(n)
        };
        run(&jail, 1, filter, rx, &out_tx, &mut resolve, &mut no_address);
        drop(out_tx);
        assert_eq!(
            metrics.failures_without_address_count(),
            no_address.total,
            "the metric counts every one"
        );
        (found_events(out_rx), asked, no_address.total)
    }

    fn found_events(rx: Receiver<Event>) -> Vec<Found> {
        rx.into_iter()
            .flat_map(|ev| match ev {
                Event::Found { failures, .. } => failures,
                _ => Vec::new(),
            })
            .collect()
    }

    /// The keys a jail with maxretry 1 bans, fed the reader's failures.
    fn banned(found: Vec<Found>) -> Vec<String> {
        let mut state = JailState::new(JailConfig {
            tracker: TrackerConfig {
                maxretry: 1,
                ..TrackerConfig::default()
            },
            ignoreself: false,
            ..JailConfig::default()
        });
        let mut out = Vec::new();
        for f in found {
            if let Decision::Ban(b) = state.on_failure(f.key, f.time, f.matches, None) {
                out.push(b.key.to_string());
            }
        }
        out
    }

    /// The adversarial review's finding: addresses that are not canonical (`1.2.3.256`,
    /// `001.002.003.013` — octal 1.2.3.11 to iptables —, Arabic-Indic digits, `6.6` —
    /// 6.6.0.0 to iptables, 6.0.0.6 to the resolver) were counted as bans and handed to
    /// actions verbatim. Through filter → reader → jail state, they are no bans; canonical
    /// addresses still are.
    #[test]
    fn non_canonical_addresses_never_become_bans() {
        let bad = [
            "1.2.3.256",
            "001.002.003.013",
            "\u{661}.2.3.4",
            "6.6",
            "127.1",
            "0x7f000001",
        ];
        for (re, usedns) in [
            ("^fail from <HOST>$", UseDns::Warn),
            ("^fail from <HOST>$", UseDns::Yes),
            ("^fail from <HOST>$", UseDns::No),
            ("^fail from <HOST>$", UseDns::Raw),
            ("^fail from <ADDR>$", UseDns::Warn),
            ("^fail from <F-ID/>$", UseDns::Warn),
            ("^fail from <SUBNET>$", UseDns::Warn),
            ("^user <F-ID/> from <HOST>$", UseDns::Warn),
        ] {
            let f = filter(re, usedns);
            let line = |h: &str| {
                if re.starts_with("^user") {
                    format!("user alice from {h}")
                } else {
                    format!("fail from {h}")
                }
            };
            let mut lines: Vec<String> = bad.iter().map(|h| line(h)).collect();
            lines.push(line("192.0.2.7"));
            lines.push(line("::ffff:192.0.2.8"));
            let (found, asked, without) = read(&f, &lines, &|_| vec![IpAddr::from([6, 0, 0, 6])]);
            assert!(
                asked.is_empty(),
                "{re} {usedns:?}: resolver asked {asked:?}"
            );
            assert_eq!(banned(found), ["192.0.2.7", "192.0.2.8"], "{re} {usedns:?}");
            if re == "^fail from <F-ID/>$" {
                assert_eq!(without, bad.len() as u64, "{re}: each one counted");
            }
        }
        // `<HOST>` takes the first four of the review's examples as failures (fail2ban counts
        // them): each is now a failure without an address, counted.
        let (found, _, without) = read(
            &filter("^fail from <HOST>$", UseDns::Warn),
            &bad[..4]
                .iter()
                .map(|h| format!("fail from {h}"))
                .collect::<Vec<_>>(),
            &|_| vec![IpAddr::from([6, 0, 0, 6])],
        );
        assert!(found.is_empty());
        assert_eq!(without, 4);
    }

    /// `usedns = yes|warn` gives the resolver strict host names only; what it answers is
    /// used as typed addresses (IPv4-mapped folded); a name without answer is no ban.
    #[test]
    fn usedns_never_resolves_a_partial_address() {
        for usedns in [UseDns::Yes, UseDns::Warn] {
            let f = filter("^fail from <HOST>$", usedns);
            let hosts = [
                "6.6",
                "127.1",
                "1.2.3",
                "2130706433",
                "0x7f000001",
                "1.2.3.0x4",
                "mail.example.com",
                "nothing.example",
            ];
            let lines: Vec<String> = hosts.iter().map(|h| format!("fail from {h}")).collect();
            let (found, asked, without) = read(&f, &lines, &|n| match n {
                "mail.example.com" => vec![
                    IpAddr::from([192, 0, 2, 7]),
                    "::ffff:192.0.2.9".parse().expect("address"),
                ],
                _ => Vec::new(),
            });
            assert_eq!(asked, ["mail.example.com", "nothing.example"], "{usedns:?}");
            let keys: Vec<String> = found.iter().map(|f| f.key.to_string()).collect();
            assert_eq!(keys, ["192.0.2.7", "192.0.2.9"], "{usedns:?}");
            assert_eq!(without, 7, "{usedns:?}");
        }
    }

    /// A flood of failures without an address is logged a few times per minute, and the
    /// number left out is told with the next one logged (counted in calls, not time).
    #[test]
    fn a_flood_of_failures_without_address_is_logged_a_few_times_a_minute() {
        let mut log = NoAddressLog::new(Arc::from("test"), None);
        let admitted: Vec<Option<u64>> = (0..1000).map(|_| log.admit(5)).collect();
        let logged = admitted.iter().filter(|a| a.is_some()).count();
        assert_eq!(logged, NO_ADDRESS_LOGS_PER_WINDOW as usize);
        assert!(admitted[..5].iter().all(|a| *a == Some(0)));
        assert_eq!(log.admit(59), None);
        assert_eq!(log.admit(60), Some(996));
        assert_eq!(log.admit(61), Some(0));
        assert_eq!(quote(&"x".repeat(100_000)).chars().count(), QUOTE_CHARS + 1);
        assert_eq!(quote("short"), "short");
    }

    /// Runs the reader (this thread) over file lines given as batches of `per_batch` lines;
    /// the failures it sent (key, time, matched lines) and the lines it counted.
    fn read_batches(
        filter: &Filter,
        lines: &[&[u8]],
        per_batch: usize,
        skip: bool,
    ) -> (Vec<(String, f64, Vec<String>)>, u64) {
        let (tx, rx) = sync_channel(lines.len() + 2);
        for chunk in lines.chunks(per_batch) {
            let mut text = Vec::new();
            for l in chunk {
                text.extend_from_slice(l);
                text.push(b'\n');
            }
            let batch = crate::source::LineBatch::from_text(text, 0);
            tx.send(SourceEvent::Lines {
                path: Arc::from("test.log"),
                batch,
            })
            .expect("queue has room");
        }
        tx.send(SourceEvent::CaughtUp).expect("queue has room");
        drop(tx);
        let (out_tx, out_rx) = sync_channel(4 * lines.len() + 16);
        let jail: Arc<str> = Arc::from("test");
        let mut no_address = NoAddressLog::new(jail.clone(), None);
        let mut resolve = |_: &str| Vec::new();
        let mut report = Report {
            jail: &jail,
            generation: 1,
            usedns: filter.usedns(),
            out: &out_tx,
            resolve: &mut resolve,
            no_address: &mut no_address,
            started: Instant::now(),
        };
        read_records(filter, rx, &mut report, skip);
        drop(out_tx);
        let mut found = Vec::new();
        let mut counted = 0;
        for ev in out_rx {
            match ev {
                Event::Found { failures, .. } => found.extend(
                    failures
                        .into_iter()
                        .map(|f| (f.key.to_string(), f.time, f.matches)),
                ),
                Event::LinesRead { count, .. } => counted += count,
                _ => {}
            }
        }
        (found, counted)
    }

    /// The reader's fast path against its full one: our sample logs, as batches of a file's
    /// lines, give the same failures (keys, times, matched lines) whether the lines the
    /// filter's prefilter rules out are passed over or not, and every line is counted.
    #[test]
    fn the_skip_path_reads_our_samples_as_the_full_path_does() {
        let logs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/logs");
        let mut failures = 0;
        for entry in std::fs::read_dir(&logs).expect("testdata/logs") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let resolved = crate::filterload::resolve_filter_arg(&name, None).expect("filter");
            let overrides = crate::filterload::FilterOverrides {
                timezone: Some("UTC".to_string()),
                ..Default::default()
            };
            let filter = crate::filterload::compile(&resolved, &overrides, NOW).expect("compiles");
            let bytes = std::fs::read(&path).expect("log");
            let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
            let (full, n_full) = read_batches(&filter, &lines, 64, false);
            for per_batch in [64, 5] {
                let (skipping, n) = read_batches(&filter, &lines, per_batch, true);
                assert_eq!(skipping, full, "{name}, batches of {per_batch}");
                assert_eq!(n, lines.len() as u64, "{name}: every line counted");
            }
            assert_eq!(n_full, lines.len() as u64);
            failures += full.len();
        }
        assert!(failures > 100, "only {failures} failures: not a comparison");
    }

    fn sshd_filter() -> &'static Filter {
        static SSHD: std::sync::OnceLock<Filter> = std::sync::OnceLock::new();
        SSHD.get_or_init(|| {
            let resolved =
                crate::filterload::resolve_filter_arg("sshd", None).expect("embedded sshd");
            let overrides = crate::filterload::FilterOverrides {
                usedns: Some("warn".to_string()),
                ..Default::default()
            };
            crate::filterload::compile(&resolved, &overrides, NOW).expect("sshd compiles")
        })
    }

    fn arb_host() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u32>().prop_map(|i| std::net::Ipv4Addr::from(i).to_string()),
            any::<u128>().prop_map(|i| std::net::Ipv6Addr::from(i).to_string()),
            "[0-9]{1,4}(\\.[0-9]{1,4}){0,4}",
            "[0-9a-fx:.\u{660}-\u{669}]{1,30}",
            "[a-z0-9_.-]{1,30}",
            "\\PC{0,30}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Random lines through the shipped sshd filter (usedns = warn) and the reader: no
        /// panic, every key canonical, only strict host names asked of the resolver.
        #[test]
        fn reader_keys_are_canonical_or_absent(
            host in arb_host(),
            user in "[a-z]{0,8}",
            tail in "\\PC{0,20}",
            template in 0usize..5,
        ) {
            let msg = match template {
                0 => format!("Failed password for {user} from {host} port 22 ssh2"),
                1 => format!("Invalid user {user} from {host} port 4242"),
                2 => format!("Failed password for invalid user {user} from {host}{tail}"),
                3 => format!("User {user} from {host} not allowed because not listed in AllowUsers"),
                _ => format!("{tail}{host}"),
            };
            let line = format!("host sshd[42]: {msg}");
            let (found, asked, _) = read(sshd_filter(), &[line], &|_| {
                vec![IpAddr::from([192, 0, 2, 1])]
            });
            for f in &found {
                prop_assert!(f.key.is_address(), "{:?}", f.key);
                prop_assert_eq!(
                    FailureKey::parse_address(&f.key.to_string()),
                    Some(f.key.clone())
                );
            }
            for name in &asked {
                prop_assert!(crate::dns::is_host_name(name), "{:?}", name);
            }
        }
    }
}
