//! The keywords as libpq reads them, libpq's host-name rules, and the
//! verifiers on certificates made here with rcgen.

use super::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};

fn env_none(_: &str) -> Option<String> {
    None
}

#[test]
fn keywords_come_out_of_strings_and_uris() {
    let (rest, t) = split_with(
        "host=db1 sslmode=verify-full sslrootcert='/etc/my ca.crt' port=5433 sslcert=/c sslkey=/k sslcrl=/r",
        env_none,
    )
    .unwrap();
    assert_eq!(rest, "host=db1 port=5433");
    assert_eq!(t.mode, SslMode::VerifyFull);
    assert_eq!(t.rootcert.as_deref(), Some("/etc/my ca.crt"));
    assert_eq!(t.cert, Some(PathBuf::from("/c")));
    assert_eq!(t.key, Some(PathBuf::from("/k")));
    assert_eq!(t.crl, Some(PathBuf::from("/r")));

    // Untouched when there is nothing to take out.
    let (rest, t) = split_with("host='a b'  port=1", env_none).unwrap();
    assert_eq!(rest, "host='a b'  port=1");
    assert_eq!(t, TlsSettings::default());
    assert_eq!(t.mode, SslMode::Prefer, "libpq's default");

    let (rest, t) = split_with(
        "postgresql://u@h:5/d?sslmode=verify-ca&application_name=x&sslrootcert=%2Ftmp%2Fca.crt",
        env_none,
    )
    .unwrap();
    assert_eq!(rest, "postgresql://u@h:5/d?application_name=x");
    assert_eq!(t.mode, SslMode::VerifyCa);
    assert_eq!(t.rootcert.as_deref(), Some("/tmp/ca.crt"));
    let (rest, _) = split_with("postgres://h/d?sslmode=require", env_none).unwrap();
    assert_eq!(rest, "postgres://h/d");
}

#[test]
fn keywords_for_a_standby_are_absolute_and_complete() {
    let (_, t) = split_with(
        "host=h sslmode=verify-full sslrootcert=ca.crt sslcrl=/r.crl",
        env_none,
    )
    .unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        t.keywords(),
        vec![
            ("sslmode", "verify-full".to_string()),
            ("sslrootcert", cwd.join("ca.crt").display().to_string()),
            ("sslcrl", "/r.crl".to_string()),
        ]
    );
    assert!(TlsSettings::default().keywords().is_empty());
}

#[test]
fn environment_fills_in_and_modes_are_checked() {
    let env = |k: &str| match k {
        "PGSSLMODE" => Some("require".to_string()),
        "PGSSLROOTCERT" => Some("/env.crt".to_string()),
        _ => None,
    };
    let (_, t) = split_with("host=h", env).unwrap();
    assert_eq!(
        (t.mode, t.rootcert.as_deref()),
        (SslMode::Require, Some("/env.crt"))
    );
    let (_, t) = split_with("host=h sslmode=disable", env).unwrap();
    assert_eq!(
        t.mode,
        SslMode::Disable,
        "the string wins over the environment"
    );

    for m in [
        "disable",
        "allow",
        "prefer",
        "require",
        "verify-ca",
        "verify-full",
    ] {
        assert_eq!(SslMode::parse(m).unwrap().as_str(), m);
    }
    let e = split_with("sslmode=verify", env_none).unwrap_err();
    assert_eq!(e.code, Code::InvalidValue);
    assert_eq!(e.message, "invalid sslmode value: \"verify\"");

    // libpq 16: system roots make verify-full the default, and nothing less.
    let (_, t) = split_with("sslrootcert=system", env_none).unwrap();
    assert_eq!(t.mode, SslMode::VerifyFull);
    let e = split_with("sslrootcert=system sslmode=require", env_none).unwrap_err();
    assert!(
        e.message.contains("weak sslmode \"require\""),
        "{}",
        e.message
    );
}

/// A CA, and a server certificate it signed for `sans` (IP or DNS) and
/// common name `cn`.
fn ca_and_server(
    sans: &[&str],
    cn: Option<&str>,
) -> (
    rcgen::Certificate,
    Issuer<'static, KeyPair>,
    rcgen::Certificate,
) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Each CA its own name: a stranger's certificate then has an unknown
    // issuer (under the same name it would have a bad signature).
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ca.distinguished_name
        .push(DnType::CommonName, format!("test CA {n}"));
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let server = server_signed(&issuer, sans, cn);
    (ca_cert, issuer, server)
}

fn server_signed(
    issuer: &Issuer<'static, KeyPair>,
    sans: &[&str],
    cn: Option<&str>,
) -> rcgen::Certificate {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    for s in sans {
        p.subject_alt_names.push(match s.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName((*s).try_into().unwrap()),
        });
    }
    p.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(cn) = cn {
        p.distinguished_name.push(DnType::CommonName, cn);
    }
    p.signed_by(&KeyPair::generate().unwrap(), issuer).unwrap()
}

#[test]
fn host_names_match_as_libpq_matches_them() {
    let (_, issuer, cert) = ca_and_server(
        &["127.0.0.1", "db1.example.org", "*.db.example"],
        Some("cn.example"),
    );
    let der = cert.der().as_ref();
    assert_eq!(name_matches(der, "127.0.0.1"), Ok(()));
    assert_eq!(name_matches(der, "DB1.example.org"), Ok(()));
    assert_eq!(name_matches(der, "a.db.example"), Ok(()));
    // A wildcard covers one label only.
    assert!(name_matches(der, "a.b.db.example").is_err());
    // libpq names the first SAN and counts the others of both kinds.
    let e = name_matches(der, "10.0.0.2").unwrap_err();
    assert_eq!(
        e,
        "server certificate for \"127.0.0.1\" (and 2 other names) does not match host name \"10.0.0.2\""
    );
    let e = name_matches(der, "db2.example.org").unwrap_err();
    assert!(
        e.starts_with("server certificate for \"127.0.0.1\" (and 2 other names) does not match host name \"db2.example.org\""),
        "{e}"
    );
    // The common name is ignored when there is a SAN of the host's kind...
    assert!(name_matches(der, "cn.example").is_err());
    // ...and used when there is none of that kind.
    let only_ip = server_signed(&issuer, &["127.0.0.1"], Some("db1"));
    assert_eq!(name_matches(only_ip.der().as_ref(), "db1"), Ok(()));
    let e = name_matches(only_ip.der().as_ref(), "10.0.0.2").unwrap_err();
    assert_eq!(
        e,
        "server certificate for \"127.0.0.1\" does not match host name \"10.0.0.2\""
    );
    let only_dns = server_signed(&issuer, &["db1"], Some("10.0.0.2"));
    assert_eq!(name_matches(only_dns.der().as_ref(), "10.0.0.2"), Ok(()));
    let none = server_signed(&issuer, &[], None);
    assert_eq!(
        name_matches(none.der().as_ref(), "db1").unwrap_err(),
        "could not get server's host name from server certificate"
    );
    assert!(wildcard_match("*.a.b", "X.A.B"));
    assert!(!wildcard_match("*.a.b", ".a.b"));
}

fn verifier(ca: &rcgen::Certificate, check_name: bool) -> Verifier {
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Verifier {
        webpki: WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap(),
        check_name,
    }
}

fn verify(v: &Verifier, cert: &rcgen::Certificate, host: &str) -> std::result::Result<(), Failure> {
    v.verify_server_cert(
        cert.der(),
        &[],
        &server_name(host).unwrap(),
        &[],
        UnixTime::now(),
    )
    .map(|_| ())
    .map_err(|e| describe(&e))
}

#[test]
fn verify_ca_checks_the_chain_and_verify_full_the_name_too() {
    let (ca, _, cert) = ca_and_server(&["127.0.0.1"], None);
    let (other_ca, _, stranger) = ca_and_server(&["127.0.0.1"], None);
    let full = verifier(&ca, true);
    let ca_only = verifier(&ca, false);
    assert_eq!(verify(&full, &cert, "127.0.0.1"), Ok(()));
    let e = verify(&full, &cert, "10.0.0.2").unwrap_err();
    assert_eq!(
        e.message,
        "server certificate for \"127.0.0.1\" does not match host name \"10.0.0.2\""
    );
    assert_eq!(e.hint, HINT_NAME);
    assert_eq!(verify(&ca_only, &cert, "10.0.0.2"), Ok(()));
    for v in [&full, &ca_only] {
        let e = verify(v, &stranger, "127.0.0.1").unwrap_err();
        assert_eq!(e.message, "certificate signed by an unknown authority");
    }
    assert_eq!(
        verify(&verifier(&other_ca, true), &stranger, "127.0.0.1"),
        Ok(())
    );
}

#[test]
fn files_are_read_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.crt");
    let settings = |mode, root: &Path| TlsSettings {
        mode,
        rootcert: Some(root.display().to_string()),
        ..Default::default()
    };
    let e = settings(SslMode::VerifyFull, &missing)
        .client_config()
        .unwrap_err();
    assert_eq!(e.code, Code::TlsFailed);
    assert_eq!(
        e.message,
        format!(
            "root certificate file \"{}\" does not exist",
            missing.display()
        )
    );
    // Without verification, a root file that is not there is no matter.
    assert!(
        settings(SslMode::Require, &missing)
            .client_config()
            .unwrap()
            .is_some()
    );
    assert!(
        settings(SslMode::Disable, &missing)
            .client_config()
            .unwrap()
            .is_none()
    );

    let (ca, _, _) = ca_and_server(&["127.0.0.1"], None);
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    assert!(
        settings(SslMode::VerifyCa, &ca_file)
            .client_config()
            .is_ok()
    );
    let junk = dir.path().join("junk.crt");
    std::fs::write(&junk, "not a certificate").unwrap();
    assert_eq!(
        settings(SslMode::VerifyCa, &junk)
            .client_config()
            .unwrap_err()
            .code,
        Code::TlsFailed
    );

    // A client certificate needs its key, readable by its owner only.
    let cert = dir.path().join("client.crt");
    std::fs::write(&cert, ca.pem()).unwrap();
    let key = dir.path().join("client.key");
    let with_client = TlsSettings {
        mode: SslMode::Require,
        cert: Some(cert),
        key: Some(key.clone()),
        ..Default::default()
    };
    let e = with_client.client_config().unwrap_err();
    assert!(
        e.message
            .starts_with("certificate present, but not private key file"),
        "{}",
        e.message
    );
    std::fs::write(&key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = with_client.client_config().unwrap_err();
    assert!(
        e.message.contains("has group or world access"),
        "{}",
        e.message
    );
}

#[test]
fn server_names() {
    assert!(matches!(
        server_name("127.0.0.1").unwrap(),
        ServerName::IpAddress(_)
    ));
    assert!(matches!(
        server_name("db1.example").unwrap(),
        ServerName::DnsName(_)
    ));
    assert!(server_name("not a name").is_err());
}

#[test]
fn a_crl_revokes_and_must_cover_the_issuer() {
    use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
    let dir = tempfile::tempdir().unwrap();
    let (ca, issuer, _) = ca_and_server(&["127.0.0.1"], None);
    let serial = |n: u64| SerialNumber::from(n);
    let server = |n: u64| {
        let mut p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        p.serial_number = Some(serial(n));
        p.signed_by(&KeyPair::generate().unwrap(), &issuer).unwrap()
    };
    let crl = |by: &Issuer<'static, KeyPair>, revoked: &[u64]| {
        CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2020, 1, 1),
            next_update: rcgen::date_time_ymd(2099, 1, 1),
            crl_number: serial(1),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|n| RevokedCertParams {
                    serial_number: serial(*n),
                    revocation_time: rcgen::date_time_ymd(2021, 1, 1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(by)
        .unwrap()
        .pem()
        .unwrap()
    };
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let check = |crl_pem: &str, cert: &rcgen::Certificate| {
        let crl_file = dir.path().join("root.crl");
        std::fs::write(&crl_file, crl_pem).unwrap();
        let settings = TlsSettings {
            mode: SslMode::VerifyFull,
            rootcert: Some(ca_file.display().to_string()),
            crl: Some(crl_file),
            ..Default::default()
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = settings.roots().unwrap().unwrap();
        let v = Verifier {
            webpki: settings.webpki(roots, provider).unwrap(),
            check_name: true,
        };
        verify(&v, cert, "127.0.0.1").map_err(|f| f.message)
    };
    assert_eq!(check(&crl(&issuer, &[7]), &server(42)), Ok(()));
    assert_eq!(
        check(&crl(&issuer, &[42]), &server(42)),
        Err("server certificate has been revoked".to_string())
    );
    // A CRL from someone else: the CA's own is missing (libpq's CRL_CHECK_ALL).
    let (_, stranger, _) = ca_and_server(&[], None);
    let e = check(&crl(&stranger, &[]), &server(42)).unwrap_err();
    assert!(e.starts_with("unable to get certificate CRL"), "{e}");
}

#[test]
fn channel_binding_hashes_the_certificate_with_its_signature_hash() {
    use sha2::Digest;
    // rcgen signs with ECDSA P-256 and SHA-256.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["db1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = cert.der().to_vec();
    assert_eq!(
        server_end_point(&der).unwrap(),
        sha2::Sha256::digest(&der).to_vec()
    );
    // P-384 keys sign with SHA-384, and the hash follows.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["db1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = cert.der().to_vec();
    assert_eq!(
        server_end_point(&der).unwrap(),
        sha2::Sha384::digest(&der).to_vec()
    );
    assert_eq!(server_end_point(b"not a certificate"), None);
}
