//! Pure: facts and thresholds in, a health report out. No I/O, so every
//! rule here is unit-tested without a server.
//!
//! The replication chain: each listed standby is matched to a wal sender
//! of a listed node, the primary first, then the other standbys (a
//! cascading standby streams from a standby's wal sender). That node is its
//! upstream; each link is judged from both ends, and lag is measured
//! against the root (the primary's current WAL position) when the primary
//! answered.

mod archive;
mod nodes;
mod pairs;
mod primary;
#[cfg(test)]
mod tests;
mod timeline;
mod tls;

pub use archive::ArchiveLimits;
pub use nodes::paused_advice;
pub use tls::{TlsLimits, expiry_status, rfc3339};

use super::chain::{Link, names, upstreams};
use super::inspect::{Data, NodeFacts};
use crate::health::render::{human_bytes, human_seconds};
use crate::health::{Report, Role, Status, Thresholds};

/// Codes of findings (beside the error codes of nodes that did not answer).
pub use crate::health::finding as codes;
use codes::*;

/// What `check` was asked beside the nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Options {
    pub thresholds: Thresholds,
    /// `--expect-standbys`: CRITICAL when fewer wal senders stream.
    pub expect_standbys: Option<u32>,
    /// The archiver's thresholds.
    pub archive: ArchiveLimits,
    /// `--require-ssl` and the certificate's thresholds.
    pub tls: TlsLimits,
}

/// The status of a node that could not be inspected: CRITICAL when it is
/// down or unreachable (a node the user listed is not serving), UNKNOWN
/// when it answered but would not tell (password, hba, privilege).
pub fn unreachable_status(down: bool) -> Status {
    if down {
        Status::Critical
    } else {
        Status::Unknown
    }
}

/// A node that could not be inspected, as a finding: its error, with the
/// status [`unreachable_status`] gives it (returned).
pub fn unreachable_finding(
    r: &mut Report,
    name: &str,
    down: bool,
    e: &crate::error::Error,
) -> Status {
    let status = unreachable_status(down);
    r.problem(
        status,
        name,
        &e.code.as_str(),
        e.message.clone(),
        e.hint.clone(),
    );
    status
}

/// A node that is not what it was given as (`role`): a CRITICAL finding,
/// and true. A node in its role: false.
pub fn wrong_role(r: &mut Report, name: &str, role: Role, in_recovery: bool) -> bool {
    match (role, in_recovery) {
        (Role::Primary, true) => r.problem(
            Status::Critical,
            name,
            NOT_A_PRIMARY,
            "is in recovery (a standby), not a primary",
            Some("give the primary's connection string to --primary".into()),
        ),
        (Role::Standby, false) => r.problem(
            Status::Critical,
            name,
            NOT_A_STANDBY,
            "is not in recovery: it is a primary, not a standby",
            Some("if it was promoted on purpose, it is the primary now: check it with --primary; otherwise (an old primary still up, or a standby promoted by mistake) stop it and run pgrepctl rejoin on its host".into()),
        ),
        _ => return false,
    }
    true
}

/// The fix for a hot-standby setting below the primary's. pgrepctl
/// clone-standby wrote the standby's values into postgresql.auto.conf,
/// which overrides postgresql.conf, and a rerun raises them there.
pub fn setting_fix(name: &str, primary_value: i64) -> String {
    format!(
        "rerun pgrepctl clone-standby (same --primary and -D) on the standby host: it raises {name} to {primary_value} (the primary's value) in the data directory's config and restarts the standby; a value set in postgresql.conf does not help when postgresql.auto.conf sets it too"
    )
}

fn lag_findings(
    r: &mut Report,
    t: &Thresholds,
    subject: &str,
    bytes: Option<i64>,
    secs: Option<f64>,
) -> Status {
    let mut st = Status::Ok;
    if let Some(b) = bytes {
        let s = t.bytes_status(b);
        let limit = if s == Status::Critical {
            t.crit_bytes
        } else {
            t.warn_bytes
        };
        let shown = (human_bytes(b), crate::units::format_bytes(limit));
        st = st.worst(lag_finding(r, subject, s, LAG_BYTES, shown));
    }
    if let Some(x) = secs {
        let s = t.seconds_status(x);
        let limit = if s == Status::Critical {
            t.crit_seconds
        } else {
            t.warn_seconds
        };
        let shown = (human_seconds(x), human_seconds(limit));
        st = st.worst(lag_finding(r, subject, s, LAG_TIME, shown));
    }
    st
}

/// A lag over a threshold (`s` not OK) as a finding; `shown`: the lag
/// and the threshold, as people read them.
fn lag_finding(
    r: &mut Report,
    subject: &str,
    s: Status,
    code: &str,
    (lag, limit): (String, String),
) -> Status {
    if s != Status::Ok {
        r.problem(
            s,
            subject,
            code,
            format!("replay lags {lag} behind (threshold {limit})"),
            Some("check the standby's load, disk and network, and whether replay is paused or blocked by queries (max_standby_streaming_delay)".into()),
        );
    }
    s
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn add_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x + y),
        (x, None) => x,
        (None, y) => y,
    }
}

/// A time lag for a link whose byte lag is known: nothing pending means no
/// lag, even when PostgreSQL shows no `replay_lag` (it clears it when idle).
fn time_lag(bytes: Option<i64>, secs: Option<f64>) -> Option<f64> {
    match (bytes, secs) {
        (_, Some(s)) => Some(s),
        (Some(b), None) if b <= 0 => Some(0.0),
        _ => None,
    }
}

/// A hot-standby setting of `d` below the primary's `p`: (name, standby's,
/// primary's).
fn settings_too_low(p: &Data, d: &Data) -> Vec<(&'static str, i64, i64)> {
    crate::pg::standby_limits::lower(d.version_num, &d.settings, &p.settings)
}

/// What every part of the evaluation reads: the facts, the nodes' names,
/// the primary (when it answered and is one), the root of the chain's
/// WAL position, each standby's link and its upstream `(node, sender
/// index)` when that is known.
struct Chain<'a> {
    facts: &'a [NodeFacts],
    names: Vec<String>,
    primary: Option<(usize, &'a Data)>,
    root_lsn: Option<String>,
    links: Vec<Link>,
    ups: Vec<Option<(usize, usize)>>,
    t: &'a Thresholds,
}

impl<'a> Chain<'a> {
    fn new(facts: &'a [NodeFacts], t: &'a Thresholds) -> Chain<'a> {
        let primary: Option<(usize, &Data)> = facts
            .iter()
            .enumerate()
            .find(|(_, f)| f.role == Role::Primary)
            .and_then(|(i, f)| f.data.as_ref().ok().map(|d| (i, d)))
            .filter(|(_, d)| !d.in_recovery);
        let links = upstreams(facts, primary.map(|(i, _)| i));
        Chain {
            facts,
            names: names(facts),
            primary,
            root_lsn: primary.and_then(|(_, p)| p.wal_lsn.clone()),
            ups: links.iter().map(Link::sender).collect(),
            links,
            t,
        }
    }

    fn is_primary(&self, i: usize) -> bool {
        Some(i) == self.primary.map(|(p, _)| p)
    }

    /// The name of node `i`'s upstream, when it has one among the nodes.
    fn upstream_name(&self, i: usize) -> Option<String> {
        self.ups[i].map(|(u, _)| self.names[u].clone())
    }
}

/// Two nodes given that are one server (the same system identifier,
/// postmaster start time and port, whatever address reached it): a usage
/// error, since the rest of the report would judge one server as two (a
/// primary given as --standby too would look like a split brain).
pub fn same_server(facts: &[NodeFacts]) -> Option<crate::error::Error> {
    let flag = |f: &NodeFacts| match f.role {
        Role::Primary => "--primary",
        Role::Standby => "--standby",
    };
    for (j, b) in facts.iter().enumerate() {
        let Some(idb) = b.data.as_ref().ok().and_then(|d| d.identity.as_ref()) else {
            continue;
        };
        let first = facts[..j]
            .iter()
            .find(|a| a.data.as_ref().ok().and_then(|d| d.identity.as_ref()) == Some(idb));
        if let Some(a) = first {
            return Some(
                crate::error::Error::new(
                    crate::error::Code::ConflictingFlags,
                    format!(
                        "{} '{}' and {} '{}' are the same server (system identifier {}, port {}, started {}): one node given twice",
                        flag(a),
                        a.target,
                        flag(b),
                        b.target,
                        idb.system_identifier,
                        idb.port,
                        idb.started
                    ),
                )
                .hint("give each node once: the primary with --primary, each standby (a server in recovery) with --standby"),
            );
        }
    }
    None
}

/// Two or more nodes out of recovery: whatever role they were given, each
/// takes writes the others never see. Named as what it is, on every one,
/// with each one's timeline: after a promotion the promoted node is on a
/// newer timeline than the old primary that still runs.
fn split_brain(r: &mut Report) {
    let writable: Vec<(String, Option<u32>)> = r
        .nodes
        .iter()
        .filter(|n| n.in_recovery == Some(false))
        .map(|n| (n.name.clone(), n.timeline))
        .collect();
    if writable.len() < 2 {
        return;
    }
    let names: Vec<String> = writable.iter().map(|(n, _)| n.clone()).collect();
    let shown: Vec<String> = writable
        .iter()
        .map(|(n, t)| match t {
            Some(t) => format!("{n} (timeline {t})"),
            None => n.clone(),
        })
        .collect();
    r.problem(
        Status::Critical,
        &names.join(", "),
        SPLIT_BRAIN,
        format!(
            "split brain: {} are all primaries (not in recovery), each taking writes the others never see",
            shown.join(" and ")
        ),
        Some("stop the one that must not take writes now (after a promotion, the old primary: the one on the older timeline); keep the other as the primary and make the stopped one a standby again with pgrepctl rejoin -D … --primary … on its host (or clone-standby --force from the primary you keep)".into()),
    );
    for n in r.nodes.iter_mut().filter(|n| n.in_recovery == Some(false)) {
        n.status = n.status.worst(Status::Critical);
    }
}

pub fn evaluate(facts: &[NodeFacts], o: &Options) -> Report {
    let t = &o.thresholds;
    let mut r = Report::new("check");
    r.thresholds = Some(*t);
    let chain = Chain::new(facts, t);
    for i in 0..facts.len() {
        let node = nodes::node(&mut r, &chain, i);
        r.nodes.push(node);
    }
    split_brain(&mut r);
    timeline::behind(&mut r, &chain);
    let (mut pairs, secs_of) = pairs::standby_pairs(&mut r, &chain);
    let senders = pairs::unclaimed_senders(&mut r, &chain, &secs_of, &mut pairs);
    if senders.hidden {
        r.warnings.push("wal sender details are hidden from the connecting role: connect as a superuser or a member of pg_monitor".into());
    }
    let mut slots = vec![];
    if let Some((pi, p)) = chain.primary {
        let st = primary::expectations(&mut r, &chain.names[pi], p, o.expect_standbys, &senders);
        r.nodes[pi].status = r.nodes[pi].status.worst(st);
        slots = primary::slots(&mut r, p);
        let before = r.problems.len();
        r.archive = archive::archiver(&mut r, &chain.names[pi], p, &o.archive).map(Box::new);
        let st = r.problems[before..]
            .iter()
            .fold(Status::Ok, |s, x| s.worst(x.status));
        r.nodes[pi].status = r.nodes[pi].status.worst(st);
    }
    tls::links(&mut r, &mut pairs, &o.tls);
    let certificates = tls::certificates(&mut r, &chain, &o.tls);
    r.certificates = (!certificates.is_empty()).then_some(certificates);
    r.pairs = Some(pairs);
    r.slots = Some(slots);
    r.finish()
}
