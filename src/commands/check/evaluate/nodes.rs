//! Each node on its own: reachable, in the role it was given, and for a
//! standby its WAL receiver, hot-standby settings and paused replay.

use super::super::archive::wal_source;
use super::super::inspect::Data;
use super::codes::*;
use super::{Chain, setting_fix, settings_too_low, unreachable_finding, wrong_role};
use crate::health::{Node, NodeError, Report, Role, Status};

/// Node `i` with its own findings added to `r`; its status is the worst
/// of them.
pub(super) fn node(r: &mut Report, chain: &Chain, i: usize) -> Node {
    let f = &chain.facts[i];
    let name = &chain.names[i];
    let before = r.problems.len();
    let mut node = Node {
        name: name.clone(),
        role: f.role,
        target: f.target.clone(),
        status: Status::Ok,
        server_version_num: None,
        in_recovery: None,
        timeline: None,
        wal_lsn: None,
        upstream: chain.upstream_name(i),
        wal_receiver: None,
        wal_source: None,
        replay: None,
        read_only: None,
        error: None,
    };
    match &f.data {
        Err(e) => {
            node.error = Some(NodeError::from(e));
            unreachable_finding(r, name, f.down, e);
        }
        Ok(d) => {
            node.server_version_num = Some(d.version_num);
            node.in_recovery = Some(d.in_recovery);
            node.timeline = d.timeline;
            node.wal_lsn = d.wal_lsn.clone();
            if !wrong_role(r, name, f.role, d.in_recovery) {
                if f.role == Role::Standby {
                    let low = chain.primary.map(|(_, p)| settings_too_low(p, d));
                    standby_node(r, name, d, low.as_deref(), &mut node)
                } else {
                    node.read_only = d.read_only;
                    read_only(r, name, d);
                }
            }
        }
    }
    node.status = r.problems[before..]
        .iter()
        .fold(Status::Ok, |s, p| s.worst(p.status));
    node
}

/// A primary that refuses writes: `default_transaction_read_only` on in
/// its configuration. Left by an interrupted switchover's drain (its
/// marker says so), a rerun of that switchover finishes or rolls back;
/// otherwise someone set it, and resetting it gives writes back.
fn read_only(r: &mut Report, name: &str, d: &Data) {
    if d.read_only != Some(true) {
        return;
    }
    let (why, hint) = if d.draining {
        (
            format!(
                " (left by an interrupted pgrepctl switchover: {} = 'draining' in postgresql.auto.conf)",
                crate::commands::switchover::DRAIN_MARKER
            ),
            "run the same pgrepctl switchover again on this node's host: it finishes the switchover, or rolls back to this primary taking writes while nothing was promoted",
        )
    } else {
        (
            String::new(),
            "if it should take writes: ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf(); (and remove the setting from postgresql.conf if it is set there)",
        )
    };
    r.problem(
        Status::Critical,
        name,
        PRIMARY_READ_ONLY,
        format!("the primary refuses writes: default_transaction_read_only is on{why}"),
        Some(hint.into()),
    );
}

/// A standby's own findings: its receiver, its settings against the
/// primary's (`low`: None when the primary was not inspected), and paused
/// replay, whose advice depends on why it is paused.
fn standby_node(
    r: &mut Report,
    name: &str,
    d: &Data,
    low: Option<&[(&str, i64, i64)]>,
    node: &mut Node,
) {
    node.wal_receiver = Some(
        d.receiver
            .as_ref()
            .map(|rc| rc.receiver.clone())
            .unwrap_or_default(),
    );
    node.replay = d.replay.clone();
    let status = d
        .receiver
        .as_ref()
        .and_then(|rc| rc.receiver.status.as_deref());
    node.wal_source = wal_source(status, d.restore_command.as_deref());
    let from_archive = node.wal_source.as_deref() == Some("archive");
    receiver_finding(r, name, d, from_archive);
    for (setting, sv, pv) in low.unwrap_or_default() {
        r.problem(
            Status::Critical,
            name,
            SETTING_TOO_LOW,
            format!("{setting} is {sv} on the standby but {pv} on the primary: hot standby stops (or, on 14+, pauses replay) when it needs more"),
            Some(setting_fix(setting, *pv)),
        );
    }
    if d.replay.as_ref().and_then(|x| x.paused) == Some(true) {
        let (message, hint) = paused_advice(d.version_num, low);
        r.problem(Status::Warning, name, REPLAY_PAUSED, message, Some(hint));
    }
}

/// The receiver's finding, apart for its wording so [`standby_node`] reads as its list of findings.
fn receiver_finding(r: &mut Report, name: &str, d: &Data, from_archive: bool) {
    let log_hint = match &d.upstream_refused {
        Some(_) => {
            "start the upstream: the server on this host (pg_ctlcluster, systemctl or pg_ctl), or the tunnel whose local end this is (pgrepctl tunnel run …, or systemctl start the unit pgrepctl tunnel unit wrote), and check its log"
        }
        None => {
            "check the standby's log: is its upstream up, is primary_conninfo right, does the upstream's pg_hba.conf allow it?"
        }
    };
    // Restoring from the archive keeps the standby going, but behind by
    // up to a WAL segment (or archive_timeout) and only while the archive
    // is fed: still not streaming.
    let meanwhile = if from_archive {
        "it is restoring WAL from the archive (restore_command) instead"
    } else {
        "the standby is not receiving WAL"
    };
    let meanwhile = match &d.upstream_refused {
        Some(hp) => format!(
            "upstream {hp} (a server on this host, or a tunnel's local end) refuses connections: is it running? ({meanwhile})"
        ),
        None => meanwhile.to_string(),
    };
    match &d.receiver {
        None => r.problem(
            Status::Critical,
            name,
            STANDBY_NOT_STREAMING,
            format!("no WAL receiver is running: {meanwhile}"),
            Some(log_hint.into()),
        ),
        Some(rc) => match rc.receiver.status.as_deref() {
            Some("streaming") => {}
            Some(other) => r.problem(
                Status::Critical,
                name,
                STANDBY_NOT_STREAMING,
                format!("the WAL receiver is {other}, not streaming: {meanwhile}"),
                Some(log_hint.into()),
            ),
            None => r.problem(
                Status::Unknown,
                name,
                INSUFFICIENT_PRIVILEGE,
                "the WAL receiver's status is hidden from the connecting role",
                Some(
                    "connect as a superuser or a member of pg_monitor (GRANT pg_monitor TO …)"
                        .into(),
                ),
            ),
        },
    }
}

/// Why replay may be paused, and what to do. From 14 on PostgreSQL pauses
/// a standby whose hot-standby settings are below the primary's, and
/// resuming then shuts it down: never advise that when a setting is low,
/// and warn about it when the primary's settings are not known.
fn pauses_on_low(version_num: u32) -> bool {
    crate::pg::version::Version::of(version_num).pauses_on_insufficient_parameters()
}

pub fn paused_advice(version_num: u32, low: Option<&[(&str, i64, i64)]>) -> (String, String) {
    let resume = "resume it on the standby with SELECT pg_wal_replay_resume()";
    match low {
        Some([(setting, _, pv), ..]) => (
            format!(
                "WAL replay is paused: {setting} is below the primary's, so PostgreSQL paused recovery"
            ),
            setting_fix(setting, *pv),
        ),
        // The primary's settings as they are now may have been lowered
        // since the standby replayed a higher value and paused on it.
        Some(_) if pauses_on_low(version_num) => (
            "WAL replay is paused".into(),
            format!(
                "if the standby's log says \"insufficient parameter settings\", the primary ran with a higher value when the standby paused (it may have been lowered since): raise that setting on the standby to the value the log names (\"where its value was N\") and restart it (unpausing would shut it down); otherwise {resume}"
            ),
        ),
        Some(_) => ("WAL replay is paused".into(), resume.into()),
        None if pauses_on_low(version_num) => (
            "WAL replay is paused".into(),
            format!(
                "if the standby's log says \"insufficient parameter settings\", rerun pgrepctl clone-standby on the standby host (unpausing would shut it down; give --primary to check the settings); otherwise {resume}"
            ),
        ),
        None => ("WAL replay is paused".into(), resume.into()),
    }
}
