//! `migrate start`: read both servers, decide with no I/O ([`decide`]),
//! then create what is missing, in this order — the database on the
//! target; REPLICA IDENTITY FULL where asked and the publication on the
//! source; the schema's pre-data; the slot and the copy at its snapshot;
//! post-data; the subscription, which streams from that slot. A failure undoes what this run created; a run killed half-way
//! is finished by the next run (each object is created only when absent)
//! or cleaned by abort.

use super::inspect::{self, Source, Table, Target};
use super::schema::{LoadSchema, Section};
use super::steps::{Env, Side, Sql};
use super::{Sides, StartArgs};
use crate::error::{Code, Error, Failure, Result};
use crate::pg::sql::{ident, literal};
use crate::pg::version::Version;
use crate::plan::{self, Cx, Plan};
use crate::report::{Outcome, Printer};

/// The flags start acts on, checked before anything is read.
pub struct Settings {
    pub sides: Sides,
    pub tables: Option<Vec<Table>>,
    pub replica_identity_full: bool,
    /// What the subscription connects with: --source, dbname, passfile.
    pub subscription_conninfo: String,
    pub connect_timeout: std::time::Duration,
    /// Tables copied at a time.
    pub jobs: usize,
    pub bindir: Option<std::path::PathBuf>,
    pub dry_run: bool,
}

impl Settings {
    fn from_args(a: StartArgs) -> Result<Settings> {
        let StartArgs {
            endpoints,
            tables,
            replica_identity_full,
            source_passfile,
            jobs,
            connect_timeout,
            bindir,
            dry_run,
        } = a;
        let sides = Sides::from_args(&endpoints)?;
        let subscription_conninfo = match &source_passfile {
            Some(p) if !p.starts_with('/') => {
                return Err(Error::new(
                    Code::InvalidValue,
                    format!("--source-passfile {p} is not an absolute path"),
                )
                .hint("give the file's absolute path on the target host"));
            }
            Some(p) => super::with_param(&sides.source_conninfo, "passfile", p),
            None => sides.source_conninfo.clone(),
        };
        let tables = if tables.is_empty() {
            None
        } else {
            let mut t = tables
                .iter()
                .map(|s| Table::parse(s))
                .collect::<Result<Vec<_>>>()?;
            t.sort();
            t.dedup();
            Some(t)
        };
        Ok(Settings {
            sides,
            tables,
            replica_identity_full,
            subscription_conninfo,
            connect_timeout,
            jobs: jobs.into(),
            bindir: bindir.checked()?,
            dry_run: dry_run.dry_run,
        })
    }
}

pub async fn run(args: StartArgs, printer: &Printer) -> Result<Outcome, Failure> {
    let settings = Settings::from_args(args)?;
    let t = settings.connect_timeout;
    let src = inspect::source_session(&settings.sides, t).await?;
    let source = inspect::source(&src, &settings.sides).await?;
    let admin = inspect::target_admin_session(&settings.sides, t).await?;
    let selected = selected_tables(&settings, &source)?;
    let (target, tsession) = inspect::target(&admin, &settings.sides, &selected, t).await?;
    // pg_dump is needed only when (part of) the schema is to be copied:
    // a start that finds its subscription is a no-op on any host.
    let bindir = if target.subscription.is_none() && (target.tables.is_empty() || !target.indexed) {
        Some(crate::tools::find(
            Version::of(target.version_num).major(),
            settings.bindir.as_deref(),
        )?)
    } else {
        None
    };
    let plan = decide(&settings, &source, &target, &selected, bindir)?;
    let mut outcome = Outcome::new("migrate start", settings.dry_run);
    report_facts(&mut outcome, &settings, &source, &target, &selected);
    if settings.dry_run {
        plan.preflight()?;
        plan.preview_into(&mut outcome);
        return Ok(outcome);
    }
    outcome.warnings.extend(plan.warnings.iter().cloned());
    let mut env = Env::new(settings.sides.clone(), t);
    env.source = Some(src);
    env.admin = Some(admin);
    env.target = tsession;
    let mut cx = Cx::new(env, *printer, None)?;
    plan::execute(&plan.steps, &mut cx, &mut outcome)
        .await
        .map_err(|error| outcome.failure(error))?;
    outcome.epilogue = Some(format!(
        "follow the copy with: pgrepctl migrate status --source … --target … --dbname {}\n",
        settings.sides.dbname
    ));
    Ok(outcome)
}

/// The tables start would move: those named by --table (each must exist
/// on the source), or every table of the source database.
fn selected_tables(settings: &Settings, source: &Source) -> Result<Vec<Table>> {
    let all: Vec<Table> = source.tables.iter().map(|t| t.table.clone()).collect();
    let Some(wanted) = &settings.tables else {
        return Ok(all);
    };
    let missing: Vec<String> = wanted
        .iter()
        .filter(|t| !all.contains(t))
        .map(|t| t.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::new(
            Code::InvalidValue,
            format!(
                "no such table in the source database: {}",
                missing.join(", ")
            ),
        )
        .hint("give each --table as SCHEMA.TABLE, as \\dt shows it on the source"));
    }
    Ok(wanted.clone())
}

fn report_facts(
    o: &mut Outcome,
    settings: &Settings,
    source: &Source,
    target: &Target,
    selected: &[Table],
) {
    let n = &settings.sides.names;
    o.detail("publication", &n.publication);
    o.detail("subscription", &n.subscription);
    o.detail("slot", &n.slot);
    o.detail("source_version", Version::of(source.version_num).major());
    o.detail("target_version", Version::of(target.version_num).major());
    o.detail("tables", selected);
    o.detail("already_started", target.subscription.is_some());
}

/// Everything start refuses, and the steps it takes, from the facts
/// alone.
pub fn decide(
    settings: &Settings,
    source: &Source,
    target: &Target,
    selected: &[Table],
    bindir: Option<crate::tools::BinDir>,
) -> Result<Plan<Env>> {
    let mut plan = Plan::default();
    versions(source, target)?;
    inspect::same_server(
        &settings.sides.dbname,
        source.server.as_ref(),
        target.server.as_ref(),
        "nothing was changed: give as --target the server the database moves to (a copy of the source made by pg_basebackup is another server, and may be the target)",
    )?;
    if !source.superuser || !target.superuser {
        let side = if source.superuser { "target" } else { "source" };
        return Err(Error::new(
            Code::NotSuperuser,
            format!("the --{side} role is not a superuser"),
        )
        .hint("connect as a superuser (creating publications for all tables, subscriptions and replication slots needs one)"));
    }
    if target.subscription.is_some() {
        // Started already: status tells how far it is.
        return Ok(plan);
    }
    source_ready(source)?;
    let keyless = keyless(settings, source, selected)?;
    plan.warnings.extend(notes(source, selected));
    plan.warnings
        .extend(extensions(source, target, settings.tables.is_some())?);
    if source.slot == Some(true) {
        return Err(Error::new(
            Code::SlotConflict,
            format!(
                "the slot {} is in use on the source and the target has no subscription: another migrate start is copying the data",
                settings.sides.names.slot
            ),
        )
        .hint("wait for it (pgrepctl migrate status), or end it and run pgrepctl migrate abort"));
    }
    let stale = source.slot.is_some();
    let (schema_present, truncate) = target_tables(target, selected, stale)?;
    let post_data = !schema_present
        || (!target.indexed
            && source
                .tables
                .iter()
                .any(|t| t.indexed && selected.contains(&t.table)));
    if (!schema_present || post_data) && bindir.is_none() {
        return Err(Error::new(Code::Internal, "no bindir for pg_dump"));
    }
    let work = Work {
        copied: copied_tables(source, selected),
        pre_data: !schema_present,
        post_data,
        truncate,
        bindir,
    };
    push_steps(&mut plan, settings, source, target, &keyless, work);
    Ok(plan)
}

/// What start does for the schema and the data, decided from the facts.
struct Work {
    /// The tables the copy fills.
    copied: Vec<Table>,
    /// Load pre-data with this pg_dump (the tables are not there yet).
    pre_data: bool,
    /// Load post-data after the copy (the tables have no index yet).
    post_data: bool,
    /// Rows a killed copy left: emptied before the copy.
    truncate: bool,
    bindir: Option<crate::tools::BinDir>,
}

/// The steps, each only for what is missing.
fn push_steps(
    plan: &mut Plan<Env>,
    settings: &Settings,
    source: &Source,
    target: &Target,
    keyless: &[Table],
    work: Work,
) {
    let names = &settings.sides.names;
    if !target.database {
        plan.push(Sql::new(
            Side::TargetAdmin,
            format!(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING {}",
                ident(&settings.sides.dbname),
                literal(&source.encoding)
            ),
            Some(format!("DROP DATABASE {}", ident(&settings.sides.dbname))),
        ));
    }
    let section = |section| LoadSchema {
        bindir: work
            .bindir
            .clone()
            .expect("a bindir when the schema is loaded"),
        tables: settings.tables.clone(),
        section,
    };
    // The publication before anything lands in the target database: it
    // is what tells abort --drop-schema that a migration is there, and so
    // that what is in the target database is start's to drop.
    if !source.publication {
        plan.push(publication(settings, keyless, target.system_id.as_deref()));
    }
    if work.pre_data {
        plan.push(section(Section::PreData));
    }
    if source.slot == Some(false) {
        // Left by a start killed during or after its copy: that copy's
        // snapshot is gone, the copy starts over from a new slot.
        plan.push(super::steps::DropSlot {
            name: names.slot.clone(),
        });
    }
    plan.push(super::copy::CopyData {
        slot: names.slot.clone(),
        tables: work.copied.clone(),
        jobs: settings.jobs,
        truncate: work.truncate,
        freeze: !target.indexed,
    });
    if work.post_data {
        plan.push(section(Section::PostData));
    }
    plan.push(Sql::new(
        Side::Target,
        format!(
            "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH ({})",
            ident(&names.subscription),
            literal(&settings.subscription_conninfo),
            ident(&names.publication),
            subscription_options(source.version_num, target.version_num, &names.slot)
        ),
        Some(format!("DROP SUBSCRIPTION {}", ident(&names.subscription))),
    ));
}

/// The selected tables the copy fills: unlogged ones are not published.
fn copied_tables(source: &Source, selected: &[Table]) -> Vec<Table> {
    source
        .tables
        .iter()
        .filter(|t| !t.unlogged && selected.contains(&t.table))
        .map(|t| t.table.clone())
        .collect()
}

/// REPLICA IDENTITY FULL where asked, the publication and its comment
/// naming those tables, in one transaction: abort and cutover read the
/// comment to put the tables back to DEFAULT, and a start killed in
/// between cannot leave a table changed without it being recorded (nor a
/// keyless table published without an identity, which would fail its
/// UPDATEs and DELETEs on the source).
fn publication(settings: &Settings, keyless: &[Table], target: Option<&str>) -> Sql {
    let names = &settings.sides.names;
    let pubname = ident(&names.publication);
    let what = match &settings.tables {
        None => "ALL TABLES".to_string(),
        Some(t) => format!(
            "TABLE {}",
            t.iter().map(Table::sql).collect::<Vec<_>>().join(", ")
        ),
    };
    let mut sql = vec![];
    let mut undo = vec![format!("DROP PUBLICATION {pubname}")];
    for t in keyless {
        sql.push(format!("ALTER TABLE {} REPLICA IDENTITY FULL", t.sql()));
        undo.push(format!("ALTER TABLE {} REPLICA IDENTITY DEFAULT", t.sql()));
    }
    sql.push(format!("CREATE PUBLICATION {pubname} FOR {what}"));
    sql.push(format!(
        "COMMENT ON PUBLICATION {pubname} IS {}",
        literal(&super::names::publication_comment(keyless, target))
    ));
    Sql::new(Side::Source, sql.join("; "), Some(undo.join("; ")))
}

/// Both supported, and the target at least the source's major: logical
/// replication works across majors, but pg_dump only reads older servers.
fn versions(source: &Source, target: &Target) -> Result<()> {
    crate::pg::check_supported(source.version_num)?;
    crate::pg::check_supported(target.version_num)?;
    let (s, t) = (
        Version::of(source.version_num),
        Version::of(target.version_num),
    );
    if t.major() < s.major() {
        return Err(Error::new(
            Code::VersionMismatch,
            format!(
                "the target runs PostgreSQL {}, older than the source's {}",
                t.major(),
                s.major()
            ),
        )
        .hint("migrate to a server of the same or a newer major version"));
    }
    Ok(())
}

fn source_ready(source: &Source) -> Result<()> {
    if source.wal_level != "logical" {
        return Err(Error::new(
            Code::WalLevelNotLogical,
            format!("the source has wal_level = {}, not logical", source.wal_level),
        )
        .hint(format!(
            "on the source run: ALTER SYSTEM SET wal_level = logical; then restart the server (a reload is not enough): {}",
            restart_command(&source.cluster_name)
        )));
    }
    if source.slot.is_none() && (source.free_slots < 1 || source.free_senders < 1) {
        return Err(Error::new(
            Code::PrimaryNotReady,
            format!(
                "the source has {} free replication slot(s) and {} free wal sender(s); the migration needs one of each",
                source.free_slots.max(0),
                source.free_senders.max(0)
            ),
        )
        .hint("raise max_replication_slots and max_wal_senders on the source (a restart), or drop an unused slot"));
    }
    Ok(())
}

/// How the source's host restarts it: Debian's packaged clusters are named
/// "15/main" (cluster_name) and restart through pg_ctlcluster or their
/// systemd unit; other servers through pg_ctl or their own unit.
fn restart_command(cluster_name: &str) -> String {
    if let Some((version, name)) = cluster_name.split_once('/') {
        if !version.is_empty() && version.chars().all(|c| c.is_ascii_digit()) && !name.is_empty() {
            return format!(
                "on its host, pg_ctlcluster {version} {name} restart (or systemctl restart postgresql@{version}-{name})"
            );
        }
    }
    "on its host, pg_ctl restart -D PGDATA, or the service's restart (systemctl restart postgresql)"
        .into()
}

/// Tables whose UPDATE and DELETE could not be replicated: refused (a
/// published table without replica identity fails those commands on the
/// source itself), or listed for REPLICA IDENTITY FULL when asked.
fn keyless(settings: &Settings, source: &Source, selected: &[Table]) -> Result<Vec<Table>> {
    let keyless: Vec<Table> = source
        .tables
        .iter()
        .filter(|t| !t.identity && !t.unlogged && selected.contains(&t.table))
        .map(|t| t.table.clone())
        .collect();
    if keyless.is_empty() || settings.replica_identity_full {
        return Ok(keyless);
    }
    let list = keyless
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(Error::new(
        Code::NoReplicaIdentity,
        format!("tables without a primary key or replica identity: {list}"),
    )
    .hint("add a primary key (or ALTER TABLE … REPLICA IDENTITY USING INDEX), or pass --replica-identity-full (UPDATE and DELETE then log whole rows), or leave them out with --table"))
}

/// What will not move, said before anything starts.
fn notes(source: &Source, selected: &[Table]) -> Vec<String> {
    let mut w = vec![];
    let unlogged: Vec<String> = source
        .tables
        .iter()
        .filter(|t| t.unlogged && selected.contains(&t.table))
        .map(|t| t.table.to_string())
        .collect();
    if !unlogged.is_empty() {
        w.push(format!(
            "unlogged tables are not replicated (their schema is copied, their rows are not): {}",
            unlogged.join(", ")
        ));
    }
    if source.large_objects > 0 {
        w.push(format!(
            "{} large object(s) are not replicated; copy them yourself (pg_dump --large-objects)",
            source.large_objects
        ));
    }
    if !source.sequences.is_empty() {
        w.push(format!(
            "{} sequence(s) are not replicated; migrate cutover sets them on the target",
            source.sequences.len()
        ));
    }
    w.push("roles, owners and grants are not copied (roles belong to the cluster): create the roles on the target (pg_dumpall --roles-only) and grant there".into());
    w
}

/// Refused when an extension the source database uses is not available
/// on the target; a warning when the target cannot say.
fn extensions(source: &Source, target: &Target, only_tables: bool) -> Result<Option<String>> {
    if only_tables || source.extensions.is_empty() {
        return Ok(None);
    }
    let available = match &target.available_extensions {
        Ok(a) => a,
        Err(why) => {
            return Ok(Some(format!(
                "cannot list the target's extensions ({why}): make sure {} are installed there",
                source.extensions.join(", ")
            )));
        }
    };
    let missing: Vec<&String> = source
        .extensions
        .iter()
        .filter(|e| !available.contains(e))
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    Err(Error::new(
        Code::ExtensionMissing,
        format!(
            "extensions the source database uses are not installed on the target server: {}",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .hint("install their packages on the target host (pg_available_extensions must list them)"))
}

/// Whether the schema is there already (every table exists on the
/// target), and whether rows must be emptied first; refused when some
/// tables are there and some are not, or when one holds rows that no
/// killed copy of ours left (`stale`: the slot is there, the
/// subscription is not).
fn target_tables(target: &Target, selected: &[Table], stale: bool) -> Result<(bool, bool)> {
    let full: Vec<String> = target
        .tables
        .iter()
        .filter(|(_, rows)| *rows)
        .map(|(t, _)| t.to_string())
        .collect();
    if !full.is_empty() && !stale {
        return Err(Error::new(
            Code::TargetNotEmpty,
            format!("tables on the target already hold rows: {}", full.join(", ")),
        )
        .hint("empty them (TRUNCATE) or drop them on the target; the initial copy would duplicate rows"));
    }
    if target.tables.is_empty() {
        return Ok((false, false));
    }
    if target.tables.len() < selected.len() {
        let missing: Vec<String> = selected
            .iter()
            .filter(|t| !target.tables.iter().any(|(x, _)| x == *t))
            .map(|t| t.to_string())
            .collect();
        return Err(Error::new(
            Code::TargetNotEmpty,
            format!(
                "the target has some of the tables but not: {}",
                missing.join(", ")
            ),
        )
        .hint("create the missing tables on the target, or drop the others (pgrepctl migrate abort --drop-schema) so start copies the whole schema"));
    }
    Ok((true, !full.is_empty()))
}

/// The slot start made and copied at: the subscription streams from it
/// and copies nothing. binary and streaming where both servers have them
/// (14+: the subscriber asks, the publisher's pgoutput must understand).
pub fn subscription_options(source: u32, target: u32, slot: &str) -> String {
    let both = |f: fn(Version) -> bool| f(Version::of(source)) && f(Version::of(target));
    let mut o = vec![
        "copy_data = false".to_string(),
        "create_slot = false".to_string(),
        format!("slot_name = {}", literal(slot)),
        "enabled = true".to_string(),
    ];
    if both(Version::logical_binary) {
        o.push("binary = true".into());
    }
    if both(Version::logical_streaming) {
        o.push("streaming = on".into());
    }
    o.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::migrate::Endpoints;
    use crate::commands::migrate::inspect::{ServerId, SourceTable};

    fn settings(tables: Option<Vec<Table>>, full: bool) -> Settings {
        let sides = Sides::from_args(&Endpoints {
            source: "host=/tmp/s".into(),
            target: "host=/tmp/t".into(),
            dbname: "shop".into(),
        })
        .unwrap();
        Settings {
            subscription_conninfo: sides.source_conninfo.clone(),
            sides,
            tables,
            replica_identity_full: full,
            connect_timeout: std::time::Duration::from_secs(1),
            jobs: 4,
            bindir: None,
            dry_run: true,
        }
    }

    fn t(name: &str) -> Table {
        Table {
            schema: "public".into(),
            name: name.into(),
        }
    }

    fn source() -> Source {
        Source {
            version_num: 120005,
            superuser: true,
            wal_level: "logical".into(),
            cluster_name: String::new(),
            free_slots: 10,
            free_senders: 10,
            tables: vec![
                SourceTable {
                    table: t("a"),
                    identity: true,
                    unlogged: false,
                    indexed: true,
                },
                SourceTable {
                    table: t("log"),
                    identity: false,
                    unlogged: false,
                    indexed: false,
                },
            ],
            sequences: vec![],
            large_objects: 0,
            encoding: "UTF8".into(),
            extensions: vec![],
            publication: false,
            slot: None,
            server: Some(server("5432")),
        }
    }

    fn server(port: &str) -> ServerId {
        ServerId {
            system_id: "7311".into(),
            started: "2024-05-01 10:00:00.123456+00".into(),
            port: port.into(),
            data_directory: Some("/var/lib/postgresql/15/main".into()),
        }
    }

    fn target() -> Target {
        Target {
            version_num: 170002,
            superuser: true,
            database: false,
            available_extensions: Ok(vec![]),
            subscription: None,
            tables: vec![],
            indexed: false,
            system_id: Some("7311".into()),
            server: Some(server("5433")),
        }
    }

    fn bindir() -> Option<crate::tools::BinDir> {
        Some(crate::tools::BinDir {
            path: "/x".into(),
            major: 17,
        })
    }

    fn summaries(p: &Plan<Env>) -> Vec<String> {
        p.changes().into_iter().map(|c| c.summary).collect()
    }

    #[test]
    fn keyless_tables_are_refused_or_made_full() {
        let all = [t("a"), t("log")];
        let e = decide(&settings(None, false), &source(), &target(), &all, bindir())
            .err()
            .unwrap();
        assert_eq!(e.code, Code::NoReplicaIdentity);
        assert!(e.message.contains("public.log"), "{}", e.message);
        let p = decide(&settings(None, true), &source(), &target(), &all, bindir()).unwrap();
        let s = summaries(&p);
        assert!(
            s[0].starts_with("on the target: CREATE DATABASE \"shop\""),
            "{s:?}"
        );
        // The publication before the schema: abort --drop-schema's sign.
        assert!(
            s[1].starts_with(
                "on the source: ALTER TABLE \"public\".\"log\" REPLICA IDENTITY FULL; CREATE PUBLICATION \"pgrepctl_migrate_shop\" FOR ALL TABLES; COMMENT ON PUBLICATION"
            ),
            "{s:?}"
        );
        assert!(s[1].contains("[[\"public\",\"log\"]]"), "{s:?}");
        assert!(s[2].contains("--section=pre-data"), "{s:?}");
        assert!(s[3].contains("CREATE_REPLICATION_SLOT"), "{s:?}");
        assert!(s[4].contains("--section=post-data"), "{s:?}");
        assert!(
            s[5].contains("WITH (copy_data = false, create_slot = false, slot_name = 'pgrepctl_migrate_shop', enabled = true)"),
            "{s:?}"
        );
        // Only the keyed table: nothing to refuse.
        let p = decide(
            &settings(Some(vec![t("a")]), false),
            &source(),
            &target(),
            &[t("a")],
            bindir(),
        )
        .unwrap();
        assert!(
            summaries(&p)
                .iter()
                .any(|s| s.contains("FOR TABLE \"public\".\"a\""))
        );
    }

    #[test]
    fn refusals_before_any_change() {
        let sel = [t("a")];
        let s = settings(Some(sel.to_vec()), false);
        let mut src = source();
        src.wal_level = "replica".into();
        let e = decide(&s, &src, &target(), &sel, bindir()).err().unwrap();
        assert_eq!(e.code, Code::WalLevelNotLogical);
        assert!(
            e.hint
                .unwrap()
                .contains("ALTER SYSTEM SET wal_level = logical")
        );
        let mut old = target();
        old.version_num = 110000;
        assert_eq!(
            decide(&s, &source(), &old, &sel, bindir())
                .err()
                .unwrap()
                .code,
            Code::VersionMismatch
        );
        let mut full = target();
        full.database = true;
        full.tables = vec![(t("a"), true)];
        assert_eq!(
            decide(&s, &source(), &full, &sel, bindir())
                .err()
                .unwrap()
                .code,
            Code::TargetNotEmpty
        );
        let mut src = source();
        src.extensions = vec!["postgis".into()];
        let all = settings(None, true);
        let e = decide(&all, &src, &target(), &[t("a"), t("log")], bindir())
            .err()
            .unwrap();
        assert_eq!(e.code, Code::ExtensionMissing);
    }

    #[test]
    fn the_source_itself_is_refused_as_target() {
        let all = [t("a"), t("log")];
        let s = settings(None, true);
        let mut same = target();
        same.server = source().server;
        let e = decide(&s, &source(), &same, &all, bindir()).err().unwrap();
        assert_eq!(e.code, Code::ConflictingFlags);
        assert!(e.code.is_usage());
        assert!(e.message.contains("the same server"), "{}", e.message);
        // Started already (it subscribed to itself): refused all the same.
        same.database = true;
        same.subscription = Some(true);
        let e = decide(&s, &source(), &same, &all, bindir()).err().unwrap();
        assert_eq!(e.code, Code::ConflictingFlags);
        // A copy made by pg_basebackup: the same system identifier, its
        // own start time (and here port and directory too).
        let mut copy = target();
        copy.server = Some(ServerId {
            started: "2024-05-02 08:00:00.5+00".into(),
            ..server("5432")
        });
        assert!(decide(&s, &source(), &copy, &all, bindir()).is_ok());
        // Not readable on one side: not refused.
        let mut unknown = target();
        unknown.server = None;
        assert!(decide(&s, &source(), &unknown, &all, bindir()).is_ok());
    }

    #[test]
    fn started_already_is_a_no_op() {
        let mut tg = target();
        tg.database = true;
        tg.subscription = Some(true);
        let p = decide(
            &settings(None, false),
            &source(),
            &tg,
            &[t("a"), t("log")],
            bindir(),
        )
        .unwrap();
        assert!(p.changes().is_empty());
    }

    #[test]
    fn options_by_version_pair() {
        let base = "copy_data = false, create_slot = false, slot_name = 's', enabled = true";
        assert_eq!(subscription_options(100000, 160000, "s"), base);
        assert_eq!(subscription_options(130000, 180000, "s"), base);
        assert_eq!(
            subscription_options(140000, 170000, "s"),
            format!("{base}, binary = true, streaming = on")
        );
    }

    #[test]
    fn a_killed_copy_starts_over() {
        let sel = [t("a")];
        let s = settings(Some(sel.to_vec()), false);
        let mut src = source();
        let mut tg = target();
        tg.database = true;
        tg.tables = vec![(t("a"), true)];
        // Rows and no slot: not ours, refused.
        assert_eq!(
            decide(&s, &src, &tg, &sel, bindir()).err().unwrap().code,
            Code::TargetNotEmpty
        );
        // Rows and our idle slot: dropped, emptied, copied again, and
        // post-data loaded (the tables have no index yet).
        src.slot = Some(false);
        src.publication = true;
        let p = summaries(&decide(&s, &src, &tg, &sel, bindir()).unwrap());
        assert!(p[0].contains("pg_drop_replication_slot"), "{p:?}");
        assert!(p[1].contains("TRUNCATE"), "{p:?}");
        assert!(p[2].contains("--section=post-data"), "{p:?}");
        assert!(p[3].contains("CREATE SUBSCRIPTION"), "{p:?}");
        // Indexes there already: no post-data.
        tg.indexed = true;
        let p = summaries(&decide(&s, &src, &tg, &sel, bindir()).unwrap());
        assert!(!p.iter().any(|c| c.contains("post-data")), "{p:?}");
        // A slot in use: another start is copying.
        src.slot = Some(true);
        assert_eq!(
            decide(&s, &src, &tg, &sel, bindir()).err().unwrap().code,
            Code::SlotConflict
        );
    }

    #[test]
    fn the_restart_hint_names_debians_tools_for_a_packaged_cluster() {
        assert!(
            restart_command("15/main").contains(
                "pg_ctlcluster 15 main restart (or systemctl restart postgresql@15-main)"
            )
        );
        for other in ["", "main", "pg/15", "15/"] {
            assert!(
                restart_command(other).contains("pg_ctl restart -D PGDATA"),
                "{other}"
            );
        }
    }
}
