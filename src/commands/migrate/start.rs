//! `migrate start`.

use super::{Sides, StartArgs, not_yet};
use crate::error::Failure;
use crate::report::Outcome;
use crate::report::Printer;

pub async fn run(args: StartArgs, _printer: &Printer) -> Result<Outcome, Failure> {
    let _sides = Sides::from_args(&args.endpoints)?;
    Err(not_yet("start"))
}
