//! The WAL archive as `check` reads it: the primary's archiver
//! (`pg_stat_archiver`, the `.ready` files waiting in
//! `pg_wal/archive_status`), a standby's restore_command, and
//! `--archive-probe`, which closes a segment with `pg_switch_wal()` and
//! waits until the archiver reports it archived. Reads only, except the
//! probe's WAL switch (and the transaction that makes sure there is WAL to
//! switch).

use crate::error::Error;
use crate::pg;
use crate::pg::conninfo::ConnConfig;
use serde::Deserialize;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, SimpleQueryMessage};

/// The archiver's facts, read by the facts query (one JSON object) when
/// archive_mode is not off, then the `.ready` count by [`read_ready`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ArchiverFacts {
    /// `on` or `always`.
    pub mode: String,
    pub timeout_seconds: Option<f64>,
    pub archived_count: i64,
    pub failed_count: i64,
    pub last_archived_wal: Option<String>,
    /// Seconds since `last_archived_time` (null: nothing archived since
    /// the statistics were reset).
    pub last_archived_age: Option<f64>,
    pub last_failed_wal: Option<String>,
    pub last_failed_age: Option<f64>,
    /// `last_failed_time` is newer than `last_archived_time`.
    pub failing: bool,
    /// Seconds since the archiver's counters started (the later of the
    /// server's start and the statistics' reset).
    pub since_start: Option<f64>,
    /// The WAL file the primary writes now.
    pub current_wal: Option<String>,
    /// `.ready` files; None when the role may not list them.
    #[serde(default)]
    pub ready: Option<i64>,
    /// Seconds since the oldest `.ready` file was made.
    #[serde(default)]
    pub oldest_ready_age: Option<f64>,
}

/// The facts query's `archiver` member: null when archive_mode is off or
/// the node is in recovery. `pg_stat_archiver` is open to every role;
/// `pg_stat_get_archiver()` is the function behind it (cheaper on a fresh
/// backend). archive_timeout is shown with a unit (`1min`), read as an
/// interval.
pub const ARCHIVER_SQL: &str = "CASE WHEN current_setting('archive_mode') <> 'off' AND NOT pg_is_in_recovery()
    THEN (SELECT json_build_object(
      'mode', current_setting('archive_mode'),
      'timeout_seconds', extract(epoch FROM current_setting('archive_timeout')::interval)::float8,
      'archived_count', a.archived_count, 'failed_count', a.failed_count,
      'last_archived_wal', a.last_archived_wal, 'last_failed_wal', a.last_failed_wal,
      'last_archived_age', extract(epoch FROM now() - a.last_archived_time)::float8,
      'last_failed_age', extract(epoch FROM now() - a.last_failed_time)::float8,
      'failing', coalesce(a.last_failed_time > coalesce(a.last_archived_time, '-infinity'), false),
      'since_start', extract(epoch FROM now() - greatest(pg_postmaster_start_time(), a.stats_reset))::float8,
      'current_wal', CASE WHEN NOT pg_is_in_recovery() THEN pg_walfile_name(pg_current_wal_lsn()) END)
      FROM pg_stat_get_archiver() a) END";

/// The standby side's `restore_command` member: 12+ a setting, readable
/// with pg_read_all_settings (null otherwise); '' when not set. On 10–11
/// there is no such setting (null): see [`read_recovery_conf`].
pub const RESTORE_COMMAND_SQL: &str = "CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE')
      THEN current_setting('restore_command', true) END";

/// The `.ready` files: how many, and how long the oldest has waited.
/// 12+: `pg_ls_archive_statusdir()` (pg_monitor may call it); before,
/// `pg_ls_dir` and `pg_stat_file` (a superuser, or on 11 a role granted
/// EXECUTE on both). None when the role may not: unknown, not zero.
pub async fn read_ready(c: &Client, version_num: u32) -> Option<(i64, Option<f64>)> {
    let q = if pg::version::Version::of(version_num).lists_archive_status() {
        "SELECT json_build_object('ready', count(*),
           'oldest_age', extract(epoch FROM now() - min(modification))::float8)::text
         FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"
    } else {
        "SELECT json_build_object('ready', count(*),
           'oldest_age', extract(epoch FROM now() - min((pg_stat_file('pg_wal/archive_status/' || f, true)).modification))::float8)::text
         FROM pg_ls_dir('pg_wal/archive_status') f WHERE f LIKE '%.ready'"
    };
    #[derive(Deserialize)]
    struct Ready {
        ready: i64,
        oldest_age: Option<f64>,
    }
    let text = first_value(c, q).await.ok()??;
    let r: Ready = serde_json::from_str(&text).ok()?;
    Some((r.ready, r.oldest_age))
}

/// A 10–11 standby's `restore_command`, from its recovery.conf (read with
/// `pg_read_file`, so only by a role that may): '' when not set, None when
/// the file could not be read.
pub async fn read_recovery_conf(c: &Client) -> Option<String> {
    let text = first_value(c, "SELECT pg_read_file('recovery.conf', 0, 1048576, true)")
        .await
        .ok()??;
    Some(restore_command_in(&text))
}

/// `restore_command` as a recovery.conf sets it ('' when it does not).
pub fn restore_command_in(recovery_conf: &str) -> String {
    let Ok(conf) = crate::conf::pgconf::parse(recovery_conf) else {
        return String::new();
    };
    conf.last_active("restore_command")
        .and_then(|line| conf.setting_at(line))
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// Where a standby's WAL comes from: `streaming` when its WAL receiver
/// streams, else `archive` when restore_command is set (the startup
/// process restores from the archive between attempts to stream), else
/// `none`; None when restore_command is hidden from the role.
pub fn wal_source(receiver_status: Option<&str>, restore_command: Option<&str>) -> Option<String> {
    if receiver_status == Some("streaming") {
        return Some("streaming".into());
    }
    match restore_command?.trim() {
        "" => Some("none".into()),
        _ => Some("archive".into()),
    }
}

/// The first column of the first row of `q` (None: SQL NULL or no row).
async fn first_value(c: &Client, q: &str) -> Result<Option<String>, tokio_postgres::Error> {
    let msgs = c.simple_query(q).await?;
    Ok(msgs.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    }))
}

/// What `--archive-probe` saw.
#[derive(Debug, Clone)]
pub struct ProbeFacts {
    /// The segment pg_switch_wal() closed (None: the switch failed).
    pub segment: Option<String>,
    pub archived: bool,
    pub waited_seconds: f64,
    /// The last archived and last failed WAL the archiver reported.
    pub last_archived_wal: Option<String>,
    pub last_failed_wal: Option<String>,
    /// The switch or the polling failed: why (the status it gets follows
    /// `denied`: a privilege is missing, so the answer is unknown).
    pub error: Option<Error>,
    pub denied: bool,
}

impl ProbeFacts {
    /// Asked for but not run (archive_mode is off).
    pub fn not_run() -> Self {
        ProbeFacts {
            segment: None,
            archived: false,
            waited_seconds: 0.0,
            last_archived_wal: None,
            last_failed_wal: None,
            error: None,
            denied: false,
        }
    }
}

/// Whether `last` (pg_stat_archiver.last_archived_wal) shows `segment`
/// archived: the archiver archives segments in order, so a later segment
/// of the same or a later timeline counts. A `.partial` or `.backup`
/// file of the segment itself does not prove it; a `.history` file
/// (no segment in its name) proves nothing.
pub fn archived_covers(last: &str, segment: &str) -> bool {
    let is_hex = |s: &str| s.len() == 24 && s.chars().all(|c| c.is_ascii_hexdigit());
    if last.len() < 24 || !is_hex(&last[..24]) || !is_hex(segment) {
        return false;
    }
    let (name, suffix) = last.split_at(24);
    let name = name.to_ascii_uppercase();
    let segment = segment.to_ascii_uppercase();
    if suffix.is_empty() {
        name >= segment
    } else {
        name > segment
    }
}

/// `--archive-probe` on the primary: make sure there is WAL to switch (a
/// transaction with an xid writes a commit record), close the segment
/// with `pg_switch_wal()`, then poll `pg_stat_archiver` until it reports
/// that segment (or a later one) archived, within `timeout` from the
/// start. The role needs EXECUTE on pg_switch_wal() (superuser by default).
pub async fn probe(config: &ConnConfig, timeout: Duration) -> ProbeFacts {
    let start = Instant::now();
    let mut facts = ProbeFacts::not_run();
    let run = probe_steps(config, timeout, &mut facts);
    if tokio::time::timeout(timeout, run).await.is_err() && facts.segment.is_none() {
        facts.error = Some(super::inspect::timed_out(&pg::describe(config), timeout));
    }
    facts.waited_seconds = start.elapsed().as_secs_f64();
    facts
}

async fn probe_steps(config: &ConnConfig, timeout: Duration, facts: &mut ProbeFacts) {
    let (client, target) = match pg::connect_client(config, Some(timeout)).await {
        Ok(c) => c,
        Err(f) => {
            facts.error = Some(f.error);
            return;
        }
    };
    let switched = async {
        client.simple_query("SELECT txid_current()").await?;
        first_value(&client, "SELECT pg_walfile_name(pg_switch_wal())").await
    };
    match switched.await {
        Ok(segment) => facts.segment = segment,
        Err(e) => {
            facts.denied =
                e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE);
            facts.error = Some(pg::query_error(&target, &e));
            return;
        }
    }
    let Some(segment) = facts.segment.clone() else {
        return;
    };
    let q = "SELECT json_build_array(last_archived_wal, last_failed_wal)::text FROM pg_stat_get_archiver()";
    loop {
        if let Ok(Some(text)) = first_value(&client, q).await {
            if let Ok((archived, failed)) =
                serde_json::from_str::<(Option<String>, Option<String>)>(&text)
            {
                facts.archived = archived
                    .as_deref()
                    .is_some_and(|a| archived_covers(a, &segment));
                (facts.last_archived_wal, facts.last_failed_wal) = (archived, failed);
                if facts.archived {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_the_segment_or_a_later_one() {
        let seg = "000000010000000000000005";
        assert!(archived_covers(seg, seg));
        assert!(archived_covers("000000010000000000000006", seg));
        assert!(archived_covers("000000020000000000000005", seg));
        assert!(archived_covers(
            "00000001000000000000000a",
            "000000010000000000000009"
        ));
        assert!(!archived_covers("000000010000000000000004", seg));
        assert!(!archived_covers("000000010000000000000005.partial", seg));
        assert!(!archived_covers(
            "000000010000000000000005.00000028.backup",
            seg
        ));
        assert!(archived_covers("000000010000000000000006.partial", seg));
        assert!(!archived_covers("00000002.history", seg));
        assert!(!archived_covers("", seg));
    }

    #[test]
    fn sources() {
        assert_eq!(
            wal_source(Some("streaming"), None).as_deref(),
            Some("streaming")
        );
        assert_eq!(
            wal_source(Some("waiting"), Some("cp /a/%f %p")).as_deref(),
            Some("archive")
        );
        assert_eq!(
            wal_source(None, Some("cp /a/%f %p")).as_deref(),
            Some("archive")
        );
        assert_eq!(wal_source(None, Some("")).as_deref(), Some("none"));
        assert_eq!(wal_source(None, None), None);
    }

    #[test]
    fn restore_command_from_recovery_conf() {
        let conf = "standby_mode = 'on'\nprimary_conninfo = 'host=x'\n#restore_command = 'old'\nrestore_command = 'cp /wal/%f \"%p\"'\n";
        assert_eq!(restore_command_in(conf), "cp /wal/%f \"%p\"");
        assert_eq!(restore_command_in("standby_mode = 'on'\n"), "");
    }
}
