# bench/run's compression figures (issue #16), sourced by bench/run: it
# uses its helpers and variables ($bindir, $work, $sock, $standbys, $logs,
# $pwfile, $pgpass, $pgrepctl, $scale, as_pg, py, calc, emit, log, die,
# new_port, psql_at, stop_server, started).
#
# Two "hosts", network namespaces with the server on 10.200.254.1 and the
# client on 10.200.254.6, and a router namespace between them, joined by
# veth pairs (10.200.254.0/30 and 10.200.254.4/30). While they exist the
# host namespace routes 10.200.0.0/16 to `unreachable`, as the tests do, so
# nothing leaves the machine. A primary of its own in the server namespace
# (initdb, the real `pgrepctl init-master --allow CLIENT/32`), loaded with
# one data set at a time:
#   - pgbench: `pgbench -i -s SCALE`;
#   - realistic: a table of md5 text and random numbers, SCALE × 120000
#     rows (about the same size as pgbench's at the same scale, but only
#     about 2× compressible where pgbench's is ~15×).
# For each data set and link, BENCH_COMPRESS_RUNS (3) runs of each,
# alternating: `pgrepctl clone-standby --no-start` from the client host
# (default --compress auto) against `pg_basebackup -X stream
# --checkpoint=fast` by hand (the README's default; it syncs its files
# itself). --no-start: both are copy-to-disk, so the ratio is the copy's.
# Links:
#   - a: 100 Mbit/s and 40 ms round trip (20 ms each way);
#   - b: 1 Gbit/s and 2 ms round trip;
#   - c (only when BENCH_COMPRESS_LINKS names it): 1 Gbit/s and 40 ms, a
#     fast link across an ocean, where auto's probe cannot see the rate;
#   - veth (only when BENCH_COMPRESS_LINKS names it): no rate limit and no
#     added delay, a "link" as fast as the CPUs move it (what auto's probe
#     makes of a fast link);
#   - loopback: the client on the primary's own host, over 127.0.0.1
#     (auto copies uncompressed there).
# The rate is shaped with tbf on the hosts' ends of the links. The round
# trip comes from examples/netdelay.rs (bench/run builds it): in
# the router, policy routes send what arrives from each host into one of
# two tun devices, and netdelay writes it to the other device half the
# round trip later, from where the router forwards it on. Kernels without
# the netem qdisc (some VM kernels have only tbf and htb) can delay this
# way too, and one way on every kernel keeps the figures comparable.
# Medians and ratios pgrepctl/hand, plus the compression auto chose.
# Knobs: BENCH_COMPRESS_METHOD (a --compress value for pgrepctl; default:
# none given, i.e. auto), BENCH_COMPRESS_VERSUS (another pgrepctl binary,
# e.g. an older build: a third way in the same alternation, its medians as
# compress_SET_LINK_versus_*), BENCH_COMPRESS_SETS ("pgbench realistic"),
# BENCH_COMPRESS_LINKS ("a b loopback"), BENCH_COMPRESS_RTT (off: the
# links without their round trip, netdelay still forwarding; to tell the
# delay's effect from the forwarding's). bench/run's cleanup stops the
# servers by data directory; compress_cleanup then kills netdelay (by PID)
# and removes the namespaces (and the route, if it added it).

compress_ns=""      # namespace prefix while they exist
compress_route=""   # set when this script added the unreachable route
compress_delay_pid=""  # netdelay, while it runs

compress_cleanup() {
    compress_delay_stop
    [[ -n $compress_ns ]] || return 0
    local n
    for n in s c r; do
        ip netns del "${compress_ns}$n" 2>/dev/null || true
    done
    if [[ -n $compress_route ]] && ! ip netns list | grep -q '^pgrt'; then
        ip route del unreachable 10.200.0.0/16 2>/dev/null || true
    fi
    compress_ns=""
}

compress_hosts() {  # the three namespaces, the veth pairs, the router's tun devices, the guard
    local p=pgbc$$ n k
    if ! ip route show 10.200.0.0/16 | grep -q unreachable; then
        ip route add unreachable 10.200.0.0/16
        compress_route=1
    fi
    compress_ns=$p
    for n in s c r; do
        ip netns add "$p$n"
        ip -n "$p$n" link set lo up
    done
    ip link add "${p}vs" netns "${p}s" type veth peer name "${p}rs" netns "${p}r"
    ip link add "${p}vc" netns "${p}c" type veth peer name "${p}rc" netns "${p}r"
    ip -n "${p}s" addr add 10.200.254.1/30 dev "${p}vs"
    ip -n "${p}r" addr add 10.200.254.2/30 dev "${p}rs"
    ip -n "${p}c" addr add 10.200.254.6/30 dev "${p}vc"
    ip -n "${p}r" addr add 10.200.254.5/30 dev "${p}rc"
    for n in s:vs c:vc r:rs r:rc; do
        ip -n "$p${n%%:*}" link set "$p${n#*:}" up
    done
    ip -n "${p}s" route add default via 10.200.254.2
    ip -n "${p}c" route add default via 10.200.254.5
    # The router (compress_delay): what arrives from the server goes into
    # d0, what arrives from the client into d1; what netdelay writes to one
    # device leaves by the main table (rp_filter off: these packets arrive
    # on the "wrong" side). Without a delay it just forwards.
    ip netns exec "${p}r" sysctl -qw net.ipv4.ip_forward=1
    for n in d0 d1; do
        ip -n "${p}r" tuntap add dev "$p$n" mode tun vnet_hdr
        ip -n "${p}r" link set "$p$n" up txqueuelen 10000
    done
    for k in all default "${p}d0" "${p}d1" "${p}rs" "${p}rc"; do
        ip netns exec "${p}r" sysctl -qw "net.ipv4.conf.$k.rp_filter=0"
    done
    ip -n "${p}r" route add default dev "${p}d0" table 100
    ip -n "${p}r" route add default dev "${p}d1" table 101
}

compress_delay_stop() {
    [[ -n $compress_delay_pid ]] || return 0
    # What the delay line cost the two vCPUs the hosts share (user + system).
    local ticks
    ticks=$(awk '{print $14 + $15}' "/proc/$compress_delay_pid/stat" 2>/dev/null || echo "")
    [[ -z $ticks ]] || log "compress: netdelay used $(calc '%.2f' "$ticks / $(getconf CLK_TCK)") s of CPU"
    kill "$compress_delay_pid" 2>/dev/null || true
    wait "$compress_delay_pid" 2>/dev/null || true
    compress_delay_pid=""
}

compress_delay() {  # MICROSECONDS each way: the router forwards through netdelay (0: directly)
    local r=${compress_ns}r
    compress_delay_stop
    ip -n "$r" rule del pref 100 2>/dev/null || true
    ip -n "$r" rule del pref 101 2>/dev/null || true
    if (($1 > 0)); then
        ip -n "$r" rule add iif "${compress_ns}rs" lookup 100 pref 100
        ip -n "$r" rule add iif "${compress_ns}rc" lookup 101 pref 101
        # Real-time priority: the copies keep both vCPUs busy, and a delay
        # line waiting for a time slice would add milliseconds of jitter
        # (and cost the CPU-bound compressed copies most). It sleeps in
        # ppoll between bursts: about a fifth of a core at 1 Gbit/s, most
        # of it the kernel forwarding what it writes.
        local rt=(chrt -f 10)
        if ! chrt -f 10 true 2>/dev/null; then
            log "compress: no real-time priority here (chrt -f failed): netdelay runs at normal priority"
            rt=()
        fi
        ip netns exec "$r" "${rt[@]}" "$repo/target/release/examples/netdelay" \
            "${compress_ns}d0" "${compress_ns}d1" "$1" 2>>"$logs/netdelay.log" &
        compress_delay_pid=$!
    fi
    # Ready when a TCP handshake crosses (a refused port answers too).
    local i
    for ((i = 0; i < 50; i++)); do
        if ip netns exec "${compress_ns}c" python3 -c 'import socket,sys
s = socket.socket(); s.settimeout(1)
try: s.connect(("10.200.254.1", 9))
except ConnectionRefusedError: sys.exit(0)
except OSError: sys.exit(1)
sys.exit(0)' 2>/dev/null; then
            return 0
        fi
        if [[ -n $compress_delay_pid ]] && ! kill -0 "$compress_delay_pid" 2>/dev/null; then
            cat "$logs/netdelay.log" >&2
            die "netdelay exited"
        fi
        sleep 0.1
    done
    die "the namespaces' link does not carry packets"
}

compress_shape() {  # RATE MICROSECONDS_EACH_WAY: tbf on both hosts' ends, netdelay between
    local dev ns
    for dev in s c; do
        ns=${compress_ns}$dev
        ip netns exec "$ns" tc qdisc del dev "${compress_ns}v$dev" root 2>/dev/null || true
        if [[ $1 != none ]]; then
            ip netns exec "$ns" tc qdisc add dev "${compress_ns}v$dev" root tbf rate "$1" burst 1mb latency 50ms
        fi
    done
    compress_delay "$([[ ${BENCH_COMPRESS_RTT:-on} == off ]] && echo 0 || echo "$2")"
}

compress_primary() {  # start the primary in the server namespace; sets cport, cprimary
    cprimary=$work/cprimary
    cport=$(new_port)
    mkdir -m 700 "$cprimary"
    if ((${#as_pg[@]})); then chown postgres: "$cprimary"; fi
    (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(18))' >"$work/csuper.pw")
    if ((${#as_pg[@]})); then chown postgres: "$work/csuper.pw"; fi
    "${as_pg[@]}" "$bindir/initdb" -D "$cprimary" -U postgres --pwfile="$work/csuper.pw" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C >"$logs/cinitdb.log" 2>&1 ||
        { cat "$logs/cinitdb.log" >&2; die "initdb failed"; }
    rm -f "$work/csuper.pw"
    cat >>"$cprimary/postgresql.conf" <<EOF

# bench/run compress
port = $cport
listen_addresses = '127.0.0.1,10.200.254.1'
unix_socket_directories = '$sock'
max_wal_senders = 20
EOF
    started+=("$cprimary")
    ip netns exec "${compress_ns}s" "${as_pg[@]}" "$bindir/pg_ctl" -D "$cprimary" -l "$logs/cprimary.log" -w -t 60 start >/dev/null ||
        { cat "$logs/cprimary.log" >&2; die "the compress primary did not start"; }
    "$pgrepctl" init-master --json -D "$cprimary" --allow 10.200.254.6/32 --allow 127.0.0.1/32 \
        --password-file "$pwfile" --restart if-needed >"$logs/cinit-master.json" 2>"$logs/cinit-master.log" ||
        { cat "$logs/cinit-master.json" "$logs/cinit-master.log" >&2; die "init-master failed"; }
}

compress_load() {  # pgbench|realistic: replace the data set
    psql_at "$cport" "DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history, realistic" >/dev/null
    if [[ $1 == pgbench ]]; then
        "${as_pg[@]}" "$bindir/pgbench" -i -s "$scale" -q -h "$sock" -p "$cport" -U postgres postgres \
            >"$logs/cpgbench-init.log" 2>&1 || { cat "$logs/cpgbench-init.log" >&2; die "pgbench -i failed"; }
    else
        psql_at "$cport" "CREATE TABLE realistic AS SELECT i AS id, md5(i::text) AS h, md5(random()::text) AS h2,
            (random() * 1e9)::bigint AS n, random() AS r, now() - random() * interval '1000 days' AS at
            FROM generate_series(1, $scale * 120000) i" >/dev/null
    fi
    psql_at "$cport" "VACUUM FREEZE" >/dev/null
    psql_at "$cport" "CHECKPOINT" >/dev/null
}

compress_one() {  # pgrepctl|hand HOST NS DIR: one copy; prints wall seconds
    local how=$1 host=$2 ns=$3 dir=$4 t0 t1
    started+=("$dir")
    t0=$EPOCHREALTIME
    if [[ $how == pgrepctl || $how == versus ]]; then
        local bin=$pgrepctl
        [[ $how == pgrepctl ]] || bin=$BENCH_COMPRESS_VERSUS
        ip netns exec "$ns" "$bin" clone-standby --json --no-progress --no-start \
            --primary "host=$host port=$cport user=replicator" -D "$dir" --password-file "$pwfile" \
            --port "$(new_port)" --listen localhost --bindir "$bindir" --application-name c \
            ${BENCH_COMPRESS_METHOD:+--compress "$BENCH_COMPRESS_METHOD"} \
            >"$logs/compress-last.json" 2>"$logs/compress-last.err" ||
            { cat "$logs/compress-last.json" "$logs/compress-last.err" >&2; return 1; }
        [[ $how == versus ]] || cp "$logs/compress-last.json" "$logs/compress-probe-$(basename "$dir").json"
    else
        ip netns exec "$ns" "${as_pg[@]}" env PGPASSFILE="$pgpass" "$bindir/pg_basebackup" -D "$dir" \
            -d "host=$host port=$cport user=replicator" -X stream --checkpoint=fast --no-password \
            >"$logs/compress-last.err" 2>&1 || { cat "$logs/compress-last.err" >&2; return 1; }
    fi
    t1=$EPOCHREALTIME
    calc '%.3f' "$t1 - $t0"
    rm -rf "$dir"
}

compress_link() {  # DATASET LINK HOST NS: medians of both, their ratio
    local set=$1 link=$2 host=$3 ns=$4 i how s
    : >"$logs/c-pgrepctl.txt"
    : >"$logs/c-hand.txt"
    : >"$logs/c-versus.txt"
    for ((i = 1; i <= compress_runs; i++)); do
        for how in hand pgrepctl ${BENCH_COMPRESS_VERSUS:+versus}; do
            s=$(compress_one "$how" "$host" "$ns" "$standbys/c-$how-$i") || die "compress: $how copy failed ($set, $link)"
            echo "$s" >>"$logs/c-$how.txt"
            log "compress $set $link $how run $i: ${s}s"
        done
    done
    local p h pmin hmin method
    read -r p _ pmin _ < <(py stats "$logs/c-pgrepctl.txt")
    read -r h _ hmin _ < <(py stats "$logs/c-hand.txt")
    # What auto chose in the pgrepctl runs (not BENCH_COMPRESS_VERSUS's), each choice once.
    method=$(python3 -c 'import json,sys; print(";".join(sorted({json.load(open(f))["compression"]["method"] for f in sys.argv[1:]})))' "$logs"/compress-probe-*.json)
    # What auto's link probe measured in each pgrepctl run ("-": not probed).
    probes=$(python3 -c 'import json,sys; print(" ".join(str((json.load(open(f))["compression"].get("probe") or {}).get("rate_mb_s", "-")) for f in sys.argv[1:]))' "$logs"/compress-probe-*.json)
    rm -f "$logs"/compress-probe-*.json
    emit "compress_${set}_${link}_pgrepctl_s" "$(calc '%.2f' "$p")" "s"
    emit "compress_${set}_${link}_by_hand_s" "$(calc '%.2f' "$h")" "s"
    emit "compress_${set}_${link}_ratio" "$(calc '%.3f' "$p / $h")" "x"
    emit "compress_${set}_${link}_pgrepctl_min_s" "$(calc '%.2f' "$pmin")" "s"
    emit "compress_${set}_${link}_by_hand_min_s" "$(calc '%.2f' "$hmin")" "s"
    emit "compress_${set}_${link}_auto_method" "$method" "-"
    if [[ -n ${BENCH_COMPRESS_VERSUS:-} ]]; then
        local v vmin
        read -r v _ vmin _ < <(py stats "$logs/c-versus.txt")
        emit "compress_${set}_${link}_versus_s" "$(calc '%.2f' "$v")" "s"
        emit "compress_${set}_${link}_versus_ratio" "$(calc '%.3f' "$v / $h")" "x"
        emit "compress_${set}_${link}_versus_min_s" "$(calc '%.2f' "$vmin")" "s"
    fi
    emit "compress_${set}_${link}_probe_mb_s" "${probes// /,}" "MB/s"
}

compress_wanted() {  # LINK: in BENCH_COMPRESS_LINKS (default: all three)
    [[ " ${BENCH_COMPRESS_LINKS:-a b loopback} " == *" $1 "* ]]
}

bench_compress() {
    compress_runs=${BENCH_COMPRESS_RUNS:-3}
    [[ $compress_runs =~ ^[1-9][0-9]*$ ]] || die "BENCH_COMPRESS_RUNS must be a positive integer"
    if [[ $(id -u) -ne 0 ]] || ! command -v ip >/dev/null || ! command -v tc >/dev/null; then
        log "compress: skipped (needs root, ip and tc for the network namespaces)"
        return 0
    fi
    compress_hosts
    compress_primary
    local set size
    for set in ${BENCH_COMPRESS_SETS:-pgbench realistic}; do
        compress_load "$set"
        size=$(calc '%.0f' "$(psql_at "$cport" "SELECT sum(pg_database_size(oid)) FROM pg_database") / 1048576")
        log "compress: $set data, $size MB"
        emit "compress_${set}_size_mb" "$size" MB
        if compress_wanted a; then
            compress_shape 100mbit 20000
            compress_link "$set" a_100mbit_40ms 10.200.254.1 "${compress_ns}c"
        fi
        if compress_wanted b; then
            compress_shape 1gbit 1000
            compress_link "$set" b_1gbit_2ms 10.200.254.1 "${compress_ns}c"
        fi
        if compress_wanted c; then
            compress_shape 1gbit 20000
            compress_link "$set" c_1gbit_40ms 10.200.254.1 "${compress_ns}c"
        fi
        if compress_wanted veth; then
            compress_shape none 0
            compress_link "$set" veth_unshaped 10.200.254.1 "${compress_ns}c"
        fi
        if compress_wanted loopback; then
            compress_link "$set" loopback 127.0.0.1 "${compress_ns}s"
        fi
    done
    stop_server "$cprimary" fast
    compress_cleanup
}
