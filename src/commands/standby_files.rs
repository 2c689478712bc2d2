//! The files that make a stopped data directory a standby of a primary,
//! written as clone-standby writes them (`conf::standby`): recovery.conf on
//! 10–11; standby.signal and primary_conninfo/primary_slot_name in
//! postgresql.auto.conf from 12; the password file --password-file asks
//! for. rejoin and switchover both plan them; each edit is an engine
//! [`EditFile`] (atomic, put back on undo), and a file already as wanted
//! is left out, so a rerun plans nothing.

use crate::conf::standby::{self, PrimaryConninfo};
use crate::error::{Code, Error, Result};
use crate::pg::version::Version;
use crate::plan::file::EditFile;
use std::path::{Path, PathBuf};

pub struct StandbyFiles<'a> {
    pub data_dir: &'a Path,
    pub version: Version,
    pub conninfo: &'a PrimaryConninfo,
    pub slot: Option<&'a str>,
    /// The passfile primary_conninfo names, and the line it must hold.
    pub passfile: Option<(PathBuf, String)>,
    /// Settings to take out of postgresql.auto.conf (12+) as well.
    pub drop: &'a [&'a str],
    /// Owner for files that are created (root writing a server's files).
    pub owner: Option<(u32, u32)>,
    /// postgresql.auto.conf as it will be when the edit runs, when an
    /// earlier step of the plan changes it (None: as it is now).
    pub auto_conf_then: Option<String>,
}

impl StandbyFiles<'_> {
    pub fn edits(&self) -> Result<Vec<EditFile>> {
        let mut edits = vec![];
        if self.version.recovery_conf() {
            let path = self.data_dir.join("recovery.conf");
            let old = read(&path)?;
            // The archive's settings clone-standby wrote stay.
            let archive = old
                .as_deref()
                .map(standby::archive_settings_of)
                .unwrap_or_default();
            self.edit(
                &mut edits,
                path.clone(),
                old,
                standby::recovery_conf_with(self.version.num(), self.conninfo, self.slot, &archive),
                format!(
                    "standby_mode = on, primary_conninfo = '{}', recovery_target_timeline = 'latest'",
                    self.conninfo.redacted()
                ),
            );
        } else {
            let path = self.data_dir.join("standby.signal");
            if !path.exists() {
                self.edit(
                    &mut edits,
                    path,
                    None,
                    String::new(),
                    "created: start as a standby".into(),
                );
            }
            self.auto_conf(&mut edits)?;
        }
        if let Some((path, line)) = &self.passfile {
            let old = read(path)?;
            if old.as_deref() != Some(line.as_str()) {
                let mut e = EditFile::new(
                    path.clone(),
                    old,
                    line.clone(),
                    "password file for primary_conninfo (mode 0600)".into(),
                );
                e.secret = true;
                e.owner = self.owner;
                edits.push(e);
            }
        }
        Ok(edits)
    }

    fn auto_conf(&self, edits: &mut Vec<EditFile>) -> Result<()> {
        let path = self.data_dir.join("postgresql.auto.conf");
        let old = match &self.auto_conf_then {
            Some(t) => Some(t.clone()),
            None => read(&path)?,
        };
        let parse = |e: crate::conf::ParseError| {
            Error::new(
                Code::ConfigParseError,
                format!("{}:{}: {}", path.display(), e.line, e.message),
            )
            .hint("fix that line (PostgreSQL would not start with it either) and rerun")
        };
        let mut new = old.clone().unwrap_or_default();
        let mut drop: Vec<&str> = self.drop.to_vec();
        if self.slot.is_none() {
            drop.push("primary_slot_name");
        }
        if !drop.is_empty() {
            new = standby::drop_settings(&new, &drop).map_err(parse)?;
        }
        let wanted = standby::auto_conf_settings(self.version.num(), self.conninfo, self.slot, &[]);
        new = standby::edit_auto_conf(&new, &wanted).map_err(parse)?;
        self.edit(edits, path, old, new, self.auto_conf_summary());
        Ok(())
    }

    /// What the postgresql.auto.conf edit reports.
    pub fn auto_conf_summary(&self) -> String {
        let mut summary = format!("primary_conninfo = '{}'", self.conninfo.redacted());
        if let Some(slot) = self.slot {
            summary.push_str(&format!("; primary_slot_name = {slot}"));
        }
        for d in self.drop {
            summary.push_str(&format!("; {d} removed"));
        }
        summary
    }

    fn edit(
        &self,
        edits: &mut Vec<EditFile>,
        path: PathBuf,
        old: Option<String>,
        new: String,
        summary: String,
    ) {
        if old.as_deref() != Some(new.as_str()) {
            let mut e = EditFile::new(path, old, new, summary);
            e.owner = self.owner;
            edits.push(e);
        }
    }
}

pub fn read(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}
