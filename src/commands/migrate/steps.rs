//! The engine steps of start and abort: SQL on one side or the other
//! (sessions opened when a step first needs them: the target database may
//! not exist before a step creates it). The schema's steps, through
//! pg_dump and psql, are in [`super::schema`].

use super::Sides;
use super::inspect;
use crate::error::{Code, Error, Result};
use crate::pg::{Session, query_error};
use crate::plan::{Action, Applied, Cx, Undo, change};
use crate::report::{Change, Kind};
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
