//! Every bad input init-master can get: a clear error with a stable code
//! and exit status, and proof that nothing changed on disk or in the
//! database (file contents, stray backups, role and slot catalogs).

use crate::harness::{self, Cluster, pgrepctl, pgrepctl_env_as, run::password_file};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

struct Guard<'a> {
    c: &'a Cluster,
    files: Vec<PathBuf>,
    snap: Vec<(PathBuf, Option<Vec<u8>>)>,
    catalog: String,
}

/// Everything a failed run must leave alone.
fn guard(c: &Cluster) -> Guard<'_> {
    let files = vec![
        c.conf_path(),
        c.hba_path(),
        c.data.join("postgresql.auto.conf"),
    ];
    let refs: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    Guard {
        c,
        snap: harness::snapshot(&refs),
        catalog: catalog(c),
        files,
    }
}

fn catalog(c: &Cluster) -> String {
    c.sql("SELECT string_agg(rolname || ':' || rolcanlogin || rolreplication || coalesce(rolpassword, '-'), ',' ORDER BY rolname) FROM pg_authid")
        + &c.sql("SELECT count(*) FROM pg_replication_slots")
}

impl Guard<'_> {
    fn unchanged(&self) {
        let refs: Vec<&std::path::Path> = self.files.iter().map(|p| p.as_path()).collect();
        assert_eq!(harness::snapshot(&refs), self.snap, "files changed");
        assert_eq!(catalog(self.c), self.catalog, "roles or slots changed");
    }
}

fn run(c: &Cluster, extra: &[&str]) -> harness::Run {
    let mut args = vec!["init-master", "--json", "-D", c.data.to_str().unwrap()];
    args.extend(extra);
    pgrepctl(args)
}

#[test]
fn usage_errors_exit_2_and_change_nothing() {
    let c = Cluster::new();
    let g = guard(&c);
    let pw = password_file(c.tmp.path(), "pw");
    let pw = pw.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--allow", "10.0.0.300", "--password-file", pw],
            "INVALID_ADDRESS",
        ),
        (
            &["--allow", "not-an-address", "--password-file", pw],
            "INVALID_ADDRESS",
        ),
        (
            &["--allow", "10.0.0.1/24", "--password-file", pw],
            "INVALID_ADDRESS",
        ),
        (
            &["--allow", "0.0.0.0/0", "--password-file", pw],
            "INSECURE_REFUSED",
        ),
        (
            &["--allow", "::/0", "--password-file", pw],
            "INSECURE_REFUSED",
        ),
        (
            &["--allow", "all", "--password-file", pw],
            "INSECURE_REFUSED",
        ),
        (
            &[
                "--allow",
                "10.0.0.2",
                "--hba-method",
                "trust",
                "--password-file",
                pw,
            ],
            "INSECURE_REFUSED",
        ),
        (
            &[
                "--allow",
                "10.0.0.2",
                "--hba-method",
                "cert",
                "--password-file",
                pw,
            ],
            "CONFLICTING_FLAGS",
        ),
        (
            &[
                "--allow",
                "10.0.0.2",
                "--replication-user",
                "a\nb",
                "--password-file",
                pw,
            ],
            "INVALID_ROLE_NAME",
        ),
        (
            &[
                "--allow",
                "10.0.0.2",
                "--bindir",
                "/nonexistent",
                "--password-file",
                pw,
            ],
            "INVALID_VALUE",
        ),
        (
            &[
                "--allow",
                "10.0.0.2",
                "--wal-keep",
                "1XB",
                "--password-file",
                pw,
            ],
            "INVALID_VALUE",
        ),
        (
            &[
                "--allow",
                "10.0.0.2",
                "--replication-user",
                "",
                "--password-file",
                pw,
            ],
            "INVALID_ROLE_NAME",
        ),
        (
            &[
                "--allow",
                "10.0.0.2",
                "--slot",
                "Bad-Slot",
                "--password-file",
                pw,
            ],
            "INVALID_SLOT_NAME",
        ),
        (
            &[
                "--allow",
                "10.0.0.2",
                "--wal-keep",
                "lots",
                "--password-file",
                pw,
            ],
            "INVALID_VALUE",
        ),
        (
            &["--allow", "10.0.0.2", "-q", "-v", "--password-file", pw],
            "CONFLICTING_FLAGS",
        ),
        (
            &[
                "--allow",
                "10.0.0.2",
                "--restart",
                "sometimes",
                "--password-file",
                pw,
            ],
            "USAGE",
        ),
        (
            &[
                "--allow",
                "10.0.0.2",
                "-d",
                "host=/tmp bogus=1",
                "--password-file",
                pw,
            ],
            "UNKNOWN_CONNINFO_KEYWORD",
        ),
        // An address of no interface here (TEST-NET-1): the server would
        // not start with it, so it is refused before any restart.
        (
            &[
                "--allow",
                "10.0.0.2",
                "--listen",
                "localhost,192.0.2.1",
                "--restart",
                "if-needed",
                "--password-file",
                pw,
            ],
            "INVALID_ADDRESS",
        ),
    ];
    let pid = harness::postmaster_pid(&c.data);
    for (args, code) in cases {
        let r = run(&c, args);
        let j = r.fails(2, code);
        // Every usage error, clap's own included, says what to do next.
        assert!(
            j["error"]["hint"].as_str().is_some_and(|h| !h.is_empty()),
            "{j}"
        );
        assert!(r.stderr().contains("\nHINT: "), "{}", r.stderr());
        g.unchanged();
    }
    assert_eq!(harness::postmaster_pid(&c.data), pid, "never restarted");
    // Without --json too: clap's message, then a HINT line naming the help.
    let r = pgrepctl(["init-master", "--restart", "sometimes"]);
    assert_eq!(r.code(), 2);
    assert!(
        r.stderr().contains("HINT: see pgrepctl init-master --help"),
        "{}",
        r.stderr()
    );
}

#[test]
fn password_sources() {
    let c = Cluster::new();
    let g = guard(&c);
    let dir = c.tmp.path();
    let missing = dir.join("nope");
    let empty = dir.join("empty");
    std::fs::write(&empty, "\n").unwrap();
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o600)).unwrap();
    let open = dir.join("open");
    std::fs::write(&open, "pw\n").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();

    run(
        &c,
        &[
            "--allow",
            "127.0.0.1",
            "--password-file",
            missing.to_str().unwrap(),
        ],
    )
    .fails(1, "PASSWORD_FILE_MISSING");
    run(
        &c,
        &[
            "--allow",
            "127.0.0.1",
            "--password-file",
            empty.to_str().unwrap(),
        ],
    )
    .fails(1, "PASSWORD_FILE_EMPTY");
    let j = run(
        &c,
        &[
            "--allow",
            "127.0.0.1",
            "--password-file",
            open.to_str().unwrap(),
        ],
    )
    .fails(1, "PASSWORD_FILE_INSECURE");
    assert!(
        j["error"]["hint"].as_str().unwrap().contains("chmod 600"),
        "{j}"
    );
    // A new role needs a password.
    run(&c, &["--allow", "127.0.0.1"]).fails(1, "PASSWORD_REQUIRED");
    // File and environment both: ambiguous, refused.
    let pw = password_file(dir, "pw");
    let r = harness::run::pgrepctl_env(
        [
            "init-master",
            "--json",
            "-D",
            c.data.to_str().unwrap(),
            "--allow",
            "127.0.0.1",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        &[("PGREPCTL_REPLICATION_PASSWORD", "other")],
    );
    r.fails(2, "CONFLICTING_FLAGS");
    g.unchanged();
    // --allow-insecure accepts the open file; the environment variable works alone.
    run(
        &c,
        &[
            "--allow",
            "127.0.0.1",
            "--password-file",
            open.to_str().unwrap(),
            "--allow-insecure",
        ],
    )
    .ok();
    let c2 = Cluster::new();
    let r = harness::run::pgrepctl_env(
        [
            "init-master",
            "--json",
            "-D",
            c2.data.to_str().unwrap(),
            "--allow",
            "127.0.0.1",
        ],
        &[("PGREPCTL_REPLICATION_PASSWORD", "from-env")],
    );
    assert_eq!(r.ok()["changed"], true);
}

#[test]
fn server_problems() {
    let mut c = Cluster::new();
    let pw = password_file(c.tmp.path(), "pw");
    let pw = pw.to_str().unwrap();

    // Not a superuser.
    c.sql("CREATE ROLE bob LOGIN");
    let g = guard(&c);
    let bob = format!(
        "host={} port={} user=bob dbname=postgres",
        c.sock.display(),
        c.port
    );
    let j = run(
        &c,
        &["-d", &bob, "--allow", "127.0.0.1", "--password-file", pw],
    )
    .fails(1, "NOT_SUPERUSER");
    assert!(
        j["error"]["message"].as_str().unwrap().contains("bob"),
        "{j}"
    );
    g.unchanged();

    // -D that is not a data directory.
    let r = pgrepctl([
        "init-master",
        "--json",
        "-D",
        c.tmp.path().to_str().unwrap(),
        "--allow",
        "127.0.0.1",
        "--password-file",
        pw,
    ]);
    r.fails(1, "NOT_A_DATA_DIRECTORY");

    // A malformed line already in postgresql.conf (server still runs on the old text).
    let mut text = std::fs::read_to_string(c.conf_path()).unwrap();
    text.push_str("work_mem = = 4MB\n");
    let bad_line = text.lines().count();
    c.write_as_pg(&c.conf_path(), &text);
    let g = guard(&c);
    let j =
        run(&c, &["--allow", "127.0.0.1", "--password-file", pw]).fails(1, "CONFIG_PARSE_ERROR");
    let msg = j["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("postgresql.conf:{bad_line}")),
        "file:line expected: {msg}"
    );
    g.unchanged();
    text.truncate(text.len() - "work_mem = = 4MB\n".len());
    c.write_as_pg(&c.conf_path(), &text);

    // --ssl on a server without a certificate: pgrepctl would issue one,
    // which needs the names standbys use (before, the hostssl lines were
    // written and PostgreSQL rejected them with ssl off).
    let g = guard(&c);
    let j = run(
        &c,
        &["--allow", "127.0.0.1", "--ssl", "--password-file", pw],
    )
    .fails(2, "USAGE");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--ssl-name"),
        "{j}"
    );
    g.unchanged();

    // A primary that refuses writes (as migrate cutover leaves a source):
    // the write's refusal is named for what it is, and nothing changed.
    c.sql("ALTER ROLE postgres SET default_transaction_read_only = on");
    let g = guard(&c);
    let j = run(&c, &["--allow", "127.0.0.1", "--password-file", pw]).fails(1, "SERVER_READ_ONLY");
    let hint = j["error"]["hint"].as_str().unwrap();
    assert!(hint.contains("default_transaction_read_only"), "{j}");
    g.unchanged();

    // Server stopped; then a port where nothing listens.
    c.stop();
    let g_files = harness::snapshot(&[&c.conf_path(), &c.hba_path()]);
    run(&c, &["--allow", "127.0.0.1", "--password-file", pw]).fails(1, "SERVER_NOT_RUNNING");
    let port = harness::free_port().to_string();
    let r = pgrepctl([
        "init-master",
        "--json",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "--allow",
        "127.0.0.1",
        "--password-file",
        pw,
    ]);
    r.fails(1, "CONNECTION_FAILED");
    assert_eq!(harness::snapshot(&[&c.conf_path(), &c.hba_path()]), g_files);
    c.start();
}

#[test]
fn unwritable_config_file() {
    let c = Cluster::new();
    let pw = password_file(c.tmp.path(), "pw");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The hba file read-only for the user running pgrepctl. As root the mode
    // does not stop us, so run pgrepctl as postgres with the file owned by root.
    let hba = c.hba_path();
    if harness::is_root() {
        std::os::unix::fs::chown(&hba, Some(0), Some(0)).unwrap();
        std::fs::set_permissions(&hba, std::fs::Permissions::from_mode(0o644)).unwrap();
    } else {
        std::fs::set_permissions(&hba, std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    let g = guard(&c);
    let r = pgrepctl_env_as(
        &[
            "init-master",
            "--json",
            "-D",
            c.data.to_str().unwrap(),
            "--allow",
            "127.0.0.1",
            "--password-file",
            pw.to_str().unwrap(),
            "--allow-insecure",
        ],
        harness::pg_ids(),
    );
    let j = r.fails(1, "FILE_NOT_WRITABLE");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pg_hba.conf"),
        "{j}"
    );
    g.unchanged();
}

/// Issue 9 item 13: a role that is more than a replication login is not
/// made one (nor given the replication password) without
/// --allow-privileged-role; a plain existing role still is.
#[test]
fn role_used_for_other_purposes_is_refused() {
    let c = Cluster::new();
    c.sql("CREATE ROLE creator CREATEDB LOGIN");
    c.sql("CREATE ROLE owner_role NOLOGIN; CREATE TABLE owned_t (i int); ALTER TABLE owned_t OWNER TO owner_role");
    c.sql("CREATE ROLE app_rw NOLOGIN; CREATE ROLE member LOGIN; GRANT app_rw TO member");
    // Membership in pg_monitor (for `check`) alone does not count.
    c.sql("CREATE ROLE monitor NOLOGIN; GRANT pg_monitor TO monitor");
    let pw = password_file(c.tmp.path(), "pw");
    let g = guard(&c);
    for (role, why) in [
        ("creator", "CREATEDB"),
        ("owner_role", "owns 1 database objects"),
        ("member", "member of app_rw"),
    ] {
        for extra in [&["--dry-run"][..], &[]] {
            let mut args = vec![
                "--allow",
                "127.0.0.1/32",
                "--replication-user",
                role,
                "--password-file",
                pw.to_str().unwrap(),
            ];
            args.extend(extra);
            let j = run(&c, &args).fails(1, "ROLE_NOT_DEDICATED");
            assert!(j["error"]["message"].as_str().unwrap().contains(why), "{j}");
            g.unchanged();
        }
    }
    let j = run(
        &c,
        &[
            "--allow",
            "127.0.0.1/32",
            "--replication-user",
            "owner_role",
            "--allow-privileged-role",
            "--password-file",
            pw.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(j["changed"], true);
    assert_eq!(
        c.sql("SELECT rolcanlogin AND rolreplication FROM pg_roles WHERE rolname = 'owner_role'"),
        "t"
    );
    let j = run(
        &c,
        &[
            "--allow",
            "127.0.0.1/32",
            "--replication-user",
            "monitor",
            "--password-file",
            pw.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(j["changed"], true, "{j}");
}

/// A restart needs the server's own major's pg_ctl: a --bindir of another
/// major fails before anything changes, and --dry-run fails the same way
/// (it used to succeed, as only the real run looked for pg_ctl).
#[test]
fn a_restart_with_another_majors_pg_ctl_fails_first_in_a_dry_run_too() {
    let c = Cluster::new();
    let g = guard(&c);
    let pw = password_file(c.tmp.path(), "pw");
    let major = harness::major(&c.bindir);
    let empty = harness::fetch_bindir(if major == 14 { 13 } else { 14 });
    let args = [
        "--allow",
        "127.0.0.1/32",
        "--password-file",
        pw.to_str().unwrap(),
        "--max-wal-senders",
        "17",
        "--restart",
        "if-needed",
        "--bindir",
        empty.to_str().unwrap(),
    ];
    let real = run(&c, &args);
    let mut dry_args = args.to_vec();
    dry_args.push("--dry-run");
    let dry = run(&c, &dry_args);
    let (rj, dj) = (real.json(), dry.json());
    assert_eq!(real.code(), dry.code(), "{rj}\n{dj}");
    assert_ne!(real.code(), 0, "{rj}");
    assert_eq!(rj["error"]["code"], dj["error"]["code"], "{rj}\n{dj}");
    g.unchanged();
}
