//! `rejoin`: turn a stopped old primary (or a diverged standby) into a
//! standby of the new primary. [`inspect`] reads the node (control data,
//! history, WAL end) and asks the new primary over the replication
//! protocol with the standby's own credentials (IDENTIFY_SYSTEM,
//! TIMELINE_HISTORY); [`plan`] decides, as pg_rewind would, whether the
//! node can simply follow, needs pg_rewind, or is cheaper to copy anew;
//! [`rewind`] checks everything pg_rewind needs before anything is
//! touched and carries it out; [`apply`] builds the engine steps (crash
//! recovery, rewind, standby configuration, start, wait until streaming)
//! and, with `--reclone-on-failure`, re-clones after a failed rewind with
//! the old directory kept aside.

mod apply;
mod inspect;
mod plan;
mod reclone;
mod recovery;
mod rewind;

use crate::cli::flags::{BindirFlag, DryRunFlag, PasswordFlag, duration};
use crate::error::{Code, Failure};
use crate::report::{Outcome, Printer};
use std::path::PathBuf;
use std::time::Duration;

/// Turn a stopped old primary (or a diverged standby) into a streaming
/// standby of the new primary: follow it when the node never went past the
/// new timeline's fork point, rewind it with pg_rewind when it did (or
/// re-clone it when that moves less), start it and wait until it streams.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Data directory of the stopped node to rejoin
    #[arg(short = 'D', long = "pgdata", env = "PGDATA", value_name = "DIR")]
    pub pgdata: PathBuf,
    /// The new primary, as libpq keywords or a URI, e.g. 'host=10.0.0.2 user=replicator' [user default: replicator; port default: 5432]
    #[arg(long, value_name = "CONNINFO")]
    pub primary: String,
    #[command(flatten)]
    pub password: PasswordFlag,
    /// Stream through this physical replication slot on the new primary, creating it if missing
    #[arg(long, value_name = "NAME")]
    pub slot: Option<String>,
    /// application_name the new primary shows for this standby in pg_stat_replication [default: this host's name]
    #[arg(long, value_name = "NAME")]
    pub application_name: Option<String>,
    /// Whether a node that went past the fork point may be rewound with pg_rewind (auto: rewind or re-clone, whichever moves less; never: refuse)
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub rewind: RewindMode,
    /// Role pg_rewind connects as to the new primary: a superuser, or (11+) one granted EXECUTE on pg_ls_dir, pg_stat_file and pg_read_binary_file [default: the --primary user; its password from PGPASSFILE or ~/.pgpass, else the replication password]
    #[arg(long, value_name = "NAME")]
    pub rewind_user: Option<String>,
    /// When pg_rewind fails (or this major has none), move the old directory aside to DIR.rejoin-TIMESTAMP and copy the node anew with clone-standby
    #[arg(long)]
    pub reclone_on_failure: bool,
    /// How long to wait for the started standby to stream from the new primary, e.g. 60s
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub wait: Duration,
    /// How long to wait for the new primary to answer a connection, e.g. 10s
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub connect_timeout: Duration,
    #[command(flatten)]
    pub bindir: BindirFlag,
    #[command(flatten)]
    pub dry_run: DryRunFlag,
}

/// `--rewind`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewindMode {
    /// Rewind a diverged node, or re-clone it when its divergence is larger than its data directory
    Auto,
    /// Refuse a node that needs a rewind
    Never,
}

pub async fn run(args: Args, printer: &Printer) -> Result<Outcome, Failure> {
    let mut settings = inspect::Settings::from_args(&args)?;
    let _lock = crate::lock::unless_dry_run(&args.pgdata, "rejoin", args.dry_run.dry_run)?;
    let facts = inspect::inspect(&args, &mut settings, printer).await?;
    let mut decision = plan::decide(&args, &facts)?;
    let checks = match rewind::preflight(&args, &settings, &facts, &decision, printer).await {
        // pg_rewind itself refused the node (its dry run), or the node
        // cannot be rewound at all (no checksums, no wal_log_hints): with
        // --reclone-on-failure that is the failure a copy answers.
        Err(e)
            if matches!(e.code, Code::RewindFailed | Code::RewindNotPossible)
                && args.reclone_on_failure =>
        {
            decision = plan::Decision::Reclone {
                why: format!("{}; copied anew (--reclone-on-failure)", e.message),
            };
            rewind::Checks::default()
        }
        other => other?,
    };
    let steps = apply::plan(&args, &settings, &facts, &decision, &checks)?;
    let mut outcome = Outcome::new("rejoin", args.dry_run.dry_run);
    facts.report_into(&mut outcome);
    decision.report_into(&mut outcome);
    checks.report_into(&mut outcome);
    if decision == plan::Decision::Nothing {
        outcome.epilogue = Some(format!(
            "{} already streams from {} on timeline {}.\n",
            facts.cluster.data_dir.display(),
            settings.standby.primary_name(),
            facts.primary.timeline
        ));
    }
    if args.dry_run.dry_run {
        steps.preflight()?;
        steps.preview_into(&mut outcome);
        return Ok(outcome);
    }
    let data_dir = facts.cluster.data_dir.clone();
    apply::apply(args, settings, facts, checks, steps, printer, &mut outcome)
        .await
        .map_err(|error| outcome.failure(error))?;
    inspect::warn_own_slots(&data_dir, &mut outcome);
    Ok(outcome)
}
