//! postgresql.conf and the files it includes: which settings fall short,
//! and where PostgreSQL reads each one from — the line to edit, ALTER
//! SYSTEM's file, or the command line that no file can override.

use super::{Plan, Target, Want};
use crate::commands::init_master::Settings;
use crate::commands::init_master::inspect::{Facts, FileSetting};
use crate::conf::pgconf;
use crate::error::{Code, Error, Result};
use crate::pg::version::{Version, WalKeep};
use crate::plan::file::EditFile;
use crate::plan::sql::AlterSystem;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Each file we may touch: its text, its parsed model, and the notes of
/// what changes in it.
type Parsed = BTreeMap<PathBuf, (String, pgconf::ConfFile, Vec<String>)>;

/// pgrepctl changes nothing while PostgreSQL itself cannot read the
/// configuration: say which line first.
pub fn refuse_config_errors(facts: &Facts) -> Result<()> {
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
    Ok(())
}

/// Plan the server settings; returns whether a file or ALTER SYSTEM
/// changes (so a reload is needed).
pub fn plan_config(
    settings: &Settings,
    facts: &Facts,
    extra: &[(&'static str, String)],
    plan: &mut Plan,
) -> Result<bool> {
    let mut changed_config = false;
    // postgresql.conf and included files: parse each file we may touch.
    let mut parsed: Parsed = BTreeMap::new();
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

    let mut all = desired(settings, facts);
    all.extend(extra.iter().map(|(name, v)| Desired {
        name,
        want: if *name == "ssl" {
            Want::On
        } else {
            Want::Exactly(v.clone())
        },
        write: v.clone(),
        base_unit: 1,
    }));
    for d in all {
        if plan_one(&d, facts, &mut parsed, plan)? {
            changed_config = true;
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
    Ok(changed_config)
}

/// One desired setting: the target to verify later, and the edit (or
/// ALTER SYSTEM) when its current value falls short. Returns whether
/// the configuration changes.
fn plan_one(d: &Desired, facts: &Facts, parsed: &mut Parsed, plan: &mut Plan) -> Result<bool> {
    let mut changed_config = false;
    let live = facts.live.get(d.name);
    let postmaster = live.is_some_and(|l| l.context == "postmaster");
    let origin = origin(d.name, facts);
    let current = match &origin {
        Origin::File(fs) | Origin::AutoConf(fs) => fs.setting.clone(),
        Origin::CommandLine(v) => v.clone(),
        Origin::Default => live
            .map(|l| shown_value(d.name, &l.setting))
            .unwrap_or_default(),
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
                edit_line(d, fs, &current, parsed)?;
                changed_config = true;
            }
            Origin::Default => {
                let (_, file, notes) = parsed.get_mut(&facts.config_file).ok_or_else(|| {
                    crate::commands::init_master::internal("config_file was not read")
                })?;
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
    Ok(changed_config)
}

/// A live value as the setting holds it: before 15, pg_settings shows
/// archive_command as "(disabled)" while archive_mode is off.
pub fn shown_value(name: &str, setting: &str) -> String {
    if name == "archive_command" && setting == "(disabled)" {
        String::new()
    } else {
        setting.to_string()
    }
}

/// Set the value on the line PostgreSQL reads it from, after making sure
/// that line still says what the server read (the file may have changed
/// since the last reload).
fn edit_line(d: &Desired, fs: &FileSetting, current: &str, parsed: &mut Parsed) -> Result<()> {
    let (_, file, notes) = parsed.get_mut(&fs.sourcefile).ok_or_else(|| {
        crate::commands::init_master::internal(format!("{} was not read", fs.sourcefile.display()))
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
        .map_err(crate::commands::init_master::internal)?;
    notes.push(format!(
        "{}: {} -> {} (line {})",
        d.name, current, d.write, fs.sourceline
    ));
    Ok(())
}

/// pg_file_settings marks restart-only values that differ from the running
/// ones with this note; it is not a syntax problem. The server writes it
/// untranslated (guc-file.l: `pstrdup("setting could not be applied")`),
/// so it is one fixed value whatever lc_messages says.
pub fn is_apply_notice(err: &str) -> bool {
    err == "setting could not be applied"
}

/// The pieces of a config value pgrepctl cares about, in comparable form.
pub fn wal_level_rank(v: &str) -> u8 {
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

pub(super) fn satisfies(want: &Want, value: &str, base_unit: u64) -> bool {
    match want {
        Want::WalLevel => wal_level_rank(value) >= 1,
        Want::AtLeast(n) => pgconf::parse_size(value, base_unit).is_some_and(|v| v >= *n),
        Want::On => is_on(value),
        Want::Exactly(s) => value.trim() == s,
        Want::ArchiveMode => is_on(value) || value.trim().eq_ignore_ascii_case("always"),
        Want::Seconds(n) => parse_seconds(value) == Some(*n),
    }
}

/// A time value in seconds: PostgreSQL's units (ms, s, min, h, d); a
/// bare number counts in seconds (the base unit of archive_timeout).
pub(super) fn parse_seconds(value: &str) -> Option<u64> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    let ms = match unit.trim() {
        "ms" => n,
        "" | "s" => n * 1000,
        "min" => n * 60_000,
        "h" => n * 3_600_000,
        "d" => n * 86_400_000,
        _ => return None,
    };
    // PostgreSQL rounds a finer unit to the base unit.
    Some((ms + 500) / 1000)
}

/// The archive settings: archive_mode, how WAL leaves (archive_command
/// or, on 15+, archive_library — the other one emptied, as 16+ refuses
/// both), and archive_timeout.
fn archive_desired(
    a: &crate::commands::init_master::settings::Archive,
    facts: &Facts,
) -> Vec<Desired> {
    use crate::commands::init_master::settings::ArchiveHow;
    use crate::conf::archive::push_command;
    let exactly = |name: &'static str, v: String| Desired {
        name,
        want: Want::Exactly(v.clone()),
        write: v,
        base_unit: 1,
    };
    let mut d = vec![Desired {
        name: "archive_mode",
        want: Want::ArchiveMode,
        write: "on".into(),
        base_unit: 1,
    }];
    let has_library = facts.version_num >= 150000;
    match &a.how {
        ArchiveHow::Dir { dir, pgrepctl } => {
            d.push(exactly("archive_command", push_command(pgrepctl, dir)));
        }
        ArchiveHow::Command(c) => d.push(exactly("archive_command", c.clone())),
        ArchiveHow::Library(dir) => {
            d.push(exactly("archive_library", "basic_archive".into()));
            d.push(exactly(
                "basic_archive.archive_directory",
                dir.display().to_string(),
            ));
            d.push(exactly("archive_command", String::new()));
        }
    }
    if has_library && !matches!(a.how, ArchiveHow::Library(_)) {
        d.push(exactly("archive_library", String::new()));
    }
    d.push(Desired {
        name: "archive_timeout",
        want: Want::Seconds(a.timeout_secs),
        write: if a.timeout_secs == 0 {
            "0".into()
        } else {
            format!("{}s", a.timeout_secs)
        },
        base_unit: 1,
    });
    d
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
    // pg_rewind needs data checksums or wal_log_hints; checksums are an
    // initdb choice, so a cluster without them gets wal_log_hints.
    let checksums = facts
        .live
        .get("data_checksums")
        .is_some_and(|l| is_on(&l.setting));
    if settings.rewindable && !checksums {
        d.push(Desired {
            name: "wal_log_hints",
            want: Want::On,
            write: "on".into(),
            base_unit: 1,
        });
    }
    if let Some(l) = &settings.listen {
        d.push(Desired {
            name: "listen_addresses",
            want: Want::Exactly(l.trim().to_string()),
            write: l.trim().to_string(),
            base_unit: 1,
        });
    }
    if let Some(a) = &settings.archive {
        d.extend(archive_desired(a, facts));
    }
    d
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

/// Whether the live value of a target satisfies it, for verification.
pub fn live_satisfies(t: &Target, setting: &str, name_unit_base: u64) -> bool {
    satisfies(&t.want, setting, name_unit_base)
}

pub fn base_unit(name: &str) -> u64 {
    if name == "wal_keep_size" { 1 << 20 } else { 1 }
}
