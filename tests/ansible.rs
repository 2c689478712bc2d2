//! The Ansible example (examples/ansible) run for real: ansible-core from
//! PyPI in a virtualenv, `connection: local`, against real clusters. First
//! run changed, second run unchanged, check mode reports without changing,
//! and a bad input fails with pgrepctl's own message.

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

impl Play {
    fn new(dir: &Path, primary: &Cluster, allow: &str) -> Play {
        let bin = venv_bin();
        let inventory = dir.join("inventory.yml");
        let pw = dir.join("replicator.pass");
        std::fs::write(
            &inventory,
            format!(
                "all:\n  vars:\n    pgrepctl: {exe}\n    replication_user: replicator\n    ansible_connection: local\n    ansible_python_interpreter: {py}\n    password_file: {pw}\n  children:\n    primary:\n      hosts:\n        db1:\n          pgdata: {data}\n          standby_addresses: [\"{allow}\"]\n",
                exe = env!("CARGO_BIN_EXE_pgrepctl"),
                py = bin.join("python").display(),
                pw = pw.display(),
                data = primary.data.display(),
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
