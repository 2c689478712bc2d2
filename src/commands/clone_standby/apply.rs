//! clone-standby's plan on the engine: slot, copy, configuration, swap
//! into place, start, wait. Until the swap nothing at the target changes;
//! until the standby has started, a failure undoes everything (the copy
//! goes, what was at the target comes back, a slot this run made is
//! dropped). After the start the standby stays even if it is slow to
//! catch up.

use super::configure::{self, Edit};
use super::copy;
use super::plan::{Action as Decision, Plan as Decided, Replace};
use super::preflight::Facts;
use super::settings::Settings;
use super::start;
use crate::error::{Code, Error, Result};
use crate::plan::file::EditFile;
use crate::plan::wait::WaitFor;
use crate::plan::{self as engine, Action, Applied, Cx, SyncUndo, Undo, change};
use crate::report::{Change, Kind, Outcome, Printer};
use crate::units::human_bytes;
use futures_util::future::LocalBoxFuture;
use std::path::PathBuf;

/// What clone-standby's steps work with.
pub struct Env {
    pub settings: Settings,
    pub facts: Facts,
    /// The copy's sync, running while its configuration is computed.
    sync: Option<std::thread::JoinHandle<Result<()>>>,
    /// Set as a restart of the running standby begins: from then on an
    /// undo must leave it running on its old configuration.
    restart_attempted: bool,
}

/// The steps for the decision taken, from what is known before anything
/// changes. A fresh copy's configuration is computed once the copy exists;
/// a standby that is already in place has its edits known now.
pub fn steps(settings: &Settings, facts: &Facts, decided: &Decided) -> Result<engine::Plan<Env>> {
    let mut plan = engine::Plan::default();
    let leftovers = copy::leftovers(&facts.target);
    for path in leftovers.copies {
        plan.push(RemoveCopy { path });
    }
    match decided.action {
        Decision::Clone { replace } => {
            let tmp = copy::temp_dir(&facts.target);
            let keep_at = (replace == Replace::Keep).then(|| {
                PathBuf::from(format!(
                    "{}.replaced-{}",
                    settings.pgdata.display(),
                    crate::units::utc_stamp()
                ))
            });
            if let Some(at) = &keep_at {
                plan.warnings.push(format!(
                    "{} last ran as a primary of this cluster and may hold commits {} never received: it is kept at {} once the new standby runs; remove it when nothing there is needed",
                    settings.pgdata.display(),
                    settings.primary_name(),
                    at.display()
                ));
            }
            let replace = replace != Replace::Nothing;
            if let Some(slot) = &settings.slot {
                let inherited = leftovers
                    .slots
                    .iter()
                    .any(|m| m.created && m.slot == slot.as_str());
                plan.push(EnsureSlot {
                    slot: slot.to_string(),
                    summary: format!(
                        "physical replication slot {slot} created on {} if missing",
                        settings.primary_name()
                    ),
                    exists: facts.slot_exists.or(inherited.then_some(true)),
                    inherited,
                    marker: copy::Marker::path_for(&settings.pgdata),
                });
            }
            plan.push(Copy {
                tmp: tmp.clone(),
                change: copy_change(settings, facts, replace, &decided.compression),
                compression: decided.compression.clone(),
            });
            plan.push(ConfigureCopy {
                tmp: tmp.clone(),
                change: configure_change(settings, facts),
            });
            plan.push(Swap {
                tmp,
                target: settings.pgdata.clone(),
                replace,
                keep_at,
            });
            if !settings.no_start {
                plan.push(Start {
                    restart: false,
                    fresh: true,
                    shown: start::shown(settings, facts, false),
                });
            }
        }
        Decision::Reconcile { running } => reconcile_steps(settings, facts, running, &mut plan)?,
    }
    plan.commit();
    if !settings.no_start {
        plan.push(WaitFor::new(
            "wait until the standby streams and has caught up",
            wait_streaming,
        ));
    }
    Ok(plan)
}

/// A standby already in place: its configuration edits, then a reload
/// when the running server re-reads every changed setting, a restart
/// when not (or `restart_required` with --no-start), a start when stopped.
fn reconcile_steps(
    settings: &Settings,
    facts: &Facts,
    running: bool,
    plan: &mut engine::Plan<Env>,
) -> Result<()> {
    let edits = configure::compute(settings, facts, &settings.pgdata, &settings.pgdata)?;
    let changed = !edits.is_empty();
    let reload = running && changed && reload_enough(&edits, facts.primary.version_num);
    if running && !reload && restore_changed(&edits) {
        plan.warnings.push(format!(
            "restore_command changes take a restart before PostgreSQL 14: {}",
            if settings.no_start {
                "it applies at the standby's next restart (restart_required)"
            } else {
                "the standby is restarted to apply it"
            }
        ));
    }
    for e in edits {
        plan.push(edit_step(settings, facts, e));
    }
    if reload {
        plan.push(Reload);
    } else if running && changed && settings.no_start {
        plan.restart_required = true;
    } else if !settings.no_start && (!running || changed) {
        if running {
            plan.push(RestartBackOnUndo);
        }
        plan.push(Start {
            restart: running,
            fresh: false,
            shown: start::shown(settings, facts, running),
        });
    }
    Ok(())
}

pub async fn apply(
    settings: Settings,
    facts: Facts,
    plan: engine::Plan<Env>,
    printer: &Printer,
    outcome: &mut Outcome,
) -> Result<()> {
    remove_leftovers(&settings, &facts, printer);
    outcome.warnings.extend(plan.warnings.iter().cloned());
    let env = Env {
        settings,
        facts,
        sync: None,
        restart_attempted: false,
    };
    let mut cx = Cx::new(env, *printer, None)?;
    let done = engine::execute(&plan.steps, &mut cx, outcome).await;
    if done.is_ok() || outcome.changed() {
        // The standby is in place, configured with its slot (or this run
        // made none): no marker, this run's or a killed one's, still
        // speaks for a slot. An undone run keeps them for the next.
        let _ = std::fs::remove_file(copy::Marker::path_for(&cx.env.settings.pgdata));
        for m in copy::leftovers(&cx.env.facts.target).slots {
            let _ = std::fs::remove_file(&m.path);
        }
    }
    done?;
    outcome.restart_required = plan.restart_required;
    outcome.epilogue = epilogue(&cx.env, outcome);
    Ok(())
}

/// Temporary files and copies a killed run left behind are ours: they go
/// before anything else.
fn remove_leftovers(settings: &Settings, facts: &Facts, printer: &Printer) {
    let mut dirs: Vec<&std::path::Path> = settings
        .passfile
        .iter()
        .filter_map(|p| p.parent())
        .collect();
    if facts.target.path.join("PG_VERSION").exists() {
        dirs.push(&settings.pgdata);
    }
    for dir in dirs {
        for p in crate::fsutil::remove_stale_temps(dir) {
            printer.info(format!(
                "removed {} left by an interrupted run",
                p.display()
            ));
        }
    }
}

fn epilogue(env: &Env, outcome: &Outcome) -> Option<String> {
    let (settings, facts) = (&env.settings, &env.facts);
    let pid = crate::pg::pidfile::running(&settings.pgdata);
    if settings.no_start && pid.is_none() {
        let command = start::cluster(settings, facts).start_line();
        return Some(format!(
            "The standby is ready but not started (--no-start). Start it with:\n  {command}\n"
        ));
    }
    let streaming = outcome.details.get("streaming")?;
    let replayed = streaming["target_lsn"].as_str().unwrap_or("");
    Some(format!(
        "The standby streams from {} and has replayed {replayed}.\nCheck it any time with:\n  pgrepctl check --standby 'host={} port={}'\n",
        settings.primary_name(),
        pid.as_ref()
            .map(|p| p.socket_dir.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "localhost".into()),
        pid.map(|p| p.port).unwrap_or(5432),
    ))
}

fn copy_change(
    settings: &Settings,
    facts: &Facts,
    replace: bool,
    compression: &super::compress::Choice,
) -> Change {
    let compressed = match compression.method.arg() {
        Some(m) => format!(", compressed on the primary with {m}"),
        None => String::new(),
    };
    Change {
        kind: Kind::File,
        path: Some(settings.pgdata.clone()),
        summary: format!(
            "{} from {} ({}, pg_basebackup -X stream{compressed})",
            if replace {
                "replaced with a copy"
            } else {
                "cloned"
            },
            settings.primary_name(),
            facts
                .primary
                .size
                .map(|s| format!("about {}", human_bytes(s)))
                .unwrap_or_else(|| "size known when the copy starts".into())
        ),
        diff: None,
    }
}

fn configure_change(settings: &Settings, facts: &Facts) -> Change {
    let signal = if crate::conf::standby::uses_recovery_conf(facts.primary.version_num) {
        "recovery.conf: standby_mode = on, primary_conninfo"
    } else {
        "standby.signal, and primary_conninfo in postgresql.auto.conf"
    };
    Change {
        kind: Kind::File,
        path: Some(settings.pgdata.clone()),
        summary: format!(
            "configured as a standby: {signal} = '{}'; hot_standby = on{}{}; hot-standby limits raised to the primary's where lower{}{}",
            settings.conninfo.redacted(),
            settings
                .port
                .map(|p| format!(", port = {p}"))
                .unwrap_or_default(),
            settings
                .listen
                .as_ref()
                .map(|l| format!(", listen_addresses = {l}"))
                .unwrap_or_default(),
            settings
                .passfile
                .as_ref()
                .map(|p| format!("; password file {} (mode 0600)", p.display()))
                .unwrap_or_default(),
            configure::archive_settings(settings, facts)
                .iter()
                .map(|(k, v)| format!("; {k} = '{v}'"))
                .collect::<String>(),
        ),
        diff: None,
    }
}

/// One configuration edit as an engine step: written with a backup of
/// the original, new files owned by the server's user.
fn edit_step(settings: &Settings, facts: &Facts, e: Edit) -> EditFile {
    EditFile {
        path: e.path,
        shown_path: e.final_path,
        old: e.old,
        new: e.new,
        summary: e.summary,
        secret: e.secret,
        redact: settings.password.as_ref().map(|p| p.expose().to_string()),
        owner: facts.run_as.ids,
        backup: true,
    }
}

/// The slot, over the replication connection, unless it exists. Its
/// marker beside the target says, until the run ends, which slot this
/// run created, so that a rerun after a kill can tell (see
/// [`copy::Marker`]).
struct EnsureSlot {
    slot: String,
    summary: String,
    /// Known before the run: READ_REPLICATION_SLOT (15+), or the marker
    /// of the interrupted run that created it. A slot known to exist is
    /// reused, which changes nothing and is said so in a dry run.
    exists: Option<bool>,
    /// An interrupted run created it: this run's marker says so too.
    inherited: bool,
    marker: PathBuf,
}

impl Action<Env> for EnsureSlot {
    fn describe(&self) -> Option<Change> {
        (self.exists != Some(true)).then(|| change(Kind::Sql, self.summary.clone()))
    }

    fn label(&self) -> String {
        format!(
            "create replication slot {} on the primary unless it exists",
            self.slot
        )
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        let mark = |created: bool| {
            let text = copy::Marker::text(&self.slot, created);
            if let Err(e) = crate::fsutil::atomic_write(&self.marker, text.as_bytes()) {
                cx.printer.info(format!(
                    "cannot record slot {} beside the target ({}): a rerun after a kill would not know this run created it",
                    self.slot, e.message
                ));
            }
        };
        mark(self.inherited);
        let r = ensure_slot(&cx.env.settings, &cx.env.facts, &cx.printer);
        if let Ok(false) = r {
            cx.printer.info(format!(
                "replication slot {} exists on the primary: reused",
                self.slot
            ));
        }
        match &r {
            Ok(created) if *created || self.inherited => mark(true),
            _ => {
                let _ = std::fs::remove_file(&self.marker);
            }
        }
        let r = r.map(|created| {
            if created {
                let marker = self.marker.clone();
                Applied::changed().undo(SyncUndo(move |cx: &mut Cx<Env>| {
                    drop_slot(&cx.env.settings, &cx.env.facts)?;
                    let _ = std::fs::remove_file(&marker);
                    Ok(())
                }))
            } else {
                Applied::unchanged()
            }
        });
        Box::pin(async move { r })
    }
}

/// A partial copy a killed run left beside the target: removed before
/// anything else, and listed in the plan (a dry run says it will go).
struct RemoveCopy {
    path: PathBuf,
}

impl Action<Env> for RemoveCopy {
    fn describe(&self) -> Option<Change> {
        Some(Change {
            kind: Kind::File,
            path: Some(self.path.clone()),
            summary: "removed: a partial copy left by an interrupted run".into(),
            diff: None,
        })
    }

    fn label(&self) -> String {
        format!("remove {}, left by an interrupted run", self.path.display())
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        cx.printer.info(format!(
            "removing {} left by an interrupted run",
            self.path.display()
        ));
        let r = match std::fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(Applied::changed()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Applied::unchanged()),
            Err(e) => Err(Error::io(
                format!("cannot remove {}", self.path.display()),
                e,
            )),
        };
        Box::pin(async move { r })
    }
}

/// Create the slot over the replication connection unless it exists.
/// Returns whether this run created it.
fn ensure_slot(settings: &Settings, facts: &Facts, printer: &Printer) -> Result<bool> {
    let Some(slot) = &settings.slot else {
        return Ok(false);
    };
    let command = format!("CREATE_REPLICATION_SLOT {slot} PHYSICAL RESERVE_WAL");
    printer.sql(&command);
    let created = facts
        .repl
        .ensure_physical_slot_blocking(slot)
        .map_err(|mut e| {
            e.hint = Some(format!(
                "create the slot on the primary (pgrepctl init-master --slot {slot}) and rerun"
            ));
            e
        })?;
    if created {
        printer.info(format!("created replication slot {slot} on the primary"));
    }
    Ok(created)
}

/// Drop the slot this run created; a failure is the undo's failure (the
/// slot would hold WAL on the primary for nobody), and names the slot.
fn drop_slot(settings: &Settings, facts: &Facts) -> Result<()> {
    let Some(slot) = &settings.slot else {
        return Ok(());
    };
    facts.repl.drop_slot_blocking(slot).map_err(|e| {
        let e = facts.repl.error(&e);
        Error::new(
            Code::SlotConflict,
            format!(
                "the slot {slot} this run created is still on the primary: {}",
                e.message
            ),
        )
        .hint(format!(
            "drop it there: SELECT pg_drop_replication_slot('{slot}')"
        ))
    })
}

/// pg_basebackup into a temporary directory beside the target; its sync
/// to disk goes on in the background while the configuration is computed.
struct Copy {
    tmp: PathBuf,
    change: Change,
    compression: super::compress::Choice,
}

impl Action<Env> for Copy {
    fn describe(&self) -> Option<Change> {
        Some(self.change.clone())
    }

    fn label(&self) -> String {
        format!(
            "copy the primary into {} with pg_basebackup",
            self.tmp.display()
        )
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            copy::copy(
                &cx.env.settings,
                &cx.env.facts,
                &self.compression,
                &self.tmp,
                &cx.printer,
                &mut cx.interrupt,
            )
            .await?;
            cx.env.sync = Some(copy::sync_in_background(&self.tmp, &cx.printer));
            let tmp = self.tmp.clone();
            Ok(Applied::changed().undo(SyncUndo(move |cx: &mut Cx<Env>| {
                if let Some(s) = cx.env.sync.take() {
                    let _ = s.join();
                }
                match std::fs::remove_dir_all(&tmp) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        Err(Error::io(format!("cannot remove {}", tmp.display()), e))
                    }
                    _ => Ok(()),
                }
            })))
        })
    }
}

/// The standby configuration of the fresh copy (and of the host's own
/// files outside it, Debian's /etc), known only once the copy exists:
/// reported with the same summary as in a dry run, and the diffs now.
struct ConfigureCopy {
    tmp: PathBuf,
    change: Change,
}

impl Action<Env> for ConfigureCopy {
    fn describe(&self) -> Option<Change> {
        Some(self.change.clone())
    }

    fn label(&self) -> String {
        "configure the copy as a standby".into()
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let (settings, facts) = (&cx.env.settings, &cx.env.facts);
            let edits = configure::compute(settings, facts, &self.tmp, &settings.pgdata);
            let synced = cx.env.sync.take().map(|s| {
                s.join().unwrap_or_else(|_| {
                    Err(Error::new(Code::Internal, "the sync of the copy panicked"))
                })
            });
            let edits = edits?;
            synced.unwrap_or(Ok(()))?;
            let steps: Vec<EditFile> = edits
                .into_iter()
                .map(|e| {
                    let inside = e.path.starts_with(&self.tmp);
                    let mut step = edit_step(&cx.env.settings, &cx.env.facts, e);
                    // Inside the copy there is no original to keep.
                    step.backup = !inside;
                    step
                })
                .collect();
            let mut applied = Applied::changed();
            let mut diffs = vec![];
            for step in &steps {
                cx.printer
                    .step(format!("applying: {}", Action::<Env>::label(step)));
                let done = step.write(cx)?;
                // Files inside the copy go with it; only the host's own
                // files outside it (Debian's /etc) need putting back.
                if !step.path.starts_with(&self.tmp) {
                    applied.undo.extend(done.undo);
                }
                diffs.push(format!(
                    "# {}: {}\n{}",
                    step.shown_path.display(),
                    step.summary,
                    step.diff().unwrap_or_default()
                ));
            }
            Ok(applied.diff(Some(diffs.join(""))))
        })
    }
}

/// The copy into place at the target; the replaced directory is kept
/// aside until the new standby runs.
struct Swap {
    tmp: PathBuf,
    target: PathBuf,
    replace: bool,
    /// Where a former primary's directory stays for good (else removed).
    keep_at: Option<PathBuf>,
}

struct PutBack {
    kept: Option<PathBuf>,
    keep_at: Option<PathBuf>,
}

impl Undo<Env> for PutBack {
    fn undo<'s>(self: Box<Self>, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<()>> {
        let r = start::stop(&cx.env.settings, &cx.env.facts)
            .and_then(|()| copy::undo_put_in_place(&cx.env.facts.target, self.kept.as_deref()));
        Box::pin(async move { r })
    }

    /// The new standby runs: the replaced directory goes, unless a server
    /// runs in it (started on the target just before it was moved aside).
    /// A failure is retried (a file appearing mid-removal), then reported,
    /// never silent.
    fn commit(self: Box<Self>, cx: &mut Cx<Env>) {
        let Some(old) = &self.kept else { return };
        if let Some(at) = &self.keep_at {
            match std::fs::rename(old, at) {
                Ok(()) => {
                    cx.details
                        .insert("replaced_kept_at".into(), at.display().to_string().into());
                }
                Err(e) => cx.warnings.push(format!(
                    "could not move the replaced directory from {} to {}: {e}; it stays at {}",
                    old.display(),
                    at.display(),
                    old.display()
                )),
            }
            return;
        }
        if let Some(dir) = super::target::server_in(old) {
            cx.warnings.push(format!(
                "kept the replaced directory at {}: a server runs in {}; stop it, then remove the directory by hand",
                old.display(),
                dir.display()
            ));
            return;
        }
        let mut last = None;
        for _ in 0..3 {
            match std::fs::remove_dir_all(old) {
                Ok(()) => return,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                Err(e) => last = Some(e),
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if let Some(e) = last {
            cx.warnings.push(format!(
                "could not remove the replaced directory kept aside at {}: {e}; remove it by hand",
                old.display()
            ));
        }
    }
}

impl Action<Env> for Swap {
    fn describe(&self) -> Option<Change> {
        None
    }

    fn label(&self) -> String {
        format!("move the copy into place at {}", self.target.display())
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        let r = copy::put_in_place(
            &self.tmp,
            &cx.env.facts.target,
            self.replace,
            cx.env.facts.run_as.ids,
        )
        .map(|kept| {
            Applied::unchanged().undo(PutBack {
                kept,
                keep_at: self.keep_at.clone(),
            })
        });
        Box::pin(async move { r })
    }
}

/// Start (or restart, to apply new settings) the standby.
struct Start {
    restart: bool,
    /// A fresh copy: a failure to start undoes the whole clone.
    fresh: bool,
    /// The command that starts it, for the report.
    shown: String,
}

impl Action<Env> for Start {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Service,
            if self.restart {
                format!("restarted to apply the new configuration ({})", self.shown)
            } else {
                format!("started ({})", self.shown)
            },
        ))
    }

    fn label(&self) -> String {
        if self.restart {
            "restart the standby to apply the new configuration".into()
        } else {
            "start the standby".into()
        }
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        cx.env.restart_attempted |= self.restart;
        let (settings, facts) = (&cx.env.settings, &cx.env.facts);
        let restart = self.restart;
        let r = start::start(settings, facts, self.restart)
            .map(|_| {
                // A restarted standby is restarted back by
                // RestartBackOnUndo; one this run started is stopped.
                if restart {
                    return Applied::changed();
                }
                Applied::changed().undo(SyncUndo(|cx: &mut Cx<Env>| {
                    start::stop(&cx.env.settings, &cx.env.facts)
                }))
            })
            .map_err(|mut e| {
                e.hint = Some(if self.fresh {
                    format!(
                        "nothing was left at {}: the copy was removed and what was there before put back; fix the cause shown and rerun",
                        settings.pgdata.display()
                    )
                } else {
                    "the configuration files were put back as they were; fix the cause shown and rerun".into()
                });
                e
            });
        Box::pin(async move { r })
    }
}

/// Planned before the restart of a running standby: it changes nothing,
/// but its undo (once the files are back) restarts the standby on its old
/// configuration if the restart was attempted — a failed restart left it
/// down, a good one left it on the new files.
struct RestartBackOnUndo;

impl Action<Env> for RestartBackOnUndo {
    fn describe(&self) -> Option<Change> {
        None
    }

    fn label(&self) -> String {
        "restart (a failure from here on restarts on the old configuration)".into()
    }

    fn apply<'s>(&'s self, _cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move { Ok(Applied::unchanged().undo(RestartBack)) })
    }
}

struct RestartBack;

impl engine::Undo<Env> for RestartBack {
    fn last(&self) -> bool {
        true
    }

    fn undo<'s>(self: Box<Self>, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<()>> {
        let r = if cx.env.restart_attempted {
            cx.printer
                .info("restarting the standby on its old configuration");
            start::start(&cx.env.settings, &cx.env.facts, true).map(|_| ())
        } else {
            Ok(())
        };
        Box::pin(async move { r })
    }
}

/// Whether a running standby takes these edits with a reload: only
/// postgresql.auto.conf changes, and only in settings the server re-reads
/// on SIGHUP (archive_cleanup_command from 12, restore_command from 14;
/// before 14 a new restore_command takes a restart).
fn reload_enough(edits: &[Edit], version_num: u32) -> bool {
    let reloadable = |name: &str| match name {
        "archive_cleanup_command" => version_num >= 120000,
        "restore_command" => version_num >= 140000,
        _ => false,
    };
    edits.iter().all(|e| {
        let auto = e.path.file_name() == Some(std::ffi::OsStr::new("postgresql.auto.conf"));
        auto && changed_names(e.old.as_deref().unwrap_or(""), &e.new)
            .is_some_and(|names| names.iter().all(|n| reloadable(n)))
    })
}

/// Whether an edit changes restore_command (postgresql.auto.conf or
/// recovery.conf alike).
fn restore_changed(edits: &[Edit]) -> bool {
    edits.iter().any(|e| {
        changed_names(e.old.as_deref().unwrap_or(""), &e.new)
            .is_some_and(|n| n.iter().any(|n| n == "restore_command"))
    })
}

/// The settings whose value differs between two versions of a file
/// (None when either does not parse).
fn changed_names(old: &str, new: &str) -> Option<Vec<String>> {
    let values = |text: &str| -> Option<std::collections::BTreeMap<String, String>> {
        Some(
            crate::conf::pgconf::parse(text)
                .ok()?
                .entries()
                .into_iter()
                .filter_map(|e| match e {
                    crate::conf::pgconf::Entry::Setting { name, value, .. } => {
                        Some((name.to_ascii_lowercase(), value))
                    }
                    _ => None,
                })
                .collect(),
        )
    };
    let (a, b) = (values(old)?, values(new)?);
    let mut names: Vec<String> = a.keys().chain(b.keys()).cloned().collect();
    names.sort();
    names.dedup();
    names.retain(|n| a.get(n) != b.get(n));
    Some(names)
}

/// A reload of the running standby, for settings it re-reads on SIGHUP;
/// undone (once the files are back) by another reload.
struct Reload;

impl Action<Env> for Reload {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Service,
            "reloaded: the standby re-reads restore_command and archive_cleanup_command (no restart needed on PostgreSQL 14+)",
        ))
    }

    fn label(&self) -> String {
        "reload the standby's configuration".into()
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        let r =
            reload(&cx.env.settings, &cx.env.facts).map(|()| Applied::changed().undo(ReloadBack));
        Box::pin(async move { r })
    }
}

struct ReloadBack;

impl engine::Undo<Env> for ReloadBack {
    /// After the files are back: the reload then reads the old ones.
    fn last(&self) -> bool {
        true
    }

    fn undo<'s>(self: Box<Self>, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<()>> {
        let r = reload(&cx.env.settings, &cx.env.facts);
        Box::pin(async move { r })
    }
}

fn reload(settings: &Settings, facts: &Facts) -> Result<()> {
    start::cluster(settings, facts)
        .ctl(
            crate::pg::cluster::Ctl::Reload,
            std::time::Duration::from_secs(30),
        )
        .map(|_| ())
        .map_err(|e| {
            Error::new(Code::ReloadFailed, e.message)
                .hint("the configuration files were put back; fix the cause shown and rerun")
        })
}

fn wait_streaming(cx: &mut Cx<Env>) -> LocalBoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let streaming = start::wait_streaming(
            &cx.env.settings,
            &cx.env.facts,
            cx.env.facts.primary.identity.lsn,
            &cx.printer,
            &mut cx.interrupt,
        )
        .await?;
        cx.detail("streaming", streaming);
        Ok(())
    })
}
