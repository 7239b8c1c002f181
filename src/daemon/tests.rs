//! The main loop without threads of its own making a difference: failures go in as
//! events, and what comes out is checked at the seams — a recording firewall, the store —
//! with a clock that only moves when the test says so.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use banhammer_config::ConfigTree;
use banhammer_core::jail::{FailureKey, IpNet};
use banhammer_store::Store;
use clap::Parser;

use super::engine::Engine;
use super::event::{Event, Found};
use super::firewall::{Clock, Firewall};
use super::plan::{plan, PlanOptions};
use super::settings::Settings;
use super::Context;
use crate::action::nftables::{NftChange, NftJailSpec};
use crate::cli::run::RunArgs;
use crate::embedded::EMBEDDED_CONFIG;

/// Every batch the engine applied, in order.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Vec<Vec<NftChange>>>>);

impl Firewall for Recording {
    fn start_jail(&mut self, _spec: &NftJailSpec) -> Result<(), String> {
        Ok(())
    }
    fn stop_jail(&mut self, _jail: &str) -> Result<(), String> {
        Ok(())
    }
    fn apply(&mut self, batch: &[NftChange]) -> Result<(), String> {
        self.0.lock().unwrap().push(batch.to_vec());
        Ok(())
    }
}

impl Recording {
    fn take(&self) -> Vec<Vec<NftChange>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[derive(Parser)]
struct Wrap {
    #[command(flatten)]
    run: RunArgs,
}

const T0: f64 = 1_800_000_000.0;

struct Rig {
    engine: Engine,
    firewall: Recording,
    clock: Clock,
    _dir: tempfile::TempDir,
}

/// An engine on a config dir holding `jail_local` (the recipe's wordpress jail, our
/// default nftables banaction), an in-memory or given store, the manual clock at `T0`.
fn rig(jail_local: &str, store: Store, clock: Clock) -> Rig {
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
    let args = Wrap::parse_from(["banhammer", "--config-dir", conf.to_str().unwrap()]).run;
    let tree = ConfigTree::new(EMBEDDED_CONFIG, Some(conf.clone()));
    let ctx = Context {
        settings: Settings::load(&tree, &args).unwrap(),
        config_dir: conf.clone(),
        plan_opts: PlanOptions::default(),
        metrics: None,
        clock: clock.clone(),
    };
    let (tx, rx) = sync_channel(1024);
    let mut engine = Engine::new(ctx, store, tx, rx);
    let firewall = Recording::default();
    engine.nft = Some(Box::new(firewall.clone()));
    let cfg = banhammer_config::read_jails(&tree).unwrap();
    let spec = cfg.jails.iter().find(|j| j.name == "wordpress").unwrap();
    let p = plan(spec, Some(&conf), PlanOptions::default(), clock.now()).unwrap();
    engine.start_jail(p, Vec::new()).unwrap();
    Rig {
        engine,
        firewall,
        clock,
        _dir: dir,
    }
}

impl Rig {
    fn fail(&mut self, ip: &str, user: &str) {
        let generation = self.engine.jails["wordpress"].generation;
        let mut fields = BTreeMap::new();
        fields.insert("user".to_string(), user.to_string());
        self.engine.handle(Event::Found {
            jail: Arc::from("wordpress"),
            generation,
            failures: vec![Found {
                key: FailureKey::Ip(ip.parse::<IpAddr>().unwrap()),
                time: self.clock.now(),
                matches: vec![format!("Authentication failure for {user} from {ip}")],
                fields,
                catching_up: false,
            }],
            read_at: Instant::now(),
        });
    }

    /// The end of a main-loop turn.
    fn turn(&mut self) {
        self.engine.expire(self.clock.now());
        self.engine.flush();
    }
}

fn ban(ip: &str, secs: u64) -> NftChange {
    NftChange::Ban {
        jail: "wordpress".into(),
        addr: IpNet::host(ip.parse().unwrap()),
        timeout: Some(Duration::from_secs(secs)),
    }
}

#[test]
fn maxretry_failures_ban_once_in_one_batch_and_expire_on_time() {
    let mut r = rig("", Store::open_in_memory().unwrap(), Clock::manual(T0));
    r.fail("192.0.2.7", "admin");
    r.fail("192.0.2.7", "admin");
    r.fail("192.0.2.8", "admin");
    r.turn();
    assert!(r.firewall.take().is_empty(), "no ban below maxretry");
    r.fail("192.0.2.7", "root");
    r.turn();
    // The recipe's jail: 3 failures within an hour ban for a day.
    assert_eq!(r.firewall.take(), vec![vec![ban("192.0.2.7", 86_400)]]);
    let stored = r.engine.store.active_bans(r.clock.now()).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].key, "192.0.2.7");
    assert_eq!(stored[0].data.tags["user"], "root");
    // A day later, to the second: the unban.
    r.clock.advance(86_399.0);
    r.turn();
    assert!(r.firewall.take().is_empty());
    r.clock.advance(1.0);
    r.turn();
    assert_eq!(
        r.firewall.take(),
        vec![vec![NftChange::Unban {
            jail: "wordpress".into(),
            addr: IpNet::host("192.0.2.7".parse().unwrap()),
        }]]
    );
    assert!(r
        .engine
        .store
        .active_bans(r.clock.now())
        .unwrap()
        .is_empty());
}

#[test]
fn failures_older_than_findtime_do_not_add_up() {
    let mut r = rig("", Store::open_in_memory().unwrap(), Clock::manual(T0));
    r.fail("192.0.2.9", "a");
    r.fail("192.0.2.9", "a");
    r.clock.advance(3_601.0);
    r.turn();
    r.fail("192.0.2.9", "a");
    r.turn();
    assert!(
        r.firewall.take().is_empty(),
        "the first two are older than findtime"
    );
}

#[test]
fn a_restart_reapplies_stored_bans_with_their_remaining_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bans.sqlite3");
    let clock = Clock::manual(T0);
    {
        let mut r = rig("", Store::open(&db).unwrap(), clock.clone());
        for _ in 0..3 {
            r.fail("198.51.100.4", "admin");
        }
        r.turn();
        assert_eq!(r.firewall.take().len(), 1);
    }
    clock.advance(600.0);
    let mut r = rig("", Store::open(&db).unwrap(), clock.clone());
    r.engine.restore(None);
    assert_eq!(
        r.firewall.take(),
        vec![vec![ban("198.51.100.4", 86_400 - 600)]]
    );
    assert!(r.engine.jails["wordpress"]
        .state
        .is_banned(&FailureKey::Ip("198.51.100.4".parse().unwrap())));
}

#[test]
fn ignoreip_is_never_banned() {
    let mut r = rig(
        "ignoreip = 192.0.2.0/24\n",
        Store::open_in_memory().unwrap(),
        Clock::manual(T0),
    );
    for _ in 0..5 {
        r.fail("192.0.2.77", "admin");
    }
    r.turn();
    assert!(r.firewall.take().is_empty());
    assert_eq!(
        r.engine.jails["wordpress"].state.stats().currently_banned,
        0
    );
}
