//! The switchover story of issue 12 end to end, as a DBA runs it on two
//! hosts (network namespaces) with stock packaged clusters (peer
//! authentication, configuration in /etc), pgrepctl as root with the
//! README's commands: A the primary and B its standby (init-master,
//! clone-standby), the superuser's remote login to B set up as a DBA
//! would, the switchover on A refused until B is opened to A's
//! replication as the refusal says, then run: B the primary, A streaming
//! from it, nothing lost. Then back from B to A the same way. Nothing
//! here connects from the host namespace to a namespace address.

use crate::harness::debian::{self, DebianCluster, pgrepctl_on_env};
use crate::harness::netns;
use crate::harness::two_hosts::{Site, add_hba_line, dump, ok_on, replayed, set_up, sql};

/// The postgres superuser's password for the remote logins.
const SU_PW: &str = "Sw1tch-superuser";

/// pgrepctl switchover as issue 12 runs it, on the primary's host `ns`:
/// `from` hands the primary role to `to` (at `to_ip`). The superuser's
/// password for the candidate comes from `pgpass` (PGPASSFILE); the
/// replication password file is the DBA's from init-master.
fn switchover(
    s: &Site,
    ns: &str,
    from: &DebianCluster,
    to: &DebianCluster,
    to_ip: &str,
    pgpass: &str,
) -> crate::harness::Run {
    let candidate = format!("host={to_ip} port={} user=postgres", to.port);
    pgrepctl_on_env(
        Some(ns),
        &[
            "switchover",
            "--json",
            "-D",
            &from.data_str(),
            "--candidate",
            &candidate,
            "--password-file",
            &s.pw,
        ],
        &[("PGPASSFILE", pgpass)],
    )
}

/// The superuser's remote login, as a DBA sets it up: peer
/// authentication only works over the socket, so the switchover's
/// session from the other host needs a password and a pg_hba.conf line
/// for that host's address. The password is set on the primary (A): a
/// standby is read-only, and roles reach it by replication. B's packaged
/// postgresql.conf (in /etc, which clone-standby does not copy) still
/// listens on localhost only: the DBA opens it and restarts B.
fn let_superuser_in(s: &Site) -> String {
    sql(&s.a, &format!("ALTER ROLE postgres PASSWORD '{SU_PW}'"));
    s.b.append_conf("listen_addresses = '*'\n");
    s.b.stop();
    s.b.start();
    for (c, from) in [(&s.b, &s.hosts.server_ip), (&s.a, &s.hosts.client_ip)] {
        add_hba_line(
            c,
            &format!("host postgres postgres {from}/32 scram-sha-256"),
        );
    }
    s.pgpass("postgres", SU_PW)
}

/// The first run on A is refused, changing nothing: B would not let A in
/// for replication after the swap, and the hint names the init-master to
/// run on B. The DBA runs it there (B is still a standby).
fn open_b_as_switchover_says(s: &Site, pgpass: &str) {
    let control_before = std::fs::read(s.a.data().join("global/pg_control")).unwrap();
    let r = switchover(s, &s.hosts.server, &s.a, &s.b, &s.hosts.client_ip, pgpass);
    let j = r.fails(1, "HBA_REJECTED");
    let hint = j["error"]["hint"].as_str().unwrap();
    let a_net = format!("{}/32", s.hosts.server_ip);
    assert!(
        hint.contains(&format!("init-master -D PGDATA --allow {a_net}")),
        "the hint names the init-master to run on B: {hint}"
    );
    assert_eq!(
        std::fs::read(s.a.data().join("global/pg_control")).unwrap(),
        control_before,
        "the refusal changed nothing on A"
    );
    assert_eq!(sql(&s.a, "SELECT pg_is_in_recovery()"), "f");
    assert_eq!(sql(&s.a, "SHOW default_transaction_read_only"), "off");

    let bdata = s.b.data_str();
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
        ],
    );
}

/// After a switchover: `primary` takes writes, `standby` streams from
/// it (at `primary_ip`), the `rows` rows of t are on the new primary and
/// a row written there reaches the standby.
fn assert_swapped(primary: &DebianCluster, standby: &DebianCluster, primary_ip: &str, rows: u32) {
    assert_eq!(sql(primary, "SELECT pg_is_in_recovery()"), "f");
    assert_eq!(sql(primary, "SHOW default_transaction_read_only"), "off");
    assert_eq!(sql(standby, "SELECT pg_is_in_recovery()"), "t");
    replayed(
        standby,
        "SELECT status || ' ' || sender_host FROM pg_stat_wal_receiver",
        &format!("streaming {primary_ip}"),
    );
    assert_eq!(sql(primary, "SELECT count(*) FROM t"), rows.to_string());
    sql(
        primary,
        &format!(
            "INSERT INTO t VALUES ({}, 'after the switchover')",
            rows + 1
        ),
    );
    replayed(standby, "SELECT count(*) FROM t", &(rows + 1).to_string());
}

/// Issue 12's story on two packaged hosts: A → B, then B → A.
#[test]
fn switchover_and_back_on_two_packaged_hosts() {
    let Some(major) = debian::available() else {
        return;
    };
    if !netns::available() {
        eprintln!("skipped: network namespaces need root and iproute2");
        return;
    }
    if major < 12 {
        eprintln!("skipped: switchover promotes with pg_promote(), from 12");
        return;
    }
    let s = set_up(major);
    sql(
        &s.a,
        "CREATE TABLE t (i int PRIMARY KEY, who text); \
         INSERT INTO t SELECT g, 'a' FROM generate_series(1, 100) g",
    );
    replayed(&s.b, "SELECT count(*) FROM t", "100");
    let pgpass = let_superuser_in(&s);
    open_b_as_switchover_says(&s, &pgpass);

    let (a_ip, b_ip) = (&s.hosts.server_ip, &s.hosts.client_ip);
    let j = switchover(&s, &s.hosts.server, &s.a, &s.b, b_ip, &pgpass).ok();
    assert_eq!(j["changed"], true, "{j}");
    assert_eq!(j["new_timeline"], 2, "{j}");
    assert_swapped(&s.b, &s.a, b_ip, 100);
    let again = switchover(&s, &s.hosts.server, &s.a, &s.b, b_ip, &pgpass).ok();
    assert_eq!(again["changed"], false, "a rerun finds it done: {again}");

    // Back: B hands the primary role to A, from B's host.
    let j = switchover(&s, &s.hosts.client, &s.b, &s.a, a_ip, &pgpass).ok();
    assert_eq!(j["changed"], true, "{j}");
    assert_eq!(j["new_timeline"], 3, "{j}");
    assert_swapped(&s.a, &s.b, a_ip, 101);
    replayed(&s.b, "SELECT count(*) FROM t", "102");
    assert_eq!(dump(&s.a), dump(&s.b), "A and B hold the same data");
}
