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
