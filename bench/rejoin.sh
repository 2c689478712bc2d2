# bench/run's rejoin figure (issue #11), sourced by bench/run: it uses its
# helpers and variables ($primary, $pport, $pwfile, $bindir, $logs, py, ...).
#
# Two nodes take turns as primary: the bench primary and a standby cloned
# from it. Every step is a failover: the primary goes away, the standby is
# promoted with `pgrepctl promote`, and right after that promote (no pause,
# no extra CHECKPOINT: repmgr's rejoin failed there 2 of 2 times on 15) the
# old primary comes back, timed from invocation to exit, in one of three ways:
#   follow  - stopped cleanly (pg_ctl stop -m fast) before the promotion, so
#             its WAL ends before the fork: `pgrepctl rejoin` must decide
#             "follow" (no pg_rewind);
#   rewind  - killed (SIGKILL of its postmaster) under `pgbench -c 2 -j 2`
#             load, so it holds WAL the new primary never got and did not
#             shut down cleanly: `pgrepctl rejoin` must decide "rewind";
#   reclone - killed the same way, then copied anew from the new primary:
#             `pgrepctl clone-standby --force` to streaming and caught up.
# After each, the node must answer as a standby whose WAL receiver streams
# from the new primary on the new timeline, checked at once (rejoin and
# clone-standby wait for that before they exit). A failed or not-streaming
# rejoin is counted, not fatal: the node is then re-cloned (untimed) so that
# the runs go on. Before the next failover the standby must have replayed
# the primary's current position.

wait_gone() {  # DIR PID: until PID (the killed postmaster) is reaped and no process runs in DIR
    local dir i pid busy
    dir=$(readlink -f "$1")
    for ((i = 0; i < 1000; i++)); do
        # A zombie postmaster still answers kill -0: pgrepctl would take the
        # node for running.
        busy=""
        kill -0 "$2" 2>/dev/null && busy=$2
        for pid in /proc/[0-9]*; do
            [[ -n $busy ]] && break
            [[ $(readlink "$pid/cwd" 2>/dev/null) == "$dir" ]] && { busy=${pid#/proc/}; break; }
        done
        [[ -z $busy ]] && return 0
        sleep 0.01
    done
    die "process $busy still runs in $dir 10 s after its postmaster ($2) was killed"
}

kill_under_load() {  # DIR PORT: pgbench against it for 2 s, then SIGKILL of its postmaster
    local dir=$1 port=$2 pid
    "${as_pg[@]}" "$bindir/pgbench" -n -c 2 -j 2 -T 600 -h "$sock" -p "$port" -U postgres postgres \
        >>"$logs/rejoin-pgbench.log" 2>&1 &
    pgbench_pid=$!
    sleep 2
    kill -0 "$pgbench_pid" 2>/dev/null || { cat "$logs/rejoin-pgbench.log" >&2; die "pgbench did not run"; }
    pid=$(head -n 1 "$dir/postmaster.pid")
    kill -KILL "$pid"
    kill "$pgbench_pid" 2>/dev/null || true
    wait "$pgbench_pid" 2>/dev/null || true
    pgbench_pid=""
    wait_gone "$dir" "$pid"
}

caught_up() {  # PRIMARY_PORT STANDBY_PORT: wait until the standby replayed the primary's position
    local lsn i
    lsn=$(psql_at "$1" "SELECT pg_current_wal_lsn()")
    for ((i = 0; i < 3000; i++)); do
        [[ $(psql_at "$2" "SELECT pg_last_wal_replay_lsn() >= '$lsn'" 2>/dev/null || true) == t ]] && return 0
        sleep 0.1
    done
    die "the standby on port $2 did not replay $lsn of port $1 within 300 s"
}

streams_from() {  # NODE_PORT PRIMARY_PORT TLI: "t" if a standby streaming from it on TLI
    psql_at "$1" "SELECT pg_is_in_recovery() AND coalesce((SELECT status = 'streaming' AND received_tli = $3
                    AND conninfo ~ 'port=$2( |\$)' FROM pg_stat_wal_receiver), false)" 2>/dev/null || echo f
}

json_field() {  # FILE EXPR: a value of pgrepctl's --json object, e.g. "j['decision']['action']"
    python3 -c 'import json, sys
try:
    j = json.load(open(sys.argv[1]))
    print(eval(sys.argv[2], {}, {"j": j}))
except Exception:
    print("?")' "$1" "$2"
}

bench_rejoin() {
    local dirs ports cur=0 i mode step=0 old new oport nport tli out wall rc why
    local failures=0 attempts=0
    log "rejoin: wal_log_hints = on (pg_rewind needs it or checksums) and the rewind grants for replicator"
    psql_at "$pport" "ALTER SYSTEM SET wal_log_hints = on" >/dev/null
    # What `pgrepctl rejoin` asks for when the --primary role may not rewind.
    psql_at "$pport" "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO replicator;
        GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO replicator;
        GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO replicator;
        GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO replicator" >/dev/null
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$primary" -l "$logs/primary.log" -m fast -w -t 60 restart >/dev/null ||
        { cat "$logs/primary.log" >&2; die "the primary did not restart"; }
    dirs=("$primary" "$standbys/r")
    ports=("$pport" "$(new_port)")
    out=$(clone_pgrepctl "${dirs[1]}" "${ports[1]}" bench-r) || true
    [[ $out == *" 0" ]] || { cat "$logs/clone-bench-r".{log,err} >&2; die "pgrepctl clone-standby of r failed"; }
    : >"$logs/rejoin_follow.txt"
    : >"$logs/rejoin_rewind.txt"
    : >"$logs/rejoin_reclone.txt"
    log "rejoin: $rejoin_runs runs of follow, rewind and re-clone, each right after a promote"
    for ((i = 1; i <= rejoin_runs; i++)); do
        for mode in follow rewind reclone; do
            step=$((step + 1))
            old=${dirs[cur]} oport=${ports[cur]} new=${dirs[1 - cur]} nport=${ports[1 - cur]}
            caught_up "$oport" "$nport"
            if [[ $mode == follow ]]; then
                stop_server "$old" fast
            else
                kill_under_load "$old" "$oport"
            fi
            "$pgrepctl" promote --json -D "$new" >"$logs/rejoin-promote-$step.log" 2>&1 ||
                { cat "$logs/rejoin-promote-$step.log" >&2; die "pgrepctl promote of $new failed"; }
            if [[ $mode == reclone ]]; then
                out=$(py measure "$pgrepctl" clone-standby --json --no-progress --force \
                    --primary "host=127.0.0.1 port=$nport user=replicator" -D "$old" --password-file "$pwfile" \
                    --port "$oport" --bindir "$bindir" --application-name "bench-rc$step" --wait 300 \
                    2>"$logs/rejoin-$step.err" | tee "$logs/rejoin-$step.log" | tail -n 1) || true
            else
                out=$(py measure "$pgrepctl" rejoin --json -D "$old" \
                    --primary "host=127.0.0.1 port=$nport user=replicator" --password-file "$pwfile" \
                    --bindir "$bindir" --wait 300s \
                    2>"$logs/rejoin-$step.err" | tee "$logs/rejoin-$step.log" | tail -n 1) || true
                attempts=$((attempts + 1))
            fi
            read -r wall _ _ rc <<<"$out"
            head -n -1 "$logs/rejoin-$step.log" >"$logs/rejoin-$step.json"
            tli=$(psql_at "$nport" "SELECT timeline_id FROM pg_control_checkpoint()")
            why=""
            if [[ ${rc:-1} != 0 ]]; then
                why="exit ${rc:-?}: $(json_field "$logs/rejoin-$step.json" "j['error']['code'] + ': ' + j['error']['message']")"
            elif [[ $(streams_from "$oport" "$nport" "$tli") != t ]]; then
                why="exited 0 but does not stream from port $nport on timeline $tli"
            elif [[ $mode != reclone ]] &&
                [[ $(json_field "$logs/rejoin-$step.json" "j['decision']['action']") != "$mode" ]]; then
                why="decided $(json_field "$logs/rejoin-$step.json" "j['decision']['action']"), not $mode"
            fi
            if [[ -n $why ]]; then
                [[ $mode == reclone ]] && { cat "$logs/rejoin-$step".{log,err} >&2; die "re-clone $step: $why"; }
                failures=$((failures + 1))
                log "  $mode $i: FAILED ($why); log: $logs/rejoin-$step.err; re-cloning it to go on"
                tail -n 20 "$logs/rejoin-$step.err" >&2
                stop_server "$old" immediate
                "$pgrepctl" clone-standby --json --no-progress --force \
                    --primary "host=127.0.0.1 port=$nport user=replicator" -D "$old" --password-file "$pwfile" \
                    --port "$oport" --bindir "$bindir" --application-name "bench-fix$step" --wait 300 \
                    >"$logs/rejoin-fix-$step.log" 2>&1 ||
                    { cat "$logs/rejoin-fix-$step.log" >&2; die "the re-clone after the failed rejoin failed too"; }
            else
                log "  $mode $i: ${wall}s$([[ $mode == rewind ]] && echo ", divergence $(json_field "$logs/rejoin-$step.json" "j.get('divergence_bytes')") bytes; $(json_field "$logs/rejoin-$step.json" "j.get('rewind')")")"
                echo "$wall" >>"$logs/rejoin_$mode.txt"
            fi
            cur=$((1 - cur))
        done
    done
    local m med min max
    for m in follow rewind reclone; do
        [[ -s $logs/rejoin_$m.txt ]] || continue
        read -r med _ min max _ < <(py stats "$logs/rejoin_$m.txt")
        emit "rejoin_${m}_s" "$(calc '%.3f' "$med")" s
        emit "rejoin_${m}_min_s" "$(calc '%.3f' "$min")" s
        emit "rejoin_${m}_max_s" "$(calc '%.3f' "$max")" s
    done
    emit rejoin_rewind_repmgr_published_s 2.7 s  # repmgr 5.3 node rejoin --force-rewind, scale 50, 2 cores (issue #11)
    emit rejoin_reclone_repmgr_published_s 1.6 s  # a full re-clone to caught-up, same setup (issue #11)
    emit rejoin_right_after_promote_failed "$failures" count
    emit rejoin_right_after_promote_attempts "$attempts" count
    ((failures == 0)) || log "rejoin: $failures of $attempts rejoins right after promote failed (see above)"
}
