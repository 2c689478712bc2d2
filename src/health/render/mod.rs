//! The four ways a [`Report`] is shown: text for a person (80 columns),
//! the JSON object, one Nagios status line with perfdata, and Prometheus
//! text exposition. Pure functions from a report to a string.

mod nagios;
mod prometheus;
#[cfg(test)]
mod tests;
mod text;

pub use nagios::nagios;
pub use prometheus::prometheus;
pub use text::text;

use super::{Report, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Tables for a person
    Text,
    /// One JSON object (same as --json)
    Json,
    /// One Nagios/Icinga status line with perfdata
    Nagios,
    /// Prometheus text exposition format (node_exporter textfile collector)
    Prometheus,
}

pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Text => text(report),
        Format::Json => json(report),
        Format::Nagios => nagios(report),
        Format::Prometheus => prometheus(report),
    }
}

/// What a monitoring command prints when it could not inspect anything
/// (bad conninfo, conflicting flags): UNKNOWN in the chosen format. Text
/// and JSON say it on stderr (JSON: the failure object) only.
pub fn unknown(command: &str, error: &crate::error::Error, format: Format) -> String {
    match format {
        Format::Nagios => format!(
            "PGREPCTL UNKNOWN - {}\n",
            error.message.replace(['|', '\n'], " ")
        ),
        Format::Prometheus => format!(
            "# HELP pgrepctl_check_status Overall status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n# TYPE pgrepctl_check_status gauge\npgrepctl_check_status{{command=\"{command}\"}} 3\n"
        ),
        Format::Text | Format::Json => String::new(),
    }
}

pub fn json(report: &Report) -> String {
    format!(
        "{}\n",
        serde_json::to_string(report).unwrap_or_else(|e| format!(
            "{{\"ok\":false,\"error\":{{\"code\":\"INTERNAL\",\"message\":\"{e}\"}}}}"
        ))
    )
}

/// Signed [`crate::units::human_bytes`]: a standby can be ahead of a
/// stale primary reading.
pub fn human_bytes(b: i64) -> String {
    let s = crate::units::human_bytes(b.unsigned_abs());
    if b < 0 { format!("-{s}") } else { s }
}

pub fn human_seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else if s < 120.0 {
        format!("{s:.1}s")
    } else if s < 7200.0 {
        format!("{:.1}min", s / 60.0)
    } else {
        format!("{:.1}h", s / 3600.0)
    }
}

/// The word a node's role is shown as.
fn role_word(role: Role) -> &'static str {
    match role {
        Role::Primary => "primary",
        Role::Standby => "standby",
    }
}
