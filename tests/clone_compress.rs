//! clone-standby --compress (issue 16): `auto` compresses on a remote 15+
//! primary (a namespace "host" behind a shaped link) and never on a local
//! one, and before 15 suggests the SSH tunnel only over a slow link; a
//! method the primary cannot do is a usage error before anything is
//! copied. No timings here: the figures are in bench/run --only compress.

use crate::harness::fixtures::{PW, clone, init_master, prepared_primary};
use crate::harness::netns::{self, Pair};
use crate::harness::{self, Cluster, run::password_file};
use std::time::{Duration, Instant};

/// Real-looking rows: md5 text and random numbers.
const TABLE: &str = "CREATE TABLE t AS SELECT i, md5(i::text) AS h, (random() * 1e6)::int AS n, random() AS r FROM generate_series(1, 20000) i";
const SUM: &str =
    "SELECT md5(string_agg(i || ':' || h || ':' || n || ':' || r, ',' ORDER BY i)) FROM t";

/// 100 Mbit/s on `dev` inside `ns`, with 20 ms of delay each way (40 ms
/// round trip once both ends are shaped) where the kernel has netem;
/// otherwise the rate alone (tbf), which is what makes the link the
/// bottleneck.
fn shape(ns: &str, dev: &str) {
    let tc = |args: &[&str]| {
        Pair::exec(ns, "tc")
            .args(["qdisc", "add", "dev", dev, "root"])
            .args(args)
            .output()
            .unwrap()
    };
    if tc(&["netem", "delay", "20ms", "rate", "100mbit"])
        .status
        .success()
    {
        return;
    }
    let out = tc(&[
        "tbf", "rate", "100mbit", "burst", "256kb", "latency", "50ms",
    ]);
    assert!(
        out.status.success(),
        "tc in {ns}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_for(s: &Cluster, q: &str, want: &str) {
    let t = Instant::now();
    while s.try_sql(q).as_deref() != Ok(want) {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{q} never returned {want}: {:?}",
            s.try_sql(q)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What `--compress auto` reported is what its rules give for the link
/// the probe measured (no timing is asserted: the rate is the machine's).
fn consistent_with_probe(j: &serde_json::Value) -> f64 {
    let c = &j["compression"];
    eprintln!("compression: {c}");
    let rate = probed_rate(j);
    let want = match rate {
        r if r >= 250.0 => "none",
        r if r >= 40.0 => "server-zstd:level=1,workers=2",
        _ => "server-zstd:level=1",
    };
    // The report rounds to 0.1 MB/s: at a threshold either side is right.
    let at_threshold = [40.0, 250.0].iter().any(|t: &f64| (rate - t).abs() <= 0.05);
    if !at_threshold {
        assert_eq!(c["method"], want, "{j}");
    }
    let reason = c["reason"].as_str().unwrap();
    assert!(reason.starts_with("link probe: "), "{reason}");
    rate
}

/// The rate auto's probe read (it must have run).
fn probed_rate(j: &serde_json::Value) -> f64 {
    let c = &j["compression"];
    let rate = c["probe"]["rate_mb_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("{j}"));
    assert!(c["probe"]["round_trip_ms"].as_f64().unwrap() >= 0.0, "{j}");
    rate
}

/// Before 15: uncompressed, and the tunnel suggested on a slow link only.
fn old_server_follows_probe(j: &serde_json::Value) -> f64 {
    let c = &j["compression"];
    eprintln!("compression: {c}");
    let rate = probed_rate(j);
    assert_eq!(c["method"], "none", "{j}");
    let reason = c["reason"].as_str().unwrap();
    assert!(reason.contains("cannot compress"), "{reason}");
    if (rate - 40.0).abs() > 0.05 {
        assert_eq!(reason.contains("pgrepctl tunnel"), rate < 40.0, "{reason}");
    }
    rate
}

#[test]
fn auto_decides_from_a_shaped_link() {
    if !netns::available() {
        eprintln!("skipped: network namespaces need root and iproute2");
        return;
    }
    let hosts = Pair::new();
    let tag = hosts.server.trim_end_matches('s');
    let p = Cluster::builder()
        .netns(&hosts.server)
        .conf(&format!(
            "listen_addresses = 'localhost,{}'",
            hosts.server_ip
        ))
        .init();
    let pw = password_file(p.tmp.path(), PW);
    init_master(&p, &pw, &["--allow", &format!("{}/32", hosts.client_ip)]).ok();
    p.sql(TABLE);
    let s = Cluster::clone_target(&p);
    let primary = format!("host={} port={} user=replicator", hosts.server_ip, p.port);
    let data = s.data.display().to_string();
    let clone = |extra: &[&str]| {
        let t = harness::run::Test::new([
            "clone-standby",
            "--json",
            "--primary",
            &primary,
            "-D",
            &data,
            "--bindir",
            s.bindir.to_str().unwrap(),
            "--port",
            &s.port.to_string(),
            "--listen",
            "localhost",
            "--password-file",
            pw.to_str().unwrap(),
        ]);
        extra
            .iter()
            .fold(t, |t, a| t.arg(a))
            .netns(Some(&hosts.client))
            .run()
            .ok()
    };
    // The unshaped link first (a dry run): whatever it measures, the
    // report names the probe and follows the rules.
    let j = clone(&["--dry-run"]);
    if p.major >= 15 {
        consistent_with_probe(&j);
    } else {
        old_server_follows_probe(&j);
    }
    // --max-rate forbids the probe's burst: auto says it did not probe.
    let j = clone(&["--dry-run", "--max-rate", "10M"]);
    assert!(j["compression"]["probe"].is_null(), "{j}");
    if p.major >= 15 {
        assert_eq!(j["compression"]["method"], "server-zstd:level=1", "{j}");
        let reason = j["compression"]["reason"].as_str().unwrap();
        assert!(reason.contains("not probed"), "{reason}");
    }
    assert!(!s.data.exists());
    shape(&hosts.server, &format!("{tag}vs"));
    shape(&hosts.client, &format!("{tag}vc"));
    let j = clone(&[]);
    if p.major >= 15 {
        // 100 Mbit/s: under the workers' threshold whatever the load.
        let rate = consistent_with_probe(&j);
        assert!(rate < 40.0, "{j}");
        assert_eq!(j["compression"]["method"], "server-zstd:level=1", "{j}");
    } else {
        // 100 Mbit/s: slow, so the tunnel is suggested.
        assert!(old_server_follows_probe(&j) < 40.0, "{j}");
    }
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    // The copy is the primary's, and it follows what comes after.
    p.sql("INSERT INTO t SELECT i, md5(i::text), 7, 0.5 FROM generate_series(20001, 20100) i");
    let want = p.sql(SUM);
    wait_for(&s, SUM, &want);
    assert_eq!(s.sql("SELECT count(*) FROM t"), "20100");
    drop(s);
    drop(p);
}

#[test]
fn auto_never_compresses_from_this_host() {
    let (p, pw) = prepared_primary(Cluster::builder());
    let s = Cluster::clone_target(&p);
    let j = clone(&p, &s, Some(&pw), &["--dry-run"]).ok();
    assert_eq!(j["compression"]["method"], "none", "{j}");
    let reason = j["compression"]["reason"].as_str().unwrap();
    assert!(reason.contains("this host"), "{reason}");
    assert!(j["compression"]["probe"].is_null(), "{j}");
    assert!(!s.data.exists());
}

/// A method given by name is done as given, also from this host: the copy
/// is the primary's.
#[test]
fn given_zstd_from_this_host_copies_the_same_rows() {
    let (p, pw) = prepared_primary(Cluster::builder());
    if p.major < 15 {
        eprintln!("skipped: server-side compression needs 15+");
        return;
    }
    p.sql(TABLE);
    let s = Cluster::clone_target(&p);
    let j = clone(&p, &s, Some(&pw), &["--compress", "server-zstd:level=1"]).ok();
    assert_eq!(j["compression"]["method"], "server-zstd:level=1", "{j}");
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    let want = p.sql(SUM);
    wait_for(&s, SUM, &want);
}

#[test]
fn given_compression_before_15_is_a_usage_error_before_the_copy() {
    let (p, pw) = prepared_primary(Cluster::builder());
    if p.major >= 15 {
        eprintln!("skipped: needs a primary older than 15");
        return;
    }
    let s = Cluster::clone_target(&p);
    for m in ["server-zstd", "server-lz4"] {
        let j = clone(&p, &s, Some(&pw), &["--compress", m]).fails(2, "USAGE");
        let msg = j["error"]["message"].as_str().unwrap();
        assert!(msg.contains("15 or later"), "{msg}");
        assert!(
            j["error"]["hint"].as_str().unwrap().contains("tunnel"),
            "{j}"
        );
        assert!(!s.data.exists(), "nothing copied");
        assert_eq!(harness::listing(s.tmp.path()), Vec::<String>::new());
    }
}

#[test]
fn bad_compress_values_are_usage_errors() {
    let dir = harness::tempdir();
    let data = dir.path().join("standby");
    for bad in [
        "gzip",
        "server-gzip",
        "server-zstd:level=99",
        "server-zstd:workers=-1",
        "server-zstd:long",
        "server-lz4:level=3",
        "fast",
    ] {
        let r = harness::pgrepctl([
            "clone-standby",
            "--json",
            "--primary",
            "host=127.0.0.1 port=1",
            "-D",
            data.to_str().unwrap(),
            "--compress",
            bad,
        ]);
        let j = r.fails(2, "INVALID_VALUE");
        let msg = j["error"]["message"].as_str().unwrap();
        assert!(msg.contains("--compress"), "{msg}");
        assert!(
            j["error"]["hint"].as_str().unwrap().contains("server-zstd"),
            "{j}"
        );
    }
    assert!(!data.exists());
}
