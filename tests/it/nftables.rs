//! The native nftables backend against the real kernel, inside a network namespace each
//! test creates (and deletes, even on failure). Root, `nft` and `ip` are required: the
//! tests skip loudly without them, and fail under CI=true. Only loopback addresses are
//! used, and only inside the namespace.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use banhammer::action::nftables::{
    NftBackend, NftChange, NftError, NftJailSpec, NftMode, TableReader, TableState,
};
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

/// Runs `f` on a thread that has entered the namespace's network namespace: the netlink
/// sockets it opens and the processes it starts (plain `nft`) are in the namespace, while
/// the rest of the test binary stays where it was.
fn in_netns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    use std::os::fd::AsFd;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let path = format!("/var/run/netns/{}", ns.name);
                let file = std::fs::File::open(&path).unwrap();
                rustix::thread::move_into_link_name_space(
                    file.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .unwrap();
                f()
            })
            .join()
            .unwrap()
    })
}

/// The state with each set's elements in address order (the readers' orders may differ).
fn sorted(mut state: TableState) -> TableState {
    state.rules.sort();
    for elems in state.sets.values_mut() {
        elems.sort();
    }
    state
}

/// The two readers on the same kernel: netlink, nft, netlink again. Names, rules and
/// elements must be identical; each element's time left can only go down from one read
/// to the next, so nft's lies between the two netlink reads.
fn readers_agree(ns: &Netns) -> TableState {
    let (first, by_nft, second) = in_netns(ns, || {
        let nft = NftBackend::new(std::path::Path::new("nft"), "banhammer").unwrap();
        assert_eq!(nft.reader(), TableReader::Netlink);
        let first = nft.read_table(TableReader::Netlink).unwrap();
        let by_nft = nft.read_table(TableReader::Nft).unwrap();
        let second = nft.read_table(TableReader::Netlink).unwrap();
        (sorted(first), sorted(by_nft), sorted(second))
    });
    // Everything but the times.
    let shape = |s: &TableState| {
        let mut s = s.clone();
        for elems in s.sets.values_mut() {
            for e in elems.iter_mut() {
                e.1 = None;
            }
        }
        s
    };
    assert_eq!(shape(&first), shape(&by_nft), "netlink (first) vs nft");
    assert_eq!(shape(&second), shape(&by_nft), "netlink (second) vs nft");
    for (name, elems) in &by_nft.sets {
        for (i, (net, left)) in elems.iter().enumerate() {
            let (a, b) = (first.sets[name][i].1, second.sets[name][i].1);
            match left {
                None => assert!(a.is_none() && b.is_none(), "{name} {net}: {a:?} {b:?}"),
                Some(l) => assert!(
                    a.is_some_and(|a| a >= *l) && b.is_some_and(|b| b <= *l),
                    "{name} {net}: netlink {a:?}, nft {l:?}, netlink {b:?}"
                ),
            }
        }
    }
    by_nft
}

#[test]
fn netlink_and_nft_read_the_same_table() {
    let Some(ns) = Netns::new("readers") else {
        return;
    };
    // No table yet: both say so.
    let state = readers_agree(&ns);
    assert!(!state.exists && state.sets.is_empty() && state.rules.is_empty());

    let mut nft = ns.backend();
    let mut recidive = NftJailSpec::new("recidive", None);
    recidive.blocktype = "drop".into();
    let mut sshd = NftJailSpec::new("sshd", Some("ssh"));
    sshd.name = Some("ssh-sets".into());
    for spec in [
        NftJailSpec::new("wordpress", Some("80,443")),
        recidive,
        sshd,
    ] {
        nft.start_jail(&spec).unwrap();
    }
    nft.apply(&[
        ban("wordpress", "192.0.2.1", Some(3600)),
        ban("wordpress", "192.0.2.2", None),
        ban("wordpress", "2001:db8::1", Some(7200)),
        ban("wordpress", "2001:db8::2", None),
        ban("wordpress", "10.1.0.0/16", Some(3600)),
        ban("wordpress", "10.2.0.0/16", None),
        // Adjacent to the one before: one end shares its key with the next start.
        ban("wordpress", "10.3.0.0/24", Some(600)),
        ban("wordpress", "0.0.0.0/8", None),
        // Reaches the top of the address space: the kernel keeps no end for it.
        ban("wordpress", "255.255.255.0/24", Some(900)),
        ban("wordpress", "2001:db8:1::/48", Some(3600)),
        ban("wordpress", "2001:db8:2::/64", None),
        ban("wordpress", "ffff::/16", None),
        ban("recidive", "198.51.100.7", Some(86_400 * 30)),
        ban("recidive", "198.51.100.0/25", Some(86_400)),
        ban("sshd", "203.0.113.9", Some(60)),
    ])
    .unwrap();
    // What only a person (or another program) puts there: a rule without our comment, one
    // with another comment in another chain, an address and a non-prefix range in an
    // interval set, a set of ports, a map.
    let script = "add rule inet banhammer input tcp dport 9999 accept\n\
        add chain inet banhammer other\n\
        add rule inet banhammer other udp dport 53 counter comment \"someone else\"\n\
        add element inet banhammer net-set-wordpress { 192.168.1.1, 10.9.0.0-10.9.0.2 timeout 1h }\n\
        add set inet banhammer ports { type inet_service; elements = { 22, 80 } }\n\
        add map inet banhammer m { type ipv4_addr : verdict; elements = { 1.2.3.4 : drop } }\n";
    let out = ns
        .command("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(script.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "nft -f: {out:?}");

    let state = readers_agree(&ns);
    assert!(state.exists);
    let names: Vec<&str> = state.sets.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "addr-set-recidive",
            "addr-set-ssh-sets",
            "addr-set-wordpress",
            "addr6-set-recidive",
            "addr6-set-ssh-sets",
            "addr6-set-wordpress",
            "net-set-recidive",
            "net-set-ssh-sets",
            "net-set-wordpress",
            "net6-set-recidive",
            "net6-set-ssh-sets",
            "net6-set-wordpress",
            "ports",
        ]
    );
    let nets =
        |set: &str| -> Vec<String> { state.sets[set].iter().map(|(n, _)| n.to_string()).collect() };
    assert_eq!(
        nets("net-set-wordpress"),
        [
            "0.0.0.0/8",
            "10.1.0.0/16",
            "10.2.0.0/16",
            "10.3.0.0/24",
            "192.168.1.1",
            "255.255.255.0/24"
        ]
    );
    assert_eq!(
        nets("net6-set-wordpress"),
        ["2001:db8:1::/48", "2001:db8:2::/64", "ffff::/16"]
    );
    assert_eq!(nets("addr6-set-wordpress"), ["2001:db8::1", "2001:db8::2"]);
    assert!(state.sets["ports"].is_empty());
    let left = |set: &str, i: usize| state.sets[set][i].1;
    assert_eq!(left("addr-set-wordpress", 1), None, "permanent");
    assert!(left("addr-set-wordpress", 0).is_some_and(|l| l <= Duration::from_secs(3600)));
    assert!(left("net-set-wordpress", 5).is_some_and(|l| l <= Duration::from_secs(900)));
    // Four rules per jail, and the two that are not ours.
    let comments: Vec<&str> = state.rules.iter().map(|r| r.0.as_str()).collect();
    for jail in ["wordpress", "recidive", "sshd"] {
        let tag = format!("banhammer:{jail}");
        assert_eq!(
            comments.iter().filter(|c| **c == tag).count(),
            4,
            "{comments:?}"
        );
    }
    assert!(comments.contains(&""), "{comments:?}");
    assert!(state
        .rules
        .iter()
        .any(|(c, chain, _)| c == "someone else" && chain == "other"));

    // The backend itself on the netlink reader (it reads only the sets it looks into):
    // a new daemon with only `wordpress` configured takes the inventory of its sets and
    // prunes the others, counting their elements.
    let (inventory, pruned) = in_netns(&ns, || {
        let mut nft = NftBackend::new(std::path::Path::new("nft"), "banhammer").unwrap();
        nft.start_jail(&NftJailSpec::new("wordpress", Some("80,443")))
            .unwrap();
        (nft.inventory().unwrap(), nft.prune_stale().unwrap())
    });
    let mut got: Vec<String> = inventory
        .iter()
        .map(|(jail, net, _)| format!("{jail} {net}"))
        .collect();
    got.sort();
    let mut want: Vec<String> = state
        .sets
        .iter()
        .filter(|(name, _)| name.ends_with("-set-wordpress"))
        .flat_map(|(_, elems)| elems.iter().map(|(net, _)| format!("wordpress {net}")))
        .collect();
    want.sort();
    assert_eq!(got, want);
    for set in ["addr-set-recidive", "net-set-recidive", "addr-set-ssh-sets"] {
        let line = format!("set {set} (1 element(s))");
        assert!(pruned.contains(&line), "{line} not in {pruned:?}");
    }
    assert!(
        pruned.contains(&"set ports (0 element(s))".to_string()),
        "{pruned:?}"
    );
    let after = readers_agree(&ns);
    assert!(after.sets.keys().all(|s| s.ends_with("-set-wordpress")));
    assert_eq!(
        after.sets["net-set-wordpress"],
        state.sets["net-set-wordpress"]
    );
}

/// Time to read the table with 200,000 addresses (with timeouts) and 50,000 prefixes in
/// its sets: netlink against `nft -j`. `cargo test --release --test it
/// nftables::bench_table_read -- --ignored --nocapture`. With `BH_READ_NETNS=NAME`, reads
/// the table of that existing namespace instead (a daemon's, say).
#[test]
#[ignore = "benchmark; run by hand"]
fn bench_table_read() {
    if let Ok(name) = std::env::var("BH_READ_NETNS") {
        let ns = Netns {
            name,
            children: Vec::new(),
        };
        time_table_reads(&ns);
        // Not ours: not deleted.
        std::mem::forget(ns);
        return;
    }
    let Some(ns) = Netns::new("readbench") else {
        return;
    };
    let mut nft = ns.backend();
    nft.start_jail(&NftJailSpec::new("bench", Some("80")))
        .unwrap();
    let mut script = String::new();
    for chunk in 0..20u32 {
        script.push_str("add element inet banhammer addr-set-bench { ");
        for i in 0..10_000u32 {
            let [_, b, c, d] = (chunk * 10_000 + i + 1).to_be_bytes();
            script.push_str(&format!("10.{b}.{c}.{d} timeout 1h, "));
        }
        script.push_str("}\n");
    }
    for chunk in 0..5u32 {
        script.push_str("add element inet banhammer net-set-bench { ");
        for i in 0..10_000u32 {
            let [_, _, b, c] = (chunk * 10_000 + i).to_be_bytes();
            script.push_str(&format!("100.{b}.{c}.0/24 timeout 1h, "));
        }
        script.push_str("}\n");
    }
    let mut child = ns
        .command("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
    }
    assert!(child.wait().unwrap().success());
    time_table_reads(&ns);
}

fn time_table_reads(ns: &Netns) {
    in_netns(ns, || {
        let nft = NftBackend::new(std::path::Path::new("nft"), "banhammer").unwrap();
        for reader in [TableReader::Netlink, TableReader::Nft] {
            let mut times = Vec::new();
            let mut count = 0;
            // This thread's user and system time (ticks), to see where the time goes.
            let cpu = || {
                let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
                let rest = &stat[stat.rfind(')').unwrap() + 2..];
                let f: Vec<u64> = rest
                    .split(' ')
                    .skip(11)
                    .take(2)
                    .map(|v| v.parse().unwrap())
                    .collect();
                (f[0], f[1])
            };
            let (u0, s0) = cpu();
            for _ in 0..5 {
                let t = Instant::now();
                let state = nft.read_table(reader).unwrap();
                times.push(t.elapsed());
                eprintln!("  {reader:?} read: {:?}", t.elapsed());
                count = state.sets.values().map(Vec::len).sum::<usize>();
            }
            let (u1, s1) = cpu();
            times.sort();
            eprintln!(
                "{reader:?}: {count} elements; min {:?} median {:?} max {:?}; \
                 this thread: user {} ticks, system {} ticks for 5 reads",
                times[0],
                times[2],
                times[4],
                u1 - u0,
                s1 - s0
            );
        }
    });
}
