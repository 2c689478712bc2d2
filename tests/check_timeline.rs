//! `check` and timelines on real servers: every node's timeline in each
//! format; a standby promoted while its primary still runs is a split
//! brain, with both timelines; a standby left on the old timeline that
//! went past the switch point and does not stream must rejoin.

use crate::harness::{Cluster, pgrepctl, problem_codes};
use std::time::{Duration, Instant};

/// Wait (up to 30 s) until `q` on `c` returns `want`.
fn wait_for(c: &Cluster, q: &str, want: &str) {
    let t = Instant::now();
    while c.try_sql(q).as_deref() != Ok(want) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{q} never returned {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until standby `s` has replayed everything `p` wrote so far.
fn caught_up(p: &Cluster, s: &Cluster) {
    let lsn = p.sql("SELECT pg_current_wal_lsn()");
    wait_for(
        s,
        &format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'"),
        "t",
    );
}

fn promote_forced(s: &Cluster) {
    let r = pgrepctl([
        "promote",
        "--json",
        "--force",
        "-D",
        s.data.to_str().unwrap(),
    ]);
    assert_eq!(r.json()["timeline"], 2, "{}", r.stdout());
}

/// A monitoring role as most sites have one: pg_monitor, not superuser
/// (so it may not read history files). Made on the primary before the
/// standbys are copied from it.
fn monitor_role(p: &Cluster) {
    p.sql("CREATE ROLE monitor LOGIN; GRANT pg_monitor TO monitor");
}

fn as_monitor(c: &Cluster) -> String {
    c.conninfo().replace("user=postgres", "user=monitor")
}

fn check(primary: &str, standby: &str, format: &str) -> crate::harness::Run {
    pgrepctl([
        "check",
        "--format",
        format,
        "--primary",
        primary,
        "--standby",
        standby,
    ])
}

#[test]
fn healthy_nodes_show_their_timeline() {
    let p = Cluster::new();
    monitor_role(&p);
    let s = Cluster::standby_of(&p, "s1");
    caught_up(&p, &s);
    for (pc, sc) in [
        (p.conninfo(), s.conninfo()),
        (as_monitor(&p), as_monitor(&s)),
    ] {
        let r = check(&pc, &sc, "json");
        assert_eq!(r.code(), 0, "{}", r.stdout());
        let j = r.json();
        assert_eq!(j["nodes"][0]["timeline"], 1, "{j}");
        assert_eq!(j["nodes"][1]["timeline"], 1, "{j}");
    }
    let r = check(&p.conninfo(), &s.conninfo(), "prometheus");
    for want in [
        "pgrepctl_timeline{node=\"primary\",role=\"primary\"} 1\n",
        "pgrepctl_timeline{node=\"s1\",role=\"standby\"} 1\n",
    ] {
        assert!(
            r.stdout().contains(want),
            "{want} missing in\n{}",
            r.stdout()
        );
    }
    let r = check(&p.conninfo(), &s.conninfo(), "text");
    assert!(r.stdout().contains("ROLE    TLI STATUS"), "{}", r.stdout());
    assert!(r.stdout().contains("standby   1 OK"), "{}", r.stdout());
}

#[test]
fn a_standby_promoted_while_its_primary_runs_is_a_split_brain() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    caught_up(&p, &s);
    promote_forced(&s);
    let (pc, sc) = (p.conninfo(), s.conninfo());

    let r = check(&pc, &sc, "json");
    assert_eq!(r.code(), 2, "{}", r.stdout());
    let j = r.json();
    assert_eq!(j["status"], "CRITICAL", "{j}");
    assert!(
        problem_codes(&j).contains(&"SPLIT_BRAIN".to_string()),
        "{j}"
    );
    assert_eq!(j["nodes"][0]["timeline"], 1, "{j}");
    assert_eq!(j["nodes"][1]["timeline"], 2, "{j}");
    let split = j["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == "SPLIT_BRAIN")
        .unwrap();
    let msg = split["message"].as_str().unwrap();
    // The promoted node has no receiver left to name it: host:port.
    let s1 = format!("{}:{}", s.sock.display(), s.port);
    assert!(
        msg.starts_with(&format!(
            "split brain: primary (timeline 1) and {s1} (timeline 2) are all primaries"
        )),
        "{msg}"
    );

    let r = check(&pc, &sc, "nagios");
    assert_eq!(r.code(), 2, "{}", r.stdout());
    assert!(
        r.stdout().starts_with("PGREPCTL CRITICAL"),
        "{}",
        r.stdout()
    );
    assert!(r.stdout().contains("split brain"), "{}", r.stdout());

    let r = check(&pc, &sc, "text");
    assert_eq!(r.code(), 2, "{}", r.stdout());
    assert!(r.stdout().starts_with("check: CRITICAL"), "{}", r.stdout());
    assert!(
        r.stdout().contains("split brain: primary"),
        "{}",
        r.stdout()
    );
    assert!(r.stdout().contains("pgrepctl rejoin"), "{}", r.stdout());
}

#[test]
fn a_standby_left_past_the_switch_point_must_rejoin() {
    let p = Cluster::new();
    monitor_role(&p);
    let s1 = Cluster::standby_of(&p, "s1");
    let s2 = Cluster::standby_of(&p, "s2");
    caught_up(&p, &s1);
    caught_up(&p, &s2);
    promote_forced(&s1);
    // The old primary goes on writing, s2 gets it: s2 is past the point
    // where s1 left timeline 1. Then the old primary stops, and s2 has
    // nothing to stream from.
    p.sql("CREATE TABLE after_fork (i int); INSERT INTO after_fork VALUES (1)");
    caught_up(&p, &s2);
    p.stop();
    wait_for(
        &s2,
        "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'",
        "0",
    );

    // The superuser sees both histories: decided as follow and rejoin do.
    let r = check(&s1.conninfo(), &s2.conninfo(), "json");
    assert_eq!(r.code(), 2, "{}", r.stdout());
    let j = r.json();
    assert_eq!(j["nodes"][0]["timeline"], 2, "{j}");
    assert_eq!(j["nodes"][1]["timeline"], 1, "{j}");
    let diverged = |j: &serde_json::Value| {
        j["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["code"] == "TIMELINE_DIVERGED")
            .unwrap_or_else(|| panic!("no TIMELINE_DIVERGED in {j}"))
            .clone()
    };
    let d = diverged(&j);
    assert_eq!(d["status"], "CRITICAL", "{d}");
    let msg = d["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "on timeline 1, the primary is on 2, and it cannot follow it: it went past"
        ),
        "{msg}"
    );
    let hint = d["hint"].as_str().unwrap();
    let primary = format!("--primary 'host={} port=", s1.sock.display());
    assert!(hint.contains("pgrepctl rejoin -D "), "{hint}");
    assert!(hint.contains(&primary), "{hint}");

    // A monitoring role sees no history: a standby behind that does not
    // stream is sent to rejoin all the same.
    let r = check(&as_monitor(&s1), &as_monitor(&s2), "json");
    assert_eq!(r.code(), 2, "{}", r.stdout());
    let d = diverged(&r.json());
    assert_eq!(
        d["message"],
        "on timeline 1, the primary is on 2, and it does not stream: run pgrepctl rejoin"
    );
    assert!(
        d["hint"].as_str().unwrap().contains("pgrepctl rejoin -D "),
        "{d}"
    );

    let r = check(&s1.conninfo(), &s2.conninfo(), "nagios");
    assert_eq!(r.code(), 2, "{}", r.stdout());
}
