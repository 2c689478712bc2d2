//! Rendering, in one place: what a command did (or would do) as text for a
//! person, or as the one JSON object scripts and Ansible read. Commands
//! compute an [`Outcome`]; they never print results themselves.

use crate::error::Error;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Sql,
    Service,
}

/// One change, as reported: applied, or planned under `--dry-run`.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// What a mutating command reports. `changed` is derived, never set by hand,
/// so it cannot disagree with `changes`.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub command: &'static str,
    pub ok: bool,
    /// Kept equal to `!changes.is_empty()` by the methods below.
    changed: bool,
    pub dry_run: bool,
    changes: Vec<Change>,
    pub restart_required: bool,
    pub warnings: Vec<String>,
    /// Command-specific facts (restart command, standby LSNs, …).
    #[serde(flatten)]
    pub details: serde_json::Map<String, serde_json::Value>,
    /// Free text for a person, printed after the changes in text mode only.
    #[serde(skip)]
    pub epilogue: Option<String>,
}

impl Outcome {
    pub fn new(command: &'static str, dry_run: bool) -> Self {
        Outcome {
            command,
            ok: true,
            changed: false,
            dry_run,
            changes: vec![],
            restart_required: false,
            warnings: vec![],
            details: Default::default(),
            epilogue: None,
        }
    }

    pub fn push(&mut self, change: Change) {
        self.changes.push(change);
        self.changed = true;
    }

    /// Only the first `n` changes stand (the rest were undone).
    pub fn keep_changes(&mut self, n: usize) {
        self.changes.truncate(n);
        self.changed = !self.changes.is_empty();
    }

    pub fn changed(&self) -> bool {
        self.changed
    }

    /// A failure after this outcome was reported into: its warnings, and
    /// whether something stayed changed.
    pub fn failure(&self, error: crate::error::Error) -> crate::error::Failure {
        crate::error::Failure {
            error,
            warnings: self.warnings.clone(),
            changed: self.changed,
        }
    }

    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    pub fn detail(&mut self, key: &str, value: impl Serialize) {
        self.details.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or_default(),
        );
    }
}

#[derive(Serialize)]
struct Failure<'a> {
    command: &'a str,
    ok: bool,
    changed: bool,
    error: &'a Error,
    warnings: &'a [String],
}

/// Output choices that hold for the whole run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Printer {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
    pub progress: bool,
}

impl Printer {
    /// A log line for a person watching; always stderr so stdout stays clean.
    pub fn info(&self, msg: impl AsRef<str>) {
        if !self.quiet && !self.json || self.verbose > 0 {
            eprintln!("{}", msg.as_ref());
        }
    }

    /// A warning that happens while working (not one gathered into the
    /// report): stderr even with -q, which promises warnings and errors.
    /// With --json it is left to the caller to put it into the JSON.
    pub fn warn(&self, msg: impl AsRef<str>) {
        if !self.json || self.verbose > 0 {
            let prefix = if crate::colour::stderr() {
                crate::colour::warning("warning:")
            } else {
                "warning:".to_string()
            };
            eprintln!("{prefix} {}", msg.as_ref());
        }
    }

    pub fn debug(&self, msg: impl AsRef<str>) {
        if self.verbose > 0 {
            eprintln!("{}", msg.as_ref());
        }
    }

    /// -v: each step as it is applied.
    pub fn step(&self, msg: impl AsRef<str>) {
        if self.verbose > 0 {
            eprintln!("{}", msg.as_ref());
        }
    }

    /// -vv: the text of each statement run; callers pass it with secrets
    /// already redacted (a password verifier is never shown).
    pub fn sql(&self, sql: impl AsRef<str>) {
        if self.verbose > 1 {
            eprintln!("SQL: {}", sql.as_ref());
        }
    }

    pub fn outcome(&self, o: &Outcome) {
        if self.json {
            print_json(o);
            return;
        }
        let mut out = String::new();
        let n = o.changes.len();
        let verb = if o.dry_run { "would make" } else { "made" };
        if n == 0 {
            out.push_str(&format!("{}: nothing to change\n", o.command));
        } else {
            out.push_str(&format!(
                "{}: {verb} {n} change{}{}\n",
                o.command,
                if n == 1 { "" } else { "s" },
                if o.dry_run {
                    " (dry run: nothing was changed)"
                } else {
                    ""
                }
            ));
        }
        for c in &o.changes {
            let kind = match c.kind {
                Kind::File => "file",
                Kind::Sql => "sql",
                Kind::Service => "service",
            };
            match &c.path {
                Some(p) => out.push_str(&format!("  {kind:<7} {}: {}\n", p.display(), c.summary)),
                None => out.push_str(&format!("  {kind:<7} {}\n", c.summary)),
            }
            if let (Some(d), false) = (&c.diff, self.quiet) {
                let colour = crate::colour::stdout();
                for line in d.lines() {
                    let line = if colour {
                        crate::colour::diff_line(line)
                    } else {
                        line.to_string()
                    };
                    out.push_str(&format!("          {line}\n"));
                }
            }
        }
        for w in &o.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        if o.restart_required {
            if let Some(cmd) = o.details.get("restart_command").and_then(|v| v.as_str()) {
                out.push_str(&format!(
                    "restart required: run `{cmd}` (or rerun with --restart=if-needed)\n"
                ));
            } else {
                out.push_str("restart required\n");
            }
        }
        if let Some(e) = &o.epilogue {
            out.push_str(e);
        }
        if self.quiet {
            // Quiet keeps only warnings and the restart note.
            out = out
                .lines()
                .filter(|l| l.starts_with("warning:") || l.starts_with("restart required"))
                .map(|l| format!("{l}\n"))
                .collect();
        }
        write_stdout(&out);
    }

    /// Failures: JSON on stdout with `--json`, and always one line (plus a
    /// HINT line) on stderr, so Ansible shows pgrepctl's own words.
    pub fn failure(&self, command: &str, err: &Error, warnings: &[String], changed: bool) {
        if self.json {
            print_json(&Failure {
                command,
                ok: false,
                changed,
                error: err,
                warnings,
            });
        }
        let colour = crate::colour::stderr();
        let paint = |f: fn(&str) -> String, s: &'static str| {
            if colour { f(s) } else { s.to_string() }
        };
        for w in warnings {
            eprintln!("{} {w}", paint(crate::colour::warning, "warning:"));
        }
        eprintln!("{} {}", paint(crate::colour::error, "error:"), err.message);
        if let Some(h) = &err.hint {
            eprintln!("HINT: {h}");
        }
    }
}

pub fn print_json(v: &impl Serialize) {
    let s = serde_json::to_string(v).unwrap_or_else(|e| {
        format!("{{\"ok\":false,\"error\":{{\"code\":\"INTERNAL\",\"message\":\"{e}\"}}}}")
    });
    write_stdout(&format!("{s}\n"));
}

/// A closed pipe (`pgrepctl check | head -1`) is not an error worth a panic.
pub fn write_stdout(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

/// A unified diff of one file, with paths a reader can apply with `patch`.
pub fn diff(path: &std::path::Path, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .header(
            &format!("{} (before)", path.display()),
            &format!("{} (after)", path.display()),
        )
        .to_string()
}
