//! Running the pgrepctl binary the way a user does, with a clean libpq
//! environment so the developer's PG* variables cannot leak into tests.
//!
//! [`Test`] is the one way to run it: arguments, environment, the OS user
//! and stdin in; a [`Run`] out with the exit status, stdout, stderr, the
//! parsed JSON and the files the run wrote under the directories watched.
//!
//! ```ignore
//! let r = Test::new(&["init-master", "--json", "-D", data])
//!     .env("PGREPCTL_REPLICATION_PASSWORD", "x")
//!     .watch(&conf_dir)
//!     .run();
//! let j = r.ok();
//! assert_eq!(r.written(), vec![conf_dir.join("postgresql.conf")]);
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::SystemTime;

/// One run of pgrepctl, built up and then [`run`](Test::run).
#[derive(Default)]
pub struct Test {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_remove: Vec<OsString>,
    /// Set by [`Test::run_as`]: the user (None: the test's), run from `/`.
    run_as: Option<Option<(u32, u32)>>,
    stdin: Option<Vec<u8>>,
    watch: Vec<PathBuf>,
    netns: Option<String>,
}

impl Test {
    pub fn new<I, S>(args: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Test {
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            ..Test::default()
        }
    }

    /// One more argument.
    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Test {
        self.args.push(a.as_ref().to_owned());
        self
    }

    /// An environment variable for the run (the PG* ones are cleared first).
    pub fn env(mut self, k: impl AsRef<std::ffi::OsStr>, v: impl AsRef<std::ffi::OsStr>) -> Test {
        self.env
            .push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }

    /// Clear one more variable of the test's environment.
    pub fn env_remove(mut self, k: impl AsRef<std::ffi::OsStr>) -> Test {
        self.env_remove.push(k.as_ref().to_owned());
        self
    }

    /// Run as this OS user and group (None: as the test), from `/` with the
    /// postgres user's HOME, as `sudo -u postgres pgrepctl` would.
    pub fn run_as(mut self, ids: Option<(u32, u32)>) -> Test {
        self.run_as = Some(ids);
        self
    }

    /// Run inside this network namespace (another test "host"), as root.
    pub fn netns(mut self, ns: Option<&str>) -> Test {
        self.netns = ns.map(str::to_string);
        self
    }

    /// What the run reads on stdin (else nothing: stdin is closed).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Test {
        self.stdin = Some(bytes.into());
        self
    }

    /// Remember what is under `dir` now, so [`Run::written`] can list what
    /// the run created or changed there.
    pub fn watch(mut self, dir: &Path) -> Test {
        self.watch.push(dir.to_path_buf());
        self
    }

    pub fn run(self) -> Run {
        self.run_pausing(None)
    }

    /// Run, stopped after step `step` of its plan (a debug build's
    /// `PGREPCTL_PAUSE_AFTER_STEP`) while `meanwhile` changes the world
    /// under it, then continued. It always continues, even when
    /// `meanwhile` panics.
    pub fn run_paused(self, step: usize, meanwhile: impl FnOnce()) -> Run {
        self.env("PGREPCTL_PAUSE_AFTER_STEP", step.to_string())
            .run_pausing(Some(Box::new(meanwhile)))
    }

    fn run_pausing(self, meanwhile: Option<Box<dyn FnOnce() + '_>>) -> Run {
        use std::os::unix::process::CommandExt;
        let bin = env!("CARGO_BIN_EXE_pgrepctl");
        let mut c = match &self.netns {
            Some(ns) => super::netns::Pair::exec(ns, bin),
            None => Command::new(bin),
        };
        c.args(&self.args);
        for (k, _) in std::env::vars() {
            if k.starts_with("PG") {
                c.env_remove(k);
            }
        }
        for k in &self.env_remove {
            c.env_remove(k);
        }
        c.env("NO_COLOR", "1");
        if let Some(ids) = self.run_as {
            c.current_dir("/");
            if let Some((uid, gid)) = ids {
                c.uid(uid).gid(gid).env("HOME", "/var/lib/postgresql");
            }
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let before: Vec<Tree> = self.watch.iter().map(|d| Tree::of(d)).collect();
        c.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("pgrepctl starts");
        if let Some(input) = &self.stdin {
            let mut s = child.stdin.take().expect("piped stdin");
            // A command that does not read stdin may exit first: not an error.
            let _ = s.write_all(input);
        }
        if let Some(meanwhile) = meanwhile {
            paused(&mut child, meanwhile);
        }
        let out = child.wait_with_output().expect("pgrepctl runs");
        let written = self
            .watch
            .iter()
            .zip(&before)
            .flat_map(|(d, b)| Tree::of(d).changed_since(b))
            .collect();
        Run { out, written }
    }
}

/// Wait until the child stops itself, run `meanwhile`, and let it go on.
/// When the test fails on the way, the child is continued and killed
/// (so neither it nor what it started outlives the test).
fn paused(child: &mut std::process::Child, meanwhile: Box<dyn FnOnce() + '_>) {
    use nix::sys::signal::{Signal, kill};
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let give_up = |child: &mut std::process::Child| {
        let _ = kill(pid, Signal::SIGCONT);
        let _ = child.kill();
        let _ = child.wait();
    };
    let t = std::time::Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next());
        if state == Some("T") {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("pgrepctl ended ({status}) before the step it was to pause after:\n{err}");
        }
        if t.elapsed() > std::time::Duration::from_secs(120) {
            give_up(child);
            panic!("pgrepctl never paused");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(meanwhile));
    if let Err(p) = r {
        give_up(child);
        std::panic::resume_unwind(p);
    }
    kill(pid, Signal::SIGCONT).unwrap();
}

/// Each file under a directory, with its size, mtime and contents' hash.
struct Tree(BTreeMap<PathBuf, (u64, Option<SystemTime>, u64)>);

impl Tree {
    fn of(dir: &Path) -> Tree {
        use std::hash::{Hash, Hasher};
        let mut files = BTreeMap::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let Ok(m) = std::fs::symlink_metadata(&p) else {
                    continue;
                };
                if m.is_dir() {
                    todo.push(p);
                } else {
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    std::fs::read(&p).unwrap_or_default().hash(&mut h);
                    files.insert(p, (m.len(), m.modified().ok(), h.finish()));
                }
            }
        }
        Tree(files)
    }

    /// Files that are new or differ from `before`, sorted.
    fn changed_since(&self, before: &Tree) -> Vec<PathBuf> {
        self.0
            .iter()
            .filter(|(p, v)| before.0.get(*p) != Some(*v))
            .map(|(p, _)| p.clone())
            .collect()
    }
}

pub struct Run {
    pub out: Output,
    written: Vec<PathBuf>,
}

/// A run started some other way (a child killed mid-run, another
/// network namespace): its output, nothing watched.
impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            out,
            written: vec![],
        }
    }
}

impl Run {
    /// The exit status (-1 when killed by a signal).
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    /// Files created or changed under the [`Test::watch`]ed directories.
    pub fn written(&self) -> Vec<PathBuf> {
        self.written.clone()
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

/// `pgrepctl ARGS` as the test user: `Test::new(args).run()`.
pub fn pgrepctl<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Test::new(args).run()
}

/// [`pgrepctl`] with environment variables.
pub fn pgrepctl_env<I, S>(args: I, env: &[(&str, &str)]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    env.iter()
        .fold(Test::new(args), |t, (k, v)| t.env(k, v))
        .run()
}

/// Run pgrepctl as another OS user (the postgres user when tests run as root).
pub fn pgrepctl_env_as(args: &[&str], ids: Option<(u32, u32)>) -> Run {
    Test::new(args).run_as(ids).run()
}

/// A 0600 password file owned by the test user.
pub fn password_file(dir: &Path, password: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(format!("pw-{}", password.len()));
    std::fs::write(&p, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}
