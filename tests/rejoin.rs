//! rejoin on real servers: the old primary P of a promoted standby S comes
//! back as S's standby — without a rewind after a clean stop, with one
//! after a kill -9 and writes S never had (which the rewind removes, so
//! both sides dump the same data); the rewind preflight refuses before
//! anything changes; --reclone-on-failure keeps the old directory; a
//! major without pg_rewind says so; a dry run and a second run change
//! nothing.

use crate::harness::{self, Cluster, pgrepctl};
use crate::promote::{kill_hard, replayed};
use std::path::{Path, PathBuf};

/// P (wal_log_hints as asked; checksums off; WAL kept), its own port and socket in
/// its postgresql.conf (pgrepctl starts it without the harness's -p/-k),
/// with table t = {1}; S streaming from it.
fn pair(hints: bool) -> (Cluster, Cluster) {
    let mut b = Cluster::builder();
    if hints {
        b = b.conf("wal_log_hints = on");
    }
    let major = harness::major(&harness::bindir());
    if major >= 18 {
        b = b.initdb_arg("--no-data-checksums");
    }
    // pg_rewind reads P's WAL back to the last common checkpoint: kept as
    // init-master keeps it, or the restarts of the tests recycle it.
    b = b.conf(if major >= 13 {
        "wal_keep_size = '256MB'"
    } else {
        "wal_keep_segments = 16"
    });
    let p = b.init();
    let conf = std::fs::read_to_string(p.conf_path()).unwrap();
    p.write_as_pg(
        &p.conf_path(),
        &format!(
            "{conf}\nport = {}\nunix_socket_directories = '{}'\n",
            p.port,
            p.sock.display()
        ),
    );
    p.sql("CREATE TABLE t (i int PRIMARY KEY); INSERT INTO t VALUES (1)");
    let s = Cluster::standby_of(&p, "s1");
    replayed(&s, "SELECT count(*) FROM t", "1");
    (p, s)
}

fn promote(s: &Cluster) {
    pgrepctl(["promote", "--json", "-D", s.data.to_str().unwrap()]).ok();
    s.sql("INSERT INTO t VALUES (2)");
}

fn rejoin(p: &Cluster, s: &Cluster, extra: &[&str]) -> harness::Run {
    let primary = format!("host={} port={} user=postgres", s.sock.display(), s.port);
    let mut args = vec![
        "rejoin",
        "--json",
        "-D",
        p.data.to_str().unwrap(),
        "--primary",
        &primary,
        "--wait",
        "60s",
    ];
    // A stopped node has no running server to name its binaries.
    let bindir = p.bindir.display().to_string();
    if !extra.contains(&"--bindir") {
        args.extend(["--bindir", &bindir]);
    }
    args.extend(extra);
    pgrepctl(args)
}

/// `pg_dump --data-only` of a node, without the lines that differ by
/// run (`\restrict` keys).
fn dump(c: &Cluster) -> String {
    let mut cmd = harness::as_pg(c.bindir.join("pg_dump"));
    cmd.arg("-h").arg(&c.sock).args([
        "-p",
        &c.port.to_string(),
        "-U",
        "postgres",
        "--data-only",
        "postgres",
    ]);
    harness::check(cmd.output().unwrap(), "pg_dump")
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn has_rewind(c: &Cluster) -> bool {
    let ok = c.bindir.join("pg_rewind").is_file();
    if !ok {
        eprintln!(
            "skipped: {} has no pg_rewind (the no-pg_rewind test covers this major)",
            c.bindir.display()
        );
    }
    ok
}

/// After the rejoin P streams from S: a row written on S arrives.
fn follows(p: &Cluster, s: &Cluster) {
    assert_eq!(p.sql("SELECT pg_is_in_recovery()"), "t");
    s.sql("INSERT INTO t VALUES (3)");
    replayed(p, "SELECT count(*) FROM t WHERE i = 3", "1");
    assert_eq!(dump(p), dump(s), "both sides hold the same data");
}

#[test]
fn a_cleanly_stopped_primary_follows_without_a_rewind() {
    let (p, s) = pair(false);
    if !p.bindir.join("pg_controldata").is_file() {
        eprintln!(
            "skipped: {} has no pg_controldata (the no-pg_rewind test covers this major)",
            p.bindir.display()
        );
        return;
    }
    p.stop();
    // S not promoted yet: a standby is no new primary, with or without
    // --reclone-on-failure; P's directory is left as it was.
    let control = std::fs::read(p.data.join("global/pg_control")).unwrap();
    let files = harness::listing(&p.data);
    for extra in [&[][..], &["--reclone-on-failure"][..]] {
        let j = rejoin(&p, &s, extra).fails(1, "NOT_A_PRIMARY");
        assert!(
            j["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("pgrepctl promote"),
            "{j}"
        );
    }
    assert_eq!(
        std::fs::read(p.data.join("global/pg_control")).unwrap(),
        control
    );
    assert_eq!(harness::listing(&p.data), files);
    assert!(!p.running());
    assert_eq!(s.sql("SELECT pg_is_in_recovery()"), "t");
    promote(&s);

    let dry = rejoin(&p, &s, &["--dry-run", "--slot", "old_primary"]).ok();
    assert_eq!(dry["decision"]["action"], "follow", "{dry}");
    assert_eq!(dry["changed"], true, "{dry}");
    assert!(!p.running(), "a dry run starts nothing");
    assert_eq!(s.sql("SELECT count(*) FROM pg_replication_slots"), "0");

    let j = rejoin(&p, &s, &["--slot", "old_primary"]).ok();
    assert_eq!(
        harness::summaries(&dry),
        harness::summaries(&j),
        "dry run {dry}\nreal run {j}"
    );
    assert_eq!(j["changed"], true, "{j}");
    follows(&p, &s);
    replayed(
        &s,
        "SELECT active FROM pg_replication_slots WHERE slot_name = 'old_primary'",
        "t",
    );

    let again = rejoin(&p, &s, &["--slot", "old_primary"]).ok();
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(again["following"], true, "{again}");
}

#[test]
fn a_killed_primary_with_diverging_writes_is_rewound() {
    let (mut p, s) = pair(true);
    if !has_rewind(&p) {
        return;
    }
    kill_hard(&p);
    promote(&s);
    // P comes back as a primary for a while and takes writes S never has.
    p.start();
    p.sql("INSERT INTO t VALUES (100), (101)");
    kill_hard(&p);

    let dry = rejoin(&p, &s, &["--dry-run"]).ok();
    assert_eq!(dry["decision"]["action"], "rewind", "{dry}");
    assert_eq!(dry["decision"]["crash_recovery"], true, "{dry}");
    assert!(!p.running());
    let never = rejoin(&p, &s, &["--rewind", "never"]).fails(1, "REWIND_NEEDED");
    assert!(
        never["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("--rewind auto"),
        "{never}"
    );

    let conf_before = std::fs::read_to_string(p.conf_path()).unwrap();
    let j = rejoin(&p, &s, &[]).ok();
    assert_eq!(
        harness::summaries(&dry),
        harness::summaries(&j),
        "dry run {dry}\nreal run {j}"
    );
    assert!(j["rewind"].as_str().unwrap().contains("diverged"), "{j}");
    assert_eq!(
        std::fs::read_to_string(p.conf_path()).unwrap(),
        conf_before,
        "P's own postgresql.conf was put back"
    );
    assert_eq!(p.sql("SELECT count(*) FROM t WHERE i >= 100"), "0");
    follows(&p, &s);
    assert!(!Path::new(&format!("{}.rejoin-kept", p.data.display())).exists());
    assert_eq!(rejoin(&p, &s, &[]).ok()["changed"], false);
}

fn pgbench(c: &Cluster) -> std::process::Command {
    let mut cmd = harness::as_pg(c.bindir.join("pgbench"));
    cmd.arg("-h")
        .arg(&c.sock)
        .args(["-p", &c.port.to_string(), "-U", "postgres", "-n"]);
    cmd
}

/// The story: P killed under pgbench load (its last commits never
/// reached S), S promoted and written to, P rejoined: whatever P had that
/// S did not is rewound away, and both dump the same.
#[test]
fn a_primary_killed_under_load_is_rewound_to_the_new_primary() {
    let (p, s) = pair(true);
    if !has_rewind(&p) {
        return;
    }
    let init = pgbench(&p)
        .args(["-i", "-s", "1", "postgres"])
        .output()
        .unwrap();
    harness::check(init, "pgbench -i");
    replayed(&s, "SELECT count(*) FROM pgbench_accounts", "100000");
    let mut load = pgbench(&p)
        .args(["-c", "2", "-T", "60", "postgres"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    replayed(&s, "SELECT count(*) > 20 FROM pgbench_history", "t");
    kill_hard(&p);
    let _ = load.kill();
    let _ = load.wait();
    promote(&s);

    let j = rejoin(&p, &s, &[]).ok();
    assert_eq!(j["decision"]["action"], "rewind", "{j}");
    assert_eq!(j["decision"]["crash_recovery"], true, "{j}");
    follows(&p, &s);
}

#[test]
fn rewind_preflight_refusals_change_nothing() {
    let (p, s) = pair(false);
    if !has_rewind(&p) {
        return;
    }
    kill_hard(&p);
    promote(&s);
    let before = harness::snapshot(&[
        &p.data.join("global/pg_control"),
        &p.data.join("postgresql.auto.conf"),
        &p.data.join("postgresql.conf"),
    ]);
    let j = rejoin(&p, &s, &[]).fails(1, "REWIND_NOT_POSSIBLE");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wal_log_hints"),
        "{j}"
    );
    assert_eq!(
        before,
        harness::snapshot(&[
            &p.data.join("global/pg_control"),
            &p.data.join("postgresql.auto.conf"),
            &p.data.join("postgresql.conf"),
        ])
    );
    assert!(!p.running());
    // With --reclone-on-failure a node that cannot be rewound is copied
    // anew, the old directory kept aside.
    let j = rejoin(&p, &s, &["--reclone-on-failure"]).ok();
    assert_eq!(j["decision"]["action"], "reclone", "{j}");
    let kept = j["old_data_directory"]
        .as_str()
        .unwrap_or_else(|| panic!("{j}"));
    assert!(
        std::path::Path::new(kept).join("PG_VERSION").exists(),
        "{j}"
    );
    follows(&p, &s);
}

#[test]
fn a_rewind_role_without_the_grants_is_refused_with_them() {
    let (p, s) = pair(true);
    if !has_rewind(&p) || p.major < 11 {
        return;
    }
    p.stop();
    promote(&s);
    // P diverges after a clean stop: started as a primary again, written to.
    let mut p = p;
    p.start();
    p.sql("INSERT INTO t VALUES (100)");
    p.stop();
    s.sql("CREATE ROLE rw LOGIN");
    let control = std::fs::read(p.data.join("global/pg_control")).unwrap();
    let j = rejoin(&p, &s, &["--rewind-user", "rw"]).fails(1, "NOT_SUPERUSER");
    let hint = j["error"]["hint"].as_str().unwrap().to_string();
    assert!(hint.contains("GRANT EXECUTE ON FUNCTION"), "{j}");
    assert_eq!(
        std::fs::read(p.data.join("global/pg_control")).unwrap(),
        control
    );
    // The GRANTs the hint gives are enough.
    for g in hint
        .split(": ")
        .nth(1)
        .unwrap()
        .split(" — ")
        .next()
        .unwrap()
        .split_inclusive(';')
        .filter(|g| !g.trim().is_empty())
    {
        s.sql(g.trim());
    }
    let j = rejoin(&p, &s, &["--rewind-user", "rw"]).ok();
    assert_eq!(j["decision"]["action"], "rewind", "{j}");
    follows(&p, &s);
}

/// A bindir of links to the real one, with a pg_rewind whose dry run is
/// the real one's and whose real run fails.
fn failing_rewind_bindir(real: &Path, at: &Path) -> PathBuf {
    rewind_bindir(real, at, true)
}

/// A bindir of links to the real one, with a pg_rewind that fails (its dry
/// run too unless `real_dry_run`).
fn rewind_bindir(real: &Path, at: &Path, real_dry_run: bool) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = at.join("bin");
    std::fs::create_dir(&dir).unwrap();
    for e in std::fs::read_dir(real).unwrap().flatten() {
        if e.file_name() != "pg_rewind" {
            std::os::unix::fs::symlink(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    let dry = if real_dry_run {
        format!(
            "case \"$*\" in *--dry-run*) exec {}/pg_rewind \"$@\";; esac\n",
            real.display()
        )
    } else {
        String::new()
    };
    let script = format!("#!/bin/sh\n{dry}echo 'pg_rewind: error: injected failure' >&2\nexit 1\n");
    std::fs::write(dir.join("pg_rewind"), script).unwrap();
    std::fs::set_permissions(
        dir.join("pg_rewind"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    dir
}

#[test]
fn reclone_on_failure_keeps_the_old_directory() {
    let (p, s) = pair(true);
    if !has_rewind(&p) {
        return;
    }
    p.stop();
    promote(&s);
    let mut p = p;
    p.start();
    p.sql("INSERT INTO t VALUES (100)");
    p.stop();
    let tmp = harness::tempdir();
    let bindir = failing_rewind_bindir(&p.bindir, tmp.path());
    let b = bindir.to_str().unwrap();
    let failed = rejoin(&p, &s, &["--bindir", b]).fails(1, "REWIND_FAILED");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("injected"),
        "{failed}"
    );
    assert!(!p.running());

    let j = rejoin(&p, &s, &["--bindir", b, "--reclone-on-failure"]).ok();
    let old = PathBuf::from(j["old_data_directory"].as_str().unwrap());
    assert!(old.join("PG_VERSION").exists(), "{j}");
    assert!(old.display().to_string().contains(".rejoin-"), "{j}");
    assert!(
        j["warnings"].to_string().contains("pg_rewind failed"),
        "{j}"
    );
    follows(&p, &s);
}

#[test]
fn a_major_without_pg_rewind_says_so_and_recloned_on_request() {
    let (p, s) = pair(true);
    if p.bindir.join("pg_rewind").is_file() {
        eprintln!("skipped: {} has pg_rewind", p.bindir.display());
        return;
    }
    p.stop();
    promote(&s);
    let mut p = p;
    p.start();
    p.sql("INSERT INTO t VALUES (100)");
    p.stop();
    // Without pg_controldata either (10's build here), pg_control cannot
    // be read at all: that is said first.
    let (code, missing) = if p.bindir.join("pg_controldata").is_file() {
        ("REWIND_NOT_POSSIBLE", "has no pg_rewind")
    } else {
        ("TOOL_NOT_FOUND", "has no pg_controldata")
    };
    let j = rejoin(&p, &s, &[]).fails(1, code);
    assert!(
        j["error"]["message"].as_str().unwrap().contains(missing),
        "{j}"
    );
    assert!(
        j["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("--reclone-on-failure"),
        "{j}"
    );
    let j = rejoin(&p, &s, &["--reclone-on-failure"]).ok();
    assert_eq!(j["decision"]["action"], "reclone", "{j}");
    follows(&p, &s);
}

#[test]
fn a_running_node_is_refused_unless_it_already_follows() {
    let (p, s) = pair(false);
    // S streams from P: nothing to do.
    let j = rejoin(&s, &p, &[]).ok();
    assert_eq!(j["changed"], false, "{j}");
    assert_eq!(j["following"], true, "{j}");
    // P runs as a primary: stopping it is the DBA's call.
    let j = rejoin(&p, &s, &[]).fails(1, "POSTMASTER_RUNNING");
    assert!(
        j["error"]["hint"].as_str().unwrap().contains("pg_ctl stop"),
        "{j}"
    );
    assert_eq!(p.sql("SELECT pg_is_in_recovery()"), "f");
}

#[test]
fn another_database_system_is_refused_with_the_clone_command() {
    let p = Cluster::new();
    if !p.bindir.join("pg_controldata").is_file() {
        eprintln!("skipped: {} has no pg_controldata", p.bindir.display());
        return;
    }
    let other = Cluster::builder().stopped().init();
    let before = harness::listing(&other.data);
    let j = rejoin(&other, &p, &[]).fails(1, "SYSTEM_ID_MISMATCH");
    assert!(
        j["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("clone-standby --force"),
        "{j}"
    );
    assert_eq!(harness::listing(&other.data), before, "nothing changed");
}

#[test]
fn a_dry_run_refused_by_pg_rewind_changes_nothing_or_is_recloned() {
    let (p, s) = pair(true);
    if !has_rewind(&p) {
        return;
    }
    p.stop();
    promote(&s);
    let mut p = p;
    p.start();
    p.sql("INSERT INTO t VALUES (100)");
    p.stop();
    let tmp = harness::tempdir();
    let bindir = rewind_bindir(&p.bindir, tmp.path(), false);
    let b = bindir.to_str().unwrap();
    let before = harness::listing(&p.data);
    let control = std::fs::read(p.data.join("global/pg_control")).unwrap();
    let j = rejoin(&p, &s, &["--bindir", b]).fails(1, "REWIND_FAILED");
    assert!(
        j["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("nothing was changed"),
        "{j}"
    );
    assert_eq!(j["changed"], false, "{j}");
    assert_eq!(harness::listing(&p.data), before);
    assert_eq!(
        std::fs::read(p.data.join("global/pg_control")).unwrap(),
        control
    );

    let j = rejoin(&p, &s, &["--bindir", b, "--reclone-on-failure"]).ok();
    assert_eq!(j["decision"]["action"], "reclone", "{j}");
    assert!(j["old_data_directory"].as_str().is_some(), "{j}");
    follows(&p, &s);
}
