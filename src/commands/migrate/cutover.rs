//! `migrate cutover`.

use super::{CutoverArgs, Sides, not_yet};
use crate::error::Failure;
use crate::report::Outcome;
use crate::report::Printer;

pub async fn run(args: CutoverArgs, _printer: &Printer) -> Result<Outcome, Failure> {
    let _sides = Sides::from_args(&args.endpoints)?;
    Err(not_yet("cutover"))
}
