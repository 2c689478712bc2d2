//! `switchover`: a planned change of primary with nothing lost. Run on the
//! current primary's host. [`inspect`] reads this node (running primary,
//! or a switchover interrupted at some step: stopped, fenced, already a
//! standby of the candidate), the candidate and the siblings over
//! superuser sessions; [`preflight`] decides, with no I/O, whether the
//! switchover can go ahead (the candidate streams from here and is close,
//! it will accept this node and the siblings, synchronous replication and
//! the hot-standby limits will not stop anything after the swap); [`steps`]
//! turns the phase into engine steps: [`drain`] (writes off, sessions
//! ended, checkpoints, a fast stop), [`handover`] (the candidate proven to
//! have the shutdown checkpoint, this node fenced as its standby, the
//! promotion) and [`after`] (this node streams from the new primary, the
//! siblings are repointed, smoke-test and check). Until the promotion, a
//! failure rolls back by itself: this node runs as a writable primary
//! again and nothing was promoted.

mod after;
mod drain;
mod handover;
mod inspect;
mod preflight;
mod steps;

pub use inspect::DRAIN_MARKER;

use crate::cli::flags::{BindirFlag, DryRunFlag, PasswordFlag, duration};
use crate::cli::names::{ApplicationName, SlotName};
use crate::error::{Code, Error, Failure, Result};
use crate::report::{Outcome, Printer};
use crate::secret::Secret;
use std::path::PathBuf;
use std::time::Duration;

/// Hand the primary role to a standby with zero data loss: writes paused,
/// a clean shutdown, the candidate proven to have every byte, then
/// promoted; this node comes back as its standby and the siblings follow.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Data directory of the current primary, on this host
    #[arg(short = 'D', long = "pgdata", env = "PGDATA", value_name = "DIR")]
    pub pgdata: PathBuf,
    /// The standby to promote, as a superuser conninfo, e.g. 'host=10.0.0.2 user=postgres' (PostgreSQL 12+: pg_promote())
    #[arg(long, value_name = "CONNINFO")]
    pub candidate: String,
    /// Another standby of this primary to repoint at the candidate, as a superuser conninfo (repeatable; 13+ remotely, else the follow command to run there is printed)
    #[arg(long = "sibling", value_name = "CONNINFO")]
    pub siblings: Vec<String>,
    /// The replication role's password, written to a 0600 passfile in -D for this node's new primary_conninfo [default: the server user's ~/.pgpass]
    #[command(flatten)]
    pub password: PasswordFlag,
    /// Refuse when the candidate's replay is further behind than this, e.g. 16MB
    #[arg(long, value_name = "SIZE", default_value = "16MB", value_parser = size)]
    pub max_lag: u64,
    /// How long write transactions may take to finish once writes are off, before their sessions are ended, e.g. 10s
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub drain_timeout: Duration,
    /// How long the candidate may take to replay this node's shutdown checkpoint; past it the switchover rolls back, e.g. 30s
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub catchup_timeout: Duration,
    /// How long the promotion, and this node's streaming from the new primary, may take, e.g. 60s
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub wait: Duration,
    /// Stream this node through this physical slot on the candidate (created) [default: a slot named after this node when the candidate streams through one here]
    #[arg(long, value_name = "NAME")]
    pub slot: Option<String>,
    /// application_name the new primary shows for this node [default: this host's name]
    #[arg(long, value_name = "NAME")]
    pub application_name: Option<String>,
    /// How long to try to connect to the candidate and the siblings, e.g. 10s
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub connect_timeout: Duration,
    #[command(flatten)]
    pub bindir: BindirFlag,
    #[command(flatten)]
    pub dry_run: DryRunFlag,
}

fn size(s: &str) -> std::result::Result<u64, String> {
    crate::units::parse_bytes(s)
}

/// The flags, checked before anything is read.
#[derive(Debug, Clone)]
pub struct Settings {
    pub pgdata: PathBuf,
    pub candidate: String,
    pub siblings: Vec<String>,
    pub password: Option<Secret>,
    pub max_lag: u64,
    pub drain_timeout: Duration,
    pub catchup_timeout: Duration,
    pub wait: Duration,
    pub slot: Option<SlotName>,
    pub application_name: Option<ApplicationName>,
    pub connect_timeout: Duration,
    pub bindir: Option<PathBuf>,
    pub dry_run: bool,
}

impl Settings {
    pub fn from_args(a: Args) -> Result<Settings> {
        let Args {
            pgdata,
            candidate,
            siblings,
            password,
            max_lag,
            drain_timeout,
            catchup_timeout,
            wait,
            slot,
            application_name,
            connect_timeout,
            bindir,
            dry_run,
        } = a;
        crate::pg::conninfo::resolve_node(&candidate)?;
        for s in &siblings {
            crate::pg::conninfo::resolve_node(s)?;
            if s.trim() == candidate.trim() {
                return Err(Error::new(
                    Code::Usage,
                    format!("--sibling {s} is the candidate itself"),
                )
                .hint("name each other standby once with --sibling, and the candidate only with --candidate"));
            }
        }
        Ok(Settings {
            pgdata: crate::fsutil::absolute(&pgdata)?,
            candidate,
            siblings,
            password: password.load(false)?,
            max_lag,
            drain_timeout,
            catchup_timeout: catchup_timeout.max(Duration::from_secs(1)),
            wait: wait.max(Duration::from_secs(1)),
            slot: slot.map(|s| SlotName::parse("--slot", &s)).transpose()?,
            application_name: application_name
                .map(|n| ApplicationName::parse("--application-name", &n))
                .transpose()?,
            connect_timeout: connect_timeout.max(Duration::from_secs(1)),
            bindir: bindir.checked()?,
            dry_run: dry_run.dry_run,
        })
    }
}

pub async fn run(args: Args, printer: &Printer) -> Result<Outcome, Failure> {
    let settings = Settings::from_args(args)?;
    let _lock = crate::lock::unless_dry_run(&settings.pgdata, "switchover", settings.dry_run)?;
    let facts = inspect::inspect(&settings, printer).await?;
    let checked = preflight::check(&settings, &facts)?;
    for n in &checked.notes {
        printer.info(n);
    }
    let mut outcome = Outcome::new("switchover", settings.dry_run);
    facts.report_into(&mut outcome);
    checked.report_into(&mut outcome);
    let plan = steps::plan(&settings, &facts, &checked)?;
    if settings.dry_run {
        plan.preflight()?;
        plan.preview_into(&mut outcome);
        return Ok(outcome);
    }
    steps::apply(settings, facts, checked, plan, printer, &mut outcome)
        .await
        .map_err(|error| outcome.failure(error))?;
    Ok(outcome)
}
