//! The four ways a [`Report`] is shown: text for a person (80 columns),
//! the JSON object, one Nagios status line with perfdata, and Prometheus
//! text exposition. Pure functions from a report to a string.

use super::{Report, Role, Status};

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

fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width - 1).collect();
        t.push('~');
        t
    }
}

/// Word-wrap `text` to 80 columns, the first line after `first`, the rest
/// indented by `first`'s width.
fn wrap(first: &str, text: &str) -> String {
    let indent = " ".repeat(first.chars().count());
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if !empty && len + 1 + word.chars().count() > 80 {
            out.push_str(line.trim_end());
            out.push('\n');
            line = indent.clone();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

fn yes_no(b: Option<bool>, yes: &str, no: &str) -> String {
    match b {
        Some(true) => yes.into(),
        Some(false) => no.into(),
        None => "-".into(),
    }
}

pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let count = |s: Status| r.problems.iter().filter(|p| p.status == s).count();
    let mut counts = vec![];
    for (s, word) in [
        (Status::Critical, "critical"),
        (Status::Warning, "warning"),
        (Status::Unknown, "unknown"),
    ] {
        let n = count(s);
        if n > 0 {
            counts.push(format!("{n} {word}"));
        }
    }
    out.push_str(&format!("{}: {}", r.command, r.status.as_str()));
    if !counts.is_empty() {
        out.push_str(&format!(" ({})", counts.join(", ")));
    }
    if r.changed {
        out.push_str(" [changed]");
    }
    out.push('\n');

    out.push_str(&format!(
        "{:<20} {:<8} {:<9} {}\n",
        "NODE", "ROLE", "STATUS", "DETAIL"
    ));
    for n in &r.nodes {
        let role = match n.role {
            Role::Primary => "primary",
            Role::Standby => "standby",
        };
        let detail = if let Some(e) = &n.error {
            e.code.clone()
        } else {
            let mut d = n
                .server_version_num
                .map(|v| format!("PostgreSQL {}", crate::pg::version_string(v)))
                .unwrap_or_default();
            if n.in_recovery == Some(true) && n.role == Role::Primary {
                d.push_str(", in recovery");
            }
            if n.in_recovery == Some(false) && n.role == Role::Standby {
                d.push_str(", not in recovery");
            }
            if let Some(rc) = &n.wal_receiver {
                match (rc.status.as_deref(), &n.upstream) {
                    (Some("streaming"), Some(up)) => d.push_str(&format!(", streaming from {up}")),
                    (status, _) => {
                        d.push_str(&format!(", receiver {}", status.unwrap_or("not running")))
                    }
                }
            }
            if let Some(rp) = &n.replay {
                if rp.paused == Some(true) {
                    d.push_str(", replay paused");
                }
            }
            d
        };
        out.push_str(&format!(
            "{:<20} {:<8} {:<9} {}\n",
            cut(&n.name, 20),
            role,
            n.status.as_str(),
            cut(&detail, 40)
        ));
    }

    if let Some(pairs) = r.pairs.as_ref().filter(|p| !p.is_empty()) {
        out.push_str(&format!(
            "{:<20} {:<10} {:<9} {:>9} {:>9}  {}\n",
            "STANDBY", "STATE", "SYNC", "LAG", "LAG TIME", "STATUS"
        ));
        for p in pairs {
            let state = match (&p.state, p.streaming) {
                (Some(s), _) => s.clone(),
                (None, Some(true)) => "streaming".into(),
                (None, Some(false)) => "stopped".into(),
                (None, None) => "-".into(),
            };
            out.push_str(&format!(
                "{:<20} {:<10} {:<9} {:>9} {:>9}  {}\n",
                cut(&p.standby, 20),
                cut(&state, 10),
                cut(p.sync_state.as_deref().unwrap_or("-"), 9),
                p.lag_bytes.map(human_bytes).unwrap_or_else(|| "-".into()),
                p.lag_seconds
                    .map(human_seconds)
                    .unwrap_or_else(|| "-".into()),
                p.status.as_str()
            ));
        }
    }

    if let Some(slots) = r.slots.as_ref().filter(|s| !s.is_empty()) {
        out.push_str(&format!(
            "{:<20} {:<9} {:<6} {:>9}  {:<10} {}\n",
            "SLOT", "TYPE", "ACTIVE", "RETAINED", "WAL", "STATUS"
        ));
        for s in slots {
            out.push_str(&format!(
                "{:<20} {:<9} {:<6} {:>9}  {:<10} {}\n",
                cut(&s.name, 20),
                cut(&s.slot_type, 9),
                if s.active { "yes" } else { "no" },
                s.retained_bytes
                    .map(human_bytes)
                    .unwrap_or_else(|| "-".into()),
                cut(s.wal_status.as_deref().unwrap_or("-"), 10),
                s.status.as_str()
            ));
        }
    }

    if let Some(probes) = r.probes.as_ref().filter(|p| !p.is_empty()) {
        out.push_str(&format!(
            "{:<20} {:<9} {:<6} {:<8} {:>10}  {}\n",
            "STANDBY", "REPLAYED", "TOKEN", "WRITE", "LATENCY", "STATUS"
        ));
        for p in probes {
            out.push_str(&format!(
                "{:<20} {:<9} {:<6} {:<8} {:>10}  {}\n",
                cut(&p.standby, 20),
                if p.replayed { "yes" } else { "no" },
                if p.token_visible { "read" } else { "-" },
                yes_no(p.write_refused, "refused", "ACCEPTED"),
                p.latency_ms
                    .map(|ms| format!("{ms:.1}ms"))
                    .unwrap_or_else(|| "-".into()),
                p.status.as_str()
            ));
        }
    }

    for p in &r.problems {
        out.push_str(&wrap(
            &format!("{:<9} ", p.status.as_str()),
            &format!("{}: {}", p.subject, p.message),
        ));
        if let Some(h) = &p.hint {
            out.push_str(&wrap("          hint: ", h));
        }
    }
    for w in &r.warnings {
        out.push_str(&wrap("warning: ", w));
    }
    out
}

/// A perfdata label: letters, digits, `_`, `-` and `.` only.
fn perf_label(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn perf_num(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// `PGREPCTL CRITICAL - s1: … | lag_bytes_s1=0B;16777216;268435456;0 …`
pub fn nagios(r: &Report) -> String {
    let summary = if r.problems.is_empty() {
        if let Some(probes) = &r.probes {
            let max = probes
                .iter()
                .filter_map(|p| p.latency_ms)
                .fold(0.0_f64, f64::max);
            format!(
                "{} standby(s) replayed the probe, max latency {:.1}ms",
                probes.len(),
                max
            )
        } else {
            let pairs = r.pairs.as_deref().unwrap_or_default();
            let streaming = pairs
                .iter()
                .filter(|p| p.streaming == Some(true) || p.state.as_deref() == Some("streaming"))
                .count();
            let max_b = pairs.iter().filter_map(|p| p.lag_bytes).max().unwrap_or(0);
            let max_s = pairs
                .iter()
                .filter_map(|p| p.lag_seconds)
                .fold(0.0_f64, f64::max);
            format!(
                "{streaming} standby(s) streaming, max lag {} / {}",
                human_bytes(max_b),
                human_seconds(max_s)
            )
        }
    } else {
        let mut parts: Vec<String> = r
            .problems
            .iter()
            .take(3)
            .map(|p| format!("{}: {}", p.subject, p.message))
            .collect();
        if r.problems.len() > 3 {
            parts.push(format!("and {} more", r.problems.len() - 3));
        }
        parts.join("; ")
    };
    let summary = summary.replace(['|', '\n'], " ");
    let mut perf = vec![];
    let t = r.thresholds;
    // Every pair's lag, `U` (undetermined, per the plugin guidelines) when
    // unknown, so a graph shows a gap rather than losing the series.
    for p in r.pairs.iter().flatten() {
        let l = perf_label(&p.standby);
        let (wb, cb, ws, cs) = match t {
            Some(t) => (
                t.warn_bytes.to_string(),
                t.crit_bytes.to_string(),
                perf_num(t.warn_seconds),
                perf_num(t.crit_seconds),
            ),
            None => Default::default(),
        };
        let bytes = p.lag_bytes.map_or("U".into(), |b| format!("{b}B"));
        perf.push(format!("lag_bytes_{l}={bytes};{wb};{cb};0"));
        let secs = p
            .lag_seconds
            .map_or("U".into(), |s| format!("{}s", perf_num(s)));
        perf.push(format!("lag_seconds_{l}={secs};{ws};{cs};0"));
    }
    for s in r.slots.iter().flatten() {
        if let Some(b) = s.retained_bytes {
            perf.push(format!("slot_retained_{}={b}B;;;0", perf_label(&s.name)));
        }
    }
    for p in r.probes.iter().flatten() {
        if let Some(ms) = p.latency_ms {
            perf.push(format!(
                "latency_{}={}ms;;;0",
                perf_label(&p.standby),
                perf_num(ms)
            ));
        }
    }
    let mut line = format!("PGREPCTL {} - {summary}", r.status.as_str());
    if !perf.is_empty() {
        line.push_str(" | ");
        line.push_str(&perf.join(" "));
    }
    line.push('\n');
    line
}

fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Family {
    name: &'static str,
    help: &'static str,
    samples: Vec<(String, String)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            samples: vec![],
        }
    }
    fn add(&mut self, labels: &[(&str, &str)], value: String) {
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label_value(v)))
            .collect();
        let l = if l.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", l.join(","))
        };
        self.samples.push((l, value));
    }
}

fn prom_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Prometheus text exposition format, version 0.0.4.
pub fn prometheus(r: &Report) -> String {
    let mut up = Family::new(
        "pgrepctl_up",
        "Whether the node answered and could be inspected (1) or not (0).",
    );
    let mut in_recovery = Family::new(
        "pgrepctl_in_recovery",
        "Whether the node is in recovery (a standby).",
    );
    let mut lag_bytes = Family::new(
        "pgrepctl_replication_lag_bytes",
        "WAL bytes the standby has not replayed yet.",
    );
    let mut lag_seconds = Family::new(
        "pgrepctl_replication_lag_seconds",
        "Replication lag in time, in seconds.",
    );
    let mut streaming = Family::new(
        "pgrepctl_wal_receiver_streaming",
        "Whether the standby's WAL receiver is streaming (1) or not (0).",
    );
    let mut slot_bytes = Family::new(
        "pgrepctl_slot_retained_bytes",
        "WAL bytes a replication slot keeps on the primary.",
    );
    let mut slot_active = Family::new(
        "pgrepctl_slot_active",
        "Whether the replication slot is in use (1) or not (0).",
    );
    let mut probe_ok = Family::new(
        "pgrepctl_smoke_test_success",
        "Whether the smoke test passed on the standby (1) or not (0).",
    );
    let mut probe_latency = Family::new(
        "pgrepctl_smoke_test_latency_seconds",
        "Time from the probe's commit on the primary to its replay on the standby.",
    );
    let mut status = Family::new(
        "pgrepctl_check_status",
        "Overall status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    );
    for n in &r.nodes {
        let role = match n.role {
            Role::Primary => "primary",
            Role::Standby => "standby",
        };
        let labels = [("node", n.name.as_str()), ("role", role)];
        up.add(&labels, if n.error.is_none() { "1" } else { "0" }.into());
        if let Some(rec) = n.in_recovery {
            in_recovery.add(&labels, if rec { "1" } else { "0" }.into());
        }
    }
    for p in r.pairs.iter().flatten() {
        let labels = [("standby", p.standby.as_str())];
        // NaN: the lag is unknown (the series stays, the value is no number).
        lag_bytes.add(&labels, p.lag_bytes.map_or("NaN".into(), |b| b.to_string()));
        lag_seconds.add(&labels, p.lag_seconds.map_or("NaN".into(), prom_num));
        if let Some(s) = p.streaming {
            streaming.add(&labels, if s { "1" } else { "0" }.into());
        }
    }
    for s in r.slots.iter().flatten() {
        let labels = [
            ("slot", s.name.as_str()),
            ("slot_type", s.slot_type.as_str()),
        ];
        if let Some(b) = s.retained_bytes {
            slot_bytes.add(&labels, b.to_string());
        }
        slot_active.add(&labels, if s.active { "1" } else { "0" }.into());
    }
    for p in r.probes.iter().flatten() {
        let labels = [("standby", p.standby.as_str())];
        probe_ok.add(
            &labels,
            if p.status == Status::Ok { "1" } else { "0" }.into(),
        );
        if let Some(ms) = p.latency_ms {
            probe_latency.add(&labels, prom_num(ms / 1000.0));
        }
    }
    status.add(&[("command", r.command)], r.status.exit_code().to_string());
    let mut out = String::new();
    for f in [
        up,
        in_recovery,
        lag_bytes,
        lag_seconds,
        streaming,
        slot_bytes,
        slot_active,
        probe_ok,
        probe_latency,
        status,
    ] {
        if f.samples.is_empty() {
            continue;
        }
        out.push_str(&format!("# HELP {} {}\n", f.name, f.help));
        out.push_str(&format!("# TYPE {} gauge\n", f.name));
        for (l, v) in f.samples {
            out.push_str(&format!("{}{l} {v}\n", f.name));
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{Node, Pair, Slot, Thresholds};

    fn sample() -> Report {
        let mut r = Report::new("check");
        r.thresholds = Some(Thresholds::default());
        r.nodes.push(Node {
            name: "primary".into(),
            role: Role::Primary,
            target: "host=/tmp port=5432 user=postgres".into(),
            status: Status::Ok,
            server_version_num: Some(150004),
            in_recovery: Some(false),
            wal_lsn: Some("0/3000000".into()),
            upstream: None,
            wal_receiver: None,
            replay: None,
            error: None,
        });
        r.pairs = Some(vec![Pair {
            standby: "s\"1 x".into(),
            upstream: Some("primary".into()),
            application_name: Some("s1".into()),
            client_addr: None,
            state: Some("streaming".into()),
            sync_state: Some("async".into()),
            sent_lsn: None,
            write_lsn: None,
            flush_lsn: None,
            replay_lsn: None,
            lag_bytes: Some(0),
            lag_seconds: Some(0.25),
            streaming: Some(true),
            status: Status::Ok,
        }]);
        r.slots = Some(vec![Slot {
            name: "old".into(),
            slot_type: "physical".into(),
            active: false,
            restart_lsn: Some("0/1000000".into()),
            retained_bytes: Some(2048),
            wal_status: None,
            status: Status::Warning,
        }]);
        r.problem(
            Status::Warning,
            "old",
            "SLOT_INACTIVE",
            "inactive slot retains 2.0kB of WAL",
            Some("drop it".into()),
        );
        r.finish()
    }

    #[test]
    fn nagios_line() {
        let s = nagios(&sample());
        assert_eq!(s.lines().count(), 1);
        assert!(
            s.starts_with("PGREPCTL WARNING - old: inactive slot retains 2.0kB of WAL | "),
            "{s}"
        );
        assert!(s.contains("lag_bytes_s_1_x=0B;16777216;268435456;0"), "{s}");
        assert!(s.contains("lag_seconds_s_1_x=0.25s;30;300;0"), "{s}");
        assert!(s.contains("slot_retained_old=2048B;;;0"), "{s}");
    }

    #[test]
    fn unknown_lag_is_shown_as_unknown() {
        let mut r = sample();
        let p = &mut r.pairs.as_mut().unwrap()[0];
        (p.lag_bytes, p.lag_seconds, p.streaming) = (None, None, Some(false));
        let s = nagios(&r);
        assert!(s.contains("lag_bytes_s_1_x=U;16777216;268435456;0"), "{s}");
        assert!(s.contains("lag_seconds_s_1_x=U;30;300;0"), "{s}");
        let s = prometheus(&r);
        assert!(
            s.contains("pgrepctl_replication_lag_bytes{standby=\"s\\\"1 x\"} NaN\n"),
            "{s}"
        );
        assert!(
            s.contains("pgrepctl_replication_lag_seconds{standby=\"s\\\"1 x\"} NaN\n"),
            "{s}"
        );
        let s = text(&r);
        assert!(!s.contains(" 0B "), "{s}");
    }

    #[test]
    fn prometheus_text() {
        let s = prometheus(&sample());
        assert!(s.contains(
            "# TYPE pgrepctl_up gauge\npgrepctl_up{node=\"primary\",role=\"primary\"} 1\n"
        ));
        assert!(
            s.contains("pgrepctl_replication_lag_bytes{standby=\"s\\\"1 x\"} 0\n"),
            "{s}"
        );
        assert!(s.contains("pgrepctl_replication_lag_seconds{standby=\"s\\\"1 x\"} 0.25\n"));
        assert!(
            s.contains("pgrepctl_slot_retained_bytes{slot=\"old\",slot_type=\"physical\"} 2048\n")
        );
        assert!(s.contains("pgrepctl_check_status{command=\"check\"} 1\n"));
        for line in s.lines() {
            assert!(
                line.starts_with("# ") || line.starts_with("pgrepctl_"),
                "{line}"
            );
        }
    }

    #[test]
    fn text_fits_80_columns() {
        let mut r = sample();
        r.problems[0].message = "word ".repeat(60);
        r.problems[0].hint = Some("hint ".repeat(40));
        let s = text(&r);
        for line in s.lines() {
            assert!(line.chars().count() <= 80, "{line:?}");
        }
        assert!(s.starts_with("check: WARNING (1 warning)\n"), "{s}");
    }

    #[test]
    fn sizes_and_times() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1536), "1.5kB");
        assert_eq!(human_bytes(16 << 20), "16.0MB");
        assert_eq!(human_seconds(0.0042), "4ms");
        assert_eq!(human_seconds(400.0), "6.7min");
    }
}
