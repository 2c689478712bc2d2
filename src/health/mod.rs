//! The health model `check` and `smoke-test` share: a status per node, per
//! standby (pair), per slot and per probe, the problems found, and the
//! overall status (the worst one). Commands build a [`Report`];
//! [`render`] turns it into text, JSON, a Nagios line or Prometheus text.

pub mod finding;
pub mod render;

use serde::Serialize;

/// Monitoring status, ordered by severity: OK < UNKNOWN < WARNING <
/// CRITICAL, so a known CRITICAL is never masked by a node that did not
/// answer (as monitoring-plugins' `max_state_alt`). The exit code is the
/// Nagios one: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Status {
    fn rank(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Unknown => 1,
            Status::Warning => 2,
            Status::Critical => 3,
        }
    }

    pub fn worst(self, other: Status) -> Status {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

impl PartialOrd for Status {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Status {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Standby,
}

/// Why a node could not be inspected (the stable error code and message).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeError {
    pub code: String,
    pub message: String,
    pub hint: Option<String>,
}

impl From<&crate::error::Error> for NodeError {
    fn from(e: &crate::error::Error) -> Self {
        NodeError {
            code: e.code.as_str(),
            message: e.message.clone(),
            hint: e.hint.clone(),
        }
    }
}

/// A standby's WAL receiver, as `pg_stat_wal_receiver` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Receiver {
    /// `streaming`, `starting`, `waiting`, …; null when no receiver runs.
    pub status: Option<String>,
    pub sender_host: Option<String>,
    pub sender_port: Option<i32>,
    pub slot_name: Option<String>,
    /// Seconds since the last message from the sender.
    pub last_msg_age_seconds: Option<f64>,
}

/// A standby's own view of its replay.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Replay {
    pub receive_lsn: Option<String>,
    pub replay_lsn: Option<String>,
    /// Received but not yet replayed.
    pub pending_bytes: Option<i64>,
    /// now() - last replayed transaction's commit time (only meaningful
    /// while WAL is pending).
    pub delay_seconds: Option<f64>,
    pub paused: Option<bool>,
}

/// One server as given on the command line.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// `primary`, or the standby's application name (else host:port).
    pub name: String,
    pub role: Role,
    /// Where we connected (never with a password).
    pub target: String,
    pub status: Status,
    pub server_version_num: Option<u32>,
    pub in_recovery: Option<bool>,
    /// The timeline the node writes (a primary) or has reached (a
    /// standby: the newest its WAL receiver or its pg_control shows);
    /// null when it was not inspected.
    pub timeline: Option<u32>,
    /// Primary only: `pg_current_wal_lsn()`.
    pub wal_lsn: Option<String>,
    /// Standby only: the node given whose wal sender it streams from
    /// (`primary`, or a standby's name when it cascades); null when none
    /// of the nodes given serves it.
    pub upstream: Option<String>,
    pub wal_receiver: Option<Receiver>,
    /// Standby only: where its WAL comes from: `streaming` (a WAL receiver
    /// streams), `archive` (none does and restore_command is set: the
    /// startup process restores from the archive), `none`; null when not
    /// known (restore_command hidden from the role).
    pub wal_source: Option<String>,
    pub replay: Option<Replay>,
    /// Primary only: it refuses writes (`default_transaction_read_only`
    /// on in its configuration); null for a standby, or when a database
    /// or role setting hides the server's value.
    pub read_only: Option<bool>,
    pub error: Option<NodeError>,
}

/// A standby and its wal sender on the primary, or either one alone.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Pair {
    pub standby: String,
    /// The node given whose wal sender serves it (null: none found).
    pub upstream: Option<String>,
    pub application_name: Option<String>,
    pub client_addr: Option<String>,
    /// Sender state (`streaming`, `catchup`, …); null without a sender.
    pub state: Option<String>,
    pub sync_state: Option<String>,
    pub sent_lsn: Option<String>,
    pub write_lsn: Option<String>,
    pub flush_lsn: Option<String>,
    pub replay_lsn: Option<String>,
    /// Lag behind the primary's current WAL position (the root of a
    /// cascade), or behind the upstream when the primary was not given;
    /// null when unknown (a standby that is not streaming).
    pub lag_bytes: Option<i64>,
    /// Null when unknown; 0 when nothing is pending.
    pub lag_seconds: Option<f64>,
    /// The standby's receiver is streaming (null when the standby was not given or did not answer).
    pub streaming: Option<bool>,
    /// The replication connection is encrypted (`pg_stat_ssl.ssl` of the
    /// wal sender); null without a sender or when hidden from the role.
    pub ssl: Option<bool>,
    /// The TLS protocol (`TLSv1.3`), cipher and key bits, when encrypted.
    pub ssl_version: Option<String>,
    pub ssl_cipher: Option<String>,
    pub ssl_bits: Option<i32>,
    pub status: Status,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Slot {
    pub name: String,
    pub slot_type: String,
    pub active: bool,
    pub restart_lsn: Option<String>,
    pub retained_bytes: Option<i64>,
    /// 13+: reserved, extended, unreserved, lost.
    pub wal_status: Option<String>,
    pub status: Status,
}

/// The primary's WAL archiver (`pg_stat_archiver` and the `.ready` files),
/// present when archive_mode is not off.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Archive {
    /// The node it is about (the primary).
    pub node: String,
    /// `on` or `always`.
    pub archive_mode: String,
    /// 0: WAL is archived only when a segment fills.
    pub archive_timeout_seconds: Option<f64>,
    /// Counters since the statistics were last reset.
    pub archived_count: i64,
    /// Failures the server counted: not those of a command exiting above
    /// 125 or killed by a signal (then the archiver itself restarts).
    pub failed_count: i64,
    pub last_archived_wal: Option<String>,
    pub last_archived_age_seconds: Option<f64>,
    pub last_failed_wal: Option<String>,
    pub last_failed_age_seconds: Option<f64>,
    /// The last failure is newer than the last success.
    pub failing: bool,
    /// Segments waiting (`.ready` in pg_wal/archive_status); null when the
    /// role may not list the directory.
    pub ready_count: Option<i64>,
    /// How long the oldest of them has waited.
    pub oldest_ready_age_seconds: Option<f64>,
    /// `--archive-ready-warn` and `--archive-ready-crit`.
    pub ready_warn: u32,
    pub ready_crit: u32,
    /// `--archive-probe`: null when not asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<ArchiveProbe>,
    pub status: Status,
}

/// `check --archive-probe`: a segment closed by pg_switch_wal(), and
/// whether the archiver archived it within the timeout.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ArchiveProbe {
    /// The segment closed (null: WAL could not be switched).
    pub segment: Option<String>,
    pub archived: bool,
    pub waited_seconds: f64,
    pub status: Status,
}

/// The server certificate of a node with `ssl = on`, and its expiry.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Certificate {
    pub node: String,
    /// `handshake` (the certificate the server presented to check's TLS
    /// session) or `file` (`ssl_cert_file`, read with
    /// pg_read_binary_file); null when unknown.
    pub source: Option<String>,
    pub subject: Option<String>,
    /// notAfter, RFC 3339 in UTC.
    pub not_after: Option<String>,
    /// Seconds until notAfter (negative once expired).
    pub expires_in_seconds: Option<i64>,
    /// Whole days until notAfter (negative once expired).
    pub days_left: Option<i64>,
    /// Why the certificate is unknown (the role may not read it).
    pub unknown: Option<String>,
    /// `--cert-warn-days` and `--cert-crit-days`.
    pub warn_days: u32,
    pub crit_days: u32,
    pub status: Status,
}

/// One smoke-test probe on one standby.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Probe {
    pub standby: String,
    /// The standby replayed the primary's LSN after the probe row.
    pub replayed: bool,
    /// The probe row's token was read back on the standby.
    pub token_visible: bool,
    /// The standby refused a write with SQLSTATE 25006 (null: not tried).
    pub write_refused: Option<bool>,
    /// From commit on the primary to the LSN replayed on the standby.
    pub latency_ms: Option<f64>,
    pub status: Status,
}

/// Something wrong, with what to do about it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Problem {
    pub status: Status,
    /// The node, standby or slot it is about.
    pub subject: String,
    /// A stable code: an error code (CONNECTION_FAILED, TIMEOUT, …) or a
    /// finding (LAG_BYTES, SLOT_INACTIVE, …); see the README.
    pub code: String,
    pub message: String,
    pub hint: Option<String>,
}

/// Thresholds, in the report so renderers can print them (Nagios perfdata).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Thresholds {
    pub warn_bytes: u64,
    pub crit_bytes: u64,
    pub warn_seconds: f64,
    pub crit_seconds: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            warn_bytes: 16 << 20,
            crit_bytes: 256 << 20,
            warn_seconds: 30.0,
            crit_seconds: 300.0,
        }
    }
}

impl Thresholds {
    pub fn bytes_status(&self, b: i64) -> Status {
        if b > self.crit_bytes as i64 {
            Status::Critical
        } else if b > self.warn_bytes as i64 {
            Status::Warning
        } else {
            Status::Ok
        }
    }
    pub fn seconds_status(&self, s: f64) -> Status {
        if s > self.crit_seconds {
            Status::Critical
        } else if s > self.warn_seconds {
            Status::Warning
        } else {
            Status::Ok
        }
    }
}

/// Where a logical migration stands (`migrate status`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Migration {
    pub database: String,
    pub publication: String,
    pub subscription: String,
    pub slot: String,
    /// Whether the subscription is enabled (null: there is none).
    pub subscription_enabled: Option<bool>,
    /// Each subscribed table with its pg_subscription_rel state.
    pub tables: Vec<MigrationTable>,
    /// pg_current_wal_lsn() on the source minus the slot's confirmed_flush_lsn.
    pub lag_bytes: Option<i64>,
    /// apply_error_count + sync_error_count (pg_stat_subscription_stats, 15+).
    pub errors: Option<i64>,
    /// Tables or columns that exist on one side only.
    pub drift: Vec<String>,
    /// Cut over: no subscription, slot or publication left, the source
    /// database read-only and the target holding its tables.
    pub finished: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MigrationTable {
    pub table: String,
    /// init, copying, copied, synchronized, ready (streaming).
    pub state: String,
    /// The target's row estimate (pg_stat_user_tables.n_live_tup).
    pub rows: Option<i64>,
}

/// Everything `check` or `smoke-test` found; the overall status is derived.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub command: &'static str,
    pub ok: bool,
    pub status: Status,
    pub changed: bool,
    pub nodes: Vec<Node>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pairs: Option<Vec<Pair>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<Vec<Slot>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probes: Option<Vec<Probe>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Thresholds>,
    /// The primary's archiver (check, when archive_mode is on); boxed, as
    /// most reports have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<Box<Archive>>,
    /// The server certificates of the nodes with `ssl = on` (check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificates: Option<Vec<Certificate>>,
    /// `migrate status`: the subscription's tables and lag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<Box<Migration>>,
    pub problems: Vec<Problem>,
    pub warnings: Vec<String>,
}

impl Report {
    pub fn new(command: &'static str) -> Self {
        Report {
            command,
            ok: true,
            status: Status::Ok,
            changed: false,
            nodes: vec![],
            pairs: None,
            slots: None,
            probes: None,
            thresholds: None,
            archive: None,
            certificates: None,
            migration: None,
            problems: vec![],
            warnings: vec![],
        }
    }

    pub fn problem(
        &mut self,
        status: Status,
        subject: &str,
        code: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.problems.push(Problem {
            status,
            subject: subject.to_string(),
            code: code.to_string(),
            message: message.into(),
            hint,
        });
    }

    /// OK, or an error (VERIFY_FAILED) naming each problem, with `hint`:
    /// for commands that run check or smoke-test to prove their work.
    pub fn require_ok(&self, what: &str, hint: &str) -> crate::error::Result<()> {
        if self.status == Status::Ok {
            return Ok(());
        }
        let why = self
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.subject, p.message))
            .collect::<Vec<_>>()
            .join("; ");
        Err(crate::error::Error::new(
            crate::error::Code::VerifyFailed,
            format!("{what} reported {}: {why}", self.status.as_str()),
        )
        .hint(hint))
    }

    /// The worst status of the nodes and the pairs alone: whether
    /// replication itself works, whatever the archiver (or anything else
    /// beside replication) says. A switchover's verify judges by this.
    pub fn replication_status(&self) -> Status {
        self.nodes
            .iter()
            .map(|n| n.status)
            .chain(self.pairs.iter().flatten().map(|p| p.status))
            .fold(Status::Ok, Status::worst)
    }

    /// The overall status: the worst of every node, pair, slot, probe,
    /// the archiver and every problem. Call once everything is in.
    pub fn finish(mut self) -> Self {
        let mut s = Status::Ok;
        for n in &self.nodes {
            s = s.worst(n.status);
        }
        for p in self.pairs.iter().flatten() {
            s = s.worst(p.status);
        }
        for p in self.slots.iter().flatten() {
            s = s.worst(p.status);
        }
        for p in self.probes.iter().flatten() {
            s = s.worst(p.status);
        }
        if let Some(a) = &self.archive {
            s = s.worst(a.status);
        }
        for c in self.certificates.iter().flatten() {
            s = s.worst(c.status);
        }
        for p in &self.problems {
            s = s.worst(p.status);
        }
        self.problems.sort_by_key(|p| std::cmp::Reverse(p.status));
        self.status = s;
        self.ok = s == Status::Ok;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_status_ignores_what_is_beside_replication() {
        let mut r = Report::new("check");
        r.problems.push(Problem {
            status: Status::Critical,
            subject: "primary".into(),
            code: "ARCHIVE_FAILING".into(),
            message: "archive_command fails".into(),
            hint: None,
        });
        let r = r.finish();
        assert_eq!(r.status, Status::Critical);
        assert_eq!(r.replication_status(), Status::Ok);
    }

    #[test]
    fn worst_status() {
        assert_eq!(Status::Ok.worst(Status::Unknown), Status::Unknown);
        assert_eq!(Status::Unknown.worst(Status::Warning), Status::Warning);
        assert_eq!(Status::Critical.worst(Status::Unknown), Status::Critical);
        assert_eq!(
            [
                Status::Ok,
                Status::Warning,
                Status::Critical,
                Status::Unknown
            ]
            .map(|s| s.exit_code()),
            [0, 1, 2, 3]
        );
        let mut r = Report::new("check");
        r.problem(Status::Warning, "s1", "LAG_BYTES", "x", None);
        let r = r.finish();
        assert_eq!((r.status, r.ok), (Status::Warning, false));
    }

    #[test]
    fn thresholds() {
        let t = Thresholds::default();
        assert_eq!(t.bytes_status(16 << 20), Status::Ok);
        assert_eq!(t.bytes_status((16 << 20) + 1), Status::Warning);
        assert_eq!(t.bytes_status(1 << 30), Status::Critical);
        assert_eq!(t.seconds_status(31.0), Status::Warning);
    }
}
