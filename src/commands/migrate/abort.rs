//! `migrate abort`: drop what start created, from whatever state it is in
//! (running, half-started by a killed start, half-aborted): the
//! subscription on the target (with its slot when the source answers;
//! else detached from its slot first, and the slot named for later), the
//! slot and the publication on the source, and with --drop-schema the
//! tables and sequences copied into the target database. Each object is
//! dropped only when it exists, so a rerun changes nothing.

use super::inspect::{self, Table};
use super::steps::{DropSlot, Env, Side, Sql};
use super::{AbortArgs, Sides};
use crate::error::{Failure, Result};
use crate::pg::Session;
use crate::pg::sql::ident;
use crate::plan::{self, Cx, Plan};
use crate::report::{Outcome, Printer};

/// What abort finds on the two servers.
struct Found {
    /// None: the source did not answer.
    source: Option<SourceFound>,
    subscription: bool,
    /// Tables and sequences in the target database that the source has too.
    copied: Vec<(Table, bool)>,
}

struct SourceFound {
    slot: bool,
    publication: bool,
    /// Tables start made REPLICA IDENTITY FULL, still so.
    identity_full: Vec<Table>,
    /// ALTER DATABASE … SET default_transaction_read_only = on: what a
    /// cutover killed before its end leaves.
    read_only: bool,
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
    let found = find(
        &sides,
        src.as_ref(),
        target.subscription.is_some(),
        tsession.as_ref(),
        args.drop_schema,
    )
    .await?;
    let plan = decide(&sides, &found);
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

async fn find(
    sides: &Sides,
    src: Option<&Session>,
    subscription: bool,
    target: Option<&Session>,
    drop_schema: bool,
) -> Result<Found> {
    let mut found = Found {
        source: None,
        subscription,
        copied: vec![],
    };
    if let Some(s) = src {
        let facts = inspect::source(s, sides).await?;
        found.source = Some(SourceFound {
            slot: facts.slot.is_some(),
            publication: facts.publication,
            identity_full: inspect::identity_to_revert(s, &sides.names.publication).await?,
            read_only: read_only(s).await?,
        });
        if let (true, Some(t)) = (drop_schema, target) {
            for table in facts.tables.iter().map(|x| &x.table) {
                if exists(t, table).await? {
                    found.copied.push((table.clone(), false));
                }
            }
            for seq in &facts.sequences {
                if exists(t, seq).await? {
                    found.copied.push((seq.clone(), true));
                }
            }
        }
    }
    Ok(found)
}

async fn read_only(s: &Session) -> Result<bool> {
    let row = s
        .client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_db_role_setting r JOIN pg_database d ON d.oid = r.setdatabase \
             WHERE d.datname = current_database() AND r.setrole = 0 \
             AND 'default_transaction_read_only=on' = ANY(r.setconfig))",
            &[],
        )
        .await
        .map_err(|e| crate::pg::query_error(&s.target, &e))?;
    Ok(row.get(0))
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
            // Only while the migration is still there: after a finished
            // cutover the source stays read-only on purpose.
            if s.read_only && (found.subscription || s.slot || s.publication) {
                plan.push(Sql::new(
                    Side::Source,
                    format!(
                        "ALTER DATABASE {} RESET default_transaction_read_only",
                        ident(&sides.dbname)
                    ),
                    None,
                ));
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
    for (t, sequence) in &found.copied {
        let kind = if *sequence { "SEQUENCE" } else { "TABLE" };
        plan.push(Sql::new(
            Side::Target,
            format!("DROP {kind} IF EXISTS {} CASCADE", t.sql()),
            None,
        ));
    }
    plan
}
