//! The flows on clusters exactly as Debian's `pg_createcluster` makes them
//! (peer authentication for local connections, configuration in /etc),
//! with pgrepctl run as root the way the README says — the setting in
//! which a trust-auth harness hides real failures.

use crate::harness::debian::{self, DebianCluster, pgrepctl_on, pgrepctl_on_env};
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
    let _thaw = freeze(&p);
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

/// SIGSTOP the cluster's postmaster (by its PID file) until the guard drops.
fn freeze(c: &DebianCluster) -> impl Drop {
    let pid: i32 = std::fs::read_to_string(c.data().join("postmaster.pid"))
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
    Thaw(pid)
}

/// Item 12 for clone-standby: a primary that stops answering fails the
/// preflight within its bounds, and nothing is left at the target.
#[test]
fn clone_from_a_frozen_primary_is_bounded() {
    let Some(major) = debian::available() else {
        return;
    };
    let (p, tmp, pw) = ready_primary(major, None, "127.0.0.1/32");
    let primary = format!("host=127.0.0.1 port={} user=replicator", p.port);
    let target = tmp.path().join("standby");
    let data = target.display().to_string();
    let _thaw = freeze(&p);
    let t0 = std::time::Instant::now();
    let r = pgrepctl_on(
        None,
        &clone_args(&primary, &data, &pw, &["--connect-timeout", "2"]),
    );
    assert_eq!(r.code(), 1, "{}\n{}", r.stdout(), r.stderr());
    assert!(!target.exists());
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

    // Another packaged cluster, running: the hint stops it the Debian way.
    let other = DebianCluster::create(major, None);
    let data = other.data_str();
    let r = pgrepctl_on(None, &clone_args(&primary, &data, &pw, &["--force"]));
    let j = r.fails(1, "POSTMASTER_RUNNING");
    let stop = format!("pg_ctlcluster {} {} stop", other.version, other.name);
    assert!(j["error"]["hint"].as_str().unwrap().contains(&stop), "{j}");
    assert!(other.running());

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
    let _stop = harness::StopOnDrop(target.clone());
    let j = pgrepctl_on(None, &clone_args(&primary, &data, &pw, &["--port", &port])).ok();
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    for f in ["postgresql.conf", "pg_hba.conf", "pg_ident.conf"] {
        assert!(target.join(f).exists(), "{f}");
    }
    let changes = j["changes"].to_string();
    assert!(changes.contains("postgresql.conf"), "{changes}");
}

/// The README's production walkthrough, command for command (addresses and
/// ports aside), on stock packaged clusters on two hosts (network
/// namespaces): init-master on the primary, clone-standby over the
/// packaged standby, a no-op rerun, then check and smoke-test with the
/// monitoring role init-master made (items 1, 4, 9).
#[test]
fn readme_walkthrough_on_packaged_clusters_on_two_hosts() {
    use crate::harness::netns::{self, Pair};
    let Some(major) = debian::available() else {
        return;
    };
    if !netns::available() {
        eprintln!("skipped: network namespaces need root and iproute2");
        return;
    }
    let hosts = Pair::new();
    let (primary_host, standby_host) = (hosts.server.as_str(), hosts.client.as_str());
    let p = DebianCluster::create(major, Some(primary_host));
    let s = DebianCluster::create(major, Some(standby_host));
    let tmp = harness::tempdir();
    let pw = password_file(tmp.path(), PW).display().to_string();
    let mon_pw = "M0nitor-only";
    let mon_file = password_file(tmp.path(), mon_pw).display().to_string();
    let pgpass = tmp.path().join("pgpass");
    std::fs::write(&pgpass, format!("*:*:*:monitor:{mon_pw}\n")).unwrap();
    std::fs::set_permissions(&pgpass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let pgpass = pgpass.display().to_string();

    // On the primary, as root.
    let standby_net = format!("{}/32", hosts.client_ip);
    let monitor_hosts = [
        format!("{}/32", hosts.client_ip),
        format!("{}/32", hosts.server_ip),
    ];
    let pdata = p.data_str();
    let r = pgrepctl_on(
        Some(primary_host),
        &[
            "init-master",
            "-D",
            &pdata,
            "--allow",
            &standby_net,
            "--password-file",
            &pw,
            "--slot",
            "standby1",
            "--listen",
            "*",
            "--restart",
            "if-needed",
            "--monitor-from",
            &monitor_hosts[0],
            "--monitor-from",
            &monitor_hosts[1],
            "--monitor-password-file",
            &mon_file,
        ],
    );
    assert_eq!(r.code(), 0, "{}\n{}", r.stdout(), r.stderr());
    assert!(r.stdout().contains("init-master: made"), "{}", r.stdout());

    // On the standby, as root: stop the packaged cluster, then clone.
    s.stop();
    let primary = format!("host={} port={} user=replicator", hosts.server_ip, p.port);
    let sdata = s.data_str();
    let clone = [
        "clone-standby",
        "--primary",
        &primary,
        "-D",
        &sdata,
        "--password-file",
        &pw,
        "--slot",
        "standby1",
        "--listen",
        "*",
        "--force",
    ];
    let r = pgrepctl_on(Some(standby_host), &clone);
    assert_eq!(r.code(), 0, "{}\n{}\n{}", r.stdout(), r.stderr(), s.log());
    assert!(r.stdout().contains("clone-standby: made"), "{}", r.stdout());
    let r = pgrepctl_on(Some(standby_host), &clone);
    assert_eq!(
        r.stdout().trim().lines().next(),
        Some("clone-standby: nothing to change"),
        "{}\n{}",
        r.stdout(),
        r.stderr()
    );

    // From the monitoring host (the standby's host here).
    let env = [("PGPASSFILE", pgpass.as_str())];
    let pnode = format!("host={} port={} user=monitor", hosts.server_ip, p.port);
    let snode = format!("host={} port={} user=monitor", hosts.client_ip, s.port);
    let r = pgrepctl_on_env(
        Some(standby_host),
        &["check", "--primary", &pnode, "--standby", &snode],
        &env,
    );
    assert_eq!(r.code(), 0, "{}\n{}", r.stdout(), r.stderr());
    assert!(r.stdout().starts_with("check: OK"), "{}", r.stdout());

    // smoke-test on the primary's host: the primary over its socket as
    // root (peer), the standby as the monitoring role.
    let plocal = format!("host=/var/run/postgresql port={}", p.port);
    let r = pgrepctl_on_env(
        Some(primary_host),
        &["smoke-test", "--primary", &plocal, "--standby", &snode],
        &env,
    );
    assert_eq!(r.code(), 0, "{}\n{}", r.stdout(), r.stderr());
    assert!(r.stdout().starts_with("smoke-test: OK"), "{}", r.stdout());
}

/// Item 9's bad inputs: a superuser as the monitoring role, a missing
/// password for a new one, the replication role reused: clear errors,
/// nothing changed.
#[test]
fn monitor_role_bad_input_changes_nothing() {
    let Some(major) = debian::available() else {
        return;
    };
    let p = DebianCluster::create(major, None);
    let tmp = harness::tempdir();
    let pw = password_file(tmp.path(), PW).display().to_string();
    let data = p.data_str();
    let files = [
        p.etc().join("pg_hba.conf"),
        p.etc().join("postgresql.conf"),
        p.data().join("postgresql.auto.conf"),
    ];
    let paths: Vec<&std::path::Path> = files.iter().map(|f| f.as_path()).collect();
    let before = harness::snapshot(&paths);
    let roles = p.sql("SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles");
    let base = [
        "init-master",
        "--json",
        "-D",
        &data,
        "--password-file",
        &pw,
        "--monitor-from",
        "10.0.0.3/32",
    ];
    let cases: [(&[&str], i32, &str); 3] = [
        (
            &["--monitor-user", "postgres", "--monitor-password-file", &pw],
            2,
            "INVALID_ROLE_NAME",
        ),
        (&[], 1, "PASSWORD_REQUIRED"),
        (
            &[
                "--monitor-user",
                "replicator",
                "--monitor-password-file",
                &pw,
            ],
            2,
            "CONFLICTING_FLAGS",
        ),
    ];
    for (extra, exit, code) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let j = pgrepctl_on(None, &args).fails(exit, code);
        assert!(j["error"]["hint"].is_string(), "{j}");
    }
    assert_eq!(harness::snapshot(&paths), before);
    assert_eq!(
        p.sql("SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles"),
        roles
    );
}

/// Item 15: a primary whose listen_addresses names its own address (config
/// in its data directory, so the copy inherits it) is cloned on another
/// host: the standby gets an address it can bind, with a warning, and
/// starts instead of failing after the copy.
#[test]
fn copied_listen_addresses_of_another_host_are_replaced() {
    use crate::harness::Cluster;
    use crate::harness::netns::{self, Pair};
    if !harness::is_root() || !netns::available() {
        eprintln!("skipped: network namespaces need root and iproute2");
        return;
    }
    let hosts = Pair::new();
    let p = Cluster::builder()
        .netns(&hosts.server)
        .conf(&format!(
            "listen_addresses = 'localhost,{}'",
            hosts.server_ip
        ))
        .init();
    let tmp = harness::tempdir();
    let pw = password_file(tmp.path(), PW).display().to_string();
    let pdata = p.data.display().to_string();
    let conn = p.conninfo();
    let standby_net = format!("{}/32", hosts.client_ip);
    pgrepctl_on(
        Some(&hosts.server),
        &[
            "init-master",
            "--json",
            "-D",
            &pdata,
            "-d",
            &conn,
            "--allow",
            &standby_net,
            "--password-file",
            &pw,
        ],
    )
    .ok();
    let target = tmp.path().join("standby");
    let _stop = harness::StopOnDrop(target.clone());
    let primary = format!("host={} port={} user=replicator", hosts.server_ip, p.port);
    let data = target.display().to_string();
    let port = harness::free_port().to_string();
    let r = pgrepctl_on(
        Some(&hosts.client),
        &clone_args(
            &primary,
            &data,
            &pw,
            &[
                "--port",
                &port,
                "--bindir",
                harness::bindir().to_str().unwrap(),
            ],
        ),
    );
    let j = r.ok();
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    let warnings = j["warnings"].to_string();
    assert!(
        warnings.contains("listen_addresses") && warnings.contains(&hosts.server_ip),
        "{warnings}"
    );
    assert!(
        std::fs::read_to_string(target.join("postgresql.auto.conf"))
            .unwrap()
            .contains("listen_addresses = 'localhost'")
    );
}

/// A packaged standby's configuration is its own, in /etc, which the copy
/// does not replace: a primary listening on an address the standby's host
/// lacks says nothing about the standby, whose own listen_addresses stays
/// (before, it was overridden in postgresql.auto.conf with a false warning).
#[test]
fn a_packaged_standby_keeps_its_own_listen_addresses() {
    use crate::harness::netns::{self, Pair};
    let Some(major) = debian::available() else {
        return;
    };
    if !netns::available() {
        return;
    }
    let hosts = Pair::new();
    let standby_net = format!("{}/32", hosts.client_ip);
    let (p, _tmp, pw) = ready_primary(major, Some(&hosts.server), &standby_net);
    p.append_conf(&format!(
        "listen_addresses = 'localhost,{}'\n",
        hosts.server_ip
    ));
    p.stop();
    p.start();
    let s = DebianCluster::create(major, Some(&hosts.client));
    s.append_conf("listen_addresses = '*'\n");
    s.stop();
    let primary = format!("host={} port={} user=replicator", hosts.server_ip, p.port);
    let data = s.data_str();
    let args = clone_args(&primary, &data, &pw, &["--force"]);
    let j = pgrepctl_on(Some(&hosts.client), &args).ok();
    assert_eq!(j["streaming"]["status"], "streaming", "{j}\n{}", s.log());
    assert!(
        !j["warnings"].to_string().contains("listen_addresses"),
        "{j}"
    );
    assert_eq!(s.sql("SHOW listen_addresses"), "*");
    let auto = std::fs::read_to_string(s.data().join("postgresql.auto.conf")).unwrap();
    assert!(!auto.contains("listen_addresses"), "{auto}");

    // Set by ALTER SYSTEM on the primary, the value comes with the copy's
    // postgresql.auto.conf, which overrides /etc: replaced there, or the
    // standby would not start.
    p.sql(&format!(
        "ALTER SYSTEM SET listen_addresses = 'localhost,{}'",
        hosts.server_ip
    ));
    let s2 = DebianCluster::create(major, Some(&hosts.client));
    s2.append_conf("listen_addresses = '*'\n");
    s2.stop();
    let data = s2.data_str();
    let args = clone_args(&primary, &data, &pw, &["--force"]);
    let j = pgrepctl_on(Some(&hosts.client), &args).ok();
    assert_eq!(j["streaming"]["status"], "streaming", "{j}\n{}", s2.log());
    assert_eq!(s2.sql("SHOW listen_addresses"), "localhost");
    assert!(
        j["changes"]
            .to_string()
            .contains("+listen_addresses = 'localhost'"),
        "{j}"
    );
}

/// Minor item: the replication role cannot read the primary's size (stock
/// hba lets it into `replication` only); the preflight still refuses a
/// filesystem without room for the WAL pg_basebackup writes before it
/// announces the size, instead of meeting ENOSPC mid-copy.
#[test]
fn full_disk_is_refused_before_the_copy_without_the_size() {
    use crate::harness::netns::{self, Pair};
    let Some(major) = debian::available() else {
        return;
    };
    if !netns::available() {
        return;
    }
    let hosts = Pair::new();
    let standby_net = format!("{}/32", hosts.client_ip);
    let (p, tmp, pw) = ready_primary(major, Some(&hosts.server), &standby_net);
    let pdata = p.data_str();
    pgrepctl_on(
        Some(&hosts.server),
        &[
            "init-master",
            "--json",
            "-D",
            &pdata,
            "--allow",
            &standby_net,
            "--password-file",
            &pw,
            "--listen",
            "*",
            "--restart",
            "if-needed",
        ],
    )
    .ok();
    let small = tmp.path().join("small");
    let Some(_m) = harness::Mount::new(&small, "size=8m,mode=0755") else {
        return;
    };
    let target = small.join("standby");
    let primary = format!("host={} port={} user=replicator", hosts.server_ip, p.port);
    let data = target.display().to_string();
    let r = pgrepctl_on(Some(&hosts.client), &clone_args(&primary, &data, &pw, &[]));
    let j = r.fails(1, "DISK_SPACE");
    let msg = j["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("is free") && !msg.contains("No space left"),
        "refused before the copy, not by ENOSPC: {msg}"
    );
    assert_eq!(harness::listing(&small), Vec::<String>::new());
}
