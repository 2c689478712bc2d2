//! The copy: `pg_basebackup -X stream --checkpoint=fast --no-sync` into a
//! temporary directory that becomes the target only when complete and
//! synced to disk (one syncfs, with the writeout started during the copy:
//! `crate::writeback`). Interrupts, a killed or failed pg_basebackup and a full
//! disk all end with the target as it was and the temporary directory
//! gone; a SIGKILL of pgrepctl ends pg_basebackup too, and the next run
//! removes what was left.

use super::compress::{self, Choice, Method, Refused};
use super::preflight::{Facts, space_needed};
use super::settings::Settings;
use super::target::TargetFacts;
use crate::error::{Code, Error, Result};
use crate::plan::{Interrupt, interrupted};
use crate::report::Printer;
use crate::runner::{LongChild, Next};
use crate::units::human_bytes;
use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
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

/// What pgrepctl runs killed outright (SIGKILL, power loss) left beside
/// the target: their partial copies, and the slot each had created on
/// the primary (their process is gone). Replaced directories kept aside
/// are not among them (see [`super::aside`]).
#[derive(Debug, Default)]
pub struct Leftovers {
    pub copies: Vec<PathBuf>,
    pub slots: Vec<Marker>,
}

/// A run's record of the slot it creates, beside its copy: written before
/// the slot is created ("creating") and once it is ("created"), removed
/// when the run ends without leaving it unused. A rerun reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub path: PathBuf,
    pub pid: i32,
    pub slot: String,
    /// The run created the slot; false: it may have (killed in between).
    pub created: bool,
}

impl Marker {
    /// This run's marker: beside the target (also when the target is a
    /// mount point, whose contents the swap moves).
    pub fn path_for(target: &Path) -> PathBuf {
        target.with_file_name(format!(
            "{}{}.slot",
            beside_prefix(target),
            std::process::id()
        ))
    }

    pub fn text(slot: &str, created: bool) -> String {
        let state = if created { "created" } else { "creating" };
        format!("{slot}\n{state}\n")
    }

    fn read(path: PathBuf, pid: i32) -> Option<Marker> {
        let text = std::fs::read_to_string(&path).ok()?;
        let mut lines = text.lines();
        let slot = lines.next()?.trim().to_string();
        let created = lines.next()?.trim() == "created";
        Some(Marker {
            path,
            pid,
            slot,
            created,
        })
    }
}

/// ".NAME.pgrepctl-clone.": how this target's temporary names begin beside it.
fn beside_prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.pgrepctl-clone.")
}

/// Entries of `dir` named `prefix` + the pid of a dead process + `suffix`.
fn dead_entries(dir: &Path, prefix: &str, suffix: &str) -> Vec<(PathBuf, i32)> {
    let mut found: Vec<(PathBuf, i32)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let pid = n.strip_prefix(prefix)?.strip_suffix(suffix)?.parse().ok()?;
            (!crate::pg::pidfile::pid_alive(pid)).then(|| (e.path(), pid))
        })
        .collect();
    found.sort();
    found
}

/// The leftovers of dead runs at `target`. Read-only: the plan removes
/// the copies, a successful run the markers.
pub fn leftovers(target: &TargetFacts) -> Leftovers {
    let Some(parent) = target.path.parent() else {
        return Leftovers::default();
    };
    let prefix = beside_prefix(&target.path);
    let copies = if target.mount_point {
        dead_entries(&target.path, ".pgrepctl-clone.", "")
    } else {
        dead_entries(parent, &prefix, "")
    };
    Leftovers {
        copies: copies.into_iter().map(|(p, _)| p).collect(),
        slots: dead_entries(parent, &prefix, ".slot")
            .into_iter()
            .filter_map(|(p, pid)| Marker::read(p, pid))
            .collect(),
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

/// Run pg_basebackup into `tmp` (created here). Returns the bytes copied.
/// The copy is not yet on disk: see [`sync_in_background`].
///
/// A primary whose build lacks the compression method refuses the
/// BASE_BACKUP command before its checkpoint, so nothing was copied:
/// `auto` copies again uncompressed; a method the user named is a usage
/// error (the preflight could not tell without a normal SQL connection).
pub async fn copy(
    settings: &Settings,
    facts: &Facts,
    compression: &Choice,
    tmp: &Path,
    printer: &Printer,
    signals: &mut Interrupt,
) -> Result<u64> {
    let method = compression.method;
    let result = copy_once(settings, facts, method, tmp, printer, signals).await;
    let Err(e) = result else { return result };
    match compress::refused(compression, &e.message) {
        Refused::CopyUncompressed => {
            printer.info(format!(
                "the primary's build cannot compress with {}; copying uncompressed",
                method.name()
            ));
            copy_once(settings, facts, Method::None, tmp, printer, signals).await
        }
        Refused::Usage => Err(Error::new(
            Code::Usage,
            format!(
                "--compress {}: the primary's PostgreSQL is built without it ({})",
                method.name(),
                e.message
            ),
        )
        .hint("leave out --compress (auto falls back to an uncompressed copy), or pass --compress none; nothing was copied")),
        Refused::Failed => Err(e),
    }
}

async fn copy_once(
    settings: &Settings,
    facts: &Facts,
    method: Method,
    tmp: &Path,
    printer: &Printer,
    signals: &mut Interrupt,
) -> Result<u64> {
    std::fs::create_dir(tmp).map_err(|e| {
        Error::io(format!("cannot create {}", tmp.display()), e)
            .hint("the directory holding the target must be writable by the user running pgrepctl")
    })?;
    let result = run_basebackup(settings, facts, method, tmp, printer, signals).await;
    if result.is_err() {
        let _ = std::fs::remove_dir_all(tmp);
    }
    result
}

async fn run_basebackup(
    settings: &Settings,
    facts: &Facts,
    method: Method,
    tmp: &Path,
    printer: &Printer,
    signals: &mut Interrupt,
) -> Result<u64> {
    hand_over(tmp, facts)?;
    // --sslrootcert: pg_basebackup runs as the server's user, who may not
    // read the given file; it gets the same certificate from memory.
    let root_ca = root_ca_file(settings, facts)?;
    let args = basebackup_args(
        settings,
        tmp,
        root_ca.as_ref().map(|f| f.child_path()),
        method,
    );
    let mut expr = facts
        .run_as
        .cmd(facts.bindir.tool("pg_basebackup"), args)
        .env_remove("PGPASSWORD");
    expr = match facts.repl.passfile() {
        Some(p) => p.pass_to(expr),
        None => expr.env_remove("PGPASSFILE"),
    };
    if let Some(f) = &root_ca {
        expr = f.inherit(expr);
    }
    printer.info(format!(
        "copying {} from {} with pg_basebackup",
        facts
            .primary
            .size
            .map(human_bytes)
            .unwrap_or_else(|| "the primary".into()),
        settings.primary_name()
    ));
    // On any failure `child` is dropped, which stops pg_basebackup.
    let mut child = LongChild::spawn("pg_basebackup", expr)?;
    let _writeback = crate::writeback::Writeback::start(tmp);
    let wire = (method != Method::None).then(|| child.pid()).flatten();
    let mut display = Display::new(printer, wire);
    let mut copied = 0;
    let mut space_checked = facts.primary.size.is_some();
    loop {
        match child.next(signals).await {
            Next::Line(l) => match parse_progress(&l) {
                Some((done, total)) => {
                    copied = done;
                    display.update(done, total);
                    if !space_checked && total > 0 {
                        space_checked = true;
                        if let Err(e) = announced_size_fits(facts, total) {
                            child.kill();
                            display.finish();
                            return Err(e);
                        }
                    }
                }
                None => printer.debug(format!("pg_basebackup: {l}")),
            },
            Next::Done => break,
            Next::Failed(message) => {
                display.finish();
                return Err(copy_failed(facts, tmp, message, child.tail()));
            }
            Next::Interrupted => {
                display.finish();
                return Err(interrupted(
                    "during the copy; the target was left as it was and the partial copy removed",
                ));
            }
        }
    }
    display.finish();
    Ok(copied)
}

/// The temporary directory private (0700) and owned by the server's
/// user, who runs pg_basebackup.
fn hand_over(tmp: &Path, facts: &Facts) -> Result<()> {
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
    Ok(())
}

/// --sslrootcert's certificate in memory, readable by pg_basebackup.
fn root_ca_file(settings: &Settings, facts: &Facts) -> Result<Option<crate::child::SecretFile>> {
    settings
        .root_ca
        .as_ref()
        .map(|ca| crate::child::SecretFile::new(&ca.pem, facts.run_as.ids))
        .transpose()
}

/// pg_basebackup's arguments: the standby's own conninfo (no password:
/// that comes from the in-memory passfile), WAL streamed alongside, a
/// fast checkpoint, progress for the bar and the disk check.
fn basebackup_args(
    settings: &Settings,
    tmp: &Path,
    rootcert: Option<String>,
    method: Method,
) -> Vec<std::ffi::OsString> {
    let conninfo = match rootcert {
        Some(path) => settings.conninfo_with_rootcert(Some(path)),
        None => settings.preflight_conninfo(),
    };
    let mut args: Vec<std::ffi::OsString> = vec![
        "-D".into(),
        tmp.into(),
        "-d".into(),
        conninfo.into(),
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
    if let Some(m) = method.arg() {
        args.push(format!("--compress={m}").into());
    }
    if let Some(s) = &settings.slot {
        args.push("-S".into());
        args.push(s.into());
    }
    args
}

/// The size pg_basebackup announces must fit the target's filesystem
/// (checked here when the preflight could not learn it).
fn announced_size_fits(facts: &Facts, total: u64) -> Result<()> {
    let Some(free) = facts.free_bytes else {
        return Ok(());
    };
    let need = space_needed(total, facts.primary.wal_segment_size);
    if need <= free {
        return Ok(());
    }
    Err(Error::new(
        Code::DiskSpace,
        format!(
            "the primary announced {} to copy; that needs about {} and {} is free at {}",
            human_bytes(total),
            human_bytes(need),
            human_bytes(free),
            facts.target.space_dir.display()
        ),
    )
    .hint("free space there or choose a data directory on a larger filesystem; nothing was kept"))
}

/// Why the copy failed: a full filesystem, told by the filesystem itself
/// (less than a WAL segment left), else pg_basebackup's own last lines.
fn copy_failed(facts: &Facts, tmp: &Path, message: String, tail: &[String]) -> Error {
    let full = super::preflight::free_space(tmp)
        .is_some_and(|free| free < facts.primary.wal_segment_size.max(1 << 20));
    if full {
        return Error::new(
            Code::DiskSpace,
            format!("{message} (the target filesystem is full)"),
        )
        .hint("free space or choose a larger filesystem; the target was left as it was");
    }
    Error::new(Code::CopyFailed, message).hint(copy_failed_hint(tail))
}

/// The next step for pg_basebackup's own failure, from its last lines.
fn copy_failed_hint(tail: &[String]) -> &'static str {
    let slot_said = |what: &str| tail.iter().any(|l| l.contains("slot") && l.contains(what));
    if slot_said("does not exist") {
        "the replication slot is missing on the primary; rerun (pgrepctl creates it) or create it there"
    } else if slot_said("is active for PID") {
        "another standby streams through this replication slot: give this one a slot of its own (--slot NAME), or stop the standby that uses it; the target was left as it was"
    } else {
        "the target was left as it was; fix the cause shown and rerun"
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
    crate::fsutil::sync_data_dir(tmp).map_err(|(dir, e)| {
        Error::io(
            format!("cannot sync the copy in {} to disk", dir.display()),
            e,
        )
        .hint("check the filesystem's health (dmesg); the target was left as it was")
    })
}

/// A progress bar on a terminal; a line every few seconds otherwise.
/// With compression, both rates: what is written (the server's count of
/// uncompressed bytes) and what crosses the network (what its TCP
/// sockets received, [`received_bytes`]).
struct Display {
    bar: Option<indicatif::ProgressBar>,
    plain: bool,
    last: Instant,
    started: Instant,
    printer: Printer,
    /// pg_basebackup's pid, when the copy is compressed.
    wire: Option<u32>,
}

impl Display {
    fn new(printer: &Printer, wire: Option<u32>) -> Display {
        let shown = !printer.json && !printer.quiet;
        let bar = (shown && printer.progress && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "copying [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} written{msg} ETA {eta}",
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
            wire,
        }
    }

    /// ", 12 MB/s on the wire" when compressed and readable.
    fn wire_rate(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        self.wire
            .and_then(received_bytes)
            .map(|b| format!(", {}/s on the wire", human_bytes((b as f64 / secs) as u64)))
            .unwrap_or_default()
    }

    fn update(&mut self, done: u64, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total.max(done));
            b.set_position(done);
            if self.wire.is_some() {
                b.set_message(self.wire_rate());
            }
        } else if self.plain && self.last.elapsed() >= Duration::from_secs(5) {
            self.last = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            let pct = (done * 100).checked_div(total).unwrap_or(0);
            self.printer.info(format!(
                "copying: {} of {} ({pct}%), {}/s written{}",
                human_bytes(done),
                human_bytes(total),
                human_bytes((done as f64 / secs) as u64),
                self.wire_rate()
            ));
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// Bytes a process has received over TCP: `tcp_info.bytes_received` of
/// each of its TCP sockets (for pg_basebackup, the backup's connection and
/// its WAL streamer's: what crossed the network, compressed), read through
/// a duplicate of each socket (`pidfd_getfd`: pg_basebackup is our child,
/// so it needs no privilege beyond ours). `/proc/PID/io` would not do:
/// its `rchar` leaves out `recv`. None when the kernel (before 5.6) or the
/// permissions do not allow it, or there is no TCP socket (a Unix-socket
/// primary): then only the written rate is shown.
fn received_bytes(pid: u32) -> Option<u64> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: plain syscalls; each fd returned is owned here and closed on drop.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if pidfd < 0 {
        return None;
    }
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    let mut total = None;
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        let socket =
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"));
        let Some(target) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if !socket {
            continue;
        }
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0) };
        if fd < 0 {
            continue;
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        if let Some(n) = tcp_bytes_received(&fd) {
            *total.get_or_insert(0) += n;
        }
    }
    total
}

/// `tcpi_bytes_received` (Linux 4.1+, at byte 128 of `struct tcp_info`).
fn tcp_bytes_received(fd: &std::os::fd::OwnedFd) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let mut info = [0u8; 256];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: the buffer and its length are valid for the kernel to fill.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 || (len as usize) < 136 {
        return None;
    }
    Some(u64::from_ne_bytes(info[128..136].try_into().ok()?))
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
    if replace {
        if let Some(dir) = super::target::server_in(path) {
            return Err(Error::new(
                Code::PostmasterRunning,
                format!(
                    "a server started on {} while the copy ran; the copy is discarded and the directory left as it is",
                    dir.display()
                ),
            )
            .hint("stop that server (and whatever started it: a package upgrade, systemd) and rerun; pgrepctl never replaces a directory a server is using"));
        }
    }
    if target.mount_point {
        if replace {
            // Kept inside the mount point (same filesystem: renames).
            let old = super::aside::name_for(path, true);
            std::fs::create_dir(&old).map_err(io(format!("cannot create {}", old.display())))?;
            kept = Some(old.clone());
            move_entries(path, &old, &[tmp, &old])?;
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
        let old = super::aside::name_for(path, false);
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

/// Move every entry of `from` (but lost+found and `skip`) into `to`.
fn move_entries(from: &Path, to: &Path, skip: &[&Path]) -> Result<()> {
    let io = |what: String| move |e| Error::io(what, e);
    for e in std::fs::read_dir(from)
        .map_err(io(format!("cannot list {}", from.display())))?
        .flatten()
    {
        let p = e.path();
        // What an interrupted run kept aside here is never swept into this
        // run's (removed once the new standby runs).
        let kept = e
            .file_name()
            .to_string_lossy()
            .starts_with(".pgrepctl-old.");
        if e.file_name() == "lost+found" || kept || skip.contains(&p.as_path()) {
            continue;
        }
        std::fs::rename(&p, to.join(e.file_name())).map_err(io(format!(
            "cannot move {} to {}",
            p.display(),
            to.display()
        )))?;
    }
    Ok(())
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
            let p = e.path();
            if e.file_name() == "lost+found" || Some(p.as_path()) == kept {
                continue;
            }
            let r = if p.is_dir() && !p.is_symlink() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            r.map_err(io(format!("cannot remove {}", p.display())))?;
        }
        if let Some(old) = kept {
            move_entries(old, path, &[])?;
            std::fs::remove_dir(old).map_err(io(format!("cannot remove {}", old.display())))?;
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
    fn a_failed_copy_hints_from_pg_basebackups_last_lines() {
        let hint = |line: &str| copy_failed_hint(&[line.to_string()]);
        assert!(hint("pg_basebackup: error: could not send replication command \"START_REPLICATION\": ERROR:  replication slot \"db2\" is active for PID 4242").contains("slot of its own"));
        assert!(
            hint("pg_basebackup: error: replication slot \"db2\" does not exist")
                .contains("missing on the primary")
        );
        assert!(hint("pg_basebackup: error: connection lost").contains("fix the cause shown"));
    }

    #[test]
    fn bytes_received_over_tcp() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut out = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut inp, _) = listener.accept().unwrap();
        out.write_all(&[7u8; 5000]).unwrap();
        let mut buf = [0u8; 5000];
        inp.read_exact(&mut buf).unwrap();
        // Both ends are ours: what one received is counted.
        assert!(received_bytes(std::process::id()).is_some_and(|n| n >= 5000));
        assert_eq!(received_bytes(u32::MAX), None);
    }

    #[test]
    fn what_an_earlier_run_kept_aside_is_never_swept() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("from"), dir.path().join("to"));
        for d in [&from, &to] {
            std::fs::create_dir(d).unwrap();
        }
        for n in ["base", ".pgrepctl-old.77", "lost+found", "skipped"] {
            std::fs::create_dir(from.join(n)).unwrap();
        }
        move_entries(&from, &to, &[&from.join("skipped")]).unwrap();
        let names = |d: &Path| {
            let mut v: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&to), ["base"]);
        assert_eq!(names(&from), [".pgrepctl-old.77", "lost+found", "skipped"]);
    }

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
