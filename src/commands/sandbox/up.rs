//! `sandbox up`: initdb a primary, then the real init-master,
//! clone-standby, check and smoke-test code paths. Any failure or Ctrl-C
//! stops every server it started and removes what it created.

use super::build::{Env, plan};
use super::node;
use super::state::{Node, State};
use super::{UpArgs, dir_of};
use crate::cli::flags::{BindirFlag, DryRunFlag, FormatFlag, PasswordFlag, TimeoutFlag};
use crate::commands::{check, clone_standby, init_master, smoke_test};
use crate::error::Failure;
use crate::error::{Code, Error, Result};
use crate::health::Report;
use crate::plan::Cx;
use crate::report::{Outcome, Printer};
use crate::tools::RunAs;
use std::path::Path;
use std::time::Duration;

pub async fn up(args: UpArgs, printer: &Printer) -> Result<Outcome, Failure> {
    let dir = dir_of(&args.dir);
    // Bad usage is refused first, also against an existing sandbox.
    if args.standbys == 0 || args.standbys > 16 {
        return Err(
            Error::new(Code::InvalidValue, "--standbys must be from 1 to 16")
                .hint("for example --standbys 2")
                .into(),
        );
    }
    let mut outcome = Outcome::new("sandbox up", false);
    if let Some(state) = State::load(&dir)? {
        outcome.warnings.push(format!(
            "a sandbox already exists in {}; left as it is (pgrepctl sandbox down removes it)",
            dir.display()
        ));
        describe(&state, &dir, &mut outcome, None);
        return Ok(outcome);
    }
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Error::new(
            Code::PgdataNotEmpty,
            format!("{} exists and is not a sandbox", dir.display()),
        )
        .hint("choose another --dir, or remove that directory")
        .into());
    }
    let bin = node::choose_bindir(&args.bindir)?;
    let owner = RunAs::postgres_if_root();
    let state = State {
        bindir: bin.path.clone(),
        major: bin.major,
        nodes: plan_nodes(&dir, args.standbys, args.port)?,
    };

    let env = Env {
        state,
        dir: dir.clone(),
        bin,
        owner,
        pwfile: dir.join("replicator.pass"),
        quiet: Printer {
            quiet: true,
            json: false,
            ..*printer
        },
        verified: None,
    };
    let plan = plan(&env.state);
    let mut cx = Cx::new(env, *printer, None)?;
    // A failure or Ctrl-C undoes the steps newest first: every server the
    // sandbox started is stopped and its directory removed.
    if let Err(error) = crate::plan::execute(&plan.steps, &mut cx, &mut outcome).await {
        return Err(outcome.failure(error));
    }
    let (state, verified) = (&cx.env.state, cx.env.verified.clone().unwrap_or_default());
    describe(state, &dir, &mut outcome, Some(&verified));
    Ok(outcome)
}

/// The primary and `standbys` standbys: names, paths, and ports from
/// `base` on (each must be free) or free ones.
fn plan_nodes(dir: &Path, standbys: u32, base: Option<u16>) -> Result<Vec<Node>> {
    let mut free = match base {
        Some(_) => vec![],
        None => node::free_ports(standbys as usize + 1)?,
    }
    .into_iter();
    let mut nodes = vec![];
    for i in 0..=standbys {
        let name = if i == 0 {
            node::PRIMARY.to_string()
        } else {
            format!("standby{i}")
        };
        let port = match base {
            Some(base) => {
                let p = base
                    .checked_add(i as u16)
                    .ok_or_else(|| Error::new(Code::InvalidValue, "--port too high"))?;
                if !node::port_is_free(p) {
                    return Err(
                        Error::new(Code::InvalidValue, format!("port {p} is in use"))
                            .hint("choose another --port"),
                    );
                }
                p
            }
            None => free
                .next()
                .ok_or_else(|| Error::new(Code::Internal, "too few free ports"))?,
        };
        let (data, sock, log, _) = node::node_paths(dir, &name);
        nodes.push(Node {
            name,
            primary: i == 0,
            port,
            data,
            socket_dir: sock,
            log,
        });
    }
    Ok(nodes)
}

/// The flags a DBA would type on the primary: replication from loopback,
/// a slot for each standby, restart when a setting needs it.
pub(super) fn init_master_args(
    state: &State,
    primary: &Node,
    pwfile: &Path,
    bindir: &Path,
) -> init_master::Args {
    init_master::Args {
        pgdata: Some(primary.data.clone()),
        conn: Default::default(),
        replication_user: "replicator".into(),
        allow_privileged_role: false,
        password: PasswordFlag {
            password_file: Some(pwfile.to_path_buf()),
        },
        allow: vec!["127.0.0.1/32".into()],
        ssl: false,
        ssl_names: vec![],
        ssl_dir: None,
        ssl_issue: false,
        hba_method: "scram-sha-256".into(),
        allow_insecure: false,
        max_wal_senders: 10,
        wal_keep: "256MB".into(),
        listen: None,
        rewindable: true,
        slots: state.standbys().map(|s| s.name.clone()).collect(),
        restart: init_master::RestartPolicy::IfNeeded,
        bindir: BindirFlag {
            bindir: Some(bindir.to_path_buf()),
        },
        dry_run: DryRunFlag { dry_run: false },
        monitor_from: vec![],
        monitor_user: "monitor".into(),
        monitor_password_file: None,
        archive_dir: None,
        archive_command: None,
        archive_library: false,
        archive_timeout: None,
        help: None,
    }
}

/// The flags a DBA would type for this standby: the primary over
/// loopback TCP as the replication role, its own slot, port and name.
pub(super) fn clone_args(
    primary: &Node,
    standby: &Node,
    pwfile: &Path,
    bindir: &Path,
) -> clone_standby::Args {
    clone_standby::Args {
        primary: format!("host=127.0.0.1 port={} user=replicator", primary.port),
        pgdata: standby.data.clone(),
        password: PasswordFlag {
            password_file: Some(pwfile.to_path_buf()),
        },
        passfile: None,
        password_in_conninfo: false,
        slot: Some(standby.name.clone()),
        application_name: Some(standby.name.clone()),
        port: Some(standby.port),
        listen: None,
        bindir: BindirFlag {
            bindir: Some(bindir.to_path_buf()),
        },
        force: false,
        max_rate: None,
        compress: "auto".into(),
        no_start: false,
        wait: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(10),
        restore_dir: None,
        restore_command: None,
        archive_cleanup: false,
        sslrootcert: None,
        allow_insecure: false,
        dry_run: DryRunFlag { dry_run: false },
    }
}

/// `check` on every node of the sandbox, as `sandbox status` and the
/// printed check command run it.
pub fn check_args(state: &State) -> check::Args {
    check::Args::of(
        state.primary().map(Node::conninfo),
        state.standbys().map(Node::conninfo).collect(),
    )
}

pub(super) fn smoke_args(state: &State) -> smoke_test::Args {
    smoke_test::Args {
        primary: state.primary().map(Node::conninfo).unwrap_or_default(),
        standby: state.standbys().map(Node::conninfo).collect(),
        timeout: TimeoutFlag::default(),
        cleanup: false,
        format: FormatFlag::default(),
    }
}

/// A sandbox that does not pass its own check is not handed over.
pub(super) fn require_ok(report: &Report, what: &str) -> Result<()> {
    require_ok_or(
        report,
        &format!("{what} on the new sandbox"),
        "the sandbox was removed again; rerun with -v to see each step",
    )
}

/// `report` must be OK; else an error naming each problem, with `hint`.
pub(super) fn require_ok_or(report: &Report, what: &str, hint: &str) -> Result<()> {
    report.require_ok(what, hint)
}

pub(super) fn latencies(smoke: &Report) -> serde_json::Map<String, serde_json::Value> {
    smoke
        .probes
        .iter()
        .flatten()
        .map(|p| (p.standby.clone(), serde_json::json!(p.latency_ms)))
        .collect()
}

pub(super) fn write_secret(path: &Path, secret: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
    f.write_all(format!("{secret}\n").as_bytes())
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// What a newcomer needs next: where each node is and how to reach it.
fn describe(state: &State, dir: &Path, outcome: &mut Outcome, verified: Option<&str>) {
    let mut text = format!(
        "\nsandbox in {} (PostgreSQL {})\n",
        dir.display(),
        state.major
    );
    for n in &state.nodes {
        text.push_str(&format!(
            "  {:<10} port {:<5} {}\n",
            n.name,
            n.port,
            n.data.display()
        ));
        text.push_str(&format!("             {}\n", n.psql()));
    }
    let mut check = String::from("pgrepctl check");
    for n in &state.nodes {
        check.push_str(&format!(
            " --{} '{}'",
            if n.primary { "primary" } else { "standby" },
            n.conninfo()
        ));
    }
    if let Some(v) = verified {
        text.push_str(&format!("verified:    {v}\n"));
    }
    text.push_str(&format!(
        "check it:    {check}\nremove it:   pgrepctl sandbox down --dir {}\n",
        dir.display()
    ));
    outcome.detail("dir", dir);
    outcome.detail("nodes", &state.nodes);
    outcome.detail("check_command", &check);
    outcome.epilogue = Some(text);
}
