//! Pure: facts and thresholds in, a health report out. No I/O, so every
//! rule here is unit-tested without a server.

use super::inspect::{Data, NodeFacts, Sender};
use crate::health::render::{human_bytes, human_seconds};
use crate::health::{Node, NodeError, Pair, Report, Role, Slot, Status, Thresholds};
use crate::pg::HOT_STANDBY_SETTINGS;

/// Codes of findings (beside the error codes of nodes that did not answer).
pub mod codes {
    pub const NOT_A_PRIMARY: &str = "NOT_A_PRIMARY";
    pub const NOT_A_STANDBY: &str = "NOT_A_STANDBY";
    pub const STANDBY_NOT_STREAMING: &str = "STANDBY_NOT_STREAMING";
    pub const STANDBY_NOT_MATCHED: &str = "STANDBY_NOT_MATCHED";
    pub const NO_STANDBY_CONNECTED: &str = "NO_STANDBY_CONNECTED";
    pub const SENDER_NOT_STREAMING: &str = "SENDER_NOT_STREAMING";
    pub const REPLAY_PAUSED: &str = "REPLAY_PAUSED";
    pub const LAG_BYTES: &str = "LAG_BYTES";
    pub const LAG_TIME: &str = "LAG_TIME";
    pub const SLOT_INACTIVE: &str = "SLOT_INACTIVE";
    pub const SLOT_LOST: &str = "SLOT_LOST";
    pub const SETTING_TOO_LOW: &str = "SETTING_TOO_LOW";
    pub const INSUFFICIENT_PRIVILEGE: &str = "INSUFFICIENT_PRIVILEGE";
}
use codes::*;

/// The application name a standby's WAL receiver announces: from its
/// conninfo, else `cluster_name` (12+), else `walreceiver`. None when the
/// conninfo is not visible to the connecting role.
pub fn announced_name(
    conninfo_app: Option<&str>,
    cluster_name: &str,
    version_num: u32,
) -> Option<String> {
    let name = conninfo_app?;
    if !name.is_empty() {
        return Some(name.to_string());
    }
    if version_num >= 120000 && !cluster_name.is_empty() {
        return Some(cluster_name.to_string());
    }
    Some("walreceiver".into())
}

fn effective_app_name(d: &Data) -> Option<String> {
    let from_conninfo = match &d.receiver {
        Some(rc) => rc.application_name.as_deref(),
        None => d.configured_app_name.as_deref(),
    };
    announced_name(from_conninfo, &d.cluster_name, d.version_num)
}

/// A standby's display name: its application name unless that is the
/// anonymous default, else host:port.
pub fn standby_name(app: Option<String>, host_port: &str) -> String {
    app.filter(|n| n != "walreceiver" && n != "primary" && !n.is_empty())
        .unwrap_or_else(|| host_port.to_string())
}

/// `base`, or `base#2`, `base#3`… when taken.
pub fn unique(taken: &[String], base: String) -> String {
    let mut name = base.clone();
    let mut i = 2;
    while taken.contains(&name) {
        name = format!("{base}#{i}");
        i += 1;
    }
    name
}

/// A display name per node: `primary`, else [`standby_name`]; unique.
fn names(facts: &[NodeFacts]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for f in facts {
        let base = match f.role {
            Role::Primary => "primary".to_string(),
            Role::Standby => standby_name(
                f.data.as_ref().ok().and_then(effective_app_name),
                &f.host_port,
            ),
        };
        out.push(unique(&out, base));
    }
    out
}

/// Which sender (index) each standby streams from, if any.
fn match_senders(standbys: &[(&NodeFacts, &Data)], senders: &[Sender]) -> Vec<Option<usize>> {
    let mut taken = vec![false; senders.len()];
    let mut out = vec![];
    for (f, d) in standbys {
        let name = effective_app_name(d);
        let addrs: Vec<&str> = [d.server_addr.as_deref(), f.given_addr.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let free = |i: &usize| !taken[*i] && senders[*i].state.as_deref() != Some("backup");
        let by_name: Vec<usize> = (0..senders.len())
            .filter(free)
            .filter(|&i| match &name {
                Some(n) => senders[i].application_name == *n,
                None => true,
            })
            .collect();
        let by_both: Vec<usize> = by_name
            .iter()
            .copied()
            .filter(|&i| {
                senders[i]
                    .client_addr
                    .as_deref()
                    .is_some_and(|a| addrs.contains(&a))
            })
            .collect();
        let pick = if by_both.len() == 1 {
            Some(by_both[0])
        } else if by_name.len() == 1 && name.is_some() {
            Some(by_name[0])
        } else {
            None
        };
        if let Some(i) = pick {
            taken[i] = true;
        }
        out.push(pick);
    }
    out
}

fn lag_findings(
    r: &mut Report,
    t: &Thresholds,
    subject: &str,
    bytes: Option<i64>,
    secs: Option<f64>,
) -> Status {
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
                format!("replay lags {} behind (threshold {})", human_bytes(b), crate::units::format_bytes(limit)),
                Some("check the standby's load, disk and network, and whether replay is paused or blocked by queries (max_standby_streaming_delay)".into()),
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
                format!("replay lags {} behind (threshold {})", human_seconds(x), human_seconds(limit)),
                Some("check the standby's load, disk and network, and whether replay is paused or blocked by queries (max_standby_streaming_delay)".into()),
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

pub fn evaluate(facts: &[NodeFacts], t: &Thresholds) -> Report {
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
    let senders: &[Sender] = primary.map(|(_, d)| d.senders.as_slice()).unwrap_or(&[]);

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
            wal_receiver: None,
            replay: None,
            error: None,
        };
        match &f.data {
            Err(e) => {
                node.error = Some(NodeError::from(e));
                r.problem(
                    Status::Unknown,
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
                    (Role::Standby, true) => standby_node(&mut r, name, d, &mut node),
                    (Role::Primary, false) => {}
                }
            }
        }
        node.status = r.problems[before..]
            .iter()
            .fold(Status::Ok, |s, p| s.worst(p.status));
        r.nodes.push(node);
    }

    // Settings a hot standby needs at least as high as the primary's.
    if let Some((_, p)) = primary {
        for (i, f) in facts.iter().enumerate() {
            let Ok(d) = &f.data else { continue };
            if f.role != Role::Standby || !d.in_recovery {
                continue;
            }
            let mut st = Status::Ok;
            for name in HOT_STANDBY_SETTINGS {
                // Standbys compare max_wal_senders from 12 on.
                if name == "max_wal_senders" && p.version_num < 120000 {
                    continue;
                }
                let get = |d: &Data| d.settings.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
                if let (Some(pv), Some(sv)) = (get(p), get(d)) {
                    if sv < pv {
                        r.problem(
                            Status::Critical,
                            &names[i],
                            SETTING_TOO_LOW,
                            format!("{name} is {sv} on the standby but {pv} on the primary: hot standby stops (or, on 14+, pauses replay) when it needs more"),
                            Some(format!("set {name} = {pv} (or more) in the standby's postgresql.conf and restart the standby")),
                        );
                        st = Status::Critical;
                    }
                }
            }
            r.nodes[i].status = r.nodes[i].status.worst(st);
        }
    }

    // Pairs: each standby with the primary's sender it streams from.
    let standbys: Vec<(usize, &NodeFacts, &Data)> = facts
        .iter()
        .enumerate()
        .filter(|(_, f)| f.role == Role::Standby)
        .filter_map(|(i, f)| f.data.as_ref().ok().map(|d| (i, f, d)))
        .filter(|(_, _, d)| d.in_recovery)
        .collect();
    let sb: Vec<(&NodeFacts, &Data)> = standbys.iter().map(|(_, f, d)| (*f, *d)).collect();
    let matched = match_senders(&sb, senders);
    for ((i, _, d), m) in standbys.iter().zip(&matched) {
        let name = &names[*i];
        let sender = m.map(|k| &senders[k]);
        // No receiver process: certainly not streaming; a hidden status: unknown.
        let streaming = match &d.receiver {
            None => Some(false),
            Some(rc) => rc.receiver.status.as_deref().map(|s| s == "streaming"),
        };
        let replay = d.replay.clone().unwrap_or_default();
        let pending = replay.pending_bytes.unwrap_or(0);
        let standby_delay = replay.delay_seconds.filter(|_| pending > 0);
        let lag_bytes = sender.and_then(|s| s.lag_bytes).or(replay.pending_bytes);
        let lag_seconds = max_opt(sender.and_then(|s| s.replay_lag), standby_delay);
        let mut st = Status::Ok;
        if streaming != Some(true) {
            // The node finding says why; a stopped receiver is never OK,
            // whatever its last lag looked like.
            st = r.nodes[*i].status.worst(Status::Critical);
            if streaming.is_none() {
                st = Status::Unknown;
            }
        } else {
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
                    format!("streams, but not from a wal sender of the given primary{via}"),
                    Some("give each standby a unique application_name in its primary_conninfo, and check that it replicates from this primary".into()),
                );
                st = Status::Warning;
            }
            if let Some(state) = sender.and_then(|s| s.state.as_deref()) {
                if state != "streaming" {
                    r.problem(
                        Status::Warning,
                        name,
                        SENDER_NOT_STREAMING,
                        format!("the primary's wal sender is in state {state}"),
                        None,
                    );
                    st = st.worst(Status::Warning);
                }
            }
            st = st.worst(lag_findings(&mut r, t, name, lag_bytes, lag_seconds));
        }
        pairs.push(Pair {
            standby: name.clone(),
            application_name: sender
                .map(|s| s.application_name.clone())
                .or_else(|| effective_app_name(d)),
            client_addr: sender.and_then(|s| s.client_addr.clone()),
            state: sender.and_then(|s| s.state.clone()),
            sync_state: sender.and_then(|s| s.sync_state.clone()),
            sent_lsn: sender.and_then(|s| s.sent_lsn.clone()),
            write_lsn: sender.and_then(|s| s.write_lsn.clone()),
            flush_lsn: sender.and_then(|s| s.flush_lsn.clone()),
            replay_lsn: sender
                .and_then(|s| s.replay_lsn.clone())
                .or(replay.replay_lsn.clone()),
            lag_bytes,
            lag_seconds,
            streaming,
            status: st,
        });
    }

    // Senders no given standby claimed: judged from the primary's side.
    if let Some((pi, p)) = primary {
        let claimed: Vec<usize> = matched.iter().flatten().copied().collect();
        let mut live = 0;
        let mut hidden = false;
        for (k, s) in p.senders.iter().enumerate() {
            if s.state.as_deref() == Some("backup") {
                continue;
            }
            live += 1;
            hidden |= s.state.is_none();
            if claimed.contains(&k) {
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
                    format!("the wal sender is in state {state}"),
                    None,
                );
                st = Status::Warning;
            }
            st = st.worst(lag_findings(&mut r, t, &name, s.lag_bytes, s.replay_lag));
            pairs.push(Pair {
                standby: name,
                application_name: Some(s.application_name.clone()),
                client_addr: s.client_addr.clone(),
                state: s.state.clone(),
                sync_state: s.sync_state.clone(),
                sent_lsn: s.sent_lsn.clone(),
                write_lsn: s.write_lsn.clone(),
                flush_lsn: s.flush_lsn.clone(),
                replay_lsn: s.replay_lsn.clone(),
                lag_bytes: s.lag_bytes,
                lag_seconds: s.replay_lag,
                streaming: None,
                status: st,
            });
        }
        if live == 0 {
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
            r.nodes[pi].status = r.nodes[pi].status.worst(Status::Critical);
        }
        if hidden {
            r.warnings.push("wal sender details are hidden from the connecting role: connect as a superuser or a member of pg_monitor".into());
        }

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

fn standby_node(r: &mut Report, name: &str, d: &Data, node: &mut Node) {
    node.wal_receiver = Some(
        d.receiver
            .as_ref()
            .map(|rc| rc.receiver.clone())
            .unwrap_or_default(),
    );
    node.replay = d.replay.clone();
    match &d.receiver {
        None => r.problem(
            Status::Critical,
            name,
            STANDBY_NOT_STREAMING,
            "no WAL receiver is running: the standby is not receiving WAL",
            Some("check the standby's log: is the primary up, is primary_conninfo right, does the primary's pg_hba.conf allow it?".into()),
        ),
        Some(rc) => match rc.receiver.status.as_deref() {
            Some("streaming") => {}
            Some(other) => r.problem(
                Status::Critical,
                name,
                STANDBY_NOT_STREAMING,
                format!("the WAL receiver is {other}, not streaming: the standby is not receiving WAL"),
                Some("check the standby's log: is the primary up, is primary_conninfo right, does the primary's pg_hba.conf allow it?".into()),
            ),
            None => r.problem(
                Status::Unknown,
                name,
                INSUFFICIENT_PRIVILEGE,
                "the WAL receiver's status is hidden from the connecting role",
                Some("connect as a superuser or a member of pg_monitor (GRANT pg_monitor TO …)".into()),
            ),
        },
    }
    if d.replay.as_ref().and_then(|x| x.paused) == Some(true) {
        r.problem(
            Status::Warning,
            name,
            REPLAY_PAUSED,
            "WAL replay is paused",
            Some("resume it on the standby with SELECT pg_wal_replay_resume()".into()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::inspect::{ReceiverFacts, SlotFacts};
    use super::*;
    use crate::health::{Receiver, Replay};

    fn primary(senders: Vec<Sender>, slots: Vec<SlotFacts>) -> NodeFacts {
        NodeFacts {
            role: Role::Primary,
            target: "host=p port=5432".into(),
            host_port: "p:5432".into(),
            given_addr: None,
            data: Ok(Data {
                version_num: 150000,
                in_recovery: false,
                settings: vec![
                    ("max_connections".into(), 100),
                    ("max_wal_senders".into(), 10),
                ],
                wal_lsn: Some("0/5000000".into()),
                senders,
                slots,
                ..Default::default()
            }),
        }
    }

    fn sender(name: &str, lag: i64) -> Sender {
        Sender {
            pid: 7,
            application_name: name.into(),
            state: Some("streaming".into()),
            sync_state: Some("async".into()),
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

    fn codes(r: &Report) -> Vec<(&str, Status)> {
        r.problems
            .iter()
            .map(|p| (p.code.as_str(), p.status))
            .collect()
    }

    #[test]
    fn healthy_pair_ignores_idle_replay_delay() {
        let r = evaluate(
            &[
                primary(vec![sender("s1", 0)], vec![]),
                standby("s1", Some("streaming")),
            ],
            &Thresholds::default(),
        );
        assert_eq!(r.status, Status::Ok, "{:?}", r.problems);
        let p = &r.pairs.as_ref().unwrap()[0];
        assert_eq!(
            (p.standby.as_str(), p.lag_bytes, p.lag_seconds, p.streaming),
            ("s1", Some(0), None, Some(true))
        );
        assert_eq!(r.nodes[1].name, "s1");
    }

    #[test]
    fn stopped_receiver_is_critical_even_without_lag() {
        for st in [None, Some("waiting")] {
            let r = evaluate(&[standby("s1", st)], &Thresholds::default());
            assert_eq!(r.status, Status::Critical);
            assert_eq!(codes(&r), vec![(STANDBY_NOT_STREAMING, Status::Critical)]);
            assert_eq!(r.pairs.as_ref().unwrap()[0].status, Status::Critical);
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
            &t,
        );
        assert_eq!(codes(&r), vec![(LAG_BYTES, Status::Warning)]);
        let r = evaluate(&[primary(vec![sender("s1", 5000)], vec![])], &t);
        assert_eq!(codes(&r), vec![(LAG_BYTES, Status::Critical)]);
        // Time lag on the standby only counts while WAL is pending.
        let mut s = standby("s1", Some("streaming"));
        if let Ok(d) = &mut s.data {
            d.replay.as_mut().unwrap().pending_bytes = Some(10);
            d.replay.as_mut().unwrap().delay_seconds = Some(60.0);
        }
        let r = evaluate(&[s], &t);
        assert_eq!(codes(&r), vec![(LAG_TIME, Status::Warning)]);
    }

    #[test]
    fn roles_unreachable_and_unmatched() {
        let mut wrong = primary(vec![], vec![]);
        wrong.role = Role::Standby;
        let mut gone = standby("s2", None);
        gone.data = Err(crate::fail!(ConnectionFailed, "refused"));
        let r = evaluate(
            &[primary(vec![sender("s1", 0)], vec![]), wrong, gone],
            &Thresholds::default(),
        );
        let c = codes(&r);
        assert!(c.contains(&(NOT_A_STANDBY, Status::Critical)), "{c:?}");
        assert!(c.contains(&("CONNECTION_FAILED", Status::Unknown)), "{c:?}");
        assert_eq!(r.status, Status::Critical);
        // The unclaimed sender is still reported.
        assert!(r.pairs.as_ref().unwrap().iter().any(|p| p.standby == "s1"));

        let r = evaluate(
            &[
                primary(vec![sender("other", 0)], vec![]),
                standby("s1", Some("streaming")),
            ],
            &Thresholds::default(),
        );
        assert!(codes(&r).contains(&(STANDBY_NOT_MATCHED, Status::Warning)));

        let r = evaluate(&[primary(vec![], vec![])], &Thresholds::default());
        assert_eq!(codes(&r), vec![(NO_STANDBY_CONNECTED, Status::Critical)]);

        let mut only = standby("s1", None);
        only.data = Err(crate::fail!(Timeout, "no answer"));
        let r = evaluate(&[only], &Thresholds::default());
        assert_eq!(r.status, Status::Unknown);
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
        if let Ok(d) = &mut s.data {
            d.settings[0].1 = 50;
        }
        let r = evaluate(
            &[
                primary(
                    vec![sender("s1", 0)],
                    vec![
                        slot("a", true, None),
                        slot("b", false, None),
                        slot("c", false, Some("lost")),
                    ],
                ),
                s,
            ],
            &Thresholds::default(),
        );
        let c = codes(&r);
        assert!(c.contains(&(SLOT_INACTIVE, Status::Warning)), "{c:?}");
        assert!(c.contains(&(SLOT_LOST, Status::Critical)), "{c:?}");
        assert!(c.contains(&(SETTING_TOO_LOW, Status::Critical)), "{c:?}");
        assert_eq!(c.len(), 3, "{c:?}");
        let hint = r
            .problems
            .iter()
            .find(|p| p.code == SETTING_TOO_LOW)
            .unwrap()
            .hint
            .clone()
            .unwrap();
        assert!(hint.contains("max_connections = 100"), "{hint}");
        assert_eq!(r.nodes[1].status, Status::Critical);
    }
}
