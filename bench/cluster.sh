#!/usr/bin/env bash
# bench/cluster.sh: one chatserver against three chatserver nodes sharing
# rooms through nats-server (JetStream), on the fan-out and latency
# workloads of bench/run.sh, interleaved round after round (the order
# rotated every round) so a busy machine weighs on every setup alike.
# Medians at the end. See BENCHMARKS.md, "Several nodes (issue 11)".
#
# Setups: `single` (one chatserver, SQLite store: durable like the
# cluster), `memory` (one chatserver, --store memory), `cluster` (three
# nodes; the 100 members are spread over them in turn), and on request
# `node1` (one cluster node with its nats-server: the cost of the log
# without the replication to other nodes). A 2-core machine
# cannot show wall-clock scaling, so the figure is per CPU: fan-out
# deliveries per CPU-second of the chat servers (the three nodes' added
# up); nats-server's CPU is reported apart ("engine").
#
# Every run gets fresh servers (nats-server with a fresh store directory),
# all pinned to $SERVER_CORE; chatbench runs pinned to $GEN_CORE. Every
# process is stopped by its PID.
#
# Knobs (environment):
#   ROUNDS=3  SETUPS="single cluster memory"  WORKLOADS="fanout latency"
#   FANOUT_MESSAGES=25000 (4 publishers, 100 members)  LATENCY_SECONDS=10
#   SERVER_CORE=1 GEN_CORE=0  OUT=target/bench/cluster-<date>
#   BUILD=1 (0: use the release binaries already in $CARGO_TARGET_DIR or target/)
#   A setup written SETUP@NAME (say `cluster@old`) runs SETUP with the
#   chatserver binary in $BIN_NAME (two builds side by side).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SETUPS=${SETUPS:-"single cluster memory"}
WORKLOADS=${WORKLOADS:-"fanout latency"}
FANOUT_MESSAGES=${FANOUT_MESSAGES:-25000}
LATENCY_SECONDS=${LATENCY_SECONDS:-10}
SERVER_CORE=${SERVER_CORE:-1}
GEN_CORE=${GEN_CORE:-0}
OUT=${OUT:-target/bench/cluster-$(date +%Y%m%d-%H%M%S)}

log() { printf '[cluster.sh] %s\n' "$*" >&2; }

# shellcheck source=bench/lib.sh
. bench/lib.sh
release_binaries
command -v nats-server >/dev/null || { log "needs nats-server (apt-get install nats-server)"; exit 1; }
mkdir -p "$OUT"

PIDS=()
ADDRS=()
NATS_PID=""
DIRS=()

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_chat() { # log-file flags...
    local logf=$1
    shift
    taskset -c "$SERVER_CORE" "$SERVER_BIN" --listen 127.0.0.1:0 --log-level warn \
        --rate 0 --max-clients 20000 --max-clients-per-ip 0 "$@" >"$logf" 2>&1 &
    local pid=$! addr=""
    for _ in $(seq 1 400); do
        addr=$(sed -n 's/^listening on //p' "$logf" 2>/dev/null | head -n 1 || true)
        [ -n "$addr" ] && break
        sleep 0.05
    done
    [ -n "$addr" ] || { log "chatserver did not start: $(cat "$logf")"; return 1; }
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$(basename "$SERVER_BIN" | cut -c1-15)" ] || { log "PID $pid is not chatserver"; return 1; }
    PIDS+=("$pid")
    ADDRS+=("$addr")
}

start_nats() { # log-file
    local dir port
    dir=$(mktemp -d)
    DIRS+=("$dir")
    port=$(free_port)
    taskset -c "$SERVER_CORE" nats-server -js -a 127.0.0.1 -p "$port" -sd "$dir" >"$1" 2>&1 &
    NATS_PID=$!
    for _ in $(seq 1 200); do
        grep -q "Server is ready" "$1" 2>/dev/null && break
        sleep 0.05
    done
    grep -q "Server is ready" "$1" || { log "nats-server did not start: $(cat "$1")"; return 1; }
    NATS_URL="nats://127.0.0.1:$port"
}

stop_all() {
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    [ -z "$NATS_PID" ] || stop_pid "$NATS_PID"
    for d in "${DIRS[@]}"; do rm -rf "$d"; done
    PIDS=()
    ADDRS=()
    DIRS=()
    NATS_PID=""
}
trap stop_all EXIT

start_setup() { # setup name
    SERVER_BIN=$CHATSERVER
    if [[ $1 == *@* ]]; then
        local var="BIN_${1#*@}"
        SERVER_BIN=${!var:?"setup $1 needs $var"}
    fi
    case ${1%@*} in
    single)
        local d
        d=$(mktemp -d)
        DIRS+=("$d")
        start_chat "$OUT/$2-server.log" --data-dir "$d"
        ;;
    memory) start_chat "$OUT/$2-server.log" --store memory ;;
    node1)
        start_nats "$OUT/$2-nats.log"
        start_chat "$OUT/$2-node-a.log" --cluster "$NATS_URL" --node a
        ;;
    cluster)
        start_nats "$OUT/$2-nats.log"
        for n in a b c; do
            start_chat "$OUT/$2-node-$n.log" --cluster "$NATS_URL" --node "$n"
        done
        ;;
    esac
}

workload_args() {
    case $1 in
    fanout) echo "fanout --members 100 --publishers 4 --messages $FANOUT_MESSAGES --window 64 --size 64" ;;
    latency) echo "latency --members 100 --publishers 4 --rate 2000 --seconds $LATENCY_SECONDS --size 64" ;;
    esac
}

joined() { local IFS=,; echo "$*"; }

busy_before=$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 >= 10 { printf "%s%s (%s%% CPU)", sep, $2, $1; sep=", " }')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
read -r -a order <<<"$SETUPS"
for round in $(seq 1 "$ROUNDS"); do
    for workload in $WORKLOADS; do
        for i in "${!order[@]}"; do
            setup=${order[$(((i + round - 1) % ${#order[@]}))]}
            name="r$round-$workload-$setup"
            start_setup "$setup" "$name"
            engine=()
            [ -z "$NATS_PID" ] || engine=(--engine-pid "$NATS_PID")
            log "round $round: $workload on $setup (pids $(joined "${PIDS[@]}"); addrs $(joined "${ADDRS[@]}")), load $(cut -d' ' -f1 /proc/loadavg)"
            # shellcheck disable=SC2046 # the arguments are words
            taskset -c "$GEN_CORE" "$BENCH" --addr "$(joined "${ADDRS[@]}")" --server-pid "$(joined "${PIDS[@]}")" \
                "${engine[@]}" --json --quiet $(workload_args "$workload") \
                | jq -c --arg setup "$setup" '. + {setup: $setup}' >"$OUT/$name.json" ||
                log "$name reported a failure"
            stop_all
        done
    done
done

# --- the summary: medians over the rounds --------------------------------------
{
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), Linux $(uname -r); $(nats-server --version)"
    echo "chatserver and chatbench $(git rev-parse --short HEAD 2>/dev/null || echo '?'); $ROUNDS rounds, $(($(date +%s) - started)) s; servers on core $SERVER_CORE, chatbench on core $GEN_CORE"
    echo "Load average before the run: $load_before; other busy programs: ${busy_before:-none}"
    echo
    jq -n -r -L bench --arg setups "$SETUPS" '
      include "summary";
      def s2: if . == null then "-" else (. * 100 | round / 100) end;
      [inputs | .round = (input_filename | capture("r(?<n>[0-9]+)-").n)] as $all
      | ($setups | split(" ")) as $order
      | ($all | map(select(.workload == "fanout" and .setup == "single")) | map(.deliveries_per_cpu_s) | median) as $single
      | "| setup | fan-out deliveries per chat-server-CPU-s (runs) | median | vs single | fan-out deliveries/s (median) | chat servers CPU s (median) | engine CPU s (median) | fan-out deliveries per CPU-s, engine included (median) | latency p50 (runs) | latency p99 (runs) | failed runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        ($order[] as $s
         | ($all | map(select(.setup == $s and .workload == "fanout")) | sort_by(.round | tonumber)) as $f
         | ($all | map(select(.setup == $s and .workload == "latency")) | sort_by(.round | tonumber)) as $l
         | ($f | map(.deliveries_per_cpu_s) | median) as $m
         | "| \($s) | \($f | map(.deliveries_per_cpu_s | si) | join(", ")) | \($m | si) | \(if $m and $single then $m / $single else null end | ratio) | \($f | map(.deliveries_per_s) | median | si) | \($f | map(.server.cpu_s) | median | s2) | \($f | map(.engine.cpu_s // null) | map(select(. != null)) | median | s2) | \($f | map(.tally.received / (.server.cpu_s + (.engine.cpu_s // 0))) | median | si) | \($l | map(.latency_ns.p50 | ms) | join(", ")) | \($l | map(.latency_ns.p99 | ms) | join(", ")) | \(($f + $l) | map(select(.ok | not)) | length) |")
    ' "$OUT"/r*.json
} | tee "$OUT/summary.md"
# The same reports as pictures (deliveries.svg, latency.svg).
"$BENCH" chart --out "$OUT" "$OUT"/r*.json >/dev/null || log "no charts drawn"
log "reports in $OUT"
