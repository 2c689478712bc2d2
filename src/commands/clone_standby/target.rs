//! What is at the target path now, read without changing anything: the
//! facts that decide between "clone", "already a standby of this primary"
//! and "refuse".

use crate::error::{Code, Error, Result};
use crate::pg::debian;
use crate::pg::pidfile::{self, PidFile};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub enum Target {
    Absent,
    Empty,
    /// A PostgreSQL data directory.
    DataDir {
        /// From `global/pg_control`, when readable.
        system_id: Option<String>,
        /// `standby.signal` or `recovery.conf` is present.
        standby: bool,
        /// pg_control says it last ran outside recovery (stopped or
        /// crashed as a primary): it may hold commits no standby has.
        ran_as_primary: bool,
        running: Option<PidFile>,
    },
    /// Something else that is not empty.
    Other {
        running: Option<PidFile>,
    },
}

#[derive(Debug, Clone)]
pub struct TargetFacts {
    pub path: PathBuf,
    pub state: Target,
    /// The target is a mount point: the copy must be made inside it, since
    /// a directory beside it is on another filesystem.
    pub mount_point: bool,
    /// The directory that must hold the copy's bytes (for free space).
    pub space_dir: PathBuf,
}

pub fn inspect(path: &Path) -> Result<TargetFacts> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| {
            Error::new(
                Code::InvalidValue,
                format!("{} has no parent directory", path.display()),
            )
        })?;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(format!("cannot examine {}", path.display()), e)),
    };
    let Some(meta) = meta else {
        if !parent.is_dir() {
            return Err(Error::new(
                Code::InvalidValue,
                format!("the parent directory {} does not exist", parent.display()),
            )
            .hint("create it (owned by the PostgreSQL user) or choose another -D"));
        }
        return Ok(TargetFacts {
            path: path.to_path_buf(),
            state: Target::Absent,
            mount_point: false,
            space_dir: parent.to_path_buf(),
        });
    };
    let meta = if meta.file_type().is_symlink() {
        std::fs::metadata(path)
            .map_err(|e| Error::io(format!("cannot follow {}", path.display()), e))?
    } else {
        meta
    };
    if !meta.is_dir() {
        return Err(Error::new(
            Code::PgdataNotEmpty,
            format!("{} exists and is not a directory", path.display()),
        )
        .hint("choose another -D or remove it"));
    }
    guard(path)?;
    let mount_point = std::fs::metadata(parent)
        .map(|p| p.dev() != meta.dev())
        .unwrap_or(false);
    let space_dir = if mount_point {
        path.to_path_buf()
    } else {
        parent.to_path_buf()
    };
    Ok(TargetFacts {
        path: path.to_path_buf(),
        state: existing(path)?,
        mount_point,
        space_dir,
    })
}

/// What an existing directory holds: nothing of note, a data directory,
/// or something else (and whether a postmaster runs on it).
fn existing(path: &Path) -> Result<Target> {
    let entries: Vec<String> = std::fs::read_dir(path)
        .map_err(|e| {
            Error::io(format!("cannot list {}", path.display()), e)
                .hint("run pgrepctl as the PostgreSQL user or as root")
        })?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // Our own leftovers from an interrupted run and lost+found of a
        // fresh filesystem do not make a directory "in use".
        .filter(|n| !n.starts_with(".pgrepctl-clone.") && n != "lost+found")
        .collect();
    Ok(if entries.is_empty() {
        Target::Empty
    } else if path.join("PG_VERSION").is_file() && path.join("global").is_dir() {
        Target::DataDir {
            system_id: system_id(path),
            standby: path.join("standby.signal").exists() || path.join("recovery.conf").exists(),
            ran_as_primary: ran_as_primary(path),
            running: pidfile::running(path),
        }
    } else {
        Target::Other {
            running: pidfile::running(path),
        }
    })
}

/// Whether pg_control's state is one a primary leaves: anything but
/// "shut down in recovery" and "in archive recovery". Unreadable: false.
/// A base backup never started (backup_label) carries its primary's
/// state, but nothing of its own; the label an exclusive pg_start_backup
/// (10–14) leaves in the primary itself does not make it a copy.
pub fn ran_as_primary(data_dir: &Path) -> bool {
    use crate::pg::controldata::ClusterState;
    if let Ok(label) = std::fs::read_to_string(data_dir.join("backup_label")) {
        if !label.contains("BACKUP METHOD: pg_start_backup") {
            return false;
        }
    }
    let Some(head) = control_head(data_dir) else {
        return false;
    };
    let state = i32::from_ne_bytes([head[16], head[17], head[18], head[19]]);
    !matches!(
        ClusterState::from_db_state(state),
        ClusterState::ShutDownInRecovery | ClusterState::InArchiveRecovery
    )
}

/// The database system identifier: the first eight bytes of
/// `global/pg_control` (`ControlFileData.system_identifier`, native byte
/// order), the same number `IDENTIFY_SYSTEM` reports.
pub fn system_id(data_dir: &Path) -> Option<String> {
    let head = control_head(data_dir)?;
    Some(u64::from_ne_bytes(head[..8].try_into().ok()?).to_string())
}

/// The start of `global/pg_control`, read directly because pg_controldata
/// is missing from some installations: the system identifier, two version
/// numbers and the cluster state (`DBState`), the same layout on 10–18.
fn control_head(data_dir: &Path) -> Option<[u8; 20]> {
    use std::io::Read;
    let mut buf = [0u8; 20];
    std::fs::File::open(data_dir.join("global/pg_control"))
        .and_then(|mut f| f.read_exact(&mut buf))
        .ok()?;
    Some(buf)
}

/// Refuse a target that is some cluster's configuration directory, or
/// that holds a running server's data directory or a Debian cluster's
/// configuration further down: `--force` would delete them. (The target
/// being itself a running data directory is the plan's decision.)
pub fn guard(path: &Path) -> Result<()> {
    let in_use = |what: String| {
        Error::new(
            Code::TargetInUse,
            format!(
                "{} {what}; pgrepctl will not replace it, even with --force",
                path.display()
            ),
        )
        .hint("give -D the standby's own data directory (Debian: /var/lib/postgresql/MAJOR/NAME)")
    };
    if path.join("start.conf").is_file() || path.join("pg_ctl.conf").is_file() {
        return Err(in_use(
            "is a Debian cluster's configuration directory (it has start.conf)".into(),
        ));
    }
    if let Ok(text) = std::fs::read_to_string(path.join("postgresql.conf")) {
        if let Some(dd) = debian::data_directory_setting(&text) {
            if Path::new(&dd) != path {
                return Err(in_use(format!(
                    "is a configuration directory: its postgresql.conf sets data_directory = '{dd}'"
                )));
            }
        }
    }
    let Ok(canon) = std::fs::canonicalize(path) else {
        return Ok(());
    };
    for dir in pidfile::running_data_dirs() {
        if dir != canon && dir.starts_with(&canon) {
            return Err(in_use(format!(
                "contains the data directory of a running server ({})",
                dir.display()
            )));
        }
    }
    for cluster in debian::clusters(Path::new(debian::ETC_ROOT)) {
        for d in [&cluster.config_dir, &cluster.data_dir] {
            let d = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
            if d != canon && d.starts_with(&canon) {
                return Err(in_use(format!(
                    "contains a Debian cluster's files ({})",
                    d.display()
                )));
            }
        }
    }
    Ok(())
}

/// A running server's data directory at or under `path`, looked at again
/// right before the target is moved aside or removed: the inspection is a
/// whole copy old by then, and a package upgrade or systemd may have
/// started a server in between. Only a live postmaster counts: a stale
/// pid file (a crashed primary's), its PID reused by another process, or
/// a shell working in the directory is no server.
pub fn server_in(path: &Path) -> Option<PathBuf> {
    let canon = std::fs::canonicalize(path).ok()?;
    if let Some(pf) = pidfile::running(path) {
        // The postmaster works in its data directory; a PID whose working
        // directory is elsewhere was reused. Unreadable (another user
        // without root): trust the pid file.
        match std::fs::read_link(format!("/proc/{}/cwd", pf.pid)) {
            Ok(cwd) if cwd != canon => {}
            _ => return Some(path.to_path_buf()),
        }
    }
    pidfile::running_data_dirs()
        .into_iter()
        .find(|d| d.starts_with(&canon))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_dir(state: i32) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("global")).unwrap();
        let mut control = vec![0u8; 512];
        control[16..20].copy_from_slice(&state.to_ne_bytes());
        std::fs::write(d.path().join("global/pg_control"), control).unwrap();
        d
    }

    #[test]
    fn a_former_primary_by_its_control_file_state() {
        // shut down, in production, in crash recovery: a primary's states.
        for state in [1, 4, 6] {
            assert!(ran_as_primary(data_dir(state).path()), "{state}");
        }
        // shut down in recovery, in archive recovery: a standby's.
        for state in [2, 5] {
            assert!(!ran_as_primary(data_dir(state).path()), "{state}");
        }
        let d = data_dir(6);
        let label = d.path().join("backup_label");
        // A copy never started carries its primary's state.
        std::fs::write(
            &label,
            "START WAL LOCATION: 0/2000028\nBACKUP METHOD: streamed\n",
        )
        .unwrap();
        assert!(!ran_as_primary(d.path()));
        // An exclusive backup's label sits in the primary itself (10–14).
        std::fs::write(&label, "BACKUP METHOD: pg_start_backup\n").unwrap();
        assert!(ran_as_primary(d.path()));
        assert!(!ran_as_primary(&d.path().join("absent")));
    }

    #[test]
    fn only_a_live_postmaster_is_a_server() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        std::fs::create_dir(&data).unwrap();
        // postmaster.pid as a postmaster writes it: pid, data directory,
        // start time, port, socket directory, listen address.
        let pid_file = |pid: u32| {
            let text = format!("{pid}\n{}\n1764650000\n5432\n/tmp\n*\n", data.display());
            std::fs::write(data.join("postmaster.pid"), text).unwrap();
        };
        // A process working in the directory, with a stale pid file naming
        // another (a shell in a crashed primary's directory).
        let mut shell = std::process::Command::new("sleep")
            .arg("30")
            .current_dir(&data)
            .spawn()
            .unwrap();
        pid_file(999_999_999);
        let seen = server_in(&data);
        // The same process named by the pid file: it is the postmaster.
        pid_file(shell.id());
        let named = server_in(&data);
        // A live PID in the pid file whose process works elsewhere (reused).
        pid_file(std::process::id());
        assert!(pidfile::running(&data).is_some(), "a complete pid file");
        let reused = server_in(&data);
        let _ = shell.kill();
        let _ = shell.wait();
        assert_eq!(seen, None);
        assert_eq!(named, Some(data.clone()));
        assert_eq!(reused, None);
    }
}
