//! The command line: global flags and the subcommand list. Each
//! subcommand's own flags live beside its code in `commands/`; the flag
//! groups several commands share are in [`flags`], and the names
//! PostgreSQL limits (slot, role, application_name) in [`names`].

pub mod flags;
pub mod names;

use crate::commands;
use clap::{Parser, Subcommand};

/// Set up, check and smoke-test PostgreSQL physical streaming replication.
#[derive(Parser, Debug)]
#[command(name = "pgrepctl", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Global {
    /// Print one JSON object on stdout and nothing else there
    #[arg(long, global = true)]
    pub json: bool,
    /// More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only warnings and errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// No progress bars; plain periodic lines instead
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Make a primary ready for streaming standbys (role, settings, pg_hba.conf, slots)
    InitMaster(Box<commands::init_master::Args>),
    /// Make this host a streaming hot standby of a primary (copy, configure, start, wait)
    CloneStandby(Box<commands::clone_standby::Args>),
    /// Promote this host's standby to primary (refused while its upstream answers)
    ///
    /// Run on the standby's host with -D. Before anything changes: the
    /// server must be a running standby, and the upstream its
    /// primary_conninfo names is tried with the standby's own credentials;
    /// if it answers (a primary, or anything that takes the connection),
    /// promote refuses unless --force, since two primaries would take
    /// writes. Then pg_promote() (12+) or pg_ctl promote (10-11), a wait
    /// until the server takes writes, and a CHECKPOINT so pg_control shows
    /// the new timeline. Reports the timeline and the LSN where it began.
    /// On a server that is already a primary it changes nothing.
    Promote(commands::promote::Args),
    /// Repoint a standby at a new primary (reload on 13+; refused when it diverged)
    ///
    /// Run on the standby's host with -D, or from anywhere with --standby
    /// (13+, a superuser connection). Before anything changes: the standby
    /// is inspected (its timeline and where its WAL ends), and the new
    /// primary is asked over a replication connection with the standby's
    /// own credentials (IDENTIFY_SYSTEM, TIMELINE_HISTORY). A standby of
    /// another cluster, or one that went past the point where the new
    /// primary's timeline began (DIVERGED: pgrepctl rejoin is for that), is
    /// refused. Then the new primary_conninfo (the standby's user,
    /// passfile and application_name kept), primary_slot_name and
    /// recovery_target_timeline = 'latest' are written (recovery.conf on
    /// 10-11, postgresql.auto.conf or ALTER SYSTEM on 12+), the server
    /// reloads (13+) or restarts, and follow waits until the WAL receiver
    /// streams from the new primary on its timeline. A standby that already
    /// does changes nothing.
    Follow(Box<commands::follow::Args>),
    /// Turn a stopped old primary (or a diverged standby) into a standby of the new primary (follow, pg_rewind or re-clone)
    ///
    /// Run on the node's host with -D, the node stopped. Before anything
    /// changes: the new primary is asked over a replication connection with
    /// the standby's credentials (IDENTIFY_SYSTEM, TIMELINE_HISTORY) and
    /// must be the same database system; the node's control data, timeline
    /// history and WAL end decide, as pg_rewind does, whether it can follow
    /// as it is (its WAL ends at or before the point where the new timeline
    /// began) or went past it. A node that went past it, or did not shut
    /// down cleanly, is rewound with pg_rewind after a preflight (data
    /// checksums or wal_log_hints, full_page_writes on the source, the
    /// rewind role's rights probed live, regular writable files, pg_rewind
    /// --dry-run); a node that did not shut down cleanly gets crash recovery
    /// in single-user mode first. With --rewind auto a node whose WAL since
    /// the fork is larger than its data directory is copied anew instead.
    /// The node's configuration files are kept and put back around the
    /// rewind, the standby configuration is written by pgrepctl (never
    /// pg_rewind -R), and the node is started and watched until it streams
    /// from the new primary on its timeline. --reclone-on-failure moves the
    /// old directory aside (never deletes it) and runs clone-standby when
    /// pg_rewind fails or this major has none. A node already streaming
    /// from the new primary changes nothing.
    Rejoin(Box<commands::rejoin::Args>),
    /// Hand the primary role to a standby, planned: zero data loss, a write pause of a few hundred milliseconds
    ///
    /// Run on the current primary's host with -D; --candidate (and each
    /// --sibling) is a superuser conninfo. Preflight, all of it before any
    /// change and what --dry-run shows: the candidate streams from this
    /// primary (its WAL receiver and this primary's walsender), is the same
    /// system on the same timeline, within --max-lag, replay not paused and
    /// not delayed; it has walsenders and slots free for this node and the
    /// siblings; its pg_hba.conf lets them in (else the init-master --allow
    /// to run there); its synchronous_standby_names will not make commits
    /// wait; this node's hot-standby settings are at least the candidate's.
    /// Then: CHECKPOINT; writes off (default_transaction_read_only through
    /// ALTER SYSTEM, a reload); write transactions get --drain-timeout,
    /// then client sessions are ended; CHECKPOINT; a fast stop, clean
    /// according to the control file; the candidate must receive and replay
    /// past the shutdown checkpoint within --catchup-timeout, or the
    /// switchover rolls back by itself (this node a writable primary again,
    /// nothing promoted). This node is fenced (configured as the
    /// candidate's standby while stopped) before the candidate is promoted
    /// (pg_promote(), 12+); then it is started and must stream on the new
    /// timeline, the siblings follow (13+ from here, else the follow
    /// command to run there is printed), its old slots are dropped, and
    /// smoke-test and check run through the new primary. Rerunning the
    /// same command after an interruption finishes it, or rolls back.
    Switchover(Box<commands::switchover::Args>),
    /// Check replication health: senders, receivers, lag, slots, settings (Nagios exit codes)
    ///
    /// On the primary: each wal sender (state, LSNs, lag in bytes and time,
    /// sync state) and each replication slot; on each standby: recovery, the
    /// WAL receiver, receive and replay positions, replay delay. Standbys are
    /// matched to the senders by application name (and address): the
    /// primary's, or for a cascading standby those of the standby given it
    /// streams from; each node's upstream is shown and lag is measured
    /// against the primary. A standby that is not streaming is CRITICAL (its
    /// lag unknown), an inactive slot that keeps WAL is a WARNING, and a
    /// hot-standby setting (max_connections, max_worker_processes,
    /// max_wal_senders, max_prepared_transactions, max_locks_per_transaction)
    /// lower on a standby than on the primary is CRITICAL: rerun
    /// clone-standby on the standby host to raise it. Each node's timeline
    /// is shown; two nodes not in recovery are a split brain (CRITICAL), and
    /// a standby on an older timeline than the primary's that cannot follow
    /// it is CRITICAL, fixed by pgrepctl rejoin (decided from both timeline
    /// histories when the role may call pg_read_file, else from whether it
    /// streams). When the primary archives WAL, its archiver is checked
    /// too: failing (WARNING, CRITICAL after --archive-crit), segments
    /// waiting to be archived (--archive-ready-warn/-crit .ready files),
    /// nothing archived for 3 or 10 times archive_timeout; --archive-probe
    /// switches WAL and waits until that segment is archived. Each standby
    /// shows its WAL source (streaming, archive, none). All nodes are
    /// queried at once. A node given that refuses connections or does not answer
    /// within --timeout is CRITICAL; one that answers but will not tell
    /// (password, pg_hba.conf, privilege) is UNKNOWN. Either side alone may
    /// be checked.
    ///
    /// Lag thresholds default to 16MB and 30s (WARNING) and 256MB and 5min
    /// (CRITICAL); a value given replaces the default of its kind. Time lag
    /// is the primary's replay_lag, or the standby's replay delay while WAL
    /// waits to be replayed, so an idle primary does not alarm. The
    /// connecting role needs pg_monitor (or superuser).
    /// Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    Check(commands::check::Args),
    /// Prove replication end to end: write on the primary, read on each standby
    ///
    /// Creates the pgrepctl.smoke_test table on the primary when missing,
    /// inserts a row with a unique token, takes pg_current_wal_lsn(), waits
    /// until each standby's pg_last_wal_replay_lsn() passes it (bounded by
    /// --timeout), reads the token back, proves the standby refuses a write
    /// (SQLSTATE 25006; the attempt is rolled back), and reports the latency
    /// per standby in milliseconds. The probe row is always deleted again;
    /// the empty table stays for the next run unless --cleanup. With --json,
    /// changed is true when the schema or table was created, or dropped by
    /// --cleanup. Exit status as check: 0 OK, 1 WARNING, 2 CRITICAL (a node
    /// given that is down included), 3 UNKNOWN.
    SmokeTest(commands::smoke_test::Args),
    /// Print the connection strings applications should use: writes to the primary, reads to standbys
    ///
    /// A write string lists every node with target_session_attrs=read-write
    /// (libpq 10+): libpq tries the hosts in turn and settles on the one
    /// that takes writes, so after a switchover or failover the application
    /// reaches the new primary without any change. A read string lists the
    /// standbys first with target_session_attrs=prefer-standby (libpq 14+)
    /// and load_balance_hosts=random (libpq 16+); for older clients a note
    /// gives target_session_attrs=any with the standbys first. Each --node
    /// is asked (within --timeout) whether it is the primary, which is then
    /// listed first in the write string (saving a round trip; the strings
    /// work in any order). The primary's pg_stat_replication shows its
    /// standbys' addresses but not their ports: standbys not given are
    /// named in a note and added at the primary's port only with
    /// --discover; a standby on an address a given node has is taken to be
    /// that node. user and dbname are kept when every node gives the same;
    /// a password is never printed. --format libpq, uri or jdbc print
    /// write:, read:, node: and note: lines; json all formats at once.
    /// Exit status: 0 printed, 1 printed but no node answered (roles
    /// unknown; the strings still list the nodes given), 2 usage error.
    Conninfo(commands::conninfo::Args),
    /// Archive one WAL file durably (archive_command = '/abs/path/pgrepctl wal-push %p DIR')
    ///
    /// Copies PATH into ARCHIVE_DIR under its own name: a temp file in
    /// ARCHIVE_DIR (same filesystem), fsync, a hard link to the final name
    /// (never over an existing file; a rename where the filesystem has no
    /// hard links), fsync of the directory. An archived file with the same
    /// bytes is success (a retry after a crash); with different bytes the
    /// push fails with ARCHIVE_CONFLICT and the archived file stays
    /// untouched, so the server keeps the segment and retries. Segments,
    /// .partial, .history and .backup files are archived; any other name is
    /// refused. Temp files of a killed push (.NAME.pgrepctl-wal.*) are
    /// removed by a later push once older than a minute. Nothing is printed
    /// on success (unless -v or --json); a failure is one line on stderr,
    /// which lands in the server log. Exit status: 0 archived, 1 failed, 2
    /// not a WAL file name: never above 125, so the server counts every
    /// failure in pg_stat_archiver.failed_count.
    WalPush(commands::wal::PushArgs),
    /// Restore one WAL file from the archive (restore_command = '/abs/path/pgrepctl wal-fetch %f %p DIR')
    ///
    /// Copies ARCHIVE_DIR/NAME to a temp file beside PATH, fsyncs it and
    /// renames it to PATH, so the server never reads a partial file. Exactly
    /// NAME is fetched: asked for a segment, its .partial (an old
    /// timeline's unfinished last segment) is never returned; history files
    /// are fetched by their own names. A NAME not in the archive exits 1
    /// with nothing on stderr: that is how archive recovery ends and
    /// streaming takes over. Any other failure exits 1 with one line on
    /// stderr; a NAME that is not a WAL file name exits 2.
    WalFetch(commands::wal::FetchArgs),
    /// Remove archived WAL no listed consumer still needs (oldest first; never .history files)
    ///
    /// The keep point is the oldest of --keep-from SEGMENT, the primary's
    /// physical slots' restart_lsn (--primary) and, for each --standby, the
    /// least of its last restartpoint's redo, replay and receive positions.
    /// A server that does not answer stops the prune before anything goes,
    /// and so do servers of two database systems, or of another one than
    /// the one that wrote the archive's newest segment (SYSTEM_ID_MISMATCH).
    /// Segments, .partial and .backup files with a lower segment number are
    /// removed, whatever their timeline (as pg_archivecleanup compares
    /// names); .history files and other files stay. Files go oldest first,
    /// one at a time: an interrupted prune leaves a contiguous archive, and
    /// a rerun finishes it. --dry-run lists what would go; --json gives the
    /// list (removed), the keep point (keep_from) and each keep_points
    /// source. Unlike archive_cleanup_command on one standby, this keeps
    /// what every listed standby and slot needs.
    WalPrune(commands::wal::PruneArgs),
    /// An SSH tunnel for replication where TLS is not an option: a systemd unit, or run in the foreground
    ///
    /// Both forms run the same ssh command line: -N -L
    /// 127.0.0.1:LOCAL:127.0.0.1:REMOTE with ExitOnForwardFailure=yes,
    /// ServerAliveInterval=5, ServerAliveCountMax=3, ConnectTimeout=10,
    /// BatchMode=yes and StrictHostKeyChecking=yes. Before anything starts
    /// or is written: the local port must be free (or held by this very
    /// unit), the --identity key must exist and be private, and a host
    /// missing from known_hosts is a warning. The standby then clones with
    /// --primary 'host=127.0.0.1 port=LOCAL user=replicator'.
    Tunnel(commands::tunnel::Args),
    /// A local primary and standbys, replicated and checked, in one command
    Sandbox(commands::sandbox::Args),
    /// Move a database (or chosen tables) to another server, across major versions, with logical replication
    ///
    /// Four steps, each run from anywhere that reaches both servers with
    /// superuser conninfos: start (preflight, schema, publication on the
    /// source, subscription on the target: copy, then stream), status
    /// (sync state, lag, retained WAL, apply errors, drift; check's exit
    /// codes), cutover (writes off on the source, wait until the target
    /// confirmed the last write, sequences, verify, drop the replication)
    /// and abort (drop what start created, from any state). Nothing is
    /// kept on disk: the publication, subscription and slot are named
    /// after the database (pgrepctl_migrate_DB) and found again on the
    /// servers. PostgreSQL 10 to 18, target major at least the source's.
    Migrate(commands::migrate::Args),
    /// Write the man pages and shell completions under DIR (for packagers)
    #[command(hide = true)]
    GenerateDocs {
        /// Project root to write man/ and completions/ into
        #[arg(default_value = ".")]
        dir: std::path::PathBuf,
    },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::InitMaster(_) => "init-master",
            Command::CloneStandby(_) => "clone-standby",
            Command::Promote(_) => "promote",
            Command::Follow(_) => "follow",
            Command::Rejoin(_) => "rejoin",
            Command::Switchover(_) => "switchover",
            Command::Conninfo(_) => "conninfo",
            Command::Check(_) => "check",
            Command::SmokeTest(_) => "smoke-test",
            Command::WalPush(_) => "wal-push",
            Command::WalFetch(_) => "wal-fetch",
            Command::WalPrune(_) => "wal-prune",
            Command::Tunnel(_) => "tunnel",
            Command::Sandbox(_) => "sandbox",
            Command::Migrate(_) => "migrate",
            Command::GenerateDocs { .. } => "generate-docs",
        }
    }
}
