//! A jail's command action as the main loop sees it: the action on its worker thread
//! ([`crate::action::command::ActionWorker`], whose single queue keeps the ban, prolong
//! and unban of an address in order), `actionstart` queued first, errors counted in the
//! metrics.
//!
//! The main loop never waits for a script: commands go to the worker's bounded queue when
//! it has room and otherwise wait in this handle's own queue, in order, until a later turn
//! finds room ([`CommandWorker::pump`]). A ban storm against a slow action costs memory
//! here (one ticket per ban), never a stalled loop.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Result};
use banhammer_config::ActionSpec;

use crate::action::command::{
    spawn_worker_with, ActionCmd, ActionWorker, CommandAction, Ticket, TrySend,
};
use crate::error;
use crate::metrics::Metrics;

/// The handle the main loop keeps.
pub struct CommandWorker {
    worker: ActionWorker,
    /// Commands waiting for room in the worker's queue, oldest first.
    waiting: VecDeque<ActionCmd>,
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
        let mut w = CommandWorker {
            worker,
            waiting: VecDeque::new(),
        };
        w.send(ActionCmd::Start);
        Ok(w)
    }

    fn send(&mut self, cmd: ActionCmd) {
        self.waiting.push_back(cmd);
        self.pump();
    }

    /// Hands waiting commands to the worker while its queue has room.
    pub fn pump(&mut self) {
        while let Some(cmd) = self.waiting.pop_front() {
            match self.worker.try_send(cmd) {
                Ok(()) => {}
                Err(TrySend::Full(cmd)) => {
                    self.waiting.push_front(*cmd);
                    return;
                }
                Err(TrySend::Gone(e)) => {
                    error!(
                        "actions",
                        "{e} ({} command(s) dropped)",
                        self.waiting.len() + 1
                    );
                    self.waiting.clear();
                    return;
                }
            }
        }
    }

    /// Commands not yet handed to the worker.
    pub fn backlog(&self) -> usize {
        self.waiting.len()
    }

    /// Queues a ban (`prolong`: the ban of an already banned address got longer).
    pub fn ban(&mut self, ticket: Ticket, prolong: bool) {
        self.send(if prolong {
            ActionCmd::Prolong(ticket)
        } else {
            ActionCmd::Ban(ticket)
        });
    }

    /// Queues an unban.
    pub fn unban(&mut self, ticket: Ticket) {
        self.send(ActionCmd::Unban(ticket));
    }

    /// Runs the jail-stop sequence (flush or per-address unbans of `banned`, then
    /// `actionstop`) after everything queued, on a thread of its own: the returned handle
    /// ends when the action has stopped. Nothing here waits for a script.
    pub fn stop(self, banned: Vec<Ticket>) -> std::io::Result<JoinHandle<()>> {
        let CommandWorker { worker, waiting } = self;
        std::thread::Builder::new()
            .name("action-stop".into())
            .spawn(move || {
                // This thread may wait: the worker's queue drains at the scripts' pace.
                for cmd in waiting {
                    if let Err(e) = worker.send(cmd) {
                        error!("actions", "{e}");
                        break;
                    }
                }
                if let Err(e) = worker.stop(banned) {
                    error!("actions", "{e}");
                }
            })
    }
}
