//! The links of the chain: each standby with the wal sender it streams
//! from, judged from both ends, and the wal senders no given standby
//! claimed, judged from the sending side.

use super::super::chain::effective_app_name;
use super::super::inspect::{Data, Sender, lsn_diff};
use super::codes::*;
use super::{Chain, add_opt, lag_findings, max_opt, time_lag};
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
    // Report pairs in the order the standbys were given.
    built.sort_by_key(|(i, _)| *i);
    (built.into_iter().map(|(_, p)| p).collect(), secs_of)
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
    if chain.primary.is_some() && sender.is_none() {
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

/// What the senders of the primary and the standbys showed, for the
/// primary's expectations.
pub(super) struct SenderCount {
    /// Senders in state streaming (base backups not counted).
    pub streaming: usize,
    /// Whether a sender's state was hidden from the connecting role.
    pub hidden: bool,
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
    let claimed: Vec<(usize, usize)> = chain.ups.iter().flatten().copied().collect();
    let senders_of = (0..facts.len()).filter(|&u| {
        chain.is_primary(u)
            || (facts[u].role == Role::Standby
                && facts[u].data.as_ref().is_ok_and(|d| d.in_recovery))
    });
    let mut count = SenderCount {
        streaming: 0,
        hidden: false,
    };
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
                let pair = sender_pair(r, chain, u, s, secs_of, pairs);
                pairs.push(pair);
            }
        }
    }
    count
}

/// A pair for sender `s` of node `u`, named after what the sender shows.
fn sender_pair(
    r: &mut Report,
    chain: &Chain,
    u: usize,
    s: &Sender,
    secs_of: &[Option<f64>],
    pairs: &[Pair],
) -> Pair {
    let mut name = if s.application_name.is_empty() || s.application_name == "walreceiver" {
        s.client_addr
            .clone()
            .unwrap_or_else(|| format!("pid {}", s.pid))
    } else {
        s.application_name.clone()
    };
    if pairs.iter().any(|x: &Pair| x.standby == name) {
        name = format!("{name} (pid {})", s.pid);
    }
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
