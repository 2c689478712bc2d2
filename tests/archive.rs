//! A WAL archive behind streaming, configured by init-master
//! (--archive-dir, --archive-command, --archive-library) and clone-standby
//! (--restore-dir, --restore-command, --archive-cleanup) on real servers:
//! the values written exactly, a dry run that reports what the real run
//! does, reruns that change nothing, and refusals that change nothing.

use crate::harness::fixtures::{clone, prepared_primary};
use crate::harness::{self, Cluster};
use crate::init_master::init_master;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The pgrepctl binary as the server will run it (symlinks resolved).
fn pgrepctl_path() -> PathBuf {
    std::fs::canonicalize(env!("CARGO_BIN_EXE_pgrepctl")).unwrap()
}

/// An empty archive directory the server's OS user owns, beside the
/// cluster (its name has a space: the commands must quote it).
fn archive_dir(c: &Cluster) -> PathBuf {
    let d = c.tmp.path().join("wal archive");
    std::fs::create_dir(&d).unwrap();
    harness::chown_pg(&d);
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Each change as `kind path summary diff`, to compare a dry run with the
/// real run.
fn changes(j: &Value) -> Vec<String> {
    j["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {} {} {}", c["kind"], c["path"], c["summary"], c["diff"]))
        .collect()
}

fn conf_files(c: &Cluster) -> Vec<PathBuf> {
    vec![
        c.conf_path(),
        c.hba_path(),
        c.data.join("postgresql.auto.conf"),
    ]
}

fn snapshot(files: &[PathBuf]) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    harness::snapshot(&paths)
}

#[test]
fn archive_dir_dry_run_is_the_real_run_and_the_restart_comes_with_if_needed() {
    let c = Cluster::new();
    let dir = archive_dir(&c);
    let want = format!("{} wal-push %p '{}'", s(&pgrepctl_path()), s(&dir));
    let args = ["--allow", "127.0.0.1/32", "--archive-dir", s(&dir)];
    let files = conf_files(&c);
    let before = snapshot(&files);

    let dry = init_master(&c, &[&args[..], &["--dry-run"]].concat()).ok();
    assert_eq!(snapshot(&files), before, "a dry run changes nothing");
    assert_eq!(dry["restart_required"], true, "{dry}");
    let real = init_master(&c, &args).ok();
    assert_eq!(changes(&dry), changes(&real), "the dry run is the real run");
    assert_eq!(real["restart_required"], true, "archive_mode: {real}");
    let conf = std::fs::read_to_string(c.conf_path()).unwrap();
    assert!(
        conf.contains(&format!("archive_command = '{}'", want.replace('\'', "''"))),
        "{conf}"
    );
    assert!(conf.contains("archive_mode = on"), "{conf}");
    assert!(conf.contains("archive_timeout = 60s"), "{conf}");
    assert_eq!(c.sql("SHOW archive_mode"), "off", "not restarted");

    // Without --restart the rerun changes nothing and still says so.
    let again = init_master(&c, &args).ok();
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(again["restart_required"], true, "{again}");

    let restarted = init_master(&c, &[&args[..], &["--restart", "if-needed"]].concat()).ok();
    assert_eq!(restarted["restart_required"], false, "{restarted}");
    assert!(
        restarted["changes"].to_string().contains("restart"),
        "{restarted}"
    );
    assert_eq!(c.sql("SHOW archive_mode"), "on");
    assert_eq!(c.sql("SHOW archive_command"), want);
    assert_eq!(c.sql("SHOW archive_timeout"), "1min");
    crate::init_master::assert_noop(
        &c,
        &args,
        &files.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
    );
}

#[test]
fn an_archive_dir_the_server_cannot_write_is_refused_with_nothing_changed() {
    let c = Cluster::new();
    let files = conf_files(&c);
    let before = snapshot(&files);
    let missing = c.tmp.path().join("no such dir");
    let closed = c.tmp.path().join("closed");
    std::fs::create_dir(&closed).unwrap();
    if !harness::is_root() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    // As root the directory is root's (0755): writable by pgrepctl,
    // not by the postgres user the server runs as.
    for (dir, says) in [
        (&missing, "is not a directory"),
        (&closed, "not writable by"),
    ] {
        for dry in [true, false] {
            let mut args = vec!["--allow", "127.0.0.1/32", "--archive-dir", s(dir)];
            if dry {
                args.push("--dry-run");
            }
            let j = init_master(&c, &args).fails(1, "FILE_NOT_WRITABLE");
            let msg = j["error"]["message"].as_str().unwrap();
            assert!(msg.contains(says), "{j}");
            if harness::is_root() && dir == &closed {
                assert!(msg.contains("postgres"), "names the server's user: {j}");
            }
            assert!(
                j["error"]["hint"]
                    .to_string()
                    .contains("nothing was changed")
            );
        }
    }
    assert_eq!(snapshot(&files), before, "nothing changed");
    assert_eq!(
        c.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'replicator'"),
        "0"
    );
    assert_eq!(harness::listing(&closed), Vec::<String>::new());
}

#[test]
fn conflicting_and_incomplete_archive_flags_are_usage_errors() {
    let c = Cluster::new();
    let dir = archive_dir(&c);
    let base = ["--allow", "127.0.0.1/32"];
    for (extra, code) in [
        (
            vec!["--archive-dir", s(&dir), "--archive-command", "cp %p /x/%f"],
            "CONFLICTING_FLAGS",
        ),
        (
            vec!["--archive-command", "cp %p /x/%f", "--archive-library"],
            "CONFLICTING_FLAGS",
        ),
        (vec!["--archive-timeout", "30s"], "USAGE"),
        (vec!["--archive-library"], "USAGE"),
        (
            vec!["--archive-dir", s(&dir), "--archive-timeout", "1.5s"],
            "INVALID_VALUE",
        ),
    ] {
        init_master(&c, &[&base[..], &extra[..]].concat()).fails(2, code);
    }
    let p = &c;
    let t = Cluster::clone_target(p);
    for (extra, code) in [
        (
            vec!["--restore-dir", s(&dir), "--restore-command", "cp /x/%f %p"],
            "CONFLICTING_FLAGS",
        ),
        (vec!["--archive-cleanup"], "USAGE"),
        (
            vec!["--restore-command", "cp /x/%f %p", "--archive-cleanup"],
            "CONFLICTING_FLAGS",
        ),
    ] {
        clone(p, &t, None, &extra).fails(2, code);
    }
    assert!(!t.data.exists());
}

#[test]
fn archive_command_is_written_as_given_with_archive_timeout_off() {
    let c = Cluster::new();
    let cmd = "test ! -f '/mnt/it''s/%f' && cp %p \"/mnt/x/%f\"";
    let args = [
        "--allow",
        "127.0.0.1/32",
        "--archive-command",
        cmd,
        "--archive-timeout",
        "0",
        "--restart",
        "if-needed",
    ];
    let j = init_master(&c, &args).ok();
    assert_eq!(j["restart_required"], false, "{j}");
    assert_eq!(c.sql("SHOW archive_command"), cmd);
    assert_eq!(c.sql("SHOW archive_timeout"), "0");
    let files = conf_files(&c);
    crate::init_master::assert_noop(
        &c,
        &args,
        &files.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
    );
}

/// Until `dir` holds a WAL segment file, or `what` fails after 60 s.
fn wait_for_segment(dir: &Path, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let names = harness::listing(dir);
        if let Some(n) = names.iter().find(|n| n.len() == 24) {
            return n.clone();
        }
        assert!(Instant::now() < deadline, "{what}: {names:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn archive_library_is_for_15_and_archives_through_basic_archive() {
    let c = Cluster::new();
    let dir = archive_dir(&c);
    let args = [
        "--allow",
        "127.0.0.1/32",
        "--archive-dir",
        s(&dir),
        "--archive-library",
        "--restart",
        "if-needed",
    ];
    let files = conf_files(&c);
    if c.major < 15 {
        let before = snapshot(&files);
        let j = init_master(&c, &args).fails(2, "USAGE");
        assert!(j["error"]["message"].to_string().contains("15"), "{j}");
        assert_eq!(snapshot(&files), before, "nothing changed");
        return;
    }
    let j = init_master(&c, &args).ok();
    assert_eq!(j["restart_required"], false, "{j}");
    assert_eq!(c.sql("SHOW archive_library"), "basic_archive");
    assert_eq!(c.sql("SHOW archive_command"), "");
    let conf = std::fs::read_to_string(c.conf_path()).unwrap();
    assert!(
        conf.contains(&format!("basic_archive.archive_directory = '{}'", s(&dir))),
        "{conf}"
    );
    c.sql("CREATE TABLE t AS SELECT 1 AS x");
    c.sql("SELECT pg_switch_wal()");
    wait_for_segment(&dir, "basic_archive archives a switched segment");
    crate::init_master::assert_noop(
        &c,
        &args,
        &files.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
    );
}

/// The file that holds a standby's recovery settings on this major.
fn recovery_file(c: &Cluster) -> PathBuf {
    if c.major >= 12 {
        c.data.join("postgresql.auto.conf")
    } else {
        c.data.join("recovery.conf")
    }
}

#[test]
fn restore_dir_and_archive_cleanup_are_written_for_the_version_and_a_rerun_changes_nothing() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let dir = archive_dir(&p);
    let st = Cluster::clone_target(&p);
    let args = ["--restore-dir", s(&dir), "--archive-cleanup"];
    let dry = clone(&p, &st, Some(&pw), &[&args[..], &["--dry-run"]].concat()).ok();
    assert!(!st.data.exists(), "a dry run copies nothing");
    let j = clone(&p, &st, Some(&pw), &args).ok();
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    assert_eq!(changes(&dry).len(), changes(&j).len(), "{dry}\n{j}");
    let restore = format!("{} wal-fetch %f %p '{}'", s(&pgrepctl_path()), s(&dir));
    let cleanup = format!(
        "{} '{}' %r",
        s(&st.bindir.join("pg_archivecleanup")),
        s(&dir)
    );
    for (k, v) in [
        ("restore_command", &restore),
        ("archive_cleanup_command", &cleanup),
    ] {
        assert!(dry["changes"].to_string().contains(k), "{dry}");
        let text = std::fs::read_to_string(recovery_file(&st)).unwrap();
        assert!(
            text.contains(&format!("{k} = '{}'", v.replace('\'', "''"))),
            "{text}"
        );
        if st.major >= 12 {
            assert_eq!(&st.sql(&format!("SHOW {k}")), v);
        }
    }
    let w = j["warnings"].to_string();
    assert!(
        w.contains("--archive-cleanup") && w.contains("another standby"),
        "{j}"
    );
    let again = clone(&p, &st, Some(&pw), &args).ok();
    assert_eq!(again["changed"], false, "{again}");
}

#[test]
fn restore_dir_on_a_running_standby_takes_a_reload_from_14_and_a_restart_before() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let dir = archive_dir(&p);
    let st = Cluster::clone_target(&p);
    clone(&p, &st, Some(&pw), &[]).ok();
    let pid = std::fs::read_to_string(st.data.join("postmaster.pid")).unwrap();
    let args = ["--restore-dir", s(&dir)];
    let j = clone(&p, &st, Some(&pw), &args).ok();
    assert_eq!(j["changed"], true, "{j}");
    let text = j["changes"].to_string();
    let pid_after = std::fs::read_to_string(st.data.join("postmaster.pid")).unwrap();
    let first = |t: &str| t.lines().next().unwrap_or("").to_string();
    if st.major >= 14 {
        assert!(text.contains("reloaded"), "{j}");
        assert!(!text.contains("restarted"), "{j}");
        assert_eq!(first(&pid), first(&pid_after), "the same postmaster");
    } else {
        assert!(text.contains("restarted"), "{j}");
        assert!(
            j["warnings"]
                .to_string()
                .contains("restart before PostgreSQL 14"),
            "{j}"
        );
        assert_ne!(first(&pid), first(&pid_after), "a new postmaster");
    }
    if st.major >= 12 {
        let restore = format!("{} wal-fetch %f %p '{}'", s(&pgrepctl_path()), s(&dir));
        assert_eq!(st.sql("SHOW restore_command"), restore);
    }
    assert_eq!(j["restart_required"], false, "{j}");
    let again = clone(&p, &st, Some(&pw), &args).ok();
    assert_eq!(again["changed"], false, "{again}");
}

#[test]
fn a_restore_dir_the_server_cannot_read_is_refused_before_the_copy() {
    if !harness::is_root() {
        return; // the probe needs another user to be refused
    }
    let (p, pw) = prepared_primary(Cluster::builder());
    let closed = p.tmp.path().join("closed");
    std::fs::create_dir(&closed).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let st = Cluster::clone_target(&p);
    let j = clone(&p, &st, Some(&pw), &["--restore-dir", s(&closed)]).fails(1, "FILE_NOT_WRITABLE");
    assert!(
        j["error"]["message"]
            .to_string()
            .contains("not readable by postgres"),
        "{j}"
    );
    assert!(!st.data.exists(), "nothing copied");
}

/// The WAL segment file names in a server's pg_wal, oldest first.
fn wal_segments(c: &Cluster) -> Vec<String> {
    let mut names: Vec<String> = harness::listing(&c.data.join("pg_wal"))
        .into_iter()
        .filter(|n| n.len() == 24 && n.chars().all(|ch| ch.is_ascii_hexdigit()))
        .collect();
    names.sort();
    names
}

/// A table's contents as one checksum, to compare primary and standby.
const CHECKSUM: &str = "SELECT md5(string_agg(id::text || ':' || v, ',' ORDER BY id)) FROM t";

#[test]
fn a_standby_that_fell_behind_catches_up_from_the_archive_and_streams_again() {
    // Little WAL kept: no slot, one segment of wal_keep, small max_wal_size.
    let p = Cluster::builder()
        .conf("max_wal_size = 32MB")
        .conf("min_wal_size = 32MB")
        .init();
    let dir = archive_dir(&p);
    let pw = harness::run::password_file(p.tmp.path(), crate::init_master::PW);
    harness::fixtures::init_master(
        &p,
        &pw,
        &[
            "--allow",
            "127.0.0.1/32",
            "--wal-keep",
            "16MB",
            "--archive-dir",
            s(&dir),
            "--restart",
            "if-needed",
        ],
    )
    .ok();
    p.sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    p.sql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g");
    let mut st = Cluster::clone_target(&p);
    clone(&p, &st, Some(&pw), &["--restore-dir", s(&dir)]).ok();
    st.wait_streaming();
    let needed = p.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    st.stop();

    // Much more than wal_keep while the standby is away, until the
    // primary has removed the segment the standby needs next.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut round = 0;
    while wal_segments(&p)
        .first()
        .is_none_or(|oldest| *oldest <= needed)
    {
        assert!(
            Instant::now() < deadline,
            "the primary kept {needed}: {:?}",
            wal_segments(&p)
        );
        round += 1;
        p.sql(&format!(
            "INSERT INTO t SELECT g, md5(g::text) FROM generate_series({}, {}) g",
            round * 100_000,
            round * 100_000 + 99_999
        ));
        p.sql("SELECT pg_switch_wal()");
        p.sql("CHECKPOINT");
    }
    assert!(
        harness::listing(&dir).contains(&needed),
        "{needed} is in the archive"
    );

    // The clone's directory is root's: the log the harness starts the
    // standby with must be the server's to write.
    std::fs::write(&st.log, "").unwrap();
    harness::chown_pg(&st.log);
    st.start();
    st.wait_streaming();
    let target = p.sql("SELECT pg_current_wal_lsn()");
    let deadline = Instant::now() + Duration::from_secs(60);
    while st.sql(&format!(
        "SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
    )) != "t"
    {
        assert!(Instant::now() < deadline, "the standby never caught up");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(st.sql(CHECKSUM), p.sql(CHECKSUM));
    let log = std::fs::read_to_string(&st.log).unwrap_or_default();
    assert!(
        log.contains("restored log file"),
        "the standby restored WAL from the archive:\n{log}"
    );
    assert_eq!(
        p.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"),
        "1",
        "and streams again"
    );
}
