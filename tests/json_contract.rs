//! The `--json` output contract, pinned by test-side structs that reject
//! unknown fields: adding, renaming or dropping a field fails here first,
//! so scripts and Ansible playbooks cannot be broken silently.

use crate::harness::{Cluster, pgrepctl, run::password_file};
use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Change {
    kind: String,
    #[serde(default)]
    path: Option<String>,
    summary: String,
    #[serde(default)]
    diff: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct InitMasterOk {
    command: String,
    ok: bool,
    changed: bool,
    dry_run: bool,
    changes: Vec<Change>,
    restart_required: bool,
    warnings: Vec<String>,
    restart_command: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ErrorBody {
    code: String,
    message: String,
    #[serde(default)]
    hint: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Failure {
    command: String,
    ok: bool,
    changed: bool,
    error: ErrorBody,
    warnings: Vec<String>,
}

#[test]
fn init_master_json_success_noop_and_failure() {
    let c = Cluster::new();
    let pw = password_file(c.tmp.path(), "pw");
    let args = [
        "init-master",
        "--json",
        "-D",
        c.data.to_str().unwrap(),
        "--allow",
        "127.0.0.1",
        "--password-file",
        pw.to_str().unwrap(),
    ];
    for (n, expect_changed) in [(1, true), (2, false)] {
        let r = pgrepctl(args);
        assert_eq!(r.code(), 0, "{}", r.stderr());
        let o: InitMasterOk = serde_json::from_str(r.stdout().trim())
            .unwrap_or_else(|e| panic!("run {n}: {e}\n{}", r.stdout()));
        assert_eq!(
            (o.command.as_str(), o.ok, o.changed),
            ("init-master", true, expect_changed)
        );
        assert_eq!(o.changes.is_empty(), !expect_changed);
        assert!(
            o.changes
                .iter()
                .all(|c| ["file", "sql", "service"].contains(&c.kind.as_str()))
        );
        assert_eq!(
            r.stdout().trim().lines().count(),
            1,
            "exactly one JSON line on stdout"
        );
    }
    let r = pgrepctl([
        "init-master",
        "--json",
        "-D",
        "/nonexistent",
        "--allow",
        "127.0.0.1",
    ]);
    let f: Failure = serde_json::from_str(r.stdout().trim()).unwrap();
    assert_eq!(
        (f.ok, f.changed, f.error.code.as_str()),
        (false, false, "NOT_A_DATA_DIRECTORY")
    );
    assert!(f.error.hint.is_some());
    // A clap usage error with --json is still one JSON object.
    let r = pgrepctl(["init-master", "--json", "--no-such-flag"]);
    let f: Failure = serde_json::from_str(r.stdout().trim()).unwrap();
    assert_eq!((f.error.code.as_str(), r.code()), ("USAGE", 2));
}

// check and smoke-test: the health report.

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Receiver {
    status: Option<String>,
    sender_host: Option<String>,
    sender_port: Option<i32>,
    slot_name: Option<String>,
    last_msg_age_seconds: Option<f64>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Replay {
    receive_lsn: Option<String>,
    replay_lsn: Option<String>,
    pending_bytes: Option<i64>,
    delay_seconds: Option<f64>,
    paused: Option<bool>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Node {
    name: String,
    role: String,
    target: String,
    status: String,
    server_version_num: Option<u32>,
    in_recovery: Option<bool>,
    wal_lsn: Option<String>,
    wal_receiver: Option<Receiver>,
    replay: Option<Replay>,
    error: Option<ErrorBody>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Pair {
    standby: String,
    application_name: Option<String>,
    client_addr: Option<String>,
    state: Option<String>,
    sync_state: Option<String>,
    sent_lsn: Option<String>,
    write_lsn: Option<String>,
    flush_lsn: Option<String>,
    replay_lsn: Option<String>,
    lag_bytes: Option<i64>,
    lag_seconds: Option<f64>,
    streaming: Option<bool>,
    status: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Slot {
    name: String,
    slot_type: String,
    active: bool,
    restart_lsn: Option<String>,
    retained_bytes: Option<i64>,
    wal_status: Option<String>,
    status: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Thresholds {
    warn_bytes: u64,
    crit_bytes: u64,
    warn_seconds: f64,
    crit_seconds: f64,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Problem {
    status: String,
    subject: String,
    code: String,
    message: String,
    hint: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CheckOk {
    command: String,
    ok: bool,
    status: String,
    changed: bool,
    nodes: Vec<Node>,
    pairs: Vec<Pair>,
    slots: Vec<Slot>,
    thresholds: Thresholds,
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Probe {
    standby: String,
    replayed: bool,
    token_visible: bool,
    write_refused: Option<bool>,
    latency_ms: Option<f64>,
    status: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SmokeOk {
    command: String,
    ok: bool,
    status: String,
    changed: bool,
    nodes: Vec<Node>,
    probes: Vec<Probe>,
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

fn parse<T: serde::de::DeserializeOwned>(r: &crate::harness::Run) -> T {
    assert_eq!(r.stdout().trim().lines().count(), 1, "{}", r.stdout());
    serde_json::from_str(r.stdout().trim()).unwrap_or_else(|e| panic!("{e}\n{}", r.stdout()))
}

#[test]
fn check_and_smoke_test_json() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    p.sql("SELECT pg_create_physical_replication_slot('spare', true)");
    let dead = format!(
        "host=127.0.0.1 port={} user=postgres",
        crate::harness::free_port()
    );
    let r = pgrepctl([
        "check",
        "--json",
        "--primary",
        &p.conninfo(),
        "--standby",
        &s.conninfo(),
        "--standby",
        &dead,
    ]);
    let o: CheckOk = parse(&r);
    assert_eq!(
        (o.command.as_str(), o.ok, o.status.as_str(), o.changed),
        ("check", false, "WARNING", false),
        "{}",
        r.stdout()
    );
    assert_eq!(r.code(), 1);
    assert_eq!(o.nodes.len(), 3);
    assert!(o.nodes[1].wal_receiver.is_some() && o.nodes[1].replay.is_some());
    assert_eq!(o.nodes[2].error.as_ref().unwrap().code, "CONNECTION_FAILED");
    assert_eq!((o.pairs.len(), o.slots.len()), (1, 1));
    assert!(
        o.problems
            .iter()
            .all(|p| ["OK", "WARNING", "CRITICAL", "UNKNOWN"].contains(&p.status.as_str()))
    );

    let r = pgrepctl([
        "smoke-test",
        "--json",
        "--primary",
        &p.conninfo(),
        "--standby",
        &s.conninfo(),
    ]);
    let o: SmokeOk = parse(&r);
    assert_eq!(
        (o.command.as_str(), o.ok, o.status.as_str(), o.changed),
        ("smoke-test", true, "OK", true)
    );
    assert_eq!(o.probes.len(), 1);

    for (args, code) in [
        (
            vec!["check", "--json", "--primary", "host=x bad=1"],
            "UNKNOWN_CONNINFO_KEYWORD",
        ),
        (vec!["smoke-test", "--json", "--standby", "x"], "USAGE"),
    ] {
        let r = pgrepctl(&args);
        let f: Failure = parse(&r);
        assert_eq!(
            (f.ok, f.changed, f.error.code.as_str(), r.code()),
            (false, false, code, 3)
        );
    }
}
