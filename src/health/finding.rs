//! The codes of `check` and `smoke-test` findings (the `code` of each
//! problem in a report, beside the error codes of nodes that could not be
//! inspected), declared once with their meaning: the man pages list them
//! from here, so a new finding cannot go undocumented.

/// Declares each finding as a `&str` constant and [`ALL`] with meanings.
macro_rules! findings {
    ($($name:ident: $meaning:literal),* $(,)?) => {
        $(#[doc = $meaning] pub const $name: &str = stringify!($name);)*
        /// Every finding code with its meaning, for the documentation.
        pub const ALL: &[(&str, &str)] = &[$((stringify!($name), $meaning)),*];
    };
}

findings! {
    NOT_A_PRIMARY: "the node given as --primary is in recovery (a standby)",
    NOT_A_STANDBY: "a node given as --standby is not in recovery (a primary)",
    PRIMARY_READ_ONLY: "the primary refuses writes: default_transaction_read_only is on in its configuration (an interrupted switchover's drain, or set by hand)",
    SPLIT_BRAIN: "more than one node given is not in recovery: each takes writes the others never see",
    TIMELINE_DIVERGED: "a standby on an older timeline than the primary's that cannot follow it (it went past the switch point, or it does not stream and check cannot see the histories): run pgrepctl rejoin",
    TIMELINE_BEHIND: "a standby on an older timeline than the primary's that could follow it but does not stream: run pgrepctl follow",
    STANDBY_NOT_STREAMING: "a standby's WAL receiver is not streaming",
    STANDBY_NOT_MATCHED: "no wal sender of the primary or of a listed standby serves this standby",
    STANDBY_NAME_SHARED: "a standby streams under an application_name that several wal senders of its upstream share, from one address and without a slot that tells them apart: which one is its is unknown (give each standby its own --application-name)",
    NO_STANDBY_CONNECTED: "the primary has no standby streaming from it",
    TOO_FEW_STANDBYS: "fewer wal senders stream than --expect-standbys asks",
    SENDER_NOT_STREAMING: "a wal sender is in a state other than streaming (catchup, backup, stopping)",
    REPLAY_PAUSED: "WAL replay is paused on a standby (by pg_wal_replay_pause(), or on 14+ by a hot-standby setting below the primary's)",
    LAG_BYTES: "replication lag in bytes over --warn-lag/--crit-lag",
    LAG_TIME: "replication lag in time over --warn-lag/--crit-lag",
    SLOT_INACTIVE: "a replication slot no standby uses, retaining WAL",
    SLOT_LOST: "a replication slot whose WAL has been removed (wal_status lost)",
    SETTING_TOO_LOW: "a standby's hot-standby setting is below the primary's (rerun clone-standby on it)",
    ARCHIVE_FAILING: "the primary's archiver failed more recently than it succeeded (pg_stat_archiver): WARNING, CRITICAL after --archive-crit or at --archive-ready-crit .ready files",
    ARCHIVE_BACKLOG: "WAL segments waiting to be archived (.ready files in pg_wal/archive_status) reach --archive-ready-warn/--archive-ready-crit, also when the failures are not counted (an archive_command exiting above 125 or killed by a signal)",
    ARCHIVE_STALE: "WAL waits to be archived and the last archived segment is older than 3 (WARNING) or 10 (CRITICAL) times archive_timeout",
    ARCHIVE_PROBE_FAILED: "check --archive-probe: the segment pg_switch_wal() closed was not archived within --timeout (or WAL could not be switched)",
    REPLICATION_PLAINTEXT: "check --require-ssl: a standby's replication connection over TCP is not encrypted (pg_stat_ssl); a link from the upstream's own host (a Unix socket, or a loopback address: a local standby or an SSH tunnel's far end) is not counted",
    CERT_EXPIRING: "a node's server certificate (ssl_cert_file) expires within --cert-warn-days (WARNING) or --cert-crit-days (CRITICAL), or has expired (CRITICAL)",
    INSUFFICIENT_PRIVILEGE: "the role cannot see what is asked (grant pg_monitor)",
    PROBE_TIMEOUT: "smoke-test: the standby did not replay the probe within --timeout",
    TOKEN_MISSING: "smoke-test: the standby replayed past the probe but does not show its row",
    WRITE_ACCEPTED: "smoke-test: the standby accepted a write (it is not a hot standby)",
    MIGRATION_MISSING: "migrate status: no subscription for this database on the target (never started, or aborted; a finished cutover is OK while its source stays read-only)",
    SOURCE_READ_ONLY: "migrate status: the source database is read-only (ALTER DATABASE … SET default_transaction_read_only = on) while the migration is still there: a cutover stopped before its commit point; rerun cutover, or abort, which turns writes back on",
    CUTOVER_UNFINISHED: "migrate status: a cutover passed its commit point (the target is the database) and stopped before it dropped the replication; rerun cutover to finish it",
    SUBSCRIPTION_DISABLED: "migrate status: the subscription is disabled, or its apply worker is not running",
    SYNC_IN_PROGRESS: "migrate status: tables still in their initial copy (not ready yet)",
    APPLY_ERRORS: "migrate status: the subscription's apply or table sync failed (pg_stat_subscription_stats, 15+; the target's log says why)",
    SCHEMA_DRIFT: "migrate status: a table or column exists on one side only (DDL is not replicated: run it on the target too)",
    SLOT_MISSING: "migrate status: the subscription's slot is gone from the source (run migrate abort, then start again)",
    WRITE_NOT_PROVEN: "smoke-test: the write on the standby failed for another reason than read-only",
    SETUP_FAILED: "smoke-test: the probe table could not be made on the primary",
    CLEANUP_FAILED: "smoke-test: the probe table could not be removed afterwards",
    INTERRUPTED: "smoke-test: interrupted (Ctrl-C) before it finished",
    QUERY_FAILED: "a query on a node failed while the probe was checked",
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_their_codes() {
        assert_eq!(super::LAG_BYTES, "LAG_BYTES");
        assert!(
            super::ALL
                .iter()
                .any(|(c, m)| *c == "SLOT_LOST" && m.contains("lost"))
        );
    }
}
