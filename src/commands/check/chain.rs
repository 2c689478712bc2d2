//! Who is who, and who streams from whom: a display name per node, and
//! for each standby the wal sender (on the primary, or on another standby
//! given, for a cascade) that serves it. Pure, like `evaluate`.

use super::inspect::{Data, NodeFacts, Sender};
use crate::health::Role;
use crate::pg::walsender::{self, SlotUse};

/// The application name a standby's WAL receiver announces: from its
/// conninfo, else `cluster_name` (12+), else `walreceiver`. None when the
/// conninfo is not visible to the connecting role.
pub fn announced_name(
    conninfo_app: Option<&str>,
    cluster_name: &str,
    version_num: u32,
) -> Option<String> {
    let name = conninfo_app?;
    if !name.is_empty() {
        return Some(name.to_string());
    }
    if crate::pg::version::Version::of(version_num).receiver_uses_cluster_name()
        && !cluster_name.is_empty()
    {
        return Some(cluster_name.to_string());
    }
    Some("walreceiver".into())
}

pub fn effective_app_name(d: &Data) -> Option<String> {
    let from_conninfo = match &d.receiver {
        Some(rc) => rc.application_name.as_deref(),
        None => d.configured_app_name.as_deref(),
    };
    announced_name(from_conninfo, &d.cluster_name, d.version_num)
}

/// A standby's display name: its application name unless that is the
/// anonymous default, else host:port.
pub fn standby_name(app: Option<String>, host_port: &str) -> String {
    app.filter(|n| n != "walreceiver" && n != "primary" && !n.is_empty())
        .unwrap_or_else(|| host_port.to_string())
}

/// A standby's name, the same whether it answers or not: the
/// `application_name` its conninfo names (`given`), else
/// [`standby_name`] of what it announces (`app`; None when it does not
/// answer or hides it), which falls back to `host:port`. Only the first
/// rule is stable across a stop: without a name given, a standby that
/// does not answer is named by its address.
pub fn node_name(given: Option<&str>, app: Option<String>, host_port: &str) -> String {
    match given {
        Some(name) => name.to_string(),
        None => standby_name(app, host_port),
    }
}

/// `base`, or `base#2`, `base#3`… when taken.
pub fn unique(taken: &[String], base: String) -> String {
    let mut name = base.clone();
    let mut i = 2;
    while taken.contains(&name) {
        name = format!("{base}#{i}");
        i += 1;
    }
    name
}

/// A display name per node: `primary`, else [`node_name`]; unique.
pub fn names(facts: &[NodeFacts]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for f in facts {
        let base = match f.role {
            Role::Primary => "primary".to_string(),
            Role::Standby => node_name(
                f.given_name.as_deref(),
                f.data.as_ref().ok().and_then(effective_app_name),
                &f.host_port,
            ),
        };
        out.push(unique(&out, base));
    }
    out
}

/// How a standby given is linked to the wal senders of the nodes given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Link {
    /// No sender of the nodes given fits.
    #[default]
    None,
    /// It streams from this sender: `(node, sender index)`.
    Sender(usize, usize),
    /// These senders of `node` (two or more) fit equally: one
    /// application_name, no address and no slot that tells them apart.
    Shared { node: usize, senders: Vec<usize> },
}

impl Link {
    /// The `(node, sender index)` it streams from, when known.
    pub fn sender(&self) -> Option<(usize, usize)> {
        match self {
            Link::Sender(u, k) => Some((*u, *k)),
            _ => None,
        }
    }
}

/// What the standby of `f` (data `d`) streams from among `senders` (the
/// `taken` ones, and base backups, left out), as [`walsender::find`]
/// decides: by application name, narrowed by address (the standby's as
/// seen from here, and the one it was given by) and by the slot its WAL
/// receiver shows.
fn match_sender(f: &NodeFacts, d: &Data, senders: &[Sender], taken: &[bool]) -> walsender::Found {
    use walsender::Found;
    let free: Vec<usize> = (0..senders.len())
        .filter(|&i| !taken[i] && senders[i].state.as_deref() != Some("backup"))
        .collect();
    let seen: Vec<_> = free.iter().map(|&i| senders[i].seen()).collect();
    let name = effective_app_name(d);
    let slot = match d.receiver.as_ref().map(|rc| &rc.receiver) {
        // A receiver whose status is hidden hides its slot too.
        Some(r) if r.status.is_some() => SlotUse::of(r.slot_name.as_deref()),
        _ => SlotUse::Unknown,
    };
    let standby = walsender::Standby {
        application_name: name.as_deref(),
        addrs: [d.server_addr.as_deref(), f.given_addr.as_deref()]
            .into_iter()
            .flatten()
            .filter_map(|a| a.parse().ok())
            .collect(),
        slot,
    };
    match walsender::find(&seen, &standby) {
        Found::One(k) => Found::One(free[k]),
        Found::Ambiguous(ks) => Found::Ambiguous(ks.into_iter().map(|k| free[k]).collect()),
        Found::NotFound => Found::NotFound,
    }
}

/// For each node: the sender it streams from ([`Link`]). Each standby
/// tries the nodes given in order, the primary first (so a standby is
/// only taken for a cascade when no sender of the primary fits), except
/// that the node its WAL receiver names (`sender_host`/`sender_port`,
/// 11+) goes first: that settles standbys that share an application name.
/// Senders that fit equally on a node end the search there too: which
/// one is this standby's is unknown, not absent.
pub fn upstreams(facts: &[NodeFacts], primary: Option<usize>) -> Vec<Link> {
    let data = |i: usize| facts[i].data.as_ref().ok();
    let is_standby =
        |i: usize| facts[i].role == Role::Standby && data(i).is_some_and(|d| d.in_recovery);
    let mut order: Vec<usize> = primary.into_iter().collect();
    order.extend((0..facts.len()).filter(|&i| is_standby(i)));
    let mut taken: Vec<Vec<bool>> = (0..facts.len())
        .map(|u| vec![false; data(u).map_or(0, |d| d.senders.len())])
        .collect();
    let mut out = vec![Link::None; facts.len()];
    for i in (0..facts.len()).filter(|&i| is_standby(i)) {
        let d = data(i).expect("answered");
        let mut candidates: Vec<usize> = order.iter().copied().filter(|&u| u != i).collect();
        candidates.sort_by_key(|&u| closeness(d, &facts[u]));
        for u in candidates {
            let senders = &data(u).expect("answered").senders;
            match match_sender(&facts[i], d, senders, &taken[u]) {
                walsender::Found::One(k) => {
                    taken[u][k] = true;
                    out[i] = Link::Sender(u, k);
                }
                walsender::Found::Ambiguous(ks) => {
                    out[i] = Link::Shared {
                        node: u,
                        senders: ks,
                    }
                }
                walsender::Found::NotFound => continue,
            }
            break;
        }
    }
    out
}

/// How surely the WAL receiver of `d` names node `u` as where it streams
/// from: 0 host and port, 1 the port only, 2 not at all.
fn closeness(d: &Data, u: &NodeFacts) -> u8 {
    let named = d.receiver.as_ref().map(|rc| &rc.receiver);
    let (host, port) = u.host_port.rsplit_once(':').unwrap_or((&u.host_port, ""));
    let port_named = named.and_then(|r| r.sender_port).map(|p| p.to_string());
    let host_named = named.and_then(|r| r.sender_host.as_deref());
    match (
        port_named.as_deref() == Some(port),
        host_named == Some(host),
    ) {
        (true, true) => 0,
        (true, false) => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::super::inspect::ReceiverFacts;
    use super::*;
    use crate::health::Receiver;

    #[test]
    fn names_and_announced_names() {
        assert_eq!(announced_name(Some("s1"), "main", 150000).unwrap(), "s1");
        assert_eq!(announced_name(Some(""), "main", 150000).unwrap(), "main");
        assert_eq!(
            announced_name(Some(""), "main", 110000).unwrap(),
            "walreceiver"
        );
        assert_eq!(announced_name(None, "main", 150000), None);
        assert_eq!(standby_name(Some("walreceiver".into()), "h:5432"), "h:5432");
        assert_eq!(standby_name(Some("primary".into()), "h:5432"), "h:5432");
        // A name given in the conninfo wins, up (whatever the receiver
        // announces) or down (nothing announced).
        assert_eq!(node_name(Some("xstb2"), Some("s1".into()), "h:5"), "xstb2");
        assert_eq!(node_name(Some("xstb2"), None, "h:5"), "xstb2");
        assert_eq!(node_name(None, Some("s1".into()), "h:5"), "s1");
        assert_eq!(node_name(None, None, "h:5"), "h:5");
        let taken = vec!["s1".to_string(), "s1#2".to_string()];
        assert_eq!(unique(&taken, "s1".into()), "s1#3");
        assert_eq!(unique(&taken, "s2".into()), "s2");
    }

    fn node(role: Role, host_port: &str, data: Data) -> NodeFacts {
        NodeFacts {
            role,
            target: String::new(),
            host_port: host_port.into(),
            given_addr: None,
            given_name: None,
            data: Ok(data),
            down: false,
        }
    }

    fn sender(name: &str) -> Sender {
        Sender {
            application_name: name.into(),
            state: Some("streaming".into()),
            ..Default::default()
        }
    }

    fn standby(name: &str, from: Option<(&str, i32)>, senders: Vec<Sender>) -> Data {
        Data {
            version_num: 150000,
            in_recovery: true,
            receiver: Some(ReceiverFacts {
                receiver: Receiver {
                    status: Some("streaming".into()),
                    sender_host: from.map(|f| f.0.into()),
                    sender_port: from.map(|f| f.1),
                    ..Default::default()
                },
                application_name: Some(name.into()),
                received_tli: None,
            }),
            senders,
            ..Default::default()
        }
    }

    fn senders_of(facts: &[NodeFacts]) -> Vec<Option<(usize, usize)>> {
        upstreams(facts, Some(0)).iter().map(Link::sender).collect()
    }

    #[test]
    fn the_receivers_named_upstream_settles_a_shared_name() {
        // Two standbys both called "replica": one on the primary (port
        // 5432), one cascading from s1 (port 5433).
        let p = Data {
            version_num: 150000,
            senders: vec![sender("s1"), sender("replica")],
            ..Default::default()
        };
        let facts = [
            node(Role::Primary, "db1:5432", p),
            node(
                Role::Standby,
                "db2:5433",
                standby("s1", Some(("db1", 5432)), vec![sender("replica")]),
            ),
            node(
                Role::Standby,
                "db3:5434",
                standby("replica", Some(("db2", 5433)), vec![]),
            ),
            node(
                Role::Standby,
                "db4:5435",
                standby("replica", Some(("db1", 5432)), vec![]),
            ),
        ];
        let ups = senders_of(&facts);
        assert_eq!(ups, [None, Some((0, 0)), Some((1, 0)), Some((0, 1))]);
        // Without the receiver's word (10, or hidden), the primary goes
        // first and the cascade takes what is left.
        let mut facts = facts;
        for f in &mut facts[1..] {
            if let Ok(d) = &mut f.data {
                d.receiver.as_mut().unwrap().receiver.sender_port = None;
                d.receiver.as_mut().unwrap().receiver.sender_host = None;
            }
        }
        let ups = senders_of(&facts);
        assert_eq!(ups, [None, Some((0, 0)), Some((0, 1)), Some((1, 0))]);
    }
}
