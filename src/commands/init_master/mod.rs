//! `init-master`: make a primary ready for streaming standbys. Validated
//! settings here, then [`inspect`] (read-only facts), [`plan`] (pure), and
//! [`apply`] (changes, verified, rolled back on failure).

mod apply;
mod inspect;
pub mod monitor;
mod plan;
mod settings;
pub mod ssl;

use crate::cli::flags::{BindirFlag, DryRunFlag, PasswordFlag};
use crate::error::Failure;
use crate::error::{Code, Error};
use crate::pg::conninfo::ConnArgs;
use crate::report::{Outcome, Printer};
use std::path::PathBuf;

pub use settings::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RestartPolicy {
    /// Never restart; report restart_required and the command to run
    Never,
    /// Restart when a changed setting needs it (wal_level, max_wal_senders, …)
    IfNeeded,
    /// Restart even when nothing needs it
    Always,
}

/// Make a primary ready for streaming standbys: replication role (SCRAM),
/// postgresql.conf (wal_level, max_wal_senders, WAL retention, hot_standby),
/// pg_hba.conf replication lines, physical slots; reload, restart only when asked.
#[derive(clap::Args, Debug, Clone)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Data directory of the primary (used to find the running server and to restart it)
    #[arg(short = 'D', long = "pgdata", env = "PGDATA", value_name = "DIR")]
    pub pgdata: Option<PathBuf>,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Name of the replication role to create or fix
    #[arg(long, value_name = "ROLE", default_value = "replicator")]
    pub replication_user: String,
    /// Let --replication-user name an existing role that is more than a replication login (superuser, CREATEDB, CREATEROLE, BYPASSRLS, owner of objects, member of roles other than pg_monitor and its parts): its password may change and is copied to every standby
    #[arg(long)]
    pub allow_privileged_role: bool,
    #[command(flatten)]
    pub password: PasswordFlag,
    /// Standby address or CIDR allowed to replicate, e.g. 10.0.0.2 or 10.0.0.0/24 (repeatable)
    #[arg(long = "allow", value_name = "ADDR")]
    pub allow: Vec<String>,
    /// Standbys connect with TLS only: hostssl replication lines, a hostnossl … reject line before them for each --allow, and ssl = on. A server without a certificate gets pgrepctl's own CA and a server certificate for the --ssl-name values; an existing certificate is kept and checked (expiry, names)
    #[arg(long)]
    pub ssl: bool,
    /// With --ssl: a DNS name or IP address standbys use to reach this server, put in the server certificate pgrepctl issues and checked against an existing one (repeatable), e.g. --ssl-name db1.example.org --ssl-name 10.0.0.1
    #[arg(long = "ssl-name", value_name = "NAME", requires = "ssl")]
    pub ssl_names: Vec<String>,
    /// With --ssl: where pgrepctl's CA certificate and key go (never inside the data directory, which pg_basebackup copies to every standby) [default: the configuration directory when it is outside the data directory, e.g. /etc/postgresql/15/main]
    #[arg(long, value_name = "DIR", requires = "ssl")]
    pub ssl_dir: Option<PathBuf>,
    /// With --ssl: issue pgrepctl's own CA and server certificate even though the server has a certificate (Debian's snakeoil, say) that does not suit; the old files are kept, ssl_cert_file and ssl_key_file point at the new ones. pgrepctl's own certificate that no longer suits (expired, expiring within check's 30-day warning window, a --ssl-name added) is reissued by the same CA in place (pgrepctl-server.crt and .key are overwritten)
    #[arg(long, requires = "ssl")]
    pub ssl_issue: bool,
    /// Authentication method of the written pg_hba.conf lines
    #[arg(long, value_name = "METHOD", default_value = "scram-sha-256")]
    pub hba_method: String,
    /// Permit insecure choices: trust/password methods, all-addresses CIDRs, a group-readable password file
    #[arg(long)]
    pub allow_insecure: bool,
    /// Lowest acceptable max_wal_senders (never lowered)
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_wal_senders: u32,
    /// WAL kept for standbys that fall behind, with a unit (wal_keep_size on 13+, wal_keep_segments before; never lowered)
    #[arg(long, value_name = "SIZE", default_value = "1GB")]
    pub wal_keep: String,
    /// Set listen_addresses to this value (needs a restart), e.g. '*' or 'localhost,10.0.0.1'
    #[arg(long, value_name = "ADDRS")]
    pub listen: Option<String>,
    /// Make this server rewindable after a failover (what pgrepctl rejoin needs to bring it back as a standby without a new copy): wal_log_hints = on when the cluster has no data checksums (needs a restart)
    #[arg(long)]
    pub rewindable: bool,
    /// Monitoring host address or CIDR to let in as --monitor-user, to the postgres database with scram-sha-256 (repeatable); standbys cloned later let it in too
    #[arg(long = "monitor-from", value_name = "ADDR")]
    pub monitor_from: Vec<String>,
    /// Name of the monitoring role (LOGIN, member of pg_monitor) created for --monitor-from
    #[arg(long, value_name = "ROLE", default_value = "monitor")]
    pub monitor_user: String,
    /// File whose first line is the monitoring role's password (mode 0600); needed when the role is created
    #[arg(long, value_name = "FILE")]
    pub monitor_password_file: Option<PathBuf>,
    /// Physical replication slot to create if missing (repeatable)
    #[arg(long = "slot", value_name = "NAME")]
    pub slots: Vec<String>,
    /// Archive WAL into this directory (shared storage, e.g. an NFS mount) with pgrepctl's durable wal-push: archive_mode = on (needs a restart), archive_command, archive_timeout; the directory must be writable by the server's OS user
    #[arg(long, value_name = "DIR")]
    pub archive_dir: Option<PathBuf>,
    /// Archive WAL with this command instead (archive_mode = on, archive_command = CMD as given: %p is the file's path, %f its name)
    #[arg(long, value_name = "CMD")]
    pub archive_command: Option<String>,
    /// With --archive-dir on PostgreSQL 15+: archive through the server's basic_archive module (archive_library) instead of a command
    #[arg(long)]
    pub archive_library: bool,
    /// With --archive-dir or --archive-command: switch to a new WAL file after this long when there was any write, so an idle primary still archives (archive_timeout; 0 turns it off) [default: 60s]
    #[arg(long, value_name = "DURATION")]
    pub archive_timeout: Option<String>,
    /// Whether to restart the server when a changed setting needs it
    #[arg(long, value_enum, value_name = "WHEN", default_value = "never")]
    pub restart: RestartPolicy,
    #[command(flatten)]
    pub bindir: BindirFlag,
    #[command(flatten)]
    pub dry_run: DryRunFlag,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

pub async fn run(args: Args, printer: &Printer) -> Result<Outcome, Failure> {
    let settings = Settings::from_args(args)?;
    let facts = inspect::inspect(&settings, printer).await?;
    let _lock =
        crate::lock::unless_dry_run(&facts.data_directory, "init-master", settings.dry_run)?;
    let plan = plan::plan(&settings, &facts).map_err(|error| Failure {
        error,
        warnings: vec![],
        changed: false,
    })?;
    let bindir = apply::restart_bindir(&settings, &facts, &plan)?;
    let mut outcome = Outcome::new("init-master", settings.dry_run);
    if let Some(ssl) = &plan.ssl {
        outcome.detail("ssl", &ssl.report);
        outcome.epilogue = ssl.epilogue.clone();
    }
    if settings.dry_run {
        outcome.detail("restart_command", &plan.restart_command);
        let engine = plan.into_engine();
        // Writability is checked in a dry run too, so that --dry-run
        // fails exactly where the real run would.
        engine.preflight()?;
        engine.preview_into(&mut outcome);
        return Ok(outcome);
    }
    remove_stale_temps(&facts, printer);
    apply::apply(settings, facts, plan, bindir, printer, &mut outcome)
        .await
        .map_err(|error| outcome.failure(error))?;
    Ok(outcome)
}

/// Temporary files a killed run left beside the config files go first,
/// even when nothing else is to change (they are ours, not the DBA's).
fn remove_stale_temps(facts: &inspect::Facts, printer: &Printer) {
    let mut dirs: Vec<&std::path::Path> = facts
        .files
        .keys()
        .chain([&facts.hba_file, &facts.config_file])
        .filter_map(|p| p.parent())
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        for p in crate::fsutil::remove_stale_temps(dir) {
            printer.info(format!(
                "removed {} left by an interrupted run",
                p.display()
            ));
        }
    }
}

pub(crate) fn internal(msg: impl Into<String>) -> Error {
    Error::new(Code::Internal, msg)
}
