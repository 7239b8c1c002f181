//! Behaviours of fail2ban's own tests (failmanagertestcase, banmanagertestcase,
//! observertestcase, filtertestcase ignoreip) as data, plus property tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(s: &str) -> FailureKey {
    FailureKey::parse(s)
}

fn tracker(maxretry: u32) -> FailTracker<FailureKey> {
    FailTracker::new(TrackerConfig {
        maxretry,
        findtime: 600.0,
        maxmatches: 3,
        max_tracked: 1000,
    })
}

/// failmanagertestcase `_addDefItems`.
const DEF_ITEMS: &[(&str, f64)] = &[
    ("193.168.0.128", 1167605999.0),
    ("193.168.0.128", 1167605999.0),
    ("193.168.0.128", 1167605999.0),
    ("193.168.0.128", 1167605999.0),
    ("193.168.0.128", 1167605999.0),
    ("87.142.124.10", 1167605999.0),
    ("87.142.124.10", 1167605999.0),
    ("87.142.124.10", 1167605999.0),
    ("100.100.10.10", 1000000000.0),
    ("100.100.10.10", 1000000500.0),
    ("100.100.10.10", 1000001000.0),
    ("100.100.10.10", 1000001500.0),
    ("100.100.10.10", 1000002000.0),
];

fn def_items(t: &mut FailTracker<FailureKey>) -> Vec<FailTicket<FailureKey>> {
    let mut reached = Vec::new();
    for (k, time) in DEF_ITEMS {
        if let Added::Reached(tk) = t.add(key(k), *time, Vec::new(), 1) {
            reached.push(tk);
        }
    }
    reached
}

// ---------------------------------------------------------------- tracker

#[test]
fn tracker_add_counts_keys_and_total() {
    let mut t = tracker(100);
    assert!(def_items(&mut t).is_empty());
    assert_eq!(t.len(), 3);
    assert_eq!(t.stats().total, 13);
    assert_eq!(t.retry(&key("193.168.0.128")), Some(5));
    assert_eq!(t.retry(&key("87.142.124.10")), Some(3));
    // 500 s apart with findtime 600: rescaled every time, never above 2.
    assert_eq!(t.retry(&key("100.100.10.10")), Some(2));
    t.set_total(0);
    assert_eq!(t.stats().total, 0);
}

#[test]
fn tracker_window_bans_only_dense_keys() {
    // testWindow / testbanOK: maxretry 3 bans the two dense keys, never 100.100.10.10.
    let mut t = tracker(3);
    let reached = def_items(&mut t);
    let keys: Vec<String> = reached.iter().map(|r| r.key.to_string()).collect();
    assert_eq!(keys, ["193.168.0.128", "87.142.124.10"]);
    assert_eq!(reached[0].retry, 3);
    assert_eq!(reached[0].last_time, 1167605999.0);
    // The banned entry left the tracker; its later failures start a new one.
    assert_eq!(t.len(), 2);
    assert_eq!(t.retry(&key("193.168.0.128")), Some(2));
    assert!(t.get(&key("87.142.124.10")).is_none());
}

#[test]
fn tracker_maxretry_edge() {
    let mut t = tracker(3);
    let k = key("192.0.2.1");
    assert_eq!(
        t.add(k.clone(), 10.0, vec![], 1),
        Added::Tracking { retry: 1 }
    );
    assert_eq!(
        t.add(k.clone(), 11.0, vec![], 1),
        Added::Tracking { retry: 2 }
    );
    match t.add(k.clone(), 12.0, vec![], 1) {
        Added::Reached(tk) => {
            assert_eq!((tk.retry, tk.failures), (3, 3));
            assert_eq!((tk.first_time, tk.last_time), (10.0, 12.0));
        }
        other => panic!("expected a ban, got {other:?}"),
    }
    assert!(t.is_empty());
    // A count ≥ maxretry at once (addAttempt with several lines) bans at once.
    assert!(matches!(t.add(k, 20.0, vec![], 5), Added::Reached(_)));
}

/// Rescaling, cross-checked against fail2ban 1.0.2's FailManager (findtime 600):
/// (key, time, retry after). Includes round-half-even cases (2.5 → 2, 1.5 → 2).
const RESCALE: &[(&str, f64, u32)] = &[
    ("a", 0.0, 1),
    ("a", 0.0, 2),
    ("a", 0.0, 3),
    ("a", 0.0, 4),
    ("a", 0.0, 5),
    ("a", 1200.0, 3),
    ("b", 0.0, 1),
    ("b", 0.0, 2),
    ("b", 0.0, 3),
    ("b", 1200.0, 3),
    ("c", 0.0, 1),
    ("c", 100.0, 2),
    ("c", 200.0, 3),
    ("c", 300.0, 4),
    ("c", 900.0, 4),
    ("c", 850.0, 5),
    ("c", 2000.0, 3),
    ("c", 2001.0, 4),
    ("c", 5000.0, 2),
];

#[test]
fn tracker_rescales_like_fail2ban() {
    let mut t = tracker(100);
    for (i, (k, time, want)) in RESCALE.iter().enumerate() {
        let got = t.add(key(k), *time, vec![], 1);
        assert_eq!(
            got,
            Added::Tracking { retry: *want },
            "step {i}: {k} at {time}"
        );
    }
    // Failures are not rescaled.
    assert_eq!(t.get(&key("c")).unwrap().failures, 9);
    // first_time moved to t − findtime on the last rescale.
    assert_eq!(t.get(&key("c")).unwrap().first_time, 4400.0);
}

#[test]
fn py_round_is_half_even() {
    let cases = [
        (0.5, 0.0),
        (1.5, 2.0),
        (2.5, 2.0),
        (3.5, 4.0),
        (2.4999, 2.0),
        (2.6, 3.0),
    ];
    for (x, want) in cases {
        assert_eq!(py_round(x), want, "round({x})");
    }
}

#[test]
fn tracker_cleanup() {
    let mut t = tracker(100);
    def_items(&mut t);
    let mut t2 = t.clone();
    // testCleanupOK: everything is older than findtime.
    assert_eq!(t.cleanup(1167606999.0), 3);
    assert!(t.is_empty());
    // testCleanupNOK: only 100.100.10.10 is old.
    assert_eq!(t2.cleanup(1167605990.0), 1);
    assert_eq!(t2.len(), 2);
    // Boundary: last_time <= now − findtime is dropped.
    let mut t3 = tracker(100);
    t3.add(key("x"), 1000.0, vec![], 1);
    assert_eq!(t3.cleanup(1599.0), 0);
    assert_eq!(t3.cleanup(1600.0), 1);
}

#[test]
fn tracker_maxmatches_keeps_newest() {
    let mut t = FailTracker::new(TrackerConfig {
        maxretry: 100,
        findtime: 600.0,
        maxmatches: 2,
        max_tracked: 10,
    });
    let k = key("127.0.0.1");
    let failures = ["abc\n", "123\n", "ABC\n", "1234\n"];
    let mut time = 1000002000.0 - 80.0;
    for f in failures {
        time += 10.0;
        t.add(k.clone(), time, vec![f.to_string()], 1);
    }
    let e = t.get(&k).unwrap();
    assert_eq!(e.failures, 4);
    assert_eq!(e.matches, ["ABC\n", "1234\n"]);
    // Several lines at once: still the newest two.
    let many: Vec<String> = failures.iter().map(|s| s.to_string()).collect();
    t.add(k.clone(), 1000002000.0 - 10.0, many, 1);
    let e = t.get(&k).unwrap();
    assert_eq!(e.failures, 5);
    assert_eq!(e.matches, ["ABC\n", "1234\n"]);
    // maxmatches 0: no lines kept.
    t.set_maxmatches(0);
    t.add(k.clone(), 1000002000.0, vec!["x".into()], 1);
    assert!(t.get(&k).unwrap().matches.is_empty());
}

#[test]
fn tracker_cap_evicts_oldest_last_time() {
    let mut t = FailTracker::new(TrackerConfig {
        maxretry: 100,
        findtime: 600.0,
        maxmatches: 0,
        max_tracked: 3,
    });
    t.add(key("10.0.0.1"), 100.0, vec![], 1);
    t.add(key("10.0.0.2"), 50.0, vec![], 1);
    t.add(key("10.0.0.3"), 200.0, vec![], 1);
    // 10.0.0.2 gets newer than the others: 10.0.0.1 is now the oldest.
    t.add(key("10.0.0.2"), 300.0, vec![], 1);
    t.add(key("10.0.0.4"), 400.0, vec![], 1);
    assert_eq!(t.len(), 3);
    assert!(t.get(&key("10.0.0.1")).is_none());
    assert_eq!(t.stats().evicted, 1);
    let keys: Vec<String> = t.keys().map(|k| k.to_string()).collect();
    assert_eq!(keys, ["10.0.0.3", "10.0.0.2", "10.0.0.4"]);
    t.set_max_tracked(1);
    assert_eq!(
        t.keys().map(|k| k.to_string()).collect::<Vec<_>>(),
        ["10.0.0.4"]
    );
}

#[test]
fn tracker_works_for_any_key() {
    // A per-user detector counts by user name with the same rules.
    let mut t: FailTracker<String> = FailTracker::new(TrackerConfig {
        maxretry: 2,
        ..TrackerConfig::default()
    });
    assert_eq!(
        t.add("admin".into(), 1.0, vec![], 1),
        Added::Tracking { retry: 1 }
    );
    assert!(matches!(
        t.add("admin".into(), 2.0, vec![], 1),
        Added::Reached(_)
    ));
}

#[test]
fn tracker_keeps_any_line_text() {
    // Lines are stored length-prefixed in one block: separators, empty lines, non-ASCII
    // and lengths past the one- and two-byte prefixes must come back as they went in.
    let mut t = tracker(100);
    let k = key("192.0.2.30");
    let long = "x".repeat(200);
    let huge = "é".repeat(10_000);
    let lines = [
        "a\nb\n".to_string(),
        String::new(),
        long.clone(),
        huge.clone(),
        "\0last".to_string(),
    ];
    for (i, l) in lines.iter().enumerate() {
        t.add(k.clone(), 10.0 + i as f64, vec![l.clone()], 1);
    }
    assert_eq!(t.get(&k).unwrap().matches, [long, huge, "\0last".into()]);
    // No lines given: the kept ones stay; several at once: the newest three of all.
    t.add(k.clone(), 20.0, vec![], 1);
    assert_eq!(t.get(&k).unwrap().matches.len(), 3);
    t.add(k.clone(), 21.0, vec!["p".into(), "q".into()], 2);
    let got = t.take(&k).unwrap();
    assert_eq!(got.matches, ["\0last", "p", "q"]);
    assert_eq!((got.retry, got.failures), (8, 7));
}

#[test]
fn tracker_cap_evicts_oldest_percent_in_one_pass() {
    let mut t: FailTracker<u32> = FailTracker::new(TrackerConfig {
        maxretry: 100,
        findtime: 600.0,
        maxmatches: 1,
        max_tracked: 1000,
    });
    // Times out of insertion order; key i failed at time (i · 7919) mod 1000.
    let time = |i: u32| f64::from(i.wrapping_mul(7919) % 1000);
    for i in 0..1000 {
        t.add(i, time(i), vec![format!("line {i}")], 1);
    }
    assert_eq!(t.stats().evicted, 0);
    // One new key at the cap: the 10 oldest (1 % of the cap) go at once.
    t.add(5000, 2000.0, vec![], 1);
    assert_eq!((t.len(), t.stats().evicted), (991, 10));
    for i in 0..1000 {
        assert_eq!(t.retry(&i).is_some(), time(i) >= 10.0, "key {i}");
    }
    assert_eq!(t.get(&999).unwrap().matches, ["line 999"]);
    // The next 9 new keys fit without evicting.
    for i in 1..10 {
        t.add(5000 + i, 2000.0, vec![], 1);
    }
    assert_eq!((t.len(), t.stats().evicted), (1000, 10));
    // Lowering the cap evicts exactly down to it, oldest first.
    t.set_max_tracked(500);
    assert_eq!((t.len(), t.stats().evicted), (500, 510));
    let oldest_kept = t.keys().next().map(|k| t.get(k).unwrap().last_time);
    assert_eq!(oldest_kept, Some(510.0));
}

#[test]
fn tracker_cap_eviction_with_equal_times() {
    // Log times have 1 s resolution: many entries share the cut-off time. The batch (3 of
    // a cap of 300) takes every older entry and only as many tied ones as needed.
    let mut t: FailTracker<u32> = FailTracker::new(TrackerConfig {
        maxretry: 100,
        findtime: 600.0,
        maxmatches: 0,
        max_tracked: 300,
    });
    for i in 0..100 {
        t.add(i, 5.0, vec![], 1);
    }
    t.add(100, 1.0, vec![], 1);
    t.add(101, 2.0, vec![], 1);
    for i in 102..300 {
        t.add(i, 9.0, vec![], 1);
    }
    t.add(1000, 9.0, vec![], 1);
    assert_eq!((t.len(), t.stats().evicted), (298, 3));
    assert!(t.retry(&100).is_none() && t.retry(&101).is_none());
    assert_eq!((0..100).filter(|i| t.retry(i).is_some()).count(), 99);
    assert!((102..300).all(|i| t.retry(&i).is_some()));
}

#[test]
fn tracker_gives_memory_back_after_a_flood() {
    let mut t: FailTracker<u32> = FailTracker::new(TrackerConfig {
        maxretry: 100,
        findtime: 600.0,
        maxmatches: 3,
        max_tracked: 1_000_000,
    });
    for i in 0..50_000 {
        t.add(i, f64::from(i % 100), vec!["x".repeat(50)], 1);
    }
    // Ten keys stay newer.
    for i in 0..10 {
        t.add(i, 1000.0, vec![], 1);
    }
    let full = t.approx_bytes();
    assert_eq!(t.cleanup(1000.0), 49_990);
    assert!(
        t.approx_bytes() * 100 < full,
        "{} of {full}",
        t.approx_bytes()
    );
    for i in 0..10 {
        assert_eq!(t.retry(&i), Some(2));
    }
    // Nothing old left: the next cleanups are free and drop nothing.
    assert_eq!(t.cleanup(1599.0), 0);
    assert_eq!(t.cleanup(1600.0), 10);
    assert!(t.is_empty());
}

#[test]
fn memory_per_key_100k() {
    let mut t: FailTracker<IpAddr> = FailTracker::new(TrackerConfig {
        maxretry: 1000,
        findtime: 600.0,
        maxmatches: 0,
        max_tracked: 1_000_000,
    });
    for i in 0..100_000u32 {
        let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        // Times out of order, as merged logs produce.
        t.add(a, f64::from(i.wrapping_mul(7919) % 100_000), vec![], 1);
    }
    assert_eq!(t.len(), 100_000);
    let per_key = t.approx_bytes() / 100_000;
    eprintln!("approx bytes per tracked IpAddr: {per_key}");
    // 64-byte slot (Vec capacity 131 072) + 8-byte buckets (262 144): about 105 B.
    assert!((64..=120).contains(&per_key), "{per_key} B per key");
    let mut f: FailTracker<FailureKey> = FailTracker::new(t.config().clone());
    for i in 0..100_000u32 {
        let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        f.add(FailureKey::from(a), f64::from(i), vec![], 1);
    }
    let per_key = f.approx_bytes() / 100_000;
    eprintln!("approx bytes per tracked FailureKey: {per_key}");
    assert!(per_key <= 120, "{per_key} B per key");
}

/// Resident set size of this process in bytes (Linux `/proc/self/status` `VmRSS`).
fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The daemon's memory budget: 1 000 000 tracked IPv4 keys, one failure each (below
/// maxretry), each keeping its ~100-byte matched line, through `JailState::on_failure` as
/// the daemon calls it. Prints the RSS delta per key and the cost of a cleanup pass and of
/// cap evictions under a flood of new keys. Run it alone, in release:
/// `cargo test --release -p banhammer-core -- --ignored --nocapture memory_rss_1m_keys`
#[test]
#[ignore = "1M keys, ~250 MB: run by hand in release"]
fn memory_rss_1m_keys() {
    use std::fmt::Write as _;
    use std::time::Instant;
    const N: u32 = 1_000_000;
    let base = 1_700_000_000.0;
    let mut j = JailState::new(JailConfig {
        tracker: TrackerConfig {
            maxretry: 3,
            findtime: 600.0,
            maxmatches: 3,
            max_tracked: N as usize,
        },
        ignore: IgnoreList::new(),
        ignoreself: false,
        time_mode: TimeMode::Replay,
        ..JailConfig::default()
    });
    let mut buf = String::new();
    let line_for = |buf: &mut String, a: std::net::Ipv4Addr| {
        buf.clear();
        write!(
            buf,
            "Nov 14 22:13:20 web1 sshd[4242]: Failed password for invalid user admin from {a} port 22 ssh2"
        )
        .unwrap();
        // Exact capacity, as a line copied out of the read buffer.
        buf.as_str().to_owned()
    };
    let before = rss_bytes();
    let started = Instant::now();
    let mut line_bytes = 0usize;
    for i in 0..N {
        let a = std::net::Ipv4Addr::from(0x0b00_0000 + i);
        // 1M keys over 500 s of log time: all stay within findtime.
        let t = base + f64::from(i) / 2000.0;
        let line = line_for(&mut buf, a);
        line_bytes += line.len();
        j.set_now(t);
        assert_eq!(
            j.on_failure(FailureKey::from(IpAddr::from(a)), t, vec![line], None),
            Decision::None
        );
    }
    let fill = started.elapsed();
    let after = rss_bytes();
    assert_eq!(j.stats().currently_failed, N as usize);
    let per_key = (after.saturating_sub(before)) / N as usize;
    eprintln!(
        "1M keys: RSS +{} MB = {per_key} B per tracked key (avg line {} B); fill {fill:?}",
        (after - before) >> 20,
        line_bytes / N as usize,
    );
    eprintln!(
        "approx_bytes: {} B per key",
        j.tracker().approx_bytes() / N as usize
    );

    // The 5 s service tick with 1M live keys: nothing old enough (skipped), then the
    // oldest key only (a full pass).
    let now = base + 500.0;
    let t0 = Instant::now();
    let dropped = j.tracker_mut().cleanup(now + 99.0);
    eprintln!("cleanup dropping {dropped}: {:?}", t0.elapsed());
    let t0 = Instant::now();
    let dropped = j.tracker_mut().cleanup(base + 600.0);
    eprintln!("cleanup dropping {dropped}: {:?}", t0.elapsed());
    let line = line_for(&mut buf, std::net::Ipv4Addr::new(11, 0, 0, 0));
    j.tracker_mut().add(key("11.0.0.0"), base, vec![line], 1);
    // A flood of 100 000 new keys at the cap: each evicts the oldest.
    let t0 = Instant::now();
    for i in 0..100_000u32 {
        let a = std::net::Ipv4Addr::from(0x0c00_0000 + i);
        let t = now + f64::from(i) / 1000.0;
        let line = line_for(&mut buf, a);
        j.tracker_mut()
            .add(FailureKey::from(IpAddr::from(a)), t, vec![line], 1);
    }
    let flood = t0.elapsed();
    let s = j.stats();
    eprintln!(
        "flood of 100k new keys at the cap: {flood:?} ({} ns per key), evicted {}",
        flood.as_nanos() / 100_000,
        s.evicted
    );
    assert_eq!(s.currently_failed, N as usize);
    // Cleanup dropping most keys, then all: the time, and the memory given back.
    let t0 = Instant::now();
    let dropped = j.tracker_mut().cleanup(base + 1050.0);
    let rss_full = rss_bytes();
    eprintln!(
        "cleanup dropping {dropped}: {:?}; RSS after {} MB (before the keys {} MB)",
        t0.elapsed(),
        rss_full >> 20,
        before >> 20
    );
    let t0 = Instant::now();
    let dropped = j.tracker_mut().cleanup(base + 1e6);
    eprintln!(
        "cleanup dropping the other {dropped}: {:?}; RSS after {} MB",
        t0.elapsed(),
        rss_bytes() >> 20
    );
}

// ---------------------------------------------------------------- bantime

fn policy(f: impl FnOnce(&mut BanTimeConfig)) -> BanTimePolicy {
    let mut c = BanTimeConfig {
        bantime: 600.0,
        increment: true,
        maxtime: Some(86400.0),
        ..BanTimeConfig::default()
    };
    f(&mut c);
    BanTimePolicy::new(&c).unwrap()
}

fn seq(p: &BanTimePolicy) -> Vec<i64> {
    (1..=10).map(|i| p.calc(i, 0.0) as i64).collect()
}

#[test]
fn bantime_default_formula() {
    // observertestcase testDefault.
    let p = policy(|_| {});
    assert_eq!(
        seq(&p),
        [1200, 2400, 4800, 9600, 19200, 38400, 76800, 86400, 86400, 86400]
    );
    let p = policy(|c| c.maxtime = Some(30.0 * 86400.0));
    assert_eq!(
        seq(&p),
        [1200, 2400, 4800, 9600, 19200, 38400, 76800, 153600, 307200, 614400]
    );
    let p = policy(|c| c.factor = Some("2".into()));
    assert_eq!(
        seq(&p),
        [2400, 4800, 9600, 19200, 38400, 76800, 86400, 86400, 86400, 86400]
    );
    let p = policy(|c| c.factor = Some("1.33".into()));
    assert_eq!(
        seq(&p),
        [1596, 3192, 6384, 12768, 25536, 51072, 86400, 86400, 86400, 86400]
    );
    let p = policy(|c| c.maxtime = Some(43200.0));
    assert_eq!(
        seq(&p),
        [1200, 2400, 4800, 9600, 19200, 38400, 43200, 43200, 43200, 43200]
    );
    // The formula string written out is the same as the default.
    let p = policy(|c| c.formula = Some(DEFAULT_FORMULA.replace(' ', "  ")));
    assert_eq!(seq(&p)[0], 1200);
    // Count beyond 20 stops doubling.
    let p = policy(|c| c.maxtime = None);
    assert_eq!(p.calc(25, 0.0), p.calc(20, 0.0));
}

#[test]
fn bantime_multipliers() {
    // testMultipliers: growth stops at the last multiplier.
    let p = policy(|c| {
        c.maxtime = Some(30.0 * 86400.0);
        c.multipliers = Some("1 2 4 8 16 32 64 128 256".into());
    });
    assert_eq!(
        seq(&p),
        [1200, 2400, 4800, 9600, 19200, 38400, 76800, 153600, 153600, 153600]
    );
    // observertestcase testBanTimeIncr: bantime 10, 1 2 4 … 2048.
    let p = policy(|c| {
        c.bantime = 10.0;
        c.maxtime = None;
        c.multipliers = Some("1 2 4 8 16 32 64 128 256 512 1024 2048".into());
    });
    assert_eq!(p.ban_length(None, 0.0).duration, Some(10.0));
    let mut last = 10.0;
    for count in 1..=11 {
        let h = BanHistory {
            ban_count: count,
            time_of_ban: 0.0,
            ban_time: last,
        };
        let l = p.ban_length(Some(&h), 0.0);
        assert_eq!(l.duration, Some(last * 2.0), "count {count}");
        assert_eq!(l.ban_count, count + 1);
        last *= 2.0;
    }
    let h = BanHistory {
        ban_count: 12,
        time_of_ban: 0.0,
        ban_time: last,
    };
    assert_eq!(p.ban_length(Some(&h), 0.0).duration, Some(last));
    assert!(BanTimePolicy::new(&BanTimeConfig {
        multipliers: Some("1 x".into()),
        ..BanTimeConfig::default()
    })
    .is_err());
}

#[test]
fn bantime_exp_formula() {
    // observertestcase testFormula.
    let p = policy(|c| {
        c.formula = Some(EXP_FORMULA.into());
        c.factor = Some("2.0 / 2.885385".into());
    });
    assert_eq!(
        seq(&p),
        [1200, 2400, 4800, 9600, 19200, 38400, 76800, 86400, 86400, 86400]
    );
    let p = policy(|c| {
        c.formula = Some(EXP_FORMULA.into());
        c.factor = Some("1".into());
    });
    assert_eq!(
        seq(&p),
        [1630, 4433, 12051, 32758, 86400, 86400, 86400, 86400, 86400, 86400]
    );
}

#[test]
fn bantime_rejects_other_formulas_by_name() {
    let err = BanTimePolicy::new(&BanTimeConfig {
        formula: Some("ban.Time * 3".into()),
        ..BanTimeConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("\"ban.Time * 3\""), "{err}");
    // With multipliers the formula is not used, as in fail2ban.
    assert!(BanTimePolicy::new(&BanTimeConfig {
        formula: Some("ban.Time * 3".into()),
        multipliers: Some("1 2".into()),
        ..BanTimeConfig::default()
    })
    .is_ok());
    assert!(BanTimePolicy::new(&BanTimeConfig {
        factor: Some("__import__('os')".into()),
        ..BanTimeConfig::default()
    })
    .is_err());
}

#[test]
fn bantime_rndtime_maxtime_and_permanent() {
    let p = policy(|c| c.rndtime = Some(300.0));
    assert_eq!(p.calc(1, 0.0), 1200.0);
    assert_eq!(p.calc(1, 0.5), 1350.0);
    // maxtime caps before the random part is added.
    assert_eq!(p.calc(10, 1.0), 86400.0 + 300.0);
    let h = BanHistory {
        ban_count: 3,
        time_of_ban: 0.0,
        ban_time: 600.0,
    };
    // Permanent never increments (but counts).
    let perm = policy(|c| c.bantime = -1.0);
    assert_eq!(perm.ban_length(Some(&h), 0.0).duration, None);
    assert_eq!(perm.ban_length(Some(&h), 0.0).ban_count, 4);
    // Increment off: history ignored.
    let off = policy(|c| c.increment = false);
    let l = off.ban_length(Some(&h), 0.0);
    assert_eq!((l.duration, l.ban_count), (Some(600.0), 1));
    // 3rd ban (2 before) = 2400 (compat §4.3 example).
    let h2 = BanHistory { ban_count: 2, ..h };
    assert_eq!(
        policy(|_| {}).ban_length(Some(&h2), 0.0).duration,
        Some(2400.0)
    );
    assert_eq!(policy(|_| {}).max_ban_time(), Some(86400.0));
}

#[test]
fn preseed_retry_for_known_offenders() {
    let p = policy(|_| {});
    let h = |ban_count| BanHistory {
        ban_count,
        time_of_ban: 100.0,
        ban_time: 600.0,
    };
    let got: Vec<u32> = (1..=5)
        .map(|c| p.preseed_retry(Some(&h(c)), 200.0, 100))
        .collect();
    assert_eq!(got, [2, 3, 5, 9, 17]);
    assert_eq!(p.preseed_retry(Some(&h(30)), 200.0, 5), 5);
    assert_eq!(p.preseed_retry(None, 200.0, 5), 1);
    // A failure not newer than the last ban (re-read after restart) is not boosted.
    assert_eq!(p.preseed_retry(Some(&h(3)), 100.0, 5), 1);
    assert_eq!(
        policy(|c| c.increment = false).preseed_retry(Some(&h(3)), 200.0, 5),
        1
    );
}

// ---------------------------------------------------------------- addresses

#[test]
fn ipnet_forms() {
    let cases: &[(&str, &str)] = &[
        ("1.2.3.4", "1.2.3.4"),
        ("[1.2.3.4]", "1.2.3.4"),
        ("1.2.3.0/24", "1.2.3.0/24"),
        ("127.0.0.1/8", "127.0.0.0/8"),
        ("10.0.0.1/255.0.0.0", "10.0.0.0/8"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("2001:db8:1:2::5/64", "2001:db8:1:2::/64"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.0/120", "192.0.2.0/24"),
        ("1.2.3.4/32", "1.2.3.4"),
        ("0.0.0.0/0", "0.0.0.0/0"),
    ];
    for (text, want) in cases {
        let n: IpNet = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(n.to_string(), *want, "{text}");
    }
    for bad in [
        "1.2.3.4/33",
        "1.2.3.4/abc",
        "10.0.0.1/255.0.255.0",
        "::1/129",
        "",
        "x/8",
    ] {
        assert!(bad.parse::<IpNet>().is_err(), "{bad:?} should fail");
    }
    let n: IpNet = "127.0.0.1/8".parse().unwrap();
    assert!(n.contains(ip("127.255.0.1")));
    assert!(n.contains(ip("::ffff:127.0.0.9")));
    assert!(!n.contains(ip("128.0.0.1")));
    assert!(!n.contains(ip("::1")));
    assert_eq!(
        IpNet::containing(ip("192.0.2.77"), 24, 64).to_string(),
        "192.0.2.0/24"
    );
    assert_eq!(
        IpNet::containing(ip("2001:db8:1:2:3:4:5:6"), 24, 64).to_string(),
        "2001:db8:1:2::/64"
    );
}

#[test]
fn ignoreip_forms() {
    let list =
        IgnoreList::parse("127.0.0.1/8 ::1, 10.0.0.0/8\n192.168.1.5 2001:db8::/32 example.com")
            .unwrap();
    let yes = [
        "127.0.0.1",
        "127.1.2.3",
        "::1",
        "10.20.30.40",
        "::ffff:10.1.2.3",
        "192.168.1.5",
        "2001:db8:abcd::1",
    ];
    for a in yes {
        assert_eq!(list.matches(ip(a), false), Some(IgnoreSource::Ip), "{a}");
    }
    let no = [
        "128.0.0.1",
        "::2",
        "11.0.0.1",
        "192.168.1.6",
        "2001:db9::1",
        "0.0.0.0",
    ];
    for a in no {
        assert_eq!(list.matches(ip(a), false), None, "{a}");
    }
    let shown: Vec<String> = list.entries().iter().map(|e| e.to_string()).collect();
    assert_eq!(
        shown,
        [
            "127.0.0.0/8",
            "::1",
            "10.0.0.0/8",
            "192.168.1.5",
            "2001:db8::/32",
            "example.com"
        ]
    );
    assert_eq!(list.names().collect::<Vec<_>>(), ["example.com"]);
    assert!(IgnoreList::parse("1.2.3.4/40").is_err());
    assert!(IgnoreList::parse("1.2.3").is_err());
}

/// Sibling of "non-canonical addresses become bans": an `ignoreip` entry that is neither a
/// canonical address/network nor a strict host name is refused, rather than kept as a name
/// that a resolver would read as another address (`127.1` → 127.0.0.1) or never resolve.
#[test]
fn ignoreip_refuses_non_canonical_entries() {
    for bad in [
        "127.1",
        "001.002.003.013",
        "1.2.3.256",
        "\u{661}.2.3.4",
        "0x7f.0.0.1",
        "0x7f000001",
        "10.0.0.0/08",
        "10.0.0.0/+8",
        "010.0.0.0/8",
        "my_host",
        "fe80::1%eth0",
    ] {
        let err = IgnoreList::parse(bad).expect_err(bad);
        assert!(err.to_string().contains(bad), "{bad:?}: {err}");
    }
    let list = IgnoreList::parse("gw.example localhost 10.0.0.0/8").unwrap();
    assert_eq!(
        list.names().collect::<Vec<_>>(),
        ["gw.example", "localhost"]
    );
}

/// A network key (a `<SUBNET>` ban, a client's `ban 0.0.0.0/0`) is ignored when banning it
/// would ban an ignored address: inside an ignored network, or holding an ignored address.
#[test]
fn a_network_that_meets_an_ignored_address_is_ignored() {
    let mut list = IgnoreList::parse("192.0.2.7 10.0.0.0/8 2001:db8::/32 gw.example").unwrap();
    list.set_resolved("gw.example", [ip("203.0.113.9")]);
    list.set_self_addrs([ip("198.51.100.1")]);
    let net = |s: &str| s.parse::<IpNet>().unwrap();
    for (n, want) in [
        ("0.0.0.0/0", Some(IgnoreSource::Ip)),
        ("192.0.2.0/24", Some(IgnoreSource::Ip)),
        ("10.1.0.0/16", Some(IgnoreSource::Ip)),
        ("8.0.0.0/6", Some(IgnoreSource::Ip)),
        ("203.0.113.0/24", Some(IgnoreSource::Dns)),
        ("198.51.100.0/24", None),
        ("192.0.3.0/24", None),
        ("11.0.0.0/8", None),
        ("2001:db8:1::/48", Some(IgnoreSource::Ip)),
        ("2000::/3", Some(IgnoreSource::Ip)),
        ("2001:db9::/32", None),
        ("192.0.2.7/32", Some(IgnoreSource::Ip)),
    ] {
        assert_eq!(list.matches_net(net(n), false), want, "{n}");
    }
    assert_eq!(
        list.matches_net(net("198.51.100.0/24"), true),
        Some(IgnoreSource::SelfAddr)
    );
    assert_eq!(IgnoreList::new().matches_net(net("0.0.0.0/0"), false), None);
    let j = JailState::new(JailConfig {
        ignore: IgnoreList::parse("192.0.2.7").unwrap(),
        ..JailConfig::default()
    });
    assert!(j.is_ignored(&key("192.0.2.0/24")).is_some());
    assert!(j.is_ignored(&key("192.0.3.0/24")).is_none());
}

#[test]
fn ignoreip_dns_self_duplicates_and_removal() {
    let mut list = IgnoreList::parse("example.com 10.0.0.0/8").unwrap();
    assert_eq!(list.matches(ip("93.184.216.34"), false), None);
    list.set_resolved("example.com", [ip("93.184.216.34"), ip("::ffff:1.1.1.1")]);
    list.set_resolved("not-listed.org", [ip("8.8.8.8")]);
    assert_eq!(
        list.matches(ip("93.184.216.34"), false),
        Some(IgnoreSource::Dns)
    );
    assert_eq!(list.matches(ip("1.1.1.1"), false), Some(IgnoreSource::Dns));
    assert_eq!(list.matches(ip("8.8.8.8"), false), None);
    list.set_self_addrs([ip("203.0.113.1")]);
    assert_eq!(
        list.matches(ip("203.0.113.1"), true),
        Some(IgnoreSource::SelfAddr)
    );
    assert_eq!(list.matches(ip("203.0.113.1"), false), None);
    assert!(!list.add("10.0.0.0/8").unwrap(), "duplicate");
    assert!(
        !list.add("10.1.0.0/8").unwrap(),
        "same network written differently"
    );
    assert!(list.remove("10.0.0.0/8"));
    assert!(!list.contains(ip("10.1.1.1")));
    assert!(list.remove("example.com"));
    assert!(!list.contains(ip("93.184.216.34")));
    list.add("10.0.0.0/8").unwrap();
    list.clear();
    assert!(list.entries().is_empty());
    assert_eq!(
        list.matches(ip("203.0.113.1"), true),
        Some(IgnoreSource::SelfAddr)
    );
}

#[test]
fn ignoreip_nested_networks() {
    // A host inside a network added before or after it.
    let mut list = IgnoreList::new();
    list.add("10.1.2.3").unwrap();
    list.add("10.0.0.0/8").unwrap();
    list.add("192.168.0.0/16").unwrap();
    list.add("192.168.5.5").unwrap();
    for a in ["10.1.2.3", "10.200.0.1", "192.168.5.5", "192.168.77.1"] {
        assert!(list.contains(ip(a)), "{a}");
    }
}

// ---------------------------------------------------------------- jail state

fn jail(maxretry: u32, policy: BanTimePolicy) -> JailState {
    JailState::new(JailConfig {
        tracker: TrackerConfig {
            maxretry,
            findtime: 600.0,
            maxmatches: 3,
            max_tracked: 1000,
        },
        bantime: policy,
        ignore: IgnoreList::parse("127.0.0.1/8 ::1").unwrap(),
        ignoreself: true,
        time_mode: TimeMode::Replay,
        rng_seed: 1,
    })
}

fn fail(j: &mut JailState, k: &str, t: f64) -> Decision {
    j.set_now(t);
    j.on_failure(key(k), t, vec![format!("line {t}")], None)
}

#[test]
fn state_bans_at_maxretry() {
    let mut j = jail(3, BanTimePolicy::fixed(600.0));
    assert_eq!(fail(&mut j, "192.0.2.1", 100.0), Decision::None);
    assert_eq!(fail(&mut j, "192.0.2.1", 110.0), Decision::None);
    let Decision::Ban(b) = fail(&mut j, "192.0.2.1", 120.0) else {
        panic!("no ban")
    };
    assert_eq!(b.key, key("192.0.2.1"));
    assert_eq!(b.time_of_ban, 120.0);
    assert_eq!(b.duration, Some(600.0));
    assert_eq!(b.end(), Some(720.0));
    assert_eq!((b.ban_count, b.failures), (1, 3));
    assert_eq!(b.matches, ["line 100", "line 110", "line 120"]);
    assert!(!b.restored);
    let s = j.stats();
    assert_eq!(
        (
            s.currently_failed,
            s.total_failed,
            s.currently_banned,
            s.total_banned
        ),
        (0, 3, 1, 1)
    );
    assert!(j.is_ip_banned(ip("::ffff:192.0.2.1")));
    assert_eq!(j.next_expiry(), Some(720.0));
}

#[test]
fn state_ignore_checks_first() {
    let mut j = jail(1, BanTimePolicy::fixed(600.0));
    j.ignore_mut().set_self_addrs([ip("198.51.100.9")]);
    assert_eq!(
        fail(&mut j, "127.0.0.5", 1.0),
        Decision::Ignored(IgnoreSource::Ip)
    );
    assert_eq!(
        fail(&mut j, "::1", 1.0),
        Decision::Ignored(IgnoreSource::Ip)
    );
    assert_eq!(
        fail(&mut j, "::ffff:127.0.0.1", 1.0),
        Decision::Ignored(IgnoreSource::Ip)
    );
    assert_eq!(
        fail(&mut j, "198.51.100.9", 1.0),
        Decision::Ignored(IgnoreSource::SelfAddr)
    );
    // Non-address ids are never ignored by ignoreip (nor banned: see below).
    assert_eq!(
        fail(&mut j, "someuser", 1.0),
        Decision::Dropped(DropReason::NotAnAddress)
    );
    assert!(matches!(fail(&mut j, "192.0.2.1", 1.0), Decision::Ban(_)));
    assert_eq!(
        j.stats().total_failed,
        1,
        "ignored failures are not counted"
    );
}

/// The finding at the jail state: a non-address key (a ban stored by an older version, a
/// caller's mistake) is never counted nor banned, by failure, by command or by restore, so
/// no action is ever handed `001.002.003.013` as `<ip>`.
#[test]
fn non_address_keys_never_become_bans() {
    let mut j = jail(1, BanTimePolicy::fixed(600.0));
    for text in ["001.002.003.013", "6.6", "1.2.3.256", "someuser"] {
        let k = FailureKey::Id(text.into());
        let dropped = Decision::Dropped(DropReason::NotAnAddress);
        assert_eq!(
            j.on_failure(k.clone(), 1.0, vec![], None),
            dropped,
            "{text}"
        );
        assert_eq!(j.ban(k.clone(), 1.0, None), dropped, "{text}");
        assert_eq!(
            j.restore_ban(k.clone(), 1.0, Some(600.0), 1, 1.0),
            dropped,
            "{text}"
        );
        assert!(!j.is_banned(&k));
    }
    assert_eq!(j.stats().total_failed, 0);
    assert_eq!(j.banned().count(), 0);
}

#[test]
fn state_time_modes() {
    let mut j = jail(100, BanTimePolicy::fixed(600.0));
    j.set_time_mode(TimeMode::Operation);
    j.set_now(10_000.0);
    let k = key("192.0.2.9");
    // Future → now; 30 s late kept; 61 s late → now.
    j.on_failure(k.clone(), 10_030.0, vec![], None);
    assert_eq!(j.tracker().get(&k).unwrap().last_time, 10_000.0);
    j.on_failure(key("192.0.2.10"), 9_970.0, vec![], None);
    assert_eq!(
        j.tracker().get(&key("192.0.2.10")).unwrap().last_time,
        9_970.0
    );
    j.on_failure(key("192.0.2.11"), 9_900.0, vec![], None);
    assert_eq!(
        j.tracker().get(&key("192.0.2.11")).unwrap().last_time,
        10_000.0
    );
    // Initial scan: older than findtime dropped, future clamped.
    j.set_time_mode(TimeMode::Initial);
    assert_eq!(
        j.on_failure(key("192.0.2.12"), 9_000.0, vec![], None),
        Decision::Dropped(DropReason::TooOld)
    );
    j.on_failure(key("192.0.2.13"), 9_500.0, vec![], None);
    assert_eq!(
        j.tracker().get(&key("192.0.2.13")).unwrap().last_time,
        9_500.0
    );
    j.on_failure(key("192.0.2.14"), 20_000.0, vec![], None);
    assert_eq!(
        j.tracker().get(&key("192.0.2.14")).unwrap().last_time,
        10_000.0
    );
}

#[test]
fn state_expiry_order_and_permanent() {
    let mut j = jail(1, BanTimePolicy::fixed(600.0));
    for (k, t) in [
        ("192.0.2.1", 300.0),
        ("192.0.2.2", 100.0),
        ("192.0.2.3", 200.0),
    ] {
        assert!(matches!(fail(&mut j, k, t), Decision::Ban(_)));
    }
    j.set_policy(BanTimePolicy::fixed(-1.0));
    let Decision::Ban(p) = fail(&mut j, "192.0.2.4", 150.0) else {
        panic!()
    };
    assert_eq!(p.duration, None);
    assert_eq!(j.next_expiry(), Some(700.0));
    assert!(j.expire(699.0).is_empty());
    let un: Vec<String> = j
        .expire(800.0)
        .iter()
        .map(|u| u.ban.key.to_string())
        .collect();
    assert_eq!(un, ["192.0.2.2", "192.0.2.3"]);
    assert_eq!(j.next_expiry(), Some(900.0));
    let un = j.expire(1e12);
    assert_eq!(un.len(), 1);
    assert_eq!(un[0].reason, UnbanReason::Expired);
    assert_eq!(j.next_expiry(), None);
    assert!(j.is_banned(&key("192.0.2.4")), "permanent stays");
    assert_eq!(j.stats().currently_banned, 1);
    assert_eq!(j.stats().total_banned, 4);
}

#[test]
fn state_manual_ban_unban() {
    let mut j = jail(3, BanTimePolicy::fixed(600.0));
    let Decision::Ban(b) = j.ban(key("203.0.113.5"), 1000.0, None) else {
        panic!()
    };
    assert_eq!(
        (b.time_of_ban, b.duration, b.ban_count),
        (1000.0, Some(600.0), 1)
    );
    j.ban(key("203.0.113.6"), 1000.0, None);
    j.ban(key("203.0.113.7"), 900.0, None);
    assert_eq!(j.banned().count(), 3);
    let u = j.unban(&key("203.0.113.5")).unwrap();
    assert_eq!(u.reason, UnbanReason::Manual);
    assert!(j.unban(&key("203.0.113.5")).is_none());
    let all: Vec<String> = j
        .unban_all()
        .iter()
        .map(|u| u.ban.key.to_string())
        .collect();
    assert_eq!(all, ["203.0.113.7", "203.0.113.6"]);
    assert_eq!(j.next_expiry(), None);
    assert_eq!(j.stats().currently_banned, 0);
    assert_eq!(j.stats().total_banned, 3);
}

#[test]
fn state_prolong_like_banmanager() {
    // banmanagertestcase testAddDuplicateWithTime / testUnban.
    let start = 1167605999.0;
    let mut j = jail(3, BanTimePolicy::fixed(600.0));
    j.ban(key("193.168.0.128"), start, None);
    // Same start, same bantime: nothing.
    assert_eq!(
        j.ban(key("193.168.0.128"), start, None),
        Decision::Dropped(DropReason::AlreadyBanned)
    );
    // Newer start: end moves, start stays, duration grows by the difference.
    let Decision::Prolong(b) = j.ban(key("193.168.0.128"), start + 600.0, None) else {
        panic!()
    };
    assert_eq!((b.time_of_ban, b.duration), (start, Some(1200.0)));
    assert!(j.expire(start + 601.0).is_empty());
    assert_eq!(j.expire(start + 1200.0).len(), 1);
    // Prolong to permanent.
    j.ban(key("193.168.0.128"), start, None);
    j.set_policy(BanTimePolicy::fixed(-1.0));
    let Decision::Prolong(b) = j.ban(key("193.168.0.128"), start, None) else {
        panic!()
    };
    assert_eq!(b.duration, None);
    assert_eq!(j.next_expiry(), None);
    // And permanent stays permanent.
    j.set_policy(BanTimePolicy::fixed(1000.0));
    assert_eq!(
        j.ban(key("193.168.0.128"), start + 5.0, None),
        Decision::Dropped(DropReason::AlreadyBanned)
    );
}

#[test]
fn state_known_offender_increment() {
    let p = BanTimePolicy::new(&BanTimeConfig {
        bantime: 600.0,
        increment: true,
        ..BanTimeConfig::default()
    })
    .unwrap();
    let mut j = jail(5, p);
    let h = BanHistory {
        ban_count: 2,
        time_of_ban: 50.0,
        ban_time: 1200.0,
    };
    // 2 bans before: each failure counts 3 (1 + pre-seed 2): 3, then 6 ≥ 5.
    j.set_now(100.0);
    assert_eq!(
        j.on_failure(key("192.0.2.50"), 100.0, vec![], Some(h)),
        Decision::None
    );
    assert_eq!(j.tracker().retry(&key("192.0.2.50")), Some(3));
    let Decision::Ban(b) = j.on_failure(key("192.0.2.50"), 101.0, vec![], Some(h)) else {
        panic!()
    };
    assert_eq!((b.duration, b.ban_count, b.failures), (Some(2400.0), 3, 2));
    // 4 bans before with maxretry 5: banned on the first failure (9 capped to 5).
    let h4 = BanHistory { ban_count: 4, ..h };
    assert!(matches!(
        j.on_failure(key("192.0.2.51"), 102.0, vec![], Some(h4)),
        Decision::Ban(Ban {
            duration: Some(9600.0),
            ban_count: 5,
            ..
        })
    ));
    // A failure older than the last ban is not boosted.
    let late = BanHistory {
        time_of_ban: 500.0,
        ..h
    };
    assert_eq!(
        j.on_failure(key("192.0.2.52"), 103.0, vec![], Some(late)),
        Decision::None
    );
    assert_eq!(j.tracker().retry(&key("192.0.2.52")), Some(1));
}

#[test]
fn state_rndtime_is_deterministic() {
    let p = BanTimePolicy::new(&BanTimeConfig {
        increment: true,
        rndtime: Some(300.0),
        ..BanTimeConfig::default()
    })
    .unwrap();
    let h = BanHistory {
        ban_count: 1,
        time_of_ban: 0.0,
        ban_time: 600.0,
    };
    let run = || {
        let mut j = jail(1, p.clone());
        j.set_now(10.0);
        match j.on_failure(key("192.0.2.60"), 10.0, vec![], Some(h)) {
            Decision::Ban(b) => b.duration.unwrap(),
            other => panic!("{other:?}"),
        }
    };
    let d = run();
    assert_eq!(d, run());
    assert!((1200.0..1500.0).contains(&d), "{d}");
}

#[test]
fn state_expired_ban_and_restore() {
    let mut j = jail(1, BanTimePolicy::fixed(600.0));
    // A ban whose end is already past at "now" is not installed.
    j.set_now(10_000.0);
    j.set_time_mode(TimeMode::Replay);
    assert_eq!(
        j.on_failure(key("192.0.2.70"), 100.0, vec![], None),
        Decision::Dropped(DropReason::ExpiredBan)
    );
    let Decision::Ban(b) = j.restore_ban(key("192.0.2.71"), 9_800.0, Some(600.0), 2, 10_000.0)
    else {
        panic!()
    };
    assert!(b.restored);
    assert_eq!(j.next_expiry(), Some(10_400.0));
    assert_eq!(
        j.restore_ban(key("127.0.0.1"), 9_800.0, None, 1, 10_000.0),
        Decision::Ignored(IgnoreSource::Ip)
    );
}

#[test]
fn state_cleans_tracker_periodically() {
    let mut j = jail(100, BanTimePolicy::fixed(600.0));
    fail(&mut j, "192.0.2.80", 0.0);
    fail(&mut j, "192.0.2.81", 700.0);
    assert_eq!(
        j.stats().currently_failed,
        1,
        "192.0.2.80 is older than findtime"
    );
    assert_eq!(j.stats().total_failed, 2);
}

#[test]
fn failure_key_parse() {
    assert_eq!(key("::ffff:1.2.3.4"), FailureKey::Ip(ip("1.2.3.4")));
    assert!(matches!(key("10.0.0.0/8"), FailureKey::Net(_)));
    assert_eq!(key("host.example"), FailureKey::Id("host.example".into()));
    assert_eq!(
        key("001.002.003.013"),
        FailureKey::Id("001.002.003.013".into())
    );
    assert_eq!(key("6.6"), FailureKey::Id("6.6".into()));
    assert_eq!(key("10.0.0.0/8").to_string(), "10.0.0.0/8");
}

// ---------------------------------------------------------------- properties

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        // A narrow IPv4 range so networks and addresses collide often.
        (0u32..4096).prop_map(|i| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 | (i << 12)))),
        any::<u32>().prop_map(|i| IpAddr::from(std::net::Ipv4Addr::from(i))),
        any::<u128>().prop_map(|i| IpAddr::from(std::net::Ipv6Addr::from(i))),
        (0u32..4096).prop_map(|i| {
            IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 | (i << 12)).to_ipv6_mapped())
        }),
    ]
}

/// The model's copy of fail2ban's `adjustTime` (findtime 600).
fn model_adjust(e: &mut FailTicket<u16>, t: f64) {
    if t > e.last_time {
        if e.first_time < t - 600.0 {
            e.retry = py_round(f64::from(e.retry) / (t - e.first_time) * 600.0) as u32;
            e.first_time = t - 600.0;
        }
        e.last_time = t;
    }
}

proptest! {
    #[test]
    fn trie_matches_linear_scan(
        nets in proptest::collection::vec((arb_ip(), 0u8..=128), 0..20),
        probes in proptest::collection::vec(arb_ip(), 1..50),
    ) {
        let mut list = IgnoreList::new();
        let mut kept = Vec::new();
        for (a, p) in nets {
            let width = if normalize_ip(a).is_ipv4() { 32 } else { 128 };
            if let Ok(n) = IpNet::new(a, p % (width + 1)) {
                list.add(&n.to_string()).unwrap();
                kept.push(n);
            }
        }
        for probe in probes {
            let linear = kept.iter().any(|n| n.contains(probe));
            prop_assert_eq!(list.contains(probe), linear, "{}", probe);
        }
    }

    #[test]
    fn tracker_matches_a_plain_model(
        cap in prop_oneof![1usize..6, Just(10_000usize)],
        ops in proptest::collection::vec((0u8..6, 0u16..300, 0u32..40, 0usize..4), 0..400),
    ) {
        // The index (probing, backward-shift removal, slot moves) and batch eviction
        // against a HashMap model of fail2ban's rules. Each step's time is distinct
        // (`coarse · 1000 + step`) so the oldest entry to evict is never a tie.
        let mut t: FailTracker<u16> = FailTracker::new(TrackerConfig {
            maxretry: 6,
            findtime: 600.0,
            maxmatches: 2,
            max_tracked: cap,
        });
        let mut model: std::collections::HashMap<u16, FailTicket<u16>> = Default::default();
        for (step, (op, k, coarse, nlines)) in ops.into_iter().enumerate() {
            let time = f64::from(coarse) * 1000.0 + step as f64;
            match op {
                0..=2 => {
                    let lines: Vec<String> = (0..nlines).map(|l| format!("{step}.{l}")).collect();
                    let count = (op as u32) + 1;
                    let got = t.add(k, time, lines.clone(), count);
                    let e = match model.remove(&k) {
                        Some(mut e) => {
                            model_adjust(&mut e, time);
                            e.retry = e.retry.saturating_add(count);
                            e.failures += 1;
                            e
                        }
                        None => {
                            if count < 6 && model.len() >= cap {
                                let oldest = model.values()
                                    .min_by(|a, b| a.last_time.total_cmp(&b.last_time))
                                    .map(|e| e.key).unwrap();
                                model.remove(&oldest);
                            }
                            FailTicket { key: k, retry: count, failures: 1, first_time: time,
                                last_time: time, matches: Vec::new() }
                        }
                    };
                    let mut e = e;
                    e.matches.extend(lines);
                    let excess = e.matches.len().saturating_sub(2);
                    e.matches.drain(..excess);
                    if e.retry >= 6 {
                        prop_assert_eq!(got, Added::Reached(e));
                    } else {
                        prop_assert_eq!(got, Added::Tracking { retry: e.retry });
                        model.insert(k, e);
                    }
                }
                3 => {
                    let got = t.boost(&k, time, 2);
                    match model.remove(&k) {
                        Some(mut e) => {
                            model_adjust(&mut e, time);
                            e.retry += 2;
                            if e.retry >= 6 {
                                prop_assert_eq!(got, Some(Added::Reached(e)));
                            } else {
                                prop_assert_eq!(got, Some(Added::Tracking { retry: e.retry }));
                                model.insert(k, e);
                            }
                        }
                        None => prop_assert_eq!(got, None),
                    }
                }
                4 => prop_assert_eq!(t.take(&k), model.remove(&k)),
                _ => {
                    let limit = time - 600.0;
                    let before = model.len();
                    model.retain(|_, e| e.last_time > limit);
                    prop_assert_eq!(t.cleanup(time), before - model.len());
                }
            }
            prop_assert_eq!(t.len(), model.len());
        }
        for k in 0..300u16 {
            prop_assert_eq!(t.get(&k), model.get(&k).cloned(), "key {}", k);
        }
        let keys: Vec<u16> = t.keys().copied().collect();
        let mut want: Vec<&FailTicket<u16>> = model.values().collect();
        want.sort_by(|a, b| a.last_time.total_cmp(&b.last_time));
        prop_assert_eq!(keys, want.iter().map(|e| e.key).collect::<Vec<_>>());
    }

    #[test]
    fn random_failures_never_panic_and_respect_cap(
        cap in 1usize..20,
        maxretry in 1u32..6,
        events in proptest::collection::vec(
            (0u8..40, prop_oneof![0.0f64..5000.0, Just(f64::NAN), Just(f64::INFINITY), Just(-1e300)],
             0u8..4, any::<bool>()),
            0..300),
    ) {
        let mut j = JailState::new(JailConfig {
            tracker: TrackerConfig { maxretry, findtime: 600.0, maxmatches: 2, max_tracked: cap },
            bantime: BanTimePolicy::new(&BanTimeConfig {
                increment: true, maxtime: Some(1e6), rndtime: Some(10.0), ..BanTimeConfig::default()
            }).unwrap(),
            ignore: IgnoreList::parse("10.0.0.0/30").unwrap(),
            ignoreself: true,
            time_mode: TimeMode::Operation,
            rng_seed: 7,
        });
        let mut now = 0.0;
        let mut failures = 0u64;
        for (k, t, kind, hist) in events {
            let key = FailureKey::from(IpAddr::from(std::net::Ipv4Addr::new(10, 0, 0, k)));
            let history = hist.then_some(BanHistory { ban_count: u32::from(k), time_of_ban: 0.0, ban_time: 600.0 });
            match kind {
                0 | 1 => {
                    now += 1.0;
                    j.set_now(now);
                    let d = j.on_failure(key, t, vec!["l".into()], history);
                    if !matches!(d, Decision::Ignored(_) | Decision::Dropped(DropReason::TooOld)) {
                        failures += 1;
                    }
                }
                2 => { j.expire(now + t.abs().min(1e9)); }
                _ => { j.unban(&key); }
            }
            prop_assert!(j.tracker().len() <= cap);
            prop_assert_eq!(j.stats().total_failed, failures);
            if let Some(next) = j.next_expiry() {
                prop_assert!(j.banned().any(|b| b.end() == Some(next)));
            }
        }
    }
}

/// A reload that changes a jail moves its state over: bans stay with their ends (and still
/// expire on time), failures start anew, bans of addresses the new list ignores end.
#[test]
fn state_carry_over_keeps_bans_and_forgets_failures() {
    let mut j = jail(2, BanTimePolicy::fixed(600.0));
    fail(&mut j, "192.0.2.1", 100.0);
    assert!(matches!(fail(&mut j, "192.0.2.1", 110.0), Decision::Ban(_)));
    fail(&mut j, "192.0.2.2", 100.0);
    assert!(matches!(fail(&mut j, "192.0.2.2", 110.0), Decision::Ban(_)));
    fail(&mut j, "192.0.2.3", 120.0);
    let config = JailConfig {
        tracker: TrackerConfig {
            maxretry: 5,
            findtime: 600.0,
            maxmatches: 3,
            max_tracked: 1000,
        },
        bantime: BanTimePolicy::fixed(60.0),
        ignore: IgnoreList::parse("192.0.2.2").unwrap(),
        ignoreself: false,
        time_mode: TimeMode::Replay,
        rng_seed: 1,
    };
    let (mut k, ended) = j.carry_over(config);
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].ban.key, key("192.0.2.2"));
    assert!(k.is_banned(&key("192.0.2.1")));
    assert_eq!(k.stats().currently_failed, 0, "failures start anew");
    assert_eq!(k.tracker().config().maxretry, 5);
    // The carried ban still ends when it was due (110 + 600), not by the new bantime.
    assert!(k.expire(709.0).is_empty());
    assert_eq!(k.expire(710.0).len(), 1);
}
