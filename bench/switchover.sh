# bench/run's switchover figures (issue #12), sourced by bench/run after
# bench/rejoin.sh: it uses their helpers and variables ($primary, $pport,
# $pwfile, $pgpass, $bindir, $logs, py, calc, emit, caught_up, streams_from,
# json_field, ...).
#
# Two nodes take turns as primary: the bench primary and a standby `sw`
# cloned from it with `pgrepctl clone-standby`. A writer
# (examples/switchover_writer.rs) inserts sequential ids every 2 ms through
# the write conninfo an application would use,
#   host=127.0.0.1,127.0.0.1 port=P1,P2 ... target_session_attrs=read-write
# and logs every id whose commit was acknowledged, with its time. Optionally
# (BENCH_SWITCHOVER_TPS, default 100; 0 = off) `pgbench -R TPS -c 2` adds a
# light load on the primary. Each run is a planned switchover, in the
# direction of the moment (the nodes take turns), done one of two ways:
#   pgrepctl - `pgrepctl switchover -D OLD --candidate 'host=127.0.0.1
#              port=NEW user=postgres' --password-file F --bindir B --json`,
#              timed from invocation to exit (it exits once the old primary
#              streams from the new one);
#   by hand  - the minimal correct way: CHECKPOINT; pg_ctl stop -m fast;
#              pg_controldata says "shut down" and gives the latest
#              checkpoint location L; poll the candidate until
#              pg_last_wal_replay_lsn() > L; SELECT pg_promote();
#              standby.signal and primary_conninfo on the old primary;
#              pg_ctl start; poll until its pg_stat_wal_receiver streams.
# Figures per run, from the writer's log:
#   write pause - the largest gap between consecutive acknowledged writes
#                 that overlaps the switchover (last ack before, first after);
#   whole       - invocation until the old primary streams from the new one;
#   lost        - acknowledged ids missing on the new primary afterwards.
# BENCH_SWITCHOVER_RUNS (5) runs of each way, interleaved so that each way
# goes in both directions. Medians beside the targets (pause <= 0.4 s, whole
# <= 1.5 s, lost 0) and repmgr 5.3's published `standby switchover` (issue
# #12). When this build's pgrepctl has no `switchover` command, that half is
# skipped with a message (BENCH_SWITCHOVER_PGREPCTL names another build).
# bench/run's cleanup stops the writer ($writer_pid) and pgbench
# ($pgbench_pid) by PID, and every server by its data directory.

start_writer() {  # LOG P1 P2: the writer through the write conninfo, until it has acknowledged writes
    local i
    : >"$1"
    "$writer" --password-file "$work/writer.pw" --out "$1" \
        "host=127.0.0.1,127.0.0.1 port=$2,$3 user=bench_writer dbname=postgres target_session_attrs=read-write connect_timeout=2" \
        2>"$1.err" &
    writer_pid=$!
    for ((i = 0; i < 3000; i++)); do
        (($(wc -l <"$1") >= 100)) && return 0
        kill -0 "$writer_pid" 2>/dev/null || break
        sleep 0.01
    done
    cat "$1.err" >&2
    die "the writer did not acknowledge 100 writes within 30 s"
}

stop_writer() {  # LOG T: once the writer acknowledged a write after epoch T (or 30 s), SIGTERM
    local i
    for ((i = 0; i < 3000; i++)); do
        [[ $(tail -n 1 "$1" | awk -v t="$2" '$2 > t {print "y"}') == y ]] && break
        sleep 0.01
    done
    sleep 0.1  # a few more acknowledged writes on the new primary
    kill -TERM "$writer_pid" 2>/dev/null || true
    wait "$writer_pid" 2>/dev/null || true
    writer_pid=""
}

start_load() {  # PORT: light pgbench load on the primary, if asked for
    ((switchover_tps > 0)) || return 0
    "${as_pg[@]}" "$bindir/pgbench" -n -c 2 -j 1 -R "$switchover_tps" -T 600 -h "$sock" -p "$1" -U postgres postgres \
        >>"$logs/switchover-pgbench.log" 2>&1 &
    pgbench_pid=$!
}

stop_load() {  # its clients have mostly aborted already: the switchover ended their sessions
    [[ -n $pgbench_pid ]] || return 0
    kill "$pgbench_pid" 2>/dev/null || true
    wait "$pgbench_pid" 2>/dev/null || true
    pgbench_pid=""
}

# The writer's log against the switchover's window [T0, T1]: prints
# "PAUSE_S FIRST_ID LAST_ID ACKS ACKS_AFTER_T1 MEDIAN_GAP_MS" (the last: the
# writer's usual spacing, i.e. the pause's resolution); fails unless the
# acknowledged ids are the dense sequence the writer promises.
writer_figures() {  # LOG T0 T1
    python3 - "$@" <<'PY'
import statistics, sys
path, t0, t1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
acks = [(int(a), float(b)) for a, b in (l.split() for l in open(path) if l.strip())]
ids = [i for i, _ in acks]
if ids != list(range(ids[0], ids[0] + len(ids))):
    sys.exit(f"{path}: the acknowledged ids are not a dense sequence")
ts = [t for _, t in acks]
all_gaps = [b - a for a, b in zip(ts, ts[1:])]
gaps = [b - a for a, b in zip(ts, ts[1:]) if b > t0 and a < t1]
print(f"{max(gaps, default=0):.4f} {ids[0]} {ids[-1]} {len(ids)} {sum(t > t1 for t in ts)}",
      f"{statistics.median(all_gaps) * 1000:.2f}")
PY
}

switch_by_hand() {  # OLD OPORT NEW NPORT: the minimal correct switchover
    local old=$1 oport=$2 new=$3 nport=$4 state lsn i
    psql_at "$oport" "CHECKPOINT" >/dev/null || return 1
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$old" -m fast -w -t 60 stop >/dev/null || return 1
    state=$("${as_pg[@]}" "$bindir/pg_controldata" "$old") || return 1
    grep -q '^Database cluster state: *shut down$' <<<"$state" || { log "pg_controldata: not shut down"; return 1; }
    lsn=$(sed -n 's/^Latest checkpoint location: *//p' <<<"$state")
    for ((i = 0; i < 3000; i++)); do
        [[ $(psql_at "$nport" "SELECT pg_last_wal_replay_lsn() > '$lsn'" 2>/dev/null || true) == t ]] && break
        sleep 0.01
    done
    ((i < 3000)) || { log "the candidate did not replay past $lsn within 30 s"; return 1; }
    [[ $(psql_at "$nport" "SELECT pg_promote()") == t ]] || return 1
    "${as_pg[@]}" touch "$old/standby.signal" || return 1
    "${as_pg[@]}" sed -i '/^primary_conninfo[[:space:]]*=/d' "$old/postgresql.auto.conf" || return 1
    printf "primary_conninfo = 'host=127.0.0.1 port=%s user=replicator passfile=%s application_name=bench-sw'\n" \
        "$nport" "$pgpass" | "${as_pg[@]}" tee -a "$old/postgresql.auto.conf" >/dev/null || return 1
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$old" -l "$logs/switchover-$(basename "$old").log" -w -t 60 start >/dev/null ||
        return 1
    for ((i = 0; i < 3000; i++)); do
        [[ $(psql_at "$oport" "SELECT status FROM pg_stat_wal_receiver" 2>/dev/null || true) == streaming ]] && return 0
        sleep 0.01
    done
    log "the old primary did not stream within 30 s"
    return 1
}

switch_pgrepctl() {  # OLD OPORT NEW NPORT STEP: prints "wall_s hwm_kb maxrss_kb rc"
    PGPASSFILE=$work/super.pgpass py measure "$switchover_pgrepctl" switchover --json -D "$1" \
        --candidate "host=127.0.0.1 port=$4 user=postgres" --password-file "$pwfile" --bindir "$bindir" \
        2>"$logs/switchover-$5.err" | tee "$logs/switchover-$5.log" | tail -n 1
}

# One switchover of the current primary to the other node by WAY (pgrepctl
# or hand), under the writer and the load; records its three figures and
# turns $sw_cur over. A failed pgrepctl run that left the old primary a
# primary with its standby streaming (rolled back) is counted, not fatal.
switchover_step() {  # WAY STEP RUN
    local way=$1 step=$2 run=$3 old new oport nport t0 t1 out wall rc tli pause first last acks after spacing lost own
    old=${sw_dirs[sw_cur]} oport=${sw_ports[sw_cur]} new=${sw_dirs[1 - sw_cur]} nport=${sw_ports[1 - sw_cur]}
    caught_up "$oport" "$nport"
    start_load "$oport"
    start_writer "$logs/switchover-writer-$step.txt" "${sw_ports[0]}" "${sw_ports[1]}"
    sleep 0.3  # steady state: the writer every 2 ms, pgbench at its rate
    t0=$EPOCHREALTIME
    if [[ $way == hand ]]; then
        switch_by_hand "$old" "$oport" "$new" "$nport" || die "the switchover by hand failed (step $step)"
        t1=$EPOCHREALTIME rc=0
        wall=$(calc '%.4f' "$t1 - $t0")
    else
        out=$(switch_pgrepctl "$old" "$oport" "$new" "$nport" "$step") || true
        t1=$EPOCHREALTIME
        read -r wall _ _ rc <<<"$out"
        head -n -1 "$logs/switchover-$step.log" >"$logs/switchover-$step.json"
    fi
    if [[ ${rc:-1} != 0 ]]; then
        stop_writer "$logs/switchover-writer-$step.txt" "$t1"
        stop_load
        switchover_failed "$step" "$oport" "$nport"
        lost=$(lost_writes "$step" "$t0" "$t1" "$oport")
        log "  $way $run (port $oport, rolled back): lost $lost acknowledged writes"
        sw_lost[$way]=$((${sw_lost[$way]:-0} + lost))
        return 0
    fi
    # The new primary's timeline from its WAL position: the control file
    # names it only after the first checkpoint, which pg_promote() does not wait for.
    tli=$(psql_at "$nport" "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int")
    [[ $(streams_from "$oport" "$nport" "$tli") == t ]] ||
        die "step $step ($way): exited 0, but port $oport does not stream from port $nport on timeline $tli"
    stop_writer "$logs/switchover-writer-$step.txt" "$t1"
    stop_load
    read -r pause first last acks after spacing < <(writer_figures "$logs/switchover-writer-$step.txt" "$t0" "$t1") ||
        die "step $step: cannot read the writer's log"
    ((after > 0)) || { cat "$logs/switchover-writer-$step.txt.err" >&2; die "step $step: the writer wrote nothing through the write conninfo within 30 s after the switchover"; }
    lost=$(lost_writes "$step" "$t0" "$t1" "$nport")
    own=""
    [[ $way == pgrepctl ]] &&
        own=" (pgrepctl's own write_pause_ms: $(json_field "$logs/switchover-$step.json" "round(j.get('write_pause_ms') or j.get('details', {}).get('write_pause_ms'))"))"
    log "  $way $run (port $oport -> $nport): pause ${pause}s$own, whole ${wall}s, lost $lost of $acks acknowledged"
    echo "$pause" >>"$logs/switchover_${way}_pause.txt"
    echo "$spacing" >>"$logs/switchover_writer_spacing.txt"
    echo "$wall" >>"$logs/switchover_${way}_whole.txt"
    sw_lost[$way]=$((${sw_lost[$way]:-0} + lost))
    sw_cur=$((1 - sw_cur))
}

lost_writes() {  # STEP T0 T1 PORT: acknowledged ids of the step's writer missing on PORT
    local first last
    read -r _ first last _ _ _ < <(writer_figures "$logs/switchover-writer-$1.txt" "$2" "$3") ||
        die "step $1: cannot read the writer's log"
    psql_at "$4" "SELECT count(*) FROM generate_series($first, $last) g
                  WHERE NOT EXISTS (SELECT 1 FROM switchover_ids WHERE id = g)"
}

switchover_failed() {  # STEP OPORT NPORT: a failed pgrepctl run; go on only from a rolled-back state
    local why
    why="exit $(tail -n 1 "$logs/switchover-$1.log" | awk '{print $4}'): $(json_field "$logs/switchover-$1.json" "j['error']['code'] + ': ' + j['error']['message']")"
    log "  pgrepctl: FAILED ($why); log: $logs/switchover-$1.err"
    tail -n 20 "$logs/switchover-$1.err" >&2
    sw_failed=$((sw_failed + 1))
    [[ $(psql_at "$2" "SELECT pg_is_in_recovery()" 2>/dev/null || true) == f &&
        $(psql_at "$3" "SELECT pg_is_in_recovery()" 2>/dev/null || true) == t ]] ||
        die "after the failed switchover, port $2 is not a primary with port $3 its standby: the runs cannot go on"
}

switchover_setup() {  # the writer's role, the superuser's TCP password, the standby sw
    local out super_pw
    writer=$repo/target/release/examples/switchover_writer
    [[ -x $writer ]] || die "no $writer: cargo build --release --example switchover_writer"
    (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(18))' >"$work/writer.pw")
    super_pw=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
    (umask 077 && echo "127.0.0.1:*:*:postgres:$super_pw" >"$work/super.pgpass")
    # --candidate is a superuser conninfo over TCP: the superuser needs a
    # password there (the bench's own sessions keep the socket).
    psql_at "$pport" "ALTER ROLE postgres PASSWORD '$super_pw';
        CREATE ROLE bench_writer LOGIN PASSWORD '$(cat "$work/writer.pw")';
        GRANT CREATE, USAGE ON SCHEMA public TO bench_writer" >/dev/null
    sw_dirs=("$primary" "$standbys/sw")
    sw_ports=("$pport" "$(new_port)")
    out=$(clone_pgrepctl "${sw_dirs[1]}" "${sw_ports[1]}" bench-sw) || true
    [[ $out == *" 0" ]] || { cat "$logs/clone-bench-sw".{log,err} >&2; die "pgrepctl clone-standby of sw failed"; }
    sw_cur=0 sw_failed=0
    declare -gA sw_lost=()
}

# The pgrepctl binary for the switchover half, or "" when it has no
# `switchover` command.
switchover_binary() {
    local bin=${BENCH_SWITCHOVER_PGREPCTL:-$pgrepctl}
    [[ -x $bin ]] || die "BENCH_SWITCHOVER_PGREPCTL=$bin: not an executable"
    if "$bin" switchover --help >/dev/null 2>&1; then
        echo "$bin"
    else
        log "switchover: SKIPPING the pgrepctl half: $bin has no 'switchover' command (not built yet?);"
        log "  point BENCH_SWITCHOVER_PGREPCTL at a pgrepctl build that has it; measuring the switchover by hand only"
    fi
}

bench_switchover() {
    local i step=0 way ways
    switchover_pgrepctl=$(switchover_binary)
    switchover_setup
    ways=(hand)
    [[ -n $switchover_pgrepctl ]] && ways=(pgrepctl hand)
    for way in pgrepctl hand; do
        : >"$logs/switchover_${way}_pause.txt"
        : >"$logs/switchover_${way}_whole.txt"
    done
    : >"$logs/switchover_writer_spacing.txt"
    local load="pgbench -R $switchover_tps"
    ((switchover_tps > 0)) || load="no pgbench"
    log "switchover: $switchover_runs runs of ${ways[*]} under the writer (every 2 ms) and $load, taking turns as primary"
    for ((i = 1; i <= switchover_runs; i++)); do
        if ((i % 2 == 0)) && ((${#ways[@]} == 2)); then ways=(hand pgrepctl)
        elif ((${#ways[@]} == 2)); then ways=(pgrepctl hand); fi
        for way in "${ways[@]}"; do
            step=$((step + 1))
            switchover_step "$way" "$step" "$i"
        done
    done
    switchover_teardown
    switchover_emit
}

switchover_teardown() {  # the bench primary back as the primary (untimed), sw dropped
    if ((sw_cur == 1)); then
        log "switchover: back to the bench primary (untimed)"
        caught_up "${sw_ports[1]}" "${sw_ports[0]}"
        switch_by_hand "${sw_dirs[1]}" "${sw_ports[1]}" "${sw_dirs[0]}" "${sw_ports[0]}" ||
            die "the switchover back to the bench primary failed"
        sw_cur=0
    fi
    drop_standby "${sw_dirs[1]}"
}

switchover_emit() {
    local way name med min max
    for way in pgrepctl hand; do
        [[ -s $logs/switchover_${way}_pause.txt ]] || continue
        name=$way
        [[ $way == hand ]] && name=by_hand
        read -r med _ min max _ < <(py stats "$logs/switchover_${way}_pause.txt")
        emit "switchover_${name}_pause_s" "$(calc '%.3f' "$med")" s
        emit "switchover_${name}_pause_min_s" "$(calc '%.3f' "$min")" s
        emit "switchover_${name}_pause_max_s" "$(calc '%.3f' "$max")" s
        read -r med _ min max _ < <(py stats "$logs/switchover_${way}_whole.txt")
        emit "switchover_${name}_whole_s" "$(calc '%.3f' "$med")" s
        emit "switchover_${name}_whole_min_s" "$(calc '%.3f' "$min")" s
        emit "switchover_${name}_whole_max_s" "$(calc '%.3f' "$max")" s
        emit "switchover_${name}_lost_writes" "${sw_lost[$way]:-0}" count
    done
    [[ -n $switchover_pgrepctl ]] && emit switchover_pgrepctl_failed "$sw_failed" count
    # The writer's usual spacing between acknowledged writes: the pause's resolution.
    if [[ -s $logs/switchover_writer_spacing.txt ]]; then
        read -r med _ < <(py stats "$logs/switchover_writer_spacing.txt")
        emit switchover_writer_spacing_ms "$(calc '%.2f' "$med")" ms
    fi
    emit switchover_pause_target_s 0.4 s
    emit switchover_whole_target_s 1.5 s
    emit switchover_lost_writes_target 0 count
    emit switchover_pause_repmgr_published_s 1.27 s  # repmgr 5.3 standby switchover, scale 50, 2 cores (issue #12)
    emit switchover_whole_repmgr_published_s 4.47 s
    local total=$((${sw_lost[pgrepctl]:-0} + ${sw_lost[hand]:-0}))
    ((total == 0)) || log "switchover: $total acknowledged writes LOST (see above)"
}
