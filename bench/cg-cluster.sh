#!/usr/bin/env bash
# bench/cg-cluster.sh: count the instructions three cluster nodes execute
# on one fan-out, each node under valgrind's callgrind, with one
# nats-server (not counted) on a fresh store. The cluster's per-event cost
# on each node (the NATS delivery, the follower, the apply) is what
# issue 11's per-CPU target measures; timed runs of three nodes and
# nats-server on one core spread too widely to show a change of a few
# percent. See BENCHMARKS.md, "A log event's cost on each node".
#
#   bench/cg-cluster.sh OUT
#
# Writes OUT.a, OUT.b, OUT.c (for callgrind_annotate) and prints each
# node's total and their sum per message. The nodes wait 600 s before
# taking each other for dead (under valgrind they are ~50 times slower
# than their heartbeats expect). Start-up is in the counts.
#
# Knobs (environment): MESSAGES=1500 (per publisher, 4 publishers, 100
#   members spread over the nodes)  SERVER_CORE=1 GEN_CORE=0
#   BUILD=1 (0: use the release binaries there are)
#   CHATSERVER=path (another build to count)
set -euo pipefail
here=$PWD
abs() { case $1 in /*) echo "$1" ;; *) echo "$here/$1" ;; esac; }
cd "$(dirname "$0")/.."
log() { echo "cg-cluster.sh: $*" >&2; }
# shellcheck source=bench/lib.sh
. bench/lib.sh

F=$(abs "${1:?output file prefix}")
command -v valgrind >/dev/null || { log "needs valgrind (apt-get install valgrind)"; exit 1; }
command -v nats-server >/dev/null || { log "needs nats-server (apt-get install nats-server)"; exit 1; }
SERVER=${CHATSERVER:+$(abs "$CHATSERVER")}
release_binaries
SERVER=${SERVER:-$CHATSERVER}
SERVER_CORE=${SERVER_CORE:-1}
GEN_CORE=${GEN_CORE:-0}
MESSAGES=${MESSAGES:-1500}
dir=$(mktemp -d)
pids=()
nats=""
cleanup() {
    for p in "${pids[@]}"; do stop_pid "$p"; done
    [ -z "$nats" ] || stop_pid "$nats"
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(free_port)
nats-server -js -a 127.0.0.1 -p "$port" -sd "$dir/nats" >"$dir/nats.log" 2>&1 &
nats=$!
for _ in $(seq 1 200); do
    grep -q "Server is ready" "$dir/nats.log" && break
    sleep 0.05
done
grep -q "Server is ready" "$dir/nats.log" || { log "nats-server did not start"; exit 1; }

addrs=()
for n in a b c; do
    rm -f "$F.$n"
    taskset -c "$SERVER_CORE" valgrind --tool=callgrind --callgrind-out-file="$F.$n" "$SERVER" \
        --listen 127.0.0.1:0 --log-level warn --rate 0 --max-clients 20000 \
        --max-clients-per-ip 0 --threads 1 --cluster "nats://127.0.0.1:$port" --node "$n" \
        --node-dead-after-ms 600000 >"$dir/$n.log" 2>&1 &
    pids+=($!)
    addr=$(valgrind_addr "$dir/$n.log" "${pids[-1]}")
    [ -n "$addr" ] || { log "node $n did not start:"; cat "$dir/$n.log" >&2; exit 1; }
    addrs+=("$addr")
done
joined=$(IFS=,; echo "${addrs[*]}")
if ! taskset -c "$GEN_CORE" "$BENCH" --addr "$joined" --json --quiet --seed 7 fanout --members 100 \
    --publishers 4 --messages "$MESSAGES" --window 64 --size 64 --end-to-end --ack-every 16 \
    >"$dir/report.json" || ! jq -e .ok "$dir/report.json" >/dev/null; then
    log "chatbench failed; no count"
    exit 1
fi
# callgrind writes each profile when its node exits: SIGTERM, then up to 60 s.
for p in "${pids[@]}"; do kill "$p"; done
for p in "${pids[@]}"; do
    for _ in $(seq 1 600); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    stop_pid "$p"
done
pids=()
sum=0
for n in a b c; do
    total=$(awk '/^(totals|summary):/ {print $2; exit}' "$F.$n" 2>/dev/null || true)
    [ -n "$total" ] || { log "no total in $F.$n: node $n did not finish its profile"; exit 1; }
    echo "node $n instructions=$total"
    sum=$((sum + total))
done
messages=$(jq -e .messages "$dir/report.json") || { log "no report"; exit 1; }
echo "$(basename "$SERVER") cluster instructions=$sum messages=$messages per-message=$((sum / messages))"
