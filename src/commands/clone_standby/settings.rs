//! The flags, checked and resolved before anything is read or written.

use super::Args;
use crate::cli::names::{ApplicationName, SlotName};
use crate::conf::standby::{self, PrimaryConninfo};
use crate::error::{Code, Error, Result};
use crate::secret::Secret;
use std::path::PathBuf;
use std::time::Duration;
use tokio_postgres::config::Host;

#[derive(Debug)]
pub struct Settings {
    pub pgdata: PathBuf,
    /// What the standby will use, with `passfile`/`password` filled in.
    pub conninfo: PrimaryConninfo,
    pub password: Option<Secret>,
    /// The standby's password file (absent when no password is needed or
    /// it goes into the conninfo).
    pub passfile: Option<PathBuf>,
    pub slot: Option<SlotName>,
    /// --application-name was given (else `conninfo` holds the default,
    /// which a rerun on a standby in place replaces with its current one).
    pub application_name_given: bool,
    pub port: Option<u16>,
    pub listen: Option<String>,
    pub bindir: Option<PathBuf>,
    pub force: bool,
    /// pg_basebackup's --max-rate value, checked.
    pub max_rate: Option<String>,
    /// --compress, checked; `auto` is decided in the plan.
    pub compress: super::compress::Requested,
    pub no_start: bool,
    pub wait: Duration,
    pub connect_timeout: Duration,
    pub dry_run: bool,
    /// Where the standby restores archived WAL from, with --restore-dir or --restore-command.
    pub restore: Option<Restore>,
    /// --sslrootcert: the primary's CA, copied into the standby.
    pub root_ca: Option<RootCa>,
}

/// The CA certificate given with --sslrootcert, and where the standby's
/// copy goes (the file primary_conninfo names).
#[derive(Debug, Clone)]
pub struct RootCa {
    pub source: PathBuf,
    pub pem: String,
    pub copy: PathBuf,
}

/// The standby's copy of --sslrootcert, in its data directory: the
/// walreceiver runs as the server's user, who may not read the original
/// (under /root, say).
pub const ROOT_CA_COPY: &str = "pgrepctl-primary-ca.crt";

/// restore_command, and whether archive_cleanup_command goes with it.
#[derive(Debug, Clone)]
pub struct Restore {
    pub how: RestoreHow,
    /// --archive-cleanup (only with a directory).
    pub cleanup: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreHow {
    /// pgrepctl wal-fetch from this directory.
    Dir {
        dir: PathBuf,
        /// This pgrepctl binary, by absolute path.
        pgrepctl: PathBuf,
    },
    /// restore_command as the user gave it.
    Command(String),
}

impl Restore {
    pub fn dir(&self) -> Option<&std::path::Path> {
        match &self.how {
            RestoreHow::Dir { dir, .. } => Some(dir),
            RestoreHow::Command(_) => None,
        }
    }
}

impl Settings {
    pub fn from_args(a: Args) -> Result<Settings> {
        let Args {
            primary,
            pgdata,
            password,
            passfile,
            password_in_conninfo,
            slot,
            application_name,
            port,
            listen,
            bindir,
            force,
            max_rate,
            compress,
            no_start,
            wait,
            connect_timeout,
            allow_insecure,
            dry_run,
            restore_dir,
            restore_command,
            archive_cleanup,
            sslrootcert,
        } = a;
        let restore = restore_settings(restore_dir, restore_command, archive_cleanup)?;
        let upstream = Upstream::parse(&primary)?;
        let application_name_given = application_name.is_some();
        let application_name = application_name_or_host(application_name)?;
        let slot = slot.map(|s| SlotName::parse("--slot", &s)).transpose()?;
        if passfile.is_some() && password_in_conninfo {
            return Err(Error::new(
                Code::ConflictingFlags,
                "--passfile and --password-in-conninfo both say where the password goes",
            )
            .hint("use one of them"));
        }
        let pgdata = crate::fsutil::absolute(&pgdata)?;
        let bindir = bindir.checked()?;
        let password = password.load(allow_insecure)?;
        let passfile = passfile_path(password.as_ref(), password_in_conninfo, passfile, &pgdata)?;
        let (upstream, root_ca) = with_root_ca(upstream, sslrootcert, &pgdata)?;
        let conninfo = primary_conninfo(
            upstream,
            passfile.as_deref(),
            password.as_ref(),
            password_in_conninfo,
            application_name,
        );
        Ok(Settings {
            pgdata,
            conninfo,
            password,
            passfile,
            slot,
            application_name_given,
            port,
            listen,
            bindir,
            force,
            max_rate: max_rate.map(|r| check_rate(&r)).transpose()?,
            compress: super::compress::parse(&compress)?,
            no_start,
            wait,
            connect_timeout: connect_timeout.max(Duration::from_secs(1)),
            dry_run: dry_run.dry_run,
            restore,
            root_ca,
        })
    }

    /// A standby already in place keeps what the flags do not say: its
    /// application_name (from its primary_conninfo) and its slot
    /// (primary_slot_name), when valid, instead of the defaults (this
    /// host's name, no slot).
    pub fn keep_current(&mut self, current: &super::configure::Current) {
        if !self.application_name_given
            && let Some(name) = current
                .application_name
                .as_deref()
                .filter(|n| !n.is_empty())
                .and_then(|n| ApplicationName::parse("application_name", n).ok())
        {
            self.conninfo.application_name = name.into();
        }
        if self.slot.is_none() {
            self.slot = current
                .slot
                .as_deref()
                .filter(|s| !s.is_empty())
                .and_then(|s| SlotName::parse("primary_slot_name", s).ok());
        }
    }

    /// A rerun at a standby that streams from this same host and port
    /// over TLS, given no TLS setting itself (no TLS keyword in
    /// --primary, no --sslrootcert), keeps the standby's: leaving them out
    /// must not turn a verified link into an unverified one. pgrepctl's
    /// own copy of the primary's CA is taken as --sslrootcert gives it,
    /// so the preflight verifies with it and a re-clone copies it again.
    /// Returns the keywords kept, for the report.
    pub fn keep_tls(
        &mut self,
        current: &super::configure::Current,
    ) -> Result<Option<Vec<(&'static str, String)>>> {
        let c = &self.conninfo;
        let given = c.sslmode.is_some() || !c.ssl_files.is_empty() || self.root_ca.is_some();
        if given || current.tls.is_empty() {
            return Ok(None);
        }
        let get = |key: &str| {
            current
                .tls
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
        };
        let same = current
            .upstream
            .as_ref()
            .is_some_and(|(h, p)| *h == c.host && *p == c.port);
        if !same {
            return match get("sslmode").filter(|m| m.starts_with("verify")) {
                Some(mode) => Err(another_server_unverified(mode, &c.host, c.port)),
                None => Ok(None),
            };
        }
        for (k, v) in &current.tls {
            match *k {
                "sslmode" => self.conninfo.sslmode = Some(v.clone()),
                k => self.conninfo.ssl_files.push((k, v.clone())),
            }
        }
        let copy = self.pgdata.join(ROOT_CA_COPY);
        if get("sslrootcert").is_some_and(|r| same_file(std::path::Path::new(r), &copy)) {
            let pem = std::fs::read_to_string(&copy).map_err(|e| {
                Error::io(format!("cannot read {}", copy.display()), e).hint(
                    "the standby verifies the primary with this copy of its CA: give the CA again with --sslrootcert",
                )
            })?;
            self.root_ca = Some(RootCa {
                source: copy.clone(),
                pem,
                copy,
            });
        }
        Ok(Some(current.tls.clone()))
    }

    /// The conninfo for pgrepctl's own replication connections: the
    /// standby's, minus the password (served from a temporary file).
    pub fn preflight_conninfo(&self) -> String {
        self.conninfo_named(None)
    }

    /// [`Self::preflight_conninfo`] under another application_name (the
    /// preflight's own connections are not the standby).
    pub fn conninfo_named(&self, application_name: Option<&str>) -> String {
        let source = self
            .root_ca
            .as_ref()
            .map(|r| r.source.display().to_string());
        let mut c = self.conninfo.clone();
        if let Some(name) = application_name {
            c.application_name = name.into();
        }
        Self::render_without_password(c, source)
    }

    /// The same, with the root certificate at `rootcert` (a path this
    /// process or the child given it can read) for --sslrootcert.
    pub fn conninfo_with_rootcert(&self, rootcert: Option<String>) -> String {
        Self::render_without_password(self.conninfo.clone(), rootcert)
    }

    /// The conninfo `c` without its password (served from a file), with
    /// `rootcert` for sslrootcert when given.
    fn render_without_password(mut c: PrimaryConninfo, rootcert: Option<String>) -> String {
        c.passfile = None;
        c.password = None;
        if let Some(path) = rootcert {
            for (k, v) in c.ssl_files.iter_mut() {
                if *k == "sslrootcert" {
                    *v = path.clone();
                }
            }
        }
        c.render()
    }

    pub fn password_line(&self) -> Option<String> {
        self.password
            .as_ref()
            .map(|p| standby::passfile_line(&self.conninfo.user, p.expose()))
    }

    /// "host=10.0.0.1 port=5432", for messages.
    pub fn primary_name(&self) -> String {
        format!("host={} port={}", self.conninfo.host, self.conninfo.port)
    }
}

/// Refused: a standby that verifies its primary's certificate, pointed at
/// another server with no TLS keyword, would stop verifying unasked.
fn another_server_unverified(mode: &str, host: &str, port: u16) -> Error {
    Error::new(
        Code::InsecureRefused,
        format!(
            "the standby verifies its primary's certificate now (sslmode={mode}), and --primary names another server (host={host} port={port}) with no TLS keyword: its new primary_conninfo would not verify it"
        ),
    )
    .hint("pass --sslrootcert FILE (the CA of the server named) to keep verifying, or sslmode=require in --primary to accept an encrypted link without verifying it; nothing was changed")
}

/// Two names of one file (a -D spelled through a symlink or with `..`).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// --application-name, else this host's name (or "standby"), checked so a bad one is a usage error.
fn application_name_or_host(given: Option<String>) -> Result<ApplicationName> {
    ApplicationName::parse(
        "--application-name",
        &given.unwrap_or_else(|| crate::net::host_name().unwrap_or_else(|| "standby".into())),
    )
}

/// The standby's password file, if the password goes to one; passfile= needs an absolute path.
fn passfile_path(
    password: Option<&Secret>,
    password_in_conninfo: bool,
    passfile: Option<PathBuf>,
    pgdata: &std::path::Path,
) -> Result<Option<PathBuf>> {
    Ok(match (password, password_in_conninfo) {
        (Some(_), false) => Some(match passfile {
            Some(p) => crate::fsutil::absolute(&p)?,
            None => pgdata.join(PASSFILE_NAME),
        }),
        _ => None,
    })
}

/// primary_conninfo built in one place, so the password lands in one home: passfile= or password=.
fn primary_conninfo(
    upstream: Upstream,
    passfile: Option<&std::path::Path>,
    password: Option<&Secret>,
    password_in_conninfo: bool,
    application_name: ApplicationName,
) -> PrimaryConninfo {
    PrimaryConninfo {
        host: upstream.host,
        port: upstream.port,
        user: upstream.user,
        passfile: passfile.map(|p| p.display().to_string()),
        password: if password_in_conninfo {
            password.map(|p| p.expose().to_string())
        } else {
            None
        },
        application_name: application_name.into(),
        sslmode: upstream.sslmode,
        ssl_files: upstream.ssl_files,
    }
}

/// --sslrootcert: verify-full with the standby's copy of the file.
fn with_root_ca(
    mut upstream: Upstream,
    file: Option<PathBuf>,
    pgdata: &std::path::Path,
) -> Result<(Upstream, Option<RootCa>)> {
    let Some(file) = file else {
        return Ok((upstream, None));
    };
    let ca = root_ca(&file, pgdata, &upstream)?;
    upstream.sslmode = Some("verify-full".into());
    upstream
        .ssl_files
        .push(("sslrootcert", ca.copy.display().to_string()));
    Ok((upstream, Some(ca)))
}

/// --sslrootcert: a readable PEM certificate, and --primary without TLS
/// keywords that would contradict verify-full with it.
fn root_ca(
    file: &std::path::Path,
    pgdata: &std::path::Path,
    upstream: &Upstream,
) -> Result<RootCa> {
    let clash = upstream
        .sslmode
        .as_deref()
        .filter(|m| *m != "verify-full")
        .map(|m| format!("sslmode={m}"))
        .or_else(|| {
            upstream
                .ssl_files
                .iter()
                .find(|(k, _)| *k == "sslrootcert")
                .map(|(_, v)| format!("sslrootcert={v}"))
        });
    if let Some(c) = clash {
        return Err(Error::new(
            Code::ConflictingFlags,
            format!(
                "--primary has {c}, and --sslrootcert means sslmode=verify-full with that file"
            ),
        )
        .hint("leave sslmode and sslrootcert out of --primary when you give --sslrootcert"));
    }
    let source = crate::fsutil::absolute(file)?;
    let pem = std::fs::read_to_string(&source).map_err(|e| {
        Error::io(format!("cannot read --sslrootcert {}", source.display()), e)
            .hint("give the CA certificate file init-master --ssl printed (copied to this host)")
    })?;
    crate::pg::cert_info::CertInfo::parse(pem.as_bytes()).map_err(|e| {
        Error::new(
            Code::InvalidValue,
            format!("--sslrootcert {}: {}", source.display(), e.message),
        )
        .hint("give the CA certificate in PEM (-----BEGIN CERTIFICATE-----), e.g. pgrepctl-ca.crt from the primary")
    })?;
    Ok(RootCa {
        source,
        pem,
        copy: pgdata.join(ROOT_CA_COPY),
    })
}

/// The upstream server named by `--primary`: one host, no password.
struct Upstream {
    host: String,
    port: u16,
    user: String,
    sslmode: Option<String>,
    ssl_files: Vec<(&'static str, String)>,
}

impl Upstream {
    fn parse(primary: &str) -> Result<Upstream> {
        let config = crate::pg::conninfo::parse(primary)?;
        if config.get_password().is_some() {
            return Err(Error::new(
                Code::InsecureRefused,
                "--primary contains a password; command lines are visible to every user in ps",
            )
            .hint("put the password in a 0600 file and pass --password-file, or set PGREPCTL_REPLICATION_PASSWORD"));
        }
        let host = match config.get_hosts() {
            [] => {
                return Err(Error::new(Code::Usage, "--primary names no host")
                    .hint("give host=ADDRESS (or a postgresql://HOST URI)"));
            }
            [Host::Tcp(h), ..] => h.clone(),
            [Host::Unix(p), ..] => p.display().to_string(),
        };
        if config.get_hosts().len() > 1 {
            return Err(Error::new(Code::Usage, "--primary names several hosts")
                .hint("a standby streams from one upstream server: give exactly one host"));
        }
        // Every TLS keyword given goes to primary_conninfo as given.
        let (sslmode, ssl_files): (Vec<_>, Vec<_>) = config
            .tls
            .keywords()
            .into_iter()
            .partition(|(k, _)| *k == "sslmode");
        let sslmode = sslmode.into_iter().next().map(|(_, v)| v);
        Ok(Upstream {
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            user: config.get_user().unwrap_or("replicator").to_string(),
            sslmode,
            ssl_files,
        })
    }
}

/// --restore-dir or --restore-command (not both), and --archive-cleanup
/// only with a directory pgrepctl knows.
fn restore_settings(
    dir: Option<PathBuf>,
    command: Option<String>,
    cleanup: bool,
) -> Result<Option<Restore>> {
    let how = match (dir, command) {
        (Some(_), Some(_)) => {
            return Err(Error::new(
                Code::ConflictingFlags,
                "--restore-dir and --restore-command both say how to restore WAL",
            )
            .hint("use --restore-dir DIR for pgrepctl's own wal-fetch, or --restore-command CMD for your own command, not both"));
        }
        (Some(dir), None) => RestoreHow::Dir {
            dir: crate::fsutil::absolute(&dir)?,
            pgrepctl: crate::commands::wal::self_path()?,
        },
        (None, Some(_)) if cleanup => {
            return Err(Error::new(
                Code::ConflictingFlags,
                "--archive-cleanup needs --restore-dir (pgrepctl writes pg_archivecleanup DIR %r)",
            )
            .hint("use --restore-dir DIR --archive-cleanup, or set archive_cleanup_command yourself next to --restore-command"));
        }
        (None, Some(cmd)) => {
            let t = cmd.trim();
            if t.is_empty() || t.contains(['\n', '\r', '\0']) {
                return Err(Error::new(
                    Code::InvalidValue,
                    format!("--restore-command {cmd:?} is not a usable command"),
                )
                .hint("give one line that copies the archived file %f to %p and fails when it is missing"));
            }
            RestoreHow::Command(t.to_string())
        }
        (None, None) if cleanup => {
            return Err(Error::new(
                Code::Usage,
                "--archive-cleanup needs --restore-dir",
            )
            .hint("add --restore-dir DIR: the archive the standby restores from is the one cleaned"));
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(Restore { how, cleanup }))
}

/// The default name of the standby's password file, inside its data
/// directory: readable only by the server's owner, gone with the cluster.
pub const PASSFILE_NAME: &str = "pgrepctl.pgpass";

/// pg_basebackup's rate syntax: a number of kB/s, or with `k` or `M`.
fn check_rate(r: &str) -> Result<String> {
    let t = r.trim();
    let (num, mult) = match t.strip_suffix(['M', 'm']) {
        Some(n) => (n, 1024),
        None => (t.strip_suffix(['k', 'K']).unwrap_or(t), 1),
    };
    match num.parse::<u64>() {
        Ok(n) if (32..=1024 * 1024).contains(&(n * mult)) => Ok(t.to_string()),
        _ => Err(
            Error::new(Code::InvalidValue, format!("invalid --max-rate {r:?}"))
                .hint("give kB/s between 32k and 1024M, e.g. 500k or 50M"),
        ),
    }
}
