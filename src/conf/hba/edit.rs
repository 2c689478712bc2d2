//! Changing the file: inserting pgrepctl's lines where they decide the
//! connection they are for, and formatting them in the sample's columns.

use super::matching::{DbConn, HbaDecision, MatchContext, ReplConn, covers, decide_db};
use super::parse::{logical_line, parse_with};
use super::{HbaFile, Record};
use ipnet::IpNet;

impl HbaFile {
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

pub(super) const KEYWORDS: &[&str] = &[
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

/// `hostnossl replication ROLE ADDR reject`: what init-master --ssl puts
/// before a standby's hostssl line, so a plaintext connection is refused.
pub fn format_reject_nossl(conn: &ReplConn) -> String {
    format_line("hostnossl", "replication", &conn.role, &conn.addr, "reject")
}

pub(super) fn format_line(
    kind: &str,
    database: &str,
    role: &str,
    addr: &IpNet,
    method: &str,
) -> String {
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
