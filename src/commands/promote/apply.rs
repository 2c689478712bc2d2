//! promote's plan on the engine: one step that promotes (pg_promote() on
//! 12+, pg_ctl promote before), waits until the server takes writes, and
//! checkpoints. There is no undo for a promotion: it is the plan's commit
//! point, and everything that could refuse it was checked before.

use super::Args;
use super::inspect::{Facts, UpstreamState};
use crate::error::{Code, Error, Result};
use crate::pg::cluster::Ctl;
use crate::plan::{self as engine, Action, Applied, Cx, change, interrupted};
use crate::report::{Change, Kind, Outcome, Printer};
use futures_util::future::LocalBoxFuture;
use std::time::{Duration, Instant};

pub struct Env {
    args: Args,
    facts: Facts,
    /// When the promotion was asked for.
    started: Option<Instant>,
}

/// Nothing to do for a server that is already a primary; a refusal while
/// the upstream answers (unless --force); else the promotion.
pub fn plan(args: &Args, facts: &Facts) -> Result<engine::Plan<Env>> {
    let mut plan = engine::Plan::default();
    if !facts.in_recovery {
        return Ok(plan);
    }
    if let Some(u) = facts.upstream.as_ref().filter(|u| u.state.alive()) {
        let (what, why) = match u.state {
            UpstreamState::Standby => (
                "answers as a standby (this node cascades from it)",
                "the primary at the top of that chain may still take writes, and promoting now could make two primaries",
            ),
            UpstreamState::Primary => (
                "answers as a primary",
                "promoting now would make two primaries",
            ),
            _ => ("answers", "promoting now would make two primaries"),
        };
        if !args.force {
            return Err(Error::new(
                Code::UpstreamAlive,
                format!(
                    "the upstream in primary_conninfo ({}) {what}: {why}",
                    u.conninfo
                ),
            )
            .hint("stop the old primary (or fence it off) and rerun; --force promotes anyway"));
        }
        plan.warnings.push(format!(
            "the upstream {} {what}; promoting anyway (--force): make sure it takes no more writes",
            u.conninfo
        ));
    }
    let how = if facts.version.promote_via_sql() {
        "SELECT pg_promote()".to_string()
    } else {
        facts.cluster.ctl_command(Ctl::Promote, args.wait).1
    };
    plan.push(Promote { how });
    // Once asked, the server finishes its promotion whatever happens
    // here: a slow finish is reported with the change kept.
    plan.commit();
    plan.push(engine::wait::WaitFor::new(
        "wait until the server takes writes, then CHECKPOINT",
        finish,
    ));
    Ok(plan)
}

pub async fn apply(
    args: Args,
    facts: Facts,
    plan: engine::Plan<Env>,
    printer: &Printer,
    outcome: &mut Outcome,
) -> Result<()> {
    outcome.warnings.extend(plan.warnings.iter().cloned());
    let env = Env {
        args,
        facts,
        started: None,
    };
    let mut cx = Cx::new(env, *printer, None)?;
    engine::execute(&plan.steps, &mut cx, outcome).await?;
    if let Some(tli) = outcome
        .details
        .get("timeline")
        .filter(|_| outcome.changed())
    {
        outcome.epilogue = Some(format!(
            "{} is a primary now, on timeline {tli}.\n",
            cx.env.facts.cluster.data_dir.display()
        ));
    }
    Ok(())
}

struct Promote {
    how: String,
}

impl Action<Env> for Promote {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Service,
            format!("promoted to primary ({}), then CHECKPOINT", self.how),
        ))
    }

    fn label(&self) -> String {
        format!("promote ({})", self.how)
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            cx.env.started = Some(Instant::now());
            promote(cx).await?;
            Ok(Applied::changed())
        })
    }
}

/// Ask for the promotion: pg_promote() without waiting (12+), or pg_ctl
/// promote (which waits for it, 10–11).
async fn promote(cx: &mut Cx<Env>) -> Result<()> {
    let (cluster, version, wait) = (
        cx.env.facts.cluster.clone(),
        cx.env.facts.version,
        cx.env.args.wait,
    );
    if version.promote_via_sql() {
        let session = cluster.session(Duration::from_secs(5)).await?;
        let asked: bool = session
            .client
            .query_one("SELECT pg_promote(false)", &[])
            .await
            .map_err(|e| crate::pg::query_error(&session.target, &e))?
            .get(0);
        if !asked {
            return Err(Error::new(
                Code::PromoteFailed,
                "pg_promote() could not signal the server to promote",
            )
            .hint("see the server log; the server is still a standby"));
        }
        return Ok(());
    }
    cluster.ctl(Ctl::Promote, wait).map(|_| ()).map_err(|e| {
        Error::new(Code::PromoteFailed, e.message).hint(
            "the promotion may still complete: check the server (pgrepctl check) before anything else",
        )
    })
}

/// Wait until the server takes writes, checkpoint, and record the new
/// timeline and where it began.
fn finish(cx: &mut Cx<Env>) -> LocalBoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let (cluster, version, wait) = (
            cx.env.facts.cluster.clone(),
            cx.env.facts.version,
            cx.env.args.wait,
        );
        let started = cx.env.started.unwrap_or_else(Instant::now);
        let session = cluster.session(Duration::from_secs(5)).await?;
        let t = session.target.clone();
        let q = |e: tokio_postgres::Error| crate::pg::query_error(&t, &e);
        loop {
            let in_recovery: bool = session
                .client
                .query_one("SELECT pg_is_in_recovery()", &[])
                .await
                .map_err(q)?
                .get(0);
            if !in_recovery {
                break;
            }
            if started.elapsed() >= wait {
                return Err(not_promoted(wait, &cluster.log_tail()));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = cx.interrupt.recv() => return Err(interrupted("while the promotion was finishing; it goes on: check the server with pgrepctl check")),
            }
        }
        // pg_control shows the new timeline only after a checkpoint; a
        // rewind against this server relies on it.
        session
            .client
            .batch_execute("CHECKPOINT")
            .await
            .map_err(q)?;
        let tli: i32 = session
            .client
            .query_one("SELECT timeline_id FROM pg_control_checkpoint()", &[])
            .await
            .map_err(q)?
            .get(0);
        cx.printer.info(format!(
            "promoted in {:.0} ms; timeline {tli}",
            started.elapsed().as_secs_f64() * 1000.0
        ));
        let switch = switch_lsn(&cluster.data_dir, tli);
        cx.detail("timeline", tli);
        cx.detail("switch_lsn", switch);
        if version.recovery_conf() && cluster.data_dir.join("recovery.conf").exists() {
            cx.warnings.push(
                "recovery.conf is still there after the promotion (PostgreSQL renames it to recovery.done): remove it, or the server starts as a standby again".into(),
            );
        }
        Ok(())
    })
}

fn not_promoted(wait: Duration, log: &str) -> Error {
    Error::new(
        Code::PromoteFailed,
        format!(
            "the server was asked to promote and is still in recovery after {}s; server log: {log}",
            wait.as_secs()
        ),
    )
    .hint("it is still replaying WAL and will take writes when done: watch it with pgrepctl check; do not promote another node")
}

/// Where the new timeline began: the last line of its history file
/// (`<parent tli>\t<switch LSN>\t<reason>`).
fn switch_lsn(data_dir: &std::path::Path, tli: i32) -> Option<String> {
    let path = data_dir.join("pg_wal").join(format!("{tli:08X}.history"));
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .rfind(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(str::to_string)
}
