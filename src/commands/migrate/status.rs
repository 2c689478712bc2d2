//! `migrate status`.

use super::{Sides, StatusArgs, not_yet};
use crate::error::Failure;
use crate::health::Report;
use crate::report::Printer;

pub async fn run(args: StatusArgs, _printer: &Printer) -> Result<Report, Failure> {
    let _sides = Sides::from_args(&args.endpoints)?;
    Err(not_yet("status"))
}
