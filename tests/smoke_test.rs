//! `smoke-test` against real primaries and standbys: the round trip on
//! two standbys (and `changed` for Ansible), the timeout when replay is
//! paused (the probe row is still removed), and bad nodes and input.

use crate::harness::{Cluster, free_port, pgrepctl, problem_codes};

fn probe_rows(p: &Cluster) -> String {
    p.sql("SELECT count(*) FROM pgrepctl.smoke_test")
}

#[test]
fn round_trip_on_two_standbys() {
    let p = Cluster::new();
    let s1 = Cluster::standby_of(&p, "s1");
    let s2 = Cluster::standby_of(&p, "s2");
    let (pc, c1, c2) = (p.conninfo(), s1.conninfo(), s2.conninfo());
    let args = |extra: &[&str]| {
        let mut a = vec![
            "smoke-test",
            "--primary",
            &pc,
            "--standby",
            &c1,
            "--standby",
            &c2,
        ];
        a.extend_from_slice(extra);
        a.iter().map(|x| x.to_string()).collect::<Vec<_>>()
    };

    for (run, changed) in [(1, true), (2, false)] {
        let r = pgrepctl(args(&["--json"]));
        assert_eq!(r.code(), 0, "run {run}: {}\n{}", r.stdout(), r.stderr());
        let j = r.json();
        assert_eq!(
            (j["status"].as_str(), j["ok"].as_bool()),
            (Some("OK"), Some(true)),
            "{j}"
        );
        assert_eq!(j["changed"], changed, "run {run}: {j}");
        let probes = j["probes"].as_array().unwrap();
        assert_eq!(probes.len(), 2);
        for (pr, name) in probes.iter().zip(["s1", "s2"]) {
            assert_eq!(pr["standby"], name);
            assert_eq!(pr["replayed"], true);
            assert_eq!(pr["token_visible"], true);
            assert_eq!(
                pr["write_refused"], true,
                "the standby refused the write: {pr}"
            );
            assert!(pr["latency_ms"].as_f64().unwrap() >= 0.0);
            assert_eq!(pr["status"], "OK");
        }
        assert!(j.get("pairs").is_none(), "{j}");
        // Nothing left behind but the empty table.
        assert_eq!(probe_rows(&p), "0");
    }

    let r = pgrepctl(args(&["--format", "nagios"]));
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(
        r.stdout()
            .starts_with("PGREPCTL OK - 2 standby(s) replayed the probe"),
        "{}",
        r.stdout()
    );
    assert!(r.stdout().contains("latency_s1="), "{}", r.stdout());
    let r = pgrepctl(args(&["--format", "prometheus"]));
    assert!(
        r.stdout()
            .contains("pgrepctl_smoke_test_success{standby=\"s2\"} 1"),
        "{}",
        r.stdout()
    );
    assert!(
        r.stdout()
            .contains("pgrepctl_smoke_test_latency_seconds{standby=\"s1\"} ")
    );
    let r = pgrepctl(args(&[]));
    assert!(r.stdout().starts_with("smoke-test: OK\n"), "{}", r.stdout());
    assert!(r.stdout().contains("refused"), "{}", r.stdout());

    // --cleanup drops the table and the schema: a change.
    let r = pgrepctl(args(&["--json", "--cleanup"]));
    assert_eq!(r.code(), 0, "{}", r.stdout());
    assert_eq!(r.json()["changed"], true);
    assert_eq!(
        p.sql("SELECT to_regclass('pgrepctl.smoke_test') IS NULL AND to_regnamespace('pgrepctl') IS NULL"),
        "t"
    );
}

#[test]
fn paused_replay_times_out_and_the_row_is_removed() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    s.sql("SELECT pg_wal_replay_pause()");
    let r = pgrepctl([
        "smoke-test",
        "--json",
        "--timeout",
        "2s",
        "--primary",
        &p.conninfo(),
        "--standby",
        &s.conninfo(),
    ]);
    assert_eq!(r.code(), 2, "{}\n{}", r.stdout(), r.stderr());
    let j = r.json();
    assert_eq!(j["status"], "CRITICAL");
    assert_eq!(problem_codes(&j), ["PROBE_TIMEOUT"]);
    assert!(
        j["problems"][0]["hint"]
            .as_str()
            .unwrap()
            .contains("pg_wal_replay_resume"),
        "{j}"
    );
    let pr = &j["probes"][0];
    assert_eq!(
        (pr["replayed"].as_bool(), pr["latency_ms"].is_null()),
        (Some(false), true)
    );
    assert_eq!(probe_rows(&p), "0", "the probe row was removed");
}

#[test]
fn bad_nodes_and_input() {
    let p = Cluster::new();
    let pc = p.conninfo();
    // A "standby" that is a primary: critical, and never written to.
    let r = pgrepctl(["smoke-test", "--json", "--primary", &pc, "--standby", &pc]);
    assert_eq!(r.code(), 2, "{}", r.stdout());
    let j = r.json();
    assert_eq!(problem_codes(&j), ["NOT_A_STANDBY"]);
    assert_eq!(j["probes"][0]["status"], "CRITICAL");
    assert_eq!(probe_rows(&p), "0");

    // An unreachable standby: critical (a node given that is down).
    let dead = format!("host=127.0.0.1 port={} user=postgres", free_port());
    let r = pgrepctl([
        "smoke-test",
        "--json",
        "--timeout",
        "3s",
        "--primary",
        &pc,
        "--standby",
        &dead,
    ]);
    assert_eq!(r.code(), 2, "{}", r.stdout());
    let j = r.json();
    assert_eq!(problem_codes(&j), ["CONNECTION_FAILED"]);
    assert_eq!(j["nodes"][1]["status"], "CRITICAL", "{j}");
    assert_eq!(j["probes"][0]["status"], "CRITICAL", "{j}");

    // An unreachable primary: critical, nothing is probed.
    let r = pgrepctl([
        "smoke-test",
        "--json",
        "--timeout",
        "3s",
        "--primary",
        &dead,
        "--standby",
        &pc,
    ]);
    assert_eq!(r.code(), 2, "{}", r.stdout());
    let j = r.json();
    assert_eq!(j["status"], "CRITICAL", "{j}");
    assert_eq!(j["nodes"][0]["status"], "CRITICAL", "{j}");
    assert!(problem_codes(&j).contains(&"CONNECTION_FAILED".to_string()));
    assert_eq!(j["probes"][0]["replayed"], false);

    // Usage errors and bad conninfo: UNKNOWN (3).
    pgrepctl(["smoke-test", "--json", "--standby", &pc]).fails(3, "USAGE");
    pgrepctl(["smoke-test", "--json", "--primary", &pc]).fails(3, "USAGE");
    let r = pgrepctl([
        "smoke-test",
        "--json",
        "--primary",
        &pc,
        "--standby",
        "host=x nope=1",
    ]);
    let f = r.fails(3, "UNKNOWN_CONNINFO_KEYWORD");
    assert_eq!(f["command"], "smoke-test");
}

#[test]
fn replay_paused_by_a_raised_setting_is_not_to_be_resumed() {
    let mut p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    if s.major < 14 {
        return; // before 14 the standby stops instead of pausing
    }
    p.sql("ALTER SYSTEM SET max_connections = 300");
    p.stop();
    p.start();
    for _ in 0..200 {
        if s.try_sql("SELECT pg_is_wal_replay_paused()")
            .is_ok_and(|v| v == "t")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let r = pgrepctl([
        "smoke-test",
        "--json",
        "--timeout",
        "2s",
        "--primary",
        &p.conninfo(),
        "--standby",
        &s.conninfo(),
    ]);
    assert_eq!(r.code(), 2, "{}\n{}", r.stdout(), r.stderr());
    let j = r.json();
    assert_eq!(problem_codes(&j), ["PROBE_TIMEOUT"], "{j}");
    let hint = j["problems"][0]["hint"].as_str().unwrap();
    assert!(hint.contains("pgrepctl clone-standby"), "{hint}");
    assert!(hint.contains("max_connections"), "{hint}");
    assert!(!hint.contains("resume"), "{hint}");
    assert_eq!(probe_rows(&p), "0", "the probe row was removed");

    // The primary back to its old value: the standby stays paused on the
    // higher one it replayed, and resuming would still shut it down, which
    // check's hint must say although the settings now look equal.
    p.sql("ALTER SYSTEM RESET max_connections");
    p.stop();
    p.start();
    let r = pgrepctl([
        "check",
        "--json",
        "--primary",
        &p.conninfo(),
        "--standby",
        &s.conninfo(),
    ]);
    let j = r.json();
    let paused = j["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == "REPLAY_PAUSED")
        .unwrap_or_else(|| panic!("{j}"));
    let hint = paused["hint"].as_str().unwrap();
    assert!(hint.contains("insufficient parameter settings"), "{hint}");
    assert!(hint.contains("where its value was"), "{hint}");
    assert_eq!(s.sql("SELECT pg_is_wal_replay_paused()"), "t");
}
