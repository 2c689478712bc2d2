//! follow's decision, with no I/O: can this standby stream from the new
//! primary at all (same cluster, and not diverged from its timeline), and
//! if so, which settings change, in which files or by ALTER SYSTEM, and
//! how the server takes them (reload on 13+, restart before, a start
//! for a stopped standby). A standby that already streams from that
//! primary with those settings needs nothing.

use super::Settings;
use super::conninfo::{self, Target};
use super::inspect::{Current, Files, Node, Receiver};
use super::probe::Primary;
use super::upstream::Verdict;
use crate::conf::standby;
use crate::error::{Code, Error, Result};
use crate::pg::timeline::{self, History, Relation};
use crate::pg::version::Version;
use std::path::{Path, PathBuf};

/// How the server picks up the new settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    None,
    /// 13+: primary_conninfo and primary_slot_name reload.
    Reload,
    /// Before 13, or a recovery_target_timeline that is not yet `latest`.
    Restart,
    /// A standby that was stopped.
    Start,
}

/// A file's new contents, decided before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    pub path: PathBuf,
    pub old: Option<String>,
    pub new: String,
    pub summary: String,
    pub secret: bool,
}

/// `ALTER SYSTEM SET name = value` (remote mode); `old` for the undo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub name: String,
    pub value: String,
    pub old: String,
}

#[derive(Debug)]
pub struct Decided {
    pub relation: Relation,
    /// The slot to create on the new primary unless it exists.
    pub slot: Option<String>,
    pub files: Vec<FileEdit>,
    pub alter: Vec<Setting>,
    pub service: Service,
    pub warnings: Vec<String>,
    /// Worth saying, not worth a warning.
    pub notes: Vec<String>,
}

/// What the standby should have: the repointed conninfo, the slot ("" for
/// none) and `recovery_target_timeline = 'latest'`, so that it follows
/// the new primary onto its timeline (10–11 default to `current`).
pub struct Wanted<'a> {
    pub conninfo: &'a str,
    pub slot: &'a str,
    pub target: &'a Target,
    /// --password-file: the passfile and the line for it.
    pub passfile: Option<(PathBuf, String)>,
    /// --primary reaches the standby's own server (its postmaster.pid's
    /// socket or address and port; --standby's host and port).
    pub upstream_is_self: bool,
    /// Without --slot: --primary is the server the standby streams from
    /// now (by another address, perhaps), so `slot` is its own
    /// primary_slot_name, kept.
    pub kept: Option<&'a Verdict>,
}

pub fn decide(
    settings: &Settings,
    node: &Node,
    primary: &Primary,
    want: &Wanted,
) -> Result<Decided> {
    same_system(node, primary, &settings.primary)?;
    if want.upstream_is_self {
        return Err(Error::new(
            Code::InvalidAddress,
            format!(
                "--primary {} is the standby {} itself (same system identifier, and it listens there): a standby streaming from itself never advances",
                want.target.name(),
                node.name()
            ),
        )
        .hint("give the new primary's address in --primary (or an upstream standby's), not this standby's own"));
    }
    let relation = timeline::relation(
        &History::new(&node.switch_points, node.timeline),
        node.wal_end,
        &History::new(&primary.switch_points, primary.identity.timeline),
        primary.identity.lsn,
    );
    if let Relation::Diverged { reason } = &relation {
        return Err(diverged(settings, node, reason));
    }
    let (warnings, notes) = remarks(node, primary, want);
    let streaming = streams_from(node.receiver.as_ref(), want.target);
    let (files, alter) = match node.cluster() {
        Some(c) => (file_edits(node, &c.data_dir, want)?, vec![]),
        None => (vec![], alterations(&node.current, want)),
    };
    // recovery_target_timeline takes a restart: one that is not `latest`
    // yet would keep the standby on its old timeline after a reload.
    let needs_restart =
        !node.version.primary_conninfo_reloads() || node.current.target_timeline != "latest";
    let service = if !node.running() {
        Service::Start
    } else if files.is_empty() && alter.is_empty() && streaming {
        Service::None
    } else if needs_restart && node.cluster().is_none() {
        return Err(Error::new(
            Code::Usage,
            format!(
                "{} has recovery_target_timeline = {}, which takes a restart to become latest",
                node.name(),
                node.current.target_timeline
            ),
        )
        .hint("run it on the standby's host with -D, which restarts it: pgrepctl follow -D PGDATA --primary …"));
    } else if needs_restart {
        Service::Restart
    } else {
        Service::Reload
    };
    // The slot the WAL receiver streams through now is there, on the
    // server it streams from.
    let receiving_through = node
        .receiver
        .as_ref()
        .filter(|r| r.status == "streaming")
        .and_then(|r| r.slot.as_deref());
    let slot_known = primary.slot_exists == Some(true)
        || ((streaming || want.kept.is_some()) && receiving_through == Some(want.slot));
    let slot = (!want.slot.is_empty() && !slot_known).then(|| want.slot.to_string());
    Ok(Decided {
        relation,
        slot,
        files,
        alter,
        service,
        warnings,
        notes,
    })
}

/// What the run says besides its changes: a cascade, and what becomes
/// of the standby's slot setting when --slot is not given.
fn remarks(node: &Node, primary: &Primary, want: &Wanted) -> (Vec<String>, Vec<String>) {
    let (mut warnings, mut notes) = (vec![], vec![]);
    match primary.standby {
        Some(true) => warnings.push(format!(
            "{} is itself a standby: this standby will stream from it (cascading replication)",
            want.target.name()
        )),
        None => notes.push(format!(
            "{} cannot tell over a replication connection whether it is a primary or a standby (PostgreSQL {} with default_transaction_read_only on); a standby there makes this a cascade",
            want.target.name(),
            primary.version.major()
        )),
        Some(false) => {}
    }
    if want.slot.is_empty() && !node.current.slot.is_empty() {
        warnings.push(format!(
            "primary_slot_name {} is dropped: it names a slot on the old upstream; pass --slot to use one on the new primary",
            node.current.slot
        ));
    }
    if let Some(v) = want.kept {
        notes.push(format!(
            "primary_slot_name {} stays: {} is the server the standby streams from now ({})",
            want.slot,
            want.target.name(),
            v.why
        ));
    }
    (warnings, notes)
}

fn same_system(node: &Node, primary: &Primary, primary_arg: &str) -> Result<()> {
    if node.system_id == primary.identity.system_id {
        return Ok(());
    }
    Err(Error::new(
        Code::SystemIdMismatch,
        format!(
            "{} belongs to another cluster (system identifier {}) than {primary_arg} ({}): it can never stream from it",
            node.name(),
            node.system_id,
            primary.identity.system_id
        ),
    )
    .hint("only a new copy helps: pgrepctl clone-standby -D PGDATA --primary … --force (on the standby's host)"))
}

fn diverged(settings: &Settings, node: &Node, reason: &str) -> Error {
    let pgdata = match node.cluster() {
        Some(c) => c.data_dir.display().to_string(),
        None => "PGDATA".into(),
    };
    let on_host = if node.cluster().is_none() {
        " on the standby's host"
    } else {
        ""
    };
    Error::new(
        Code::Diverged,
        format!(
            "{} diverged from {}: {reason}",
            node.name(),
            settings.primary
        ),
    )
    .hint(format!(
        "it cannot stream from there; run pgrepctl rejoin -D {pgdata} --primary '{}'{on_host} (a rewind or a new copy)",
        settings.primary
    ))
}

/// Whether the WAL receiver streams from `target` now.
pub fn streams_from(receiver: Option<&Receiver>, target: &Target) -> bool {
    receiver.is_some_and(|r| {
        r.status == "streaming"
            && r.host.as_deref() == Some(target.host.as_str())
            && r.port == Some(target.port)
    })
}

/// The settings to write, in order.
fn settings_for(version: Version, current: &Current, want: &Wanted) -> Vec<(String, String)> {
    let mut out = vec![
        ("primary_conninfo".to_string(), want.conninfo.to_string()),
        ("recovery_target_timeline".into(), "latest".into()),
    ];
    // No slot: on 12+ an inherited one is set to '' (it may come from
    // postgresql.conf); on 10–11 the recovery.conf line goes.
    if !want.slot.is_empty() || (!version.recovery_conf() && !current.slot.is_empty()) {
        out.push(("primary_slot_name".into(), want.slot.to_string()));
    }
    out
}

/// The local files: recovery.conf (10–11) or postgresql.auto.conf, a
/// standby.signal a stopped 12+ standby lacks, and the passfile.
fn file_edits(node: &Node, pgdata: &Path, want: &Wanted) -> Result<Vec<FileEdit>> {
    let version = node.version;
    let files: &Files = &node.files;
    let wanted = settings_for(version, &node.current, want);
    let (name, old) = if version.recovery_conf() {
        ("recovery.conf", files.recovery_conf.clone())
    } else {
        ("postgresql.auto.conf", files.auto_conf.clone())
    };
    let path = pgdata.join(name);
    let parse_error = |e: crate::conf::ParseError| {
        Error::new(
            Code::ConfigParseError,
            format!("{}:{}: {}", path.display(), e.line, e.message),
        )
        .hint("fix that line (PostgreSQL would not start with it either) and rerun")
    };
    let mut text = old.clone().unwrap_or_else(|| {
        if version.recovery_conf() {
            "standby_mode = 'on'\n".into()
        } else {
            String::new()
        }
    });
    if want.slot.is_empty() && version.recovery_conf() {
        text = standby::drop_settings(&text, &["primary_slot_name"]).map_err(parse_error)?;
    }
    let new = standby::edit_auto_conf(&text, &wanted).map_err(parse_error)?;
    let mut edits = vec![];
    if old.as_deref() != Some(new.as_str()) {
        let summary = wanted
            .iter()
            .map(|(k, v)| match k.as_str() {
                "primary_conninfo" => format!("{k} = '{}'", conninfo::redacted(v)),
                _ => format!("{k} = '{v}'"),
            })
            .collect::<Vec<_>>()
            .join("; ");
        edits.push(FileEdit {
            path,
            old,
            new,
            summary,
            secret: false,
        });
    }
    if !version.recovery_conf() && !node.running() && !files.standby_signal {
        edits.push(FileEdit {
            path: pgdata.join("standby.signal"),
            old: None,
            new: String::new(),
            summary: "created: start as a standby".into(),
            secret: false,
        });
    }
    if let Some((path, line)) = &want.passfile {
        if files.passfile.as_deref() != Some(line.as_str()) {
            edits.push(FileEdit {
                path: path.clone(),
                old: files.passfile.clone(),
                new: line.clone(),
                summary: "password file for primary_conninfo (mode 0600)".into(),
                secret: true,
            });
        }
    }
    Ok(edits)
}

/// Remote mode: ALTER SYSTEM for each setting that differs from the live
/// one; recovery_target_timeline also when no configuration file says
/// `latest` (only PostgreSQL's default does), so that it is explicit.
fn alterations(current: &Current, want: &Wanted) -> Vec<Setting> {
    let mut out = vec![];
    if !conninfo::same(&current.conninfo, want.conninfo) {
        out.push(Setting {
            name: "primary_conninfo".into(),
            value: want.conninfo.to_string(),
            old: current.conninfo.clone(),
        });
    }
    if current.slot != want.slot {
        out.push(Setting {
            name: "primary_slot_name".into(),
            value: want.slot.to_string(),
            old: current.slot.clone(),
        });
    }
    if current.target_timeline != "latest" || !current.target_timeline_written {
        out.push(Setting {
            name: "recovery_target_timeline".into(),
            value: "latest".into(),
            old: current.target_timeline.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::Mode;
    use super::super::inspect::Place;
    use super::*;
    use crate::pg::cluster::LocalCluster;
    use crate::pg::replication::{Identity, ReplClient};
    use crate::tools::{BinDir, RunAs};
    use std::time::Duration;

    const FORK: u64 = 0x3000000;

    fn settings() -> Settings {
        Settings {
            mode: Mode::Local("/d".into()),
            primary: "host=new".into(),
            target: Target::parse("host=new port=5433").unwrap(),
            slot: None,
            password: None,
            wait: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            bindir: None,
            dry_run: false,
            probe_password: None,
        }
    }

    fn local(num: u32, running: bool) -> Place {
        let bindir = BinDir {
            path: "/usr/bin".into(),
            major: num / 10000,
        };
        Place::Local {
            cluster: LocalCluster::with_debian(Path::new("/d"), bindir, RunAs::default(), None),
            running,
        }
    }

    fn node(place: Place, num: u32, wal_end: u64) -> Node {
        Node {
            place,
            session: None,
            version: Version::new(num).unwrap(),
            system_id: "42".into(),
            timeline: 1,
            wal_end,
            switch_points: vec![],
            current: Current {
                conninfo: "host=old port=5432 user=rep application_name=s2".into(),
                slot: "old_slot".into(),
                target_timeline: "latest".into(),
                target_timeline_written: false,
            },
            files: Files {
                auto_conf: Some("primary_conninfo = 'host=old'\nprimary_slot_name = 'old_slot'\n".into()),
                recovery_conf: Some("standby_mode = 'on'\nprimary_conninfo = 'host=old'\nprimary_slot_name = 'old_slot'\n".into()),
                standby_signal: true,
                passfile: None,
            },
            receiver: None,
            postmaster_start: Some("t0".into()),
        }
    }

    fn primary() -> Primary {
        Primary {
            identity: Identity {
                system_id: "42".into(),
                timeline: 2,
                lsn: 2 * FORK,
            },
            version: Version::new(150000).unwrap(),
            standby: Some(false),
            switch_points: vec![(1, FORK)],
            slot_exists: None,
            client: ReplClient::new(
                RunAs::default(),
                "host=new port=5433 user=rep".into(),
                None,
                None,
                Duration::from_secs(1),
            )
            .unwrap(),
        }
    }

    fn run(n: &Node, conninfo: &str, slot: &str) -> Result<Decided> {
        let s = settings();
        let want = Wanted {
            conninfo,
            slot,
            target: &s.target,
            passfile: None,
            upstream_is_self: false,
            kept: None,
        };
        decide(&s, n, &primary(), &want)
    }

    const NEW: &str = "host=new port=5433 user=rep application_name=s2";

    #[test]
    fn reload_on_13_restart_before_and_recovery_conf_on_11() {
        let d = run(&node(local(150000, true), 150000, FORK), NEW, "").unwrap();
        assert_eq!(d.service, Service::Reload);
        assert_eq!(
            d.relation,
            Relation::BeforeFork {
                timeline: 1,
                fork: FORK
            }
        );
        let auto = &d.files[0].new;
        assert!(
            auto.contains(&format!("primary_conninfo = '{NEW}'")),
            "{auto}"
        );
        assert!(auto.contains("primary_slot_name = ''"), "{auto}");
        assert!(
            auto.contains("recovery_target_timeline = 'latest'"),
            "{auto}"
        );
        assert!(
            d.warnings.iter().any(|w| w.contains("old_slot")),
            "{:?}",
            d.warnings
        );

        let d = run(&node(local(120000, true), 120000, FORK), NEW, "").unwrap();
        assert_eq!(d.service, Service::Restart);

        let d = run(&node(local(110000, true), 110000, FORK), NEW, "s").unwrap();
        assert_eq!(d.service, Service::Restart);
        assert_eq!(d.slot.as_deref(), Some("s"));
        assert!(d.files[0].path.ends_with("recovery.conf"));
        let rc = &d.files[0].new;
        assert!(rc.starts_with("standby_mode = 'on'\n"), "{rc}");
        assert!(rc.contains("primary_slot_name = 's'"), "{rc}");
        let d = run(&node(local(110000, true), 110000, FORK), NEW, "").unwrap();
        assert!(
            !d.files[0].new.contains("primary_slot_name"),
            "{}",
            d.files[0].new
        );
    }

    #[test]
    fn a_standby_already_streaming_from_there_needs_nothing() {
        let mut n = node(local(150000, true), 150000, FORK);
        let first = run(&n, NEW, "").unwrap();
        n.files.auto_conf = Some(first.files[0].new.clone());
        n.receiver = Some(Receiver {
            status: "streaming".into(),
            host: Some("new".into()),
            port: Some(5433),
            timeline: Some(2),
            slot: None,
        });
        let d = run(&n, NEW, "").unwrap();
        assert_eq!((d.service, d.files.len(), d.slot), (Service::None, 0, None));
        // Configured but not streaming yet (a run stopped before the reload).
        n.receiver.as_mut().unwrap().port = Some(5432);
        assert_eq!(run(&n, NEW, "").unwrap().service, Service::Reload);
    }

    #[test]
    fn a_timeline_not_latest_yet_takes_a_restart_and_is_refused_remotely() {
        let mut n = node(local(150000, true), 150000, FORK);
        n.current.target_timeline = "current".into();
        assert_eq!(run(&n, NEW, "").unwrap().service, Service::Restart);
        let mut r = node(
            Place::Remote {
                target: "host=s2".into(),
            },
            150000,
            FORK,
        );
        r.current.target_timeline = "current".into();
        let e = run(&r, NEW, "").unwrap_err();
        assert_eq!(e.code, Code::Usage);
        assert!(e.hint.unwrap().contains("-D"));
        r.current.target_timeline = "latest".into();
        let d = run(&r, NEW, "").unwrap();
        let names: Vec<&str> = d.alter.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "primary_conninfo",
                "primary_slot_name",
                "recovery_target_timeline"
            ]
        );
        assert_eq!(d.service, Service::Reload);
    }

    #[test]
    fn a_stopped_standby_is_configured_and_started() {
        let mut n = node(local(160000, false), 160000, FORK);
        n.files.standby_signal = false;
        let d = run(&n, NEW, "").unwrap();
        assert_eq!(d.service, Service::Start);
        assert!(d.files.iter().any(|f| f.path.ends_with("standby.signal")));
    }

    #[test]
    fn refusals() {
        let e = run(&node(local(150000, true), 150000, FORK + 1), NEW, "").unwrap_err();
        assert_eq!(e.code, Code::Diverged);
        assert!(
            e.message.contains("diverged from host=new"),
            "{}",
            e.message
        );
        assert!(
            e.hint
                .unwrap()
                .contains("pgrepctl rejoin -D /d --primary 'host=new'")
        );
        let mut n = node(local(150000, true), 150000, FORK);
        n.system_id = "7".into();
        assert_eq!(run(&n, NEW, "").unwrap_err().code, Code::SystemIdMismatch);
    }
}
