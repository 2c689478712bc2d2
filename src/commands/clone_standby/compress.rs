//! `--compress`: whether the primary compresses the base backup before it
//! crosses the network (pg_basebackup `--compress=server-…`, 15+; the
//! client decompresses into the plain data directory). Parsing and the
//! `auto` decision are pure, so every rule is unit-tested without a server.

use crate::error::{Code, Error, Result};
use std::path::Path;
use std::time::Duration;

/// What `--compress` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    Auto,
    Given(Method),
}

/// What pg_basebackup is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    None,
    Zstd {
        level: Option<i32>,
        workers: Option<u32>,
    },
    Lz4,
}

impl Method {
    /// pg_basebackup's `--compress` value, None for no compression.
    pub fn arg(self) -> Option<String> {
        match self {
            Method::None => None,
            Method::Lz4 => Some("server-lz4".into()),
            Method::Zstd { level, workers } => {
                let detail: Vec<String> = level
                    .map(|l| format!("level={l}"))
                    .into_iter()
                    .chain(workers.map(|w| format!("workers={w}")))
                    .collect();
                Some(match detail.is_empty() {
                    true => "server-zstd".into(),
                    false => format!("server-zstd:{}", detail.join(",")),
                })
            }
        }
    }

    /// The name in reports: the `--compress` spelling.
    pub fn name(self) -> String {
        self.arg().unwrap_or_else(|| "none".into())
    }

    /// The library the primary and the local pg_basebackup need.
    fn library(self) -> Option<&'static str> {
        match self {
            Method::None => None,
            Method::Zstd { .. } => Some("zstd"),
            Method::Lz4 => Some("lz4"),
        }
    }
}

const VALUES: &str = "give auto, none, server-zstd, server-zstd:level=N (1-22), server-zstd:workers=N (0-64), server-zstd:level=N,workers=N or server-lz4";

pub fn parse(value: &str) -> Result<Requested> {
    let bad = |why: String| {
        Error::new(
            Code::InvalidValue,
            format!("invalid --compress {value:?}: {why}"),
        )
        .hint(VALUES)
    };
    let v = value.trim();
    let (method, detail) = match v.split_once(':') {
        Some((m, d)) => (m, Some(d)),
        None => (v, None),
    };
    let plain = |r: Requested| match detail {
        Some(_) => Err(bad(format!("{method} takes no options"))),
        None => Ok(r),
    };
    match method {
        "auto" => plain(Requested::Auto),
        "none" => plain(Requested::Given(Method::None)),
        "server-lz4" => plain(Requested::Given(Method::Lz4)),
        "server-zstd" => zstd_detail(detail.unwrap_or(""))
            .map(|(level, workers)| Requested::Given(Method::Zstd { level, workers }))
            .map_err(bad),
        "gzip" | "server-gzip" | "client-gzip" | "lz4" | "zstd" | "client-zstd" | "client-lz4" => {
            Err(bad(format!(
                "{method} is not offered: client-side compression saves nothing on the wire for a plain data directory, and server-gzip is slower than the link it saves"
            )))
        }
        _ => Err(bad("unknown method".into())),
    }
}

/// `level=N,workers=N` (either, both, or nothing).
fn zstd_detail(detail: &str) -> std::result::Result<(Option<i32>, Option<u32>), String> {
    let (mut level, mut workers) = (None, None);
    for item in detail.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once('=') {
            Some(("level", n)) => match n.trim().parse::<i32>() {
                Ok(n) if (1..=22).contains(&n) => level = Some(n),
                _ => return Err(format!("zstd level {n:?} is not between 1 and 22")),
            },
            Some(("workers", n)) => match n.trim().parse::<u32>() {
                Ok(n) if n <= 64 => workers = Some(n),
                _ => return Err(format!("workers {n:?} is not between 0 and 64")),
            },
            _ => return Err(format!("unknown option {item:?} (level=N or workers=N)")),
        }
    }
    Ok((level, workers))
}

/// What is known about both ends before the copy.
#[derive(Debug, Clone, Default)]
pub struct Ends {
    pub version_num: u32,
    /// The primary's build offers zstd / lz4 (from `pg_settings`'
    /// `wal_compression` choices, which the same build switches turn on);
    /// None when no normal SQL connection was allowed.
    pub server_zstd: Option<bool>,
    pub server_lz4: Option<bool>,
    /// The local pg_basebackup is linked with libzstd / liblz4 (it
    /// decompresses what the server sends).
    pub client_zstd: bool,
    pub client_lz4: bool,
    /// The primary is this host (loopback, a socket, or one of its addresses).
    pub local: bool,
    /// What the link probe measured (see [`super::probe`]); None when it
    /// did not run (no SQL connection, or nothing for it to decide).
    pub link: Option<Link>,
}

/// The link to the primary as the probe measured it before the copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Bytes a second of the primary's answer.
    pub rate: f64,
    /// The shorter of two `SELECT 1` round trips.
    pub rtt: Duration,
    /// The size of the answer the rate was measured over.
    pub bytes: u64,
}

impl Link {
    fn mb_s(&self) -> f64 {
        self.rate / 1e6
    }

    fn shown(&self) -> String {
        format!(
            "link probe: {:.0} MB/s ({:.0} Mbit/s) over {} KiB of WAL, round trip {:.1} ms",
            self.mb_s(),
            self.rate * 8.0 / 1e6,
            self.bytes / 1024,
            self.rtt.as_secs_f64() * 1000.0
        )
    }
}

/// The compression chosen and why, for `--dry-run` and `--json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub method: Method,
    pub reason: String,
    /// `auto` chose it: a primary whose build turns out not to offer it
    /// (unknown before the copy) is copied again without compression.
    pub auto: bool,
    /// The probe that `auto` decided from, for the report.
    pub probe: Option<Link>,
}

impl Choice {
    pub fn json(&self) -> serde_json::Value {
        let probe = self.probe.map(|l| {
            serde_json::json!({
                "rate_mb_s": (l.mb_s() * 10.0).round() / 10.0,
                "round_trip_ms": (l.rtt.as_secs_f64() * 10000.0).round() / 10.0,
                "bytes": l.bytes,
            })
        });
        serde_json::json!({ "method": self.method.name(), "reason": self.reason, "probe": probe })
    }
}

pub fn decide(req: Requested, e: &Ends) -> Result<Choice> {
    match req {
        Requested::Given(m) => given(m, e),
        Requested::Auto => Ok(auto(e)),
    }
}

fn given(m: Method, e: &Ends) -> Result<Choice> {
    let Some(lib) = m.library() else {
        return Ok(Choice {
            method: m,
            reason: "--compress none".into(),
            auto: false,
            probe: None,
        });
    };
    let name = m.name();
    if !crate::pg::version::Version::of(e.version_num).server_side_compression() {
        return Err(Error::new(
            Code::Usage,
            format!(
                "--compress {name}: the primary runs PostgreSQL {}, and only 15 or later compresses a base backup on the server",
                crate::pg::version::Version::of(e.version_num).major()
            ),
        )
        .hint("leave out --compress (auto copies uncompressed from this primary); on a slow link, copy through pgrepctl tunnel, whose ssh -C compresses"));
    }
    let (server, client) = match m {
        Method::Lz4 => (e.server_lz4, e.client_lz4),
        _ => (e.server_zstd, e.client_zstd),
    };
    if server == Some(false) {
        return Err(Error::new(
            Code::Usage,
            format!("--compress {name}: the primary's PostgreSQL is built without {lib}"),
        )
        .hint(
            "leave out --compress (auto picks what both ends support), or pass --compress none",
        ));
    }
    if !client {
        return Err(Error::new(
            Code::Usage,
            format!("--compress {name}: the local pg_basebackup is built without {lib}, and it must decompress the copy"),
        )
        .hint("use --bindir with binaries built with zstd and lz4 (PGDG and Debian packages are), or leave out --compress"));
    }
    Ok(Choice {
        method: m,
        reason: format!("--compress {name}"),
        auto: false,
        probe: None,
    })
}

/// From this rate on (bytes a second; 2 Gbit/s) auto copies
/// uncompressed: zstd level 1 compressed poorly compressible data (the
/// bench's realistic table) at 106 MB/s a core here, 149 MB/s with two
/// threads (`zstd -b1`, bench/README.md), so over such a link compression
/// would be what limits the copy of any data but the most compressible.
pub const UNCOMPRESSED_FROM: f64 = 250e6;
/// From this rate on (bytes a second; 320 Mbit/s) auto adds zstd workers:
/// below it one core compresses even poorly compressible data at twice the
/// link's rate or more, and the primary's cores stay with its workload.
pub const WORKERS_FROM: f64 = 40e6;
/// The workers auto asks for (zstd threads in the primary's walsender,
/// besides the walsender itself): the fewest that beat one thread on a
/// gigabit link in bench/run; a replication role cannot see how many
/// cores the primary has, so no more than that.
pub const WORKERS: u32 = 2;

/// `auto`: never from this host, nor where either end cannot; otherwise
/// from the link probe: uncompressed over a link faster than compression
/// ([`UNCOMPRESSED_FROM`]), zstd level 1 with [`WORKERS`] workers over a
/// fast one ([`WORKERS_FROM`]), without workers over a slower one or when
/// the link was not probed. Level 1 because on a gigabit link level 3
/// (zstd's default) made a copy of poorly compressible data slower than no
/// compression in bench/run, where level 1 was faster, while on a 100
/// Mbit/s link the two were alike (bench/README.md, "Compression").
fn auto(e: &Ends) -> Choice {
    let none = |reason: String| Choice {
        method: Method::None,
        reason,
        auto: true,
        probe: e.link,
    };
    if e.local {
        return none(
            "the primary is on this host: compressing would only cost CPU on both ends".into(),
        );
    }
    if !crate::pg::version::Version::of(e.version_num).server_side_compression() {
        return none(before_15(e.link));
    }
    if e.server_zstd == Some(false) {
        return none("the primary's PostgreSQL is built without zstd".into());
    }
    if !e.client_zstd {
        return none("the local pg_basebackup is built without zstd".into());
    }
    let zstd = |workers: Option<u32>, reason: String| Choice {
        method: Method::Zstd {
            level: Some(1),
            workers,
        },
        reason,
        auto: true,
        probe: e.link,
    };
    match e.link {
        None => zstd(
            None,
            "remote primary, link not probed (--max-rate given, no walsender free, too little WAL, or no answer in time): server-side zstd, level 1, no workers".into(),
        ),
        Some(l) if l.rate >= UNCOMPRESSED_FROM => none(format!(
            "{}: faster than zstd compresses poorly compressible data, so uncompressed",
            l.shown()
        )),
        Some(l) if l.rate >= WORKERS_FROM => zstd(
            Some(WORKERS),
            format!(
                "{}: fast enough that one core of compression could hold the copy back, so server-side zstd, level 1, {WORKERS} workers",
                l.shown()
            ),
        ),
        Some(l) => zstd(
            None,
            format!(
                "{}: slower than one core compresses, so server-side zstd, level 1, no workers",
                l.shown()
            ),
        ),
    }
}

/// Why a 10–14 primary's copy is uncompressed, and whether the SSH tunnel
/// (whose `ssh -C` compresses) is worth suggesting: below [`WORKERS_FROM`]
/// the link, not a compressor, is what a copy waits for.
fn before_15(link: Option<Link>) -> String {
    const CANNOT: &str =
        "the primary runs PostgreSQL 14 or older, which cannot compress a base backup";
    const TUNNEL: &str = "clone through pgrepctl tunnel (ssh -C compresses)";
    match link {
        None => format!("{CANNOT}; on a slow link, {TUNNEL}"),
        Some(l) if l.rate < WORKERS_FROM => {
            format!("{CANNOT}; {}: a slow link, so {TUNNEL}", l.shown())
        }
        Some(l) => format!("{CANNOT}; {}: fast enough uncompressed", l.shown()),
    }
}

/// What a copy refused by the primary's build (see [`server_lacks_it`])
/// turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `auto` chose the method: copy again, uncompressed.
    CopyUncompressed,
    /// The user named the method: a usage error (nothing was copied).
    Usage,
    /// Another failure: reported as it is.
    Failed,
}

pub fn refused(choice: &Choice, message: &str) -> Refused {
    match (choice.method, server_lacks_it(message), choice.auto) {
        (Method::None, _, _) | (_, false, _) => Refused::Failed,
        (_, true, true) => Refused::CopyUncompressed,
        (_, true, false) => Refused::Usage,
    }
}

/// Whether `pg_basebackup` links `lib` (libzstd.so, liblz4.so): PostgreSQL
/// links them dynamically, and `pg_config` is not always installed.
pub fn links(pg_basebackup: &Path, lib: &str) -> bool {
    let Ok(bytes) = std::fs::read(pg_basebackup) else {
        return false;
    };
    let needle = format!("lib{lib}.so");
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// pg_basebackup's last lines say the primary's build lacks the method.
pub fn server_lacks_it(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("not supported by this build") || m.contains("this build does not support")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(version_num: u32, local: bool) -> Ends {
        Ends {
            version_num,
            server_zstd: Some(true),
            server_lz4: Some(true),
            client_zstd: true,
            client_lz4: true,
            local,
            link: None,
        }
    }

    fn probed(mb_s: f64) -> Ends {
        Ends {
            link: Some(Link {
                rate: mb_s * 1e6,
                rtt: Duration::from_micros(400),
                bytes: 8 << 20,
            }),
            ..ends(160000, false)
        }
    }

    #[test]
    fn parses() {
        assert_eq!(parse("auto").unwrap(), Requested::Auto);
        assert_eq!(parse("none").unwrap(), Requested::Given(Method::None));
        assert_eq!(parse("server-lz4").unwrap(), Requested::Given(Method::Lz4));
        let z = parse("server-zstd:level=5,workers=2").unwrap();
        assert_eq!(
            z,
            Requested::Given(Method::Zstd {
                level: Some(5),
                workers: Some(2)
            })
        );
        let Requested::Given(m) = z else { panic!() };
        assert_eq!(m.arg().unwrap(), "server-zstd:level=5,workers=2");
        assert_eq!(
            parse("server-zstd").unwrap(),
            Requested::Given(Method::Zstd {
                level: None,
                workers: None
            })
        );
        for bad in [
            "gzip",
            "server-zstd:level=99",
            "server-zstd:workers=x",
            "server-zstd:fast",
            "server-lz4:level=1",
            "none:1",
            "",
            "zip",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.code, Code::InvalidValue, "{bad}");
            assert!(e.code.is_usage());
        }
    }

    #[test]
    fn auto_is_zstd_for_a_remote_15() {
        let c = decide(Requested::Auto, &ends(150004, false)).unwrap();
        assert_eq!(c.method.name(), "server-zstd:level=1");
        assert!(
            c.reason.contains("remote primary, link not probed"),
            "{}",
            c.reason
        );
        let unknown = Ends {
            server_zstd: None,
            ..ends(170000, false)
        };
        assert_eq!(
            decide(Requested::Auto, &unknown).unwrap().method.name(),
            "server-zstd:level=1"
        );
    }

    #[test]
    fn auto_is_none_when_local_old_or_unsupported() {
        let c = decide(Requested::Auto, &ends(170000, true)).unwrap();
        assert_eq!(c.method, Method::None);
        assert!(c.reason.contains("this host"));
        let c = decide(Requested::Auto, &ends(140010, false)).unwrap();
        assert_eq!(c.method, Method::None);
        assert!(c.reason.contains("tunnel"));
        // Before 15 the probe decides only whether to suggest the tunnel.
        let old = |mb_s| Ends {
            version_num: 100023,
            ..probed(mb_s)
        };
        let slow = decide(Requested::Auto, &old(12.0)).unwrap();
        assert_eq!(slow.method, Method::None);
        assert!(
            slow.reason
                .contains("a slow link, so clone through pgrepctl tunnel"),
            "{}",
            slow.reason
        );
        assert!(slow.probe.is_some());
        let fast = decide(Requested::Auto, &old(WORKERS_FROM / 1e6)).unwrap();
        assert_eq!(fast.method, Method::None);
        assert!(!fast.reason.contains("tunnel"), "{}", fast.reason);
        assert!(
            fast.reason.contains("fast enough uncompressed"),
            "{}",
            fast.reason
        );
        let no_server = Ends {
            server_zstd: Some(false),
            ..ends(160000, false)
        };
        assert_eq!(
            decide(Requested::Auto, &no_server).unwrap().method,
            Method::None
        );
        let no_client = Ends {
            client_zstd: false,
            ..ends(160000, false)
        };
        assert_eq!(
            decide(Requested::Auto, &no_client).unwrap().method,
            Method::None
        );
    }

    #[test]
    fn given_methods_are_checked() {
        let zstd = Requested::Given(Method::Zstd {
            level: None,
            workers: None,
        });
        let e = decide(zstd, &ends(140000, false)).unwrap_err();
        assert_eq!(e.code, Code::Usage);
        assert!(e.message.contains("PostgreSQL 14"), "{}", e.message);
        let e = decide(
            zstd,
            &Ends {
                server_zstd: Some(false),
                ..ends(150000, false)
            },
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("primary's PostgreSQL is built without zstd")
        );
        let e = decide(
            Requested::Given(Method::Lz4),
            &Ends {
                client_lz4: false,
                ..ends(150000, false)
            },
        )
        .unwrap_err();
        assert!(e.message.contains("local pg_basebackup"));
        // Given on a local primary: done as asked.
        assert_eq!(
            decide(zstd, &ends(150000, true)).unwrap().method.name(),
            "server-zstd"
        );
        assert_eq!(
            decide(Requested::Given(Method::None), &ends(100000, false))
                .unwrap()
                .method,
            Method::None
        );
    }

    #[test]
    fn auto_decides_from_the_probe() {
        // 100 Mbit/s: one core is ahead of the link.
        let c = decide(Requested::Auto, &probed(12.0)).unwrap();
        assert_eq!(c.method.name(), "server-zstd:level=1");
        assert!(
            c.reason.contains("link probe: 12 MB/s (96 Mbit/s)"),
            "{}",
            c.reason
        );
        assert!(c.reason.contains("no workers"), "{}", c.reason);
        assert_eq!(c.json()["probe"]["rate_mb_s"], 12.0);
        assert_eq!(c.json()["probe"]["round_trip_ms"], 0.4);
        // 1 Gbit/s: workers.
        let c = decide(Requested::Auto, &probed(118.0)).unwrap();
        assert_eq!(c.method.name(), "server-zstd:level=1,workers=2");
        assert!(c.reason.contains("2 workers"), "{}", c.reason);
        // The boundaries belong to the faster side.
        let at = |r: f64| decide(Requested::Auto, &probed(r / 1e6)).unwrap().method;
        assert_eq!(at(WORKERS_FROM).name(), "server-zstd:level=1,workers=2");
        assert_eq!(at(WORKERS_FROM - 1e5).name(), "server-zstd:level=1");
        assert_eq!(at(UNCOMPRESSED_FROM), Method::None);
        // 10 Gbit/s: compression would be the bottleneck.
        let c = decide(Requested::Auto, &probed(1100.0)).unwrap();
        assert_eq!(c.method, Method::None);
        assert!(c.reason.contains("faster than zstd"), "{}", c.reason);
        assert!(c.json()["probe"].is_object());
        // Unprobed: the report says so.
        let c = decide(Requested::Auto, &ends(160000, false)).unwrap();
        assert!(c.reason.contains("not probed"), "{}", c.reason);
        assert!(c.json()["probe"].is_null());
        // What cannot compress does not, whatever the link.
        let old = Ends {
            version_num: 140000,
            ..probed(12.0)
        };
        assert_eq!(decide(Requested::Auto, &old).unwrap().method, Method::None);
    }

    #[test]
    fn a_build_without_zstd_falls_back_only_for_auto() {
        let lacks = "pg_basebackup: error: could not initiate base backup: ERROR:  zstd compression is not supported by this build";
        let auto = decide(Requested::Auto, &probed(12.0)).unwrap();
        assert_eq!(refused(&auto, lacks), Refused::CopyUncompressed);
        assert_eq!(refused(&auto, "connection refused"), Refused::Failed);
        let given = decide(Requested::Given(Method::Lz4), &probed(12.0)).unwrap();
        assert_eq!(refused(&given, lacks), Refused::Usage);
        let none = decide(Requested::Auto, &ends(160000, true)).unwrap();
        assert_eq!(refused(&none, lacks), Refused::Failed);
    }

    #[test]
    fn server_errors() {
        assert!(server_lacks_it(
            "pg_basebackup: error: could not initiate base backup: ERROR:  zstd compression is not supported by this build"
        ));
        assert!(!server_lacks_it("connection refused"));
    }
}
