//! Clusters in the states tests start from: a primary prepared by the
//! real init-master, a directory for clone-standby to fill, standbys and
//! cascades built by hand (so check and smoke-test tests do not depend on
//! clone-standby), and clone-standby run the way the tests run it.

use super::run::{Run, password_file};
use super::{Builder, Cluster, as_pg, check, free_port, node_dirs, pgrepctl, tempdir};
use std::path::{Path, PathBuf};

pub const PW: &str = "s3cret 'quoted' pass";

/// A primary made ready by the real init-master (replication over
/// 127.0.0.1 with a SCRAM password), and the password file.
pub fn prepared_primary(builder: Builder) -> (Cluster, PathBuf) {
    prepared_primary_with(builder, PW)
}

/// [`prepared_primary`] with a chosen replication password.
pub fn prepared_primary_with(builder: Builder, password: &str) -> (Cluster, PathBuf) {
    let c = builder.init();
    let pw = password_file(c.tmp.path(), password);
    init_master(&c, &pw, &["--allow", "127.0.0.1/32"]).ok();
    (c, pw)
}

/// [`prepared_primary`] with the replication role named `role`
/// (init-master's --replication-user) instead of its default.
pub fn prepared_primary_as(builder: Builder, role: &str) -> (Cluster, PathBuf) {
    let c = builder.init();
    let pw = password_file(c.tmp.path(), PW);
    let flags = ["--allow", "127.0.0.1/32", "--replication-user", role];
    init_master(&c, &pw, &flags).ok();
    (c, pw)
}

/// `pgrepctl init-master --json -D DATA --password-file PW EXTRA…` on `c`.
pub fn init_master(c: &Cluster, pw: &Path, extra: &[&str]) -> Run {
    let data = c.data.to_str().unwrap();
    let pw = pw.to_str().unwrap();
    let args = ["init-master", "--json", "-D", data, "--password-file", pw];
    pgrepctl(args.iter().chain(extra))
}

/// `pgrepctl clone-standby --json` of `target` from `primary` over TCP.
pub fn clone(primary: &Cluster, target: &Cluster, pw: Option<&PathBuf>, extra: &[&str]) -> Run {
    clone_env(primary, target, pw, extra, &[])
}

/// [`clone`] with extra environment for pgrepctl.
pub fn clone_env(
    primary: &Cluster,
    target: &Cluster,
    pw: Option<&PathBuf>,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut t = clone_test(primary, target, pw, extra);
    for (k, v) in env {
        t = t.env(k, v);
    }
    t.run()
}

/// [`clone`] streaming as the replication role `role` (user= in --primary).
pub fn clone_as(
    primary: &Cluster,
    target: &Cluster,
    role: &str,
    pw: Option<&PathBuf>,
    extra: &[&str],
) -> Run {
    clone_test_as(primary, target, role, pw, extra).run()
}

/// The [`clone`] command line, to run some other way.
pub fn clone_test(
    primary: &Cluster,
    target: &Cluster,
    pw: Option<&PathBuf>,
    extra: &[&str],
) -> crate::harness::run::Test {
    clone_test_as(primary, target, "replicator", pw, extra)
}

/// [`clone_test`] streaming as the replication role `role`.
pub fn clone_test_as(
    primary: &Cluster,
    target: &Cluster,
    role: &str,
    pw: Option<&PathBuf>,
    extra: &[&str],
) -> crate::harness::run::Test {
    let mut args: Vec<String> = vec![
        "clone-standby".into(),
        "--json".into(),
        "--primary".into(),
        format!("host=127.0.0.1 port={} user={role}", primary.port),
        "-D".into(),
        target.data.display().to_string(),
        "--bindir".into(),
        target.bindir.display().to_string(),
        "--port".into(),
        target.port.to_string(),
        "--wait".into(),
        "30".into(),
    ];
    if !extra.contains(&"--application-name") {
        args.extend(["--application-name".into(), "s1".into()]);
    }
    if let Some(p) = pw {
        args.extend(["--password-file".into(), p.display().to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    crate::harness::run::Test::new(args)
}

impl Cluster {
    /// The standby configuration files clone-standby and follow may
    /// write, as bytes (None: absent), to compare before and after a run.
    pub fn standby_files(&self) -> Vec<(PathBuf, Option<Vec<u8>>)> {
        let files = [
            self.data.join("postgresql.auto.conf"),
            self.data.join("recovery.conf"),
            self.data.join("standby.signal"),
            self.data.join("pgrepctl.pgpass"),
        ];
        super::snapshot(&files.iter().map(|p| p.as_path()).collect::<Vec<_>>())
    }

    /// A hot standby of `primary`, built by hand (pg_basebackup plus a
    /// minimal standby config), started and streaming as `name`. Tests of
    /// `check` and `smoke-test` use it so they do not depend on
    /// clone-standby. Needs the primary's default initdb hba (trust for
    /// replication over the socket).
    pub fn standby_of(primary: &Cluster, name: &str) -> Cluster {
        Cluster::standby_with_slot(primary, name, None)
    }

    /// [`Cluster::standby_of`], streaming through the physical slot
    /// `slot` (created on `primary`) when given.
    pub fn standby_with_slot(primary: &Cluster, name: &str, slot: Option<&str>) -> Cluster {
        let (tmp, data, sock, logdir) = node_dirs();
        let mut c = as_pg(primary.bindir.join("pg_basebackup"));
        c.arg("-D")
            .arg(&data)
            .arg("-h")
            .arg(&primary.sock)
            .args(["-p", &primary.port.to_string(), "-U", "postgres"])
            .args(["-X", "stream", "--checkpoint=fast", "--no-sync"]);
        check(c.output().unwrap(), "pg_basebackup");
        let conninfo = format!(
            "host={} port={} user=postgres application_name={name}",
            primary.sock.display(),
            primary.port
        );
        let mut lines = format!("primary_conninfo = '{conninfo}'\n");
        if let Some(slot) = slot {
            primary.sql(&format!(
                "SELECT 1 FROM pg_create_physical_replication_slot('{slot}')"
            ));
            lines.push_str(&format!("primary_slot_name = '{slot}'\n"));
        }
        let standby = Cluster {
            log: logdir.join("server.log"),
            tmp,
            data,
            sock,
            port: 0,
            major: primary.major,
            bindir: primary.bindir.clone(),
            netns: None,
            server_opts: vec![],
        };
        if primary.major >= 12 {
            standby.write_as_pg(&standby.data.join("standby.signal"), "");
            let auto = standby.data.join("postgresql.auto.conf");
            let mut text = std::fs::read_to_string(&auto).unwrap_or_default();
            text.push_str(&lines);
            standby.write_as_pg(&auto, &text);
        } else {
            standby.write_as_pg(
                &standby.data.join("recovery.conf"),
                &format!("standby_mode = 'on'\n{lines}"),
            );
        }
        let mut standby = standby;
        standby.start();
        standby.wait_streaming();
        standby
    }

    /// A cascading standby: a copy of `upstream` (itself a standby of
    /// `primary`) streaming from it as `name`. A backup taken from a
    /// standby starts at its last restartpoint: a checkpoint on the
    /// primary, replayed upstream, gives it a fresh one.
    pub fn cascade_of(primary: &Cluster, upstream: &Cluster, name: &str) -> Cluster {
        primary.sql("CHECKPOINT");
        let lsn = primary.sql("SELECT pg_current_wal_lsn()");
        for _ in 0..300 {
            if upstream
                .try_sql(&format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'"))
                .is_ok_and(|s| s == "t")
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Cluster::standby_of(upstream, name)
    }

    /// Wait (up to 30 s) until this standby's WAL receiver streams.
    pub fn wait_streaming(&self) {
        for _ in 0..300 {
            if self
                .try_sql("SELECT status FROM pg_stat_wal_receiver")
                .is_ok_and(|s| s == "streaming")
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "standby on port {} never streamed:\n{}",
            self.port,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Cluster {
    /// Where pgrepctl clone-standby will put a standby of `primary`: an
    /// absent data directory in a fresh temp dir. The primary's config
    /// names its private socket directory, so the copy (on another port)
    /// uses it too and `sql()` reaches both. Dropping it stops whatever
    /// server runs there.
    pub fn clone_target(primary: &Cluster) -> Cluster {
        let conf = primary.conf_path();
        let text = std::fs::read_to_string(&conf).unwrap();
        let line = format!("unix_socket_directories = '{}'", primary.sock.display());
        if !text.contains(&line) {
            primary.write_as_pg(&conf, &format!("{text}\n{line}\n"));
        }
        let tmp = tempdir();
        Cluster {
            log: tmp.path().join("server.log"),
            data: tmp.path().join("standby"),
            tmp,
            sock: primary.sock.clone(),
            port: free_port(),
            major: primary.major,
            bindir: primary.bindir.clone(),
            netns: None,
            server_opts: vec![],
        }
    }
}
