//! The new primary, asked over the replication protocol exactly as the
//! standby's WAL receiver will ask it (its user, its passfile or
//! --password-file): who it is (IDENTIFY_SYSTEM), whether it is itself a
//! standby (14+ can tell), the timelines it went through
//! (TIMELINE_HISTORY), and whether the slot asked for exists (15+).

use super::conninfo;
use crate::error::Result;
use crate::pg::replication::{Identity, ReplClient, ReplConnection, ReplError, format_lsn};
use crate::pg::version::Version;
use crate::secret::Secret;
use crate::tools::RunAs;
use std::path::Path;
use std::time::Duration;

pub struct Primary {
    pub identity: Identity,
    pub version: Version,
    /// Itself in recovery (a cascade); `None` when it cannot tell (before
    /// 14 with default_transaction_read_only on).
    pub standby: Option<bool>,
    pub switch_points: Vec<(u32, u64)>,
    /// Whether the slot asked for exists; `None` when not asked or before
    /// 15 (no READ_REPLICATION_SLOT).
    pub slot_exists: Option<bool>,
    /// The connection settings, for the slot step.
    pub client: ReplClient,
}

impl Primary {
    pub fn report(&self) -> serde_json::Value {
        serde_json::json!({
            "conninfo": self.client.conninfo,
            "system_identifier": self.identity.system_id,
            "timeline": self.identity.timeline,
            "flush_lsn": format_lsn(self.identity.lsn),
            "version_num": self.version.num(),
            "in_recovery": self.standby,
        })
    }
}

/// The password pgrepctl's own connection uses: --password-file's, else
/// the one the standby's conninfo has (password keyword, or its passfile's
/// entry for this connection); `None` leaves it to the run-as user's
/// ~/.pgpass, as libpq would.
pub fn password(
    explicit: Option<&Secret>,
    new_conninfo: &str,
    readable_passfile: bool,
) -> Option<Secret> {
    if let Some(p) = explicit {
        return Some(p.clone());
    }
    if let Some(p) = conninfo::value(new_conninfo, "password") {
        return Some(Secret::new(p));
    }
    let passfile = conninfo::value(new_conninfo, "passfile").filter(|_| readable_passfile)?;
    let host = conninfo::value(new_conninfo, "host")?;
    let port = conninfo::value(new_conninfo, "port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(5432);
    let user = conninfo::value(new_conninfo, "user")?;
    crate::pg::pgpass::replication_password(Path::new(&passfile), &host, port, &user)
        .map(Secret::new)
}

pub async fn probe(
    run_as: RunAs,
    new_conninfo: &str,
    password: Option<Secret>,
    slot: Option<&str>,
    timeout: Duration,
) -> Result<Primary> {
    let (client_conninfo, _) = crate::pg::conninfo::for_client(new_conninfo);
    let client = ReplClient::new(run_as, client_conninfo, password, None, timeout)?;
    let mut conn = client.connect().await.map_err(|e| client.error(&e))?;
    let answer = ask(&mut conn, slot).await;
    conn.close().await;
    let (identity, version, standby, switch_points, slot_exists) =
        answer.map_err(|e| client.error(&e))?;
    Ok(Primary {
        identity,
        version,
        standby,
        switch_points,
        slot_exists,
        client,
    })
}

type Answer = (
    Identity,
    Version,
    Option<bool>,
    Vec<(u32, u64)>,
    Option<bool>,
);

async fn ask(conn: &mut ReplConnection, slot: Option<&str>) -> Result<Answer, ReplError> {
    let identity = conn.identify_system().await?;
    let version = conn.version().await?;
    let standby = conn.in_recovery().await?;
    let switch_points = if identity.timeline > 1 {
        conn.timeline_history(identity.timeline)
            .await?
            .switch_points()
    } else {
        vec![]
    };
    let slot_exists = match slot {
        Some(s) if version.read_replication_slot() => {
            Some(conn.read_replication_slot(s).await?.is_some())
        }
        _ => None,
    };
    Ok((identity, version, standby, switch_points, slot_exists))
}
