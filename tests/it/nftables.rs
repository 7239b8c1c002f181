//! The native nftables backend against the real kernel, inside a network namespace each
//! test creates (and deletes, even on failure). Root, `nft` and `ip` are required: the
//! tests skip loudly without them, and fail under CI=true. Only loopback addresses are
//! used, and only inside the namespace.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use banhammer::action::nftables::{NftBackend, NftChange, NftError, NftJailSpec, NftMode};
use banhammer_core::jail::IpNet;

use crate::netns::Netns;

trait NetnsNft {
    fn backend(&self) -> NftBackend;
}

impl NetnsNft for Netns {
    fn backend(&self) -> NftBackend {
        NftBackend::with_command(vec!["ip", "netns", "exec", &self.name, "nft"], "banhammer")
            .unwrap()
    }
}

fn ban(jail: &str, addr: &str, secs: Option<u64>) -> NftChange {
    NftChange::Ban {
        jail: jail.into(),
        addr: addr.parse().unwrap(),
        timeout: secs.map(Duration::from_secs),
    }
}

fn unban(jail: &str, addr: &str) -> NftChange {
    NftChange::Unban {
        jail: jail.into(),
        addr: addr.parse().unwrap(),
    }
}

fn listed(nft: &mut NftBackend, jail: &str, addr: &str) -> Option<Option<Duration>> {
    let want: IpNet = addr.parse().unwrap();
    nft.list(jail)
        .unwrap()
        .into_iter()
        .find(|(net, _)| *net == want)
        .map(|(_, t)| t)
}

fn ban_blocks_only_the_banned_source(mode: NftMode, tag: &str) {
    let Some(mut ns) = Netns::new(tag) else {
        return;
    };
    ns.listen(&[("127.0.0.1", 80)]);
    let mut nft = ns.backend();
    nft.set_mode(mode);
    nft.start_jail(&NftJailSpec::new("wordpress", Some("80,443")))
        .unwrap();
    assert!(ns.connects("127.0.0.23", "127.0.0.1", 80), "before the ban");

    nft.apply(&[ban("wordpress", "127.0.0.23", Some(600))])
        .unwrap();
    assert!(
        !ns.connects("127.0.0.23", "127.0.0.1", 80),
        "banned source connected"
    );
    assert!(
        ns.connects("127.0.0.24", "127.0.0.1", 80),
        "other source refused"
    );
    let left = listed(&mut nft, "wordpress", "127.0.0.23").expect("listed");
    let left = left.expect("a ban with a timeout");
    assert!(
        left > Duration::from_secs(590) && left <= Duration::from_secs(600),
        "{left:?}"
    );

    // An unban of an absent address does not keep the rest of the batch out; a ban of an
    // address already banned replaces its timeout.
    nft.apply(&[
        unban("wordpress", "127.0.0.99"),
        ban("wordpress", "127.0.0.25", None),
        ban("wordpress", "127.0.0.23", Some(60)),
    ])
    .unwrap();
    assert_eq!(
        listed(&mut nft, "wordpress", "127.0.0.25"),
        Some(None),
        "permanent"
    );
    let left = listed(&mut nft, "wordpress", "127.0.0.23")
        .unwrap()
        .unwrap();
    assert!(
        left <= Duration::from_secs(60),
        "timeout replaced: {left:?}"
    );
    assert!(!ns.connects("127.0.0.25", "127.0.0.1", 80));

    nft.apply(&[
        unban("wordpress", "127.0.0.23"),
        unban("wordpress", "127.0.0.23"),
    ])
    .unwrap();
    assert_eq!(listed(&mut nft, "wordpress", "127.0.0.23"), None);
    assert!(
        ns.connects("127.0.0.23", "127.0.0.1", 80),
        "unbanned source refused"
    );
    assert_eq!(nft.mode(), mode);
}

#[test]
fn ban_blocks_only_the_banned_source_interactive() {
    ban_blocks_only_the_banned_source(NftMode::Interactive, "ban-i");
}

#[test]
fn ban_blocks_only_the_banned_source_per_batch() {
    ban_blocks_only_the_banned_source(NftMode::PerBatch, "ban-f");
}

#[test]
fn ipv6_ban() {
    let Some(mut ns) = Netns::new("v6") else {
        return;
    };
    ns.listen(&[("::1", 8081), ("::1", 8082)]);
    let mut nft = ns.backend();
    nft.start_jail(&NftJailSpec::new("six", Some("8081")))
        .unwrap();
    assert!(ns.connects("::1", "::1", 8081));
    nft.apply(&[ban("six", "::1", Some(600))]).unwrap();
    assert!(
        !ns.connects("::1", "::1", 8081),
        "banned ::1 connected to 8081"
    );
    assert!(
        ns.connects("::1", "::1", 8082),
        "port 8082 is not the jail's"
    );
    assert!(listed(&mut nft, "six", "::1").unwrap().is_some());
    let sets = ns.nft(&["list", "set", "inet", "banhammer", "addr6-set-six"]);
    assert!(sets.contains("::1 timeout"), "{sets}");
}

#[test]
fn timeout_expires_in_the_kernel() {
    let Some(ns) = Netns::new("expire") else {
        return;
    };
    let mut nft = ns.backend();
    nft.start_jail(&NftJailSpec::new("short", Some("22")))
        .unwrap();
    nft.apply(&[
        ban("short", "127.0.0.30", Some(1)),
        ban("short", "127.0.0.31", Some(600)),
    ])
    .unwrap();
    let start = Instant::now();
    assert!(listed(&mut nft, "short", "127.0.0.30").is_some());
    // Nothing of ours runs between the ban and its disappearance: the kernel expires it.
    while listed(&mut nft, "short", "127.0.0.30").is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "1 s ban still listed after 5 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        start.elapsed() >= Duration::from_millis(800),
        "{:?}",
        start.elapsed()
    );
    assert!(listed(&mut nft, "short", "127.0.0.31").is_some());
}

#[test]
fn ten_thousand_bans_in_one_transaction() {
    let Some(mut ns) = Netns::new("bulk") else {
        return;
    };
    let mut nft = ns.backend();
    nft.start_jail(&NftJailSpec::new("bulk", Some("80")))
        .unwrap();

    // `nft monitor` prints `# new generation N …` once per committed transaction.
    let mut monitor = ns
        .command("nft")
        .args(["monitor"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = monitor.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    ns.children.push(monitor);
    // Wait until the monitor is subscribed: repeat a marker change until it shows.
    let started = Instant::now();
    'subscribed: loop {
        nft.apply(&[ban("bulk", "127.0.0.200", Some(60))]).unwrap();
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            if line.contains("new generation") {
                break 'subscribed;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "nft monitor is silent"
        );
    }
    while rx.recv_timeout(Duration::from_millis(50)).is_ok() {}

    let batch: Vec<NftChange> = (0..10_000u32)
        .map(|i| {
            let [_, _, c, d] = (0x7f01_0000 + i).to_be_bytes();
            ban("bulk", &format!("127.1.{c}.{d}"), Some(600))
        })
        .collect();
    let t = Instant::now();
    nft.apply(&batch).unwrap();
    eprintln!("10,000 bans in one batch: {:?}", t.elapsed());
    nft.apply(&[unban("bulk", "127.0.0.200")]).unwrap();

    let mut generations = 0;
    let mut elements = 0;
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("monitor output");
        if line.contains("new generation") {
            generations += 1;
        } else if line.contains("127.0.0.200") {
            break;
        } else if line.contains("127.1.") {
            elements += 1;
        }
    }
    assert_eq!(
        generations, 1,
        "the 10,000 bans took {generations} transactions"
    );
    assert!(elements >= 10_000, "monitor saw {elements} element lines");
    let listed = nft.list("bulk").unwrap();
    let bulk = listed
        .iter()
        .filter(|(net, t)| net.to_string().starts_with("127.1.") && t.is_some())
        .count();
    assert_eq!(bulk, 10_000);
}

#[test]
fn invalid_values_are_refused_before_anything_runs() {
    let Some(ns) = Netns::new("invalid") else {
        return;
    };
    let mut nft = ns.backend();
    let mut spec = NftJailSpec::new("word press", Some("80"));
    let err = nft.start_jail(&spec).unwrap_err();
    assert!(
        err.to_string().contains("jail name \"word press\""),
        "{err}"
    );
    spec.jail = "wordpress".into();
    for bad in ["80;flush ruleset", "80 443", "$(reboot)", "70000", ""] {
        spec.ports = Some(bad.into());
        let err = nft.start_jail(&spec).unwrap_err();
        assert!(
            matches!(err, NftError::Invalid { what: "port", .. }),
            "{bad}: {err}"
        );
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
    spec.ports = Some("80".into());
    spec.blocktype = "accept".into();
    assert!(nft.start_jail(&spec).is_err());
    spec.blocktype = "reject".into();
    spec.chain = "input; flush ruleset".into();
    assert!(nft.start_jail(&spec).is_err());
    let err = nft
        .apply(&[ban("wordpress", "127.0.0.2", None)])
        .unwrap_err();
    assert!(matches!(err, NftError::UnknownJail(_)), "{err}");
    assert_eq!(ns.nft(&["list", "ruleset"]).trim(), "", "something ran");
}

#[test]
fn start_is_idempotent_and_stop_removes_only_that_jail() {
    let Some(mut ns) = Netns::new("stop") else {
        return;
    };
    ns.listen(&[("127.0.0.1", 80), ("127.0.0.1", 2222)]);
    let mut nft = ns.backend();
    let wp = NftJailSpec::new("wordpress", Some("http,https"));
    let mut recidive = NftJailSpec::new("recidive", None);
    recidive.blocktype = "drop".into();
    nft.start_jail(&wp).unwrap();
    nft.start_jail(&recidive).unwrap();
    nft.apply(&[
        ban("wordpress", "127.0.0.50", Some(600)),
        ban("recidive", "127.0.0.51", Some(600)),
        ban("recidive", "127.9.0.0/16", Some(600)),
    ])
    .unwrap();
    // A second start keeps the elements and does not duplicate the rules.
    nft.start_jail(&wp).unwrap();
    let chain = ns.nft(&["list", "chain", "inet", "banhammer", "input"]);
    assert_eq!(chain.matches("banhammer:wordpress").count(), 4, "{chain}");
    assert_eq!(chain.matches("banhammer:recidive").count(), 4, "{chain}");
    assert!(listed(&mut nft, "wordpress", "127.0.0.50").is_some());
    // allports: every port of the protocol is closed to the banned source.
    assert!(!ns.connects("127.0.0.51", "127.0.0.1", 2222));
    assert!(!ns.connects("127.9.1.2", "127.0.0.1", 2222), "prefix ban");
    assert!(
        ns.connects("127.0.0.50", "127.0.0.1", 2222),
        "wordpress bans only http(s)"
    );
    assert!(!ns.connects("127.0.0.50", "127.0.0.1", 80));

    nft.stop_jail("wordpress").unwrap();
    let ruleset = ns.nft(&["list", "ruleset"]);
    assert!(!ruleset.contains("wordpress"), "{ruleset}");
    assert!(ruleset.contains("addr-set-recidive") && ruleset.contains("banhammer:recidive"));
    assert!(listed(&mut nft, "recidive", "127.0.0.51").is_some());
    assert!(ns.connects("127.0.0.50", "127.0.0.1", 80));
    assert!(matches!(
        nft.list("wordpress"),
        Err(NftError::UnknownJail(_))
    ));

    nft.flush_jail("recidive").unwrap();
    assert!(nft.list("recidive").unwrap().is_empty());
    nft.stop_jail("recidive").unwrap();
    assert_eq!(
        ns.nft(&["list", "ruleset"]).trim(),
        "",
        "the table is left behind"
    );
}

#[test]
fn a_failing_change_does_not_keep_the_others_out() {
    let Some(ns) = Netns::new("partial") else {
        return;
    };
    let mut nft = ns.backend();
    nft.start_jail(&NftJailSpec::new("subnets", Some("80")))
        .unwrap();
    nft.apply(&[ban("subnets", "127.2.0.0/16", Some(600))])
        .unwrap();
    // The kernel refuses a prefix overlapping another: that change alone fails.
    let err = nft
        .apply(&[
            ban("subnets", "127.2.3.0/24", Some(600)),
            ban("subnets", "127.0.0.40", Some(600)),
            ban("subnets", "::1", None),
        ])
        .unwrap_err();
    match &err {
        NftError::Partial { failed, applied } => {
            assert_eq!(*applied, 2, "{err}");
            assert_eq!(failed.len(), 1, "{err}");
            assert!(failed[0].0.contains("127.2.3.0/24"), "{err}");
        }
        other => panic!("expected a partial failure, got {other}"),
    }
    assert!(listed(&mut nft, "subnets", "127.0.0.40").is_some());
    assert_eq!(listed(&mut nft, "subnets", "::1"), Some(None));
    assert!(listed(&mut nft, "subnets", "127.2.0.0/16").is_some());
}

#[test]
fn the_ruleset_flushed_behind_our_back_is_repaired() {
    let Some(ns) = Netns::new("repair") else {
        return;
    };
    let mut nft = ns.backend();
    nft.start_jail(&NftJailSpec::new("sshd", Some("ssh")))
        .unwrap();
    nft.apply(&[ban("sshd", "127.0.0.60", Some(600))]).unwrap();
    ns.nft(&["flush", "ruleset"]);
    nft.apply(&[ban("sshd", "127.0.0.61", Some(600))]).unwrap();
    assert!(listed(&mut nft, "sshd", "127.0.0.61").is_some());
    let chain = ns.nft(&["list", "chain", "inet", "banhammer", "input"]);
    assert_eq!(chain.matches("banhammer:sshd").count(), 4, "{chain}");
}

/// Latency of `apply` (decision → committed in the kernel) for both transports.
/// `cargo test --release --test it nftables::bench -- --ignored --nocapture` runs nft
/// through `ip netns exec` (which adds its own cost to every process: ~15 ms here); to
/// measure nft as the daemon runs it, run the test binary itself inside a namespace:
/// `ip netns add B; ip -n B link set lo up; BH_BENCH_IN_NETNS=1 ip netns exec B
/// target/release/deps/it-… nftables::bench --ignored --nocapture; ip netns del B`.
#[test]
#[ignore = "benchmark; run by hand"]
fn bench() {
    let direct = std::env::var("BH_BENCH_IN_NETNS").is_ok_and(|v| v == "1");
    let ns = if direct { None } else { Netns::new("bench") };
    if !direct && ns.is_none() {
        return;
    }
    let backend = || match &ns {
        Some(ns) => ns.backend(),
        None => NftBackend::new(std::path::Path::new("nft"), "banhammer").unwrap(),
    };
    eprintln!(
        "nft run {}",
        if direct {
            "directly"
        } else {
            "through ip netns exec"
        }
    );
    for mode in [NftMode::Interactive, NftMode::PerBatch] {
        let mut nft = backend();
        nft.set_mode(mode);
        nft.start_jail(&NftJailSpec::new("bench", Some("80")))
            .unwrap();
        // Fresh addresses for every ban (the fast path: a plain `add`), then re-bans of
        // addresses already banned (the replace path: add, delete, add).
        let mut next = 0u32;
        for (size, rounds, fresh) in [
            (1usize, 1000usize, true),
            (10, 200, true),
            (100, 200, true),
            (1000, 20, true),
            (10_000, 5, true),
            (1, 1000, false),
            (100, 100, false),
        ] {
            let mut times = Vec::with_capacity(rounds);
            for round in 0..rounds {
                let batch: Vec<NftChange> = (0..size)
                    .map(|i| {
                        let n = if fresh {
                            next += 1;
                            next
                        } else {
                            u32::try_from(round * size + i).unwrap()
                        };
                        let [_, b, c, d] = (0x7f03_0000 + n).to_be_bytes();
                        ban("bench", &format!("127.{b}.{c}.{d}"), Some(600))
                    })
                    .collect();
                let t = Instant::now();
                nft.apply(&batch).unwrap();
                times.push(t.elapsed());
            }
            times.sort();
            let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
            eprintln!(
                "{mode:?}: {size} {} bans/batch, {rounds} batches: p50 {:?} p99 {:?} max {:?}",
                if fresh { "new" } else { "repeated" },
                pct(50),
                pct(99),
                times[times.len() - 1]
            );
        }
        nft.stop_jail("bench").unwrap();
    }
}

#[test]
fn a_restarted_backend_replaces_timeouts_of_bans_already_in_the_kernel() {
    let Some(ns) = Netns::new("restart") else {
        return;
    };
    let spec = NftJailSpec::new("sshd", Some("22"));
    {
        let mut first = ns.backend();
        first.start_jail(&spec).unwrap();
        first.apply(&[ban("sshd", "127.0.0.70", None)]).unwrap();
    }
    // A new daemon: the kernel still holds the ban; a re-ban replaces it (permanent → 30 s).
    let mut nft = ns.backend();
    nft.start_jail(&spec).unwrap();
    assert_eq!(listed(&mut nft, "sshd", "127.0.0.70"), Some(None));
    nft.apply(&[ban("sshd", "127.0.0.70", Some(30))]).unwrap();
    let left = listed(&mut nft, "sshd", "127.0.0.70").unwrap();
    assert!(
        left.is_some_and(|l| l <= Duration::from_secs(30)),
        "{left:?}"
    );
}
