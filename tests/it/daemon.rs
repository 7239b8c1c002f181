//! `banhammer run` as a user runs it: a config dir, a log being written, the client verbs
//! over the control socket, signals. The first tests need nothing special (dummy and
//! command actions, temp files); the `netns_*` tests run the daemon inside a network
//! namespace they create, with the real nftables backend (root; skipped loudly without,
//! failing under CI=true).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::env;
use crate::netns::Netns;

/// A config dir, a log, and the daemon's runtime files, all under one temp dir.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// `jail_local` is written as the config dir's jail.local (`{LOG}` and `{DIR}` are
    /// replaced by the log path and the temp dir).
    fn new(jail_local: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let s = Setup { dir };
        fs::create_dir_all(s.conf()).unwrap();
        fs::write(s.log(), "").unwrap();
        fs::write(
            s.conf().join("fail2ban.local"),
            format!(
                "[Definition]\nsocket = {d}/bh.sock\npidfile = {d}/bh.pid\ndbfile = {d}/bh.sqlite3\nloglevel = INFO\n",
                d = s.path().display()
            ),
        )
        .unwrap();
        s.write_jail_local(jail_local);
        s
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn conf(&self) -> PathBuf {
        self.path().join("conf")
    }

    fn log(&self) -> PathBuf {
        self.path().join("auth.log")
    }

    fn socket(&self) -> PathBuf {
        self.path().join("bh.sock")
    }

    /// Writes jail.local; the embedded config's sshd jail is always disabled (it would
    /// touch the host's firewall and read the host's auth log).
    fn write_jail_local(&self, text: &str) {
        let text = format!("[sshd]\nenabled = false\n\n{text}");
        let text = text
            .replace("{LOG}", &self.log().display().to_string())
            .replace("{DIR}", &self.path().display().to_string());
        fs::write(self.conf().join("jail.local"), text).unwrap();
    }

    /// Appends recipe-format failures (`Authentication failure for USER from IP`) with the
    /// current time.
    fn fail(&self, user: &str, ip: &str, times: usize) {
        let now = jiff::ZonedDateTime::now();
        let stamp = now.strftime("%b %e %H:%M:%S").to_string();
        let mut f = OpenOptions::new().append(true).open(self.log()).unwrap();
        for _ in 0..times {
            writeln!(
                f,
                "{stamp} web1 wordpress(example.com)[4242]: Authentication failure for {user} from {ip}"
            )
            .unwrap();
        }
    }

    fn start(&self) -> Daemon {
        self.start_with(None, &[])
    }

    fn start_with(&self, ns: Option<&Netns>, extra: &[&str]) -> Daemon {
        let stderr = fs::File::create(self.path().join("daemon.log")).unwrap();
        let exe = env!("CARGO_BIN_EXE_banhammer");
        let mut cmd = match ns {
            Some(ns) => ns.command(exe),
            None => Command::new(exe),
        };
        cmd.args(["run", "--config-dir"])
            .arg(self.conf())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = cmd.spawn().unwrap();
        let d = Daemon {
            child,
            socket: self.socket(),
            log: self.path().join("daemon.log"),
        };
        d.wait_ready();
        d
    }
}

struct Daemon {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Daemon {
    fn client(&self, args: &[&str]) -> Output {
        // `client` takes fail2ban-client's words as they come: its flags go first.
        let (verb, rest) = args.split_first().unwrap();
        env::banhammer()
            .arg(verb)
            .arg("--socket")
            .arg(&self.socket)
            .args(rest)
            .output()
            .unwrap()
    }

    fn client_ok(&self, args: &[&str]) -> String {
        let out = self.client(args);
        assert!(
            out.status.success(),
            "banhammer {args:?}: {}\n--- daemon log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&self) {
        wait_for("the daemon to answer ping", Duration::from_secs(20), || {
            self.client(&["ping"]).status.success()
        });
    }

    fn wait_banned(&self, jail: &str, ip: &str) {
        wait_for(
            &format!("{ip} banned in {jail}"),
            Duration::from_secs(15),
            || {
                let out = self.client(&["status", jail]);
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .any(|l| l.contains("Banned IP list:") && l.split_whitespace().any(|w| w == ip))
            },
        );
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.id().to_string();
        let st = Command::new("kill")
            .args(["-s", sig, &pid])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// SIGTERM, then the exit status (it must exit by itself within 15 s).
    fn stop(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not stop on SIGTERM\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

const DUMMY_JAIL: &str = "[wordpress]\nenabled = true\nlogpath = {LOG}\nbanaction = dummy\n";

/// A loopback port for the metrics endpoint, distinct per test process.
fn metrics_port() -> u16 {
    20_000 + (std::process::id() % 20_000) as u16
}

fn scrape(port: u16) -> String {
    use std::io::Read;
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn bans_after_maxretry_and_answers_like_fail2ban_client() {
    let s = Setup::new(DUMMY_JAIL);
    let port = metrics_port();
    let d = s.start_with(None, &["--metrics", &format!("127.0.0.1:{port}")]);
    s.fail("admin", "192.0.2.7", 2);
    s.fail("admin", "192.0.2.8", 1);
    wait_for("two failures counted", Duration::from_secs(10), || {
        d.client_ok(&["status", "wordpress"])
            .contains("Total failed:\t3")
    });
    assert!(!d.client_ok(&["status", "wordpress"]).contains("192.0.2.7"));
    s.fail("admin", "192.0.2.7", 1);
    d.wait_banned("wordpress", "192.0.2.7");
    let status = d.client_ok(&["status", "wordpress"]);
    assert!(
        status.starts_with("Status for the jail: wordpress\n"),
        "{status}"
    );
    assert!(status.contains("|  |- Currently failed:\t1"), "{status}");
    assert!(status.contains("   |- Currently banned:\t1"), "{status}");
    assert!(
        status.contains(&format!("`- File list:\t{}", s.log().display())),
        "{status}"
    );
    assert_eq!(
        d.client_ok(&["banned", "192.0.2.7", "192.0.2.8"]).trim(),
        "[['wordpress'], []]"
    );
    let json: serde_json::Value =
        serde_json::from_str(&d.client_ok(&["banned", "--json"])).unwrap();
    assert_eq!(json["ok"], true, "{json}");
    assert!(
        d.log_text().contains("NOTICE  [wordpress] Ban 192.0.2.7"),
        "{}",
        d.log_text()
    );
    // Our own log feeds our recidive filter, as fail2ban's log feeds fail2ban's.
    let out = env::banhammer()
        .args(["regex", "-o", "<ip>"])
        .arg(&d.log)
        .arg("recidive")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "192.0.2.7");
    let metrics = scrape(port);
    assert!(
        metrics.contains("banhammer_bans_total{jail=\"wordpress\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("banhammer_failures_total{jail=\"wordpress\"} 4"),
        "{metrics}"
    );
    // Counters kept by the sources and the servers are published too.
    assert!(
        metrics.contains("banhammer_records_skipped_total{jail=\"wordpress\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "banhammer_server_connections_total{server=\"control\",outcome=\"accepted\"}"
        ),
        "{metrics}"
    );
    assert_eq!(
        d.client_ok(&["get", "wordpress", "findtime"]).trim(),
        "3600"
    );
    assert_eq!(
        d.client_ok(&["get", "wordpress", "logpath"]),
        format!("Current monitored log file(s):\n`- {}\n", s.log().display())
    );
    // By hand, as fail2ban-client words it.
    assert_eq!(
        d.client_ok(&["client", "set", "wordpress", "banip", "192.0.2.50"])
            .trim(),
        "1"
    );
    assert_eq!(d.client_ok(&["unban", "192.0.2.50"]).trim(), "1");
    assert!(!d
        .client(&["ban", "wordpress", "not-an-ip"])
        .status
        .success());
    assert!(!d.client(&["status", "nosuchjail"]).status.success());
    let st = d.stop();
    assert!(st.success(), "{st}");
    assert!(!s.socket().exists(), "socket left behind");
    assert!(!s.path().join("bh.pid").exists(), "pidfile left behind");
}

#[test]
fn restart_restores_bans_and_does_not_reread_the_log() {
    let s = Setup::new(DUMMY_JAIL);
    let d = s.start();
    s.fail("root", "192.0.2.9", 3);
    d.wait_banned("wordpress", "192.0.2.9");
    assert!(d.stop().success());
    let d = s.start();
    d.wait_banned("wordpress", "192.0.2.9");
    let status = d.client_ok(&["status", "wordpress"]);
    // The three lines were not read again: the file position was kept.
    assert!(status.contains("Total failed:\t0"), "{status}");
    assert!(
        d.log_text().contains("Restore Ban 192.0.2.9"),
        "{}",
        d.log_text()
    );
    // kill -9: the ban was on disk already.
    s.fail("root", "192.0.2.10", 3);
    d.wait_banned("wordpress", "192.0.2.10");
    d.kill9();
    let d = s.start();
    d.wait_banned("wordpress", "192.0.2.10");
    d.wait_banned("wordpress", "192.0.2.9");
    assert!(d.stop().success());
}

#[test]
fn a_broken_config_fails_at_start_with_its_line_and_is_refused_on_reload() {
    let s = Setup::new(
        "[wordpress]\nenabled = true\nlogpath = {LOG}\nbanaction = dummy\nfindtime = 1 fortnight\n",
    );
    let out = env::banhammer()
        .args(["run", "--config-dir"])
        .arg(s.conf())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("jail.local:8"), "{err}");

    s.write_jail_local(DUMMY_JAIL);
    let d = s.start();
    s.fail("admin", "192.0.2.11", 3);
    d.wait_banned("wordpress", "192.0.2.11");
    s.write_jail_local("[wordpress\nenabled = true\n");
    d.signal("HUP");
    wait_for("the reload to be refused", Duration::from_secs(10), || {
        d.log_text()
            .contains("reload failed, still running the previous configuration")
    });
    // Still running the old jail, with its state.
    d.wait_banned("wordpress", "192.0.2.11");
    let out = d.client(&["reload"]);
    assert!(!out.status.success());
    // A good reload that changes nothing keeps the state.
    s.write_jail_local(DUMMY_JAIL);
    d.client_ok(&["reload"]);
    d.wait_banned("wordpress", "192.0.2.11");
    let out = d.client(&["reload", "nosuchjail"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Sorry but the jail 'nosuchjail' does not exist"),
        "{out:?}"
    );
    // A second jail appears, the first is disabled: its ban is lifted.
    s.write_jail_local(
        "[wordpress]\nenabled = false\n[wp2]\nenabled = true\nfilter = wordpress\nlogpath = {LOG}\nbanaction = dummy\n",
    );
    d.client_ok(&["reload"]);
    let status = d.client_ok(&["status"]);
    assert!(status.contains("Jail list:\twp2"), "{status}");
    assert!(d.stop().success());
}

#[test]
fn a_username_crafted_to_inject_never_executes() {
    let s = Setup::new("");
    let marker = s.path().join("pwned");
    fs::create_dir_all(s.conf().join("action.d")).unwrap();
    fs::write(
        s.conf().join("action.d/record.conf"),
        format!(
            "[Definition]\nactionban = printf '%%s|%%s\\n' \"<ip>\" \"<F-USER>\" >> {d}/banned.txt\nactionunban = true\n",
            d = s.path().display()
        ),
    )
    .unwrap();
    s.write_jail_local(
        "[wordpress]\nenabled = true\nlogpath = {LOG}\naction = record\nmaxretry = 1\n",
    );
    let d = s.start();
    let m = marker.display();
    let users = [
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("a;touch {m}"),
        format!("x' ; touch '{m}"),
    ];
    for (i, u) in users.iter().enumerate() {
        s.fail(u, &format!("192.0.2.{}", 100 + i), 1);
    }
    let out = s.path().join("banned.txt");
    wait_for("four bans recorded", Duration::from_secs(15), || {
        fs::read_to_string(&out).is_ok_and(|t| t.lines().count() == 4)
    });
    let text = fs::read_to_string(&out).unwrap();
    for (i, u) in users.iter().enumerate() {
        assert!(
            text.lines()
                .any(|l| l == format!("192.0.2.{}|{u}", 100 + i)),
            "{u:?} not recorded verbatim:\n{text}"
        );
    }
    assert!(!marker.exists(), "a username was executed");
    assert!(d.stop().success());
}

/// The whole path against the kernel: a client bound to 127.0.0.23 is dropped after its
/// ban, 127.0.0.24 is not; the ban survives a restart and a kill -9 (kernel set timeouts,
/// then restored from the store); an unban lets it through again.
#[test]
fn netns_ban_drops_the_client_and_survives_restarts() {
    let Some(mut ns) = Netns::new("daemon") else {
        return;
    };
    ns.listen(&[("127.0.0.1", 80)]);
    let s = Setup::new("[wordpress]\nenabled = true\nlogpath = {LOG}\n");
    let d = s.start_with(Some(&ns), &[]);
    assert!(ns.connects("127.0.0.23", "127.0.0.1", 80));
    s.fail("admin", "127.0.0.23", 3);
    d.wait_banned("wordpress", "127.0.0.23");
    assert!(
        !ns.connects("127.0.0.23", "127.0.0.1", 80),
        "banned client got through"
    );
    assert!(
        ns.connects("127.0.0.24", "127.0.0.1", 80),
        "innocent client dropped"
    );
    let set = ns.nft(&["list", "table", "inet", "banhammer"]);
    assert!(set.contains("127.0.0.23"), "{set}");
    assert!(d.stop().success());
    // Down: the kernel keeps protecting.
    assert!(
        !ns.connects("127.0.0.23", "127.0.0.1", 80),
        "ban lost while stopped"
    );
    let d = s.start_with(Some(&ns), &[]);
    d.wait_banned("wordpress", "127.0.0.23");
    d.kill9();
    assert!(
        !ns.connects("127.0.0.23", "127.0.0.1", 80),
        "ban lost on kill -9"
    );
    let d = s.start_with(Some(&ns), &[]);
    d.wait_banned("wordpress", "127.0.0.23");
    assert_eq!(d.client_ok(&["unban", "127.0.0.23"]).trim(), "1");
    assert!(
        ns.connects("127.0.0.23", "127.0.0.1", 80),
        "unbanned client still dropped"
    );
    assert!(d.stop().success());
}

impl Setup {
    /// Like [`Setup::fail`], into another log.
    fn fail_into(&self, log: &Path, user: &str, ip: &str, times: usize) {
        let now = jiff::ZonedDateTime::now();
        let stamp = now.strftime("%b %e %H:%M:%S").to_string();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        for _ in 0..times {
            writeln!(
                f,
                "{stamp} web1 wordpress(example.com)[4242]: Authentication failure for {user} from {ip}"
            )
            .unwrap();
        }
    }
}

/// Finding: an ignorecommand ran on the main loop — `sleep 1` and 40 failures made `ping`
/// time out and delayed an unrelated jail's ban by ~40 s. Now it runs beside the loop:
/// the other jail bans, and the daemon answers, while the slow command works through its
/// addresses.
#[test]
fn a_slow_ignorecommand_stalls_neither_ping_nor_other_jails() {
    let s = Setup::new(
        "[wordpress]\nenabled = true\nlogpath = {LOG}\nbanaction = dummy\nmaxretry = 100\n\
         ignorecommand = sleep 1; exit 1\n\
         [wp2]\nenabled = true\nfilter = wordpress\nlogpath = {DIR}/other.log\nbanaction = dummy\nmaxretry = 3\n",
    );
    let other = s.path().join("other.log");
    fs::write(&other, "").unwrap();
    let d = s.start();
    for i in 0..40 {
        s.fail("admin", &format!("192.0.2.{}", 100 + i), 1);
    }
    std::thread::sleep(Duration::from_millis(200));
    s.fail_into(&other, "root", "198.51.100.60", 3);
    let started = Instant::now();
    // Liveness bounds only: before the fix the ban came after ~40 s and pings timed out.
    while Instant::now() < started + Duration::from_secs(3) {
        let out = d.client(&["ping", "-t", "2"]);
        assert!(out.status.success(), "ping failed: {out:?}");
        let status = d.client_ok(&["status", "wp2"]);
        if status.contains("198.51.100.60") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    d.wait_banned("wp2", "198.51.100.60");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the unrelated jail's ban waited for the ignorecommand"
    );
    // Every one of the 40 addresses gets its answer (not ignored: exit 1), four at once.
    wait_for("40 failures counted", Duration::from_secs(30), || {
        d.client_ok(&["status", "wordpress"])
            .contains("Total failed:\t40")
    });
    assert!(d.stop().success());
}

/// Finding: `config check` said OK where `run` then failed, and failed where `run` works.
/// It now runs the daemon's own validation.
#[test]
fn config_check_runs_exactly_the_daemons_validation() {
    let check = |jail_local: &str| {
        let s = Setup::new(jail_local);
        let out = env::banhammer()
            .args(["config", "check", "-c"])
            .arg(s.conf())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    for (bad, says) in [
        ("backend = syslog[udp=0.0.0.0:5514, bogus=1]", "0.0.0.0"),
        ("backend = syslog[udp=127.0.0.1:5514, bogus=1]", "bogus"),
        ("backend = nonsense", "nonsense"),
        ("port = 80;reboot", "80;reboot"),
        (
            "ignorecommand = true\nignorecache = key=<F-USER>",
            "ignorecache",
        ),
    ] {
        let (ok, err) = check(&format!(
            "[wordpress]\nenabled = true\nlogpath = {{LOG}}\n{bad}\n"
        ));
        assert!(!ok, "{bad}: accepted");
        assert!(err.contains(says), "{bad}: {err}");
    }
    let (ok, err) = check(&format!(
        "[wordpress]\nenabled = true\nbackend = syslog[socket={}/s.sock]\n",
        std::env::temp_dir().display()
    ));
    assert!(ok, "a syslog jail needs no logpath: {err}");
}

/// Finding: with `--db :memory:` and `bantime = -1`, after a restart `banned` was empty and
/// `unban` said 0 while the kernel kept the element forever; and the sets of a jail taken
/// out of the configuration stayed. Now the kernel's elements are adopted at start, and
/// sets no configured jail uses are deleted.
#[test]
fn netns_kernel_bans_unknown_to_the_store_are_adopted_and_stale_sets_removed() {
    let Some(ns) = Netns::new("adopt") else {
        return;
    };
    let both = "[wordpress]\nenabled = true\nlogpath = {LOG}\nbantime = -1\n\
                [wp2]\nenabled = true\nfilter = wordpress\nlogpath = {LOG}\nmaxretry = 50\n";
    let s = Setup::new(both);
    let d = s.start_with(Some(&ns), &["--db", ":memory:"]);
    s.fail("admin", "127.0.0.31", 3);
    d.wait_banned("wordpress", "127.0.0.31");
    assert!(d.stop().success());
    let table = ns.nft(&["list", "table", "inet", "banhammer"]);
    assert!(
        table.contains("127.0.0.31") && table.contains("addr-set-wp2"),
        "{table}"
    );

    s.write_jail_local("[wordpress]\nenabled = true\nlogpath = {LOG}\nbantime = -1\n");
    let d = s.start_with(Some(&ns), &["--db", ":memory:"]);
    d.wait_banned("wordpress", "127.0.0.31");
    assert!(
        d.log_text().contains("Adopt Ban 127.0.0.31"),
        "{}",
        d.log_text()
    );
    let table = ns.nft(&["list", "table", "inet", "banhammer"]);
    assert!(
        !table.contains("wp2"),
        "the removed jail's sets stayed:\n{table}"
    );
    assert_eq!(d.client_ok(&["unban", "127.0.0.31"]).trim(), "1");
    let table = ns.nft(&["list", "table", "inet", "banhammer"]);
    assert!(!table.contains("127.0.0.31"), "{table}");
    assert!(d.stop().success());
}

/// Finding: a damaged database page made restore fail with an ERROR line, then the daemon
/// reported ready with 0 bans while the kernel held them. Now that is a start-up error
/// naming the way out, and `--db-recover` sets the file aside and adopts the kernel's bans.
#[test]
fn netns_a_damaged_database_stops_the_start_unless_recovering() {
    use std::io::{Seek, SeekFrom};
    let Some(ns) = Netns::new("dbdamage") else {
        return;
    };
    let s = Setup::new("[wordpress]\nenabled = true\nlogpath = {LOG}\nmaxretry = 1\n");
    let d = s.start_with(Some(&ns), &[]);
    // Enough bans that the file has pages to damage past its schema.
    for i in 0..200 {
        s.fail(
            "admin",
            &format!("127.0.{}.{}", 40 + i / 200, 1 + i % 200),
            1,
        );
    }
    d.wait_banned("wordpress", "127.0.40.200");
    assert!(d.stop().success());
    let db = s.path().join("bh.sqlite3");
    let len = fs::metadata(&db).unwrap().len();
    let mut f = OpenOptions::new().write(true).open(&db).unwrap();
    f.seek(SeekFrom::Start(len / 2)).unwrap();
    f.write_all(&vec![0xA5; (len / 2) as usize]).unwrap();
    drop(f);
    let out = ns
        .command(env!("CARGO_BIN_EXE_banhammer"))
        .args(["run", "--config-dir"])
        .arg(s.conf())
        .output()
        .unwrap();
    assert!(!out.status.success(), "started on a damaged database");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("damaged") && err.contains("--db-recover"),
        "{err}"
    );
    let d = s.start_with(Some(&ns), &["--db-recover"]);
    d.wait_banned("wordpress", "127.0.40.200");
    assert!(d.log_text().contains("Adopt Ban"), "{}", d.log_text());
    assert!(d.stop().success());
}

/// Finding: a 12-line "billion laughs" of `%(lN)s` references killed the running daemon on
/// `reload` ("memory allocation of 1006632960 bytes failed"). It is refused, naming its
/// line, and the old configuration keeps running.
#[test]
fn a_billion_laughs_config_is_refused_on_reload_and_the_old_one_keeps_running() {
    let s = Setup::new(DUMMY_JAIL);
    let d = s.start();
    s.fail("admin", "192.0.2.71", 3);
    d.wait_banned("wordpress", "192.0.2.71");
    let mut laughs = String::from("[DEFAULT]\nl0 = hahahahahahahahahahahahahahahahaha\n");
    for n in 1..=8 {
        let refs = format!("%(l{})s", n - 1).repeat(10);
        laughs.push_str(&format!("l{n} = {refs}\n"));
    }
    s.write_jail_local(&format!("{laughs}{DUMMY_JAIL}port = %(l8)s\n"));
    let out = d.client(&["reload"]);
    assert!(!out.status.success(), "the reload was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("still running the previous configuration") && err.contains("jail.local:"),
        "{err}"
    );
    d.wait_banned("wordpress", "192.0.2.71");
    assert!(d.client(&["ping"]).status.success());
    assert!(d.stop().success());
}

/// A sibling of the stalled main loop: every record was written to the log sink by the
/// thread that logged it, so a sink that stops reading (a journald that does not drain the
/// daemon's stderr, a stuck disk) froze the whole daemon. Records go through a writer
/// thread now; a blocked sink costs dropped log lines, never a ban or an answer.
#[test]
fn a_log_sink_that_never_reads_does_not_stall_the_daemon() {
    let s = Setup::new("[wordpress]\nenabled = true\nlogpath = {LOG}\nbanaction = dummy\n");
    // Logs to stderr: a pipe nobody reads, full after ~64 KiB.
    fs::write(
        s.conf().join("fail2ban.local"),
        format!(
            "[Definition]\nsocket = {d}/bh.sock\npidfile = {d}/bh.pid\ndbfile = {d}/bh.sqlite3\nloglevel = INFO\nlogtarget = STDERR\n",
            d = s.path().display()
        ),
    )
    .unwrap();
    let mut child = env::banhammer()
        .args(["run", "--config-dir"])
        .arg(s.conf())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _unread = child.stderr.take();
    let d = Daemon {
        child,
        socket: s.socket(),
        log: s.path().join("none.log"),
    };
    d.wait_ready();
    // Each failure is an INFO line of ~130 bytes: far more than the pipe holds.
    for i in 0..3000 {
        s.fail("admin", &format!("10.7.{}.{}", i / 250, 1 + i % 250), 1);
    }
    s.fail("admin", "192.0.2.99", 3);
    d.wait_banned("wordpress", "192.0.2.99");
    assert!(d.client(&["ping"]).status.success());
}
