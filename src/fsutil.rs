//! File writes that cannot lose data: a crash at any point leaves either the
//! old or the new file, never a torn one, and the first change keeps a copy
//! of the original beside it.

use crate::error::{Code, Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Suffix of the one backup pgrepctl keeps: the file as it was before
/// pgrepctl first changed it. Later runs never overwrite it, so it always
/// shows the DBA's own version.
pub const BACKUP_SUFFIX: &str = ".pgrepctl.orig";

pub fn backup_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(BACKUP_SUFFIX);
    PathBuf::from(s)
}

/// Replace `path` with `contents`: temp file in the same directory, fsync,
/// rename over, fsync the directory. Mode and owner of the existing file are
/// kept (pgrepctl often runs as root on files the postgres user must read).
pub fn atomic_write(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = parent(path);
    let meta = fs::metadata(path).ok();
    let mode = meta
        .as_ref()
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o600);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.pgrepctl-tmp.{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        if let Some(m) = &meta {
            if m.uid() != nix::unistd::geteuid().as_raw()
                || m.gid() != nix::unistd::getegid().as_raw()
            {
                std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()))?;
            }
        }
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
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

/// Copy the original aside the first time pgrepctl changes a file. Returns
/// the backup path when one was made now.
pub fn backup_once(path: &Path, original: &[u8]) -> Result<Option<PathBuf>> {
    let backup = backup_path(path);
    if backup.exists() {
        return Ok(None);
    }
    atomic_write_new(&backup, original, path)?;
    Ok(Some(backup))
}

/// Write a new file with the mode and owner of `like`.
fn atomic_write_new(path: &Path, contents: &[u8], like: &Path) -> Result<()> {
    let meta =
        fs::metadata(like).map_err(|e| Error::io(format!("cannot read {}", like.display()), e))?;
    // Create an empty file with the right identity, then replace atomically.
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(meta.permissions().mode() & 0o7777)
        .open(path)
        .map_err(|e| Error::io(format!("cannot create backup {}", path.display()), e))?;
    let _ = std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid()));
    drop(f);
    atomic_write(path, contents)
}

/// Create or replace `path` atomically with this mode and, when given,
/// owner (files pgrepctl creates as root in a data directory must belong
/// to the server's user).
pub fn create_owned(
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    if !path.exists() {
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(format!("cannot set the mode of {}", path.display()), e))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(|e| {
                Error::io(format!("cannot change the owner of {}", path.display()), e)
            })?;
        }
    }
    atomic_write(path, contents)
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
    }
}
