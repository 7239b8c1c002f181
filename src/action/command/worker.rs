//! One thread per command action. Owns the [`CommandAction`] (its family state lives on
//! this thread only); receives [`ActionCmd`]s over a bounded queue; emits script runs, in
//! queue order — so the ban, prolongation and unban of one address can never overtake
//! each other — and results to callers that wait, or error log lines for the rest.
//!
//! The queue is bounded: when the scripts cannot keep up (a ban storm against a slow
//! action), the sender blocks instead of memory growing without limit.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::error::CommandError;
use super::lifecycle::CommandAction;
use super::ticket::Ticket;

/// Commands waiting for one action.
const QUEUE: usize = 1024;

/// What the worker of an action is asked to do.
#[derive(Debug, Clone)]
pub enum ActionCmd {
    /// Jail start: [`CommandAction::start`].
    Start,
    /// [`CommandAction::ban`].
    Ban(Ticket),
    /// [`CommandAction::reban`].
    Reban(Ticket),
    /// [`CommandAction::prolong`].
    Prolong(Ticket),
    /// [`CommandAction::unban`].
    Unban(Ticket),
    /// [`CommandAction::flush`].
    Flush,
    /// [`CommandAction::reload`].
    Reload,
    /// Jail stop with these addresses still banned: [`CommandAction::stop`]; the worker
    /// ends after it.
    Stop(Vec<Ticket>),
}

type Reply = mpsc::Sender<Result<(), CommandError>>;

struct Job {
    cmd: ActionCmd,
    reply: Option<Reply>,
}

/// The handle of an action's worker thread.
#[derive(Debug)]
pub struct ActionWorker {
    jail: String,
    name: String,
    tx: SyncSender<Job>,
    handle: Option<JoinHandle<()>>,
}

/// Why [`ActionWorker::try_send`] did not queue a command.
#[derive(Debug)]
pub enum TrySend {
    /// The queue is full: here is the command back.
    Full(Box<ActionCmd>),
    /// The worker has ended.
    Gone(CommandError),
}

/// Called with every error of a command nobody waits for (after it is logged), e.g. to
/// count it in the metrics.
pub type ErrorHook = Box<dyn Fn(&CommandError) + Send>;

/// Moves `action` to a thread of its own (named after the jail and action).
pub fn spawn_worker(action: CommandAction) -> std::io::Result<ActionWorker> {
    spawn_worker_with(action, None)
}

/// [`spawn_worker`] with an [`ErrorHook`].
pub fn spawn_worker_with(
    action: CommandAction,
    on_error: Option<ErrorHook>,
) -> std::io::Result<ActionWorker> {
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let jail = action.jail().to_string();
    let name = action.name().to_string();
    let handle = std::thread::Builder::new()
        .name(format!("action {jail}/{name}"))
        .spawn(move || work(action, rx, on_error))?;
    Ok(ActionWorker {
        jail,
        name,
        tx,
        handle: Some(handle),
    })
}

impl ActionWorker {
    /// Queues `cmd` without waiting; the worker logs its errors. Blocks while the queue is
    /// full. Err(Gone) when the worker has ended.
    pub fn send(&self, cmd: ActionCmd) -> Result<(), CommandError> {
        self.tx
            .send(Job { cmd, reply: None })
            .map_err(|_| self.gone())
    }

    /// Queues `cmd` if there is room, without ever blocking: `Err(Full(cmd))` hands it
    /// back when the queue is full (the daemon's main loop keeps it and tries again next
    /// turn rather than wait for a slow script).
    pub fn try_send(&self, cmd: ActionCmd) -> Result<(), TrySend> {
        match self.tx.try_send(Job { cmd, reply: None }) {
            Ok(()) => Ok(()),
            Err(mpsc::TrySendError::Full(job)) => Err(TrySend::Full(Box::new(job.cmd))),
            Err(mpsc::TrySendError::Disconnected(_)) => Err(TrySend::Gone(self.gone())),
        }
    }

    /// Queues `cmd` and waits for its result.
    pub fn call(&self, cmd: ActionCmd) -> Result<(), CommandError> {
        let (reply, answer) = mpsc::channel();
        self.tx
            .send(Job {
                cmd,
                reply: Some(reply),
            })
            .map_err(|_| self.gone())?;
        answer.recv().map_err(|_| self.gone())?
    }

    fn gone(&self) -> CommandError {
        CommandError::Gone {
            jail: self.jail.clone(),
            action: self.name.clone(),
        }
    }

    /// Stops the action (see [`ActionCmd::Stop`]) after everything queued before, and
    /// waits for the thread to end.
    pub fn stop(mut self, banned: Vec<Ticket>) -> Result<(), CommandError> {
        let result = self.call(ActionCmd::Stop(banned));
        if let Some(handle) = self.handle.take() {
            // A panic of the worker was already reported by the runtime.
            let _ = handle.join();
        }
        result
    }
}

fn work(mut action: CommandAction, rx: Receiver<Job>, on_error: Option<ErrorHook>) {
    for Job { cmd, reply } in rx {
        let stop = matches!(cmd, ActionCmd::Stop(_));
        let result = match &cmd {
            ActionCmd::Start => action.start(),
            ActionCmd::Ban(t) => action.ban(t),
            ActionCmd::Reban(t) => action.reban(t),
            ActionCmd::Prolong(t) => action.prolong(t),
            ActionCmd::Unban(t) => action.unban(t),
            ActionCmd::Flush => action.flush(),
            ActionCmd::Reload => action.reload(),
            ActionCmd::Stop(banned) => action.stop(banned),
        };
        match (reply, result) {
            (Some(reply), result) => {
                // The caller may have stopped waiting; then the result is dropped.
                if let Err(mpsc::SendError(Err(e))) = reply.send(result) {
                    crate::error!("actions", "[{}] {e}", action.jail());
                }
            }
            (None, Err(e)) => {
                crate::error!("actions", "[{}] {e}", action.jail());
                if let Some(hook) = &on_error {
                    hook(&e);
                }
            }
            (None, Ok(_)) => {}
        }
        if stop {
            return;
        }
    }
    crate::debug!(
        "actions",
        "[{}] {}: worker ends (its handle was dropped)",
        action.jail(),
        action.name()
    );
}
