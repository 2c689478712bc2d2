//! Where `wal-prune` must stop, asked of the servers that read the
//! archive. A standby needs, should it restart, everything from its last
//! restartpoint's redo on (and from its replay position: a standby that
//! restored from the archive and has not reached a restartpoint since
//! reads on from there); the primary's physical slots mark where their
//! standbys will resume. The archive keeps the oldest of all of them.
//! A server that does not answer stops the prune: never prune on a guess.

use super::name::SegmentNo;
use crate::error::{Code, Error, Result};
use crate::pg::{self, Session};
use serde::Serialize;
use std::time::Duration;

/// One reason to keep WAL: who needs it, and from which segment on.
#[derive(Debug, Clone, Serialize)]
pub struct KeepPoint {
    /// "--keep-from", "primary … slot s1", "standby …".
    pub source: String,
    /// The segment's file name (on the timeline the server reported).
    pub segment: String,
    #[serde(skip)]
    pub no: SegmentNo,
    /// The database system of the server that set it (none for
    /// --keep-from).
    #[serde(skip)]
    pub system: Option<System>,
}

/// A database system identifier, and which server said it.
#[derive(Debug, Clone)]
pub struct System {
    pub id: u64,
    pub who: String,
}

impl KeepPoint {
    fn of(source: String, no: SegmentNo, server: &Server) -> KeepPoint {
        KeepPoint {
            source: source.clone(),
            segment: no.file_name(server.timeline),
            no,
            system: Some(System {
                id: server.system_id,
                who: source.clone(),
            }),
        }
    }
}

/// What every keep point needs to know of the server that sets it.
struct Server {
    segment_size: u64,
    timeline: u32,
    system_id: u64,
}

/// The primary's physical slots that hold a position, and the primary's
/// system identifier (also when no slot sets a keep point). A slot never
/// used (no restart_lsn) keeps nothing and is named in a warning.
pub async fn primary(
    conninfo: &str,
    timeout: Duration,
    warnings: &mut Vec<String>,
) -> Result<(Vec<KeepPoint>, System)> {
    let s = session(conninfo, timeout).await?;
    let server = server(&s).await?;
    let rows = s
        .client
        .query(
            "SELECT slot_name::text, restart_lsn::text FROM pg_replication_slots WHERE slot_type = 'physical' ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| pg::query_error(&s.target, &e))?;
    let mut out = vec![];
    for r in rows {
        let slot: String = r.get(0);
        match r
            .get::<_, Option<String>>(1)
            .as_deref()
            .and_then(pg::replication::parse_lsn)
        {
            Some(lsn) => out.push(KeepPoint::of(
                format!("primary {} slot {slot}", s.target),
                SegmentNo::of_lsn(lsn, server.segment_size),
                &server,
            )),
            None => warnings.push(format!(
                "slot {slot} on {} has no restart_lsn (never used): it keeps nothing",
                s.target
            )),
        }
    }
    if out.is_empty() {
        warnings.push(format!(
            "the primary {} has no physical slot holding WAL: it sets no keep point",
            s.target
        ));
    }
    let system = System {
        id: server.system_id,
        who: format!("the primary {}", s.target),
    };
    Ok((out, system))
}

/// A standby's oldest need: the least of its last restartpoint's redo,
/// its replay and its receive positions.
pub async fn standby(conninfo: &str, timeout: Duration) -> Result<KeepPoint> {
    let s = session(conninfo, timeout).await?;
    let server = server(&s).await?;
    let row = s
        .client
        .query_one(
            "SELECT pg_is_in_recovery(), (pg_control_checkpoint()).redo_lsn::text, \
             pg_last_wal_replay_lsn()::text, pg_last_wal_receive_lsn()::text",
            &[],
        )
        .await
        .map_err(|e| pg::query_error(&s.target, &e))?;
    if !row.get::<_, bool>(0) {
        return Err(Error::new(
            Code::NotAStandby,
            format!("{} is not in recovery: it is not a standby", s.target),
        )
        .hint(
            "give the primary with --primary (its slots count), and each standby with --standby",
        ));
    }
    let least = (1..4)
        .filter_map(|i| row.get::<_, Option<String>>(i))
        .filter_map(|l| pg::replication::parse_lsn(&l))
        .min()
        .ok_or_else(|| {
            Error::new(
                Code::NotAStandby,
                format!("{} reports no WAL position yet", s.target),
            )
            .hint("wait until the standby has started recovery, then rerun")
        })?;
    Ok(KeepPoint::of(
        format!("standby {}", s.target),
        SegmentNo::of_lsn(least, server.segment_size),
        &server,
    ))
}

async fn session(conninfo: &str, timeout: Duration) -> Result<Session> {
    let config = pg::conninfo::resolve_node(conninfo)?;
    pg::connect(&config, Some(timeout)).await
}

/// The server's WAL segment size in bytes (pg_settings gives it in 8kB
/// units on 10, in bytes since 11: the unit column says which), its
/// timeline (from pg_control, which a standby updates at restartpoints)
/// and its database system identifier.
async fn server(s: &Session) -> Result<Server> {
    let row = s
        .client
        .query_one(
            "SELECT (setting::bigint * CASE unit WHEN 'B' THEN 1 WHEN 'kB' THEN 1024 \
             WHEN '8kB' THEN 8192 WHEN 'MB' THEN 1048576 ELSE 0 END)::bigint, \
             (SELECT timeline_id FROM pg_control_checkpoint()), \
             (SELECT system_identifier FROM pg_control_system())::text \
             FROM pg_settings WHERE name = 'wal_segment_size'",
            &[],
        )
        .await
        .map_err(|e| pg::query_error(&s.target, &e))?;
    let size = row.get::<_, i64>(0);
    let timeline = row.get::<_, i32>(1);
    let system_id = pg::unsigned_system_id(row.get(2))
        .parse::<u64>()
        .map_err(|_| {
            Error::new(
                Code::Internal,
                format!("{} reports an unreadable system identifier", s.target),
            )
        })?;
    if size <= 0 || (size as u64) & (size as u64 - 1) != 0 {
        return Err(Error::new(
            Code::Internal,
            format!(
                "{} reports an unexpected wal_segment_size ({size} bytes)",
                s.target
            ),
        ));
    }
    Ok(Server {
        segment_size: size as u64,
        timeline: timeline as u32,
        system_id,
    })
}
