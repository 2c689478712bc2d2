//! `migrate cutover`: refuse unless every table is ready and the lag is
//! small; then writes off on the source database (the undo, until the
//! commit point, puts them back: a timeout or a failed verification
//! switches nothing), the remaining writers ended after --grace, the
//! source's LSN noted and waited for on the slot, sequences set on the
//! target, tables verified; past the commit point the publication is
//! marked cut over (for an abort after a kill from there on), then the
//! subscription, slot and publication are dropped. The source stays
//! read-only.

use super::inspect::{self, Table};
use super::steps::{DropSlot, Env, Side, Sql, exec};
use super::{CutoverArgs, Sides, Verify};
use crate::error::{Code, Error, Failure, Result};
use crate::pg::sql::{ident, literal};
use crate::pg::{Session, query_error};
use crate::plan::{self, Action, Applied, Cx, Plan, Undo, change, wait::WaitFor};
use crate::report::{Change, Kind, Outcome, Printer};
use futures_util::future::LocalBoxFuture;
use std::time::{Duration, Instant};

/// Cutover's settings and what its steps find on the way.
pub struct State {
    pub max_wait: Duration,
    pub grace: Duration,
    pub margin: i64,
    pub verify: Verify,
    pub tables: Vec<Table>,
    pub paused_at: Option<Instant>,
}

pub async fn run(args: CutoverArgs, printer: &Printer) -> Result<Outcome, Failure> {
    let sides = Sides::from_args(&args.endpoints)?;
    let t = args.connect_timeout;
    let src = inspect::source_session(&sides, t).await?;
    let admin = inspect::target_admin_session(&sides, t).await?;
    let (target, tsession) = inspect::target(&admin, &sides, &[], t).await?;
    let tsession = match tsession {
        Some(s) if target.subscription.is_some() => s,
        other => return rerun(&args, printer, &sides, (src, admin, other)).await,
    };
    let tables = ready(&tsession, &src, &sides, args.max_lag).await?;
    let identity_full = inspect::identity_to_revert(&src, &sides.names.publication).await?;
    let comment = inspect::publication_comment(&src, &sides.names.publication).await?;
    let plan = steps(&sides, comment.as_deref());
    let mut outcome = Outcome::new("migrate cutover", args.dry_run.dry_run);
    if args.dry_run.dry_run {
        plan.preview_into(&mut outcome);
        return Ok(outcome);
    }
    let mut env = Env::new(sides.clone(), t);
    env.source = Some(src);
    env.admin = Some(admin);
    env.target = Some(tsession);
    env.cutover = Some(State {
        max_wait: args.max_wait,
        grace: args.grace,
        margin: args.sequence_margin,
        verify: args.verify,
        tables,
        paused_at: None,
    });
    let mut cx = Cx::new(env, *printer, None)?;
    plan::execute(&plan.steps, &mut cx, &mut outcome)
        .await
        .map_err(|error| outcome.failure(error))?;
    conclude(&mut outcome, &sides, &identity_full, "");
    Ok(outcome)
}

/// The target's connection string for the application (printed and in
/// the JSON: never the password --target may hold), the statements that
/// put back the replica identity start changed, and the figures.
fn conclude(outcome: &mut Outcome, sides: &Sides, identity_full: &[Table], what: &str) {
    let target = super::with_dbname(&super::without_password(&sides.target_given), &sides.dbname);
    outcome.detail("target_conninfo", &target);
    if !identity_full.is_empty() {
        // Not done here: ALTER TABLE waits for every reader of the table
        // on the source, and cutover's last step would wait with it while
        // the application waits for the conninfo. A retired source does
        // not care; one that lives on wants the statements.
        outcome.warnings.push(format!(
            "the source keeps the REPLICA IDENTITY FULL start gave {}; if it takes writes again, run there: {}",
            identity_full
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            identity_full
                .iter()
                .map(|t| format!("ALTER TABLE {} REPLICA IDENTITY DEFAULT;", t.sql()))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    outcome.epilogue = Some(format!(
        "{what}{}the database {} now lives on the target: point the application at\n  {target}\nthe source database stays read-only (ALTER DATABASE {} RESET default_transaction_read_only to undo)\n",
        figures(&outcome.details),
        sides.dbname,
        ident(&sides.dbname)
    ));
}

/// What is left of a migration whose target has no subscription.
#[derive(Debug, Default)]
pub struct Leftovers {
    pub publication: bool,
    /// The publication's comment says a cutover passed its commit point.
    pub cut_over: bool,
    pub slot: bool,
    /// The source database's own default_transaction_read_only = on.
    pub read_only: bool,
    /// The target database holds some of the source's tables.
    pub target_tables: bool,
}

/// A cutover run where the target has no subscription.
#[derive(Debug, PartialEq, Eq)]
pub enum Rerun {
    /// Killed past its commit point, after it dropped the subscription:
    /// the slot (when there) and the publication are left to drop.
    Finish { slot: bool },
    /// Done: nothing left, the source read-only, the target holding the
    /// tables. Confirmed, nothing changed.
    Finished,
    /// Never started, aborted, or not recognisable as cut over.
    NoMigration,
}

/// Decided from what is left alone. A finished cutover leaves the source
/// read-only and the target holding the tables; an abort turns writes
/// back on, and before a start the target has no tables.
pub fn rerun_of(l: &Leftovers) -> Rerun {
    if l.publication && l.cut_over {
        return Rerun::Finish { slot: l.slot };
    }
    if super::status::done_leaves(!l.publication && !l.slot, l.read_only, l.target_tables) {
        return Rerun::Finished;
    }
    Rerun::NoMigration
}

/// No subscription on the target: finish a cutover killed past its
/// commit point, confirm one already done, or refuse (NO_MIGRATION).
async fn rerun(
    args: &CutoverArgs,
    printer: &Printer,
    sides: &Sides,
    (src, admin, target): (Session, Session, Option<Session>),
) -> Result<Outcome, Failure> {
    let n = &sides.names;
    let comment = inspect::publication_comment(&src, &n.publication).await?;
    let left = Leftovers {
        publication: inspect::publication_exists(&src, &n.publication).await?,
        cut_over: super::names::is_cut_over(comment.as_deref()),
        slot: inspect::slot(&src, &n.slot).await?.is_some(),
        read_only: inspect::database_read_only(&src).await?,
        target_tables: match &target {
            Some(t) => inspect::target_holds_source_tables(&src, t).await?,
            None => false,
        },
    };
    let mut outcome = Outcome::new("migrate cutover", args.dry_run.dry_run);
    let slot = match rerun_of(&left) {
        Rerun::NoMigration => return Err(no_migration(sides).into()),
        Rerun::Finished => {
            outcome.detail("finished", true);
            let done = format!(
                "the cutover of {} is done already (no subscription, slot or publication left; the source database read-only): nothing to do\n",
                sides.dbname
            );
            conclude(&mut outcome, sides, &[], &done);
            return Ok(outcome);
        }
        Rerun::Finish { slot } => slot,
    };
    let identity_full = inspect::identity_to_revert(&src, &n.publication).await?;
    let mut plan = Plan::default();
    push_finish(&mut plan, sides, slot);
    if args.dry_run.dry_run {
        plan.preview_into(&mut outcome);
        return Ok(outcome);
    }
    let mut env = Env::new(sides.clone(), args.connect_timeout);
    env.source = Some(src);
    env.admin = Some(admin);
    env.target = target;
    let mut cx = Cx::new(env, *printer, None)?;
    plan::execute(&plan.steps, &mut cx, &mut outcome)
        .await
        .map_err(|error| outcome.failure(error))?;
    let what = "a cutover stopped past its commit point is finished now\n";
    conclude(&mut outcome, sides, &identity_full, what);
    Ok(outcome)
}

fn no_migration(sides: &Sides) -> Error {
    Error::new(
        Code::NoMigration,
        format!(
            "no subscription {} in the target database {}, and no cutover of it to finish or done",
            sides.names.subscription, sides.dbname
        ),
    )
    .hint("start one with pgrepctl migrate start; nothing was changed (a cutover that is done leaves the source database read-only and the target holding its tables, and is then confirmed)")
}

/// A cutover's last steps, after the subscription is dropped: the slot
/// (when there is one) and the publication; all that a cutover killed
/// after dropping its subscription has left to do.
fn push_finish(plan: &mut Plan<Env>, sides: &Sides, slot: bool) {
    let n = &sides.names;
    if slot {
        plan.push(DropSlot {
            name: n.slot.clone(),
        });
    }
    plan.push(Sql::new(
        Side::Source,
        format!("DROP PUBLICATION {}", ident(&n.publication)),
        None,
    ));
}

/// The run's figures for a reader (the JSON has them as details): how
/// long writes were off on the source, and how many rows were verified.
fn figures(details: &serde_json::Map<String, serde_json::Value>) -> String {
    let n = |k: &str| details.get(k).and_then(serde_json::Value::as_i64);
    let mut out = String::new();
    if let Some(ms) = n("write_pause_ms") {
        out.push_str(&format!(
            "writes were off on the source for {:.2} s, until the data was verified\n",
            ms as f64 / 1000.0
        ));
    }
    if let (Some(rows), Some(tables)) = (n("rows_verified"), n("tables_verified")) {
        out.push_str(&format!(
            "{rows} row(s) of {tables} table(s) verified equal on both sides\n"
        ));
    }
    out
}

/// Every subscribed table ready, the worker running and the lag at most
/// `max_lag`; the subscribed tables.
async fn ready(
    t: &crate::pg::Session,
    s: &crate::pg::Session,
    sides: &Sides,
    max_lag: u64,
) -> Result<Vec<Table>> {
    let rows = t
        .client
        .query(
            "SELECT n.nspname::text, c.relname::text, r.srsubstate::text \
             FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid \
             JOIN pg_class c ON c.oid = r.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE s.subname = $1 ORDER BY 1, 2",
            &[&sides.names.subscription],
        )
        .await
        .map_err(|e| query_error(&t.target, &e))?;
    let not_ready: Vec<String> = rows
        .iter()
        .filter(|r| r.get::<_, String>(2) != "r")
        .map(|r| format!("{}.{}", r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    let lag: Option<i64> = s
        .client
        .query_opt(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&sides.names.slot],
        )
        .await
        .map_err(|e| query_error(&s.target, &e))?
        .and_then(|r| r.get(0));
    let why = if !not_ready.is_empty() {
        Some(format!(
            "tables still in their initial copy: {}",
            not_ready.join(", ")
        ))
    } else if rows.is_empty() {
        Some("the subscription has no tables yet".to_string())
    } else {
        match lag {
            None => Some(format!(
                "the slot {} is not on the source",
                sides.names.slot
            )),
            Some(l) if l as u64 > max_lag => Some(format!(
                "the target is {} behind the source (--max-lag {})",
                crate::units::human_bytes(l as u64),
                crate::units::human_bytes(max_lag)
            )),
            _ => None,
        }
    };
    if let Some(why) = why {
        return Err(Error::new(Code::NotSynchronized, why)
            .hint("wait, and watch pgrepctl migrate status until it is OK; nothing was changed"));
    }
    Ok(rows
        .iter()
        .map(|r| Table {
            schema: r.get(0),
            name: r.get(1),
        })
        .collect())
}

fn steps(sides: &Sides, comment: Option<&str>) -> Plan<Env> {
    let mut plan = Plan::default();
    plan.push(WritesOff {
        db: sides.dbname.clone(),
    });
    plan.push(WaitFor::new(
        "wait until the target has confirmed the source's last write",
        caught_up,
    ));
    plan.push(Sequences);
    plan.push(WaitFor::new("verify the tables on both sides", verify));
    plan.commit();
    let n = &sides.names;
    // First past the commit point: the mark that the target is the
    // database now, for an abort after a cutover killed from here on.
    plan.push(Sql::new(
        Side::Source,
        format!(
            "COMMENT ON PUBLICATION {} IS {}",
            ident(&n.publication),
            crate::pg::sql::literal(&super::names::cut_over_comment(comment))
        ),
        None,
    ));
    plan.push(Sql::new(
        Side::Target,
        format!("DROP SUBSCRIPTION {}", ident(&n.subscription)),
        None,
    ));
    push_finish(&mut plan, sides, true);
    plan
}

fn state(cx: &mut Cx<Env>) -> Result<&mut State> {
    cx.env
        .cutover
        .as_mut()
        .ok_or_else(|| Error::new(Code::Internal, "cutover state missing"))
}

/// default_transaction_read_only for the source database, then the
/// sessions still writing get --grace and are ended, with every other
/// session of the database (they would keep their old setting).
struct WritesOff {
    db: String,
}

impl WritesOff {
    fn sql(&self) -> String {
        format!(
            "ALTER DATABASE {} SET default_transaction_read_only = on",
            ident(&self.db)
        )
    }
}

struct WritesOn(String);

impl Undo<Env> for WritesOn {
    fn undo<'s>(self: Box<Self>, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<()>> {
        Box::pin(async move {
            cx.printer
                .warn("writes are enabled again on the source: nothing was switched");
            exec(
                &mut cx.env,
                Side::Source,
                &format!(
                    "ALTER DATABASE {} RESET default_transaction_read_only",
                    ident(&self.0)
                ),
            )
            .await
        })
    }
}

impl Action<Env> for WritesOff {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Sql,
            format!(
                "on the source: {}; end the database's other sessions after --grace",
                self.sql()
            ),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            cx.printer.sql(self.sql());
            exec(&mut cx.env, Side::Source, &self.sql()).await?;
            state(cx)?.paused_at = Some(Instant::now());
            match end_writers(cx).await {
                Ok(()) => Ok(Applied::changed().undo(WritesOn(self.db.clone()))),
                Err(e) => {
                    // This step's own undo is not registered yet.
                    Box::new(WritesOn(self.db.clone())).undo(cx).await?;
                    Err(e)
                }
            }
        })
    }
}

/// End the source database's client sessions: at once those not in a
/// write transaction (between transactions nothing is lost, and a session
/// opened before the database became read-only could still write), after
/// --grace those still in one. Then wait until they are gone: a
/// terminated backend may still be committing, and the LSN noted next
/// must come after its last write. Autovacuum and the walsenders are left
/// alone (an ANALYZE holds an xid too, and must not make cutover wait).
async fn end_writers(cx: &mut Cx<Env>) -> Result<()> {
    let grace = state(cx)?.grace;
    let deadline = Instant::now() + grace;
    let s = cx.env.session(Side::Source).await?;
    let q = |e: tokio_postgres::Error| query_error(&s.target, &e);
    let mut ended: Vec<i32> = vec![];
    loop {
        ended.extend(terminate(s, false).await?);
        let writing: i64 = s
            .client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid() AND backend_type = 'client backend' \
                 AND backend_xid IS NOT NULL AND pid <> ALL($1)",
                &[&ended],
            )
            .await
            .map_err(q)?
            .get(0);
        if writing == 0 || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every session left, writing or not: one that just committed may
    // start its next write transaction at any moment.
    ended.extend(terminate(s, true).await?);
    ended.sort_unstable();
    ended.dedup();
    gone(s, &ended).await?;
    cx.detail("sessions_ended", ended.len());
    Ok(())
}

/// Terminate the source database's other client sessions: all of them,
/// or those not in a write transaction (no xid).
async fn terminate(s: &Session, all: bool) -> Result<Vec<i32>> {
    let rows = s
        .client
        .query(
            // The filter first (OFFSET 0 keeps it apart): a terminate
            // evaluated before `pid <> pg_backend_pid()` would end this
            // very session.
            "SELECT pid FROM (SELECT pid FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND backend_type = 'client backend' AND ($1 OR backend_xid IS NULL) \
             OFFSET 0) a WHERE pg_terminate_backend(pid)",
            &[&all],
        )
        .await
        .map_err(|e| query_error(&s.target, &e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Until every session in `pids` has exited (10 s).
async fn gone(s: &Session, pids: &[i32]) -> Result<()> {
    let by = Instant::now() + Duration::from_secs(10);
    loop {
        let left: i64 = s
            .client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)",
                &[&pids],
            )
            .await
            .map_err(|e| query_error(&s.target, &e))?
            .get(0);
        if left == 0 {
            return Ok(());
        }
        if Instant::now() >= by {
            return Err(Error::new(
                Code::Timeout,
                format!("{left} session(s) of the source database did not end within 10s"),
            )
            .hint("look at pg_stat_activity on the source; writes are on again there"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The source's current LSN, then the slot's confirmed_flush_lsn past it
/// within --max-wait; a timeout fails the run, whose undo turns writes
/// back on.
fn caught_up(cx: &mut Cx<Env>) -> LocalBoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let max_wait = state(cx)?.max_wait;
        let slot = cx.env.sides.names.slot.clone();
        let s = cx.env.session(Side::Source).await?;
        let q = |e: tokio_postgres::Error| query_error(&s.target, &e);
        let lsn: String = s
            .client
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await
            .map_err(q)?
            .get(0);
        let began = Instant::now();
        let deadline = began + max_wait;
        loop {
            let done: Option<bool> = s
                .client
                .query_opt(
                    "SELECT confirmed_flush_lsn >= $2::text::pg_lsn FROM pg_replication_slots WHERE slot_name = $1",
                    &[&slot, &lsn],
                )
                .await
                .map_err(q)?
                .and_then(|r| r.get(0));
            if done == Some(true) {
                cx.detail("source_lsn", &lsn);
                cx.detail("catchup_ms", began.elapsed().as_millis() as u64);
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    Code::Timeout,
                    format!(
                        "the target did not confirm the source's LSN {lsn} within --max-wait ({}s)",
                        max_wait.as_secs()
                    ),
                )
                .hint("look at pgrepctl migrate status and the target's log; run cutover again when the lag is small, or with a longer --max-wait"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Every sequence of the source set on the target to the source's value
/// plus --sequence-margin (minus, for a descending one), within bounds.
struct Sequences;

impl Action<Env> for Sequences {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Sql,
            "on the target: setval() of every sequence to the source's value plus --sequence-margin",
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let margin = state(cx)?.margin;
            let s = cx.env.session(Side::Source).await?;
            let rows = s
                .client
                .query(
                    "SELECT schemaname::text, sequencename::text, last_value, increment_by, min_value, max_value \
                     FROM pg_sequences WHERE last_value IS NOT NULL ORDER BY 1, 2",
                    &[],
                )
                .await
                .map_err(|e| query_error(&s.target, &e))?;
            let mut set = vec![];
            for r in &rows {
                let t = Table {
                    schema: r.get(0),
                    name: r.get(1),
                };
                let (last, inc, min, max): (i64, i64, i64, i64) =
                    (r.get(2), r.get(3), r.get(4), r.get(5));
                let v = if inc > 0 {
                    last.saturating_add(margin).min(max)
                } else {
                    last.saturating_sub(margin).max(min)
                };
                set.push((t, v));
            }
            let n = set.len();
            let target = cx.env.session(Side::Target).await?;
            for (t, v) in &set {
                cx.printer
                    .sql(format!("SELECT setval({}, {v})", literal(&t.sql())));
                target
                    .client
                    .query(
                        "SELECT setval(c, $2) FROM (SELECT to_regclass($1) AS c) x WHERE c IS NOT NULL",
                        &[&t.sql(), v],
                    )
                    .await
                    .map_err(|e| query_error(&target.target, &e))?;
            }
            cx.detail("sequences_set", n);
            Ok(Applied::changed())
        })
    }
}

/// Row counts, and a checksum of every row (or of 1/256th of them, chosen
/// by the row's md5 on both sides alike), equal on both sides.
fn verify(cx: &mut Cx<Env>) -> LocalBoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let (how, tables) = {
            let st = state(cx)?;
            (st.verify, st.tables.clone())
        };
        // The text of a float must not depend on the server's defaults,
        // nor on its major (see float_digits).
        let source = cx.env.session(Side::Source).await?.version_num;
        let target = cx.env.session(Side::Target).await?.version_num;
        let set = format!("SET extra_float_digits = {}", float_digits(source, target));
        for side in [Side::Source, Side::Target] {
            exec(&mut cx.env, side, &set).await?;
        }
        let mut rows_verified: i64 = 0;
        let mut mismatched = vec![];
        for t in &tables {
            let key = if how == Verify::Sample {
                primary_key(cx, t).await?
            } else {
                None
            };
            let q = verify_query(t, how, key.as_deref());
            let (a, b) = both_sides(cx, &q).await?;
            if a != b {
                mismatched.push(format!(
                    "{t} (source {} rows, target {} rows{})",
                    a.0,
                    b.0,
                    if a.0 == b.0 { ", checksums differ" } else { "" }
                ));
            }
            rows_verified += a.0;
        }
        cx.detail("rows_verified", rows_verified);
        cx.detail("tables_verified", tables.len());
        if let Some(at) = state(cx)?.paused_at {
            let ms = at.elapsed().as_millis() as u64;
            cx.detail("write_pause_ms", ms);
        }
        if mismatched.is_empty() {
            return Ok(());
        }
        Err(Error::new(
            Code::VerifyFailed,
            format!("the tables differ between source and target: {}", mismatched.join("; ")),
        )
        .hint("nothing was switched and writes are on again on the source; look at the target's log and pgrepctl migrate status"))
    })
}

/// extra_float_digits that makes both servers print a float alike. 12
/// changed what a positive value means (the shortest exact text, where
/// 11 and before print 17 digits: 0.1 against 0.10000000000000001), so
/// across that line both print DBL_DIG digits (0, `%.15g` on every
/// major); on one side of it, 3: exact on both.
fn float_digits(source: u32, target: u32) -> i32 {
    if (source >= 120000) == (target >= 120000) {
        3
    } else {
        0
    }
}

/// Rows a sample compares at each end of the primary key: the first
/// rows and the newest, which a lost write would most likely be among.
const SAMPLE_ROWS: u32 = 1000;

fn verify_query(t: &Table, how: Verify, key: Option<&str>) -> String {
    let rel = t.sql();
    let digest = |rows: &str| {
        format!(
            "coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '') FROM ({rows}) x"
        )
    };
    match (how, key) {
        (Verify::Counts, _) | (Verify::Sample, None) => format!("SELECT count(*), '' FROM {rel}"),
        (Verify::Full, _) => format!(
            "SELECT count(*), {}",
            digest(&format!("SELECT * FROM {rel}"))
        ),
        (Verify::Sample, Some(k)) => format!(
            "SELECT (SELECT count(*) FROM {rel}), {}",
            digest(&format!(
                "(SELECT * FROM {rel} ORDER BY {k} LIMIT {SAMPLE_ROWS}) UNION ALL \
                 (SELECT * FROM {rel} ORDER BY {k} DESC LIMIT {SAMPLE_ROWS})"
            ))
        ),
    }
}

/// The table's primary key columns, quoted, in key order (None without one).
async fn primary_key(cx: &mut Cx<Env>, t: &Table) -> Result<Option<String>> {
    let s = cx.env.session(Side::Source).await?;
    let row = s
        .client
        .query_one(
            "SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY array_position(i.indkey::int2[], a.attnum)) \
             FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = $1::text::regclass AND i.indisprimary",
            &[&t.sql()],
        )
        .await
        .map_err(|e| query_error(&s.target, &e))?;
    Ok(row.get(0))
}

/// The same query on both sides at once: the write pause lasts as long
/// as the slower side, not the two together.
async fn both_sides(cx: &mut Cx<Env>, q: &str) -> Result<((i64, String), (i64, String))> {
    cx.env.session(Side::Source).await?;
    cx.env.session(Side::Target).await?;
    let (Some(s), Some(t)) = (&cx.env.source, &cx.env.target) else {
        return Err(Error::new(Code::Internal, "sessions missing"));
    };
    let (a, b) = tokio::join!(s.client.query_one(q, &[]), t.client.query_one(q, &[]));
    let a = a.map_err(|e| query_error(&s.target, &e))?;
    let b = b.map_err(|e| query_error(&t.target, &e))?;
    Ok(((a.get(0), a.get(1)), (b.get(0), b.get(1))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rerun_finishes_confirms_or_refuses() {
        let done = Leftovers {
            read_only: true,
            target_tables: true,
            ..Leftovers::default()
        };
        assert_eq!(rerun_of(&done), Rerun::Finished);
        // Killed past the commit point, after DROP SUBSCRIPTION.
        let past = Leftovers {
            publication: true,
            cut_over: true,
            ..done
        };
        assert_eq!(rerun_of(&past), Rerun::Finish { slot: false });
        let with_slot = Leftovers {
            publication: true,
            cut_over: true,
            slot: true,
            ..Leftovers::default()
        };
        assert_eq!(rerun_of(&with_slot), Rerun::Finish { slot: true });
        // Never started: nothing on the target; or aborted: writable.
        for l in [
            Leftovers::default(),
            Leftovers {
                read_only: true,
                ..Leftovers::default()
            },
            Leftovers {
                target_tables: true,
                ..Leftovers::default()
            },
            // A start killed before its subscription: not a cutover.
            Leftovers {
                publication: true,
                slot: true,
                read_only: true,
                target_tables: true,
                ..Leftovers::default()
            },
        ] {
            assert_eq!(rerun_of(&l), Rerun::NoMigration, "{l:?}");
        }
    }

    #[test]
    fn the_figures_are_told_in_words() {
        let mut d = serde_json::Map::new();
        assert_eq!(figures(&d), "");
        d.insert("write_pause_ms".into(), 1234.into());
        d.insert("rows_verified".into(), 200_300.into());
        d.insert("tables_verified".into(), 5.into());
        assert_eq!(
            figures(&d),
            "writes were off on the source for 1.23 s, until the data was verified\n\
             200300 row(s) of 5 table(s) verified equal on both sides\n"
        );
    }

    #[test]
    fn floats_print_alike_across_12() {
        assert_eq!(float_digits(100000, 110000), 3);
        assert_eq!(float_digits(120000, 180000), 3);
        assert_eq!(float_digits(110022, 160000), 0);
        assert_eq!(float_digits(100000, 120000), 0);
    }

    #[test]
    fn verify_queries() {
        let t = Table {
            schema: "public".into(),
            name: "Orders".into(),
        };
        let counts = "SELECT count(*), '' FROM \"public\".\"Orders\"";
        assert_eq!(verify_query(&t, Verify::Counts, None), counts);
        // A sample needs a key to order by; without one, counts.
        assert_eq!(verify_query(&t, Verify::Sample, None), counts);
        let s = verify_query(&t, Verify::Sample, Some("\"id\""));
        assert!(s.contains("ORDER BY \"id\" DESC LIMIT 1000"), "{s}");
        assert!(
            s.starts_with("SELECT (SELECT count(*) FROM \"public\".\"Orders\")"),
            "{s}"
        );
        let f = verify_query(&t, Verify::Full, None);
        assert!(
            f.starts_with("SELECT count(*), coalesce(md5(string_agg(md5(x::text)"),
            "{f}"
        );
        assert!(
            f.ends_with("FROM (SELECT * FROM \"public\".\"Orders\") x"),
            "{f}"
        );
    }
}
