//! `follow`: repoint a standby to a new primary (after a promotion).
//! [`inspect`] reads the standby, [`probe`] the new primary over the
//! replication protocol with the standby's own credentials, [`plan`]
//! decides with `pg::timeline` whether the standby can stream from there
//! and what changes, and [`apply`] runs it on the engine and proves the
//! standby streams from the new primary on its timeline.

mod apply;
mod conninfo;
mod inspect;
mod plan;
mod probe;
mod upstream;
mod walend;

use crate::cli::flags::{BindirFlag, DryRunFlag, PasswordFlag, duration};
use crate::cli::names::SlotName;
use crate::error::{Code, Error, Failure, Result};
use crate::report::{Outcome, Printer};
use crate::secret::Secret;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Repoint a standby at a new primary: refuse when it diverged from the
/// new primary's timeline (pgrepctl rejoin is for that), write the new
/// primary_conninfo (slot, recovery_target_timeline = latest), reload on
/// 13+ or restart before, and wait until it streams from there.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Data directory of the standby on this host (running, or stopped cleanly as a standby)
    #[arg(
        short = 'D',
        long = "pgdata",
        value_name = "DIR",
        required_unless_present = "standby",
        conflicts_with = "standby"
    )]
    pub pgdata: Option<PathBuf>,
    /// Instead of -D: a standby on another host, over a superuser connection (PostgreSQL 13+; ALTER SYSTEM and a reload), e.g. 'host=db3 user=postgres'
    #[arg(long, value_name = "CONNINFO")]
    pub standby: Option<String>,
    /// The new primary (or an upstream standby) to stream from, as libpq keywords or a URI, e.g. 'host=10.0.0.2 port=5432'; user, passfile and application_name default to the standby's own
    #[arg(long, value_name = "CONNINFO")]
    pub primary: String,
    /// Stream through this physical replication slot, created on the new primary if missing [default: none; a slot of the old upstream is dropped from the settings, kept when --primary is that same server by another address]
    #[arg(long, value_name = "NAME")]
    pub slot: Option<String>,
    #[command(flatten)]
    pub password: PasswordFlag,
    /// How long to wait until the standby streams from the new primary on its timeline, e.g. 60s
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub wait: Duration,
    /// How long to try to connect to the new primary and to the standby, e.g. 10s
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub connect_timeout: Duration,
    #[command(flatten)]
    pub bindir: BindirFlag,
    #[command(flatten)]
    pub dry_run: DryRunFlag,
}

/// Where the standby is.
#[derive(Debug, Clone)]
pub enum Mode {
    Local(PathBuf),
    Remote(String),
}

/// The flags, checked before anything is read.
#[derive(Debug)]
pub struct Settings {
    pub mode: Mode,
    /// --primary as given, for messages and hints.
    pub primary: String,
    pub target: conninfo::Target,
    pub slot: Option<SlotName>,
    pub password: Option<Secret>,
    pub wait: Duration,
    pub connect_timeout: Duration,
    pub bindir: Option<PathBuf>,
    pub dry_run: bool,
    /// The password pgrepctl's own probe of the new primary uses when the
    /// standby is remote and --password-file cannot be given (it would be
    /// written there): switchover passes its own.
    pub probe_password: Option<Secret>,
}

impl Settings {
    pub fn from_args(a: Args) -> Result<Settings> {
        let Args {
            pgdata,
            standby,
            primary,
            slot,
            password,
            wait,
            connect_timeout,
            bindir,
            dry_run,
        } = a;
        let mode = match (pgdata, standby) {
            (Some(d), None) => Mode::Local(crate::fsutil::absolute(&d)?),
            (None, Some(s)) => Mode::Remote(s),
            _ => {
                return Err(Error::new(Code::Usage, "give -D or --standby").hint(
                    "-D for a standby on this host, --standby CONNINFO for one elsewhere (13+)",
                ));
            }
        };
        let target = conninfo::Target::parse(&primary)?;
        let password = password.load(false)?;
        if password.is_some() && matches!(mode, Mode::Remote(_)) {
            return Err(Error::new(
                Code::InsecureRefused,
                "--standby with a password (--password-file or PGREPCTL_REPLICATION_PASSWORD): pgrepctl would have to write it into the standby's postgresql.auto.conf through ALTER SYSTEM",
            )
            .hint("run follow on the standby's host with -D and --password-file (it writes a 0600 passfile), or let the standby keep its own passfile"));
        }
        Ok(Settings {
            mode,
            primary,
            target,
            slot: slot.map(|s| SlotName::parse("--slot", &s)).transpose()?,
            password,
            wait,
            connect_timeout: connect_timeout.max(Duration::from_secs(1)),
            bindir: bindir.checked()?,
            dry_run: dry_run.dry_run,
            probe_password: None,
        })
    }

    /// The passfile follow writes for --password-file: the one
    /// clone-standby writes, in the data directory.
    pub fn passfile(&self, pgdata: &Path) -> Option<PathBuf> {
        self.password
            .as_ref()
            .map(|_| pgdata.join(crate::commands::clone_standby::PASSFILE_NAME))
    }
}

pub async fn run(args: Args, printer: &Printer) -> Result<Outcome, Failure> {
    run_settings(Settings::from_args(args)?, printer).await
}

/// follow with settings already checked (switchover repoints its siblings
/// through this).
pub async fn run_settings(settings: Settings, printer: &Printer) -> Result<Outcome, Failure> {
    let _lock = match &settings.mode {
        Mode::Local(d) => crate::lock::unless_dry_run(d, "follow", settings.dry_run)?,
        Mode::Remote(_) => None,
    };
    let node = match &settings.mode {
        Mode::Local(d) => inspect::local(&settings, d).await?,
        Mode::Remote(c) => inspect::remote(c, settings.connect_timeout).await?,
    };
    let (new_conninfo, passfile) = wanted_conninfo(&settings, &node, printer)?;
    printer.step(format!(
        "asking {} over a replication connection",
        settings.target.name()
    ));
    let local = node.cluster().is_some();
    let run_as = node.cluster().map(|c| c.run_as).unwrap_or_default();
    let explicit = settings
        .password
        .as_ref()
        .or(settings.probe_password.as_ref());
    let password = probe::password(explicit, &new_conninfo, local);
    let kept = kept_slot(&settings, &node, &new_conninfo, explicit).await;
    let slot = match (&settings.slot, &kept) {
        (Some(s), _) => s.to_string(),
        (None, Some(_)) => node.current.slot.clone(),
        (None, None) => String::new(),
    };
    let primary = probe::probe(
        run_as,
        &new_conninfo,
        password,
        (!slot.is_empty()).then_some(slot.as_str()),
        settings.connect_timeout,
    )
    .await?;
    let want = plan::Wanted {
        conninfo: &new_conninfo,
        slot: &slot,
        target: &settings.target,
        passfile,
        upstream_is_self: upstream_is_self(&settings, &node, &primary),
        kept: kept.as_ref(),
    };
    let decided = plan::decide(&settings, &node, &primary, &want)?;
    printer.info(standing(&node, &primary, &decided.relation));
    for n in &decided.notes {
        printer.info(n);
    }
    let mut outcome = Outcome::new("follow", settings.dry_run);
    outcome.detail("standby", node.report());
    outcome.detail("primary", primary.report());
    outcome.detail("relation", relation_name(&decided.relation));
    outcome.detail("service", format!("{:?}", decided.service).to_lowercase());
    let steps = apply::steps(&settings, &node, &decided);
    if settings.dry_run {
        steps.preflight()?;
        steps.preview_into(&mut outcome);
        return Ok(outcome);
    }
    let env = apply::Env {
        target: settings.target.clone(),
        service: decided.service,
        settings,
        node,
        primary,
    };
    apply::apply(env, steps, printer, &mut outcome)
        .await
        .map_err(|error| outcome.failure(error))?;
    Ok(outcome)
}

/// Without --slot, the standby's primary_slot_name stays when --primary
/// is the very server it streams from now, however named (the socket, a
/// loopback address, a tunnel): the slot there is still its own, and
/// dropping the setting would leave it keeping WAL for nobody. When
/// pgrepctl cannot tell, the setting goes as for any other upstream.
async fn kept_slot(
    settings: &Settings,
    node: &inspect::Node,
    new_conninfo: &str,
    password: Option<&Secret>,
) -> Option<upstream::Verdict> {
    if settings.slot.is_some() || node.current.slot.is_empty() {
        return None;
    }
    let reach = upstream::Reach {
        local: node.cluster().is_some(),
        run_as: node.cluster().map(|c| c.run_as).unwrap_or_default(),
        password,
        timeout: settings.connect_timeout,
    };
    upstream::same_as_old(node, &settings.target, new_conninfo, &reach)
        .await
        .filter(|v| v.same)
}

/// Whether --primary reaches the standby itself: the same system, at the
/// socket or address and port its postmaster.pid names (on this host), or
/// at --standby's own host and port.
fn upstream_is_self(settings: &Settings, node: &inspect::Node, primary: &probe::Primary) -> bool {
    if node.system_id != primary.identity.system_id {
        return false;
    }
    let target = &settings.target;
    match &settings.mode {
        Mode::Local(_) => node
            .cluster()
            .and_then(|c| c.running())
            .is_some_and(|pid| pid.serves(&target.host, target.port)),
        Mode::Remote(standby) => crate::pg::conninfo::parse(standby).is_ok_and(|c| {
            let host = match c.get_hosts() {
                [tokio_postgres::config::Host::Tcp(h)] => h.clone(),
                [tokio_postgres::config::Host::Unix(p)] => p.display().to_string(),
                _ => return false,
            };
            host == target.host && c.get_ports().first().copied().unwrap_or(5432) == target.port
        }),
    }
}

/// The standby's conninfo repointed at --primary, and with
/// --password-file the passfile it names and the line for it. Remote mode
/// writes no secret: a conninfo that would hold a password is refused.
fn wanted_conninfo(
    settings: &Settings,
    node: &inspect::Node,
    printer: &Printer,
) -> Result<(String, Option<(PathBuf, String)>)> {
    let cluster = node.cluster();
    let passfile = cluster.and_then(|c| settings.passfile(&c.data_dir));
    let how = match &passfile {
        Some(p) => conninfo::Password::Passfile(p.display().to_string()),
        None => conninfo::Password::Keep,
    };
    let default_user = cluster.and_then(|c| c.run_as.user_name());
    let new = conninfo::repoint(
        &node.current.conninfo,
        &settings.target,
        default_user.as_deref(),
        &how,
    )?;
    if cluster.is_none() {
        if conninfo::value(&new, "password").is_some() {
            return Err(Error::new(
                Code::InsecureRefused,
                format!(
                    "{}'s primary_conninfo holds a password, which pgrepctl will not send through ALTER SYSTEM",
                    node.name()
                ),
            )
            .hint("run follow on the standby's host with -D and --password-file: it moves the password into a 0600 passfile"));
        }
        let source = conninfo::value(&new, "passfile")
            .map(|p| format!("its passfile {p}"))
            .unwrap_or_else(|| "its server user's ~/.pgpass".into());
        printer.info(format!(
            "the standby will authenticate to the new primary with {source}, which pgrepctl cannot read from here; its own connection uses this host's credentials"
        ));
    }
    let line = match (&passfile, &settings.password) {
        (Some(p), Some(pw)) => {
            let user = conninfo::value(&new, "user").unwrap_or_default();
            Some((
                p.clone(),
                crate::conf::standby::passfile_line(&user, pw.expose()),
            ))
        }
        _ => None,
    };
    Ok((new, line))
}

/// Where the standby stands against the new primary, in one line.
fn standing(
    node: &inspect::Node,
    primary: &probe::Primary,
    relation: &crate::pg::timeline::Relation,
) -> String {
    use crate::pg::replication::format_lsn;
    use crate::pg::timeline::Relation;
    let node_at = format!(
        "{} has WAL up to {} on timeline {}",
        node.name(),
        format_lsn(node.wal_end),
        node.timeline
    );
    match relation {
        Relation::BeforeFork { timeline, fork } => format!(
            "{node_at}; the new primary left timeline {timeline} at {} for timeline {}: the standby can follow it there",
            format_lsn(*fork),
            primary.identity.timeline
        ),
        _ => format!(
            "{node_at}; the new primary is on timeline {} up to {}",
            primary.identity.timeline,
            format_lsn(primary.identity.lsn)
        ),
    }
}

fn relation_name(r: &crate::pg::timeline::Relation) -> &'static str {
    use crate::pg::timeline::Relation;
    match r {
        Relation::SameTimeline => "same_timeline",
        Relation::BeforeFork { .. } => "before_fork",
        Relation::Diverged { .. } => "diverged",
    }
}
