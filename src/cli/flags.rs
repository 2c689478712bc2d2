//! Flag groups more than one command takes, declared once so that each
//! reads, validates and documents the same everywhere. A command flattens
//! the group into its `Args` (`#[command(flatten)]`) and calls the group's
//! one validation from its settings.

use crate::error::{Code, Error, Result};
use crate::health::render::Format;
use crate::secret::Secret;
use std::path::PathBuf;
use std::time::Duration;

/// `--password-file`: the replication password, never on the command line.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PasswordFlag {
    /// File whose first line is the replication password (mode 0600) [default: PGREPCTL_REPLICATION_PASSWORD, else none]
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

impl PasswordFlag {
    /// The file's password, else the environment's; a file others may
    /// read is refused unless `allow_insecure`.
    pub fn load(&self, allow_insecure: bool) -> Result<Option<Secret>> {
        crate::commands::password::load(self.password_file.as_deref(), allow_insecure)
    }
}

/// `--bindir`: which PostgreSQL programs to run.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BindirFlag {
    /// Directory of the PostgreSQL programs (pg_ctl, postgres, pg_basebackup) [default: those of the server's major version: pg_config, /usr/lib/postgresql/MAJOR/bin, PATH]
    #[arg(long, value_name = "DIR")]
    pub bindir: Option<PathBuf>,
}

impl BindirFlag {
    /// An explicit directory must hold pg_ctl: used or refused, never
    /// silently passed over for binaries found elsewhere.
    pub fn checked(&self) -> Result<Option<PathBuf>> {
        self.bindir
            .as_deref()
            .map(crate::tools::check_bindir)
            .transpose()
    }
}

/// `--dry-run`: stop after the plan.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct DryRunFlag {
    /// Check everything and print the changes a real run would make, with diffs; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `--format` of the monitoring commands (check, smoke-test, sandbox status).
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct FormatFlag {
    /// Output format [default: text, or json with --json]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
}

impl FormatFlag {
    /// The format to render in, with the global `--json`: they agree or
    /// the run is refused.
    pub fn choose(&self, json: bool) -> Result<Format> {
        match (json, self.format) {
            (true, Some(f)) if f != Format::Json => Err(Error::new(
                Code::ConflictingFlags,
                "--json conflicts with --format other than json",
            )
            .hint("use either --json or --format")),
            (true, _) | (false, Some(Format::Json)) => Ok(Format::Json),
            (false, Some(f)) => Ok(f),
            (false, None) => Ok(Format::Text),
        }
    }
}

/// `--timeout` of the monitoring commands: one bound per node.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct TimeoutFlag {
    /// How long each node may take to connect and to answer (and a standby to replay the probe), e.g. 10, 10s, 500ms; a node that does not answer in time is CRITICAL
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_TIMEOUT, value_parser = duration)]
    pub timeout: Duration,
}

const DEFAULT_TIMEOUT: &str = "10s";

impl Default for TimeoutFlag {
    /// The flag's default, for commands that run check or smoke-test
    /// themselves (sandbox).
    fn default() -> TimeoutFlag {
        TimeoutFlag {
            timeout: duration(DEFAULT_TIMEOUT).expect("a valid duration"),
        }
    }
}

/// The value parser of every duration flag: above zero, in seconds when
/// bare (`10`), or with a unit (`10s`, `500ms`, `2min`, `1h`).
pub fn duration(s: &str) -> std::result::Result<Duration, String> {
    crate::units::parse_timeout(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_json_agree_or_conflict() {
        let f = |format| FormatFlag { format };
        assert_eq!(f(None).choose(false).unwrap(), Format::Text);
        assert_eq!(f(None).choose(true).unwrap(), Format::Json);
        assert_eq!(f(Some(Format::Json)).choose(false).unwrap(), Format::Json);
        assert_eq!(
            f(Some(Format::Nagios)).choose(false).unwrap(),
            Format::Nagios
        );
        assert_eq!(
            f(Some(Format::Nagios)).choose(true).unwrap_err().code,
            Code::ConflictingFlags
        );
    }

    #[test]
    fn explicit_bindir_must_hold_pg_ctl() {
        let none = BindirFlag { bindir: None };
        assert_eq!(none.checked().unwrap(), None);
        let bad = BindirFlag {
            bindir: Some("/nonexistent".into()),
        };
        let e = bad.checked().unwrap_err();
        assert_eq!(e.code, Code::InvalidValue);
        assert!(e.message.contains("/nonexistent"), "{}", e.message);
    }
}
