//! A jail's command action as the main loop sees it: the action on its worker thread
//! ([`crate::action::command::ActionWorker`], whose single queue keeps the ban, prolong
//! and unban of an address in order), `actionstart` queued first, errors counted in the
//! metrics.

use std::sync::Arc;

use anyhow::{anyhow, Result};
use banhammer_config::ActionSpec;

use crate::action::command::{spawn_worker_with, ActionCmd, ActionWorker, CommandAction, Ticket};
use crate::error;
use crate::metrics::Metrics;

/// The handle the main loop keeps.
pub struct CommandWorker {
    worker: ActionWorker,
}

impl CommandWorker {
    /// Builds the action (a bad definition fails here, before anything starts) and
    /// starts its thread, which runs `actionstart` first.
    pub fn start(
        jail: &str,
        spec: &ActionSpec,
        bantime: f64,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<CommandWorker> {
        let action = CommandAction::new(jail, spec)
            .map_err(|e| anyhow!("jail [{jail}] action {}: {e}", spec.actname))?
            .with_jail_bantime(bantime.round() as i64);
        let hook = metrics.map(|m| {
            let jm = m.jail(jail);
            let actname = spec.actname.clone();
            Box::new(move |_: &crate::action::command::CommandError| jm.action_error(&actname))
                as crate::action::command::ErrorHook
        });
        let worker = spawn_worker_with(action, hook).map_err(|e| {
            anyhow!(
                "jail [{jail}] action {}: starting its thread: {e}",
                spec.actname
            )
        })?;
        let w = CommandWorker { worker };
        w.send(ActionCmd::Start);
        Ok(w)
    }

    fn send(&self, cmd: ActionCmd) {
        if let Err(e) = self.worker.send(cmd) {
            error!("actions", "{e}");
        }
    }

    /// Queues a ban (`prolong`: the ban of an already banned address got longer).
    pub fn ban(&self, ticket: Ticket, prolong: bool) {
        self.send(if prolong {
            ActionCmd::Prolong(ticket)
        } else {
            ActionCmd::Ban(ticket)
        });
    }

    /// Queues an unban.
    pub fn unban(&self, ticket: Ticket) {
        self.send(ActionCmd::Unban(ticket));
    }

    /// Runs the jail-stop sequence (flush or per-address unbans of `banned`, then
    /// `actionstop`) after everything queued, and waits for it.
    pub fn stop(self, banned: Vec<Ticket>) {
        if let Err(e) = self.worker.stop(banned) {
            error!("actions", "{e}");
        }
    }
}
