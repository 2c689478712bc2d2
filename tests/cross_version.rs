//! Cross-version safety: PostgreSQL 10 and 12 ship no client tools on any
//! reachable registry, so their primaries are cloned with the next major's
//! pg_basebackup. pgrepctl must still write a standby configuration that
//! the *server's* version accepts: the file for its version, and only
//! conninfo keywords every supported libpq knows (a newer pg_basebackup -R
//! would add channel_binding or sslnegotiation, which 10 and 12 reject).
//!
//! Runs in the full suite (not the per-major subset): it fetches 10 and 12
//! itself with scripts/fetch-postgres.

use crate::harness::fixtures::{clone, prepared_primary};
use crate::harness::{self, Cluster};
use std::path::Path;
use std::process::Command;

fn tool_major(bindir: &Path, tool: &str) -> u32 {
    let out = Command::new(bindir.join(tool))
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .last()
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {tool}'s version: {text}"))
}

fn older_primary_with_newer_client_tools(major: u32) {
    let bindir = harness::fetch_bindir(major);
    assert_eq!(tool_major(&bindir, "postgres"), major);
    let client = tool_major(&bindir, "pg_basebackup");
    assert!(
        client > major,
        "this test is about a newer pg_basebackup copying a {major} server; found {client}"
    );

    let (p, pw) = prepared_primary(Cluster::builder().bindir(&bindir));
    let s = Cluster::clone_target(&p);
    let j = clone(&p, &s, Some(&pw), &[]).ok();
    assert_eq!(j["changed"], true, "{j}");
    assert_eq!(j["streaming"]["status"], "streaming", "{j}");

    // The file for the server's version, never the client's.
    let conninfo_line = if major >= 12 {
        assert!(s.data.join("standby.signal").exists());
        assert!(!s.data.join("recovery.conf").exists());
        s.file("postgresql.auto.conf")
    } else {
        assert!(!s.data.join("standby.signal").exists());
        let rc = s.file("recovery.conf");
        assert!(rc.contains("standby_mode = 'on'"), "{rc}");
        rc
    };
    let conninfo = conninfo_line
        .lines()
        .find(|l| l.starts_with("primary_conninfo"))
        .unwrap_or_else(|| panic!("no primary_conninfo in {conninfo_line}"))
        .to_string();
    for word in conninfo.split_whitespace().filter(|w| w.contains('=')) {
        let key = word
            .trim_start_matches("primary_conninfo")
            .trim_start_matches([' ', '=', '\''])
            .split('=')
            .next()
            .unwrap();
        assert!(
            ["host", "port", "user", "passfile", "application_name", ""].contains(&key),
            "keyword {key:?} is not known to every supported server: {conninfo}"
        );
    }
    // The server itself took the configuration: it is in recovery and its
    // receiver streams (checked by clone-standby), and a second run is a
    // no-op.
    assert_eq!(s.sql("SELECT pg_is_in_recovery()"), "t");
    let again = clone(&p, &s, Some(&pw), &[]).ok();
    assert_eq!(again["changed"], false, "{again}");
}

#[test]
fn postgresql_10_primary_cloned_with_newer_client_tools() {
    older_primary_with_newer_client_tools(10);
}

#[test]
fn postgresql_12_primary_cloned_with_newer_client_tools() {
    older_primary_with_newer_client_tools(12);
}
