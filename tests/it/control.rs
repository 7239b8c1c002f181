//! The control socket end to end, with a fake daemon behind it: the server's socket file
//! handling and line protocol, the `banhammer` client verbs' fail2ban-style output, and
//! the metrics endpoint.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use banhammer::control::client::{self, ClientError};
use banhammer::control::protocol::{
    Envelope, JailBans, JailStatus, Reply, Request, MAX_REQUEST_BYTES,
};
use banhammer::control::server::{ControlServer, Handler, ServerConfig};
use banhammer::metrics::{self, Metrics};

use crate::env;

const T: Duration = Duration::from_secs(5);

/// A daemon with one jail, `sshd`, banning 192.0.2.7.
fn fake_daemon() -> Handler {
    Arc::new(|req: Request| match req {
        Request::Ping => Envelope::ok(Reply::Pong),
        Request::Version => Envelope::ok(Reply::Version {
            version: "banhammer-0.1.0".into(),
        }),
        Request::Status { jail: None } => Envelope::ok(Reply::Status {
            jails: vec!["sshd".into(), "nginx-http-auth".into()],
        }),
        Request::Status { jail: Some(j) } if j == "sshd" => {
            Envelope::ok(Reply::JailStatus(JailStatus {
                name: "sshd".into(),
                currently_failed: 2,
                total_failed: 17,
                files: vec!["/var/log/auth.log".into()],
                journal_matches: None,
                currently_banned: 1,
                total_banned: 3,
                banned: vec!["192.0.2.7".into()],
            }))
        }
        Request::Ban { ips, .. } => Envelope::ok(Reply::Count {
            count: ips.len() as u64,
        }),
        Request::Banned { ips } if ips.is_empty() => Envelope::ok(Reply::Banned {
            jails: vec![JailBans {
                jail: "sshd".into(),
                ips: vec!["192.0.2.7".into()],
            }],
        }),
        Request::Get { option, .. } if option == "findtime" => Envelope::ok(Reply::Value {
            option,
            value: serde_json::json!(600),
        }),
        Request::Stop => Envelope::ok(Reply::Ok),
        Request::Status { jail: Some(j) } => {
            Envelope::err(format!("Sorry but the jail '{j}' does not exist"))
        }
        _ => Envelope::err("Sorry but the command is invalid"),
    })
}

fn socket_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("banhammer.sock")
}

fn start(dir: &tempfile::TempDir) -> ControlServer {
    ControlServer::bind(&socket_in(dir), fake_daemon()).unwrap()
}

/// A raw connection sending lines and reading reply envelopes.
struct Raw {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Raw {
    fn open(path: &Path) -> Raw {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        Raw {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Envelope {
        self.writer.write_all(bytes).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }
}

#[test]
fn request_and_reply_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir);
    let env = client::request(server.path(), &Request::Ping, T).unwrap();
    assert_eq!(env, Envelope::ok(Reply::Pong));
    let env = client::request(server.path(), &Request::Status { jail: None }, T).unwrap();
    assert!(matches!(env.result, Some(Reply::Status { .. })), "{env:?}");
    let mut conn = client::Connection::open(server.path(), T).unwrap();
    for _ in 0..3 {
        assert_eq!(
            conn.request(&Request::Ping).unwrap().result,
            Some(Reply::Pong)
        );
    }
}

#[test]
fn socket_is_root_only_in_a_private_new_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/banhammer/banhammer.sock");
    let server = ControlServer::bind(&path, fake_daemon()).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    // Nothing is left of the private directory the socket was bound in.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("banhammer.sock")]);
    drop(server);
    assert!(!path.exists(), "shutdown removes the socket file");
}

#[test]
fn malformed_lines_get_errors_and_the_connection_survives() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir);
    let mut raw = Raw::open(server.path());

    let env = raw.send(b"this is not json\n");
    assert!(!env.ok);
    let e = env.error.unwrap();
    assert!(e.starts_with("invalid request: expected"), "{e}");

    let env = raw.send(b"{\"cmd\":\"explode\"}\n");
    let e = env.error.unwrap();
    assert!(e.contains("unknown variant `explode`"), "{e}");

    let env = raw.send(b"{\"cmd\":\"ban\",\"jail\":\"sshd\"}\n");
    let e = env.error.unwrap();
    assert!(e.contains("missing field `ips`"), "{e}");

    // Same connection, still served; blank lines are skipped.
    let env = raw.send(b"\n{\"cmd\":\"ping\"}\r\n");
    assert_eq!(env, Envelope::ok(Reply::Pong));
}

#[test]
fn an_overlong_line_gets_an_error_and_the_connection_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir);
    let mut raw = Raw::open(server.path());
    let mut long = vec![b'x'; MAX_REQUEST_BYTES + 10];
    long.push(b'\n');
    // The server answers and closes once the limit is passed, maybe before all of it
    // went through.
    let _ = raw.writer.write_all(&long);
    let mut line = String::new();
    raw.reader.read_line(&mut line).unwrap();
    let env: Envelope = serde_json::from_str(&line).unwrap();
    assert_eq!(
        env.error.unwrap(),
        format!("invalid request: line longer than {MAX_REQUEST_BYTES} bytes")
    );
    let mut rest = String::new();
    assert_eq!(raw.reader.read_to_string(&mut rest).unwrap_or(0), 0);
    assert_eq!(server.stats().too_long, 1);
    // A line of exactly the limit is read (and judged on its content).
    let mut raw = Raw::open(server.path());
    let mut exact = b"{\"cmd\":\"ping\"}".to_vec();
    exact.resize(MAX_REQUEST_BYTES, b' ');
    exact.push(b'\n');
    assert_eq!(raw.send(&exact), Envelope::ok(Reply::Pong));
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    // A crash leaves the file without a listener.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let server = ControlServer::bind(&path, fake_daemon()).unwrap();
    assert!(client::request(&path, &Request::Ping, T).unwrap().ok);

    let e = ControlServer::bind(&path, fake_daemon()).err().unwrap();
    assert_eq!(
        e.to_string(),
        format!("another banhammer is running on {}", path.display())
    );
    // The refused second daemon did not take the first one's socket away.
    assert!(client::request(&path, &Request::Ping, T).unwrap().ok);
    drop(server);

    std::fs::write(&path, "not a socket").unwrap();
    let e = ControlServer::bind(&path, fake_daemon()).err().unwrap();
    assert!(e.to_string().contains("is not a socket"), "{e}");
}

#[test]
fn past_the_cap_the_idlest_connection_makes_room_and_idle_ones_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    };
    let server = ControlServer::bind_with(&socket_in(&dir), fake_daemon(), config).unwrap();
    let mut first = Raw::open(server.path());
    assert!(first.send(b"{\"cmd\":\"ping\"}\n").ok);
    // The only slot is taken by an idle connection: it goes, the newcomer is served.
    let env = client::request(server.path(), &Request::Ping, T).unwrap();
    assert_eq!(env, Envelope::ok(Reply::Pong));
    let mut rest = String::new();
    assert_eq!(first.reader.read_to_string(&mut rest).unwrap(), 0);
    assert_eq!(server.stats().evicted, 1);
    drop(server);

    let config = ServerConfig {
        idle_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let server = ControlServer::bind_with(&socket_in(&dir), fake_daemon(), config).unwrap();
    let mut idle = Raw::open(server.path());
    assert!(idle.send(b"{\"cmd\":\"ping\"}\n").ok);
    // Closed by the server (EOF well before our read timeout).
    let mut rest = String::new();
    assert_eq!(idle.reader.read_to_string(&mut rest).unwrap(), 0);
    assert_eq!(server.stats().timed_out, 1);
}

#[test]
fn shutdown_closes_open_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(&dir);
    let mut raw = Raw::open(server.path());
    assert!(raw.send(b"{\"cmd\":\"ping\"}\n").ok);
    server.shutdown();
    let mut rest = String::new();
    assert_eq!(raw.reader.read_to_string(&mut rest).unwrap(), 0);
    assert!(matches!(
        client::request(&socket_in(&dir), &Request::Ping, T),
        Err(ClientError::NotRunning { .. })
    ));
}

fn cli(socket: &Path, args: &[&str]) -> Output {
    // Flags right after the verb: `client` takes every word after its first as its own.
    let mut cmd = env::banhammer();
    cmd.arg(args[0]).arg("-s").arg(socket).args(&args[1..]);
    cmd.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn cli_prints_like_fail2ban_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir);
    let s = server.path();
    let cases: &[(&[&str], &str)] = &[
        (&["ping"], "Server replied: pong\n"),
        (&["version"], "banhammer-0.1.0\n"),
        (
            &["status"],
            "Status\n|- Number of jail:\t2\n`- Jail list:\tnginx-http-auth, sshd\n",
        ),
        (
            &["status", "sshd"],
            "Status for the jail: sshd\n|- Filter\n|  |- Currently failed:\t2\n|  |- Total failed:\t17\n|  `- File list:\t/var/log/auth.log\n`- Actions\n   |- Currently banned:\t1\n   |- Total banned:\t3\n   `- Banned IP list:\t192.0.2.7\n",
        ),
        (
            &["client", "status", "sshd", "short"],
            "Status for the jail: sshd\n|- Filter\n|  |- Currently failed:\t2\n|  |- Total failed:\t17\n|  `- File list:\t/var/log/auth.log\n`- Actions\n   |- Currently banned:\t1\n   `- Total banned:\t3\n",
        ),
        (&["ban", "sshd", "192.0.2.8", "192.0.2.9"], "2\n"),
        (&["client", "set", "sshd", "banip", "192.0.2.8"], "1\n"),
        (&["banned"], "[{'sshd': ['192.0.2.7']}]\n"),
        (&["get", "sshd", "findtime"], "600\n"),
        (&["stop"], "Shutdown successful\n"),
    ];
    for (args, expected) in cases {
        let out = cli(s, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), *expected, "{args:?}");
    }
}

#[test]
fn cli_json_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir);
    let out = cli(server.path(), &["ping", "--json"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        "{\"ok\":true,\"result\":{\"kind\":\"pong\"}}\n"
    );

    let out = cli(server.path(), &["status", "nope"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("Sorry but the jail 'nope' does not exist"),
        "{}",
        stderr(&out)
    );
    let out = cli(server.path(), &["status", "nope", "--json"]);
    assert_eq!(out.status.code(), Some(255));
    assert_eq!(
        stdout(&out),
        "{\"ok\":false,\"error\":\"Sorry but the jail 'nope' does not exist\"}\n"
    );

    let out = cli(server.path(), &["client", "frobnicate"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("Sorry but the command is invalid"));
}

#[test]
fn cli_without_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let missing = socket_in(&dir);
    let out = cli(&missing, &["ping"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains(&format!(
            "Failed to access socket path: {}. Is banhammer running?",
            missing.display()
        )),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

fn http_get(addr: std::net::SocketAddr, target: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn metrics_are_scraped_over_loopback() {
    let m = Arc::new(Metrics::new());
    m.jail("sshd").ban();
    m.source("/var/log/auth.log").lines_read(5);
    let mut server = metrics::serve("127.0.0.1:0", Arc::clone(&m)).unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    let r = http_get(addr, "/metrics");
    let (head, body) = r.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"));
    assert!(head.contains(&format!("Content-Length: {}", body.len())));
    assert!(
        body.contains("banhammer_bans_total{jail=\"sshd\"} 1\n"),
        "{body}"
    );
    assert!(body.contains("banhammer_lines_read_total{source=\"/var/log/auth.log\"} 5\n"));

    // Counters move between scrapes.
    m.jail("sshd").ban();
    assert!(http_get(addr, "/metrics").contains("banhammer_bans_total{jail=\"sshd\"} 2\n"));

    assert!(http_get(addr, "/").starts_with("HTTP/1.1 404 Not Found\r\n"));
    server.shutdown();
    assert!(TcpStream::connect(addr).is_err());
}

// ---- Hostile and broken peers: idle, slow, deaf clients; dripping and flooding servers ----

/// How long a test waits for an answer that must come. A liveness bound, not a speed
/// claim: the answers come in milliseconds.
const LIVENESS: Duration = Duration::from_secs(10);

/// Runs `f` on a thread and returns its result, or fails the test if it has not come
/// within [`LIVENESS`] (the thread is left behind).
fn within<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(LIVENESS)
        .unwrap_or_else(|_| panic!("{what}: no answer within {LIVENESS:?}"))
}

/// A client that sends `request` one byte at a time, a byte every 50 ms, over and over,
/// until the server closes on it or the test ends.
struct Slowloris {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Slowloris {
    fn start(mut stream: impl Write + Send + 'static, request: &'static [u8]) -> Slowloris {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for b in request.iter().cycle() {
                if flag.load(std::sync::atomic::Ordering::SeqCst)
                    || stream.write_all(&[*b]).is_err()
                {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Slowloris {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Slowloris {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A client that writes `request` over and over and never reads a reply, until a write
/// fails (the server closed on it). Returns the thread, which ends then.
fn never_reads(
    mut stream: impl Write + Send + 'static,
    request: &'static [u8],
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || while stream.write_all(request).is_ok() {})
}

#[test]
fn idle_connections_do_not_lock_out_the_control_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir);
    let path = server.path().to_path_buf();
    let idle: Vec<UnixStream> = (0..200)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    let _slow = Slowloris::start(UnixStream::connect(&path).unwrap(), b"{\"cmd\":\"ping\"}\n");
    let _deaf = never_reads(UnixStream::connect(&path).unwrap(), b"{\"cmd\":\"ping\"}\n");
    let p = path.clone();
    let env = within("ping past 200 idle connections", move || {
        client::request(&p, &Request::Ping, T)
    });
    assert_eq!(env.unwrap(), Envelope::ok(Reply::Pong));
    // Twice: the first answer was not a lucky slot.
    let env = within("second ping", move || {
        client::request(&path, &Request::Ping, T)
    });
    assert_eq!(env.unwrap(), Envelope::ok(Reply::Pong));
    // The server made room by closing idle connections, never by turning clients away.
    let stats = server.stats();
    let cap = ServerConfig::default().max_connections as u64;
    assert!(stats.evicted >= 200 - cap, "{stats:?}");
    assert_eq!(stats.refused, 0, "{stats:?}");
    drop(idle);
}

#[test]
fn idle_connections_do_not_block_a_metrics_scrape() {
    let m = Arc::new(Metrics::new());
    m.jail("sshd").ban();
    // A body larger than the socket buffers, so a client that never reads it really
    // leaves the server with a reply it cannot finish.
    for i in 0..20_000 {
        m.source(&format!(
            "/var/log/a-rather-long-directory-name/for-a-big-body/{i:08}.log"
        ))
        .lines_read(1);
    }
    let server = metrics::serve("127.0.0.1:0", Arc::clone(&m)).unwrap();
    let addr = server.local_addr();
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let _slow = Slowloris::start(
        TcpStream::connect(addr).unwrap(),
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    let deaf: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
            s
        })
        .collect();
    let r = within("scrape past 200 idle connections", move || {
        http_get(addr, "/metrics")
    });
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        &r[..r.len().min(200)]
    );
    assert!(r.contains("banhammer_bans_total{jail=\"sshd\"} 1\n"));
    let stats = server.stats();
    assert!(stats.evicted >= 100, "{stats:?}");
    assert_eq!(stats.refused, 0, "{stats:?}");
    drop((idle, deaf));
}

#[test]
fn a_request_line_of_100_mb_is_refused_at_the_limit_not_at_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir);
    let stream = UnixStream::connect(server.path()).unwrap();
    stream.set_read_timeout(Some(LIVENESS)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    const LINE: usize = 100 << 20;
    let sent = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 << 10];
        let mut sent = 0;
        while sent < LINE {
            match writer.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).unwrap();
    let env: Envelope = serde_json::from_str(&line).unwrap();
    let e = env.error.unwrap();
    assert!(
        e.contains(&format!("longer than {MAX_REQUEST_BYTES} bytes")),
        "{e}"
    );
    // The server closed on the rest instead of reading 100 MB it will never use.
    let sent = sent.join().unwrap();
    assert!(sent < LINE, "the whole {sent}-byte line was taken");
}

#[test]
fn an_http_request_head_past_8_kib_is_refused() {
    let server = metrics::serve("127.0.0.1:0", Arc::new(Metrics::new())).unwrap();
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(LIVENESS)).unwrap();
    let mut long = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    long.resize(16 << 10, b'a');
    // The server may close before it all went through; its answer is still there.
    let _ = s.write_all(&long);
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{response}"
    );
}

/// A fake daemon whose `reload` waits until the test says so.
fn slow_reload_daemon() -> (Handler, std::sync::mpsc::Sender<()>) {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = Arc::new(std::sync::Mutex::new(released));
    let fast = fake_daemon();
    let handler: Handler = Arc::new(move |req: Request| match req {
        Request::Reload { .. } => {
            let _ = released.lock().unwrap().recv();
            Envelope::ok(Reply::Reloaded { messages: vec![] })
        }
        other => fast(other),
    });
    (handler, release)
}

#[test]
fn a_slow_request_does_not_hold_up_a_ping_from_another_client() {
    let dir = tempfile::tempdir().unwrap();
    let (handler, release) = slow_reload_daemon();
    let server = ControlServer::bind(&socket_in(&dir), handler).unwrap();
    let mut slow: Vec<UnixStream> = (0..3)
        .map(|_| {
            let mut s = UnixStream::connect(server.path()).unwrap();
            s.write_all(b"{\"cmd\":\"reload\"}\n").unwrap();
            s
        })
        .collect();
    let path = server.path().to_path_buf();
    let env = within("ping beside three slow reloads", move || {
        client::request(&path, &Request::Ping, T)
    });
    assert_eq!(env.unwrap(), Envelope::ok(Reply::Pong));
    // Any handler may take any release: release all, then read all.
    for _ in &slow {
        release.send(()).unwrap();
    }
    for s in &mut slow {
        s.set_read_timeout(Some(LIVENESS)).unwrap();
        let mut line = String::new();
        BufReader::new(&*s).read_line(&mut line).unwrap();
        assert!(line.contains("reloaded"), "{line}");
    }
}

#[test]
fn past_the_cap_of_requests_in_progress_a_client_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (handler, release) = slow_reload_daemon();
    let config = ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    };
    let server = ControlServer::bind_with(&socket_in(&dir), handler, config).unwrap();
    // A ping then a reload on each: the server cuts the reload and hands it to the
    // handler as soon as the pong is out, so once the pong is read the reload is in.
    let mut slow: Vec<Raw> = (0..2).map(|_| Raw::open(server.path())).collect();
    for raw in &mut slow {
        let env = raw.send(b"{\"cmd\":\"ping\"}\n{\"cmd\":\"reload\"}\n");
        assert_eq!(env, Envelope::ok(Reply::Pong));
    }
    // Both are inside the handler: they cannot be evicted (their answer is coming).
    let path = server.path().to_path_buf();
    let env = within("a third client", move || {
        client::request(&path, &Request::Ping, T)
    })
    .unwrap();
    let e = env.error.unwrap();
    assert_eq!(
        e,
        "too many control requests in progress (at most 2); try again"
    );
    assert_eq!(server.stats().refused, 1);
    release.send(()).unwrap();
    release.send(()).unwrap();
    for raw in &mut slow {
        let mut line = String::new();
        raw.reader.read_line(&mut line).unwrap();
        assert!(line.contains("reloaded"), "{line}");
    }
    let path = server.path().to_path_buf();
    let env = within("a client after the slow ones", move || {
        client::request(&path, &Request::Ping, T)
    });
    assert_eq!(env.unwrap(), Envelope::ok(Reply::Pong));
}

/// A hostile "daemon" on `path`: `behave` gets each accepted connection.
fn hostile_server(
    path: &Path,
    behave: impl Fn(UnixStream) + Send + Sync + 'static,
) -> std::thread::JoinHandle<()> {
    let listener = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        if let Ok((s, _)) = listener.accept() {
            behave(s);
        }
    })
}

#[test]
fn a_server_that_drips_bytes_cannot_hold_the_client_past_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let _server = hostile_server(&path, |mut s| {
        // One byte every 20 ms, never a newline: each read succeeds well within the
        // client's timeout, so only a deadline on the whole reply ends this.
        while s.write_all(b"x").is_ok() {
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let timeout = Duration::from_millis(300);
    let got = within("a client facing a dripping server", move || {
        client::request(&path, &Request::Ping, timeout)
    });
    match got {
        Err(e @ ClientError::Timeout { .. }) => {
            assert!(e.to_string().contains("no reply from banhammer"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_server_that_never_answers_makes_the_client_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let _server = hostile_server(&path, |s| {
        std::thread::sleep(LIVENESS);
        drop(s);
    });
    let got = within("a client facing a mute server", move || {
        client::request(&path, &Request::Ping, Duration::from_millis(200))
    });
    assert!(matches!(got, Err(ClientError::Timeout { .. })), "{got:?}");
}

#[test]
fn a_reply_past_the_size_cap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let _server = hostile_server(&path, |mut s| {
        let chunk = vec![b'x'; 1 << 20];
        while s.write_all(&chunk).is_ok() {}
    });
    let got = within("a client facing a flooding server", move || {
        client::request(&path, &Request::Ping, T)
    });
    match got {
        Err(e @ ClientError::BadReply { .. }) => {
            let want = format!("longer than {} bytes", client::MAX_REPLY_BYTES);
            assert!(e.to_string().contains(&want), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_reply_cut_before_its_newline_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let _server = hostile_server(&path, |mut s| {
        let _ = s.write_all(b"{\"ok\":tr");
    });
    let got = within("a client facing a server that hangs up", move || {
        client::request(&path, &Request::Ping, T)
    });
    match got {
        Err(e @ ClientError::BadReply { .. }) => {
            assert!(e.to_string().contains("EOF while parsing"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

/// A listener on `path` that never accepts, its backlog already full: what a daemon
/// that is stuck (stopped, wedged) looks like to a client.
fn stuck_listener(path: &Path) -> (rustix::fd::OwnedFd, Vec<rustix::fd::OwnedFd>) {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let addr = SocketAddrUnix::new(path).unwrap();
    let listener = rustix::net::socket(AddressFamily::UNIX, SocketType::STREAM, None).unwrap();
    rustix::net::bind(&listener, &addr).unwrap();
    rustix::net::listen(&listener, 0).unwrap();
    let mut queued = Vec::new();
    loop {
        let s = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::NONBLOCK,
            None,
        )
        .unwrap();
        match rustix::net::connect(&s, &addr) {
            Ok(()) => queued.push(s),
            Err(rustix::io::Errno::AGAIN) => return (listener, queued),
            Err(e) => panic!("{e}"),
        }
        assert!(queued.len() < 100, "the backlog never filled");
    }
}

#[test]
fn a_daemon_too_stuck_to_accept_cannot_hang_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let _stuck = stuck_listener(&path);
    let got = within("a client facing a full backlog", move || {
        client::request(&path, &Request::Ping, Duration::from_millis(300))
    });
    assert!(matches!(got, Err(ClientError::Timeout { .. })), "{got:?}");
}

#[test]
fn a_stuck_daemon_is_not_taken_for_a_stale_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let _stuck = stuck_listener(&path);
    let p = path.clone();
    let got = within("binding beside a stuck daemon", move || {
        ControlServer::bind(&p, fake_daemon()).map(|_| ())
    });
    let e = got.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("another banhammer is running on {}", path.display())
    );
}
