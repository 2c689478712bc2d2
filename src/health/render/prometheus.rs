//! Prometheus text exposition (version 0.0.4): one family per measure
//! (gauges, and the archiver's counters), for node_exporter's textfile
//! collector.

use super::role_word;
use crate::health::{Report, Status};

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

/// The families, in the order they are printed, each with its HELP text.
const FAMILIES: [(&str, &str); 20] = [
    (
        "pgrepctl_up",
        "Whether the node answered and could be inspected (1) or not (0).",
    ),
    (
        "pgrepctl_in_recovery",
        "Whether the node is in recovery (a standby).",
    ),
    (
        "pgrepctl_read_only",
        "Whether the primary refuses writes (1: default_transaction_read_only on in its configuration) or not (0).",
    ),
    (
        "pgrepctl_timeline",
        "The timeline the node writes (a primary) or has reached (a standby).",
    ),
    (
        "pgrepctl_replication_lag_bytes",
        "WAL bytes the standby has not replayed yet.",
    ),
    (
        "pgrepctl_replication_lag_seconds",
        "Replication lag in time, in seconds.",
    ),
    (
        "pgrepctl_wal_receiver_streaming",
        "Whether the standby's WAL receiver is streaming (1) or not (0).",
    ),
    (
        "pgrepctl_wal_source",
        "Where the standby takes WAL from now: 1 for its source (streaming, archive or none: neither streams nor restores), 0 for the others.",
    ),
    (
        "pgrepctl_replication_ssl",
        "Whether the standby's replication connection is encrypted (1) or not (0), from pg_stat_ssl; NaN when unknown.",
    ),
    (
        "pgrepctl_slot_retained_bytes",
        "WAL bytes a replication slot keeps on the primary.",
    ),
    (
        "pgrepctl_slot_active",
        "Whether the replication slot is in use (1) or not (0).",
    ),
    (
        "pgrepctl_archive_archived_total",
        "WAL files the primary's archiver archived (pg_stat_archiver.archived_count, since the statistics were reset).",
    ),
    (
        "pgrepctl_archive_failed_total",
        "Failed archive attempts the primary counted (pg_stat_archiver.failed_count; not a command that exits above 125 or dies by a signal).",
    ),
    (
        "pgrepctl_archive_ready",
        "WAL segments waiting to be archived (.ready files in pg_wal/archive_status); NaN when hidden from the role.",
    ),
    (
        "pgrepctl_archive_last_archived_age_seconds",
        "Seconds since the primary last archived a WAL file; NaN when nothing was archived since the statistics were reset.",
    ),
    (
        "pgrepctl_archive_probe_success",
        "Whether the segment check --archive-probe closed was archived within --timeout (1) or not (0).",
    ),
    (
        "pgrepctl_server_certificate_expiry_seconds",
        "Seconds until the node's server certificate (ssl_cert_file) expires, negative once expired; NaN when the role may not read it.",
    ),
    (
        "pgrepctl_smoke_test_success",
        "Whether the smoke test passed on the standby (1) or not (0).",
    ),
    (
        "pgrepctl_smoke_test_latency_seconds",
        "Time from the probe's commit on the primary to its replay on the standby.",
    ),
    (
        "pgrepctl_check_status",
        "Overall status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    ),
];

/// The index of a family in [`FAMILIES`].
#[derive(Clone, Copy)]
enum F {
    Up,
    InRecovery,
    ReadOnly,
    Timeline,
    LagBytes,
    LagSeconds,
    Streaming,
    WalSource,
    Ssl,
    SlotBytes,
    SlotActive,
    ArchivedTotal,
    FailedTotal,
    ArchiveReady,
    ArchiveAge,
    ArchiveProbe,
    CertExpiry,
    ProbeOk,
    ProbeLatency,
    CheckStatus,
}

fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.into()
}

/// Prometheus text exposition format, version 0.0.4.
pub fn prometheus(r: &Report) -> String {
    let mut fams: Vec<Family> = FAMILIES
        .iter()
        .map(|(name, help)| Family::new(name, help))
        .collect();
    let mut add =
        |f: F, labels: &[(&str, &str)], value: String| fams[f as usize].add(labels, value);
    nodes(r, &mut add);
    pairs(r, &mut add);
    for s in r.slots.iter().flatten() {
        let labels = [
            ("slot", s.name.as_str()),
            ("slot_type", s.slot_type.as_str()),
        ];
        if let Some(b) = s.retained_bytes {
            add(F::SlotBytes, &labels, b.to_string());
        }
        add(F::SlotActive, &labels, flag(s.active));
    }
    archive(r, &mut add);
    for c in r.certificates.iter().flatten() {
        add(
            F::CertExpiry,
            &[("node", c.node.as_str())],
            c.expires_in_seconds.map_or("NaN".into(), |s| s.to_string()),
        );
    }
    for p in r.probes.iter().flatten() {
        let labels = [("standby", p.standby.as_str())];
        add(F::ProbeOk, &labels, flag(p.status == Status::Ok));
        if let Some(ms) = p.latency_ms {
            add(F::ProbeLatency, &labels, prom_num(ms / 1000.0));
        }
    }
    add(
        F::CheckStatus,
        &[("command", r.command)],
        r.status.exit_code().to_string(),
    );
    exposition(&fams)
}

/// Adds one sample to a family.
type Add<'a> = dyn FnMut(F, &[(&str, &str)], String) + 'a;

fn nodes(r: &Report, add: &mut Add) {
    for n in &r.nodes {
        let labels = [("node", n.name.as_str()), ("role", role_word(n.role))];
        add(F::Up, &labels, flag(n.error.is_none()));
        if let Some(rec) = n.in_recovery {
            add(F::InRecovery, &labels, flag(rec));
        }
        if let Some(ro) = n.read_only {
            add(F::ReadOnly, &labels, flag(ro));
        }
        if let Some(t) = n.timeline {
            add(F::Timeline, &labels, t.to_string());
        }
        // One series per possible source, 1 on the current one, so an
        // alert is `pgrepctl_wal_source{source="archive"} == 1` and a
        // change of source is a change of value, not a vanished series.
        if let Some(now) = n.wal_source.as_deref() {
            for source in ["streaming", "archive", "none"] {
                let l = [("node", n.name.as_str()), ("source", source)];
                add(F::WalSource, &l, flag(source == now));
            }
        }
    }
}

fn pairs(r: &Report, add: &mut Add) {
    for p in r.pairs.iter().flatten() {
        let labels = [("standby", p.standby.as_str())];
        // NaN: the lag is unknown (the series stays, the value is no number).
        add(
            F::LagBytes,
            &labels,
            p.lag_bytes.map_or("NaN".into(), |b| b.to_string()),
        );
        add(
            F::LagSeconds,
            &labels,
            p.lag_seconds.map_or("NaN".into(), prom_num),
        );
        if let Some(s) = p.streaming {
            add(F::Streaming, &labels, flag(s));
        }
        add(F::Ssl, &labels, p.ssl.map_or("NaN".into(), flag));
    }
}

fn archive(r: &Report, add: &mut Add) {
    let Some(a) = &r.archive else { return };
    let labels = [("node", a.node.as_str())];
    add(F::ArchivedTotal, &labels, a.archived_count.to_string());
    add(F::FailedTotal, &labels, a.failed_count.to_string());
    add(
        F::ArchiveReady,
        &labels,
        a.ready_count.map_or("NaN".into(), |n| n.to_string()),
    );
    add(
        F::ArchiveAge,
        &labels,
        a.last_archived_age_seconds.map_or("NaN".into(), prom_num),
    );
    if let Some(p) = &a.probe {
        add(F::ArchiveProbe, &labels, flag(p.archived));
    }
}

/// The families that have samples, each with its HELP and TYPE lines.
fn exposition(fams: &[Family]) -> String {
    let mut out = String::new();
    for f in fams.iter().filter(|f| !f.samples.is_empty()) {
        out.push_str(&format!("# HELP {} {}\n", f.name, f.help));
        // Counters end in _total (Prometheus naming); the rest are gauges.
        let kind = if f.name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        out.push_str(&format!("# TYPE {} {kind}\n", f.name));
        for (l, v) in &f.samples {
            out.push_str(&format!("{}{l} {v}\n", f.name));
        }
    }
    out
}
