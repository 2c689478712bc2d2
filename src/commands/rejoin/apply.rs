//! rejoin's plan on the engine. Follow: the standby configuration, start,
//! commit, wait until streaming. Rewind: crash recovery first when the
//! node did not shut down cleanly, then pg_rewind (its configuration files
//! kept and put back), then the same standby steps. Re-clone: the old
//! directory moved aside, clone-standby run. A failed rewind with
//! `--reclone-on-failure` runs the re-clone plan after it.

use super::Args;
use super::inspect::{Facts, Settings};
use super::plan::Decision;
use super::reclone;
use super::rewind::{Checks, Source};
use crate::error::{Code, Error, Result};
use crate::pg::cluster::{Ctl, LocalCluster};
use crate::pg::replication::ReplClient;
use crate::pg::version::Version;
use crate::plan::file::EditFile;
use crate::plan::wait::WaitFor;
use crate::plan::{self as engine, Action, Applied, Cx, SyncUndo, change, interrupted};
use crate::report::{Change, Kind, Outcome, Printer};
use futures_util::future::LocalBoxFuture;
use std::time::{Duration, Instant};

/// What rejoin's steps work with.
pub struct Env {
    pub cluster: LocalCluster,
    pub version: Version,
    /// The new primary's timeline, which the standby must stream on.
    pub primary_timeline: u32,
    pub wait: Duration,
    pub source: Option<Source>,
    /// Replication connections to the new primary, with the standby's
    /// credentials (the slot).
    pub repl: ReplClient,
    /// pg_rewind --dry-run ran in the preflight (a cleanly stopped node).
    pub dry_run_done: bool,
    pub reclone: reclone::Child,
}

pub fn plan(
    args: &Args,
    settings: &Settings,
    facts: &Facts,
    decision: &Decision,
    checks: &Checks,
) -> Result<engine::Plan<Env>> {
    let mut plan = engine::Plan::default();
    match decision {
        Decision::Nothing => {}
        Decision::Reclone { .. } => {
            reclone::steps(&mut plan, &reclone::Child::new(args, settings, facts));
        }
        Decision::Follow { .. } => standby_steps(&mut plan, settings, facts, false)?,
        Decision::Rewind { crash_recovery, .. } => {
            // Neither crash recovery nor a rewind can be taken back: each
            // is a commit point, and stays reported when a later step fails.
            if *crash_recovery {
                plan.push(super::recovery::CrashRecovery::new(&facts.cluster));
                plan.commit();
            }
            let source = checks.source.clone().ok_or_else(|| {
                Error::new(Code::Internal, "a rewind was planned without its source")
            })?;
            plan.push(super::recovery::Rewind::new(&facts.cluster, &source));
            plan.commit();
            standby_steps(&mut plan, settings, facts, true)?;
        }
    }
    Ok(plan)
}

/// The standby configuration, the start, the commit point, the wait.
/// After a rewind the configuration stays even if the start fails
/// (`keep_config`): a rewound node without it would come up as a second
/// primary when someone starts it by hand.
fn standby_steps(
    plan: &mut engine::Plan<Env>,
    settings: &Settings,
    facts: &Facts,
    keep_config: bool,
) -> Result<()> {
    if let Some(slot) = &settings.standby.slot {
        plan.push(EnsureSlot {
            slot: slot.to_string(),
        });
    }
    for e in standby_edits(settings, facts)? {
        plan.push(e);
    }
    if keep_config {
        plan.commit();
    }
    plan.push(Start {
        shown: facts
            .cluster
            .ctl_command(Ctl::Start, Duration::from_secs(60))
            .1,
        primary: settings.standby.primary_name(),
    });
    // A started standby stays, even when it is slow to stream.
    plan.commit();
    plan.push(WaitFor::new(
        format!(
            "wait until it streams from the new primary on timeline {}",
            facts.primary.timeline
        ),
        wait_streaming,
    ));
    Ok(())
}

/// The files that make the node a standby of the new primary
/// (`commands::standby_files`), planned against the files as they are
/// now: a rewind puts them back before these are written.
pub fn standby_edits(settings: &Settings, facts: &Facts) -> Result<Vec<EditFile>> {
    let s = &settings.standby;
    crate::commands::standby_files::StandbyFiles {
        data_dir: &facts.cluster.data_dir,
        version: facts.version,
        conninfo: &s.conninfo,
        slot: s.slot.as_deref(),
        passfile: s.passfile.clone().zip(s.password_line()),
        drop: &[],
        owner: facts.cluster.run_as.ids,
        auto_conf_then: None,
    }
    .edits()
}

pub async fn apply(
    args: Args,
    settings: Settings,
    facts: Facts,
    checks: Checks,
    plan: engine::Plan<Env>,
    printer: &Printer,
    outcome: &mut Outcome,
) -> Result<()> {
    outcome.warnings.extend(plan.warnings.iter().cloned());
    let env = Env {
        reclone: reclone::Child::new(&args, &settings, &facts),
        cluster: facts.cluster.clone(),
        version: facts.version,
        primary_timeline: facts.primary.timeline,
        wait: args.wait,
        source: checks.source.clone(),
        repl: settings.client(&facts.cluster)?,
        dry_run_done: checks.dry_run.is_some(),
    };
    let mut cx = Cx::new(env, *printer, None)?;
    let result = engine::execute(&plan.steps, &mut cx, outcome).await;
    outcome.warnings.append(&mut cx.warnings);
    outcome.details.append(&mut cx.details);
    match result {
        Err(e) if e.code == Code::RewindFailed && args.reclone_on_failure => {
            outcome.warnings.push(format!(
                "pg_rewind failed ({}); re-cloning (--reclone-on-failure)",
                e.message
            ));
            let mut again = engine::Plan::default();
            reclone::steps(&mut again, &cx.env.reclone);
            engine::execute(&again.steps, &mut cx, outcome).await?;
            outcome.details.append(&mut cx.details);
            outcome.warnings.append(&mut cx.warnings);
        }
        other => other?,
    }
    if outcome.changed() {
        outcome.epilogue = Some(format!(
            "{} is a standby of {} now, on timeline {}.\n",
            facts.cluster.data_dir.display(),
            settings.standby.primary_name(),
            facts.primary.timeline
        ));
    }
    Ok(())
}

/// Start the node, now configured as a standby, through its LocalCluster.
struct Start {
    shown: String,
    primary: String,
}

impl Action<Env> for Start {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Service,
            format!("started as a standby of {} ({})", self.primary, self.shown),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        let r = start(cx);
        Box::pin(async move { r })
    }
}

fn start(cx: &mut Cx<Env>) -> Result<Applied<Env>> {
    let timeout = cx.env.wait.max(Duration::from_secs(5));
    cx.env.cluster.ctl(Ctl::Start, timeout).map_err(|e| {
        Error::new(Code::StartFailed, e.message)
            .hint("the node is configured as a standby; fix the cause shown and start it")
    })?;
    Ok(Applied::changed().undo(SyncUndo(move |cx: &mut Cx<Env>| {
        cx.env.cluster.stop_if_running(timeout).map(|_| ())
    })))
}

/// Poll the node until its WAL receiver streams on the primary's timeline.
fn wait_streaming(cx: &mut Cx<Env>) -> LocalBoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let started = Instant::now();
        let want = cx.env.primary_timeline as i32;
        let query = "SELECT pg_is_in_recovery(), w.status, w.received_tli \
                     FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver w ON true";
        loop {
            let last;
            match cx.env.cluster.session(Duration::from_secs(5)).await {
                Ok(s) => match s.client.query_one(query, &[]).await {
                    Ok(row) => {
                        if !row.get::<_, bool>(0) {
                            return Err(Error::new(
                                Code::NotAStandby,
                                "the node started as a primary, not as a standby",
                            )
                            .hint("its standby.signal or recovery.conf is missing: rerun pgrepctl rejoin after stopping it"));
                        }
                        let status: Option<String> = row.get(1);
                        let tli: Option<i32> = row.get(2);
                        if status.as_deref() == Some("streaming") && tli == Some(want) {
                            cx.detail("streaming_seconds", started.elapsed().as_secs_f64());
                            return Ok(());
                        }
                        last = format!(
                            "WAL receiver {}, timeline {}",
                            status.as_deref().unwrap_or("not running"),
                            tli.map(|t| t.to_string()).unwrap_or_else(|| "-".into())
                        );
                    }
                    Err(e) => last = crate::pg::query_error(&s.target, &e).message,
                },
                Err(e) => last = e.message,
            }
            if started.elapsed() >= cx.env.wait {
                return Err(Error::new(
                    Code::StandbyNotStreaming,
                    format!(
                        "the node did not stream from the new primary on timeline {want} within {}s ({last}); server log: {}",
                        cx.env.wait.as_secs(),
                        cx.env.cluster.log_tail()
                    ),
                )
                .hint("it runs as a standby; check the new primary's pg_hba.conf, the password and the network, or wait longer with --wait"));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = cx.interrupt.recv() => return Err(interrupted("while waiting for the node to stream; it runs as a standby")),
            }
        }
    })
}

/// --slot on the new primary, created over the replication connection
/// unless it exists (as clone-standby does); dropped again on an undo.
struct EnsureSlot {
    slot: String,
}

impl Action<Env> for EnsureSlot {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Sql,
            format!(
                "physical replication slot {} created on the new primary if missing",
                self.slot
            ),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        let slot = self.slot.clone();
        cx.printer.sql(format!(
            "CREATE_REPLICATION_SLOT {slot} PHYSICAL RESERVE_WAL"
        ));
        let r = match cx.env.repl.ensure_physical_slot_blocking(&slot) {
            Ok(true) => Ok(Applied::changed().undo(SyncUndo(move |cx: &mut Cx<Env>| {
                cx.env.repl.drop_slot_blocking(&slot).map_err(|e| {
                    Error::new(
                        Code::SlotConflict,
                        format!(
                            "the slot {slot} this run created is still on the new primary: {}",
                            cx.env.repl.error(&e).message
                        ),
                    )
                    .hint(format!(
                        "drop it there: SELECT pg_drop_replication_slot('{slot}')"
                    ))
                })
            }))),
            Ok(false) => Ok(Applied::unchanged()),
            Err(e) => Err(e),
        };
        Box::pin(async move { r })
    }
}
