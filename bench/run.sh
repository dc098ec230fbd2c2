#!/usr/bin/env bash
# bench/run.sh: chatserver, redis-server and nats-server side by side on the
# same workloads, in one run on this machine. See BENCHMARKS.md.
#
# Each (server, workload) pair gets a fresh server on 127.0.0.1, pinned to
# core $SERVER_CORE with taskset; chatbench runs pinned to core $GEN_CORE and
# reports the server's CPU seconds and RSS from /proc/PID. Every server is
# stopped by its PID. JSON reports go to $OUT; the side-by-side table is
# printed at the end and saved as $OUT/table.md.
#
# Knobs (environment):
#   TARGETS="chat redis nats"  WORKLOADS="fanout latency private idle soak"
#   FANOUT_MESSAGES=25000      messages per publisher (4 publishers, 100 members)
#   PRIVATE_MESSAGES=2000      messages per client (100 clients)
#   LATENCY_SECONDS=10         at 2000 msg/s into 100 members
#   IDLE_CONNECTIONS=19000     joined idle connections per server
#   IDLE_BUDGET=240            seconds of joining at most; chat's joins cost
#                              N^2/2 presence deliveries, so it may hold fewer
#   SOAK_SECONDS=60            chat only (issue 4's soak: 200 clients)
#   FANOUT_ACK=own             own: a publisher's window counts its own copies
#                              back; end-to-end: every member's (chatbench
#                              fanout --end-to-end, reports every 16)
#   CHAT_STORE=sqlite          sqlite (the default store, a fresh data
#                              directory per run) or memory (--store memory)
#   SERVER_CORE=1 GEN_CORE=0   OUT=target/bench/<date>
#   NICE=0                     e.g. -15 (as root) to run servers and generator
#                              ahead of other programs on a shared machine
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=${TARGETS:-"chat redis nats"}
WORKLOADS=${WORKLOADS:-"fanout latency private idle soak"}
FANOUT_MESSAGES=${FANOUT_MESSAGES:-25000}
PRIVATE_MESSAGES=${PRIVATE_MESSAGES:-2000}
LATENCY_SECONDS=${LATENCY_SECONDS:-10}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-19000}
IDLE_BUDGET=${IDLE_BUDGET:-240}
SOAK_SECONDS=${SOAK_SECONDS:-60}
FANOUT_ACK=${FANOUT_ACK:-own}
CHAT_STORE=${CHAT_STORE:-sqlite}
DATA_DIR=""
SERVER_CORE=${SERVER_CORE:-1}
GEN_CORE=${GEN_CORE:-0}
NICE=${NICE:-0}
OUT=${OUT:-target/bench/$(date +%Y%m%d-%H%M%S)}

log() { printf '[run.sh] %s\n' "$*" >&2; }

# shellcheck source=bench/lib.sh
. bench/lib.sh # stop_pid

# Servers and the generator are started as `nice -n $NICE taskset -c CORE
# program`, never through a shell function: nice and taskset exec the
# program, so `$!` is the server's own PID (a backgrounded function would
# give a subshell's PID, which is neither what to measure nor what to stop).

# --- build and install -------------------------------------------------------
log "building release binaries"
cargo build --release -p chatserver -p chatbench
BENCH=target/release/chatbench
CHATSERVER=target/release/chatserver

need_pkgs=()
case " $TARGETS " in *" redis "*) command -v redis-server >/dev/null || need_pkgs+=(redis-server) ;; esac
case " $TARGETS " in *" nats "*) command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || need_pkgs+=(nats-server) ;; esac
if [ ${#need_pkgs[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    log "installing ${need_pkgs[*]} with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
NATS_SERVER=$(command -v nats-server || echo /usr/sbin/nats-server)

mkdir -p "$OUT"

# --- servers -------------------------------------------------------------------
SERVER_PID=""
SERVER_ADDR=""

start_server() { # target workload
    local port log_file="$OUT/$1-$2-server.log" rate=(--rate 0)
    # The soak runs chatserver's default rate limit; the speed runs lift it
    # (redis and nats have none).
    [ "$2" = soak ] && rate=()
    case $1 in
    chat)
        local store=(--store memory)
        if [ "$CHAT_STORE" = sqlite ]; then
            DATA_DIR=$(mktemp -d)
            store=(--data-dir "$DATA_DIR")
        fi
        nice -n "$NICE" taskset -c "$SERVER_CORE" "$CHATSERVER" --listen 127.0.0.1:0 --log-level warn \
            "${rate[@]}" --max-clients 20000 --max-clients-per-ip 0 "${store[@]}" >"$log_file" 2>&1 &
        SERVER_PID=$!
        addr_from_log "$log_file" 's/^listening on //p' || return 1
        ;;
    redis)
        # redis cannot pick its own port: take a free one, and if another
        # process binds it first (redis then exits), try again.
        for _ in 1 2 3 4 5; do
            port=$(free_port)
            nice -n "$NICE" taskset -c "$SERVER_CORE" redis-server --port "$port" --bind 127.0.0.1 --protected-mode no \
                --save "" --appendonly no --maxclients 20000 --loglevel warning >"$log_file" 2>&1 &
            SERVER_PID=$!
            SERVER_ADDR=127.0.0.1:$port
            wait_listening "$SERVER_ADDR" && redis_ping "$port" && break
            stop_server
        done
        ;;
    nats)
        # -p -1: nats picks a free port and logs it.
        nice -n "$NICE" taskset -c "$SERVER_CORE" "$NATS_SERVER" -a 127.0.0.1 -p -1 >"$log_file" 2>&1 &
        SERVER_PID=$!
        addr_from_log "$log_file" 's/.*Listening for client connections on //p' || return 1
        ;;
    esac
    [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null || { log "$1 server did not start"; return 1; }
    wait_listening "$SERVER_ADDR"
    # The PID measured and stopped must be the server itself.
    local comm
    comm=$(cat "/proc/$SERVER_PID/comm" 2>/dev/null || true)
    case $comm in
    chatserver | redis-server | nats-server) ;;
    *)
        log "PID $SERVER_PID is '$comm', not the server"
        return 1
        ;;
    esac
}

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    [ -z "$DATA_DIR" ] || rm -rf "$DATA_DIR"
    DATA_DIR=""
}
trap stop_server EXIT

# --- workloads -----------------------------------------------------------------
idle_source() { # a different 127.0.0.x range per target, so no run meets another's ports
    case $1 in chat) echo 127.0.0.2 ;; redis) echo 127.0.0.12 ;; nats) echo 127.0.0.22 ;; esac
}

workload_args() { # target workload
    case $2 in
    fanout)
        local e2e=""
        [ "$FANOUT_ACK" = end-to-end ] && e2e=" --end-to-end --ack-every 16"
        echo "fanout --members 100 --publishers 4 --messages $FANOUT_MESSAGES --window 64 --size 64$e2e"
        ;;
    latency) echo "latency --members 100 --publishers 4 --rate 2000 --seconds $LATENCY_SECONDS --size 64" ;;
    private) echo "private --clients 100 --messages $PRIVATE_MESSAGES --window 16 --size 64" ;;
    idle) echo "idle --connections $IDLE_CONNECTIONS --max-seconds $IDLE_BUDGET --source-base $(idle_source "$1")" ;;
    soak) echo "soak --clients 200 --seconds $SOAK_SECONDS" ;;
    esac
}

# Other programs on the machine skew every figure; say so in the table.
busy_before=$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 >= 10 { printf "%s%s (%s%% CPU)", sep, $2, $1; sep=", " }')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
[ -z "$busy_before" ] || log "warning: other programs are busy: $busy_before"

started=$(date +%s)
for workload in $WORKLOADS; do
    for target in $TARGETS; do
        [ "$workload" = soak ] && [ "$target" != chat ] && continue
        start_server "$target" "$workload"
        log "$workload against $target (pid $SERVER_PID, $SERVER_ADDR)"
        # shellcheck disable=SC2046 # the workload's arguments are words
        nice -n "$NICE" taskset -c "$GEN_CORE" "$BENCH" --target "$target" --addr "$SERVER_ADDR" \
            --server-pid "$SERVER_PID" --json $(workload_args "$target" "$workload") \
            >"$OUT/$target-$workload.json" || log "$workload against $target reported a failure"
        stop_server
    done
done

# --- the table -------------------------------------------------------------------
{
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), Linux $(uname -r)"
    echo "Servers: chatserver $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(redis-server --version 2>/dev/null | cut -d' ' -f1-3 || true), nats-server $("$NATS_SERVER" --version 2>/dev/null | awk '{print $2}' || true)"
    echo "Run: $(date -u +%Y-%m-%dT%H:%MZ), $(( $(date +%s) - started )) s, server on core $SERVER_CORE, chatbench on core $GEN_CORE, nice $NICE; chat store $CHAT_STORE, fan-out window $FANOUT_ACK"
    echo "Load average before the run: $load_before; other busy programs: ${busy_before:-none}"
    echo
    "$BENCH" table "$OUT"/*.json
} | tee "$OUT/table.md"
log "reports in $OUT"
