//! `check` against real primaries and standbys: a healthy pair in every
//! format, and each fault a monitoring system must see (unreachable node,
//! wrong password, bad conninfo, a primary given as standby, a standby
//! whose primary is gone, lag over the threshold, an inactive slot).

use crate::harness::{Cluster, free_port, pgrepctl, problem_codes, run::pgrepctl_env};

/// Wait (up to 20 s) until `q` on `c` returns `want`.
fn wait_for(c: &Cluster, q: &str, want: &str) {
    for _ in 0..200 {
        if c.try_sql(q).is_ok_and(|s| s == want) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{q} never returned {want}");
}

#[test]
fn healthy_pair_in_every_format() {
    let p = Cluster::new();
    let s1 = Cluster::standby_of(&p, "s1");
    let s2 = Cluster::standby_of(&p, "s2");
    let (pc, c1, c2) = (p.conninfo(), s1.conninfo(), s2.conninfo());

    let r = pgrepctl([
        "check",
        "--json",
        "--primary",
        &pc,
        "--standby",
        &c1,
        "--standby",
        &c2,
    ]);
    assert_eq!(r.code(), 0, "{}\n{}", r.stdout(), r.stderr());
    let j = r.json();
    assert_eq!(
        (j["status"].as_str(), j["ok"].as_bool()),
        (Some("OK"), Some(true)),
        "{j}"
    );
    assert_eq!(j["changed"], false);
    let names: Vec<&str> = j["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["primary", "s1", "s2"]);
    let pairs = j["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 2, "{j}");
    for (pair, name) in pairs.iter().zip(["s1", "s2"]) {
        assert_eq!(pair["standby"], name);
        assert_eq!(pair["state"], "streaming");
        assert_eq!(pair["streaming"], true);
        assert_eq!(pair["sync_state"], "async");
        assert!(pair["lag_bytes"].as_i64().unwrap() >= 0);
        assert_eq!(pair["status"], "OK");
    }
    assert_eq!(j["nodes"][1]["wal_receiver"]["status"], "streaming");
    assert_eq!(j["nodes"][1]["in_recovery"], true);
    assert_eq!(r.stdout().trim().lines().count(), 1);

    let r = pgrepctl([
        "check",
        "--format",
        "nagios",
        "--primary",
        &pc,
        "--standby",
        &c1,
    ]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let line = r.stdout();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.starts_with("PGREPCTL OK - "), "{line}");
    assert!(line.contains(" | lag_bytes_s1="), "{line}");
    assert!(line.contains("B;16777216;268435456;0"), "{line}");

    let r = pgrepctl([
        "check",
        "--format",
        "prometheus",
        "--primary",
        &pc,
        "--standby",
        &c1,
    ]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let text = r.stdout();
    for want in [
        "# TYPE pgrepctl_up gauge",
        "pgrepctl_up{node=\"primary\",role=\"primary\"} 1",
        "pgrepctl_up{node=\"s1\",role=\"standby\"} 1",
        "pgrepctl_wal_receiver_streaming{standby=\"s1\"} 1",
        "pgrepctl_check_status{command=\"check\"} 0",
    ] {
        assert!(text.contains(want), "{want} missing in\n{text}");
    }
    assert!(
        text.contains("pgrepctl_replication_lag_bytes{standby=\"s1\"} "),
        "{text}"
    );

    let r = pgrepctl(["check", "--primary", &pc, "--standby", &c1]);
    assert_eq!(r.code(), 0);
    assert!(r.stdout().starts_with("check: OK\n"), "{}", r.stdout());
    for l in r.stdout().lines() {
        assert!(l.chars().count() <= 80, "{l:?}");
    }

    // Either side alone.
    let r = pgrepctl(["check", "--json", "--primary", &pc]);
    assert_eq!(r.code(), 0, "{}", r.stdout());
    assert_eq!(r.json()["pairs"].as_array().unwrap().len(), 2);
    let r = pgrepctl(["check", "--json", "--standby", &c2]);
    assert_eq!(r.code(), 0, "{}", r.stdout());
    assert_eq!(r.json()["pairs"][0]["standby"], "s2");
}

#[test]
fn an_unreachable_node_is_critical() {
    let port = free_port().to_string();
    let dead = format!("host=127.0.0.1 port={port} user=postgres connect_timeout=2");
    for side in ["--primary", "--standby"] {
        let r = pgrepctl(["check", "--json", "--timeout", "3s", side, &dead]);
        assert_eq!(r.code(), 2, "{}", r.stdout());
        let j = r.json();
        assert_eq!(j["status"], "CRITICAL");
        assert_eq!(problem_codes(&j), ["CONNECTION_FAILED"]);
        assert_eq!(j["nodes"][0]["status"], "CRITICAL");
        assert_eq!(j["nodes"][0]["error"]["code"], "CONNECTION_FAILED");
    }
    let r = pgrepctl(["check", "--format", "nagios", "--primary", &dead]);
    assert_eq!(r.code(), 2);
    assert!(
        r.stdout().starts_with("PGREPCTL CRITICAL - primary: "),
        "{}",
        r.stdout()
    );
    let r = pgrepctl(["check", "--format", "prometheus", "--standby", &dead]);
    assert!(
        r.stdout().contains("pgrepctl_up{node=\"127.0.0.1:"),
        "{}",
        r.stdout()
    );
    assert!(
        r.stdout()
            .contains("pgrepctl_check_status{command=\"check\"} 2")
    );
}

#[test]
fn a_node_that_never_answers_is_critical_not_a_hang() {
    // Accepts TCP connections (the kernel's backlog) but never speaks.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let ci = format!("host=127.0.0.1 port={port} user=postgres");
    let r = pgrepctl(["check", "--json", "--timeout", "1s", "--standby", &ci]);
    assert_eq!(r.code(), 2, "{}", r.stdout());
    let j = r.json();
    assert_eq!(j["nodes"][0]["error"]["code"], "TIMEOUT", "{j}");
    assert_eq!(j["nodes"][0]["status"], "CRITICAL", "{j}");
    drop(silent);
}

#[test]
fn a_stopped_standby_is_critical() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    s.stop();
    // Alone: the standby itself is the only finding, and it is CRITICAL.
    let r = pgrepctl(["check", "--format", "nagios", "--standby", &s.conninfo()]);
    assert_eq!(r.code(), 2, "{}", r.stdout());
    assert!(
        r.stdout().starts_with("PGREPCTL CRITICAL - "),
        "{}",
        r.stdout()
    );
    let r = pgrepctl([
        "check",
        "--json",
        "--primary",
        &p.conninfo(),
        "--standby",
        &s.conninfo(),
    ]);
    assert_eq!(r.code(), 2, "{}", r.stdout());
    let j = r.json();
    assert_eq!(j["nodes"][1]["status"], "CRITICAL", "{j}");
    let down = j["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == "CONNECTION_FAILED")
        .unwrap_or_else(|| panic!("{j}"));
    assert_eq!(down["status"], "CRITICAL", "{j}");
}

#[test]
fn expect_standbys_counts_the_streaming_ones() {
    let p = Cluster::new();
    let _s = Cluster::standby_of(&p, "s1");
    let pc = p.conninfo();
    let r = pgrepctl([
        "check",
        "--json",
        "--primary",
        &pc,
        "--expect-standbys",
        "2",
    ]);
    assert_eq!(r.code(), 2, "{}", r.stdout());
    let j = r.json();
    assert_eq!(problem_codes(&j), ["TOO_FEW_STANDBYS"], "{j}");
    assert_eq!(j["nodes"][0]["status"], "CRITICAL");
    let r = pgrepctl([
        "check",
        "--json",
        "--primary",
        &pc,
        "--expect-standbys",
        "1",
    ]);
    assert_eq!(r.code(), 0, "{}", r.stdout());
    // It needs the primary.
    let r = pgrepctl([
        "check",
        "--json",
        "--standby",
        &pc,
        "--expect-standbys",
        "1",
    ]);
    r.fails(3, "USAGE");
}

#[test]
fn a_cascade_is_shown_as_a_chain_with_lag_against_the_primary() {
    let p = Cluster::new();
    let s1 = Cluster::standby_of(&p, "s1");
    let s2 = Cluster::cascade_of(&p, &s1, "s2");
    let (pc, c1, c2) = (p.conninfo(), s1.conninfo(), s2.conninfo());
    let args = |format: &str| {
        [
            "check",
            "--format",
            format,
            "--primary",
            &pc,
            "--standby",
            &c1,
            "--standby",
            &c2,
        ]
        .map(String::from)
        .to_vec()
    };
    let r = pgrepctl(args("json"));
    assert_eq!(r.code(), 0, "{}", r.stdout());
    let j = r.json();
    assert_eq!(j["status"], "OK", "{j}");
    assert_eq!(j["nodes"][1]["upstream"], "primary", "{j}");
    assert_eq!(j["nodes"][2]["upstream"], "s1", "{j}");
    let pairs = j["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 2, "{j}");
    assert_eq!(
        (pairs[1]["standby"].as_str(), pairs[1]["upstream"].as_str()),
        (Some("s2"), Some("s1"))
    );
    assert_eq!(pairs[1]["state"], "streaming");
    let r = pgrepctl(args("text"));
    assert!(r.stdout().contains("streaming from s1"), "{}", r.stdout());

    // s1 stops receiving while the primary writes on: s2 is caught up with
    // s1 but behind the primary, and its lag says so. (primary_conninfo
    // is reloadable from 13 on.)
    if s1.major < 13 {
        return;
    }
    s1.sql("ALTER SYSTEM SET primary_conninfo = ''");
    s1.sql("SELECT pg_reload_conf()");
    wait_for(&s1, "SELECT count(*) FROM pg_stat_wal_receiver", "0");
    let before = p.sql("SELECT pg_current_wal_lsn()");
    p.sql(
        "CREATE TABLE filler AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 2000) g",
    );
    let written: i64 = p
        .sql(&format!(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{before}')::bigint"
        ))
        .parse()
        .unwrap();
    let r = pgrepctl(args("json"));
    let j = r.json();
    assert_eq!(
        j["nodes"][1]["status"], "CRITICAL",
        "s1 no longer streams: {j}"
    );
    let lag = j["pairs"][1]["lag_bytes"].as_i64().unwrap();
    assert!(
        lag >= written,
        "s2's lag {lag} is against the primary ({written} written): {j}"
    );
}

#[test]
fn wrong_password_is_unknown() {
    let c = Cluster::new();
    c.sql("CREATE ROLE monitor LOGIN PASSWORD 'right'");
    c.write_as_pg(
        &c.hba_path(),
        "local all all trust\nhost all all 127.0.0.1/32 md5\nhost all all ::1/128 md5\n",
    );
    c.sql("SELECT pg_reload_conf()");
    let ci = format!(
        "host=127.0.0.1 port={} user=monitor dbname=postgres",
        c.port
    );
    let r = pgrepctl_env(
        ["check", "--json", "--primary", &ci],
        &[("PGPASSWORD", "wrong")],
    );
    assert_eq!(r.code(), 3, "{}", r.stdout());
    let j = r.json();
    assert_eq!(problem_codes(&j), ["AUTHENTICATION_FAILED"], "{j}");
    assert!(!r.stdout().contains("wrong"), "the password is never shown");
}

#[test]
fn usage_and_conninfo_errors_are_unknown() {
    let r = pgrepctl(["check", "--json", "--primary", "host=db1 bogus=1"]);
    let j = r.fails(3, "UNKNOWN_CONNINFO_KEYWORD");
    assert_eq!(j["command"], "check");
    assert!(r.stderr().contains("bogus"), "{}", r.stderr());
    let r = pgrepctl([
        "check",
        "--format",
        "nagios",
        "--primary",
        "host=db1 bogus=1",
    ]);
    assert_eq!(r.code(), 3);
    assert!(
        r.stdout()
            .starts_with("PGREPCTL UNKNOWN - invalid connection string"),
        "{}",
        r.stdout()
    );

    let r = pgrepctl(["check", "--json"]);
    r.fails(3, "USAGE");
    let r = pgrepctl(["check", "--json", "--standby", "h", "--warn-lag", "fast"]);
    r.fails(3, "USAGE");
    let r = pgrepctl(["check", "--json", "--format", "nagios", "--standby", "h"]);
    r.fails(3, "CONFLICTING_FLAGS");
    let r = pgrepctl([
        "check",
        "--json",
        "--standby",
        "h",
        "--warn-lag",
        "2GB",
        "--crit-lag",
        "1GB",
    ]);
    r.fails(3, "INVALID_VALUE");
    let r = pgrepctl(["check", "--standby", "h", "--bogus"]);
    assert_eq!(r.code(), 3);
    // Every monitoring command: sandbox status too (README: 3 on usage).
    for args in [
        &["sandbox", "status", "--format", "bogus"][..],
        &["smoke-test", "--bogus"][..],
    ] {
        let r = pgrepctl(args);
        assert_eq!(r.code(), 3, "{args:?}: {}", r.stderr());
        assert!(r.stderr().contains("HINT: see pgrepctl"), "{}", r.stderr());
    }
    // ...and the others keep exit 2.
    assert_eq!(pgrepctl(["sandbox", "up", "--bogus"]).code(), 2);
}

#[test]
fn a_primary_given_as_standby_is_critical() {
    let c = Cluster::new();
    let r = pgrepctl(["check", "--json", "--standby", &c.conninfo()]);
    assert_eq!(r.code(), 2, "{}", r.stdout());
    let j = r.json();
    assert_eq!(j["status"], "CRITICAL");
    assert_eq!(problem_codes(&j), ["NOT_A_STANDBY"]);
    // And a lone primary without standbys is critical for a replication check.
    let r = pgrepctl(["check", "--json", "--primary", &c.conninfo()]);
    assert_eq!(r.code(), 2);
    assert_eq!(problem_codes(&r.json()), ["NO_STANDBY_CONNECTED"]);
}

#[test]
fn a_standby_whose_primary_is_gone_is_critical() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    p.stop();
    wait_for(
        &s,
        "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'",
        "0",
    );
    let r = pgrepctl([
        "check",
        "--json",
        "--timeout",
        "5s",
        "--primary",
        &p.conninfo(),
        "--standby",
        &s.conninfo(),
    ]);
    assert_eq!(r.code(), 2, "{}", r.stdout());
    let j = r.json();
    assert_eq!(j["status"], "CRITICAL");
    assert_eq!(j["nodes"][0]["status"], "CRITICAL");
    assert_eq!(j["nodes"][1]["status"], "CRITICAL");
    assert_eq!(j["pairs"][0]["streaming"], false);
    assert_eq!(j["pairs"][0]["status"], "CRITICAL");
    // Not streaming: its lag is unknown, not 0.
    assert!(j["pairs"][0]["lag_bytes"].is_null(), "{j}");
    assert!(j["pairs"][0]["lag_seconds"].is_null(), "{j}");
    let c = problem_codes(&j);
    assert!(c.contains(&"STANDBY_NOT_STREAMING".to_string()), "{c:?}");
    let r = pgrepctl(["check", "--format", "nagios", "--standby", &s.conninfo()]);
    assert_eq!(r.code(), 2);
    assert!(
        r.stdout().starts_with("PGREPCTL CRITICAL - "),
        "{}",
        r.stdout()
    );
    // (Named host:port before 12, which has no primary_conninfo setting.)
    assert!(
        r.stdout().contains("=U;16777216;268435456;0"),
        "{}",
        r.stdout()
    );
    assert!(r.stdout().contains("=U;30;300;0"), "{}", r.stdout());
    if s.major >= 12 {
        // Named from primary_conninfo even with no receiver running.
        assert!(
            r.stdout().starts_with("PGREPCTL CRITICAL - s1: "),
            "{}",
            r.stdout()
        );
    }
    let r = pgrepctl([
        "check",
        "--format",
        "prometheus",
        "--standby",
        &s.conninfo(),
    ]);
    let unknown = |l: &str| l.starts_with("pgrepctl_replication_lag_bytes{") && l.ends_with(" NaN");
    assert!(r.stdout().lines().any(unknown), "{}", r.stdout());
}

#[test]
fn lag_over_the_threshold_warns() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    s.sql("SELECT pg_wal_replay_pause()");
    p.sql(
        "CREATE TABLE filler AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 2000) g",
    );
    let target = p.sql("SELECT pg_current_wal_lsn()");
    wait_for(
        &s,
        &format!("SELECT pg_last_wal_receive_lsn() >= '{target}'"),
        "t",
    );
    wait_for(
        &p,
        &format!("SELECT bool_and(flush_lsn >= '{target}') FROM pg_stat_replication"),
        "t",
    );
    let (pc, sc) = (p.conninfo(), s.conninfo());
    let args = |extra: &[&str]| {
        let mut a = vec!["check", "--json", "--primary", &pc, "--standby", &sc];
        a.extend_from_slice(extra);
        a.iter().map(|x| x.to_string()).collect::<Vec<_>>()
    };
    let r = pgrepctl(args(&[
        "--warn-lag",
        "1kB",
        "--crit-lag",
        "1GB",
        "--warn-lag",
        "1h",
        "--crit-lag",
        "2h",
    ]));
    assert_eq!(r.code(), 1, "{}", r.stdout());
    let j = r.json();
    assert_eq!(j["status"], "WARNING");
    let c = problem_codes(&j);
    assert!(c.contains(&"LAG_BYTES".to_string()), "{c:?}");
    assert!(c.contains(&"REPLAY_PAUSED".to_string()), "{c:?}");
    assert!(j["pairs"][0]["lag_bytes"].as_i64().unwrap() > 1024, "{j}");
    assert_eq!(j["nodes"][1]["replay"]["paused"], true);
    // Over the critical size.
    let r = pgrepctl(args(&["--warn-lag", "0B", "--crit-lag", "1kB"]));
    assert_eq!(r.code(), 2, "{}", r.stdout());
    // Resumed and caught up: OK again.
    s.sql("SELECT pg_wal_replay_resume()");
    wait_for(
        &s,
        &format!("SELECT pg_last_wal_replay_lsn() >= '{target}'"),
        "t",
    );
    wait_for(
        &p,
        &format!("SELECT bool_and(replay_lsn >= '{target}') FROM pg_stat_replication"),
        "t",
    );
    let r = pgrepctl(args(&["--warn-lag", "1MB"]));
    assert_eq!(r.code(), 0, "{}", r.stdout());
}

#[test]
fn an_inactive_slot_retaining_wal_warns() {
    let p = Cluster::new();
    let _s = Cluster::standby_of(&p, "s1");
    p.sql("SELECT pg_create_physical_replication_slot('gone', true)");
    p.sql("CREATE TABLE filler AS SELECT g FROM generate_series(1, 1000) g");
    let r = pgrepctl(["check", "--json", "--primary", &p.conninfo()]);
    assert_eq!(r.code(), 1, "{}", r.stdout());
    let j = r.json();
    assert_eq!(problem_codes(&j), ["SLOT_INACTIVE"]);
    let slot = &j["slots"][0];
    assert_eq!(
        (slot["name"].as_str(), slot["active"].as_bool()),
        (Some("gone"), Some(false))
    );
    assert!(slot["retained_bytes"].as_i64().unwrap() > 0, "{slot}");
    assert_eq!(slot["status"], "WARNING");
    let r = pgrepctl([
        "check",
        "--format",
        "prometheus",
        "--primary",
        &p.conninfo(),
    ]);
    assert!(
        r.stdout()
            .contains("pgrepctl_slot_active{slot=\"gone\",slot_type=\"physical\"} 0"),
        "{}",
        r.stdout()
    );
}

#[test]
fn a_raised_primary_setting_is_fixed_by_clone_standby_not_by_resuming() {
    let mut p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    p.sql("ALTER SYSTEM SET max_connections = 300");
    p.stop();
    p.start();
    if s.major >= 14 {
        // The parameter change record pauses replay on the standby.
        wait_for(&s, "SELECT pg_is_wal_replay_paused()", "t");
    }
    let r = pgrepctl([
        "check",
        "--json",
        "--primary",
        &p.conninfo(),
        "--standby",
        &s.conninfo(),
    ]);
    assert_eq!(r.code(), 2, "{}", r.stdout());
    let j = r.json();
    let codes = problem_codes(&j);
    assert!(codes.contains(&"SETTING_TOO_LOW".to_string()), "{j}");
    if s.major >= 14 {
        assert!(codes.contains(&"REPLAY_PAUSED".to_string()), "{j}");
    }
    for problem in j["problems"].as_array().unwrap() {
        let hint = problem["hint"].as_str().unwrap_or_default();
        assert!(!hint.contains("resume"), "{hint}");
        if problem["code"] == "SETTING_TOO_LOW" {
            assert!(hint.contains("pgrepctl clone-standby"), "{hint}");
            assert!(hint.contains("300"), "{hint}");
        }
    }
}

#[test]
fn a_role_without_pg_monitor_is_unknown_not_critical() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    p.sql("CREATE ROLE nobody_special LOGIN");
    let lsn = p.sql("SELECT pg_current_wal_lsn()");
    wait_for(
        &s,
        &format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'"),
        "t",
    );
    let as_role = |c: &Cluster| c.conninfo().replace("user=postgres", "user=nobody_special");
    let r = pgrepctl([
        "check",
        "--json",
        "--primary",
        &as_role(&p),
        "--standby",
        &as_role(&s),
    ]);
    let j = r.json();
    // The one query runs for any role; what it may not see is unknown.
    assert!(j["nodes"][0]["error"].is_null(), "{j}");
    assert!(j["nodes"][1]["error"].is_null(), "{j}");
    assert!(
        problem_codes(&j).contains(&"INSUFFICIENT_PRIVILEGE".to_string()),
        "{j}"
    );
    assert_eq!(j["nodes"][1]["status"], "UNKNOWN", "{j}");
    assert_eq!(r.code(), 3, "{}", r.stdout());
}

#[test]
fn a_primary_left_read_only_is_critical() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    let args = |format: &'static str| {
        [
            "check".to_string(),
            "--format".into(),
            format.into(),
            "--primary".into(),
            p.conninfo(),
            "--standby".into(),
            s.conninfo(),
        ]
    };
    p.sql("ALTER SYSTEM SET default_transaction_read_only = on");
    p.sql("SELECT pg_reload_conf()");
    let r = pgrepctl(args("nagios"));
    assert_eq!(r.code(), 2, "{}", r.stdout());
    assert!(
        r.stdout().starts_with("PGREPCTL CRITICAL - "),
        "{}",
        r.stdout()
    );
    assert!(r.stdout().contains("refuses writes"), "{}", r.stdout());
    let r = pgrepctl(args("json"));
    let j = r.json();
    assert_eq!(problem_codes(&j), ["PRIMARY_READ_ONLY"], "{j}");
    assert_eq!(j["nodes"][0]["read_only"], true, "{j}");
    assert_eq!(j["nodes"][0]["status"], "CRITICAL", "{j}");
    let hint = j["problems"][0]["hint"].as_str().unwrap();
    assert!(
        hint.contains("ALTER SYSTEM RESET default_transaction_read_only"),
        "{hint}"
    );
    let r = pgrepctl(args("prometheus"));
    assert!(
        r.stdout()
            .contains("pgrepctl_read_only{node=\"primary\",role=\"primary\"} 1\n"),
        "{}",
        r.stdout()
    );

    // Left by switchover's drain (its marker beside it): rerun switchover.
    // (switchover defines the placeholder in its session first, as here.)
    p.psql(
        &[("options", "-c pgrepctl.switchover=draining")],
        "ALTER SYSTEM SET pgrepctl.switchover = 'draining'",
    )
    .unwrap();
    p.sql("SELECT pg_reload_conf()");
    let j = pgrepctl(args("json")).json();
    let hint = j["problems"][0]["hint"].as_str().unwrap();
    assert!(hint.contains("pgrepctl switchover again"), "{hint}");

    // A monitoring role read-only by its own setting is no finding.
    p.sql("ALTER SYSTEM RESET ALL");
    p.sql("SELECT pg_reload_conf()");
    p.sql("ALTER ROLE postgres SET default_transaction_read_only = on");
    let r = pgrepctl(args("json"));
    assert_eq!(r.code(), 0, "{}", r.stdout());
    p.psql(
        &[("options", "-c default_transaction_read_only=off")],
        "ALTER ROLE postgres RESET default_transaction_read_only",
    )
    .unwrap();
    let r = pgrepctl(args("prometheus"));
    assert_eq!(r.code(), 0, "{}", r.stdout());
    assert!(
        r.stdout()
            .contains("pgrepctl_read_only{node=\"primary\",role=\"primary\"} 0\n"),
        "{}",
        r.stdout()
    );
}

#[test]
fn one_server_given_twice_is_unknown_not_a_split_brain() {
    let p = Cluster::new();
    let _s = Cluster::standby_of(&p, "s1");
    // The same server by two addresses: its socket and its loopback port.
    let tcp = format!("host=127.0.0.1 port={} user=postgres", p.port);
    let r = pgrepctl([
        "check",
        "--format",
        "nagios",
        "--primary",
        &p.conninfo(),
        "--standby",
        &tcp,
    ]);
    assert_eq!(r.code(), 3, "{}", r.stdout());
    assert!(
        r.stdout().starts_with("PGREPCTL UNKNOWN - ") && r.stdout().contains("same server"),
        "{}",
        r.stdout()
    );
    assert!(!r.stdout().contains("split brain"), "{}", r.stdout());
    let r = pgrepctl([
        "check",
        "--json",
        "--primary",
        &p.conninfo(),
        "--standby",
        &p.conninfo(),
    ]);
    r.fails(3, "CONFLICTING_FLAGS");
}

/// Each sample of a Prometheus text without its value: the series.
fn series(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').map(|(s, _)| s.to_string()))
        .collect();
    out.sort();
    out
}

/// End every walsender of `p` and wait until `n` new ones stream.
fn reconnect_all(p: &Cluster, n: usize) {
    let old = p.sql("SELECT string_agg(pid::text, ',') FROM pg_stat_replication");
    p.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_replication");
    wait_for(
        p,
        &format!(
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND pid NOT IN ({old})"
        ),
        &n.to_string(),
    );
}

/// `check --format prometheus` of the primary alone, where the standbys
/// are known only by their walsenders: no PID in any label, and the same
/// series after every walsender reconnected (with new PIDs).
/// `check --json` of `p` and these standbys.
fn check_json(p: &Cluster, standbys: &[&Cluster]) -> crate::harness::Run {
    let mut args = vec![
        "check".to_string(),
        "--json".into(),
        "--primary".into(),
        p.conninfo(),
    ];
    for s in standbys {
        args.extend(["--standby".to_string(), s.conninfo()]);
    }
    pgrepctl(args)
}

fn stable_series(p: &Cluster) -> Vec<String> {
    let pc = p.conninfo();
    let prometheus = || {
        let r = pgrepctl(["check", "--format", "prometheus", "--primary", &pc]);
        assert_eq!(r.code(), 0, "{}\n{}", r.stdout(), r.stderr());
        r.stdout()
    };
    let before = prometheus();
    assert!(!before.contains("pid"), "{before}");
    reconnect_all(p, 2);
    let after = prometheus();
    assert_eq!(series(&before), series(&after), "{before}\n{after}");
    series(&after)
}

/// Two standbys stream under one application_name (what clone-standby
/// gives two standbys of one host by default: the host's name), each
/// through its own slot: check pairs each with its own walsender, and
/// names the walsenders apart by slot, never by PID.
#[test]
fn standbys_sharing_a_name_are_told_apart_by_slot() {
    let p = Cluster::new();
    let s1 = Cluster::standby_with_slot(&p, "db2", Some("slot_a"));
    let s2 = Cluster::standby_with_slot(&p, "db2", Some("slot_b"));
    let r = check_json(&p, &[&s1, &s2]);
    let j = r.json();
    assert_eq!(r.code(), 0, "{j}");
    assert_eq!(problem_codes(&j), Vec::<String>::new(), "{j}");
    let pairs = j["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 2, "one pair per standby: {j}");
    for (i, pair) in pairs.iter().enumerate() {
        assert_eq!(pair["upstream"], "primary", "{j}");
        assert_eq!(pair["state"], "streaming", "{j}");
        assert_eq!(j["nodes"][i + 1]["upstream"], "primary", "{j}");
    }
    let series = stable_series(&p);
    for want in [
        "pgrepctl_replication_lag_bytes{standby=\"db2 (slot slot_a)\"}",
        "pgrepctl_replication_lag_bytes{standby=\"db2 (slot slot_b)\"}",
    ] {
        assert!(series.iter().any(|s| s == want), "{want}: {series:?}");
    }
}

/// Two standbys stream under one application_name from one address and
/// without slots: nothing tells their walsenders apart. check says so on
/// each standby, with the fix, instead of "from no wal sender", reports
/// each standby once, and labels the walsenders without PIDs.
#[test]
fn standbys_that_cannot_be_told_apart_are_named_as_such() {
    let p = Cluster::new();
    let s1 = Cluster::standby_of(&p, "db2");
    let s2 = Cluster::standby_of(&p, "db2");
    let r = check_json(&p, &[&s1, &s2]);
    let j = r.json();
    assert_eq!(r.code(), 1, "{j}");
    assert_eq!(
        problem_codes(&j),
        ["STANDBY_NAME_SHARED", "STANDBY_NAME_SHARED"],
        "{j}"
    );
    for p in j["problems"].as_array().unwrap() {
        let hint = p["hint"].as_str().unwrap();
        assert!(hint.contains("--application-name"), "{hint}");
        assert!(p["message"].as_str().unwrap().contains("db2"), "{p}");
    }
    assert_eq!(j["pairs"].as_array().unwrap().len(), 2, "{j}");
    let series = stable_series(&p);
    assert!(
        series
            .iter()
            .any(|s| s == "pgrepctl_replication_lag_bytes{standby=\"db2#2\"}"),
        "{series:?}"
    );
    let r = check_json(&p, &[]);
    let warnings = r.json()["warnings"].to_string();
    assert!(warnings.contains("cannot be told apart"), "{warnings}");
}

/// A standby whose `--standby` conninfo names an application_name keeps
/// that name when it stops: `pgrepctl_up{node="xstb2"}` goes to 0 rather
/// than a series under its address appearing, and every `standby="xstb2"`
/// series stays, with unknown values (NaN, `U` in Nagios perfdata) and
/// `pgrepctl_wal_receiver_streaming` 0. Without a name given, a stopped
/// standby is named by its host:port (documented).
#[test]
fn a_stopped_standby_keeps_its_name_and_series() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "xstb2");
    let named = format!("{} application_name=xstb2", s.conninfo());
    let run = |format: &str, standby: &str| {
        let r = pgrepctl([
            "check",
            "--format",
            format,
            "--primary",
            &p.conninfo(),
            "--standby",
            standby,
        ]);
        r.stdout()
    };
    let of_standby = |text: &str| -> Vec<String> {
        series(text)
            .into_iter()
            .filter(|s| {
                s.contains("standby=\"xstb2\"") || s.starts_with("pgrepctl_up{node=\"xstb2\"")
            })
            .collect()
    };
    let up = run("prometheus", &named);
    assert!(
        up.contains("pgrepctl_up{node=\"xstb2\",role=\"standby\"} 1\n"),
        "{up}"
    );
    let nagios_up = run("nagios", &named);
    assert!(nagios_up.contains(" lag_bytes_xstb2=0B;"), "{nagios_up}");
    s.stop();
    let down = run("prometheus", &named);
    assert_eq!(of_standby(&up), of_standby(&down), "{up}\n{down}");
    for want in [
        "pgrepctl_up{node=\"xstb2\",role=\"standby\"} 0\n",
        "pgrepctl_replication_lag_bytes{standby=\"xstb2\"} NaN\n",
        "pgrepctl_replication_lag_seconds{standby=\"xstb2\"} NaN\n",
        "pgrepctl_wal_receiver_streaming{standby=\"xstb2\"} 0\n",
        "pgrepctl_replication_ssl{standby=\"xstb2\"} NaN\n",
        "pgrepctl_check_status{command=\"check\"} 2\n",
    ] {
        assert!(down.contains(want), "{want} missing in\n{down}");
    }
    let address = format!("\"{}:", s.sock.display());
    assert!(
        !down.contains(&address),
        "no series under its address: {down}"
    );
    let nagios = run("nagios", &named);
    for want in [
        " lag_bytes_xstb2=U;",
        " lag_seconds_xstb2=U;",
        " ssl_xstb2=U;",
    ] {
        assert!(nagios.contains(want), "{want} missing in {nagios}");
    }
    assert!(
        nagios.starts_with("PGREPCTL CRITICAL - xstb2: "),
        "{nagios}"
    );
    // No name given: the address names it while it is down.
    let down = run("prometheus", &s.conninfo());
    assert!(
        down.contains(&format!("pgrepctl_up{{node=\"{}:", s.sock.display())),
        "{down}"
    );
}
