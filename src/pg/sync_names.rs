//! `synchronous_standby_names`, read as PostgreSQL reads it
//! (`syncrep_scanner.l`, `syncrep_gram.y`, `SyncRepGetStandbyPriority`),
//! so a switchover can tell before it promotes whether commits on the new
//! primary would wait for standbys that will not be there. Pure text.
//!
//! What PostgreSQL does, and so what this does:
//! - empty: no synchronous standby (whitespace alone is a syntax error);
//! - `a, b`: the list form, the same as `FIRST 1 (a, b)`;
//! - `N (a, b)` and `FIRST N (a, b)`: priority; `ANY N (a, b)`: quorum.
//!   Either way commits wait until N connected standbys named in the list
//!   confirm, so whether they can ever be released depends only on how
//!   many connected standbys match a name;
//! - a name is an identifier (letters, digits, `_`, `$`, bytes above
//!   ASCII; not starting with a digit or `$`), a number, `*`, or
//!   double-quoted with `""` for a quote. `ANY` and `FIRST` are keywords
//!   in any case and must be quoted to be names;
//! - names match application_name case-insensitively whether quoted or
//!   not (`pg_strcasecmp`; quoting only lets other characters in), and
//!   `*`, quoted or not, matches every standby.

/// How the listed standbys release commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `FIRST N`, `N (…)` or the plain list: the N highest in the list.
    First,
    /// `ANY N`: any N of them (quorum, 10+).
    Any,
}

/// Which standbys commits wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub method: Method,
    /// How many must confirm (at least 1).
    pub num_sync: u32,
    /// The names as PostgreSQL keeps them: unquoted, case as written.
    pub names: Vec<String>,
}

/// A parsed `synchronous_standby_names`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncNames {
    /// The setting as written, for messages.
    pub text: String,
    /// `None` when the setting is empty: commits wait for no standby.
    pub rule: Option<Rule>,
}

impl Rule {
    /// Whether a standby connecting with this application_name is one of
    /// the listed ones (`SyncRepGetStandbyPriority`).
    pub fn matches(&self, application_name: &str) -> bool {
        self.names
            .iter()
            .any(|n| n == "*" || n.eq_ignore_ascii_case(application_name))
    }

    fn wildcard(&self) -> bool {
        self.names.iter().any(|n| n == "*")
    }
}

/// Parse the setting, or say why PostgreSQL would refuse it, in its words.
pub fn parse(s: &str) -> Result<SyncNames, String> {
    let text = s.to_string();
    if s.is_empty() {
        return Ok(SyncNames { text, rule: None });
    }
    let fail = |e: String| format!("cannot read synchronous_standby_names = '{s}': {e}");
    let tokens = scan::tokens(s).map_err(fail)?;
    let rule = grammar::rule(&tokens).map_err(fail)?;
    Ok(SyncNames {
        text,
        rule: Some(rule),
    })
}

/// Whether commits on a primary with this setting would wait forever when
/// exactly the standbys named `connected` (their application_names) stream
/// from it: `Some(why)` in plain words, else `None`. Each connection
/// counts, so two standbys with the same name count twice, as in
/// PostgreSQL; pass only standbys that will stream directly from it (a
/// cascaded one never confirms commits). This answers for
/// `synchronous_commit` on, remote_write or remote_apply, the ones that
/// wait; `off` and `local`, which a session or role may set, never do.
pub fn writes_block(s: &SyncNames, connected: &[&str]) -> Option<String> {
    let rule = s.rule.as_ref()?;
    let (named, unnamed): (Vec<&str>, Vec<&str>) = connected.iter().partition(|c| rule.matches(c));
    if named.len() >= rule.num_sync as usize {
        return None;
    }
    let n = rule.num_sync;
    let needs = if rule.wildcard() {
        format!("{n} connected standby{}", if n == 1 { "" } else { "s" })
    } else {
        let list: Vec<String> = rule.names.iter().map(|n| display_name(n)).collect();
        format!("{n} of {}", list.join(", "))
    };
    let have = match (named.is_empty(), rule.wildcard()) {
        (true, true) => "no standby will be connected".to_string(),
        (true, false) => "none of them will be connected".to_string(),
        (false, _) => format!("only {} will be connected", named.join(", ")),
    };
    let others = if unnamed.is_empty() {
        String::new()
    } else {
        let verb = if unnamed.len() == 1 { "is" } else { "are" };
        format!(
            " ({} will be too, but {verb} not named there)",
            unnamed.join(", ")
        )
    };
    Some(format!(
        "synchronous_standby_names = '{}' needs {needs} and {have}{others}: writes on the new primary would wait",
        s.text
    ))
}

/// A name as it would have to be written in the setting.
fn display_name(name: &str) -> String {
    let plain = name == "*"
        || name.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty()
        || scan::is_identifier(name) && scan::keyword(name).is_none();
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The lexer: `syncrep_scanner.l`.
mod scan {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Token {
        Name(String),
        Num(String),
        /// ANY, as written (any case).
        Any(String),
        /// FIRST, as written.
        First(String),
        Comma,
        Open,
        Close,
        /// A character that starts no token: a syntax error where it stands.
        Junk(char),
    }

    impl Token {
        /// How PostgreSQL's "at or near" would show it.
        pub fn shown(&self) -> String {
            match self {
                Token::Name(s) | Token::Num(s) | Token::Any(s) | Token::First(s) => s.clone(),
                Token::Comma => ",".into(),
                Token::Open => "(".into(),
                Token::Close => ")".into(),
                Token::Junk(c) => c.to_string(),
            }
        }
    }

    /// `{space}` is `[ \t\n\r\f\v]`; Rust's ASCII whitespace lacks `\v`.
    fn space(c: char) -> bool {
        matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c' | '\x0b')
    }

    /// `ident_start`: bytes above ASCII count, so any non-ASCII character.
    fn ident_start(c: char) -> bool {
        c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
    }

    fn ident_cont(c: char) -> bool {
        ident_start(c) || c.is_ascii_digit() || c == '$'
    }

    pub fn is_identifier(s: &str) -> bool {
        let mut cs = s.chars();
        cs.next().is_some_and(ident_start) && cs.all(ident_cont)
    }

    /// Flex takes the longest match, and the keyword rules come first on
    /// a tie: only a whole identifier spelling ANY or FIRST is a keyword.
    pub fn keyword(word: &str) -> Option<Token> {
        if word.eq_ignore_ascii_case("any") {
            Some(Token::Any(word.into()))
        } else if word.eq_ignore_ascii_case("first") {
            Some(Token::First(word.into()))
        } else {
            None
        }
    }

    pub fn tokens(s: &str) -> Result<Vec<Token>, String> {
        let chars: Vec<char> = s.chars().collect();
        let mut out = vec![];
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let start = i;
            i += 1;
            let token = match c {
                c if space(c) => continue,
                '"' => {
                    let (name, next) = quoted(&chars, i)?;
                    i = next;
                    Token::Name(name)
                }
                c if ident_start(c) => {
                    while i < chars.len() && ident_cont(chars[i]) {
                        i += 1;
                    }
                    let word: String = chars[start..i].iter().collect();
                    keyword(&word).unwrap_or(Token::Name(word))
                }
                c if c.is_ascii_digit() => {
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                    Token::Num(chars[start..i].iter().collect())
                }
                '*' => Token::Name("*".into()),
                ',' => Token::Comma,
                '(' => Token::Open,
                ')' => Token::Close,
                c => Token::Junk(c),
            };
            out.push(token);
        }
        Ok(out)
    }

    /// The inside of a double-quoted name starting at `i` (after the
    /// opening quote): the name and where scanning goes on.
    fn quoted(chars: &[char], mut i: usize) -> Result<(String, usize), String> {
        let mut name = String::new();
        loop {
            match (chars.get(i), chars.get(i + 1)) {
                (None, _) => return Err("unterminated quoted identifier at end of input".into()),
                (Some('"'), Some('"')) => {
                    name.push('"');
                    i += 2;
                }
                (Some('"'), _) => return Ok((name, i + 1)),
                (Some(&c), _) => {
                    name.push(c);
                    i += 1;
                }
            }
        }
    }
}

/// The parser: `syncrep_gram.y`, and `check_synchronous_standby_names`'s
/// refusal of a count below 1.
mod grammar {
    use super::scan::Token;
    use super::{Method, Rule};

    /// The count as PostgreSQL's `atoi` reads a string of digits on 64-bit
    /// Linux: `strtol` saturating at `i64::MAX`, then cut to 32 bits, so
    /// 4294967296 is 0 (refused) and 99999999999 is 1215752191 (accepted).
    fn atoi(digits: &str) -> i32 {
        digits.parse::<i64>().unwrap_or(i64::MAX) as i32
    }

    struct Parser<'a> {
        tokens: &'a [Token],
        at: usize,
    }

    pub fn rule(tokens: &[Token]) -> Result<Rule, String> {
        let mut p = Parser { tokens, at: 0 };
        let rule = match (p.peek(), tokens.get(1)) {
            (Some(Token::Any(_)), _) => p.counted(Method::Any, true)?,
            (Some(Token::First(_)), _) => p.counted(Method::First, true)?,
            (Some(Token::Num(_)), Some(Token::Open)) => p.counted(Method::First, false)?,
            _ => Rule {
                method: Method::First,
                num_sync: 1,
                names: p.list()?,
            },
        };
        match p.peek() {
            None => Ok(rule),
            Some(t) => Err(p.syntax_error(Some(t))),
        }
    }

    impl<'a> Parser<'a> {
        fn peek(&self) -> Option<&'a Token> {
            self.tokens.get(self.at)
        }

        fn next(&mut self) -> Option<&'a Token> {
            self.at += 1;
            self.tokens.get(self.at - 1)
        }

        fn syntax_error(&self, t: Option<&Token>) -> String {
            match t {
                Some(t) => format!("syntax error at or near \"{}\"", t.shown()),
                None => "syntax error at end of input".into(),
            }
        }

        fn expect(&mut self, want: &Token) -> Result<(), String> {
            match self.next() {
                Some(t) if t == want => Ok(()),
                t => Err(self.syntax_error(t)),
            }
        }

        /// `[ANY|FIRST] NUM '(' standby_list ')'`; `keyword` says whether
        /// the first token is ANY or FIRST.
        fn counted(&mut self, method: Method, keyword: bool) -> Result<Rule, String> {
            if keyword {
                self.next();
            }
            let num = match self.next() {
                Some(Token::Num(n)) => n.clone(),
                t => return Err(self.syntax_error(t)),
            };
            self.expect(&Token::Open)?;
            let names = self.list()?;
            self.expect(&Token::Close)?;
            let num_sync = atoi(&num);
            if num_sync <= 0 {
                return Err(format!(
                    "number of synchronous standbys ({num_sync}) must be greater than zero"
                ));
            }
            Ok(Rule {
                method,
                num_sync: num_sync as u32,
                names,
            })
        }

        /// `standby_name (',' standby_name)*`, a name being NAME or NUM.
        fn list(&mut self) -> Result<Vec<String>, String> {
            let mut names = vec![];
            loop {
                match self.next() {
                    Some(Token::Name(n) | Token::Num(n)) => names.push(n.clone()),
                    t => return Err(self.syntax_error(t)),
                }
                if self.peek() != Some(&Token::Comma) {
                    return Ok(names);
                }
                self.next();
            }
        }
    }
}

#[cfg(test)]
mod tests;
