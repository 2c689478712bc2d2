//! rejoin on packaged (Debian) clusters, whose configuration lives in
//! /etc: the crash recovery before the rewind must be given that
//! config_file, and the node starts through pg_ctlcluster.

use crate::harness;
use crate::harness::debian::{DebianCluster, pgrepctl_on, pgrepctl_on_env};

/// SIGKILL a Debian cluster's postmaster, by its postmaster.pid.
pub fn kill_debian(c: &DebianCluster) {
    let pid = std::fs::read_to_string(c.data().join("postmaster.pid")).unwrap();
    let pid = nix::unistd::Pid::from_raw(pid.lines().next().unwrap().trim().parse().unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    while nix::sys::signal::kill(pid, None).is_ok() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn debian_replayed(c: &DebianCluster, q: &str, want: &str) {
    let t = std::time::Instant::now();
    while c.try_sql(q).as_deref() != Ok(want) {
        assert!(t.elapsed().as_secs() < 30, "{q} never returned {want}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Packaged clusters (configuration in /etc): P killed with writes S never
/// had, so it needs crash recovery with /etc's config_file (which pg_rewind's
/// own crash recovery cannot find), a rewind, and a start through
/// pg_ctlcluster. The rewind role's password comes from PGPASSFILE.
#[test]
fn a_packaged_primary_is_recovered_with_its_etc_config_and_rewound() {
    let Some(major) = harness::debian::available() else {
        return;
    };
    let p = DebianCluster::create(major, None);
    p.append_conf("wal_log_hints = on\nwal_keep_size = '256MB'\n");
    p.stop();
    p.start();
    let tmp = harness::tempdir();
    let pw = harness::run::password_file(tmp.path(), "replica-secret");
    let pw = pw.to_str().unwrap();
    let data = p.data_str();
    pgrepctl_on(
        None,
        &[
            "init-master",
            "--json",
            "-D",
            &data,
            "--allow",
            "127.0.0.1/32",
            "--password-file",
            pw,
        ],
    )
    .ok();
    p.sql("ALTER ROLE postgres PASSWORD 'rewind-secret'");
    p.sql("CREATE TABLE t (i int PRIMARY KEY); INSERT INTO t VALUES (1)");
    let s = DebianCluster::create(major, None);
    s.stop();
    let from_p = format!("host=127.0.0.1 port={} user=replicator", p.port);
    let sdata = s.data_str();
    let clone = [
        "clone-standby",
        "--json",
        "--force",
        "--primary",
        &from_p,
        "-D",
        &sdata,
        "--password-file",
        pw,
    ];
    pgrepctl_on(None, &clone).ok();
    debian_replayed(&s, "SELECT count(*) FROM t", "1");

    kill_debian(&p);
    pgrepctl_on(None, &["promote", "--json", "-D", &sdata]).ok();
    s.sql("INSERT INTO t VALUES (2)");
    p.start();
    p.sql("INSERT INTO t VALUES (100)");
    kill_debian(&p);

    let pgpass = tmp.path().join("rewind.pgpass");
    std::fs::write(&pgpass, "*:*:*:postgres:rewind-secret\n").unwrap();
    std::fs::set_permissions(&pgpass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let etc_before = std::fs::read(p.etc().join("postgresql.conf")).unwrap();
    let from_s = format!("host=127.0.0.1 port={} user=replicator", s.port);
    let j = pgrepctl_on_env(
        None,
        &[
            "rejoin",
            "--json",
            "-D",
            &data,
            "--primary",
            &from_s,
            "--password-file",
            pw,
            "--rewind-user",
            "postgres",
        ],
        &[("PGPASSFILE", pgpass.to_str().unwrap())],
    )
    .ok();
    assert_eq!(j["decision"]["action"], "rewind", "{j}");
    assert_eq!(j["decision"]["crash_recovery"], true, "{j}");
    assert_eq!(
        std::fs::read(p.etc().join("postgresql.conf")).unwrap(),
        etc_before
    );
    assert!(
        !p.data().join("postgresql.conf").exists(),
        "no config copied into PGDATA"
    );
    assert_eq!(p.sql("SELECT pg_is_in_recovery()"), "t", "{}", p.log());
    assert_eq!(p.sql("SELECT count(*) FROM t WHERE i >= 100"), "0");
    s.sql("INSERT INTO t VALUES (3)");
    debian_replayed(&p, "SELECT count(*) FROM t", "3");
}
