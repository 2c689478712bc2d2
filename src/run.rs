//! Dispatch: from parsed arguments to a command, and from its result to
//! output and the exit code. The one place exit codes are decided.

use crate::cli::flags::FormatFlag;
use crate::cli::{Cli, Command};
use crate::error::{Code, Error, Failure};
use crate::health::Status;
use crate::health::render::{Format, render};
use crate::report::Printer;
use clap::Parser;
use std::process::ExitCode;

/// Exit codes of mutating commands (see the man page, EXIT STATUS).
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

pub fn main() -> ExitCode {
    // Before any thread or child exists: no child inherits the password.
    crate::commands::password::take_env();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    let health_format = match &cli.command {
        Command::Check(a) => Some(a.format),
        Command::SmokeTest(a) => Some(a.format),
        Command::Sandbox(a) => match &a.action {
            crate::commands::sandbox::Action::Status(s) => Some(s.format),
            _ => None,
        },
        _ => None,
    };
    let name = cli.command.name();
    if let Some(format) = health_format {
        return health_main(cli, name, format);
    }
    let printer = Printer {
        json: cli.global.json,
        quiet: cli.global.quiet,
        verbose: cli.global.verbose,
        progress: !cli.global.no_progress && !cli.global.json,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            printer.failure(name, &e, &[], false);
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::InitMaster(args) => crate::commands::init_master::run(*args, &printer).await,
            Command::CloneStandby(args) => {
                crate::commands::clone_standby::run(*args, &printer).await
            }
            Command::Sandbox(args) => crate::commands::sandbox::run(args, &printer).await,
            Command::GenerateDocs { dir } => generate_docs(&dir),
            Command::Check(_) | Command::SmokeTest(_) => unreachable!("handled by health_main"),
        }
    });
    match result {
        Ok(outcome) => {
            printer.outcome(&outcome);
            ExitCode::from(EXIT_OK)
        }
        Err(failure) => {
            printer.failure(name, &failure.error, &failure.warnings, failure.changed);
            ExitCode::from(if failure.error.code.is_usage() {
                EXIT_USAGE
            } else {
                EXIT_FAILED
            })
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(Code::Internal, format!("cannot start runtime: {e}")))
}

/// `check` and `smoke-test`: a health report in the chosen format, and the
/// monitoring exit status (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN). A
/// failure before any node was inspected (bad conninfo, conflicting
/// flags) is UNKNOWN, shown in the chosen format too.
fn health_main(cli: Cli, name: &'static str, format: FormatFlag) -> ExitCode {
    let json = cli.global.json;
    let chosen = format.choose(json);
    // Monitoring formats keep stderr quiet too (unless -v): a plugin's
    // output is its status line.
    let machine = chosen
        .as_ref()
        .is_ok_and(|f| matches!(f, Format::Nagios | Format::Prometheus));
    let printer = Printer {
        json: json || chosen.as_ref().is_ok_and(|f| *f == Format::Json),
        quiet: cli.global.quiet || machine,
        verbose: cli.global.verbose,
        progress: false,
    };
    let unknown = |failure: Failure, format: Format| {
        printer.failure(name, &failure.error, &failure.warnings, false);
        match format {
            Format::Nagios => crate::report::write_stdout(&format!(
                "PGREPCTL UNKNOWN - {}\n",
                failure.error.message.replace(['|', '\n'], " ")
            )),
            Format::Prometheus => crate::report::write_stdout(&format!(
                "# HELP pgrepctl_check_status Overall status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n# TYPE pgrepctl_check_status gauge\npgrepctl_check_status{{command=\"{name}\"}} 3\n"
            )),
            Format::Text | Format::Json => {}
        }
        ExitCode::from(Status::Unknown.exit_code())
    };
    let format = match chosen {
        Ok(f) => f,
        Err(e) => return unknown(e.into(), Format::Text),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return unknown(e.into(), format),
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Check(args) => crate::commands::check::run(args, &printer).await,
            Command::SmokeTest(args) => crate::commands::smoke_test::run(args, &printer).await,
            Command::Sandbox(crate::commands::sandbox::Args {
                action: crate::commands::sandbox::Action::Status(args),
            }) => crate::commands::sandbox::status(args, &printer).await,
            _ => unreachable!("only check, smoke-test and sandbox status"),
        }
    });
    match result {
        Ok(report) => {
            let text = render(&report, format);
            let text = if format == Format::Text && crate::colour::stdout() {
                crate::colour::status_words(&text)
            } else {
                text
            };
            crate::report::write_stdout(&text);
            ExitCode::from(report.status.exit_code())
        }
        Err(failure) => unknown(failure, format),
    }
}

/// clap's own errors; with `--json` anywhere on the line, also the JSON
/// failure object, so Ansible sees a usage mistake as pgrepctl's message.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::from(EXIT_OK);
    }
    let args: Vec<String> = std::env::args().collect();
    // The monitoring commands (check, smoke-test, sandbox status) report a
    // usage error as UNKNOWN (3), like any monitoring plugin.
    let path = subcommand_path(&args);
    let is_check = matches!(
        path.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
        ["check"] | ["smoke-test"] | ["sandbox", "status"]
    );
    if args.iter().any(|a| a == "--json") {
        let msg = e.kind().to_string();
        let detail = e.to_string();
        let first = detail
            .lines()
            .next()
            .unwrap_or(&msg)
            .trim_start_matches("error: ")
            .to_string();
        let code = if e.kind() == ErrorKind::ArgumentConflict {
            Code::ConflictingFlags
        } else {
            Code::Usage
        };
        let err = Error::new(code, first).hint(help_hint(&args));
        let cmd = args.get(1).cloned().unwrap_or_default();
        Printer {
            json: true,
            ..Default::default()
        }
        .failure(&cmd, &err, &[], false);
    } else {
        let _ = e.print();
        eprintln!("HINT: {}", help_hint(&args));
    }
    ExitCode::from(if is_check { 3 } else { EXIT_USAGE })
}

/// "see pgrepctl <subcommand…> --help", for the deepest subcommand named
/// on the command line, so a usage mistake points at the flags it concerns.
fn help_hint(args: &[String]) -> String {
    let mut path = vec!["pgrepctl".to_string()];
    path.extend(subcommand_path(args));
    format!("see {} --help", path.join(" "))
}

/// The subcommands named on the command line, outermost first; words that
/// name no subcommand at that level (flag values) are passed over.
fn subcommand_path(args: &[String]) -> Vec<String> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut path = vec![];
    for a in args.iter().skip(1).filter(|a| !a.starts_with('-')) {
        if let Some(sub) = cmd.find_subcommand(a).cloned() {
            path.push(sub.get_name().to_string());
            cmd = sub;
        }
    }
    path
}

fn generate_docs(dir: &std::path::Path) -> Result<crate::report::Outcome, Failure> {
    let files = crate::docs::write_all(dir).map_err(|e| Error::io("cannot write the docs", e))?;
    let mut o = crate::report::Outcome::new("generate-docs", false);
    for f in files {
        o.push(crate::report::Change {
            kind: crate::report::Kind::File,
            path: Some(f),
            summary: "written".into(),
            diff: None,
        });
    }
    Ok(o)
}
