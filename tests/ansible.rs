//! The Ansible example (examples/ansible) run for real: ansible-core from
//! PyPI in a virtualenv, `connection: local`, against real clusters. For
//! both plays (primary: init-master; standby: clone-standby): first run
//! changed, second run unchanged, check mode reports without changing, and
//! a bad input fails with pgrepctl's own message.

use crate::harness::fixtures::{PW, prepared_primary};
use crate::harness::{self, Cluster};
use std::path::{Path, PathBuf};
use std::process::Command;

fn venv_bin() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("scripts/ansible-venv"))
        .output()
        .expect("scripts/ansible-venv");
    assert!(
        out.status.success(),
        "ansible venv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

struct Play {
    bin: PathBuf,
    inventory: PathBuf,
}

fn primary_group(primary: &Cluster, allow: &str) -> String {
    format!(
        "    primary:\n      hosts:\n        db1:\n          pgdata: {data}\n          standby_addresses: [\"{allow}\"]\n",
        data = primary.data.display(),
    )
}

/// db2: a standby of `primary` in `standby`'s (absent) data directory, on
/// its own port, named db2 in the primary's pg_stat_replication.
fn standby_group(primary: &Cluster, standby: &Cluster) -> String {
    format!(
        "    standby:\n      hosts:\n        db2:\n          pgdata: {data}\n          primary_conninfo: \"host=127.0.0.1 port={pport} user=replicator\"\n          extra_args: [\"--port\", \"{sport}\", \"--bindir\", \"{bindir}\", \"--application-name\", \"db2\", \"--wait\", \"30\"]\n",
        data = standby.data.display(),
        pport = primary.port,
        sport = standby.port,
        bindir = standby.bindir.display(),
    )
}

/// Extra vars (`-e @FILE`) that hold the replication password, as a vault
/// would: they outrank the example's group_vars/all/vault.yml.
fn secrets(dir: &Path, password: &str) -> String {
    let path = dir.join(format!("secrets-{}.json", password.len()));
    std::fs::write(
        &path,
        serde_json::json!({ "vault_replication_password": password }).to_string(),
    )
    .unwrap();
    format!("@{}", path.display())
}

impl Play {
    /// An inventory with the primary group only: db1 on `primary`.
    fn new(dir: &Path, primary: &Cluster, allow: &str) -> Play {
        Play::with_hosts(dir, &primary_group(primary, allow))
    }

    /// An inventory whose `children:` are `groups` (YAML, indented for
    /// their place under `children:`), every host local.
    fn with_hosts(dir: &Path, groups: &str) -> Play {
        let bin = venv_bin();
        let inventory = dir.join("inventory.yml");
        let pw = dir.join("replicator.pass");
        std::fs::write(
            &inventory,
            format!(
                "all:\n  vars:\n    pgrepctl: {exe}\n    replication_user: replicator\n    ansible_connection: local\n    ansible_python_interpreter: {py}\n    password_file: {pw}\n  children:\n{groups}",
                exe = env!("CARGO_BIN_EXE_pgrepctl"),
                py = bin.join("python").display(),
                pw = pw.display(),
            ),
        )
        .unwrap();
        Play { bin, inventory }
    }

    fn run(&self, limit: &str, extra: &[&str]) -> (bool, String) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new(self.bin.join("ansible-playbook"))
            .arg("-i")
            .arg(&self.inventory)
            .arg(root.join("examples/ansible/site.yml"))
            .args(["--limit", limit])
            .args(extra)
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_HOST_KEY_CHECKING", "0")
            .env("ANSIBLE_LOCAL_TEMP", std::env::temp_dir())
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

/// The status line under a task's header: "changed", "ok", "fatal", …
fn task_status(text: &str, task: &str) -> String {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.starts_with(&format!("TASK [{task}]")));
    lines.next();
    let line = lines
        .find(|l| {
            ["ok:", "changed:", "fatal:", "skipping:"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .unwrap_or_else(|| panic!("no task {task}:\n{text}"));
    line.split(':').next().unwrap().trim().to_string()
}

/// "db1 : ok=2 changed=1 …" → changed count.
fn recap_changed(text: &str, host: &str) -> u32 {
    let line = text
        .lines()
        .find(|l| l.starts_with(host) && l.contains("changed="))
        .unwrap_or_else(|| panic!("no recap:\n{text}"));
    let n = line
        .split("changed=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    n.parse().unwrap()
}

#[test]
fn primary_play_check_mode_changes_and_idempotence() {
    let c = Cluster::new();
    let dir = harness::tempdir();
    let play = Play::new(dir.path(), &c, "127.0.0.1/32");
    let files = [c.conf_path(), c.hba_path()];
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let before = harness::snapshot(&refs);

    let (ok, out) = play.run("primary", &["--check"]);
    assert!(ok, "{out}");
    assert_eq!(
        task_status(&out, "pgrepctl init-master"),
        "changed",
        "check mode reports the change:\n{out}"
    );
    assert_eq!(
        harness::snapshot(&refs),
        before,
        "check mode must not change files"
    );
    assert_eq!(
        c.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'replicator'"),
        "0"
    );

    let (ok, out) = play.run("primary", &[]);
    assert!(ok, "{out}");
    assert_eq!(
        task_status(&out, "pgrepctl init-master"),
        "changed",
        "{out}"
    );
    assert_eq!(
        c.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'replicator'"),
        "1"
    );

    let (ok, out) = play.run("primary", &[]);
    assert!(ok, "{out}");
    assert_eq!(task_status(&out, "pgrepctl init-master"), "ok", "{out}");
    assert_eq!(
        recap_changed(&out, "db1"),
        0,
        "second run is ok, not changed:\n{out}"
    );
}

#[test]
fn primary_play_bad_input_fails_with_pgrepctls_message() {
    let c = Cluster::new();
    let dir = harness::tempdir();
    let play = Play::new(dir.path(), &c, "10.0.0.300");
    let (ok, out) = play.run("primary", &[]);
    assert!(!ok, "{out}");
    assert_eq!(
        task_status(&out, "Fail with pgrepctl's own message"),
        "fatal",
        "{out}"
    );
    assert!(
        out.contains("is not an IP address or CIDR"),
        "pgrepctl's own words in the play output:\n{out}"
    );
    assert!(out.contains("INVALID_ADDRESS"), "{out}");
}

/// The standby must not exist, and nothing may be left beside it.
fn assert_no_standby(p: &Cluster, s: &Cluster) {
    assert!(!s.data.exists(), "no standby data directory");
    assert_eq!(
        harness::listing(s.tmp.path()),
        Vec::<String>::new(),
        "nothing left beside the target"
    );
    assert_eq!(
        p.sql("SELECT count(*) FROM pg_stat_replication"),
        "0",
        "no standby connected to the primary"
    );
    assert_eq!(p.sql("SELECT count(*) FROM pg_replication_slots"), "0");
}

#[test]
fn standby_play_check_mode_clone_and_idempotence() {
    let (p, _) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    let dir = harness::tempdir();
    let play = Play::with_hosts(
        dir.path(),
        &(primary_group(&p, "127.0.0.1/32") + &standby_group(&p, &s)),
    );
    let vault = secrets(dir.path(), PW);

    let (ok, out) = play.run("standby", &["--check", "-e", &vault]);
    assert!(ok, "{out}");
    assert_eq!(
        task_status(&out, "pgrepctl clone-standby"),
        "changed",
        "check mode reports the clone:\n{out}"
    );
    assert_no_standby(&p, &s);

    let (ok, out) = play.run("standby", &["-e", &vault]);
    assert!(ok, "{out}");
    assert_eq!(
        task_status(&out, "pgrepctl clone-standby"),
        "changed",
        "{out}"
    );
    assert_eq!(
        s.sql("SELECT status FROM pg_stat_wal_receiver"),
        "streaming"
    );
    assert_eq!(s.sql("SELECT pg_is_in_recovery()"), "t");
    assert_eq!(
        p.sql("SELECT application_name || ' ' || state FROM pg_stat_replication"),
        "db2 streaming"
    );
    assert!(!out.contains("s3cret"), "no password in the output:\n{out}");

    let (ok, out) = play.run("standby", &["-e", &vault]);
    assert!(ok, "{out}");
    assert_eq!(task_status(&out, "pgrepctl clone-standby"), "ok", "{out}");
    assert_eq!(
        recap_changed(&out, "db2"),
        0,
        "second run is ok, not changed:\n{out}"
    );

    // The whole two-host playbook, primary first: nothing left to do on
    // either host, in check mode or for real.
    for extra in [&["--check", "-e", &vault][..], &["-e", &vault][..]] {
        let (ok, out) = play.run("all", extra);
        assert!(ok, "{out}");
        assert_eq!(recap_changed(&out, "db1"), 0, "{extra:?}:\n{out}");
        assert_eq!(recap_changed(&out, "db2"), 0, "{extra:?}:\n{out}");
    }
    assert_eq!(
        s.sql("SELECT status FROM pg_stat_wal_receiver"),
        "streaming"
    );
}

#[test]
fn standby_play_bad_input_fails_with_pgrepctls_message() {
    let (p, _) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    let dir = harness::tempdir();
    let play = Play::with_hosts(dir.path(), &standby_group(&p, &s));

    // A wrong password in the vault: the primary refuses it.
    let wrong = "not-the-vault-password";
    let (ok, out) = play.run("standby", &["-e", &secrets(dir.path(), wrong)]);
    assert!(!ok, "{out}");
    assert_eq!(task_status(&out, "pgrepctl clone-standby"), "ok", "{out}");
    assert_eq!(
        task_status(&out, "Fail with pgrepctl's own message"),
        "fatal",
        "{out}"
    );
    assert!(
        out.contains("password authentication failed for user"),
        "pgrepctl's own words in the play output:\n{out}"
    );
    assert!(out.contains("AUTHENTICATION_FAILED"), "{out}");
    assert!(!out.contains(wrong), "no password in the output:\n{out}");
    assert_no_standby(&p, &s);

    // An unknown keyword in primary_conninfo: a usage error before any
    // connection is made.
    let conninfo = serde_json::json!({
        "primary_conninfo": format!("host=127.0.0.1 port={} user=replicator bogus=1", p.port)
    })
    .to_string();
    let vault = secrets(dir.path(), PW);
    let (ok, out) = play.run("standby", &["-e", &vault, "-e", &conninfo]);
    assert!(!ok, "{out}");
    assert_eq!(
        task_status(&out, "Fail with pgrepctl's own message"),
        "fatal",
        "{out}"
    );
    assert!(out.contains("unknown option `bogus`"), "{out}");
    assert!(out.contains("UNKNOWN_CONNINFO_KEYWORD"), "{out}");
    assert_no_standby(&p, &s);
}

#[test]
fn site_check_mode_on_fresh_hosts_says_the_primary_comes_first() {
    // Fresh hosts: check mode previews the primary's changes without making
    // them, so the standby's preview cannot pass its preflight. The play
    // says why instead of blaming the network, and nothing changes.
    let p = Cluster::new();
    let s = Cluster::clone_target(&p);
    let dir = harness::tempdir();
    let play = Play::with_hosts(
        dir.path(),
        &(primary_group(&p, "127.0.0.1/32") + &standby_group(&p, &s)),
    );
    let files = [p.conf_path(), p.hba_path()];
    let refs: Vec<&Path> = files.iter().map(|f| f.as_path()).collect();
    let before = harness::snapshot(&refs);

    let (ok, out) = play.run("all", &["--check"]);
    assert!(!ok, "{out}");
    assert_eq!(
        task_status(&out, "pgrepctl init-master"),
        "changed",
        "{out}"
    );
    assert!(out.contains("PRIMARY_NOT_READY"), "{out}");
    assert!(
        out.contains("check mode: the primary play only previewed its changes"),
        "{out}"
    );
    assert_eq!(
        harness::snapshot(&refs),
        before,
        "check mode changes nothing"
    );
    assert_eq!(
        p.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'replicator'"),
        "0"
    );
    assert_no_standby(&p, &s);

    // Not in check mode, the same failure carries no such note.
    let (ok, out) = play.run("standby", &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("PRIMARY_NOT_READY"), "{out}");
    assert!(!out.contains("check mode:"), "{out}");
    assert_no_standby(&p, &s);
}
