//! Whether the server's OS user can use a WAL archive directory, asked
//! before any setting names it: an archive_command that cannot write
//! fails on every segment while pg_wal fills, and a restore_command that
//! cannot read leaves a standby that fell behind stuck. As root the
//! question is asked by a child running with the server's own
//! credentials (uid, gid and supplementary groups of the postmaster when
//! one runs, else of the data directory's owner); otherwise by pgrepctl
//! itself, which then is the server's user.

use crate::error::{Code, Error, Result};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What the server does with the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// archive_command, pg_archivecleanup: create, rename and remove files.
    Write,
    /// restore_command: list and read files.
    Read,
}

/// The credentials a server process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl Creds {
    /// The running postmaster's, read from `/proc/PID/status` (supplementary
    /// groups included: a directory shared through a group is writable for
    /// the server even when its owner differs); else the data directory
    /// owner's, with that user's groups. None when pgrepctl is not root
    /// (then it is the server's user, or could not switch to it anyway).
    pub fn of_server(data_dir: &Path) -> Option<Creds> {
        if !nix::unistd::geteuid().is_root() {
            return None;
        }
        let from_proc = crate::pg::pidfile::running(data_dir).and_then(|pf| {
            let status = std::fs::read_to_string(format!("/proc/{}/status", pf.pid)).ok()?;
            parse_status(&status)
        });
        from_proc.or_else(|| owner_creds(data_dir))
    }

    /// A user's ids with the groups that user is a member of, as a
    /// server started by that user (pg_ctl, systemd) has them.
    pub fn of_ids(uid: u32, gid: u32) -> Creds {
        let user = nix::unistd::User::from_uid(uid.into()).ok().flatten();
        let gid = user.as_ref().map_or(gid, |u| u.gid.as_raw());
        let groups = user
            .and_then(|u| {
                let name = std::ffi::CString::new(u.name).ok()?;
                nix::unistd::getgrouplist(&name, u.gid).ok()
            })
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_else(|| vec![gid]);
        Creds { uid, gid, groups }
    }

    fn user_name(&self) -> String {
        nix::unistd::User::from_uid(self.uid.into())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| format!("uid {}", self.uid))
    }
}

fn owner_creds(data_dir: &Path) -> Option<Creds> {
    let m = std::fs::metadata(data_dir)
        .or_else(|e| std::fs::metadata(data_dir.parent().ok_or(e)?))
        .ok()?;
    (m.uid() != 0).then(|| Creds::of_ids(m.uid(), m.gid()))
}

/// `Uid:`, `Gid:` (effective ids, the second field) and `Groups:` of a
/// `/proc/PID/status`.
pub fn parse_status(status: &str) -> Option<Creds> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|n| n.parse::<u32>().ok())
                    .collect::<Vec<_>>()
            })
    };
    Some(Creds {
        uid: *field("Uid:")?.get(1)?,
        gid: *field("Gid:")?.get(1)?,
        groups: field("Groups:").unwrap_or_default(),
    })
}

/// The probe the server's user runs: the directory, then (for writing)
/// a file created exclusively and removed again, then the program the
/// command will run. Exit codes name the failure.
const PROBE: &str = r#"d=$1
[ -d "$d" ] || exit 10
if [ "$2" = write ]; then
  f="$d/.pgrepctl-probe.$$"
  (set -C; : > "$f") 2>/dev/null || exit 11
  rm -f "$f" || exit 11
else
  [ -r "$d" ] && [ -x "$d" ] || exit 12
fi
[ -z "$3" ] || [ -x "$3" ] || exit 13
exit 0"#;

/// Refuse (FILE_NOT_WRITABLE, naming `flag`) unless the server's user can
/// use `dir` as `access` says and run `program` (the command's binary).
pub fn check(
    flag: &str,
    dir: &Path,
    access: Access,
    creds: Option<&Creds>,
    program: Option<&Path>,
) -> Result<()> {
    if !dir.is_dir() {
        return Err(Error::new(
            Code::FileNotWritable,
            format!("{flag} {} is not a directory", dir.display()),
        )
        .hint("create it (mkdir -p, owned by the PostgreSQL OS user) or give an existing directory; nothing was changed"));
    }
    let code = match creds {
        Some(c) => probe_as(c, dir, access, program)?,
        None => probe_here(dir, access, program),
    };
    let who = creds
        .map(Creds::user_name)
        .unwrap_or_else(|| "this user".to_string());
    let (what, hint) = match code {
        0 => return Ok(()),
        10 => (
            format!("cannot be reached by {who} (a directory on its path is closed to it)"),
            "open the path to the PostgreSQL OS user (chmod o+x or a group it is in)",
        ),
        11 => (
            format!("is not writable by {who}, the server's OS user"),
            "give that user write access (chown postgres: DIR, or a group it is in with g+rwx)",
        ),
        12 => (
            format!("is not readable by {who}, the server's OS user"),
            "give that user read access (chmod g+rx with a group it is in, or o+rx)",
        ),
        13 => (
            format!(
                "is usable, but {} cannot be run by {who}, the server's OS user",
                program.map(|p| p.display().to_string()).unwrap_or_default()
            ),
            "install pgrepctl where the server's user can run it (e.g. /usr/local/bin) and run that copy",
        ),
        n => (
            format!("could not be checked (the probe exited with {n})"),
            "check the directory by hand as the PostgreSQL OS user",
        ),
    };
    Err(Error::new(
        Code::FileNotWritable,
        format!("{flag} {} {what}", dir.display()),
    )
    .hint(format!("{hint}; nothing was changed")))
}

/// Run [`PROBE`] under `sh` as `creds` (groups, then gid, then uid: the
/// order in which each is still permitted).
fn probe_as(creds: &Creds, dir: &Path, access: Access, program: Option<&Path>) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(PROBE)
        .arg("sh")
        .arg(dir)
        .arg(if access == Access::Write {
            "write"
        } else {
            "read"
        })
        .arg(program.map(|p| p.as_os_str()).unwrap_or_default())
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let c = creds.clone();
    // SAFETY: setgroups, setgid and setuid are async-signal-safe system
    // calls; the vector was built before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let groups: Vec<nix::unistd::Gid> = c
                .groups
                .iter()
                .map(|g| nix::unistd::Gid::from_raw(*g))
                .collect();
            nix::unistd::setgroups(&groups)?;
            nix::unistd::setgid(nix::unistd::Gid::from_raw(c.gid))?;
            nix::unistd::setuid(nix::unistd::Uid::from_raw(c.uid))?;
            Ok(())
        });
    }
    let status = cmd.status().map_err(|e| {
        Error::io(
            format!("cannot check {} as the server's user", dir.display()),
            e,
        )
    })?;
    Ok(status.code().unwrap_or(-1))
}

/// [`PROBE`]'s questions asked by this process, as this user.
fn probe_here(dir: &Path, access: Access, program: Option<&Path>) -> i32 {
    use nix::unistd::{AccessFlags, access as can};
    let ok = match access {
        Access::Write => {
            let f = dir.join(format!(".pgrepctl-probe.{}", std::process::id()));
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&f)
                .and_then(|_| std::fs::remove_file(&f))
                .is_ok()
        }
        Access::Read => can(dir, AccessFlags::R_OK | AccessFlags::X_OK).is_ok(),
    };
    if !ok {
        return if access == Access::Write { 11 } else { 12 };
    }
    match program {
        Some(p) if can(p, AccessFlags::X_OK).is_err() => 13,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_effective_ids_and_groups() {
        let s = "Name:\tpostgres\nUid:\t114\t115\t115\t115\nGid:\t120\t121\t121\t121\nGroups:\t108 121 \n";
        assert_eq!(
            parse_status(s),
            Some(Creds {
                uid: 115,
                gid: 121,
                groups: vec![108, 121]
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn refuses_a_missing_directory() {
        let e = check(
            "--archive-dir",
            Path::new("/nonexistent/wal"),
            Access::Write,
            None,
            None,
        )
        .unwrap_err();
        assert_eq!(e.code, Code::FileNotWritable);
        assert!(e.message.contains("is not a directory"), "{}", e.message);
    }

    #[test]
    fn a_writable_directory_passes() {
        let d = tempfile::tempdir().unwrap();
        check("--archive-dir", d.path(), Access::Write, None, None).unwrap();
        check("--restore-dir", d.path(), Access::Read, None, None).unwrap();
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            0,
            "the probe file is gone"
        );
    }
}
