//! The standby's configuration as edits to files in a data directory:
//! computed (read-only, also for `--dry-run`), then written. The same code
//! configures a fresh copy and re-checks an existing standby, which is what
//! makes a second run a no-op.

use super::preflight::Facts;
use super::settings::Settings;
use crate::conf::{pgconf, standby};
use crate::error::{Code, Error, Result};
use crate::pg::HOT_STANDBY_SETTINGS;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Edit {
    /// Where the file is now (in the temporary copy during a clone).
    pub path: PathBuf,
    /// Where it will be once the copy is in place, for reports.
    pub final_path: PathBuf,
    pub old: Option<String>,
    pub new: String,
    pub summary: String,
    /// Holds a password: never diffed, always 0600.
    pub secret: bool,
}

/// The edits that make `dir` (which will live at `final_dir`) a standby of
/// the primary; empty when it already is exactly that.
pub fn compute(
    settings: &Settings,
    facts: &Facts,
    dir: &Path,
    final_dir: &Path,
) -> Result<Vec<Edit>> {
    let at = At { dir, final_dir };
    let mut edits = vec![];
    let mut server = server_settings(settings, facts);
    if !standby::uses_recovery_conf(facts.primary.version_num) {
        server.extend(archive_settings(settings, facts));
    }
    let config_file = config_file(facts, &at, &mut edits);
    let raised = raise_limits(facts, dir, config_file.as_deref(), &mut server)?;
    let (auto_path, _) = at.file("postgresql.auto.conf");
    let auto_old = read_optional(&auto_path)?;
    if let Some(ours) = auto_conf_listen(settings, facts, auto_old.as_deref()) {
        server.push(("listen_addresses".into(), ours));
    }
    monitor_hba(facts, dir, final_dir, auto_old.as_deref(), &mut edits)?;
    let auto = auto_conf(settings, facts, &at, auto_old, &server, &raised)?;
    edits.extend(signal(settings, facts, &at)?);
    edits.extend(auto);
    edits.extend(passfile(settings, &at)?);
    edits.extend(root_ca(settings, &at)?);
    Ok(edits)
}

/// What a standby in place streams with now, from the file pgrepctl
/// writes it to (recovery.conf on 10–11, postgresql.auto.conf from 12).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    /// primary_conninfo's application_name.
    pub application_name: Option<String>,
    /// primary_slot_name.
    pub slot: Option<String>,
    /// primary_conninfo's host and port (5432 when not given).
    pub upstream: Option<(String, u16)>,
    /// primary_conninfo's TLS keywords ([`TLS_KEYWORDS`]), as written.
    pub tls: Vec<(&'static str, String)>,
}

/// The TLS keywords pgrepctl writes into primary_conninfo, which a rerun
/// that gives none keeps (a rerun must never weaken them unasked).
pub const TLS_KEYWORDS: [&str; 5] = ["sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl"];

pub fn current(dir: &Path, version_num: u32) -> Result<Current> {
    let name = if standby::uses_recovery_conf(version_num) {
        "recovery.conf"
    } else {
        "postgresql.auto.conf"
    };
    let path = dir.join(name);
    let Some(text) = read_optional(&path)? else {
        return Ok(Current::default());
    };
    current_of(&text).map_err(|e| parse_error(&path, e))
}

/// [`current`] before the primary's version is known: a recovery.conf
/// is only ever there on 10–11 (12 refuses to start with one).
pub fn current_any(dir: &Path) -> Result<Current> {
    let version = if dir.join("recovery.conf").exists() {
        110000
    } else {
        120000
    };
    current(dir, version)
}

fn current_of(text: &str) -> std::result::Result<Current, crate::conf::ParseError> {
    let conf = crate::conf::pgconf::parse(text)?;
    let get = |n: &str| {
        conf.last_active(n)
            .and_then(|l| conf.setting_at(l))
            .map(|(_, v)| v)
    };
    let pairs = get("primary_conninfo")
        .map(|c| crate::pg::conninfo::pairs(&c))
        .unwrap_or_default();
    let last = |key: &str| {
        pairs
            .iter()
            .rfind(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let upstream = last("host").map(|h| {
        let port = last("port").and_then(|p| p.parse().ok()).unwrap_or(5432);
        (h, port)
    });
    Ok(Current {
        application_name: last("application_name"),
        slot: get("primary_slot_name"),
        upstream,
        tls: tls_keywords(&pairs),
    })
}

/// A Debian standby's postgresql.conf is its own (the preflight leaves
/// its listen_addresses alone), but the copy's postgresql.auto.conf, the
/// primary's ALTER SYSTEM, overrides it: a listen_addresses there that
/// this host cannot bind is replaced, as the preflight replaces one the
/// copy's postgresql.conf would bring.
fn auto_conf_listen(settings: &Settings, facts: &Facts, auto: Option<&str>) -> Option<String> {
    if settings.listen.is_some() || facts.listen_override.is_some() || facts.debian.is_none() {
        return None;
    }
    let conf = pgconf::parse(auto?).ok()?;
    let (_, value) = conf.setting_at(conf.last_active("listen_addresses")?)?;
    super::preflight::local_listen(&value, &crate::net::can_bind).map(|(_, ours)| ours)
}

/// primary_conninfo's TLS keywords in the order they are written (a rerun
/// that keeps them writes the same text), each with its last value.
fn tls_keywords(pairs: &[(String, String)]) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = vec![];
    for (k, v) in pairs {
        let Some(key) = TLS_KEYWORDS.iter().find(|t| *t == k) else {
            continue;
        };
        match out.iter_mut().find(|(o, _)| o == key) {
            Some(slot) => slot.1 = v.clone(),
            None => out.push((key, v.clone())),
        }
    }
    out
}

/// A file of the standby: where it is now, and where it will be.
struct At<'a> {
    dir: &'a Path,
    final_dir: &'a Path,
}

impl At<'_> {
    fn file(&self, name: &str) -> (PathBuf, PathBuf) {
        (self.dir.join(name), self.final_dir.join(name))
    }
}

/// The server settings every standby gets: hot_standby, and the port and
/// listen_addresses asked for (or chosen by the preflight).
fn server_settings(settings: &Settings, facts: &Facts) -> Vec<(String, String)> {
    let mut server: Vec<(String, String)> = vec![("hot_standby".into(), "on".into())];
    if let Some(p) = settings.port {
        server.push(("port".into(), p.to_string()));
    }
    if let Some(l) = &settings.listen {
        server.push(("listen_addresses".into(), l.clone()));
    }
    if let Some((_, chosen)) = &facts.listen_override {
        if settings.listen.is_none() {
            server.push(("listen_addresses".into(), chosen.clone()));
        }
    }
    if crate::net::is_loopback(&settings.conninfo.host) {
        // A primary on a loopback address is a forwarded port (pgrepctl
        // tunnel) or this host: after the tunnel comes back, retry within
        // half a second rather than PostgreSQL's 5 s.
        server.push(("wal_retrieve_retry_interval".into(), LOOPBACK_RETRY.into()));
    }
    server
}

/// How soon a standby of a loopback primary tries to stream again.
pub const LOOPBACK_RETRY: &str = "500ms";

/// restore_command and (with --archive-cleanup) archive_cleanup_command,
/// as the standby's server will run them: pgrepctl and the server's own
/// pg_archivecleanup by absolute path.
pub fn archive_settings(settings: &Settings, facts: &Facts) -> Vec<(String, String)> {
    use super::settings::RestoreHow;
    use crate::conf::archive;
    let Some(r) = &settings.restore else {
        return vec![];
    };
    let restore = match &r.how {
        RestoreHow::Dir { dir, pgrepctl } => archive::fetch_command(pgrepctl, dir),
        RestoreHow::Command(c) => c.clone(),
    };
    let mut out = vec![("restore_command".to_string(), restore)];
    if let (true, Some(dir)) = (r.cleanup, r.dir()) {
        out.push((
            "archive_cleanup_command".to_string(),
            archive::cleanup_command(&facts.bindir.tool("pg_archivecleanup"), dir),
        ));
    }
    out
}

/// Which configuration the standby will read: Debian's /etc file, the
/// copy's own (`None`), or none at all — then minimal ones are written
/// (`edits`) and PostgreSQL's defaults count (`/dev/null`).
fn config_file(facts: &Facts, at: &At, edits: &mut Vec<Edit>) -> Option<PathBuf> {
    match &facts.debian {
        Some((_, _, etc)) => Some(etc.join("postgresql.conf")),
        None if at.dir.join("postgresql.conf").exists() => None,
        None => {
            for (name, text, why) in MISSING_CONFIG {
                let (path, final_path) = at.file(name);
                if !path.exists() {
                    edits.push(Edit {
                        path,
                        final_path,
                        old: None,
                        new: text.to_string(),
                        summary: format!("created: {why}"),
                        secret: false,
                    });
                }
            }
            Some(PathBuf::from("/dev/null"))
        }
    }
}

/// A hot standby refuses to start with a limit below the primary's: each
/// one the standby would have lower (as PostgreSQL computes it) is raised
/// in `server`. Returns what was raised, for the report.
fn raise_limits(
    facts: &Facts,
    dir: &Path,
    config_file: Option<&Path>,
    server: &mut Vec<(String, String)>,
) -> Result<Vec<String>> {
    // One `postgres -C` process a setting: run them side by side.
    let locals: Vec<Result<i64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = facts
            .primary
            .hot_standby
            .iter()
            .map(|(name, _)| scope.spawn(move || effective_int(facts, dir, config_file, name)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::new(Code::Internal, "postgres -C panicked")))
            })
            .collect()
    });
    let mut raised = vec![];
    for ((name, primary_value), local) in facts.primary.hot_standby.iter().zip(locals) {
        debug_assert!(HOT_STANDBY_SETTINGS.contains(&name.as_str()));
        let local = local?;
        if local < *primary_value {
            server.push((name.clone(), primary_value.to_string()));
            raised.push(format!("{name} {local} -> {primary_value}"));
        }
    }
    Ok(raised)
}

/// postgresql.auto.conf: the server settings, and on 12+ primary_conninfo
/// and the slot; settings a cloned standby's own config carried that no
/// longer apply are dropped.
fn auto_conf(
    settings: &Settings,
    facts: &Facts,
    at: &At,
    auto_old: Option<String>,
    server: &[(String, String)],
    raised: &[String],
) -> Result<Option<Edit>> {
    let version = facts.primary.version_num;
    let conninfo = &settings.conninfo;
    let slot = settings.slot.as_deref();
    let (auto_path, auto_final) = at.file("postgresql.auto.conf");
    let mut auto_new = auto_old.clone().unwrap_or_else(|| {
        "# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n".into()
    });
    if slot.is_none() || standby::uses_recovery_conf(version) {
        // A slot inherited from a cloned standby's own config must not linger.
        auto_new = standby::drop_settings(&auto_new, &["primary_slot_name"])
            .map_err(|e| parse_error(&auto_path, e))?;
    }
    if standby::uses_recovery_conf(version) {
        auto_new = standby::drop_settings(&auto_new, &["primary_conninfo"])
            .map_err(|e| parse_error(&auto_path, e))?;
    }
    let settings_list = standby::auto_conf_settings(version, conninfo, slot, server);
    auto_new = standby::edit_auto_conf(&auto_new, &settings_list)
        .map_err(|e| parse_error(&auto_path, e))?;
    if auto_old.as_deref() == Some(auto_new.as_str()) {
        return Ok(None);
    }
    let mut what: Vec<String> = settings_list
        .iter()
        .map(|(k, v)| {
            if k == "primary_conninfo" {
                format!("{k} = '{}'", conninfo.redacted())
            } else {
                format!("{k} = {v}")
            }
        })
        .collect();
    if !raised.is_empty() {
        what.push(format!(
            "raised to the primary's values, which a hot standby needs: {}",
            raised.join(", ")
        ));
    }
    Ok(Some(Edit {
        path: auto_path,
        final_path: auto_final,
        old: auto_old,
        new: auto_new,
        summary: what.join("; "),
        secret: false,
    }))
}

/// What makes the server start as a standby: recovery.conf on 10–11,
/// standby.signal from 12.
fn signal(settings: &Settings, facts: &Facts, at: &At) -> Result<Option<Edit>> {
    let version = facts.primary.version_num;
    let conninfo = &settings.conninfo;
    if standby::uses_recovery_conf(version) {
        let (path, final_path) = at.file("recovery.conf");
        let old = read_optional(&path)?;
        // Without --restore-dir/--restore-command the archive's settings
        // stay as they are, as they do in postgresql.auto.conf on 12+.
        let archive = match &settings.restore {
            Some(_) => archive_settings(settings, facts),
            None => old
                .as_deref()
                .map(standby::archive_settings_of)
                .unwrap_or_default(),
        };
        let new =
            standby::recovery_conf_with(version, conninfo, settings.slot.as_deref(), &archive);
        if old.as_deref() == Some(new.as_str()) {
            return Ok(None);
        }
        let archive_note: String = archive
            .iter()
            .map(|(k, v)| format!(", {k} = '{v}'"))
            .collect();
        return Ok(Some(Edit {
            path,
            final_path,
            old,
            new,
            summary: format!(
                "standby_mode = on, primary_conninfo = '{}'{archive_note}",
                conninfo.redacted()
            ),
            secret: false,
        }));
    }
    let (path, final_path) = at.file("standby.signal");
    Ok((!path.exists()).then(|| Edit {
        path,
        final_path,
        old: None,
        new: String::new(),
        summary: "created: start as a standby".into(),
        secret: false,
    }))
}

/// The password file primary_conninfo names (0600, never diffed).
fn passfile(settings: &Settings, at: &At) -> Result<Option<Edit>> {
    let (Some(final_passfile), Some(line)) = (&settings.passfile, settings.password_line()) else {
        return Ok(None);
    };
    let path = match final_passfile.strip_prefix(at.final_dir) {
        Ok(rel) => at.dir.join(rel),
        Err(_) => final_passfile.clone(),
    };
    let old = read_optional(&path)?;
    Ok((old.as_deref() != Some(line.as_str())).then(|| Edit {
        path,
        final_path: final_passfile.clone(),
        old,
        new: line,
        summary: "password file for primary_conninfo (mode 0600)".into(),
        secret: true,
    }))
}

/// --sslrootcert's copy, the file primary_conninfo's sslrootcert names,
/// owned by the server's user (who runs the walreceiver).
fn root_ca(settings: &Settings, at: &At) -> Result<Option<Edit>> {
    let Some(ca) = &settings.root_ca else {
        return Ok(None);
    };
    let path = match ca.copy.strip_prefix(at.final_dir) {
        Ok(rel) => at.dir.join(rel),
        Err(_) => ca.copy.clone(),
    };
    let old = read_optional(&path)?;
    Ok((old.as_deref() != Some(ca.pem.as_str())).then(|| Edit {
        path,
        final_path: ca.copy.clone(),
        old,
        new: ca.pem.clone(),
        summary: format!(
            "the primary's CA certificate, from {} (sslrootcert in primary_conninfo)",
            ca.source.display()
        ),
        secret: true,
    }))
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::new(
            Code::FileUnreadable,
            format!("cannot read {}: {e}", path.display()),
        )
        .hint("run pgrepctl as the PostgreSQL OS user or as root")),
    }
}

fn parse_error(path: &Path, e: crate::conf::ParseError) -> Error {
    Error::new(
        Code::ConfigParseError,
        format!("{}:{}: {}", path.display(), e.line, e.message),
    )
    .hint("fix that line (PostgreSQL would not start with it either) and rerun")
}

/// The monitoring hosts init-master recorded on the primary (in the
/// copied postgresql.auto.conf) get the same pg_hba.conf lines on this
/// standby, whose pg_hba.conf may be its own (Debian's /etc). A file that
/// another edit creates (the minimal one) is amended in that edit.
fn monitor_hba(
    facts: &Facts,
    dir: &Path,
    final_dir: &Path,
    auto_conf: Option<&str>,
    edits: &mut Vec<Edit>,
) -> Result<()> {
    use crate::commands::init_master::monitor;
    let Some(auto) = auto_conf.and_then(|t| pgconf::parse(t).ok()) else {
        return Ok(());
    };
    let get = |n: &str| {
        auto.last_active(n)
            .and_then(|l| auto.setting_at(l))
            .map(|(_, v)| v.to_string())
    };
    let (Some(role), Some(from)) = (get(monitor::ROLE_SETTING), get(monitor::FROM_SETTING)) else {
        return Ok(());
    };
    let conns = monitor::conns(&role, &monitor::parse_from(&from));
    if conns.is_empty() {
        return Ok(());
    }
    let (path, final_path) = match &facts.debian {
        Some((_, _, etc)) => (etc.join("pg_hba.conf"), etc.join("pg_hba.conf")),
        None => (dir.join("pg_hba.conf"), final_dir.join("pg_hba.conf")),
    };
    let pending = edits.iter().position(|e| e.path == path);
    let (old, base) = match pending {
        Some(i) => (edits[i].old.clone(), edits[i].new.clone()),
        None => {
            let text = read_optional(&path)?.unwrap_or_default();
            (Some(text.clone()), text)
        }
    };
    let mut file = crate::conf::hba::parse(&base).map_err(|e| parse_error(&path, e))?;
    let ctx = crate::conf::hba::MatchContext {
        role_memberships: vec!["pg_monitor".into()],
        ..Default::default()
    };
    let notes = crate::conf::hba::ensure_db_lines(&mut file, &conns, "scram-sha-256", &ctx);
    if notes.is_empty() {
        return Ok(());
    }
    let new = file.render();
    let summary = format!(
        "monitoring hosts recorded on the primary: {}",
        notes.join("; ")
    );
    match pending {
        Some(i) => {
            edits[i].new = new;
            edits[i].summary = format!("{}; {summary}", edits[i].summary);
        }
        None => edits.push(Edit {
            path,
            final_path,
            old,
            new,
            summary,
            secret: false,
        }),
    }
    Ok(())
}

/// Configuration files a Debian primary keeps outside its data directory,
/// written into a copy that lands in a plain directory so the standby can
/// start: (name, contents, why).
const MISSING_CONFIG: [(&str, &str, &str); 3] = [
    (
        "postgresql.conf",
        include_str!("../../../templates/standby-postgresql.conf"),
        "the copy had none (the primary keeps its configuration outside its data directory); PostgreSQL's defaults apply",
    ),
    (
        "pg_hba.conf",
        include_str!("../../../templates/standby-pg_hba.conf"),
        "the copy had none; local peer and loopback scram-sha-256 only",
    ),
    (
        "pg_ident.conf",
        include_str!("../../../templates/standby-pg_ident.conf"),
        "the copy had none",
    ),
];

/// The value the standby will use, as PostgreSQL itself computes it
/// (`postgres -C`) from the new copy — its postgresql.auto.conf included —
/// and the configuration file it will read: `config_file` when given
/// (Debian's file in /etc, whose own `data_directory` still names the old
/// directory and is overridden here), else the copy's own.
fn effective_int(facts: &Facts, dir: &Path, config_file: Option<&Path>, name: &str) -> Result<i64> {
    let mut args: Vec<std::ffi::OsString> = vec!["-C".into(), name.into(), "-D".into(), dir.into()];
    if let Some(f) = config_file {
        let mut c = std::ffi::OsString::from("config_file=");
        c.push(f);
        let mut d = std::ffi::OsString::from("data_directory=");
        d.push(dir);
        args.extend(["-c".into(), c, "-c".into(), d]);
    }
    let shown = format!("postgres -C {name} -D {}", dir.display());
    let out = crate::tools::run(
        facts.run_as.cmd(facts.bindir.tool("postgres"), args),
        &shown,
    )
    .map_err(|e| {
        Error::new(
            Code::ConfigRejected,
            format!("cannot read the standby's {name}: {}", e.message),
        )
        .hint("the standby's configuration must be valid for PostgreSQL to start; fix what is shown and rerun")
    })?;
    out.trim().parse().map_err(|_| {
        Error::new(
            Code::Internal,
            format!("{shown} printed {:?}, not a number", out.trim()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_application_name_and_slot() {
        let text = "# Do not edit\nprimary_conninfo = 'host=10.0.0.1 port=5432 user=replicator application_name=xd passfile=''/d/p'''\nprimary_slot_name = 'xd'\n";
        assert_eq!(
            current_of(text).unwrap(),
            Current {
                application_name: Some("xd".into()),
                slot: Some("xd".into()),
                upstream: Some(("10.0.0.1".into(), 5432)),
                tls: vec![],
            }
        );
        let tls = "primary_conninfo = 'host=db1 user=r application_name=xd sslmode=verify-full sslrootcert=/d/pgrepctl-primary-ca.crt channel_binding=require'\n";
        let c = current_of(tls).unwrap();
        let ordered = "primary_conninfo = 'host=db1 sslcert=/c sslkey=/k sslmode=verify-full sslrootcert=/r sslkey=/k2'\n";
        assert_eq!(
            current_of(ordered).unwrap().tls,
            [
                ("sslcert", "/c".to_string()),
                ("sslkey", "/k2".to_string()),
                ("sslmode", "verify-full".to_string()),
                ("sslrootcert", "/r".to_string())
            ]
        );
        assert_eq!(c.upstream, Some(("db1".into(), 5432)));
        assert_eq!(
            c.tls,
            [
                ("sslmode", "verify-full".to_string()),
                ("sslrootcert", "/d/pgrepctl-primary-ca.crt".to_string())
            ]
        );
        let later = format!("{text}primary_slot_name = ''\n");
        assert_eq!(current_of(&later).unwrap().slot.as_deref(), Some(""));
        assert_eq!(current_of("").unwrap(), Current::default());
    }
}
