//! The engine steps of start and abort: SQL on one side or the other
//! (sessions opened when a step first needs them: the target database may
//! not exist before a step creates it), and the schema copy through the
//! target major's pg_dump and psql.

use super::Sides;
use super::inspect::{self, Table};
use crate::error::{Code, Error, Result};
use crate::pg::{Session, query_error};
use crate::plan::{Action, Applied, Cx, Undo, change};
use crate::report::{Change, Kind};
use crate::tools::BinDir;
use crate::tools::RunAs;
use futures_util::future::LocalBoxFuture;
use std::time::Duration;

/// Where a statement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The source database.
    Source,
    /// The target database.
    Target,
    /// The target server's `postgres` database (CREATE/DROP DATABASE).
    TargetAdmin,
}

impl Side {
    fn label(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target | Side::TargetAdmin => "target",
        }
    }
}

/// What the steps of a migration subcommand read.
pub struct Env {
    pub sides: Sides,
    pub timeout: Duration,
    pub source: Option<Session>,
    pub target: Option<Session>,
    pub admin: Option<Session>,
    /// What cutover's steps learn and need (None for the other subcommands).
    pub cutover: Option<super::cutover::State>,
}

impl Env {
    pub fn new(sides: Sides, timeout: Duration) -> Env {
        Env {
            sides,
            timeout,
            source: None,
            target: None,
            admin: None,
            cutover: None,
        }
    }

    /// The session of `side`, connected on first use.
    pub async fn session(&mut self, side: Side) -> Result<&Session> {
        let (slot, sides, t) = match side {
            Side::Source => (&mut self.source, &self.sides, self.timeout),
            Side::Target => (&mut self.target, &self.sides, self.timeout),
            Side::TargetAdmin => (&mut self.admin, &self.sides, self.timeout),
        };
        if slot.is_none() {
            *slot = Some(match side {
                Side::Source => inspect::source_session(sides, t).await?,
                Side::Target => inspect::target_session(sides, t).await?,
                Side::TargetAdmin => inspect::target_admin_session(sides, t).await?,
            });
        }
        Ok(slot.as_ref().expect("connected above"))
    }
}

pub async fn exec(env: &mut Env, side: Side, sql: &str) -> Result<()> {
    let s = env.session(side).await?;
    s.client
        .batch_execute(sql)
        .await
        .map_err(|e| query_error(&s.target, &e))
}

/// One statement on one side, with the statement that takes it back.
pub struct Sql {
    pub side: Side,
    pub sql: String,
    pub undo: Option<String>,
}

impl Sql {
    pub fn new(side: Side, sql: impl Into<String>, undo: Option<String>) -> Sql {
        Sql {
            side,
            sql: sql.into(),
            undo,
        }
    }
}

struct UndoSql(Side, String);

impl Undo<Env> for UndoSql {
    fn undo<'s>(self: Box<Self>, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<()>> {
        Box::pin(async move {
            if self.0 == Side::TargetAdmin && self.1.starts_with("DROP DATABASE") {
                // A database cannot be dropped while we are connected to it.
                cx.env.target = None;
            }
            exec(&mut cx.env, self.0, &self.1).await
        })
    }
}

impl Action<Env> for Sql {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Sql,
            format!("on the {}: {}", self.side.label(), self.sql),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            cx.printer.sql(&self.sql);
            exec(&mut cx.env, self.side, &self.sql).await?;
            let mut a = Applied::changed();
            if let Some(u) = &self.undo {
                a = a.undo(UndoSql(self.side, u.clone()));
            }
            Ok(a)
        })
    }
}

/// Drop a replication slot on the source, ending the walsender that holds
/// it first (a subscription dropped a moment ago may still be letting go).
pub struct DropSlot {
    pub name: String,
}

impl Action<Env> for DropSlot {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Sql,
            format!(
                "on the source: SELECT pg_drop_replication_slot({})",
                crate::pg::sql::literal(&self.name)
            ),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let s = cx.env.session(Side::Source).await?;
                let row = s
                    .client
                    .query_opt(
                        "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1",
                        &[&self.name],
                    )
                    .await
                    .map_err(|e| query_error(&s.target, &e))?;
                let Some(row) = row else {
                    return Ok(Applied::unchanged());
                };
                let pid: Option<i32> = row.get(0);
                if let Some(pid) = pid {
                    s.client
                        .query("SELECT pg_terminate_backend($1)", &[&pid])
                        .await
                        .map_err(|e| query_error(&s.target, &e))?;
                } else {
                    cx.printer.sql(format!(
                        "SELECT pg_drop_replication_slot({})",
                        crate::pg::sql::literal(&self.name)
                    ));
                    let r = s
                        .client
                        .query("SELECT pg_drop_replication_slot($1)", &[&self.name])
                        .await;
                    match r {
                        Ok(_) => return Ok(Applied::changed()),
                        // Taken again in between (SQLSTATE 55006): retry.
                        Err(e) if tokio::time::Instant::now() < deadline => {
                            cx.printer.debug(format!("slot busy: {e}"));
                        }
                        Err(e) => return Err(query_error(&s.target, &e)),
                    }
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(Error::new(
                        Code::Timeout,
                        format!("the slot {} on the source stayed in use", self.name),
                    )
                    .hint("look at pg_replication_slots.active_pid on the source, end that process, and run abort again"));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    }
}

/// Which part of the schema a [`LoadSchema`] copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Types, functions, tables, sequences: what the copy fills.
    PreData,
    /// Primary keys, indexes, constraints, triggers, rules: built once
    /// the rows are in, as pg_restore does (an index built over the
    /// data is much cheaper than one maintained row by row).
    PostData,
}

impl Section {
    fn flag(self) -> &'static str {
        match self {
            Section::PreData => "--section=pre-data",
            Section::PostData => "--section=post-data",
        }
    }
}

/// A part of the source database's schema, dumped by the target major's
/// pg_dump (a newer pg_dump reads older servers; the reverse is refused)
/// and loaded by its psql in one transaction: all of it or nothing, so a
/// rerun can tell from the target's catalog whether it is there
/// (post-data: whether the tables have any index).
pub struct LoadSchema {
    pub bindir: BinDir,
    /// Only these tables (pg_dump -t), or the whole database.
    pub tables: Option<Vec<Table>>,
    pub section: Section,
}

impl LoadSchema {
    fn dump_args(&self, conninfo: &str) -> Vec<String> {
        // --schema-only as well: no large objects (start says they do
        // not move) and no materialized view data in post-data.
        let mut a: Vec<String> = [
            "--schema-only",
            self.section.flag(),
            "--no-publications",
            "--no-subscriptions",
            "--no-owner",
            "--no-privileges",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for t in self.tables.iter().flatten() {
            a.push("-t".into());
            a.push(pattern(t));
        }
        a.push("-d".into());
        a.push(conninfo.to_string());
        a
    }
}

/// A pg_dump -t pattern that matches exactly this table: each part in
/// double quotes, which also turns off the pattern characters.
fn pattern(t: &Table) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    format!("{}.{}", q(&t.schema), q(&t.name))
}

impl Action<Env> for LoadSchema {
    fn describe(&self) -> Option<Change> {
        let what = match &self.tables {
            None => "the source database's schema".to_string(),
            Some(t) => format!(
                "the schema of {}",
                t.iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let part = match self.section {
            Section::PreData => "tables and types",
            Section::PostData => "primary keys, indexes and constraints",
        };
        Some(change(
            Kind::Sql,
            format!(
                "on the target: {what} ({part}), from pg_dump {} --no-owner --no-privileges (PostgreSQL {}), in one transaction",
                self.section.flag(),
                self.bindir.major
            ),
        ))
    }

    fn preflight(&self) -> Result<()> {
        for tool in ["pg_dump", "psql"] {
            if !self.bindir.tool(tool).exists() {
                return Err(Error::new(
                    Code::ToolNotFound,
                    format!("no {tool} in {}", self.bindir.path.display()),
                )
                .hint(format!(
                    "install the PostgreSQL {} client programs, or give their directory with --bindir",
                    self.bindir.major
                )));
            }
        }
        Ok(())
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let sides = &cx.env.sides;
            // As root, a socket is reached as its owner (peer), as
            // pgrepctl's own sessions reach it.
            let dump = with_password(
                RunAs::peer_of(&sides.source).cmd(
                    self.bindir.tool("pg_dump"),
                    self.dump_args(&sides.source_conninfo),
                ),
                sides.source.get_password(),
            );
            let load = with_password(
                RunAs::peer_of(&sides.target).cmd(
                    self.bindir.tool("psql"),
                    [
                        "-X",
                        "-q",
                        "-v",
                        "ON_ERROR_STOP=1",
                        "--single-transaction",
                        "-d",
                        &target_conninfo(sides),
                    ],
                ),
                sides.target.get_password(),
            );
            let load = match self.section {
                Section::PreData => load,
                Section::PostData => load.env("PGOPTIONS", post_data_options()),
            };
            let what = format!("pg_dump {} | psql", self.section.flag());
            cx.printer.step(format!("copying the schema ({what})"));
            crate::tools::run(dump.pipe(load), &what)?;
            Ok(Applied::changed())
        })
    }
}

/// The post-data session's settings, before the user's PGOPTIONS (a
/// later `-c` wins, so a DBA's own maintenance_work_mem is kept): the
/// primary keys and indexes are built over all the rows at once, and a
/// sort that fits in memory (PostgreSQL's default maintenance_work_mem
/// is 64MB, which spills a few million keys to disk) is the difference;
/// the memory is taken only as far as a sort needs it, for this one
/// session (shared among its parallel workers).
fn post_data_options() -> String {
    let mine = "-c maintenance_work_mem=512MB -c synchronous_commit=off";
    match std::env::var("PGOPTIONS") {
        Ok(user) if !user.trim().is_empty() => format!("{mine} {user}"),
        _ => mine.to_string(),
    }
}

/// A password pgrepctl holds (from a password file or PGPASSWORD) goes to
/// the child in its environment, never on its command line.
fn with_password(e: duct::Expression, pw: Option<&[u8]>) -> duct::Expression {
    match pw {
        Some(p) => e.env("PGPASSWORD", String::from_utf8_lossy(p).into_owned()),
        None => e,
    }
}

/// The --target string with the database set, for psql.
fn target_conninfo(sides: &Sides) -> String {
    // The password, if --target has one, goes in psql's environment.
    super::with_dbname(&super::without_password(&sides.target_given), &sides.dbname)
}
