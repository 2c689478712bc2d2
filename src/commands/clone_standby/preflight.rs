//! Everything checked before a single byte is copied: a real replication
//! connection with the standby's own credentials, the primary's settings
//! and WAL rate, local binaries of the primary's major, the target, and
//! free space. Read-only; `--dry-run` stops after this and the plan.

use super::settings::Settings;
use super::target::TargetFacts;
use crate::conf::pgconf;
use crate::error::{Code, Error, Result};
use crate::pg::replication::{Identity, ReplClient, ReplConnection, format_lsn};
use crate::pg::walsender::SlotUse;
use crate::report::{Outcome, Printer};
use crate::tools::{self, BinDir, RunAs};
use crate::units::human_bytes;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::pg::HOT_STANDBY_SETTINGS;
use crate::pg::version::{Version, WalKeep};

#[derive(Debug, Clone)]
pub struct Primary {
    pub identity: Identity,
    pub version_num: u32,
    pub wal_level: String,
    pub wal_segment_size: u64,
    /// `wal_keep_size` (13+) or `wal_keep_segments` × segment size, in bytes.
    pub wal_keep_bytes: u64,
    /// The primary's values of [`crate::pg::HOT_STANDBY_SETTINGS`], in that order.
    pub hot_standby: Vec<(String, i64)>,
    /// Total size of its databases, when a normal connection is allowed.
    pub size: Option<u64>,
    /// WAL bytes per second between two IDENTIFY_SYSTEMs.
    pub wal_rate: Option<f64>,
    /// The compression methods its build offers (`wal_compression`'s
    /// choices, 15+), when a normal connection is allowed.
    pub compression_methods: Option<Vec<String>>,
}

pub struct Facts {
    pub target: TargetFacts,
    pub primary: Primary,
    pub bindir: BinDir,
    /// Who runs PostgreSQL's programs (the data directory's owner when root).
    pub run_as: RunAs,
    pub free_bytes: Option<u64>,
    /// Debian: `(version, cluster, config dir)` whose data_directory is the target.
    pub debian: Option<(String, String, PathBuf)>,
    /// The primary's `listen_addresses` names addresses this host does not
    /// have (a copy would not start): (the primary's value, ours).
    pub listen_override: Option<(String, String)>,
    pub repl: ReplClient,
    pub warnings: Vec<String>,
    /// With --sslrootcert on 13+: primary_conninfo gets
    /// channel_binding=require. The walreceiver's libpq is the standby's
    /// (libpq has channel_binding from 13), the primary is the same major
    /// (SCRAM-SHA-256-PLUS from 11).
    pub channel_binding: bool,
    /// What `--compress auto` is decided from.
    pub ends: super::compress::Ends,
    /// --primary reaches the server running on the target itself (same
    /// system identifier, and its postmaster.pid's socket or address and
    /// port): a standby streaming from itself never advances.
    pub upstream_is_target: bool,
    /// The primary's walsenders (base backups left out), when a normal
    /// connection with the standby's role is allowed.
    pub walsenders: Option<Vec<Walsender>>,
    /// The primary's physical slots, when a normal connection with the
    /// standby's role is allowed (before 15 the one way to know them).
    pub physical_slots: Option<Vec<String>>,
    /// Whether --slot exists on the primary (READ_REPLICATION_SLOT, 15+,
    /// else `physical_slots`; None when neither tells, or without --slot):
    /// set by `run` after the preflight.
    pub slot_exists: Option<bool>,
}

/// A walsender on the primary, as the standby's role sees it: the
/// application_name of every one, the address of those of its own role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walsender {
    pub application_name: String,
    pub addr: Option<std::net::IpAddr>,
    pub slot: Option<String>,
}

impl Facts {
    pub fn report_into(&self, o: &mut Outcome) {
        o.detail(
            "primary",
            serde_json::json!({
                "version_num": self.primary.version_num,
                "system_identifier": self.primary.identity.system_id,
                "timeline": self.primary.identity.timeline,
                "wal_level": self.primary.wal_level,
                "lsn": format_lsn(self.primary.identity.lsn),
                "size_bytes": self.primary.size,
                "wal_rate_bytes_per_second": self.primary.wal_rate.map(|r| r.round() as u64),
            }),
        );
        o.detail("bindir", self.bindir.path.display().to_string());
        o.detail("data_directory", self.target.path.display().to_string());
    }
}

/// The order matters: the replication connection first (the standby's
/// own credentials and the primary's settings are the first things that
/// can be wrong), then local binaries and the target, then a second
/// sample of the primary's WAL position for the WAL rate. Round trips
/// count on a long-distance link: the first sample's commands go in one
/// write, its connection serves the second sample and the link probe
/// (unless channel binding needs a new one), and the normal connection
/// for the size is tried while the first sample runs.
pub async fn inspect(settings: &Settings, target: TargetFacts, printer: &Printer) -> Result<Facts> {
    let run_as = run_as_for(&target.path);
    let mut repl = first_client(settings, run_as, printer)?;
    let t0 = Instant::now();
    let (conn, first, sql) = first_sample(&repl, settings).await?;
    let major = crate::pg::version::Version::of(first.version_num).major();
    printer.debug(format!(
        "primary: PostgreSQL {major}, system {}",
        first.identity.system_id
    ));

    let channel_binding =
        settings.root_ca.is_some() && Version::of(first.version_num).has_channel_binding();
    let (kept, local) = between_samples(
        settings,
        &target,
        major,
        run_as,
        channel_binding,
        conn,
        &mut repl,
    )
    .await?;
    printer.debug(format!("binaries: {}", local.bindir.path.display()));

    // Second sample: the WAL rate over the time the local checks took.
    let wal_keep = Version::of(first.version_num).wal_keep();
    let elapsed = t0.elapsed().max(Duration::from_millis(1));
    let (conn, (id2, keep)) = resample(kept, &repl, &[wal_keep.setting()]).await?;
    let (wal_keep_bytes, wal_rate) = second_sample(&id2, &keep, wal_keep, &first, elapsed);

    let walsenders = sql.as_ref().and_then(|s| s.walsenders.clone());
    let physical_slots = sql.as_ref().and_then(|s| s.physical_slots.clone());
    let primary = Primary {
        identity: first.identity,
        version_num: first.version_num,
        wal_level: first.wal_level,
        wal_segment_size: first.wal_segment_size,
        wal_keep_bytes,
        hot_standby: first.hot_standby,
        size: sql.as_ref().and_then(|s| s.size),
        wal_rate,
        compression_methods: sql.and_then(|s| s.compression_methods),
    };
    let inherits_listen = local.debian.is_none();
    let (listen_override, mut warnings) =
        before_copy_warnings(settings, &primary, &first.listen_addresses, inherits_listen);
    warnings.extend(cleanup_warning(settings));
    let upstream_is_target = upstream_is_target(settings, &target, &primary.identity.system_id);
    Ok(Facts {
        upstream_is_target,
        slot_exists: None,
        ends: compression_ends(settings, &primary, &local.bindir, &repl, conn).await,
        target,
        primary,
        bindir: local.bindir,
        run_as,
        free_bytes: local.free_bytes,
        debian: local.debian,
        listen_override,
        repl,
        warnings,
        channel_binding,
        walsenders,
        physical_slots,
    })
}

/// The first sample's client, announced: the standby's credentials are the first thing to fail.
fn first_client(settings: &Settings, run_as: RunAs, printer: &Printer) -> Result<ReplClient> {
    let repl = ReplClient::new(
        run_as,
        own_conninfo(settings),
        settings.password.clone(),
        settings.password_line().as_deref(),
        settings.connect_timeout,
    )?;
    printer.info(format!(
        "preflight: replication connection to {} as {}",
        settings.primary_name(),
        settings.conninfo.user
    ));
    Ok(repl)
}

/// Between the samples, so inspect reads as its order: a bound client if needed, then local checks.
async fn between_samples(
    settings: &Settings,
    target: &TargetFacts,
    major: u32,
    run_as: RunAs,
    channel_binding: bool,
    conn: ReplConnection,
    repl: &mut ReplClient,
) -> Result<(Option<ReplConnection>, Local)> {
    let mut kept = Some(conn);
    if channel_binding {
        if let Some(c) = kept.take() {
            c.close().await;
        }
        *repl = bound_client(settings, run_as)?;
    }
    match local_checks(settings, target, major, run_as) {
        Ok(local) => Ok((kept, local)),
        Err(e) => {
            if let Some(c) = kept {
                c.close().await;
            }
            Err(e)
        }
    }
}

/// Whether --primary names the server that runs on the target: the same
/// system, at the socket or address and port of the target's postmaster.
fn upstream_is_target(settings: &Settings, target: &TargetFacts, system_id: &str) -> bool {
    match &target.state {
        super::target::Target::DataDir {
            system_id: Some(id),
            running: Some(pid),
            ..
        } => id == system_id && pid.serves(&settings.conninfo.host, settings.conninfo.port),
        _ => false,
    }
}

/// The first sample, with the normal connection for the size tried
/// meanwhile; an answer that rules the primary out closes the connection.
async fn first_sample(
    repl: &ReplClient,
    settings: &Settings,
) -> Result<(ReplConnection, FirstSample, Option<SqlFacts>)> {
    let mut names = vec![
        "server_version_num",
        "wal_level",
        "wal_segment_size",
        "listen_addresses",
    ];
    names.extend(HOT_STANDBY_SETTINGS);
    let (sampled, sql) = tokio::join!(repl.sample(&names), primary_sql(settings));
    let (conn, (identity, values)) = sampled?;
    let first = FirstSample::parse(identity, &values).and_then(|f| {
        require_replica(&f.wal_level)?;
        Ok(f)
    });
    match first {
        Ok(f) => Ok((conn, f, sql)),
        Err(e) => {
            conn.close().await;
            Err(e)
        }
    }
}

/// IDENTIFY_SYSTEM and `names` again, on the kept connection when there
/// is one, else on a new one (kept open in turn).
async fn resample(
    kept: Option<ReplConnection>,
    repl: &ReplClient,
    names: &[&str],
) -> Result<(ReplConnection, (Identity, Vec<String>))> {
    let Some(mut conn) = kept else {
        return repl.sample(names).await;
    };
    match conn.identify_and_show(names).await {
        Ok(answer) => Ok((conn, answer)),
        Err(e) => {
            conn.close().await;
            Err(repl.error(&e))
        }
    }
}

/// What inspect finds on this host between its two samples.
struct Local {
    bindir: BinDir,
    debian: Option<(String, String, PathBuf)>,
    free_bytes: Option<u64>,
}

/// Binaries of the primary's major, the Debian cluster the target
/// belongs to, a writable target, a usable archive, the free space.
fn local_checks(
    settings: &Settings,
    target: &TargetFacts,
    major: u32,
    run_as: RunAs,
) -> Result<Local> {
    let bindir = find_bindir(major, settings.bindir.as_deref())?;
    let debian = debian_config_dir(&target.path, major);
    writable(&target.space_dir)?;
    if let Some(r) = &settings.restore {
        check_restore(r, &target.path, run_as, &bindir)?;
    }
    Ok(Local {
        free_bytes: free_space(&target.space_dir),
        bindir,
        debian,
    })
}

/// The standby's conninfo for the preflight's own replication
/// connections, under application_name pgrepctl: they are not the
/// standby, and must not be taken for it in pg_stat_replication (by the
/// check for a name already in use, by synchronous_standby_names while
/// the link probe streams, by monitoring).
fn own_conninfo(settings: &Settings) -> String {
    settings.conninfo_named(Some("pgrepctl"))
}

/// The second sample, and everything after it, with exactly what the
/// walreceiver will use: channel_binding=require too.
fn bound_client(settings: &Settings, run_as: RunAs) -> Result<ReplClient> {
    ReplClient::new(
        run_as,
        format!("{} channel_binding=require", own_conninfo(settings)),
        settings.password.clone(),
        settings.password_line().as_deref(),
        settings.connect_timeout,
    )
}

/// --archive-cleanup deletes WAL other readers of the archive may need.
fn cleanup_warning(settings: &Settings) -> Option<String> {
    let dir = settings
        .restore
        .as_ref()
        .filter(|r| r.cleanup)
        .and_then(|r| r.dir())?;
    Some(format!(
        "--archive-cleanup: this standby deletes WAL from {} as soon as it no longer needs it itself; another standby, a base backup or a point-in-time recovery reading the same archive loses those files. Use it only when this standby is the archive's one reader; otherwise prune with pgrepctl wal-prune, which keeps what every listed standby and the primary's slots still need",
        dir.display()
    ))
}

/// The primary's answers to the first round of replication commands, in
/// the order `inspect` sends them: who it is and how it is set up.
struct FirstSample {
    identity: Identity,
    version_num: u32,
    wal_level: String,
    wal_segment_size: u64,
    /// Its `listen_addresses`, which the copy inherits.
    listen_addresses: String,
    hot_standby: Vec<(String, i64)>,
}

impl FirstSample {
    /// Reads the `SHOW` answers positionally (server_version_num,
    /// wal_level, wal_segment_size, listen_addresses, then the hot-standby
    /// limits); an answer that does not parse is an error here rather
    /// than a wrong standby configuration later.
    fn parse(identity: Identity, values: &[String]) -> Result<FirstSample> {
        let get = |i: usize| {
            values
                .get(i)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let version_num: u32 = get(0).parse().map_err(|_| {
            Error::new(
                Code::Internal,
                format!("unexpected server_version_num {:?}", get(0)),
            )
        })?;
        crate::pg::check_supported(version_num)?;
        let wal_level = get(1);
        let wal_segment_size = pgconf::parse_size(&get(2), 1).unwrap_or(16 << 20);
        let listen_addresses = get(3);
        let mut hot_standby = vec![];
        for (i, p) in HOT_STANDBY_SETTINGS.iter().enumerate() {
            let v = get(4 + i);
            let n = v.parse().map_err(|_| {
                Error::new(
                    Code::Internal,
                    format!("unexpected {p} {v:?} from the primary"),
                )
            })?;
            hot_standby.push((p.to_string(), n));
        }
        Ok(FirstSample {
            identity,
            version_num,
            wal_level,
            wal_segment_size,
            listen_addresses,
            hot_standby,
        })
    }
}

/// A primary with `wal_level = minimal` writes no WAL a standby could
/// replay: refuse before anything is copied, and say how to fix it.
fn require_replica(wal_level: &str) -> Result<()> {
    if wal_level == "minimal" {
        return Err(Error::new(
            Code::PrimaryNotReady,
            "the primary's wal_level is minimal; standbys need replica".to_string(),
        )
        .hint(
            "run pgrepctl init-master on the primary (it sets wal_level = replica) and restart it",
        ));
    }
    Ok(())
}

/// `(wal_keep_bytes, wal_rate)` from the second sample (the identity and
/// the wal_keep setting), `elapsed` after the first: how much WAL the
/// primary keeps, and how fast it writes WAL (none when the two samples
/// are not of the same system or went backwards).
fn second_sample(
    id2: &Identity,
    keep: &[String],
    wal_keep: WalKeep,
    first: &FirstSample,
    elapsed: Duration,
) -> (u64, Option<f64>) {
    let keep = keep
        .first()
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let wal_keep_bytes = match wal_keep {
        WalKeep::Size => pgconf::parse_size(&keep, 1 << 20).unwrap_or(0),
        WalKeep::Segments => keep.parse::<u64>().unwrap_or(0) * first.wal_segment_size,
    };
    let identity = &first.identity;
    let wal_rate = (id2.system_id == identity.system_id && id2.lsn >= identity.lsn)
        .then(|| (id2.lsn - identity.lsn) as f64 / elapsed.as_secs_f64());
    (wal_keep_bytes, wal_rate)
}

/// What the user should know before the copy, and the `listen_addresses`
/// the standby needs when the primary's would not start here (unless
/// `--listen` chose one): `(listen_override, warnings)`.
/// `inherits_listen`: the copy's configuration file is the primary's
/// (copied with the data directory). A Debian cluster's is its own, in
/// /etc, which the copy does not replace: the primary's listen_addresses
/// says nothing about the standby's then.
fn before_copy_warnings(
    settings: &Settings,
    primary: &Primary,
    primary_listen: &str,
    inherits_listen: bool,
) -> (Option<(String, String)>, Vec<String>) {
    let mut warnings = vec![];
    if let Some(w) = retention_warning(primary, settings.slot.is_some()) {
        warnings.push(w);
    }
    let listen_override = match &settings.listen {
        None if inherits_listen => local_listen(primary_listen, &crate::net::can_bind),
        _ => None,
    };
    if let Some((theirs, ours)) = &listen_override {
        warnings.push(format!(
            "the primary's listen_addresses '{theirs}' names addresses this host does not have, so a copy would not start; the standby gets listen_addresses = '{ours}' (pass --listen ADDRS to choose, e.g. --listen '*')"
        ));
    }
    (listen_override, warnings)
}

/// The archive the standby restores from is usable by the server's OS
/// user (readable; writable too when it cleans it up), the program the
/// command runs is executable by it, and pg_archivecleanup is there.
fn check_restore(
    r: &super::settings::Restore,
    target: &Path,
    run_as: RunAs,
    bindir: &BinDir,
) -> Result<()> {
    use super::settings::RestoreHow;
    use crate::commands::archive_dir::{self, Access, Creds};
    let Some(dir) = r.dir() else {
        return Ok(());
    };
    if r.cleanup && !bindir.tool("pg_archivecleanup").is_file() {
        return Err(Error::new(
            Code::ToolNotFound,
            format!("--archive-cleanup: no pg_archivecleanup in {}", bindir.path.display()),
        )
        .hint("install the PostgreSQL client programs of this major there, or leave out --archive-cleanup"));
    }
    let creds = Creds::of_server(target).or_else(|| run_as.ids.map(|(u, g)| Creds::of_ids(u, g)));
    let access = if r.cleanup {
        Access::Write
    } else {
        Access::Read
    };
    let program = match &r.how {
        RestoreHow::Dir { pgrepctl, .. } => Some(pgrepctl.as_path()),
        RestoreHow::Command(_) => None,
    };
    archive_dir::check("--restore-dir", dir, access, creds.as_ref(), program)
}

/// Who owns (or will own) the target: its owner, else its parent's owner
/// when that is not root, else `postgres` — only when we are root.
pub fn run_as_for(path: &Path) -> RunAs {
    if path.exists() {
        let r = RunAs::owner_of(path);
        if r.ids.is_some() {
            return r;
        }
    }
    if let Some(parent) = path.parent() {
        let r = RunAs::owner_of(parent);
        if r.ids.is_some() {
            return r;
        }
    }
    RunAs::postgres_if_root()
}

/// `listen_addresses` for this host when `primary`'s names addresses it
/// does not have (PostgreSQL would refuse to start: "could not bind …
/// Cannot assign requested address"): keep the entries this host can
/// bind, or `localhost` when none is left. None when the value works here.
pub fn local_listen(
    primary: &str,
    can_bind: &dyn Fn(std::net::IpAddr) -> bool,
) -> Option<(String, String)> {
    let entries: Vec<&str> = primary
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let kept: Vec<&str> = entries
        .iter()
        .copied()
        .filter(|e| crate::net::listen_entry_bindable(e, can_bind))
        .collect();
    if kept.len() == entries.len() {
        return None;
    }
    let ours = if kept.is_empty() {
        "localhost".to_string()
    } else {
        kept.join(",")
    };
    Some((primary.to_string(), ours))
}

/// Binaries of the primary's major, or a VERSION_MISMATCH that names
/// what was found and why it was rejected.
fn find_bindir(major: u32, explicit: Option<&Path>) -> Result<BinDir> {
    match tools::search(major, explicit, None)? {
        tools::Search::Found(b) => Ok(b),
        tools::Search::Missing { tried } if tried.is_empty() => {
            Err(tools::Search::Missing { tried }.error(major))
        }
        missing => {
            let mut e = missing.error(major);
            e.code = Code::VersionMismatch;
            e.message = format!(
                "the primary runs PostgreSQL {major}, and a standby must run the same major: {}",
                e.message
            );
            Err(e)
        }
    }
}

/// Debian keeps a cluster's configuration in /etc/postgresql/MAJOR/NAME:
/// the cluster of the primary's major whose data_directory is the target,
/// as `(version, cluster, config dir)`.
pub fn debian_config_dir(target: &Path, major: u32) -> Option<(String, String, PathBuf)> {
    crate::pg::debian::by_data_dir(Path::new(crate::pg::debian::ETC_ROOT), target)
        .filter(|d| d.version == major.to_string())
        .map(|d| (d.version, d.cluster, d.config_dir))
}

/// The copy is made in `dir`: it must take new entries (a read-only mount
/// or missing permission fails here, before anything is copied).
fn writable(dir: &Path) -> Result<()> {
    use nix::unistd::{AccessFlags, access};
    access(dir, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|e| {
        let why = if e == nix::errno::Errno::EROFS { "is on a read-only filesystem" } else { "is not writable by this user" };
        Error::new(Code::FileNotWritable, format!("{} {why}, and the copy is made there", dir.display()))
            .hint("choose a data directory on a writable filesystem, or run pgrepctl as root or the PostgreSQL user")
    })
}

pub fn free_space(dir: &Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(s.blocks_available() as u64 * s.fragment_size() as u64)
}

/// Both ends' compression support, whether the primary is this host, and
/// the link probe where `--compress auto` decides from it.
async fn compression_ends(
    settings: &Settings,
    primary: &Primary,
    bindir: &BinDir,
    repl: &ReplClient,
    conn: ReplConnection,
) -> super::compress::Ends {
    let local = crate::net::is_local(&settings.conninfo.host);
    let link = match !local && wants_probe(settings) {
        true => super::probe::link(conn, repl, primary.wal_segment_size).await,
        false => {
            conn.close().await;
            None
        }
    };
    use super::compress::links;
    let offers = |m: &str| {
        primary
            .compression_methods
            .as_ref()
            .map(|ms| ms.iter().any(|x| x == m))
    };
    let basebackup = bindir.tool("pg_basebackup");
    super::compress::Ends {
        version_num: primary.version_num,
        server_zstd: offers("zstd"),
        server_lz4: offers("lz4"),
        client_zstd: links(&basebackup, "zstd"),
        client_lz4: links(&basebackup, "lz4"),
        local,
        link,
    }
}

/// What a normal SQL connection tells that a replication one cannot.
struct SqlFacts {
    size: Option<u64>,
    compression_methods: Option<Vec<String>>,
    walsenders: Option<Vec<Walsender>>,
    physical_slots: Option<Vec<String>>,
}

/// The primary's size and its build's compression methods through a
/// normal connection with the same role, which pg_hba.conf may well
/// refuse; then the copy's own announcement is the size check, and a
/// build without zstd shows when the copy starts.
async fn primary_sql(settings: &Settings) -> Option<SqlFacts> {
    let mut config = tokio_postgres::Config::new();
    if settings.conninfo.host.starts_with('/') {
        config.host_path(&settings.conninfo.host);
    } else {
        config.host(&settings.conninfo.host);
    }
    config
        .port(settings.conninfo.port)
        .user(&settings.conninfo.user)
        .dbname("postgres")
        .application_name("pgrepctl");
    if let Some(p) = &settings.password {
        config.password(p.expose());
    }
    let session = crate::pg::connect(&config.into(), Some(settings.connect_timeout))
        .await
        .ok()?;
    let size = session
        .client
        .query_one(
            "SELECT sum(pg_database_size(oid))::bigint FROM pg_database",
            &[],
        )
        .await
        .ok()
        .and_then(|row| row.get::<_, Option<i64>>(0))
        .map(|n| n as u64);
    // An enum from 15 on; its choices are the build's (pglz, lz4, zstd).
    let compression_methods = session
        .client
        .query_opt(
            "SELECT enumvals FROM pg_settings WHERE name = 'wal_compression' AND vartype = 'enum'",
            &[],
        )
        .await
        .ok()
        .flatten()
        .and_then(|row| row.get::<_, Option<Vec<String>>>(0));
    Some(SqlFacts {
        size,
        compression_methods,
        walsenders: walsenders(&session.client).await,
        physical_slots: physical_slots(&session.client).await,
    })
}

/// The primary's physical slots (pg_replication_slots is readable by
/// every role).
async fn physical_slots(client: &tokio_postgres::Client) -> Option<Vec<String>> {
    let rows = client
        .query(
            "SELECT slot_name::text FROM pg_replication_slots WHERE slot_type = 'physical'",
            &[],
        )
        .await
        .ok()?;
    Some(rows.iter().map(|r| r.get(0)).collect())
}

/// The primary's walsenders, each with the slot it holds (base backups,
/// when their state is visible, left out).
async fn walsenders(client: &tokio_postgres::Client) -> Option<Vec<Walsender>> {
    let rows = client
        .query(
            "SELECT coalesce(r.application_name, ''), host(r.client_addr), s.slot_name::text \
             FROM pg_stat_replication r LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid \
             WHERE r.state IS DISTINCT FROM 'backup'",
            &[],
        )
        .await
        .ok()?;
    Some(
        rows.iter()
            .map(|r| Walsender {
                application_name: r.get(0),
                addr: r.get::<_, Option<String>>(1).and_then(|a| a.parse().ok()),
                slot: r.get(2),
            })
            .collect(),
    )
}

/// A warning when another standby already streams from the primary under
/// this standby's application_name: synchronous_standby_names and
/// monitoring would not tell the two apart. `in_place`: the standby
/// already at the target, running, when it streams under that name now
/// (a rerun): its own walsender is not another standby's.
pub fn name_in_use(
    settings: &Settings,
    facts: &Facts,
    in_place: Option<&super::configure::Current>,
) -> Option<String> {
    let name = settings.conninfo.application_name.as_str();
    let own = in_place
        .filter(|c| c.application_name.as_deref() == Some(name))
        .map(|c| SlotUse::of(c.slot.as_deref().filter(|s| !s.is_empty())));
    let why = match (settings.application_name_given, own) {
        (false, None) => " (this host's name, the default)",
        _ => "",
    };
    shared_name(name, why, facts.walsenders.as_deref()?, own)
}

/// [`name_in_use`]'s decision: the walsenders under `name`, less the
/// one (`own`, the slot of the standby in place) that may be this
/// standby's own.
fn shared_name(
    name: &str,
    why: &str,
    senders: &[Walsender],
    own: Option<SlotUse>,
) -> Option<String> {
    let mut others: Vec<&Walsender> = senders
        .iter()
        .filter(|s| s.application_name == name)
        .collect();
    if let Some(slot) = own
        && let Some(k) = others.iter().position(|s| slot.fits(s.slot.as_deref()))
    {
        others.remove(k);
    }
    if others.is_empty() {
        return None;
    }
    let each: Vec<String> = others
        .iter()
        .map(|s| {
            let from = s
                .addr
                .map_or("from an address not shown".into(), |a| format!("from {a}"));
            match &s.slot {
                Some(slot) => format!("{from}, slot {slot}"),
                None => from,
            }
        })
        .collect();
    Some(format!(
        "application_name {name}{why} is already used on the primary by {} walsender(s) ({}): another standby streams under it, and synchronous_standby_names and monitoring (pg_stat_replication, pgrepctl check) cannot tell the two standbys apart; give this one a name of its own with --application-name NAME",
        others.len(),
        each.join("; ")
    ))
}

/// The probe serves only `--compress auto` from a remote primary (the
/// caller knows), and not under `--max-rate`: its burst is what that flag
/// forbids. On 15+ it decides the compression; before 15, which cannot
/// compress, it decides whether the report suggests the SSH tunnel.
fn wants_probe(settings: &Settings) -> bool {
    settings.compress == super::compress::Requested::Auto && settings.max_rate.is_none()
}

/// Bytes the copy needs at the target: the data plus a tenth, plus WAL
/// streamed alongside.
pub fn space_needed(size: u64, wal_segment_size: u64) -> u64 {
    size + size / 10 + 2 * wal_segment_size
}

/// Without a slot, the primary may recycle WAL the new standby still needs
/// once the copy ends and before it streams; warn when wal_keep covers less
/// than the copy's duration at the current WAL rate.
fn retention_warning(p: &Primary, slot: bool) -> Option<String> {
    if slot {
        return None;
    }
    let rate = p.wal_rate?;
    // Assume a modest 50 MB/s copy when the size is known, a minute otherwise.
    let secs = p.size.map(|s| s as f64 / 50e6).unwrap_or(60.0).max(10.0);
    let wal = (rate * secs) as u64;
    if p.wal_keep_bytes >= wal.max(p.wal_segment_size) {
        return None;
    }
    let setting = Version::of(p.version_num).wal_keep().setting();
    Some(format!(
        "no replication slot, and the primary's {setting} keeps {} of WAL while it writes about {}/s (~{} during a {:.0}s copy): a standby that starts late may find the WAL it needs gone; pass --slot NAME, or raise {setting} on the primary (pgrepctl init-master --wal-keep SIZE)",
        human_bytes(p.wal_keep_bytes),
        human_bytes(rate as u64),
        human_bytes(wal),
        secs
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn primary() -> Primary {
        Primary {
            identity: Identity {
                system_id: "1".into(),
                timeline: 1,
                lsn: 0,
            },
            version_num: 150000,
            wal_level: "replica".into(),
            wal_segment_size: 16 << 20,
            wal_keep_bytes: 0,
            hot_standby: vec![],
            size: Some(1 << 30),
            wal_rate: Some(10e6),
            compression_methods: None,
        }
    }

    #[test]
    fn warns_only_without_slot_and_enough_keep() {
        let p = primary();
        let w = retention_warning(&p, false).unwrap();
        assert!(w.contains("wal_keep_size"), "{w}");
        assert!(retention_warning(&p, true).is_none());
        let mut kept = primary();
        kept.wal_keep_bytes = 8 << 30;
        assert!(retention_warning(&kept, false).is_none());
        let mut old = primary();
        old.version_num = 120000;
        assert!(
            retention_warning(&old, false)
                .unwrap()
                .contains("wal_keep_segments")
        );
        let mut idle = primary();
        idle.wal_rate = Some(0.0);
        idle.wal_keep_bytes = 16 << 20;
        assert!(retention_warning(&idle, false).is_none());
    }

    #[test]
    fn listen_addresses_this_host_cannot_bind_are_replaced() {
        let addrs: Vec<std::net::IpAddr> =
            vec!["127.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        let local = |ip| addrs.contains(&ip);
        assert_eq!(local_listen("*", &local), None);
        assert_eq!(local_listen("localhost,10.0.0.2", &local), None);
        assert_eq!(
            local_listen("localhost,10.0.0.1", &local),
            Some(("localhost,10.0.0.1".into(), "localhost".into()))
        );
        assert_eq!(
            local_listen("10.0.0.1", &local),
            Some(("10.0.0.1".into(), "localhost".into()))
        );
        assert_eq!(
            local_listen("10.0.0.1, 127.0.0.1", &local),
            Some(("10.0.0.1, 127.0.0.1".into(), "127.0.0.1".into()))
        );
    }

    #[test]
    fn a_name_another_standby_streams_under_is_warned_about() {
        let ws = |app: &str, addr: &str, slot: Option<&str>| Walsender {
            application_name: app.into(),
            addr: addr.parse().ok(),
            slot: slot.map(Into::into),
        };
        let other = [ws("db2", "10.0.0.2", None), ws("db3", "10.0.0.3", None)];
        let w = shared_name("db2", " (this host's name, the default)", &other, None).unwrap();
        assert!(w.contains("db2 (this host's name, the default)"), "{w}");
        assert!(
            w.contains("from 10.0.0.2") && w.contains("--application-name"),
            "{w}"
        );
        assert_eq!(shared_name("db4", "", &other, None), None);
        // A rerun: the standby in place streams under the name itself.
        assert_eq!(shared_name("db2", "", &other, Some(SlotUse::NoSlot)), None);
        // ... beside another standby of that name: that one is warned about.
        let both = [ws("db2", "10.0.0.2", Some("a")), ws("db2", "", None)];
        let w = shared_name("db2", "", &both, Some(SlotUse::NoSlot)).unwrap();
        assert!(
            w.contains("by 1 walsender(s) (from 10.0.0.2, slot a)"),
            "{w}"
        );
        let w = shared_name("db2", "", &both, Some(SlotUse::Named("a"))).unwrap();
        assert!(w.contains("(from an address not shown)"), "{w}");
        // Its slot is not the walsender's: that walsender is another's.
        let w = shared_name("db2", "", &other, Some(SlotUse::Named("b")));
        assert!(w.is_some());
    }

    #[test]
    fn space_margin() {
        assert_eq!(space_needed(1000, 16), 1000 + 100 + 32);
    }
}
