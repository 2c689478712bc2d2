//! Quoting for the SQL we cannot parameterise (utility commands such as
//! CREATE ROLE and ALTER SYSTEM): the driver's own escaping, never splicing.

pub fn ident(s: &str) -> String {
    postgres_protocol::escape::escape_identifier(s)
}

pub fn literal(s: &str) -> String {
    postgres_protocol::escape::escape_literal(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_hostile_names() {
        assert_eq!(ident(r#"rep"; drop"#), r#""rep""; drop""#);
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal(r"a\b"), r" E'a\\b'");
    }
}
