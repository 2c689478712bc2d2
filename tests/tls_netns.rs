//! TLS across an untrusted network, on two hosts (network namespaces)
//! with stock packaged clusters, as the README tells it: A's packaged
//! cluster has ssl = on with Debian's snakeoil certificate, which does
//! not hold A's address, so `init-master --ssl --ssl-name ADDR` refuses
//! and says what to do; with `--ssl-issue` pgrepctl issues its own CA and
//! certificate in /etc/postgresql/V/C. On B, `clone-standby
//! --sslrootcert` fails before copying with a CA that did not sign A's
//! certificate and with a host name the certificate does not hold, then
//! streams with verify-full; check and smoke-test reach A the same way.

use crate::harness::debian::{self, DebianCluster, pgrepctl_on, pgrepctl_on_env};
use crate::harness::netns::{self, Pair};
use crate::harness::run::password_file;
use crate::harness::two_hosts::{add_hba_line, sql};

const PW: &str = "Tls-n3tns-repl";
const SU_PW: &str = "Tls-n3tns-su";

/// A fresh CA that signed nothing of A's, in PEM.
fn unknown_ca() -> String {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "someone else's CA");
    let key = rcgen::KeyPair::generate().unwrap();
    p.self_signed(&key).unwrap().pem()
}

/// Another address of A's that B reaches, not in A's certificate: a
/// /32 on A's link and a route to it on B's side (gone with the hosts).
fn second_address(hosts: &Pair) -> String {
    let last = hosts.server_ip.rsplit('.').next().unwrap();
    format!("10.200.254.{last}")
}

fn add_second_address(hosts: &Pair) {
    let tag = hosts.server.strip_suffix('s').unwrap();
    let addr = format!("{}/32", second_address(hosts));
    for args in [
        vec![
            "-n",
            &hosts.server,
            "addr",
            "add",
            &addr,
            "dev",
            &format!("{tag}vs"),
        ],
        vec![
            "-n",
            &hosts.client,
            "route",
            "add",
            &addr,
            "dev",
            &format!("{tag}vc"),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(|s| s.as_ref()).collect();
        let out = std::process::Command::new("ip")
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// init-master on A with --ssl for A's address (and `extra`).
fn init_ssl(hosts: &Pair, a: &DebianCluster, pw: &str, extra: &[&str]) -> crate::harness::Run {
    let b_net = format!("{}/32", hosts.client_ip);
    let data = a.data_str();
    let mut args = vec![
        "init-master",
        "--json",
        "-D",
        &data,
        "--allow",
        &b_net,
        "--password-file",
        pw,
        "--listen",
        "*",
        "--restart",
        "if-needed",
        "--ssl",
        "--ssl-name",
        &hosts.server_ip,
    ];
    args.extend(extra);
    pgrepctl_on(Some(&hosts.server), &args)
}

/// clone-standby on B from A with these keywords and this root file.
fn clone_b(
    hosts: &Pair,
    a: &DebianCluster,
    b: &DebianCluster,
    pw: &str,
    keywords: &str,
    ca: &str,
) -> crate::harness::Run {
    let primary = format!("port={} user=replicator {keywords}", a.port);
    let data = b.data_str();
    pgrepctl_on(
        Some(&hosts.client),
        &[
            "clone-standby",
            "--json",
            "--primary",
            &primary,
            "-D",
            &data,
            "--password-file",
            pw,
            "--force",
            "--sslrootcert",
            ca,
        ],
    )
}

#[test]
fn verify_full_between_two_packaged_hosts() {
    let Some(major) = debian::available() else {
        return;
    };
    if !netns::available() {
        eprintln!("skipped: network namespaces need root and iproute2");
        return;
    }
    let hosts = Pair::new();
    add_second_address(&hosts);
    let a = DebianCluster::create(major, Some(&hosts.server));
    let b = DebianCluster::create(major, Some(&hosts.client));
    let tmp = crate::harness::tempdir();
    let pw = password_file(tmp.path(), PW).display().to_string();
    assert_eq!(sql(&a, "SHOW ssl"), "on", "Debian's cluster has TLS");

    // The snakeoil certificate holds the host's name, not A's address:
    // refused, nothing changed, and the hint says what to do.
    let conf = std::fs::read_to_string(a.etc().join("postgresql.conf")).unwrap();
    let j = init_ssl(&hosts, &a, &pw, &[]).fails(1, "CERTIFICATE_UNSUITABLE");
    let msg = j["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("not valid for {}", hosts.server_ip)),
        "{j}"
    );
    assert!(msg.contains("ssl-cert-snakeoil.pem"), "{j}");
    assert!(
        j["error"]["hint"].as_str().unwrap().contains("--ssl-issue"),
        "{j}"
    );
    assert_eq!(
        std::fs::read_to_string(a.etc().join("postgresql.conf")).unwrap(),
        conf
    );

    let j = init_ssl(&hosts, &a, &pw, &["--ssl-issue"]).json();
    assert_eq!(j["ok"], true, "{j}\n{}", a.log());
    let ca_on_a = a.etc().join("pgrepctl-ca.crt");
    assert_eq!(
        j["ssl"]["ca_certificate"],
        ca_on_a.display().to_string(),
        "{j}"
    );
    assert!(!a.data().join("pgrepctl-ca.key").exists());
    assert_eq!(
        sql(&a, "SHOW ssl_cert_file"),
        a.etc().join("pgrepctl-server.crt").display().to_string()
    );
    let j = init_ssl(&hosts, &a, &pw, &[]).json();
    assert_eq!(j["changed"], false, "a rerun changes nothing: {j}");

    // The DBA copies the CA to B (scp in real life), into root's files.
    let ca = tmp.path().join("pgrepctl-ca.crt");
    std::fs::copy(&ca_on_a, &ca).unwrap();
    std::fs::set_permissions(&ca, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let other = tmp.path().join("other-ca.crt");
    std::fs::write(&other, unknown_ca()).unwrap();
    let ca = ca.display().to_string();
    b.stop();
    let marker = b.data().join("pgrepctl-test-marker");
    std::fs::write(&marker, "B's old cluster").unwrap();

    let host = format!("host={}", hosts.server_ip);
    let j =
        clone_b(&hosts, &a, &b, &pw, &host, &other.display().to_string()).fails(1, "TLS_FAILED");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("certificate signed by an unknown authority"),
        "{j}"
    );
    let wrong = format!("host={}", second_address(&hosts));
    let j = clone_b(&hosts, &a, &b, &pw, &wrong, &ca).fails(1, "TLS_FAILED");
    assert!(
        j["error"]["message"].as_str().unwrap().contains(&format!(
            "does not match host name \"{}\"",
            second_address(&hosts)
        )),
        "{j}"
    );
    assert!(marker.exists(), "nothing was copied");
    // Plaintext is refused by A's hba (hostnossl … reject).
    let primary = format!(
        "host={} port={} user=replicator sslmode=disable",
        hosts.server_ip, a.port
    );
    let r = pgrepctl_on(
        Some(&hosts.client),
        &[
            "clone-standby",
            "--json",
            "--primary",
            &primary,
            "-D",
            &b.data_str(),
            "--password-file",
            &pw,
            "--force",
            "--dry-run",
        ],
    );
    r.fails(1, "HBA_REJECTED");

    let j = clone_b(&hosts, &a, &b, &pw, &host, &ca).json();
    assert_eq!(j["ok"], true, "{j}\n{}", b.log());
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");
    assert_eq!(
        sql(
            &a,
            "SELECT ssl FROM pg_stat_ssl JOIN pg_stat_replication USING (pid)"
        ),
        "t"
    );
    let conninfo = sql(&b, "SHOW primary_conninfo");
    assert!(conninfo.contains("sslmode=verify-full"), "{conninfo}");
    assert!(conninfo.contains("channel_binding=require"), "{conninfo}");

    // check and smoke-test from B reach A with verify-full.
    sql(&a, &format!("ALTER ROLE postgres PASSWORD '{SU_PW}'"));
    add_hba_line(
        &a,
        &format!("hostssl all postgres {}/32 scram-sha-256", hosts.client_ip),
    );
    let pnode = format!(
        "host={} port={} user=postgres sslmode=verify-full sslrootcert={ca}",
        hosts.server_ip, a.port
    );
    let snode = format!("host=/var/run/postgresql port={} user=postgres", b.port);
    for cmd in ["check", "smoke-test"] {
        let r = pgrepctl_on_env(
            Some(&hosts.client),
            &[cmd, "--json", "--primary", &pnode, "--standby", &snode],
            &[("PGPASSWORD", SU_PW)],
        );
        assert_eq!(r.code(), 0, "{cmd}: {}\n{}", r.stdout(), r.stderr());
    }
    // check reports the link encrypted, with --require-ssl still OK, and
    // A's certificate (from its own verify-full handshake) years from expiry.
    let r = pgrepctl_on_env(
        Some(&hosts.client),
        &[
            "check",
            "--json",
            "--require-ssl",
            "--primary",
            &pnode,
            "--standby",
            &snode,
        ],
        &[("PGPASSWORD", SU_PW)],
    );
    let j = r.json();
    assert_eq!(r.code(), 0, "{j}");
    let pair = &j["pairs"][0];
    assert_eq!(pair["ssl"], true, "{j}");
    assert!(
        pair["ssl_version"].as_str().unwrap().starts_with("TLSv1."),
        "{pair}"
    );
    let certs = j["certificates"].as_array().expect("certificates");
    let on_a = certs
        .iter()
        .find(|c| c["node"] == "primary")
        .unwrap_or_else(|| panic!("no certificate for the primary in {j}"));
    assert!(on_a["days_left"].as_i64().unwrap() > 365, "{on_a}");
}
