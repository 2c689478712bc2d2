//! follow on real servers: after the primary P is killed and standby S1
//! promoted, standby S2 is repointed at S1 and streams from it on timeline
//! 2 (by a reload on 13+, a restart before); a dry run and a second run
//! change nothing; a standby that diverged from S1, or belongs to another
//! cluster, is refused with nothing changed; --standby does the same over
//! a superuser connection on 13+ and is refused before.

use crate::harness::{self, Cluster, pgrepctl};
use crate::promote::{kill_hard, replayed};

fn follow(extra: &[&str]) -> harness::Run {
    let mut args = vec!["follow", "--json"];
    args.extend(extra);
    pgrepctl(args)
}

fn local(s: &Cluster, primary: &Cluster, extra: &[&str]) -> harness::Run {
    let p = primary_arg(primary);
    let mut args = vec!["-D", s.data.to_str().unwrap(), "--primary", &p];
    args.extend(extra);
    follow(&args)
}

/// How a standby names its upstream: over the upstream's socket, as the
/// harness's standbys do.
fn primary_arg(c: &Cluster) -> String {
    format!("host={} port={} user=postgres", c.sock.display(), c.port)
}

/// Both standbys have replayed everything the primary wrote.
fn caught_up(p: &Cluster, standbys: &[&Cluster]) {
    let lsn = p.sql("SELECT pg_current_wal_flush_lsn()");
    for s in standbys {
        replayed(
            s,
            &format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'"),
            "t",
        );
    }
}

fn promote(s: &Cluster) {
    let j = pgrepctl(["promote", "--json", "-D", s.data.to_str().unwrap()]).ok();
    assert_eq!(j["timeline"], 2, "{j}");
}

/// P with standbys S1 and S2, P killed, S1 promoted to timeline 2.
fn failed_over() -> (Cluster, Cluster, Cluster) {
    let p = Cluster::new();
    let s1 = Cluster::standby_of(&p, "s1");
    let s2 = Cluster::standby_of(&p, "s2");
    p.sql("CREATE TABLE t (i int); INSERT INTO t VALUES (1)");
    caught_up(&p, &[&s1, &s2]);
    kill_hard(&p);
    promote(&s1);
    (p, s1, s2)
}

fn start_time(s: &Cluster) -> String {
    s.sql("SELECT pg_postmaster_start_time()")
}

/// The standby streams from `upstream` on timeline 2 and gets its writes.
fn streams_from(s: &Cluster, upstream: &Cluster, row: i32) {
    let port_col = if s.major >= 11 {
        "sender_port::text"
    } else {
        "conninfo"
    };
    let shown = s.sql(&format!(
        "SELECT status || ' ' || received_tli || ' ' || {port_col} FROM pg_stat_wal_receiver"
    ));
    assert!(shown.starts_with("streaming 2 "), "{shown}");
    assert!(shown.contains(&upstream.port.to_string()), "{shown}");
    upstream.sql(&format!("INSERT INTO t VALUES ({row})"));
    replayed(s, &format!("SELECT count(*) FROM t WHERE i = {row}"), "1");
}

#[test]
fn repoints_a_standby_to_the_promoted_one() {
    let (_p, s1, s2) = failed_over();
    let started = start_time(&s2);
    let before = s2.standby_files();
    let dry = local(&s2, &s1, &["--slot", "s2", "--dry-run"]).ok();
    assert_eq!(dry["changed"], true, "{dry}");
    assert_eq!(dry["relation"], "before_fork", "{dry}");
    assert_eq!(s2.standby_files(), before, "a dry run changes nothing");
    assert_eq!(s1.sql("SELECT count(*) FROM pg_replication_slots"), "0");

    let j = local(&s2, &s1, &["--slot", "s2"]).ok();
    assert_eq!(
        harness::summaries(&dry),
        harness::summaries(&j),
        "dry run {dry}\nreal run {j}"
    );
    assert_eq!(j["changed"], true, "{j}");
    assert_eq!(j["streaming"]["timeline"], 2, "{j}");
    streams_from(&s2, &s1, 2);
    assert_eq!(
        s1.sql("SELECT slot_name || ' ' || active FROM pg_replication_slots"),
        "s2 true"
    );
    let conninfo = if s2.major >= 12 {
        s2.file("postgresql.auto.conf")
    } else {
        s2.file("recovery.conf")
    };
    assert!(
        conninfo.contains("application_name=s2"),
        "the standby's own application_name stays: {conninfo}"
    );
    assert!(
        conninfo.contains("recovery_target_timeline = 'latest'"),
        "{conninfo}"
    );
    if s2.major >= 13 {
        assert_eq!(start_time(&s2), started, "a reload, no restart");
        assert_eq!(j["postmaster_restarted"], false, "{j}");
        assert_eq!(j["service"], "reload", "{j}");
    } else {
        assert_ne!(start_time(&s2), started, "before 13 it takes a restart");
        assert_eq!(j["service"], "restart", "{j}");
    }

    let files = s2.standby_files();
    let again = local(&s2, &s1, &["--slot", "s2"]).ok();
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(harness::summaries(&again), Vec::<String>::new());
    assert_eq!(s2.standby_files(), files, "a second run writes nothing");
}

#[test]
fn refuses_a_standby_that_diverged() {
    // S1 stops while P writes a row S2 receives: S1, promoted later,
    // never had it, and S2 went past the point where S1's timeline began.
    let p = Cluster::new();
    let mut s1 = Cluster::standby_of(&p, "s1");
    let s2 = Cluster::standby_of(&p, "s2");
    p.sql("CREATE TABLE t (i int); INSERT INTO t VALUES (1)");
    caught_up(&p, &[&s1, &s2]);
    s1.stop();
    p.sql("INSERT INTO t VALUES (2)");
    caught_up(&p, &[&s2]);
    kill_hard(&p);
    s1.start();
    promote(&s1);

    let before = s2.standby_files();
    let j = local(&s2, &s1, &[]).fails(1, "DIVERGED");
    let message = j["error"]["message"].as_str().unwrap();
    assert!(message.contains("diverged from"), "{j}");
    assert!(
        j["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("pgrepctl rejoin -D"),
        "{j}"
    );
    assert_eq!(s2.standby_files(), before, "nothing changed");
    assert_eq!(s2.sql("SELECT pg_is_in_recovery()"), "t");
}

#[test]
fn refuses_a_primary_of_another_cluster() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    let other = Cluster::new();
    let before = s.standby_files();
    let j = local(&s, &other, &[]).fails(1, "SYSTEM_ID_MISMATCH");
    assert!(
        j["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("clone-standby"),
        "{j}"
    );
    assert_eq!(s.standby_files(), before, "nothing changed");
    // A primary is not a standby: rejoin is for it.
    let j = local(&p, &other, &[]).fails(1, "NOT_A_STANDBY");
    assert!(
        j["error"]["hint"].as_str().unwrap().contains("rejoin"),
        "{j}"
    );
}

#[test]
fn repoints_a_remote_standby_on_13_and_later() {
    let (_p, s1, s2) = failed_over();
    let remote = |extra: &[&str]| {
        let (standby, primary) = (s2.conninfo(), primary_arg(&s1));
        let mut args = vec!["--standby", &standby, "--primary", &primary];
        args.extend(extra);
        follow(&args)
    };
    if s2.major < 13 {
        let j = remote(&[]).fails(2, "USAGE");
        assert!(j["error"]["hint"].as_str().unwrap().contains("-D"), "{j}");
        assert!(
            j["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("runs {}", s2.major)),
            "{j}"
        );
        return;
    }
    let started = start_time(&s2);
    let before = s2.standby_files();
    let dry = remote(&["--dry-run"]).ok();
    assert_eq!(dry["changed"], true, "{dry}");
    assert_eq!(s2.standby_files(), before, "a dry run changes nothing");
    let j = remote(&[]).ok();
    assert_eq!(
        harness::summaries(&dry),
        harness::summaries(&j),
        "dry run {dry}\nreal run {j}"
    );
    assert!(
        harness::summaries(&j)
            .iter()
            .any(|s| s.starts_with("ALTER SYSTEM SET primary_conninfo")),
        "{j}"
    );
    streams_from(&s2, &s1, 2);
    assert_eq!(start_time(&s2), started, "a reload, no restart");
    let again = remote(&[]).ok();
    assert_eq!(again["changed"], false, "{again}");
    // A password for the remote standby would end up in its auto.conf.
    let tmp = harness::tempdir();
    let pw = harness::run::password_file(tmp.path(), "secret");
    remote(&["--password-file", pw.to_str().unwrap()]).fails(2, "INSECURE_REFUSED");
}

#[test]
fn configures_and_starts_a_stopped_standby_with_a_password_file() {
    let (_p, s1, s2) = failed_over();
    // pg_ctl start (which follow runs) takes no -o: the port and socket go
    // into the standby's own configuration.
    let mut conf = std::fs::read_to_string(s2.conf_path()).unwrap();
    conf.push_str(&format!(
        "port = {}\nunix_socket_directories = '{}'\n",
        s2.port,
        s2.sock.display()
    ));
    s2.write_as_pg(&s2.conf_path(), &conf);
    s2.stop();
    let tmp = harness::tempdir();
    let pw = harness::run::password_file(tmp.path(), "s3cret-follow");
    let before = s2.standby_files();
    // A stopped server cannot point to its binaries.
    let bindir = s2.bindir.to_str().unwrap();
    let args = ["--password-file", pw.to_str().unwrap(), "--bindir", bindir];
    if !s2.bindir.join("pg_controldata").exists() {
        // scripts/fetch-postgres's 10: a stopped standby's state is unknown
        // without it, and follow says so.
        eprintln!("skipped: no pg_controldata in {bindir}");
        local(&s2, &s1, &args).fails(1, "TOOL_NOT_FOUND");
        assert_eq!(s2.standby_files(), before, "nothing changed");
        return;
    }
    let dry = local(&s2, &s1, &[&args[..], &["--dry-run"]].concat()).ok();
    assert_eq!(dry["service"], "start", "{dry}");
    assert!(!dry.to_string().contains("s3cret-follow"), "{dry}");
    assert_eq!(s2.standby_files(), before, "a dry run changes nothing");
    assert!(!s2.running());

    let j = local(&s2, &s1, &args).ok();
    assert!(!j.to_string().contains("s3cret-follow"), "{j}");
    assert_eq!(
        harness::summaries(&dry),
        harness::summaries(&j),
        "dry run {dry}\nreal run {j}"
    );
    streams_from(&s2, &s1, 3);
    let passfile = s2.data.join("pgrepctl.pgpass");
    let meta = std::fs::metadata(&passfile).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(Some((meta.uid(), meta.gid())), harness::pg_ids());
    assert_eq!(
        std::fs::read_to_string(&passfile).unwrap(),
        "*:*:*:postgres:s3cret-follow\n"
    );
    let config = if s2.major >= 12 {
        s2.file("postgresql.auto.conf")
    } else {
        s2.file("recovery.conf")
    };
    assert!(
        config.contains(&format!("passfile={}", passfile.display())),
        "{config}"
    );
    assert!(!config.contains("s3cret-follow"), "{config}");
    let again = local(&s2, &s1, &args).ok();
    assert_eq!(again["changed"], false, "{again}");
}

#[test]
fn a_failure_at_any_step_undoes_what_came_before() {
    let (_p, s1, s2) = failed_over();
    let read = |s: &Cluster| {
        ["postgresql.auto.conf", "recovery.conf", "standby.signal"]
            .map(|f| std::fs::read(s.data.join(f)).ok())
    };
    let before = read(&s2);
    let p = primary_arg(&s1);
    let args = [
        "follow",
        "--json",
        "-D",
        s2.data.to_str().unwrap(),
        "--primary",
        &p,
        "--slot",
        "undo_s2",
    ];
    let mut n = 1;
    loop {
        let r = harness::run::pgrepctl_env(args, &[("PGREPCTL_FAIL_AFTER_STEP", &n.to_string())]);
        if r.code() == 0 {
            break;
        }
        let j = r.fails(1, "INTERNAL");
        assert!(
            j["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("after step {n}")),
            "{j}"
        );
        if j["changed"] == true {
            // After the commit point (the wait): the new configuration stays.
            assert_eq!(n, 4, "{j}");
            assert_ne!(read(&s2), before);
            break;
        }
        assert_eq!(read(&s2), before, "failure after step {n}: {j}");
        assert_eq!(
            s1.sql("SELECT count(*) FROM pg_replication_slots"),
            "0",
            "after step {n}"
        );
        assert_eq!(s2.sql("SELECT pg_is_in_recovery()"), "t");
        n += 1;
        assert!(n < 10, "the injected failure never stopped");
    }
    // Slot, configuration, reload or restart, then the wait.
    assert_eq!(n, 4);
    let again = harness::run::pgrepctl_env(args, &[]).ok();
    assert_eq!(again["changed"], false, "{again}");
    streams_from(&s2, &s1, 2);
}

#[test]
fn follows_a_standby_as_a_cascade() {
    let p = Cluster::new();
    let s1 = Cluster::standby_of(&p, "s1");
    let s2 = Cluster::standby_of(&p, "s2");
    p.sql("CREATE TABLE t (i int)");
    caught_up(&p, &[&s1, &s2]);
    let j = local(&s2, &s1, &[]).ok();
    assert_eq!(j["relation"], "same_timeline", "{j}");
    assert_eq!(j["changed"], true, "{j}");
    assert_eq!(j["primary"]["in_recovery"], true, "{j}");
    assert!(
        j["warnings"].to_string().contains("itself a standby"),
        "{j}"
    );
    let port_col = if s2.major >= 11 {
        "sender_port::text"
    } else {
        "conninfo"
    };
    let shown = s2.sql(&format!("SELECT {port_col} FROM pg_stat_wal_receiver"));
    assert!(shown.contains(&s1.port.to_string()), "{shown}");
    p.sql("INSERT INTO t VALUES (7)");
    replayed(&s2, "SELECT count(*) FROM t WHERE i = 7", "1");
}

#[test]
fn refuses_to_point_a_standby_at_itself() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    let before = s.standby_files();
    let started = start_time(&s);
    for extra in [&["--dry-run"][..], &[]] {
        let j = local(&s, &s, extra).fails(2, "INVALID_ADDRESS");
        assert!(
            j["error"]["message"].as_str().unwrap().contains("itself"),
            "{j}"
        );
        assert!(
            j["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("primary's address"),
            "{j}"
        );
    }
    assert_eq!(s.standby_files(), before, "nothing changed");
    assert_eq!(start_time(&s), started, "not restarted");
}

/// Make `s`, a standby of `p`, stream through a new slot `name` on `p`.
fn stream_through_slot(p: &Cluster, s: &mut Cluster, name: &str) {
    p.sql(&format!(
        "SELECT pg_create_physical_replication_slot('{name}', true)"
    ));
    let file = if s.major >= 12 {
        "postgresql.auto.conf"
    } else {
        "recovery.conf"
    };
    let text = format!("{}primary_slot_name = '{name}'\n", s.file(file));
    s.write_as_pg(&s.data.join(file), &text);
    s.stop();
    s.start();
    s.wait_streaming();
    assert_eq!(
        p.sql("SELECT slot_name || ' ' || active FROM pg_replication_slots"),
        format!("{name} true")
    );
}

/// The standby's slot setting as its configuration file has it.
fn slot_lines(s: &Cluster) -> Vec<String> {
    let file = if s.major >= 12 {
        "postgresql.auto.conf"
    } else {
        "recovery.conf"
    };
    s.file(file)
        .lines()
        .filter(|l| l.starts_with("primary_slot_name"))
        .map(str::to_string)
        .collect()
}

#[test]
fn keeps_the_slot_when_the_primary_is_the_same_server_by_another_address() {
    // The standby reaches P over its socket; --primary names P's TCP
    // address: the same server, so the slot there stays in use.
    let p = Cluster::new();
    let mut s = Cluster::standby_of(&p, "s1");
    stream_through_slot(&p, &mut s, "vm");
    p.sql("CREATE TABLE t (i int)");
    let tcp = format!("host=127.0.0.1 port={} user=postgres", p.port);
    let args = ["-D", s.data.to_str().unwrap(), "--primary", &tcp];
    let before = s.standby_files();
    let dry = follow(&[&args[..], &["--dry-run"]].concat()).ok();
    assert_eq!(s.standby_files(), before, "a dry run changes nothing");
    let j = follow(&args).ok();
    assert_eq!(
        harness::summaries(&dry),
        harness::summaries(&j),
        "dry run {dry}\nreal run {j}"
    );
    assert_eq!(j["changed"], true, "{j}");
    assert!(!j["warnings"].to_string().contains("dropped"), "{j}");
    assert!(
        harness::summaries(&j)
            .iter()
            .all(|c| !c.contains("slot vm created")),
        "{j}"
    );
    assert_eq!(slot_lines(&s).last().unwrap(), "primary_slot_name = 'vm'");
    let shown = s.sql(if s.major >= 11 {
        "SELECT sender_host || ' ' || slot_name FROM pg_stat_wal_receiver"
    } else {
        "SELECT conninfo || ' ' || slot_name FROM pg_stat_wal_receiver"
    });
    assert!(
        shown.contains("127.0.0.1") && shown.ends_with(" vm"),
        "{shown}"
    );
    p.sql("INSERT INTO t VALUES (1)");
    replayed(&s, "SELECT count(*) FROM t WHERE i = 1", "1");
    assert_eq!(
        p.sql("SELECT slot_name || ' ' || active FROM pg_replication_slots"),
        "vm true"
    );
    let again = follow(&args).ok();
    assert_eq!(again["changed"], false, "{again}");
}

#[test]
fn drops_the_slot_setting_when_the_primary_is_another_server() {
    // S2 streams from P through slot vm; S1, another running server of
    // the same cluster on this host, has no such slot.
    let p = Cluster::new();
    let s1 = Cluster::standby_of(&p, "s1");
    let mut s2 = Cluster::standby_of(&p, "s2");
    stream_through_slot(&p, &mut s2, "vm");
    let j = local(&s2, &s1, &[]).ok();
    assert!(
        j["warnings"]
            .to_string()
            .contains("primary_slot_name vm is dropped"),
        "{j}"
    );
    let expected: Vec<String> = if s2.major >= 12 {
        vec![
            "primary_slot_name = 'vm'".into(),
            "primary_slot_name = ''".into(),
        ]
    } else {
        vec![]
    };
    let lines = slot_lines(&s2);
    assert_eq!(lines.last(), expected.last(), "{lines:?}");
}
