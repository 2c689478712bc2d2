//! `wal-prune`: remove archived WAL that nothing listed still needs. What
//! goes is decided from the names alone, as pg_archivecleanup decides it
//! (a segment number below the keep point, whatever the timeline), with
//! two differences: `.history` files always stay (a new standby or a
//! point-in-time restore needs every timeline's history, and they are
//! tiny), and files go oldest first, one unlink at a time, so a prune
//! interrupted at any moment leaves the archive without a hole: what is
//! left is a contiguous run from some segment on.

use super::name::{self, Kind, SegmentNo};
use crate::plan::{Action, Applied, Cx, Plan};
use crate::report::{Change, Kind as ChangeKind};
use futures_util::future::LocalBoxFuture;
use std::path::{Path, PathBuf};

/// The archive's files that would go, in removal order (oldest segment
/// first; at one segment, its backup history files, then the
/// `.partial`, then the segment — any order leaves no hole). Backup
/// history files (`.backup`: where a base backup began and ended, a few
/// bytes) stay unless `backups`, as pg_archivecleanup keeps them unless
/// given `--clean-backup-history` (17+). Pure.
pub fn doomed(
    names: impl IntoIterator<Item = String>,
    keep: SegmentNo,
    backups: bool,
) -> Vec<String> {
    let mut out: Vec<(SegmentNo, u8, String)> = names
        .into_iter()
        .filter_map(|n| {
            let kind = name::parse(&n)?;
            let rank = match kind {
                Kind::History { .. } => return None,
                Kind::Backup { .. } if !backups => return None,
                Kind::Backup { .. } => 0,
                Kind::Partial { .. } => 1,
                Kind::Segment { .. } => 2,
            };
            let seg = kind.segment()?;
            (seg < keep).then_some((seg, rank, n))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, _, n)| n).collect()
}

/// The newest segment in the archive, for the warning that a keep point
/// lies beyond everything archived.
pub fn newest(names: &[String]) -> Option<SegmentNo> {
    names
        .iter()
        .filter_map(|n| name::parse(n).and_then(Kind::segment))
        .max()
}

/// The newest WAL segment file (complete or `.partial`) in the archive.
pub fn newest_segment_file(names: &[String]) -> Option<&String> {
    names
        .iter()
        .filter_map(|n| match name::parse(n)? {
            Kind::Segment { segment, .. } | Kind::Partial { segment, .. } => Some((segment, n)),
            _ => None,
        })
        .max()
        .map(|(_, n)| n)
}

/// The database system identifier that wrote a WAL segment: its first
/// page has the long header (XLogLongPageHeaderData: `xlp_info` has
/// XLP_LONG_HEADER, 0x0002; `xlp_pageaddr` at 8; `xlp_sysid` at 24, after
/// the 24-byte short header; `xlp_seg_size` and `xlp_xlog_blcksz` at 32
/// and 36), in the server's byte order. None when the file is not a
/// readable, uncompressed segment: a compressor's magic can set the flag
/// bit, but not also give a power-of-two segment and block size and a
/// page address on a segment boundary.
pub fn written_by(path: &Path) -> Option<u64> {
    use std::io::Read;
    let mut head = [0u8; 40];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .ok()?;
    let u32_at = |i: usize| u32::from_ne_bytes(head[i..i + 4].try_into().unwrap_or_default());
    let u64_at = |i: usize| u64::from_ne_bytes(head[i..i + 8].try_into().unwrap_or_default());
    let info = u16::from_ne_bytes([head[2], head[3]]);
    let (seg_size, block) = (u32_at(32), u32_at(36));
    let plausible = info & 0x0002 != 0
        && seg_size.is_power_of_two()
        && (1 << 20..=1 << 30).contains(&seg_size)
        && block.is_power_of_two()
        && (1 << 10..=1 << 15).contains(&block)
        && u64_at(8) % u64::from(seg_size) == 0;
    plausible.then(|| u64_at(24))
}

/// The plan: one removal per file, after a commit point (a removed file
/// cannot come back; an interruption stops between two removals).
pub fn plan(dir: &Path, doomed: &[String], keep_name: &str) -> Plan<()> {
    let mut p = Plan::default();
    p.commit();
    for n in doomed {
        p.push(Remove {
            path: dir.join(n),
            keep: keep_name.to_string(),
        });
    }
    p.push(SyncDir(dir.to_path_buf()));
    p
}

/// Remove one archived file.
struct Remove {
    path: PathBuf,
    keep: String,
}

impl Action<()> for Remove {
    fn describe(&self) -> Option<Change> {
        Some(Change {
            kind: ChangeKind::File,
            path: Some(self.path.clone()),
            summary: format!("remove (older than {})", self.keep),
            diff: None,
        })
    }

    fn apply<'s>(
        &'s self,
        _cx: &'s mut Cx<()>,
    ) -> LocalBoxFuture<'s, crate::error::Result<Applied<()>>> {
        let r = match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(Applied::changed()),
            // Gone already (another prune, pg_archivecleanup): nothing to report.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Applied::unchanged()),
            Err(e) => Err(crate::error::Error::io(
                format!("cannot remove {}", self.path.display()),
                e,
            )
            .hint("check that the archive directory is writable by the user running wal-prune, then rerun: the files older than this one are gone already, the rest are intact")),
        };
        Box::pin(async move { r })
    }
}

/// fsync the archive directory once the removals are done.
struct SyncDir(PathBuf);

impl Action<()> for SyncDir {
    fn describe(&self) -> Option<Change> {
        None
    }

    fn apply<'s>(
        &'s self,
        _cx: &'s mut Cx<()>,
    ) -> LocalBoxFuture<'s, crate::error::Result<Applied<()>>> {
        let r = std::fs::File::open(&self.0)
            .and_then(|d| d.sync_all())
            .map(|()| Applied::unchanged())
            .map_err(|e| crate::error::Error::io(format!("cannot fsync {}", self.0.display()), e));
        Box::pin(async move { r })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn removes_below_the_keep_point_oldest_first_never_history() {
        let all = names(&[
            "000000020000000000000012",
            "00000002.history",
            "000000010000000000000011.partial",
            "000000010000000000000010",
            "000000010000000000000011",
            "000000010000000000000010.00000028.backup",
            "00000001000000000000000F",
            ".000000010000000000000001.pgrepctl-wal.1.2",
            "README",
        ]);
        let keep = name::keep_point("000000020000000000000012").unwrap();
        assert_eq!(
            doomed(all.clone(), keep, false),
            names(&[
                "00000001000000000000000F",
                "000000010000000000000010",
                "000000010000000000000011.partial",
                "000000010000000000000011",
            ])
        );
        assert_eq!(
            doomed(all.clone(), keep, true),
            names(&[
                "00000001000000000000000F",
                "000000010000000000000010.00000028.backup",
                "000000010000000000000010",
                "000000010000000000000011.partial",
                "000000010000000000000011",
            ])
        );
        assert!(
            doomed(
                all.clone(),
                name::keep_point("00000001000000000000000F").unwrap(),
                true,
            )
            .is_empty()
        );
        assert_eq!(newest(&all), Some(keep));
    }

    #[test]
    fn the_writer_of_the_newest_segment() {
        let all = names(&[
            "000000010000000000000010",
            "000000010000000000000011.partial",
            "00000002.history",
            "000000010000000000000010.00000028.backup",
        ]);
        assert_eq!(
            newest_segment_file(&all).map(String::as_str),
            Some("000000010000000000000011.partial")
        );
        let dir = tempfile::tempdir().unwrap();
        let mut page = vec![0u8; 8192];
        page[2..4].copy_from_slice(&0x0002u16.to_ne_bytes());
        page[8..16].copy_from_slice(&(0x11u64 << 24).to_ne_bytes());
        page[24..32].copy_from_slice(&7_000_000_000_000_000_042u64.to_ne_bytes());
        page[32..36].copy_from_slice(&(16u32 << 20).to_ne_bytes());
        page[36..40].copy_from_slice(&8192u32.to_ne_bytes());
        std::fs::write(dir.path().join("long"), &page).unwrap();
        assert_eq!(
            written_by(&dir.path().join("long")),
            Some(7_000_000_000_000_000_042)
        );
        // A zstd or xz frame sets the flag bit by chance: the rest of the
        // header gives it away.
        let mut zstd = vec![0x28, 0xb5, 0x2f, 0xfd];
        zstd.extend((0u8..=255).cycle().take(8188));
        std::fs::write(dir.path().join("zstd"), &zstd).unwrap();
        let mut xz = vec![0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
        xz.extend(std::iter::repeat_n(0x41, 8186));
        std::fs::write(dir.path().join("xz"), &xz).unwrap();
        // No long header, too short, absent.
        page[2..4].copy_from_slice(&0u16.to_ne_bytes());
        std::fs::write(dir.path().join("short_header"), &page).unwrap();
        std::fs::write(dir.path().join("tiny"), b"zstd").unwrap();
        for f in ["zstd", "xz", "short_header", "tiny", "absent"] {
            assert_eq!(written_by(&dir.path().join(f)), None, "{f}");
        }
    }

    #[test]
    fn the_keep_point_ignores_its_timeline() {
        // Keep from 0x11 given on timeline 5: 0x10 of timeline 1 goes,
        // 0x11 of timeline 1 stays.
        let all = names(&["000000010000000000000010", "000000010000000000000011"]);
        let keep = name::keep_point("000000050000000000000011").unwrap();
        assert_eq!(
            doomed(all, keep, true),
            names(&["000000010000000000000010"])
        );
    }
}
