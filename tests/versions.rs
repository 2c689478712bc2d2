//! Behaviour that differs by PostgreSQL major, checked on whichever major
//! the suite runs against (scripts/test-matrix runs it on 10 to 18).
//! pgrepctl decides by the server's server_version_num, never by a path.

use crate::harness::{Cluster, pgrepctl, run::password_file};

#[test]
fn wal_retention_setting_by_version() {
    let c = Cluster::new();
    let pw = password_file(c.tmp.path(), "pw");
    pgrepctl([
        "init-master",
        "--json",
        "-D",
        c.data.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
        "--wal-keep",
        "512MB",
    ])
    .ok();
    let conf = std::fs::read_to_string(c.conf_path()).unwrap();
    let block = conf.split("# BEGIN pgrepctl").nth(1).unwrap_or("");
    if c.major >= 13 {
        assert!(block.contains("wal_keep_size = 512MB"), "{block}");
        assert!(!block.contains("wal_keep_segments"), "{block}");
        assert_eq!(c.sql("SHOW wal_keep_size"), "512MB");
    } else {
        // 512MB of 16MB segments.
        assert!(block.contains("wal_keep_segments = 32"), "{block}");
        assert!(!block.contains("wal_keep_size"), "{block}");
        assert_eq!(c.sql("SHOW wal_keep_segments"), "32");
    }
}

#[test]
fn scram_password_even_where_md5_is_the_default() {
    let c = Cluster::new();
    let default_encryption =
        c.sql("SELECT boot_val FROM pg_settings WHERE name = 'password_encryption'");
    if c.major <= 13 {
        assert_eq!(default_encryption, "md5", "10-13 default to md5");
    }
    let pw = password_file(c.tmp.path(), "pw");
    pgrepctl([
        "init-master",
        "--json",
        "-D",
        c.data.to_str().unwrap(),
        "--allow",
        "127.0.0.1",
        "--password-file",
        pw.to_str().unwrap(),
    ])
    .ok();
    assert!(
        c.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'replicator'")
            .starts_with("SCRAM-SHA-256$")
    );
    let ci = format!(
        "host=127.0.0.1 port={} user=replicator password=pw dbname=replication replication=true",
        c.port
    );
    let out = std::process::Command::new(crate::harness::psql_bin(&c.bindir))
        .args(["-X", "-A", "-t", "-d", &ci, "-c", "IDENTIFY_SYSTEM"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
