//! One PostgreSQL cluster on this host, as every command, the sandbox and
//! the tests handle it: its data and configuration directories, its
//! Debian identity when it has one, its binaries, the OS user it runs as,
//! the server log pgrepctl starts it with, its pid file, its control
//! file, and `ctl` — start, stop, restart, reload, promote — which uses
//! Debian's `pg_ctlcluster` for a Debian cluster (it knows the cluster's
//! configuration, options and log) and `pg_ctl` as the owner otherwise.
//! That choice is made here and nowhere else.

use crate::error::{Code, Error, Result};
use crate::pg::controldata::{self, ControlData};
use crate::pg::debian::{self, DebianCluster};
use crate::pg::pidfile::{self, PidFile};
use crate::tools::{self, BinDir, RunAs};
use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The server log pgrepctl gives `pg_ctl` when it starts or restarts a
/// cluster that is not Debian's, inside the data directory so it moves
/// with the cluster and is found by whoever looks there.
pub const SERVER_LOG: &str = "pgrepctl-server.log";

/// What [`LocalCluster::ctl`] does to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctl {
    Start,
    /// Fast shutdown: sessions are ended, a shutdown checkpoint is written.
    Stop,
    Restart,
    /// Re-read the configuration files (SIGHUP).
    Reload,
    /// End recovery: the standby becomes a primary on a new timeline.
    Promote,
}

impl Ctl {
    pub fn verb(self) -> &'static str {
        match self {
            Ctl::Start => "start",
            Ctl::Stop => "stop",
            Ctl::Restart => "restart",
            Ctl::Reload => "reload",
            Ctl::Promote => "promote",
        }
    }

    /// Whether the server comes up and writes to the log.
    fn starts(self) -> bool {
        matches!(self, Ctl::Start | Ctl::Restart)
    }

    /// Whether pg_ctl waits for it (and so takes `-w -t`).
    fn waits(self) -> bool {
        self != Ctl::Reload
    }
}

#[derive(Debug, Clone)]
pub struct LocalCluster {
    pub data_dir: PathBuf,
    /// Where postgresql.conf is: Debian's /etc directory, the directory of
    /// `SHOW config_file` when the caller knows it, else the data directory.
    pub config_dir: PathBuf,
    pub debian: Option<DebianCluster>,
    pub bindir: BinDir,
    /// Who PostgreSQL's programs run as (the data directory's owner when
    /// pgrepctl runs as root).
    pub run_as: RunAs,
}

impl LocalCluster {
    /// The cluster at `data_dir` (which may not exist yet), run with
    /// `bindir` as `run_as`; its Debian identity is looked up in
    /// /etc/postgresql.
    pub fn new(data_dir: &Path, bindir: BinDir, run_as: RunAs) -> LocalCluster {
        Self::with_debian(
            data_dir,
            bindir,
            run_as,
            debian::by_data_dir(Path::new(debian::ETC_ROOT), data_dir),
        )
    }

    /// [`LocalCluster::new`] with a Debian identity already known.
    pub fn with_debian(
        data_dir: &Path,
        bindir: BinDir,
        run_as: RunAs,
        debian: Option<DebianCluster>,
    ) -> LocalCluster {
        LocalCluster {
            data_dir: data_dir.to_path_buf(),
            config_dir: debian
                .as_ref()
                .map_or_else(|| data_dir.to_path_buf(), |d| d.config_dir.clone()),
            debian,
            bindir,
            run_as,
        }
    }

    /// An existing cluster: run as its data directory's owner, with the
    /// binaries of its major (`PG_VERSION`) found the documented way
    /// (`explicit` `--bindir`, the running server's own, pg_config, Debian,
    /// PATH).
    pub fn open(data_dir: &Path, explicit: Option<&Path>) -> Result<LocalCluster> {
        let major = major_of(data_dir)?;
        let server = tools::running_server_bindir(data_dir);
        let bindir = tools::find_with(major, explicit, server.as_deref())?;
        Ok(Self::new(data_dir, bindir, RunAs::owner_of(data_dir)))
    }

    /// The configuration directory as the server reports it
    /// (`SHOW config_file`), which wins over the default guess.
    pub fn config_file(mut self, config_file: &Path) -> LocalCluster {
        if let Some(dir) = config_file.parent() {
            self.config_dir = dir.to_path_buf();
        }
        self
    }

    /// The postmaster of this data directory, when one is alive: pid,
    /// port, socket directory.
    pub fn running(&self) -> Option<PidFile> {
        pidfile::running(&self.data_dir)
    }

    /// An SQL session on this running server over its own socket, as the
    /// data directory's owner (peer authentication lets root in too).
    pub async fn session(&self, timeout: Duration) -> Result<crate::pg::Session> {
        let pf = self.running().ok_or_else(|| {
            Error::new(
                Code::ServerNotRunning,
                format!("no server runs on {}", self.data_dir.display()),
            )
            .hint("start it first")
        })?;
        let mut config = tokio_postgres::Config::new();
        if pf.socket_dir.is_empty() {
            config.host("127.0.0.1");
        } else {
            config.host_path(&pf.socket_dir);
        }
        config
            .port(pf.port)
            .dbname("postgres")
            .application_name("pgrepctl");
        if let Some(u) = self.run_as.user_name() {
            config.user(&u);
        }
        crate::pg::connect(&config.into(), Some(timeout)).await
    }

    /// The log pgrepctl starts the server with, or pg_ctlcluster's for a
    /// Debian cluster.
    pub fn log_file(&self) -> PathBuf {
        match &self.debian {
            Some(d) => d.log_file(),
            None => self.data_dir.join(SERVER_LOG),
        }
    }

    /// What a DBA types to start this server the way pgrepctl does (with
    /// pgrepctl's log, which `ctl_command`'s short form leaves out).
    pub fn start_line(&self) -> String {
        let shown = self.ctl_command(Ctl::Start, Duration::from_secs(60)).1;
        match &self.debian {
            Some(_) => shown,
            None => format!("{shown} -l {}", self.log_file().display()),
        }
    }

    /// The command for `action`, bounded by `timeout`, and how a DBA would
    /// type it (for messages and reports).
    pub fn ctl_command(&self, action: Ctl, timeout: Duration) -> (duct::Expression, String) {
        let verb = action.verb();
        let secs = timeout.as_secs().max(1).to_string();
        if let Some(d) = &self.debian {
            let mut args: Vec<OsString> = vec![
                d.version.clone().into(),
                d.cluster.clone().into(),
                verb.into(),
            ];
            if action.waits() {
                // Passed on to pg_ctl, which pg_ctlcluster runs.
                args.extend(["--".into(), "-t".into(), secs.into()]);
            }
            let shown = format!("pg_ctlcluster {} {} {verb}", d.version, d.cluster);
            return (
                detached_if_starting(tools::cmd("pg_ctlcluster", args), action),
                shown,
            );
        }
        let mut args: Vec<OsString> = vec![verb.into(), "-D".into(), self.data_dir.clone().into()];
        if action.waits() {
            args.extend(["-w".into(), "-t".into(), secs.into()]);
        }
        if matches!(action, Ctl::Stop | Ctl::Restart) {
            args.extend(["-m".into(), "fast".into()]);
        }
        if action.starts() {
            args.extend(["-l".into(), self.log_file().into()]);
        }
        let shown = format!(
            "{}pg_ctl {verb} -D {}",
            self.run_as.shell_prefix(),
            self.data_dir.display()
        );
        let expr = self.run_as.cmd(self.bindir.tool("pg_ctl"), args);
        (detached_if_starting(expr, action), shown)
    }

    /// Carry out `action` and wait (at most `timeout`) until it is done:
    /// the server accepts connections after a start, is gone after a
    /// stop, has left recovery after a promote. Returns the command as a
    /// DBA would type it. A start that fails carries the log's decisive
    /// lines.
    pub fn ctl(&self, action: Ctl, timeout: Duration) -> Result<String> {
        let (expr, shown) = self.ctl_command(action, timeout);
        match tools::run(expr.stdin_null(), &shown) {
            Ok(_) => Ok(shown),
            Err(mut e) if action.starts() => {
                e.message = format!("{}; server log: {}", e.message, self.log_tail());
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// A fast shutdown, watched every 5 ms rather than pg_ctl's tenth of a
    /// second (switchover's write pause includes it): SIGINT to the
    /// postmaster named in postmaster.pid, then wait until it is gone.
    /// A Debian cluster goes through pg_ctlcluster (systemd may own it).
    pub async fn stop_fast(&self, timeout: Duration) -> Result<()> {
        let Some(pf) = self.running() else {
            return Ok(());
        };
        if self.debian.is_some() {
            return self.ctl(Ctl::Stop, timeout).map(|_| ());
        }
        let pid = nix::unistd::Pid::from_raw(pf.pid);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).map_err(|e| {
            Error::new(
                Code::ToolFailed,
                format!("cannot signal the postmaster (pid {}): {e}", pf.pid),
            )
        })?;
        let started = std::time::Instant::now();
        // postmaster.pid goes as the postmaster's last act; a postmaster
        // that exited but is not reaped yet counts as gone.
        let pidfile = self.data_dir.join("postmaster.pid");
        while pidfile.exists() && crate::pg::pidfile::pid_alive(pf.pid) {
            if started.elapsed() >= timeout {
                return Err(Error::new(
                    Code::Timeout,
                    format!(
                        "the server on {} did not shut down within {}s",
                        self.data_dir.display(),
                        timeout.as_secs()
                    ),
                )
                .hint("see its log: a fast shutdown waits for the shutdown checkpoint"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Stop the server if one runs; true when it did.
    pub fn stop_if_running(&self, timeout: Duration) -> Result<bool> {
        if self.running().is_none() {
            return Ok(false);
        }
        self.ctl(Ctl::Stop, timeout)?;
        Ok(true)
    }

    /// The control file's facts, from this major's `pg_controldata` run as
    /// the owner with `LC_ALL=C` (its labels are translated otherwise).
    pub fn control_data(&self) -> Result<ControlData> {
        let tool = self.bindir.tool("pg_controldata");
        if !tool.exists() {
            return Err(Error::new(
                Code::ToolNotFound,
                format!("{} has no pg_controldata", self.bindir.path.display()),
            )
            .hint(format!(
                "install PostgreSQL {}'s server programs (Debian: postgresql-{0}) or pass --bindir",
                self.bindir.major
            )));
        }
        let args: Vec<OsString> = vec!["-D".into(), self.data_dir.clone().into()];
        let expr = self
            .run_as
            .cmd(tool, args)
            .env("LC_ALL", "C")
            .env_remove("LANGUAGE")
            .stdin_null();
        let shown = format!(
            "{}pg_controldata -D {}",
            self.run_as.shell_prefix(),
            self.data_dir.display()
        );
        controldata::parse(&tools::run(expr, &shown)?)
    }

    /// The decisive lines of the newest server log: pgrepctl's own,
    /// Debian's, or the logging collector's (`log/`, `pg_log/`).
    pub fn log_tail(&self) -> String {
        let mut candidates: Vec<PathBuf> = vec![self.data_dir.join(SERVER_LOG)];
        if let Some(d) = &self.debian {
            candidates.push(d.log_file());
        }
        for sub in ["log", "pg_log"] {
            for e in std::fs::read_dir(self.data_dir.join(sub))
                .into_iter()
                .flatten()
                .flatten()
            {
                candidates.push(e.path());
            }
        }
        let newest = candidates
            .into_iter()
            .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
            .max()
            .map(|(_, p)| p);
        match newest {
            Some(p) => {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                format!("{}: {}", p.display(), decisive_lines(&text).join(" | "))
            }
            None => "(no log found)".into(),
        }
    }
}

/// The major version a data directory was made by (`PG_VERSION`).
pub fn major_of(data_dir: &Path) -> Result<u32> {
    let path = data_dir.join("PG_VERSION");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        // No such directory, a file given as one, or a directory without
        // PG_VERSION: a wrong -D, not a missing permission.
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Err(Error::new(
                Code::NotADataDirectory,
                format!(
                    "{} is not a PostgreSQL data directory ({})",
                    data_dir.display(),
                    if data_dir.is_dir() {
                        "no PG_VERSION"
                    } else if data_dir.exists() {
                        "not a directory"
                    } else {
                        "it does not exist"
                    }
                ),
            )
            .hint("give the cluster's data directory with -D, e.g. /var/lib/postgresql/15/main"));
        }
        Err(_) => crate::fsutil::read_to_string(&path)?,
    };
    text.trim().parse().map_err(|_| {
        Error::new(
            Code::NotADataDirectory,
            format!(
                "{} holds {:?}, not a major version",
                path.display(),
                text.trim()
            ),
        )
        .hint("give the data directory of a PostgreSQL cluster")
    })
}

/// The lines that say why a server stopped: the FATAL/PANIC/ERROR lines
/// of its last start with their DETAIL and HINT, else the last four.
pub fn decisive_lines(log: &str) -> Vec<&str> {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    let recent = &lines[lines.len().saturating_sub(60)..];
    let decisive: Vec<&str> = recent
        .iter()
        .copied()
        .filter(|l| {
            ["FATAL:", "PANIC:", "ERROR:", "DETAIL:", "HINT:"]
                .iter()
                .any(|k| l.contains(k))
        })
        .collect();
    if decisive.is_empty() {
        recent[recent.len().saturating_sub(4)..].to_vec()
    } else {
        decisive[decisive.len().saturating_sub(6)..].to_vec()
    }
}

/// A start or restart runs pg_ctl in a process group of its own, so the
/// postmaster it forks is in that group too. PostgreSQL 12+'s pg_ctl
/// detaches the postmaster itself (setsid); 10 and 11 leave it in the
/// caller's group, where a Ctrl-C at the terminal, or pgrepctl stopping a
/// child command's group (`runner::LongChild`), would reach the server.
fn detached_if_starting(expr: duct::Expression, action: Ctl) -> duct::Expression {
    if !action.starts() {
        return expr;
    }
    expr.before_spawn(|c| {
        use std::os::unix::process::CommandExt;
        c.process_group(0);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(debian: Option<DebianCluster>) -> LocalCluster {
        LocalCluster::with_debian(
            Path::new("/srv/pg/data"),
            BinDir {
                path: PathBuf::from("/usr/lib/postgresql/15/bin"),
                major: 15,
            },
            RunAs::default(),
            debian,
        )
    }

    #[test]
    fn pg_ctl_or_pg_ctlcluster_is_chosen_once() {
        let t = Duration::from_secs(30);
        let plain = cluster(None);
        assert_eq!(plain.config_dir, Path::new("/srv/pg/data"));
        assert_eq!(
            plain.log_file(),
            Path::new("/srv/pg/data/pgrepctl-server.log")
        );
        for (action, shown) in [
            (Ctl::Start, "pg_ctl start -D /srv/pg/data"),
            (Ctl::Promote, "pg_ctl promote -D /srv/pg/data"),
        ] {
            assert_eq!(plain.ctl_command(action, t).1, shown);
        }
        let deb = cluster(Some(DebianCluster {
            version: "15".into(),
            cluster: "main".into(),
            config_dir: PathBuf::from("/etc/postgresql/15/main"),
            data_dir: PathBuf::from("/srv/pg/data"),
        }));
        assert_eq!(deb.config_dir, Path::new("/etc/postgresql/15/main"));
        assert_eq!(
            deb.log_file(),
            Path::new("/var/log/postgresql/postgresql-15-main.log")
        );
        assert_eq!(
            deb.ctl_command(Ctl::Reload, t).1,
            "pg_ctlcluster 15 main reload"
        );
        let with_conf = cluster(None).config_file(Path::new("/etc/pg/postgresql.conf"));
        assert_eq!(with_conf.config_dir, Path::new("/etc/pg"));
    }

    /// The argv of a ctl command, from duct's Debug (`Cmd([...])`).
    fn argv(c: &LocalCluster, action: Ctl) -> String {
        let (e, _) = c.ctl_command(action, Duration::from_secs(30));
        let d = format!("{e:?}");
        let start = d.find("Cmd([").expect("a command") + 5;
        d[start..start + d[start..].find("])").unwrap()].replace('"', "")
    }

    #[test]
    fn each_action_gets_the_options_it_needs() {
        let plain = cluster(None);
        let bin = "/usr/lib/postgresql/15/bin/pg_ctl";
        let d = "-D, /srv/pg/data";
        let log = "-l, /srv/pg/data/pgrepctl-server.log";
        for (action, want) in [
            (Ctl::Start, format!("{bin}, start, {d}, -w, -t, 30, {log}")),
            (Ctl::Stop, format!("{bin}, stop, {d}, -w, -t, 30, -m, fast")),
            (
                Ctl::Restart,
                format!("{bin}, restart, {d}, -w, -t, 30, -m, fast, {log}"),
            ),
            (Ctl::Reload, format!("{bin}, reload, {d}")),
            (Ctl::Promote, format!("{bin}, promote, {d}, -w, -t, 30")),
        ] {
            assert_eq!(argv(&plain, action), want, "{action:?}");
        }
        let deb = cluster(Some(DebianCluster {
            version: "15".into(),
            cluster: "main".into(),
            config_dir: PathBuf::from("/etc/postgresql/15/main"),
            data_dir: PathBuf::from("/srv/pg/data"),
        }));
        assert_eq!(
            argv(&deb, Ctl::Promote),
            "pg_ctlcluster, 15, main, promote, --, -t, 30"
        );
        assert_eq!(argv(&deb, Ctl::Reload), "pg_ctlcluster, 15, main, reload");
    }

    #[test]
    fn the_fatal_line_and_its_detail_are_kept() {
        let log = "LOG:  starting PostgreSQL 15\nFATAL:  could not bind IPv4 address \"10.0.0.1\": Cannot assign requested address\nHINT:  Is another postmaster already running?\nLOG:  database system is shut down\nLOG:  a\nLOG:  b\nLOG:  c\nLOG:  d\n";
        let d = decisive_lines(log);
        assert!(d[0].contains("could not bind"), "{d:?}");
        assert_eq!(d.len(), 2);
        assert_eq!(decisive_lines("LOG: x\nLOG: y\n"), ["LOG: x", "LOG: y"]);
    }
}
