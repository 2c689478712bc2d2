use super::super::inspect::{ReceiverFacts, Sender, SlotFacts};
use super::super::tls::{CertFacts, CertSource};
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
        given_name: None,
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
        given_name: None,
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
                received_tli: None,
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
        ..Default::default()
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
fn a_standby_names_its_wal_source() {
    let mut s = standby("s1", Some("streaming"));
    data(&mut s).restore_command = Some("cp /wal/%f %p".into());
    let r = check(&[s]);
    assert_eq!(r.nodes[0].wal_source.as_deref(), Some("streaming"));
    for (restore, source, says) in [
        (
            Some("cp /wal/%f %p"),
            Some("archive"),
            "restoring WAL from the archive",
        ),
        (Some(""), Some("none"), "the standby is not receiving WAL"),
        (None, None, "the standby is not receiving WAL"),
    ] {
        let mut s = standby("s1", None);
        data(&mut s).restore_command = restore.map(str::to_string);
        let r = check(&[s]);
        assert_eq!(r.nodes[0].wal_source.as_deref(), source);
        // Restoring from the archive is still not streaming: CRITICAL.
        assert_eq!(codes(&r), vec![(STANDBY_NOT_STREAMING, Status::Critical)]);
        assert!(
            r.problems[0].message.contains(says),
            "{}",
            r.problems[0].message
        );
    }
}

#[test]
fn the_archiver_counts_in_the_primary_status() {
    let mut p = primary(vec![sender("s1", 0)], vec![]);
    data(&mut p).archiver = Some(crate::commands::check::archive::ArchiverFacts {
        mode: "on".into(),
        ready: Some(20),
        ..Default::default()
    });
    let r = check(&[p, standby("s1", Some("streaming"))]);
    assert_eq!(codes(&r), vec![(ARCHIVE_BACKLOG, Status::Warning)]);
    assert_eq!(r.nodes[0].status, Status::Warning);
    assert_eq!(r.status, Status::Warning);
    assert_eq!(r.archive.as_ref().unwrap().ready_count, Some(20));
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
fn two_primaries_are_a_split_brain() {
    let mut promoted = primary(vec![], vec![]);
    promoted.role = Role::Standby;
    let r = check(&[primary(vec![], vec![]), promoted.clone()]);
    let c = codes(&r);
    assert!(c.contains(&(SPLIT_BRAIN, Status::Critical)), "{c:?}");
    assert_eq!(r.status, Status::Critical);
    let one = check(&[
        primary(vec![sender("s1", 0)], vec![]),
        standby("s1", Some("streaming")),
    ]);
    assert!(!codes(&one).iter().any(|(c, _)| *c == SPLIT_BRAIN));
    // Two nodes given as standbys, both promoted: still two primaries.
    let r = check(&[promoted.clone(), promoted]);
    assert!(codes(&r).contains(&(SPLIT_BRAIN, Status::Critical)));
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

/// A standby whose conninfo names it keeps that name and its pair when
/// it stops: the same node and pair names up and down, the pair's values
/// unknown and not streaming while down; unknown streaming when it
/// answers but will not tell. Without a name given it keeps host:port
/// and has no pair while down.
#[test]
fn a_named_standby_keeps_its_name_and_pair_when_down() {
    let named = |f: NodeFacts| NodeFacts {
        given_name: Some("xstb2".into()),
        ..f
    };
    let up = check(&[
        primary(vec![sender("xstb2", 0)], vec![]),
        named(standby("xstb2", Some("streaming"))),
    ]);
    let mut gone = named(standby("xstb2", None));
    gone.data = Err(crate::fail!(ConnectionFailed, "refused"));
    gone.down = true;
    let down = check(&[primary(vec![], vec![]), gone.clone()]);
    let names = |r: &Report| -> Vec<(String, String)> {
        let nodes = r.nodes.iter().map(|n| n.name.clone());
        let pairs = r.pairs.iter().flatten().map(|p| p.standby.clone());
        nodes
            .zip(pairs.chain(std::iter::repeat(String::new())))
            .collect()
    };
    assert_eq!(names(&up), names(&down));
    assert_eq!(down.nodes[1].name, "xstb2");
    let p = &down.pairs.as_ref().unwrap()[0];
    assert_eq!(
        (
            p.standby.as_str(),
            p.lag_bytes,
            p.lag_seconds,
            p.streaming,
            p.ssl
        ),
        ("xstb2", None, None, Some(false), None)
    );
    assert_eq!(p.status, Status::Critical);
    // Answers but will not tell: its streaming is unknown too.
    let mut locked = gone.clone();
    (locked.down, locked.data) = (false, Err(crate::fail!(AuthenticationFailed, "password")));
    let r = check(&[locked]);
    let p = &r.pairs.as_ref().unwrap()[0];
    assert_eq!((p.streaming, p.status), (None, Status::Unknown));
    // No name given: host:port while down, and no pair.
    gone.given_name = None;
    let r = check(&[primary(vec![], vec![]), gone]);
    assert_eq!(r.nodes[1].name, "xstb2:5432");
    assert!(r.pairs.as_ref().unwrap().is_empty(), "{:?}", r.pairs);
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

/// A standby streaming under `name` through `slot` (None: no slot).
fn slotted_standby(name: &str, slot: Option<&str>) -> NodeFacts {
    let mut f = standby(name, Some("streaming"));
    let rc = data(&mut f).receiver.as_mut().unwrap();
    rc.receiver.slot_name = slot.map(Into::into);
    f
}

fn slotted_sender(name: &str, slot: &str, lag: i64) -> Sender {
    Sender {
        slot: Some(slot.into()),
        ..sender(name, lag)
    }
}

fn standby_labels(r: &Report) -> Vec<&str> {
    let pairs = r.pairs.as_ref().unwrap();
    pairs.iter().map(|p| p.standby.as_str()).collect()
}

#[test]
fn standbys_under_one_name_are_told_apart_by_slot() {
    // Two standbys of one host under its name (the default), over Unix
    // sockets: each walsender's slot says whose it is.
    let p = primary(
        vec![
            slotted_sender("db2", "a", 0),
            slotted_sender("db2", "b", 100),
        ],
        vec![],
    );
    let r = check(&[
        p.clone(),
        slotted_standby("db2", Some("b")),
        slotted_standby("db2", Some("a")),
    ]);
    assert_eq!(codes(&r), vec![], "{:?}", r.problems);
    let pairs = r.pairs.as_ref().unwrap();
    let lags: Vec<Option<i64>> = pairs.iter().map(|p| p.lag_bytes).collect();
    assert_eq!(lags, [Some(100), Some(0)], "{pairs:?}");
    assert_eq!(standby_labels(&r), ["db2", "db2#2"]);
    // The primary alone: labelled by slot, never by PID.
    let r = check(&[p]);
    assert_eq!(standby_labels(&r), ["db2 (slot a)", "db2 (slot b)"]);
    assert_eq!(r.warnings, Vec::<String>::new());
}

#[test]
fn standbys_that_share_a_name_and_nothing_else_are_said_to() {
    let p = primary(vec![sender("db2", 0), sender("db2", 0)], vec![]);
    let r = check(&[
        p.clone(),
        slotted_standby("db2", None),
        slotted_standby("db2", None),
    ]);
    assert_eq!(
        codes(&r),
        vec![
            (STANDBY_NAME_SHARED, Status::Warning),
            (STANDBY_NAME_SHARED, Status::Warning)
        ]
    );
    let hint = r.problems[0].hint.as_deref().unwrap();
    assert!(hint.contains("--application-name"), "{hint}");
    assert!(r.problems[0].message.contains("2 wal senders on primary"));
    // Each standby once, judged from its own side; no sender left over.
    assert_eq!(standby_labels(&r), ["db2", "db2#2"]);
    assert_eq!(r.nodes[1].upstream, None);
    // One of them given: the other's sender is reported on its own.
    let r = check(&[p.clone(), slotted_standby("db2", None)]);
    assert_eq!(codes(&r), vec![(STANDBY_NAME_SHARED, Status::Warning)]);
    assert_eq!(standby_labels(&r), ["db2", "db2#2", "db2#3"]);
    // The primary alone: stable labels, and a warning that says why.
    let r = check(&[p]);
    assert_eq!(r.status, Status::Ok);
    assert_eq!(standby_labels(&r), ["db2", "db2#2"]);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("cannot be told apart"));
    // Apart by address: labelled by it.
    let from = |a: &str| Sender {
        client_addr: Some(a.into()),
        ..sender("db2", 0)
    };
    let r = check(&[primary(vec![from("10.0.0.2"), from("10.0.0.3")], vec![])]);
    assert_eq!(standby_labels(&r), ["db2 (10.0.0.2)", "db2 (10.0.0.3)"]);
    assert!(r.warnings.is_empty());
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

    // Settings fine now: a user's pause, or on 14+ a pause on a value the
    // primary had then and has lowered since: say which is which.
    let mut s = standby("s1", Some("streaming"));
    data(&mut s).replay.as_mut().unwrap().paused = Some(true);
    let r = check(&[primary(vec![sender("s1", 0)], vec![]), s]);
    let h = r.problems[0].hint.as_deref().unwrap();
    assert!(h.contains("pg_wal_replay_resume()"), "{h}");
    let (_, h) = paused_advice(150000, Some(&[]));
    assert!(h.contains("insufficient parameter settings"), "{h}");
    assert!(h.contains("where its value was N"), "{h}");
    let (_, h) = paused_advice(130000, Some(&[]));
    assert!(!h.contains("insufficient"), "{h}");
    assert!(h.contains("pg_wal_replay_resume()"), "{h}");

    // The standby alone on 14+: say which case is which.
    let (_, h) = paused_advice(150000, None);
    assert!(h.contains("insufficient parameter settings") && h.contains("clone-standby"));
    let (_, h) = paused_advice(130000, None);
    assert!(!h.contains("clone-standby"), "{h}");
}

/// A primary on timeline 2, forked from 1 at `fork`, whose history file
/// was read when `visible`.
fn promoted_primary(fork: u64, visible: bool) -> NodeFacts {
    let mut p = primary(vec![], vec![]);
    let d = data(&mut p);
    d.timeline = Some(2);
    d.history = visible.then(|| (2, vec![(1, fork)]));
    p
}

/// A standby on timeline 1 (history known: it is the first) that
/// received and replayed up to `lsn`.
fn old_standby(name: &str, status: Option<&str>, lsn: u64) -> NodeFacts {
    let mut s = standby(name, status);
    let d = data(&mut s);
    d.timeline = Some(1);
    d.history = Some((1, vec![]));
    d.data_directory = Some(format!("/srv/{name}"));
    let rp = d.replay.as_mut().unwrap();
    rp.receive_lsn = Some(format_lsn(lsn));
    rp.replay_lsn = Some(format_lsn(lsn - 0x100));
    s
}

fn finding<'a>(r: &'a Report, code: &str) -> Option<&'a crate::health::Problem> {
    r.problems.iter().find(|p| p.code == code)
}

#[test]
fn a_standby_past_the_switch_point_must_rejoin() {
    let fork = ROOT - 0x1000;
    // Received past the fork (replay not yet): it cannot follow.
    let r = check(&[
        promoted_primary(fork, true),
        old_standby("s2", None, fork + 0x80),
    ]);
    let p = finding(&r, TIMELINE_DIVERGED).expect("TIMELINE_DIVERGED");
    assert_eq!(p.status, Status::Critical);
    assert!(
        p.message
            .starts_with("on timeline 1, the primary is on 2, and it cannot follow it"),
        "{}",
        p.message
    );
    let hint = p.hint.as_deref().unwrap();
    assert!(
        hint.contains("pgrepctl rejoin -D /srv/s2 --primary 'host=p port=5432'"),
        "{hint}"
    );
    assert_eq!(r.nodes[1].status, Status::Critical);
    // Streaming does not change it: whatever it streams from, it is not
    // the primary's timeline.
    let r = check(&[
        promoted_primary(fork, true),
        old_standby("s2", Some("streaming"), fork + 0x80),
    ]);
    assert_eq!(
        finding(&r, TIMELINE_DIVERGED).map(|p| p.status),
        Some(Status::Critical)
    );
}

#[test]
fn a_standby_before_the_switch_point_can_follow() {
    let fork = ROOT - 0x1000;
    let r = check(&[
        promoted_primary(fork, true),
        old_standby("s2", Some("stopping"), fork),
    ]);
    assert!(finding(&r, TIMELINE_DIVERGED).is_none(), "{:?}", r.problems);
    let p = finding(&r, TIMELINE_BEHIND).expect("TIMELINE_BEHIND");
    assert_eq!(p.status, Status::Warning);
    assert!(
        p.hint
            .as_deref()
            .unwrap()
            .contains("pgrepctl follow -D /srv/s2 --primary 'host=p port=5432'"),
        "{:?}",
        p.hint
    );
    // Not streaming stays CRITICAL on its own.
    assert_eq!(r.nodes[1].status, Status::Critical);
    // Streaming, it is catching up: nothing about the timeline.
    let r = check(&[
        promoted_primary(fork, true),
        old_standby("s2", Some("streaming"), fork),
    ]);
    let c = codes(&r);
    assert!(
        !c.iter()
            .any(|(c, _)| *c == TIMELINE_BEHIND || *c == TIMELINE_DIVERGED),
        "{c:?}"
    );
}

#[test]
fn without_the_histories_a_standby_that_does_not_stream_must_rejoin() {
    let fork = ROOT - 0x1000;
    let r = check(&[promoted_primary(fork, false), old_standby("s2", None, fork)]);
    let p = finding(&r, TIMELINE_DIVERGED).expect("TIMELINE_DIVERGED");
    assert_eq!(p.status, Status::Critical);
    assert_eq!(
        p.message,
        "on timeline 1, the primary is on 2, and it does not stream: run pgrepctl rejoin"
    );
    let r = check(&[
        promoted_primary(fork, false),
        old_standby("s2", Some("streaming"), fork),
    ]);
    assert!(finding(&r, TIMELINE_DIVERGED).is_none(), "{:?}", r.problems);
    assert_eq!(r.nodes[1].timeline, Some(1));
}

#[test]
fn split_brain_names_both_timelines_and_the_newest_leads() {
    let mut old = primary(vec![], vec![]);
    data(&mut old).timeline = Some(1);
    let mut new = promoted_primary(ROOT - 0x1000, true);
    new.role = Role::Standby;
    new.host_port = "s1:5433".into();
    let r = check(&[old, new, old_standby("s2", None, ROOT)]);
    let p = finding(&r, SPLIT_BRAIN).expect("SPLIT_BRAIN");
    assert!(
        p.message.contains("(timeline 1) and ")
            && p.message.contains("(timeline 2) are all primaries"),
        "{}",
        p.message
    );
    // s2 is measured against the promoted node, not the old primary.
    let d = finding(&r, TIMELINE_DIVERGED).expect("TIMELINE_DIVERGED");
    assert!(
        d.hint.as_deref().unwrap().contains("'host=s1 port=5433'"),
        "{:?}",
        d.hint
    );
}

/// A sender whose link is encrypted (`Some(version)`) or not, from `addr`.
fn tls_sender(name: &str, version: Option<&str>, addr: Option<&str>) -> Sender {
    Sender {
        ssl: Some(version.is_some()),
        ssl_version: version.map(str::to_string),
        ssl_cipher: version.map(|_| "TLS_AES_256_GCM_SHA384".to_string()),
        ssl_bits: version.map(|_| 256),
        client_addr: addr.map(str::to_string),
        ..sender(name, 0)
    }
}

fn tls_facts() -> Vec<NodeFacts> {
    vec![
        primary(
            vec![
                tls_sender("enc", Some("TLSv1.3"), Some("10.0.0.2")),
                tls_sender("plain", None, Some("10.0.0.3")),
                tls_sender("local", None, None),
                tls_sender("tunnel", None, Some("127.0.0.1")),
                tls_sender("tunnel6", None, Some("::1")),
            ],
            vec![],
        ),
        standby("enc", Some("streaming")),
        standby("plain", Some("streaming")),
    ]
}

#[test]
fn plaintext_links_warn_only_with_require_ssl() {
    let r = check(&tls_facts());
    assert_eq!(r.status, Status::Ok, "{:?}", r.problems);
    let pairs = r.pairs.as_ref().unwrap();
    let by = |n: &str| pairs.iter().find(|p| p.standby == n).unwrap();
    assert_eq!(
        (by("enc").ssl, by("enc").ssl_version.as_deref()),
        (Some(true), Some("TLSv1.3"))
    );
    assert_eq!(by("plain").ssl, Some(false));
    let o = Options {
        tls: TlsLimits {
            require_ssl: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let r = evaluate(&tls_facts(), &o);
    assert_eq!(r.status, Status::Warning);
    // Only the TCP link in plaintext from another host: not the encrypted
    // one, not the socket, not the loopback clients (a tunnel's far end).
    assert_eq!(codes(&r), vec![(REPLICATION_PLAINTEXT, Status::Warning)]);
    let p = &r.problems[0];
    assert_eq!(p.subject, "plain");
    assert!(p.message.contains("client 10.0.0.3"), "{}", p.message);
    let pairs = r.pairs.as_ref().unwrap();
    let by = |n: &str| pairs.iter().find(|p| p.standby == n).unwrap().status;
    assert_eq!((by("enc"), by("plain")), (Status::Ok, Status::Warning));
    assert_eq!((by("tunnel"), by("tunnel6")), (Status::Ok, Status::Ok));
}

fn with_cert(cert: CertFacts) -> Vec<NodeFacts> {
    let mut f = tls_facts();
    data(&mut f[0]).certificate = cert;
    f
}

fn known(days: i64) -> CertFacts {
    CertFacts::Known {
        source: CertSource::Handshake,
        subject: "CN=db1".into(),
        not_after: 1_893_456_000,
        seconds_left: days * 86_400 + 60,
    }
}

#[test]
fn certificate_expiry_thresholds() {
    for (days, status) in [
        (90, Status::Ok),
        (20, Status::Warning),
        (3, Status::Critical),
        (-2, Status::Critical),
    ] {
        let r = check(&with_cert(known(days)));
        let c = &r.certificates.as_ref().expect("a certificate")[0];
        assert_eq!((c.node.as_str(), c.status), ("primary", status), "{days}");
        assert_eq!(c.days_left, Some(days));
        assert_eq!(c.not_after.as_deref(), Some("2030-01-01T00:00:00Z"));
        assert_eq!(r.status, status, "{days}: {:?}", r.problems);
        assert_eq!(r.nodes[0].status, status);
        if status != Status::Ok {
            assert_eq!(codes(&r), vec![(CERT_EXPIRING, status)]);
            let m = &r.problems[0].message;
            assert!(
                m.contains(if days < 0 {
                    "expired 1 day ago"
                } else {
                    "expires in"
                }),
                "{m}"
            );
        }
    }
    // Thresholds from the flags.
    let o = Options {
        tls: TlsLimits {
            cert_warn_days: 10,
            cert_crit_days: 2,
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(evaluate(&with_cert(known(20)), &o).status, Status::Ok);
    assert_eq!(evaluate(&with_cert(known(3)), &o).status, Status::Warning);
}

#[test]
fn an_unknown_certificate_is_no_failure() {
    let r = check(&with_cert(CertFacts::Unknown("the role may not".into())));
    assert_eq!(r.status, Status::Ok, "{:?}", r.problems);
    let c = &r.certificates.as_ref().unwrap()[0];
    assert_eq!(
        (c.unknown.as_deref(), c.days_left, c.status),
        (Some("the role may not"), None, Status::Ok)
    );
    // ssl off: no certificate at all.
    assert!(check(&tls_facts()).certificates.is_none());
}

#[test]
fn a_read_only_primary_is_critical_with_the_fix_for_its_cause() {
    let healthy = [
        primary(vec![sender("s1", 0)], vec![]),
        standby("s1", Some("streaming")),
    ];
    let r = check(&healthy);
    assert_eq!(r.status, Status::Ok, "{:?}", r.problems);
    assert_eq!(r.nodes[0].read_only, None);

    let mut facts = healthy.clone();
    data(&mut facts[0]).read_only = Some(true);
    let r = check(&facts);
    assert_eq!(codes(&r), [(PRIMARY_READ_ONLY, Status::Critical)]);
    assert_eq!(r.nodes[0].status, Status::Critical);
    assert_eq!(r.nodes[0].read_only, Some(true));
    let hint = r.problems[0].hint.as_deref().unwrap();
    assert!(
        hint.contains("ALTER SYSTEM RESET default_transaction_read_only"),
        "{hint}"
    );

    data(&mut facts[0]).draining = true;
    let r = check(&facts);
    let p = &r.problems[0];
    assert!(
        p.message.contains("interrupted pgrepctl switchover"),
        "{}",
        p.message
    );
    let hint = p.hint.as_deref().unwrap();
    assert!(
        hint.contains("run the same pgrepctl switchover again"),
        "{hint}"
    );

    // Off, or hidden by a role or database setting: no finding.
    data(&mut facts[0]).read_only = Some(false);
    assert_eq!(check(&facts).status, Status::Ok);
    assert_eq!(check(&facts).nodes[0].read_only, Some(false));
}

#[test]
fn one_server_given_twice_is_a_usage_error() {
    let id = |port| {
        Some(super::super::inspect::Identity {
            system_identifier: "7300000000000000001".into(),
            started: "2025-01-01 10:00:00.123456+00".into(),
            port,
        })
    };
    let mut p = primary(vec![], vec![]);
    data(&mut p).identity = id(5492);
    let mut twice = p.clone();
    twice.role = Role::Standby;
    twice.target = "host=/var/run/postgresql port=5492".into();
    let e = same_server(&[p.clone(), twice.clone()]).unwrap();
    assert_eq!(e.code, crate::error::Code::ConflictingFlags);
    assert!(e.message.contains("same server"), "{}", e.message);
    assert!(
        e.message.contains("--primary 'host=p port=5432'"),
        "{}",
        e.message
    );
    assert!(
        e.message
            .contains("--standby 'host=/var/run/postgresql port=5492'"),
        "{}",
        e.message
    );
    // Another postmaster (a copy of the data directory) is another node.
    data(&mut twice).identity = id(5493);
    assert!(same_server(&[p.clone(), twice.clone()]).is_none());
    // Unknown identities never match.
    data(&mut twice).identity = None;
    data(&mut p).identity = None;
    assert!(same_server(&[p, twice]).is_none());
}

#[test]
fn a_refused_loopback_upstream_may_be_a_server_or_a_tunnel() {
    let mut s = standby("s1", None);
    data(&mut s).upstream_refused = Some("127.0.0.1:5492".into());
    let r = check(&[s]);
    let p = finding(&r, STANDBY_NOT_STREAMING).unwrap();
    assert!(
        p.message.contains("upstream 127.0.0.1:5492 (a server on this host, or a tunnel's local end) refuses connections: is it running?"),
        "{}",
        p.message
    );
    let hint = p.hint.as_deref().unwrap();
    assert!(hint.contains("the server on this host"), "{hint}");
    assert!(hint.contains("pgrepctl tunnel run"), "{hint}");
}
