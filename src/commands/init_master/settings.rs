//! From raw flags to validated settings. Every check that needs no server
//! happens here, before anything is read or changed; destructuring `Args`
//! whole means a new flag does not compile until it is handled.

use super::{Args, RestartPolicy};
use crate::cli::names::{RoleName, SlotName};
use crate::commands::password;
use crate::error::{Code, Error, Result};
use crate::pg::conninfo;
use crate::secret::Secret;
use ipnet::IpNet;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: Option<PathBuf>,
    pub conn: conninfo::ConnConfig,
    pub role: String,
    pub allow_privileged_role: bool,
    pub password: Option<Secret>,
    pub allows: Vec<IpNet>,
    pub ssl: bool,
    /// --ssl-name, --ssl-dir, --ssl-issue.
    pub ssl_setup: super::ssl::SslSetup,
    pub method: String,
    pub max_wal_senders: u32,
    pub wal_keep_bytes: u64,
    pub listen: Option<String>,
    /// wal_log_hints on when the cluster has no data checksums.
    pub rewindable: bool,
    pub slots: Vec<String>,
    pub restart: RestartPolicy,
    pub bindir: Option<PathBuf>,
    pub dry_run: bool,
    /// The monitoring role and hosts, with --monitor-from or --monitor-password-file.
    pub monitor: Option<super::monitor::MonitorSettings>,
    /// The WAL archive, with --archive-dir or --archive-command.
    pub archive: Option<Archive>,
}

/// Where the primary archives its WAL, and how often an idle one switches.
#[derive(Debug, Clone)]
pub struct Archive {
    pub how: ArchiveHow,
    /// archive_timeout in whole seconds (0: off).
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveHow {
    /// archive_command = pgrepctl wal-push into this directory.
    Dir {
        dir: PathBuf,
        /// This pgrepctl binary, by absolute path.
        pgrepctl: PathBuf,
    },
    /// archive_command as the user gave it.
    Command(String),
    /// archive_library = basic_archive into this directory (15+).
    Library(PathBuf),
}

impl Archive {
    /// The directory the server's user must be able to write, if pgrepctl knows it.
    pub fn dir(&self) -> Option<&std::path::Path> {
        match &self.how {
            ArchiveHow::Dir { dir, .. } | ArchiveHow::Library(dir) => Some(dir),
            ArchiveHow::Command(_) => None,
        }
    }
}

impl Settings {
    pub fn from_args(args: Args) -> Result<Settings> {
        let Args {
            pgdata,
            conn,
            replication_user,
            allow_privileged_role,
            password,
            allow,
            ssl,
            ssl_names,
            ssl_dir,
            ssl_issue,
            hba_method,
            allow_insecure,
            max_wal_senders,
            wal_keep,
            listen,
            rewindable,
            slots,
            restart,
            bindir,
            dry_run,
            monitor_from,
            monitor_user,
            monitor_password_file,
            archive_dir,
            archive_command,
            archive_library,
            archive_timeout,
            help: _,
        } = args;

        let role = RoleName::parse("--replication-user", &replication_user)?;
        let method = validate_method(&hba_method, ssl, allow_insecure)?;
        let ssl_setup = super::ssl::SslSetup::from_flags(ssl_names, ssl_dir, ssl_issue)?;
        let allows = parse_allows(&allow, allow_insecure)?;
        let (slots, wal_keep_bytes) =
            server_flags(&slots, max_wal_senders, &wal_keep, listen.as_deref())?;
        let data_dir = pgdata.map(validate_data_dir).transpose()?;
        let bindir = bindir.checked()?;
        let password = password.load(allow_insecure)?;
        let monitor = monitor_settings(
            &monitor_user,
            &role,
            &monitor_from,
            monitor_password_file,
            allow_insecure,
        )?;
        let archive = archive_settings(
            archive_dir,
            archive_command,
            archive_library,
            archive_timeout,
        )?;
        let conn = conninfo::resolve(&conn, data_dir.as_deref())?;
        Ok(Settings {
            data_dir,
            conn,
            role: role.into(),
            allow_privileged_role,
            password,
            allows,
            ssl,
            ssl_setup,
            method,
            max_wal_senders,
            wal_keep_bytes,
            listen,
            rewindable,
            slots,
            restart,
            bindir,
            dry_run: dry_run.dry_run,
            monitor,
            archive,
        })
    }
}

/// --archive-dir, --archive-command and their modifiers, checked: one
/// place to archive to, and modifiers only with one.
fn archive_settings(
    dir: Option<PathBuf>,
    command: Option<String>,
    library: bool,
    timeout: Option<String>,
) -> Result<Option<Archive>> {
    let how = match (dir, command) {
        (Some(_), Some(_)) => {
            return Err(Error::new(
                Code::ConflictingFlags,
                "--archive-dir and --archive-command both say how to archive WAL",
            )
            .hint("use --archive-dir DIR for pgrepctl's own durable copy, or --archive-command CMD for your own command, not both"));
        }
        (Some(dir), None) => {
            let dir = crate::fsutil::absolute(&dir)?;
            if library {
                ArchiveHow::Library(dir)
            } else {
                let pgrepctl = crate::commands::wal::self_path()?;
                ArchiveHow::Dir { dir, pgrepctl }
            }
        }
        (None, Some(_)) if library => {
            return Err(Error::new(
                Code::ConflictingFlags,
                "--archive-library archives through a module, not --archive-command",
            )
            .hint("use --archive-dir DIR --archive-library, or --archive-command CMD alone"));
        }
        (None, Some(cmd)) => ArchiveHow::Command(check_archive_command(&cmd)?),
        (None, None) => {
            let modifier = if library {
                Some("--archive-library")
            } else if timeout.is_some() {
                Some("--archive-timeout")
            } else {
                None
            };
            return match modifier {
                Some(m) => Err(Error::new(
                    Code::Usage,
                    format!("{m} needs --archive-dir or --archive-command"),
                )
                .hint(
                    "add --archive-dir DIR (or --archive-command CMD) to say where WAL is archived",
                )),
                None => Ok(None),
            };
        }
    };
    let timeout = timeout.as_deref().unwrap_or("60s");
    let d = crate::units::parse_duration(timeout).map_err(|e| {
        Error::new(Code::InvalidValue, format!("--archive-timeout: {e}"))
            .hint("give whole seconds or minutes, e.g. 60s or 5min (0 turns it off)")
    })?;
    if d.subsec_nanos() != 0 || d.as_secs() > i32::MAX as u64 / 1000 {
        return Err(Error::new(
            Code::InvalidValue,
            format!(
                "--archive-timeout {timeout} is not a whole number of seconds PostgreSQL accepts"
            ),
        )
        .hint("give whole seconds or minutes, e.g. 60s or 5min (0 turns it off)"));
    }
    Ok(Some(Archive {
        how,
        timeout_secs: d.as_secs(),
    }))
}

/// A command the server can be given: one line, not empty.
fn check_archive_command(cmd: &str) -> Result<String> {
    let t = cmd.trim();
    if t.is_empty() || t.contains(['\n', '\r', '\0']) {
        return Err(Error::new(
            Code::InvalidValue,
            format!("--archive-command {cmd:?} is not a usable command"),
        )
        .hint("give one line that copies %p (the file's path) somewhere safe, e.g. --archive-command 'pgrepctl wal-push %p /mnt/wal'"));
    }
    Ok(t.to_string())
}

fn check_max_wal_senders(n: u32) -> Result<()> {
    if n == 0 || n > 262143 {
        return Err(Error::new(
            Code::InvalidValue,
            format!("--max-wal-senders {n} is out of range"),
        )
        .hint("give a number from 1 to 262143; 10 is the usual choice"));
    }
    Ok(())
}

/// The flags that become server settings (slots, max_wal_senders, wal_keep, listen), in that order.
fn server_flags(
    slots: &[String],
    max_wal_senders: u32,
    wal_keep: &str,
    listen: Option<&str>,
) -> Result<(Vec<String>, u64)> {
    let slots = slots
        .iter()
        .map(|s| SlotName::parse("--slot", s).map(String::from))
        .collect::<Result<Vec<_>>>()?;
    check_max_wal_senders(max_wal_senders)?;
    let wal_keep_bytes = crate::units::parse_bytes(wal_keep).map_err(|e| {
        Error::new(Code::InvalidValue, format!("--wal-keep: {e}"))
            .hint("give a size with a unit: kB, MB, GB or TB, e.g. --wal-keep 1GB")
    })?;
    if let Some(l) = listen {
        check_listen(l)?;
    }
    Ok((slots, wal_keep_bytes))
}

fn check_listen(l: &str) -> Result<()> {
    if l.trim().is_empty() || l.contains(['\'', '\n', '#']) {
        return Err(Error::new(
            Code::InvalidValue,
            format!("--listen {l:?} is not a valid listen_addresses value"),
        )
        .hint("give '*' or a comma-separated list of addresses, e.g. 'localhost,10.0.0.1'"));
    }
    Ok(())
}

fn parse_allows(addrs: &[String], allow_insecure: bool) -> Result<Vec<IpNet>> {
    addrs
        .iter()
        .map(|a| parse_allow(a, allow_insecure))
        .collect()
}

/// The monitoring role, with --monitor-from or --monitor-password-file
/// (else none, and --monitor-user goes unchecked): a name of its own (the
/// replication password lives on every standby), the hosts it may connect
/// from, and its password.
fn monitor_settings(
    user: &str,
    replication_role: &RoleName,
    from: &[String],
    password_file: Option<PathBuf>,
    allow_insecure: bool,
) -> Result<Option<super::monitor::MonitorSettings>> {
    if from.is_empty() && password_file.is_none() {
        return Ok(None);
    }
    let role = RoleName::parse("--monitor-user", user)?;
    if role == *replication_role {
        return Err(Error::new(
            Code::ConflictingFlags,
            format!("--monitor-user and --replication-user are both {user:?}"),
        )
        .hint("monitoring and replication need separate roles: the replication password lives on every standby"));
    }
    Ok(Some(super::monitor::MonitorSettings {
        from: parse_allows(from, allow_insecure)?,
        password: password_file
            .as_deref()
            .map(|f| password::read_file(f, allow_insecure))
            .transpose()?,
        role: role.into(),
    }))
}

fn validate_method(method: &str, ssl: bool, allow_insecure: bool) -> Result<String> {
    match method {
        "scram-sha-256" | "md5" => Ok(method.to_string()),
        "cert" if ssl => Ok(method.to_string()),
        "cert" => Err(
            Error::new(Code::ConflictingFlags, "--hba-method cert needs --ssl")
                .hint("add --ssl (cert authentication only works on hostssl lines)"),
        ),
        "trust" | "password" if allow_insecure => Ok(method.to_string()),
        "trust" | "password" => Err(Error::new(
            Code::InsecureRefused,
            format!("--hba-method {method} lets standbys in without a safe password check"),
        )
        .hint("use scram-sha-256 (the default), or add --allow-insecure if you really mean it")),
        other => Err(Error::new(
            Code::InvalidValue,
            format!("unknown --hba-method {other:?}"),
        )
        .hint("use scram-sha-256, md5 or cert")),
    }
}

/// An address or CIDR; a bare address means exactly that host.
pub fn parse_allow(s: &str, allow_insecure: bool) -> Result<IpNet> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("all") {
        return insecure(s, allow_insecure).map(|_| "0.0.0.0/0".parse().expect("valid"));
    }
    let net: IpNet = match t.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => match t.parse::<std::net::IpAddr>() {
            Ok(a) => IpNet::from(a),
            Err(_) => {
                return Err(Error::new(
                    Code::InvalidAddress,
                    format!("--allow {s:?} is not an IP address or CIDR"),
                )
                .hint("give the standby's address, e.g. 10.0.0.2 or 10.0.0.0/24"));
            }
        },
    };
    if net.addr() != net.network() {
        return Err(Error::new(
            Code::InvalidAddress,
            format!(
                "--allow {s:?} has host bits set beyond the /{} mask",
                net.prefix_len()
            ),
        )
        .hint(format!(
            "did you mean {} or {}/{}?",
            net.trunc(),
            net.addr(),
            net.max_prefix_len()
        )));
    }
    if net.prefix_len() == 0 {
        insecure(s, allow_insecure)?;
    }
    Ok(net)
}

fn insecure(s: &str, allow_insecure: bool) -> Result<()> {
    if allow_insecure {
        return Ok(());
    }
    Err(Error::new(
        Code::InsecureRefused,
        format!("--allow {s} would let every address replicate"),
    )
    .hint("name the standby's address or subnet, or add --allow-insecure if you really mean it"))
}

fn validate_data_dir(dir: PathBuf) -> Result<PathBuf> {
    if !dir.join("PG_VERSION").is_file() {
        return Err(Error::new(
            Code::NotADataDirectory,
            format!(
                "{} is not a PostgreSQL data directory (no PG_VERSION)",
                dir.display()
            ),
        )
        .hint("give the primary's data directory with -D, e.g. /var/lib/postgresql/15/main"));
    }
    std::fs::canonicalize(&dir)
        .map_err(|e| Error::io(format!("cannot resolve {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_addresses() {
        assert_eq!(
            parse_allow("10.0.0.2", false).unwrap().to_string(),
            "10.0.0.2/32"
        );
        assert_eq!(
            parse_allow("10.0.0.0/24", false).unwrap().to_string(),
            "10.0.0.0/24"
        );
        assert_eq!(
            parse_allow("fd00::5", false).unwrap().to_string(),
            "fd00::5/128"
        );
        assert_eq!(
            parse_allow("10.0.0.1/24", false).unwrap_err().code,
            Code::InvalidAddress
        );
        assert_eq!(
            parse_allow("db.example", false).unwrap_err().code,
            Code::InvalidAddress
        );
        assert_eq!(
            parse_allow("0.0.0.0/0", false).unwrap_err().code,
            Code::InsecureRefused
        );
        assert_eq!(
            parse_allow("::/0", false).unwrap_err().code,
            Code::InsecureRefused
        );
        assert_eq!(
            parse_allow("all", false).unwrap_err().code,
            Code::InsecureRefused
        );
        assert!(parse_allow("0.0.0.0/0", true).is_ok());
    }

    #[test]
    fn methods() {
        assert_eq!(
            validate_method("trust", false, false).unwrap_err().code,
            Code::InsecureRefused
        );
        assert_eq!(
            validate_method("cert", false, false).unwrap_err().code,
            Code::ConflictingFlags
        );
    }
}
