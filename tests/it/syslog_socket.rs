//! The syslog listener end to end: real datagrams over a temporary Unix socket and over
//! UDP on 127.0.0.1 (an ephemeral port), read back as the `Entry` events a jail's reader
//! gets; who may send (socket permissions, sender credentials from other users' processes,
//! as root), rate limits and cut datagrams, checked by counting. Loopback only; no fixed
//! sleeps stand in for conditions (waits poll with a deadline).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use banhammer::source::syslog::{
    spawn_syslog, Accounts, SyslogHandle, SyslogListen, SyslogStats, MAX_DATAGRAM,
};
use banhammer::source::{SkipReason, SourceEvent};

use crate::env;

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

/// `group=…, senders=…` for this process's own group and user: the socket can then be
/// made and used without root (tests about the defaults need root and say so).
fn mine() -> String {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    format!("group={gid}, senders={uid}")
}

/// Every event until `cond` holds on the stats (or the deadline passes), returned.
fn events_until(
    rx: &Receiver<SourceEvent>,
    stats: &SyslogStats,
    cond: impl Fn(&SyslogStats) -> bool,
) -> Vec<SourceEvent> {
    let end = Instant::now() + DEADLINE;
    let mut out = Vec::new();
    while !cond(stats) {
        assert!(
            Instant::now() < end,
            "timed out; stats {stats:?}, events {out:?}"
        );
        if let Ok(ev) = rx.recv_timeout(Duration::from_millis(20)) {
            out.push(ev);
        }
    }
    // What was sent before the counters moved is in the channel already.
    while let Ok(ev) = rx.try_recv() {
        out.push(ev);
    }
    out
}

fn entries(evs: &[SourceEvent]) -> Vec<String> {
    evs.iter()
        .filter_map(|e| match e {
            SourceEvent::Entry { bytes, .. } => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}

/// A directory everyone may enter (tempfile's are 0700: a test of who may send must not
/// pass because nobody could reach the socket anyway).
fn open_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Root, and setpriv/logger to send as another user: or skip loudly (fail under CI).
fn can_send_as_others() -> bool {
    env::require("root (to send as another user)", is_root())
        && env::require("setpriv and logger (util-linux, bsdutils)", {
            env::have_command("setpriv") && env::have_command("logger")
        })
}

/// Sends `message` to the Unix socket `path` as `user:group` (logger under setpriv); whether
/// the send succeeded.
fn send_as(user: &str, group: &str, path: &Path, message: &str) -> bool {
    Command::new("setpriv")
        .args(["--reuid", user, "--regid", group, "--clear-groups"])
        .args(["logger", "--socket-errors=on", "-u"])
        .arg(path)
        .args(["-t", "wordpress", message])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
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
        &format!(
            "syslog[socket={}, udp=127.0.0.1:0, {}]",
            path.display(),
            mine()
        ),
        64,
    );
    // The parent directory was made; the socket is the owner's and its group's.
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
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
    let (h, rx) = start(
        &format!("syslog[socket={}, {}]", path.display(), mine()),
        64,
    );
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
    // A datagram of exactly the limit is whole.
    let mut full = b"<38>Nov 25 15:55:15 app: ".to_vec();
    full.resize(MAX_DATAGRAM, b'A');
    send_unix(&path, &full);
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
        &format!(
            "syslog[socket={}, facility=authpriv, {}]",
            path.display(),
            mine()
        ),
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
    let (h, rx) = start(&format!("syslog[socket={}, {}]", path.display(), mine()), 1);
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
    let backend = format!("syslog[socket={}, mode=0620, {}]", path.display(), mine());
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
    let mut listen = SyslogListen::from_backend("syslog[udp=127.0.0.1:0]").unwrap();
    listen.udp = Some("0.0.0.0:0".parse().unwrap());
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
        "syslog[socket={}, udp={}, {}]",
        path.display(),
        taken.local_addr().unwrap(),
        mine()
    );
    let (tx, _rx) = sync_channel(8);
    let e = spawn_syslog(SyslogListen::from_backend(&backend).unwrap(), tx).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
    assert!(!path.exists());
}

/// The reviewed attack: a datagram whose first 8,192 bytes end in `from 6.6` was cut at
/// the receive buffer and matched (banning 6.0.0.6). Now a datagram longer than the limit
/// is dropped whole, on both sockets, counted and reported.
#[test]
fn a_cut_datagram_is_never_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = sock_path(dir.path());
    let (h, rx) = start(
        &format!(
            "syslog[socket={}, udp=127.0.0.1:0, {}]",
            path.display(),
            mine()
        ),
        64,
    );
    let mut bait = b"<38>Nov 25 15:55:15 wordpress[1]: Authentication failure for ".to_vec();
    bait.resize(MAX_DATAGRAM - b" from 6.6".len(), b'A');
    bait.extend_from_slice(b" from 6.6");
    assert_eq!(bait.len(), MAX_DATAGRAM);
    bait.extend_from_slice(b".7.1 from 192.0.2.7");
    send_unix(&path, &bait);
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.send_to(&bait, h.udp_addr().unwrap()).unwrap();
    // A whole one after each, so we know the cut ones were looked at.
    send_unix(&path, b"<38>Nov 25 15:55:15 wordpress[1]: whole");
    client
        .send_to(
            b"<38>Nov 25 15:55:15 wordpress[1]: whole",
            h.udp_addr().unwrap(),
        )
        .unwrap();
    let stats = h.stats();
    let evs = events_until(&rx, &stats, |s| s.accepted.load(Ordering::Relaxed) == 2);
    assert_eq!(
        entries(&evs),
        [
            format!("{} wordpress[1]: whole", host()),
            format!("{} wordpress[1]: whole", host())
        ]
    );
    assert_eq!(stats.oversized.load(Ordering::Relaxed), 2);
    let skipped: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Skipped(s) => Some(s),
            _ => None,
        })
        .collect();
    // One report per socket (each rate-limits its own), with the whole length.
    assert_eq!(skipped.len(), 2, "{evs:?}");
    for s in skipped {
        assert_eq!(s.len, bait.len() as u64);
        assert_eq!(
            s.reason,
            SkipReason::TooLong {
                limit: MAX_DATAGRAM as u64
            }
        );
    }
    h.stop();
}

/// The reviewed attack: with the socket at mode 0666 any local user could get any address
/// banned (as `nobody`, one datagram banned 9.9.9.9). Now the socket is 0660 root:www-data,
/// so `nobody` cannot send at all; and where an operator opens the mode, the kernel's word
/// on the sender (SO_PASSCRED) keeps `nobody` out of the allow-list anyway.
#[test]
fn a_local_user_cannot_get_an_address_banned_through_the_syslog_socket() {
    if !can_send_as_others() {
        return;
    }
    if Accounts::system().uid("www-data").is_none() {
        assert!(!env::in_ci(), "no www-data user under CI=true");
        eprintln!("\n!!! SKIPPED: no www-data user on this machine !!!\n");
        return;
    }
    let msg = "Authentication failure for admin from 9.9.9.9";
    for mode in ["", ", mode=0666"] {
        let dir = open_dir();
        let path = sock_path(dir.path());
        let (h, rx) = start(&format!("syslog[socket={}{mode}]", path.display()), 64);
        let stats = h.stats();
        let sent = send_as("nobody", "nogroup", &path, msg);
        // 0660: refused by the file system; 0666: taken by the kernel, denied by us.
        assert_eq!(sent, !mode.is_empty(), "mode {mode:?}");
        let mut evs = Vec::new();
        if sent {
            evs = events_until(&rx, &stats, |s| s.denied.load(Ordering::Relaxed) == 1);
        }
        // The web server's user may send (its group may write, it is an allowed sender),
        // and its record comes after: nobody's never did.
        assert!(send_as("www-data", "www-data", &path, "www-data was here"));
        evs.extend(events_until(&rx, &stats, |s| {
            s.accepted.load(Ordering::Relaxed) == 1
        }));
        let got = entries(&evs);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].ends_with("www-data was here"), "{got:?}");
        assert!(!got.iter().any(|l| l.contains("9.9.9.9")));
        if sent {
            let said: Vec<&SourceEvent> = evs
                .iter()
                .filter(|e| matches!(e, SourceEvent::Warning(w) if w.contains("uid 65534")))
                .collect();
            assert_eq!(said.len(), 1, "{evs:?}");
            // The wider mode was pointed out when the listener started.
            assert!(evs
                .iter()
                .any(|e| matches!(e, SourceEvent::Info(i) if i.contains("every local user"))));
        }
        assert_eq!(stats.denied.load(Ordering::Relaxed), u64::from(sent));
        h.stop();
    }
}

/// The socket's permissions: 0660, owner root, group www-data (the default), already in
/// place when the path appears — it is bound and set up in a private directory, which is
/// gone afterwards.
#[test]
fn the_syslog_socket_is_0660_root_and_its_group() {
    if !env::require("root (to give the socket to www-data)", is_root()) {
        return;
    }
    let Some(gid) = Accounts::system().gid("www-data") else {
        assert!(!env::in_ci(), "no www-data group under CI=true");
        eprintln!("\n!!! SKIPPED: no www-data group on this machine !!!\n");
        return;
    };
    let dir = open_dir();
    let path = sock_path(dir.path());
    let (h, _rx) = start(&format!("syslog[socket={}]", path.display()), 8);
    let m = std::fs::symlink_metadata(&path).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o660);
    assert_eq!((m.uid(), m.gid()), (0, gid));
    let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from("syslog.sock")]);
    // An explicit group that does not exist is an error naming it, before any socket.
    let e = SyslogListen::from_backend("syslog[group=no-such-group-here]").unwrap_err();
    assert!(e.contains("no-such-group-here"), "{e}");
    h.stop();
}

/// A sender over its rate is dropped and counted, and other senders are not held back by
/// it: counted, never timed (only "more than the burst, less than all" is asserted).
#[test]
fn a_sender_over_its_rate_is_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = sock_path(dir.path());
    // One a second, five at once.
    let (h, rx) = start(
        &format!(
            "syslog[socket={}, udp=127.0.0.1:0, rate=1, {}]",
            path.display(),
            mine()
        ),
        256,
    );
    let stats = h.stats();
    for i in 0..50 {
        send_unix(
            &path,
            format!("<13>Nov 25 15:55:15 app: unix {i}").as_bytes(),
        );
    }
    let evs = events_until(&rx, &stats, |s| {
        s.accepted.load(Ordering::Relaxed) + s.rate_limited.load(Ordering::Relaxed) == 50
    });
    let accepted = stats.accepted.load(Ordering::Relaxed);
    assert!((5..50).contains(&accepted), "{stats:?}");
    assert_eq!(entries(&evs).len() as u64, accepted);
    // Said once for this sender, not once per drop.
    let said = evs
        .iter()
        .filter(|e| matches!(e, SourceEvent::Warning(w) if w.contains("records a second")))
        .count();
    assert_eq!(said, 1, "{evs:?}");

    // UDP: per source address. 127.0.0.2 floods, 127.0.0.3 sends three: all three pass.
    let udp = h.udp_addr().unwrap();
    let flood = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    let quiet = std::net::UdpSocket::bind("127.0.0.3:0").unwrap();
    for i in 0..50 {
        flood
            .send_to(
                format!("<13>Nov 25 15:55:15 app: flood {i}").as_bytes(),
                udp,
            )
            .unwrap();
    }
    for i in 0..3 {
        quiet
            .send_to(
                format!("<13>Nov 25 15:55:15 app: quiet {i}").as_bytes(),
                udp,
            )
            .unwrap();
    }
    let evs = events_until(&rx, &stats, |s| {
        s.accepted.load(Ordering::Relaxed) + s.rate_limited.load(Ordering::Relaxed) == 103
    });
    let got = entries(&evs);
    assert_eq!(got.iter().filter(|l| l.contains("quiet")).count(), 3);
    let flooded = got.iter().filter(|l| l.contains("flood")).count();
    assert!((5..50).contains(&flooded), "{flooded}");
    h.stop();
}

/// A flood the reader cannot keep up with: the kernel drops datagrams on the UDP socket,
/// and those drops are counted (from the kernel's own count) and said.
#[test]
fn kernel_drops_on_udp_are_counted() {
    // Nobody drains the channel of one: the listener stops reading, the queue fills.
    let (h, rx) = start("syslog[udp=127.0.0.1:0]", 1);
    let stats = h.stats();
    let udp = h.udp_addr().unwrap();
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let payload = vec![b'x'; 1024];
    // Far more than a 4 MiB buffer holds (each datagram takes more than its size in it).
    for _ in 0..20_000 {
        let _ = client.send_to(&payload, udp);
    }
    let evs = events_until(&rx, &stats, |s| s.kernel_drops.load(Ordering::Relaxed) > 0);
    let drops = stats.kernel_drops.load(Ordering::Relaxed);
    assert!(drops > 0 && drops < 20_000, "{drops}");
    // Said when it was seen (the warning may still be on its way: look a little longer).
    let mut evs = evs;
    let end = Instant::now() + DEADLINE;
    while !evs
        .iter()
        .any(|e| matches!(e, SourceEvent::Warning(w) if w.contains("the kernel dropped")))
    {
        assert!(Instant::now() < end, "no warning about kernel drops");
        if let Ok(ev) = rx.recv_timeout(Duration::from_millis(20)) {
            evs.push(ev);
        }
    }
    h.stop();
}

/// Finding: the shipped unit's `RuntimeDirectoryMode=0700` made the WordPress plugin's
/// socket logging fail: the web server could not enter `/run/banhammer`. A root-only
/// directory the socket is bound in is given to the socket's group (enter only), so the
/// web server reaches its socket and other users still cannot enter.
#[test]
fn the_web_group_can_reach_a_socket_in_a_root_only_runtime_directory() {
    if !can_send_as_others() {
        return;
    }
    let Some(gid) = Accounts::system().gid("www-data") else {
        assert!(!env::in_ci(), "no www-data group under CI=true");
        eprintln!("\n!!! SKIPPED: no www-data group on this machine !!!\n");
        return;
    };
    let dir = open_dir();
    let run = dir.path().join("run/banhammer");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o750)).unwrap();
    let path = run.join("syslog.sock");
    let (h, rx) = start(&format!("syslog[socket={}]", path.display()), 8);
    let m = std::fs::metadata(&run).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (0, gid, 0o750));
    assert!(send_as(
        "www-data",
        "www-data",
        &path,
        "from the web server"
    ));
    let (_, line, _) = next_entry(&rx);
    assert!(String::from_utf8_lossy(&line).contains("from the web server"));
    assert!(
        !send_as("nobody", "nogroup", &path, "from nobody"),
        "another user entered the directory"
    );
    h.stop();
}
