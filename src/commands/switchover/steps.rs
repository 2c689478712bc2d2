//! switchover's plan on the engine, by phase. From a running primary:
//! checkpoint, writes off (its undo is the rollback), drain, fast stop,
//! the candidate proven to have the shutdown checkpoint, this node fenced
//! as the candidate's standby, the promotion — the commit point — then
//! [`super::after`]'s steps. A rerun after an interruption starts where
//! the node stands: stopped (proof, fence, promotion), fenced (the same;
//! no rollback once fenced), or with the candidate already promoted
//! (fence if missing, start, wait, siblings, verify).

use super::Settings;
use super::inspect::{Facts, Phase};
use super::preflight::Checked;
use super::{after, drain, handover};
use crate::conf::standby::PrimaryConninfo;
use crate::error::Result;
use crate::pg::Session;
use crate::pg::cluster::LocalCluster;
use crate::pg::version::Version;
use crate::plan::{self as engine, Cx};
use crate::report::{Outcome, Printer};
use std::time::{Duration, Instant};

/// What switchover's steps work with.
pub struct Env {
    pub settings: Settings,
    pub old: LocalCluster,
    pub version: Version,
    pub checked: Checked,
    /// A superuser session on the candidate (reopened when it drops).
    pub candidate: Option<Session>,
    /// Where this node's shutdown checkpoint record starts (L), and its timeline.
    pub stop_lsn: Option<u64>,
    pub stop_timeline: u32,
    /// The candidate's timeline once promoted.
    pub new_timeline: Option<u32>,
    /// When writes went off here, for the pause the report shows.
    pub writes_off: Option<Instant>,
    /// pg_promote() was sent: from then on nothing rolls back.
    pub promote_sent: bool,
}

impl Env {
    /// The candidate's session, reconnected if it was closed.
    pub async fn candidate(&mut self) -> Result<&Session> {
        if self.candidate.as_ref().is_none_or(|s| s.client.is_closed()) {
            let config = crate::pg::conninfo::resolve_node(&self.settings.candidate)?;
            self.candidate =
                Some(crate::pg::connect(&config, Some(self.settings.connect_timeout)).await?);
        }
        Ok(self.candidate.as_ref().expect("connected above"))
    }

    /// This node's primary_conninfo once it is the candidate's standby.
    pub fn conninfo(&self) -> PrimaryConninfo {
        let c = &self.checked;
        PrimaryConninfo {
            host: c.host.clone(),
            port: c.port,
            user: c.user.clone(),
            passfile: self.passfile().map(|p| p.display().to_string()),
            password: None,
            application_name: c.application_name.clone(),
            sslmode: None,
            ssl_files: vec![],
        }
    }

    fn passfile(&self) -> Option<std::path::PathBuf> {
        self.settings.password.as_ref().map(|_| {
            self.old
                .data_dir
                .join(crate::commands::clone_standby::PASSFILE_NAME)
        })
    }

    /// The edits that fence this node: standby.signal, primary_conninfo
    /// naming the candidate, the passfile, and the drain's settings gone.
    /// `after_drain`: planned before writes go off, against
    /// postgresql.auto.conf as the drain's ALTER SYSTEM will leave it.
    pub fn fence(&self, after_drain: bool) -> Result<Vec<crate::plan::file::EditFile>> {
        let auto_conf_then = if after_drain {
            let path = self.old.data_dir.join("postgresql.auto.conf");
            let now = crate::commands::standby_files::read(&path)?.unwrap_or_default();
            let drained = [
                (
                    super::inspect::DRAIN_MARKER.to_string(),
                    "draining".to_string(),
                ),
                (
                    "default_transaction_read_only".to_string(),
                    "on".to_string(),
                ),
            ];
            Some(
                crate::conf::standby::edit_auto_conf(&now, &drained).map_err(|e| {
                    crate::error::Error::new(
                        crate::error::Code::ConfigParseError,
                        format!("{}:{}: {}", path.display(), e.line, e.message),
                    )
                })?,
            )
        } else {
            None
        };
        let conninfo = self.conninfo();
        let line = self
            .settings
            .password
            .as_ref()
            .map(|p| crate::conf::standby::passfile_line(&self.checked.user, p.expose()));
        crate::commands::standby_files::StandbyFiles {
            data_dir: &self.old.data_dir,
            version: self.version,
            conninfo: &conninfo,
            slot: self.checked.slot.as_deref(),
            passfile: self.passfile().zip(line),
            drop: &[
                "default_transaction_read_only",
                super::inspect::DRAIN_MARKER,
            ],
            owner: self.old.run_as.ids,
            auto_conf_then,
        }
        .edits()
    }

    pub fn ctl_timeout(&self) -> Duration {
        self.settings.wait.max(Duration::from_secs(5))
    }
}

pub fn plan(settings: &Settings, facts: &Facts, checked: &Checked) -> Result<engine::Plan<Env>> {
    let mut plan = engine::Plan::default();
    plan.warnings.extend(checked.warnings.iter().cloned());
    let env = env_for_plan(settings, facts, checked);
    let cand_primary = !facts.candidate.in_recovery;
    match (&facts.old.phase, cand_primary) {
        (Phase::Primary { draining }, _) => {
            drain::steps(&mut plan, *draining, settings);
            handover::steps(&mut plan, &env, true)?;
            after::start_steps(&mut plan, &env);
        }
        (Phase::Stopped | Phase::Fenced, false) => {
            plan.push(drain::Resume {
                rollback: facts.old.phase == Phase::Stopped,
            });
            handover::steps(&mut plan, &env, false)?;
            after::start_steps(&mut plan, &env);
        }
        (Phase::Stopped | Phase::Fenced, true) => {
            handover::fence(&mut plan, &env, false)?;
            plan.commit();
            after::start_steps(&mut plan, &env);
        }
        (Phase::Standby, _) => {}
    }
    after::finish_steps(&mut plan, checked);
    Ok(plan)
}

/// An Env for planning only: what the fence edits are depends on it.
fn env_for_plan(settings: &Settings, facts: &Facts, checked: &Checked) -> Env {
    Env {
        settings: settings.clone(),
        old: facts.old.cluster.clone(),
        version: facts.old.version,
        checked: checked.clone(),
        candidate: None,
        stop_lsn: None,
        stop_timeline: facts.old.timeline,
        new_timeline: None,
        writes_off: None,
        promote_sent: false,
    }
}

pub async fn apply(
    settings: Settings,
    facts: Facts,
    checked: Checked,
    plan: engine::Plan<Env>,
    printer: &Printer,
    outcome: &mut Outcome,
) -> Result<()> {
    outcome.warnings.extend(plan.warnings.iter().cloned());
    let Facts { old, candidate, .. } = facts;
    let phase = old.phase.clone();
    let env = Env {
        settings,
        version: old.version,
        stop_timeline: old.timeline,
        stop_lsn: match phase {
            Phase::Stopped | Phase::Fenced => Some(old.lsn),
            _ => None,
        },
        old: old.cluster,
        checked,
        candidate: Some(candidate.session),
        new_timeline: None,
        writes_off: None,
        promote_sent: false,
    };
    let mut cx = Cx::new(env, *printer, old.session)?;
    engine::execute(&plan.steps, &mut cx, outcome).await?;
    outcome.epilogue = Some(epilogue(&cx.env, outcome));
    Ok(())
}

fn epilogue(env: &Env, outcome: &Outcome) -> String {
    let mut s = format!(
        "{} is the primary now{}; {} streams from it as {}.\n",
        env.settings.candidate,
        env.new_timeline
            .map(|t| format!(", on timeline {t}"))
            .unwrap_or_default(),
        env.old.data_dir.display(),
        env.checked.application_name
    );
    if let Some(serde_json::Value::Array(lines)) = outcome.details.get("follow_commands") {
        s.push_str("Repoint these standbys on their own hosts:\n");
        for l in lines {
            s.push_str(&format!("  {}\n", l.as_str().unwrap_or_default()));
        }
    }
    s
}

/// Poll every few milliseconds: each one the candidate waits adds to the
/// write pause.
pub const POLL: Duration = Duration::from_millis(5);

pub fn log_step(cx: &Cx<Env>, what: &str) {
    if let Some(t) = cx.env.writes_off {
        cx.printer.step(format!(
            "{what} ({:.0} ms after writes went off)",
            t.elapsed().as_secs_f64() * 1000.0
        ));
    }
}
