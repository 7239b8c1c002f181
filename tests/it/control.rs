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
fn malformed_and_overlong_lines_get_errors_and_the_connection_survives() {
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

    let mut long = vec![b'x'; MAX_REQUEST_BYTES + 10];
    long.push(b'\n');
    let env = raw.send(&long);
    let e = env.error.unwrap();
    assert!(
        e.contains(&format!("longer than {MAX_REQUEST_BYTES} bytes")),
        "{e}"
    );

    // Same connection, still served; blank lines are skipped.
    let env = raw.send(b"\n{\"cmd\":\"ping\"}\r\n");
    assert_eq!(env, Envelope::ok(Reply::Pong));
    // And the server still takes new connections.
    assert!(
        client::request(server.path(), &Request::Ping, T)
            .unwrap()
            .ok
    );
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
fn connections_are_capped_and_idle_ones_closed() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        max_connections: 1,
        idle_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let server = ControlServer::bind_with(&socket_in(&dir), fake_daemon(), config).unwrap();
    let mut first = Raw::open(server.path());
    assert!(first.send(b"{\"cmd\":\"ping\"}\n").ok);
    let env = client::request(server.path(), &Request::Ping, T).unwrap();
    assert!(env.error.unwrap().contains("too many control connections"));
    // The idle first connection is closed by the server (EOF well before our timeout).
    let mut rest = String::new();
    assert_eq!(first.reader.read_to_string(&mut rest).unwrap(), 0);
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
