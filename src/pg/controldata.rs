//! The control file's facts, as `pg_controldata` prints them (run with
//! `LC_ALL=C`, so the labels are English): the cluster state, the latest
//! checkpoint and its timeline, the minimum recovery point. They are what
//! a stopped server can still tell, and what promote, rejoin and
//! switchover decide on (was it shut down cleanly, on which timeline, how
//! far did it get).

use crate::error::{Code, Error, Result};
use crate::pg::replication::parse_lsn;

/// `Database cluster state`, PostgreSQL's `DBState`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterState {
    StartingUp,
    /// A primary stopped cleanly: its last record is a shutdown checkpoint.
    ShutDown,
    /// A standby stopped cleanly (a restartpoint, not a shutdown checkpoint).
    ShutDownInRecovery,
    ShuttingDown,
    /// Crashed and now replaying, or crashed and not started since.
    InCrashRecovery,
    /// A standby (or a server recovering from an archive).
    InArchiveRecovery,
    InProduction,
    /// A state this pgrepctl does not know, verbatim.
    Other(String),
}

impl ClusterState {
    /// From `ControlFileData.state` as the control file stores it (the
    /// `DBState` enum, numbered the same on 10–18).
    pub fn from_db_state(n: i32) -> ClusterState {
        match n {
            0 => ClusterState::StartingUp,
            1 => ClusterState::ShutDown,
            2 => ClusterState::ShutDownInRecovery,
            3 => ClusterState::ShuttingDown,
            4 => ClusterState::InCrashRecovery,
            5 => ClusterState::InArchiveRecovery,
            6 => ClusterState::InProduction,
            other => ClusterState::Other(other.to_string()),
        }
    }

    fn parse(s: &str) -> ClusterState {
        match s {
            "starting up" => ClusterState::StartingUp,
            "shut down" => ClusterState::ShutDown,
            "shut down in recovery" => ClusterState::ShutDownInRecovery,
            "shutting down" => ClusterState::ShuttingDown,
            "in crash recovery" => ClusterState::InCrashRecovery,
            "in archive recovery" => ClusterState::InArchiveRecovery,
            "in production" => ClusterState::InProduction,
            other => ClusterState::Other(other.to_string()),
        }
    }

    /// Stopped cleanly, as a primary or as a standby: nothing to replay
    /// before the data directory can be copied, rewound or started.
    pub fn is_clean_shutdown(&self) -> bool {
        matches!(
            self,
            ClusterState::ShutDown | ClusterState::ShutDownInRecovery
        )
    }
}

/// What pgrepctl reads from `pg_controldata`. LSNs are bytes (see
/// [`crate::pg::replication::format_lsn`] for display).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlData {
    pub system_identifier: u64,
    pub state: ClusterState,
    /// `Latest checkpoint location`.
    pub checkpoint_lsn: u64,
    /// `Latest checkpoint's REDO location`.
    pub redo_lsn: u64,
    /// `Latest checkpoint's TimeLineID`: the timeline the cluster is on as
    /// of its latest checkpoint (a promotion shows after the next one).
    pub timeline: u32,
    /// `Minimum recovery ending location`: 0 on a primary; on a standby,
    /// how far it must replay before it is consistent.
    pub min_recovery_end_lsn: u64,
    /// `Min recovery ending loc's timeline` (0 when there is none).
    pub min_recovery_end_timeline: u32,
    /// `Data page checksum version` is not 0.
    pub data_checksums: bool,
    /// `wal_log_hints setting`: with checksums, what pg_rewind needs.
    pub wal_log_hints: bool,
}

impl ControlData {
    /// Whether pg_rewind can run on this cluster: it needs either data
    /// checksums or wal_log_hints.
    pub fn rewindable(&self) -> bool {
        self.data_checksums || self.wal_log_hints
    }
}

/// Parse `LC_ALL=C pg_controldata` output (PostgreSQL 10 to 18 print the
/// same labels for these fields). A missing or malformed field is an
/// error naming it: a guess here would mislead a promote or a rewind.
pub fn parse(text: &str) -> Result<ControlData> {
    let field = |label: &str| -> Result<&str> {
        text.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == label).then(|| v.trim())
            })
            .ok_or_else(|| bad(label, "missing"))
    };
    let lsn = |label: &str| -> Result<u64> {
        let v = field(label)?;
        parse_lsn(v).ok_or_else(|| bad(label, v))
    };
    let num = |label: &str| -> Result<u64> {
        let v = field(label)?;
        v.parse().map_err(|_| bad(label, v))
    };
    let on_off = |label: &str| -> Result<bool> {
        match field(label)? {
            "on" => Ok(true),
            "off" => Ok(false),
            v => Err(bad(label, v)),
        }
    };
    Ok(ControlData {
        system_identifier: num("Database system identifier")?,
        state: ClusterState::parse(field("Database cluster state")?),
        checkpoint_lsn: lsn("Latest checkpoint location")?,
        redo_lsn: lsn("Latest checkpoint's REDO location")?,
        timeline: num("Latest checkpoint's TimeLineID")? as u32,
        min_recovery_end_lsn: lsn("Minimum recovery ending location")?,
        min_recovery_end_timeline: num("Min recovery ending loc's timeline")? as u32,
        data_checksums: num("Data page checksum version")? != 0,
        wal_log_hints: on_off("wal_log_hints setting")?,
    })
}

fn bad(label: &str, value: &str) -> Error {
    Error::new(
        Code::ToolFailed,
        format!("pg_controldata printed no usable \"{label}\" ({value})"),
    )
    .hint("run pg_controldata of the server's own major version on the data directory and check its output")
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/pg_controldata/",
                $name,
                ".txt"
            ))
        };
    }

    #[test]
    fn a_cleanly_stopped_primary() {
        for text in [
            fixture!("pg11-shut-down"),
            fixture!("pg15-shut-down"),
            fixture!("pg17-shut-down"),
        ] {
            let c = parse(text).unwrap();
            assert_eq!(c.state, ClusterState::ShutDown);
            assert!(c.state.is_clean_shutdown());
            assert_eq!(c.timeline, 1);
            // A shutdown checkpoint redoes from itself.
            assert_eq!(c.redo_lsn, c.checkpoint_lsn);
            assert_eq!(
                (c.min_recovery_end_lsn, c.min_recovery_end_timeline),
                (0, 0)
            );
            assert!(!c.data_checksums && !c.wal_log_hints && !c.rewindable());
        }
        let c = parse(fixture!("pg17-shut-down")).unwrap();
        assert_eq!(c.system_identifier, 7714148577788642121);
        assert_eq!(c.checkpoint_lsn, 0x147C948);
    }

    #[test]
    fn a_running_primary_and_its_standby() {
        let p = parse(fixture!("pg15-in-production")).unwrap();
        assert_eq!(p.state, ClusterState::InProduction);
        assert!(!p.state.is_clean_shutdown());
        for (v, running, stopped) in [
            (
                11,
                fixture!("pg11-in-archive-recovery"),
                fixture!("pg11-shut-down-in-recovery"),
            ),
            (
                15,
                fixture!("pg15-in-archive-recovery"),
                fixture!("pg15-shut-down-in-recovery"),
            ),
            (
                17,
                fixture!("pg17-in-archive-recovery"),
                fixture!("pg17-shut-down-in-recovery"),
            ),
        ] {
            let r = parse(running).unwrap();
            let s = parse(stopped).unwrap();
            assert_eq!(r.state, ClusterState::InArchiveRecovery, "{v}");
            assert_eq!(s.state, ClusterState::ShutDownInRecovery, "{v}");
            assert!(s.state.is_clean_shutdown());
            assert_eq!(r.min_recovery_end_timeline, 1, "{v}");
            assert!(r.min_recovery_end_lsn > 0, "{v}");
            assert!(s.min_recovery_end_lsn >= r.min_recovery_end_lsn, "{v}");
        }
        let s = parse(fixture!("pg15-shut-down-in-recovery")).unwrap();
        assert_eq!(
            (s.checkpoint_lsn, s.min_recovery_end_lsn),
            (0x3000E58, 0x3000EF8)
        );
    }

    #[test]
    fn a_promoted_standby_is_on_timeline_two() {
        for text in [fixture!("pg15-promoted"), fixture!("pg17-promoted")] {
            let c = parse(text).unwrap();
            assert_eq!(c.state, ClusterState::InProduction);
            assert_eq!(c.timeline, 2);
        }
    }

    #[test]
    fn settings_and_unknown_states() {
        let text = fixture!("pg17-shut-down")
            .replace(
                "Data page checksum version:           0",
                "Data page checksum version:           1",
            )
            .replace(
                "wal_log_hints setting:                off",
                "wal_log_hints setting:                on",
            )
            .replace("state:               shut down", "state:               odd");
        let c = parse(&text).unwrap();
        assert!(c.data_checksums && c.wal_log_hints && c.rewindable());
        assert_eq!(c.state, ClusterState::Other("odd".into()));
    }

    #[test]
    fn a_missing_field_is_named() {
        let text: String = fixture!("pg15-shut-down")
            .lines()
            .filter(|l| !l.starts_with("Latest checkpoint's TimeLineID"))
            .map(|l| format!("{l}\n"))
            .collect();
        let e = parse(&text).unwrap_err();
        assert!(
            e.message.contains("Latest checkpoint's TimeLineID"),
            "{e:?}"
        );
        let e = parse("Database system identifier: x\n").unwrap_err();
        assert!(
            e.message.contains("\"Database system identifier\" (x)"),
            "{e:?}"
        );
    }
}
