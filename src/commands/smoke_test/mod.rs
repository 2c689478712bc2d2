//! `smoke-test`: prove replication end to end. A row with a unique token
//! goes into `pgrepctl.smoke_test` on the primary; each standby must replay
//! past the primary's WAL position after that commit, show the token, and
//! refuse a write (SQLSTATE 25006). The row is always deleted again; the
//! (empty) table stays unless `--cleanup`.
//!
//! `changed` is true when this run created the schema or table, or dropped
//! them with `--cleanup`. The probe row is written and removed within the
//! run, so it is not a lasting change.

mod probe;

use crate::cli::flags::{FormatFlag, TimeoutFlag};
use crate::commands::check::{chain, evaluate, inspect, node_configs};
use crate::error::Failure;
use crate::error::Result;
use crate::health::{Node, NodeError, Probe, Report, Role, Status};
use crate::pg::{self, ConnectFailure, HOT_STANDBY_SETTINGS, Session};
use crate::report::Printer;
use std::time::{Duration, Instant};

pub const SCHEMA: &str = "pgrepctl";
pub const TABLE: &str = "pgrepctl.smoke_test";

/// Prove streaming replication end to end: write a probe row on the
/// primary, wait until each standby has replayed it (bounded by --timeout),
/// read it back, prove the standby refuses writes, and report the latency.
/// The probe row is always removed; the empty pgrepctl.smoke_test table is
/// kept for the next run unless --cleanup. Needs a role that may create the
/// schema and write the table on the primary. Exit status as check: 0 OK,
/// 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The primary: a conninfo string, a postgresql:// URI, or a host name
    #[arg(long, value_name = "CONNINFO", required = true)]
    pub primary: String,
    /// A standby, same forms as --primary (repeatable; at least one)
    #[arg(long = "standby", value_name = "CONNINFO", required = true)]
    pub standby: Vec<String>,
    #[command(flatten)]
    pub timeout: TimeoutFlag,
    /// Afterwards drop the probe table, and the pgrepctl schema when empty
    #[arg(long)]
    pub cleanup: bool,
    #[command(flatten)]
    pub format: FormatFlag,
}

pub use crate::health::finding as codes;

/// A connected node: the session, whether it is in recovery, the
/// standby's announced application name, and its hot-standby settings.
struct Conn {
    session: Session,
    in_recovery: bool,
    app_name: Option<String>,
    settings: Vec<(String, i64)>,
}

type Connected = std::result::Result<Conn, ConnectFailure>;

async fn connect(config: &pg::conninfo::ConnConfig, timeout: Duration) -> Connected {
    let target = pg::describe(config);
    let names = HOT_STANDBY_SETTINGS.map(String::from).to_vec();
    tokio::time::timeout(timeout, async {
        let (client, target) = pg::connect_client(config, Some(timeout)).await?;
        let failed = |e: tokio_postgres::Error| ConnectFailure {
            error: pg::query_error(&target, &e),
            down: false,
        };
        let row = client
            .query_one(
                "SELECT pg_is_in_recovery(), current_setting('cluster_name'),
                        (SELECT conninfo FROM pg_stat_wal_receiver LIMIT 1),
                        current_setting('server_version_num')::int,
                        (SELECT array_agg(setting::bigint ORDER BY name) FROM pg_settings WHERE name = ANY($1)),
                        (SELECT array_agg(name::text ORDER BY name) FROM pg_settings WHERE name = ANY($1))",
                &[&names],
            )
            .await
            .map_err(failed)?;
        let cluster: String = row.get(1);
        let conninfo: Option<String> = row.get(2);
        let version_num = row.get::<_, i32>(3) as u32;
        let values: Vec<i64> = row.get::<_, Option<Vec<i64>>>(4).unwrap_or_default();
        let keys: Vec<String> = row.get::<_, Option<Vec<String>>>(5).unwrap_or_default();
        let app =
            conninfo.map(|c| inspect::conninfo_value(&c, "application_name").unwrap_or_default());
        let app_name = chain::announced_name(app.as_deref(), &cluster, version_num);
        Ok(Conn {
            in_recovery: row.get(0),
            app_name,
            settings: keys.into_iter().zip(values).collect(),
            session: Session {
                client,
                version_num,
                target,
            },
        })
    })
    .await
    .unwrap_or_else(|_| {
        Err(ConnectFailure {
            error: inspect::timed_out(&target, timeout),
            down: true,
        })
    })
}

/// Hot-standby settings of a standby below the primary's: (name, standby's, primary's).
fn settings_too_low(p: &Conn, s: &Conn) -> Vec<(&'static str, i64, i64)> {
    crate::pg::standby_limits::lower(s.session.version_num, &s.settings, &p.settings)
}

fn node(name: String, role: Role, target: String, conn: &Connected) -> Node {
    Node {
        name,
        role,
        target,
        status: Status::Ok,
        server_version_num: conn.as_ref().ok().map(|c| c.session.version_num),
        in_recovery: conn.as_ref().ok().map(|c| c.in_recovery),
        timeline: None,
        wal_lsn: None,
        upstream: None,
        wal_receiver: None,
        wal_source: None,
        read_only: None,
        replay: None,
        error: conn.as_ref().err().map(|f| NodeError::from(&f.error)),
    }
}

pub async fn run(args: Args, printer: &Printer) -> Result<Report, Failure> {
    let configs = node_configs(Some(&args.primary), &args.standby)?;
    let timeout = args.timeout.timeout;
    let conns =
        futures_util::future::join_all(configs.iter().map(|g| connect(&g.config, timeout))).await;

    let mut r = Report::new("smoke-test");
    let mut names: Vec<String> = vec![];
    for (g, conn) in configs.iter().zip(&conns) {
        let base = match g.role {
            Role::Primary => "primary".to_string(),
            Role::Standby => chain::node_name(
                g.name.as_deref(),
                conn.as_ref().ok().and_then(|c| c.app_name.clone()),
                &inspect::host_port(&g.config).0,
            ),
        };
        let name = chain::unique(&names, base);
        names.push(name.clone());
        r.nodes
            .push(node(name, g.role, pg::describe(&g.config), conn));
    }
    let mut conns = conns.into_iter();
    let primary = conns.next().expect("the primary is first");
    let standbys: Vec<Connected> = conns.collect();
    let mut probes: Vec<Probe> = names[1..]
        .iter()
        .map(|n| probe::not_run(n, Status::Unknown))
        .collect();
    excluded_nodes(&mut r, &mut probes, &names, &primary, &standbys);
    if let Ok(p) = primary
        .as_ref()
        .map_err(|_| ())
        .and_then(|p| if p.in_recovery { Err(()) } else { Ok(p) })
    {
        let on = OnPrimary {
            p,
            names: &names,
            timeout,
        };
        on.probe_all(&mut r, &mut probes, &standbys, printer).await;
        if args.cleanup {
            on.cleanup(&mut r).await;
        }
    }
    r.probes = Some(probes);
    // Node status: the worst finding about it.
    for n in &mut r.nodes {
        n.status = r
            .problems
            .iter()
            .filter(|p| p.subject == n.name)
            .fold(Status::Ok, |s, p| s.worst(p.status));
    }
    Ok(r.finish())
}

/// Nodes that cannot take part: down, refusing us, or not in the role
/// given. A standby among them gets the status on its probe too.
fn excluded_nodes(
    r: &mut Report,
    probes: &mut [Probe],
    names: &[String],
    primary: &Connected,
    standbys: &[Connected],
) {
    for (i, conn) in std::iter::once(primary).chain(standbys).enumerate() {
        let role = if i == 0 { Role::Primary } else { Role::Standby };
        let status = match conn {
            // A node given that is down is CRITICAL; one that answers
            // but will not let us in is UNKNOWN.
            Err(f) => Some(evaluate::unreachable_finding(
                r, &names[i], f.down, &f.error,
            )),
            Ok(c) if evaluate::wrong_role(r, &names[i], role, c.in_recovery) => {
                Some(Status::Critical)
            }
            Ok(_) => None,
        };
        if let (Some(status), true) = (status, i > 0) {
            probes[i - 1].status = status;
        }
    }
}

/// The work on a primary that answered: set up, probe, clean up, each
/// bounded by the timeout.
struct OnPrimary<'a> {
    p: &'a Conn,
    names: &'a [String],
    timeout: Duration,
}

impl OnPrimary<'_> {
    async fn probe_all(
        &self,
        r: &mut Report,
        probes: &mut [Probe],
        standbys: &[Connected],
        printer: &Printer,
    ) {
        let p = self.p;
        match bounded(self.timeout, &p.session, setup(&p.session)).await {
            Err(e) => r.problem(
                Status::Unknown,
                &self.names[0],
                codes::SETUP_FAILED,
                e.message,
                e.hint,
            ),
            Ok(created) => {
                r.changed |= created;
                run_probes(r, probes, self.names, p, standbys, self.timeout, printer).await;
            }
        }
    }

    async fn cleanup(&self, r: &mut Report) {
        let p = self.p;
        match bounded(self.timeout, &p.session, cleanup(&p.session)).await {
            Ok((dropped, note)) => {
                r.changed |= dropped;
                if let Some(n) = note {
                    r.warnings.push(n);
                }
            }
            Err(e) => r.problem(
                Status::Warning,
                &self.names[0],
                codes::CLEANUP_FAILED,
                e.message,
                e.hint,
            ),
        }
    }
}

/// A step on the primary, bounded like everything else by --timeout.
async fn bounded<T>(
    timeout: Duration,
    s: &Session,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| Err(inspect::timed_out(&s.target, timeout)))
}

/// Whether the pgrepctl schema and the probe table exist.
async fn probe_objects(s: &Session) -> Result<(bool, bool)> {
    let row = s
        .client
        .query_one(
            "SELECT to_regnamespace($1) IS NOT NULL, to_regclass($2) IS NOT NULL",
            &[&SCHEMA, &TABLE],
        )
        .await
        .map_err(|e| pg::query_error(&s.target, &e))?;
    Ok((row.get(0), row.get(1)))
}

/// The probe table, created when missing. True when something was created.
async fn setup(s: &Session) -> Result<bool> {
    let q = |e: tokio_postgres::Error| pg::query_error(&s.target, &e);
    let (had_schema, had_table) = probe_objects(s).await?;
    if !(had_schema && had_table) {
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS {SCHEMA};
             CREATE TABLE IF NOT EXISTS {TABLE} (
                 token text PRIMARY KEY,
                 created_at timestamptz NOT NULL DEFAULT now());
             GRANT USAGE ON SCHEMA {SCHEMA} TO pg_monitor;
             GRANT SELECT ON {TABLE} TO pg_monitor"
        );
        // pg_monitor may read the probe on a standby: a monitoring role
        // (init-master --monitor-from) can check replay there.
        // Two runs at once may race on IF NOT EXISTS: the loser retries.
        if let Err(e) = s.client.batch_execute(&ddl).await {
            let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
            if code != "23505" && code != "42P07" && code != "42P06" {
                return Err(q(e));
            }
            s.client.batch_execute(&ddl).await.map_err(q)?;
        }
    }
    // Rows a killed run left behind.
    s.client
        .execute(
            &format!("DELETE FROM {TABLE} WHERE created_at < now() - interval '1 hour'"),
            &[],
        )
        .await
        .map_err(q)?;
    Ok(!(had_schema && had_table))
}

/// Drop the probe table, and the schema when nothing else is in it.
/// Returns whether something was dropped, and a note when the schema stays.
async fn cleanup(s: &Session) -> Result<(bool, Option<String>)> {
    let q = |e: tokio_postgres::Error| pg::query_error(&s.target, &e);
    let (had_schema, had_table) = probe_objects(s).await?;
    if had_table {
        s.client
            .batch_execute(&format!("DROP TABLE IF EXISTS {TABLE}"))
            .await
            .map_err(q)?;
    }
    let mut note = None;
    let mut dropped_schema = false;
    if had_schema {
        match s
            .client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {SCHEMA}"))
            .await
        {
            Ok(()) => dropped_schema = true,
            Err(e) if e.code().map(|c| c.code()) == Some("2BP01") => {
                note = Some(format!(
                    "schema {SCHEMA} was kept: it holds objects pgrepctl did not create"
                ));
            }
            Err(e) => return Err(q(e)),
        }
    }
    Ok((had_table || dropped_schema, note))
}

async fn run_probes(
    r: &mut Report,
    probes: &mut [Probe],
    names: &[String],
    p: &Conn,
    standbys: &[Connected],
    timeout: Duration,
    printer: &Printer,
) {
    let primary_name = &names[0];
    let written = match bounded(timeout, &p.session, probe::write(&p.session)).await {
        Ok(w) => w,
        Err(e) => {
            r.problem(
                Status::Unknown,
                primary_name,
                &e.code.as_str(),
                e.message,
                e.hint,
            );
            return;
        }
    };
    let committed = Instant::now();
    printer.info(format!(
        "probe {} written on the primary at LSN {}",
        written.token, written.lsn
    ));
    r.nodes[0].wal_lsn = Some(written.lsn.clone());
    let futs = standbys.iter().map(|c| {
        let written = &written;
        async move {
            match c {
                Ok(c) if c.in_recovery => {
                    let low = settings_too_low(p, c);
                    Some(probe::check(&c.session, written, committed, timeout, &low).await)
                }
                _ => None,
            }
        }
    });
    let outcome = tokio::select! {
        o = futures_util::future::join_all(futs) => Some(o),
        _ = tokio::signal::ctrl_c() => None,
    };
    // Whatever happened, the row goes.
    remove_row(r, primary_name, p, &written, timeout).await;
    let Some(outcome) = outcome else {
        r.problem(
            Status::Unknown,
            primary_name,
            codes::INTERRUPTED,
            "interrupted; the probe row was removed",
            None,
        );
        return;
    };
    for (i, o) in outcome.into_iter().enumerate() {
        let Some(o) = o else { continue };
        let name = &names[i + 1];
        probes[i] = o.probe(name);
        for (status, code, message, hint) in o.findings {
            r.problem(status, name, code, message, hint);
        }
    }
}

/// Delete the probe row; a failure is a WARNING with the statement to run.
async fn remove_row(
    r: &mut Report,
    primary_name: &str,
    p: &Conn,
    written: &probe::Written,
    timeout: Duration,
) {
    let removed = bounded(
        timeout,
        &p.session,
        probe::remove(&p.session, &written.token),
    )
    .await;
    if let Err(e) = removed {
        r.problem(
            Status::Warning,
            primary_name,
            codes::CLEANUP_FAILED,
            format!(
                "the probe row {} could not be removed: {}",
                written.token, e.message
            ),
            Some(format!(
                "DELETE FROM {TABLE} WHERE token = '{}' on the primary",
                written.token
            )),
        );
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}
