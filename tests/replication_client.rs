//! pgrepctl's own replication-protocol client against real servers: each
//! password method, TLS as `sslmode` says, the commands with their typed
//! answers (TIMELINE_HISTORY of a promoted standby among them), and the
//! refusals clone-standby's tests do not reach, classified by SQLSTATE.

use crate::harness::{Cluster, as_pg, check, chown_pg};
use pgrepctl::error::Code;
use pgrepctl::pg::replication::{ReplClient, ReplError, sqlstate};
use pgrepctl::secret::Secret;
use pgrepctl::tools::RunAs;
use std::future::Future;
use std::time::Duration;

fn client(conninfo: String, password: Option<&str>) -> ReplClient {
    ReplClient::new(
        RunAs::postgres_if_root(),
        conninfo,
        password.map(Secret::new),
        None,
        Duration::from_secs(10),
    )
    .unwrap()
}

fn tcp(c: &Cluster, user: &str, extra: &str) -> String {
    format!("host=127.0.0.1 port={} user={user} {extra}", c.port)
}

fn block<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// `identify`, for a server with a single WAL sender slot: a refused
/// session that has not exited yet still holds the slot's PGPROC (taken
/// before authentication), so the next login meets "too many clients"
/// instead of its own refusal for a moment. Wait that out.
fn identify_one_slot(cl: &ReplClient) -> Result<u32, ReplError> {
    let started = std::time::Instant::now();
    loop {
        match identify(cl) {
            Err(e)
                if e.sqlstate() == Some(sqlstate::TOO_MANY_CONNECTIONS)
                    && started.elapsed() < Duration::from_secs(30) =>
            {
                std::thread::sleep(Duration::from_millis(50))
            }
            other => return other,
        }
    }
}

/// Log in and ask IDENTIFY_SYSTEM; the timeline, or the typed failure.
fn identify(cl: &ReplClient) -> Result<u32, ReplError> {
    block(async {
        let mut conn = cl.connect().await?;
        let id = conn.identify_system().await;
        conn.close().await;
        Ok(id?.timeline)
    })
}

#[test]
fn each_password_method_logs_in() {
    let c = Cluster::builder()
        .hba(
            "local all all trust\n\
             host replication rep_pw 127.0.0.1/32 password\n\
             host replication rep_md5 127.0.0.1/32 md5\n\
             host replication rep_scram 127.0.0.1/32 scram-sha-256\n",
        )
        .init();
    for (user, stored) in [
        ("rep_pw", "scram-sha-256"),
        ("rep_md5", "md5"),
        ("rep_scram", "scram-sha-256"),
    ] {
        c.sql(&format!(
            "SET password_encryption = '{stored}'; CREATE ROLE {user} LOGIN REPLICATION PASSWORD 'p:w 1'"
        ));
        let ci = tcp(&c, user, "sslmode=disable");
        assert_eq!(
            identify(&client(ci.clone(), Some("p:w 1"))).unwrap(),
            1,
            "{user}"
        );
        let wrong = identify(&client(ci.clone(), Some("nope"))).unwrap_err();
        assert_eq!(
            wrong.sqlstate(),
            Some(sqlstate::INVALID_PASSWORD),
            "{user}: {wrong}"
        );
        let cl = client(ci, None);
        let none = identify(&cl).unwrap_err();
        assert!(
            matches!(none, ReplError::PasswordRequired),
            "{user}: {none}"
        );
        assert_eq!(cl.error(&none).code, Code::PasswordRequired);
    }
}

#[test]
fn refusals_are_classified_by_sqlstate_and_login_stage() {
    // initdb's default pg_hba.conf trusts replication from 127.0.0.1.
    let c = Cluster::builder().conf("max_wal_senders = 1").init();
    c.sql("CREATE ROLE plain LOGIN");
    let cl = client(tcp(&c, "plain", ""), None);
    let e = identify_one_slot(&cl).unwrap_err();
    assert_eq!(e.sqlstate(), Some(sqlstate::INSUFFICIENT_PRIVILEGE), "{e}");
    let err = cl.error(&e);
    assert_eq!(err.code, Code::PrimaryNotReady);
    assert!(err.hint.unwrap().contains("REPLICATION"));

    let cl = client(tcp(&c, "nobody", ""), None);
    let err = cl.error(&identify_one_slot(&cl).unwrap_err());
    assert_eq!(err.code, Code::PrimaryNotReady, "{}", err.message);
    assert!(
        err.message.contains("role \"nobody\" does not exist"),
        "{}",
        err.message
    );

    // The only WAL sender taken, a second connection finds none free.
    let cl = client(tcp(&c, "postgres", ""), None);
    block(async {
        // The refused walsenders above may still be exiting (their slot
        // is freed at process exit): the first connection waits for them.
        let started = std::time::Instant::now();
        let first = loop {
            match cl.connect().await {
                Ok(c) => break c,
                Err(e)
                    if e.sqlstate() == Some(sqlstate::TOO_MANY_CONNECTIONS)
                        && started.elapsed() < std::time::Duration::from_secs(30) =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await
                }
                Err(e) => panic!("{e}"),
            }
        };
        let e = cl.connect().await.err().unwrap();
        assert_eq!(e.sqlstate(), Some(sqlstate::TOO_MANY_CONNECTIONS), "{e}");
        let err = cl.error(&e);
        assert_eq!(err.code, Code::PrimaryNotReady);
        assert!(err.hint.unwrap().contains("max_wal_senders"));
        first.close().await;
    });

    let r = Cluster::builder()
        .hba("local all all trust\nhost replication all 127.0.0.1/32 reject\n")
        .init();
    let cl = client(tcp(&r, "replicator", ""), None);
    let err = cl.error(&identify(&cl).unwrap_err());
    assert_eq!(err.code, Code::HbaRejected);
    let hint = err.hint.unwrap();
    assert!(
        hint.contains("host replication replicator 127.0.0.1/32 scram-sha-256"),
        "{hint}"
    );
}

#[test]
fn commands_answer_typed_on_a_promoted_standby() {
    let p = Cluster::new();
    let s = Cluster::standby_of(&p, "s1");
    let out = as_pg(s.bindir.join("pg_ctl"))
        .arg("-D")
        .arg(&s.data)
        .args(["promote", "-w"])
        .output()
        .unwrap();
    check(out, "pg_ctl promote");
    // Over the local socket, as the standby's OS user would connect.
    let cl = client(
        format!("host={} port={} user=postgres", s.sock.display(), s.port),
        None,
    );
    block(async {
        let mut conn = cl.connect().await.unwrap();
        let id = conn.identify_system().await.unwrap();
        assert_eq!(id.timeline, 2);
        let h = conn.timeline_history(2).await.unwrap();
        assert_eq!(h.filename, "00000002.history");
        let points = h.switch_points();
        assert_eq!(points.len(), 1, "{h:?}");
        assert_eq!(points[0].0, 1);
        assert!(points[0].1 > 0 && points[0].1 <= id.lsn, "{h:?} {id:?}");
        assert_eq!(conn.show("wal_level").await.unwrap(), "replica");
        // Pipelined (one write, the answers in order): a setting the
        // server does not know fails the call, and the connection stays
        // in step for the next command.
        let (again, values) = conn
            .identify_and_show(&["wal_level", "max_wal_senders"])
            .await
            .unwrap();
        assert_eq!((again.timeline, values[0].as_str()), (2, "replica"));
        assert!(values[1].parse::<u32>().is_ok(), "{values:?}");
        let unknown = conn
            .identify_and_show(&["wal_level", "no_such_setting", "port"])
            .await
            .unwrap_err();
        assert_eq!(
            unknown.sqlstate(),
            Some(sqlstate::UNDEFINED_OBJECT),
            "{unknown}"
        );
        assert_eq!(conn.show("port").await.unwrap(), s.port.to_string());

        let made = conn.create_physical_slot("typed_slot").await.unwrap();
        assert_eq!(made.name, "typed_slot");
        let again = conn.create_physical_slot("typed_slot").await.unwrap_err();
        assert_eq!(
            again.sqlstate(),
            Some(sqlstate::DUPLICATE_OBJECT),
            "{again}"
        );
        let version = conn.version().await.unwrap();
        let read = conn.read_replication_slot("typed_slot").await;
        if version.read_replication_slot() {
            let pos = read.unwrap().expect("the slot exists");
            assert!(pos.restart_lsn.is_some(), "{pos:?}");
            assert_eq!(pos.restart_tli, Some(2));
        } else {
            assert!(matches!(read, Err(ReplError::Unsupported(_))));
        }
        conn.drop_slot("typed_slot").await.unwrap();
        let gone = conn.drop_slot("typed_slot").await.unwrap_err();
        assert_eq!(gone.sqlstate(), Some(sqlstate::UNDEFINED_OBJECT), "{gone}");
        if version.read_replication_slot() {
            assert_eq!(
                conn.read_replication_slot("typed_slot").await.unwrap(),
                None
            );
        }
        conn.close().await;
    });
}

/// A server with `ssl = on` and a fresh self-signed certificate; `None`
/// (the test is skipped, and says so) when this PostgreSQL build has no
/// SSL (some registry builds of 10–13), which `postgres -C` tells.
fn ssl_cluster(hba: &str) -> Option<Cluster> {
    let mut c = Cluster::builder()
        .hba(hba)
        .conf("ssl = on")
        .stopped()
        .init();
    let out = std::process::Command::new("openssl")
        .current_dir(&c.data)
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes"])
        .args(["-keyout", "server.key", "-out", "server.crt"])
        .args(["-subj", "/CN=localhost", "-days", "2"])
        .output()
        .expect("openssl");
    check(out, "openssl req");
    for f in ["server.key", "server.crt"] {
        chown_pg(&c.data.join(f));
    }
    std::fs::set_permissions(
        c.data.join("server.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let probe = as_pg(c.bindir.join("postgres"))
        .args(["-C", "ssl", "-D"])
        .arg(&c.data)
        .output()
        .unwrap();
    if !probe.status.success() {
        eprintln!(
            "skipped: PostgreSQL in {} was built without SSL: {}",
            c.bindir.display(),
            String::from_utf8_lossy(&probe.stderr).trim()
        );
        return None;
    }
    c.start();
    Some(c)
}

#[test]
fn tls_as_sslmode_says() {
    let Some(c) = ssl_cluster(
        "local all all trust\n\
         hostssl replication rep_scram 127.0.0.1/32 scram-sha-256\n\
         hostssl replication all 127.0.0.1/32 trust\n",
    ) else {
        return;
    };
    // prefer (libpq's default) and require both encrypt; hostssl lets in
    // only encrypted connections.
    assert_eq!(identify(&client(tcp(&c, "postgres", ""), None)).unwrap(), 1);
    let required = tcp(&c, "postgres", "sslmode=require");
    assert_eq!(identify(&client(required, None)).unwrap(), 1);
    let plain = client(tcp(&c, "postgres", "sslmode=disable"), None);
    let err = plain.error(&identify(&plain).unwrap_err());
    assert_eq!(err.code, Code::HbaRejected, "{}", err.message);
    // SCRAM over TLS, where the server also offers SCRAM-SHA-256-PLUS.
    c.sql("SET password_encryption = 'scram-sha-256'; CREATE ROLE rep_scram LOGIN REPLICATION PASSWORD 'pw'");
    assert_eq!(
        identify(&client(tcp(&c, "rep_scram", ""), Some("pw"))).unwrap(),
        1
    );

    // A server without SSL: prefer falls back, require refuses.
    let n = Cluster::new();
    assert_eq!(identify(&client(tcp(&n, "postgres", ""), None)).unwrap(), 1);
    let cl = client(tcp(&n, "postgres", "sslmode=require"), None);
    let e = identify(&cl).unwrap_err();
    assert!(matches!(e, ReplError::TlsRequired), "{e}");
    assert_eq!(cl.error(&e).code, Code::TlsFailed);
}

/// The SQL path's twin of PasswordRequired: tokio-postgres's login asks
/// for a password that no one gave, told apart without its message text.
#[test]
fn sql_login_without_a_password_says_so() {
    let c = Cluster::builder()
        .hba("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
        .init();
    let config = pgrepctl::pg::conninfo::parse(&format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        c.port
    ))
    .unwrap();
    let failure = block(pgrepctl::pg::connect_client(
        &config,
        Some(Duration::from_secs(10)),
    ))
    .err()
    .unwrap();
    assert_eq!(failure.error.code, Code::AuthenticationFailed);
    assert!(
        failure.error.message.contains("none was given"),
        "{}",
        failure.error.message
    );
    assert!(!failure.down);
    // A closed port is down, not a missing password.
    let closed = pgrepctl::pg::conninfo::parse(&format!(
        "host=127.0.0.1 port={} user=postgres",
        crate::harness::free_port()
    ))
    .unwrap();
    let failure = block(pgrepctl::pg::connect_client(
        &closed,
        Some(Duration::from_secs(5)),
    ))
    .err()
    .unwrap();
    assert_eq!(failure.error.code, Code::ConnectionFailed);
    assert!(failure.down);
}

/// A walsender that stops answering a command fails the command within
/// the answer limit (the connect timeout, up to three times), never hangs.
#[test]
fn an_unanswered_command_times_out() {
    let c = Cluster::new();
    let cl = ReplClient::new(
        RunAs::postgres_if_root(),
        tcp(&c, "postgres", ""),
        None,
        None,
        Duration::from_secs(1),
    )
    .unwrap();
    block(async {
        let mut conn = cl.connect().await.unwrap();
        conn.identify_system().await.unwrap();
        let pid: i32 = c
            .sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender'")
            .parse()
            .unwrap();
        let pid = nix::unistd::Pid::from_raw(pid);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
        let r = tokio::time::timeout(Duration::from_secs(30), conn.show("wal_level")).await;
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
        let e = r.expect("bounded by the answer limit").unwrap_err();
        assert!(matches!(e, ReplError::NoAnswer { .. }), "{e}");
        assert_eq!(cl.error(&e).code, Code::Timeout);
    });
}

/// A SQL session whose server stops answering mid-session fails within
/// its answer limit instead of hanging: tokio-postgres reads before it
/// writes, so the Watchdog must arm its timer at the write. (The driver
/// then reports the request as "connection closed", not as a time-out.)
#[test]
fn sql_request_unanswered_is_bounded() {
    let c = Cluster::new();
    let config = pgrepctl::pg::conninfo::parse(&c.conninfo()).unwrap();
    block(async {
        let (client, _) = pgrepctl::pg::connect_client_with(&config, None, Duration::from_secs(1))
            .await
            .map_err(|f| f.error)
            .unwrap();
        let row = client.query_one("SELECT pg_backend_pid()", &[]).await;
        let pid = nix::unistd::Pid::from_raw(row.unwrap().get(0));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
        let r =
            tokio::time::timeout(Duration::from_secs(30), client.query_one("SELECT 1", &[])).await;
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
        let e = r.expect("bounded by the answer limit").unwrap_err();
        assert!(e.is_closed(), "{e}");
    });
}

/// A port that takes connections (the kernel's backlog) but never speaks
/// has stopped answering: TIMEOUT; a closed port is unreachable.
#[test]
fn silence_is_a_timeout_and_a_closed_port_is_unreachable() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let quick = |port: u16| {
        ReplClient::new(
            RunAs::default(),
            format!("host=127.0.0.1 port={port} user=replicator"),
            None,
            None,
            Duration::from_secs(1),
        )
        .unwrap()
    };
    let cl = quick(port);
    let e = identify(&cl).unwrap_err();
    assert!(matches!(e, ReplError::NoAnswer { .. }), "{e}");
    assert_eq!(cl.error(&e).code, Code::Timeout);
    drop(silent);
    let cl = quick(crate::harness::free_port());
    let e = identify(&cl).unwrap_err();
    assert!(matches!(e, ReplError::Unreachable { .. }), "{e}");
    assert_eq!(cl.error(&e).code, Code::ConnectionFailed);
}
