//! `promote`: make this host's standby the primary, safely. [`inspect`]
//! reads the standby and probes its upstream (the split-brain guard);
//! [`apply`] promotes through the engine, waits until the server takes
//! writes, and checkpoints so pg_control shows the new timeline (which a
//! later pg_rewind against this server relies on).

mod apply;
mod inspect;

use crate::cli::flags::{BindirFlag, DryRunFlag, duration};
use crate::error::Failure;
use crate::report::{Outcome, Printer};
use std::path::PathBuf;
use std::time::Duration;

/// Promote the standby in -D to a primary: refuse while its upstream still
/// answers (unless --force), promote, wait until it takes writes, and
/// checkpoint so the new timeline is in pg_control.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Data directory of the running standby to promote
    #[arg(short = 'D', long = "pgdata", env = "PGDATA", value_name = "DIR")]
    pub pgdata: PathBuf,
    /// How long the promotion may take until the server accepts writes, e.g. 60s
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub wait: Duration,
    /// How long to try the upstream in primary_conninfo before taking it for dead, e.g. 3s
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = duration)]
    pub upstream_timeout: Duration,
    /// Promote even though the upstream still answers (it is fenced off, or about to be): two primaries otherwise
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub bindir: BindirFlag,
    #[command(flatten)]
    pub dry_run: DryRunFlag,
}

pub async fn run(args: Args, printer: &Printer) -> Result<Outcome, Failure> {
    let bindir = args.bindir.checked()?;
    let _lock = crate::lock::unless_dry_run(&args.pgdata, "promote", args.dry_run.dry_run)?;
    let facts = inspect::inspect(&args, bindir.as_deref(), printer).await?;
    let plan = apply::plan(&args, &facts)?;
    let mut outcome = Outcome::new("promote", args.dry_run.dry_run);
    facts.report_into(&mut outcome);
    if args.dry_run.dry_run {
        plan.preflight()?;
        plan.preview_into(&mut outcome);
        return Ok(outcome);
    }
    apply::apply(args, facts, plan, printer, &mut outcome)
        .await
        .map_err(|error| outcome.failure(error))?;
    Ok(outcome)
}
