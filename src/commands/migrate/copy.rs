//! start's initial copy, pgcopydb's way rather than the subscription's
//! `copy_data`: the migration's logical slot is created over a logical
//! replication connection that exports its snapshot; `--jobs` pairs of
//! sessions then copy the tables, largest first, each source session in
//! a REPEATABLE READ transaction on that snapshot (the database exactly
//! as the slot's first change will find it), each target session into
//! tables that have no primary key or index yet (post-data comes after
//! the copy). The subscription then starts from the slot with
//! `copy_data = false`: nothing is copied twice, nothing is missed.
//!
//! Text COPY, not binary: binary arrays and composites carry their
//! element type's OID, which differs between two clusters for any type
//! not built in (enums, composites, extension types), and a type without
//! binary send/receive functions cannot be copied in binary at all; text
//! is what pg_dump and the subscription's own copy use across majors.
//!
//! A copy interrupted (SIGKILL, a lost connection) cannot be resumed:
//! the exported snapshot dies with the replication connection. The
//! slot is left behind with rows on the target; the next start drops
//! that slot, truncates the tables and copies again from a new snapshot
//! (or abort drops everything).

use super::inspect::Table;
use super::steps::{DropSlot, Env, Side, exec};
use crate::error::{Code, Error, Result};
use crate::pg::query_error;
use crate::pg::replication::ReplClient;
use crate::plan::{Action, Applied, Cx, Undo, change};
use crate::report::{Change, Kind};
use futures_util::future::LocalBoxFuture;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Duration;
use tokio_postgres::Client;

/// How long one COPY may go without an answer: a table of any size is
/// copied in one statement, whose answer comes at its end.
const COPY_ANSWER_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Create the slot exporting its snapshot, copy every table at that
/// snapshot, release the snapshot.
pub struct CopyData {
    pub slot: String,
    /// The tables to fill (logged ones: unlogged tables are not published).
    pub tables: Vec<Table>,
    pub jobs: usize,
    /// Rows a killed earlier copy left there: TRUNCATE them first.
    pub truncate: bool,
    /// The target's tables have no index yet, hence no foreign key points
    /// at them: each is emptied in the transaction that copies it, which
    /// lets COPY write its rows already frozen (FREEZE). The index builds
    /// that follow then set no hint bits (no page written twice, no
    /// full-page images where checksums are on), and no anti-wraparound
    /// vacuum rewrites the table later.
    pub freeze: bool,
}

impl Action<Env> for CopyData {
    fn describe(&self) -> Option<Change> {
        let truncate = if self.truncate && !self.freeze {
            "empty the tables a killed copy left (TRUNCATE), "
        } else {
            ""
        };
        Some(change(
            Kind::Sql,
            format!(
                "on the source: {truncate}CREATE_REPLICATION_SLOT {} LOGICAL pgoutput exporting its snapshot; copy {} table(s) at that snapshot, {} at a time, largest first (COPY … TO STDOUT | {}COPY … FROM STDIN{})",
                self.slot,
                self.tables.len(),
                self.jobs,
                if self.freeze { "TRUNCATE and " } else { "" },
                if self.freeze {
                    " (FREEZE), before the primary keys and indexes"
                } else {
                    ""
                },
            ),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            if self.truncate && !self.freeze && !self.tables.is_empty() {
                let sql = truncate_sql(&self.tables);
                cx.printer.sql(&sql);
                exec(&mut cx.env, Side::Target, &sql).await?;
            }
            let generated = cx.env.session(Side::Source).await?.version_num >= 120000;
            let client = repl_client(&cx.env)?;
            let mut conn = client.connect().await.map_err(|e| client.error(&e))?;
            cx.printer.sql(format!(
                "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (exporting its snapshot)",
                self.slot
            ));
            let made = conn
                .create_logical_slot_exporting(&self.slot, "pgoutput")
                .await
                .map_err(|e| slot_error(&client, &e));
            let slot = match made {
                Ok(s) => s,
                Err(e) => {
                    conn.close().await;
                    return Err(e);
                }
            };
            let undo = UndoCopy {
                slot: self.slot.clone(),
                tables: self.tables.clone(),
            };
            let (env, printer) = (&cx.env, cx.printer);
            // Ctrl-C or SIGTERM stops the copy (its sessions close and the
            // target's COPY rolls back) instead of waiting for its end.
            let copied = tokio::select! {
                r = self.copy_at(env, printer, generated, &slot.snapshot) => r,
                _ = cx.interrupt.recv() => Err(crate::plan::interrupted("while copying the tables")),
            };
            // The snapshot is needed no more once every table is copied.
            conn.close().await;
            match copied {
                Ok((tables, rows)) => {
                    cx.printer.step(format!(
                        "copied {rows} row(s) of {tables} table(s) at the slot's snapshot"
                    ));
                    cx.details.insert("rows_copied".into(), rows.into());
                    Ok(Applied::changed().undo(undo))
                }
                Err(e) => {
                    // The engine undoes the steps that succeeded; this
                    // one's slot and rows go here.
                    if let Err(u) = Box::new(undo).undo(cx).await {
                        cx.printer.warn(format!(
                            "could not drop the slot {} or empty the copied tables: {}",
                            self.slot, u.message
                        ));
                    }
                    Err(e)
                }
            }
        })
    }
}

impl CopyData {
    /// The tables, `jobs` at a time: each job's source session imports
    /// the snapshot once, in one transaction that copies all its tables.
    async fn copy_at(
        &self,
        env: &Env,
        printer: crate::report::Printer,
        generated: bool,
        snapshot: &str,
    ) -> Result<(usize, u64)> {
        let jobs = self.jobs.clamp(1, self.tables.len().max(1));
        let mut pairs = vec![];
        for _ in 0..jobs {
            let src = open(&env.sides.source, env.timeout).await?;
            // As pg_dump: no time-out of the user's (a role's or the
            // database's setting) cuts a long copy short, and the text is
            // exact and unambiguous whatever the settings — every digit
            // of a float (10 and 11 print 15 by default, which loses
            // precision), ISO dates, intervals in the postgres style.
            src.batch_execute(
                "SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0; \
                 SET extra_float_digits = 3; SET datestyle = ISO; SET intervalstyle = postgres",
            )
            .await
            .map_err(|e| query_error("the source", &e))?;
            src.batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
                crate::pg::sql::literal(snapshot)
            ))
            .await
            .map_err(|e| query_error("the source", &e))?;
            let dst = open(&env.sides.target, env.timeout).await?;
            // As the subscription's own copy: no triggers, no foreign
            // key checks (a referenced table may come later), and no
            // wait for the WAL flush at each commit.
            dst.batch_execute(
                "SET session_replication_role = replica; SET synchronous_commit = off; \
                 SET statement_timeout = 0; SET lock_timeout = 0; \
                 SET datestyle = ISO; SET intervalstyle = postgres",
            )
            .await
            .map_err(|e| query_error("the target", &e))?;
            pairs.push((src, dst));
        }
        let queue = RefCell::new(largest_first(&pairs[0].0, &self.tables).await?);
        let work = pairs.iter().map(|(src, dst)| async {
            let mut rows = 0;
            loop {
                let next = queue.borrow_mut().pop_front();
                let Some(t) = next else { return Ok(rows) };
                printer.debug(format!("copying {t}"));
                rows += copy_table(src, dst, &t, generated, self.freeze).await?;
            }
        });
        let rows: Vec<u64> = futures_util::future::try_join_all(work).await?;
        for (src, _) in &pairs {
            let _ = src.batch_execute("COMMIT").await;
        }
        Ok((self.tables.len(), rows.iter().sum()))
    }
}

/// The slot is made once every transaction running on the source has
/// ended (its snapshot must be consistent): one left open makes the
/// server keep quiet until the answer limit.
fn slot_error(client: &ReplClient, e: &crate::pg::replication::ReplError) -> Error {
    let mut err = client.error(e);
    if matches!(e, crate::pg::replication::ReplError::NoAnswer { .. }) {
        err.hint = Some("creating a logical slot waits for every transaction running on the source to end: look for an old one in pg_stat_activity (state 'idle in transaction', a long query, or a prepared transaction in pg_prepared_xacts), end it, and run migrate start again".into());
    }
    err
}

/// A session for one copy job, whose COPY may take as long as it takes.
async fn open(config: &crate::pg::conninfo::ConnConfig, timeout: Duration) -> Result<Client> {
    crate::pg::connect_client_with(config, Some(timeout), COPY_ANSWER_LIMIT)
        .await
        .map(|(c, _)| c)
        .map_err(|f| f.error)
}

/// The logical replication connection to the source database, made as
/// pgrepctl's own sessions are (same conninfo, password, OS user).
fn repl_client(env: &Env) -> Result<ReplClient> {
    let sides = &env.sides;
    let password = sides
        .source
        .get_password()
        .map(|p| crate::secret::Secret::new(String::from_utf8_lossy(p).into_owned()));
    Ok(ReplClient::new(
        crate::tools::RunAs::peer_of(&sides.source),
        super::without_password(&sides.source_conninfo),
        password,
        None,
        env.timeout,
    )?
    .logical(&sides.dbname))
}

/// The tables by size on the source, largest first: the longest copy
/// starts first, so the jobs end close together.
async fn largest_first(src: &Client, tables: &[Table]) -> Result<VecDeque<Table>> {
    let mut sized = vec![];
    for t in tables {
        let row = src
            .query_one("SELECT pg_table_size($1::text::regclass)", &[&t.sql()])
            .await
            .map_err(|e| query_error("the source", &e))?;
        sized.push((row.get::<_, i64>(0), t.clone()));
    }
    sized.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    Ok(sized.into_iter().map(|(_, t)| t).collect())
}

/// One table, streamed from the source's COPY into the target's, by
/// column name (a target table made by hand may order them otherwise;
/// generated columns are computed again by the target).
async fn copy_table(
    src: &Client,
    dst: &Client,
    t: &Table,
    generated: bool,
    freeze: bool,
) -> Result<u64> {
    let cols = columns(src, t, generated).await?;
    if !freeze {
        return pipe(src, dst, t, &cols, "").await;
    }
    dst.batch_execute(&format!("BEGIN; TRUNCATE {}", t.sql()))
        .await
        .map_err(|e| copy_error("the target", t, &e))?;
    let rows = pipe(src, dst, t, &cols, " (FREEZE)").await?;
    dst.batch_execute("COMMIT")
        .await
        .map_err(|e| copy_error("the target", t, &e))?;
    Ok(rows)
}

/// `COPY t (cols) TO STDOUT` on the source into `COPY t (cols) FROM
/// STDIN{options}` on the target.
async fn pipe(src: &Client, dst: &Client, t: &Table, cols: &str, options: &str) -> Result<u64> {
    use futures_util::SinkExt;
    let out = src
        .copy_out(&format!("COPY {} ({cols}) TO STDOUT", t.sql()))
        .await
        .map_err(|e| copy_error("the source", t, &e))?;
    let sink = dst
        .copy_in::<_, bytes::Bytes>(&format!("COPY {} ({cols}) FROM STDIN{options}", t.sql()))
        .await
        .map_err(|e| copy_error("the target", t, &e))?;
    futures_util::pin_mut!(sink);
    let mut out = std::pin::pin!(out);
    sink.send_all(&mut out)
        .await
        .map_err(|e| copy_error("the source or the target", t, &e))?;
    sink.as_mut()
        .finish()
        .await
        .map_err(|e| copy_error("the target", t, &e))
}

fn copy_error(side: &str, t: &Table, e: &tokio_postgres::Error) -> Error {
    let mut err = query_error(side, e);
    err.message = format!("copying {t}: {}", err.message);
    err.hint = Some("run migrate start again: it drops the slot, empties the tables and copies them again (or migrate abort --drop-schema)".into());
    err
}

/// The columns COPY moves, quoted, in the source's order: not dropped,
/// not generated (`generated`: the source has generated columns, 12+;
/// COPY refuses to fill them).
async fn columns(src: &Client, t: &Table, generated: bool) -> Result<String> {
    let q = format!(
        "SELECT quote_ident(attname) FROM pg_attribute \
         WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped{} \
         ORDER BY attnum",
        if generated {
            " AND attgenerated = ''"
        } else {
            ""
        }
    );
    let rows = src
        .query(&q, &[&t.sql()])
        .await
        .map_err(|e| query_error("the source", &e))?;
    if rows.is_empty() {
        return Err(Error::new(
            Code::Internal,
            format!("{t} has no column to copy"),
        ));
    }
    Ok(rows
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join(", "))
}

fn truncate_sql(tables: &[Table]) -> String {
    format!(
        "TRUNCATE {}",
        tables.iter().map(Table::sql).collect::<Vec<_>>().join(", ")
    )
}

/// A copy that did not finish, or a later step that failed: the slot
/// goes (its snapshot cannot be had again) and the tables are emptied,
/// so the next start copies them from a new one.
struct UndoCopy {
    slot: String,
    tables: Vec<Table>,
}

impl Undo<Env> for UndoCopy {
    fn undo<'s>(self: Box<Self>, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<()>> {
        Box::pin(async move {
            DropSlot { name: self.slot }.apply(cx).await?;
            if !self.tables.is_empty() {
                exec(&mut cx.env, Side::Target, &truncate_sql(&self.tables)).await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_names_every_table_once() {
        let t = |n: &str| Table {
            schema: "public".into(),
            name: n.into(),
        };
        assert_eq!(
            truncate_sql(&[t("a"), t("B")]),
            "TRUNCATE \"public\".\"a\", \"public\".\"B\""
        );
    }
}
