//! The editors judged by PostgreSQL itself: what our parser reads and what
//! our edits write must be what `postgres -C` and `pg_hba_file_rules` see.

use crate::harness::{self, Cluster};
use pgrepctl::conf::{hba, pgconf};

fn postgres_c(c: &Cluster, name: &str) -> String {
    let out = harness::as_pg(c.bindir.join("postgres"))
        .arg("-C")
        .arg(name)
        .arg("-D")
        .arg(&c.data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "postgres -C {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim_end_matches('\n')
        .to_string()
}

#[test]
fn postgresql_conf_values_and_edits_read_back_by_postgres() {
    let lines = [
        "search_path = '\"$user\", public'   # quoted, with a comment",
        "log_line_prefix = 'it''s \\'x\\' %m '",
        "application_name 'no equals sign'",
        "cluster_name='tight'#comment",
        "work_mem = 8MB",
        "maintenance_work_mem 64MB",
        "statement_timeout = 0",
    ];
    let mut b = Cluster::builder().stopped();
    for l in lines {
        b = b.conf(l);
    }
    let c = b.init();
    let text = std::fs::read_to_string(c.conf_path()).unwrap();
    let file = pgconf::parse(&text).unwrap();
    assert_eq!(file.render(), text);
    for name in [
        "search_path",
        "log_line_prefix",
        "application_name",
        "cluster_name",
    ] {
        let line = file.last_active(name).unwrap();
        let (_, ours) = file.setting_at(line).unwrap();
        assert_eq!(ours, postgres_c(&c, name), "{name}");
    }
    // Memory settings: postgres -C prints kB; the sizes must agree.
    for name in ["work_mem", "maintenance_work_mem"] {
        let (_, ours) = file.setting_at(file.last_active(name).unwrap()).unwrap();
        assert_eq!(
            pgconf::parse_size(&ours, 1024),
            pgconf::parse_size(&postgres_c(&c, name), 1024),
            "{name}"
        );
    }

    // Edits of every kind, then PostgreSQL reads them back.
    let mut file = file;
    let tricky = [
        ("search_path", "a, \"B c\", 'd'"),
        ("log_line_prefix", "%m [%p] back\\slash '"),
        ("application_name", "plain"),
        ("work_mem", "16MB"),
    ];
    for (name, v) in tricky {
        let line = file.last_active(name).unwrap();
        file.set_at(line, &pgconf::quote_value(v)).unwrap();
    }
    file.append_managed("cluster_name", &pgconf::quote_value("managed #1"));
    if c.major >= 13 {
        file.append_managed("wal_keep_size", "1GB");
    }
    c.write_as_pg(&c.conf_path(), &file.render());
    for (name, v) in tricky {
        if name == "work_mem" {
            assert_eq!(
                pgconf::parse_size(&postgres_c(&c, name), 1024),
                pgconf::parse_size(v, 1024)
            );
        } else {
            assert_eq!(postgres_c(&c, name), v, "{name}");
        }
    }
    assert_eq!(postgres_c(&c, "cluster_name"), "managed #1");
    if c.major >= 13 {
        assert_eq!(
            pgconf::parse_size(&postgres_c(&c, "wal_keep_size"), 1 << 20),
            Some(1 << 30)
        );
    }
    // The untouched lines are still there, byte for byte.
    let after = std::fs::read_to_string(c.conf_path()).unwrap();
    assert!(
        after.contains("maintenance_work_mem 64MB\n") && after.contains("statement_timeout = 0\n")
    );
}

#[test]
fn hba_records_match_pg_hba_file_rules() {
    let text = "local all all trust\n\
        host \"all\",replication \"rep user\",+admins 10.0.0.0 255.255.255.0 md5 # two-field\n\
        hostnossl replication replicator 192.168.1.0/24 scram-sha-256\n\
        host sameuser all samenet reject\n\
        host all @extra_users ::1/128 trust\n\
        host replication all 127.0.0.1/32 trust\n";
    let mut c = Cluster::builder().hba(text).stopped().init();
    c.write_as_pg(&c.data.join("extra_users"), "bob\n");
    c.start();
    let rules = c.sql(
        "SELECT line_number, type, array_to_string(database, ','), array_to_string(user_name, ','), coalesce(address, ''), coalesce(netmask, ''), auth_method \
         FROM pg_hba_file_rules WHERE error IS NULL ORDER BY line_number",
    );
    let ours = hba::parse(text).unwrap();
    let mut expect = String::new();
    for r in ours.records() {
        let kind = r.conn_type.keyword();
        let list = |ts: &[hba::Token]| {
            ts.iter()
                .map(|t| {
                    if t.quoted {
                        format!("\"{}\"", t.text)
                    } else {
                        t.text.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        let (addr, mask) = match &r.address {
            Some(hba::Address::Cidr(n)) => (n.addr().to_string(), n.netmask().to_string()),
            Some(hba::Address::SameNet) => ("samenet".into(), String::new()),
            _ => (String::new(), String::new()),
        };
        expect.push_str(&format!(
            "{}|{kind}|{}|{}|{addr}|{mask}|{}\n",
            r.line,
            list(&r.databases),
            list(&r.users),
            r.method
        ));
    }
    // pg_hba_file_rules expands @file; it shows quoted keywords quoted only
    // from PostgreSQL 16 on, so compare without the quotes.
    let expect = expect.replace("@extra_users", "bob").replace('"', "");
    assert_eq!(rules.trim_end().replace('"', ""), expect.trim_end());
}
