# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_pgrepctl_global_optspecs
    string join \n json v/verbose q/quiet no-progress h/help V/version
end

function __fish_pgrepctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_pgrepctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_pgrepctl_using_subcommand
    set -l cmd (__fish_pgrepctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -s h -l help -d 'Print help'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -f -a "init-master" -d 'Make a primary ready for streaming standbys (role, settings, pg_hba.conf, slots)'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -f -a "clone-standby" -d 'Make this host a streaming hot standby of a primary (copy, configure, start, wait)'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -f -a "promote" -d 'Promote this host\'s standby to primary (refused while its upstream answers)'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -f -a "follow" -d 'Repoint a standby at a new primary (reload on 13+; refused when it diverged)'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -f -a "rejoin" -d 'Turn a stopped old primary (or a diverged standby) into a standby of the new primary (follow, pg_rewind or re-clone)'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -f -a "switchover" -d 'Hand the primary role to a standby, planned: zero data loss, a write pause of a few hundred milliseconds'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -f -a "check" -d 'Check replication health: senders, receivers, lag, slots, settings (Nagios exit codes)'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -f -a "smoke-test" -d 'Prove replication end to end: write on the primary, read on each standby'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -f -a "conninfo" -d 'Print the connection strings applications should use: writes to the primary, reads to standbys'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -f -a "wal-push" -d 'Archive one WAL file durably (archive_command = \'/abs/path/pgrepctl wal-push %p DIR\')'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -f -a "wal-fetch" -d 'Restore one WAL file from the archive (restore_command = \'/abs/path/pgrepctl wal-fetch %f %p DIR\')'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -f -a "wal-prune" -d 'Remove archived WAL no listed consumer still needs (oldest first; never .history files)'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -f -a "tunnel" -d 'An SSH tunnel for replication where TLS is not an option: a systemd unit, or run in the foreground'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -f -a "sandbox" -d 'A local primary and standbys, replicated and checked, in one command'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -f -a "migrate" -d 'Move a database (or chosen tables) to another server, across major versions, with logical replication'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -f -a "generate-docs" -d 'Write the man pages and shell completions under DIR (for packagers)'
complete -c pgrepctl -n "__fish_pgrepctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -s D -l pgdata -d 'Data directory of the primary (used to find the running server and to restart it)' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -s h -l host -d 'Server host or socket directory [default: from -D\'s postmaster.pid, else PGHOST]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -s p -l port -d 'Server port [default: from postmaster.pid, else PGPORT, else 5432]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -s U -l username -d 'Superuser to connect as [default: PGUSER, else the data directory\'s owner when run as root, else the OS user]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -s d -l dbname -d 'Database name, or a full conninfo string or postgresql:// URI [default: postgres]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l replication-user -d 'Name of the replication role to create or fix' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l password-file -d 'File whose first line is the replication password (mode 0600) [default: PGREPCTL_REPLICATION_PASSWORD, else none]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l allow -d 'Standby address or CIDR allowed to replicate, e.g. 10.0.0.2 or 10.0.0.0/24 (repeatable)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l ssl-name -d 'With --ssl: a DNS name or IP address standbys use to reach this server, put in the server certificate pgrepctl issues and checked against an existing one (repeatable), e.g. --ssl-name db1.example.org --ssl-name 10.0.0.1' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l ssl-dir -d 'With --ssl: where pgrepctl\'s CA certificate and key go (never inside the data directory, which pg_basebackup copies to every standby) [default: the configuration directory when it is outside the data directory, e.g. /etc/postgresql/15/main]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l hba-method -d 'Authentication method of the written pg_hba.conf lines' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l max-wal-senders -d 'Lowest acceptable max_wal_senders (never lowered)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l wal-keep -d 'WAL kept for standbys that fall behind, with a unit (wal_keep_size on 13+, wal_keep_segments before; never lowered)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l listen -d 'Set listen_addresses to this value (needs a restart), e.g. \'*\' or \'localhost,10.0.0.1\'' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l monitor-from -d 'Monitoring host address or CIDR to let in as --monitor-user, to the postgres database with scram-sha-256 (repeatable); standbys cloned later let it in too' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l monitor-user -d 'Name of the monitoring role (LOGIN, member of pg_monitor) created for --monitor-from' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l monitor-password-file -d 'File whose first line is the monitoring role\'s password (mode 0600); needed when the role is created' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l slot -d 'Physical replication slot to create if missing (repeatable)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l archive-dir -d 'Archive WAL into this directory (shared storage, e.g. an NFS mount) with pgrepctl\'s durable wal-push: archive_mode = on (needs a restart), archive_command, archive_timeout; the directory must be writable by the server\'s OS user' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l archive-command -d 'Archive WAL with this command instead (archive_mode = on, archive_command = CMD as given: %p is the file\'s path, %f its name)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l archive-timeout -d 'With --archive-dir or --archive-command: switch to a new WAL file after this long when there was any write, so an idle primary still archives (archive_timeout; 0 turns it off) [default: 60s]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l restart -d 'Whether to restart the server when a changed setting needs it' -r -f -a "never\t'Never restart; report restart_required and the command to run'
if-needed\t'Restart when a changed setting needs it (wal_level, max_wal_senders, …)'
always\t'Restart even when nothing needs it'"
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l bindir -d 'Directory of the PostgreSQL programs (pg_ctl, postgres, pg_basebackup) [default: those of the server\'s major version: pg_config, /usr/lib/postgresql/MAJOR/bin, PATH]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l allow-privileged-role -d 'Let --replication-user name an existing role that is more than a replication login (superuser, CREATEDB, CREATEROLE, BYPASSRLS, owner of objects, member of roles other than pg_monitor and its parts): its password may change and is copied to every standby'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l ssl -d 'Standbys connect with TLS only: hostssl replication lines, a hostnossl … reject line before them for each --allow, and ssl = on. A server without a certificate gets pgrepctl\'s own CA and a server certificate for the --ssl-name values; an existing certificate is kept and checked (expiry, names)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l ssl-issue -d 'With --ssl: issue pgrepctl\'s own CA and server certificate even though the server has a certificate (Debian\'s snakeoil, say) that does not suit; the old files are kept, ssl_cert_file and ssl_key_file point at the new ones. pgrepctl\'s own certificate that no longer suits (expired, expiring within check\'s 30-day warning window, a --ssl-name added) is reissued by the same CA in place (pgrepctl-server.crt and .key are overwritten)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l allow-insecure -d 'Permit insecure choices: trust/password methods, all-addresses CIDRs, a group-readable password file'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l rewindable -d 'Make this server rewindable after a failover (what pgrepctl rejoin needs to bring it back as a standby without a new copy): wal_log_hints = on when the cluster has no data checksums (needs a restart)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l archive-library -d 'With --archive-dir on PostgreSQL 15+: archive through the server\'s basic_archive module (archive_library) instead of a command'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l dry-run -d 'Check everything and print the changes a real run would make, with diffs; change nothing'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l help -d 'Print help'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand init-master" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l primary -d 'The primary (or an upstream standby), as libpq keywords or a URI, e.g. \'host=10.0.0.1 port=5432 user=replicator\' [user default: replicator; port default: 5432]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -s D -l pgdata -d 'Data directory of the new standby: absent or empty (or anything, with --force)' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l sslrootcert -d 'The CA certificate that signed the primary\'s server certificate (init-master --ssl prints where it is): the standby connects with sslmode=verify-full (and channel_binding=require on PostgreSQL 13+), checked before the copy; the file is copied into the data directory as pgrepctl-primary-ca.crt, owned by the server\'s user, and primary_conninfo names that copy' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l password-file -d 'File whose first line is the replication password (mode 0600) [default: PGREPCTL_REPLICATION_PASSWORD, else none]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l passfile -d 'Where the standby\'s own 0600 password file goes, named by passfile= in primary_conninfo [default: DIR/pgrepctl.pgpass]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l slot -d 'Stream through this physical replication slot on the primary, creating it if missing' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l application-name -d 'application_name the primary shows for this standby in pg_stat_replication, and synchronous_standby_names names; give each standby its own (a name another standby already streams under is warned about) [default: this host\'s name]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l port -d 'Port the standby listens on, written to its postgresql.auto.conf [default: the primary\'s configuration]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l listen -d 'listen_addresses of the standby, e.g. \'*\' [default: the primary\'s configuration]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l bindir -d 'Directory of the PostgreSQL programs (pg_ctl, postgres, pg_basebackup) [default: those of the server\'s major version: pg_config, /usr/lib/postgresql/MAJOR/bin, PATH]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l max-rate -d 'Limit the copy\'s transfer rate to spare the primary\'s disk and network, e.g. 50M (pg_basebackup --max-rate; 32k to 1024M) [default: unlimited]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l compress -d 'Compress the copy on the primary before it crosses the network: auto (none from this host, before 15, or where a build lacks zstd; otherwise decided from a short probe of the link before the copy: none at 250 MB/s or faster, server-zstd:level=1,workers=2 from 40 MB/s, server-zstd:level=1 below that or when the probe cannot run), none, server-zstd[:level=N][,workers=N], or server-lz4' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l wait -d 'How long to wait for the started standby to stream and catch up (60, 60s, 2min)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l connect-timeout -d 'How long to wait for the primary to answer a connection (10, 10s, 500ms)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l restore-dir -d 'Restore WAL the stream no longer has from this archive directory (what init-master --archive-dir fills), with pgrepctl wal-fetch: restore_command, so a standby that fell behind catches up from the archive and returns to streaming' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l restore-command -d 'Restore WAL with this command instead (restore_command = CMD as given: %f is the file\'s name, %p where to put it)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l password-in-conninfo -d 'Write the password into primary_conninfo instead of a password file (readable by superusers through SQL)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l force -d 'Replace a non-empty target directory (never one a postmaster runs on; a former primary of this cluster is kept at PGDATA.replaced-TIMESTAMP)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l no-start -d 'Copy and configure, but do not start the standby'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l archive-cleanup -d 'With --restore-dir: delete archived WAL this standby no longer needs (archive_cleanup_command = pg_archivecleanup DIR %r); only when no other standby or backup reads the same archive'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l allow-insecure -d 'Accept a password file readable by others'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l dry-run -d 'Check everything and print the changes a real run would make, with diffs; change nothing'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -s h -l help -d 'Print help'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand clone-standby" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand promote" -s D -l pgdata -d 'Data directory of the running standby to promote' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand promote" -l wait -d 'How long the promotion may take until the server accepts writes, e.g. 60s' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand promote" -l upstream-timeout -d 'How long to try the upstream in primary_conninfo before taking it for dead, e.g. 3s' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand promote" -l bindir -d 'Directory of the PostgreSQL programs (pg_ctl, postgres, pg_basebackup) [default: those of the server\'s major version: pg_config, /usr/lib/postgresql/MAJOR/bin, PATH]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand promote" -l force -d 'Promote even though the upstream still answers (it is fenced off, or about to be): two primaries otherwise'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand promote" -l dry-run -d 'Check everything and print the changes a real run would make, with diffs; change nothing'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand promote" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand promote" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand promote" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand promote" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand promote" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand promote" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand follow" -s D -l pgdata -d 'Data directory of the standby on this host (running, or stopped cleanly as a standby)' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand follow" -l standby -d 'Instead of -D: a standby on another host, over a superuser connection (PostgreSQL 13+; ALTER SYSTEM and a reload), e.g. \'host=db3 user=postgres\'' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand follow" -l primary -d 'The new primary (or an upstream standby) to stream from, as libpq keywords or a URI, e.g. \'host=10.0.0.2 port=5432\'; user, passfile and application_name default to the standby\'s own' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand follow" -l slot -d 'Stream through this physical replication slot, created on the new primary if missing [default: none; a slot of the old upstream is dropped from the settings, kept when --primary is that same server by another address]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand follow" -l password-file -d 'File whose first line is the replication password (mode 0600) [default: PGREPCTL_REPLICATION_PASSWORD, else none]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand follow" -l wait -d 'How long to wait until the standby streams from the new primary on its timeline, e.g. 60s' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand follow" -l connect-timeout -d 'How long to try to connect to the new primary and to the standby, e.g. 10s' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand follow" -l bindir -d 'Directory of the PostgreSQL programs (pg_ctl, postgres, pg_basebackup) [default: those of the server\'s major version: pg_config, /usr/lib/postgresql/MAJOR/bin, PATH]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand follow" -l dry-run -d 'Check everything and print the changes a real run would make, with diffs; change nothing'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand follow" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand follow" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand follow" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand follow" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand follow" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand follow" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -s D -l pgdata -d 'Data directory of the stopped node to rejoin' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -l primary -d 'The new primary, as libpq keywords or a URI, e.g. \'host=10.0.0.2 user=replicator\' [user default: replicator; port default: 5432]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -l password-file -d 'File whose first line is the replication password (mode 0600) [default: PGREPCTL_REPLICATION_PASSWORD, else none]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -l slot -d 'Stream through this physical replication slot on the new primary, creating it if missing' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -l application-name -d 'application_name the new primary shows for this standby in pg_stat_replication [default: this host\'s name]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -l rewind -d 'Whether a node that went past the fork point may be rewound with pg_rewind (auto: rewind or re-clone, whichever moves less; never: refuse)' -r -f -a "auto\t'Rewind a diverged node, or re-clone it when its divergence is larger than its data directory'
never\t'Refuse a node that needs a rewind'"
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -l rewind-user -d 'Role pg_rewind connects as to the new primary: a superuser, or (11+) one granted EXECUTE on pg_ls_dir, pg_stat_file and pg_read_binary_file [default: the --primary user; its password from PGPASSFILE or ~/.pgpass, else the replication password]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -l wait -d 'How long to wait for the started standby to stream from the new primary, e.g. 60s' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -l connect-timeout -d 'How long to wait for the new primary to answer a connection, e.g. 10s' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -l bindir -d 'Directory of the PostgreSQL programs (pg_ctl, postgres, pg_basebackup) [default: those of the server\'s major version: pg_config, /usr/lib/postgresql/MAJOR/bin, PATH]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -l reclone-on-failure -d 'When pg_rewind fails (or this major has none), move the old directory aside to DIR.rejoin-TIMESTAMP and copy the node anew with clone-standby'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -l dry-run -d 'Check everything and print the changes a real run would make, with diffs; change nothing'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand rejoin" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -s D -l pgdata -d 'Data directory of the current primary, on this host' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -l candidate -d 'The standby to promote, as a superuser conninfo, e.g. \'host=10.0.0.2 user=postgres\' (PostgreSQL 12+: pg_promote())' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -l sibling -d 'Another standby of this primary to repoint at the candidate, as a superuser conninfo (repeatable; 13+ remotely, else the follow command to run there is printed)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -l password-file -d 'File whose first line is the replication password (mode 0600) [default: PGREPCTL_REPLICATION_PASSWORD, else none]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -l max-lag -d 'Refuse when the candidate\'s replay is further behind than this, e.g. 16MB' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -l drain-timeout -d 'How long write transactions may take to finish once writes are off, before their sessions are ended, e.g. 10s' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -l catchup-timeout -d 'How long the candidate may take to replay this node\'s shutdown checkpoint; past it the switchover rolls back, e.g. 30s' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -l wait -d 'How long the promotion, and this node\'s streaming from the new primary, may take, e.g. 60s' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -l slot -d 'Stream this node through this physical slot on the candidate (created) [default: a slot named after this node when the candidate streams through one here]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -l application-name -d 'application_name the new primary shows for this node [default: this host\'s name]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -l connect-timeout -d 'How long to try to connect to the candidate and the siblings, e.g. 10s' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -l bindir -d 'Directory of the PostgreSQL programs (pg_ctl, postgres, pg_basebackup) [default: those of the server\'s major version: pg_config, /usr/lib/postgresql/MAJOR/bin, PATH]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -l dry-run -d 'Check everything and print the changes a real run would make, with diffs; change nothing'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand switchover" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -l primary -d 'The primary: a conninfo string (\'host=10.0.0.1 user=monitor\'), a postgresql:// URI, or a host name' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -l standby -d 'A standby, same forms as --primary (repeatable)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -l warn-lag -d 'Lag that makes WARNING: a size (16MB) or a time (30s); give it twice for both [default: 16MB and 30s]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -l crit-lag -d 'Lag that makes CRITICAL: a size or a time, like --warn-lag [default: 256MB and 5min]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -l expect-standbys -d 'With --primary: CRITICAL when fewer than N wal senders stream (on the primary and the standbys given)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -l archive-ready-warn -d 'WAL segments waiting to be archived (.ready files on the primary) that make WARNING' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -l archive-ready-crit -d 'WAL segments waiting to be archived that make CRITICAL' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -l archive-crit -d 'How long the primary\'s archiver may keep failing before it is CRITICAL (WARNING until then)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -l cert-warn-days -d 'Days before a node\'s server certificate expires that make WARNING' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -l cert-crit-days -d 'Days before it expires that make CRITICAL (an expired one always is)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -l timeout -d 'How long each node may take to connect and to answer (and a standby to replay the probe), e.g. 10, 10s, 500ms; a node that does not answer in time is CRITICAL' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -l format -d 'Output format [default: text, or json with --json]' -r -f -a "text\t'Tables for a person'
json\t'One JSON object (same as --json)'
nagios\t'One Nagios/Icinga status line with perfdata'
prometheus\t'Prometheus text exposition format (node_exporter textfile collector)'"
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -l archive-probe -d 'With --primary: switch WAL (pg_switch_wal(), needs a superuser) and wait, within --timeout, until the archiver has archived that segment; CRITICAL if not'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -l require-ssl -d 'WARNING for each replication link from another host that is not encrypted (pg_stat_ssl); without it plaintext is only reported. A client on the upstream\'s own host (a Unix socket, or a loopback address: a local standby, an SSH tunnel\'s far end) is not counted'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand check" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand smoke-test" -l primary -d 'The primary: a conninfo string, a postgresql:// URI, or a host name' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand smoke-test" -l standby -d 'A standby, same forms as --primary (repeatable; at least one)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand smoke-test" -l timeout -d 'How long each node may take to connect and to answer (and a standby to replay the probe), e.g. 10, 10s, 500ms; a node that does not answer in time is CRITICAL' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand smoke-test" -l format -d 'Output format [default: text, or json with --json]' -r -f -a "text\t'Tables for a person'
json\t'One JSON object (same as --json)'
nagios\t'One Nagios/Icinga status line with perfdata'
prometheus\t'Prometheus text exposition format (node_exporter textfile collector)'"
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand smoke-test" -l cleanup -d 'Afterwards drop the probe table, and the pgrepctl schema when empty'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand smoke-test" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand smoke-test" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand smoke-test" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand smoke-test" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand smoke-test" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand smoke-test" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand conninfo" -l node -d 'A node: a conninfo string, a postgresql:// URI, or a host name (repeatable; a conninfo with several hosts gives several nodes)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand conninfo" -l format -d 'Output: libpq keyword strings, URIs, JDBC URLs, or JSON with all three [default: libpq, or json with --json]' -r -f -a "libpq\t''
uri\t''
jdbc\t''
json\t''"
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand conninfo" -l timeout -d 'How long each node may take to connect and answer, e.g. 3, 3s, 500ms' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand conninfo" -l discover -d 'Also list the standbys the primary streams to that were not given, at their address as the primary sees it and the primary\'s port (an assumption, said so in a note)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand conninfo" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand conninfo" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand conninfo" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand conninfo" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand conninfo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand conninfo" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-push" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-push" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-push" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-push" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-push" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-push" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-fetch" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-fetch" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-fetch" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-fetch" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-fetch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-fetch" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-prune" -l keep-from -d 'Keep this segment and everything after it (a WAL file name, e.g. 000000010000000000000042, as pg_archivecleanup takes it)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-prune" -l primary -d 'The primary: its physical replication slots\' restart_lsn are kept (a conninfo string, URI or host name)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-prune" -l standby -d 'A standby reading the archive: what it still needs is kept (repeatable)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-prune" -l timeout -d 'How long each server may take to connect and answer, e.g. 10, 10s, 500ms' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-prune" -l clean-backup-history -d 'Remove backup history files (.backup) below the keep point too (pg_archivecleanup\'s --clean-backup-history); they are kept by default: a few bytes each, they say where each base backup began and ended'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-prune" -l dry-run -d 'Check everything and print the changes a real run would make, with diffs; change nothing'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-prune" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-prune" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-prune" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-prune" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-prune" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand wal-prune" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and not __fish_seen_subcommand_from unit run help" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and not __fish_seen_subcommand_from unit run help" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and not __fish_seen_subcommand_from unit run help" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and not __fish_seen_subcommand_from unit run help" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and not __fish_seen_subcommand_from unit run help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and not __fish_seen_subcommand_from unit run help" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and not __fish_seen_subcommand_from unit run help" -f -a "unit" -d 'Write a systemd unit that keeps the tunnel up, and print how to enable it'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and not __fish_seen_subcommand_from unit run help" -f -a "run" -d 'Run the same ssh in the foreground, started again whenever it exits (hosts without systemd)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and not __fish_seen_subcommand_from unit run help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from unit" -l ssh -d 'The SSH login on the primary\'s host: USER@HOST' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from unit" -l ssh-port -d 'The SSH server\'s port [default: ssh\'s own (22, or ~/.ssh/config)]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from unit" -l local-port -d 'Port on this host\'s 127.0.0.1 that forwards to the primary (the standby\'s primary_conninfo port)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from unit" -l remote-port -d 'The primary\'s PostgreSQL port on its host\'s 127.0.0.1' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from unit" -l identity -d 'Private key to log in with (only this key is offered) [default: ssh\'s own]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from unit" -l known-hosts -d 'known_hosts file holding the primary host\'s key [default: ~/.ssh/known_hosts]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from unit" -l name -d 'Unit name (.service is added) [default: pgrepctl-tunnel-LOCAL_PORT]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from unit" -l unit-dir -d 'Directory the unit is written to' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from unit" -l user -d 'Run ssh as this OS user (User= in the unit) instead of root: the key (--identity) must be that user\'s, and ~USER/.ssh/known_hosts is where the host key is looked for' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from unit" -l dry-run -d 'Check everything and print the changes a real run would make, with diffs; change nothing'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from unit" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from unit" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from unit" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from unit" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from unit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from unit" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from run" -l ssh -d 'The SSH login on the primary\'s host: USER@HOST' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from run" -l ssh-port -d 'The SSH server\'s port [default: ssh\'s own (22, or ~/.ssh/config)]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from run" -l local-port -d 'Port on this host\'s 127.0.0.1 that forwards to the primary (the standby\'s primary_conninfo port)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from run" -l remote-port -d 'The primary\'s PostgreSQL port on its host\'s 127.0.0.1' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from run" -l identity -d 'Private key to log in with (only this key is offered) [default: ssh\'s own]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from run" -l known-hosts -d 'known_hosts file holding the primary host\'s key [default: ~/.ssh/known_hosts]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from run" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from run" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from run" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from run" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from run" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from help" -f -a "unit" -d 'Write a systemd unit that keeps the tunnel up, and print how to enable it'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from help" -f -a "run" -d 'Run the same ssh in the foreground, started again whenever it exits (hosts without systemd)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand tunnel; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and not __fish_seen_subcommand_from up status down failover switchover help" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and not __fish_seen_subcommand_from up status down failover switchover help" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and not __fish_seen_subcommand_from up status down failover switchover help" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and not __fish_seen_subcommand_from up status down failover switchover help" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and not __fish_seen_subcommand_from up status down failover switchover help" -s h -l help -d 'Print help'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and not __fish_seen_subcommand_from up status down failover switchover help" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and not __fish_seen_subcommand_from up status down failover switchover help" -f -a "up" -d 'Create and start a primary and N standbys, replicated and checked'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and not __fish_seen_subcommand_from up status down failover switchover help" -f -a "status" -d 'Run check on the sandbox\'s nodes (check\'s output formats and exit codes)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and not __fish_seen_subcommand_from up status down failover switchover help" -f -a "down" -d 'Stop every server the sandbox started and remove its directory'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and not __fish_seen_subcommand_from up status down failover switchover help" -f -a "failover" -d 'Kill the primary, promote standby1, repoint the other standbys, rejoin the old primary (rewound if needed), then check and smoke-test: the day-two story, through promote, follow and rejoin'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and not __fish_seen_subcommand_from up status down failover switchover help" -f -a "switchover" -d 'Hand the primary role to standby1 with pgrepctl switchover (zero data loss, the old primary becomes its standby, the other standbys follow); run it again to switch back'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and not __fish_seen_subcommand_from up status down failover switchover help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from up" -l dir -d 'Sandbox directory [default: ~/.local/share/pgrepctl/sandbox; /var/lib/pgrepctl/sandbox as root]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from up" -l standbys -d 'Number of standbys' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from up" -l port -d 'First port: the primary gets BASE, standby i gets BASE+i [default: free ports]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from up" -l bindir -d 'Directory of the PostgreSQL programs (initdb, pg_ctl) [default: the newest installed major]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from up" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from up" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from up" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from up" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from up" -s h -l help -d 'Print help'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from up" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from status" -l dir -d 'Sandbox directory [default: ~/.local/share/pgrepctl/sandbox; /var/lib/pgrepctl/sandbox as root]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from status" -l format -d 'Output format [default: text, or json with --json]' -r -f -a "text\t'Tables for a person'
json\t'One JSON object (same as --json)'
nagios\t'One Nagios/Icinga status line with perfdata'
prometheus\t'Prometheus text exposition format (node_exporter textfile collector)'"
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from status" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from status" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from status" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from down" -l dir -d 'Sandbox directory [default: ~/.local/share/pgrepctl/sandbox; /var/lib/pgrepctl/sandbox as root]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from down" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from down" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from down" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from down" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from down" -s h -l help -d 'Print help'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from down" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from failover" -l dir -d 'Sandbox directory [default: ~/.local/share/pgrepctl/sandbox; /var/lib/pgrepctl/sandbox as root]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from failover" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from failover" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from failover" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from failover" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from failover" -s h -l help -d 'Print help'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from failover" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from switchover" -l dir -d 'Sandbox directory [default: ~/.local/share/pgrepctl/sandbox; /var/lib/pgrepctl/sandbox as root]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from switchover" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from switchover" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from switchover" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from switchover" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from switchover" -s h -l help -d 'Print help'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from switchover" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from help" -f -a "up" -d 'Create and start a primary and N standbys, replicated and checked'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from help" -f -a "status" -d 'Run check on the sandbox\'s nodes (check\'s output formats and exit codes)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from help" -f -a "down" -d 'Stop every server the sandbox started and remove its directory'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from help" -f -a "failover" -d 'Kill the primary, promote standby1, repoint the other standbys, rejoin the old primary (rewound if needed), then check and smoke-test: the day-two story, through promote, follow and rejoin'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from help" -f -a "switchover" -d 'Hand the primary role to standby1 with pgrepctl switchover (zero data loss, the old primary becomes its standby, the other standbys follow); run it again to switch back'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand sandbox; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and not __fish_seen_subcommand_from start status cutover abort help" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and not __fish_seen_subcommand_from start status cutover abort help" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and not __fish_seen_subcommand_from start status cutover abort help" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and not __fish_seen_subcommand_from start status cutover abort help" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and not __fish_seen_subcommand_from start status cutover abort help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and not __fish_seen_subcommand_from start status cutover abort help" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and not __fish_seen_subcommand_from start status cutover abort help" -f -a "start" -d 'Preflight, copy the schema, publish on the source and subscribe on the target (initial copy, then streaming)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and not __fish_seen_subcommand_from start status cutover abort help" -f -a "status" -d 'Where a migration stands: per-table sync state, lag, WAL the slot retains, apply errors, schema drift (check\'s formats and exit codes)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and not __fish_seen_subcommand_from start status cutover abort help" -f -a "cutover" -d 'Switch to the target: writes off on the source, wait until the target has everything, sequences, verify, drop the replication'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and not __fish_seen_subcommand_from start status cutover abort help" -f -a "abort" -d 'Drop what start created on both sides (subscription, slot, publication; the copied schema with --drop-schema), from any state'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and not __fish_seen_subcommand_from start status cutover abort help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from start" -l source -d 'The source server as a superuser conninfo or URI, e.g. \'host=old.example user=postgres\'; the target server connects to it with this same string, so name a host the target reaches (not localhost, unless both run on one host), and no password (see --source-passfile)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from start" -l target -d 'The target server as a superuser conninfo or URI, e.g. \'host=new.example user=postgres\'' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from start" -l dbname -d 'The database to move (same name on both servers; created on the target when absent)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from start" -l table -d 'Move only this table, as SCHEMA.TABLE (repeatable) [default: every table of the database]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from start" -l source-passfile -d 'A password file on the TARGET host, readable by its server\'s OS user, named in the subscription\'s connection (passfile=) [default: that user\'s ~/.pgpass]' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from start" -l jobs -d 'How many tables the initial copy moves at a time (each a session on both servers)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from start" -l connect-timeout -d 'How long to connect to each server, e.g. 10s' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from start" -l bindir -d 'Directory of the PostgreSQL programs (pg_ctl, postgres, pg_basebackup) [default: those of the server\'s major version: pg_config, /usr/lib/postgresql/MAJOR/bin, PATH]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from start" -l replica-identity-full -d 'Give tables with no primary key and no replica identity REPLICA IDENTITY FULL on the source instead of refusing (UPDATE and DELETE then log whole rows)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from start" -l dry-run -d 'Check everything and print the changes a real run would make, with diffs; change nothing'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from start" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from start" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from start" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from start" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from start" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from start" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -l source -d 'The source server as a superuser conninfo or URI, e.g. \'host=old.example user=postgres\'; the target server connects to it with this same string, so name a host the target reaches (not localhost, unless both run on one host), and no password (see --source-passfile)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -l target -d 'The target server as a superuser conninfo or URI, e.g. \'host=new.example user=postgres\'' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -l dbname -d 'The database to move (same name on both servers; created on the target when absent)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -l lag-warn -d 'Lag that makes status WARNING, e.g. 16MB' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -l lag-crit -d 'Lag that makes status CRITICAL, e.g. 1GB' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -l timeout -d 'How long each node may take to connect and to answer (and a standby to replay the probe), e.g. 10, 10s, 500ms; a node that does not answer in time is CRITICAL' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -l format -d 'Output format [default: text, or json with --json]' -r -f -a "text\t'Tables for a person'
json\t'One JSON object (same as --json)'
nagios\t'One Nagios/Icinga status line with perfdata'
prometheus\t'Prometheus text exposition format (node_exporter textfile collector)'"
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from cutover" -l source -d 'The source server as a superuser conninfo or URI, e.g. \'host=old.example user=postgres\'; the target server connects to it with this same string, so name a host the target reaches (not localhost, unless both run on one host), and no password (see --source-passfile)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from cutover" -l target -d 'The target server as a superuser conninfo or URI, e.g. \'host=new.example user=postgres\'' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from cutover" -l dbname -d 'The database to move (same name on both servers; created on the target when absent)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from cutover" -l max-wait -d 'How long the target may take to confirm the source\'s last write; past it writes are enabled again on the source and nothing is switched, e.g. 60s' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from cutover" -l grace -d 'How long write transactions may take to finish once the source is read-only, before their sessions are ended, e.g. 5s' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from cutover" -l max-lag -d 'Refuse when the subscription is further behind than this, e.g. 64MB' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from cutover" -l sequence-margin -d 'Added to each sequence\'s source value on the target, so the first insert there cannot collide' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from cutover" -l verify -d 'How to compare the tables once writes stopped (part of the write pause: full reads every row)' -r -f -a "full\t'Row counts and a checksum of every row (reads every table on both sides while writes are paused)'
sample\t'Row counts, and a checksum of the first and the last 1000 rows by primary key (counts only for a table without one)'
counts\t'Row counts only'"
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from cutover" -l connect-timeout -d 'How long to connect to each server, e.g. 10s' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from cutover" -l dry-run -d 'Check everything and print the changes a real run would make, with diffs; change nothing'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from cutover" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from cutover" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from cutover" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from cutover" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from cutover" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from cutover" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from abort" -l source -d 'The source server as a superuser conninfo or URI, e.g. \'host=old.example user=postgres\'; the target server connects to it with this same string, so name a host the target reaches (not localhost, unless both run on one host), and no password (see --source-passfile)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from abort" -l target -d 'The target server as a superuser conninfo or URI, e.g. \'host=new.example user=postgres\'' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from abort" -l dbname -d 'The database to move (same name on both servers; created on the target when absent)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from abort" -l connect-timeout -d 'How long to connect to each server, e.g. 10s; a source that does not answer in time is left as it is (the subscription is dropped without its slot, which abort names)' -r
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from abort" -l bindir -d 'Directory of the PostgreSQL programs (pg_ctl, postgres, pg_basebackup) [default: those of the server\'s major version: pg_config, /usr/lib/postgresql/MAJOR/bin, PATH]' -r -F
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from abort" -l drop-schema -d 'Also drop what start loaded into the target database: its tables, sequences, types, functions, views and schemas, by the DROP statements of pg_dump --clean (the database itself stays); refused once the migration is gone (after a cutover the tables are the database)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from abort" -l dry-run -d 'Check everything and print the changes a real run would make, with diffs; change nothing'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from abort" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from abort" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from abort" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from abort" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from abort" -s h -l help -d 'Print help'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from abort" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "start" -d 'Preflight, copy the schema, publish on the source and subscribe on the target (initial copy, then streaming)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "status" -d 'Where a migration stands: per-table sync state, lag, WAL the slot retains, apply errors, schema drift (check\'s formats and exit codes)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "cutover" -d 'Switch to the target: writes off on the source, wait until the target has everything, sequences, verify, drop the replication'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "abort" -d 'Drop what start created on both sides (subscription, slot, publication; the copied schema with --drop-schema), from any state'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand generate-docs" -l json -d 'Print one JSON object on stdout and nothing else there'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand generate-docs" -s v -l verbose -d 'More detail on stderr: -v each step as it is applied, -vv also the SQL text (secrets redacted)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand generate-docs" -s q -l quiet -d 'Only warnings and errors'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand generate-docs" -l no-progress -d 'No progress bars; plain periodic lines instead'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand generate-docs" -s h -l help -d 'Print help'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand generate-docs" -s V -l version -d 'Print version'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and not __fish_seen_subcommand_from init-master clone-standby promote follow rejoin switchover check smoke-test conninfo wal-push wal-fetch wal-prune tunnel sandbox migrate generate-docs help" -f -a "init-master" -d 'Make a primary ready for streaming standbys (role, settings, pg_hba.conf, slots)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and not __fish_seen_subcommand_from init-master clone-standby promote follow rejoin switchover check smoke-test conninfo wal-push wal-fetch wal-prune tunnel sandbox migrate generate-docs help" -f -a "clone-standby" -d 'Make this host a streaming hot standby of a primary (copy, configure, start, wait)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and not __fish_seen_subcommand_from init-master clone-standby promote follow rejoin switchover check smoke-test conninfo wal-push wal-fetch wal-prune tunnel sandbox migrate generate-docs help" -f -a "promote" -d 'Promote this host\'s standby to primary (refused while its upstream answers)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and not __fish_seen_subcommand_from init-master clone-standby promote follow rejoin switchover check smoke-test conninfo wal-push wal-fetch wal-prune tunnel sandbox migrate generate-docs help" -f -a "follow" -d 'Repoint a standby at a new primary (reload on 13+; refused when it diverged)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and not __fish_seen_subcommand_from init-master clone-standby promote follow rejoin switchover check smoke-test conninfo wal-push wal-fetch wal-prune tunnel sandbox migrate generate-docs help" -f -a "rejoin" -d 'Turn a stopped old primary (or a diverged standby) into a standby of the new primary (follow, pg_rewind or re-clone)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and not __fish_seen_subcommand_from init-master clone-standby promote follow rejoin switchover check smoke-test conninfo wal-push wal-fetch wal-prune tunnel sandbox migrate generate-docs help" -f -a "switchover" -d 'Hand the primary role to a standby, planned: zero data loss, a write pause of a few hundred milliseconds'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and not __fish_seen_subcommand_from init-master clone-standby promote follow rejoin switchover check smoke-test conninfo wal-push wal-fetch wal-prune tunnel sandbox migrate generate-docs help" -f -a "check" -d 'Check replication health: senders, receivers, lag, slots, settings (Nagios exit codes)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and not __fish_seen_subcommand_from init-master clone-standby promote follow rejoin switchover check smoke-test conninfo wal-push wal-fetch wal-prune tunnel sandbox migrate generate-docs help" -f -a "smoke-test" -d 'Prove replication end to end: write on the primary, read on each standby'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and not __fish_seen_subcommand_from init-master clone-standby promote follow rejoin switchover check smoke-test conninfo wal-push wal-fetch wal-prune tunnel sandbox migrate generate-docs help" -f -a "conninfo" -d 'Print the connection strings applications should use: writes to the primary, reads to standbys'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and not __fish_seen_subcommand_from init-master clone-standby promote follow rejoin switchover check smoke-test conninfo wal-push wal-fetch wal-prune tunnel sandbox migrate generate-docs help" -f -a "wal-push" -d 'Archive one WAL file durably (archive_command = \'/abs/path/pgrepctl wal-push %p DIR\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and not __fish_seen_subcommand_from init-master clone-standby promote follow rejoin switchover check smoke-test conninfo wal-push wal-fetch wal-prune tunnel sandbox migrate generate-docs help" -f -a "wal-fetch" -d 'Restore one WAL file from the archive (restore_command = \'/abs/path/pgrepctl wal-fetch %f %p DIR\')'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and not __fish_seen_subcommand_from init-master clone-standby promote follow rejoin switchover check smoke-test conninfo wal-push wal-fetch wal-prune tunnel sandbox migrate generate-docs help" -f -a "wal-prune" -d 'Remove archived WAL no listed consumer still needs (oldest first; never .history files)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and not __fish_seen_subcommand_from init-master clone-standby promote follow rejoin switchover check smoke-test conninfo wal-push wal-fetch wal-prune tunnel sandbox migrate generate-docs help" -f -a "tunnel" -d 'An SSH tunnel for replication where TLS is not an option: a systemd unit, or run in the foreground'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and not __fish_seen_subcommand_from init-master clone-standby promote follow rejoin switchover check smoke-test conninfo wal-push wal-fetch wal-prune tunnel sandbox migrate generate-docs help" -f -a "sandbox" -d 'A local primary and standbys, replicated and checked, in one command'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and not __fish_seen_subcommand_from init-master clone-standby promote follow rejoin switchover check smoke-test conninfo wal-push wal-fetch wal-prune tunnel sandbox migrate generate-docs help" -f -a "migrate" -d 'Move a database (or chosen tables) to another server, across major versions, with logical replication'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and not __fish_seen_subcommand_from init-master clone-standby promote follow rejoin switchover check smoke-test conninfo wal-push wal-fetch wal-prune tunnel sandbox migrate generate-docs help" -f -a "generate-docs" -d 'Write the man pages and shell completions under DIR (for packagers)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and not __fish_seen_subcommand_from init-master clone-standby promote follow rejoin switchover check smoke-test conninfo wal-push wal-fetch wal-prune tunnel sandbox migrate generate-docs help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and __fish_seen_subcommand_from tunnel" -f -a "unit" -d 'Write a systemd unit that keeps the tunnel up, and print how to enable it'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and __fish_seen_subcommand_from tunnel" -f -a "run" -d 'Run the same ssh in the foreground, started again whenever it exits (hosts without systemd)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and __fish_seen_subcommand_from sandbox" -f -a "up" -d 'Create and start a primary and N standbys, replicated and checked'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and __fish_seen_subcommand_from sandbox" -f -a "status" -d 'Run check on the sandbox\'s nodes (check\'s output formats and exit codes)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and __fish_seen_subcommand_from sandbox" -f -a "down" -d 'Stop every server the sandbox started and remove its directory'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and __fish_seen_subcommand_from sandbox" -f -a "failover" -d 'Kill the primary, promote standby1, repoint the other standbys, rejoin the old primary (rewound if needed), then check and smoke-test: the day-two story, through promote, follow and rejoin'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and __fish_seen_subcommand_from sandbox" -f -a "switchover" -d 'Hand the primary role to standby1 with pgrepctl switchover (zero data loss, the old primary becomes its standby, the other standbys follow); run it again to switch back'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and __fish_seen_subcommand_from migrate" -f -a "start" -d 'Preflight, copy the schema, publish on the source and subscribe on the target (initial copy, then streaming)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and __fish_seen_subcommand_from migrate" -f -a "status" -d 'Where a migration stands: per-table sync state, lag, WAL the slot retains, apply errors, schema drift (check\'s formats and exit codes)'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and __fish_seen_subcommand_from migrate" -f -a "cutover" -d 'Switch to the target: writes off on the source, wait until the target has everything, sequences, verify, drop the replication'
complete -c pgrepctl -n "__fish_pgrepctl_using_subcommand help; and __fish_seen_subcommand_from migrate" -f -a "abort" -d 'Drop what start created on both sides (subscription, slot, publication; the copied schema with --drop-schema), from any state'
