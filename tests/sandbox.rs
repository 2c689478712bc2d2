//! `pgrepctl sandbox`: up builds a replicated, checked pair with the real
//! commands, status is check, down stops everything; an interrupted up
//! leaves no server behind.

use crate::harness::{self, as_pg, pgrepctl};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A sandbox directory that stops every server found under it on drop,
/// by data directory, even when the test panics.
pub struct Dir {
    _tmp: tempfile::TempDir,
    path: PathBuf,
}

impl Dir {
    pub fn new() -> Dir {
        let tmp = harness::tempdir();
        let path = tmp.path().join("sandbox");
        Dir { _tmp: tmp, path }
    }

    pub fn s(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Data directories under the sandbox with a live postmaster.
    fn running(&self) -> Vec<PathBuf> {
        data_dirs(&self.path)
            .into_iter()
            .filter(|d| {
                as_pg(harness::bindir().join("pg_ctl"))
                    .arg("-D")
                    .arg(d)
                    .arg("status")
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false)
            })
            .collect()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        for d in data_dirs(&self.path) {
            let _ = as_pg(harness::bindir().join("pg_ctl"))
                .arg("-D")
                .arg(&d)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

fn data_dirs(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(|e| Some(e.ok()?.path().join("data")))
                .filter(|d| d.join("PG_VERSION").exists())
                .collect()
        })
        .unwrap_or_default()
}

/// `n` consecutive ports from the harness's per-process range, so the
/// sandbox cannot collide with clusters other tests start in parallel.
fn ports(n: u16) -> u16 {
    loop {
        let base = harness::free_port();
        if (1..n).all(|i| harness::free_port() == base + i) {
            return base;
        }
    }
}

pub fn up(dir: &Dir, standbys: u16, extra: &[&str]) -> harness::Run {
    let base = ports(standbys + 1).to_string();
    let n = standbys.to_string();
    let bindir = harness::bindir();
    let mut args = vec![
        "sandbox",
        "up",
        "--json",
        "--dir",
        dir.s(),
        "--standbys",
        &n,
        "--port",
        &base,
        "--bindir",
        bindir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    pgrepctl(&args)
}

#[test]
fn up_status_down() {
    let dir = Dir::new();
    let j = up(&dir, 2, &[]).ok();
    assert_eq!(j["changed"], true, "{j}");
    assert_eq!(j["check"], "OK", "{j}");
    assert_eq!(j["smoke_test"], "OK", "{j}");
    let nodes = j["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert_eq!(dir.running().len(), 3);
    for n in nodes.iter().filter(|n| n["primary"] == false) {
        let name = n["name"].as_str().unwrap();
        assert!(j["smoke_test_latency_ms"][name].as_f64().is_some(), "{j}");
        // The standby streams from the primary through its own slot.
        let conf = std::fs::read_to_string(
            Path::new(n["data"].as_str().unwrap()).join("postgresql.auto.conf"),
        )
        .unwrap();
        if harness::major(&harness::bindir()) >= 12 {
            assert!(
                conf.contains(&format!("primary_slot_name = '{name}'")),
                "{conf}"
            );
        }
    }

    // status is check on the sandbox: every format, monitoring exit codes.
    let s = pgrepctl(["sandbox", "status", "--dir", dir.s(), "--json"]);
    assert_eq!(s.code(), 0, "{}", s.stderr());
    let sj = s.json();
    assert_eq!(sj["command"], "check");
    assert_eq!(sj["pairs"].as_array().unwrap().len(), 2, "{sj}");
    let n = pgrepctl(["sandbox", "status", "--dir", dir.s(), "--format", "nagios"]);
    assert!(n.stdout().starts_with("PGREPCTL OK"), "{}", n.stdout());

    // A second up reports the sandbox and leaves it alone.
    let again = up(&dir, 2, &[]).ok();
    assert_eq!(again["changed"], false, "{again}");
    assert!(
        again["warnings"][0]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    assert_eq!(dir.running().len(), 3);
    // Bad usage is refused even against an existing sandbox.
    up(&dir, 0, &[]).fails(2, "INVALID_VALUE");

    // A stopped standby is a node given that is down: CRITICAL (and its
    // slot on the primary now retains WAL unused).
    let standby = PathBuf::from(nodes[2]["data"].as_str().unwrap());
    as_pg(harness::bindir().join("pg_ctl"))
        .arg("-D")
        .arg(&standby)
        .args(["-m", "fast", "-w", "stop"])
        .output()
        .unwrap();
    let s = pgrepctl(["sandbox", "status", "--dir", dir.s()]);
    assert_eq!(s.code(), 2, "{}", s.stdout());
    assert!(
        s.stdout().contains("CRITICAL  CONNECTION_FAILED"),
        "{}",
        s.stdout()
    );

    let d = pgrepctl(["sandbox", "down", "--json", "--dir", dir.s()]).ok();
    assert_eq!(d["changed"], true);
    assert!(dir.running().is_empty());
    assert!(!dir.path.exists());
    let d = pgrepctl(["sandbox", "down", "--json", "--dir", dir.s()]).ok();
    assert_eq!(d["changed"], false);
}

#[test]
fn bad_input_changes_nothing() {
    let dir = Dir::new();
    up(&dir, 0, &[]).fails(2, "INVALID_VALUE");
    assert!(!dir.path.exists());

    std::fs::create_dir(&dir.path).unwrap();
    std::fs::write(dir.path.join("notes.txt"), "mine").unwrap();
    let j = up(&dir, 1, &[]).fails(1, "PGDATA_NOT_EMPTY");
    assert!(j["error"]["hint"].as_str().unwrap().contains("--dir"));
    assert_eq!(harness::listing(&dir.path), vec!["notes.txt"]);
    // down on a directory that is not a sandbox: an error, not "done".
    let j = pgrepctl(["sandbox", "down", "--json", "--dir", dir.s()]).fails(2, "INVALID_VALUE");
    assert!(
        j["error"]["hint"].as_str().unwrap().contains("--dir"),
        "{j}"
    );
    assert_eq!(harness::listing(&dir.path), vec!["notes.txt"]);

    let empty = Dir::new();
    let s = pgrepctl(["sandbox", "status", "--json", "--dir", empty.s()]);
    assert_eq!(s.code(), 3, "status of nothing is UNKNOWN: {}", s.stdout());
    assert!(s.stderr().contains("no sandbox"), "{}", s.stderr());
    assert!(!empty.path.exists());

    // A port in use is refused before anything is created.
    let busy = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let bindir = harness::bindir();
    pgrepctl([
        "sandbox",
        "up",
        "--json",
        "--dir",
        empty.s(),
        "--port",
        &port,
        "--bindir",
        bindir.to_str().unwrap(),
    ])
    .fails(2, "INVALID_VALUE");
    assert!(!empty.path.exists());

    pgrepctl([
        "sandbox",
        "up",
        "--json",
        "--dir",
        empty.s(),
        "--bindir",
        "/nonexistent",
    ])
    .fails(1, "TOOL_NOT_FOUND");
    assert!(!empty.path.exists());
}

/// Ctrl-C at any point of `up` (here: during a standby's copy, the longest
/// step) stops every server it started and removes the directory.
#[test]
fn interrupted_up_leaves_no_server() {
    let dir = Dir::new();
    let base = ports(2).to_string();
    let bindir = harness::bindir();
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgrepctl"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PG") {
            c.env_remove(k);
        }
    }
    let mut child: Child = c
        .args([
            "sandbox",
            "up",
            "--json",
            "--dir",
            dir.s(),
            "--port",
            &base,
            "--bindir",
            bindir.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The standby's directory appears once the primary runs and is prepared.
    let started = Instant::now();
    while !dir.path.join("standby1").exists() {
        if started.elapsed() > Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("sandbox up never reached the standby: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let r = harness::Run::from(out);
    r.fails(1, "INTERRUPTED");
    assert!(dir.running().is_empty(), "servers left running");
    assert!(!dir.path.exists(), "{:?}", harness::listing(&dir.path));
    assert!(
        harness::basebackup_into(&dir.path).is_none(),
        "pg_basebackup left running"
    );
}

/// As an ordinary user (the postgres user here), with the default
/// directory: under the user's data directory, never the working one.
#[test]
fn ordinary_user_default_directory() {
    let Some((uid, gid)) = harness::pg_ids() else {
        return; // not root: every other test already runs as an ordinary user
    };
    let mut dir = Dir::new();
    harness::chown_pg(dir._tmp.path());
    let home = dir._tmp.path().to_path_buf();
    let expected = home.join(".local/share/pgrepctl/sandbox");
    dir.path = expected.clone();
    let base = ports(2).to_string();
    let bindir = harness::bindir();
    let as_user = |args: &[&str]| {
        harness::Test::new(args)
            .run_as(Some((uid, gid)))
            .env("HOME", &home)
            .env_remove("XDG_DATA_HOME")
            .run()
    };
    let j = as_user(&[
        "sandbox",
        "up",
        "--json",
        "--port",
        &base,
        "--bindir",
        bindir.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(j["dir"], expected.to_str().unwrap(), "{j}");
    assert_eq!(j["check"], "OK", "{j}");
    assert_eq!(dir.running().len(), 2);
    let s = as_user(&["sandbox", "status", "--format", "nagios"]);
    assert_eq!(s.code(), 0, "{}", s.stdout());
    as_user(&["sandbox", "down", "--json"]).ok();
    assert!(dir.running().is_empty());
    assert!(!expected.exists());
}

/// psql as postgres on a sandbox node (its JSON entry), one value back.
fn node_sql(node: &serde_json::Value, q: &str) -> String {
    let out = as_pg(harness::psql_bin(&harness::bindir()))
        .args(["-XAtq", "-h"])
        .arg(node["socket_dir"].as_str().unwrap())
        .args([
            "-p",
            &node["port"].to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            q,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{q}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// failover: the primary is killed, standby1 promoted, standby2 follows
/// it, the old primary rejoins as a standby; rows written before and after
/// reach every node; status is OK; down stops all of it.
#[test]
fn failover_promotes_repoints_and_rejoins() {
    let dir = Dir::new();
    let j = up(&dir, 2, &[]).ok();
    let nodes = j["nodes"].as_array().unwrap().clone();
    let by_name = |n: &str| nodes.iter().find(|x| x["name"] == n).unwrap().clone();
    let (p, s1, s2) = (by_name("primary"), by_name("standby1"), by_name("standby2"));
    node_sql(
        &p,
        "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 1000)",
    );

    let f = pgrepctl(["sandbox", "failover", "--json", "--dir", dir.s()]);
    let fj = f.ok();
    assert_eq!(fj["changed"], true, "{fj}");
    assert_eq!(fj["check"], "OK", "{fj}");
    assert_eq!(fj["smoke_test"], "OK", "{fj}");
    assert_eq!(fj["primary"], "standby1", "{fj}");
    let summaries: Vec<&str> = fj["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["summary"].as_str().unwrap())
        .collect();
    for who in [
        "primary: killed",
        "standby1: ",
        "standby2: ",
        "old_primary: ",
    ] {
        assert!(
            summaries.iter().any(|s| s.starts_with(who)),
            "{who}: {summaries:?}"
        );
    }
    assert_eq!(node_sql(&s1, "SELECT pg_is_in_recovery()"), "f");
    assert_eq!(node_sql(&p, "SELECT pg_is_in_recovery()"), "t");
    assert_eq!(node_sql(&s2, "SELECT pg_is_in_recovery()"), "t");
    node_sql(&s1, "INSERT INTO t SELECT generate_series(1001, 1500)");
    for n in [&p, &s2] {
        let t = Instant::now();
        while node_sql(n, "SELECT count(*) FROM t") != "1500" {
            assert!(t.elapsed() < Duration::from_secs(30), "{n}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let s = pgrepctl(["sandbox", "status", "--dir", dir.s(), "--format", "nagios"]);
    assert!(s.stdout().starts_with("PGREPCTL OK"), "{}", s.stdout());
    pgrepctl(["sandbox", "down", "--json", "--dir", dir.s()]).ok();
    assert_eq!(dir.running(), Vec::<PathBuf>::new());
}

/// switchover: standby1 becomes the primary with nothing lost, the old
/// primary streams from it, standby2 follows; a second switchover hands
/// the role back; status is OK after each; down stops all of it.
#[test]
fn switchover_hands_over_and_back() {
    let dir = Dir::new();
    let j = up(&dir, 2, &[]).ok();
    let nodes = j["nodes"].as_array().unwrap().clone();
    let by_name = |n: &str| nodes.iter().find(|x| x["name"] == n).unwrap().clone();
    let (p, s1, s2) = (by_name("primary"), by_name("standby1"), by_name("standby2"));
    node_sql(
        &p,
        "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 1000)",
    );

    let f = pgrepctl(["sandbox", "switchover", "--json", "--dir", dir.s()]);
    if harness::major(&harness::bindir()) < 12 {
        // No pg_promote() before 12: refused, nothing changed.
        f.fails(1, "UNSUPPORTED_VERSION");
        assert_eq!(node_sql(&p, "SELECT pg_is_in_recovery()"), "f");
        assert_eq!(node_sql(&s1, "SELECT pg_is_in_recovery()"), "t");
        pgrepctl(["sandbox", "down", "--json", "--dir", dir.s()]).ok();
        return;
    }
    let fj = f.ok();
    assert_eq!(fj["changed"], true, "{fj}");
    assert_eq!(fj["check"], "OK", "{fj}");
    assert_eq!(fj["primary"], "standby1", "{fj}");
    assert_eq!(node_sql(&s1, "SELECT pg_is_in_recovery()"), "f");
    assert_eq!(node_sql(&s1, "SELECT count(*) FROM t"), "1000");
    assert_eq!(node_sql(&p, "SELECT pg_is_in_recovery()"), "t");
    assert_eq!(node_sql(&s2, "SELECT pg_is_in_recovery()"), "t");
    node_sql(&s1, "INSERT INTO t SELECT generate_series(1001, 1500)");
    for n in [&p, &s2] {
        let t = Instant::now();
        while node_sql(n, "SELECT count(*) FROM t") != "1500" {
            assert!(t.elapsed() < Duration::from_secs(30), "{n}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let s = pgrepctl(["sandbox", "status", "--dir", dir.s(), "--format", "nagios"]);
    assert!(s.stdout().starts_with("PGREPCTL OK"), "{}", s.stdout());

    let b = pgrepctl(["sandbox", "switchover", "--json", "--dir", dir.s()]).ok();
    assert_eq!(b["changed"], true, "{b}");
    assert_eq!(b["primary"], "old_primary", "{b}");
    assert_eq!(node_sql(&p, "SELECT pg_is_in_recovery()"), "f");
    assert_eq!(node_sql(&s1, "SELECT pg_is_in_recovery()"), "t");
    assert_eq!(node_sql(&p, "SELECT count(*) FROM t"), "1500");
    // A third time: the old primary's standby configuration is already
    // what the fence writes, and writes must still come back on.
    let c = pgrepctl(["sandbox", "switchover", "--json", "--dir", dir.s()]).ok();
    assert_eq!(c["primary"], "standby1", "{c}");
    node_sql(&s1, "INSERT INTO t VALUES (1501)");
    for n in [&p, &s1, &s2] {
        assert_eq!(
            node_sql(n, "SHOW default_transaction_read_only"),
            "off",
            "{n}"
        );
    }
    let s = pgrepctl(["sandbox", "status", "--dir", dir.s(), "--format", "nagios"]);
    assert!(s.stdout().starts_with("PGREPCTL OK"), "{}", s.stdout());
    pgrepctl(["sandbox", "down", "--json", "--dir", dir.s()]).ok();
    assert_eq!(dir.running(), Vec::<PathBuf>::new());
}
