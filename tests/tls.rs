//! pgrepctl's own connections over TLS, against a real server that takes
//! TLS only: `ssl = on` with a certificate for 127.0.0.1 from a private CA
//! made here with rcgen, and a pg_hba.conf of `hostssl` lines behind
//! `hostnossl … reject`. SQL sessions (`check`, `smoke-test`) and the
//! replication client (clone-standby's preflight) with each sslmode; a
//! certificate from an unknown CA or for another name fails with libpq's
//! words. Skipped only where the server was built without OpenSSL (the
//! PyPI builds of 11 and 13).

use crate::harness::fixtures::prepared_primary;
use crate::harness::run::pgrepctl_env;
use crate::harness::{self, Cluster, tempdir};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const SUPERUSER_PW: &str = "tls-test-pw";

/// Whether this major's server speaks TLS: `pg_config --configure` where
/// there is a pg_config, else whether `postgres` links libssl.
pub fn built_with_openssl(bindir: &Path) -> bool {
    let pg_config = bindir.join("pg_config");
    if pg_config.exists() {
        let out = Command::new(pg_config).arg("--configure").output().unwrap();
        let s = String::from_utf8_lossy(&out.stdout);
        return s.contains("--with-openssl") || s.contains("--with-ssl=openssl");
    }
    let out = Command::new("ldd")
        .arg(bindir.join("postgres"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("libssl")
}

/// Whether the client tools of `bindir` (pg_basebackup's libpq) speak
/// TLS: 12's are borrowed from the PyPI build of 13, which does not.
pub fn client_has_ssl(bindir: &Path) -> bool {
    let tool = std::fs::canonicalize(bindir.join("pg_basebackup")).unwrap();
    let out = Command::new("ldd").arg(tool).output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains("libssl")
}

/// A CA of its own name, as (certificate PEM, issuer).
fn new_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let pem = p.self_signed(&key).unwrap().pem();
    (pem, Issuer::new(p, key))
}

/// A client certificate and key (PEM) for the role `cn`.
fn client_cert(issuer: &Issuer<'static, KeyPair>, cn: &str) -> (String, String) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A server certificate and key (PEM) for these subject alternative names.
fn server_cert(issuer: &Issuer<'static, KeyPair>, sans: &[&str]) -> (String, String) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    for s in sans {
        p.subject_alt_names.push(match s.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName((*s).try_into().unwrap()),
        });
    }
    p.distinguished_name.push(DnType::CommonName, sans[0]);
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A primary prepared by init-master that takes TCP connections over
/// TLS only, the CA file that vouches for it and one that does not.
struct TlsPrimary {
    p: Cluster,
    pw: PathBuf,
    ca: PathBuf,
    other_ca: PathBuf,
    /// A certificate and key (0600) for the role `certuser`.
    client: (PathBuf, PathBuf),
    _files: tempfile::TempDir,
}

fn tls_primary() -> Option<TlsPrimary> {
    let bindir = harness::bindir();
    if !built_with_openssl(&bindir) {
        eprintln!(
            "skipped: the server in {} was built without OpenSSL",
            bindir.display()
        );
        return None;
    }
    let (p, pw) = prepared_primary(Cluster::builder());
    let files = tempdir();
    let (ca_pem, issuer) = new_ca("pgrepctl test CA");
    let (other_pem, _) = new_ca("someone else's CA");
    let (cert, key) = server_cert(&issuer, &["127.0.0.1"]);
    let (client_pem, client_key) = client_cert(&issuer, "certuser");
    let client = (
        files.path().join("client.crt"),
        files.path().join("client.key"),
    );
    std::fs::write(&client.0, client_pem).unwrap();
    std::fs::write(&client.1, client_key).unwrap();
    std::fs::set_permissions(&client.1, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ca = files.path().join("root.crt");
    let other_ca = files.path().join("other.crt");
    std::fs::write(&ca, ca_pem).unwrap();
    std::fs::write(&other_ca, other_pem).unwrap();
    for f in [&ca, &other_ca] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let (cert_file, key_file) = (p.data.join("tls-server.crt"), p.data.join("tls-server.key"));
    let ca_file = p.data.join("tls-ca.crt");
    p.write_as_pg(&ca_file, &std::fs::read_to_string(&ca).unwrap());
    p.write_as_pg(&cert_file, &cert);
    p.write_as_pg(&key_file, &key);
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let conf = std::fs::read_to_string(p.conf_path()).unwrap();
    p.write_as_pg(
        &p.conf_path(),
        &format!(
            "{conf}\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nssl_ca_file = '{}'\n",
            cert_file.display(),
            key_file.display(),
            ca_file.display()
        ),
    );
    p.write_as_pg(
        &p.hba_path(),
        "local all all trust\n\
         local replication all trust\n\
         hostnossl all all 127.0.0.1/32 reject\n\
         hostnossl replication all 127.0.0.1/32 reject\n\
         hostssl all certuser 127.0.0.1/32 cert\n\
         hostssl all all 127.0.0.1/32 scram-sha-256\n\
         hostssl replication all 127.0.0.1/32 scram-sha-256\n",
    );
    p.sql(&format!(
        "SET password_encryption = 'scram-sha-256'; ALTER ROLE postgres PASSWORD '{SUPERUSER_PW}'; CREATE ROLE certuser LOGIN SUPERUSER; SELECT pg_reload_conf()"
    ));
    for _ in 0..50 {
        if p.sql("SHOW ssl") == "on" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(p.sql("SHOW ssl"), "on", "{}", p.file("log/server.log"));
    Some(TlsPrimary {
        p,
        pw,
        ca,
        other_ca,
        client,
        _files: files,
    })
}

impl TlsPrimary {
    /// The superuser over TCP with these extra keywords.
    fn conninfo(&self, extra: &str) -> String {
        format!("host=127.0.0.1 port={} user=postgres {extra}", self.p.port)
    }

    fn check(&self, extra: &str) -> serde_json::Value {
        let r = pgrepctl_env(
            ["check", "--json", "--primary", &self.conninfo(extra)],
            &[("PGPASSWORD", SUPERUSER_PW)],
        );
        r.json()
    }
}

/// `check` reached the primary (its only complaint: no standby).
fn assert_reached(j: &serde_json::Value, what: &str) {
    assert!(j["nodes"][0]["error"].is_null(), "{what}: {j}");
    assert_eq!(j["nodes"][0]["role"], "primary", "{what}: {j}");
    assert!(j["nodes"][0]["server_version_num"].is_u64(), "{what}: {j}");
}

/// The error of the only node `check` could not inspect.
fn node_error(j: &serde_json::Value) -> (String, String, String) {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let e = j
        .pointer("/nodes/0/error")
        .or_else(|| j.pointer("/error"))
        .unwrap_or_else(|| panic!("no error in {j}"));
    (text(&e["code"]), text(&e["message"]), text(&e["hint"]))
}

#[test]
fn sql_sessions_take_every_sslmode() {
    let Some(t) = tls_primary() else { return };
    let ca = t.ca.display().to_string();
    let other = t.other_ca.display().to_string();

    // Reached with an encrypted session, checked or not.
    for extra in [
        "sslmode=require".to_string(),
        "sslmode=prefer".to_string(),
        "sslmode=allow".to_string(),
        format!("sslmode=verify-ca sslrootcert={ca}"),
        format!("sslmode=verify-full sslrootcert={ca}"),
        format!("sslmode=require sslrootcert={ca}"),
    ] {
        let j = t.check(&extra);
        assert_reached(&j, &extra);
    }

    // An unknown authority: verify-full, and require with a root file
    // (libpq's verify-ca then).
    for extra in [
        format!("sslmode=verify-full sslrootcert={other}"),
        format!("sslmode=require sslrootcert={other}"),
    ] {
        let (code, message, hint) = node_error(&t.check(&extra));
        assert_eq!(code, "TLS_FAILED", "{extra}: {message}");
        assert!(
            message.ends_with("certificate signed by an unknown authority"),
            "{message}"
        );
        assert!(hint.contains("sslrootcert"), "{hint}");
    }

    // The name is the host's, even when the bytes go to hostaddr.
    let by_name = format!(
        "host=localhost hostaddr=127.0.0.1 port={} user=postgres",
        t.p.port
    );
    let r = pgrepctl_env(
        [
            "check",
            "--json",
            "--primary",
            &format!("{by_name} sslmode=verify-full sslrootcert={ca}"),
        ],
        &[("PGPASSWORD", SUPERUSER_PW)],
    );
    let (code, message, _) = node_error(&r.json());
    assert_eq!(code, "TLS_FAILED");
    assert!(
        // libpq's count: the IP SAN, then the common name.
        message.ends_with(
            "server certificate for \"127.0.0.1\" (and 1 other name) does not match host name \"localhost\""
        ),
        "{message}"
    );
    let r = pgrepctl_env(
        [
            "check",
            "--json",
            "--primary",
            &format!("{by_name} sslmode=verify-ca sslrootcert={ca}"),
        ],
        &[("PGPASSWORD", SUPERUSER_PW)],
    );
    assert_reached(&r.json(), "verify-ca by another name");

    // No root file: refused before connecting.
    let missing = t.p.tmp.path().join("no-such-root.crt");
    let (code, message, _) = node_error(&t.check(&format!(
        "sslmode=verify-full sslrootcert={}",
        missing.display()
    )));
    assert_eq!(code, "TLS_FAILED");
    assert_eq!(
        message,
        format!(
            "root certificate file \"{}\" does not exist",
            missing.display()
        )
    );

    // Plaintext is the server's to refuse, in its words.
    let (code, message, _) = node_error(&t.check("sslmode=disable"));
    assert_eq!(code, "HBA_REJECTED", "{message}");
    assert!(
        message.contains("pg_hba.conf rejects connection"),
        "{message}"
    );
    // "no encryption" on newer servers, "SSL off" on older ones.
    assert!(
        message.contains("no encryption") || message.contains("SSL off"),
        "{message}"
    );
}

#[test]
fn a_client_certificate_logs_in() {
    let Some(t) = tls_primary() else { return };
    let base = format!(
        "host=127.0.0.1 port={} user=certuser sslmode=verify-full sslrootcert={}",
        t.p.port,
        t.ca.display()
    );
    let with_cert = format!(
        "{base} sslcert={} sslkey={}",
        t.client.0.display(),
        t.client.1.display()
    );
    let run = |ci: &str| pgrepctl_env(["check", "--json", "--primary", ci], &[]).json();
    assert_reached(&run(&with_cert), "sslcert");
    // Without one, the server's hba line (cert) refuses, in its words.
    let (code, message, _) = node_error(&run(&base));
    assert_eq!(code, "HBA_REJECTED", "{message}");
    assert!(message.contains("certificate"), "{message}");
}

#[test]
fn smoke_test_over_require_and_verify_full() {
    let Some(t) = tls_primary() else { return };
    let s = Cluster::standby_of(&t.p, "s1");
    for extra in [
        "sslmode=require".to_string(),
        format!("sslmode=verify-full sslrootcert={}", t.ca.display()),
    ] {
        smoke_test(&t, &s, &extra);
    }
}

fn smoke_test(t: &TlsPrimary, s: &Cluster, extra: &str) {
    let primary = t.conninfo(extra);
    let r = pgrepctl_env(
        [
            "smoke-test",
            "--json",
            "--primary",
            &primary,
            "--standby",
            &s.conninfo(),
        ],
        &[("PGPASSWORD", SUPERUSER_PW)],
    );
    assert_eq!(r.code(), 0, "{extra}: {}\n{}", r.stdout(), r.stderr());
    // The primary takes TCP sessions over TLS only (hostnossl … reject).
    assert_eq!(r.json()["probes"][0]["replayed"], true, "{}", r.stdout());
}

#[test]
fn replication_connection_with_verify_full() {
    let Some(t) = tls_primary() else { return };
    let s = Cluster::clone_target(&t.p);
    let clone = |keywords: &str, extra: &[&str]| {
        let host = if keywords.contains("host=") {
            ""
        } else {
            "host=127.0.0.1 "
        };
        let primary = format!("{host}port={} user=replicator {keywords}", t.p.port);
        let pw = t.pw.display().to_string();
        let args = [
            "clone-standby",
            "--json",
            "--primary",
            &primary,
            "-D",
            s.data.to_str().unwrap(),
            "--bindir",
            s.bindir.to_str().unwrap(),
            "--port",
            &s.port.to_string(),
            "--wait",
            "30",
            "--application-name",
            "s1",
            "--password-file",
            &pw,
        ];
        pgrepctl_env(args.iter().chain(extra), &[])
    };
    // Refused before anything is copied: an unknown CA, a wrong name.
    let r = clone(
        &format!("sslmode=verify-full sslrootcert={}", t.other_ca.display()),
        &[],
    );
    let j = r.json();
    assert_eq!(j["error"]["code"], "TLS_FAILED", "{j}");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("certificate signed by an unknown authority"),
        "{j}"
    );
    assert!(!s.data.exists(), "nothing copied");
    let r = clone(
        &format!(
            "host=localhost hostaddr=127.0.0.1 sslmode=verify-full sslrootcert={}",
            t.ca.display()
        ),
        &[],
    );
    let j = r.json();
    assert_eq!(j["error"]["code"], "TLS_FAILED", "{j}");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not match host name \"localhost\""),
        "{j}"
    );
    assert!(!s.data.exists(), "nothing copied");
    // Plaintext: the server's hba says no.
    let j = clone("sslmode=disable", &[]).json();
    assert_eq!(j["error"]["code"], "HBA_REJECTED", "{j}");

    // The right CA and name: the preflight's replication connection
    // (all a dry run makes), then the copy (pg_basebackup's libpq) and
    // streaming (the walreceiver's).
    let verify_full = format!("sslmode=verify-full sslrootcert={}", t.ca.display());
    let j = clone(&verify_full, &["--dry-run"]).json();
    assert_eq!(j["ok"], true, "{j}");
    assert_eq!(j["primary"]["timeline"], 1, "{j}");
    assert!(!s.data.exists(), "a dry run copies nothing");
    if !client_has_ssl(&s.bindir) {
        eprintln!(
            "the copy skipped: pg_basebackup in {} was built without OpenSSL",
            s.bindir.display()
        );
        return;
    }
    let r = clone(&verify_full, &[]);
    let j = r.json();
    assert_eq!(j["ok"], true, "{j}\n{}", r.stderr());
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    // The walreceiver checks the same way (libpq reads the same keywords).
    let auto = s.file("postgresql.auto.conf");
    assert!(
        auto.contains(&format!(
            "sslmode=verify-full sslrootcert={}",
            t.ca.display()
        )),
        "{auto}"
    );
    assert_eq!(
        t.p.sql("SELECT ssl FROM pg_stat_ssl JOIN pg_stat_replication USING (pid)"),
        "t"
    );
}
