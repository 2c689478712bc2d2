//! One Nagios/Icinga status line: the status, a summary, and perfdata
//! with the thresholds.

use super::{human_bytes, human_seconds};
use crate::health::{Archive, Report};

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
    let summary = summary(r).replace(['|', '\n'], " ");
    let perf = perfdata(r);
    let mut line = format!("PGREPCTL {} - {summary}", r.status.as_str());
    if !perf.is_empty() {
        line.push_str(" | ");
        line.push_str(&perf.join(" "));
    }
    line.push('\n');
    line
}

/// The first three findings, or when there are none what went well.
fn summary(r: &Report) -> String {
    if r.problems.is_empty() {
        if let Some(m) = r.migration.as_ref().filter(|m| m.finished) {
            format!(
                "migration of {}: finished (cut over to the target)",
                m.database
            )
        } else if let Some(m) = &r.migration {
            format!(
                "migration of {}: {} table(s) ready, lag {}",
                m.database,
                m.tables.len(),
                human_bytes(m.lag_bytes.unwrap_or(0))
            )
        } else if let Some(probes) = &r.probes {
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
            let mut s = format!(
                "{streaming} standby(s) streaming, max lag {} / {}",
                human_bytes(max_b),
                human_seconds(max_s)
            );
            if let Some(a) = &r.archive {
                let ready = a.ready_count.map_or("unknown".into(), |n| n.to_string());
                s.push_str(&format!(
                    ", archiver: {} archived, {ready} waiting",
                    a.archived_count
                ));
            }
            s
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
    }
}

/// The archiver's counters (`c`: a counter), `.ready` files with their
/// thresholds (`U` when hidden), and the last archived segment's age.
fn archive_perfdata(a: &Archive, perf: &mut Vec<String>) {
    perf.push(format!("archive_archived={}c;;;0", a.archived_count));
    perf.push(format!("archive_failed={}c;;;0", a.failed_count));
    let ready = a.ready_count.map_or("U".into(), |n| n.to_string());
    perf.push(format!(
        "archive_ready={ready};{};{};0",
        a.ready_warn, a.ready_crit
    ));
    let age = a
        .last_archived_age_seconds
        .map_or("U".into(), |s| format!("{}s", perf_num(s)));
    perf.push(format!("archive_last_archived_age={age};;;0"));
}

/// Each pair's lag with the thresholds and whether it is encrypted, each
/// slot's retained WAL, the archiver's counts, each server certificate's
/// days left, each probe's latency.
fn perfdata(r: &Report) -> Vec<String> {
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
        let ssl = p.ssl.map_or("U".into(), |s| u8::from(s).to_string());
        perf.push(format!("ssl_{l}={ssl};;;0;1"));
    }
    for s in r.slots.iter().flatten() {
        if let Some(b) = s.retained_bytes {
            perf.push(format!("slot_retained_{}={b}B;;;0", perf_label(&s.name)));
        }
    }
    if let Some(a) = &r.archive {
        archive_perfdata(a, &mut perf);
    }
    // Days left, alerting below the thresholds (Nagios range `N:`).
    for c in r.certificates.iter().flatten() {
        let days = c.days_left.map_or("U".into(), |d| d.to_string());
        perf.push(format!(
            "cert_days_{}={days};{}:;{}:",
            perf_label(&c.node),
            c.warn_days,
            c.crit_days
        ));
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
    perf
}
