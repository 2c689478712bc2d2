//! Reading `pg_hba.conf` as hba.c tokenizes it, for a given server version.

use super::{Address, ConnType, HbaFile, Record, Token};
use crate::conf::{ParseError, raw_lines};
use ipnet::IpNet;
use std::net::IpAddr;

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
pub(super) fn logical_line(lines: &[String], mut i: usize, syntax: Syntax) -> (String, usize) {
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
        let at = Fields {
            fields: &fields,
            line: first + 1,
        };
        if let Some(r) = at.record()? {
            records.push(r);
        }
    }
    Ok(HbaFile {
        lines,
        records,
        syntax,
    })
}

/// The fields of the logical line starting on `line` (1-based).
struct Fields<'a> {
    fields: &'a [Vec<Token>],
    line: usize,
}

impl Fields<'_> {
    fn err(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            message: message.into(),
        }
    }

    /// Field `i` as a single token (no comma list).
    fn one(&self, i: usize) -> Result<Token, ParseError> {
        match self.fields[i].as_slice() {
            [t] => Ok(t.clone()),
            _ => Err(self.err("a list is not allowed in this field")),
        }
    }

    /// The record; None for an include directive (its file is read by
    /// the server, not here).
    fn record(&self) -> Result<Option<Record>, ParseError> {
        let fields = self.fields;
        let conn_type = match self.one(0)?.text.as_str() {
            "local" => ConnType::Local,
            "host" => ConnType::Host,
            "hostssl" => ConnType::HostSsl,
            "hostnossl" => ConnType::HostNoSsl,
            "hostgssenc" => ConnType::HostGssEnc,
            "hostnogssenc" => ConnType::HostNoGssEnc,
            "include" | "include_if_exists" | "include_dir" => return Ok(None),
            other => return Err(self.err(format!("invalid connection type {other:?}"))),
        };
        let need = if conn_type == ConnType::Local { 4 } else { 5 };
        if fields.len() < need {
            return Err(self.err("end-of-line before the authentication method"));
        }
        let (address, idx) = if conn_type == ConnType::Local {
            (None, 3)
        } else {
            let (a, idx) = self.address()?;
            (Some(a), idx)
        };
        if idx >= fields.len() {
            return Err(self.err("missing authentication method"));
        }
        let method = self.one(idx)?;
        let options = fields[idx + 1..]
            .iter()
            .map(|f| {
                f.iter()
                    .map(|t| t.text.clone())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        Ok(Some(Record {
            line: self.line,
            conn_type,
            databases: fields[1].clone(),
            users: fields[2].clone(),
            address,
            method: method.text,
            options,
        }))
    }

    /// The address field (and a separate netmask field), and the index of
    /// the field after them: the method's.
    fn address(&self) -> Result<(Address, usize), ParseError> {
        let a = self.one(3)?;
        let address = if a.is_keyword("all") {
            Address::All
        } else if a.is_keyword("samehost") {
            Address::SameHost
        } else if a.is_keyword("samenet") {
            Address::SameNet
        } else if a.text.contains('/') {
            Address::Cidr(
                a.text
                    .parse()
                    .map_err(|_| self.err(format!("invalid IP address/mask {:?}", a.text)))?,
            )
        } else if let Ok(ip) = a.text.parse::<IpAddr>() {
            // Two-field form: address, then mask.
            if self.fields.len() <= 4 {
                return Err(self.err("missing netmask"));
            }
            let mask = self.one(4)?;
            let mask: IpAddr = mask
                .text
                .parse()
                .map_err(|_| self.err(format!("invalid netmask {:?}", mask.text)))?;
            let prefix = ipnet::ip_mask_to_prefix(mask).map_err(|_| self.err("invalid netmask"))?;
            let net = IpNet::new(ip, prefix).map_err(|_| self.err("invalid netmask"))?;
            return Ok((Address::Cidr(net), 5));
        } else {
            Address::Hostname(a.text.clone())
        };
        Ok((address, 4))
    }
}
