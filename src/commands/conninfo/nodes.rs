//! The nodes behind the strings: those given (parsed with pgrepctl's own
//! conninfo code), what each says it is, and what a primary's
//! `pg_stat_replication` shows of its standbys. Only what a server shows is
//! reported: a standby's port is not visible there, so a discovered node is
//! listed (with --discover) at the primary's port and says so.

use super::render::Endpoint;
use crate::error::{Code, Error, Result};
use crate::pg::{self, conninfo};
use serde::Serialize;
use std::time::Duration;
use tokio_postgres::config::Host;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Primary,
    Standby,
    /// Given, but did not answer in time (or refused us): role unknown.
    Unreachable,
    /// Seen in the primary's pg_stat_replication, not given (--discover).
    Discovered,
}

impl Role {
    pub fn answered(self) -> bool {
        matches!(self, Role::Primary | Role::Standby)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub host: String,
    pub port: u16,
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a discovered node: the port is the primary's, assumed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub port_assumed: bool,
    /// It answered, but refused pgrepctl's login (password, pg_hba.conf):
    /// the node may well be up.
    #[serde(skip)]
    pub refused: bool,
    #[serde(skip)]
    config: Option<crate::pg::conninfo::ConnConfig>,
}

impl Node {
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            host: self.host.clone(),
            port: self.port,
        }
    }

    pub fn describe(&self) -> String {
        let role = match self.role {
            Role::Primary => "primary".to_string(),
            Role::Standby => "standby".to_string(),
            Role::Unreachable => format!(
                "{} ({})",
                if self.refused {
                    "refused pgrepctl's login"
                } else {
                    "did not answer"
                },
                self.error.as_deref().unwrap_or("unknown")
            ),
            Role::Discovered => "standby, discovered (port assumed: the primary's)".to_string(),
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{host}:{} {role}", self.port)
    }
}

/// The nodes given, and what the strings may carry from them.
#[derive(Debug, Default)]
pub struct Given {
    pub nodes: Vec<Node>,
    pub user: Option<String>,
    pub dbname: Option<String>,
    pub notes: Vec<String>,
}

fn host_text(h: &Host) -> String {
    match h {
        Host::Tcp(s) => s.clone(),
        Host::Unix(p) => p.display().to_string(),
    }
}

/// Parse every --node; one per host of a multi-host conninfo. user and
/// dbname are kept only when given and the same on every node; a password
/// is never kept (a note says it was dropped).
pub fn parse_all(specs: &[String]) -> Result<Given> {
    let mut g = Given::default();
    let (mut users, mut dbnames, mut password) = (vec![], vec![], false);
    for spec in specs {
        let raw = if conninfo::is_conninfo(spec.trim()) {
            Some(conninfo::parse(spec.trim())?)
        } else {
            None
        };
        let resolved = conninfo::resolve_node(spec)?;
        if let Some(r) = &raw {
            users.push(r.get_user().map(String::from));
            dbnames.push(r.get_dbname().map(String::from));
            password |= r.get_password().is_some();
        } else {
            users.push(None);
            dbnames.push(None);
        }
        let hosts = resolved.get_hosts();
        let ports = resolved.get_ports();
        for (i, h) in hosts.iter().enumerate() {
            let port = match ports.len() {
                0 => 5432,
                1 => ports[0],
                _ => *ports.get(i).ok_or_else(|| {
                    Error::new(
                        Code::InvalidValue,
                        format!("{spec}: fewer ports than hosts"),
                    )
                    .hint("give one port for all hosts, or one per host")
                })?,
            };
            let host = host_text(h);
            if g.nodes
                .iter()
                .any(|n: &Node| n.host == host && n.port == port)
            {
                continue;
            }
            g.nodes.push(Node {
                config: Some(single(&resolved, h, port)),
                host,
                port,
                role: Role::Unreachable,
                error: None,
                port_assumed: false,
                refused: false,
            });
        }
    }
    g.user = agreed("user", &users, &mut g.notes);
    g.dbname = agreed("dbname", &dbnames, &mut g.notes);
    if password {
        g.notes.push("a password was given: it is not printed; the application supplies its own (a password file, PGPASSWORD or its secret store)".into());
    }
    Ok(g)
}

/// The value every node gave, or None (with a note when they differ or
/// some gave none).
fn agreed(key: &str, values: &[Option<String>], notes: &mut Vec<String>) -> Option<String> {
    let first = values.first().cloned().flatten()?;
    if values.iter().all(|v| v.as_deref() == Some(first.as_str())) {
        return Some(first);
    }
    notes.push(format!(
        "{key} is not the same on every --node: left out of the strings (the client's default applies; add {key}=… yourself)"
    ));
    None
}

/// A config for one host of a resolved node, for asking it its role.
fn single(
    from: &crate::pg::conninfo::ConnConfig,
    host: &Host,
    port: u16,
) -> crate::pg::conninfo::ConnConfig {
    let mut c = tokio_postgres::Config::new();
    match host {
        Host::Tcp(s) => c.host(s),
        Host::Unix(p) => c.host_path(p),
    };
    c.port(port);
    if let Some(u) = from.get_user() {
        c.user(u);
    }
    if let Some(p) = from.get_password() {
        c.password(p);
    }
    if let Some(d) = from.get_dbname() {
        c.dbname(d);
    }
    c.ssl_mode(from.get_ssl_mode());
    c.application_name("pgrepctl");
    crate::pg::conninfo::ConnConfig {
        pg: c,
        tls: from.tls.clone(),
    }
}

/// What the nodes said, plus the standbys the primary shows.
pub struct Found {
    pub nodes: Vec<Node>,
    pub notes: Vec<String>,
}

/// One node's answer: in recovery, the address it was reached at, and
/// (a primary) the addresses its wal senders stream to.
struct Answer {
    in_recovery: bool,
    server_addr: Option<String>,
    senders: Vec<Option<String>>,
    hidden: usize,
}

async fn ask(config: &crate::pg::conninfo::ConnConfig, timeout: Duration) -> Result<Answer> {
    tokio::time::timeout(timeout, async {
        let (client, target) = pg::connect_client_with(config, Some(timeout), timeout)
            .await
            .map_err(|f| f.error)?;
        let row = client
            .query_one("SELECT pg_is_in_recovery(), host(inet_server_addr())", &[])
            .await
            .map_err(|e| pg::query_error(&target, &e))?;
        let in_recovery: bool = row.get(0);
        let (mut senders, mut hidden) = (vec![], 0);
        if !in_recovery {
            // state is NULL for a role without pg_read_all_stats: then
            // client_addr is hidden too, not absent.
            for r in client
                .query(
                    "SELECT host(client_addr), state IS NULL FROM pg_stat_replication",
                    &[],
                )
                .await
                .map_err(|e| pg::query_error(&target, &e))?
            {
                if r.get::<_, bool>(1) {
                    hidden += 1;
                } else {
                    senders.push(r.get::<_, Option<String>>(0));
                }
            }
        }
        Ok(Answer {
            in_recovery,
            server_addr: row.get(1),
            senders,
            hidden,
        })
    })
    .await
    .unwrap_or_else(|_| {
        Err(Error::new(
            Code::Timeout,
            format!("no answer within {}s", timeout.as_secs_f64()),
        ))
    })
}

/// Ask every node at once; then list the primary's standbys not given.
pub async fn inspect(given: &[Node], timeout: Duration, discover: bool) -> Found {
    let answers = futures_util::future::join_all(
        given
            .iter()
            .map(|n| ask(n.config.as_ref().expect("a given node"), timeout)),
    )
    .await;
    let mut nodes = given.to_vec();
    let mut known: Vec<String> = nodes.iter().map(|n| n.host.clone()).collect();
    let mut primaries = vec![];
    for (n, a) in nodes.iter_mut().zip(answers) {
        match a {
            Ok(a) => {
                n.role = if a.in_recovery {
                    Role::Standby
                } else {
                    Role::Primary
                };
                known.extend(a.server_addr.clone());
                if !a.in_recovery {
                    primaries.push((n.port, a));
                }
            }
            Err(e) => {
                n.refused = matches!(e.code, Code::AuthenticationFailed | Code::HbaRejected);
                n.error = Some(e.message.clone());
            }
        }
    }
    let mut notes = vec![];
    if primaries.len() > 1 {
        notes.push("more than one node takes writes (split brain?): run pgrepctl check; the write string reaches whichever answers first".into());
    }
    for (port, a) in primaries {
        discovered(port, &a, &known, discover, &mut nodes, &mut notes);
    }
    Found { nodes, notes }
}

/// The primary's standbys not among the nodes: added (--discover) at the
/// primary's port, or named in a note. A standby on an address a given
/// node has is taken to be that node (the port that would tell them apart
/// is not shown); one on a unix socket has no address to give.
fn discovered(
    port: u16,
    a: &Answer,
    known: &[String],
    discover: bool,
    nodes: &mut Vec<Node>,
    notes: &mut Vec<String>,
) {
    let mut unknown: Vec<String> = vec![];
    let mut socket = 0;
    for s in &a.senders {
        match s {
            None => socket += 1,
            Some(addr) if known.contains(addr) || unknown.contains(addr) => {}
            Some(addr) => unknown.push(addr.clone()),
        }
    }
    if a.hidden > 0 {
        notes.push(format!("{} standby address(es) hidden from this role: grant it pg_monitor (or pg_read_all_stats) to have them listed", a.hidden));
    }
    if socket > 0 {
        notes.push(format!("{socket} standby(s) stream over a unix socket (the primary shows no address): one not given with --node is not in the strings"));
    }
    if unknown.is_empty() {
        return;
    }
    if !discover {
        notes.push(format!("the primary streams to standby(s) not given: {}; add each with --node 'host=ADDR port=PORT' (its port is not visible on the primary), or --discover to add them at the primary's port", unknown.join(", ")));
        return;
    }
    for addr in unknown {
        nodes.push(Node {
            host: addr,
            port,
            role: Role::Discovered,
            error: None,
            port_assumed: true,
            refused: false,
            config: None,
        });
    }
    notes.push(format!("discovered standbys are listed at the primary's port {port}: the primary does not show theirs; give them with --node if it differs"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nodes_are_one_per_host_and_passwords_are_dropped() {
        let g = parse_all(&specs(&[
            "host=a,b port=5432,5433 user=app dbname=shop password=secret",
            "postgresql://app@[::1]:6000/shop",
            "host=a port=5432 user=app dbname=shop",
        ]))
        .unwrap();
        let eps: Vec<(String, u16)> = g.nodes.iter().map(|n| (n.host.clone(), n.port)).collect();
        assert_eq!(
            eps,
            [("a".into(), 5432), ("b".into(), 5433), ("::1".into(), 6000)]
        );
        assert_eq!(g.user.as_deref(), Some("app"));
        assert_eq!(g.dbname.as_deref(), Some("shop"));
        assert!(
            g.notes.iter().any(|n| n.contains("password")),
            "{:?}",
            g.notes
        );
        assert!(g.nodes.iter().all(|n| n.role == Role::Unreachable));
    }

    #[test]
    fn user_and_dbname_only_when_all_agree() {
        let g = parse_all(&specs(&[
            "host=a user=x dbname=d",
            "host=b user=y dbname=d",
        ]))
        .unwrap();
        assert_eq!(g.user, None);
        assert_eq!(g.dbname.as_deref(), Some("d"));
        assert!(
            g.notes
                .iter()
                .any(|n| n.starts_with("user is not the same"))
        );
        assert!(!g.notes.iter().any(|n| n.contains("password")));
        let bad = parse_all(&specs(&["host=a bogus=1"])).unwrap_err();
        assert_eq!(bad.code, Code::UnknownConninfoKeyword);
    }

    #[test]
    fn discovery_never_invents_a_port_unasked() {
        let a = Answer {
            in_recovery: false,
            server_addr: Some("10.0.0.1".into()),
            senders: vec![Some("10.0.0.2".into()), Some("10.0.0.3".into()), None],
            hidden: 1,
        };
        let known = vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()];
        let (mut nodes, mut notes) = (vec![], vec![]);
        discovered(5432, &a, &known, false, &mut nodes, &mut notes);
        assert!(nodes.is_empty());
        assert!(
            notes.iter().any(|n| n.contains("not given: 10.0.0.3;")),
            "{notes:?}"
        );
        assert!(notes.iter().any(|n| n.contains("unix socket")));
        assert!(notes.iter().any(|n| n.contains("pg_monitor")));
        let (mut nodes, mut notes) = (vec![], vec![]);
        discovered(5432, &a, &known, true, &mut nodes, &mut notes);
        assert_eq!(nodes.len(), 1);
        assert_eq!((nodes[0].host.as_str(), nodes[0].port), ("10.0.0.3", 5432));
        assert!(nodes[0].port_assumed && nodes[0].role == Role::Discovered);
        assert!(notes.iter().any(|n| n.contains("primary's port 5432")));
    }
}
