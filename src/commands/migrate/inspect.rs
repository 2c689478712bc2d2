//! What the two servers say about a migration, read-only: the source
//! database (settings, tables and their replica identity, sequences,
//! large objects, extensions, the publication and slot), the target
//! (version, the database, the subscription, the tables start would
//! fill). Every subcommand decides from these facts.

use super::Sides;
use crate::error::{Code, Error, Result};
use crate::pg::{Session, conninfo::ConnConfig, query_error};
use std::time::Duration;

/// A table as `schema.table`, quoted for SQL by [`Table::sql`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Table {
    pub schema: String,
    pub name: String,
}

impl Table {
    pub fn sql(&self) -> String {
        format!(
            "{}.{}",
            crate::pg::sql::ident(&self.schema),
            crate::pg::sql::ident(&self.name)
        )
    }

    /// `schema.table` given on the command line (no quoting: names with a
    /// dot are not supported there).
    pub fn parse(s: &str) -> Result<Table> {
        match s.split_once('.') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains('.') => Ok(Table {
                schema: a.to_string(),
                name: b.to_string(),
            }),
            _ => Err(Error::new(
                Code::InvalidValue,
                format!("--table {s:?} is not SCHEMA.TABLE"),
            )
            .hint("name the schema too, e.g. --table public.orders")),
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// A table of the source database and what logical replication needs
/// from it.
#[derive(Debug, Clone)]
pub struct SourceTable {
    pub table: Table,
    /// UPDATE and DELETE can be replicated: a primary key, a replica
    /// identity index, or REPLICA IDENTITY FULL.
    pub identity: bool,
    pub unlogged: bool,
    /// Has an index (a primary key, a unique constraint, …): what
    /// post-data builds after the copy.
    pub indexed: bool,
}

/// Which server answered, whatever address reached it: a copy made by
/// pg_basebackup shares the system identifier but is another server
/// (started at another moment, with its own data directory or port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerId {
    pub system_id: String,
    /// pg_postmaster_start_time() in UTC (the same text whatever the
    /// session's TimeZone).
    pub started: String,
    pub port: String,
    /// None when the role may not read it (not pg_read_all_settings).
    pub data_directory: Option<String>,
}

impl ServerId {
    pub async fn of(s: &Session) -> Option<ServerId> {
        let row = s
            .client
            .query_one(
                "SELECT (SELECT system_identifier::text FROM pg_control_system()), \
                 to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC', \
                   'YYYY-MM-DD HH24:MI:SS.US') || ' UTC', current_setting('port'), \
                 CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE') \
                   THEN current_setting('data_directory') END",
                &[],
            )
            .await
            .ok()?;
        Some(ServerId {
            system_id: row.get(0),
            started: row.get(1),
            port: row.get(2),
            data_directory: row.get(3),
        })
    }
}

/// --source and --target reaching one server (by the same string, or by
/// two of its addresses): the database would subscribe to itself, and
/// its apply worker fail on every row. A copy made by pg_basebackup has
/// the same system identifier but is another server. `hint` says what to
/// do from where the caller stands.
pub fn same_server(
    dbname: &str,
    source: Option<&ServerId>,
    target: Option<&ServerId>,
    hint: &str,
) -> Result<()> {
    let (Some(a), Some(b)) = (source, target) else {
        return Ok(());
    };
    if a != b {
        return Ok(());
    }
    Err(Error::new(
        Code::ConflictingFlags,
        format!(
            "--source and --target are the same server (system identifier {}, port {}, data directory {}, started {}): the database {dbname} would subscribe to itself",
            a.system_id,
            a.port,
            a.data_directory.as_deref().unwrap_or("unknown"),
            a.started,
        ),
    )
    .hint(hint))
}

#[derive(Debug, Clone)]
pub struct Source {
    pub version_num: u32,
    pub superuser: bool,
    pub wal_level: String,
    /// Debian's clusters are named "15/main": the restart a hint names.
    pub cluster_name: String,
    pub free_slots: i64,
    pub free_senders: i64,
    pub tables: Vec<SourceTable>,
    pub sequences: Vec<Table>,
    pub large_objects: i64,
    pub encoding: String,
    pub extensions: Vec<String>,
    pub publication: bool,
    /// The slot, and whether a walsender uses it now.
    pub slot: Option<bool>,
    /// None: not readable.
    pub server: Option<ServerId>,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub version_num: u32,
    pub superuser: bool,
    pub database: bool,
    /// pg_available_extensions, or why it could not be read (a control
    /// file the server cannot parse makes the whole view fail).
    pub available_extensions: std::result::Result<Vec<String>, String>,
    /// The subscription, and whether it is enabled.
    pub subscription: Option<bool>,
    /// The tables (of those start would fill) that exist there, and
    /// whether each holds rows.
    pub tables: Vec<(Table, bool)>,
    /// Whether any of those tables has an index (post-data is loaded
    /// after the copy in one transaction: none means not loaded yet).
    pub indexed: bool,
    /// pg_control_system()'s system identifier (None: not readable),
    /// which start records in the publication's comment: abort then
    /// knows a migration to another server from one to this.
    pub system_id: Option<String>,
    /// None: not readable.
    pub server: Option<ServerId>,
}

/// pgrepctl's session with the source database.
///
/// Writable even when a cutover made the database read-only (a rerun, or
/// an abort, after a cutover that was killed must still change things).
pub async fn source_session(sides: &Sides, timeout: Duration) -> Result<Session> {
    let s = crate::pg::connect(&sides.source, Some(timeout))
        .await
        .map_err(|e| no_database(e, &sides.dbname))?;
    s.client
        .batch_execute("SET default_transaction_read_only = off")
        .await
        .map_err(|e| query_error(&s.target, &e))?;
    Ok(s)
}

/// A connection refused because the database does not exist (SQLSTATE
/// 3D000) gets a hint that names migrate's own flag, --dbname.
pub fn no_database(e: Error, dbname: &str) -> Error {
    if e.sqlstate() != Some("3D000") {
        return e;
    }
    e.hint(format!(
        "--dbname {dbname} names the database to move, which must exist on the source (psql -l there lists them); start creates it on the target"
    ))
}

/// A session with the target server's `postgres` database: for what
/// exists before the migrated database does (CREATE DATABASE, versions).
pub async fn target_admin_session(sides: &Sides, timeout: Duration) -> Result<Session> {
    let mut c: ConnConfig = sides.target.clone();
    c.dbname("postgres");
    crate::pg::connect(&c, Some(timeout)).await
}

pub async fn target_session(sides: &Sides, timeout: Duration) -> Result<Session> {
    crate::pg::connect(&sides.target, Some(timeout))
        .await
        .map_err(|e| no_database(e, &sides.dbname))
}

async fn one<T: for<'a> tokio_postgres::types::FromSql<'a>>(
    s: &Session,
    q: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<T> {
    let row = s
        .client
        .query_one(q, params)
        .await
        .map_err(|e| query_error(&s.target, &e))?;
    Ok(row.get(0))
}

pub async fn superuser(s: &Session) -> Result<bool> {
    one(
        s,
        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
        &[],
    )
    .await
}

const TABLES: &str = "SELECT n.nspname::text, c.relname::text, \
     c.relreplident = 'f' \
       OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)) \
       OR (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)), \
     c.relpersistence = 'u', \
     EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid) \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
       AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                       AND d.objid = c.oid AND d.deptype = 'e') \
     ORDER BY 1, 2";

pub async fn source(s: &Session, sides: &Sides) -> Result<Source> {
    let q = |e: tokio_postgres::Error| query_error(&s.target, &e);
    let settings = s
        .client
        .query_one(
            "SELECT current_setting('wal_level'), \
             current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)::int, \
             current_setting('max_wal_senders')::int - (SELECT count(*) FROM pg_stat_replication)::int, \
             (SELECT count(*) FROM pg_largeobject_metadata), \
             (SELECT pg_encoding_to_char(encoding)::text FROM pg_database WHERE datname = current_database()), \
             current_setting('cluster_name')",
            &[],
        )
        .await
        .map_err(q)?;
    let tables = s
        .client
        .query(TABLES, &[])
        .await
        .map_err(q)?
        .into_iter()
        .map(|r| SourceTable {
            table: Table {
                schema: r.get(0),
                name: r.get(1),
            },
            identity: r.get(2),
            unlogged: r.get(3),
            indexed: r.get(4),
        })
        .collect();
    Ok(Source {
        version_num: s.version_num,
        superuser: superuser(s).await?,
        wal_level: settings.get(0),
        free_slots: settings.get::<_, i32>(1).into(),
        free_senders: settings.get::<_, i32>(2).into(),
        large_objects: settings.get(3),
        encoding: settings.get(4),
        cluster_name: settings.get(5),
        tables,
        sequences: sequences(s).await?,
        extensions: names(
            s,
            "SELECT extname::text FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1",
        )
        .await?,
        publication: publication_exists(s, &sides.names.publication).await?,
        slot: slot(s, &sides.names.slot).await?,
        server: ServerId::of(s).await,
    })
}

/// The tables start gave REPLICA IDENTITY FULL (the publication's
/// comment names them) that still have it: what abort and cutover put
/// back to DEFAULT. Empty without the publication.
pub async fn identity_to_revert(s: &Session, publication: &str) -> Result<Vec<Table>> {
    let comment = publication_comment(s, publication).await?;
    let mut out = vec![];
    for t in super::names::replica_identity_full(comment.as_deref()) {
        let full: Option<bool> = one(
            s,
            "SELECT (SELECT relreplident = 'f' FROM pg_class WHERE oid = to_regclass($1))",
            &[&t.sql()],
        )
        .await?;
        if full == Some(true) {
            out.push(t);
        }
    }
    Ok(out)
}

/// Whether the migration's publication is in the source database.
pub async fn publication_exists(s: &Session, publication: &str) -> Result<bool> {
    one(
        s,
        "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)",
        &[&publication],
    )
    .await
}

/// The comment on the migration's publication (None without one, or
/// without the publication): see [`super::names::publication_comment`].
pub async fn publication_comment(s: &Session, publication: &str) -> Result<Option<String>> {
    one(
        s,
        "SELECT (SELECT obj_description(oid, 'pg_publication') FROM pg_publication WHERE pubname = $1)",
        &[&publication],
    )
    .await
}

/// REPLICA IDENTITY DEFAULT for `tables`, then DROP PUBLICATION, as one
/// statement batch (one transaction): the comment that names the tables
/// goes only with the change it records. ALTER TABLE waits for the
/// table's readers, and while it waits every later query of the table
/// waits behind it: past 5 s it gives up (the run fails, a rerun tries
/// again) rather than stall the source's application.
pub fn drop_publication_sql(publication: &str, tables: &[Table]) -> String {
    let mut sql: Vec<String> = vec![];
    if !tables.is_empty() {
        sql.push("SELECT set_config('lock_timeout', '5s', true)".into());
    }
    sql.extend(
        tables
            .iter()
            .map(|t| format!("ALTER TABLE {} REPLICA IDENTITY DEFAULT", t.sql())),
    );
    sql.push(format!(
        "DROP PUBLICATION {}",
        crate::pg::sql::ident(publication)
    ));
    sql.join("; ")
}

/// Whether the session's database is read-only for every role: its own
/// `default_transaction_read_only = on` in pg_db_role_setting (setrole 0,
/// the database's oid), what cutover sets on the source and leaves there.
pub async fn database_read_only(s: &Session) -> Result<bool> {
    one(
        s,
        "SELECT EXISTS (SELECT 1 FROM pg_db_role_setting r \
         WHERE r.setrole = 0 \
         AND r.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND 'default_transaction_read_only=on' = ANY(r.setconfig))",
        &[],
    )
    .await
}

/// Whether the target database holds any of the source database's tables
/// (what a cutover leaves there, and an abort without --drop-schema).
pub async fn target_holds_source_tables(source: &Session, target: &Session) -> Result<bool> {
    let names: Vec<String> = source
        .client
        .query(TABLES, &[])
        .await
        .map_err(|e| query_error(&source.target, &e))?
        .iter()
        .map(|r| {
            Table {
                schema: r.get(0),
                name: r.get(1),
            }
            .sql()
        })
        .collect();
    one(
        target,
        "SELECT EXISTS (SELECT 1 FROM unnest($1::text[]) t WHERE to_regclass(t) IS NOT NULL)",
        &[&names],
    )
    .await
}

/// The migration's slot on the source, and whether it is in use.
pub async fn slot(s: &Session, name: &str) -> Result<Option<bool>> {
    let row = s
        .client
        .query_opt(
            "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
            &[&name],
        )
        .await
        .map_err(|e| query_error(&s.target, &e))?;
    Ok(row.map(|r| r.get(0)))
}

pub async fn sequences(s: &Session) -> Result<Vec<Table>> {
    tables(
        s,
        "SELECT n.nspname::text, c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
         ORDER BY 1, 2",
        &[],
    )
    .await
}

/// `(schema, name)` rows of a query, as [`Table`]s.
pub async fn tables(
    s: &Session,
    q: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Table>> {
    Ok(s.client
        .query(q, params)
        .await
        .map_err(|e| query_error(&s.target, &e))?
        .into_iter()
        .map(|r| Table {
            schema: r.get(0),
            name: r.get(1),
        })
        .collect())
}

async fn names(s: &Session, q: &str) -> Result<Vec<String>> {
    Ok(s.client
        .query(q, &[])
        .await
        .map_err(|e| query_error(&s.target, &e))?
        .into_iter()
        .map(|r| r.get(0))
        .collect())
}

/// The target server: `admin` is its `postgres` database; the migrated
/// database is opened when it exists, to look at the subscription and
/// the tables in `tables`.
pub async fn target(
    admin: &Session,
    sides: &Sides,
    tables: &[Table],
    timeout: Duration,
) -> Result<(Target, Option<Session>)> {
    let database: bool = one(
        admin,
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
        &[&sides.dbname],
    )
    .await?;
    let server = ServerId::of(admin).await;
    let mut t = Target {
        version_num: admin.version_num,
        superuser: superuser(admin).await?,
        database,
        available_extensions: names(
            admin,
            "SELECT name::text FROM pg_available_extensions ORDER BY 1",
        )
        .await
        .map_err(|e| e.message),
        subscription: None,
        tables: vec![],
        indexed: false,
        system_id: server.as_ref().map(|s| s.system_id.clone()),
        server,
    };
    if !database {
        return Ok((t, None));
    }
    let s = target_session(sides, timeout).await?;
    t.subscription = subscription(&s, &sides.names.subscription).await?;
    for table in tables {
        let exists: bool = one(&s, "SELECT to_regclass($1) IS NOT NULL", &[&table.sql()]).await?;
        if exists {
            let rows: bool = one(
                &s,
                &format!("SELECT EXISTS (SELECT 1 FROM {})", table.sql()),
                &[],
            )
            .await?;
            t.tables.push((table.clone(), rows));
            t.indexed |= one::<bool>(
                &s,
                "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = $1::text::regclass)",
                &[&table.sql()],
            )
            .await?;
        }
    }
    Ok((t, Some(s)))
}

/// The migration's subscription in the session's database, and whether
/// it is enabled.
pub async fn subscription(s: &Session, name: &str) -> Result<Option<bool>> {
    let row = s
        .client
        .query_opt(
            "SELECT subenabled FROM pg_subscription \
             WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[&name],
        )
        .await
        .map_err(|e| query_error(&s.target, &e))?;
    Ok(row.map(|r| r.get(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_database_names_the_dbname_flag() {
        let mut e = Error::new(
            Code::ConnectionFailed,
            "database \"nosuchdb\" does not exist",
        )
        .hint("name a database that exists on that server (psql -l lists them)");
        e.source = Some(Box::new(crate::error::Source {
            message: "database \"nosuchdb\" does not exist".into(),
            sqlstate: Some("3D000".into()),
            os_error: None,
            source: None,
        }));
        let hint = no_database(e, "nosuchdb").hint.unwrap();
        assert!(hint.starts_with("--dbname nosuchdb names"), "{hint}");
        // Another refusal keeps its own hint.
        let other = Error::new(Code::AuthenticationFailed, "no").hint("the password");
        assert_eq!(
            no_database(other, "x").hint.as_deref(),
            Some("the password")
        );
    }
}
