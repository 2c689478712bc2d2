//! Running the pgrepctl binary the way a user does, with a clean libpq
//! environment so the developer's PG* variables cannot leak into tests.

use std::path::Path;
use std::process::{Command, Output};

pub struct Run {
    pub out: Output,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout().trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            )
        })
    }
    /// Asserts exit 0 and returns the JSON.
    pub fn ok(&self) -> serde_json::Value {
        assert_eq!(
            self.code(),
            0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self.json()
    }
    /// Asserts failure with `code` and returns the JSON error object.
    pub fn fails(&self, exit: i32, code: &str) -> serde_json::Value {
        let j = self.json();
        assert_eq!(j["ok"], false, "{j}");
        assert_eq!(j["error"]["code"], code, "{j}\nstderr:\n{}", self.stderr());
        assert_eq!(self.code(), exit, "{j}");
        assert!(
            self.stderr().contains("error: "),
            "one-line error on stderr: {}",
            self.stderr()
        );
        j
    }
}

pub fn pgrepctl<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    pgrepctl_env(args, &[])
}

pub fn pgrepctl_env<I, S>(args: I, env: &[(&str, &str)]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgrepctl"));
    c.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("PG") || k.starts_with("PGREPCTL_") {
            c.env_remove(k);
        }
    }
    c.env("NO_COLOR", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    Run {
        out: c.output().unwrap(),
    }
}

/// A 0600 password file owned by the test user.
pub fn password_file(dir: &Path, password: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(format!("pw-{}", password.len()));
    std::fs::write(&p, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// Run pgrepctl as another OS user (the postgres user when tests run as root).
pub fn pgrepctl_env_as(args: &[&str], ids: Option<(u32, u32)>) -> Run {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgrepctl"));
    c.args(args).current_dir("/");
    for (k, _) in std::env::vars() {
        if k.starts_with("PG") {
            c.env_remove(k);
        }
    }
    if let Some((uid, gid)) = ids {
        c.uid(uid).gid(gid).env("HOME", "/var/lib/postgresql");
    }
    Run {
        out: c.output().unwrap(),
    }
}
