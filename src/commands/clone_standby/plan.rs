//! What to do with the target, decided from the facts alone (pure, so every
//! refusal is unit-tested without a server).

use super::compress::{self, Choice};
use super::preflight::{Facts, Walsender, space_needed};
use super::settings::Settings;
use super::target::Target;
use crate::error::{Code, Error, Result};
use crate::units::human_bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Copy the primary into place, replacing what is there (--force).
    Clone { replace: Replace },
    /// The target already is a standby of this primary: re-check its
    /// configuration, start it if stopped, and wait for streaming.
    Reconcile { running: bool },
}

/// What becomes of the target's old contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Absent or empty: nothing to replace.
    Nothing,
    /// Kept aside until the new standby runs, then removed.
    Discard,
    /// A former primary of this cluster (pg_control: it last ran outside
    /// recovery). It may hold commits the primary never received, so it
    /// is kept for good beside the target, as rejoin's re-clone keeps one.
    Keep,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub action: Action,
    /// How the copy is compressed (also reported when nothing is copied).
    pub compression: Choice,
}

/// The inputs of [`decide`], kept small so tests need no full `Facts`.
pub struct Inputs<'a> {
    pub target: &'a Target,
    pub path: &'a std::path::Path,
    pub primary_system_id: &'a str,
    pub force: bool,
    /// The target is a mount point: what it held cannot be kept beside it.
    pub mount_point: bool,
    pub size: Option<u64>,
    pub wal_segment_size: u64,
    pub free: Option<u64>,
    /// How this target's server is stopped (pg_ctlcluster for a Debian
    /// cluster), for the hint when one runs there.
    pub stop_command: &'a str,
    /// --primary reaches the server running on the target itself.
    pub upstream_is_target: bool,
    /// --primary as the standby will use it, for messages.
    pub primary_name: &'a str,
}

pub fn plan(settings: &Settings, facts: &Facts) -> Result<Plan> {
    let stop_command = match &facts.debian {
        Some((version, cluster, _)) => format!("pg_ctlcluster {version} {cluster} stop"),
        None => format!("pg_ctl -D {} stop -m fast", facts.target.path.display()),
    };
    let action = decide(&Inputs {
        target: &facts.target.state,
        path: &facts.target.path,
        primary_system_id: &facts.primary.identity.system_id,
        force: settings.force,
        mount_point: facts.target.mount_point,
        size: facts.primary.size,
        wal_segment_size: facts.primary.wal_segment_size,
        free: facts.free_bytes,
        stop_command: &stop_command,
        upstream_is_target: facts.upstream_is_target,
        primary_name: &settings.primary_name(),
    })?;
    if let Action::Clone { .. } = action {
        slot_free(settings.slot.as_deref(), facts.walsenders.as_deref())?;
    }
    let compression = match action {
        Action::Clone { .. } => compress::decide(settings.compress, &facts.ends)?,
        Action::Reconcile { .. } => Choice {
            method: compress::Method::None,
            reason: "nothing is copied: the target already is a standby of this primary".into(),
            auto: false,
            probe: None,
        },
    };
    Ok(Plan {
        action,
        compression,
    })
}

/// A copy through a slot another walsender holds would fail only once
/// pg_basebackup starts ("replication slot … is active for PID …"), after
/// the checkpoint; refused before anything is done, where the primary's
/// walsenders could be read (a normal connection with the same role).
fn slot_free(slot: Option<&str>, senders: Option<&[Walsender]>) -> Result<()> {
    let (Some(slot), Some(senders)) = (slot, senders) else {
        return Ok(());
    };
    let Some(holder) = senders.iter().find(|s| s.slot.as_deref() == Some(slot)) else {
        return Ok(());
    };
    let from = holder.addr.map_or(String::new(), |a| format!(" from {a}"));
    Err(Error::new(
        Code::SlotConflict,
        format!(
            "replication slot {slot} is in use on the primary: a walsender streams through it (application_name {}{from}), and a slot serves one standby at a time",
            holder.application_name
        ),
    )
    .hint("give this standby a slot of its own (--slot NAME, created if missing), or stop the standby that uses this one and rerun; nothing was changed"))
}

pub fn decide(i: &Inputs) -> Result<Action> {
    let dir = i.path.display();
    let action = match i.target {
        Target::Absent | Target::Empty => Action::Clone {
            replace: Replace::Nothing,
        },
        Target::DataDir {
            system_id,
            standby,
            ran_as_primary,
            running,
        } => data_dir_action(
            i,
            system_id.as_deref() == Some(i.primary_system_id),
            *standby,
            *ran_as_primary,
            running.is_some(),
        )?,
        Target::Other { running: Some(_) } => {
            return Err(running_error(&dir.to_string(), i.stop_command));
        }
        Target::Other { running: None } if i.force => Action::Clone {
            replace: Replace::Discard,
        },
        Target::Other { running: None } => {
            return Err(
                Error::new(Code::PgdataNotEmpty, format!("{dir} is not empty"))
                    .hint("choose an empty -D, or pass --force to replace its contents"),
            );
        }
    };
    // Size unknown (the replication role may not read it): pg_basebackup's
    // WAL streamer still writes whole segments before the size is
    // announced, so at least that room must be there now.
    if let (Action::Clone { .. }, None, Some(free)) = (action, i.size, i.free) {
        let need = space_needed(0, i.wal_segment_size);
        if need > free {
            return Err(Error::new(
                Code::DiskSpace,
                format!(
                    "the copy needs more than {} at {dir} (WAL segments are written before the size is known), and {} is free",
                    human_bytes(need),
                    human_bytes(free)
                ),
            )
            .hint("free space there or choose a data directory on a larger filesystem"));
        }
    }
    if let (Action::Clone { .. }, Some(size), Some(free)) = (action, i.size, i.free) {
        let need = space_needed(size, i.wal_segment_size);
        if need > free {
            return Err(Error::new(
                Code::DiskSpace,
                format!(
                    "the copy needs about {} at {dir} (the primary's {} plus a margin), and {} is free",
                    human_bytes(need),
                    human_bytes(size),
                    human_bytes(free)
                ),
            )
            .hint("free space there or choose a data directory on a larger filesystem"));
        }
    }
    Ok(action)
}

/// The target is a data directory: reconcile a standby of this primary,
/// replace (--force) or keep a stopped one, refuse a running one.
fn data_dir_action(
    i: &Inputs,
    same: bool,
    standby: bool,
    ran_as_primary: bool,
    running: bool,
) -> Result<Action> {
    let dir = i.path.display().to_string();
    if same && standby && running && i.upstream_is_target {
        return Err(Error::new(
            Code::InvalidAddress,
            format!(
                "--primary {} is the standby at {dir} itself (same system identifier, and its postmaster listens there): a standby streaming from itself never advances",
                i.primary_name
            ),
        )
        .hint("give the primary's address in --primary (or an upstream standby's), not this standby's own"));
    }
    Ok(match (same, standby, running) {
        (true, false, true) => {
            return Err(Error::new(
                Code::TargetIsPrimary,
                format!("{dir} is the running primary itself (same system identifier, not a standby)"),
            )
            .hint("run clone-standby on the standby host, with -D naming the standby's own data directory"));
        }
        // A running standby of this primary is reconciled, with or
        // without --force: --force replaces only what no server runs on,
        // and the README's clone command has it.
        (true, true, true) => Action::Reconcile { running: true },
        // A standby.signal in a former primary (put there by hand, or by
        // a rejoin stopped before its start): it may have diverged, which
        // only rejoin checks.
        (true, true, false) if !i.force && ran_as_primary => {
            return Err(Error::new(
                Code::PgdataNotEmpty,
                format!("{dir} has a standby.signal but last ran as a primary (pg_control): it may hold WAL this primary never had"),
            )
            .hint(format!("bring it back with pgrepctl rejoin -D {dir} --primary … (it rewinds it if it diverged), or pass --force to replace it (it is kept beside it as PGDATA.replaced-TIMESTAMP)")));
        }
        (true, true, false) if !i.force => Action::Reconcile { running: false },
        (_, _, true) => return Err(running_error(&dir, i.stop_command)),
        // Even with a standby.signal: a rejoin stopped before its start
        // leaves one in a former primary.
        (true, _, false) if i.force && ran_as_primary => {
            if i.mount_point {
                return Err(former_primary_on_mount_point(&dir));
            }
            Action::Clone {
                replace: Replace::Keep,
            }
        }
        (_, _, false) if i.force => Action::Clone {
            replace: Replace::Discard,
        },
        (_, _, false) => {
            let (why, then) = match (same, ran_as_primary) {
                (true, true) => (
                    "a former primary of this primary's cluster",
                    "it is kept beside it as PGDATA.replaced-TIMESTAMP",
                ),
                (true, false) => (
                    "a data directory of this primary's cluster that is not a standby",
                    "its contents will be lost",
                ),
                _ => (
                    "a data directory of another cluster",
                    "its contents will be lost",
                ),
            };
            return Err(
                Error::new(Code::PgdataNotEmpty, format!("{dir} is {why}")).hint(format!(
                    "choose an empty -D, or pass --force to replace it ({then})"
                )),
            );
        }
    })
}

fn former_primary_on_mount_point(dir: &str) -> Error {
    Error::new(
        Code::PgdataNotEmpty,
        format!("{dir} holds a former primary of this cluster, and it is a mount point: pgrepctl keeps a former primary's directory aside (it may hold commits the primary never received), and on this filesystem only inside the new standby's data directory"),
    )
    .hint(format!("move what {dir} holds to another filesystem (a directory inside {dir} would be replaced with the rest), or delete it if nothing there is needed, and rerun; if pg_rewind can bring it back, pgrepctl rejoin -D {dir} --primary … needs no copy"))
}

fn running_error(dir: &str, stop: &str) -> Error {
    Error::new(
        Code::PostmasterRunning,
        format!("a postmaster is running on {dir}"),
    )
    .hint(format!(
        "stop it first ({stop}); pgrepctl never replaces a directory a server is using"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::pidfile::PidFile;
    use std::path::Path;

    fn pid() -> Option<PidFile> {
        Some(PidFile {
            pid: 1,
            data_dir: "/d".into(),
            port: 5432,
            socket_dir: "/tmp".into(),
            listen_addr: String::new(),
        })
    }

    #[test]
    fn a_slot_another_walsender_holds_is_refused() {
        let sender = |slot: Option<&str>| Walsender {
            application_name: "db2".into(),
            addr: "10.0.0.2".parse().ok(),
            slot: slot.map(str::to_owned),
        };
        let senders = [sender(None), sender(Some("db2"))];
        let e = slot_free(Some("db2"), Some(&senders)).unwrap_err();
        assert_eq!(e.code, Code::SlotConflict);
        assert!(
            e.message
                .contains("slot db2 is in use on the primary: a walsender streams through it (application_name db2 from 10.0.0.2)"),
            "{}",
            e.message
        );
        assert!(slot_free(Some("db3"), Some(&senders)).is_ok());
        assert!(slot_free(None, Some(&senders)).is_ok());
        // Walsenders unknown (the role may not log in to a database):
        // pg_basebackup's own error then says it.
        assert!(slot_free(Some("db2"), None).is_ok());
    }

    fn run(target: Target, force: bool) -> Result<Action> {
        decide(&Inputs {
            target: &target,
            path: Path::new("/d"),
            primary_system_id: "42",
            force,
            mount_point: false,
            size: Some(100),
            wal_segment_size: 16,
            free: Some(1 << 40),
            stop_command: "pg_ctl -D /d stop -m fast",
            upstream_is_target: false,
            primary_name: "host=p port=5432",
        })
    }

    fn dd(id: &str, standby: bool, running: Option<PidFile>) -> Target {
        Target::DataDir {
            system_id: Some(id.into()),
            standby,
            ran_as_primary: !standby,
            running,
        }
    }

    #[test]
    fn empty_or_absent_clone() {
        assert_eq!(
            run(Target::Absent, false).unwrap(),
            Action::Clone {
                replace: Replace::Nothing
            }
        );
        assert_eq!(
            run(Target::Empty, true).unwrap(),
            Action::Clone {
                replace: Replace::Nothing
            }
        );
    }

    #[test]
    fn existing_standby_of_same_primary_is_reconciled() {
        assert_eq!(
            run(dd("42", true, pid()), false).unwrap(),
            Action::Reconcile { running: true }
        );
        assert_eq!(
            run(dd("42", true, None), false).unwrap(),
            Action::Reconcile { running: false }
        );
        assert_eq!(
            run(dd("42", true, None), true).unwrap(),
            Action::Clone {
                replace: Replace::Discard
            }
        );
        // --force on a running standby of the same primary: the same no-op.
        assert_eq!(
            run(dd("42", true, pid()), true).unwrap(),
            Action::Reconcile { running: true }
        );
    }

    #[test]
    fn a_former_primary_of_this_cluster_is_kept() {
        let keep = Action::Clone {
            replace: Replace::Keep,
        };
        assert_eq!(run(dd("42", false, None), true).unwrap(), keep);
        // A rejoin stopped before its start leaves a standby.signal in it.
        let signalled = Target::DataDir {
            system_id: Some("42".into()),
            standby: true,
            ran_as_primary: true,
            running: None,
        };
        assert_eq!(run(signalled.clone(), true).unwrap(), keep);
        // Without --force it is not started as a standby as it is: only
        // rejoin checks that it did not diverge.
        let e = run(signalled, false).unwrap_err();
        assert_eq!(e.code, Code::PgdataNotEmpty);
        assert!(e.hint.unwrap().contains("pgrepctl rejoin"));
        // Another cluster's primary is replaced as asked.
        assert_eq!(
            run(dd("7", false, None), true).unwrap(),
            Action::Clone {
                replace: Replace::Discard
            }
        );
        // On a mount point it could only be kept inside the new standby.
        let e = decide(&Inputs {
            target: &dd("42", false, None),
            path: Path::new("/d"),
            primary_system_id: "42",
            force: true,
            mount_point: true,
            size: Some(100),
            wal_segment_size: 16,
            free: Some(1 << 40),
            stop_command: "pg_ctl -D /d stop -m fast",
            upstream_is_target: false,
            primary_name: "host=p port=5432",
        })
        .unwrap_err();
        assert_eq!(e.code, Code::PgdataNotEmpty);
        assert!(e.message.contains("former primary"), "{}", e.message);
    }

    #[test]
    fn a_running_standby_is_not_its_own_primary() {
        let e = decide(&Inputs {
            target: &dd("42", true, pid()),
            path: Path::new("/d"),
            primary_system_id: "42",
            force: true,
            mount_point: false,
            size: Some(100),
            wal_segment_size: 16,
            free: Some(1 << 40),
            stop_command: "pg_ctl -D /d stop -m fast",
            upstream_is_target: true,
            primary_name: "host=127.0.0.1 port=5432",
        })
        .unwrap_err();
        assert_eq!(e.code, Code::InvalidAddress);
        assert!(e.message.contains("itself"), "{}", e.message);
        assert!(e.code.is_usage());
    }

    #[test]
    fn refusals() {
        assert_eq!(
            run(dd("42", false, pid()), true).unwrap_err().code,
            Code::TargetIsPrimary
        );
        assert_eq!(
            run(dd("7", false, pid()), true).unwrap_err().code,
            Code::PostmasterRunning
        );
        assert_eq!(
            run(dd("7", true, None), false).unwrap_err().code,
            Code::PgdataNotEmpty
        );
        assert_eq!(
            run(Target::Other { running: None }, false)
                .unwrap_err()
                .code,
            Code::PgdataNotEmpty
        );
        assert_eq!(
            run(Target::Other { running: pid() }, true)
                .unwrap_err()
                .code,
            Code::PostmasterRunning
        );
        assert_eq!(
            run(Target::Other { running: None }, true).unwrap(),
            Action::Clone {
                replace: Replace::Discard
            }
        );
    }

    #[test]
    fn disk_space_for_the_wal_when_the_size_is_unknown() {
        let e = decide(&Inputs {
            target: &Target::Empty,
            path: Path::new("/d"),
            primary_system_id: "42",
            force: false,
            mount_point: false,
            size: None,
            wal_segment_size: 16 << 20,
            free: Some(8 << 20),
            stop_command: "pg_ctl -D /d stop -m fast",
            upstream_is_target: false,
            primary_name: "host=p port=5432",
        })
        .unwrap_err();
        assert_eq!(e.code, Code::DiskSpace);
    }

    #[test]
    fn disk_space() {
        let e = decide(&Inputs {
            target: &Target::Empty,
            path: Path::new("/d"),
            primary_system_id: "42",
            force: false,
            mount_point: false,
            size: Some(1 << 30),
            wal_segment_size: 16 << 20,
            free: Some(1 << 29),
            stop_command: "pg_ctl -D /d stop -m fast",
            upstream_is_target: false,
            primary_name: "host=p port=5432",
        })
        .unwrap_err();
        assert_eq!(e.code, Code::DiskSpace);
    }
}
