//! The handover: prove the candidate has everything (it received and
//! replayed past this node's shutdown checkpoint record), fence this node
//! (its standby configuration pointing at the candidate is written while
//! it is stopped, so an accidental start brings it up as a standby), then
//! promote the candidate. Sending pg_promote() is the commit point: from
//! then on nothing rolls back.

use super::steps::{Env, POLL, log_step};
use crate::error::{Code, Error, Result};
use crate::pg::replication::format_lsn;
use crate::plan::file::EditFile;
use crate::plan::wait::WaitFor;
use crate::plan::{self as engine, Action, Applied, Cx, change, interrupted};
use crate::report::{Change, Kind};
use futures_util::future::LocalBoxFuture;
use std::time::Instant;

pub fn steps(plan: &mut engine::Plan<Env>, env: &Env, drain_ahead: bool) -> Result<()> {
    plan.push(WaitFor::new(
        "wait until the candidate has replayed this node's shutdown checkpoint",
        catch_up,
    ));
    fence(plan, env, drain_ahead)?;
    plan.push(Promote);
    plan.commit();
    plan.push(WaitFor::new(
        "wait until the candidate takes writes",
        promoted,
    ));
    Ok(())
}

/// The candidate, still a standby on this node's timeline, has received
/// and replayed past L (replay is the end of the last record replayed;
/// the shutdown checkpoint is the last record this node wrote). Past
/// `--catchup-timeout` the run fails, and the rollback follows.
fn catch_up(cx: &mut Cx<Env>) -> LocalBoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let l = cx
            .env
            .stop_lsn
            .ok_or_else(|| Error::new(Code::Internal, "the shutdown checkpoint is not known"))?;
        let started = Instant::now();
        let limit = cx.env.settings.catchup_timeout;
        let last = loop {
            let s = cx.env.candidate().await?;
            let (in_recovery, receive, replay) = super::inspect::positions(s).await?;
            if !in_recovery {
                // Promoted by someone else: it has what it has.
                break None;
            }
            if receive.unwrap_or(0) > l && replay.unwrap_or(0) > l {
                break None;
            }
            if started.elapsed() >= limit {
                break Some((receive, replay));
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = cx.interrupt.recv() => return Err(interrupted("while the candidate caught up")),
            }
        };
        if let Some((receive, replay)) = last {
            let show = |l: Option<u64>| l.map(format_lsn).unwrap_or_else(|| "-".into());
            return Err(Error::new(
                Code::CandidateBehind,
                format!(
                    "the candidate did not replay this node's shutdown checkpoint at {} within {}s (received up to {}, replayed up to {})",
                    format_lsn(l),
                    limit.as_secs(),
                    show(receive),
                    show(replay)
                ),
            )
            .hint("nothing was promoted; see why it falls behind (pgrepctl check, its server log) and rerun, or give it longer with --catchup-timeout"));
        }
        cx.detail(
            "candidate_caught_up_ms",
            started.elapsed().as_secs_f64() * 1000.0,
        );
        log_step(cx, "the candidate has everything");
        Ok(())
    })
}

/// The fence, one step per file, each planned now (for --dry-run) and
/// computed again when it runs: writes-off changed postgresql.auto.conf
/// in between (`drain_ahead`: it is still to come).
pub fn fence(plan: &mut engine::Plan<Env>, env: &Env, drain_ahead: bool) -> Result<()> {
    for e in env.fence_planned(drain_ahead)? {
        plan.push(Fence(e));
    }
    Ok(())
}

struct Fence(EditFile);

impl Action<Env> for Fence {
    fn describe(&self) -> Option<Change> {
        Action::<Env>::describe(&self.0)
    }

    fn label(&self) -> String {
        Action::<Env>::label(&self.0)
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let now = cx.env.fence()?.into_iter().find(|e| e.path == self.0.path);
            match now {
                Some(e) => e.apply(cx).await,
                None => Ok(Applied::unchanged()),
            }
        })
    }
}

/// pg_promote() on the candidate, not waiting (the next step polls faster
/// than its own once-a-tenth-of-a-second wait). A failure to reach the
/// candidate before sending rolls back; once sent, whatever the answer,
/// the run goes forward.
struct Promote;

impl Action<Env> for Promote {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Service,
            "candidate promoted (SELECT pg_promote()), then CHECKPOINT there".to_string(),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let s = cx.env.candidate().await?;
            let in_recovery: bool = s
                .client
                .query_one("SELECT pg_is_in_recovery()", &[])
                .await
                .map_err(|e| crate::pg::query_error(&s.target, &e))?
                .get(0);
            if !in_recovery {
                return Ok(Applied::unchanged());
            }
            cx.env.promote_sent = true;
            let s = cx.env.candidate.as_ref().expect("connected above");
            let answer = s.client.query_one("SELECT pg_promote(false)", &[]).await;
            match answer {
                Ok(r) if r.get::<_, bool>(0) => {}
                Ok(_) => cx.warnings.push(
                    "pg_promote() said it could not signal the candidate; waiting for it anyway"
                        .into(),
                ),
                Err(e) => cx.warnings.push(format!(
                    "pg_promote() did not answer ({e}); waiting for the candidate anyway"
                )),
            }
            Ok(Applied::changed())
        })
    }
}

/// Until the candidate takes writes; its new timeline recorded.
fn promoted(cx: &mut Cx<Env>) -> LocalBoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let started = Instant::now();
        let wait = cx.env.settings.wait;
        loop {
            let last = match cx.env.candidate().await {
                Ok(s) => match s
                    .client
                    .query_one(
                        "SELECT pg_is_in_recovery(), \
                                CASE WHEN pg_is_in_recovery() THEN 0 ELSE \
                                ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END",
                        &[],
                    )
                    .await
                {
                    Ok(r) if !r.get::<_, bool>(0) => {
                        cx.env.new_timeline = Some(r.get::<_, i32>(1) as u32);
                        break;
                    }
                    Ok(_) => "still in recovery".to_string(),
                    Err(e) => e.to_string(),
                },
                Err(e) => e.message,
            };
            if started.elapsed() >= wait {
                return Err(Error::new(
                    Code::PromoteFailed,
                    format!(
                        "the candidate was asked to promote and did not take writes within {}s ({last})",
                        wait.as_secs()
                    ),
                )
                .hint("this node is stopped and configured as its standby; watch the candidate (pgrepctl check), then rerun the same switchover to finish"));
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = cx.interrupt.recv() => return Err(interrupted("while the candidate was promoting; rerun the same switchover to finish")),
            }
        }
        if let Some(t) = cx.env.writes_off {
            cx.detail("write_pause_ms", t.elapsed().as_secs_f64() * 1000.0);
        }
        cx.detail("new_timeline", cx.env.new_timeline);
        log_step(cx, "the candidate takes writes");
        Ok(())
    })
}
