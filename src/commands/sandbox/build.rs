//! `sandbox up` as an engine plan: the directory, the primary (initdb and
//! start), the real init-master, one real clone-standby per standby, then
//! check and smoke-test. Each step's undo stops what it started, so a
//! failure or Ctrl-C anywhere leaves no server running and no directory.

use super::node;
use super::state::{Node, State};
use super::up::{
    check_args, clone_args, init_master_args, latencies, require_ok, smoke_args, write_secret,
};
use crate::commands::{check, clone_standby, init_master, smoke_test};
use crate::error::{Code, Error, Result};
use crate::plan::{self as engine, Action, Applied, Cx, SyncUndo, change};
use crate::report::{Change, Kind, Printer};
use crate::tools::{BinDir, RunAs};
use futures_util::future::LocalBoxFuture;
use std::path::PathBuf;

/// What the sandbox's steps work with.
pub struct Env {
    pub state: State,
    pub dir: PathBuf,
    pub bin: BinDir,
    pub owner: RunAs,
    pub pwfile: PathBuf,
    /// The printer the inner commands use: their own output stays quiet.
    pub quiet: Printer,
    /// What check and smoke-test found, for the closing summary.
    pub verified: Option<String>,
}

pub fn plan(state: &State) -> engine::Plan<Env> {
    let mut plan = engine::Plan::default();
    plan.push(MakeDir);
    if let Some(p) = state.primary() {
        plan.push(InitPrimary(p.clone()));
    }
    plan.push(InitMaster);
    for s in state.standbys() {
        plan.push(Clone(s.clone()));
    }
    plan.push(engine::wait::WaitFor::new(
        "check and smoke-test the sandbox",
        verify,
    ));
    plan
}

/// The sandbox directory with its state file; undone by removing it all.
struct MakeDir;

impl Action<Env> for MakeDir {
    fn describe(&self) -> Option<Change> {
        None
    }

    fn label(&self) -> String {
        "create the sandbox directory".into()
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        let dir = cx.env.dir.clone();
        let r = std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))
            .and_then(|()| cx.env.state.save(&dir))
            .map(|()| {
                Applied::unchanged().undo(SyncUndo(move |_: &mut Cx<Env>| {
                    std::fs::remove_dir_all(&dir)
                        .map_err(|e| Error::io(format!("cannot remove {}", dir.display()), e))
                }))
            });
        Box::pin(async move { r })
    }
}

/// Stops a node's server, if one runs, when the build is undone.
fn stop_on_undo(node: &Node) -> SyncUndo<impl FnOnce(&mut Cx<Env>) -> Result<()> + 'static> {
    let (name, data) = (node.name.clone(), node.data.clone());
    SyncUndo(move |cx: &mut Cx<Env>| {
        if node::stop(&cx.env.state.bin(), &data)? {
            cx.printer.info(format!("stopped {name}"));
        }
        Ok(())
    })
}

struct InitPrimary(Node);

impl Action<Env> for InitPrimary {
    fn describe(&self) -> Option<Change> {
        Some(Change {
            kind: Kind::Service,
            path: Some(self.0.data.clone()),
            summary: format!("primary: initdb and start on port {}", self.0.port),
            diff: None,
        })
    }

    fn label(&self) -> String {
        format!("initdb the primary in {}", self.0.data.display())
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        let (env, p) = (&cx.env, &self.0);
        let (_, _, _, base) = node::node_paths(&env.dir, &p.name);
        let r = node::make_owned_dir(&base, env.owner)
            .and_then(|()| node::make_owned_dir(&p.socket_dir, env.owner))
            .and_then(|()| node::initdb(&env.bin, &p.data, &p.socket_dir, p.port, env.owner))
            .and_then(|()| {
                node::start(&env.bin, &p.data).inspect_err(|_| {
                    // A start that timed out may still have come up.
                    let _ = node::stop(&env.state.bin(), &p.data);
                })
            })
            .map(|()| Applied::changed().undo(stop_on_undo(p)));
        Box::pin(async move { r })
    }
}

/// The real init-master, with a generated replication password and a
/// slot per standby.
struct InitMaster;

impl Action<Env> for InitMaster {
    fn describe(&self) -> Option<Change> {
        Some(change(
            Kind::Sql,
            "primary: init-master (replication role, pg_hba.conf line, a slot per standby)",
        ))
    }

    fn label(&self) -> String {
        "init-master on the primary".into()
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let env = &cx.env;
            let primary = env
                .state
                .primary()
                .ok_or_else(|| Error::new(Code::Internal, "no primary"))?;
            write_secret(&env.pwfile, &node::random_password()?)?;
            let args = init_master_args(&env.state, primary, &env.pwfile, &env.bin.path);
            let done = init_master::run(args, &env.quiet)
                .await
                .map_err(|f| f.error)?;
            cx.warnings.extend(done.warnings);
            Ok(Applied::changed())
        })
    }
}

/// The real clone-standby for one standby.
struct Clone(Node);

impl Action<Env> for Clone {
    fn describe(&self) -> Option<Change> {
        Some(Change {
            kind: Kind::Service,
            path: Some(self.0.data.clone()),
            summary: format!(
                "{}: cloned, started on port {}, streaming",
                self.0.name, self.0.port
            ),
            diff: None,
        })
    }

    fn label(&self) -> String {
        format!("clone-standby {} (port {})", self.0.name, self.0.port)
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<Env>) -> LocalBoxFuture<'s, Result<Applied<Env>>> {
        Box::pin(async move {
            let env = &cx.env;
            let standby = &self.0;
            let primary = env
                .state
                .primary()
                .ok_or_else(|| Error::new(Code::Internal, "no primary"))?;
            let (_, _, _, base) = node::node_paths(&env.dir, &standby.name);
            node::make_owned_dir(&base, env.owner)?;
            let args = clone_args(primary, standby, &env.pwfile, &env.bin.path);
            let cloned = match clone_standby::run(args, &env.quiet).await {
                Ok(c) => c,
                Err(f) => {
                    // A clone that failed after its start leaves the
                    // standby running: stop it before the directory goes.
                    let _ = node::stop(&env.state.bin(), &standby.data);
                    return Err(f.error);
                }
            };
            cx.warnings.extend(cloned.warnings);
            Ok(Applied::changed().undo(stop_on_undo(standby)))
        })
    }
}

/// check and smoke-test, as a user would run them next.
fn verify(cx: &mut Cx<Env>) -> LocalBoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let report = check::run(check_args(&cx.env.state), &cx.env.quiet)
            .await
            .map_err(|f| f.error)?;
        require_ok(&report, "check")?;
        cx.detail("check", report.status);
        let smoke = smoke_test::run(smoke_args(&cx.env.state), &cx.env.quiet)
            .await
            .map_err(|f| f.error)?;
        require_ok(&smoke, "smoke-test")?;
        cx.detail("smoke_test", smoke.status);
        cx.detail("smoke_test_latency_ms", latencies(&smoke));
        let each = smoke
            .probes
            .iter()
            .flatten()
            .map(|p| match p.latency_ms {
                Some(ms) => format!("{} {ms:.1} ms", p.standby),
                None => p.standby.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        cx.env.verified = Some(format!(
            "check {}; smoke-test {} ({each})",
            report.status.as_str(),
            smoke.status.as_str()
        ));
        Ok(())
    })
}
