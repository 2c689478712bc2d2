//! What follow reads from the standby before it decides anything: that it
//! is a standby (running and in recovery, or stopped cleanly in recovery),
//! where its WAL ends and on which timeline, the timelines it went
//! through, what its configuration says now, and where its WAL receiver
//! streams from. Read-only.

use super::Settings;
use crate::conf::pgconf;
use crate::error::{Code, Error, Result};
use crate::pg::Session;
use crate::pg::cluster::LocalCluster;
use crate::pg::controldata::ClusterState;
use crate::pg::replication::{format_lsn, parse_lsn};
use crate::pg::version::Version;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the standby is.
pub enum Place {
    /// A data directory on this host; `running` when a postmaster serves it.
    Local {
        cluster: LocalCluster,
        running: bool,
    },
    /// A standby reached over SQL as a superuser (`--standby`, 13+).
    Remote { target: String },
}

/// The standby's replication settings as they are now.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Current {
    /// The raw primary_conninfo (may hold a password: never printed as is).
    #[serde(skip)]
    pub conninfo: String,
    pub slot: String,
    pub target_timeline: String,
    /// The configuration files set recovery_target_timeline to `latest`
    /// (it takes a restart, so the live value may still be another).
    pub target_timeline_written: bool,
}

/// The standby's files pgrepctl may edit (local mode), as read now.
#[derive(Debug, Clone, Default)]
pub struct Files {
    pub recovery_conf: Option<String>,
    pub auto_conf: Option<String>,
    pub standby_signal: bool,
    /// The passfile --password-file would write, as it is now.
    pub passfile: Option<String>,
}

/// What the WAL receiver does now.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Receiver {
    pub status: String,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub timeline: Option<u32>,
    pub slot: Option<String>,
}

pub struct Node {
    pub place: Place,
    /// A session on the running standby (remote mode: the superuser's).
    pub session: Option<Session>,
    pub version: Version,
    pub system_id: String,
    pub timeline: u32,
    /// Where its WAL ends: received or replayed (received WAL will be
    /// replayed, so it counts), or a stopped node's end as pg_rewind judges it.
    pub wal_end: u64,
    pub switch_points: Vec<(u32, u64)>,
    pub current: Current,
    pub files: Files,
    pub receiver: Option<Receiver>,
    pub postmaster_start: Option<String>,
}

impl Node {
    pub fn running(&self) -> bool {
        match &self.place {
            Place::Local { running, .. } => *running,
            Place::Remote { .. } => true,
        }
    }

    pub fn cluster(&self) -> Option<&LocalCluster> {
        match &self.place {
            Place::Local { cluster, .. } => Some(cluster),
            Place::Remote { .. } => None,
        }
    }

    /// "-D /var/lib/…" or "host=… port=…", for messages.
    pub fn name(&self) -> String {
        match &self.place {
            Place::Local { cluster, .. } => cluster.data_dir.display().to_string(),
            Place::Remote { target } => target.clone(),
        }
    }

    pub fn report(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name(),
            "running": self.running(),
            "version_num": self.version.num(),
            "system_identifier": self.system_id,
            "timeline": self.timeline,
            "wal_end": format_lsn(self.wal_end),
            "primary_conninfo": super::conninfo::redacted(&self.current.conninfo),
            "primary_slot_name": self.current.slot,
            "recovery_target_timeline": self.current.target_timeline,
            "receiver": self.receiver,
        })
    }
}

/// The standby of `-D`.
pub async fn local(settings: &Settings, pgdata: &Path) -> Result<Node> {
    crate::pg::cluster::major_of(pgdata)?;
    let cluster = LocalCluster::open(pgdata, settings.bindir.as_deref())?;
    let files = read_files(settings, pgdata)?;
    if cluster.running().is_some() {
        let session = cluster.session(Duration::from_secs(5)).await?;
        let facts = session_facts(&session, Some(pgdata)).await?;
        let replayed = facts.replayed;
        let mut seen = running(facts, &session, &files).await?;
        if seen.wal_end > replayed {
            // Received and not replayed may be only the start of a record
            // (WAL is sent in pages): it ends where the last whole one does.
            let segment_size: i64 = session
                .client
                .query_one(
                    "SELECT pg_size_bytes(current_setting('wal_segment_size'))",
                    &[],
                )
                .await
                .map_err(|e| crate::pg::query_error(&session.target, &e))?
                .get(0);
            seen.wal_end =
                super::walend::complete_end(&cluster, seen.timeline, replayed, segment_size as u64)
                    .unwrap_or(seen.wal_end);
        }
        let switch_points = local_history(pgdata, seen.timeline)?;
        let place = Place::Local {
            cluster,
            running: true,
        };
        let mut node = seen.into_node(place, switch_points, files);
        node.session = Some(session);
        return Ok(node);
    }
    stopped(cluster, files)
}

/// The standby of `--standby`, over a superuser session (13+).
pub async fn remote(conninfo: &str, timeout: Duration) -> Result<Node> {
    let config = crate::pg::conninfo::resolve_node(conninfo)?;
    let session = crate::pg::connect(&config, Some(timeout)).await?;
    let version = Version::new(session.version_num)?;
    if !version.primary_conninfo_reloads() {
        return Err(Error::new(
            Code::Usage,
            format!(
                "--standby needs PostgreSQL 13 or later, and {} runs {}: before 13 a new primary_conninfo takes a restart",
                session.target,
                version.major()
            ),
        )
        .hint("run it on the standby's host with -D: pgrepctl follow -D PGDATA --primary …"));
    }
    let t = session.target.clone();
    let superuser: bool = session
        .client
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| crate::pg::query_error(&t, &e))?
        .get(0);
    if !superuser {
        return Err(Error::new(
            Code::NotSuperuser,
            format!("{t}: the role is not a superuser; ALTER SYSTEM needs one"),
        )
        .hint(
            "connect as a superuser (user=postgres), or run follow on the standby's host with -D",
        ));
    }
    let facts = session_facts(&session, None).await?;
    let seen = running(facts, &session, &Files::default()).await?;
    let switch_points = remote_history(&session, seen.timeline).await?;
    let place = Place::Remote {
        target: session.target.clone(),
    };
    let mut node = seen.into_node(place, switch_points, Files::default());
    node.session = Some(session);
    Ok(node)
}

/// What a running server says of itself, in one round trip.
struct SessionFacts {
    version: Version,
    system_id: String,
    timeline: u32,
    /// max(received, replayed): received WAL will be replayed.
    wal_end: u64,
    replayed: u64,
    postmaster_start: String,
}

/// `pgdata` names the standby in messages when it is on this host.
async fn session_facts(session: &Session, pgdata: Option<&Path>) -> Result<SessionFacts> {
    let t = &session.target;
    let row = session
        .client
        .query_one(
            "SELECT pg_is_in_recovery(), \
                    (SELECT system_identifier FROM pg_control_system())::text, \
                    (SELECT timeline_id FROM pg_control_checkpoint()), \
                    (SELECT min_recovery_end_timeline FROM pg_control_recovery()), \
                    pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, \
                    pg_postmaster_start_time()::text",
            &[],
        )
        .await
        .map_err(|e| crate::pg::query_error(t, &e))?;
    if !row.get::<_, bool>(0) {
        return Err(is_a_primary(t, pgdata));
    }
    let lsn = |i: usize| {
        row.get::<_, Option<String>>(i)
            .and_then(|s| parse_lsn(&s))
            .unwrap_or(0)
    };
    let tli = |i: usize| row.get::<_, Option<i32>>(i).unwrap_or(0).max(0) as u32;
    Ok(SessionFacts {
        version: Version::new(session.version_num)?,
        system_id: crate::pg::unsigned_system_id(row.get(1)),
        timeline: tli(2).max(tli(3)),
        wal_end: lsn(4).max(lsn(5)),
        replayed: lsn(5),
        postmaster_start: row.get(6),
    })
}

fn is_a_primary(target: &str, pgdata: Option<&Path>) -> Error {
    let (name, dir) = match pgdata {
        Some(d) => (d.display().to_string(), d.display().to_string()),
        None => (target.to_string(), "PGDATA".to_string()),
    };
    Error::new(
        Code::NotAStandby,
        format!("{name} is a primary, not a standby: follow repoints standbys only"),
    )
    .hint(format!("to turn an old primary into a standby of the new one, run pgrepctl rejoin -D {dir} --primary … (on its host)"))
}

/// A running standby: its settings and its WAL receiver, whose timeline
/// counts too (it may have received a new timeline not yet checkpointed),
/// as do the WAL segments in its pg_wal (a receiver that stopped after
/// it moved to a new timeline shows no row).
async fn running(facts: SessionFacts, session: &Session, files: &Files) -> Result<Seen> {
    let receiver = receiver(session, facts.version).await?;
    let mut timeline = facts.timeline;
    if let Some(t) = receiver.as_ref().and_then(|r| r.timeline) {
        timeline = timeline.max(t);
    }
    let segments: Vec<String> = session
        .client
        .query("SELECT name FROM pg_ls_waldir()", &[])
        .await
        .map_err(|e| crate::pg::query_error(&session.target, &e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    timeline = timeline.max(wal_timeline(segments.iter().map(String::as_str)));
    let current = if facts.version.recovery_conf() {
        from_recovery_conf(files.recovery_conf.as_deref().unwrap_or(""))?
    } else {
        live_settings(session).await?
    };
    Ok(Seen {
        version: facts.version,
        system_id: facts.system_id,
        timeline,
        wal_end: facts.wal_end,
        current,
        receiver,
        postmaster_start: facts.postmaster_start,
    })
}

/// A running standby as its session shows it.
pub(super) struct Seen {
    version: Version,
    system_id: String,
    timeline: u32,
    wal_end: u64,
    current: Current,
    receiver: Option<Receiver>,
    postmaster_start: String,
}

impl Seen {
    fn into_node(self, place: Place, switch_points: Vec<(u32, u64)>, files: Files) -> Node {
        Node {
            place,
            session: None,
            version: self.version,
            system_id: self.system_id,
            timeline: self.timeline,
            wal_end: self.wal_end,
            switch_points,
            current: self.current,
            files,
            receiver: self.receiver,
            postmaster_start: Some(self.postmaster_start),
        }
    }
}

/// The WAL receiver's state, host and port (sender_host/sender_port from
/// 11, parsed out of its conninfo on 10), timeline and slot.
pub async fn receiver(session: &Session, version: Version) -> Result<Option<Receiver>> {
    let q = if version.receiver_shows_sender() {
        "SELECT status, received_tli, sender_host, sender_port, slot_name FROM pg_stat_wal_receiver"
    } else {
        "SELECT status, received_tli, conninfo, NULL::int, slot_name FROM pg_stat_wal_receiver"
    };
    let rows = session
        .client
        .query(q, &[])
        .await
        .map_err(|e| crate::pg::query_error(&session.target, &e))?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let mut host: Option<String> = row.get(2);
    let mut port = row.get::<_, Option<i32>>(3).map(|p| p as u16);
    if !version.receiver_shows_sender() {
        let conninfo = host.take().unwrap_or_default();
        host = super::conninfo::value(&conninfo, "host");
        port = super::conninfo::value(&conninfo, "port").and_then(|p| p.parse().ok());
    }
    Ok(Some(Receiver {
        status: row.get::<_, Option<String>>(0).unwrap_or_default(),
        host,
        port,
        timeline: row.get::<_, Option<i32>>(1).map(|t| t as u32),
        slot: row.get(4),
    }))
}

async fn live_settings(session: &Session) -> Result<Current> {
    let row = session
        .client
        .query_one(
            "SELECT current_setting('primary_conninfo'), current_setting('primary_slot_name'), \
                    current_setting('recovery_target_timeline'), \
                    coalesce((SELECT setting = 'latest' FROM pg_file_settings \
                              WHERE name = 'recovery_target_timeline' AND error IS NULL \
                              ORDER BY seqno DESC LIMIT 1), false)",
            &[],
        )
        .await
        .map_err(|e| crate::pg::query_error(&session.target, &e))?;
    Ok(Current {
        conninfo: row.get(0),
        slot: row.get(1),
        target_timeline: row.get(2),
        target_timeline_written: row.get(3),
    })
}

/// 10–11: the settings are recovery.conf's (recovery_target_timeline
/// defaults to `current` there).
fn from_recovery_conf(text: &str) -> Result<Current> {
    let conf = pgconf::parse(text).map_err(|e| {
        Error::new(
            Code::ConfigParseError,
            format!("recovery.conf:{}: {}", e.line, e.message),
        )
        .hint("fix that line (PostgreSQL would not start with it either) and rerun")
    })?;
    let get = |n: &str| {
        conf.last_active(n)
            .and_then(|l| conf.setting_at(l))
            .map(|(_, v)| v.to_string())
    };
    let target_timeline = get("recovery_target_timeline");
    Ok(Current {
        conninfo: get("primary_conninfo").unwrap_or_default(),
        slot: get("primary_slot_name").unwrap_or_default(),
        target_timeline_written: target_timeline.as_deref() == Some("latest"),
        target_timeline: target_timeline.unwrap_or_else(|| "current".into()),
    })
}

/// A stopped data directory: fine when it shut down cleanly in recovery
/// (a standby); a primary, or a server that crashed, is refused.
fn stopped(cluster: LocalCluster, files: Files) -> Result<Node> {
    let control = cluster.control_data()?;
    let dir = cluster.data_dir.display().to_string();
    match control.state {
        ClusterState::ShutDownInRecovery => {}
        ClusterState::ShutDown | ClusterState::InProduction => {
            return Err(is_a_primary(&dir, Some(&cluster.data_dir)));
        }
        ref other => {
            return Err(Error::new(
                Code::NotAStandby,
                format!("{dir} is stopped and did not shut down cleanly ({other:?}): where its WAL ends is unknown"),
            )
            .hint(format!("start it so that it finishes recovery ({}), then rerun follow", cluster.start_line())));
        }
    }
    let wal_end = crate::pg::timeline::stopped_end(&control).unwrap_or(control.checkpoint_lsn);
    let segments: Vec<String> = std::fs::read_dir(cluster.data_dir.join("pg_wal"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let timeline = control
        .timeline
        .max(control.min_recovery_end_timeline)
        .max(wal_timeline(segments.iter().map(String::as_str)));
    let version = Version::new(cluster.bindir.major * 10000)?;
    let current = if version.recovery_conf() {
        from_recovery_conf(files.recovery_conf.as_deref().unwrap_or(""))?
    } else {
        let get = |n: &str| effective(&cluster, n);
        let target_timeline = get("recovery_target_timeline")?;
        Current {
            conninfo: get("primary_conninfo")?,
            slot: get("primary_slot_name")?,
            target_timeline_written: target_timeline == "latest",
            target_timeline,
        }
    };
    Ok(Node {
        session: None,
        switch_points: local_history(&cluster.data_dir, timeline)?,
        place: Place::Local {
            cluster,
            running: false,
        },
        version,
        system_id: control.system_identifier.to_string(),
        timeline,
        wal_end,
        current,
        files,
        receiver: None,
        postmaster_start: None,
    })
}

/// A setting as the stopped server would read it (`postgres -C`, with
/// Debian's configuration file when the cluster has one).
fn effective(cluster: &LocalCluster, name: &str) -> Result<String> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "-C".into(),
        name.into(),
        "-D".into(),
        cluster.data_dir.clone().into(),
    ];
    if cluster.debian.is_some() {
        let mut c = std::ffi::OsString::from("config_file=");
        c.push(cluster.config_dir.join("postgresql.conf"));
        args.extend(["-c".into(), c]);
    }
    let shown = format!("postgres -C {name} -D {}", cluster.data_dir.display());
    let out = crate::tools::run(
        cluster
            .run_as
            .cmd(cluster.bindir.tool("postgres"), args)
            .stdin_null(),
        &shown,
    )?;
    Ok(out.trim_end_matches('\n').to_string())
}

fn read_files(settings: &Settings, pgdata: &Path) -> Result<Files> {
    Ok(Files {
        recovery_conf: read_optional(&pgdata.join("recovery.conf"))?,
        auto_conf: read_optional(&pgdata.join("postgresql.auto.conf"))?,
        standby_signal: pgdata.join("standby.signal").exists(),
        passfile: match settings.passfile(pgdata) {
            Some(p) => read_optional(&p)?,
            None => None,
        },
    })
}

pub fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::new(
            Code::FileUnreadable,
            format!("cannot read {}: {e}", path.display()),
        )
        .hint("run pgrepctl as the PostgreSQL OS user or as root")),
    }
}

fn local_history(pgdata: &Path, tli: u32) -> Result<Vec<(u32, u64)>> {
    crate::pg::timeline::local_switch_points(pgdata, tli).map_err(|e| {
        let path: PathBuf = pgdata.join("pg_wal").join(format!("{tli:08X}.history"));
        Error::io(format!("cannot read {}", path.display()), e)
    })
}

/// The history file of timeline `tli`, read by the server itself.
async fn remote_history(session: &Session, tli: u32) -> Result<Vec<(u32, u64)>> {
    if tli <= 1 {
        return Ok(vec![]);
    }
    let path = format!("pg_wal/{tli:08X}.history");
    let row = session
        .client
        .query_one("SELECT pg_read_file($1, 0, 1048576, true)", &[&path])
        .await
        .map_err(|e| crate::pg::query_error(&session.target, &e))?;
    let text: Option<String> = row.get(0);
    Ok(text
        .map(|t| crate::pg::timeline::parse_switch_points(&t))
        .unwrap_or_default())
}

/// The newest timeline of the WAL segment files among `names` (0 when
/// none): a standby holds a timeline's segments only once it received
/// that timeline, and recycled segments take the timeline it replays.
pub fn wal_timeline<'a>(names: impl Iterator<Item = &'a str>) -> u32 {
    names
        .filter(|n| n.len() == 24 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .filter_map(|n| u32::from_str_radix(&n[..8], 16).ok())
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_newest_timeline_of_the_segments() {
        let names = [
            "000000010000000000000003",
            "00000002.history",
            "000000020000000000000004.partial",
            "archive_status",
            "00000002000000000000000A",
        ];
        assert_eq!(super::wal_timeline(names.into_iter()), 2);
        assert_eq!(super::wal_timeline(["00000002.history"].into_iter()), 0);
    }
}
