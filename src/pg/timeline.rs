//! Whether a node can stream from a primary, decided as pg_rewind decides
//! it: compare the node's timeline history with the primary's, find the
//! last timeline both went through from the same start, and see whether
//! the node went past the point where the primary left it. follow, rejoin
//! and check all ask this one question, so they can never disagree.

use crate::pg::replication::format_lsn;
use std::path::Path;

/// One side's history: each timeline it went through, oldest first, with
/// the LSN where it left it (none for the current one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    entries: Vec<(u32, Option<u64>)>,
}

impl History {
    /// From the switch points of a history file (`TIMELINE_HISTORY` or
    /// `pg_wal/0000000N.history`: each earlier timeline and where it was
    /// left) and the current timeline. A missing file (timeline 1, or a
    /// history pgrepctl could not read) is an empty list.
    pub fn new(switch_points: &[(u32, u64)], current: u32) -> History {
        let mut entries: Vec<(u32, Option<u64>)> = switch_points
            .iter()
            .filter(|(tli, _)| *tli < current)
            .map(|(tli, lsn)| (*tli, Some(*lsn)))
            .collect();
        entries.push((current, None));
        History { entries }
    }

    pub fn current(&self) -> u32 {
        self.entries.last().map(|e| e.0).unwrap_or(1)
    }

    /// Where timeline `tli` was left in this history, if it was.
    pub fn left_at(&self, tli: u32) -> Option<u64> {
        self.entries.iter().find(|e| e.0 == tli).and_then(|e| e.1)
    }

    fn begin(&self, i: usize) -> u64 {
        if i == 0 {
            0
        } else {
            self.entries[i - 1].1.unwrap_or(u64::MAX)
        }
    }
}

/// Where a node stands relative to a primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    /// Same timeline and not ahead of the primary's flush position: it
    /// streams from where it is.
    SameTimeline,
    /// On a timeline the primary left at `fork`, and not past it: it
    /// follows the primary onto its timeline.
    BeforeFork { timeline: u32, fork: u64 },
    /// It wrote (or replayed) WAL the primary never had: only a rewind or
    /// a new copy brings it back.
    Diverged { reason: String },
}

impl Relation {
    pub fn can_follow(&self) -> bool {
        !matches!(self, Relation::Diverged { .. })
    }
}

/// Decide whether a node on history `node` whose WAL ends at `node_lsn` can
/// stream from a primary on history `primary` whose WAL is flushed up to
/// `primary_flush`.
pub fn relation(node: &History, node_lsn: u64, primary: &History, primary_flush: u64) -> Relation {
    let common = node
        .entries
        .iter()
        .zip(&primary.entries)
        .enumerate()
        .take_while(|(i, (a, b))| a.0 == b.0 && node.begin(*i) == primary.begin(*i))
        .last()
        .map(|(i, _)| i);
    let Some(i) = common else {
        return Relation::Diverged {
            reason: format!(
                "its timeline {} is not in the primary's history (timeline {})",
                node.current(),
                primary.current()
            ),
        };
    };
    let tli = node.entries[i].0;
    let node_last = i + 1 == node.entries.len();
    match (node.entries[i].1, primary.entries[i].1) {
        (None, None) if node_lsn <= primary_flush => Relation::SameTimeline,
        (None, None) => Relation::Diverged {
            reason: format!(
                "it is ahead of the primary on the same timeline {tli} ({} > {})",
                format_lsn(node_lsn),
                format_lsn(primary_flush)
            ),
        },
        (None, Some(fork)) if node_last && node_lsn <= fork => Relation::BeforeFork {
            timeline: tli,
            fork,
        },
        (_, Some(fork)) if node_last => Relation::Diverged {
            reason: format!(
                "it went past the point where the primary left timeline {tli} ({} > {})",
                format_lsn(node_lsn),
                format_lsn(fork)
            ),
        },
        (Some(left), _) => Relation::Diverged {
            reason: format!(
                "it left timeline {tli} at {} for its own timeline {}, which the primary never had",
                format_lsn(left),
                node.current()
            ),
        },
        // The node is on the common timeline and the primary is too: the
        // first arm took it. Anything else means the node's last entry is
        // common and the primary's is not, which the None arms cover.
        (None, _) => Relation::Diverged {
            reason: format!("its history does not match the primary's on timeline {tli}"),
        },
    }
}

/// Where the WAL of a stopped node ends, as pg_rewind judges it: past the
/// start of its latest checkpoint record (a record boundary, so "at or
/// before a fork" holds exactly when that record starts before the fork),
/// or its minimum recovery point if that is later. `None` when it did not
/// shut down cleanly: its WAL may go on past the checkpoint, and only
/// recovery (or pg_rewind, which runs it) can tell how far.
pub fn stopped_end(control: &crate::pg::controldata::ControlData) -> Option<u64> {
    if !control.state.is_clean_shutdown() {
        return None;
    }
    Some((control.checkpoint_lsn + 1).max(control.min_recovery_end_lsn))
}

/// The switch points recorded in the history file of timeline `tli` in a
/// local data directory (none for timeline 1 or a missing file).
pub fn local_switch_points(data_dir: &Path, tli: u32) -> std::io::Result<Vec<(u32, u64)>> {
    if tli <= 1 {
        return Ok(Vec::new());
    }
    let path = data_dir.join("pg_wal").join(format!("{tli:08X}.history"));
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(parse_switch_points(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Lines "TLI<tab>LSN<tab>reason"; comments and blank lines skipped.
pub fn parse_switch_points(text: &str) -> Vec<(u32, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let tli = f.next()?.parse().ok()?;
            let lsn = crate::pg::replication::parse_lsn(f.next()?)?;
            Some((tli, lsn))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 1 << 30;

    fn h(points: &[(u32, u64)], current: u32) -> History {
        History::new(points, current)
    }

    #[test]
    fn same_timeline_behind_or_level_follows() {
        let one = h(&[], 1);
        assert_eq!(relation(&one, G, &one, 2 * G), Relation::SameTimeline);
        assert_eq!(relation(&one, G, &one, G), Relation::SameTimeline);
    }

    #[test]
    fn same_timeline_ahead_is_diverged() {
        let one = h(&[], 1);
        let r = relation(&one, 3 * G, &one, 2 * G);
        assert!(!r.can_follow(), "{r:?}");
        assert!(format!("{r:?}").contains("ahead"), "{r:?}");
    }

    #[test]
    fn old_timeline_at_or_before_fork_follows() {
        let primary = h(&[(1, 2 * G)], 2);
        let node = h(&[], 1);
        for lsn in [G, 2 * G] {
            assert_eq!(
                relation(&node, lsn, &primary, 3 * G),
                Relation::BeforeFork {
                    timeline: 1,
                    fork: 2 * G
                }
            );
        }
    }

    #[test]
    fn old_timeline_past_fork_is_diverged() {
        let primary = h(&[(1, 2 * G)], 2);
        let r = relation(&h(&[], 1), 2 * G + 1, &primary, 3 * G);
        assert!(
            matches!(&r, Relation::Diverged { reason } if reason.contains("went past")),
            "{r:?}"
        );
    }

    #[test]
    fn two_promotions_of_the_same_timeline_are_diverged() {
        // Both promoted from timeline 1 to 2, at different points: the same
        // number, not the same timeline.
        let primary = h(&[(1, 2 * G)], 2);
        let node = h(&[(1, G)], 2);
        let r = relation(&node, G + 10, &primary, 3 * G);
        assert!(!r.can_follow(), "{r:?}");
    }

    #[test]
    fn node_on_its_own_later_timeline_is_diverged() {
        // The node was promoted (timeline 2) and the primary is still on 1.
        let node = h(&[(1, G)], 2);
        let primary = h(&[], 1);
        let r = relation(&node, G + 100, &primary, 3 * G);
        assert!(
            matches!(&r, Relation::Diverged { reason } if reason.contains("own timeline 2")),
            "{r:?}"
        );
    }

    #[test]
    fn a_deeper_history_follows_from_the_common_timeline() {
        // The primary went 1 -> 2 -> 3; the node is on 2, before 3 began.
        let primary = h(&[(1, G), (2, 2 * G)], 3);
        let node = h(&[(1, G)], 2);
        assert_eq!(
            relation(&node, 2 * G - 5, &primary, 4 * G),
            Relation::BeforeFork {
                timeline: 2,
                fork: 2 * G
            }
        );
    }

    #[test]
    fn history_files_parse_with_comments() {
        let text = "# comment\n1\t0/3000158\tno recovery target specified\n\n2\t0/5000000\tat restore point\n";
        assert_eq!(
            parse_switch_points(text),
            vec![(1, 0x3000158), (2, 0x5000000)]
        );
        assert_eq!(h(&parse_switch_points(text), 3).left_at(2), Some(0x5000000));
    }
}
