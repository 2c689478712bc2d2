//! conninfo on real servers: the write string reaches the primary, and
//! after a switchover (the standby promoted, the old primary stopped) the
//! same unchanged string reaches the new primary; the read string reaches a
//! standby while one is up. Without any node answering the strings are
//! still printed and the exit status is 1.

use crate::harness::{self, Cluster, pgrepctl};
use std::process::Command;

/// psql from the servers' own bin dir with nothing but `conninfo`; the
/// port and recovery state of the server it reached.
fn reached(bindir: &std::path::Path, conninfo: &str) -> Result<String, String> {
    let out = Command::new(harness::psql_bin(bindir))
        .args(["-X", "-A", "-t", "-q", "-F", " ", "-d", conninfo])
        .args(["-c", "SELECT current_setting('port'), pg_is_in_recovery()"])
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn conninfo_json(nodes: &[&Cluster]) -> serde_json::Value {
    let mut args = vec!["conninfo".to_string(), "--json".into()];
    for n in nodes {
        args.push("--node".into());
        args.push(n.conninfo());
    }
    pgrepctl(args).ok()
}

#[test]
fn the_write_string_follows_the_primary_through_a_switchover() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    // The standby given first: the primary still comes first in the
    // write string, last in the read string.
    let j = conninfo_json(&[&s, &p]);
    let roles: Vec<&str> = j["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["standby", "primary"], "{j}");
    // The primary's pg_stat_replication was read: its standby streams over
    // a unix socket, so there is no address to discover (none invented).
    assert!(
        j["notes"].to_string().contains("stream over a unix socket"),
        "{j}"
    );
    let write = j["write"]["libpq"].as_str().unwrap().to_string();
    assert_eq!(
        write,
        format!(
            "host={},{} port={},{} user=postgres dbname=postgres target_session_attrs=read-write",
            p.sock.display(),
            s.sock.display(),
            p.port,
            s.port
        )
    );
    assert!(
        j["write"]["jdbc"].is_null(),
        "sockets have no JDBC URL: {j}"
    );
    assert_eq!(reached(&p.bindir, &write).unwrap(), format!("{} f", p.port));
    // The URI form reaches the same server.
    let uri = j["write"]["uri"].as_str().unwrap();
    assert_eq!(reached(&p.bindir, uri).unwrap(), format!("{} f", p.port));

    // The read string needs libpq 16 (prefer-standby 14+,
    // load_balance_hosts 16+); older clients get the fallback.
    let read = if p.major >= 16 {
        j["read"]["libpq"].as_str().unwrap()
    } else {
        j["read_older_clients"]["libpq"].as_str().unwrap()
    };
    assert_eq!(reached(&p.bindir, read).unwrap(), format!("{} t", s.port));
    if p.major < 16 {
        // As the note says: an older libpq refuses the read string.
        let e = reached(&p.bindir, j["read"]["libpq"].as_str().unwrap()).unwrap_err();
        assert!(
            e.contains("load_balance_hosts") || e.contains("target_session_attrs"),
            "{e}"
        );
    }

    // Text output: the same strings on write:/read: lines.
    let r = pgrepctl(["conninfo", "--node", &s.conninfo(), "--node", &p.conninfo()]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let out = r.stdout();
    assert!(out.contains(&format!("write: {write}\n")), "{out}");
    assert!(
        out.contains("note:  the read string needs libpq 16+"),
        "{out}"
    );

    // Switchover: promote the standby, stop the old primary; the write
    // string, unchanged, now reaches the new primary.
    pgrepctl([
        "promote",
        "--json",
        "--force",
        "-D",
        s.data.to_str().unwrap(),
    ])
    .ok();
    p.stop();
    assert_eq!(reached(&p.bindir, &write).unwrap(), format!("{} f", s.port));
    let after = conninfo_json(&[&s, &p]);
    assert_eq!(after["nodes"][0]["role"], "primary", "{after}");
    assert_eq!(after["nodes"][1]["role"], "unreachable", "{after}");
    assert!(
        after["write"]["libpq"]
            .as_str()
            .unwrap()
            .starts_with(&format!("host={},{} ", s.sock.display(), p.sock.display())),
        "{after}"
    );
}

#[test]
fn strings_are_printed_when_no_node_answers_and_never_a_password() {
    let dir = harness::tempdir();
    let node = format!(
        "host={} port=5999 user=app dbname=shop password=hunter2",
        dir.path().display()
    );
    let r = pgrepctl(["conninfo", "--json", "--timeout", "1s", "--node", &node]);
    assert_eq!(r.code(), 1, "{}", r.stdout());
    let j = r.json();
    assert_eq!(j["ok"], false);
    assert_eq!(j["changed"], false);
    assert_eq!(j["nodes"][0]["role"], "unreachable", "{j}");
    assert_eq!(
        j["write"]["libpq"],
        format!(
            "host={} port=5999 user=app dbname=shop target_session_attrs=read-write",
            dir.path().display()
        )
    );
    assert!(!r.stdout().contains("hunter2") && !r.stderr().contains("hunter2"));
    assert!(j["notes"].to_string().contains("password"), "{j}");
    // A JDBC URL cannot name a socket directory: a usage error.
    let r = pgrepctl(["conninfo", "--format", "jdbc", "--node", &node]);
    assert_eq!(r.code(), 2, "{}", r.stderr());
    let r = pgrepctl(["conninfo", "--json", "--format", "uri", "--node", &node]);
    assert_eq!(r.code(), 2, "{}", r.stdout());
}

/// A node that is up but refuses pgrepctl's login is said to refuse it,
/// not to be down.
#[test]
fn a_node_that_refuses_the_login_is_not_called_down() {
    let c = Cluster::builder().hba("local all all reject\n").init();
    let node = format!("host={} port={} user=postgres", c.sock.display(), c.port);
    let r = pgrepctl(["conninfo", "--json", "--timeout", "5s", "--node", &node]);
    assert_eq!(r.code(), 1, "{}", r.stdout());
    let j = r.json();
    assert_eq!(j["nodes"][0]["role"], "unreachable", "{j}");
    assert!(j["nodes"][0]["error"].to_string().contains("reject"), "{j}");
    let notes = j["notes"].to_string();
    assert!(notes.contains("no node let pgrepctl in"), "{j}");
    assert!(!notes.contains("once a primary is up"), "{j}");
    let r = pgrepctl(["conninfo", "--timeout", "5s", "--node", &node]);
    assert_eq!(r.code(), 1, "{}", r.stdout());
    assert!(
        r.stderr().contains("refused pgrepctl's login"),
        "{}",
        r.stderr()
    );
}

/// Repoint `s` at the primary over TCP (127.0.0.1, which initdb's
/// pg_hba.conf trusts for replication) and wait until it streams.
fn stream_over_tcp(p: &Cluster, s: &mut Cluster) {
    let conninfo = format!(
        "host=127.0.0.1 port={} user=postgres application_name=s1",
        p.port
    );
    if p.major >= 12 {
        let auto = s.data.join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&auto).unwrap();
        text.push_str(&format!("primary_conninfo = '{conninfo}'\n"));
        s.write_as_pg(&auto, &text);
    } else {
        s.write_as_pg(
            &s.data.join("recovery.conf"),
            &format!("standby_mode = 'on'\nprimary_conninfo = '{conninfo}'\n"),
        );
    }
    s.stop();
    s.start();
    s.wait_streaming();
    assert_eq!(
        p.sql("SELECT host(client_addr) FROM pg_stat_replication"),
        "127.0.0.1"
    );
}

#[test]
fn standbys_not_given_are_named_and_only_discovered_when_asked() {
    let p = Cluster::new();
    let mut s = Cluster::standby_of(&p, "s1");
    stream_over_tcp(&p, &mut s);
    let primary = p.conninfo();
    let j = pgrepctl(["conninfo", "--json", "--node", &primary]).ok();
    assert_eq!(j["nodes"].as_array().unwrap().len(), 1, "{j}");
    assert!(
        j["notes"].to_string().contains("not given: 127.0.0.1;"),
        "{j}"
    );
    // --discover adds it at the primary's port, and says that is assumed.
    let j = pgrepctl(["conninfo", "--json", "--discover", "--node", &primary]).ok();
    let d = &j["nodes"][1];
    assert_eq!(d["role"], "discovered", "{j}");
    assert_eq!(d["host"], "127.0.0.1");
    assert_eq!(d["port"], p.port);
    assert_eq!(d["port_assumed"], true);
    assert!(j["notes"].to_string().contains("primary's port"), "{j}");
    // Given on that address, the standby is not listed a second time.
    let standby = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        s.port
    );
    let j = pgrepctl([
        "conninfo",
        "--json",
        "--discover",
        "--node",
        &primary,
        "--node",
        &standby,
    ])
    .ok();
    let roles: Vec<&str> = j["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["primary", "standby"], "{j}");
}
