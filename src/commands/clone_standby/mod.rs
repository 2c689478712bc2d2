//! `clone-standby`: from an empty directory to a streaming hot standby.
//! [`settings`] validates the flags, [`target`] and [`preflight`] only
//! read (the local directory, then the primary over a real replication
//! connection), [`plan`] decides (pure), and [`apply`] copies, configures,
//! starts and waits, leaving the target as it was on any failure before the
//! copy is complete.

mod apply;
mod aside;
mod compress;
mod configure;
mod copy;
mod interrupted;
mod plan;
mod preflight;
mod probe;
mod settings;
mod start;
mod target;

use crate::cli::flags::{BindirFlag, DryRunFlag, PasswordFlag, duration};
use crate::error::Failure;
use crate::report::{Outcome, Printer};
use std::path::PathBuf;

pub use settings::{PASSFILE_NAME, Settings};

/// Make this host a streaming hot standby of a primary: preflight, copy with
/// pg_basebackup, write the standby configuration for the server's version,
/// start, and wait until it streams and has caught up.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The primary (or an upstream standby), as libpq keywords or a URI, e.g. 'host=10.0.0.1 port=5432 user=replicator' [user default: replicator; port default: 5432]
    #[arg(long, value_name = "CONNINFO")]
    pub primary: String,
    /// Data directory of the new standby: absent or empty (or anything, with --force)
    #[arg(short = 'D', long = "pgdata", env = "PGDATA", value_name = "DIR")]
    pub pgdata: PathBuf,
    /// The CA certificate that signed the primary's server certificate (init-master --ssl prints where it is): the standby connects with sslmode=verify-full (and channel_binding=require on PostgreSQL 13+), checked before the copy; the file is copied into the data directory as pgrepctl-primary-ca.crt, owned by the server's user, and primary_conninfo names that copy
    #[arg(long, value_name = "FILE")]
    pub sslrootcert: Option<PathBuf>,
    #[command(flatten)]
    pub password: PasswordFlag,
    /// Where the standby's own 0600 password file goes, named by passfile= in primary_conninfo [default: DIR/pgrepctl.pgpass]
    #[arg(long, value_name = "FILE")]
    pub passfile: Option<PathBuf>,
    /// Write the password into primary_conninfo instead of a password file (readable by superusers through SQL)
    #[arg(long)]
    pub password_in_conninfo: bool,
    /// Stream through this physical replication slot on the primary, creating it if missing
    #[arg(long, value_name = "NAME")]
    pub slot: Option<String>,
    /// application_name the primary shows for this standby in pg_stat_replication, and synchronous_standby_names names; give each standby its own (a name another standby already streams under is warned about) [default: this host's name]
    #[arg(long, value_name = "NAME")]
    pub application_name: Option<String>,
    /// Port the standby listens on, written to its postgresql.auto.conf [default: the primary's configuration]
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// listen_addresses of the standby, e.g. '*' [default: the primary's configuration]
    #[arg(long, value_name = "ADDRS")]
    pub listen: Option<String>,
    #[command(flatten)]
    pub bindir: BindirFlag,
    /// Replace a non-empty target directory (never one a postmaster runs on;
    /// a former primary of this cluster is kept at PGDATA.replaced-TIMESTAMP)
    #[arg(long)]
    pub force: bool,
    /// Limit the copy's transfer rate to spare the primary's disk and network, e.g. 50M (pg_basebackup --max-rate; 32k to 1024M) [default: unlimited]
    #[arg(long, value_name = "RATE")]
    pub max_rate: Option<String>,
    /// Compress the copy on the primary before it crosses the network: auto (none from this host, before 15, or where a build lacks zstd; otherwise decided from a short probe of the link before the copy: none at 250 MB/s or faster, server-zstd:level=1,workers=2 from 40 MB/s, server-zstd:level=1 below that or when the probe cannot run), none, server-zstd[:level=N][,workers=N], or server-lz4
    #[arg(long, value_name = "METHOD", default_value = "auto")]
    pub compress: String,
    /// Copy and configure, but do not start the standby
    #[arg(long)]
    pub no_start: bool,
    /// How long to wait for the started standby to stream and catch up (60, 60s, 2min)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub wait: std::time::Duration,
    /// How long to wait for the primary to answer a connection (10, 10s, 500ms)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub connect_timeout: std::time::Duration,
    /// Restore WAL the stream no longer has from this archive directory (what init-master --archive-dir fills), with pgrepctl wal-fetch: restore_command, so a standby that fell behind catches up from the archive and returns to streaming
    #[arg(long, value_name = "DIR")]
    pub restore_dir: Option<PathBuf>,
    /// Restore WAL with this command instead (restore_command = CMD as given: %f is the file's name, %p where to put it)
    #[arg(long, value_name = "CMD")]
    pub restore_command: Option<String>,
    /// With --restore-dir: delete archived WAL this standby no longer needs (archive_cleanup_command = pg_archivecleanup DIR %r); only when no other standby or backup reads the same archive
    #[arg(long)]
    pub archive_cleanup: bool,
    /// Accept a password file readable by others
    #[arg(long)]
    pub allow_insecure: bool,
    #[command(flatten)]
    pub dry_run: DryRunFlag,
}

pub async fn run(args: Args, printer: &Printer) -> Result<Outcome, Failure> {
    let mut settings = Settings::from_args(args)?;
    let _lock = crate::lock::unless_dry_run(&settings.pgdata, "clone-standby", settings.dry_run)?;
    let aside = aside::recover(&settings.pgdata, settings.dry_run, printer)?;
    let target = target::inspect(&settings.pgdata)?;
    let kept_tls = keep_tls(&mut settings, &target, printer)?;
    let adopted = interrupted::adopt(&mut settings, &target);
    let mut facts = preflight::inspect(&settings, target, printer).await?;
    facts.warnings.splice(0..0, aside);
    facts.warnings.extend(adopted);
    facts.slot_exists = slot_exists(&settings, &facts).await;
    if facts.channel_binding {
        // Decided by the preflight (the walreceiver's libpq is 13+).
        settings
            .conninfo
            .ssl_files
            .push(("channel_binding", "require".into()));
    }
    let failure = |error, facts: &preflight::Facts| Failure {
        error,
        warnings: facts.warnings.clone(),
        changed: false,
    };
    let plan = plan::plan(&settings, &facts).map_err(|e| failure(e, &facts))?;
    let mut in_place = None;
    if let plan::Action::Reconcile { running } = plan.action {
        // A rerun on the standby in place: what the flags do not say stays
        // as it is (not this host's name, not "no slot").
        let current = configure::current(&settings.pgdata, facts.primary.version_num)
            .map_err(|e| failure(e, &facts))?;
        settings.keep_current(&current);
        in_place = Some(current).filter(|_| running);
    }
    let shared = preflight::name_in_use(&settings, &facts, in_place.as_ref());
    facts.warnings.extend(shared);
    facts
        .warnings
        .extend(interrupted::unused(&settings, &facts.target));
    let steps = apply::steps(&settings, &facts, &plan).map_err(|e| failure(e, &facts))?;
    let mut outcome = Outcome::new("clone-standby", settings.dry_run);
    outcome.warnings = facts.warnings.clone();
    facts.report_into(&mut outcome);
    outcome.detail("compression", plan.compression.json());
    if let Some(kept) = kept_tls {
        let kept: serde_json::Map<_, _> = kept
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        outcome.detail("tls_kept", serde_json::Value::Object(kept));
    }
    if matches!(plan.action, plan::Action::Clone { .. }) {
        printer.info(format!(
            "compression: {} ({})",
            plan.compression.method.name(),
            plan.compression.reason
        ));
    }
    if let (Some(slot), plan::Action::Clone { .. }) = (&settings.slot, plan.action) {
        if facts.slot_exists == Some(true) {
            printer.info(format!(
                "replication slot {slot} exists on {}: reused",
                settings.primary_name()
            ));
        }
        outcome.detail(
            "slot",
            serde_json::json!({"name": slot.as_str(), "exists": facts.slot_exists}),
        );
    }
    if settings.dry_run {
        steps.preflight()?;
        steps.preview_into(&mut outcome);
        return Ok(outcome);
    }
    match apply::apply(settings, facts, steps, printer, &mut outcome).await {
        Ok(()) => Ok(outcome),
        Err(error) => Err(outcome.failure(error)),
    }
}

/// A standby at the target keeps its TLS keywords when the flags give
/// none (`Settings::keep_tls`), said before the preflight uses them.
fn keep_tls(
    settings: &mut Settings,
    target: &target::TargetFacts,
    printer: &Printer,
) -> crate::error::Result<Option<Vec<(&'static str, String)>>> {
    let target::Target::DataDir { standby: true, .. } = target.state else {
        return Ok(None);
    };
    let kept = settings.keep_tls(&configure::current_any(&settings.pgdata)?)?;
    if let Some(kept) = &kept {
        let each: Vec<String> = kept.iter().map(|(k, v)| format!("{k}={v}")).collect();
        printer.info(format!(
            "kept the standby's TLS settings ({}): pass TLS keywords in --primary, or --sslrootcert, to change them",
            each.join(" ")
        ));
    }
    Ok(kept)
}

/// Whether --slot exists on the primary, where a replication connection
/// can tell (READ_REPLICATION_SLOT, 15+) or, before 15, the preflight's
/// normal connection listed the slots: a dry run then says it is reused
/// rather than created.
async fn slot_exists(settings: &Settings, facts: &preflight::Facts) -> Option<bool> {
    let slot = settings.slot.as_deref()?;
    let version = crate::pg::version::Version::of(facts.primary.version_num);
    if !version.read_replication_slot() {
        let slots = facts.physical_slots.as_ref()?;
        return Some(slots.iter().any(|s| s == slot));
    }
    let mut conn = facts.repl.connect().await.ok()?;
    let found = conn.read_replication_slot(slot).await;
    conn.close().await;
    found.ok().map(|p| p.is_some())
}
