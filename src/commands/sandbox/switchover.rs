//! `sandbox switchover`: the planned change of primary on the sandbox,
//! through the same `switchover` a production user runs — standby1 (the
//! first standby) becomes the primary, the old primary its standby, the
//! other standbys follow, and the sandbox's state file follows the roles.
//! Run it again to switch back.

use super::failover::swap_roles;
use super::state::Node;
use super::{DirArg, dir_of, load_existing};
use crate::cli::flags::{BindirFlag, DryRunFlag, PasswordFlag};
use crate::commands::switchover;
use crate::error::{Code, Error, Failure, Result};
use crate::report::{Outcome, Printer};
use std::time::Duration;

pub async fn switchover(d: DirArg, printer: &Printer) -> Result<Outcome, Failure> {
    let dir = dir_of(&d);
    let mut state = load_existing(&dir)?;
    let (Some(old), Some(new)) = (state.primary().cloned(), state.standbys().next().cloned())
    else {
        return Err(
            Error::new(Code::Usage, "the sandbox has no standby to switch over to")
                .hint("pgrepctl sandbox down, then pgrepctl sandbox up --standbys 2")
                .into(),
        );
    };
    let siblings: Vec<Node> = state
        .standbys()
        .filter(|s| s.data != new.data)
        .cloned()
        .collect();
    // check names the node given as --primary "primary": the old primary
    // streams under another name.
    let name = if old.name == super::node::PRIMARY {
        format!("old_{}", old.name)
    } else {
        old.name.clone()
    };
    let args = switchover::Args {
        pgdata: old.data.clone(),
        candidate: new.conninfo(),
        siblings: siblings.iter().map(Node::conninfo).collect(),
        password: PasswordFlag {
            password_file: Some(dir.join("replicator.pass")),
        },
        max_lag: 16 << 20,
        drain_timeout: Duration::from_secs(10),
        catchup_timeout: Duration::from_secs(30),
        wait: Duration::from_secs(60),
        slot: Some(name.clone()),
        application_name: Some(name.clone()),
        connect_timeout: Duration::from_secs(10),
        bindir: BindirFlag {
            bindir: Some(state.bindir.clone()),
        },
        dry_run: DryRunFlag { dry_run: false },
    };
    printer.step(format!("switching over from {} to {}", old.name, new.name));
    let result = switchover::run(args, printer).await;
    // The roles follow what the servers say, also after a failure past
    // the promotion.
    if promoted(&new).await {
        swap_roles(&mut state, &old, &new);
        state.save(&dir)?;
    }
    let mut outcome = result?;
    repoint_siblings(&mut outcome, &siblings, &new, &state, &dir, printer).await?;
    outcome.command = "sandbox switchover";
    outcome.detail("primary", state.primary().map(|p| p.name.clone()));
    outcome.detail("nodes", &state.nodes);
    let mut text = outcome.epilogue.take().unwrap_or_default();
    text.push_str(&format!(
        "{} is the primary now; switch back with: pgrepctl sandbox switchover --dir {}\n",
        new.name,
        dir.display()
    ));
    outcome.epilogue = Some(text);
    Ok(outcome)
}

/// Before 13 switchover cannot repoint a sibling from the old primary's
/// host and prints the follow command for its host: on the sandbox, that
/// host is this one, so it is run here.
async fn repoint_siblings(
    outcome: &mut Outcome,
    siblings: &[Node],
    new: &Node,
    state: &super::state::State,
    dir: &std::path::Path,
    printer: &Printer,
) -> Result<(), Failure> {
    if !outcome.details.contains_key("follow_commands") {
        return Ok(());
    }
    let flags = super::failover::Flags {
        pwfile: dir.join("replicator.pass"),
        primary: format!("host=127.0.0.1 port={} user=replicator", new.port),
        bindir: BindirFlag {
            bindir: Some(state.bindir.clone()),
        },
    };
    let quiet = Printer {
        quiet: true,
        json: false,
        ..*printer
    };
    for s in siblings {
        printer.step(format!("repointing {} to {}", s.name, new.name));
        let o = crate::commands::follow::run(flags.follow(s), &quiet).await?;
        outcome
            .warnings
            .retain(|w| !w.contains("runs a version before 13"));
        for mut c in o.changes().iter().cloned() {
            c.summary = format!("{}: {}", s.name, c.summary);
            outcome.push(c);
        }
    }
    outcome.details.remove("follow_commands");
    // The epilogue's "repoint these on their own hosts" is done.
    outcome.epilogue = outcome
        .epilogue
        .as_deref()
        .and_then(|e| e.lines().next())
        .map(|l| format!("{l}\n"));
    Ok(())
}

/// Whether the node answers as a primary.
async fn promoted(node: &Node) -> bool {
    let Ok(config) = crate::pg::conninfo::resolve_node(&node.conninfo()) else {
        return false;
    };
    let Ok(s) = crate::pg::connect(&config, Some(Duration::from_secs(5))).await else {
        return false;
    };
    matches!(
        s.client.query_one("SELECT pg_is_in_recovery()", &[]).await,
        Ok(r) if !r.get::<_, bool>(0)
    )
}
