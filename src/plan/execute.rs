//! The one executor: apply in order, report what changed, and on a failure
//! or an interrupt undo newest first what this run did.

use super::{Action, Cx, Step, Undo, announce};
use crate::error::{Code, Error, Result};
use crate::report::Outcome;
use futures_util::FutureExt;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGINT and SIGTERM, watched from the first step on, so that an
/// interrupt undoes the run instead of killing it between two steps.
/// Long steps wait on [`Interrupt::recv`] beside their work; the executor
/// looks between steps.
pub struct Interrupt {
    int: Signal,
    term: Signal,
    seen: bool,
}

impl Interrupt {
    pub fn new() -> Result<Interrupt> {
        let err = |e| Error::io("cannot watch for interrupts", e);
        Ok(Interrupt {
            int: signal(SignalKind::interrupt()).map_err(err)?,
            term: signal(SignalKind::terminate()).map_err(err)?,
            seen: false,
        })
    }

    /// Resolves when SIGINT or SIGTERM arrives (at once if one already did).
    pub async fn recv(&mut self) {
        if !self.seen {
            tokio::select! {
                _ = self.int.recv() => {}
                _ = self.term.recv() => {}
            }
            self.seen = true;
        }
    }

    /// Whether a signal has arrived, without waiting. The yield lets the
    /// current-thread runtime run its signal driver first: a signal that
    /// came during a synchronous step is seen here, not one step later.
    pub async fn arrived(&mut self) -> bool {
        if !self.seen {
            tokio::task::yield_now().await;
            self.seen = self.recv().now_or_never().is_some();
        }
        self.seen
    }
}

/// The error for a run stopped by the user.
pub fn interrupted(what: &str) -> Error {
    Error::new(Code::Interrupted, format!("interrupted {what}"))
}

/// Apply `steps` in order. Each step that changed something adds its
/// description (with a run-time diff, if it has one) to `outcome`. On a
/// failure every step since the last commit point is undone, newest first,
/// and its changes leave the report; the error says whether the undo
/// succeeded.
pub async fn execute<E>(steps: &[Step<E>], cx: &mut Cx<E>, outcome: &mut Outcome) -> Result<()> {
    for s in steps {
        if let Step::Do(a) = s {
            a.preflight()?;
        }
    }
    let mut undo: Vec<Box<dyn Undo<E>>> = vec![];
    // Changes since the last commit point: they go if the run is undone.
    let mut uncommitted = 0;
    let faults = Faults::read();
    let mut applied = 0;
    let mut result = Ok(());
    for step in steps {
        let action = match step {
            // What was done stands: a signal now is seen at the next step.
            Step::Commit => {
                for u in undo.drain(..) {
                    u.commit(cx);
                }
                uncommitted = 0;
                continue;
            }
            Step::Do(a) => a,
        };
        if cx.interrupt.arrived().await {
            result = Err(interrupted("between two steps"));
            break;
        }
        announce(&cx.printer, &action.label());
        match action.apply(cx).await {
            Ok(done) => {
                undo.extend(done.undo);
                if report_change(action.as_ref(), done.changed, done.diff, outcome) {
                    uncommitted += 1;
                }
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
        applied += 1;
        if let Err(e) = faults.after(applied) {
            result = Err(e);
            break;
        }
    }
    outcome.warnings.append(&mut cx.warnings);
    outcome.details.append(&mut cx.details);
    let Err(err) = result else {
        for u in undo.drain(..) {
            u.commit(cx);
        }
        return Ok(());
    };
    let err = undo_all(undo, uncommitted, err, cx, outcome).await;
    // What the undo had to say (a rollback's note) is reported too.
    outcome.warnings.append(&mut cx.warnings);
    Err(err)
}

/// One rule for what a step reports (a described change, with its run-time diff); true if it did.
fn report_change<E>(
    action: &dyn Action<E>,
    changed: bool,
    diff: Option<String>,
    outcome: &mut Outcome,
) -> bool {
    if !changed {
        return false;
    }
    let Some(mut c) = action.describe() else {
        return false;
    };
    if diff.is_some() {
        c.diff = diff;
    }
    outcome.push(c);
    true
}

/// The test hooks of [`injected`], read once per run so the loop asks one question per step.
struct Faults {
    fail_after: Option<usize>,
    kill_after: Option<usize>,
    pause_after: Option<usize>,
}

impl Faults {
    /// Reads the three variables once, before the first step is applied.
    fn read() -> Faults {
        Faults {
            fail_after: injected("PGREPCTL_FAIL_AFTER_STEP"),
            kill_after: injected("PGREPCTL_KILL_AFTER_STEP"),
            pause_after: injected("PGREPCTL_PAUSE_AFTER_STEP"),
        }
    }

    /// After step `applied`: kill, then pause, then fail, in the order tests rely on.
    fn after(&self, applied: usize) -> Result<()> {
        if self.kill_after == Some(applied) {
            // A SIGKILL, as an operator's or the OOM killer's: no undo, no
            // report, nothing flushed.
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        if self.pause_after == Some(applied) {
            // Stopped until a SIGCONT: the test changes the world between
            // two steps (a server started by someone else mid-run).
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
        }
        if self.fail_after == Some(applied) {
            return Err(Error::new(
                Code::Internal,
                format!("failure injected after step {applied} (PGREPCTL_FAIL_AFTER_STEP)"),
            ));
        }
        Ok(())
    }
}

/// Undo, newest first (a reload last of all, once the files are back),
/// and say in the error whether that worked; the undone changes leave the
/// report.
async fn undo_all<E>(
    undo: Vec<Box<dyn Undo<E>>>,
    uncommitted: usize,
    mut err: Error,
    cx: &mut Cx<E>,
    outcome: &mut Outcome,
) -> Error {
    let mut failed = vec![];
    let (last, first): (Vec<_>, Vec<_>) = undo.into_iter().partition(|u| u.last());
    for u in first.into_iter().rev().chain(last.into_iter().rev()) {
        if let Err(e) = u.undo(cx).await {
            failed.push(e.message);
        }
    }
    if failed.is_empty() {
        outcome.keep_changes(outcome.changes().len() - uncommitted);
        if uncommitted > 0 {
            err.message.push_str(" (every change was undone)");
        }
    } else {
        err.message.push_str(&format!(
            " (undoing the changes also failed: {})",
            failed.join("; ")
        ));
    }
    if outcome.changed() && !err.message.contains("changes made") {
        err.message.push_str(&format!(
            " (changes made: {} before this failure)",
            outcome.changes().len()
        ));
    }
    err
}

/// Tests prove that a failure at any step undoes what came before by
/// making step N fail (`PGREPCTL_FAIL_AFTER_STEP`), and that a rerun
/// converges after pgrepctl is killed right after step N
/// (`PGREPCTL_KILL_AFTER_STEP`), and what a run does when the world
/// changes under it by stopping it after step N until a SIGCONT
/// (`PGREPCTL_PAUSE_AFTER_STEP`); only debug builds (the ones tests run)
/// read these.
fn injected(name: &str) -> Option<usize> {
    if cfg!(debug_assertions) {
        std::env::var(name).ok().and_then(|v| v.parse().ok())
    } else {
        None
    }
}
