//! After the promotion: this node becomes the new primary's standby (its
//! slot there, the timeline check pg_rewind would make, a start, a wait
//! until it streams on the new timeline), a CHECKPOINT on the new primary
//! (pg_control shows the new timeline; a later pg_rewind relies on it),
//! each sibling repointed (follow, remotely on 13+; the command to run
//! there before), the old slots here dropped, and the proof: smoke-test
//! through the new primary to every standby, and check.

use super::preflight::{Checked, SiblingPlan};
use super::steps::{Env, log_step};
use crate::cli::flags::{FormatFlag, TimeoutFlag};
use crate::commands::{check, follow, smoke_test};
use crate::error::{Code, Error, Result};
use crate::pg::cluster::Ctl;
use crate::pg::replication::{format_lsn, parse_lsn};
use crate::pg::timeline::{self, History};
use crate::plan::wait::WaitFor;
use crate::plan::{self as engine, Action, Applied, Cx, change, interrupted};
use crate::report::{Change, Kind, Printer};
use futures_util::future::LocalBoxFuture;
use std::time::{Duration, Instant};

/// This node from stopped (fenced) to streaming from the new primary.
pub fn start_steps(plan: &mut engine::Plan<Env>, env: &Env) {
    if let Some(slot) = &env.checked.slot {
        plan.push(Slot { name: slot.clone() });
    }
    plan.push(WaitFor::new(
        "check that this node can follow the new primary's timeline (no rewind)",
        can_follow,
    ));
    plan.push(Start {
        shown: env.old.ctl_command(Ctl::Start, Duration::from_secs(60)).1,
    });
    plan.commit();
}

/// What every phase ends with.
pub fn finish_steps(plan: &mut engine::Plan<Env>, checked: &Checked) {
    plan.push(WaitFor::new(
        "wait until this node streams from the new primary on its timeline",
        streaming,
    ));
    plan.push(WaitFor::new("CHECKPOINT on the new primary", checkpoint));
    for s in &checked.siblings {
        plan.push(Sibling(s.clone()));
    }
    if !checked.old_slots.is_empty() {
        plan.push(DropOldSlots(checked.old_slots.clone()));
    }
    plan.push(WaitFor::new(
        "verify: smoke-test through the new primary to every standby, and check",
        verify,
    ));
}

/// This node's slot on the new primary, created unless it exists.
struct Slot {
    name: String,
}

impl Action<Env> for Slot {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Sql,
            format!(
                "physical replication slot {} created on the candidate if missing",
                self.name
            ),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let s = cx.env.candidate().await?;
            let created = s
                .client
                .query(
                    "SELECT pg_create_physical_replication_slot($1, true) \
                     WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
                    &[&self.name],
                )
                .await
                .map_err(|e| crate::pg::query_error(&s.target, &e))?;
            Ok(if created.is_empty() {
                Applied::unchanged()
            } else {
                Applied::changed()
            })
        })
    }
}

/// pg::timeline decides, as for rejoin: this node's WAL must end at or
/// before the point where the new primary's timeline began.
fn can_follow(cx: &mut Cx<Env>) -> LocalBoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let control = cx.env.old.control_data()?;
        let end = timeline::stopped_end(&control).unwrap_or(control.checkpoint_lsn);
        let mine = timeline::local_switch_points(&cx.env.old.data_dir, control.timeline)
            .map_err(|e| Error::io("cannot read this node's timeline history", e))?;
        let s = cx.env.candidate().await?;
        let t = s.target.clone();
        let row = s
            .client
            .query_one(
                "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int, \
                        pg_current_wal_flush_lsn()::text",
                &[],
            )
            .await
            .map_err(|e| crate::pg::query_error(&t, &e))?;
        let tli = row.get::<_, i32>(0) as u32;
        let flush = parse_lsn(&row.get::<_, String>(1)).unwrap_or(0);
        let theirs = if tli > 1 {
            let text: String = s
                .client
                .query_one(
                    "SELECT pg_read_file($1)",
                    &[&format!("pg_wal/{tli:08X}.history")],
                )
                .await
                .map_err(|e| crate::pg::query_error(&t, &e))?
                .get(0);
            timeline::parse_switch_points(&text)
        } else {
            vec![]
        };
        let relation = timeline::relation(
            &History::new(&mine, control.timeline),
            end,
            &History::new(&theirs, tli),
            flush,
        );
        cx.env.new_timeline = Some(tli);
        if !relation.can_follow() {
            return Err(Error::new(
                Code::RewindNeeded,
                format!(
                    "this node's WAL ends at {} on timeline {} and cannot follow the new primary's timeline {tli}: {relation:?}",
                    format_lsn(end),
                    control.timeline
                ),
            )
            .hint("it stays stopped and configured as a standby: run pgrepctl rejoin -D … --primary … here (it rewinds)"));
        }
        Ok(())
    })
}

/// Start this node, configured as the candidate's standby.
struct Start {
    shown: String,
}

impl Action<Env> for Start {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Service,
            format!("started as a standby of the new primary ({})", self.shown),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        let cluster = cx.env.old.clone();
        let r = if cluster.running().is_some() {
            Ok(Applied::unchanged())
        } else {
            cluster
                .ctl(Ctl::Start, cx.env.ctl_timeout())
                .map(|_| Applied::changed())
                .map_err(|e| {
                    Error::new(Code::StartFailed, e.message).hint(format!(
                        "it is configured as the new primary's standby; fix the cause shown, start it ({}) and rerun the same switchover",
                        cluster.start_line()
                    ))
                })
        };
        Box::pin(async move { r })
    }
}

/// This node's WAL receiver streams on the new primary's timeline.
fn streaming(cx: &mut Cx<Env>) -> LocalBoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let started = Instant::now();
        let wait = cx.env.settings.wait;
        // sender_port (11+) tells the candidate from another upstream.
        let query = if cx.env.version.receiver_shows_sender() {
            "SELECT pg_is_in_recovery(), w.status, w.received_tli, w.sender_port \
             FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver w ON true"
        } else {
            "SELECT pg_is_in_recovery(), w.status, w.received_tli, NULL::int \
             FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver w ON true"
        };
        let port = i32::from(cx.env.checked.port);
        loop {
            let last = match cx.env.old.session(Duration::from_secs(5)).await {
                Ok(s) => match s.client.query_one(query, &[]).await {
                    Ok(row) if !row.get::<_, bool>(0) => {
                        return Err(Error::new(
                            Code::NotAStandby,
                            "this node runs as a primary, not as the candidate's standby",
                        )
                        .hint("two primaries: stop writes to one of them now; pgrepctl check shows both"));
                    }
                    Ok(row) => {
                        let status: Option<String> = row.get(1);
                        let tli = row.get::<_, Option<i32>>(2).map(|t| t as u32);
                        let want = cx.env.new_timeline;
                        let from = row.get::<_, Option<i32>>(3);
                        if status.as_deref() == Some("streaming")
                            && (want.is_none() || tli == want)
                            && from.is_none_or(|p| p == port)
                        {
                            cx.env.new_timeline = tli;
                            break;
                        }
                        format!(
                            "WAL receiver {}, timeline {}",
                            status.as_deref().unwrap_or("not running"),
                            tli.map(|t| t.to_string()).unwrap_or_else(|| "-".into())
                        )
                    }
                    Err(e) => crate::pg::query_error(&s.target, &e).message,
                },
                Err(e) => e.message,
            };
            if started.elapsed() >= wait {
                return Err(Error::new(
                    Code::StandbyNotStreaming,
                    format!(
                        "this node did not stream from the new primary within {}s ({last}); server log: {}",
                        wait.as_secs(),
                        cx.env.old.log_tail()
                    ),
                )
                .hint("the new primary takes writes; this node runs as its standby: check the new primary's pg_hba.conf and the password, then rerun the same switchover"));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = cx.interrupt.recv() => return Err(interrupted("while waiting for this node to stream; rerun the same switchover to finish")),
            }
        }
        cx.detail(
            "old_primary_streaming_ms",
            started.elapsed().as_secs_f64() * 1000.0,
        );
        log_step(cx, "this node streams from the new primary");
        Ok(())
    })
}

fn checkpoint(cx: &mut Cx<Env>) -> LocalBoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let s = cx.env.candidate().await?;
        s.client
            .batch_execute("CHECKPOINT")
            .await
            .map_err(|e| crate::pg::query_error(&s.target, &e))
    })
}

/// A sibling repointed with follow (13+, over its superuser session), or
/// the follow command for its host.
struct Sibling(SiblingPlan);

impl Action<Env> for Sibling {
    fn describe(&self) -> Option<Change> {
        (self.0.remote && !self.0.follows_candidate).then(|| {
            change(
                Kind::Service,
                format!("{} repointed at the new primary (follow)", self.0.name),
            )
        })
    }

    fn label(&self) -> String {
        format!("repoint {}", self.0.name)
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let primary = format!(
                "host={} port={}",
                crate::conf::standby::quote_conninfo(&cx.env.checked.host),
                cx.env.checked.port
            );
            if !self.0.remote {
                let mut line = format!("pgrepctl follow -D PGDATA --primary '{primary}'");
                if let Some(s) = &self.0.slot {
                    line.push_str(&format!(" --slot {s}"));
                }
                let slot = self
                    .0
                    .slot
                    .as_ref()
                    .map(|s| format!("; it cascades from this node until then, and afterwards its slot here can go: SELECT pg_drop_replication_slot('{s}') on this node"))
                    .unwrap_or_default();
                cx.warnings.push(format!(
                    "{} runs a version before 13: on its host run {line}{slot}",
                    self.0.name
                ));
                let mut lines = match cx.details.remove("follow_commands") {
                    Some(serde_json::Value::Array(a)) => a,
                    _ => vec![],
                };
                lines.push(serde_json::json!(format!("{}: {line}", self.0.name)));
                cx.detail("follow_commands", lines);
                return Ok(Applied::unchanged());
            }
            let settings = follow::Settings {
                probe_password: cx.env.settings.password.clone(),
                ..follow::Settings::from_args(follow_args(&self.0, primary, cx))?
            };
            let quiet = Printer {
                quiet: true,
                json: false,
                ..cx.printer
            };
            let o = follow::run_settings(settings, &quiet)
                .await
                .map_err(|f| f.error)?;
            cx.warnings.extend(o.warnings.iter().cloned());
            Ok(if o.changed() {
                Applied::changed()
            } else {
                Applied::unchanged()
            })
        })
    }
}

fn follow_args(s: &SiblingPlan, primary: String, cx: &Cx<Env>) -> follow::Args {
    follow::Args {
        pgdata: None,
        standby: Some(s.given.clone()),
        primary,
        slot: s.slot.clone(),
        password: Default::default(),
        wait: cx.env.settings.wait,
        connect_timeout: cx.env.settings.connect_timeout,
        bindir: Default::default(),
        dry_run: Default::default(),
    }
}

/// How long the final check is repeated while a wal sender is still
/// catching up: a standby that was just restarted (this node, or a
/// sibling cascading from it before 13) shows `catchup` for a moment.
const SETTLE: Duration = Duration::from_secs(10);

/// check of the new primary and `standbys`, again every 200 ms while a
/// wal sender is still catching up, for at most [`SETTLE`]: the report
/// is of the cluster once it has settled, not of its first moment.
async fn settled_check(
    cx: &mut Cx<Env>,
    standbys: Vec<String>,
    quiet: &Printer,
) -> Result<crate::health::Report> {
    use crate::health::finding::SENDER_NOT_STREAMING;
    let started = Instant::now();
    loop {
        let report = check::run(
            check::Args::of(Some(cx.env.settings.candidate.clone()), standbys.clone()),
            quiet,
        )
        .await
        .map_err(|f| f.error)?;
        let catching_up = report
            .problems
            .iter()
            .any(|p| p.code == SENDER_NOT_STREAMING);
        if !catching_up || started.elapsed() >= SETTLE {
            return Ok(report);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = cx.interrupt.recv() => return Err(interrupted("while checking the switched-over cluster; the switchover is done, see pgrepctl check")),
        }
    }
}

/// The slots the candidate and the siblings streamed through here: on a
/// standby nobody streams through them, and they would keep WAL forever.
struct DropOldSlots(Vec<String>);

impl Action<Env> for DropOldSlots {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Sql,
            format!(
                "replication slot(s) {} dropped here (nobody streams through them now)",
                self.0.join(", ")
            ),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let s = cx.env.old.session(Duration::from_secs(5)).await?;
            let rows = s
                .client
                .query(
                    "SELECT pg_drop_replication_slot(slot_name)::text FROM pg_replication_slots \
                     WHERE slot_name = ANY($1) AND NOT active",
                    &[&self.0],
                )
                .await
                .map_err(|e| crate::pg::query_error(&s.target, &e))?;
            Ok(if rows.is_empty() {
                Applied::unchanged()
            } else {
                Applied::changed()
            })
        })
    }
}

/// smoke-test through the new primary to this node and the repointed
/// siblings, then check: both must be OK.
fn verify(cx: &mut Cx<Env>) -> LocalBoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let Some(pf) = cx.env.old.running() else {
            return Err(Error::new(Code::ServerNotRunning, "this node stopped"));
        };
        let user = cx
            .env
            .old
            .run_as
            .user_name()
            .unwrap_or_else(|| "postgres".into());
        let mut standbys = vec![format!(
            "host={} port={} user={user} dbname=postgres",
            if pf.socket_dir.is_empty() {
                "127.0.0.1"
            } else {
                &pf.socket_dir
            },
            pf.port
        )];
        standbys.extend(
            cx.env
                .checked
                .siblings
                .iter()
                .filter(|s| s.remote)
                .map(|s| s.given.clone()),
        );
        let quiet = Printer {
            quiet: true,
            json: false,
            ..cx.printer
        };
        let smoke = smoke_test::run(
            smoke_test::Args {
                primary: cx.env.settings.candidate.clone(),
                standby: standbys.clone(),
                timeout: TimeoutFlag::default(),
                cleanup: true,
                format: FormatFlag::default(),
            },
            &quiet,
        )
        .await
        .map_err(|f| f.error)?;
        smoke.require_ok(
            "smoke-test through the new primary",
            "the switchover is done; see which standby failed with pgrepctl smoke-test",
        )?;
        let report = settled_check(cx, standbys, &quiet).await?;
        cx.detail("check", report.status.as_str());
        // A failing archiver (or an expiring certificate) is reported, but
        // does not make a switchover that replicates fine a failure.
        if report.replication_status() == crate::health::Status::Critical {
            report.require_ok(
                "check",
                "the switchover is done; pgrepctl check shows the problem",
            )?;
        }
        cx.warnings.extend(
            report
                .problems
                .iter()
                .map(|p| format!("check: {}: {}", p.subject, p.message)),
        );
        Ok(())
    })
}
