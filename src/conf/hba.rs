//! `pg_hba.conf`: records tokenized as PostgreSQL's hba.c does (quoted
//! tokens are never keywords, comma lists, `+group`, `@file`, line
//! continuation), matched against the connection a standby will make, so
//! a new line can be placed before whatever would otherwise decide it.

use super::{ParseError, raw_lines};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnType {
    Local,
    Host,
    HostSsl,
    HostNoSsl,
    HostGssEnc,
    HostNoGssEnc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub quoted: bool,
}

impl Token {
    fn is_keyword(&self, kw: &str) -> bool {
        !self.quoted && self.text == kw
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    All,
    SameHost,
    SameNet,
    Cidr(IpNet),
    Hostname(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: usize,
    pub conn_type: ConnType,
    pub databases: Vec<Token>,
    pub users: Vec<Token>,
    pub address: Option<Address>,
    pub method: String,
    pub options: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct HbaFile {
    lines: Vec<String>,
    records: Vec<Record>,
    syntax: Syntax,
}

/// Fields of one logical line; each field is a comma list of tokens.
/// Quoting follows hba.c's next_token: a `"` opens or closes a quoted
/// run anywhere in a token, and inside quotes `""` is a literal `"`.
fn tokenize(text: &str) -> Vec<Vec<Token>> {
    let mut fields: Vec<Vec<Token>> = vec![];
    let mut cur: Vec<Token> = vec![];
    let mut tok = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    // The previous character closed a quoted run: a `"` right after it
    // is the second half of a `""` pair.
    let mut was_quote = false;
    let mut have = false;
    let mut chars = text.chars().peekable();
    let flush_tok = |cur: &mut Vec<Token>, tok: &mut String, quoted: &mut bool, have: &mut bool| {
        if *have {
            cur.push(Token {
                text: std::mem::take(tok),
                quoted: *quoted,
            });
        }
        *quoted = false;
        *have = false;
    };
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                in_quotes = false;
                was_quote = true;
            } else {
                tok.push(c);
            }
            continue;
        }
        let after_quote = std::mem::take(&mut was_quote);
        match c {
            '#' => break,
            '"' => {
                if after_quote {
                    tok.push('"');
                }
                in_quotes = true;
                quoted = true;
                have = true;
            }
            ',' => {
                flush_tok(&mut cur, &mut tok, &mut quoted, &mut have);
                // A list goes on after the comma, even across blanks.
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            c if c.is_whitespace() => {
                flush_tok(&mut cur, &mut tok, &mut quoted, &mut have);
                if !cur.is_empty() {
                    fields.push(std::mem::take(&mut cur));
                }
            }
            c => {
                tok.push(c);
                have = true;
            }
        }
    }
    flush_tok(&mut cur, &mut tok, &mut quoted, &mut have);
    if !cur.is_empty() {
        fields.push(cur);
    }
    fields
}

/// Whether this server joins a line ending in `\` with the next one.
/// hba.c's tokenize_auth_file does so (every line, comments included, the
/// backslash dropped and the next line appended as is) from 14 on; 10–13 read
/// each line alone, so a trailing `\` is just part of its last token.
pub fn has_line_continuation(version_num: u32) -> bool {
    crate::pg::version::Version::of(version_num).hba_line_continuation()
}

/// How a server reads the file: what differs between supported versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syntax {
    pub continuation: bool,
}

impl Syntax {
    pub fn for_version(version_num: u32) -> Syntax {
        Syntax {
            continuation: has_line_continuation(version_num),
        }
    }
}

/// The newest servers' reading.
pub fn parse(text: &str) -> Result<HbaFile, ParseError> {
    parse_with(text, Syntax { continuation: true })
}

/// One logical line from physical line `i` on, as hba.c builds it: a
/// line ending in `\` (after a newline is stripped) loses the backslash
/// and has the next line appended directly, unless nothing was added
/// since the last backslash (a `\\` then an empty line ends it).
fn logical_line(lines: &[String], mut i: usize, syntax: Syntax) -> (String, usize) {
    let mut buf = String::new();
    let mut last_backslash = 0;
    loop {
        buf.push_str(lines[i].trim_end_matches(['\n', '\r']));
        i += 1;
        if syntax.continuation
            && buf.len() > last_backslash
            && buf.ends_with('\\')
            && i < lines.len()
        {
            buf.pop();
            last_backslash = buf.len();
            continue;
        }
        if syntax.continuation && buf.len() > last_backslash && buf.ends_with('\\') {
            buf.pop(); // at the end of the file the backslash is dropped
        }
        return (buf, i);
    }
}

pub fn parse_with(text: &str, syntax: Syntax) -> Result<HbaFile, ParseError> {
    let lines = raw_lines(text);
    let mut records = vec![];
    let mut i = 0;
    while i < lines.len() {
        let first = i;
        let (logical, next) = logical_line(&lines, i, syntax);
        i = next;
        let fields = tokenize(&logical);
        if fields.is_empty() {
            continue;
        }
        let err = |m: String| ParseError {
            line: first + 1,
            message: m,
        };
        let one = |f: &Vec<Token>| -> Result<Token, ParseError> {
            match f.as_slice() {
                [t] => Ok(t.clone()),
                _ => Err(err("a list is not allowed in this field".into())),
            }
        };
        let kind = one(&fields[0])?;
        let conn_type = match kind.text.as_str() {
            "local" => ConnType::Local,
            "host" => ConnType::Host,
            "hostssl" => ConnType::HostSsl,
            "hostnossl" => ConnType::HostNoSsl,
            "hostgssenc" => ConnType::HostGssEnc,
            "hostnogssenc" => ConnType::HostNoGssEnc,
            "include" | "include_if_exists" | "include_dir" => continue,
            other => return Err(err(format!("invalid connection type {other:?}"))),
        };
        let need = if conn_type == ConnType::Local { 4 } else { 5 };
        if fields.len() < need {
            return Err(err("end-of-line before the authentication method".into()));
        }
        let mut idx = 3;
        let address = if conn_type == ConnType::Local {
            None
        } else {
            let a = one(&fields[3])?;
            idx = 4;
            Some(if a.is_keyword("all") {
                Address::All
            } else if a.is_keyword("samehost") {
                Address::SameHost
            } else if a.is_keyword("samenet") {
                Address::SameNet
            } else if a.text.contains('/') {
                Address::Cidr(
                    a.text
                        .parse()
                        .map_err(|_| err(format!("invalid IP address/mask {:?}", a.text)))?,
                )
            } else if let Ok(ip) = a.text.parse::<IpAddr>() {
                // Two-field form: address, then mask.
                let mask = fields
                    .get(4)
                    .map(one)
                    .transpose()?
                    .ok_or_else(|| err("missing netmask".into()))?;
                let mask: IpAddr = mask
                    .text
                    .parse()
                    .map_err(|_| err(format!("invalid netmask {:?}", mask.text)))?;
                idx = 5;
                let prefix =
                    ipnet::ip_mask_to_prefix(mask).map_err(|_| err("invalid netmask".into()))?;
                Address::Cidr(IpNet::new(ip, prefix).map_err(|_| err("invalid netmask".into()))?)
            } else {
                Address::Hostname(a.text.clone())
            })
        };
        let method = fields
            .get(idx)
            .map(one)
            .transpose()?
            .ok_or_else(|| err("missing authentication method".into()))?;
        let options = fields[idx + 1..]
            .iter()
            .map(|f| {
                f.iter()
                    .map(|t| t.text.clone())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        records.push(Record {
            line: first + 1,
            conn_type,
            databases: fields[1].clone(),
            users: fields[2].clone(),
            address,
            method: method.text,
            options,
        });
    }
    Ok(HbaFile {
        lines,
        records,
        syntax,
    })
}

impl HbaFile {
    pub fn render(&self) -> String {
        self.lines.concat()
    }

    pub fn line_count(&self) -> usize {
        self.lines.len()
    }

    pub fn records(&self) -> Vec<Record> {
        self.records.clone()
    }

    /// Insert `text` as a new line before 1-based `line`, or at the end.
    /// A last line with no newline gets one; a line before ours that ends
    /// in a continuation backslash gets an empty line after it, so that
    /// ours stays a record of its own and the one before keeps its meaning
    /// (the server drops a backslash at the end of the file, and an empty
    /// line ends a continuation the same way). Returns ours' line number.
    pub fn insert_before(&mut self, line: Option<usize>, text: &str) -> usize {
        let new = format!("{}\n", text.trim_end_matches('\n'));
        let mut at = match line {
            Some(l) if l >= 1 && l <= self.lines.len() => l - 1,
            _ => {
                if let Some(last) = self.lines.last_mut() {
                    if !last.ends_with('\n') {
                        last.push('\n');
                    }
                }
                self.lines.len()
            }
        };
        if self.continues_into(at) {
            self.lines.insert(at, "\n".into());
            at += 1;
        }
        self.lines.insert(at, new);
        // Re-derive records (line numbers moved); the text is still valid.
        if let Ok(f) = parse_with(&self.render(), self.syntax) {
            self.records = f.records;
        }
        at + 1
    }

    /// Whether a line placed at `at` (0-based) would be read as the tail
    /// of the logical line before it.
    fn continues_into(&self, at: usize) -> bool {
        let mut probe = self.lines[..at].to_vec();
        probe.push("x\n".into());
        let mut i = 0;
        while i < at {
            let (_, next) = logical_line(&probe, i, self.syntax);
            if next > at {
                return true;
            }
            i = next;
        }
        false
    }

    /// Existing records that the record on `ours` (1-based) now decides
    /// for every connection they could match: they can no longer be
    /// reached by the connections ours is for.
    pub fn shadowed_by(&self, ours: usize, role: &str) -> Vec<Record> {
        let Some(mine) = self.records.iter().find(|r| r.line == ours) else {
            return vec![];
        };
        self.records
            .iter()
            .filter(|r| r.line > ours && covers(mine, r, role))
            .cloned()
            .collect()
    }

    /// The raw text of the record starting on `line` (1-based), without
    /// its line ending, for messages.
    pub fn line_text(&self, line: usize) -> String {
        self.lines
            .get(line.wrapping_sub(1))
            .map(|l| l.trim_end_matches(['\n', '\r']).to_string())
            .unwrap_or_default()
    }
}

/// `ours` (a line pgrepctl wrote: one role, `replication`, one network)
/// comes first and matches every connection `other` could match.
fn covers(ours: &Record, other: &Record, role: &str) -> bool {
    let type_ok = match ours.conn_type {
        ConnType::Host => other.conn_type != ConnType::Local,
        t => other.conn_type == t,
    };
    let db_ok =
        !other.databases.is_empty() && other.databases.iter().all(|t| t.is_keyword("replication"));
    let plain_role = |t: &Token| {
        t.text == role
            && (t.quoted
                || (!KEYWORDS.contains(&t.text.as_str()) && !t.text.starts_with(['+', '@', '/'])))
    };
    let user_ok = !other.users.is_empty() && other.users.iter().all(plain_role);
    let addr_ok = match (&ours.address, &other.address) {
        (Some(Address::Cidr(mine)), Some(Address::Cidr(theirs))) => {
            net_relation(mine, theirs) == Match::Yes
        }
        _ => false,
    };
    type_ok && db_ok && user_ok && addr_ok
}

/// The replication connection a standby will make.
#[derive(Debug, Clone)]
pub struct ReplConn {
    pub role: String,
    pub addr: IpNet,
    pub ssl: bool,
}

#[derive(Debug, Clone, Default)]
pub struct MatchContext {
    /// Roles the replication role is a member of, directly or not (`+group`).
    pub role_memberships: Vec<String>,
    /// Tokens of `@file` references, keyed as written after `@`.
    pub at_files: HashMap<String, Vec<Token>>,
    /// This host's interface networks (`samehost`, `samenet`).
    pub local_nets: Vec<IpNet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Yes,
    Maybe,
    No,
}

fn all3(ms: impl IntoIterator<Item = Match>) -> Match {
    let mut out = Match::Yes;
    for m in ms {
        match m {
            Match::No => return Match::No,
            Match::Maybe => out = Match::Maybe,
            Match::Yes => {}
        }
    }
    out
}

fn any3(ms: impl IntoIterator<Item = Match>) -> Match {
    let mut out = Match::No;
    for m in ms {
        match m {
            Match::Yes => return Match::Yes,
            Match::Maybe => out = Match::Maybe,
            Match::No => {}
        }
    }
    out
}

/// `@file` expands to its tokens; unknown contents leave the answer open.
fn expand<'a>(tokens: &'a [Token], ctx: &'a MatchContext) -> Vec<Result<&'a Token, ()>> {
    let mut out = vec![];
    for t in tokens {
        match t.text.strip_prefix('@') {
            Some(name) if !t.quoted => match ctx.at_files.get(name) {
                Some(toks) => out.extend(toks.iter().map(Ok)),
                None => out.push(Err(())),
            },
            _ => out.push(Ok(t)),
        }
    }
    out
}

/// For a physical replication connection only the keyword `replication`
/// matches the database column (hba.c's check_db): `all`, `sameuser`,
/// regular expressions and names do not.
fn db_matches(tokens: &[Token], ctx: &MatchContext) -> Match {
    any3(expand(tokens, ctx).into_iter().map(|t| match t {
        Ok(t) if t.is_keyword("replication") => Match::Yes,
        Ok(_) => Match::No,
        Err(()) => Match::Maybe,
    }))
}

fn user_matches(tokens: &[Token], role: &str, ctx: &MatchContext) -> Match {
    any3(expand(tokens, ctx).into_iter().map(|t| match t {
        Err(()) => Match::Maybe,
        Ok(t) if t.is_keyword("all") => Match::Yes,
        Ok(t) if !t.quoted && t.text.starts_with('+') => {
            let group = &t.text[1..];
            if group == role || ctx.role_memberships.iter().any(|g| g == group) {
                Match::Yes
            } else {
                Match::No
            }
        }
        Ok(t) if !t.quoted && t.text.starts_with('/') => Match::Maybe,
        Ok(t) => {
            if t.text == role {
                Match::Yes
            } else {
                Match::No
            }
        }
    }))
}

fn net_relation(outer: &IpNet, inner: &IpNet) -> Match {
    let same_family = matches!(
        (outer, inner),
        (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
    );
    if !same_family {
        Match::No
    } else if outer.contains(inner) {
        Match::Yes
    } else if inner.contains(outer) {
        Match::Maybe
    } else {
        Match::No
    }
}

fn address_matches(addr: &Address, conn: &IpNet, ctx: &MatchContext) -> Match {
    match addr {
        Address::All => Match::Yes,
        Address::Cidr(net) => net_relation(net, conn),
        Address::SameNet => any3(
            ctx.local_nets
                .iter()
                .map(|n| net_relation(&n.trunc(), conn)),
        ),
        Address::SameHost => any3(ctx.local_nets.iter().map(|n| {
            let host = IpNet::from(n.addr());
            match net_relation(&host, conn) {
                Match::Yes if conn.prefix_len() == conn.max_prefix_len() => Match::Yes,
                Match::No => Match::No,
                _ => Match::Maybe,
            }
        })),
        Address::Hostname(_) => Match::Maybe,
    }
}

/// Would this record decide the standby's connection?
pub fn record_matches(rec: &Record, conn: &ReplConn, ctx: &MatchContext) -> Match {
    let type_ok = match rec.conn_type {
        ConnType::Local | ConnType::HostGssEnc => Match::No,
        ConnType::Host | ConnType::HostNoGssEnc => Match::Yes,
        ConnType::HostSsl => {
            if conn.ssl {
                Match::Yes
            } else {
                Match::No
            }
        }
        ConnType::HostNoSsl => {
            if conn.ssl {
                Match::No
            } else {
                Match::Yes
            }
        }
    };
    let addr = rec
        .address
        .as_ref()
        .map(|a| address_matches(a, &conn.addr, ctx))
        .unwrap_or(Match::No);
    all3([
        type_ok,
        db_matches(&rec.databases, ctx),
        user_matches(&rec.users, &conn.role, ctx),
        addr,
    ])
}

#[derive(Debug, Clone)]
pub enum HbaDecision {
    AlreadyAllowed { line: usize },
    InsertBefore { line: usize, shadowing: Record },
    Append,
}

/// The first record that matches (or might) decides; ours must come first
/// unless that record already lets the standby in with `method`.
pub fn decide(file: &HbaFile, conn: &ReplConn, method: &str, ctx: &MatchContext) -> HbaDecision {
    first_deciding(file, method, |rec| record_matches(rec, conn, ctx))
}

fn first_deciding(file: &HbaFile, method: &str, matches: impl Fn(&Record) -> Match) -> HbaDecision {
    for rec in &file.records {
        match matches(rec) {
            Match::No => continue,
            Match::Yes if rec.method == method && method != "reject" => {
                return HbaDecision::AlreadyAllowed { line: rec.line };
            }
            _ => {
                return HbaDecision::InsertBefore {
                    line: rec.line,
                    shadowing: rec.clone(),
                };
            }
        }
    }
    HbaDecision::Append
}

/// A normal (non-replication) connection, such as a monitoring role's to
/// the `postgres` database.
#[derive(Debug, Clone)]
pub struct DbConn {
    pub database: String,
    pub role: String,
    pub addr: IpNet,
}

/// The database column for a normal connection (hba.c's check_db): `all`,
/// `sameuser`, `samerole`, a name; never the `replication` keyword.
fn db_matches_name(tokens: &[Token], conn: &DbConn, ctx: &MatchContext) -> Match {
    any3(expand(tokens, ctx).into_iter().map(|t| match t {
        Err(()) => Match::Maybe,
        Ok(t) if t.is_keyword("all") => Match::Yes,
        Ok(t) if t.is_keyword("sameuser") => {
            if conn.database == conn.role {
                Match::Yes
            } else {
                Match::No
            }
        }
        Ok(t) if t.is_keyword("samerole") || t.is_keyword("samegroup") => {
            if conn.database == conn.role || ctx.role_memberships.contains(&conn.database) {
                Match::Yes
            } else {
                Match::No
            }
        }
        Ok(t) if t.is_keyword("replication") => Match::No,
        Ok(t) if !t.quoted && t.text.starts_with('/') => Match::Maybe,
        Ok(t) => {
            if t.text == conn.database {
                Match::Yes
            } else {
                Match::No
            }
        }
    }))
}

/// Would this record decide a normal connection without SSL?
pub fn record_matches_db(rec: &Record, conn: &DbConn, ctx: &MatchContext) -> Match {
    let type_ok = match rec.conn_type {
        ConnType::Local | ConnType::HostGssEnc | ConnType::HostSsl => Match::No,
        ConnType::Host | ConnType::HostNoGssEnc | ConnType::HostNoSsl => Match::Yes,
    };
    let addr = rec
        .address
        .as_ref()
        .map(|a| address_matches(a, &conn.addr, ctx))
        .unwrap_or(Match::No);
    all3([
        type_ok,
        db_matches_name(&rec.databases, conn, ctx),
        user_matches(&rec.users, &conn.role, ctx),
        addr,
    ])
}

/// [`decide`] for a normal connection.
pub fn decide_db(file: &HbaFile, conn: &DbConn, method: &str, ctx: &MatchContext) -> HbaDecision {
    first_deciding(file, method, |rec| record_matches_db(rec, conn, ctx))
}

/// The line pgrepctl writes for a normal connection.
pub fn format_db_record(conn: &DbConn, method: &str) -> String {
    format_line(
        "host",
        &quote_token(&conn.database),
        &conn.role,
        &conn.addr,
        method,
    )
}

/// Make sure each connection in `conns` is let in with `method`, inserting
/// a line before whatever would decide it first. Returns the notes for a
/// report (empty: nothing to do).
pub fn ensure_db_lines(
    file: &mut HbaFile,
    conns: &[DbConn],
    method: &str,
    ctx: &MatchContext,
) -> Vec<String> {
    let mut notes = vec![];
    for conn in conns {
        let line = format_db_record(conn, method);
        let shown = line
            .split('#')
            .next()
            .unwrap_or(&line)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        match decide_db(file, conn, method, ctx) {
            HbaDecision::AlreadyAllowed { .. } => {}
            HbaDecision::InsertBefore { line: at, .. } => {
                file.insert_before(Some(at), &line);
                notes.push(format!(
                    "{shown} inserted before line {at}, which would otherwise decide this connection"
                ));
            }
            HbaDecision::Append => {
                file.insert_before(None, &line);
                notes.push(format!("{shown} appended"));
            }
        }
    }
    notes
}

const KEYWORDS: &[&str] = &[
    "all",
    "sameuser",
    "samerole",
    "samegroup",
    "replication",
    "samehost",
    "samenet",
];

/// A role or database name as one hba token that reads back as exactly
/// that name, never as a keyword, group, file or regular expression.
pub fn quote_token(s: &str) -> String {
    let plain = !s.is_empty()
        && !KEYWORDS.contains(&s)
        && !s.starts_with(['+', '@', '/'])
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, ',' | '#' | '"' | '\\'));
    if plain {
        s.to_string()
    } else {
        // Inside quotes hba.c reads `""` as one literal `"`.
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// The line pgrepctl writes, in the stock sample's columns.
pub fn format_record(conn: &ReplConn, method: &str) -> String {
    let kind = if conn.ssl { "hostssl" } else { "host" };
    format_line(kind, "replication", &conn.role, &conn.addr, method)
}

fn format_line(kind: &str, database: &str, role: &str, addr: &IpNet, method: &str) -> String {
    let pad = |s: &str, w: usize| {
        if s.len() >= w {
            format!("{s} ")
        } else {
            format!("{s:<w$}")
        }
    };
    format!(
        "{}{}{}{}{method}  # pgrepctl",
        pad(kind, 8),
        pad(database, 16),
        pad(&quote_token(role), 16),
        pad(&addr.to_string(), 24)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
