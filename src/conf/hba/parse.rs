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
