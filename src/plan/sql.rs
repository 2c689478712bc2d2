//! Steps that talk SQL to the server: statements (with their undo),
//! `ALTER SYSTEM`, physical slots, and a reload.

use super::{Action, Applied, Cx, Undo, change};
use crate::error::{Code, Result};
use crate::pg::{query_error, sql};
use crate::report::{Change, Kind};
use crate::secret::Secret;
use futures_util::future::LocalBoxFuture;

/// Where a statement takes a password: a NUL, which no identifier can hold.
pub const PASSWORD_HERE: &str = "\0";

/// A statement; `sql` may hold a password verifier, `shown` never does.
pub struct Statement {
    pub shown: String,
    pub sql: Secret,
    pub undo: Option<Secret>,
}

impl Statement {
    pub fn new(sql: String, undo: Option<String>) -> Statement {
        Statement {
            shown: sql.clone(),
            sql: Secret::new(sql),
            undo: undo.map(Secret::new),
        }
    }

    /// A statement with [`PASSWORD_HERE`] where the SCRAM verifier goes;
    /// reports show `<redacted>` there instead.
    pub fn with_password(statement: &str, verifier: &str, undo: Option<Secret>) -> Statement {
        Statement {
            shown: statement.replace(PASSWORD_HERE, crate::secret::REDACTED),
            sql: Secret::new(statement.replace(PASSWORD_HERE, &sql::literal(verifier))),
            undo,
        }
    }
}

/// Runs a statement while undoing.
struct UndoSql(Secret);

impl<E> Undo<E> for UndoSql {
    fn undo<'s>(self: Box<Self>, cx: &'s mut Cx<E>) -> LocalBoxFuture<'s, Result<()>> {
        Box::pin(async move {
            let s = cx.session()?;
            s.client
                .batch_execute(self.0.expose())
                .await
                .map_err(|e| query_error(&s.target, &e))
        })
    }
}

impl<E: 'static> Action<E> for Statement {
    fn describe(&self) -> Option<Change> {
        Some(change(Kind::Sql, self.shown.clone()))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<E>) -> LocalBoxFuture<'s, Result<Applied<E>>> {
        Box::pin(async move {
            cx.printer.sql(&self.shown);
            let s = cx.session()?;
            s.client
                .batch_execute(self.sql.expose())
                .await
                .map_err(|e| query_error(&s.target, &e))?;
            let mut a = Applied::changed();
            if let Some(u) = &self.undo {
                a = a.undo(UndoSql(u.clone()));
            }
            Ok(a)
        })
    }
}

/// A setting whose live line is in postgresql.auto.conf.
pub struct AlterSystem {
    pub name: String,
    pub value: String,
    pub old: String,
}

impl<E: 'static> Action<E> for AlterSystem {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Sql,
            format!(
                "ALTER SYSTEM SET {} = {} (was {}; the live value comes from postgresql.auto.conf)",
                self.name,
                sql::literal(&self.value),
                self.old
            ),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<E>) -> LocalBoxFuture<'s, Result<Applied<E>>> {
        Box::pin(async move {
            let printer = cx.printer;
            let s = cx.session()?;
            let t = s.target.clone();
            if self.name.contains('.') {
                // A custom setting (pgrepctl.*): before 17, ALTER SYSTEM
                // knows it only once the session has a placeholder.
                s.client
                    .query(
                        "SELECT set_config($1, $2, false)",
                        &[&self.name, &self.value],
                    )
                    .await
                    .map_err(|e| query_error(&t, &e))?;
            }
            // The undo puts postgresql.auto.conf back as it was: the
            // value it held, or no line at all (RESET) — not the live
            // value, which may come from postgresql.conf.
            let before: Option<String> = s
                .client
                .query_opt(
                    "SELECT setting FROM pg_file_settings \
                     WHERE name = $1 AND sourcefile LIKE '%/postgresql.auto.conf' \
                     ORDER BY seqno DESC LIMIT 1",
                    &[&self.name],
                )
                .await
                .map_err(|e| query_error(&t, &e))?
                .map(|r| r.get(0));
            let undo = match before {
                Some(v) => format!("ALTER SYSTEM SET {} = {}", self.name, sql::literal(&v)),
                None => format!("ALTER SYSTEM RESET {}", self.name),
            };
            let stmt = format!(
                "ALTER SYSTEM SET {} = {}",
                self.name,
                sql::literal(&self.value)
            );
            printer.sql(&stmt);
            s.client.batch_execute(&stmt).await.map_err(|e| {
                let mut err = query_error(&t, &e);
                err.code = Code::ConfigRejected;
                err
            })?;
            Ok(Applied::changed().undo(UndoSql(Secret::new(undo))))
        })
    }
}

/// A physical replication slot that keeps WAL from now on.
pub struct CreateSlot {
    pub name: String,
}

impl CreateSlot {
    const SQL: &str = "SELECT pg_create_physical_replication_slot($1, true)";
}

impl<E: 'static> Action<E> for CreateSlot {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Sql,
            Self::SQL.replace("$1", &sql::literal(&self.name)),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<E>) -> LocalBoxFuture<'s, Result<Applied<E>>> {
        Box::pin(async move {
            cx.printer
                .sql(Self::SQL.replace("$1", &sql::literal(&self.name)));
            let s = cx.session()?;
            s.client
                .query(Self::SQL, &[&self.name])
                .await
                .map_err(|e| query_error(&s.target, &e))?;
            Ok(Applied::changed().undo(UndoSql(Secret::new(format!(
                "SELECT pg_drop_replication_slot({})",
                sql::literal(&self.name)
            )))))
        })
    }
}

/// `pg_reload_conf()`. Its undo reloads again once everything else is
/// undone (the files are back by then).
pub struct Reload;

struct ReloadAgain;

impl<E> Undo<E> for ReloadAgain {
    fn undo<'s>(self: Box<Self>, cx: &'s mut Cx<E>) -> LocalBoxFuture<'s, Result<()>> {
        Box::pin(async move {
            let s = cx.session()?;
            s.client
                .query("SELECT pg_reload_conf()", &[])
                .await
                .map(|_| ())
                .map_err(|e| query_error(&s.target, &e))
        })
    }

    fn last(&self) -> bool {
        true
    }
}

impl<E: 'static> Action<E> for Reload {
    fn describe(&self) -> Option<Change> {
        Some(change(Kind::Service, "reload"))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<E>) -> LocalBoxFuture<'s, Result<Applied<E>>> {
        Box::pin(async move {
            cx.printer.sql("SELECT pg_reload_conf()");
            let s = cx.session()?;
            s.client
                .query("SELECT pg_reload_conf()", &[])
                .await
                .map_err(|e| {
                    let mut err = query_error(&s.target, &e);
                    err.code = Code::ReloadFailed;
                    err
                })?;
            cx.printer.info("reloaded the server configuration");
            Ok(Applied::changed().undo(ReloadAgain))
        })
    }
}
