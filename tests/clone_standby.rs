//! clone-standby end to end: a prepared primary, an absent directory, and
//! the real command; the result must stream, catch up, be configured for
//! the server's version, and a second run must be a no-op.

use crate::harness::fixtures::{PW, clone, prepared_primary};
use crate::harness::{self, Cluster};
use std::os::unix::fs::PermissionsExt;

#[test]
fn clones_a_streaming_standby_and_second_run_is_a_noop() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    let j = clone(&p, &s, Some(&pw), &[]).ok();
    assert_eq!(j["changed"], true, "{j}");
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    assert_eq!(
        j["primary"]["version_num"].as_u64().unwrap() / 10000,
        p.major as u64
    );

    // It is a hot standby that replays new writes.
    assert_eq!(s.sql("SELECT pg_is_in_recovery()"), "t");
    assert_eq!(
        p.sql("SELECT application_name || ' ' || state FROM pg_stat_replication"),
        "s1 streaming"
    );
    p.sql("CREATE TABLE probe AS SELECT 42 AS answer");
    let mut seen = String::new();
    for _ in 0..100 {
        seen = s.try_sql("SELECT answer FROM probe").unwrap_or_default();
        if seen == "42" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(seen, "42");

    // The standby config is the server version's, minimal, and holds no password.
    let conninfo_file = if p.major >= 12 {
        assert!(s.data.join("standby.signal").exists());
        assert!(!s.data.join("recovery.conf").exists());
        "postgresql.auto.conf"
    } else {
        assert!(!s.data.join("standby.signal").exists());
        assert!(s.file("recovery.conf").contains("standby_mode = 'on'"));
        "recovery.conf"
    };
    let text = s.file(conninfo_file);
    let line = text
        .lines()
        .find(|l| l.starts_with("primary_conninfo"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("passfile="), "{line}");
    assert!(
        !line.contains("s3cret"),
        "no password in the config: {line}"
    );
    for kw in [
        "channel_binding",
        "sslnegotiation",
        "gssencmode",
        "target_session_attrs",
    ] {
        assert!(
            !line.contains(kw),
            "{kw} is unknown to older servers: {line}"
        );
    }
    assert_eq!(
        s.sql("SELECT setting FROM pg_settings WHERE name = 'port'"),
        s.port.to_string()
    );
    let passfile = s.data.join("pgrepctl.pgpass");
    assert_eq!(
        std::fs::metadata(&passfile).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&passfile)
            .unwrap()
            .contains("s3cret")
    );
    // No temporary directory left beside it.
    assert_eq!(harness::listing(s.tmp.path()), vec!["standby"]);

    // Second run: a no-op, files untouched.
    let files = [
        s.data.join(conninfo_file),
        s.data.join("postgresql.auto.conf"),
        passfile,
    ];
    let before: Vec<_> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let j2 = clone(&p, &s, Some(&pw), &[]).ok();
    assert_eq!(j2["changed"], false, "{j2}");
    assert_eq!(j2["changes"].as_array().unwrap().len(), 0, "{j2}");
    let after: Vec<_> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert_eq!(before, after);
}

#[test]
fn dry_run_copies_nothing_and_reports_the_change() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    let j = clone(&p, &s, Some(&pw), &["--dry-run"]).ok();
    assert_eq!(j["changed"], true, "{j}");
    assert_eq!(j["dry_run"], true);
    assert!(!s.data.exists());
    assert_eq!(harness::listing(s.tmp.path()), Vec::<String>::new());
    assert_eq!(
        p.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"),
        "0"
    );
}

#[test]
fn raises_hot_standby_limits_below_the_primarys() {
    // The primary runs with max_connections=150 from its command line; the
    // copied postgresql.conf says 100, which a hot standby cannot use.
    let (p, pw) = prepared_primary(Cluster::builder().server_opt("-c max_connections=150"));
    let s = Cluster::clone_target(&p);
    let j = clone(&p, &s, Some(&pw), &[]).ok();
    let text = j.to_string();
    assert!(text.contains("max_connections 100 -> 150"), "{j}");
    assert_eq!(s.sql("SHOW max_connections"), "150");
}

#[test]
fn slot_is_created_and_used() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    let r = clone(&p, &s, Some(&pw), &["--slot", "standby_one", "-vv"]);
    let j = r.ok();
    assert!(j.to_string().contains("slot standby_one created"), "{j}");
    // -v: each step as it is applied; -vv: the statements too, no secret.
    let err = r.stderr();
    for step in [
        "applying: create replication slot standby_one",
        "SQL: CREATE_REPLICATION_SLOT standby_one PHYSICAL RESERVE_WAL",
        "applying: copy ",
        "applying: move the copy into place",
        "applying: start the standby",
        "applying: wait until the standby streams",
    ] {
        assert!(err.contains(step), "{step:?} missing from:\n{err}");
    }
    assert!(!err.contains(PW), "{err}");
    assert_eq!(
        p.sql("SELECT slot_name || ' ' || active FROM pg_replication_slots"),
        "standby_one true"
    );
    let j2 = clone(&p, &s, Some(&pw), &["--slot", "standby_one"]).ok();
    assert_eq!(j2["changed"], false, "{j2}");
}

#[test]
fn cascading_from_a_standby() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s1 = Cluster::clone_target(&p);
    clone(&p, &s1, Some(&pw), &[]).ok();
    let s2 = Cluster::clone_target(&p);
    let j = clone(&s1, &s2, Some(&pw), &["--application-name", "s2"]).ok();
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    assert_eq!(
        s1.sql("SELECT application_name FROM pg_stat_replication"),
        "s2"
    );
    assert_eq!(s2.sql("SELECT pg_is_in_recovery()"), "t");
}

#[test]
fn no_start_leaves_a_configured_stopped_standby() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    let j = clone(&p, &s, Some(&pw), &["--no-start"]).ok();
    assert_eq!(j["changed"], true);
    assert!(!s.running());
    assert!(s.data.join("PG_VERSION").exists());
    // The next run starts it and waits for streaming.
    let j2 = clone(&p, &s, Some(&pw), &[]).ok();
    assert_eq!(j2["streaming"]["status"], "streaming", "{j2}");
    assert!(j2.to_string().contains("started"), "{j2}");
}

/// A former primary replaced with --force (the command check and rejoin
/// suggest after a failover) is kept beside the target: it may hold commits
/// the new primary never received. A former standby is not.
#[test]
fn force_over_a_former_primary_keeps_it_beside_the_target() {
    let (old, pw) = prepared_primary(Cluster::builder());
    let new = Cluster::standby_of(&old, "s1");
    old.stop();
    harness::pgrepctl(["promote", "--json", "-D", new.data.to_str().unwrap()]).ok();
    std::fs::write(old.data.join("marker"), "the old primary's").unwrap();
    let kept_beside = |c: &Cluster| -> Vec<String> {
        harness::listing(c.tmp.path())
            .into_iter()
            .filter(|n| n.starts_with("data.replaced-"))
            .collect()
    };

    // A standby.signal put in it by hand does not make it a standby to
    // start as it is: it may have diverged.
    let signal = old.data.join("standby.signal");
    std::fs::write(&signal, "").unwrap();
    let j = clone(&new, &old, Some(&pw), &[]).fails(1, "PGDATA_NOT_EMPTY");
    assert!(j["error"]["hint"].to_string().contains("rejoin"), "{j}");
    assert!(!old.running());
    std::fs::remove_file(&signal).unwrap();

    let dry = clone(&new, &old, Some(&pw), &["--force", "--dry-run"]).ok();
    assert!(
        dry["warnings"]
            .to_string()
            .contains("last ran as a primary of this cluster"),
        "{dry}"
    );
    assert!(
        old.data.join("marker").exists(),
        "a dry run changes nothing"
    );
    assert_eq!(kept_beside(&old), Vec::<String>::new());

    let j = clone(&new, &old, Some(&pw), &["--force"]).ok();
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    let at = std::path::PathBuf::from(j["replaced_kept_at"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(at.join("marker")).unwrap(),
        "the old primary's"
    );
    assert_eq!(kept_beside(&old).len(), 1);
    assert!(!old.data.join("marker").exists());

    // The standby it is now, stopped and replaced again: nothing kept.
    old.stop();
    let again = clone(&new, &old, Some(&pw), &["--force"]).ok();
    assert!(again["replaced_kept_at"].is_null(), "{again}");
    assert_eq!(kept_beside(&old).len(), 1);
}

/// clone-standby with only --primary and -D (and the password file and
/// binaries), as the hint of check says to rerun it.
fn rerun(primary: &str, s: &Cluster, pw: &std::path::Path, extra: &[&str]) -> crate::harness::Run {
    let mut args = vec![
        "clone-standby".to_string(),
        "--json".into(),
        "--primary".into(),
        primary.into(),
        "-D".into(),
        s.data.display().to_string(),
        "--password-file".into(),
        pw.display().to_string(),
        "--bindir".into(),
        s.bindir.display().to_string(),
        "--wait".into(),
        "30".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    crate::harness::run::Test::new(args).run()
}

#[test]
fn rerun_without_slot_or_name_keeps_the_standbys_own() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    // --application-name s1 is the fixture's.
    clone(&p, &s, Some(&pw), &["--slot", "s1"]).ok();
    let config = s.standby_files();
    let pid = harness::postmaster_pid(&s.data);
    let started = s.sql("SELECT pg_postmaster_start_time()");
    let primary = format!("host=127.0.0.1 port={} user=replicator", p.port);

    let dry = rerun(&primary, &s, &pw, &["--dry-run"]).ok();
    assert_eq!(dry["changed"], false, "{dry}");
    let j = rerun(&primary, &s, &pw, &[]).ok();
    assert_eq!(j["changed"], false, "{j}");
    assert_eq!(j["changes"].as_array().unwrap().len(), 0, "{j}");
    assert_eq!(s.standby_files(), config, "files untouched");
    assert_eq!(harness::postmaster_pid(&s.data), pid, "not restarted");
    assert_eq!(s.sql("SELECT pg_postmaster_start_time()"), started);
    assert_eq!(
        p.sql("SELECT slot_name || ' ' || active FROM pg_replication_slots"),
        "s1 true"
    );
    assert_eq!(
        p.sql("SELECT application_name FROM pg_stat_replication"),
        "s1"
    );

    // Flags given still win.
    let j = rerun(
        &primary,
        &s,
        &pw,
        &["--application-name", "s2", "--dry-run"],
    )
    .ok();
    assert_eq!(j["changed"], true, "{j}");
    assert!(j.to_string().contains("application_name=s2"), "{j}");
}

#[test]
fn force_pointed_at_the_standby_itself_is_refused() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    clone(&p, &s, Some(&pw), &[]).ok();
    let config = s.standby_files();
    let pid = harness::postmaster_pid(&s.data);
    let itself = format!("host=127.0.0.1 port={} user=replicator", s.port);
    for extra in [&["--force", "--dry-run"][..], &["--force"]] {
        let j = rerun(&itself, &s, &pw, extra).fails(2, "INVALID_ADDRESS");
        let message = j["error"]["message"].as_str().unwrap();
        assert!(message.contains("itself"), "{j}");
        assert!(
            j["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("primary's address"),
            "{j}"
        );
    }
    assert_eq!(s.standby_files(), config, "nothing changed");
    assert_eq!(harness::postmaster_pid(&s.data), pid, "not restarted");
    assert_eq!(
        p.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"),
        "1"
    );
}

/// Another standby already streams under the application_name asked for
/// (two standbys of one host share its name by default): the plan warns,
/// in --dry-run too, that synchronous_standby_names and monitoring cannot
/// tell them apart. A rerun on the standby in place, which streams under
/// its name itself, is not warned about its own walsender.
#[test]
fn a_name_another_standby_streams_under_is_warned_about() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let _other = Cluster::standby_of(&p, "db2");
    let s = Cluster::clone_target(&p);
    let warned = |j: &serde_json::Value| {
        let w = j["warnings"].to_string();
        w.contains("application_name db2 is already used on the primary")
            && w.contains("--application-name NAME")
    };
    let named = |name: &str, dry: bool| {
        let mut args = vec!["--application-name", name];
        if dry {
            args.push("--dry-run");
        }
        clone(&p, &s, Some(&pw), &args).ok()
    };
    let dry = named("db2", true);
    assert!(warned(&dry), "{dry}");
    assert!(!s.data.exists(), "a dry run changes nothing");

    let j = named("db3", false);
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    assert!(!j["warnings"].to_string().contains("already used"), "{j}");
    let j = named("db3", false);
    assert_eq!(j["changed"], false, "{j}");
    assert!(
        !j["warnings"].to_string().contains("already used"),
        "its own walsender is no other standby: {j}"
    );
    // Renamed in place to the other standby's name: warned.
    let dry = named("db2", true);
    assert!(warned(&dry), "{dry}");
}

/// --slot names a slot another standby streams through: refused before
/// anything is done (pg_basebackup would fail only after the primary's
/// checkpoint), in --dry-run too; the other standby keeps streaming.
#[test]
fn a_slot_another_standby_streams_through_is_refused() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let _other = Cluster::standby_with_slot(&p, "db2", Some("db2"));
    let s = Cluster::clone_target(&p);
    for extra in [&["--slot", "db2", "--dry-run"][..], &["--slot", "db2"]] {
        let j = clone(&p, &s, Some(&pw), extra).fails(1, "SLOT_CONFLICT");
        let message = j["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("replication slot db2 is in use on the primary"),
            "{j}"
        );
        assert!(
            j["error"]["hint"].to_string().contains("--slot NAME"),
            "{j}"
        );
        assert_eq!(j["changed"], false, "{j}");
    }
    assert!(!s.data.exists(), "nothing was copied");
    assert_eq!(
        p.sql("SELECT active FROM pg_replication_slots WHERE slot_name = 'db2'"),
        "t"
    );
    assert_eq!(p.sql("SELECT count(*) FROM pg_replication_slots"), "1");
}

/// A --slot that exists on the primary is reported as reused, with no
/// step to create it, on every major: before 15 (no
/// READ_REPLICATION_SLOT) the preflight's normal connection lists it.
#[test]
fn an_existing_slot_is_reused_not_created() {
    let (p, pw) = prepared_primary(Cluster::builder());
    p.sql("SELECT 1 FROM pg_create_physical_replication_slot('kept')");
    let s = Cluster::clone_target(&p);
    let dry = clone(&p, &s, Some(&pw), &["--slot", "kept", "--dry-run"]).ok();
    assert_eq!(dry["slot"]["exists"], true, "{dry}");
    assert!(
        harness::summaries(&dry)
            .iter()
            .all(|c| !c.contains("replication slot kept")),
        "nothing to create: {dry}"
    );
    let dry = clone(&p, &s, Some(&pw), &["--slot", "new", "--dry-run"]).ok();
    assert_eq!(dry["slot"]["exists"], false, "{dry}");
    assert!(!s.data.exists(), "a dry run changes nothing");
}

/// What killed runs left beside the target (copies and slot markers).
fn clone_leftovers(s: &Cluster) -> Vec<String> {
    harness::listing(s.tmp.path())
        .into_iter()
        .filter(|n| n.contains(".pgrepctl-clone."))
        .collect()
}

#[test]
fn a_rerun_without_slot_finishes_what_a_run_killed_after_its_slot_started() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    // Killed right after the copy (steps: slot, copy): the slot is on the
    // primary, unused, and the copy beside the target.
    let kill = [("PGREPCTL_KILL_AFTER_STEP", "2")];
    let k = crate::harness::fixtures::clone_env(&p, &s, Some(&pw), &["--slot", "vm"], &kill);
    assert_eq!(k.code(), -1, "{}\n{}", k.stdout(), k.stderr());
    let slots = "SELECT slot_name || ' ' || active FROM pg_replication_slots";
    assert_eq!(p.sql(slots), "vm false");
    let left = clone_leftovers(&s);
    assert_eq!(left.len(), 2, "the copy and its slot marker: {left:?}");
    let copy = left.iter().find(|n| !n.ends_with(".slot")).unwrap();

    // Another slot: the one left behind is named, with how to drop it.
    let other = clone(&p, &s, Some(&pw), &["--slot", "other", "--dry-run"]).ok();
    assert!(
        other["warnings"]
            .to_string()
            .contains("SELECT pg_drop_replication_slot('vm')"),
        "{other}"
    );

    // No slot named: the rerun streams through the one the killed run
    // made; its dry run says the partial copy goes and the slot is reused.
    let dry = clone(&p, &s, Some(&pw), &["--dry-run"]).ok();
    assert!(
        dry["warnings"]
            .to_string()
            .contains("reusing replication slot vm"),
        "{dry}"
    );
    assert_eq!(dry["slot"]["name"], "vm", "{dry}");
    let first = &dry["changes"][0];
    assert!(
        first["path"].as_str().unwrap().ends_with(copy.as_str())
            && first["summary"]
                .as_str()
                .unwrap()
                .contains("partial copy left by an interrupted run"),
        "{dry}"
    );
    assert!(
        harness::summaries(&dry)
            .iter()
            .all(|c| !c.contains("slot vm")),
        "the slot exists: nothing to create {dry}"
    );
    assert_eq!(clone_leftovers(&s), left, "a dry run changes nothing");

    let j = clone(&p, &s, Some(&pw), &[]).ok();
    assert_eq!(
        harness::summaries(&dry),
        harness::summaries(&j),
        "{dry}\n{j}"
    );
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    assert_eq!(p.sql(slots), "vm true");
    assert_eq!(clone_leftovers(&s), Vec::<String>::new());
    let conf = if p.major >= 12 {
        s.file("postgresql.auto.conf")
    } else {
        s.file("recovery.conf")
    };
    assert!(
        conf.contains("primary_slot_name = 'vm'") || conf.contains("primary_slot_name = vm\n"),
        "{conf}"
    );
}
