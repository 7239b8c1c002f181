//! Reload (`SIGHUP`, `banhammer reload [JAIL]`): re-read the configuration and apply the
//! difference. Everything is read and compiled first; a broken configuration changes
//! nothing and says why. Then: jails gone from the configuration stop (their bans are
//! lifted), unchanged jails keep running untouched, changed jails restart with their bans
//! carried over, new jails start and get their stored bans back.

use std::collections::BTreeMap;

use banhammer_config::ConfigTree;

use super::engine::Engine;
use super::plan::{plan, JailPlan};
use crate::embedded::EMBEDDED_CONFIG;
use crate::{error, warning};

impl Engine {
    /// Reloads all jails (`only = None`) or one. Returns one line per jail (a jail that
    /// failed to start has a line starting with `ERROR`), or why nothing was changed: a
    /// broken configuration, or `only` naming no jail.
    pub(super) fn reload(&mut self, only: Option<&str>) -> Result<Vec<String>, String> {
        let overlay = self.ctx.overlay();
        let tree = ConfigTree::new(EMBEDDED_CONFIG, overlay.clone());
        let failed = |why: String| {
            let why = format!("reload failed, still running the previous configuration: {why}");
            error!("server", "{why}");
            Err(why)
        };
        let cfg = match banhammer_config::read_jails(&tree) {
            Ok(c) => c,
            Err(e) => return failed(e.to_string()),
        };
        if let Some(o) = only {
            let enabled = cfg.jails.iter().any(|j| j.enabled && j.name == o);
            if !enabled && !self.jails.contains_key(o) {
                return Err(format!("Sorry but the jail '{o}' does not exist"));
            }
        }
        for w in &cfg.warnings {
            warning!("config", "{}: {}", w.origin, w.message);
        }
        let now = self.ctx.clock.now();
        let mut order = Vec::new();
        let mut plans: BTreeMap<String, JailPlan> = BTreeMap::new();
        for spec in cfg.jails.iter().filter(|j| j.enabled) {
            order.push(spec.name.clone());
            if only.is_some_and(|o| o != spec.name) {
                continue;
            }
            match plan(spec, overlay.as_deref(), self.ctx.plan_opts, now) {
                Ok(p) => {
                    plans.insert(spec.name.clone(), p);
                }
                Err(e) => return failed(format!("{e:#}")),
            }
        }
        let mut messages = Vec::new();
        let gone: Vec<String> = self
            .jails
            .keys()
            .filter(|n| !order.contains(n) && only.is_none_or(|o| o == n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            let bans = self.stop_jail(&name, true);
            for b in bans {
                self.lift(&name, b);
            }
            messages.push(format!("Jail '{name}' stopped (no longer enabled)"));
        }
        for name in &order {
            let Some(p) = plans.remove(name) else {
                continue;
            };
            let running = self.jails.get(name).map(|rt| rt.spec == p.spec);
            match running {
                Some(true) => messages.push(format!("Jail '{name}' unchanged")),
                Some(false) => {
                    let bans = self.stop_jail(name, false);
                    match self.start_jail(p, bans) {
                        Ok(()) => messages.push(format!("Jail '{name}' reloaded")),
                        Err(e) => messages.push(format!("ERROR: {e:#}")),
                    }
                }
                None => match self.start_jail(p, Vec::new()) {
                    Ok(()) => {
                        self.restore(Some(name));
                        messages.push(format!("Jail '{name}' started"));
                    }
                    Err(e) => messages.push(format!("ERROR: {e:#}")),
                },
            }
        }
        self.order = order
            .into_iter()
            .filter(|n| self.jails.contains_key(n))
            .collect();
        self.flush();
        Ok(messages)
    }

    /// A ban of a jail that went away: it ends, and the store forgets it as active.
    fn lift(&mut self, jail: &str, ban: banhammer_core::jail::Ban) {
        crate::notice!("actions", "[{jail}] Unban {} (jail stopped)", ban.key);
        self.forget_active(jail, &ban.key.to_string());
    }
}
