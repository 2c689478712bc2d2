//! The two steps that bring a diverged node back to the new primary's
//! history: crash recovery in single-user mode for a node that did not
//! shut down cleanly (pg_rewind needs a clean shutdown; run here on every
//! version, with the cluster's own config_file, because pg_rewind's own
//! crash recovery (13+) cannot find a configuration kept in /etc before
//! 15), and pg_rewind itself, with the node's own configuration files kept
//! aside and put back (pg_rewind copies the source's over them).

use super::apply::Env;
use super::rewind::{self, Source};
use crate::error::{Code, Error, Result};
use crate::pg::cluster::{LocalCluster, SERVER_LOG};
use crate::plan::{Action, Applied, Cx, change, interrupted};
use crate::report::{Change, Kind};
use crate::runner::{LongChild, Next};
use futures_util::future::LocalBoxFuture;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Files that make the node start as a standby or recover: single-user
/// mode refuses to run with them, so crash recovery moves them aside.
const SIGNALS: [&str; 3] = ["standby.signal", "recovery.signal", "recovery.conf"];

/// The node's own files that pg_rewind would replace with the source's
/// (or remove): its configuration, its signal files, pgrepctl's password
/// file and server log.
const KEPT: [&str; 8] = [
    "postgresql.conf",
    "pg_hba.conf",
    "pg_ident.conf",
    "postgresql.auto.conf",
    "recovery.conf",
    "standby.signal",
    "recovery.signal",
    crate::commands::clone_standby::PASSFILE_NAME,
];

/// Kept by moving rather than copying: it may be large.
const MOVED: &str = SERVER_LOG;

pub struct CrashRecovery {
    shown: String,
}

impl CrashRecovery {
    pub fn new(cluster: &LocalCluster) -> CrashRecovery {
        CrashRecovery {
            shown: format!("postgres --single -D {}", cluster.data_dir.display()),
        }
    }
}

impl Action<Env> for CrashRecovery {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Service,
            format!(
                "crash recovery in single-user mode ({}): the node did not shut down cleanly, and pg_rewind needs it clean",
                self.shown
            ),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        let r = crash_recovery(&cx.env.cluster).map(|()| Applied::changed());
        Box::pin(async move { r })
    }
}

/// `postgres --single` with stdin closed: it recovers, writes a shutdown
/// checkpoint and exits at the end of its (empty) input.
fn crash_recovery(cluster: &LocalCluster) -> Result<()> {
    let dir = &cluster.data_dir;
    let moved: Vec<(PathBuf, PathBuf)> = SIGNALS
        .iter()
        .map(|n| (dir.join(n), dir.join(format!("{n}.pgrepctl-rejoin"))))
        .filter(|(from, _)| from.exists())
        .collect();
    for (from, to) in &moved {
        std::fs::rename(from, to)
            .map_err(|e| Error::io(format!("cannot move {} aside", from.display()), e))?;
    }
    let mut args: Vec<std::ffi::OsString> =
        vec!["--single".into(), "-F".into(), "-D".into(), dir.into()];
    if cluster.config_dir != *dir {
        let mut c = std::ffi::OsString::from("config_file=");
        c.push(cluster.config_dir.join("postgresql.conf"));
        args.extend(["-c".into(), c]);
    }
    args.push("template1".into());
    let shown = format!(
        "{}postgres --single -D {}",
        cluster.run_as.shell_prefix(),
        dir.display()
    );
    let ran = crate::tools::run(
        cluster
            .run_as
            .cmd(cluster.bindir.tool("postgres"), args)
            .stdin_null(),
        &shown,
    );
    let mut back = Ok(());
    for (from, to) in moved.iter().rev() {
        if let Err(e) = std::fs::rename(to, from) {
            back = Err(Error::io(format!("cannot put {} back", from.display()), e));
        }
    }
    ran.map_err(|e| {
        Error::new(
            Code::RewindFailed,
            format!("crash recovery failed: {}", e.message),
        )
        .hint("the node is as it was (not recovered); see the message, fix the cause and rerun")
    })?;
    back?;
    let control = cluster.control_data()?;
    if !control.state.is_clean_shutdown() {
        return Err(Error::new(
            Code::RewindFailed,
            format!(
                "after crash recovery pg_control still says {:?}",
                control.state
            ),
        )
        .hint("start and stop the node by hand to finish its recovery, then rerun"));
    }
    Ok(())
}

pub struct Rewind {
    source: String,
}

impl Rewind {
    pub fn new(_cluster: &LocalCluster, source: &Source) -> Rewind {
        Rewind {
            source: source.conninfo.clone(),
        }
    }
}

impl Action<Env> for Rewind {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Service,
            format!(
                "rewound with pg_rewind --source-server='{}' (its configuration files kept and put back)",
                self.source
            ),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(run_rewind(cx))
    }
}

async fn run_rewind(cx: &mut Cx<Env>) -> Result<Applied<Env>> {
    let cluster = cx.env.cluster.clone();
    let source = cx
        .env
        .source
        .clone()
        .ok_or_else(|| Error::new(Code::Internal, "pg_rewind without a source"))?;
    if !cx.env.dry_run_done {
        // After crash recovery: what pg_rewind would do, before it does it.
        let out = run_pg_rewind(cx, &cluster, &source, true)
            .await
            .map_err(|e| match e.code {
                Code::RewindFailed => Error::new(Code::RewindFailed, format!("pg_rewind --dry-run: {}", e.message)).hint(
                    "nothing was rewound (the node went through crash recovery only): fix what pg_rewind says, or rerun with --reclone-on-failure",
                ),
                _ => e,
            })?;
        cx.detail("rewind_dry_run", rewind::summary(&out));
    }
    let kept = Kept::save(&cluster.data_dir)?;
    cx.printer.info("rewinding with pg_rewind");
    let ran = run_pg_rewind(cx, &cluster, &source, false).await;
    let restored = kept.restore(&cluster.data_dir);
    let out = ran?;
    restored?;
    if rewind::no_sync(&cluster) {
        rewind::sync(&cluster)?;
    }
    if cx.env.version.rewind_copies_replslot() {
        clean_replslot(&cluster.data_dir)?;
    }
    cx.detail("rewind", rewind::summary(&out));
    if rewind::no_rewind_required(&out) {
        cx.printer.info("pg_rewind: no rewind required");
        return Ok(Applied::unchanged());
    }
    Ok(Applied::changed())
}

/// pg_rewind (or its dry run) through the runner: its output, or why it
/// failed.
async fn run_pg_rewind(
    cx: &mut Cx<Env>,
    cluster: &LocalCluster,
    source: &Source,
    dry_run: bool,
) -> Result<String> {
    let (expr, _secret, _shown) = rewind::command(cluster, source, dry_run)?;
    let mut child = LongChild::spawn("pg_rewind", expr)?;
    let mut out = String::new();
    let ended = loop {
        match child.next(&mut cx.interrupt).await {
            Next::Line(l) => {
                cx.printer.debug(format!("pg_rewind: {l}"));
                out.push_str(&l);
                out.push('\n');
            }
            other => break other,
        }
    };
    match ended {
        Next::Done => Ok(out),
        Next::Failed(message) => Err(Error::new(Code::RewindFailed, message).hint(
            "pg_rewind may have left pg_control damaged: do not start the node as it is; rerun with --reclone-on-failure, or re-clone it (pgrepctl clone-standby --force)",
        )),
        _ => Err(interrupted(
            "during pg_rewind; the data directory may be half rewound: rerun pgrepctl rejoin (with --reclone-on-failure if pg_rewind then refuses)",
        )),
    }
}

/// pg_rewind on 10 copies the new primary's slots into the node, where
/// they would pin WAL for standbys that never connect to it.
fn clean_replslot(dir: &Path) -> Result<()> {
    let slots = dir.join("pg_replslot");
    for e in std::fs::read_dir(&slots).into_iter().flatten().flatten() {
        std::fs::remove_dir_all(e.path())
            .map_err(|err| Error::io(format!("cannot remove {}", e.path().display()), err))?;
    }
    Ok(())
}

/// One file's contents, mode and owner.
struct KeptFile {
    bytes: Vec<u8>,
    mode: u32,
    owner: (u32, u32),
}

/// The node's own files while pg_rewind runs: in memory, and on disk in
/// `PGDATA.rejoin-kept` (so a pgrepctl killed meanwhile loses nothing;
/// the next run refuses to go on until they are put back).
struct Kept {
    aside: PathBuf,
    files: Vec<(&'static str, Option<KeptFile>)>,
}

impl Kept {
    fn save(dir: &Path) -> Result<Kept> {
        let aside = kept_dir(dir);
        if aside.exists() {
            return Err(Error::new(
                Code::RewindFailed,
                format!("{} exists: an earlier rejoin stopped during its rewind", aside.display()),
            )
            .hint("it holds the node's own configuration files: copy them back into the data directory, remove it, and rerun"));
        }
        std::fs::create_dir(&aside)
            .map_err(|e| Error::io(format!("cannot create {}", aside.display()), e))?;
        let mut files = vec![];
        for name in KEPT {
            let path = dir.join(name);
            let kept = match std::fs::read(&path) {
                Ok(bytes) => {
                    let m = std::fs::metadata(&path)
                        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
                    crate::fsutil::create_owned(&aside.join(name), &bytes, 0o600, None)?;
                    Some(KeptFile {
                        bytes,
                        mode: m.mode() & 0o7777,
                        owner: (m.uid(), m.gid()),
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
            };
            files.push((name, kept));
        }
        let log = dir.join(MOVED);
        if log.exists() {
            std::fs::rename(&log, aside.join(MOVED))
                .map_err(|e| Error::io(format!("cannot move {} aside", log.display()), e))?;
        }
        Ok(Kept { aside, files })
    }

    /// Each file as it was; one that was not there before goes.
    fn restore(self, dir: &Path) -> Result<()> {
        for (name, kept) in &self.files {
            let path = dir.join(name);
            match kept {
                Some(f) => crate::fsutil::create_owned(&path, &f.bytes, f.mode, Some(f.owner))?,
                None if path.exists() => std::fs::remove_file(&path)
                    .map_err(|e| Error::io(format!("cannot remove {}", path.display()), e))?,
                None => {}
            }
        }
        let log = self.aside.join(MOVED);
        if log.exists() {
            std::fs::rename(&log, dir.join(MOVED))
                .map_err(|e| Error::io(format!("cannot put {} back", log.display()), e))?;
        } else if dir.join(MOVED).exists() {
            // The source's log, copied by pg_rewind: not this node's.
            let _ = std::fs::remove_file(dir.join(MOVED));
        }
        std::fs::remove_dir_all(&self.aside)
            .map_err(|e| Error::io(format!("cannot remove {}", self.aside.display()), e))
    }
}

/// Where [`Kept`] keeps the node's files during a rewind.
pub fn kept_dir(data_dir: &Path) -> PathBuf {
    PathBuf::from(format!("{}.rejoin-kept", data_dir.display()))
}
