//! The WAL archive: `wal-push` (archive_command), `wal-fetch`
//! (restore_command) and `wal-prune`. The first two run under the server,
//! once per file, and speak to it through their exit status: 0 done, 1..125
//! failed (the server counts a failure and retries; 126, 127 and deaths by
//! a signal are not counted, or take the archiver or recovery down), with
//! one line on stderr for the server log and nothing on stdout unless -v
//! or --json.
//!
//! `name` parses and orders archive file names, `copy` makes the durable
//! copies, `push`, `fetch` and `prune` are the commands, and `keep` asks
//! the servers where pruning must stop.

mod copy;
mod fetch;
mod keep;
pub mod name;
mod prune;
mod push;

use crate::error::{Code, Error, Failure, Result};
use crate::report::{Change, Kind, Outcome, Printer};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use fetch::Fetched;
pub use push::Pushed;

/// Copy one WAL file into the archive, durably, never replacing one
/// (archive_command = '/abs/pgrepctl wal-push %p DIR'). The copy goes to a
/// temp file in DIR, is fsynced, gets its final name (a hard link: never
/// over an existing file) and DIR is fsynced. A file already archived
/// with the same bytes is success (a retry after a crash); with different
/// bytes it is a failure and stays untouched. Temp files of a killed push
/// are removed by a later one after a minute. Exit status: 0 archived, 1
/// failed, 2 not a WAL file name; one line on stderr.
#[derive(clap::Args, Debug, Clone)]
pub struct PushArgs {
    /// The file to archive: the server's %p, relative to its data directory (where archive_command runs) or absolute
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// The archive directory (local, or a mount all nodes share); must be writable by the server's OS user
    #[arg(value_name = "ARCHIVE_DIR")]
    pub archive_dir: PathBuf,
}

/// Restore one file from the archive (restore_command = '/abs/pgrepctl
/// wal-fetch %f %p DIR'). NAME is copied to a temp file beside PATH,
/// fsynced and renamed to PATH, so the server never reads a partial file.
/// Exactly NAME is fetched: a .partial segment is returned only when asked
/// for by its own name. Exit status: 0 restored; 1, quietly, when NAME is
/// not in the archive (how archive recovery ends); 1 with a line on stderr
/// for any other failure; 2 not a WAL file name.
#[derive(clap::Args, Debug, Clone)]
pub struct FetchArgs {
    /// The file wanted: the server's %f (a segment, a .history, .partial or .backup file)
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Where to put it: the server's %p, relative to its data directory or absolute
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// The archive directory wal-push writes to
    #[arg(value_name = "ARCHIVE_DIR")]
    pub archive_dir: PathBuf,
}

/// Remove archived WAL older than what every consumer still needs. The
/// keep point is the oldest of --keep-from, the primary's physical slots
/// (--primary: each slot's restart_lsn) and each --standby's last
/// restartpoint redo, replay and receive positions (any role that may log
/// in: these are readable by all); a server that does not answer stops the prune,
/// and so do servers of another database system than the one that wrote the
/// archive's newest segment.
/// Segments and .partial files whose segment number is lower go (the
/// timeline is ignored, as pg_archivecleanup does); .backup files stay
/// unless --clean-backup-history; .history files always stay; other files
/// are not touched. Files go oldest first, so an
/// interrupted prune leaves a contiguous archive. --dry-run lists them.
#[derive(clap::Args, Debug, Clone)]
pub struct PruneArgs {
    /// The archive directory
    #[arg(value_name = "ARCHIVE_DIR")]
    pub archive_dir: PathBuf,
    /// Keep this segment and everything after it (a WAL file name, e.g. 000000010000000000000042, as pg_archivecleanup takes it)
    #[arg(long, value_name = "SEGMENT", required_unless_present_any = ["primary", "standby"])]
    pub keep_from: Option<String>,
    /// The primary: its physical replication slots' restart_lsn are kept (a conninfo string, URI or host name)
    #[arg(long, value_name = "CONNINFO")]
    pub primary: Option<String>,
    /// A standby reading the archive: what it still needs is kept (repeatable)
    #[arg(long, value_name = "CONNINFO")]
    pub standby: Vec<String>,
    /// How long each server may take to connect and answer, e.g. 10, 10s, 500ms
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::cli::flags::duration)]
    pub timeout: Duration,
    /// Remove backup history files (.backup) below the keep point too (pg_archivecleanup's --clean-backup-history); they are kept by default: a few bytes each, they say where each base backup began and ended
    #[arg(long)]
    pub clean_backup_history: bool,
    #[command(flatten)]
    pub dry_run: crate::cli::flags::DryRunFlag,
}

/// What wal-push and wal-fetch report: the outcome (printed with --json,
/// or -v) and the exit status the server reads.
pub struct Done {
    pub outcome: Outcome,
    pub exit_code: u8,
}

/// pgrepctl's own absolute path, as archive_command and restore_command
/// name it: the server runs them with its own PATH, from PGDATA.
pub fn self_path() -> Result<PathBuf> {
    std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| Error::io("cannot find pgrepctl's own path", e))
}

pub fn run_push(args: PushArgs) -> Result<Done, Failure> {
    let mut o = Outcome::new("wal-push", false);
    let dest = args
        .archive_dir
        .join(args.path.file_name().unwrap_or_default());
    match push::push(&args.path, &args.archive_dir)? {
        Pushed::Archived => o.push(file_change(
            &dest,
            format!("archived {}", args.path.display()),
        )),
        Pushed::AlreadyArchived => o.detail("already_archived", true),
    }
    Ok(Done {
        outcome: o,
        exit_code: 0,
    })
}

pub fn run_fetch(args: FetchArgs) -> Result<Done, Failure> {
    let mut o = Outcome::new("wal-fetch", false);
    let src = args.archive_dir.join(&args.name);
    let exit_code = match fetch::fetch(&args.name, &args.path, &args.archive_dir)? {
        Fetched::Restored => {
            o.push(file_change(
                &args.path,
                format!("restored {}", src.display()),
            ));
            0
        }
        Fetched::Missing => {
            o.ok = false;
            o.detail("missing", src.display().to_string());
            1
        }
    };
    Ok(Done {
        outcome: o,
        exit_code,
    })
}

pub async fn run_prune(args: PruneArgs, printer: &Printer) -> Result<Outcome, Failure> {
    let PruneArgs {
        archive_dir,
        keep_from,
        primary,
        standby,
        timeout,
        clean_backup_history,
        dry_run,
    } = args;
    let mut warnings = vec![];
    let mut points = vec![];
    if let Some(k) = keep_from {
        let no = name::keep_point(&k).ok_or_else(|| {
            Error::new(Code::InvalidValue, format!("--keep-from {k:?} is not a WAL segment name"))
                .hint("give a name like 000000010000000000000042 (24 upper-case hex digits), as pg_archivecleanup takes it")
        })?;
        points.push(keep::KeepPoint {
            source: "--keep-from".into(),
            segment: k,
            no,
            system: None,
        });
    }
    check_archive_dir("wal-prune", &archive_dir)?;
    let mut systems = vec![];
    if let Some(p) = primary {
        let (slots, system) = keep::primary(&p, timeout, &mut warnings).await?;
        points.extend(slots);
        systems.push(system);
    }
    for s in &standby {
        points.push(keep::standby(s, timeout).await?);
    }
    let Some(keep) = points.iter().min_by_key(|p| p.no).cloned() else {
        return Err(Error::new(
            Code::NoKeepPoint,
            "no keep point: the primary has no physical slot holding WAL, and no --standby or --keep-from was given",
        )
        .hint("name each standby reading the archive with --standby, or give --keep-from")
        .into());
    };
    let names = list(&archive_dir)?;
    systems.extend(points.iter().filter_map(|p| p.system.clone()));
    warnings.extend(same_system(&archive_dir, &names, &systems)?);
    if prune::newest(&names).is_some_and(|n| keep.no > n) {
        warnings.push(format!(
            "the keep point {} is newer than every segment in {}: every segment goes",
            keep.segment,
            archive_dir.display()
        ));
    }
    let doomed = prune::doomed(names.iter().cloned(), keep.no, clean_backup_history);
    let mut o = Outcome::new("wal-prune", dry_run.dry_run);
    o.detail("keep_from", &keep.segment);
    o.detail("keep_points", &points);
    o.detail("removed", &doomed);
    let mut plan = prune::plan(&archive_dir, &doomed, &keep.segment);
    plan.warnings = warnings;
    if dry_run.dry_run {
        plan.preview_into(&mut o);
        return Ok(o);
    }
    o.warnings.append(&mut plan.warnings);
    let mut cx = crate::plan::Cx::new((), *printer, None)?;
    crate::plan::execute(&plan.steps, &mut cx, &mut o)
        .await
        .map_err(|e| o.failure(e))?;
    Ok(o)
}

/// Prune by the positions of the cluster whose WAL the archive holds,
/// never another's (a mistyped --primary, the wrong archive directory):
/// the servers asked must be one database system, and the archive's
/// newest segment must have been written by it. A segment whose header
/// cannot be read (compressed by another archive_command) is a warning.
fn same_system(dir: &Path, names: &[String], systems: &[keep::System]) -> Result<Option<String>> {
    let Some(first) = systems.first() else {
        return Ok(None);
    };
    if let Some(other) = systems.iter().find(|s| s.id != first.id) {
        return Err(Error::new(
            Code::SystemIdMismatch,
            format!(
                "{} and {} are different database systems ({} and {}): their WAL positions cannot be compared",
                first.who, other.who, first.id, other.id
            ),
        )
        .hint("give the primary and the standbys of the one cluster that archives into this directory"));
    }
    let Some(newest) = prune::newest_segment_file(names) else {
        return Ok(None);
    };
    match prune::written_by(&dir.join(newest)) {
        None => Ok(Some(format!(
            "could not read which database system wrote {newest} (not a plain WAL segment: compressed?): that {} is the cluster archiving into {} was not checked",
            first.who,
            dir.display()
        ))),
        Some(writer) if writer != first.id => Err(Error::new(
            Code::SystemIdMismatch,
            format!(
                "the newest segment in {} ({newest}) was written by database system {writer}, but {} is system {}: nothing was removed",
                dir.display(),
                first.who,
                first.id
            ),
        )
        .hint("give the --primary and --standby of the cluster whose archive_command writes into this directory, or --keep-from alone; if two clusters archive here (a new initdb, a migrated database), give each its own directory")),
        _ => Ok(None),
    }
}

/// The archive's file names (not its subdirectories).
fn list(dir: &Path) -> Result<Vec<String>> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
    Ok(rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

/// The archive directory must exist and be a directory: never created
/// here (a missing mount must fail, not fill the local disk). `command`
/// starts the message: in a server log, the line must say who wrote it.
fn check_archive_dir(command: &str, dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::new(
            Code::FileUnreadable,
            format!(
                "{command}: archive directory {} is not a directory",
                dir.display()
            ),
        )),
        Err(e) => Err(Error::io(
            format!(
                "{command}: archive directory {} (is the archive mounted?)",
                dir.display()
            ),
            e,
        )),
    }
}

fn file_change(path: &Path, summary: String) -> Change {
    Change {
        kind: Kind::File,
        path: Some(path.to_path_buf()),
        summary,
        diff: None,
    }
}
