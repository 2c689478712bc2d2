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
