//! Unit tests of the planner, on facts built by hand.

use super::config::satisfies;
use super::*;
use crate::commands::init_master::inspect::RoleFacts;
use crate::secret::Secret;

#[test]
fn values_compare_like_postgresql() {
    assert!(satisfies(&Want::WalLevel, "logical", 1));
    assert!(satisfies(&Want::WalLevel, "hot_standby", 1));
    assert!(!satisfies(&Want::WalLevel, "minimal", 1));
    assert!(satisfies(&Want::AtLeast(1 << 30), "1GB", 1 << 20));
    assert!(satisfies(&Want::AtLeast(1 << 30), "2048", 1 << 20));
    assert!(!satisfies(&Want::AtLeast(1 << 30), "512MB", 1 << 20));
    assert!(!satisfies(&Want::AtLeast(10), "5", 1));
    assert!(satisfies(&Want::On, "on", 1));
    assert!(satisfies(&Want::On, "TRUE", 1));
    assert!(!satisfies(&Want::On, "off", 1));
    assert!(satisfies(&Want::ArchiveMode, "always", 1));
    assert!(satisfies(&Want::ArchiveMode, "on", 1));
    assert!(!satisfies(&Want::ArchiveMode, "off", 1));
    assert!(satisfies(&Want::Seconds(60), "1min", 1));
    assert!(satisfies(&Want::Seconds(60), "60", 1));
    assert!(satisfies(&Want::Seconds(60), "60000ms", 1));
    assert!(!satisfies(&Want::Seconds(60), "0", 1));
}

use super::super::RestartPolicy;
use super::super::inspect::Live;

/// A primary running with wal_level minimal, its settings all from
/// defaults, pg_hba.conf empty, and `role` present as given.
fn facts(role: Option<RoleFacts>) -> Facts {
    let live = |v: &str, ctx: &str| Live {
        setting: v.into(),
        context: ctx.into(),
        source: "default".into(),
    };
    Facts {
        listen_unbindable: vec![],
        version_num: 150000,
        in_recovery: false,
        data_directory: "/d".into(),
        config_file: "/d/postgresql.conf".into(),
        hba_file: "/d/pg_hba.conf".into(),
        auto_conf: "/d/postgresql.auto.conf".into(),
        wal_segment_size: 16 << 20,
        live: [
            ("wal_level", live("minimal", "postmaster")),
            ("max_wal_senders", live("0", "postmaster")),
            ("wal_keep_size", live("0", "sighup")),
            ("hot_standby", live("on", "postmaster")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        file_settings: vec![],
        files: [("/d/postgresql.conf".into(), String::new())].into(),
        hba_text: String::new(),
        hba_errors: vec![],
        role,
        memberships: vec![],
        streaming_as_role: vec![],
        slots: Default::default(),
        local_nets: vec![],
        at_files: Default::default(),
        debian_cluster: None,
        server_bindir: None,
        monitor_role: None,
        ssl: None,
    }
}

fn settings(restart: RestartPolicy) -> Settings {
    Settings {
        data_dir: None,
        conn: Default::default(),
        role: "replicator".into(),
        allow_privileged_role: false,
        password: Some(Secret::new("pw")),
        allows: vec!["10.0.0.2/32".parse().unwrap()],
        ssl: false,
        ssl_setup: Default::default(),
        method: "scram-sha-256".into(),
        max_wal_senders: 10,
        wal_keep_bytes: 1 << 30,
        listen: None,
        rewindable: false,
        slots: vec!["s1".into()],
        restart,
        bindir: None,
        dry_run: true,
        monitor: None,
        archive: None,
    }
}

#[test]
fn a_standby_is_said_to_be_one() {
    let mut f = facts(None);
    let p = plan(&settings(RestartPolicy::IfNeeded), &f).unwrap();
    assert!(
        !p.warnings.iter().any(|w| w.contains("is a standby")),
        "{:?}",
        p.warnings
    );
    f.in_recovery = true;
    let p = plan(&settings(RestartPolicy::IfNeeded), &f).unwrap();
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("/d is a standby (in recovery)")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn slot_comes_after_the_restart_that_raises_wal_level() {
    let p = plan(&settings(RestartPolicy::IfNeeded), &facts(None)).unwrap();
    let summaries: Vec<String> = p.changes().into_iter().map(|c| c.summary).collect();
    let restart = summaries.iter().position(|s| s == "restart");
    let slot = summaries
        .iter()
        .position(|s| s.contains("pg_create_physical_replication_slot"));
    assert!(restart.unwrap() < slot.unwrap(), "{summaries:?}");
    let err = plan(&settings(RestartPolicy::Never), &facts(None)).unwrap_err();
    assert_eq!(err.code, Code::SlotNeedsRestart);
    assert!(err.hint.unwrap().contains("--restart"));
}

#[test]
fn role_with_more_than_replication_is_refused_unless_allowed() {
    let role = |powers: Vec<&'static str>, owned| RoleFacts {
        can_login: true,
        replication: false,
        password: None,
        powers,
        owned_objects: owned,
    };
    let s = settings(RestartPolicy::Always);
    for r in [role(vec!["SUPERUSER"], 0), role(vec![], 3)] {
        let err = plan(&s, &facts(Some(r.clone()))).unwrap_err();
        assert_eq!(err.code, Code::RoleNotDedicated, "{r:?}");
        let mut allowed = s.clone();
        allowed.allow_privileged_role = true;
        assert!(plan(&allowed, &facts(Some(r))).is_ok());
    }
    let mut f = facts(Some(role(vec![], 0)));
    f.memberships = vec!["pg_monitor".into(), "pg_read_all_stats".into()];
    assert!(plan(&s, &f).is_ok(), "monitoring roles are fine");
    f.memberships.push("app".into());
    let err = plan(&s, &f).unwrap_err();
    assert!(err.message.contains("member of app"), "{}", err.message);
}

#[test]
fn password_change_warns_about_standbys_streaming_as_the_role() {
    let mut f = facts(Some(RoleFacts {
        can_login: true,
        replication: true,
        password: Some("SCRAM-SHA-256$4096:old".into()),
        powers: vec![],
        owned_objects: 0,
    }));
    let s = settings(RestartPolicy::Always);
    assert!(
        !plan(&s, &f)
            .unwrap()
            .warnings
            .iter()
            .any(|w| w.contains("stream"))
    );
    f.streaming_as_role = vec!["10.0.0.2 (s1)".into()];
    let p = plan(&s, &f).unwrap();
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("password") && w.contains("10.0.0.2 (s1)")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn rewindable_sets_wal_log_hints_only_without_checksums() {
    let live = |v: &str| Live {
        setting: v.into(),
        context: "postmaster".into(),
        source: "default".into(),
    };
    let mut s = settings(RestartPolicy::IfNeeded);
    let touches = |s: &Settings, f: &Facts| {
        plan(s, f)
            .unwrap()
            .changes()
            .into_iter()
            .any(|c| c.summary.contains("wal_log_hints"))
    };
    let mut f = facts(None);
    f.live.insert("wal_log_hints".into(), live("off"));
    f.live.insert("data_checksums".into(), live("off"));
    assert!(!touches(&s, &f), "not asked");
    s.rewindable = true;
    assert!(touches(&s, &f), "asked, no checksums");
    let p = plan(&s, &f).unwrap();
    assert!(p.restart_required, "wal_log_hints takes a restart");
    f.live.insert("data_checksums".into(), live("on"));
    assert!(!touches(&s, &f), "checksums suffice");
    f.live.insert("data_checksums".into(), live("off"));
    f.live.insert("wal_log_hints".into(), live("on"));
    assert!(!touches(&s, &f), "already on");
}

/// The planned file edit's notes, joined.
fn notes(p: &Plan) -> String {
    p.changes()
        .into_iter()
        .map(|c| c.summary)
        .collect::<Vec<_>>()
        .join("; ")
}

fn archived(how: crate::commands::init_master::settings::ArchiveHow) -> Settings {
    let mut s = settings(RestartPolicy::Never);
    s.slots = vec![];
    s.archive = Some(crate::commands::init_master::settings::Archive {
        how,
        timeout_secs: 60,
    });
    s
}

#[test]
fn archive_dir_plans_mode_command_and_timeout() {
    use crate::commands::init_master::settings::ArchiveHow;
    let s = archived(ArchiveHow::Dir {
        dir: "/mnt/my wal".into(),
        pgrepctl: "/usr/bin/pgrepctl".into(),
    });
    let mut f = facts(None);
    f.live.insert(
        "archive_mode".into(),
        Live {
            setting: "off".into(),
            context: "postmaster".into(),
            source: "default".into(),
        },
    );
    let p = plan(&s, &f).unwrap();
    let n = notes(&p);
    assert!(n.contains("archive_mode: off (default) -> on"), "{n}");
    assert!(
        n.contains("archive_command:  (default) -> /usr/bin/pgrepctl wal-push %p '/mnt/my wal'"),
        "{n}"
    );
    assert!(n.contains("archive_timeout:  (default) -> 60s"), "{n}");
    assert!(!n.contains("archive_library"), "empty already: {n}");
    assert!(p.restart_required, "archive_mode takes a restart");
}

#[test]
fn archive_library_empties_archive_command_and_a_command_empties_the_library() {
    use crate::commands::init_master::settings::ArchiveHow;
    let live = |v: &str| Live {
        setting: v.into(),
        context: "sighup".into(),
        source: "configuration file".into(),
    };
    let mut f = facts(None);
    f.live.insert("archive_command".into(), live("(disabled)"));
    let p = plan(&archived(ArchiveHow::Library("/mnt/wal".into())), &f).unwrap();
    let n = notes(&p);
    assert!(
        n.contains("archive_library:  (default) -> basic_archive"),
        "{n}"
    );
    assert!(
        n.contains("basic_archive.archive_directory:  (default) -> /mnt/wal"),
        "{n}"
    );
    assert!(!n.contains("archive_command"), "(disabled) is empty: {n}");
    f.live
        .insert("archive_library".into(), live("basic_archive"));
    let p = plan(&archived(ArchiveHow::Command("cp %p /x/%f".into())), &f).unwrap();
    let n = notes(&p);
    assert!(
        n.contains("archive_library: basic_archive (default) -> "),
        "{n}"
    );
}

mod ssl {
    use super::*;
    use crate::commands::init_master::ssl::{CertState, SslFacts, SslSetup, issue};
    use crate::pg::cert_info::CertInfo;

    fn ssl_settings(names: &[&str], issue: bool) -> Settings {
        let mut s = settings(RestartPolicy::Never);
        s.slots = vec![];
        s.ssl = true;
        s.ssl_setup = SslSetup {
            names: names.iter().map(|n| n.to_string()).collect(),
            dir: Some("/etc/pgrepctl".into()),
            issue,
        };
        s
    }

    /// A server with wal_level replica, ssl off and no certificate;
    /// pg_hba.conf as initdb writes it for local replication.
    fn ssl_facts() -> Facts {
        let mut f = facts(None);
        f.live.get_mut("wal_level").unwrap().setting = "replica".into();
        f.live.get_mut("max_wal_senders").unwrap().setting = "10".into();
        f.live.get_mut("wal_keep_size").unwrap().setting = "1024".into();
        f.hba_text = "local all all trust\nhost replication all 10.0.0.0/8 trust\n".into();
        f.ssl = Some(SslFacts {
            on: false,
            cert_file: "/d/server.crt".into(),
            key_file: "/d/server.key".into(),
            cert: CertState::Missing,
            key_exists: false,
            server_owner: Some((26, 26)),
            server_dir: "/d".into(),
            ca_dir: Some("/etc/pgrepctl".into()),
            present: vec![],
            ca: None,
            server: None,
        });
        f
    }

    fn summaries(p: &Plan) -> Vec<String> {
        p.changes()
            .into_iter()
            .map(|c| match c.path {
                Some(path) => format!("{}: {}", path.display(), c.summary),
                None => c.summary,
            })
            .collect()
    }

    #[test]
    fn no_certificate_gets_a_ca_and_a_server_certificate_outside_the_copy() {
        let p = plan(
            &ssl_settings(&["db1.example.org", "10.0.0.1"], false),
            &ssl_facts(),
        )
        .unwrap();
        let s = summaries(&p);
        assert!(
            s[0].starts_with("/etc/pgrepctl/pgrepctl-ca.crt: "),
            "{s:#?}"
        );
        assert!(
            s[1].starts_with("/etc/pgrepctl/pgrepctl-ca.key: "),
            "{s:#?}"
        );
        assert!(
            s[2].starts_with(
                "/d/pgrepctl-server.crt: server certificate for db1.example.org, 10.0.0.1"
            ),
            "{s:#?}"
        );
        assert!(s[3].starts_with("/d/pgrepctl-server.key: "), "{s:#?}");
        let conf = p
            .changes()
            .into_iter()
            .find(|c| c.path.as_deref() == Some("/d/postgresql.conf".as_ref()))
            .unwrap();
        let diff = conf.diff.unwrap();
        // By name: a standby's copy of the data directory finds its own.
        assert!(
            diff.contains("+ssl_cert_file = 'pgrepctl-server.crt'"),
            "{diff}"
        );
        assert!(diff.contains("+ssl = on"), "{diff}");
        let hba = p
            .changes()
            .into_iter()
            .find(|c| c.path.as_deref() == Some("/d/pg_hba.conf".as_ref()))
            .unwrap();
        let diff = hba.diff.unwrap();
        let reject = diff.find("+hostnossl replication").unwrap();
        let ssl = diff.find("+hostssl replication").unwrap();
        let trust = diff.find(" host replication all 10.0.0.0/8 trust").unwrap();
        assert!(reject < ssl && ssl < trust, "{diff}");
        assert!(s.iter().any(|c| c == "reload"), "{s:#?}");
        let ssl = p.ssl.unwrap();
        assert_eq!(
            ssl.report["copy_ca_command"],
            "scp db1.example.org:/etc/pgrepctl/pgrepctl-ca.crt /etc/pgrepctl/pgrepctl-ca.crt"
        );
    }

    #[test]
    fn names_and_a_place_for_the_ca_are_needed_to_issue() {
        let e = plan(&ssl_settings(&[], false), &ssl_facts()).unwrap_err();
        assert_eq!(e.code, Code::Usage);
        assert!(e.hint.unwrap().contains("--ssl-name db1.example.org"));
        let mut f = ssl_facts();
        f.ssl.as_mut().unwrap().ca_dir = None;
        let e = plan(&ssl_settings(&["db1"], false), &f).unwrap_err();
        assert_eq!(e.code, Code::Usage);
        assert!(e.message.contains("--ssl-dir"), "{}", e.message);
        let mut f = ssl_facts();
        f.ssl.as_mut().unwrap().present = vec!["/etc/pgrepctl/pgrepctl-ca.key".into()];
        let e = plan(&ssl_settings(&["db1"], false), &f).unwrap_err();
        assert_eq!(e.code, Code::CertificateUnsuitable);
    }

    fn with_cert(names: &[&str], on: bool) -> Facts {
        let made = issue(
            &names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            None,
        )
        .unwrap();
        let mut f = ssl_facts();
        let s = f.ssl.as_mut().unwrap();
        s.on = on;
        s.cert = CertState::Parsed(Box::new(
            CertInfo::parse(made.server_cert.as_bytes()).unwrap(),
        ));
        s.key_exists = true;
        f
    }

    #[test]
    fn an_existing_certificate_is_kept_only_when_it_holds_the_names() {
        let f = with_cert(&["db1.example.org"], true);
        let p = plan(&ssl_settings(&["db1.example.org"], false), &f).unwrap();
        assert!(
            !summaries(&p).iter().any(|s| s.contains("pgrepctl-")),
            "{:?}",
            summaries(&p)
        );
        let e = plan(&ssl_settings(&["db1.example.org", "10.0.0.1"], false), &f).unwrap_err();
        assert_eq!(e.code, Code::CertificateUnsuitable);
        assert!(
            e.message
                .contains("not valid for 10.0.0.1: it holds db1.example.org"),
            "{}",
            e.message
        );
        assert!(e.hint.unwrap().contains("--ssl-issue"));
        // --ssl-issue: pgrepctl's own, beside the old one.
        let p = plan(&ssl_settings(&["db1.example.org", "10.0.0.1"], true), &f).unwrap();
        assert!(summaries(&p)[0].contains("pgrepctl-ca.crt"));
        // No names to check: kept, with a warning that says so.
        let p = plan(&ssl_settings(&[], false), &f).unwrap();
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("no --ssl-name given") && w.contains("(db1.example.org)")),
            "{:?}",
            p.warnings
        );
        // Off, with a good certificate in place: only ssl = on.
        let f = with_cert(&["db1.example.org"], false);
        let p = plan(&ssl_settings(&["db1.example.org"], false), &f).unwrap();
        assert_eq!(p.ssl.unwrap().settings, vec![("ssl", "on".to_string())]);
    }

    #[test]
    fn ssl_issue_renews_pgrepctls_own_certificate_from_the_same_ca() {
        let names = vec!["db1".to_string()];
        let made = issue(&names, None).unwrap();
        let mut f = ssl_facts();
        let s = f.ssl.as_mut().unwrap();
        s.on = true;
        s.cert_file = "/d/pgrepctl-server.crt".into();
        s.key_file = "/d/pgrepctl-server.key".into();
        s.cert = CertState::Parsed(Box::new(
            CertInfo::parse(made.server_cert.as_bytes()).unwrap(),
        ));
        s.key_exists = true;
        s.present = vec![
            "/d/pgrepctl-server.crt".into(),
            "/d/pgrepctl-server.key".into(),
            "/etc/pgrepctl/pgrepctl-ca.crt".into(),
            "/etc/pgrepctl/pgrepctl-ca.key".into(),
        ];
        s.ca = Some((made.ca_cert.clone(), made.ca_key.clone()));
        s.server = Some((made.server_cert.clone(), made.server_key.clone()));
        // Its names suit: nothing to do, --ssl-issue or not.
        let p = plan(&ssl_settings(&["db1"], true), &f).unwrap();
        let certs = |p: &Plan| -> Vec<String> {
            summaries(p)
                .into_iter()
                .filter(|s| s.contains("/pgrepctl-"))
                .collect()
        };
        assert!(certs(&p).is_empty(), "{:?}", summaries(&p));
        // A name more: without --ssl-issue refused, with it reissued.
        let e = plan(&ssl_settings(&["db1", "10.0.0.1"], false), &f).unwrap_err();
        assert_eq!(e.code, Code::CertificateUnsuitable);
        let p = plan(&ssl_settings(&["db1", "10.0.0.1"], true), &f).unwrap();
        let s = certs(&p);
        assert_eq!(s.len(), 2, "{s:#?}");
        assert!(
            s[0].contains("(reissued by the same CA: it lacks 10.0.0.1)"),
            "{s:#?}"
        );
        let ssl = p.ssl.unwrap();
        assert_eq!(
            ssl.report["ca_certificate"],
            "/etc/pgrepctl/pgrepctl-ca.crt"
        );
        let again = issue(
            &["x".to_string()],
            Some(&(made.ca_cert.clone(), made.ca_key.clone())),
        )
        .unwrap();
        assert_eq!(again.ca_cert, made.ca_cert);
    }

    #[test]
    fn a_reject_line_already_first_is_kept() {
        let mut f = with_cert(&["db1"], true);
        f.hba_text = "hostnossl replication replicator 10.0.0.2/32 reject\nhostssl replication replicator 10.0.0.2/32 scram-sha-256\n".into();
        let p = plan(&ssl_settings(&["db1"], false), &f).unwrap();
        assert!(
            !summaries(&p).iter().any(|s| s.contains("pg_hba")),
            "{:?}",
            summaries(&p)
        );
    }
}
