//! [`CommandAction`]: which script runs when (compat.md §5.1). Owns the per-family state
//! of one action of one jail — started or not, holding bans or not — and the record of
//! which start commands ran, so two families that share one setup (same rendered
//! `actionstart`) do not set it up twice. Receives lifecycle calls (start, ban, prolong,
//! unban, flush, stop, reload) with [`Ticket`]s; emits script runs through `exec`, and
//! [`CommandError`]s.
//!
//! fail2ban's rules kept here: an action with family-conditional options starts per family
//! on the first ban of that family (`actionstart_on_demand`, default true for them); a
//! failed command is retried once, after `actioncheck` and — if the check fails —
//! `actionrepair` or a stop+start of that family (for unban only with
//! `actionrepair_on_unban`); unban runs only for a family that had bans; stop flushes once
//! when `actionflush` exists, else unbans each ticket, then stops each started family.
//! Everything is synchronous: one action is driven by one thread (see `worker`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use banhammer_config::ActionSpec;

use super::error::{Cause, CommandError};
use super::exec::{self, Ending};
use super::script;
use super::tags::{self, Properties};
use super::ticket::{Family, Ticket};
use super::Op;

/// fail2ban's default `timeout` of an action.
const DEFAULT_TIMEOUT: f64 = 60.0;
/// fail2ban's default jail `bantime` (10 minutes), for `<bantime>` in start/stop scripts
/// until the daemon says otherwise.
const DEFAULT_JAIL_BANTIME: i64 = 600;
/// Log component.
const LOG: &str = "actions";

/// The state of one family (fail2ban's `__started` bits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct FamilyState {
    started: bool,
    has_bans: bool,
}

/// One action.d action of one jail, ready to run.
#[derive(Debug)]
pub struct CommandAction {
    jail: String,
    name: String,
    shell: Vec<String>,
    timeout: Duration,
    jail_bantime: i64,
    props: Properties,
    /// The static pass of every operation for every family, done once up front (so a
    /// self-referencing definition is a startup error, not a failed ban at 3 a.m.).
    rendered: BTreeMap<(Op, Family), String>,
    used_tags: BTreeSet<String>,
    has_variants: bool,
    start_on_demand: bool,
    repair_on_unban: bool,
    norestored: bool,
    state: BTreeMap<Family, FamilyState>,
    /// The start command (its `identity`) each started family ran, or shares with a
    /// family that ran it.
    started_with: BTreeMap<Family, String>,
}

impl CommandAction {
    /// Prepares action `spec` of jail `jail`: parses `timeout` (a fail2ban duration,
    /// default 60 s) and the flags, and does the static tag pass of every operation.
    pub fn new(jail: &str, spec: &ActionSpec) -> Result<CommandAction, CommandError> {
        let config = |message: String| CommandError::Config {
            jail: jail.to_string(),
            action: spec.actname.clone(),
            message,
        };
        if spec.name.ends_with(".py") {
            return Err(config(format!(
                "{} is a Python action, not an action.d command action",
                spec.name
            )));
        }
        let timeout = match spec.options.get("timeout").map(|t| t.trim()) {
            None | Some("") => DEFAULT_TIMEOUT,
            Some(t) => banhammer_config::parse_duration(t).map_err(|e| {
                config(format!("timeout: {e} (expected a duration, e.g. 60 or 2m)"))
            })?,
        };
        if timeout <= 0.0 || timeout > 1e9 {
            return Err(config(format!(
                "timeout {timeout} s is out of range (expected more than 0)"
            )));
        }
        let props = Properties::new(spec.options.clone(), timeout);
        let has_variants = props.has_family_variants();
        let flag = |key: &str| props.raw(key).filter(|v| !v.trim().is_empty()).map(truthy);
        let mut rendered = BTreeMap::new();
        let mut used_tags = BTreeSet::new();
        for op in Op::ALL {
            for family in [Family::Unspecified, Family::Inet4, Family::Inet6] {
                let text = props.render(op.key(), family).map_err(|reached| {
                    config(format!(
                        "{}: tags reference themselves, cannot resolve {reached:?}",
                        op.key()
                    ))
                })?;
                used_tags.extend(tags::tags(&text).map(|t| t.name.to_string()));
                rendered.insert((op, family), text);
            }
        }
        Ok(CommandAction {
            jail: jail.to_string(),
            name: spec.actname.clone(),
            shell: vec!["/bin/sh".to_string()],
            timeout: Duration::from_secs_f64(timeout),
            jail_bantime: DEFAULT_JAIL_BANTIME,
            start_on_demand: flag("actionstart_on_demand").unwrap_or(has_variants),
            repair_on_unban: flag("actionrepair_on_unban").unwrap_or(false),
            norestored: flag("norestored").unwrap_or(false),
            has_variants,
            props,
            rendered,
            used_tags,
            state: BTreeMap::new(),
            started_with: BTreeMap::new(),
        })
    }

    /// Runs the scripts with `shell` instead of `/bin/sh` (e.g. `ip netns exec NS sh`);
    /// it gets `-c SCRIPT sh ARG…` appended.
    pub fn with_shell(mut self, shell: Vec<String>) -> CommandAction {
        self.shell = shell;
        self
    }

    /// The jail's `bantime` in seconds (−1 permanent), used for `<bantime>` in scripts that
    /// run without a ticket (start, stop, flush…), as fail2ban does. Default 600.
    pub fn with_jail_bantime(mut self, secs: i64) -> CommandAction {
        self.jail_bantime = secs;
        self
    }

    /// The jail.
    pub fn jail(&self) -> &str {
        &self.jail
    }

    /// The action's name in the jail (`actname`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether some script of this action uses tag `name` (`ipmatches`, `jail.banned`,
    /// `ip-host`, `F-USER` …): the daemon fills the costly [`Ticket`] parts (database
    /// totals, counters, reverse DNS) only for actions that use them.
    pub fn uses_tag(&self, name: &str) -> bool {
        self.used_tags.contains(name)
    }

    /// `norestored`: tickets restored from the database at startup are not banned again.
    pub fn norestored(&self) -> bool {
        self.norestored
    }

    /// Whether `actionprolong` exists (else prolonging runs nothing).
    pub fn prolongable(&self) -> bool {
        self.has_script(Op::Prolong)
    }

    /// Jail start: runs `actionstart` (once per family for actions with family-conditional
    /// options), unless the action starts on demand, at its first ban of each family.
    pub fn start(&mut self) -> Result<(), CommandError> {
        if self.start_on_demand {
            crate::debug!(
                LOG,
                "[{}] {}: starts on demand (first ban of each family)",
                self.jail,
                self.name
            );
            return Ok(());
        }
        let families: &[Family] = if self.has_variants {
            &[Family::Inet4, Family::Inet6]
        } else {
            &[Family::Unspecified]
        };
        let mut first = None;
        for &family in families {
            if let Err(e) = self.start_family(family) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Bans `ticket` (`actionban`), starting its family first if on demand.
    pub fn ban(&mut self, ticket: &Ticket) -> Result<(), CommandError> {
        self.ban_with(Op::Ban, ticket)
    }

    /// Bans again an address the firewall may have lost (`actionreban`, or `actionban`
    /// when the action has none).
    pub fn reban(&mut self, ticket: &Ticket) -> Result<(), CommandError> {
        let op = if self.has_script(Op::Reban) {
            Op::Reban
        } else {
            Op::Ban
        };
        self.ban_with(op, ticket)
    }

    /// Extends the ban of `ticket` (new `bantime`): `actionprolong` if the action has
    /// one, else nothing (fail2ban's behaviour: the expiry queue alone carries it).
    pub fn prolong(&mut self, ticket: &Ticket) -> Result<(), CommandError> {
        if self.skips_restored(ticket) {
            return Ok(());
        }
        if !self.prolongable() {
            return Ok(());
        }
        self.process(Op::Prolong, ticket, ticket.family())
    }

    /// Lifts the ban of `ticket` (`actionunban`), if this action banned in its family.
    pub fn unban(&mut self, ticket: &Ticket) -> Result<(), CommandError> {
        let family = ticket.family();
        if !self.state(family).has_bans {
            return Ok(());
        }
        self.process(Op::Unban, ticket, family)
    }

    /// Lifts all bans at once (`actionflush`) in the families holding bans.
    pub fn flush(&mut self) -> Result<(), CommandError> {
        let families: Vec<Family> = self
            .state
            .iter()
            .filter(|(_, s)| s.started && s.has_bans)
            .map(|(f, _)| *f)
            .collect();
        if families.is_empty() || !self.has_script(Op::Flush) {
            return Ok(());
        }
        self.run_for_families(Op::Flush, &families, |action, family| {
            if let Some(s) = action.state.get_mut(&family) {
                s.has_bans = false;
            }
        })
    }

    /// Jail stop: `actionflush` once if the action has one, else `actionunban` for each of
    /// `banned`; then `actionstop` for each started family. Goes on after a failure;
    /// returns the first error and logs the others.
    pub fn stop(&mut self, banned: &[Ticket]) -> Result<(), CommandError> {
        let mut errors = Vec::new();
        if self.has_script(Op::Flush) {
            if let Err(e) = self.flush() {
                errors.push(e);
                crate::info!(
                    LOG,
                    "[{}] {}: no flush occurred, checking",
                    self.jail,
                    self.name
                );
                // Stopping: repair only if the action asks for repairs on unban.
                self.consistency_check(self.repair_on_unban);
            }
        } else {
            for ticket in banned {
                if let Err(e) = self.unban(ticket) {
                    errors.push(e);
                }
            }
        }
        let families: Vec<Family> = self.started_families();
        self.state.clear();
        if let Err(e) = self.run_for_families(Op::Stop, &families, |action, family| {
            action.forget_start(family)
        }) {
            errors.push(e);
        }
        let mut errors = errors.into_iter();
        match errors.next() {
            None => Ok(()),
            Some(first) => {
                for e in errors {
                    crate::error!(LOG, "[{}] {e}", self.jail);
                }
                Err(first)
            }
        }
    }

    /// The address families whose `actionstart` has run.
    fn started_families(&self) -> Vec<Family> {
        self.state
            .iter()
            .filter(|(_, s)| s.started)
            .map(|(f, _)| *f)
            .collect()
    }

    /// `actionreload` in each started family.
    pub fn reload(&mut self) -> Result<(), CommandError> {
        let families: Vec<Family> = self.started_families();
        if families.is_empty() || !self.has_script(Op::Reload) {
            return Ok(());
        }
        self.run_for_families(Op::Reload, &families, |_, _| {})
    }

    // ----- internals -----

    fn has_script(&self, op: Op) -> bool {
        self.props
            .raw(op.key())
            .is_some_and(|v| !v.trim().is_empty())
    }

    fn state(&self, family: Family) -> FamilyState {
        self.state.get(&family).copied().unwrap_or_default()
    }

    fn rendered(&self, op: Op, family: Family) -> &str {
        self.rendered.get(&(op, family)).map_or("", String::as_str)
    }

    /// What tells two families' runs of `op` apart (fail2ban compares the commands with
    /// `<family>` filled in): equal keys run once.
    fn identity(&self, op: Op, family: Family) -> String {
        self.rendered(op, family)
            .replace("<family>", family.as_str())
    }

    /// `norestored`: a ticket restored from the database at start is not banned or
    /// prolonged again by this action (it says so at debug level).
    fn skips_restored(&self, ticket: &Ticket) -> bool {
        let skip = self.norestored && ticket.restored;
        if skip {
            crate::debug!(
                LOG,
                "[{}] {}: {} restored, norestored: skipped",
                self.jail,
                self.name,
                ticket.ip
            );
        }
        skip
    }

    fn ban_with(&mut self, op: Op, ticket: &Ticket) -> Result<(), CommandError> {
        if self.skips_restored(ticket) {
            return Ok(());
        }
        let family = ticket.family();
        if self.start_on_demand && !self.state(family).started {
            self.start_family(family)?;
        }
        self.process(op, ticket, family)?;
        // Even an empty ban script counts: unban must run later (fail2ban's rule).
        self.state.insert(
            family,
            FamilyState {
                started: true,
                has_bans: true,
            },
        );
        Ok(())
    }

    /// Runs `actionstart` for `family`, unless a started family already ran the very same
    /// start command (an action without family variants, started on demand, sets up once).
    fn start_family(&mut self, family: Family) -> Result<(), CommandError> {
        let cmd = self.rendered(Op::Start, family).to_string();
        let identity = self.identity(Op::Start, family);
        let shared = !cmd.trim().is_empty()
            && self
                .started_with
                .iter()
                .any(|(f, c)| *f != family && *c == identity && self.state(*f).started);
        if !shared {
            self.execute(Op::Start, None, family, &cmd)
                .map_err(|cause| self.failed(Op::Start, None, cause))?;
        }
        self.state.entry(family).or_default().started = true;
        self.started_with.insert(family, identity);
        Ok(())
    }

    /// After `family` stopped: it and every family that shared its start command must run
    /// start again.
    fn forget_start(&mut self, family: Family) {
        if let Some(cmd) = self.started_with.remove(&family) {
            self.started_with.retain(|_, c| *c != cmd);
        }
    }

    /// Stops one family (for a repair): nothing if it never started.
    fn stop_family(&mut self, family: Family) -> Result<(), CommandError> {
        if self.state.remove(&family).is_none() {
            return Ok(());
        }
        let cmd = self.rendered(Op::Stop, family).to_string();
        self.execute(Op::Stop, None, family, &cmd)
            .map_err(|cause| self.failed(Op::Stop, None, cause))?;
        self.forget_start(family);
        Ok(())
    }

    /// Runs a ticket-less operation for `families`, each distinct rendered command once;
    /// `after` runs for each family whose command succeeded (or was shared).
    fn run_for_families(
        &mut self,
        op: Op,
        families: &[Family],
        after: impl Fn(&mut CommandAction, Family),
    ) -> Result<(), CommandError> {
        let mut done: Vec<String> = Vec::new();
        let mut first = None;
        for &family in families {
            let identity = self.identity(op, family);
            if !done.contains(&identity) {
                let cmd = self.rendered(op, family).to_string();
                if let Err(cause) = self.execute(op, None, family, &cmd) {
                    first.get_or_insert(self.failed(op, None, cause));
                    continue;
                }
                done.push(identity);
            }
            after(self, family);
        }
        first.map_or(Ok(()), Err)
    }

    /// Runs a ticket operation; on failure checks (and repairs) and retries once, as
    /// fail2ban's `_processCmd` does — the retry happens even without `actioncheck`.
    fn process(&mut self, op: Op, ticket: &Ticket, family: Family) -> Result<(), CommandError> {
        let cmd = self.rendered(op, family).to_string();
        if cmd.trim().is_empty() {
            return Ok(());
        }
        let cause = match self.execute(op, Some(ticket), family, &cmd) {
            Ok(()) => return Ok(()),
            Err(cause) => cause,
        };
        crate::error!(
            LOG,
            "[{}] {}: {} {} failed ({cause}); checking and retrying once",
            self.jail,
            self.name,
            op.verb(),
            ticket.ip
        );
        if self.has_script(Op::Check) {
            let repair_allowed = op != Op::Unban || self.repair_on_unban;
            self.invariant_check(family, op != Op::Unban, repair_allowed)
                .map_err(|cause| self.failed(op, Some(ticket), cause))?;
        }
        self.execute(op, Some(ticket), family, &cmd)
            .map_err(|cause| self.failed(op, Some(ticket), cause))?;
        Ok(())
    }

    /// fail2ban's `_invariantCheck`: `actioncheck`; if it fails, `actionrepair` (or stop
    /// and start of the family) and the check again.
    fn invariant_check(
        &mut self,
        family: Family,
        force_start: bool,
        repair_allowed: bool,
    ) -> Result<(), Cause> {
        if !force_start && !self.state.contains_key(&family) {
            return Ok(());
        }
        let check = self.rendered(Op::Check, family).to_string();
        if check.trim().is_empty() || self.execute(Op::Check, None, family, &check).is_ok() {
            return Ok(());
        }
        if !repair_allowed {
            crate::error!(
                LOG,
                "[{}] {}: invariant check failed; not repairing (unban/stop without actionrepair_on_unban)",
                self.jail,
                self.name
            );
            return Err(Cause::CheckFailed);
        }
        crate::error!(
            LOG,
            "[{}] {}: invariant check failed; trying to restore a sane environment",
            self.jail,
            self.name
        );
        let repair = self.rendered(Op::Repair, family).to_string();
        if !repair.trim().is_empty() {
            if self.execute(Op::Repair, None, family, &repair).is_err() {
                self.state.remove(&family);
                self.forget_start(family);
                return Err(self.unrepaired());
            }
            // Repaired: started, and (as fail2ban assumes) holding no bans until the retry.
            self.state.insert(
                family,
                FamilyState {
                    started: true,
                    has_bans: false,
                },
            );
        } else {
            // No repair script: restart the family. A failing stop does not matter if the
            // start and the check succeed afterwards.
            if let Err(e) = self.stop_family(family) {
                crate::debug!(LOG, "[{}] {e} (restarting anyway)", self.jail);
            }
            if force_start || !self.start_on_demand {
                if let Err(e) = self.start_family(family) {
                    crate::error!(LOG, "[{}] {e}", self.jail);
                    return Err(Cause::Unrepaired);
                }
            }
        }
        if self.state(family).started && self.execute(Op::Check, None, family, &check).is_err() {
            return Err(self.unrepaired());
        }
        Ok(())
    }

    /// Logs that a repair failed (fail2ban's wording) and says so as a cause.
    fn unrepaired(&self) -> Cause {
        crate::error!(
            LOG,
            "[{}] {}: unable to restore environment",
            self.jail,
            self.name
        );
        Cause::Unrepaired
    }

    /// fail2ban's `consistencyCheck` (after a failed flush): check each started family;
    /// one that could not be repaired counts as not started.
    fn consistency_check(&mut self, repair_allowed: bool) {
        if !self.has_script(Op::Check) {
            return;
        }
        let started: Vec<Family> = self.started_families();
        for family in started {
            if let Err(Cause::Unrepaired) = self.invariant_check(family, true, repair_allowed) {
                self.state.remove(&family);
                self.forget_start(family);
            }
        }
    }

    /// Substitutes the ticket's values (or an empty ticket's, for operations without one)
    /// into `cmd` and runs it.
    fn execute(
        &self,
        op: Op,
        ticket: Option<&Ticket>,
        family: Family,
        cmd: &str,
    ) -> Result<(), Cause> {
        if cmd.trim().is_empty() {
            return Ok(());
        }
        let empty;
        let ticket = match ticket {
            Some(t) => t,
            None => {
                empty = Ticket::new("", now(), self.jail_bantime);
                &empty
            }
        };
        let script = script::build(cmd, ticket, family);
        if !script.truncated.is_empty() {
            crate::warning!(
                LOG,
                "[{}] {}: {}: values of {:?} cut to fit the command line",
                self.jail,
                self.name,
                op.verb(),
                script.truncated
            );
        }
        crate::debug!(
            LOG,
            "[{}] {}: {} exec: {} -- args {:?}",
            self.jail,
            self.name,
            op.verb(),
            script.text,
            script.args
        );
        let run = exec::run(&self.shell, &script, self.timeout).map_err(Cause::Spawn)?;
        let ok = run.success();
        for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            for line in text.lines() {
                if ok {
                    crate::debug!(
                        LOG,
                        "[{}] {}: {} {stream}: {line}",
                        self.jail,
                        self.name,
                        op.verb()
                    );
                } else {
                    crate::error!(
                        LOG,
                        "[{}] {}: {} {stream}: {line}",
                        self.jail,
                        self.name,
                        op.verb()
                    );
                }
            }
        }
        let last_err = || {
            run.stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .to_string()
        };
        match run.ending {
            Ending::Exited(0) => {
                crate::debug!(
                    LOG,
                    "[{}] {}: {} returned successfully in {:?}",
                    self.jail,
                    self.name,
                    op.verb(),
                    run.elapsed
                );
                Ok(())
            }
            Ending::Exited(code) => Err(Cause::Exit {
                code,
                stderr: last_err(),
            }),
            Ending::Signaled(signal) => Err(Cause::Signal {
                signal,
                stderr: last_err(),
            }),
            Ending::TimedOut => Err(Cause::TimedOut(self.timeout)),
            Ending::Unkillable => Err(Cause::Unkillable(self.timeout)),
        }
    }

    fn failed(&self, op: Op, ticket: Option<&Ticket>, cause: Cause) -> CommandError {
        CommandError::Failed {
            jail: self.jail.clone(),
            action: self.name.clone(),
            op,
            ip: ticket.map(|t| t.ip.clone()),
            cause,
        }
    }
}

/// fail2ban's boolean words (`true`, `yes`, `1`, `on`), any case.
fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "1" | "on" | "y"
    )
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
