//! PostgreSQL's own programs (pg_ctl, pg_basebackup, postgres -C, psql):
//! finding the ones of the right major version, and running them as the
//! data directory's owner when pgrepctl itself runs as root (PostgreSQL
//! refuses to run as root, and files it creates must belong to postgres).

use crate::error::{Code, Error, Result};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct BinDir {
    pub path: PathBuf,
    pub major: u32,
}

impl BinDir {
    pub fn tool(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

/// Every child pgrepctl runs: it dies with pgrepctl (see
/// [`crate::child::die_with_parent`]) and does not inherit the
/// replication password's environment variable, nor the marker of a lock
/// held by a parent run (a server started here would carry it to every
/// `archive_command` it runs).
pub fn cmd<I, S>(program: impl AsRef<Path>, args: I) -> duct::Expression
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString>,
{
    duct::cmd(program.as_ref().as_os_str(), args)
        .env_remove(crate::commands::password::ENV)
        .env_remove(crate::lock::HELD_BY_PARENT)
        .before_spawn(|c| {
            crate::child::die_with_parent(c);
            Ok(())
        })
}

/// The major version a bin directory's tools report (`pg_ctl --version`).
pub fn major_of(dir: &Path) -> Option<u32> {
    let out = cmd(dir.join("pg_ctl"), ["--version"])
        .stdout_capture()
        .stderr_null()
        .unchecked()
        .run()
        .ok()?;
    parse_major(&String::from_utf8_lossy(&out.stdout))
}

/// "pg_ctl (PostgreSQL) 15.4 (Debian 15.4-1)" -> 15
pub fn parse_major(version_line: &str) -> Option<u32> {
    let after = version_line.split(')').nth(1)?.trim();
    let num = after.split(|c: char| !c.is_ascii_digit()).next()?;
    num.parse().ok()
}

/// The bin directory of the postmaster running on `data_dir`, read from
/// `/proc/PID/exe`: the surest match for restarting that very server.
pub fn running_server_bindir(data_dir: &Path) -> Option<PathBuf> {
    let pf = crate::pg::pidfile::running(data_dir)?;
    let exe = std::fs::read_link(format!("/proc/{}/exe", pf.pid)).ok()?;
    exe.parent().map(Path::to_path_buf)
}

/// Find binaries of `major`, in the documented order: `--bindir`, then
/// `pg_config --bindir`, then Debian's `/usr/lib/postgresql/<major>/bin`,
/// then `PATH`. Every rejected candidate is explained in the error.
pub fn find(major: u32, explicit: Option<&Path>) -> Result<BinDir> {
    find_with(major, explicit, None)
}

/// [`find`], trying `server` (the running server's own bin directory)
/// right after `--bindir`.
/// An explicit `--bindir` is used or refused, never passed over for
/// another directory: the user named it for a reason.
pub fn find_with(major: u32, explicit: Option<&Path>, server: Option<&Path>) -> Result<BinDir> {
    match search(major, explicit, server)? {
        Search::Found(b) => Ok(b),
        missing @ Search::Missing { .. } => Err(missing.error(major)),
    }
}

/// What a search for binaries of one major found.
pub enum Search {
    Found(BinDir),
    /// None of `major`; `tried` names each candidate that was rejected
    /// (another major, or a pg_ctl that does not run).
    Missing {
        tried: Vec<String>,
    },
}

impl Search {
    /// TOOL_NOT_FOUND, naming what was rejected.
    pub fn error(&self, major: u32) -> Error {
        let found = match self {
            Search::Missing { tried } if !tried.is_empty() => {
                format!("rejected: {}", tried.join("; "))
            }
            _ => "none found".to_string(),
        };
        Error::new(
            Code::ToolNotFound,
            format!("no PostgreSQL {major} binaries found ({found})"),
        )
        .hint(format!(
            "install PostgreSQL {major} (Debian: apt-get install postgresql-{major}) or pass --bindir"
        ))
    }
}

/// [`find_with`], telling "none at all" from "only others" as data.
pub fn search(major: u32, explicit: Option<&Path>, server: Option<&Path>) -> Result<Search> {
    let mut tried: Vec<String> = vec![];
    let mut candidates: Vec<(PathBuf, &str)> = vec![];
    if let Some(d) = explicit {
        let d = check_bindir(d)?;
        return match major_of(&d) {
            Some(m) if m == major => Ok(Search::Found(BinDir { path: d, major })),
            found => Err(Error::new(
                Code::VersionMismatch,
                format!(
                    "--bindir {} holds {}, not PostgreSQL {major}",
                    d.display(),
                    found.map_or("a pg_ctl that does not run".to_string(), |m| format!("PostgreSQL {m}"))
                ),
            )
            .hint(format!(
                "give the bin directory of PostgreSQL {major} (Debian: /usr/lib/postgresql/{major}/bin), or leave out --bindir"
            ))),
        };
    }
    if let Some(d) = server {
        candidates.push((d.to_path_buf(), "running server"));
    }
    if let Ok(out) = cmd("pg_config", ["--bindir"])
        .stdout_capture()
        .stderr_null()
        .unchecked()
        .run()
    {
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !s.is_empty() {
            candidates.push((PathBuf::from(s), "pg_config"));
        }
    }
    candidates.push((
        PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")),
        "Debian layout",
    ));
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("pg_ctl").exists() {
                let real = std::fs::canonicalize(dir.join("pg_ctl")).ok();
                let d = real
                    .and_then(|r| r.parent().map(Path::to_path_buf))
                    .unwrap_or(dir);
                candidates.push((d, "PATH"));
            }
        }
    }
    for (dir, source) in candidates {
        if !dir.join("pg_ctl").exists() {
            continue;
        }
        match major_of(&dir) {
            Some(m) if m == major => return Ok(Search::Found(BinDir { path: dir, major })),
            Some(m) => tried.push(format!("{} ({source}): PostgreSQL {m}", dir.display())),
            None => tried.push(format!(
                "{} ({source}): pg_ctl --version failed",
                dir.display()
            )),
        }
    }
    Ok(Search::Missing { tried })
}

/// A `--bindir` must be a directory with `pg_ctl` in it; checked before
/// anything else happens, whether or not the run ends up needing it.
pub fn check_bindir(dir: &Path) -> Result<PathBuf> {
    if dir.join("pg_ctl").is_file() {
        return Ok(dir.to_path_buf());
    }
    let why = if dir.is_dir() {
        "has no pg_ctl"
    } else {
        "is not a directory"
    };
    Err(Error::new(
        Code::InvalidValue,
        format!("--bindir {} {why}", dir.display()),
    )
    .hint("give the directory of the PostgreSQL programs, e.g. /usr/lib/postgresql/15/bin (pg_config --bindir prints it)"))
}

/// Who PostgreSQL programs run as: the data directory's owner when we are
/// root, else ourselves.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunAs {
    pub ids: Option<(u32, u32)>,
}

impl RunAs {
    pub fn owner_of(path: &Path) -> RunAs {
        if !nix::unistd::geteuid().is_root() {
            return RunAs::default();
        }
        match std::fs::metadata(path) {
            Ok(m) if m.uid() != 0 => RunAs {
                ids: Some((m.uid(), m.gid())),
            },
            _ => RunAs::default(),
        }
    }

    /// The `postgres` user, for directories that do not exist yet.
    /// Who a libpq program (pg_dump, psql) must run as to connect where
    /// `config` points, as pgrepctl's own sessions do: as root to a local
    /// socket, its owner (peer authentication sees that user); otherwise
    /// whoever runs pgrepctl.
    pub fn peer_of(config: &tokio_postgres::Config) -> RunAs {
        let socket = crate::pg::transport::endpoints(config)
            .ok()
            .and_then(|e| e.into_iter().next());
        match socket {
            Some(crate::pg::transport::Endpoint::Unix(path)) => RunAs {
                ids: crate::pg::transport::peer_identity(&path),
            },
            _ => RunAs::default(),
        }
    }

    pub fn postgres_if_root() -> RunAs {
        if !nix::unistd::geteuid().is_root() {
            return RunAs::default();
        }
        match nix::unistd::User::from_name("postgres") {
            Ok(Some(u)) => RunAs {
                ids: Some((u.uid.as_raw(), u.gid.as_raw())),
            },
            _ => RunAs::default(),
        }
    }

    pub fn user_name(&self) -> Option<String> {
        let (uid, _) = self.ids?;
        nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .map(|u| u.name)
    }

    /// A duct expression for `program args…`, dropped to the owner if needed.
    pub fn cmd<I, S>(&self, program: impl AsRef<Path>, args: I) -> duct::Expression
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        let mut e = cmd(program, args).dir("/");
        if let Some((uid, gid)) = self.ids {
            e = e.before_spawn(move |c| {
                c.uid(uid).gid(gid);
                Ok(())
            });
            if let Ok(Some(u)) = nix::unistd::User::from_uid(uid.into()) {
                e = e
                    .env("HOME", u.dir)
                    .env("USER", &u.name)
                    .env("LOGNAME", &u.name);
            }
        }
        e
    }

    /// How a DBA would type the same command, for messages.
    pub fn shell_prefix(&self) -> String {
        match self.user_name() {
            Some(u) => format!("runuser -u {u} -- "),
            None => String::new(),
        }
    }
}

/// Run to completion, capturing output; a failure carries the program's
/// stderr, framed, because that is where PostgreSQL tools say what broke.
pub fn run(expr: duct::Expression, what: &str) -> Result<String> {
    let out = expr
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .map_err(|e| Error::new(Code::ToolFailed, format!("{what}: cannot start: {e}")))?;
    if !out.status.success() {
        return Err(Error::new(
            Code::ToolFailed,
            format!(
                "{what} failed ({}): {}",
                out.status,
                framed(&out.stderr, &out.stdout)
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last lines of a child's output, joined for a one-line error.
pub fn framed(stderr: &[u8], stdout: &[u8]) -> String {
    let text = if stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        stderr
    } else {
        stdout
    };
    let s = String::from_utf8_lossy(text);
    let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(6)..];
    tail.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_inherit_neither_the_password_nor_a_parents_lock() {
        // duct applies the innermost change last: cmd()'s removals win
        // over variables a caller (or pgrepctl's own environment) sets.
        let script = "echo ${PGREPCTL_REPLICATION_PASSWORD-unset} ${PGREPCTL_DIR_LOCK_HELD-unset}";
        let out = cmd("sh", ["-c", script])
            .env(crate::commands::password::ENV, "secret")
            .env(crate::lock::HELD_BY_PARENT, "/some/dir")
            .read()
            .unwrap();
        assert_eq!(out, "unset unset");
    }

    #[test]
    fn parses_tool_versions() {
        assert_eq!(
            parse_major("pg_ctl (PostgreSQL) 15.4 (Debian 15.4-1.pgdg120+1)"),
            Some(15)
        );
        assert_eq!(parse_major("pg_ctl (PostgreSQL) 10.23"), Some(10));
        assert_eq!(parse_major("pg_ctl (PostgreSQL) 18beta1"), Some(18));
        assert_eq!(parse_major("nonsense"), None);
    }
}
