//! What rejoin needs to know before it changes anything, all read-only:
//! the node (stopped, or already streaming from the new primary), its
//! control data, timeline history and WAL end; and the new primary, asked
//! over a real replication connection with the standby's own credentials
//! (IDENTIFY_SYSTEM, TIMELINE_HISTORY), so a node that would not be let in
//! is refused here rather than after a rewind.

use super::Args;
use crate::commands::clone_standby;
use crate::conf::pgconf;
use crate::error::{Code, Error, Result};
use crate::pg::cluster::{Ctl, LocalCluster};
use crate::pg::controldata::ControlData;
use crate::pg::replication::{Identity, ReplClient, format_lsn};
use crate::pg::timeline::{self, History, Relation};
use crate::pg::version::Version;
use crate::report::{Outcome, Printer};
use crate::secret::Secret;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The standby's credentials and configuration, resolved as clone-standby
/// resolves them (the same conninfo, password file and slot rules).
pub struct Settings {
    pub standby: clone_standby::Settings,
    /// The password the replication connections use: --password-file's,
    /// else the one the node's own passfile holds for the new primary.
    pub password: Option<Secret>,
}

impl Settings {
    pub fn from_args(args: &Args) -> Result<Settings> {
        let standby = clone_standby::Settings::from_args(clone_standby::Args {
            primary: args.primary.clone(),
            pgdata: args.pgdata.clone(),
            password: args.password.clone(),
            passfile: None,
            password_in_conninfo: false,
            slot: args.slot.clone(),
            application_name: args.application_name.clone(),
            port: None,
            listen: None,
            bindir: args.bindir.clone(),
            force: false,
            max_rate: None,
            compress: "auto".into(),
            no_start: false,
            wait: args.wait,
            connect_timeout: args.connect_timeout,
            restore_dir: None,
            restore_command: None,
            archive_cleanup: false,
            sslrootcert: None,
            allow_insecure: false,
            dry_run: args.dry_run,
        })?;
        Ok(Settings {
            password: standby.password.clone(),
            standby,
        })
    }

    /// Without --password-file, the passfile the node's own
    /// primary_conninfo names (a former standby) serves the new primary
    /// too when it holds a line for it; it is kept in the new conninfo.
    fn adopt_passfile(&mut self, data_dir: &Path) {
        if self.standby.password.is_some() {
            return;
        }
        let Some(passfile) = existing_passfile(data_dir) else {
            return;
        };
        let c = &self.standby.conninfo;
        let found = crate::pg::pgpass::replication_password(&passfile, &c.host, c.port, &c.user);
        if let Some(pw) = found {
            self.password = Some(Secret::new(pw));
            self.standby.conninfo.passfile = Some(passfile.display().to_string());
        }
    }

    /// The replication client for the new primary, as the standby's
    /// walreceiver will connect (its OS user, its password).
    pub fn client(&self, cluster: &LocalCluster) -> Result<ReplClient> {
        let line = self
            .password
            .as_ref()
            .map(|p| crate::conf::standby::passfile_line(&self.standby.conninfo.user, p.expose()));
        ReplClient::new(
            cluster.run_as,
            self.standby.preflight_conninfo(),
            self.password.clone(),
            line.as_deref(),
            self.standby.connect_timeout,
        )
    }
}

/// The passfile named by the node's primary_conninfo (postgresql.auto.conf
/// from 12, recovery.conf or recovery.done before), if it exists.
fn existing_passfile(data_dir: &Path) -> Option<PathBuf> {
    ["postgresql.auto.conf", "recovery.conf", "recovery.done"]
        .iter()
        .filter_map(|name| {
            let text = std::fs::read_to_string(data_dir.join(name)).ok()?;
            let conf = pgconf::parse(&text).ok()?;
            let (_, value) = conf.setting_at(conf.last_active("primary_conninfo")?)?;
            crate::pg::conninfo::for_client(&value).1
        })
        .find(|p| p.is_file())
}

pub struct Facts {
    pub cluster: LocalCluster,
    pub version: Version,
    pub primary: Identity,
    pub node: Node,
}

/// The node as found.
pub enum Node {
    /// Running as a standby that streams from the new primary on its
    /// timeline: rejoined already.
    Following,
    Stopped(Box<Stopped>),
    /// Stopped, but its pg_control cannot be read here (this major's
    /// binaries lack pg_controldata): only a new copy is possible, and
    /// only with --reclone-on-failure.
    Unreadable {
        why: String,
    },
}

pub struct Stopped {
    pub control: ControlData,
    /// Where its WAL ends (None: not shut down cleanly).
    pub end: Option<u64>,
    /// Whether it can stream from the primary as it is (None: unknown
    /// until crash recovery has run).
    pub relation: Option<Relation>,
    /// Where the new primary left the node's timeline.
    pub fork: Option<u64>,
    /// Bytes in the data directory, what a re-clone copies.
    pub data_bytes: u64,
}

impl Stopped {
    /// WAL the node wrote past the fork: exact for a clean shutdown, at
    /// least this much (up to its last checkpoint) otherwise.
    pub fn divergence(&self) -> Option<u64> {
        let end = self.end.unwrap_or(self.control.checkpoint_lsn);
        self.fork.map(|f| end.saturating_sub(f))
    }
}

impl Facts {
    pub fn stopped(&self) -> Option<&Stopped> {
        match &self.node {
            Node::Stopped(s) => Some(s),
            Node::Following | Node::Unreadable { .. } => None,
        }
    }

    pub fn report_into(&self, o: &mut Outcome) {
        o.detail("data_directory", &self.cluster.data_dir);
        o.detail(
            "primary",
            serde_json::json!({
                "system_identifier": self.primary.system_id,
                "timeline": self.primary.timeline,
                "lsn": format_lsn(self.primary.lsn),
            }),
        );
        let s = match &self.node {
            Node::Stopped(s) => s,
            Node::Following => return o.detail("following", true),
            Node::Unreadable { why } => return o.detail("node", why),
        };
        o.detail(
            "node",
            serde_json::json!({
                "timeline": s.control.timeline,
                "state": format!("{:?}", s.control.state).to_lowercase(),
                "clean_shutdown": s.end.is_some(),
                "wal_end": s.end.map(format_lsn),
                "checkpoint_lsn": format_lsn(s.control.checkpoint_lsn),
                "data_checksums": s.control.data_checksums,
                "wal_log_hints": s.control.wal_log_hints,
                "data_directory_bytes": s.data_bytes,
            }),
        );
        o.detail("fork_lsn", s.fork.map(format_lsn));
        o.detail("divergence_bytes", s.divergence());
    }
}

/// After the node rejoined: the replication slots it still has in its own
/// pg_replslot (a node that followed without a rewind keeps those it had
/// as a primary) would keep WAL forever on a standby; say so.
pub fn warn_own_slots(data_dir: &std::path::Path, o: &mut Outcome) {
    let slots = own_slots(data_dir);
    if slots.is_empty() {
        return;
    }
    let drops = slots
        .iter()
        .map(|n| {
            format!(
                "SELECT pg_drop_replication_slot({});",
                crate::pg::sql::literal(n)
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    o.warnings.push(format!(
        "the node still has replication slots ({}): on a standby an unused slot keeps WAL forever; drop those no cascading standby uses, on the node: {drops}",
        slots.join(", ")
    ));
}

fn own_slots(data_dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir.join("pg_replslot"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("state").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub async fn inspect(args: &Args, settings: &mut Settings, printer: &Printer) -> Result<Facts> {
    crate::pg::cluster::major_of(&args.pgdata)?;
    let cluster = LocalCluster::open(&settings.standby.pgdata, settings.standby.bindir.as_deref())?;
    let version = Version::of(cluster.bindir.major * 10000);
    settings.adopt_passfile(&cluster.data_dir);
    let repl = settings.client(&cluster)?;
    printer.info(format!(
        "asking the new primary {} as {}",
        settings.standby.primary_name(),
        repl.user()
    ));
    let (primary, primary_version, points, standby) = ask_primary(&repl).await?;
    if primary_version.major() != version.major() {
        return Err(Error::new(
            Code::VersionMismatch,
            format!(
                "the new primary runs PostgreSQL {} and {} is a {} data directory",
                primary_version.major(),
                cluster.data_dir.display(),
                version.major()
            ),
        )
        .hint("a standby must run the same major as its primary: give the right primary"));
    }
    let primary_history = History::new(&points, primary.timeline);
    if cluster.running().is_some() {
        following(&cluster, settings, &primary, version).await?;
        return Ok(Facts {
            cluster,
            version,
            primary,
            node: Node::Following,
        });
    }
    // A stopped node only: one that runs already streams (a rerun) or is
    // refused above for running.
    if standby == Some(true) {
        return Err(Error::new(
            Code::NotAPrimary,
            format!(
                "{} is a standby (in recovery), not a new primary: following it would leave this node and it with no primary to stream from, and a re-clone would copy what it has replayed so far",
                settings.standby.primary_name()
            ),
        )
        .hint("promote the new primary first (pgrepctl promote on its host), then run rejoin again with it as --primary"));
    }
    let node = match stopped(&cluster, settings, &primary, &primary_history) {
        Ok(s) => Node::Stopped(Box::new(s)),
        Err(e) if e.code == Code::ToolNotFound && args.reclone_on_failure => {
            Node::Unreadable { why: e.message }
        }
        Err(e) if e.code == Code::ToolNotFound => {
            return Err(e.hint(
                "pass --bindir with this major's server programs, or --reclone-on-failure to copy the node anew (the old directory is kept aside)",
            ));
        }
        Err(e) => return Err(e),
    };
    Ok(Facts {
        cluster,
        version,
        primary,
        node,
    })
}

/// IDENTIFY_SYSTEM, the server's version, the history of its timeline,
/// and whether it is in recovery (None: cannot tell).
async fn ask_primary(
    repl: &ReplClient,
) -> Result<(Identity, Version, Vec<(u32, u64)>, Option<bool>)> {
    let mut conn = repl.connect().await.map_err(|e| repl.error(&e))?;
    let answer = async {
        let identity = conn.identify_system().await?;
        let version = conn.version().await?;
        let standby = conn.in_recovery().await?;
        let points = if identity.timeline > 1 {
            conn.timeline_history(identity.timeline)
                .await?
                .switch_points()
        } else {
            vec![]
        };
        Ok((identity, version, points, standby))
    }
    .await;
    conn.close().await;
    answer.map_err(|e| repl.error(&e))
}

/// A running node is fine only when it already streams from the new
/// primary on its timeline (a rerun); otherwise it must be stopped first,
/// by the DBA: it may be a primary holding writes.
async fn following(
    cluster: &LocalCluster,
    settings: &Settings,
    primary: &Identity,
    version: Version,
) -> Result<()> {
    let session = cluster.session(Duration::from_secs(5)).await?;
    let row = session
        .client
        .query_one(&receiver_query(version), &[])
        .await
        .map_err(|e| crate::pg::query_error(&session.target, &e))?;
    let in_recovery: bool = row.get(0);
    let status: Option<String> = row.get(1);
    let tli: Option<i32> = row.get(2);
    let host: Option<String> = row.get(3);
    let port: Option<i32> = row.get(4);
    let c = &settings.standby.conninfo;
    let same_sender = match (host, port) {
        (Some(h), Some(p)) => h == c.host && p == i32::from(c.port),
        _ => true,
    };
    let streams = in_recovery
        && status.as_deref() == Some("streaming")
        && tli == i32::try_from(primary.timeline).ok()
        && same_sender;
    if streams {
        return Ok(());
    }
    let what = if in_recovery {
        "a standby that does not stream from the new primary on its timeline"
    } else {
        "a primary"
    };
    Err(Error::new(
        Code::PostmasterRunning,
        format!(
            "a server runs on {} ({what}): rejoin needs it stopped",
            cluster.data_dir.display()
        ),
    )
    .hint(format!(
        "stop it yourself once it takes no more writes ({}), then rerun",
        cluster.ctl_command(Ctl::Stop, Duration::from_secs(60)).1
    )))
}

/// Recovery, and the WAL receiver's state, timeline and sender (11+).
fn receiver_query(version: Version) -> String {
    let sender = if version.receiver_shows_sender() {
        "w.sender_host, w.sender_port"
    } else {
        "NULL::text, NULL::int"
    };
    format!(
        "SELECT pg_is_in_recovery(), w.status, w.received_tli, {sender} \
         FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver w ON true"
    )
}

/// The stopped node's facts, and the refusals that need no more than
/// them: another system, which only a new copy can replace.
fn stopped(
    cluster: &LocalCluster,
    settings: &Settings,
    primary: &Identity,
    primary_history: &History,
) -> Result<Stopped> {
    let control = cluster.control_data()?;
    if control.system_identifier.to_string() != primary.system_id {
        return Err(Error::new(
            Code::SystemIdMismatch,
            format!(
                "{} belongs to database system {}, the new primary to {}: no rewind can join them",
                cluster.data_dir.display(),
                control.system_identifier,
                primary.system_id
            ),
        )
        .hint(format!(
            "only a new copy helps: pgrepctl clone-standby --force --primary '{}' -D {} (it replaces the directory)",
            settings.standby.preflight_conninfo(),
            cluster.data_dir.display()
        )));
    }
    let points = timeline::local_switch_points(&cluster.data_dir, control.timeline)
        .map_err(|e| Error::io("cannot read the node's timeline history", e))?;
    let history = History::new(&points, control.timeline);
    let end = timeline::stopped_end(&control);
    let relation = end.map(|e| timeline::relation(&history, e, primary_history, primary.lsn));
    let fork = primary_history.left_at(history.current());
    Ok(Stopped {
        data_bytes: dir_bytes(&cluster.data_dir),
        control,
        end,
        relation,
        fork,
    })
}

/// The size of the files under `dir` (symbolic links not followed): what
/// a new copy would move.
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => todo.push(e.path()),
                Ok(m) if m.is_file() => total += m.len(),
                _ => {}
            }
        }
    }
    total
}
