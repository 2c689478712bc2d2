//! The link probe behind `--compress auto`: before the copy, over a
//! replication connection like the copy's own (the only kind pg_hba.conf
//! may allow the role), how fast the primary's WAL arrives. Two
//! IDENTIFY_SYSTEM round trips give the round trip and the primary's
//! position; then the primary streams the WAL before it (up to 8 MiB, from
//! a segment start) for at most 0.1 s, and the rate is the bytes after
//! the first message over the time since it. 8 MiB take 67 ms at 1 Gbit/s,
//! so the window separates every threshold of auto; a slow link costs the
//! copy no more than the window. Neither TCP nor TLS compress
//! it, and WAL this recent is in the primary's page cache. A long round
//! trip makes the rate look slower (TCP starts with a small window), which
//! leans towards compressing: the safe side, since wrongly compressing
//! costs some CPU where wrongly not compressing costs most of the link.

use super::compress::Link;
use crate::pg::replication::{ReplClient, ReplConnection, Streamed};
use std::time::{Duration, Instant};

/// The most WAL the probe reads.
pub const WANT: u64 = 8 * 1024 * 1024;
/// How long it reads after the first message.
pub const LIMIT: Duration = Duration::from_millis(100);
/// Fewer bytes than this, when the WAL ran out before [`LIMIT`], say
/// nothing about the link: no figure. (When the window ran out first,
/// the few bytes are the figure: a slow link.)
pub const ENOUGH: u64 = 256 * 1024;
/// The whole probe gives up after this; auto then decides as for a
/// primary that was not probed.
const ALL: Duration = Duration::from_secs(5);

/// Measure the link to the primary on `conn` (preflight's, which it
/// ends); None when the probe could not (no free walsender, too little
/// WAL, a timeout).
pub async fn link(conn: ReplConnection, repl: &ReplClient, wal_segment_size: u64) -> Option<Link> {
    tokio::time::timeout(ALL, measure(conn, repl, wal_segment_size))
        .await
        .ok()
        .flatten()
}

async fn measure(mut conn: ReplConnection, repl: &ReplClient, segment: u64) -> Option<Link> {
    let mut rtt = Duration::MAX;
    let mut identity = None;
    for _ in 0..2 {
        let t = Instant::now();
        identity = conn.identify_system().await.ok();
        rtt = rtt.min(t.elapsed());
    }
    let identity = identity?;
    // WAL before the position, from a segment start; the segments before
    // the current one may be gone, the current one is not.
    let mut streamed = None;
    for start in starts(identity.lsn, segment) {
        if identity.lsn - start < ENOUGH {
            continue;
        }
        match stream(conn, start, identity.timeline).await {
            Ok(s) => {
                streamed = Some(s);
                break;
            }
            Err(()) => conn = repl.connect().await.ok()?,
        }
    }
    let s = streamed?;
    (s.bytes >= ENOUGH || s.over >= LIMIT).then(|| Link {
        rate: rate_of(s),
        rtt,
        bytes: s.bytes,
    })
}

/// Stream from `start`, then close (the connection ends either way).
async fn stream(
    mut conn: ReplConnection,
    start: u64,
    timeline: u32,
) -> std::result::Result<Streamed, ()> {
    let s = conn.measure_stream(start, timeline, WANT, LIMIT).await;
    conn.close().await;
    s.map_err(|_| ())
}

/// Where to start streaming: the segment start [`WANT`] before `lsn`,
/// then the current segment's start (never segment 0, which no cluster
/// has).
pub fn starts(lsn: u64, segment: u64) -> Vec<u64> {
    let segment = segment.max(1);
    let down = |x: u64| x - x % segment;
    let mut v = vec![down(lsn.saturating_sub(WANT)), down(lsn)];
    v.retain(|&x| x >= segment);
    v.dedup();
    v
}

/// Bytes a second (at least 0.1 ms of transfer, so that a loopback answer
/// does not divide by zero).
pub fn rate_of(s: Streamed) -> f64 {
    s.bytes as f64 / s.over.max(Duration::from_micros(100)).as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate() {
        // 8 MiB in 68 ms: ~123 MB/s (1 Gbit/s).
        let s = Streamed {
            bytes: WANT,
            over: Duration::from_millis(68),
        };
        assert!((rate_of(s) - 8388608.0 / 0.068).abs() < 1.0);
        let instant = Streamed {
            bytes: ENOUGH,
            over: Duration::ZERO,
        };
        assert_eq!(rate_of(instant), ENOUGH as f64 / 0.0001);
    }

    #[test]
    fn where_the_stream_starts() {
        let seg = 16 << 20;
        // Deep in WAL: the segment start 8 MiB back, then the current one.
        assert_eq!(starts(0x5234_5678, seg), vec![0x5100_0000, 0x5200_0000]);
        // A fresh primary: only the current segment.
        assert_eq!(starts(0x174_4238, seg), vec![0x100_0000]);
        assert_eq!(starts(0x30_0000, seg), Vec::<u64>::new());
    }
}
