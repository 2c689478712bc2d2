use super::*;
use std::collections::HashMap;

fn conn(addr: &str) -> ReplConn {
    ReplConn {
        role: "replicator".into(),
        addr: addr.parse().unwrap(),
        ssl: false,
    }
}

fn decide_in(text: &str, c: &ReplConn, ctx: &MatchContext) -> HbaDecision {
    decide(&parse(text).unwrap(), c, "scram-sha-256", ctx)
}

const EDGE: &str = "# TYPE DATABASE USER ADDRESS METHOD\nlocal all all trust\nhost \"all\",replication \"rep user\",+admins 10.0.0.0 255.255.255.0 md5 # c\nhostssl @dbs @users ::1/128 cert clientcert=verify-full\nhost sameuser all samenet scram-sha-256\nhost all all db.example.com \\\n  md5\n\t\r\nhost replication all .example.com reject";

#[test]
fn round_trips_byte_for_byte() {
    for t in [
        EDGE,
        "",
        "\n",
        "local all all trust",
        "host all all 0.0.0.0/0 md5\r\n",
    ] {
        assert_eq!(parse(t).unwrap().render(), t);
    }
    for major in 10..=18 {
        if let Ok(t) =
            std::fs::read_to_string(format!("/usr/share/postgresql/{major}/pg_hba.conf.sample"))
        {
            // initdb fills these placeholders in; a real file never has them.
            let t = t
                .replace("@authcomment@", "")
                .replace("@remove-line-for-nolocal@", "")
                .replace("@authmethodhost@", "scram-sha-256")
                .replace("@authmethodlocal@", "peer");
            assert_eq!(parse(&t).unwrap().render(), t);
        }
    }
}

#[test]
fn tokenizes_like_hba_c() {
    let r = parse(EDGE).unwrap().records();
    assert_eq!(r.len(), 6);
    assert_eq!(
        r[1].databases,
        vec![
            Token {
                text: "all".into(),
                quoted: true
            },
            Token {
                text: "replication".into(),
                quoted: false
            }
        ]
    );
    assert_eq!(
        r[1].users[0],
        Token {
            text: "rep user".into(),
            quoted: true
        }
    );
    assert_eq!(
        r[1].address,
        Some(Address::Cidr("10.0.0.0/24".parse().unwrap()))
    );
    assert_eq!(r[1].method, "md5");
    assert_eq!(r[2].options, vec!["clientcert=verify-full".to_string()]);
    assert_eq!(r[3].address, Some(Address::SameNet));
    assert_eq!(
        (r[4].line, r[4].method.as_str()),
        (6, "md5"),
        "continuation line"
    );
    assert_eq!(r[5].line, 9);
}

#[test]
fn malformed_lines_are_errors_with_numbers() {
    for (t, line) in [
        ("local all all trust\nhost replication all\n", 2),
        ("hots all all 1.2.3.4/32 md5\n", 1),
        ("host all all 10.0.0.0/99 md5\n", 1),
        ("host all all 10.0.0.1 md5\n", 1),
    ] {
        assert_eq!(parse(t).unwrap_err().line, line, "{t}");
    }
}

#[test]
fn empty_file_appends() {
    assert!(matches!(
        decide_in("", &conn("10.0.0.2/32"), &Default::default()),
        HbaDecision::Append
    ));
}

#[test]
fn reject_catch_all_gets_our_line_before_it() {
    let t = "local all all trust\nhost replication all 0.0.0.0/0 reject\n";
    match decide_in(t, &conn("10.0.0.2/32"), &Default::default()) {
        HbaDecision::InsertBefore { line, .. } => assert_eq!(line, 2),
        d => panic!("{d:?}"),
    }
}

#[test]
fn monitoring_lines_go_before_a_catch_all_reject_and_only_once() {
    let conn = DbConn {
        database: "postgres".into(),
        role: "monitor".into(),
        addr: "10.0.0.3/32".parse().unwrap(),
    };
    let t = "local all all peer\nhost replication all 0.0.0.0/0 reject\nhost all all 0.0.0.0/0 reject\n";
    let mut f = parse(t).unwrap();
    let notes = ensure_db_lines(
        &mut f,
        std::slice::from_ref(&conn),
        "scram-sha-256",
        &MatchContext::default(),
    );
    assert_eq!(notes.len(), 1, "{notes:?}");
    let out = f.render();
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[2].starts_with("host    postgres        monitor         10.0.0.3/32"),
        "{out}"
    );
    assert!(lines[3].contains("reject"), "{out}");
    // The replication keyword does not match a normal connection.
    let mut again = parse(&out).unwrap();
    assert!(
        ensure_db_lines(
            &mut again,
            &[conn],
            "scram-sha-256",
            &MatchContext::default()
        )
        .is_empty()
    );
}

#[test]
fn all_databases_do_not_match_replication() {
    let t = "host all all 0.0.0.0/0 scram-sha-256\nhost \"replication\" all 0.0.0.0/0 reject\n";
    assert!(matches!(
        decide_in(t, &conn("10.0.0.2/32"), &Default::default()),
        HbaDecision::Append
    ));
}

#[test]
fn equivalent_line_is_already_allowed() {
    let t = "host replication replicator 10.0.0.0/24 scram-sha-256\n";
    assert!(matches!(
        decide_in(t, &conn("10.0.0.2/32"), &Default::default()),
        HbaDecision::AlreadyAllowed { line: 1 }
    ));
    // Same line but md5: not what was asked, so ours goes first.
    let t = "host replication replicator 10.0.0.0/24 md5\n";
    assert!(matches!(
        decide_in(t, &conn("10.0.0.2/32"), &Default::default()),
        HbaDecision::InsertBefore { line: 1, .. }
    ));
}

#[test]
fn samenet_catch_all() {
    let ctx = MatchContext {
        local_nets: vec!["10.0.0.1/24".parse().unwrap()],
        ..Default::default()
    };
    let t = "host replication all samenet md5\n";
    assert!(matches!(
        decide_in(t, &conn("10.0.0.2/32"), &ctx),
        HbaDecision::InsertBefore { line: 1, .. }
    ));
    assert!(matches!(
        decide_in(t, &conn("192.168.1.2/32"), &ctx),
        HbaDecision::Append
    ));
}

#[test]
fn ssl_types() {
    let t = "hostssl replication all 10.0.0.0/8 reject\nhostnossl replication all 10.0.0.0/8 scram-sha-256\n";
    assert!(matches!(
        decide_in(t, &conn("10.0.0.2/32"), &Default::default()),
        HbaDecision::AlreadyAllowed { line: 2 }
    ));
    let mut c = conn("10.0.0.2/32");
    c.ssl = true;
    assert!(matches!(
        decide_in(t, &c, &Default::default()),
        HbaDecision::InsertBefore { line: 1, .. }
    ));
}

#[test]
fn groups_files_and_quoted_keywords() {
    let t = "host replication +repl 10.0.0.0/8 reject\n";
    assert!(matches!(
        decide_in(t, &conn("10.0.0.2/32"), &Default::default()),
        HbaDecision::Append
    ));
    let ctx = MatchContext {
        role_memberships: vec!["repl".into()],
        ..Default::default()
    };
    assert!(matches!(
        decide_in(t, &conn("10.0.0.2/32"), &ctx),
        HbaDecision::InsertBefore { .. }
    ));
    // A quoted "all" user is a role named all, not the keyword.
    let t = "host replication \"all\" 10.0.0.0/8 reject\n";
    assert!(matches!(
        decide_in(t, &conn("10.0.0.2/32"), &Default::default()),
        HbaDecision::Append
    ));
    // @file: unknown contents might match; known contents decide.
    let t = "host replication @users 10.0.0.0/8 reject\n";
    assert!(matches!(
        decide_in(t, &conn("10.0.0.2/32"), &Default::default()),
        HbaDecision::InsertBefore { .. }
    ));
    let ctx = MatchContext {
        at_files: HashMap::from([(
            "users".to_string(),
            vec![Token {
                text: "bob".into(),
                quoted: false,
            }],
        )]),
        ..Default::default()
    };
    assert!(matches!(
        decide_in(t, &conn("10.0.0.2/32"), &ctx),
        HbaDecision::Append
    ));
    // A hostname might resolve to the standby.
    let t = "host replication all standby.example reject\n";
    assert!(matches!(
        decide_in(t, &conn("10.0.0.2/32"), &Default::default()),
        HbaDecision::InsertBefore { .. }
    ));
}

#[test]
fn partial_overlap_and_families() {
    let t = "host replication all 10.0.0.0/25 reject\n";
    assert!(matches!(
        decide_in(t, &conn("10.0.0.0/24"), &Default::default()),
        HbaDecision::InsertBefore { .. }
    ));
    let t = "host replication all ::/0 reject\n";
    assert!(matches!(
        decide_in(t, &conn("10.0.0.2/32"), &Default::default()),
        HbaDecision::Append
    ));
}

#[test]
fn formats_and_quotes() {
    let line = format_record(&conn("10.0.0.2/32"), "scram-sha-256");
    assert_eq!(
        line,
        "host    replication     replicator      10.0.0.2/32             scram-sha-256  # pgrepctl"
    );
    assert_eq!(quote_token("rep user"), "\"rep user\"");
    assert_eq!(quote_token("all"), "\"all\"");
    assert_eq!(quote_token("+x"), "\"+x\"");
    let f = parse(&format!(
        "{}\n",
        format_record(
            &ReplConn {
                role: "a b,c".into(),
                addr: "10.0.0.2/32".parse().unwrap(),
                ssl: true
            },
            "md5"
        )
    ))
    .unwrap();
    let r = &f.records()[0];
    assert_eq!(r.conn_type, ConnType::HostSsl);
    assert_eq!(
        r.users,
        vec![Token {
            text: "a b,c".into(),
            quoted: true
        }]
    );
}

#[test]
fn insert_keeps_other_lines() {
    let t = "a-comment-free\nlocal all all trust\nhost replication all 0.0.0.0/0 reject";
    let mut f = parse(&t.replace("a-comment-free", "# x")).unwrap();
    assert_eq!(
        f.insert_before(Some(3), "host replication r 10.0.0.2/32 md5"),
        3
    );
    assert_eq!(
        f.insert_before(None, "host replication r 10.0.0.3/32 md5"),
        5
    );
    assert_eq!(
        f.render(),
        "# x\nlocal all all trust\nhost replication r 10.0.0.2/32 md5\nhost replication all 0.0.0.0/0 reject\nhost replication r 10.0.0.3/32 md5\n"
    );
    assert_eq!(f.records().len(), 4);
}

#[test]
fn doubled_quotes_inside_quotes_are_one_quote() {
    let f = parse("host replication \"rep\"\"l\",\"\"\"x\",a\"\"b 10.0.0.0/8 md5\n").unwrap();
    let users: Vec<(String, bool)> = f.records()[0]
        .users
        .iter()
        .map(|t| (t.text.clone(), t.quoted))
        .collect();
    // hba.c: `a""b` outside quotes is an empty quoted run, not a quote.
    assert_eq!(
        users,
        vec![
            ("rep\"l".to_string(), true),
            ("\"x".to_string(), true),
            ("ab".to_string(), true)
        ]
    );
    for role in ["rep\"l", "\"", "\"\"", "a \" b", "x\"\\"] {
        assert_eq!(quote_token(role).matches('"').count() % 2, 0, "{role}");
        let line = format_record(
            &ReplConn {
                role: role.into(),
                addr: "10.0.0.2/32".parse().unwrap(),
                ssl: false,
            },
            "scram-sha-256",
        );
        let r = &parse(&line).unwrap().records()[0];
        assert_eq!(
            r.users,
            vec![Token {
                text: role.into(),
                quoted: true
            }],
            "{line}"
        );
        assert_eq!(r.method, "scram-sha-256", "{line}");
    }
}

#[test]
fn continuation_is_read_as_the_server_version_reads_it() {
    let old = Syntax::for_version(130000);
    let new = Syntax::for_version(140000);
    // Joined with nothing in between: `127.0.0.1/32 \` + `  md5`.
    let t = "host all all 127.0.0.1/32 \\\n  md5\nhost all al\\\nl 10.0.0.0/8 md5\n";
    let r = parse_with(t, new).unwrap().records();
    assert_eq!((r.len(), r[0].method.as_str(), r[1].line), (2, "md5", 3));
    assert!(r[1].users[0].is_keyword("all"));
    // Before 14 each line is alone: the first record is malformed.
    assert!(parse_with(t, old).is_err());
    // A comment ending in a backslash swallows the next line on 14+.
    let t = "# note \\\nhost replication all 10.0.0.0/8 reject\n";
    assert_eq!(parse_with(t, new).unwrap().records().len(), 0);
    assert_eq!(parse_with(t, old).unwrap().records().len(), 1);
    // `\\` then an empty line: the empty line ends it.
    let t = "host all all 10.0.0.0/8 md5 x=\\\\\n\nhost all all 10.0.0.0/8 md5\n";
    assert_eq!(parse_with(t, new).unwrap().records().len(), 2);
}

#[test]
fn appended_line_never_joins_a_trailing_backslash() {
    let line = "host replication r 10.0.0.2/32 md5";
    for (text, syntax, records) in [
        // Last line ends in `\` without a newline, with one, a comment.
        (
            "local all all trust\nhost all all 127.0.0.1/32 md5 \\",
            14,
            3,
        ),
        (
            "local all all trust\nhost all all 127.0.0.1/32 md5 \\\n",
            14,
            3,
        ),
        ("local all all trust\n# note \\", 14, 2),
        ("local all all trust\n# note \\", 13, 2),
        // No trailing newline at all.
        ("local all all trust", 14, 2),
        ("local all all trust", 13, 2),
    ] {
        let syntax = Syntax::for_version(syntax * 10000);
        let before = parse_with(text, syntax).unwrap().records();
        let mut f = parse_with(text, syntax).unwrap();
        let at = f.insert_before(None, line);
        let after = parse_with(&f.render(), syntax).unwrap().records();
        assert_eq!(after.len(), records, "{text:?} -> {:?}", f.render());
        assert_eq!(after.last().unwrap().line, at, "{:?}", f.render());
        assert_eq!(after.last().unwrap().method, "md5");
        // Every record that was there reads the same.
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(
                (&b.users, &b.address, &b.method),
                (&a.users, &a.address, &a.method)
            );
        }
        assert!(
            f.render().starts_with(text),
            "existing text kept: {:?}",
            f.render()
        );
    }
}

#[test]
fn lines_our_line_makes_unreachable() {
    let t = "local all all trust\n\
             host replication all 0.0.0.0/0 reject\n\
             host replication replicator 10.0.0.2/32 scram-sha-256\n\
             hostssl replication \"replicator\" 10.0.0.0/30 md5\n\
             host replication replicator,other 10.0.0.2/32 md5\n\
             host replication,all replicator 10.0.0.2/32 md5\n\
             host replication replicator 10.0.0.0/8 md5\n\
             host replication all 10.0.0.2/32 md5\n";
    let mut f = parse(t).unwrap();
    let c = ReplConn {
        role: "replicator".into(),
        addr: "10.0.0.0/24".parse().unwrap(),
        ssl: false,
    };
    let at = f.insert_before(Some(2), &format_record(&c, "scram-sha-256"));
    assert_eq!(at, 2);
    let shadowed: Vec<usize> = f
        .shadowed_by(at, "replicator")
        .iter()
        .map(|r| r.line)
        .collect();
    // The duplicate (now 4) and the narrower hostssl line (5); not the
    // lines that also match other roles, databases or addresses.
    assert_eq!(shadowed, vec![4, 5]);
    assert!(
        f.line_text(4)
            .starts_with("host replication replicator 10.0.0.2/32")
    );
    // A hostssl line of ours leaves plain host lines reachable.
    let mut f = parse("host replication replicator 10.0.0.2/32 md5\n").unwrap();
    let mut c = c.clone();
    c.ssl = true;
    let at = f.insert_before(Some(1), &format_record(&c, "scram-sha-256"));
    assert!(f.shadowed_by(at, "replicator").is_empty());
}
