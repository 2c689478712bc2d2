//! Carrying out the plan: slot, copy, configuration, swap into place,
//! start, wait. Until the swap nothing at the target changes; a slot this
//! run created is dropped again if the copy fails, so a failed clone does
//! not leave the primary retaining WAL for nobody.

use super::configure::{self, Edit};
use super::copy::{self, Signals};
use super::plan::{Action, Plan};
use super::preflight::Facts;
use super::settings::Settings;
use super::start;
use crate::error::{Code, Error, Result};
use crate::pg::replication::sqlstate;
use crate::report::{Change, Kind, Outcome, Printer};
use crate::units::human_bytes;

pub async fn apply(
    settings: &Settings,
    facts: &Facts,
    plan: &Plan,
    printer: &Printer,
    outcome: &mut Outcome,
) -> Result<()> {
    let mut signals = Signals::new()?;
    let password = settings.password.as_ref().map(|p| p.expose().to_string());
    let mut running = false;
    // After a clone: what was at the target before, to put back if the
    // new standby does not start.
    let mut installed: Option<Option<std::path::PathBuf>> = None;
    let mut created_slot = false;
    let mut written: Vec<&std::path::Path> = settings
        .passfile
        .iter()
        .filter_map(|p| p.parent())
        .collect();
    if matches!(plan.action, Action::Reconcile { .. }) {
        written.push(&settings.pgdata);
    }
    for dir in written {
        for p in crate::fsutil::remove_stale_temps(dir) {
            printer.info(format!(
                "removed {} left by an interrupted run",
                p.display()
            ));
        }
    }
    match plan.action {
        Action::Clone { replace } => {
            copy::remove_stale(&facts.target, printer);
            let slot_created = ensure_slot(settings, facts, printer)?;
            let tmp = copy::temp_dir(&facts.target);
            let result = async {
                printer.step(format!(
                    "applying: copy {} into {} with pg_basebackup",
                    settings.primary_name(),
                    tmp.display()
                ));
                let bytes = copy::copy(settings, facts, &tmp, printer, &mut signals).await?;
                let sync = copy::sync_in_background(&tmp, printer);
                let edits = configure::compute(settings, facts, &tmp, &settings.pgdata);
                let synced = sync.join().unwrap_or_else(|_| {
                    Err(Error::new(Code::Internal, "the sync of the copy panicked"))
                });
                let edits = edits?;
                synced?;
                step_edits(printer, &edits, password.as_deref());
                // Edits in the copy first; then the host's own files outside
                // it (Debian's /etc), with a backup of the original.
                let (inside, outside): (Vec<_>, Vec<_>) = edits
                    .iter()
                    .cloned()
                    .partition(|e| e.path.starts_with(&tmp));
                configure::write(&inside, facts, false)?;
                configure::write(&outside, facts, true)?;
                printer.step(format!(
                    "applying: move the copy into place at {}",
                    settings.pgdata.display()
                ));
                let kept = copy::put_in_place(&tmp, &facts.target, replace, facts.run_as.ids)?;
                Ok::<_, Error>((bytes, edits, kept))
            }
            .await;
            let (bytes, edits, kept) = match result {
                Ok(r) => r,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&tmp);
                    if slot_created {
                        drop_slot(settings, facts, printer);
                    }
                    return Err(e);
                }
            };
            installed = Some(kept);
            created_slot = slot_created;
            if slot_created {
                outcome.push(slot_change(settings));
            }
            outcome.push(Change {
                kind: Kind::File,
                path: Some(settings.pgdata.clone()),
                summary: format!(
                    "{} from {} ({}, pg_basebackup -X stream)",
                    if replace {
                        "replaced with a copy"
                    } else {
                        "cloned"
                    },
                    settings.primary_name(),
                    human_bytes(bytes)
                ),
                diff: None,
            });
            push_edits(outcome, &edits, password.as_deref());
        }
        Action::Reconcile {
            running: was_running,
        } => {
            running = was_running;
            let edits = configure::compute(settings, facts, &settings.pgdata, &settings.pgdata)?;
            step_edits(printer, &edits, password.as_deref());
            configure::write(&edits, facts, true)?;
            push_edits(outcome, &edits, password.as_deref());
            if !edits.is_empty() && running && !settings.no_start {
                printer.step("applying: restart the standby to apply the new configuration");
                let shown =
                    start::start(settings, facts, true).map_err(|e| after_change(e, outcome))?;
                outcome.push(service(format!(
                    "restarted to apply the new configuration ({shown})"
                )));
            }
        }
    }
    if settings.no_start {
        if !running {
            outcome.epilogue = Some(format!(
                "The standby is ready but not started (--no-start). Start it with:\n  {}pg_ctl -D {} -l {} start\n",
                facts.run_as.shell_prefix(),
                settings.pgdata.display(),
                settings.pgdata.join(start::SERVER_LOG).display()
            ));
        }
        return Ok(());
    }
    if !running {
        printer.step("applying: start the standby");
        match start::start(settings, facts, false) {
            Ok(shown) => outcome.push(service(format!("started ({shown})"))),
            Err(e) => {
                let Some(kept) = installed else {
                    return Err(after_change(e, outcome));
                };
                // A fresh copy that cannot start is no standby: undo it all.
                let _ = start::stop(settings, facts);
                return Err(
                    match copy::undo_put_in_place(&facts.target, kept.as_deref()) {
                        Ok(()) => {
                            if created_slot {
                                drop_slot(settings, facts, printer);
                            }
                            outcome.undo_all();
                            let mut e = e;
                            e.hint = Some(format!(
                                "nothing was left at {}: the copy was removed and what was there before put back; fix the cause shown and rerun",
                                settings.pgdata.display()
                            ));
                            e
                        }
                        Err(undo) => after_change(
                            Error::new(
                                e.code,
                                format!(
                                    "{}; and undoing the copy failed: {}",
                                    e.message, undo.message
                                ),
                            ),
                            outcome,
                        ),
                    },
                );
            }
        }
    }
    if let Some(Some(old)) = &installed {
        let _ = std::fs::remove_dir_all(old);
    }
    printer.step("applying: wait until the standby streams and has caught up");
    let streaming = start::wait_streaming(
        settings,
        facts,
        facts.primary.identity.lsn,
        printer,
        &mut signals,
    )
    .await
    .map_err(|e| after_change(e, outcome))?;
    outcome.epilogue = Some(format!(
        "The standby streams from {} and has replayed {}.\nCheck it any time with:\n  pgrepctl check --standby 'host={} port={}'\n",
        settings.primary_name(),
        streaming.target_lsn,
        crate::pg::pidfile::running(&settings.pgdata)
            .map(|p| p.socket_dir)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "localhost".into()),
        crate::pg::pidfile::running(&settings.pgdata)
            .map(|p| p.port)
            .unwrap_or(5432),
    ));
    outcome.detail("streaming", streaming);
    Ok(())
}

/// An error after something changed: the caller reports `changed` too.
fn after_change(mut e: Error, outcome: &Outcome) -> Error {
    if outcome.changed && !e.message.contains("(changes made:") {
        let n = outcome.changes.len();
        e.message = format!("{} (changes made: {n} before this failure)", e.message);
    }
    e
}

/// -v: each configuration edit as it is about to be written.
fn step_edits(printer: &Printer, edits: &[Edit], password: Option<&str>) {
    for e in edits {
        printer.step(format!("applying: {}", e.change(password).summary));
    }
}

fn push_edits(outcome: &mut Outcome, edits: &[Edit], password: Option<&str>) {
    for e in edits {
        outcome.push(e.change(password));
    }
}

fn service(summary: String) -> Change {
    Change {
        kind: Kind::Service,
        path: None,
        summary,
        diff: None,
    }
}

fn slot_change(settings: &Settings) -> Change {
    Change {
        kind: Kind::Sql,
        path: None,
        summary: format!(
            "physical replication slot {} created on {}",
            settings.slot.as_deref().unwrap_or(""),
            settings.primary_name()
        ),
        diff: None,
    }
}

/// Create the slot over the replication connection unless it exists.
/// Returns whether this run created it.
fn ensure_slot(settings: &Settings, facts: &Facts, printer: &Printer) -> Result<bool> {
    let Some(slot) = &settings.slot else {
        return Ok(false);
    };
    let command = format!("CREATE_REPLICATION_SLOT {slot} PHYSICAL RESERVE_WAL");
    printer.step(format!(
        "applying: create replication slot {slot} on the primary unless it exists"
    ));
    printer.sql(&command);
    match facts.repl.create_physical_slot_blocking(slot) {
        Ok(_) => {
            printer.info(format!("created replication slot {slot} on the primary"));
            Ok(true)
        }
        Err(e) if e.sqlstate() == Some(sqlstate::DUPLICATE_OBJECT) => Ok(false),
        Err(e) => {
            let mut e = facts.repl.error(&e);
            e.code = Code::SlotConflict;
            e.hint = Some(format!(
                "create the slot on the primary (pgrepctl init-master --slot {slot}) and rerun"
            ));
            Err(e)
        }
    }
}

fn drop_slot(settings: &Settings, facts: &Facts, printer: &Printer) {
    if let Some(slot) = &settings.slot {
        if let Err(e) = facts.repl.drop_slot_blocking(slot) {
            printer.warn(format!(
                "could not drop the slot {slot} this run created: {}",
                facts.repl.error(&e).message
            ));
        }
    }
}

/// What `--dry-run` reports: the same changes a real run would make, as
/// far as they can be known without copying.
pub fn preview(
    settings: &Settings,
    facts: &Facts,
    plan: &Plan,
    outcome: &mut Outcome,
) -> Result<()> {
    let password = settings.password.as_ref().map(|p| p.expose().to_string());
    match plan.action {
        Action::Clone { replace } => {
            if let Some(s) = &settings.slot {
                outcome.push(Change {
                    kind: Kind::Sql,
                    path: None,
                    summary: format!(
                        "physical replication slot {s} on {} (created if missing)",
                        settings.primary_name()
                    ),
                    diff: None,
                });
            }
            outcome.push(Change {
                kind: Kind::File,
                path: Some(settings.pgdata.clone()),
                summary: format!(
                    "{} from {} ({}, pg_basebackup -X stream --checkpoint=fast)",
                    if replace {
                        "replace with a copy"
                    } else {
                        "clone"
                    },
                    settings.primary_name(),
                    facts
                        .primary
                        .size
                        .map(human_bytes)
                        .unwrap_or_else(|| "size known when the copy starts".into())
                ),
                diff: None,
            });
            let signal = if crate::conf::standby::uses_recovery_conf(facts.primary.version_num) {
                "recovery.conf: standby_mode = on, primary_conninfo"
            } else {
                "standby.signal, and primary_conninfo in postgresql.auto.conf"
            };
            outcome.push(Change {
                kind: Kind::File,
                path: Some(settings.pgdata.clone()),
                summary: format!(
                    "configure as a standby: {signal} = '{}'; hot_standby = on{}{}; hot-standby limits raised to the primary's where lower",
                    settings.conninfo.redacted(),
                    settings.port.map(|p| format!(", port = {p}")).unwrap_or_default(),
                    settings.listen.as_ref().map(|l| format!(", listen_addresses = {l}")).unwrap_or_default(),
                ),
                diff: None,
            });
            if let Some(p) = &settings.passfile {
                outcome.push(Change {
                    kind: Kind::File,
                    path: Some(p.clone()),
                    summary: "password file for primary_conninfo (mode 0600)".into(),
                    diff: None,
                });
            }
            if !settings.no_start {
                outcome.push(service(
                    "start, then wait until streaming and caught up".into(),
                ));
            }
        }
        Action::Reconcile { running } => {
            let edits = configure::compute(settings, facts, &settings.pgdata, &settings.pgdata)?;
            push_edits(outcome, &edits, password.as_deref());
            if !settings.no_start && (!running || !edits.is_empty()) {
                outcome.push(service(
                    if running {
                        "restart to apply the new configuration"
                    } else {
                        "start"
                    }
                    .into(),
                ));
            }
        }
    }
    Ok(())
}
