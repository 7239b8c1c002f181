//! The daemon without its sources making a difference: failures go in as events, control
//! requests through its inbox's channel, and what comes out is checked at the seams — a
//! recording firewall, the store — with a clock that only moves when the test says so.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use banhammer_config::ConfigTree;
use banhammer_core::jail::{FailureKey, IpNet};
use banhammer_store::Store;

use super::engine::Engine;
use super::event::{Event, Found};
use super::firewall::{Clock, Firewall, KernelBan};
use super::plan::{plan, PlanOptions};
use super::settings::{Overrides, Settings};
use super::{Daemon, Parts};
use crate::action::nftables::{NftChange, NftJailSpec};
use crate::control::protocol::{Envelope, Reply, Request};
use crate::embedded::EMBEDDED_CONFIG;

/// What the firewall was asked, in order.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Apply(Vec<NftChange>),
    Flush(String),
    Stop(String),
    Prune,
}

/// A firewall that records, and whose kernel holds `kernel` at start.
#[derive(Clone, Default)]
struct Recording {
    calls: Arc<Mutex<Vec<Call>>>,
    kernel: Arc<Mutex<Vec<KernelBan>>>,
}

impl Firewall for Recording {
    fn start_jail(&mut self, _spec: &NftJailSpec) -> Result<(), String> {
        Ok(())
    }
    fn stop_jail(&mut self, jail: &str) -> Result<(), String> {
        self.calls.lock().unwrap().push(Call::Stop(jail.into()));
        Ok(())
    }
    fn flush_jail(&mut self, jail: &str) -> Result<(), String> {
        self.calls.lock().unwrap().push(Call::Flush(jail.into()));
        Ok(())
    }
    fn apply(&mut self, batch: &[NftChange]) -> Result<(), String> {
        self.calls.lock().unwrap().push(Call::Apply(batch.to_vec()));
        Ok(())
    }
    fn inventory(&mut self) -> Result<Vec<KernelBan>, String> {
        Ok(self.kernel.lock().unwrap().clone())
    }
    fn inventory_at_start(&self) -> Vec<KernelBan> {
        self.kernel.lock().unwrap().clone()
    }
    fn prune_stale(&mut self) -> Result<Vec<String>, String> {
        self.calls.lock().unwrap().push(Call::Prune);
        Ok(Vec::new())
    }
}

impl Recording {
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    /// Only the ban/unban batches.
    fn batches(&self) -> Vec<Vec<NftChange>> {
        self.take()
            .into_iter()
            .filter_map(|c| match c {
                Call::Apply(b) => Some(b),
                _ => None,
            })
            .collect()
    }
}

const T0: f64 = 1_800_000_000.0;

struct Rig {
    daemon: Option<Daemon>,
    firewall: Recording,
    clock: Clock,
    db: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// A daemon on a config dir holding `jail_local` (the recipe's wordpress jail, our default
/// nftables banaction), a store at `db` (in a temp dir when `None`), the manual clock at
/// `T0`, and a kernel holding `kernel`.
fn rig_with(
    jail_local: &str,
    db: Option<std::path::PathBuf>,
    clock: Clock,
    kernel: Vec<KernelBan>,
) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    std::fs::write(&log, "").unwrap();
    std::fs::write(
        dir.path().join("jail.local"),
        format!(
            "[sshd]\nenabled = false\n[wordpress]\nenabled = true\nlogpath = {}\n{jail_local}",
            log.display()
        ),
    )
    .unwrap();
    let conf = dir.path().to_path_buf();
    let tree = ConfigTree::new(EMBEDDED_CONFIG, Some(conf.clone()));
    let settings = Settings::load(&tree, &Overrides::default()).unwrap();
    let cfg = banhammer_config::read_jails(&tree).unwrap();
    let spec = cfg.jails.iter().find(|j| j.name == "wordpress").unwrap();
    let p = plan(spec, Some(&conf), &PlanOptions::default(), clock.now()).unwrap();
    let db = db.unwrap_or_else(|| dir.path().join("bans.sqlite3"));
    let firewall = Recording::default();
    *firewall.kernel.lock().unwrap() = kernel;
    let parts = Parts {
        store: Store::open(&db).unwrap(),
        firewall: Box::new(firewall.clone()),
        clock: clock.clone(),
        metrics: None,
    };
    let daemon = Daemon::start(settings, PlanOptions::default(), parts, vec![p]).unwrap();
    Rig {
        daemon: Some(daemon),
        firewall,
        clock,
        db,
        _dir: dir,
    }
}

fn rig(jail_local: &str) -> Rig {
    rig_with(jail_local, None, Clock::manual(T0), Vec::new())
}

impl Rig {
    fn engine(&mut self) -> &mut Engine {
        self.daemon.as_mut().unwrap().engine()
    }

    fn fail(&mut self, ip: &str, user: &str) {
        let generation = self.engine().jails.get("wordpress").unwrap().generation;
        let mut fields = BTreeMap::new();
        fields.insert("user".to_string(), user.to_string());
        let now = self.clock.now();
        self.engine().handle(Event::Found {
            jail: Arc::from("wordpress"),
            generation,
            failures: vec![Found {
                key: FailureKey::Ip(ip.parse::<IpAddr>().unwrap()),
                time: now,
                matches: vec![format!("Authentication failure for {user} from {ip}")],
                fields,
                catching_up: false,
                ignored_by_command: false,
            }],
            read_at: Instant::now(),
        });
    }

    /// The end of a main-loop turn, and the effects it shipped applied.
    fn turn(&mut self) {
        self.engine().turn(Duration::ZERO);
        self.engine().settle();
        // The firewall saw the last batch only after the barrier.
    }

    /// A control request answered the way the control socket gets it.
    fn request(&mut self, req: Request) -> Envelope {
        let (tx, rx) = sync_channel(1);
        self.engine().control(req, tx);
        // A reload is prepared on another thread: give it time (a liveness bound only).
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            self.engine().turn(Duration::from_millis(10));
            self.engine().settle();
            if let Ok(answer) = rx.try_recv() {
                return answer;
            }
        }
        panic!("no answer");
    }

    fn stored_keys(&self) -> Vec<String> {
        Store::open(&self.db)
            .unwrap()
            .active_bans(self.clock.now())
            .unwrap()
            .into_iter()
            .map(|b| b.key)
            .collect()
    }

    fn banned(&mut self) -> Vec<String> {
        let mut v: Vec<String> = self
            .engine()
            .jails
            .get("wordpress")
            .unwrap()
            .state
            .banned()
            .map(|b| b.key.to_string())
            .collect();
        v.sort();
        v
    }

    fn stop(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.shutdown();
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ban(ip: &str, secs: u64) -> NftChange {
    NftChange::Ban {
        jail: "wordpress".into(),
        addr: IpNet::host(ip.parse().unwrap()),
        timeout: Some(Duration::from_secs(secs)),
    }
}

fn count(answer: &Envelope) -> u64 {
    match &answer.result {
        Some(Reply::Count { count }) => *count,
        _ => panic!("not a count: {answer:?}"),
    }
}

#[test]
fn maxretry_failures_ban_once_in_one_batch_and_expire_on_time() {
    let mut r = rig("");
    r.firewall.take();
    r.fail("192.0.2.7", "admin");
    r.fail("192.0.2.7", "admin");
    r.fail("192.0.2.8", "admin");
    r.turn();
    assert!(r.firewall.batches().is_empty(), "no ban below maxretry");
    r.fail("192.0.2.7", "root");
    r.turn();
    // The recipe's jail: 3 failures within an hour ban for a day.
    assert_eq!(r.firewall.batches(), vec![vec![ban("192.0.2.7", 86_400)]]);
    assert_eq!(r.stored_keys(), ["192.0.2.7"]);
    // A day later, to the second: the unban.
    r.clock.advance(86_399.0);
    r.turn();
    assert!(r.firewall.batches().is_empty());
    r.clock.advance(1.0);
    r.turn();
    assert_eq!(
        r.firewall.batches(),
        vec![vec![NftChange::Unban {
            jail: "wordpress".into(),
            addr: IpNet::host("192.0.2.7".parse().unwrap()),
        }]]
    );
    assert!(r.stored_keys().is_empty());
}

#[test]
fn failures_older_than_findtime_do_not_add_up() {
    let mut r = rig("");
    r.firewall.take();
    r.fail("192.0.2.9", "a");
    r.fail("192.0.2.9", "a");
    r.clock.advance(3_601.0);
    r.turn();
    r.fail("192.0.2.9", "a");
    r.turn();
    assert!(
        r.firewall.batches().is_empty(),
        "the first two are older than findtime"
    );
}

#[test]
fn a_restart_reapplies_stored_bans_with_their_remaining_time() {
    let clock = Clock::manual(T0);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bans.sqlite3");
    {
        let mut r = rig_with("", Some(db.clone()), clock.clone(), Vec::new());
        for _ in 0..3 {
            r.fail("198.51.100.4", "admin");
        }
        r.turn();
        assert_eq!(r.firewall.batches().len(), 1);
    }
    clock.advance(600.0);
    let mut r = rig_with("", Some(db), clock, Vec::new());
    assert_eq!(
        r.firewall.batches(),
        vec![vec![NftChange::Restore {
            jail: "wordpress".into(),
            addr: IpNet::host("198.51.100.4".parse().unwrap()),
            timeout: Some(Duration::from_secs(86_400 - 600)),
        }]]
    );
    assert_eq!(r.banned(), ["198.51.100.4"]);
}

#[test]
fn ignoreip_is_never_banned() {
    let mut r = rig("ignoreip = 192.0.2.0/24\n");
    r.firewall.take();
    for _ in 0..5 {
        r.fail("192.0.2.77", "admin");
    }
    r.turn();
    assert!(r.firewall.batches().is_empty());
    assert!(r.banned().is_empty());
}

/// Finding: with `--db :memory:` and a permanent bantime, after a restart `banned` was
/// empty and `unban` said 0 while the kernel kept the element forever. Elements of a
/// configured jail's sets the store does not know are adopted, with the time they have
/// left, into state and store; `unban` then removes them from the kernel.
#[test]
fn kernel_bans_the_daemon_does_not_know_are_adopted_and_can_be_unbanned() {
    let kernel = vec![
        (
            "wordpress".to_string(),
            IpNet::host("203.0.113.5".parse().unwrap()),
            None,
        ),
        (
            "wordpress".to_string(),
            IpNet::host("203.0.113.6".parse().unwrap()),
            Some(Duration::from_secs(500)),
        ),
        (
            "wordpress".to_string(),
            "198.51.100.0/24".parse().unwrap(),
            Some(Duration::from_secs(50)),
        ),
        // ignoreself: the host's own address never stays banned.
        (
            "wordpress".to_string(),
            IpNet::host("127.0.0.1".parse().unwrap()),
            None,
        ),
    ];
    let mut r = rig_with("", None, Clock::manual(T0), kernel);
    assert_eq!(
        r.banned(),
        ["198.51.100.0/24", "203.0.113.5", "203.0.113.6"]
    );
    let mut stored = r.stored_keys();
    stored.sort();
    assert_eq!(stored, ["198.51.100.0/24", "203.0.113.5", "203.0.113.6"]);
    let calls = r.firewall.take();
    assert!(
        calls.contains(&Call::Apply(vec![NftChange::Unban {
            jail: "wordpress".into(),
            addr: IpNet::host("127.0.0.1".parse().unwrap()),
        }])),
        "{calls:?}"
    );
    assert!(
        calls.contains(&Call::Prune),
        "stale sets are pruned: {calls:?}"
    );
    // The adopted bans end when the kernel would have ended them.
    r.clock.advance(50.0);
    r.turn();
    assert_eq!(r.banned(), ["203.0.113.5", "203.0.113.6"]);
    let answer = r.request(Request::Unban {
        jail: None,
        ips: vec!["203.0.113.5".into()],
        all: false,
    });
    assert_eq!(count(&answer), 1);
    assert!(r.firewall.batches().concat().contains(&NftChange::Unban {
        jail: "wordpress".into(),
        addr: IpNet::host("203.0.113.5".parse().unwrap()),
    }));
}

/// Finding: `ban JAIL 1.2.3.4/0` put 0.0.0.0/0 in the set (with a DROP blocktype, everyone
/// locked out) and `ban JAIL 127.0.0.1` was accepted despite ignoreself.
#[test]
fn manual_bans_wider_than_the_floor_or_of_ignored_addresses_are_refused_without_force() {
    let mut r = rig("ignoreip = 10.20.30.0/24\n");
    r.firewall.take();
    let ban_req = |ips: &[&str], force: bool| Request::Ban {
        jail: "wordpress".into(),
        ips: ips.iter().map(|s| s.to_string()).collect(),
        force,
    };
    for (ip, why) in [
        ("1.2.3.4/0", "wider than /16"),
        ("::/0", "wider than /32"),
        ("192.0.2.0/15", "wider than /16"),
        ("127.0.0.1", "127.0.0.1"),
        ("10.20.30.40", "10.20.30.40"),
        ("10.20.0.0/16", "10.20.30.0/24"),
        ("10.20.30.0/28", "10.20.30.0"),
    ] {
        let answer = r.request(ban_req(&[ip], false));
        let e = answer.error.clone().unwrap_or_default();
        assert!(
            e.starts_with("refused") && e.contains(why) && e.contains("--force"),
            "{ip}: {answer:?}"
        );
    }
    // One refused address refuses the whole request: nothing was banned.
    let answer = r.request(ban_req(&["192.0.2.1", "0.0.0.0/0"], false));
    assert!(answer.error.is_some());
    assert!(r.banned().is_empty());
    assert!(r.firewall.batches().is_empty());
    // At the floor, and with --force, it is done.
    assert_eq!(count(&r.request(ban_req(&["192.0.0.0/16"], false))), 1);
    assert_eq!(count(&r.request(ban_req(&["127.0.0.1"], true))), 1);
    assert_eq!(r.banned(), ["127.0.0.1", "192.0.0.0/16"]);
}

/// Finding: `unban --all` froze the daemon for minutes with many bans. The state lets go
/// of every ban at once; the kernel's sets are flushed whole and the store cleared in one
/// statement (not one change per ban); the answer comes once both are done; the command
/// actions and the log hear of each unban a slice per turn.
#[test]
fn unban_all_clears_kernel_and_store_whole_and_answers_when_done() {
    let mut r = rig("bantime = 1d\n");
    let n = 5_000;
    let ips: Vec<String> = (0..n)
        .map(|i| format!("10.9.{}.{}", i / 250, i % 250 + 1))
        .collect();
    let answer = r.request(Request::Ban {
        jail: "wordpress".into(),
        ips: ips.clone(),
        force: false,
    });
    assert_eq!(count(&answer), n as u64);
    assert_eq!(r.stored_keys().len(), n);
    r.firewall.take();
    let answer = r.request(Request::Unban {
        jail: None,
        ips: Vec::new(),
        all: true,
    });
    assert_eq!(count(&answer), n as u64);
    assert!(r.banned().is_empty());
    assert!(r.stored_keys().is_empty());
    let calls = r.firewall.take();
    assert_eq!(
        calls,
        [Call::Flush("wordpress".into())],
        "one flush, no per-address unban"
    );
    // History is forgiven: a new ban starts from the base bantime again.
    assert!(r
        .engine()
        .outbox
        .history
        .lookup("10.9.0.1", Some("wordpress"))
        .is_none());
}

/// A reload whose configuration is broken changes nothing and says why; a good one swaps
/// in (the compile happens beside the loop).
#[test]
fn reload_is_prepared_beside_the_loop_and_swapped_in() {
    let mut r = rig("");
    for _ in 0..3 {
        r.fail("192.0.2.50", "x");
    }
    r.turn();
    assert_eq!(r.banned(), ["192.0.2.50"]);
    let conf = r._dir.path().join("jail.local");
    let good = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, format!("{good}\nbackend = nonsense\n")).unwrap();
    let answer = r.request(Request::Reload { jail: None });
    let e = answer.error.unwrap_or_default();
    assert!(
        e.contains("still running the previous configuration"),
        "{e}"
    );
    assert_eq!(r.banned(), ["192.0.2.50"]);
    std::fs::write(&conf, format!("{good}\nmaxretry = 5\n")).unwrap();
    let answer = r.request(Request::Reload { jail: None });
    assert!(answer.ok, "{answer:?}");
    // The restart completes when the old reader has ended; the ban is carried over.
    for _ in 0..200 {
        r.turn();
        let restarted = r
            .engine()
            .jails
            .get("wordpress")
            .is_some_and(|rt| rt.spec.maxretry == 5 && rt.stopping.is_none());
        if restarted {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(r.engine().jails.get("wordpress").unwrap().spec.maxretry, 5);
    assert_eq!(r.banned(), ["192.0.2.50"]);
}

/// `webgroup` (fail2ban.conf) is the group of a syslog socket that names none; the plan
/// (what `run` and `config check` both use) resolves it.
#[test]
fn webgroup_is_the_group_of_a_syslog_socket_that_names_none() {
    use super::plan::SourcePlan;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("jail.local"),
        format!(
            "[sshd]\nenabled = false\n[wordpress]\nenabled = true\nbackend = syslog[socket={}/s.sock]\n\
             [wp2]\nenabled = true\nfilter = wordpress\nbackend = syslog[socket={}/t.sock, group=0]\n",
            dir.path().display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let tree = ConfigTree::new(EMBEDDED_CONFIG, Some(dir.path().to_path_buf()));
    let cfg = banhammer_config::read_jails(&tree).unwrap();
    let group_of = |jail: &str, web_group: &str| {
        let spec = cfg.jails.iter().find(|j| j.name == jail).unwrap();
        let opts = PlanOptions {
            web_group: Some(web_group.to_string()),
            ..PlanOptions::default()
        };
        match plan(spec, None, &opts, T0).unwrap().source {
            SourcePlan::Syslog { listen, .. } => listen.group,
            _ => panic!("not a syslog source"),
        }
    };
    // "root" names group 0 on every machine; an explicit group= wins over webgroup.
    assert_eq!(group_of("wordpress", "root"), 0);
    assert_eq!(group_of("wp2", "daemon"), 0);
    let daemon_gid = group_of("wordpress", "daemon");
    assert_ne!(daemon_gid, 0, "webgroup = daemon was not used");
}

/// A sibling of the manual-ban floor: a filter's `<SUBNET>` lets the log line choose the
/// prefix, so a failure keyed by a network wider than the floor is never counted (one line
/// of `… from 1.2.3.4/1` would otherwise ban half the internet).
#[test]
fn a_failure_of_a_network_wider_than_the_floor_is_never_counted() {
    let mut r = rig("");
    r.firewall.take();
    let generation = r.engine().jails.get("wordpress").unwrap().generation;
    let now = r.clock.now();
    let fail = |net: &str| Event::Found {
        jail: Arc::from("wordpress"),
        generation,
        failures: vec![Found {
            key: FailureKey::Net(net.parse().unwrap()),
            time: now,
            matches: vec![format!("Authentication failure for x from {net}")],
            fields: BTreeMap::new(),
            catching_up: false,
            ignored_by_command: false,
        }],
        read_at: Instant::now(),
    };
    for _ in 0..5 {
        r.engine().handle(fail("0.0.0.0/1"));
        r.engine().handle(fail("2001::/16"));
    }
    r.turn();
    assert!(r.banned().is_empty());
    assert_eq!(
        r.engine()
            .jails
            .get("wordpress")
            .unwrap()
            .state
            .stats()
            .total_failed,
        0
    );
    for _ in 0..3 {
        r.engine().handle(fail("198.51.100.0/24"));
    }
    r.turn();
    assert_eq!(r.banned(), ["198.51.100.0/24"]);
}
