//! Two hosts (network namespaces) with stock packaged clusters, set up as
//! the README does it: A made the primary with `init-master`, B's packaged
//! cluster replaced by a standby of A with `clone-standby`, pgrepctl run as
//! root inside each host. The day-two stories (failover, switchover) start
//! from here. Nothing here connects from the host namespace to a
//! namespace address.

use super::debian::{DebianCluster, pgrepctl_on};
use super::netns::Pair;
use super::run::password_file;
use std::time::{Duration, Instant};

/// The replication role's password (the DBA's --password-file).
pub const PW: &str = "Failover-S3cret";
/// The monitoring role's password.
pub const MON_PW: &str = "M0nitor-only";

/// The two hosts, their clusters and the DBA's files. The clusters come
/// first: they are dropped (their servers stopped) while their hosts'
/// network still exists, then the namespaces are removed.
pub struct Site {
    pub a: DebianCluster,
    pub b: DebianCluster,
    pub hosts: Pair,
    pub tmp: tempfile::TempDir,
    /// The replication password file.
    pub pw: String,
}

/// A client program of the major under test, as postgres on the cluster's
/// own host (namespace), over its socket.
pub fn on_host(c: &DebianCluster, program: &str, args: &[&str]) -> Result<String, String> {
    let bin = super::bindir().join(program);
    let out = Pair::exec(c.netns.as_deref().unwrap(), "runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin)
        .args(["-h", "/var/run/postgresql", "-p", &c.port.to_string()])
        .args(args)
        .current_dir("/")
        .env("HOME", "/var/lib/postgresql")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// SQL as postgres over the socket; panics with the server's log.
pub fn sql(c: &DebianCluster, q: &str) -> String {
    c.try_sql(q)
        .unwrap_or_else(|e| panic!("SQL failed on {}: {q}\n{e}\n{}", c.name, c.log()))
}

/// Waits (up to a minute) until `q` returns `want` on `c`.
pub fn replayed(c: &DebianCluster, q: &str, want: &str) {
    let t = Instant::now();
    while c.try_sql(q).as_deref() != Ok(want) {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{q} never returned {want} on {}: {:?}\n{}",
            c.name,
            c.try_sql(q),
            c.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `pg_dump --data-only`, without the random key of the `\restrict`
/// lines that newer minors write.
pub fn dump(c: &DebianCluster) -> String {
    on_host(c, "pg_dump", &["--data-only", "-d", "postgres"])
        .unwrap_or_else(|e| panic!("pg_dump on {}: {e}", c.name))
        .lines()
        .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs pgrepctl on `host` and asserts it succeeded.
pub fn ok_on(host: &str, args: &[&str]) -> serde_json::Value {
    let r = pgrepctl_on(Some(host), args);
    assert_eq!(r.code(), 0, "{args:?}\n{}\n{}", r.stdout(), r.stderr());
    r.json()
}

/// Appends a line to the cluster's pg_hba.conf (in /etc) and reloads.
pub fn add_hba_line(c: &DebianCluster, line: &str) {
    let hba = c.etc().join("pg_hba.conf");
    let mut text = std::fs::read_to_string(&hba).unwrap();
    text.push_str(&format!("{line}\n"));
    std::fs::write(&hba, text).unwrap();
    sql(c, "SELECT pg_reload_conf()");
}

impl Site {
    /// A libpq password file (mode 0600) with `user`'s password for any
    /// host, as a DBA keeps one for a remote login; its path.
    pub fn pgpass(&self, user: &str, password: &str) -> String {
        let p = self.tmp.path().join(format!("pgpass-{user}"));
        std::fs::write(&p, format!("*:*:*:{user}:{password}\n")).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        p.display().to_string()
    }
}

/// A made the primary (with a slot for B and a monitoring role for both
/// hosts), B's packaged cluster replaced by a standby of A.
pub fn set_up(major: u32) -> Site {
    let hosts = Pair::new();
    let a = DebianCluster::create(major, Some(&hosts.server));
    let b = DebianCluster::create(major, Some(&hosts.client));
    let tmp = super::tempdir();
    let pw = password_file(tmp.path(), PW).display().to_string();
    let mon_dir = tmp.path().join("monitor");
    std::fs::create_dir(&mon_dir).unwrap();
    let mon = password_file(&mon_dir, MON_PW).display().to_string();
    let (a_net, b_net) = (
        format!("{}/32", hosts.server_ip),
        format!("{}/32", hosts.client_ip),
    );
    let adata = a.data_str();
    ok_on(
        &hosts.server,
        &[
            "init-master",
            "--json",
            "-D",
            &adata,
            "--allow",
            &b_net,
            "--password-file",
            &pw,
            "--listen",
            "*",
            // pg_rewind needs wal_log_hints (or data checksums, off in a
            // stock cluster before 18): the README's failover story asks
            // for it on every node that may become a primary.
            "--rewindable",
            "--restart",
            "if-needed",
            "--slot",
            "b",
            "--monitor-from",
            &a_net,
            "--monitor-from",
            &b_net,
            "--monitor-password-file",
            &mon,
        ],
    );
    assert_eq!(sql(&a, "SHOW wal_log_hints"), "on");
    b.stop();
    let primary = format!("host={} port={} user=replicator", hosts.server_ip, a.port);
    let bdata = b.data_str();
    let j = ok_on(
        &hosts.client,
        &[
            "clone-standby",
            "--json",
            "--primary",
            &primary,
            "-D",
            &bdata,
            "--password-file",
            &pw,
            "--force",
            "--slot",
            "b",
        ],
    );
    assert_eq!(j["streaming"]["status"], "streaming", "{j}\n{}", b.log());
    Site {
        a,
        b,
        hosts,
        tmp,
        pw,
    }
}
