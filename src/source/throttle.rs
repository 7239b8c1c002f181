//! Repeated warnings, rate-limited. Owns a [`Throttle`]: for one kind of warning about one
//! thing (long lines in one file, denied senders on one socket), whether the next one may
//! be said now, and how many were held back since the last one said. Receives the time
//! (passed in, so tests step it); emits yes/no and the count held back.
//!
//! Why: whatever an attacker can repeat (a long line, a datagram from a stranger, a file
//! that keeps failing) must not turn into one log line each — that floods the disk and
//! hides the rest. The first one is said at once (an operator sees the problem the moment
//! it starts); after that at most one per [`Throttle::interval`], saying how many were held
//! back. The exact counts live in the sources' counters, not in the log.

use std::time::{Duration, Instant};

/// How often a repeated warning may be said by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// Whether a repeated warning may be said now. See the module documentation.
#[derive(Debug, Clone)]
pub struct Throttle {
    interval: Duration,
    last: Option<Instant>,
    held: u64,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new(DEFAULT_INTERVAL)
    }
}

impl Throttle {
    /// At most one warning per `interval` (the first at once).
    pub fn new(interval: Duration) -> Throttle {
        Throttle {
            interval,
            last: None,
            held: 0,
        }
    }

    /// The interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// One more occurrence at `now`: `Some(n)` when it may be said (with `n` occurrences
    /// held back since the last one said), `None` when it is held back.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if due {
            self.last = Some(now);
            Some(std::mem::take(&mut self.held))
        } else {
            self.held += 1;
            None
        }
    }

    /// Forgets the past: the next occurrence is said at once (the condition went away,
    /// e.g. a missing file appeared, so its return is news).
    pub fn reset(&mut self) {
        self.last = None;
        self.held = 0;
    }
}

/// `" (N more since the last report)"` for a warning said after `held` were held back.
pub fn held_note(held: u64) -> String {
    if held == 0 {
        String::new()
    } else {
        format!(" ({held} more since the last report)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_at_once_then_one_per_interval_with_the_count() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(10));
        assert_eq!(t.admit(t0), Some(0));
        for s in 1..10 {
            assert_eq!(t.admit(t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(t.admit(t0 + Duration::from_secs(10)), Some(9));
        assert_eq!(t.admit(t0 + Duration::from_secs(11)), None);
        t.reset();
        assert_eq!(t.admit(t0 + Duration::from_secs(12)), Some(0));
        assert_eq!(held_note(0), "");
        assert_eq!(held_note(3), " (3 more since the last report)");
    }

    #[test]
    fn a_flood_says_one_line_per_interval() {
        let t0 = Instant::now();
        let mut t = Throttle::default();
        // A million occurrences within one interval: one said.
        let said = (0..1_000_000u64)
            .filter(|i| t.admit(t0 + Duration::from_micros(*i)).is_some())
            .count();
        assert_eq!(said, 1);
    }
}
