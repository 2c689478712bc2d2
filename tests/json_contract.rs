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
    /// The cause underneath: SQLSTATE or errno, and its own words.
    #[serde(default)]
    source: Option<serde_json::Value>,
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
    #[serde(deserialize_with = "nullable")]
    timeline: Option<u32>,
    wal_lsn: Option<String>,
    #[serde(deserialize_with = "nullable")]
    upstream: Option<String>,
    wal_receiver: Option<Receiver>,
    #[serde(deserialize_with = "nullable")]
    wal_source: Option<String>,
    replay: Option<Replay>,
    #[serde(deserialize_with = "nullable")]
    read_only: Option<bool>,
    error: Option<ErrorBody>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Pair {
    standby: String,
    #[serde(deserialize_with = "nullable")]
    upstream: Option<String>,
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
    ssl: Option<bool>,
    ssl_version: Option<String>,
    ssl_cipher: Option<String>,
    ssl_bits: Option<i32>,
    status: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Certificate {
    node: String,
    source: Option<String>,
    subject: Option<String>,
    not_after: Option<String>,
    expires_in_seconds: Option<i64>,
    days_left: Option<i64>,
    unknown: Option<String>,
    warn_days: u32,
    crit_days: u32,
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
struct ArchiveProbe {
    #[serde(deserialize_with = "nullable")]
    segment: Option<String>,
    archived: bool,
    waited_seconds: f64,
    status: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Archive {
    node: String,
    archive_mode: String,
    archive_timeout_seconds: Option<f64>,
    archived_count: i64,
    failed_count: i64,
    #[serde(deserialize_with = "nullable")]
    last_archived_wal: Option<String>,
    #[serde(deserialize_with = "nullable")]
    last_archived_age_seconds: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    last_failed_wal: Option<String>,
    #[serde(deserialize_with = "nullable")]
    last_failed_age_seconds: Option<f64>,
    failing: bool,
    #[serde(deserialize_with = "nullable")]
    ready_count: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    oldest_ready_age_seconds: Option<f64>,
    ready_warn: u32,
    ready_crit: u32,
    /// Only with --archive-probe.
    probe: Option<ArchiveProbe>,
    status: String,
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
    /// Only when the primary's archive_mode is not off.
    archive: Option<Archive>,
    /// Only when a node has ssl on.
    certificates: Option<Vec<Certificate>>,
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
    // Archiving (to nowhere: `true`), so the archive object is there too.
    let p = Cluster::builder()
        .conf("archive_mode = on")
        .conf("archive_command = 'true'")
        .init();
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
        "--archive-probe",
    ]);
    let o: CheckOk = parse(&r);
    assert_eq!(
        (o.command.as_str(), o.ok, o.status.as_str(), o.changed),
        ("check", false, "CRITICAL", false),
        "{}",
        r.stdout()
    );
    // The dead standby is a node given that is down: CRITICAL.
    assert_eq!(r.code(), 2);
    assert_eq!(o.nodes.len(), 3);
    assert!(o.nodes[1].wal_receiver.is_some() && o.nodes[1].replay.is_some());
    assert_eq!(o.nodes[2].error.as_ref().unwrap().code, "CONNECTION_FAILED");
    assert_eq!(o.nodes[1].upstream.as_deref(), Some("primary"));
    assert_eq!(o.pairs[0].upstream.as_deref(), Some("primary"));
    assert_eq!((o.pairs.len(), o.slots.len()), (1, 1));
    assert_eq!(o.nodes[1].wal_source.as_deref(), Some("streaming"));
    assert_eq!(
        (o.nodes[0].read_only, o.nodes[1].read_only),
        (Some(false), None)
    );
    let a = o.archive.as_ref().unwrap();
    assert_eq!((a.archive_mode.as_str(), a.status.as_str()), ("on", "OK"));
    assert!(a.probe.as_ref().unwrap().archived, "{}", r.stdout());
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

// clone-standby: the preflight's facts about the primary, the changes, and
// (when the standby was started or found running) how it streams.

/// A field that must be present, though it may be null (a plain `Option`
/// would also accept its absence).
fn nullable<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::deserialize(d)
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ClonePrimary {
    version_num: u32,
    /// A string: 64-bit identifiers do not survive JSON numbers in every reader.
    system_identifier: String,
    timeline: u32,
    wal_level: String,
    lsn: String,
    #[serde(deserialize_with = "nullable")]
    size_bytes: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    wal_rate_bytes_per_second: Option<u64>,
}

/// How the copy is (or would be) compressed, and why (issue 16).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CloneCompression {
    method: String,
    reason: String,
    probe: Option<CloneProbe>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CloneProbe {
    rate_mb_s: f64,
    round_trip_ms: f64,
    bytes: u64,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CloneStreaming {
    status: String,
    replay_lsn: String,
    target_lsn: String,
    seconds: f64,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CloneOk {
    command: String,
    ok: bool,
    changed: bool,
    dry_run: bool,
    changes: Vec<Change>,
    restart_required: bool,
    warnings: Vec<String>,
    bindir: String,
    data_directory: String,
    primary: ClonePrimary,
    compression: CloneCompression,
    /// The standby's own TLS keywords a rerun that gave none kept.
    #[serde(default)]
    tls_kept: Option<std::collections::BTreeMap<String, String>>,
    /// Absent under --dry-run and --no-start.
    #[serde(default)]
    streaming: Option<CloneStreaming>,
}

fn is_lsn(s: &str) -> bool {
    s.split_once('/').is_some_and(|(hi, lo)| {
        [hi, lo]
            .iter()
            .all(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
    })
}

#[test]
fn clone_standby_json_dry_run_success_noop_and_failure() {
    use crate::harness::fixtures::{clone, prepared_primary};
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    let data = s.data.display().to_string();

    // `changed` is a JSON bool in every outcome, never a string or number.
    let changed_is_bool = |r: &crate::harness::Run| {
        let v: serde_json::Value = serde_json::from_str(r.stdout().trim()).unwrap();
        assert!(v["changed"].is_boolean(), "{v}");
    };
    let check = |o: &CloneOk, dry_run: bool, changed: bool| {
        assert_eq!(
            (o.command.as_str(), o.ok, o.dry_run, o.changed),
            ("clone-standby", true, dry_run, changed),
            "{o:?}"
        );
        assert_eq!(o.changes.is_empty(), !changed, "{o:?}");
        assert!(!o.restart_required);
        assert_eq!(o.data_directory, data);
        assert_eq!(o.bindir, s.bindir.display().to_string());
        assert_eq!(o.primary.version_num / 10000, p.major);
        assert!(o.primary.system_identifier.parse::<u64>().is_ok(), "{o:?}");
        assert_eq!(o.primary.timeline, 1);
        assert_eq!(o.primary.wal_level, "replica");
        assert!(is_lsn(&o.primary.lsn), "{o:?}");
        for c in &o.changes {
            assert!(
                ["file", "sql", "service"].contains(&c.kind.as_str()),
                "{c:?}"
            );
            assert_eq!(c.kind == "file", c.path.is_some(), "{c:?}");
            assert!(!c.summary.is_empty());
        }
        if let Some(st) = &o.streaming {
            assert_eq!(st.status, "streaming");
            assert!(is_lsn(&st.replay_lsn) && is_lsn(&st.target_lsn), "{st:?}");
            assert!(st.seconds >= 0.0);
        }
        let text = format!("{o:?}");
        assert!(!text.contains("s3cret"), "no password in the JSON: {text}");
    };

    // --dry-run before the clone: changed, nothing copied, no streaming.
    let r = clone(&p, &s, Some(&pw), &["--dry-run"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    changed_is_bool(&r);
    let o: CloneOk = parse(&r);
    check(&o, true, true);
    assert!(o.streaming.is_none(), "{o:?}");
    assert!(!s.data.exists());

    // The clone: changed, started, streaming.
    let r = clone(&p, &s, Some(&pw), &[]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    changed_is_bool(&r);
    let o: CloneOk = parse(&r);
    check(&o, false, true);
    assert!(o.streaming.is_some(), "{o:?}");
    assert!(o.changes.iter().any(|c| c.kind == "service"), "{o:?}");

    // A second run: nothing to do, still reports how it streams.
    let r = clone(&p, &s, Some(&pw), &[]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    changed_is_bool(&r);
    let o: CloneOk = parse(&r);
    check(&o, false, false);
    assert!(o.streaming.is_some(), "{o:?}");

    // --dry-run of the same: changed:false, as the real run was.
    let r = clone(&p, &s, Some(&pw), &["--dry-run"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let o: CloneOk = parse(&r);
    check(&o, true, false);
    assert!(o.streaming.is_none(), "{o:?}");

    // Failures: the common error shape, changed:false.
    let other = Cluster::clone_target(&p);
    let bad = password_file(other.tmp.path(), "not the password");
    let r = clone(&p, &other, Some(&bad), &[]);
    std::fs::remove_file(&bad).unwrap();
    let full = Cluster::clone_target(&p);
    std::fs::create_dir_all(full.data.join("something")).unwrap();
    let r2 = clone(&p, &full, Some(&pw), &[]);
    let r3 = pgrepctl([
        "clone-standby",
        "--json",
        "--primary",
        "host=127.0.0.1 bogus=1",
        "-D",
        other.data.to_str().unwrap(),
    ]);
    for (r, code, exit) in [
        (r, "AUTHENTICATION_FAILED", 1),
        (r2, "PGDATA_NOT_EMPTY", 1),
        (r3, "UNKNOWN_CONNINFO_KEYWORD", 2),
    ] {
        changed_is_bool(&r);
        let f: Failure = parse(&r);
        assert_eq!(
            (
                f.command.as_str(),
                f.ok,
                f.changed,
                f.error.code.as_str(),
                r.code()
            ),
            ("clone-standby", false, false, code, exit),
            "{}",
            r.stdout()
        );
        assert!(!f.error.message.is_empty());
        assert!(f.error.hint.is_some(), "{f:?}");
        assert!(!r.stdout().contains("not the password"));
        if code == "AUTHENTICATION_FAILED" {
            // The cause as data: the server's SQLSTATE for a wrong password.
            let source = f.error.source.as_ref().expect("error.source");
            assert_eq!(source["sqlstate"], "28P01", "{source}");
        }
    }
    assert!(!other.data.exists());
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SandboxNode {
    name: String,
    primary: bool,
    port: u16,
    data: String,
    socket_dir: String,
    log: String,
}

/// `sandbox up` and `down`: the mutating-command shape, plus what was
/// built; `check`, `smoke_test` and the latencies only when `up` built it.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SandboxOk {
    command: String,
    ok: bool,
    changed: bool,
    dry_run: bool,
    changes: Vec<Change>,
    restart_required: bool,
    warnings: Vec<String>,
    #[serde(default)]
    dir: Option<String>,
    #[serde(default)]
    nodes: Option<Vec<SandboxNode>>,
    #[serde(default)]
    check_command: Option<String>,
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    smoke_test: Option<String>,
    #[serde(default)]
    smoke_test_latency_ms: Option<std::collections::BTreeMap<String, Option<f64>>>,
}

#[test]
fn sandbox_json_up_noop_down_and_failure() {
    use crate::sandbox::{Dir, up};
    let dir = Dir::new();
    let run = up(&dir, 1, &[]);
    let out = run.stdout().to_string();
    let built: SandboxOk = parse(&run);
    assert!(built.ok && built.changed && !built.dry_run, "{out}");
    assert_eq!(built.command, "sandbox up");
    assert_eq!(built.check.as_deref(), Some("OK"), "{out}");
    assert_eq!(built.smoke_test.as_deref(), Some("OK"), "{out}");
    assert!(
        built.smoke_test_latency_ms.unwrap()["standby1"].is_some(),
        "{out}"
    );
    assert_eq!(built.nodes.as_ref().unwrap().len(), 2);
    assert!(
        built
            .check_command
            .unwrap()
            .starts_with("pgrepctl check --primary")
    );

    let run = up(&dir, 1, &[]);
    let out = run.stdout().to_string();
    let again: SandboxOk = parse(&run);
    assert!(
        again.ok && !again.changed && again.changes.is_empty(),
        "{out}"
    );
    assert!(again.check.is_none() && again.nodes.is_some(), "{out}");
    assert_eq!(again.warnings.len(), 1, "{out}");

    let bad = up(&Dir::new(), 0, &[]);
    bad.fails(2, "INVALID_VALUE");
    let f: Failure = parse(&bad);
    assert!(!f.ok && !f.changed);

    let run = pgrepctl(["sandbox", "down", "--json", "--dir", dir.s()]);
    let out = run.stdout().to_string();
    let down: SandboxOk = parse(&run);
    assert!(down.ok && down.changed && down.dir.is_none(), "{out}");
    assert_eq!(down.changes.len(), 3, "{out}");
    let none: SandboxOk = parse(&pgrepctl(["sandbox", "down", "--json", "--dir", dir.s()]));
    assert!(none.ok && !none.changed);
}
