//! The copy: `pg_basebackup -X stream --checkpoint=fast --no-sync` into a
//! temporary directory that becomes the target only when complete and
//! synced to disk (one syncfs). Interrupts, a killed or failed pg_basebackup and a full
//! disk all end with the target as it was and the temporary directory
//! gone; a SIGKILL of pgrepctl ends pg_basebackup too, and the next run
//! removes what was left.

use super::preflight::{Facts, space_needed};
use super::settings::Settings;
use super::target::TargetFacts;
use crate::child::GroupGuard;
use crate::error::{Code, Error, Result};
use crate::plan::{Interrupt, interrupted};
use crate::report::Printer;
use crate::units::human_bytes;
use std::io::{IsTerminal, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Hidden, per-process name: beside the target, or inside it when the
/// target is a mount point (a sibling would be on another filesystem).
pub fn temp_dir(target: &TargetFacts) -> PathBuf {
    let pid = std::process::id();
    if target.mount_point {
        return target.path.join(format!(".pgrepctl-clone.{pid}"));
    }
    let name = target
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target
        .path
        .with_file_name(format!(".{name}.pgrepctl-clone.{pid}"))
}

/// Remove temporary copies, and old targets moved aside for `--force`,
/// left by a pgrepctl that was killed outright (SIGKILL, power loss):
/// their process is gone.
pub fn remove_stale(target: &TargetFacts, printer: &Printer) {
    let name = target
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (dir, prefixes) = if target.mount_point {
        (target.path.clone(), vec![".pgrepctl-clone.".to_string()])
    } else {
        match target.path.parent() {
            Some(p) => (
                p.to_path_buf(),
                vec![
                    format!(".{name}.pgrepctl-clone."),
                    format!(".{name}.pgrepctl-old."),
                ],
            ),
            None => return,
        }
    };
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = prefixes
            .iter()
            .find_map(|p| n.strip_prefix(p.as_str()))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if !crate::pg::pidfile::pid_alive(pid) {
            printer.info(format!(
                "removing {} left by an interrupted run",
                e.path().display()
            ));
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// "  123456/7890123 kB (1%), 0/1 tablespace (…)" -> (done, total) bytes.
pub fn parse_progress(line: &str) -> Option<(u64, u64)> {
    let mut words = line.split_whitespace();
    let (done, total) = words.next()?.split_once('/')?;
    if words.next()? != "kB" {
        return None;
    }
    Some((
        done.parse::<u64>().ok()? * 1024,
        total.parse::<u64>().ok()? * 1024,
    ))
}

enum Event {
    Progress(u64, u64),
    Line(String),
    Done(std::io::Result<bool>),
}

/// Run pg_basebackup into `tmp` (created here). Returns the bytes copied.
/// The copy is not yet on disk: see [`sync_in_background`].
pub async fn copy(
    settings: &Settings,
    facts: &Facts,
    tmp: &Path,
    printer: &Printer,
    signals: &mut Interrupt,
) -> Result<u64> {
    std::fs::create_dir(tmp).map_err(|e| {
        Error::io(format!("cannot create {}", tmp.display()), e)
            .hint("the directory holding the target must be writable by the user running pgrepctl")
    })?;
    let result = run_basebackup(settings, facts, tmp, printer, signals).await;
    if result.is_err() {
        let _ = std::fs::remove_dir_all(tmp);
    }
    result
}

async fn run_basebackup(
    settings: &Settings,
    facts: &Facts,
    tmp: &Path,
    printer: &Printer,
    signals: &mut Interrupt,
) -> Result<u64> {
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io(format!("cannot set the mode of {}", tmp.display()), e))?;
    if let Some((uid, gid)) = facts.run_as.ids {
        std::os::unix::fs::chown(tmp, Some(uid), Some(gid)).map_err(|e| {
            Error::io(
                format!("cannot hand {} to the server user", tmp.display()),
                e,
            )
        })?;
    }
    let mut args: Vec<std::ffi::OsString> = vec![
        "-D".into(),
        tmp.into(),
        "-d".into(),
        settings.preflight_conninfo().into(),
        "-X".into(),
        "stream".into(),
        "--checkpoint=fast".into(),
        "--progress".into(),
        "--no-password".into(),
        // One syncfs afterwards (sync_to_disk) instead of an fsync per
        // file: the same durability in a fraction of the time.
        "--no-sync".into(),
    ];
    if let Some(r) = &settings.max_rate {
        args.push(format!("--max-rate={r}").into());
    }
    if let Some(s) = &settings.slot {
        args.push("-S".into());
        args.push(s.into());
    }
    let mut expr = facts
        .run_as
        .cmd(facts.bindir.tool("pg_basebackup"), args)
        .env_remove("PGPASSWORD")
        .stdin_null()
        .stderr_to_stdout()
        .unchecked()
        // Its own process group: pg_basebackup forks a WAL-streaming child
        // that outlives a killed parent and would hold the pipe open; the
        // whole group is stopped together. It also keeps a terminal's
        // Ctrl-C for us to handle.
        .before_spawn(|c| {
            use std::os::unix::process::CommandExt;
            c.process_group(0);
            Ok(())
        });
    expr = match facts.repl.passfile() {
        Some(p) => p.pass_to(expr),
        None => expr.env_remove("PGPASSFILE"),
    };
    printer.info(format!(
        "copying {} from {} with pg_basebackup",
        facts
            .primary
            .size
            .map(human_bytes)
            .unwrap_or_else(|| "the primary".into()),
        settings.primary_name()
    ));
    let handle = Arc::new(expr.reader().map_err(|e| {
        Error::new(
            Code::ToolNotFound,
            format!("cannot start pg_basebackup: {e}"),
        )
    })?);
    let leader = handle
        .pids()
        .first()
        .map(|p| nix::unistd::Pid::from_raw(*p as i32));
    let mut group = ProcessGroup {
        leader,
        guard: None,
    };
    // On failure `group` is dropped, which stops pg_basebackup.
    if let Some(g) = leader {
        group.guard = Some(GroupGuard::new(g)?);
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = handle.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut line: Vec<u8> = vec![];
        let send_line = |line: &mut Vec<u8>| {
            let s = String::from_utf8_lossy(line).trim().to_string();
            line.clear();
            if s.is_empty() {
                return;
            }
            let ev = match parse_progress(&s) {
                Some((d, t)) => Event::Progress(d, t),
                None => Event::Line(s),
            };
            let _ = tx.send(ev);
        };
        loop {
            match (&*reader).read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    for &b in &buf[..n] {
                        if b == b'\r' || b == b'\n' {
                            send_line(&mut line);
                        } else {
                            line.push(b);
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Event::Done(Err(e)));
                    return;
                }
            }
        }
        send_line(&mut line);
        let ok = reader
            .try_wait()
            .map(|o| o.is_some_and(|o| o.status.success()));
        let _ = tx.send(Event::Done(ok));
    });

    let mut display = Display::new(printer);
    let mut tail: Vec<String> = vec![];
    let mut copied = 0;
    let mut space_checked = facts.primary.size.is_some();
    // pg_basebackup's forked WAL streamer keeps the pipe open after its
    // parent dies; once the parent is gone, stop the group so the reader
    // sees end of file and the failure is reported instead of hanging.
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if matches!(handle.try_wait(), Ok(Some(_)) | Err(_)) {
                    group.kill();
                }
            }
            ev = rx.recv() => match ev {
                Some(Event::Progress(done, total)) => {
                    copied = done;
                    display.update(done, total);
                    if !space_checked && total > 0 {
                        space_checked = true;
                        if let Some(free) = facts.free_bytes {
                            let need = space_needed(total, facts.primary.wal_segment_size);
                            if need > free {
                                group.kill();
                let _ = handle.kill();
                                display.finish();
                                return Err(Error::new(Code::DiskSpace, format!(
                                    "the primary announced {} to copy; that needs about {} and {} is free at {}",
                                    human_bytes(total), human_bytes(need), human_bytes(free), facts.target.space_dir.display()
                                )).hint("free space there or choose a data directory on a larger filesystem; nothing was kept"));
                            }
                        }
                    }
                }
                Some(Event::Line(l)) => {
                    printer.debug(format!("pg_basebackup: {l}"));
                    tail.push(l);
                    if tail.len() > 8 {
                        tail.remove(0);
                    }
                }
                Some(Event::Done(Ok(true))) => break,
                Some(Event::Done(res)) => {
                    display.finish();
                    group.kill();
                let _ = handle.kill();
                    let text = tail.join(" | ");
                    let status = match res {
                        Ok(_) => "pg_basebackup failed".to_string(),
                        Err(e) => format!("pg_basebackup failed: {e}"),
                    };
                    // A full filesystem, told by the filesystem itself (not
                    // by pg_basebackup's words): less than a WAL segment left.
                    let full = super::preflight::free_space(tmp)
                        .is_some_and(|free| free < facts.primary.wal_segment_size.max(1 << 20));
                    let err = if full {
                        Error::new(Code::DiskSpace, format!("{status}: the target filesystem is full: {text}"))
                            .hint("free space or choose a larger filesystem; the target was left as it was")
                    } else {
                        let hint = if text.contains("slot") && text.contains("does not exist") {
                            "the replication slot is missing on the primary; rerun (pgrepctl creates it) or create it there".to_string()
                        } else {
                            "the target was left as it was; fix the cause shown and rerun".to_string()
                        };
                        Error::new(Code::CopyFailed, format!("{status}: {}", if text.is_empty() { "no message (was it killed?)".into() } else { text })).hint(hint)
                    };
                    return Err(err);
                }
                None => break,
            },
            _ = signals.recv() => {
                group.kill();
                let _ = handle.kill();
                display.finish();
                return Err(interrupted("during the copy; the target was left as it was and the partial copy removed"));
            }
        }
    }
    display.finish();
    group.disarm();
    Ok(copied)
}

/// pg_basebackup's process group, killed when the copy ends any way but
/// success — including when this future is dropped (a caller's Ctrl-C),
/// so no WAL-streaming child is left behind. If pgrepctl itself is killed
/// outright, pg_basebackup dies with it (parent-death signal) and the
/// guard process kills the rest of the group.
struct ProcessGroup {
    leader: Option<nix::unistd::Pid>,
    guard: Option<GroupGuard>,
}

impl ProcessGroup {
    fn kill(&self) {
        if let Some(g) = self.leader {
            let _ = nix::sys::signal::killpg(g, nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// After a successful copy every member has exited; forget the group
    /// so its id, free for reuse, is never signalled (by us or the guard).
    fn disarm(mut self) {
        self.leader = None;
        self.guard = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Flush the copy to disk with one `syncfs` per filesystem it is on (the
/// target's, and each tablespace's): pg_basebackup ran with `--no-sync`.
/// Runs in a thread while the standby configuration is worked out (which
/// only reads the copy); the caller joins it before writing into the copy
/// and renaming it into place, so a crash never leaves a target whose
/// files are not on disk.
pub fn sync_in_background(tmp: &Path, printer: &Printer) -> std::thread::JoinHandle<Result<()>> {
    printer.info("syncing the copy to disk");
    let tmp = tmp.to_path_buf();
    std::thread::spawn(move || sync_to_disk(&tmp))
}

fn sync_to_disk(tmp: &Path) -> Result<()> {
    let mut dirs = vec![tmp.to_path_buf()];
    for e in std::fs::read_dir(tmp.join("pg_tblspc"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(e.path()) {
            dirs.push(target);
        }
    }
    for dir in dirs {
        let sync = std::fs::File::open(&dir)
            .and_then(|d| nix::unistd::syncfs(&d).map_err(std::io::Error::from));
        sync.map_err(|e| {
            Error::io(
                format!("cannot sync the copy in {} to disk", dir.display()),
                e,
            )
            .hint("check the filesystem's health (dmesg); the target was left as it was")
        })?;
    }
    Ok(())
}

/// A progress bar on a terminal; a line every few seconds otherwise.
struct Display {
    bar: Option<indicatif::ProgressBar>,
    plain: bool,
    last: Instant,
    started: Instant,
    printer: Printer,
}

impl Display {
    fn new(printer: &Printer) -> Display {
        let shown = !printer.json && !printer.quiet;
        let bar = (shown && printer.progress && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "copying [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b
        });
        Display {
            plain: shown && bar.is_none(),
            bar,
            last: Instant::now(),
            started: Instant::now(),
            printer: *printer,
        }
    }

    fn update(&mut self, done: u64, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total.max(done));
            b.set_position(done);
        } else if self.plain && self.last.elapsed() >= Duration::from_secs(5) {
            self.last = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            let pct = (done * 100).checked_div(total).unwrap_or(0);
            self.printer.info(format!(
                "copying: {} of {} ({pct}%), {}/s",
                human_bytes(done),
                human_bytes(total),
                human_bytes((done as f64 / secs) as u64)
            ));
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// Make the finished copy the target. A plain directory is swapped by
/// rename (atomic); a mount point cannot be renamed, so the copy made
/// inside it moves up entry by entry.
/// Returns the replaced directory, moved aside (when there was one and
/// it could be kept): [`undo_put_in_place`] puts it back if the new
/// standby will not start, and it is removed once the standby runs.
pub fn put_in_place(
    tmp: &Path,
    target: &TargetFacts,
    replace: bool,
    owner: Option<(u32, u32)>,
) -> Result<Option<PathBuf>> {
    let mut kept = None;
    let path = &target.path;
    let io = |what: String| move |e| Error::io(what, e);
    if target.mount_point {
        if replace {
            for e in std::fs::read_dir(path)
                .map_err(io(format!("cannot list {}", path.display())))?
                .flatten()
            {
                let p = e.path();
                if p == tmp || e.file_name() == "lost+found" {
                    continue;
                }
                let r = if p.is_dir() && !p.is_symlink() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
                r.map_err(io(format!("cannot remove {}", p.display())))?;
            }
        }
        for e in std::fs::read_dir(tmp)
            .map_err(io(format!("cannot list {}", tmp.display())))?
            .flatten()
        {
            std::fs::rename(e.path(), path.join(e.file_name()))
                .map_err(io(format!("cannot move {} into place", e.path().display())))?;
        }
        std::fs::remove_dir(tmp).map_err(io(format!("cannot remove {}", tmp.display())))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(io(format!("cannot set the mode of {}", path.display())))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(io(format!("cannot chown {}", path.display())))?;
        }
    } else if replace {
        let old = tmp.with_file_name(format!(
            ".{}.pgrepctl-old.{}",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id()
        ));
        std::fs::rename(path, &old).map_err(io(format!("cannot move {} aside", path.display())))?;
        if let Err(e) = std::fs::rename(tmp, path) {
            let _ = std::fs::rename(&old, path);
            return Err(Error::io(
                format!("cannot move the copy into {}", path.display()),
                e,
            ));
        }
        kept = Some(old);
    } else {
        if path.exists() {
            std::fs::remove_dir(path).map_err(io(format!(
                "cannot replace the empty directory {}",
                path.display()
            )))?;
        }
        std::fs::rename(tmp, path)
            .map_err(io(format!("cannot move the copy into {}", path.display())))?;
    }
    if let Some(parent) = path.parent() {
        let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
    }
    Ok(kept)
}

/// The new standby did not start: remove the copy and put back what was
/// there before — the replaced directory kept aside, the empty directory,
/// or nothing.
pub fn undo_put_in_place(target: &TargetFacts, kept: Option<&Path>) -> Result<()> {
    let path = &target.path;
    let io = |what: String| move |e| Error::io(what, e);
    if target.mount_point {
        for e in std::fs::read_dir(path)
            .map_err(io(format!("cannot list {}", path.display())))?
            .flatten()
        {
            if e.file_name() == "lost+found" {
                continue;
            }
            let p = e.path();
            let r = if p.is_dir() && !p.is_symlink() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            r.map_err(io(format!("cannot remove {}", p.display())))?;
        }
        return Ok(());
    }
    std::fs::remove_dir_all(path).map_err(io(format!("cannot remove {}", path.display())))?;
    match (kept, &target.state) {
        (Some(old), _) => {
            std::fs::rename(old, path).map_err(io(format!("cannot move {} back", old.display())))?
        }
        (None, super::target::Target::Empty) => {
            std::fs::create_dir(path).map_err(io(format!("cannot recreate {}", path.display())))?
        }
        _ => {}
    }
    if let Some(parent) = path.parent() {
        let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines() {
        assert_eq!(
            parse_progress("123/456 kB (26%), 0/1 tablespace"),
            Some((123 * 1024, 456 * 1024))
        );
        assert_eq!(
            parse_progress("  31054/31054 kB (100%), 1/1 tablespace (...data/global/pg_control)"),
            Some((31054 * 1024, 31054 * 1024))
        );
        assert_eq!(
            parse_progress("pg_basebackup: error: connection lost"),
            None
        );
        assert_eq!(parse_progress("waiting for checkpoint"), None);
    }
}
