//! The links of the chain: each standby with the wal sender it streams
//! from, judged from both ends, and the wal senders no given standby
//! claimed, judged from the sending side.

use super::super::chain::effective_app_name;
use super::super::inspect::{Data, Sender, lsn_diff};
use super::codes::*;
use super::{Chain, Link, add_opt, lag_findings, max_opt, time_lag};
use crate::health::{Pair, Report, Role, Status};

/// The pairs of the standbys given, in the order they were given, and each
/// node's time lag behind the primary (for the links below it). Time lag
/// adds up along the chain, so a cascade's comes after its upstream's.
pub(super) fn standby_pairs(r: &mut Report, chain: &Chain) -> (Vec<Pair>, Vec<Option<f64>>) {
    let facts = chain.facts;
    let standbys: Vec<(usize, &Data)> = facts
        .iter()
        .enumerate()
        .filter(|(_, f)| f.role == Role::Standby)
        .filter_map(|(i, f)| f.data.as_ref().ok().map(|d| (i, d)))
        .filter(|(_, d)| d.in_recovery)
        .collect();
    let depth = |mut i: usize| {
        let mut n = 0;
        while let Some((u, _)) = chain.ups[i] {
            i = u;
            n += 1;
            if n > facts.len() {
                break;
            }
        }
        n
    };
    let mut by_depth: Vec<&(usize, &Data)> = standbys.iter().collect();
    by_depth.sort_by_key(|(i, _)| depth(*i));
    let mut secs_of: Vec<Option<f64>> = vec![None; facts.len()];
    let mut built: Vec<(usize, Pair)> = vec![];
    for &&(i, d) in &by_depth {
        let pair = standby_pair(r, chain, i, d, &secs_of);
        secs_of[i] = pair.lag_seconds;
        built.push((i, pair));
    }
    built.extend((0..facts.len()).filter_map(|i| silent_pair(chain, r, i).map(|p| (i, p))));
    // Report pairs in the order the standbys were given.
    built.sort_by_key(|(i, _)| *i);
    (built.into_iter().map(|(_, p)| p).collect(), secs_of)
}

/// Standby `i` when it did not answer and its name was given (its
/// conninfo's application_name): its pair with every value unknown, so
/// its series stay under the one name while it is down. Not streaming
/// when it is down; unknown when it answered but would not tell. Its
/// status is the node's (the node finding says why).
fn silent_pair(chain: &Chain, r: &Report, i: usize) -> Option<Pair> {
    let f = &chain.facts[i];
    if f.role != Role::Standby || f.data.is_ok() || f.given_name.is_none() {
        return None;
    }
    Some(Pair {
        standby: chain.names[i].clone(),
        upstream: None,
        application_name: f.given_name.clone(),
        client_addr: None,
        state: None,
        sync_state: None,
        sent_lsn: None,
        write_lsn: None,
        flush_lsn: None,
        replay_lsn: None,
        lag_bytes: None,
        lag_seconds: None,
        streaming: (f.down).then_some(false),
        ssl: None,
        ssl_version: None,
        ssl_cipher: None,
        ssl_bits: None,
        status: r.nodes[i].status,
    })
}

/// Standby `i` (in recovery, data `d`) and the wal sender it streams from.
fn standby_pair(
    r: &mut Report,
    chain: &Chain,
    i: usize,
    d: &Data,
    secs_of: &[Option<f64>],
) -> Pair {
    let name = &chain.names[i];
    let up = chain.ups[i];
    let sender = up.map(|(u, k)| &chain.facts[u].data.as_ref().expect("answered").senders[k]);
    // No receiver process: certainly not streaming; a hidden status: unknown.
    let streaming = match &d.receiver {
        None => Some(false),
        Some(rc) => rc.receiver.status.as_deref().map(|s| s == "streaming"),
    };
    let replay = d.replay.clone().unwrap_or_default();
    let replay_lsn = sender
        .and_then(|s| s.replay_lsn.clone())
        .or(replay.replay_lsn.clone());
    let (st, lag_bytes, lag_seconds) = if streaming != Some(true) {
        // The node finding says why; a stopped receiver is never OK,
        // whatever its last lag looked like, and its lag is unknown.
        let st = match streaming {
            None => Status::Unknown,
            Some(_) => r.nodes[i].status.worst(Status::Critical),
        };
        (st, None, None)
    } else {
        let pending = replay.pending_bytes.unwrap_or(0);
        let standby_delay = replay.delay_seconds.filter(|_| pending > 0);
        let lag_bytes = match &chain.root_lsn {
            Some(root) => lsn_diff(Some(root), replay_lsn.as_deref()),
            None => sender.and_then(|s| s.lag_bytes).or(replay.pending_bytes),
        };
        let upstream_secs = up.and_then(|(u, _)| secs_of[u]);
        let link = sender.and_then(|s| s.replay_lag);
        let lag_seconds = time_lag(
            lag_bytes,
            max_opt(add_opt(upstream_secs, link), standby_delay),
        );
        let st = link_findings(r, chain, i, d, sender).worst(lag_findings(
            r,
            chain.t,
            name,
            lag_bytes,
            lag_seconds,
        ));
        (st, lag_bytes, lag_seconds)
    };
    Pair {
        standby: name.clone(),
        upstream: chain.upstream_name(i),
        application_name: sender
            .map(|s| s.application_name.clone())
            .or_else(|| effective_app_name(d)),
        client_addr: sender.and_then(|s| s.client_addr.clone()),
        state: sender.and_then(|s| s.state.clone()),
        sync_state: sender.and_then(|s| s.sync_state.clone()),
        sent_lsn: sender.and_then(|s| s.sent_lsn.clone()),
        write_lsn: sender.and_then(|s| s.write_lsn.clone()),
        flush_lsn: sender.and_then(|s| s.flush_lsn.clone()),
        replay_lsn,
        lag_bytes,
        lag_seconds,
        streaming,
        ssl: sender.and_then(|s| s.ssl),
        ssl_version: sender.and_then(|s| s.ssl_version.clone()),
        ssl_cipher: sender.and_then(|s| s.ssl_cipher.clone()),
        ssl_bits: sender.and_then(|s| s.ssl_bits),
        status: st,
    }
}

/// A streaming standby's link: matched to no sender of the nodes given, or
/// its sender not (yet) streaming.
fn link_findings(
    r: &mut Report,
    chain: &Chain,
    i: usize,
    d: &Data,
    sender: Option<&Sender>,
) -> Status {
    let name = &chain.names[i];
    let mut st = Status::Ok;
    if let (None, Link::Shared { node, senders }) = (sender, &chain.links[i]) {
        st = shared_name(r, chain, i, *node, senders);
    } else if chain.primary.is_some() && sender.is_none() {
        let via = d
            .receiver
            .as_ref()
            .and_then(|rc| rc.receiver.sender_host.clone())
            .map(|h| format!(" (it streams from {h})"))
            .unwrap_or_default();
        r.problem(
            Status::Warning,
            name,
            STANDBY_NOT_MATCHED,
            format!("streams, but from no wal sender of the nodes given{via}"),
            Some("if it streams from a standby (cascading), give that standby too with --standby; otherwise check its primary_conninfo. Standbys are matched to wal senders by application_name (keep it unique) and client address".into()),
        );
        st = Status::Warning;
    }
    if let Some(state) = sender.and_then(|s| s.state.as_deref()) {
        if state != "streaming" {
            let from = chain.upstream_name(i).unwrap_or_default();
            r.problem(
                Status::Warning,
                name,
                SENDER_NOT_STREAMING,
                format!("the wal sender on {from} is in state {state}"),
                None,
            );
            st = st.worst(Status::Warning);
        }
    }
    st
}

/// Standby `i` streams under an application_name that `senders` of node
/// `u` share, from one address (or none seen) and without a slot of its
/// own, so nothing tells which one is its: its link is judged from its
/// own side only. A WARNING, with how to name the standbys apart.
fn shared_name(r: &mut Report, chain: &Chain, i: usize, u: usize, senders: &[usize]) -> Status {
    let all = &chain.facts[u].data.as_ref().expect("answered").senders;
    let s = &all[senders[0]];
    let from = match &s.client_addr {
        Some(a) => format!("from {a}"),
        None => "with no address shown (Unix sockets, or hidden from the role)".to_string(),
    };
    r.problem(
        Status::Warning,
        &chain.names[i],
        STANDBY_NAME_SHARED,
        format!(
            "streams, but {} wal senders on {} stream under its application_name {} {from}, and no slot tells which one is its: its link is judged from the standby's side only (no sender state, sync_state or replay_lag)",
            senders.len(),
            chain.names[u],
            s.application_name
        ),
        Some("give each standby its own application_name: on its host, rerun pgrepctl clone-standby with its same --primary and -D plus --application-name NAME (it restarts the standby). synchronous_standby_names cannot tell them apart either".into()),
    );
    Status::Warning
}

/// What the senders of the primary and the standbys showed, for the
/// primary's expectations.
pub(super) struct SenderCount {
    /// Senders in state streaming (base backups not counted).
    pub streaming: usize,
    /// Whether a sender's state was hidden from the connecting role.
    pub hidden: bool,
}

/// The senders the standbys given stream from, and the senders of a
/// [`Link::Shared`] group when as many standbys given share it: each one
/// is a given standby's, only which one is not known.
fn claimed(chain: &Chain) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = chain.ups.iter().flatten().copied().collect();
    for link in &chain.links {
        if let Link::Shared { node, senders } = link {
            let sharing = chain.links.iter().filter(|l| *l == link).count();
            if sharing >= senders.len() {
                out.extend(senders.iter().map(|&k| (*node, k)));
            }
        }
    }
    out
}

/// Senders no given standby claimed, on the primary and on standbys
/// (cascades to nodes not given), appended to `pairs`.
pub(super) fn unclaimed_senders(
    r: &mut Report,
    chain: &Chain,
    secs_of: &[Option<f64>],
    pairs: &mut Vec<Pair>,
) -> SenderCount {
    let facts = chain.facts;
    let claimed = claimed(chain);
    let senders_of = (0..facts.len()).filter(|&u| {
        chain.is_primary(u)
            || (facts[u].role == Role::Standby
                && facts[u].data.as_ref().is_ok_and(|d| d.in_recovery))
    });
    let mut count = SenderCount {
        streaming: 0,
        hidden: false,
    };
    let mut unclaimed = vec![];
    for u in senders_of {
        let d = facts[u].data.as_ref().expect("answered");
        for (k, s) in d.senders.iter().enumerate() {
            if s.state.as_deref() == Some("backup") {
                continue;
            }
            count.hidden |= s.state.is_none();
            if s.state.as_deref() == Some("streaming") {
                count.streaming += 1;
            }
            if !claimed.contains(&(u, k)) {
                unclaimed.push((u, &d.senders[k]));
            }
        }
    }
    let labels = sender_labels(r, &unclaimed, pairs);
    for ((u, s), name) in unclaimed.into_iter().zip(labels) {
        let pair = sender_pair(r, chain, u, s, name, secs_of);
        pairs.push(pair);
    }
    count
}

/// A label for each sender no given standby claimed, stable across
/// reconnects (never its PID, new on each): its application_name (its
/// client address when that is the anonymous `walreceiver`), and when
/// another pair has it too, with its slot, else its client address;
/// `#2`, `#3`… last, for senders nothing tells apart, with a warning
/// that their labels may swap.
fn sender_labels(r: &mut Report, unclaimed: &[(usize, &Sender)], pairs: &[Pair]) -> Vec<String> {
    let base = |s: &Sender| match (s.application_name.as_str(), &s.client_addr) {
        ("" | "walreceiver", Some(a)) => a.clone(),
        ("", None) => "walreceiver".to_string(),
        (name, _) => name.to_string(),
    };
    let bases: Vec<String> = unclaimed.iter().map(|(_, s)| base(s)).collect();
    let given: Vec<String> = pairs.iter().map(|p| p.standby.clone()).collect();
    let qualified: Vec<String> = unclaimed
        .iter()
        .zip(&bases)
        .map(|((_, s), b)| {
            let repeated = bases.iter().filter(|x| *x == b).count() > 1 || given.contains(b);
            match (&s.slot, &s.client_addr) {
                _ if !repeated => b.clone(),
                (Some(slot), _) => format!("{b} (slot {slot})"),
                (None, Some(a)) if a != b => format!("{b} ({a})"),
                _ => b.clone(),
            }
        })
        .collect();
    let mut taken = given;
    let mut labels = vec![];
    for q in &qualified {
        let label = super::super::chain::unique(&taken, q.clone());
        taken.push(label.clone());
        labels.push(label);
    }
    let mut warned: Vec<&String> = vec![];
    for q in &qualified {
        let same: Vec<&String> = (0..labels.len())
            .filter(|&j| qualified[j] == *q)
            .map(|j| &labels[j])
            .collect();
        if same.iter().any(|l| *l != q) && !warned.contains(&q) {
            warned.push(q);
            r.warnings.push(format!(
                "wal senders under the name {q} cannot be told apart (one application_name, one address, no slot): they are shown as {}, labels that may pass from one standby to another when they reconnect; give each standby its own application_name (on its host: pgrepctl clone-standby with its same --primary and -D plus --application-name NAME)",
                same.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    labels
}

/// A pair for sender `s` of node `u`, labelled `name`.
fn sender_pair(
    r: &mut Report,
    chain: &Chain,
    u: usize,
    s: &Sender,
    name: String,
    secs_of: &[Option<f64>],
) -> Pair {
    let mut st = Status::Ok;
    if let Some(state) = s.state.as_deref().filter(|x| *x != "streaming") {
        r.problem(
            Status::Warning,
            &name,
            SENDER_NOT_STREAMING,
            format!("the wal sender on {} is in state {state}", chain.names[u]),
            None,
        );
        st = Status::Warning;
    }
    let lag_bytes = match (&chain.root_lsn, chain.is_primary(u)) {
        (Some(root), false) => lsn_diff(Some(root), s.replay_lsn.as_deref()),
        _ => s.lag_bytes,
    };
    let lag_seconds = time_lag(lag_bytes, add_opt(secs_of[u], s.replay_lag));
    st = st.worst(lag_findings(r, chain.t, &name, lag_bytes, lag_seconds));
    Pair {
        standby: name,
        upstream: Some(chain.names[u].clone()),
        application_name: Some(s.application_name.clone()),
        client_addr: s.client_addr.clone(),
        state: s.state.clone(),
        sync_state: s.sync_state.clone(),
        sent_lsn: s.sent_lsn.clone(),
        write_lsn: s.write_lsn.clone(),
        flush_lsn: s.flush_lsn.clone(),
        replay_lsn: s.replay_lsn.clone(),
        lag_bytes,
        lag_seconds,
        streaming: None,
        ssl: s.ssl,
        ssl_version: s.ssl_version.clone(),
        ssl_cipher: s.ssl_cipher.clone(),
        ssl_bits: s.ssl_bits,
        status: st,
    }
}
