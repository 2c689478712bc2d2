//! The first half of a switchover, on this node: a checkpoint while writes
//! still go on (so the later ones are short), writes off
//! (`default_transaction_read_only` and pgrepctl's marker through ALTER
//! SYSTEM, a reload), write transactions given `--drain-timeout` to
//! finish, the client sessions ended, a second checkpoint, and a fast
//! stop confirmed by the control file. Turning writes off registers the
//! one undo of this half, [`Rollback`]: this node back up as a writable
//! primary, which is only ever done while nothing was promoted.

use super::Settings;
use super::inspect::DRAIN_MARKER;
use super::steps::{Env, POLL, log_step};
use crate::error::{Code, Error, Result};
use crate::pg::cluster::Ctl;
use crate::pg::replication::format_lsn;
use crate::plan::{self as engine, Action, Applied, Cx, Undo, change, interrupted};
use crate::report::{Change, Kind};
use futures_util::future::LocalBoxFuture;
use std::time::{Duration, Instant};

pub fn steps(plan: &mut engine::Plan<Env>, draining: bool, settings: &Settings) {
    if !draining {
        plan.push(Checkpoint);
    }
    plan.push(WritesOff { draining });
    plan.push(Drain {
        timeout: settings.drain_timeout,
    });
    plan.push(Stop);
}

/// A CHECKPOINT while writes still go on: it writes most dirty buffers
/// now, so that the checkpoints while writes are paused are short.
struct Checkpoint;

impl Action<Env> for Checkpoint {
    fn describe(&self) -> Option<Change> {
        None
    }

    fn label(&self) -> String {
        "CHECKPOINT while writes still go on".into()
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let s = cx.session()?;
            s.client
                .batch_execute("CHECKPOINT")
                .await
                .map_err(|e| crate::pg::query_error(&s.target, &e))?;
            Ok(Applied::unchanged())
        })
    }
}

/// Writes off: new transactions are read-only from the reload on.
struct WritesOff {
    /// An interrupted run already turned them off (its marker is there).
    draining: bool,
}

impl Action<Env> for WritesOff {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Sql,
            format!(
                "writes off: ALTER SYSTEM SET default_transaction_read_only = on (and {DRAIN_MARKER} = 'draining'), reload"
            ),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            // Always written (a kill may have come between the two), but
            // reported only when this run turned writes off.
            set_drain(cx, true).await?;
            cx.env.writes_off = Some(Instant::now());
            let applied = if self.draining {
                Applied::unchanged()
            } else {
                Applied::changed()
            };
            Ok(applied.undo(Rollback))
        })
    }
}

/// Writes off (`on`) or on again, in postgresql.auto.conf, and a reload.
/// ALTER SYSTEM runs outside a transaction block, one statement each.
async fn set_drain(cx: &mut Cx<Env>, on: bool) -> Result<()> {
    let s = cx.session()?;
    let t = s.target.clone();
    let q = |e: tokio_postgres::Error| crate::pg::query_error(&t, &e);
    // Before 17, ALTER SYSTEM knows a custom setting only once the session
    // has a placeholder for it.
    s.client
        .query("SELECT set_config($1, 'draining', false)", &[&DRAIN_MARKER])
        .await
        .map_err(q)?;
    let statements = if on {
        [
            format!("ALTER SYSTEM SET {DRAIN_MARKER} = 'draining'"),
            "ALTER SYSTEM SET default_transaction_read_only = on".to_string(),
        ]
    } else {
        [
            "ALTER SYSTEM RESET default_transaction_read_only".to_string(),
            format!("ALTER SYSTEM RESET {DRAIN_MARKER}"),
        ]
    };
    for st in statements {
        cx.printer.sql(&st);
        s.client.batch_execute(&st).await.map_err(q)?;
    }
    s.client
        .query("SELECT pg_reload_conf()", &[])
        .await
        .map_err(q)?;
    Ok(())
}

/// The rollback: this node up again as a writable primary. Only while
/// nothing was promoted: pg_promote() never sent by this run, and the
/// candidate, when it answers, still a standby.
pub struct Rollback;

impl Undo<Env> for Rollback {
    fn undo<'s>(self: Box<Self>, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<()>> {
        Box::pin(async move {
            if cx.env.promote_sent || candidate_promoted(cx).await {
                return Err(Error::new(
                    Code::Internal,
                    "this node was not started again: the candidate may be a primary now (pgrepctl check shows both)",
                ));
            }
            let cluster = cx.env.old.clone();
            if cluster.running().is_none() {
                cluster
                    .ctl(Ctl::Start, cx.env.ctl_timeout())
                    .map_err(|e| Error::new(Code::StartFailed, e.message))?;
            }
            if cx.session.as_ref().is_none_or(|s| s.client.is_closed()) {
                cx.session = Some(cluster.session(Duration::from_secs(5)).await?);
            }
            set_drain(cx, false).await?;
            cx.printer.info(format!(
                "rolled back: {} runs as a writable primary again; nothing was promoted",
                cluster.data_dir.display()
            ));
            cx.warnings.push(format!(
                "rolled back: {} runs as a writable primary again and the candidate was not promoted",
                cluster.data_dir.display()
            ));
            Ok(())
        })
    }
}

/// Whether the candidate answers as a primary.
async fn candidate_promoted(cx: &mut Cx<Env>) -> bool {
    let Ok(s) = cx.env.candidate().await else {
        return false;
    };
    match s.client.query_one("SELECT pg_is_in_recovery()", &[]).await {
        Ok(r) => !r.get::<_, bool>(0),
        Err(_) => false,
    }
}

/// Write transactions get `timeout` to finish; then every other client
/// session is ended and a CHECKPOINT written.
struct Drain {
    timeout: Duration,
}

impl Action<Env> for Drain {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Service,
            format!(
                "client sessions ended once write transactions finished (at most {:.0}s), then CHECKPOINT",
                self.timeout.as_secs_f64()
            ),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let started = Instant::now();
            let open = loop {
                let s = cx.session()?;
                let n: i64 = s
                    .client
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE pid <> pg_backend_pid() AND backend_xid IS NOT NULL \
                         AND backend_type = 'client backend'",
                        &[],
                    )
                    .await
                    .map_err(|e| crate::pg::query_error(&s.target, &e))?
                    .get(0);
                if n == 0 || started.elapsed() >= self.timeout {
                    break n;
                }
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = cx.interrupt.recv() => return Err(interrupted("while write transactions drained")),
                }
            };
            if open > 0 {
                cx.warnings.push(format!(
                    "{open} write transaction(s) still open after --drain-timeout: their sessions were ended (they roll back, nothing acknowledged is lost)"
                ));
            }
            let s = cx.session()?;
            let ended: i64 = s
                .client
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
                    &[],
                )
                .await
                .map_err(|e| crate::pg::query_error(&s.target, &e))?
                .get(0);
            s.client
                .batch_execute("CHECKPOINT")
                .await
                .map_err(|e| crate::pg::query_error(&s.target, &e))?;
            cx.detail("sessions_ended", ended);
            log_step(cx, "drained");
            Ok(Applied::changed())
        })
    }
}

/// A fast shutdown, confirmed clean by the control file; its checkpoint
/// location is L, what the candidate must replay past.
struct Stop;

impl Action<Env> for Stop {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Service,
            "stopped (fast shutdown), clean according to the control file".to_string(),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let timeout = cx.env.ctl_timeout().max(sender_timeout(cx).await?);
            cx.session = None;
            let cluster = cx.env.old.clone();
            cluster.stop_fast(timeout).await?;
            stopped_cleanly(cx)?;
            log_step(cx, "stopped");
            Ok(Applied::changed())
        })
    }
}

/// A shutdown waits until every walsender's standby has confirmed the
/// shutdown checkpoint, or until wal_sender_timeout ends one that does
/// not answer (a standby stuck or cut off): pg_ctl is given that long and
/// a little more, so that such a stop ends (and the candidate's proof
/// fails and rolls back) rather than a stop given up while the server is
/// still shutting down, which nothing could start again.
async fn sender_timeout(cx: &mut Cx<Env>) -> Result<Duration> {
    let s = cx.session()?;
    let ms: i64 = s
        .client
        .query_one(
            "SELECT setting::bigint FROM pg_settings WHERE name = 'wal_sender_timeout'",
            &[],
        )
        .await
        .map_err(|e| crate::pg::query_error(&s.target, &e))?
        .get(0);
    Ok(Duration::from_millis(ms.max(0) as u64) + Duration::from_secs(5))
}

/// Read L from the control file of the stopped node.
fn stopped_cleanly(cx: &mut Cx<Env>) -> Result<()> {
    let control = cx.env.old.control_data()?;
    if !control.state.is_clean_shutdown() {
        return Err(Error::new(
            Code::ToolFailed,
            format!(
                "the control file says {:?}, not a clean shutdown",
                control.state
            ),
        )
        .hint("see the server log; the switchover rolled back"));
    }
    cx.env.stop_lsn = Some(control.checkpoint_lsn);
    cx.env.stop_timeline = control.timeline;
    cx.detail("shutdown_checkpoint", format_lsn(control.checkpoint_lsn));
    Ok(())
}

/// A rerun that finds this node stopped: L from the control file, and,
/// when it is not fenced yet, the rollback registered as a fresh run's
/// writes-off step would.
pub struct Resume {
    pub rollback: bool,
}

impl Action<Env> for Resume {
    fn describe(&self) -> Option<Change> {
        None
    }

    fn label(&self) -> String {
        "resume an interrupted switchover: this node is stopped".into()
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            stopped_cleanly(cx)?;
            cx.env.writes_off = Some(Instant::now());
            let a = Applied::unchanged();
            Ok(if self.rollback { a.undo(Rollback) } else { a })
        })
    }
}
