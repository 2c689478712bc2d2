//! Clusters exactly as Debian's `pg_createcluster` makes them: stock
//! authentication (`peer` for local connections, `scram-sha-256` for
//! host ones), configuration in `/etc/postgresql/<ver>/<name>`, data in
//! `/var/lib/postgresql/<ver>/<name>`, the socket in `/var/run/postgresql`,
//! started and stopped with `pg_ctlcluster` — optionally inside a network
//! namespace (a separate test "host"). Dropped with `pg_dropcluster`, even
//! on panic. Only as root, with Debian's postgresql-common and the major
//! under test installed from Debian's packages.

use super::netns::Pair;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct DebianCluster {
    pub version: String,
    pub name: String,
    pub port: u16,
    /// The namespace its server runs in, if any.
    pub netns: Option<String>,
}

/// Whether this machine can make Debian clusters of the major under test;
/// says why not (the caller skips) when it cannot.
pub fn available() -> Option<u32> {
    let bindir = super::bindir();
    let major = super::major(&bindir);
    if !super::is_root()
        || !Path::new("/usr/bin/pg_createcluster").exists()
        || bindir != Path::new(&format!("/usr/lib/postgresql/{major}/bin"))
    {
        eprintln!("skipped: needs root, pg_createcluster and Debian's PostgreSQL {major}");
        return None;
    }
    Some(major)
}

fn run(c: &mut Command, what: &str) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    super::check(out, what)
}

impl DebianCluster {
    /// `pg_createcluster <major> <unique name> -p <free port>` with every
    /// default, started (inside `netns` when given).
    pub fn create(major: u32, netns: Option<&str>) -> DebianCluster {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let c = DebianCluster {
            version: major.to_string(),
            name: format!("t{}n{n}", std::process::id()),
            port: super::free_port(),
            netns: netns.map(String::from),
        };
        run(
            Command::new("pg_createcluster")
                .args([&c.version, &c.name, "-p", &c.port.to_string()])
                // Test speed only: no fsync of the fresh cluster.
                .args(["--", "--no-sync"]),
            "pg_createcluster",
        );
        // fsync off keeps parallel tests fast; it is no authentication or
        // layout setting, which are what these tests are about.
        c.append_conf("fsync = off\n");
        c.start();
        c
    }

    pub fn etc(&self) -> PathBuf {
        PathBuf::from(format!("/etc/postgresql/{}/{}", self.version, self.name))
    }
    pub fn data(&self) -> PathBuf {
        PathBuf::from(format!(
            "/var/lib/postgresql/{}/{}",
            self.version, self.name
        ))
    }
    pub fn data_str(&self) -> String {
        self.data().display().to_string()
    }

    /// This cluster as pgrepctl sees it: found through /etc/postgresql
    /// from its data directory, with the binaries found for its major.
    pub fn local(&self) -> pgrepctl::pg::cluster::LocalCluster {
        pgrepctl::pg::cluster::LocalCluster::open(&self.data(), None)
            .unwrap_or_else(|e| panic!("LocalCluster::open {}: {e:?}", self.data_str()))
    }

    pub fn append_conf(&self, text: &str) {
        let p = self.etc().join("postgresql.conf");
        let mut s = std::fs::read_to_string(&p).unwrap();
        s.push_str(text);
        std::fs::write(&p, s).unwrap();
    }

    fn ctl(&self, verb: &str) -> Command {
        let mut c = match &self.netns {
            Some(ns) => Pair::exec(ns, "pg_ctlcluster"),
            None => Command::new("pg_ctlcluster"),
        };
        c.args([&self.version, &self.name, verb]);
        c
    }

    pub fn start(&self) {
        run(&mut self.ctl("start"), "pg_ctlcluster start");
    }

    pub fn stop(&self) {
        run(&mut self.ctl("stop"), "pg_ctlcluster stop");
    }

    pub fn running(&self) -> bool {
        Command::new("pg_ctlcluster")
            .args([&self.version, &self.name, "status"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// SQL as the postgres OS user over the socket (peer), as a DBA would.
    pub fn sql(&self, q: &str) -> String {
        self.try_sql(q)
            .unwrap_or_else(|e| panic!("SQL failed on {}: {q}\n{e}", self.name))
    }

    pub fn try_sql(&self, q: &str) -> Result<String, String> {
        let out = super::as_pg("psql")
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-p", &self.port.to_string(), "-d", "postgres", "-c", q])
            .env("PGCLUSTER", format!("{}/{}", self.version, self.name))
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(format!(
            "/var/log/postgresql/postgresql-{}-{}.log",
            self.version, self.name
        ))
        .unwrap_or_default()
    }
}

impl Drop for DebianCluster {
    fn drop(&mut self) {
        let _ = Command::new("pg_dropcluster")
            .args([&self.version, &self.name, "--stop"])
            .output();
        // pg_dropcluster leaves files it does not know (our backups) behind.
        let _ = std::fs::remove_dir_all(self.etc());
        let _ = std::fs::remove_dir_all(self.data());
        let _ = std::fs::remove_file(format!(
            "/var/log/postgresql/postgresql-{}-{}.log",
            self.version, self.name
        ));
    }
}

/// pgrepctl as the README runs it: as root, inside `netns` when given (a
/// separate host), with a clean libpq environment.
pub fn pgrepctl_on(netns: Option<&str>, args: &[&str]) -> super::Run {
    pgrepctl_on_env(netns, args, &[])
}

pub fn pgrepctl_on_env(netns: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> super::Run {
    let test = super::Test::new(args).netns(netns).run_as(None);
    env.iter().fold(test, |t, (k, v)| t.env(k, v)).run()
}
