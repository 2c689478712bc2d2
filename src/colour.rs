//! Colour for people at a terminal, and only there: a pipe, a file,
//! `NO_COLOR` (any non-empty value, see no-color.org) or `TERM=dumb` get
//! plain text, so scripts and monitoring never see escape codes.

use std::io::IsTerminal;

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const MAGENTA: &str = "\x1b[35m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Whether text written to stdout should be coloured.
pub fn stdout() -> bool {
    allowed() && std::io::stdout().is_terminal()
}

/// Whether text written to stderr should be coloured.
pub fn stderr() -> bool {
    allowed() && std::io::stderr().is_terminal()
}

fn allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

fn wrap(code: &str, text: &str) -> String {
    format!("{code}{text}{RESET}")
}

pub fn error(text: &str) -> String {
    wrap(&format!("{BOLD}{RED}"), text)
}

pub fn warning(text: &str) -> String {
    wrap(YELLOW, text)
}

/// The status words of a check or smoke-test report (OK, WARNING,
/// CRITICAL, UNKNOWN) wherever they stand alone; columns keep their width
/// because only the word itself is wrapped.
pub fn status_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let code = match word.trim_end_matches(':') {
            "OK" => Some(GREEN),
            "WARNING" => Some(YELLOW),
            "CRITICAL" => Some(RED),
            "UNKNOWN" => Some(MAGENTA),
            _ => None,
        };
        match code {
            Some(c) => out.push_str(&wrap(c, word)),
            None => out.push_str(word),
        }
        word.clear();
    };
    for ch in text.chars() {
        if ch.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(ch);
        } else {
            word.push(ch);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// A unified diff with removed lines red and added lines green.
pub fn diff_line(line: &str) -> String {
    if line.starts_with("+++") || line.starts_with("---") {
        wrap(BOLD, line)
    } else if line.starts_with('+') {
        wrap(GREEN, line)
    } else if line.starts_with('-') {
        wrap(RED, line)
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_standalone_status_words_are_coloured() {
        let s = status_words("check: OK\nnode1  OK        PostgreSQL 15, OKish\n");
        assert_eq!(
            s,
            "check: \x1b[32mOK\x1b[0m\nnode1  \x1b[32mOK\x1b[0m        PostgreSQL 15, OKish\n"
        );
        assert_eq!(status_words("a CRITICAL b"), "a \x1b[31mCRITICAL\x1b[0m b");
    }

    #[test]
    fn diff_lines() {
        assert_eq!(diff_line("+x"), "\x1b[32m+x\x1b[0m");
        assert_eq!(diff_line("-x"), "\x1b[31m-x\x1b[0m");
        assert_eq!(diff_line(" x"), " x");
        assert_eq!(diff_line("+++ a"), "\x1b[1m+++ a\x1b[0m");
    }
}
