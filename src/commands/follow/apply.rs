//! follow's plan on the engine: the slot on the new primary (dropped
//! again if a later step fails), the configuration (files on this host,
//! or ALTER SYSTEM over the superuser session), the reload, restart or
//! start that makes the server use it, the commit point, and the proof:
//! the WAL receiver streams from the new primary on its timeline, and on
//! 13+ the postmaster did not restart.

use super::Settings;
use super::conninfo::Target;
use super::inspect::{self, Node};
use super::plan::{Decided, Service};
use super::probe::Primary;
use crate::error::{Code, Error, Result};
use crate::pg::cluster::Ctl;
use crate::plan::file::EditFile;
use crate::plan::sql::{AlterSystem, Reload};
use crate::plan::wait::WaitFor;
use crate::plan::{self as engine, Action, Applied, Cx, Undo, change, interrupted};
use crate::report::{Change, Kind, Outcome, Printer};
use futures_util::future::LocalBoxFuture;
use std::time::{Duration, Instant};

pub struct Env {
    pub settings: Settings,
    pub node: Node,
    pub primary: Primary,
    pub target: Target,
    pub service: Service,
}

pub fn steps(settings: &Settings, node: &Node, decided: &Decided) -> engine::Plan<Env> {
    let mut plan = engine::Plan::default();
    plan.warnings.extend(decided.warnings.iter().cloned());
    if let Some(slot) = &decided.slot {
        plan.push(EnsureSlot {
            slot: slot.clone(),
            summary: format!(
                "physical replication slot {slot} created on {} if missing",
                settings.target.name()
            ),
        });
    }
    let owner = node.cluster().and_then(|c| c.run_as.ids);
    for f in &decided.files {
        let mut e = EditFile::new(
            f.path.clone(),
            f.old.clone(),
            f.new.clone(),
            f.summary.clone(),
        );
        e.secret = f.secret;
        e.owner = owner;
        e.redact = settings.password.as_ref().map(|p| p.expose().to_string());
        plan.push(e);
    }
    for a in &decided.alter {
        plan.push(AlterSystem {
            name: a.name.clone(),
            value: a.value.clone(),
            old: a.old.clone(),
        });
    }
    match decided.service {
        Service::None => {}
        Service::Reload => plan.push(Reload),
        Service::Restart | Service::Start => {
            let cluster = node
                .cluster()
                .expect("restart and start are planned for -D only");
            let ctl = if decided.service == Service::Start {
                Ctl::Start
            } else {
                Ctl::Restart
            };
            plan.push(Server {
                ctl,
                shown: cluster.ctl_command(ctl, ctl_timeout(settings)).1,
            });
        }
    }
    plan.commit();
    plan.push(WaitFor::new(
        "wait until the standby streams from the new primary on its timeline",
        wait_streaming,
    ));
    plan
}

fn ctl_timeout(settings: &Settings) -> Duration {
    settings.wait.max(Duration::from_secs(5))
}

pub async fn apply(
    env: Env,
    plan: engine::Plan<Env>,
    printer: &Printer,
    outcome: &mut Outcome,
) -> Result<()> {
    outcome.warnings.extend(plan.warnings.iter().cloned());
    let mut env = env;
    let session = env.node.session.take();
    let mut cx = Cx::new(env, *printer, session)?;
    engine::execute(&plan.steps, &mut cx, outcome).await?;
    let how = match (cx.env.service, outcome.details.get("postmaster_restarted")) {
        (Service::Reload, Some(serde_json::Value::Bool(false))) => {
            " (reloaded: the postmaster did not restart)"
        }
        (Service::Restart, _) if cx.env.node.version.primary_conninfo_reloads() => {
            " (restarted: recovery_target_timeline takes a restart)"
        }
        (Service::Restart, _) => " (restarted: before 13 primary_conninfo takes a restart)",
        _ => "",
    };
    outcome.epilogue = Some(format!(
        "{} streams from {} on timeline {}{how}.\n",
        cx.env.node.name(),
        cx.env.target.name(),
        cx.env.primary.identity.timeline
    ));
    Ok(())
}

/// The slot on the new primary over the replication connection, unless
/// it exists; dropped again when a later step fails.
struct EnsureSlot {
    slot: String,
    summary: String,
}

impl Action<Env> for EnsureSlot {
    fn describe(&self) -> Option<Change> {
        Some(change(Kind::Sql, self.summary.clone()))
    }

    fn label(&self) -> String {
        format!(
            "create replication slot {} on the new primary unless it exists",
            self.slot
        )
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let client = &cx.env.primary.client;
            cx.printer.sql(format!(
                "CREATE_REPLICATION_SLOT {} PHYSICAL RESERVE_WAL",
                self.slot
            ));
            if !client.ensure_physical_slot(&self.slot).await? {
                return Ok(Applied::unchanged());
            }
            cx.printer
                .info(format!("created replication slot {}", self.slot));
            Ok(Applied::changed().undo(DropSlot(self.slot.clone())))
        })
    }
}

/// Drops the slot this run created: it would keep WAL on the primary for
/// nobody. It runs last, once the standby's old configuration is back
/// and reloaded, so that its WAL receiver has let go of the slot
/// (`DROP_REPLICATION_SLOT … WAIT` waits for that).
struct DropSlot(String);

impl Undo<Env> for DropSlot {
    fn last(&self) -> bool {
        true
    }

    fn undo<'s>(self: Box<Self>, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<()>> {
        Box::pin(async move {
            let client = &cx.env.primary.client;
            let slot = self.0;
            let dropped = async {
                let mut conn = client.connect().await?;
                let r = conn.drop_slot(&slot).await;
                conn.close().await;
                r
            }
            .await;
            dropped.map_err(|e| {
                Error::new(
                    Code::SlotConflict,
                    format!(
                        "the slot {slot} this run created is still on the new primary: {}",
                        client.error(&e).message
                    ),
                )
                .hint(format!(
                    "drop it there: SELECT pg_drop_replication_slot('{slot}')"
                ))
            })
        })
    }
}

/// Restart the standby (before 13, primary_conninfo takes one) or start a
/// stopped one.
struct Server {
    ctl: Ctl,
    shown: String,
}

impl Action<Env> for Server {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Service,
            match self.ctl {
                Ctl::Start => format!("started ({})", self.shown),
                _ => format!("restarted to stream from the new primary ({})", self.shown),
            },
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        let settings = &cx.env.settings;
        let r = match cx.env.node.cluster() {
            None => Err(Error::new(
                Code::Internal,
                "a restart was planned for a standby on another host",
            )),
            Some(cluster) => cluster
                .ctl(self.ctl, ctl_timeout(settings))
                .map(|_| Applied::changed().undo(ServerBack(self.ctl)))
                .map_err(|e| {
                    let code = if self.ctl == Ctl::Start {
                        Code::StartFailed
                    } else {
                        Code::RestartFailed
                    };
                    Error::new(code, e.message).hint(format!(
                        "the configuration files were put back as they were; fix the cause shown, start the server ({}) and rerun",
                        cluster.start_line()
                    ))
                }),
        };
        Box::pin(async move { r })
    }
}

/// After the files are put back: a restarted server restarts again (to
/// use them), a started one stops.
struct ServerBack(Ctl);

impl Undo<Env> for ServerBack {
    fn undo<'s>(self: Box<Self>, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<()>> {
        let back = if self.0 == Ctl::Start {
            Ctl::Stop
        } else {
            Ctl::Restart
        };
        let r = match cx.env.node.cluster() {
            Some(c) => c.ctl(back, ctl_timeout(&cx.env.settings)).map(|_| ()),
            None => Ok(()),
        };
        Box::pin(async move { r })
    }

    fn last(&self) -> bool {
        true
    }
}

/// What the WAL receiver shows once it follows: streaming, from the new
/// primary's host and port, on its timeline.
#[derive(Debug, Clone, serde::Serialize)]
struct Streaming {
    sender: String,
    timeline: u32,
    seconds: f64,
}

fn wait_streaming(cx: &mut Cx<Env>) -> LocalBoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let started = Instant::now();
        let (wait, tli) = (cx.env.settings.wait, cx.env.primary.identity.timeline);
        let target = cx.env.target.clone();
        let mut last;
        loop {
            if let Some(c) = cx.env.node.cluster().filter(|c| c.running().is_none()) {
                return Err(stopped(c));
            }
            match poll(cx).await {
                Ok(Some(r))
                    if super::plan::streams_from(Some(&r), &target) && r.timeline == Some(tli) =>
                {
                    break;
                }
                Ok(r) => {
                    last = match r {
                        Some(r) => format!(
                            "WAL receiver {} from host={} port={} on timeline {}",
                            r.status,
                            r.host.unwrap_or_default(),
                            r.port.map(|p| p.to_string()).unwrap_or_default(),
                            r.timeline.map(|t| t.to_string()).unwrap_or_default()
                        ),
                        None => "no WAL receiver".into(),
                    };
                }
                Err(e) => last = e.message,
            }
            if started.elapsed() >= wait {
                return Err(not_streaming(cx, wait, &last));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = cx.interrupt.recv() => return Err(interrupted("while waiting for the standby to stream from the new primary; its new configuration stays")),
            }
        }
        cx.detail(
            "streaming",
            Streaming {
                sender: target.name(),
                timeline: tli,
                seconds: started.elapsed().as_secs_f64(),
            },
        );
        postmaster_unchanged(cx).await
    })
}

/// The WAL receiver, over the session (reconnected after a restart).
async fn poll(cx: &mut Cx<Env>) -> Result<Option<inspect::Receiver>> {
    let version = cx.env.node.version;
    if cx.session.is_none() {
        if let Some(c) = cx.env.node.cluster() {
            cx.session = Some(c.session(Duration::from_secs(5)).await?);
        }
    }
    let r = inspect::receiver(cx.session()?, version).await;
    if r.is_err() && cx.env.node.cluster().is_some() {
        cx.session = None;
    }
    r
}

/// The standby's server went away after it was repointed: PostgreSQL's
/// startup process can PANIC when the WAL it received from the dead
/// primary ends inside a record that crosses into a segment the new
/// timeline replaced. Started again, it fetches the new timeline from the
/// segment where it forked.
fn stopped(cluster: &crate::pg::cluster::LocalCluster) -> Error {
    Error::new(
        Code::StandbyNotStreaming,
        format!(
            "the standby's server stopped after it was repointed; server log: {}",
            cluster.log_tail()
        ),
    )
    .hint(format!(
        "its new configuration stays: start it again ({}); it then fetches the new timeline from the new primary (pgrepctl check shows it)",
        cluster.start_line()
    ))
}

fn not_streaming(cx: &Cx<Env>, wait: Duration, last: &str) -> Error {
    let log = cx
        .env
        .node
        .cluster()
        .map(|c| format!("; server log: {}", c.log_tail()))
        .unwrap_or_default();
    Error::new(
        Code::StandbyNotStreaming,
        format!(
            "{} did not stream from {} on timeline {} within {}s ({last}){log}",
            cx.env.node.name(),
            cx.env.target.name(),
            cx.env.primary.identity.timeline,
            wait.as_secs()
        ),
    )
    .hint("its new configuration stays; see its server log: the new primary's pg_hba.conf, the password or the network, or WAL the new primary no longer has (\"requested WAL segment … has already been removed\": keep WAL there with wal_keep_size or a slot, or clone the standby again); or wait longer with --wait")
}

/// Whether the postmaster is the one from before: on 13+ a reload is all
/// follow needs, and this proves it.
async fn postmaster_unchanged(cx: &mut Cx<Env>) -> Result<()> {
    let Some(before) = cx.env.node.postmaster_start.clone() else {
        return Ok(());
    };
    let s = cx.session()?;
    let now: String = s
        .client
        .query_one("SELECT pg_postmaster_start_time()::text", &[])
        .await
        .map_err(|e| crate::pg::query_error(&s.target, &e))?
        .get(0);
    let restarted = now != before;
    cx.detail("postmaster_restarted", restarted);
    if restarted && cx.env.service == Service::Reload {
        cx.warnings.push(format!(
            "the standby's postmaster restarted during follow (started {before}, now {now}): something else restarted it"
        ));
    }
    Ok(())
}
