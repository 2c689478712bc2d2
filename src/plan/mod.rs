//! The engine every mutating command runs on: a [`Plan`] is a list of
//! typed steps, each of which says once, in [`Action::describe`], what it
//! changes. `--dry-run` reports exactly those descriptions; a real run
//! applies the steps in order through [`execute`], reports the same
//! descriptions for the steps that changed something, and undoes what it
//! did, newest first, when a later step fails or the run is interrupted.
//! `changed` follows from the steps applied, never from a flag set by hand.
//!
//! The primitives every command shares live here (file edits in
//! [`file`], SQL and slots in [`sql`], waits in [`wait`]); a command adds
//! its own actions (a copy with pg_basebackup, a directory swap) by
//! implementing [`Action`] for its environment type.

mod execute;
pub mod file;
pub mod sql;
pub mod wait;

pub use execute::{Interrupt, execute, interrupted};

use crate::error::Result;
use crate::report::{Change, Outcome, Printer};
use futures_util::future::LocalBoxFuture;

/// What a command's actions may use while they run: the command's own
/// settings and facts (`env`), an SQL session when the command has one,
/// the printer, and what the run learns on the way (warnings, details).
pub struct Cx<E> {
    pub env: E,
    pub printer: Printer,
    pub session: Option<crate::pg::Session>,
    pub interrupt: Interrupt,
    pub warnings: Vec<String>,
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl<E> Cx<E> {
    pub fn new(env: E, printer: Printer, session: Option<crate::pg::Session>) -> Result<Cx<E>> {
        Ok(Cx {
            env,
            printer,
            session,
            interrupt: Interrupt::new()?,
            warnings: vec![],
            details: Default::default(),
        })
    }

    /// The SQL session; a step that needs one is only planned with one.
    pub fn session(&self) -> Result<&crate::pg::Session> {
        self.session.as_ref().ok_or_else(|| {
            crate::error::Error::new(
                crate::error::Code::Internal,
                "a step needs an SQL session the command did not open",
            )
        })
    }

    pub fn detail(&mut self, key: &str, value: impl serde::Serialize) {
        self.details.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or_default(),
        );
    }
}

/// One step of a plan.
pub trait Action<E> {
    /// The change this step makes, as `--dry-run` and the real run both
    /// report it; `None` for a step that changes nothing (a check, a
    /// wait). A diff known only at run time comes with [`Applied`].
    fn describe(&self) -> Option<Change>;

    /// What `-v` shows while the step runs (by default its summary).
    fn label(&self) -> String {
        self.describe().map(|c| c.summary).unwrap_or_default()
    }

    /// What must hold before the first step of the run, checked in a dry
    /// run too so that it fails exactly where the real run would (a file
    /// that is not writable).
    fn preflight(&self) -> Result<()> {
        Ok(())
    }

    /// Carry the step out and verify it; say how to undo it.
    fn apply<'s>(&'s self, cx: &'s mut Cx<E>) -> LocalBoxFuture<'s, Result<Applied<E>>>;
}

/// How to take a step back. `commit` runs instead when the run has passed
/// the point of no return (the undo's resources can go: an old data
/// directory kept aside).
pub trait Undo<E> {
    fn undo<'s>(self: Box<Self>, cx: &'s mut Cx<E>) -> LocalBoxFuture<'s, Result<()>>;
    fn commit(self: Box<Self>, _cx: &mut Cx<E>) {}
    /// Runs after every other undo (a reload, once the files are back).
    fn last(&self) -> bool {
        false
    }
}

/// An undo that needs no server round trip.
pub struct SyncUndo<F>(pub F);

impl<E, F: FnOnce(&mut Cx<E>) -> Result<()> + 'static> Undo<E> for SyncUndo<F> {
    fn undo<'s>(self: Box<Self>, cx: &'s mut Cx<E>) -> LocalBoxFuture<'s, Result<()>> {
        let r = (self.0)(cx);
        Box::pin(async move { r })
    }
}

/// The result of one applied step.
pub struct Applied<E> {
    /// False when the step found its goal already reached (a slot that
    /// exists): nothing is reported and nothing undone.
    pub changed: bool,
    /// A diff that could be known only now (files written after a copy).
    pub diff: Option<String>,
    pub undo: Vec<Box<dyn Undo<E>>>,
}

impl<E> Applied<E> {
    pub fn changed() -> Self {
        Applied {
            changed: true,
            diff: None,
            undo: vec![],
        }
    }

    pub fn unchanged() -> Self {
        Applied {
            changed: false,
            diff: None,
            undo: vec![],
        }
    }

    pub fn undo(mut self, u: impl Undo<E> + 'static) -> Self {
        self.undo.push(Box::new(u));
        self
    }

    pub fn diff(mut self, d: Option<String>) -> Self {
        self.diff = d.filter(|d| !d.is_empty());
        self
    }
}

/// A step, or the point after which a failure no longer undoes what came
/// before (a started standby that is slow to catch up stays in place).
pub enum Step<E> {
    Do(Box<dyn Action<E>>),
    Commit,
}

/// The steps, in the order they run, and what the plan knows besides.
pub struct Plan<E> {
    pub steps: Vec<Step<E>>,
    pub warnings: Vec<String>,
    /// A restart-only setting the running server will not have yet.
    pub restart_required: bool,
}

impl<E> Default for Plan<E> {
    fn default() -> Self {
        Plan {
            steps: vec![],
            warnings: vec![],
            restart_required: false,
        }
    }
}

impl<E> Plan<E> {
    pub fn push(&mut self, a: impl Action<E> + 'static) {
        self.steps.push(Step::Do(Box::new(a)));
    }

    pub fn commit(&mut self) {
        self.steps.push(Step::Commit);
    }

    pub fn actions(&self) -> impl Iterator<Item = &dyn Action<E>> {
        self.steps.iter().filter_map(|s| match s {
            Step::Do(a) => Some(a.as_ref()),
            Step::Commit => None,
        })
    }

    /// Every step's [`Action::preflight`], before anything changes.
    pub fn preflight(&self) -> Result<()> {
        self.actions().try_for_each(|a| a.preflight())
    }

    /// The changes, in order: what `--dry-run` reports.
    pub fn changes(&self) -> Vec<Change> {
        changes(&self.steps)
    }

    /// `--dry-run`: the plan's changes and warnings into the outcome.
    pub fn preview_into(&self, o: &mut Outcome) {
        for c in self.changes() {
            o.push(c);
        }
        o.warnings.extend(self.warnings.iter().cloned());
        o.restart_required = self.restart_required;
    }
}

/// What `steps` change, in order: each step's [`Action::describe`].
pub fn changes<E>(steps: &[Step<E>]) -> Vec<Change> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Do(a) => a.describe(),
            Step::Commit => None,
        })
        .collect()
}

/// A change with no path or diff: SQL or a service action.
pub fn change(kind: crate::report::Kind, summary: impl Into<String>) -> Change {
    Change {
        kind,
        path: None,
        summary: summary.into(),
        diff: None,
    }
}

/// Print what a step is about to do (`-v`).
fn announce(printer: &Printer, label: &str) {
    if !label.is_empty() {
        printer.step(format!("applying: {label}"));
    }
}
