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
    /// Reloads all jails (`only = None`) or one. Returns one line per jail; lines of a
    /// failed reload start with `ERROR`.
    pub(super) fn reload(&mut self, only: Option<&str>) -> Vec<String> {
        let overlay = self
            .ctx
            .config_dir
            .is_dir()
            .then(|| self.ctx.config_dir.clone());
        let tree = ConfigTree::new(EMBEDDED_CONFIG, overlay.clone());
        let failed = |why: String| {
            error!(
                "server",
                "reload failed, still running the previous configuration: {why}"
            );
            vec![format!(
                "ERROR: reload failed, still running the previous configuration: {why}"
            )]
        };
        let cfg = match banhammer_config::read_jails(&tree) {
            Ok(c) => c,
            Err(e) => return failed(e.to_string()),
        };
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
        messages
    }

    /// A ban of a jail that went away: it ends, and the store forgets it as active.
    fn lift(&mut self, jail: &str, ban: banhammer_core::jail::Ban) {
        crate::notice!("actions", "[{jail}] Unban {} (jail stopped)", ban.key);
        self.forget_active(jail, &ban.key.to_string());
    }
}
