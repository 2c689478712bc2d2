//! `migrate start|status|cutover|abort`: move one database (or chosen
//! tables) to another server, across major versions, with PostgreSQL's
//! own logical replication — a publication on the source database, a
//! subscription on the target database, the subscription's slot on the
//! source. There is no state file: every subcommand finds the objects by
//! the names [`names`] derives from the database name, and reads where
//! the migration stands from the two servers.

mod abort;
mod copy;
mod cutover;
pub mod inspect;
pub mod names;
pub mod schema;
mod start;
mod status;
pub mod steps;

use crate::cli::flags::{DryRunFlag, FormatFlag, duration};
use crate::error::{Code, Error, Failure, Result};
use crate::health::Report;
use crate::pg::conninfo::ConnConfig;
use crate::report::{Outcome, Printer};
use std::time::Duration;

pub use names::Names;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Action {
    /// Preflight, copy the schema, publish on the source and subscribe on the target (initial copy, then streaming)
    ///
    /// Preflight, all of it before any change and what --dry-run prints:
    /// the source has wal_level = logical and a free replication slot and
    /// wal sender; every published table has a primary key or a replica
    /// identity (else they are listed and refused, unless
    /// --replica-identity-full); unlogged tables, large objects and
    /// sequences are reported (they do not move); the extensions the
    /// source database uses exist on the target; the target's tables are
    /// absent or empty; the target's major is at least the source's; the
    /// target is not the source server itself (the same system
    /// identifier, start time, port and data directory). Then
    /// the tables (pg_dump --section=pre-data of the target's major), a
    /// publication on the source, a logical slot whose exported snapshot
    /// --jobs sessions copy the tables at (COPY, largest first, into
    /// tables without keys or indexes), the primary keys, indexes and
    /// constraints (--section=post-data), and a subscription that streams
    /// the changes since the snapshot from that slot (copy_data = false).
    /// A migration already started changes nothing; a start killed during
    /// its copy is finished by the next one, which drops the slot (its
    /// snapshot is gone), empties the tables and copies them again.
    Start(StartArgs),
    /// Where a migration stands: per-table sync state, lag, WAL the slot retains, apply errors, schema drift (check's formats and exit codes)
    ///
    /// Exit status: 0 OK (every table streaming, lag under the
    /// thresholds; or the migration cut over: nothing of it left, the
    /// source database read-only, the target holding its tables), 1
    /// WARNING (copy in progress, lag above the warning threshold, schema
    /// drift), 2 CRITICAL (no subscription, a disabled subscription or
    /// apply errors, lag above the critical threshold, the source database
    /// read-only while the migration is there: a cutover stopped before
    /// its end), 3 UNKNOWN.
    Status(StatusArgs),
    /// Switch to the target: writes off on the source, wait until the target has everything, sequences, verify, drop the replication
    ///
    /// Refused unless every table is synchronized. The source database is
    /// made read-only (ALTER DATABASE … SET default_transaction_read_only),
    /// sessions between transactions are ended at once, those in a write
    /// transaction after --grace; the source's
    /// current LSN is noted and the subscription must confirm it within
    /// --max-wait, or writes are enabled again and nothing is switched.
    /// Sequences on the target are set to the source's values plus a
    /// margin, tables are verified (--verify), and the subscription,
    /// publication and slot are dropped. The source stays read-only.
    /// Run again once done, it confirms the cutover and changes nothing;
    /// killed past its commit point, it finishes what is left.
    Cutover(CutoverArgs),
    /// Drop what start created on both sides (subscription, slot, publication; the copied schema with --drop-schema), from any state
    Abort(AbortArgs),
}

/// The two servers and the database, which every subcommand takes.
#[derive(clap::Args, Debug, Clone)]
pub struct Endpoints {
    /// The source server as a superuser conninfo or URI, e.g. 'host=old.example user=postgres'; the target server connects to it with this same string, so name a host the target reaches (not localhost, unless both run on one host), and no password (see --source-passfile)
    #[arg(long, value_name = "CONNINFO")]
    pub source: String,
    /// The target server as a superuser conninfo or URI, e.g. 'host=new.example user=postgres'
    #[arg(long, value_name = "CONNINFO")]
    pub target: String,
    /// The database to move (same name on both servers; created on the target when absent)
    #[arg(long, value_name = "DB")]
    pub dbname: String,
}

#[derive(clap::Args, Debug, Clone)]
pub struct StartArgs {
    #[command(flatten)]
    pub endpoints: Endpoints,
    /// Move only this table, as SCHEMA.TABLE (repeatable) [default: every table of the database]
    #[arg(long = "table", value_name = "SCHEMA.TABLE")]
    pub tables: Vec<String>,
    /// A password file on the TARGET host, readable by its server's OS user, named in the subscription's connection (passfile=) [default: that user's ~/.pgpass]
    #[arg(long, value_name = "PATH")]
    pub source_passfile: Option<String>,
    /// Give tables with no primary key and no replica identity REPLICA IDENTITY FULL on the source instead of refusing (UPDATE and DELETE then log whole rows)
    #[arg(long)]
    pub replica_identity_full: bool,
    /// How many tables the initial copy moves at a time (each a session on both servers)
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// How long to connect to each server, e.g. 10s
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub connect_timeout: Duration,
    #[command(flatten)]
    pub bindir: crate::cli::flags::BindirFlag,
    #[command(flatten)]
    pub dry_run: DryRunFlag,
}

#[derive(clap::Args, Debug, Clone)]
pub struct StatusArgs {
    #[command(flatten)]
    pub endpoints: Endpoints,
    /// Lag that makes status WARNING, e.g. 16MB
    #[arg(long, value_name = "SIZE", default_value = "16MB", value_parser = size)]
    pub lag_warn: u64,
    /// Lag that makes status CRITICAL, e.g. 1GB
    #[arg(long, value_name = "SIZE", default_value = "1GB", value_parser = size)]
    pub lag_crit: u64,
    #[command(flatten)]
    pub timeout: crate::cli::flags::TimeoutFlag,
    #[command(flatten)]
    pub format: FormatFlag,
}

/// How cutover compares the tables once writes have stopped.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Row counts and a checksum of every row (reads every table on both sides while writes are paused)
    Full,
    /// Row counts, and a checksum of the first and the last 1000 rows by primary key (counts only for a table without one)
    Sample,
    /// Row counts only
    Counts,
}

#[derive(clap::Args, Debug, Clone)]
pub struct CutoverArgs {
    #[command(flatten)]
    pub endpoints: Endpoints,
    /// How long the target may take to confirm the source's last write; past it writes are enabled again on the source and nothing is switched, e.g. 60s
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub max_wait: Duration,
    /// How long write transactions may take to finish once the source is read-only, before their sessions are ended, e.g. 5s
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub grace: Duration,
    /// Refuse when the subscription is further behind than this, e.g. 64MB
    #[arg(long, value_name = "SIZE", default_value = "64MB", value_parser = size)]
    pub max_lag: u64,
    /// Added to each sequence's source value on the target, so the first insert there cannot collide
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub sequence_margin: i64,
    /// How to compare the tables once writes stopped (part of the write pause: full reads every row)
    #[arg(long, value_enum, value_name = "HOW", default_value = "sample")]
    pub verify: Verify,
    /// How long to connect to each server, e.g. 10s
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub connect_timeout: Duration,
    #[command(flatten)]
    pub dry_run: DryRunFlag,
}

#[derive(clap::Args, Debug, Clone)]
pub struct AbortArgs {
    #[command(flatten)]
    pub endpoints: Endpoints,
    /// Also drop what start loaded into the target database: its tables, sequences, types, functions, views and schemas, by the DROP statements of pg_dump --clean (the database itself stays); refused once the migration is gone (after a cutover the tables are the database)
    #[arg(long)]
    pub drop_schema: bool,
    /// How long to connect to each server, e.g. 10s; a source that does not answer in time is left as it is (the subscription is dropped without its slot, which abort names)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub connect_timeout: Duration,
    // --drop-schema runs the target major's pg_dump and psql.
    #[command(flatten)]
    pub bindir: crate::cli::flags::BindirFlag,
    #[command(flatten)]
    pub dry_run: DryRunFlag,
}

fn size(s: &str) -> std::result::Result<u64, String> {
    crate::units::parse_bytes(s)
}

/// The servers and names every subcommand works with, checked before
/// anything is read.
#[derive(Debug, Clone)]
pub struct Sides {
    /// pgrepctl's connection to the source database.
    pub source: ConnConfig,
    /// pgrepctl's connection to the target database.
    pub target: ConnConfig,
    /// What the subscription gives the target server to reach the source:
    /// the --source string with dbname set, never a password.
    pub source_conninfo: String,
    /// --target as given (psql connects with it).
    pub target_given: String,
    pub dbname: String,
    pub names: Names,
}

impl Sides {
    pub fn from_args(e: &Endpoints) -> Result<Sides> {
        let Endpoints {
            source,
            target,
            dbname,
        } = e;
        if dbname.is_empty() || dbname.contains('\0') {
            return Err(Error::new(Code::InvalidValue, "--dbname is empty")
                .hint("name the database to move, e.g. --dbname shop"));
        }
        let mut s = crate::pg::conninfo::resolve_node(source)?;
        s.dbname(dbname);
        let mut t = crate::pg::conninfo::resolve_node(target)?;
        t.dbname(dbname);
        let given = if crate::pg::conninfo::is_conninfo(source) {
            crate::pg::conninfo::parse(source)?
        } else {
            ConnConfig::default()
        };
        if given.get_password().is_some() {
            return Err(Error::new(
                Code::InsecureRefused,
                "--source holds a password, which the subscription would keep in the target's catalog",
            )
            .hint("leave the password out: pgrepctl reads it from ~/.pgpass or PGPASSFILE, and the target server from its OS user's ~/.pgpass (or passfile=PATH in --source)"));
        }
        Ok(Sides {
            source_conninfo: with_dbname(source, dbname),
            target_given: target.clone(),
            source: s,
            target: t,
            dbname: dbname.clone(),
            names: Names::for_database(dbname),
        })
    }
}

/// The --source string as the target server will use it, with `dbname`
/// set: libpq lets a later `dbname` (keyword or URI query parameter)
/// override an earlier one, so the user's string is kept as given.
pub fn with_dbname(source: &str, dbname: &str) -> String {
    let source = source.trim();
    let base = if crate::pg::conninfo::is_conninfo(source) {
        source.to_string()
    } else {
        format!("host={}", crate::conf::standby::quote_conninfo(source))
    };
    with_param(&base, "dbname", dbname)
}

/// `conninfo` as it may be printed: without a password (keyword, URI
/// user info or query parameter).
pub fn without_password(conninfo: &str) -> String {
    let c = conninfo.trim();
    if !crate::pg::conninfo::is_conninfo(c) {
        return c.to_string();
    }
    if let Some(rest) = c
        .strip_prefix("postgresql://")
        .map(|r| ("postgresql://", r))
        .or_else(|| c.strip_prefix("postgres://").map(|r| ("postgres://", r)))
    {
        let (scheme, rest) = rest;
        let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let authority = match authority.rsplit_once('@') {
            Some((user, hosts)) => {
                format!("{}@{hosts}", user.split(':').next().unwrap_or(""))
            }
            None => authority.to_string(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|kv| !kv.starts_with("password="))
                    .collect();
                if kept.is_empty() {
                    path.to_string()
                } else {
                    format!("{path}?{}", kept.join("&"))
                }
            }
            None => tail.to_string(),
        };
        return format!("{scheme}{authority}{tail}");
    }
    crate::pg::conninfo::pairs(c)
        .into_iter()
        .filter(|(k, _)| k != "password")
        .map(|(k, v)| format!("{k}={}", crate::conf::standby::quote_conninfo(&v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `conninfo` with `key = value` added last (keyword/value or URI form).
pub fn with_param(conninfo: &str, key: &str, value: &str) -> String {
    if conninfo.starts_with("postgresql://") || conninfo.starts_with("postgres://") {
        let sep = if conninfo.contains('?') { '&' } else { '?' };
        let encoded: String = value
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        return format!("{conninfo}{sep}{key}={encoded}");
    }
    format!(
        "{conninfo} {key}={}",
        crate::conf::standby::quote_conninfo(value)
    )
}

pub async fn start(args: StartArgs, printer: &Printer) -> Result<Outcome, Failure> {
    start::run(args, printer).await
}

pub async fn status(args: StatusArgs, printer: &Printer) -> Result<Report, Failure> {
    status::run(args, printer).await
}

pub async fn cutover(args: CutoverArgs, printer: &Printer) -> Result<Outcome, Failure> {
    cutover::run(args, printer).await
}

pub async fn abort(args: AbortArgs, printer: &Printer) -> Result<Outcome, Failure> {
    abort::run(args, printer).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_conninfo_sets_dbname_last() {
        assert_eq!(
            with_dbname("host=a user=u dbname=postgres", "shop"),
            "host=a user=u dbname=postgres dbname=shop"
        );
        assert_eq!(
            with_dbname("postgresql://u@a:5433/postgres", "my db"),
            "postgresql://u@a:5433/postgres?dbname=my%20db"
        );
        assert_eq!(
            with_dbname("postgresql://a/x?sslmode=require", "d"),
            "postgresql://a/x?sslmode=require&dbname=d"
        );
        assert_eq!(
            with_dbname("old.example", "it's"),
            "host=old.example dbname='it\\'s'"
        );
    }

    #[test]
    fn printed_conninfo_has_no_password() {
        assert_eq!(
            without_password("host=b password='s e' user=u"),
            "host=b user=u"
        );
        assert_eq!(
            without_password("postgresql://u:pw@b:5432/db?password=x&sslmode=require"),
            "postgresql://u@b:5432/db?sslmode=require"
        );
        assert_eq!(without_password("postgres://b/db"), "postgres://b/db");
        assert_eq!(without_password("new.example"), "new.example");
    }

    #[test]
    fn a_password_in_source_is_refused() {
        let e = Endpoints {
            source: "host=a password=secret".into(),
            target: "host=b".into(),
            dbname: "shop".into(),
        };
        let err = Sides::from_args(&e).unwrap_err();
        assert_eq!(err.code, Code::InsecureRefused);
        assert!(!err.to_string().contains("secret"));
    }
}
