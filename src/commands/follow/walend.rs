//! Where a running standby's WAL really ends. WAL is sent in pages, so
//! what the WAL receiver flushed can end inside a record: when the
//! upstream dies, the received WAL runs past the last whole record, and
//! the promoted sibling (which ends its timeline at its last whole record)
//! looks behind. Whole records past the replay position are read with
//! PostgreSQL's own reader, `pg_waldump`, as pg_rewind reads them.

use crate::pg::cluster::LocalCluster;
use crate::pg::replication::{format_lsn, parse_lsn};

/// Just past the start of the last whole record at or after `replayed` in
/// the standby's pg_wal on timeline `tli` (so "at or before a fork" holds
/// exactly when no whole record starts at or after the fork), or
/// `replayed` when there is none. `None` when `pg_waldump` is missing, the
/// segment of `replayed` is not there on that timeline, or pg_waldump
/// could not read it: the caller keeps the received position.
pub fn complete_end(
    cluster: &LocalCluster,
    tli: u32,
    replayed: u64,
    segment_size: u64,
) -> Option<u64> {
    let tool = cluster.bindir.tool("pg_waldump");
    let start = segment_name(tli, replayed, segment_size)?;
    if !tool.exists() || replayed == 0 || !cluster.data_dir.join("pg_wal").join(start).exists() {
        return None;
    }
    let args: Vec<std::ffi::OsString> = vec![
        "-p".into(),
        cluster.data_dir.join("pg_wal").into(),
        "-t".into(),
        tli.to_string().into(),
        "-s".into(),
        format_lsn(replayed).into(),
    ];
    let out = cluster
        .run_as
        .cmd(tool, args)
        .env("LC_ALL", "C")
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .ok()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    decide(&stdout, &stderr, replayed)
}

/// The WAL segment file that holds `lsn` on timeline `tli`.
fn segment_name(tli: u32, lsn: u64, segment_size: u64) -> Option<String> {
    if segment_size == 0 || segment_size > 1 << 32 {
        return None;
    }
    let segno = lsn / segment_size;
    let per_id = (1u64 << 32) / segment_size;
    Some(format!(
        "{tli:08X}{:08X}{:08X}",
        segno / per_id,
        segno % per_id
    ))
}

/// From pg_waldump's output: the last record's start + 1, or `replayed`
/// when it found no whole record there (it stops with an error at the end
/// of valid WAL, which is the expected end here: an invalid record, or
/// the next segment not there because it was never received).
fn decide(stdout: &str, stderr: &str, replayed: u64) -> Option<u64> {
    let last = stdout
        .lines()
        .filter_map(|l| l.split_once("lsn: ")?.1.split([',', ' ']).next())
        .filter_map(parse_lsn)
        .max();
    match last {
        Some(start) => Some((start + 1).max(replayed)),
        None if stderr.contains("could not find a valid record")
            || stderr.contains("error in WAL record")
            || stderr.contains("invalid record")
            || stderr.contains("could not find file") =>
        {
            Some(replayed)
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::decide;

    #[test]
    fn reads_the_last_whole_record() {
        let out = "rmgr: Heap        len (rec/tot):     54/    54, tx:        735, lsn: 0/0D05FF78, prev 0/0D05FF40, desc: INSERT off 3\n\
                   rmgr: Transaction len (rec/tot):     34/    34, tx:        735, lsn: 0/0D05FFB0, prev 0/0D05FF78, desc: COMMIT\n";
        assert_eq!(
            decide(
                out,
                "pg_waldump: error: error in WAL record at 0/D05FFB0: invalid record length",
                0xD05FF78
            ),
            Some(0xD05FFB1)
        );
        // Only a partial record after the replay position.
        assert_eq!(
            decide(
                "",
                "pg_waldump: error: error in WAL record at 0/D05FF78: invalid record length at 0/D05FF78: expected at least 24, got 0",
                0xD05FF78
            ),
            Some(0xD05FF78)
        );
        assert_eq!(
            decide(
                "",
                "pg_waldump: fatal: could not find a valid record after 0/D05FF78",
                0xD05FF78
            ),
            Some(0xD05FF78)
        );
        assert_eq!(
            super::segment_name(2, 0x1_2000_0000, 16 << 20).as_deref(),
            Some("000000020000000100000020")
        );
        assert_eq!(
            super::segment_name(1, 0x11FF_FDE0, 16 << 20).as_deref(),
            Some("000000010000000000000011")
        );
        // Could not read at all: unknown.
        assert_eq!(
            decide("", "pg_waldump: error: could not open file", 1),
            None
        );
    }
}
