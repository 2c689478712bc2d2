//! `sandbox`: a real, replicated primary + standbys on this machine in one
//! command, built by the same init-master, clone-standby, check and
//! smoke-test code a production user runs — to learn on and script against.

mod build;
mod failover;
mod node;
mod state;
mod switchover;
mod up;

use crate::error::Failure;
use crate::error::{Code, Error, Result};
use crate::health::Report;
use crate::report::{Change, Kind, Outcome, Printer};
use std::path::PathBuf;

pub use state::State;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Action {
    /// Create and start a primary and N standbys, replicated and checked
    Up(UpArgs),
    /// Run check on the sandbox's nodes (check's output formats and exit codes)
    Status(StatusArgs),
    /// Stop every server the sandbox started and remove its directory
    Down(DirArg),
    /// Kill the primary, promote standby1, repoint the other standbys,
    /// rejoin the old primary (rewound if needed), then check and smoke-test:
    /// the day-two story, through promote, follow and rejoin
    Failover(DirArg),
    /// Hand the primary role to standby1 with pgrepctl switchover (zero data
    /// loss, the old primary becomes its standby, the other standbys follow);
    /// run it again to switch back
    Switchover(DirArg),
}

#[derive(clap::Args, Debug, Clone)]
pub struct DirArg {
    /// Sandbox directory [default: ~/.local/share/pgrepctl/sandbox; /var/lib/pgrepctl/sandbox as root]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct StatusArgs {
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub format: crate::cli::flags::FormatFlag,
}

#[derive(clap::Args, Debug, Clone)]
#[command(mut_arg("bindir", |a| a.help("Directory of the PostgreSQL programs (initdb, pg_ctl) [default: the newest installed major]")))]
pub struct UpArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Number of standbys
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub standbys: u32,
    /// First port: the primary gets BASE, standby i gets BASE+i [default: free ports]
    #[arg(long = "port", value_name = "BASE")]
    pub port: Option<u16>,
    #[command(flatten)]
    pub bindir: crate::cli::flags::BindirFlag,
}

/// The user's data directory, not the working directory: a sandbox should
/// not appear wherever the command happened to be typed.
pub fn default_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/pgrepctl/sandbox");
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("pgrepctl/sandbox")
}

pub async fn up(args: UpArgs, printer: &Printer) -> Result<Outcome, Failure> {
    up::up(args, printer).await
}

pub async fn failover(d: DirArg, printer: &Printer) -> Result<Outcome, Failure> {
    failover::failover(d, printer).await
}

pub async fn switchover(d: DirArg, printer: &Printer) -> Result<Outcome, Failure> {
    switchover::switchover(d, printer).await
}

fn dir_of(d: &DirArg) -> PathBuf {
    d.dir.clone().unwrap_or_else(default_dir)
}

fn load_existing(dir: &std::path::Path) -> Result<State> {
    State::load(dir)?.ok_or_else(|| {
        Error::new(Code::Usage, format!("no sandbox in {}", dir.display()))
            .hint("create one with: pgrepctl sandbox up")
    })
}

/// `check` on the sandbox's nodes, in check's formats and exit codes.
pub async fn status(args: StatusArgs, printer: &Printer) -> Result<Report, Failure> {
    let state = load_existing(&dir_of(&args.dir))?;
    crate::commands::check::run(up::check_args(&state), printer).await
}

pub fn down(d: DirArg, printer: &Printer) -> Result<Outcome> {
    let dir = dir_of(&d);
    let mut o = Outcome::new("sandbox down", false);
    let Some(state) = State::load(&dir)? else {
        // Gone already (a rerun), or left empty by an `up` killed before
        // it wrote its state: nothing to do. Anything else is most likely
        // the wrong --dir, and saying "done" would hide that.
        let empty = std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_none());
        if dir.exists() && !empty {
            return Err(Error::new(
                Code::InvalidValue,
                format!(
                    "{} is not a pgrepctl sandbox (it has no {})",
                    dir.display(),
                    state::FILE
                ),
            )
            .hint(format!(
                "give the --dir that `sandbox up` used (default {})",
                default_dir().display()
            )));
        }
        o.epilogue = Some(format!("no sandbox in {}\n", dir.display()));
        return Ok(o);
    };
    // Standbys first, so none logs a lost primary on the way down.
    for n in state.nodes.iter().rev() {
        if node::stop(&state.bin(), &n.data)? {
            printer.info(format!("stopped {}", n.name));
            o.push(Change {
                kind: Kind::Service,
                path: Some(n.data.clone()),
                summary: format!("stopped {}", n.name),
                diff: None,
            });
        }
    }
    std::fs::remove_dir_all(&dir)
        .map_err(|e| Error::io(format!("cannot remove {}", dir.display()), e))?;
    o.push(Change {
        kind: Kind::File,
        path: Some(dir),
        summary: "removed the sandbox directory".into(),
        diff: None,
    });
    Ok(o)
}
