# bench/run's tunnel figure (issue #14), sourced by bench/run after
# bench/switchover.sh: it uses their helpers and variables ($primary,
# $pport, $pwfile, $bindir, $logs, $standbys, py, calc, emit, new_port,
# psql_at, caught_up, drop_standby, ...).
#
# An OpenSSH server on 127.0.0.1 (a free port; key-only login as the user
# running the bench, a key and known_hosts made here; nothing leaves the
# machine), `pgrepctl tunnel run` forwarding 127.0.0.1:LOCAL to the bench
# primary's port through it, and a standby `tun` cloned with `pgrepctl
# clone-standby --primary 'host=127.0.0.1 port=LOCAL user=replicator'`,
# which clone-standby gives wal_retrieve_retry_interval = 500ms (a loopback,
# forwarded primary; 5 s by default). Each run starts a fresh
# `tunnel run` (its backoff at 0.2 s, as after a minute of a working
# tunnel), waits until the standby streams through it, then SIGKILLs the
# ssh process by PID and times until the standby's WAL receiver streams
# again (a new receiver pid with status 'streaming', polled every 10 ms).
# BENCH_TUNNEL_RUNS (3) runs; median, fastest and slowest beside the target
# (2 s). Skipped, with a message, without /usr/sbin/sshd (scripts/install-deps).
# bench/run's cleanup stops `tunnel run` ($tunnel_pid) and sshd ($sshd_pid)
# by PID, and every server by its data directory.

tunnel_sshd() {  # start sshd on 127.0.0.1:$tun_sshport; keys and config in $work/ssh
    local d=$work/ssh me i
    me=$(id -un)
    mkdir -m 700 "$d"
    ssh-keygen -q -t ed25519 -N '' -C pgrepctl-bench -f "$d/host_key"
    ssh-keygen -q -t ed25519 -N '' -C pgrepctl-bench -f "$d/id_ed25519"
    printf 'restrict,port-forwarding,permitopen="127.0.0.1:%s" %s\n' "$pport" "$(cut -d' ' -f1,2 "$d/id_ed25519.pub")" \
        >"$d/authorized_keys"
    printf '[127.0.0.1]:%s %s\n' "$tun_sshport" "$(cut -d' ' -f1,2 "$d/host_key.pub")" >"$d/known_hosts"
    cat >"$d/sshd_config" <<EOF
Port $tun_sshport
ListenAddress 127.0.0.1
HostKey $d/host_key
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers $me
AllowTcpForwarding local
X11Forwarding no
EOF
    [[ $(id -u) -ne 0 ]] || mkdir -p /run/sshd  # the privilege-separation directory
    /usr/sbin/sshd -D -e -f "$d/sshd_config" 2>"$logs/sshd.log" &
    sshd_pid=$!
    for ((i = 0; i < 500; i++)); do
        (: <"/dev/tcp/127.0.0.1/$tun_sshport") 2>/dev/null && return 0
        kill -0 "$sshd_pid" 2>/dev/null || break
        sleep 0.02
    done
    cat "$logs/sshd.log" >&2
    die "sshd did not listen on 127.0.0.1:$tun_sshport"
}

tunnel_start() {  # a fresh `pgrepctl tunnel run`, until ssh runs under it
    local i
    "$pgrepctl" tunnel run --ssh "$(id -un)@127.0.0.1" --ssh-port "$tun_sshport" --local-port "$tun_local" \
        --remote-port "$pport" --identity "$work/ssh/id_ed25519" --known-hosts "$work/ssh/known_hosts" \
        2>>"$logs/tunnel-run.log" >/dev/null &
    tunnel_pid=$!
    for ((i = 0; i < 500; i++)); do
        (: <"/dev/tcp/127.0.0.1/$tun_local") 2>/dev/null && return 0
        sleep 0.02
    done
    tail -n 20 "$logs/tunnel-run.log" >&2
    die "pgrepctl tunnel run: nothing listens on 127.0.0.1:$tun_local after 10 s"
}

tunnel_stop() {
    [[ -n $tunnel_pid ]] || return 0
    kill -TERM "$tunnel_pid" 2>/dev/null || true
    wait "$tunnel_pid" 2>/dev/null || true
    tunnel_pid=""
}

receiver() {  # PORT: the pid of the WAL receiver if it streams, else nothing
    psql_at "$1" "SELECT pid FROM pg_stat_wal_receiver WHERE status = 'streaming'" 2>/dev/null || true
}

wait_streaming() {  # PORT NOT_PID: until a receiver other than NOT_PID streams (30 s); prints its pid
    local i rx
    for ((i = 0; i < 3000; i++)); do
        rx=$(receiver "$1")
        [[ -n $rx && $rx != "$2" ]] && { echo "$rx"; return 0; }
        sleep 0.01
    done
    return 1
}

tunnel_setup() {  # sshd, the first tunnel, the standby tun cloned through it
    local out
    tun_sshport=$(new_port) tun_local=$(new_port) tun_port=$(new_port)
    tun_dir=$standbys/tun
    tunnel_sshd
    tunnel_start
    started+=("$tun_dir")
    out=$(py measure "$pgrepctl" clone-standby --json --no-progress \
        --primary "host=127.0.0.1 port=$tun_local user=replicator" -D "$tun_dir" --password-file "$pwfile" \
        --port "$tun_port" --bindir "$bindir" --application-name bench-tun --wait 300 \
        2>"$logs/clone-tun.err" | tee "$logs/clone-tun.log" | tail -n 1) || true
    [[ $out == *" 0" ]] || { cat "$logs/clone-tun".{log,err} >&2; die "pgrepctl clone-standby through the tunnel failed"; }
    tunnel_stop
}

bench_tunnel() {
    local i rx ssh_pid t0 t1
    if [[ ! -x /usr/sbin/sshd ]] || ! command -v ssh-keygen >/dev/null; then
        log "tunnel: SKIPPING: no /usr/sbin/sshd or ssh-keygen (scripts/install-deps installs OpenSSH)"
        return 0
    fi
    tunnel_setup
    : >"$logs/tunnel_recovery.txt"
    log "tunnel: $tunnel_runs runs: SIGKILL of ssh under pgrepctl tunnel run until the standby streams again"
    for ((i = 1; i <= tunnel_runs; i++)); do
        tunnel_start
        rx=$(wait_streaming "$tun_port" "") || die "the standby does not stream through the tunnel"
        caught_up "$pport" "$tun_port"
        ssh_pid=$(pgrep -P "$tunnel_pid" -x ssh) || die "no ssh under pgrepctl tunnel run ($tunnel_pid)"
        t0=$EPOCHREALTIME
        kill -KILL "$ssh_pid"
        wait_streaming "$tun_port" "$rx" >/dev/null || die "the standby did not stream again within 30 s"
        t1=$EPOCHREALTIME
        calc '%.4f' "$t1 - $t0" >>"$logs/tunnel_recovery.txt"
        log "  run $i: streaming again after $(tail -n 1 "$logs/tunnel_recovery.txt") s"
        tunnel_stop
    done
    kill -TERM "$sshd_pid" 2>/dev/null || true
    wait "$sshd_pid" 2>/dev/null || true
    sshd_pid=""
    drop_standby "$tun_dir"
    local med min max
    read -r med _ min max _ < <(py stats "$logs/tunnel_recovery.txt")
    emit tunnel_recovery_s "$(calc '%.3f' "$med")" s
    emit tunnel_recovery_min_s "$(calc '%.3f' "$min")" s
    emit tunnel_recovery_max_s "$(calc '%.3f' "$max")" s
    emit tunnel_recovery_target_s 2 s
}
