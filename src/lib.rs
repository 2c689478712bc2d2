//! pgrepctl as a library: the binary is a thin `main` over [`run::main`];
//! integration tests reach the pure editors (`conf`) through here to check
//! them against PostgreSQL's own parser.

pub mod child;
pub mod cli;
pub mod colour;
pub mod commands;
pub mod conf;
pub mod docs;
pub mod error;
pub mod fsutil;
pub mod health;
pub mod lock;
pub mod net;
pub mod pg;
pub mod plan;
pub mod report;
pub mod run;
pub mod runner;
pub mod secret;
pub mod tools;
pub mod units;
pub mod writeback;
