//! init-master end to end against real clusters: each starting point
//! reaches the goal state, the standby's replication login really works,
//! and a second run is a byte-identical no-op.

use crate::harness::{self, Cluster, pgrepctl, run::password_file};
use std::path::Path;

pub const PW: &str = "correct horse battery";

pub fn init_master(c: &Cluster, extra: &[&str]) -> harness::Run {
    let pw = password_file(c.tmp.path(), PW);
    harness::fixtures::init_master(c, &pw, extra)
}

/// A replication connection as a standby makes it, over TCP from 127.0.0.1.
pub fn replication_login(c: &Cluster, user: &str, password: &str) -> Result<String, String> {
    let ci = format!(
        "host=127.0.0.1 port={} user='{}' password='{}' dbname=replication replication=true",
        c.port,
        user.replace('\'', "\\'"),
        password
    );
    let out = std::process::Command::new(harness::psql_bin(&c.bindir))
        .args(["-X", "-A", "-t", "-d", &ci, "-c", "IDENTIFY_SYSTEM"])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

pub fn wal_keep_name(c: &Cluster) -> &'static str {
    if c.major >= 13 {
        "wal_keep_size"
    } else {
        "wal_keep_segments"
    }
}

pub fn assert_noop(c: &Cluster, extra: &[&str], files: &[&Path]) {
    let before = harness::snapshot(files);
    let j = init_master(c, extra).ok();
    assert_eq!(j["changed"], false, "second run must be a no-op: {j}");
    assert_eq!(j["changes"].as_array().unwrap().len(), 0, "{j}");
    assert_eq!(
        harness::snapshot(files),
        before,
        "files must stay byte-identical"
    );
}

#[test]
fn default_cluster_reaches_goal_and_second_run_is_noop() {
    let c = Cluster::new();
    let conf_before = std::fs::read_to_string(c.conf_path()).unwrap();
    assert!(
        replication_login(&c, "replicator", PW).is_err(),
        "role must not exist yet"
    );

    let j = init_master(&c, &["--allow", "127.0.0.1/32"]).ok();
    assert_eq!(j["ok"], true);
    assert_eq!(j["changed"], true);
    assert_eq!(j["restart_required"], false, "{j}");
    let kinds: Vec<&str> = j["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"file") && kinds.contains(&"sql") && kinds.contains(&"service"),
        "{j}"
    );
    // No plaintext password anywhere in the report.
    assert!(!j.to_string().contains(PW));
    assert!(
        !j.to_string().contains("SCRAM-SHA-256$"),
        "verifier must be redacted too: {j}"
    );

    // Goal state, read from the live server.
    assert_eq!(c.sql("SHOW wal_level"), "replica");
    assert!(c.sql("SHOW max_wal_senders").parse::<u32>().unwrap() >= 10);
    if c.major >= 13 {
        assert_eq!(c.sql("SHOW wal_keep_size"), "1GB");
    } else {
        assert_eq!(c.sql("SHOW wal_keep_segments"), "64");
    }
    assert_eq!(
        c.sql("SELECT rolcanlogin AND rolreplication FROM pg_roles WHERE rolname = 'replicator'"),
        "t"
    );
    assert!(
        c.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'replicator'")
            .starts_with("SCRAM-SHA-256$")
    );
    // The scram line we added wins over initdb's trust line: a wrong password fails, the right one works.
    assert!(replication_login(&c, "replicator", "wrong").is_err());
    replication_login(&c, "replicator", PW).expect("replication login with the password");

    // Format preserved: only the managed block was appended; backup kept.
    let conf_after = std::fs::read_to_string(c.conf_path()).unwrap();
    assert!(
        conf_after.starts_with(&conf_before),
        "the original text must be untouched"
    );
    assert!(conf_after.contains(wal_keep_name(&c)));
    let backup = c.data.join("postgresql.conf.pgrepctl.orig");
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), conf_before);
    let hba = std::fs::read_to_string(c.hba_path()).unwrap();
    let ours = hba
        .lines()
        .position(|l| l.starts_with("host") && l.contains("replicator"))
        .expect("our hba line");
    let trust = hba
        .lines()
        .position(|l| l.starts_with("host") && l.contains("replication") && l.contains("trust"))
        .unwrap();
    assert!(
        ours < trust,
        "our line must come before initdb's trust line:\n{hba}"
    );
    // Owner and mode kept.
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(c.conf_path()).unwrap();
    assert_eq!(m.mode() & 0o777, 0o600);
    if let Some((uid, _)) = harness::pg_ids() {
        assert_eq!(m.uid(), uid, "owner must stay postgres");
    }

    assert_noop(
        &c,
        &["--allow", "127.0.0.1/32"],
        &[&c.conf_path(), &c.hba_path()],
    );
}

#[test]
fn wal_level_minimal_set_by_alter_system() {
    let mut c = Cluster::new();
    c.sql("ALTER SYSTEM SET wal_level = 'minimal'");
    c.sql("ALTER SYSTEM SET max_wal_senders = 0");
    c.stop();
    c.start();
    assert_eq!(c.sql("SHOW wal_level"), "minimal");
    let auto = c.data.join("postgresql.auto.conf");

    // Without --restart: files and ALTER SYSTEM done, restart reported.
    let j = init_master(&c, &["--allow", "127.0.0.1/32"]).ok();
    assert_eq!(j["changed"], true);
    assert_eq!(j["restart_required"], true, "{j}");
    assert!(
        j["restart_command"].as_str().unwrap().contains("restart"),
        "{j}"
    );
    let warnings = j["warnings"].to_string();
    assert!(warnings.contains("ALTER SYSTEM"), "{j}");
    let auto_text = std::fs::read_to_string(&auto).unwrap();
    assert!(auto_text.contains("wal_level = 'replica'"), "{auto_text}");
    assert_eq!(c.sql("SHOW wal_level"), "minimal", "not restarted yet");

    // Second run without restart: nothing to change, restart still required.
    let j = init_master(&c, &["--allow", "127.0.0.1/32"]).ok();
    assert_eq!(j["changed"], false, "{j}");
    assert_eq!(j["restart_required"], true, "{j}");

    // With --restart=if-needed: restarted, live values confirmed.
    let j = init_master(&c, &["--allow", "127.0.0.1/32", "--restart=if-needed"]).ok();
    assert_eq!(j["changed"], true);
    assert_eq!(j["restart_required"], false, "{j}");
    assert_eq!(c.sql("SHOW wal_level"), "replica");
    assert_eq!(c.sql("SHOW max_wal_senders"), "10");
    assert_noop(
        &c,
        &["--allow", "127.0.0.1/32", "--restart=if-needed"],
        &[&c.conf_path(), &c.hba_path(), &auto],
    );
}

#[test]
fn slots_listen_and_dry_run() {
    let c = Cluster::new();
    let files = [c.conf_path(), c.hba_path()];
    let paths: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let before = harness::snapshot(&paths);
    let args = [
        "--allow",
        "10.1.2.0/24",
        "--slot",
        "standby_1",
        "--listen",
        "*",
    ];
    let j = init_master(&c, &[&args[..], &["--dry-run"]].concat()).ok();
    assert_eq!(j["dry_run"], true);
    assert_eq!(
        j["changed"], true,
        "a dry run reports changed as a real run would"
    );
    assert!(
        j["changes"]
            .to_string()
            .contains("pg_create_physical_replication_slot"),
        "{j}"
    );
    assert!(
        j["changes"][0]["diff"].as_str().unwrap().contains("+"),
        "{j}"
    );
    assert_eq!(
        harness::snapshot(&paths),
        before,
        "dry run must not touch files"
    );
    assert_eq!(
        c.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'replicator'"),
        "0"
    );
    assert_eq!(c.sql("SELECT count(*) FROM pg_replication_slots"), "0");

    let real = init_master(&c, &args).ok();
    assert_eq!(
        real["changes"].as_array().unwrap().len(),
        j["changes"].as_array().unwrap().len(),
        "dry run and real run agree"
    );
    assert_eq!(
        real["restart_required"], true,
        "listen_addresses needs a restart"
    );
    assert_eq!(
        c.sql("SELECT slot_type FROM pg_replication_slots WHERE slot_name = 'standby_1'"),
        "physical"
    );
    assert_eq!(c.sql("SELECT count(*) FROM pg_hba_file_rules WHERE address = '10.1.2.0' AND netmask = '255.255.255.0'"), "1");
    let dry_again = init_master(&c, &[&args[..], &["--dry-run"]].concat()).ok();
    assert_eq!(dry_again["changed"], false, "{dry_again}");
}

#[test]
fn listen_warning_for_remote_standbys() {
    let c = Cluster::new();
    let j = init_master(&c, &["--allow", "10.9.9.9"]).ok();
    let w = j["warnings"].to_string();
    assert!(
        w.contains("listen_addresses") && w.contains("--listen"),
        "{j}"
    );
}

#[test]
fn text_output_reports_and_second_run_says_nothing_to_change() {
    let c = Cluster::new();
    let pw = password_file(c.tmp.path(), PW);
    let args = [
        "init-master",
        "-D",
        c.data.to_str().unwrap(),
        "--allow",
        "127.0.0.1/32",
        "--password-file",
        pw.to_str().unwrap(),
    ];
    let r = pgrepctl(args);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let out = r.stdout();
    assert!(out.contains("init-master: made"), "{out}");
    assert!(
        out.contains("CREATE ROLE \"replicator\" WITH LOGIN REPLICATION PASSWORD <redacted>"),
        "{out}"
    );
    let r = pgrepctl(args);
    assert_eq!(r.stdout().trim(), "init-master: nothing to change");
}

#[test]
fn debian_layout_cluster() {
    // pg_createcluster keeps the config under /etc/postgresql: only as root
    // with Debian's postgresql-common and the bin dir of Debian's package.
    let bindir = harness::bindir();
    let major = harness::major(&bindir);
    if !harness::is_root()
        || !Path::new("/usr/bin/pg_createcluster").exists()
        || bindir != Path::new(&format!("/usr/lib/postgresql/{major}/bin"))
    {
        eprintln!("skipped: needs root, pg_createcluster and Debian's PostgreSQL {major}");
        return;
    }
    let name = format!("pgrepctl_t{}", std::process::id());
    let port = harness::free_port().to_string();
    let sock = harness::tempdir();
    harness::chown_pg(sock.path());
    let ver = major.to_string();
    let out = std::process::Command::new("pg_createcluster")
        .args([
            &ver,
            &name,
            "-p",
            &port,
            "--start",
            "--",
            "--no-sync",
            "--auth-local=trust",
        ])
        .env("PGREPCTL_IGNORE", "1")
        .output()
        .unwrap();
    struct Drop_(String, String);
    impl Drop for Drop_ {
        fn drop(&mut self) {
            let _ = std::process::Command::new("pg_dropcluster")
                .args([&self.0, &self.1, "--stop"])
                .output();
            // pg_dropcluster leaves files it does not know (our backups) behind.
            let _ = std::fs::remove_dir_all(format!("/etc/postgresql/{}/{}", self.0, self.1));
        }
    }
    let _guard = Drop_(ver.clone(), name.clone());
    harness::check(out, "pg_createcluster");
    let etc = format!("/etc/postgresql/{ver}/{name}");
    let data = format!("/var/lib/postgresql/{ver}/{name}");
    let pw = password_file(sock.path(), PW);
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
    let j = pgrepctl(args).ok();
    let paths: Vec<String> = j["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["path"].as_str().map(String::from))
        .collect();
    assert!(
        paths.iter().all(|p| p.starts_with(&etc)),
        "edits must go to /etc: {paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.ends_with("pg_hba.conf")),
        "{paths:?}"
    );
    assert!(!Path::new(&data).join("pg_hba.conf").exists());
    let files = [
        format!("{etc}/postgresql.conf"),
        format!("{etc}/pg_hba.conf"),
    ];
    let before = harness::snapshot(&[Path::new(&files[0]), Path::new(&files[1])]);
    let j = pgrepctl(args).ok();
    assert_eq!(j["changed"], false, "{j}");
    assert_eq!(
        harness::snapshot(&[Path::new(&files[0]), Path::new(&files[1])]),
        before
    );
}

#[test]
fn setting_in_an_included_file_is_edited_there() {
    let mut c = Cluster::builder()
        .stopped()
        .conf("include 'replication.conf'")
        .init();
    let inc = c.data.join("replication.conf");
    c.write_as_pg(&inc, "# ours\nmax_wal_senders = 2   # too few\n");
    c.start();
    let conf_before = std::fs::read_to_string(c.conf_path()).unwrap();
    let j = init_master(
        &c,
        &[
            "--allow",
            "127.0.0.1/32",
            "--max-wal-senders",
            "12",
            "--restart=if-needed",
        ],
    )
    .ok();
    assert_eq!(
        std::fs::read_to_string(&inc).unwrap(),
        "# ours\nmax_wal_senders = 12   # too few\n"
    );
    assert!(
        !std::fs::read_to_string(c.conf_path()).unwrap()[conf_before.len()..]
            .contains("max_wal_senders"),
        "not appended to postgresql.conf"
    );
    assert!(j["changes"].to_string().contains("replication.conf"), "{j}");
    assert_eq!(c.sql("SHOW max_wal_senders"), "12");
}

#[test]
fn connects_from_environment_and_uri_without_data_directory() {
    let c = Cluster::new();
    let pw = password_file(c.tmp.path(), PW);
    let port = c.port.to_string();
    let sock = c.sock.to_str().unwrap();
    let r = harness::run::pgrepctl_env(
        [
            "init-master",
            "--json",
            "--allow",
            "127.0.0.1",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        &[
            ("PGHOST", sock),
            ("PGPORT", &port),
            ("PGUSER", "postgres"),
            ("PGDATABASE", "postgres"),
        ],
    );
    let j = r.ok();
    assert_eq!(j["changed"], true);
    assert!(
        j["restart_command"]
            .as_str()
            .unwrap()
            .contains(c.data.to_str().unwrap()),
        "data directory from the server: {j}"
    );
    let uri = format!("postgresql://postgres@localhost/postgres?host={sock}&port={port}");
    let j = pgrepctl([
        "init-master",
        "--json",
        "-d",
        &uri,
        "--allow",
        "127.0.0.1",
        "--password-file",
        pw.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(j["changed"], false, "{j}");
    // -D of another directory than the server's is refused.
    let other = Cluster::builder().stopped().init();
    pgrepctl([
        "init-master",
        "--json",
        "-d",
        &uri,
        "-D",
        other.data.to_str().unwrap(),
        "--allow",
        "127.0.0.1",
    ])
    .fails(1, "DATA_DIRECTORY_MISMATCH");
}

#[test]
fn md5_method_and_restart_always() {
    let c = Cluster::new();
    let pid_before = c.sql("SELECT pg_postmaster_start_time()");
    let j = init_master(
        &c,
        &[
            "--allow",
            "127.0.0.1/32",
            "--hba-method",
            "md5",
            "--restart=always",
        ],
    )
    .ok();
    assert!(j["changes"].to_string().contains("restart"), "{j}");
    assert_ne!(
        c.sql("SELECT pg_postmaster_start_time()"),
        pid_before,
        "the server was restarted"
    );
    let hba = std::fs::read_to_string(c.hba_path()).unwrap();
    assert!(
        hba.lines()
            .any(|l| l.contains("replicator") && l.contains("md5")),
        "{hba}"
    );
    replication_login(&c, "replicator", PW).expect("md5 line accepts the SCRAM-stored password");
}

/// Issue 9 item 14: on a primary running with wal_level minimal a slot can
/// only be created after the restart that raises it; without --restart the
/// plan says so up front (dry run too) and nothing changes.
#[test]
fn slot_on_wal_level_minimal_comes_after_the_restart() {
    let c = Cluster::builder()
        .conf("wal_level = minimal")
        .conf("max_wal_senders = 0")
        .init();
    assert_eq!(c.sql("SHOW wal_level"), "minimal");
    let auto = c.data.join("postgresql.auto.conf");
    let files = [c.conf_path(), c.hba_path(), auto.clone()];
    let paths: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let before = harness::snapshot(&paths);
    for extra in [&["--dry-run"][..], &[]] {
        let args = [&["--allow", "127.0.0.1/32", "--slot", "s1"][..], extra].concat();
        let j = init_master(&c, &args).fails(1, "SLOT_NEEDS_RESTART");
        let hint = j["error"]["hint"].as_str().unwrap();
        assert!(hint.contains("--restart if-needed"), "{j}");
        assert_eq!(harness::snapshot(&paths), before, "nothing changed");
        assert_eq!(
            c.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'replicator'"),
            "0"
        );
    }

    let args = [
        "--allow",
        "127.0.0.1/32",
        "--slot",
        "s1",
        "--restart",
        "if-needed",
    ];
    let dry = init_master(&c, &[&args[..], &["--dry-run"]].concat()).ok();
    let summaries: Vec<String> = dry["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["summary"].as_str().unwrap().to_string())
        .collect();
    let restart = summaries.iter().position(|s| s == "restart").unwrap();
    let slot = summaries
        .iter()
        .position(|s| s.contains("pg_create_physical_replication_slot"))
        .unwrap();
    assert!(
        restart < slot,
        "the slot comes after the restart: {summaries:?}"
    );

    let j = init_master(&c, &args).ok();
    assert_eq!(j["changed"], true);
    assert_eq!(j["restart_required"], false, "{j}");
    assert_eq!(c.sql("SHOW wal_level"), "replica");
    assert_eq!(
        c.sql("SELECT slot_type FROM pg_replication_slots WHERE slot_name = 's1'"),
        "physical"
    );
    assert_eq!(
        j["changes"].as_array().unwrap().len(),
        summaries.len(),
        "dry run and real run agree"
    );
    assert_noop(&c, &args, &paths);
}

/// Issue 9: -v prints each step as it is applied, -vv the SQL as well,
/// with the password and its verifier redacted.
#[test]
fn verbose_prints_steps_and_very_verbose_the_sql() {
    let c = Cluster::new();
    let r = init_master(&c, &["--allow", "127.0.0.1/32", "--slot", "s1", "-v"]);
    r.ok();
    let err = r.stderr();
    for step in [
        "applying: edit ",
        "applying: CREATE ROLE \"replicator\" WITH LOGIN REPLICATION PASSWORD <redacted>",
        "applying: reload",
        "applying: SELECT pg_create_physical_replication_slot('s1', true)",
    ] {
        assert!(err.contains(step), "{step:?} missing from:\n{err}");
    }
    assert!(!err.contains("SQL: "), "-v shows no SQL text: {err}");

    let c = Cluster::new();
    let r = init_master(&c, &["--allow", "127.0.0.1/32", "-vv"]);
    r.ok();
    let err = r.stderr();
    assert!(
        err.contains("SQL: CREATE ROLE \"replicator\" WITH LOGIN REPLICATION PASSWORD <redacted>"),
        "{err}"
    );
    assert!(err.contains("SQL: SELECT pg_reload_conf()"), "{err}");
    assert!(
        !err.contains(PW) && !err.contains("SCRAM-SHA-256$"),
        "{err}"
    );
}

/// --rewindable: wal_log_hints on (with the restart it takes) when the
/// cluster has no data checksums; a second run changes nothing.
#[test]
fn rewindable_turns_wal_log_hints_on_without_checksums() {
    let c = Cluster::builder().conf("wal_log_hints = off").init();
    let checksums = c.sql("SHOW data_checksums") == "on";
    let args = [
        "--allow",
        "127.0.0.1/32",
        "--rewindable",
        "--restart",
        "if-needed",
    ];
    let j = init_master(&c, &args).ok();
    assert_eq!(
        c.sql("SHOW wal_log_hints"),
        if checksums { "off" } else { "on" },
        "{j}"
    );
    assert_eq!(init_master(&c, &args).ok()["changed"], false);
}

/// init-master on a standby (a cascade's upstream) plans as ever, and
/// says the node is a standby; on the primary it does not.
#[test]
fn on_a_standby_it_says_so() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    let tmp = harness::tempdir();
    let pw = password_file(tmp.path(), PW);
    let warned = |c: &Cluster| {
        let j = pgrepctl([
            "init-master",
            "--json",
            "--dry-run",
            "-D",
            c.data.to_str().unwrap(),
            "--allow",
            "127.0.0.2/32",
            "--password-file",
            pw.to_str().unwrap(),
        ])
        .ok();
        j["warnings"]
            .to_string()
            .contains("is a standby (in recovery)")
    };
    assert!(warned(&s));
    assert!(!warned(&p));
}
