//! promote on real servers: after the primary is killed, the standby
//! becomes a primary on a new timeline and takes writes; while the primary
//! still answers it is refused (unless --force); a dry run and a second run
//! change nothing.

use crate::harness::{self, Cluster, pgrepctl};
use std::time::{Duration, Instant};

fn promote(s: &Cluster, extra: &[&str]) -> harness::Run {
    let mut args = vec!["promote", "--json", "-D", s.data.to_str().unwrap()];
    args.extend(extra);
    pgrepctl(args)
}

/// SIGKILL the postmaster, by the PID in its own postmaster.pid.
pub fn kill_hard(c: &Cluster) {
    let pid = harness::postmaster_pid(&c.data);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let t = Instant::now();
    while nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the postmaster survived SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn replayed(s: &Cluster, q: &str, want: &str) {
    let t = Instant::now();
    while s.try_sql(q).as_deref() != Ok(want) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{q} never returned {want}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn promotes_a_standby_whose_primary_was_killed() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    p.sql("CREATE TABLE t (i int); INSERT INTO t VALUES (1)");
    replayed(&s, "SELECT count(*) FROM t", "1");
    kill_hard(&p);

    let dry = promote(&s, &["--dry-run"]).ok();
    assert_eq!(dry["changed"], true, "{dry}");
    assert_eq!(
        s.sql("SELECT pg_is_in_recovery()"),
        "t",
        "a dry run changes nothing"
    );
    assert_eq!(dry["upstream"]["state"], "down", "{dry}");

    let j = promote(&s, &[]).ok();
    assert_eq!(
        harness::summaries(&dry),
        harness::summaries(&j),
        "dry run {dry}\nreal run {j}"
    );
    assert_eq!(j["changed"], true, "{j}");
    assert_eq!(j["timeline"], 2, "{j}");
    assert!(
        j["switch_lsn"].as_str().is_some_and(|l| l.contains('/')),
        "{j}"
    );
    assert_eq!(s.sql("SELECT pg_is_in_recovery()"), "f");
    s.sql("INSERT INTO t VALUES (2)");
    assert_eq!(s.sql("SELECT count(*) FROM t"), "2");
    // pg_control has the new timeline already (the CHECKPOINT).
    assert_eq!(
        s.sql("SELECT timeline_id FROM pg_control_checkpoint()"),
        "2"
    );

    let again = promote(&s, &[]).ok();
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(harness::summaries(&again), Vec::<String>::new());
}

#[test]
fn a_cascaded_standby_says_its_upstream_answers_as_a_standby() {
    let p = Cluster::new();
    let s1 = Cluster::standby_of(&p, "s1");
    let s2 = Cluster::cascade_of(&p, &s1, "s2");
    let j = promote(&s2, &[]).fails(1, "UPSTREAM_ALIVE");
    let message = j["error"]["message"].as_str().unwrap();
    assert!(message.contains("answers as a standby"), "{j}");
    assert_eq!(s2.sql("SELECT pg_is_in_recovery()"), "t", "nothing changed");
}

#[test]
fn refuses_while_the_primary_answers_unless_forced() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    let j = promote(&s, &[]).fails(1, "UPSTREAM_ALIVE");
    let message = j["error"]["message"].as_str().unwrap();
    assert!(message.contains("two primaries"), "{j}");
    // Every major tells a primary from a standby (before 14 through
    // transaction_read_only).
    assert!(message.contains("answers as a primary"), "{j}");
    assert_eq!(s.sql("SELECT pg_is_in_recovery()"), "t", "nothing changed");
    let forced = promote(&s, &["--force"]).ok();
    assert_eq!(forced["changed"], true, "{forced}");
    assert!(
        forced["warnings"].to_string().contains("--force"),
        "{forced}"
    );
    assert_eq!(s.sql("SELECT pg_is_in_recovery()"), "f");
    // Both take writes now: check names it.
    let r = pgrepctl([
        "check",
        "--json",
        "--primary",
        &p.conninfo(),
        "--standby",
        &s.conninfo(),
    ]);
    assert_eq!(r.code(), 2, "{}", r.stdout());
    assert!(
        harness::problem_codes(&r.json()).contains(&"SPLIT_BRAIN".to_string()),
        "{}",
        r.stdout()
    );
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    s.stop();
    promote(&s, &[]).fails(1, "SERVER_NOT_RUNNING");
    let tmp = harness::tempdir();
    let r = promote_dir(tmp.path());
    assert_ne!(r.code(), 0);
    assert_eq!(r.json()["ok"], false);
}

fn promote_dir(dir: &std::path::Path) -> harness::Run {
    pgrepctl(["promote", "--json", "-D", dir.to_str().unwrap()])
}

/// A -D that is no data directory (missing, a file, an empty directory) is
/// said to be one, for every command that acts on a local node, rather
/// than blamed on permissions.
#[test]
fn a_wrong_data_directory_is_named_as_such() {
    let tmp = harness::tempdir();
    let file = tmp.path().join("file");
    std::fs::write(&file, "").unwrap();
    let missing = tmp.path().join("missing");
    for (dir, why) in [
        (missing.as_path(), "it does not exist"),
        (file.as_path(), "not a directory"),
        (tmp.path(), "no PG_VERSION"),
    ] {
        let d = dir.to_str().unwrap();
        for args in [
            vec!["promote", "--json", "-D", d],
            vec!["follow", "--json", "-D", d, "--primary", "host=127.0.0.1"],
            vec!["rejoin", "--json", "-D", d, "--primary", "host=127.0.0.1"],
        ] {
            let r = pgrepctl(&args);
            let j = r.fails(1, "NOT_A_DATA_DIRECTORY");
            let msg = j["error"]["message"].as_str().unwrap();
            assert!(msg.contains(why), "{args:?}: {msg}");
            assert!(!r.stderr().contains("OS user"), "{}", r.stderr());
        }
    }
    assert!(!missing.exists());
}
