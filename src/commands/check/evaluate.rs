//! Pure: facts and thresholds in, a health report out. No I/O, so every
//! rule here is unit-tested without a server.
//!
//! The replication chain: each listed standby is matched to a wal sender
//! of a listed node, the primary first, then the other standbys (a
//! cascading standby streams from a standby's wal sender). That node is its
//! upstream; each link is judged from both ends, and lag is measured
//! against the root (the primary's current WAL position) when the primary
//! answered.

use super::chain::{effective_app_name, names, upstreams};
use super::inspect::{Data, NodeFacts, lsn_diff};
use crate::health::render::{human_bytes, human_seconds};
use crate::health::{Node, NodeError, Pair, Report, Role, Slot, Status, Thresholds};
use crate::pg::HOT_STANDBY_SETTINGS;

/// Codes of findings (beside the error codes of nodes that did not answer).
pub use crate::health::finding as codes;
use codes::*;

/// What `check` was asked beside the nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Options {
    pub thresholds: Thresholds,
    /// `--expect-standbys`: CRITICAL when fewer wal senders stream.
    pub expect_standbys: Option<u32>,
}

/// The status of a node that could not be inspected: CRITICAL when it is
/// down or unreachable (a node the user listed is not serving), UNKNOWN
/// when it answered but would not tell (password, hba, privilege).
pub fn unreachable_status(down: bool) -> Status {
    if down {
        Status::Critical
    } else {
        Status::Unknown
    }
}

/// The fix for a hot-standby setting below the primary's. pgrepctl
/// clone-standby wrote the standby's values into postgresql.auto.conf,
/// which overrides postgresql.conf, and a rerun raises them there.
pub fn setting_fix(name: &str, primary_value: i64) -> String {
    format!(
        "rerun pgrepctl clone-standby (same --primary and -D) on the standby host: it raises {name} to {primary_value} (the primary's value) in the data directory's config and restarts the standby; a value set in postgresql.conf does not help when postgresql.auto.conf sets it too"
    )
}

fn lag_findings(
    r: &mut Report,
    t: &Thresholds,
    subject: &str,
    bytes: Option<i64>,
    secs: Option<f64>,
) -> Status {
    let hint = "check the standby's load, disk and network, and whether replay is paused or blocked by queries (max_standby_streaming_delay)";
    let mut st = Status::Ok;
    if let Some(b) = bytes {
        let s = t.bytes_status(b);
        if s != Status::Ok {
            let limit = if s == Status::Critical {
                t.crit_bytes
            } else {
                t.warn_bytes
            };
            r.problem(
                s,
                subject,
                LAG_BYTES,
                format!(
                    "replay lags {} behind (threshold {})",
                    human_bytes(b),
                    crate::units::format_bytes(limit)
                ),
                Some(hint.into()),
            );
            st = st.worst(s);
        }
    }
    if let Some(x) = secs {
        let s = t.seconds_status(x);
        if s != Status::Ok {
            let limit = if s == Status::Critical {
                t.crit_seconds
            } else {
                t.warn_seconds
            };
            r.problem(
                s,
                subject,
                LAG_TIME,
                format!(
                    "replay lags {} behind (threshold {})",
                    human_seconds(x),
                    human_seconds(limit)
                ),
                Some(hint.into()),
            );
            st = st.worst(s);
        }
    }
    st
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn add_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x + y),
        (x, None) => x,
        (None, y) => y,
    }
}

/// A time lag for a link whose byte lag is known: nothing pending means no
/// lag, even when PostgreSQL shows no `replay_lag` (it clears it when idle).
fn time_lag(bytes: Option<i64>, secs: Option<f64>) -> Option<f64> {
    match (bytes, secs) {
        (_, Some(s)) => Some(s),
        (Some(b), None) if b <= 0 => Some(0.0),
        _ => None,
    }
}

/// A hot-standby setting of `d` below the primary's `p`: (name, standby's,
/// primary's).
fn settings_too_low(p: &Data, d: &Data) -> Vec<(&'static str, i64, i64)> {
    let mut out = vec![];
    for name in HOT_STANDBY_SETTINGS {
        // Standbys compare max_wal_senders from 12 on.
        if name == "max_wal_senders"
            && !crate::pg::version::Version::of(p.version_num).standby_checks_max_wal_senders()
        {
            continue;
        }
        let get = |d: &Data| d.settings.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        if let (Some(pv), Some(sv)) = (get(p), get(d)) {
            if sv < pv {
                out.push((name, sv, pv));
            }
        }
    }
    out
}

pub fn evaluate(facts: &[NodeFacts], o: &Options) -> Report {
    let t = &o.thresholds;
    let mut r = Report::new("check");
    r.thresholds = Some(*t);
    let names = names(facts);
    let mut pairs = vec![];
    let mut slots = vec![];

    let primary: Option<(usize, &Data)> = facts
        .iter()
        .enumerate()
        .find(|(_, f)| f.role == Role::Primary)
        .and_then(|(i, f)| f.data.as_ref().ok().map(|d| (i, d)))
        .filter(|(_, d)| !d.in_recovery);
    let root_lsn = primary.and_then(|(_, p)| p.wal_lsn.clone());
    let ups = upstreams(facts, primary.map(|(i, _)| i));

    // Nodes: reachable, in the role given, receiver streaming.
    for (i, f) in facts.iter().enumerate() {
        let name = &names[i];
        let before = r.problems.len();
        let mut node = Node {
            name: name.clone(),
            role: f.role,
            target: f.target.clone(),
            status: Status::Ok,
            server_version_num: None,
            in_recovery: None,
            wal_lsn: None,
            upstream: ups[i].map(|(u, _)| names[u].clone()),
            wal_receiver: None,
            replay: None,
            error: None,
        };
        match &f.data {
            Err(e) => {
                node.error = Some(NodeError::from(e));
                r.problem(
                    unreachable_status(f.down),
                    name,
                    &e.code.as_str(),
                    e.message.clone(),
                    e.hint.clone(),
                );
            }
            Ok(d) => {
                node.server_version_num = Some(d.version_num);
                node.in_recovery = Some(d.in_recovery);
                node.wal_lsn = d.wal_lsn.clone();
                match (f.role, d.in_recovery) {
                    (Role::Primary, true) => r.problem(
                        Status::Critical,
                        name,
                        NOT_A_PRIMARY,
                        "is in recovery (a standby), not a primary",
                        Some("give the primary's connection string to --primary".into()),
                    ),
                    (Role::Standby, false) => r.problem(
                        Status::Critical,
                        name,
                        NOT_A_STANDBY,
                        "is not in recovery: it is a primary, not a standby",
                        Some("check the connection string; if it was promoted, rebuild it as a standby".into()),
                    ),
                    (Role::Standby, true) => {
                        let low = primary.map(|(_, p)| settings_too_low(p, d));
                        standby_node(&mut r, name, d, low.as_deref(), &mut node)
                    }
                    (Role::Primary, false) => {}
                }
            }
        }
        node.status = r.problems[before..]
            .iter()
            .fold(Status::Ok, |s, p| s.worst(p.status));
        r.nodes.push(node);
    }

    // Pairs: each standby with the wal sender it streams from. Time lag
    // adds up along the chain, so a cascade's comes after its upstream's.
    let standbys: Vec<(usize, &NodeFacts, &Data)> = facts
        .iter()
        .enumerate()
        .filter(|(_, f)| f.role == Role::Standby)
        .filter_map(|(i, f)| f.data.as_ref().ok().map(|d| (i, f, d)))
        .filter(|(_, _, d)| d.in_recovery)
        .collect();
    let mut secs_of: Vec<Option<f64>> = vec![None; facts.len()];
    let depth = |mut i: usize| {
        let mut n = 0;
        while let Some((u, _)) = ups[i] {
            i = u;
            n += 1;
            if n > facts.len() {
                break;
            }
        }
        n
    };
    let mut by_depth: Vec<&(usize, &NodeFacts, &Data)> = standbys.iter().collect();
    by_depth.sort_by_key(|(i, _, _)| depth(*i));
    let mut built: Vec<(usize, Pair)> = vec![];
    for (i, _, d) in by_depth {
        let (i, d) = (*i, *d);
        let name = &names[i];
        let up = ups[i];
        let sender = up.map(|(u, k)| &facts[u].data.as_ref().expect("answered").senders[k]);
        // No receiver process: certainly not streaming; a hidden status: unknown.
        let streaming = match &d.receiver {
            None => Some(false),
            Some(rc) => rc.receiver.status.as_deref().map(|s| s == "streaming"),
        };
        let replay = d.replay.clone().unwrap_or_default();
        let replay_lsn = sender
            .and_then(|s| s.replay_lsn.clone())
            .or(replay.replay_lsn.clone());
        let mut st = Status::Ok;
        let (mut lag_bytes, mut lag_seconds) = (None, None);
        if streaming != Some(true) {
            // The node finding says why; a stopped receiver is never OK,
            // whatever its last lag looked like, and its lag is unknown.
            st = r.nodes[i].status.worst(Status::Critical);
            if streaming.is_none() {
                st = Status::Unknown;
            }
        } else {
            let pending = replay.pending_bytes.unwrap_or(0);
            let standby_delay = replay.delay_seconds.filter(|_| pending > 0);
            lag_bytes = match &root_lsn {
                Some(root) => lsn_diff(Some(root), replay_lsn.as_deref()),
                None => sender.and_then(|s| s.lag_bytes).or(replay.pending_bytes),
            };
            let upstream_secs = up.and_then(|(u, _)| secs_of[u]);
            let link = sender.and_then(|s| s.replay_lag);
            lag_seconds = time_lag(
                lag_bytes,
                max_opt(add_opt(upstream_secs, link), standby_delay),
            );
            secs_of[i] = lag_seconds;
            if primary.is_some() && sender.is_none() {
                let via = d
                    .receiver
                    .as_ref()
                    .and_then(|rc| rc.receiver.sender_host.clone())
                    .map(|h| format!(" (it streams from {h})"))
                    .unwrap_or_default();
                r.problem(
                    Status::Warning,
                    name,
                    STANDBY_NOT_MATCHED,
                    format!("streams, but from no wal sender of the nodes given{via}"),
                    Some("if it streams from a standby (cascading), give that standby too with --standby; otherwise check its primary_conninfo. Standbys are matched to wal senders by application_name (keep it unique) and client address".into()),
                );
                st = Status::Warning;
            }
            if let Some(state) = sender.and_then(|s| s.state.as_deref()) {
                if state != "streaming" {
                    let from = up.map(|(u, _)| names[u].clone()).unwrap_or_default();
                    r.problem(
                        Status::Warning,
                        name,
                        SENDER_NOT_STREAMING,
                        format!("the wal sender on {from} is in state {state}"),
                        None,
                    );
                    st = st.worst(Status::Warning);
                }
            }
            st = st.worst(lag_findings(&mut r, t, name, lag_bytes, lag_seconds));
        }
        built.push((
            i,
            Pair {
                standby: name.clone(),
                upstream: up.map(|(u, _)| names[u].clone()),
                application_name: sender
                    .map(|s| s.application_name.clone())
                    .or_else(|| effective_app_name(d)),
                client_addr: sender.and_then(|s| s.client_addr.clone()),
                state: sender.and_then(|s| s.state.clone()),
                sync_state: sender.and_then(|s| s.sync_state.clone()),
                sent_lsn: sender.and_then(|s| s.sent_lsn.clone()),
                write_lsn: sender.and_then(|s| s.write_lsn.clone()),
                flush_lsn: sender.and_then(|s| s.flush_lsn.clone()),
                replay_lsn,
                lag_bytes,
                lag_seconds,
                streaming,
                status: st,
            },
        ));
    }
    // Report pairs in the order the standbys were given.
    built.sort_by_key(|(i, _)| *i);
    pairs.extend(built.into_iter().map(|(_, p)| p));

    // Senders no given standby claimed, on the primary and on standbys
    // (cascades to nodes not given): judged from the sending side.
    let claimed: Vec<(usize, usize)> = ups.iter().flatten().copied().collect();
    let senders_of = (0..facts.len()).filter(|&u| {
        Some(u) == primary.map(|(i, _)| i)
            || (facts[u].role == Role::Standby
                && facts[u].data.as_ref().is_ok_and(|d| d.in_recovery))
    });
    let mut streaming_senders = 0;
    let mut hidden = false;
    for u in senders_of {
        let d = facts[u].data.as_ref().expect("answered");
        for (k, s) in d.senders.iter().enumerate() {
            if s.state.as_deref() == Some("backup") {
                continue;
            }
            hidden |= s.state.is_none();
            if s.state.as_deref() == Some("streaming") {
                streaming_senders += 1;
            }
            if claimed.contains(&(u, k)) {
                continue;
            }
            let mut name = if s.application_name.is_empty() || s.application_name == "walreceiver" {
                s.client_addr
                    .clone()
                    .unwrap_or_else(|| format!("pid {}", s.pid))
            } else {
                s.application_name.clone()
            };
            if pairs.iter().any(|x: &Pair| x.standby == name) {
                name = format!("{name} (pid {})", s.pid);
            }
            let mut st = Status::Ok;
            if let Some(state) = s.state.as_deref().filter(|x| *x != "streaming") {
                r.problem(
                    Status::Warning,
                    &name,
                    SENDER_NOT_STREAMING,
                    format!("the wal sender on {} is in state {state}", names[u]),
                    None,
                );
                st = Status::Warning;
            }
            let lag_bytes = match (&root_lsn, Some(u) == primary.map(|(i, _)| i)) {
                (Some(root), false) => lsn_diff(Some(root), s.replay_lsn.as_deref()),
                _ => s.lag_bytes,
            };
            let lag_seconds = time_lag(lag_bytes, add_opt(secs_of[u], s.replay_lag));
            st = st.worst(lag_findings(&mut r, t, &name, lag_bytes, lag_seconds));
            pairs.push(Pair {
                standby: name,
                upstream: Some(names[u].clone()),
                application_name: Some(s.application_name.clone()),
                client_addr: s.client_addr.clone(),
                state: s.state.clone(),
                sync_state: s.sync_state.clone(),
                sent_lsn: s.sent_lsn.clone(),
                write_lsn: s.write_lsn.clone(),
                flush_lsn: s.flush_lsn.clone(),
                replay_lsn: s.replay_lsn.clone(),
                lag_bytes,
                lag_seconds,
                streaming: None,
                status: st,
            });
        }
    }
    if hidden {
        r.warnings.push("wal sender details are hidden from the connecting role: connect as a superuser or a member of pg_monitor".into());
    }

    if let Some((pi, p)) = primary {
        let live = p
            .senders
            .iter()
            .filter(|s| s.state.as_deref() != Some("backup"))
            .count();
        let mut st = Status::Ok;
        if live == 0 && o.expect_standbys != Some(0) {
            r.problem(
                Status::Critical,
                &names[pi],
                NO_STANDBY_CONNECTED,
                "no standby is streaming from the primary (pg_stat_replication is empty)",
                Some(
                    "check the standbys' logs, primary_conninfo and the primary's pg_hba.conf"
                        .into(),
                ),
            );
            st = Status::Critical;
        } else if let Some(n) = o
            .expect_standbys
            .filter(|n| streaming_senders < *n as usize)
        {
            // Hidden sender states may hide streaming ones: then unknown.
            let status = if hidden {
                Status::Unknown
            } else {
                Status::Critical
            };
            r.problem(
                status,
                &names[pi],
                TOO_FEW_STANDBYS,
                format!("{streaming_senders} standby(s) streaming, fewer than the {n} expected (--expect-standbys)"),
                Some("check the missing standbys' logs and primary_conninfo (pg_stat_replication on the primary lists the ones that stream)".into()),
            );
            st = status;
        }
        r.nodes[pi].status = r.nodes[pi].status.worst(st);

        for s in &p.slots {
            let mut st = Status::Ok;
            let retained = s
                .retained_bytes
                .map(human_bytes)
                .unwrap_or_else(|| "no".into());
            if s.wal_status.as_deref() == Some("lost") {
                r.problem(
                    Status::Critical,
                    &s.name,
                    SLOT_LOST,
                    "replication slot has lost WAL its consumer needs (wal_status lost)",
                    Some(format!("the standby using it must be rebuilt; drop the slot with SELECT pg_drop_replication_slot('{}')", s.name.replace('\'', "''"))),
                );
                st = Status::Critical;
            } else if !s.active && s.restart_lsn.is_some() {
                r.problem(
                    Status::Warning,
                    &s.name,
                    SLOT_INACTIVE,
                    format!("inactive {} slot retains {retained} of WAL on the primary, more as WAL is written", s.slot_type),
                    Some(format!("start its standby, or if it is gone: SELECT pg_drop_replication_slot('{}') on the primary", s.name.replace('\'', "''"))),
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
    }
    r.pairs = Some(pairs);
    r.slots = Some(slots);
    r.finish()
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
    let log_hint = "check the standby's log: is its upstream up, is primary_conninfo right, does the upstream's pg_hba.conf allow it?";
    match &d.receiver {
        None => r.problem(
            Status::Critical,
            name,
            STANDBY_NOT_STREAMING,
            "no WAL receiver is running: the standby is not receiving WAL",
            Some(log_hint.into()),
        ),
        Some(rc) => match rc.receiver.status.as_deref() {
            Some("streaming") => {}
            Some(other) => r.problem(
                Status::Critical,
                name,
                STANDBY_NOT_STREAMING,
                format!(
                    "the WAL receiver is {other}, not streaming: the standby is not receiving WAL"
                ),
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

/// Why replay may be paused, and what to do. From 14 on PostgreSQL pauses
/// a standby whose hot-standby settings are below the primary's, and
/// resuming then shuts it down: never advise that when a setting is low,
/// and warn about it when the primary's settings are not known.
pub fn paused_advice(version_num: u32, low: Option<&[(&str, i64, i64)]>) -> (String, String) {
    let resume = "resume it on the standby with SELECT pg_wal_replay_resume()";
    match low {
        Some([(setting, _, pv), ..]) => (
            format!(
                "WAL replay is paused: {setting} is below the primary's, so PostgreSQL paused recovery"
            ),
            setting_fix(setting, *pv),
        ),
        Some(_) => ("WAL replay is paused".into(), resume.into()),
        None if crate::pg::version::Version::of(version_num)
            .pauses_on_insufficient_parameters() =>
        {
            (
                "WAL replay is paused".into(),
                format!(
                    "if the standby's log says \"insufficient parameter settings\", rerun pgrepctl clone-standby on the standby host (unpausing would shut it down; give --primary to check the settings); otherwise {resume}"
                ),
            )
        }
        None => ("WAL replay is paused".into(), resume.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::inspect::{ReceiverFacts, Sender, SlotFacts};
    use super::*;
    use crate::health::{Receiver, Replay};
    use crate::pg::replication::format_lsn;

    const ROOT: u64 = 0x500_0000;

    fn primary(senders: Vec<Sender>, slots: Vec<SlotFacts>) -> NodeFacts {
        NodeFacts {
            role: Role::Primary,
            target: "host=p port=5432".into(),
            host_port: "p:5432".into(),
            given_addr: None,
            down: false,
            data: Ok(Data {
                version_num: 150000,
                in_recovery: false,
                settings: vec![
                    ("max_connections".into(), 100),
                    ("max_wal_senders".into(), 10),
                ],
                wal_lsn: Some(format_lsn(ROOT)),
                senders,
                slots,
                ..Default::default()
            }),
        }
    }

    /// A sender on the primary whose standby replayed up to `lag` bytes
    /// before the primary's position.
    fn sender(name: &str, lag: i64) -> Sender {
        Sender {
            pid: 7,
            application_name: name.into(),
            state: Some("streaming".into()),
            sync_state: Some("async".into()),
            replay_lsn: Some(format_lsn(ROOT - lag as u64)),
            lag_bytes: Some(lag),
            ..Default::default()
        }
    }

    fn standby(name: &str, status: Option<&str>) -> NodeFacts {
        NodeFacts {
            role: Role::Standby,
            target: format!("host={name}"),
            host_port: format!("{name}:5432"),
            given_addr: None,
            down: false,
            data: Ok(Data {
                version_num: 150000,
                in_recovery: true,
                settings: vec![
                    ("max_connections".into(), 100),
                    ("max_wal_senders".into(), 10),
                ],
                receiver: status.map(|s| ReceiverFacts {
                    receiver: Receiver {
                        status: Some(s.into()),
                        ..Default::default()
                    },
                    application_name: Some(name.into()),
                }),
                replay: Some(Replay {
                    pending_bytes: Some(0),
                    delay_seconds: Some(5000.0),
                    paused: Some(false),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }

    fn data(f: &mut NodeFacts) -> &mut Data {
        f.data.as_mut().unwrap()
    }

    fn opts(t: Thresholds) -> Options {
        Options {
            thresholds: t,
            expect_standbys: None,
        }
    }

    fn check(facts: &[NodeFacts]) -> Report {
        evaluate(facts, &Options::default())
    }

    fn codes(r: &Report) -> Vec<(&str, Status)> {
        r.problems
            .iter()
            .map(|p| (p.code.as_str(), p.status))
            .collect()
    }

    #[test]
    fn healthy_pair_ignores_idle_replay_delay() {
        let r = check(&[
            primary(vec![sender("s1", 0)], vec![]),
            standby("s1", Some("streaming")),
        ]);
        assert_eq!(r.status, Status::Ok, "{:?}", r.problems);
        let p = &r.pairs.as_ref().unwrap()[0];
        // Nothing pending: no time lag, though replay_lag is null.
        assert_eq!(
            (p.standby.as_str(), p.lag_bytes, p.lag_seconds, p.streaming),
            ("s1", Some(0), Some(0.0), Some(true))
        );
        assert_eq!(p.upstream.as_deref(), Some("primary"));
        assert_eq!(r.nodes[1].name, "s1");
        assert_eq!(r.nodes[1].upstream.as_deref(), Some("primary"));
    }

    #[test]
    fn stopped_receiver_is_critical_and_its_lag_unknown() {
        for st in [None, Some("waiting")] {
            let r = check(&[standby("s1", st)]);
            assert_eq!(r.status, Status::Critical);
            assert_eq!(codes(&r), vec![(STANDBY_NOT_STREAMING, Status::Critical)]);
            let p = &r.pairs.as_ref().unwrap()[0];
            assert_eq!(p.status, Status::Critical);
            assert_eq!((p.lag_bytes, p.lag_seconds), (None, None), "not 0");
        }
    }

    #[test]
    fn lag_thresholds() {
        let t = Thresholds {
            warn_bytes: 100,
            crit_bytes: 1000,
            ..Default::default()
        };
        let r = evaluate(
            &[
                primary(vec![sender("s1", 500)], vec![]),
                standby("s1", Some("streaming")),
            ],
            &opts(t),
        );
        assert_eq!(codes(&r), vec![(LAG_BYTES, Status::Warning)]);
        let r = evaluate(&[primary(vec![sender("s1", 5000)], vec![])], &opts(t));
        assert_eq!(codes(&r), vec![(LAG_BYTES, Status::Critical)]);
        // Time lag on the standby only counts while WAL is pending.
        let mut s = standby("s1", Some("streaming"));
        data(&mut s).replay.as_mut().unwrap().pending_bytes = Some(10);
        data(&mut s).replay.as_mut().unwrap().delay_seconds = Some(60.0);
        let r = evaluate(&[s], &opts(t));
        assert_eq!(codes(&r), vec![(LAG_TIME, Status::Warning)]);
    }

    #[test]
    fn a_node_that_is_down_is_critical_one_that_refuses_us_unknown() {
        let mut wrong = primary(vec![], vec![]);
        wrong.role = Role::Standby;
        let mut gone = standby("s2", None);
        gone.data = Err(crate::fail!(ConnectionFailed, "refused"));
        gone.down = true;
        let r = check(&[primary(vec![sender("s1", 0)], vec![]), wrong, gone]);
        let c = codes(&r);
        assert!(c.contains(&(NOT_A_STANDBY, Status::Critical)), "{c:?}");
        assert!(
            c.contains(&("CONNECTION_FAILED", Status::Critical)),
            "{c:?}"
        );
        assert_eq!(r.nodes[2].status, Status::Critical);
        assert_eq!(r.status, Status::Critical);
        // The unclaimed sender is still reported.
        assert!(r.pairs.as_ref().unwrap().iter().any(|p| p.standby == "s1"));

        let mut only = primary(vec![], vec![]);
        only.data = Err(crate::fail!(Timeout, "no answer"));
        only.down = true;
        assert_eq!(check(&[only]).status, Status::Critical);

        let mut locked = standby("s1", None);
        locked.data = Err(crate::fail!(AuthenticationFailed, "password"));
        let r = check(&[locked]);
        assert_eq!(r.status, Status::Unknown);
        assert_eq!(codes(&r), vec![("AUTHENTICATION_FAILED", Status::Unknown)]);
    }

    #[test]
    fn unmatched_and_no_standby() {
        let r = check(&[
            primary(vec![sender("other", 0)], vec![]),
            standby("s1", Some("streaming")),
        ]);
        assert!(codes(&r).contains(&(STANDBY_NOT_MATCHED, Status::Warning)));
        let hint = r.problems.iter().find(|p| p.code == STANDBY_NOT_MATCHED);
        assert!(hint.unwrap().hint.as_ref().unwrap().contains("cascading"));

        let r = check(&[primary(vec![], vec![])]);
        assert_eq!(codes(&r), vec![(NO_STANDBY_CONNECTED, Status::Critical)]);
        let r = evaluate(
            &[primary(vec![], vec![])],
            &Options {
                expect_standbys: Some(0),
                ..Default::default()
            },
        );
        assert_eq!(r.status, Status::Ok, "{:?}", r.problems);
    }

    #[test]
    fn expect_standbys() {
        let expect = |n| Options {
            expect_standbys: Some(n),
            ..Default::default()
        };
        let p = || primary(vec![sender("s1", 0)], vec![]);
        let r = evaluate(&[p()], &expect(2));
        assert_eq!(codes(&r), vec![(TOO_FEW_STANDBYS, Status::Critical)]);
        assert_eq!(r.nodes[0].status, Status::Critical);
        assert!(r.problems[0].message.contains("1 standby(s) streaming"));
        assert_eq!(evaluate(&[p()], &expect(1)).status, Status::Ok);
        // A sender catching up does not count as streaming.
        let mut catching = sender("s2", 0);
        catching.state = Some("catchup".into());
        let r = evaluate(
            &[primary(vec![sender("s1", 0), catching], vec![])],
            &expect(2),
        );
        assert!(codes(&r).contains(&(TOO_FEW_STANDBYS, Status::Critical)));
        // Hidden states (no pg_monitor): unknown, not critical.
        let mut hidden = sender("s1", 0);
        hidden.state = None;
        let r = evaluate(&[primary(vec![hidden], vec![])], &expect(1));
        assert_eq!(codes(&r), vec![(TOO_FEW_STANDBYS, Status::Unknown)]);
    }

    #[test]
    fn cascade_chain_and_lag_against_the_root() {
        // primary -> s1 -> s2: s1 has received up to 0/4800000, s2 has
        // replayed 0/4000000; the primary is at 0/5000000.
        let mut s1 = standby("s1", Some("streaming"));
        let mut s2_on_s1 = sender("s2", 0);
        s2_on_s1.replay_lsn = Some("0/4000000".into());
        s2_on_s1.lag_bytes = Some(0x80_0000);
        s2_on_s1.replay_lag = Some(2.0);
        data(&mut s1).senders = vec![s2_on_s1];
        let mut s2 = standby("s2", Some("streaming"));
        data(&mut s2)
            .receiver
            .as_mut()
            .unwrap()
            .receiver
            .sender_host = Some("s1".into());
        let mut on_p = sender("s1", 0);
        on_p.replay_lag = Some(1.0);
        let t = Thresholds {
            warn_bytes: 1 << 30,
            crit_bytes: 1 << 30,
            ..Default::default()
        };
        let r = evaluate(&[primary(vec![on_p], vec![]), s2, s1], &opts(t));
        assert_eq!(r.status, Status::Ok, "{:?}", r.problems);
        let pairs = r.pairs.as_ref().unwrap();
        assert_eq!(pairs.len(), 2, "{pairs:?}");
        // In the order given; each with its upstream.
        assert_eq!(
            (pairs[0].standby.as_str(), pairs[0].upstream.as_deref()),
            ("s2", Some("s1"))
        );
        assert_eq!(pairs[1].upstream.as_deref(), Some("primary"));
        assert_eq!(pairs[0].lag_bytes, Some(0x100_0000), "against the primary");
        assert_eq!(pairs[0].lag_seconds, Some(3.0), "s1's lag plus the link's");
        assert_eq!(r.nodes[1].upstream.as_deref(), Some("s1"));
        assert_eq!(r.nodes[2].upstream.as_deref(), Some("primary"));

        // Without the primary: s2 still found on s1, lag from s1.
        let mut s1 = standby("s1", Some("streaming"));
        data(&mut s1).senders = vec![sender("s2", 64)];
        let r = check(&[standby("s2", Some("streaming")), s1]);
        let pairs = r.pairs.as_ref().unwrap();
        assert_eq!(pairs[0].upstream.as_deref(), Some("s1"));
        assert_eq!(pairs[0].lag_bytes, Some(64));
        assert!(!codes(&r).iter().any(|(c, _)| *c == STANDBY_NOT_MATCHED));
    }

    #[test]
    fn slots_and_settings() {
        let slot = |name: &str, active: bool, ws: Option<&str>| SlotFacts {
            name: name.into(),
            slot_type: "physical".into(),
            active,
            restart_lsn: Some("0/1".into()),
            retained_bytes: Some(4096),
            wal_status: ws.map(Into::into),
        };
        let mut s = standby("s1", Some("streaming"));
        data(&mut s).settings[0].1 = 50;
        let r = check(&[
            primary(
                vec![sender("s1", 0)],
                vec![
                    slot("a", true, None),
                    slot("b", false, None),
                    slot("c", false, Some("lost")),
                ],
            ),
            s,
        ]);
        let c = codes(&r);
        assert!(c.contains(&(SLOT_INACTIVE, Status::Warning)), "{c:?}");
        assert!(c.contains(&(SLOT_LOST, Status::Critical)), "{c:?}");
        assert!(c.contains(&(SETTING_TOO_LOW, Status::Critical)), "{c:?}");
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(r.nodes[1].status, Status::Critical);
    }

    #[test]
    fn a_low_setting_is_fixed_by_clone_standby_never_by_resuming() {
        let mut s = standby("s1", Some("streaming"));
        data(&mut s).settings[0].1 = 100;
        data(&mut s).replay.as_mut().unwrap().paused = Some(true);
        let mut p = primary(vec![sender("s1", 0)], vec![]);
        data(&mut p).settings[0].1 = 300;
        let r = check(&[p, s]);
        let c = codes(&r);
        assert!(c.contains(&(SETTING_TOO_LOW, Status::Critical)), "{c:?}");
        assert!(c.contains(&(REPLAY_PAUSED, Status::Warning)), "{c:?}");
        for p in &r.problems {
            let h = p.hint.as_deref().unwrap();
            assert!(h.contains("pgrepctl clone-standby"), "{h}");
            assert!(h.contains("300"), "{h}");
            assert!(!h.contains("resume"), "{h}");
            assert!(!h.contains("postgresql.conf and restart"), "{h}");
        }

        // Settings fine: a user's pause, resume it.
        let mut s = standby("s1", Some("streaming"));
        data(&mut s).replay.as_mut().unwrap().paused = Some(true);
        let r = check(&[primary(vec![sender("s1", 0)], vec![]), s]);
        let h = r.problems[0].hint.as_deref().unwrap();
        assert!(h.contains("pg_wal_replay_resume()"), "{h}");

        // The standby alone on 14+: say which case is which.
        let (_, h) = paused_advice(150000, None);
        assert!(h.contains("insufficient parameter settings") && h.contains("clone-standby"));
        let (_, h) = paused_advice(130000, None);
        assert!(!h.contains("clone-standby"), "{h}");
    }
}
