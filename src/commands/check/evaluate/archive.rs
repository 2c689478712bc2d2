//! The primary's WAL archiver: failing (the last failure newer than the
//! last success), a backlog of `.ready` files (which also catches the
//! failures the server does not count: a command exiting above 125 or
//! killed by a signal), stale (WAL waits and nothing was archived for
//! several archive_timeouts), and `--archive-probe`. With archive_mode off
//! there is nothing to judge: no findings, unless the probe was asked.

use super::super::archive::{ArchiverFacts, ProbeFacts};
use super::super::inspect::Data;
use super::codes::*;
use super::human_seconds;
use crate::health::{Archive, ArchiveProbe, Report, Status};

/// `--archive-ready-warn`, `--archive-ready-crit`, `--archive-crit`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArchiveLimits {
    pub ready_warn: u32,
    pub ready_crit: u32,
    /// Failing for longer than this is CRITICAL.
    pub crit_after_seconds: f64,
}

impl Default for ArchiveLimits {
    /// 16 and 128 `.ready` files, as repmgr's `archive-ready` check; 5
    /// minutes of failures.
    fn default() -> Self {
        ArchiveLimits {
            ready_warn: 16,
            ready_crit: 128,
            crit_after_seconds: 300.0,
        }
    }
}

/// Multiples of archive_timeout after which WAL that waits is stale.
const STALE_WARN: f64 = 3.0;
const STALE_CRIT: f64 = 10.0;

/// The archiver of the primary `p` (named `name`) with its findings added
/// to `r`; None when archive_mode is off.
pub(super) fn archiver(r: &mut Report, name: &str, p: &Data, l: &ArchiveLimits) -> Option<Archive> {
    let Some(a) = &p.archiver else {
        if let Some(probe) = &p.archive_probe {
            let st = probe_finding(r, name, probe, false);
            r.problem(
                st.worst(Status::Critical),
                name,
                ARCHIVE_PROBE_FAILED,
                "archive_mode is off: WAL is not archived",
                Some("set archive_mode = on and an archive_command (pgrepctl init-master --archive-dir DIR does both), then restart the primary".into()),
            );
        }
        return None;
    };
    let mut st = failing(r, name, a, l);
    st = st.worst(backlog(r, name, a, l));
    // Stale is for an archiver that neither succeeds nor fails (a hung
    // command); a failing one is already explained.
    if !a.failing {
        st = st.worst(stale(r, name, a));
    }
    if a.ready.is_none() {
        r.warnings.push(format!("{name}: the .ready files in pg_wal/archive_status are hidden from the connecting role, so the archive backlog is unknown: connect as a superuser or (12+) a member of pg_monitor"));
    }
    let probe = p.archive_probe.as_ref().map(|pr| {
        let status = probe_finding(r, name, pr, true);
        st = st.worst(status);
        ArchiveProbe {
            segment: pr.segment.clone(),
            archived: pr.archived,
            waited_seconds: pr.waited_seconds,
            status,
        }
    });
    Some(Archive {
        node: name.to_string(),
        archive_mode: a.mode.clone(),
        archive_timeout_seconds: a.timeout_seconds,
        archived_count: a.archived_count,
        failed_count: a.failed_count,
        last_archived_wal: a.last_archived_wal.clone(),
        last_archived_age_seconds: a.last_archived_age,
        last_failed_wal: a.last_failed_wal.clone(),
        last_failed_age_seconds: a.last_failed_age,
        failing: a.failing,
        ready_count: a.ready,
        oldest_ready_age_seconds: a.oldest_ready_age,
        ready_warn: l.ready_warn,
        ready_crit: l.ready_crit,
        probe,
        status: st,
    })
}

/// `wal` and how long ago, as a person reads it: `000…05 (3.0s ago)`.
fn when(wal: Option<&str>, age: Option<f64>) -> String {
    match (wal, age) {
        (Some(w), Some(a)) => format!("{w} ({} ago)", human_seconds(a)),
        (Some(w), None) => w.to_string(),
        _ => "never".into(),
    }
}

/// How long the archiver has been failing: since the oldest `.ready`
/// file (the segment it keeps retrying) when known, else since the last
/// success, else since its counters started.
pub fn failing_for(a: &ArchiverFacts) -> Option<f64> {
    a.oldest_ready_age.or(a.last_archived_age).or(a.since_start)
}

/// ARCHIVE_FAILING: WARNING, CRITICAL when failing longer than the limit
/// or with the critical number of `.ready` files.
fn failing(r: &mut Report, name: &str, a: &ArchiverFacts, l: &ArchiveLimits) -> Status {
    if !a.failing {
        return Status::Ok;
    }
    let since = failing_for(a);
    let long = since.is_some_and(|s| s > l.crit_after_seconds);
    let piled = a.ready.is_some_and(|n| n >= i64::from(l.ready_crit));
    let st = if long || piled {
        Status::Critical
    } else {
        Status::Warning
    };
    let duration = since
        .map(|s| format!(" for {}", human_seconds(s)))
        .unwrap_or_default();
    r.problem(
        st,
        name,
        ARCHIVE_FAILING,
        format!(
            "WAL archiving is failing{duration}: last failure {}, last success {} ({} failed, {} archived since the statistics were reset)",
            when(a.last_failed_wal.as_deref(), a.last_failed_age),
            when(a.last_archived_wal.as_deref(), a.last_archived_age),
            a.failed_count,
            a.archived_count
        ),
        Some("read the primary's log for \"archive command failed\" and fix archive_command or its destination (mounted, writable by the server's OS user, not full); until it succeeds, WAL piles up in pg_wal".into()),
    );
    st
}

/// ARCHIVE_BACKLOG: `.ready` files at or over the thresholds.
fn backlog(r: &mut Report, name: &str, a: &ArchiverFacts, l: &ArchiveLimits) -> Status {
    let Some(n) = a.ready else {
        return Status::Ok;
    };
    let (st, limit) = if n >= i64::from(l.ready_crit) {
        (Status::Critical, l.ready_crit)
    } else if n >= i64::from(l.ready_warn) {
        (Status::Warning, l.ready_warn)
    } else {
        return Status::Ok;
    };
    let oldest = a
        .oldest_ready_age
        .map(|s| format!(", the oldest for {}", human_seconds(s)))
        .unwrap_or_default();
    r.problem(
        st,
        name,
        ARCHIVE_BACKLOG,
        format!("{n} WAL segments wait to be archived (.ready in pg_wal/archive_status{oldest}; threshold {limit})"),
        Some("the archiver does not keep up, or archive_command fails in a way the server does not count (a missing program exits 127, a signal kills it): read the primary's log; pg_wal grows until the segments are archived".into()),
    );
    st
}

/// Whether WAL waits to be archived: `.ready` files when they are
/// known, else the primary writes a later WAL file than the last one
/// archived.
pub fn wal_waits(a: &ArchiverFacts) -> bool {
    match a.ready {
        Some(n) => n > 0,
        None => match (&a.current_wal, &a.last_archived_wal) {
            (Some(cur), Some(last)) => cur.as_str() > last.get(..24).unwrap_or(last),
            _ => false,
        },
    }
}

/// ARCHIVE_STALE: with archive_timeout set, WAL waiting, and the last
/// archived segment older than 3 (WARNING) or 10 (CRITICAL) times it.
/// Nothing archived yet: not judged (failing and backlog still are).
fn stale(r: &mut Report, name: &str, a: &ArchiverFacts) -> Status {
    let (Some(t), Some(age)) = (a.timeout_seconds.filter(|t| *t > 0.0), a.last_archived_age) else {
        return Status::Ok;
    };
    if !wal_waits(a) {
        return Status::Ok;
    }
    let st = if age > STALE_CRIT * t {
        Status::Critical
    } else if age > STALE_WARN * t {
        Status::Warning
    } else {
        return Status::Ok;
    };
    r.problem(
        st,
        name,
        ARCHIVE_STALE,
        format!(
            "WAL waits to be archived, and the last segment archived, {}, was archived {} ago: {} times archive_timeout ({})",
            a.last_archived_wal.as_deref().unwrap_or("?"),
            human_seconds(age),
            (age / t).floor(),
            human_seconds(t)
        ),
        Some("the archiver is stuck or archive_command hangs (a hung network mount?): look for the archiver process and its child on the primary, and read the primary's log".into()),
    );
    st
}

/// The probe's finding, and its status: OK when archived; CRITICAL when
/// not archived in time or the switch failed; UNKNOWN when the role may
/// not switch WAL. `archiving`: archive_mode is on (else the caller says
/// so, and a switch that worked is not news).
fn probe_finding(r: &mut Report, name: &str, p: &ProbeFacts, archiving: bool) -> Status {
    if let Some(e) = &p.error {
        let st = if p.denied {
            Status::Unknown
        } else {
            Status::Critical
        };
        let hint = if p.denied {
            "connect as a superuser, or GRANT EXECUTE ON FUNCTION pg_switch_wal() TO the monitoring role".to_string()
        } else {
            e.hint.clone().unwrap_or_default()
        };
        r.problem(
            st,
            name,
            ARCHIVE_PROBE_FAILED,
            format!("the archive probe could not switch WAL: {}", e.message),
            Some(hint),
        );
        return st;
    }
    if p.archived || !archiving {
        return Status::Ok;
    }
    let seg = p.segment.as_deref().unwrap_or("the segment");
    r.problem(
        Status::Critical,
        name,
        ARCHIVE_PROBE_FAILED,
        format!(
            "{seg} (closed by pg_switch_wal()) was not archived within {}: last archived {}, last failed {}",
            human_seconds(p.waited_seconds),
            p.last_archived_wal.as_deref().unwrap_or("none"),
            p.last_failed_wal.as_deref().unwrap_or("none"),
        ),
        Some("read the primary's log for archive_command's errors; a slow archive may need a longer --timeout".into()),
    );
    Status::Critical
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    /// An archiver that archived 10 segments, the last 5 s ago, none
    /// waiting, archive_timeout 60 s.
    fn healthy() -> ArchiverFacts {
        ArchiverFacts {
            mode: "on".into(),
            timeout_seconds: Some(60.0),
            archived_count: 10,
            last_archived_wal: Some("000000010000000000000009".into()),
            last_archived_age: Some(5.0),
            since_start: Some(3600.0),
            current_wal: Some("00000001000000000000000A".into()),
            ready: Some(0),
            ..Default::default()
        }
    }

    fn failing_now(age_of_success: f64) -> ArchiverFacts {
        ArchiverFacts {
            failed_count: 3,
            last_failed_wal: Some("00000001000000000000000A".into()),
            last_failed_age: Some(1.0),
            last_archived_age: Some(age_of_success),
            failing: true,
            ready: Some(1),
            ..healthy()
        }
    }

    fn judge(a: Option<ArchiverFacts>, probe: Option<ProbeFacts>) -> (Report, Option<Archive>) {
        let d = Data {
            archiver: a,
            archive_probe: probe,
            ..Default::default()
        };
        let mut r = Report::new("check");
        let out = archiver(&mut r, "primary", &d, &ArchiveLimits::default());
        (r, out)
    }

    fn codes(r: &Report) -> Vec<(&str, Status)> {
        r.problems
            .iter()
            .map(|p| (p.code.as_str(), p.status))
            .collect()
    }

    #[test]
    fn archive_mode_off_has_no_findings() {
        let (r, a) = judge(None, None);
        assert!(a.is_none());
        assert!(r.problems.is_empty() && r.warnings.is_empty());
    }

    #[test]
    fn a_healthy_archiver_is_ok_with_its_counts() {
        let (r, a) = judge(Some(healthy()), None);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let a = a.unwrap();
        assert_eq!(a.status, Status::Ok);
        assert_eq!((a.archived_count, a.ready_count), (10, Some(0)));
        assert_eq!((a.ready_warn, a.ready_crit), (16, 128));
        assert!(a.probe.is_none());
    }

    #[test]
    fn failing_warns_then_is_critical() {
        let (r, a) = judge(Some(failing_now(30.0)), None);
        assert_eq!(codes(&r), [(ARCHIVE_FAILING, Status::Warning)]);
        assert_eq!(a.unwrap().status, Status::Warning);
        let m = &r.problems[0].message;
        assert!(m.contains("failing for 30.0s"), "{m}");
        assert!(m.contains("(3 failed, 10 archived"), "{m}");
        // Longer than --archive-crit (5 min) since the last success.
        let (r, _) = judge(Some(failing_now(301.0)), None);
        assert_eq!(codes(&r), [(ARCHIVE_FAILING, Status::Critical)]);
        // The oldest .ready file dates the failure better than the last
        // success (which may be from before an idle hour).
        let recent = ArchiverFacts {
            oldest_ready_age: Some(20.0),
            ..failing_now(3600.0)
        };
        let (r, _) = judge(Some(recent), None);
        assert_eq!(codes(&r), [(ARCHIVE_FAILING, Status::Warning)]);
        // Never archived: since the counters started.
        let never = ArchiverFacts {
            last_archived_age: None,
            last_archived_wal: None,
            since_start: Some(400.0),
            ready: None,
            ..failing_now(0.0)
        };
        assert_eq!(failing_for(&never), Some(400.0));
        // As many .ready files as --archive-ready-crit: CRITICAL at once.
        let piled = ArchiverFacts {
            ready: Some(128),
            ..failing_now(10.0)
        };
        let (r, _) = judge(Some(piled), None);
        assert_eq!(
            codes(&r),
            [
                (ARCHIVE_FAILING, Status::Critical),
                (ARCHIVE_BACKLOG, Status::Critical)
            ]
        );
    }

    #[test]
    fn ready_files_make_a_backlog_even_without_counted_failures() {
        let with = |n| ArchiverFacts {
            ready: Some(n),
            ..healthy()
        };
        assert!(judge(Some(with(15)), None).0.problems.is_empty());
        let (r, _) = judge(Some(with(16)), None);
        assert_eq!(codes(&r), [(ARCHIVE_BACKLOG, Status::Warning)]);
        assert!(r.problems[0].message.starts_with("16 WAL segments wait"));
        let (r, _) = judge(Some(with(128)), None);
        assert_eq!(codes(&r), [(ARCHIVE_BACKLOG, Status::Critical)]);
    }

    #[test]
    fn hidden_ready_files_are_unknown_not_zero() {
        let hidden = ArchiverFacts {
            ready: None,
            ..healthy()
        };
        let (r, a) = judge(Some(hidden), None);
        assert!(r.problems.is_empty());
        assert_eq!(a.unwrap().ready_count, None);
        assert!(r.warnings[0].contains("hidden"), "{:?}", r.warnings);
    }

    #[test]
    fn stale_when_wal_waits_for_several_archive_timeouts() {
        let waiting = |age, ready| ArchiverFacts {
            last_archived_age: Some(age),
            ready,
            ..healthy()
        };
        // 3 and 10 times archive_timeout (60 s).
        assert!(
            judge(Some(waiting(180.0, Some(1))), None)
                .0
                .problems
                .is_empty()
        );
        let (r, _) = judge(Some(waiting(181.0, Some(1))), None);
        assert_eq!(codes(&r), [(ARCHIVE_STALE, Status::Warning)]);
        assert!(
            r.problems[0]
                .message
                .contains("3 times archive_timeout (60.0s)")
        );
        let (r, _) = judge(Some(waiting(601.0, Some(1))), None);
        assert_eq!(codes(&r), [(ARCHIVE_STALE, Status::Critical)]);
        // Nothing waits (an idle primary): not stale.
        assert!(
            judge(Some(waiting(6000.0, Some(0))), None)
                .0
                .problems
                .is_empty()
        );
        // .ready hidden: a later WAL file than the last archived one.
        let hidden = waiting(6000.0, None);
        assert!(wal_waits(&hidden));
        assert_eq!(
            codes(&judge(Some(hidden), None).0),
            [(ARCHIVE_STALE, Status::Critical)]
        );
        let idle = ArchiverFacts {
            current_wal: Some("000000010000000000000009".into()),
            ..waiting(6000.0, None)
        };
        assert!(!wal_waits(&idle));
        // archive_timeout 0: WAL is archived when a segment fills, so age
        // means nothing.
        let no_timeout = ArchiverFacts {
            timeout_seconds: Some(0.0),
            ..waiting(6000.0, Some(1))
        };
        assert!(judge(Some(no_timeout), None).0.problems.is_empty());
    }

    fn probe(archived: bool) -> ProbeFacts {
        ProbeFacts {
            segment: Some("00000001000000000000000B".into()),
            archived,
            waited_seconds: if archived { 0.4 } else { 3.0 },
            last_archived_wal: Some("00000001000000000000000A".into()),
            last_failed_wal: None,
            error: None,
            denied: false,
        }
    }

    #[test]
    fn the_probe_is_ok_when_archived_and_critical_when_not() {
        let (r, a) = judge(Some(healthy()), Some(probe(true)));
        assert!(r.problems.is_empty());
        let p = a.unwrap().probe.unwrap();
        assert_eq!((p.archived, p.status), (true, Status::Ok));
        let (r, a) = judge(Some(healthy()), Some(probe(false)));
        assert_eq!(codes(&r), [(ARCHIVE_PROBE_FAILED, Status::Critical)]);
        assert_eq!(a.unwrap().status, Status::Critical);
        let m = &r.problems[0].message;
        assert!(
            m.starts_with(
                "00000001000000000000000B (closed by pg_switch_wal()) was not archived within 3.0s"
            ),
            "{m}"
        );
    }

    #[test]
    fn a_probe_that_may_not_switch_is_unknown() {
        let denied = ProbeFacts {
            segment: None,
            error: Some(Error::new(
                crate::error::Code::Internal,
                "permission denied for function pg_switch_wal",
            )),
            denied: true,
            ..probe(false)
        };
        let (r, _) = judge(Some(healthy()), Some(denied));
        assert_eq!(codes(&r), [(ARCHIVE_PROBE_FAILED, Status::Unknown)]);
        assert!(
            r.problems[0]
                .hint
                .as_ref()
                .unwrap()
                .contains("GRANT EXECUTE")
        );
    }

    #[test]
    fn a_probe_without_archiving_is_critical() {
        let (r, a) = judge(None, Some(ProbeFacts::not_run()));
        assert!(a.is_none());
        assert_eq!(codes(&r), [(ARCHIVE_PROBE_FAILED, Status::Critical)]);
        assert!(r.problems[0].message.contains("archive_mode is off"));
    }
}
