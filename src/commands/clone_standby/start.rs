//! Starting the standby and proving it works: streaming from the primary,
//! and replayed at least up to the primary's WAL position as of the start.
//! When it does not get there, the error carries the reason from the
//! standby's own log.

use super::preflight::Facts;
use super::settings::Settings;
use crate::error::{Code, Error, Result};
use crate::pg::replication::format_lsn;
use crate::plan::{Interrupt, interrupted};
use crate::report::Printer;
use crate::tools::ServerCtl;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The log pg_ctl writes the server's output to, when not on Debian.
pub const SERVER_LOG: &str = "pgrepctl-server.log";

fn ctl<'a>(facts: &'a Facts, log: &'a Path) -> ServerCtl<'a> {
    match &facts.debian {
        Some((version, cluster, _)) => ServerCtl::Debian { version, cluster },
        None => ServerCtl::PgCtl {
            bindir: &facts.bindir.path,
            run_as: facts.run_as,
            log: Some(log),
        },
    }
}

/// Stop the standby's server if one runs (before its copy is undone).
pub fn stop(settings: &Settings, facts: &Facts) -> Result<()> {
    let dir = &settings.pgdata;
    if crate::pg::pidfile::running(dir).is_none() {
        return Ok(());
    }
    let log = dir.join(SERVER_LOG);
    let (expr, shown) = ctl(facts, &log).command("stop", dir, settings.wait.as_secs().max(5));
    crate::tools::run(expr.stdin_null(), &shown).map(|_| ())
}

/// The command [`start`] runs, as reports show it.
pub fn shown(settings: &Settings, facts: &Facts, restart: bool) -> String {
    let dir = &settings.pgdata;
    let verb = if restart { "restart" } else { "start" };
    let log = dir.join(SERVER_LOG);
    ctl(facts, &log)
        .command(verb, dir, settings.wait.as_secs().max(5))
        .1
}

pub fn start(settings: &Settings, facts: &Facts, restart: bool) -> Result<String> {
    let dir = &settings.pgdata;
    let verb = if restart { "restart" } else { "start" };
    let log = dir.join(SERVER_LOG);
    let (expr, shown) = ctl(facts, &log).command(verb, dir, settings.wait.as_secs().max(5));
    crate::tools::run(expr.stdin_null(), &shown).map_err(|e| {
        Error::new(
            Code::StartFailed,
            format!("{}; server log: {}", e.message, log_tail(settings, facts)),
        )
        .hint("the copy and configuration are in place; fix the cause shown and start the server")
    })?;
    Ok(shown)
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
    let mut candidates: Vec<PathBuf> = vec![settings.pgdata.join(SERVER_LOG)];
    if let Some((ver, cluster, _)) = &facts.debian {
        candidates.push(PathBuf::from(format!(
            "/var/log/postgresql/postgresql-{ver}-{cluster}.log"
        )));
    }
    for sub in ["log", "pg_log"] {
        for e in std::fs::read_dir(settings.pgdata.join(sub))
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
        Some(p) => tail_of(&p),
        None => "(no log found)".into(),
    }
}

fn tail_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    format!("{}: {}", path.display(), decisive_lines(&text).join(" | "))
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_fatal_line_and_its_detail_are_kept() {
        let log = "LOG:  starting PostgreSQL 15\nFATAL:  could not bind IPv4 address \"10.0.0.1\": Cannot assign requested address\nHINT:  Is another postmaster already running?\nLOG:  database system is shut down\nLOG:  a\nLOG:  b\nLOG:  c\nLOG:  d\n";
        let d = super::decisive_lines(log);
        assert!(d[0].contains("could not bind"), "{d:?}");
        assert_eq!(d.len(), 2);
        assert_eq!(
            super::decisive_lines("LOG: x\nLOG: y\n"),
            ["LOG: x", "LOG: y"]
        );
    }
}
