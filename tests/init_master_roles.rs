//! init-master and the replication role on real clusters: any name is
//! quoted safely, an existing role keeps what it has, and a privileged one
//! is refused unless allowed.

use super::init_master::{PW, assert_noop, init_master, replication_login};
use crate::harness::{Cluster, pgrepctl, run::password_file};

#[test]
fn hostile_role_name_is_quoted_safely() {
    let c = Cluster::new();
    let role = "rep; DROP ROLE postgres; -- 'x' y";
    let j = init_master(&c, &["--allow", "127.0.0.1/32", "--replication-user", role]).ok();
    assert_eq!(j["changed"], true);
    assert_eq!(
        c.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'postgres'"),
        "1"
    );
    assert_eq!(
        c.sql(&format!(
            "SELECT rolreplication FROM pg_roles WHERE rolname = '{}'",
            role.replace('\'', "''")
        )),
        "t"
    );
    assert_eq!(
        c.sql("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL"),
        "0"
    );
    replication_login(&c, role, PW).expect("the quoted hba line matches the role");
    assert_noop(
        &c,
        &["--allow", "127.0.0.1/32", "--replication-user", role],
        &[&c.hba_path()],
    );
}

#[test]
fn existing_role_keeps_its_password_and_gets_replication() {
    let c = Cluster::new();
    c.sql("SET password_encryption = 'scram-sha-256'; CREATE ROLE replicator NOLOGIN PASSWORD 'keepme'");
    let before = c.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'replicator'");
    let j = pgrepctl([
        "init-master",
        "--json",
        "-D",
        c.data.to_str().unwrap(),
        "--allow",
        "127.0.0.1/32",
    ])
    .ok();
    let sql: Vec<String> = j["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "sql")
        .map(|c| c["summary"].as_str().unwrap().to_string())
        .collect();
    assert!(
        sql.iter().any(|s| s.contains("ALTER ROLE")
            && s.contains("LOGIN")
            && s.contains("REPLICATION")
            && !s.contains("PASSWORD")),
        "{sql:?}"
    );
    assert_eq!(
        c.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'replicator'"),
        before
    );
    replication_login(&c, "replicator", "keepme").unwrap();
    // The same password given again is recognised (its salt differs): no change.
    let pw = password_file(c.tmp.path(), "keepme");
    let j = pgrepctl([
        "init-master",
        "--json",
        "-D",
        c.data.to_str().unwrap(),
        "--allow",
        "127.0.0.1/32",
        "--password-file",
        pw.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(j["changed"], false, "{j}");
    // A new password is set.
    let pw2 = password_file(c.tmp.path(), "a new longer password");
    let j = pgrepctl([
        "init-master",
        "--json",
        "-D",
        c.data.to_str().unwrap(),
        "--allow",
        "127.0.0.1/32",
        "--password-file",
        pw2.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(j["changed"], true);
    replication_login(&c, "replicator", "a new longer password").unwrap();
}

/// Issue 9: a double quote in a role name is written `""` inside a quoted
/// hba token, which every supported PostgreSQL reads back as one `"`.
#[test]
fn role_name_with_a_double_quote_logs_in() {
    let c = Cluster::new();
    let role = "rep\"l";
    let j = init_master(&c, &["--allow", "127.0.0.1/32", "--replication-user", role]).ok();
    assert_eq!(j["changed"], true);
    assert!(
        std::fs::read_to_string(c.hba_path())
            .unwrap()
            .contains("\"rep\"\"l\""),
        "{j}"
    );
    assert_eq!(
        c.sql("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL"),
        "0"
    );
    assert!(replication_login(&c, role, "wrong").is_err());
    replication_login(&c, role, PW).expect("replication login as rep\"l");
    assert_noop(
        &c,
        &["--allow", "127.0.0.1/32", "--replication-user", role],
        &[&c.hba_path()],
    );
}

/// Issue 9 item 13: a superuser as the replication role is refused; with
/// --allow-privileged-role its password changes, and the standbys that
/// stream as it now are named in a warning.
#[test]
fn superuser_replication_role_refused_unless_allowed_and_streaming_standbys_warned() {
    let primary = Cluster::new();
    let standby = Cluster::standby_of(&primary, "s1");
    let before =
        primary.sql("SELECT coalesce(rolpassword, '-') FROM pg_authid WHERE rolname = 'postgres'");
    let j = init_master(
        &primary,
        &["--allow", "127.0.0.1/32", "--replication-user", "postgres"],
    )
    .fails(1, "ROLE_NOT_DEDICATED");
    let msg = j["error"]["message"].as_str().unwrap();
    assert!(msg.contains("SUPERUSER") && msg.contains("passfile"), "{j}");
    assert!(
        j["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("--allow-privileged-role"),
        "{j}"
    );
    assert_eq!(
        primary.sql("SELECT coalesce(rolpassword, '-') FROM pg_authid WHERE rolname = 'postgres'"),
        before
    );

    let j = init_master(
        &primary,
        &[
            "--allow",
            "127.0.0.1/32",
            "--replication-user",
            "postgres",
            "--allow-privileged-role",
        ],
    )
    .ok();
    let w = j["warnings"].to_string();
    assert!(
        w.contains("password of role \\\"postgres\\\" changes") && w.contains("(s1)"),
        "{j}"
    );
    drop(standby);
}
