//! The failover story of issue 11 end to end, as a DBA runs it on two hosts
//! (network namespaces) with stock packaged clusters (peer authentication,
//! configuration in /etc), pgrepctl as root with the README's commands:
//! init-master and clone-standby, the primary killed, promote, the old
//! primary diverging, the new primary opened to it, rejoin with a rewind
//! (after doing what its refusals say), then check from a monitoring host.
//! Nothing here connects from the host namespace to a namespace address.

use crate::harness;
use crate::harness::debian::{self, pgrepctl_on, pgrepctl_on_env};
use crate::harness::netns;
use crate::harness::two_hosts::{MON_PW, Site, add_hba_line, dump, ok_on, replayed, set_up, sql};
use crate::rejoin_debian::kill_debian;

/// Steps 2–4: rows replayed on B; A killed; B promoted and written to; A
/// started again as a primary, given rows only it has, and killed again.
fn fail_over_and_diverge(s: &Site) {
    sql(
        &s.a,
        "CREATE TABLE t (i int PRIMARY KEY, who text); \
         INSERT INTO t SELECT g, 'a' FROM generate_series(1, 100) g",
    );
    replayed(&s.b, "SELECT count(*) FROM t", "100");

    kill_debian(&s.a);
    let bdata = s.b.data_str();
    let j = ok_on(&s.hosts.client, &["promote", "--json", "-D", &bdata]);
    assert_eq!(j["upstream"]["state"], "down", "{j}");
    assert_eq!(j["timeline"], 2, "{j}");
    sql(
        &s.b,
        "INSERT INTO t SELECT g, 'b' FROM generate_series(101, 150) g",
    );

    // A comes back on its own, as a primary (it never was a standby).
    s.a.start();
    assert_eq!(sql(&s.a, "SELECT pg_is_in_recovery()"), "f");
    sql(
        &s.a,
        "INSERT INTO t SELECT g, 'only a' FROM generate_series(1000, 1010) g",
    );
    kill_debian(&s.a);
}

/// rejoin on A as the README runs it (the replication password serves the
/// replication role as pg_rewind's role too).
fn rejoin(s: &Site) -> harness::Run {
    let adata = s.a.data_str();
    let primary = format!(
        "host={} port={} user=replicator",
        s.hosts.client_ip, s.b.port
    );
    pgrepctl_on(
        Some(&s.hosts.server),
        &[
            "rejoin",
            "--json",
            "-D",
            &adata,
            "--primary",
            &primary,
            "--password-file",
            &s.pw,
        ],
    )
}

/// Step 5 and the first half of 6: B opened to A for replication with
/// init-master; each rejoin refusal changes nothing and says exactly what
/// the DBA then does on B (an hba line for pg_rewind's connection, the
/// grants), until rejoin runs.
fn open_b_as_rejoin_says(s: &Site) -> serde_json::Value {
    let bdata = s.b.data_str();
    let a_net = format!("{}/32", s.hosts.server_ip);
    ok_on(
        &s.hosts.client,
        &[
            "init-master",
            "--json",
            "-D",
            &bdata,
            "--allow",
            &a_net,
            "--password-file",
            &s.pw,
            "--listen",
            "*",
            "--rewindable",
            "--restart",
            "if-needed",
        ],
    );
    let control_before = std::fs::read(s.a.data().join("global/pg_control")).unwrap();

    // pg_rewind's normal connection to database postgres is not let in.
    let j = rejoin(s).fails(1, "HBA_REJECTED");
    let hint = j["error"]["hint"].as_str().unwrap();
    let line = format!("host postgres replicator {a_net} scram-sha-256");
    assert!(hint.contains(&line), "the hint names the line: {hint}");
    add_hba_line(&s.b, &line);

    // Let in, but without the rights pg_rewind needs: the hint's GRANTs
    // are run as they are.
    let j = rejoin(s).fails(1, "NOT_SUPERUSER");
    let hint = j["error"]["hint"].as_str().unwrap();
    let grants = hint
        .split("as a superuser: ")
        .nth(1)
        .and_then(|h| h.split(" — ").next())
        .unwrap_or_else(|| panic!("no GRANTs in the hint: {hint}"));
    assert!(grants.starts_with("GRANT EXECUTE"), "{hint}");
    sql(&s.b, grants);

    assert_eq!(
        std::fs::read(s.a.data().join("global/pg_control")).unwrap(),
        control_before,
        "the refusals changed nothing on A"
    );
    rejoin(s).ok()
}

/// Step 7: check from the monitoring host (A's), as the monitoring role.
fn check_from_a(s: &Site) -> serde_json::Value {
    let pgpass = s.pgpass("monitor", MON_PW);
    let pnode = format!("host={} port={} user=monitor", s.hosts.client_ip, s.b.port);
    let snode = format!("host={} port={} user=monitor", s.hosts.server_ip, s.a.port);
    let r = pgrepctl_on_env(
        Some(&s.hosts.server),
        &["check", "--json", "--primary", &pnode, "--standby", &snode],
        &[("PGPASSFILE", &pgpass)],
    );
    assert_eq!(r.code(), 0, "{}\n{}", r.stdout(), r.stderr());
    r.json()
}

/// Issue 11's "done when": the whole story on two packaged hosts.
#[test]
fn failover_and_rejoin_on_two_packaged_hosts() {
    let Some(major) = debian::available() else {
        return;
    };
    if !netns::available() {
        eprintln!("skipped: network namespaces need root and iproute2");
        return;
    }
    if major < 11 {
        // The DBA's answer to rejoin's refusal is different there (a
        // superuser as --rewind-user; the GRANTs need 11).
        eprintln!("skipped: pg_rewind without a superuser needs PostgreSQL 11");
        return;
    }
    let s = set_up(major);
    fail_over_and_diverge(&s);
    let j = open_b_as_rejoin_says(&s);
    assert_eq!(j["changed"], true, "{j}");
    assert_eq!(j["decision"]["action"], "rewind", "{j}");
    assert_eq!(j["decision"]["crash_recovery"], true, "{j}");

    assert_eq!(sql(&s.a, "SELECT pg_is_in_recovery()"), "t");
    replayed(
        &s.a,
        "SELECT status || ' ' || received_tli FROM pg_stat_wal_receiver",
        "streaming 2",
    );
    assert_eq!(
        sql(&s.a, "SELECT count(*) FROM t WHERE who = 'only a'"),
        "0"
    );
    sql(&s.b, "INSERT INTO t VALUES (151, 'b after the rejoin')");
    replayed(&s.a, "SELECT count(*) FROM t", "151");
    assert_eq!(dump(&s.a), dump(&s.b), "A and B hold the same data");

    let again = rejoin(&s).ok();
    assert_eq!(again["changed"], false, "{again}");

    let j = check_from_a(&s);
    assert_eq!(j["nodes"][0]["role"], "primary", "{j}");
    assert_eq!(j["nodes"][0]["timeline"], 2, "{j}");
    assert_eq!(j["nodes"][1]["timeline"], 2, "{j}");
    assert_eq!(harness::problem_codes(&j), Vec::<String>::new(), "{j}");
}
