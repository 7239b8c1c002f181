//! Prometheus metrics. Owns the counters (lines read per source; failures, failures without
//! an address, bans, unbans, active bans, action errors and ban latency per jail; process
//! start time); receives
//! bumps from the pipeline through per-jail and per-source handles; emits the text
//! exposition format ([`Metrics::render`]) and serves it on a loopback HTTP port
//! ([`serve`], on the [`pollserver`](crate::pollserver) loop: idle or slow local clients
//! cannot hold a scrape up).
//!
//! Lock-light: every number is an atomic. The maps of handles sit behind an `RwLock`
//! that is written only when a jail or source is registered (start, reload) and read
//! when rendering; the hot path keeps its `Arc` handle and never touches the map.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::pollserver::{Answer, Frame, Limits, Reply, Server, ServerStats, Service};

/// Upper bounds (seconds) of the ban latency buckets: from a failing line read to the
/// firewall rule in place. Half a millisecond is a fast in-process ban, seconds mean a
/// slow action script.
pub const LATENCY_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The registry: one per daemon, shared as `Arc<Metrics>`.
pub struct Metrics {
    start_time: f64,
    sources: RwLock<BTreeMap<String, Arc<SourceMetrics>>>,
    jails: RwLock<BTreeMap<String, Arc<JailMetrics>>>,
    /// Counters kept elsewhere (sources, sockets, servers), read when rendering.
    collected: RwLock<BTreeMap<&'static str, Family>>,
}

/// Reads one number kept elsewhere.
pub type Reader = Box<dyn Fn() -> u64 + Send + Sync>;

/// A metric family whose samples are read from their owners when rendering.
struct Family {
    kind: &'static str,
    help: &'static str,
    /// By their labels (sorted as given).
    samples: BTreeMap<Vec<(String, String)>, Arc<Reader>>,
}

/// Counters of one log source (a file, or a journal).
#[derive(Debug, Default)]
pub struct SourceMetrics {
    lines: AtomicU64,
}

impl SourceMetrics {
    /// `n` more lines read.
    pub fn lines_read(&self, n: u64) {
        self.lines.fetch_add(n, Ordering::Relaxed);
    }
}

/// Counters of one jail.
#[derive(Debug, Default)]
pub struct JailMetrics {
    failures: AtomicU64,
    failures_without_address: AtomicU64,
    bans: AtomicU64,
    unbans: AtomicU64,
    active: AtomicI64,
    latency: Histogram,
    /// Per action name; written only on the first error of an action (rare).
    action_errors: RwLock<BTreeMap<String, Arc<AtomicU64>>>,
}

impl JailMetrics {
    /// A failure found (a matching line).
    pub fn failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A failure found that has no address (its host or id is not canonical address text,
    /// or a name that is not resolved): never a ban, counted here instead.
    pub fn failure_without_address(&self) {
        self.failures_without_address
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Failures without an address counted so far.
    pub fn failures_without_address_count(&self) -> u64 {
        self.failures_without_address.load(Ordering::Relaxed)
    }

    /// A ban applied: counts it and raises the active gauge.
    pub fn ban(&self) {
        self.bans.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    /// An unban done: counts it and lowers the active gauge.
    pub fn unban(&self) {
        self.unbans.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// Sets the active gauge outright (after restoring bans from the database, a reload,
    /// `unban --all`), where counting ±1 would drift.
    pub fn set_active_bans(&self, n: u64) {
        self.active
            .store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Seconds from reading the line that triggered a ban to the firewall having it.
    pub fn observe_ban_latency(&self, seconds: f64) {
        self.latency.observe(seconds);
    }

    /// An action (by its name in the jail, e.g. `nftables`) failed.
    pub fn action_error(&self, action: &str) {
        if let Some(c) = read(&self.action_errors).get(action) {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        write(&self.action_errors)
            .entry(action.to_string())
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// A fixed-bucket histogram. Buckets are stored per interval (not cumulative), so an
/// observation touches one bucket; `render` adds them up.
#[derive(Debug, Default)]
struct Histogram {
    /// One per [`LATENCY_BUCKETS`] bound, then +Inf.
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    /// Sum in nanoseconds: an integer adds atomically, an `f64` would need a CAS loop.
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, seconds: f64) {
        // Negative or NaN (a clock step): count it as zero rather than lose it.
        let s = if seconds.is_finite() && seconds > 0.0 {
            seconds
        } else {
            0.0
        };
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        // `as` saturates for floats: an absurd latency cannot wrap the sum.
        self.sum_nanos
            .fetch_add((s * 1e9).round() as u64, Ordering::Relaxed);
    }
}

// Poisoning only means a panic elsewhere while registering; the maps stay valid.
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// An empty registry; the process start time is now.
    pub fn new() -> Metrics {
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Metrics::with_start_time(start)
    }

    /// An empty registry with a given start time (Unix seconds), for tests.
    pub fn with_start_time(start_time: f64) -> Metrics {
        Metrics {
            start_time,
            sources: RwLock::default(),
            jails: RwLock::default(),
            collected: RwLock::default(),
        }
    }

    /// The handle of jail `name`, registered on first use; keep it rather than look it
    /// up per event.
    pub fn jail(&self, name: &str) -> Arc<JailMetrics> {
        if let Some(j) = read(&self.jails).get(name) {
            return Arc::clone(j);
        }
        Arc::clone(write(&self.jails).entry(name.to_string()).or_default())
    }

    /// The handle of source `name` (a log path, or `journal`), registered on first use.
    pub fn source(&self, name: &str) -> Arc<SourceMetrics> {
        if let Some(s) = read(&self.sources).get(name) {
            return Arc::clone(s);
        }
        Arc::clone(write(&self.sources).entry(name.to_string()).or_default())
    }

    /// Drops a jail's series (it was removed by a reload).
    pub fn remove_jail(&self, name: &str) {
        write(&self.jails).remove(name);
    }

    /// Drops a source's series (no jail reads it any more).
    pub fn remove_source(&self, name: &str) {
        write(&self.sources).remove(name);
    }

    /// Adds (or replaces) a sample of `metric` whose value `read` gives when rendering.
    /// `kind` is `counter` or `gauge`; the first registration of a metric sets its help.
    pub fn register(
        &self,
        metric: &'static str,
        kind: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        read: Reader,
    ) {
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        write(&self.collected)
            .entry(metric)
            .or_insert_with(|| Family {
                kind,
                help,
                samples: BTreeMap::new(),
            })
            .samples
            .insert(labels, Arc::new(read));
    }

    /// Removes every collected sample carrying label `key` = `value` (a jail gone).
    pub fn unregister(&self, key: &str, value: &str) {
        for family in write(&self.collected).values_mut() {
            family
                .samples
                .retain(|labels, _| !labels.iter().any(|(k, v)| k == key && v == value));
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let sources = read(&self.sources).clone();
        let jails = read(&self.jails).clone();

        header(
            &mut out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
        );
        let _ = writeln!(out, "process_start_time_seconds {}", num(self.start_time));

        header(
            &mut out,
            "banhammer_lines_read_total",
            "counter",
            "Log lines read, per source.",
        );
        for (name, s) in &sources {
            sample(
                &mut out,
                "banhammer_lines_read_total",
                &[("source", name)],
                s.lines.load(Ordering::Relaxed),
            );
        }

        let per_jail: [(&str, &str, &str, JailValue); 5] = [
            (
                "banhammer_failures_total",
                "counter",
                "Failures found (matching lines), per jail.",
                |j| load_u(&j.failures),
            ),
            (
                "banhammer_failures_without_address_total",
                "counter",
                "Failures found whose host or id is not a canonical address (never bans), per jail.",
                |j| load_u(&j.failures_without_address),
            ),
            (
                "banhammer_bans_total",
                "counter",
                "Bans applied, per jail.",
                |j| load_u(&j.bans),
            ),
            (
                "banhammer_unbans_total",
                "counter",
                "Unbans done, per jail.",
                |j| load_u(&j.unbans),
            ),
            (
                "banhammer_active_bans",
                "gauge",
                "Bans in force, per jail.",
                |j| j.active.load(Ordering::Relaxed),
            ),
        ];
        for (metric, kind, help, get) in per_jail {
            header(&mut out, metric, kind, help);
            for (name, j) in &jails {
                sample(&mut out, metric, &[("jail", name)], get(j));
            }
        }

        header(
            &mut out,
            "banhammer_action_errors_total",
            "counter",
            "Failed action runs, per jail and action.",
        );
        for (name, j) in &jails {
            for (action, c) in read(&j.action_errors).iter() {
                sample(
                    &mut out,
                    "banhammer_action_errors_total",
                    &[("jail", name), ("action", action)],
                    c.load(Ordering::Relaxed),
                );
            }
        }

        header(
            &mut out,
            "banhammer_ban_latency_seconds",
            "histogram",
            "Seconds from reading a failing line to the ban being applied, per jail.",
        );
        for (name, j) in &jails {
            render_histogram(&mut out, "banhammer_ban_latency_seconds", name, &j.latency);
        }

        // Read under the lock, but no reader does more than load atomics.
        for (metric, family) in read(&self.collected).iter() {
            header(&mut out, metric, family.kind, family.help);
            for (labels, get) in &family.samples {
                let labels: Vec<(&str, &str)> = labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let value = i64::try_from(get()).unwrap_or(i64::MAX);
                sample(&mut out, metric, &labels, value);
            }
        }
        out
    }
}

/// Reads one number of a jail, for the families rendered alike.
type JailValue = fn(&JailMetrics) -> i64;

fn load_u(a: &AtomicU64) -> i64 {
    i64::try_from(a.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
}

fn render_histogram(out: &mut String, metric: &str, jail: &str, h: &Histogram) {
    let bucket = format!("{metric}_bucket");
    let mut cumulative = 0u64;
    for (i, c) in h.counts.iter().enumerate() {
        cumulative += c.load(Ordering::Relaxed);
        let le = LATENCY_BUCKETS
            .get(i)
            .map_or_else(|| "+Inf".to_string(), |b| num(*b));
        sample(out, &bucket, &[("jail", jail), ("le", &le)], cumulative);
    }
    let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    sample(out, &format!("{metric}_sum"), &[("jail", jail)], num(sum));
    // The count is the +Inf bucket by definition; reusing it keeps the two equal even
    // while observations land during rendering.
    sample(
        out,
        &format!("{metric}_count"),
        &[("jail", jail)],
        cumulative,
    );
}

fn header(out: &mut String, metric: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {metric} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {metric} {kind}");
}

fn sample(out: &mut String, metric: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(metric);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A float as Prometheus reads it (`1`, `0.0005`, `+Inf`).
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Label values escape backslash, double quote and newline (exposition format spec).
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text escapes backslash and newline only.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Longest HTTP request head read; a scrape's is a few hundred bytes.
const MAX_HTTP_REQUEST: usize = 8 * 1024;

/// The endpoint's limits. A scraper opens one connection per scrape (we close after each
/// answer), so a few dozen is plenty; past that, the idlest goes.
fn http_limits() -> Limits {
    Limits {
        max_connections: 32,
        max_request: MAX_HTTP_REQUEST,
        // Nothing is kept open between requests: "idle" is a client that connected and
        // has not started its request.
        idle_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        drain: Duration::from_millis(500),
    }
}

/// The running metrics endpoint. Dropping the handle leaves it serving for the life of
/// the process (the daemon's usual need); [`shutdown`](MetricsServer::shutdown) stops it.
pub struct MetricsServer {
    addr: SocketAddr,
    server: Server,
}

impl MetricsServer {
    /// The address bound (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the endpoint had to close or refuse so far.
    pub fn stats(&self) -> ServerStats {
        self.server.stats()
    }

    /// A handle on those counts, for the metrics.
    pub fn stats_reader(&self) -> crate::pollserver::StatsReader {
        self.server.stats_reader()
    }

    /// Stops serving and waits for the thread. Idempotent.
    pub fn shutdown(&mut self) {
        self.server.shutdown();
    }
}

/// Serves `GET /metrics` on `addr` (e.g. `127.0.0.1:9191`; port 0 picks one) from a
/// thread, one request per connection. Only loopback addresses are accepted: the metrics
/// name jails and log files, and exposing them is a reverse proxy's decision.
pub fn serve(addr: &str, metrics: Arc<Metrics>) -> io::Result<MetricsServer> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("metrics address {addr:?}: {e} (expected e.g. 127.0.0.1:9191)"),
            )
        })?
        .collect();
    if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "metrics address {addr:?} is not a loopback address (use 127.0.0.1:PORT or \
                 [::1]:PORT, and a reverse proxy to expose it further)"
            ),
        ));
    }
    let listener = TcpListener::bind(&addrs[..])
        .map_err(|e| io::Error::new(e.kind(), format!("metrics address {addr}: {e}")))?;
    let local = listener.local_addr()?;
    let server = Server::start("metrics", listener, Http { metrics }, http_limits())?;
    // The daemon announces the endpoint at INFO itself.
    crate::debug!(
        "metrics",
        "serving Prometheus metrics on http://{local}/metrics"
    );
    Ok(MetricsServer {
        addr: local,
        server,
    })
}

/// HTTP as the poll loop sees it: a request head in, one response out, then close.
struct Http {
    metrics: Arc<Metrics>,
}

impl Service for Http {
    fn frame(&self, input: &[u8], scanned: usize, eof: bool) -> Frame {
        head_frame(input, scanned, eof)
    }

    fn answer(&self, head: &[u8]) -> Answer {
        let (status, body) = match route(head) {
            Route::Metrics => ("200 OK", self.metrics.render()),
            Route::NotFound => (
                "404 Not Found",
                "not found; metrics are at /metrics\n".into(),
            ),
            Route::BadMethod => ("405 Method Not Allowed", "only GET\n".into()),
            Route::BadRequest => ("400 Bad Request", "bad request\n".into()),
        };
        Answer::Now(response(status, &body))
    }

    fn too_long(&self) -> Vec<u8> {
        let body = format!("request head longer than {MAX_HTTP_REQUEST} bytes\n");
        response("431 Request Header Fields Too Large", &body).bytes
    }

    fn refusal(&self) -> Vec<u8> {
        // Answers never wait on anything here, so no connection is ever busy enough to
        // refuse a newcomer; this is for form.
        response("503 Service Unavailable", "busy; try again\n").bytes
    }
}

fn response(status: &str, body: &str) -> Reply {
    let allow = if status.starts_with("405") {
        "Allow: GET\r\n"
    } else {
        ""
    };
    let text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\n{allow}Connection: close\r\n\r\n{body}",
        body.len()
    );
    Reply {
        bytes: text.into_bytes(),
        close: true,
    }
}

/// A request head ends at its blank line (`\r\n\r\n`, or `\n\n` from a sloppy
/// client); a client that stops sending gets what it sent routed. The body, if any, is
/// never read: the connection is closed after the answer.
fn head_frame(input: &[u8], scanned: usize, eof: bool) -> Frame {
    // A terminator may straddle what was scanned and what is new.
    let from = scanned.saturating_sub(3).min(input.len());
    let rest = &input[from..];
    let end = [&b"\r\n\r\n"[..], b"\n\n"]
        .iter()
        .filter_map(|t| memchr::memmem::find(rest, t).map(|i| from + i + t.len()))
        .min();
    match end {
        Some(end) => Frame::Request {
            len: end,
            consumed: input.len(),
        },
        None if eof && !input.is_empty() => Frame::Request {
            len: input.len(),
            consumed: input.len(),
        },
        None => Frame::Incomplete,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    NotFound,
    BadMethod,
    BadRequest,
}

fn route(head: &[u8]) -> Route {
    let line_end = memchr::memchr(b'\n', head).unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return Route::BadRequest;
    };
    let mut parts = line.split_ascii_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Route::BadRequest;
    };
    if method != "GET" {
        return Route::BadMethod;
    }
    // Prometheus may add query parameters; they select nothing here.
    let path = target.split('?').next().unwrap_or(target);
    if path == "/metrics" {
        Route::Metrics
    } else {
        Route::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collected_samples_are_read_when_rendering_and_go_with_their_jail() {
        let m = Metrics::with_start_time(0.0);
        let n = Arc::new(AtomicU64::new(3));
        let read = Arc::clone(&n);
        m.register(
            "x_total",
            "counter",
            "Help.",
            &[("jail", "a")],
            Box::new(move || read.load(Ordering::Relaxed)),
        );
        m.register(
            "x_total",
            "counter",
            "Help.",
            &[("jail", "b")],
            Box::new(|| 9),
        );
        n.store(5, Ordering::Relaxed);
        let text = m.render();
        assert!(text.contains("# TYPE x_total counter"), "{text}");
        assert!(text.contains("x_total{jail=\"a\"} 5\n"), "{text}");
        assert!(text.contains("x_total{jail=\"b\"} 9\n"), "{text}");
        m.unregister("jail", "a");
        let text = m.render();
        assert!(!text.contains("jail=\"a\""), "{text}");
    }

    #[test]
    fn renders_the_exposition_format() {
        let m = Metrics::with_start_time(1_700_000_000.5);
        let src = m.source("/var/log/auth.log");
        src.lines_read(41);
        src.lines_read(1);
        let sshd = m.jail("sshd");
        sshd.failure();
        sshd.failure();
        sshd.failure_without_address();
        sshd.ban();
        sshd.ban();
        sshd.unban();
        sshd.action_error("nftables");
        sshd.observe_ban_latency(0.0003);
        sshd.observe_ban_latency(0.002);
        sshd.observe_ban_latency(30.0);
        let text = m.render();
        let expected = [
            "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
            "# TYPE process_start_time_seconds gauge",
            "process_start_time_seconds 1700000000.5",
            "# TYPE banhammer_lines_read_total counter",
            "banhammer_lines_read_total{source=\"/var/log/auth.log\"} 42",
            "banhammer_failures_total{jail=\"sshd\"} 2",
            "banhammer_failures_without_address_total{jail=\"sshd\"} 1",
            "banhammer_bans_total{jail=\"sshd\"} 2",
            "banhammer_unbans_total{jail=\"sshd\"} 1",
            "# TYPE banhammer_active_bans gauge",
            "banhammer_active_bans{jail=\"sshd\"} 1",
            "banhammer_action_errors_total{jail=\"sshd\",action=\"nftables\"} 1",
            "# TYPE banhammer_ban_latency_seconds histogram",
            "banhammer_ban_latency_seconds_bucket{jail=\"sshd\",le=\"0.0005\"} 1",
            "banhammer_ban_latency_seconds_bucket{jail=\"sshd\",le=\"0.001\"} 1",
            "banhammer_ban_latency_seconds_bucket{jail=\"sshd\",le=\"0.0025\"} 2",
            "banhammer_ban_latency_seconds_bucket{jail=\"sshd\",le=\"5\"} 2",
            "banhammer_ban_latency_seconds_bucket{jail=\"sshd\",le=\"+Inf\"} 3",
            "banhammer_ban_latency_seconds_sum{jail=\"sshd\"} 30.0023",
            "banhammer_ban_latency_seconds_count{jail=\"sshd\"} 3",
        ];
        for line in expected {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample line belongs to a family declared before it.
        let mut declared = Vec::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_string());
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                assert!(declared.iter().any(|d| name.starts_with(d.as_str())), "{l}");
            }
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::with_start_time(0.0);
        m.source("C:\\x \"quoted\"\nnext").lines_read(1);
        let text = m.render();
        assert!(
            text.contains("banhammer_lines_read_total{source=\"C:\\\\x \\\"quoted\\\"\\nnext\"} 1")
        );
    }

    #[test]
    fn handles_are_shared_and_gauge_can_be_set() {
        let m = Metrics::with_start_time(0.0);
        m.jail("sshd").ban();
        m.jail("sshd").ban();
        m.jail("sshd").set_active_bans(7);
        let text = m.render();
        assert!(text.contains("banhammer_bans_total{jail=\"sshd\"} 2\n"));
        assert!(text.contains("banhammer_active_bans{jail=\"sshd\"} 7\n"));
        m.remove_jail("sshd");
        assert!(!m.render().contains("jail=\"sshd\""));
    }

    #[test]
    fn routes() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics
        );
        assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::BadMethod);
        assert_eq!(route(b"\xff\xfe\r\n"), Route::BadRequest);
        assert_eq!(route(b""), Route::BadRequest);
    }

    #[test]
    fn request_heads_end_at_their_blank_line_even_across_reads() {
        let head = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nbody";
        let whole = Frame::Request {
            len: head.len() - 4,
            consumed: head.len(),
        };
        assert_eq!(head_frame(head, 0, false), whole);
        // The terminator split over two reads: the first three bytes were scanned.
        let cut = head.len() - 6;
        assert_eq!(head_frame(&head[..cut], 0, false), Frame::Incomplete);
        assert_eq!(head_frame(head, cut, false), whole);
        assert_eq!(
            head_frame(b"GET / HTTP/1.0\n\n", 0, false),
            Frame::Request {
                len: 16,
                consumed: 16
            }
        );
        assert_eq!(
            head_frame(b"GET /metrics", 0, true),
            Frame::Request {
                len: 12,
                consumed: 12
            }
        );
        assert_eq!(head_frame(b"", 0, true), Frame::Incomplete);
    }

    #[test]
    fn non_loopback_addresses_are_refused() {
        let m = Arc::new(Metrics::new());
        let e = serve("0.0.0.0:0", Arc::clone(&m)).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("not a loopback address"), "{e}");
        assert!(serve("nonsense", m).is_err());
    }
}
