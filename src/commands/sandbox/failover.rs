//! `sandbox failover`: the day-two story on the sandbox, through the same
//! code a production user runs — the primary dies (SIGKILL, as a crash
//! would), standby1 is promoted (`promote`), the other standbys follow it
//! (`follow`), the old primary comes back as a standby (`rejoin`, with a
//! rewind when it wrote past the fork), then `check` and `smoke-test`.
//! Nothing here can be undone (a dead primary stays dead), so each step
//! reports what it did as it goes, and the state file follows the roles as
//! soon as the promotion is done.

use super::state::{Node, State};
use super::up::{check_args, latencies, smoke_args};
use super::{DirArg, dir_of, load_existing};
use crate::cli::flags::{BindirFlag, DryRunFlag, PasswordFlag};
use crate::commands::{check, follow, promote, rejoin, smoke_test};
use crate::error::{Code, Error, Failure, Result};
use crate::health::Report;
use crate::report::{Change, Kind, Outcome, Printer};
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

pub async fn failover(d: DirArg, printer: &Printer) -> Result<Outcome, Failure> {
    let dir = dir_of(&d);
    let mut state = load_existing(&dir)?;
    let mut outcome = Outcome::new("sandbox failover", false);
    let (Some(old), Some(new)) = (state.primary().cloned(), state.standbys().next().cloned())
    else {
        return Err(
            Error::new(Code::Usage, "the sandbox has no standby to fail over to")
                .hint("pgrepctl sandbox down, then pgrepctl sandbox up --standbys 2")
                .into(),
        );
    };
    let quiet = Printer {
        quiet: true,
        json: false,
        ..*printer
    };
    let run = steps(&mut state, &dir, &old, &new, printer, &quiet, &mut outcome).await;
    match run {
        Ok(()) => Ok(outcome),
        Err(e) => Err(outcome.failure(e)),
    }
}

async fn steps(
    state: &mut State,
    dir: &Path,
    old: &Node,
    new: &Node,
    printer: &Printer,
    quiet: &Printer,
    outcome: &mut Outcome,
) -> Result<()> {
    let flags = Flags {
        pwfile: dir.join("replicator.pass"),
        primary: format!("host=127.0.0.1 port={} user=replicator", new.port),
        bindir: BindirFlag {
            bindir: Some(state.bindir.clone()),
        },
    };
    printer.step(format!("killing {} (SIGKILL, as a crash would)", old.name));
    kill_hard(&old.data)?;
    push(outcome, old, format!("{}: killed (SIGKILL)", old.name));

    printer.step(format!("promoting {}", new.name));
    let o = promote::run(flags.promote(new), quiet)
        .await
        .map_err(|f| f.error)?;
    take(outcome, &new.name, o);
    let rejoined = swap_roles(state, old, new);
    state.save(dir)?;

    let others: Vec<Node> = state
        .standbys()
        .filter(|s| s.data != old.data)
        .cloned()
        .collect();
    for s in others {
        printer.step(format!("repointing {} to {}", s.name, new.name));
        let o = follow::run(flags.follow(&s), quiet)
            .await
            .map_err(|f| f.error)?;
        take(outcome, &s.name, o);
    }

    grant_rewind(new, outcome).await?;
    printer.step(format!(
        "rejoining {} as a standby of {}",
        old.name, new.name
    ));
    let o = rejoin::run(flags.rejoin(old, &rejoined), quiet)
        .await
        .map_err(|f| f.error)?;
    if let Some(d) = o.details.get("decision") {
        outcome.detail("rejoin", d);
    }
    take(outcome, &rejoined, o);
    drop_old_slots(old, &rejoined, outcome).await?;

    verify(state, quiet, outcome).await?;
    describe(state, dir, &rejoined, new, outcome);
    Ok(())
}

/// What a DBA would type for each command on the sandbox: the new primary
/// over loopback TCP as the replication role, the sandbox's password file
/// and binaries.
pub(super) struct Flags {
    pub(super) pwfile: std::path::PathBuf,
    pub(super) primary: String,
    pub(super) bindir: BindirFlag,
}

impl Flags {
    fn password(&self) -> PasswordFlag {
        PasswordFlag {
            password_file: Some(self.pwfile.clone()),
        }
    }

    fn promote(&self, new: &Node) -> promote::Args {
        promote::Args {
            pgdata: new.data.clone(),
            wait: WAIT,
            upstream_timeout: Duration::from_secs(3),
            force: false,
            bindir: self.bindir.clone(),
            dry_run: DryRunFlag { dry_run: false },
        }
    }

    pub(super) fn follow(&self, s: &Node) -> follow::Args {
        follow::Args {
            pgdata: Some(s.data.clone()),
            standby: None,
            primary: self.primary.clone(),
            slot: Some(s.name.clone()),
            password: self.password(),
            wait: WAIT,
            connect_timeout: Duration::from_secs(10),
            bindir: self.bindir.clone(),
            dry_run: DryRunFlag { dry_run: false },
        }
    }

    fn rejoin(&self, old: &Node, name: &str) -> rejoin::Args {
        rejoin::Args {
            pgdata: old.data.clone(),
            primary: self.primary.clone(),
            password: self.password(),
            slot: Some(name.to_string()),
            application_name: Some(name.to_string()),
            rewind: rejoin::RewindMode::Auto,
            rewind_user: None,
            reclone_on_failure: true,
            wait: WAIT,
            connect_timeout: Duration::from_secs(10),
            bindir: self.bindir.clone(),
            dry_run: DryRunFlag { dry_run: false },
        }
    }
}

/// The promoted node is the primary now; the old primary gets the name
/// it will stream under ("primary" is check's label for the node given
/// as --primary, so it becomes "old_primary"). Returns that name.
pub(super) fn swap_roles(state: &mut State, old: &Node, new: &Node) -> String {
    let rejoined = if old.name == super::node::PRIMARY {
        format!("old_{}", old.name)
    } else {
        old.name.clone()
    };
    for n in &mut state.nodes {
        n.primary = n.name == new.name;
        if n.data == old.data {
            n.name = rejoined.clone();
        }
    }
    rejoined
}

/// SIGKILL the postmaster named in the node's own postmaster.pid (never by
/// process name), and wait until it is gone.
fn kill_hard(data: &Path) -> Result<()> {
    let Some(pid) = crate::pg::pidfile::running(data) else {
        return Err(Error::new(
            Code::ServerNotRunning,
            format!("the sandbox primary in {} is not running", data.display()),
        )
        .hint("start it (pgrepctl sandbox status shows each node), or recreate the sandbox"));
    };
    let pid = nix::unistd::Pid::from_raw(pid.pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let start = Instant::now();
    while nix::sys::signal::kill(pid, None).is_ok() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// What a DBA runs once on the new primary so that the replication role
/// may drive pg_rewind (rejoin's preflight names these grants). 10 allows
/// only a superuser: there rejoin copies the old primary anew instead.
async fn grant_rewind(new: &Node, outcome: &mut Outcome) -> Result<()> {
    let config = crate::pg::conninfo::resolve_node(&new.conninfo())?;
    let session = crate::pg::connect(&config, Some(Duration::from_secs(5))).await?;
    let version = crate::pg::version::Version::new(session.version_num)?;
    if !version.rewind_without_superuser() {
        return Ok(());
    }
    let grants = [
        "pg_catalog.pg_ls_dir(text, boolean, boolean)",
        "pg_catalog.pg_stat_file(text, boolean)",
        "pg_catalog.pg_read_binary_file(text)",
        "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
    ];
    let sql: String = grants
        .iter()
        .map(|f| format!("GRANT EXECUTE ON FUNCTION {f} TO replicator;"))
        .collect();
    session
        .client
        .batch_execute(&sql)
        .await
        .map_err(|e| crate::pg::query_error(&session.target, &e))?;
    outcome.push(Change {
        kind: Kind::Sql,
        path: None,
        summary: format!(
            "{}: granted pg_rewind's functions to replicator (pg_ls_dir, pg_stat_file, pg_read_binary_file)",
            new.name
        ),
        diff: None,
    });
    Ok(())
}

/// The slots the old primary kept for its standbys, which follow the new
/// primary now: on a standby they would keep WAL forever (rejoin warns;
/// here, where nothing cascades, they go).
async fn drop_old_slots(old: &Node, name: &str, outcome: &mut Outcome) -> Result<()> {
    let config = crate::pg::conninfo::resolve_node(&old.conninfo())?;
    let session = crate::pg::connect(&config, Some(Duration::from_secs(5))).await?;
    let rows = session
        .client
        .query(
            "SELECT slot_name::text, pg_drop_replication_slot(slot_name)::text \
             FROM pg_replication_slots WHERE NOT active AND slot_type = 'physical' ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| crate::pg::query_error(&session.target, &e))?;
    if rows.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    outcome
        .warnings
        .retain(|w| !w.contains("keeps the replication slots"));
    outcome.push(Change {
        kind: Kind::Sql,
        path: None,
        summary: format!(
            "{name}: dropped the slots it kept as a primary ({})",
            names.join(", ")
        ),
        diff: None,
    });
    Ok(())
}

fn push(outcome: &mut Outcome, node: &Node, summary: String) {
    outcome.push(Change {
        kind: Kind::Service,
        path: Some(node.data.clone()),
        summary,
        diff: None,
    });
}

/// A command's changes, each named by the node it was run on.
fn take(outcome: &mut Outcome, node: &str, o: Outcome) {
    outcome.warnings.extend(o.warnings.iter().cloned());
    for mut c in o.changes().iter().cloned() {
        c.summary = format!("{node}: {}", c.summary);
        outcome.push(c);
    }
}

async fn verify(state: &State, quiet: &Printer, outcome: &mut Outcome) -> Result<()> {
    let report = check::run(check_args(state), quiet)
        .await
        .map_err(|f| f.error)?;
    require_ok(&report, "check")?;
    let smoke = smoke_test::run(smoke_args(state), quiet)
        .await
        .map_err(|f| f.error)?;
    require_ok(&smoke, "smoke-test")?;
    outcome.detail("check", report.status);
    outcome.detail("smoke_test", smoke.status);
    outcome.detail("smoke_test_latency_ms", latencies(&smoke));
    Ok(())
}

fn require_ok(report: &Report, what: &str) -> Result<()> {
    super::up::require_ok_or(
        report,
        &format!("{what} after the failover"),
        "the failover's steps are done (see the changes); pgrepctl sandbox status shows each node",
    )
}

fn describe(state: &State, dir: &Path, rejoined: &str, new: &Node, outcome: &mut Outcome) {
    let mut text = format!(
        "\n{} is the primary now; the old primary rejoined as a standby ({rejoined}).\n",
        new.name
    );
    for n in &state.nodes {
        text.push_str(&format!(
            "  {:<12} {:<8} port {:<5} {}\n",
            n.name,
            if n.primary { "primary" } else { "standby" },
            n.port,
            n.data.display()
        ));
    }
    text.push_str(&format!(
        "check it:    pgrepctl sandbox status --dir {}\n",
        dir.display()
    ));
    outcome.detail("primary", &new.name);
    outcome.detail("nodes", &state.nodes);
    outcome.epilogue = Some(text);
}
