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
    pub at_files: HashMap<String, Vec<crate::conf::hba::Token>>,
    /// `(version, cluster)` when the config lives in Debian's /etc/postgresql.
    pub debian_cluster: Option<(String, String)>,
    /// The running postmaster's own bin directory, for an exact restart.
    pub server_bindir: Option<PathBuf>,
    /// The monitoring role, when one is asked for and exists.
    pub monitor_role: Option<super::monitor::MonitorRole>,
}

pub const SETTINGS: &[&str] = &[
    "wal_level",
    "max_wal_senders",
    "wal_keep_size",
    "wal_keep_segments",
    "hot_standby",
    "listen_addresses",
    "wal_segment_size",
];

pub async fn inspect(settings: &Settings, printer: &Printer) -> Result<Facts> {
    let session = pg::connect(&settings.conn, None).await?;
    pg::check_supported(session.version_num)?;
    let c = &session.client;
    let t = &session.target;
    let q = |e: tokio_postgres::Error| query_error(t, &e);

    let su: bool = c
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(q)?
        .get(0);
    if !su {
        let user = settings.conn.get_user().unwrap_or("?");
        return Err(Error::new(Code::NotSuperuser, format!("{t}: role {user:?} is not a superuser")).hint(
            "connect as a superuser (-U postgres, or run as the postgres OS user); init-master edits server files and roles",
        ));
    }
    printer.debug(format!(
        "connected to {t}, server_version_num {}",
        session.version_num
    ));

    let show = |rows: Vec<tokio_postgres::Row>| -> String {
        rows.first()
            .map(|r| r.get::<_, String>(0))
            .unwrap_or_default()
    };
    let data_directory = PathBuf::from(show(c.query("SHOW data_directory", &[]).await.map_err(q)?));
    let config_file = PathBuf::from(show(c.query("SHOW config_file", &[]).await.map_err(q)?));
    let hba_file = PathBuf::from(show(c.query("SHOW hba_file", &[]).await.map_err(q)?));

    if let Some(d) = &settings.data_dir {
        let server_dir = std::fs::canonicalize(&data_directory).unwrap_or(data_directory.clone());
        if &server_dir != d {
            return Err(Error::new(
                Code::DataDirectoryMismatch,
                format!("-D {} is not the data directory of the server at {t} ({})", d.display(), data_directory.display()),
            )
            .hint("give the -D of the server you connect to, or leave out -h/-p to use the server running on -D"));
        }
    }

    let mut live = HashMap::new();
    for row in c
        .query(
            "SELECT name, setting, context, source FROM pg_settings WHERE name = ANY($1)",
            &[&SETTINGS],
        )
        .await
        .map_err(q)?
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
    // wal_segment_size is reported in bytes on 11+, in 8kB pages on 10.
    let wal_segment_size = {
        let row = c
            .query_one("SELECT setting::bigint, coalesce(unit, '') FROM pg_settings WHERE name = 'wal_segment_size'", &[])
            .await
            .map_err(q)?;
        let v: i64 = row.get(0);
        let unit: String = row.get(1);
        match unit.as_str() {
            "8kB" => v as u64 * 8192,
            "B" | "" => v as u64,
            "MB" => v as u64 * 1024 * 1024,
            _ => v as u64,
        }
    };

    let file_settings: Vec<FileSetting> = c
        .query(
            "SELECT sourcefile, sourceline, seqno, name, coalesce(setting, ''), error FROM pg_file_settings ORDER BY seqno",
            &[],
        )
        .await
        .map_err(q)?
        .into_iter()
        .map(|r| FileSetting {
            sourcefile: PathBuf::from(r.get::<_, Option<String>>(0).unwrap_or_default()),
            sourceline: r.get::<_, Option<i32>>(1).unwrap_or(0) as usize,
            seqno: r.get::<_, Option<i32>>(2).unwrap_or(0),
            name: r.get::<_, Option<String>>(3).unwrap_or_default(),
            setting: r.get(4),
            error: r.get(5),
        })
        .collect();

    let hba_errors: Vec<(usize, String)> = c
        .query(
            "SELECT coalesce(line_number, 0), error FROM pg_hba_file_rules WHERE error IS NOT NULL",
            &[],
        )
        .await
        .map_err(q)?
        .into_iter()
        .map(|r| (r.get::<_, i32>(0) as usize, r.get(1)))
        .collect();

    let role = c
        .query_opt(
            "SELECT rolcanlogin, rolreplication, rolpassword, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls,
                    (SELECT count(*) FROM pg_shdepend d
                      WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = a.oid AND d.deptype = 'o')
               FROM pg_authid a WHERE rolname = $1",
            &[&settings.role],
        )
        .await
        .map_err(q)?
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
        });
    let streaming_as_role: Vec<String> = c
        .query(
            "SELECT coalesce(host(client_addr), 'local socket') || coalesce(' (' || nullif(application_name, '') || ')', '')
               FROM pg_stat_replication WHERE usename = $1 ORDER BY 1",
            &[&settings.role],
        )
        .await
        .map_err(q)?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let memberships: Vec<String> = c
        .query(
            "WITH RECURSIVE m(oid) AS (
                 SELECT roleid FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.member WHERE r.rolname = $1
               UNION
                 SELECT a.roleid FROM pg_auth_members a JOIN m ON a.member = m.oid)
             SELECT rolname::text FROM pg_roles WHERE oid IN (SELECT oid FROM m)",
            &[&settings.role],
        )
        .await
        .map_err(q)?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let monitor_role = match &settings.monitor {
        Some(m) => super::monitor::inspect(c, &m.role).await.map_err(q)?,
        None => None,
    };
    let slots: HashMap<String, String> = c
        .query(
            "SELECT slot_name::text, slot_type FROM pg_replication_slots",
            &[],
        )
        .await
        .map_err(q)?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();

    let auto_conf = data_directory.join("postgresql.auto.conf");
    let mut files = BTreeMap::new();
    files.insert(config_file.clone(), fsutil::read_to_string(&config_file)?);
    for fs in &file_settings {
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
    let hba_text = fsutil::read_to_string(&hba_file)?;
    let at_files = read_at_files(&hba_text, &hba_file, session.version_num);

    Ok(Facts {
        version_num: session.version_num,
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
        at_files,
        monitor_role,
    })
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
