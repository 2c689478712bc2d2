//! `postgresql.conf` (and included files, and `postgresql.auto.conf`):
//! lexed the way PostgreSQL's guc-file.l does it, edited in place. A value
//! is replaced inside its line, keeping the name as written, the separator
//! and any trailing comment; new settings go into one marked block.

use super::{ParseError, raw_lines};

pub const BLOCK_BEGIN: &str =
    "# BEGIN pgrepctl managed settings (pgrepctl init-master/clone-standby edit this block)";
pub const BLOCK_END: &str = "# END pgrepctl managed settings";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    Include,
    IncludeDir,
    IncludeIfExists,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Setting {
        line: usize,
        name: String,
        value: String,
    },
    Include {
        line: usize,
        kind: Directive,
        path: String,
    },
}

#[derive(Debug, Clone)]
struct Line {
    raw: String,
    item: Option<Item>,
}

#[derive(Debug, Clone)]
struct Item {
    name: String,
    value: String,
    /// Byte range of the value token (quotes included) within `raw`.
    span: (usize, usize),
}

#[derive(Debug, Clone)]
pub struct ConfFile {
    lines: Vec<Line>,
}

pub fn parse(text: &str) -> Result<ConfFile, ParseError> {
    let mut lines = vec![];
    for (i, raw) in raw_lines(text).into_iter().enumerate() {
        let item = parse_line(&raw).map_err(|message| ParseError {
            line: i + 1,
            message,
        })?;
        lines.push(Line { raw, item });
    }
    Ok(ConfFile { lines })
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\x0c' | '\n')
}

/// One line: blank, comment, or `name [=] value [# comment]`.
fn parse_line(raw: &str) -> Result<Option<Item>, String> {
    let b: Vec<(usize, char)> = raw.char_indices().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && is_space(b[*i].1) {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if i == b.len() || b[i].1 == '#' {
        return Ok(None);
    }
    let start = i;
    if !(b[i].1.is_ascii_alphabetic() || b[i].1 == '_' || !b[i].1.is_ascii()) {
        return Err(format!("syntax error near {:?}", &raw[b[i].0..].trim_end()));
    }
    while i < b.len() && (b[i].1.is_alphanumeric() || matches!(b[i].1, '_' | '$' | '.')) {
        i += 1;
    }
    let name = raw[b[start].0..pos(&b, i, raw)].to_string();
    skip_ws(&mut i);
    if i < b.len() && b[i].1 == '=' {
        i += 1;
        skip_ws(&mut i);
    }
    if i == b.len() || b[i].1 == '#' {
        return Err(format!("missing value for {name:?}"));
    }
    let vstart = pos(&b, i, raw);
    let value = if b[i].1 == '\'' {
        quoted(&b, &mut i).ok_or_else(|| format!("unterminated quoted string for {name:?}"))?
    } else {
        let s = i;
        while i < b.len() && !is_space(b[i].1) && !matches!(b[i].1, '#' | '\'' | '=') {
            i += 1;
        }
        if i == s {
            return Err(format!("syntax error in the value of {name:?}"));
        }
        raw[b[s].0..pos(&b, i, raw)].to_string()
    };
    let vend = pos(&b, i, raw);
    skip_ws(&mut i);
    if i < b.len() && b[i].1 != '#' {
        return Err(format!(
            "syntax error after the value of {name:?}: {:?}",
            raw[b[i].0..].trim_end()
        ));
    }
    Ok(Some(Item {
        name,
        value,
        span: (vstart, vend),
    }))
}

/// A quoted value from the opening quote at `*i` on, unquoted and
/// unescaped; `*i` moves past the closing quote. None: no closing quote
/// on the line.
fn quoted(b: &[(usize, char)], i: &mut usize) -> Option<String> {
    *i += 1;
    let mut v = String::new();
    loop {
        if *i >= b.len() || b[*i].1 == '\n' {
            return None;
        }
        match b[*i].1 {
            '\'' if *i + 1 < b.len() && b[*i + 1].1 == '\'' => {
                v.push('\'');
                *i += 2;
            }
            '\'' => {
                *i += 1;
                return Some(v);
            }
            '\\' if *i + 1 < b.len() => {
                let (consumed, ch) = unescape(&b[*i + 1..]);
                v.push(ch);
                *i += 1 + consumed;
            }
            c => {
                v.push(c);
                *i += 1;
            }
        }
    }
}

fn pos(b: &[(usize, char)], i: usize, raw: &str) -> usize {
    b.get(i).map(|x| x.0).unwrap_or(raw.len())
}

/// Backslash escapes inside a quoted value, as GUC_scanstr does.
fn unescape(rest: &[(usize, char)]) -> (usize, char) {
    match rest[0].1 {
        'b' => (1, '\x08'),
        'f' => (1, '\x0c'),
        'n' => (1, '\n'),
        'r' => (1, '\r'),
        't' => (1, '\t'),
        '0'..='7' => {
            let mut n = 0u32;
            let mut k = 0;
            while k < 3 && k < rest.len() && rest[k].1.is_digit(8) {
                n = n * 8 + rest[k].1.to_digit(8).unwrap_or(0);
                k += 1;
            }
            (k, char::from_u32(n).unwrap_or('?'))
        }
        c => (1, c),
    }
}

impl ConfFile {
    pub fn render(&self) -> String {
        self.lines.iter().map(|l| l.raw.as_str()).collect()
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                let it = l.item.as_ref()?;
                let kind = match it.name.to_ascii_lowercase().as_str() {
                    "include" => Some(Directive::Include),
                    "include_dir" => Some(Directive::IncludeDir),
                    "include_if_exists" => Some(Directive::IncludeIfExists),
                    _ => None,
                };
                Some(match kind {
                    Some(kind) => Entry::Include {
                        line: i + 1,
                        kind,
                        path: it.value.clone(),
                    },
                    None => Entry::Setting {
                        line: i + 1,
                        name: it.name.clone(),
                        value: it.value.clone(),
                    },
                })
            })
            .collect()
    }

    /// `(lower-cased name, value)` of the setting on a 1-based line.
    pub fn setting_at(&self, line: usize) -> Option<(String, String)> {
        let it = self.lines.get(line.checked_sub(1)?)?.item.as_ref()?;
        Some((it.name.to_ascii_lowercase(), it.value.clone()))
    }

    /// The line PostgreSQL uses for `name` within this file: the last one.
    pub fn last_active(&self, name: &str) -> Option<usize> {
        self.lines
            .iter()
            .enumerate()
            .rev()
            .find(|(_, l)| {
                l.item
                    .as_ref()
                    .is_some_and(|it| it.name.eq_ignore_ascii_case(name))
            })
            .map(|(i, _)| i + 1)
    }

    /// Replace the value token on `line` with `value` (already quoted as
    /// needed, see [`quote_value`]); everything else on the line stays.
    pub fn set_at(&mut self, line: usize, value: &str) -> Result<(), String> {
        let l = line
            .checked_sub(1)
            .and_then(|i| self.lines.get_mut(i))
            .ok_or_else(|| format!("no line {line}"))?;
        let it = l
            .item
            .as_ref()
            .ok_or_else(|| format!("line {line} is not a setting"))?;
        let (s, e) = it.span;
        let raw = format!("{}{}{}", &l.raw[..s], value, &l.raw[e..]);
        let item = parse_line(&raw)?.ok_or("edit produced an empty line")?;
        *l = Line {
            raw,
            item: Some(item),
        };
        Ok(())
    }

    /// Add `name = value` to the managed block at the end of the file
    /// (creating it), so additions are easy to find and never scattered.
    pub fn append_managed(&mut self, name: &str, value: &str) {
        let text = format!("{name} = {value}\n");
        let item = parse_line(&text).ok().flatten();
        let new = Line { raw: text, item };
        let begin = self
            .lines
            .iter()
            .position(|l| l.raw.trim_end() == BLOCK_BEGIN);
        let end = begin.and_then(|b| {
            self.lines[b..]
                .iter()
                .position(|l| l.raw.trim_end() == BLOCK_END)
                .map(|e| b + e)
        });
        if let Some(end) = end {
            self.lines.insert(end, new);
            return;
        }
        if let Some(last) = self.lines.last_mut() {
            if !last.raw.ends_with('\n') {
                last.raw.push('\n');
            }
            if !last.raw.trim().is_empty() {
                self.lines.push(Line {
                    raw: "\n".into(),
                    item: None,
                });
            }
        }
        self.lines.push(Line {
            raw: format!("{BLOCK_BEGIN}\n"),
            item: None,
        });
        self.lines.push(new);
        self.lines.push(Line {
            raw: format!("{BLOCK_END}\n"),
            item: None,
        });
    }
}

/// Bare when PostgreSQL reads it back identically (numbers with units,
/// simple words), else single-quoted with quotes doubled and backslashes
/// escaped.
pub fn quote_value(v: &str) -> String {
    let number = {
        let t = v.strip_prefix('-').unwrap_or(v);
        let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
            && digits.chars().next().is_some_and(|c| c.is_ascii_digit())
            && digits.matches('.').count() <= 1
    };
    let word = v
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if number || word {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "''"))
    }
}

/// A memory value in bytes: PostgreSQL's case-sensitive units (B, kB, MB,
/// GB, TB); a bare number counts in the setting's base unit.
pub fn parse_size(value: &str, base_unit_bytes: u64) -> Option<u64> {
    let v = value.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    if n < 0.0 {
        return Some(0);
    }
    let mult = match unit.trim() {
        "" => base_unit_bytes,
        "B" => 1,
        "kB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        _ => return None,
    };
    Some((n * mult as f64).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EDGE: &str = "# comment\n\n  wal_level = replica   # trailing\nmax_wal_senders 5\nwork_mem='4MB'\nsearch_path = '\"$user\", public'\nlog_line_prefix = 'it''s \\'x\\' %m '\nshared_buffers=128MB#tight\ncustom.opt = 'a'\ninclude 'extra.conf'\ninclude_dir = 'conf.d'\ninclude_if_exists 'maybe.conf'\n\t\t\r\nport = -1\nno_newline_at_end = on";

    #[test]
    fn round_trips_edge_cases_byte_for_byte() {
        for t in [EDGE, "", "\n", "a = 1\r\nb = 2\r\n", "x = 'y'"] {
            assert_eq!(parse(t).unwrap().render(), t);
        }
    }

    #[test]
    fn round_trips_the_stock_sample() {
        for major in 10..=18 {
            let p = format!("/usr/share/postgresql/{major}/postgresql.conf.sample");
            if let Ok(t) = std::fs::read_to_string(&p) {
                let f = parse(&t).unwrap();
                assert_eq!(f.render(), t, "{p}");
            }
        }
    }

    #[test]
    fn reads_values_like_postgresql() {
        let f = parse(EDGE).unwrap();
        let e = f.entries();
        assert!(e.contains(&Entry::Setting {
            line: 3,
            name: "wal_level".into(),
            value: "replica".into()
        }));
        assert!(e.contains(&Entry::Setting {
            line: 4,
            name: "max_wal_senders".into(),
            value: "5".into()
        }));
        assert!(e.contains(&Entry::Setting {
            line: 6,
            name: "search_path".into(),
            value: "\"$user\", public".into()
        }));
        assert!(e.contains(&Entry::Setting {
            line: 7,
            name: "log_line_prefix".into(),
            value: "it's 'x' %m ".into()
        }));
        assert!(e.contains(&Entry::Setting {
            line: 8,
            name: "shared_buffers".into(),
            value: "128MB".into()
        }));
        assert!(e.contains(&Entry::Include {
            line: 10,
            kind: Directive::Include,
            path: "extra.conf".into()
        }));
        assert!(e.contains(&Entry::Include {
            line: 11,
            kind: Directive::IncludeDir,
            path: "conf.d".into()
        }));
        assert!(e.contains(&Entry::Include {
            line: 12,
            kind: Directive::IncludeIfExists,
            path: "maybe.conf".into()
        }));
        assert_eq!(f.setting_at(14), Some(("port".into(), "-1".into())));
        assert_eq!(f.setting_at(1), None);
    }

    #[test]
    fn rejects_malformed_lines_with_their_number() {
        for (t, line) in [
            ("a = 1\nwal_level = = replica\n", 2),
            ("x = 'open\n", 1),
            ("= value\n", 1),
            ("a = 1 2\n", 1),
            ("ok = 1\n\nname\n", 3),
        ] {
            assert_eq!(parse(t).unwrap_err().line, line, "{t:?}");
        }
    }

    #[test]
    fn set_at_keeps_everything_but_the_value() {
        let mut f = parse(EDGE).unwrap();
        f.set_at(3, "logical").unwrap();
        f.set_at(4, "10").unwrap();
        f.set_at(8, "'1GB'").unwrap();
        let out = f.render();
        assert!(
            out.contains("\n  wal_level = logical   # trailing\n"),
            "{out}"
        );
        assert!(out.contains("\nmax_wal_senders 10\n"));
        assert!(out.contains("\nshared_buffers='1GB'#tight\n"));
        assert_eq!(out.lines().count(), EDGE.lines().count());
        assert!(f.set_at(1, "x").is_err());
    }

    #[test]
    fn last_occurrence_wins() {
        let f = parse("wal_level = minimal\n#wal_level = logical\nWAL_LEVEL = replica\n").unwrap();
        assert_eq!(f.last_active("wal_level"), Some(3));
        assert_eq!(f.last_active("max_wal_senders"), None);
    }

    #[test]
    fn managed_block_is_created_once_and_reused() {
        let mut f = parse("a = 1").unwrap();
        f.append_managed("wal_keep_size", "1GB");
        f.append_managed("hot_standby", "on");
        let out = f.render();
        assert_eq!(
            out,
            format!("a = 1\n\n{BLOCK_BEGIN}\nwal_keep_size = 1GB\nhot_standby = on\n{BLOCK_END}\n")
        );
        let mut again = parse(&out).unwrap();
        again.append_managed("listen_addresses", "'*'");
        assert_eq!(again.render().matches(BLOCK_BEGIN).count(), 1);
        assert_eq!(again.last_active("listen_addresses"), Some(6));
    }

    #[test]
    fn quoting_round_trips() {
        assert_eq!(quote_value("replica"), "replica");
        assert_eq!(quote_value("1GB"), "1GB");
        assert_eq!(quote_value("10"), "10");
        assert_eq!(quote_value("*"), "'*'");
        assert_eq!(quote_value("it's"), "'it''s'");
        assert_eq!(quote_value("a\\b"), "'a\\\\b'");
        assert_eq!(quote_value("localhost,10.0.0.1"), "'localhost,10.0.0.1'");
        for v in ["*", "it's", "a\\b", "x y", "replica", "1GB"] {
            let f = parse(&format!("k = {}\n", quote_value(v))).unwrap();
            assert_eq!(f.setting_at(1).unwrap().1, v);
        }
    }

    #[test]
    fn sizes_in_postgresql_units() {
        assert_eq!(parse_size("1GB", 1 << 20), Some(1 << 30));
        assert_eq!(parse_size("1024", 1 << 20), Some(1 << 30));
        assert_eq!(parse_size("512kB", 1), Some(512 << 10));
        assert_eq!(
            parse_size("1gb", 1),
            None,
            "units are case-sensitive in PostgreSQL"
        );
        assert_eq!(parse_size("10", 1), Some(10));
    }
}
