# bench/run's migrate figures (issue #15), sourced by bench/run: it uses its
# helpers and variables ($primary, $pport, $sock, $bindir, $logs, $work,
# $as_pg, py, calc, emit, new_port, psql_at, stop_server, started, ...)
# and bench/switchover.sh's writer ($writer, writer_figures).
#
# The source is the bench primary's `postgres` database (pgbench data at
# SCALE, plus a writer's table), with wal_level = logical (set here, one
# restart). Each of BENCH_MIGRATE_RUNS (3) runs builds a fresh target
# cluster (initdb, same binaries, or PGREPCTL_BENCH_TARGET_BINDIR for a
# newer major) on a new port and measures:
#   dump    - the baseline copy: pg_dump -Fc of the source database piped
#             into pg_restore (the target's binaries) into a new database
#             on the target, invocation to exit;
#   copy    - `pgrepctl migrate start` until every table of the
#             subscription is ready (pg_subscription_rel, polled every
#             50 ms), under the writer;
#   pause   - `pgrepctl migrate cutover` under a writer inserting
#             sequential ids every 2 ms into the source: its last
#             acknowledged write on the source to the first on the target,
#             where a second writer starts (with the next id) the moment
#             cutover exits — the application repointed at once;
#   cutover - cutover's own wall time;
#   lost    - ids acknowledged on the source missing on the target.
# Then the source database is made writable again, its writer table
# emptied, and the target removed. Medians beside the targets (copy faster
# than dump, i.e. a ratio below 1; pause <= 2 s; lost 0).
# BENCH_MIGRATE_VERIFY (unset: cutover's default, sample) is cutover's
# --verify. Cutover's own figures (catchup_ms, write_pause_ms as it
# measures it) are printed per run.

migrate_runs=${migrate_runs:-${BENCH_MIGRATE_RUNS:-3}}
migrate_verify=${BENCH_MIGRATE_VERIFY:-}  # empty: cutover's default

# Every table of the bench database (pgbench_history has no key: the flag
# gives it REPLICA IDENTITY FULL, as a user would).
migrate_args() {  # TPORT
    printf '%s\0' --source "host=$sock port=$pport user=postgres" \
        --target "host=$sock port=$1 user=postgres" --dbname postgres
}

# SQL on the source database while cutover left it read-only (a session
# setting outranks the database's).
migrate_writable() {  # SQL
    "${as_pg[@]}" "$bindir/psql" -X -A -t -q -v ON_ERROR_STOP=1 \
        -d "host=$sock port=$pport user=postgres dbname=postgres options='-c default_transaction_read_only=off'" \
        -c "$1" >/dev/null
}

# A fresh cluster for one run's target; prints its port.
migrate_target() {  # DIR
    local dir=$1 port
    port=$(new_port)
    mkdir -m 700 "$dir"
    if ((${#as_pg[@]})); then chown postgres: "$dir"; fi
    "${as_pg[@]}" "$target_bindir/initdb" -D "$dir" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --locale=C >"$logs/$(basename "$dir")-initdb.log" 2>&1 ||
        die "initdb of the migrate target failed"
    printf "\nport = %s\nlisten_addresses = ''\nunix_socket_directories = '%s'\n" "$port" "$sock" |
        "${as_pg[@]}" tee -a "$dir/postgresql.conf" >/dev/null
    started+=("$dir")
    "${as_pg[@]}" "$target_bindir/pg_ctl" -D "$dir" -l "$logs/$(basename "$dir").log" -w -t 60 start >/dev/null ||
        { cat "$logs/$(basename "$dir").log" >&2; die "the migrate target did not start"; }
    echo "$port"
}

# The writer on one server only (its socket), logging acknowledged ids.
migrate_writer() {  # LOG PORT START_ID
    : >"$1"
    "$writer" --out "$1" --table migrate_ids --start-id "$3" \
        "host=$sock port=$2 user=postgres dbname=postgres connect_timeout=2" 2>"$1.err" &
    writer_pid=$!
}

migrate_writer_stop() {
    kill -TERM "$writer_pid" 2>/dev/null || true
    wait "$writer_pid" 2>/dev/null || true
    writer_pid=""
}

# Until the log holds N acknowledged ids (30 s).
migrate_acks() {  # LOG N
    local i
    for ((i = 0; i < 3000; i++)); do
        (($(wc -l <"$1") >= $2)) && return 0
        kill -0 "$writer_pid" 2>/dev/null || break
        sleep 0.01
    done
    cat "$1.err" >&2
    die "the writer did not acknowledge $2 writes within 30 s"
}

# Until every table of the subscription is ready on the target (10 min).
migrate_ready() {  # TPORT
    local i q="SELECT count(*) > 0 AND bool_and(srsubstate = 'r') FROM pg_subscription_rel"
    for ((i = 0; i < 12000; i++)); do
        [[ $(psql_at "$1" "$q" 2>/dev/null || true) == t ]] && return 0
        sleep 0.05
    done
    die "the subscription's tables were not all ready within 10 minutes"
}

migrate_run() {  # RUN
    local run=$1 tdir=$work/target$1 tport t0 t1 out rc last first n missing
    local args
    tport=$(migrate_target "$tdir")
    mapfile -d '' args < <(migrate_args "$tport")

    # The baseline: pg_dump | pg_restore into another database there.
    psql_at "$tport" "CREATE DATABASE dumpcopy" >/dev/null
    t0=$EPOCHREALTIME
    "${as_pg[@]}" "$target_bindir/pg_dump" -Fc -h "$sock" -p "$pport" -U postgres postgres 2>"$logs/migrate-dump-$run.err" |
        "${as_pg[@]}" "$target_bindir/pg_restore" --no-owner -h "$sock" -p "$tport" -U postgres -d dumpcopy \
            2>>"$logs/migrate-dump-$run.err" ||
        { cat "$logs/migrate-dump-$run.err" >&2; die "pg_dump | pg_restore failed"; }
    t1=$EPOCHREALTIME
    calc '%.3f' "$t1 - $t0" >>"$logs/migrate_dump.txt"
    psql_at "$tport" "DROP DATABASE dumpcopy" >/dev/null

    # The copy, under the writer.
    migrate_writer "$logs/migrate-w1-$run.txt" "$pport" 1
    migrate_acks "$logs/migrate-w1-$run.txt" 100
    t0=$EPOCHREALTIME
    "$pgrepctl" migrate start --json "${args[@]}" --replica-identity-full \
        >"$logs/migrate-start-$run.json" 2>"$logs/migrate-start-$run.err" ||
        { cat "$logs/migrate-start-$run".{json,err} >&2; die "pgrepctl migrate start failed"; }
    migrate_ready "$tport"
    t1=$EPOCHREALTIME
    calc '%.3f' "$t1 - $t0" >>"$logs/migrate_copy.txt"
    sleep 1  # streaming: the writer's rows follow

    # The cutover, the application repointed the moment it exits.
    t0=$EPOCHREALTIME
    out=$(py measure "$pgrepctl" migrate cutover --json "${args[@]}" ${migrate_verify:+--verify "$migrate_verify"} \
        2>"$logs/migrate-cutover-$run.err" | tee "$logs/migrate-cutover-$run.json" | tail -n 1) || true
    read -r _ _ _ rc <<<"$out"
    t1=$EPOCHREALTIME
    [[ ${rc:-1} == 0 ]] || { cat "$logs/migrate-cutover-$run".{json,err} >&2; die "pgrepctl migrate cutover failed"; }
    migrate_writer_stop
    last=$(tail -n 1 "$logs/migrate-w1-$run.txt" | cut -d' ' -f1)
    first=$(head -n 1 "$logs/migrate-w1-$run.txt" | cut -d' ' -f1)
    migrate_writer "$logs/migrate-w2-$run.txt" "$tport" "$((last + 1))"
    migrate_acks "$logs/migrate-w2-$run.txt" 100
    migrate_writer_stop
    calc '%.3f' "$t1 - $t0" >>"$logs/migrate_cutover.txt"
    python3 - "$logs/migrate-w1-$run.txt" "$logs/migrate-w2-$run.txt" >>"$logs/migrate_pause.txt" <<'PY'
import sys
last = float(open(sys.argv[1]).read().split("\n")[-2].split()[1])
first = float(open(sys.argv[2]).readline().split()[1])
print(f"{first - last:.4f}")
PY
    n=$((last - first + 1))
    missing=$(psql_at "$tport" "SELECT $n - count(*) FROM migrate_ids WHERE id BETWEEN $first AND $last")
    echo "$missing" >>"$logs/migrate_lost.txt"
    log "  run $run: cutover says $(python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).readline()); print({k: d.get(k) for k in ("sessions_ended", "catchup_ms", "rows_verified", "write_pause_ms")})' "$logs/migrate-cutover-$run.json" 2>/dev/null || echo '?')"
    log "  run $run: dump $(tail -n 1 "$logs/migrate_dump.txt")s, copy $(tail -n 1 "$logs/migrate_copy.txt")s," \
        "cutover $(tail -n 1 "$logs/migrate_cutover.txt")s, pause $(tail -n 1 "$logs/migrate_pause.txt")s, lost $missing of $n"

    # Back to a writable source with an empty writer table, no target.
    migrate_writable "ALTER DATABASE postgres RESET default_transaction_read_only"
    migrate_writable "TRUNCATE migrate_ids"
    stop_server "$tdir" immediate
    rm -rf "$tdir"
}

bench_migrate() {
    local i
    target_bindir=${PGREPCTL_BENCH_TARGET_BINDIR:-$bindir}
    [[ -x $target_bindir/pg_restore ]] || die "no pg_restore in $target_bindir (PGREPCTL_BENCH_TARGET_BINDIR)"
    writer=$repo/target/release/examples/switchover_writer
    [[ -x $writer ]] || die "no $writer (cargo build --release --example switchover_writer)"
    if [[ $(psql_at "$pport" "SHOW wal_level") != logical ]]; then
        log "migrate: wal_level = logical on the source (a restart)"
        psql_at "$pport" "ALTER SYSTEM SET wal_level = logical" >/dev/null
        "${as_pg[@]}" "$bindir/pg_ctl" -D "$primary" -l "$logs/primary.log" -m fast -w -t 60 restart >/dev/null ||
            die "the primary did not restart with wal_level = logical"
    fi
    : >"$logs/migrate_dump.txt"
    : >"$logs/migrate_copy.txt"
    : >"$logs/migrate_cutover.txt"
    : >"$logs/migrate_pause.txt"
    : >"$logs/migrate_lost.txt"
    log "migrate: $migrate_runs runs of pg_dump | pg_restore, migrate start (to ready) and migrate cutover --verify ${migrate_verify:-(default)} under a writer; target $("$target_bindir/postgres" --version)"
    for ((i = 1; i <= migrate_runs; i++)); do migrate_run "$i"; done
    local dump copy cutover pause lost
    read -r dump _ < <(py stats "$logs/migrate_dump.txt")
    read -r copy _ < <(py stats "$logs/migrate_copy.txt")
    read -r cutover _ < <(py stats "$logs/migrate_cutover.txt")
    read -r pause _ _ pause_max _ < <(py stats "$logs/migrate_pause.txt")
    lost=$(calc '%d' "$(paste -sd+ "$logs/migrate_lost.txt")")
    emit migrate_copy_s "$(calc '%.2f' "$copy")" s
    emit migrate_dump_restore_s "$(calc '%.2f' "$dump")" s
    emit migrate_copy_ratio "$(calc '%.3f' "$copy / $dump")" x
    emit migrate_copy_ratio_target 1 x
    emit migrate_cutover_s "$(calc '%.3f' "$cutover")" s
    emit migrate_pause_s "$(calc '%.3f' "$pause")" s
    emit migrate_pause_max_s "$(calc '%.3f' "$pause_max")" s
    emit migrate_pause_target_s 2 s
    emit migrate_lost_writes "$lost" writes
    migrate_writable "DROP TABLE migrate_ids"
}
