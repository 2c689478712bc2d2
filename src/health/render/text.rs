//! The text a person reads: a status line, tables of nodes, pairs, slots
//! and probes in 80 columns, then each finding with its hint.

use super::{human_bytes, human_seconds, role_word};
use crate::health::{Archive, Certificate, Node, Pair, Probe, Report, Role, Slot, Status};

pub fn text(r: &Report) -> String {
    let mut out = status_line(r);
    if !r.nodes.is_empty() || r.migration.is_none() {
        out.push_str(&nodes(r));
    }
    if let Some(m) = &r.migration {
        out.push_str(&migration(m));
    }
    if let Some(pairs) = r.pairs.as_ref().filter(|p| !p.is_empty()) {
        out.push_str(&self::pairs(pairs));
    }
    if let Some(slots) = r.slots.as_ref().filter(|s| !s.is_empty()) {
        out.push_str(&self::slots(slots));
    }
    if let Some(probes) = r.probes.as_ref().filter(|p| !p.is_empty()) {
        out.push_str(&self::probes(probes));
    }
    if let Some(a) = &r.archive {
        out.push_str(&archive(a));
    }
    if let Some(c) = r.certificates.as_ref() {
        out.push_str(&certificates(c));
    }
    out.push_str(&findings(r));
    out
}

/// `migrate status`: the subscription, lag, and each table's state.
fn migration(m: &crate::health::Migration) -> String {
    if m.finished {
        return format!(
            "database {}: cut over to the target (its subscription, slot and publication are gone)\n",
            m.database
        );
    }
    let mut out = format!(
        "database {}: subscription {} ({}), slot {}",
        m.database,
        m.subscription,
        match m.subscription_enabled {
            Some(true) => "enabled",
            Some(false) => "disabled",
            None => "absent",
        },
        m.slot
    );
    if let Some(l) = m.lag_bytes {
        out.push_str(&format!(", lag {}", human_bytes(l)));
    }
    out.push('\n');
    if !m.tables.is_empty() {
        out.push_str(&format!("{:<48} {:<13} {:>10}\n", "TABLE", "STATE", "ROWS"));
        for t in &m.tables {
            out.push_str(&format!(
                "{:<48} {:<13} {:>10}\n",
                t.table,
                t.state,
                t.rows.map_or("-".to_string(), |r| r.to_string())
            ));
        }
    }
    out
}

/// `check: CRITICAL (1 critical, 2 warning) [changed]`
fn status_line(r: &Report) -> String {
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
    out
}

fn nodes(r: &Report) -> String {
    // TLI: the timeline, as pg_controldata and pg_waldump abbreviate it.
    let mut out = format!(
        "{:<20} {:<7} {:>3} {:<9} {}\n",
        "NODE", "ROLE", "TLI", "STATUS", "DETAIL"
    );
    for n in &r.nodes {
        out.push_str(&format!(
            "{:<20} {:<7} {:>3} {:<9} {}\n",
            cut(&n.name, 20),
            role_word(n.role),
            n.timeline.map_or("-".into(), |t| t.to_string()),
            n.status.as_str(),
            cut(&node_detail(n), 37)
        ));
    }
    out
}

/// The error code of a node that did not answer, else its version and
/// what is unusual or streaming.
fn node_detail(n: &Node) -> String {
    if let Some(e) = &n.error {
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
            match (rc.status.as_deref(), &n.upstream, n.wal_source.as_deref()) {
                (Some("streaming"), Some(up), _) => d.push_str(&format!(", streaming from {up}")),
                (_, _, Some("archive")) => d.push_str(", restoring from archive"),
                (status, _, _) => {
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
    }
}

/// What a link's encryption is: its TLS version (encrypted), plaintext
/// over TCP, a Unix socket (never encrypted), or unknown.
fn link_word(p: &Pair) -> String {
    match (p.ssl, &p.ssl_version, &p.client_addr) {
        (Some(true), Some(v), _) => v.clone(),
        (Some(true), None, _) => "encrypted".into(),
        (Some(false), _, Some(_)) => "plaintext".into(),
        (Some(false), _, None) => "socket".into(),
        (None, _, _) => "-".into(),
    }
}

/// Each link: LINK says how it travels (TLSv1.3: encrypted with that
/// protocol; plaintext; socket: a local Unix socket).
fn pairs(pairs: &[Pair]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<20} {:<10} {:<9} {:>9} {:>9} {:<9} {}\n",
        "STANDBY", "STATE", "SYNC", "LAG", "LAG TIME", "LINK", "STATUS"
    ));
    for p in pairs {
        let state = match (&p.state, p.streaming) {
            (Some(s), _) => s.clone(),
            (None, Some(true)) => "streaming".into(),
            (None, Some(false)) => "stopped".into(),
            (None, None) => "-".into(),
        };
        out.push_str(&format!(
            "{:<20} {:<10} {:<9} {:>9} {:>9} {:<9} {}\n",
            cut(&p.standby, 20),
            cut(&state, 10),
            cut(p.sync_state.as_deref().unwrap_or("-"), 9),
            p.lag_bytes.map(human_bytes).unwrap_or_else(|| "-".into()),
            p.lag_seconds
                .map(human_seconds)
                .unwrap_or_else(|| "-".into()),
            cut(&link_word(p), 9),
            p.status.as_str()
        ));
    }
    out
}

fn slots(slots: &[Slot]) -> String {
    let mut out = String::new();
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
    out
}

fn probes(probes: &[Probe]) -> String {
    let mut out = String::new();
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
    out
}

/// The primary's archiver: counts, `.ready` files, the last archived
/// segment's age, and the probe when it ran.
fn archive(a: &Archive) -> String {
    let mut out = format!(
        "{:<20} {:>9} {:>7} {:>7} {:>13}  {}\n",
        "ARCHIVER", "ARCHIVED", "FAILED", "READY", "LAST ARCHIVED", "STATUS"
    );
    out.push_str(&format!(
        "{:<20} {:>9} {:>7} {:>7} {:>13}  {}\n",
        cut(&a.node, 20),
        a.archived_count,
        a.failed_count,
        a.ready_count.map_or("unknown".into(), |n| n.to_string()),
        a.last_archived_age_seconds
            .map_or("never".into(), |s| format!("{} ago", human_seconds(s))),
        a.status.as_str()
    ));
    if let Some(p) = &a.probe {
        let seg = p.segment.as_deref().unwrap_or("-");
        let what = if p.archived {
            format!("archived in {}", human_seconds(p.waited_seconds))
        } else {
            "not archived".into()
        };
        out.push_str(&wrap(
            "probe: ",
            &format!("{seg} {what}, {}", p.status.as_str()),
        ));
    }
    out
}

/// The known server certificates: when each expires and how long is left
/// (an unknown one is said at -v only).
fn certificates(certs: &[Certificate]) -> String {
    let known: Vec<&Certificate> = certs.iter().filter(|c| c.not_after.is_some()).collect();
    if known.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "{:<20} {:<20} {:>9}  {:<9} {}\n",
        "CERTIFICATE", "EXPIRES", "DAYS LEFT", "SOURCE", "STATUS"
    );
    for c in known {
        out.push_str(&format!(
            "{:<20} {:<20} {:>9}  {:<9} {}\n",
            cut(&c.node, 20),
            c.not_after.as_deref().unwrap_or("-"),
            c.days_left.map_or("-".into(), |d| d.to_string()),
            c.source.as_deref().unwrap_or("-"),
            c.status.as_str()
        ));
    }
    out
}

/// Each finding, then each warning, wrapped to 80 columns.
fn findings(r: &Report) -> String {
    let mut out = String::new();
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
