//! Read-only facts from every node, queried concurrently: one task per
//! node, each bounded by the timeout, so a node that does not answer costs
//! the timeout once and makes only that node UNKNOWN.

use crate::error::{Error, Result};
use crate::health::{Receiver, Replay, Role};
use crate::pg::{self, Session};
use std::time::Duration;
use tokio_postgres::Config;

use crate::pg::HOT_STANDBY_SETTINGS;

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
    pub data: Result<Data, Error>,
}

#[derive(Debug, Clone, Default)]
pub struct Data {
    pub version_num: u32,
    pub in_recovery: bool,
    /// `host(inet_server_addr())`: null over a Unix socket.
    pub server_addr: Option<String>,
    pub cluster_name: String,
    pub settings: Vec<(String, i64)>,
    /// Not in recovery: `pg_current_wal_lsn()`, wal senders, slots.
    pub wal_lsn: Option<String>,
    pub senders: Vec<Sender>,
    pub slots: Vec<SlotFacts>,
    /// In recovery: the WAL receiver (None: no receiver process).
    pub receiver: Option<ReceiverFacts>,
    pub replay: Option<Replay>,
    /// 12+, no receiver running: `application_name` from the
    /// `primary_conninfo` setting, when the role may read it.
    pub configured_app_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
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
    /// `pg_current_wal_lsn() - replay_lsn`.
    pub lag_bytes: Option<i64>,
    pub replay_lag: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotFacts {
    pub name: String,
    pub slot_type: String,
    pub active: bool,
    pub restart_lsn: Option<String>,
    pub retained_bytes: Option<i64>,
    pub wal_status: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceiverFacts {
    pub receiver: Receiver,
    /// `application_name` from the receiver's conninfo (null: not visible).
    pub application_name: Option<String>,
}

/// Inspect every node at once; the order of the result is the order given.
pub async fn inspect_all(
    nodes: Vec<(Role, Config)>,
    timeout: Duration,
    printer: &crate::report::Printer,
) -> Vec<NodeFacts> {
    let futs = nodes
        .into_iter()
        .map(|(role, config)| inspect_node(role, config, timeout, printer));
    futures_util::future::join_all(futs).await
}

pub fn host_port(config: &Config) -> (String, Option<String>) {
    let (host, port) = pg::conninfo::first_host_port(config);
    let addr = host.parse::<std::net::IpAddr>().ok().map(|a| a.to_string());
    (format!("{host}:{port}"), addr)
}

async fn inspect_node(
    role: Role,
    config: Config,
    timeout: Duration,
    printer: &crate::report::Printer,
) -> NodeFacts {
    let target = pg::describe(&config);
    let (host_port, given_addr) = host_port(&config);
    printer.debug(format!("inspecting {target}"));
    let data = match tokio::time::timeout(timeout, async {
        let s = pg::connect(&config, Some(timeout)).await?;
        query(&s).await
    })
    .await
    {
        Ok(r) => r,
        Err(_) => Err(timed_out(&target, timeout)),
    };
    if let Err(e) = &data {
        printer.debug(format!("{target}: {}", e.message));
    }
    NodeFacts {
        role,
        target,
        host_port,
        given_addr,
        data,
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

async fn query(s: &Session) -> Result<Data> {
    let q = |e: tokio_postgres::Error| pg::query_error(&s.target, &e);
    let c = &s.client;
    let row = c
        .query_one(
            "SELECT pg_is_in_recovery(), host(inet_server_addr()), current_setting('cluster_name')",
            &[],
        )
        .await
        .map_err(q)?;
    let mut d = Data {
        version_num: s.version_num,
        in_recovery: row.get(0),
        server_addr: row.get(1),
        cluster_name: row.get(2),
        ..Default::default()
    };
    let names: Vec<String> = HOT_STANDBY_SETTINGS.iter().map(|s| s.to_string()).collect();
    for r in c
        .query(
            "SELECT name, setting::bigint FROM pg_settings WHERE name = ANY($1) ORDER BY name",
            &[&names],
        )
        .await
        .map_err(q)?
    {
        d.settings.push((r.get(0), r.get(1)));
    }
    if d.in_recovery {
        standby_facts(s, &mut d).await.map_err(q)?;
    } else {
        primary_facts(s, &mut d).await.map_err(q)?;
    }
    Ok(d)
}

async fn primary_facts(s: &Session, d: &mut Data) -> Result<(), tokio_postgres::Error> {
    let c = &s.client;
    d.wal_lsn = c
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await?
        .get(0);
    for r in c
        .query(
            "SELECT pid, coalesce(application_name, ''), host(client_addr), state, sync_state,
                    sent_lsn::text, write_lsn::text, flush_lsn::text, replay_lsn::text,
                    pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,
                    extract(epoch FROM replay_lag)::float8
             FROM pg_stat_replication ORDER BY application_name, pid",
            &[],
        )
        .await?
    {
        d.senders.push(Sender {
            pid: r.get(0),
            application_name: r.get(1),
            client_addr: r.get(2),
            state: r.get(3),
            sync_state: r.get(4),
            sent_lsn: r.get(5),
            write_lsn: r.get(6),
            flush_lsn: r.get(7),
            replay_lsn: r.get(8),
            lag_bytes: r.get(9),
            replay_lag: r.get(10),
        });
    }
    // wal_status appeared in 13.
    let wal_status = if s.version_num >= 130000 {
        "wal_status"
    } else {
        "NULL::text"
    };
    for r in c
        .query(
            &format!(
                "SELECT slot_name::text, slot_type, active, restart_lsn::text,
                        pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, {wal_status}
                 FROM pg_replication_slots ORDER BY slot_name"
            ),
            &[],
        )
        .await?
    {
        d.slots.push(SlotFacts {
            name: r.get(0),
            slot_type: r.get(1),
            active: r.get(2),
            restart_lsn: r.get(3),
            retained_bytes: r.get(4),
            wal_status: r.get(5),
        });
    }
    Ok(())
}

async fn standby_facts(s: &Session, d: &mut Data) -> Result<(), tokio_postgres::Error> {
    let c = &s.client;
    // sender_host and sender_port appeared in 11.
    let sender = if s.version_num >= 110000 {
        "sender_host, sender_port"
    } else {
        "NULL::text, NULL::int"
    };
    let rows = c
        .query(
            &format!(
                "SELECT status, {sender}, slot_name, conninfo,
                        extract(epoch FROM now() - last_msg_receipt_time)::float8
                 FROM pg_stat_wal_receiver"
            ),
            &[],
        )
        .await?;
    d.receiver = rows.first().map(|r| {
        let conninfo: Option<String> = r.get(4);
        ReceiverFacts {
            receiver: Receiver {
                status: r.get(0),
                sender_host: r.get(1),
                sender_port: r.get(2),
                slot_name: r.get(3),
                last_msg_age_seconds: r.get(5),
            },
            application_name: conninfo
                .as_deref()
                .map(|ci| conninfo_value(ci, "application_name").unwrap_or_default()),
        }
    });
    if d.receiver.is_none() && s.version_num >= 120000 {
        let rows = c
            .query(
                "SELECT setting FROM pg_settings WHERE name = 'primary_conninfo'",
                &[],
            )
            .await?;
        d.configured_app_name = rows
            .first()
            .and_then(|r| r.get::<_, Option<String>>(0))
            .map(|ci| conninfo_value(&ci, "application_name").unwrap_or_default());
    }
    let r = c
        .query_one(
            "SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
                    greatest(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::bigint,
                    extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8,
                    pg_is_wal_replay_paused()",
            &[],
        )
        .await?;
    d.replay = Some(Replay {
        receive_lsn: r.get(0),
        replay_lsn: r.get(1),
        pending_bytes: r.get(2),
        delay_seconds: r.get(3),
        paused: r.get(4),
    });
    Ok(())
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
