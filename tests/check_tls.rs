//! `check` and encryption, against real servers: a primary with `ssl =
//! on` (a certificate for 127.0.0.1 from a CA made here with rcgen) and
//! standbys whose primary_conninfo asks for sslmode=require or
//! sslmode=disable over TCP: each link is reported encrypted (with its
//! TLS version) or plaintext; `--require-ssl` does not count the
//! plaintext one, whose client is this host's loopback. The server certificate's expiry: 20 days left is a
//! WARNING, 3 days and an expired one CRITICAL, read from check's own TLS
//! session or from ssl_cert_file; a monitoring role that can do neither
//! sees it as unknown, which is no failure. Skipped where the server (or
//! the walreceiver's libpq) was built without OpenSSL.

use crate::harness::run::{pgrepctl, pgrepctl_env};
use crate::harness::{self, Cluster, Run, problem_codes};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Whether `file` (a program or a library) links libssl.
fn links_ssl(file: &Path) -> bool {
    let out = Command::new("ldd").arg(file).output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains("libssl")
}

/// Whether this major's server and its walreceiver speak TLS.
fn tls_capable(bindir: &Path) -> bool {
    let lib = bindir.parent().unwrap().join("lib");
    let walreceiver = walk(&lib)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "libpqwalreceiver.so"));
    links_ssl(&std::fs::canonicalize(bindir.join("postgres")).unwrap())
        && walreceiver.is_some_and(|w| links_ssl(&w))
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Seconds since the epoch, now.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A CA, and a server certificate and key (PEM) it signed for 127.0.0.1
/// that expires `days` (and an hour) from now.
fn server_cert(days: i64) -> (String, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "check test CA");
    let ca_key = KeyPair::generate().unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    p.distinguished_name.push(DnType::CommonName, "db1");
    let end = now() as i64 + days * 86_400 + 3600;
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(end as u64);
    let key = KeyPair::generate().unwrap();
    (
        p.signed_by(&key, &issuer).unwrap().pem(),
        key.serialize_pem(),
    )
}

/// Put a certificate expiring in `days` in place and turn ssl on (a
/// reload reads it on 10+).
fn use_cert(p: &Cluster, days: i64) {
    let (cert, key) = server_cert(days);
    let (cert_file, key_file) = (p.data.join("tls-server.crt"), p.data.join("tls-server.key"));
    p.write_as_pg(&cert_file, &cert);
    p.write_as_pg(&key_file, &key);
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let conf = std::fs::read_to_string(p.conf_path()).unwrap();
    if !conf.contains("ssl = on") {
        p.write_as_pg(
            &p.conf_path(),
            &format!(
                "{conf}\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                cert_file.display(),
                key_file.display()
            ),
        );
    }
    p.sql("SELECT pg_reload_conf()");
    for _ in 0..50 {
        if p.sql("SHOW ssl") == "on" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        p.sql("SHOW ssl"),
        "on",
        "{}",
        std::fs::read_to_string(&p.log).unwrap_or_default()
    );
}

/// A primary with ssl on, or None (skipped) on a major without TLS.
fn ssl_primary(days: i64) -> Option<Cluster> {
    let bindir = harness::bindir();
    if !tls_capable(&bindir) {
        eprintln!(
            "skipped: the server in {} was built without OpenSSL",
            bindir.display()
        );
        return None;
    }
    let p = Cluster::new();
    use_cert(&p, days);
    Some(p)
}

/// A standby of `p` streaming over TCP (127.0.0.1, the initdb hba's trust
/// line) with this sslmode.
fn tcp_standby(p: &Cluster, name: &str, sslmode: &str) -> Cluster {
    repoint(Cluster::standby_of(p, name), p, name, sslmode)
}

/// Standby `s` made to stream from `p` over TCP with this sslmode.
fn repoint(mut s: Cluster, p: &Cluster, name: &str, sslmode: &str) -> Cluster {
    let conninfo = format!(
        "host=127.0.0.1 port={} user=postgres application_name={name} sslmode={sslmode}",
        p.port
    );
    s.stop();
    if p.major >= 12 {
        let auto = s.data.join("postgresql.auto.conf");
        let text = std::fs::read_to_string(&auto).unwrap();
        s.write_as_pg(&auto, &format!("{text}primary_conninfo = '{conninfo}'\n"));
    } else {
        s.write_as_pg(
            &s.data.join("recovery.conf"),
            &format!("standby_mode = 'on'\nprimary_conninfo = '{conninfo}'\n"),
        );
    }
    s.start();
    s.wait_streaming();
    s
}

#[test]
fn each_link_is_encrypted_or_plaintext_and_loopback_passes_require_ssl() {
    let Some(p) = ssl_primary(365) else { return };
    let enc = tcp_standby(&p, "s_tls", "require");
    let plain = tcp_standby(&p, "s_plain", "disable");
    // A cascade: s_tls serves it over TLS too (its copy of the primary's
    // configuration has ssl on, and the certificate files are in PGDATA).
    let casc = repoint(
        Cluster::cascade_of(&p, &enc, "s_casc"),
        &enc,
        "s_casc",
        "require",
    );
    let (pc, ec, plc, cc) = (
        p.conninfo(),
        enc.conninfo(),
        plain.conninfo(),
        casc.conninfo(),
    );
    let nodes = [
        "--primary",
        &pc,
        "--standby",
        &ec,
        "--standby",
        &plc,
        "--standby",
        &cc,
    ];
    let run = |extra: &[&str]| {
        let mut args = vec!["check"];
        args.extend(extra);
        args.extend(nodes);
        pgrepctl(args)
    };

    // Reported, not judged, without --require-ssl.
    let r = run(&["--json"]);
    let j = r.json();
    assert_eq!(r.code(), 0, "{j}");
    let pair = |j: &serde_json::Value, name: &str| {
        j["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["standby"] == name)
            .unwrap_or_else(|| panic!("no pair {name} in {j}"))
            .clone()
    };
    let e = pair(&j, "s_tls");
    assert_eq!(e["ssl"], true, "{j}");
    assert!(
        e["ssl_version"].as_str().unwrap().starts_with("TLSv1."),
        "{e}"
    );
    assert!(e["ssl_cipher"].is_string(), "{e}");
    let cp = pair(&j, "s_casc");
    assert_eq!(
        (&cp["upstream"], &cp["ssl"]),
        (&"s_tls".into(), &true.into()),
        "{cp}"
    );
    let pl = pair(&j, "s_plain");
    assert_eq!(
        (&pl["ssl"], &pl["ssl_version"]),
        (&false.into(), &serde_json::Value::Null),
        "{pl}"
    );
    // The primary's certificate, read from ssl_cert_file (check came in
    // over the socket, as the superuser).
    let c = &j["certificates"][0];
    assert_eq!(
        (&c["node"], &c["source"], &c["status"]),
        (&"primary".into(), &"file".into(), &"OK".into()),
        "{j}"
    );
    assert_eq!(c["days_left"], 365, "{c}");

    let r = run(&[]);
    let text = r.stdout();
    let line = |name: &str| {
        // The pairs' table, after the nodes'.
        text.lines()
            .skip_while(|l| !l.starts_with("STANDBY "))
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{text}"))
    };
    assert!(line("s_tls ").contains(" TLSv1."), "{text}");
    assert!(line("s_plain ").contains(" plaintext "), "{text}");
    assert!(line("s_casc ").contains(" TLSv1."), "{text}");
    assert!(text.contains("\nCERTIFICATE "), "{text}");
    for l in text.lines() {
        assert!(l.chars().count() <= 80, "{l:?}");
    }
    // -v names the cipher.
    let r = run(&["-v"]);
    assert!(
        r.stderr().contains("s_tls: replication over TLSv1."),
        "{}",
        r.stderr()
    );

    // --require-ssl: the plaintext link comes from 127.0.0.1, this host,
    // as a standby on the primary's host or an SSH tunnel's far end does:
    // it crosses no network and is not counted (the unit tests hold a
    // client on another host, which is). Still reported as plaintext.
    let r = run(&["--json", "--require-ssl"]);
    let j = r.json();
    assert_eq!(r.code(), 0, "{j}");
    assert_eq!(problem_codes(&j), Vec::<String>::new(), "{j}");
    assert_eq!(pair(&j, "s_plain")["client_addr"], "127.0.0.1", "{j}");
    assert_eq!(
        (&pair(&j, "s_plain")["ssl"], &pair(&j, "s_plain")["status"]),
        (&false.into(), &"OK".into()),
        "{j}"
    );

    // The monitoring formats.
    let r = run(&["--format", "prometheus"]);
    for want in [
        "pgrepctl_replication_ssl{standby=\"s_tls\"} 1\n",
        "pgrepctl_replication_ssl{standby=\"s_plain\"} 0\n",
        "pgrepctl_server_certificate_expiry_seconds{node=\"primary\"} ",
    ] {
        assert!(
            r.stdout().contains(want),
            "{want} missing in\n{}",
            r.stdout()
        );
    }
    let r = run(&["--format", "nagios"]);
    for want in [
        " ssl_s_tls=1;;;0;1",
        " ssl_s_plain=0;;;0;1",
        " cert_days_primary=365;30:;7:",
    ] {
        assert!(
            r.stdout().contains(want),
            "{want} missing in {}",
            r.stdout()
        );
    }
}

/// check on the primary alone, over `conninfo`, with `extra` flags.
fn check_primary(conninfo: &str, extra: &[&str]) -> Run {
    let mut args = vec!["check", "--primary", conninfo];
    args.extend(extra);
    pgrepctl_env(args, &[])
}

#[test]
fn an_expiring_certificate_warns_then_goes_critical() {
    let Some(p) = ssl_primary(20) else { return };
    let socket = p.conninfo();
    let tcp = format!(
        "host=127.0.0.1 port={} user=postgres sslmode=require",
        p.port
    );
    let judged = |conninfo: &str, extra: &[&str]| {
        let mut args = vec!["--json"];
        args.extend(extra);
        let r = check_primary(conninfo, &args);
        let j = r.json();
        (r.code(), problem_codes(&j), j["certificates"][0].clone())
    };
    // No standby: NO_STANDBY_CONNECTED is CRITICAL on its own, so each
    // run names the certificate's finding and its exit status apart.
    let status_of = |c: &serde_json::Value| c["status"].as_str().unwrap().to_string();

    // 20 days: WARNING, from the file (socket) and from the handshake (TCP).
    for (conninfo, source) in [(&socket, "file"), (&tcp, "handshake")] {
        let (_, codes, c) = judged(conninfo, &[]);
        assert_eq!(
            (status_of(&c).as_str(), c["source"].as_str()),
            ("WARNING", Some(source)),
            "{c}"
        );
        assert_eq!(c["days_left"], 20, "{c}");
        assert!(codes.contains(&"CERT_EXPIRING".to_string()), "{codes:?}");
    }
    // The thresholds are flags, and checked.
    let (_, codes, c) = judged(
        &socket,
        &["--cert-warn-days", "10", "--cert-crit-days", "2"],
    );
    assert_eq!(status_of(&c), "OK", "{c}");
    assert!(!codes.contains(&"CERT_EXPIRING".to_string()), "{codes:?}");
    let r = check_primary(
        &socket,
        &["--json", "--cert-warn-days", "5", "--cert-crit-days", "7"],
    );
    assert_eq!(r.code(), 3, "{}", r.stdout());
    assert_eq!(r.json()["error"]["code"], "INVALID_VALUE");

    // 3 days, and expired: CRITICAL (and the server still starts).
    for days in [3, -2] {
        use_cert(&p, days);
        for (conninfo, source) in [(&socket, "file"), (&tcp, "handshake")] {
            let (code, _, c) = judged(conninfo, &[]);
            assert_eq!(
                (code, status_of(&c).as_str(), c["source"].as_str()),
                (2, "CRITICAL", Some(source)),
                "{days}: {c}"
            );
            assert_eq!(c["days_left"], days, "{c}");
        }
    }
    let r = check_primary(&socket, &[]);
    assert!(r.stdout().contains("expired 1 day ago"), "{}", r.stdout());

    // A monitoring role without pg_read_server_files over the socket:
    // unknown, said at -v, and no finding.
    p.sql("CREATE ROLE mon LOGIN IN ROLE pg_monitor");
    let mon = format!(
        "host={} port={} user=mon dbname=postgres",
        p.sock.display(),
        p.port
    );
    let (_, codes, c) = judged(&mon, &[]);
    assert_eq!(
        (status_of(&c).as_str(), &c["days_left"]),
        ("OK", &serde_json::Value::Null),
        "{c}"
    );
    assert!(c["unknown"].is_string(), "{c}");
    assert!(!codes.contains(&"CERT_EXPIRING".to_string()), "{codes:?}");
    let r = check_primary(&mon, &["-v"]);
    assert!(
        r.stderr()
            .contains("primary: server certificate expiry unknown: "),
        "{}",
        r.stderr()
    );
    assert!(!r.stdout().contains("\nCERTIFICATE "), "{}", r.stdout());
    // Over TLS the same role sees it: the handshake needs no right.
    let mon_tcp = format!(
        "host=127.0.0.1 port={} user=mon dbname=postgres sslmode=require",
        p.port
    );
    let (_, _, c) = judged(&mon_tcp, &[]);
    assert_eq!(
        (status_of(&c).as_str(), c["source"].as_str()),
        ("CRITICAL", Some("handshake")),
        "{c}"
    );
}
