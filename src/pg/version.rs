//! A server's major version, and every behaviour that depends on it, named
//! once. Code asks "does this server keep its standby settings in
//! recovery.conf?", never "is it below 120000?": when a new major arrives,
//! this is the one file to read (pgBackRest's `version.h` does the same).

use crate::error::{Code, Error, Result};

/// Oldest and newest supported majors, as `server_version_num`.
pub const MIN: u32 = 100000;
pub const MAX: u32 = 189999;

/// A supported server version (`server_version_num`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(u32);

/// Which setting keeps WAL for standbys that fall behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalKeep {
    /// `wal_keep_segments`: a count of WAL segments (10–12).
    Segments,
    /// `wal_keep_size`: megabytes (13+).
    Size,
}

impl WalKeep {
    pub fn setting(self) -> &'static str {
        match self {
            WalKeep::Segments => "wal_keep_segments",
            WalKeep::Size => "wal_keep_size",
        }
    }
}

impl Version {
    /// A version pgrepctl supports, or UNSUPPORTED_VERSION.
    pub fn new(num: u32) -> Result<Version> {
        if !(MIN..=MAX).contains(&num) {
            return Err(Error::new(
                Code::UnsupportedVersion,
                format!("PostgreSQL server version {num} is not supported"),
            )
            .hint("pgrepctl supports PostgreSQL 10 to 18"));
        }
        Ok(Version(num))
    }

    /// A `server_version_num` as carried in facts (checked with
    /// [`Version::new`] where it was read).
    pub fn of(num: u32) -> Version {
        Version(num)
    }

    pub fn num(self) -> u32 {
        self.0
    }

    pub fn major(self) -> u32 {
        self.0 / 10000
    }

    /// Standby settings live in `recovery.conf` with `standby_mode = on`
    /// (10–11); from 12, `standby.signal` and ordinary settings.
    pub fn recovery_conf(self) -> bool {
        self.0 < 120000
    }

    pub fn wal_keep(self) -> WalKeep {
        if self.0 >= 130000 {
            WalKeep::Size
        } else {
            WalKeep::Segments
        }
    }

    /// `pg_promote()` exists (12+); before, `pg_ctl promote`.
    pub fn promote_via_sql(self) -> bool {
        self.0 >= 120000
    }

    /// `primary_conninfo` changes take effect on reload (13+); before,
    /// a restart of the standby.
    pub fn primary_conninfo_reloads(self) -> bool {
        self.0 >= 130000
    }

    /// libpq takes `channel_binding` (13+); a server of this major
    /// offers SCRAM-SHA-256-PLUS over TLS from 11. A standby streams from
    /// its own major, so for a walreceiver the first decides.
    pub fn has_channel_binding(self) -> bool {
        self.0 >= 130000
    }

    /// `pg_stat_wal_receiver` has `sender_host`/`sender_port` (11+).
    pub fn receiver_shows_sender(self) -> bool {
        self.0 >= 110000
    }

    /// `pg_replication_slots.wal_status` (13+).
    pub fn slot_wal_status(self) -> bool {
        self.0 >= 130000
    }

    /// A standby checks `max_wal_senders` against its primary (12+).
    pub fn standby_checks_max_wal_senders(self) -> bool {
        self.0 >= 120000
    }

    /// `cluster_name` is the WAL receiver's default application_name (12+).
    pub fn receiver_uses_cluster_name(self) -> bool {
        self.0 >= 120000
    }

    /// A standby below a raised primary setting pauses recovery (14+)
    /// instead of shutting down.
    pub fn pauses_on_insufficient_parameters(self) -> bool {
        self.0 >= 140000
    }

    /// pg_hba.conf joins a line ending in `\` with the next (14+).
    pub fn hba_line_continuation(self) -> bool {
        self.0 >= 140000
    }

    /// `pg_basebackup --compress=server-…` (15+).
    pub fn server_side_compression(self) -> bool {
        self.0 >= 150000
    }

    /// The replication command `READ_REPLICATION_SLOT` (15+).
    pub fn read_replication_slot(self) -> bool {
        self.0 >= 150000
    }

    /// The `in_hot_standby` setting, which a replication connection can
    /// `SHOW`: whether the server is a standby (14+).
    pub fn shows_in_hot_standby(self) -> bool {
        self.0 >= 140000
    }

    /// pg_rewind can use a role that is not a superuser, given EXECUTE on
    /// pg_ls_dir, pg_stat_file and pg_read_binary_file (11+).
    pub fn rewind_without_superuser(self) -> bool {
        self.0 >= 110000
    }

    /// pg_rewind takes `--no-sync` (12+; 11 refuses it): pgrepctl then syncs the rewound
    /// directory with one syncfs per filesystem instead of an fsync per
    /// file, which is most of a small rewind's time.
    pub fn rewind_no_sync(self) -> bool {
        self.0 >= 120000
    }

    /// `pg_ls_archive_statusdir()` lists `pg_wal/archive_status` (12+,
    /// open to pg_monitor); before, only `pg_ls_dir`, which a role may
    /// call on 10 only as a superuser.
    pub fn lists_archive_status(self) -> bool {
        self.0 >= 120000
    }

    /// pg_rewind copies the source's `pg_replslot` into the target (10):
    /// the rewound node then holds slots of the new primary that pin WAL.
    /// CREATE SUBSCRIPTION … WITH (binary = true): 14+ on both sides
    /// (the subscriber asks for it, the publisher's pgoutput must know it).
    pub fn logical_binary(self) -> bool {
        self.0 >= 140000
    }

    /// Large transactions streamed to the subscriber while in progress
    /// (streaming = on): 14+ on both sides.
    pub fn logical_streaming(self) -> bool {
        self.0 >= 140000
    }

    /// pg_stat_subscription_stats (apply_error_count, sync_error_count).
    pub fn subscription_stats(self) -> bool {
        self.0 >= 150000
    }

    pub fn rewind_copies_replslot(self) -> bool {
        self.0 < 110000
    }

    /// `pg_read_binary_file` reads any file for a superuser or a member of
    /// `pg_read_server_files` given EXECUTE (11+); on 10 only a superuser
    /// may call it, and only for files under the data directory (or the
    /// log directory): check reads the server certificate with it.
    pub fn reads_any_server_file(self) -> bool {
        self.0 >= 110000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        let v = |n| Version::new(n).unwrap();
        assert!(v(110022).recovery_conf() && !v(120000).recovery_conf());
        assert!(!v(110022).lists_archive_status() && v(120000).lists_archive_status());
        assert_eq!(v(120017).wal_keep(), WalKeep::Segments);
        assert_eq!(v(130000).wal_keep().setting(), "wal_keep_size");
        assert!(!v(110000).promote_via_sql() && v(120000).promote_via_sql());
        assert!(v(140000).pauses_on_insufficient_parameters());
        assert!(!v(140010).read_replication_slot() && v(150000).read_replication_slot());
        assert!(!v(130000).pauses_on_insufficient_parameters());
        assert!(!v(100023).reads_any_server_file() && v(110000).reads_any_server_file());
        assert_eq!(v(180001).major(), 18);
        assert_eq!(
            Version::new(90624).unwrap_err().code,
            Code::UnsupportedVersion
        );
        assert!(Version::new(190000).is_err());
    }
}
