//! Carry out a plan: files first (atomically, with a backup), then let
//! PostgreSQL's own parser judge them before anything is reloaded; then
//! SQL, reload, optional restart, and a check of the live values. Any
//! failure undoes what was done, newest first.

use super::Settings;
use super::inspect::Facts;
use super::plan::{self, Plan, Step};
use crate::error::{Code, Error, Result};
use crate::fsutil;
use crate::pg::cluster::{Ctl, LocalCluster};
use crate::pg::debian::DebianCluster;
use crate::pg::{self, Session, query_error, sql};
use crate::report::{Outcome, Printer};
use crate::secret::Secret;
use crate::tools::{self, RunAs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

enum Undo {
    File {
        path: PathBuf,
        old: String,
    },
    Sql(Secret),
    /// A backup made by this run: gone again when the run is undone.
    Backup(PathBuf),
    Reload,
}

pub async fn apply(
    settings: &Settings,
    facts: &Facts,
    plan: Plan,
    printer: &Printer,
    outcome: &mut Outcome,
) -> Result<()> {
    outcome.warnings.extend(plan.warnings.iter().cloned());
    outcome.detail("restart_command", &plan.restart_command);
    let needs_restart = plan.steps.iter().any(|s| matches!(s, Step::Restart));
    let bindir = if needs_restart && facts.debian_cluster.is_none() {
        Some(tools::find_with(
            facts.version_num / 10000,
            settings.bindir.as_deref(),
            facts.server_bindir.as_deref(),
        )?)
    } else {
        None
    };
    let mut session = pg::connect(&settings.conn, None).await?;
    let mut undo: Vec<Undo> = vec![];
    let result = run_steps(
        settings,
        facts,
        &plan,
        printer,
        outcome,
        &mut session,
        &mut undo,
        bindir.as_ref(),
    )
    .await;
    if let Err(mut err) = result {
        let rolled = rollback(&session, undo, printer).await;
        outcome.changes.clear();
        outcome.changed = false;
        match rolled {
            Ok(()) => err.message.push_str(" (every change was undone)"),
            Err(e) => err
                .message
                .push_str(&format!(" (undoing the changes also failed: {e})")),
        }
        return Err(err);
    }
    outcome.restart_required = plan.restart_required && !needs_restart;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run_steps(
    settings: &Settings,
    facts: &Facts,
    plan: &Plan,
    printer: &Printer,
    outcome: &mut Outcome,
    session: &mut Session,
    undo: &mut Vec<Undo>,
    bindir: Option<&tools::BinDir>,
) -> Result<()> {
    let mut edited_files = false;
    for step in &plan.steps {
        if let Step::EditFile { path, old, new, .. } = step {
            fsutil::check_writable(path)?;
            // The file must still be what we planned against.
            let now = fsutil::read_to_string(path)?;
            if &now != old {
                return Err(Error::new(
                    Code::Io,
                    format!("{} changed while pgrepctl was running", path.display()),
                )
                .hint("rerun pgrepctl"));
            }
            if let Some(b) = fsutil::backup_once(path, old.as_bytes())? {
                printer.debug(format!("backup of the original: {}", b.display()));
                undo.push(Undo::Backup(b));
            } else if let Some(w) = fsutil::empty_backup_warning(path, old.as_bytes()) {
                outcome.warnings.push(w);
            }
            undo.push(Undo::File {
                path: path.clone(),
                old: old.clone(),
            });
            printer.step(format!(
                "applying: edit {}: {}",
                path.display(),
                step_line(step)
            ));
            fsutil::atomic_write(path, new.as_bytes())?;
            printer.info(format!("edited {}", path.display()));
            outcome.changes.extend(plan::describe(step));
            outcome.changed = true;
            edited_files = true;
        }
    }
    if edited_files {
        validate(session, facts, plan).await?;
    }
    // The rest in plan order: role SQL, reload, restart, then slots (a
    // slot needs the wal_level that only the restart brings).
    for step in &plan.steps {
        let t = session.target.clone();
        if !matches!(step, Step::EditFile { .. }) {
            printer.step(format!("applying: {}", step_line(step)));
        }
        match step {
            Step::EditFile { .. } => continue,
            Step::AlterSystem { name, value, old } => {
                if name.contains('.') {
                    // A custom setting (pgrepctl.*): before 17, ALTER SYSTEM
                    // knows it only once the session has a placeholder.
                    session
                        .client
                        .query("SELECT set_config($1, $2, false)", &[name, value])
                        .await
                        .map_err(|e| query_error(&t, &e))?;
                }
                let sql = format!("ALTER SYSTEM SET {name} = {}", sql::literal(value));
                printer.sql(&sql);
                session
                    .client
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| config_rejected(&t, &e))?;
                undo.push(Undo::Sql(Secret::new(format!(
                    "ALTER SYSTEM SET {name} = {}",
                    sql::literal(old)
                ))));
            }
            Step::Sql {
                sql,
                undo: u,
                shown,
            } => {
                printer.sql(shown);
                session
                    .client
                    .batch_execute(sql.expose())
                    .await
                    .map_err(|e| query_error(&t, &e))?;
                if let Some(u) = u {
                    undo.push(Undo::Sql(u.clone()));
                }
            }
            Step::CreateSlot { name } => {
                printer.sql(format!(
                    "SELECT pg_create_physical_replication_slot({}, true)",
                    sql::literal(name)
                ));
                session
                    .client
                    .query(
                        "SELECT pg_create_physical_replication_slot($1, true)",
                        &[name],
                    )
                    .await
                    .map_err(|e| query_error(&t, &e))?;
                undo.push(Undo::Sql(Secret::new(format!(
                    "SELECT pg_drop_replication_slot({})",
                    sql::literal(name)
                ))));
            }
            Step::Reload => {
                printer.sql("SELECT pg_reload_conf()");
                session
                    .client
                    .query("SELECT pg_reload_conf()", &[])
                    .await
                    .map_err(|e| {
                        let mut err = query_error(&t, &e);
                        err.code = Code::ReloadFailed;
                        err
                    })?;
                undo.push(Undo::Reload);
                printer.info("reloaded the server configuration");
                verify_reloaded(session, plan).await?;
            }
            Step::Restart => {
                restart(settings, facts, printer, bindir)?;
                *session = reconnect(settings).await?;
                verify_restarted(session, plan).await?;
                printer.info("restarted the server");
            }
        }
        outcome.changes.extend(plan::describe(step));
        outcome.changed = true;
    }
    Ok(())
}

/// One line per step for -v: what is being done, secrets already redacted.
fn step_line(step: &Step) -> String {
    plan::describe(step)
        .into_iter()
        .map(|c| c.summary)
        .collect::<Vec<_>>()
        .join("; ")
}

/// PostgreSQL's own parser reads the files we wrote (the views re-read
/// them on every query) before the running server is asked to.
async fn validate(session: &Session, facts: &Facts, plan: &Plan) -> Result<()> {
    let c = &session.client;
    let t = &session.target;
    let rows = c
        .query("SELECT sourcefile, sourceline, name, setting, error, seqno FROM pg_file_settings ORDER BY seqno", &[])
        .await
        .map_err(|e| query_error(t, &e))?;
    for r in &rows {
        let err: Option<String> = r.get(4);
        if let Some(err) = err.filter(|e| !e.contains("could not be applied")) {
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
    for target in &plan.targets {
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
    let hba = c
        .query(
            "SELECT coalesce(line_number, 0), error FROM pg_hba_file_rules WHERE error IS NOT NULL",
            &[],
        )
        .await
        .map_err(|e| query_error(t, &e))?;
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

fn config_rejected(target: &str, e: &tokio_postgres::Error) -> Error {
    let mut err = query_error(target, e);
    err.code = Code::ConfigRejected;
    err
}

/// After a reload the server applies reloadable settings asynchronously;
/// poll until it has, and until restart-only ones show as pending.
async fn verify_reloaded(session: &Session, plan: &Plan) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pending = unsatisfied(session, plan, true).await?;
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

async fn verify_restarted(session: &Session, plan: &Plan) -> Result<()> {
    let pending = unsatisfied(session, plan, false).await?;
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
async fn unsatisfied(session: &Session, plan: &Plan, allow_pending: bool) -> Result<Vec<String>> {
    let names: Vec<&str> = plan.targets.iter().map(|t| t.name.as_str()).collect();
    let rows = session
        .client
        .query(
            "SELECT name, setting, pending_restart FROM pg_settings WHERE name = ANY($1)",
            &[&names],
        )
        .await
        .map_err(|e| query_error(&session.target, &e))?;
    let mut out = vec![];
    for t in &plan.targets {
        let Some(r) = rows.iter().find(|r| r.get::<_, String>(0) == t.name) else {
            continue;
        };
        let setting: String = r.get(1);
        let pending: bool = r.get(2);
        if plan::live_satisfies(t, &setting, plan::base_unit(&t.name)) {
            continue;
        }
        if allow_pending && t.postmaster && (pending || !plan.restart_required) {
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
            e.hint = Some("the configuration files were changed; fix the cause shown above and start the server".into());
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

async fn rollback(
    session: &Session,
    undo: Vec<Undo>,
    printer: &Printer,
) -> std::result::Result<(), String> {
    let mut failures = vec![];
    let mut reload = false;
    for u in undo.into_iter().rev() {
        match u {
            Undo::File { path, old } => {
                if let Err(e) = fsutil::atomic_write(&path, old.as_bytes()) {
                    failures.push(e.message);
                } else {
                    printer.info(format!("restored {}", path.display()));
                }
            }
            Undo::Sql(s) => {
                if let Err(e) = session.client.batch_execute(s.expose()).await {
                    failures.push(e.to_string());
                }
            }
            Undo::Backup(path) => {
                let _ = std::fs::remove_file(path);
            }
            Undo::Reload => reload = true,
        }
    }
    // Only once the files are back does a reload restore the old state.
    if reload {
        let _ = session.client.query("SELECT pg_reload_conf()", &[]).await;
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
