//! Timelines: which node leads (the writable node on the newest timeline)
//! and whether each standby on an older timeline can still follow it.
//! The question is `pg::timeline::relation`'s, the one follow and rejoin
//! ask, so check never tells a DBA something they would contradict.
//!
//! check sees the histories only through SQL: `pg_read_file` of the
//! history file, which a monitoring role usually may not call. Without
//! both histories it decides from what it sees: a standby on an older
//! timeline that streams is catching up (it switches timeline when replay
//! reaches the switch point; a slow one shows as lag, and one streaming
//! from a node not given, such as an old primary still up, as
//! STANDBY_NOT_MATCHED), so it is not reported here; one that does not
//! stream will not get there by itself, and rejoin is the step that
//! decides what it needs, so it is CRITICAL with rejoin as the fix.

use super::super::inspect::{Data, NodeFacts};
use super::Chain;
use super::codes::*;
use crate::health::{Report, Status};
use crate::pg::replication::parse_lsn;
use crate::pg::timeline::{History, Relation, relation};

/// The node every standby should end up following: the writable node on
/// the newest timeline (after a promotion, the promoted one, even while
/// the old primary still runs), the first given on a tie (the primary).
pub(super) fn leader(facts: &[NodeFacts]) -> Option<(usize, &Data)> {
    let mut best: Option<(usize, &Data)> = None;
    for (i, f) in facts.iter().enumerate() {
        let Ok(d) = &f.data else { continue };
        if d.in_recovery || d.timeline.is_none() {
            continue;
        }
        if best.is_none_or(|(_, b)| d.timeline > b.timeline) {
            best = Some((i, d));
        }
    }
    best
}

/// Each node in recovery on an older timeline than the leader's: a
/// finding when it cannot follow, or can but does not stream; its node's
/// status takes it.
pub(super) fn behind(r: &mut Report, chain: &Chain) {
    let Some((li, l)) = leader(chain.facts) else {
        return;
    };
    let Some(m) = l.timeline else { return };
    for (i, f) in chain.facts.iter().enumerate() {
        let Ok(d) = &f.data else { continue };
        let Some(n) = d.timeline.filter(|n| d.in_recovery && *n < m) else {
            continue;
        };
        let name = &chain.names[i];
        // No receiver: not streaming. A receiver whose status is hidden
        // from the role is reported UNKNOWN already: nothing to add.
        let streaming = match &d.receiver {
            None => false,
            Some(rc) => match rc.receiver.status.as_deref() {
                None => continue,
                Some(s) => s == "streaming",
            },
        };
        let before = match chain.names[li].as_str() {
            "primary" => format!("on timeline {n}, the primary is on {m}"),
            lead => format!("on timeline {n}, the primary ({lead}) is on {m}"),
        };
        let (status, code, message, hint) = match (decide(d, l), streaming) {
            (Some(Relation::Diverged { reason }), _) => (
                Status::Critical,
                TIMELINE_DIVERGED,
                format!("{before}, and it cannot follow it: {reason}"),
                rejoin_fix(chain, i, li),
            ),
            (Some(_), true) | (None, true) => continue,
            (Some(_), false) => (
                Status::Warning,
                TIMELINE_BEHIND,
                format!(
                    "{before}; it has not gone past the switch point, so it can follow it, but it does not stream"
                ),
                format!(
                    "on the standby's host: pgrepctl follow -D {} --primary '{}'",
                    data_dir(d),
                    conninfo(chain.facts, li)
                ),
            ),
            (None, false) => (
                Status::Critical,
                TIMELINE_DIVERGED,
                format!("{before}, and it does not stream: run pgrepctl rejoin"),
                rejoin_fix(chain, i, li),
            ),
        };
        r.problem(status, name, code, message, Some(hint));
        r.nodes[i].status = r.nodes[i].status.worst(status);
    }
}

/// The relation of standby `d` to leader `l`, when both histories and
/// positions are visible. The standby's position is the later of what it
/// received and replayed: WAL it received on its timeline is in its
/// pg_wal and gets replayed before it learns of the new timeline.
fn decide(d: &Data, l: &Data) -> Option<Relation> {
    let (nt, np) = d.history.as_ref().filter(|(t, _)| Some(*t) == d.timeline)?;
    let (pt, pp) = l.history.as_ref().filter(|(t, _)| Some(*t) == l.timeline)?;
    let rp = d.replay.as_ref()?;
    let lsn = |s: &Option<String>| s.as_deref().and_then(parse_lsn);
    let node_lsn = lsn(&rp.receive_lsn).max(lsn(&rp.replay_lsn))?;
    let flush = lsn(&l.wal_lsn)?;
    Some(relation(
        &History::new(np, *nt),
        node_lsn,
        &History::new(pp, *pt),
        flush,
    ))
}

fn data_dir(d: &Data) -> &str {
    d.data_directory.as_deref().unwrap_or("PGDATA")
}

/// `host=… port=…` of node `i` as given (the monitoring user left out:
/// rejoin and follow connect as a role that may replicate).
fn conninfo(facts: &[NodeFacts], i: usize) -> String {
    let hp = &facts[i].host_port;
    match hp.rsplit_once(':') {
        Some((h, p)) => format!("host={h} port={p}"),
        None => format!("host={hp}"),
    }
}

/// The fix for a standby that cannot follow the leader: rejoin, which
/// rewinds it (or re-clones it) onto the leader's timeline.
fn rejoin_fix(chain: &Chain, i: usize, li: usize) -> String {
    let d = chain.facts[i].data.as_ref().ok();
    format!(
        "on the standby's host, stop it and run pgrepctl rejoin -D {} --primary '{}' (with the user that replicates): it rewinds or re-clones it onto the primary's timeline",
        d.map(data_dir).unwrap_or("PGDATA"),
        conninfo(chain.facts, li)
    )
}
