//! File writes that cannot lose data: a crash at any point leaves either the
//! old or the new file, never a torn one, and the first change keeps a copy
//! of the original beside it. Every file appears under its final name only
//! complete (written to a temporary name, synced, then renamed or linked),
//! and temporary files that a killed run left behind are removed by the
//! next run that writes in the same directory.

use crate::error::{Code, Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Suffix of the one backup pgrepctl keeps: the file as it was before
/// pgrepctl first changed it. Later runs never overwrite it, so it always
/// shows the DBA's own version.
pub const BACKUP_SUFFIX: &str = ".pgrepctl.orig";

/// Middle of a temporary file's name: `.<name>.pgrepctl-tmp.<pid>`.
const TEMP_MARK: &str = ".pgrepctl-tmp.";

/// A path made absolute against the current directory, with `.` parts
/// and trailing slashes normalised, without following symlinks: what a
/// flag names is stored for servers and units that run elsewhere (their
/// data directory, `/`).
pub fn absolute(p: &Path) -> Result<PathBuf> {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io("cannot read the current directory", e))?
            .join(p)
    };
    Ok(p.components().collect())
}

pub fn backup_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(BACKUP_SUFFIX);
    PathBuf::from(s)
}

/// Replace `path` with `contents`: temp file in the same directory, fsync,
/// rename over, fsync the directory. Mode and owner of the existing file are
/// kept (pgrepctl often runs as root on files the postgres user must read).
pub fn atomic_write(path: &Path, contents: &[u8]) -> Result<()> {
    let meta = fs::metadata(path).ok();
    let mode = meta
        .as_ref()
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o600);
    let owner = meta.as_ref().map(|m| (m.uid(), m.gid()));
    replace_with(path, contents, mode, owner)
}

/// Write a complete temp file and rename it over `path`.
fn replace_with(path: &Path, contents: &[u8], mode: u32, owner: Option<(u32, u32)>) -> Result<()> {
    let dir = parent(path);
    remove_stale_temps(dir);
    let tmp = temp_path(path);
    let result = write_temp(&tmp, contents, mode, owner)
        .and_then(|()| fs::rename(&tmp, path))
        .and_then(|()| File::open(dir)?.sync_all());
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(
            Error::io(format!("cannot write {}", path.display()), e).hint(
                "check that the file and its directory are writable by the user running pgrepctl",
            ),
        );
    }
    Ok(())
}

/// `.<name>.pgrepctl-tmp.<pid>` beside `path`.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent(path).join(format!(".{name}{TEMP_MARK}{}", std::process::id()))
}

/// Create `tmp` holding `contents` with its final mode and owner, synced
/// to disk, so that renaming or linking it publishes a complete file.
fn write_temp(
    tmp: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
    // A file of this name is from a dead run that had our pid.
    let _ = fs::remove_file(tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)?;
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    if let Some((uid, gid)) = owner {
        if uid != nix::unistd::geteuid().as_raw() || gid != nix::unistd::getegid().as_raw() {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        }
    }
    f.write_all(contents)?;
    f.sync_all()
}

/// Temporary files (`.<name>.pgrepctl-tmp.<pid>`) in `dir` whose process
/// is gone: left by a pgrepctl killed mid-write. Removed, and returned for
/// the report. Files of a live process (another run) are left alone.
pub fn remove_stale_temps(dir: &Path) -> Vec<PathBuf> {
    let mut removed = vec![];
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = stale_temp_pid(&name) else {
            continue;
        };
        let regular = e.file_type().is_ok_and(|t| t.is_file());
        if regular && !crate::pg::pidfile::pid_alive(pid) && fs::remove_file(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    if !removed.is_empty() {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    removed
}

/// The pid in a name of our temp-file pattern.
fn stale_temp_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix('.')?;
    let (file, pid) = rest.rsplit_once(TEMP_MARK)?;
    if file.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Copy the original aside the first time pgrepctl changes a file. Returns
/// the backup path when one was made now. The copy is written in full under
/// a temporary name, then hard-linked to the backup name, which fails if
/// the backup exists: the backup appears complete or not at all, and an
/// existing one is never replaced.
pub fn backup_once(path: &Path, original: &[u8]) -> Result<Option<PathBuf>> {
    let backup = backup_path(path);
    if backup.symlink_metadata().is_ok() {
        return Ok(None);
    }
    let meta =
        fs::metadata(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let dir = parent(path);
    remove_stale_temps(dir);
    let tmp = temp_path(&backup);
    // Only root can give a file away; anyone else makes it their own.
    let owner = nix::unistd::geteuid()
        .is_root()
        .then(|| (meta.uid(), meta.gid()));
    let made =
        write_temp(&tmp, original, meta.permissions().mode() & 0o7777, owner).and_then(|()| {
            match fs::hard_link(&tmp, &backup) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            }
        });
    let _ = fs::remove_file(&tmp);
    let made = made.map_err(|e| {
        Error::io(format!("cannot create backup {}", backup.display()), e)
            .hint("check that the directory is writable by the user running pgrepctl")
    })?;
    let _ = File::open(dir).and_then(|d| d.sync_all());
    Ok(made.then_some(backup))
}

/// A warning when the backup of `path` is empty though the file is not:
/// a torn backup left by an older pgrepctl killed while writing it. The
/// DBA's original is gone, and pgrepctl must not pretend it is kept (nor
/// replace it with a later version that is not the original).
pub fn empty_backup_warning(path: &Path, current: &[u8]) -> Option<String> {
    let backup = backup_path(path);
    let empty = fs::symlink_metadata(&backup).is_ok_and(|m| m.is_file() && m.len() == 0);
    (empty && !current.is_empty()).then(|| {
        format!(
            "the backup {} is empty (left by an earlier run killed while writing it): it does not hold the original; remove it and pgrepctl keeps the file as it is now",
            backup.display()
        )
    })
}

/// Create or replace `path` atomically with this mode and, when given,
/// owner (files pgrepctl creates as root in a data directory must belong
/// to the server's user). An existing file keeps its own mode and owner.
pub fn create_owned(
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    if path.exists() {
        return atomic_write(path, contents);
    }
    replace_with(path, contents, mode, owner)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Whether we could replace `path` atomically: the directory must be
/// writable (for the temp file and rename), and so should the file itself
/// (so we do not silently take over a file someone made read-only).
pub fn check_writable(path: &Path) -> Result<()> {
    use nix::unistd::{AccessFlags, access};
    let dir = parent(path);
    for (p, what) in [(path, "file"), (dir, "directory")] {
        if access(p, AccessFlags::W_OK).is_err() {
            return Err(Error::new(
                Code::FileNotWritable,
                format!("{what} {} is not writable by this user", p.display()),
            )
            .hint("run pgrepctl as the PostgreSQL OS user (usually postgres) or as root"));
        }
    }
    Ok(())
}

pub fn read_to_string(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| {
        Error::new(
            Code::FileUnreadable,
            format!("cannot read {}: {e}", path.display()),
        )
        .hint("run pgrepctl as the PostgreSQL OS user (usually postgres) or as root")
    })
}

/// Where a data directory's files are: the directory itself and each
/// tablespace its `pg_tblspc` links point to.
pub fn data_dir_roots(dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![dir.to_path_buf()];
    for e in std::fs::read_dir(dir.join("pg_tblspc"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(e.path()) {
            dirs.push(target);
        }
    }
    dirs
}

/// Flush a data directory to disk with one `syncfs` per filesystem it is
/// on (its own, and each tablespace's): what pg_basebackup and pg_rewind
/// run with `--no-sync` leave to pgrepctl, far cheaper than their fsync of
/// every file. On failure, the directory whose filesystem failed.
pub fn sync_data_dir(dir: &Path) -> Result<(), (PathBuf, std::io::Error)> {
    for d in data_dir_roots(dir) {
        std::fs::File::open(&d)
            .and_then(|f| nix::unistd::syncfs(&f).map_err(std::io::Error::from))
            .map_err(|e| (d.clone(), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_keeps_mode_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("postgresql.conf");
        fs::write(&p, "a = 1\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        atomic_write(&p, b"a = 2\n").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "a = 2\n");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn backup_is_made_once_and_keeps_the_first_original() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pg_hba.conf");
        fs::write(&p, "v1").unwrap();
        assert!(backup_once(&p, b"v1").unwrap().is_some());
        assert!(backup_once(&p, b"v2").unwrap().is_none());
        assert_eq!(fs::read_to_string(backup_path(&p)).unwrap(), "v1");
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["pg_hba.conf", "pg_hba.conf.pgrepctl.orig"]);
    }

    #[test]
    fn backup_keeps_the_mode_of_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pg_hba.conf");
        fs::write(&p, "v1").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        backup_once(&p, b"v1").unwrap();
        let m = fs::metadata(backup_path(&p)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o640);
    }

    #[test]
    fn an_empty_backup_of_a_non_empty_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pg_hba.conf");
        fs::write(&p, "v1").unwrap();
        assert_eq!(empty_backup_warning(&p, b"v1"), None);
        fs::write(backup_path(&p), "").unwrap();
        let w = empty_backup_warning(&p, b"v1").unwrap();
        assert!(w.contains("is empty"), "{w}");
        assert_eq!(empty_backup_warning(&p, b""), None);
        fs::write(backup_path(&p), "v0").unwrap();
        assert_eq!(empty_backup_warning(&p, b"v1"), None);
    }

    #[test]
    fn temp_names_are_recognised() {
        assert_eq!(stale_temp_pid(".pg_hba.conf.pgrepctl-tmp.123"), Some(123));
        assert_eq!(
            stale_temp_pid(".pg_hba.conf.pgrepctl.orig.pgrepctl-tmp.7"),
            Some(7)
        );
        assert_eq!(stale_temp_pid("pg_hba.conf.pgrepctl-tmp.123"), None);
        assert_eq!(stale_temp_pid(".pgrepctl-tmp.123"), None);
        assert_eq!(stale_temp_pid(".x.pgrepctl-tmp.12a"), None);
        assert_eq!(stale_temp_pid(".x.pgrepctl-tmp."), None);
    }

    #[test]
    fn stale_temps_of_dead_runs_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // A pid that cannot be live: above the kernel's pid_max limit.
        let dead = dir.path().join(".postgresql.conf.pgrepctl-tmp.2147483647");
        let live = dir
            .path()
            .join(format!(".pg_hba.conf.pgrepctl-tmp.{}", std::process::id()));
        let other = dir.path().join(".unrelated.tmp.1");
        for f in [&dead, &live, &other] {
            fs::write(f, "x").unwrap();
        }
        assert_eq!(remove_stale_temps(dir.path()), vec![dead.clone()]);
        assert!(!dead.exists() && live.exists() && other.exists());
        // Writing a file cleans its directory too.
        fs::remove_file(&live).unwrap();
        fs::write(&dead, "x").unwrap();
        atomic_write(&dir.path().join("postgresql.conf"), b"a").unwrap();
        assert!(!dead.exists());
    }

    #[test]
    fn create_owned_sets_the_mode_of_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("standby.signal");
        create_owned(&p, b"", 0o600, None).unwrap();
        let m = fs::metadata(&p).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
    }
}
