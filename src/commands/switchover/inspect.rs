//! What switchover reads before it decides anything: this node (a running
//! primary, or where an interrupted switchover left it), the candidate
//! and the siblings, each over a superuser session. Nothing here changes
//! anything.

use super::Settings;
use crate::error::{Code, Error, Result};
use crate::pg::Session;
use crate::pg::cluster::LocalCluster;
use crate::pg::replication::parse_lsn;
use crate::pg::version::Version;
use crate::report::{Outcome, Printer};
use serde::Serialize;
use std::net::IpAddr;
use std::time::Duration;

/// The setting switchover's drain writes with `default_transaction_read_only`,
/// so that a rerun knows writes were turned off by it (and may turn them
/// on again) rather than by a DBA.
pub const DRAIN_MARKER: &str = "pgrepctl.switchover";

/// Where this node stands: the steps a run still has to take follow from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Running as a primary; `draining` when an interrupted run left
    /// writes off (the marker is in postgresql.auto.conf).
    Primary { draining: bool },
    /// Shut down cleanly as a primary, not configured as a standby yet.
    Stopped,
    /// Stopped and configured as a standby (standby.signal or recovery.conf).
    Fenced,
    /// Running as a standby.
    Standby,
}

/// A walsender on this node, as pg_stat_replication shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Sender {
    pub application_name: String,
    pub user: String,
    pub addr: Option<IpAddr>,
    pub state: String,
    pub slot: Option<String>,
    /// Seconds since the standby last replied (pg_stat_replication's
    /// reply_time, 12+; none before, or before its first reply).
    pub reply_age: Option<f64>,
}

/// This node.
pub struct Old {
    pub cluster: LocalCluster,
    pub version: Version,
    pub system_id: String,
    pub timeline: u32,
    pub phase: Phase,
    /// Running primary: the current WAL position; stopped: where its
    /// shutdown checkpoint record starts (L).
    pub lsn: u64,
    pub senders: Vec<Sender>,
    /// The hot-standby settings (running only).
    pub limits: Vec<(String, i64)>,
    /// `hot_standby = on` (running only): as a standby it must take
    /// connections, or nothing could prove it streams.
    pub hot_standby: bool,
    /// `pg_postmaster_start_time()` (running only): with the system
    /// identifier, tells this server from another of the same system.
    pub started: Option<String>,
    /// `archive_mode` (running only).
    pub archive_mode: Option<String>,
    /// The replication slots here (running only): a rerun's plan drops
    /// only those that exist.
    pub slots: Option<Vec<String>>,
    pub session: Option<Session>,
    /// Stopped: what its configuration says of the switchover that
    /// stopped it (default when running).
    pub leftover: Leftover,
}

/// What a stopped node's configuration holds of a switchover: the drain
/// marker (written when it turned writes off, dropped by the fence's
/// last edit), and where the fence pointed it: a kill at any step
/// between the two leaves one or the other. A node stopped by hand, or made another primary's
/// standby since, has neither marker nor the candidate as upstream.
#[derive(Debug, Clone, Default)]
pub struct Leftover {
    pub marker: bool,
    /// `(host, port)` of its primary_conninfo (postgresql.auto.conf, or
    /// recovery.conf before 12).
    pub upstream: Option<(String, u16)>,
    /// The role, name and slot the fence wrote: what the interrupted run
    /// decided, which its rerun keeps.
    pub names: StreamNames,
}

/// The role, application_name and slot a standby streams (or streamed)
/// with, from a primary_conninfo and primary_slot_name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamNames {
    pub user: Option<String>,
    pub application_name: Option<String>,
    pub slot: Option<String>,
}

impl StreamNames {
    fn from_settings(conninfo: Option<&str>, slot: Option<&str>) -> StreamNames {
        let pairs = conninfo.map(crate::pg::conninfo::pairs).unwrap_or_default();
        let value = |k: &str| {
            pairs
                .iter()
                .find(|(key, v)| key == k && !v.is_empty())
                .map(|(_, v)| v.clone())
        };
        StreamNames {
            user: value("user"),
            application_name: value("application_name"),
            slot: slot.filter(|s| !s.is_empty()).map(str::to_string),
        }
    }
}

impl Leftover {
    fn read(data_dir: &std::path::Path, version_num: u32) -> Leftover {
        use crate::conf::pgconf;
        let file = |name: &str| {
            std::fs::read_to_string(data_dir.join(name))
                .ok()
                .and_then(|t| pgconf::parse(&t).ok())
        };
        let value = |f: &pgconf::ConfFile, name: &str| {
            f.last_active(name)
                .and_then(|l| f.setting_at(l))
                .map(|(_, v)| v)
        };
        let auto = file("postgresql.auto.conf");
        let marker = auto.as_ref().and_then(|f| value(f, DRAIN_MARKER)).is_some();
        let standby = if crate::conf::standby::uses_recovery_conf(version_num) {
            file("recovery.conf")
        } else {
            auto
        };
        // As pgrepctl's clients take a primary_conninfo (without the
        // passfile a fence writes), host and port as --candidate's are read.
        let conninfo = standby.as_ref().and_then(|f| value(f, "primary_conninfo"));
        let upstream = conninfo
            .as_ref()
            .and_then(|c| crate::pg::conninfo::parse(&crate::pg::conninfo::for_client(c).0).ok())
            .map(|c| crate::pg::conninfo::first_host_port(&c));
        let slot = standby.as_ref().and_then(|f| value(f, "primary_slot_name"));
        Leftover {
            marker,
            upstream,
            names: StreamNames::from_settings(conninfo.as_deref(), slot.as_deref()),
        }
    }
}

/// The candidate or a sibling, over a superuser session.
pub struct Node {
    pub given: String,
    pub session: Session,
    pub version: Version,
    pub superuser: bool,
    pub system_id: String,
    pub in_recovery: bool,
    pub timeline: u32,
    pub receive: Option<u64>,
    pub replay: Option<u64>,
    pub paused: bool,
    /// recovery_min_apply_delay in milliseconds (12+; 0 before).
    pub apply_delay_ms: i64,
    pub receiver: Option<Receiver>,
    /// What its configuration names (12+: primary_conninfo and
    /// primary_slot_name; none before): still there while its upstream is
    /// down, and after a promotion, when no WAL receiver shows them.
    pub configured: StreamNames,
    /// This host's address as the node sees our session.
    pub our_addr: Option<IpAddr>,
    /// The node's own address on that connection.
    pub own_addr: Option<IpAddr>,
    pub max_wal_senders: i64,
    pub senders_in_use: i64,
    pub max_slots: i64,
    pub slots: Vec<String>,
    pub sync_names: String,
    /// `ssl = on`: a walreceiver with libpq's default sslmode (prefer) uses TLS.
    pub ssl: bool,
    pub started: String,
    /// wal_receiver_status_interval, in seconds (0: no periodic replies).
    pub status_interval: f64,
    /// off, on or always.
    pub archive_mode: String,
    pub limits: Vec<(String, i64)>,
}

/// The node's WAL receiver: whom it streams from, as whom, under what name.
#[derive(Debug, Clone, Serialize)]
pub struct Receiver {
    pub status: String,
    pub user: Option<String>,
    pub application_name: Option<String>,
    pub slot: Option<String>,
    pub timeline: Option<u32>,
    /// `(host, port)` of its conninfo, as --candidate's are read.
    pub upstream: Option<(String, u16)>,
}

pub struct Facts {
    pub old: Old,
    pub candidate: Node,
    pub siblings: Vec<Node>,
    /// The candidate's pg_hba.conf, read as superuser (None: not readable).
    pub candidate_hba: Option<String>,
}

impl Node {
    pub fn name(&self) -> &str {
        &self.session.target
    }

    /// The slot it streams through, else the one it is configured with.
    pub fn upstream_slot(&self) -> Option<&str> {
        self.receiver
            .as_ref()
            .and_then(|r| r.slot.as_deref())
            .or(self.configured.slot.as_deref())
    }

    /// The role it streams as, else the one it is configured with.
    pub fn upstream_user(&self) -> Option<&str> {
        self.receiver
            .as_ref()
            .and_then(|r| r.user.as_deref())
            .or(self.configured.user.as_deref())
    }

    /// The application_name it streams under, else its configured one.
    pub fn upstream_application_name(&self) -> Option<&str> {
        self.receiver
            .as_ref()
            .and_then(|r| r.application_name.as_deref())
            .or(self.configured.application_name.as_deref())
    }
}

impl Facts {
    pub fn report_into(&self, o: &mut Outcome) {
        o.detail("data_directory", &self.old.cluster.data_dir);
        o.detail("phase", &self.old.phase);
        o.detail("timeline", self.old.timeline);
        o.detail("candidate", self.candidate.name());
        o.detail(
            "siblings",
            self.siblings.iter().map(Node::name).collect::<Vec<_>>(),
        );
    }
}

pub async fn inspect(settings: &Settings, printer: &Printer) -> Result<Facts> {
    crate::pg::cluster::major_of(&settings.pgdata)?;
    let cluster = LocalCluster::open(&settings.pgdata, settings.bindir.as_deref())?;
    let old = old(cluster).await?;
    printer.step(format!("asking the candidate {}", settings.candidate));
    let candidate = node(&settings.candidate, settings.connect_timeout).await?;
    let mut siblings = vec![];
    for s in &settings.siblings {
        printer.step(format!("asking the sibling {s}"));
        siblings.push(node(s, settings.connect_timeout).await?);
    }
    let candidate_hba = hba_text(&candidate).await;
    Ok(Facts {
        old,
        candidate,
        siblings,
        candidate_hba,
    })
}

/// This node, running or stopped.
async fn old(cluster: LocalCluster) -> Result<Old> {
    if cluster.running().is_none() {
        return stopped(cluster);
    }
    let session = cluster.session(Duration::from_secs(5)).await?;
    let t = session.target.clone();
    let q = |e: tokio_postgres::Error| crate::pg::query_error(&t, &e);
    let row = session
        .client
        .query_one(
            "SELECT pg_is_in_recovery(), \
                    (SELECT system_identifier FROM pg_control_system())::text, \
                    CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
                         ELSE pg_current_wal_lsn() END::text, \
                    CASE WHEN pg_is_in_recovery() \
                         THEN greatest((SELECT timeline_id FROM pg_control_checkpoint()), \
                                       (SELECT received_tli FROM pg_stat_wal_receiver)) \
                         ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END, \
                    EXISTS (SELECT 1 FROM pg_file_settings WHERE name = $1 \
                            AND sourcefile LIKE '%/postgresql.auto.conf'), \
                    current_setting('hot_standby') = 'on', pg_postmaster_start_time()::text, \
                    current_setting('archive_mode'), \
                    ARRAY(SELECT slot_name::text FROM pg_replication_slots)",
            &[&DRAIN_MARKER],
        )
        .await
        .map_err(q)?;
    let version = Version::new(session.version_num)?;
    let in_recovery: bool = row.get(0);
    let phase = if in_recovery {
        Phase::Standby
    } else {
        Phase::Primary {
            draining: row.get(4),
        }
    };
    let senders = if in_recovery {
        vec![]
    } else {
        senders(&session).await?
    };
    let limits = limits(&session).await?;
    Ok(Old {
        version,
        system_id: crate::pg::unsigned_system_id(row.get(1)),
        lsn: row
            .get::<_, Option<String>>(2)
            .and_then(|s| parse_lsn(&s))
            .unwrap_or(0),
        timeline: row.get::<_, i32>(3).max(0) as u32,
        phase,
        senders,
        limits,
        hot_standby: row.get(5),
        started: Some(row.get(6)),
        archive_mode: Some(row.get(7)),
        slots: Some(row.get(8)),
        session: Some(session),
        cluster,
        leftover: Leftover::default(),
    })
}

/// A stopped node: it must have shut down cleanly (a crashed primary is a
/// failover: promote and rejoin are for that).
fn stopped(cluster: LocalCluster) -> Result<Old> {
    let control = cluster.control_data()?;
    if !control.state.is_clean_shutdown() {
        return Err(Error::new(
            Code::ServerNotRunning,
            format!(
                "no server runs on {} and it did not shut down cleanly ({:?})",
                cluster.data_dir.display(),
                control.state
            ),
        )
        .hint("a primary that crashed is a failover, not a switchover: promote the candidate (pgrepctl promote), then pgrepctl rejoin this node; or start it and rerun"));
    }
    let fenced = if crate::conf::standby::uses_recovery_conf(control_version(&cluster)?) {
        cluster.data_dir.join("recovery.conf").exists()
    } else {
        cluster.data_dir.join("standby.signal").exists()
    };
    let version_num = control_version(&cluster)?;
    Ok(Old {
        leftover: Leftover::read(&cluster.data_dir, version_num),
        version: Version::new(version_num)?,
        system_id: control.system_identifier.to_string(),
        timeline: control.timeline,
        phase: if fenced {
            Phase::Fenced
        } else {
            Phase::Stopped
        },
        lsn: control.checkpoint_lsn,
        senders: vec![],
        limits: vec![],
        hot_standby: true,
        started: None,
        archive_mode: None,
        slots: None,
        session: None,
        cluster,
    })
}

/// The major version of a stopped data directory, as a version number.
fn control_version(cluster: &LocalCluster) -> Result<u32> {
    let major = crate::pg::cluster::major_of(&cluster.data_dir)?;
    Ok(if major >= 10 {
        major * 10000
    } else {
        major * 100
    })
}

async fn senders(session: &Session) -> Result<Vec<Sender>> {
    let reply_age = if session.version_num >= 120000 {
        "extract(epoch FROM now() - r.reply_time)::float8"
    } else {
        "NULL::float8"
    };
    let rows = session
        .client
        .query(
            &format!(
                "SELECT coalesce(r.application_name, ''), coalesce(r.usename::text, ''), \
                    host(r.client_addr), coalesce(r.state, ''), s.slot_name::text, {reply_age} \
                 FROM pg_stat_replication r \
                 LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid"
            ),
            &[],
        )
        .await
        .map_err(|e| crate::pg::query_error(&session.target, &e))?;
    Ok(rows
        .iter()
        .map(|r| Sender {
            application_name: r.get(0),
            user: r.get(1),
            addr: r.get::<_, Option<String>>(2).and_then(|a| a.parse().ok()),
            state: r.get(3),
            slot: r.get(4),
            reply_age: r.get(5),
        })
        .collect())
}

async fn limits(session: &Session) -> Result<Vec<(String, i64)>> {
    let names: Vec<String> = crate::pg::HOT_STANDBY_SETTINGS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rows = session
        .client
        .query(
            "SELECT name, setting::bigint FROM pg_settings WHERE name = ANY($1)",
            &[&names],
        )
        .await
        .map_err(|e| crate::pg::query_error(&session.target, &e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The candidate or a sibling: a superuser session and what it shows.
pub async fn node(given: &str, timeout: Duration) -> Result<Node> {
    let config = crate::pg::conninfo::resolve_node(given)?;
    let session = crate::pg::connect(&config, Some(timeout))
        .await
        .map_err(|e| match e.code {
            Code::ConnectionFailed => e.hint(
                "on that host, listen_addresses must include an address this host reaches (pgrepctl init-master -D PGDATA --listen '*' --restart if-needed there: clone-standby does not copy a configuration kept in /etc), and its pg_hba.conf must let this host's superuser in",
            ),
            _ => e,
        })?;
    let version = Version::new(session.version_num)?;
    let t = session.target.clone();
    let q = |e: tokio_postgres::Error| crate::pg::query_error(&t, &e);
    let row = session
        .client
        .query_one(&node_sql(version), &[])
        .await
        .map_err(q)?;
    let lsn = |i: usize| row.get::<_, Option<String>>(i).and_then(|s| parse_lsn(&s));
    let addr = |i: usize| row.get::<_, Option<String>>(i).and_then(|s| s.parse().ok());
    let slots = session
        .client
        .query("SELECT slot_name::text FROM pg_replication_slots", &[])
        .await
        .map_err(q)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let receiver = receiver(&session).await?;
    let limits = limits(&session).await?;
    Ok(Node {
        given: given.to_string(),
        version,
        superuser: row.get::<_, Option<bool>>(0).unwrap_or(false),
        system_id: crate::pg::unsigned_system_id(row.get(1)),
        in_recovery: row.get(2),
        timeline: receiver
            .as_ref()
            .and_then(|r| r.timeline)
            .unwrap_or(0)
            .max(row.get::<_, i32>(3).max(0) as u32),
        receive: lsn(4),
        replay: lsn(5),
        paused: row.get(6),
        apply_delay_ms: row.get(7),
        our_addr: addr(8),
        own_addr: addr(9),
        max_wal_senders: row.get(10),
        senders_in_use: row.get(11),
        max_slots: row.get(12),
        sync_names: row.get(13),
        ssl: row.get(14),
        started: row.get(15),
        status_interval: row.get::<_, Option<f64>>(16).unwrap_or(10.0),
        archive_mode: row.get(17),
        configured: StreamNames::from_settings(
            row.get::<_, Option<String>>(18).as_deref(),
            row.get::<_, Option<String>>(19).as_deref(),
        ),
        slots,
        receiver,
        limits,
        session,
    })
}

/// What [`node`] asks, in one round trip.
fn node_sql(version: Version) -> String {
    // Superuser-only settings (12+; NULL before): a role that may not
    // read them gets NULL rather than an error here, and preflight's
    // refusal of a non-superuser.
    let configured = "CASE WHEN pg_has_role('pg_read_all_settings', 'MEMBER') THEN \
                      current_setting('primary_conninfo', true) END, \
                      CASE WHEN pg_has_role('pg_read_all_settings', 'MEMBER') THEN \
                      current_setting('primary_slot_name', true) END";
    let delay = if version.recovery_conf() {
        "0::bigint"
    } else {
        "(SELECT setting::bigint FROM pg_settings WHERE name = 'recovery_min_apply_delay')"
    };
    format!(
        "SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), \
            (SELECT system_identifier FROM pg_control_system())::text, \
            pg_is_in_recovery(), \
            greatest((SELECT timeline_id FROM pg_control_checkpoint()), \
                     (SELECT min_recovery_end_timeline FROM pg_control_recovery())), \
            pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, \
            CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END, \
            {delay}, host(inet_client_addr()), host(inet_server_addr()), \
            current_setting('max_wal_senders')::bigint, \
            (SELECT count(*) FROM pg_stat_replication), \
            current_setting('max_replication_slots')::bigint, \
            current_setting('synchronous_standby_names'), current_setting('ssl') = 'on', \
            pg_postmaster_start_time()::text, \
            (SELECT setting::float8 FROM pg_settings WHERE name = 'wal_receiver_status_interval'), \
            current_setting('archive_mode'), \
            {configured}"
    )
}

/// The WAL receiver and the names in its connection string.
async fn receiver(session: &Session) -> Result<Option<Receiver>> {
    let rows = session
        .client
        .query(
            "SELECT status, received_tli, conninfo, slot_name FROM pg_stat_wal_receiver",
            &[],
        )
        .await
        .map_err(|e| crate::pg::query_error(&session.target, &e))?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let conninfo: String = row.get::<_, Option<String>>(2).unwrap_or_default();
    let pairs = crate::pg::conninfo::pairs(&conninfo);
    let value = |k: &str| {
        pairs
            .iter()
            .find(|(key, v)| key == k && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    Ok(Some(Receiver {
        status: row.get::<_, Option<String>>(0).unwrap_or_default(),
        user: value("user"),
        application_name: value("application_name").or_else(|| value("fallback_application_name")),
        slot: row.get(3),
        timeline: row.get::<_, Option<i32>>(1).map(|t| t.max(0) as u32),
        // The server's own form lists every libpq option, some of which
        // a client library would refuse: host and port are read alone.
        upstream: value("host").map(|h| {
            let first = |v: &str| v.split(',').next().unwrap_or_default().to_string();
            let port = value("port").and_then(|p| first(&p).parse().ok());
            (first(&h), port.unwrap_or(5432))
        }),
    }))
}

/// The candidate's pg_hba.conf, read as a superuser (pg_read_file).
async fn hba_text(node: &Node) -> Option<String> {
    if !node.superuser {
        return None;
    }
    node.session
        .client
        .query_one("SELECT pg_read_file(current_setting('hba_file'))", &[])
        .await
        .ok()
        .map(|r| r.get(0))
}

/// The candidate's or a sibling's WAL positions now, for the waits.
pub async fn positions(session: &Session) -> Result<(bool, Option<u64>, Option<u64>)> {
    let row = session
        .client
        .query_one(
            "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text",
            &[],
        )
        .await
        .map_err(|e| crate::pg::query_error(&session.target, &e))?;
    let lsn = |i: usize| row.get::<_, Option<String>>(i).and_then(|s| parse_lsn(&s));
    Ok((row.get(0), lsn(1), lsn(2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_reads_the_marker_and_the_fenced_upstream() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let auto = |text: &str| std::fs::write(d.join("postgresql.auto.conf"), text).unwrap();
        // Drained, not fenced yet.
        auto("default_transaction_read_only = 'on'\npgrepctl.switchover = 'draining'\n");
        let l = Leftover::read(d, 150000);
        assert!(l.marker && l.upstream.is_none(), "{l:?}");
        // Fenced: the conninfo a fence writes, passfile and all.
        auto(
            "primary_conninfo = 'host=127.0.0.1 port=5433 user=replicator passfile=''/x/pgrepctl.pgpass'' application_name=vm'\n\
             primary_slot_name = 'vm'\n",
        );
        let l = Leftover::read(d, 150000);
        assert!(!l.marker, "{l:?}");
        assert_eq!(l.upstream, Some(("127.0.0.1".to_string(), 5433)));
        // What the interrupted run decided, for its rerun to keep.
        assert_eq!(
            l.names,
            StreamNames {
                user: Some("replicator".into()),
                application_name: Some("vm".into()),
                slot: Some("vm".into()),
            }
        );
        // Before 12 the upstream is in recovery.conf, not auto.conf.
        assert_eq!(Leftover::read(d, 110000).upstream, None);
        std::fs::write(
            d.join("recovery.conf"),
            "standby_mode = 'on'\nprimary_conninfo = 'host=/run/postgresql user=r'\n",
        )
        .unwrap();
        assert_eq!(
            Leftover::read(d, 110000).upstream,
            Some(("/run/postgresql".to_string(), 5432))
        );
        // Nothing there: a node stopped by hand.
        let empty = tempfile::tempdir().unwrap();
        let l = Leftover::read(empty.path(), 150000);
        assert!(!l.marker && l.upstream.is_none(), "{l:?}");
    }
}
