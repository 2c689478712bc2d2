//! Pure: from settings and facts to the list of steps that bring the
//! primary to the goal state. No I/O, so every decision is unit-testable
//! without a server; an empty plan is exactly `changed: false`. The
//! server settings are planned in `config`, pg_hba.conf in `hba_lines`,
//! the replication role in `role`.

mod config;
mod hba_lines;
mod role;
pub mod ssl;
#[cfg(test)]
mod tests;

pub use config::{base_unit, is_apply_notice, live_satisfies, shown_value};

use super::Settings;
use super::apply::{Env, Restart, RestartBackOnUndo, reloaded};
use super::inspect::Facts;
use crate::error::{Code, Error, Result};
use crate::plan::file::EditFile;
use crate::plan::sql::CreateSlot;
use crate::plan::wait::WaitFor;
use crate::plan::{self as engine, Action};
use crate::report::Change;

/// A value we set, to confirm after reload/restart.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub want: Want,
    pub postmaster: bool,
}

#[derive(Debug, Clone)]
pub enum Want {
    WalLevel,
    AtLeast(u64),
    On,
    Exactly(String),
    /// archive_mode: `on`, or `always` (which archives on a standby too).
    ArchiveMode,
    /// A time setting whose base unit is seconds, exactly this many.
    Seconds(u64),
}

/// The engine's steps for this primary, and what verification needs.
#[derive(Default)]
pub struct Plan {
    /// File edits first (they are checked by PostgreSQL's parser before
    /// anything else changes), then SQL, reload, restart, slots.
    pub steps: Vec<engine::Step<Env>>,
    pub warnings: Vec<String>,
    pub targets: Vec<Target>,
    /// A restart-only setting that the running server does not have yet.
    pub restart_required: bool,
    /// Whether the plan restarts the server (`--restart`).
    pub restart: bool,
    pub restart_command: String,
    /// How many of `steps` are file edits (at the front).
    edits: usize,
    /// With --ssl: the settings it needs and what to report.
    pub ssl: Option<ssl::SslPlan>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("changes", &self.changes())
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl Plan {
    /// A file edit: before every other step.
    pub fn edit(&mut self, e: EditFile) {
        self.steps.insert(self.edits, engine::Step::Do(Box::new(e)));
        self.edits += 1;
    }

    /// A file step that is not an edit (a new certificate): with the
    /// edits, before anything else, and before the check of them.
    pub fn edit_step(&mut self, a: impl Action<Env> + 'static) {
        self.steps.insert(self.edits, engine::Step::Do(Box::new(a)));
        self.edits += 1;
    }

    pub fn push(&mut self, a: impl Action<Env> + 'static) {
        self.steps.push(engine::Step::Do(Box::new(a)));
    }

    /// The engine's plan: the edits, PostgreSQL's verdict on them, the
    /// rest with a check of the live values after a reload and a restart.
    pub fn into_engine(self) -> engine::Plan<Env> {
        let mut steps = self.steps;
        if self.edits > 0 {
            steps.insert(
                self.edits,
                engine::Step::Do(Box::new(WaitFor::new(
                    "PostgreSQL reads the edited files without error",
                    super::apply::validate,
                ))),
            );
        }
        engine::Plan {
            steps,
            warnings: self.warnings,
            restart_required: self.restart_required && !self.restart,
        }
    }

    /// What `--dry-run` reports (the same list the real run reports).
    pub fn changes(&self) -> Vec<Change> {
        engine::changes(&self.steps)
    }
}

pub fn plan(settings: &Settings, facts: &Facts) -> Result<Plan> {
    refuse_unbindable_listen(settings, facts)?;
    let mut plan = Plan {
        restart_command: restart_command(settings, facts),
        ..Default::default()
    };
    config::refuse_config_errors(facts)?;
    if facts.in_recovery {
        plan.warnings.push(format!(
            "{} is a standby (in recovery): what init-master sets here serves standbys that cascade from it (clone-standby --primary naming this server); to set up the primary, run init-master on the primary's host",
            facts.data_directory.display()
        ));
    }
    plan.ssl = ssl::plan_ssl(settings, facts, &mut plan)?;
    let ssl_settings = plan
        .ssl
        .as_ref()
        .map(|s| s.settings.clone())
        .unwrap_or_default();
    let mut changed_config = config::plan_config(settings, facts, &ssl_settings, &mut plan)?
        || plan.ssl.as_ref().is_some_and(|s| s.reload);

    listen_warning(settings, facts, &mut plan);
    if hba_lines::plan_hba(settings, facts, &mut plan)? {
        changed_config = true;
    }
    role::plan_role(settings, facts, &mut plan)?;
    if let Some(m) = &settings.monitor {
        if super::monitor::plan(facts, m, &mut plan)? {
            changed_config = true;
        }
    }

    if changed_config {
        plan.push(crate::plan::sql::Reload);
        plan.push(WaitFor::new(
            "the server shows the reloaded values",
            reloaded,
        ));
    }
    let restart = match settings.restart {
        super::RestartPolicy::Never => false,
        super::RestartPolicy::IfNeeded => plan.restart_required,
        super::RestartPolicy::Always => true,
    };
    plan.restart = restart;
    if restart {
        plan.push(RestartBackOnUndo);
        plan.push(Restart);
    }
    // Slots last: PostgreSQL refuses one while the running server has
    // wal_level minimal, so it must come after the restart that raises it.
    plan_slots(settings, facts, restart, &mut plan)?;
    Ok(plan)
}

fn restart_command(settings: &Settings, facts: &Facts) -> String {
    if let Some((ver, cluster)) = &facts.debian_cluster {
        return format!("pg_ctlcluster {ver} {cluster} restart");
    }
    let bindir = settings
        .bindir
        .as_ref()
        .or(facts.server_bindir.as_ref())
        .map(|b| format!("{}/", b.display()))
        .unwrap_or_default();
    format!(
        "{bindir}pg_ctl restart -D {} -m fast",
        facts.data_directory.display()
    )
}

/// A --listen address this host lacks would stop the server at the
/// restart (alone: "could not create any TCP/IP sockets") and the whole
/// run would be undone after a bounce: refused before anything changes.
fn refuse_unbindable_listen(settings: &Settings, facts: &Facts) -> Result<()> {
    let (Some(listen), false) = (&settings.listen, facts.listen_unbindable.is_empty()) else {
        return Ok(());
    };
    Err(Error::new(
        Code::InvalidAddress,
        format!(
            "--listen '{listen}': this host cannot listen on {} (binding failed): the server would not listen there, or, with no other address, not start",
            facts.listen_unbindable.join(", ")
        ),
    )
    .hint("give this host's own addresses (ip -brief address), a name that resolves to one, or '*'; nothing was changed"))
}

fn listen_warning(settings: &Settings, facts: &Facts, plan: &mut Plan) {
    let listen = match &settings.listen {
        Some(l) => l.clone(),
        None => facts
            .live
            .get("listen_addresses")
            .map(|l| l.setting.clone())
            .unwrap_or_default(),
    };
    let local_only = listen.split(',').map(str::trim).all(|a| {
        a.is_empty()
            || a == "localhost"
            || a.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    let remote: Vec<String> = settings
        .allows
        .iter()
        .filter(|n| !n.addr().is_loopback())
        .map(|n| n.to_string())
        .collect();
    if local_only && !remote.is_empty() {
        plan.warnings.push(format!(
            "listen_addresses is '{listen}', so standbys at {} cannot connect; rerun with --listen '*' (or --listen 'localhost,<this server's address>') and --restart=if-needed",
            remote.join(", ")
        ));
    }
}

fn plan_slots(settings: &Settings, facts: &Facts, restart: bool, plan: &mut Plan) -> Result<()> {
    let live_wal_level = facts
        .live
        .get("wal_level")
        .map(|l| l.setting.as_str())
        .unwrap_or("");
    let slot_refused = config::wal_level_rank(live_wal_level) < 1 && !restart;
    for s in &settings.slots {
        match facts.slots.get(s).map(String::as_str) {
            Some("physical") => {}
            Some(other) => {
                return Err(Error::new(
                    Code::SlotConflict,
                    format!(
                        "replication slot {s:?} exists but is a {other} slot, not a physical one"
                    ),
                )
                .hint("choose another --slot name for the standby"));
            }
            None if slot_refused => {
                return Err(Error::new(
                    Code::SlotNeedsRestart,
                    format!(
                        "replication slot {s:?} cannot be created while the server runs with wal_level = {live_wal_level}; raising wal_level takes effect only after a restart"
                    ),
                )
                .hint("add --restart if-needed to restart the server before the slot is created, or rerun with --slot after a restart"));
            }
            None => plan.push(CreateSlot { name: s.clone() }),
        }
    }
    Ok(())
}
