//! SIGKILL at any moment loses nothing: pgrepctl is killed outright at many
//! points of a real run (right after each file event it causes, seen
//! through inotify, and at moments spread over the run; no hooks in the
//! code), and what it leaves must be old or new files, whole backups, no
//! temporary files after a rerun, no child process still running, no
//! password on disk, and a rerun that converges.

use crate::harness::{self, Cluster, pgrepctl, run::password_file};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `pgrepctl` with a clean libpq environment, not yet started.
fn command(args: &[String]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgrepctl"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PG") {
            c.env_remove(k);
        }
    }
    c.args(args).env("NO_COLOR", "1");
    c
}

fn sigkill(child: &Child) {
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
}

/// Names in `dir` that look like pgrepctl's temporary files.
fn temps(dir: &Path) -> Vec<String> {
    harness::listing(dir)
        .into_iter()
        .filter(|n| n.contains(".pgrepctl-tmp."))
        .collect()
}

/// Every backup that exists holds exactly the original file.
fn assert_backups_whole(originals: &[(PathBuf, Vec<u8>)], when: &str) {
    for (path, text) in originals {
        let backup = PathBuf::from(format!("{}.pgrepctl.orig", path.display()));
        if let Ok(b) = std::fs::read(&backup) {
            assert!(
                &b == text,
                "{when}: {} is not the original ({} bytes, original {})",
                backup.display(),
                b.len(),
                text.len()
            );
        }
    }
}

/// Back to the cluster as initdb made it: files, no backups, no role.
fn reset(c: &Cluster, originals: &[(PathBuf, Vec<u8>)]) {
    for (path, text) in originals {
        c.write_as_pg(path, std::str::from_utf8(text).unwrap());
        let _ = std::fs::remove_file(format!("{}.pgrepctl.orig", path.display()));
    }
    c.sql("SELECT pg_reload_conf()");
    c.sql("DROP ROLE IF EXISTS replicator");
}

/// Where a killed run is killed.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// This long after it started.
    Delay(Duration),
    /// Right after the n-th change (create, write, rename, unlink) of a
    /// file directly in the watched directory: the exact steps of a file
    /// write, which no timer hits reliably.
    Event(usize),
}

/// Run pgrepctl and SIGKILL it at `at` (or let it finish if it ends
/// first). Returns how many file events it caused in `dir` meanwhile.
fn run_and_kill(args: &[String], dir: &Path, at: KillAt) -> usize {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let watch = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).unwrap();
    watch
        .add_watch(
            dir,
            AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_CLOSE_WRITE
                | AddWatchFlags::IN_MOVED_FROM
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_DELETE,
        )
        .unwrap();
    let started = Instant::now();
    let mut child = command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut events = 0;
    loop {
        events += watch.read_events().map(|e| e.len()).unwrap_or(0);
        let now = match at {
            KillAt::Delay(d) => started.elapsed() >= d,
            KillAt::Event(n) => events >= n,
        };
        if now {
            sigkill(&child);
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    child.wait().unwrap();
    events
}

#[test]
fn init_master_killed_anywhere_keeps_backups_whole_and_converges() {
    let c = Cluster::new();
    let pw = password_file(c.tmp.path(), "faults pass");
    let files = [
        c.conf_path(),
        c.hba_path(),
        c.data.join("postgresql.auto.conf"),
    ];
    let originals: Vec<(PathBuf, Vec<u8>)> = files
        .iter()
        .map(|p| (p.clone(), std::fs::read(p).unwrap()))
        .collect();
    let args: Vec<String> = [
        "init-master",
        "-D",
        c.data.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
        "--allow",
        "127.0.0.1/32",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let json_args: Vec<String> = args.iter().cloned().chain(["--json".into()]).collect();
    // A full run, to learn how long it takes and how many file events it
    // makes; then a kill after each event, and at moments spread over
    // the whole run (connecting, SQL, reload).
    let started = Instant::now();
    let events = run_and_kill(&args, &c.data, KillAt::Event(usize::MAX));
    let total = started.elapsed();
    assert!(events >= 4, "a first run writes files ({events} events)");
    let finals: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    reset(&c, &originals);
    let mut points: Vec<KillAt> = (1..=events).map(KillAt::Event).collect();
    points.extend((0..12).map(|i| KillAt::Delay(total * i / 12)));
    for at in points {
        run_and_kill(&args, &c.data, at);
        let when = format!("killed at {at:?}");
        assert_backups_whole(&originals, &when);
        for ((path, old), new) in originals.iter().zip(&finals) {
            let now = std::fs::read(path).unwrap();
            assert!(
                &now == old || &now == new,
                "{when}: {} is neither old nor new",
                path.display()
            );
        }

        let j = pgrepctl(&json_args).ok();
        assert_backups_whole(&originals, &format!("{when}, rerun"));
        for (path, _) in &originals[..2] {
            let backup = PathBuf::from(format!("{}.pgrepctl.orig", path.display()));
            assert!(
                backup.exists(),
                "{when}: no backup of {}: {j}",
                path.display()
            );
        }
        assert_eq!(
            temps(&c.data),
            Vec::<String>::new(),
            "{when}: stray temp files"
        );
        let j = pgrepctl(&json_args).ok();
        assert_eq!(j["changed"], false, "{when}: the rerun must converge: {j}");
        reset(&c, &originals);
    }
}

/// Processes whose command line is a pg_basebackup into `dir`: the copy
/// and its forked WAL streamer.
fn basebackups_into(dir: &Path) -> Vec<i32> {
    let needle = dir.display().to_string();
    let mut pids = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("pg_basebackup") && cmd.contains(&needle) {
            pids.push(pid);
        }
    }
    pids
}

/// Regular files (directly in /tmp, and anywhere under `tree`) that
/// contain `secret`.
fn files_containing(secret: &str, tree: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, deep: bool, secret: &[u8], found: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() && deep {
                walk(&e.path(), deep, secret, found);
            } else if t.is_file()
                && e.metadata().is_ok_and(|m| m.len() < 1 << 20)
                && std::fs::read(e.path())
                    .is_ok_and(|b| b.windows(secret.len()).any(|w| w == secret))
            {
                found.push(e.path());
            }
        }
    }
    let mut found = vec![];
    walk(Path::new("/tmp"), false, secret.as_bytes(), &mut found);
    walk(tree, true, secret.as_bytes(), &mut found);
    found
}

#[test]
fn clone_standby_killed_mid_copy_leaves_no_child_and_no_secret() {
    // A password no other file on this machine holds.
    let secret = format!(
        "faults-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let (p, _) = crate::harness::fixtures::prepared_primary_with(Cluster::builder(), &secret);
    let s = Cluster::clone_target(&p);
    let clone_args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "clone-standby",
            "--json",
            "--primary",
            &format!("host=127.0.0.1 port={} user=replicator", p.port),
            "-D",
            s.data.to_str().unwrap(),
            "--bindir",
            s.bindir.to_str().unwrap(),
            "--port",
            &s.port.to_string(),
            "--slot",
            "faults",
            "--wait",
            "30",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    // The password comes from the environment: no child may inherit it.
    let child = command(&clone_args(&["--max-rate", "32k"]))
        .env("PGREPCTL_REPLICATION_PASSWORD", &secret)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Wait for pg_basebackup and its forked WAL streamer.
    let copying = loop {
        let pids = basebackups_into(s.tmp.path());
        if pids.len() >= 2 {
            break pids;
        }
        if started.elapsed() > Duration::from_secs(30) {
            sigkill(&child);
            panic!("the copy never started: {pids:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for pid in &copying {
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let env = String::from_utf8_lossy(&env);
        assert!(
            !env.contains("PGREPCTL_REPLICATION_PASSWORD") && !env.contains(&secret),
            "pg_basebackup inherited the password: {env}"
        );
        assert!(
            env.contains("PGPASSFILE=/proc/self/fd/"),
            "in-memory password file: {env}"
        );
    }
    assert_eq!(
        files_containing(&secret, s.tmp.path()),
        Vec::<PathBuf>::new()
    );

    sigkill(&child);
    let mut child = child;
    child.wait().unwrap();
    let killed = Instant::now();
    while !basebackups_into(s.tmp.path()).is_empty() && killed.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        basebackups_into(s.tmp.path()),
        Vec::<i32>::new(),
        "pg_basebackup must die with pgrepctl"
    );
    assert_eq!(
        files_containing(&secret, s.tmp.path()),
        Vec::<PathBuf>::new(),
        "no password on disk after a SIGKILL"
    );
    assert!(!s.data.exists(), "the target must not appear");

    // A rerun (of a `--force` run, the only kind that moves an old target
    // aside) removes the partial copy, puts the old target a killed run
    // had moved aside back in place, and replaces it as asked.
    let moved_aside = s.tmp.path().join(".standby.pgrepctl-old.2147483647");
    std::fs::create_dir(&moved_aside).unwrap();
    std::fs::copy(p.data.join("PG_VERSION"), moved_aside.join("PG_VERSION")).unwrap();
    assert!(
        harness::listing(s.tmp.path())
            .iter()
            .any(|n| n.contains(".pgrepctl-clone.")),
        "the killed run left its partial copy"
    );
    let r = harness::run::Run::from(
        command(&clone_args(&["--force", "-v"]))
            .env("PGREPCTL_REPLICATION_PASSWORD", &secret)
            .output()
            .unwrap(),
    );
    assert!(
        r.stderr().contains("put ") && r.stderr().contains("back at"),
        "{}",
        r.stderr()
    );
    let j = r.ok();
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    assert_eq!(harness::listing(s.tmp.path()), vec!["standby"]);
    // Only the standby's own password file, its intended 0600 home.
    for f in files_containing(&secret, s.tmp.path()) {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert!(
            f.parent() == Some(&s.data) && mode == 0o600,
            "password in {} (mode {mode:o})",
            f.display()
        );
    }
}

#[test]
fn an_empty_backup_left_by_an_older_version_is_reported_not_trusted() {
    let c = Cluster::new();
    let pw = password_file(c.tmp.path(), "faults pass");
    let backup = PathBuf::from(format!("{}.pgrepctl.orig", c.hba_path().display()));
    c.write_as_pg(&backup, "");
    let j = crate::harness::fixtures::init_master(&c, &pw, &["--allow", "127.0.0.1/32"]).ok();
    let warnings = j["warnings"].to_string();
    assert!(
        warnings.contains(&format!("the backup {} is empty", backup.display())),
        "{j}"
    );
    assert_eq!(
        std::fs::read(&backup).unwrap(),
        b"",
        "left for the DBA to see"
    );
}
