//! pg_rewind, checked before anything is touched and then carried out.
//! The preflight asks what pg_rewind would otherwise find out half-way:
//! the node is rewindable (data checksums or wal_log_hints), the source
//! writes full pages, the rewind role has the rights (probed live with
//! `has_function_privilege`), every file in the data directory is a
//! regular, writable one, and — for a cleanly stopped node — what
//! `pg_rewind --dry-run` says.

use super::Args;
use super::inspect::{Facts, Settings};
use super::plan::Decision;
use crate::conf::hba::quote_token;
use crate::conf::standby::quote_conninfo;
use crate::error::{Code, Error, Result};
use crate::pg::cluster::LocalCluster;
use crate::pg::version::Version;
use crate::report::{Outcome, Printer};
use crate::secret::Secret;
use std::path::Path;
use std::time::Duration;

/// How pg_rewind reaches the new primary (`--source-server`): a normal
/// connection to `postgres` as the rewind role, its password from
/// PGPASSWORD, PGPASSFILE or ~/.pgpass (for the replication role itself,
/// else the replication password).
#[derive(Clone)]
pub struct Source {
    /// libpq keywords, no password.
    pub conninfo: String,
    pub user: String,
    pub password: Option<Secret>,
}

/// What the preflight found.
#[derive(Default)]
pub struct Checks {
    pub source: Option<Source>,
    /// `pg_rewind --dry-run`'s last lines, when it could run now.
    pub dry_run: Option<String>,
}

impl Checks {
    pub fn report_into(&self, o: &mut Outcome) {
        if let Some(s) = &self.source {
            o.detail("rewind_source", &s.conninfo);
        }
        if let Some(d) = &self.dry_run {
            o.detail("rewind_dry_run", d);
        }
    }
}

pub async fn preflight(
    args: &Args,
    settings: &Settings,
    facts: &Facts,
    decision: &Decision,
    printer: &Printer,
) -> Result<Checks> {
    let Decision::Rewind { crash_recovery, .. } = decision else {
        return Ok(Checks::default());
    };
    let stopped = facts
        .stopped()
        .expect("a rewind is decided for a stopped node");
    if !stopped.control.rewindable() {
        return Err(Error::new(
            Code::RewindNotPossible,
            format!(
                "{} has neither data checksums nor wal_log_hints, which pg_rewind needs",
                facts.cluster.data_dir.display()
            ),
        )
        .hint(
            "copy it anew instead (pgrepctl rejoin --reclone-on-failure, or clone-standby --force, which replaces the directory), and make every node rewindable for next time (pgrepctl init-master --rewindable: wal_log_hints = on)",
        ));
    }
    let kept = super::recovery::kept_dir(&facts.cluster.data_dir);
    if kept.exists() {
        return Err(Error::new(
            Code::RewindFailed,
            format!("{} exists: an earlier rejoin stopped during its rewind", kept.display()),
        )
        .hint("it holds the node's own configuration files: copy them back into the data directory, remove it, and rerun"));
    }
    files_rewritable(&facts.cluster.data_dir)?;
    let source = source(args, settings);
    printer.info(format!(
        "preflight: pg_rewind's connection {}",
        source.conninfo
    ));
    check_source(&source, facts.version, settings.standby.connect_timeout).await?;
    let dry_run = if *crash_recovery {
        None
    } else {
        Some(dry_run(&facts.cluster, &source)?)
    };
    Ok(Checks {
        source: Some(source),
        dry_run,
    })
}

/// `--source-server`: the --primary host and port, the rewind role.
fn source(args: &Args, settings: &Settings) -> Source {
    let c = &settings.standby.conninfo;
    let user = args.rewind_user.clone().unwrap_or_else(|| c.user.clone());
    let mut conninfo = format!(
        "host={} port={} user={} dbname=postgres",
        quote_conninfo(&c.host),
        c.port,
        quote_conninfo(&user)
    );
    if let Some(m) = &c.sslmode {
        conninfo.push_str(&format!(" sslmode={}", quote_conninfo(m)));
    }
    let password = crate::pg::conninfo::resolve_node(&conninfo)
        .ok()
        .and_then(|cfg| {
            cfg.get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
        })
        .map(Secret::new)
        // The replication role rewinding (granted the functions): the
        // password the replication connections use is its password.
        .or_else(|| {
            (user == c.user)
                .then(|| settings.password.clone())
                .flatten()
        });
    Source {
        conninfo,
        user,
        password,
    }
}

/// The rewind role's rights, and full_page_writes, asked of the source
/// itself.
async fn check_source(source: &Source, version: Version, timeout: Duration) -> Result<()> {
    let mut config = crate::pg::conninfo::parse(&source.conninfo)?;
    if let Some(p) = &source.password {
        config.password(p.expose());
    }
    let session = crate::pg::connect(&config, Some(timeout))
        .await
        .map_err(|e| source_refused(e, &source.user))?;
    let row = session
        .client
        .query_one(
            "SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), \
             current_setting('full_page_writes'), \
             has_function_privilege('pg_catalog.pg_ls_dir(text, boolean, boolean)', 'execute'), \
             has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'execute'), \
             has_function_privilege('pg_catalog.pg_read_binary_file(text)', 'execute'), \
             has_function_privilege('pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)', 'execute')",
            &[],
        )
        .await
        .map_err(|e| crate::pg::query_error(&session.target, &e))?;
    if row.get::<_, String>(1) != "on" {
        return Err(Error::new(
            Code::RewindNotPossible,
            "full_page_writes is off on the new primary, and pg_rewind needs it",
        )
        .hint("set full_page_writes = on there and reload it, or re-clone the node"));
    }
    let superuser: bool = row.get::<_, Option<bool>>(0).unwrap_or(false);
    let granted = (2..6).all(|i| row.get::<_, bool>(i));
    rights(&source.user, superuser, granted, version)
}

/// pg_rewind's connection refused: a missing pg_hba.conf line is named as
/// the DBA adds it on the new primary (for the address the server saw),
/// since it is a normal connection to `postgres` that init-master's
/// replication lines do not cover; a refused password says where it comes
/// from.
fn source_refused(e: Error, user: &str) -> Error {
    let why = format!(
        "pg_rewind connects to the new primary as {user} (--rewind-user) to database postgres, not for replication"
    );
    if e.code == Code::AuthenticationFailed {
        let hint = format!(
            "{why}: give that role its password in PGPASSFILE or ~/.pgpass (the replication role's is the replication password)"
        );
        return e.hint(hint);
    }
    if e.code != Code::HbaRejected {
        // Not listening, a timeout: the connection error's own hint.
        return e;
    }
    let seen = e
        .message
        .split("host \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|a| a.parse::<std::net::IpAddr>().ok());
    let line = |addr: &str| format!("host postgres {} {addr} scram-sha-256", quote_token(user));
    let hint = match seen {
        Some(ip) => format!(
            "{why}: add this line to the new primary's pg_hba.conf (above any line that would match first) and reload it there: {}",
            line(&ipnet::IpNet::from(ip).to_string())
        ),
        None => format!(
            "{why}: add a line to the new primary's pg_hba.conf for this host's address as it sees it, and reload it there: {}",
            line("ADDRESS/32")
        ),
    };
    e.hint(hint)
}

/// The functions pg_rewind calls on the source, as GRANT statements.
pub const REWIND_FUNCTIONS: [&str; 4] = [
    "pg_catalog.pg_ls_dir(text, boolean, boolean)",
    "pg_catalog.pg_stat_file(text, boolean)",
    "pg_catalog.pg_read_binary_file(text)",
    "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
];

/// Superuser, or from 11 the four grants; the refusal says what to run.
fn rights(user: &str, superuser: bool, granted: bool, version: Version) -> Result<()> {
    if superuser || (granted && version.rewind_without_superuser()) {
        return Ok(());
    }
    let role = crate::pg::sql::ident(user);
    let hint = if version.rewind_without_superuser() {
        let grants: Vec<String> = REWIND_FUNCTIONS
            .iter()
            .map(|f| format!("GRANT EXECUTE ON FUNCTION {f} TO {role};"))
            .collect();
        format!(
            "run on the new primary as a superuser: {} — or pass --rewind-user with a superuser",
            grants.join(" ")
        )
    } else {
        "pg_rewind on PostgreSQL 10 needs a superuser: pass --rewind-user NAME".to_string()
    };
    Err(Error::new(
        Code::NotSuperuser,
        format!("the rewind role {user} may not read the new primary's files as pg_rewind needs"),
    )
    .hint(hint))
}

/// pg_rewind opens every file of the target for writing and copies only
/// regular files: a socket, a fifo or a read-only file stops it half-way.
fn files_rewritable(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d)
            .map_err(|e| Error::io(format!("cannot read {}", d.display()), e))?;
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let t = meta.file_type();
            let problem = if t.is_dir() {
                todo.push(path.clone());
                None
            } else if t.is_symlink() {
                None
            } else if !t.is_file() {
                Some("is not a regular file")
            } else if meta.permissions().mode() & 0o200 == 0 {
                Some("is read-only")
            } else {
                None
            };
            if let Some(p) = problem {
                return Err(Error::new(
                    Code::RewindNotPossible,
                    format!("{} {p}, and pg_rewind would fail on it half-way", path.display()),
                )
                .hint("move it out of the data directory (or make it writable by its owner) and rerun"));
            }
        }
    }
    Ok(())
}

/// pg_rewind as the data directory's owner, its password (if any) from an
/// in-memory password file.
pub fn command(
    cluster: &LocalCluster,
    source: &Source,
    dry_run: bool,
) -> Result<(duct::Expression, Option<crate::child::SecretFile>, String)> {
    let mut args: Vec<std::ffi::OsString> = vec![
        format!("--target-pgdata={}", cluster.data_dir.display()).into(),
        format!("--source-server={}", source.conninfo).into(),
        "--progress".into(),
    ];
    if dry_run {
        args.push("--dry-run".into());
    } else if no_sync(cluster) {
        args.push("--no-sync".into());
    }
    let mut expr = cluster
        .run_as
        .cmd(cluster.bindir.tool("pg_rewind"), args)
        .env("LC_ALL", "C")
        .env_remove("LANGUAGE");
    let secret = match &source.password {
        Some(p) => {
            let f = crate::child::SecretFile::new(
                &crate::conf::standby::passfile_line(&source.user, p.expose()),
                cluster.run_as.ids,
            )?;
            expr = f.pass_to(expr);
            Some(f)
        }
        None => None,
    };
    let shown = format!(
        "{}pg_rewind --target-pgdata={} --source-server='{}'{}",
        cluster.run_as.shell_prefix(),
        cluster.data_dir.display(),
        source.conninfo,
        if dry_run {
            " --dry-run"
        } else if no_sync(cluster) {
            " --no-sync (then one syncfs)"
        } else {
            ""
        }
    );
    Ok((expr, secret, shown))
}

/// Whether the real run leaves the sync to pgrepctl ([`sync`]).
pub fn no_sync(cluster: &LocalCluster) -> bool {
    Version::of(cluster.bindir.major * 10000).rewind_no_sync()
}

/// After `pg_rewind --no-sync`: the rewound directory to disk before
/// anything starts on it.
pub fn sync(cluster: &LocalCluster) -> Result<()> {
    crate::fsutil::sync_data_dir(&cluster.data_dir).map_err(|(dir, e)| {
        Error::io(format!("cannot sync the rewound {} to disk", dir.display()), e).hint(
            "check the filesystem's health (dmesg); do not start the node before a sync (run sync, or rerun pgrepctl rejoin)",
        )
    })
}

/// `pg_rewind --dry-run`: what it would do, or why it cannot.
fn dry_run(cluster: &LocalCluster, source: &Source) -> Result<String> {
    let (expr, _secret, shown) = command(cluster, source, true)?;
    let out = crate::tools::run(expr.stderr_to_stdout(), &shown).map_err(|e| {
        Error::new(Code::RewindFailed, e.message).hint(
            "pg_rewind refuses this node as it is (nothing was changed): fix what it says, rerun with --reclone-on-failure, or re-clone it (pgrepctl clone-standby --force)",
        )
    })?;
    Ok(summary(&out))
}

/// pg_rewind's decisive lines (where the servers diverged, or that no
/// rewind is required), without its progress lines.
pub fn summary(out: &str) -> String {
    out.lines()
        .map(str::trim)
        .filter(|l| {
            l.contains("diverged")
                || l.contains("rewinding from")
                || l.contains("no rewind required")
                || l.contains("Done")
        })
        .map(|l| l.trim_start_matches("pg_rewind: ").to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn no_rewind_required(out: &str) -> bool {
    out.contains("no rewind required")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_need_superuser_or_the_grants_from_11() {
        let v15 = Version::of(150000);
        let v10 = Version::of(100000);
        assert!(rights("rw", true, false, v10).is_ok());
        assert!(rights("rw", false, true, v15).is_ok());
        let e = rights("rw", false, false, v15).unwrap_err();
        assert_eq!(e.code, Code::NotSuperuser);
        let hint = e.hint.unwrap();
        assert!(
            hint.contains("GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO \"rw\";"),
            "{hint}"
        );
        let e = rights("rw", false, true, v10).unwrap_err();
        assert!(e.hint.unwrap().contains("superuser"));
    }

    #[test]
    fn a_refused_rewind_connection_names_the_hba_line_to_add() {
        let e = Error::new(
            Code::HbaRejected,
            "host=10.0.0.2 port=5432 user=replicator: no pg_hba.conf entry for host \"10.0.0.1\", user \"replicator\", database \"postgres\", no encryption",
        );
        let hint = source_refused(e, "replicator").hint.unwrap();
        assert!(
            hint.contains(": host postgres replicator 10.0.0.1/32 scram-sha-256"),
            "{hint}"
        );
        assert!(hint.contains("reload"), "{hint}");
        let e = Error::new(Code::HbaRejected, "rejected");
        let hint = source_refused(e, "re wind").hint.unwrap();
        assert!(
            hint.contains("host postgres \"re wind\" ADDRESS/32 scram-sha-256"),
            "{hint}"
        );
        let e = Error::new(Code::AuthenticationFailed, "password authentication failed");
        let e = source_refused(e, "replicator");
        assert_eq!(e.code, Code::AuthenticationFailed);
        assert!(e.hint.unwrap().contains("PGPASSFILE"));
        let e = Error::new(Code::ConnectionFailed, "connection refused").hint("is it running?");
        assert_eq!(
            source_refused(e, "replicator").hint.unwrap(),
            "is it running?"
        );
    }

    #[test]
    fn pg_rewind_output_is_summed_up() {
        let out = "pg_rewind: servers diverged at WAL location 0/3000060 on timeline 1\npg_rewind: rewinding from last common checkpoint at 0/2000060 on timeline 1\n12/30 kB (40%) copied\npg_rewind: Done!\n";
        assert_eq!(
            summary(out),
            "servers diverged at WAL location 0/3000060 on timeline 1; rewinding from last common checkpoint at 0/2000060 on timeline 1; Done!"
        );
        assert!(no_rewind_required(
            "pg_rewind: source and target cluster are on the same timeline\npg_rewind: no rewind required\n"
        ));
    }
}
