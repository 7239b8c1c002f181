//! What the daemon needs from a firewall backend, and the clock it decides by. Both are
//! seams for the hermetic daemon tests: a recording firewall and a clock that only moves
//! when the test says so. The firewall is used by the effects thread only (never by the
//! main loop: every call may run a process).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use banhammer_core::jail::IpNet;

use crate::action::nftables::{NftBackend, NftChange, NftJailSpec};

/// One element of a jail's sets as the kernel has it: (jail, element, time left; `None`
/// means no timeout).
pub type KernelBan = (String, IpNet, Option<Duration>);

/// The native backend's operations, as the daemon uses them.
pub trait Firewall: Send {
    /// Sets up a jail's sets and rules (idempotent).
    fn start_jail(&mut self, spec: &NftJailSpec) -> Result<(), String>;
    /// Removes a jail's rules and sets.
    fn stop_jail(&mut self, jail: &str) -> Result<(), String>;
    /// Empties a jail's sets (`unban --all`), keeping its rules.
    fn flush_jail(&mut self, jail: &str) -> Result<(), String>;
    /// Applies a batch of bans and unbans as one transaction.
    fn apply(&mut self, batch: &[NftChange]) -> Result<(), String>;
    /// Every element in the started jails' sets.
    fn inventory(&mut self) -> Result<Vec<KernelBan>, String>;
    /// The elements each jail's sets held when it started (no reading).
    fn inventory_at_start(&self) -> Vec<KernelBan>;
    /// Removes rules and sets of jails that are not started; says what went.
    fn prune_stale(&mut self) -> Result<Vec<String>, String>;
}

impl Firewall for NftBackend {
    fn start_jail(&mut self, spec: &NftJailSpec) -> Result<(), String> {
        NftBackend::start_jail(self, spec).map_err(|e| e.to_string())
    }

    fn stop_jail(&mut self, jail: &str) -> Result<(), String> {
        NftBackend::stop_jail(self, jail).map_err(|e| e.to_string())
    }

    fn flush_jail(&mut self, jail: &str) -> Result<(), String> {
        NftBackend::flush_jail(self, jail).map_err(|e| e.to_string())
    }

    fn apply(&mut self, batch: &[NftChange]) -> Result<(), String> {
        NftBackend::apply(self, batch).map_err(|e| e.to_string())
    }

    fn inventory(&mut self) -> Result<Vec<KernelBan>, String> {
        NftBackend::inventory(self).map_err(|e| e.to_string())
    }

    fn inventory_at_start(&self) -> Vec<KernelBan> {
        NftBackend::inventory_at_start(self)
    }

    fn prune_stale(&mut self) -> Result<Vec<String>, String> {
        NftBackend::prune_stale(self).map_err(|e| e.to_string())
    }
}

/// The daemon's clock: the system's, or a manual one (tests).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock standing at `t` (unix seconds) until [`Clock::advance`] moves it.
    pub fn manual(t: f64) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicU64::new(t.to_bits()))),
        }
    }

    /// Now, in unix seconds.
    pub fn now(&self) -> f64 {
        match &self.manual {
            Some(t) => f64::from_bits(t.load(Ordering::SeqCst)),
            None => unix_now(),
        }
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance(&self, secs: f64) {
        if let Some(t) = &self.manual {
            let now = f64::from_bits(t.load(Ordering::SeqCst));
            t.store((now + secs).to_bits(), Ordering::SeqCst);
        }
    }
}

/// Unix time now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
