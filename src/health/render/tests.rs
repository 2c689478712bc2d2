use super::*;
use crate::health::{Archive, ArchiveProbe, Node, Pair, Slot, Status, Thresholds};

fn sample() -> Report {
    let mut r = Report::new("check");
    r.thresholds = Some(Thresholds::default());
    r.nodes.push(Node {
        name: "primary".into(),
        role: Role::Primary,
        target: "host=/tmp port=5432 user=postgres".into(),
        status: Status::Ok,
        server_version_num: Some(150004),
        in_recovery: Some(false),
        timeline: Some(1),
        wal_lsn: Some("0/3000000".into()),
        upstream: None,
        wal_receiver: None,
        wal_source: None,
        read_only: Some(false),
        replay: None,
        error: None,
    });
    r.pairs = Some(vec![Pair {
        standby: "s\"1 x".into(),
        upstream: Some("primary".into()),
        application_name: Some("s1".into()),
        client_addr: None,
        state: Some("streaming".into()),
        sync_state: Some("async".into()),
        sent_lsn: None,
        write_lsn: None,
        flush_lsn: None,
        replay_lsn: None,
        lag_bytes: Some(0),
        lag_seconds: Some(0.25),
        streaming: Some(true),
        ssl: Some(true),
        ssl_version: Some("TLSv1.3".into()),
        ssl_cipher: Some("TLS_AES_256_GCM_SHA384".into()),
        ssl_bits: Some(256),
        status: Status::Ok,
    }]);
    r.slots = Some(vec![Slot {
        name: "old".into(),
        slot_type: "physical".into(),
        active: false,
        restart_lsn: Some("0/1000000".into()),
        retained_bytes: Some(2048),
        wal_status: None,
        status: Status::Warning,
    }]);
    r.problem(
        Status::Warning,
        "old",
        "SLOT_INACTIVE",
        "inactive slot retains 2.0kB of WAL",
        Some("drop it".into()),
    );
    r.finish()
}

#[test]
fn nagios_line() {
    let s = nagios(&sample());
    assert_eq!(s.lines().count(), 1);
    assert!(
        s.starts_with("PGREPCTL WARNING - old: inactive slot retains 2.0kB of WAL | "),
        "{s}"
    );
    assert!(s.contains("lag_bytes_s_1_x=0B;16777216;268435456;0"), "{s}");
    assert!(s.contains("lag_seconds_s_1_x=0.25s;30;300;0"), "{s}");
    assert!(s.contains("slot_retained_old=2048B;;;0"), "{s}");
}

#[test]
fn unknown_lag_is_shown_as_unknown() {
    let mut r = sample();
    let p = &mut r.pairs.as_mut().unwrap()[0];
    (p.lag_bytes, p.lag_seconds, p.streaming) = (None, None, Some(false));
    let s = nagios(&r);
    assert!(s.contains("lag_bytes_s_1_x=U;16777216;268435456;0"), "{s}");
    assert!(s.contains("lag_seconds_s_1_x=U;30;300;0"), "{s}");
    let s = prometheus(&r);
    assert!(
        s.contains("pgrepctl_replication_lag_bytes{standby=\"s\\\"1 x\"} NaN\n"),
        "{s}"
    );
    assert!(
        s.contains("pgrepctl_replication_lag_seconds{standby=\"s\\\"1 x\"} NaN\n"),
        "{s}"
    );
    assert!(
        s.contains("pgrepctl_wal_receiver_streaming{standby=\"s\\\"1 x\"} 0\n"),
        "{s}"
    );
    let s = text(&r);
    assert!(!s.contains(" 0B "), "{s}");
}

#[test]
fn prometheus_text() {
    let s = prometheus(&sample());
    assert!(
        s.contains("# TYPE pgrepctl_up gauge\npgrepctl_up{node=\"primary\",role=\"primary\"} 1\n")
    );
    assert!(
        s.contains("pgrepctl_replication_lag_bytes{standby=\"s\\\"1 x\"} 0\n"),
        "{s}"
    );
    assert!(s.contains("pgrepctl_replication_lag_seconds{standby=\"s\\\"1 x\"} 0.25\n"));
    assert!(s.contains("pgrepctl_slot_retained_bytes{slot=\"old\",slot_type=\"physical\"} 2048\n"));
    assert!(s.contains("pgrepctl_check_status{command=\"check\"} 1\n"));
    assert!(
        s.contains("pgrepctl_read_only{node=\"primary\",role=\"primary\"} 0\n"),
        "{s}"
    );
    for line in s.lines() {
        assert!(
            line.starts_with("# ") || line.starts_with("pgrepctl_"),
            "{line}"
        );
    }
}

#[test]
fn text_fits_80_columns() {
    let mut r = sample();
    r.problems[0].message = "word ".repeat(60);
    r.problems[0].hint = Some("hint ".repeat(40));
    let s = text(&r);
    for line in s.lines() {
        assert!(line.chars().count() <= 80, "{line:?}");
    }
    assert!(s.starts_with("check: WARNING (1 warning)\n"), "{s}");
}

#[test]
fn sizes_and_times() {
    assert_eq!(human_bytes(0), "0B");
    assert_eq!(human_bytes(1536), "1.5kB");
    assert_eq!(human_bytes(16 << 20), "16.0MB");
    assert_eq!(human_seconds(0.0042), "4ms");
    assert_eq!(human_seconds(400.0), "6.7min");
}

#[test]
fn each_node_shows_its_timeline() {
    let r = sample();
    assert!(
        prometheus(&r).contains(
            "# TYPE pgrepctl_timeline gauge\npgrepctl_timeline{node=\"primary\",role=\"primary\"} 1\n"
        ),
        "{}",
        prometheus(&r)
    );
    let t = text(&r);
    assert!(
        t.contains("NODE                 ROLE    TLI STATUS    DETAIL\n"),
        "{t}"
    );
    assert!(
        t.contains("primary              primary   1 OK        PostgreSQL 15\n"),
        "{t}"
    );
    let mut unknown = sample();
    unknown.nodes[0].timeline = None;
    assert!(
        text(&unknown).contains("primary   - OK"),
        "{}",
        text(&unknown)
    );
}

/// The sample with an archiver: 7 archived, 2 failed, 3 waiting.
fn with_archive(ready: Option<i64>) -> Report {
    let mut r = sample();
    r.archive = Some(Box::new(Archive {
        node: "primary".into(),
        archive_mode: "on".into(),
        archive_timeout_seconds: Some(60.0),
        archived_count: 7,
        failed_count: 2,
        last_archived_wal: Some("000000010000000000000007".into()),
        last_archived_age_seconds: Some(12.5),
        last_failed_wal: None,
        last_failed_age_seconds: None,
        failing: false,
        ready_count: ready,
        oldest_ready_age_seconds: None,
        ready_warn: 16,
        ready_crit: 128,
        probe: Some(ArchiveProbe {
            segment: Some("000000010000000000000008".into()),
            archived: true,
            waited_seconds: 0.3,
            status: Status::Ok,
        }),
        status: Status::Ok,
    }));
    r
}

#[test]
fn the_archiver_in_every_format() {
    let mut r = with_archive(Some(3));
    r.problems.clear();
    let s = nagios(&r);
    assert!(
        s.contains(" streaming, max lag 0B / 250ms, archiver: 7 archived, 3 waiting | "),
        "{s}"
    );
    for want in [
        " archive_archived=7c;;;0",
        " archive_failed=2c;;;0",
        " archive_ready=3;16;128;0",
        " archive_last_archived_age=12.5s;;;0",
    ] {
        assert!(s.contains(want), "{want} missing in {s}");
    }
    let s = prometheus(&r);
    for want in [
        "# TYPE pgrepctl_archive_archived_total counter\npgrepctl_archive_archived_total{node=\"primary\"} 7\n",
        "# TYPE pgrepctl_archive_failed_total counter\npgrepctl_archive_failed_total{node=\"primary\"} 2\n",
        "# TYPE pgrepctl_archive_ready gauge\npgrepctl_archive_ready{node=\"primary\"} 3\n",
        "pgrepctl_archive_last_archived_age_seconds{node=\"primary\"} 12.5\n",
        "pgrepctl_archive_probe_success{node=\"primary\"} 1\n",
        "# TYPE pgrepctl_up gauge\n",
    ] {
        assert!(s.contains(want), "{want} missing in\n{s}");
    }
    let t = text(&r);
    assert!(
        t.contains("\nprimary                      7       2       3     12.5s ago  OK\n"),
        "{t}"
    );
    assert!(
        t.contains("probe: 000000010000000000000008 archived in 300ms, OK"),
        "{t}"
    );
    let j = json(&r);
    assert!(j.contains("\"archive\":{\"node\":\"primary\""), "{j}");
}

#[test]
fn hidden_ready_files_are_shown_as_unknown() {
    let r = with_archive(None);
    assert!(nagios(&r).contains(" archive_ready=U;16;128;0"));
    assert!(prometheus(&r).contains("pgrepctl_archive_ready{node=\"primary\"} NaN\n"));
    let t = text(&r);
    assert!(t.contains(" unknown "), "{t}");
    for line in t.lines() {
        assert!(line.chars().count() <= 80, "{line:?}");
    }
}

#[test]
fn no_archiver_no_archive_output() {
    let r = sample();
    assert!(!nagios(&r).contains("archive_"));
    assert!(!prometheus(&r).contains("pgrepctl_archive"));
    assert!(!text(&r).contains("ARCHIVER"));
    assert!(!json(&r).contains("\"archive\""));
}

/// The sample with a plaintext link beside the encrypted one and two
/// certificates: one expiring in 20 days, one unknown.
fn with_tls() -> Report {
    let mut r = sample();
    let mut plain = r.pairs.as_ref().unwrap()[0].clone();
    plain.standby = "s2".into();
    (
        plain.ssl,
        plain.ssl_version,
        plain.ssl_cipher,
        plain.ssl_bits,
    ) = (Some(false), None, None, None);
    plain.client_addr = Some("10.0.0.2".into());
    r.pairs.as_mut().unwrap().push(plain);
    let cert = |node: &str, days: Option<i64>| crate::health::Certificate {
        node: node.into(),
        source: days.map(|_| "handshake".into()),
        subject: days.map(|_| "CN=db1".into()),
        not_after: days.map(|_| "2027-01-01T00:00:00Z".into()),
        expires_in_seconds: days.map(|d| d * 86_400 + 60),
        days_left: days,
        unknown: days.is_none().then(|| "the role may not".into()),
        warn_days: 30,
        crit_days: 7,
        status: if days.is_some() {
            Status::Warning
        } else {
            Status::Ok
        },
    };
    r.certificates = Some(vec![cert("primary", Some(20)), cert("s1", None)]);
    r
}

#[test]
fn encryption_and_certificates_in_every_format() {
    let r = with_tls();
    let s = nagios(&r);
    for want in [
        " ssl_s_1_x=1;;;0;1",
        " ssl_s2=0;;;0;1",
        " cert_days_primary=20;30:;7:",
        " cert_days_s1=U;30:;7:",
    ] {
        assert!(s.contains(want), "{want} missing in {s}");
    }
    let s = prometheus(&r);
    for want in [
        "# TYPE pgrepctl_replication_ssl gauge\npgrepctl_replication_ssl{standby=\"s\\\"1 x\"} 1\npgrepctl_replication_ssl{standby=\"s2\"} 0\n",
        "pgrepctl_server_certificate_expiry_seconds{node=\"primary\"} 1728060\n",
        "pgrepctl_server_certificate_expiry_seconds{node=\"s1\"} NaN\n",
    ] {
        assert!(s.contains(want), "{want} missing in\n{s}");
    }
    let t = text(&r);
    assert!(
        t.contains(
            "STANDBY              STATE      SYNC            LAG  LAG TIME LINK      STATUS\n"
        ),
        "{t}"
    );
    assert!(t.contains(" TLSv1.3   OK\n"), "{t}");
    assert!(t.contains(" plaintext OK\n"), "{t}");
    assert!(
        t.contains("primary              2027-01-01T00:00:00Z        20  handshake WARNING\n"),
        "{t}"
    );
    // The unknown certificate is for -v only.
    assert!(!t.contains("\ns1    "), "{t}");
    for line in t.lines() {
        assert!(line.chars().count() <= 80, "{line:?}");
    }
    let j = json(&r);
    assert!(j.contains("\"ssl\":true,\"ssl_version\":\"TLSv1.3\",\"ssl_cipher\":\"TLS_AES_256_GCM_SHA384\",\"ssl_bits\":256"), "{j}");
    assert!(
        j.contains("\"certificates\":[{\"node\":\"primary\",\"source\":\"handshake\""),
        "{j}"
    );
    // A socket link, and none known.
    let mut r = sample();
    r.pairs.as_mut().unwrap()[0].ssl = Some(false);
    assert!(text(&r).contains(" socket    OK\n"), "{}", text(&r));
    // Unknown: the series stays, its value is no number.
    r.pairs.as_mut().unwrap()[0].ssl = None;
    assert!(nagios(&r).contains(" ssl_s_1_x=U;;;0;1"), "{}", nagios(&r));
    assert!(
        prometheus(&r).contains("pgrepctl_replication_ssl{standby=\"s\\\"1 x\"} NaN\n"),
        "{}",
        prometheus(&r)
    );
    assert!(!json(&r).contains("certificates"));
}

#[test]
fn prometheus_names_the_standbys_wal_source() {
    let mut r = sample();
    assert!(!prometheus(&r).contains("pgrepctl_wal_source"));
    let mut standby = r.nodes[0].clone();
    (standby.name, standby.role) = ("s1".into(), Role::Standby);
    standby.wal_source = Some("archive".into());
    r.nodes.push(standby);
    let s = prometheus(&r);
    for (source, v) in [("streaming", 0), ("archive", 1), ("none", 0)] {
        let line = format!("pgrepctl_wal_source{{node=\"s1\",source=\"{source}\"}} {v}\n");
        assert!(s.contains(&line), "{line}{s}");
    }
    assert!(s.contains("# TYPE pgrepctl_wal_source gauge\n"), "{s}");
}
