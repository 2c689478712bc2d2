//! What promote needs to know before it changes anything: that the server
//! is a running standby, how far it has replayed what it received, and
//! whether the upstream its primary_conninfo names still answers — a
//! primary that answers means promoting now makes two primaries.

use super::Args;
use crate::error::{Code, Error, Result};
use crate::pg::cluster::LocalCluster;
use crate::pg::replication::{ReplClient, ReplError};
use crate::pg::version::Version;
use crate::report::{Outcome, Printer};
use crate::secret::Secret;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

pub struct Facts {
    pub cluster: LocalCluster,
    pub version: Version,
    pub in_recovery: bool,
    /// The timeline of the last checkpoint (or restartpoint).
    pub timeline: i32,
    pub receive_lsn: Option<String>,
    pub replay_lsn: Option<String>,
    /// WAL received and not yet replayed: promotion replays it first.
    pub unreplayed_bytes: Option<i64>,
    pub upstream: Option<Upstream>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Upstream {
    /// primary_conninfo as pgrepctl's client uses it (no password).
    pub conninfo: String,
    pub state: UpstreamState,
}

/// What the upstream said when we tried it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamState {
    /// It answers and is not in recovery.
    Primary,
    /// It answers and is itself a standby (a cascade).
    Standby,
    /// It answers, but cannot say which it is (default_transaction_read_only
    /// on before 14 hides it; a refusal is an answer too).
    Answers,
    /// It did not take the connection, or did not answer in time.
    Down,
}

impl UpstreamState {
    pub fn alive(&self) -> bool {
        *self != UpstreamState::Down
    }
}

impl Facts {
    pub fn report_into(&self, o: &mut Outcome) {
        o.detail("data_directory", &self.cluster.data_dir);
        o.detail("in_recovery", self.in_recovery);
        o.detail("timeline", self.timeline);
        o.detail("receive_lsn", &self.receive_lsn);
        o.detail("replay_lsn", &self.replay_lsn);
        o.detail("unreplayed_bytes", self.unreplayed_bytes);
        o.detail("upstream", &self.upstream);
    }
}

pub async fn inspect(args: &Args, bindir: Option<&Path>, printer: &Printer) -> Result<Facts> {
    // A data directory first, then a running server: the binaries (which
    // a stopped server cannot point to) only after that.
    crate::pg::cluster::major_of(&args.pgdata)?;
    if crate::pg::pidfile::running(&args.pgdata).is_none() {
        return Err(Error::new(
            Code::ServerNotRunning,
            format!("no server runs on {}", args.pgdata.display()),
        )
        .hint("start the standby first: promote replays what it received, then takes writes"));
    }
    let cluster = LocalCluster::open(&args.pgdata, bindir)?;
    let session = cluster.session(Duration::from_secs(5)).await?;
    let t = &session.target;
    let row = session
        .client
        .query_one(
            "SELECT pg_is_in_recovery(), \
                    (SELECT timeline_id FROM pg_control_checkpoint()), \
                    pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, \
                    pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint",
            &[],
        )
        .await
        .map_err(|e| crate::pg::query_error(t, &e))?;
    let version = Version::new(session.version_num)?;
    let in_recovery: bool = row.get(0);
    let mut facts = Facts {
        cluster,
        version,
        in_recovery,
        timeline: row.get(1),
        receive_lsn: row.get(2),
        replay_lsn: row.get(3),
        unreplayed_bytes: row.get::<_, Option<i64>>(4).map(|b| b.max(0)),
        upstream: None,
    };
    if !in_recovery {
        return Ok(facts);
    }
    let conninfo = primary_conninfo(&facts, &session).await?;
    if let Some(c) = conninfo.filter(|c| !c.trim().is_empty()) {
        let (client_conninfo, passfile) = crate::pg::conninfo::for_client(&c);
        printer.step(format!("trying the upstream {client_conninfo}"));
        let state = probe(
            &facts.cluster,
            &client_conninfo,
            passfile.as_deref(),
            args.upstream_timeout,
        )
        .await;
        printer.info(format!(
            "upstream {client_conninfo}: {}",
            format!("{state:?}").to_lowercase()
        ));
        facts.upstream = Some(Upstream {
            conninfo: client_conninfo,
            state,
        });
    }
    Ok(facts)
}

/// The standby's primary_conninfo: a setting from 12, recovery.conf before.
async fn primary_conninfo(facts: &Facts, session: &crate::pg::Session) -> Result<Option<String>> {
    if facts.version.recovery_conf() {
        let path = facts.cluster.data_dir.join("recovery.conf");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
        };
        let conf = crate::conf::pgconf::parse(&text).map_err(|e| {
            Error::new(
                Code::ConfigParseError,
                format!("{}:{}: {}", path.display(), e.line, e.message),
            )
        })?;
        return Ok(conf
            .last_active("primary_conninfo")
            .and_then(|l| conf.setting_at(l))
            .map(|(_, v)| v.to_string()));
    }
    let row = session
        .client
        .query_one("SELECT current_setting('primary_conninfo')", &[])
        .await
        .map_err(|e| crate::pg::query_error(&session.target, &e))?;
    Ok(Some(row.get(0)))
}

/// Try the upstream with the standby's own credentials (its passfile) and
/// say what answered.
async fn probe(
    cluster: &LocalCluster,
    conninfo: &str,
    passfile: Option<&Path>,
    timeout: Duration,
) -> UpstreamState {
    let password = passfile.and_then(|p| passfile_password(conninfo, p, cluster));
    let Ok(client) = ReplClient::new(
        cluster.run_as,
        conninfo.to_string(),
        password,
        None,
        timeout,
    ) else {
        // A primary_conninfo pgrepctl cannot read: it cannot prove the
        // upstream is down.
        return UpstreamState::Answers;
    };
    let mut conn = match client.connect().await {
        Ok(c) => c,
        Err(ReplError::Unreachable { .. } | ReplError::NoAnswer { .. }) => {
            return UpstreamState::Down;
        }
        Err(_) => return UpstreamState::Answers,
    };
    let state = match conn.in_recovery().await {
        Ok(Some(true)) => UpstreamState::Standby,
        Ok(Some(false)) => UpstreamState::Primary,
        _ => UpstreamState::Answers,
    };
    conn.close().await;
    state
}

/// The password the standby's passfile holds for this connection.
fn passfile_password(conninfo: &str, passfile: &Path, cluster: &LocalCluster) -> Option<Secret> {
    let config = crate::pg::conninfo::parse(conninfo).ok()?;
    let host = match config.get_hosts().first()? {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config
        .get_user()
        .map(str::to_string)
        .or_else(|| cluster.run_as.user_name())?;
    crate::pg::pgpass::replication_password(passfile, &host, port, &user).map(Secret::new)
}
