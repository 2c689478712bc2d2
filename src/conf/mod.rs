//! TEMPORARY stub until the editors land.
pub mod hba;
pub mod pgconf;
