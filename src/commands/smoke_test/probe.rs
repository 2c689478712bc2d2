//! One probe: write the token on the primary; on a standby, wait for the
//! replay, read the token, and try a write that must be refused.

use super::{TABLE, codes, ms};
use crate::error::Result;
use crate::health::{Probe, Status};
use crate::pg::{self, Session};
use std::time::{Duration, Instant};

pub struct Written {
    pub token: String,
    /// `pg_current_wal_lsn()` after the commit.
    pub lsn: String,
}

/// Insert the probe row (committed on return) and the WAL position after it.
pub async fn write(s: &Session) -> Result<Written> {
    let q = |e: tokio_postgres::Error| pg::query_error(&s.target, &e);
    let row = s
        .client
        .query_one(
            &format!(
                "INSERT INTO {TABLE} (token)
                 VALUES (md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text))
                 RETURNING token"
            ),
            &[],
        )
        .await
        .map_err(q)?;
    let token: String = row.get(0);
    let lsn: String = s
        .client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .map_err(q)?
        .get(0);
    Ok(Written { token, lsn })
}

pub async fn remove(s: &Session, token: &str) -> Result<()> {
    s.client
        .execute(&format!("DELETE FROM {TABLE} WHERE token = $1"), &[&token])
        .await
        .map(|_| ())
        .map_err(|e| pg::query_error(&s.target, &e))
}

pub fn not_run(name: &str, status: Status) -> Probe {
    Probe {
        standby: name.to_string(),
        replayed: false,
        token_visible: false,
        write_refused: None,
        latency_ms: None,
        status,
    }
}

pub type Finding = (Status, &'static str, String, Option<String>);

/// What one standby showed.
pub struct Outcome {
    pub replayed: bool,
    pub token_visible: bool,
    pub write_refused: Option<bool>,
    pub latency: Option<Duration>,
    pub findings: Vec<Finding>,
}

impl Outcome {
    pub fn probe(&self, name: &str) -> Probe {
        Probe {
            standby: name.to_string(),
            replayed: self.replayed,
            token_visible: self.token_visible,
            write_refused: self.write_refused,
            latency_ms: self.latency.map(ms),
            status: self.findings.iter().fold(Status::Ok, |s, f| s.worst(f.0)),
        }
    }
}

/// Wait (up to `timeout` after the commit) until the standby has replayed
/// `w.lsn`, then read the token and try a write.
/// `low`: the standby's hot-standby settings below the primary's, which
/// decide the advice when replay is paused.
pub async fn check(
    s: &Session,
    w: &Written,
    committed: Instant,
    timeout: Duration,
    low: &[(&str, i64, i64)],
) -> Outcome {
    let mut o = Outcome {
        replayed: false,
        token_visible: false,
        write_refused: None,
        latency: None,
        findings: vec![],
    };
    let waited =
        tokio::time::timeout_at((committed + timeout).into(), replayed(s, w, committed)).await;
    match waited {
        Ok(Ok(latency)) => {
            o.replayed = true;
            o.latency = Some(latency);
        }
        Ok(Err(e)) => {
            o.findings
                .push((Status::Unknown, codes::QUERY_FAILED, e.message, e.hint));
            return o;
        }
        Err(_) => {
            o.findings.push(not_replayed(s, w, timeout, low).await);
            return o;
        }
    }
    let rest = tokio::time::timeout(timeout, async {
        let seen = s
            .client
            .query_one(
                &format!("SELECT count(*) FROM {TABLE} WHERE token = $1"),
                &[&w.token],
            )
            .await
            .map_err(|e| pg::query_error(&s.target, &e))?
            .get::<_, i64>(0);
        let write = write_refused(s, &w.token).await;
        Ok::<_, crate::error::Error>((seen == 1, write))
    })
    .await;
    match rest {
        Err(_) => o.findings.push((
            Status::Unknown,
            "TIMEOUT",
            format!("{}: no answer within {}s", s.target, timeout.as_secs_f64()),
            None,
        )),
        Ok(Err(e)) => o
            .findings
            .push((Status::Unknown, codes::QUERY_FAILED, e.message, e.hint)),
        Ok(Ok((seen, write))) => read_back(&mut o, seen, write),
    }
    o
}

/// Poll until the standby has replayed `w.lsn`: the time since the commit.
async fn replayed(s: &Session, w: &Written, committed: Instant) -> Result<Duration> {
    let mut pause = Duration::from_millis(1);
    loop {
        let r = s
            .client
            .query_one(
                "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)",
                &[&w.lsn],
            )
            .await;
        match r {
            Ok(row) if row.get::<_, bool>(0) => return Ok(committed.elapsed()),
            Ok(_) => {}
            Err(e) => return Err(pg::query_error(&s.target, &e)),
        }
        // Replay usually lands within a few milliseconds: ask again at
        // once for the first 10 ms (the latency's resolution is then one
        // round trip, not the timer's millisecond), then back off.
        if committed.elapsed() < Duration::from_millis(10) {
            tokio::task::yield_now().await;
            continue;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The probe was not replayed in time: why, when replay is paused.
async fn not_replayed(
    s: &Session,
    w: &Written,
    timeout: Duration,
    low: &[(&str, i64, i64)],
) -> Finding {
    let paused = s
        .client
        .query_one("SELECT pg_is_wal_replay_paused()", &[])
        .await
        .ok()
        .and_then(|r| r.get::<_, Option<bool>>(0))
        .unwrap_or(false);
    let hint = if paused {
        let (why, fix) = crate::commands::check::evaluate::paused_advice(s.version_num, Some(low));
        format!("{why}: {fix}")
    } else {
        "run pgrepctl check: is the standby streaming, and how far behind is it?".to_string()
    };
    (
        Status::Critical,
        codes::PROBE_TIMEOUT,
        format!(
            "did not replay the probe (LSN {}) within {}s",
            w.lsn,
            timeout.as_secs_f64()
        ),
        Some(hint),
    )
}

/// The replayed token was (not) seen, and the write was refused (or not).
fn read_back(o: &mut Outcome, seen: bool, write: Result<bool, String>) {
    o.token_visible = seen;
    if !seen {
        o.findings.push((
            Status::Critical,
            codes::TOKEN_MISSING,
            "replayed past the probe's LSN but the probe row is not visible".into(),
            Some("the standby may follow another primary or timeline; compare pg_control_system() on both".into()),
        ));
    }
    match write {
        Ok(true) => o.write_refused = Some(true),
        Ok(false) => {
            o.write_refused = Some(false);
            o.findings.push((
                Status::Critical,
                codes::WRITE_ACCEPTED,
                "accepted a write (it was rolled back): it is not a read-only hot standby".into(),
                None,
            ));
        }
        Err(msg) => o.findings.push((
            Status::Warning,
            codes::WRITE_NOT_PROVEN,
            format!("could not prove the standby refuses writes: {msg}"),
            None,
        )),
    }
}

/// Try to insert a row inside a transaction that is always rolled back.
/// Ok(true): refused with SQLSTATE 25006 (read-only transaction).
async fn write_refused(s: &Session, token: &str) -> Result<bool, String> {
    s.client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| e.to_string())?;
    let r = s
        .client
        .execute(
            &format!("INSERT INTO {TABLE} (token) VALUES ($1 || '-standby-write')"),
            &[&token],
        )
        .await;
    let _ = s.client.batch_execute("ROLLBACK").await;
    match r {
        Ok(_) => Ok(false),
        Err(e) => match e.code().map(|c| c.code()) {
            Some("25006") => Ok(true),
            _ => Err(e
                .as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| e.to_string())),
        },
    }
}
