use super::*;

fn rule(s: &str) -> Rule {
    parse(s).unwrap().rule.unwrap()
}

fn first(n: u32, names: &[&str]) -> Rule {
    Rule {
        method: Method::First,
        num_sync: n,
        names: names.iter().map(|s| s.to_string()).collect(),
    }
}

fn err(s: &str) -> String {
    parse(s).unwrap_err()
}

#[test]
fn empty_is_async_and_never_blocks() {
    let s = parse("").unwrap();
    assert_eq!(s.rule, None);
    assert_eq!(writes_block(&s, &[]), None);
}

#[test]
fn plain_list_is_first_one() {
    assert_eq!(rule("a, b"), first(1, &["a", "b"]));
    assert_eq!(rule("a"), first(1, &["a"]));
    assert_eq!(rule(" \t\na ,\x0bb\r\x0c"), first(1, &["a", "b"]));
}

#[test]
fn counted_forms() {
    assert_eq!(rule("2 (a, b, c)"), first(2, &["a", "b", "c"]));
    assert_eq!(rule("FIRST 2 (a, b)"), first(2, &["a", "b"]));
    assert_eq!(rule("first 1(a)"), first(1, &["a"]));
    let any = rule("ANY 2 (a, b, c)");
    assert_eq!(any.method, Method::Any);
    assert_eq!((any.num_sync, any.names.len()), (2, 3));
    assert_eq!(rule("aNy 1 (a)").method, Method::Any);
    // More than listed: PostgreSQL warns but accepts it.
    assert_eq!(rule("FIRST 3 (a, b)").num_sync, 3);
    // A count past 32 bits is cut as atoi cuts it, and accepted if positive.
    assert_eq!(rule("99999999999 (a)").num_sync, 1215752191);
    assert_eq!(rule("2147483647 (a)").num_sync, i32::MAX as u32);
}

#[test]
fn numbers_are_names_too() {
    assert_eq!(rule("1"), first(1, &["1"]));
    assert_eq!(rule("1, 2"), first(1, &["1", "2"]));
    assert_eq!(rule("2 (1, 02)"), first(2, &["1", "02"]));
}

#[test]
fn identifiers() {
    assert_eq!(rule("_a1$, b_2"), first(1, &["_a1$", "b_2"]));
    assert_eq!(rule("nœud, été"), first(1, &["nœud", "été"]));
    // Longest match: these are names, not keywords.
    assert_eq!(rule("anyone, firsts"), first(1, &["anyone", "firsts"]));
    assert_eq!(rule("FIRST 1 (any1)"), first(1, &["any1"]));
}

#[test]
fn quoted_names() {
    assert_eq!(rule(r#""node-1", "a b""#), first(1, &["node-1", "a b"]));
    assert_eq!(rule(r#""say ""hi""""#), first(1, &[r#"say "hi""#]));
    assert_eq!(
        rule(r#"ANY 1 ("any", "FIRST")"#),
        first(1, &["any", "FIRST"]).with(Method::Any)
    );
    assert_eq!(rule(r#""""#), first(1, &[""]));
    assert_eq!(rule("\"a,(b)\""), first(1, &["a,(b)"]));
}

impl Rule {
    fn with(mut self, method: Method) -> Rule {
        self.method = method;
        self
    }
}

#[test]
fn matching_ignores_case_quoted_or_not() {
    let r = rule(r#"FIRST 1 (Alpha, "BETA")"#);
    assert!(r.matches("alpha") && r.matches("ALPHA"));
    assert!(r.matches("beta") && r.matches("Beta"));
    assert!(!r.matches("gamma") && !r.matches("alph"));
    // pg_strcasecmp folds ASCII only (for a UTF-8 server).
    let r = rule(r#""Été""#);
    assert!(r.matches("Été") && r.matches("ÉTé") && !r.matches("été"));
}

#[test]
fn star_matches_everyone_even_quoted() {
    for s in ["*", "\"*\"", "FIRST 2 (a, *)"] {
        let r = rule(s);
        assert!(r.matches("anything") && r.matches(""), "{s}");
    }
    assert!(!rule("\"**\"").matches("x"));
}

#[test]
fn bad_input_says_what_postgresql_says() {
    let cases = [
        ("   ", "syntax error at end of input"),
        ("a b", "syntax error at or near \"b\""),
        ("a,", "syntax error at end of input"),
        (",a", "syntax error at or near \",\""),
        ("node-1", "syntax error at or near \"-\""),
        ("any", "syntax error at end of input"),
        ("first, a", "syntax error at or near \",\""),
        ("a, any", "syntax error at or near \"any\""),
        ("a, FiRsT", "syntax error at or near \"FiRsT\""),
        ("ANY (a)", "syntax error at or near \"(\""),
        ("ANY 2 a, b", "syntax error at or near \"a\""),
        ("FIRST 2 (a, b", "syntax error at end of input"),
        ("FIRST 2 (a, b) c", "syntax error at or near \"c\""),
        ("2 (a) (b)", "syntax error at or near \"(\""),
        ("2 ()", "syntax error at or near \")\""),
        ("1a", "syntax error at or near \"a\""),
        ("$a", "syntax error at or near \"$\""),
        ("\"a", "unterminated quoted identifier at end of input"),
        (
            "ANY 0 (a)",
            "number of synchronous standbys (0) must be greater than zero",
        ),
        ("FIRST 00 (a)", "must be greater than zero"),
        (
            "4294967296 (a)",
            "number of synchronous standbys (0) must be",
        ),
        (
            "2147483648 (a)",
            "number of synchronous standbys (-2147483648) must be",
        ),
        (
            "99999999999999999999 (a)",
            "number of synchronous standbys (-1) must be",
        ),
    ];
    for (input, want) in cases {
        let e = err(input);
        assert!(e.contains(want), "{input:?}: {e}");
        assert!(
            e.starts_with("cannot read synchronous_standby_names = '"),
            "{e}"
        );
    }
}

#[test]
fn enough_connected_means_no_wait() {
    let s = parse("FIRST 2 (a, b, c)").unwrap();
    assert_eq!(writes_block(&s, &["a", "c"]), None);
    assert_eq!(writes_block(&s, &["C", "B", "x"]), None);
    let s = parse("ANY 2 (a, b)").unwrap();
    assert_eq!(writes_block(&s, &["b", "a"]), None);
    // Two connections under one name both count.
    let s = parse("FIRST 2 (a)").unwrap();
    assert_eq!(writes_block(&s, &["a", "a"]), None);
    let s = parse("2 (*)").unwrap();
    assert_eq!(writes_block(&s, &["x", "y"]), None);
}

#[test]
fn too_few_connected_blocks_and_says_why() {
    let s = parse("FIRST 2 (a, b)").unwrap();
    assert_eq!(
        writes_block(&s, &["a"]).unwrap(),
        "synchronous_standby_names = 'FIRST 2 (a, b)' needs 2 of a, b and only a will be connected: writes on the new primary would wait"
    );
    let s = parse("a, b").unwrap();
    assert_eq!(
        writes_block(&s, &[]).unwrap(),
        "synchronous_standby_names = 'a, b' needs 1 of a, b and none of them will be connected: writes on the new primary would wait"
    );
    let s = parse("ANY 1 (a)").unwrap();
    assert_eq!(
        writes_block(&s, &["b", "c"]).unwrap(),
        "synchronous_standby_names = 'ANY 1 (a)' needs 1 of a and none of them will be connected (b, c will be too, but are not named there): writes on the new primary would wait"
    );
}

#[test]
fn block_messages_for_star_and_quoted_names() {
    let s = parse("2 (*)").unwrap();
    assert_eq!(
        writes_block(&s, &[]).unwrap(),
        "synchronous_standby_names = '2 (*)' needs 2 connected standbys and no standby will be connected: writes on the new primary would wait"
    );
    assert!(
        writes_block(&s, &["x"])
            .unwrap()
            .contains("needs 2 connected standbys and only x will")
    );
    let s = parse(r#"FIRST 2 ("node-1", "any", 7, "say ""hi""")"#).unwrap();
    let why = writes_block(&s, &["NODE-1"]).unwrap();
    assert!(
        why.contains(
            r#"needs 2 of "node-1", "any", 7, "say ""hi""" and only NODE-1 will be connected"#
        ),
        "{why}"
    );
}
