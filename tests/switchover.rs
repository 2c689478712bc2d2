//! switchover on real servers, built the way a user builds them: a
//! primary prepared by init-master, standbys made by clone-standby (each
//! through its own slot), and the command run on the primary's host.
//! Under a writer that logs every acknowledged id, no acknowledged id is
//! missing on the new primary, the old primary streams from it on the new
//! timeline, the sibling follows, the old slots go, and a second run
//! changes nothing; switching back works the same way. A candidate that
//! cannot catch up is rolled back by itself; one whose pg_hba.conf would
//! refuse the old primary, and bad input, are refused with nothing
//! changed; a kill of pgrepctl after any step is finished by a rerun; a
//! replication role named otherwise than replicator is kept, also by a
//! rerun after a kill; a dry run reports what the real run then does.
//! PostgreSQL 10 and 11 candidates are refused (no pg_promote()).

use crate::harness::fixtures::{clone_as, prepared_primary_as};
use crate::harness::{self, Builder, Cluster, Test};
use crate::promote::replayed;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The primary P, the candidate S1 and (when asked) the sibling S2, and
/// the replication password file.
struct Nodes {
    p: Cluster,
    s1: Cluster,
    s2: Option<Cluster>,
    pw: PathBuf,
}

/// Switchover needs pg_promote() on the candidate: PostgreSQL 12 or later.
/// The other tests skip 10 and 11 (the refusal test covers them).
fn skipped() -> bool {
    let major = harness::major(&harness::bindir());
    if major < 12 {
        eprintln!(
            "skipped: PostgreSQL {major} has no pg_promote() (refused, see unsupported_candidate_version)"
        );
    }
    major < 12
}

/// P prepared by init-master, S1 (and S2) cloned by clone-standby through
/// slots s1 (and s2), with table w. Every node has its port and socket
/// directory in its own configuration: switchover starts the servers
/// with pg_ctl, without the harness's command-line options.
fn nodes(builder: Builder, sibling: bool) -> Nodes {
    nodes_with(
        builder,
        sibling.then_some(&["--application-name", "s2", "--slot", "s2"][..]),
    )
}

/// [`nodes`], with a sibling cloned with `sibling`'s flags when given.
fn nodes_with(builder: Builder, sibling: Option<&[&str]>) -> Nodes {
    nodes_as(builder, "replicator", sibling)
}

/// [`nodes_with`], the replication role named `role`: init-master makes
/// it (--replication-user), and each clone streams as it (user= in
/// --primary).
fn nodes_as(builder: Builder, role: &str, sibling: Option<&[&str]>) -> Nodes {
    let (p, pw) = prepared_primary_as(builder.conf("fsync = off"), role);
    let s1 = Cluster::clone_target(&p);
    clone_as(&p, &s1, role, Some(&pw), &["--slot", "s1"]).ok();
    let s2 = sibling.map(|flags| {
        let s2 = Cluster::clone_target(&p);
        clone_as(&p, &s2, role, Some(&pw), flags).ok();
        s2
    });
    let conf = std::fs::read_to_string(p.conf_path()).unwrap();
    p.write_as_pg(&p.conf_path(), &format!("{conf}\nport = {}\n", p.port));
    p.sql("CREATE TABLE w (id bigint)");
    let n = Nodes { p, s1, s2, pw };
    caught_up(&n.p, &n.standbys_of_p());
    n
}

impl Nodes {
    fn standbys_of_p(&self) -> Vec<&Cluster> {
        std::iter::once(&self.s1).chain(&self.s2).collect()
    }

    fn all(&self) -> Vec<&Cluster> {
        [&self.p, &self.s1].into_iter().chain(&self.s2).collect()
    }

    fn data_dirs(&self) -> Vec<PathBuf> {
        self.all().iter().map(|c| c.data.clone()).collect()
    }

    /// `pgrepctl switchover --json` on `old`'s host towards `cand`, the
    /// sibling given when there is one.
    fn switchover(&self, old: &Cluster, cand: &Cluster, extra: &[&str]) -> Test {
        self.switchover_to(old, cand, &tcp(cand), extra)
    }

    /// A switchover to `cand`, reached by the conninfo `candidate`; every
    /// other node but `old` is a sibling.
    fn switchover_to(
        &self,
        old: &Cluster,
        cand: &Cluster,
        candidate: &str,
        extra: &[&str],
    ) -> Test {
        let mut t = Test::new([
            "switchover",
            "--json",
            "-D",
            old.data.to_str().unwrap(),
            "--candidate",
            candidate,
            "--password-file",
            self.pw.to_str().unwrap(),
            "--bindir",
            old.bindir.to_str().unwrap(),
        ]);
        for s in self.all() {
            if s.data != old.data && s.data != cand.data {
                t = t.arg("--sibling").arg(tcp(s));
            }
        }
        for a in extra {
            t = t.arg(a);
        }
        t
    }

    fn files(&self) -> Files {
        Files::of(&self.data_dirs())
    }

    /// The sibling follows `primary` after a switchover reported in `j`:
    /// repointed by switchover itself on 13+; before, switchover prints
    /// the follow command for the sibling's host, run here as the user
    /// would run it there.
    fn sibling_follows(&self, j: &serde_json::Value, primary: &Cluster) {
        let Some(s2) = &self.s2 else { return };
        if s2.major >= 13 {
            assert!(j.get("follow_commands").is_none(), "{j}");
            return;
        }
        let lines = j["follow_commands"]
            .as_array()
            .unwrap_or_else(|| panic!("{j}"));
        assert_eq!(lines.len(), 1, "{j}");
        let line = lines[0].as_str().unwrap();
        let mut args = shell_words(&line[line.find("pgrepctl ").unwrap() + 9..]);
        let want = format!("host=127.0.0.1 port={}", primary.port);
        assert!(args.contains(&want), "{line}");
        for a in &mut args {
            if a == "PGDATA" {
                *a = s2.data.display().to_string();
            }
        }
        args.push("--json".into());
        harness::pgrepctl(args).ok();
    }
}

/// Words of a command line as a shell splits them (single quotes only).
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut any) = (vec![], String::new(), false, false);
    for c in line.chars() {
        match c {
            '\'' => (quoted, any) = (!quoted, true),
            ' ' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// A node's superuser conninfo over TCP, as a user on another host gives it.
fn tcp(c: &Cluster) -> String {
    format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        c.port
    )
}

/// The files at the top of data directories — the configuration,
/// standby.signal, the passfile, postmaster.pid (a start or a stop) —
/// with their contents and mtimes; not the server logs, nor what the
/// servers write below (WAL, stats). `Test::watch` would hash every WAL
/// segment of three servers twice a run: seconds each time.
#[derive(PartialEq)]
struct Files(BTreeMap<PathBuf, (Vec<u8>, Option<SystemTime>)>);

impl Files {
    fn of(dirs: &[PathBuf]) -> Files {
        let mut files = BTreeMap::new();
        for d in dirs {
            for e in std::fs::read_dir(d).unwrap().flatten() {
                let p = e.path();
                let Ok(m) = std::fs::symlink_metadata(&p) else {
                    continue;
                };
                if m.is_file() && p.extension().is_none_or(|x| x != "log") {
                    let text = std::fs::read(&p).unwrap_or_default();
                    files.insert(p, (text, m.modified().ok()));
                }
            }
        }
        Files(files)
    }

    /// Files created, changed or removed since `before`.
    fn changed_since(&self, before: &Files) -> Vec<PathBuf> {
        let paths: BTreeSet<&PathBuf> = self.0.keys().chain(before.0.keys()).collect();
        paths
            .into_iter()
            .filter(|p| self.0.get(*p) != before.0.get(*p))
            .cloned()
            .collect()
    }
}

/// Every standby has replayed everything the primary wrote.
fn caught_up(p: &Cluster, standbys: &[&Cluster]) {
    let lsn = p.sql("SELECT pg_current_wal_flush_lsn()");
    for s in standbys {
        replayed(
            s,
            &format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'"),
            "t",
        );
    }
}

/// The primary's current timeline.
fn timeline(p: &Cluster) -> String {
    p.sql("SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int")
}

/// The drain's settings in a node's postgresql.auto.conf.
fn drain_lines(c: &Cluster) -> Vec<String> {
    c.file("postgresql.auto.conf")
        .lines()
        .filter(|l| {
            l.contains("pgrepctl.switchover") || l.contains("default_transaction_read_only")
        })
        .map(str::to_string)
        .collect()
}

/// `primary` runs as a writable primary and every standby streams from
/// it on its timeline; no drain setting is left anywhere.
fn settled(primary: &Cluster, standbys: &[&Cluster]) {
    assert_eq!(primary.sql("SELECT pg_is_in_recovery()"), "f");
    assert_eq!(primary.sql("SHOW default_transaction_read_only"), "off");
    let tli = timeline(primary);
    for s in standbys {
        assert_eq!(s.sql("SELECT pg_is_in_recovery()"), "t", "port {}", s.port);
        replayed(
            s,
            "SELECT status || ' ' || received_tli || ' ' || sender_port FROM pg_stat_wal_receiver",
            &format!("streaming {tli} {}", primary.port),
        );
    }
    for c in std::iter::once(primary).chain(standbys.iter().copied()) {
        assert_eq!(
            drain_lines(c),
            Vec::<String>::new(),
            "{}/postgresql.auto.conf (port {})",
            c.data.display(),
            c.port
        );
    }
    assert!(!primary.data.join("standby.signal").exists());
}

/// Every standby streams from `primary` through a slot of its own, and
/// every slot there is in use; no standby holds a slot, but (before 13)
/// the sibling's on a former primary, which the switchover's warning says
/// to drop once the sibling is repointed by hand. What an uninterrupted
/// switchover leaves, and a rerun after a kill must leave too.
fn slots_settled(primary: &Cluster, standbys: &[&Cluster]) {
    for s in standbys {
        replayed(
            s,
            "SELECT slot_name IS NOT NULL FROM pg_stat_wal_receiver",
            "t",
        );
    }
    let all = "SELECT coalesce(string_agg(slot_name || ' ' || active, ',' ORDER BY slot_name), '') \
               FROM pg_replication_slots";
    let want = primary.sql(
        "SELECT string_agg(slot_name::text || ' true', ',' ORDER BY slot_name) \
         FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid",
    );
    assert_eq!(
        primary.sql(all),
        want,
        "slots on the primary (port {})",
        primary.port
    );
    assert_eq!(want.split(',').count(), standbys.len(), "{want}");
    for s in standbys {
        let kept = s.sql(all);
        let allowed = harness::major(&harness::bindir()) < 13 && kept == "s2 false";
        assert!(
            kept.is_empty() || allowed,
            "slots on the standby on port {}: {kept}",
            s.port
        );
    }
}

/// The ids in table w on `c`.
fn ids(c: &Cluster) -> BTreeSet<i64> {
    c.sql("SELECT id FROM w")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

/// Every acknowledged id is on `primary`.
fn none_missing(primary: &Cluster, acked: &[i64]) {
    let have = ids(primary);
    let missing: Vec<&i64> = acked.iter().filter(|i| !have.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged id(s) missing on port {}: {missing:?}",
        missing.len(),
        primary.port
    );
}

/// A client inserting sequential ids into w through the write string
/// (every node, target_session_attrs=read-write), recording an id only
/// once its commit is acknowledged. Stopped on drop.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<i64>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(nodes: &[&Cluster]) -> Writer {
        let hosts = vec!["127.0.0.1"; nodes.len()].join(",");
        let ports: Vec<String> = nodes.iter().map(|c| c.port.to_string()).collect();
        let conninfo = format!(
            "host={hosts} port={} user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=2",
            ports.join(",")
        );
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(vec![]));
        let (s, a) = (stop.clone(), acked.clone());
        let thread = std::thread::spawn(move || write_ids(&conninfo, &s, &a));
        let w = Writer {
            stop,
            acked,
            thread: Some(thread),
        };
        w.wait_for_more(10);
        w
    }

    fn acked(&self) -> Vec<i64> {
        self.acked.lock().unwrap().clone()
    }

    /// Until `n` more ids than now are acknowledged (30 s at most).
    fn wait_for_more(&self, n: usize) {
        let want = self.acked().len() + n;
        let t = std::time::Instant::now();
        while self.acked().len() < want {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the writer got no acknowledged write through the write string"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(mut self) -> Vec<i64> {
        self.halt();
        self.acked()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The writer's loop: connect (again) whenever a statement fails; an id
/// whose INSERT failed is not retried (it may or may not have committed).
fn write_ids(conninfo: &str, stop: &AtomicBool, acked: &Mutex<Vec<i64>>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config: tokio_postgres::Config = conninfo.parse().unwrap();
    rt.block_on(async {
        let mut id: i64 = 0;
        while !stop.load(Ordering::SeqCst) {
            let Ok((client, conn)) = config.connect(tokio_postgres::NoTls).await else {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            let conn = tokio::spawn(conn);
            while !stop.load(Ordering::SeqCst) {
                id += 1;
                match client.execute("INSERT INTO w VALUES ($1)", &[&id]).await {
                    Ok(_) => acked.lock().unwrap().push(id),
                    Err(_) => break,
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            drop(client);
            let _ = conn.await;
        }
    });
}

/// A server process stopped with SIGSTOP, continued on drop (also when
/// the test panics, so the cluster can be stopped).
struct Frozen(nix::unistd::Pid);

impl Frozen {
    /// The WAL receiver of a standby: it neither receives nor replies.
    fn wal_receiver(s: &Cluster) -> Frozen {
        let pid: i32 = s
            .sql("SELECT pid FROM pg_stat_wal_receiver")
            .parse()
            .unwrap();
        let pid = nix::unistd::Pid::from_raw(pid);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGCONT);
    }
}

/// Writes still work on a primary the run left alone or rolled back.
fn writable(p: &Cluster) {
    assert_eq!(p.sql("SELECT pg_is_in_recovery()"), "f");
    assert_eq!(p.sql("SHOW default_transaction_read_only"), "off");
    p.sql("INSERT INTO w VALUES (-1)");
}

#[test]
fn switches_over_under_load_back_and_again() {
    if skipped() {
        return;
    }
    let n = nodes(Cluster::builder(), true);
    let (p, s1, s2) = (&n.p, &n.s1, n.s2.as_ref().unwrap());
    let writer = Writer::start(&n.all());
    let j = n.switchover(p, s1, &[]).run().ok();
    assert_eq!(j["command"], "switchover", "{j}");
    assert_eq!(j["changed"], true, "{j}");
    n.sibling_follows(&j, s1);
    writer.wait_for_more(20);
    settled(s1, &[p, s2]);
    assert_eq!(timeline(s1), "2");
    assert_eq!(j["new_timeline"], 2, "{j}");
    none_missing(s1, &writer.acked());
    // The slots the standbys used on P are gone; on S1 they stream through
    // theirs (S2 keeps its name, P gets one named after this host). Before
    // 13 the sibling, repointed by hand, keeps its slot on P (it cascades
    // from P until it is repointed), which the warning says to drop.
    let kept = if harness::major(&harness::bindir()) < 13 {
        assert!(
            j["warnings"]
                .to_string()
                .contains("pg_drop_replication_slot"),
            "{j}"
        );
        "1"
    } else {
        "0"
    };
    assert_eq!(p.sql("SELECT count(*) FROM pg_replication_slots"), kept);
    replayed(
        s1,
        "SELECT count(*) FROM pg_replication_slots WHERE active",
        "2",
    );
    assert_eq!(
        s1.sql("SELECT active FROM pg_replication_slots WHERE slot_name = 's2'"),
        "t"
    );

    let before = n.files();
    let again = n.switchover(p, s1, &[]).run().ok();
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(harness::summaries(&again), Vec::<String>::new());
    assert_eq!(n.files().changed_since(&before), Vec::<PathBuf>::new());

    // And back: S1's host hands the primary role to P.
    let back = n.switchover(s1, p, &[]).run().ok();
    assert_eq!(back["changed"], true, "{back}");
    n.sibling_follows(&back, p);
    writer.wait_for_more(20);
    settled(p, &[s1, s2]);
    assert_eq!(timeline(p), "3");
    assert_eq!(s1.sql("SELECT count(*) FROM pg_replication_slots"), kept);
    none_missing(p, &writer.acked());

    // Over again: P's primary_conninfo already names S1, and its drain
    // settings still go before it runs as a standby.
    let over = n.switchover(p, s1, &[]).run().ok();
    n.sibling_follows(&over, s1);
    writer.wait_for_more(20);
    settled(s1, &[p, s2]);
    assert_eq!(timeline(s1), "4");
    let acked = writer.stop();
    none_missing(s1, &acked);
    caught_up(s1, &[p, s2]);
    assert_eq!(ids(p), ids(s1), "the standbys hold what the primary holds");
    assert_eq!(ids(s2), ids(s1));
}

#[test]
fn a_candidate_that_cannot_catch_up_is_rolled_back() {
    if skipped() {
        return;
    }
    // A shutdown waits until each walsender's standby confirms the
    // shutdown checkpoint: with the receiver frozen, until
    // wal_sender_timeout ends the walsender, longer than the 5 s pg_ctl
    // gets with --wait 2s: the stop must wait for it all the same.
    let n = nodes(Cluster::builder().conf("wal_sender_timeout = '8s'"), false);
    let (p, s1) = (&n.p, &n.s1);
    p.sql("INSERT INTO w VALUES (1)");
    caught_up(p, &[s1]);
    let frozen = Frozen::wal_receiver(s1);
    let r = n
        .switchover(p, s1, &["--catchup-timeout", "2s", "--wait", "2s"])
        .run();
    let j = r.fails(1, "CANDIDATE_BEHIND");
    assert!(
        j["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("nothing was promoted"),
        "{j}"
    );
    assert!(j["warnings"].to_string().contains("rolled back"), "{j}");
    assert!(p.running(), "the old primary runs again");
    writable(p);
    assert_eq!(drain_lines(p), Vec::<String>::new());
    assert!(!p.data.join("standby.signal").exists());
    assert!(!p.data.join("pgrepctl.pgpass").exists());
    assert_eq!(
        s1.sql("SELECT pg_is_in_recovery()"),
        "t",
        "nothing promoted"
    );
    drop(frozen);

    // The candidate streams again and the switchover can be done.
    s1.wait_streaming();
    caught_up(p, &[s1]);
    n.switchover(p, s1, &[]).run().ok();
    settled(s1, &[p]);
    none_missing(s1, &[1]);
}

#[test]
fn a_candidate_whose_hba_refuses_the_old_primary_is_refused() {
    if skipped() {
        return;
    }
    let j = refused_by_candidate_hba("host replication all 127.0.0.1/32 reject", tcp);
    assert!(
        j["error"]["message"].as_str().unwrap().contains("line 1"),
        "{j}"
    );
    assert!(
        j["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("init-master -D PGDATA --allow 127.0.0.1/32"),
        "{j}"
    );
}

/// A candidate given by its Unix socket, whose pg_hba.conf lets the
/// socket in by peer (Debian's `local replication all peer`): the old
/// primary's walreceiver would connect as the replication role from the
/// server's OS user, which peer refuses. Refused before anything changes.
#[test]
fn a_socket_candidate_that_peer_would_refuse_is_refused() {
    if skipped() {
        return;
    }
    let socket = |c: &Cluster| {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            c.sock.display(),
            c.port
        )
    };
    let j = refused_by_candidate_hba("local replication all peer", socket);
    let msg = j["error"]["message"].as_str().unwrap();
    assert!(msg.contains("line 1 authenticates by peer"), "{j}");
    assert!(
        j["error"]["hint"].as_str().unwrap().contains("TCP address"),
        "{j}"
    );
}

/// With `line` first in the candidate's pg_hba.conf, a switchover to the
/// candidate (reached by `candidate`'s conninfo) is refused with
/// HBA_REJECTED and changes nothing; its JSON.
fn refused_by_candidate_hba(
    line: &str,
    candidate: impl Fn(&Cluster) -> String,
) -> serde_json::Value {
    let n = nodes(Cluster::builder(), false);
    let (p, s1) = (&n.p, &n.s1);
    let hba = s1.file("pg_hba.conf");
    s1.write_as_pg(&s1.hba_path(), &format!("{line}\n{hba}"));
    s1.sql("SELECT pg_reload_conf()");
    let before = n.files();
    let r = n.switchover_to(p, s1, &candidate(s1), &[]).run();
    let j = r.fails(1, "HBA_REJECTED");
    assert_eq!(j["changed"], false, "{j}");
    assert_eq!(n.files().changed_since(&before), Vec::<PathBuf>::new());
    writable(p);
    assert_eq!(s1.sql("SELECT pg_is_in_recovery()"), "t");
    j
}

/// Two standbys stream under one application_name (as two standbys of
/// one host do by default: its name), each through its own slot, from one
/// address: the switchover tells their walsenders apart by slot, so the
/// candidate's slot here is dropped and the sibling's is not taken for it.
#[test]
fn standbys_sharing_the_hosts_name_are_told_apart_by_slot() {
    if skipped() {
        return;
    }
    let n = nodes_with(Cluster::builder(), Some(&["--slot", "s2"]));
    let s2 = n.s2.as_ref().unwrap();
    assert_eq!(
        n.p.sql(
            "SELECT count(DISTINCT application_name) || ' ' || count(*) FROM pg_stat_replication"
        ),
        "1 2",
        "both under one name"
    );
    let j = n.switchover(&n.p, &n.s1, &[]).run().ok();
    let slots_here =
        n.p.sql("SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM pg_replication_slots");
    assert!(
        !slots_here.contains("s1"),
        "the candidate's slot stays on the old primary: {slots_here}\n{j}"
    );
    if n.s1.major >= 13 {
        // The sibling was repointed from here: its slot here goes too.
        assert!(!slots_here.contains("s2"), "{slots_here}\n{j}");
    }
    settled(&n.s1, &[&n.p]);
    if n.s1.major >= 13 {
        settled(&n.s1, &[&n.p, s2]);
    }
}

/// This primary archives and the candidate would not once promoted: the
/// plan warns that the archive stops at the switchover; once the
/// candidate archives too, no warning.
#[test]
fn a_candidate_that_would_not_archive_is_warned_about() {
    if skipped() {
        return;
    }
    let builder = Cluster::builder()
        .conf("archive_mode = on")
        .conf("archive_command = 'true'");
    let n = nodes(builder, false);
    let warned = |n: &Nodes| {
        let j = n.switchover(&n.p, &n.s1, &["--dry-run"]).run().ok();
        j["warnings"]
            .to_string()
            .contains("nothing is archived after the switchover")
    };
    assert!(!warned(&n), "both archive");
    n.s1.sql("ALTER SYSTEM SET archive_mode = off");
    n.s1.local()
        .ctl(
            pgrepctl::pg::cluster::Ctl::Restart,
            std::time::Duration::from_secs(60),
        )
        .unwrap();
    n.s1.wait_streaming();
    assert!(warned(&n), "the candidate does not archive");
}

/// Kill pgrepctl right after step N, for every N from `first` until a
/// run is no longer killed (or `last`), switching direction each time:
/// the rerun of the same command finishes, with one primary, the other
/// nodes streaming from it, nothing acknowledged lost. Returns whether
/// a run outlived every kill.
fn kill_after_each_step(first: usize, last: usize) -> bool {
    let n = nodes(Cluster::builder(), true);
    let all = n.all();
    let writer = Writer::start(&all);
    for step in first..=last {
        let primary = *all
            .iter()
            .find(|c| c.sql("SELECT pg_is_in_recovery()") == "f")
            .unwrap();
        // The candidate: the other of P and S1; S2 stays a sibling.
        let cand = if primary.data == n.p.data {
            &n.s1
        } else {
            &n.p
        };
        let run = |env: Option<usize>| {
            let t = n.switchover(primary, cand, &[]);
            match env {
                Some(k) => t.env("PGREPCTL_KILL_AFTER_STEP", k.to_string()),
                None => t,
            }
            .run()
        };
        eprintln!(
            "kill after step {step}: port {} -> {}",
            primary.port, cand.port
        );
        let killed = run(Some(step));
        if killed.code() == 0 {
            n.sibling_follows(&killed.json(), cand);
            settled(cand, &[primary, n.s2.as_ref().unwrap()]);
            slots_settled(cand, &[primary, n.s2.as_ref().unwrap()]);
            none_missing(cand, &writer.acked());
            return true;
        }
        assert_eq!(
            killed.out.status.signal(),
            Some(9),
            "step {step}: {}\n{}",
            killed.stdout(),
            killed.stderr()
        );
        let acked = writer.acked();
        let primaries = all
            .iter()
            .filter(|c| {
                c.running() && c.try_sql("SELECT pg_is_in_recovery()").as_deref() == Ok("f")
            })
            .count();
        assert!(primaries <= 1, "two primaries after a kill at step {step}");
        let again = run(None);
        let j = again.json();
        match j["changes"].is_array() {
            true => eprintln!("rerun: {:?}", harness::summaries(&j)),
            false => eprintln!("rerun: {j}"),
        }
        assert_eq!(
            again.code(),
            0,
            "rerun after a kill at step {step}: {j}\n{}",
            again.stderr()
        );
        n.sibling_follows(&j, cand);
        let others: Vec<&Cluster> = all
            .iter()
            .copied()
            .filter(|c| c.data != cand.data)
            .collect();
        settled(cand, &others);
        slots_settled(cand, &others);
        none_missing(cand, &acked);
        writer.wait_for_more(5);
    }
    false
}

#[test]
fn a_kill_after_steps_1_to_6_is_finished_by_a_rerun() {
    if skipped() {
        return;
    }
    assert!(!kill_after_each_step(1, 6), "fewer than 7 steps");
}

#[test]
fn a_kill_after_steps_7_to_12_is_finished_by_a_rerun() {
    if skipped() {
        return;
    }
    assert!(!kill_after_each_step(7, 12), "fewer than 13 steps");
}

#[test]
fn a_kill_after_step_13_or_later_is_finished_by_a_rerun() {
    if skipped() {
        return;
    }
    assert!(
        kill_after_each_step(13, 30),
        "a run with PGREPCTL_KILL_AFTER_STEP=30 was still killed"
    );
}

/// The replication role of the tests below: init-master's
/// --replication-user, not its default; no role named replicator exists.
const ROLE: &str = "repl_other";

/// P, S1 and the sibling S2 (application_name and slot s2), all streaming
/// as [`ROLE`].
fn other_role_nodes() -> Nodes {
    let sibling = ["--application-name", "s2", "--slot", "s2"];
    let n = nodes_as(Cluster::builder(), ROLE, Some(&sibling[..]));
    streams_as(&n.p, &n.standbys_of_p(), &[]);
    n
}

/// Every standby of `primary` streams as [`ROLE`] (pg_stat_replication
/// there) and its primary_conninfo names it; no role named replicator
/// exists, and neither the runs' reports (`runs`) nor any server's log
/// mention one: nothing tried it.
fn streams_as(primary: &Cluster, standbys: &[&Cluster], runs: &[&serde_json::Value]) {
    replayed(
        primary,
        "SELECT coalesce(string_agg(usename::text, ',' ORDER BY usename), '') FROM pg_stat_replication",
        &vec![ROLE; standbys.len()].join(","),
    );
    let user = format!("user={ROLE}");
    for s in standbys {
        let conninfo = s.sql("SHOW primary_conninfo");
        assert!(
            conninfo.split_whitespace().any(|w| w == user),
            "primary_conninfo on port {}: {conninfo}",
            s.port
        );
    }
    assert_eq!(
        primary.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'replicator'"),
        "0"
    );
    for j in runs {
        assert!(!j.to_string().contains("replicator"), "{j}");
    }
    for c in std::iter::once(primary).chain(standbys.iter().copied()) {
        for log in [c.log.clone(), c.data.join("pgrepctl-server.log")] {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                !text.contains("\"replicator\""),
                "{}:\n{text}",
                log.display()
            );
        }
    }
}

/// With the replication role named otherwise, a switchover, and one
/// back, leave every standby streaming as that role.
#[test]
fn switches_over_with_another_replication_role() {
    if skipped() {
        return;
    }
    let n = other_role_nodes();
    let (p, s1, s2) = (&n.p, &n.s1, n.s2.as_ref().unwrap());
    for (old, cand) in [(p, s1), (s1, p)] {
        let j = n.switchover(old, cand, &[]).run().ok();
        n.sibling_follows(&j, cand);
        settled(cand, &[old, s2]);
        slots_settled(cand, &[old, s2]);
        streams_as(cand, &[old, s2], &[&j]);
    }
}

/// With the replication role named otherwise, a switchover killed once
/// the old primary stopped (not fenced yet: the rerun takes the role from
/// the candidate's configuration), and one killed once the candidate was
/// promoted (fenced: from what the fence wrote, which the candidate's
/// configuration agrees with), are finished by a rerun that keeps the
/// role.
#[test]
fn another_replication_role_is_kept_by_a_rerun_after_a_kill() {
    if skipped() {
        return;
    }
    let n = other_role_nodes();
    let (p, s1, s2) = (&n.p, &n.s1, n.s2.as_ref().unwrap());
    // Checkpoint, writes off, drain, stop; then the proof, the fence's
    // files (S1's passfile is there already, as clone-standby wrote it)
    // and the promotion.
    let kills = [
        (4, "stopped (fast shutdown)", p, s1),
        (8, "candidate promoted", s1, p),
    ];
    for (step, label, old, cand) in kills {
        let killed = n
            .switchover(old, cand, &["-v"])
            .env("PGREPCTL_KILL_AFTER_STEP", step.to_string())
            .run();
        assert_eq!(killed.out.status.signal(), Some(9), "{}", killed.stderr());
        let last = killed
            .stderr()
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("applying: "))
            .map(str::to_string);
        assert!(
            last.as_deref().is_some_and(|l| l.starts_with(label)),
            "killed after step {step}: {last:?}, not {label:?}\n{}",
            killed.stderr()
        );
        let j = n.switchover(old, cand, &[]).run().ok();
        eprintln!("rerun after step {step}: {:?}", harness::summaries(&j));
        n.sibling_follows(&j, cand);
        settled(cand, &[old, s2]);
        slots_settled(cand, &[old, s2]);
        streams_as(cand, &[old, s2], &[&j]);
    }
}

/// A failover by hand (P stopped cleanly, S2 promoted) followed by a
/// switchover run on P's host by mistake: P stopped with no switchover
/// to resume, so S1 is not promoted (that would make a second primary)
/// and P is not started; once S1 follows S2, its timeline says why too.
#[test]
fn a_node_stopped_outside_a_switchover_is_not_resumed() {
    if skipped() {
        return;
    }
    let n = nodes(Cluster::builder(), true);
    let (p, s1, s2) = (&n.p, &n.s1, n.s2.as_ref().unwrap());
    p.stop();
    harness::pgrepctl(["promote", "--json", "-D", s2.data.to_str().unwrap()]).ok();
    let refused = |why: &str| {
        let dirs = [p.data.clone(), s1.data.clone()];
        let before = Files::of(&dirs);
        let j = n.switchover(p, s1, &[]).run().fails(1, "NOT_RESUMABLE");
        let message = j["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{j}");
        assert!(
            j["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("pgrepctl rejoin"),
            "{j}"
        );
        assert_eq!(
            Files::of(&dirs).changed_since(&before),
            Vec::<PathBuf>::new()
        );
        assert!(!p.running());
        assert_eq!(s1.sql("SELECT pg_is_in_recovery()"), "t");
    };
    refused("nothing in its configuration says a switchover");
    let primary = format!("host=127.0.0.1 port={} user=replicator", s2.port);
    harness::pgrepctl([
        "follow",
        "--json",
        "-D",
        s1.data.to_str().unwrap(),
        "--primary",
        &primary,
        "--password-file",
        n.pw.to_str().unwrap(),
    ])
    .ok();
    refused("a standby was promoted since");
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    if skipped() {
        return;
    }
    let n = nodes(Cluster::builder(), false);
    let (p, s1) = (&n.p, &n.s1);
    // Each run: refused, with no file changed and the roles as they were.
    let run = |cand: String, extra: &[&str], exit: i32, code: &str| {
        let before = n.files();
        let mut t = Test::new([
            "switchover",
            "--json",
            "-D",
            p.data.to_str().unwrap(),
            "--candidate",
            &cand,
            "--password-file",
            n.pw.to_str().unwrap(),
        ]);
        for a in extra {
            t = t.arg(a);
        }
        let j = t.run().fails(exit, code);
        assert_eq!(
            n.files().changed_since(&before),
            Vec::<PathBuf>::new(),
            "{j}"
        );
        writable(p);
        assert_eq!(s1.sql("SELECT pg_is_in_recovery()"), "t");
        j
    };

    let j = run(tcp(p), &[], 1, "NOT_A_STANDBY");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is this primary itself"),
        "{j}"
    );

    p.sql("CREATE ROLE app LOGIN");
    caught_up(p, &[s1]);
    let app = format!("host=127.0.0.1 port={} user=app dbname=postgres", s1.port);
    let j = run(app, &[], 1, "NOT_SUPERUSER");
    assert!(
        j["error"]["hint"].as_str().unwrap().contains("superuser"),
        "{j}"
    );

    let j = run(tcp(s1), &["--sibling", &tcp(s1)], 2, "USAGE");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is the candidate itself"),
        "{j}"
    );

    let j = run(tcp(s1), &["--catchup-timeout", "soon"], 2, "USAGE");
    assert!(
        j["error"]["message"].as_str().unwrap().contains("soon"),
        "{j}"
    );

    // Replay paused on the candidate.
    s1.sql("SELECT pg_wal_replay_pause()");
    let j = run(tcp(s1), &[], 1, "PRIMARY_NOT_READY");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("replay paused"),
        "{j}"
    );
    assert!(
        j["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("pg_wal_replay_resume()"),
        "{j}"
    );
    s1.sql("SELECT pg_wal_replay_resume()");

    // The candidate lags: its receiver is frozen while P writes.
    caught_up(p, &[s1]);
    let frozen = Frozen::wal_receiver(s1);
    p.sql("INSERT INTO w SELECT generate_series(1, 1000)");
    let j = run(tcp(s1), &["--max-lag", "1"], 1, "PRIMARY_NOT_READY");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than --max-lag"),
        "{j}"
    );
    drop(frozen);
    caught_up(p, &[s1]);

    // A WAL receiver that stopped replying (stuck) is refused before any
    // drain: 8 s of silence with replies due every second.
    s1.sql("ALTER SYSTEM SET wal_receiver_status_interval = '1s'");
    s1.sql("SELECT pg_reload_conf()");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let frozen = Frozen::wal_receiver(s1);
    std::thread::sleep(std::time::Duration::from_secs(8));
    let j = run(tcp(s1), &[], 1, "STANDBY_NOT_STREAMING");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has not replied"),
        "{j}"
    );
    drop(frozen);
    s1.sql("ALTER SYSTEM RESET wal_receiver_status_interval");
    s1.sql("SELECT pg_reload_conf()");
    caught_up(p, &[s1]);
}

#[test]
fn dry_run_reports_what_the_run_does_and_changes_nothing() {
    if skipped() {
        return;
    }
    let n = nodes(Cluster::builder(), true);
    let (p, s1, s2) = (&n.p, &n.s1, n.s2.as_ref().unwrap());
    let before = n.files();
    let dj = n.switchover(p, s1, &["--dry-run"]).run().ok();
    assert_eq!(dj["changed"], true, "{dj}");
    assert_eq!(n.files().changed_since(&before), Vec::<PathBuf>::new());
    writable(p);
    assert_eq!(s1.sql("SELECT pg_is_in_recovery()"), "t");
    assert_eq!(
        p.sql("SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM pg_replication_slots"),
        "s1,s2"
    );
    assert_eq!(s1.sql("SELECT count(*) FROM pg_replication_slots"), "0");

    let j = n.switchover(p, s1, &[]).run().ok();
    assert_eq!(
        harness::summaries(&dj),
        harness::summaries(&j),
        "dry run {dj}\nreal run {j}"
    );
    n.sibling_follows(&j, s1);
    settled(s1, &[p, s2]);

    // Done: a dry run of it again lists nothing (the old slots here, named
    // by the nodes' configuration, are gone).
    let again = n.switchover(p, s1, &["--dry-run"]).run().ok();
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(harness::summaries(&again), Vec::<String>::new(), "{again}");
}

#[test]
fn unsupported_candidate_version() {
    let major = harness::major(&harness::bindir());
    if major >= 12 {
        eprintln!("skipped: PostgreSQL {major} has pg_promote() (the other tests cover it)");
        return;
    }
    let n = nodes(Cluster::builder(), false);
    let (p, s1) = (&n.p, &n.s1);
    let before = n.files();
    let j = n
        .switchover(p, s1, &[])
        .run()
        .fails(1, "UNSUPPORTED_VERSION");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pg_promote()"),
        "{j}"
    );
    assert_eq!(n.files().changed_since(&before), Vec::<PathBuf>::new());
    writable(p);
    assert_eq!(s1.sql("SELECT pg_is_in_recovery()"), "t");
}
