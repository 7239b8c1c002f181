//! The syslog listener's per-sender rate limit. Owns one token bucket per sender (a uid on
//! the Unix socket, a source address on UDP) in a table of bounded size. Receives a sender
//! and the time (passed in); emits pass or drop, and when a drop should be said.
//!
//! A sender may send [`Rate::per_sec`] records a second on average, and [`Rate::burst`] at
//! once. One sender's flood then costs the others nothing but the time to drop it. The
//! table holds at most [`MAX_SENDERS`] buckets: when it is full, buckets that are full
//! again (senders that went quiet) are dropped, at most once a second; if none is, new
//! senders share one overflow bucket — so a flood from many source addresses (all of
//! 127.0.0.0/8 is loopback) is held to one sender's rate, and memory and work per datagram
//! stay bounded.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::source::throttle::Throttle;

/// Most senders with a bucket of their own.
pub const MAX_SENDERS: usize = 1024;

/// How often a full table is swept for quiet senders.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// A sender's allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Records a second, on average.
    pub per_sec: u32,
    /// Records at once (the bucket's size).
    pub burst: u32,
}

impl Rate {
    /// `N` records a second with a burst of five seconds' worth (`rate=N`).
    pub fn per_second(n: u32) -> Rate {
        Rate {
            per_sec: n,
            burst: n.saturating_mul(5),
        }
    }
}

impl Default for Rate {
    /// 200 records a second, 1000 at once: far above what a web site's failed logins make
    /// (each is a request the attacker waits for), far below a local flood.
    fn default() -> Self {
        Rate::per_second(200)
    }
}

/// What [`SenderLimits::check`] says about one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the sender's rate.
    Pass,
    /// Over it: dropped. `say` is `Some(held)` when this sender's drop should be logged now
    /// (rate-limited per sender; `held` drops were not logged since the last time).
    Drop {
        /// See above.
        say: Option<u64>,
    },
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    warn: Throttle,
}

impl Bucket {
    fn new(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(rate.burst),
            last: now,
            warn: Throttle::default(),
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * f64::from(rate.per_sec)).min(f64::from(rate.burst));
        self.last = now;
    }

    fn take(&mut self, rate: Rate, now: Instant) -> Verdict {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Verdict::Pass
        } else {
            Verdict::Drop {
                say: self.warn.admit(now),
            }
        }
    }
}

/// Token buckets per sender. See the module documentation.
#[derive(Debug)]
pub struct SenderLimits<K> {
    rate: Rate,
    buckets: HashMap<K, Bucket>,
    overflow: Bucket,
    last_sweep: Option<Instant>,
    /// Buckets looked at by sweeps, over the table's life (for the tests' work bound).
    swept: u64,
}

impl<K: Hash + Eq + Clone> SenderLimits<K> {
    /// An empty table for `rate`.
    pub fn new(rate: Rate, now: Instant) -> SenderLimits<K> {
        SenderLimits {
            rate,
            buckets: HashMap::new(),
            overflow: Bucket::new(rate, now),
            last_sweep: None,
            swept: 0,
        }
    }

    /// Takes one record of `sender` at `now`.
    pub fn check(&mut self, sender: &K, now: Instant) -> Verdict {
        let rate = self.rate;
        if let Some(b) = self.buckets.get_mut(sender) {
            return b.take(rate, now);
        }
        if self.buckets.len() >= MAX_SENDERS {
            self.sweep(now);
        }
        if self.buckets.len() >= MAX_SENDERS {
            return self.overflow.take(rate, now);
        }
        self.buckets
            .entry(sender.clone())
            .or_insert_with(|| Bucket::new(rate, now))
            .take(rate, now)
    }

    /// Drops the buckets that are full again (a new bucket would be the same), at most once
    /// per [`SWEEP_EVERY`] so that a full table of busy senders costs one pass a second.
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < SWEEP_EVERY)
        {
            return;
        }
        self.last_sweep = Some(now);
        self.swept += self.buckets.len() as u64;
        let rate = self.rate;
        self.buckets.retain(|_, b| {
            b.refill(rate, now);
            b.tokens < f64::from(rate.burst)
        });
    }

    /// Senders with a bucket of their own.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no sender has a bucket yet.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Buckets looked at by sweeps so far.
    pub fn swept(&self) -> u64 {
        self.swept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passes<K: Hash + Eq + Clone>(l: &mut SenderLimits<K>, k: &K, n: u32, now: Instant) -> u32 {
        (0..n).filter(|_| l.check(k, now) == Verdict::Pass).count() as u32
    }

    #[test]
    fn burst_then_rate_per_sender() {
        let t0 = Instant::now();
        let rate = Rate::per_second(10);
        assert_eq!(rate.burst, 50);
        let mut l = SenderLimits::new(rate, t0);
        assert_eq!(passes(&mut l, &33u32, 200, t0), 50);
        // Another sender is not held back by the first one's flood.
        assert_eq!(passes(&mut l, &0u32, 20, t0), 20);
        // One second later: ten more.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(passes(&mut l, &33u32, 200, t1), 10);
        // Refill stops at the burst.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!(passes(&mut l, &33u32, 200, t2), 50);
    }

    #[test]
    fn drops_are_said_once_per_interval_per_sender() {
        let t0 = Instant::now();
        let mut l = SenderLimits::new(Rate::per_second(1), t0);
        let said: Vec<Option<u64>> = (0..100)
            .filter_map(|_| match l.check(&7u32, t0) {
                Verdict::Drop { say } => Some(say),
                Verdict::Pass => None,
            })
            .filter(Option::is_some)
            .collect();
        assert_eq!(said, [Some(0)]);
        // Another sender's first drop is said too.
        for _ in 0..5 {
            l.check(&8u32, t0);
        }
        assert_eq!(l.check(&8u32, t0), Verdict::Drop { say: Some(0) });
    }

    /// A flood from more senders than the table holds: memory bounded, the newcomers share
    /// one bucket (so their total is one sender's rate), and sweeps cost at most one pass
    /// over the table per second, not one per datagram.
    #[test]
    fn many_senders_share_one_overflow_bucket() {
        let t0 = Instant::now();
        let rate = Rate::per_second(1);
        let mut l = SenderLimits::new(rate, t0);
        let mut passed = 0;
        for k in 0..(MAX_SENDERS as u32 * 10) {
            // Each sender sends more than its burst, so no bucket is full again.
            passed += passes(&mut l, &k, 6, t0);
        }
        assert_eq!(l.len(), MAX_SENDERS);
        // The first MAX_SENDERS got their burst each; all the others together one burst.
        assert_eq!(passed, MAX_SENDERS as u32 * rate.burst + rate.burst);
        assert!(l.swept() <= MAX_SENDERS as u64, "{}", l.swept());
        // Once they go quiet, a sweep makes room again.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(passes(&mut l, &u32::MAX, 1, later), 1);
        assert_eq!(l.len(), 1);
    }
}
