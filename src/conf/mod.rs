//! Format-preserving editors for `postgresql.conf` and `pg_hba.conf`.
//! Pure: text in, text out, no I/O. Every line keeps its raw text, so
//! `parse(x).render() == x` byte-for-byte and untouched lines never move.

pub mod archive;
pub mod hba;
pub mod pgconf;
pub mod standby;

/// A line PostgreSQL would not accept, with its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Split keeping line endings, so joining the pieces gives the input back.
pub(crate) fn raw_lines(text: &str) -> Vec<String> {
    text.split_inclusive('\n').map(str::to_owned).collect()
}
