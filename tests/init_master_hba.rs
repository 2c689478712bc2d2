//! init-master and pg_hba.conf on real clusters: our line goes before
//! whatever would decide the standby's connection, an equivalent line is
//! left alone, and a line ours makes unreachable is warned about.

use super::init_master::{PW, assert_noop, init_master, replication_login};
use crate::harness::{self, Cluster};

#[test]
fn reject_catch_all_in_hba_gets_our_line_above_it() {
    let hba = "# custom\nlocal all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 0.0.0.0/0 reject\nhost replication all samenet md5\n";
    let c = Cluster::builder().hba(hba).init();
    assert!(replication_login(&c, "replicator", PW).is_err());
    let j = init_master(&c, &["--allow", "127.0.0.1"]).ok();
    assert_eq!(j["changed"], true);
    let text = std::fs::read_to_string(c.hba_path()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let ours = lines.iter().position(|l| l.contains("replicator")).unwrap();
    let reject = lines.iter().position(|l| l.contains("reject")).unwrap();
    assert!(ours < reject, "{text}");
    assert!(
        text.starts_with("# custom\nlocal all all trust\nhost all all 127.0.0.1/32 trust\n"),
        "{text}"
    );
    replication_login(&c, "replicator", PW).expect("login through the new line");
    assert_eq!(
        c.sql("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL"),
        "0"
    );
    assert_noop(
        &c,
        &["--allow", "127.0.0.1"],
        &[&c.hba_path(), &c.conf_path()],
    );
}

#[test]
fn existing_line_in_place_is_a_noop_for_hba() {
    let hba = "local all all trust\nhost replication replicator 127.0.0.1/32 scram-sha-256\n";
    let c = Cluster::builder().hba(hba).init();
    let j = init_master(&c, &["--allow", "127.0.0.1/32"]).ok();
    assert!(
        j["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|ch| ch["path"].as_str() != Some(c.hba_path().to_str().unwrap())),
        "{j}"
    );
    assert_eq!(std::fs::read_to_string(c.hba_path()).unwrap(), hba);
}

/// A standby on another "host" (network namespace): before init-master its
/// address has no hba line; after, it logs in with the password only.
#[test]
fn standby_on_another_host_is_let_in_by_address() {
    use crate::harness::netns::{self, Pair};
    if !netns::available() {
        eprintln!("skipped: network namespaces need root and iproute2");
        return;
    }
    let hosts = Pair::new();
    let c = Cluster::builder()
        .netns(&hosts.server)
        .conf(&format!(
            "listen_addresses = 'localhost,{}'",
            hosts.server_ip
        ))
        .init();
    let login = |password: &str| {
        let ci = format!(
            "host={} port={} user=replicator password='{password}' dbname=replication replication=true connect_timeout=5",
            hosts.server_ip, c.port
        );
        let out = Pair::exec(
            &hosts.client,
            harness::psql_bin(&c.bindir).to_str().unwrap(),
        )
        .args(["-X", "-A", "-t", "-d", &ci, "-c", "IDENTIFY_SYSTEM"])
        .output()
        .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // A neighbour's address is allowed, not ours: still no entry for us.
    init_master(&c, &["--allow", &format!("{}/32", hosts.server_ip)]).ok();
    let (ok, err) = login(PW);
    assert!(!ok && err.contains("no pg_hba.conf entry"), "{err}");

    let j = init_master(&c, &["--allow", &hosts.client_ip]).ok();
    assert_eq!(j["changed"], true);
    assert!(
        j["warnings"].as_array().unwrap().is_empty(),
        "listen_addresses already covers it: {j}"
    );
    let (ok, err) = login("wrong");
    assert!(
        !ok && err.contains("password authentication failed"),
        "{err}"
    );
    let (ok, err) = login(PW);
    assert!(ok, "{err}");
}

/// Issue 9: a last pg_hba.conf line that ends in a backslash (a
/// continuation on 14+) and has no newline must not take the new line in.
#[test]
fn last_hba_line_with_a_trailing_backslash_keeps_its_record() {
    // Before 14 a trailing backslash is part of the last token, which in a
    // record's last field PostgreSQL rejects: end in a comment there.
    let major = harness::major(&harness::bindir());
    let hba = if major >= 14 {
        "local all all trust\nhost replication all 10.9.0.0/16 md5 \\"
    } else {
        "local all all trust\nhost replication all 10.9.0.0/16 md5\n# note \\"
    };
    let c = Cluster::builder().hba(hba).init();
    let j = init_master(&c, &["--allow", "127.0.0.1/32"]).ok();
    assert_eq!(j["changed"], true);
    let text = std::fs::read_to_string(c.hba_path()).unwrap();
    assert!(text.starts_with(hba), "existing text kept:\n{text}");
    assert_eq!(
        c.sql("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL"),
        "0",
        "{text}"
    );
    assert_eq!(
        c.sql("SELECT count(*) FROM pg_hba_file_rules WHERE address = '10.9.0.0'"),
        "1",
        "the last record is still there:\n{text}"
    );
    replication_login(&c, "replicator", PW).expect("our line is a record of its own");
    assert_noop(&c, &["--allow", "127.0.0.1/32"], &[&c.hba_path()]);
}

/// Issue 9: a line ours now decides for all its connections is named.
#[test]
fn line_made_unreachable_by_ours_is_warned_about() {
    let hba = "local all all trust\nhost replication replicator 127.0.0.1/32 md5\nhost all all 127.0.0.1/32 trust\n";
    let c = Cluster::builder().hba(hba).init();
    let j = init_master(&c, &["--allow", "127.0.0.1/32"]).ok();
    let w = j["warnings"].to_string();
    assert!(
        w.contains(":3:")
            && w.contains("127.0.0.1/32 md5")
            && w.contains("can no longer be reached"),
        "{j}"
    );
    let text = std::fs::read_to_string(c.hba_path()).unwrap();
    assert_eq!(
        text.lines().nth(2),
        Some("host replication replicator 127.0.0.1/32 md5")
    );
    // Nothing new is shadowed by a second run, so no warning.
    let j = init_master(&c, &["--allow", "127.0.0.1/32"]).ok();
    assert!(!j["warnings"].to_string().contains("can no longer"), "{j}");
}
