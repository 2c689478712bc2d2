//! `pg_hba.conf`: records tokenized as PostgreSQL's hba.c does (quoted
//! tokens are never keywords, comma lists, `+group`, `@file`, line
//! continuation), matched against the connection a standby will make, so
//! a new line can be placed before whatever would otherwise decide it.
//!
//! [`parse`] reads the file the way a given server version does,
//! [`matching`] answers "which record decides this connection", and
//! [`edit`] inserts pgrepctl's lines and formats them.

mod edit;
mod matching;
mod parse;
#[cfg(test)]
mod tests;

pub use edit::{
    ensure_db_lines, format_db_record, format_record, format_reject_nossl, quote_token,
};
pub use matching::{
    DbConn, HbaDecision, Match, MatchContext, ReplConn, decide, decide_db, local_record_matches,
    record_matches, record_matches_db,
};
pub use parse::{Syntax, has_line_continuation, parse, parse_with};

use ipnet::IpNet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnType {
    Local,
    Host,
    HostSsl,
    HostNoSsl,
    HostGssEnc,
    HostNoGssEnc,
}

impl ConnType {
    /// The keyword that starts the line in pg_hba.conf.
    pub fn keyword(self) -> &'static str {
        match self {
            ConnType::Local => "local",
            ConnType::Host => "host",
            ConnType::HostSsl => "hostssl",
            ConnType::HostNoSsl => "hostnossl",
            ConnType::HostGssEnc => "hostgssenc",
            ConnType::HostNoGssEnc => "hostnogssenc",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub quoted: bool,
}

impl Token {
    pub(crate) fn is_keyword(&self, kw: &str) -> bool {
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

    /// The raw text of the record starting on `line` (1-based), without
    /// its line ending, for messages.
    pub fn line_text(&self, line: usize) -> String {
        self.lines
            .get(line.wrapping_sub(1))
            .map(|l| l.trim_end_matches(['\n', '\r']).to_string())
            .unwrap_or_default()
    }
}
