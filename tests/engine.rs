//! The engine's promises on real servers: `--dry-run` reports exactly the
//! changes the real run then reports (same kinds, summaries, paths, order),
//! and a failure at any step undoes everything before it. Failures are
//! injected after step N with PGREPCTL_FAIL_AFTER_STEP, which only debug
//! builds (the ones tests run) read; N goes up until the run no longer
//! fails, so every step of the plan is covered whatever its length.

use crate::harness::fixtures::{clone, clone_env, prepared_primary};
use crate::harness::{self, Cluster, run::password_file, run::pgrepctl_env};
use std::path::Path;

/// (kind, path, summary) of each change, in order.
fn change_list(j: &serde_json::Value) -> Vec<(String, String, String)> {
    j["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes in {j}"))
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["path"].as_str().unwrap_or("").to_string(),
                c["summary"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn init_master_args(c: &Cluster, pw: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "init-master",
        "--json",
        "-D",
        c.data.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
        "--allow",
        "127.0.0.1/32",
        "--slot",
        "s1",
        "--wal-keep",
        "256MB",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// What init-master may change on the server, for "nothing changed".
type Snapshot = Vec<(std::path::PathBuf, Option<Vec<u8>>)>;

fn primary_state(c: &Cluster) -> (Snapshot, String) {
    let files = harness::snapshot(&[
        &c.conf_path(),
        &c.hba_path(),
        &c.data.join("postgresql.auto.conf"),
    ]);
    let db = c.sql(
        "SELECT (SELECT count(*) FROM pg_roles WHERE rolname IN ('replicator', 'monitor')) || '/' || \
                (SELECT count(*) FROM pg_replication_slots) || '/' || \
                current_setting('max_wal_senders')",
    );
    (files, db)
}

#[test]
fn init_master_dry_run_lists_exactly_the_real_changes() {
    let c = Cluster::builder().init();
    let pw = password_file(c.tmp.path(), "engine pw");
    let args = init_master_args(
        &c,
        &pw,
        &["--listen", "localhost,127.0.0.1", "--restart", "if-needed"],
    );
    let mut dry_args = args.clone();
    dry_args.push("--dry-run".into());
    let before = primary_state(&c);
    let dry = pgrepctl_env(&dry_args, &[]).ok();
    assert_eq!(primary_state(&c), before, "a dry run changes nothing");
    let real = pgrepctl_env(&args, &[]).ok();
    let (d, r) = (change_list(&dry), change_list(&real));
    assert!(
        d.len() >= 5,
        "file edits, role, reload, restart, slot: {d:?}"
    );
    assert_eq!(d, r, "dry run {dry}\nreal run {real}");
    assert_eq!(dry["changed"], real["changed"]);
    assert_eq!(dry["restart_required"], real["restart_required"]);
    let again = pgrepctl_env(&args, &[]).ok();
    assert_eq!(again["changed"], false, "{again}");
    let dry_again = pgrepctl_env(&dry_args, &[]).ok();
    assert_eq!(change_list(&dry_again), vec![], "{dry_again}");
}

#[test]
fn init_master_failure_at_any_step_undoes_the_steps_before() {
    let c = Cluster::builder().init();
    let pw = password_file(c.tmp.path(), "engine pw");
    fail_at_every_step(&c, init_master_args(&c, &pw, &[]), 5);
}

/// With a restart in the plan: a failure after it restarts the server on
/// the old settings (the live max_wal_senders is part of the state), and a
/// failure before it changes nothing.
#[test]
fn init_master_failure_around_a_restart_leaves_the_old_settings_live() {
    let c = Cluster::builder().init();
    let pw = password_file(c.tmp.path(), "engine pw");
    let args = init_master_args(
        &c,
        &pw,
        &["--max-wal-senders", "17", "--restart", "if-needed"],
    );
    fail_at_every_step(&c, args, 7);
    assert_eq!(c.sql("SHOW max_wal_senders"), "17");
}

/// The monitor role's records are ALTER SYSTEM settings: undone, they
/// leave postgresql.auto.conf as it was (no line), not set to ''.
#[test]
fn init_master_monitor_failure_at_any_step_leaves_auto_conf_as_it_was() {
    let c = Cluster::builder().init();
    let pw = password_file(c.tmp.path(), "engine pw");
    let mon = password_file(c.tmp.path(), "monitor pw");
    let args = init_master_args(
        &c,
        &pw,
        &[
            "--monitor-from",
            "127.0.0.1/32",
            "--monitor-password-file",
            mon.to_str().unwrap(),
        ],
    );
    fail_at_every_step(&c, args, 7);
}

/// Fail after step 1, 2, … until the run succeeds; each failure must
/// leave files, role, slots and settings exactly as before.
fn fail_at_every_step(c: &Cluster, args: Vec<String>, at_least: usize) {
    let before = primary_state(c);
    let mut n = 1;
    loop {
        let r = pgrepctl_env(&args, &[("PGREPCTL_FAIL_AFTER_STEP", &n.to_string())]);
        if r.code() == 0 {
            break;
        }
        let j = r.fails(1, "INTERNAL");
        let msg = j["error"]["message"].as_str().unwrap();
        assert!(msg.contains(&format!("after step {n}")), "{j}");
        assert_eq!(j["changed"], false, "{j}");
        // A restart's server log stays: it records what the server did.
        let _ = std::fs::remove_file(c.data.join("pgrepctl-server.log"));
        assert_eq!(primary_state(c), before, "failure after step {n}: {j}");
        n += 1;
        assert!(n < 30, "the injected failure never stopped");
    }
    assert!(n > at_least, "only {} steps", n - 1);
    assert_ne!(primary_state(c), before);
}

/// A running standby reconfigured (a new application name: an edit and a
/// restart): a failure at any step leaves its files as they were and the
/// server running on them — streaming under its old name, which only a
/// restart back on the old files can show.
#[test]
fn clone_reconcile_failure_at_any_step_leaves_the_standby_running_as_before() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    clone(&p, &s, Some(&pw), &[]).ok();
    let files = || {
        harness::snapshot(&[
            &s.data.join("postgresql.auto.conf"),
            &s.data.join("recovery.conf"),
            &s.data.join("postgresql.conf"),
        ])
    };
    let before = files();
    let name = || {
        let t = std::time::Instant::now();
        loop {
            let n = p.sql("SELECT string_agg(application_name, ',') FROM pg_stat_replication WHERE state = 'streaming'");
            if !n.is_empty() || t.elapsed() > std::time::Duration::from_secs(30) {
                return n;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    assert_eq!(name(), "s1");
    let mut n = 1;
    loop {
        let r = clone_env(
            &p,
            &s,
            Some(&pw),
            &["--application-name", "renamed"],
            &[("PGREPCTL_FAIL_AFTER_STEP", &n.to_string())],
        );
        let j = r.json();
        if j["changed"] == true || r.code() == 0 {
            // Past the commit point (or the end): the new name stands.
            break;
        }
        let j = r.fails(1, "INTERNAL");
        let show = |v: &Vec<(std::path::PathBuf, Option<Vec<u8>>)>| {
            v.iter()
                .map(|(p, b)| {
                    format!(
                        "{}: {}",
                        p.display(),
                        String::from_utf8_lossy(b.as_deref().unwrap_or(b"-"))
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(show(&files()), show(&before), "failure after step {n}: {j}");
        assert_eq!(name(), "s1", "failure after step {n}: {j}");
        n += 1;
        assert!(n < 20, "the injected failure never stopped");
    }
    assert!(n > 2, "edit, restart: only {} steps", n - 1);
    assert_eq!(name(), "renamed");
}

/// Clones `p` into `s` with a failure injected after step `n`.
fn clone_failing_after(
    p: &Cluster,
    s: &Cluster,
    pw: &Path,
    n: usize,
    extra: &[&str],
) -> harness::Run {
    let mut args = vec!["--slot", "engine_s1"];
    args.extend(extra);
    clone_env(
        p,
        s,
        Some(&pw.to_path_buf()),
        &args,
        &[("PGREPCTL_FAIL_AFTER_STEP", &n.to_string())],
    )
}

fn slots(p: &Cluster) -> String {
    p.sql("SELECT count(*) FROM pg_replication_slots")
}

/// Names beside and in the target that a clone could leave behind.
fn leftovers(s: &Cluster) -> Vec<String> {
    harness::listing(s.data.parent().unwrap())
        .into_iter()
        .filter(|n| n.contains("pgrepctl"))
        .collect()
}

#[test]
fn clone_dry_run_lists_exactly_the_real_changes() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    let dry = clone(&p, &s, Some(&pw), &["--slot", "engine_s1", "--dry-run"]).ok();
    assert!(
        !s.data.exists() && slots(&p) == "0",
        "a dry run changes nothing"
    );
    let real = clone(&p, &s, Some(&pw), &["--slot", "engine_s1"]).ok();
    assert_eq!(
        change_list(&dry),
        change_list(&real),
        "dry run {dry}\nreal run {real}"
    );
    assert_eq!(
        change_list(&real).len(),
        4,
        "slot, copy, configuration, start: {real}"
    );
    assert!(
        real["changes"][2]["diff"]
            .as_str()
            .unwrap()
            .contains("standby"),
        "the real run shows the configuration's diffs: {real}"
    );
    let again = clone(&p, &s, Some(&pw), &["--slot", "engine_s1", "--dry-run"]).ok();
    assert_eq!(change_list(&again), vec![], "{again}");
}

#[test]
fn clone_failure_at_any_step_before_the_start_undoes_the_clone() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    undo_every_step_of_a_forced_clone(&p, &s, &pw);
}

/// The same onto a mount point (which cannot be renamed): the replaced
/// contents are kept inside it and come back, byte for byte.
#[test]
fn clone_onto_a_mount_point_failure_at_any_step_puts_the_old_contents_back() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let mut s = Cluster::clone_target(&p);
    // The mount point lives in a temp dir of its own, removed only after
    // the unmount (the standby's own temp dir goes with the standby, while
    // the filesystem is still mounted, and could not remove it).
    let dir = harness::tempdir();
    s.data = dir.path().join("standby");
    let Some(m) = harness::Mount::new(&s.data, "size=512m,mode=0700") else {
        return;
    };
    // Tuple fields drop in order: the standby is stopped (by its data
    // directory) before the mount goes, even on a panic, and the mount
    // before its directory. Unmounted first, the server would keep running
    // on the detached filesystem.
    let held = (s, m, dir);
    undo_every_step_of_a_forced_clone(&p, &held.0, &pw);
}

/// A stopped cluster of another system at the target, replaced with
/// --force: every failure before the start must put it back as it was.
fn undo_every_step_of_a_forced_clone(p: &Cluster, s: &Cluster, pw: &Path) {
    let other = Cluster::builder().stopped().init();
    harness::check(
        std::process::Command::new("cp")
            .arg("-a")
            .arg("-T")
            .arg(&other.data)
            .arg(&s.data)
            .output()
            .unwrap(),
        "cp",
    );
    let marker = s.data.join("marker");
    std::fs::write(&marker, "the DBA's data").unwrap();
    let listing = harness::listing(&s.data);
    let mut n = 1;
    loop {
        let r = clone_failing_after(p, s, pw, n, &["--force"]);
        if r.code() == 0 {
            panic!("the failure after step {n} did not happen: {}", r.stdout());
        }
        let j = r.fails(1, "INTERNAL");
        if j["changed"] == true {
            // Past the start: the standby stays, the error says so.
            assert!(
                j["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("changes made"),
                "{j}"
            );
            assert_eq!(s.sql("SELECT pg_is_in_recovery()"), "t");
            break;
        }
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap(),
            "the DBA's data",
            "step {n}"
        );
        assert_eq!(harness::listing(&s.data), listing, "step {n}: {j}");
        assert_eq!(leftovers(s), Vec::<String>::new(), "step {n}");
        assert_eq!(slots(p), "0", "step {n}: the slot this run made is dropped");
        assert!(
            !s.data.join("postmaster.pid").exists(),
            "step {n}: nothing runs"
        );
        n += 1;
        assert!(n < 20, "the injected failure never stopped");
    }
    // Slot, copy, configuration, swap, start: five steps undone in turn.
    assert_eq!(n, 6, "undone up to step {}", n - 1);
    assert!(!s.data.join("marker").exists());
    assert_eq!(leftovers(s), Vec::<String>::new());
    assert!(
        !harness::listing(&s.data)
            .iter()
            .any(|n| n.contains("pgrepctl-old") || n.contains("pgrepctl-clone")),
        "{:?}",
        harness::listing(&s.data)
    );
}
