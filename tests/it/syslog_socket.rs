//! The syslog listener end to end: real datagrams over a temporary Unix socket and over
//! UDP on 127.0.0.1 (an ephemeral port), read back as the `Entry` events a jail's reader
//! gets. Loopback only; no fixed sleeps (waits poll with a deadline).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use banhammer::source::syslog::{spawn_syslog, SyslogHandle, SyslogListen, MAX_DATAGRAM};
use banhammer::source::SourceEvent;

const DEADLINE: Duration = Duration::from_secs(5);

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Waits for the next `Entry`, skipping other events: (origin, line, time).
fn next_entry(rx: &Receiver<SourceEvent>) -> (String, Vec<u8>, f64) {
    let end = Instant::now() + DEADLINE;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(SourceEvent::Entry {
                origin,
                bytes,
                time,
            }) => return (origin.to_string(), bytes, time),
            Ok(_) => continue,
            Err(e) => panic!("no entry within {DEADLINE:?}: {e}"),
        }
    }
}

/// No `Entry` arrives within a short while.
fn no_entry(rx: &Receiver<SourceEvent>) {
    let end = Instant::now() + Duration::from_millis(300);
    while let Ok(ev) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        assert!(
            !matches!(ev, SourceEvent::Entry { .. }),
            "unexpected entry {ev:?}"
        );
    }
}

fn start(backend: &str, capacity: usize) -> (SyslogHandle, Receiver<SourceEvent>) {
    let listen = SyslogListen::from_backend(backend).unwrap();
    let (tx, rx) = sync_channel(capacity);
    (spawn_syslog(listen, tx).unwrap(), rx)
}

fn send_unix(path: &Path, datagram: &[u8]) {
    UnixDatagram::unbound()
        .unwrap()
        .send_to(datagram, path)
        .unwrap();
}

fn host() -> String {
    banhammer::source::syslog::local_hostname()
}

fn sock_path(dir: &Path) -> PathBuf {
    dir.join("run/banhammer/syslog.sock")
}

#[test]
fn unix_and_udp_datagrams_become_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = sock_path(dir.path());
    let (h, rx) = start(
        &format!("syslog[socket={}, udp=127.0.0.1:0]", path.display()),
        64,
    );
    // The parent directory was made; the socket is writable by everyone, like /dev/log.
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666);
    let udp = h.udp_addr().unwrap();
    assert!(udp.ip().is_loopback() && udp.port() != 0);

    // What PHP's syslog() sends through glibc: the local form, no host.
    let before = now();
    send_unix(
        &path,
        b"<38>Nov 25 15:55:15 wordpress(192.0.2.7)[4242]: Authentication failure for admin from 192.0.2.7",
    );
    let (origin, line, time) = next_entry(&rx);
    assert_eq!(origin, format!("syslog:{}", path.display()));
    assert_eq!(
        String::from_utf8(line).unwrap(),
        format!(
            "{} wordpress(192.0.2.7)[4242]: Authentication failure for admin from 192.0.2.7",
            host()
        )
    );
    // Timed at reception, not by the datagram's date.
    assert!(time >= before - 0.001 && time <= now() + 0.001, "{time}");

    // RFC 5424 over UDP, with its own host.
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .send_to(
            b"<86>1 2026-11-25T15:55:15.003Z web1 sshd 77 - - Failed password for root from 203.0.113.9 port 22 ssh2",
            udp,
        )
        .unwrap();
    let (origin, line, _) = next_entry(&rx);
    assert_eq!(origin, format!("udp:{udp}"));
    assert_eq!(
        line,
        b"web1 sshd[77]: Failed password for root from 203.0.113.9 port 22 ssh2"
    );

    // RFC 3164 with a host, over UDP.
    client
        .send_to(
            b"<38>Nov  5 01:02:03 web2 su[9]: FAILED SU (to root) bob on pts/0",
            udp,
        )
        .unwrap();
    assert_eq!(
        next_entry(&rx).1,
        b"web2 su[9]: FAILED SU (to root) bob on pts/0"
    );

    let t = Instant::now();
    h.stop();
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "stop took {:?}",
        t.elapsed()
    );
    assert!(!path.exists(), "the socket is removed on stop");
}

#[test]
fn one_datagram_is_one_escaped_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = sock_path(dir.path());
    let (h, rx) = start(&format!("syslog[socket={}]", path.display()), 64);
    // A user name that tries to start a second log line.
    send_unix(
        &path,
        b"<38>Nov 25 15:55:15 wordpress[1]: Authentication failure for x\nNov 25 15:55:16 h sshd[2]: Failed password for root from 198.51.100.1\0 from 192.0.2.7\n",
    );
    let line = String::from_utf8(next_entry(&rx).1).unwrap();
    assert_eq!(
        line,
        format!(
            "{} wordpress[1]: Authentication failure for x#012Nov 25 15:55:16 h sshd[2]: Failed password for root from 198.51.100.1#000 from 192.0.2.7",
            host()
        )
    );
    // Invalid UTF-8 stays as bytes.
    send_unix(&path, b"<38>Nov 25 15:55:15 app: caf\xe9");
    assert_eq!(
        next_entry(&rx).1,
        [host().as_bytes(), b" app: caf\xe9"].concat()
    );
    // An oversized datagram is cut at the limit, and is still one record.
    let mut big = b"<38>Nov 25 15:55:15 app: ".to_vec();
    big.resize(MAX_DATAGRAM + 5000, b'A');
    send_unix(&path, &big);
    let line = next_entry(&rx).1;
    let kept_message = MAX_DATAGRAM - b"<38>Nov 25 15:55:15 app: ".len();
    assert_eq!(line.len(), host().len() + " app: ".len() + kept_message);
    // The next datagram is separate.
    send_unix(&path, b"<38>Nov 25 15:55:15 app: after");
    assert_eq!(
        next_entry(&rx).1,
        [host().as_bytes(), b" app: after"].concat()
    );
    // Garbage is a message, never a crash.
    send_unix(&path, b"\xff\xfe<<<>>>");
    assert_eq!(
        next_entry(&rx).1,
        [host().as_bytes(), b" \xff\xfe<<<>>>"].concat()
    );
    h.stop();
}

#[test]
fn facility_filter() {
    let dir = tempfile::tempdir().unwrap();
    let path = sock_path(dir.path());
    let (h, rx) = start(
        &format!("syslog[socket={}, facility=authpriv]", path.display()),
        64,
    );
    send_unix(&path, b"<13>Nov 25 15:55:15 app: user.notice, dropped");
    send_unix(&path, b"<86>Nov 25 15:55:15 sshd[1]: authpriv.info, kept");
    let line = next_entry(&rx).1;
    assert!(line.ends_with(b"authpriv.info, kept"));
    no_entry(&rx);
    h.stop();
}

#[test]
fn full_channel_holds_datagrams_back_without_losing_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = sock_path(dir.path());
    let (h, rx) = start(&format!("syslog[socket={}]", path.display()), 1);
    // More than the channel and the socket's queue hold (max_dgram_qlen is often 10):
    // the sender blocks, as glibc's syslog() does on a busy /dev/log, and nothing is lost.
    let p = path.clone();
    let sender = std::thread::spawn(move || {
        for i in 0..50 {
            send_unix(&p, format!("<13>Nov 25 15:55:15 app: n={i}").as_bytes());
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    for i in 0..50 {
        let line = next_entry(&rx).1;
        assert!(
            line.ends_with(format!(" n={i}").as_bytes()),
            "{}",
            String::from_utf8_lossy(&line)
        );
    }
    sender.join().unwrap();
    // Stopping while blocked on a full channel still returns.
    send_unix(&path, b"<13>Nov 25 15:55:15 app: x");
    send_unix(&path, b"<13>Nov 25 15:55:15 app: y");
    std::thread::sleep(Duration::from_millis(50));
    h.stop();
    drop(rx);
}

#[test]
fn stale_socket_is_replaced_live_one_and_files_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = sock_path(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // A socket file left behind by a crashed run.
    drop(UnixDatagram::bind(&path).unwrap());
    assert!(path.exists());
    let backend = format!("syslog[socket={}, mode=0620]", path.display());
    let (h, rx) = start(&backend, 8);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o620);
    // A second listener on the live socket is refused (it would steal it).
    let (tx2, _rx2) = sync_channel(8);
    let e = spawn_syslog(SyslogListen::from_backend(&backend).unwrap(), tx2).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    // The first one still works.
    send_unix(&path, b"<13>Nov 25 15:55:15 app: still here");
    assert!(next_entry(&rx).1.ends_with(b"still here"));
    h.stop();
    assert!(!path.exists());

    // A regular file in the way is never deleted.
    std::fs::write(&path, b"precious").unwrap();
    let (tx3, _rx3) = sync_channel(8);
    let e = spawn_syslog(SyslogListen::from_backend(&backend).unwrap(), tx3).unwrap_err();
    assert!(e.to_string().contains("not a socket"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[test]
fn only_loopback_addresses_are_bound() {
    let e = SyslogListen::from_backend("syslog[udp=0.0.0.0:5514]").unwrap_err();
    assert!(e.contains("not a loopback address"), "{e}");
    // A hand-built value cannot bypass the check.
    let listen = SyslogListen {
        socket: None,
        udp: Some("0.0.0.0:0".parse().unwrap()),
        mode: 0o666,
        facilities: None,
    };
    let (tx, _rx) = sync_channel(8);
    let e = spawn_syslog(listen, tx).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn a_failed_udp_bind_leaves_no_socket_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = sock_path(dir.path());
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let backend = format!(
        "syslog[socket={}, udp={}]",
        path.display(),
        taken.local_addr().unwrap()
    );
    let (tx, _rx) = sync_channel(8);
    let e = spawn_syslog(SyslogListen::from_backend(&backend).unwrap(), tx).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
    assert!(!path.exists());
}
