//! Behaviour that differs by PostgreSQL major, checked on whichever major
//! the suite runs against (scripts/test-matrix runs it on 10 to 18).
//! pgrepctl decides by the server's server_version_num, never by a path.

use crate::harness::{Cluster, pgrepctl, run::password_file};

#[test]
fn wal_retention_setting_by_version() {
    let c = Cluster::new();
    let pw = password_file(c.tmp.path(), "pw");
    crate::harness::fixtures::init_master(&c, &pw, &["--wal-keep", "512MB"]).ok();
    let conf = std::fs::read_to_string(c.conf_path()).unwrap();
    let block = conf.split("# BEGIN pgrepctl").nth(1).unwrap_or("");
    if c.major >= 13 {
        assert!(block.contains("wal_keep_size = 512MB"), "{block}");
        assert!(!block.contains("wal_keep_segments"), "{block}");
        assert_eq!(c.sql("SHOW wal_keep_size"), "512MB");
    } else {
        // 512MB of 16MB segments.
        assert!(block.contains("wal_keep_segments = 32"), "{block}");
        assert!(!block.contains("wal_keep_size"), "{block}");
        assert_eq!(c.sql("SHOW wal_keep_segments"), "32");
    }
}

#[test]
fn scram_password_even_where_md5_is_the_default() {
    let c = Cluster::new();
    let default_encryption =
        c.sql("SELECT boot_val FROM pg_settings WHERE name = 'password_encryption'");
    if c.major <= 13 {
        assert_eq!(default_encryption, "md5", "10-13 default to md5");
    }
    let pw = password_file(c.tmp.path(), "pw");
    pgrepctl([
        "init-master",
        "--json",
        "-D",
        c.data.to_str().unwrap(),
        "--allow",
        "127.0.0.1",
        "--password-file",
        pw.to_str().unwrap(),
    ])
    .ok();
    assert!(
        c.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'replicator'")
            .starts_with("SCRAM-SHA-256$")
    );
    let ci = format!(
        "host=127.0.0.1 port={} user=replicator password=pw dbname=replication replication=true",
        c.port
    );
    let out = std::process::Command::new(crate::harness::psql_bin(&c.bindir))
        .args(["-X", "-A", "-t", "-d", &ci, "-c", "IDENTIFY_SYSTEM"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A primary that raises a hot-standby setting above its standby's: before
/// 14 the standby shuts down when it replays the change; 14+ keeps it up
/// for reads with replay paused. check reports either as CRITICAL, and on
/// 14+ names the setting and the fix (rerunning clone-standby, which works;
/// never resuming replay, which would shut the standby down).
#[test]
fn standby_below_a_raised_primary_setting_stops_or_pauses_by_version() {
    use crate::harness::fixtures::{clone, prepared_primary};
    use std::time::{Duration, Instant};
    let (mut p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    clone(&p, &s, Some(&pw), &[]).ok();
    let before: u32 = s.sql("SHOW max_connections").parse().unwrap();
    p.sql(&format!(
        "ALTER SYSTEM SET max_connections = {}",
        before + 50
    ));
    p.stop();
    p.start();

    let deadline = Instant::now() + Duration::from_secs(60);
    let check = || {
        pgrepctl([
            "check",
            "--json",
            "--primary",
            &p.conninfo(),
            "--standby",
            &s.conninfo(),
        ])
    };
    if p.major >= 14 {
        while s.sql("SELECT pg_get_wal_replay_pause_state()") != "paused" {
            assert!(Instant::now() < deadline, "14+: replay never paused");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(s.running(), "14+: the standby stays up for reads");
        assert_eq!(s.sql("SELECT pg_is_in_recovery()"), "t");
        let r = check();
        assert_eq!(r.code(), 2, "{}", r.stdout());
        let j = r.json();
        let problems = j["problems"].as_array().unwrap();
        let too_low = problems
            .iter()
            .find(|x| x["code"] == "SETTING_TOO_LOW")
            .unwrap_or_else(|| panic!("{j}"));
        assert!(
            too_low["message"]
                .as_str()
                .unwrap()
                .contains("max_connections")
        );
        let hint = too_low["hint"].as_str().unwrap();
        assert!(hint.contains("pgrepctl clone-standby"), "{hint}");
        assert!(hint.contains(&(before + 50).to_string()), "{hint}");
        assert!(problems.iter().any(|x| x["code"] == "REPLAY_PAUSED"), "{j}");
        // Resuming would shut the standby down: never advised.
        for x in problems {
            let h = x["hint"].as_str().unwrap_or_default();
            assert!(!h.contains("resume"), "{h}");
        }
        // The hint's fix works: a rerun raises the setting and restarts.
        let rerun = clone(&p, &s, Some(&pw), &[]);
        assert_eq!(rerun.code(), 0, "{}\n{}", rerun.stdout(), rerun.stderr());
        let r = check();
        assert_eq!(r.code(), 0, "after clone-standby: {}", r.stdout());
    } else {
        while s.running() {
            assert!(
                Instant::now() < deadline,
                "before 14 the standby shuts down"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(s.data.join("pgrepctl-server.log")).unwrap_or_default();
        assert!(log.contains("hot standby is not possible because"), "{log}");
        let r = check();
        assert_eq!(r.code(), 2, "{}", r.stdout());
    }
}
