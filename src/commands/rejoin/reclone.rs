//! The way back when a rewind cannot be had or is dearer than a copy: the
//! old data directory is moved aside to `PGDATA.rejoin-TIMESTAMP` (never
//! deleted: after a failed pg_rewind it is the only record of what the node
//! held), and `pgrepctl clone-standby` runs as a child with the same
//! credentials, so the copy gets every check and step a clone gets.

use super::Args;
use super::apply::Env;
use super::inspect::{Facts, Settings};
use crate::error::{Code, Error, Result};
use crate::plan::{self as engine, Action, Applied, Cx, SyncUndo, change, interrupted};
use crate::report::{Change, Kind};
use crate::runner::{LongChild, Next};
use crate::secret::Secret;
use futures_util::future::LocalBoxFuture;
use std::path::PathBuf;

/// clone-standby's command line for this node, and where the old
/// directory goes.
#[derive(Clone)]
pub struct Child {
    pub pgdata: PathBuf,
    pub aside: PathBuf,
    args: Vec<String>,
    password: Option<Secret>,
}

impl Child {
    pub fn new(args: &Args, settings: &Settings, facts: &Facts) -> Child {
        let pgdata = facts.cluster.data_dir.clone();
        let mut a: Vec<String> = vec![
            "clone-standby".into(),
            "--json".into(),
            "--primary".into(),
            args.primary.clone(),
            "-D".into(),
            pgdata.display().to_string(),
            "--wait".into(),
            format!("{}s", args.wait.as_secs().max(1)),
            "--connect-timeout".into(),
            format!("{}s", args.connect_timeout.as_secs().max(1)),
        ];
        if let Some(s) = &args.slot {
            a.extend(["--slot".into(), s.clone()]);
        }
        if let Some(n) = &args.application_name {
            a.extend(["--application-name".into(), n.clone()]);
        }
        // The copy brings the new primary's postgresql.conf: the node keeps
        // its own port (Debian's config in /etc stays as it is anyway).
        if facts.cluster.debian.is_none() {
            if let Some(port) = own_port(&facts.cluster) {
                a.extend(["--port".into(), port]);
            }
        }
        if let Some(b) = &args.bindir.bindir {
            a.extend(["--bindir".into(), b.display().to_string()]);
        }
        Child {
            aside: PathBuf::from(format!(
                "{}.rejoin-{}",
                pgdata.display(),
                crate::units::utc_stamp()
            )),
            pgdata,
            args: a,
            password: settings.password.clone(),
        }
    }

    /// How a DBA would type it.
    pub fn shown(&self) -> String {
        format!("pgrepctl {}", self.args.join(" "))
    }
}

/// Move the old directory aside, then run clone-standby into its place.
pub fn steps(plan: &mut engine::Plan<Env>, child: &Child) {
    plan.push(MoveAside {
        from: child.pgdata.clone(),
        to: child.aside.clone(),
    });
    plan.push(Reclone {
        child: child.clone(),
    });
    plan.commit();
}

struct MoveAside {
    from: PathBuf,
    to: PathBuf,
}

impl Action<Env> for MoveAside {
    fn describe(&self) -> Option<Change> {
        Some(Change {
            kind: Kind::File,
            path: Some(self.to.clone()),
            summary: format!(
                "the old data directory {} moved aside here (kept, never deleted)",
                self.from.display()
            ),
            diff: None,
        })
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        let r = std::fs::rename(&self.from, &self.to)
            .map_err(|e| Error::io(format!("cannot move {} aside", self.from.display()), e));
        cx.detail("old_data_directory", &self.to);
        let (from, to) = (self.from.clone(), self.to.clone());
        Box::pin(async move {
            r?;
            // Back into place only while nothing else is there.
            Ok(Applied::changed().undo(SyncUndo(move |_: &mut Cx<Env>| {
                if from.exists() {
                    return Ok(());
                }
                std::fs::rename(&to, &from)
                    .map_err(|e| Error::io(format!("cannot move {} back", to.display()), e))
            })))
        })
    }
}

struct Reclone {
    child: Child,
}

impl Action<Env> for Reclone {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Service,
            format!("copied anew: {}", self.child.shown()),
        ))
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let answer = run_child(&self.child, cx).await?;
            cx.detail("reclone", answer);
            cx.warnings.push(format!(
                "the old data directory is kept at {}: remove it once the new standby is verified",
                self.child.aside.display()
            ));
            Ok(Applied::changed())
        })
    }
}

/// Run clone-standby and return its JSON answer; a failure carries its
/// error.
async fn run_child(child: &Child, cx: &mut Cx<Env>) -> Result<serde_json::Value> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("cannot find pgrepctl's own executable", e))?;
    // The test hooks are for this run's steps, not the child's.
    let mut expr = duct::cmd(exe, &child.args)
        .env_remove("PGREPCTL_FAIL_AFTER_STEP")
        .env_remove("PGREPCTL_KILL_AFTER_STEP")
        .env_remove("PGREPCTL_PAUSE_AFTER_STEP")
        .env(crate::lock::HELD_BY_PARENT, crate::lock::key(&child.pgdata));
    if let Some(p) = &child.password {
        expr = expr.env("PGREPCTL_REPLICATION_PASSWORD", p.expose());
    }
    cx.printer.info(format!("re-cloning: {}", child.shown()));
    let mut proc = LongChild::spawn("pgrepctl clone-standby", expr)?;
    let mut answer = None;
    let ended = loop {
        match proc.next(&mut cx.interrupt).await {
            Next::Line(l) if l.trim_start().starts_with('{') => {
                answer = serde_json::from_str::<serde_json::Value>(&l).ok();
            }
            Next::Line(l) => cx.printer.debug(format!("clone-standby: {l}")),
            other => break other,
        }
    };
    match (ended, answer) {
        (Next::Done, Some(a)) => Ok(a),
        (Next::Interrupted, _) => Err(interrupted(&format!(
            "during the re-clone; the old data directory is at {}",
            child.aside.display()
        ))),
        (_, a) => {
            let why = a
                .as_ref()
                .and_then(|a| a["error"]["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| "clone-standby failed without an answer".into());
            Err(Error::new(Code::CopyFailed, format!("the re-clone failed: {why}")).hint(format!(
                "the old data directory is at {} (moved back when nothing took its place); fix the cause and rerun",
                child.aside.display()
            )))
        }
    }
}

/// The node's port as its configuration sets it (postgresql.auto.conf
/// over postgresql.conf), if it sets one.
fn own_port(cluster: &crate::pg::cluster::LocalCluster) -> Option<String> {
    let from = |path: std::path::PathBuf| {
        let text = std::fs::read_to_string(path).ok()?;
        let conf = crate::conf::pgconf::parse(&text).ok()?;
        conf.last_active("port")
            .and_then(|l| conf.setting_at(l))
            .map(|(_, v)| v.trim_matches('\'').to_string())
    };
    from(cluster.data_dir.join("postgresql.auto.conf"))
        .or_else(|| from(cluster.config_dir.join("postgresql.conf")))
        .filter(|p| p.parse::<u16>().is_ok())
}
