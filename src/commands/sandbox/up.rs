//! `sandbox up`: initdb a primary, then the real init-master,
//! clone-standby, check and smoke-test code paths. Any failure or Ctrl-C
//! stops every server it started and removes what it created.

use super::node;
use super::state::{Node, State};
use super::{UpArgs, dir_of};
use crate::commands::init_master;
use crate::error::{Code, Error, Result};
use crate::report::{Change, Kind, Outcome, Printer};
use crate::run::Failure;
use crate::tools::RunAs;
use std::path::Path;

pub async fn up(args: UpArgs, printer: &Printer) -> Result<Outcome, Failure> {
    let dir = dir_of(&args.dir);
    let mut outcome = Outcome::new("sandbox up", false);
    if let Some(state) = State::load(&dir)? {
        outcome.warnings.push(format!(
            "a sandbox already exists in {}; left as it is (pgrepctl sandbox down removes it)",
            dir.display()
        ));
        describe(&state, &dir, &mut outcome);
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
    if args.standbys == 0 || args.standbys > 16 {
        return Err(Error::new(Code::InvalidValue, "--standbys must be from 1 to 16").into());
    }
    let bin = node::choose_bindir(args.bindir.as_deref())?;
    let owner = RunAs::postgres_if_root();
    let mut nodes = vec![];
    for i in 0..=args.standbys {
        let name = if i == 0 {
            "primary".to_string()
        } else {
            format!("standby{i}")
        };
        let port = match args.port {
            Some(base) => {
                let p = base
                    .checked_add(i as u16)
                    .ok_or_else(|| Error::new(Code::InvalidValue, "--port too high"))?;
                if !node::port_is_free(p) {
                    return Err(
                        Error::new(Code::InvalidValue, format!("port {p} is in use"))
                            .hint("choose another --port")
                            .into(),
                    );
                }
                p
            }
            None => node::free_port()?,
        };
        let (data, sock, log, _) = node::node_paths(&dir, &name);
        nodes.push(Node {
            name,
            primary: i == 0,
            port,
            data,
            socket_dir: sock,
            log,
        });
    }
    let state = State {
        bindir: bin.path.clone(),
        major: bin.major,
        nodes,
    };

    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let build = build(&state, &dir, &bin, owner, printer, &mut outcome);
    let result = tokio::select! {
        r = build => r,
        _ = tokio::signal::ctrl_c() => Err(Error::new(Code::Interrupted, "interrupted")),
    };
    if let Err(e) = result {
        teardown(&state, &dir, printer);
        return Err(Failure {
            error: e,
            warnings: outcome.warnings.clone(),
            changed: false,
        });
    }
    describe(&state, &dir, &mut outcome);
    Ok(outcome)
}

async fn build(
    state: &State,
    dir: &Path,
    bin: &crate::tools::BinDir,
    owner: RunAs,
    printer: &Printer,
    outcome: &mut Outcome,
) -> Result<()> {
    state.save(dir)?;
    let primary = state
        .primary()
        .ok_or_else(|| Error::new(Code::Internal, "no primary"))?;
    let (_, _, _, base) = node::node_paths(dir, &primary.name);
    node::make_owned_dir(&base, owner)?;
    node::make_owned_dir(&primary.socket_dir, owner)?;
    printer.info(format!(
        "initdb primary (PostgreSQL {}) in {}",
        bin.major,
        primary.data.display()
    ));
    node::initdb(bin, &primary.data, &primary.socket_dir, primary.port, owner)?;
    node::start(bin, &primary.data, &primary.log, owner)?;
    outcome.push(Change {
        kind: Kind::Service,
        path: Some(primary.data.clone()),
        summary: format!("primary: initdb and start on port {}", primary.port),
        diff: None,
    });

    let pwfile = dir.join("replicator.pass");
    write_secret(&pwfile, &node::random_password()?)?;
    let quiet = Printer {
        quiet: true,
        json: false,
        ..*printer
    };
    printer.info("init-master on the primary");
    let im = init_master::run(
        init_master::Args {
            pgdata: Some(primary.data.clone()),
            conn: Default::default(),
            replication_user: "replicator".into(),
            password_file: Some(pwfile.clone()),
            allow: vec!["127.0.0.1/32".into()],
            ssl: false,
            hba_method: "scram-sha-256".into(),
            allow_insecure: false,
            max_wal_senders: 10,
            wal_keep: "256MB".into(),
            listen: None,
            slots: state.standbys().map(|s| s.name.clone()).collect(),
            restart: init_master::RestartPolicy::IfNeeded,
            bindir: Some(bin.path.clone()),
            dry_run: false,
            help: None,
        },
        &quiet,
    )
    .await
    .map_err(|f| f.error)?;
    outcome.push(Change {
        kind: Kind::Sql,
        path: None,
        summary: format!("primary: init-master made {} changes", im.changes.len()),
        diff: None,
    });
    outcome.warnings.extend(im.warnings);
    Ok(())
}

fn write_secret(path: &Path, secret: &str) -> Result<()> {
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

/// Stop what was started, newest first, then remove the directory.
fn teardown(state: &State, dir: &Path, printer: &Printer) {
    for n in state.nodes.iter().rev() {
        match node::stop(&state.bindir, &n.data) {
            Ok(true) => printer.info(format!("stopped {}", n.name)),
            Ok(false) => {}
            Err(e) => printer.info(format!("warning: could not stop {}: {}", n.name, e.message)),
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// What a newcomer needs next: where each node is and how to reach it.
fn describe(state: &State, dir: &Path, outcome: &mut Outcome) {
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
    text.push_str(&format!(
        "check it:    {check}\nremove it:   pgrepctl sandbox down --dir {}\n",
        dir.display()
    ));
    outcome.detail("dir", dir);
    outcome.detail("nodes", &state.nodes);
    outcome.detail("check_command", &check);
    outcome.epilogue = Some(text);
}
