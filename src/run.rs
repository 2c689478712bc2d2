//! Dispatch: from parsed arguments to a command, and from its result to
//! output and the exit code. The one place exit codes are decided.

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
    let mut cli = cli;
    // conninfo renders its own formats; the global --json selects one.
    if let Command::Conninfo(a) = &mut cli.command {
        a.json = cli.global.json;
    }
    let name = cli.command.name();
    let mode = Mode::of(&cli);
    let printer = mode.printer(&cli);
    let result = match (&mode, runtime()) {
        (Mode::Health(Err(e)), _) => Err(Failure::from(e.clone())),
        (_, Err(e)) => Err(Failure::from(e)),
        (_, Ok(rt)) => rt.block_on(dispatch(cli.command, &printer)),
    };
    emit(name, &mode, &printer, result)
}

/// What a command produces: changes (mutating commands), a health
/// report (check, smoke-test, sandbox status), or text a read-only
/// command rendered itself (conninfo's connection strings).
enum Output {
    Changes(crate::report::Outcome),
    Health(crate::health::Report),
    Printed(crate::commands::conninfo::Printed),
    /// wal-push and wal-fetch: silent on success unless -v or --json (the
    /// server logs what they print), with their own exit status.
    Archive(crate::commands::wal::Done),
}

/// How the result is shown and which exit codes apply, decided once from
/// the command line: mutating commands exit 0/1/2; monitoring commands
/// print a report in their format and exit 0-3 (a usage error too is
/// UNKNOWN, 3).
enum Mode {
    Changes,
    Health(Result<Format, Error>),
}

impl Mode {
    fn of(cli: &Cli) -> Mode {
        let format = match &cli.command {
            Command::Check(a) => &a.format,
            Command::SmokeTest(a) => &a.format,
            Command::Sandbox(crate::commands::sandbox::Args {
                action: crate::commands::sandbox::Action::Status(s),
            }) => &s.format,
            Command::Migrate(crate::commands::migrate::Args {
                action: crate::commands::migrate::Action::Status(s),
            }) => &s.format,
            _ => return Mode::Changes,
        };
        Mode::Health(format.choose(cli.global.json))
    }

    fn printer(&self, cli: &Cli) -> Printer {
        let g = &cli.global;
        match self {
            Mode::Changes => Printer {
                json: g.json,
                quiet: g.quiet,
                verbose: g.verbose,
                progress: !g.no_progress && !g.json,
            },
            Mode::Health(format) => {
                // Monitoring formats keep stderr quiet too (unless -v): a
                // plugin's output is its status line.
                let machine = format
                    .as_ref()
                    .is_ok_and(|f| matches!(f, Format::Nagios | Format::Prometheus));
                Printer {
                    json: g.json || format.as_ref().is_ok_and(|f| *f == Format::Json),
                    quiet: g.quiet || machine,
                    verbose: g.verbose,
                    progress: false,
                }
            }
        }
    }

    fn format(&self) -> Format {
        match self {
            Mode::Health(Ok(f)) => *f,
            _ => Format::Text,
        }
    }
}

async fn dispatch(command: Command, printer: &Printer) -> Result<Output, Failure> {
    use crate::commands::{check, clone_standby, init_master, sandbox, smoke_test};
    Ok(match command {
        Command::InitMaster(args) => Output::Changes(init_master::run(*args, printer).await?),
        Command::CloneStandby(args) => Output::Changes(clone_standby::run(*args, printer).await?),
        Command::Promote(args) => {
            Output::Changes(crate::commands::promote::run(args, printer).await?)
        }
        Command::Follow(args) => {
            Output::Changes(crate::commands::follow::run(*args, printer).await?)
        }
        Command::Rejoin(args) => {
            Output::Changes(crate::commands::rejoin::run(*args, printer).await?)
        }
        Command::Switchover(args) => {
            Output::Changes(crate::commands::switchover::run(*args, printer).await?)
        }
        Command::Conninfo(args) => {
            Output::Printed(crate::commands::conninfo::run(args, printer).await?)
        }
        Command::WalPush(args) => Output::Archive(crate::commands::wal::run_push(args)?),
        Command::WalFetch(args) => Output::Archive(crate::commands::wal::run_fetch(args)?),
        Command::WalPrune(args) => {
            Output::Changes(crate::commands::wal::run_prune(args, printer).await?)
        }
        Command::Tunnel(args) => {
            Output::Changes(crate::commands::tunnel::run(args, printer).await?)
        }
        Command::Check(args) => Output::Health(check::run(args, printer).await?),
        Command::SmokeTest(args) => Output::Health(smoke_test::run(args, printer).await?),
        Command::Sandbox(sandbox::Args {
            action: sandbox::Action::Status(args),
        }) => Output::Health(sandbox::status(args, printer).await?),
        Command::Sandbox(sandbox::Args {
            action: sandbox::Action::Up(args),
        }) => Output::Changes(sandbox::up(args, printer).await?),
        Command::Sandbox(sandbox::Args {
            action: sandbox::Action::Down(args),
        }) => Output::Changes(sandbox::down(args, printer)?),
        Command::Sandbox(sandbox::Args {
            action: sandbox::Action::Failover(args),
        }) => Output::Changes(sandbox::failover(args, printer).await?),
        Command::Sandbox(sandbox::Args {
            action: sandbox::Action::Switchover(args),
        }) => Output::Changes(sandbox::switchover(args, printer).await?),
        Command::Migrate(m) => migrate(m.action, printer).await?,
        Command::GenerateDocs { dir } => Output::Changes(generate_docs(&dir)?),
    })
}

async fn migrate(
    action: crate::commands::migrate::Action,
    printer: &Printer,
) -> Result<Output, Failure> {
    use crate::commands::migrate::{self, Action};
    Ok(match action {
        Action::Start(a) => Output::Changes(migrate::start(a, printer).await?),
        Action::Status(a) => Output::Health(migrate::status(a, printer).await?),
        Action::Cutover(a) => Output::Changes(migrate::cutover(a, printer).await?),
        Action::Abort(a) => Output::Changes(migrate::abort(a, printer).await?),
    })
}

/// The one place results become output and an exit code.
fn emit(
    name: &'static str,
    mode: &Mode,
    printer: &Printer,
    result: Result<Output, Failure>,
) -> ExitCode {
    match (result, mode) {
        (Ok(Output::Changes(outcome)), _) => {
            printer.outcome(&outcome);
            ExitCode::from(EXIT_OK)
        }
        (Ok(Output::Archive(done)), _) => {
            if printer.json || printer.verbose > 0 {
                printer.outcome(&done.outcome);
            }
            ExitCode::from(done.exit_code)
        }
        (Ok(Output::Printed(p)), _) => {
            crate::report::write_stdout(&p.text);
            ExitCode::from(p.exit_code)
        }
        (Ok(Output::Health(report)), _) => {
            let format = mode.format();
            let text = render(&report, format);
            let text = if format == Format::Text && crate::colour::stdout() {
                crate::colour::status_words(&text)
            } else {
                text
            };
            crate::report::write_stdout(&text);
            ExitCode::from(report.status.exit_code())
        }
        (Err(failure), Mode::Changes) => {
            printer.failure(name, &failure.error, &failure.warnings, failure.changed);
            ExitCode::from(if failure.error.code.is_usage() {
                EXIT_USAGE
            } else {
                EXIT_FAILED
            })
        }
        // A monitoring command that could not inspect anything: UNKNOWN,
        // in the chosen format.
        (Err(failure), Mode::Health(_)) => {
            printer.failure(name, &failure.error, &failure.warnings, false);
            crate::report::write_stdout(&crate::health::render::unknown(
                name,
                &failure.error,
                mode.format(),
            ));
            ExitCode::from(Status::Unknown.exit_code())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(Code::Internal, format!("cannot start runtime: {e}")))
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
        ["check"] | ["smoke-test"] | ["sandbox", "status"] | ["migrate", "status"]
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
