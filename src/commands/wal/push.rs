//! `wal-push PATH DIR`, what archive_command runs: the server counts the
//! file archived once this exits 0, and may recycle it from pg_wal at once,
//! so 0 means the bytes are on disk in the archive under their final name.
//! An archived file is never replaced: a retry after a crash finds its own
//! earlier copy (identical: success), while a different file of the same
//! name — another cluster writing to the same archive, or a damaged copy —
//! is refused, and the server keeps the segment and retries until someone
//! looks.

use super::copy::{self, Placed, Publish};
use super::name;
use crate::error::{Code, Error, Result};
use std::fs::File;
use std::path::Path;

/// What a successful push did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Copied into the archive now.
    Archived,
    /// An identical file was there already (a retry).
    AlreadyArchived,
}

/// Archive `path` (absolute, or relative to the working directory: the
/// server runs archive_command in PGDATA) into `dir`.
pub fn push(path: &Path, dir: &Path) -> Result<Pushed> {
    let file_name = archive_name(path)?;
    super::check_archive_dir("wal-push", dir)?;
    let mut src = File::open(path)
        .map_err(|e| Error::io(format!("wal-push: cannot read {}", path.display()), e))?;
    // Every push, a retry included, clears what a killed one left.
    copy::remove_stale_temps(dir);
    let dest = dir.join(&file_name);
    // The common retry: the file is there already.
    if dest.exists() {
        return existing(path, &dest);
    }
    let placed = copy::copy_durably(&mut src, &dest, 0o640, Publish::NoReplace).map_err(|e| {
        Error::io(
            format!(
                "wal-push: cannot archive {} into {}",
                path.display(),
                dir.display()
            ),
            e,
        )
    })?;
    match placed {
        Placed::Written => Ok(Pushed::Archived),
        // Another push of the same name won the race.
        Placed::Exists => existing(path, &dest),
    }
}

/// The final name in the archive: PATH's file name, which must be one
/// PostgreSQL archives.
fn archive_name(path: &Path) -> Result<String> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name::parse(&file_name).is_none() {
        return Err(Error::new(
            Code::InvalidValue,
            format!(
                "wal-push: {} is not a file PostgreSQL archives (a WAL segment, .partial, .history or .backup file): use archive_command = 'pgrepctl wal-push %p DIR'",
                path.display()
            ),
        ));
    }
    Ok(file_name)
}

/// `dest` exists: success when it holds the same bytes as `path` (made
/// durable again: the crash may have come before its fsync), else a
/// failure that leaves it as it is.
fn existing(path: &Path, dest: &Path) -> Result<Pushed> {
    let same = copy::same_content(path, dest).map_err(|e| {
        Error::io(
            format!(
                "wal-push: cannot compare {} with {}",
                path.display(),
                dest.display()
            ),
            e,
        )
    })?;
    if !same {
        return Err(Error::new(
            Code::ArchiveConflict,
            format!(
                "wal-push: {} already exists in the archive with different content than {}; it was left as it is: check that no other cluster archives into this directory, and move the archived file aside only if it is damaged",
                dest.display(),
                path.display()
            ),
        ));
    }
    let sync = File::open(dest)
        .and_then(|f| f.sync_all())
        .and_then(|()| File::open(dest.parent().unwrap_or(Path::new(".")))?.sync_all());
    sync.map_err(|e| Error::io(format!("wal-push: cannot fsync {}", dest.display()), e))?;
    Ok(Pushed::AlreadyArchived)
}
