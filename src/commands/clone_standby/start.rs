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
    let query = "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver LIMIT 1), 'not running'), \
         coalesce(pg_last_wal_replay_lsn()::text, ''), \
         coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false), pg_is_in_recovery()";
    let mut last: String;
    let mut session: Option<crate::pg::Session> = None;
    loop {
        if session.is_none() {
            session = local_session(settings, facts).await.ok();
        }
        let row = match &session {
            None => Err("cannot connect to the standby yet".to_string()),
            Some(s) => s
                .client
                .query_one(query, &[&target])
                .await
                .map_err(|e| crate::pg::query_error(&s.target, &e).message),
        };
        match row {
            Ok(row) => {
                if !row.get::<_, bool>(3) {
                    return Err(Error::new(
                        Code::NotAStandby,
                        "the new server is not in recovery: it started as a primary",
                    )
                    .hint("its standby.signal or recovery.conf is missing; rerun clone-standby"));
                }
                let status: String = row.get(0);
                let replayed: String = row.get(1);
                if status == "streaming" && row.get::<_, bool>(2) {
                    return Ok(Streaming {
                        status,
                        replay_lsn: replayed,
                        target_lsn: target,
                        seconds: started.elapsed().as_secs_f64(),
                    });
                }
                last = format!(
                    "WAL receiver: {status}, replayed up to {}",
                    Some(replayed.as_str())
                        .filter(|s| !s.is_empty())
                        .unwrap_or("nothing")
                );
            }
            Err(e) => {
                session = None;
                last = e;
            }
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

/// A session on the local standby over its own socket as the server's
/// owner, so peer authentication lets us in as root too.
async fn local_session(settings: &Settings, facts: &Facts) -> Result<crate::pg::Session> {
    cluster(settings, facts)
        .session(Duration::from_secs(5))
        .await
}

/// The last lines of the standby's log, wherever it is.
pub fn log_tail(settings: &Settings, facts: &Facts) -> String {
    cluster(settings, facts).log_tail()
}
