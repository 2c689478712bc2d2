//! Read-only: everything init-master needs to know about the server and
//! its files, gathered once. Nothing here changes anything.

use super::Settings;
use crate::error::{Code, Error, Result};
use crate::fsutil;
use crate::pg::{self, query_error};
use crate::report::Printer;
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// A row of `pg_settings`: what the running server uses now.
#[derive(Debug, Clone)]
pub struct Live {
    pub setting: String,
    pub context: String,
    pub source: String,
}

/// A row of `pg_file_settings`: PostgreSQL's own reading of the files
/// right now, so the last occurrence (highest seqno) is the one that counts.
#[derive(Debug, Clone)]
pub struct FileSetting {
    pub sourcefile: PathBuf,
    pub sourceline: usize,
    pub seqno: i32,
    pub name: String,
    pub setting: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RoleFacts {
    pub can_login: bool,
    pub replication: bool,
    pub password: Option<String>,
    /// SUPERUSER, CREATEDB, CREATEROLE, BYPASSRLS: what it has beyond
    /// a replication login.
    pub powers: Vec<&'static str>,
    /// Objects it owns, in any database (pg_shdepend).
    pub owned_objects: i64,
}

#[derive(Debug, Clone)]
pub struct Facts {
    pub version_num: u32,
    /// The server is a standby: what init-master sets there serves
    /// standbys that would cascade from it.
    pub in_recovery: bool,
    pub data_directory: PathBuf,
    pub config_file: PathBuf,
    pub hba_file: PathBuf,
    pub auto_conf: PathBuf,
    pub wal_segment_size: u64,
    pub live: HashMap<String, Live>,
    pub file_settings: Vec<FileSetting>,
    /// Text of every config file we may edit, keyed by path.
    pub files: BTreeMap<PathBuf, String>,
    pub hba_text: String,
    pub hba_errors: Vec<(usize, String)>,
    pub role: Option<RoleFacts>,
    pub memberships: Vec<String>,
    /// Where the wal senders that log in as the role stream to now.
    pub streaming_as_role: Vec<String>,
    pub slots: HashMap<String, String>,
    pub local_nets: Vec<IpNet>,
    /// The --listen entries this host cannot listen on (tried by binding):
    /// the server would not start with them.
    pub listen_unbindable: Vec<String>,
    pub at_files: HashMap<String, Vec<crate::conf::hba::Token>>,
    /// `(version, cluster)` when the config lives in Debian's /etc/postgresql.
    pub debian_cluster: Option<(String, String)>,
    /// The running postmaster's own bin directory, for an exact restart.
    pub server_bindir: Option<PathBuf>,
    /// The monitoring role, when one is asked for and exists.
    pub monitor_role: Option<super::monitor::MonitorRole>,
    /// With --ssl: the server's certificate files and where pgrepctl's go.
    pub ssl: Option<super::ssl::SslFacts>,
}

pub const SETTINGS: &[&str] = &[
    "wal_level",
    "max_wal_senders",
    "wal_keep_size",
    "wal_keep_segments",
    "hot_standby",
    "listen_addresses",
    "wal_segment_size",
    "wal_log_hints",
    "data_checksums",
    "archive_mode",
    "archive_command",
    "archive_timeout",
    "archive_library",
    "basic_archive.archive_directory",
    "ssl",
    "ssl_cert_file",
    "ssl_key_file",
];

/// The --listen entries this host cannot listen on, tried by binding.
fn listen_unbindable(listen: Option<&str>) -> Vec<String> {
    listen
        .iter()
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty() && !crate::net::listen_entry_bindable(e, &crate::net::can_bind))
        .map(str::to_owned)
        .collect()
}

/// One pass over the server and its files: the session, then each
/// question in turn (the order decides which error a broken server shows
/// first), then the files those answers name.
pub async fn inspect(settings: &Settings, printer: &Printer) -> Result<Facts> {
    let session = pg::connect(&settings.conn, None).await?;
    pg::check_supported(session.version_num)?;
    let c = &session.client;
    let t = &session.target;
    let q = |e: tokio_postgres::Error| query_error(t, &e);

    require_superuser(c, settings, t).await?;
    printer.debug(format!(
        "connected to {t}, server_version_num {}",
        session.version_num
    ));

    let (data_directory, config_file, hba_file) = server_paths(c).await.map_err(q)?;
    check_data_directory(settings, &data_directory, t)?;
    if let Some(a) = &settings.archive {
        check_archive(c, a, session.version_num, &data_directory, t).await?;
    }

    let live = live_settings(c).await.map_err(q)?;
    let wal_segment_size = wal_segment_size(c).await.map_err(q)?;
    let file_settings = file_settings(c).await.map_err(q)?;
    let hba_errors = hba_errors(c).await.map_err(q)?;
    let role = role_facts(c, &settings.role).await.map_err(q)?;
    let streaming_as_role = streaming_as_role(c, &settings.role).await.map_err(q)?;
    let memberships = memberships(c, &settings.role).await.map_err(q)?;
    let monitor_role = match &settings.monitor {
        Some(m) => super::monitor::inspect(c, &m.role).await.map_err(q)?,
        None => None,
    };
    let slots = slots(c).await.map_err(q)?;

    let auto_conf = data_directory.join("postgresql.auto.conf");
    let files = config_files(&config_file, &file_settings, &auto_conf)?;
    let hba_text = fsutil::read_to_string(&hba_file)?;
    let at_files = read_at_files(&hba_text, &hba_file, session.version_num);

    let in_recovery: bool = c
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .map_err(q)?
        .get(0);
    let mut facts = Facts {
        version_num: session.version_num,
        in_recovery,
        debian_cluster: debian_cluster(&data_directory, &config_file),
        server_bindir: crate::tools::running_server_bindir(&data_directory),
        data_directory,
        config_file,
        hba_file,
        auto_conf,
        wal_segment_size,
        live,
        file_settings,
        files,
        hba_text,
        hba_errors,
        role,
        memberships,
        streaming_as_role,
        slots,
        local_nets: local_nets(),
        listen_unbindable: listen_unbindable(settings.listen.as_deref()),
        at_files,
        monitor_role,
        ssl: None,
    };
    if settings.ssl {
        facts.ssl = Some(super::ssl::inspect(&settings.ssl_setup, &facts));
    }
    Ok(facts)
}

/// The answers to these queries are the server's, so a failed query keeps
/// its PostgreSQL error; the caller adds where it connected.
type QueryResult<T> = std::result::Result<T, tokio_postgres::Error>;

/// init-master edits server files and roles: refuse early, before any
/// other question, when the session is not a superuser's.
async fn require_superuser(c: &tokio_postgres::Client, settings: &Settings, t: &str) -> Result<()> {
    let su: bool = c
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| query_error(t, &e))?
        .get(0);
    if !su {
        let user = settings.conn.get_user().unwrap_or("?");
        return Err(Error::new(Code::NotSuperuser, format!("{t}: role {user:?} is not a superuser")).hint(
            "connect as a superuser (-U postgres, or run as the postgres OS user); init-master edits server files and roles",
        ));
    }
    Ok(())
}

/// `(data_directory, config_file, hba_file)` as the server itself uses
/// them: the files to edit are the ones it reads, wherever they live.
async fn server_paths(c: &tokio_postgres::Client) -> QueryResult<(PathBuf, PathBuf, PathBuf)> {
    let show = |rows: Vec<tokio_postgres::Row>| -> String {
        rows.first()
            .map(|r| r.get::<_, String>(0))
            .unwrap_or_default()
    };
    let data_directory = PathBuf::from(show(c.query("SHOW data_directory", &[]).await?));
    let config_file = PathBuf::from(show(c.query("SHOW config_file", &[]).await?));
    let hba_file = PathBuf::from(show(c.query("SHOW hba_file", &[]).await?));
    Ok((data_directory, config_file, hba_file))
}

/// With -D given as well as a connection, both must name the same
/// server: otherwise the files edited and the server restarted differ.
fn check_data_directory(settings: &Settings, data_directory: &Path, t: &str) -> Result<()> {
    if let Some(d) = &settings.data_dir {
        let server_dir =
            std::fs::canonicalize(data_directory).unwrap_or(data_directory.to_path_buf());
        if &server_dir != d {
            return Err(Error::new(
                Code::DataDirectoryMismatch,
                format!("-D {} is not the data directory of the server at {t} ({})", d.display(), data_directory.display()),
            )
            .hint("give the -D of the server you connect to, or leave out -h/-p to use the server running on -D"));
        }
    }
    Ok(())
}

/// The archive can work before anything names it: --archive-library
/// only where the server has archive_library (15+) and its basic_archive
/// module (loaded into this session, which also makes its setting show
/// in pg_settings); the directory usable by the server's own OS user.
async fn check_archive(
    c: &tokio_postgres::Client,
    archive: &super::settings::Archive,
    version_num: u32,
    data_directory: &Path,
    t: &str,
) -> Result<()> {
    use super::settings::ArchiveHow;
    use crate::commands::archive_dir::{self, Access, Creds};
    if matches!(archive.how, ArchiveHow::Library(_)) {
        if version_num < 150000 {
            return Err(Error::new(
                Code::Usage,
                format!(
                    "--archive-library needs PostgreSQL 15 or later (archive_library); {t} runs {}",
                    crate::pg::version::Version::of(version_num).major()
                ),
            )
            .hint("leave out --archive-library: --archive-dir alone archives through pgrepctl wal-push on every version"));
        }
        if let Err(e) = c.batch_execute("LOAD 'basic_archive'").await {
            return Err(Error::new(
                Code::ToolNotFound,
                format!(
                    "{t}: the server has no basic_archive module: {}",
                    query_error(t, &e).message
                ),
            )
            .hint("install PostgreSQL's contrib modules for this server (RPM: postgresqlNN-contrib; Debian ships them with postgresql-NN), or leave out --archive-library"));
        }
    }
    let Some(dir) = archive.dir() else {
        return Ok(());
    };
    let flag = "--archive-dir";
    let program = match &archive.how {
        ArchiveHow::Dir { pgrepctl, .. } => Some(pgrepctl.as_path()),
        _ => None,
    };
    let creds = Creds::of_server(data_directory);
    archive_dir::check(flag, dir, Access::Write, creds.as_ref(), program)
}

/// The running values of [`SETTINGS`]: what needs a change, and whether
/// a change takes a reload or a restart (`context`).
async fn live_settings(c: &tokio_postgres::Client) -> QueryResult<HashMap<String, Live>> {
    let mut live = HashMap::new();
    for row in c
        .query(
            "SELECT name, setting, context, source FROM pg_settings WHERE name = ANY($1)",
            &[&SETTINGS],
        )
        .await?
    {
        live.insert(
            row.get::<_, String>(0),
            Live {
                setting: row.get(1),
                context: row.get(2),
                source: row.get(3),
            },
        );
    }
    Ok(live)
}

/// The WAL segment size in bytes, for `wal_keep_segments` arithmetic:
/// `pg_settings` reports it in bytes on 11+, in 8kB pages on 10.
async fn wal_segment_size(c: &tokio_postgres::Client) -> QueryResult<u64> {
    let row = c
        .query_one("SELECT setting::bigint, coalesce(unit, '') FROM pg_settings WHERE name = 'wal_segment_size'", &[])
        .await?;
    let v: i64 = row.get(0);
    let unit: String = row.get(1);
    Ok(match unit.as_str() {
        "8kB" => v as u64 * 8192,
        "B" | "" => v as u64,
        "MB" => v as u64 * 1024 * 1024,
        _ => v as u64,
    })
}

/// Every setting in the config files as PostgreSQL reads them now, in
/// order: where each of ours is set, and which occurrence wins.
async fn file_settings(c: &tokio_postgres::Client) -> QueryResult<Vec<FileSetting>> {
    Ok(c
        .query(
            "SELECT sourcefile, sourceline, seqno, name, coalesce(setting, ''), error FROM pg_file_settings ORDER BY seqno",
            &[],
        )
        .await?
        .into_iter()
        .map(|r| FileSetting {
            sourcefile: PathBuf::from(r.get::<_, Option<String>>(0).unwrap_or_default()),
            sourceline: r.get::<_, Option<i32>>(1).unwrap_or(0) as usize,
            seqno: r.get::<_, Option<i32>>(2).unwrap_or(0),
            name: r.get::<_, Option<String>>(3).unwrap_or_default(),
            setting: r.get(4),
            error: r.get(5),
        })
        .collect())
}

/// Lines of pg_hba.conf the server cannot read, `(line, error)`:
/// init-master changes nothing while the file has any.
async fn hba_errors(c: &tokio_postgres::Client) -> QueryResult<Vec<(usize, String)>> {
    Ok(c.query(
        "SELECT coalesce(line_number, 0), error FROM pg_hba_file_rules WHERE error IS NOT NULL",
        &[],
    )
    .await?
    .into_iter()
    .map(|r| (r.get::<_, i32>(0) as usize, r.get(1)))
    .collect())
}

/// The replication role as it is, if it exists: what to create or alter,
/// and what it can do beyond replication.
async fn role_facts(c: &tokio_postgres::Client, role: &str) -> QueryResult<Option<RoleFacts>> {
    Ok(c
        .query_opt(
            "SELECT rolcanlogin, rolreplication, rolpassword, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls,
                    (SELECT count(*) FROM pg_shdepend d
                      WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = a.oid AND d.deptype = 'o')
               FROM pg_authid a WHERE rolname = $1",
            &[&role],
        )
        .await?
        .map(|r| RoleFacts {
            can_login: r.get(0),
            replication: r.get(1),
            password: r.get(2),
            powers: [
                (r.get::<_, bool>(3), "SUPERUSER"),
                (r.get(4), "CREATEDB"),
                (r.get(5), "CREATEROLE"),
                (r.get(6), "BYPASSRLS"),
            ]
            .into_iter()
            .filter(|(has, _)| *has)
            .map(|(_, name)| name)
            .collect(),
            owned_objects: r.get(7),
        }))
}

/// Standbys streaming as the role now, named by address and
/// application_name: after a password change they fail to authenticate
/// once they reconnect, which is warned about.
async fn streaming_as_role(c: &tokio_postgres::Client, role: &str) -> QueryResult<Vec<String>> {
    Ok(c
        .query(
            "SELECT coalesce(host(client_addr), 'local socket') || coalesce(' (' || nullif(application_name, '') || ')', '')
               FROM pg_stat_replication WHERE usename = $1 ORDER BY 1",
            &[&role],
        )
        .await?
        .into_iter()
        .map(|r| r.get(0))
        .collect())
}

/// Every role the replication role belongs to, directly or not: hba
/// lines that name a group (`+group`) match it too, and membership beyond
/// monitoring means the role is not a dedicated replication role.
async fn memberships(c: &tokio_postgres::Client, role: &str) -> QueryResult<Vec<String>> {
    Ok(c
        .query(
            "WITH RECURSIVE m(oid) AS (
                 SELECT roleid FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.member WHERE r.rolname = $1
               UNION
                 SELECT a.roleid FROM pg_auth_members a JOIN m ON a.member = m.oid)
             SELECT rolname::text FROM pg_roles WHERE oid IN (SELECT oid FROM m)",
            &[&role],
        )
        .await?
        .into_iter()
        .map(|r| r.get(0))
        .collect())
}

/// Existing replication slots by name, with their type: a slot to create
/// may already exist, or exist as a logical one.
async fn slots(c: &tokio_postgres::Client) -> QueryResult<HashMap<String, String>> {
    Ok(c.query(
        "SELECT slot_name::text, slot_type FROM pg_replication_slots",
        &[],
    )
    .await?
    .into_iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

/// The text of postgresql.conf and of every file that sets one of
/// [`SETTINGS`] (postgresql.auto.conf aside: ALTER SYSTEM writes that
/// one): the files an edit may have to go into.
fn config_files(
    config_file: &Path,
    file_settings: &[FileSetting],
    auto_conf: &Path,
) -> Result<BTreeMap<PathBuf, String>> {
    let mut files = BTreeMap::new();
    files.insert(
        config_file.to_path_buf(),
        fsutil::read_to_string(config_file)?,
    );
    for fs in file_settings {
        if SETTINGS.contains(&fs.name.as_str())
            && fs.sourcefile != auto_conf
            && !files.contains_key(&fs.sourcefile)
        {
            files.insert(
                fs.sourcefile.clone(),
                fsutil::read_to_string(&fs.sourcefile)?,
            );
        }
    }
    Ok(files)
}

/// `@file` references in pg_hba.conf are relative to the hba file's directory.
fn read_at_files(
    hba_text: &str,
    hba_file: &Path,
    version_num: u32,
) -> HashMap<String, Vec<crate::conf::hba::Token>> {
    let mut out = HashMap::new();
    let dir = hba_file.parent().unwrap_or(Path::new("/"));
    let syntax = crate::conf::hba::Syntax::for_version(version_num);
    let Ok(parsed) = crate::conf::hba::parse_with(hba_text, syntax) else {
        return out;
    };
    for rec in parsed.records() {
        for tok in rec.databases.iter().chain(rec.users.iter()) {
            if let Some(name) = tok.text.strip_prefix('@') {
                if tok.quoted || out.contains_key(name) {
                    continue;
                }
                let path = if name.starts_with('/') {
                    PathBuf::from(name)
                } else {
                    dir.join(name)
                };
                if let Ok(text) = std::fs::read_to_string(&path) {
                    let toks = text
                        .lines()
                        .map(|l| l.split('#').next().unwrap_or(""))
                        .flat_map(|l| l.split([',', ' ', '\t']))
                        .filter(|t| !t.is_empty())
                        .map(|t| crate::conf::hba::Token {
                            quoted: t.starts_with('"'),
                            text: t.trim_matches('"').to_string(),
                        })
                        .collect();
                    out.insert(name.to_string(), toks);
                }
            }
        }
    }
    out
}

/// This host's interface networks, for `samehost`/`samenet` in pg_hba.conf.
fn local_nets() -> Vec<IpNet> {
    let mut nets = vec![];
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return nets;
    };
    for ifa in addrs {
        let (Some(addr), Some(mask)) = (ifa.address, ifa.netmask) else {
            continue;
        };
        if let (Some(a), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
            let prefix = u32::from(m.ip()).count_ones() as u8;
            if let Ok(n) = ipnet::Ipv4Net::new(a.ip(), prefix) {
                nets.push(IpNet::V4(n));
            }
        } else if let (Some(a), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
            let prefix = u128::from(m.ip()).count_ones() as u8;
            if let Ok(n) = ipnet::Ipv6Net::new(a.ip(), prefix) {
                nets.push(IpNet::V6(n));
            }
        }
    }
    nets
}

/// `(version, cluster)` of the Debian cluster whose data directory this
/// is, when the server also reads that cluster's /etc configuration (a
/// Debian data directory started by hand with its own config is not
/// pg_ctlcluster's to restart).
fn debian_cluster(data_directory: &Path, config_file: &Path) -> Option<(String, String)> {
    pg::debian::by_data_dir(Path::new(pg::debian::ETC_ROOT), data_directory)
        .filter(|d| config_file.parent() == Some(d.config_dir.as_path()))
        .map(|d| (d.version, d.cluster))
}
