//! `conninfo`: the connection strings an application should use. libpq
//! (10+) already routes by itself: given every node's address, a write
//! string with `target_session_attrs=read-write` finds the primary wherever
//! it is after a switchover or failover, with no change to the
//! application; a read string with `prefer-standby` (libpq 14+) and
//! `load_balance_hosts=random` (16+) spreads reads over the standbys. This
//! command only reads: it asks each node given whether it is the primary
//! (to list it first, which saves clients a round trip; the strings work
//! in any order) and what its primary's `pg_stat_replication` shows.

mod nodes;
pub mod render;

use crate::error::{Code, Error, Failure};
use crate::report::Printer;
use nodes::{Node, Role};
use render::{Intent, Strings, Target};
use serde::Serialize;
use std::time::Duration;

/// Print the write and read connection strings for an application. Each
/// --node is asked (within --timeout) whether it is a primary or a
/// standby; the primary is listed first in the write string and last in
/// the read string. A primary's pg_stat_replication shows its standbys'
/// addresses but not their ports: standbys not given are named in a note,
/// and added (with the primary's port, said so) only with --discover.
/// Passwords are never printed. Exit status: 0 printed, 1 printed but no
/// node answered (the roles are unknown), 2 usage error.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// A node: a conninfo string, a postgresql:// URI, or a host name (repeatable; a conninfo with several hosts gives several nodes)
    #[arg(long = "node", value_name = "CONNINFO", required = true)]
    pub node: Vec<String>,
    /// Output: libpq keyword strings, URIs, JDBC URLs, or JSON with all three [default: libpq, or json with --json]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Style>,
    /// Also list the standbys the primary streams to that were not given, at their address as the primary sees it and the primary's port (an assumption, said so in a note)
    #[arg(long)]
    pub discover: bool,
    /// How long each node may take to connect and answer, e.g. 3, 3s, 500ms
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = crate::cli::flags::duration)]
    pub timeout: Duration,
    /// The global --json (set by dispatch: it selects the json format).
    #[arg(skip)]
    pub json: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Libpq,
    Uri,
    Jdbc,
    Json,
}

/// What the command prints, already rendered, and its exit code.
pub struct Printed {
    pub text: String,
    pub exit_code: u8,
}

/// The JSON output: the strings in every format, the nodes and the notes.
#[derive(Serialize)]
struct Report {
    command: &'static str,
    ok: bool,
    /// Always false: conninfo only reads (Ansible's changed_when).
    changed: bool,
    write: Strings,
    read: Strings,
    /// For libpq 10–13 clients, which reject prefer-standby (no JDBC form).
    read_older_clients: Strings,
    /// The oldest client library each string needs.
    requires: Requires,
    nodes: Vec<Node>,
    notes: Vec<String>,
}

#[derive(Serialize)]
struct Requires {
    write: &'static str,
    read: &'static str,
    read_older_clients: &'static str,
}

const REQUIRES: Requires = Requires {
    write: "libpq 10+ (several hosts, target_session_attrs=read-write); pgjdbc with targetServerType=primary (older pgjdbc spells it master)",
    read: "libpq 16+ (target_session_attrs=prefer-standby is 14+, load_balance_hosts is 16+); pgjdbc: targetServerType=preferSecondary, loadBalanceHosts=true",
    read_older_clients: "libpq 10+",
};

pub async fn run(args: Args, printer: &Printer) -> Result<Printed, Failure> {
    let style = match (args.json, args.format) {
        (true, Some(s)) if s != Style::Json => {
            return Err(Error::new(
                Code::ConflictingFlags,
                "--json conflicts with --format other than json",
            )
            .hint("use either --json or --format")
            .into());
        }
        (true, _) => Style::Json,
        (false, s) => s.unwrap_or(Style::Libpq),
    };
    let given = nodes::parse_all(&args.node)?;
    let mut notes = given.notes.clone();
    let found = nodes::inspect(&given.nodes, args.timeout, args.discover).await;
    for n in found.nodes.iter().filter(|n| n.role == Role::Unreachable) {
        printer.warn(n.describe());
    }
    notes.extend(found.notes);
    let answered = found.nodes.iter().any(|n| n.role.answered());
    if !answered {
        notes.push(if found.nodes.iter().any(|n| n.refused) {
            "no node let pgrepctl in (see why above: a password, or pg_hba.conf): the strings list the nodes as given, their roles unknown (exit status 1)"
        } else {
            "no node answered: the strings list the nodes as given, their roles unknown; they work once a primary is up (exit status 1)"
        }
        .into());
    }
    let report = report(found.nodes, &given, notes, answered);
    if style == Style::Jdbc && report.write.jdbc.is_none() {
        return Err(Error::new(
            Code::InvalidValue,
            "a node is a unix socket directory, which a JDBC URL cannot name",
        )
        .hint("give the nodes as TCP addresses (host=10.0.0.1 port=5432), or use --format libpq or uri")
        .into());
    }
    Ok(Printed {
        text: text(&report, style),
        exit_code: if answered { 0 } else { 1 },
    })
}

fn report(nodes: Vec<Node>, given: &nodes::Given, mut notes: Vec<String>, ok: bool) -> Report {
    let order = |roles: &[Role]| {
        let mut hosts = vec![];
        for r in roles {
            hosts.extend(nodes.iter().filter(|n| n.role == *r).map(Node::endpoint));
        }
        Target {
            hosts,
            user: given.user.clone(),
            dbname: given.dbname.clone(),
        }
    };
    use Role::*;
    let write = order(&[Primary, Standby, Unreachable, Discovered]);
    let read = order(&[Standby, Discovered, Unreachable, Primary]);
    notes.push(format!(
        "the read string needs {}; libpq 10-13 reject it: use the string for older clients (target_session_attrs=any, the standbys listed first)",
        REQUIRES.read
    ));
    notes.push("libpq 14-15 may keep target_session_attrs=prefer-standby and drop load_balance_hosts (hosts are then tried in list order)".into());
    notes.push(format!("the write string needs {}", REQUIRES.write));
    notes.push("libpq waits for an unreachable host as long as connect_timeout (default: no limit but the OS's); add e.g. connect_timeout=5 to both strings".into());
    if render::jdbc(&write, Intent::Write).is_none() {
        notes.push(
            "no JDBC URL: pgjdbc cannot name a unix socket directory in its host list".into(),
        );
    }
    Report {
        command: "conninfo",
        ok,
        changed: false,
        write: render::all(&write, Intent::Write),
        read: render::all(&read, Intent::Read),
        // pgjdbc has no libpq version to work around.
        read_older_clients: Strings {
            jdbc: None,
            ..render::all(&read, Intent::ReadOlderClients)
        },
        requires: REQUIRES,
        nodes,
        notes,
    }
}

/// Text: `write:` and `read:` lines (easy to cut out of the output),
/// then the nodes and the notes.
fn text(r: &Report, style: Style) -> String {
    let pick = |s: &Strings| -> String {
        match style {
            Style::Libpq => s.libpq.clone(),
            Style::Uri => s.uri.clone(),
            Style::Jdbc => s.jdbc.clone().unwrap_or_default(),
            Style::Json => String::new(),
        }
    };
    if style == Style::Json {
        return format!(
            "{}\n",
            serde_json::to_string(r)
                .unwrap_or_else(|e| format!("{{\"ok\":false,\"error\":\"{e}\"}}"))
        );
    }
    let mut out = format!("write: {}\nread:  {}\n", pick(&r.write), pick(&r.read));
    if style != Style::Jdbc {
        out.push_str(&format!(
            "read (libpq 10-13): {}\n",
            pick(&r.read_older_clients)
        ));
    }
    for n in &r.nodes {
        out.push_str(&format!("node:  {}\n", n.describe()));
    }
    for note in &r.notes {
        out.push_str(&format!("note:  {note}\n"));
    }
    out
}
