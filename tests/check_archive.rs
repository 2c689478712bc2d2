//! `check` and the WAL archive on real servers: an archive_command that
//! fails (counted: WARNING, then CRITICAL), one whose program is missing
//! (exit 127: the server does not count it, the `.ready` files pile up),
//! a working one (OK, and `--archive-probe` proves it end to end), a
//! broken one under the probe (CRITICAL within --timeout), and a standby
//! whose primary is unreachable restoring from the archive.

use crate::harness::{Cluster, chown_pg, free_port, pgrepctl, problem_codes};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A primary that archives with `command` (archive_mode needs a start,
/// so it is set before the first one).
fn archiving(command: &str) -> Cluster {
    Cluster::builder()
        .conf("archive_mode = on")
        .conf(&format!("archive_command = '{command}'"))
        .init()
}

/// An empty directory the server's OS user may write, for the archive.
fn archive_dir(c: &Cluster) -> PathBuf {
    let d = c.tmp.path().join("archive");
    std::fs::create_dir(&d).unwrap();
    chown_pg(&d);
    d
}

/// `cp %p DIR/%f`: a working (if not durable) archive_command.
fn cp_into(dir: &Path) -> String {
    format!("cp %p {}/%f", dir.display())
}

/// Change archive_command (it reloads).
fn set_archive_command(c: &Cluster, command: &str) {
    c.sql(&format!(
        "ALTER SYSTEM SET archive_command = '{}'",
        command.replace('\'', "''")
    ));
    c.sql("SELECT pg_reload_conf()");
}

/// Write a little and close the WAL segment, `n` times: `n` segments for
/// the archiver.
fn switch_wal(c: &Cluster, n: usize) {
    c.sql("CREATE TABLE IF NOT EXISTS t (i int)");
    for _ in 0..n {
        c.sql("INSERT INTO t VALUES (1)");
        c.sql("SELECT pg_switch_wal()");
    }
}

/// Wait (up to 60 s) until `q` on `c` returns "t".
fn wait_true(c: &Cluster, q: &str) {
    for _ in 0..600 {
        if c.try_sql(q).is_ok_and(|s| s == "t") {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{q} never became true\n{}",
        std::fs::read_to_string(&c.log).unwrap_or_default()
    );
}

/// `check --json --primary C --expect-standbys 0 EXTRA…` (a primary
/// alone is otherwise CRITICAL for having no standby).
fn check_primary(c: &Cluster, extra: &[&str]) -> (i32, serde_json::Value) {
    let pc = c.conninfo();
    let mut args = vec![
        "check",
        "--json",
        "--primary",
        &pc,
        "--expect-standbys",
        "0",
    ];
    args.extend(extra);
    let r = pgrepctl(&args);
    (r.code(), r.json())
}

#[test]
fn a_failing_archive_command_warns_then_is_critical() {
    let p = archiving("exit 1");
    switch_wal(&p, 1);
    wait_true(&p, "SELECT failed_count > 0 FROM pg_stat_archiver");
    let (code, j) = check_primary(&p, &[]);
    assert_eq!(
        (code, problem_codes(&j)),
        (1, vec!["ARCHIVE_FAILING".to_string()]),
        "{j}"
    );
    let a = &j["archive"];
    assert_eq!(a["archive_mode"], "on", "{j}");
    assert_eq!(a["failing"], true, "{j}");
    assert_eq!(a["archived_count"], 0, "{j}");
    assert!(a["failed_count"].as_i64().unwrap() >= 1, "{j}");
    assert!(a["ready_count"].as_i64().unwrap() >= 1, "{j}");
    assert!(a["last_failed_wal"].is_string(), "{j}");
    assert_eq!(j["nodes"][0]["status"], "WARNING", "{j}");
    let message = j["problems"][0]["message"].as_str().unwrap();
    assert!(message.contains("failed, 0 archived"), "{message}");

    // Failing for longer than --archive-crit: CRITICAL.
    std::thread::sleep(Duration::from_millis(1500));
    let (code, j) = check_primary(&p, &["--archive-crit", "1s"]);
    assert_eq!(code, 2, "{j}");
    assert_eq!(problem_codes(&j), ["ARCHIVE_FAILING"], "{j}");
    assert_eq!(j["problems"][0]["status"], "CRITICAL", "{j}");

    // The counts in the monitoring formats.
    let pc = p.conninfo();
    let base = ["check", "--primary", &pc, "--expect-standbys", "0"];
    let r = pgrepctl(base.iter().chain(&["--format", "nagios"]));
    assert_eq!(r.code(), 1, "{}", r.stdout());
    let line = r.stdout();
    assert!(
        line.starts_with("PGREPCTL WARNING - primary: WAL archiving is failing"),
        "{line}"
    );
    assert!(line.contains(" archive_archived=0c;;;0"), "{line}");
    assert!(line.contains(" archive_ready="), "{line}");
    assert!(line.contains(";16;128;0"), "{line}");
    let r = pgrepctl(base.iter().chain(&["--format", "prometheus"]));
    let text = r.stdout();
    for want in [
        "# TYPE pgrepctl_archive_failed_total counter",
        "pgrepctl_archive_archived_total{node=\"primary\"} 0\n",
        "pgrepctl_archive_ready{node=\"primary\"} ",
        "pgrepctl_archive_last_archived_age_seconds{node=\"primary\"} NaN\n",
    ] {
        assert!(text.contains(want), "{want} missing in\n{text}");
    }
    let r = pgrepctl(base);
    assert!(r.stdout().contains("\nARCHIVER "), "{}", r.stdout());
    for l in r.stdout().lines() {
        assert!(l.chars().count() <= 80, "{l:?}");
    }
}

#[test]
fn failures_the_server_does_not_count_are_caught_by_the_ready_check() {
    // A program that does not exist: the shell exits 127, which the
    // server takes for a crash of the command: the archiver exits and
    // restarts, failed_count stays 0.
    let p = archiving("/nonexistent/cmd %p");
    switch_wal(&p, 3);
    wait_for_log(&p, "exit code 127");
    let (code, j) = check_primary(&p, &["--archive-ready-warn", "2"]);
    assert_eq!(code, 1, "{j}");
    assert_eq!(problem_codes(&j), ["ARCHIVE_BACKLOG"], "{j}");
    assert_eq!(j["archive"]["failed_count"], 0, "{j}");
    assert_eq!(j["archive"]["failing"], false, "{j}");
    assert!(j["archive"]["ready_count"].as_i64().unwrap() >= 2, "{j}");
    let (code, j) = check_primary(
        &p,
        &["--archive-ready-warn", "1", "--archive-ready-crit", "2"],
    );
    assert_eq!(code, 2, "{j}");
    // The thresholds the wrong way round are a usage error.
    let (code, _) = check_primary(
        &p,
        &["--archive-ready-warn", "3", "--archive-ready-crit", "2"],
    );
    assert_eq!(code, 3);

    // A role that may not list pg_wal/archive_status: unknown, not 0.
    // pg_monitor may on 12+ (pg_ls_archive_statusdir); before, only a
    // superuser (pg_ls_dir).
    p.sql("CREATE ROLE watcher LOGIN; CREATE ROLE monitor LOGIN IN ROLE pg_monitor");
    for (role, visible) in [("watcher", false), ("monitor", p.major >= 12)] {
        let ci = p
            .conninfo()
            .replace("user=postgres", &format!("user={role}"));
        let r = pgrepctl([
            "check",
            "--json",
            "--primary",
            &ci,
            "--expect-standbys",
            "0",
            "--archive-ready-warn",
            "2",
        ]);
        let j = r.json();
        let ready = &j["archive"]["ready_count"];
        assert_eq!(ready.is_number(), visible, "{role}: {j}");
        let hidden = j["warnings"]
            .to_string()
            .contains("hidden from the connecting role");
        assert_eq!(hidden, !visible, "{role}: {j}");
        let backlog = problem_codes(&j).contains(&"ARCHIVE_BACKLOG".to_string());
        assert_eq!(backlog, visible, "{role}: {j}");
    }
}

/// Wait (up to 60 s) until the server log of `c` says `what`.
fn wait_for_log(c: &Cluster, what: &str) {
    for _ in 0..600 {
        if std::fs::read_to_string(&c.log).is_ok_and(|l| l.contains(what)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "the server log never said {what:?}:\n{}",
        std::fs::read_to_string(&c.log).unwrap_or_default()
    );
}

#[test]
fn a_working_archive_is_ok_and_the_probe_proves_it() {
    let p = Cluster::builder().conf("archive_mode = on").init();
    let dir = archive_dir(&p);
    set_archive_command(&p, &cp_into(&dir));
    switch_wal(&p, 1);
    wait_true(&p, "SELECT archived_count > 0 FROM pg_stat_archiver");
    let (code, j) = check_primary(&p, &["--archive-probe", "--timeout", "30s"]);
    assert_eq!(code, 0, "{j}");
    let a = &j["archive"];
    assert_eq!(a["status"], "OK", "{j}");
    assert_eq!(a["failed_count"], 0, "{j}");
    assert!(a["last_archived_age_seconds"].as_f64().is_some(), "{j}");
    let seg = a["probe"]["segment"].as_str().unwrap();
    assert_eq!(a["probe"]["archived"], true, "{j}");
    assert!(dir.join(seg).exists(), "{seg} not in the archive");

    // Broken: the probe's segment is never archived; CRITICAL once the
    // timeout has passed (and not much later: it does not hang).
    set_archive_command(&p, "exit 1");
    let (code, j) = check_primary(&p, &["--archive-probe", "--timeout", "3s"]);
    assert_eq!(code, 2, "{j}");
    assert!(
        problem_codes(&j).contains(&"ARCHIVE_PROBE_FAILED".to_string()),
        "{j}"
    );
    let probe = &j["archive"]["probe"];
    assert_eq!(probe["archived"], false, "{j}");
    let waited = probe["waited_seconds"].as_f64().unwrap();
    assert!((2.9..30.0).contains(&waited), "{j}");
    assert!(!dir.join(probe["segment"].as_str().unwrap()).exists());

    // archive_mode off: no archiver, no findings; the probe says so.
    let off = Cluster::new();
    let (code, j) = check_primary(&off, &[]);
    assert_eq!(code, 0, "{j}");
    assert!(j.get("archive").is_none(), "{j}");
    let (code, j) = check_primary(&off, &["--archive-probe"]);
    assert_eq!(
        (code, problem_codes(&j)),
        (2, vec!["ARCHIVE_PROBE_FAILED".to_string()]),
        "{j}"
    );
}

#[test]
fn a_standby_cut_off_from_its_primary_restores_from_the_archive() {
    let p = Cluster::builder().conf("archive_mode = on").init();
    let dir = archive_dir(&p);
    set_archive_command(&p, &cp_into(&dir));
    let s = Cluster::standby_of(&p, "s1");
    let r = pgrepctl(["check", "--json", "--standby", &s.conninfo()]);
    assert_eq!(
        r.json()["nodes"][0]["wal_source"],
        "streaming",
        "{}",
        r.stdout()
    );

    // primary_conninfo pointing nowhere, no restore_command: no source.
    let nowhere = format!("host=127.0.0.1 port={} user=postgres", free_port());
    restart_standby_with(&s, &nowhere, None);
    let r = pgrepctl(["check", "--json", "--standby", &s.conninfo()]);
    let j = r.json();
    assert_eq!(r.code(), 2, "{j}");
    assert_eq!(j["nodes"][0]["wal_source"], "none", "{j}");
    assert_eq!(problem_codes(&j), ["STANDBY_NOT_STREAMING"], "{j}");

    // With restore_command: it restores what the primary archives.
    restart_standby_with(&s, &nowhere, Some(&format!("cp {}/%f %p", dir.display())));
    p.sql("CREATE TABLE after_cut AS SELECT 1 AS i");
    switch_wal(&p, 1);
    wait_true(
        &s,
        "SELECT count(*) = 1 FROM pg_class WHERE relname = 'after_cut'",
    );
    let r = pgrepctl(["check", "--json", "--standby", &s.conninfo()]);
    let j = r.json();
    assert_eq!(r.code(), 2, "{j}");
    assert_eq!(j["nodes"][0]["wal_source"], "archive", "{j}");
    assert_eq!(problem_codes(&j), ["STANDBY_NOT_STREAMING"], "{j}");
    let message = j["problems"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("restoring WAL from the archive"),
        "{message}"
    );
    let r = pgrepctl(["check", "--standby", &s.conninfo()]);
    assert!(
        r.stdout().contains("restoring from archive"),
        "{}",
        r.stdout()
    );
    let node = j["nodes"][0]["name"].as_str().unwrap();
    let r = pgrepctl([
        "check",
        "--format",
        "prometheus",
        "--standby",
        &s.conninfo(),
    ]);
    for (source, v) in [("streaming", 0), ("archive", 1), ("none", 0)] {
        let line = format!("pgrepctl_wal_source{{node=\"{node}\",source=\"{source}\"}} {v}\n");
        assert!(r.stdout().contains(&line), "{line}{}", r.stdout());
    }
}

/// Stop `s`, point it at `conninfo` with `restore_command` (or none), and
/// start it again.
fn restart_standby_with(s: &Cluster, conninfo: &str, restore_command: Option<&str>) {
    s.stop();
    let mut lines = format!("primary_conninfo = '{conninfo}'\n");
    if let Some(rc) = restore_command {
        lines.push_str(&format!("restore_command = '{rc}'\n"));
    }
    if s.major >= 12 {
        let auto = s.data.join("postgresql.auto.conf");
        let text = std::fs::read_to_string(&auto).unwrap_or_default();
        s.write_as_pg(&auto, &format!("{text}{lines}"));
    } else {
        let conf = s.data.join("recovery.conf");
        s.write_as_pg(&conf, &format!("standby_mode = 'on'\n{lines}"));
    }
    // start() takes &mut self only to pick a new port when needed: keep
    // the same one (the test's conninfo uses it).
    let out = crate::harness::as_pg(s.bindir.join("pg_ctl"))
        .arg("-D")
        .arg(&s.data)
        .arg("-l")
        .arg(&s.log)
        .args(["-w", "-t", "60", "-o"])
        .arg(format!(
            "-p {} -k {} -c fsync=off",
            s.port,
            s.sock.display()
        ))
        .arg("start")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&s.log).unwrap_or_default()
    );
}

#[test]
fn a_hung_archive_command_goes_stale() {
    // archive_timeout 1s: stale after 3s (WARNING) and 10s (CRITICAL).
    let p = Cluster::builder()
        .conf("archive_mode = on")
        .conf("archive_timeout = 1")
        .init();
    let dir = archive_dir(&p);
    set_archive_command(&p, &cp_into(&dir));
    switch_wal(&p, 1);
    wait_true(&p, "SELECT archived_count > 0 FROM pg_stat_archiver");
    // Neither succeeds nor fails: no counter moves.
    set_archive_command(&p, "sleep 60");
    std::thread::sleep(Duration::from_millis(500));
    switch_wal(&p, 1);
    let waiting =
        "SELECT count(*) > 0 FROM pg_ls_dir('pg_wal/archive_status') f WHERE f LIKE '%.ready'";
    wait_true(&p, waiting);
    for want in ["WARNING", "CRITICAL"] {
        let mut seen = serde_json::Value::Null;
        for _ in 0..150 {
            let (_, j) = check_primary(&p, &[]);
            let stale = j["problems"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["code"] == "ARCHIVE_STALE")
                .cloned();
            if stale.as_ref().is_some_and(|x| x["status"] == want) {
                seen = j;
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(seen.is_object(), "never {want} ARCHIVE_STALE");
        assert_eq!(problem_codes(&seen), ["ARCHIVE_STALE"], "{seen}");
        assert_eq!(seen["archive"]["failing"], false, "{seen}");
    }
}
