//! `wal-fetch NAME PATH DIR`, what restore_command runs. The server reads
//! PATH as soon as this exits 0, so PATH appears complete or not at all
//! (a temp file beside it, fsynced, renamed). A missing NAME is the normal
//! end of archive recovery: exit 1 and nothing on stderr, since the server
//! asks for the next segment every few seconds while it streams.
//!
//! Exactly NAME is fetched: asked for a segment, a `.partial` of it is
//! never returned (that is the old timeline's unfinished segment, which
//! recovery must not mistake for the complete one); asked for a history
//! file, the history file.

use super::copy::{self, Publish};
use super::name;
use crate::error::{Code, Error, Result};
use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;

/// What a fetch found.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    Restored,
    /// No such file in the archive.
    Missing,
}

pub fn fetch(file_name: &str, path: &Path, dir: &Path) -> Result<Fetched> {
    if name::parse(file_name).is_none() {
        return Err(Error::new(
            Code::InvalidValue,
            format!(
                "wal-fetch: {file_name:?} is not a file name PostgreSQL restores (a WAL segment, .partial, .history or .backup file): use restore_command = 'pgrepctl wal-fetch %f %p DIR'"
            ),
        ));
    }
    super::check_archive_dir("wal-fetch", dir)?;
    let src_path = dir.join(file_name);
    let mut src = match File::open(&src_path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Fetched::Missing),
        Err(e) => {
            return Err(Error::io(
                format!("wal-fetch: cannot read {}", src_path.display()),
                e,
            ));
        }
    };
    if !src.metadata().is_ok_and(|m| m.is_file()) {
        return Err(Error::new(
            Code::FileUnreadable,
            format!("wal-fetch: {} is not a regular file", src_path.display()),
        ));
    }
    copy::remove_stale_temps(
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    );
    copy::copy_durably(&mut src, path, 0o600, Publish::Replace).map_err(|e| {
        Error::io(
            format!(
                "wal-fetch: cannot restore {} to {}",
                src_path.display(),
                path.display()
            ),
            e,
        )
    })?;
    Ok(Fetched::Restored)
}
