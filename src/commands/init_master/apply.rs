//! Carry out a plan on the engine: files first (atomically, with a
//! backup), then PostgreSQL's own parser judges them before anything is
//! reloaded; then SQL, reload, optional restart, and a check of the live
//! values. Any failure undoes what was done, newest first.

use super::Settings;
use super::inspect::Facts;
use super::plan::{self, Plan, Target};
use crate::error::{Code, Error, Result};
use crate::pg::cluster::{Ctl, LocalCluster};
use crate::pg::debian::DebianCluster;
use crate::pg::{self, Session, query_error};
use crate::plan::{self as engine, Action, Applied, Cx, Undo, change};
use crate::report::{Change, Kind, Outcome, Printer};
use crate::tools::{self, RunAs};
use futures_util::future::LocalBoxFuture;
use std::time::{Duration, Instant};

/// What init-master's steps work with.
pub struct Env {
    pub settings: Settings,
    pub facts: Facts,
    pub targets: Vec<Target>,
    /// A restart-only setting the running server did not have at the start.
    pub restart_required: bool,
    bindir: Option<tools::BinDir>,
    /// Set as the restart begins: from then on an undo must leave the
    /// server running on its old settings.
    restart_attempted: bool,
}

/// The pg_ctl a planned restart needs (pg_ctlcluster needs none), found
/// before anything changes — in a dry run too, so that it fails where the
/// real run would.
pub fn restart_bindir(
    settings: &Settings,
    facts: &Facts,
    plan: &Plan,
) -> Result<Option<tools::BinDir>> {
    if !plan.restart || facts.debian_cluster.is_some() {
        return Ok(None);
    }
    tools::find_with(
        crate::pg::version::Version::of(facts.version_num).major(),
        settings.bindir.as_deref(),
        facts.server_bindir.as_deref(),
    )
    .map(Some)
}

pub async fn apply(
    settings: Settings,
    facts: Facts,
    plan: Plan,
    bindir: Option<tools::BinDir>,
    printer: &Printer,
    outcome: &mut Outcome,
) -> Result<()> {
    outcome.detail("restart_command", &plan.restart_command);
    let session = pg::connect(&settings.conn, None).await?;
    let targets = plan.targets.clone();
    let restart_required = plan.restart_required;
    let engine = plan.into_engine();
    outcome.warnings.extend(engine.warnings.iter().cloned());
    let env = Env {
        settings,
        facts,
        targets,
        restart_required,
        bindir,
        restart_attempted: false,
    };
    let mut cx = Cx::new(env, *printer, Some(session))?;
    engine::execute(&engine.steps, &mut cx, outcome).await?;
    outcome.restart_required = engine.restart_required;
    Ok(())
}

/// After the reload: a wait until the server shows the new values (its
/// own step, so the reload's undo stands when this check fails).
pub fn reloaded(cx: &mut Cx<Env>) -> LocalBoxFuture<'_, Result<()>> {
    Box::pin(verify_reloaded(cx))
}

/// A restart with pg_ctl (or pg_ctlcluster), then a fresh session and a
/// check of the live values.
pub struct Restart;

impl Action<Env> for Restart {
    fn describe(&self) -> Option<Change> {
        Some(change(Kind::Service, "restart"))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            cx.env.restart_attempted = true;
            restart(
                &cx.env.settings,
                &cx.env.facts,
                &cx.printer,
                cx.env.bindir.as_ref(),
            )?;
            cx.session = Some(reconnect(&cx.env.settings).await?);
            verify_restarted(cx).await?;
            cx.printer.info("restarted the server");
            Ok(Applied::changed())
        })
    }
}

/// Planned just before [`Restart`]: it changes nothing, but its undo
/// (which runs once the files are back) restarts the server on its old
/// settings when the restart was attempted — a restart that failed left
/// it down, one that worked left it on the new settings, and either way
/// "every change was undone" must be true of the running server too.
pub struct RestartBackOnUndo;

impl Action<Env> for RestartBackOnUndo {
    fn describe(&self) -> Option<Change> {
        None
    }

    fn label(&self) -> String {
        "restart (a failure from here on restarts on the old settings)".into()
    }

    fn apply<'s>(&'s self, _cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move { Ok(Applied::unchanged().undo(RestartBack)) })
    }
}

struct RestartBack;

impl Undo<Env> for RestartBack {
    /// After the files are back, and before the reload's undo, which
    /// needs the session this opens.
    fn last(&self) -> bool {
        true
    }

    fn undo<'s>(self: Box<Self>, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<()>> {
        Box::pin(async move {
            if !cx.env.restart_attempted {
                return Ok(());
            }
            cx.printer.info("restarting the server on its old settings");
            restart(
                &cx.env.settings,
                &cx.env.facts,
                &cx.printer,
                cx.env.bindir.as_ref(),
            )?;
            cx.session = Some(reconnect(&cx.env.settings).await?);
            Ok(())
        })
    }
}

/// PostgreSQL's own parser reads the files we wrote (the views re-read
/// them on every query) before the running server is asked to.
/// hba.c's complaint about a hostssl line on a server without ssl.
const SSL_DISABLED: &str = "hostssl record cannot match because SSL is disabled";

pub fn validate(cx: &mut Cx<Env>) -> LocalBoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let session = cx.session()?;
        validate_with(session, &cx.env).await
    })
}

async fn validate_with(session: &Session, env: &Env) -> Result<()> {
    let c = &session.client;
    let t = &session.target;
    let rows = c
        .query("SELECT sourcefile, sourceline, name, setting, error, seqno FROM pg_file_settings ORDER BY seqno", &[])
        .await
        .map_err(|e| query_error(t, &e))?;
    for r in &rows {
        let err: Option<String> = r.get(4);
        if let Some(err) = err.filter(|e| !plan::is_apply_notice(e)) {
            let file: Option<String> = r.get(0);
            let line: Option<i32> = r.get(1);
            return Err(Error::new(
                Code::ConfigRejected,
                format!(
                    "PostgreSQL rejects the edited configuration: {}:{}: {err}",
                    file.unwrap_or_default(),
                    line.unwrap_or(0)
                ),
            )
            .hint("the original files are restored; fix the line PostgreSQL names (or what includes it) and rerun"));
        }
    }
    overridden(&rows, env)?;
    hba_rejected(session, env).await
}

/// A second check on the same rows: an include or a later line may override what pgrepctl wrote.
fn overridden(rows: &[tokio_postgres::Row], env: &Env) -> Result<()> {
    let (facts, targets) = (&env.facts, &env.targets);
    for target in targets {
        let last = rows
            .iter()
            .rfind(|r| r.get::<_, Option<String>>(2).as_deref() == Some(target.name.as_str()));
        let auto = facts.auto_conf.display().to_string();
        if let Some(r) = last {
            let file: Option<String> = r.get(0);
            let value: Option<String> = r.get(3);
            if file.as_deref() == Some(auto.as_str()) {
                continue; // set by ALTER SYSTEM afterwards
            }
            if !plan::live_satisfies(
                target,
                value.as_deref().unwrap_or(""),
                plan::base_unit(&target.name),
            ) {
                return Err(Error::new(
                    Code::ConfigRejected,
                    format!(
                        "after the edit PostgreSQL reads {} = {:?} from {}, not the value pgrepctl wrote",
                        target.name,
                        value.unwrap_or_default(),
                        file.unwrap_or_default()
                    ),
                )
                .hint("an include or a later line overrides it; check the configuration files"));
            }
        }
    }
    Ok(())
}

/// pg_hba.conf is read by a view of its own, so its check is a step of its own.
async fn hba_rejected(session: &Session, env: &Env) -> Result<()> {
    let (facts, targets) = (&env.facts, &env.targets);
    let c = &session.client;
    let t = &session.target;
    let hba = c
        .query(
            "SELECT coalesce(line_number, 0), error FROM pg_hba_file_rules WHERE error IS NOT NULL",
            &[],
        )
        .await
        .map_err(|e| query_error(t, &e))?;
    // hostssl lines read as errors while ssl is off; the reload that
    // follows turns it on (the server loads such a file all the same).
    let ssl_coming = targets.iter().any(|t| t.name == "ssl");
    let hba: Vec<_> = hba
        .into_iter()
        .filter(|r| !(ssl_coming && r.get::<_, String>(1) == SSL_DISABLED))
        .collect();
    if let Some(r) = hba.first() {
        let line: i32 = r.get(0);
        let err: String = r.get(1);
        return Err(Error::new(
            Code::ConfigRejected,
            format!(
                "PostgreSQL rejects the edited pg_hba.conf: {}:{line}: {err}",
                facts.hba_file.display()
            ),
        )
        .hint("the original pg_hba.conf is restored; fix the line PostgreSQL names and rerun"));
    }
    Ok(())
}

/// After a reload the server applies reloadable settings asynchronously;
/// poll until it has, and until restart-only ones show as pending.
async fn verify_reloaded(cx: &mut Cx<Env>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pending = unsatisfied(cx.session()?, &cx.env, true).await?;
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::new(
                Code::VerifyFailed,
                format!(
                    "after the reload the server still shows {}",
                    pending.join(", ")
                ),
            )
            .hint("check the server log for configuration errors"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn verify_restarted(cx: &mut Cx<Env>) -> Result<()> {
    let pending = unsatisfied(cx.session()?, &cx.env, false).await?;
    if pending.is_empty() {
        Ok(())
    } else {
        Err(Error::new(
            Code::VerifyFailed,
            format!("after the restart the server shows {}", pending.join(", ")),
        )
        .hint("check the server log and the configuration files"))
    }
}

/// Targets whose live value falls short; with `allow_pending`, a
/// restart-only setting counts as done when PostgreSQL marks it pending.
async fn unsatisfied(session: &Session, env: &Env, allow_pending: bool) -> Result<Vec<String>> {
    let names: Vec<&str> = env.targets.iter().map(|t| t.name.as_str()).collect();
    let rows = session
        .client
        .query(
            "SELECT name, setting, pending_restart FROM pg_settings WHERE name = ANY($1)",
            &[&names],
        )
        .await
        .map_err(|e| query_error(&session.target, &e))?;
    let mut out = vec![];
    for t in &env.targets {
        let Some(r) = rows.iter().find(|r| r.get::<_, String>(0) == t.name) else {
            continue;
        };
        let setting: String = r.get(1);
        let pending: bool = r.get(2);
        if plan::live_satisfies(
            t,
            &plan::shown_value(&t.name, &setting),
            plan::base_unit(&t.name),
        ) {
            continue;
        }
        if allow_pending && t.postmaster && (pending || !env.restart_required) {
            continue;
        }
        // Before 15 the server hides archive_command until archive_mode
        // is on, which takes the pending restart.
        if allow_pending && t.name == "archive_command" && setting == "(disabled)" {
            continue;
        }
        out.push(format!("{} = {setting}", t.name));
    }
    Ok(out)
}

fn restart(
    settings: &Settings,
    facts: &Facts,
    printer: &Printer,
    bindir: Option<&tools::BinDir>,
) -> Result<()> {
    printer.info("restarting the server");
    let _ = settings;
    let data_dir = &facts.data_directory;
    let debian = facts
        .debian_cluster
        .as_ref()
        .map(|(version, cluster)| DebianCluster {
            version: version.clone(),
            cluster: cluster.clone(),
            config_dir: facts.config_file.parent().unwrap_or(data_dir).to_path_buf(),
            data_dir: data_dir.clone(),
        });
    // pg_ctlcluster needs no bin directory of ours; pg_ctl does.
    let bindir = match (bindir, &debian) {
        (Some(b), _) => b.clone(),
        (None, Some(d)) => tools::BinDir {
            path: d.bindir(),
            major: pg::version::Version::of(facts.version_num).major(),
        },
        (None, None) => return Err(super::internal("no pg_ctl for the restart")),
    };
    LocalCluster::with_debian(data_dir, bindir, RunAs::owner_of(data_dir), debian)
        .config_file(&facts.config_file)
        .ctl(Ctl::Restart, Duration::from_secs(120))
        .map(|_| ())
        .map_err(|mut e| {
            e.code = Code::RestartFailed;
            e.hint = Some("fix the cause shown above and rerun; the old configuration is put back and the server started on it (the message says whether that worked)".into());
            e
        })
}

async fn reconnect(settings: &Settings) -> Result<Session> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match pg::connect(&settings.conn, Some(Duration::from_secs(5))).await {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
