//! `LocalCluster` on real servers: control-file facts of a running, a
//! stopped and a promoted cluster, every `ctl` action through pg_ctl on a
//! primary and on a standby made by clone-standby, and a Debian cluster
//! handled through pg_ctlcluster with its /etc configuration directory.

use crate::harness::fixtures::{clone, prepared_primary};
use crate::harness::{Cluster, debian};
use pgrepctl::pg::cluster::{Ctl, LocalCluster};
use pgrepctl::pg::controldata::{ClusterState, ControlData};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// The control data, or None (with a note) when this major's bin
/// directory has no pg_controldata (scripts/fetch-postgres's 10).
fn control(c: &LocalCluster) -> Option<ControlData> {
    if !c.bindir.tool("pg_controldata").exists() {
        eprintln!(
            "skipped control data: no pg_controldata in {}",
            c.bindir.path.display()
        );
        return None;
    }
    Some(c.control_data().unwrap())
}

/// Put the port and socket directory the harness passes on pg_ctl's
/// command line into postgresql.conf, so a plain `ctl(Start)` finds them.
fn pin_port(c: &Cluster) {
    let conf = c.conf_path();
    let text = std::fs::read_to_string(&conf).unwrap();
    c.write_as_pg(
        &conf,
        &format!(
            "{text}\nport = {}\nunix_socket_directories = '{}'\nfsync = off\n",
            c.port,
            c.sock.display()
        ),
    );
}

/// Poll (up to 30 s) until `q` on `c` answers `want`.
fn wait_for(c: &Cluster, q: &str, want: &str) {
    for _ in 0..300 {
        if c.try_sql(q).is_ok_and(|s| s == want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{q} never answered {want}: {:?}", c.try_sql(q));
}

#[test]
fn a_primary_facts_and_ctl_through_pg_ctl() {
    let c = Cluster::new();
    pin_port(&c);
    let local = c.local();
    assert!(local.debian.is_none());
    assert_eq!(local.config_dir, c.data);
    let pf = local.running().expect("running");
    assert_eq!(pf.port, c.port);
    assert_eq!(pf.socket_dir, c.sock.display().to_string());

    if let Some(before) = control(&local) {
        assert_eq!(before.state, ClusterState::InProduction);
        assert_eq!(before.timeline, 1);
        c.sql("CREATE TABLE t AS SELECT 1 AS x; CHECKPOINT");
        let after = control(&local).unwrap();
        assert!(
            after.checkpoint_lsn > before.checkpoint_lsn,
            "{before:?} {after:?}"
        );
        assert_eq!(after.system_identifier, before.system_identifier);
        let sysid = c.sql("SELECT system_identifier FROM pg_control_system()");
        assert_eq!(after.system_identifier.to_string(), sysid);
    }

    assert_eq!(
        local.ctl(Ctl::Stop, T).unwrap(),
        format!(
            "{}pg_ctl stop -D {}",
            local.run_as.shell_prefix(),
            c.data.display()
        )
    );
    assert!(local.running().is_none());
    if let Some(stopped) = control(&local) {
        assert_eq!(stopped.state, ClusterState::ShutDown);
        assert!(stopped.state.is_clean_shutdown());
        assert_eq!(
            (stopped.timeline, stopped.redo_lsn),
            (1, stopped.checkpoint_lsn)
        );
    }
    assert!(!local.stop_if_running(T).unwrap(), "nothing left to stop");

    local.ctl(Ctl::Start, T).unwrap();
    assert_eq!(local.running().unwrap().port, c.port);
    // Not in this process's group (10 and 11's pg_ctl leaves it in the
    // caller's): a Ctrl-C, or a stop of a child command's group, must not
    // reach the server.
    let postmaster = local.running().unwrap().pid;
    assert_ne!(
        process_group(postmaster),
        nix::unistd::getpgrp().as_raw(),
        "the postmaster is in the group of the command that started it"
    );
    assert!(c.data.join("pgrepctl-server.log").exists());
    let text = std::fs::read_to_string(c.conf_path()).unwrap();
    c.write_as_pg(&c.conf_path(), &format!("{text}work_mem = '7MB'\n"));
    local.ctl(Ctl::Reload, T).unwrap();
    wait_for(&c, "SHOW work_mem", "7MB");
    let pid = local.running().unwrap().pid;
    local.ctl(Ctl::Restart, T).unwrap();
    assert_ne!(local.running().unwrap().pid, pid, "a new postmaster");
    assert_eq!(c.sql("SELECT 1"), "1");
}

#[test]
fn a_failed_start_carries_the_server_log() {
    let c = Cluster::new();
    let local = c.local();
    local.ctl(Ctl::Stop, T).unwrap();
    let text = std::fs::read_to_string(c.conf_path()).unwrap();
    c.write_as_pg(
        &c.conf_path(),
        &format!("{text}\nshared_buffers = 'lots'\n"),
    );
    let e = local.ctl(Ctl::Start, Duration::from_secs(10)).unwrap_err();
    assert!(e.message.contains("pgrepctl-server.log"), "{e:?}");
    assert!(e.message.contains("contains errors"), "{e:?}");
    assert!(local.running().is_none());
}

#[test]
fn a_standby_stops_starts_reloads_and_is_promoted() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    clone(&p, &s, Some(&pw), &[]).ok();
    let local = s.local();
    assert!(local.running().is_some());
    if let Some(c) = control(&local) {
        assert_eq!(c.state, ClusterState::InArchiveRecovery);
        assert_eq!((c.timeline, c.min_recovery_end_timeline), (1, 1));
        assert!(c.min_recovery_end_lsn > 0);
        let primary = control(&p.local()).unwrap();
        assert_eq!(c.system_identifier, primary.system_identifier);
    }

    local.ctl(Ctl::Stop, T).unwrap();
    assert!(local.running().is_none());
    if let Some(c) = control(&local) {
        assert_eq!(c.state, ClusterState::ShutDownInRecovery);
        assert!(c.state.is_clean_shutdown());
    }
    local.ctl(Ctl::Start, T).unwrap();
    s.wait_streaming();
    local.ctl(Ctl::Reload, T).unwrap();
    assert_eq!(s.sql("SELECT pg_is_in_recovery()"), "t");

    let shown = local.ctl(Ctl::Promote, T).unwrap();
    assert!(shown.contains("pg_ctl promote -D"), "{shown}");
    // pg_ctl promote -w returns once the server has left recovery.
    assert_eq!(s.sql("SELECT pg_is_in_recovery()"), "f");
    // The new timeline reaches the control file with the next checkpoint.
    s.sql("CHECKPOINT");
    if let Some(c) = control(&local) {
        assert_eq!(c.state, ClusterState::InProduction);
        assert_eq!(c.timeline, 2);
    }
    local.ctl(Ctl::Stop, T).unwrap();
}

#[test]
fn a_debian_cluster_is_run_through_pg_ctlcluster() {
    let Some(major) = debian::available() else {
        return;
    };
    let d = debian::DebianCluster::create(major, None);
    let local = d.local();
    let id = local.debian.as_ref().expect("a Debian identity");
    assert_eq!(
        (id.version.as_str(), id.cluster.as_str()),
        (d.version.as_str(), d.name.as_str())
    );
    assert_eq!(local.config_dir, d.etc());
    assert_eq!(
        local.log_file(),
        std::path::PathBuf::from(format!(
            "/var/log/postgresql/postgresql-{}-{}.log",
            d.version, d.name
        ))
    );
    assert_eq!(local.running().unwrap().port, d.port);
    assert_eq!(local.run_as.user_name().as_deref(), Some("postgres"));

    let shown = local.ctl(Ctl::Reload, T).unwrap();
    assert_eq!(
        shown,
        format!("pg_ctlcluster {} {} reload", d.version, d.name)
    );
    assert_eq!(
        local.ctl(Ctl::Stop, T).unwrap(),
        format!("pg_ctlcluster {} {} stop", d.version, d.name)
    );
    assert!(!d.running());
    assert_eq!(local.control_data().unwrap().state, ClusterState::ShutDown);
    local.ctl(Ctl::Start, T).unwrap();
    assert!(d.running());
    local.ctl(Ctl::Restart, T).unwrap();
    assert_eq!(d.sql("SELECT 1"), "1");
    assert_eq!(
        local.control_data().unwrap().state,
        ClusterState::InProduction
    );
}

/// A process's group, from /proc/PID/stat ("pid (comm) state ppid pgrp …").
fn process_group(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(2).unwrap().parse().unwrap()
}
