//! `migrate status`: read the subscription on the target (its tables'
//! pg_subscription_rel states, whether its worker runs, its error counts)
//! and the slot on the source (lag, retained WAL), compare the published
//! tables' columns on both sides, and [`evaluate`] that into a health
//! report in check's formats and exit codes.

use super::inspect::{self, Table};
use super::{Sides, StatusArgs};
use crate::error::{Failure, Result};
use crate::health::{Migration, MigrationTable, Report, Slot, Status, finding};
use crate::pg::version::Version;
use crate::pg::{Session, query_error};
use std::collections::BTreeSet;

/// What status reads, before any judgement.
#[derive(Debug, Default)]
pub struct Facts {
    pub subscription: Option<Subscription>,
    /// The slot on the source: active, lag and retained bytes.
    pub slot: Option<(bool, i64, i64)>,
    pub publication: bool,
    /// The publication's comment says a cutover passed its commit point.
    pub cut_over: bool,
    /// The source database's own default_transaction_read_only = on.
    pub source_read_only: bool,
    /// The target database holds some of the source's tables (read only
    /// when nothing of the migration is left).
    pub target_tables: bool,
    /// (table, column) pairs of the published tables on each side.
    pub source_columns: BTreeSet<(String, String)>,
    pub target_columns: BTreeSet<(String, String)>,
}

#[derive(Debug, Default)]
pub struct Subscription {
    pub enabled: bool,
    pub worker: bool,
    pub tables: Vec<MigrationTable>,
    pub errors: Option<i64>,
}

pub async fn run(args: StatusArgs, _printer: &crate::report::Printer) -> Result<Report, Failure> {
    let sides = Sides::from_args(&args.endpoints)?;
    let t = args.timeout.timeout;
    // A server that does not answer is CRITICAL, as in check; one that
    // answers but refuses (a wrong password, pg_hba.conf) fails as UNKNOWN.
    let (src, admin) = tokio::join!(
        inspect::source_session(&sides, t),
        inspect::target_admin_session(&sides, t)
    );
    let down: Vec<(&str, crate::error::Error)> = [
        ("source", src.as_ref().err()),
        ("target", admin.as_ref().err()),
    ]
    .into_iter()
    .filter_map(|(side, e)| e.filter(|e| unreachable(e)).map(|e| (side, e.clone())))
    .collect();
    if !down.is_empty() {
        let mut r = Report::new("migrate status");
        for (side, e) in down {
            r.problem(Status::Critical, side, &e.code.as_str(), e.message, e.hint);
        }
        return Ok(r.finish());
    }
    let (src, admin) = (src?, admin?);
    // A migration to the source itself (which start now refuses) never
    // works: said as it is, a usage error (UNKNOWN) as in check.
    let (a, b) = tokio::join!(inspect::ServerId::of(&src), inspect::ServerId::of(&admin));
    inspect::same_server(
        &sides.dbname,
        a.as_ref(),
        b.as_ref(),
        "its subscription streams into the very tables it reads, and its apply worker fails on every row: run pgrepctl migrate abort with the same flags to drop it (abort leaves the tables), then migrate start with the --target the database moves to",
    )?;
    let (target, tsession) = inspect::target(&admin, &sides, &[], t).await?;
    let mut facts = Facts::default();
    if let (Some(s), Some(_)) = (&tsession, target.subscription) {
        facts.subscription = Some(subscription(s, &sides.names.subscription).await?);
    }
    facts.slot = slot(&src, &sides.names.slot).await?;
    let published = published(&src, &sides.names.publication).await?;
    facts.publication = !published.is_empty()
        || inspect::publication_exists(&src, &sides.names.publication).await?;
    facts.source_columns = columns(&src, &published).await?;
    if let Some(s) = &tsession {
        facts.target_columns = columns(s, &published).await?;
    }
    let comment = inspect::publication_comment(&src, &sides.names.publication).await?;
    facts.cut_over = super::names::is_cut_over(comment.as_deref());
    facts.source_read_only = inspect::database_read_only(&src).await?;
    if let Some(s) = tsession.as_ref().filter(|_| gone(&facts)) {
        facts.target_tables = inspect::target_holds_source_tables(&src, s).await?;
    }
    Ok(evaluate(&sides, &facts, args.lag_warn, args.lag_crit))
}

/// No answer at all (refused, timed out, starting or stopping), as
/// opposed to an answer that refuses us.
fn unreachable(e: &crate::error::Error) -> bool {
    matches!(
        e.code,
        crate::error::Code::ConnectionFailed
            | crate::error::Code::ServerNotRunning
            | crate::error::Code::Timeout
    )
}

async fn subscription(s: &Session, name: &str) -> Result<Subscription> {
    let q = |e: tokio_postgres::Error| query_error(&s.target, &e);
    let row = s
        .client
        .query_one(
            "SELECT s.subenabled, EXISTS (SELECT 1 FROM pg_stat_subscription w \
               WHERE w.subid = s.oid AND w.pid IS NOT NULL AND w.relid IS NULL) \
             FROM pg_subscription s WHERE s.subname = $1 \
               AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[&name],
        )
        .await
        .map_err(q)?;
    let tables = s
        .client
        .query(
            "SELECT n.nspname::text || '.' || c.relname::text, r.srsubstate::text, st.n_live_tup \
             FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid \
             JOIN pg_class c ON c.oid = r.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_stat_user_tables st ON st.relid = c.oid \
             WHERE s.subname = $1 ORDER BY 1",
            &[&name],
        )
        .await
        .map_err(q)?
        .into_iter()
        .map(|r| MigrationTable {
            table: r.get(0),
            state: state_word(&r.get::<_, String>(1)).to_string(),
            rows: r.get(2),
        })
        .collect();
    let errors = if Version::of(s.version_num).subscription_stats() {
        s.client
            .query_opt(
                "SELECT apply_error_count + sync_error_count FROM pg_stat_subscription_stats WHERE subname = $1",
                &[&name],
            )
            .await
            .map_err(q)?
            .map(|r| r.get(0))
    } else {
        None
    };
    Ok(Subscription {
        enabled: row.get(0),
        worker: row.get(1),
        tables,
        errors,
    })
}

/// pg_subscription_rel.srsubstate in words.
fn state_word(c: &str) -> &'static str {
    match c {
        "i" => "init",
        "d" => "copying",
        "f" => "copied",
        "s" => "synchronized",
        "r" => "ready",
        _ => "unknown",
    }
}

async fn slot(s: &Session, name: &str) -> Result<Option<(bool, i64, i64)>> {
    let row = s
        .client
        .query_opt(
            "SELECT active, \
               coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint, \
               coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&name],
        )
        .await
        .map_err(|e| query_error(&s.target, &e))?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
}

/// The tables of the publication, `schema.table`.
pub async fn published(s: &Session, publication: &str) -> Result<Vec<Table>> {
    super::inspect::tables(
        s,
        "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2",
        &[&publication],
    )
    .await
}

/// (table, column) of these tables on this server; a table that does not
/// exist contributes (table, "") only on the side that has it.
async fn columns(s: &Session, tables: &[Table]) -> Result<BTreeSet<(String, String)>> {
    let names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
    let rows = s
        .client
        .query(
            "SELECT n.nspname::text || '.' || c.relname::text, coalesce(a.attname::text, '') \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
             WHERE c.relkind IN ('r', 'p') AND (n.nspname::text || '.' || c.relname::text) = ANY($1)",
            &[&names],
        )
        .await
        .map_err(|e| query_error(&s.target, &e))?;
    let mut out: BTreeSet<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    for r in &rows {
        out.insert((r.get(0), String::new()));
    }
    Ok(out)
}

/// Nothing of the migration left on either side.
fn gone(f: &Facts) -> bool {
    f.subscription.is_none() && f.slot.is_none() && !f.publication
}

fn finished(f: &Facts) -> bool {
    done_leaves(gone(f), f.source_read_only, f.target_tables)
}

/// What a finished cutover leaves: nothing of the migration, the source
/// database read-only (until someone resets it), the target holding the
/// tables. An abort turns the source's writes back on; before any start
/// the target has no tables. One rule for status ("finished") and for a
/// cutover rerun (confirmed, nothing to do), so the two never disagree.
pub(super) fn done_leaves(nothing_left: bool, source_read_only: bool, target_tables: bool) -> bool {
    nothing_left && source_read_only && target_tables
}

/// A cutover stopped before its end, which leaves the source read-only
/// while the migration is still there: CRITICAL, every write of the
/// application on the source fails. Returns whether nothing else is to be
/// judged (past the commit point, the subscription already dropped).
fn stopped_cutover(r: &mut Report, sides: &Sides, f: &Facts) -> bool {
    let db = &sides.dbname;
    let reset = format!(
        "ALTER DATABASE {} RESET default_transaction_read_only",
        crate::pg::sql::ident(db)
    );
    if f.cut_over {
        r.problem(
            Status::Critical,
            db,
            finding::CUTOVER_UNFINISHED,
            format!("a cutover of {db} passed its commit point (writes off on the source, sequences set, tables verified) and stopped before it dropped the replication: the target holds the data now"),
            Some(format!("run pgrepctl migrate cutover again to finish it (it drops what is left and prints the target's connection string), and point the application at the target; migrate abort would drop what is left too, but keeps the source read-only (the target is the database now; {reset} on the source only if you mean to write there again)")),
        );
        return f.subscription.is_none();
    }
    if f.source_read_only && !gone(f) {
        r.problem(
            Status::Critical,
            db,
            finding::SOURCE_READ_ONLY,
            format!("the source database {db} is read-only (default_transaction_read_only = on for the database) while the migration is still there: a cutover stopped before its end (or is pausing writes right now), and every write of the application on the source fails"),
            Some(format!("run pgrepctl migrate cutover again to finish it, or pgrepctl migrate abort, which drops the migration and gives the source its writes back ({reset})")),
        );
    }
    false
}

/// The report, from the facts alone.
pub fn evaluate(sides: &Sides, f: &Facts, warn: u64, crit: u64) -> Report {
    let mut r = Report::new("migrate status");
    let n = &sides.names;
    let mut m = Migration {
        database: sides.dbname.clone(),
        publication: n.publication.clone(),
        subscription: n.subscription.clone(),
        slot: n.slot.clone(),
        subscription_enabled: f.subscription.as_ref().map(|s| s.enabled),
        tables: vec![],
        lag_bytes: f.slot.map(|s| s.1),
        errors: None,
        drift: drift(f),
        finished: finished(f),
    };
    if m.finished || stopped_cutover(&mut r, sides, f) {
        r.migration = Some(Box::new(m));
        return r.finish();
    }
    if f.subscription.is_none() && f.slot.is_some_and(|s| s.0) {
        // start holds the slot's snapshot while it copies the tables;
        // the subscription comes after the copy and the post-data.
        r.problem(
            Status::Warning,
            &n.subscription,
            finding::SYNC_IN_PROGRESS,
            "the initial copy is running (migrate start holds the slot's snapshot); the subscription follows it",
            Some("wait for migrate start to finish; cutover needs every table ready".into()),
        );
        r.migration = Some(Box::new(m));
        return r.finish();
    }
    let Some(sub) = &f.subscription else {
        r.problem(
            Status::Critical,
            &n.subscription,
            finding::MIGRATION_MISSING,
            format!(
                "no subscription {} in the target database {}",
                n.subscription, sides.dbname
            ),
            Some(
                "start the migration with pgrepctl migrate start (or it was aborted, or cut over and the source database takes writes again)"
                    .into(),
            ),
        );
        if f.slot.is_some() || f.publication {
            r.problem(
                Status::Warning,
                &n.slot,
                finding::SLOT_INACTIVE,
                "the source still has the migration's slot or publication",
                Some("a start killed during its copy leaves them: run pgrepctl migrate start again (it copies again), or pgrepctl migrate abort to drop them".into()),
            );
        }
        r.migration = Some(Box::new(m));
        return r.finish();
    };
    m.tables = sub.tables.clone();
    m.errors = sub.errors;
    subscription_problems(&mut r, sides, sub);
    slot_problems(&mut r, sides, f.slot, warn, crit);
    for d in &m.drift {
        r.problem(Status::Warning, d, finding::SCHEMA_DRIFT, format!("{d} exists on one side only"),
            Some("DDL is not replicated: run the same ALTER/CREATE on the target (then ALTER SUBSCRIPTION … REFRESH PUBLICATION for a new table)".into()));
    }
    r.migration = Some(Box::new(m));
    r.finish()
}

fn slot_problems(
    r: &mut Report,
    sides: &Sides,
    slot: Option<(bool, i64, i64)>,
    warn: u64,
    crit: u64,
) {
    let n = &sides.names;
    match slot {
        None => r.problem(
            Status::Critical,
            &n.slot,
            finding::SLOT_MISSING,
            format!("the slot {} is not on the source", n.slot),
            Some("run pgrepctl migrate abort, then start again".into()),
        ),
        Some((active, lag, retained)) => {
            let status = if lag as u64 >= crit {
                Status::Critical
            } else if lag as u64 >= warn {
                Status::Warning
            } else {
                Status::Ok
            };
            if status != Status::Ok {
                r.problem(status, &n.slot, finding::LAG_BYTES,
                    format!("the target is {} behind the source", crate::units::human_bytes(lag.max(0) as u64)),
                    Some("see the target's log for apply errors; a large initial copy catches up on its own".into()));
            }
            r.slots = Some(vec![Slot {
                name: n.slot.clone(),
                slot_type: "logical".into(),
                active,
                restart_lsn: None,
                retained_bytes: Some(retained),
                wal_status: None,
                status,
            }]);
        }
    }
}

fn subscription_problems(r: &mut Report, sides: &Sides, sub: &Subscription) {
    let n = &sides.names.subscription;
    if !sub.enabled || !sub.worker {
        r.problem(Status::Critical, n, finding::SUBSCRIPTION_DISABLED,
            if sub.enabled { "the subscription's apply worker is not running".to_string() } else { "the subscription is disabled".to_string() },
            Some("see the target's server log; max_logical_replication_workers and max_worker_processes must leave room".into()));
    }
    let copying: Vec<&str> = sub
        .tables
        .iter()
        .filter(|t| t.state != "ready")
        .map(|t| t.table.as_str())
        .collect();
    if !copying.is_empty() {
        r.problem(
            Status::Warning,
            n,
            finding::SYNC_IN_PROGRESS,
            format!(
                "{} of {} tables not ready yet: {}",
                copying.len(),
                sub.tables.len(),
                copying.join(", ")
            ),
            Some("the initial copy is running; cutover waits for every table to be ready".into()),
        );
    }
    if let Some(e) = sub.errors.filter(|e| *e > 0) {
        r.problem(Status::Critical, n, finding::APPLY_ERRORS,
            format!("{e} apply or sync error(s) since the statistics were reset"),
            Some("the target's server log says why (a conflicting row, a missing column); fix it, then SELECT pg_stat_reset_subscription_stats(oid)".into()));
    }
}

/// Tables and columns present on one side only.
fn drift(f: &Facts) -> Vec<String> {
    let describe = |(t, c): &(String, String), side: &str| {
        if c.is_empty() {
            format!("table {t} (only on the {side})")
        } else {
            format!("column {t}.{c} (only on the {side})")
        }
    };
    let mut out: Vec<String> = f
        .source_columns
        .difference(&f.target_columns)
        .map(|x| describe(x, "source"))
        .collect();
    out.extend(
        f.target_columns
            .difference(&f.source_columns)
            .map(|x| describe(x, "target")),
    );
    // A missing table's columns are all missing too: name the table once.
    let tables: Vec<String> = out
        .iter()
        .filter(|d| d.starts_with("table "))
        .map(|d| d[6..].split(' ').next().unwrap_or("").to_string())
        .collect();
    out.retain(|d| {
        d.starts_with("table ")
            || !tables
                .iter()
                .any(|t| d.starts_with(&format!("column {t}.")))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::migrate::Endpoints;

    fn sides() -> Sides {
        Sides::from_args(&Endpoints {
            source: "host=/tmp/s".into(),
            target: "host=/tmp/t".into(),
            dbname: "shop".into(),
        })
        .unwrap()
    }

    fn table(name: &str, state: &str) -> MigrationTable {
        MigrationTable {
            table: name.into(),
            state: state.into(),
            rows: Some(1),
        }
    }

    fn facts(states: &[(&str, &str)]) -> Facts {
        let cols: BTreeSet<(String, String)> = [("public.a", ""), ("public.a", "id")]
            .iter()
            .map(|(t, c)| (t.to_string(), c.to_string()))
            .collect();
        Facts {
            subscription: Some(Subscription {
                enabled: true,
                worker: true,
                tables: states.iter().map(|(t, s)| table(t, s)).collect(),
                errors: Some(0),
            }),
            slot: Some((true, 100, 1000)),
            publication: true,
            source_columns: cols.clone(),
            target_columns: cols,
            ..Facts::default()
        }
    }

    fn codes(r: &Report) -> Vec<&str> {
        r.problems.iter().map(|p| p.code.as_str()).collect()
    }

    #[test]
    fn ready_is_ok_copying_warns_missing_is_critical() {
        let r = evaluate(&sides(), &facts(&[("public.a", "ready")]), 1000, 2000);
        assert_eq!(r.status, Status::Ok, "{:?}", r.problems);
        let r = evaluate(&sides(), &facts(&[("public.a", "copying")]), 1000, 2000);
        assert_eq!(r.status, Status::Warning);
        assert_eq!(codes(&r), [finding::SYNC_IN_PROGRESS]);
        let r = evaluate(&sides(), &Facts::default(), 1000, 2000);
        assert_eq!(r.status, Status::Critical);
        assert_eq!(codes(&r), [finding::MIGRATION_MISSING]);
        // start copying: its slot in use, no subscription yet.
        let copying = Facts {
            slot: Some((true, 0, 0)),
            publication: true,
            ..Facts::default()
        };
        let r = evaluate(&sides(), &copying, 1000, 2000);
        assert_eq!(r.status, Status::Warning);
        assert_eq!(codes(&r), [finding::SYNC_IN_PROGRESS]);
        let mut f = facts(&[("public.a", "ready")]);
        f.slot = Some((true, 5000, 5000));
        assert_eq!(evaluate(&sides(), &f, 1000, 2000).status, Status::Critical);
    }

    #[test]
    fn a_finished_cutover_is_ok_and_never_started_is_critical() {
        let done = Facts {
            source_read_only: true,
            target_tables: true,
            ..Facts::default()
        };
        let r = evaluate(&sides(), &done, 1000, 2000);
        assert_eq!(r.status, Status::Ok, "{:?}", r.problems);
        assert!(r.migration.as_ref().unwrap().finished);
        assert!(r.slots.is_none());
        // Never started: no tables on the target (or a writable source,
        // as after an abort).
        for f in [
            Facts {
                source_read_only: true,
                ..Facts::default()
            },
            Facts {
                target_tables: true,
                ..Facts::default()
            },
        ] {
            let r = evaluate(&sides(), &f, 1000, 2000);
            assert_eq!(codes(&r), [finding::MIGRATION_MISSING]);
            assert!(!r.migration.as_ref().unwrap().finished);
        }
    }

    #[test]
    fn a_stopped_cutover_is_critical_and_says_what_to_run() {
        // Before the commit point: everything there, the source read-only.
        let mut f = facts(&[("public.a", "ready")]);
        f.source_read_only = true;
        let r = evaluate(&sides(), &f, 1000, 2000);
        assert_eq!(r.status, Status::Critical);
        assert_eq!(codes(&r), [finding::SOURCE_READ_ONLY]);
        let hint = r.problems[0].hint.as_deref().unwrap();
        assert!(hint.contains("migrate cutover again"), "{hint}");
        assert!(
            hint.contains(
                "migrate abort, which drops the migration and gives the source its writes back"
            ),
            "{hint}"
        );
        // Past it, the subscription dropped: that alone, no "no
        // subscription", and abort keeps the source read-only.
        let past = Facts {
            publication: true,
            cut_over: true,
            source_read_only: true,
            ..Facts::default()
        };
        let r = evaluate(&sides(), &past, 1000, 2000);
        assert_eq!(codes(&r), [finding::CUTOVER_UNFINISHED]);
        assert_eq!(r.status, Status::Critical);
        assert!(
            r.problems[0]
                .hint
                .as_deref()
                .unwrap()
                .contains("keeps the source read-only")
        );
    }

    #[test]
    fn drift_names_the_table_or_column_once() {
        let mut f = facts(&[("public.a", "ready")]);
        f.source_columns.insert(("public.a".into(), "added".into()));
        f.source_columns.insert(("public.b".into(), String::new()));
        f.source_columns.insert(("public.b".into(), "id".into()));
        let r = evaluate(&sides(), &f, 1000, 2000);
        let d = &r.migration.as_ref().unwrap().drift;
        assert_eq!(
            d,
            &[
                "column public.a.added (only on the source)".to_string(),
                "table public.b (only on the source)".to_string()
            ]
        );
        assert_eq!(r.status, Status::Warning);
    }
}
