//! Read-only facts from every node, queried concurrently: one task per
//! node, each bounded by the timeout, so a node that does not answer costs
//! the timeout once and marks only that node. Each node costs its start-up
//! and one round trip (two when it may read its timeline's history file):
//! a single query over the simple protocol (no parse/describe) returns
//! every fact as one JSON object, and works unchanged on 10 to 18 (columns
//! that newer versions added are read by name from `to_jsonb(row)`, null
//! where absent).

use super::archive::{self, ArchiverFacts};
use crate::commands::switchover::DRAIN_MARKER;
use crate::error::{Error, Result};
use crate::health::{Receiver, Replay, Role};
use crate::pg::conninfo::ConnConfig;
use crate::pg::replication::parse_lsn;
use crate::pg::{self, HOT_STANDBY_SETTINGS};
use serde::Deserialize;
use std::time::Duration;
use tokio_postgres::{Client, Config, SimpleQueryMessage};

/// A node as given on the command line, and what we learnt from it.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub role: Role,
    /// "host=… port=… user=…" (no password).
    pub target: String,
    /// "host:port", a fallback name.
    pub host_port: String,
    /// The host given, when it is an IP address (for matching senders).
    pub given_addr: Option<String>,
    /// The `application_name` its conninfo names: its name, up or down
    /// (see [`super::chain::node_name`]).
    pub given_name: Option<String>,
    pub data: Result<Data, Error>,
    /// When `data` is an error: the node is down or unreachable (refused,
    /// timed out, shutting down), not up and refusing us.
    pub down: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Data {
    pub version_num: u32,
    pub in_recovery: bool,
    /// `host(inet_server_addr())`: null over a Unix socket.
    pub server_addr: Option<String>,
    pub cluster_name: String,
    pub settings: Vec<(String, i64)>,
    /// Not in recovery: `pg_current_wal_lsn()`.
    pub wal_lsn: Option<String>,
    /// Wal senders: a primary's, and a standby's own (cascading).
    pub senders: Vec<Sender>,
    /// Not in recovery: replication slots.
    pub slots: Vec<SlotFacts>,
    /// In recovery: the WAL receiver (None: no receiver process).
    pub receiver: Option<ReceiverFacts>,
    pub replay: Option<Replay>,
    /// 12+, no receiver running: `application_name` from the
    /// `primary_conninfo` setting, when the role may read it.
    pub configured_app_name: Option<String>,
    /// See [`health::Node::timeline`](crate::health::Node::timeline).
    pub timeline: Option<u32>,
    /// `(timeline, switch points)` from the history file of the timeline
    /// the facts query found (a primary's current one, a standby's from
    /// pg_control, which its WAL receiver may have left behind), when the
    /// role may read it with `pg_read_file` (superuser, or EXECUTE granted
    /// on 11+); None when not readable. Timeline 1 has no file: empty.
    pub history: Option<(u32, Vec<(u32, u64)>)>,
    /// `data_directory`, when the role may read it (pg_read_all_settings).
    pub data_directory: Option<String>,
    /// Not in recovery, archive_mode not off: the archiver.
    pub archiver: Option<ArchiverFacts>,
    /// In recovery: restore_command ('' when not set; None when the role
    /// may not read it).
    pub restore_command: Option<String>,
    /// `--archive-probe` on the primary (None: not asked, or not run).
    pub archive_probe: Option<archive::ProbeFacts>,
    /// In recovery, not streaming, its primary_conninfo naming a loopback
    /// address (a forwarded port: pgrepctl tunnel), and check on the
    /// standby's host: that `host:port` when it refuses TCP connections.
    pub upstream_refused: Option<String>,
    /// The loopback `(host, port)` of primary_conninfo (in recovery).
    pub upstream: Option<(String, u16)>,
    /// The server certificate, when `ssl` is on.
    pub certificate: super::tls::CertFacts,
    /// `default_transaction_read_only` is on server-wide (set in a
    /// configuration file or on the command line): every write fails.
    /// None when a database or role setting hides the server's value.
    pub read_only: Option<bool>,
    /// switchover's drain marker ([`DRAIN_MARKER`] = 'draining') is set:
    /// an interrupted switchover turned writes off.
    pub draining: bool,
    /// Which server this is, to tell one node given twice:
    /// `pg_control_system()`'s system identifier, the postmaster's start
    /// time and its port.
    pub identity: Option<Identity>,
}

/// One running server, whatever address reached it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Identity {
    pub system_identifier: String,
    pub started: String,
    pub port: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Sender {
    pub pid: i32,
    pub application_name: String,
    pub client_addr: Option<String>,
    /// Null when the connecting role may not see it (needs pg_monitor).
    pub state: Option<String>,
    pub sync_state: Option<String>,
    pub sent_lsn: Option<String>,
    pub write_lsn: Option<String>,
    pub flush_lsn: Option<String>,
    pub replay_lsn: Option<String>,
    /// This node's WAL position minus `replay_lsn`: the link's lag.
    #[serde(default)]
    pub lag_bytes: Option<i64>,
    pub replay_lag: Option<f64>,
    /// The slot it streams through (pg_replication_slots.active_pid),
    /// which tells apart standbys under one application_name.
    #[serde(default)]
    pub slot: Option<String>,
    /// The link is encrypted (`pg_stat_ssl.ssl`); null when hidden.
    #[serde(default)]
    pub ssl: Option<bool>,
    /// `pg_stat_ssl.version`, `cipher`, `bits`, when encrypted.
    #[serde(default)]
    pub ssl_version: Option<String>,
    #[serde(default)]
    pub ssl_cipher: Option<String>,
    #[serde(default)]
    pub ssl_bits: Option<i32>,
}

impl Sender {
    /// What tells it from another walsender (see [`crate::pg::walsender`]).
    pub fn seen(&self) -> crate::pg::walsender::Seen<'_> {
        crate::pg::walsender::Seen {
            application_name: &self.application_name,
            addr: self.client_addr.as_deref().and_then(|a| a.parse().ok()),
            slot: self.slot.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SlotFacts {
    pub name: String,
    pub slot_type: String,
    pub active: bool,
    pub restart_lsn: Option<String>,
    #[serde(default)]
    pub retained_bytes: Option<i64>,
    pub wal_status: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceiverFacts {
    pub receiver: Receiver,
    /// The timeline of the last WAL received (null: hidden).
    pub received_tli: Option<u32>,
    /// `application_name` from the receiver's conninfo (null: not visible).
    pub application_name: Option<String>,
}

/// A node as given on the command line: its role, how to reach it, and
/// the `application_name` its conninfo names (None when it names none).
#[derive(Debug, Clone)]
pub struct Given {
    pub role: Role,
    pub config: ConnConfig,
    pub name: Option<String>,
}

/// Inspect every node at once; the order of the result is the order given.
pub async fn inspect_all(
    nodes: Vec<Given>,
    timeout: Duration,
    printer: &crate::report::Printer,
) -> Vec<NodeFacts> {
    let futs = nodes.into_iter().map(|g| inspect_node(g, timeout, printer));
    futures_util::future::join_all(futs).await
}

pub fn host_port(config: &Config) -> (String, Option<String>) {
    let (host, port) = pg::conninfo::first_host_port(config);
    let addr = host.parse::<std::net::IpAddr>().ok().map(|a| a.to_string());
    (format!("{host}:{port}"), addr)
}

async fn inspect_node(
    given: Given,
    timeout: Duration,
    printer: &crate::report::Printer,
) -> NodeFacts {
    let Given { role, config, name } = given;
    let target = pg::describe(&config);
    let (host_port, given_addr) = host_port(&config);
    printer.debug(format!("inspecting {target}"));
    let result = tokio::time::timeout(timeout, async {
        let (client, target, seen) =
            pg::connect_client_with_certificate(&config, Some(timeout)).await?;
        query(&client, &target, role, seen)
            .await
            .map_err(|error| pg::ConnectFailure { error, down: false })
    })
    .await
    .unwrap_or_else(|_| {
        Err(pg::ConnectFailure {
            error: timed_out(&target, timeout),
            down: true,
        })
    });
    let (data, down) = match result {
        Ok(mut d) => {
            d.upstream_refused = upstream_refused(&d).await;
            (Ok(d), false)
        }
        Err(f) => {
            printer.debug(format!("{target}: {}", f.error.message));
            (Err(f.error), f.down)
        }
    };
    NodeFacts {
        role,
        target,
        host_port,
        given_addr,
        given_name: name,
        data,
        down,
    }
}

pub fn timed_out(target: &str, timeout: Duration) -> Error {
    crate::fail!(
        Timeout,
        "{target}: no answer within {}s",
        timeout.as_secs_f64()
    )
    .hint("check that the server is up and reachable; raise --timeout for a slow network")
}

/// Every fact `check` needs, as one JSON object, for a node given as
/// `role`. A backend's first use of a view or function costs it catalog
/// reads, most of a fresh connection's time on the server, so the query
/// calls the functions behind `pg_stat_replication`, `pg_replication_slots`
/// and `pg_stat_wal_receiver` directly (columns that newer versions added
/// are read by name from `to_jsonb(row)`), and asks for slots only of a
/// primary and for the WAL receiver only of a standby. Either side's query
/// is safe on the other (a node in the wrong role is only reported as
/// such): `CASE WHEN pg_is_in_recovery()` guards the functions that fail
/// on the other side (volatile, so never evaluated early).
fn facts_sql(role: Role) -> String {
    // A primary's timeline is the one it inserts WAL on, in the name of
    // its current WAL file (pg_control shows it only after the first
    // checkpoint on it, which a promotion does not wait for). A standby's
    // is the newest its pg_control shows (last restartpoint, minimum
    // recovery point): its WAL receiver may be ahead (`received_tli`).
    // Every function here is open to any role.
    const TIMELINE: &str = "SELECT CASE WHEN pg_is_in_recovery()
      THEN greatest((SELECT timeline_id FROM pg_control_checkpoint()),
                    (SELECT min_recovery_end_timeline FROM pg_control_recovery()))
      ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int
      END AS tli";
    // Whether pg_read_file may read a file under the data directory
    // (then a second query reads the history file, see read_history):
    // always for a superuser; on 11+ (where pg_read_server_files exists)
    // for a role granted EXECUTE; never on 10, where the function itself
    // refuses other roles (though EXECUTE is open to all).
    const READ_FILE: &str = "(CASE WHEN (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN true
      WHEN NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pg_read_server_files') THEN false
      ELSE has_function_privilege('pg_catalog.pg_read_file(text, bigint, bigint, boolean)', 'EXECUTE') END)";
    // current_setting() reads one setting; pg_settings builds every row.
    let settings = HOT_STANDBY_SETTINGS
        .iter()
        .map(|n| format!("'{n}', current_setting('{n}')::bigint"))
        .collect::<Vec<_>>()
        .join(", ");
    let side = side_sql(role);
    format!(
        "SELECT json_build_object(
  'version_num', current_setting('server_version_num')::int,
  'timeline', tl.tli,
  'history_readable', {READ_FILE},
  'data_directory', CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE')
      THEN current_setting('data_directory') END,
  'in_recovery', pg_is_in_recovery(),
  'read_only', (SELECT s.setting = 'on' FROM pg_show_all_settings() s
      WHERE s.name = 'default_transaction_read_only' AND s.source IN
      ('default', 'environment variable', 'configuration file', 'command line', 'global')),
  'draining', coalesce(current_setting('{DRAIN_MARKER}', true) = 'draining', false),
  'identity', json_build_object(
      'system_identifier', (SELECT system_identifier FROM pg_control_system())::text,
      'started', pg_postmaster_start_time()::text,
      'port', current_setting('port')::int),
  {}
  'server_addr', host(inet_server_addr()),
  'cluster_name', current_setting('cluster_name'),
  'settings', json_build_object({settings}),
  'wal_lsn', CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn()::text END,
  'receive_lsn', pg_last_wal_receive_lsn()::text,
  'replay_lsn', pg_last_wal_replay_lsn()::text,
  'replay_delay', extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8,
  'paused', CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END,
  'senders', {SENDERS},{side}
)::text FROM ({TIMELINE}) tl",
        super::tls::ACCESS_SQL
    )
}

/// The part of [`facts_sql`] asked of one side only, apart so the shared query reads as one piece.
fn side_sql(role: Role) -> String {
    match role {
        Role::Primary => {
            format!(
                "
  'slots', (SELECT json_agg(json_build_object(
      'name', s.slot_name, 'slot_type', s.slot_type, 'active', s.active,
      'restart_lsn', s.restart_lsn::text, 'wal_status', to_jsonb(s)->>'wal_status')
      ORDER BY s.slot_name) FROM pg_get_replication_slots() s),
  'archiver', {}",
                archive::ARCHIVER_SQL
            )
        }
        // primary_conninfo is readable with pg_read_all_settings (or as a
        // superuser); current_setting() would fail the query otherwise.
        Role::Standby => {
            format!(
                "
  'restore_command', {},
  'primary_conninfo', CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE')
      THEN current_setting('primary_conninfo', true) END,
  'receiver', (SELECT json_build_object(
      'status', w.status, 'sender_host', to_jsonb(w)->>'sender_host',
      'sender_port', (to_jsonb(w)->>'sender_port')::int, 'slot_name', w.slot_name,
      'conninfo', w.conninfo, 'received_tli', w.received_tli,
      'last_msg_age', extract(epoch FROM now() - w.last_msg_receipt_time)::float8)
      FROM pg_stat_get_wal_receiver() w WHERE w.pid IS NOT NULL)",
                archive::RESTORE_COMMAND_SQL
            )
        }
    }
}

/// The node's wal senders (a primary's, or a cascading standby's), each
/// with its slot: pg_stat_replication shows none, and the slot is what
/// tells apart standbys under one application_name.
const SENDERS: &str = "(SELECT json_agg(json_build_object(
      'pid', w.pid, 'application_name', coalesce(a.application_name, ''),
      'client_addr', host(a.client_addr), 'state', w.state, 'sync_state', w.sync_state,
      'sent_lsn', w.sent_lsn::text, 'write_lsn', w.write_lsn::text,
      'flush_lsn', w.flush_lsn::text, 'replay_lsn', w.replay_lsn::text,
      'replay_lag', extract(epoch FROM w.replay_lag)::float8,
      'ssl', a.ssl, 'ssl_version', a.sslversion, 'ssl_cipher', a.sslcipher,
      'ssl_bits', a.sslbits,
      'slot', (SELECT s.slot_name FROM pg_get_replication_slots() s WHERE s.active_pid = w.pid))
      ORDER BY a.application_name, w.pid)
      FROM pg_stat_get_wal_senders() w, LATERAL pg_stat_get_activity(w.pid) a)";

/// The query's answer, as the server wrote it.
#[derive(Deserialize)]
struct Raw {
    version_num: u32,
    in_recovery: bool,
    server_addr: Option<String>,
    cluster_name: String,
    settings: Option<std::collections::BTreeMap<String, i64>>,
    primary_conninfo: Option<String>,
    wal_lsn: Option<String>,
    receive_lsn: Option<String>,
    replay_lsn: Option<String>,
    replay_delay: Option<f64>,
    paused: Option<bool>,
    senders: Option<Vec<Sender>>,
    slots: Option<Vec<SlotFacts>>,
    receiver: Option<RawReceiver>,
    timeline: Option<u32>,
    history_readable: bool,
    data_directory: Option<String>,
    archiver: Option<ArchiverFacts>,
    restore_command: Option<String>,
    read_only: Option<bool>,
    draining: bool,
    identity: Option<Identity>,
    #[serde(flatten)]
    access: super::tls::FileAccess,
}

#[derive(Deserialize)]
struct RawReceiver {
    status: Option<String>,
    sender_host: Option<String>,
    sender_port: Option<i32>,
    slot_name: Option<String>,
    conninfo: Option<String>,
    received_tli: Option<u32>,
    last_msg_age: Option<f64>,
}

async fn query(c: &Client, target: &str, role: Role, seen: Option<Vec<u8>>) -> Result<Data> {
    let msgs = c
        .simple_query(&facts_sql(role))
        .await
        .map_err(|e| pg::query_error(target, &e))?;
    let text = msgs
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0),
            _ => None,
        })
        .ok_or_else(|| crate::fail!(Internal, "{target}: the facts query returned no row"))?;
    let raw: Raw = serde_json::from_str(text).map_err(|e| {
        crate::fail!(
            Internal,
            "{target}: unexpected answer to the facts query: {e}"
        )
    })?;
    let history = match raw.timeline {
        Some(tli) if tli > 1 && raw.history_readable => read_history(c, tli).await,
        _ => None,
    };
    let readable = raw.history_readable;
    let access = raw.access.clone();
    let mut d = data(raw, history);
    archive_facts(c, readable, &mut d).await;
    let data_dir = d.data_directory.clone();
    d.certificate =
        super::tls::certificate(c, d.version_num, &access, data_dir.as_deref(), seen).await;
    Ok(d)
}

/// The archive facts that need a second query: a primary's `.ready`
/// files (when it archives), a 10–11 standby's restore_command from its
/// recovery.conf (when it does not stream and the role may read files).
async fn archive_facts(c: &Client, files_readable: bool, d: &mut Data) {
    let version_num = d.version_num;
    if let Some(a) = d.archiver.as_mut() {
        if let Some((ready, oldest)) = archive::read_ready(c, version_num).await {
            (a.ready, a.oldest_ready_age) = (Some(ready), oldest);
        }
    }
    let streaming = d
        .receiver
        .as_ref()
        .is_some_and(|r| r.receiver.status.as_deref() == Some("streaming"));
    if d.in_recovery
        && !streaming
        && files_readable
        && crate::pg::version::Version::of(version_num).recovery_conf()
    {
        d.restore_command = archive::read_recovery_conf(c).await;
    }
}

/// The history file of timeline `tli`, by a second query: only a role
/// that may call `pg_read_file` may name it in a query at all (the right
/// is checked before a CASE could skip it). None when it is missing or
/// cannot be read: then the history is unknown, not an error.
async fn read_history(c: &Client, tli: u32) -> Option<String> {
    let q = format!("SELECT pg_read_file('pg_wal/{tli:08X}.history', 0, 1048576, true)");
    let msgs = c.simple_query(&q).await.ok()?;
    msgs.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    })
}

/// `a - b` in bytes, when both are known.
pub fn lsn_diff(a: Option<&str>, b: Option<&str>) -> Option<i64> {
    Some(parse_lsn(a?)? as i64 - parse_lsn(b?)? as i64)
}

fn data(raw: Raw, history_text: Option<String>) -> Data {
    let own = own_lsn(&raw);
    let mut senders = raw.senders.unwrap_or_default();
    for s in &mut senders {
        s.lag_bytes = lsn_diff(own.as_deref(), s.replay_lsn.as_deref());
    }
    let mut slots = if raw.in_recovery {
        vec![]
    } else {
        raw.slots.unwrap_or_default()
    };
    for s in &mut slots {
        s.retained_bytes = lsn_diff(raw.wal_lsn.as_deref(), s.restart_lsn.as_deref());
    }
    let receiver = raw.receiver.map(receiver_facts);
    let configured_app_name = match (&receiver, raw.in_recovery) {
        (None, true) if !crate::pg::version::Version::of(raw.version_num).recovery_conf() => {
            raw.primary_conninfo.as_deref().map(conninfo_app_name)
        }
        _ => None,
    };
    let timeline = raw
        .timeline
        .max(receiver.as_ref().and_then(|r| r.received_tli));
    let replay = raw.in_recovery.then(|| Replay {
        pending_bytes: lsn_diff(raw.receive_lsn.as_deref(), raw.replay_lsn.as_deref())
            .map(|d| d.max(0)),
        receive_lsn: raw.receive_lsn,
        replay_lsn: raw.replay_lsn,
        delay_seconds: raw.replay_delay,
        paused: raw.paused,
    });
    Data {
        version_num: raw.version_num,
        in_recovery: raw.in_recovery,
        server_addr: raw.server_addr,
        cluster_name: raw.cluster_name,
        settings: raw.settings.unwrap_or_default().into_iter().collect(),
        wal_lsn: raw.wal_lsn,
        senders,
        slots,
        receiver,
        timeline,
        history: history(raw.timeline, history_text.as_deref()),
        data_directory: raw.data_directory,
        archiver: raw.archiver.filter(|_| !raw.in_recovery),
        restore_command: raw.restore_command.filter(|_| raw.in_recovery),
        archive_probe: None,
        upstream_refused: None,
        certificate: Default::default(),
        read_only: raw.read_only.filter(|_| !raw.in_recovery),
        draining: raw.draining,
        identity: raw.identity,
        upstream: raw
            .primary_conninfo
            .as_deref()
            .filter(|_| raw.in_recovery)
            .and_then(loopback_upstream),
        replay,
        configured_app_name,
    }
}

/// Where this node's senders' lag is measured from, a choice that differs by role.
fn own_lsn(raw: &Raw) -> Option<String> {
    if raw.in_recovery {
        match (
            raw.receive_lsn.as_deref().and_then(parse_lsn),
            raw.replay_lsn.as_deref().and_then(parse_lsn),
        ) {
            (Some(a), Some(b)) => Some(crate::pg::replication::format_lsn(a.max(b))),
            (a, b) => a.or(b).map(crate::pg::replication::format_lsn),
        }
    } else {
        raw.wal_lsn.clone()
    }
}

/// The WAL receiver as check reports it: columns renamed, a timeline of 0 (none yet) dropped.
fn receiver_facts(r: RawReceiver) -> ReceiverFacts {
    ReceiverFacts {
        application_name: r.conninfo.as_deref().map(conninfo_app_name),
        received_tli: r.received_tli.filter(|t| *t > 0),
        receiver: Receiver {
            status: r.status,
            sender_host: r.sender_host,
            sender_port: r.sender_port,
            slot_name: r.slot_name,
            last_msg_age_seconds: r.last_msg_age,
        },
    }
}

/// A conninfo's application_name ("" if none): one rule for the receiver's and primary_conninfo.
fn conninfo_app_name(conninfo: &str) -> String {
    conninfo_value(conninfo, "application_name").unwrap_or_default()
}

/// `host:port` of a primary_conninfo whose host is a loopback address.
fn loopback_upstream(conninfo: &str) -> Option<(String, u16)> {
    let host = conninfo_value(conninfo, "host").filter(|h| crate::net::is_loopback(h))?;
    let port = conninfo_value(conninfo, "port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(5432);
    Some((host, port))
}

/// Whether a standby's loopback upstream (a tunnel's local end) refuses
/// connections, asked only when check reached the standby on this host
/// (over its socket or a loopback address) and it does not stream.
async fn upstream_refused(d: &Data) -> Option<String> {
    let (host, port) = d.upstream.clone()?;
    let local = d.server_addr.as_deref().is_none_or(|a| {
        a.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
    });
    let streaming = d
        .receiver
        .as_ref()
        .and_then(|r| r.receiver.status.as_deref())
        == Some("streaming");
    if !local || streaming {
        return None;
    }
    let addr = format!("{host}:{port}");
    let tried = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await;
    match tried {
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(addr),
        _ => None,
    }
}

/// The switch points of timeline `tli`'s history file as read (`text`):
/// timeline 1 has none; a later one whose file was not read (no right,
/// or missing) is unknown.
fn history(tli: Option<u32>, text: Option<&str>) -> Option<(u32, Vec<(u32, u64)>)> {
    match (tli?, text) {
        (1, _) => Some((1, vec![])),
        (t, Some(text)) => Some((t, crate::pg::timeline::parse_switch_points(text))),
        (_, None) => None,
    }
}

/// One keyword's value from a libpq conninfo string as the server shows it
/// (`key=value` or `key='quoted \' value'`).
pub fn conninfo_value(conninfo: &str, key: &str) -> Option<String> {
    let mut chars = conninfo.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        chars.peek()?;
        let mut k = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            k.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return None;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut v = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            v.push(n);
                        }
                    }
                    '\'' => break,
                    _ => v.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                if c == '\\' {
                    chars.next();
                    if let Some(n) = chars.next() {
                        v.push(n);
                    }
                    continue;
                }
                v.push(c);
                chars.next();
            }
        }
        if k == key {
            return Some(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_values() {
        let ci = "user=postgres passfile=/var/lib/x dbname=replication host=/tmp/a port=5 application_name='my \\' app' fallback_application_name=walreceiver";
        assert_eq!(
            conninfo_value(ci, "application_name").as_deref(),
            Some("my ' app")
        );
        assert_eq!(conninfo_value(ci, "port").as_deref(), Some("5"));
        assert_eq!(
            conninfo_value("host=x application_name=s1", "application_name").as_deref(),
            Some("s1")
        );
        assert_eq!(conninfo_value("host=x", "application_name"), None);
    }
}
