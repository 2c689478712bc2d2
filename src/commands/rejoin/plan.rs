//! The decision, pure: follow as it is, rewind, or copy anew. Made from
//! the two histories (`pg::timeline::relation`, as pg_rewind decides),
//! whether the node shut down cleanly, `--rewind`, and the size of what
//! each way moves.

use super::inspect::{Facts, Node, Stopped};
use super::{Args, RewindMode};
use crate::error::{Code, Error, Result};
use crate::pg::timeline::Relation;
use crate::report::Outcome;
use crate::units::human_bytes;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decision {
    /// Already a standby streaming from the new primary.
    Nothing,
    /// It never went past the fork point: configure it as a standby.
    Follow { why: String },
    /// pg_rewind, after crash recovery when it did not shut down cleanly
    /// (pg_rewind needs a clean shutdown, and says itself when it finds
    /// nothing to rewind).
    Rewind { why: String, crash_recovery: bool },
    /// A new copy with clone-standby, the old directory kept aside.
    Reclone { why: String },
}

impl Decision {
    pub fn report_into(&self, o: &mut Outcome) {
        o.detail("decision", self);
    }
}

pub fn decide(args: &Args, facts: &Facts) -> Result<Decision> {
    let s = match &facts.node {
        Node::Following => return Ok(Decision::Nothing),
        // inspect lets this through only with --reclone-on-failure.
        Node::Unreadable { why } => {
            return Ok(Decision::Reclone {
                why: format!(
                    "{why}: it cannot be judged here, so it is copied anew (--reclone-on-failure)"
                ),
            });
        }
        Node::Stopped(s) => s,
    };
    let has_rewind = facts.cluster.bindir.tool("pg_rewind").is_file();
    decide_for(
        args.rewind,
        args.reclone_on_failure,
        s,
        has_rewind,
        &facts.cluster.bindir.path.display().to_string(),
    )
}

/// The decision for a stopped node. The rule for `--rewind auto`: a
/// rewind reads at least every block the node changed since the fork
/// (about the WAL it wrote since, often much more), a copy reads the data
/// directory once; when the WAL written since the fork is larger than the
/// data directory, the copy moves less.
pub fn decide_for(
    mode: RewindMode,
    reclone_on_failure: bool,
    s: &Stopped,
    has_rewind: bool,
    bindir: &str,
) -> Result<Decision> {
    let diverged = match &s.relation {
        Some(r) if r.can_follow() => {
            return Ok(Decision::Follow {
                why: match r {
                    Relation::SameTimeline => "it is on the primary's timeline and not ahead of it: no rewind needed".into(),
                    _ => "its WAL ends at or before the point where the new primary's timeline began: no rewind needed".into(),
                },
            });
        }
        Some(Relation::Diverged { reason }) => reason.clone(),
        _ => "it was not shut down cleanly, so only crash recovery and pg_rewind can tell how far its WAL goes".into(),
    };
    if mode == RewindMode::Never {
        return Err(Error::new(
            Code::RewindNeeded,
            format!("the node needs a rewind: {diverged}"),
        )
        .hint("run with --rewind auto, or re-clone it (pgrepctl clone-standby --force)"));
    }
    if !has_rewind {
        let why = format!("{bindir} has no pg_rewind");
        if reclone_on_failure {
            return Ok(Decision::Reclone {
                why: format!("{diverged}; {why}, so it is copied anew (--reclone-on-failure)"),
            });
        }
        return Err(Error::new(
            Code::RewindNotPossible,
            format!("the node needs a rewind ({diverged}), and {why}"),
        )
        .hint("install this major's pg_rewind (or pass --bindir), or pass --reclone-on-failure to copy the node anew (the old directory is kept aside)"));
    }
    let size = human_bytes(s.data_bytes);
    let why = match s.divergence() {
        Some(d) if d > s.data_bytes => {
            return Ok(Decision::Reclone {
                why: format!(
                    "{diverged}; it wrote {} of WAL since the fork, more than its {size} data directory, so a new copy moves less than a rewind",
                    human_bytes(d)
                ),
            });
        }
        Some(d) => format!(
            "{diverged}; {}{} of WAL since the fork against a {size} data directory: a rewind copies only the blocks changed since",
            if s.end.is_none() { "at least " } else { "" },
            human_bytes(d)
        ),
        None => {
            format!("{diverged}; a rewind (how far it diverged is not known until pg_rewind looks)")
        }
    };
    Ok(Decision::Rewind {
        why,
        crash_recovery: s.end.is_none(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::controldata::{ClusterState, ControlData};

    const M: u64 = 1 << 20;

    fn node(end: Option<u64>, relation: Option<Relation>, fork: Option<u64>) -> Stopped {
        Stopped {
            control: ControlData {
                system_identifier: 1,
                state: if end.is_some() {
                    ClusterState::ShutDown
                } else {
                    ClusterState::InProduction
                },
                checkpoint_lsn: 100 * M,
                redo_lsn: 100 * M,
                timeline: 1,
                min_recovery_end_lsn: 0,
                min_recovery_end_timeline: 0,
                data_checksums: false,
                wal_log_hints: true,
            },
            end,
            relation,
            fork,
            data_bytes: 500 * M,
        }
    }

    fn diverged() -> Option<Relation> {
        Some(Relation::Diverged {
            reason: "it went past".into(),
        })
    }

    #[test]
    fn a_node_before_the_fork_follows() {
        let s = node(
            Some(10 * M),
            Some(Relation::BeforeFork {
                timeline: 1,
                fork: 20 * M,
            }),
            Some(20 * M),
        );
        let d = decide_for(RewindMode::Never, false, &s, false, "/b").unwrap();
        assert!(matches!(d, Decision::Follow { .. }), "{d:?}");
    }

    #[test]
    fn never_refuses_a_diverged_or_unclean_node() {
        for s in [
            node(Some(30 * M), diverged(), Some(20 * M)),
            node(None, None, Some(20 * M)),
        ] {
            let e = decide_for(RewindMode::Never, true, &s, true, "/b").unwrap_err();
            assert_eq!(e.code, Code::RewindNeeded);
            assert!(e.hint.unwrap().contains("--rewind auto"));
        }
    }

    #[test]
    fn auto_rewinds_a_small_divergence_and_recovers_an_unclean_node_first() {
        let d = decide_for(
            RewindMode::Auto,
            false,
            &node(Some(30 * M), diverged(), Some(20 * M)),
            true,
            "/b",
        )
        .unwrap();
        assert!(
            matches!(&d, Decision::Rewind { crash_recovery: false, why } if why.contains("10.0MB of WAL since the fork")),
            "{d:?}"
        );
        let d = decide_for(
            RewindMode::Auto,
            false,
            &node(None, None, Some(20 * M)),
            true,
            "/b",
        )
        .unwrap();
        assert!(
            matches!(&d, Decision::Rewind { crash_recovery: true, why } if why.contains("at least")),
            "{d:?}"
        );
    }

    #[test]
    fn auto_copies_when_the_divergence_outgrows_the_directory() {
        let mut s = node(Some(900 * M), diverged(), Some(20 * M));
        s.control.checkpoint_lsn = 900 * M;
        let d = decide_for(RewindMode::Auto, false, &s, true, "/b").unwrap();
        assert!(
            matches!(&d, Decision::Reclone { why } if why.contains("more than")),
            "{d:?}"
        );
    }

    #[test]
    fn no_pg_rewind_refuses_unless_a_reclone_is_allowed() {
        let s = node(Some(30 * M), diverged(), Some(20 * M));
        let e = decide_for(RewindMode::Auto, false, &s, false, "/usr/lib/pg/bin").unwrap_err();
        assert_eq!(e.code, Code::RewindNotPossible);
        assert!(
            e.message.contains("/usr/lib/pg/bin has no pg_rewind"),
            "{}",
            e.message
        );
        let d = decide_for(RewindMode::Auto, true, &s, false, "/b").unwrap();
        assert!(matches!(d, Decision::Reclone { .. }), "{d:?}");
    }
}
