//! WAL archive file names, as PostgreSQL writes them (xlog_internal.h):
//! a segment `TTTTTTTTLLLLLLLLSSSSSSSS` (timeline, then the segment number
//! as two 8-digit upper-case hex halves), the same with `.partial` (the
//! last, unfinished segment of an old timeline after a promotion), a
//! backup history file `<segment>.<offset>.backup`, and a timeline history
//! file `TTTTTTTT.history`. Pure: parsing and ordering only.
//!
//! Ordering ignores the timeline, as pg_archivecleanup does (it compares a
//! name's last 16 characters): a standby that needs segment 0x1A on
//! timeline 2 may still read 0x1A's predecessors from timeline 1, so
//! "older" means a lower segment number whatever the timeline.

use std::fmt;

/// The timeline-independent position of a segment: its last 16 hex
/// characters as a number (`log << 32 | seg`), ordered as
/// pg_archivecleanup orders names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentNo(pub u64);

impl SegmentNo {
    /// The segment holding `lsn` with segments of `segment_size` bytes
    /// (XLByteToSeg and XLogFileName): `log` counts 4 GiB units of WAL,
    /// `seg` the segments within one.
    pub fn of_lsn(lsn: u64, segment_size: u64) -> SegmentNo {
        let segno = lsn / segment_size;
        let per_log = 0x1_0000_0000 / segment_size;
        SegmentNo(((segno / per_log) << 32) | (segno % per_log))
    }

    /// The segment's file name on `timeline`.
    pub fn file_name(self, timeline: u32) -> String {
        format!("{timeline:08X}{:016X}", self.0)
    }
}

impl fmt::Display for SegmentNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", self.0)
    }
}

/// What an archive file is, from its name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A complete WAL segment.
    Segment { timeline: u32, segment: SegmentNo },
    /// `<segment>.partial`: a timeline's last segment, cut at a promotion.
    Partial { timeline: u32, segment: SegmentNo },
    /// `<segment>.<offset>.backup`: where a base backup began and ended.
    Backup { timeline: u32, segment: SegmentNo },
    /// `<timeline>.history`: how a timeline forked. Never pruned.
    History { timeline: u32 },
}

impl Kind {
    /// The segment this file belongs to (none for a history file).
    pub fn segment(self) -> Option<SegmentNo> {
        match self {
            Kind::Segment { segment, .. }
            | Kind::Partial { segment, .. }
            | Kind::Backup { segment, .. } => Some(segment),
            Kind::History { .. } => None,
        }
    }
}

/// Parse a file name (no directory part). `None`: not a name PostgreSQL
/// archives (temp files, `RECOVERYXLOG`, lower-case hex, anything else).
pub fn parse(name: &str) -> Option<Kind> {
    if let Some(tli) = name.strip_suffix(".history") {
        return (tli.len() == 8 && is_hex(tli)).then(|| Kind::History {
            timeline: hex32(tli),
        });
    }
    let (base, rest) = name.split_at_checked(24)?;
    if !is_hex(base) {
        return None;
    }
    let timeline = hex32(&base[..8]);
    let segment = SegmentNo(u64::from_str_radix(&base[8..], 16).ok()?);
    match rest {
        "" => Some(Kind::Segment { timeline, segment }),
        ".partial" => Some(Kind::Partial { timeline, segment }),
        _ => {
            let offset = rest.strip_prefix('.')?.strip_suffix(".backup")?;
            (offset.len() == 8 && is_hex(offset)).then_some(Kind::Backup { timeline, segment })
        }
    }
}

/// `--keep-from`: a segment name, or a name whose first 24 characters are
/// one (`.partial`, `.backup`), as pg_archivecleanup takes it.
pub fn keep_point(name: &str) -> Option<SegmentNo> {
    parse(name).and_then(Kind::segment)
}

/// Upper-case hex only: PostgreSQL writes no other, and its own checks
/// (IsXLogFileName) accept no other.
fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F'))
}

fn hex32(s: &str) -> u32 {
    u32::from_str_radix(s, 16).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_postgresql_archives() {
        let seg = SegmentNo(0x1_0000_00A3);
        assert_eq!(
            parse("0000000200000001000000A3"),
            Some(Kind::Segment {
                timeline: 2,
                segment: seg
            })
        );
        assert_eq!(
            parse("0000000200000001000000A3.partial"),
            Some(Kind::Partial {
                timeline: 2,
                segment: seg
            })
        );
        assert_eq!(
            parse("0000000200000001000000A3.00000028.backup"),
            Some(Kind::Backup {
                timeline: 2,
                segment: seg
            })
        );
        assert_eq!(
            parse("0000000A.history"),
            Some(Kind::History { timeline: 10 })
        );
    }

    #[test]
    fn refuses_what_postgresql_does_not_write() {
        for bad in [
            "",
            "RECOVERYXLOG",
            "0000000100000000000000a3",
            "00000001000000000000003",
            "0000000100000000000000033",
            "000000010000000000000003.part",
            "000000010000000000000003.00000028",
            "000000010000000000000003.0000028.backup",
            "0000001.history",
            ".000000010000000000000003.pgrepctl-wal.1.2",
            "000000010000000000000003/x",
            "ÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄ",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn order_ignores_the_timeline_as_pg_archivecleanup_does() {
        let a = keep_point("00000005000000000000000F").unwrap();
        let b = keep_point("000000010000000000000010").unwrap();
        let c = keep_point("000000010000000100000000").unwrap();
        assert!(a < b && b < c);
        assert_eq!(keep_point("000000010000000000000010.partial"), Some(b));
        assert_eq!(
            keep_point("000000010000000000000010.00000060.backup"),
            Some(b)
        );
        assert_eq!(keep_point("00000001.history"), None);
    }

    #[test]
    fn lsn_to_segment_matches_pg_walfile_name() {
        // pg_walfile_name('1/A3000028') on timeline 1, 16MB segments.
        let s = SegmentNo::of_lsn(0x1_A300_0028, 16 << 20);
        assert_eq!(s.file_name(1), "0000000100000001000000A3");
        // 64MB segments: 64 per 4GB, so seg counts 0..3F.
        let s = SegmentNo::of_lsn(0x1_C000_0000, 64 << 20);
        assert_eq!(s.file_name(1), "000000010000000100000030");
        // 1GB segments.
        let s = SegmentNo::of_lsn(0x2_4000_0000, 1 << 30);
        assert_eq!(s.file_name(3), "000000030000000200000001");
    }
}
