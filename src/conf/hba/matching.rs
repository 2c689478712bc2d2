//! Which record decides a connection, answered the way hba.c's
//! check_hba walks the file: the first record whose type, database, user
//! and address all match. What cannot be known from the file alone (a
//! hostname, an unread `@file`, a regular expression) is `Maybe`.

use super::edit::KEYWORDS;
use super::{Address, ConnType, HbaFile, Record, Token};
use ipnet::IpNet;
use std::collections::HashMap;

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

/// Three-valued AND: No if any is No, else Maybe if any is Maybe.
pub(super) fn all3(ms: impl IntoIterator<Item = Match>) -> Match {
    combine3(ms, Match::No, Match::Yes)
}

/// Three-valued OR: Yes if any is Yes, else Maybe if any is Maybe.
pub(super) fn any3(ms: impl IntoIterator<Item = Match>) -> Match {
    combine3(ms, Match::Yes, Match::No)
}

/// `decisive` as soon as one is; otherwise Maybe if one is, else `neutral`.
fn combine3(ms: impl IntoIterator<Item = Match>, decisive: Match, neutral: Match) -> Match {
    let mut out = neutral;
    for m in ms {
        if m == decisive {
            return decisive;
        }
        if m == Match::Maybe {
            out = Match::Maybe;
        }
    }
    out
}

/// `@file` expands to its tokens; unknown contents leave the answer open.
pub(super) fn expand<'a>(tokens: &'a [Token], ctx: &'a MatchContext) -> Vec<Result<&'a Token, ()>> {
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
pub(super) fn db_matches(tokens: &[Token], ctx: &MatchContext) -> Match {
    any3(expand(tokens, ctx).into_iter().map(|t| match t {
        Ok(t) if t.is_keyword("replication") => Match::Yes,
        Ok(_) => Match::No,
        Err(()) => Match::Maybe,
    }))
}

pub(super) fn user_matches(tokens: &[Token], role: &str, ctx: &MatchContext) -> Match {
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
        Ok(t) => yes_if(t.text == role),
    }))
}

pub(super) fn net_relation(outer: &IpNet, inner: &IpNet) -> Match {
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

pub(super) fn address_matches(addr: &Address, conn: &IpNet, ctx: &MatchContext) -> Match {
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
        ConnType::HostSsl => yes_if(conn.ssl),
        ConnType::HostNoSsl => yes_if(!conn.ssl),
    };
    let db = db_matches(&rec.databases, ctx);
    all3([
        type_ok,
        db,
        user_and_address(rec, &conn.role, &conn.addr, ctx),
    ])
}

/// Would this record decide a replication connection over the Unix
/// socket as `role`?
pub fn local_record_matches(rec: &Record, role: &str, ctx: &MatchContext) -> Match {
    if rec.conn_type != ConnType::Local {
        return Match::No;
    }
    all3([
        db_matches(&rec.databases, ctx),
        user_matches(&rec.users, role, ctx),
    ])
}

fn yes_if(b: bool) -> Match {
    if b { Match::Yes } else { Match::No }
}

/// The user and address columns, the same for every kind of connection.
fn user_and_address(rec: &Record, role: &str, addr: &IpNet, ctx: &MatchContext) -> Match {
    let address = rec
        .address
        .as_ref()
        .map(|a| address_matches(a, addr, ctx))
        .unwrap_or(Match::No);
    all3([user_matches(&rec.users, role, ctx), address])
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

pub(super) fn first_deciding(
    file: &HbaFile,
    method: &str,
    matches: impl Fn(&Record) -> Match,
) -> HbaDecision {
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
pub(super) fn db_matches_name(tokens: &[Token], conn: &DbConn, ctx: &MatchContext) -> Match {
    any3(expand(tokens, ctx).into_iter().map(|t| match t {
        Err(()) => Match::Maybe,
        Ok(t) if t.is_keyword("all") => Match::Yes,
        Ok(t) if t.is_keyword("sameuser") => yes_if(conn.database == conn.role),
        Ok(t) if t.is_keyword("samerole") || t.is_keyword("samegroup") => {
            yes_if(conn.database == conn.role || ctx.role_memberships.contains(&conn.database))
        }
        Ok(t) if t.is_keyword("replication") => Match::No,
        Ok(t) if !t.quoted && t.text.starts_with('/') => Match::Maybe,
        Ok(t) => yes_if(t.text == conn.database),
    }))
}

/// Would this record decide a normal connection without SSL?
pub fn record_matches_db(rec: &Record, conn: &DbConn, ctx: &MatchContext) -> Match {
    let type_ok = match rec.conn_type {
        ConnType::Local | ConnType::HostGssEnc | ConnType::HostSsl => Match::No,
        ConnType::Host | ConnType::HostNoGssEnc | ConnType::HostNoSsl => Match::Yes,
    };
    let db = db_matches_name(&rec.databases, conn, ctx);
    all3([
        type_ok,
        db,
        user_and_address(rec, &conn.role, &conn.addr, ctx),
    ])
}

/// [`decide`] for a normal connection.
pub fn decide_db(file: &HbaFile, conn: &DbConn, method: &str, ctx: &MatchContext) -> HbaDecision {
    first_deciding(file, method, |rec| record_matches_db(rec, conn, ctx))
}

/// `ours` (a line pgrepctl wrote: one role, `replication`, one network)
/// comes first and matches every connection `other` could match.
pub(super) fn covers(ours: &Record, other: &Record, role: &str) -> bool {
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
