#!/usr/bin/env bash
# Issue 15's figures: `pgrepctl migrate`, as `name value unit` lines.
#
#   bench/migrate.sh [--bindir DIR] [SCALE]      (SCALE: pgbench scale, default 50)
#
# Builds pgrepctl (release), then in a `mktemp -d /tmp/pgrepctl-bench-migrate.XXXXXX`
# directory, as the `postgres` OS user when run as root (setpriv), starts a
# source (wal_level = logical) and a target server of DIR's major on private
# sockets (no TCP), loads `pgbench -i -s SCALE` into the source database
# `shop`, and measures:
#   - dump_restore_s: `pg_dump -Fc shop | pg_restore -d` into an empty
#     database `shop_dump` on the target (the by-hand way, one job);
#   - migrate_copy_s: `pgrepctl migrate start` until every table of the
#     subscription is ready (polled every 100 ms), into `shop`;
#   - migrate_write_pause_ms, migrate_catchup_ms, migrate_rows_verified:
#     `pgrepctl migrate cutover --grace 1s` under `pgbench -c 2 -j 2`
#     (its write_pause_ms: from ALTER DATABASE … read-only to the end of
#     the verification, which --verify full makes the largest part).
# On exit (also on failure or Ctrl-C) a trap stops both servers by data
# directory (pg_ctl stop -m immediate), kills the pgbench it started by
# PID, and removes the directory.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bindir=${PGREPCTL_BENCH_BINDIR:-/usr/lib/postgresql/15/bin}
scale=50
while (($#)); do
    case $1 in
        --bindir) bindir=$2; shift 2 ;;
        [0-9]*) scale=$1; shift ;;
        *) echo "bench/migrate.sh: unknown argument: $1 (usage: bench/migrate.sh [--bindir DIR] [SCALE])" >&2; exit 2 ;;
    esac
done
for t in initdb pg_ctl pg_dump pg_restore psql pgbench; do
    [[ -x $bindir/$t ]] || { echo "bench/migrate.sh: no $t in $bindir (give --bindir)" >&2; exit 2; }
done
log() { echo "bench/migrate: $*" >&2; }
now() { python3 -c 'import time; print(time.monotonic())'; }
elapsed() { python3 -c "print(f'{$(now) - $1:.2f}')"; }

(cd "$repo" && cargo build --release --locked --bins -q)
pgrepctl=$repo/target/release/pgrepctl

tmp=$(mktemp -d /tmp/pgrepctl-bench-migrate.XXXXXX)
chmod 755 "$tmp"
as_pg=()
if ((EUID == 0)); then
    as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups --reset-env --)
    chown postgres: "$tmp"
fi
writer=""
cleanup() {
    [[ -n $writer ]] && kill "$writer" 2>/dev/null || true
    for d in "$tmp/source" "$tmp/target"; do
        [[ -f $d/postmaster.pid ]] && "${as_pg[@]}" "$bindir/pg_ctl" -D "$d" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
node() {  # NAME PORT [postgres -c options]
    local name=$1 port=$2; shift 2
    "${as_pg[@]}" "$bindir/initdb" -D "$tmp/$name" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$tmp/$name" -l "$tmp/$name.log" -w -t 60 \
        -o "-p $port -k $tmp -c listen_addresses='' $*" start >/dev/null
}
sport=$(free_port); tport=$(free_port)
node source "$sport" -c wal_level=logical
node target "$tport"
src="host=$tmp port=$sport user=postgres"
dst="host=$tmp port=$tport user=postgres"
sql() { "$bindir/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

log "pgbench -i -s $scale into the source ($("$bindir/pg_ctl" --version))"
sql "$src dbname=postgres" "CREATE DATABASE shop"
"$bindir/pgbench" -i -q -s "$scale" -h "$tmp" -p "$sport" -U postgres shop >/dev/null 2>&1

log "pg_dump | pg_restore"
sql "$dst dbname=postgres" "CREATE DATABASE shop_dump"
t0=$(now)
"$bindir/pg_dump" -Fc -d "$src dbname=shop" | "$bindir/pg_restore" --exit-on-error -d "$dst dbname=shop_dump"
echo "dump_restore_s $(elapsed "$t0") s"
sql "$dst dbname=postgres" "DROP DATABASE shop_dump"

log "migrate start, until every table is ready"
t0=$(now)
"$pgrepctl" migrate start -q --source "$src" --target "$dst" --dbname shop --bindir "$bindir" --replica-identity-full >/dev/null
until [[ $(sql "$dst dbname=shop" "SELECT count(*) > 0 AND bool_and(srsubstate = 'r') FROM pg_subscription_rel") == t ]]; do
    sleep 0.1
done
echo "migrate_copy_s $(elapsed "$t0") s"

log "migrate cutover under pgbench -c 2 -j 2"
"$bindir/pgbench" -n -c 2 -j 2 -T 600 -h "$tmp" -p "$sport" -U postgres shop >/dev/null 2>&1 &
writer=$!
sleep 2
until "$pgrepctl" migrate status -q --source "$src" --target "$dst" --dbname shop >/dev/null; do sleep 0.2; done
out=$("$pgrepctl" migrate cutover --json --grace 1s --source "$src" --target "$dst" --dbname shop)
kill "$writer" 2>/dev/null || true
wait "$writer" 2>/dev/null || true
writer=""
python3 -c '
import json, sys
j = json.loads(sys.argv[1])
print("migrate_write_pause_ms", j["write_pause_ms"], "ms")
print("migrate_catchup_ms", j["catchup_ms"], "ms")
print("migrate_rows_verified", j["rows_verified"], "rows")
' "$out"
log "done: scale $scale, $(nproc) CPUs"
