//! The flows on clusters exactly as Debian's `pg_createcluster` makes them
//! (peer authentication for local connections, configuration in /etc),
//! with pgrepctl run as root the way the README says — the setting in
//! which a trust-auth harness hides real failures.

use crate::harness::debian::{self, DebianCluster, pgrepctl_on};
use crate::harness::{self, run::password_file};

const PW: &str = "Debian-S3cret";

/// Issue 9, item 1: as root, -D's server is reached over its socket as the
/// data directory's owner, so stock `peer` authentication lets it in; the
/// socket's `check` that clone-standby prints works as root too.
#[test]
fn init_master_as_root_on_stock_peer_auth() {
    let Some(major) = debian::available() else {
        return;
    };
    let p = DebianCluster::create(major, None);
    let tmp = harness::tempdir();
    let pw = password_file(tmp.path(), PW);
    let data = p.data_str();
    let args = [
        "init-master",
        "--json",
        "-D",
        &data,
        "--allow",
        "127.0.0.1/32",
        "--password-file",
        pw.to_str().unwrap(),
    ];
    let j = pgrepctl_on(None, &args).ok();
    assert_eq!(j["changed"], true, "{j}");
    assert_eq!(
        p.sql("SELECT rolreplication FROM pg_roles WHERE rolname = 'replicator'"),
        "t"
    );
    let j = pgrepctl_on(None, &args).ok();
    assert_eq!(j["changed"], false, "{j}");

    // The check command a user is told to run on the host, as root.
    let node = format!("host=/var/run/postgresql port={}", p.port);
    let r = pgrepctl_on(None, &["check", "--json", "--primary", &node]);
    let j = r.json();
    // Connected and identified (CRITICAL only because no standby streams).
    assert!(j["nodes"][0]["error"].is_null(), "{j}");
    assert_eq!(j["nodes"][0]["role"], "primary", "{j}");
    assert_eq!(harness::problem_codes(&j), ["NO_STANDBY_CONNECTED"], "{j}");
}

/// Issue 9, item 12: a server that stops answering cannot hang init-master:
/// the connection is bounded (here by the conninfo's connect_timeout).
#[test]
fn init_master_against_a_frozen_server_times_out() {
    let Some(major) = debian::available() else {
        return;
    };
    let p = DebianCluster::create(major, None);
    let pid: i32 = std::fs::read_to_string(p.data().join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    struct Thaw(i32);
    impl Drop for Thaw {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0),
                nix::sys::signal::Signal::SIGCONT,
            );
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .unwrap();
    let _thaw = Thaw(pid);
    let tmp = harness::tempdir();
    let pw = password_file(tmp.path(), PW);
    let data = p.data_str();
    let conn = format!("host=/var/run/postgresql port={} connect_timeout=2", p.port);
    let t0 = std::time::Instant::now();
    let r = pgrepctl_on(
        None,
        &[
            "init-master",
            "--json",
            "-D",
            &data,
            "-d",
            &conn,
            "--allow",
            "127.0.0.1/32",
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    r.fails(1, "TIMEOUT");
    // Bounded, not hung (generous: this is no timing test).
    assert!(t0.elapsed() < std::time::Duration::from_secs(60));
}

/// A Debian primary made ready by init-master (as root, stock auth) with
/// hot-standby limits above the defaults, and its password file.
fn ready_primary(
    major: u32,
    netns: Option<&str>,
    allow: &str,
) -> (DebianCluster, tempfile::TempDir, String) {
    let p = DebianCluster::create(major, netns);
    p.append_conf("max_worker_processes = 16\nmax_connections = 150\n");
    p.stop();
    p.start();
    let tmp = harness::tempdir();
    let pw = password_file(tmp.path(), PW).display().to_string();
    let data = p.data_str();
    pgrepctl_on(
        netns,
        &[
            "init-master",
            "--json",
            "-D",
            &data,
            "--allow",
            allow,
            "--password-file",
            &pw,
            "--restart",
            "if-needed",
        ],
    )
    .ok();
    (p, tmp, pw)
}

fn clone_args<'a>(primary: &'a str, data: &'a str, pw: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "clone-standby",
        "--json",
        "--primary",
        primary,
        "-D",
        data,
        "--password-file",
        pw,
    ];
    a.extend_from_slice(extra);
    a
}

/// Items 2 and 4: clone over a packaged standby with --force (as the README
/// says); rerun with --force on the healthy standby is a no-op; with the
/// standby stopped, --force re-clones and still raises the hot-standby
/// limits the /etc config lacks (the old directory's raised values must
/// not be mistaken for the new copy's).
#[test]
fn clone_force_over_a_packaged_standby() {
    let Some(major) = debian::available() else {
        return;
    };
    let (p, _tmp, pw) = ready_primary(major, None, "127.0.0.1/32");
    let s = DebianCluster::create(major, None);
    s.stop();
    let primary = format!("host=127.0.0.1 port={} user=replicator", p.port);
    let data = s.data_str();
    let args = clone_args(&primary, &data, &pw, &["--force"]);
    let j = pgrepctl_on(None, &args).ok();
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    assert_eq!(s.sql("SHOW max_worker_processes"), "16");

    // Item 4: the README's command again, on the healthy standby.
    let j = pgrepctl_on(None, &args).ok();
    assert_eq!(j["changed"], false, "{j}");

    // Item 2: a stopped standby of the same primary, replaced with --force.
    s.stop();
    let j = pgrepctl_on(None, &args).ok();
    assert_eq!(j["changed"], true, "{j}");
    assert_eq!(j["streaming"]["status"], "streaming", "{j}\n{}", s.log());
    assert_eq!(s.sql("SHOW max_worker_processes"), "16");
    assert_eq!(s.sql("SHOW max_connections"), "150");
    let parent = s.data().parent().unwrap().to_path_buf();
    assert!(
        !harness::listing(&parent)
            .iter()
            .any(|n| n.contains("pgrepctl")),
        "{:?}",
        harness::listing(&parent)
    );
}

/// Item 3: a cluster's config directory, or a directory holding a running
/// cluster, is never a target, even with --force; nothing is touched.
#[test]
fn config_dirs_and_running_clusters_are_never_targets() {
    let Some(major) = debian::available() else {
        return;
    };
    let (p, tmp, pw) = ready_primary(major, None, "127.0.0.1/32");
    let primary = format!("host=127.0.0.1 port={} user=replicator", p.port);
    let etc = p.etc().display().to_string();
    let before = harness::listing(&p.etc());
    let conf = std::fs::read(p.etc().join("postgresql.conf")).unwrap();
    for extra in [&["--force"][..], &["--force", "--dry-run"][..]] {
        let r = pgrepctl_on(None, &clone_args(&primary, &etc, &pw, extra));
        let j = r.fails(1, "TARGET_IN_USE");
        assert!(
            j["error"]["message"]
                .as_str()
                .unwrap()
                .contains("configuration directory"),
            "{j}"
        );
    }
    assert_eq!(harness::listing(&p.etc()), before);
    assert_eq!(
        std::fs::read(p.etc().join("postgresql.conf")).unwrap(),
        conf
    );
    assert!(p.running());

    // A plain directory that holds a running server's data directory.
    let holder = tmp.path().join("holder");
    std::fs::create_dir(&holder).unwrap();
    let mut inner = crate::harness::Cluster::builder().stopped().init();
    let nested = holder.join("data");
    std::fs::rename(&inner.data, &nested).unwrap();
    inner.data = nested.clone();
    inner.start();
    let holder_s = holder.display().to_string();
    pgrepctl_on(None, &clone_args(&primary, &holder_s, &pw, &["--force"]))
        .fails(1, "TARGET_IN_USE");
    assert!(inner.running());
    assert!(nested.join("PG_VERSION").exists());
}

/// Item 7: a Debian primary (configuration in /etc) cloned into a plain
/// directory gets a minimal valid configuration and starts; a copy that
/// cannot start is undone completely (no directory, no slot), and the
/// error carries the server's FATAL line.
#[test]
fn packaged_primary_into_a_plain_directory() {
    let Some(major) = debian::available() else {
        return;
    };
    let (p, tmp, pw) = ready_primary(major, None, "127.0.0.1/32");
    let primary = format!("host=127.0.0.1 port={} user=replicator", p.port);
    let target = tmp.path().join("standby");
    let data = target.display().to_string();

    // Port taken by the primary itself: the copy cannot start.
    let taken = p.port.to_string();
    let r = pgrepctl_on(
        None,
        &clone_args(
            &primary,
            &data,
            &pw,
            &["--port", &taken, "--slot", "plain1"],
        ),
    );
    let j = r.fails(1, "START_FAILED");
    let msg = j["error"]["message"].as_str().unwrap();
    assert!(msg.contains("FATAL"), "{msg}");
    assert_eq!(j["changed"], false, "{j}");
    assert!(!target.exists(), "{:?}", harness::listing(tmp.path()));
    assert!(
        !harness::listing(tmp.path())
            .iter()
            .any(|n| n.contains("pgrepctl")),
        "{:?}",
        harness::listing(tmp.path())
    );
    assert_eq!(p.sql("SELECT count(*) FROM pg_replication_slots"), "0");

    let port = harness::free_port().to_string();
    struct StopAt(std::path::PathBuf);
    impl Drop for StopAt {
        fn drop(&mut self) {
            let _ = harness::as_pg(harness::bindir().join("pg_ctl"))
                .arg("-D")
                .arg(&self.0)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }
    let _stop = StopAt(target.clone());
    let j = pgrepctl_on(None, &clone_args(&primary, &data, &pw, &["--port", &port])).ok();
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    for f in ["postgresql.conf", "pg_hba.conf", "pg_ident.conf"] {
        assert!(target.join(f).exists(), "{f}");
    }
    let changes = j["changes"].to_string();
    assert!(changes.contains("postgresql.conf"), "{changes}");
}
