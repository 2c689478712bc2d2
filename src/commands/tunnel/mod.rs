//! `tunnel`: an SSH tunnel that carries replication where TLS is not an
//! option, kept up by systemd (`tunnel unit`) or by pgrepctl itself in
//! the foreground (`tunnel run`). Both run the one command line of
//! [`ssh::argv`]; `checks` refuses what would make ssh fail for good
//! (a busy local port, a missing key) before anything starts or is written.
//!
//! Not here, on purpose: a standby streaming through a tunnel wants a low
//! `wal_retrieve_retry_interval` (clone-standby decides that when its
//! primary is a local forwarded port), and check's "is the tunnel up?"
//! message belongs to check.

mod checks;
pub mod ssh;
mod supervise;
mod unit;

use crate::error::{Failure, Result};
use crate::report::{Outcome, Printer};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Action {
    /// Write a systemd unit that keeps the tunnel up, and print how to enable it
    ///
    /// The unit (from templates/tunnel.service) runs OpenSSH with -N -L
    /// 127.0.0.1:LOCAL:127.0.0.1:REMOTE, ExitOnForwardFailure, server
    /// keep-alives, BatchMode and StrictHostKeyChecking=yes, with
    /// Restart=always. Written through the engine: a rerun with the same
    /// flags changes nothing, --dry-run shows the diff. pgrepctl does not
    /// run systemctl: it prints `systemctl daemon-reload` and `systemctl
    /// enable --now NAME.service`.
    Unit(UnitArgs),
    /// Run the same ssh in the foreground, started again whenever it exits (hosts without systemd)
    ///
    /// ssh is started again after 0.2 s, waits doubling up to 5 s while it
    /// keeps failing, back to 0.2 s after a minute of a working tunnel. ssh
    /// dies with pgrepctl; SIGTERM or SIGINT ends ssh and exits 0.
    Run(TunnelFlags),
}

/// What both `unit` and `run` take: the tunnel itself.
#[derive(clap::Args, Debug, Clone)]
pub struct TunnelFlags {
    /// The SSH login on the primary's host: USER@HOST
    #[arg(long = "ssh", value_name = "USER@HOST")]
    pub ssh: String,
    /// The SSH server's port [default: ssh's own (22, or ~/.ssh/config)]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub ssh_port: Option<u16>,
    /// Port on this host's 127.0.0.1 that forwards to the primary (the standby's primary_conninfo port)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub local_port: u16,
    /// The primary's PostgreSQL port on its host's 127.0.0.1
    #[arg(long, value_name = "N", default_value_t = 5432, value_parser = clap::value_parser!(u16).range(1..))]
    pub remote_port: u16,
    /// Private key to log in with (only this key is offered) [default: ssh's own]
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// known_hosts file holding the primary host's key [default: ~/.ssh/known_hosts]
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct UnitArgs {
    #[command(flatten)]
    pub tunnel: TunnelFlags,
    /// Unit name (.service is added) [default: pgrepctl-tunnel-LOCAL_PORT]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Directory the unit is written to
    #[arg(long, value_name = "DIR", default_value = "/etc/systemd/system")]
    pub unit_dir: PathBuf,
    /// Run ssh as this OS user (User= in the unit) instead of root: the key (--identity) must be that user's, and ~USER/.ssh/known_hosts is where the host key is looked for
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    #[command(flatten)]
    pub dry_run: crate::cli::flags::DryRunFlag,
}

/// The flags, validated with no I/O.
fn settings(f: TunnelFlags) -> Result<ssh::Tunnel> {
    let TunnelFlags {
        ssh,
        ssh_port,
        local_port,
        remote_port,
        identity,
        known_hosts,
    } = f;
    Ok(ssh::Tunnel {
        destination: ssh::destination(&ssh)?,
        ssh_port,
        local_port,
        remote_port,
        identity: identity.map(absolute).transpose()?,
        known_hosts: known_hosts.map(absolute).transpose()?,
    })
}

/// Paths as absolute: the unit runs from `/`, not from here.
fn absolute(p: PathBuf) -> Result<PathBuf> {
    std::path::absolute(&p)
        .map_err(|e| crate::error::Error::io(format!("cannot make {} absolute", p.display()), e))
}

pub async fn run(args: Args, printer: &Printer) -> Result<Outcome, Failure> {
    match args.action {
        Action::Unit(a) => write_unit(a, printer).await,
        Action::Run(f) => {
            let t = settings(f)?;
            let program = ssh::program()?;
            let warnings = checks::all(&t, true, None)?;
            for w in &warnings {
                printer.warn(w);
            }
            let mut o = supervise::run(&program, &t, printer).await?;
            o.warnings = warnings;
            Ok(o)
        }
    }
}

async fn write_unit(a: UnitArgs, printer: &Printer) -> Result<Outcome, Failure> {
    let UnitArgs {
        tunnel,
        name,
        unit_dir,
        user,
        dry_run,
    } = a;
    let t = settings(tunnel)?;
    let user = user.as_deref().map(checks::os_user).transpose()?;
    let name = unit::name(name.as_deref(), &t)?;
    let program = ssh::program()?;
    if !unit_dir.is_dir() {
        return Err(crate::error::Error::new(
            crate::error::Code::FileNotWritable,
            format!("unit directory {} does not exist", unit_dir.display()),
        )
        .hint("on a host without systemd, run the tunnel with: pgrepctl tunnel run (same flags)")
        .into());
    }
    let path = absolute(unit_dir)?.join(format!("{name}.service"));
    let old = match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(
                crate::error::Error::io(format!("cannot read {}", path.display()), e).into(),
            );
        }
    };
    let warnings = checks::all(&t, !unit::holds_port(old.as_deref(), &t), user.as_ref())?;
    let mut plan = crate::plan::Plan::<()>::default();
    let text = unit::render(&program, &t, user.as_ref().map(|u| u.name.as_str()));
    if let Some(s) = unit::step(path.clone(), old, text) {
        plan.push(s);
    }
    plan.warnings = warnings;
    let mut o = Outcome::new("tunnel unit", dry_run.dry_run);
    let commands = unit::enable_commands(&name);
    o.detail("unit", &path);
    o.detail(
        "argv",
        std::iter::once(program.display().to_string())
            .chain(ssh::argv(&t))
            .collect::<Vec<_>>(),
    );
    o.detail("enable_commands", &commands);
    o.epilogue = Some(format!(
        "enable it (pgrepctl does not run systemctl):\n  {}\n(if it already runs: systemctl restart {name}.service)\n",
        commands.join("\n  ")
    ));
    if dry_run.dry_run {
        plan.preflight()?;
        plan.preview_into(&mut o);
        return Ok(o);
    }
    o.warnings.append(&mut plan.warnings);
    let mut cx = crate::plan::Cx::new((), *printer, None)?;
    crate::plan::execute(&plan.steps, &mut cx, &mut o)
        .await
        .map_err(|e| o.failure(e))?;
    o.warnings.append(&mut cx.warnings);
    Ok(o)
}
