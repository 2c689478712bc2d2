//! Editing one configuration file: atomically, with one backup of the
//! original, and undone by putting the original back.

use super::{Action, Applied, Cx, SyncUndo};
use crate::error::{Code, Error, Result};
use crate::fsutil;
use crate::report::{Change, Kind};
use futures_util::future::LocalBoxFuture;
use std::path::PathBuf;

/// A file's new contents, decided before anything is written.
#[derive(Debug, Clone)]
pub struct EditFile {
    /// Where the file is written (inside a temporary copy during a clone).
    pub path: PathBuf,
    /// Where it is reported: where it will be once the copy is in place.
    pub shown_path: PathBuf,
    /// The contents planned against; `None` for a file that is created.
    pub old: Option<String>,
    pub new: String,
    pub summary: String,
    /// Holds a password: never diffed, created 0600.
    pub secret: bool,
    /// Text that must never appear in a diff (a password in a conninfo).
    pub redact: Option<String>,
    /// Owner for a file that is created (root making a server's file).
    pub owner: Option<(u32, u32)>,
    /// Keep the original beside the file the first time it is changed.
    pub backup: bool,
}

impl EditFile {
    pub fn new(path: PathBuf, old: Option<String>, new: String, summary: String) -> EditFile {
        EditFile {
            shown_path: path.clone(),
            path,
            old,
            new,
            summary,
            secret: false,
            redact: None,
            owner: None,
            backup: true,
        }
    }

    /// The unified diff shown for this edit (none for secrets and for
    /// empty files such as standby.signal).
    pub fn diff(&self) -> Option<String> {
        if self.secret {
            return None;
        }
        let d = crate::report::diff(
            &self.shown_path,
            self.old.as_deref().unwrap_or(""),
            &self.new,
        );
        let d = match &self.redact {
            Some(p) if !p.is_empty() => d.replace(p.as_str(), crate::secret::REDACTED),
            _ => d,
        };
        Some(d).filter(|d| !d.is_empty())
    }

    pub fn change(&self) -> Change {
        Change {
            kind: Kind::File,
            path: Some(self.shown_path.clone()),
            summary: self.summary.clone(),
            diff: self.diff(),
        }
    }

    /// Write the file (after checking it is still what was planned
    /// against); the returned undo puts the original back.
    pub fn write<E: 'static>(&self, cx: &mut Cx<E>) -> Result<Applied<E>> {
        let now = match std::fs::read_to_string(&self.path) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(format!("cannot read {}", self.path.display()), e)),
        };
        if now != self.old {
            return Err(Error::new(
                Code::Io,
                format!("{} changed while pgrepctl was running", self.path.display()),
            )
            .hint("rerun pgrepctl"));
        }
        let mut applied = Applied::changed();
        let mut made_backup = None;
        if let Some(old) = self.old.as_ref().filter(|_| self.backup && !self.secret) {
            if let Some(b) = fsutil::backup_once(&self.path, old.as_bytes())? {
                made_backup = Some(b.clone());
                cx.printer
                    .debug(format!("backup of the original: {}", b.display()));
                applied = applied.undo(SyncUndo(move |_: &mut Cx<E>| {
                    std::fs::remove_file(&b)
                        .map_err(|e| Error::io(format!("cannot remove {}", b.display()), e))
                }));
            } else if let Some(w) = fsutil::empty_backup_warning(&self.path, old.as_bytes()) {
                cx.warnings.push(w);
            }
        }
        let written = match &self.old {
            Some(_) if !self.secret => fsutil::atomic_write(&self.path, self.new.as_bytes()),
            _ => fsutil::create_owned(&self.path, self.new.as_bytes(), 0o600, self.owner),
        };
        if let Err(e) = written {
            // Not changed after all: the backup made for it goes too.
            if let Some(b) = made_backup {
                let _ = std::fs::remove_file(b);
            }
            return Err(e);
        }
        cx.printer
            .info(format!("wrote {}", self.shown_path.display()));
        let (path, old) = (self.path.clone(), self.old.clone());
        Ok(applied.undo(SyncUndo(move |_: &mut Cx<E>| match &old {
            Some(text) => fsutil::atomic_write(&path, text.as_bytes()),
            None => std::fs::remove_file(&path)
                .map_err(|e| Error::io(format!("cannot remove {}", path.display()), e)),
        })))
    }
}

impl<E: 'static> Action<E> for EditFile {
    fn describe(&self) -> Option<Change> {
        Some(self.change())
    }

    fn preflight(&self) -> Result<()> {
        if self.old.is_some() {
            fsutil::check_writable(&self.path)?;
        }
        Ok(())
    }

    fn label(&self) -> String {
        format!("edit {}: {}", self.shown_path.display(), self.summary)
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<E>) -> LocalBoxFuture<'s, Result<Applied<E>>> {
        let r = self.write(cx);
        Box::pin(async move { r })
    }
}
