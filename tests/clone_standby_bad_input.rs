//! clone-standby's refusals and faults: each ends with a clear error and
//! code, the target exactly as it was, no temporary copy left behind, and
//! nothing left on the primary (no slot, no connection).

use crate::harness::fixtures::{PW, clone, clone_test, prepared_primary};
use crate::harness::{self, Cluster, run::password_file};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn assert_untouched(p: &Cluster, s: &Cluster) {
    assert!(!s.data.exists(), "the target must not appear");
    assert_eq!(
        harness::listing(s.tmp.path()),
        Vec::<String>::new(),
        "no temp dir left"
    );
    assert_eq!(p.sql("SELECT count(*) FROM pg_replication_slots"), "0");
}

#[test]
fn wrong_password() {
    let (p, _) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    let bad = password_file(s.tmp.path(), "not the password");
    let j = clone(&p, &s, Some(&bad), &[]).fails(1, "AUTHENTICATION_FAILED");
    assert!(
        j["error"]["hint"].as_str().unwrap().contains("password"),
        "{j}"
    );
    std::fs::remove_file(bad).unwrap();
    assert_untouched(&p, &s);
}

#[test]
fn hba_rejects_the_standby_and_says_which_line_would_help() {
    let p = Cluster::builder()
        .hba("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        .init();
    let s = Cluster::clone_target(&p);
    let j = clone(&p, &s, None, &[]).fails(1, "HBA_REJECTED");
    let hint = j["error"]["hint"].as_str().unwrap();
    assert!(
        hint.contains("host replication replicator 127.0.0.1/32 scram-sha-256"),
        "{hint}"
    );
    assert_untouched(&p, &s);
}

#[test]
fn primary_unreachable() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    let mut closed = Cluster::clone_target(&p);
    closed.port = harness::free_port();
    let r = harness::pgrepctl([
        "clone-standby",
        "--json",
        "--primary",
        &format!("host=127.0.0.1 port={} user=replicator", closed.port),
        "-D",
        s.data.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
        "--connect-timeout",
        "3",
    ]);
    r.fails(1, "CONNECTION_FAILED");
    assert_untouched(&p, &s);
}

#[test]
fn bad_flags_are_usage_errors() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    let data = s.data.to_str().unwrap().to_string();
    let pwf = pw.to_str().unwrap().to_string();
    let cases: [(&[&str], &str); 7] = [
        (&["--primary", "host=127.0.0.1", "--wait", "1x"], "USAGE"),
        (
            &["--primary", "host=127.0.0.1", "--connect-timeout", "0s"],
            "USAGE",
        ),
        (
            &["--primary", "host=127.0.0.1 bogus=1"],
            "UNKNOWN_CONNINFO_KEYWORD",
        ),
        (
            &["--primary", "host=127.0.0.1 password=visible"],
            "INSECURE_REFUSED",
        ),
        (
            &["--primary", "host=127.0.0.1", "--slot", "Bad-Name"],
            "INVALID_SLOT_NAME",
        ),
        (
            &["--primary", "host=127.0.0.1", "--max-rate", "1"],
            "INVALID_VALUE",
        ),
        (
            &[
                "--primary",
                "host=127.0.0.1",
                "--passfile",
                "/tmp/x",
                "--password-in-conninfo",
            ],
            "CONFLICTING_FLAGS",
        ),
    ];
    for (args, code) in cases {
        let mut all = vec![
            "clone-standby",
            "--json",
            "-D",
            &data,
            "--password-file",
            &pwf,
        ];
        all.extend_from_slice(args);
        harness::pgrepctl(&all).fails(2, code);
    }
    assert_untouched(&p, &s);
}

#[test]
fn non_empty_target_is_refused_and_kept() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    std::fs::create_dir(&s.data).unwrap();
    std::fs::write(s.data.join("precious.txt"), "keep me").unwrap();
    let j = clone(&p, &s, Some(&pw), &[]).fails(1, "PGDATA_NOT_EMPTY");
    assert!(j["error"]["hint"].as_str().unwrap().contains("--force"));
    assert_eq!(harness::listing(&s.data), vec!["precious.txt"]);
    assert_eq!(harness::listing(s.tmp.path()), vec!["standby"]);
    // With --force it is replaced by a working standby.
    let j = clone(&p, &s, Some(&pw), &["--force"]).ok();
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    assert!(!s.data.join("precious.txt").exists());
    assert_eq!(harness::listing(s.tmp.path()), vec!["standby"]);
}

#[test]
fn never_replaces_a_running_server_or_the_primary() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let other = Cluster::new();
    let version = std::fs::read(other.data.join("PG_VERSION")).unwrap();
    let mut s = Cluster::clone_target(&p);
    s.data = other.data.clone();
    clone(&p, &s, Some(&pw), &["--force"]).fails(1, "POSTMASTER_RUNNING");
    assert!(other.running());
    assert_eq!(
        std::fs::read(other.data.join("PG_VERSION")).unwrap(),
        version
    );
    s.data = p.data.clone();
    for extra in [&[][..], &["--force"][..]] {
        clone(&p, &s, Some(&pw), extra).fails(1, "TARGET_IS_PRIMARY");
    }
    assert!(p.running());
    s.data = s.tmp.path().join("standby");
    assert_untouched(&p, &s);
}

#[test]
fn a_server_started_during_the_copy_is_never_moved_aside() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let mut other = Cluster::builder().stopped().init();
    let version = std::fs::read(other.data.join("PG_VERSION")).unwrap();
    let before = harness::listing(other.tmp.path());
    let mut s = Cluster::clone_target(&p);
    s.data = other.data.clone();
    // Steps: the copy, its configuration, then the swap. A server started
    // on the target in between (systemd, a package upgrade) is seen again
    // before the swap.
    let mut guard = None;
    let r = clone_test(&p, &s, Some(&pw), &["--force"]).run_paused(2, || {
        other.start();
        guard = Some(harness::KillOnDrop::postmaster_of(&other.data));
    });
    let j = r.fails(1, "POSTMASTER_RUNNING");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("while the copy ran"),
        "{j}"
    );
    assert!(other.running());
    assert_eq!(
        std::fs::read(other.data.join("PG_VERSION")).unwrap(),
        version
    );
    assert_eq!(harness::listing(other.tmp.path()), before, "no copy left");
    assert_eq!(p.sql("SELECT count(*) FROM pg_replication_slots"), "0");
}

#[test]
fn a_server_running_in_the_replaced_directory_keeps_it() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let other = Cluster::builder().stopped().init();
    let mut s = Cluster::clone_target(&p);
    s.data = other.data.clone();
    let mut kept = None;
    // After the swap (step 3) the old directory is aside; a server
    // started on the target just before the swap would run there now.
    let r = clone_test(&p, &s, Some(&pw), &["--force"]).run_paused(3, || {
        let aside = std::fs::read_dir(other.tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().contains(".pgrepctl-old."))
            .expect("the replaced directory is kept aside");

        let opts = format!(
            "-p {} -k {} -c fsync=off",
            harness::free_port(),
            other.sock.display()
        );
        harness::check(
            harness::as_pg(other.bindir.join("pg_ctl"))
                .arg("-D")
                .arg(&aside)
                .arg("-l")
                .arg(other.log.with_file_name("aside.log"))
                .args(["-w", "-o", &opts, "start"])
                .output()
                .unwrap(),
            "pg_ctl start",
        );
        kept = Some((harness::KillOnDrop::postmaster_of(&aside), aside));
    });
    let j = r.ok();
    let (_guard, kept) = kept.unwrap();
    assert!(
        j["warnings"]
            .to_string()
            .contains("kept the replaced directory"),
        "{j}"
    );
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    assert!(kept.join("PG_VERSION").exists(), "not removed");
}

#[test]
fn a_second_run_on_the_same_directory_waits_its_turn() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    let data = s.data.to_str().unwrap();
    let mut during = vec![];
    // Paused after the copy (the target not made yet): another clone, a
    // promote of that directory, and a dry run.
    let first = clone_test(&p, &s, Some(&pw), &[]).run_paused(1, || {
        during.push(clone(&p, &s, Some(&pw), &["--force"]));
        during.push(harness::pgrepctl(["promote", "--json", "-D", data]));
        during.push(clone(&p, &s, Some(&pw), &["--dry-run"]));
    });
    for r in &during[..2] {
        let j = r.fails(1, "BUSY");
        let message = j["error"]["message"].as_str().unwrap();
        assert!(message.contains("another pgrepctl run is changing"), "{j}");
    }
    assert_eq!(during[2].ok()["dry_run"], true, "a dry run takes no lock");
    let j = first.ok();
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    // Once it ended, the directory is free again.
    assert_eq!(clone(&p, &s, Some(&pw), &[]).ok()["changed"], false);
}

#[test]
fn local_binaries_of_another_major_are_refused() {
    // The primary runs another major than every binary pgrepctl can find
    // without --bindir (Debian's 15 here); say what was found and why not.
    let bindir = harness::bindir();
    let other = if harness::major(&bindir) == 15 {
        harness::fetch_bindir(16)
    } else {
        bindir
    };
    let (p, pw) = prepared_primary(Cluster::builder().bindir(&other));
    let s = Cluster::clone_target(&p);
    let r = harness::pgrepctl([
        "clone-standby",
        "--json",
        "--primary",
        &format!("host=127.0.0.1 port={} user=replicator", p.port),
        "-D",
        s.data.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    let j = r.fails(1, "VERSION_MISMATCH");
    let msg = j["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&format!("PostgreSQL {}", p.major)), "{msg}");
    assert!(msg.contains("/usr/lib/postgresql/15/bin"), "{msg}");
    assert_untouched(&p, &s);
}

#[test]
fn full_filesystem_is_refused_before_it_fills() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let mut s = Cluster::clone_target(&p);
    let small = s.tmp.path().join("small");
    let Some(_m) = harness::Mount::new(&small, "size=4m,mode=0755") else {
        return;
    };
    s.data = small.join("standby");
    let j = clone(&p, &s, Some(&pw), &[]).fails(1, "DISK_SPACE");
    assert!(
        j["error"]["message"].as_str().unwrap().contains("free"),
        "{j}"
    );
    assert_eq!(harness::listing(&small), Vec::<String>::new());
    assert_eq!(p.sql("SELECT count(*) FROM pg_replication_slots"), "0");
}

#[test]
fn read_only_filesystem_is_refused() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let mut s = Cluster::clone_target(&p);
    let ro = s.tmp.path().join("ro");
    let Some(_m) = harness::Mount::new(&ro, "size=64m,ro") else {
        return;
    };
    s.data = ro.join("standby");
    let j = clone(&p, &s, Some(&pw), &[]).fails(1, "FILE_NOT_WRITABLE");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("read-only"),
        "{j}"
    );
}

/// Start a throttled clone (32 kB/s: minutes for a fresh cluster) and
/// wait until pg_basebackup is copying into the temporary directory.
#[allow(clippy::zombie_processes)] // the caller waits on the returned child
fn start_slow_clone(p: &Cluster, s: &Cluster, pw: &Path) -> (Child, i32) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgrepctl"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PG") {
            c.env_remove(k);
        }
    }
    c.args([
        "clone-standby",
        "--json",
        "--primary",
        &format!("host=127.0.0.1 port={} user=replicator", p.port),
        "-D",
        s.data.to_str().unwrap(),
        "--bindir",
        s.bindir.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
        "--slot",
        "doomed",
        "--max-rate",
        "32k",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    let started = Instant::now();
    loop {
        if let Some(pid) = harness::basebackup_into(s.tmp.path()) {
            if harness::listing(s.tmp.path())
                .iter()
                .any(|n| n.contains("pgrepctl-clone"))
            {
                std::thread::sleep(Duration::from_millis(500));
                return (child, pid);
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            let mut child = child;
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the copy never started: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn finish(child: Child) -> harness::Run {
    child.wait_with_output().unwrap().into()
}

#[test]
fn killed_basebackup_leaves_nothing() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    let (child, pid) = start_slow_clone(&p, &s, &pw);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let r = finish(child);
    r.fails(1, "COPY_FAILED");
    assert_untouched(&p, &s);
}

#[test]
fn primary_stopped_mid_copy_leaves_nothing() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    let (child, _) = start_slow_clone(&p, &s, &pw);
    p.stop();
    let r = finish(child);
    r.fails(1, "COPY_FAILED");
    assert!(!s.data.exists());
    assert_eq!(harness::listing(s.tmp.path()), Vec::<String>::new());
}

#[test]
fn interrupt_mid_copy_stops_the_copy_and_leaves_nothing() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    let (child, _) = start_slow_clone(&p, &s, &pw);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let r = finish(child);
    r.fails(1, "INTERRUPTED");
    assert!(
        harness::basebackup_into(s.tmp.path()).is_none(),
        "pg_basebackup must be stopped"
    );
    assert_untouched(&p, &s);
    let _ = PW;
}

#[test]
fn unprepared_primary_without_the_role_is_not_ready_not_unreachable() {
    // initdb's default pg_hba.conf trusts replication over 127.0.0.1, so
    // the primary answers, but there is no replicator role yet.
    let p = Cluster::new();
    let s = Cluster::clone_target(&p);
    let j = clone(&p, &s, None, &[]).fails(1, "PRIMARY_NOT_READY");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("role \"replicator\" does not exist"),
        "{j}"
    );
    assert!(
        j["error"]["hint"].as_str().unwrap().contains("init-master"),
        "{j}"
    );
    assert_untouched(&p, &s);
}

/// Issue 9: an explicit --bindir is used or refused, never silently
/// passed over for binaries found elsewhere.
#[test]
fn bindir_that_is_not_one_is_refused() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    let r = harness::pgrepctl([
        "clone-standby",
        "--json",
        "--primary",
        &format!("host=127.0.0.1 port={} user=replicator", p.port),
        "-D",
        s.data.to_str().unwrap(),
        "--bindir",
        "/nonexistent",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    let j = r.fails(2, "INVALID_VALUE");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent"),
        "{j}"
    );
    assert!(j["error"]["hint"].as_str().unwrap().contains("bin"), "{j}");
    assert_untouched(&p, &s);
}
