//! pg_hba.conf: the replication lines (and the monitoring hosts' lines),
//! placed where hba.c would reach them first, with a warning for each
//! existing line they make unreachable.

use super::Plan;
use crate::commands::init_master::Settings;
use crate::commands::init_master::inspect::Facts;
use crate::conf::hba;
use crate::error::{Code, Error, Result};
use crate::plan::file::EditFile;

/// Returns whether pg_hba.conf changes.
pub fn plan_hba(settings: &Settings, facts: &Facts, plan: &mut Plan) -> Result<bool> {
    let monitor_conns = settings
        .monitor
        .as_ref()
        .map(|m| crate::commands::init_master::monitor::conns(&m.role, &m.from))
        .unwrap_or_default();
    if settings.allows.is_empty() && monitor_conns.is_empty() {
        plan.warnings.push(
            "no --allow given: pg_hba.conf is unchanged, so standbys connect only if an existing line lets them".into(),
        );
        return Ok(false);
    }
    let syntax = hba::Syntax::for_version(facts.version_num);
    let mut file = hba::parse_with(&facts.hba_text, syntax).map_err(|e| {
        Error::new(
            Code::ConfigParseError,
            format!("{}:{}: {}", facts.hba_file.display(), e.line, e.message),
        )
        .hint("fix that line first; pgrepctl changes nothing in a file it cannot read exactly")
    })?;
    let ctx = hba::MatchContext {
        role_memberships: facts.memberships.clone(),
        at_files: facts.at_files.clone(),
        local_nets: facts.local_nets.clone(),
    };
    let (mut notes, inserted) = replication_lines(settings, &mut file, &ctx);
    shadow_warnings(&file, &inserted, settings, facts, plan);
    if !monitor_conns.is_empty() {
        let monitor_ctx = hba::MatchContext {
            role_memberships: vec!["pg_monitor".into()],
            ..ctx.clone()
        };
        notes.extend(hba::ensure_db_lines(
            &mut file,
            &monitor_conns,
            &settings.method,
            &monitor_ctx,
        ));
    }
    let new = file.render();
    if new == facts.hba_text {
        return Ok(false);
    }
    plan.edit(EditFile::new(
        facts.hba_file.clone(),
        Some(facts.hba_text.clone()),
        new,
        notes.join("; "),
    ));
    Ok(true)
}

/// The replication line for each `--allow` address, where hba.c would
/// reach it before any line that decides otherwise: the notes for the
/// report, and the numbers of the lines inserted.
fn replication_lines(
    settings: &Settings,
    file: &mut hba::HbaFile,
    ctx: &hba::MatchContext,
) -> (Vec<String>, Vec<usize>) {
    let mut notes = vec![];
    let mut inserted = vec![];
    for net in &settings.allows {
        let conn = hba::ReplConn {
            role: settings.role.clone(),
            addr: *net,
            ssl: settings.ssl,
        };
        if settings.ssl {
            notes.extend(plaintext_reject(file, &conn, ctx, &mut inserted));
        }
        let line = hba::format_record(&conn, &settings.method);
        let shown = line
            .trim_end_matches("# pgrepctl")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        match hba::decide(file, &conn, &settings.method, ctx) {
            hba::HbaDecision::AlreadyAllowed { .. } => {}
            hba::HbaDecision::InsertBefore {
                line: at,
                shadowing,
            } => {
                track(&mut inserted, file, Some(at), &line);
                notes.push(format!(
                    "{shown} inserted before line {at} ({} {}), which would otherwise decide this connection",
                    shadowing.conn_type.keyword(),
                    shadowing.method
                ));
            }
            hba::HbaDecision::Append => {
                track(&mut inserted, file, None, &line);
                notes.push(format!("{shown} appended"));
            }
        }
    }
    (notes, inserted)
}

/// With --ssl: a `hostnossl replication ROLE ADDR reject` line where
/// hba.c would reach it first for a plaintext connection from the
/// standby, so that no later line lets a downgraded connection in. None
/// when the first line that decides such a connection already rejects it.
fn plaintext_reject(
    file: &mut hba::HbaFile,
    conn: &hba::ReplConn,
    ctx: &hba::MatchContext,
    inserted: &mut Vec<usize>,
) -> Option<String> {
    let plain = hba::ReplConn {
        ssl: false,
        ..conn.clone()
    };
    let records = file.records();
    let first = records
        .iter()
        .find(|r| hba::record_matches(r, &plain, ctx) != hba::Match::No);
    if let Some(r) = first {
        if r.method == "reject" && hba::record_matches(r, &plain, ctx) == hba::Match::Yes {
            return None;
        }
    }
    // Before the line that decides the plaintext connection, or before the
    // one that decides the TLS one (where the hostssl line goes), or last.
    // (No line has an empty method: every matching line is "in the way".)
    let tls_at = match hba::decide(file, conn, "", ctx) {
        hba::HbaDecision::InsertBefore { line, .. } => Some(line),
        _ => None,
    };
    let at = match (first.map(|r| r.line), tls_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let line = hba::format_reject_nossl(&plain);
    track(inserted, file, at, &line);
    Some(format!(
        "hostnossl replication {} {} reject {}: a standby that does not use TLS is refused",
        plain.role,
        plain.addr,
        match at {
            Some(l) => format!("inserted before line {l}"),
            None => "appended".to_string(),
        }
    ))
}

/// Insert a line, keeping the numbers of the lines inserted before it
/// true (they move down when this one goes above them).
fn track(inserted: &mut Vec<usize>, file: &mut hba::HbaFile, at: Option<usize>, line: &str) {
    let before = file.line_count();
    let new = file.insert_before(at, line);
    let added = file.line_count() - before;
    for l in inserted.iter_mut() {
        if *l >= new + 1 - added {
            *l += added;
        }
    }
    inserted.push(new);
}

/// An existing line that an inserted one now decides for every
/// connection it could match is dead weight at best, and a trap when
/// someone later edits it expecting an effect: say so, by its new number.
fn shadow_warnings(
    file: &hba::HbaFile,
    inserted: &[usize],
    settings: &Settings,
    facts: &Facts,
    plan: &mut Plan,
) {
    let mut seen = std::collections::BTreeSet::new();
    for &at in inserted {
        for r in file.shadowed_by(at, &settings.role) {
            if seen.insert(r.line) {
                plan.warnings.push(format!(
                    "{}:{}: \"{}\" can no longer be reached: the line pgrepctl writes at line {at} decides every connection it matches; remove it",
                    facts.hba_file.display(),
                    r.line,
                    file.line_text(r.line).trim()
                ));
            }
        }
    }
}
