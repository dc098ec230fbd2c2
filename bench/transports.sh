#!/usr/bin/env bash
# bench/transports.sh: chatserver over plain TCP, WebSocket and TLS, on the
# fan-out and latency workloads of bench/run.sh, interleaved: round after
# round, each transport in turn (the order rotated every round), so a busy
# machine weighs on all of them alike. Medians at the end. See
# BENCHMARKS.md, "WebSocket and TLS (issue 10)".
#
# Every run gets a fresh chatserver with a certificate (so it speaks all
# three on its one port) and a fresh data directory, pinned with taskset to
# $SERVER_CORE; chatbench runs pinned to $GEN_CORE with --transport and
# --server-pid. Servers are stopped by their PID.
#
# Knobs (environment):
#   ROUNDS=3  TRANSPORTS="tcp ws tls"  WORKLOADS="fanout latency"
#   FANOUT_MESSAGES=25000 (4 publishers, 100 members)  LATENCY_SECONDS=10
#   SERVER_CORE=1 GEN_CORE=0 NICE=0  OUT=target/bench/transports-<date>
#   BUILD=1 (0: use the release binaries already in $CARGO_TARGET_DIR or target/)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
TRANSPORTS=${TRANSPORTS:-"tcp ws tls"}
WORKLOADS=${WORKLOADS:-"fanout latency"}
FANOUT_MESSAGES=${FANOUT_MESSAGES:-25000}
LATENCY_SECONDS=${LATENCY_SECONDS:-10}
SERVER_CORE=${SERVER_CORE:-1}
GEN_CORE=${GEN_CORE:-0}
NICE=${NICE:-0}
OUT=${OUT:-target/bench/transports-$(date +%Y%m%d-%H%M%S)}

log() { printf '[transports.sh] %s\n' "$*" >&2; }

# shellcheck source=bench/lib.sh
. bench/lib.sh
release_binaries

mkdir -p "$OUT"
# A self-signed certificate for 127.0.0.1 (CA:FALSE: rustls refuses a CA
# certificate as a server's own); chatbench trusts it with --ca-cert.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=chatbench -addext basicConstraints=critical,CA:FALSE \
    -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null

SERVER_PID=""
SERVER_ADDR=""
DATA_DIR=""

start_server() { # log-file
    DATA_DIR=$(mktemp -d)
    nice -n "$NICE" taskset -c "$SERVER_CORE" "$CHATSERVER" --listen 127.0.0.1:0 --log-level warn \
        --rate 0 --max-clients 20000 --max-clients-per-ip 0 --data-dir "$DATA_DIR" \
        --tls-cert "$OUT/cert.pem" --tls-key "$OUT/key.pem" >"$1" 2>&1 &
    SERVER_PID=$!
    SERVER_ADDR=""
    for _ in $(seq 1 200); do
        SERVER_ADDR=$(sed -n 's/^listening on //p' "$1" 2>/dev/null | head -n 1 || true)
        [ -n "$SERVER_ADDR" ] && break
        sleep 0.05
    done
    [ -n "$SERVER_ADDR" ] || { log "chatserver did not start: $(cat "$1")"; return 1; }
    [ "$(cat "/proc/$SERVER_PID/comm" 2>/dev/null)" = chatserver ] || { log "PID $SERVER_PID is not chatserver"; return 1; }
}

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    [ -z "$DATA_DIR" ] || rm -rf "$DATA_DIR"
    DATA_DIR=""
}
trap stop_server EXIT

workload_args() {
    case $1 in
    fanout) echo "fanout --members 100 --publishers 4 --messages $FANOUT_MESSAGES --window 64 --size 64" ;;
    latency) echo "latency --members 100 --publishers 4 --rate 2000 --seconds $LATENCY_SECONDS --size 64" ;;
    esac
}

via_args() {
    case $1 in
    tls | wss) echo "--transport $1 --ca-cert $OUT/cert.pem" ;;
    *) echo "--transport $1" ;;
    esac
}

busy_before=$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 >= 10 { printf "%s%s (%s%% CPU)", sep, $2, $1; sep=", " }')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
read -r -a order <<<"$TRANSPORTS"
for round in $(seq 1 "$ROUNDS"); do
    for workload in $WORKLOADS; do
        for i in "${!order[@]}"; do
            # Rotate: round 1 tcp ws tls, round 2 ws tls tcp, ...
            via=${order[$(((i + round - 1) % ${#order[@]}))]}
            name="r$round-$workload-$via"
            start_server "$OUT/$name-server.log"
            log "round $round: $workload over $via (pid $SERVER_PID, $SERVER_ADDR), load $(cut -d' ' -f1 /proc/loadavg)"
            # shellcheck disable=SC2046 # the arguments are words
            nice -n "$NICE" taskset -c "$GEN_CORE" "$BENCH" --addr "$SERVER_ADDR" --server-pid "$SERVER_PID" \
                --json --quiet $(via_args "$via") $(workload_args "$workload") >"$OUT/$name.json" ||
                log "$name reported a failure"
            stop_server
        done
    done
done

# --- the summary: medians over the rounds --------------------------------------
{
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), Linux $(uname -r)"
    echo "chatserver and chatbench $(git rev-parse --short HEAD 2>/dev/null || echo '?'); $ROUNDS rounds, $(($(date +%s) - started)) s; server on core $SERVER_CORE, chatbench on core $GEN_CORE, nice $NICE"
    echo "Load average before the run: $load_before; other busy programs: ${busy_before:-none}"
    echo
    jq -n -r -L bench --arg transports "$TRANSPORTS" '
      include "summary";
      def runs(f): map(f | si) | join(", ");
      def runs_ms(f): map(f | ms) | join(", ");
      [inputs | .round = (input_filename | capture("r(?<n>[0-9]+)-").n)] as $all
      | ($transports | split(" ")) as $order
      | ($all | map(select(.workload == "fanout" and .transport == "tcp")) | map(.deliveries_per_cpu_s) | median) as $tcp
      | "| transport | fan-out deliveries per server-CPU-s (runs) | median | vs tcp: ratio of medians | vs tcp: each round | median of rounds | fan-out deliveries/s (median) | server CPU s (median) | latency p50 (runs) | latency p99 (runs) | p50 / p99 median | latency deliveries per server-CPU-s (median) | failed runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ($order[] as $t
         | ($all | map(select(.transport == $t and .workload == "fanout")) | sort_by(.round | tonumber)) as $f
         | ($all | map(select(.transport == $t and .workload == "latency")) | sort_by(.round | tonumber)) as $l
         | ($f | map(.deliveries_per_cpu_s) | median) as $m
         | [$f[] | . as $r | ($all | map(select(.workload == "fanout" and .transport == "tcp" and .round == $r.round)) | first) as $base
            | if $base and $base.deliveries_per_cpu_s and $r.deliveries_per_cpu_s then $r.deliveries_per_cpu_s / $base.deliveries_per_cpu_s else empty end] as $rr
         | "| \($t) | \($f | runs(.deliveries_per_cpu_s)) | \($m | si) | \(if $m and $tcp then $m / $tcp else null end | ratio) | \($rr | map(ratio) | join(", ")) | \($rr | median | ratio) | \($f | map(.deliveries_per_s) | median | si) | \($f | map(.server.cpu_s) | median | if . then (. * 100 | round / 100) else "-" end) | \($l | runs_ms(.latency_ns.p50)) | \($l | runs_ms(.latency_ns.p99)) | \($l | map(.latency_ns.p50) | median | ms) / \($l | map(.latency_ns.p99) | median | ms) | \($l | map(.deliveries_per_cpu_s) | median | si) | \(($f + $l) | map(select(.ok | not)) | length) |")
    ' "$OUT"/r*.json
} | tee "$OUT/summary.md"
# The same reports as pictures (deliveries.svg, latency.svg).
"$BENCH" chart --out "$OUT" "$OUT"/r*.json >/dev/null || log "no charts drawn"
log "reports in $OUT"
