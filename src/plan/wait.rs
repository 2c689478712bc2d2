//! Steps that change nothing but must hold before the run goes on: a
//! check (PostgreSQL accepts the edited files) or a wait for a condition
//! (a standby streaming; the function bounds its wait and watches
//! `cx.interrupt`).

use super::{Action, Applied, Cx};
use crate::error::Result;
use crate::report::Change;
use futures_util::future::LocalBoxFuture;

/// A named condition the run must reach; `run` checks (or waits for) it
/// and fails with the reason when it does not hold.
pub struct WaitFor<E> {
    pub label: String,
    pub run: for<'s> fn(&'s mut Cx<E>) -> LocalBoxFuture<'s, Result<()>>,
}

impl<E> WaitFor<E> {
    pub fn new(
        label: impl Into<String>,
        run: for<'s> fn(&'s mut Cx<E>) -> LocalBoxFuture<'s, Result<()>>,
    ) -> Self {
        WaitFor {
            label: label.into(),
            run,
        }
    }
}

impl<E: 'static> Action<E> for WaitFor<E> {
    fn describe(&self) -> Option<Change> {
        None
    }

    fn label(&self) -> String {
        self.label.clone()
    }

    fn apply<'s>(&'s self, cx: &'s mut Cx<E>) -> LocalBoxFuture<'s, Result<Applied<E>>> {
        Box::pin(async move {
            (self.run)(cx).await?;
            Ok(Applied::unchanged())
        })
    }
}
