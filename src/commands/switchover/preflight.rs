//! Whether the switchover may start, decided from the facts alone (no
//! I/O): everything here is what `--dry-run` shows, and a refusal changes
//! nothing. The checks follow the phase this node is in: a running primary
//! gets all of them; a rerun after an interruption only those that still
//! matter (the candidate is the same system and can still take over).

use super::Settings;
use super::inspect::{Facts, Node, Old, Phase, Sender};
use crate::conf::hba::{self, Match, MatchContext, ReplConn};
use crate::error::{Code, Error, Result};
use crate::pg::replication::format_lsn;
use crate::pg::walsender::{self, Found, Seen, SlotUse};
use crate::report::Outcome;
use serde::Serialize;
use std::net::IpAddr;

/// What the preflight decided, for the steps.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    #[serde(skip)]
    pub notes: Vec<String>,
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// The replication role this node streams from the candidate as.
    pub user: String,
    pub application_name: String,
    /// This node's slot on the candidate.
    pub slot: Option<String>,
    /// The candidate as this node's primary_conninfo names it.
    pub host: String,
    pub port: u16,
    /// The candidate's replay lag behind this node, in bytes (a running primary).
    pub lag: Option<u64>,
    pub siblings: Vec<SiblingPlan>,
    /// Slots here that the candidate and the siblings streamed through:
    /// once this node is a standby they would keep WAL for nobody.
    pub old_slots: Vec<String>,
}

/// How one sibling is repointed.
#[derive(Debug, Clone, Serialize)]
pub struct SiblingPlan {
    pub given: String,
    pub name: String,
    pub slot: Option<String>,
    /// The name it streams under (its synchronous_standby_names entry).
    pub application_name: Option<String>,
    /// 13+: repointed from here (ALTER SYSTEM and a reload); before, the
    /// follow command to run on its host is printed.
    pub remote: bool,
    /// It streams from the candidate already (a rerun): nothing to
    /// repoint, which the plan says.
    pub follows_candidate: bool,
}

impl Checked {
    pub fn report_into(&self, o: &mut Outcome) {
        o.detail("preflight", self);
    }
}

pub fn check(settings: &Settings, facts: &Facts) -> Result<Checked> {
    let (old, cand) = (&facts.old, &facts.candidate);
    same_system(old, cand)?;
    if !cand.superuser {
        return Err(Error::new(
            Code::NotSuperuser,
            format!(
                "{}: the role is not a superuser; switchover promotes the candidate and reads its pg_hba.conf",
                cand.name()
            ),
        )
        .hint("give --candidate as a superuser, e.g. 'host=… user=postgres'"));
    }
    let sender = match old.phase {
        Phase::Primary { .. } => Some(candidate_streams(old, cand)?),
        Phase::Standby if cand.in_recovery => {
            return Err(Error::new(
                Code::NotAStandby,
                format!(
                    "{} runs as a standby and the candidate {} is not a primary either",
                    old.cluster.data_dir.display(),
                    cand.name()
                ),
            )
            .hint("run switchover on the current primary's host, with -D its data directory"));
        }
        _ => None,
    };
    if cand.in_recovery && !cand.version.promote_via_sql() {
        return Err(Error::new(
            Code::UnsupportedVersion,
            format!(
                "the candidate runs PostgreSQL {}: a remote promotion needs pg_promote(), PostgreSQL 12 or later",
                cand.version.major()
            ),
        )
        .hint("switch over by hand: pgrepctl check, stop this primary (pg_ctl stop -m fast), pgrepctl promote -D … on the candidate's host, then pgrepctl rejoin -D … here"));
    }
    if matches!(old.phase, Phase::Stopped | Phase::Fenced) && cand.in_recovery {
        resumable(settings, old, cand)?;
    }
    let mut c = decide(settings, facts, sender.as_ref())?;
    if matches!(old.phase, Phase::Primary { .. }) {
        c.lag = Some(lag(settings, old, cand)?);
        capacity(cand, &c)?;
        accepts(facts, &c)?;
        synchronous(cand, &c)?;
        limits(old, cand)?;
    }
    Ok(c)
}

/// A stopped node is taken for a switchover to resume (the candidate
/// promoted; on failure, this node started again as the primary) only
/// when a switchover to this candidate stopped it and no other primary
/// came up since. Otherwise promoting the candidate could make a second
/// primary beside one promoted meanwhile (a failover), and a rollback
/// would start this node as one.
fn resumable(settings: &Settings, old: &Old, cand: &Node) -> Result<()> {
    // Where the fence points this node: the candidate as --candidate names it.
    let config = crate::pg::conninfo::resolve_node(&settings.candidate)?;
    let candidate = crate::pg::conninfo::first_host_port(&config);
    let fenced_to_candidate = old.leftover.upstream.as_ref() == Some(&candidate);
    let streaming = cand
        .receiver
        .as_ref()
        .is_some_and(|r| r.status == "streaming");
    let why = if cand.timeline != old.timeline {
        format!(
            "the candidate is on timeline {} and this node stopped on timeline {}: a standby was promoted since",
            cand.timeline, old.timeline
        )
    } else if streaming {
        "the candidate streams from a running server, which is not this stopped node: another primary (or upstream) is up".to_string()
    } else if fenced_to_candidate || old.leftover.marker {
        return Ok(());
    } else {
        "nothing in its configuration says a switchover to this candidate stopped it (no drain marker, no primary_conninfo naming the candidate): it was stopped by hand, or follows another primary".to_string()
    };
    Err(Error::new(
        Code::NotResumable,
        format!(
            "{} is stopped and there is no switchover of it to resume: {why}",
            old.cluster.data_dir.display()
        ),
    )
    .hint("to switch over, start this node as the primary and rerun; if another node is the primary now, bring this one back with pgrepctl rejoin -D … --primary … (and promote a standby only with pgrepctl promote on its host)"))
}

fn same_system(old: &Old, cand: &Node) -> Result<()> {
    if old.system_id != cand.system_id {
        return Err(Error::new(
            Code::SystemIdMismatch,
            format!(
                "the candidate {} is another database system (system identifier {}, here {})",
                cand.name(),
                cand.system_id,
                old.system_id
            ),
        )
        .hint("give --candidate a standby of this primary"));
    }
    if old.version.major() != cand.version.major() {
        return Err(Error::new(
            Code::VersionMismatch,
            format!(
                "the candidate runs PostgreSQL {} and this node {}",
                cand.version.major(),
                old.version.major()
            ),
        ));
    }
    Ok(())
}

/// Both views: the candidate's WAL receiver streams, and this primary has
/// a walsender in state streaming under the candidate's name (and, when
/// names repeat, from the candidate's address).
fn candidate_streams(old: &Old, cand: &Node) -> Result<Sender> {
    let not = |why: String| {
        Error::new(
            Code::StandbyNotStreaming,
            format!("the candidate {} does not stream from this primary: {why}", cand.name()),
        )
        .hint("make it stream first (pgrepctl check shows why it does not), or choose another --candidate")
    };
    if !cand.in_recovery && old.started.as_deref() == Some(cand.started.as_str()) {
        return Err(Error::new(
            Code::NotAStandby,
            format!("the candidate {} is this primary itself", cand.name()),
        )
        .hint("give --candidate a standby of this primary (pgrepctl check lists them)"));
    }
    if !cand.in_recovery {
        return Err(Error::new(
            Code::NotAStandby,
            format!(
                "the candidate {} is a primary, and so is this node: two primaries",
                cand.name()
            ),
        )
        .hint("stop writes to one of them now; pgrepctl check shows both timelines"));
    }
    let Some(r) = cand.receiver.as_ref().filter(|r| r.status == "streaming") else {
        return Err(not("its WAL receiver is not streaming".into()));
    };
    let name = r.application_name.as_deref().unwrap_or("(none)");
    let sender = sender_of(&old.senders, cand).ok_or_else(|| {
        let same = old
            .senders
            .iter()
            .filter(|s| s.application_name == name)
            .count();
        if same > 1 {
            return Error::new(
                Code::StandbyNotStreaming,
                format!("{same} walsenders here stream under application_name {name}, and which one is the candidate {}'s cannot be told (same address, no slot to tell them apart)", cand.name()),
            )
            .hint("give each standby a name of its own (on its host: pgrepctl clone-standby with its same --primary and -D, plus --application-name NAME; it restarts the standby) or a slot (pgrepctl follow -D PGDATA --primary … --slot NAME), then rerun");
        }
        not(format!(
            "pg_stat_replication here shows no walsender for application_name {name}"
        ))
    })?;
    if sender.state != "streaming" {
        return Err(not(format!(
            "its walsender here is in state {}",
            sender.state
        )));
    }
    if let Some(why) = silent(sender.reply_age, cand.status_interval) {
        return Err(not(why));
    }
    if cand.timeline != old.timeline {
        return Err(not(format!(
            "it is on timeline {} and this primary on {}",
            cand.timeline, old.timeline
        )));
    }
    Ok(sender.clone())
}

/// A WAL receiver that has not replied for much longer than its
/// wal_receiver_status_interval is stuck (a hung disk, a stopped process):
/// it would not confirm the shutdown checkpoint, and the switchover would
/// drain writes for nothing. Unknown (before 12, or periodic replies
/// turned off) is not a refusal.
pub fn silent(reply_age: Option<f64>, status_interval: f64) -> Option<String> {
    let age = reply_age?;
    let limit = 2.0 * status_interval + 5.0;
    (status_interval > 0.0 && age > limit).then(|| {
        format!(
            "its WAL receiver has not replied for {age:.0} s (wal_receiver_status_interval is {status_interval} s there): it may be stuck"
        )
    })
}

/// The walsender of a node that streams from this one (see
/// [`find_sender`]); none for a node without a WAL receiver. Its
/// receiver's slot is known (the sessions are a superuser's).
pub fn sender_of<'a>(senders: &'a [Sender], node: &Node) -> Option<&'a Sender> {
    let r = node.receiver.as_ref()?;
    find_sender(
        senders,
        r.application_name.as_deref(),
        node.own_addr,
        SlotUse::of(r.slot.as_deref()),
    )
}

/// The walsender for a standby, as [`walsender::find`] tells them apart:
/// by application_name, and when several share the name (the default is
/// the host's name, the same for two standbys of one host) by the
/// standby's address and slot. Without a name, or with more than one
/// that fits, there is no answer, never a guess: a wrong one would have
/// its slot dropped.
pub fn find_sender<'a>(
    senders: &'a [Sender],
    app: Option<&str>,
    addr: Option<IpAddr>,
    slot: SlotUse,
) -> Option<&'a Sender> {
    let seen: Vec<Seen> = senders
        .iter()
        .map(|s| Seen {
            application_name: &s.application_name,
            addr: s.addr,
            slot: s.slot.as_deref(),
        })
        .collect();
    let standby = walsender::Standby {
        application_name: Some(app?),
        addrs: addr.into_iter().collect(),
        slot,
    };
    match walsender::find(&seen, &standby) {
        Found::One(i) => Some(&senders[i]),
        Found::NotFound | Found::Ambiguous(_) => None,
    }
}

/// Names, slots and the siblings' plans.
fn decide(settings: &Settings, facts: &Facts, sender: Option<&Sender>) -> Result<Checked> {
    let (old, cand) = (&facts.old, &facts.candidate);
    let config = crate::pg::conninfo::resolve_node(&settings.candidate)?;
    let (host, port) = crate::pg::conninfo::first_host_port(&config);
    let (user, application_name, slot) = names(settings, facts, sender, (&host, port));
    // The slots here nobody will stream through: found by the walsenders
    // using them, else (a rerun: this node stopped or a standby) by the
    // names the candidate and the siblings are configured with. Only
    // inactive ones are dropped.
    let mut old_slots: Vec<String> = sender
        .and_then(|s| s.slot.as_deref())
        .or(cand.upstream_slot())
        .map(str::to_string)
        .into_iter()
        .collect();
    let mut siblings = vec![];
    let mut notes = vec![];
    for s in &facts.siblings {
        same_system(old, s)?;
        let plan = sibling(s, (&host, port))?;
        if let Some(sl) = sender_of(&old.senders, s)
            .and_then(|x| x.slot.as_deref())
            .or(s.upstream_slot())
            // A sibling repointed by hand later (before 13) cascades from
            // this node until then: its slot here stays.
            .filter(|_| plan.remote)
        {
            old_slots.push(sl.to_string());
        }
        if !plan.remote {
            notes.push(format!(
                "{} runs PostgreSQL {}: it is repointed on its own host (the command is printed at the end)",
                plan.name,
                s.version.major()
            ));
        }
        siblings.push(plan);
    }
    old_slots.retain(|s| old.slots.as_ref().is_none_or(|here| here.contains(s)));
    let mut warnings = vec![];
    for w in unlisted(old, sender, facts) {
        warnings.push(w);
    }
    warnings.extend(archiving(old, cand));
    Ok(Checked {
        notes,
        warnings,
        user,
        application_name,
        slot,
        host,
        port,
        lag: None,
        siblings,
        old_slots,
    })
}

/// The role, application_name and slot this node streams with from the
/// candidate: the flags', else (a rerun after the fence) what the
/// interrupted run wrote, else the candidate's own towards this node.
fn names(
    settings: &Settings,
    facts: &Facts,
    sender: Option<&Sender>,
    (host, port): (&str, u16),
) -> (String, String, Option<String>) {
    let (old, cand) = (&facts.old, &facts.candidate);
    // A rerun after the fence keeps what the interrupted run wrote there.
    let fenced = Some(old.leftover.names.clone())
        .filter(|_| old.leftover.upstream == Some((host.to_string(), port)))
        .unwrap_or_default();
    let user = cand
        .receiver
        .as_ref()
        .and_then(|r| r.user.clone())
        .or_else(|| sender.map(|s| s.user.clone()))
        .or(fenced.user)
        .or_else(|| cand.upstream_user().map(str::to_string))
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "replicator".into());
    let application_name = settings
        .application_name
        .as_ref()
        .map(|a| a.as_str().to_string())
        .or(fenced.application_name)
        .unwrap_or_else(|| crate::net::host_name().unwrap_or_else(|| "old_primary".into()));
    // The candidate streams through a slot here (or did, before this node
    // stopped or it was promoted): this node gets one there.
    let slot = settings
        .slot
        .as_ref()
        .map(|s| s.as_str().to_string())
        .or(fenced.slot)
        .or_else(|| cand.upstream_slot().map(|_| slot_name(&application_name)));
    (user, application_name, slot)
}

fn sibling(s: &Node, candidate: (&str, u16)) -> Result<SiblingPlan> {
    if !s.in_recovery {
        return Err(Error::new(
            Code::NotAStandby,
            format!("the sibling {} is a primary, not a standby", s.name()),
        )
        .hint("--sibling names the other standbys of this primary"));
    }
    if !s.superuser {
        return Err(Error::new(
            Code::NotSuperuser,
            format!(
                "{}: the role is not a superuser; repointing a sibling takes ALTER SYSTEM",
                s.name()
            ),
        )
        .hint("give --sibling as a superuser, e.g. 'host=… user=postgres'"));
    }
    Ok(SiblingPlan {
        given: s.given.clone(),
        name: s.name().to_string(),
        slot: s.upstream_slot().map(str::to_string),
        application_name: s.upstream_application_name().map(str::to_string),
        remote: s.version.primary_conninfo_reloads(),
        follows_candidate: s.receiver.as_ref().is_some_and(|r| {
            r.status == "streaming"
                && r.upstream
                    .as_ref()
                    .is_some_and(|(h, p)| (h.as_str(), *p) == candidate)
        }),
    })
}

/// Standbys streaming from here that are neither the candidate nor a
/// sibling: they stay connected to this node, which becomes a standby, so
/// they cascade from it.
fn unlisted(old: &Old, cand: Option<&Sender>, facts: &Facts) -> Vec<String> {
    let listed: Vec<&Sender> = facts
        .siblings
        .iter()
        .filter_map(|s| sender_of(&old.senders, s))
        .chain(cand)
        .collect();
    old.senders
        .iter()
        .filter(|s| {
            !listed
                .iter()
                .any(|l| l.application_name == s.application_name && l.addr == s.addr)
        })
        .map(|s| {
            format!(
                "the standby {} ({}) streams from here and is not given with --sibling: it will cascade from this node once it is a standby",
                s.application_name,
                s.addr.map(|a| a.to_string()).unwrap_or_else(|| "local".into())
            )
        })
        .collect()
}

fn lag(settings: &Settings, old: &Old, cand: &Node) -> Result<u64> {
    if cand.paused {
        return Err(Error::new(
            Code::PrimaryNotReady,
            format!("the candidate {} has WAL replay paused", cand.name()),
        )
        .hint("resume it there (SELECT pg_wal_replay_resume()) and rerun"));
    }
    if cand.apply_delay_ms > 0 {
        return Err(Error::new(
            Code::PrimaryNotReady,
            format!(
                "the candidate {} is a delayed standby (recovery_min_apply_delay = {} ms): it would not replay the shutdown checkpoint in time",
                cand.name(),
                cand.apply_delay_ms
            ),
        )
        .hint("choose a standby without a replay delay as --candidate"));
    }
    let replay = cand.replay.unwrap_or(0);
    let lag = old.lsn.saturating_sub(replay);
    if lag > settings.max_lag {
        return Err(Error::new(
            Code::PrimaryNotReady,
            format!(
                "the candidate {} has received up to {} and replayed up to {}, and this primary is at {}: {} behind, more than --max-lag {}",
                cand.name(),
                format_lsn(cand.receive.unwrap_or(0)),
                format_lsn(replay),
                format_lsn(old.lsn),
                crate::units::human_bytes(lag),
                crate::units::human_bytes(settings.max_lag)
            ),
        )
        .hint("wait until it catches up (pgrepctl check shows the lag), or raise --max-lag: writes stay paused while it catches up"));
    }
    Ok(lag)
}

/// Walsenders and slots the candidate will need as the primary.
fn capacity(cand: &Node, c: &Checked) -> Result<()> {
    let senders = 1 + c.siblings.len() as i64;
    let free = cand.max_wal_senders - cand.senders_in_use;
    if free < senders {
        return Err(Error::new(
            Code::PrimaryNotReady,
            format!(
                "the candidate {} has {free} free walsender(s) (max_wal_senders = {}) and needs {senders}: this node and {} sibling(s)",
                cand.name(),
                cand.max_wal_senders,
                c.siblings.len()
            ),
        )
        .hint("raise max_wal_senders on the candidate (a restart) and rerun"));
    }
    let slots = c
        .slot
        .iter()
        .chain(c.siblings.iter().filter_map(|s| s.slot.as_ref()))
        .filter(|s| !cand.slots.contains(s))
        .count() as i64;
    if cand.max_slots - (cand.slots.len() as i64) < slots {
        return Err(Error::new(
            Code::PrimaryNotReady,
            format!(
                "the candidate {} has {} free replication slot(s) (max_replication_slots = {}) and needs {slots}",
                cand.name(),
                cand.max_slots - cand.slots.len() as i64,
                cand.max_slots
            ),
        )
        .hint("raise max_replication_slots on the candidate (a restart) and rerun"));
    }
    Ok(())
}

/// The candidate's pg_hba.conf must let this node and each sibling in
/// over replication, as their roles, from the addresses it sees them at.
fn accepts(facts: &Facts, c: &Checked) -> Result<()> {
    let cand = &facts.candidate;
    let Some(text) = facts.candidate_hba.as_deref() else {
        return Ok(());
    };
    let file =
        hba::parse_with(text, hba::Syntax::for_version(cand.version.num())).map_err(|e| {
            Error::new(
                Code::ConfigParseError,
                format!(
                    "the candidate's pg_hba.conf, line {}: {}",
                    e.line, e.message
                ),
            )
        })?;
    let mut who = vec![("this node".to_string(), c.user.clone(), cand.our_addr)];
    for (s, node) in facts.siblings.iter().zip(&c.siblings) {
        let user = s
            .receiver
            .as_ref()
            .and_then(|r| r.user.clone())
            .unwrap_or_else(|| c.user.clone());
        let addr = sender_of(&facts.old.senders, s)
            .and_then(|x| x.addr)
            .or(s.own_addr);
        who.push((format!("the sibling {}", node.name), user, addr));
    }
    if c.host.starts_with('/') {
        let os_user = os_user_of(&facts.old.cluster.data_dir);
        if let Some(why) = refused_on_socket(&file, &c.user, &os_user) {
            return Err(Error::new(
                Code::HbaRejected,
                format!(
                    "the candidate {} would refuse this node's replication connection as {} over the socket in {}: {why}",
                    cand.name(),
                    c.user,
                    c.host
                ),
            )
            .hint("give --candidate by a TCP address (host=127.0.0.1 or the host's address) that the candidate's pg_hba.conf lets the role in from, or add a local replication line for the role with scram-sha-256 on the candidate, then rerun"));
        }
    }
    for (name, user, addr) in who {
        let Some(addr) = addr else { continue };
        if let Some(line) = refused_by(&file, &user, addr, cand.ssl) {
            return Err(Error::new(
                Code::HbaRejected,
                format!(
                    "the candidate {} would refuse {name}'s replication connection as {user} from {addr}: {line}",
                    cand.name()
                ),
            )
            .hint(format!(
                "on the candidate's host run pgrepctl init-master -D PGDATA --allow {}/{} (it adds the line and reloads), then rerun",
                addr,
                if addr.is_ipv4() { 32 } else { 128 }
            )));
        }
    }
    Ok(())
}

/// Why the file would refuse a replication connection over the Unix
/// socket as `role` from a server that runs as the OS user `os_user`
/// (None: a record lets it in, or whether one does cannot be told). peer
/// (and ident, which is peer on a socket) lets in only the role named like
/// the OS user, unless a user name map says otherwise.
pub fn refused_on_socket(file: &hba::HbaFile, role: &str, os_user: &str) -> Option<String> {
    let ctx = MatchContext::default();
    for rec in file.records() {
        match hba::local_record_matches(&rec, role, &ctx) {
            Match::No => continue,
            Match::Maybe => return None,
            Match::Yes if rec.method == "reject" => {
                return Some(format!("line {} rejects it", rec.line));
            }
            Match::Yes
                if matches!(rec.method.as_str(), "peer" | "ident")
                    && role != os_user
                    && !rec.options.iter().any(|o| o.starts_with("map=")) =>
            {
                return Some(format!(
                    "line {} authenticates by {}, and this node's server runs as the OS user {os_user}, not {role}",
                    rec.line, rec.method
                ));
            }
            Match::Yes => return None,
        }
    }
    Some("no local replication line matches".into())
}

/// This primary archives its WAL and the candidate would not once
/// promoted (`archive_mode = off`): the archive would silently stop
/// growing at the switchover, and a restore or a standby's catch-up from
/// it would find nothing after it.
fn archiving(old: &Old, cand: &Node) -> Option<String> {
    let ours = old.archive_mode.as_deref()?;
    (ours != "off" && cand.archive_mode == "off").then(|| format!(
        "this primary archives its WAL (archive_mode = {ours}) and the candidate {} does not (archive_mode = off): nothing is archived after the switchover; set archive_mode and archive_command on the candidate (pgrepctl init-master -D PGDATA --archive-dir DIR on its host, then a restart)",
        cand.name()
    ))
}

/// The name of the OS user a data directory belongs to (the user its
/// server runs as).
fn os_user_of(data_dir: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(data_dir)
        .ok()
        .and_then(|m| nix::unistd::User::from_uid(m.uid().into()).ok().flatten())
        .map(|u| u.name)
        .unwrap_or_else(|| "postgres".into())
}

/// Why the file would refuse the connection (None: a record lets it in,
/// or whether one does cannot be told from the file).
pub fn refused_by(file: &hba::HbaFile, role: &str, addr: IpAddr, ssl: bool) -> Option<String> {
    let conn = ReplConn {
        role: role.to_string(),
        addr: ipnet::IpNet::from(addr),
        ssl,
    };
    let ctx = MatchContext::default();
    for rec in file.records() {
        match hba::record_matches(&rec, &conn, &ctx) {
            Match::No => continue,
            Match::Maybe => return None,
            Match::Yes if rec.method == "reject" => {
                return Some(format!("line {} rejects it", rec.line));
            }
            Match::Yes => return None,
        }
    }
    Some("no replication line matches".into())
}

/// After the swap the candidate's own synchronous_standby_names applies:
/// commits there must not wait for standbys that will not be connected.
fn synchronous(cand: &Node, c: &Checked) -> Result<()> {
    if cand.sync_names.trim().is_empty() {
        return Ok(());
    }
    let names = crate::pg::sync_names::parse(&cand.sync_names).map_err(|e| {
        Error::new(
            Code::ConfigParseError,
            format!("the candidate's synchronous_standby_names: {e}"),
        )
    })?;
    let mut connected: Vec<String> = vec![c.application_name.clone()];
    connected.extend(c.siblings.iter().filter_map(|s| s.application_name.clone()));
    let refs: Vec<&str> = connected.iter().map(String::as_str).collect();
    if let Some(why) = crate::pg::sync_names::writes_block(&names, &refs) {
        return Err(Error::new(Code::PrimaryNotReady, format!("on the candidate {}: {why}", cand.name()))
            .hint("set synchronous_standby_names on the candidate to names that will stream from it (ALTER SYSTEM, reload), or empty it, and rerun"));
    }
    Ok(())
}

/// This node becomes a hot standby of the candidate: its hot-standby
/// settings must be at least the candidate's.
fn limits(old: &Old, cand: &Node) -> Result<()> {
    if !old.hot_standby {
        return Err(Error::new(
            Code::PrimaryNotReady,
            "hot_standby is off here: as the candidate's standby this node would take no connections, and nothing could show that it streams",
        )
        .hint("ALTER SYSTEM SET hot_standby = on (it takes effect when the node starts as a standby) and rerun"));
    }
    let low = crate::pg::standby_limits::too_low(old.version.num(), &old.limits, &cand.limits);
    if low.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        Code::PrimaryNotReady,
        format!(
            "this node could not run as a hot standby of the candidate: {}",
            low.join("; ")
        ),
    )
    .hint("raise those settings here (ALTER SYSTEM, a restart) or lower them on the candidate, and rerun"))
}

/// A slot name from an application name: lower case letters, digits and
/// underscores, at most 63 bytes.
pub fn slot_name(app: &str) -> String {
    let mut s: String = app
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    s.truncate(63);
    if s.is_empty() {
        "old_primary".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(app: &str, addr: &str) -> Sender {
        Sender {
            application_name: app.into(),
            user: "replicator".into(),
            addr: addr.parse().ok(),
            state: "streaming".into(),
            slot: None,
            reply_age: None,
        }
    }

    #[test]
    fn a_silent_receiver_is_refused() {
        assert_eq!(silent(None, 10.0), None);
        assert_eq!(silent(Some(3.0), 10.0), None);
        assert_eq!(silent(Some(25.0), 10.0), None);
        assert!(silent(Some(26.0), 10.0).unwrap().contains("26 s"));
        assert_eq!(silent(Some(600.0), 0.0), None, "replies turned off");
        assert!(silent(Some(8.0), 1.0).is_some());
    }

    #[test]
    fn senders_are_found_by_name_then_address_and_slot() {
        let slotted = |app: &str, addr: &str, slot: &str| Sender {
            slot: Some(slot.into()),
            ..sender(app, addr)
        };
        let s = [
            sender("a", "10.0.0.2"),
            sender("b", "10.0.0.3"),
            sender("b", "10.0.0.4"),
            // Two standbys of one host under its name (the default).
            slotted("vm", "127.0.0.1", "xa"),
            slotted("vm", "127.0.0.1", "xc"),
        ];
        let ip = |a: &str| a.parse::<IpAddr>().ok();
        assert_eq!(
            find_sender(&s, Some("a"), None, SlotUse::Unknown)
                .unwrap()
                .application_name,
            "a"
        );
        assert!(find_sender(&s, Some("c"), None, SlotUse::Unknown).is_none());
        let b = find_sender(&s, Some("b"), ip("10.0.0.4"), SlotUse::Unknown).unwrap();
        assert_eq!(b.addr, ip("10.0.0.4"));
        assert!(find_sender(&s, Some("b"), None, SlotUse::NoSlot).is_none());
        let local = ip("127.0.0.1");
        let xc = find_sender(&s, Some("vm"), local, SlotUse::Named("xc")).unwrap();
        assert_eq!(xc.slot.as_deref(), Some("xc"));
        // Same name, same address, no slot to tell them apart: no guess.
        assert!(find_sender(&s, Some("vm"), local, SlotUse::Unknown).is_none());
        assert!(find_sender(&s, Some("vm"), local, SlotUse::Named("other")).is_none());
    }

    #[test]
    fn hba_refusals_name_the_line() {
        let file = hba::parse(
            "local all all peer\n\
             host replication replicator 10.0.0.9/32 reject\n\
             host replication replicator 10.0.0.0/24 scram-sha-256\n",
        )
        .unwrap();
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(refused_by(&file, "replicator", a("10.0.0.2"), false), None);
        assert_eq!(
            refused_by(&file, "replicator", a("10.0.0.9"), false).unwrap(),
            "line 2 rejects it"
        );
        assert!(
            refused_by(&file, "replicator", a("192.168.1.1"), false)
                .unwrap()
                .contains("no replication line")
        );
        assert!(refused_by(&file, "other", a("10.0.0.2"), false).is_some());
    }

    #[test]
    fn socket_refusals_know_peer_authentication() {
        // Debian's pg_hba.conf as pg_createcluster writes it.
        let debian = hba::parse(
            "local all postgres peer\n\
             local all all peer\n\
             host all all 127.0.0.1/32 scram-sha-256\n\
             local replication all peer\n\
             host replication all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        let why = refused_on_socket(&debian, "replicator", "postgres").unwrap();
        assert!(why.contains("line 4 authenticates by peer"), "{why}");
        assert!(why.contains("OS user postgres, not replicator"), "{why}");
        // The role named like the server's OS user passes peer.
        assert_eq!(refused_on_socket(&debian, "postgres", "postgres"), None);
        let allowed =
            |text: &str| refused_on_socket(&hba::parse(text).unwrap(), "replicator", "postgres");
        assert_eq!(allowed("local replication all peer map=repl\n"), None);
        assert_eq!(
            allowed("local replication replicator scram-sha-256\nlocal replication all peer\n"),
            None
        );
        assert_eq!(
            allowed("local replication all reject\n").unwrap(),
            "line 1 rejects it"
        );
        // `all` in the database column is no replication line.
        assert!(
            allowed("local all all trust\n")
                .unwrap()
                .contains("no local replication line")
        );
        // TCP lines do not decide a socket connection.
        assert!(allowed("host replication all 127.0.0.1/32 trust\n").is_some());
    }

    #[test]
    fn slot_names_are_valid() {
        assert_eq!(slot_name("db-1.example"), "db_1_example");
        assert_eq!(slot_name(""), "old_primary");
        assert_eq!(slot_name(&"x".repeat(80)).len(), 63);
    }
}
