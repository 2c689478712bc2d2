//! TLS set up by pgrepctl itself, one flag on each side: `init-master
//! --ssl --ssl-name 127.0.0.1` issues a CA and a server certificate
//! (the CA outside the data directory), turns ssl on and refuses
//! plaintext replication in pg_hba.conf; `clone-standby --sslrootcert`
//! streams with verify-full (and channel_binding=require on 13+). An
//! existing certificate that does not hold the names is refused, and
//! nothing changes. Skipped where the server was built without OpenSSL.

use crate::harness::fixtures::init_master;
use crate::harness::run::{Run, password_file, pgrepctl};
use crate::harness::{self, Cluster, snapshot, tempdir};
use crate::tls::{built_with_openssl, client_has_ssl};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn openssl() -> bool {
    let b = harness::bindir();
    let ok = built_with_openssl(&b);
    if !ok {
        eprintln!(
            "skipped: the server in {} was built without OpenSSL",
            b.display()
        );
    }
    ok
}

/// `--ssl --ssl-name 127.0.0.1 --ssl-dir DIR` with the usual flags.
fn init_ssl(p: &Cluster, pw: &Path, dir: &Path, extra: &[&str]) -> Run {
    let dir = dir.to_str().unwrap();
    let mut args = vec![
        "--allow",
        "127.0.0.1/32",
        "--ssl",
        "--ssl-name",
        "127.0.0.1",
        "--ssl-dir",
        dir,
    ];
    args.extend(extra);
    init_master(p, pw, &args)
}

/// clone-standby of `s` from `p` over TCP with these keywords and flags.
fn clone_with(p: &Cluster, s: &Cluster, pw: &Path, keywords: &str, extra: &[&str]) -> Run {
    let primary = format!("host=127.0.0.1 port={} user=replicator {keywords}", p.port);
    let (data, bindir, port) = (
        s.data.display().to_string(),
        s.bindir.display().to_string(),
        s.port.to_string(),
    );
    let args = [
        "clone-standby",
        "--json",
        "--primary",
        &primary,
        "-D",
        &data,
        "--bindir",
        &bindir,
        "--port",
        &port,
        "--wait",
        "30",
        "--application-name",
        "s1",
        "--password-file",
        pw.to_str().unwrap(),
    ];
    pgrepctl(args.iter().chain(extra))
}

#[test]
fn init_master_issues_and_clone_standby_verifies() {
    if !openssl() {
        return;
    }
    let p = Cluster::new();
    let pw = password_file(p.tmp.path(), "tls-setup-pw");
    let dir = tempdir();
    let j = init_ssl(&p, &pw, dir.path(), &[]).ok();
    assert_eq!(j["changed"], true, "{j}");
    assert_eq!(p.sql("SHOW ssl"), "on");
    let ca = dir.path().join("pgrepctl-ca.crt");
    assert_eq!(j["ssl"]["ca_certificate"], ca.display().to_string(), "{j}");
    assert!(
        j["ssl"]["copy_ca_command"]
            .as_str()
            .unwrap()
            .starts_with("scp 127.0.0.1:"),
        "{j}"
    );
    // The CA (and its key) outside the data directory; the server's key
    // 0600 and the server's user's.
    assert!(dir.path().join("pgrepctl-ca.key").exists());
    assert!(!p.data.join("pgrepctl-ca.key").exists());
    let key = std::fs::metadata(p.data.join("pgrepctl-server.key")).unwrap();
    assert_eq!(key.mode() & 0o777, 0o600);
    assert_eq!(key.uid(), std::fs::metadata(&p.data).unwrap().uid());
    let ca_key = std::fs::metadata(dir.path().join("pgrepctl-ca.key")).unwrap();
    assert_eq!(ca_key.mode() & 0o777, 0o600);
    // A plaintext attempt meets its reject line before the TLS one.
    let hba: Vec<String> = p
        .file("pg_hba.conf")
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let at = |line: &str| {
        hba.iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("{hba:#?}"))
    };
    let reject = at("hostnossl replication replicator 127.0.0.1/32 reject # pgrepctl");
    let ssl = at("hostssl replication replicator 127.0.0.1/32 scram-sha-256 # pgrepctl");
    let trust = at("host replication all 127.0.0.1/32 trust");
    assert!(reject < ssl && ssl < trust, "{hba:#?}");
    // A rerun changes nothing.
    let j = init_ssl(&p, &pw, dir.path(), &[]).ok();
    assert_eq!(j["changed"], false, "{j}");

    let s = Cluster::clone_target(&p);
    let j = clone_with(&p, &s, &pw, "sslmode=disable", &[]).json();
    assert_eq!(j["error"]["code"], "HBA_REJECTED", "{j}");
    assert!(
        j["error"]["hint"].to_string().contains("--sslrootcert"),
        "the way in is TLS, not a plaintext line: {j}"
    );
    let message = j["error"]["message"].as_str().unwrap();
    assert_eq!(
        message.matches("application_name=").count(),
        1,
        "the preflight's connection under its own name only: {message}"
    );
    assert!(!s.data.exists(), "nothing copied");
    if !client_has_ssl(&s.bindir) {
        eprintln!(
            "the copy skipped: pg_basebackup in {} was built without OpenSSL",
            s.bindir.display()
        );
        return;
    }
    let r = clone_with(&p, &s, &pw, "", &["--sslrootcert", ca.to_str().unwrap()]);
    let j = r.json();
    assert_eq!(j["ok"], true, "{j}\n{}", r.stderr());
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    let conf = s.file("postgresql.auto.conf") + &s.file("recovery.conf");
    let copy = s.data.join("pgrepctl-primary-ca.crt");
    assert!(
        conf.contains(&format!(
            "sslmode=verify-full sslrootcert={}",
            copy.display()
        )),
        "{conf}"
    );
    let meta = std::fs::metadata(&copy).unwrap();
    assert_eq!(meta.uid(), std::fs::metadata(&s.data).unwrap().uid());
    let binds = harness::major(&s.bindir) >= 13;
    assert_eq!(conf.contains("channel_binding=require"), binds, "{conf}");
    assert_eq!(
        p.sql("SELECT ssl FROM pg_stat_ssl JOIN pg_stat_replication USING (pid)"),
        "t"
    );
    // A rerun without --sslrootcert keeps verify-full with the standby's
    // copy of the CA: nothing changes, the standby is not restarted.
    let pid = harness::postmaster_pid(&s.data);
    let r = clone_with(&p, &s, &pw, "", &[]);
    let j = r.json();
    assert_eq!(j["ok"], true, "{j}\n{}", r.stderr());
    assert_eq!(j["changed"], false, "{j}");
    assert_eq!(j["tls_kept"]["sslmode"], "verify-full", "{j}");
    assert_eq!(
        j["tls_kept"]["sslrootcert"],
        copy.display().to_string(),
        "{j}"
    );
    assert_eq!(
        s.file("postgresql.auto.conf") + &s.file("recovery.conf"),
        conf
    );
    assert_eq!(harness::postmaster_pid(&s.data), pid, "not restarted");
    // Pointed at another server name (the same server here) with no TLS
    // keyword: refused, since the standby would stop verifying.
    let other = format!("host=localhost port={} user=replicator", p.port);
    let (data, port) = (s.data.display().to_string(), s.port.to_string());
    let r = pgrepctl([
        "clone-standby",
        "--json",
        "--primary",
        &other,
        "-D",
        &data,
        "--port",
        &port,
        "--application-name",
        "s1",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    let j = r.fails(2, "INSECURE_REFUSED");
    assert!(
        j["error"]["hint"].to_string().contains("--sslrootcert"),
        "{j}"
    );
    assert_eq!(
        s.file("postgresql.auto.conf") + &s.file("recovery.conf"),
        conf
    );
    assert_eq!(harness::postmaster_pid(&s.data), pid, "not restarted");
}

/// The configuration files' contents, and the certificate files' names.
type FilesState = (Vec<(std::path::PathBuf, Option<Vec<u8>>)>, Vec<String>);

/// The configuration files, and which certificate files exist (in the
/// data directory and in the CA's directory).
fn files_state(p: &Cluster, dir: &Path) -> FilesState {
    let files = [
        p.conf_path(),
        p.hba_path(),
        p.data.join("postgresql.auto.conf"),
    ];
    let paths: Vec<&Path> = files.iter().map(|f| f.as_path()).collect();
    let mut names: Vec<String> = [dir, p.data.as_path()]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".crt") || n.ends_with(".key"))
        .collect();
    names.sort();
    (snapshot(&paths), names)
}

/// A failure after any step of `--ssl` takes everything back: the new
/// files (the CA outside the data directory too), ssl off again, the
/// configuration files as they were.
#[test]
fn a_failure_at_any_step_removes_the_certificates_again() {
    if !openssl() {
        return;
    }
    let p = Cluster::new();
    let pw = password_file(p.tmp.path(), "tls-setup-pw");
    let dir = tempdir();
    let state = || files_state(&p, dir.path());
    let before = state();
    let args: Vec<String> = [
        "init-master",
        "--json",
        "-D",
        p.data.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
        "--allow",
        "127.0.0.1/32",
        "--ssl",
        "--ssl-name",
        "127.0.0.1",
        "--ssl-dir",
        dir.path().to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut n = 1;
    loop {
        let step = n.to_string();
        let r = crate::harness::run::pgrepctl_env(
            &args,
            &[("PGREPCTL_FAIL_AFTER_STEP", step.as_str())],
        );
        if r.code() == 0 {
            break;
        }
        let j = r.fails(1, "INTERNAL");
        assert_eq!(j["changed"], false, "{j}");
        assert!(state() == before, "failure after step {n}: {j}");
        assert_eq!(p.sql("SHOW ssl"), "off", "after step {n}");
        n += 1;
        assert!(n < 30, "the injected failure never stopped");
    }
    assert!(n > 6, "the four files, the edits and the reload: {n}");
    assert_eq!(p.sql("SHOW ssl"), "on");
}

#[test]
fn an_existing_certificate_with_other_names_is_refused() {
    if !openssl() {
        return;
    }
    let p = Cluster::new();
    let pw = password_file(p.tmp.path(), "tls-setup-pw");
    let mut params = rcgen::CertificateParams::new(vec!["db-other.example".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "db-other.example");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    p.write_as_pg(&p.data.join("server.crt"), &cert.pem());
    p.write_as_pg(&p.data.join("server.key"), &key.serialize_pem());
    std::fs::set_permissions(
        p.data.join("server.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let dir = tempdir();
    let state = || files_state(&p, dir.path());
    let before = state();
    let j = init_ssl(&p, &pw, dir.path(), &[]).fails(1, "CERTIFICATE_UNSUITABLE");
    let msg = j["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("not valid for 127.0.0.1: it holds db-other.example"),
        "{j}"
    );
    assert!(
        j["error"]["hint"].as_str().unwrap().contains("--ssl-issue"),
        "{j}"
    );
    assert!(state() == before, "nothing changed");
    // What the hint says: pgrepctl's own, the old files kept.
    let j = init_ssl(&p, &pw, dir.path(), &["--ssl-issue"]).ok();
    assert_eq!(j["changed"], true, "{j}");
    assert!(p.data.join("server.crt").exists());
    assert_eq!(p.sql("SHOW ssl_cert_file"), "pgrepctl-server.crt");
    let j = init_ssl(&p, &pw, dir.path(), &["--ssl-issue"]).ok();
    assert_eq!(j["changed"], false, "{j}");
    // A name more: pgrepctl's own certificate is reissued by the same CA
    // (standbys keep trusting it).
    let ca = std::fs::read(dir.path().join("pgrepctl-ca.crt")).unwrap();
    let more = ["--ssl-issue", "--ssl-name", "localhost"];
    let j = init_ssl(&p, &pw, dir.path(), &more).ok();
    assert_eq!(j["changed"], true, "{j}");
    assert_eq!(
        j["ssl"]["names"],
        serde_json::json!(["127.0.0.1", "localhost"]),
        "{j}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("pgrepctl-ca.crt")).unwrap(),
        ca
    );
    // The server took it (a reload): verify-full by the new name.
    let ca = dir.path().join("pgrepctl-ca.crt");
    let primary = format!(
        "host=localhost port={} user=postgres sslmode=verify-full sslrootcert={}",
        p.port,
        ca.display()
    );
    let j = pgrepctl(["check", "--json", "--primary", &primary]).json();
    assert!(j["nodes"][0]["error"].is_null(), "{j}");
    assert_eq!(j["nodes"][0]["role"], "primary", "{j}");
    let j = init_ssl(&p, &pw, dir.path(), &more).ok();
    assert_eq!(j["changed"], false, "{j}");
}

#[test]
fn ssl_without_a_name_or_a_place_for_the_ca_is_a_usage_error() {
    if !openssl() {
        return;
    }
    let p = Cluster::new();
    let pw = password_file(p.tmp.path(), "tls-setup-pw");
    let j = init_master(&p, &pw, &["--allow", "127.0.0.1/32", "--ssl"]).fails(2, "USAGE");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--ssl needs --ssl-name"),
        "{j}"
    );
    assert!(
        j["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("--ssl-name 10.0.0.1"),
        "{j}"
    );
    // The configuration is in the data directory: the CA needs a place.
    let j = init_master(
        &p,
        &pw,
        &[
            "--allow",
            "127.0.0.1/32",
            "--ssl",
            "--ssl-name",
            "127.0.0.1",
        ],
    )
    .fails(2, "USAGE");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--ssl-dir"),
        "{j}"
    );
    assert_eq!(p.sql("SHOW ssl"), "off");
}

/// pgrepctl's own server certificate, expiring within check's warning
/// window (10 days left, signed by pgrepctl's CA as a run 5 years ago
/// would have left it): a rerun without `--ssl-issue` keeps it and says
/// to rerun with it; with `--ssl-issue` it is reissued from the same CA,
/// a change that says why, and check no longer warns; a rerun right after
/// changes nothing.
#[test]
fn pgrepctls_own_certificate_is_reissued_before_it_expires() {
    if !openssl() {
        return;
    }
    let p = Cluster::new();
    let pw = password_file(p.tmp.path(), "tls-setup-pw");
    let dir = tempdir();
    init_ssl(&p, &pw, dir.path(), &[]).ok();
    let ca_file = dir.path().join("pgrepctl-ca.crt");
    let ca = std::fs::read_to_string(&ca_file).unwrap();
    let ca_key = std::fs::read_to_string(dir.path().join("pgrepctl-ca.key")).unwrap();
    let issuer =
        rcgen::Issuer::from_ca_cert_pem(&ca, rcgen::KeyPair::from_pem(&ca_key).unwrap()).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + now - std::time::Duration::from_secs(1815 * 86_400);
    params.not_after = epoch + now + std::time::Duration::from_secs(10 * 86_400 + 3600);
    let key = rcgen::KeyPair::generate().unwrap();
    let old = params.signed_by(&key, &issuer).unwrap().pem();
    p.write_as_pg(&p.data.join("pgrepctl-server.crt"), &old);
    p.write_as_pg(&p.data.join("pgrepctl-server.key"), &key.serialize_pem());
    p.sql("SELECT pg_reload_conf()");
    let check = || {
        let primary = format!(
            "host=127.0.0.1 port={} user=postgres sslmode=verify-full sslrootcert={}",
            p.port,
            ca_file.display()
        );
        pgrepctl(["check", "--json", "--primary", &primary]).json()
    };
    let j = check();
    assert_eq!(j["certificates"][0]["days_left"], 10, "{j}");
    assert!(j["problems"].to_string().contains("CERT_EXPIRING"), "{j}");

    // Plain --ssl: kept, with a warning that names the way out.
    let j = init_ssl(&p, &pw, dir.path(), &[]).ok();
    assert_eq!(j["changed"], false, "{j}");
    let warnings = j["warnings"].to_string();
    assert!(warnings.contains("expires in 10 days"), "{warnings}");
    assert!(warnings.contains("--ssl-issue"), "{warnings}");
    assert_eq!(
        std::fs::read_to_string(p.data.join("pgrepctl-server.crt")).unwrap(),
        old
    );

    // The CA moved offline: no new CA is made unasked (it would break the
    // standbys that verify with this one); nothing changes.
    let offline = tempdir();
    let files = ["pgrepctl-ca.crt", "pgrepctl-ca.key"];
    for f in files {
        std::fs::rename(dir.path().join(f), offline.path().join(f)).unwrap();
    }
    let j = init_ssl(&p, &pw, dir.path(), &["--ssl-issue"]).fails(1, "CERTIFICATE_UNSUITABLE");
    assert!(j["error"]["hint"].to_string().contains("put the CA"), "{j}");
    assert_eq!(
        std::fs::read_to_string(p.data.join("pgrepctl-server.crt")).unwrap(),
        old
    );
    assert!(!dir.path().join("pgrepctl-ca.crt").exists(), "no new CA");
    for f in files {
        std::fs::rename(offline.path().join(f), dir.path().join(f)).unwrap();
    }

    // --ssl-issue: reissued by the same CA, the reason in the change.
    let j = init_ssl(&p, &pw, dir.path(), &["--ssl-issue"]).ok();
    assert_eq!(j["changed"], true, "{j}");
    let changes = j["changes"].to_string();
    assert!(
        changes.contains("reissued by the same CA: it expires in 10 days"),
        "{changes}"
    );
    assert_eq!(std::fs::read_to_string(&ca_file).unwrap(), ca);
    assert_ne!(
        std::fs::read_to_string(p.data.join("pgrepctl-server.crt")).unwrap(),
        old
    );
    assert!(j["ssl"]["days_left"].as_i64().unwrap() > 1000, "{j}");
    let j = check();
    assert!(
        j["certificates"][0]["days_left"].as_i64().unwrap() > 1000,
        "{j}"
    );
    assert!(!j["problems"].to_string().contains("CERT_EXPIRING"), "{j}");

    let j = init_ssl(&p, &pw, dir.path(), &["--ssl-issue"]).ok();
    assert_eq!(j["changed"], false, "{j}");
    assert_eq!(j["warnings"], serde_json::json!([]), "{j}");
}
