//! Issue 14's tunnel end to end, on two hosts (network namespaces) with
//! packaged clusters: sshd on the primary's host (key-only login, a key
//! and known_hosts made here), `pgrepctl tunnel run` on the standby's host
//! running the very command line its `tunnel unit` writes, a standby
//! cloned through the forwarded port; ssh killed by PID is started again
//! and the standby streams again; SIGTERM ends `tunnel run` (exit 0) and
//! ssh with it. And the refusals, which need no server.
//!
//! The ssh login is root's: postgres's packaged account is locked ('!'
//! in /etc/shadow) and sshd without PAM refuses a locked account. The key
//! may only forward to the primary's port (authorized_keys options).

use crate::harness::debian::{self, DebianCluster, pgrepctl_on};
use crate::harness::netns::{self, Pair};
use crate::harness::run::password_file;
use crate::harness::sshd::{self, Sshd, listening};
use crate::harness::two_hosts::{ok_on, replayed, sql};
use crate::harness::{Test, pgrepctl};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// `pgrepctl tunnel run` in the background, on a host; SIGKILLed on
/// drop (its ssh dies with it).
struct TunnelRun {
    child: Child,
    log: std::path::PathBuf,
}

impl TunnelRun {
    fn start(ns: &str, flags: &[String], log: &Path) -> TunnelRun {
        let mut c = Pair::exec(ns, env!("CARGO_BIN_EXE_pgrepctl"));
        c.args(["tunnel", "run"]).args(flags);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("PG")) {
            c.env_remove(k);
        }
        let child = c
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log.with_extension("out")).unwrap())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        TunnelRun {
            child,
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The live ssh child (waits up to 10 s for one other than `not`).
    fn ssh(&self, not: Option<i32>) -> i32 {
        let t = Instant::now();
        loop {
            if let Some(p) = ssh_children(self.child.id() as i32)
                .into_iter()
                .find(|p| Some(*p) != not)
            {
                return p;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "no ssh under tunnel run:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TunnelRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// /proc/PID/stat: "pid (comm) state ppid …"; (comm, state, ppid).
fn stat(pid: i32) -> Option<(String, String, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = s.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((comm, f.first()?.to_string(), f.get(1)?.parse().ok()?))
}

fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|(_, state, _)| state != "Z" && state != "X")
}

/// Live `ssh` processes whose parent is `parent`.
fn ssh_children(parent: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            stat(*p)
                .is_some_and(|(comm, state, ppid)| comm == "ssh" && ppid == parent && state != "Z")
        })
        .collect()
}

fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap()
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

/// Waits (bounded) until `f` holds.
fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two hosts: A (the primary, with sshd) and B (its standby-to-be), and
/// the tunnel's flags. Dropped in field order: sshd, the clusters while
/// their network exists, the namespaces, the files.
struct Site {
    sshd: Sshd,
    a: DebianCluster,
    b: DebianCluster,
    hosts: Pair,
    tmp: tempfile::TempDir,
    pw: String,
    local: u16,
    flags: Vec<String>,
}

fn set_up(major: u32) -> Site {
    let hosts = Pair::new();
    let a = DebianCluster::create(major, Some(&hosts.server));
    let b = DebianCluster::create(major, Some(&hosts.client));
    let tmp = crate::harness::tempdir();
    let pw = password_file(tmp.path(), "Tunn3l-S3cret")
        .display()
        .to_string();
    // Through the tunnel, the primary sees its standby come from its own
    // loopback (sshd connects to 127.0.0.1).
    ok_on(
        &hosts.server,
        &[
            "init-master",
            "--json",
            "-D",
            &a.data_str(),
            "--allow",
            "127.0.0.1/32",
            "--password-file",
            &pw,
            "--restart",
            "if-needed",
        ],
    );
    let sshd = Sshd::start(&hosts.server, &hosts.server_ip, "root", a.port, tmp.path());
    let local = if b.port == 15432 { 15433 } else { 15432 };
    let flags = [
        "--ssh",
        &format!("root@{}", hosts.server_ip),
        "--local-port",
        &local.to_string(),
        "--remote-port",
        &a.port.to_string(),
        "--identity",
        &sshd.identity.display().to_string(),
        "--known-hosts",
        &sshd.known_hosts.display().to_string(),
    ]
    .map(String::from)
    .to_vec();
    Site {
        sshd,
        a,
        b,
        hosts,
        tmp,
        pw,
        local,
        flags,
    }
}

impl Site {
    /// `pgrepctl tunnel unit` with the tunnel's flags on B, into tmp/units.
    fn unit(&self, extra: &[&str]) -> serde_json::Value {
        let units = self.tmp.path().join("units");
        std::fs::create_dir_all(&units).unwrap();
        let mut args: Vec<String> = vec!["tunnel".into(), "unit".into(), "--json".into()];
        args.extend(self.flags.iter().cloned());
        args.extend(["--unit-dir".into(), units.display().to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ok_on(&self.hosts.client, &refs)
    }

    /// The words of the unit's ExecStart= (the test's paths hold no spaces).
    fn exec_start(&self) -> Vec<String> {
        let f = self
            .tmp
            .path()
            .join(format!("units/pgrepctl-tunnel-{}.service", self.local));
        std::fs::read_to_string(f)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap()
            .split_whitespace()
            .map(String::from)
            .collect()
    }

    /// B replaced by a standby of A, cloned through the forwarded port.
    fn clone_through_the_tunnel(&self) {
        self.b.stop();
        let primary = format!("host=127.0.0.1 port={} user=replicator", self.local);
        let j = ok_on(
            &self.hosts.client,
            &[
                "clone-standby",
                "--json",
                "--primary",
                &primary,
                "-D",
                &self.b.data_str(),
                "--password-file",
                &self.pw,
                "--force",
            ],
        );
        assert_eq!(
            j["streaming"]["status"],
            "streaming",
            "{j}\n{}",
            self.b.log()
        );
        // clone-standby gives a standby of a loopback (forwarded) primary
        // a short retry interval, so it streams soon after the tunnel is back.
        assert_eq!(sql(&self.b, "SHOW wal_retrieve_retry_interval"), "500ms");
    }
}

/// SIGTERM to `tunnel run`: it exits 0 (within 10 s).
fn terminate(tunnel: &mut TunnelRun) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(tunnel.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = tunnel.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "tunnel run still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{}", tunnel.log());
}

#[test]
fn standby_streams_through_a_supervised_tunnel() {
    let Some(major) = debian::available() else {
        return;
    };
    if !netns::available() || !sshd::available() {
        eprintln!(
            "skipped: needs network namespaces (root, iproute2) and OpenSSH (scripts/install-deps)"
        );
        return;
    }
    let s = set_up(major);
    let dry = s.unit(&["--dry-run"]);
    assert_eq!(dry["changed"], true, "{dry}");
    let no_warnings = dry["warnings"].as_array().unwrap().is_empty();
    assert!(no_warnings, "the host is known: {dry}");
    assert_eq!(s.unit(&[])["changed"], true);

    let log = s.tmp.path().join("tunnel.log");
    let mut tunnel = TunnelRun::start(&s.hosts.client, &s.flags, &log);
    until("the forward listens", Duration::from_secs(15), || {
        listening(&s.hosts.client, s.local)
    });
    let ssh = tunnel.ssh(None);
    assert_eq!(
        cmdline(ssh),
        s.exec_start(),
        "tunnel run runs the unit's command line"
    );
    // The port is held by this very tunnel: a rerun of unit changes nothing.
    let again = s.unit(&[]);
    assert_eq!(again["changed"], false, "{again}");

    s.clone_through_the_tunnel();
    sql(&s.a, "CREATE TABLE t (i int); INSERT INTO t VALUES (1)");
    replayed(&s.b, "SELECT count(*) FROM t", "1");

    // ssh killed by PID: tunnel run starts another, the standby streams again.
    let pid = nix::unistd::Pid::from_raw(ssh);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let ssh2 = tunnel.ssh(Some(ssh));
    sql(&s.a, "INSERT INTO t VALUES (2)");
    replayed(&s.b, "SELECT count(*) FROM t", "2");
    replayed(&s.b, "SELECT status FROM pg_stat_wal_receiver", "streaming");
    let log = tunnel.log();
    assert!(
        log.contains("starting it again in 200 ms"),
        "{log}\nsshd:\n{}",
        s.sshd.log()
    );

    // SIGTERM: exit 0, ssh gone, the port closed.
    terminate(&mut tunnel);
    until("ssh is gone", Duration::from_secs(5), || !alive(ssh2));
    assert!(!listening(&s.hosts.client, s.local));
    drop(tunnel);

    // The tunnel down, check on the standby's host says so.
    let standby = format!("host=/var/run/postgresql port={} user=postgres", s.b.port);
    until("check names the tunnel", Duration::from_secs(15), || {
        let r = pgrepctl_on(
            Some(&s.hosts.client),
            &["check", "--json", "--standby", &standby],
        );
        let j = r.json();
        r.code() == 2
            && j.to_string()
                .contains("refuses connections: is it running?")
    });
}

/// Refusals before anything starts, and the unit's idempotence, with no
/// server and no root.
#[test]
fn tunnel_refuses_bad_input() {
    let tmp = crate::harness::tempdir();
    let busy = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let base = [
        "tunnel",
        "run",
        "--json",
        "--ssh",
        "u@127.0.0.1",
        "--local-port",
    ];
    let r = pgrepctl(base.iter().copied().chain([port.as_str()]));
    r.fails(1, "PORT_IN_USE");
    drop(busy);
    let free = crate::harness::free_port().to_string();
    let key = tmp.path().join("missing-key");
    let key = key.to_str().unwrap();
    let r = pgrepctl(
        base.iter()
            .copied()
            .chain([free.as_str(), "--identity", key]),
    );
    r.fails(1, "FILE_UNREADABLE");
    let r = pgrepctl(base.iter().copied().chain(["0"]));
    assert_eq!(r.code(), 2, "{}", r.stderr());
    let r = pgrepctl([
        "tunnel",
        "run",
        "--json",
        "--ssh=-oProxyCommand=x",
        "--local-port",
        &free,
    ]);
    r.fails(2, "INVALID_VALUE");

    let units = tmp.path().join("units");
    std::fs::create_dir(&units).unwrap();
    let args = [
        "tunnel",
        "unit",
        "--json",
        "--ssh",
        "postgres@db1.example.org",
        "--local-port",
        &free,
        "--known-hosts",
        "/nonexistent/known_hosts",
        "--unit-dir",
        units.to_str().unwrap(),
    ];
    let first = Test::new(args).watch(&units).run();
    let j = first.ok();
    assert_eq!(j["changed"], true);
    assert!(
        j["warnings"][0]
            .as_str()
            .unwrap()
            .contains("db1.example.org is not in /nonexistent/known_hosts"),
        "{j}"
    );
    assert_eq!(first.written().len(), 1, "only the unit is written");
    let again = Test::new(args).watch(&units).run();
    assert_eq!(again.ok()["changed"], false);
    assert!(again.written().is_empty());
    let dry = pgrepctl(args.iter().copied().chain(["--dry-run"])).ok();
    assert_eq!(dry["changed"], false, "{dry}");
    systemd_accepts(&units, &free);
    unit_for_another_user(&units, &free);
}

/// `tunnel unit --user`: the user must exist and own the key (ssh running
/// as them reads it); refused with nothing written, then `User=` in the
/// unit once the key is theirs. Needs root (to give the key away).
fn unit_for_another_user(units: &Path, port: &str) {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: --user needs root to chown the key");
        return;
    }
    let key = private_key(units, "pg-key");
    let run = |user: &str| {
        Test::new(unit_args(units, port, &key, "as-user", &["--user", user]))
            .watch(units)
            .run()
    };
    let r = run("no-such-user-pgrepctl");
    r.fails(2, "INVALID_VALUE");
    assert!(r.written().is_empty());
    let r = run("postgres");
    let e = r.fails(1, "FILE_UNREADABLE");
    let hint = e["error"]["hint"].as_str().unwrap_or_default();
    assert!(hint.contains("chown postgres:"), "{e}");
    assert!(r.written().is_empty());
    let pg = nix::unistd::User::from_name("postgres").unwrap().unwrap();
    nix::unistd::chown(&key, Some(pg.uid), None).unwrap();
    let j = run("postgres").ok();
    assert_eq!(j["changed"], true, "{j}");
    let text = std::fs::read_to_string(units.join("as-user.service")).unwrap();
    assert!(text.lines().any(|l| l == "User=postgres"), "{text}");
    assert_eq!(run("postgres").ok()["changed"], false);
}

/// A 0600 file standing for a private key (its contents are not checked).
fn private_key(dir: &Path, name: &str) -> std::path::PathBuf {
    let key = dir.join(name);
    std::fs::write(&key, "not checked here").unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    key
}

/// `tunnel unit` for db1.example.org with a key, a unit name and more flags.
fn unit_args(units: &Path, port: &str, key: &Path, name: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "tunnel",
        "unit",
        "--json",
        "--ssh",
        "postgres@db1.example.org",
        "--local-port",
        port,
        "--name",
        name,
        "--unit-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(units.display().to_string());
    a.extend(["--identity".to_string(), key.display().to_string()]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// systemd's own parser (where installed) accepts the unit, with a key
/// path that needs quoting and escaping in ExecStart=.
fn systemd_accepts(units: &Path, port: &str) {
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no systemd-analyze");
        return;
    }
    let key = private_key(units, "a key 100%");
    pgrepctl(unit_args(units, port, &key, "quoted", &[])).ok();
    let unit = units.join("quoted.service");
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(out.status.success(), "{out:?}\n{text}");
    assert!(
        out.stderr.is_empty(),
        "{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(" \"/tmp/"), "{text}");
}
