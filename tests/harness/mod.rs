//! Real PostgreSQL clusters for tests: initdb'd (a copy of a template, see
//! [`template`]) into a private temp dir, listening on a free loopback port
//! and a private socket directory, run as the `postgres` OS user when the
//! tests run as root, and stopped on drop — also when the test panics. The
//! PostgreSQL bin directory is a parameter (`PGREPCTL_TEST_BINDIR`) so the
//! same suite runs on every major.

#![allow(dead_code)]

pub mod debian;
pub mod fixtures;
pub mod netns;
pub mod run;
pub mod sshd;
pub mod template;
pub mod two_hosts;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU16, Ordering};

pub use run::{Run, Test, pgrepctl, pgrepctl_env_as};

use pgrepctl::pg::cluster::{Ctl, LocalCluster};
use pgrepctl::tools::RunAs;
use std::time::Duration;

/// The bin directory under test: `PGREPCTL_TEST_BINDIR`, else Debian's 15.
pub fn bindir() -> PathBuf {
    if let Some(d) = std::env::var_os("PGREPCTL_TEST_BINDIR") {
        return PathBuf::from(d);
    }
    for major in [15, 16, 17, 14, 18, 13, 12, 11, 10] {
        let d = PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"));
        if d.join("initdb").exists() {
            return d;
        }
    }
    panic!("no PostgreSQL found: set PGREPCTL_TEST_BINDIR or install postgresql-15");
}

pub fn major(bindir: &Path) -> u32 {
    let out = Command::new(bindir.join("pg_ctl"))
        .arg("--version")
        .output()
        .expect("pg_ctl --version");
    let s = String::from_utf8_lossy(&out.stdout);
    let v = s.split(')').nth(1).unwrap_or("").trim();
    v.split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// uid/gid of `postgres` when we are root (PostgreSQL refuses root).
pub fn pg_ids() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let u = nix::unistd::User::from_name("postgres")
        .unwrap()
        .expect("a postgres OS user");
    Some((u.uid.as_raw(), u.gid.as_raw()))
}

/// A command run as the PostgreSQL OS user.
pub fn as_pg(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    c.current_dir("/");
    if let Some((uid, gid)) = pg_ids() {
        c.uid(uid).gid(gid);
        c.env("HOME", "/var/lib/postgresql");
    }
    c
}

pub fn chown_pg(path: &Path) {
    if let Some((uid, gid)) = pg_ids() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

pub fn check(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// Test servers listen below the kernel's ephemeral range (32768 and up
/// by default): a port found free there can be taken by any outgoing
/// connection before the server binds it (seen: "could not create any
/// TCP/IP sockets" in a clone's start).
const PORTS: std::ops::Range<u16> = 10000..32000;

/// A loopback port nobody listens on. Ports are handed out from a
/// per-process start in [`PORTS`], wrapping, so parallel tests in one run
/// never pick the same one and runs in parallel rarely meet.
pub fn free_port() -> u16 {
    let span = PORTS.end - PORTS.start;
    let _ = NEXT_PORT.compare_exchange(
        0,
        1 + (std::process::id() % 110) as u16 * 200,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let p = PORTS.start + NEXT_PORT.fetch_add(1, Ordering::SeqCst) % span;
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
            && std::net::TcpListener::bind(("::1", p))
                .map(|_| true)
                .unwrap_or(true)
        {
            return p;
        }
    }
}

/// A temp dir the postgres user can traverse.
pub fn tempdir() -> tempfile::TempDir {
    let t = tempfile::Builder::new()
        .prefix("pgrepctl-t")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    t
}

pub struct Cluster {
    pub tmp: tempfile::TempDir,
    pub data: PathBuf,
    pub sock: PathBuf,
    pub log: PathBuf,
    pub port: u16,
    pub bindir: PathBuf,
    pub major: u32,
    /// Network namespace the server runs in (a separate test "host").
    pub netns: Option<String>,
    pub server_opts: Vec<String>,
}

#[derive(Default)]
pub struct Builder {
    initdb_args: Vec<String>,
    conf: Vec<String>,
    hba: Option<String>,
    start: bool,
    bindir: Option<PathBuf>,
    netns: Option<String>,
    server_opts: Vec<String>,
}

impl Builder {
    pub fn initdb_arg(mut self, a: &str) -> Self {
        self.initdb_args.push(a.into());
        self
    }
    /// Lines appended to postgresql.conf before the first start.
    pub fn conf(mut self, line: &str) -> Self {
        self.conf.push(line.into());
        self
    }
    /// Replace pg_hba.conf before the first start.
    pub fn hba(mut self, text: &str) -> Self {
        self.hba = Some(text.into());
        self
    }
    pub fn bindir(mut self, d: &Path) -> Self {
        self.bindir = Some(d.to_path_buf());
        self
    }
    /// Run the server inside this network namespace.
    pub fn netns(mut self, ns: &str) -> Self {
        self.netns = Some(ns.into());
        self
    }
    /// Extra server options on pg_ctl's command line (`-c name=value`),
    /// which a copy of the data directory does not inherit.
    pub fn server_opt(mut self, o: &str) -> Self {
        self.server_opts.push(o.into());
        self
    }
    pub fn stopped(mut self) -> Self {
        self.start = false;
        self
    }
    pub fn init(self) -> Cluster {
        let bindir = self.bindir.clone().unwrap_or_else(bindir);
        let (tmp, data, sock, logdir) = node_dirs();
        let args: Vec<String> = [
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]
        .into_iter()
        .map(String::from)
        .chain(self.initdb_args.iter().cloned())
        .collect();
        template::init_into(&bindir, &args, &data);
        let mut cluster = Cluster {
            log: logdir.join("server.log"),
            tmp,
            data,
            sock,
            port: 0,
            major: major(&bindir),
            bindir,
            netns: self.netns.clone(),
            server_opts: self.server_opts.clone(),
        };
        if !self.conf.is_empty() {
            let mut text = std::fs::read_to_string(cluster.conf_path()).unwrap();
            for l in &self.conf {
                text.push_str(l);
                text.push('\n');
            }
            cluster.write_as_pg(&cluster.conf_path(), &text);
        }
        if let Some(h) = &self.hba {
            cluster.write_as_pg(&cluster.hba_path(), h);
        }
        if self.start {
            cluster.start();
        }
        cluster
    }
}

impl Cluster {
    pub fn builder() -> Builder {
        Builder {
            start: true,
            ..Default::default()
        }
    }

    /// A default initdb cluster, started.
    pub fn new() -> Cluster {
        Cluster::builder().init()
    }

    pub fn conf_path(&self) -> PathBuf {
        self.data.join("postgresql.conf")
    }
    pub fn hba_path(&self) -> PathBuf {
        self.data.join("pg_hba.conf")
    }

    pub fn write_as_pg(&self, path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        chown_pg(path);
    }

    pub fn start(&mut self) {
        for attempt in 0..5 {
            if self.port == 0 || attempt > 0 {
                self.port = free_port();
            }
            let mut opts = format!("-p {} -k {} -c fsync=off", self.port, self.sock.display());
            for o in &self.server_opts {
                opts.push(' ');
                opts.push_str(o);
            }
            let mut cmd = match &self.netns {
                Some(ns) => {
                    let mut c = netns::Pair::exec(ns, "runuser");
                    c.args(["-u", "postgres", "--"])
                        .arg(self.bindir.join("pg_ctl"));
                    c
                }
                None => as_pg(self.bindir.join("pg_ctl")),
            };
            let out = cmd
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&self.log)
                .args(["-w", "-t", "60", "-o", &opts, "start"])
                .output()
                .unwrap();
            if out.status.success() {
                return;
            }
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if !log.contains("could not bind") && !log.contains("in use") {
                panic!(
                    "pg_ctl start failed: {}\n{log}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        panic!("no free port for PostgreSQL");
    }

    /// This cluster as pgrepctl sees it (never a Debian one).
    pub fn local(&self) -> LocalCluster {
        let bindir = pgrepctl::tools::BinDir {
            path: self.bindir.clone(),
            major: self.major,
        };
        LocalCluster::with_debian(&self.data, bindir, RunAs::owner_of(&self.data), None)
    }

    pub fn stop(&self) {
        let _ = self.local().ctl(Ctl::Stop, Duration::from_secs(60));
    }

    pub fn running(&self) -> bool {
        self.local().running().is_some()
    }

    /// Run SQL as the superuser over the private socket; panics on error.
    pub fn sql(&self, q: &str) -> String {
        self.try_sql(q)
            .unwrap_or_else(|e| panic!("SQL failed: {q}\n{e}"))
    }

    pub fn try_sql(&self, q: &str) -> Result<String, String> {
        self.psql(&[], q)
    }

    pub fn psql(&self, conninfo: &[(&str, &str)], q: &str) -> Result<String, String> {
        let mut ci = format!(
            "host={} port={} user=postgres dbname=postgres",
            self.sock.display(),
            self.port
        );
        for (k, v) in conninfo {
            ci.push_str(&format!(" {k}='{v}'"));
        }
        let out = Command::new(psql_bin(&self.bindir))
            .args([
                "-X",
                "-A",
                "-t",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &ci,
                "-c",
                q,
            ])
            .env_remove("PGPASSWORD")
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The superuser connection string pgrepctl's `-d` takes.
    pub fn conninfo(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.sock.display(),
            self.port
        )
    }
}

/// psql from the bin dir, else the system's (a client works across majors).
pub fn psql_bin(bindir: &Path) -> PathBuf {
    let p = bindir.join("psql");
    if p.exists() { p } else { PathBuf::from("psql") }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_pg(self.bindir.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .output();
    }
}

/// sha256-free fingerprint of files for "nothing changed" assertions:
/// full contents plus the directory listing (catches stray backups).
pub fn snapshot(paths: &[&Path]) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut out = vec![];
    for p in paths {
        out.push((p.to_path_buf(), std::fs::read(p).ok()));
        if let Some(dir) = p.parent() {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            names.retain(|n| n.contains("pgrepctl") || n.ends_with(".conf"));
            names.sort();
            out.push((dir.join("<listing>"), Some(names.join("\n").into_bytes())));
        }
    }
    out
}

impl Cluster {
    /// Contents of a file in the data directory ("" when absent).
    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.data.join(name)).unwrap_or_default()
    }
}

/// Files and directories directly in `dir`, sorted, for "nothing was left
/// behind" assertions.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The bin directory of another major, installed (or found cached) by the
/// project's own scripts/fetch-postgres.
pub fn fetch_bindir(major: u32) -> PathBuf {
    let out = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/fetch-postgres"
    ))
    .arg(major.to_string())
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "scripts/fetch-postgres {major}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A running pg_basebackup whose command line names a path under `dir`:
/// for "the copy has started" and "nothing was left running".
pub fn basebackup_into(dir: &Path) -> Option<i32> {
    let needle = dir.display().to_string();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("pg_basebackup") && cmd.contains(&needle) {
            return Some(pid);
        }
    }
    None
}

/// The `code` of each problem in a check or smoke-test JSON report.
pub fn problem_codes(j: &serde_json::Value) -> Vec<String> {
    j["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap().to_string())
        .collect()
}

/// A fresh temp dir with `data`, `sock` and `log` directories the
/// postgres user owns (mode 0700).
fn node_dirs() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let tmp = tempdir();
    let data = tmp.path().join("data");
    let sock = tmp.path().join("sock");
    let logdir = tmp.path().join("log");
    for d in [&sock, &data, &logdir] {
        std::fs::create_dir(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
        chown_pg(d);
    }
    (tmp, data, sock, logdir)
}

/// Stops, on drop (also on panic), a server pgrepctl started at this data
/// directory, which no `Cluster` owns.
pub struct StopOnDrop(pub PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = as_pg(bindir().join("pg_ctl"))
            .arg("-D")
            .arg(&self.0)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// Stops, on drop (also on panic), the postmaster running at this data
/// directory now, by its PID: found even after its directory was renamed
/// or removed under it (what the test may be proving does not happen).
pub struct KillOnDrop(i32);

impl KillOnDrop {
    pub fn postmaster_of(data: &Path) -> KillOnDrop {
        KillOnDrop(postmaster_pid(data))
    }
}

/// The PID of the postmaster running at `data`, from its postmaster.pid.
pub fn postmaster_pid(data: &Path) -> i32 {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).unwrap();
    text.lines().next().unwrap().trim().parse().unwrap()
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, kill};
        let pid = nix::unistd::Pid::from_raw(self.0);
        // SIGQUIT: the postmaster's immediate shutdown, children and all.
        if kill(pid, Signal::SIGQUIT).is_err() {
            return;
        }
        for _ in 0..500 {
            if kill(pid, None).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A tmpfs mounted for the test's lifetime (root only).
pub struct Mount(PathBuf);

impl Mount {
    pub fn new(dir: &Path, opts: &str) -> Option<Mount> {
        if !is_root() {
            eprintln!("skipped: mounting a small filesystem needs root");
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs");
        Some(Mount(dir.to_path_buf()))
    }
}

/// Unmounted, the mount point `new` created goes too.
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The summaries of a `--json` report's changes, in order.
pub fn summaries(j: &serde_json::Value) -> Vec<String> {
    j["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["summary"].as_str().unwrap().to_string())
        .collect()
}
