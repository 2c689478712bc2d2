//! Issue 15's migration as a DBA runs it between two hosts (network
//! namespaces) with stock packaged clusters (peer authentication,
//! configuration in /etc): the database `shop` on A moves to B, pgrepctl
//! run as root on B with the README's commands. The first start is refused
//! by A as pg_createcluster made it (wal_level = replica); the DBA does
//! what the refusal says, opens A to B as the README says (a password, a
//! pg_hba.conf line, a passfile for B's server), and the four commands do
//! the rest while A keeps taking writes. Nothing here connects from the
//! host namespace to a namespace address.

use crate::harness::debian::{self, DebianCluster, pgrepctl_on_env};
use crate::harness::netns::Pair;
use crate::harness::two_hosts::{add_hba_line, on_host, sql};

/// The postgres superuser's password on A.
const SU_PW: &str = "M1grate-superuser";
const DB: &str = "shop";

/// SQL in `shop` on a cluster, as postgres over its socket.
fn shop(c: &DebianCluster, q: &str) -> String {
    on_host(c, "psql", &["-X", "-A", "-t", "-q", "-d", DB, "-c", q])
        .unwrap_or_else(|e| panic!("{q} on {}: {e}\n{}", c.name, c.log()))
}

/// What the application sees: every table's rows and an md5 of them.
fn fingerprint(c: &DebianCluster) -> String {
    shop(
        c,
        "SELECT string_agg(t || ':' || n, ' ' ORDER BY t) FROM ( \
           SELECT 'accounts' t, count(*) || '/' || md5(string_agg(aid || ',' || abalance, ';' ORDER BY aid)) n FROM pgbench_accounts \
           UNION ALL SELECT 'orders', count(*) || '/' || md5(string_agg(id || ',' || item, ';' ORDER BY id)) FROM orders) x",
    )
}

/// pgrepctl migrate on B, as root, with root's passfile for A.
fn migrate(
    hosts: &Pair,
    a: &DebianCluster,
    b: &DebianCluster,
    args: &[&str],
    pgpass: &str,
) -> crate::harness::Run {
    let source = format!("host={} port={} user=postgres", hosts.server_ip, a.port);
    let target = format!("host=/var/run/postgresql port={} user=postgres", b.port);
    let mut all = vec!["migrate", args[0], "--json", "--source", &source];
    all.extend(["--target", &target, "--dbname", DB]);
    all.extend(&args[1..]);
    pgrepctl_on_env(Some(&hosts.client), &all, &[("PGPASSFILE", pgpass)])
}

/// A libpq passfile owned by `owner` (root's for pgrepctl, postgres's for
/// B's server), mode 0600.
fn passfile(dir: &std::path::Path, name: &str, line: &str, postgres: bool) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("{line}\n")).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    if postgres {
        crate::harness::chown_pg(&p);
    }
    p.display().to_string()
}

/// A's `shop`: pgbench tables and a table with an identity column.
fn populate(a: &DebianCluster) {
    on_host(a, "createdb", &[DB]).unwrap();
    on_host(a, "pgbench", &["-i", "-s", "1", "-q", DB]).unwrap();
    shop(
        a,
        "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item text NOT NULL); \
         INSERT INTO orders (item) SELECT 'item ' || g FROM generate_series(1, 500) g",
    );
}

#[test]
fn a_database_moves_between_two_packaged_hosts() {
    let Some(major) = debian::available() else {
        eprintln!("skipped: no packaged PostgreSQL");
        return;
    };
    let hosts = Pair::new();
    let a = DebianCluster::create(major, Some(&hosts.server));
    let b = DebianCluster::create(major, Some(&hosts.client));
    let tmp = crate::harness::tempdir();
    populate(&a);
    let a_line = format!("{}:{}:*:postgres:{SU_PW}", hosts.server_ip, a.port);
    let root_pgpass = passfile(tmp.path(), "root.pgpass", &a_line, false);

    // As the README says: A listens on B's network and lets B's
    // superuser sessions in with a password.
    sql(&a, &format!("ALTER ROLE postgres PASSWORD '{SU_PW}'"));
    a.append_conf("listen_addresses = '*'\n");
    add_hba_line(
        &a,
        &format!("host all postgres {}/32 scram-sha-256", hosts.client_ip),
    );
    a.stop();
    a.start();

    // The stock cluster has wal_level = replica: refused, nothing made.
    let r = migrate(&hosts, &a, &b, &["start"], &root_pgpass);
    let j = r.fails(1, "WAL_LEVEL_NOT_LOGICAL");
    let text = j["error"].to_string();
    assert!(text.contains("wal_level"), "{j}");
    assert!(text.contains("ALTER SYSTEM SET wal_level = logical"), "{j}");
    let restart = format!("pg_ctlcluster {} {} restart", a.version, a.name);
    assert!(text.contains(&restart), "{j}");
    assert_eq!(
        sql(
            &b,
            "SELECT count(*) FROM pg_database WHERE datname = 'shop'"
        ),
        "0"
    );
    sql(&a, "ALTER SYSTEM SET wal_level = logical");
    a.stop();
    a.start();

    // B's server reaches A with a passfile of its own (postgres's, 0600).
    let server_pgpass = passfile(tmp.path(), "b-server.pgpass", &a_line, true);
    // pgbench_history has no key: refused with the way out in the hint.
    let r = migrate(
        &hosts,
        &a,
        &b,
        &["start", "--source-passfile", &server_pgpass],
        &root_pgpass,
    );
    let j = r.fails(1, "NO_REPLICA_IDENTITY");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pgbench_history"),
        "{j}"
    );
    assert_eq!(
        sql(
            &b,
            "SELECT count(*) FROM pg_database WHERE datname = 'shop'"
        ),
        "0"
    );
    let start = [
        "start",
        "--source-passfile",
        &server_pgpass,
        "--replica-identity-full",
    ];
    let dry = migrate(
        &hosts,
        &a,
        &b,
        &[&start[..], &["--dry-run"]].concat(),
        &root_pgpass,
    );
    assert_eq!(dry.ok()["changed"], true);
    assert_eq!(
        sql(
            &b,
            "SELECT count(*) FROM pg_database WHERE datname = 'shop'"
        ),
        "0"
    );
    let j = migrate(&hosts, &a, &b, &start, &root_pgpass).ok();
    assert_eq!(j["changed"], true, "{j}");
    assert!(!j.to_string().contains(SU_PW), "{j}");

    // The DBA changes their mind: abort --drop-schema (B's own pg_dump,
    // found where Debian puts it) empties shop on B, and start begins again.
    let j = migrate(&hosts, &a, &b, &["abort", "--drop-schema"], &root_pgpass).ok();
    assert_eq!(j["changed"], true, "{j}");
    assert_eq!(
        shop(
            &b,
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        ),
        "0",
        "{j}"
    );
    assert_eq!(shop(&b, "SELECT count(*) FROM pg_subscription"), "0");
    assert_eq!(shop(&a, "SELECT count(*) FROM pg_publication"), "0");
    let j = migrate(&hosts, &a, &b, &start, &root_pgpass).ok();
    assert_eq!(j["changed"], true, "{j}");

    // A keeps taking writes while B copies and then follows.
    on_host(&a, "pgbench", &["-n", "-c", "2", "-T", "3", DB]).unwrap();
    shop(
        &a,
        "INSERT INTO orders (item) SELECT 'late ' || g FROM generate_series(1, 50) g",
    );
    let t = std::time::Instant::now();
    loop {
        let r = migrate(&hosts, &a, &b, &["status"], &root_pgpass);
        if r.code() == 0 {
            break;
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(120),
            "status never OK: {}\n{}",
            r.stdout(),
            b.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }

    let j = migrate(
        &hosts,
        &a,
        &b,
        &["cutover", "--verify", "full"],
        &root_pgpass,
    )
    .ok();
    assert_eq!(j["changed"], true, "{j}");
    assert_eq!(fingerprint(&a), fingerprint(&b));
    // Nothing of the migration is left on either side.
    assert_eq!(shop(&a, "SELECT count(*) FROM pg_publication"), "0");
    assert_eq!(sql(&a, "SELECT count(*) FROM pg_replication_slots"), "0");
    assert_eq!(shop(&b, "SELECT count(*) FROM pg_subscription"), "0");
    // The application moves to B: its next order does not collide, and A
    // is read-only until the DBA says otherwise.
    shop(&b, "INSERT INTO orders (item) VALUES ('first on B')");
    // The database lives on B now: abort --drop-schema refuses to touch it.
    let on_b = fingerprint(&b);
    let r = migrate(&hosts, &a, &b, &["abort", "--drop-schema"], &root_pgpass);
    r.fails(1, "NO_MIGRATION");
    assert_eq!(fingerprint(&b), on_b);
    assert!(
        on_host(
            &a,
            "psql",
            &[
                "-X",
                "-d",
                DB,
                "-c",
                "INSERT INTO orders (item) VALUES ('x')"
            ]
        )
        .is_err(),
        "the source stays read-only"
    );
}
