//! The harness's own fixtures work on this major.

use crate::harness::Cluster;

#[test]
fn hand_built_standby_streams() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    assert_eq!(s.sql("SELECT pg_is_in_recovery()"), "t");
    assert_eq!(
        p.sql("SELECT application_name FROM pg_stat_replication"),
        "s1"
    );
}

/// The `Test` builder lists what a run wrote under a watched directory,
/// and only that.
#[test]
fn test_builder_lists_files_written() {
    let dir = crate::harness::tempdir();
    std::fs::write(dir.path().join("untouched"), "mine").unwrap();
    let r = crate::harness::Test::new(["generate-docs"])
        .arg(dir.path())
        .env("PGREPCTL_TEST_MARKER", "1")
        .stdin("ignored")
        .watch(dir.path())
        .run();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let written = r.written();
    assert!(
        written.contains(&dir.path().join("man/pgrepctl.1")),
        "{written:?}"
    );
    assert!(
        !written.contains(&dir.path().join("untouched")),
        "{written:?}"
    );
}

/// Clusters copied from one initdb template are separate database
/// systems (tests rely on it to tell clusters apart), and each recovers
/// from its own WAL under its new identifier.
#[test]
fn clusters_from_one_template_are_separate_systems() {
    let a = Cluster::new();
    let mut b = Cluster::new();
    let id = |c: &Cluster| c.sql("SELECT system_identifier FROM pg_control_system()");
    assert_ne!(id(&a), id(&b));
    // A crash makes the restart replay WAL from the template's checkpoint,
    // whose segment header must carry the copy's identifier.
    b.sql("CREATE TABLE t AS SELECT 1 AS x");
    let out = crate::harness::as_pg(b.bindir.join("pg_ctl"))
        .arg("-D")
        .arg(&b.data)
        .args(["-m", "immediate", "-w", "stop"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    b.start();
    assert_eq!(b.sql("SELECT count(*) FROM t"), "1");
}
