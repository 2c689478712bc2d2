//! The primary's own findings: how many standbys stream from it against
//! what was expected, and its replication slots.

use super::super::inspect::Data;
use super::codes::*;
use super::human_bytes;
use super::pairs::SenderCount;
use crate::health::{Report, Slot, Status};

/// No standby streaming, or fewer than `--expect-standbys`: the status the
/// primary's node gets from it.
pub(super) fn expectations(
    r: &mut Report,
    name: &str,
    p: &Data,
    expect_standbys: Option<u32>,
    senders: &SenderCount,
) -> Status {
    let live = p
        .senders
        .iter()
        .filter(|s| s.state.as_deref() != Some("backup"))
        .count();
    if live == 0 && expect_standbys != Some(0) {
        r.problem(
            Status::Critical,
            name,
            NO_STANDBY_CONNECTED,
            "no standby is streaming from the primary (pg_stat_replication is empty)",
            Some("check the standbys' logs, primary_conninfo and the primary's pg_hba.conf".into()),
        );
        return Status::Critical;
    }
    let streaming = senders.streaming;
    let Some(n) = expect_standbys.filter(|n| streaming < *n as usize) else {
        return Status::Ok;
    };
    // Hidden sender states may hide streaming ones: then unknown.
    let status = if senders.hidden {
        Status::Unknown
    } else {
        Status::Critical
    };
    r.problem(
        status,
        name,
        TOO_FEW_STANDBYS,
        format!("{streaming} standby(s) streaming, fewer than the {n} expected (--expect-standbys)"),
        Some("check the missing standbys' logs and primary_conninfo (pg_stat_replication on the primary lists the ones that stream)".into()),
    );
    status
}

/// The primary's slots: one that lost WAL is CRITICAL, an inactive one
/// that holds WAL a WARNING.
pub(super) fn slots(r: &mut Report, p: &Data) -> Vec<Slot> {
    let mut slots = vec![];
    for s in &p.slots {
        let mut st = Status::Ok;
        let retained = s
            .retained_bytes
            .map(human_bytes)
            .unwrap_or_else(|| "no".into());
        let drop = format!(
            "SELECT pg_drop_replication_slot('{}')",
            s.name.replace('\'', "''")
        );
        if s.wal_status.as_deref() == Some("lost") {
            r.problem(
                Status::Critical,
                &s.name,
                SLOT_LOST,
                "replication slot has lost WAL its consumer needs (wal_status lost)",
                Some(format!(
                    "the standby using it must be rebuilt; drop the slot with {drop}"
                )),
            );
            st = Status::Critical;
        } else if !s.active && s.restart_lsn.is_some() {
            r.problem(
                Status::Warning,
                &s.name,
                SLOT_INACTIVE,
                format!("inactive {} slot retains {retained} of WAL on the primary, more as WAL is written", s.slot_type),
                Some(format!("start its standby, or if it is gone: {drop} on the primary")),
            );
            st = Status::Warning;
        }
        slots.push(Slot {
            name: s.name.clone(),
            slot_type: s.slot_type.clone(),
            active: s.active,
            restart_lsn: s.restart_lsn.clone(),
            retained_bytes: s.retained_bytes,
            wal_status: s.wal_status.clone(),
            status: st,
        });
    }
    slots
}
