//! Starting the standby and proving it works: streaming from the primary,
//! and replayed at least up to the primary's WAL position as of the start.
//! When it does not get there, the error carries the reason from the
//! standby's own log.

use super::preflight::Facts;
use super::settings::Settings;
use crate::error::{Code, Error, Result};
use crate::pg::cluster::{Ctl, LocalCluster};
use crate::pg::debian::DebianCluster;
use crate::pg::replication::format_lsn;
use crate::plan::{Interrupt, interrupted};
use crate::report::Printer;
use std::time::{Duration, Instant};

pub use crate::pg::cluster::SERVER_LOG;

/// The standby being made, as a [`LocalCluster`]: Debian's when preflight
/// found a Debian cluster whose data directory is the target.
pub fn cluster(settings: &Settings, facts: &Facts) -> LocalCluster {
    let debian = facts
        .debian
        .as_ref()
        .map(|(version, cluster, config_dir)| DebianCluster {
            version: version.clone(),
            cluster: cluster.clone(),
            config_dir: config_dir.clone(),
            data_dir: settings.pgdata.clone(),
        });
    LocalCluster::with_debian(&settings.pgdata, facts.bindir.clone(), facts.run_as, debian)
}

/// How long a start or stop may take: `--wait`, at least 5 s.
fn ctl_timeout(settings: &Settings) -> Duration {
    settings.wait.max(Duration::from_secs(5))
}

/// Stop the standby's server if one runs (before its copy is undone).
pub fn stop(settings: &Settings, facts: &Facts) -> Result<()> {
    cluster(settings, facts)
        .stop_if_running(ctl_timeout(settings))
        .map(|_| ())
}

/// The command [`start`] runs, as reports show it.
pub fn shown(settings: &Settings, facts: &Facts, restart: bool) -> String {
    let action = if restart { Ctl::Restart } else { Ctl::Start };
    cluster(settings, facts)
        .ctl_command(action, ctl_timeout(settings))
        .1
}

pub fn start(settings: &Settings, facts: &Facts, restart: bool) -> Result<String> {
    let action = if restart { Ctl::Restart } else { Ctl::Start };
    cluster(settings, facts)
        .ctl(action, ctl_timeout(settings))
        .map_err(|e| {
            Error::new(Code::StartFailed, e.message).hint(
                "the copy and configuration are in place; fix the cause shown and start the server",
            )
        })
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Streaming {
    pub status: String,
    pub replay_lsn: String,
    pub target_lsn: String,
    pub seconds: f64,
}

/// Poll the standby (as its owner, over its own socket) until its WAL
/// receiver streams and replay has passed `target_lsn`.
pub async fn wait_streaming(
    settings: &Settings,
    facts: &Facts,
    target_lsn: u64,
    printer: &Printer,
    signals: &mut Interrupt,
) -> Result<Streaming> {
    let started = Instant::now();
    let target = format_lsn(target_lsn);
    printer.info(format!(
        "waiting for the standby to stream and replay {target}"
    ));
    let query = format!(
        "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver LIMIT 1), 'not running'), \
         coalesce(pg_last_wal_replay_lsn()::text, ''), \
         coalesce(pg_last_wal_replay_lsn() >= '{target}'::pg_lsn, false), pg_is_in_recovery()"
    );
    let mut last: String;
    loop {
        match local_sql(settings, facts, &query) {
            Ok(row) => {
                let f: Vec<&str> = row.trim().split('|').collect();
                if f.get(3) == Some(&"f") {
                    return Err(Error::new(
                        Code::NotAStandby,
                        "the new server is not in recovery: it started as a primary",
                    )
                    .hint("its standby.signal or recovery.conf is missing; rerun clone-standby"));
                }
                let status = f.first().copied().unwrap_or("").to_string();
                if status == "streaming" && f.get(2) == Some(&"t") {
                    return Ok(Streaming {
                        status,
                        replay_lsn: f.get(1).copied().unwrap_or("").to_string(),
                        target_lsn: target,
                        seconds: started.elapsed().as_secs_f64(),
                    });
                }
                last = format!(
                    "WAL receiver: {status}, replayed up to {}",
                    f.get(1)
                        .copied()
                        .filter(|s| !s.is_empty())
                        .unwrap_or("nothing")
                );
            }
            Err(e) => last = e,
        }
        if started.elapsed() >= settings.wait {
            return Err(Error::new(
                Code::StandbyNotStreaming,
                format!(
                    "the standby did not stream and replay {target} within {}s ({last}); server log: {}",
                    settings.wait.as_secs(),
                    log_tail(settings, facts)
                ),
            )
            .hint("the standby is running; check the primary's pg_hba.conf, the password and the network, or wait longer with --wait"));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = signals.recv() => return Err(interrupted("while waiting for the standby to stream; it is in place and running")),
        }
    }
}

/// One query on the local standby through psql, run as the server's owner
/// so peer authentication on the socket lets us in as root too.
fn local_sql(
    settings: &Settings,
    facts: &Facts,
    query: &str,
) -> std::result::Result<String, String> {
    let pf = crate::pg::pidfile::running(&settings.pgdata).ok_or("the server is not running")?;
    let host = if pf.socket_dir.is_empty() {
        "127.0.0.1".to_string()
    } else {
        pf.socket_dir.clone()
    };
    let mut args: Vec<String> = vec![
        "-X".into(),
        "-A".into(),
        "-t".into(),
        "-q".into(),
        "-h".into(),
        host,
        "-p".into(),
        pf.port.to_string(),
    ];
    if let Some(u) = facts.run_as.user_name() {
        args.extend(["-U".into(), u]);
    }
    args.extend(["-d".into(), "postgres".into(), "-c".into(), query.into()]);
    let psql = facts.bindir.tool("psql");
    let out = facts
        .run_as
        .cmd(psql, args)
        .env("PGCONNECT_TIMEOUT", "5")
        .env("PGAPPNAME", "pgrepctl")
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(crate::tools::framed(&out.stderr, &out.stdout))
    }
}

/// The last lines of the standby's log, wherever it is.
pub fn log_tail(settings: &Settings, facts: &Facts) -> String {
    cluster(settings, facts).log_tail()
}
