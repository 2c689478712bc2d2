//! The command line: global flags and the subcommand list. Each
//! subcommand's own flags live beside its code in `commands/`.

use crate::commands;
use clap::{Parser, Subcommand};

/// Set up, check and smoke-test PostgreSQL physical streaming replication.
#[derive(Parser, Debug)]
#[command(name = "pgrepctl", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Global {
    /// Print one JSON object on stdout and nothing else there
    #[arg(long, global = true)]
    pub json: bool,
    /// More detail on stderr (the SQL run, each step)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only warnings and errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// No progress bars; plain periodic lines instead
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Make a primary ready for streaming standbys (role, settings, pg_hba.conf, slots)
    InitMaster(Box<commands::init_master::Args>),
    /// Check replication health: senders, receivers, lag, slots, settings (Nagios exit codes)
    Check(commands::check::Args),
    /// Prove replication end to end: write on the primary, read on each standby
    SmokeTest(commands::smoke_test::Args),
    /// A local primary and standbys, replicated and checked, in one command
    Sandbox(commands::sandbox::Args),
    /// Write the man pages and shell completions under DIR (for packagers)
    #[command(hide = true)]
    GenerateDocs {
        /// Project root to write man/ and completions/ into
        #[arg(default_value = ".")]
        dir: std::path::PathBuf,
    },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::InitMaster(_) => "init-master",
            Command::Check(_) => "check",
            Command::SmokeTest(_) => "smoke-test",
            Command::Sandbox(_) => "sandbox",
            Command::GenerateDocs { .. } => "generate-docs",
        }
    }
}
