//! wal-push, wal-fetch and wal-prune: as archive_command and
//! restore_command of real servers (run by the server, as its OS user),
//! and by hand for what a server cannot easily provoke (a conflicting file,
//! a push killed mid-copy, an interrupted prune).

use crate::harness::{self, Cluster, Test};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const BIN: &str = env!("CARGO_BIN_EXE_pgrepctl");

/// An empty archive directory the server's OS user owns.
fn archive_dir() -> (tempfile::TempDir, PathBuf) {
    let t = harness::tempdir();
    let dir = t.path().join("archive");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    harness::chown_pg(&dir);
    (t, dir)
}

/// A primary whose archive_command is pgrepctl's wal-push into `dir`.
fn archiving_primary(dir: &Path) -> Cluster {
    Cluster::builder()
        .conf("archive_mode = on")
        .conf(&format!(
            "archive_command = '{BIN} wal-push %p {}'",
            dir.display()
        ))
        .init()
}

/// Poll (30 s) until `f` holds.
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// Switch to a new segment and wait until the one switched from is
/// archived; returns its name.
fn switch_and_archive(c: &Cluster, dir: &Path) -> String {
    c.sql("CREATE TABLE IF NOT EXISTS t (i int); INSERT INTO t SELECT generate_series(1, 100)");
    let name = c.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    c.sql("SELECT pg_switch_wal()");
    wait_for(&format!("{name} in the archive"), || {
        dir.join(&name).exists()
    });
    name
}

/// pgrepctl's own temp files in `dir`.
fn temps(dir: &Path) -> Vec<String> {
    harness::listing(dir)
        .into_iter()
        .filter(|n| n.contains(".pgrepctl-wal."))
        .collect()
}

#[test]
fn archive_command_pushes_segments_and_a_duplicate_is_judged_by_content() {
    let (_t, dir) = archive_dir();
    let primary = archiving_primary(&dir);
    let name = switch_and_archive(&primary, &dir);
    let archived = dir.join(&name);
    assert_eq!(std::fs::metadata(&archived).unwrap().len(), 16 << 20);
    wait_for("pg_stat_archiver to count it", || {
        primary.sql("SELECT last_archived_wal FROM pg_stat_archiver") == name
    });
    assert_eq!(
        primary.sql("SELECT failed_count FROM pg_stat_archiver"),
        "0"
    );
    assert!(temps(&dir).is_empty());

    // A retry of the same file (as after a crash before the server noted
    // success): exit 0, nothing printed, the archived file as it was.
    let src = harness::tempdir();
    let same = src.path().join(&name);
    std::fs::copy(&archived, &same).unwrap();
    let before = std::fs::read(&archived).unwrap();
    let r = Test::new(["wal-push".as_ref(), same.as_os_str(), dir.as_os_str()]).run();
    assert_eq!(
        (r.code(), r.stdout(), r.stderr()),
        (0, String::new(), String::new())
    );

    // Another file of that name: refused, never overwritten, one line.
    let other_dir = harness::tempdir();
    let other = other_dir.path().join(&name);
    let mut bytes = before.clone();
    bytes[1000] ^= 0xFF;
    std::fs::write(&other, &bytes).unwrap();
    let r = Test::new(["wal-push".as_ref(), other.as_os_str(), dir.as_os_str()]).run();
    assert!((1..=125).contains(&r.code()), "exit {}", r.code());
    assert_eq!(r.stderr().lines().count(), 1, "{}", r.stderr());
    assert!(r.stderr().contains(&archived.display().to_string()));
    assert!(r.stderr().contains(&other.display().to_string()));
    assert_eq!(std::fs::read(&archived).unwrap(), before);
    let j = Test::new([
        "--json".as_ref(),
        "wal-push".as_ref(),
        other.as_os_str(),
        dir.as_os_str(),
    ])
    .run()
    .fails(1, "ARCHIVE_CONFLICT");
    assert_eq!(j["command"], "wal-push");
    assert!(temps(&dir).is_empty());
}

#[test]
fn push_refuses_names_postgresql_does_not_archive() {
    let (_t, dir) = archive_dir();
    let src = harness::tempdir();
    let f = src.path().join("postgresql.conf");
    std::fs::write(&f, "x").unwrap();
    let r = Test::new(["wal-push".as_ref(), f.as_os_str(), dir.as_os_str()]).run();
    assert_eq!(r.code(), 2);
    assert_eq!(r.stderr().lines().count(), 1, "{}", r.stderr());
    assert!(harness::listing(&dir).is_empty());
    // A missing archive directory is a failure the server counts.
    let seg = src.path().join("000000010000000000000001");
    std::fs::write(&seg, "x").unwrap();
    let gone = dir.join("not-mounted");
    let r = Test::new(["wal-push".as_ref(), seg.as_os_str(), gone.as_os_str()]).run();
    assert_eq!(r.code(), 1);
    assert!(!gone.exists());
}

#[test]
fn a_push_killed_mid_copy_leaves_no_final_file_and_the_next_push_cleans_up() {
    let (_t, dir) = archive_dir();
    let src = harness::tempdir();
    let seg = src.path().join("000000010000000000000042");
    let bytes: Vec<u8> = (0..(16u32 << 20)).map(|i| (i % 253) as u8).collect();
    std::fs::write(&seg, &bytes).unwrap();
    let mut child = std::process::Command::new(BIN)
        .args(["wal-push".as_ref(), seg.as_os_str(), dir.as_os_str()])
        .env("PGREPCTL_WAL_COPY_DELAY_MS", "200")
        .spawn()
        .unwrap();
    wait_for("the temp file", || !temps(&dir).is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!dir.join("000000010000000000000042").exists());
    let left = temps(&dir);
    assert_eq!(left.len(), 1, "{left:?}");

    // A fresh temp file (a push that may still run) is left alone ...
    let r = Test::new(["wal-push".as_ref(), seg.as_os_str(), dir.as_os_str()]).run();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(temps(&dir), left);
    // ... one older than a minute is from a dead push, and goes.
    let old = SystemTime::now() - Duration::from_secs(120);
    std::fs::File::options()
        .write(true)
        .open(dir.join(&left[0]))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let r = Test::new(["wal-push".as_ref(), seg.as_os_str(), dir.as_os_str()]).run();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(temps(&dir).is_empty());
    assert_eq!(
        std::fs::read(dir.join("000000010000000000000042")).unwrap(),
        bytes
    );
}

#[test]
fn fetch_restores_exactly_the_name_asked_for() {
    let (_t, dir) = archive_dir();
    std::fs::write(dir.join("000000010000000000000007.partial"), "partial").unwrap();
    std::fs::write(
        dir.join("00000002.history"),
        "1\t0/7000000\tno recovery target specified\n",
    )
    .unwrap();
    let pgwal = harness::tempdir();
    let path = pgwal.path().join("RECOVERYXLOG");
    let fetch = |name: &str| {
        Test::new([
            "wal-fetch".as_ref(),
            name.as_ref(),
            path.as_os_str(),
            dir.as_os_str(),
        ])
        .run()
    };
    // Missing: exit 1, quietly, no PATH (the .partial is not the segment).
    let r = fetch("000000010000000000000007");
    assert_eq!(
        (r.code(), r.stdout(), r.stderr()),
        (1, String::new(), String::new())
    );
    assert!(!path.exists());
    let r = fetch("00000002.history");
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("1\t0/7000000")
    );
    let r = fetch("000000010000000000000007.partial");
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "partial");
    assert_eq!(harness::listing(pgwal.path()), vec!["RECOVERYXLOG"]);
    let r = fetch("../etc/passwd");
    assert_eq!(r.code(), 2);
    assert_eq!(r.stderr().lines().count(), 1, "{}", r.stderr());
}

/// Give the stopped standby restore_command = wal-fetch; with `stream`
/// false also an empty primary_conninfo, so what it replays next can only
/// come through restore_command. Later lines win, in postgresql.auto.conf
/// (12+) as in recovery.conf (10-11).
fn restore_from(standby: &Cluster, dir: &Path, stream: bool) {
    let file = standby.data.join(if standby.major >= 12 {
        "postgresql.auto.conf"
    } else {
        "recovery.conf"
    });
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(&format!(
        "restore_command = '{BIN} wal-fetch %f %p {}'\n",
        dir.display()
    ));
    if !stream {
        text.push_str("primary_conninfo = ''\n");
    }
    standby.write_as_pg(&file, &text);
}

#[test]
fn a_standby_catches_up_from_the_archive_through_wal_fetch() {
    let (_t, dir) = archive_dir();
    let primary = archiving_primary(&dir);
    let mut standby = Cluster::standby_of(&primary, "s1");
    standby.stop();
    restore_from(&standby, &dir, false);
    primary.sql("CREATE TABLE caught (v text); INSERT INTO caught VALUES ('from the archive')");
    switch_and_archive(&primary, &dir);
    standby.start();
    wait_for("the standby to replay from the archive", || {
        standby
            .try_sql("SELECT v FROM caught")
            .is_ok_and(|v| v == "from the archive")
    });
    assert_eq!(
        standby.sql("SELECT count(*) FROM pg_stat_wal_receiver"),
        "0"
    );
    let log = std::fs::read_to_string(&standby.log).unwrap();
    assert!(log.contains("restored log file"), "{log}");
    // Nothing half-written was left in pg_wal.
    let pgwal = harness::listing(&standby.data.join("pg_wal"));
    assert!(pgwal.iter().all(|n| !n.contains("pgrepctl")), "{pgwal:?}");
}

/// The file name of the segment holding `lsn` (16MB segments), as
/// XLByteToSeg computes it — what the standby needs from on.
fn segment_of(lsn: &str, timeline: u32) -> String {
    let (hi, lo) = lsn.split_once('/').unwrap();
    let lsn = (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap();
    let segno = lsn >> 24;
    format!("{timeline:08X}{:08X}{:08X}", segno >> 8, segno & 0xFF)
}

#[test]
fn prune_keeps_what_the_standby_and_the_slot_still_need() {
    let (_t, dir) = archive_dir();
    let primary = archiving_primary(&dir);
    let standby = Cluster::standby_of(&primary, "s1");
    primary.sql("SELECT pg_create_physical_replication_slot('keep', true)");
    for _ in 0..3 {
        switch_and_archive(&primary, &dir);
    }
    // A restartpoint on the standby: its redo moves past the old segments.
    primary.sql("CHECKPOINT");
    let lsn = primary.sql("SELECT pg_current_wal_lsn()");
    wait_for("the standby to replay the checkpoint", || {
        standby.sql(&format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'")) == "t"
    });
    standby.sql("CHECKPOINT");
    switch_and_archive(&primary, &dir);
    std::fs::write(dir.join("00000001.history"), "").unwrap();
    let redo = standby.sql("SELECT (pg_control_checkpoint()).redo_lsn");
    let need = segment_of(&redo, 1);
    let slot = segment_of(
        &primary.sql("SELECT restart_lsn FROM pg_replication_slots"),
        1,
    );
    assert!(
        slot < need,
        "the slot reserved before the switches: {slot} {need}"
    );

    let before = harness::listing(&dir);
    let args = |extra: &[&str]| {
        let mut a = vec![
            "--json".to_string(),
            "wal-prune".into(),
            dir.display().to_string(),
        ];
        a.extend(["--standby".into(), standby.conninfo()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let j = Test::new(args(&["--dry-run"])).run().ok();
    assert_eq!(j["keep_from"], need.as_str());
    assert_eq!(harness::listing(&dir), before, "a dry run removes nothing");
    let listed: Vec<String> = serde_json::from_value(j["removed"].clone()).unwrap();
    assert!(!listed.is_empty() && listed.iter().all(|n| n[8..] < need[8..]));

    // With the primary's slot too, the slot's older position wins.
    let primary_ci = primary.conninfo();
    let j = Test::new(args(&["--primary", &primary_ci, "--dry-run"]))
        .run()
        .ok();
    assert_eq!(j["keep_from"], slot.as_str());

    let j = Test::new(args(&[])).run().ok();
    assert_eq!(j["changed"], !listed.is_empty());
    let after = harness::listing(&dir);
    for n in &before {
        let gone = !after.contains(n);
        let old = n.len() >= 24
            && !n.ends_with(".history")
            && !n.ends_with(".backup")
            && n[8..24] < need[8..];
        assert_eq!(gone, old, "{n}: gone {gone}, keep from {need}");
    }
    assert!(after.contains(&"00000001.history".to_string()));
    assert!(
        after.iter().any(|n| n.ends_with(".backup")),
        "the standby's base backup left a .backup file, kept: {after:?}"
    );
}

/// The positions of another cluster's servers say nothing about this
/// archive's WAL: refused before anything is removed.
#[test]
fn prune_by_another_clusters_positions_is_refused() {
    let (_t, dir) = archive_dir();
    let a = archiving_primary(&dir);
    switch_and_archive(&a, &dir);
    let newest = switch_and_archive(&a, &dir);
    let b = Cluster::new();
    let b_standby = Cluster::standby_of(&b, "sb");
    let before = harness::listing(&dir);
    let prune = |extra: &[&str]| {
        let mut args = vec!["--json", "wal-prune", dir.to_str().unwrap()];
        args.extend(extra);
        Test::new(args).run()
    };

    let j =
        prune(&["--primary", &b.conninfo(), "--keep-from", &newest]).fails(1, "SYSTEM_ID_MISMATCH");
    let message = j["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("({newest}) was written by")),
        "{j}"
    );
    assert_eq!(harness::listing(&dir), before);

    let j = prune(&[
        "--primary",
        &a.conninfo(),
        "--standby",
        &b_standby.conninfo(),
    ])
    .fails(1, "SYSTEM_ID_MISMATCH");
    let message = j["error"]["message"].as_str().unwrap();
    assert!(message.contains("different database systems"), "{j}");
    assert_eq!(harness::listing(&dir), before);

    // The archiving cluster's own primary: pruned as asked.
    let j = prune(&["--primary", &a.conninfo(), "--keep-from", &newest]).ok();
    assert_eq!(j["changed"], true, "{j}");
    assert!(harness::listing(&dir).contains(&newest));
}

#[test]
fn an_interrupted_prune_leaves_no_hole_and_a_rerun_finishes() {
    let (_t, dir) = archive_dir();
    for i in 1..=6 {
        std::fs::write(dir.join(format!("0000000100000000000000{i:02X}")), "x").unwrap();
    }
    std::fs::write(dir.join("000000010000000000000003.00000028.backup"), "b").unwrap();
    let prune = |env: Option<&str>| {
        let t = Test::new([
            "wal-prune".as_ref(),
            dir.as_os_str(),
            "--keep-from".as_ref(),
            "000000020000000000000005".as_ref(),
        ]);
        match env {
            Some(n) => t.env("PGREPCTL_KILL_AFTER_STEP", n),
            None => t,
        }
        .run()
    };
    let r = prune(Some("2"));
    assert_eq!(r.code(), -1, "killed: {}", r.stderr());
    assert_eq!(
        harness::listing(&dir),
        vec![
            "000000010000000000000003",
            "000000010000000000000003.00000028.backup",
            "000000010000000000000004",
            "000000010000000000000005",
            "000000010000000000000006",
        ]
    );
    let r = prune(None);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    // The backup history file stays, as pg_archivecleanup keeps it.
    assert_eq!(
        harness::listing(&dir),
        vec![
            "000000010000000000000003.00000028.backup",
            "000000010000000000000005",
            "000000010000000000000006"
        ]
    );
    let r = Test::new([
        "wal-prune".as_ref(),
        dir.as_os_str(),
        "--keep-from".as_ref(),
        "000000020000000000000005".as_ref(),
        "--clean-backup-history".as_ref(),
    ])
    .run();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(
        harness::listing(&dir),
        vec!["000000010000000000000005", "000000010000000000000006"]
    );
    let r = Test::new(["wal-prune", "/nonexistent", "--keep-from", "nonsense"]).run();
    assert_eq!(r.code(), 2);
}

#[test]
fn after_a_promotion_the_history_and_partial_files_reach_the_archive() {
    let (_t, dir) = archive_dir();
    let primary = archiving_primary(&dir);
    // The copy inherits archive_mode and archive_command (postgresql.conf).
    let standby = Cluster::standby_of(&primary, "s1");
    primary.sql("CREATE TABLE t (i int); INSERT INTO t VALUES (1)");
    let lsn = primary.sql("SELECT pg_current_wal_lsn()");
    wait_for("the standby to replay", || {
        standby.sql(&format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'")) == "t"
    });
    let last = primary.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    standby
        .local()
        .ctl(pgrepctl::pg::cluster::Ctl::Promote, Duration::from_secs(60))
        .unwrap();
    wait_for("the promotion", || {
        standby.sql("SELECT pg_is_in_recovery()") == "f"
    });
    wait_for("00000002.history in the archive", || {
        dir.join("00000002.history").exists()
    });
    let partial = format!("{last}.partial");
    wait_for(&format!("{partial} in the archive"), || {
        dir.join(&partial).exists()
    });
    // The old primary, still running on timeline 1, archives the complete
    // segment of the same number: no conflict with the .partial.
    primary.sql("SELECT pg_switch_wal()");
    wait_for(&format!("{last} in the archive"), || {
        dir.join(&last).exists()
    });
    let next = switch_and_archive(&standby, &dir);
    assert!(next.starts_with("00000002"), "{next}");
    for c in [&primary, &standby] {
        assert_eq!(c.sql("SELECT failed_count FROM pg_stat_archiver"), "0");
    }
    let history = std::fs::read_to_string(dir.join("00000002.history")).unwrap();
    assert!(history.starts_with("1\t"), "{history}");
}

#[test]
fn a_standby_whose_wal_was_recycled_catches_up_from_the_archive_then_streams() {
    let (_t, dir) = archive_dir();
    let primary = archiving_primary(&dir);
    let mut standby = Cluster::standby_of(&primary, "s1");
    primary.sql("CHECKPOINT");
    let lsn = primary.sql("SELECT pg_current_wal_lsn()");
    wait_for("the standby to replay", || {
        standby.sql(&format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'")) == "t"
    });
    standby.sql("CHECKPOINT");
    standby.stop();
    let needed = primary.sql(&format!("SELECT pg_walfile_name('{lsn}')"));
    primary.sql("CREATE TABLE big AS SELECT i, md5(i::text) AS m FROM generate_series(1, 20000) i");
    for _ in 0..4 {
        switch_and_archive(&primary, &dir);
    }
    primary.sql("CHECKPOINT");
    primary.sql("CHECKPOINT");
    let gone = format!("SELECT count(*) FROM pg_ls_waldir() WHERE name = '{needed}'");
    assert_eq!(
        primary.sql(&gone),
        "0",
        "{needed} was recycled on the primary"
    );
    restore_from(&standby, &dir, true);
    standby.start();
    standby.wait_streaming();
    let sum = "SELECT count(*), md5(string_agg(m, ',' ORDER BY i)) FROM big";
    let lsn = primary.sql("SELECT pg_current_wal_lsn()");
    wait_for("the standby to catch up", || {
        standby.sql(&format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'")) == "t"
    });
    assert_eq!(standby.sql(sum), primary.sql(sum));
    let log = std::fs::read_to_string(&standby.log).unwrap();
    assert!(log.contains("restored log file"), "{log}");
}
