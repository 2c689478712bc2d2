//! Pure: from settings and facts to the list of steps that bring the
//! primary to the goal state. No I/O, so every decision is unit-testable
//! without a server; an empty plan is exactly `changed: false`.

use super::Settings;
use super::apply::{Env, Reload, Restart};
use super::inspect::{Facts, FileSetting, RoleFacts};
use crate::conf::{hba, pgconf};
use crate::error::{Code, Error, Result};
use crate::pg::version::{Version, WalKeep};
use crate::pg::{scram, sql};
use crate::plan::file::EditFile;
use crate::plan::sql::{AlterSystem, CreateSlot, PASSWORD_HERE, Statement};
use crate::plan::wait::WaitFor;
use crate::plan::{self as engine, Action};
use crate::report::Change;
use crate::secret::Secret;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A value we set, to confirm after reload/restart.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub want: Want,
    pub postmaster: bool,
}

#[derive(Debug, Clone)]
pub enum Want {
    WalLevel,
    AtLeast(u64),
    On,
    Exactly(String),
}

/// The engine's steps for this primary, and what verification needs.
#[derive(Default)]
pub struct Plan {
    /// File edits first (they are checked by PostgreSQL's parser before
    /// anything else changes), then SQL, reload, restart, slots.
    pub steps: Vec<engine::Step<Env>>,
    pub warnings: Vec<String>,
    pub targets: Vec<Target>,
    /// A restart-only setting that the running server does not have yet.
    pub restart_required: bool,
    /// Whether the plan restarts the server (`--restart`).
    pub restart: bool,
    pub restart_command: String,
    /// How many of `steps` are file edits (at the front).
    edits: usize,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("changes", &self.changes())
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl Plan {
    /// A file edit: before every other step.
    pub fn edit(&mut self, e: EditFile) {
        self.steps.insert(self.edits, engine::Step::Do(Box::new(e)));
        self.edits += 1;
    }

    pub fn push(&mut self, a: impl Action<Env> + 'static) {
        self.steps.push(engine::Step::Do(Box::new(a)));
    }

    /// The engine's plan: the edits, PostgreSQL's verdict on them, the
    /// rest with a check of the live values after a reload and a restart.
    pub fn into_engine(self) -> engine::Plan<Env> {
        let mut steps = self.steps;
        if self.edits > 0 {
            steps.insert(
                self.edits,
                engine::Step::Do(Box::new(WaitFor::new(
                    "PostgreSQL reads the edited files without error",
                    super::apply::validate,
                ))),
            );
        }
        engine::Plan {
            steps,
            warnings: self.warnings,
            restart_required: self.restart_required && !self.restart,
        }
    }

    /// What `--dry-run` reports (the same list the real run reports).
    pub fn changes(&self) -> Vec<Change> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                engine::Step::Do(a) => a.describe(),
                engine::Step::Commit => None,
            })
            .collect()
    }
}

/// The pieces of a config value pgrepctl cares about, in comparable form.
fn wal_level_rank(v: &str) -> u8 {
    match v.trim().to_ascii_lowercase().as_str() {
        "minimal" => 0,
        "replica" | "archive" | "hot_standby" => 1,
        "logical" => 2,
        _ => 0,
    }
}

/// PostgreSQL booleans accept unique prefixes of on/off/true/false/yes/no.
fn is_on(v: &str) -> bool {
    let v = v.trim().to_ascii_lowercase();
    v == "1" || v == "on" || (!v.is_empty() && ("true".starts_with(&v) || "yes".starts_with(&v)))
}

fn satisfies(want: &Want, value: &str, base_unit: u64) -> bool {
    match want {
        Want::WalLevel => wal_level_rank(value) >= 1,
        Want::AtLeast(n) => pgconf::parse_size(value, base_unit).is_some_and(|v| v >= *n),
        Want::On => is_on(value),
        Want::Exactly(s) => value.trim() == s,
    }
}

/// Where the value that will count after a reload comes from.
enum Origin<'a> {
    File(&'a FileSetting),
    AutoConf(&'a FileSetting),
    CommandLine(String),
    Default,
}

struct Desired {
    name: &'static str,
    want: Want,
    /// Value written when the current one falls short.
    write: String,
    /// Base unit of a bare number, in the unit `Want::AtLeast` counts in.
    base_unit: u64,
}

fn desired(settings: &Settings, facts: &Facts) -> Vec<Desired> {
    let mut d = vec![
        Desired {
            name: "wal_level",
            want: Want::WalLevel,
            write: "replica".into(),
            base_unit: 1,
        },
        Desired {
            name: "max_wal_senders",
            want: Want::AtLeast(settings.max_wal_senders as u64),
            write: settings.max_wal_senders.to_string(),
            base_unit: 1,
        },
    ];
    if Version::of(facts.version_num).wal_keep() == WalKeep::Size {
        let mb = settings.wal_keep_bytes.div_ceil(1 << 20);
        d.push(Desired {
            name: "wal_keep_size",
            want: Want::AtLeast(mb << 20),
            write: crate::units::format_bytes(mb << 20),
            base_unit: 1 << 20,
        });
    } else {
        let segs = settings
            .wal_keep_bytes
            .div_ceil(facts.wal_segment_size.max(1));
        d.push(Desired {
            name: "wal_keep_segments",
            want: Want::AtLeast(segs),
            write: segs.to_string(),
            base_unit: 1,
        });
    }
    d.push(Desired {
        name: "hot_standby",
        want: Want::On,
        write: "on".into(),
        base_unit: 1,
    });
    if let Some(l) = &settings.listen {
        d.push(Desired {
            name: "listen_addresses",
            want: Want::Exactly(l.trim().to_string()),
            write: l.trim().to_string(),
            base_unit: 1,
        });
    }
    d
}

pub fn plan(settings: &Settings, facts: &Facts) -> Result<Plan> {
    let mut plan = Plan {
        restart_command: restart_command(settings, facts),
        ..Default::default()
    };
    let mut changed_config = false;

    if let Some((line, err)) = facts.hba_errors.first() {
        return Err(Error::new(
            Code::ConfigParseError,
            format!(
                "{}:{line}: PostgreSQL cannot read this line: {err}",
                facts.hba_file.display()
            ),
        )
        .hint(
            "fix or remove that line first; pgrepctl changes nothing while pg_hba.conf has errors",
        ));
    }
    for fs in &facts.file_settings {
        if let Some(err) = &fs.error {
            if !is_apply_notice(err) {
                return Err(Error::new(
                    Code::ConfigParseError,
                    format!("{}:{}: {err}", fs.sourcefile.display(), fs.sourceline),
                )
                .hint("fix that line first; pgrepctl changes nothing while the configuration has errors"));
            }
        }
    }

    // postgresql.conf and included files: parse each file we may touch.
    let mut parsed: BTreeMap<PathBuf, (String, pgconf::ConfFile, Vec<String>)> = BTreeMap::new();
    for (path, text) in &facts.files {
        let f = pgconf::parse(text).map_err(|e| {
            Error::new(
                Code::ConfigParseError,
                format!("{}:{}: {}", path.display(), e.line, e.message),
            )
            .hint("fix that line first; pgrepctl changes nothing in a file it cannot read exactly")
        })?;
        parsed.insert(path.clone(), (text.clone(), f, vec![]));
    }

    for d in desired(settings, facts) {
        let live = facts.live.get(d.name);
        let postmaster = live.is_some_and(|l| l.context == "postmaster");
        let origin = origin(d.name, facts);
        let current = match &origin {
            Origin::File(fs) | Origin::AutoConf(fs) => fs.setting.clone(),
            Origin::CommandLine(v) => v.clone(),
            Origin::Default => live.map(|l| l.setting.clone()).unwrap_or_default(),
        };
        plan.targets.push(Target {
            name: d.name.to_string(),
            want: d.want.clone(),
            postmaster,
        });
        let ok = satisfies(&d.want, &current, d.base_unit);
        if !ok {
            match origin {
                Origin::CommandLine(v) => {
                    return Err(Error::new(
                        Code::SetOnCommandLine,
                        format!("{} = {v} is set on the server's command line, which overrides every config file", d.name),
                    )
                    .hint(format!(
                        "remove -c {}=… from the server's start command (see postmaster.opts or the service unit) and rerun",
                        d.name
                    )));
                }
                Origin::AutoConf(fs) => {
                    plan.warnings.push(format!(
                        "{} is set by ALTER SYSTEM in {}, which overrides postgresql.conf: changing it there with ALTER SYSTEM",
                        d.name,
                        fs.sourcefile.display()
                    ));
                    plan.push(AlterSystem {
                        name: d.name.into(),
                        value: d.write.clone(),
                        old: current.clone(),
                    });
                    changed_config = true;
                }
                Origin::File(fs) => {
                    let (_, file, notes) = parsed.get_mut(&fs.sourcefile).ok_or_else(|| {
                        super::internal(format!("{} was not read", fs.sourcefile.display()))
                    })?;
                    match file.setting_at(fs.sourceline) {
                        Some((name, _)) if name.eq_ignore_ascii_case(d.name) => {}
                        _ => {
                            return Err(Error::new(
                                Code::ConfigParseError,
                                format!(
                                    "{}:{}: PostgreSQL reads {} from this line, but the file there says otherwise",
                                    fs.sourcefile.display(),
                                    fs.sourceline,
                                    d.name
                                ),
                            )
                            .hint("the file changed since the server last read it: reload the server (SELECT pg_reload_conf()) and rerun"));
                        }
                    }
                    file.set_at(fs.sourceline, &pgconf::quote_value(&d.write))
                        .map_err(super::internal)?;
                    notes.push(format!(
                        "{}: {} -> {} (line {})",
                        d.name, current, d.write, fs.sourceline
                    ));
                    changed_config = true;
                }
                Origin::Default => {
                    let (_, file, notes) = parsed
                        .get_mut(&facts.config_file)
                        .ok_or_else(|| super::internal("config_file was not read"))?;
                    file.append_managed(d.name, &pgconf::quote_value(&d.write));
                    notes.push(format!("{}: {} (default) -> {}", d.name, current, d.write));
                    changed_config = true;
                }
            }
        }
        let live_ok = live.is_some_and(|l| satisfies(&d.want, &l.setting, d.base_unit));
        if postmaster && !live_ok {
            plan.restart_required = true;
        }
    }

    for (path, (old, file, notes)) in parsed {
        if notes.is_empty() {
            continue;
        }
        let new = file.render();
        if new != old {
            plan.edit(EditFile::new(path, Some(old), new, notes.join("; ")));
        }
    }

    listen_warning(settings, facts, &mut plan);
    if plan_hba(settings, facts, &mut plan)? {
        changed_config = true;
    }
    plan_role(settings, facts, &mut plan)?;
    if let Some(m) = &settings.monitor {
        if super::monitor::plan(facts, m, &mut plan)? {
            changed_config = true;
        }
    }

    if changed_config {
        plan.push(Reload);
    }
    let restart = match settings.restart {
        super::RestartPolicy::Never => false,
        super::RestartPolicy::IfNeeded => plan.restart_required,
        super::RestartPolicy::Always => true,
    };
    plan.restart = restart;
    if restart {
        plan.push(Restart);
    }
    // Slots last: PostgreSQL refuses one while the running server has
    // wal_level minimal, so it must come after the restart that raises it.
    plan_slots(settings, facts, restart, &mut plan)?;
    Ok(plan)
}

/// pg_file_settings marks restart-only values that differ from the running
/// ones with this note; it is not a syntax problem. The server writes it
/// untranslated (guc-file.l: `pstrdup("setting could not be applied")`),
/// so it is one fixed value whatever lc_messages says.
pub fn is_apply_notice(err: &str) -> bool {
    err == "setting could not be applied"
}

fn origin<'a>(name: &str, facts: &'a Facts) -> Origin<'a> {
    if let Some(live) = facts.live.get(name) {
        if live.source == "command line" || live.source == "environment variable" {
            return Origin::CommandLine(live.setting.clone());
        }
    }
    let last = facts
        .file_settings
        .iter()
        .filter(|f| f.name == name)
        .max_by_key(|f| f.seqno);
    match last {
        Some(fs) if fs.sourcefile == facts.auto_conf => Origin::AutoConf(fs),
        Some(fs) => Origin::File(fs),
        None => Origin::Default,
    }
}

fn restart_command(settings: &Settings, facts: &Facts) -> String {
    if let Some((ver, cluster)) = &facts.debian_cluster {
        return format!("pg_ctlcluster {ver} {cluster} restart");
    }
    let bindir = settings
        .bindir
        .as_ref()
        .or(facts.server_bindir.as_ref())
        .map(|b| format!("{}/", b.display()))
        .unwrap_or_default();
    format!(
        "{bindir}pg_ctl restart -D {} -m fast",
        facts.data_directory.display()
    )
}

fn listen_warning(settings: &Settings, facts: &Facts, plan: &mut Plan) {
    let listen = match &settings.listen {
        Some(l) => l.clone(),
        None => facts
            .live
            .get("listen_addresses")
            .map(|l| l.setting.clone())
            .unwrap_or_default(),
    };
    let local_only = listen.split(',').map(str::trim).all(|a| {
        a.is_empty()
            || a == "localhost"
            || a.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    let remote: Vec<String> = settings
        .allows
        .iter()
        .filter(|n| !n.addr().is_loopback())
        .map(|n| n.to_string())
        .collect();
    if local_only && !remote.is_empty() {
        plan.warnings.push(format!(
            "listen_addresses is '{listen}', so standbys at {} cannot connect; rerun with --listen '*' (or --listen 'localhost,<this server's address>') and --restart=if-needed",
            remote.join(", ")
        ));
    }
}

/// Returns whether pg_hba.conf changes.
fn plan_hba(settings: &Settings, facts: &Facts, plan: &mut Plan) -> Result<bool> {
    let monitor_conns = settings
        .monitor
        .as_ref()
        .map(|m| super::monitor::conns(&m.role, &m.from))
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
    let mut notes = vec![];
    let mut inserted = vec![];
    for net in &settings.allows {
        let conn = hba::ReplConn {
            role: settings.role.clone(),
            addr: *net,
            ssl: settings.ssl,
        };
        let line = hba::format_record(&conn, &settings.method);
        let shown = line
            .trim_end_matches("# pgrepctl")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        match hba::decide(&file, &conn, &settings.method, &ctx) {
            hba::HbaDecision::AlreadyAllowed { .. } => {}
            hba::HbaDecision::InsertBefore {
                line: at,
                shadowing,
            } => {
                track(&mut inserted, &mut file, Some(at), &line);
                notes.push(format!(
                    "{shown} inserted before line {at} ({} {}), which would otherwise decide this connection",
                    hba_type(&shadowing),
                    shadowing.method
                ));
            }
            hba::HbaDecision::Append => {
                track(&mut inserted, &mut file, None, &line);
                notes.push(format!("{shown} appended"));
            }
        }
    }
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

fn hba_type(r: &hba::Record) -> &'static str {
    match r.conn_type {
        hba::ConnType::Local => "local",
        hba::ConnType::Host => "host",
        hba::ConnType::HostSsl => "hostssl",
        hba::ConnType::HostNoSsl => "hostnossl",
        hba::ConnType::HostGssEnc => "hostgssenc",
        hba::ConnType::HostNoGssEnc => "hostnogssenc",
    }
}

fn plan_role(settings: &Settings, facts: &Facts, plan: &mut Plan) -> Result<()> {
    let name = sql::ident(&settings.role);
    let pw = &settings.password;
    match &facts.role {
        None => {
            let Some(pw) = pw else {
                return Err(Error::new(
                    Code::PasswordRequired,
                    format!(
                        "role {:?} does not exist and no password was given for it",
                        settings.role
                    ),
                )
                .hint(format!(
                    "give --password-file FILE (first line: the password, mode 0600) or set {}",
                    crate::commands::password::ENV
                )));
            };
            plan.push(Statement::with_password(
                &format!("CREATE ROLE {name} WITH LOGIN REPLICATION PASSWORD {PASSWORD_HERE}"),
                &scram::hash(pw),
                Some(Secret::new(format!("DROP ROLE {name}"))),
            ));
        }
        Some(role) => {
            if !settings.allow_privileged_role {
                refuse_shared_role(settings, facts, role)?;
            }
            let mut attrs = vec![];
            let mut undo = vec![];
            if !role.can_login {
                attrs.push("LOGIN");
                undo.push("NOLOGIN");
            }
            if !role.replication {
                attrs.push("REPLICATION");
                undo.push("NOREPLICATION");
            }
            let new_pw = match pw {
                Some(p)
                    if !role
                        .password
                        .as_deref()
                        .is_some_and(|s| scram::matches(s, p, &settings.role)) =>
                {
                    Some(scram::hash(p))
                }
                _ => None,
            };
            if pw.is_none() {
                match role.password.as_deref() {
                    None if settings.method != "cert" && settings.method != "trust" => plan.warnings.push(format!(
                        "role {:?} has no password, so standbys cannot authenticate with {}: give --password-file",
                        settings.role, settings.method
                    )),
                    Some(p) if p.starts_with("md5") && settings.method == "scram-sha-256" => plan.warnings.push(format!(
                        "role {:?} has an md5 password, which scram-sha-256 in pg_hba.conf rejects: give --password-file to store it as SCRAM",
                        settings.role
                    )),
                    _ => {}
                }
            }
            if attrs.is_empty() && new_pw.is_none() {
                return Ok(());
            }
            if new_pw.is_some() && !facts.streaming_as_role.is_empty() {
                plan.warnings.push(format!(
                    "the password of role {:?} changes while standbys stream with the old one ({}): they go on until they reconnect, then fail to authenticate until their passfile holds the new password (rerun clone-standby, or edit the standby's passfile)",
                    settings.role,
                    facts.streaming_as_role.join(", ")
                ));
            }
            let mut shown = format!("ALTER ROLE {name} WITH {}", attrs.join(" "));
            let mut real = shown.clone();
            let mut undo_sql = format!("ALTER ROLE {name} WITH {}", undo.join(" "));
            if let Some(v) = new_pw {
                shown.push_str(&format!(" PASSWORD {}", crate::secret::REDACTED));
                real.push_str(&format!(" PASSWORD {}", sql::literal(&v)));
                match &role.password {
                    Some(old) => undo_sql.push_str(&format!(" PASSWORD {}", sql::literal(old))),
                    None => undo_sql.push_str(" PASSWORD NULL"),
                }
            }
            plan.push(Statement {
                shown: shown.replace("WITH  ", "WITH "),
                sql: Secret::new(real),
                undo: Some(Secret::new(undo_sql)),
            });
        }
    }
    Ok(())
}

/// Predefined roles that only let a member read statistics and settings:
/// `check` needs pg_monitor, and granting it to the replication role is
/// common and harmless.
const MONITORING_ROLES: &[&str] = &[
    "pg_monitor",
    "pg_read_all_settings",
    "pg_read_all_stats",
    "pg_stat_scan_tables",
];

/// A role that is more than a replication login must not become one by
/// accident: init-master would set its password (copied into every
/// standby's passfile) and LOGIN REPLICATION. The rule: no SUPERUSER,
/// CREATEDB, CREATEROLE or BYPASSRLS, no owned objects, no membership in
/// other roles (but the read-only monitoring ones `check` needs) — what a
/// role pgrepctl created has none of.
fn refuse_shared_role(settings: &Settings, facts: &Facts, role: &RoleFacts) -> Result<()> {
    let mut why = vec![];
    if !role.powers.is_empty() {
        why.push(format!("has {}", role.powers.join(", ")));
    }
    if role.owned_objects > 0 {
        why.push(format!("owns {} database objects", role.owned_objects));
    }
    let mut m: Vec<&String> = facts
        .memberships
        .iter()
        .filter(|r| !MONITORING_ROLES.contains(&r.as_str()))
        .collect();
    if !m.is_empty() {
        m.sort();
        let m: Vec<&str> = m.into_iter().map(String::as_str).collect();
        why.push(format!("is a member of {}", m.join(", ")));
    }
    if why.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        Code::RoleNotDedicated,
        format!(
            "role {:?} is not a dedicated replication role: it {}; init-master would give it LOGIN REPLICATION and the replication password, which every standby keeps in its passfile",
            settings.role,
            why.join(", ")
        ),
    )
    .hint("choose another --replication-user (pgrepctl creates it with LOGIN REPLICATION and nothing else), or add --allow-privileged-role if this role is meant to replicate"))
}

fn plan_slots(settings: &Settings, facts: &Facts, restart: bool, plan: &mut Plan) -> Result<()> {
    let live_wal_level = facts
        .live
        .get("wal_level")
        .map(|l| l.setting.as_str())
        .unwrap_or("");
    let slot_refused = wal_level_rank(live_wal_level) < 1 && !restart;
    for s in &settings.slots {
        match facts.slots.get(s).map(String::as_str) {
            Some("physical") => {}
            Some(other) => {
                return Err(Error::new(
                    Code::SlotConflict,
                    format!(
                        "replication slot {s:?} exists but is a {other} slot, not a physical one"
                    ),
                )
                .hint("choose another --slot name for the standby"));
            }
            None if slot_refused => {
                return Err(Error::new(
                    Code::SlotNeedsRestart,
                    format!(
                        "replication slot {s:?} cannot be created while the server runs with wal_level = {live_wal_level}; raising wal_level takes effect only after a restart"
                    ),
                )
                .hint("add --restart if-needed to restart the server before the slot is created, or rerun with --slot after a restart"));
            }
            None => plan.push(CreateSlot { name: s.clone() }),
        }
    }
    Ok(())
}

/// Whether the live value of a target satisfies it, for verification.
pub fn live_satisfies(t: &Target, setting: &str, name_unit_base: u64) -> bool {
    satisfies(&t.want, setting, name_unit_base)
}

pub fn base_unit(name: &str) -> u64 {
    if name == "wal_keep_size" { 1 << 20 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_like_postgresql() {
        assert!(satisfies(&Want::WalLevel, "logical", 1));
        assert!(satisfies(&Want::WalLevel, "hot_standby", 1));
        assert!(!satisfies(&Want::WalLevel, "minimal", 1));
        assert!(satisfies(&Want::AtLeast(1 << 30), "1GB", 1 << 20));
        assert!(satisfies(&Want::AtLeast(1 << 30), "2048", 1 << 20));
        assert!(!satisfies(&Want::AtLeast(1 << 30), "512MB", 1 << 20));
        assert!(!satisfies(&Want::AtLeast(10), "5", 1));
        assert!(satisfies(&Want::On, "on", 1));
        assert!(satisfies(&Want::On, "TRUE", 1));
        assert!(!satisfies(&Want::On, "off", 1));
    }

    use super::super::RestartPolicy;
    use super::super::inspect::Live;

    /// A primary running with wal_level minimal, its settings all from
    /// defaults, pg_hba.conf empty, and `role` present as given.
    fn facts(role: Option<RoleFacts>) -> Facts {
        let live = |v: &str, ctx: &str| Live {
            setting: v.into(),
            context: ctx.into(),
            source: "default".into(),
        };
        Facts {
            version_num: 150000,
            data_directory: "/d".into(),
            config_file: "/d/postgresql.conf".into(),
            hba_file: "/d/pg_hba.conf".into(),
            auto_conf: "/d/postgresql.auto.conf".into(),
            wal_segment_size: 16 << 20,
            live: [
                ("wal_level", live("minimal", "postmaster")),
                ("max_wal_senders", live("0", "postmaster")),
                ("wal_keep_size", live("0", "sighup")),
                ("hot_standby", live("on", "postmaster")),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            file_settings: vec![],
            files: [("/d/postgresql.conf".into(), String::new())].into(),
            hba_text: String::new(),
            hba_errors: vec![],
            role,
            memberships: vec![],
            streaming_as_role: vec![],
            slots: Default::default(),
            local_nets: vec![],
            at_files: Default::default(),
            debian_cluster: None,
            server_bindir: None,
            monitor_role: None,
        }
    }

    fn settings(restart: RestartPolicy) -> Settings {
        Settings {
            data_dir: None,
            conn: tokio_postgres::Config::new(),
            role: "replicator".into(),
            allow_privileged_role: false,
            password: Some(Secret::new("pw")),
            allows: vec!["10.0.0.2/32".parse().unwrap()],
            ssl: false,
            method: "scram-sha-256".into(),
            max_wal_senders: 10,
            wal_keep_bytes: 1 << 30,
            listen: None,
            slots: vec!["s1".into()],
            restart,
            bindir: None,
            dry_run: true,
            monitor: None,
        }
    }

    #[test]
    fn slot_comes_after_the_restart_that_raises_wal_level() {
        let p = plan(&settings(RestartPolicy::IfNeeded), &facts(None)).unwrap();
        let summaries: Vec<String> = p.changes().into_iter().map(|c| c.summary).collect();
        let restart = summaries.iter().position(|s| s == "restart");
        let slot = summaries
            .iter()
            .position(|s| s.contains("pg_create_physical_replication_slot"));
        assert!(restart.unwrap() < slot.unwrap(), "{summaries:?}");
        let err = plan(&settings(RestartPolicy::Never), &facts(None)).unwrap_err();
        assert_eq!(err.code, Code::SlotNeedsRestart);
        assert!(err.hint.unwrap().contains("--restart"));
    }

    #[test]
    fn role_with_more_than_replication_is_refused_unless_allowed() {
        let role = |powers: Vec<&'static str>, owned| RoleFacts {
            can_login: true,
            replication: false,
            password: None,
            powers,
            owned_objects: owned,
        };
        let s = settings(RestartPolicy::Always);
        for r in [role(vec!["SUPERUSER"], 0), role(vec![], 3)] {
            let err = plan(&s, &facts(Some(r.clone()))).unwrap_err();
            assert_eq!(err.code, Code::RoleNotDedicated, "{r:?}");
            let mut allowed = s.clone();
            allowed.allow_privileged_role = true;
            assert!(plan(&allowed, &facts(Some(r))).is_ok());
        }
        let mut f = facts(Some(role(vec![], 0)));
        f.memberships = vec!["pg_monitor".into(), "pg_read_all_stats".into()];
        assert!(plan(&s, &f).is_ok(), "monitoring roles are fine");
        f.memberships.push("app".into());
        let err = plan(&s, &f).unwrap_err();
        assert!(err.message.contains("member of app"), "{}", err.message);
    }

    #[test]
    fn password_change_warns_about_standbys_streaming_as_the_role() {
        let mut f = facts(Some(RoleFacts {
            can_login: true,
            replication: true,
            password: Some("SCRAM-SHA-256$4096:old".into()),
            powers: vec![],
            owned_objects: 0,
        }));
        let s = settings(RestartPolicy::Always);
        assert!(
            !plan(&s, &f)
                .unwrap()
                .warnings
                .iter()
                .any(|w| w.contains("stream"))
        );
        f.streaming_as_role = vec!["10.0.0.2 (s1)".into()];
        let p = plan(&s, &f).unwrap();
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("password") && w.contains("10.0.0.2 (s1)")),
            "{:?}",
            p.warnings
        );
    }
}
