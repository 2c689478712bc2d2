//! `migrate abort`: drop what start created, from whatever state it is in
//! (running, half-started by a killed start, half-aborted): the
//! subscription on the target (with its slot when the source answers;
//! else detached from its slot first, and the slot named for later), the
//! slot and the publication on the source, and with --drop-schema what
//! start loaded into the target database (its tables, sequences, types,
//! functions, views, schemas: see [`super::schema::DropSchema`]). Each
//! object is dropped only when it exists, so a rerun changes nothing.
//!
//! The publication is the migration's mark: start creates it before
//! anything lands in the target database, abort drops it last. Without
//! it (after a cutover, an abort, or before any start) the target's
//! tables are not the migration's to drop, and --drop-schema refuses;
//! so it does when the publication's comment says a cutover passed its
//! commit point (killed before it dropped the publication), and the
//! source then stays read-only.

use super::inspect::{self, Table};
use super::schema::DropSchema;
use super::steps::{DropSlot, Env, Side, Sql};
use super::{AbortArgs, Sides};
use crate::error::{Code, Error, Failure, Result};
use crate::pg::Session;
use crate::pg::sql::ident;
use crate::plan::{self, Cx, Plan};
use crate::report::{Outcome, Printer};

/// What abort finds on the two servers.
struct Found {
    /// None: the source did not answer.
    source: Option<SourceFound>,
    subscription: bool,
    /// --drop-schema, the source answering and its publication there.
    schema: Option<DropSchema>,
}

struct SourceFound {
    slot: bool,
    publication: bool,
    /// Tables start made REPLICA IDENTITY FULL, still so.
    identity_full: Vec<Table>,
    /// ALTER DATABASE … SET default_transaction_read_only = on: what a
    /// cutover killed before its end leaves.
    read_only: bool,
    /// A cutover passed its commit point (the publication's comment):
    /// the target is the database, the source stays read-only.
    cut_over: bool,
}

pub async fn run(args: AbortArgs, printer: &Printer) -> Result<Outcome, Failure> {
    let sides = Sides::from_args(&args.endpoints)?;
    let t = args.connect_timeout;
    let src = match inspect::source_session(&sides, t).await {
        Ok(s) => Some(s),
        Err(e) => {
            printer.warn(format!(
                "the source does not answer ({}): the subscription is dropped without its slot",
                e.message
            ));
            None
        }
    };
    let admin = inspect::target_admin_session(&sides, t).await?;
    let (target, tsession) = inspect::target(&admin, &sides, &[], t).await?;
    let schema = Schema {
        asked: args.drop_schema,
        target_major: crate::pg::version::Version::of(target.version_num).major(),
        target_system: target.system_id.clone(),
        bindir: args.bindir.checked()?,
    };
    let found = find(
        &sides,
        src.as_ref(),
        target.subscription.is_some(),
        tsession.as_ref(),
        &schema,
    )
    .await?;
    let mut plan = decide(&sides, &found);
    if args.drop_schema && found.source.is_none() {
        plan.warnings.push(format!(
            "--drop-schema dropped nothing: the source's schema names what start loaded, and the source did not answer; run abort --drop-schema again once it does (its publication {} still marks the migration)",
            sides.names.publication
        ));
    }
    let mut outcome = Outcome::new("migrate abort", args.dry_run.dry_run);
    if args.dry_run.dry_run {
        plan.preview_into(&mut outcome);
        return Ok(outcome);
    }
    outcome.warnings.extend(plan.warnings.iter().cloned());
    let mut env = Env::new(sides, t);
    env.source = src;
    env.admin = Some(admin);
    env.target = tsession;
    let mut cx = Cx::new(env, *printer, None)?;
    plan::execute(&plan.steps, &mut cx, &mut outcome)
        .await
        .map_err(|error| outcome.failure(error))?;
    Ok(outcome)
}

/// What --drop-schema needs to know, and the target's system identifier.
struct Schema {
    asked: bool,
    target_major: u32,
    target_system: Option<String>,
    bindir: Option<std::path::PathBuf>,
}

async fn find(
    sides: &Sides,
    src: Option<&Session>,
    subscription: bool,
    target: Option<&Session>,
    schema: &Schema,
) -> Result<Found> {
    let mut found = Found {
        source: None,
        subscription,
        schema: None,
    };
    let Some(s) = src else {
        return Ok(found);
    };
    let facts = inspect::source(s, sides).await?;
    let comment = inspect::publication_comment(s, &sides.names.publication).await?;
    other_target(sides, comment.as_deref(), schema.target_system.as_deref())?;
    let cut_over = super::names::is_cut_over(comment.as_deref());
    found.source = Some(SourceFound {
        slot: facts.slot.is_some(),
        publication: facts.publication,
        identity_full: inspect::identity_to_revert(s, &sides.names.publication).await?,
        read_only: inspect::database_read_only(s).await?,
        cut_over,
    });
    let Some(t) = target.filter(|_| schema.asked) else {
        return Ok(found);
    };
    if cut_over {
        return Err(Error::new(
            Code::NoMigration,
            format!(
                "the cutover of {} passed its commit point (the comment on the publication {} says so): the target database is the database now, and --drop-schema would drop it",
                sides.dbname, sides.names.publication
            ),
        )
        .hint("nothing was changed: run migrate cutover again to finish it (while its subscription is there), or abort without --drop-schema to drop what it left; the source stays read-only either way"));
    }
    if facts.publication {
        found.schema = Some(DropSchema {
            bindir: crate::tools::find(schema.target_major, schema.bindir.as_deref())?,
            tables: published(s, &sides.names.publication).await?,
        });
        return Ok(found);
    }
    let mut left = vec![];
    for table in facts
        .tables
        .iter()
        .map(|x| &x.table)
        .chain(&facts.sequences)
    {
        if exists(t, table).await? {
            left.push(table.to_string());
        }
    }
    if left.is_empty() {
        return Ok(found);
    }
    Err(Error::new(
        Code::NoMigration,
        format!(
            "no migration of {} is there to abort (no publication {} on the source: cut over, aborted, or never started), and the target database holds the source's tables and sequences: {}",
            sides.dbname,
            sides.names.publication,
            left.join(", ")
        ),
    )
    .hint(format!(
        "nothing was changed: --drop-schema drops the copied schema only while the migration is there, as after a cutover these tables are the database; if they are indeed to go, drop them on the target yourself (DROP DATABASE {} there, if it holds nothing else), and run abort without --drop-schema for anything else left",
        crate::pg::sql::ident(&sides.dbname)
    )))
}

/// A migration whose start recorded another target server than this
/// one (a --target mistyped, the database moved to two servers in turn):
/// abort would drop that migration's publication and slot, and with
/// --drop-schema this server's tables. Refused, nothing changed.
fn other_target(sides: &Sides, comment: Option<&str>, here: Option<&str>) -> Result<()> {
    let (Some(recorded), Some(here)) = (super::names::target_system(comment), here) else {
        return Ok(());
    };
    if recorded == here {
        return Ok(());
    }
    Err(Error::new(
        Code::SystemIdMismatch,
        format!(
            "the migration of {} on the source goes to another server (system identifier {recorded}), not to this --target (system identifier {here})",
            sides.dbname
        ),
    )
    .hint("nothing was changed: give the --target that migrate start was run with"))
}

/// The tables start's publication names: None for FOR ALL TABLES (start
/// loaded the whole database's schema), else the --table selection.
async fn published(s: &Session, publication: &str) -> Result<Option<Vec<Table>>> {
    let all: bool = s
        .client
        .query_one(
            "SELECT puballtables FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(|e| crate::pg::query_error(&s.target, &e))?
        .get(0);
    if all {
        return Ok(None);
    }
    let q = "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2";
    Ok(Some(inspect::tables(s, q, &[&publication]).await?))
}

async fn exists(s: &Session, t: &Table) -> Result<bool> {
    let row = s
        .client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&t.sql()])
        .await
        .map_err(|e| crate::pg::query_error(&s.target, &e))?;
    Ok(row.get(0))
}

fn decide(sides: &Sides, found: &Found) -> Plan<Env> {
    let mut plan = Plan::default();
    let n = &sides.names;
    let sub = ident(&n.subscription);
    // DROP SUBSCRIPTION drops the slot through the source; without the
    // source (or its slot) the subscription is detached from it first.
    let slot_there = found.source.as_ref().is_some_and(|s| s.slot);
    if found.subscription {
        if !slot_there {
            plan.push(Sql::new(
                Side::Target,
                format!("ALTER SUBSCRIPTION {sub} DISABLE"),
                None,
            ));
            plan.push(Sql::new(
                Side::Target,
                format!("ALTER SUBSCRIPTION {sub} SET (slot_name = NONE)"),
                None,
            ));
        }
        plan.push(Sql::new(
            Side::Target,
            format!("DROP SUBSCRIPTION {sub}"),
            None,
        ));
    }
    match &found.source {
        None => plan.warnings.push(format!(
            "the source did not answer: drop the slot {} there (SELECT pg_drop_replication_slot('{}')) and the publication {} in the database {}, or run abort again once it answers; until then the slot keeps WAL on the source",
            n.slot, n.slot, n.publication, sides.dbname
        )),
        Some(s) => {
            // Only while the migration is still there: after a cutover
            // (finished, or killed past its commit point) the source
            // stays read-only on purpose.
            if s.read_only && !s.cut_over && (found.subscription || s.slot || s.publication) {
                plan.push(Sql::new(
                    Side::Source,
                    format!(
                        "ALTER DATABASE {} RESET default_transaction_read_only",
                        ident(&sides.dbname)
                    ),
                    None,
                ));
            }
            // Before the publication, the mark a rerun needs to drop it.
            if let Some(d) = &found.schema {
                plan.push(DropSchema {
                    bindir: d.bindir.clone(),
                    tables: d.tables.clone(),
                });
            }
            if s.slot && !found.subscription {
                plan.push(DropSlot {
                    name: n.slot.clone(),
                });
            }
            if s.publication {
                plan.push(Sql::new(
                    Side::Source,
                    inspect::drop_publication_sql(&n.publication, &s.identity_full),
                    None,
                ));
            }
        }
    }
    plan
}
