//! The schema's steps, through the target major's pg_dump (a newer
//! pg_dump reads older servers; the reverse is refused) and psql: start
//! loads the source database's schema into the target, abort
//! `--drop-schema` drops it again. Both run in one transaction on the
//! target: all of it or nothing, so a rerun can tell from the target's
//! catalog where it stands.

use super::Sides;
use super::inspect::Table;
use super::steps::Env;
use crate::error::{Code, Error, Result};
use crate::plan::{Action, Applied, Cx, change};
use crate::report::{Change, Kind};
use crate::tools::{BinDir, RunAs};
use futures_util::future::LocalBoxFuture;

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

/// pg_dump's arguments for the schema of `tables` (pg_dump -t), or of
/// the whole database; one section, or all of them.
fn dump_args(
    section: Option<Section>,
    extra: &[&str],
    tables: Option<&[Table]>,
    conninfo: &str,
) -> Vec<String> {
    // --schema-only as well: no large objects (start says they do not
    // move) and no materialized view data in post-data.
    let mut a: Vec<String> = ["--schema-only"]
        .into_iter()
        .chain(section.map(Section::flag))
        .chain([
            "--no-publications",
            "--no-subscriptions",
            "--no-owner",
            "--no-privileges",
        ])
        .chain(extra.iter().copied())
        .map(String::from)
        .collect();
    for t in tables.into_iter().flatten() {
        a.push("-t".into());
        a.push(pattern(t));
    }
    a.push("-d".into());
    a.push(conninfo.to_string());
    a
}

/// A pg_dump -t pattern that matches exactly this table: each part in
/// double quotes, which also turns off the pattern characters.
fn pattern(t: &Table) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    format!("{}.{}", q(&t.schema), q(&t.name))
}

/// pg_dump against the source and psql against the target database (in
/// one transaction, stopping at the first error), each with the password
/// pgrepctl holds for its side.
fn dump_and_psql(
    bindir: &BinDir,
    sides: &Sides,
    dump: Vec<String>,
) -> (duct::Expression, duct::Expression) {
    // As root, a socket is reached as its owner (peer), as pgrepctl's
    // own sessions reach it.
    let dump = with_password(
        RunAs::peer_of(&sides.source).cmd(bindir.tool("pg_dump"), dump),
        sides.source.get_password(),
    );
    let psql = with_password(
        RunAs::peer_of(&sides.target).cmd(
            bindir.tool("psql"),
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
    (dump, psql)
}

fn preflight(bindir: &BinDir) -> Result<()> {
    for tool in ["pg_dump", "psql"] {
        if !bindir.tool(tool).exists() {
            return Err(Error::new(
                Code::ToolNotFound,
                format!("no {tool} in {}", bindir.path.display()),
            )
            .hint(format!(
                "install the PostgreSQL {} client programs, or give their directory with --bindir",
                bindir.major
            )));
        }
    }
    Ok(())
}

/// "the source database's schema", or "the schema of t1, t2".
fn what(tables: Option<&[Table]>) -> String {
    match tables {
        None => "the source database's schema".to_string(),
        Some(t) => format!(
            "the schema of {}",
            t.iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A part of the source database's schema, loaded into the target (a
/// rerun of start knows it is there from the tables, and for post-data
/// from whether the tables have any index).
pub struct LoadSchema {
    pub bindir: BinDir,
    /// Only these tables (pg_dump -t), or the whole database.
    pub tables: Option<Vec<Table>>,
    pub section: Section,
}

impl Action<Env> for LoadSchema {
    fn describe(&self) -> Option<Change> {
        let part = match self.section {
            Section::PreData => "tables and types",
            Section::PostData => "primary keys, indexes and constraints",
        };
        Some(change(
            Kind::Sql,
            format!(
                "on the target: {} ({part}), from pg_dump {} --no-owner --no-privileges (PostgreSQL {}), in one transaction",
                what(self.tables.as_deref()),
                self.section.flag(),
                self.bindir.major
            ),
        ))
    }

    fn preflight(&self) -> Result<()> {
        preflight(&self.bindir)
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let sides = &cx.env.sides;
            let args = dump_args(
                Some(self.section),
                &[],
                self.tables.as_deref(),
                &sides.source_conninfo,
            );
            let (dump, load) = dump_and_psql(&self.bindir, sides, args);
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

/// abort `--drop-schema`: what start loaded, dropped from the target
/// database by the statements `pg_dump --clean --if-exists` writes for
/// the same selection (every object of the source's schema, in the
/// order their dependencies need: constraints and indexes, views,
/// tables, sequences, functions, types, extensions, schemas), without
/// the CREATE statements that follow them. Each is IF EXISTS, so what
/// start never got to load is passed over; none cascades, so an object
/// the target gained since (a view on a copied table) makes the drop
/// fail and change nothing, rather than go with it.
pub struct DropSchema {
    pub bindir: BinDir,
    /// The publication's tables (pg_dump -t), or the whole database.
    pub tables: Option<Vec<Table>>,
}

impl Action<Env> for DropSchema {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Sql,
            format!(
                "on the target: drop {} (the DROP statements of pg_dump --schema-only --clean --if-exists, PostgreSQL {}), in one transaction",
                what(self.tables.as_deref()),
                self.bindir.major
            ),
        ))
    }

    fn preflight(&self) -> Result<()> {
        preflight(&self.bindir)
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let sides = &cx.env.sides;
            let args = dump_args(
                None,
                &["--clean", "--if-exists"],
                self.tables.as_deref(),
                &sides.source_conninfo,
            );
            let (dump, psql) = dump_and_psql(&self.bindir, sides, args);
            cx.printer
                .step("dropping the copied schema (pg_dump --clean --if-exists | psql)");
            let script = crate::tools::run(dump, "pg_dump --schema-only --clean")?;
            let drops = drop_statements(&script);
            crate::tools::run(psql.stdin_bytes(drops), "psql (the DROP statements)").map_err(|mut e| {
                e.hint = Some(format!(
                    "nothing of the schema was dropped (one transaction); when an object made on the target since depends on the copied ones (\"other objects depend on it\"), drop or move it, then run abort --drop-schema again (the publication {} on the source still marks the migration)",
                    sides.names.publication
                ));
                e
            })?;
            Ok(Applied::changed())
        })
    }
}

/// The part of a plain `pg_dump --clean` script before its first
/// object: the session settings (search_path '' among them: every name
/// is qualified) and the DROP statements. The objects' CREATE
/// statements each start under a `-- Name: …` comment, which no DROP
/// statement holds. (An identifier holding such a line would end the
/// script early, mid-statement: psql then fails on it and the
/// transaction drops nothing.)
pub fn drop_statements(script: &str) -> String {
    let end = script
        .find("\n--\n-- Name: ")
        .map_or(script.len(), |i| i + 1);
    script[..end].to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_statements_stop_before_the_first_object() {
        let script = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\n\
            SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n\n\
            ALTER TABLE IF EXISTS ONLY public.orders DROP CONSTRAINT IF EXISTS orders_customer_fkey;\n\
            DROP TABLE IF EXISTS public.orders;\nDROP TYPE IF EXISTS public.mood;\n\
            DROP SCHEMA IF EXISTS app;\n--\n-- Name: app; Type: SCHEMA; Schema: -; Owner: -\n--\n\n\
            CREATE SCHEMA app;\n\n\n--\n-- Name: mood; Type: TYPE; Schema: public; Owner: -\n--\n";
        let d = drop_statements(script);
        assert!(d.ends_with("DROP SCHEMA IF EXISTS app;\n"), "{d}");
        assert!(d.contains("SELECT pg_catalog.set_config('search_path', '', false);"));
        assert!(d.contains("DROP TYPE IF EXISTS public.mood;"));
        assert!(!d.contains("CREATE"), "{d}");
        // An empty schema: settings only, the whole script.
        let empty = "SET lock_timeout = 0;\n\n--\n-- PostgreSQL database dump complete\n--\n";
        assert_eq!(drop_statements(empty), empty);
    }

    #[test]
    fn dump_args_select_tables_exactly() {
        let t = Table {
            schema: "app".into(),
            name: "We\"ird*".into(),
        };
        let a = dump_args(None, &["--clean"], Some(&[t][..]), "dbname=x");
        assert_eq!(
            a,
            [
                "--schema-only",
                "--no-publications",
                "--no-subscriptions",
                "--no-owner",
                "--no-privileges",
                "--clean",
                "-t",
                "\"app\".\"We\"\"ird*\"",
                "-d",
                "dbname=x"
            ]
        );
        let a = dump_args(Some(Section::PostData), &[], None, "dbname=x");
        assert_eq!(a[1], "--section=post-data");
    }
}
